/*
 * heap.h: the Go-shaped heap -- arena, pages, spans, size classes, mark bits,
 * findObject, sweep.
 *
 * Glossary
 *   arena     one mmap'd reservation (MAP_NORESERVE), touched lazily; spans
 *             are carved from it in 8 KiB pages from the bottom up.
 *   page      REF_PAGE_SIZE bytes; the page map gives each page's span.
 *   span      a run of pages holding objects of one size class (small
 *             spans), or a single large object (sizeclass 0). A small span
 *             is keyed by (sizeclass, noscan): pointer-free objects live
 *             apart, in "noscan" spans, whose objects are never scanned.
 *   slot      one object-sized cell of a span, index 0..nelems-1; it is
 *             allocated iff its alloc bit is set.
 *   mark bits per-slot bits set by the collector; sweep makes them the new
 *             alloc bits. Checkmark bits are an independent second set for
 *             the verifying marker.
 *
 * Invariants
 *   - Every in-use span is in the span table (ref__heap_span(i), i <
 *     ref__heap_nspans()) at index s->tabidx, and every page of it lies in
 *     [ref__heap.arena_lo, ref__heap.arena_hi) with its page-map entry
 *     pointing at it. Page-map entries of free pages are NULL.
 *   - Mark (and checkmark) bits are set only on allocated slots.
 *   - In stw mode, between the start of marking and ref__heap_sweep_finish()
 *     nothing is allocated: the span table and every alloc bit are frozen,
 *     so readers on mark threads need no synchronization beyond the world
 *     stop. In a concurrent cycle mutators allocate while workers mark:
 *     new spans are published through the page map (release/acquire),
 *     arena_hi and alloc-bit words are accessed atomically, and an object
 *     allocated then is marked before it is allocated (black). The span
 *     table is read only with the world stopped. After its termination
 *     pause the cycle's sweep runs with the world going: the spans it
 *     sweeps are in no cache and no central list until it ends
 *     (ref__heap_sweep_begin).
 *   - A span is in at most one place that allocates from it: one P's cache
 *     or its class's central list (or neither, when full). Its alloc bits
 *     are written only by the P that caches it.
 *
 * Threads: allocation runs on any mutator thread. Each P allocates from its
 * own caches without a lock (heap.c's mcache); a refill takes a span from
 * its class's central list under that list's lock, or a new one from the
 * page heap under the heap lock. Marking, sweep and sweep_finish run with
 * the world stopped (in stw; a concurrent cycle's mark and sweep run as the
 * invariants above say): the inline lookups and mark operations are safe from
 * any number of mark threads then, and read what the mutators wrote before
 * they stopped (the stop's lock orders it). init/shutdown run on M0 alone.
 */
#ifndef REF_HEAP_H
#define REF_HEAP_H

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Size classes (sizeclasses.c): Go's table, 67 small classes up to 32 KiB
 * ------------------------------------------------------------------------- */

#define REF_PAGE_SHIFT 13
#define REF_PAGE_SIZE ((size_t)1 << REF_PAGE_SHIFT)
#define REF_NUM_CLASSES 68          /* class 0 means "large object" */
#define REF_MAX_SMALL_SIZE 32768    /* objects above this get their own span */

extern const uint16_t ref__class_size[REF_NUM_CLASSES];  /* bytes per object */
extern const uint8_t ref__class_npages[REF_NUM_CLASSES]; /* pages per span */

/* Size-to-class lookup (Go's msize.go): sizes <= 1024 in 8-byte steps,
 * larger ones in 128-byte steps (classes above 1024 are multiples of 128). */
extern uint8_t ref__size_class8[1024 / 8 + 1];
extern uint8_t ref__size_class128[(REF_MAX_SMALL_SIZE - 1024) / 128 + 1];

/* Fills the lookup tables (idempotent; ref__heap_init calls it). */
void ref__sizeclass_init(void);

/* The smallest class whose objects hold size bytes, 1 <= size <= 32768. */
static inline int ref__size_to_class(size_t size) {
  if (size <= 1024) return ref__size_class8[(size + 7) >> 3];
  return ref__size_class128[(size - 1024 + 127) >> 7];
}

/* ---------------------------------------------------------------------------
 * Spans
 * ------------------------------------------------------------------------- */

