/*
 * test_concurrent.c: the concurrent modes. Goroutines rewire linked lists in
 * the heap through the barrier (insert, unlink, cross links received over a
 * channel) while cycles mark -- started by a small GOGC goal, ended by
 * themselves or by whichever allocation finds the mark done, and by a
 * goroutine's ref_gc --
 * with the checkmark verifier after every cycle and poison on sweep; every
 * list is walked and its canaries checked as it goes. Both concurrent modes
 * x scan conservative/frames, at the mutator counts ctest gives
 * (STACKSCAN_MUTATORS 1, 2, 4). And the verifier must be able to fail: a
 * store that bypasses the barrier the mode needs is reported, naming the
 * object and its referrer.
 */
#include "testutil.h"

typedef struct lnode {
  uint64_t canary;
  struct lnode *next;
  struct lnode *other;   /* a cross link, perhaps into another goroutine's list */
  uint64_t id;
} lnode;
static const uint64_t lnode_mask[1] = {0x6};
static const ref_type lnode_t = {sizeof(lnode), lnode_mask, "test.lnode"};
static const uint64_t ptr_mask[1] = {0x1};
static const ref_type ptr_t = {sizeof(void *), ptr_mask, "test.ptr"};

#define NG 8
#define ROUNDS (REF_TSAN || REF_ASAN ? 400 : 2000)
#define MINLEN 16
#define MAXLEN 64

#include "gc.h" /* the test hooks: ref__debug_in_mark, _in_sweep, ref__refill_sweeps */

/* Goroutine 0's cycles mark for a while with the others running: it yields
 * before it lets the mark end (the background workers are held). */
static void mark_while_others_run(void) {
  if (ref_curg())
    for (int i = 0; i < 2 * NG; i++) ref_yield();
}

static uint64_t canary_of(uint64_t id) { return id * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995; }

static ref_chan *xch;          /* pointers handed between goroutines */
static _Atomic uint64_t next_id, checked, user_gcs;
/* Summed over the cycles the goroutines see (observe): work done while
 * others ran. */
static _Atomic uint64_t shades, stacks_running, cycle_seen;
static _Atomic int failures;
static _Atomic bool driver_done;

static void check_node(const lnode *n) {
  if (n->canary != canary_of(n->id)) atomic_fetch_add(&failures, 1);
  atomic_fetch_add_explicit(&checked, 1, memory_order_relaxed);
}

static lnode *new_node(void) {
  lnode *n = ref_alloc(&lnode_t);
  assert_non_null(n);
  n->id = atomic_fetch_add(&next_id, 1);
  n->canary = canary_of(n->id);
  return n;
}

/* Walks g's list, checking each node and the target of its cross link. */
static size_t walk(lnode *head) {
  size_t len = 0;
  for (lnode *n = head; n; n = n->next, len++) {
    check_node(n);
    if (n->other) check_node(n->other);
  }
  return len;
}

/* Adds the last cycle's figures once (ref_gc_last is written with the world
 * stopped, read with it running). Every goroutine looks after its
 * allocation and its yield, the driver after its ref_gc: a heap-triggered
 * cycle ends by itself and may replace the driver's before it looks. */
static void observe(void) {
  const ref_gc_stats *st = ref_gc_last();
  uint64_t seen = atomic_load(&cycle_seen);
  if (st->cycle <= seen || !atomic_compare_exchange_strong(&cycle_seen, &seen, st->cycle)) return;
  atomic_fetch_add(&shades, st->barrier_shades);
  atomic_fetch_add(&stacks_running, st->stacks_bg + st->stacks_self);
  if (st->stacks_scanned < st->stacks_bg + st->stacks_self + st->stacks_pause)
    atomic_fetch_add(&failures, 1);
  /* A cycle that scanned anything spent CPU on it; the pool's share is
   * among it. */
  uint64_t pool_cpu = 0;
  for (int i = 0; i < st->nworkers; i++) pool_cpu += st->worker[i].cpu_ns;
  if ((st->stacks_scanned > 0 && st->mark_cpu_ns == 0) || pool_cpu > st->mark_cpu_ns)
    atomic_fetch_add(&failures, 1);
  /* Three pauses, the last the sweep's end; the sweep ran between them. */
  uint64_t mx = st->pause1_ns > st->stw_ns ? st->pause1_ns : st->stw_ns;
  if (st->pause_sweep_ns == 0 ||
      st->pause_total_ns != st->pause1_ns + st->stw_ns + st->pause_sweep_ns ||
      st->pause_max_ns != (mx > st->pause_sweep_ns ? mx : st->pause_sweep_ns) ||
      st->total_ns < st->pause_total_ns + st->sweep_ns)
    atomic_fetch_add(&failures, 1);
}

