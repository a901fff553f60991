/*
 * heap.c: the Go-shaped heap (see heap.h for the glossary and invariants).
 *
 * Sections: state; page allocator; spans; allocation; sweep; iteration and
 * stats; lifetime; validator.
 *
 * Memory: the arena is one reservation of 2 * heap_max bytes (the slack
 * absorbs page fragmentation; only heap_max bytes of spans are ever in use).
 * The page map, the free-run boundary map and the dirty-page bitmap share a
 * second reservation. Span structs and their bitmaps live in malloc memory.
 */
#include "heap.h"
#include "g.h"  /* the calling M's caches */
#include "gc.h" /* ref__gc_start: allocation is a safepoint */
#include "os.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

struct ref__heap ref__heap;

/* Free runs shorter than this have a list per length; longer ones share one. */
#define FREE_EXACT 128
/* A freed span of at least this many pages goes back to the OS (madvise),
 * if ref__heap_releasable finds its ends on OS pages. */
#define RELEASE_PAGES 16

/* The allocation cache of one (class, noscan): the span being carved and the
 * free slots of one of its alloc-bit words, with everything the fast path
 * needs copied into one cache line. Invariant: freemask != 0 implies span !=
 * NULL, and freemask's bits are clear in *allocword ==
 * span->allocbits[word]. */
typedef struct alloc_cache {
  uint64_t freemask;        /* bit k: slot word*64+k is free and not yet handed out */
  uintptr_t wordbase;       /* address of slot word*64 */
  uint64_t *allocword;      /* &span->allocbits[word] */
  const ref_type **types;   /* &span->types[word*64], NULL for noscan */
  uintptr_t elemsize;
  ref__span *span;
  uint32_t word;
  bool needzero;            /* span->needzero */
} __attribute__((aligned(REF_CACHE_LINE))) alloc_cache;

/* A P's caches, one per (class, noscan) (Go's mcache): only its M touches
 * them, so the fast path takes no lock. A span loaded into a cache belongs
 * to it until it is used up (no partial list holds it), so its alloc bits
 * too are written by that M alone. */
typedef struct mcache {
  alloc_cache c[REF_NUM_CLASSES][2];
} mcache;

static struct {
  bool inited;
  void *arena_map;          /* the reservation as mmap returned it */
  size_t arena_map_len;
  void *meta_map;           /* page map + free map + dirty bitmap */
  size_t meta_len;
  size_t npages;            /* pages in the arena */
  size_t hi_page;           /* pages below ref__heap.arena_hi */

  /* Page allocator. A free run is a ref__span in state REF_SPAN_FREE.
   * Invariant: freemap[p] != NULL iff page p is the first or last page of a
   * free run, and then points at that run. */
  ref__span **freemap;
  uint64_t *dirty;          /* bit per page: may hold nonzero bytes (free pages only) */
  ref__span *free_exact[FREE_EXACT]; /* runs of exactly n pages, n < FREE_EXACT */
  ref__span *free_large;    /* runs of >= FREE_EXACT pages */

  /* The span table: every in-use span, s == spans[s->tabidx]. */
  ref__span **spans;
  size_t nspans, spans_cap;

  mcache *mcaches;          /* one per P: ref__m_at(i)->mcache */
  int nmcaches;
  /* Central lists (Go's mcentral): in-use spans with free slots that no
   * cache holds, per (class, noscan), each under its own lock. */
  ref__span *partial[REF_NUM_CLASSES][2];
  ref__spinlock partial_lock[REF_NUM_CLASSES][2];
  /* The page heap (Go's mheap): the page allocator, the page map, the span
   * table and bytes_mapped, under one lock. */
  pthread_mutex_t lock;

  size_t bytes_mapped;      /* bytes of in-use spans; <= ref__heap.heap_max */
  /* Live counts: at the last sweep, plus everything handed out since (slots
   * loaded into caches, large objects), counted by every P; stats subtract
   * what caches still hold. */
  uint64_t swept_objects, swept_bytes;
  _Atomic uint64_t xalloc_objects, xalloc_bytes;
  /* The GOGC goal and trigger (pacer.c) and what is left of each after the
   * sweep: budget = goal - swept_bytes, tbudget = trigger - swept_bytes, so
   * each test compares one counter. Invariant: trigger <= goal. */
  uint64_t goal, budget, trigger, tbudget;

  /* A concurrent cycle's sweep (ref__heap_sweep_begin .. _end): the span
   * table as termination left it (old, nold), each span claimed by one
   * sweeper by index (xnext) and, if emptied, freed and its entry cleared;
   * xdone counts the spans finished; res, under res_lock, what they found;
   * est_objects and est_bytes, the live counts the mark gave. */
  ref__span **old;
  size_t nold, old_cap, nclaim; /* nclaim: nold at begin, fixed until the end */
  _Atomic size_t xnext, xdone;
  ref__spinlock res_lock;
  ref__sweep_result res;
  uint64_t est_objects, est_bytes;
  _Atomic bool xsweeping;
} H;

/* Bits set in x (the baseline x86-64 ISA has no popcnt instruction). */
static inline uint64_t popcount64(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ULL;
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return (x * 0x0101010101010101ULL) >> 56;
}

static void *limit_error(void) {
  ref__seterr("heap limit %zu MiB exceeded", ref__heap.heap_max >> 20);
  return NULL;
}

static inline uint32_t span_nwords(const ref__span *s) { return (s->nelems + 63) >> 6; }

static inline size_t page_of(uintptr_t a) { return (a - ref__heap.arena_lo) >> REF_PAGE_SHIFT; }
static inline uintptr_t page_addr(size_t pg) {
  return ref__heap.arena_lo + ((uintptr_t)pg << REF_PAGE_SHIFT);
}

static ref__span *span_struct_new(void) {
  ref__span *s = calloc(1, sizeof *s);
  if (s == NULL) ref__throw("heap: out of memory for span metadata");
  return s;
}

