/*
 * test_plan.c: the benchmark plan built from parsed flags, and its printout
 * for --list and --topology.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliargs.h"
#include "plan.h"

/* bench_plan_print's text (free it). */
static char *printed(const bench_plan *plan, const topo *t) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  assert_int_equal(bench_plan_print(f, plan, t), 0);
  fclose(f);
  return text;
}

static void test_plan_cross_product(void **state) {
  (void)state;
  args *a = parse("--workloads=GoroutineSelect,GoroutineIdle",
                  "--strategies=frames-parallel,conservative-serial", "--n=1000", "--workers=1,2",
                  NULL);
  assert_int_equal(a->rc, 0);
  bench_plan plan;
  char err[256];
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), 0);
  assert_int_equal(plan.nitems, 2 * 2 * 1 * 2);
  static const char *const want[] = {
      "GoroutineSelect/frames-parallel/n:1000/workers:1/compact",
      "GoroutineSelect/frames-parallel/n:1000/workers:2/compact",
      "GoroutineSelect/conservative-serial/n:1000/workers:1/compact",
      "GoroutineSelect/conservative-serial/n:1000/workers:2/compact",
      "GoroutineIdle/frames-parallel/n:1000/workers:1/compact",
      "GoroutineIdle/frames-parallel/n:1000/workers:2/compact",
      "GoroutineIdle/conservative-serial/n:1000/workers:1/compact",
      "GoroutineIdle/conservative-serial/n:1000/workers:2/compact"};
  for (size_t i = 0; i < plan.nitems; i++) assert_string_equal(plan.item[i].name, want[i]);
  assert_int_equal(plan.item[7].workload, 3);
  assert_int_equal(plan.item[7].workers, 2);
  assert_int_equal(plan.item[7].strategy.scan, REF_SCAN_CONSERVATIVE);
  bench_plan_free(&plan);
}

/* reuse is the innermost dimension; reuse=off keeps the names older
 * baselines have, others are named. */
static void test_plan_reuse(void **state) {
  (void)state;
  args *a = parse("--workloads=GoroutineIdle", "--strategies=frames-serial", "--workers=1",
                  "--reuse=off,clean", NULL);
  assert_int_equal(a->rc, 0);
  bench_plan plan;
  char err[256];
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), 0);
  assert_int_equal(plan.nitems, 2);
  assert_string_equal(plan.item[0].name, "GoroutineIdle/frames-serial/n:1000/workers:1/compact");
  assert_string_equal(plan.item[1].name,
                      "GoroutineIdle/frames-serial/n:1000/workers:1/compact/reuse:clean");
  assert_int_equal(plan.item[1].reuse, REF_REUSE_CLEAN);
  bench_plan_free(&plan);
  a = parse("--reuse=clean,clean", NULL);
  assert_int_not_equal(a->rc, 0);
  a = parse("--reuse=dirty", NULL);
  assert_non_null(strstr(a->err, "accepted: off, clean"));
}

/* mutators sits between workers and reuse; mutators:1 keeps the names of
 * before it existed, others are named before /reuse:. The printout says
 * where each mutator count's threads go: where the workers of that index. */
