/*
 * test_gogc.c: the GOGC trigger (ref_config.gc_percent).
 *
 *   - every allocation obeys the rule: it runs a cycle iff the heap's counted
 *     bytes were over the goal when it started (checked allocation by
 *     allocation);
 *   - a loop allocating millions of small garbage objects stays under a
 *     heap bounded by the goal, and the triggered cycles keep coming;
 *   - the goal after each cycle is Go's formula to the byte, from the cycle's
 *     stats, and follows a live set that grows by steps;
 *   - gc_percent < 0 (or STACKSCAN_GOGC=off) never triggers;
 *   - the minimum heap, 4 MiB scaled by gc_percent / 100, holds;
 *   - a cycle triggered inside an allocation by a goroutine whose pointers
 *     live only in frame records (scan=frames) keeps them, in every phase
 *     and stackmaps mode; so does one triggered on the scheduler stack;
 *   - the heap limit still collects when the goal lies beyond it.
 *
 * Runtimes run with the checkmark verifier and poisoning on.
 */
#include "gcutil.h"

#include <stdbool.h>

#define MIB ((size_t)1 << 20)
#define MIN_HEAP (4 * MIB)

static const ref_type leaf_t = {32, NULL, "gogc.leaf"}; /* garbage */
static const ref_type chunk_t = {4096, NULL, "gogc.chunk"};

typedef struct node {
  struct node *next;
  uint64_t canary;
  uint64_t pad[2];
} node;
static const uint64_t node_mask[1] = {0x1};
static const ref_type node_t = {sizeof(node), node_mask, "gogc.node"};

static void init_gogc(ref_phase ph, ref_scan sc, ref_stackmaps maps, int W, int pct,
                      size_t heap_max) {
  ref_config cfg;
  tu_config(&cfg, ph, sc, maps, W);
  cfg.gc_percent = pct;
  cfg.heap_max = heap_max;
  tu_start(&cfg);
}

static ref_heap_stats heap_stats(void) {
  ref_heap_stats hs;
  ref_heap_stats_get(&hs);
  return hs;
}

/* Go's goal, computed here from a cycle's stats. */
static uint64_t goal_of(const ref_gc_stats *st, int pct) {
  uint64_t base = st->bytes_live + st->stack_bytes + st->globals_bytes;
  uint64_t goal = st->bytes_live + base * (uint64_t)pct / 100;
  uint64_t min = MIN_HEAP * (uint64_t)pct / 100;
  return goal > min ? goal : min;
}

/* Allocates one object of type t and checks the trigger's rule on it: a
 * cycle starts inside the allocation iff the counted bytes were over the
 * goal, and that cycle is a heap-triggered one. Safe on goroutines (failures
 * are noted, not asserted). With several mutators another one's allocation
 * may run a cycle too, and reading the counts stops the world: one
 * allocation in 64 checks that being over the goal ran a cycle, made by
 * the trigger. */
static void *alloc_checked(const ref_type *t) {
  static _Atomic unsigned nchecked;
  if (tu_mutators() > 1 && atomic_fetch_add(&nchecked, 1) % 64 != 0) return ref_alloc(t);
  ref_heap_stats hs = heap_stats();
  const ref_gc_stats *st = ref_gc_last();
  uint64_t cycle = st->cycle, heap = st->cycles_heap;
  void *p = ref_alloc(t);
  bool over = hs.bytes_counted > hs.heap_goal, ran = st->cycle != cycle;
  if (!p) note_fail("allocation failed: %s", ref_error());
  else if (tu_mutators() > 1 && over && (!ran || st->cycles_heap == heap))
    note_fail("%zu bytes counted against a goal of %zu, and no heap cycle ran",
              hs.bytes_counted, hs.heap_goal);
  else if (tu_mutators() > 1)
    ;
  else if (ran != over)
    note_fail("%zu bytes counted against a goal of %zu, and a cycle %s", hs.bytes_counted,
              hs.heap_goal, ran ? "ran" : "did not run");
  else if (ran && (st->cycles_heap != heap + 1 || st->reason != REF_GC_HEAP))
    note_fail("cycle %llu ran with reason %d", (unsigned long long)st->cycle, st->reason);
  return p;
}

/* ---------------------------------------------------------------------------
 * A garbage loop stays under a bounded heap
 * ------------------------------------------------------------------------- */

