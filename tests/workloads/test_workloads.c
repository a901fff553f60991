/*
 * Smoke runs of every workload at n=100 under every strategy and lookup
 * mode, with the checkmark verifier on: each GC must keep every object the
 * readers hold (they verify canaries on exit), and the deterministic
 * counters must not depend on the phase or the worker count.
 */
#include "testutil.h"
#include "workloads.h"

static const wl_params P = {100, -1, -1, -1, -1, 1, -1, -1, -1};

typedef struct counts {
  uint64_t stacks, stack_bytes, words, frames, lookups, slots, marked;
} counts;

static counts run_one(const wl_desc *d, ref_phase ph, ref_scan sc, ref_stackmaps maps, int W) {
  tu_init_with(ph, sc, maps, W);
  char err[256] = "";
  wl_instance *w = d->setup(&P, err, sizeof err);
  if (!w) fail_msg("%s setup: %s", d->name, err);
  counts c = {0};
  for (int it = 0; it < 3; it++) {
    if (wl_wake(w, err, sizeof err) != 0) fail_msg("%s: %s", d->name, err);
    ref_gc();
    const ref_gc_stats *st = ref_gc_last();
    c = (counts){st->stacks_scanned, st->stack_bytes, st->words, st->frames,
                 st->lookups, st->slots, st->objects_marked};
  }
  if (wl_finish(w, err, sizeof err) != 0) fail_msg("%s %s W=%d: %s", d->name,
                                                   ref_strategy_name(ph, sc), W, err);
  ref_shutdown();
  return c;
}

static void test_every_workload_every_strategy(void **state) {
  (void)state;
  tu_init();
  int mutators = tu_mutators();
  ref_shutdown();
  for (int i = 0; wl_all[i]; i++) {
    const wl_desc *d = wl_all[i];
    if (d->min_mutators > mutators) continue; /* test_latency_refuses_one_mutator */
    for (int sc = 0; sc < 2; sc++) {
      counts base = run_one(d, REF_PHASE_SERIAL, (ref_scan)sc, REF_MAPS_DIRECT, 1);
      assert_int_equal(base.stacks, 100);
      if (sc == REF_SCAN_FRAMES) assert_true(base.frames >= 100);
      for (int ph = 0; ph < 3; ph++) {
        for (int W = 1; W <= 3; W += 2) {
          ref_stackmaps maps = sc == REF_SCAN_FRAMES ? (ref_stackmaps)((ph + W) % 3) : REF_MAPS_DIRECT;
          counts c = run_one(d, (ref_phase)ph, (ref_scan)sc, maps, W);
          assert_memory_equal(&c, &base, sizeof c);
        }
      }
    }
  }
}

static void test_bad_params(void **state) {
  (void)state;
  tu_init();
  char err[256];
  wl_params p = P;
  p.slots = 65;
  assert_null(wl_find("GoroutineDeep")->setup(&p, err, sizeof err));
  assert_non_null(strstr(err, "slots must be in 1..64"));
  p = P;
  p.depth = 4000;
  assert_null(wl_find("GoroutineBlocking")->setup(&p, err, sizeof err));
  assert_non_null(strstr(err, "stack"));
  assert_null(wl_find("NoSuchWorkload"));
  ref_shutdown();
}

/* wl_params_check takes the limits and the defaults (-1), and names the
 * first field out of them; it needs no runtime. */
static void test_params_check(void **state) {
  (void)state;
  char err[128];
  wl_params p = {1, WL_MAX_DEPTH, WL_MAX_FRAME_BYTES, WL_MAX_SLOTS, WL_MAX_HEAP_PER_G, 0, WL_MAX_WAKE, WL_MAX_DIRTY,
                 WL_MAX_POLL_EVERY};
  assert_int_equal(wl_params_check(&p, err, sizeof err), 0);
  assert_int_equal(wl_params_check(&P, err, sizeof err), 0);
  p.slots = WL_MIN_SLOTS - 1;
  assert_int_equal(wl_params_check(&p, err, sizeof err), -1);
  assert_string_equal(err, "slots must be in 1..64");
  p = P;
  p.frame_bytes = WL_MAX_FRAME_BYTES + 1;
  assert_int_equal(wl_params_check(&p, err, sizeof err), -1);
  assert_string_equal(err, "frame-bytes must be in 0..16384");
  p = P;
  p.n = 0;
  assert_int_equal(wl_params_check(&p, err, sizeof err), -1);
  assert_string_equal(err, "n must be at least 1");
}

/* GoroutineLatency's collections, run by its driver goroutine in every
 * mode at 2 mutators: round trips were timed outside collections and at
 * least one overlapped a collection (ref_gc_seq saw it), none was
 * answered out of order (wl_collect fails then), and the readers' objects
 * survived (wl_finish). */
static void collect_gc(void *arg) {
  (void)arg;
  ref_gc();
}

static double metric(const wl_metric *m, size_t k, const char *name) {
  for (size_t i = 0; i < k; i++)
    if (strcmp(m[i].name, name) == 0) return m[i].value;
  fail_msg("no metric %s", name);
  return -1;
}

static void test_latency_every_mode(void **state) {
  (void)state;
  for (int mode = 0; mode < REF_NMODES; mode++) {
    ref_config cfg;
    tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_FRAMES, REF_MAPS_PCTAB, 1);
    cfg.mutators = 2;
    cfg.mode = (ref_mode)mode;
    tu_start(&cfg);
    char err[256] = "";
    wl_instance *w = wl_find("GoroutineLatency")->setup(&P, err, sizeof err);
    if (!w) fail_msg("setup: %s", err);
    for (int it = 0; it < 3; it++)
      if (wl_wake(w, err, sizeof err) != 0 || wl_collect(w, collect_gc, NULL, err, sizeof err) != 0)
        fail_msg("%s: %s", ref_mode_name((ref_mode)mode), err);
    wl_metric m[WL_MAX_METRICS];
    size_t k = wl_metrics(w, m, REF_ARRAY_SIZE(m));
    double out = metric(m, k, "rtt_count"), gc = metric(m, k, "rtt_gc_count");
    if (out <= 0 || gc <= 0)
      fail_msg("%s: %.0f round trips outside collections, %.0f overlapping one",
               ref_mode_name((ref_mode)mode), out, gc);
    assert_true(metric(m, k, "rtt_gc_max_ns") >= metric(m, k, "rtt_gc_p99_ns"));
    assert_true(metric(m, k, "rtt_p99_ns") >= metric(m, k, "rtt_p50_ns"));
    if (wl_finish(w, err, sizeof err) != 0) fail_msg("%s: %s", ref_mode_name((ref_mode)mode), err);
    ref_shutdown();
  }
}

/* With one mutator no two goroutines run at once: setup says so. */
static void test_latency_refuses_one_mutator(void **state) {
  (void)state;
  tu_init_one_mutator();
  char err[256] = "";
  const wl_desc *d = wl_find("GoroutineLatency");
  assert_int_equal(d->min_mutators, 2);
  assert_null(d->setup(&P, err, sizeof err));
  assert_non_null(strstr(err, "GoroutineLatency needs 2 or more mutators, not 1"));
  ref_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_workload_every_strategy),
      cmocka_unit_test(test_latency_every_mode),
      cmocka_unit_test(test_latency_refuses_one_mutator),
      cmocka_unit_test(test_bad_params),
      cmocka_unit_test(test_params_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
