/*
 * run.c: the body of every benchmark. A GC workload run starts a runtime
 * with the item's strategy, workers and mutators (bound by the topology
 * plan from the worker- and mutator-start callbacks), sets the workload up,
 * and then per iteration wakes every reader (untimed) and times exactly one
 * ref_gc() as manual time, as Go's malloc_test.go does; the workload says
 * from where it is called (wl_collect: the main thread, or a goroutine
 * while others run). Counters carry the cycle's phase and pause times, what
 * its stop did, and deterministic work counts; finish() verifies every
 * survivor.
 */
#include "run.h"

#include "perfctl.h"
#include "tracefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static run_result *results;
static size_t nresults, capresults;
static size_t nfailed;

size_t run_failures(void) { return nfailed; }

/* Ends the benchmark run with an error that Google Benchmark reports with
 * it, and counts it for the exit status. */
static void fail_run(gb_state *st, const char *msg) {
  gb_skip_with_error(st, msg);
  nfailed++;
}

size_t run_results(const run_result **out) {
  *out = results;
  return nresults;
}

void run_results_free(void) {
  free(results);
  results = NULL;
  nresults = capresults = 0;
}

/* Google Benchmark calls a benchmark with growing iteration counts until one
 * run is long enough, then repeats that count for further repetitions; only
 * those final runs are results. So a run replaces the previous one of the
 * same benchmark when it has more iterations (that one was a trial). */
