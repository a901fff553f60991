/*
 * workbuf.h: grey-object work buffers of the collector (Go's mgcwork.go and
 * lfstack.go).
 *
 * Glossary:
 *   ref__lfstack  lock-free Treiber stack of ref__lfnode, ABA-safe by packing
 *                 the node pointer with a per-node push counter in one word.
 *   ref__workbuf  2 KiB buffer of work items; owned by exactly one worker, or
 *                 sitting on exactly one of the three global lists.
 *   full / empty  global lists: buffers holding items (published for any
 *                 worker to take) and buffers holding none (recycled).
 *   jobs          the parallel phase's stack jobs (G pointers), taken before
 *                 any full buffer.
 *   ref__gcwork   a worker's private pair of buffers (Go's gcWork).
 *
 * Work items are uintptr_t values that the collector tags itself; they are
 * stored opaquely. 0 is never an item (it means "none").
 *
 * Buffers are carved from mmap'd chunks and never unmapped while the collector
 * runs (only ref__wbuf_shutdown unmaps them): that is what lets the lock-free
 * pop read the next link of a node another thread may have popped meanwhile.
 */
#ifndef REF_WORKBUF_H
#define REF_WORKBUF_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Lock-free stack
 * ------------------------------------------------------------------------- */

/* A stack node, embedded at the start of whatever is stacked. Must be 8-byte
 * aligned and lie below 2^REF_USER_VA_BITS (user space); push checks both. A node is
 * on at most one stack at a time, and while it is on one only the stack
 * touches it. */
typedef struct ref__lfnode {
  _Atomic uint64_t xnext; /* packed (next node, its push count); 0 = none */
  uintptr_t pushcnt;      /* times pushed; written only by the node's owner */
} ref__lfnode;

/* Zero-initialised = empty. */
typedef struct ref__lfstack {
  _Atomic uint64_t xhead; /* packed (top node, its push count); 0 = empty */
} ref__lfstack;

void ref__lfstack_push(ref__lfstack *s, ref__lfnode *n);
/* Returns NULL when empty. The pop acquires what the pusher wrote before its
 * push. */
ref__lfnode *ref__lfstack_pop(ref__lfstack *s);
bool ref__lfstack_empty(ref__lfstack *s);

/* ---------------------------------------------------------------------------
 * Work buffers and the global lists
 * ------------------------------------------------------------------------- */

#define REF_WORKBUF_SIZE 2048 /* bytes per buffer, as Go's _WorkbufSize */
#define REF_WORKBUF_NOBJ \
  ((REF_WORKBUF_SIZE - sizeof(ref__lfnode) - sizeof(size_t)) / sizeof(uintptr_t))

/* Invariant: obj[0, nobj) are items (non-zero); a buffer on the empty list
 * has nobj == 0, one on the full list has nobj > 0. */
typedef struct ref__workbuf {
  ref__lfnode node; /* must be first: the lists stack the buffer itself */
  size_t nobj;
  uintptr_t obj[REF_WORKBUF_NOBJ];
} ref__workbuf;

_Static_assert(sizeof(ref__workbuf) == REF_WORKBUF_SIZE, "workbuf is 2 KiB");

/* An empty buffer: recycled from the empty list, or carved from a new mmap'd
 * chunk (under a mutex; rare). Throws if mmap fails: marking cannot go on. */
ref__workbuf *ref__wbuf_getempty(void);
/* Precondition: b->nobj == 0. */
void ref__wbuf_putempty(ref__workbuf *b);
/* Publishes b for any worker and wakes parked ones. Precondition:
 * b->nobj > 0. */
void ref__wbuf_putfull(ref__workbuf *b);
/* Wakes the mark workers parked in a wait (workers.c), if any: call after
 * the store that publishes what they may wait for. A fence and a load when
 * nobody sleeps. */
void ref__unpark(void);
/* The same for a published buffer, which only an idle worker waits for: a
 * helper waiting for the serial phase's roots sleeps on. Worker 0 publishes
 * buffers all through that phase, and waking the helper for each was a
 * futex wake-up per buffer (15% of frames-serial's 100k Idle cycle at two
 * workers, perf). */
