/*
 * gc_concurrent.c: a concurrent cycle, modes concurrent-rescan (Go 1.5-1.7)
 * and concurrent-hybrid (Go 1.8+). ref.h states the barrier rule; barrier.c
 * is the barrier; this file is the cycle:
 *
 *   first pause   stop the world; a new epoch; the snapshot of allg (the
 *                 stack jobs); the registered roots and the stacks of the
 *                 goroutines that were on a CPU (at most one per M) scanned
 *                 by the pausing M; the barrier on; restart.
 *   mark          background workers (ref_config.bg_workers threads, default
 *                 max(1, mutators / 4), Go's 25%) claim stack jobs by an
 *                 atomic index and drain grey objects. A parked goroutine is
 *                 scanned in place by whoever wins its scan lock (Go's
 *                 castogscanstatus); one about to run is scanned by the M
 *                 that switches it in, before it runs (so a goroutine never
 *                 runs unscanned in mark but for the moment of the pause);
 *                 one created in mark starts scanned, its start argument
 *                 shaded (Go's newproc under the hybrid barrier). Objects
 *                 allocated in mark are black (heap.c). Mutators grey what
 *                 the barrier shades into their M's buffers and assist.
 *   termination   once the jobs are claimed, the background workers idle
 *                 and no full buffer is published (mark_quiet), whoever
 *                 sees it first (the driver, or an allocating goroutine)
 *                 stops the background workers and the world; a background
 *                 worker that sees it asks for that (xask), since it is not
 *                 an M and cannot stop the world (sched.c counts the
 *                 requester among the running Ms), and the next M to switch
 *                 a goroutine in from its scheduler loop, where its own
 *                 context is the scheduler's and no goroutine's, terminates
 *                 (so a heap-triggered cycle ends without another
 *                 allocation or ref_gc). Not at a switch from one goroutine
 *                 straight to another: there the one leaving may hold a
 *                 lock its m->after releases, and its context is not yet
 *                 saved; so goroutines that only hand off to each other, or
 *                 one that yields or polls alone, keep the mark going until
 *                 an M reaches its loop, one allocates, or ref_gc is called.
 *                 The terminator publishes every M's and worker's buffers,
 *                 scans the registered roots and the scheduler stacks'
 *                 records again, and in rescan mode every
 *                 stack (the whole point of that mode's pause), in hybrid
 *                 mode only a stack that no one scanned this cycle (none is
 *                 expected), drains with the W pool workers, checks that
 *                 nothing is left, turns the barrier off, sets the next
 *                 goal from what was marked, and restarts.
 *   sweep         with the world running, the terminator sweeps the spans
 *                 (sweep_ns), and so does every refill that finds its
 *                 class's partial list empty (until one span of its class
 *                 has room), an allocation over the new trigger, and
 *                 whoever waits for the cycle's end (Go's background and
 *                 proportional sweep, and gcStart's finishing of it). The
 *                 spans the world allocates meanwhile are new, or swept.
 *   sweep end     a third pause: the swept spans' table is merged with the
 *                 new ones, the stats are published, the cycle is done.
 *
 * Assist credit, the simple rule: every ASSIST_BYTES a goroutine allocates
 * while marking, it marks grey objects from its M's buffers and the global
 * lists until it has marked ASSIST_BYTES of objects or none is left. At the
 * goal (pacer.c starts the cycle at 70% of the way there) the assist is
 * the rest of the mark: an allocation that finds the heap over its goal
 * while marking takes stack jobs and grey objects until none is left, and
 * then ends the mark without waiting for it to be quiet: it waits for the
 * background workers to leave their step (a batch of stack jobs) and stops
 * the world, and the termination pause drains what they and the Ms still
 * hold. Another allocation at the goal meanwhile waits at safepoints for
 * that cycle's end. So the heap passes the goal (overshoot_bytes) by what
 * the other Ms allocate before they see it there, and the pause is longer
 * by the marking left: on 2 vCPUs with 4 mutators, a background worker
 * that lost its CPU in a batch let the heap reach 3.75x the goal before
 * this (test_pacing).
 *
 * The phase switch's meaning inside a concurrent cycle: stack jobs are
 * claimed by index by the background workers whatever the phase (rootjobs'
 * way); the termination pause's stacks are scanned by worker 0 while the
 * other pool workers drain (serial's way). reuse=clean and preempt=async
 * are refused with the concurrent modes (config.c): a replay needs the
 * stack stopped, and the barrier's fast path is not yet an unsafe point.
 */
#include "gc.h"
#include "os.h"

#include <sched.h>
#include <string.h>
#include <time.h>

#define ASSIST_BYTES ((uint64_t)64 << 10)
#define IDLE_SLEEP_NS 50000 /* an idle background worker's nap */

enum { PHASE_OFF, PHASE_STARTING, PHASE_MARK, PHASE_TERM, PHASE_SWEEP };

