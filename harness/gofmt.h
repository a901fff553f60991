/*
 * gofmt.h: Go benchmark lines (testing.BenchmarkResult's format), so that
 * benchstat can read stackscan-bench's results (--format=go).
 */
#ifndef HARNESS_GOFMT_H
#define HARNESS_GOFMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "Workload/strategy/n:N/workers:W/placement" -> "BenchmarkWorkload/strategy/n:N-W"
 * (Go's GOMAXPROCS suffix; omitted for W == 1, as Go does); the "/k:v" parts
 * after the placement ("/mutators:M", "/reuse:R") stay, in order, before the
 * suffix, so those settings never merge. A name without "/workers:" is kept
 * whole. Returns the length needed (snprintf-style). */
int bench_go_name(char *buf, size_t len, const char *name);

typedef struct bench_metric {
  double value;
  const char *unit;               /* e.g. "ns/goroutine", "B/op" */
} bench_metric;

/* One Go result line, without newline, in testing.BenchmarkResult's format:
 * "<go name>\t<iterations %8d>\t<ns/op> ns/op[\t<value> <unit>]...", numbers
 * printed with Go's significant-digit rules. Returns the length needed. */
int bench_go_line(char *buf, size_t len, const char *name, int64_t iterations, double ns_per_op,
                  const bench_metric *extra, size_t nextra);

/* The header lines benchstat reads as configuration (goos, goarch, pkg, cpu). */
void bench_go_header(FILE *f, const char *cpu);

#endif /* HARNESS_GOFMT_H */
