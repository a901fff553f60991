/*
 * ref: the stackscan reference runtime and collector -- public API.
 *
 * Goroutines on mmap'd stacks with an assembly context switch, run by one
 * OS thread (M=1); Go-semantics channels and select; a Go-shaped heap; a
 * stop-the-world mark-sweep collector whose stack scanning is switchable:
 *
 *   phase:     where stacks are scanned   serial | parallel | rootjobs
 *   scan:      how a stack is scanned     conservative | frames
 *   stackmaps: how frame metadata is found direct | pctab | pctab-cached
 *
 * Everything here is called from the thread that called ref_init(), either
 * from a goroutine or from that thread's own ("scheduler") stack.
 */
#ifndef REF_H
#define REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Configuration and errors
 * ------------------------------------------------------------------------- */

typedef enum ref_phase { REF_PHASE_SERIAL, REF_PHASE_PARALLEL, REF_PHASE_ROOTJOBS } ref_phase;
typedef enum ref_scan { REF_SCAN_CONSERVATIVE, REF_SCAN_FRAMES } ref_scan;
typedef enum ref_stackmaps {
  REF_MAPS_DIRECT, REF_MAPS_PCTAB, REF_MAPS_PCTAB_CACHED
} ref_stackmaps;

/* Called on every mark worker thread (index 0 is the initiating thread,
 * called from ref_init) before it does any work; the harness binds threads
 * to PUs here. A non-zero return fails ref_init. */
typedef int (*ref_worker_start_fn)(int index, void *arg);

