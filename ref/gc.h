/*
 * gc.h: collector internals -- mark workers, root jobs, the scanners.
 *
 * A cycle (gc.c) stops the world, enumerates roots (roots.c) according to
 * the phase switch, marks with W workers (workers.c drains; mark.c greys and
 * scans heap objects; scan_conservative.c and scan_frames.c scan stacks),
 * optionally verifies with the checkmark marker (checkmark.c), and sweeps
 * in parallel.
 *
 * Work items in the buffers are uintptr_t: a heap address (an object base or
 * the start of one of a large object's 128 KiB oblets), or a root item
 * tagged in its low bits (REF_ITEM_*). Invariant: every grey object is in
 * exactly one work buffer.
 */
#ifndef REF_GC_H
#define REF_GC_H

#include "funcdata.h"
#include "g.h"
#include "heap.h"
#include "workbuf.h"

#include <pthread.h>

#define REF_OBLET_BYTES ((uintptr_t)128 << 10) /* large objects are scanned in pieces */
#define REF_ROOT_BLOCK ((uintptr_t)256 << 10)  /* global roots are scanned in blocks */
#define REF_PTRBUF 64                          /* candidates batched before lookup */

/* Work-item tags (low bits; heap objects and Gs are 8-byte aligned). */
#define REF_ITEM_TAGS ((uintptr_t)7)
#define REF_ITEM_PART ((uintptr_t)2)  /* (uintptr_t)part | tag: a piece of a deep stack */

/* A piece of a conservative stack scan, split off a deep stack. */
typedef struct ref__stackpart {
  ref_g *g;
  uintptr_t lo, hi;
} ref__stackpart;

/* Per-cycle counters of one worker; summed into ref_gc_stats. */
typedef struct ref__wcount {
  uint64_t stacks_scanned, stack_bytes, words, candidates;
  uint64_t frames, lookups, cache_hits, slots;
  uint64_t objects_marked, bytes_marked;
} ref__wcount;

/* One mark worker: the initiating thread is worker 0. */
typedef struct ref__worker {
  int id;
  ref__gcwork gcw;
  ref__wcount n;
  ref_worker_stats st;
  size_t nptr;
  uintptr_t ptrbuf[REF_PTRBUF];
  ref__pccache pccache;
  pthread_t thread;
} __attribute__((aligned(REF_CACHE_LINE))) ref__worker;

/* ---- gc.c ---- */
int ref__gc_init(const ref_config *cfg);
void ref__gc_shutdown(void);

/* ---- roots.c ---- */
/* Root enumeration on the initiating thread, per the phase switch: serial
 * scans every root itself; parallel scans globals and queues one stack job
 * per G; rootjobs only sets up the indexed jobs. */
void ref__roots_prepare(ref__worker *w0);
/* Runs root jobs until none is left: parallel, buffers of stack jobs from
 * the jobs list; rootjobs, indexed jobs claimed by atomic counter. */
void ref__roots_work(ref__worker *w);
/* Whether root jobs are left for ref__roots_work (termination counts them
 * as visible work). */
bool ref__roots_remaining(void);
/* Runs a tagged work item (REF_ITEM_PART). */
void ref__item_run(ref__worker *w, uintptr_t item);
/* Frees the cycle's stack parts. */
void ref__roots_done(void);
void ref__roots_shutdown(void);
/* The registered global root ranges. */
typedef struct ref__rootrange {
  uintptr_t lo, hi;
} ref__rootrange;
size_t ref__globals_count(void);
const ref__rootrange *ref__globals(void);

/* ---- mark.c ---- */
/* Marks the object at base (slot idx of s); greys it if it has pointers. */
static inline void ref__greyobject(ref__worker *w, uintptr_t base, ref__span *s, uint32_t idx) {
  if (!ref__mark_tryset(s, idx)) return;
  w->n.objects_marked++;
  w->n.bytes_marked += ref__object_size(s);
  if (!ref__span_noscan(s)) ref__gcw_put(&w->gcw, base);
}
/* Marks the object p points into, if any (an exact or interior pointer). */
static inline void ref__mark_ptr(ref__worker *w, uintptr_t p) {
  ref__span *s;
  uint32_t idx;
  uintptr_t base = ref__find_object(p, &s, &idx);
  if (base) ref__greyobject(w, base, s, idx);
}
void ref__ptrbuf_flush(ref__worker *w);
void ref__scanobject(ref__worker *w, uintptr_t b);
/* Scans one grey item: an object, or a tagged job. */
static inline void ref__scan_item(ref__worker *w, uintptr_t item) {
  if (item & REF_ITEM_TAGS) ref__item_run(w, item);
  else ref__scanobject(w, item);
}
/* Scans objects (and jobs) until no work is left anywhere. */
void ref__drain(ref__worker *w);

/* ---- scan_conservative.c / scan_frames.c ---- */
void ref__scan_conservative(ref__worker *w, uintptr_t lo, uintptr_t hi);
void ref__scan_frames(ref__worker *w, ref_g *g);
void ref__scan_chain(ref__worker *w, ref_frame *top, uintptr_t below, uintptr_t hi, uint64_t goid);
/* Whether g's stack is scanned this cycle, and from where. */
static inline bool ref__g_scannable(const ref_g *g) {
  return g->status != REF_G_DEAD && g->started;
}
void ref__scanstack(ref__worker *w, ref_g *g);
/* Counts one stack whose live part, hi - sp bytes, this worker scans (in
 * full or, when split, the first piece of). */
static inline void ref__count_stack(ref__worker *w, uintptr_t bytes) {
  w->n.stacks_scanned++;
  w->n.stack_bytes += bytes;
  w->st.stacks_scanned++;
  w->st.stack_bytes += bytes;
}

/* ---- workers.c ---- */
extern _Atomic int ref__xnwait; /* idle mark workers */
int ref__workers_init(const ref_config *cfg);
void ref__workers_shutdown(void);
ref__worker *ref__worker_get(int i);
int ref__workers_count(void);
/* Runs fn(worker) on every worker, the caller as worker 0; returns when all
 * have finished. */
void ref__workers_run(void (*fn)(ref__worker *));
/* Termination detection: a drained worker calls this; returns true when the
 * whole mark phase is done, false when it should look for work again. */
bool ref__mark_idle(ref__worker *w);
void ref__mark_reset(int nworkers);

/* ---- checkmark.c ---- */
/* Re-marks with an independent serial marker and aborts on any difference. */
void ref__checkmark_verify(void);

#endif /* REF_GC_H */
