/*
 * workloads.h: the benchmark workloads, written against ref's public API.
 *
 * A GC workload (Go's malloc_test.go GoroutineSelect / Blocking / ForRange /
 * Idle, plus Deep, Skewed and PointerDense, and go-gcbench's shapes Parked,
 * DirtyStack and ManyIdle, where most stacks do not run between cycles)
 * parks n reader goroutines with
 * a shaped stack; each iteration wakes every reader once (not Idle and
 * ManyIdle, which wake none; Parked wakes a seeded fraction), runs
 * until all are parked again, and then the caller times exactly one ref_gc()
 * (wl_collect: GoroutineSpin's runs while spinning goroutines hold every
 * other mutator thread, to measure the stop's time to safepoint;
 * GoroutineLatency's while two goroutines play ping-pong on two Ps, timing
 * each round trip).
 * finish() closes the channels and verifies that every reader exited and
 * every object a reader held survived with its contents intact.
 */
#ifndef STACKSCAN_WORKLOADS_H
#define STACKSCAN_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "ref.h"

/* The limits of a reader's shape: the one place they are written. The
 * bench's flags are judged by wl_params_check, and its --help prints these
 * with the preprocessor's # operator, so each stays a plain decimal literal. */
#define WL_MAX_DEPTH 4096
#define WL_MAX_FRAME_BYTES 16384   /* 16 KiB */
#define WL_MIN_SLOTS 1
#define WL_MAX_SLOTS 64            /* the widest reader frame, descend64 */
#define WL_MAX_HEAP_PER_G 1048576  /* 1 MiB */
#define WL_MIN_WAKE 0              /* GoroutineParked's --wake: a fraction of n */
#define WL_MAX_WAKE 1
#define WL_MAX_DIRTY 65536         /* GoroutineDirtyStack's --dirty: 64 KiB */
#define WL_MIN_POLL_EVERY 0        /* GoroutineSpin's --poll-every: work units per poll, 0 never */
#define WL_MAX_POLL_EVERY 1000000000
#define WL_DEFAULT_POLL_EVERY 850  /* about 1 us of work on the 2-PU EPYC VM */
#define WL_LATENCY_MIN_MUTATORS 2  /* GoroutineLatency's pair runs on two at once */

/* The shape of every reader's stack and heap. Negative: the workload's own
 * default (Deep's depth 64, say). */
typedef struct wl_params {
  int64_t n;           /* reader goroutines, >= 1 */
  int depth;           /* extra recursion frames before parking, 0..WL_MAX_DEPTH */
  int frame_bytes;     /* non-pointer bytes per extra frame, 0..WL_MAX_FRAME_BYTES */
  int slots;           /* pointer slots per extra frame, WL_MIN_SLOTS..WL_MAX_SLOTS */
  int heap_per_g;      /* bytes of objects reachable from each reader's frames,
                          0..WL_MAX_HEAP_PER_G */
  uint64_t seed;
  double wake;         /* GoroutineParked: the fraction of readers each
                          iteration wakes (chosen by the seed),
                          WL_MIN_WAKE..WL_MAX_WAKE */
  int dirty;           /* GoroutineDirtyStack: bytes of its parked frame each
                          reader rewrites every iteration, 0..WL_MAX_DIRTY */
  int poll_every;      /* GoroutineSpin: work units (one multiply-add chain
                          step each) between a spinner's ref_poll() calls,
                          WL_MIN_POLL_EVERY..WL_MAX_POLL_EVERY; negative:
                          WL_DEFAULT_POLL_EVERY. 0: never, a loop with no
                          safepoint that only preempt=async can stop (with
                          cooperative preemption the stop would wait for it
                          forever: the bench refuses that combination) */
} wl_params;

/* Checks p against the limits above; a negative shape field (the workload's
 * default) passes. Returns 0, or -1 with a one-line message in err naming
 * the field as the bench's flag does, e.g. "depth must be in 0..4096".
 * setup() checks too, after wl_resolve, and also that the frames fit the
 * runtime's stacks. */
int wl_params_check(const wl_params *p, char *err, size_t errlen);

