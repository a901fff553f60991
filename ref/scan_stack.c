/*
 * scan_stack.c: the scan of goroutine stacks: the roots of one G (its start
 * argument until it starts, then its stack, by frames or conservatively:
 * ref__scanstack is the dispatcher), the software prefetch pipeline that
 * runs over a run of Gs, the pieces a deep conservative stack is split
 * into, the scheduler stack's frame records, and the memory floor
 * (ref_debug_touch_stacks) that reads what these scans read.
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
 * one line walk_ahead goroutines ahead starts the page walk, and the rest of
 * the live top, up to prefetch_lines lines, follows lines_ahead goroutines
 * ahead, after the current stack's scan, when it hits the TLB. Measured on
 * the 2-core VM, 100k GoroutineIdle, one worker: no stack prefetch 24 ms
 * (frames-serial) and 34 ms (conservative-serial); every line 4 ahead in one
 * step 10.2 and 12.2 ms; in two steps, 8 and 3 ahead, 8.5 and 9.7-10.5 ms.
 * The distances are ref_config's walk_ahead, lines_ahead and prefetch_lines
 * (defaults 8, 3, 8 in config.c), read once per run of Gs into a pf_dist;
 * the bench's --prefetch=auto picks them per machine. */
typedef struct pf_dist {
  size_t walk, lines;  /* goroutines ahead: the page walk, the live top */
  int nlines;          /* lines of a live top */
  bool all;            /* the floor: clean stacks too (see prefetch_g) */
} pf_dist;

static inline pf_dist pf_dist_get(void) {
  return (pf_dist){(size_t)ref__cfg.walk_ahead, (size_t)ref__cfg.lines_ahead,
                   ref__cfg.prefetch_lines, false};
}

#define PARTS_PER_CHUNK 256

/* Stack parts, carved per worker from chunks that never move; freed when
 * the cycle ends. */
static struct {
  struct partchunk {
    struct partchunk *next;
    size_t used;
    ref__stackpart part[PARTS_PER_CHUNK];
  } *chunks[REF_MAX_WORKERS];
} parts;

/* Under reuse=clean a parked G's second complete scan in a row is recorded,
 * its first marks it seen (g.h: REF_G_SEEN). A running one, which collects
 * from its own call, is neither: it would be clean when it resumes. */
void ref__scanstack(ref__worker *w, ref_g *g) {
  ref_assert_internal((uintptr_t)g->sp >= g->stack.lo && (uintptr_t)g->sp < g->stack.hi);
  ref__count_stack(w, g->stack.hi - (uintptr_t)g->sp);
  bool parked = ref__cfg.reuse == REF_REUSE_CLEAN && g->status != REF_G_RUNNING;
  bool record = parked && g->scan_clean == REF_G_SEEN;
  if (record) ref__reuse_begin(w);
  if (ref__cfg.scan == REF_SCAN_FRAMES) ref__scan_frames(w, g);
  else ref__scan_conservative(w, (uintptr_t)g->sp, g->stack.hi);
  ref__ptrbuf_flush(w);
  if (record) ref__reuse_end(w, g);
  else if (parked) g->scan_clean = REF_G_SEEN;
}

static ref__stackpart *part_new(ref__worker *w) {
  struct partchunk *c = parts.chunks[w->id];
  if (!c || c->used == PARTS_PER_CHUNK) {
    struct partchunk *nc = malloc(sizeof *nc);
    if (!nc) ref__throw("out of memory for stack scan parts");
    nc->next = c;
    nc->used = 0;
    parts.chunks[w->id] = c = nc;
  }
  return &c->part[c->used++];
}

/* Scans g's roots: its start argument if it has not started, else its
 * stack, or the replay of its record when it is clean (reuse=clean).
 * may_split: queue pieces of a deep conservative stack for others.
 * The pieces are whole words from the (word-aligned) saved sp, whatever
 * split_bytes is, so that no word falls between two of them; none reaches
 * past the top. */
static void scan_g(ref__worker *w, ref_g *g, bool may_split) {
  /* Atomic: in a concurrent cycle a waker may change a locked G's status. */
  if (__atomic_load_n(&g->status, __ATOMIC_RELAXED) == REF_G_DEAD) return;
  if (!g->started) {
    uintptr_t a = (uintptr_t)g->arg;
    ref__shade(w, a);
    return;
  }
  if (ref__cfg.reuse == REF_REUSE_CLEAN && ref__reuse_replay(w, g)) return;
  uintptr_t sp = (uintptr_t)g->sp, hi = g->stack.hi;
  uintptr_t step = ref__cfg.split_bytes < REF_WORD ? REF_WORD
                                                   : ref_align_down(ref__cfg.split_bytes, REF_WORD);
  if (!may_split || ref__cfg.scan != REF_SCAN_CONSERVATIVE || hi - sp <= step) {
    ref__scanstack(w, g);
    return;
  }
  ref_assert_internal(sp % REF_WORD == 0);
  for (uintptr_t lo = sp + step, end; lo < hi; lo = end) {
    end = hi - lo > step ? lo + step : hi;
    ref__stackpart *p = part_new(w);
    *p = (ref__stackpart){g, lo, end};
    ref__gcw_put(&w->gcw, (uintptr_t)p | REF_ITEM_PART);
  }
  ref__count_stack(w, hi - sp);
  w->n.reuse_unrecorded += ref__cfg.reuse == REF_REUSE_CLEAN; /* pieces: not recorded (g.h) */
  ref__scan_conservative(w, sp, sp + step);
  ref__ptrbuf_flush(w);
}

