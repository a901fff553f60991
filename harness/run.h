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

/* The per-cycle times a collector benchmark reports besides the cycle's
 * total, by ref_gc_stats field. Phases are means over the timed cycles
 * (they add up, with the stop, to the cycle's time); the pause's time to
 * safepoint and its whole length are distributions, reported as the
 * median and the maximum over the cycles (X(field, name of the maximum)).
 * The JSON context lists both kinds (phase_counters, pause_counters) for
 * the reports; neither is an exact counter. */
#define RUN_PHASES(X) X(roots_ns) X(mark_ns) X(sweep_ns)
/* The CPU time spent marking, summed over threads (ref_gc_stats), the
 * mean per cycle as the phases: no phase of the cycle's wall time, so not
 * among them (the reports stack those). */
#define RUN_CPU_TIMES(X) X(mark_cpu_ns)
#define RUN_PAUSES(X) X(ttsp_ns, ttsp_max_ns) X(stw_ns, stw_max_ns)
/* What the stop did, counted per cycle and reported as the mean over the
 * timed cycles: async_preempts, the goroutines the stop stopped by
 * preempt=async's signal (the rest were at a safepoint, parked or idle).
 * They depend on timing, so they are no exact counters, and they are no
 * times: the context lists them under stop_counters. */
#define RUN_STOP_COUNTS(X) X(async_preempts)

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
