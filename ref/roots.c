/*
 * roots.c: the roots of a cycle and how the phase switch hands them out.
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
 * The registry of global ranges is globals.c; the scan of a run of stacks,
 * with its prefetch pipeline, is scan_stack.c.
 */
#include "gc.h"

#include <string.h>

/* This cycle's root jobs. */
static struct {
  size_t nblocks;        /* global blocks (first jobs in rootjobs) */
  size_t njobs;          /* nblocks + allg.len */
  _Atomic size_t xnext;  /* rootjobs: next unclaimed job */
  size_t batch;          /* rootjobs: jobs per claim (gc.h) */
} rs;

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
    uint64_t t0 = ref__trace_start(w);
    w->gcw.bufs_taken++;
    size_t n = b->nobj;
    for (size_t i = 0; i < n; i++) gs[i] = (ref_g *)b->obj[i];
    b->nobj = 0;
    ref__wbuf_putempty(b);
    ref__scan_gs(w, gs, n, true);
    ref__trace(w, REF_TRACE_STACKS, t0, n);
  }
}

void ref__roots_prepare(ref__worker *w0) {
  ref__scan_g0_records(w0);
  rs.nblocks = ref__globals_nblocks();
  rs.njobs = rs.nblocks + ref__allg.len;
  rs.batch = ref__claim_batch(rs.njobs, ref__workers_count());
  atomic_store(&rs.xnext, 0);
  switch (ref__cfg.phase) {
  case REF_PHASE_SERIAL:
    for (size_t b = 0; b < rs.nblocks; b++) ref__globals_scan_block(w0, b);
    ref__scan_gs(w0, ref__allg.g, ref__allg.len, false);
    break;
  case REF_PHASE_PARALLEL:
    for (size_t b = 0; b < rs.nblocks; b++) ref__globals_scan_block(w0, b);
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

/* The rootjobs phase's indexed jobs, claimed rs.batch at a time. */
static void claim_indexed_jobs(ref__worker *w) {
  for (;;) {
    size_t i = atomic_fetch_add_explicit(&rs.xnext, rs.batch, memory_order_relaxed);
    if (i >= rs.njobs) return;
    uint64_t t0 = ref__trace_start(w);
    size_t end = i + rs.batch < rs.njobs ? i + rs.batch : rs.njobs, first = i;
    for (; i < end && i < rs.nblocks; i++) ref__globals_scan_block(w, i);
    if (i < end) ref__scan_gs(w, ref__allg.g + (i - rs.nblocks), end - i, true);
    ref__trace(w, REF_TRACE_STACKS, t0, end - first);
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

void ref__roots_done(void) { ref__stackparts_free(); }

void ref__roots_shutdown(void) {
  ref__roots_done();
  ref__globals_shutdown();
  memset(&rs, 0, sizeof rs);
}