/* ---------------------------------------------------------------------------
 * Page allocator: free runs in size-segregated lists, coalesced on free
 * ------------------------------------------------------------------------- */

/* The dirty bits are written under the heap lock, and read under it too but
 * for a new large object's own pages (zero_dirty_pages), which share words
 * with pages a concurrent sweep may free meanwhile: relaxed atomics. */
static bool dirty_get(size_t pg) {
  return (__atomic_load_n(&H.dirty[pg >> 6], __ATOMIC_RELAXED) >> (pg & 63)) & 1;
}

static void dirty_set_range(size_t first, size_t n, bool v) {
  for (size_t pg = first, end = first + n; pg < end;) {
    size_t k = end - pg < 64 - (pg & 63) ? end - pg : 64 - (pg & 63); /* in this word */
    uint64_t bits = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << (pg & 63);
    if (v) __atomic_fetch_or(&H.dirty[pg >> 6], bits, __ATOMIC_RELAXED);
    else __atomic_fetch_and(&H.dirty[pg >> 6], ~bits, __ATOMIC_RELAXED);
    pg += k;
  }
}

static bool dirty_any(size_t first, size_t n) {
  for (size_t pg = first; pg < first + n; pg++)
    if (dirty_get(pg)) return true;
  return false;
}

static ref__span **free_list(size_t npages) {
  return npages < FREE_EXACT ? &H.free_exact[npages] : &H.free_large;
}

static void run_insert(ref__span *r) {
  ref__span **head = free_list(r->npages);
  r->prev = NULL;
  r->next = *head;
  if (*head) (*head)->prev = r;
  *head = r;
  size_t first = page_of(r->base);
  H.freemap[first] = r;
  H.freemap[first + r->npages - 1] = r;
}

static void run_remove(ref__span *r) {
  if (r->prev) r->prev->next = r->next;
  else *free_list(r->npages) = r->next;
  if (r->next) r->next->prev = r->prev;
  size_t first = page_of(r->base);
  H.freemap[first] = NULL;
  H.freemap[first + r->npages - 1] = NULL;
}

/* A free run of at least npages: the first of an exact list, else the best
 * fit (lowest address on ties) of the long runs; NULL if none. */
static ref__span *run_find(size_t npages) {
  for (size_t n = npages; n < FREE_EXACT; n++)
    if (H.free_exact[n]) return H.free_exact[n];
  ref__span *best = NULL;
  for (ref__span *r = H.free_large; r; r = r->next) {
    if (r->npages < npages) continue;
    if (!best || r->npages < best->npages || (r->npages == best->npages && r->base < best->base))
      best = r;
  }
  return best;
}

/* Takes npages pages: from a free run, else above the high-water mark.
 * Returns their address, or 0 when the arena is exhausted. */
static uintptr_t pages_alloc(size_t npages) {
  ref__span *r = run_find(npages);
  if (r) {
    run_remove(r);
    uintptr_t base = r->base;
    if (r->npages > npages) {
      r->base += (uintptr_t)npages << REF_PAGE_SHIFT;
      r->npages -= (uint32_t)npages;
      run_insert(r);
    } else {
      free(r);
    }
    return base;
  }
  if (npages > H.npages - H.hi_page) return 0;
  uintptr_t base = page_addr(H.hi_page);
  H.hi_page += npages;
  __atomic_store_n(&ref__heap.arena_hi, page_addr(H.hi_page), __ATOMIC_RELAXED);
  return base;
}

bool ref__heap_releasable(uintptr_t base, size_t npages) {
  uintptr_t mask = ref__os_page_size() - 1;
  return npages >= RELEASE_PAGES && ((base | (uintptr_t)npages << REF_PAGE_SHIFT) & mask) == 0;
}

/* Returns [base, base + npages pages) to the free runs, merging with free
 * neighbours. Long ranges go back to the OS and become clean (zero). */
static void pages_free(uintptr_t base, size_t npages) {
  size_t first = page_of(base), end = first + npages;
  if (ref__heap_releasable(base, npages)) {
    if (ref__os_decommit((void *)base, npages << REF_PAGE_SHIFT) != 0)
      ref__throw("heap: madvise(%p, %zu pages): errno %d", (void *)base, npages, errno);
    dirty_set_range(first, npages, false);
  } else {
    dirty_set_range(first, npages, true);
  }
  ref__span *r = first > 0 ? H.freemap[first - 1] : NULL;
  if (r) {
    run_remove(r);
    r->npages += (uint32_t)npages;
  } else {
    r = span_struct_new();
    r->state = REF_SPAN_FREE;
    r->base = base;
    r->npages = (uint32_t)npages;
  }
  ref__span *right = end < H.hi_page ? H.freemap[end] : NULL;
  if (right) {
    run_remove(right);
    r->npages += right->npages;
    free(right);
  }
  run_insert(r);
}

/* ---------------------------------------------------------------------------
 * Spans
 * ------------------------------------------------------------------------- */

/* Allocates the span's bitmaps and type array in one block: alloc bits,
 * mark bits and checkmark bits, a whole number of 64-bit words each. */
static void span_meta_alloc(ref__span *s) {
  size_t nwords = span_nwords(s);
  size_t bits = nwords * sizeof(uint64_t);
  size_t len = 3 * bits + (s->noscan ? 0 : s->nelems * sizeof(ref_type *));
  char *m = calloc(1, len);
  if (m == NULL) ref__throw("heap: out of memory for span bitmaps (%zu bytes)", len);
  s->allocbits = (uint64_t *)m;
  s->xmarkbits = (_Atomic uint8_t *)(m + bits);
  s->xcheckbits = (_Atomic uint8_t *)(m + 2 * bits);
  s->types = s->noscan ? NULL : (const ref_type **)(m + 3 * bits);
}

static void table_append(ref__span *s) {
  if (H.nspans == H.spans_cap && !REF_GROW(H.spans, H.spans_cap, 256))
    ref__throw("heap: out of memory for the span table (%zu spans)", H.spans_cap);
  s->tabidx = (uint32_t)H.nspans;
  H.spans[H.nspans++] = s;
}