static void test_plan_mutators(void **state) {
  (void)state;
  args *a = parse("--workloads=GoroutineIdle", "--strategies=frames-serial", "--workers=1,2",
                  "--mutators=1,4", "--reuse=off,clean", NULL);
  assert_int_equal(a->rc, 0);
  bench_plan plan;
  char err[256];
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), 0);
  static const char *const want[] = {
      "GoroutineIdle/frames-serial/n:1000/workers:1/compact",
      "GoroutineIdle/frames-serial/n:1000/workers:1/compact/reuse:clean",
      "GoroutineIdle/frames-serial/n:1000/workers:1/compact/mutators:4",
      "GoroutineIdle/frames-serial/n:1000/workers:1/compact/mutators:4/reuse:clean",
      "GoroutineIdle/frames-serial/n:1000/workers:2/compact",
      "GoroutineIdle/frames-serial/n:1000/workers:2/compact/reuse:clean",
      "GoroutineIdle/frames-serial/n:1000/workers:2/compact/mutators:4",
      "GoroutineIdle/frames-serial/n:1000/workers:2/compact/mutators:4/reuse:clean"};
  assert_int_equal(plan.nitems, REF_ARRAY_SIZE(want));
  for (size_t i = 0; i < plan.nitems; i++) {
    assert_string_equal(plan.item[i].name, want[i]);
    assert_int_equal(plan.item[i].mutators, i / 2 % 2 ? 4 : 1);
    assert_int_equal(plan.item[i].workers, i < 4 ? 1 : 2);
  }
  topo *t = topo_load("pack:1 core:2 pu:1");
  assert_non_null(t);
  char *text = printed(&plan, t);
  assert_non_null(strstr(text, "workers:2    PU L#0 (P#0), L#1 (P#1)\n"));
  assert_non_null(strstr(text, "mutators bound to (mutator 0, the ref_init thread, first):\n"
                               "  mutators:1   PU L#0 (P#0)\n"
                               "  mutators:4   PU L#0 (P#0), L#1 (P#1), L#0 (P#0), L#1 (P#1)\n"));
  free(text);
  bench_plan_free(&plan);
  /* One mutator: the printout of before. */
  a = parse("--workloads=GoroutineIdle", "--strategies=frames-serial", "--workers=2", NULL);
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), 0);
  text = printed(&plan, t);
  assert_null(strstr(text, "mutators"));
  free(text);
  bench_plan_free(&plan);
  topo_free(t);
}

/* Builds a's plan and checks that item i is named base + want[i]; the plan
 * is returned for checks of its own (bench_plan_free it). */
static bench_plan plan_named(args *a, const char *base, const char *const *want, size_t n) {
  assert_int_equal(a->rc, 0);
  bench_plan plan;
  char err[256];
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), 0);
  assert_int_equal(plan.nitems, n);
  for (size_t i = 0; i < plan.nitems; i++) {
    char name[160];
    snprintf(name, sizeof name, "%s%s", base, want[i]);
    assert_string_equal(plan.item[i].name, name);
  }
  return plan;
}

/* preempt sits between mutators and reuse; cooperative keeps the names of
 * before it existed, async is named. */
static void test_plan_preempt(void **state) {
  (void)state;
  args *a = parse("--workloads=GoroutineIdle", "--strategies=frames-serial", "--workers=1",
                  "--mutators=2", "--preempt=cooperative,async", "--reuse=off,clean", NULL);
  static const char *const want[] = {"", "/reuse:clean", "/preempt:async",
                                     "/preempt:async/reuse:clean"};
  bench_plan plan = plan_named(a, "GoroutineIdle/frames-serial/n:1000/workers:1/compact/mutators:2",
                               want, REF_ARRAY_SIZE(want));
  for (size_t i = 0; i < plan.nitems; i++) {
    assert_int_equal(plan.item[i].preempt, i / 2 ? REF_PREEMPT_ASYNC : REF_PREEMPT_COOPERATIVE);
    assert_int_equal(plan.item[i].reuse, i % 2 ? REF_REUSE_CLEAN : REF_REUSE_OFF);
  }
  bench_plan_free(&plan);
}

/* mode sits between preempt and reuse; stw keeps the names of before it
 * existed, the concurrent modes are named. */
static void test_plan_mode(void **state) {
  (void)state;
  args *a = parse("--workloads=GoroutineIdle", "--strategies=frames-rootjobs", "--workers=1",
                  "--preempt=async", "--mode=stw,concurrent-hybrid", "--reuse=off,clean", NULL);
  static const char *const want[] = {"", "/reuse:clean", "/mode:concurrent-hybrid",
                                     "/mode:concurrent-hybrid/reuse:clean"};
  bench_plan plan =
      plan_named(a, "GoroutineIdle/frames-rootjobs/n:1000/workers:1/compact/preempt:async", want,
                 REF_ARRAY_SIZE(want));
  for (size_t i = 0; i < plan.nitems; i++)
    assert_int_equal(plan.item[i].mode, i / 2 ? REF_MODE_CONCURRENT_HYBRID : REF_MODE_STW);
  bench_plan_free(&plan);
}

