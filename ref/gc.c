/*
 * gc.c: one stop-the-world collection cycle, like Go's runtime.GC():
 * stop the world (sched.c's handshake), enumerate roots, mark with W
 * workers, optionally verify with the checkmark marker, sweep in parallel,
 * restart. Each phase is timed
 * and every worker's counters are summed into the cycle's ref_gc_stats.
 */
#include "gc.h"

#include <stddef.h>
#include <string.h>

/* One cycle's state, shared by its parallel regions through their context
 * pointer. Written by worker 0 and read after the region ends, except
 * xroots_done, which helpers poll. */
typedef struct gc_cycle_state {
  _Atomic bool xroots_done;            /* worker 0 has enumerated the roots */
  uint64_t t_roots0, t_roots1;         /* worker 0's root enumeration */
  uint64_t c_roots0;                   /* its thread's CPU time when it began */
  _Atomic int xsweep_next;             /* the next sweep part to claim */
  ref__sweep_result sweep[REF_MAX_WORKERS];
} gc_cycle_state;

static ref_gc_stats last;
static uint64_t ncycles;
static int sweeping; /* a concurrent cycle's sweep runs (ref_gc_seq) */
static uint64_t nreason[REF_GC_LIMIT + 1]; /* cycles by what started them */

/* Tests only (gc.h): run with the world stopped, before marking. */
void (*ref__debug_in_cycle)(void);

const ref_gc_stats *ref_gc_last(void) { return &last; }

/* ncycles moves in ref__gc_finish (stw) or ref__gc_sweep_end (concurrent),
 * and ref__wb_enabled and sweeping flip in a concurrent cycle's pauses, all
 * with the world stopped (ref.h's contract). */
uint64_t ref_gc_seq(void) {
  uint64_t done = __atomic_load_n(&ncycles, __ATOMIC_RELAXED);
  return 2 * done + (__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED) != 0 ||
                     __atomic_load_n(&sweeping, __ATOMIC_RELAXED) != 0);
}

/* ---------------------------------------------------------------------------
 * Parallel regions
 * ------------------------------------------------------------------------- */

static bool roots_done(void *cs) { return atomic_load(&((gc_cycle_state *)cs)->xroots_done); }

/* Waits, as an idle worker, for worker 0 to finish root enumeration. */
static void wait_roots(ref__worker *w, gc_cycle_state *cs) {
  uint64_t t0 = ref__nanotime();
  ref__wait_until(roots_done, cs);
  w->st.idle_ns += ref__nanotime() - t0;
}

/* Worker 0's root enumeration. */
static void roots_worker0(ref__worker *w, gc_cycle_state *cs) {
  uint64_t t0 = ref__nanotime();
  cs->t_roots0 = t0;
  cs->c_roots0 = ref__thread_cputime();
  ref__roots_prepare(w);
  cs->t_roots1 = ref__nanotime();
  atomic_store(&cs->xroots_done, true);
  ref__unpark();
  ref__trace(w, REF_TRACE_ROOTS, t0, 0);
}

/* One region for roots and marking: the helpers are woken as the cycle
 * starts, so their wake-up latency overlaps root enumeration instead of
 * adding to the mark phase. In the parallel phase they do not wait for it
 * to end: they take job buffers as worker 0 publishes them, and the
 * termination check cannot pass before worker 0 is idle too. The serial
 * phase enumerates its roots before the region instead (mark_serial):
 * worker 0 then starts with them done. */
static void mark_region(ref__worker *w, void *ctx) {
  gc_cycle_state *cs = ctx;
  uint64_t t0 = ref__nanotime(), c0 = ref__thread_cputime();
  if (w->id == 0) {
    if (atomic_load(&cs->xroots_done)) t0 = cs->t_roots0, c0 = cs->c_roots0;
    else roots_worker0(w, cs);
  } else {
    ref__mark_join();
    if (ref__cfg.phase != REF_PHASE_PARALLEL) {
      wait_roots(w, cs);
      ref__trace(w, REF_TRACE_WAIT_ROOTS, t0, 0);
    }
  }
  ref__drain(w);
  ref_assert_internal(ref__gcw_empty(&w->gcw));
  uint64_t t = ref__nanotime() - t0;
  w->st.busy_ns = t > w->st.idle_ns ? t - w->st.idle_ns : 0;
  w->st.cpu_ns = ref__thread_cputime() - c0;
  w->st.stacks_scanned = w->n.stacks_scanned;
  w->st.stack_bytes = w->n.stack_bytes;
  w->st.bufs_taken = w->gcw.bufs_taken;
  w->st.bufs_given = w->gcw.bufs_given;
}