static void result_add(const run_result *r) {
  if (nresults > 0 && strcmp(results[nresults - 1].name, r->name) == 0 &&
      results[nresults - 1].iterations < r->iterations) {
    results[nresults - 1] = *r;
    return;
  }
  if (nresults == capresults) {
    size_t cap = capresults ? capresults * 2 : 64;
    run_result *nr = realloc(results, cap * sizeof *nr);
    if (!nr) return; /* the Go listing loses a line; the JSON does not */
    results = nr;
    capresults = cap;
  }
  results[nresults++] = *r;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Progress on stderr, only for a person watching a terminal. */
static void progress(const run_item *ri) {
  static double t0;
  if (!isatty(2)) return;
  if (t0 == 0) t0 = now_s();
  fprintf(stderr, "\r\033[K[%zu/%zu %.0fs] %s", ri->index + 1, ri->total, now_s() - t0, ri->name);
  if (ri->index + 1 == ri->total) fputc('\n', stderr);
}

/* ---------------------------------------------------------------------------
 * GC workloads
 * ------------------------------------------------------------------------- */

#define ACC_PHASE(f) double f;
#define ACC_PAUSE(f, max) uint64_t *f; /* one entry per cycle */
typedef struct acc {
  double gc_ns;
  RUN_PHASES(ACC_PHASE)
  RUN_CPU_TIMES(ACC_PHASE)
  RUN_STOP_COUNTS(ACC_PHASE)             /* sums, as the phases' */
  RUN_PAUSES(ACC_PAUSE)
  double busy[REF_MAX_WORKERS];
  int64_t cycles;
  size_t cap;                          /* entries of each pause array */
  struct conc_acc *conc;               /* concurrent modes only, else NULL (below) */
} acc;
#undef ACC_PHASE
#undef ACC_PAUSE

static int grow(uint64_t **v, size_t cap) {
  uint64_t *g = realloc(*v, cap * sizeof **v);
  if (!g) return -1;
  *v = g;
  return 0;
}

/* Adds a cycle. Returns 0, or -1 when its pause times do not fit (out of
 * memory). */
static int acc_add(acc *a, const ref_gc_stats *st) {
  size_t i = (size_t)a->cycles;
  if (i == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 256;
#define GROW(f, max) if (grow(&a->f, cap) != 0) return -1;
    RUN_PAUSES(GROW)
#undef GROW
    a->cap = cap;
  }
  a->gc_ns += (double)st->total_ns;
#define ADD_PHASE(f) a->f += (double)st->f;
#define ADD_PAUSE(f, max) a->f[i] = st->f;
  RUN_PHASES(ADD_PHASE)
  RUN_CPU_TIMES(ADD_PHASE)
  RUN_STOP_COUNTS(ADD_PHASE)
  RUN_PAUSES(ADD_PAUSE)
#undef ADD_PHASE
#undef ADD_PAUSE
  for (int k = 0; k < st->nworkers; k++) a->busy[k] += (double)st->worker[k].busy_ns;
  a->cycles++;
  return 0;
}

static void acc_free(acc *a) {
#define FREE_PAUSE(f, max) free(a->f);
  RUN_PAUSES(FREE_PAUSE)
#undef FREE_PAUSE
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return (a > b) - (a < b);
}

/* The median of v[0..n) (0 when empty); sorts v, so v[n - 1] is the max. */
static double median_sorting(uint64_t *v, size_t n) {
  if (n == 0) return 0;
  qsort(v, n, sizeof *v, cmp_u64);
  return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

/* Max over mean of the workers' busy time: 1 is perfect balance. */
static double imbalance(const acc *a, int nworkers) {
  double max = 0, sum = 0;
  for (int i = 0; i < nworkers; i++) {
    sum += a->busy[i];
    if (a->busy[i] > max) max = a->busy[i];
  }
  return sum > 0 ? max / (sum / nworkers) : 1;
}

static int start_runtime(const run_item *ri, topo_binder *binder, topo_plan *tp, char *err,
                         size_t errlen) {
  const bench_opts *o = ri->env->opts;
  ref_config cfg;
  ref_config_default(&cfg);
  cfg.workers = ri->item->workers;
  cfg.mutators = ri->item->mutators;
  cfg.phase = ri->item->strategy.phase;
  cfg.scan = ri->item->strategy.scan;
  cfg.stackmaps = ri->env->plan->stackmaps;
  cfg.reuse = ri->item->reuse;
  cfg.mode = ri->item->mode; /* concurrent modes refuse reuse=clean, preempt=async: ref_init says so */
  cfg.preempt = ri->item->preempt; /* async: ref_init refuses it under TSan, and says so */
  cfg.checkmark = o->checkmark;
  cfg.poison = o->checkmark;
  cfg.seed = o->seed;
  if (o->stack_size) cfg.stack_size = (size_t)o->stack_size;
  cfg.gc_percent = (int)o->gc_percent;
  if (o->max_mem) { /* the heap may not be larger than the whole limit */
    cfg.mem_max = (size_t)o->max_mem;
    if (cfg.heap_max > cfg.mem_max) cfg.heap_max = cfg.mem_max;
  }
  cfg.walk_ahead = o->prefetch[0];
  cfg.lines_ahead = o->prefetch[1];
  cfg.prefetch_lines = o->prefetch[2];
  topo_binder_init(binder, ri->env->topo, tp); /* no failure yet, bound or not */
  if (ri->env->plan->placement != TOPO_PLACE_NONE) {
    int slots = cfg.workers > cfg.mutators ? cfg.workers : cfg.mutators; /* topo.h's layout */
    if (topo_plan_make(ri->env->topo, ri->env->plan->placement, slots, tp) != 0) {
      snprintf(err, errlen, "placement: %s", topo_error());
      return -1;
    }
    cfg.worker_start = topo_worker_start;
    cfg.mutator_start = topo_mutator_start;
    cfg.worker_start_arg = cfg.mutator_start_arg = binder;
  }
  if (ref_init(&cfg) != 0) {
    const char *why = topo_binder_failure(binder);
    snprintf(err, errlen, "ref_init: %s%s%s", ref_error(), why ? ": " : "", why ? why : "");
  } else if (ref_get_config()->mutators != cfg.mutators) { /* a set value wins over the env */
    snprintf(err, errlen, "the runtime runs %d mutators, not the %d asked for",
             ref_get_config()->mutators, cfg.mutators);
    ref_shutdown();
  } else {
    return 0;
  }
  if (ri->env->plan->placement != TOPO_PLACE_NONE) topo_plan_free(tp);
  return -1;
}

/* The memory floor under the cycles' stack scans with nworkers threads: the
 * time of ref_debug_touch_stacks_parallel after the same wake as a cycle,
 * the median of TOUCH_RUNS. Measured after the cycles, in the same process,
 * so that a cycle's time can be held against it whatever this machine's
 * speed is at the time. -1 when a wake fails (err says why). */
#define TOUCH_RUNS 3
static double touch_ns(wl_instance *w, int nworkers, char *err, size_t errlen) {
  double t[TOUCH_RUNS];
  for (int i = 0; i < TOUCH_RUNS; i++) {
    if (wl_wake(w, err, errlen) != 0) return -1;
    double t0 = now_s();
    if (ref_debug_touch_stacks_parallel(nworkers, NULL, NULL) != 0) {
      snprintf(err, errlen, "touch: %s", ref_error());
      return -1;
    }
    t[i] = (now_s() - t0) * 1e9;
    for (int k = i; k > 0 && t[k] < t[k - 1]; k--) {
      double x = t[k];
      t[k] = t[k - 1];
      t[k - 1] = x;
    }
  }
  return t[TOUCH_RUNS / 2];
}

/* The floors: floor_ns with the benchmark's W threads, floor1_ns with one. */
/* The auto sweep: the default first, so a sweep cut short by its budget
 * still has it; a candidate's time is the median of TOUCH_RUNS floors. */
/* The scratch set, as many stacks as leave the caches; a TSan build holds
 * at most 8000 goroutines (each is a fiber: ref/g.c), so it gets half. */
#if defined(__SANITIZE_THREAD__)
#define AUTO_N 4096
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AUTO_N 4096
#endif
#endif
#ifndef AUTO_N
#define AUTO_N 8192
#endif
#define AUTO_BUDGET_NS 50e6
static const int auto_candidates[][3] = {{8, 3, 8}, {4, 2, 8},  {12, 4, 8},
                                         {16, 6, 8}, {8, 3, 4}, {6, 3, 12}};

static int auto_sweep(wl_instance *w, bench_opts *o, char *err, size_t errlen) {
  double best = -1, t0 = now_s();
  for (size_t k = 0; k < sizeof auto_candidates / sizeof auto_candidates[0]; k++) {
    const int *c = auto_candidates[k];
    if (ref_set_prefetch(c[0], c[1], c[2]) != 0) {
      snprintf(err, errlen, "prefetch auto: %s", ref_error());
      return -1;
    }
    double t = touch_ns(w, 1, err, errlen);
    if (t < 0) return -1;
    if (best < 0 || t < best) {
      best = t;
      memcpy(o->prefetch, c, sizeof o->prefetch);
    }
    if ((now_s() - t0) * 1e9 > AUTO_BUDGET_NS) break;
  }
  return 0;
}

int run_prefetch_auto(bench_opts *o, char *err, size_t errlen) {
  ref_config cfg;
  ref_config_default(&cfg);
  cfg.mutators = 1; /* a one-thread floor on parked goroutines: none runs */
  if (o->stack_size) cfg.stack_size = (size_t)o->stack_size;
  if (ref_init(&cfg) != 0) {
    snprintf(err, errlen, "prefetch auto: ref_init: %s", ref_error());
    return -1;
  }
  wl_params p = bench_wl_params(o, AUTO_N);
  p.depth = p.frame_bytes = p.slots = p.heap_per_g = -1; /* GoroutineIdle's own shape */
  wl_instance *w = wl_find("GoroutineIdle")->setup(&p, err, errlen);
  int rc = w ? auto_sweep(w, o, err, errlen) : -1;
  if (w && wl_finish(w, err, errlen) != 0) rc = -1;
  ref_shutdown();
  return rc;
}

/* A concurrent cycle's own figures (ref_gc_stats), reported for runs of
 * the concurrent modes only. */
#define RUN_CONCURRENT_COUNTERS(X)                                                \
  X(pause1_ns) X(pause_total_ns) X(pause_max_ns) X(stacks_bg) X(stacks_self)      \
  X(stacks_pause) X(rescan_bytes) X(barrier_shades) X(assist_ns) X(ttsp1_ns)      \
  X(suspend_max_ns) X(suspend_p99_ns) X(mmu_1ms) X(overshoot_bytes)

static void conc_report(gb_state *st, const struct conc_acc *c);

static void set_counters(gb_state *st, const run_item *ri, const wl_instance *w, acc *a,
                         size_t rss_per_g, double floor_ns, double floor1_ns) {
  const ref_gc_stats *last = ref_gc_last();
  double n = (double)ri->item->n, cycles = a->cycles ? (double)a->cycles : 1;
  double gc_ns = a->gc_ns / cycles;
  gb_counter(st, "ns_per_goroutine", gc_ns / n, GB_COUNTER_DEFAULT);
#define SET_COUNTER(name, exact, meaning) gb_counter(st, #name, (double)last->name, GB_COUNTER_DEFAULT);
  REF_GC_COUNTERS(SET_COUNTER)
#undef SET_COUNTER
  gb_counter(st, "stack_bytes_per_second", gc_ns > 0 ? (double)last->stack_bytes / (gc_ns * 1e-9) : 0,
             GB_COUNTER_DEFAULT);
#define SET_PHASE(f) gb_counter(st, #f, a->f / cycles, GB_COUNTER_DEFAULT);
#define SET_PAUSE(f, max)                                                         \
  gb_counter(st, #f, median_sorting(a->f, (size_t)a->cycles), GB_COUNTER_DEFAULT); \
  gb_counter(st, #max, a->cycles ? (double)a->f[a->cycles - 1] : 0, GB_COUNTER_DEFAULT);
  RUN_PHASES(SET_PHASE)
  RUN_CPU_TIMES(SET_PHASE)
  RUN_STOP_COUNTS(SET_PHASE) /* the mean per cycle too */
  RUN_PAUSES(SET_PAUSE)
#undef SET_PHASE
#undef SET_PAUSE
  gb_counter(st, "mutators", ref_get_config()->mutators, GB_COUNTER_DEFAULT);
  if (a->conc) { /* over the timed cycles (conc_report); stw runs keep their counters */
    conc_report(st, a->conc);
  }
  wl_metric m[WL_MAX_METRICS];
  for (size_t i = 0, k = wl_metrics(w, m, REF_ARRAY_SIZE(m)); i < k; i++)
    gb_counter(st, m[i].name, m[i].value, GB_COUNTER_DEFAULT);
  gb_counter(st, "imbalance", imbalance(a, ri->item->workers), GB_COUNTER_DEFAULT);
  gb_counter(st, "rss_per_goroutine", (double)rss_per_g, GB_COUNTER_DEFAULT);
  gb_counter(st, "touch_ns", floor_ns, GB_COUNTER_DEFAULT);
  gb_counter(st, "touch1_ns", floor1_ns, GB_COUNTER_DEFAULT);

  run_result r = {.iterations = a->cycles, .ns_per_op = gc_ns, .nextra = 4};
  snprintf(r.name, sizeof r.name, "%s", ri->name);
  r.extra[0] = (bench_metric){gc_ns / n, "ns/goroutine"};
  r.extra[1] = (bench_metric){(double)last->stack_bytes, "stack-B/op"};
  r.extra[2] = (bench_metric){(double)last->words, "words/op"};
  r.extra[3] = (bench_metric){(double)last->frames, "frames/op"};
  result_add(&r);
}

/* The concurrent counters of every timed cycle, a row of NCONC per cycle,
 * reported as their medians over the cycles, but the maxima for *_max_ns
 * (pause_max_ns, suspend_max_ns): the longest over the run. */
#define CONC_NAME(f) #f,
#define CONC_VALUE(f) (double)st->f,
static const char *const conc_names[] = {RUN_CONCURRENT_COUNTERS(CONC_NAME)};
enum { NCONC = sizeof conc_names / sizeof conc_names[0] };
typedef struct conc_acc {
  double (*v)[NCONC];
  size_t n, cap;
} conc_acc;

static int conc_add(conc_acc *c, const ref_gc_stats *st) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 256;
    double(*g)[NCONC] = realloc(c->v, cap * sizeof *g);
    if (!g) return -1;
    c->v = g;
    c->cap = cap;
  }
  const double row[NCONC] = {RUN_CONCURRENT_COUNTERS(CONC_VALUE)};
  memcpy(c->v[c->n++], row, sizeof row);
  return 0;
}
#undef CONC_NAME
#undef CONC_VALUE

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static bool is_max_counter(const char *name) {
  size_t k = strlen(name), s = sizeof "_max_ns" - 1;
  return k >= s && strcmp(name + k - s, "_max_ns") == 0;
}

static void conc_report(gb_state *st, const conc_acc *c) {
  double *col = c->n ? malloc(c->n * sizeof *col) : NULL;
  for (size_t k = 0; k < NCONC; k++) {
    double v = 0;
    if (col) {
      for (size_t i = 0; i < c->n; i++) col[i] = c->v[i][k];
      qsort(col, c->n, sizeof *col, cmp_double);
      size_t h = c->n / 2;
      v = is_max_counter(conc_names[k]) ? col[c->n - 1]
          : c->n % 2                    ? col[h]
                                        : (col[h - 1] + col[h]) / 2;
    }
    gb_counter(st, conc_names[k], v, GB_COUNTER_DEFAULT);
  }
  free(col);
}

/* wl_collect's callback: one timed ref_gc(). On GoroutineSpin it runs on a
 * goroutine of any mutator thread, so it only measures; the benchmark's
 * thread reports. perf's window (perfctl) holds the cycle, and there also
 * the spinners' run up to their stop. */
typedef struct timed_gc {
  double secs;
  uint64_t cycle;     /* ref_gc_last()->cycle right after it */
} timed_gc;

static void collect_timed(void *arg) {
  timed_gc *t = arg;
  perfctl_enable(); /* perf record --gc-only samples the cycle alone */
  double t0 = now_s();
  ref_gc();
  t->secs = now_s() - t0;
  perfctl_disable();
  t->cycle = ref_gc_last()->cycle;
}

/* The timed iterations; a failed one fails the run. */
static void run_cycles(gb_state *st, const run_item *ri, wl_instance *w, acc *a) {
  char err[320] = "";
  while (gb_keep_running(st)) {
    timed_gc t = {0, 0};
    if (wl_wake(w, err, sizeof err) != 0 || wl_collect(w, collect_timed, &t, err, sizeof err) != 0) {
      fail_run(st, err);
      return;
    }
    const ref_gc_stats *last = ref_gc_last();
    if (last->cycle != t.cycle) {
      fail_run(st, "a collection ran between the timed one and its report");
      return;
    }
    gb_set_iteration_time(st, t.secs);
    if (acc_add(a, last) != 0 || (a->conc && conc_add(a->conc, last) != 0)) {
      fail_run(st, "out of memory for the cycles' pause times");
      return;
    }
    tracefile_cycle(ri->item->workers);
  }
}

void run_gc_workload(gb_state *st, void *arg) {
  const run_item *ri = arg;
  char err[320] = "";
  topo_binder binder = {0};
  topo_plan tp = {0};
  progress(ri);
  if (start_runtime(ri, &binder, &tp, err, sizeof err) != 0) {
    fail_run(st, err);
    return;
  }
  const bench_opts *o = ri->env->opts;
  wl_params p = bench_wl_params(o, ri->item->n);
  size_t rss0 = wl_rss_bytes();
  wl_instance *w = ri->wl->setup(&p, err, sizeof err);
  size_t rss1 = wl_rss_bytes();
  acc a;
  memset(&a, 0, sizeof a);
  conc_acc conc = {NULL, 0, 0};
  if (ri->item->mode != REF_MODE_STW) a.conc = &conc;
  if (!w) {
    fail_run(st, err);
  } else {
    ref_gc(); /* as Go's benchHelper: start from a collected heap */
    if (tracefile_on()) {
      tracefile_begin(ri->name);
      if (ref_trace_enable(TRACEFILE_EVENTS) != 0) fail_run(st, ref_error());
    }
    run_cycles(st, ri, w, &a);
    double floor_ns = -1, floor1_ns = -1;
    if (!gb_error_occurred(st) &&
        ((floor_ns = touch_ns(w, ri->item->workers, err, sizeof err)) < 0 ||
         (floor1_ns = touch_ns(w, 1, err, sizeof err)) < 0))
      fail_run(st, err);
    if (!gb_error_occurred(st))
      set_counters(st, ri, w, &a, rss1 > rss0 ? (rss1 - rss0) / (size_t)ri->item->n : 0, floor_ns,
                   floor1_ns);
    if (wl_finish(w, err, sizeof err) != 0 && !gb_error_occurred(st)) fail_run(st, err);
  }
  acc_free(&a);
  free(conc.v);
  ref_shutdown();
  if (ri->env->plan->placement != TOPO_PLACE_NONE) topo_plan_free(&tp);
}

/* ---------------------------------------------------------------------------
 * Micro benchmarks
 * ------------------------------------------------------------------------- */

void run_micro(gb_state *st, void *arg) {
  const run_item *ri = arg;
  progress(ri);
  int64_t iters = gb_max_iterations(st);
  uint64_t bytes = 0;
  double secs = ri->micro->run(iters, &bytes);
  if (secs < 0) {
    fail_run(st, "micro benchmark failed its own check");
    return;
  }
  while (gb_keep_running(st)) gb_set_iteration_time(st, secs / (double)iters);
  run_result r = {.iterations = iters, .ns_per_op = secs * 1e9 / (double)iters};
  snprintf(r.name, sizeof r.name, "%s", ri->name);
  if (bytes) {
    gb_counter(st, "bytes_per_second", (double)bytes / secs, GB_COUNTER_DEFAULT);
    r.extra[r.nextra++] = (bench_metric){(double)bytes / secs / 1e6, "MB/s"};
  }
  result_add(&r);
}
