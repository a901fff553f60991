/*
 * sched.c: the scheduler of one M. A run queue, park/ready, yield, a timer
 * heap for sleep, goroutine entry and exit, systemstack, and ref_run, the
 * "run until every goroutine is parked or dead" step the workloads use.
 *
 * A goroutine that gives up the thread switches directly to the next
 * runnable one; only when none is runnable does control return to the
 * scheduler stack. While timers are pending, every REF_TIMER_CHECK_EVERY-th
 * switch fires the expired ones first (Go checks timers in every schedule()),
 * so a sleeper is made runnable within that many switches of its deadline
 * whatever the run queue holds, and then runs after the Gs queued before it.
 */
#include "g.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#if REF_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if REF_TSAN
#include <sanitizer/tsan_interface.h>
#endif

_Thread_local ref__m *ref__mcur;

static ref__m m0;

static struct {
  size_t nwaiting, nsleeping, created;
  unsigned tick;
} ss;

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

static int64_t timers_fire(ref__m *m);

/* The running G (or a dying one) gives up the thread: to the next runnable
 * G, or to the scheduler stack. Returns when g runs again. */
static void switch_away(ref__m *m, ref_g *g, bool dying) {
  if (m->ntimers > 0 && ++ss.tick % REF_TIMER_CHECK_EVERY == 0) (void)timers_fire(m);
  ref_g *next = ref__gq_pop(&m->runq);
  if (next == g) { /* yielded with nobody else runnable */
    g->status = REF_G_RUNNING;
    return;
  }
  if (next) {
    next->status = REF_G_RUNNING;
    ref__reuse_forget(next);
    m->curg = next;
    ctx_switch(&g->sp, next->sp, next->stack.lo, next->stack.hi, next->tsan_fiber, dying);
  } else {
    m->curg = NULL;
    ctx_switch(&g->sp, m->g0_sp, m->g0_lo, m->g0_hi, m->g0_tsan_fiber, dying);
  }
}

/* Runs g from the scheduler stack until control comes back to it. */
static void run_from_g0(ref__m *m, ref_g *g) {
  g->status = REF_G_RUNNING;
  ref__reuse_forget(g);
  m->curg = g;
  ctx_switch(&m->g0_sp, g->sp, g->stack.lo, g->stack.hi, g->tsan_fiber, false);
}

/* ---------------------------------------------------------------------------
 * Goroutine entry and exit
 * ------------------------------------------------------------------------- */

static ref_noreturn void goexit(ref__m *m, ref_g *g) {
  ref_assert(g->frames == NULL);
  g->status = REF_G_DEAD;
  ref__g_release(g); /* reusable once we have switched off its stack */
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
  ref__m *m = ref__m_get();
  g->started = true;
  g->fn(g->arg);
  goexit(m, g);
}