/* A new in-use span of npages holding nelems slots of elemsize bytes, in the
 * span table and the page map, its alloc bits clear. NULL (with the limit
 * error set) when the heap limit or the arena would be exceeded. */
static ref__span *span_new_locked(size_t npages, int sizeclass, bool noscan, uintptr_t elemsize,
                                  uint32_t nelems) {
  size_t bytes = npages << REF_PAGE_SHIFT;
  if (bytes > ref__heap.heap_max - H.bytes_mapped) return limit_error();
  uintptr_t base = pages_alloc(npages);
  if (base == 0) return limit_error();
  ref__span *s = span_struct_new();
  s->base = base;
  s->elemsize = elemsize;
  s->nelems = nelems;
  s->limit = base + (uintptr_t)nelems * elemsize;
  s->divmul = sizeclass ? UINT32_MAX / (uint32_t)elemsize + 1 : 0;
  s->npages = (uint32_t)npages;
  s->sizeclass = (uint8_t)sizeclass;
  s->noscan = noscan;
  s->state = REF_SPAN_INUSE;
  s->needzero = dirty_any(page_of(base), npages);
  span_meta_alloc(s);
  size_t first = page_of(base);
  for (size_t i = 0; i < npages; i++) /* publishes s to concurrent markers (heap.h) */
    __atomic_store_n(&ref__heap.pagemap[first + i], s, __ATOMIC_RELEASE);
  table_append(s);
  H.bytes_mapped += bytes;
  return s;
}

static ref__span *span_new(size_t npages, int sizeclass, bool noscan, uintptr_t elemsize,
                           uint32_t nelems) {
  pthread_mutex_lock(&H.lock);
  ref__span *s = span_new_locked(npages, sizeclass, noscan, elemsize, nelems);
  pthread_mutex_unlock(&H.lock);
  return s;
}

/* Releases an in-use span that is no longer in the span table. */
static void span_free(ref__span *s) {
  size_t first = page_of(s->base);
  for (size_t i = 0; i < s->npages; i++) ref__heap.pagemap[first + i] = NULL;
  H.bytes_mapped -= (size_t)s->npages << REF_PAGE_SHIFT;
  pages_free(s->base, s->npages);
  free(s->allocbits);
  free(s);
}

/* ---------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------- */

/* Whether the mask words covering nwords words have a bit set. */
static inline bool mask_any(const uint64_t *mask, size_t nwords) {
  for (size_t i = 0; i < (nwords + 63) / 64; i++)
    if (mask[i]) return true;
  return false;
}

/* Pointer-free: no ptrmask, or one with no bit set. */
static inline bool type_noscan(const ref_type *t) {
  return t->ptrmask == NULL || !mask_any(t->ptrmask, t->size / REF_WORD);
}

/* The slots of word w that exist (the last word may be partial). */
static inline uint64_t word_valid(const ref__span *s, uint32_t w) {
  uint32_t rest = s->nelems - (w << 6);
  return rest >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << rest) - 1;
}

/* Loads the cache with the next alloc-bit word of its span that has free
 * slots, counting them as allocated. False (span dropped) when none is left. */
static bool cache_next_word(alloc_cache *ac) {
  ref__span *s = ac->span;
  uint32_t nwords = span_nwords(s);
  for (uint32_t w = ac->word + 1; w < nwords; w++) {
    uint64_t m = ~s->allocbits[w] & word_valid(s, w);
    if (m == 0) continue;
    ac->word = w;
    ac->freemask = m;
    ac->wordbase = ref__object_base(s, w << 6);
    ac->allocword = &s->allocbits[w];
    ac->types = s->types ? &s->types[w << 6] : NULL;
    ac->elemsize = s->elemsize;
    ac->needzero = s->needzero;
    uint64_t k = popcount64(m);
    atomic_fetch_add_explicit(&H.xalloc_objects, k, memory_order_relaxed);
    atomic_fetch_add_explicit(&H.xalloc_bytes, k * s->elemsize, memory_order_relaxed);
    return true;
  }
  ac->span = NULL;
  return false;
}

static ref__span *sweep_for(int c, bool noscan); /* the concurrent sweep's, below */

/* Refills an empty cache: the rest of its span, a partial span, one the
 * concurrent sweep gives it, or a new span. False (with the limit error
 * set) when no span can be had. */
static bool cache_refill(alloc_cache *ac, int c, bool noscan) {
  if (ac->span && cache_next_word(ac)) return true;
  for (;;) {
    ref__spin_lock(&H.partial_lock[c][noscan]);
    ref__span *s = H.partial[c][noscan];
    if (s) H.partial[c][noscan] = s->next;
    ref__spin_unlock(&H.partial_lock[c][noscan]);
    if (!s) s = sweep_for(c, noscan);
    if (s) {
      s->next = NULL;
    } else {
      size_t npages = ref__class_npages[c];
      uintptr_t size = ref__class_size[c];
      s = span_new(npages, c, noscan, size, (uint32_t)((npages << REF_PAGE_SHIFT) / size));
      if (s == NULL) return false;
    }
    ac->span = s;
    ac->word = UINT32_MAX; /* next word: 0 */
    if (cache_next_word(ac)) return true;
  }
}

/* While a concurrent cycle marks, an object is allocated black: its mark bit
 * is set before its alloc bit (the release store after this), so no marker
 * greys or scans it while its owner zeroes and fills it. */
static ref_noinline void alloc_black(uintptr_t p) {
  ref__span *s = ref__span_of(p);
  uint32_t idx = s->sizeclass ? (uint32_t)(((uint64_t)(p - s->base) * s->divmul) >> 32) : 0;
  if (ref__bit_tryset(&s->xmarkbits[idx >> 3], (uint8_t)(1u << (idx & 7)))) {
    ref__worker *w = ref__cgc_mworker(); /* live at the sweep: the mark's count */
    w->black_objects++;
    w->black_bytes += s->elemsize;
  }
}

