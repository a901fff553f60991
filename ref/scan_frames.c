/*
 * scan_frames.c: precise stack scanning by frames. Walks a goroutine's
 * frame-record chain from its top record to its entry frame; for each
 * record finds the function's stack map for the record's current safepoint
 * (stackmaps = direct / pctab / pctab-cached) and marks what the live slots
 * point to. A record flagged REF_FRAME_CONSERVATIVE is scanned word by word
 * instead, as Go scans async-preempted frames, over the range ref.h defines.
 *
 * A goroutine's chain is walked by one worker: the walk is a pointer chase
 * that must be done in order, and the per-frame work (a lookup and a few
 * slots) is small, so splitting a walk into jobs would cost more in job
 * traffic than it could balance. Deep stacks in scan=conservative are split
 * instead (roots.c), where the work is proportional to the bytes.
 */
#include "gc.h"

/* The stack map for rec: a bitmap of its live slots, or NULL when the
 * metadata lookup fails (which is a broken invariant). */
REF_NO_SANITIZE_THREAD
static inline const uint64_t *stackmap(ref__worker *w, const ref_frame *rec) {
  const ref_funcinfo *fn;
  bool hit;
  switch (ref__cfg.stackmaps) {
  case REF_MAPS_DIRECT:
    return rec->safepoint < rec->fn->nsafepoints ? &rec->fn->live[rec->safepoint] : NULL;
  case REF_MAPS_PCTAB:
    return ref__stackmap_pctab(&ref__functab_global, rec->pc, NULL, &fn, &hit);
  case REF_MAPS_PCTAB_CACHED: {
    const uint64_t *m = ref__stackmap_pctab(&ref__functab_global, rec->pc, &w->pccache, &fn, &hit);
    w->n.cache_hits += hit;
    return m;
  }
  }
  return NULL;
}

static ref_noinline void bad_frame(uint64_t goid, const ref_frame *rec) {
  ref__throw("goroutine %llu: no stack map for frame %p (%s, safepoint %u, pc %#lx) in %s mode",
             (unsigned long long)goid, (const void *)rec, rec->fn ? rec->fn->name : "?",
             rec->safepoint, (unsigned long)rec->pc, ref_stackmaps_name(ref__cfg.stackmaps));
}

/* The nearest record up the chain from rec in a caller's native frame (a
 * higher frame_lo; a caller's records all lie above its callees' frames),
 * or NULL. */
static ref_frame *caller_record(ref_frame *rec) {
  ref_frame *p = rec->parent;
  while (p && p->frame_lo <= rec->frame_lo) p = p->parent;
  return p;
}

/* The top of a conservative record's range (ref.h): caller_record, or hi
 * when there is none, and never below the end of rec's own slots. */
static uintptr_t conservative_hi(ref_frame *rec, uintptr_t hi) {
  const ref_frame *p = caller_record(rec);
  uintptr_t top = p ? (uintptr_t)p : hi;
  uintptr_t end = (uintptr_t)(ref_frame_slots(rec) + rec->fn->nslots);
  return top > end ? top : end;
}

bool ref__debug_async_precise_top;

/* A goroutine stopped by preempt=async's signal between two instructions:
 * the function of its youngest record was between safepoints, so that
 * record's native frame, and everything below it down to the copy of the
 * interrupted registers at sp, is one conservative range (ref.h); the
 * records of its callers are in calls, and their maps hold. */
static void scan_async(ref__worker *w, ref_g *g) {
  ref_frame *top = g->frames;
  if (ref_unlikely(ref__debug_async_precise_top)) { /* tests: the range left out */
    ref__scan_chain(w, top, (uintptr_t)g->sp, g->stack.hi, g->id);
    return;
  }
  uintptr_t lo = (uintptr_t)g->sp;
  if (top && top->frame_lo < lo) lo = top->frame_lo;
  ref__scan_conservative(w, lo, top ? conservative_hi(top, g->stack.hi) : g->stack.hi);
  if (top) {
    w->n.frames++;
    ref__scan_chain(w, caller_record(top), lo, g->stack.hi, g->id);
  }
}