#define RING 65536      /* the loop's live set: 2 MiB of 32-byte nodes */
#define KEEP_EVERY 13   /* one allocation in this many replaces a ring entry */
static node *ring[RING];

/* Allocates n nodes, 1/KEEP_EVERY of them kept in the ring (so survivors are
 * scattered over the spans the garbage fills), checking the rule on each.
 * Every 64th allocation checks the heap against the goal in effect; returns
 * the largest ratio of bytes mapped to it, in thousandths. */
static size_t garbage_loop(long n, long *kept) {
  size_t worst = 0;
  for (long i = 0; i < n; i++) {
    node *o = alloc_checked(&node_t);
    if (!o) return worst;
    if (i % KEEP_EVERY == 0) ring[(*kept)++ % RING] = o;
    if (i % 64) continue;
    ref_heap_stats hs = heap_stats();
    size_t ratio = hs.bytes_mapped * 1000 / hs.heap_goal;
    if (ratio > worst) worst = ratio;
  }
  return worst;
}

/* 4M allocations (128 MiB of garbage against a goal of a few MiB): the heap
 * never maps more than the goal in effect plus 1/64 (the free slots between
 * the ring's survivors are reused before new spans are mapped: 1.001 was
 * measured), and triggered cycles keep coming in every quarter of the loop. */
static void test_garbage_loop_bounded(void **state) {
  (void)state;
  static const struct { ref_phase ph; ref_scan sc; int W; } runs[] = {
      {REF_PHASE_SERIAL, REF_SCAN_FRAMES, 1}, {REF_PHASE_PARALLEL, REF_SCAN_CONSERVATIVE, 2}};
  for (size_t r = 0; r < REF_ARRAY_SIZE(runs); r++) {
    init_gogc(runs[r].ph, runs[r].sc, REF_MAPS_PCTAB, runs[r].W, 100, (size_t)1 << 30);
    res_reset();
    memset(ring, 0, sizeof ring);
    ref_add_root(ring, sizeof ring);
    size_t worst = 0;
    uint64_t cycles = 0;
    long kept = 0;
    for (int q = 0; q < 4; q++) {
      size_t w = garbage_loop(1000000, &kept);
      assert_no_fail();
      if (w > worst) worst = w;
      uint64_t now = ref_gc_last()->cycles_heap;
      assert_true(now >= cycles + 5); /* 32 MiB of garbage per quarter, goal < 6 MiB */
      cycles = now;
    }
    const ref_gc_stats *st = ref_gc_last();
    assert_int_equal(st->cycles_user + st->cycles_limit, 0);
    assert_int_equal(st->cycle, cycles);
    size_t goal = heap_stats().heap_goal;
    assert_true(goal > MIN_HEAP && goal < 6 * MIB); /* 2 MiB live + 512 KiB of roots, twice */
    print_message("%s: mapped at most %zu/1000 of the goal\n",
                  ref_strategy_name(runs[r].ph, runs[r].sc), worst);
    if (worst > 1016) fail_msg("the heap mapped %zu/1000 of its goal", worst);
    ref_remove_root(ring);
    ref_shutdown();
  }
}

/* ---------------------------------------------------------------------------
 * The goal: Go's formula, following the live set
 * ------------------------------------------------------------------------- */

#define NCHUNKS 8192 /* 32 MiB of 4 KiB chunks */
static void *chunks[NCHUNKS];
static ref_chan *park_ch2;

static void parked(void *arg) {
  (void)arg;
  ref_chan_recv(park_ch2, NULL);
}

/* After every ref_gc the goal is the formula over that cycle's stats, and
 * bytes_live and globals_bytes are what the test knows it holds: parked
 * goroutines' stacks count, and the goal moves with each step of the live
 * set by (1 + pct/100) times the step. */