void (*ref__debug_in_mark)(void);
/* Set by the first pause of a cycle that will call ref__debug_in_mark,
 * cleared when the hook returns. */
static _Atomic bool debug_hold;
_Atomic bool ref__debug_hold_mark;

/* Whether a test holds the mark: no background work, no assist, no end. */
static bool held(void) {
  return atomic_load_explicit(&debug_hold, memory_order_relaxed) ||
         atomic_load_explicit(&ref__debug_hold_mark, memory_order_relaxed);
}

/* The state of the cycle under way; one at a time (xphase). */
static struct {
  _Atomic int xphase;
  _Atomic uint64_t xepoch;       /* this cycle's number for xscanned, from 1 */
  _Atomic uint64_t xdone;        /* epochs whose termination finished */
  ref_g **gs;                    /* the snapshot: allg at the first pause */
  size_t ngs;
  ref_g **term;                  /* the termination pause's stacks */
  size_t term_cap;
  _Atomic size_t xnext;          /* the next stack job to claim */
  _Atomic uint64_t xgaps;        /* jobs found running and unscanned (job_take) */
  ref_gc_reason why;
  uint64_t t0, pause1_ns, ttsp1, t_restart;
  uint64_t stacks_pause1;        /* stacks the first pause scanned */
  /* The workers outside the pool: nbg background threads, then one per M. */
  int nbg, nm;
  ref__worker *w;                /* nbg + nm of them */
  ref__worker *all[REF_MAX_WORKERS + REF_MAX_MUTATORS];
  pthread_t *threads;
  _Atomic int xbg_active;        /* background workers inside their mark loop */
  _Atomic int xbg_idle;          /* of those, the ones that found no work */
  _Atomic bool xask;             /* a background worker saw mark_quiet(): an M may end it */
  uint64_t start_bytes, goal_bytes; /* the heap's count at the first pause, its goal */
  uint64_t t_term;                   /* the termination pause's start */
  uint64_t novershot;            /* cycles since ref_init whose heap passed the goal */
  ref__susp_hist *susp;          /* nbg + nm: stack holds, per worker in cc.w (susp_of) */
  pthread_mutex_t mu;
  pthread_cond_t cv;             /* background workers wait for a mark phase */
  bool quit;                     /* under mu */
} cc;

static uint64_t epoch(void) { return atomic_load_explicit(&cc.xepoch, memory_order_relaxed); }

static bool marking(void) { return __atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED) != 0; }

ref__worker *ref__cgc_mworker(void) {
  ref__m *m = ref__m_get();
  return &cc.w[cc.nbg + (m ? m->id : 0)];
}

/* ---------------------------------------------------------------------------
 * One goroutine's stack: the scan lock and who may scan
 * ------------------------------------------------------------------------- */

static bool scanned(const ref_g *g) {
  return atomic_load_explicit(&g->xscanned, memory_order_acquire) >= epoch();
}

/* w's stack-hold histogram, cleared by its first use in a cycle: its tag
 * is the epoch. Not in the first pause, where clearing nbg + nm of them
 * (2 KiB each) would lengthen it. */
static ref__susp_hist *susp_of(const ref__worker *w) {
  ref__susp_hist *h = &cc.susp[w - cc.w];
  if (h->tag != epoch()) {
    memset(h, 0, sizeof *h);
    h->tag = epoch();
  }
  return h;
}

static bool scan_trylock(ref_g *g) {
  uint32_t z = 0;
  return atomic_compare_exchange_strong(&g->xscanlock, &z, 1);
}

static void scan_unlock(ref_g *g) { atomic_store_explicit(&g->xscanlock, 0, memory_order_release); }

/* Scans g's roots, its lock held and its context saved: the start argument
 * of one that has not started, else its stack; then g is black. */
static void scan_one(ref__worker *w, ref_g *g) {
  if (!g->started) ref__shade(w, (uintptr_t)g->arg);
  else ref__scanstack(w, g);
  atomic_store_explicit(&g->xscanned, epoch(), memory_order_release);
}

/* Takes stack job g: true with g's scan lock held when g is parked,
 * unscanned and nobody else has it. A running one was scanned when it was
 * switched in (or in the first pause), so losing it costs nothing; one
 * found running and unscanned is counted (xgaps): the termination pause
 * then looks for it. The lock's CAS and the load of xoncpu are seq_cst: a
 * Dekker pair with ref__cgc_switch_in_slow. */
static bool job_take(ref_g *g) {
  if (scanned(g) || !scan_trylock(g)) return false;
  bool oncpu = atomic_load(&g->xoncpu) != 0;
  if (!oncpu && !scanned(g) && __atomic_load_n(&g->status, __ATOMIC_ACQUIRE) != REF_G_DEAD)
    return true;
  if (oncpu && !scanned(g)) atomic_fetch_add(&cc.xgaps, 1);
  scan_unlock(g);
  return false;
}