/* Pops the lowest free slot of a loaded cache. */
static inline void *cache_pop(alloc_cache *ac, const ref_type *t) {
  ref_assert_internal(ref__stw_allows(ref__m_get()));
  uint64_t m = ac->freemask;
  uint32_t k = (uint32_t)__builtin_ctzll(m);
  ac->freemask = m & (m - 1);
  void *p = (void *)(ac->wordbase + k * ac->elemsize);
  if (ref_unlikely(__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED))) alloc_black((uintptr_t)p);
  __atomic_store_n(ac->allocword, *ac->allocword | (uint64_t)1 << k, __ATOMIC_RELEASE);
  if (ac->types) {
    ac->types[k] = t;
    ref__span_note_type(ac->span, t);
  }
  if (ac->needzero) memset(p, 0, ac->elemsize);
  return p;
}

/* Zeroes the pages of [p, p + len) that may hold old bytes. */
static void zero_dirty_pages(uintptr_t p, size_t len) {
  size_t first = page_of(p), n = (len + REF_PAGE_SIZE - 1) >> REF_PAGE_SHIFT;
  for (size_t i = 0; i < n; i++) {
    if (!dirty_get(first + i)) continue;
    size_t off = i << REF_PAGE_SHIFT;
    size_t chunk = len - off < REF_PAGE_SIZE ? len - off : REF_PAGE_SIZE;
    memset((void *)(p + off), 0, chunk);
  }
}

/* An object above REF_MAX_SMALL_SIZE in a span of its own. */
static ref_noinline void *alloc_large(const ref_type *t, size_t size, bool noscan) {
  if (size > ref__heap.heap_max) return limit_error();
  uintptr_t elemsize = ref_align_up(size, REF_WORD);
  size_t npages = (elemsize + REF_PAGE_SIZE - 1) >> REF_PAGE_SHIFT;
  ref__span *s = span_new(npages, 0, noscan, elemsize, 1);
  if (s == NULL) return NULL;
  if (ref_unlikely(__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED))) alloc_black(s->base);
  __atomic_store_n(&s->allocbits[0], 1, __ATOMIC_RELEASE);
  if (s->types) {
    s->types[0] = t;
    ref__span_note_type(s, t);
  }
  if (s->needzero) zero_dirty_pages(s->base, elemsize);
  s->needzero = 0;
  atomic_fetch_add_explicit(&H.xalloc_objects, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&H.xalloc_bytes, elemsize, memory_order_relaxed);
  return (void *)s->base;
}

/* A type with a bitmap and a size that is not a whole number of words: if
 * the bitmap has a bit set, its elements' words would not line up with it
 * (ref.h refuses such types). */
static inline bool type_misaligned(const ref_type *t) {
  return (t->size & (REF_WORD - 1)) != 0 && t->ptrmask != NULL;
}

/* Sets *size to n elements of t; false (with the error set) when that
 * overflows or t cannot be allocated. */
static bool request_ok(const ref_type *t, size_t n, size_t *size) {
  if (__builtin_mul_overflow(t->size, n, size)) {
    ref__seterr("allocation size out of range: %zu elements of %zu bytes", n, t->size);
    return false;
  }
  if (type_misaligned(t) && mask_any(t->ptrmask, ref_align_up(t->size, REF_WORD) / REF_WORD)) {
    ref__seterr("type %s has pointers and %zu bytes, not a multiple of %zu",
                t->name ? t->name : "?", t->size, REF_WORD);
    return false;
  }
  return true;
}

/* The calling M's P's caches (P 0's for a heap started alone, by tests). */
static inline mcache *my_mcache(void) {
  ref__m *m = ref__m_get();
  return &H.mcaches[m ? m->id : 0];
}

/* Everything but a small object from a loaded cache: refills, large
 * objects, refused requests, and 0-byte ones (a 0-byte type or 0 elements),
 * which get a distinct object of the smallest class. */
static ref_noinline void *alloc_slow(const ref_type *t, size_t n) {
  ref_assert(H.inited && t != NULL);
  size_t size;
  if (!request_ok(t, n, &size)) return NULL;
  bool noscan = type_noscan(t);
  if (size > REF_MAX_SMALL_SIZE) return alloc_large(t, size, noscan);
  int c = ref__size_to_class(size ? size : 1);
  alloc_cache *ac = &my_mcache()->c[c][noscan];
  if (ac->freemask == 0 && !cache_refill(ac, c, noscan)) return NULL;
  return cache_pop(ac, t);
}

/* The fast path: a small object from a loaded cache, in a few instructions. */
static inline void *heap_alloc(const ref_type *t, size_t n) {
  size_t size;
  if (ref_unlikely(__builtin_mul_overflow(t->size, n, &size) || size - 1 >= REF_MAX_SMALL_SIZE ||
                   type_misaligned(t)))
    return alloc_slow(t, n);
  alloc_cache *ac = &my_mcache()->c[ref__size_to_class(size)][type_noscan(t)];
  if (ref_unlikely(ac->freemask == 0)) return alloc_slow(t, n);
  return cache_pop(ac, t);
}

void *ref__heap_alloc(const ref_type *t, size_t n) { return heap_alloc(t, n); }

/* Public allocation, a safepoint: over the GOGC trigger, collect first (in
 * stw the trigger is the goal; alloc bytes change only on a refill, so this
 * fires once per crossing), or in a concurrent mode start a background
 * cycle; on the limit, collect and retry: once in stw, up to
 * LIMIT_TRIES times in a concurrent mode, where the other goroutines
 * allocate (black) while the cycle marks and may fill what it frees before
 * the retry (torture found a 1 MiB limit refused with a sixth of it live). */
