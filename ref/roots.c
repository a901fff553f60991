/*
 * roots.c: the roots of a cycle and the phase switch.
 *
 * Roots are the registered global ranges (scanned conservatively in blocks
 * of REF_ROOT_BLOCK), every G's start argument until it starts, every
 * started G's stack, and the frame records on the scheduler stack (runtime
 * code there, chan_make say, holds new objects across an allocation that
 * may collect; they are scanned by their maps in every scan mode). Where stacks are scanned (ref__cfg.phase):
 *
 *   serial    the initiating thread scans them all while enumerating roots
 *             (Go 1.2), then marking goes parallel;
 *   parallel  enumeration queues one job per G and whichever mark worker
 *             pops it scans it (CL 17410043); the jobs travel in work
 *             buffers on a list of their own, emptied before grey objects;
 *   rootjobs  roots are indexed jobs -- global blocks, then one per G --
 *             that every worker claims with an atomic counter before
 *             draining the heap (Go 1.5+'s markroot).
 *
 * In the parallel and rootjobs phases a conservative stack with more than
 * split_bytes to scan is split: the worker scans the first piece and queues
 * the rest, so one deep goroutine cannot serialize the phase.
 */
#include "gc.h"

#include <string.h>

/* Stack scans are bound by cold misses: a parked stack's live top is a few
 * lines on its own 4 KiB page (guard pages keep stacks off huge pages), so
 * every goroutine costs a TLB miss, on this VM a nested page walk, as well
 * as its lines. A prefetch that misses the TLB holds up retirement until
 * its walk is done, so the scan loops fetch each goroutine in two steps:
 * one line WALK_AHEAD goroutines ahead starts the page walk, and the rest of
 * the live top, up to PREFETCH_LINES lines, follows LINES_AHEAD goroutines
 * ahead, after the current stack's scan, when it hits the TLB. Measured on
 * the 2-core VM, 100k GoroutineIdle, one worker: no stack prefetch 24 ms
 * (frames-serial) and 34 ms (conservative-serial); every line 4 ahead in one
 * step 10.2 and 12.2 ms; in two steps, 8 and 3 ahead, 8.5 and 9.7-10.5 ms.
 * -D overrides are for such sweeps. */
#ifndef WALK_AHEAD
#define WALK_AHEAD 8
#endif
#ifndef LINES_AHEAD
#define LINES_AHEAD 3
#endif
#ifndef PREFETCH_LINES
#define PREFETCH_LINES 8
#endif
#define CLAIM_BATCH 128  /* rootjobs: jobs claimed per atomic add */
#define PARTS_PER_CHUNK 256

static struct {
  ref__rootrange *ranges;
  size_t nranges, cap;
  size_t nblocks;        /* this cycle: global blocks (first jobs in rootjobs) */
  size_t njobs;          /* this cycle: nblocks + allg.len */
  _Atomic size_t xnext;  /* rootjobs: next unclaimed job */
  /* stack parts, carved per worker from chunks that never move */
  struct partchunk {
    struct partchunk *next;
    size_t used;
    ref__stackpart part[PARTS_PER_CHUNK];
  } *chunks[REF_MAX_WORKERS];
} rs;

/* ---------------------------------------------------------------------------
 * Global roots
 * ------------------------------------------------------------------------- */

void ref_add_root(void *p, size_t len) {
  ref_assert(((uintptr_t)p & (REF_WORD - 1)) == 0);
  if (rs.nranges == rs.cap) {
    size_t cap = rs.cap ? rs.cap * 2 : 16;
    ref__rootrange *nr = realloc(rs.ranges, cap * sizeof *nr);
    if (!nr) ref__throw("out of memory registering a root range");
    rs.ranges = nr;
    rs.cap = cap;
  }
  rs.ranges[rs.nranges++] = (ref__rootrange){(uintptr_t)p, (uintptr_t)p + len};
}

void ref_remove_root(void *p) {
  for (size_t i = 0; i < rs.nranges; i++) {
    if (rs.ranges[i].lo == (uintptr_t)p) {
      rs.ranges[i] = rs.ranges[--rs.nranges];
      return;
    }
  }
}

size_t ref__globals_count(void) { return rs.nranges; }
const ref__rootrange *ref__globals(void) { return rs.ranges; }

static size_t range_blocks(const ref__rootrange *r) {
  return (r->hi - r->lo + REF_ROOT_BLOCK - 1) / REF_ROOT_BLOCK;
}