/* The serial phase with helpers. They could only wait for its roots, and
 * one that slept through them (REF_PARK_SPIN_NS) had to be woken again and
 * run before the mark could end; on a VM that wake takes tens of
 * microseconds, longer than the whole mark of a small heap. So worker 0
 * scans the roots before any helper is woken, then marks alone for up to
 * REF_SOLO_MARK_NS, and wakes them only for what is left after that. At
 * n=1000, 2 workers, 2-vCPU AMD EPYC, conservative-serial's mark phase
 * after its roots took 26 us of an 87 us GoroutineIdle cycle (0.9 us with
 * one worker), and helpers that spun 200 us instead of 20 brought it to
 * 1-2 us; waking them after the roots for the 2-6 full buffers those left
 * still made the mark of Blocking, ForRange and Idle 1.1-2.8x its time
 * with one worker, and waking them after 20 us alone made frames-serial's
 * Blocking and ForRange 1.6-1.7x; after 100 us alone the mark at 2 workers
 * took 0.95-1.25x its time at one for Go's four workloads. A mark of
 * milliseconds (100k) loses at most those 100 us of one helper. */
uint64_t ref__solo_mark_ns = REF_SOLO_MARK_NS;

static void mark_serial(gc_cycle_state *cs) {
  ref__worker *w0 = ref__worker_get(0);
  /* Worker 0 marks alone (heap.h: mark_solo) while the helpers sleep,
   * counted idle (workers.c); the region's start, under its mutex, orders
   * its plain marks before theirs. */
  ref__heap.mark_solo = true;
  roots_worker0(w0, cs);
  uint64_t t0 = ref__trace_start(w0);
  bool done = ref__drain_alone(w0, ref__solo_mark_ns);
  ref__trace(w0, REF_TRACE_DRAIN, t0, 0);
  ref__heap.mark_solo = false;
  if (done) mark_region(w0, cs); /* finds no work: ends the phase */
  else ref__workers_run(mark_region, cs);
}

/* The workers claim the n parts (a helper may not join). */
static void sweep_region(ref__worker *w, void *ctx) {
  gc_cycle_state *cs = ctx;
  int n = ref__workers_count();
  uint64_t t0 = ref__trace_start(w);
  for (int k; (k = atomic_fetch_add(&cs->xsweep_next, 1)) < n;)
    ref__heap_sweep_part(k, n, &cs->sweep[k]);
  ref__trace(w, REF_TRACE_SWEEP, t0, 0);
}

/* Sweeps in parallel by span ranges, or alone when the heap is too small to
 * repay waking the other workers. Returns the parts swept. */
#define SWEEP_SPANS_PER_WORKER 256
static int sweep(gc_cycle_state *cs, int n) {
  if (n == 1 || ref__heap_nspans() < (size_t)n * SWEEP_SPANS_PER_WORKER) {
    ref__worker *w0 = ref__worker_get(0);
    uint64_t t0 = ref__trace_start(w0);
    ref__heap_sweep_part(0, 1, &cs->sweep[0]);
    ref__trace(w0, REF_TRACE_SWEEP, t0, 0);
    return 1;
  }
  ref__workers_run(sweep_region, cs);
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
    ref__ptrbuf_reset(w);
    ref__pccache_reset(&w->pccache);
    ref__trace_reset(w);
  }
}

/* The resets clear only the first n per-worker entries (two arrays of
 * REF_MAX_WORKERS entries are 18 KiB of stores per cycle): n is fixed for a
 * runtime, so last's other entries stay zero from ref__gc_init, and the
 * cycle state's are never read (sweep parts are < n). */
static void cycle_state_reset(gc_cycle_state *cs, int n) {
  memset(cs, 0, offsetof(gc_cycle_state, sweep));
  memset(cs->sweep, 0, sizeof cs->sweep[0] * (size_t)n);
}

