/*
 * ref internals shared by every subsystem: naming, assertions, fatal errors,
 * sanitizer detection, time; arch.h, included here, what differs by ISA. Subsystem internals live in their own headers
 * (g.h, heap.h, funcdata.h, workbuf.h, gc.h).
 *
 * Names come in three tiers: ref_ public (include/ref.h), ref__ internal but
 * visible across files, plain static. Atomic fields are prefixed x.
 */
#ifndef REF_INTERNAL_H
#define REF_INTERNAL_H

#include "arch.h"
#include "ref.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- sanitizers, detected from the compiler, not from a build option ---- */

#if defined(__SANITIZE_ADDRESS__)
#define REF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REF_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define REF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define REF_TSAN 1
#endif
#endif
#ifndef REF_ASAN
#define REF_ASAN 0
#endif
#ifndef REF_TSAN
#define REF_TSAN 0
#endif

/* How long a wait spins before it sleeps: a mark worker before its futex
 * (workers.c), a stop's requester before its condition variable (sched.c). */
#define REF_PARK_SPIN_NS 20000ull

/* Conservative scanners read words that ASan may consider poisoned (dead
 * stack slots, redzones): they are marked with this. */
#define REF_NO_SANITIZE_ADDRESS __attribute__((no_sanitize("address")))
/* A concurrent cycle's workers read a parked goroutine's stack while other
 * threads may write words of it: a channel's waker links its wait entries
 * and stores the value it hands over (through the barrier, which shades
 * it). Go reads these words racily too; the stack readers are marked with
 * this so that ThreadSanitizer does not report them. */
#define REF_NO_SANITIZE_THREAD __attribute__((no_sanitize("thread")))

#define ref_likely(x) __builtin_expect(!!(x), 1)
#define ref_unlikely(x) __builtin_expect(!!(x), 0)
#define ref_noinline __attribute__((noinline))
#define ref_noreturn __attribute__((noreturn))
/* For helpers whose only effect is __builtin_prefetch. GCC 12 at -O2 counts a
 * prefetch as no side effect, finds such a helper const, and deletes every
 * call to it (seen with objdump: the release build had lost roots.c's stack
 * prefetches and mark.c's next-object prefetch). Inlined first, they stay. */
#define ref_prefetch_fn static inline __attribute__((always_inline))

/* ---- fatal errors: a broken invariant prints its state and aborts ---- */

/* Prints "stackscan: fatal: <msg>" and aborts (Go's throw). */
ref_noreturn void ref__throw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records a recoverable error for ref_error(); returns -1 for convenience. */
int ref__seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- assertion tiers (mimalloc style), switched by REF_ASSERT_LEVEL ----
 *   ref_assert            cheap checks of API contracts            level >= 1
 *   ref_assert_internal   internal invariants on hot-ish paths     level >= 2
 *   ref_assert_expensive  whole-structure validators               level >= 3
 */
#ifndef REF_ASSERT_LEVEL
#define REF_ASSERT_LEVEL 1
#endif
#define ref__assert_fail(e) ref__throw("assertion failed: %s (%s:%d)", #e, __FILE__, __LINE__)
#if REF_ASSERT_LEVEL >= 1
#define ref_assert(e) ((e) ? (void)0 : ref__assert_fail(e))
#else
#define ref_assert(e) ((void)0)
#endif
#if REF_ASSERT_LEVEL >= 2
#define ref_assert_internal(e) ((e) ? (void)0 : ref__assert_fail(e))
#else
#define ref_assert_internal(e) ((void)0)
#endif
#if REF_ASSERT_LEVEL >= 3
#define ref_assert_expensive(e) ((e) ? (void)0 : ref__assert_fail(e))
#else
#define ref_assert_expensive(e) ((void)0)
#endif

/* ---- locks ---- */

/* A spinlock for short critical sections on mutator threads (a channel's
 * state, a size class's span list): test-and-test-and-set, and after a
 * while sched_yield, since on a VM the holder may be descheduled. Not
 * recursive. A lock may be taken on one goroutine and released by the next
 * context on the same thread (a park releases its channel's lock after the
 * switch, g.h). */