static lnode *nth(lnode *head, size_t i) {
  while (i-- > 0 && head->next) head = head->next;
  return head;
}

/* slot 0: the list's head; slot 1: a pointer received from the channel. */
REF_FUNC(mut_info, "test.mutator", 2, REF_SP(0x3));

static void mutator(void *arg) {
  REF_FRAME(f, mut_info);
  uint64_t rng = (uint64_t)(uintptr_t)arg * 0x2545F4914F6CDD1Dull + 1;
  f.slot[0] = new_node();
  for (int i = 1; i < MINLEN; i++) {
    lnode *n = new_node();
    ref_store((void **)&n->next, f.slot[0]);
    f.slot[0] = n; /* a frame slot: no barrier */
  }
  static const ref_type junk_t = {256, NULL, "test.junk"};
  bool driver = (uintptr_t)arg == 0;
  /* The others go on while the driver runs its cycles. */
  for (int r = 0; r < ROUNDS || (!driver && !atomic_load(&driver_done)); r++) {
    assert_non_null(ref_alloc(&junk_t)); /* garbage: the GOGC trigger fires often */
    observe();
    size_t len = walk(f.slot[0]);
    lnode *at = nth(f.slot[0], ref__rand64(&rng) % len);
    switch (ref__rand64(&rng) % 4) {
    case 0: /* insert after at */
      if (len < MAXLEN) {
        lnode *n = new_node();
        ref_store((void **)&n->next, at->next);
        ref_store((void **)&at->next, n);
      }
      break;
    case 1: /* unlink at's successor: garbage unless a cross link holds it */
      if (len > MINLEN && at->next) ref_store((void **)&at->next, at->next->next);
      break;
    case 2: { /* offer one of ours; a full channel drops it */
      ref_case c = {xch, REF_SEND, &at, false};
      ref_select(&c, 1, true);
      break;
    }
    default: { /* take one, cross-link it (or clear the link) */
      ref_case c = {xch, REF_RECV, &f.slot[1], false};
      if (ref_select(&c, 1, true) < 0) f.slot[1] = NULL;
      ref_store((void **)&at->other, f.slot[1]);
      f.slot[1] = NULL;
      break;
    }
    }
    ref_yield(); /* one mutator: the others take turns */
    observe();
    if (driver && r % 100 == 99) {
      ref_gc(); /* a driver: yields while the cycle marks */
      atomic_fetch_add(&user_gcs, 1);
      observe();
    }
  }
  walk(f.slot[0]);
  if (driver) atomic_store(&driver_done, true);
}

static void run_mutators(ref_mode mode, ref_scan scan) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, scan, REF_MAPS_DIRECT, 2);
  cfg.mode = mode;
  cfg.gc_percent = 1; /* a cycle every few tens of KiB allocated */
  tu_start(&cfg);
  ref__debug_in_mark = mark_while_others_run;
  atomic_store(&failures, 0);
  atomic_store(&checked, 0);
  atomic_store(&user_gcs, 0);
  atomic_store(&shades, 0);
  atomic_store(&stacks_running, 0);
  atomic_store(&cycle_seen, 0);
  atomic_store(&driver_done, false);
  static struct { ref_chan *ch; } root;
  ref_add_root(&root, sizeof root);
  ref_store((void **)&root.ch, ref_chan_make(&ptr_t, 4)); /* a global: the barrier too */
  xch = root.ch;
  for (uintptr_t i = 0; i < NG; i++) assert_non_null(ref_go(mutator, (void *)i));
  assert_int_equal(ref_run(), 0);
  assert_int_equal(atomic_load(&failures), 0);
  assert_true(atomic_load(&checked) >= (uint64_t)NG * ROUNDS * MINLEN);
  assert_int_equal(atomic_load(&user_gcs), ROUNDS / 100);
  assert_true(atomic_load(&shades) > 0); /* the barrier greyed objects while cycles marked */
  assert_true(atomic_load(&stacks_running) > 0); /* stacks scanned with the world running */
  ref__debug_in_mark = NULL;
  ref_gc();
  ref_remove_root(&root);
}

