/*
 * Cycle timelines (ref_trace_*): with tracing on, every worker's spans of a
 * cycle are in time order and do not overlap, worker 0 enumerates the roots,
 * the stack jobs add up to the cycle's jobs, and each worker's spans lie
 * within the cycle; off, nothing is recorded; a full buffer counts what it
 * dropped.
 */
#include "testutil.h"

#include "gcutil.h"

#include "gc.h" /* ref__allg, ref__globals_nblocks, ref__nanotime */

#define NG 600

static void parked(void *arg) {
  (void)arg;
  park();
}

static void start_parked(ref_phase phase, int workers) {
  tu_init_with(phase, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, workers);
  park_ch_open();
  for (int i = 0; i < NG; i++) assert_non_null(ref_go(parked, NULL));
  ref_run();
}

static void finish(void) {
  park_ch_close_all();
  ref_run();
  ref_shutdown();
}

/* Checks worker i's spans of the last cycle, [t0, t1]; returns the stack
 * jobs they ran and counts the spans of each kind in kinds[]. */
static uint64_t check_worker(int i, uint64_t t0, uint64_t t1, size_t kinds[]) {
  const ref_trace_event *ev;
  uint64_t dropped = 1, jobs = 0;
  size_t n = ref_trace_events(i, &ev, &dropped);
  assert_int_equal(dropped, 0);
  for (size_t k = 0; k < n; k++) {
    assert_true(ev[k].kind < REF_NTRACE_KINDS);
    assert_true(ev[k].t0_ns <= ev[k].t1_ns);
    assert_true(ev[k].t0_ns >= t0 && ev[k].t1_ns <= t1);
    if (k > 0) assert_true(ev[k].t0_ns >= ev[k - 1].t1_ns); /* in order, no overlap */
    kinds[ev[k].kind]++;
    if (ev[k].kind == REF_TRACE_STACKS) jobs += ev[k].items;
  }
  return jobs;
}

static void check_phase(ref_phase phase, int workers) {
  start_parked(phase, workers);
  assert_int_equal(ref_trace_enable(4096), 0);
  uint64_t t0 = ref__nanotime();
  ref_gc();
  uint64_t t1 = ref__nanotime();
  size_t kinds[REF_NTRACE_KINDS] = {0}, kinds0[REF_NTRACE_KINDS] = {0};
  uint64_t jobs = check_worker(0, t0, t1, kinds0);
  /* A helper that did not join the region in time (workers.c) has no spans;
   * one that did drains, goes idle, and in the serial and rootjobs phases
   * first waits for the roots. */
  size_t joined = 1;
  for (int i = 1; i < workers; i++) {
    size_t mine[REF_NTRACE_KINDS] = {0};
    jobs += check_worker(i, t0, t1, mine);
    joined += mine[REF_TRACE_IDLE] > 0; /* it joined the mark region */
    for (int k = 0; k < REF_NTRACE_KINDS; k++) kinds[k] += mine[k];
  }
  for (int k = 0; k < REF_NTRACE_KINDS; k++) kinds[k] += kinds0[k];
  assert_int_equal(kinds0[REF_TRACE_ROOTS], 1);
  assert_int_equal(kinds[REF_TRACE_ROOTS], 1); /* worker 0's alone */
  assert_true(kinds[REF_TRACE_SWEEP] >= 1);
  assert_true(kinds[REF_TRACE_DRAIN] >= joined);
  assert_true(kinds[REF_TRACE_IDLE] >= joined);
  /* Root jobs: one per G in the parallel phase, and the global blocks too in
   * the rootjobs phase; none in the serial one, which scans inside the roots
   * span. */
  size_t want = phase == REF_PHASE_SERIAL    ? 0
                : phase == REF_PHASE_PARALLEL ? ref__allg.len
                                              : ref__allg.len + ref__globals_nblocks();
  assert_int_equal(jobs, want);
  if (phase == REF_PHASE_SERIAL) assert_int_equal(kinds[REF_TRACE_STACKS], 0);
  else assert_true(kinds[REF_TRACE_STACKS] >= 1);
  assert_int_equal(kinds[REF_TRACE_WAIT_ROOTS], phase == REF_PHASE_PARALLEL ? 0 : joined - 1);
  finish();
}

static void test_trace_every_phase(void **state) {
  (void)state;
  for (int w = 1; w <= 3; w++) {
    check_phase(REF_PHASE_SERIAL, w);
    check_phase(REF_PHASE_PARALLEL, w);
    check_phase(REF_PHASE_ROOTJOBS, w);
  }
}

/* Off (the default, and after ref_trace_enable(0)), nothing is recorded. */
static void test_trace_off(void **state) {
  (void)state;
  start_parked(REF_PHASE_ROOTJOBS, 2);
  const ref_trace_event *ev;
  ref_gc();
  assert_int_equal(ref_trace_events(0, &ev, NULL), 0);
  assert_int_equal(ref_trace_enable(64), 0);
  ref_gc();
  assert_true(ref_trace_events(0, &ev, NULL) > 0);
  assert_int_equal(ref_trace_enable(0), 0);
  ref_gc();
  assert_int_equal(ref_trace_events(0, &ev, NULL), 0);
  assert_int_equal(ref_trace_events(2, &ev, NULL), 0); /* no such worker */
  assert_null(ev);
  finish();
}

/* A buffer of 2 events keeps the first two and counts the rest. */
static void test_trace_dropped(void **state) {
  (void)state;
  start_parked(REF_PHASE_ROOTJOBS, 1);
  assert_int_equal(ref_trace_enable(2), 0);
  ref_gc();
  const ref_trace_event *ev;
  uint64_t dropped = 0;
  assert_int_equal(ref_trace_events(0, &ev, &dropped), 2);
  assert_true(dropped >= 1);
  assert_int_equal(ev[0].kind, REF_TRACE_ROOTS);
  finish();
}

static void test_trace_names(void **state) {
  (void)state;
  assert_string_equal(ref_trace_kind_name(REF_TRACE_ROOTS), "roots");
  assert_string_equal(ref_trace_kind_name(REF_TRACE_STACKS), "stack-jobs");
  assert_string_equal(ref_trace_kind_name(REF_TRACE_SWEEP), "sweep");
  assert_null(ref_trace_kind_name((ref_trace_kind)REF_NTRACE_KINDS));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trace_every_phase),
      cmocka_unit_test(test_trace_off),
      cmocka_unit_test(test_trace_dropped),
      cmocka_unit_test(test_trace_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