static void try_terminate(void);

/* Whether the calling M runs on its scheduler stack with no goroutine of
 * its own (its scheduler loop, or a ref_gc outside ref_run): there it may
 * stop the world whatever it was about to do. */
static bool on_sched_loop(void) {
  ref__m *m = ref__m_get();
  return m && !m->curg;
}

/* A self-scan holds g's scan lock as a batch does (suspend_*_ns); the
 * clock is read only when a scan happens. */
static void self_scan(ref_g *g) {
  ref__worker *w = ref__cgc_mworker();
  uint64_t t0 = ref__nanotime();
  scan_one(w, g);
  uint64_t t = ref__nanotime() - t0;
  w->st.cpu_ns += t;
  ref__susp_add(susp_of(w), t, 1);
}

/* From the scheduler loop g is neither running nor queued, its context
 * saved: a stop of the world here finds it parked, and the termination a
 * background worker asked for runs first. */
void ref__cgc_switch_in_slow(ref_g *g) {
  if (atomic_load_explicit(&cc.xask, memory_order_relaxed) && on_sched_loop()) {
    try_terminate();
    if (!marking()) return;
  }
  atomic_thread_fence(memory_order_seq_cst);
  while (!scanned(g)) {
    if (!scan_trylock(g)) {
      ref_cpu_relax(); /* a worker has it: it finishes, or sees xoncpu and lets go */
      continue;
    }
    if (!scanned(g)) self_scan(g);
    scan_unlock(g);
  }
}

bool ref__cgc_g_create_begin(ref_g *g, void *arg) {
  if (!marking()) return false;
  while (!scan_trylock(g)) ref_cpu_relax(); /* a worker looking at the dead G it was */
  ref__shade(ref__cgc_mworker(), (uintptr_t)arg);
  return true;
}

void ref__cgc_g_create_end(ref_g *g) {
  atomic_store_explicit(&g->xscanned, epoch(), memory_order_release);
  scan_unlock(g);
}

void ref__cgc_g_exit(ref_g *g) {
  /* Running, so no worker scans it; a dead G's stack is no root. */
  if (marking()) atomic_store_explicit(&g->xscanned, epoch(), memory_order_release);
}

bool ref__cgc_stack_scanned(void) {
  ref__m *m = ref__m_get();
  return m && m->curg && scanned(m->curg); /* a scheduler stack is grey to the end */
}

/* ---------------------------------------------------------------------------
 * Background workers
 * ------------------------------------------------------------------------- */

static bool jobs_left(void) { return atomic_load_explicit(&cc.xnext, memory_order_relaxed) < cc.ngs; }

/* Claims JOB_BATCH stack jobs and scans the ones it can take as one run
 * of the stack scans' prefetch pipeline (ref__scan_gs), holding their
 * locks meanwhile (an M that would switch one in waits for the run); false
 * when none is left. 128 jobs, the fewest the rootjobs phase claims
 * (ref__claim_batch), and no more: the run holds its Gs' locks, which an M
 * switching one in waits on. Goroutines
 * made together allocate together, so with 64 the two threads marking
 * GoroutineIdle at 100k kept taking halves of one span's objects, and its
 * mark and alloc bits ping-ponged between them (mark CPU 23.6 ms against
 * 18.9, stw's 14.6-16.8, 2-vCPU EPYC). */
#define JOB_BATCH 128
#define TAKE_AHEAD 16
static bool claim_jobs(ref__worker *w) {
  if (!jobs_left()) return false; /* a load, not a read-for-ownership per step */
  size_t i = atomic_fetch_add_explicit(&cc.xnext, JOB_BATCH, memory_order_relaxed);
  if (i >= cc.ngs) return false;
  uint64_t t0 = ref__nanotime(), before = w->n.stacks_scanned; /* two clock reads a batch */
  size_t end = cc.ngs - i > JOB_BATCH ? i + JOB_BATCH : cc.ngs, k = 0;
  ref_g *run[JOB_BATCH];
  /* The take's CAS waits for its G's line, one miss after another: the
   * lines are fetched TAKE_AHEAD jobs ahead, for writing. */
  for (size_t j = i; j < end && j < i + TAKE_AHEAD; j++) __builtin_prefetch(cc.gs[j], 1);
  for (; i < end; i++) {
    if (i + TAKE_AHEAD < end) __builtin_prefetch(cc.gs[i + TAKE_AHEAD], 1);
    if (job_take(cc.gs[i])) run[k++] = cc.gs[i];
  }
  ref__scan_gs(w, run, k, false);
  ref__ptrbuf_flush(w);
  for (size_t j = 0; j < k; j++) {
    atomic_store_explicit(&run[j]->xscanned, epoch(), memory_order_release);
    scan_unlock(run[j]);
  }
  if (k) ref__susp_add(susp_of(w), ref__nanotime() - t0, k);
  w->job_stacks += w->n.stacks_scanned - before;
  return true;
}