static void goal_steps(int pct) {
  init_gogc(REF_PHASE_SERIAL, REF_SCAN_FRAMES, REF_MAPS_DIRECT, 1, pct, (size_t)1 << 30);
  res_reset();
  memset(chunks, 0, sizeof chunks);
  ref_add_root(chunks, sizeof chunks);
  ref_add_root(&park_ch2, sizeof park_ch2);
  park_ch2 = ref_chan_make_size(0, 0);
  for (int i = 0; i < 50; i++) assert_non_null(ref_go(parked, NULL));
  assert_int_equal(ref_run(), 50);
  uint64_t prev_goal = 0, prev_live = 0;
  for (int step = 0; step <= 4; step++) {
    for (int i = step * NCHUNKS / 4; i < (step + 1) * NCHUNKS / 4 && step < 4; i++)
      chunks[i] = alloc_checked(&chunk_t);
    assert_no_fail();
    ref_gc();
    const ref_gc_stats *st = ref_gc_last();
    ref_heap_stats hs = heap_stats();
    assert_int_equal(st->reason, REF_GC_USER);
    assert_int_equal(st->bytes_live, hs.bytes_live);
    assert_int_equal(st->globals_bytes, sizeof chunks + sizeof park_ch2);
    assert_int_equal(st->stacks_scanned, 50);
    assert_true(st->stack_bytes > 0);
    assert_int_equal(hs.heap_goal, goal_of(st, pct));
    size_t chunk_bytes = (size_t)(step < 4 ? step + 1 : 4) * NCHUNKS / 4 * 4096;
    assert_true(hs.bytes_live >= chunk_bytes && hs.bytes_live < chunk_bytes + 64 * 1024);
    if (step > 0 && step < 4) {
      uint64_t dlive = st->bytes_live - prev_live;
      assert_int_equal(hs.heap_goal - prev_goal, dlive + dlive * (uint64_t)pct / 100);
    }
    prev_goal = hs.heap_goal;
    prev_live = st->bytes_live;
  }
  /* 100, 50: the first step outgrows the minimum heap; 300: its minimum,
   * 12 MiB, is above the first step and each goal above the next step. */
  if (pct <= 100) assert_true(ref_gc_last()->cycles_heap > 0);
  else assert_int_equal(ref_gc_last()->cycles_heap, 0);
  ref_chan_close(park_ch2);
  assert_int_equal(ref_run(), 0);
  ref_remove_root(&park_ch2);
  ref_remove_root(chunks);
  ref_shutdown();
}

static void test_goal_follows_live_set(void **state) {
  (void)state;
  goal_steps(100);
  goal_steps(50);
  goal_steps(300);
}

/* ---------------------------------------------------------------------------
 * Off, the minimum heap, the environment
 * ------------------------------------------------------------------------- */

/* gc_percent < 0: 61 MiB of garbage and no cycle at all. */
static void test_off_never_triggers(void **state) {
  (void)state;
  for (int pct = -1; pct >= -100; pct -= 99) {
    init_gogc(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1, pct, (size_t)1 << 30);
    assert_int_equal(heap_stats().heap_goal, SIZE_MAX);
    res_reset();
    for (long i = 0; i < 2000000; i++) alloc_checked(&leaf_t);
    assert_no_fail();
    assert_int_equal(ref_gc_last()->cycle, 0);
    assert_true(heap_stats().bytes_mapped >= 60 * MIB);
    ref_gc(); /* a manual cycle leaves the trigger off */
    assert_int_equal(heap_stats().heap_goal, SIZE_MAX);
    ref_shutdown();
  }
}

/* With nothing live the goal is the minimum heap, 4 MiB * pct / 100; the
 * first triggered cycle comes with the first allocation after the counted
 * bytes pass it, and not before. */
static void test_minimum_heap(void **state) {
  (void)state;
  static const int pcts[] = {100, 50, 200, 1};
  for (size_t k = 0; k < REF_ARRAY_SIZE(pcts); k++) {
    int pct = pcts[k];
    init_gogc(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1, pct, (size_t)1 << 30);
    size_t min = MIN_HEAP * (size_t)pct / 100;
    assert_int_equal(heap_stats().heap_goal, min);
    res_reset();
    size_t counted = 0;
    for (size_t i = 0; ref_gc_last()->cycles_heap == 0 && i < (min + MIB) / 32; i++) {
      counted = heap_stats().bytes_counted;
      alloc_checked(&leaf_t);
      assert_no_fail();
    }
    assert_int_equal(ref_gc_last()->cycles_heap, 1);
    assert_true(counted > min && counted <= min + 64 * 32); /* over it by one cache run */
    assert_int_equal(heap_stats().heap_goal, min); /* nothing survived: the minimum again */
    ref_gc();
    assert_int_equal(heap_stats().heap_goal, min);
    ref_shutdown();
  }
}

