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

/* Reads arbitrary stack words, including ones ASan considers poisoned (dead
 * frames, redzones of other goroutines' locals): not instrumented. */
REF_NO_SANITIZE_ADDRESS
void ref__scan_conservative(ref__worker *w, uintptr_t lo, uintptr_t hi) {
  const uintptr_t alo = ref__heap.arena_lo;
  const uintptr_t span = ref__heap.arena_hi - alo;
  const uintptr_t *p = (const uintptr_t *)ref_align_up(lo, REF_WORD);
  const uintptr_t *end = (const uintptr_t *)ref_align_down(hi, REF_WORD);
  size_t nptr = w->nptr;
  uint64_t cand = 0;
  w->n.words += (uint64_t)(end - p);
  for (; p < end; p++) {
    uintptr_t v = *p;
    if (v - alo < span) {
      w->ptrbuf[nptr++] = v;
      cand++;
      if (ref_unlikely(nptr == REF_PTRBUF)) {
        w->nptr = nptr;
        ref__ptrbuf_flush(w);
        nptr = 0;
      }
    }
  }
  w->nptr = nptr;
  w->n.candidates += cand;
}

void ref__scanstack(ref__worker *w, ref_g *g) {
  ref_assert_internal((uintptr_t)g->sp >= g->stack.lo && (uintptr_t)g->sp < g->stack.hi);
  w->n.stacks_scanned++;
  w->n.stack_bytes += g->stack.hi - (uintptr_t)g->sp;
  w->st.stacks_scanned++;
  w->st.stack_bytes += g->stack.hi - (uintptr_t)g->sp;
  if (ref__cfg.scan == REF_SCAN_FRAMES) ref__scan_frames(w, g);
  else ref__scan_conservative(w, (uintptr_t)g->sp, g->stack.hi);
  ref__ptrbuf_flush(w);
}