/* One unit of marking: a batch of stack jobs, else up to ASSIST_BYTES of
 * grey objects; false when it found neither. */
static bool mark_step(ref__worker *w) {
  return claim_jobs(w) || ref__drain_some(w, ASSIST_BYTES);
}

/* A background worker's unit of work, unless a test holds the mark. */
static bool bg_step(ref__worker *w) { return !held() && mark_step(w); }

static bool mark_quiet(void);

static void nap(void) {
  struct timespec ts = {0, IDLE_SLEEP_NS};
  nanosleep(&ts, NULL);
}

static void bg_mark(ref__worker *w) {
  bool idle = false;
  uint64_t t0 = ref__nanotime(), c0 = ref__thread_cputime();
  while (atomic_load(&cc.xphase) == PHASE_MARK) {
    if (bg_step(w)) {
      if (idle) atomic_fetch_sub(&cc.xbg_idle, 1), idle = false;
      continue;
    }
    if (!idle) atomic_fetch_add(&cc.xbg_idle, 1), idle = true;
    if (!atomic_load_explicit(&cc.xask, memory_order_relaxed) && !held() && mark_quiet())
      atomic_store(&cc.xask, true); /* an M's next switch-in from its loop ends the mark */
    nap();
  }
  if (idle) atomic_fetch_sub(&cc.xbg_idle, 1);
  w->st.busy_ns += ref__nanotime() - t0;
  w->st.cpu_ns += ref__thread_cputime() - c0;
}

static void *bg_main(void *arg) {
  ref__worker *w = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&cc.mu);
  for (;;) {
    while (!cc.quit && !(atomic_load(&cc.xphase) == PHASE_MARK && epoch() != seen))
      pthread_cond_wait(&cc.cv, &cc.mu);
    if (cc.quit) break;
    seen = epoch();
    atomic_fetch_add(&cc.xbg_active, 1);
    pthread_mutex_unlock(&cc.mu);
    bg_mark(w);
    pthread_mutex_lock(&cc.mu);
    atomic_fetch_sub(&cc.xbg_active, 1);
    pthread_cond_broadcast(&cc.cv);
  }
  pthread_mutex_unlock(&cc.mu);
  return NULL;
}

/* Whether marking has run out of work that the world can see: every job
 * claimed, every background worker idle, no full buffer. Buffers a mutator
 * still holds are the termination pause's. */
static bool mark_quiet(void) {
  return !jobs_left() && atomic_load(&cc.xbg_idle) == atomic_load(&cc.xbg_active) &&
         ref__wbuf_nfull() == 0;
}

/* ---------------------------------------------------------------------------
 * The first pause
 * ------------------------------------------------------------------------- */

static void workers_reset(void) {
  for (int i = 0; i < cc.nbg + cc.nm; i++) {
    ref__worker *w = &cc.w[i];
    memset(&w->n, 0, sizeof w->n);
    memset(&w->st, 0, sizeof w->st);
    ref__ptrbuf_reset(w);
    w->shades = w->assist_ns = w->job_stacks = 0;
    w->black_objects = w->black_bytes = 0;
    ref__pccache_reset(&w->pccache);
  }
}

/* The stack jobs are allg itself as it is now, pinned until termination
 * (g.h): goroutines created in mark start scanned, and entries never
 * change, so there is nothing to copy. */
static void snapshot(void) {
  ref__allg_pin();
  cc.gs = ref__allg.g;
  cc.ngs = ref__allg.len;
  atomic_store(&cc.xnext, 0);
  atomic_store(&cc.xgaps, 0);
}

/* Roots no barrier covers until the barrier is on: the registered ranges,
 * and the goroutines on a CPU, stopped at a safepoint (the pausing one in
 * its systemstack call). */
static void scan_pause_roots(ref__worker *w) {
  uint64_t t0 = ref__nanotime();
  for (size_t i = 0; i < ref__globals_nblocks(); i++) ref__globals_scan_block(w, i);
  uint64_t before = w->n.stacks_scanned;
  for (int i = 0; i < ref__nm(); i++) {
    ref_g *g = ref__m_at(i)->curg;
    if (g && scan_trylock(g)) {
      scan_one(w, g);
      scan_unlock(g);
    }
  }
  cc.stacks_pause1 = w->n.stacks_scanned - before;
  ref__ptrbuf_flush(w);
  ref__gcw_dispose(&w->gcw); /* visible to the background workers */
  w->st.cpu_ns += ref__nanotime() - t0;
}

