/*
 * sched.c: the scheduler. `mutators` Ms, each with its P's local run queue;
 * a global queue and a timer heap under the scheduler lock; stealing; idle
 * Ms asleep until work is readied; the stop-the-world handshake; park,
 * ready, yield, sleep, goroutine entry and exit, systemstack, and ref_run,
 * the "run until every goroutine is parked or dead" step the workloads use.
 *
 * A goroutine that gives up its M switches directly to the next G of its
 * P's queue; only when that is empty (or a lock is to be released first,
 * or the world is stopping) does control return to the M's scheduler stack,
 * whose loop looks further: the global queue, the timers, other Ps' queues
 * (taking half, as Go's runqsteal), and then sleeps. While timers are
 * pending, every REF_TIMER_CHECK_EVERY-th switch of an M fires the expired
 * ones first (Go checks timers in every schedule()), so a sleeper is made
 * runnable within that many switches of its deadline whatever the run
 * queues hold; every GLOBAL_CHECK_EVERY-th schedule takes from the global
 * queue first, so that two goroutines handing an M back and forth cannot
 * starve what overflowed there (Go's 61).
 *
 * The Ms other than M0 are started by ref_init and run goroutines only
 * while M0 is inside ref_run: outside it the world is stopped by
 * construction. ref_run ends when every M has gone idle with the queues
 * and the timer heap empty; the last M to go idle sees that.
 *
 * Lock order: a channel's lock, then the scheduler lock (sched.lock), then
 * the timer heap's, then g.c's and heap.c's. The scheduler lock is a mutex with condition
 * variables: idle Ms, a stop's requester and its stopped Ms sleep on them.
 */
#include "g.h"
#include "os.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if REF_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if REF_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define GLOBAL_CHECK_EVERY 61

_Thread_local ref__m *ref__mcur;
int ref__stop_requested; /* ref.h's ref_poll reads it; written under sched.lock */
bool ref__debug_stop_no_wait; /* tests only (g.h): a broken stop, for the test that catches it */
_Atomic long ref__debug_idle_delay_ns; /* tests only (g.h) */

static ref__m m0;

static struct {
  pthread_mutex_t lock;
  int nm;
  ref__m *ms[REF_MAX_MUTATORS];
  /* Under lock: */
  ref__gqueue runq;          /* the global queue */
  ref__m *timer_sleeper;     /* the idle M sleeping until the next timer, if any */
  /* The timer heap, under its own spinlock (taken after lock, if both): a
   * sleeper parks with it held and it is released after the switch, which
   * a mutex would not allow (ThreadSanitizer tracks a mutex's owner per
   * fiber, and so should a reader). */
  ref__spinlock tlock;
  ref_g **timers;            /* min-heap on when */
  size_t ntimers, timers_cap;
  int nrunning;              /* Ms in their loop, neither idle nor stopped */
  int nstopped;              /* Ms stopped for the stop under way */
  bool active;               /* M0 is inside ref_run */
  bool done;                 /* ref_run's world went idle */
  bool quit;                 /* shutdown: Ms exit */
  bool stopping;             /* a stop-the-world holds or is being acquired */
  int nasync;                /* goroutines the stop under way stopped by signal */
  uint64_t stop_gen;         /* moves at every restart */
  pthread_cond_t stopped_cv; /* the requester waits for nrunning == 1 */
  _Atomic bool xall_stopped; /* hint for the requester's spin: nrunning reached 1 */
  int ncpus;                 /* online CPUs: the requester spins only if they suffice */
  pthread_cond_t restart_cv; /* stopped Ms wait for stop_gen to move */
  pthread_cond_t started_cv; /* ref_init waits for the Ms' start callbacks */
  int nstarted, start_err;
  /* Lock-free hints, read to skip taking the lock: */
  _Atomic size_t xglobal_len, xntimers;
  _Atomic int xnidle, xnspinning;
  /* Counts: */
  _Atomic size_t xnwaiting, xnsleeping, xcreated;
} sched;

int ref__nm(void) { return sched.nm; }
ref__m *ref__m_at(int i) { return sched.ms[i]; }

static void lock(void) { pthread_mutex_lock(&sched.lock); }
static void unlock(void) { pthread_mutex_unlock(&sched.lock); }

/* The absolute time ns from now on clk, for pthread_cond_timedwait (whose
 * condition variable waits on clk). */
static struct timespec deadline_in(clockid_t clk, uint64_t ns) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  uint64_t sum = (uint64_t)ts.tv_nsec + ns % 1000000000u;
  ts.tv_sec += (time_t)(ns / 1000000000u + sum / 1000000000u);
  ts.tv_nsec = (long)(sum % 1000000000u);
  return ts;
}

static bool stop_requested(void) {
  return __atomic_load_n(&ref__stop_requested, __ATOMIC_RELAXED) != 0;
}

/* ---------------------------------------------------------------------------
 * Local run queues (Go's runqput / runqget / runqgrab)
 * ------------------------------------------------------------------------- */

static void global_put_batch(ref_g **gs, uint32_t n);

static inline uint32_t runq_len(ref__runq *q) {
  uint32_t h = atomic_load_explicit(&q->xhead, memory_order_acquire);
  uint32_t t = atomic_load_explicit(&q->xtail, memory_order_acquire);
  return t - h;
}

/* Moves half of a full local queue, and g, to the global queue. False when
 * a stealer emptied part of it meanwhile: retry the fast path. */
static bool runq_put_slow(ref__runq *q, ref_g *g, uint32_t h, uint32_t t) {
  ref_g *batch[REF_RUNQ_SIZE / 2 + 1];
  uint32_t n = (t - h) / 2;
  if (n != REF_RUNQ_SIZE / 2) return false;
  for (uint32_t i = 0; i < n; i++)
    batch[i] = atomic_load_explicit(&q->ring[(h + i) % REF_RUNQ_SIZE], memory_order_relaxed);
  if (!atomic_compare_exchange_strong_explicit(&q->xhead, &h, h + n, memory_order_release,
                                               memory_order_relaxed))
    return false;
  batch[n] = g;
  global_put_batch(batch, n + 1);
  return true;
}

