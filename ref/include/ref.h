/*
 * ref: the stackscan reference runtime and collector -- public API.
 *
 * Goroutines on mmap'd stacks with an assembly context switch, run by
 * `mutators` OS threads (Go's GOMAXPROCS, default 1); Go-semantics channels
 * and select; a Go-shaped heap; a mark-sweep collector that marks with the
 * world stopped or while the program runs (ref_config.mode: stw,
 * concurrent-rescan, concurrent-hybrid), with a write barrier in the API,
 * and whose stack scanning is switchable:
 *
 *   phase:     where stacks are scanned   serial | parallel | rootjobs
 *   scan:      how a stack is scanned     conservative | frames
 *   stackmaps: how frame metadata is found direct | pctab | pctab-cached
 *
 * Threads. Outside ref_run, everything here is called from the thread that
 * called ref_init(), on its own ("scheduler") stack; no goroutine runs then.
 * Inside ref_run, goroutines run on every mutator thread at once and may
 * call anything here except ref_init, ref_shutdown, ref_run and
 * ref_trace_enable: channels, select, allocation, ref_gc, the stats and
 * ref_set_strategy / ref_set_prefetch are safe from any goroutine on any
 * thread. A collection stops every goroutine at its next safepoint first
 * (ref_gc, below); so do the stats' getters (ref_heap_stats_get,
 * ref_sched_stats_get) and the two setters, as Go's ReadMemStats does,
 * when there is more than one mutator. Those four are then calls that may
 * collect: a collection that holds the world when they ask for it stops
 * them first, and scans their caller's frame records.
 *
 * Bad sizes. Every size and count a caller passes is checked. A call that
 * returns a result (ref_init, ref_alloc*, ref_chan_make*) refuses an
 * out-of-range size with its failure value (-1 or NULL) and a one-line
 * message in ref_error() naming the size and the limit; nothing is allocated
 * or changed. A call with no failure value (ref_select's case count,
 * ref_add_root's range) aborts with the message, as Go panics.
 *
 * Linking. A program that links ref binds its symbols at load (-z now; the
 * CMake target ref adds it). A lazily bound first call runs the dynamic
 * linker's resolver on the calling goroutine's stack, which leaves saved
 * registers there for a conservative scan to read as pointers: garbage it
 * then keeps, never a live object it frees.
 */
#ifndef REF_H
#define REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The number of elements of array a (an array, not a pointer). */
#define REF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------
 * Configuration and errors
 * ------------------------------------------------------------------------- */

/* The four switches, one table each, X(enumerator, name): the enums, the
 * names that ref_*_name print and ref_*_parse read, and every list the bench
 * and its reports show are made from these. A strategy is "<scan>-<phase>". */
#define REF_PHASES(X)                                                             \
  X(REF_PHASE_SERIAL, "serial")                                                   \
  X(REF_PHASE_PARALLEL, "parallel")                                               \
  X(REF_PHASE_ROOTJOBS, "rootjobs")
#define REF_SCANS(X)                                                              \
  X(REF_SCAN_CONSERVATIVE, "conservative")                                        \
  X(REF_SCAN_FRAMES, "frames")
#define REF_STACKMAPS(X)                                                          \
  X(REF_MAPS_DIRECT, "direct")                                                    \
  X(REF_MAPS_PCTAB, "pctab")                                                      \
  X(REF_MAPS_PCTAB_CACHED, "pctab-cached")
/* reuse: whether a stack that has not changed since its last complete scan
 * is read again (off) or its recorded result replayed (clean). */
#define REF_REUSES(X)                                                             \
  X(REF_REUSE_OFF, "off")                                                         \
  X(REF_REUSE_CLEAN, "clean")

/* preempt: how a stop-the-world reaches a goroutine that is running.
 * cooperative: at its next safepoint (an allocation, a channel operation,
 * ref_poll, ...); a loop that reaches none holds the stop (a watchdog names
 * it after a second). async: the stopping thread also signals the other
 * mutator threads (SIGURG, as Go 1.14); one whose goroutine runs outside
 * the runtime stops right there, inside the signal handler, and its
 * interrupted frames are scanned conservatively (see REF_FRAME's notes).
 * A system call the goroutine's own code makes may then fail with EINTR
 * (as under Go 1.14: retry it). Not available under ThreadSanitizer, which
 * delays signals to its own interceptors. */
#define REF_PREEMPTS(X)                                                           \
  X(REF_PREEMPT_COOPERATIVE, "cooperative")                                       \
  X(REF_PREEMPT_ASYNC, "async")

/* mode: when the collector marks (DESIGN.md, "The next shape").
 * stw: the whole cycle with the world stopped (the default, Go 1.4).
 * concurrent-rescan: Go 1.5-1.7, a Dijkstra insertion barrier (a heap store
 * shades the pointer it stores); stacks scanned while the program runs and
 * all rescanned in the mark-termination pause.
 * concurrent-hybrid: Go 1.8's hybrid barrier (a heap store shades the
 * pointer it overwrites, and also the one it stores while the storing
 * goroutine's stack is not yet scanned); each stack scanned once, no rescan.
 * Both concurrent modes sweep after the mark-termination pause, with the
 * world running, and end the cycle with a short third pause (ref_gc_stats).
 * Heap pointer stores go through ref_store / ref_typedmemmove in every mode
 * (below). */
#define REF_MODES(X)                                                              \
  X(REF_MODE_STW, "stw")                                                          \
  X(REF_MODE_CONCURRENT_RESCAN, "concurrent-rescan")                              \
  X(REF_MODE_CONCURRENT_HYBRID, "concurrent-hybrid")

