/*
 * gc.h: collector internals -- mark workers, root jobs, the scanners.
 *
 * A cycle (gc.c) stops the world, enumerates roots (roots.c) according to
 * the phase switch -- global ranges (globals.c), goroutine stacks
 * (scan_stack.c) --, marks with W workers (workers.c drains; mark.c greys
 * and scans heap objects; scan_stack.c reads a stack with
 * scan_conservative.c or scan_frames.c),
 * optionally verifies with the checkmark marker (checkmark.c), and sweeps
 * in parallel.
 *
 * Work items in the buffers are uintptr_t: a heap address (an object base or
 * the start of one of a large object's 128 KiB oblets), or a root item
 * tagged in its low bits (REF_ITEM_*). Invariant: every grey object is in
 * exactly one work buffer.
 */
#ifndef REF_GC_H
#define REF_GC_H

#include "funcdata.h"
#include "g.h"
#include "heap.h"
#include "workbuf.h"

#include <pthread.h>

#define REF_OBLET_BYTES ((uintptr_t)128 << 10) /* large objects are scanned in pieces */
#define REF_ROOT_BLOCK ((uintptr_t)256 << 10)  /* global roots are scanned in blocks */
#define REF_PTRBUF 64                          /* candidates batched before lookup */
#define REF_SEEN 64                            /* the candidate filter's words (mark.c) */

/* Work-item tags (low bits; heap objects and Gs are 8-byte aligned). */
#define REF_ITEM_TAGS ((uintptr_t)7)
#define REF_ITEM_PART ((uintptr_t)2)  /* (uintptr_t)part | tag: a piece of a deep stack */

/* A piece of a conservative stack scan, split off a deep stack. */
typedef struct ref__stackpart {
  ref_g *g;
  uintptr_t lo, hi;
} ref__stackpart;

/* Per-cycle mark counters of one worker (REF_MARK_COUNTERS); summed into
 * ref_gc_stats. */
typedef struct ref__wcount {
  REF_MARK_COUNTERS(REF__COUNTER_FIELD)
} ref__wcount;

/* One mark worker: the initiating thread is worker 0. */
typedef struct ref__worker {
  int id;
  ref__gcwork gcw;
  ref__wcount n;
  ref_worker_stats st;
  size_t nptr;
  uintptr_t ptrbuf[REF_PTRBUF];
  /* reuse=clean: the record of the stack being scanned, while recording;
   * nrec > REF_REUSE_MAX_WORDS: over the limit, not kept. */
  bool recording;
  uint32_t nrec;
  uintptr_t rec[REF_REUSE_MAX_WORDS];
  ref__pccache pccache;
  uint64_t shades, assist_ns; /* a mutator's (gc_concurrent.c) */
  uint64_t job_stacks;        /* of n.stacks_scanned, those taken as stack jobs */
  uint64_t black_objects, black_bytes; /* a mutator's allocations while marking (heap.c) */
  ref_trace_event *trace;  /* NULL: not tracing (ref_trace_enable) */
  uint32_t ntrace, trace_cap;
  uint64_t trace_dropped;
  pthread_t thread;
  uintptr_t seen[REF_SEEN]; /* candidates looked up this cycle (mark.c); zeroed per cycle */
} __attribute__((aligned(REF_CACHE_LINE))) ref__worker;

/* ---- trace.c: cycle timelines ---- */
void ref__trace_add(ref__worker *w, ref_trace_kind kind, uint64_t t0, uint64_t items);
/* Closes a span of kind that began at t0 (ref__nanotime) and returns its
 * end, which starts the next span: a clock read per span boundary only when
 * tracing. */
static inline uint64_t ref__trace(ref__worker *w, ref_trace_kind kind, uint64_t t0,
                                  uint64_t items) {
  if (ref_likely(w->trace == NULL)) return 0;
  ref__trace_add(w, kind, t0, items);
  return ref__nanotime();
}
/* The start of a span: the clock when tracing, else 0. */
static inline uint64_t ref__trace_start(const ref__worker *w) {
  return ref_unlikely(w->trace != NULL) ? ref__nanotime() : 0;
}
void ref__trace_reset(ref__worker *w);
void ref__trace_free(void);

