/*
 * test_pacing.c: the GOGC trigger and the end of a cycle in the concurrent
 * modes, with checkmark and poison on (tu_config), at the mutator counts
 * ctest gives (STACKSCAN_MUTATORS 1, 2, 4), in both concurrent modes:
 *
 * - goroutines that allocate steadily at GOGC=100 and never call ref_gc
 *   complete cycles by themselves; every cycle seen started below its goal
 *   (the early trigger) and the heap's peak stayed within twice the goal,
 *   in bytes (the steep assists at the goal);
 * - a goroutine that stops allocating while a cycle marks, and only sleeps,
 *   sees the cycle end, the barrier off, with no allocation or ref_gc;
 * - a burst of allocation while the test holds the mark (no background
 *   work, no assists) passes the goal, and the cycle counts it;
 * - pausestats.c's MMU and percentile on pauses and holds given by hand.
 */
#include "testutil.h"

#include "gc.h" /* ref__debug_hold_mark, ref__mmu, ref__susp_* */

typedef struct node {
  uint64_t canary;
  struct node *next;
  uint64_t id;
} node;
static const uint64_t node_mask[1] = {0x2};
static const ref_type node_t = {sizeof(node), node_mask, "test.node"};
static const ref_type junk_t = {256, NULL, "test.junk"};

#define NG 4
#define ROUNDS 20000 /* 256-byte objects per goroutine: 20 MiB in all, ~5 goals */
#define LIVE 64      /* nodes each goroutine keeps */
/* A sleep loop's guard against a cycle that never ends: the test fails
 * after this many 200 us sleeps (at least 10 s) rather than hang. */
#define SLEEPS_MAX 50000

static uint64_t canary_of(uint64_t id) { return id * 0x9E3779B97F4A7C15ull ^ 0x2545F491; }

static _Atomic uint64_t next_id, failures, heap_cycles_seen, late_starts;
static _Atomic uint64_t max_over_goal_pct; /* the largest overshoot_bytes * 100 / goal_bytes seen */

static bool marking(void) { return __atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED) != 0; }

static node *new_node(void) {
  node *n = ref_alloc(&node_t);
  assert_non_null(n);
  n->id = atomic_fetch_add(&next_id, 1);
  n->canary = canary_of(n->id);
  return n;
}

/* Checks the last cycle once per cycle seen (written with the world
 * stopped, read with it running). */
static void look_at_last(uint64_t *seen) {
  const ref_gc_stats *st = ref_gc_last();
  if (st->cycle == *seen) return;
  *seen = st->cycle;
  if (st->reason != REF_GC_HEAP) return;
  atomic_fetch_add(&heap_cycles_seen, 1);
  if (st->start_bytes >= st->goal_bytes) atomic_fetch_add(&late_starts, 1);
  uint64_t pct = st->overshoot_bytes * 100 / st->goal_bytes, m = atomic_load(&max_over_goal_pct);
  while (pct > m && !atomic_compare_exchange_weak(&max_over_goal_pct, &m, pct)) {
  }
}

static size_t walk(const node *head) {
  size_t len = 0;
  for (; head; head = head->next, len++)
    if (head->canary != canary_of(head->id)) atomic_fetch_add(&failures, 1);
  return len;
}

/* slot 0: the goroutine's list of LIVE nodes, the oldest replaced as it goes. */
REF_FUNC(alloc_info, "test.allocator", 1, REF_SP(0x1));

static void allocator(void *arg) {
  (void)arg;
  REF_FRAME(f, alloc_info);
  uint64_t seen = 0;
  for (int i = 0; i < LIVE; i++) {
    node *n = new_node();
    ref_store((void **)&n->next, f.slot[0]);
    f.slot[0] = n;
  }
  for (int r = 0; r < ROUNDS; r++) {
    assert_non_null(ref_alloc(&junk_t));
    look_at_last(&seen);
    if (r % 64 == 0) { /* a new head, the tail dropped: garbage the cycles find */
      node *n = new_node(), *h = f.slot[0];
      ref_store((void **)&n->next, h);
      for (int i = 0; i < LIVE - 2 && h->next; i++) h = h->next;
      ref_store((void **)&h->next, NULL);
      f.slot[0] = n;
    }
    if (r % 16 == 0) ref_yield();
  }
  if (walk(f.slot[0]) != LIVE) atomic_fetch_add(&failures, 1);
}

