/*
 * test_gbench.c: the C wrapper over Google Benchmark. Each test registers a
 * benchmark with a fixed iteration count and manual time (so every reported
 * number is exact, no clock involved), runs it alone into a JSON file, and
 * reads the numbers back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gbench.h"

static char out_path[] = "/tmp/stackscan_gbench_XXXXXX";
static char out_flag[64];

/* ---------------------------------------------------------------------------
 * JSON helpers: the benchmarks array holds flat objects, so one object runs
 * from its "name" to the next '}'.
 * ------------------------------------------------------------------------- */

static char *read_output(void) {
  FILE *f = fopen(out_path, "rb");
  assert_non_null(f);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

/* Copies the JSON object of benchmark `name` into obj. */
static void find_object(const char *json, const char *name, char *obj, size_t len) {
  char key[256];
  snprintf(key, sizeof key, "\"name\": \"%s\"", name);
  const char *start = strstr(json, key);
  if (start == NULL) fail_msg("benchmark %s not in output:\n%s", name, json);
  const char *end = strchr(start, '}');
  assert_non_null(end);
  assert_true((size_t)(end - start) < len);
  memcpy(obj, start, (size_t)(end - start));
  obj[end - start] = '\0';
}

/* The number after "key": in obj; fails the test when absent. */
static double number(const char *obj, const char *key) {
  char k[128];
  snprintf(k, sizeof k, "\"%s\": ", key);
  const char *p = strstr(obj, k);
  if (p == NULL) fail_msg("no %s in %s", key, obj);
  return strtod(p + strlen(k), NULL);
}

static void assert_close(double got, double want) {
  double d = got - want, tol = 1e-9 * (want < 0 ? -want : want);
  if (d > tol || d < -tol) fail_msg("got %.17g, want %.17g", got, want);
}

/* ---------------------------------------------------------------------------
 * Benchmarks under test
 * ------------------------------------------------------------------------- */

typedef struct probe {
  double seconds;          /* manual time per iteration */
  int64_t max_iterations, iterations_done, range0;
  int thread_index, threads;
  bool error_seen;
} probe;

/* Manual time only, plus counters of each kind set to 12. */
static void bm_manual(gb_state *st, void *arg) {
  probe *p = arg;
  p->max_iterations = gb_max_iterations(st);
  p->thread_index = gb_thread_index(st);
  p->threads = gb_threads(st);
  while (gb_keep_running(st)) gb_set_iteration_time(st, p->seconds);
  p->iterations_done = gb_iterations_done(st);
  assert_int_equal(gb_counter(st, "plain", 12, GB_COUNTER_DEFAULT), 0);
  assert_int_equal(gb_counter(st, "rate", 12, GB_COUNTER_RATE), 0);
  assert_int_equal(gb_counter(st, "per_iter", 12, GB_COUNTER_AVG_ITERATIONS), 0);
  assert_int_equal(gb_counter(st, "bad", 12, 1u << 20), -1);
}

static void bm_error(gb_state *st, void *arg) {
  probe *p = arg;
  gb_skip_with_error(st, "workload failed: boom");
  p->error_seen = gb_error_occurred(st);
  while (gb_keep_running(st)) fail_msg("loop ran after skip_with_error");
}

static void bm_arg(gb_state *st, void *arg) {
  probe *p = arg;
  p->range0 = gb_range(st, 0);
  while (gb_keep_running_batch(st, 2)) {
    gb_pause_timing(st);
    gb_resume_timing(st);
    gb_set_iteration_time(st, 0.001);
  }
}

/* ---------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void test_initialize_keeps_unknown_arguments(void **state) {
  (void)state;
  char a0[] = "test_gbench", a2[] = "--benchmark_out_format=json", a3[] = "--workers=2",
       a4[] = "--benchmark_format=console", a5[] = "extra";
  char *argv[] = {a0, out_flag, a2, a3, a4, a5, NULL};
  int argc = 6;
  assert_int_equal(gb_initialize(&argc, argv), 0);
  /* Google Benchmark's flags are gone; ours are left, in order. */
  assert_int_equal(argc, 3);
  assert_string_equal(argv[1], "--workers=2");
  assert_string_equal(argv[2], "extra");
  assert_int_equal(gb_add_context("stackscan_topology", "1 package, 2 PUs"), 0);
  assert_int_equal(gb_add_context(NULL, "x"), -1);
}

