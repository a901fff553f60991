/*
 * mark.c: greying candidates, scanning heap objects, and the drain loop.
 *
 * Objects are scanned precisely by their type's pointer bitmap, repeated
 * over the elements of an array. A large object is scanned in oblets of
 * REF_OBLET_BYTES: the worker that greys it scans the first oblet and
 * queues the start address of every other one, so one huge array spreads
 * over all workers (Go 1.9's oblets).
 */
#include "gc.h"

#include <string.h>

/* Looks up and marks the batched candidates. The span-table entries are
 * prefetched for the whole batch first: they are the cold misses.
 *
 * A candidate this worker has looked up before in this cycle is dropped
 * first: w->seen holds the last candidate to fall in each of its words
 * (a hash of the word's value). A stack holds the same few pointers many
 * times over (a frame's slot, its spilled callee-saved registers, the
 * caller's copy): 1000 parked GoroutineBlocking readers feed 8 candidates
 * each and name 3 objects. Sound because a candidate looked up this cycle
 * was marked then, if it named an object, and a mark lasts the cycle; an
 * object allocated since is allocated black (a concurrent cycle) or was
 * not (a stopped world allocates nothing). The filter is zeroed when the
 * worker's cycle starts (ref__ptrbuf_reset; no candidate is 0: the arena
 * starts above it), so no entry outlives the marks it stands for; the
 * checkmark verifier does not come through here. A recording stack's words
 * are recorded before the filter, all of them: a word dropped here may have
 * been looked up for another stack, and a record stands alone when it is
 * replayed in a later cycle. */
static inline uintptr_t *seen_word(ref__worker *w, uintptr_t v) {
  return &w->seen[(v * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - 6)];
}
_Static_assert(REF_SEEN == 64, "seen_word's hash keeps 6 bits");

void ref__ptrbuf_flush(ref__worker *w) {
  size_t n = w->nptr, m = 0;
  const uintptr_t alo = ref__heap.arena_lo;
  ref__record(w, w->ptrbuf, n);
  for (size_t i = 0; i < n; i++) {
    uintptr_t v = w->ptrbuf[i], *s = seen_word(w, v);
    if (*s == v) continue;
    *s = v;
    w->ptrbuf[m++] = v;
    __builtin_prefetch(&ref__heap.pagemap[(v - alo) >> REF_PAGE_SHIFT]);
  }
  for (size_t i = 0; i < m; i++) ref__mark_ptr(w, w->ptrbuf[i]);
  w->nptr = 0;
}

void ref__ptrbuf_reset(ref__worker *w) {
  w->nptr = 0;
  memset(w->seen, 0, sizeof w->seen);
}

/* Marks what the pointer words at p that bits selects point to. */
static inline void mark_bits(ref__worker *w, const uintptr_t *p, uint64_t bits) {
  const uintptr_t alo = ref__heap.arena_lo, span = ref__heap_arena_size();
  for (; bits != 0; bits &= bits - 1) {
    /* Atomic: ref_store may race it (barrier.c). */
    uintptr_t v = __atomic_load_n(p + __builtin_ctzll(bits), __ATOMIC_RELAXED);
    if (v - alo < span) ref__mark_ptr(w, v);
  }
}

