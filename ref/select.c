/*
 * select.c: select over any number of send/receive cases, with an optional
 * default, following Go's selectgo: visit the cases in a uniformly random
 * order (pollorder) and do the first that can proceed; otherwise enqueue a
 * sudog on every case's channel, park, and when one fires, dequeue the rest.
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

/* Does case i if it can proceed now; returns whether it did. */
static bool try_case(ref_case *cs) {
  ref_chan *c = cs->c;
  if (cs->dir == REF_SEND) {
    if (c->closed) ref__throw("send on closed channel");
    ref__sudog *sg = ref__waitq_dequeue(&c->recvq);
    if (sg) {
      ref__chan_send_to(c, sg, cs->elem);
      return true;
    }
    if (c->qcount < c->dataqsiz) {
      ref_chan_send(c, cs->elem); /* cannot block: there is room */
      return true;
    }
    return false;
  }
  ref__sudog *sg = ref__waitq_dequeue(&c->sendq); /* skips stale select senders */
  if (sg) {
    ref__chan_recv_from(c, sg, cs->elem);
    cs->ok = true;
    return true;
  }
  if (c->qcount > 0 || c->closed) {
    cs->ok = ref_chan_recv(c, cs->elem); /* cannot block: a value or close is there */
    return true;
  }
  return false;
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

static int select_block(ref_case *cases, int n, const int *order, int m, ref__sudog *sgs) {
  REF_FRAME(f, select_info);
  REF_SAFEPOINT(f, 0); /* hold_channels may collect: slot 0 (still NULL) live */
  ref_g *g = ref_curg();
  if (!g) ref__throw("select would block on the scheduler stack");
  if (!hold_channels(f.slot, cases, n)) ref__throw("select: %s", ref_error());
  REF_SAFEPOINT(f, n <= SELECT_SLOTS ? n - 1 : 0);
  g->param = NULL;
  for (int k = 0; k < m; k++) {
    int i = order[k];
    sgs[k] = (ref__sudog){.g = g, .c = cases[i].c, .elem = cases[i].elem, .is_select = true,
                          .case_index = i};
    ref__waitq_enqueue(cases[i].dir == REF_SEND ? &cases[i].c->sendq : &cases[i].c->recvq,
                       &sgs[k]);
  }
  ref__park();
  ref__sudog *fired = g->param;
  for (int k = 0; k < m; k++) {
    if (&sgs[k] == fired) continue;
    ref_case *cs = &cases[sgs[k].case_index];
    ref__waitq_remove(cs->dir == REF_SEND ? &cs->c->sendq : &cs->c->recvq, &sgs[k]);
  }
  ref_case *won = &cases[fired->case_index];
  if (won->dir == REF_SEND && !fired->success) ref__throw("send on closed channel");
  if (won->dir == REF_RECV) won->ok = fired->success;
  return fired->case_index;
}

int ref_select(ref_case *cases, int n, bool has_default) {
  if (n < 0 || n > REF_MAX_SELECT_CASES || (n > 0 && !cases))
    ref__throw("select: %d cases at %p (must be 0..%d)", n, (void *)cases, REF_MAX_SELECT_CASES);
  int small[16];
  int *order = n <= 16 ? small : malloc((size_t)n * sizeof *order);
  if (!order) ref__throw("select: out of memory for %d cases", n);
  int m = pollorder(cases, n, order);
  int chosen = -1;
  for (int k = 0; k < m && chosen < 0; k++)
    if (try_case(&cases[order[k]])) chosen = order[k];
  if (chosen < 0 && !has_default) {
    if (m == 0) {
      ref__park(); /* select {} with only nil channels: blocks forever */
      ref__throw("goroutine blocked in an empty select was woken");
    }
    ref__sudog small_sg[8];
    ref__sudog *sgs = m <= 8 ? small_sg : malloc((size_t)m * sizeof *sgs);
    if (!sgs) ref__throw("select: out of memory for %d cases", m);
    chosen = select_block(cases, n, order, m, sgs);
    if (sgs != small_sg) free(sgs);
  }
  if (order != small) free(order);
  return chosen;
}