typedef struct wl_instance wl_instance;

typedef struct wl_desc {
  const char *name;    /* e.g. "GoroutineSelect" */
  const char *summary;
  wl_params defaults;  /* depth, frame_bytes, slots, heap_per_g used for -1 */
  /* Spawns the readers and runs until they are all parked. Needs a running
   * runtime. Returns NULL with a one-line reason in err. */
  wl_instance *(*setup)(const wl_params *p, char *err, size_t errlen);
  int min_mutators;    /* the fewest mutator threads setup accepts (GoroutineLatency's
                          pair needs two at once); the bench's plan refuses fewer */
} wl_desc;

/* Every GC workload, in a fixed order; NULL-terminated. */
extern const wl_desc *const wl_all[];
const wl_desc *wl_find(const char *name);

/* The parameters after the workload's defaults were applied. */
const wl_params *wl_params_of(const wl_instance *w);
void wl_resolve(const wl_desc *d, const wl_params *in, wl_params *out);

/* Memory a run of d with p (defaults applied) is expected to need: the
 * readers' touched stack pages, G structs, channels and objects. Used to
 * refuse a too-large n before anything starts. */
uint64_t wl_estimate_bytes(const wl_desc *d, const wl_params *p);

/* One iteration's untimed part: send one value to every reader and run
 * until all are parked again (Idle: nothing to do). Returns 0, or -1 with
 * a reason in err. */
int wl_wake(wl_instance *w, char *err, size_t errlen);

/* One iteration's timed part: calls collect(arg) once, which is to run and
 * time one ref_gc(). Where from is the workload's choice. Most call it
 * right here, on the scheduler stack outside ref_run: no goroutine runs,
 * so the cycle stops nobody (ttsp_ns 0) and every reader is parked.
 * GoroutineSpin calls it from a controller goroutine inside ref_run, once
 * a spinner runs on every other mutator thread, so the stop has to wait
 * for them at their polls (poll_every 0: for preempt=async's signal to
 * stop them); the spinners check their objects and exit after
 * it, and nothing allocates between the cycle and the return, so
 * ref_gc_last() is then the timed cycle. GoroutineLatency calls it from a
 * driver goroutine while a ping-pong pair runs on two mutator threads,
 * and lets the pair run on after it (goroutine.c says how); the pair does
 * not allocate either. Returns 0, or -1 with a reason in
 * err (collect has not run, or its cycle was not checked). */
typedef void (*wl_collect_fn)(void *arg);
int wl_collect(wl_instance *w, wl_collect_fn collect, void *arg, char *err, size_t errlen);

/* Figures of a workload's own for the bench's counters (GoroutineSpin: its
 * spinners and their poll interval, 0 when they never poll; GoroutineLatency:
 * its round trips' p50, p99, max and count, outside collections (rtt_*) and
 * overlapping one (rtt_gc_*), over every iteration since setup, and
 * rtt_local_count, those answered on the pinger's own thread and not timed).
 * Writes into out and returns how many, 0 when they would not fit in max or
 * the workload has none. */
#define WL_MAX_METRICS 9
typedef struct wl_metric {
  const char *name;
  double value;
} wl_metric;
size_t wl_metrics(const wl_instance *w, wl_metric *out, size_t max);

/* Closes everything, runs the readers to exit, verifies survivors and
 * frees the instance. Returns 0, or -1 with what failed in err. */
int wl_finish(wl_instance *w, char *err, size_t errlen);

/* ---------------------------------------------------------------------------
 * Micro benchmarks: each runs `iters` operations in a runtime of its own
 * making and returns the elapsed seconds (and bytes touched, for scans).
 * ------------------------------------------------------------------------- */

typedef struct wl_micro {
  const char *name;
  const char *summary;
  double (*run)(int64_t iters, uint64_t *bytes); /* returns seconds; <0 on failure */
} wl_micro;

extern const wl_micro wl_micros[];
extern const size_t wl_nmicros;

/* Resident memory (VmRSS) of this process in bytes, 0 if unknown. */
size_t wl_rss_bytes(void);

#endif /* STACKSCAN_WORKLOADS_H */