#define LIMIT_TRIES 4
void *ref_alloc_array(const ref_type *elem, size_t n) {
  REF_RUNTIME_CALL();
  ref_poll();
  if (ref_unlikely(ref__heap_over_trigger())) ref__gc_start(REF_GC_HEAP);
  void *p = heap_alloc(elem, n);
  if (ref_likely(p != NULL)) {
    ref__cgc_alloc(elem->size * n); /* assists while a concurrent cycle marks */
    return p;
  }
  size_t size;
  if (!request_ok(elem, n, &size) || size > ref__heap.heap_max) return NULL; /* error set */
  int tries = ref__cfg.mode == REF_MODE_STW ? 1 : LIMIT_TRIES;
  for (int i = 0; i < tries && p == NULL; i++) {
    ref__gc_start(REF_GC_LIMIT);
    p = heap_alloc(elem, n); /* NULL: the limit error is set */
  }
  if (p) ref__cgc_alloc(elem->size * n);
  return p;
}

bool ref__heap_over_goal(void) {
  return atomic_load_explicit(&H.xalloc_bytes, memory_order_relaxed) > H.budget;
}

bool ref__heap_over_trigger(void) {
  return atomic_load_explicit(&H.xalloc_bytes, memory_order_relaxed) > H.tbudget;
}

uint64_t ref__heap_counted(void) {
  return H.swept_bytes + atomic_load_explicit(&H.xalloc_bytes, memory_order_relaxed);
}

uint64_t ref__heap_goal(void) { return H.goal; }

void ref__heap_set_goal(uint64_t goal, uint64_t trigger) {
  ref_assert(trigger <= goal);
  H.goal = goal;
  H.budget = goal > H.swept_bytes ? goal - H.swept_bytes : 0;
  H.trigger = trigger;
  H.tbudget = trigger > H.swept_bytes ? trigger - H.swept_bytes : 0;
}

void *ref_alloc(const ref_type *t) { return ref_alloc_array(t, 1); }

/* ---------------------------------------------------------------------------
 * Sweep
 * ------------------------------------------------------------------------- */

/* Mark bits of slots [w*64, w*64+64) as one word (bit k = slot w*64+k). */
static inline uint64_t mark_word(const ref__span *s, uint32_t w) {
  uint64_t m = 0;
  for (int b = 0; b < 8; b++)
    m |= (uint64_t)atomic_load_explicit(&s->xmarkbits[w * 8 + b], memory_order_relaxed) << (8 * b);
  return m;
}

static void poison_slots(const ref__span *s, uint32_t w, uint64_t freed) {
  for (; freed; freed &= freed - 1) {
    uint32_t i = (w << 6) + (uint32_t)__builtin_ctzll(freed);
    memset((void *)ref__object_base(s, i), 0xfe, s->elemsize);
  }
}

/* Sweeps one span; touches nothing but the span and *out. A large span that
 * will be given back to the OS is not poisoned (its pages read as zero). */
static void span_sweep(ref__span *s, ref__sweep_result *out) {
  uint32_t nwords = span_nwords(s);
  bool released =
      s->sizeclass == 0 && ref__heap_releasable(s->base, s->npages) && !ref__is_marked(s, 0);
  bool poison = ref__cfg.poison && !released;
  uint64_t live = 0, freed = 0;
  for (uint32_t w = 0; w < nwords; w++) {
    uint64_t a = s->allocbits[w], m = mark_word(s, w);
    if (ref_unlikely(m & ~a))
      ref__throw("heap: span %p word %u: marked free slots %#llx", (void *)s->base, w,
                 (unsigned long long)(m & ~a));
    uint64_t f = a & ~m;
    if (f && poison) poison_slots(s, w, f);
    freed += popcount64(f);
    live += popcount64(m);
    s->allocbits[w] = m;
  }
  memset((void *)s->xmarkbits, 0, nwords * sizeof(uint64_t));
  s->nlive = (uint32_t)live;
  if (freed) s->needzero = 1;
  out->objects_freed += freed;
  out->bytes_freed += freed * s->elemsize;
  out->objects_live += live;
  out->bytes_live += live * s->elemsize;
  out->spans_swept++;
  out->spans_emptied += live == 0;
}

void ref__heap_sweep_part(int part, int nparts, ref__sweep_result *out) {
  ref_assert(nparts >= 1 && part >= 0 && part < nparts);
  memset(out, 0, sizeof *out);
  size_t n = H.nspans;
  size_t lo = (size_t)part * n / (size_t)nparts, hi = ((size_t)part + 1) * n / (size_t)nparts;
  for (size_t i = lo; i < hi; i++) span_sweep(H.spans[i], out);
}

void ref__heap_sweep_finish(const ref__sweep_result *parts, int nparts) {
  memset(H.mcaches, 0, sizeof *H.mcaches * (size_t)H.nmcaches);
  memset(H.partial, 0, sizeof H.partial);
  H.swept_objects = H.swept_bytes = 0;
  atomic_store(&H.xalloc_objects, 0);
  atomic_store(&H.xalloc_bytes, 0);
  for (int p = 0; p < nparts; p++) {
    H.swept_objects += parts[p].objects_live;
    H.swept_bytes += parts[p].bytes_live;
  }
  size_t j = 0;
  for (size_t i = 0; i < H.nspans; i++) {
    ref__span *s = H.spans[i];
    if (s->nlive == 0) {
      span_free(s);
      continue;
    }
    s->tabidx = (uint32_t)j;
    H.spans[j++] = s;
  }
  H.nspans = j;
  /* Backwards, so that each list hands out its lowest-addressed span first. */
  for (size_t i = H.nspans; i-- > 0;) {
    ref__span *s = H.spans[i];
    if (s->nlive == s->nelems) continue;
    s->next = H.partial[s->sizeclass][s->noscan];
    H.partial[s->sizeclass][s->noscan] = s;
  }
  ref_assert_expensive((ref__heap_check(), true));
}

/* The concurrent modes' sweep runs with the world going (heap.h): a span of
 * the old table is in no cache and no partial list until its sweeper puts
 * it there, so the sweeper alone reads and writes its bits; emptied spans
 * go back to the page heap under its lock. */
