/*
 * gbench.h: a C API over Google Benchmark (the system libbenchmark, 1.7.x).
 *
 * The C++ library is reached only through harness/gbench.cc; no C++
 * exception crosses this interface: functions that can fail return an error
 * code (or NULL) and leave a one-line message in gb_error().
 *
 * Typical use:
 *
 *   static void bm(gb_state *st, void *arg) {
 *     while (gb_keep_running(st)) {
 *       ... untimed setup ...
 *       gb_set_iteration_time(st, seconds_measured_by_hand);
 *     }
 *     gb_counter(st, "ns/goroutine", x, GB_COUNTER_AVG_ITERATIONS);
 *   }
 *   gb_bench *b = gb_register("Name/arg", bm, arg);
 *   gb_use_manual_time(b);
 *   if (gb_initialize(&argc, argv) != 0 || argc > 1) ... reject argv[1..]
 *   gb_run_specified();
 *   gb_shutdown();
 *
 * Threads: everything here except the gb_state functions must be called
 * from the main thread, outside a running benchmark. gb_state functions are
 * called from inside the benchmark function, on the thread running it.
 */
#ifndef HARNESS_GBENCH_H
#define HARNESS_GBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_state gb_state;   /* a benchmark::State, valid during one run */
typedef struct gb_bench gb_bench;   /* a registered benchmark, owned by the library */

typedef void (*gb_fn)(gb_state *st, void *arg);

/* The last error of this wrapper (one line, no trailing newline; "" if none). */
const char *gb_error(void);

/* ---------------------------------------------------------------------------
 * Registration and per-benchmark settings
 * ------------------------------------------------------------------------- */

/* Registers benchmark `name` running fn(st, arg). The name is copied; arg is
 * passed through untouched and must outlive the run. Returns NULL on failure
 * (gb_error() says why). Reports name the run with Google Benchmark's own
 * suffixes appended: "/7" per gb_arg, "/min_time:S", "/iterations:N",
 * "/repeats:N", "/manual_time" or "/real_time" (in that order), e.g.
 * "Name/iterations:4/manual_time". */
gb_bench *gb_register(const char *name, gb_fn fn, void *arg);

/* Forgets every registered benchmark (handles become invalid). */
void gb_clear_registered(void);

typedef enum gb_time_unit { GB_NS, GB_US, GB_MS, GB_S } gb_time_unit;

/* Setters return b, so calls can be chained; each ignores a NULL b. Their
 * preconditions are Google Benchmark's: n > 0 for iterations and
 * repetitions, and iterations excludes min_time. Violations set gb_error()
 * and leave b unchanged instead of aborting. */
gb_bench *gb_use_manual_time(gb_bench *b);   /* time = sum of gb_set_iteration_time */
gb_bench *gb_use_real_time(gb_bench *b);     /* wall clock instead of CPU time */
gb_bench *gb_iterations(gb_bench *b, int64_t n);
gb_bench *gb_repetitions(gb_bench *b, int n);
gb_bench *gb_min_time(gb_bench *b, double seconds);
gb_bench *gb_unit(gb_bench *b, gb_time_unit u);
gb_bench *gb_arg(gb_bench *b, int64_t x);    /* adds one run with range(0) == x */
gb_bench *gb_report_aggregates_only(gb_bench *b, bool v);
gb_bench *gb_display_aggregates_only(gb_bench *b, bool v);

/* Adds key: value to the "context" object of the JSON output (and the
 * console header). Returns 0, or -1 on failure. */
int gb_add_context(const char *key, const char *value);

/* ---------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------- */

/* Parses and removes Google Benchmark's own flags (--benchmark_*, --v) from
 * argv, updating *argc. Every other argument is left in argv[1..*argc), in
 * order: the caller must reject them (Google Benchmark would only print a
 * warning). Call after the caller has parsed its own flags (Google Benchmark
 * exits on --help). Returns 0, or -1 on failure. */
int gb_initialize(int *argc, char **argv);

/* Runs every registered benchmark that matches --benchmark_filter, or
 * `filter` (a regex) when not NULL; reports to the console and to
 * --benchmark_out. Returns the number of benchmarks run; (size_t)-1 on
 * failure. */
size_t gb_run_specified(void);
size_t gb_run_matching(const char *filter);

/* Releases the library's global state (after the last run). */
void gb_shutdown(void);

/* ---------------------------------------------------------------------------
 * Inside a benchmark function
 * ------------------------------------------------------------------------- */

/* The keep-running loop: true while more iterations are wanted. The batch
 * form counts n iterations per call (and may overshoot by up to n). */
bool gb_keep_running(gb_state *st);
bool gb_keep_running_batch(gb_state *st, int64_t n);

/* With gb_use_manual_time: the time of the current iteration, in seconds. */
void gb_set_iteration_time(gb_state *st, double seconds);

/* Stops / restarts the timers around untimed work inside the loop. */
void gb_pause_timing(gb_state *st);
void gb_resume_timing(gb_state *st);

/* Counter flags; combine with |. A plain counter (GB_COUNTER_DEFAULT) is
 * reported as set (summed over threads). */
enum {
  GB_COUNTER_DEFAULT = 0,
  GB_COUNTER_RATE = 1 << 0,           /* divided by the benchmark's time (s) */
  GB_COUNTER_AVG_THREADS = 1 << 1,    /* divided by the number of threads */
  GB_COUNTER_ITER_INVARIANT = 1 << 2, /* multiplied by the iterations */
  GB_COUNTER_AVG_ITERATIONS = 1 << 3, /* divided by the iterations */
  GB_COUNTER_INVERT = 1 << 4,         /* reported as 1/value (after the above) */
  GB_COUNTER_1024 = 1 << 5            /* human-readable output uses 1024 multiples */
};

/* Sets counter `name` to value (the last set value is reported). Returns 0,
 * or -1 on failure (unknown flag bits, allocation failure). */
int gb_counter(gb_state *st, const char *name, double value, unsigned flags);

/* Marks the run as failed with msg (reported as "error_occurred": true,
 * "error_message": msg). The benchmark function should then return without
 * further gb_keep_running calls (the loop also ends by itself). */
void gb_skip_with_error(gb_state *st, const char *msg);
bool gb_error_occurred(const gb_state *st);

void gb_set_label(gb_state *st, const char *label);

int64_t gb_iterations_done(const gb_state *st);  /* iterations completed so far */
int64_t gb_max_iterations(const gb_state *st);   /* iterations of this run */
int64_t gb_range(const gb_state *st, size_t i);  /* i-th gb_arg; precondition: set */
int gb_thread_index(const gb_state *st);
int gb_threads(const gb_state *st);

#ifdef __cplusplus
}
#endif
#endif /* HARNESS_GBENCH_H */