void ref__unpark_work(void);
/* A published buffer, or NULL when there is none. */
ref__workbuf *ref__wbuf_tryget_full(void);
/* Number of published buffers. Counted up before the push and down after the
 * pop, so it is never below the full list's length: a read of 0 means the
 * list was empty at that instant (termination detection relies on this). It
 * may briefly exceed the length, so tryget_full can fail while it is > 0. */
size_t ref__wbuf_nfull(void);
/* The parallel phase's stack jobs: buffers of G pointers on a list of their
 * own, which workers empty before they take grey objects (roots.c says why).
 * njobs is counted like nfull. */
void ref__wbuf_putjobs(ref__workbuf *b);
ref__workbuf *ref__wbuf_tryget_jobs(void);
size_t ref__wbuf_njobs(void);
/* Unmaps every chunk and resets the lists; the next getempty maps afresh.
 * Precondition: no thread uses the lists and every buffer is back on one of
 * them (no worker holds one). */
void ref__wbuf_shutdown(void);

/* ---------------------------------------------------------------------------
 * Per-worker buffer pair (Go's gcWork)
 * ------------------------------------------------------------------------- */

/* Owned by one worker thread. A zeroed ref__gcwork is valid and empty.
 * Invariant: both wbuf1 and wbuf2 are NULL or neither is. Puts and gets go
 * to wbuf1; wbuf2 is a spare that absorbs the swing between a full and an
 * empty buffer without touching the global lists (Go's hysteresis). */
typedef struct ref__gcwork {
  ref__workbuf *wbuf1, *wbuf2;
  uint64_t bufs_taken; /* full buffers taken from the global list */
  uint64_t bufs_given; /* full buffers published (put, balance, dispose) */
} ref__gcwork;

void ref__gcw_put_slow(ref__gcwork *w, uintptr_t item);
uintptr_t ref__gcw_tryget_slow(ref__gcwork *w);

/* Enqueues one item (non-zero). */
static inline void ref__gcw_put(ref__gcwork *w, uintptr_t item) {
  ref__workbuf *b = w->wbuf1;
  ref_assert_internal(item != 0);
  if (ref_likely(b != NULL && b->nobj < REF_WORKBUF_NOBJ)) {
    b->obj[b->nobj++] = item;
    return;
  }
  ref__gcw_put_slow(w, item);
}

/* An item from the local buffers only (swapping in wbuf2 if wbuf1 is empty),
 * or 0; never touches the global lists. */
static inline uintptr_t ref__gcw_tryget_fast(ref__gcwork *w) {
  ref__workbuf *b = w->wbuf1;
  if (b == NULL)
    return 0;
  if (b->nobj == 0) {
    if (w->wbuf2->nobj == 0)
      return 0;
    w->wbuf1 = w->wbuf2;
    w->wbuf2 = b;
    b = w->wbuf1;
  }
  return b->obj[--b->nobj];
}

/* An item, local or else from a published buffer; 0 when there is none
 * anywhere (at that instant). LIFO within a buffer. */
static inline uintptr_t ref__gcw_tryget(ref__gcwork *w) {
  ref__workbuf *b = w->wbuf1;
  if (ref_likely(b != NULL && b->nobj > 0))
    return b->obj[--b->nobj];
  return ref__gcw_tryget_slow(w);
}

/* True when the worker holds no items (it may still hold empty buffers). */
static inline bool ref__gcw_empty(const ref__gcwork *w) {
  return w->wbuf1 == NULL || (w->wbuf1->nobj == 0 && w->wbuf2->nobj == 0);
}

/* Enqueues n items (each non-zero), publishing full buffers as they fill. */
void ref__gcw_put_batch(ref__gcwork *w, const uintptr_t *items, size_t n);
/* Returns both buffers to the global lists (non-empty ones to full, empty ones
 * to empty) and leaves w with none. The counters are kept. */
void ref__gcw_dispose(ref__gcwork *w);
/* Offers work to idle workers (Go's balance): publishes wbuf2 if it holds
 * items, else half of wbuf1 if that holds more than 4; otherwise nothing. */
void ref__gcw_balance(ref__gcwork *w);

#endif /* REF_WORKBUF_H */