void ref__heap_sweep_begin(uint64_t live_objects, uint64_t live_bytes) {
  ref_assert(!atomic_load(&H.xsweeping));
  memset(H.mcaches, 0, sizeof *H.mcaches * (size_t)H.nmcaches);
  memset(H.partial, 0, sizeof H.partial);
  H.swept_objects = H.est_objects = live_objects;
  H.swept_bytes = H.est_bytes = live_bytes;
  atomic_store(&H.xalloc_objects, 0);
  atomic_store(&H.xalloc_bytes, 0);
  ref__span **spare = H.old;
  size_t spare_cap = H.old_cap;
  H.old = H.spans, H.nold = H.nclaim = H.nspans, H.old_cap = H.spans_cap;
  H.spans = spare, H.nspans = 0, H.spans_cap = spare_cap;
  atomic_store(&H.xnext, 0);
  atomic_store(&H.xdone, 0);
  memset(&H.res, 0, sizeof H.res);
  atomic_store(&H.xsweeping, true);
}

/* Claims and sweeps the next span of the old table: false when none is
 * left. A span with free slots goes to its class's partial list, or to
 * *want when the caller wants one of class c / noscan and has none yet. */
static bool sweep_one(int c, bool noscan, ref__span **want) {
  size_t i = atomic_fetch_add_explicit(&H.xnext, 1, memory_order_relaxed);
  if (i >= H.nclaim) return false;
  ref__span *s = H.old[i];
  ref__sweep_result r = {0};
  span_sweep(s, &r);
  if (s->nlive == 0) {
    pthread_mutex_lock(&H.lock);
    span_free(s);
    pthread_mutex_unlock(&H.lock);
    H.old[i] = NULL;
  } else if (s->nlive < s->nelems) {
    if (want && !*want && s->sizeclass == c && s->noscan == noscan) {
      *want = s;
    } else {
      ref__spin_lock(&H.partial_lock[s->sizeclass][s->noscan]);
      s->next = H.partial[s->sizeclass][s->noscan];
      H.partial[s->sizeclass][s->noscan] = s;
      ref__spin_unlock(&H.partial_lock[s->sizeclass][s->noscan]);
    }
  }
  ref__spin_lock(&H.res_lock);
  H.res.objects_freed += r.objects_freed, H.res.bytes_freed += r.bytes_freed;
  H.res.objects_live += r.objects_live, H.res.bytes_live += r.bytes_live;
  H.res.spans_swept += r.spans_swept, H.res.spans_emptied += r.spans_emptied;
  ref__spin_unlock(&H.res_lock);
  atomic_fetch_add_explicit(&H.xdone, 1, memory_order_release);
  return true;
}

/* A refill while the sweep runs sweeps spans until one of its class has
 * room (Go's mcentral.cacheSpan sweeping), so the window's allocations
 * reuse what the cycle freed instead of growing the heap. */
_Atomic uint64_t ref__refill_sweeps;

static ref__span *sweep_for(int c, bool noscan) {
  ref__span *s = NULL;
  while (!s && atomic_load_explicit(&H.xsweeping, memory_order_relaxed) && sweep_one(c, noscan, &s))
    atomic_fetch_add_explicit(&ref__refill_sweeps, 1, memory_order_relaxed);
  return s;
}

void ref__heap_sweep_help(void) {
  while (atomic_load_explicit(&H.xsweeping, memory_order_relaxed) && sweep_one(0, false, NULL)) {
  }
}

void ref__heap_sweep_run(void) {
  ref__heap_sweep_help();
  /* The other sweepers are in refills, with no safepoint: they finish. */
  while (atomic_load_explicit(&H.xdone, memory_order_acquire) < H.nclaim) sched_yield();
  size_t j = 0;
  for (size_t i = 0; i < H.nold; i++) {
    ref__span *s = H.old[i];
    if (!s) continue;
    s->tabidx = (uint32_t)j;
    H.old[j++] = s;
  }
  H.nold = j;
}

void ref__heap_sweep_end(ref__sweep_result *out) {
  ref_assert(atomic_load(&H.xsweeping));
  size_t n = H.nold + H.nspans;
  while (H.old_cap < n)
    if (!REF_GROW(H.old, H.old_cap, 256))
      ref__throw("heap: out of memory for the span table (%zu spans)", n);
  for (size_t i = 0; i < H.nspans; i++) {
    ref__span *s = H.spans[i];
    s->tabidx = (uint32_t)(H.nold + i);
    H.old[H.nold + i] = s;
  }
  ref__span **spare = H.spans;
  size_t spare_cap = H.spans_cap;
  H.spans = H.old, H.nspans = n, H.spans_cap = H.old_cap;
  H.old = spare, H.nold = 0, H.old_cap = spare_cap;
  atomic_store(&H.xsweeping, false);
  /* What the mark counted is what the sweep kept. */
  if (H.res.objects_live != H.est_objects || H.res.bytes_live != H.est_bytes)
    ref__throw("sweep kept %llu objects (%llu bytes) but the mark counted %llu (%llu bytes)",
               (unsigned long long)H.res.objects_live, (unsigned long long)H.res.bytes_live,
               (unsigned long long)H.est_objects, (unsigned long long)H.est_bytes);
  *out = H.res;
  ref_assert_expensive((ref__heap_check(), true));
}

/* ---------------------------------------------------------------------------
 * Iteration, checkmarks, stats
 * ------------------------------------------------------------------------- */

size_t ref__heap_nspans(void) { return H.nspans; }

ref__span *ref__heap_span(size_t i) {
  ref_assert_internal(i < H.nspans);
  return H.spans[i];
}

void ref__checkmark_clear_all(void) {
  for (size_t i = 0; i < H.nspans; i++) {
    ref__span *s = H.spans[i];
    memset((void *)s->xcheckbits, 0, span_nwords(s) * sizeof(uint64_t));
  }
}