#define REF__ENUMERATOR(e, name) e,
#define REF__ONE(e, name) +1
typedef enum ref_phase { REF_PHASES(REF__ENUMERATOR) } ref_phase;
typedef enum ref_scan { REF_SCANS(REF__ENUMERATOR) } ref_scan;
typedef enum ref_stackmaps { REF_STACKMAPS(REF__ENUMERATOR) } ref_stackmaps;
typedef enum ref_reuse { REF_REUSES(REF__ENUMERATOR) } ref_reuse;
typedef enum ref_preempt { REF_PREEMPTS(REF__ENUMERATOR) } ref_preempt;
typedef enum ref_mode { REF_MODES(REF__ENUMERATOR) } ref_mode;
enum {
  REF_NPHASES = 0 REF_PHASES(REF__ONE),
  REF_NSCANS = 0 REF_SCANS(REF__ONE),
  REF_NSTACKMAPS = 0 REF_STACKMAPS(REF__ONE),
  REF_NREUSES = 0 REF_REUSES(REF__ONE),
  REF_NPREEMPTS = 0 REF_PREEMPTS(REF__ONE),
  REF_NMODES = 0 REF_MODES(REF__ONE)
};

/* Called on every mark worker thread (index 0 is the initiating thread,
 * called from ref_init) before it does any work; the harness binds threads
 * to PUs here. A non-zero return fails ref_init. */
typedef int (*ref_worker_start_fn)(int index, void *arg);

/* Limits ref_init checks the config against, besides those in its comments. */
#define REF_MIN_STACK_SIZE ((size_t)16 << 10) /* four 4K pages; one 16K or 64K page */
#define REF_MAX_STACK_SIZE ((size_t)1 << 30)
#define REF_MIN_HEAP ((size_t)1 << 20)
#define REF_MAX_HEAP ((size_t)1 << 40)
#define REF_REUSE_MAX_WORDS 512   /* words one stack's reuse record may hold */
#define REF_MAX_PREFETCH_AHEAD 64 /* walk_ahead and lines_ahead */
#define REF_MAX_PREFETCH_LINES 64
#define REF_MAX_MUTATORS 64       /* mutator threads (ref_config.mutators) */

typedef struct ref_config {
  size_t stack_size;        /* usable bytes per goroutine stack (default 64 KiB;
                               256 KiB in ASan and TSan builds), rounded up to
                               the OS page; REF_MIN_STACK_SIZE .. REF_MAX_STACK_SIZE */
  size_t heap_max;          /* heap limit in bytes (default 4 GiB, or mem_max's
                               default when that is less);
                               REF_MIN_HEAP .. REF_MAX_HEAP */
  size_t mem_max;           /* up-front limit on stacks + heap reservations the
                               runtime will commit to; 0 = 3/4 of physical memory.
                               ref_init refuses heap_max > mem_max: the heap may
                               commit all of heap_max (its arena reserves
                               2 x heap_max of address space, never more than
                               heap_max in use), and no goroutine stack is
                               reserved up front (stacks are mapped 32 at a time
                               as goroutines are created, touched lazily), so
                               stacks count 0 here: bound them with stack_size
                               and the number of goroutines */
  int workers;              /* mark workers W >= 1, initiating thread included */
  /* P, the threads that run goroutines (Go's GOMAXPROCS), 1..REF_MAX_MUTATORS;
   * 0 (ref_config_default's) = env STACKSCAN_MUTATORS=N if set, else 1, as
   * GOMAXPROCS's variable sets the default that a program's own setting
   * overrides; ref_init fails on a bad value. Thread 0 is the one that
   * called ref_init; the others are started by ref_init and run goroutines
   * only inside ref_run. Each owns one P for its life (no goroutine blocks
   * its thread in a system call here, so Go's hand-off of Ps between Ms has
   * nothing to do). ref_get_config shows the number in use. */
  int mutators;
  /* How a stop reaches a running goroutine (REF_PREEMPTS; default
   * cooperative). Only ref_init sets it; async fails ref_init in a
   * ThreadSanitizer build. */
  ref_preempt preempt;
  /* When the collector marks (REF_MODES; default stw). Only ref_init sets
   * it. The concurrent modes take reuse=off and preempt=cooperative only. */
  ref_mode mode;
  /* Concurrent modes: background mark threads, 0..REF_MAX_WORKERS; 0 (the
   * default) = max(1, mutators / 4), Go's 25% of the Ps. They are not
   * passed to worker_start (not bound). */
  int bg_workers;
  ref_phase phase;
  ref_scan scan;
  ref_stackmaps stackmaps;
  /* reuse=clean: a goroutine's stack is clean while it has not run since
   * its last complete scan, and a clean stack's scan replays the result
   * recorded then (frames: the live slot values in the heap's range;
   * conservative: the words that fell in it) instead of reading the stack.
   * Records live off the stack, hold at most REF_REUSE_MAX_WORDS words (a
   * stack with more, or one scanned in split pieces, is not recorded) and
   * are freed when the goroutine runs or dies. Default off. Only ref_init
   * sets it; a record made under one scan mode is not replayed under the
   * other (ref_set_strategy). */
  ref_reuse reuse;
  size_t split_bytes;       /* conservative: split a stack scan into jobs above this
                               (default 16 KiB); 0 = default; a multiple of 8 */
  /* The stack scans' prefetch distances (scan_stack.c's pipeline, also the
   * floor's): walk_ahead, goroutines ahead whose top line is fetched to start
   * the page walk (default 8; the walks start 8 goroutines at a time, so
   * walk_ahead to walk_ahead + 7 ahead); lines_ahead, goroutines ahead whose live top
   * is fetched (default 3); prefetch_lines, lines of a live top fetched
   * (default 8). 0 = default; the aheads 0..REF_MAX_PREFETCH_AHEAD, lines
   * 0..REF_MAX_PREFETCH_LINES. ref_get_config shows the defaults filled in. */
  int walk_ahead, lines_ahead, prefetch_lines;
  bool checkmark;           /* verify every cycle with an independent marker; also
                               switched on by env STACKSCAN_CHECKMARK=1 */
  bool poison;              /* fill objects freed by sweep with 0xfe bytes; on by
                               default in assertion level >= 2 builds, with
                               checkmark, and with env STACKSCAN_POISON=1 */
  uint64_t seed;            /* select's pollorder, reproducible per seed */
  ref_worker_start_fn worker_start;
  void *worker_start_arg;
  /* Called on every mutator thread (index 0, the ref_init thread, from
   * ref_init; the others as they start) before it runs a goroutine; the
   * harness binds them here. A non-zero return fails ref_init. */
  ref_worker_start_fn mutator_start;
  void *mutator_start_arg;
  /* GOGC: a cycle starts by itself when the heap has grown gc_percent
   * percent over what the last cycle left (default 100; negative: never).
   * The goal, set at the end of every cycle (and to the minimum at
   * ref_init), is Go 1.18's:
   *
   *   heap_goal = bytes_live + (bytes_live + stack_bytes + globals_bytes)
   *               * gc_percent / 100,  at least 4 MiB * gc_percent / 100
   *
   * with the last cycle's ref_gc_stats fields of those names: the bytes in
   * objects after its sweep (Go's heapMarked); the stack bytes it scanned,
   * [saved sp, top) of every started goroutine, the same in every strategy
   * (a deterministic stand-in for Go's scannable stack bytes); and the bytes
   * of the registered root ranges at its end (integer arithmetic, in that
   * order). The allocation that finds ref_heap_stats.bytes_counted over
   * heap_trigger starts a cycle before it allocates. In stw the trigger is
   * heap_goal and the allocation runs the whole cycle, on the scheduler
   * stack, with the world stopped: the allocating goroutine is scanned like
   * a parked one, and on the scheduler stack only its frame records are
   * roots, as for ref_gc there. In the concurrent modes the trigger is
   * earlier, so that the mark can finish while the program allocates the
   * rest of the way to the goal (pacer.c):
   *
   *   heap_trigger = bytes_live + (heap_goal - bytes_live) / 10 * 7
   *
   * and the allocation only starts the background cycle (its first pause);
   * the cycle ends by itself once its mark work is done (a background
   * worker asks, and the next mutator thread to switch a goroutine in from
   * its scheduler loop terminates it; an allocation or ref_gc that finds
   * the work done terminates it too). A goroutine that allocates while the
   * mark runs assists it (every 64 KiB, 64 KiB of marking); one that finds
   * the heap over heap_goal marks every stack job and grey object it can
   * take and tries to end the mark, then allocates anyway: the heap may pass
   * the goal (ref_gc_stats.overshoot_bytes). A cycle still marking when
   * ref_run returns ends at the next ref_gc, allocation or ref_run's first
   * switch-in from a scheduler loop, or is abandoned by ref_shutdown. Env
   * STACKSCAN_GOGC=N or =off overrides gc_percent, as GOGC does; ref_init
   * fails on any other value. */
  int gc_percent;
} ref_config;