static void test_env_override(void **state) {
  (void)state;
  setenv("STACKSCAN_GOGC", "off", 1);
  init_gogc(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1, 100, (size_t)1 << 30);
  assert_int_equal(ref_get_config()->gc_percent, -1);
  assert_int_equal(heap_stats().heap_goal, SIZE_MAX);
  ref_shutdown();
  setenv("STACKSCAN_GOGC", "25", 1);
  init_gogc(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1, 100, (size_t)1 << 30);
  assert_int_equal(ref_get_config()->gc_percent, 25);
  assert_int_equal(heap_stats().heap_goal, MIN_HEAP / 4);
  ref_shutdown();
  static const char *const bad[] = {"abc", "10%", "", " 5", "99999999999"};
  for (size_t i = 0; i < REF_ARRAY_SIZE(bad); i++) {
    setenv("STACKSCAN_GOGC", bad[i], 1);
    ref_config cfg;
    tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
    if (!*bad[i]) { /* empty: unset, as GOGC */
      tu_start(&cfg);
      assert_int_equal(ref_get_config()->gc_percent, 100);
      ref_shutdown();
      continue;
    }
    assert_int_equal(ref_init(&cfg), -1);
    assert_non_null(strstr(ref_error(), "STACKSCAN_GOGC"));
  }
  unsetenv("STACKSCAN_GOGC");
}

/* ---------------------------------------------------------------------------
 * Triggered inside allocation: goroutines with frame records, the scheduler
 * ------------------------------------------------------------------------- */

#define HOLDERS 4
#define HELD 16
#define ROUNDS 40
REF_FUNC(holder_info, "gogc.holder", HELD, REF_SP(0xffff));

static node *new_node(uint64_t id) {
  node *o = alloc_checked(&node_t);
  if (o) o->canary = canary(id);
  return o;
}

/* Replaces slot i with a parent holding a child; the slot holds the child
 * while the parent is allocated. Their ids are 2*id and 2*id + 1. */
static void replace(void **slot, int i, uint64_t id) {
  slot[i] = new_node(2 * id + 1);
  node *p = new_node(2 * id);
  if (p) p->next = slot[i];
  slot[i] = p;
}

/* Whether slot i holds the pair `id`, untouched since it was allocated (the
 * pads were zeroed then: a pair freed and poisoned reads 0xfe there). */
static void check_pair(void **slot, int i, uint64_t id, uint64_t gid, int round) {
  const node *o = slot[i], *c = o ? o->next : NULL;
  res.checked++;
  if (!c || o->canary != canary(2 * id) || c->canary != canary(2 * id + 1) || o->pad[0] ||
      o->pad[1] || c->pad[0] || c->pad[1] || c->next)
    note_fail("holder %llu round %d: slot %d's objects (%p) lost their contents",
              (unsigned long long)gid, round, i, (const void *)o);
}

/* Holds parent-child pairs only in its record and allocates: every fourth
 * allocation replaces a slot's pair, the rest are garbage. The cycles it
 * triggers start inside its own allocations (many of them pairs, so an
 * object freed under its allocator shows too), with the other holders
 * parked at a yield (on the scheduler stack it does not yield). */
static void holder(void *arg) {
  uint64_t gid = (uint64_t)(uintptr_t)arg, ids[HELD], next_id = gid << 32;
  REF_FRAME(f, holder_info);
  REF_SAFEPOINT(f, 0);
  for (int i = 0; i < HELD; i++) replace(f.slot, i, ids[i] = next_id++);
  for (int round = 0; round < ROUNDS; round++) {
    for (int k = 0; k < 4000; k++) {
      int i = k / 4 % HELD;
      if (k % 4) {
        alloc_checked(&leaf_t);
        continue;
      }
      check_pair(f.slot, i, ids[i], gid, round); /* survived the cycles since */
      replace(f.slot, i, ids[i] = next_id++);
      check_pair(f.slot, i, ids[i], gid, round); /* survived its own allocation */
    }
    if (ref_curg()) ref_yield();
  }
}

/* 4 holders x 40 rounds x 5000 x 32 B = 25 MiB against a 4 MiB goal:
 * several cycles inside holders' allocations per run. */