/* Reads every P's caches: the world is stopped (ref_heap_stats_get). */
static void heap_stats(void *arg) {
  ref_heap_stats *st = arg;
  uint64_t alloc_objects = atomic_load(&H.xalloc_objects), alloc_bytes = atomic_load(&H.xalloc_bytes);
  uint64_t objects = H.swept_objects + alloc_objects;
  uint64_t bytes = H.swept_bytes + alloc_bytes;
  for (int p = 0; p < H.nmcaches; p++) {
    for (int c = 0; c < REF_NUM_CLASSES; c++) {
      for (int ns = 0; ns < 2; ns++) {
        const alloc_cache *ac = &H.mcaches[p].c[c][ns];
        uint64_t k = popcount64(ac->freemask);
        objects -= k;
        bytes -= k ? k * ac->span->elemsize : 0;
      }
    }
  }
  st->objects_live = (size_t)objects;
  st->bytes_live = (size_t)bytes;
  st->bytes_mapped = H.bytes_mapped;
  st->bytes_counted = (size_t)(H.swept_bytes + alloc_bytes);
  st->heap_goal = H.goal > SIZE_MAX ? SIZE_MAX : (size_t)H.goal;
  st->heap_trigger = H.trigger > SIZE_MAX ? SIZE_MAX : (size_t)H.trigger;
}

void ref_heap_stats_get(ref_heap_stats *st) {
  REF_RUNTIME_CALL();
  ref__cgc_wait_swept(); /* "after the last sweep": not while one runs */
  ref__with_world_stopped(heap_stats, st);
}

/* ---------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------- */

/* An anonymous reserve-only mapping (pages are touched lazily), backed by
 * transparent huge pages where the kernel allows: the collector touches the
 * heap and its metadata at random, and 4 KiB TLB misses dominate otherwise. */
static void *reserve(size_t len) { return ref__os_map(len, true, true); }

#define HUGE_PAGE ((size_t)2 << 20)

int ref__heap_init(size_t heap_max, int nprocs) {
  ref_assert(!H.inited);
  if (heap_max < REF_PAGE_SIZE || heap_max > REF_MAX_HEAP)
    return ref__seterr("heap: heap_max %zu out of range [8 KiB, 1 TiB]", heap_max);
  ref__sizeclass_init();
  memset(&H, 0, sizeof H);
  memset(&ref__heap, 0, sizeof ref__heap);
  size_t arena = 2 * ref_align_up(heap_max, REF_PAGE_SIZE);
  H.arena_map_len = arena + HUGE_PAGE; /* room to align to a huge page */
  H.arena_map = reserve(H.arena_map_len);
  if (H.arena_map == NULL) goto fail_arena;
  H.npages = arena >> REF_PAGE_SHIFT;
  size_t dirty_len = ref_align_up((H.npages + 63) / 64 * sizeof(uint64_t), 64);
  H.meta_len = 2 * H.npages * sizeof(ref__span *) + dirty_len;
  H.meta_map = reserve(H.meta_len);
  if (H.meta_map == NULL) goto fail_meta;
  ref__heap.arena_lo = ref_align_up((uintptr_t)H.arena_map, HUGE_PAGE);
  ref__heap.arena_hi = ref__heap.arena_lo;
  ref__heap.heap_max = heap_max;
  ref__heap.pagemap = (ref__span **)H.meta_map;
  H.freemap = ref__heap.pagemap + H.npages;
  H.dirty = (uint64_t *)(H.freemap + H.npages);
  ref__heap_set_goal(UINT64_MAX, UINT64_MAX); /* no trigger until the pacer sets a goal */
  ref_assert(nprocs >= 1);
  H.nmcaches = nprocs;
  H.mcaches = aligned_alloc(REF_CACHE_LINE, sizeof *H.mcaches * (size_t)H.nmcaches);
  if (H.mcaches == NULL) {
    ref__os_unmap(H.meta_map, H.meta_len);
    ref__os_unmap(H.arena_map, H.arena_map_len);
    memset(&H, 0, sizeof H);
    return ref__seterr("heap: out of memory for %d allocation caches", nprocs);
  }
  memset(H.mcaches, 0, sizeof *H.mcaches * (size_t)H.nmcaches);
  pthread_mutex_init(&H.lock, NULL);
  H.inited = true;
  return 0;

fail_meta:
  ref__os_unmap(H.arena_map, H.arena_map_len);
fail_arena:
  memset(&H, 0, sizeof H);
  return ref__seterr("heap: cannot reserve %zu MiB of address space: errno %d",
                     (arena + HUGE_PAGE) >> 20, errno);
}

static void free_runs_release(ref__span *r) {
  while (r) {
    ref__span *next = r->next;
    free(r);
    r = next;
  }
}

void ref__heap_shutdown(void) {
  if (!H.inited) return;
  ref_assert(!atomic_load(&H.xsweeping));
  for (size_t i = 0; i < H.nspans; i++) {
    free(H.spans[i]->allocbits);
    free(H.spans[i]);
  }
  free(H.spans);
  free(H.old); /* the sweep's spare table */
  for (size_t n = 0; n < FREE_EXACT; n++) free_runs_release(H.free_exact[n]);
  free_runs_release(H.free_large);
  ref__os_unmap(H.meta_map, H.meta_len);
  ref__os_unmap(H.arena_map, H.arena_map_len);
  free(H.mcaches);
  pthread_mutex_destroy(&H.lock);
  memset(&H, 0, sizeof H);
  memset(&ref__heap, 0, sizeof ref__heap);
}

/* ---------------------------------------------------------------------------
 * Validator
 * ------------------------------------------------------------------------- */

#define CHECK(cond, ...)                                                        \
  do {                                                                          \
    if (!(cond)) ref__throw("heap check: " __VA_ARGS__);                        \
  } while (0)