/* Fills *cfg with the defaults. */
void ref_config_default(ref_config *cfg);

/* Starts the runtime on the calling thread. Returns 0, or -1 with a one-line
 * message in ref_error(). Not reentrant: one runtime per process at a time. */
int ref_init(const ref_config *cfg);

/* Tears everything down: every goroutine must be dead or parked (parked ones
 * are discarded), and the caller must be on the scheduler stack. */
void ref_shutdown(void);

/* The last recoverable error, one line, no trailing newline. */
const char *ref_error(void);

/* Switches the stack-scanning strategy between cycles. Returns 0, or -1 with
 * a one-line message in ref_error() and nothing changed when a value is not
 * one of the enums' (as ref_init checks them). */
int ref_set_strategy(ref_phase phase, ref_scan scan, ref_stackmaps maps);
/* Sets the prefetch distances (ref_config's walk_ahead, lines_ahead,
 * prefetch_lines, 0 = default) between cycles. Returns 0, or -1 with a
 * one-line message in ref_error() and nothing changed when one is out of
 * range. */
int ref_set_prefetch(int walk_ahead, int lines_ahead, int prefetch_lines);
const ref_config *ref_get_config(void);

/* Strategy names, e.g. "frames-parallel" (NULL for values outside the
 * tables); parse returns -1 on unknown names. */
const char *ref_strategy_name(ref_phase phase, ref_scan scan);
int ref_strategy_parse(const char *name, ref_phase *phase, ref_scan *scan);
const char *ref_stackmaps_name(ref_stackmaps maps);
int ref_stackmaps_parse(const char *name, ref_stackmaps *maps);
const char *ref_reuse_name(ref_reuse reuse);
int ref_reuse_parse(const char *name, ref_reuse *reuse);
const char *ref_preempt_name(ref_preempt preempt);
int ref_preempt_parse(const char *name, ref_preempt *preempt);
const char *ref_mode_name(ref_mode mode);
int ref_mode_parse(const char *name, ref_mode *mode);

/* The word filter every conservative scan on this CPU runs, chosen at
 * ref_init: "avx2" (an x86-64 CPU with AVX2: 8 words per test) or "scalar"
 * (4 words per test: other CPUs and AArch64). Both find the same words; a
 * conservative scan's time differs between them. Callable without a runtime. */
const char *ref_scan_filter(void);

/* ---------------------------------------------------------------------------
 * Types and the heap
 * ------------------------------------------------------------------------- */

/* A type: size in bytes and a pointer bitmap, bit i of ptrmask[i/64] set when
 * word i holds a pointer. ptrmask may be NULL for pointer-free ("noscan")
 * types. A type with pointers has a size that is a multiple of 8, as C lays
 * out any struct holding one; ref_alloc refuses others. Size 0 is allowed.
 * Types must outlive every object of theirs (use static storage). */
typedef struct ref_type {
  size_t size;
  const uint64_t *ptrmask;
  const char *name;
} ref_type;

/* Allocates a zeroed object of type t (or an array of n of them). Allocation
 * is a safepoint: it may collect, from a goroutine or from the scheduler
 * stack, when the heap is over its GOGC goal (ref_config.gc_percent) or
 * when the heap limit is reached. Returns NULL when the heap limit is
 * exceeded even after a collection, with "heap limit N MiB exceeded" in
 * ref_error(), or at once when t->size * n overflows ("allocation size out
 * of range") or exceeds the limit, or t has pointers and a size that is not
 * a multiple of 8. A 0-byte request (t->size or n is 0) gets a distinct
 * object of the smallest size class (Go shares one address among them). */
void *ref_alloc(const ref_type *t);
void *ref_alloc_array(const ref_type *elem, size_t n);