/* ---- gc.c ---- */
int ref__gc_init(const ref_config *cfg);
void ref__gc_shutdown(void);
/* Runs one cycle started by `why` on the scheduler stack (ref_gc is the
 * REF_GC_USER one); throws if a cycle is already running. */
void ref__gc_start(ref_gc_reason why);

/* The times a cycle's end reports, ns (ref__nanotime): t0 the request, pause0
 * the start of the pause that ends it (t0 in stw), roots0/roots1 worker 0's
 * root enumeration, ttsp that pause's time to safepoint. */
typedef struct ref__cycle_times {
  ref_gc_reason why;
  uint64_t t0, pause0, ttsp, roots0, roots1;
} ref__cycle_times;
/* Resets the pool workers' counters, the cycle state and termination
 * detection for a mark region. World stopped. */
void ref__gc_pool_reset(void);
/* The end of every cycle, world stopped, marking done: the checkmark pass
 * (exact in stw; in a concurrent cycle, extra workers given, it allows
 * floating garbage), the sweep, the stats (the pool's and the extra
 * workers' counters summed) and the next goal. Returns the stats. */
ref_gc_stats *ref__gc_finish(const ref__cycle_times *ct, ref__worker *const *extra, int nextra);
/* In a concurrent cycle (extra workers given) ref__gc_finish sets the next
 * goal from the mark's live counts, only begins the sweep
 * (ref__heap_sweep_begin) and returns stats that are not yet
 * ref_gc_last()'s; after ref__heap_sweep_run, with the world stopped again,
 * this ends the sweep, sets its counters and publishes the stats as
 * ref_gc_last()'s, which it returns (the caller may complete them before
 * the restart). */
ref_gc_stats *ref__gc_sweep_end(void);
/* The last cycle's checkmark pass time, which no cycle time includes. */
uint64_t ref__gc_checkmark_ns(void);

/* ---- gc_concurrent.c: modes concurrent-rescan and concurrent-hybrid ---- */
int ref__cgc_init(const ref_config *cfg);
void ref__cgc_shutdown(void);
/* Runs a concurrent cycle started by why to its end (a heap trigger only
 * starts it, and returns when one already runs), from a goroutine or the
 * scheduler stack, not on the scheduler stack of a systemstack call. */
void ref__cgc_run(ref_gc_reason why);
/* Returns once no concurrent cycle's sweep runs (at once from the
 * scheduler stack, where none can). */
void ref__cgc_wait_swept(void);
/* The calling M's mark state for barrier shades, assists and stack scans
 * at switch-in. */
ref__worker *ref__cgc_mworker(void);
/* After an allocation of bytes while marking: assist credit, and mark
 * termination once no work is left; over the heap's goal, every stack job
 * and grey object it can take, then termination whether or not the mark is
 * quiet (or a wait, at safepoints, for the one under way). */
void ref__cgc_alloc_slow(size_t bytes);
static inline void ref__cgc_alloc(size_t bytes) {
  if (ref_unlikely(__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED))) ref__cgc_alloc_slow(bytes);
}
/* Whether the calling context's stack is black this cycle (hybrid). */
bool ref__cgc_stack_scanned(void);
/* Tests only: called by the driver of a concurrent cycle that ref_gc
 * started, after its first pause, with the world running and the barrier
 * on; until it returns the background workers take no work and the mark
 * does not end, so nothing is marked but the first pause's roots and what
 * the barrier, assists and switch-in scans grey. */
extern void (*ref__debug_in_mark)(void);
/* Tests only: while true, every concurrent cycle's mark is held as for
 * ref__debug_in_mark, heap-triggered ones too, and allocations do not
 * assist: the heap passes its goal as fast as the program allocates. */
extern _Atomic bool ref__debug_hold_mark;
/* Tests only: called on the M that ended a concurrent cycle's mark, on its
 * scheduler stack, after the termination pause's restart and before it
 * sweeps: nothing is swept yet, and the world runs. */
extern void (*ref__debug_in_sweep)(void);

/* ---- pausestats.c: a cycle's pause and suspension figures ---- */
/* Times a goroutine's stack was held for a concurrent scan, ns: a
 * log-linear histogram (values under 8 exact, then 8 buckets per power of
 * two) and the largest. */