static void start_mode(ref_mode mode) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_FRAMES, REF_MAPS_DIRECT, 2);
  cfg.mode = mode;
  cfg.gc_percent = 100;
  tu_start(&cfg);
  atomic_store(&failures, 0);
  atomic_store(&heap_cycles_seen, 0);
  atomic_store(&late_starts, 0);
  atomic_store(&max_over_goal_pct, 0);
}

static void run_steady(ref_mode mode) {
  start_mode(mode);
  for (int i = 0; i < NG; i++) assert_non_null(ref_go(allocator, NULL));
  assert_int_equal(ref_run(), 0);
  assert_int_equal(atomic_load(&failures), 0);
  const ref_gc_stats *st = ref_gc_last();
  assert_int_equal(st->cycles_user, 0);
  assert_true(st->cycles_heap >= 3);             /* cycles ended without ref_gc */
  assert_true(atomic_load(&heap_cycles_seen) >= 2);
  assert_int_equal(atomic_load(&late_starts), 0); /* every one began before its goal */
  assert_true(atomic_load(&max_over_goal_pct) <= 100); /* peak <= 2 x goal */
  ref_gc(); /* outside ref_run: ends one still marking, then a full cycle */
  assert_false(marking());
}

static void test_steady_rescan(void **s) {
  (void)s;
  run_steady(REF_MODE_CONCURRENT_RESCAN);
}
static void test_steady_hybrid(void **s) {
  (void)s;
  run_steady(REF_MODE_CONCURRENT_HYBRID);
}

/* ---------------------------------------------------------------------------
 * A cycle ends by itself
 *
 * With the mark held, the goroutine allocates until the trigger starts a
 * cycle (marking() turns true at its first pause), then `extra` bytes more,
 * lets the mark go and only sleeps: no allocation, no ref_gc. The cycle must
 * end (the barrier off, the cycle count up by one).
 * ------------------------------------------------------------------------- */

static size_t extra;          /* bytes allocated after the trigger, held */
static uint64_t goal_at_start, sleeps;
static bool ended;

static void stopper(void *arg) {
  (void)arg;
  ref_heap_stats hs;
  ref_heap_stats_get(&hs);
  goal_at_start = hs.heap_goal;
  uint64_t c0 = ref_gc_last()->cycle;
  atomic_store(&ref__debug_hold_mark, true);
  while (!marking()) assert_non_null(ref_alloc(&junk_t));
  for (size_t b = 0; b < extra; b += junk_t.size) assert_non_null(ref_alloc(&junk_t));
  atomic_store(&ref__debug_hold_mark, false);
  for (sleeps = 0; marking() && sleeps < SLEEPS_MAX; sleeps++) ref_sleep(200000);
  ended = !marking() && ref_gc_last()->cycle == c0 + 1;
}

static const ref_gc_stats *run_stopper(ref_mode mode, size_t extra_bytes) {
  start_mode(mode);
  extra = extra_bytes;
  ended = false;
  assert_non_null(ref_go(stopper, NULL));
  assert_int_equal(ref_run(), 0);
  atomic_store(&ref__debug_hold_mark, false);
  assert_true(ended);
  const ref_gc_stats *st = ref_gc_last();
  assert_int_equal(st->reason, REF_GC_HEAP);
  assert_int_equal(st->goal_bytes, goal_at_start);
  assert_true(st->start_bytes < st->goal_bytes);
  return st;
}

static void run_ends_by_itself(ref_mode mode) {
  const ref_gc_stats *st = run_stopper(mode, 0);
  assert_int_equal(st->overshoot_bytes, 0); /* it ended before the goal */
  assert_int_equal(st->cycles_overshot, 0);
}

static void test_ends_by_itself_rescan(void **s) {
  (void)s;
  run_ends_by_itself(REF_MODE_CONCURRENT_RESCAN);
}
static void test_ends_by_itself_hybrid(void **s) {
  (void)s;
  run_ends_by_itself(REF_MODE_CONCURRENT_HYBRID);
}

/* Twice the goal allocated while the mark is held: the heap at termination
 * is over the goal by at least what was allocated past it. */
