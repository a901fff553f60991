/*
 * g.h: goroutines (G), their stacks, the mutator threads (M) and the
 * scheduling contexts they own (P), and the park/ready interface used by
 * channels, select and the collector.
 *
 * Glossary
 *   G      a goroutine: a stack, a saved stack pointer, a status, a frame chain
 *   M      an OS thread running goroutines: ref_config.mutators of them,
 *          M0 being the thread that called ref_init. Each has its own stack
 *          ("g0", the scheduler stack) for the scheduler loop and the
 *          collector.
 *   P      what an M needs to run Go code: a local run queue and an
 *          allocation cache. Each M owns one P for its life (Go hands Ps
 *          between Ms around blocking system calls; nothing here blocks
 *          its thread), so P and M share one struct and one index.
 *   park   the running G gives up the thread until someone readies it
 *   stop   a collection's stop-the-world: every M but the requester's stops
 *          at a safepoint on its g0, its G (if any) with its context saved,
 *          or is idle; with preempt=async an M whose G runs outside the
 *          runtime stops inside the SIGURG handler (preempt.c), its G's
 *          registers copied below the interrupted stack pointer
 *   in runtime  a G inside a public runtime call (REF_RUNTIME_CALL): the
 *          signal never stops it there
 *
 * Switching. A G gives up its M by switching straight to the next runnable
 * G of its P, or to g0. Whatever must happen only once the G's context is
 * saved -- releasing the channel locks it parked under, requeueing a
 * yielder, freeing a dead G -- is left in m->after and run by the context
 * that resumes on the same M (ref__after_switch): until then no other M can
 * see the G. After a switch a G may be on another M: code that switched
 * reads its M from g->m, set by whoever switched it in, never from a value
 * computed before.
 */
#ifndef REF_G_H
#define REF_G_H

#include "internal.h"

#include <pthread.h>

typedef enum ref__gstatus {
  REF_G_RUNNABLE = 1, /* on the run queue */
  REF_G_RUNNING,      /* current on its M (or in a systemstack call: sp saved) */
  REF_G_WAITING,      /* parked on a channel or select */
  REF_G_SLEEPING,     /* parked on the timer heap */
  REF_G_DEAD,         /* exited; G and stack cached for reuse */
} ref__gstatus;

/* Stack bounds. Invariant: a parked G's saved sp lies in [lo, hi). The guard
 * page sits just below lo. */
typedef struct ref__stack {
  uintptr_t lo, hi;
} ref__stack;

typedef struct ref__sudog ref__sudog;

/* One goroutine waiting on one channel (for select: one per case). A plain
 * send or receive uses the G's own, as Go keeps sudogs off the stack: a
 * parked goroutine's stack then holds only its frames. The channel stays
 * reachable through the waiting code's frames or records, which use it after
 * waking; the sudog itself is not a root. */
struct ref__sudog {
  ref_g *g;
  ref__sudog *next, *prev;   /* waitq links */
  ref_chan *c;
  void *elem;                /* value to send / where to receive; may be NULL */
  bool is_select;
  bool success;              /* true: a value moved; false: woken by close */
  int case_index;
};