/* The write barrier (Go's mbarrier.go). The rule: every store of a pointer
 * into a heap object (an object from ref_alloc*, a channel's buffer) or a
 * registered root range goes through ref_store, and every copy of a value
 * with pointers into one
 * through ref_typedmemmove, in every mode; a plain store there may let a
 * concurrent collector free a reachable object (the checkmark verifier
 * names the object and the field). Stores into a frame record's slots, a
 * plain local or any other stack word need no barrier in either concurrent
 * mode, and that is the point of both designs: in concurrent-rescan every
 * stack is grey until the termination pause rescans it with the world
 * stopped, so what a stack holds then is seen whatever was stored into it;
 * in concurrent-hybrid a stack is scanned once, at a moment its goroutine is
 * stopped, and a pointer a goroutine stores into its stack afterwards was
 * either on its (already scanned) stack, reachable from a grey or white
 * object whose overwriting shades it (the deletion half), or stored into the
 * heap by a goroutine whose stack was still unscanned (the insertion half).
 * A registered root range (ref_add_root) is not a stack: a pointer store
 * into one goes through ref_store too, as Go's globals take the barrier
 * (the collector scans the ranges in both pauses, but in hybrid mode a
 * pointer moved out of a range by a goroutine whose stack is black, and then
 * cleared there without the barrier, would be seen by neither). A store
 * into another goroutine's stack (a channel handing a value to a parked
 * receiver) is made by the runtime with the barrier (Go's sendDirect).
 *
 * With the barrier off (mode stw, and between concurrent cycles) ref_store
 * costs one load of a global flag and a predictable branch beyond the
 * store, as Go's writeBarrier.enabled check. */
extern int ref__wb_enabled;
void ref__store_slow(void **slot, void *val);
void ref__typedmemmove_slow(const ref_type *t, void *dst, const void *src);
/* *slot = val, slot being a pointer field of a heap object. */
static inline void ref_store(void **slot, void *val) {
  if (__builtin_expect(__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED), 0))
    ref__store_slow(slot, val);
  else
    *slot = val;
}
/* Copies one value of type t (t->size bytes) from src to dst (memmove: they
 * may overlap), or zeroes dst when src is NULL, with the barrier on each of
 * t's pointer words: a channel element, a struct copy into a heap object.
 * dst must be word-aligned when t has pointers. */
void ref__typedmemclr(const ref_type *t, void *dst);
static inline void ref_typedmemmove(const ref_type *t, void *dst, const void *src) {
  if (!src)
    ref__typedmemclr(t, dst); /* out of line: zeroing is the rarer copy */
  else if (__builtin_expect(__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED), 0) && t->ptrmask)
    ref__typedmemmove_slow(t, dst, src);
  else
    __builtin_memmove(dst, src, t->size);
}

/* Registers [p, p+len) as a global root range, scanned conservatively in
 * 256 KiB blocks. p must be word-aligned and p+len must not wrap (abort). */
void ref_add_root(void *p, size_t len);
void ref_remove_root(void *p);

/* Heap occupancy after the last sweep. */
typedef struct ref_heap_stats {
  size_t bytes_live;        /* bytes in allocated objects */
  size_t objects_live;
  size_t bytes_mapped;      /* bytes of arena in use by spans */
  /* The GOGC trigger (ref_config.gc_percent): what it counts and its goal.
   * bytes_counted is bytes_live plus the free slots the allocation caches
   * hold (a cache counts a run of up to 64 slots as allocated when it takes
   * them, as Go's heapLive counts cached spans), so it can run ahead of
   * bytes_live by a few spans. The allocation that finds bytes_counted >
   * heap_goal collects first; between cycles bytes_counted exceeds the
   * goal by at most one cache refill or one large object. */
  size_t bytes_counted;
  size_t heap_goal;         /* SIZE_MAX when gc_percent < 0 */
  size_t heap_trigger;      /* where a cycle starts: heap_goal in stw, earlier in the
                               concurrent modes (ref_config.gc_percent) */
} ref_heap_stats;
void ref_heap_stats_get(ref_heap_stats *st);

/* ---------------------------------------------------------------------------
 * Goroutines and the scheduler
 * ------------------------------------------------------------------------- */

typedef struct ref_g ref_g;
typedef void (*ref_gofn)(void *arg);

/* Creates a runnable goroutine running fn(arg), queued on the calling
 * thread's P (another mutator may steal it). arg is a GC root until the
 * goroutine starts. Returns NULL (ref_error() says why) when no stack can be
 * had. */
ref_g *ref_go(ref_gofn fn, void *arg);

/* The running goroutine, or NULL on the scheduler stack. */
ref_g *ref_curg(void);
uint64_t ref_goid(const ref_g *g);

void ref_yield(void);          /* goroutine only: back of its P's run queue */
/* goroutine only: parks on the timer heap (one for all Ps). Made runnable
 * within 64 switches (of the thread that fires it) of its deadline however
 * many goroutines stay runnable, then it runs after the ones queued before
 * it. */
void ref_sleep(int64_t ns);

/* Scheduler stack of the ref_init thread only: runs goroutines on every
 * mutator thread until every one is parked (on a channel or select, not a
 * timer) or dead, on every P. Sleeping goroutines are waited for. Returns
 * the number of goroutines still parked. */
size_t ref_run(void);

/* Counts of goroutines by status; stacks is how many G stacks exist (dead
 * goroutines' stacks are reused, so it grows only with the peak). runnable
 * counts every P's run queue and the global one. */
typedef struct ref_sched_stats {
  size_t runnable, waiting, sleeping, dead_cached, total_created, stacks;
} ref_sched_stats;
void ref_sched_stats_get(ref_sched_stats *st);

/* ---------------------------------------------------------------------------
 * Channels and select (Go semantics; a violation aborts, as Go panics)
 * ------------------------------------------------------------------------- */

typedef struct ref_chan ref_chan;

/* A channel of elements of type elem (NULL elem: pointer-free elements of
 * elem_size bytes) with capacity cap; the channel lives in the GC heap.
 * For a blocking send of an element with pointers, the value must stay
 * reachable by the collector while the sender is parked: keep it in a frame
 * slot or a heap object, as Go's stack maps cover the sender's local. The
 * same holds for a receive destination (ref_chan_recv's elem, a select
 * receive case's elem) that will hold a pointer, under scan=frames: the
 * sender stores the value there while the receiver is still parked, and a
 * collection before the receiver runs sees it only in a frame slot or a heap
 * object, never in a plain C local.
 * Returns NULL, with "makechan: size out of range" in ref_error(), when
 * elem_size * cap overflows or exceeds heap_max (Go panics there), or with
 * the heap-limit error when the heap is full. */