#define REF_SUSP_BUCKETS 280
typedef struct ref__susp_hist {
  uint64_t tag; /* the owner's: which counts these are (pausestats.c ignores it) */
  uint64_t max;
  uint64_t n[REF_SUSP_BUCKETS];
} ref__susp_hist;
/* Counts `weight` goroutines held for ns (a batch of stack jobs counts each
 * of its goroutines). */
void ref__susp_add(ref__susp_hist *h, uint64_t ns, uint64_t weight);
void ref__susp_merge(ref__susp_hist *into, const ref__susp_hist *h);
/* The pct-th percentile: the upper bound of its bucket (at most 12.5% over
 * the true value), never above the largest; 0 when empty. */
uint64_t ref__susp_quantile(const ref__susp_hist *h, unsigned pct);
/* A pause, [t0, t1) in ref__nanotime's ns. */
typedef struct ref__interval {
  uint64_t t0, t1;
} ref__interval;
/* The minimum mutator utilization over every window of `window` ns (Go's
 * MMU) when the n disjoint pauses are the only time the mutators lose:
 * 1 - the largest pause time inside one window / window, in [0, 1]. */
double ref__mmu(const ref__interval *iv, int n, uint64_t window);
#define REF_MMU_WINDOW_NS 1000000 /* ref_gc_stats.mmu_1ms */

/* ---- pacer.c ---- */
/* Reads STACKSCAN_GOGC into ref__cfg.gc_percent and sets the first goal,
 * the minimum heap. Returns 0, or -1 with ref__seterr on a bad value. */
int ref__pacer_init(void);
/* At the end of a cycle, after the sweep: fills st's globals_bytes and sets
 * the heap's next goal from st's bytes_live, stack_bytes and globals_bytes. */
void ref__pacer_cycle_end(ref_gc_stats *st);

/* ---- globals.c: the registry of global roots ---- */
typedef struct ref__rootrange {
  uintptr_t lo, hi;
} ref__rootrange;
size_t ref__globals_count(void);
const ref__rootrange *ref__globals(void);
/* The registered ranges in blocks of REF_ROOT_BLOCK: how many, and scanning
 * block i (counted across ranges in order) with worker w. */
size_t ref__globals_nblocks(void);
void ref__globals_scan_block(ref__worker *w, size_t i);
void ref__globals_shutdown(void);

/* ---- roots.c: a cycle's roots, handed out by the phase switch ---- */
/* Root enumeration on the initiating thread, per the phase switch: serial
 * scans every root itself; parallel scans globals and queues one stack job
 * per G; rootjobs only sets up the indexed jobs. */
void ref__roots_prepare(ref__worker *w0);
/* Runs root jobs until none is left: parallel, buffers of stack jobs from
 * the jobs list; rootjobs, indexed jobs claimed by atomic counter. */
void ref__roots_work(ref__worker *w);
/* Whether root jobs are left for ref__roots_work (termination counts them
 * as visible work). */
bool ref__roots_remaining(void);
/* Frees the cycle's stack parts. */
void ref__roots_done(void);
void ref__roots_shutdown(void);

/* ---- scan_conservative.c, scan_frames.c: how one range or chain is read ---- */
/* Both queue heap words in w's ptrbuf; the caller then ref__ptrbuf_flush. */
void ref__scan_conservative(ref__worker *w, uintptr_t lo, uintptr_t hi);
/* Picks the conservative scan's word filter for this CPU (ref__gc_init). */
void ref__scan_conservative_init(void);
#if defined(__x86_64__)
/* Whether the filter tests 8 words at once with AVX2. Tests clear it to run
 * the scalar filter and compare. */
extern bool ref__scan_avx2;
#endif
void ref__scan_frames(ref__worker *w, ref_g *g);
void ref__scan_chain(ref__worker *w, ref_frame *top, uintptr_t lo, uintptr_t hi, uint64_t goid);
/* Tests only: conservative records scanned over the range used before issue
 * 23, which misses a record's own slots when a younger record lies above it,
 * so that a test can show the checkmark verifier catches a scanner that
 * skips them. */
extern bool ref__debug_legacy_conservative_range;