struct ref_g {
  /* First line (a G is line-aligned): what a stack scan, a replay or a
   * concurrent stack job reads (the pipeline fetches it). Packed at 208
   * bytes, half of the Gs had their status, or their stack's top, on a
   * second line, and the concurrent fields below were on another. */
  void *sp;               /* saved stack pointer while not running */
  ref__stack stack;
  ref_frame *frames;      /* top frame record; chain runs to the entry frame */
  uint16_t status;        /* ref__gstatus */
  bool started;           /* fn/arg are GC roots until the G starts */
  /* Stopped by preempt=async's signal between two instructions (sched.c):
   * sp is then the copy of its registers just below the interrupted stack
   * pointer, and its youngest record is scanned conservatively (ref.h). */
  bool async_stopped;
  /* reuse=clean: set by a complete scan that recorded its result (see
   * scan_reuse.c), cleared by ref__reuse_forget. Invariant: while set, the
   * words of [sp, stack.hi) and the frame chain with its safepoints are
   * those the recording scan read, so replaying the record marks what a
   * rescan would. Why it holds -- every write to a parked stack clears it:
   *  - the G itself writes only while running: the scheduler clears the bit
   *    whenever it switches a G in (switch_away, run_from_g0), and a G that
   *    is running (in ref_gc or an allocation's cycle, on the scheduler
   *    stack) is never recorded, so it cannot be clean when it resumes;
   *  - other goroutines write into a parked G's frames only through a
   *    channel or select: a receive destination (sudog elem) or a select's
   *    sudogs and cases on its stack. Every such write is followed by
   *    ref__ready on the same thread with no safepoint between, and
   *    ref__ready clears the bit;
   *  - a new G (ref_go, also reusing a dead G's stack) is not started: its
   *    start argument is scanned instead, never recorded; the bit is
   *    cleared at ref__g_alloc and ref__g_release (death frees the record);
   *  - frame records and their safepoints change only by the running G;
   *    a conservative frame record's range is the G's own stack;
   *  - a split stack (conservative, parallel/rootjobs, over split_bytes)
   *    is scanned in pieces by several workers: it is not recorded at all;
   *  - a record made under one scan mode is not replayed under the other.
   * An object a record names was marked by the recording cycle and the
   * stack still holds the word, so each replay keeps exactly what a rescan
   * would (false retention by conservative words included). The checkmark
   * verifier reads the real stacks, so it checks every replay.
   * Future: with several mutator threads the bit must be cleared by the
   * thread that switches the G in before the G runs, and a waker must clear
   * it before it publishes the G as runnable; concurrent marking may replay
   * a record only under the same condition it could read the stack (the G
   * stopped), and a record is a snapshot of that stack, as a scan is. */
  uint8_t scan_clean;     /* 0, REF_G_SEEN, or REF_G_CLEAN / REF_G_CLEAN_EXT (record malloc'd) */
  uint32_t allg_index;    /* g == ref__allg.g[allg_index]; the reuse table's index.
                             With scan_clean, on the G's first line, which the
                             scans' pipeline fetches: a replay reads no other */
  /* Concurrent marking (gc_concurrent.c). xoncpu: 1 from just before an M
   * switches the G in until the next context on that M has the G's context
   * saved (after_switch); a worker reads a G's stack only while it holds
   * xscanlock and has seen xoncpu 0 (a Dekker pair with the switch-in, which
   * waits for the lock). xscanned: the last concurrent cycle (its epoch)
   * that scanned this stack; written under xscanlock, or by ref_go before
   * the G is published. */
  _Atomic uint32_t xoncpu, xscanlock;
  _Atomic uint64_t xscanned;
  /* Second line on. */
  uint64_t id;
  ref_gofn fn;
  void *arg;
  ref_g *schedlink;       /* run queue or free list */
  /* timer heap */
  int64_t when;
  uint32_t timer_index;
  /* channel/select waiting: set by the waker to the fired wait entry */
  void *param;
  /* select: the first case to fire claims the G (0 -> 1), so that a waker
   * holding another of its channels' locks skips it (Go's selectDone) */
  _Atomic uint32_t xselectdone;
  struct ref__m *m;       /* the M running it, or that ran it last */
  /* Runtime calls the G is inside (REF_RUNTIME_CALL; 1 before it starts and
   * after it ends): preempt=async's signal stops it only at 0. Its own,
   * read by the signal handler on its thread. */
  uint32_t in_runtime;
  /* sanitizer fiber state */
  void *asan_fake_stack;
  void *tsan_fiber;
  ref__sudog sudog;       /* plain channel send/receive wait entry */
} __attribute__((aligned(REF_CACHE_LINE)));
_Static_assert(offsetof(struct ref_g, xscanned) + sizeof(uint64_t) <= REF_CACHE_LINE,
               "a G's first line holds what a stack scan reads");