static void first_pause(void *arg) {
  (void)arg;
  uint64_t t0 = ref__nanotime();
  ref__stop_the_world(&cc.ttsp1);
  if (cc.why == REF_GC_HEAP && !ref__heap_over_trigger()) {
    atomic_store(&cc.xphase, PHASE_OFF);
    ref__start_the_world();
    return;
  }
  atomic_fetch_add(&cc.xepoch, 1);
  if (ref__debug_in_mark && cc.why == REF_GC_USER) atomic_store(&debug_hold, true);
  workers_reset();
  atomic_store(&cc.xask, false);
  cc.start_bytes = ref__heap_counted();
  cc.goal_bytes = ref__heap_goal();
  snapshot();
  __atomic_store_n(&ref__wb_enabled, 1, __ATOMIC_RELAXED);
  scan_pause_roots(ref__cgc_mworker());
  pthread_mutex_lock(&cc.mu);
  atomic_store(&cc.xphase, PHASE_MARK);
  pthread_mutex_unlock(&cc.mu);
  cc.t_restart = ref__nanotime();
  cc.pause1_ns = cc.t_restart - t0;
  ref__start_the_world();
  /* The background workers are woken after the restart: the thread woken
   * may take this CPU at once and mark for milliseconds, and inside the
   * pause that was the pause (GoroutineIdle at 10k, 2 vCPUs: first pauses
   * of 1.3-2.4 ms, all of it in the broadcast, against a 5 us median). */
  pthread_cond_broadcast(&cc.cv);
}

/* ---------------------------------------------------------------------------
 * Mark termination
 * ------------------------------------------------------------------------- */

typedef struct term_ctx {
  ref_g **scan;                  /* stacks to scan in the pause */
  size_t nscan;
  uint64_t t_roots0, t_roots1;
} term_ctx;

static void term_region(ref__worker *w, void *ctx) {
  term_ctx *tc = ctx;
  uint64_t c0 = ref__thread_cputime();
  if (w->id == 0) {
    tc->t_roots0 = ref__nanotime();
    for (size_t i = 0; i < ref__globals_nblocks(); i++) ref__globals_scan_block(w, i);
    ref__scan_g0_records(w);
    ref__scan_gs(w, tc->scan, tc->nscan, false);
    ref__ptrbuf_flush(w);
    tc->t_roots1 = ref__nanotime();
  } else {
    ref__mark_join();
  }
  ref__drain(w);
  w->st.cpu_ns = ref__thread_cputime() - c0;
}

/* The stacks the pause scans: every live one in rescan mode, the unscanned
 * ones in hybrid mode, where none is expected (every goroutine is scanned
 * at the first pause, by a job or at its switch-in, or starts scanned):
 * there allg is walked, a cold read per goroutine, only when a job found
 * one running unscanned, or at assertion level >= 2, which then throws.
 * The stack jobs are done: allg is unpinned. */
static void term_stacks(term_ctx *tc) {
  bool all = ref__cfg.mode == REF_MODE_CONCURRENT_RESCAN;
  bool walk = all || atomic_load(&cc.xgaps) > 0 || REF_ASSERT_LEVEL >= 2;
  size_t n = 0, len = walk ? ref__allg.len : 0;
  ref__allg_unpin();
  cc.gs = NULL;
  cc.ngs = 0;
  if (len > cc.term_cap) {
    ref_g **a = realloc(cc.term, len * sizeof *a);
    if (!a) ref__throw("out of memory for the termination pause's %zu stacks", len);
    cc.term = a;
    cc.term_cap = len;
  }
  for (size_t i = 0; i < len; i++) {
    ref_g *g = ref__allg.g[i];
    if (g->status == REF_G_DEAD || (!all && scanned(g))) continue;
    if (!all && atomic_load(&cc.xgaps) == 0)
      ref__throw("mark termination: goroutine %llu was never scanned", (unsigned long long)g->id);
    cc.term[n++] = g;
  }
  tc->scan = cc.term;
  tc->nscan = n;
}

static void flush_all(void) {
  for (int i = 0; i < cc.nbg + cc.nm; i++) {
    ref__ptrbuf_flush(&cc.w[i]);
    ref__gcw_dispose(&cc.w[i].gcw);
  }
}

/* The suspension fields of st (ref.h): the workers' stack holds merged. */
static void suspend_stats(ref_gc_stats *st) {
  static ref__susp_hist all; /* 2 KiB: off the scheduler stack */
  memset(&all, 0, sizeof all);
  for (int i = 0; i < cc.nbg + cc.nm; i++)
    if (cc.susp[i].tag == epoch()) ref__susp_merge(&all, &cc.susp[i]); /* used this cycle */
  st->suspend_max_ns = all.max;
  st->suspend_p99_ns = ref__susp_quantile(&all, 99);
  st->ttsp1_ns = cc.ttsp1;
}

/* The fields of st that the sweep's end pause completes, [p3, end): the
 * pauses' sum and maximum, and the MMU of the three. */