static void test_register_rejects_bad_arguments(void **state) {
  (void)state;
  assert_null(gb_register("", bm_manual, NULL));
  assert_null(gb_register("gbtest/nofn", NULL, NULL));
  assert_true(strlen(gb_error()) > 0);
  gb_bench *b = gb_register("gbtest/unused", bm_manual, NULL);
  assert_non_null(b);
  assert_ptr_equal(gb_iterations(b, 0), b);
  assert_non_null(strstr(gb_error(), "n must be > 0"));
  assert_ptr_equal(gb_min_time(gb_iterations(b, 5), 1.0), b);
  assert_non_null(strstr(gb_error(), "iterations already set"));
  assert_ptr_equal(gb_repetitions(b, -1), b);
  assert_non_null(strstr(gb_error(), "gb_repetitions"));
  assert_null(gb_unit(NULL, GB_MS));
}

static void test_manual_time_and_counters_reach_json(void **state) {
  (void)state;
  probe p = {.seconds = 0.25};
  gb_bench *b = gb_register("gbtest/manual", bm_manual, &p);
  gb_unit(gb_iterations(gb_use_manual_time(b), 4), GB_MS);
  assert_int_equal(gb_run_matching("^gbtest/manual"), 1);
  assert_int_equal(p.max_iterations, 4);
  assert_int_equal(p.iterations_done, 4);
  assert_int_equal(p.thread_index, 0);
  assert_int_equal(p.threads, 1);

  char obj[4096];
  /* Google Benchmark appends the fixed iterations and manual-time marks. */
  find_object(read_output(), "gbtest/manual/iterations:4/manual_time", obj, sizeof obj);
  assert_non_null(strstr(obj, "\"time_unit\": \"ms\""));
  assert_close(number(obj, "iterations"), 4);
  assert_close(number(obj, "real_time"), 250.0); /* 0.25 s per iteration, in ms */
  /* plain: as set; rate: 12 / (4 x 0.25 s); per_iter: 12 / 4 iterations. */
  assert_close(number(obj, "plain"), 12);
  assert_close(number(obj, "rate"), 12.0 / 1.0);
  assert_close(number(obj, "per_iter"), 3);
}

static void test_rate_counter_divides_by_manual_time(void **state) {
  (void)state;
  probe p = {.seconds = 0.5};
  gb_bench *b = gb_register("gbtest/rate", bm_manual, &p);
  gb_iterations(gb_use_manual_time(b), 3);
  assert_int_equal(gb_run_matching("^gbtest/rate"), 1);
  char obj[4096];
  find_object(read_output(), "gbtest/rate/iterations:3/manual_time", obj, sizeof obj);
  assert_close(number(obj, "real_time"), 0.5e9); /* default unit: ns */
  assert_close(number(obj, "rate"), 12.0 / 1.5);  /* value / total time in s */
  assert_close(number(obj, "per_iter"), 4);
}

static void test_skip_with_error_is_reported(void **state) {
  (void)state;
  probe p = {0};
  gb_iterations(gb_register("gbtest/error", bm_error, &p), 1);
  assert_int_equal(gb_run_matching("^gbtest/error"), 1);
  assert_true(p.error_seen);
  char obj[4096];
  find_object(read_output(), "gbtest/error/iterations:1", obj, sizeof obj);
  assert_non_null(strstr(obj, "\"error_occurred\": true"));
  assert_non_null(strstr(obj, "\"error_message\": \"workload failed: boom\""));
}

static void test_context_and_arg(void **state) {
  (void)state;
  probe p = {0};
  gb_bench *b = gb_register("gbtest/arg", bm_arg, &p);
  gb_iterations(gb_use_manual_time(gb_arg(b, 7)), 4);
  assert_int_equal(gb_run_matching("^gbtest/arg"), 1);
  assert_int_equal(p.range0, 7);
  const char *json = read_output();
  const char *ctx = strstr(json, "\"context\": {");
  const char *bms = strstr(json, "\"benchmarks\": [");
  assert_non_null(ctx);
  assert_non_null(bms);
  const char *entry = strstr(ctx, "\"stackscan_topology\": \"1 package, 2 PUs\"");
  assert_non_null(entry);
  assert_true(entry < bms); /* in the context object, not in a benchmark */
  char obj[4096];
  find_object(json, "gbtest/arg/7/iterations:4/manual_time", obj, sizeof obj);
  /* Two batch calls of 2 iterations, 1 ms set per call: 2 ms / 4 iterations. */
  assert_close(number(obj, "real_time"), 0.5e6);
}

static int setup(void **state) {
  (void)state;
  int fd = mkstemp(out_path);
  if (fd < 0) return -1;
  close(fd);
  snprintf(out_flag, sizeof out_flag, "--benchmark_out=%s", out_path);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  gb_shutdown();
  unlink(out_path);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_initialize_keeps_unknown_arguments),
      cmocka_unit_test(test_register_rejects_bad_arguments),
      cmocka_unit_test(test_manual_time_and_counters_reach_json),
      cmocka_unit_test(test_rate_counter_divides_by_manual_time),
      cmocka_unit_test(test_skip_with_error_is_reported),
      cmocka_unit_test(test_context_and_arg),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
