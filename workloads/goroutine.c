/*
 * goroutine.c: the GC workloads. Go's four (malloc_test.go) and three that
 * stress what those do not: deep, skewed and pointer-dense stacks.
 *
 * Every reader goroutine runs reader_main -> descend (depth extra frames,
 * each with `slots` pointer slots and `frame_bytes` of non-pointer data) ->
 * park_loop, which parks the way its workload does. Every function holds
 * its heap pointers in frame records, so scan=frames is sound, and checks
 * them when the reader exits: a freed object would show the poison pattern
 * or a broken canary.
 */
#include "workloads.h"

#define align_up(x, a) (((x) + ((a)-1)) & ~((uint64_t)(a)-1))

#include <alloca.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum wl_kind { K_SELECT, K_BLOCKING, K_FORRANGE, K_IDLE, K_PARKED, K_DIRTY };

#define WL_NOINLINE __attribute__((noinline))
#define PAD_WORD 0x5a5a5a5a5a5a5a5aull /* non-pointer filler: never a heap address */
#define NODE_BYTES 64

/* A reader's private object; canary = id * K + index. */
typedef struct node {
  uint64_t canary;
  uint64_t payload[NODE_BYTES / 8 - 1];
} node;

/* One per reader, in the GC heap: its channel, the shared quit channel, and
 * the array of its nodes. */
typedef struct reader {
  ref_chan *ch;
  ref_chan *quit;
  node **nodes;
  struct wl_instance *inst; /* not a heap pointer */
  uint64_t id;
  int64_t nnodes;
  int depth, slots, frame_bytes; /* the frames it descends through */
  int dirty;                     /* DirtyStack: bytes rewritten per wake */
} reader;

static const uint64_t reader_mask[1] = {0x7}; /* ch, quit, nodes */
static const ref_type reader_type = {sizeof(reader), reader_mask, "wl.reader"};
static const uint64_t ptr_mask[1] = {0x1};
static const ref_type ptr_type = {sizeof(void *), ptr_mask, "wl.ptr"};
static const ref_type node_type = {sizeof(node), NULL, "wl.node"};

struct wl_instance {
  const wl_desc *desc;
  enum wl_kind kind;
  wl_params p;
  ref_chan **chans;   /* heap array of n channels (Idle: one shared) */
  ref_chan *quit;
  int64_t parked_expected;
  int32_t *perm;      /* Parked: a permutation of 0..n-1, its prefix woken */
  uint64_t rng;
  /* Counted by readers on every mutator thread (atomic increments); read
   * by the main thread after ref_run, which orders them. */
  _Atomic int64_t exited, received, nodes_checked, failures;
  char failure[200];  /* written by the first failure only */
  struct spin *spin;  /* GoroutineSpin's spinners, else NULL */
  struct lat *lat;    /* GoroutineLatency's ping-pong pair, else NULL */
};

/* The one registered root: the running instance's heap objects. */
static struct {
  ref_chan **chans;
  ref_chan *quit;
} root;