static void stats_reset(ref_gc_stats *st, int n) {
  memset(st, 0, offsetof(ref_gc_stats, worker));
  memset(st->worker, 0, sizeof st->worker[0] * (size_t)n);
  size_t tail = offsetof(ref_gc_stats, reason);
  memset((char *)st + tail, 0, sizeof *st - tail);
}

#define ADD_COUNTER(name, exact, meaning) st->name += w->n.name;
#define ADD_SWEEP_COUNTER(name, exact, meaning) st->name += cs->sweep[i].name;

static void stats_sum(ref_gc_stats *st, const gc_cycle_state *cs, int n) {
  for (int i = 0; i < n; i++) {
    const ref__worker *w = ref__worker_get(i);
    REF_MARK_COUNTERS(ADD_COUNTER)
    REF_SWEEP_COUNTERS(ADD_SWEEP_COUNTER)
    st->worker[i] = w->st;
    st->mark_cpu_ns += w->st.cpu_ns;
  }
  st->nworkers = n;
}

/* Adds the mark counters of workers outside the pool (a concurrent cycle's
 * background workers and mutators). */
static void stats_sum_extra(ref_gc_stats *st, ref__worker *const *extra, int nextra) {
  for (int i = 0; i < nextra; i++) {
    const ref__worker *w = extra[i];
    REF_MARK_COUNTERS(ADD_COUNTER)
    st->mark_cpu_ns += w->st.cpu_ns;
  }
}

/* Records what started the cycle and its count among them. */
static void stats_reason(ref_gc_stats *st, ref_gc_reason why) {
  nreason[why]++;
  st->reason = why;
  st->cycles_user = nreason[REF_GC_USER];
  st->cycles_heap = nreason[REF_GC_HEAP];
  st->cycles_limit = nreason[REF_GC_LIMIT];
}

static gc_cycle_state cs; /* 6 KiB of sweep results: not on a goroutine's stack */

void ref__gc_pool_reset(void) {
  int n = ref__workers_count();
  cycle_state_reset(&cs, n);
  workers_reset(n);
  ref__mark_reset(n);
}

/* A concurrent cycle's stats from its termination to its sweep's end,
 * when ref__gc_sweep_end publishes them: ref_gc_last() shows the cycle
 * before it meanwhile. */
static ref_gc_stats pending;
static uint64_t checkmark_ns; /* the last checkmark pass's time */

ref_gc_stats *ref__gc_finish(const ref__cycle_times *ct, ref__worker *const *extra, int nextra) {
  bool concurrent = nextra > 0;
  ref_gc_stats *st = concurrent ? &pending : &last;
  int n = ref__workers_count();
  uint64_t t3 = ref__nanotime();
  if (ref__cfg.checkmark) ref__checkmark_verify(concurrent);
  uint64_t t4 = ref__nanotime();
  checkmark_ns = t4 - t3;
  if (!concurrent) ref__heap_sweep_finish(cs.sweep, sweep(&cs, n));
  ref__roots_done();
  uint64_t t5 = ref__nanotime();
  if (!concurrent) ref_assert_expensive((ref__heap_check(), true));

  stats_reset(st, n);
  st->cycle = ncycles + 1;
  if (!concurrent) __atomic_store_n(&ncycles, st->cycle, __ATOMIC_RELAXED);
  st->ttsp_ns = ct->ttsp;
  st->async_preempts = (uint64_t)ref__stopped_async();
  st->roots_ns = ct->roots1 - ct->roots0;
  st->mark_ns = t3 - ct->roots1;
  st->sweep_ns = t5 - t4;
  st->total_ns = (t5 - ct->t0) - checkmark_ns; /* the checkmark is not part of the cycle */
  stats_sum(st, &cs, n);
  stats_sum_extra(st, extra, nextra);
  stats_reason(st, ct->why);
  if (concurrent) { /* the sweep runs after the restart: the mark's counts are the live ones */
    uint64_t objects = st->objects_marked, bytes = st->bytes_marked;
    for (int i = 0; i < nextra; i++) /* allocated black */
      objects += extra[i]->black_objects, bytes += extra[i]->black_bytes;
    ref__heap_sweep_begin(objects, bytes);
    __atomic_store_n(&sweeping, 1, __ATOMIC_RELAXED);
    st->bytes_live = ref__heap_counted(); /* for the goal */
  }
  ref__pacer_cycle_end(st);
  st->stw_ns = ref__nanotime() - ct->pause0 - checkmark_ns;
  ref__interval pause = {ct->pause0, ct->pause0 + st->stw_ns}; /* the cycle's only one in stw */
  st->mmu_1ms = ref__mmu(&pause, 1, REF_MMU_WINDOW_NS);
  return st;
}