/* Bits [0, n) of a mask word, n <= 64. */
static inline uint64_t low_bits(size_t n) {
  return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

/* Marks what the pointer words of [p, end) point to; p lies `word` words
 * into an element of type t (0 <= word < t's words). Walks the set bits of
 * each element's mask, not every word: most words of most objects are not
 * pointers (GoroutineBlocking n=1000, conservative-serial: 1 in 4), and a
 * per-word test cost about 12 instructions a word, 1.2 of the cycle's 8.7
 * million (callgrind). */
static void scan_typed(ref__worker *w, const uintptr_t *p, const uintptr_t *end, const ref_type *t,
                       size_t word) {
  const size_t nwords = t->size / REF_WORD;
  const uint64_t *mask = t->ptrmask;
  const uintptr_t *e = p - word; /* the element p is in */
  if (nwords <= 64) {            /* one mask word: most types */
    uint64_t m = mask[0] & low_bits(nwords);
    for (uint64_t bits = m & ~low_bits(word); e < end; e += nwords, bits = m) {
      if ((size_t)(end - e) < nwords) bits &= low_bits((size_t)(end - e));
      mark_bits(w, e, bits);
    }
    return;
  }
  for (; e < end; e += nwords, word = 0) {
    size_t lim = (size_t)(end - e) < nwords ? (size_t)(end - e) : nwords;
    for (size_t j = word >> 6; j << 6 < lim; j++) {
      uint64_t bits = mask[j] & low_bits(lim - (j << 6));
      if (j == word >> 6) bits &= ~low_bits(word & 63);
      mark_bits(w, e + (j << 6), bits);
    }
  }
}

void ref__scanobject(ref__worker *w, uintptr_t b) {
  ref__span *s = NULL;
  uint32_t idx = 0;
  uintptr_t base = ref__find_object(b, &s, &idx);
  ref_assert_internal(base != 0);
  ref__scanobject_at(w, b, base, s, idx);
}

void ref__scanobject_at(ref__worker *w, uintptr_t b, uintptr_t base, ref__span *s, uint32_t idx) {
  const ref_type *t = ref__object_type(s, idx);
  uintptr_t size = ref__object_size(s);
  /* Most objects: one element of at most 64 words, scanned whole. */
  if (t && t->ptrmask && b == base && t->size >= REF_WORD && size < 2 * t->size &&
      t->size <= 64 * REF_WORD && size <= REF_OBLET_BYTES) {
    mark_bits(w, (const uintptr_t *)base, t->ptrmask[0] & low_bits(t->size / REF_WORD));
    return;
  }
  uintptr_t end = base + size;
  if (size > REF_OBLET_BYTES) {
    if (b == base)
      for (uintptr_t o = base + REF_OBLET_BYTES; o < end; o += REF_OBLET_BYTES)
        ref__gcw_put(&w->gcw, o);
    if (end - b > REF_OBLET_BYTES) end = b + REF_OBLET_BYTES;
  }
  if (!t || !t->ptrmask || t->size < REF_WORD) return;
  uintptr_t elem = t->size;
  /* The rounding tail holds no elements. Most objects are one element and
   * need no 64-bit div (tens of cycles). */
  uintptr_t full = base + (size < 2 * elem ? elem : size - size % elem);
  if (end > full) end = full;
  if (b >= end) return;
  size_t word = b == base ? 0 : ((b - base) % elem) / REF_WORD; /* an oblet starts mid-element */
  scan_typed(w, (const uintptr_t *)b, (const uintptr_t *)end, t, word);
}

/* Starts fetching the item the worker will pop NEXT_AHEAD pops from now
 * (from the top of its current buffer): an object, or a stack part.
 * Objects greyed together are scanned together, cold. */
#ifndef NEXT_AHEAD
#define NEXT_AHEAD 4
#endif
ref_prefetch_fn void prefetch_next(const ref__gcwork *g) {
  const ref__workbuf *b = g->wbuf1;
  if (b && b->nobj >= NEXT_AHEAD)
    __builtin_prefetch((const void *)(b->obj[b->nobj - NEXT_AHEAD] & ~REF_ITEM_TAGS));
}

bool ref__drain_some(ref__worker *w, uint64_t bytes) {
  uint64_t goal = w->n.bytes_marked + bytes;
  uintptr_t item;
  bool any = false;
  while (w->n.bytes_marked < goal && (item = ref__gcw_tryget(&w->gcw)) != 0) {
    prefetch_next(&w->gcw);
    ref__scan_item(w, item);
    any = true;
  }
  return any;
}

bool ref__drain_alone(ref__worker *w, uint64_t ns) {
  uint64_t t0 = ref__nanotime();
  uintptr_t item;
  for (unsigned n = 1; (item = ref__gcw_tryget(&w->gcw)) != 0; n++) {
    prefetch_next(&w->gcw);
    ref__scan_item(w, item);
    if ((n & 63) == 0 && ref__nanotime() - t0 > ns) return false;
  }
  return true;
}

/* Scans objects and runs jobs until the mark phase is done everywhere. Root
 * jobs come first, as Go's gcDrain does markroot. */
void ref__drain(ref__worker *w) {
  unsigned n = 0;
  for (;;) {
    ref__roots_work(w);
    uint64_t t0 = ref__trace_start(w);
    uintptr_t item;
    while ((item = ref__gcw_tryget(&w->gcw)) != 0) {
      prefetch_next(&w->gcw);
      ref__scan_item(w, item);
      /* Go's balance: feed idle workers when nothing is published. */
      if ((++n & 63) == 0 && atomic_load_explicit(&ref__xnwait, memory_order_relaxed) > 0 &&
          ref__wbuf_nfull() == 0)
        ref__gcw_balance(&w->gcw);
    }
    t0 = ref__trace(w, REF_TRACE_DRAIN, t0, 0);
    bool done = ref__mark_idle(w);
    ref__trace(w, REF_TRACE_IDLE, t0, 0);
    if (done) return;
  }
}
