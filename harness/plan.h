/*
 * plan.h: the benchmark plan -- workloads x strategies x n x workers x
 * mutators x preempt x reuse, the placement fixed per run -- built from the parsed
 * flags (cli.h), and its printout for --list and --topology.
 */
#ifndef HARNESS_PLAN_H
#define HARNESS_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "topo.h"

/* Fills in what depends on the topology: --workers=all becomes {PU count}
 * (capped at REF_MAX_WORKERS). */
void bench_opts_resolve(bench_opts *o, const topo *t);

typedef struct bench_item {
  int workload;                   /* index into the workload table */
  bench_strategy strategy;
  int64_t n;
  int workers;
  int mutators;
  ref_preempt preempt;
  ref_mode mode;
  ref_reuse reuse;
  char name[160];                 /* Workload/strategy/n:N/workers:W/placement, then
                                     /mutators:M unless M is 1, /preempt:P unless P
                                     is cooperative, /mode:X unless X is stw and
                                     /reuse:R unless R is off, so
                                     that the names of runs with the defaults stay
                                     those of older baselines */
} bench_item;

typedef struct bench_plan {
  bench_item *item;               /* nitems entries, workload-major order */
  size_t nitems;
  topo_placement placement;
  ref_stackmaps stackmaps;
} bench_plan;

/* Builds the cross product (call bench_opts_resolve first), workload-major,
 * then preempt, mode and reuse innermost. Returns 0, or -1 with a message in err;
 * among the refusals, an item with fewer mutators than its workload's
 * wl_desc.min_mutators (found by name with wl_find). */
int bench_plan_make(const bench_opts *o, const bench_workload_name *table, size_t ntable,
                    bench_plan *plan, char *err, size_t errlen);
void bench_plan_free(bench_plan *plan);

/* Prints the plan (for --list and --topology): the topology summary, the
 * settings, every benchmark name, and for each worker count the PUs its
 * workers are bound to (and, when a mutator count is not 1, for each the
 * PUs of its mutators). Returns 0, or -1 if a placement cannot be made
 * (topo_error() says why). */
int bench_plan_print(FILE *f, const bench_plan *plan, const topo *t);

#endif /* HARNESS_PLAN_H */