/* Fetches lines [first, last) of the live top of a goroutine's stack:
 * [sp, hi) for a conservative scan, [top record, hi) for frames, at most
 * pf_dist.nlines lines; in a scan none of a clean G's (reuse=clean: a replay
 * reads no stack), while the floor (pf_dist.all) fetches every stack. */
ref_prefetch_fn void prefetch_g(pf_dist d, ref_g *g, bool frames, int first, int last) {
  uintptr_t from = frames ? (uintptr_t)g->frames : (uintptr_t)g->sp;
  if (g->scan_clean >= REF_G_CLEAN && !d.all) { /* its record's line instead, then its objects */
    if (first == 0) __builtin_prefetch(ref__reuse_entry_line(g));
    else ref__reuse_prefetch_objects(g);
    return;
  }
  if (from == 0) return;
  uintptr_t a = ref_align_down(from, REF_CACHE_LINE) + REF_CACHE_LINE * (uintptr_t)first;
  uintptr_t hi = g->stack.hi;
  for (int i = first; i < last && a < hi; i++, a += REF_CACHE_LINE) __builtin_prefetch((void *)a);
}

/* The stack scans' software pipeline of prefetches over gs[0, n): G structs
 * walk + WALK_GROUP + G_EXTRA goroutines ahead, then the two steps above.
 * The walks start WALK_GROUP at a time, back to back, from every
 * WALK_GROUP-th goroutine: a prefetch that misses the TLB cannot retire
 * before its walk ends, and one per goroutine, between the scans, let the
 * reorder buffer fill behind each walk, so few overlapped. perf put 80-93%
 * of scan_gs's own samples on the instruction after that prefetch. In
 * groups of 8, 4 alternated processes, 100k, one worker, 2-vCPU Xeon:
 * GoroutineIdle conservative-serial 0.81x the time, frames-rootjobs 0.92x;
 * GoroutineSelect 0.91x for both (groups of 4 to 32 were alike). pipeline_start fetches
 * the first goroutines; pipeline_walk runs before goroutine i is scanned,
 * pipeline_lines after. pipeline_walk also fetches the first line of the
 * lines_ahead goroutine again, before the scan, though its walk started it:
 * fetching all its lines after the scan instead made conservative-serial
 * 10.1 ms against 9.4 (100k GoroutineIdle, one worker, 4 A/B rounds).
 * scan_gs and touch_stacks share the pipeline, so the floor keeps the
 * scan's prefetching. */
#define G_EXTRA 8    /* G structs are fetched walk + WALK_GROUP + G_EXTRA ahead */
#define WALK_GROUP 8 /* page walks started together (above) */

ref_prefetch_fn void pipeline_start(pf_dist d, ref_g *const *gs, size_t n, bool frames) {
  for (size_t i = 0; i < n && i < d.walk + WALK_GROUP + G_EXTRA; i++) __builtin_prefetch(gs[i]);
  for (size_t i = 0; i < n && i < d.walk; i++)
    prefetch_g(d, gs[i], frames, 0, i < d.lines ? d.nlines : 1);
}

ref_prefetch_fn void pipeline_walk(pf_dist d, ref_g *const *gs, size_t i, size_t n, bool frames) {
  if (i + d.walk + WALK_GROUP + G_EXTRA < n) __builtin_prefetch(gs[i + d.walk + WALK_GROUP + G_EXTRA]);
  if (i % WALK_GROUP == 0)
    for (size_t j = i + d.walk; j < n && j < i + d.walk + WALK_GROUP; j++)
      prefetch_g(d, gs[j], frames, 0, 1);
  if (i + d.lines < n) prefetch_g(d, gs[i + d.lines], frames, 0, 1);
}

ref_prefetch_fn void pipeline_lines(pf_dist d, ref_g *const *gs, size_t i, size_t n, bool frames) {
  if (i + d.lines < n) prefetch_g(d, gs[i + d.lines], frames, 1, d.nlines);
}

/* Scans the roots of gs[0, n), with the pipeline above (see gc.h).
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
void ref__scan_gs(ref__worker *w, ref_g *const *gs, size_t n, bool may_split) {
  const bool frames = ref__cfg.scan == REF_SCAN_FRAMES, fill = !frames;
  const pf_dist d = pf_dist_get();
  pipeline_start(d, gs, n, frames);
  for (size_t i = 0; i < n; i++) {
    pipeline_walk(d, gs, i, n, frames);
    scan_g(w, gs[i], may_split);
    pipeline_lines(d, gs, i, n, frames);
    uintptr_t item;
    if (fill && (item = ref__gcw_tryget_fast(&w->gcw)) != 0) ref__scan_item(w, item);
  }
  ref__ptrbuf_flush(w); /* replays leave their words queued */
}