/* scan_clean's values. REF_G_SEEN: scanned whole while parked and not run
 * since, but not recorded: the next scan records. A record is made only on
 * a G's second complete scan in a row without running, so goroutines that
 * run between every pair of cycles (Go's Select, Blocking and ForRange wake
 * every reader) pay one store per scan, not a record each. SEEN is a hint
 * for when to record; a record's soundness does not rest on it. */
enum { REF_G_SEEN = 1, REF_G_CLEAN = 2, REF_G_CLEAN_EXT = 3 };

/* Drops g's scan record, if any (scan_reuse.c): g runs, dies, or another G
 * wrote into its stack. A record held inline in its table entry is dropped
 * by clearing the bit alone: the entry is not touched (one cache miss less
 * per switch-in of a recorded G). */
void ref__reuse_forget_slow(ref_g *g);
static inline void ref__reuse_forget(ref_g *g) {
  if (ref_unlikely(g->scan_clean)) {
    if (g->scan_clean == REF_G_CLEAN_EXT) ref__reuse_forget_slow(g);
    else g->scan_clean = 0;
  }
}

/* Status changes are atomic stores: concurrent mark workers read a G's
 * status while its M changes it. The M that owns the G reads it plainly. */
static inline void ref__g_setstatus(ref_g *g, ref__gstatus st) {
  __atomic_store_n(&g->status, (uint16_t)st, __ATOMIC_RELAXED);
}

/* ---- gc_concurrent.c: what the scheduler tells a concurrent cycle ---- */
/* An M is about to switch g in (from g0 or from another G): g is on a CPU
 * from here (xoncpu) until after_switch on that M clears it. While a cycle
 * marks, g's stack is scanned first if nobody has yet (gc_concurrent.c). */
void ref__cgc_switch_in_slow(ref_g *g);
static inline void ref__cgc_switch_in(ref_g *g) {
  atomic_store_explicit(&g->xoncpu, 1, memory_order_relaxed);
  if (ref_unlikely(__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED))) ref__cgc_switch_in_slow(g);
}
/* ref_go while marking: begin (true when marking) holds g's scan lock and
 * shades the start argument; end, after g is set up, makes its stack
 * scanned for this cycle and lets go. */
bool ref__cgc_g_create_begin(ref_g *g, void *arg);
void ref__cgc_g_create_end(ref_g *g);
/* A goroutine's exit, on its own M: while marking it needs no scan. */
void ref__cgc_g_exit(ref_g *g);

/* A FIFO of Gs linked through schedlink. */
typedef struct ref__gqueue {
  ref_g *head, *tail;
  size_t len;
} ref__gqueue;

/* A P's local run queue: a ring that its owner pushes at the tail and pops
 * at the head, and that idle Ms steal half of (Go's runq). head moves by CAS
 * (owner and stealers), tail only by the owner. Entries are atomics because
 * a stealer may read a slot the owner is about to overwrite; the CAS on
 * head decides who got it. */
#define REF_RUNQ_SIZE 256
typedef struct ref__runq {
  _Atomic uint32_t xhead, xtail;
  _Atomic(ref_g *) ring[REF_RUNQ_SIZE];
} ref__runq;

/* What runs on an M once the G it switched off has its context saved. */
typedef void (*ref__after_fn)(struct ref__m *m, void *arg);

