/*
 * test_topo.c: topology loading, summaries and placement orders on hwloc
 * synthetic topologies (exact expected orders, worked out by hand below),
 * and thread binding on the real machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hwloc.h>
#include <pthread.h>
#include <string.h>

#include "topo.h"

#define BIG "pack:2 numa:2 core:4 pu:2"

/* The PU logical indices of a plan, checked against want[0..w). */
static void check_plan(const topo *t, topo_placement p, int w, const int *want) {
  topo_plan plan;
  assert_int_equal(topo_plan_make(t, p, w, &plan), 0);
  assert_int_equal(plan.nworkers, w);
  for (int i = 0; i < w; i++) {
    if (plan.slot[i].pu_logical != want[i])
      fail_msg("%s W=%d: worker %d on PU L#%d, want L#%d", topo_placement_name(p), w, i,
               plan.slot[i].pu_logical, want[i]);
    /* Synthetic topologies number PUs identically (OS index = logical). */
    assert_int_equal(plan.slot[i].pu_os, want[i]);
  }
  topo_plan_free(&plan);
}

static void test_counts_and_summary(void **state) {
  (void)state;
  topo *t = topo_load(BIG);
  assert_non_null(t);
  assert_true(topo_is_synthetic(t));
  topo_counts c;
  topo_get_counts(t, &c);
  assert_int_equal(c.packages, 2);
  assert_int_equal(c.numa_nodes, 4);
  assert_int_equal(c.cores, 16);
  assert_int_equal(c.pus, 32);
  assert_int_equal(c.llc_level, 0);
  char buf[128];
  topo_summary(t, buf, sizeof buf);
  assert_string_equal(buf, "2 packages, 4 NUMA nodes, 16 cores, 32 PUs");
  topo_free(t);

  t = topo_load("pack:2 l3:2 core:2 pu:2");
  assert_non_null(t);
  topo_summary(t, buf, sizeof buf);
  /* hwloc gives synthetic L3s 16 MiB each. */
  assert_string_equal(buf, "2 packages, 1 NUMA node, 8 cores, 16 PUs, 4 x L3 16 MiB");
  topo_free(t);
}

/* Compact fills core by core: PU L#2k and L#2k+1 are core k's two PUs, so
 * the first W workers take PUs 0..W-1, whatever W. */
static void test_compact_big(void **state) {
  (void)state;
  topo *t = topo_load(BIG);
  assert_non_null(t);
  int want[32];
  for (int i = 0; i < 32; i++) want[i] = i;
  static const int ws[] = {1, 2, 4, 8, 32};
  for (int k = 0; k < 5; k++) check_plan(t, TOPO_PLACE_COMPACT, ws[k], want);
  topo_free(t);
}

/* Scatter on "pack:2 numa:2 core:4 pu:2". PU L#((p*2 + n)*4 + c)*2 + u is
 * package p, NUMA node n (of that package), core c (of that node), PU u.
 * Worker i takes i's digits in mixed radix, lowest first: p = i % 2,
 * n = (i / 2) % 2, c = (i / 4) % 4, u = i / 16, i.e. PU 16p + 8n + 2c + u:
 *   workers 0,1 -> the two packages (PU 0, 16);
 *   workers 2,3 -> the second NUMA node of each package (8, 24);
 *   workers 4..15 -> the remaining cores, one package/node after another;
 *   workers 16..31 -> the second PU of each core, in the same order. */
static const int scatter_big[32] = {0, 16, 8, 24, 2, 18, 10, 26, 4, 20, 12, 28, 6, 22, 14, 30,
                                    1, 17, 9, 25, 3, 19, 11, 27, 5, 21, 13, 29, 7, 23, 15, 31};

static void test_scatter_big(void **state) {
  (void)state;
  topo *t = topo_load(BIG);
  assert_non_null(t);
  static const int ws[] = {1, 2, 4, 8, 32};
  for (int k = 0; k < 5; k++) check_plan(t, TOPO_PLACE_SCATTER, ws[k], scatter_big);
  /* A prefix of the order: W=1 {0}, W=2 {0,16}, W=4 {0,16,8,24}. */
  static const int w4[] = {0, 16, 8, 24};
  check_plan(t, TOPO_PLACE_SCATTER, 4, w4);
  topo_free(t);
}

/* With caches: "pack:2 l3:2 core:2 pu:2", PU 8p + 4l + 2c + u; scatter
 * spreads over packages, then L3s, then cores, then PUs. */