static void pause_stats(ref_gc_stats *st, uint64_t p3, uint64_t end) {
  st->pause_sweep_ns = end - p3;
  st->pause_total_ns = cc.pause1_ns + st->stw_ns + st->pause_sweep_ns;
  uint64_t mx = cc.pause1_ns > st->stw_ns ? cc.pause1_ns : st->stw_ns;
  st->pause_max_ns = mx > st->pause_sweep_ns ? mx : st->pause_sweep_ns;
  ref__interval iv[3] = {{cc.t_restart - cc.pause1_ns, cc.t_restart},
                         {cc.t_term, cc.t_term + st->stw_ns},
                         {p3, end}};
  st->mmu_1ms = ref__mmu(iv, 3, REF_MMU_WINDOW_NS);
}

/* The concurrent fields of st (ref.h), from the workers' counts; end_bytes
 * is the heap's count at termination, before the sweep. */
static void concurrent_stats(ref_gc_stats *st, const ref__cycle_times *ct, uint64_t end_bytes) {
  st->mark_ns = ct->pause0 - cc.t_restart;
  st->start_bytes = cc.start_bytes;
  st->goal_bytes = cc.goal_bytes;
  st->overshoot_bytes = end_bytes > cc.goal_bytes ? end_bytes - cc.goal_bytes : 0;
  cc.novershot += st->overshoot_bytes > 0;
  st->cycles_overshot = cc.novershot;
  suspend_stats(st);
  st->pause1_ns = cc.pause1_ns;
  cc.t_term = ct->pause0;
  for (int i = 0; i < cc.nbg + cc.nm; i++) st->stacks_bg += cc.w[i].job_stacks;
  for (int i = cc.nbg; i < cc.nbg + cc.nm; i++) {
    st->stacks_self += cc.w[i].n.stacks_scanned - cc.w[i].job_stacks;
    st->barrier_shades += cc.w[i].shades;
    st->assist_ns += cc.w[i].assist_ns;
  }
  st->stacks_self -= cc.stacks_pause1;
  st->stacks_pause = cc.stacks_pause1;
  for (int i = 0; i < ref__workers_count(); i++) {
    st->stacks_pause += ref__worker_get(i)->n.stacks_scanned;
    st->rescan_bytes += ref__worker_get(i)->n.stack_bytes;
  }
}

/* The sweep, with the world running, on the terminating M (whose goroutine
 * waits for it; the others run and allocate from new spans), then the
 * third pause: the swept spans go back to the allocator, the stats are
 * published, the next goal is set, and the cycle is done. */
void (*ref__debug_in_sweep)(void);

static void sweep_and_end(void) {
  uint64_t t0 = ref__nanotime();
  if (ref__debug_in_sweep) ref__debug_in_sweep();
  ref__heap_sweep_run();
  uint64_t t1 = ref__nanotime(), ttsp;
  ref__stop_the_world(&ttsp);
  ref_gc_stats *st = ref__gc_sweep_end();
  st->sweep_ns = t1 - t0;
  uint64_t end = ref__nanotime();
  pause_stats(st, t1, end);
  st->total_ns = end - cc.t0 - ref__gc_checkmark_ns();
  atomic_store(&cc.xdone, epoch());
  atomic_store(&cc.xphase, PHASE_OFF);
  ref__start_the_world();
}

static void terminate(void *arg) {
  (void)arg;
  ref__cycle_times ct = {.why = cc.why, .t0 = cc.t0};
  pthread_mutex_lock(&cc.mu);
  while (atomic_load(&cc.xbg_active) > 0) pthread_cond_wait(&cc.cv, &cc.mu);
  pthread_mutex_unlock(&cc.mu);
  ct.pause0 = ref__nanotime();
  ref__stop_the_world(&ct.ttsp);
  flush_all();
  term_ctx tc = {0};
  term_stacks(&tc);
  ref__gc_pool_reset();
  /* The pool is woken only for work: stacks to scan (rescan mode) or more
   * than a buffer of grey objects. A hybrid termination has neither, as a
   * rule, and a woken helper can take the pausing thread's CPU (on 2
   * vCPUs, some of GoroutineIdle's hybrid terminations at 100k took
   * 250-570 us, against a 25 us median). */
  if (tc.nscan > 0 || ref__wbuf_nfull() > 1) ref__workers_run(term_region, &tc);
  else term_region(ref__worker_get(0), &tc);
  if (ref__wbuf_nfull() != 0 || ref__wbuf_njobs() != 0)
    ref__throw("mark termination left %zu full work buffers", ref__wbuf_nfull());
  for (int i = 0; i < cc.nbg + cc.nm; i++)
    if (!ref__gcw_empty(&cc.w[i].gcw)) ref__throw("mark termination: worker %d not empty", i);
  __atomic_store_n(&ref__wb_enabled, 0, __ATOMIC_RELAXED);
  ct.roots0 = tc.t_roots0;
  ct.roots1 = tc.t_roots1;
  uint64_t end_bytes = ref__heap_counted(); /* the sweep resets the count */
  concurrent_stats(ref__gc_finish(&ct, cc.all, cc.nbg + cc.nm), &ct, end_bytes);
  atomic_store(&cc.xphase, PHASE_SWEEP);
  ref__start_the_world();
  sweep_and_end();
}