/* Scans global block i (counting blocks across ranges in order). */
static void scan_block(ref__worker *w, size_t i) {
  for (size_t r = 0; r < rs.nranges; r++) {
    size_t nb = range_blocks(&rs.ranges[r]);
    if (i < nb) {
      uintptr_t lo = rs.ranges[r].lo + i * REF_ROOT_BLOCK;
      uintptr_t hi = lo + REF_ROOT_BLOCK < rs.ranges[r].hi ? lo + REF_ROOT_BLOCK : rs.ranges[r].hi;
      ref__scan_conservative(w, lo, hi);
      ref__ptrbuf_flush(w);
      return;
    }
    i -= nb;
  }
}

/* ---------------------------------------------------------------------------
 * Stacks
 * ------------------------------------------------------------------------- */

static ref__stackpart *part_new(ref__worker *w) {
  struct partchunk *c = rs.chunks[w->id];
  if (!c || c->used == PARTS_PER_CHUNK) {
    struct partchunk *nc = malloc(sizeof *nc);
    if (!nc) ref__throw("out of memory for stack scan parts");
    nc->next = c;
    nc->used = 0;
    rs.chunks[w->id] = c = nc;
  }
  return &c->part[c->used++];
}

/* Scans g's roots: its start argument if it has not started, else its
 * stack. may_split: queue pieces of a deep conservative stack for others. */
static void scan_g(ref__worker *w, ref_g *g, bool may_split) {
  if (g->status == REF_G_DEAD) return;
  if (!g->started) {
    uintptr_t a = (uintptr_t)g->arg;
    if (a - ref__heap.arena_lo < ref__heap.arena_hi - ref__heap.arena_lo) ref__mark_ptr(w, a);
    return;
  }
  uintptr_t sp = (uintptr_t)g->sp, split = ref__cfg.split_bytes;
  if (!may_split || ref__cfg.scan != REF_SCAN_CONSERVATIVE || g->stack.hi - sp <= split) {
    ref__scanstack(w, g);
    return;
  }
  for (uintptr_t lo = sp + split; lo < g->stack.hi; lo += split) {
    ref__stackpart *p = part_new(w);
    *p = (ref__stackpart){g, lo, lo + split < g->stack.hi ? lo + split : g->stack.hi};
    ref__gcw_put(&w->gcw, (uintptr_t)p | REF_ITEM_PART);
  }
  ref__count_stack(w, g->stack.hi - sp);
  ref__scan_conservative(w, sp, sp + split);
  ref__ptrbuf_flush(w);
}

/* Fetches lines [first, last) of the live top of a goroutine's stack:
 * [sp, hi) for a conservative scan, [top record, hi) for frames, at most
 * PREFETCH_LINES lines. */
ref_prefetch_fn void prefetch_g(ref_g *g, bool frames, int first, int last) {
  uintptr_t from = frames ? (uintptr_t)g->frames : (uintptr_t)g->sp;
  if (from == 0) return;
  uintptr_t a = ref_align_down(from, REF_CACHE_LINE) + REF_CACHE_LINE * (uintptr_t)first;
  uintptr_t hi = g->stack.hi;
  for (int i = first; i < last && a < hi; i++, a += REF_CACHE_LINE) __builtin_prefetch((void *)a);
}

/* The stack scans' software pipeline of prefetches over gs[0, n): G structs
 * G_AHEAD goroutines ahead, then the two steps above. pipeline_start fetches
 * the first goroutines; pipeline_walk runs before goroutine i is scanned,
 * pipeline_lines after. pipeline_walk also fetches the first line of the
 * LINES_AHEAD goroutine again, before the scan, though its walk started it:
 * fetching all its lines after the scan instead made conservative-serial
 * 10.1 ms against 9.4 (100k GoroutineIdle, one worker, 4 A/B rounds).
 * scan_gs and touch_stacks share the pipeline, so the floor keeps the
 * scan's prefetching. */
#define G_AHEAD (WALK_AHEAD + 8)

ref_prefetch_fn void pipeline_start(ref_g *const *gs, size_t n, bool frames) {
  for (size_t i = 0; i < n && i < G_AHEAD; i++) __builtin_prefetch(gs[i]);
  for (size_t i = 0; i < n && i < WALK_AHEAD; i++)
    prefetch_g(gs[i], frames, 0, i < LINES_AHEAD ? PREFETCH_LINES : 1);
}