typedef struct ref__span ref__span;
struct ref__span {
  uintptr_t base;            /* address of slot 0; page aligned */
  uintptr_t limit;           /* base + nelems * elemsize: end of the last slot */
  uintptr_t elemsize;        /* slot size; for a large object its size rounded to a word */
  uint32_t nelems;           /* slots; 1 for a large object */
  uint32_t divmul;           /* slot index = (off * divmul) >> 32 (Go's divMagic); 0 for large */
  uint32_t npages;
  uint8_t sizeclass;         /* 0: one large object */
  uint8_t noscan;            /* objects hold no pointers; types == NULL */
  uint8_t state;             /* REF_SPAN_INUSE or REF_SPAN_FREE (a free page run) */
  uint8_t needzero;          /* free slots may hold garbage or poison: zero on alloc */
  uint32_t tabidx;           /* index in the span table (in-use spans) */
  uint32_t nlive;            /* allocated slots after this span's last sweep */
  uint64_t *allocbits;       /* bit i of word i/64: slot i is allocated */
  _Atomic uint8_t *xmarkbits;  /* bit i%8 of byte i/8: slot i is marked */
  _Atomic uint8_t *xcheckbits; /* same layout: checkmark bits */
  const ref_type **types;    /* per slot: the type it was allocated with; NULL if noscan */
  /* The type of every slot allocated since the span was made, while there
   * is one: NULL before the first, REF_SPAN_MIXED once two differ (for
   * good). A scan reads it instead of types[idx], a cold miss per object:
   * 100k GoroutineParked and Idle, one worker, 2-vCPU Xeon, 4 alternated
   * processes, 0.90-0.97x the cycle, reuse off and clean. The checkmark
   * verifier reads types[idx] (ref__object_type_slot), so it checks this.
   * Written by the allocating M; an object whose allocation made it mixed
   * is black or not yet reachable when a marker could read it. */
  const ref_type *_Atomic xtype1;
  ref__span *next, *prev;    /* partial-span list (in use) or free-run list (free) */
};

enum { REF_SPAN_FREE = 0, REF_SPAN_INUSE = 1 };

/* The heap's global bounds, read by the scanners' range filter. Written only
 * by the mutator thread while no mark thread runs. */
extern struct ref__heap {
  uintptr_t arena_lo;        /* start of the arena (page aligned) */
  uintptr_t arena_hi;        /* high-water mark: every in-use span lies below */
  ref__span **pagemap;       /* span of each page of [arena_lo, arena_hi), NULL if free */
  size_t heap_max;           /* limit on bytes of in-use spans */
  /* Only one thread sets mark bits: a stop-the-world cycle's mark with one
   * worker, or the serial phase's roots, whose helpers wait (gc.c sets it
   * for those alone). Marking then needs no atomic read-modify-write, which
   * on x86-64 is a locked instruction and a full barrier: each new mark
   * made the next object's lookups wait. 100k GoroutineParked, 2-vCPU
   * Xeon, 6 alternated processes: frames-rootjobs at one worker 0.78x the
   * time with reuse off, 0.90x with clean; the serial phases at two
   * workers 0.93x (frames, both settings; conservative with clean). */
  bool mark_solo;
} ref__heap;

/* The bytes of arena below arena_hi, which grows while a concurrent cycle
 * marks (hence the atomic load; a plain mov on x86-64 and AArch64). */
static inline uintptr_t ref__heap_arena_size(void) {
  return __atomic_load_n(&ref__heap.arena_hi, __ATOMIC_RELAXED) - ref__heap.arena_lo;
}

/* The span holding p, or NULL when p lies in no in-use span. O(1). The
 * page map entry is loaded with acquire: a span made while a concurrent
 * cycle marks is published by its entries' release stores. */
static inline ref__span *ref__span_of(uintptr_t p) {
  uintptr_t off = p - ref__heap.arena_lo;
  if (ref_unlikely(off >= ref__heap_arena_size())) return NULL;
  return __atomic_load_n(&ref__heap.pagemap[off >> REF_PAGE_SHIFT], __ATOMIC_ACQUIRE);
}

/* Whether slot idx of s is allocated. Acquire: an allocation during a
 * concurrent mark sets the slot's mark bit before this one (heap.c), so a
 * marker that sees it allocated sees it marked and never greys it. */
static inline bool ref__span_is_allocated(const ref__span *s, uint32_t idx) {
  return (__atomic_load_n(&s->allocbits[idx >> 6], __ATOMIC_ACQUIRE) >> (idx & 63)) & 1;
}

/* findObject: for an interior pointer p, the base of the allocated object
 * holding it, with its span and slot index in *sp and *idx; 0 (and *sp, *idx
 * untouched) when p is in no span, in a span's tail waste, or in a free slot.
 * O(1), no division. */
static inline uintptr_t ref__find_object(uintptr_t p, ref__span **sp, uint32_t *idx) {
  ref__span *s = ref__span_of(p);
  if (s == NULL || p >= s->limit) return 0;
  uintptr_t off = p - s->base;
  uint32_t i = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
  if (!ref__span_is_allocated(s, i)) return 0;
  *sp = s;
  *idx = i;
  return s->base + (uintptr_t)i * s->elemsize;
}

