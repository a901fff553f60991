/*
 * checkmark.c: the verifier. After marking, clears the checkmark bits and
 * re-marks the heap with an independent, simple serial marker -- an explicit
 * stack of objects, no work buffers, no batching, no oblets, stack maps read
 * directly from the records (so stackmaps=pctab lookups are checked too),
 * conservative records' ranges derived on its own from ref.h's definition
 * (sharing the scanner's code would share its mistakes) -- using the same
 * scan mode, then compares the two mark sets object by object. Any
 * difference aborts with the object, its span, and what references it.
 */
#include "gc.h"

#include <string.h>

static struct {
  uintptr_t *v;
  size_t n, cap;
  /* Whether a goroutine stack's conservative words are roots: not after a
   * concurrent-hybrid cycle. There a stack is read once, while the program
   * runs; at termination its words below or between live values include
   * stale ones written before or after that scan (dead frames, spill slots)
   * naming objects that died since, correctly unmarked. Rescan and stw read
   * the stacks when the verifier does, and agree with it word for word; a
   * hybrid cycle is verified through its precise roots (the live slots of
   * frame records, in either scan mode, the registered ranges, the
   * scheduler stacks' records) and the heap. */
  bool stack_words;
} cm;

static void cm_push(uintptr_t base) {
  if (cm.n == cm.cap && !REF_GROW(cm.v, cm.cap, 4096))
    ref__throw("checkmark: out of memory for its mark stack (%zu entries)", cm.cap);
  cm.v[cm.n++] = base;
}

static void cm_mark(uintptr_t p) {
  ref__span *s;
  uint32_t idx;
  uintptr_t base = ref__find_object(p, &s, &idx);
  if (base && ref__checkmark_tryset(s, idx) && !ref__span_noscan(s)) cm_push(base);
}

/* Reads stack words ASan may consider poisoned, as the real scanner does. */
REF_NO_SANITIZE_ADDRESS
static void cm_scan_range(uintptr_t lo, uintptr_t hi) {
  for (uintptr_t a = ref_align_up(lo, REF_WORD); a + REF_WORD <= hi; a += REF_WORD)
    cm_mark(*(const uintptr_t *)a);
}

/* The top of a conservative record's range, derived from ref.h's words
 * rather than from the scanner's walk: of the records up the chain that live
 * in a caller's native frame (a higher frame_lo), the one of the nearest
 * frame (the lowest frame_lo; the youngest on a tie), else hi; at least the
 * end of rec's own slots. */
static uintptr_t cm_conservative_hi(ref_frame *rec, uintptr_t hi) {
  const ref_frame *best = NULL;
  for (const ref_frame *r = rec->parent; r; r = r->parent)
    if (r->frame_lo > rec->frame_lo && (!best || r->frame_lo < best->frame_lo)) best = r;
  uintptr_t top = best ? (uintptr_t)best : hi;
  uintptr_t end = (uintptr_t)(ref_frame_slots(rec) + rec->fn->nslots);
  return top > end ? top : end;
}

/* A chain on a stack whose live part is [lo, hi). Each conservative record's
 * range is scanned on its own (they overlap: all start at lo). */
static void cm_scan_chain(ref_frame *top, uintptr_t lo, uintptr_t hi, bool words) {
  for (ref_frame *rec = top; rec; rec = rec->parent) {
    if (rec->flags & REF_FRAME_CONSERVATIVE) {
      if (words) cm_scan_range(lo, cm_conservative_hi(rec, hi));
    } else {
      if (rec->safepoint >= rec->fn->nsafepoints)
        ref__throw("checkmark: frame %s has safepoint %u of %u", rec->fn->name, rec->safepoint,
                   rec->fn->nsafepoints);
      uint64_t live = rec->fn->live[rec->safepoint];
      for (uint32_t i = 0; i < rec->fn->nslots; i++)
        if ((live >> i) & 1) cm_mark((uintptr_t)ref_frame_slots(rec)[i]);
    }
  }
}

/* A goroutine stopped by preempt=async (ref.h): its youngest record's
 * native frame and the frames below it, down to sp, are one conservative
 * range; the chain goes on from the first record in a caller's frame. */
static void cm_scan_async(const ref_g *g) {
  ref_frame *top = g->frames;
  if (!top) {
    cm_scan_range((uintptr_t)g->sp, g->stack.hi);
    return;
  }
  ref_frame *caller = top->parent;
  while (caller && caller->frame_lo <= top->frame_lo) caller = caller->parent;
  uintptr_t lo = top->frame_lo < (uintptr_t)g->sp ? top->frame_lo : (uintptr_t)g->sp;
  cm_scan_range(lo, cm_conservative_hi(top, g->stack.hi));
  cm_scan_chain(caller, lo, g->stack.hi, true);
}

/* The scheduler stack's live part starts at the lowest native frame that
 * holds one of its records. */
static void cm_scan_g0(const ref__m *m) {
  uintptr_t lo = UINTPTR_MAX;
  for (const ref_frame *r = m->g0_frames; r; r = r->parent)
    if (r->frame_lo < lo) lo = r->frame_lo;
  if (m->g0_frames) cm_scan_chain(m->g0_frames, lo, m->g0_hi, true);
}

static void cm_scan_object(uintptr_t base) {
  ref__span *s = NULL;
  uint32_t idx = 0;
  ref__find_object(base, &s, &idx);
  const ref_type *t = ref__object_type_slot(s, idx); /* not the collector's span type */
  if (!t || !t->ptrmask || t->size < REF_WORD) return;
  size_t nw = t->size / REF_WORD, n = ref__object_size(s) / t->size;
  const uintptr_t *p = (const uintptr_t *)base;
  for (size_t e = 0; e < n; e++, p += nw)
    for (size_t i = 0; i < nw; i++)
      if ((t->ptrmask[i / 64] >> (i % 64)) & 1) cm_mark(p[i]);
}