#define SET_SWEEP_RESULT(name, exact, meaning) pending.name = r.name;

ref_gc_stats *ref__gc_sweep_end(void) {
  ref__sweep_result r;
  ref__heap_sweep_end(&r);
  REF_SWEEP_COUNTERS(SET_SWEEP_RESULT)
  last = pending;
  __atomic_store_n(&ncycles, last.cycle, __ATOMIC_RELAXED);
  __atomic_store_n(&sweeping, 0, __ATOMIC_RELAXED);
  return &last;
}

uint64_t ref__gc_checkmark_ns(void) { return checkmark_ns; }

/* Runs on the scheduler stack of the requesting M; arg points at the
 * ref_gc_reason. */
static void gc_cycle(void *arg) {
  ref_gc_reason why = *(const ref_gc_reason *)arg;
  ref__m *m = ref__m_get();
  ref_assert(!m->curg || m->curg->status == REF_G_RUNNING);
  /* Stop the world: every other M stops at a safepoint or is idle, with its
   * goroutine's context saved; the caller's was saved by systemstack. */
  ref__cycle_times ct = {.why = why, .t0 = ref__nanotime()};
  ct.pause0 = ct.t0;
  /* This M holding the world stopped means it is inside a cycle (another
   * M's cycle would have stopped it before it got here). */
  if (atomic_load_explicit(&ref__stw_owner, memory_order_relaxed) == m)
    ref__throw("a collection (reason %d) was started inside a collection", why);
  ref__stop_the_world(&ct.ttsp);
  /* The trigger fired on several Ms at once: the first cycle served them. */
  if (why == REF_GC_HEAP && !ref__heap_over_goal()) {
    ref__start_the_world();
    return;
  }
  if (ref__debug_in_cycle) ref__debug_in_cycle();
  ref_assert_expensive((ref__heap_check(), true));
  ref__gc_pool_reset();
  ref__reuse_prepare();
  ref__heap.mark_solo = ref__workers_count() == 1;
  if (ref__cfg.phase == REF_PHASE_SERIAL && ref__workers_count() > 1) mark_serial(&cs);
  else ref__workers_run(mark_region, &cs);
  ref__heap.mark_solo = false;
  ct.roots0 = cs.t_roots0;
  ct.roots1 = cs.t_roots1;
  ref__gc_finish(&ct, NULL, 0);
  ref__start_the_world();
}

void ref__gc_start(ref_gc_reason why) {
  REF_RUNTIME_CALL();
  if (ref_unlikely(!ref__m_get()))
    ref__throw("ref_gc called with no runtime (before ref_init or after ref_shutdown)");
  if (ref__cfg.mode != REF_MODE_STW) ref__cgc_run(why);
  else ref__systemstack(gc_cycle, &why);
}

void ref_gc(void) { ref__gc_start(REF_GC_USER); }

uint64_t ref_debug_scan_conservative(const void *buf, size_t len) {
  REF_RUNTIME_CALL();
  ref__worker *w = ref__worker_get(0);
  uint64_t before = w->n.candidates;
  ref__ptrbuf_reset(w); /* the last cycle's filter: its marks may be swept */
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
  memset(nreason, 0, sizeof nreason);
  ref__scan_conservative_init();
  if (ref__pacer_init() != 0) return -1;
  if (ref__workers_init(cfg) != 0) return -1;
  return ref__cgc_init(cfg);
}

void ref__gc_shutdown(void) {
  ref__cgc_shutdown();
  ref__trace_free();
  ref__workers_shutdown();
  ref__roots_shutdown();
  ref__reuse_shutdown();
  ref__wbuf_shutdown();
}
