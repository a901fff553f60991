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
  for (int i = 0; wl_all[i]; i++) {
    const wl_desc *d = wl_all[i];
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_workload_every_strategy),
      cmocka_unit_test(test_bad_params),
      cmocka_unit_test(test_params_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