/* --workers=all becomes the PU count; the printout shows where workers go. */
static void test_plan_print_synthetic(void **state) {
  (void)state;
  args *a = parse("--workloads=GoroutineSelect", "--strategies=frames-parallel",
                  "--placement=scatter", "--topology=pack:2 numa:2 core:4 pu:2", NULL);
  assert_int_equal(a->rc, 0);
  bench_plan plan;
  char err[256];
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), -1);
  assert_non_null(strstr(err, "bench_opts_resolve"));
  topo *t = topo_load(a->o.topology);
  assert_non_null(t);
  bench_opts_resolve(&a->o, t);
  assert_int_equal(a->o.nworkers, 1);
  assert_int_equal(a->o.workers[0], 32);
  a->o.workers[1] = 4;
  a->o.nworkers = 2;
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), 0);

  char *text = printed(&plan, t);
  assert_non_null(strstr(text, "topology: 2 packages, 4 NUMA nodes, 16 cores, 32 PUs (synthetic)"));
  assert_non_null(strstr(text, "placement: scatter"));
  assert_non_null(strstr(text, "  GoroutineSelect/frames-parallel/n:1000/workers:32/scatter\n"));
  assert_non_null(strstr(text, "  GoroutineSelect/frames-parallel/n:1000/workers:4/scatter\n"));
  /* Scatter's first four PUs: one per NUMA node (see test_topo.c). */
  assert_non_null(strstr(text, "workers:4    PU L#0 (P#0), L#16 (P#16), L#8 (P#8), L#24 (P#24)\n"));
  assert_non_null(strstr(text, "workers:32   PU L#0 (P#0), L#16 (P#16),"));
  free(text);
  bench_plan_free(&plan);
  topo_free(t);
}

/* GoroutineLatency needs two mutators (wl_desc.min_mutators): a sweep with
 * one is refused whole, naming the workload and the count; with two it is
 * planned as the others are, in every mode. */
static void test_plan_min_mutators(void **state) {
  (void)state;
  args *a = parse("--workloads=GoroutineLatency", "--strategies=frames-rootjobs", "--workers=1",
                  "--mutators=2", "--mode=stw,concurrent-hybrid,concurrent-rescan", NULL);
  static const char *const want[] = {"", "/mode:concurrent-hybrid", "/mode:concurrent-rescan"};
  bench_plan plan = plan_named(a, "GoroutineLatency/frames-rootjobs/n:1000/workers:1/compact/"
                               "mutators:2", want, REF_ARRAY_SIZE(want));
  bench_plan_free(&plan);
  char err[256];
  a = parse("--workloads=GoroutineIdle,GoroutineLatency", "--strategies=frames-serial",
            "--workers=1", "--mutators=2,1", NULL);
  assert_int_equal(a->rc, 0);
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), -1);
  assert_string_equal(err, "--mutators: GoroutineLatency needs 2 or more mutators, and the sweep "
                           "has 1 (the default is 1, or STACKSCAN_MUTATORS's value)");
  /* The default count, 1, with the other workloads alone is a plan. */
  a = parse("--workloads=GoroutineIdle", "--strategies=frames-serial", "--workers=1", NULL);
  assert_int_equal(bench_plan_make(&a->o, table, NTABLE, &plan, err, sizeof err), 0);
  bench_plan_free(&plan);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan_cross_product),
      cmocka_unit_test(test_plan_reuse),
      cmocka_unit_test(test_plan_mutators),
      cmocka_unit_test(test_plan_preempt),
      cmocka_unit_test(test_plan_mode),
      cmocka_unit_test(test_plan_min_mutators),
      cmocka_unit_test(test_plan_print_synthetic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