/* Owner only. */
static void runq_put(ref__m *m, ref_g *g) {
  ref__runq *q = &m->runq;
  for (;;) {
    uint32_t h = atomic_load_explicit(&q->xhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->xtail, memory_order_relaxed);
    if (t - h < REF_RUNQ_SIZE) {
      atomic_store_explicit(&q->ring[t % REF_RUNQ_SIZE], g, memory_order_relaxed);
      atomic_store_explicit(&q->xtail, t + 1, memory_order_release);
      return;
    }
    if (runq_put_slow(q, g, h, t)) return;
  }
}

/* Owner only. */
static ref_g *runq_get(ref__m *m) {
  ref__runq *q = &m->runq;
  for (;;) {
    uint32_t h = atomic_load_explicit(&q->xhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->xtail, memory_order_relaxed);
    if (t == h) return NULL;
    ref_g *g = atomic_load_explicit(&q->ring[h % REF_RUNQ_SIZE], memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&q->xhead, &h, h + 1, memory_order_release,
                                              memory_order_relaxed))
      return g;
  }
}

/* Takes half of victim's queue into m's (which is empty); returns one of
 * them to run, or NULL. */
static ref_g *runq_steal(ref__m *m, ref__m *victim) {
  ref__runq *q = &victim->runq;
  ref_g *batch[REF_RUNQ_SIZE / 2];
  uint32_t n;
  for (;;) {
    uint32_t h = atomic_load_explicit(&q->xhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->xtail, memory_order_acquire);
    n = t - h;
    n -= n / 2;
    if (n == 0) return NULL;
    if (n > REF_RUNQ_SIZE / 2) continue; /* read h and t across a change: again */
    for (uint32_t i = 0; i < n; i++)
      batch[i] = atomic_load_explicit(&q->ring[(h + i) % REF_RUNQ_SIZE], memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&q->xhead, &h, h + n, memory_order_release,
                                              memory_order_relaxed))
      break;
  }
  for (uint32_t i = 1; i < n; i++) runq_put(m, batch[i]);
  return batch[0];
}

/* ---------------------------------------------------------------------------
 * The global queue, waking idle Ms
 * ------------------------------------------------------------------------- */

static void wake_m_locked(ref__m *m) {
  m->idle = false;
  atomic_fetch_sub_explicit(&sched.xnidle, 1, memory_order_relaxed);
  sched.nrunning++;
  if (sched.timer_sleeper == m) sched.timer_sleeper = NULL;
  pthread_cond_signal(&m->wake);
}

/* Wakes one idle M to look for work, unless one is already looking or the
 * world is stopping or not running (Go's wakep). Under the lock. */
static void wakep_locked(void) {
  if (!sched.active || sched.stopping || atomic_load(&sched.xnspinning) > 0) return;
  for (int i = 0; i < sched.nm; i++) {
    ref__m *m = sched.ms[i];
    if (!m->idle) continue;
    m->spinning = true;
    atomic_fetch_add_explicit(&sched.xnspinning, 1, memory_order_relaxed);
    wake_m_locked(m);
    return;
  }
}

/* A store-load fence (wakep, idle_locked). gcc's ThreadSanitizer does not
 * take atomic_thread_fence; a seq_cst read-modify-write of a word of the
 * thread's own orders the same on the hardware. */
static inline void fence_store_load(void) {
#if REF_TSAN
  static _Thread_local _Atomic int word;
  atomic_fetch_add_explicit(&word, 0, memory_order_seq_cst);
#else
  atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* Whether a G waits in the global queue or in any P's local queue (read
 * lock-free). Under the lock. */
static bool runnable_anywhere_locked(void) {
  if (sched.runq.len > 0) return true;
  for (int i = 0; i < sched.nm; i++)
    if (runq_len(&sched.ms[i]->runq) > 0) return true;
  return false;
}

/* Called after making work runnable: a fence and one load when no M is
 * idle. The fence orders the queue store before the load of xnidle, as
 * idle_locked's orders an M's going idle before its last look at the
 * queues: of the readier and the M going idle, one sees the other. */
static inline void wakep(void) {
  fence_store_load();
  if (ref_likely(atomic_load_explicit(&sched.xnidle, memory_order_relaxed) == 0)) return;
  if (atomic_load_explicit(&sched.xnspinning, memory_order_relaxed) > 0) return;
  lock();
  wakep_locked();
  unlock();
}

static void global_put_batch(ref_g **gs, uint32_t n) {
  lock();
  for (uint32_t i = 0; i < n; i++) ref__gq_push(&sched.runq, gs[i]);
  atomic_store_explicit(&sched.xglobal_len, sched.runq.len, memory_order_relaxed);
  wakep_locked();
  unlock();
}

static ref_g *global_get_locked(void) {
  ref_g *g = ref__gq_pop(&sched.runq);
  atomic_store_explicit(&sched.xglobal_len, sched.runq.len, memory_order_relaxed);
  return g;
}

static ref_g *global_get(void) {
  if (atomic_load_explicit(&sched.xglobal_len, memory_order_relaxed) == 0) return NULL;
  lock();
  ref_g *g = global_get_locked();
  unlock();
  return g;
}

/* Makes g runnable on m's P (and lets an idle M steal it). */
static void make_runnable(ref__m *m, ref_g *g) {
  ref__g_setstatus(g, REF_G_RUNNABLE);
  runq_put(m, g);
  wakep();
}