typedef struct ref_config {
  size_t stack_size;        /* usable bytes per goroutine stack (default 64 KiB), at
                               least 16 KiB; rounded up to the OS page */
  size_t heap_max;          /* heap limit in bytes (default 4 GiB) */
  size_t mem_max;           /* up-front limit on stacks + heap reservations the
                               runtime will commit to; 0 = 3/4 of physical memory */
  int workers;              /* mark workers W >= 1, initiating thread included */
  ref_phase phase;
  ref_scan scan;
  ref_stackmaps stackmaps;
  size_t split_bytes;       /* conservative: split a stack scan into jobs above this
                               (default 16 KiB); 0 = default */
  bool checkmark;           /* verify every cycle with an independent marker; also
                               switched on by env STACKSCAN_CHECKMARK=1 */
  bool poison;              /* fill objects freed by sweep with 0xfe bytes; on by
                               default in assertion level >= 2 builds, with
                               checkmark, and with env STACKSCAN_POISON=1 */
  uint64_t seed;            /* select's pollorder, reproducible per seed */
  ref_worker_start_fn worker_start;
  void *worker_start_arg;
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

/* Switches the stack-scanning strategy between cycles. */
void ref_set_strategy(ref_phase phase, ref_scan scan, ref_stackmaps maps);
const ref_config *ref_get_config(void);

/* Strategy names, e.g. "frames-parallel"; parse returns -1 on unknown names. */
const char *ref_strategy_name(ref_phase phase, ref_scan scan);
int ref_strategy_parse(const char *name, ref_phase *phase, ref_scan *scan);
const char *ref_stackmaps_name(ref_stackmaps maps);
int ref_stackmaps_parse(const char *name, ref_stackmaps *maps);

/* ---------------------------------------------------------------------------
 * Types and the heap
 * ------------------------------------------------------------------------- */

/* A type: size in bytes and a pointer bitmap, bit i of ptrmask[i/64] set when
 * word i holds a pointer. ptrmask may be NULL for pointer-free ("noscan")
 * types. Types must outlive every object of theirs (use static storage). */
typedef struct ref_type {
  size_t size;
  const uint64_t *ptrmask;
  const char *name;
} ref_type;

/* Allocates a zeroed object of type t (or an array of n of them). Allocation
 * is a safepoint: it may collect. Returns NULL when the heap limit is
 * exceeded even after a collection, with "heap limit N MiB exceeded" in
 * ref_error(). */
void *ref_alloc(const ref_type *t);
void *ref_alloc_array(const ref_type *elem, size_t n);

/* Registers [p, p+len) as a global root range, scanned conservatively in
 * 256 KiB blocks. p must be word-aligned. */
void ref_add_root(void *p, size_t len);
void ref_remove_root(void *p);

/* Heap occupancy after the last sweep. */
typedef struct ref_heap_stats {
  size_t bytes_live;        /* bytes in allocated objects */
  size_t objects_live;
  size_t bytes_mapped;      /* bytes of arena in use by spans */
} ref_heap_stats;
void ref_heap_stats_get(ref_heap_stats *st);

/* ---------------------------------------------------------------------------
 * Goroutines and the scheduler
 * ------------------------------------------------------------------------- */

typedef struct ref_g ref_g;
typedef void (*ref_gofn)(void *arg);

/* Creates a runnable goroutine running fn(arg). arg is a GC root until the
 * goroutine starts. Returns NULL (ref_error() says why) when no stack can be
 * had. */
ref_g *ref_go(ref_gofn fn, void *arg);

/* The running goroutine, or NULL on the scheduler stack. */
ref_g *ref_curg(void);
uint64_t ref_goid(const ref_g *g);

void ref_yield(void);          /* goroutine only: back of the run queue */
void ref_sleep(int64_t ns);    /* goroutine only: parks on the timer heap */

/* Scheduler stack only: runs goroutines until every one is parked (on a
 * channel or select, not a timer) or dead. Sleeping goroutines are waited
 * for. Returns the number of goroutines still parked. */
size_t ref_run(void);

/* Counts of goroutines by status; stacks is how many G stacks exist (dead
 * goroutines' stacks are reused, so it grows only with the peak). */
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
 * slot or a heap object, as Go's stack maps cover the sender's local. */
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
 * uniformly at random (Go's pollorder). */
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
 * Contract (what makes scanning by frames sound): at every call that may
 * park or collect, every heap pointer the goroutine will use afterwards is
 * held in a live slot of a record on its chain, in a heap object reachable
 * from one, or in a registered root. Frames without records, including the
 * runtime's own frames below a parked goroutine's top record, hold no other
 * heap pointers. A record flagged REF_FRAME_CONSERVATIVE is instead scanned
 * word by word over its native frame (from the record below it, or the saved
 * stack pointer, up to its parent record), as Go scans async-preempted frames.
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
                            sizeof(id##_live) / sizeof(id##_live[0]), id##_live,  \
                            0, 0, 0};                                             \
  __attribute__((constructor)) static void id##_register(void) {                  \
    ref_func_register(&id);                                                       \
  }

/* Declares record `f` for function metadata `id` (from REF_FUNC) with zeroed
 * slots f.slot[0..nslots), linked into the running goroutine's chain now and
 * unlinked on every exit from the scope. */
#define REF_FRAME(f, id)                                                          \
  __attribute__((cleanup(ref__frame_cleanup))) struct {                           \
    ref_frame h;                                                                  \
    void *slot[id##_nslots];                                                      \
  } f = {{0, 0, 0, 0, 0}, {0}};                                                   \
  ref__frame_push(&f.h, &(id), id##_nslots)

/* Sets the safepoint for the next call that may park or collect. */
#define REF_SAFEPOINT(f, k)                                                       \
  ((f).h.safepoint = (k), (f).h.pc = (f).h.fn->entry + (f).h.fn->pcoff[(k)])

static inline void ref__frame_cleanup(void *rec) { ref__frame_pop((ref_frame *)rec); }

/* ---------------------------------------------------------------------------
 * The collector
 * ------------------------------------------------------------------------- */

/* One full stop-the-world cycle (like Go's runtime.GC): roots, mark, sweep.
 * Callable from a goroutine (which is then scanned like any parked one) or
 * from the scheduler stack. */
void ref_gc(void);

/* Per-worker counters of one cycle. */
typedef struct ref_worker_stats {
  uint64_t stacks_scanned, stack_bytes, busy_ns, idle_ns;
  uint64_t bufs_taken, bufs_given;   /* work buffers from / to the global lists */
} ref_worker_stats;

#define REF_MAX_WORKERS 256

/* Stats of one cycle. The counts are deterministic for a given heap and
 * strategy (they do not depend on timing or on W), except the per-worker
 * split and the buffer traffic. */
typedef struct ref_gc_stats {
  uint64_t cycle;
  /* phase times, ns. roots is the initiating thread's enumeration (the
   * serial phase's stack scans; in scan=conservative it also scans grey
   * objects between stacks), mark the rest of marking on all workers. */
  uint64_t stw_ns, roots_ns, mark_ns, sweep_ns, total_ns;
  /* counts */
  uint64_t stacks_scanned, stack_bytes, words, candidates;
  uint64_t frames, lookups, cache_hits, slots;
  uint64_t objects_marked, bytes_marked, objects_freed, bytes_freed;
  int nworkers;
  ref_worker_stats worker[REF_MAX_WORKERS];
} ref_gc_stats;

/* The stats of the last completed cycle. */
const ref_gc_stats *ref_gc_last(void);

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

#ifdef __cplusplus
}
#endif
#endif /* REF_H */