static void test_trigger_in_goroutine_frames(void **state) {
  (void)state;
  for (int ph = 0; ph < 3; ph++) {
    /* Under ThreadSanitizer (10x slower) one stackmaps mode: the races it
     * looks for do not depend on how frame metadata is found. */
    for (int maps = REF_TSAN ? REF_MAPS_PCTAB_CACHED : 0; maps < 3; maps++) {
      init_gogc((ref_phase)ph, REF_SCAN_FRAMES, (ref_stackmaps)maps, 2, 100, (size_t)1 << 30);
      assert_true(ref_get_config()->checkmark);
      res_reset();
      for (int g = 0; g < HOLDERS; g++) assert_non_null(ref_go(holder, (void *)(uintptr_t)g));
      assert_int_equal(ref_run(), 0);
      assert_no_fail();
      assert_int_equal(res.checked, HOLDERS * ROUNDS * 2000);
      assert_true(ref_gc_last()->cycles_heap >= 3);
      assert_int_equal(ref_gc_last()->cycles_user, 0);
      ref_shutdown();
    }
  }
}

/* The same on the scheduler stack: a record there is a root in every scan
 * mode, and the cycle runs right where the allocation is. */
static void test_trigger_on_scheduler_stack(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    init_gogc(REF_PHASE_ROOTJOBS, (ref_scan)sc, REF_MAPS_PCTAB, 2, 100, (size_t)1 << 30);
    res_reset();
    holder((void *)(uintptr_t)7);
    holder((void *)(uintptr_t)8);
    assert_no_fail();
    assert_true(ref_gc_last()->cycles_heap >= 2); /* 12 MiB allocated, a 4 MiB goal */
    ref_shutdown();
  }
}

/* ---------------------------------------------------------------------------
 * The heap limit still collects
 * ------------------------------------------------------------------------- */

/* 10 MiB live under a 16 MiB limit: the goal (over 20 MiB) lies beyond the
 * limit, so the garbage loop meets the limit first, which collects and
 * retries; with the trigger off the limit alone does it. No allocation
 * fails. */
static void test_limit_fallback(void **state) {
  (void)state;
  for (int pct = 100; pct >= -1; pct -= 101) {
    init_gogc(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1, pct, 16 * MIB);
    memset(chunks, 0, sizeof chunks);
    ref_add_root(chunks, sizeof chunks);
    for (int i = 0; i < 2560; i++) assert_non_null(chunks[i] = ref_alloc(&chunk_t));
    ref_gc();
    if (pct > 0) assert_true(heap_stats().heap_goal > 16 * MIB);
    ref_gc_stats before = *ref_gc_last();
    assert_int_equal(before.cycles_limit, 0);
    for (long i = 0; i < 1000000; i++)
      if (!ref_alloc(&leaf_t)) fail_msg("allocation %ld failed: %s", i, ref_error());
    const ref_gc_stats *st = ref_gc_last();
    assert_true(st->cycles_limit >= 3);
    assert_int_equal(st->reason, REF_GC_LIMIT);
    assert_int_equal(st->cycles_heap, before.cycles_heap);
    assert_int_equal(st->cycles_user, 1);
    assert_int_equal(st->cycle, before.cycle + st->cycles_limit);
    for (int i = 0; i < 2560; i++) assert_true(is_allocated((uintptr_t)chunks[i]));
    ref_remove_root(chunks);
    ref_shutdown();
  }
}

/* A failed test leaves its runtime up; the next one needs it down. */
static int teardown(void **state) {
  (void)state;
  ref_shutdown();
  unsetenv("STACKSCAN_GOGC");
  return 0;
}

int main(void) {
  unsetenv("STACKSCAN_GOGC"); /* the tests set gc_percent themselves */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_garbage_loop_bounded, teardown),
      cmocka_unit_test_teardown(test_goal_follows_live_set, teardown),
      cmocka_unit_test_teardown(test_off_never_triggers, teardown),
      cmocka_unit_test_teardown(test_minimum_heap, teardown),
      cmocka_unit_test_teardown(test_env_override, teardown),
      cmocka_unit_test_teardown(test_trigger_in_goroutine_frames, teardown),
      cmocka_unit_test_teardown(test_trigger_on_scheduler_stack, teardown),
      cmocka_unit_test_teardown(test_limit_fallback, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