static void fail(struct wl_instance *w, const char *fmt, uint64_t a, uint64_t b) {
  if (w->failures++ == 0) snprintf(w->failure, sizeof w->failure, fmt, a, b);
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static uint64_t canary_of(const reader *r, int64_t i) { return r->id * 1000003u + (uint64_t)i; }

static void lat_detach(struct wl_instance *w);

/* ---------------------------------------------------------------------------
 * Reader frames
 * ------------------------------------------------------------------------- */

#define LIVE(k) REF_SP((2ull << (k)) - 1) /* safepoint k: slots 0..k live */
#define L4(b) LIVE(b), LIVE(b + 1), LIVE(b + 2), LIVE(b + 3)
#define L16(b) L4(b), L4(b + 4), L4(b + 8), L4(b + 12)

REF_FUNC(reader_info, "wl.reader_main", 1, LIVE(0));
REF_FUNC(loop_info, "wl.park_loop", 3, LIVE(2));
REF_FUNC(frame1_info, "wl.descend1", 1, LIVE(0));
REF_FUNC(frame2_info, "wl.descend2", 2, LIVE(0), LIVE(1));
REF_FUNC(frame4_info, "wl.descend4", 4, L4(0));
REF_FUNC(frame8_info, "wl.descend8", 8, L4(0), L4(4));
REF_FUNC(frame16_info, "wl.descend16", 16, L16(0));
REF_FUNC(frame32_info, "wl.descend32", 32, L16(0), L16(16));
REF_FUNC(frame64_info, "wl.descend64", 64, L16(0), L16(16), L16(32), L16(48));

static void park_loop(reader *r);
static void descend(reader *r, int level);

/* What slot i of the frame at `level` points to: one of the reader's nodes,
 * or the reader itself when it has none. */
static void *slot_target(const reader *r, int level, int i) {
  if (r->nnodes == 0) return (void *)r;
  return r->nodes[(level * 7 + i) % r->nnodes];
}

static void check_frame(const reader *r, void **slot, int live, int level, const uint64_t *pad) {
  for (int i = 0; i < live; i++)
    if (slot[i] != slot_target(r, level, i))
      fail(r->inst, "reader %llu: frame slot %llu changed", r->id, (uint64_t)i);
  for (int i = 0; i < r->frame_bytes / 8; i++)
    if (pad[i] != PAD_WORD) fail(r->inst, "reader %llu: frame data word %llu changed", r->id, i);
}

/* One extra frame with capacity C slots, `live` of them pointers. */
#define DESCEND(C)                                                                   \
  static WL_NOINLINE void descend##C(reader *r, int level) {                        \
    REF_FRAME(f, frame##C##_info);                                                   \
    int live = r->slots < (C) ? r->slots : (C);                                      \
    for (int i = 0; i < live; i++) f.slot[i] = slot_target(r, level, i);             \
    REF_SAFEPOINT(f, live - 1);                                                      \
    uint64_t *pad = alloca((size_t)r->frame_bytes + 8);                              \
    for (int i = 0; i < r->frame_bytes / 8; i++) pad[i] = PAD_WORD;                  \
    if (level + 1 < r->depth) descend(r, level + 1);                                 \
    else park_loop(r);                                                               \
    check_frame(r, f.slot, live, level, pad);                                        \
  }
DESCEND(1)
DESCEND(2)
DESCEND(4)
DESCEND(8)
DESCEND(16)
DESCEND(32)
DESCEND(64)

static void descend(reader *r, int level) {
  int s = r->slots;
  if (s <= 1) descend1(r, level);
  else if (s <= 2) descend2(r, level);
  else if (s <= 4) descend4(r, level);
  else if (s <= 8) descend8(r, level);
  else if (s <= 16) descend16(r, level);
  else if (s <= 32) descend32(r, level);
  else descend64(r, level);
}

/* GoroutineSelect's loop, out of line so that its case array is not part of
 * the other workloads' parked frames. */
static WL_NOINLINE void select_loop(struct wl_instance *w, ref_chan *ch, ref_chan *quit) {
  for (;;) {
    ref_case cs[2] = {{ch, REF_RECV, NULL, false}, {quit, REF_RECV, NULL, false}};
    int k = ref_select(cs, 2, false);
    if (k != 0 || !cs[0].ok) return;
    w->received++;
  }
}

/* DirtyStack's loop: a frame of r->dirty bytes of non-pointer data, parked
 * with the reader and rewritten after every wake. */
static WL_NOINLINE void dirty_loop(struct wl_instance *w, ref_chan *ch, int dirty) {
  volatile uint64_t *buf = alloca((size_t)dirty + 8);
  for (uint64_t round = 1; ref_chan_recv(ch, NULL); round++) {
    for (int i = 0; i < dirty / 8; i++) buf[i] = PAD_WORD ^ round;
    w->received++;
  }
}

/* Parks the way the workload does until its channel is closed. The record
 * holds what a Go reader's frame would: the reader and its channels. */
static WL_NOINLINE void park_loop(reader *r) {
  REF_FRAME(f, loop_info);
  f.slot[0] = r;
  f.slot[1] = r->ch;
  f.slot[2] = r->quit;
  REF_SAFEPOINT(f, 0);
  struct wl_instance *w = r->inst;
  switch (w->kind) {
  case K_SELECT:
    select_loop(w, f.slot[1], f.slot[2]);
    return;
  case K_DIRTY:
    dirty_loop(w, f.slot[1], r->dirty);
    return;
  case K_PARKED:
  case K_BLOCKING: /* for { if _, ok := <-ch; !ok { return } } */
    while (ref_chan_recv(f.slot[1], NULL)) w->received++;
    return;
  case K_FORRANGE: /* for range ch {}: Go compiles it to the same receive loop */
    for (;;) {
      if (!ref_chan_recv(f.slot[1], NULL)) break;
      w->received++;
    }
    return;
  case K_IDLE: /* <-quit */
    ref_chan_recv(f.slot[2], NULL);
    return;
  }
}

/* Allocates r's heap_per_g objects (out of line: its locals stay off the
 * parked stack). */
static WL_NOINLINE void alloc_nodes(reader *r) {
  ref_store((void **)&r->nodes, ref_alloc_array(&ptr_type, (size_t)r->nnodes));
  for (int64_t i = 0; r->nodes && i < r->nnodes; i++) {
    node *nd = ref_alloc(&node_type);
    if (!nd) break;
    nd->canary = canary_of(r, i);
    ref_store((void **)&r->nodes[i], nd);
  }
  if (!r->nodes || !r->nodes[r->nnodes - 1]) {
    fail(r->inst, "reader %llu: allocating its %llu objects failed", r->id, (uint64_t)r->nnodes);
    r->nnodes = 0;
  }
}

static WL_NOINLINE void check_nodes(reader *r) {
  for (int64_t i = 0; i < r->nnodes; i++) {
    if (r->nodes[i]->canary != canary_of(r, i))
      fail(r->inst, "reader %llu: object %llu lost its canary (freed?)", r->id, (uint64_t)i);
    r->inst->nodes_checked++;
  }
}

static void reader_main(void *arg) {
  REF_FRAME(f, reader_info);
  f.slot[0] = arg;
  REF_SAFEPOINT(f, 0);
  reader *r = arg;
  if (r->nnodes > 0) alloc_nodes(r);
  if (r->depth > 0) descend(r, 0);
  else park_loop(r);
  check_nodes(r);
  r->inst->exited++;
}

/* ---------------------------------------------------------------------------
 * Setup, wake, finish
 * ------------------------------------------------------------------------- */

/* One shape field: negative (the default) or in lo..hi. */
static int check_field(const char *name, int v, int lo, int hi, char *err, size_t errlen) {
  if (v < 0 || (v >= lo && v <= hi)) return 0;
  snprintf(err, errlen, "%s must be in %d..%d", name, lo, hi);
  return -1;
}

int wl_params_check(const wl_params *p, char *err, size_t errlen) {
  if (p->n < 1) {
    snprintf(err, errlen, "n must be at least 1");
    return -1;
  }
  if (check_field("depth", p->depth, 0, WL_MAX_DEPTH, err, errlen) != 0 ||
      check_field("frame-bytes", p->frame_bytes, 0, WL_MAX_FRAME_BYTES, err, errlen) != 0 ||
      check_field("slots", p->slots, WL_MIN_SLOTS, WL_MAX_SLOTS, err, errlen) != 0 ||
      check_field("heap-per-g", p->heap_per_g, 0, WL_MAX_HEAP_PER_G, err, errlen) != 0 ||
      check_field("dirty", p->dirty, 0, WL_MAX_DIRTY, err, errlen) != 0 ||
      check_field("poll-every", p->poll_every, WL_MIN_POLL_EVERY, WL_MAX_POLL_EVERY, err,
                  errlen) != 0)
    return -1;
  /* Negative: the default. Written so that a NaN is refused too. */
  if (!(p->wake < 0) && !(p->wake >= WL_MIN_WAKE && p->wake <= WL_MAX_WAKE)) {
    snprintf(err, errlen, "wake must be in %d..%d", WL_MIN_WAKE, WL_MAX_WAKE);
    return -1;
  }
  return 0;
}

/* p has the workload's defaults applied (no negative field). */
static int check_params(const wl_params *p, char *err, size_t errlen) {
  if (wl_params_check(p, err, errlen) != 0) return -1;
  /* A frame costs its record, its data and about 96 bytes of native frame. */
  size_t per = 32 + 8 * (size_t)p->slots + (size_t)p->frame_bytes + 96;
  size_t need = per * (size_t)p->depth + 4096 + (size_t)p->dirty;
  size_t have = ref_get_config()->stack_size;
  if (need > have) {
    snprintf(err, errlen, "depth %d with %d slots and %d frame bytes needs about %zu bytes of "
             "stack, more than the %zu-byte goroutine stacks", p->depth, p->slots,
             p->frame_bytes, need, have);
    return -1;
  }
  return 0;
}

static int depth_of(const struct wl_instance *w, int64_t i) {
  if (strcmp(w->desc->name, "GoroutineSkewed") == 0) return i % 100 == 0 ? 256 : w->p.depth;
  return w->p.depth;
}

static wl_instance *setup_kind(const wl_desc *d, enum wl_kind kind, const wl_params *p, char *err,
                               size_t errlen) {
  if (check_params(p, err, errlen) != 0) return NULL;
  if (root.chans || root.quit) {
    snprintf(err, errlen, "another workload instance is running");
    return NULL;
  }
  struct wl_instance *w = calloc(1, sizeof *w);
  if (!w) return snprintf(err, errlen, "out of memory"), NULL;
  w->desc = d;
  w->kind = kind;
  w->p = *p;
  ref_add_root(&root, sizeof root);
  w->quit = ref_chan_make_size(0, 0);
  ref_store((void **)&root.quit, w->quit); /* a registered root: the barrier too */
  size_t nch = kind == K_IDLE ? 0 : (size_t)p->n;
  w->rng = p->seed * 0x9E3779B97F4A7C15ull + 1;
  if (kind == K_PARKED && !(w->perm = malloc((size_t)p->n * sizeof *w->perm))) goto fail;
  for (int64_t i = 0; w->perm && i < p->n; i++) w->perm[i] = (int32_t)i;
  w->chans = nch ? ref_alloc_array(&ptr_type, nch) : NULL;
  ref_store((void **)&root.chans, w->chans);
  if (!w->quit || (nch && !w->chans)) goto fail;
  for (int64_t i = 0; i < p->n; i++) {
    ref_chan *ch = kind == K_IDLE ? w->quit : ref_chan_make_size(0, 1);
    if (!ch) goto fail;
    if (kind != K_IDLE) ref_store((void **)&w->chans[i], ch);
    reader *r = ref_alloc(&reader_type);
    if (!r) goto fail;
    reader init = {.ch = ch,
                  .quit = w->quit,
                  .inst = w,
                  .id = (uint64_t)i,
                  .nnodes = p->heap_per_g / NODE_BYTES,
                  .depth = depth_of(w, i),
                  .slots = p->slots,
                  .frame_bytes = p->frame_bytes,
                  .dirty = kind == K_DIRTY ? p->dirty : 0};
    ref_typedmemmove(&reader_type, r, &init); /* a heap struct copy: the barrier */
    if (!ref_go(reader_main, r)) goto fail;
  }
  size_t parked = ref_run();
  if (parked != (size_t)p->n || w->failures) {
    snprintf(err, errlen, "%zu of %lld readers parked after setup%s%s", parked,
             (long long)p->n, w->failures ? ": " : "", w->failure);
    wl_finish(w, NULL, 0);
    return NULL;
  }
  return w;
fail:
  snprintf(err, errlen, "setup: %s", ref_error());
  wl_finish(w, NULL, 0);
  return NULL;
}

const wl_params *wl_params_of(const wl_instance *w) { return &w->p; }

/* Parked: sends to a fresh seeded choice of round(wake * n) readers (a
 * partial Fisher-Yates shuffle of perm), each once. Returns how many. */
static int64_t wake_some(wl_instance *w) {
  int64_t n = w->p.n, k = (int64_t)(w->p.wake * (double)n + 0.5);
  for (int64_t i = 0; i < k; i++) {
    int64_t j = i + (int64_t)(xorshift(&w->rng) % (uint64_t)(n - i));
    int32_t t = w->perm[i];
    w->perm[i] = w->perm[j];
    w->perm[j] = t;
    ref_chan_send(w->chans[w->perm[i]], NULL);
  }
  return k;
}

int wl_wake(wl_instance *w, char *err, size_t errlen) {
  int64_t before = w->received, want = 0;
  if (w->kind == K_PARKED) {
    want = wake_some(w);
  } else if (w->kind != K_IDLE) {
    for (int64_t i = 0; i < w->p.n; i++) ref_chan_send(w->chans[i], NULL);
    want = w->p.n;
  }
  size_t parked = ref_run();
  if (parked != (size_t)w->p.n || w->received - before != want) {
    snprintf(err, errlen, "wake: %zu of %lld readers parked, %lld of %lld woke", parked,
             (long long)w->p.n, (long long)(w->received - before), (long long)want);
    return -1;
  }
  return 0;
}

int wl_finish(wl_instance *w, char *err, size_t errlen) {
  if (w->chans)
    for (int64_t i = 0; i < w->p.n && w->chans[i]; i++) ref_chan_close(w->chans[i]);
  if (w->quit) ref_chan_close(w->quit);
  size_t parked = ref_run();
  int rc = 0;
  int64_t want_nodes = w->p.heap_per_g / NODE_BYTES * w->p.n;
  if (err && (parked != 0 || w->exited != w->p.n || w->failures || w->nodes_checked != want_nodes)) {
    snprintf(err, errlen, "finish: %lld of %lld readers exited, %lld of %lld objects verified%s%s",
             (long long)w->exited, (long long)w->p.n, (long long)w->nodes_checked,
             (long long)want_nodes, w->failures ? "; first failure: " : "", w->failure);
    rc = -1;
  }
  ref_remove_root(&root);
  ref_store((void **)&root.chans, NULL);
  ref_store((void **)&root.quit, NULL);
  lat_detach(w);
  free(w->perm);
  free(w->spin);
  free(w);
  return rc;
}

/* ---------------------------------------------------------------------------
 * GoroutineSpin: the stop-the-world handshake with running goroutines
 *
 * Idle's n readers stay parked. Each timed collection is requested by a
 * controller goroutine while a spinner runs on every other mutator thread
 * (mutators - 1 of them: the controller holds the last P), in a compute
 * loop that calls ref_poll() every poll_every work units. So the stop waits
 * for each spinner to reach its next poll: the cycle's ttsp_ns is that wait
 * plus the handshake. With poll_every 0 the loop has no safepoint at all
 * (not one ref_poll): only preempt=async's signal stops it, and ttsp_ns is
 * the signal's delivery and the handler's stop. The controller waits until every spinner is in its
 * loop before it asks, so a spinner is running when the stop is requested.
 * Spinners and controller are made for each collection and exit after it.
 * A spinner holds an object in its frame record across the cycle (it is
 * stopped at a poll, not parked, when its stack is scanned) and checks it
 * afterwards (a failure is reported by wl_finish, as the readers' are).
 * ------------------------------------------------------------------------- */

#define SPIN_CANARY 0x5350494e5350494eull /* "SPINSPIN" */
#define SPIN_CALIBRATE_RUNS 9             /* time the poll interval in 9 runs */
#define SPIN_CALIBRATE_NS 200000          /* of 0.2 ms each */
#define SPIN_WAIT_NS 10000000             /* the controller's wait before it yields */

typedef struct spin {
  int spinners;             /* mutators - 1 */
  int poll_every;           /* work units between polls */
  double poll_ns;           /* one poll interval's time, measured at setup; 0 when
                               poll_every is 0 (no polls) */
  wl_collect_fn collect;
  void *collect_arg;
  atomic_int xrunning;      /* spinners in their loop, this round */
  atomic_int xstop;         /* set by the controller once it collected */
  atomic_int xexited;       /* spinners that checked their object and exited */
  atomic_bool xcollected;   /* the controller's collect() returned */
} spin;

/* units steps of a 64-bit LCG: a dependent multiply-add chain the compiler
 * can neither vectorise nor shorten (the empty asm hides x from it). */
static inline uint64_t spin_work(uint64_t x, int units) {
  for (int i = 0; i < units; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    __asm__ volatile("" : "+r"(x));
  }
  return x;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The time of one spinner iteration (poll_every units and a poll) on the
 * calling thread: the median of SPIN_CALIBRATE_RUNS averages, each over
 * SPIN_CALIBRATE_NS (and at least one iteration), so that another
 * process's slice of the machine does not count. */
static double spin_calibrate(int poll_every) {
  double t[SPIN_CALIBRATE_RUNS];
  uint64_t x = 1;
  for (int r = 0; r < SPIN_CALIBRATE_RUNS; r++) {
    uint64_t polls = 0, t0 = now_ns(), t1;
    do {
      x = spin_work(x, poll_every);
      ref_poll();
      polls++;
    } while ((t1 = now_ns()) - t0 < SPIN_CALIBRATE_NS);
    t[r] = (double)(t1 - t0) / (double)polls;
    for (int k = r; k > 0 && t[k] < t[k - 1]; k--) {
      double y = t[k];
      t[k] = t[k - 1];
      t[k - 1] = y;
    }
  }
  __asm__ volatile("" : : "r"(x));
  return t[SPIN_CALIBRATE_RUNS / 2];
}

REF_FUNC(spinner_info, "wl.spinner", 1, LIVE(0));

static void spinner(void *arg) {
  REF_FRAME(f, spinner_info);
  struct wl_instance *w = arg;
  spin *s = w->spin;
  node *nd = ref_alloc(&node_type);
  if (nd) nd->canary = SPIN_CANARY;
  f.slot[0] = nd;
  atomic_fetch_add(&s->xrunning, 1);
  uint64_t x = (uint64_t)(uintptr_t)nd;
  if (s->poll_every > 0) {
    while (!atomic_load_explicit(&s->xstop, memory_order_relaxed)) {
      x = spin_work(x, s->poll_every);
      ref_poll();
    }
  } else { /* never polls: the same work between the checks of xstop, no safepoint */
    while (!atomic_load_explicit(&s->xstop, memory_order_relaxed))
      x = spin_work(x, WL_DEFAULT_POLL_EVERY);
  }
  __asm__ volatile("" : : "r"(x));
  nd = f.slot[0];
  if (!nd || nd->canary != SPIN_CANARY)
    fail(w, "spinner: its object lost its canary (freed?)", 0, 0);
  atomic_fetch_add(&s->xexited, 1);
}

/* Waits for every spinner to run, then collects. It waits polling, not
 * yielding, so that it keeps the thread it started on (normally the
 * ref_init thread: it is queued first) while the other threads steal the
 * spinners; after SPIN_WAIT_NS it yields, in case none is looking. */
static void spin_controller(void *arg) {
  struct wl_instance *w = arg;
  spin *s = w->spin;
  uint64_t t0 = now_ns();
  while (atomic_load(&s->xrunning) < s->spinners && !atomic_load(&s->xstop)) {
    if (now_ns() - t0 < SPIN_WAIT_NS) ref_poll();
    else ref_yield();
  }
  if (atomic_load(&s->xstop)) return; /* a spinner could not be made */
  s->collect(s->collect_arg);
  atomic_store(&s->xcollected, true);
  atomic_store(&s->xstop, 1);
}

/* One round: the controller, then the spinners (if a goroutine cannot be
 * made, the ones made are stopped at once and the round fails). */
static int spin_collect(struct wl_instance *w, wl_collect_fn collect, void *arg, char *err,
                        size_t errlen) {
  spin *s = w->spin;
  s->collect = collect;
  s->collect_arg = arg;
  atomic_store(&s->xrunning, 0);
  atomic_store(&s->xstop, 0);
  atomic_store(&s->xexited, 0);
  atomic_store(&s->xcollected, false);
  int made = 0;
  bool started = ref_go(spin_controller, w) != NULL;
  while (started && made < s->spinners && ref_go(spinner, w)) made++;
  if (!started || made < s->spinners) {
    started = false;
    atomic_store(&s->xstop, 1);
  }
  size_t parked = ref_run();
  if (!started || parked != (size_t)w->p.n || atomic_load(&s->xexited) != made ||
      !atomic_load(&s->xcollected)) {
    snprintf(err, errlen, "spin: %d of %d spinners made and %d exited, %s, %zu of %lld readers "
             "parked%s%s", made, s->spinners, atomic_load(&s->xexited),
             atomic_load(&s->xcollected) ? "collected" : "no collection", parked,
             (long long)w->p.n, started ? "" : ": ", started ? "" : ref_error());
    return -1;
  }
  return 0;
}

static wl_instance *spin_attach(struct wl_instance *w, char *err, size_t errlen) {
  spin *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    wl_finish(w, NULL, 0);
    return NULL;
  }
  s->spinners = ref_get_config()->mutators - 1;
  s->poll_every = w->p.poll_every;
  s->poll_ns = s->poll_every > 0 ? spin_calibrate(s->poll_every) : 0;
  w->spin = s;
  return w;
}

/* ---------------------------------------------------------------------------
 * Round-trip histograms: log-linear buckets, bounded memory however many
 * round trips a run makes. Values below HIST_SUB ns have a bucket each;
 * above, each power of two is cut into HIST_SUB equal buckets, so a
 * bucket's width is under 1/HIST_SUB of its values (1.6%). The maximum is
 * kept exactly.
 * ------------------------------------------------------------------------- */

#define HIST_SUB_BITS 6
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

typedef struct rtt_hist {
  uint64_t count, max;
  uint64_t bucket[HIST_BUCKETS];
} rtt_hist;

static size_t hist_index(uint64_t v) {
  if (v < HIST_SUB) return (size_t)v;
  int e = 63 - __builtin_clzll(v); /* >= HIST_SUB_BITS */
  uint64_t sub = (v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
  return HIST_SUB + (size_t)(e - HIST_SUB_BITS) * HIST_SUB + (size_t)sub;
}

/* The middle of bucket i's values. */
static double hist_value(size_t i) {
  if (i < HIST_SUB) return (double)i;
  size_t k = i - HIST_SUB;
  int shift = (int)(k / HIST_SUB);
  double lo = (double)((HIST_SUB + k % HIST_SUB) << shift), width = (double)(1ull << shift);
  return lo + (width - 1) / 2;
}

static void hist_add(rtt_hist *h, uint64_t v) {
  h->bucket[hist_index(v)]++;
  h->count++;
  if (v > h->max) h->max = v;
}

/* The q-quantile (0 < q <= 1): the smallest recorded value with at least
 * ceil(q * count) values at or below it, to the bucket's precision, never
 * above the maximum; 0 when nothing was recorded. */
static double hist_quantile(const rtt_hist *h, double q) {
  if (h->count == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999), seen = 0;
  if (rank < 1) rank = 1;
  for (size_t i = 0; i < HIST_BUCKETS; i++) {
    if ((seen += h->bucket[i]) >= rank) {
      double v = hist_value(i);
      return v < (double)h->max ? v : (double)h->max;
    }
  }
  return (double)h->max;
}

/* ---------------------------------------------------------------------------
 * GoroutineLatency: round trips across two Ps while collections run
 *
 * Idle's n readers stay parked. Each timed collection is run by a driver
 * goroutine while a pinger and an echo play ping-pong over two channels of
 * capacity 1. One round trip: the pinger reads the clock, sends a message
 * on the request channel, and waits for the echo's answer on the reply
 * channel; the echo, waiting on the request channel, sends the message
 * back stamped with its thread (pthread_self); the pinger reads the clock
 * again. So a round trip is two sends and two receives and a cache-line
 * hand-off each way between two threads. Both wait without parking, by a
 * non-blocking receive and ref_yield (a safepoint, and a switch to another
 * goroutine of its P when there is one), because a parked receiver is
 * readied on its sender's P and the pair would soon share one. A round
 * trip answered on the pinger's own thread (the pair on one P, as it may
 * start) is counted apart (rtt_local_count) and not timed. Whether a
 * timed one overlapped a collection (a pause, or a concurrent cycle's
 * mark) is told by ref_gc_seq() read before and after it. The pinger's
 * only safepoints lie inside its round trips, so every stop-the-world
 * pause falls inside one.
 *
 * The driver naps (ref_sleep: it gives its P up, so an idle M steals one
 * of a pair that shares a P) until LAT_BEFORE round trips crossed threads,
 * collects, and then lets the pair run on for LAT_AFTER more and for at
 * least as long as the collection took, before it stops it: so the round
 * trips outside collections are exposed to as much of the machine's other
 * load (other processes, the OS) as those overlapping one, and their
 * maxima compare. So an iteration's ping-pong is bounded: about
 * LAT_BEFORE + LAT_AFTER round trips outside the collection and at most
 * LAT_AFTER_MAX_NS after it, and those that fit in the collection. The
 * driver shares a P with one of the pair: while a concurrent cycle marks,
 * ref_gc waits by yielding, so that one waits a driver turn per yield (a
 * cost this runtime's ref_gc puts on its P). With one mutator no two
 * goroutines run at once: setup refuses it (wl_desc.min_mutators), and so
 * does the bench's plan. All three goroutines are made for each
 * collection and exit after it; nothing allocates after the collection,
 * so ref_gc_last() is the timed cycle.
 * ------------------------------------------------------------------------- */

#define LAT_BEFORE 256            /* round trips across threads before the collection */
#define LAT_AFTER 256             /* and after it */
#define LAT_NAP_NS 20000          /* the driver's sleep between looks */
#define LAT_WAIT_NS 10000000000ull /* its limit on each wait: 10 s */
#define LAT_AFTER_MAX_NS 1000000000ull /* the run-on after a collection: at most 1 s */

enum { LAT_REQ, LAT_REPLY };

typedef struct lat_msg {
  uint64_t seq;                 /* the round trip's number; 0 tells the echo to exit */
  pthread_t thread;             /* the echo's thread when it answered */
} lat_msg;

typedef struct lat {
  ref_chan *ch[2];              /* LAT_REQ, LAT_REPLY: a registered root range */
  wl_collect_fn collect;
  void *collect_arg;
  atomic_bool xstop;            /* the driver tells the pinger to stop */
  atomic_bool xabort;           /* a goroutine of the round could not be made */
  atomic_bool xcollected;       /* the driver's collect() returned */
  atomic_int xexited;           /* pinger, echo and driver that returned */
  _Atomic uint64_t xcross;      /* round trips timed, every round */
  /* Written by the pinger only; read by the main thread after ref_run. */
  uint64_t local;               /* round trips answered on the pinger's thread */
  rtt_hist out, gc;             /* outside any collection / overlapping one */
} lat;

static bool lat_try_recv(ref_chan *c, lat_msg *m) {
  ref_case cs = {c, REF_RECV, m, false};
  return ref_select(&cs, 1, true) == 0;
}

static void lat_record(lat *l, uint64_t ns, bool in_gc, bool local) {
  if (local) {
    l->local++;
    return;
  }
  hist_add(in_gc ? &l->gc : &l->out, ns);
  atomic_fetch_add_explicit(&l->xcross, 1, memory_order_relaxed);
}

static void lat_ping(void *arg) {
  struct wl_instance *w = arg;
  lat *l = w->lat;
  lat_msg m;
  for (uint64_t seq = 1; !atomic_load_explicit(&l->xstop, memory_order_relaxed); seq++) {
    uint64_t s0 = ref_gc_seq(), t0 = now_ns();
    m = (lat_msg){seq, pthread_self()};
    ref_chan_send(l->ch[LAT_REQ], &m);
    while (!lat_try_recv(l->ch[LAT_REPLY], &m)) ref_yield();
    uint64_t t1 = now_ns(), s1 = ref_gc_seq();
    if (m.seq != seq) {
      fail(w, "latency: round trip %llu was answered with %llu", seq, m.seq);
      atomic_store(&l->xabort, true);
      break;
    }
    lat_record(l, t1 - t0, (s0 & 1) || s1 != s0, pthread_equal(m.thread, pthread_self()));
  }
  if (!atomic_load(&l->xabort)) ref_chan_send(l->ch[LAT_REQ], &(lat_msg){0, pthread_self()});
  atomic_fetch_add(&l->xexited, 1);
}

static void lat_echo(void *arg) {
  lat *l = ((struct wl_instance *)arg)->lat;
  lat_msg m;
  for (;;) {
    while (!lat_try_recv(l->ch[LAT_REQ], &m)) {
      if (atomic_load_explicit(&l->xabort, memory_order_relaxed)) goto out;
      ref_yield();
    }
    if (m.seq == 0) break;
    m.thread = pthread_self();
    ref_chan_send(l->ch[LAT_REPLY], &m);
  }
out:
  atomic_fetch_add(&l->xexited, 1);
}

/* Naps until `more` round trips crossed threads after the call and at
 * least min_ns passed; false after LAT_WAIT_NS or when the round is
 * aborted. */
static bool lat_wait_cross(lat *l, uint64_t more, uint64_t min_ns) {
  uint64_t want = atomic_load(&l->xcross) + more, t0 = now_ns();
  while (atomic_load(&l->xcross) < want || now_ns() - t0 < min_ns) {
    if (atomic_load(&l->xabort) || now_ns() - t0 > LAT_WAIT_NS) return false;
    ref_sleep(LAT_NAP_NS);
  }
  return true;
}

static void lat_driver(void *arg) {
  struct wl_instance *w = arg;
  lat *l = w->lat;
  if (!lat_wait_cross(l, LAT_BEFORE, 0)) {
    fail(w, "latency: fewer than %llu round trips crossed mutator threads in %llu s before the "
         "collection", LAT_BEFORE, LAT_WAIT_NS / 1000000000u);
  } else {
    uint64_t t0 = now_ns();
    l->collect(l->collect_arg);
    atomic_store(&l->xcollected, true);
    uint64_t took = now_ns() - t0;
    if (!lat_wait_cross(l, LAT_AFTER, took < LAT_AFTER_MAX_NS ? took : LAT_AFTER_MAX_NS))
      fail(w, "latency: fewer than %llu round trips crossed mutator threads in %llu s after the "
           "collection", LAT_AFTER, LAT_WAIT_NS / 1000000000u);
  }
  atomic_store(&l->xstop, true);
  atomic_fetch_add(&l->xexited, 1);
}

/* One round: the driver, the echo and the pinger, queued in that order on
 * the calling thread's P (the other Ms steal from it). */
static int lat_collect(struct wl_instance *w, wl_collect_fn collect, void *arg, char *err,
                       size_t errlen) {
  lat *l = w->lat;
  l->collect = collect;
  l->collect_arg = arg;
  atomic_store(&l->xstop, false);
  atomic_store(&l->xabort, false);
  atomic_store(&l->xcollected, false);
  atomic_store(&l->xexited, 0);
  static const ref_gofn fns[] = {lat_driver, lat_echo, lat_ping};
  int made = 0;
  while (made < 3 && ref_go(fns[made], w)) made++;
  if (made < 3) atomic_store(&l->xabort, true);
  size_t parked = ref_run();
  if (made < 3 || parked != (size_t)w->p.n || atomic_load(&l->xexited) != made ||
      !atomic_load(&l->xcollected) || w->failures) {
    snprintf(err, errlen, "latency: %d of 3 goroutines made and %d exited, %s, %zu of %lld "
             "readers parked%s%s", made, atomic_load(&l->xexited),
             atomic_load(&l->xcollected) ? "collected" : "no collection", parked,
             (long long)w->p.n, made < 3 || w->failures ? ": " : "",
             made < 3 ? ref_error() : w->failure);
    return -1;
  }
  return 0;
}

static wl_instance *lat_attach(struct wl_instance *w, char *err, size_t errlen) {
  lat *l = calloc(1, sizeof *l);
  if (!l) {
    snprintf(err, errlen, "out of memory");
    wl_finish(w, NULL, 0);
    return NULL;
  }
  w->lat = l;
  ref_add_root(l->ch, sizeof l->ch); /* before the first channel: the second may collect */
  for (int i = 0; i < 2; i++) {
    ref_chan *c = ref_chan_make_size(sizeof(lat_msg), 1);
    if (!c) {
      snprintf(err, errlen, "setup: %s", ref_error());
      wl_finish(w, NULL, 0);
      return NULL;
    }
    ref_store((void **)&l->ch[i], c);
  }
  return w;
}

static void lat_detach(struct wl_instance *w) {
  if (!w->lat) return;
  ref_remove_root(w->lat->ch);
  free(w->lat);
  w->lat = NULL;
}

static size_t lat_metrics(const lat *l, wl_metric *out, size_t max) {
  const wl_metric m[] = {
      {"rtt_p50_ns", hist_quantile(&l->out, 0.50)},
      {"rtt_p99_ns", hist_quantile(&l->out, 0.99)},
      {"rtt_max_ns", (double)l->out.max},
      {"rtt_count", (double)l->out.count},
      {"rtt_gc_p50_ns", hist_quantile(&l->gc, 0.50)},
      {"rtt_gc_p99_ns", hist_quantile(&l->gc, 0.99)},
      {"rtt_gc_max_ns", (double)l->gc.max},
      {"rtt_gc_count", (double)l->gc.count},
      {"rtt_local_count", (double)l->local}};
  if (max < REF_ARRAY_SIZE(m)) return 0;
  memcpy(out, m, sizeof m);
  return REF_ARRAY_SIZE(m);
}

int wl_collect(wl_instance *w, wl_collect_fn collect, void *arg, char *err, size_t errlen) {
  if (w->spin) return spin_collect(w, collect, arg, err, errlen);
  if (w->lat) return lat_collect(w, collect, arg, err, errlen);
  collect(arg);
  return 0;
}

size_t wl_metrics(const wl_instance *w, wl_metric *out, size_t max) {
  if (w->lat) return lat_metrics(w->lat, out, max);
  if (!w->spin || max < 2) return 0;
  out[0] = (wl_metric){"spinners", w->spin->spinners};
  out[1] = (wl_metric){"poll_interval_ns", w->spin->poll_ns};
  return 2;
}

/* ---------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------- */

void wl_resolve(const wl_desc *d, const wl_params *in, wl_params *out) {
  *out = *in;
  if (out->depth < 0) out->depth = d->defaults.depth;
  if (out->frame_bytes < 0) out->frame_bytes = d->defaults.frame_bytes;
  if (out->slots < 0) out->slots = d->defaults.slots;
  if (out->heap_per_g < 0) out->heap_per_g = d->defaults.heap_per_g;
  if (out->wake < 0) out->wake = d->defaults.wake;
  if (out->dirty < 0) out->dirty = d->defaults.dirty;
  if (out->poll_every < 0) out->poll_every = WL_DEFAULT_POLL_EVERY;
}

uint64_t wl_estimate_bytes(const wl_desc *d, const wl_params *p) {
  /* A parked reader touches its top stack page (4K, or 16K/64K on some
   * arm64 kernels) and whatever its frames reach beyond it, plus its G,
   * channel, reader object and nodes. */
  uint64_t frame = 32 + 8 * (uint64_t)p->slots + (uint64_t)p->frame_bytes + 96;
  uint64_t depth = (uint64_t)p->depth;
  if (strcmp(d->name, "GoroutineSkewed") == 0) depth += 256 / 100 + 1; /* 1% at depth 256 */
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t stack = align_up(1024 + depth * frame + (uint64_t)p->dirty, page);
  uint64_t heap = 64 + 128 + (uint64_t)p->heap_per_g * 2 + (uint64_t)p->heap_per_g / 8;
  return (uint64_t)p->n * (stack + 256 + heap);
}

#define WORKLOAD(NAME, KIND, DEPTH, FBYTES, SLOTS, HEAP, WAKE, DIRTY, SUMMARY)               \
  static wl_instance *setup_##NAME(const wl_params *p, char *err, size_t errlen) {           \
    wl_params q;                                                                              \
    wl_resolve(&desc_##NAME, p, &q);                                                          \
    return setup_kind(&desc_##NAME, KIND, &q, err, errlen);                                   \
  }                                                                                           \
  static const wl_desc desc_##NAME = {                                                       \
      #NAME, SUMMARY, {0, DEPTH, FBYTES, SLOTS, HEAP, 0, WAKE, DIRTY, 0}, setup_##NAME, 1};

#define DECLARE(NAME) static const wl_desc desc_##NAME;
DECLARE(GoroutineSelect)
DECLARE(GoroutineBlocking)
DECLARE(GoroutineForRange)
DECLARE(GoroutineIdle)
DECLARE(GoroutineDeep)
DECLARE(GoroutineSkewed)
DECLARE(GoroutinePointerDense)
DECLARE(GoroutineParked)
DECLARE(GoroutineDirtyStack)
DECLARE(GoroutineManyIdle)
DECLARE(GoroutineSpin)
DECLARE(GoroutineLatency)

WORKLOAD(GoroutineSelect, K_SELECT, 0, 0, 1, 0, 0, 0,
         "readers select on their own channel and a shared quit channel")
WORKLOAD(GoroutineBlocking, K_BLOCKING, 0, 0, 1, 0, 0, 0, "readers block receiving on their channel")
WORKLOAD(GoroutineForRange, K_FORRANGE, 0, 0, 1, 0, 0, 0, "readers range over their channel")
WORKLOAD(GoroutineIdle, K_IDLE, 0, 0, 1, 0, 0, 0, "readers all wait on one shared channel")
WORKLOAD(GoroutineDeep, K_BLOCKING, 64, 64, 2, 0, 0, 0, "Blocking readers 64 frames deep")
WORKLOAD(GoroutineSkewed, K_BLOCKING, 0, 64, 2, 0, 0, 0,
         "Blocking readers; 1% of them 256 frames deep (load imbalance)")
WORKLOAD(GoroutinePointerDense, K_BLOCKING, 16, 0, 64, 1024, 0, 0,
         "Blocking readers 16 frames deep, every frame slot a live pointer")
WORKLOAD(GoroutineParked, K_PARKED, 0, 0, 1, 0, 0.01, 0,
         "Blocking readers; each iteration wakes a seeded fraction --wake of them (default 0.01)")
WORKLOAD(GoroutineDirtyStack, K_DIRTY, 0, 0, 1, 0, 0, 10240,
         "readers that rewrite --dirty bytes (default 10 KiB) of their parked frame every wake")
WORKLOAD(GoroutineManyIdle, K_IDLE, 0, 0, 1, 0, 0, 0,
         "Idle at go-gcbench's manyidlegs size: run with --n=500k; never woken")

/* Spin: Idle's readers, and the timed collections from a goroutine
 * (spin_collect) while spinners hold the other mutator threads. */
static wl_instance *setup_GoroutineSpin(const wl_params *p, char *err, size_t errlen) {
  wl_params q;
  wl_resolve(&desc_GoroutineSpin, p, &q);
  wl_instance *w = setup_kind(&desc_GoroutineSpin, K_IDLE, &q, err, errlen);
  return w ? spin_attach(w, err, errlen) : NULL;
}
static const wl_desc desc_GoroutineSpin = {
    "GoroutineSpin", "Idle readers; each GC requested by a goroutine while one spinner per "
    "other mutator polls every --poll-every work units", {0, 0, 0, 1, 0, 0, 0, 0, 0},
    setup_GoroutineSpin, 1};

/* Latency: Idle's readers, and the timed collections from a driver
 * goroutine (lat_collect) while a pair plays ping-pong on two Ps. */
static wl_instance *setup_GoroutineLatency(const wl_params *p, char *err, size_t errlen) {
  if (ref_get_config()->mutators < WL_LATENCY_MIN_MUTATORS) {
    snprintf(err, errlen, "GoroutineLatency needs %d or more mutators, not %d: its ping-pong pair "
             "runs on two mutator threads at once", WL_LATENCY_MIN_MUTATORS,
             ref_get_config()->mutators);
    return NULL;
  }
  wl_params q;
  wl_resolve(&desc_GoroutineLatency, p, &q);
  wl_instance *w = setup_kind(&desc_GoroutineLatency, K_IDLE, &q, err, errlen);
  return w ? lat_attach(w, err, errlen) : NULL;
}
static const wl_desc desc_GoroutineLatency = {
    "GoroutineLatency", "Idle readers; each GC run by a goroutine while a pair plays channel "
    "ping-pong on two mutators (round-trip times in and outside GC)", {0, 0, 0, 1, 0, 0, 0, 0, 0},
    setup_GoroutineLatency, WL_LATENCY_MIN_MUTATORS};

const wl_desc *const wl_all[] = {
    &desc_GoroutineSelect, &desc_GoroutineBlocking, &desc_GoroutineForRange,
    &desc_GoroutineIdle,   &desc_GoroutineDeep,     &desc_GoroutineSkewed,
    &desc_GoroutinePointerDense, &desc_GoroutineParked, &desc_GoroutineDirtyStack,
    &desc_GoroutineManyIdle, &desc_GoroutineSpin, &desc_GoroutineLatency, NULL,
};

const wl_desc *wl_find(const char *name) {
  for (int i = 0; wl_all[i]; i++)
    if (strcmp(wl_all[i]->name, name) == 0) return wl_all[i];
  return NULL;
}
