/*
 * select.c: select over any number of send/receive cases, with an optional
 * default, following Go's selectgo: visit the cases in a uniformly random
 * order (pollorder) and do the first that can proceed; otherwise enqueue a
 * sudog on every case's channel, park, and when one fires, dequeue the rest.
 *
 * Threads (Go's sellock): select locks every case's channel, in address
 * order and each once, before it looks at any; a blocking select parks with
 * them all held and they are released after its switch. The first case to
 * fire claims the goroutine (g->xselectdone, chan.c), so a waker on another
 * channel skips it. Woken, it locks them all again to dequeue the rest.
 *
 * Frame record: after it wakes, select dequeues its sudogs from the other
 * cases' channels, so it holds those channels across the park. Up to
 * SELECT_SLOTS cases they sit in its record (safepoint k = "slots 0..k
 * live"); beyond that, in a heap array held by slot 0.
 */
#include "chan.h"

#include <string.h>

#define SELECT_SLOTS 8
#define LIVE(k) REF_SP((2ull << (k)) - 1) /* slots 0..k */

REF_FUNC(select_info, "ref.select", SELECT_SLOTS, LIVE(0), LIVE(1), LIVE(2), LIVE(3), LIVE(4),
         LIVE(5), LIVE(6), LIVE(7));

static const uint64_t ptr_mask1[1] = {0x1};
static const ref_type ptr_type = {sizeof(void *), ptr_mask1, "ref.ptr"};

/* Fisher-Yates over the non-nil cases; returns how many. */
static int pollorder(const ref_case *cases, int n, int *order) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (!cases[i].c) continue;
    int j = (int)(ref__m_rand() % (uint64_t)(m + 1));
    order[m] = order[j];
    order[j] = i;
    m++;
  }
  return m;
}

/* Does case cs if it can proceed now; returns whether it did. Its channel
 * is locked. */
static bool try_case(ref_case *cs) {
  if (cs->dir == REF_SEND) return ref__chan_trysend_locked(cs->c, cs->elem);
  return ref__chan_tryrecv_locked(cs->c, cs->elem, &cs->ok);
}

/* The distinct channels of the cases, in address order (the lock order). */
typedef struct sel_locks {
  ref_chan **c;
  int n;
} sel_locks;

static int chan_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (ref_chan *const *)a, y = (uintptr_t) * (ref_chan *const *)b;
  return (x > y) - (x < y);
}

static void sel_locks_init(sel_locks *l, ref_chan **buf, const ref_case *cases, const int *order,
                           int m) {
  for (int k = 0; k < m; k++) buf[k] = cases[order[k]].c;
  qsort(buf, (size_t)m, sizeof *buf, chan_cmp);
  int n = 0;
  for (int k = 0; k < m; k++)
    if (n == 0 || buf[n - 1] != buf[k]) buf[n++] = buf[k];
  l->c = buf;
  l->n = n;
}

static void sellock(const sel_locks *l) {
  for (int i = 0; i < l->n; i++) ref__spin_lock(&l->c[i]->lock);
}

static void selunlock(const sel_locks *l) {
  for (int i = l->n; i-- > 0;) ref__spin_unlock(&l->c[i]->lock);
}

/* After a blocking select's switch. Once the last lock is released the
 * select may run (on another M) and free l, so nothing of it is read after
 * that: each channel is read before its lock is released. */
static void selunlock_after(struct ref__m *m, void *arg) {
  (void)m;
  const sel_locks *l = arg;
  int n = l->n;
  ref_chan **c = l->c;
  for (int i = n; i-- > 0;) ref__spin_unlock(&c[i]->lock);
}

/* Holds the cases' channels in f's slots, or in a heap array in slot 0. */
static bool hold_channels(void **slot, const ref_case *cases, int n) {
  if (n <= SELECT_SLOTS) {
    for (int i = 0; i < n; i++) slot[i] = cases[i].c;
    return true;
  }
  void **arr = ref_alloc_array(&ptr_type, (size_t)n); /* safepoint: caller holds them */
  if (!arr) return false;
  for (int i = 0; i < n; i++) arr[i] = cases[i].c;
  slot[0] = arr;
  return true;
}

/* With every case's channel locked (l) and none ready: enqueue a sudog on
 * each, park, and when one fires dequeue the rest. Returns with the locks
 * released. f holds the channels across the park: its record's slots, set
 * before the locks were taken (an allocation may collect). */