static void test_rescan_conservative(void **s) {
  (void)s;
  run_mutators(REF_MODE_CONCURRENT_RESCAN, REF_SCAN_CONSERVATIVE);
}
static void test_rescan_frames(void **s) {
  (void)s;
  run_mutators(REF_MODE_CONCURRENT_RESCAN, REF_SCAN_FRAMES);
}
static void test_hybrid_conservative(void **s) {
  (void)s;
  run_mutators(REF_MODE_CONCURRENT_HYBRID, REF_SCAN_CONSERVATIVE);
}
static void test_hybrid_frames(void **s) {
  (void)s;
  run_mutators(REF_MODE_CONCURRENT_HYBRID, REF_SCAN_FRAMES);
}

/* ---------------------------------------------------------------------------
 * A missed barrier: the checkmark verifier must catch it
 *
 * Setup: a registered root holds h2, and h2->f holds x; nothing else does.
 * A goroutine calls ref_gc; in its cycle's mark, before anything is drained
 * (ref__debug_in_mark: h2 is grey from the first pause's root scan, x
 * white), the hook moves x where only the barrier the mode needs would
 * save it:
 *   hybrid: x into the goroutine's own frame slot (its stack is black: it
 *           was on a CPU at the first pause, and is not rescanned), then
 *           h2->f = NULL, whose deletion barrier shades x;
 *   rescan: x into a new object a (allocated black, never scanned) that a
 *           root holds, whose insertion barrier shades x; then h2->f = NULL.
 * With the barrier x survives; with the one store made plainly (the
 * test-only store that bypasses ref_store) the verifier names x and the
 * word that points at it. (The plain store is a relaxed atomic, as
 * ref_store's own store is: a worker reads the word at the same time, and
 * ThreadSanitizer would report that rather than let the verifier run.)
 * ------------------------------------------------------------------------- */

static struct { lnode *h2, *a; } mroot;
static void **keep;         /* the driver's frame slot */
static bool plain;          /* make the store the mode needs without the barrier */

static void missed_barrier_hook(void) {
  lnode *h2 = mroot.h2, *x = h2->next;
  if (ref_get_config()->mode == REF_MODE_CONCURRENT_HYBRID) {
    *keep = x; /* a stack store: no barrier in either mode */
    if (plain) __atomic_store_n(&h2->next, NULL, __ATOMIC_RELAXED); /* word-atomic, no barrier */
    else ref_store((void **)&h2->next, NULL);
  } else {
    lnode *a = new_node();
    if (plain) __atomic_store_n(&a->next, x, __ATOMIC_RELAXED);
    else ref_store((void **)&a->next, x);
    ref_store((void **)&mroot.a, a);
    ref_store((void **)&h2->next, NULL);
    *keep = a;
  }
}

REF_FUNC(mdriver_info, "test.missed_driver", 1, REF_SP(0x1));

static void missed_driver(void *arg) {
  (void)arg;
  REF_FRAME(f, mdriver_info);
  keep = &f.slot[0];
  ref_gc();
  lnode *n = f.slot[0];
  if (n->next) n = n->next; /* rescan: a, then x */
  check_node(n);
  ref_gc(); /* the freed x would fail its canary after this one's sweep */
  check_node(n);
}

static void run_missed(ref_mode mode, ref_scan scan, bool plain_store) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, scan, REF_MAPS_DIRECT, 1);
  cfg.mode = mode;
  cfg.gc_percent = -1; /* only the test's own cycles */
  tu_start(&cfg);
  atomic_store(&failures, 0);
  plain = plain_store;
  ref_add_root(&mroot, sizeof mroot);
  ref_store((void **)&mroot.h2, new_node());
  ref_store((void **)&mroot.h2->next, new_node());
  ref__debug_in_mark = missed_barrier_hook;
  assert_non_null(ref_go(missed_driver, NULL));
  assert_int_equal(ref_run(), 0);
  ref__debug_in_mark = NULL;
  assert_int_equal(atomic_load(&failures), 0);
  ref_remove_root(&mroot);
  memset(&mroot, 0, sizeof mroot);
}