static void test_scatter_l3(void **state) {
  (void)state;
  topo *t = topo_load("pack:2 l3:2 core:2 pu:2");
  assert_non_null(t);
  static const int want[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
  check_plan(t, TOPO_PLACE_SCATTER, 16, want);
  topo_free(t);
}

/* More workers than PUs wrap around; placement none binds nothing. */
static void test_oversubscription_and_none(void **state) {
  (void)state;
  topo *t = topo_load(BIG);
  assert_non_null(t);
  int want[40];
  for (int i = 0; i < 40; i++) want[i] = scatter_big[i % 32];
  check_plan(t, TOPO_PLACE_SCATTER, 40, want);
  for (int i = 0; i < 40; i++) want[i] = i % 32;
  check_plan(t, TOPO_PLACE_COMPACT, 40, want);

  topo_plan plan;
  assert_int_equal(topo_plan_make(t, TOPO_PLACE_NONE, 3, &plan), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(plan.slot[i].pu_os, -1);
    assert_string_equal(plan.slot[i].cpuset, "");
  }
  topo_plan_free(&plan);
  assert_int_equal(topo_plan_make(t, TOPO_PLACE_COMPACT, 17, &plan), 0);
  assert_string_equal(plan.slot[16].cpuset, "0x00010000");
  topo_plan_free(&plan);
  assert_int_equal(topo_plan_make(t, TOPO_PLACE_COMPACT, 0, &plan), -1);
  assert_non_null(strstr(topo_error(), "workers"));
  topo_free(t);
}

/* Two single-PU cores: compact and scatter agree; W=3 wraps to PU 0. */
static void test_two_cores(void **state) {
  (void)state;
  topo *t = topo_load("core:2 pu:1");
  assert_non_null(t);
  static const int want[] = {0, 1, 0};
  check_plan(t, TOPO_PLACE_COMPACT, 3, want);
  check_plan(t, TOPO_PLACE_SCATTER, 3, want);
  char buf[128];
  topo_summary(t, buf, sizeof buf);
  assert_string_equal(buf, "0 packages, 1 NUMA node, 2 cores, 2 PUs");
  topo_free(t);
}

static void test_malformed_synthetic(void **state) {
  (void)state;
  static const char *const bad[] = {"", "pack:2 bogus:3", "pack:x", "pu:0", "garbage"};
  for (int i = 0; i < 5; i++) {
    assert_null(topo_load(bad[i]));
    assert_non_null(strstr(topo_error(), "invalid synthetic topology"));
    assert_non_null(strstr(topo_error(), bad[i]));
  }
}

static void test_placement_names(void **state) {
  (void)state;
  topo_placement p;
  assert_int_equal(topo_placement_parse("scatter", &p), 0);
  assert_int_equal(p, TOPO_PLACE_SCATTER);
  assert_int_equal(topo_placement_parse("spread", &p), -1);
  assert_string_equal(topo_placement_name(TOPO_PLACE_NONE), "none");
  assert_null(topo_placement_name((topo_placement)7));
}

/* ---------------------------------------------------------------------------
 * Binding on the real machine
 * ------------------------------------------------------------------------- */

/* True when the calling thread's binding is exactly PU pu_os. Runs on
 * worker threads, so it reports instead of asserting (cmocka's asserts
 * longjmp to the main thread). */
static bool bound_to(int pu_os) {
  hwloc_topology_t h;
  bool eq = false;
  if (hwloc_topology_init(&h) != 0) return false;
  hwloc_bitmap_t got = hwloc_bitmap_alloc(), want = hwloc_bitmap_alloc();
  if (got != NULL && want != NULL && hwloc_topology_load(h) == 0 &&
      hwloc_get_cpubind(h, got, HWLOC_CPUBIND_THREAD) == 0) {
    hwloc_bitmap_only(want, (unsigned)pu_os);
    eq = hwloc_bitmap_isequal(got, want);
  }
  hwloc_bitmap_free(got);
  hwloc_bitmap_free(want);
  hwloc_topology_destroy(h);
  return eq;
}

typedef struct thread_arg {
  topo_binder *b;
  int index, rc, want_pu;
  bool bound;
  int (*start)(int index, void *binder); /* topo_worker_start, topo_mutator_start */
} thread_arg;

static void *start_thread(void *p) {
  thread_arg *a = p;
  a->rc = a->start(a->index, a->b);
  a->bound = a->rc == 0 && bound_to(a->want_pu);
  return NULL;
}

/* Runs a's start callback on a fresh thread, so that the test runner's own
 * binding is left alone; returns its result. */
static int on_thread(thread_arg *a) {
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, start_thread, a), 0);
  pthread_join(th, NULL);
  return a->rc;
}