/* One mutator thread and its P. Fields are the M's own unless marked. */
typedef struct ref__m {
  int id;                  /* 0..mutators-1; also the P's index (heap.c's caches) */
  ref_g *curg;             /* running G, NULL on the scheduler stack */
  _Atomic uint64_t xcurid; /* its id (0: none), for the stop's watchdog on another M */
  void *g0_sp;             /* scheduler context, saved while a G runs */
  uintptr_t g0_lo, g0_hi;  /* scheduler (thread) stack bounds */
  void *g0_fake_stack;     /* ASan */
  void *g0_tsan_fiber;     /* TSan */
  ref_frame *g0_frames;    /* records pushed on the scheduler stack: roots, scanned by maps */
  ref__after_fn after;     /* set just before a switch, run just after it */
  ref_g *prevg;            /* the G this M switched away from, until after_switch
                              clears its xoncpu */
  void *after_arg;
  ref__runq runq;
  unsigned tick;           /* switches and schedules, for the timer and global-queue checks */
  uint64_t rand;           /* select's pollorder, stealing's victim order */
  /* Under the scheduler lock (sched.c): */
  bool idle;               /* asleep in the scheduler with nothing to run */
  bool spinning;           /* woken to look for work and not yet found any */
  bool stopped;            /* waiting for a stop-the-world's restart */
  pthread_cond_t wake;     /* an idle M sleeps on it */
  pthread_t thread;        /* its thread (M0: the ref_init thread) */
  void *altstack;          /* M1..: the stack-overflow handler's signal stack */
} ref__m;

extern _Thread_local ref__m *ref__mcur;
/* The calling thread's M (NULL on a mark worker or with no runtime). Read
 * it before a switch, and from g->m after one (the G may have moved). */
static inline ref__m *ref__m_get(void) { return ref__mcur; }

/* Marks a public entry point of the runtime: from here to the function's
 * return the calling goroutine is inside the runtime, where preempt=async
 * must not stop it (it may hold a lock, or half-update a list the collector
 * reads). The count is the G's, so it follows the G across Ms; the signal
 * fences keep the compiler from moving runtime work outside it. */
static inline ref_g *ref__runtime_enter(void) {
  ref__m *m = ref__mcur;
  ref_g *g = m ? m->curg : NULL;
  if (g) g->in_runtime++;
  atomic_signal_fence(memory_order_seq_cst);
  return g;
}
static inline void ref__runtime_leave(ref_g **g) {
  atomic_signal_fence(memory_order_seq_cst);
  if (*g) (*g)->in_runtime--;
}
#define REF_RUNTIME_CALL()                                                        \
  ref_g *ref__rt_g __attribute__((cleanup(ref__runtime_leave), unused)) = ref__runtime_enter()

/* The mutators, for the collector's roots: ref__m_at(i), i < ref__nm(). */
int ref__nm(void);
ref__m *ref__m_at(int i);

/* Every G ever created (dead ones included), for the collector. Appended
 * by ref__g_alloc under g.c's lock; entries never change once written. A
 * stop-the-world cycle reads it without the lock (the world is stopped). A
 * concurrent cycle's stack jobs read the array and length taken at its
 * first pause while goroutines are created: between ref__allg_pin and
 * ref__allg_unpin (both with the world stopped) growing the table copies
 * it to a new array and keeps the old one until the unpin, so the
 * snapshot is the array itself, not a copy (an O(n) memcpy in the pause:
 * 800 KB at 100k goroutines). */
typedef struct ref__allgs {
  ref_g **g;
  size_t len, cap;
} ref__allgs;
extern ref__allgs ref__allg;
void ref__allg_pin(void);
void ref__allg_unpin(void);

/* ---- g.c: goroutines and stacks ---- */
int ref__g_init(const ref_config *cfg);
void ref__g_shutdown(void);
ref_g *ref__g_alloc(void);         /* from the dead cache or fresh; NULL + seterr on failure */
void ref__g_release(ref_g *g);     /* dead G: back to the cache */
void ref__context_init(ref_g *g, void (*entry)(ref_g *));

/* ---- sched.c: scheduling ---- */
/* While timers are pending, every this many switches fire the expired ones
 * (a clock read each time): the bound, in switches, on how late a sleeper is
 * made runnable when goroutines never stop being runnable. */
