/*
 * run.h: running one planned benchmark -- a GC workload or a micro benchmark
 * -- inside Google Benchmark, and remembering its result for --format=go.
 */
#ifndef HARNESS_RUN_H
#define HARNESS_RUN_H

#include "cli.h"
#include "gbench.h"
#include "gofmt.h"
#include "plan.h"
#include "topo.h"
#include "workloads.h"

/* What every run of the process shares. */
typedef struct run_env {
  const bench_opts *opts;
  const bench_plan *plan;
  const topo *topo;
  size_t ngc;                 /* GC workloads in the name table (micros follow) */
} run_env;

/* One registered benchmark. */
typedef struct run_item {
  const run_env *env;
  const bench_item *item;     /* NULL for a micro benchmark */
  const wl_desc *wl;          /* GC workload, or NULL */
  const wl_micro *micro;      /* micro benchmark, or NULL */
  char name[160];
  size_t index, total;        /* for progress */
} run_item;

void run_gc_workload(gb_state *st, void *arg);
/* --prefetch=auto: times ref_debug_touch_stacks with a few candidate
 * distance triples on a runtime of its own with AUTO_N parked GoroutineIdle
 * goroutines (the median of 3 each, within a bounded sweep) and sets
 * o->prefetch to the fastest. Returns 0, or -1 with err set. */
int run_prefetch_auto(bench_opts *o, char *err, size_t errlen);
void run_micro(gb_state *st, void *arg);

/* Results kept for the Go-format listing, one per finished run. */
typedef struct run_result {
  char name[160];
  int64_t iterations;
  double ns_per_op;
  bench_metric extra[6];
  size_t nextra;
} run_result;

size_t run_results(const run_result **out);
void run_results_free(void);
/* Benchmark runs that ended with an error (a failed setup, wake, survivor
 * check or micro benchmark check). */
size_t run_failures(void);

#endif /* HARNESS_RUN_H */