/* ---------------------------------------------------------------------------
 * Switching, with the sanitizers' fiber annotations
 * ------------------------------------------------------------------------- */

/* Saves the current context in *save and resumes the context at to_sp, whose
 * stack is [to_lo, to_hi). dying: the current context never resumes. */
static inline void ctx_switch(void **save, void *to_sp, uintptr_t to_lo, uintptr_t to_hi,
                              void *to_fiber, bool dying) {
#if REF_ASAN
  void *fake = NULL;
  __sanitizer_start_switch_fiber(dying ? NULL : &fake, (void *)to_lo, to_hi - to_lo);
#else
  (void)to_lo, (void)to_hi, (void)dying;
#endif
#if REF_TSAN
  __tsan_switch_to_fiber(to_fiber, 0);
#else
  (void)to_fiber;
#endif
  ref__switch(save, to_sp);
#if REF_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* Runs what the context that switched away left to do (g.h). */
static inline void after_switch(ref__m *m) {
  ref_g *prev = m->prevg;
  if (prev) {
    m->prevg = NULL;
    atomic_store_explicit(&prev->xoncpu, 0, memory_order_release); /* its context is saved */
  }
  ref__after_fn fn = m->after;
  if (fn) {
    m->after = NULL;
    fn(m, m->after_arg);
  }
}

static void timers_check(ref__m *m);

/* The next G of m's P for a G that gives m up, or NULL (go to g0): none
 * while the world is stopping. Every REF_TIMER_CHECK_EVERY-th call fires
 * due timers first, unless m->after is set (it may be the scheduler lock's
 * release: ref_sleep). */
static ref_g *next_local(ref__m *m) {
  if (stop_requested()) return NULL;
  if (!m->after && atomic_load_explicit(&sched.xntimers, memory_order_relaxed) > 0 &&
      ++m->tick % REF_TIMER_CHECK_EVERY == 0)
    timers_check(m);
  return runq_get(m);
}

/* The running G (or a dying one) gives up m: to next, or with next NULL to
 * the scheduler stack. m->after, if set, runs once g's context is saved.
 * Returns when g runs again, perhaps on another M. */
static void switch_to(ref__m *m, ref_g *g, ref_g *next, bool dying) {
  m->prevg = g;
  if (next) {
    ref__cgc_switch_in(next);
    ref__g_setstatus(next, REF_G_RUNNING);
    ref__reuse_forget(next);
    next->m = m;
    m->curg = next;
    atomic_store_explicit(&m->xcurid, next->id, memory_order_relaxed);
    ctx_switch(&g->sp, next->sp, next->stack.lo, next->stack.hi, next->tsan_fiber, dying);
  } else {
    m->curg = NULL;
    atomic_store_explicit(&m->xcurid, 0, memory_order_relaxed);
    ctx_switch(&g->sp, m->g0_sp, m->g0_lo, m->g0_hi, m->g0_tsan_fiber, dying);
  }
  after_switch(g->m);
}

static void switch_away(ref__m *m, ref_g *g, bool dying) {
  switch_to(m, g, next_local(m), dying);
}

/* Runs g from the scheduler stack until control comes back to it. */
static void run_from_g0(ref__m *m, ref_g *g) {
  ref__cgc_switch_in(g);
  ref__g_setstatus(g, REF_G_RUNNING);
  ref__reuse_forget(g);
  g->m = m;
  m->curg = g;
  atomic_store_explicit(&m->xcurid, g->id, memory_order_relaxed);
  ctx_switch(&m->g0_sp, g->sp, g->stack.lo, g->stack.hi, g->tsan_fiber, false);
  after_switch(m);
}

/* ---------------------------------------------------------------------------
 * Goroutine entry and exit
 * ------------------------------------------------------------------------- */

/* After a dead G's last switch: its stack is free for reuse. */
static void release_dead(ref__m *m, void *arg) {
  (void)m;
  ref__g_release(arg);
}

static ref_noreturn void goexit(ref_g *g) {
  ref_assert(g->frames == NULL);
  ref__m *m = g->m;
  ref__g_setstatus(g, REF_G_DEAD);
  ref__cgc_g_exit(g);
  m->after = release_dead;
  m->after_arg = g;
  switch_away(m, g, true);
  ref__throw("dead goroutine %llu resumed", (unsigned long long)g->id);
}

/* First code on a new G's stack (called by ref__trampoline). The start
 * argument stops being a root here: from now on fn keeps it alive, and no
 * safepoint lies between this store and fn's own frame record. */
static ref_noreturn void goentry(ref_g *g) {
#if REF_ASAN
  __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
  after_switch(g->m);
  g->started = true;
  atomic_signal_fence(memory_order_seq_cst);
  g->in_runtime = 0; /* fn's code: preempt=async may stop it anywhere */
  atomic_signal_fence(memory_order_seq_cst);
  g->fn(g->arg);
  g->in_runtime = 1;
  atomic_signal_fence(memory_order_seq_cst);
  goexit(g);
}

ref_g *ref_go(ref_gofn fn, void *arg) {
  REF_RUNTIME_CALL();
  ref__m *m = ref__m_get();
  ref_assert(m != NULL);
  ref_g *g = ref__g_alloc();
  if (!g) return NULL;
  bool marking = ref__cgc_g_create_begin(g, arg);
  g->fn = fn;
  g->arg = arg;
  g->in_runtime = 1; /* until goentry calls fn */
#if REF_TSAN
  if (!g->tsan_fiber) g->tsan_fiber = __tsan_create_fiber(0);
#endif
  ref__context_init(g, (void (*)(ref_g *))goentry);
  if (marking) ref__cgc_g_create_end(g);
  atomic_fetch_add_explicit(&sched.xcreated, 1, memory_order_relaxed);
  make_runnable(m, g);
  return g;
}

ref_g *ref_curg(void) {
  ref__m *m = ref__m_get();
  return m ? m->curg : NULL;
}

/* ---------------------------------------------------------------------------
 * Park, ready, yield
 * ------------------------------------------------------------------------- */

static ref_g *curg_or_throw(ref__m *m, const char *what) {
  if (ref_unlikely(!m || !m->curg))
    ref__throw("%s called on the scheduler stack (it would block)", what);
  return m->curg;
}

void ref__park(ref__after_fn after, void *arg) {
  ref__m *m = ref__m_get();
  ref_g *g = curg_or_throw(m, "blocking channel operation");
  ref__g_setstatus(g, REF_G_WAITING);
  atomic_fetch_add_explicit(&sched.xnwaiting, 1, memory_order_relaxed);
  m->after = after;
  m->after_arg = arg;
  switch_away(m, g, false);
}

void ref__ready(ref_g *g) {
  ref_assert_internal(g->status == REF_G_WAITING);
  atomic_fetch_sub_explicit(&sched.xnwaiting, 1, memory_order_relaxed);
  ref__reuse_forget(g); /* its waker may have written into its frames (g.h) */
  make_runnable(ref__m_get(), g);
}

/* After a yielder's switch: it goes to the back of the queue. */
static void requeue_yielded(ref__m *m, void *arg) { make_runnable(m, arg); }

bool ref__sched_p_empty(void) {
  ref__m *m = ref__m_get();
  return (!m || runq_len(&m->runq) == 0) &&
         atomic_load_explicit(&sched.xglobal_len, memory_order_relaxed) == 0;
}

static ref_g *global_get(void);

void ref_yield(void) {
  REF_RUNTIME_CALL();
  ref__m *m = ref__m_get();
  ref_g *g = curg_or_throw(m, "ref_yield");
  ref_poll();
  ref_g *next = next_local(m);
  if (!next && !stop_requested()) next = global_get();
  if (!next && !stop_requested()) return; /* nobody else is runnable here */
  ref__g_setstatus(g, REF_G_RUNNABLE);
  m->after = requeue_yielded;
  m->after_arg = g;
  switch_to(m, g, next, false);
}

/* ---------------------------------------------------------------------------
 * Timers: a binary min-heap of sleeping Gs on `when`, for every P
 * ------------------------------------------------------------------------- */

static void timer_swap(size_t i, size_t j) {
  ref_g *t = sched.timers[i];
  sched.timers[i] = sched.timers[j];
  sched.timers[j] = t;
  sched.timers[i]->timer_index = (uint32_t)i;
  sched.timers[j]->timer_index = (uint32_t)j;
}

/* Under tlock; returns whether g has the earliest deadline now. */
static bool timer_push_locked(ref_g *g) {
  if (sched.ntimers == sched.timers_cap && !REF_GROW(sched.timers, sched.timers_cap, 64))
    ref__throw("out of memory growing the timer heap past %zu", sched.timers_cap);
  size_t i = sched.ntimers++;
  sched.timers[i] = g;
  g->timer_index = (uint32_t)i;
  while (i > 0 && sched.timers[(i - 1) / 2]->when > sched.timers[i]->when) {
    timer_swap(i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  atomic_store_explicit(&sched.xntimers, sched.ntimers, memory_order_relaxed);
  return i == 0;
}

static ref_g *timer_pop_locked(void) {
  ref_g *top = sched.timers[0];
  sched.ntimers--;
  if (sched.ntimers > 0) {
    timer_swap(0, sched.ntimers);
    for (size_t i = 0;;) {
      size_t l = 2 * i + 1, r = l + 1, min = i;
      if (l < sched.ntimers && sched.timers[l]->when < sched.timers[min]->when) min = l;
      if (r < sched.ntimers && sched.timers[r]->when < sched.timers[min]->when) min = r;
      if (min == i) break;
      timer_swap(i, min);
      i = min;
    }
  }
  atomic_store_explicit(&sched.xntimers, sched.ntimers, memory_order_relaxed);
  return top;
}

/* After a sleeper's switch: its timer is in the heap, under tlock taken
 * before the switch. A new earliest deadline: the M sleeping until the old
 * one recomputes. */
static void unlock_after_sleep(ref__m *m, void *earliest) {
  (void)m;
  ref__spin_unlock(&sched.tlock);
  if (!earliest) return;
  lock();
  if (sched.timer_sleeper) pthread_cond_signal(&sched.timer_sleeper->wake);
  unlock();
}

void ref_sleep(int64_t ns) {
  REF_RUNTIME_CALL();
  ref__m *m = ref__m_get();
  ref_g *g = curg_or_throw(m, "ref_sleep");
  if (ns <= 0) {
    ref_yield();
    return;
  }
  ref_poll();
  int64_t now = (int64_t)ref__nanotime();
  g->when = ns > INT64_MAX - now ? INT64_MAX : now + ns;
  ref__spin_lock(&sched.tlock);
  ref__g_setstatus(g, REF_G_SLEEPING);
  atomic_fetch_add_explicit(&sched.xnsleeping, 1, memory_order_relaxed);
  bool earliest = timer_push_locked(g);
  m->after = unlock_after_sleep;
  m->after_arg = earliest ? g : NULL;
  switch_away(m, g, false);
}

/* Pops every due sleeper into fired (at most max); returns how many. */
static size_t timers_due(ref_g **fired, size_t max) {
  if (atomic_load_explicit(&sched.xntimers, memory_order_relaxed) == 0) return 0;
  int64_t now = (int64_t)ref__nanotime();
  size_t n = 0;
  ref__spin_lock(&sched.tlock);
  while (n < max && sched.ntimers > 0 && sched.timers[0]->when <= now) fired[n++] = timer_pop_locked();
  ref__spin_unlock(&sched.tlock);
  return n;
}

/* ns until the earliest deadline, or -1 when no timer is pending. */
static int64_t timers_next(void) {
  int64_t wait = -1;
  ref__spin_lock(&sched.tlock);
  if (sched.ntimers) {
    wait = sched.timers[0]->when - (int64_t)ref__nanotime();
    if (wait < 0) wait = 0;
  }
  ref__spin_unlock(&sched.tlock);
  return wait;
}

#define TIMER_BATCH 64

static void timers_run(ref__m *m, ref_g **fired, size_t n) {
  for (size_t i = 0; i < n; i++) {
    atomic_fetch_sub_explicit(&sched.xnsleeping, 1, memory_order_relaxed);
    make_runnable(m, fired[i]);
  }
}

/* Makes due sleepers runnable on m's P. */
static void timers_check(ref__m *m) {
  ref_g *fired[TIMER_BATCH];
  timers_run(m, fired, timers_due(fired, TIMER_BATCH));
}

/* ---------------------------------------------------------------------------
 * Stop the world
 * ------------------------------------------------------------------------- */

/* The last M the stop waited for has stopped or gone idle: wakes the
 * requester, spinning or asleep. Under the lock. */
static void all_stopped_locked(void) {
  atomic_store_explicit(&sched.xall_stopped, true, memory_order_release);
  pthread_cond_signal(&sched.stopped_cv);
}

/* m stops: counted out of nrunning until the restart, which counts it in
 * again (it, not m: m may not run before some other M goes idle and
 * checks nrunning). Under the lock. */
static void stop_self_locked(ref__m *m) {
  sched.nrunning--;
  sched.nstopped++;
  m->stopped = true;
  if (sched.nrunning == 1) all_stopped_locked();
  uint64_t gen = sched.stop_gen;
  while (sched.stop_gen == gen) pthread_cond_wait(&sched.restart_cv, &sched.lock);
  m->stopped = false;
}

static void stop_on_g0(void *arg) {
  (void)arg;
  ref__m *m = ref__m_get();
  lock();
  if (sched.stopping) stop_self_locked(m);
  unlock();
}

void ref__poll_slow(void) {
  REF_RUNTIME_CALL();
  ref__m *m = ref__m_get();
  if (!m || !m->curg || !sched.active) return;
  ref__systemstack(stop_on_g0, NULL);
}

ref__m *_Atomic ref__stw_owner;

/* preempt=async: signals every M that still runs a goroutine. */
static void preempt_running_locked(const ref__m *self) {
  for (int i = 0; i < sched.nm; i++) {
    ref__m *o = sched.ms[i];
    if (o != self && !o->idle && !o->stopped) ref__preempt_m(o);
  }
}

/* The stop has waited WATCHDOG_NS: names, once, what holds it. */
static void watchdog_locked(const ref__m *self, uint64_t waited) {
  for (int i = 0; i < sched.nm; i++) {
    ref__m *o = sched.ms[i];
    if (o == self || o->idle || o->stopped) continue;
    uint64_t gid = atomic_load_explicit(&o->xcurid, memory_order_relaxed);
    fprintf(stderr,
            "stackscan: stop the world has waited %.1f s for mutator %d (P%d), running goroutine "
            "%llu: a loop without a safepoint? (ref_poll, or preempt=async, stops it)\n",
            (double)waited / 1e9, o->id, o->id, (unsigned long long)gid);
  }
}

#define WATCHDOG_NS 1000000000ull
#define RESIGNAL_NS 100000ull /* Go's stopTheWorld preempts all again every 100 us */

/* Spins, with the lock released, until every other M is stopped or idle or
 * REF_PARK_SPIN_NS have passed, when the Ms still running have a CPU each (else
 * the spin takes the CPU one of them needs). The timed wait alone was
 * bimodal: a stop whose last M arrived before the requester fell asleep took
 * 1-2 us, one after it 15-25 us (GoroutineSpin, 2 mutators, on this project's
 * 2-vCPU EPYC), the condition variable's wake-up. Under the lock. */
static void spin_stopped_locked(void) {
  if (sched.nrunning <= 1 || sched.nrunning > sched.ncpus) return;
  unlock();
  uint64_t until = ref__nanotime() + REF_PARK_SPIN_NS;
  while (!atomic_load_explicit(&sched.xall_stopped, memory_order_acquire) &&
         ref__nanotime() < until)
    for (int i = 0; i < 64; i++) ref_cpu_relax();
  lock();
}

/* Waits, under the lock, until every other M is stopped or idle: spins
 * first, then sleeps; the watchdog speaks once after WATCHDOG_NS. With
 * preempt=async, the Ms still running after the spin (goroutines that did
 * not reach a safepoint within REF_PARK_SPIN_NS) are signalled, spun on again,
 * and signalled again every RESIGNAL_NS. Go signals at once; waiting first
 * spares a goroutine that polls the signal's delivery, which made async's
 * stops of polling spinners 3-10x slower than cooperative's. */
static void wait_stopped_locked(const ref__m *self, uint64_t t0) {
  bool async = ref__cfg.preempt == REF_PREEMPT_ASYNC, warned = false;
  spin_stopped_locked();
  if (async && sched.nrunning > 1) {
    preempt_running_locked(self);
    spin_stopped_locked();
  }
  while (sched.nrunning > 1) {
    struct timespec ts = deadline_in(CLOCK_MONOTONIC, async ? RESIGNAL_NS : WATCHDOG_NS);
    pthread_cond_timedwait(&sched.stopped_cv, &sched.lock, &ts);
    if (sched.nrunning <= 1) break;
    uint64_t waited = ref__nanotime() - t0;
    if (!warned && waited >= WATCHDOG_NS) {
      watchdog_locked(self, waited);
      warned = true;
    }
    if (async) preempt_running_locked(self);
  }
}

void ref__async_stop(ref__m *m, ref_g *g, uintptr_t sp) {
  /* Checked here, where it would happen: a goroutine stopped inside the
   * runtime may hold a lock another M spins on before its own safepoint,
   * and then the stop never completes for a collector to notice. */
  if (ref_unlikely(g->in_runtime))
    ref__throw("goroutine %llu was stopped by a signal inside the runtime (%u calls deep)",
               (unsigned long long)g->id, g->in_runtime);
  /* Never waits for the lock from a signal handler: if the interrupted code
   * holds it (it cannot, outside the runtime), the goroutine stops later. */
  if (pthread_mutex_trylock(&sched.lock) != 0) return;
  if (sched.stopping) {
    void *saved = g->sp;
    g->sp = (void *)sp;
    g->async_stopped = true;
    sched.nasync++;
    stop_self_locked(m);
    g->async_stopped = false;
    g->sp = saved;
  }
  unlock();
}

int ref__stopped_async(void) { return sched.nasync; }

void ref__stop_the_world(uint64_t *ttsp_ns) {
  ref__m *m = ref__m_get();
  lock();
  while (sched.stopping) stop_self_locked(m); /* another requester first */
  sched.stopping = true;
  sched.nasync = 0;
  atomic_store_explicit(&sched.xall_stopped, false, memory_order_relaxed);
  if (!ref__debug_stop_no_wait) __atomic_store_n(&ref__stop_requested, 1, __ATOMIC_RELAXED);
  uint64_t t0 = ref__nanotime();
  if (sched.active && !ref__debug_stop_no_wait) wait_stopped_locked(m, t0);
  *ttsp_ns = sched.active && sched.nm > 1 ? ref__nanotime() - t0 : 0;
  for (int i = 0; REF_ASSERT_LEVEL >= 2 && !ref__debug_stop_no_wait && i < sched.nm; i++) {
    ref__m *o = sched.ms[i];
    if (o != m && !o->idle && !o->stopped)
      ref__throw("stop the world: M%d neither idle nor stopped (nrunning %d)", o->id,
                 sched.nrunning);
  }
  atomic_store_explicit(&ref__stw_owner, m, memory_order_relaxed);
  unlock();
}

void ref__start_the_world(void) {
  lock();
  ref_assert(sched.stopping);
  sched.stopping = false;
  atomic_store_explicit(&ref__stw_owner, NULL, memory_order_relaxed);
  __atomic_store_n(&ref__stop_requested, 0, __ATOMIC_RELAXED);
  sched.stop_gen++;
  sched.nrunning += sched.nstopped;
  sched.nstopped = 0;
  pthread_cond_broadcast(&sched.restart_cv);
  if (sched.timer_sleeper) pthread_cond_signal(&sched.timer_sleeper->wake);
  /* Nobody was woken for a G readied during the stop (wakep_locked): the
   * first idle M looks for it now, in every queue. */
  if (runnable_anywhere_locked()) wakep_locked();
  unlock();
}

/* ---------------------------------------------------------------------------
 * The scheduler loop
 * ------------------------------------------------------------------------- */

/* The next G for m: its own queue (the global one first every
 * GLOBAL_CHECK_EVERY-th time), the global queue, due timers, other Ps. */
static ref_g *find_runnable(ref__m *m) {
  ref_g *g;
  if (++m->tick % GLOBAL_CHECK_EVERY == 0 && (g = global_get())) return g;
  if ((g = runq_get(m))) return g;
  if ((g = global_get())) return g;
  if (atomic_load_explicit(&sched.xntimers, memory_order_relaxed) > 0) {
    timers_check(m);
    if ((g = runq_get(m))) return g;
  }
  if (sched.nm > 1) {
    int start = (int)(ref__rand64(&m->rand) % (uint64_t)sched.nm);
    for (int k = 0; k < sched.nm; k++) {
      ref__m *v = sched.ms[(start + k) % sched.nm];
      if (v != m && (g = runq_steal(m, v))) return g;
    }
  }
  return NULL;
}

static void spinning_done(ref__m *m) {
  if (!m->spinning) return;
  m->spinning = false;
  atomic_fetch_sub_explicit(&sched.xnspinning, 1, memory_order_relaxed);
}

/* m, counted running, found nothing to run: looks once more under the
 * lock (the global queue, due timers), then goes idle. The last M to go
 * idle with no timer pending ends ref_run. */
static void go_idle_locked(ref__m *m) {
  m->idle = true;
  atomic_fetch_add_explicit(&sched.xnidle, 1, memory_order_relaxed);
  sched.nrunning--;
  if (sched.stopping && sched.nrunning == 1) all_stopped_locked();
  bool timers = timers_next() >= 0;
  if (sched.nrunning == 0 && !timers) {
    sched.done = true;
    if (m != &m0 && m0.idle) pthread_cond_signal(&m0.wake);
  }
  if (timers && !sched.timer_sleeper) sched.timer_sleeper = m;
}

/* An idle M sleeps: until woken (wake_m_locked), or, as the timer sleeper,
 * until the next deadline, when it wakes itself. */
static void sleep_locked(ref__m *m) {
  int64_t wait = sched.timer_sleeper == m && !sched.stopping ? timers_next() : -1;
  if (wait < 0) {
    pthread_cond_wait(&m->wake, &sched.lock);
    return;
  }
  if (wait == 0) {
    wake_m_locked(m); /* due: run it */
    return;
  }
  struct timespec ts = deadline_in(CLOCK_REALTIME, (uint64_t)wait);
  pthread_cond_timedwait(&m->wake, &sched.lock, &ts);
}

/* m found nothing to run. Returns true when there is work to look for
 * again (m counted running), false when ref_run's world has gone idle (M0)
 * or the runtime shuts down (the others). Under the lock. */
static bool idle_locked(ref__m *m) {
  if (!m->idle) {
    if (sched.stopping || sched.runq.len > 0) return true; /* the loop stops or takes it */
    ref_g *fired[TIMER_BATCH];
    size_t n = timers_due(fired, TIMER_BATCH);
    if (n > 0) {
      unlock();
      timers_run(m, fired, n);
      lock();
      return true;
    }
    go_idle_locked(m);
    /* Counted idle, m looks at every queue once more, as Go's findRunnable
     * does after it drops its P: a G queued on a busy P after m's last look,
     * by a readier that saw no idle M to wake, would wait until that P's G
     * switches, and a loop that only polls never does. A non-empty local
     * queue has a running owner, so go_idle_locked did not end ref_run.
     * m comes back spinning (Go's findRunnable does the same): the readiers
     * that queued what it found may have seen it spinning and woken nobody,
     * so when it finds work it must wake the next M, as a spinner does.
     * Coming back plain, it ran one G and left the rest of what it stole,
     * or the rest of the queue it stole from, to a thread that never
     * switches (test_mn's test_no_goroutine_stranded, 4 mutators, in CI). */
    fence_store_load();
    if (runnable_anywhere_locked()) {
      wake_m_locked(m);
      m->spinning = true;
      atomic_fetch_add_explicit(&sched.xnspinning, 1, memory_order_relaxed);
      return true;
    }
  }
  for (;;) {
    if (m == &m0 && sched.done) return false;
    if (m != &m0 && sched.quit) return false;
    if (!m->idle) return true;
    sleep_locked(m);
  }
}

/* m's loop on its scheduler stack; returns when idle_locked says so. */
static void schedule(ref__m *m) {
  for (;;) {
    if (stop_requested()) {
      lock();
      if (sched.stopping) stop_self_locked(m);
      unlock();
      continue;
    }
    ref_g *g = find_runnable(m);
    if (g) {
      if (m->spinning) {
        lock();
        spinning_done(m);
        wakep_locked(); /* Go: the last spinner to find work wakes another */
        unlock();
      }
      run_from_g0(m, g);
      continue;
    }
    long delay = atomic_load_explicit(&ref__debug_idle_delay_ns, memory_order_relaxed);
    if (ref_unlikely(delay > 0)) nanosleep(&(struct timespec){0, delay}, NULL);
    lock();
    spinning_done(m);
    bool more = idle_locked(m);
    unlock();
    if (!more) return;
  }
}

size_t ref_run(void) {
  ref__m *m = ref__m_get();
  ref_assert(m != NULL);
  if (m->curg) ref__throw("ref_run called from goroutine %llu", (unsigned long long)m->curg->id);
  if (m != &m0) ref__throw("ref_run called on mutator thread %d, not the ref_init thread", m->id);
  lock();
  sched.active = true;
  sched.done = false;
  sched.nrunning = 1;
  for (int i = 1; i < sched.nm; i++) {
    ref_assert(sched.ms[i]->idle); /* the last ref_run ended with all idle */
    wake_m_locked(sched.ms[i]);
  }
  unlock();
  schedule(m);
  lock();
  sched.active = false;
  if (m0.idle) {
    m0.idle = false;
    atomic_fetch_sub_explicit(&sched.xnidle, 1, memory_order_relaxed);
    if (sched.timer_sleeper == &m0) sched.timer_sleeper = NULL;
  }
  unlock();
  return atomic_load(&sched.xnwaiting);
}

/* Needs the world stopped (or not running): reads every queue and G. */
static void sched_stats(void *arg) {
  ref_sched_stats *st = arg;
  size_t dead = 0, runnable = sched.runq.len;
  for (size_t i = 0; i < ref__allg.len; i++) dead += ref__allg.g[i]->status == REF_G_DEAD;
  for (int i = 0; i < sched.nm; i++) runnable += runq_len(&sched.ms[i]->runq);
  st->runnable = runnable;
  st->waiting = atomic_load(&sched.xnwaiting);
  st->sleeping = atomic_load(&sched.xnsleeping);
  st->dead_cached = dead;
  st->total_created = atomic_load(&sched.xcreated);
  st->stacks = ref__allg.len;
}

static void stopped_call(void *p) {
  void **a = p;
  uint64_t ttsp;
  ref__stop_the_world(&ttsp);
  ((void (*)(void *))a[0])(a[1]);
  ref__start_the_world();
}

void ref__with_world_stopped(void (*fn)(void *), void *arg) {
  if (!ref__m_get() || sched.nm <= 1) { /* one M (or a subsystem alone): nothing runs */
    fn(arg);
    return;
  }
  void *a[2] = {(void *)fn, arg};
  ref__systemstack(stopped_call, a);
}

void ref_sched_stats_get(ref_sched_stats *st) {
  REF_RUNTIME_CALL();
  ref__with_world_stopped(sched_stats, st);
}

/* ---------------------------------------------------------------------------
 * systemstack
 * ------------------------------------------------------------------------- */

typedef struct sys_call {
  void (*fn)(void *);
  void *arg;
  ref_g *g;
} sys_call;

static void sys_tramp(void *p) {
  sys_call *c = p;
#if REF_ASAN
  void *fake = NULL;
  __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
  c->fn(c->arg);
  __sanitizer_start_switch_fiber(&fake, (void *)c->g->stack.lo, c->g->stack.hi - c->g->stack.lo);
  (void)fake;
#else
  c->fn(c->arg);
#endif
}

void ref__systemstack(void (*fn)(void *), void *arg) {
  ref__m *m = ref__m_get();
  if (!m || !m->curg) {
    fn(arg);
    return;
  }
  /* The scheduler context is suspended at g0_sp; the stack below it is free.
   * Stay clear of the red zone and keep 16-byte alignment. */
  uintptr_t sp = ref_align_down((uintptr_t)m->g0_sp - 256, 16);
  sys_call c = {fn, arg, m->curg};
#if REF_ASAN
  void *fake = NULL;
  __sanitizer_start_switch_fiber(&fake, (void *)m->g0_lo, m->g0_hi - m->g0_lo);
#endif
  ref__call_on_stack(&m->curg->sp, (void *)sp, sys_tramp, &c);
#if REF_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* ---------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------- */

static void g0_bounds(ref__m *m) {
  pthread_attr_t attr;
  void *addr = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  m->g0_lo = (uintptr_t)addr;
  m->g0_hi = (uintptr_t)addr + size;
}

static ref_worker_start_fn mstart_fn;
static void *mstart_arg;

static void m_setup(ref__m *m, int id, uint64_t seed) {
  m->id = id;
  m->rand = (seed ? seed : 1) + (uint64_t)id * 0x9E3779B97F4A7C15ull;
  if (!m->rand) m->rand = 1;
  pthread_cond_init(&m->wake, NULL);
}

static void *mthread_main(void *arg) {
  ref__m *m = arg;
  ref__mcur = m;
  g0_bounds(m);
#if REF_TSAN
  m->g0_tsan_fiber = __tsan_get_current_fiber();
#endif
  int rc = ref__g_thread_altstack(&m->altstack);
  if (rc == 0 && mstart_fn) rc = mstart_fn(m->id, mstart_arg);
  lock();
  if (rc != 0 && !sched.start_err) sched.start_err = -1;
  sched.nstarted++;
  pthread_cond_signal(&sched.started_cv);
  m->idle = true;
  atomic_fetch_add_explicit(&sched.xnidle, 1, memory_order_relaxed);
  bool go = rc == 0 && idle_locked(m);
  unlock();
  if (go) schedule(m);
  ref__g_thread_altstack_free(m->altstack);
  return NULL;
}

static void stop_threads(int n) {
  lock();
  sched.quit = true;
  for (int i = 1; i < n; i++) pthread_cond_signal(&sched.ms[i]->wake);
  unlock();
  for (int i = 1; i < n; i++) {
    pthread_join(sched.ms[i]->thread, NULL);
    pthread_cond_destroy(&sched.ms[i]->wake);
    free(sched.ms[i]);
  }
}

int ref__sched_init(const ref_config *cfg) {
  memset(&m0, 0, sizeof m0);
  memset(&sched, 0, sizeof sched);
  pthread_mutex_init(&sched.lock, NULL);
  pthread_condattr_t mono;
  pthread_condattr_init(&mono);
  pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
  pthread_cond_init(&sched.stopped_cv, &mono); /* timed waits: the watchdog, re-signalling */
  pthread_condattr_destroy(&mono);
  pthread_cond_init(&sched.restart_cv, NULL);
  pthread_cond_init(&sched.started_cv, NULL);
  ref__stop_requested = 0;
  long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
  sched.ncpus = ncpus > 0 ? (int)ncpus : 1;
  m_setup(&m0, 0, cfg->seed);
  g0_bounds(&m0);
#if REF_TSAN
  m0.g0_tsan_fiber = __tsan_get_current_fiber();
#endif
  ref__mcur = &m0;
  m0.thread = pthread_self();
  sched.ms[0] = &m0;
  sched.nm = 1;
  mstart_fn = cfg->mutator_start;
  mstart_arg = cfg->mutator_start_arg;
  if (mstart_fn && mstart_fn(0, mstart_arg) != 0) {
    ref__mcur = NULL;
    return ref__seterr("the mutator start callback failed on thread 0");
  }
  int want = cfg->mutators > 0 ? cfg->mutators : 1;
  for (int i = 1; i < want; i++) {
    ref__m *m = calloc(1, sizeof *m);
    if (!m) {
      stop_threads(sched.nm);
      ref__mcur = NULL;
      return ref__seterr("out of memory for mutator thread %d", i);
    }
    m_setup(m, i, cfg->seed);
    if (ref__os_thread_create(&m->thread, mthread_main, m) != 0) {
      pthread_cond_destroy(&m->wake);
      free(m);
      stop_threads(sched.nm);
      ref__mcur = NULL;
      return ref__seterr("cannot start mutator thread %d of %d", i, want);
    }
    sched.ms[sched.nm++] = m;
  }
  lock();
  while (sched.nstarted < sched.nm - 1) pthread_cond_wait(&sched.started_cv, &sched.lock);
  int err = sched.start_err;
  unlock();
  if (err) {
    stop_threads(sched.nm);
    ref__mcur = NULL;
    return ref__seterr("the mutator start callback failed on a mutator thread");
  }
  if (ref__preempt_init(cfg) != 0) {
    stop_threads(sched.nm);
    ref__mcur = NULL;
    return -1;
  }
  return 0;
}

void ref__sched_shutdown(void) {
  ref__m *m = ref__m_get();
  if (!m) return;
  ref_assert(m->curg == NULL);
  ref__preempt_shutdown();
  stop_threads(sched.nm);
#if REF_TSAN
  for (size_t i = 0; i < ref__allg.len; i++)
    if (ref__allg.g[i]->tsan_fiber) __tsan_destroy_fiber(ref__allg.g[i]->tsan_fiber);
#endif
  free(sched.timers);
  pthread_cond_destroy(&m0.wake);
  pthread_cond_destroy(&sched.stopped_cv);
  pthread_cond_destroy(&sched.restart_cv);
  pthread_cond_destroy(&sched.started_cv);
  pthread_mutex_destroy(&sched.lock);
  memset(&m0, 0, sizeof m0);
  memset(&sched, 0, sizeof sched);
  ref__mcur = NULL;
}

uint64_t ref__m_rand(void) { return ref__rand64(&ref__m_get()->rand); }
