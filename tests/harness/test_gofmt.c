/*
 * test_gofmt.c: the Go benchmark-line formatter (--format=go, for benchstat).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gofmt.h"

static void test_go_line(void **state) {
  (void)state;
  char buf[256];
  const bench_metric extra[] = {{123, "ns/goroutine"}, {0.5, "allocs/op"}, {12345.6, "B/op"}};
  int n = bench_go_line(buf, sizeof buf, "GoroutineSelect/frames-parallel/n:1000/workers:2/compact",
                        50, 108027405, extra, 3);
  /* Go's widths: %8d iterations; >= 999.95 -> %10.0f; >= 99.995 -> %12.1f;
   * >= 0.099995 -> %15.4f. */
  const char *want = "BenchmarkGoroutineSelect/frames-parallel/n:1000-2\t      50\t 108027405 ns/op"
                     "\t       123.0 ns/goroutine\t         0.5000 allocs/op\t     12346 B/op";
  assert_string_equal(buf, want);
  assert_int_equal(n, (int)strlen(want));

  /* Truncation reports the full length, like snprintf. */
  char small[12];
  assert_int_equal(bench_go_line(small, sizeof small, "GoroutineSelect/frames-parallel/n:1000/workers:2/compact",
                                 50, 108027405, extra, 3), n);
  assert_string_equal(small, "BenchmarkGo");
}

static void test_go_name(void **state) {
  (void)state;
  char buf[128];
  /* W == 1: Go prints no GOMAXPROCS suffix. */
  bench_go_name(buf, sizeof buf, "GoroutineIdle/frames-serial/n:1000/workers:1/none");
  assert_string_equal(buf, "BenchmarkGoroutineIdle/frames-serial/n:1000");
  /* Google Benchmark's own suffixes go too. */
  bench_go_name(buf, sizeof buf, "X/conservative-serial/n:10/workers:4/scatter/iterations:3/manual_time");
  assert_string_equal(buf, "BenchmarkX/conservative-serial/n:10-4");
  /* The reuse setting stays, before the suffix. */
  bench_go_name(buf, sizeof buf, "X/frames-serial/n:10/workers:2/compact/reuse:clean/manual_time");
  assert_string_equal(buf, "BenchmarkX/frames-serial/n:10/reuse:clean-2");
  bench_go_name(buf, sizeof buf, "X/frames-serial/n:10/workers:1/compact/reuse:clean");
  assert_string_equal(buf, "BenchmarkX/frames-serial/n:10/reuse:clean");
  /* So does the mutator count, then reuse, as in the bench's name. */
  bench_go_name(buf, sizeof buf,
                "X/frames-serial/n:10/workers:2/compact/mutators:4/reuse:clean/manual_time");
  assert_string_equal(buf, "BenchmarkX/frames-serial/n:10/mutators:4/reuse:clean-2");
  bench_go_name(buf, sizeof buf, "X/frames-serial/n:10/workers:1/scatter/mutators:2");
  assert_string_equal(buf, "BenchmarkX/frames-serial/n:10/mutators:2");
  /* And the preemption, between them. */
  bench_go_name(buf, sizeof buf,
                "X/frames-serial/n:10/workers:2/compact/mutators:2/preempt:async/reuse:clean");
  assert_string_equal(buf, "BenchmarkX/frames-serial/n:10/mutators:2/preempt:async/reuse:clean-2");
  bench_go_name(buf, sizeof buf, "MicroScan/direct");
  assert_string_equal(buf, "BenchmarkMicroScan/direct");
  /* Zero ns/op is left out, as Go does. */
  bench_go_line(buf, sizeof buf, "M/workers:3/compact", 1, 0, NULL, 0);
  assert_string_equal(buf, "BenchmarkM-3\t       1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_go_line),
      cmocka_unit_test(test_go_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