static void missed_hybrid_child(void) { run_missed(REF_MODE_CONCURRENT_HYBRID, REF_SCAN_FRAMES, true); }
/* Both with scan=frames: a conservative rescan of the driver's stack may
 * find x in a word the hook's frame left below the frames called after it
 * (gcc's ASan build did, once the driver's wait loop gained a call level),
 * and keep it, as a conservative scan may. */
static void missed_rescan_child(void) {
  run_missed(REF_MODE_CONCURRENT_RESCAN, REF_SCAN_FRAMES, true);
}

static void test_barrier_saves_the_moved_object(void **s) {
  (void)s;
  for (int m = REF_MODE_CONCURRENT_RESCAN; m <= REF_MODE_CONCURRENT_HYBRID; m++)
    for (int sc = 0; sc < REF_NSCANS; sc++) {
      run_missed((ref_mode)m, (ref_scan)sc, false);
      ref_shutdown();
    }
}

static void test_checkmark_catches_missed_deletion_barrier(void **s) {
  (void)s;
  tu_expect_death(missed_hybrid_child, "unmarked by the collector but marked by the verifier");
  tu_expect_death(missed_hybrid_child, "stack word");
}

static void test_checkmark_catches_missed_insertion_barrier(void **s) {
  (void)s;
  tu_expect_death(missed_rescan_child, "unmarked by the collector but marked by the verifier");
  tu_expect_death(missed_rescan_child, "referenced by object");
}

/* ---------------------------------------------------------------------------
 * Goroutines born in mark grow allg under the stack jobs
 * ------------------------------------------------------------------------- */

/* The stack jobs are allg's array as the first pause found it (g.h): NBORN
 * goroutines created while the background workers are held (before they
 * claim a job) grow allg from 1024 to 4096 entries, moving it twice, and
 * the jobs must still read NPARKED parked goroutines' stacks, each the
 * only root of its node. Without the pin the jobs read a freed array. */
#define NPARKED 1000
#define NBORN 2000
static ref_chan *park_ch;

REF_FUNC(parked_info, "test.parked", 1, REF_SP(0x1));

static void parked(void *arg) {
  (void)arg;
  REF_FRAME(f, parked_info);
  f.slot[0] = new_node();
  ref_chan_recv(park_ch, NULL);
  check_node(f.slot[0]);
}

static void born_in_mark(void) {
  for (int i = 0; i < NBORN; i++) assert_non_null(ref_go(parked, NULL));
}

static void grow_driver(void *arg) {
  (void)arg;
  ref_gc();
  ref__debug_in_mark = NULL;
  ref_gc();
  ref_chan_close(park_ch);
}

static void run_born_in_mark(ref_mode mode) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_FRAMES, REF_MAPS_DIRECT, 2);
  cfg.mode = mode;
  tu_start(&cfg);
  atomic_store(&failures, 0);
  atomic_store(&checked, 0);
  static struct { ref_chan *ch; } root;
  ref_add_root(&root, sizeof root);
  ref_store((void **)&root.ch, ref_chan_make(&ptr_t, 0));
  park_ch = root.ch;
  for (int i = 0; i < NPARKED; i++) assert_non_null(ref_go(parked, NULL));
  assert_int_equal(ref_run(), NPARKED);
  ref__debug_in_mark = born_in_mark;
  assert_non_null(ref_go(grow_driver, NULL));
  assert_int_equal(ref_run(), 0);
  ref__debug_in_mark = NULL;
  assert_int_equal(atomic_load(&failures), 0);
  assert_int_equal(atomic_load(&checked), NPARKED + NBORN);
  ref_remove_root(&root);
  ref_shutdown();
}

static void test_born_in_mark_hybrid(void **s) {
  (void)s;
  run_born_in_mark(REF_MODE_CONCURRENT_HYBRID);
}

static void test_born_in_mark_rescan(void **s) {
  (void)s;
  run_born_in_mark(REF_MODE_CONCURRENT_RESCAN);
}

/* ---------------------------------------------------------------------------
 * The sweep runs with the world going
 *
 * A cycle's sweep starts after the termination pause's restart. Here the
 * hook (ref__debug_in_sweep, on the terminating M, before it sweeps)
 * allocates as a mutator would then: every span is still unswept, so each
 * refill sweeps spans itself until one of its class has room, and the
 * objects land in space the cycle freed, below the arena's top of before
 * the cycle, not in new spans. They are held by a registered root and must
 * survive the next cycles (checkmark and poison on); the cycle's counts
 * come out whole when ref_gc returns.
 * ------------------------------------------------------------------------- */

