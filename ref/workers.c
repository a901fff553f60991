/*
 * workers.c: the mark worker pool and termination detection.
 *
 * W workers: the initiating thread (worker 0) plus W-1 helper pthreads
 * created once by ref_init and parked on a condition variable between
 * cycles. A region runs one function on worker 0 and on every helper that
 * joins it before worker 0's own run returns, and returns when those have
 * finished: a helper that the OS has not run by then (a loaded machine, or
 * a wake-up slower than a small cycle) is not waited for. Regions therefore
 * hand out their work by claiming, never by worker id. Between regions a
 * helper sleeps on the condition variable at once. Waking it costs tens of
 * microseconds on a VM, so it used to spin 200 us for the next region
 * first. But an awake helper joins every cycle, and next to a busy process
 * on its PU it can lose the PU mid-cycle with work in hand, which worker 0
 * then waits for (the likely cause; not traced). The seed table (n=1000,
 * two workers, 2-vCPU Xeon VM) ran 0.84-3.20x its quiet times with the
 * spin and 0.86-1.57x without. Quiet, it costs: 4 alternated processes,
 * 0.92-1.15x the time with the spin (1000, frames-rootjobs and
 * conservative-serial, Go's four workloads), 1.0-1.3x in one run of the
 * seed table.
 *
 * Termination (a drained worker in ref__mark_idle): the mark phase is over
 * when all workers are idle, no full buffer is published, no root job is
 * left, and no worker became active while that was being checked. Workers
 * count themselves idle (xnwait) only with empty local buffers, and an idle
 * worker that sees work first leaves xnwait and then bumps xepoch before
 * taking any; so if xepoch is unchanged across the check, every worker was
 * idle for its whole duration and the global state it read was frozen.
 *
 * Waiting within a region (an idle worker, a helper waiting for the roots,
 * worker 0 waiting for the region's end) spins for REF_PARK_SPIN_NS and then
 * parks: it sleeps on a futex word until something it may be waiting for
 * happens -- work published, roots enumerated, termination, a helper done
 * -- whose author calls ref__unpark. A spinning or yielding waiter on a
 * loaded machine takes the CPU from the thread it waits for (the seed table
 * ran 3-8x slower next to one busy process). Parking does not change the
 * termination argument: a parked worker stays counted in xnwait, and the
 * last worker to go idle still finds xnwait == n and ends the phase.
 *
 * A helper that has not joined the mark region counts as idle (with empty
 * buffers, as it is): ref__mark_reset starts xnwait at n-1, and joining is
 * leaving idle (ref__mark_join: leave xnwait, then bump xepoch), so a late
 * joiner is one more idle worker that saw work, and one that joins after
 * termination finds xdone and none.
 */
#include "gc.h"
#include "os.h"

#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define JOIN_CLOSED ((uint64_t)1 << 31)
#define JOIN_COUNT (JOIN_CLOSED - 1)

_Atomic int ref__xnwait;

static struct {
  int n;
  ref__worker *w;
  ref_worker_start_fn start;     /* the config's start callback and its argument */
  void *start_arg;
  pthread_mutex_t mu;
  pthread_cond_t start_cv, done_cv;
  _Atomic uint64_t xgen;         /* bumped per region (under mu); fn is set before */
  void (*_Atomic xfn)(ref__worker *, void *);
  void *_Atomic xctx;             /* fn's context, set with fn */
  /* The region's joins: xgen's low 32 bits << 32 | JOIN_CLOSED | helpers
   * joined; stored (open, 0 joined) before xgen moves; worker 0 closes it
   * when its own run returns and then waits for xfinished to reach the
   * count. */
  _Atomic uint64_t xjoin;
  _Atomic int xfinished;         /* joined helpers done with the region */
  int started;                   /* guarded by mu */
  int start_err;
  bool quit;
  _Atomic uint64_t xepoch;
  _Atomic bool xdone;
  /* Parking (see the top): xparkseq moves at every ref__unpark that found a
   * sleeper; a parker counts itself in xsleepers, reads xparkseq, checks its
   * condition once more and sleeps only while xparkseq is unchanged. Both
   * sides fence between their store and their load (a Dekker pair), so
   * either the parker sees the event or the unparker sees the parker.
   * xwork_sleepers counts those of them waiting for work (ref__mark_idle),
   * the only ones a published buffer can wake (ref__unpark_work). */
  _Alignas(64) _Atomic uint32_t xparkseq;
  _Atomic int xsleepers, xwork_sleepers;
} wp;