static void run_overshoot(ref_mode mode) {
  const ref_gc_stats *st = run_stopper(mode, (size_t)8 << 20);
  assert_true(st->goal_bytes <= (uint64_t)4 << 20); /* the minimum heap's: 2 x goal allocated */
  assert_true(st->start_bytes + extra > st->goal_bytes);
  assert_true(st->overshoot_bytes >= st->start_bytes + extra - st->goal_bytes);
  assert_int_equal(st->cycles_overshot, 1);
}

static void test_overshoot_rescan(void **s) {
  (void)s;
  run_overshoot(REF_MODE_CONCURRENT_RESCAN);
}
static void test_overshoot_hybrid(void **s) {
  (void)s;
  run_overshoot(REF_MODE_CONCURRENT_HYBRID);
}

/* stw keeps its trigger at the goal. */
static void test_stw_trigger_is_the_goal(void **s) {
  (void)s;
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_FRAMES, REF_MAPS_DIRECT, 2);
  tu_start(&cfg);
  ref_heap_stats hs;
  ref_heap_stats_get(&hs);
  assert_int_equal(hs.heap_trigger, hs.heap_goal);
  ref_shutdown();
  cfg.mode = REF_MODE_CONCURRENT_HYBRID;
  tu_start(&cfg);
  ref_heap_stats_get(&hs);
  assert_int_equal(hs.heap_trigger, hs.heap_goal / 10 * 7); /* live 0 at ref_init */
}

static bool near(double x, double want) { return x > want - 1e-9 && x < want + 1e-9; }

/* The worst 1 ms window of pauses given by hand. */
static void test_mmu(void **s) {
  (void)s;
  const uint64_t us = 1000, base = 5000 * us;
  ref__interval one = {base, base + 100 * us};
  assert_true(near(ref__mmu(&one, 1, REF_MMU_WINDOW_NS), 0.9));
  /* 300 us, a 500 us gap, 300 us: a window holds 500 us of them at most */
  ref__interval two[2] = {{base, base + 300 * us}, {base + 800 * us, base + 1100 * us}};
  assert_true(near(ref__mmu(two, 2, REF_MMU_WINDOW_NS), 0.5));
  ref__interval far[2] = {{base, base + 300 * us}, {base + 5000 * us, base + 5400 * us}};
  assert_true(near(ref__mmu(far, 2, REF_MMU_WINDOW_NS), 0.6));
  ref__interval whole = {base, base + 2000 * us};
  assert_true(near(ref__mmu(&whole, 1, REF_MMU_WINDOW_NS), 0.0));
  /* the worst window is the one that starts at the second's start */
  ref__interval three[3] = {{base, base + 100 * us},
                            {base + 600 * us, base + 800 * us},
                            {base + 1400 * us, base + 1600 * us}};
  assert_true(near(ref__mmu(three, 3, REF_MMU_WINDOW_NS), 0.6));
}

/* The 99th percentile of holds given by hand lies within its bucket's
 * 12.5%, the largest is exact, and a batch counts each goroutine. */
static void test_suspend_percentile(void **s) {
  (void)s;
  static ref__susp_hist a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  assert_int_equal(ref__susp_quantile(&a, 99), 0);
  ref__susp_add(&a, 100, 98);  /* a batch of 98 held 100 ns */
  ref__susp_add(&b, 100, 1);
  ref__susp_add(&b, 10000, 1); /* one held 10 us: above the 99th */
  ref__susp_merge(&a, &b);
  assert_int_equal(a.max, 10000);
  uint64_t p99 = ref__susp_quantile(&a, 99);
  assert_true(p99 >= 100 && p99 <= 112);
  assert_int_equal(ref__susp_quantile(&a, 100), 10000);
  ref__susp_add(&a, 5, 1000); /* exact below 8 */
  assert_int_equal(ref__susp_quantile(&a, 50), 5);
  ref__susp_add(&a, UINT64_MAX, 1); /* past the last bucket's range */
  assert_int_equal(ref__susp_quantile(&a, 100), UINT64_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_steady_rescan, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_steady_hybrid, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_ends_by_itself_rescan, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_ends_by_itself_hybrid, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_overshoot_rescan, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_overshoot_hybrid, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_stw_trigger_is_the_goal, tu_teardown_shutdown),
      cmocka_unit_test(test_mmu),
      cmocka_unit_test(test_suspend_percentile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