#define WGARBAGE 4000 /* lnodes freed by the cycle */
#define WALLOC 500    /* lnodes the hook allocates in its window */

static struct {
  lnode *n[WALLOC];
} wroot;
static uintptr_t arena_top_before;
static bool window_reused;

static void allocate_in_window(void) {
  window_reused = true;
  for (size_t i = 0; i < WALLOC; i++) {
    lnode *n = new_node();
    if ((uintptr_t)n >= arena_top_before) window_reused = false;
    ref_store((void **)&wroot.n[i], n);
  }
}

static void run_sweep_window(ref_mode mode) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_FRAMES, REF_MAPS_DIRECT, 2);
  cfg.mode = mode;
  cfg.gc_percent = -1; /* only these ref_gc calls */
  tu_start(&cfg);
  atomic_store(&failures, 0);
  memset(&wroot, 0, sizeof wroot); /* a root range is scanned conservatively: no old runtime's words */
  ref_add_root(&wroot, sizeof wroot);
  for (int i = 0; i < WGARBAGE; i++) assert_non_null(new_node());
  arena_top_before = ref__heap.arena_hi;
  uint64_t swept0 = atomic_load(&ref__refill_sweeps);
  ref__debug_in_sweep = allocate_in_window;
  ref_gc();
  ref__debug_in_sweep = NULL;
  assert_true(window_reused);
  assert_true(atomic_load(&ref__refill_sweeps) > swept0);
  const ref_gc_stats *st = ref_gc_last();
  assert_int_equal(st->objects_freed, WGARBAGE); /* the window's are live */
  assert_true(st->pause_sweep_ns > 0);
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < WGARBAGE; i++) assert_non_null(new_node());
    ref_gc();
    for (size_t i = 0; i < WALLOC; i++) check_node(wroot.n[i]);
  }
  assert_int_equal(atomic_load(&failures), 0);
  ref_remove_root(&wroot);
}

static void test_sweep_window_hybrid(void **s) {
  (void)s;
  run_sweep_window(REF_MODE_CONCURRENT_HYBRID);
}
static void test_sweep_window_rescan(void **s) {
  (void)s;
  run_sweep_window(REF_MODE_CONCURRENT_RESCAN);
}

/* The concurrent modes refuse what they cannot take yet, by name. */
static void test_mode_refusals(void **s) {
  (void)s;
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_FRAMES, REF_MAPS_DIRECT, 1);
  cfg.mode = REF_MODE_CONCURRENT_HYBRID;
  cfg.reuse = REF_REUSE_CLEAN;
  assert_int_equal(ref_init(&cfg), -1);
  assert_non_null(strstr(ref_error(), "concurrent-hybrid does not take reuse=clean"));
  cfg.reuse = REF_REUSE_OFF;
  cfg.preempt = REF_PREEMPT_ASYNC;
  assert_int_equal(ref_init(&cfg), -1);
  assert_non_null(strstr(ref_error(), "does not take preempt=async"));
  cfg.preempt = REF_PREEMPT_COOPERATIVE;
  cfg.bg_workers = -1;
  assert_int_equal(ref_init(&cfg), -1);
  assert_non_null(strstr(ref_error(), "bg_workers must be in 1..256"));
  cfg.bg_workers = REF_MAX_WORKERS + 1;
  assert_int_equal(ref_init(&cfg), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_rescan_conservative, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_rescan_frames, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_hybrid_conservative, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_hybrid_frames, tu_teardown_shutdown),
      cmocka_unit_test(test_barrier_saves_the_moved_object),
      cmocka_unit_test(test_checkmark_catches_missed_deletion_barrier),
      cmocka_unit_test(test_checkmark_catches_missed_insertion_barrier),
      cmocka_unit_test(test_born_in_mark_hybrid),
      cmocka_unit_test(test_born_in_mark_rescan),
      cmocka_unit_test_teardown(test_sweep_window_hybrid, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_sweep_window_rescan, tu_teardown_shutdown),
      cmocka_unit_test(test_mode_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