/* Size, class and bitmap consistency of one in-use span. */
static void check_span(const ref__span *s, size_t i) {
  void *b = (void *)s->base;
  CHECK(s->state == REF_SPAN_INUSE && s->tabidx == i, "span %zu at %p: state %d tabidx %u", i, b,
        s->state, s->tabidx);
  CHECK(s->base % REF_PAGE_SIZE == 0 && s->base >= ref__heap.arena_lo && s->npages > 0 &&
            s->base + ((uintptr_t)s->npages << REF_PAGE_SHIFT) <= ref__heap.arena_hi,
        "span %zu at %p: %u pages outside the arena", i, b, s->npages);
  CHECK(s->limit == s->base + (uintptr_t)s->nelems * s->elemsize &&
            s->limit <= s->base + ((uintptr_t)s->npages << REF_PAGE_SHIFT),
        "span %zu at %p: limit %#lx for %u x %lu", i, b, (unsigned long)s->limit, s->nelems,
        (unsigned long)s->elemsize);
  if (s->sizeclass) {
    int c = s->sizeclass;
    CHECK(c < REF_NUM_CLASSES && s->elemsize == ref__class_size[c] &&
              s->npages == ref__class_npages[c] &&
              s->nelems == (s->npages << REF_PAGE_SHIFT) / s->elemsize &&
              s->divmul == UINT32_MAX / s->elemsize + 1,
          "span %zu at %p: bad geometry for class %d", i, b, c);
  } else {
    CHECK(s->nelems == 1 && s->divmul == 0 && s->elemsize > REF_MAX_SMALL_SIZE &&
              s->elemsize > ((uintptr_t)s->npages - 1) << REF_PAGE_SHIFT,
          "span %zu at %p: bad large-object geometry", i, b);
  }
  CHECK((s->types == NULL) == (s->noscan != 0), "span %zu at %p: noscan %d with types %p", i, b,
        s->noscan, (void *)s->types);
  const ref_type *t1 = atomic_load_explicit(&s->xtype1, memory_order_relaxed);
  for (uint32_t k = 0; s->types && t1 != REF_SPAN_MIXED && k < s->nelems; k++)
    CHECK(!ref__span_is_allocated(s, k) || s->types[k] == t1,
          "span %zu at %p: slot %u has type %p, the span's one type is %p", i, b, k,
          (const void *)s->types[k], (const void *)t1);
  for (uint32_t w = 0; w < span_nwords(s); w++) {
    uint64_t a = s->allocbits[w], m = mark_word(s, w);
    CHECK((a & ~word_valid(s, w)) == 0, "span %zu at %p: alloc bits beyond nelems", i, b);
    CHECK((m & ~a) == 0, "span %zu at %p: marked free slots in word %u", i, b, w);
  }
  size_t first = page_of(s->base);
  for (size_t p = 0; p < s->npages; p++)
    CHECK(ref__heap.pagemap[first + p] == s, "span %zu at %p: page %zu maps to %p", i, b, p,
          (void *)ref__heap.pagemap[first + p]);
}

/* The pages below the high-water mark are tiled exactly by in-use spans and
 * free runs, and the free runs are on their lists. */
static void check_pages(void) {
  size_t pg = 0, used = 0, nruns = 0, listed = 0;
  while (pg < H.hi_page) {
    ref__span *s = ref__heap.pagemap[pg], *r = H.freemap[pg];
    CHECK((s != NULL) != (r != NULL), "page %zu: span %p and free run %p", pg, (void *)s,
          (void *)r);
    ref__span *x = s ? s : r;
    CHECK(x->base == page_addr(pg), "page %zu: run starts at %p", pg, (void *)x->base);
    if (r) {
      CHECK(r->state == REF_SPAN_FREE && H.freemap[pg + r->npages - 1] == r,
            "free run at page %zu: bad state or end", pg);
      for (size_t k = 0; k < r->npages; k++)
        CHECK(ref__heap.pagemap[pg + k] == NULL, "free run at page %zu: page %zu mapped", pg, k);
      nruns++;
    } else {
      used += s->npages;
    }
    pg += x->npages;
  }
  CHECK(pg == H.hi_page, "pages overrun the high-water mark");
  CHECK(used << REF_PAGE_SHIFT == H.bytes_mapped && H.bytes_mapped <= ref__heap.heap_max,
        "%zu pages in spans, %zu bytes mapped", used, H.bytes_mapped);
  for (size_t n = 0; n <= FREE_EXACT; n++) {
    for (ref__span *r = n < FREE_EXACT ? H.free_exact[n] : H.free_large; r; r = r->next) {
      CHECK(n == FREE_EXACT ? r->npages >= FREE_EXACT : r->npages == n,
            "free run of %u pages on list %zu", r->npages, n);
      CHECK(H.freemap[page_of(r->base)] == r, "listed free run at %p not in the free map",
            (void *)r->base);
      listed++;
    }
  }
  CHECK(listed == nruns, "%zu free runs listed, %zu in the arena", listed, nruns);
}

/* Caches and partial lists hold in-use spans of their own class. */
static void check_lists(void) {
  for (int c = 0; c < REF_NUM_CLASSES; c++) {
    for (int ns = 0; ns < 2; ns++) {
      for (int p = 0; p < H.nmcaches; p++) {
        const alloc_cache *ac = &H.mcaches[p].c[c][ns];
        if (!ac->freemask) continue;
        const ref__span *s = ac->span;
        CHECK(s && s->state == REF_SPAN_INUSE && s->sizeclass == c && s->noscan == ns &&
                  ac->allocword == &s->allocbits[ac->word] &&
                  ac->wordbase == ref__object_base(s, ac->word << 6) &&
                  (ac->freemask & s->allocbits[ac->word]) == 0,
              "P %d's cache %d/%d inconsistent", p, c, ns);
      }
      for (const ref__span *s = H.partial[c][ns]; s; s = s->next)
        CHECK(s->state == REF_SPAN_INUSE && s->sizeclass == c && s->noscan == ns &&
                  H.spans[s->tabidx] == s,
              "partial list %d/%d holds span %p", c, ns, (void *)s->base);
    }
  }
}

void ref__heap_check(void) {
  if (!H.inited) return;
  for (size_t i = 0; i < H.nspans; i++) check_span(H.spans[i], i);
  check_pages();
  check_lists();
}