static void cm_mark_all(void) {
  for (int i = 0; i < ref__nm(); i++) cm_scan_g0(ref__m_at(i));
  const ref__rootrange *r = ref__globals();
  for (size_t i = 0; i < ref__globals_count(); i++) cm_scan_range(r[i].lo, r[i].hi);
  for (size_t i = 0; i < ref__allg.len; i++) {
    const ref_g *g = ref__allg.g[i];
    if (g->status == REF_G_DEAD) continue;
    if (!g->started) cm_mark((uintptr_t)g->arg);
    else if (ref__cfg.scan == REF_SCAN_FRAMES && g->async_stopped) cm_scan_async(g);
    else if (ref__cfg.scan == REF_SCAN_FRAMES || !cm.stack_words) /* records' live slots */
      cm_scan_chain(g->frames, (uintptr_t)g->sp, g->stack.hi, cm.stack_words);
    else cm_scan_range((uintptr_t)g->sp, g->stack.hi);
  }
  while (cm.n > 0) cm_scan_object(cm.v[--cm.n]);
}

/* ---------------------------------------------------------------------------
 * Reporting a difference
 * ------------------------------------------------------------------------- */

/* Prints where a pointer into [base, base+size) is found: a global range, a
 * goroutine stack (or frame slot), or a checkmarked object. */
REF_NO_SANITIZE_ADDRESS
static void report_referrers(uintptr_t base, uintptr_t size) {
  int found = 0;
#define IN(v) ((uintptr_t)(v) - base < size)
  const ref__rootrange *r = ref__globals();
  for (size_t i = 0; i < ref__globals_count(); i++)
    for (uintptr_t a = r[i].lo; a + REF_WORD <= r[i].hi; a += REF_WORD)
      if (IN(*(uintptr_t *)a) && found++ < 8)
        fprintf(stderr, "  referenced by global root word %#lx\n", (unsigned long)a);
  for (size_t i = 0; i < ref__allg.len; i++) {
    const ref_g *g = ref__allg.g[i];
    if (g->status == REF_G_DEAD) continue;
    if (!g->started && IN(g->arg) && found++ < 8)
      fprintf(stderr, "  referenced by the start argument of goroutine %llu\n",
              (unsigned long long)g->id);
    if (!g->started) continue;
    for (uintptr_t a = (uintptr_t)g->sp; a < g->stack.hi; a += REF_WORD)
      if (IN(*(uintptr_t *)a) && found++ < 8)
        fprintf(stderr, "  referenced by goroutine %llu's stack word %#lx (%lu bytes below top)\n",
                (unsigned long long)g->id, (unsigned long)a, (unsigned long)(g->stack.hi - a));
  }
  for (size_t i = 0; i < ref__heap_nspans(); i++) {
    ref__span *s = ref__heap_span(i);
    for (uint32_t k = ref__span_next_allocated(s, 0); k < s->nelems;
         k = ref__span_next_allocated(s, k + 1)) {
      uintptr_t ob = ref__object_base(s, k);
      for (uintptr_t a = ob; a + REF_WORD <= ob + s->elemsize; a += REF_WORD)
        if (IN(*(uintptr_t *)a) && found++ < 8)
          fprintf(stderr, "  referenced by object %#lx (%s, marked %d, checkmarked %d) at +%lu\n",
                  (unsigned long)ob, s->types && s->types[k] ? s->types[k]->name : "noscan",
                  ref__is_marked(s, k), ref__is_checkmarked(s, k), (unsigned long)(a - ob));
    }
  }
#undef IN
  if (!found) fprintf(stderr, "  no referrer found\n");
}

static ref_noreturn void report(ref__span *s, uint32_t idx) {
  uintptr_t base = ref__object_base(s, idx);
  const ref_type *t = ref__object_type(s, idx);
  fprintf(stderr,
          "stackscan: checkmark: object %#lx (%s, %lu bytes) is %s by the collector but %s by "
          "the verifier\n  span %#lx: class %u, %u slots of %lu bytes, slot %u, noscan %d\n"
          "  strategy %s, stackmaps %s, %d workers\n",
          (unsigned long)base, t ? t->name : "noscan", (unsigned long)s->elemsize,
          ref__is_marked(s, idx) ? "marked" : "unmarked",
          ref__is_checkmarked(s, idx) ? "marked" : "unmarked", (unsigned long)s->base,
          s->sizeclass, s->nelems, (unsigned long)s->elemsize, idx, s->noscan,
          ref_strategy_name(ref__cfg.phase, ref__cfg.scan), ref_stackmaps_name(ref__cfg.stackmaps),
          ref__cfg.workers);
  report_referrers(base, s->elemsize);
  ref__throw("checkmark verification failed");
}

void ref__checkmark_verify(bool floating_ok) {
  cm.stack_words = ref__cfg.mode != REF_MODE_CONCURRENT_HYBRID;
  ref__checkmark_clear_all();
  cm_mark_all();
  for (size_t i = 0; i < ref__heap_nspans(); i++) {
    ref__span *s = ref__heap_span(i);
    for (uint32_t k = ref__span_next_allocated(s, 0); k < s->nelems;
         k = ref__span_next_allocated(s, k + 1))
      if (ref__is_marked(s, k) != ref__is_checkmarked(s, k) &&
          !(floating_ok && ref__is_marked(s, k)))
        report(s, k);
  }
  free(cm.v);
  memset(&cm, 0, sizeof cm);
}