static int select_block(ref_case *cases, const int *order, int m, ref__sudog *sgs,
                        sel_locks *l) {
  ref_g *g = ref_curg();
  if (!g) ref__throw("select would block on the scheduler stack");
  g->param = NULL;
  atomic_store_explicit(&g->xselectdone, 0, memory_order_relaxed);
  for (int k = 0; k < m; k++) {
    int i = order[k];
    sgs[k] = (ref__sudog){.g = g, .c = cases[i].c, .elem = cases[i].elem, .is_select = true,
                          .case_index = i};
    ref__waitq_enqueue(cases[i].dir == REF_SEND ? &cases[i].c->sendq : &cases[i].c->recvq,
                       &sgs[k]);
  }
  ref__park(selunlock_after, l);
  sellock(l);
  ref__sudog *fired = g->param;
  for (int k = 0; k < m; k++) {
    if (&sgs[k] == fired) continue;
    ref_case *cs = &cases[sgs[k].case_index];
    ref__waitq_remove(cs->dir == REF_SEND ? &cs->c->sendq : &cs->c->recvq, &sgs[k]);
  }
  selunlock(l);
  ref_case *won = &cases[fired->case_index];
  if (won->dir == REF_SEND && !fired->success) ref__throw("send on closed channel");
  if (won->dir == REF_RECV) won->ok = fired->success;
  return fired->case_index;
}

/* Does the first case in poll order that can proceed, with every channel
 * locked; returns its index or -1. Returns with the locks held. */
static int poll_cases(ref_case *cases, const int *order, int m, const sel_locks *l) {
  sellock(l);
  for (int k = 0; k < m; k++)
    if (try_case(&cases[order[k]])) return order[k];
  return -1;
}

/* No case was ready: hold the channels in a frame record (which may
 * allocate, so with no lock held), then poll again -- another M may have
 * made a case ready meanwhile -- and park. */
static int select_slow(ref_case *cases, int n, const int *order, int m, sel_locks *l) {
  REF_FRAME(f, select_info);
  REF_SAFEPOINT(f, 0); /* hold_channels may collect: slot 0 (still NULL) live */
  if (!hold_channels(f.slot, cases, n)) ref__throw("select: %s", ref_error());
  REF_SAFEPOINT(f, n <= SELECT_SLOTS ? n - 1 : 0);
  int chosen = poll_cases(cases, order, m, l);
  if (chosen >= 0) {
    selunlock(l);
    return chosen;
  }
  ref__sudog small_sg[8];
  ref__sudog *sgs = m <= 8 ? small_sg : malloc((size_t)m * sizeof *sgs);
  if (!sgs) ref__throw("select: out of memory for %d cases", m);
  chosen = select_block(cases, order, m, sgs, l);
  if (sgs != small_sg) free(sgs);
  return chosen;
}

int ref_select(ref_case *cases, int n, bool has_default) {
  REF_RUNTIME_CALL();
  if (n < 0 || n > REF_MAX_SELECT_CASES || (n > 0 && !cases))
    ref__throw("select: %d cases at %p (must be 0..%d)", n, (void *)cases, REF_MAX_SELECT_CASES);
  if (!has_default) ref_poll(); /* it may park: a safepoint; with a default it is not one */
  int small[16];
  int *order = n <= 16 ? small : malloc((size_t)n * sizeof *order);
  if (!order) ref__throw("select: out of memory for %d cases", n);
  int m = pollorder(cases, n, order);
  if (m == 0 && !has_default) {
    ref__park(NULL, NULL); /* select {} with only nil channels: blocks forever */
    ref__throw("goroutine blocked in an empty select was woken");
  }
  ref_chan *small_c[16];
  ref_chan **cbuf = m <= 16 ? small_c : malloc((size_t)m * sizeof *cbuf);
  if (!cbuf) ref__throw("select: out of memory for %d cases", m);
  sel_locks l;
  sel_locks_init(&l, cbuf, cases, order, m);
  int chosen = poll_cases(cases, order, m, &l);
  selunlock(&l);
  if (chosen < 0 && !has_default) chosen = select_slow(cases, n, order, m, &l);
  if (cbuf != small_c) free(cbuf);
  if (order != small) free(order);
  return chosen;
}