void ref__scan_frames(ref__worker *w, ref_g *g) {
  if (ref_unlikely(g->async_stopped)) {
    scan_async(w, g);
    return;
  }
  ref__scan_chain(w, g->frames, (uintptr_t)g->sp, g->stack.hi, g->id);
}

bool ref__debug_legacy_conservative_range;

/* The range before issue 23: from the end of the younger record's slots (or
 * lo) up to the parent record. */
static void legacy_conservative(ref__worker *w, ref_frame *rec, ref_frame *younger, uintptr_t lo,
                                uintptr_t hi) {
  uintptr_t below = younger ? (uintptr_t)(ref_frame_slots(younger) + younger->fn->nslots) : lo;
  ref__scan_conservative(w, below, rec->parent ? (uintptr_t)rec->parent : hi);
}

/* Scans the chain from top, on a stack whose live part is [lo, hi): lo is
 * the saved stack pointer of a goroutine, or on the scheduler stack the top
 * record, whose native frame then starts the live part. Conservative records
 * are scanned as one range, from lo to the highest of their tops, after the
 * walk: their ranges all start at lo. goid names the goroutine in errors (0:
 * the scheduler stack).
 *
 * The live slots' heap words are queued in the ptrbuf, as a conservative
 * scan's candidates are, and the caller flushes it: their lookups are
 * prefetched together, the ptrbuf's filter drops repeats (a reader's frames
 * hold the reader and its channels twice over), and a recording stack's
 * words are recorded there. Marking each slot on the spot walked the span
 * lookups one cold chain at a time: n=1000, one worker, 8 alternated
 * processes, AMD EPYC: GoroutinePointerDense 0.85x the time, Idle 0.93x,
 * Blocking and ForRange 0.96-0.99x, Select 1.02-1.04x. */
REF_NO_SANITIZE_THREAD
void ref__scan_chain(ref__worker *w, ref_frame *top, uintptr_t lo, uintptr_t hi, uint64_t goid) {
  if (top && top->frame_lo < lo) lo = top->frame_lo;
  const uintptr_t alo = ref__heap.arena_lo, span = ref__heap_arena_size();
  uintptr_t cons_hi = 0;
  for (ref_frame *rec = top, *younger = NULL; rec; younger = rec, rec = rec->parent) {
    ref_assert_internal((uintptr_t)rec >= lo && (uintptr_t)rec < hi);
    w->n.frames++;
    if (ref_unlikely(rec->flags & REF_FRAME_CONSERVATIVE)) {
      if (ref_unlikely(ref__debug_legacy_conservative_range)) {
        legacy_conservative(w, rec, younger, lo, hi);
        continue;
      }
      uintptr_t t = conservative_hi(rec, hi);
      if (t > cons_hi) cons_hi = t;
      continue;
    }
    w->n.lookups++;
    const uint64_t *live = stackmap(w, rec);
    if (ref_unlikely(!live)) bad_frame(goid, rec);
    uint64_t bits = *live;
    void **slot = ref_frame_slots(rec);
    /* Counted in the loop: without -mpopcnt, __builtin_popcountll is a
     * libgcc call, 1% of a frames scan. */
    uint64_t nslots = 0;
    for (; bits; bits &= bits - 1, nslots++) {
      uintptr_t p = (uintptr_t)slot[__builtin_ctzll(bits)];
      if (p - alo >= span) continue;
      w->ptrbuf[w->nptr++] = p;
      if (ref_unlikely(w->nptr == REF_PTRBUF)) ref__ptrbuf_flush(w);
    }
    w->n.slots += nslots;
  }
  if (cons_hi) ref__scan_conservative(w, lo, cons_hi);
}