ref_prefetch_fn void pipeline_walk(ref_g *const *gs, size_t i, size_t n, bool frames) {
  if (i + G_AHEAD < n) __builtin_prefetch(gs[i + G_AHEAD]);
  if (i + WALK_AHEAD < n) prefetch_g(gs[i + WALK_AHEAD], frames, 0, 1);
  if (i + LINES_AHEAD < n) prefetch_g(gs[i + LINES_AHEAD], frames, 0, 1);
}

ref_prefetch_fn void pipeline_lines(ref_g *const *gs, size_t i, size_t n, bool frames) {
  if (i + LINES_AHEAD < n) prefetch_g(gs[i + LINES_AHEAD], frames, 1, PREFETCH_LINES);
}

/* Scans the roots of gs[0, n), with the pipeline above.
 *
 * A conservative scan also scans one of its own grey items after each
 * stack. The scan of a cold parked stack mostly waits for the stack's lines
 * and its page walk, and an object scanned then runs in that wait: at 100k
 * GoroutineIdle with one worker, conservative-serial went from 14.1 to
 * 11.3 ms, the 1.6 ms mark phase all but gone into roots at no cost. When
 * the stacks are in cache nothing is hidden, and the serial phase, which
 * helpers wait out, gets longer: 1000 Idle with 2 workers, 54 -> 58 us. A
 * frames scan waits less; the same step made it 0.3-0.5 ms slower at 100k,
 * so it does not take it. */
static void scan_gs(ref__worker *w, ref_g *const *gs, size_t n, bool may_split) {
  const bool frames = ref__cfg.scan == REF_SCAN_FRAMES, fill = !frames;
  pipeline_start(gs, n, frames);
  for (size_t i = 0; i < n; i++) {
    pipeline_walk(gs, i, n, frames);
    scan_g(w, gs[i], may_split);
    pipeline_lines(gs, i, n, frames);
    uintptr_t item;
    if (fill && (item = ref__gcw_tryget_fast(&w->gcw)) != 0) ref__scan_item(w, item);
  }
}

/* Reads what a conservative scan reads, [saved sp, top) of every started
 * live G, in allg order with the scans' prefetch pipeline, and does nothing
 * with it but sum it: the memory floor under a stack scan (see
 * ref_debug_touch_stacks). Poisoned words are read as the scan reads them. */
REF_NO_SANITIZE_ADDRESS
static void touch_stacks(void *arg) {
  uint64_t *res = arg; /* sum, bytes */
  ref_g *const *gs = ref__allg.g;
  size_t n = ref__allg.len;
  uint64_t sum = 0, bytes = 0;
  pipeline_start(gs, n, false);
  for (size_t i = 0; i < n; i++) {
    pipeline_walk(gs, i, n, false);
    const ref_g *g = gs[i];
    if (ref__g_scannable(g)) {
      const uintptr_t *p = g->sp, *end = (const uintptr_t *)g->stack.hi;
      bytes += (uintptr_t)end - (uintptr_t)p;
      for (; p < end; p++) sum += *p;
    }
    pipeline_lines(gs, i, n, false);
  }
  res[0] = sum;
  res[1] = bytes;
}

uint64_t ref_debug_touch_stacks(uint64_t *bytes) {
  uint64_t res[2];
  ref__systemstack(touch_stacks, res);
  if (bytes) *bytes = res[1];
  return res[0];
}

void ref__item_run(ref__worker *w, uintptr_t item) {
  ref_assert_internal((item & REF_ITEM_TAGS) == REF_ITEM_PART);
  ref__stackpart *p = (ref__stackpart *)(item & ~REF_ITEM_TAGS);
  ref__scan_conservative(w, p->lo, p->hi);
  ref__ptrbuf_flush(w);
}

/* ---------------------------------------------------------------------------
 * Enumeration and jobs
 * ------------------------------------------------------------------------- */

/* The parallel phase's jobs: one per G, dead ones included (scan_g skips
 * them: reading each G's status here would be a cold miss per G), in work
 * buffers of consecutive Gs on the jobs list. A worker runs a whole buffer
 * with scan_gs's pipeline, and runs job buffers before it scans grey
 * objects: stacks scanned in runs of a few hundred with grey objects in
 * between cost 20-25% more per stack than in one long run, which is how the
 * serial and rootjobs phases scan them (100k GoroutineIdle, one worker;
 * CL 17410043 kept its stack jobs among the grey objects). Buffers are
 * published from the end of allg, so they pop in allg order.
 *
 * A buffer is full (REF_WORKBUF_NOBJ Gs) unless that would leave a worker
 * without one: two workers scanning neighbouring Gs mark objects in the same
 * spans and fight over their mark bits. 1000 GoroutineIdle with 2 workers
 * took 81 us with 32 Gs per buffer, 38 with 128 and 29 with 250. */