/* Address of slot idx. */
static inline uintptr_t ref__object_base(const ref__span *s, uint32_t idx) {
  return s->base + (uintptr_t)idx * s->elemsize;
}

/* Sets the bit in *b; true iff this call set it. A plain (relaxed) load
 * first: an atomic RMW costs several loads, and most candidates are marked. */
static inline bool ref__bit_tryset(_Atomic uint8_t *b, uint8_t bit) {
  if (atomic_load_explicit(b, memory_order_relaxed) & bit) return false;
  return !(atomic_fetch_or_explicit(b, bit, memory_order_relaxed) & bit);
}

/* Marks slot idx (which must be allocated); true iff this call marked it.
 * Safe from concurrent mark threads. */
static inline bool ref__mark_tryset(ref__span *s, uint32_t idx) {
  ref_assert_internal(idx < s->nelems && ref__span_is_allocated(s, idx));
  _Atomic uint8_t *b = &s->xmarkbits[idx >> 3];
  uint8_t bit = (uint8_t)(1u << (idx & 7));
  if (ref__heap.mark_solo) {
    uint8_t v = atomic_load_explicit(b, memory_order_relaxed);
    if (v & bit) return false;
    atomic_store_explicit(b, v | bit, memory_order_relaxed);
    return true;
  }
  return ref__bit_tryset(b, bit);
}

static inline bool ref__is_marked(const ref__span *s, uint32_t idx) {
  return (atomic_load_explicit(&s->xmarkbits[idx >> 3], memory_order_relaxed) >> (idx & 7)) & 1;
}

/* The checkmark twins of the two above. */
static inline bool ref__checkmark_tryset(ref__span *s, uint32_t idx) {
  ref_assert_internal(idx < s->nelems && ref__span_is_allocated(s, idx));
  return ref__bit_tryset(&s->xcheckbits[idx >> 3], (uint8_t)(1u << (idx & 7)));
}

static inline bool ref__is_checkmarked(const ref__span *s, uint32_t idx) {
  return (atomic_load_explicit(&s->xcheckbits[idx >> 3], memory_order_relaxed) >> (idx & 7)) & 1;
}

/* Clears every checkmark bit of every in-use span. World stopped. */
void ref__checkmark_clear_all(void);

static inline bool ref__span_noscan(const ref__span *s) { return s->noscan; }

#define REF_SPAN_MIXED ((const ref_type *)1) /* xtype1: slots of two types or more */

/* The type slot idx was allocated with; NULL in a noscan span. The slot holds
 * ref__object_size(s) / type->size elements of it (the tail is zeroed). */
static inline const ref_type *ref__object_type(const ref__span *s, uint32_t idx) {
  const ref_type *t = atomic_load_explicit(&s->xtype1, memory_order_relaxed);
  if (ref_likely(t != REF_SPAN_MIXED && t != NULL)) return t;
  return s->types ? s->types[idx] : NULL;
}

/* The same from the per-slot array alone: the checkmark verifier's. */
static inline const ref_type *ref__object_type_slot(const ref__span *s, uint32_t idx) {
  return s->types ? s->types[idx] : NULL;
}

/* Notes that a slot of s was allocated with t (xtype1 above). */
static inline void ref__span_note_type(ref__span *s, const ref_type *t) {
  const ref_type *t1 = atomic_load_explicit(&s->xtype1, memory_order_relaxed);
  if (ref_likely(t1 == t) || t1 == REF_SPAN_MIXED) return;
  atomic_store_explicit(&s->xtype1, t1 == NULL ? t : REF_SPAN_MIXED, memory_order_relaxed);
}

/* Slot size: elemsize, or the large object's size. */
static inline uintptr_t ref__object_size(const ref__span *s) { return s->elemsize; }

/* The first allocated slot >= idx, or s->nelems when there is none:
 *   for (i = ref__span_next_allocated(s, 0); i < s->nelems;
 *        i = ref__span_next_allocated(s, i + 1)) ... */
static inline uint32_t ref__span_next_allocated(const ref__span *s, uint32_t idx) {
  uint32_t nwords = (s->nelems + 63) >> 6;
  for (uint32_t w = idx >> 6; w < nwords; w++) {
    uint64_t bits = s->allocbits[w];
    if (w == idx >> 6) bits &= ~(uint64_t)0 << (idx & 63);
    if (bits) return (w << 6) + (uint32_t)__builtin_ctzll(bits);
  }
  return s->nelems;
}

/* ---------------------------------------------------------------------------
 * Lifetime, allocation, iteration
 * ------------------------------------------------------------------------- */