/* ---- scan_stack.c: the scan of goroutine stacks ---- */
/* Whether g's stack is scanned this cycle, and from where. */
static inline bool ref__g_scannable(const ref_g *g) {
  return g->status != REF_G_DEAD && g->started;
}
/* Scans g's whole live stack [saved sp, top), by frames or conservatively
 * per the scan switch: the dispatcher. */
void ref__scanstack(ref__worker *w, ref_g *g);
/* Scans the roots of gs[0, n) (start arguments, stacks) with the prefetch
 * pipeline. may_split: queue pieces of deep conservative stacks as
 * REF_ITEM_PART items for other workers. */
void ref__scan_gs(ref__worker *w, ref_g *const *gs, size_t n, bool may_split);
/* Scans the frame records on the scheduler stack: roots in every scan mode. */
void ref__scan_g0_records(ref__worker *w);
/* Runs a tagged work item (REF_ITEM_PART). */
void ref__item_run(ref__worker *w, uintptr_t item);
void ref__stackparts_free(void);
/* Counts one stack whose live part, hi - sp bytes, this worker scans (in
 * full or, when split, the first piece of). */
static inline void ref__count_stack(ref__worker *w, uintptr_t bytes) {
  w->n.stacks_scanned++;
  w->n.stack_bytes += bytes;
}

/* ---- scan_reuse.c: records of clean stacks (reuse=clean; see g.h) ---- */
/* Sizes the side table for allg; before the cycle's first scan. */
void ref__reuse_prepare(void);
/* The table's entries, one line per allg slot, or NULL. */
#define REF_REUSE_ENTRY_BYTES 64
extern struct reuse_entry *ref__reuse_entries;
static inline const void *ref__reuse_entry_line(const ref_g *g) {
  return (const char *)ref__reuse_entries + (size_t)g->allg_index * REF_REUSE_ENTRY_BYTES;
}
/* Replays g's record if g is clean and it was made under this scan mode,
 * counting the stack as scanned; false: scan it. */
bool ref__reuse_replay(ref__worker *w, ref_g *g);
/* Fetches the objects g's record names (g clean, its record held still). */
void ref__reuse_prefetch_objects(const ref_g *g);
/* Around one complete stack scan: begin starts recording what the scan
 * feeds the marker, end stores it as g's record and sets g clean. */
void ref__reuse_begin(ref__worker *w);
void ref__reuse_end(ref__worker *w, ref_g *g);
void ref__record_slow(ref__worker *w, const uintptr_t *p, size_t n);
static inline void ref__record(ref__worker *w, const uintptr_t *p, size_t n) {
  if (w->recording) ref__record_slow(w, p, n);
}
void ref__reuse_shutdown(void);

/* ---- mark.c ---- */
/* Marks slot idx of s and counts it; true when this call marked it and it
 * holds pointers, so that it must be scanned. */
static inline bool ref__mark_new(ref__worker *w, ref__span *s, uint32_t idx) {
  if (!ref__mark_tryset(s, idx)) return false;
  w->n.objects_marked++;
  w->n.bytes_marked += ref__object_size(s);
  return !ref__span_noscan(s);
}
/* Marks the object at base (slot idx of s); greys it if it has pointers. */
static inline void ref__greyobject(ref__worker *w, uintptr_t base, ref__span *s, uint32_t idx) {
  if (ref__mark_new(w, s, idx)) ref__gcw_put(&w->gcw, base);
}
/* Marks the object p points into, if any (an exact or interior pointer). */
static inline void ref__mark_ptr(ref__worker *w, uintptr_t p) {
  ref__span *s;
  uint32_t idx;
  uintptr_t base = ref__find_object(p, &s, &idx);
  if (base) ref__greyobject(w, base, s, idx);
}
/* Shades p (any word: only heap addresses are marked) into w's buffers. */
static inline void ref__shade(ref__worker *w, uintptr_t p) {
  if (p - ref__heap.arena_lo < ref__heap_arena_size()) ref__mark_ptr(w, p);
}
void ref__ptrbuf_flush(ref__worker *w);
/* Empties w's ptrbuf and clears its filter of looked-up candidates, as w's
 * cycle starts: the last cycle's entries stand for marks since swept. */