/* Becomes the cycle's terminator if marking is quiet and nobody else is. */
static void try_terminate(void) {
  int ph = PHASE_MARK;
  if (held() || !mark_quiet() ||
      !atomic_compare_exchange_strong(&cc.xphase, &ph, PHASE_TERM))
    return;
  ref__systemstack(terminate, NULL);
}

/* ---------------------------------------------------------------------------
 * Assists and the driver
 * ------------------------------------------------------------------------- */

static void assist_time(ref__worker *w, uint64_t t0) {
  uint64_t t = ref__nanotime() - t0;
  w->assist_ns += t;
  w->st.cpu_ns += t;
}

/* An allocation's assist: `bytes` of grey objects, or what there is. Never
 * parks or stops: no safepoint inside. */
static void assist(ref__worker *w, uint64_t bytes) {
  uint64_t t0 = ref__nanotime();
  ref__drain_some(w, bytes);
  assist_time(w, t0);
}

/* The assist of an allocation at the goal: stack jobs and grey objects
 * until none is left that the world can see (no job is left after it). */
static void assist_at_goal(ref__worker *w) {
  uint64_t t0 = ref__nanotime();
  while (mark_step(w)) {
  }
  assist_time(w, t0);
}

/* Waits at safepoints while the cycle is in phase ph: the pause another M
 * is taking (its stop) or waiting for (a background worker it needs the CPU
 * of) ends it. A goroutine only: on the scheduler stack (outside ref_run)
 * nothing else allocates. */
static void wait_out(int ph) {
  while (atomic_load(&cc.xphase) == ph && ref_curg()) {
    ref_poll();
    sched_yield();
  }
}

/* At the goal, after assist_at_goal: ends the mark, quiet or not (every
 * stack job is claimed, and the pause drains the rest), or waits, at
 * safepoints, for the terminator that is ending it. A goroutine only: on
 * the scheduler stack (outside ref_run) nothing else allocates. */
static void end_at_goal(void) {
  int ph = PHASE_MARK;
  if (jobs_left()) return;
  if (atomic_compare_exchange_strong(&cc.xphase, &ph, PHASE_TERM)) {
    ref__systemstack(terminate, NULL);
    return;
  }
  wait_out(PHASE_TERM);
}

static _Thread_local uint64_t assist_debt;

void ref__cgc_alloc_slow(size_t bytes) {
  if (held()) return;
  assist_debt += bytes;
  if (ref__heap_over_goal() && atomic_load(&cc.xphase) >= PHASE_MARK) {
    assist_debt = 0;
    if (atomic_load(&cc.xphase) == PHASE_MARK) assist_at_goal(ref__cgc_mworker());
    end_at_goal();
    return;
  }
  if (assist_debt >= ASSIST_BYTES) {
    assist_debt = 0;
    assist(ref__cgc_mworker(), ASSIST_BYTES);
  }
  if (atomic_load_explicit(&cc.xphase, memory_order_relaxed) == PHASE_MARK) try_terminate();
}

/* The marking of one who waits for the cycle's end with nothing else to
 * run on its P (Go's idle mark worker): a background worker's step, timed;
 * whether it found any. Never parks or stops: no safepoint inside. */
static bool idle_mark(ref__worker *w) {
  uint64_t t0 = ref__nanotime();
  bool did = bg_step(w);
  if (did) w->st.cpu_ns += ref__nanotime() - t0;
  return did;
}

/* Waits a step for the cycle's end: marks when nothing else would run on
 * this P, and lets others run. A goroutine yields (a safepoint) after
 * each step; on the scheduler stack, where no goroutine runs, a step with
 * nothing to mark naps as a background worker does (the jobs are claimed
 * and the workers finish their batches: spinning there cost GoroutineIdle
 * at 100k 2-3x stw's mark CPU in empty assists). */
static void driver_wait(void) {
  bool on_g = ref_curg() != NULL;
  bool marked = (!on_g || ref__sched_p_empty()) && idle_mark(ref__cgc_mworker());
  if (on_g) ref_yield();
  else if (!marked) nap();
}

/* Moves a cycle under way along, as one who waits for its end can: ends
 * a quiet mark, sweeps beside the sweeper, or lets others run. */
static void advance(void) {
  int ph = atomic_load(&cc.xphase);
  if (ph == PHASE_MARK) try_terminate();
  else if (ph == PHASE_SWEEP) ref__heap_sweep_help();
  if (atomic_load(&cc.xphase) != PHASE_OFF) driver_wait();
}

