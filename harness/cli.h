/*
 * cli.h: stackscan-bench's command line: the flags parsed into bench_opts,
 * and --help.
 *
 * Flow (main.c):
 *   bench_parse(&argc, argv, table, ntable, &o, err, sizeof err)  -> exit 2 on error
 *   o.help: bench_usage(stdout, ...), exit 0
 *   t = topo_load(o.topology)        -> on NULL: "stackscan-bench: --topology: <topo_error()>", exit 2
 *   bench_opts_resolve(&o, t, ...)                   (plan.h; fills --workers=all)
 *   bench_plan_make(&o, table, ntable, &plan, ...)   (plan.h)
 *   o.list || o.topology: bench_plan_print(stdout, ...), exit 0
 *   gb_initialize(&argc, argv); bench_check_leftover(argc, argv, ...) -> exit 2 on error
 *   register and run plan.item[*]; --format=go prints gofmt.h's lines
 *
 * Errors are one line, "<flag>: <what is wrong>; accepted: <values>", or for
 * a shape flag out of the workloads' limits "<flag>: "<value>": <their
 * message>"; the caller prints "stackscan-bench: <message>" on stderr and
 * exits with BENCH_EXIT_USAGE.
 */
#ifndef HARNESS_CLI_H
#define HARNESS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ref.h"
#include "topo.h"
#include "workloads.h"

#define BENCH_EXIT_USAGE 2
#define BENCH_MAX_LIST 64           /* items per list flag */
#define BENCH_MAX_STRATEGIES 6
#define BENCH_MAX_N 10000000        /* --n upper bound (goroutines) */
#define BENCH_MAX_MEM ((uint64_t)1 << 50)       /* --max-mem: 1 PiB */
#define BENCH_MIN_STACK ((uint64_t)16 << 10)    /* --stack-size: ref's minimum, 4 pages */
#define BENCH_MAX_STACK ((uint64_t)1 << 30)     /* --stack-size: 1 GiB, Go's maximum */
#define BENCH_DEFAULT_WORKLOADS "GoroutineSelect,GoroutineBlocking,GoroutineForRange,GoroutineIdle"
#define BENCH_DEFAULT_STRATEGIES "conservative-serial,frames-serial,frames-parallel"
#define BENCH_DEFAULT_N 1000

/* The workloads the binary knows, supplied by the caller (the workloads
 * registry). `--workloads=micro` selects every BENCH_WL_MICRO entry. */
typedef enum bench_wl_kind { BENCH_WL_GO, BENCH_WL_MICRO } bench_wl_kind;
typedef struct bench_workload_name {
  const char *name;
  bench_wl_kind kind;
} bench_workload_name;

typedef enum bench_format { BENCH_FORMAT_CONSOLE, BENCH_FORMAT_GO } bench_format;

typedef struct bench_strategy {
  ref_phase phase;
  ref_scan scan;
} bench_strategy;

/* Parsed flags. Lists keep the order given; duplicates are rejected. */
typedef struct bench_opts {
  int workload[BENCH_MAX_LIST];   /* indices into the workload table */
  int nworkloads;
  bench_strategy strategy[BENCH_MAX_STRATEGIES];
  int nstrategies;
  ref_stackmaps stackmaps;        /* default pctab */
  ref_reuse reuse[REF_NREUSES];   /* default {off} */
  int nreuse;
  ref_preempt preempt[REF_NPREEMPTS]; /* default {cooperative} */
  int npreempt;
  ref_mode mode[REF_NMODES];      /* default {stw} */
  int nmode;
  int64_t n[BENCH_MAX_LIST];      /* goroutines, 1..BENCH_MAX_N; default {1000} */
  int nn;
  int workers[BENCH_MAX_LIST];    /* 1..REF_MAX_WORKERS */
  int nworkers;                   /* 0 while workers_all (until bench_opts_resolve) */
  bool workers_all;               /* --workers=all or no --workers: W = number of PUs */
  /* P, the threads that run goroutines (ref_config.mutators), 1..REF_MAX_MUTATORS;
   * default {1}, or STACKSCAN_MUTATORS's value (bench_mutators_env). */
  int mutators[BENCH_MAX_LIST];
  int nmutators;
  bool mutators_given;            /* --mutators was on the command line */
  topo_placement placement;       /* default compact */
  /* Workload shape; -1 = the workload's own default. Given values pass
   * wl_params_check (workloads.h's WL_ limits). */
  int64_t depth;                  /* frames per goroutine */
  int64_t frame_bytes;            /* native bytes per frame */
  int64_t slots;                  /* GC slots per frame record */
  int64_t heap_per_g;             /* heap bytes held per goroutine */
  double wake;                    /* Parked's wake fraction; -1 = default */
  int64_t dirty;                  /* DirtyStack's bytes per wake */
  int64_t poll_every;             /* GoroutineSpin's work units between polls; 0 never,
                                     accepted only when every preempt is async */
  const char *topology;           /* --topology (points into argv); NULL: this machine */
  const char *trace;              /* --trace=FILE (points into argv); NULL: no timeline */
  bench_format format;            /* default console */
  bool list, help, checkmark;
  uint64_t seed;                  /* default 1 */
  uint64_t max_mem;               /* bytes; 0 = not given (ref's default) */
  int64_t gc_percent;             /* GOGC of every run; default ref's; -1 = off */
  uint64_t stack_size;            /* bytes per goroutine stack, a multiple of 4 KiB;
                                     0 = not given (ref's default) */
  /* --prefetch: ref_config's walk_ahead, lines_ahead, prefetch_lines, each
   * 1..ref.h's limit; all 0 = auto (run_prefetch_auto fills them in). */
  int prefetch[3];
  bool prefetch_auto;             /* they were auto (set by main) */
} bench_opts;

/* Parses argv[1..*argc) into *o (defaults first). Recognised flags are
 * removed from argv; Google Benchmark's (--benchmark_*, --v) are kept, in
 * order, for gb_initialize, and *argc is updated. Flags take "--f=v" or
 * "--f v". Returns 0, or -1 with a one-line message in err. */
int bench_parse(int *argc, char **argv, const bench_workload_name *table, size_t ntable,
                bench_opts *o, char *err, size_t errlen);

/* The workload parameters the flags give for n readers (the shape fields
 * -1 where the workload's default applies). */
wl_params bench_wl_params(const bench_opts *o, int64_t n);

/* STACKSCAN_MUTATORS sets ref_config.mutators's default, as GOMAXPROCS
 * sets Go's (ref.h): without --mutators its value is the list, so that the
 * runs are named for what runs there; a --mutators list wins over it, as a
 * program's own setting does in ref_init (go test's -cpu over GOMAXPROCS).
 * env: the variable's value, NULL or "" when unset. Returns 0, or -1 with a
 * one-line message in err when the value is used and is not a count in
 * 1..REF_MAX_MUTATORS (ref_init would refuse it as a default). */
int bench_mutators_env(bench_opts *o, const char *env, char *err, size_t errlen);

/* Rejects what is left after gb_initialize removed Google Benchmark's own
 * flags (a misspelled --benchmark_ flag, say). Returns 0 when only argv[0]
 * is left, else -1 with a message in err. */
int bench_check_leftover(int argc, char **argv, char *err, size_t errlen);

/* Prints --help: every flag, its values and default, and the Google
 * Benchmark flags that pass through. */
void bench_usage(FILE *f, const bench_workload_name *table, size_t ntable);

#endif /* HARNESS_CLI_H */