static void queue_stack_jobs(ref__worker *w0) {
  size_t n = ref__allg.len, nw = (size_t)ref__workers_count();
  size_t k = (n + nw - 1) / nw;
  if (k > REF_WORKBUF_NOBJ) k = REF_WORKBUF_NOBJ;
  for (size_t hi = n; hi > 0;) {
    size_t lo = hi > k ? hi - k : 0;
    ref__workbuf *b = ref__wbuf_getempty();
    for (size_t i = lo; i < hi; i++) b->obj[b->nobj++] = (uintptr_t)ref__allg.g[i];
    ref__wbuf_putjobs(b);
    w0->gcw.bufs_given++;
    hi = lo;
  }
}

static void run_stack_jobs(ref__worker *w) {
  ref__workbuf *b;
  ref_g *gs[REF_WORKBUF_NOBJ];
  while ((b = ref__wbuf_tryget_jobs()) != NULL) {
    w->gcw.bufs_taken++;
    size_t n = b->nobj;
    for (size_t i = 0; i < n; i++) gs[i] = (ref_g *)b->obj[i];
    b->nobj = 0;
    ref__wbuf_putempty(b);
    scan_gs(w, gs, n, true);
  }
}

/* The scheduler stack's records: precise roots in every scan mode. */
static void scan_g0_records(ref__worker *w) {
  ref__m *m = ref__m_get();
  if (m->g0_frames) ref__scan_chain(w, m->g0_frames, (uintptr_t)m->g0_frames, m->g0_hi, 0);
  ref__ptrbuf_flush(w);
}

void ref__roots_prepare(ref__worker *w0) {
  scan_g0_records(w0);
  rs.nblocks = 0;
  for (size_t r = 0; r < rs.nranges; r++) rs.nblocks += range_blocks(&rs.ranges[r]);
  rs.njobs = rs.nblocks + ref__allg.len;
  atomic_store(&rs.xnext, 0);
  switch (ref__cfg.phase) {
  case REF_PHASE_SERIAL:
    for (size_t b = 0; b < rs.nblocks; b++) scan_block(w0, b);
    scan_gs(w0, ref__allg.g, ref__allg.len, false);
    break;
  case REF_PHASE_PARALLEL:
    for (size_t b = 0; b < rs.nblocks; b++) scan_block(w0, b);
    queue_stack_jobs(w0);
    break;
  case REF_PHASE_ROOTJOBS:
    break;
  }
}

bool ref__roots_remaining(void) {
  switch (ref__cfg.phase) {
  case REF_PHASE_PARALLEL:
    return ref__wbuf_njobs() > 0;
  case REF_PHASE_ROOTJOBS:
    return atomic_load_explicit(&rs.xnext, memory_order_relaxed) < rs.njobs;
  default:
    return false;
  }
}

/* The rootjobs phase's indexed jobs, claimed CLAIM_BATCH at a time. */
static void claim_indexed_jobs(ref__worker *w) {
  for (;;) {
    size_t i = atomic_fetch_add_explicit(&rs.xnext, CLAIM_BATCH, memory_order_relaxed);
    if (i >= rs.njobs) return;
    size_t end = i + CLAIM_BATCH < rs.njobs ? i + CLAIM_BATCH : rs.njobs;
    for (; i < end && i < rs.nblocks; i++) scan_block(w, i);
    if (i < end) scan_gs(w, ref__allg.g + (i - rs.nblocks), end - i, true);
  }
}

void ref__roots_work(ref__worker *w) {
  switch (ref__cfg.phase) {
  case REF_PHASE_PARALLEL:
    run_stack_jobs(w);
    break;
  case REF_PHASE_ROOTJOBS:
    claim_indexed_jobs(w);
    break;
  default:
    break;
  }
}

void ref__roots_done(void) {
  for (int i = 0; i < REF_MAX_WORKERS; i++) {
    for (struct partchunk *c = rs.chunks[i], *n; c; c = n) {
      n = c->next;
      free(c);
    }
    rs.chunks[i] = NULL;
  }
}

void ref__roots_shutdown(void) {
  ref__roots_done();
  free(rs.ranges);
  memset(&rs, 0, sizeof rs);
}