void ref__ptrbuf_reset(ref__worker *w);
void ref__scanobject(ref__worker *w, uintptr_t b);
/* The same for b in the object at base, slot idx of s, already found. */
void ref__scanobject_at(ref__worker *w, uintptr_t b, uintptr_t base, ref__span *s, uint32_t idx);
/* Scans one grey item: an object, or a tagged job. */
static inline void ref__scan_item(ref__worker *w, uintptr_t item) {
  if (item & REF_ITEM_TAGS) ref__item_run(w, item);
  else ref__scanobject(w, item);
}
/* Scans objects (and jobs) until no work is left anywhere. */
void ref__drain(ref__worker *w);
/* Scans grey items until `bytes` of objects are marked or w finds none
 * (its buffers, then the global lists); whether it scanned any. A
 * concurrent cycle's assists and background steps: no termination. */
bool ref__drain_some(ref__worker *w, uint64_t bytes);
/* Scans grey items with no other worker marking (heap.h: mark_solo) until
 * none is left (its buffers, then the global lists: true) or `ns` have
 * passed (false). The serial phase's mark before it wakes helpers (gc.c). */
bool ref__drain_alone(ref__worker *w, uint64_t ns);

/* Root jobs a worker claims per atomic add, of njobs shared by nworkers:
 * the rootjobs phase (roots.c) and the parallel floor (scan_stack.c). As
 * many as balance allows, an eighth of a worker's share, 128 to 4096:
 * workers scanning neighbouring Gs mark objects whose mark bits share
 * cache lines (a G's objects are allocated near its neighbours'), and
 * fight over them (roots.c says the same of the parallel phase's jobs).
 * 100k GoroutineParked, two workers, frames-rootjobs, 2-vCPU Xeon: 0.85x
 * the time of fixed 128-G claims with reuse=off, 0.74x with clean. */
static inline size_t ref__claim_batch(size_t njobs, int nworkers) {
  size_t b = njobs / (8 * (size_t)nworkers);
  return b < 128 ? 128 : b > 4096 ? 4096 : b;
}

/* ---- workers.c ---- */
extern _Atomic int ref__xnwait; /* idle mark workers */
int ref__workers_init(const ref_config *cfg);
void ref__workers_shutdown(void);
ref__worker *ref__worker_get(int i);
int ref__workers_count(void);
/* Runs fn(worker, ctx) on worker 0 (the caller) and on every helper that
 * joins before the caller's run returns; returns when those have finished.
 * A helper may not run it at all, so fn hands out its work by claiming, not
 * by worker id. ctx carries the region's state (libuv's req->data), so no
 * region state travels through file-level globals. */
void ref__workers_run(void (*fn)(ref__worker *, void *), void *ctx);
/* Termination detection: a drained worker calls this; returns true when the
 * whole mark phase is done, false when it should look for work again. */
bool ref__mark_idle(ref__worker *w);
void ref__mark_reset(int nworkers);
/* A helper entering the mark region: helpers count as idle until then. */
void ref__mark_join(void);
/* A wait inside a region: returns once ready(arg) holds, spinning briefly
 * and then parked until a ref__unpark (workbuf.h). ready must become true
 * only by a store followed by ref__unpark. */
void ref__wait_until(bool (*ready)(void *), void *arg);

/* ---- barrier.c: the write barrier's slow paths ---- */
/* Shades what a barriered store of val over old must, per the mode. */
void ref__wb_shade_pair(uintptr_t old, uintptr_t val);

/* ---- checkmark.c ---- */
/* Re-marks with an independent serial marker and aborts on any difference;
 * with floating_ok, only on an object the verifier reaches and the
 * collector left unmarked (a concurrent cycle keeps what died during it). */
void ref__checkmark_verify(bool floating_ok);

/* Tests only: called inside every cycle with the world stopped, before
 * marking (test_mn.c watches running goroutines from it). */
extern void (*ref__debug_in_cycle)(void);
/* How long the serial phase marks alone after its roots before it wakes
 * the helpers (gc.c: mark_serial). Tests set it: 0 wakes them after the
 * first items, UINT64_MAX never. */
#define REF_SOLO_MARK_NS 100000ull
extern uint64_t ref__solo_mark_ns;
/* Tests only: a goroutine stopped by preempt=async is scanned as if it were
 * at a safepoint, its interrupted frames left out (the checkmark must catch
 * the object only those hold). */
extern bool ref__debug_async_precise_top;

#endif /* REF_GC_H */
