/*
 * scan_conservative.c: conservative scanning of a memory range -- every
 * aligned word is a candidate pointer. Used for whole stacks in scan=
 * conservative, for frames flagged conservative, and for global roots.
 *
 * The loop holds the heap bounds in locals and batches the words that pass
 * the range filter in the worker's ptrbuf (the 2013 design's ptrbuf), so
 * that their span lookups can be prefetched together in ref__ptrbuf_flush.
 */
#include "gc.h"

/* Queues word v when it passes the range filter. */
#define FILTER(v)                                                                 \
  do {                                                                            \
    uintptr_t v_ = (v);                                                           \
    if (v_ - alo < span) {                                                        \
      w->ptrbuf[nptr++] = v_;                                                     \
      cand++;                                                                     \
      if (ref_unlikely(nptr == REF_PTRBUF)) {                                     \
        w->nptr = nptr;                                                           \
        ref__ptrbuf_flush(w);                                                     \
        nptr = 0;                                                                 \
      }                                                                           \
    }                                                                             \
  } while (0)

/* Reads arbitrary stack words, including ones ASan considers poisoned (dead
 * frames, redzones of other goroutines' locals): not instrumented. Most
 * words are not heap pointers, so four are tested at once with one branch. */
REF_NO_SANITIZE_ADDRESS REF_NO_SANITIZE_THREAD
void ref__scan_conservative(ref__worker *w, uintptr_t lo, uintptr_t hi) {
  const uintptr_t alo = ref__heap.arena_lo;
  const uintptr_t span = ref__heap_arena_size();
  const uintptr_t *p = (const uintptr_t *)ref_align_up(lo, REF_WORD);
  const uintptr_t *end = (const uintptr_t *)ref_align_down(hi, REF_WORD);
  size_t nptr = w->nptr;
  uint64_t cand = 0;
  w->n.words += p < end ? (uint64_t)(end - p) : 0;
  for (; p + 4 <= end; p += 4) {
    uintptr_t a = p[0], b = p[1], c = p[2], d = p[3];
    if (ref_likely(((a - alo < span) | (b - alo < span) | (c - alo < span) | (d - alo < span)) == 0))
      continue;
    FILTER(a);
    FILTER(b);
    FILTER(c);
    FILTER(d);
  }
  for (; p < end; p++) FILTER(*p);
  w->nptr = nptr;
  w->n.candidates += cand;
}
#undef FILTER