ref_g *ref_go(ref_gofn fn, void *arg) {
  ref__m *m = ref__m_get();
  ref_assert(m != NULL);
  ref_g *g = ref__g_alloc();
  if (!g) return NULL;
  g->fn = fn;
  g->arg = arg;
#if REF_TSAN
  if (!g->tsan_fiber) g->tsan_fiber = __tsan_create_fiber(0);
#endif
  ref__context_init(g, (void (*)(ref_g *))goentry);
  g->status = REF_G_RUNNABLE;
  ref__gq_push(&m->runq, g);
  ss.created++;
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

void ref__park(void) {
  ref__m *m = ref__m_get();
  ref_g *g = curg_or_throw(m, "blocking channel operation");
  g->status = REF_G_WAITING;
  ss.nwaiting++;
  switch_away(m, g, false);
}

void ref__ready(ref_g *g) {
  ref_assert_internal(g->status == REF_G_WAITING);
  ss.nwaiting--;
  g->status = REF_G_RUNNABLE;
  ref__reuse_forget(g); /* its waker may have written into its frames (g.h) */
  ref__gq_push(&ref__m_get()->runq, g);
}

void ref_yield(void) {
  ref__m *m = ref__m_get();
  ref_g *g = curg_or_throw(m, "ref_yield");
  g->status = REF_G_RUNNABLE;
  ref__gq_push(&m->runq, g);
  switch_away(m, g, false);
}

/* ---------------------------------------------------------------------------
 * Timers: a binary min-heap of sleeping Gs on `when`
 * ------------------------------------------------------------------------- */

static void timer_swap(ref__m *m, size_t i, size_t j) {
  ref_g *t = m->timers[i];
  m->timers[i] = m->timers[j];
  m->timers[j] = t;
  m->timers[i]->timer_index = (uint32_t)i;
  m->timers[j]->timer_index = (uint32_t)j;
}

static void timer_push(ref__m *m, ref_g *g) {
  if (m->ntimers == m->timers_cap && !REF_GROW(m->timers, m->timers_cap, 64))
    ref__throw("out of memory growing the timer heap past %zu", m->timers_cap);
  size_t i = m->ntimers++;
  m->timers[i] = g;
  g->timer_index = (uint32_t)i;
  while (i > 0 && m->timers[(i - 1) / 2]->when > m->timers[i]->when) {
    timer_swap(m, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static ref_g *timer_pop(ref__m *m) {
  ref_g *top = m->timers[0];
  m->ntimers--;
  if (m->ntimers > 0) {
    timer_swap(m, 0, m->ntimers);
    for (size_t i = 0;;) {
      size_t l = 2 * i + 1, r = l + 1, min = i;
      if (l < m->ntimers && m->timers[l]->when < m->timers[min]->when) min = l;
      if (r < m->ntimers && m->timers[r]->when < m->timers[min]->when) min = r;
      if (min == i) break;
      timer_swap(m, i, min);
      i = min;
    }
  }
  return top;
}

void ref_sleep(int64_t ns) {
  ref__m *m = ref__m_get();
  ref_g *g = curg_or_throw(m, "ref_sleep");
  if (ns <= 0) {
    ref_yield();
    return;
  }
  int64_t now = (int64_t)ref__nanotime();
  g->when = ns > INT64_MAX - now ? INT64_MAX : now + ns;
  g->status = REF_G_SLEEPING;
  ss.nsleeping++;
  timer_push(m, g);
  switch_away(m, g, false);
}

/* Makes every due sleeper runnable; returns ns until the next one (0 if
 * some fired, -1 if none left). */
static int64_t timers_fire(ref__m *m) {
  int64_t now = (int64_t)ref__nanotime();
  bool fired = false;
  while (m->ntimers > 0 && m->timers[0]->when <= now) {
    ref_g *g = timer_pop(m);
    ss.nsleeping--;
    g->status = REF_G_RUNNABLE;
    ref__gq_push(&m->runq, g);
    fired = true;
  }
  if (fired) return 0;
  return m->ntimers ? m->timers[0]->when - now : -1;
}

/* ---------------------------------------------------------------------------
 * The scheduler loop
 * ------------------------------------------------------------------------- */

size_t ref_run(void) {
  ref__m *m = ref__m_get();
  ref_assert(m != NULL);
  if (m->curg) ref__throw("ref_run called from goroutine %llu", (unsigned long long)m->curg->id);
  for (;;) {
    ref_g *g = ref__gq_pop(&m->runq);
    if (g) {
      run_from_g0(m, g);
      continue;
    }
    int64_t wait = timers_fire(m);
    if (wait < 0) break;
    if (wait > 0) {
      struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
      nanosleep(&ts, NULL);
    }
  }
  return ss.nwaiting;
}

void ref_sched_stats_get(ref_sched_stats *st) {
  ref__m *m = ref__m_get();
  size_t dead = 0;
  for (size_t i = 0; i < ref__allg.len; i++) dead += ref__allg.g[i]->status == REF_G_DEAD;
  st->runnable = m ? m->runq.len : 0;
  st->waiting = ss.nwaiting;
  st->sleeping = ss.nsleeping;
  st->dead_cached = dead;
  st->total_created = ss.created;
  st->stacks = ref__allg.len;
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

int ref__sched_init(const ref_config *cfg) {
  memset(&m0, 0, sizeof m0);
  memset(&ss, 0, sizeof ss);
  m0.rand = cfg->seed ? cfg->seed : 1;
  g0_bounds(&m0);
#if REF_TSAN
  m0.g0_tsan_fiber = __tsan_get_current_fiber();
#endif
  ref__mcur = &m0;
  return 0;
}

void ref__sched_shutdown(void) {
  ref__m *m = ref__m_get();
  if (!m) return;
  ref_assert(m->curg == NULL);
#if REF_TSAN
  for (size_t i = 0; i < ref__allg.len; i++)
    if (ref__allg.g[i]->tsan_fiber) __tsan_destroy_fiber(ref__allg.g[i]->tsan_fiber);
#endif
  free(m->timers);
  memset(m, 0, sizeof *m);
  ref__mcur = NULL;
}

uint64_t ref__m_rand(void) { return ref__rand64(&ref__m_get()->rand); }