ref_chan *ref_chan_make(const ref_type *elem, size_t cap);
ref_chan *ref_chan_make_size(size_t elem_size, size_t cap);
void ref_chan_send(ref_chan *c, const void *elem);
bool ref_chan_recv(ref_chan *c, void *elem); /* elem may be NULL; returns ok */
void ref_chan_close(ref_chan *c);
size_t ref_chan_len(const ref_chan *c);
size_t ref_chan_cap(const ref_chan *c);

typedef enum ref_dir { REF_RECV, REF_SEND } ref_dir;
typedef struct ref_case {
  ref_chan *c;              /* NULL: the case never fires, as for a nil channel */
  ref_dir dir;
  void *elem;               /* value to send, or where to receive (may be NULL) */
  bool ok;                  /* set for the chosen receive case */
} ref_case;

/* Waits until one case can proceed and does it. Returns the chosen index,
 * or -1 when has_default and no case is ready. Ready cases are chosen
 * uniformly at random (Go's pollorder). n must be in 0..REF_MAX_SELECT_CASES
 * (Go's reflect.Select limit); another count aborts. */
#define REF_MAX_SELECT_CASES 65536
int ref_select(ref_case *cases, int n, bool has_default);

/* ---------------------------------------------------------------------------
 * Frame records: precise GC roots for code running on goroutines
 *
 * C has no stack maps, so a function that holds heap pointers across a call
 * that may park or collect declares a frame record: a small struct in its
 * native frame holding the pointer slots, linked into the goroutine's chain.
 * Its static metadata (ref_funcinfo) gives one pointer bitmap per safepoint.
 *
 *   REF_FUNC(worker_info, "worker", 2, REF_SP(0x3), REF_SP(0x1));
 *   void worker(void *arg) {
 *     REF_FRAME(f, worker_info);      // slots zeroed, linked; unlinked on exit
 *     f.slot[0] = arg;
 *     f.slot[1] = ref_alloc(&t);
 *     REF_SAFEPOINT(f, 0);            // both slots live at the next call
 *     ref_chan_recv(c, NULL);
 *     REF_SAFEPOINT(f, 1);            // only slot 0 live from here
 *     ...
 *   }
 *
 * A record is at safepoint 0 from its push, in every stackmaps mode:
 * REF_SAFEPOINT is needed only to move it to another safepoint before a call
 * that may park or collect.
 *
 * Contract (what makes scanning by frames sound): at every call that may
 * park or collect, every heap pointer the goroutine will use afterwards is
 * held in a live slot of a record on its chain, in a heap object reachable
 * from one, or in a registered root. Frames without records, including the
 * runtime's own frames below a parked goroutine's top record, hold no other
 * heap pointers.
 *
 * Records may also be declared by code on the scheduler stack (the thread's
 * own stack, outside any goroutine). There only records are roots, in both
 * scan modes: the scheduler stack is never scanned as a whole, so a pointer
 * that a function there holds across ref_gc, an allocation or ref_run must
 * be in a record (a conservative record covers its plain locals, below),
 * a heap object reachable from one, or a registered root.
 *
 * Records are linked in push order and unlinked in reverse (LIFO), whatever
 * their addresses: a function may declare several, and the compiler may
 * inline a callee's record into its caller's native frame, above or below
 * the caller's own. A precise record's live slots are roots wherever it lies.
 *
 * A record flagged REF_FRAME_CONSERVATIVE has no map; instead every aligned
 * word of [lo, hi) is a candidate root, as Go scans async-preempted frames:
 *   lo  on a goroutine, its saved stack pointer: the frames below the record
 *       (records and their slots included) are in the range, because a
 *       callee or the context switch may hold the function's values in
 *       callee-saved registers it spilled anywhere down there;
 *       on the scheduler stack, the bottom of the native frame of the
 *       youngest record there (the runtime's frames below it, a running
 *       collection's among them, are not roots);
 *   hi  the nearest record up the chain that lives in a caller's native
 *       frame, or the stack top when there is none; never below the end of
 *       the record's own slots.
 * So the record's own slots, every record sharing its native frame and its
 * plain locals are always roots, wherever the compiler put them. Records of
 * one native frame are told apart from a caller's by frame_lo, which the push
 * sets from the stack pointer: a function that moves its stack pointer
 * between two pushes (alloca, a VLA) should keep its records precise.
 *
 * With preempt=async a goroutine may also stop between two instructions of
 * its own code (never inside a runtime call). Its youngest record's function
 * was then between safepoints, so that record is scanned as a conservative
 * one whose range starts at a copy of the interrupted registers, just below
 * the interrupted stack pointer: the loop's registers, its native frames and
 * its record's frame are all roots, as Go scans an async-preempted frame and
 * its parent. Every older record's function is in a call, and that call
 * counts as one that may collect: its safepoint must be set for it (with
 * cooperative preemption only calls that may park or collect need one).
 * ------------------------------------------------------------------------- */

#define REF_MAX_SLOTS 64
#define REF_MAX_SAFEPOINTS 64

typedef struct ref_funcinfo {
  const char *name;
  uint32_t nslots;          /* <= REF_MAX_SLOTS */
  uint32_t nsafepoints;     /* <= REF_MAX_SAFEPOINTS */
  const uint64_t *live;     /* live[k]: bit i set when slot i holds a pointer at safepoint k */
  /* Filled in at registration: */
  uintptr_t entry;          /* synthetic pc of the function's entry */
  const uint32_t *pcoff;    /* pcoff[k]: safepoint k's offset from entry */
  struct ref_funcinfo *next_registered;
} ref_funcinfo;

enum { REF_FRAME_CONSERVATIVE = 1u };

typedef struct ref_frame {
  struct ref_frame *parent;  /* the caller's record, NULL at the entry frame */
  const ref_funcinfo *fn;    /* read by stackmaps=direct */
  uintptr_t pc;              /* read by stackmaps=pctab: fn->entry + pcoff[safepoint] */
  uint32_t safepoint;        /* read by stackmaps=direct */
  uint32_t flags;
  uintptr_t frame_lo;        /* set by the push: at or below the bottom of the native frame
                                the record lives in; equal for records of one frame */
  /* fn->nslots GC slots (void *) follow the header directly: ref_frame_slots(). */
} ref_frame;