/* Reserves the arena and page map for a heap of at most heap_max bytes of
 * spans, with allocation caches for nprocs Ps (P i is mutator i; with no
 * runtime, the calling thread uses P 0's). Returns 0, or -1 with
 * ref__seterr. */
int ref__heap_init(size_t heap_max, int nprocs);

/* Unmaps and frees everything; ref__heap_init may be called again. */
void ref__heap_shutdown(void);

/* A zeroed object of n elements of type t (n = 1 for a single object; an
 * array repeats t's pointer bitmap). Never collects: over the heap limit it
 * returns NULL with "heap limit N MiB exceeded" in ref_error(). */
void *ref__heap_alloc(const ref_type *t, size_t n);

/* Sets the GOGC goal and trigger (pacer.c, after a sweep or at init),
 * trigger <= goal: ref_alloc starts a cycle before allocating once the
 * bytes counted (live at the sweep + every slot handed to a cache + large
 * objects since) exceed the trigger. UINT64_MAX: never. */
void ref__heap_set_goal(uint64_t goal, uint64_t trigger);
/* Whether the bytes counted exceed the goal; the trigger. */
bool ref__heap_over_goal(void);
bool ref__heap_over_trigger(void);
/* The bytes counted (ref_heap_stats.bytes_counted: what the trigger and
 * the goal are compared with) and the goal. */
uint64_t ref__heap_counted(void);
uint64_t ref__heap_goal(void);

/* The in-use spans, a stable array from the start of marking to the end of
 * ref__heap_sweep_finish() (no allocation in between). */
size_t ref__heap_nspans(void);
ref__span *ref__heap_span(size_t i);

/* ---------------------------------------------------------------------------
 * Sweep
 * ------------------------------------------------------------------------- */

typedef struct ref__sweep_result {
  uint64_t objects_freed, bytes_freed;   /* bytes count slot sizes */
  uint64_t objects_live, bytes_live;
  uint64_t spans_swept, spans_emptied;
} ref__sweep_result;

/* Whether a freed run of pages goes back to the OS (madvise; it then reads
 * as zero): a long one whose ends are OS pages, since madvise takes whole
 * pages, and arm64 kernels may have 16K or 64K ones, larger than
 * REF_PAGE_SIZE. Other runs stay dirty until reused. */
bool ref__heap_releasable(uintptr_t base, size_t npages);

/* Sweeps spans [part*N/nparts, (part+1)*N/nparts) of the span table (N =
 * ref__heap_nspans()): freed = allocated & ~marked, poisons freed slots with
 * 0xfe when ref__cfg.poison, alloc bits := mark bits, mark bits cleared.
 * Callable concurrently for disjoint parts: touches only its own spans and
 * *out (which it overwrites). Frees no pages: ref__heap_sweep_finish does. */
void ref__heap_sweep_part(int part, int nparts, ref__sweep_result *out);

/* After every part is swept: returns empty spans' pages to the page
 * allocator, rebuilds the partial-span lists and the allocation caches, and
 * sets the live counts that ref_heap_stats_get reports. Mutator thread. */
void ref__heap_sweep_finish(const ref__sweep_result *parts, int nparts);

/* The concurrent modes sweep after the termination pause, with the world
 * running (Go's concurrent sweep):
 *   begin  world stopped: the caches and partial lists emptied, the span
 *          table set aside to be swept; the live counts are the mark's
 *          (objects and bytes marked, those allocated black included), so
 *          the next goal and trigger can be set at once;
 *   run    world running, the M that ended the mark: sweeps spans of the
 *          set-aside table, claimed one at a time, as ref__heap_sweep_part
 *          does, until none is left, waits for the other sweepers, and
 *          compacts the table. A refill that finds its partial list empty
 *          sweeps spans too, until one of its class has room; emptied spans
 *          go back to the page heap, the others to their partial lists;
 *   help   world running, any M: sweeps spans until none is left to claim;
 *   end    world stopped: the span table is the swept spans and the
 *          window's new ones; *out, what the sweep found. Throws if it kept
 *          other live counts than the mark's.
 * Between begin and end the span table holds only the window's spans. */
void ref__heap_sweep_begin(uint64_t live_objects, uint64_t live_bytes);
/* Spans the concurrent sweeps' refills have swept, in this process (tests). */
extern _Atomic uint64_t ref__refill_sweeps;
void ref__heap_sweep_run(void);
void ref__heap_sweep_help(void);
void ref__heap_sweep_end(ref__sweep_result *out);

/* ---------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------- */

/* Walks the whole heap and throws on any inconsistency: span metadata, page
 * map entries pointing back to their spans, free runs, byte accounting.
 * Expensive; called under ref_assert_expensive and by tests. */
void ref__heap_check(void);

#endif /* REF_HEAP_H */
