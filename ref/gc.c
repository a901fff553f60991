/*
 * gc.c: one stop-the-world collection cycle, like Go's runtime.GC():
 * stop the world, enumerate roots, mark with W workers, optionally verify
 * with the checkmark marker, sweep in parallel, restart. Each phase is timed
 * and every worker's counters are summed into the cycle's ref_gc_stats.
 */
#include "gc.h"

#include <sched.h>
#include <string.h>

static ref_gc_stats last;
static uint64_t ncycles;
static ref__sweep_result sweepres[REF_MAX_WORKERS];
static _Atomic bool xroots_done;
static uint64_t t_roots0, t_roots1; /* set by worker 0 */

const ref_gc_stats *ref_gc_last(void) { return &last; }

/* ---------------------------------------------------------------------------
 * Parallel regions
 * ------------------------------------------------------------------------- */

/* Waits, as an idle worker, for worker 0 to finish root enumeration. */
static void wait_roots(ref__worker *w) {
  uint64_t t0 = ref__nanotime();
  for (unsigned i = 0; !atomic_load(&xroots_done); i++) {
    if (i < 1024) ref_cpu_relax();
    else sched_yield(); /* oversubscribed workers must let worker 0 run */
  }
  w->st.idle_ns += ref__nanotime() - t0;
}

/* One region for roots and marking: the helpers are woken as the cycle
 * starts, so their wake-up latency overlaps root enumeration instead of
 * adding to the mark phase. In the parallel phase they do not wait for it
 * to end: they take job buffers as worker 0 publishes them, and the
 * termination check cannot pass before worker 0 is idle too. */
static void mark_region(ref__worker *w) {
  uint64_t t0 = ref__nanotime();
  if (w->id == 0) {
    t_roots0 = t0;
    ref__roots_prepare(w);
    t_roots1 = ref__nanotime();
    atomic_store(&xroots_done, true);
  } else if (ref__cfg.phase != REF_PHASE_PARALLEL) {
    wait_roots(w);
  }
  ref__drain(w);
  ref_assert_internal(ref__gcw_empty(&w->gcw));
  uint64_t t = ref__nanotime() - t0;
  w->st.busy_ns = t > w->st.idle_ns ? t - w->st.idle_ns : 0;
  w->st.bufs_taken = w->gcw.bufs_taken;
  w->st.bufs_given = w->gcw.bufs_given;
}

static void sweep_region(ref__worker *w) {
  ref__heap_sweep_part(w->id, ref__workers_count(), &sweepres[w->id]);
}

/* Sweeps in parallel by span ranges, or alone when the heap is too small to
 * repay waking the other workers. Returns the parts swept. */
#define SWEEP_SPANS_PER_WORKER 256
static int sweep(int n) {
  if (n == 1 || ref__heap_nspans() < (size_t)n * SWEEP_SPANS_PER_WORKER) {
    ref__heap_sweep_part(0, 1, &sweepres[0]);
    return 1;
  }
  ref__workers_run(sweep_region);
  return n;
}

/* ---------------------------------------------------------------------------
 * The cycle
 * ------------------------------------------------------------------------- */

static void workers_reset(int n) {
  for (int i = 0; i < n; i++) {
    ref__worker *w = ref__worker_get(i);
    memset(&w->n, 0, sizeof w->n);
    memset(&w->st, 0, sizeof w->st);
    w->gcw.bufs_taken = w->gcw.bufs_given = 0;
    w->nptr = 0;
    ref__pccache_reset(&w->pccache);
  }
}

static void stats_sum(ref_gc_stats *st, int n) {
  for (int i = 0; i < n; i++) {
    const ref__worker *w = ref__worker_get(i);
    st->stacks_scanned += w->n.stacks_scanned;
    st->stack_bytes += w->n.stack_bytes;
    st->words += w->n.words;
    st->candidates += w->n.candidates;
    st->frames += w->n.frames;
    st->lookups += w->n.lookups;
    st->cache_hits += w->n.cache_hits;
    st->slots += w->n.slots;
    st->objects_marked += w->n.objects_marked;
    st->bytes_marked += w->n.bytes_marked;
    st->worker[i] = w->st;
    st->objects_freed += sweepres[i].objects_freed;
    st->bytes_freed += sweepres[i].bytes_freed;
  }
  st->nworkers = n;
}

/* Runs on the scheduler stack with every goroutine stopped. */
static void gc_cycle(void *unused) {
  (void)unused;
  int n = ref__workers_count();
  uint64_t t0 = ref__nanotime();
  /* Stop the world: with one M, every other goroutine is already stopped at
   * a park or a switch, and the caller's context is saved on its stack. */
  ref__m *m = ref__m_get();
  ref_assert(!m->curg || m->curg->status == REF_G_RUNNING);
  ref_assert_expensive((ref__heap_check(), true));
  workers_reset(n);
  ref__mark_reset(n);
  atomic_store(&xroots_done, false);
  ref__workers_run(mark_region);
  uint64_t t1 = t_roots0, t2 = t_roots1;
  uint64_t t3 = ref__nanotime();
  if (ref__cfg.checkmark) ref__checkmark_verify();
  uint64_t t4 = ref__nanotime();
  memset(sweepres, 0, sizeof sweepres);
  int parts = sweep(n);
  ref__heap_sweep_finish(sweepres, parts);
  ref__roots_done();
  uint64_t t5 = ref__nanotime();
  ref_assert_expensive((ref__heap_check(), true));

  memset(&last, 0, sizeof last);
  last.cycle = ++ncycles;
  last.stw_ns = t1 - t0;
  last.roots_ns = t2 - t1;
  last.mark_ns = t3 - t2;
  last.sweep_ns = t5 - t4;
  last.total_ns = (t5 - t0) - (t4 - t3); /* the checkmark is not part of the cycle */
  stats_sum(&last, n);
}

void ref_gc(void) { ref__systemstack(gc_cycle, NULL); }

uint64_t ref_debug_scan_conservative(const void *buf, size_t len) {
  ref__worker *w = ref__worker_get(0);
  uint64_t before = w->n.candidates;
  ref__scan_conservative(w, (uintptr_t)buf, (uintptr_t)buf + len);
  ref__ptrbuf_flush(w);
  /* Scan what it greyed, so the marks are closed under pointers: the next
   * cycle finds these objects marked and does not scan them again. */
  uintptr_t item;
  while ((item = ref__gcw_tryget(&w->gcw)) != 0) ref__scanobject(w, item);
  return w->n.candidates - before;
}

/* ---------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------- */


int ref__gc_init(const ref_config *cfg) {
  memset(&last, 0, sizeof last);
  ncycles = 0;
  return ref__workers_init(cfg);
}

void ref__gc_shutdown(void) {
  ref__workers_shutdown();
  ref__roots_shutdown();
  ref__wbuf_shutdown();
}