/* Reads what a conservative scan reads, [saved sp, top) of every started
 * live G of gs[0, n), with the scans' prefetch pipeline, and does nothing
 * with it but sum it: the memory floor under a stack scan (see
 * ref_debug_touch_stacks). Poisoned words are read as the scan reads them.
 * Adds to res[0] (sum) and res[1] (bytes). */
REF_NO_SANITIZE_ADDRESS
static void touch_run(ref_g *const *gs, size_t n, uint64_t res[2]) {
  uint64_t sum = 0, bytes = 0;
  pf_dist d = pf_dist_get();
  d.all = true;
  pipeline_start(d, gs, n, false);
  for (size_t i = 0; i < n; i++) {
    pipeline_walk(d, gs, i, n, false);
    const ref_g *g = gs[i];
    if (ref__g_scannable(g)) {
      const uintptr_t *p = g->sp, *end = (const uintptr_t *)g->stack.hi;
      bytes += (uintptr_t)end - (uintptr_t)p;
      for (; p < end; p++) sum += *p;
    }
    pipeline_lines(d, gs, i, n, false);
  }
  res[0] += sum;
  res[1] += bytes;
}

/* The parallel floor: workers [0, nworkers) claim runs of `batch` Gs with
 * an atomic counter, as the rootjobs phase claims its stack jobs. */
typedef struct touch_state {
  int nworkers;
  size_t batch;
  _Atomic size_t xnext;
  struct { _Alignas(64) uint64_t res[2]; } w[REF_MAX_WORKERS];
} touch_state;

static void touch_region(ref__worker *w, void *ctx) {
  touch_state *ts = ctx;
  if (w->id >= ts->nworkers) return;
  size_t n = ref__allg.len;
  for (;;) {
    size_t i = atomic_fetch_add_explicit(&ts->xnext, ts->batch, memory_order_relaxed);
    if (i >= n) return;
    touch_run(ref__allg.g + i, n - i < ts->batch ? n - i : ts->batch, ts->w[w->id].res);
  }
}

static void touch_stacks(void *arg) {
  touch_state *ts = arg;
  if (ts->nworkers == 1) touch_run(ref__allg.g, ref__allg.len, ts->w[0].res);
  else ref__workers_run(touch_region, ts);
}

int ref_debug_touch_stacks_parallel(int nworkers, uint64_t *sum, uint64_t *bytes) {
  REF_RUNTIME_CALL();
  if (!ref__m_get()) return ref__seterr("ref_debug_touch_stacks_parallel called with no runtime");
  if (nworkers < 1 || nworkers > ref__workers_count())
    return ref__seterr("touch workers %d not in 1..%d (the runtime's mark workers)", nworkers,
                       ref__workers_count());
  static touch_state ts; /* 16 KiB: not on a goroutine's stack */
  memset(&ts, 0, sizeof ts);
  ts.nworkers = nworkers;
  ts.batch = ref__claim_batch(ref__allg.len, nworkers);
  ref__systemstack(touch_stacks, &ts);
  uint64_t s = 0, b = 0;
  for (int i = 0; i < nworkers; i++) {
    s += ts.w[i].res[0];
    b += ts.w[i].res[1];
  }
  if (sum) *sum = s;
  if (bytes) *bytes = b;
  return 0;
}

uint64_t ref_debug_touch_stacks(uint64_t *bytes) {
  REF_RUNTIME_CALL();
  uint64_t sum = 0;
  if (ref_debug_touch_stacks_parallel(1, &sum, bytes) != 0) ref__throw("%s", ref_error());
  return sum;
}

void ref__item_run(ref__worker *w, uintptr_t item) {
  ref_assert_internal((item & REF_ITEM_TAGS) == REF_ITEM_PART);
  ref__stackpart *p = (ref__stackpart *)(item & ~REF_ITEM_TAGS);
  ref__scan_conservative(w, p->lo, p->hi);
  ref__ptrbuf_flush(w);
}

/* Every M's scheduler-stack records: precise roots in every scan mode. */
void ref__scan_g0_records(ref__worker *w) {
  for (int i = 0; i < ref__nm(); i++) {
    ref__m *m = ref__m_at(i);
    if (m->g0_frames) ref__scan_chain(w, m->g0_frames, (uintptr_t)m->g0_frames, m->g0_hi, 0);
  }
  ref__ptrbuf_flush(w);
}

void ref__stackparts_free(void) {
  for (int i = 0; i < REF_MAX_WORKERS; i++) {
    for (struct partchunk *c = parts.chunks[i], *n; c; c = n) {
      n = c->next;
      free(c);
    }
    parts.chunks[i] = NULL;
  }
}