static inline void **ref_frame_slots(ref_frame *rec) { return (void **)(rec + 1); }

/* Registers fi (normally done by REF_FUNC's constructor). Functions must all
 * be registered before ref_init(); the pc tables are built there. */
void ref_func_register(ref_funcinfo *fi);

/* Links rec into the running goroutine's chain / unlinks it. */
void ref__frame_push(ref_frame *rec, const ref_funcinfo *fn, uint32_t nslots);
void ref__frame_pop(ref_frame *rec);

#define REF_SP(mask) ((uint64_t)(mask))

/* Defines static metadata `id` for a function with nslots slots and one
 * live-slot mask per safepoint, registered before main(). */
#define REF_FUNC(id, fname, nslots_, ...)                                         \
  enum { id##_nslots = (nslots_) };                                               \
  _Static_assert((nslots_) >= 1 && (nslots_) <= REF_MAX_SLOTS, "1..64 slots");    \
  static const uint64_t id##_live[] = {__VA_ARGS__};                              \
  static ref_funcinfo id = {fname, (nslots_),                                     \
                            REF_ARRAY_SIZE(id##_live), id##_live,              \
                            0, 0, 0};                                             \
  __attribute__((constructor)) static void id##_register(void) {                  \
    ref_func_register(&id);                                                       \
  }

/* Declares record `f` for function metadata `id` (from REF_FUNC) with zeroed
 * slots f.slot[0..nslots), at safepoint 0, linked into the running
 * goroutine's chain (or the scheduler stack's) now and unlinked on every exit
 * from the scope. */
#define REF_FRAME(f, id)                                                          \
  __attribute__((cleanup(ref__frame_cleanup))) struct {                           \
    ref_frame h;                                                                  \
    void *slot[id##_nslots];                                                      \
  } f = {{0, 0, 0, 0, 0, 0}, {0}};                                                \
  ref__frame_push(&f.h, &(id), id##_nslots)

/* Sets the safepoint for the next call that may park or collect (a pushed
 * record starts at 0). Not itself a place a goroutine stops: the slots it
 * declares live are stored after it, before that call (a stop here would
 * see them still empty, and a value on its way to one, such as a
 * goroutine's start argument, held nowhere it is scanned). */
#define REF_SAFEPOINT(f, k)                                                       \
  ((f).h.safepoint = (k), (f).h.pc = (f).h.fn->entry + (f).h.fn->pcoff[(k)])

/* A safepoint for a loop that calls nothing else that is one: when a
 * collection has asked the world to stop, the calling goroutine stops here
 * until it restarts (Go's preemption check in every function prologue).
 * It is a call that may collect: the caller's frame records must hold
 * their live values, as for an allocation. Anywhere else (the scheduler
 * stack, a mark worker, no runtime) a no-op. One relaxed load when nobody
 * asked. */
extern int ref__stop_requested;
void ref__poll_slow(void);
static inline void ref_poll(void) {
  if (__builtin_expect(__atomic_load_n(&ref__stop_requested, __ATOMIC_RELAXED), 0))
    ref__poll_slow();
}

static inline void ref__frame_cleanup(void *rec) { ref__frame_pop((ref_frame *)rec); }

/* ---------------------------------------------------------------------------
 * The collector
 * ------------------------------------------------------------------------- */

/* One full stop-the-world cycle (like Go's runtime.GC): roots, mark, sweep.
 * Callable from a goroutine (which is then scanned like any parked one) or
 * from the scheduler stack. With several mutators it first stops the world:
 * every goroutine running on another thread stops at its next safepoint
 * (park, yield, sleep, allocation, a channel operation, select,
 * ref_poll), or with preempt=async where the signal finds it outside the
 * runtime; after a second of waiting the caller prints which thread and
 * goroutine hold the stop, once; the caller waits for all of them (ttsp_ns), runs the cycle on
 * its own thread with the W workers, and restarts them. Two goroutines that
 * call it at once run two cycles, one after the other. A cycle never starts
 * inside another: a collection started from within one aborts. */
void ref_gc(void);

/* The work counters of a cycle, one table for every layer (LLVM's .def
 * idea): X(name, exact, meaning). They are the fields of ref_gc_stats,
 * summed over the workers by the collector, reported by the bench as
 * counters and listed in its JSON context, which the reports read. exact:
 * the count depends only on the heap, the goroutines and the strategy, not
 * on timing or on W, so a comparison may demand equality; cache_hits is
 * not, since each worker has its own pc-value cache and which worker scans
 * which stack is timing. The mark counters are counted by each mark worker
 * as it works; the sweep counters by the sweep. */
#define REF_MARK_COUNTERS(X)                                                      \
  X(stacks_scanned, 1, "goroutine stacks scanned, replayed ones included")        \
  X(stack_bytes, 1, "live stack bytes, [saved sp, top), of the stacks scanned "   \
                    "(replayed ones included: the bytes the cycle accounts for)") \
  X(words, 1, "words read by conservative scans (stacks, frames, globals)")      \
  X(candidates, 1, "words a conservative scan found inside the heap's range")    \
  X(frames, 1, "frame records walked")                                            \
  X(lookups, 1, "frame metadata lookups (findfunc + pc-value decode)")            \
  X(cache_hits, 0, "lookups answered by the worker's pc-value cache")             \
  X(slots, 1, "live pointer slots read from frame records")                       \
  X(stacks_reused, 1, "clean stacks whose recorded scan was replayed (reuse=clean)") \
  X(stack_bytes_skipped, 1, "stack_bytes of the replayed stacks: not read")       \
  X(reuse_words, 1, "record entries replayed (distinct words of each record)")     \
  X(reuse_unrecorded, 1, "stacks scanned but not recorded: split, or a record "   \
                         "over REF_REUSE_MAX_WORDS words")                        \
  X(reuse_bytes, 1, "bytes of the records held at the cycle's end (a 64-byte "    \
                    "entry each, plus their words past the entry's 6)")           \
  X(objects_marked, 1, "objects marked")                                          \
  X(bytes_marked, 1, "bytes of the objects marked")
#define REF_SWEEP_COUNTERS(X)                                                     \
  X(objects_freed, 1, "objects freed by the sweep")                               \
  X(bytes_freed, 1, "bytes freed by the sweep")                                   \
  X(bytes_live, 1, "bytes in objects after the sweep (Go's heapMarked)")
#define REF_GC_COUNTERS(X) REF_MARK_COUNTERS(X) REF_SWEEP_COUNTERS(X)

#define REF__COUNTER_FIELD(name, exact, meaning) uint64_t name;

/* Per-worker figures of one cycle: its share of the stack scans and its
 * times, and its work-buffer traffic. */
typedef struct ref_worker_stats {
  uint64_t stacks_scanned, stack_bytes, busy_ns, idle_ns;
  uint64_t cpu_ns;                   /* its share of ref_gc_stats.mark_cpu_ns */
  uint64_t bufs_taken, bufs_given;   /* work buffers from / to the global lists */
} ref_worker_stats;

#define REF_MAX_WORKERS 256

/* What started a cycle. */
typedef enum ref_gc_reason {
  REF_GC_USER,   /* ref_gc() */
  REF_GC_HEAP,   /* the GOGC trigger: an allocation found the heap over its goal */
  REF_GC_LIMIT,  /* an allocation failed at heap_max and collected before retrying */
} ref_gc_reason;

/* Stats of one cycle. The counters (REF_GC_COUNTERS) marked exact are
 * deterministic for a given heap and strategy (they do not depend on timing
 * or on W); the per-worker split and the buffer traffic are not. */
typedef struct ref_gc_stats {
  uint64_t cycle;
  /* Times, ns. ttsp: from the stop request to every other mutator stopped
   * (time to safepoint; 0 with one mutator, or outside ref_run, where no
   * goroutine runs); stw: from the request to the restart, the whole pause
   * the program sees, the checkmark pass excluded. roots is the initiating
   * thread's enumeration (the serial phase's stack scans; in
   * scan=conservative it also scans grey objects between stacks), mark the
   * rest of marking on all workers; total = stop + roots + mark + sweep. */
  uint64_t ttsp_ns, stw_ns, roots_ns, mark_ns, sweep_ns, total_ns;
  /* The CPU time spent marking, summed over every thread that marked (root
   * and stack scans included, the sweep not): a thread that marks only
   * for a while, sleeping or spinning between (a pool worker's run of a
   * pause's mark, a background worker's mark loop), is timed by its own
   * CPU clock (CLOCK_THREAD_CPUTIME_ID), so a nap counts nothing and a
   * spin what it burns; marking on a mutator thread, which neither
   * sleeps nor waits (an assist, a scan at switch-in, the first pause's
   * scans), by the monotonic clock. Wall times (mark_ns) say how long;
   * this says what it cost, across modes. */
  uint64_t mark_cpu_ns;
  /* Goroutines this cycle's stop stopped by preempt=async's signal (the
   * others reached a safepoint, were parked, or their thread was idle). */
  uint64_t async_preempts;
  REF_GC_COUNTERS(REF__COUNTER_FIELD)
  int nworkers;
  ref_worker_stats worker[REF_MAX_WORKERS];
  /* The GOGC trigger. cycles_* count the cycles since ref_init, this one
   * included, by what started them (their sum is `cycle`). bytes_live,
   * stack_bytes and globals_bytes are the inputs of the goal this cycle set
   * (ref_config.gc_percent gives the formula, ref_heap_stats the goal). */
  ref_gc_reason reason;
  uint64_t cycles_user, cycles_heap, cycles_limit;
  uint64_t globals_bytes;   /* bytes of registered root ranges at the cycle's end */
  /* Concurrent modes (all 0 in stw, down to suspend_p99_ns; mmu_1ms is
   * every mode's). A cycle has three pauses: the first (pause1_ns, from
   * its stop request to its restart); mark termination, which the fields
   * above time (ttsp_ns, stw_ns, and roots_ns for its root and stack
   * scans); and the sweep's end (pause_sweep_ns), where the spans swept
   * with the world running go back to the allocator and these stats are
   * published. pause_total_ns and pause_max_ns take all three. mark_ns is
   * the concurrent mark's wall time, from the first pause's restart to the
   * termination's stop request; sweep_ns the sweep's, between the last two
   * pauses, on the thread that ended the mark (its goroutine waits; the
   * others run, and allocate from new spans); total_ns runs from the
   * cycle's start to the third pause's end. ref_gc_last() is the previous
   * cycle's until the third pause.
   * Stacks scanned: as stack jobs (stacks_bg: by the background workers,
   * or by a mutator that took jobs, an allocation at the goal or a ref_gc
   * caller waiting with nothing else to run on its P, as Go's idle mark
   * worker), by the M about to run the goroutine (stacks_self), in the two
   * pauses (stacks_pause: the goroutines on a CPU at the first, and at
   * termination every stack in rescan mode, any unscanned one in hybrid);
   * rescan_bytes, the stack bytes the termination pause read.
   * barrier_shades: heap pointers the write barrier shaded (those found
   * marked already included); assist_ns: time mutators spent in assists
   * (paying for what they allocate; a ref_gc caller's marking is not one). */
  uint64_t pause1_ns, pause_sweep_ns, pause_total_ns, pause_max_ns;
  uint64_t stacks_bg, stacks_self, stacks_pause, rescan_bytes;
  uint64_t barrier_shades, assist_ns;
  /* Pacing (ref_config.gc_percent). start_bytes: ref_heap_stats.bytes_counted
   * at the first pause; goal_bytes: the heap_goal the cycle ran against;
   * overshoot_bytes: how far bytes_counted was over goal_bytes when mark
   * termination stopped the world (the heap's peak in the cycle: it only
   * grows until the sweep), 0 if not over; cycles_overshot: the cycles
   * since ref_init, this one included, whose overshoot_bytes was not 0. */
  uint64_t start_bytes, goal_bytes, overshoot_bytes, cycles_overshot;
  /* Pauses. ttsp1_ns: the first pause's time to safepoint (ttsp_ns is the
   * termination's). suspend_max_ns, suspend_p99_ns: how long a goroutine's
   * stack was held for a concurrent scan, the largest and the 99th
   * percentile over the goroutines scanned concurrently: a batch of up
   * to 128 stack jobs (a background worker's, or a mutator's that takes
   * jobs) holds all their scan locks from its claim to its release, and
   * each of them counts that whole time (a goroutine that would run waits
   * for the batch); a scan by the mutator
   * thread about to run the goroutine counts the scan. The percentile is the
   * upper bound of a histogram bucket, at most 12.5% over the true value.
   * Scans in the pauses are the pauses' (stw_ns, pause1_ns). */
  uint64_t ttsp1_ns, suspend_max_ns, suspend_p99_ns;
  /* Every mode: the minimum mutator utilization over 1 ms windows, Go's MMU,
   * in [0, 1]: 1 - the largest share of a 1 ms window that this cycle's
   * pauses cover (stw: one pause of stw_ns; concurrent: pause1_ns and the
   * termination's stw_ns), windows running past the cycle's ends. Pauses
   * only: assists (assist_ns) and the barrier are not attributed; a pause
   * of 1 ms or more gives 0. */
  double mmu_1ms;
} ref_gc_stats;

/* ---------------------------------------------------------------------------
 * Cycle timelines
 *
 * What each mark worker did during a cycle, as spans of time: the bench's
 * --trace writes them as Chrome trace events. Spans are per batch, never per
 * object or per goroutine: a run of stack jobs is one span.
 * ------------------------------------------------------------------------- */

#define REF_TRACE_KINDS(X)                                                        \
  X(REF_TRACE_ROOTS, "roots")        /* worker 0 enumerates the roots (the serial \
                                        phase's stack scans are here) */          \
  X(REF_TRACE_WAIT_ROOTS, "wait-roots") /* a helper waits for root enumeration */ \
  X(REF_TRACE_STACKS, "stack-jobs")  /* a job buffer or a claimed batch of root \
                                        jobs; items = jobs */                     \
  X(REF_TRACE_DRAIN, "drain")        /* scanning grey objects (and stack pieces) */ \
  X(REF_TRACE_IDLE, "idle")          /* out of work: termination detection */    \
  X(REF_TRACE_SWEEP, "sweep")        /* sweeping a part of the span table */

typedef enum ref_trace_kind { REF_TRACE_KINDS(REF__ENUMERATOR) } ref_trace_kind;
enum { REF_NTRACE_KINDS = 0 REF_TRACE_KINDS(REF__ONE) };

typedef struct ref_trace_event {
  uint64_t t0_ns, t1_ns;    /* monotonic clock (CLOCK_MONOTONIC), as the stats' times */
  uint64_t items;           /* stack jobs for REF_TRACE_STACKS, else 0 */
  uint32_t kind;            /* ref_trace_kind */
} ref_trace_event;

/* Records every following cycle's timeline, up to cap events per worker and
 * cycle (0: stop recording and free the buffers). Call between cycles.
 * Returns 0, or -1 with ref_error() set when out of memory. Off, it costs a
 * predictable branch per span boundary. */
int ref_trace_enable(size_t cap);

/* The last cycle's events of worker i, in time order; *dropped (if not NULL)
 * is how many did not fit. Empty when tracing is off. */
size_t ref_trace_events(int i, const ref_trace_event **events, uint64_t *dropped);

/* "roots", "stack-jobs", ...; NULL outside the table. */
const char *ref_trace_kind_name(ref_trace_kind kind);

/* The stats of the last completed cycle. */
const ref_gc_stats *ref_gc_last(void);

/* A collection sequence number, for telling whether a collection overlapped
 * an interval of the caller's: 2 x the cycles completed since ref_init, plus
 * 1 while a concurrent cycle marks or sweeps (from its first pause's
 * restart to its third pause, where it completes). Read s0 before the
 * interval and s1 after it: a collection overlapped it (a pause fell
 * inside, or the mark or sweep covered part of it) exactly when s0 is odd
 * or s1 != s0. A flag "a cycle
 * is running" would not do: a goroutine never runs during a pause, so
 * it would miss every stop-the-world cycle. The count moves and the mark
 * bit flips only with the world stopped, so a goroutine reads a value
 * ordered by the stop's handshake; call it from a goroutine or the
 * scheduler stack. A pause that found nothing to do (a GOGC trigger that
 * another M's cycle had served) moves nothing. */
uint64_t ref_gc_seq(void);

/* Benchmark hook: scans [buf, buf+len) conservatively as a stack, with mark
 * worker 0, outside any cycle, and marks everything reachable from what it
 * finds. Those marks stand: the next cycle keeps the objects (floating
 * garbage) and its checkmark verifier, which does not see buf, reports them
 * -- do not combine the hook with checkmark. Returns the candidates found
 * (words in the heap's range). */
uint64_t ref_debug_scan_conservative(const void *buf, size_t len);

/* Benchmark hook: reads the live part of every goroutine's stack, [saved sp,
 * top), as a conservative scan reads it and with the collector's prefetching,
 * but looks nothing up and marks nothing. Its time is the memory floor under
 * a stack scan of these goroutines on this machine, to hold a cycle's
 * roots_ns against. Call it outside a cycle (from a goroutine it runs on the
 * scheduler stack, like ref_gc). Sets *bytes (if not NULL) to the bytes read,
 * which equal a cycle's stack_bytes; returns their sum. */
uint64_t ref_debug_touch_stacks(uint64_t *bytes);

/* Benchmark hook: ref_debug_touch_stacks split over mark workers [0,
 * nworkers), each on its own thread (bound as the cycle's workers are),
 * claiming runs of consecutive goroutines from a shared counter as the
 * rootjobs phase claims its stack jobs: the floor under a stack scan with
 * nworkers threads. nworkers 1 is ref_debug_touch_stacks on the calling
 * thread. Sets *sum and *bytes (each if not NULL) as that function does;
 * returns 0, or -1 (ref_error says why) when nworkers is not in 1..the
 * configured workers or there is no runtime. */
int ref_debug_touch_stacks_parallel(int nworkers, uint64_t *sum, uint64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif /* REF_H */