static void test_bind_real_machine(void **state) {
  (void)state;
  topo *t = topo_load(NULL);
  assert_non_null(t);
  assert_false(topo_is_synthetic(t));
  topo_plan plan;
  assert_int_equal(topo_plan_make(t, TOPO_PLACE_COMPACT, 2, &plan), 0);

  /* Worker 0 on the first PU. */
  topo_binder b;
  topo_binder_init(&b, t, &plan);
  thread_arg a = {&b, 0, -1, plan.slot[0].pu_os, false, topo_worker_start};
  assert_int_equal(on_thread(&a), 0);
  assert_true(a.bound);
  assert_int_equal(b.failed, -1);

  /* A worker beyond the plan fails and is recorded. */
  thread_arg bad = {&b, 5, 0, 0, false, topo_worker_start};
  assert_int_equal(on_thread(&bad), -1);
  assert_int_equal(b.failed, 5);
  assert_non_null(strstr(b.err, "worker 5"));

  assert_int_equal(topo_bind_current_thread(t, 1 << 20), -1);
  assert_non_null(strstr(topo_error(), "no such PU"));
  topo_plan_free(&plan);
  topo_free(t);
}

/* Mutator i is bound where worker i is (topo.h's layout): slot[i] of the
 * one plan; a failure names the mutator, and the first failure stays. */
static void test_bind_mutators(void **state) {
  (void)state;
  topo *t = topo_load(NULL);
  assert_non_null(t);
  topo_plan plan;
  assert_int_equal(topo_plan_make(t, TOPO_PLACE_COMPACT, 2, &plan), 0);
  topo_binder b;
  topo_binder_init(&b, t, &plan);
  thread_arg a = {&b, 1, -1, plan.slot[1].pu_os, false, topo_mutator_start};
  assert_int_equal(on_thread(&a), 0);
  assert_true(a.bound);
  assert_null(topo_binder_failure(&b));

  thread_arg bad = {&b, 7, 0, 0, false, topo_mutator_start};
  assert_int_equal(on_thread(&bad), -1);
  assert_int_equal(b.failed, 7);
  assert_string_equal(topo_binder_failure(&b),
                      "mutator 7: mutator 7 has no slot in a plan for 2 threads");
  thread_arg later = {&b, 9, 0, 0, false, topo_worker_start};
  assert_int_equal(on_thread(&later), -1);
  assert_int_equal(b.failed, 7);
  assert_non_null(strstr(topo_binder_failure(&b), "mutator 7:"));
  topo_plan_free(&plan);
  topo_free(t);
}

static void test_bind_synthetic_refused(void **state) {
  (void)state;
  topo *t = topo_load(BIG);
  assert_non_null(t);
  assert_int_equal(topo_bind_current_thread(t, 0), -1);
  assert_non_null(strstr(topo_error(), "synthetic"));
  topo_free(t);
}

/* A binder reports a failure only once a worker failed, worker 0 included
 * (failed is that worker's index, -1 while none failed). */
static void test_binder_failure(void **state) {
  (void)state;
  topo *t = topo_load(BIG);
  assert_non_null(t);
  topo_plan plan;
  assert_int_equal(topo_plan_make(t, TOPO_PLACE_COMPACT, 2, &plan), 0);
  topo_binder b;
  topo_binder_init(&b, t, &plan);
  assert_null(topo_binder_failure(&b));
  assert_int_equal(topo_worker_start(0, &b), -1); /* a synthetic topology refuses binding */
  const char *why = topo_binder_failure(&b);
  assert_non_null(why);
  assert_non_null(strstr(why, "worker 0: cannot bind to PU P#"));
  topo_plan_free(&plan);
  topo_free(t);
}

static void test_real_summary(void **state) {
  (void)state;
  topo *t = topo_load(NULL);
  assert_non_null(t);
  topo_counts c;
  topo_get_counts(t, &c);
  assert_true(c.pus >= 1);
  char buf[128];
  assert_true(topo_summary(t, buf, sizeof buf) > 0);
  char want[32];
  snprintf(want, sizeof want, "%d PU", c.pus);
  assert_non_null(strstr(buf, want));
  topo_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counts_and_summary),
      cmocka_unit_test(test_compact_big),
      cmocka_unit_test(test_scatter_big),
      cmocka_unit_test(test_scatter_l3),
      cmocka_unit_test(test_oversubscription_and_none),
      cmocka_unit_test(test_two_cores),
      cmocka_unit_test(test_malformed_synthetic),
      cmocka_unit_test(test_placement_names),
      cmocka_unit_test(test_bind_real_machine),
      cmocka_unit_test(test_bind_mutators),
      cmocka_unit_test(test_bind_synthetic_refused),
      cmocka_unit_test(test_binder_failure),
      cmocka_unit_test(test_real_summary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