ref__worker *ref__worker_get(int i) { return &wp.w[i]; }
int ref__workers_count(void) { return wp.n; }

/* ---------------------------------------------------------------------------
 * Parking
 * ------------------------------------------------------------------------- */

static void wake_if(_Atomic int *sleepers) {
  atomic_thread_fence(memory_order_seq_cst);
  if (ref_likely(atomic_load_explicit(sleepers, memory_order_relaxed) == 0)) return;
  atomic_fetch_add(&wp.xparkseq, 1);
  syscall(SYS_futex, &wp.xparkseq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void ref__unpark(void) { wake_if(&wp.xsleepers); }
void ref__unpark_work(void) { wake_if(&wp.xwork_sleepers); }

/* Sleeps until the next ref__unpark (or, for a worker waiting for work,
 * ref__unpark_work) unless ready(arg) already holds; may return early (a
 * signal, another waiter's event): callers recheck. */
static void park(bool (*ready)(void *), void *arg, bool for_work) {
  atomic_fetch_add(&wp.xsleepers, 1);
  if (for_work) atomic_fetch_add(&wp.xwork_sleepers, 1);
  atomic_thread_fence(memory_order_seq_cst);
  uint32_t seq = atomic_load(&wp.xparkseq);
  if (!ready(arg)) syscall(SYS_futex, &wp.xparkseq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
  if (for_work) atomic_fetch_sub(&wp.xwork_sleepers, 1);
  atomic_fetch_sub(&wp.xsleepers, 1);
}

void ref__wait_until(bool (*ready)(void *), void *arg) {
  uint64_t t0 = ref__nanotime();
  for (unsigned i = 0; !ready(arg); i++) {
    if ((i & 63) == 63 && ref__nanotime() - t0 > REF_PARK_SPIN_NS) park(ready, arg, false);
    else ref_cpu_relax();
  }
}

/* ---------------------------------------------------------------------------
 * Helper threads
 * ------------------------------------------------------------------------- */

/* Waits on the condition variable until the region generation moves past
 * seen (no spin first: see the top). Returns false when the pool quits. */
static bool wait_region(uint64_t seen) {
  pthread_mutex_lock(&wp.mu);
  while (atomic_load(&wp.xgen) == seen && !wp.quit) pthread_cond_wait(&wp.start_cv, &wp.mu);
  bool quit = wp.quit;
  pthread_mutex_unlock(&wp.mu);
  return !quit;
}

/* Joins the region xgen names, unless worker 0 has closed it: true when
 * joined. Sets *seen to that region's xgen either way. */
static bool join(uint64_t *seen) {
  for (;;) {
    uint64_t g = atomic_load(&wp.xgen), v = atomic_load(&wp.xjoin);
    if ((uint32_t)(v >> 32) != (uint32_t)g) continue; /* worker 0 is starting a region */
    *seen = g;
    if (v & JOIN_CLOSED) return false;
    if (atomic_compare_exchange_weak(&wp.xjoin, &v, v + 1)) return true;
  }
}

static void *worker_main(void *arg) {
  ref__worker *w = arg;
  int err = 0;
  if (wp.start) err = wp.start(w->id, wp.start_arg);
  pthread_mutex_lock(&wp.mu);
  if (err && !wp.start_err) wp.start_err = err;
  wp.started++;
  uint64_t seen = atomic_load(&wp.xgen);
  pthread_cond_broadcast(&wp.done_cv);
  pthread_mutex_unlock(&wp.mu);
  while (wait_region(seen)) {
    if (!join(&seen)) continue;
    atomic_load(&wp.xfn)(w, atomic_load(&wp.xctx));
    atomic_fetch_add(&wp.xfinished, 1);
    ref__unpark(); /* worker 0 may be parked */
  }
  return NULL;
}

static bool region_done(void *joined) { return atomic_load(&wp.xfinished) == *(int *)joined; }

void ref__workers_run(void (*fn)(ref__worker *, void *), void *ctx) {
  atomic_store(&wp.xfn, fn);
  atomic_store(&wp.xctx, ctx);
  atomic_store(&wp.xfinished, 0);
  uint64_t g = atomic_load(&wp.xgen) + 1;
  atomic_store(&wp.xjoin, (g & 0xffffffffu) << 32);
  pthread_mutex_lock(&wp.mu);
  atomic_store(&wp.xgen, g);
  pthread_cond_broadcast(&wp.start_cv);
  pthread_mutex_unlock(&wp.mu);
  fn(&wp.w[0], ctx);
  int joined = (int)(atomic_fetch_or(&wp.xjoin, JOIN_CLOSED) & JOIN_COUNT);
  ref__wait_until(region_done, &joined); /* the joined are finishing too */
}

/* ---------------------------------------------------------------------------
 * Termination detection
 * ------------------------------------------------------------------------- */

void ref__mark_reset(int nworkers) {
  ref_assert(nworkers == wp.n);
  atomic_store(&ref__xnwait, wp.n - 1); /* the helpers, until they join */
  atomic_store(&wp.xepoch, 0);
  atomic_store(&wp.xdone, false);
}

void ref__mark_join(void) {
  atomic_fetch_sub(&ref__xnwait, 1);
  atomic_fetch_add(&wp.xepoch, 1);
}

static inline bool work_visible(void) { return ref__wbuf_nfull() > 0 || ref__roots_remaining(); }

static bool idle_wake(void *unused) {
  (void)unused;
  return atomic_load(&wp.xdone) || work_visible();
}

bool ref__mark_idle(ref__worker *w) {
  uint64_t t0 = ref__nanotime();
  atomic_fetch_add(&ref__xnwait, 1);
  for (unsigned spins = 0;; spins++) {
    if (atomic_load(&wp.xdone)) break;
    uint64_t e = atomic_load(&wp.xepoch);
    if (atomic_load(&ref__xnwait) == wp.n && !work_visible() && atomic_load(&wp.xepoch) == e) {
      atomic_store(&wp.xdone, true);
      ref__unpark();
      break;
    }
    if (work_visible()) {
      atomic_fetch_sub(&ref__xnwait, 1);
      atomic_fetch_add(&wp.xepoch, 1);
      w->st.idle_ns += ref__nanotime() - t0;
      return false;
    }
    if ((spins & 63) == 63 && ref__nanotime() - t0 > REF_PARK_SPIN_NS) park(idle_wake, NULL, true);
    else ref_cpu_relax();
  }
  w->st.idle_ns += ref__nanotime() - t0;
  return true;
}

/* ---------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------- */

int ref__workers_init(const ref_config *cfg) {
  memset(&wp, 0, sizeof wp);
  wp.n = cfg->workers;
  wp.start = cfg->worker_start;
  wp.start_arg = cfg->worker_start_arg;
  wp.w = aligned_alloc(REF_CACHE_LINE, sizeof(ref__worker) * (size_t)wp.n);
  if (!wp.w) return ref__seterr("out of memory for %d mark workers", wp.n);
  memset(wp.w, 0, sizeof(ref__worker) * (size_t)wp.n);
  pthread_mutex_init(&wp.mu, NULL);
  pthread_cond_init(&wp.start_cv, NULL);
  pthread_cond_init(&wp.done_cv, NULL);
  for (int i = 0; i < wp.n; i++) wp.w[i].id = i;
  if (wp.start && wp.start(0, wp.start_arg) != 0)
    return ref__seterr("worker 0 start callback failed");
  int created = 1;
  for (; created < wp.n; created++) {
    int rc = ref__os_thread_create(&wp.w[created].thread, worker_main, &wp.w[created]);
    if (rc != 0) break;
  }
  pthread_mutex_lock(&wp.mu);
  while (wp.started < created - 1) pthread_cond_wait(&wp.done_cv, &wp.mu);
  int err = wp.start_err;
  pthread_mutex_unlock(&wp.mu);
  if (created < wp.n || err) {
    const char *why = created < wp.n ? "could not create %d mark worker threads"
                                     : "a mark worker's start callback failed (%d workers)";
    int want = wp.n;
    wp.n = created;
    ref__workers_shutdown();
    return ref__seterr(why, want);
  }
  return 0;
}

void ref__workers_shutdown(void) {
  if (!wp.w) return;
  pthread_mutex_lock(&wp.mu);
  wp.quit = true;
  pthread_cond_broadcast(&wp.start_cv);
  pthread_mutex_unlock(&wp.mu);
  for (int i = 1; i < wp.n; i++) pthread_join(wp.w[i].thread, NULL);
  for (int i = 0; i < wp.n; i++) ref__gcw_dispose(&wp.w[i].gcw);
  pthread_mutex_destroy(&wp.mu);
  pthread_cond_destroy(&wp.start_cv);
  pthread_cond_destroy(&wp.done_cv);
  free(wp.w);
  memset(&wp, 0, sizeof wp);
}
