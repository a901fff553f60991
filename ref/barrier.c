/*
 * barrier.c: the write barrier's slow paths (Go's mbarrier.go and
 * mwbbuf.go): what a heap pointer store does while a concurrent cycle
 * marks. ref.h holds the fast paths and the rule (which stores need it and
 * why stack stores do not).
 *
 * ref__wb_enabled is set and cleared only with the world stopped (the first
 * and the termination pause of a concurrent cycle), so a mutator sees it
 * change only across a safepoint: no store straddles the switch. Mode stw
 * never sets it.
 *
 * While it is set the stores themselves are relaxed atomics: a mark worker
 * reads the same pointer fields at the same time (mark.c reads them
 * atomically too), and Go's "the word is read whole" is what C11 calls an
 * atomic access.
 */
#include "gc.h"

#include <string.h>

int ref__wb_enabled;

/* Shades p if it points into the heap's range, counting it (marked
 * already or not: ref_gc_stats.barrier_shades). */
static inline void shade(ref__worker *w, uintptr_t p) {
  if (p - ref__heap.arena_lo >= ref__heap_arena_size()) return;
  w->shades++;
  ref__mark_ptr(w, p);
}

/* The barrier's choice of what to shade, per mode: Dijkstra's insertion
 * barrier shades the new value; the hybrid barrier shades the old one, and
 * the new one too while the storing goroutine's stack is unscanned. */
void ref__wb_shade_pair(uintptr_t old, uintptr_t val) {
  ref__worker *w = ref__cgc_mworker();
  if (ref__cfg.mode == REF_MODE_CONCURRENT_RESCAN) {
    shade(w, val);
  } else {
    shade(w, old);
    if (!ref__cgc_stack_scanned()) shade(w, val);
  }
}

void ref__store_slow(void **slot, void *val) {
  REF_RUNTIME_CALL();
  void *old = __atomic_load_n(slot, __ATOMIC_RELAXED);
  ref__wb_shade_pair((uintptr_t)old, (uintptr_t)val);
  __atomic_store_n(slot, val, __ATOMIC_RELAXED);
}

/* Word i of t's pointer bitmap. */
static inline bool ptr_word(const ref_type *t, size_t i) {
  return (t->ptrmask[i >> 6] >> (i & 63)) & 1;
}

/* Copies n words from src (NULL: zeroes) to dst one word at a time, the
 * pointer words of t (repeated: i counts words from the value's start)
 * with the barrier, in the order memmove would (backwards over an overlap
 * from below). */
static void copy_words(const ref_type *t, uintptr_t *dst, const uintptr_t *src, size_t n) {
  bool back = src && dst > src && dst < src + n;
  for (size_t k = 0; k < n; k++) {
    size_t i = back ? n - 1 - k : k;
    uintptr_t v = src ? __atomic_load_n(&src[i], __ATOMIC_RELAXED) : 0;
    if (ptr_word(t, i)) {
      uintptr_t old = __atomic_load_n(&dst[i], __ATOMIC_RELAXED);
      ref__wb_shade_pair(old, v);
    }
    __atomic_store_n(&dst[i], v, __ATOMIC_RELAXED);
  }
}

void ref__typedmemmove_slow(const ref_type *t, void *dst, const void *src) {
  REF_RUNTIME_CALL();
  ref_assert(((uintptr_t)dst & (REF_WORD - 1)) == 0 && t->size % REF_WORD == 0);
  copy_words(t, dst, src, t->size / REF_WORD);
}

void ref__typedmemclr(const ref_type *t, void *dst) {
  if (__atomic_load_n(&ref__wb_enabled, __ATOMIC_RELAXED) && t->ptrmask)
    ref__typedmemmove_slow(t, dst, NULL);
  else
    memset(dst, 0, t->size);
}