static bool start(ref_gc_reason why) {
  int ph = PHASE_OFF;
  if (!atomic_compare_exchange_strong(&cc.xphase, &ph, PHASE_STARTING)) return false;
  cc.why = why;
  cc.t0 = ref__nanotime();
  ref__systemstack(first_pause, NULL);
  return true;
}

void ref__cgc_run(ref_gc_reason why) {
  /* Every allocation over the trigger comes here until the cycle it
   * started ends: a load, not start()'s read-for-ownership, answers it.
   * One while another M starts the cycle waits for its first pause, as
   * Go's gcStart waits on startSema: allocating on, a goroutine whose
   * starter lost its CPU took the heap past the goal before the cycle
   * began (test_pacing under qemu with the CPUs shared: 7.0 MB counted at
   * the first pause, its goal 4.2 MB). */
  if (why == REF_GC_HEAP) {
    int ph = atomic_load_explicit(&cc.xphase, memory_order_relaxed);
    if (ph == PHASE_STARTING) wait_out(PHASE_STARTING);
    if (ph == PHASE_SWEEP) { /* the last cycle's sweep first, as in Go's gcStart */
      ref__heap_sweep_help();
      wait_out(PHASE_SWEEP);
      ph = atomic_load_explicit(&cc.xphase, memory_order_relaxed);
    }
    if (ph != PHASE_OFF) return;
  }
  for (;;) { /* a cycle under way: a trigger leaves it be, others see it out */
    if (start(why)) break;
    if (why == REF_GC_HEAP) return;
    advance();
  }
  if (why == REF_GC_HEAP) return; /* the mark runs on; it ends by itself (xask) */
  uint64_t mine = epoch();
  if (atomic_load(&debug_hold)) {
    ref__debug_in_mark();
    atomic_store(&debug_hold, false);
  }
  while (atomic_load(&cc.xdone) < mine) advance();
}

void ref__cgc_wait_swept(void) { wait_out(PHASE_SWEEP); }

bool ref__cgc_idle(void) { return atomic_load(&cc.xphase) == PHASE_OFF; }

void ref__cgc_wait_idle(void) {
  while (!ref__cgc_idle()) advance();
}

/* ---------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------- */

int ref__cgc_init(const ref_config *cfg) {
  memset(&cc, 0, sizeof cc);
  __atomic_store_n(&ref__wb_enabled, 0, __ATOMIC_RELAXED);
  if (cfg->mode == REF_MODE_STW) return 0;
  cc.nbg = cfg->bg_workers ? cfg->bg_workers : (cfg->mutators / 4 > 1 ? cfg->mutators / 4 : 1);
  cc.nm = cfg->mutators;
  int n = cc.nbg + cc.nm;
  cc.w = aligned_alloc(REF_CACHE_LINE, sizeof(ref__worker) * (size_t)n);
  cc.threads = calloc((size_t)cc.nbg, sizeof *cc.threads);
  cc.susp = calloc((size_t)n, sizeof *cc.susp);
  if (!cc.w || !cc.threads || !cc.susp)
    return ref__seterr("out of memory for %d concurrent mark workers", n);
  memset(cc.w, 0, sizeof(ref__worker) * (size_t)n);
  for (int i = 0; i < n; i++) {
    cc.w[i].id = cfg->workers + i; /* a stack-part chunk index (no split in these modes) */
    cc.all[i] = &cc.w[i];
  }
  pthread_mutex_init(&cc.mu, NULL);
  pthread_cond_init(&cc.cv, NULL);
  for (int i = 0; i < cc.nbg; i++) {
    if (ref__os_thread_create(&cc.threads[i], bg_main, &cc.w[i]) != 0) {
      cc.nbg = i;
      ref__cgc_shutdown();
      return ref__seterr("could not create background mark worker %d", i);
    }
  }
  return 0;
}

void ref__cgc_shutdown(void) {
  if (!cc.w) return;
  atomic_store(&cc.xphase, PHASE_OFF); /* a mark left running: its workers stop */
  pthread_mutex_lock(&cc.mu);
  cc.quit = true;
  pthread_cond_broadcast(&cc.cv);
  pthread_mutex_unlock(&cc.mu);
  for (int i = 0; i < cc.nbg; i++) pthread_join(cc.threads[i], NULL);
  __atomic_store_n(&ref__wb_enabled, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < cc.nbg + cc.nm; i++) ref__gcw_dispose(&cc.w[i].gcw);
  pthread_mutex_destroy(&cc.mu);
  pthread_cond_destroy(&cc.cv);
  free(cc.w);
  free(cc.threads);
  free(cc.susp);
  free(cc.term);
  memset(&cc, 0, sizeof cc);
}