typedef struct ref__spinlock {
  _Atomic uint32_t x;
} ref__spinlock;
void ref__spin_lock_slow(ref__spinlock *l);
static inline void ref__spin_lock(ref__spinlock *l) {
  if (ref_likely(!atomic_exchange_explicit(&l->x, 1, memory_order_acquire))) return;
  ref__spin_lock_slow(l);
}
static inline void ref__spin_unlock(ref__spinlock *l) {
  atomic_store_explicit(&l->x, 0, memory_order_release);
}

/* ---- time (os.c) ---- */

/* Monotonic nanoseconds. */
uint64_t ref__nanotime(void);
/* The calling thread's CPU time, ns (a system call: once per phase, not
 * per object). */
uint64_t ref__thread_cputime(void);

/* ---- the world (sched.c) ---- */

/* Runs fn(arg) with the world stopped (on g0), as Go's ReadMemStats does:
 * for readers of every P's state and writers of the switches. Not from
 * inside a stop. With one mutator (or no runtime) it just calls fn. */
void ref__with_world_stopped(void (*fn)(void *), void *arg);
/* Whether nothing waits to run on the calling M's P: its local queue and
 * the global queue are empty (read lock-free: a hint). */
bool ref__sched_p_empty(void);
/* gc_concurrent.c: whether no concurrent cycle is under way (always, in stw); and a wait,
 * helping, until none is. With the world stopped and none under way, none
 * can start and no background worker reads the configuration. */
bool ref__cgc_idle(void);
void ref__cgc_wait_idle(void);

/* ---- configuration (config.c) ---- */

/* Checks every field of a configuration ref_init would take: 0, or -1 with
 * the one-line reason in ref_error(). */
int ref__config_check(const ref_config *cfg);
/* Gives the fields a checked config leaves 0 for "default" their default
 * (split_bytes; the prefetch distances go through ref_set_prefetch). */
void ref__config_fill_defaults(ref_config *cfg);
/* Resolves cfg->mutators 0 to env STACKSCAN_MUTATORS=N, or 1 when it is
 * unset: 0, or -1 with the error set for a value that is not
 * 1..REF_MAX_MUTATORS. */
int ref__config_env_mutators(ref_config *cfg);
/* Whether environment variable name is set to something other than "" or
 * "0". */
bool ref__env_on(const char *name);

/* ---- small helpers ---- */

#define REF_WORD ((size_t)sizeof(void *))
#define ref_align_up(x, a) (((x) + ((a)-1)) & ~((uintptr_t)(a)-1))
#define ref_align_down(x, a) ((x) & ~((uintptr_t)(a)-1))

/* Doubles the capacity of the array arr holding cap elements (the first
 * growth allocates first elements): REF_GROW(arr, cap, first) is true when
 * arr and cap now have room for one more, false when out of memory, with
 * both left as they were. Call when the array is full. */
#define REF_GROW(arr, cap, first)                                                 \
  ({                                                                              \
    void *ref_grown_ = ref__grow_slow((arr), &(cap), sizeof *(arr), (first));     \
    if (ref_grown_) (arr) = ref_grown_;                                           \
    ref_grown_ != NULL;                                                           \
  })

static inline void *ref__grow_slow(void *arr, size_t *cap, size_t elem, size_t first) {
  size_t n = *cap ? *cap * 2 : first;
  if (n < *cap || n > SIZE_MAX / elem) return NULL;
  void *p = realloc(arr, n * elem);
  if (p) *cap = n;
  return p;
}

/* xorshift64* step: the runtime's own deterministic PRNG. */
static inline uint64_t ref__rand64(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* The runtime's configuration (set by ref_init, strategy by ref_set_strategy).
 * One rule for reading it: a subsystem's init function takes what it needs
 * as arguments (so tests can start a subsystem alone) and keeps its own copy;
 * code that runs after init reads the switches (phase, scan, stackmaps,
 * split_bytes, checkmark, poison) from here, because ref_set_strategy
 * changes them between cycles. */
extern ref_config ref__cfg;

#endif /* REF_INTERNAL_H */