#define REF_TIMER_CHECK_EVERY 64
int ref__sched_init(const ref_config *cfg);
void ref__sched_shutdown(void);
/* Running G -> WAITING, switch away; after the switch, after(m, arg) runs
 * on this M (it releases the locks the G parked under; NULL: nothing). */
void ref__park(ref__after_fn after, void *arg);
/* WAITING -> RUNNABLE, on the calling M's P (Go's ready with runnext's
 * locality); wakes an idle M to steal it when there is one. */
void ref__ready(ref_g *g);
/* Stop the world: returns with every other M stopped at a safepoint (its G,
 * if any, has its context saved) or idle; sets *ttsp_ns to how long that
 * took. From g0 (a systemstack call or outside ref_run). A second requester
 * is stopped by the first and gets the world after it. */
void ref__stop_the_world(uint64_t *ttsp_ns);
void ref__start_the_world(void);
/* preempt.c: SIGURG for preempt=async (installed by ref__sched_init when
 * the config asks); ref__preempt_m signals m's thread. */
int ref__preempt_init(const ref_config *cfg);
void ref__preempt_shutdown(void);
void ref__preempt_m(const ref__m *m);
/* Signals sent since ref_init (each stop by signal counts in
 * ref_gc_stats.async_preempts). */
uint64_t ref__preempt_signals(void);
/* Tests only: the handler ignores the in-runtime count (a broken check,
 * which ref__async_stop's own must catch). */
extern bool ref__debug_async_ignore_runtime;
/* From the handler, on g's own M with its registers copied at sp: stops
 * there until the restart if a stop is under way. */
void ref__async_stop(ref__m *m, ref_g *g, uintptr_t sp);
/* Goroutines the current stop stopped by signal (with the world stopped). */
int ref__stopped_async(void);
/* The M that has the world stopped, NULL when it runs: only that M may
 * touch the heap (checked by the allocator at assertion level 2). */
extern ref__m *_Atomic ref__stw_owner;
static inline bool ref__stw_allows(const ref__m *m) {
  ref__m *o = atomic_load_explicit(&ref__stw_owner, memory_order_relaxed);
  return o == NULL || o == m;
}
/* Tests only: the stop neither asks the other Ms to stop nor waits for
 * them (a deliberately broken handshake, which test_mn.c must catch). */
extern bool ref__debug_stop_no_wait;
/* Tests only: an M that found nothing to run sleeps this many ns before it
 * takes the lock to go idle, widening the window in which a goroutine is
 * queued behind its back (test_mn.c's stranded-goroutine test). */
extern _Atomic long ref__debug_idle_delay_ns;

/* Runs fn(arg) on the scheduler stack. From a G, its context is saved first
 * (registers pushed on its own stack, sp published) so it can be scanned. */
void ref__systemstack(void (*fn)(void *), void *arg);
/* The M's deterministic random stream (select's pollorder). */
uint64_t ref__m_rand(void);
/* g.c: the calling mutator thread's signal stack for the overflow handler
 * (sigaltstack is per thread); -1 with the error set. */
int ref__g_thread_altstack(void **stack);
void ref__g_thread_altstack_free(void *stack);

/* ---- assembly (switch_*.S) ---- */
void ref__switch(void **save_sp, void *new_sp);
void ref__call_on_stack(void **save_sp, void *new_sp, void (*fn)(void *), void *arg);
void ref__trampoline(void);

/* ---- queue helpers ---- */
static inline void ref__gq_push(ref__gqueue *q, ref_g *g) {
  g->schedlink = NULL;
  if (q->tail) q->tail->schedlink = g;
  else q->head = g;
  q->tail = g;
  q->len++;
}

static inline ref_g *ref__gq_pop(ref__gqueue *q) {
  ref_g *g = q->head;
  if (!g) return NULL;
  q->head = g->schedlink;
  if (!q->head) q->tail = NULL;
  q->len--;
  g->schedlink = NULL;
  return g;
}

#endif /* REF_G_H */
