/*
 * workbuf.c: the lock-free stack, the global full/empty buffer lists with
 * their chunk allocator, and the slow paths of the per-worker buffer pair.
 * See workbuf.h for the types and their invariants.
 */
#include "workbuf.h"
#include "os.h"

#include <pthread.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Lock-free stack
 *
 * A stack word packs a node pointer and a count into 64 bits. User
 * addresses are below 2^REF_USER_VA_BITS (arch.h: 47 on x86-64, 48 on
 * arm64) and nodes are 8-byte aligned, so a pointer needs 44 or 45 bits,
 * leaving 20 or 19 bits of count (Go keeps 19). The count is the node's push
 * count, so a pop's CAS from (N, c) fails if N was popped and pushed again
 * in between (the ABA case), unless it was pushed exactly a multiple of
 * 2^LF_CNT_BITS times meanwhile.
 *
 * Pop reads the next link of a node that another thread may pop and push
 * again concurrently: the link is atomic (no data race), and a stale value is
 * harmless because the CAS then fails. The node's memory must stay mapped,
 * which holds since buffers are never unmapped before ref__wbuf_shutdown.
 * ------------------------------------------------------------------------- */

#define LF_ADDR_BITS REF_USER_VA_BITS
#define LF_CNT_BITS (64 - LF_ADDR_BITS + 3)
#define LF_CNT_MASK ((UINT64_C(1) << LF_CNT_BITS) - 1)

static uint64_t lf_pack(const ref__lfnode *n, uintptr_t cnt) {
  return ((uint64_t)(uintptr_t)n >> 3) << LF_CNT_BITS | ((uint64_t)cnt & LF_CNT_MASK);
}

static ref__lfnode *lf_unpack(uint64_t v) {
  return (ref__lfnode *)(uintptr_t)((v >> LF_CNT_BITS) << 3);
}

void ref__lfstack_push(ref__lfstack *s, ref__lfnode *n) {
  n->pushcnt++;
  uint64_t v = lf_pack(n, n->pushcnt);
  if (ref_unlikely(lf_unpack(v) != n))
    ref__throw("lfstack_push: node %p is misaligned or above 2^%d", (void *)n, LF_ADDR_BITS);
  uint64_t old = atomic_load_explicit(&s->xhead, memory_order_relaxed);
  do {
    atomic_store_explicit(&n->xnext, old, memory_order_relaxed);
  } while (!atomic_compare_exchange_weak_explicit(&s->xhead, &old, v, memory_order_release,
                                                  memory_order_relaxed));
}

ref__lfnode *ref__lfstack_pop(ref__lfstack *s) {
  uint64_t old = atomic_load_explicit(&s->xhead, memory_order_acquire);
  for (;;) {
    if (old == 0)
      return NULL;
    ref__lfnode *n = lf_unpack(old);
    uint64_t next = atomic_load_explicit(&n->xnext, memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&s->xhead, &old, next, memory_order_acquire,
                                              memory_order_acquire))
      return n;
  }
}

bool ref__lfstack_empty(ref__lfstack *s) {
  return atomic_load_explicit(&s->xhead, memory_order_relaxed) == 0;
}

/* ---------------------------------------------------------------------------
 * Global lists and the chunk allocator
 *
 * Every buffer carved so far is either owned by one worker or on exactly one
 * of the three lists (full, empty, and the parallel phase's stack jobs).
 * Chunks form a list through their headers, for shutdown.
 * ------------------------------------------------------------------------- */

#define WBUF_CHUNK_SIZE ((size_t)256 << 10) /* 127 buffers after the header */
#define WBUF_CHUNK_HDR ((size_t)64)
#define WBUF_PER_CHUNK ((WBUF_CHUNK_SIZE - WBUF_CHUNK_HDR) / REF_WORKBUF_SIZE)

typedef struct wbuf_chunk {
  struct wbuf_chunk *next;
} wbuf_chunk;

/* Each on its own cache line: workers hammer them from every core. */
static _Alignas(REF_CACHE_LINE) ref__lfstack full_list;
static _Alignas(REF_CACHE_LINE) ref__lfstack empty_list;
static _Alignas(REF_CACHE_LINE) ref__lfstack jobs_list;
static _Alignas(REF_CACHE_LINE) _Atomic size_t xnfull;
static _Alignas(REF_CACHE_LINE) _Atomic size_t xnjobs;

static pthread_mutex_t chunk_lock = PTHREAD_MUTEX_INITIALIZER;
static wbuf_chunk *chunks;    /* guarded by chunk_lock */
static size_t nbufs_carved;   /* guarded by chunk_lock */

/* Maps a chunk, keeps its first buffer for the caller and pushes the rest on
 * the empty list. Called with chunk_lock held. */
static ref__workbuf *chunk_carve(void) {
  void *p = ref__os_map(WBUF_CHUNK_SIZE, false, false);
  if (!p)
    ref__throw("workbuf: out of memory mapping a %zu-byte chunk", WBUF_CHUNK_SIZE);
  wbuf_chunk *c = p;
  c->next = chunks;
  chunks = c;
  ref__workbuf *bufs = (ref__workbuf *)((char *)p + WBUF_CHUNK_HDR);
  for (size_t i = 1; i < WBUF_PER_CHUNK; i++)
    ref__lfstack_push(&empty_list, &bufs[i].node);
  nbufs_carved += WBUF_PER_CHUNK;
  return &bufs[0];
}

ref__workbuf *ref__wbuf_getempty(void) {
  ref__workbuf *b = (ref__workbuf *)ref__lfstack_pop(&empty_list);
  if (b == NULL) {
    pthread_mutex_lock(&chunk_lock);
    b = (ref__workbuf *)ref__lfstack_pop(&empty_list); /* refilled meanwhile? */
    if (b == NULL)
      b = chunk_carve();
    pthread_mutex_unlock(&chunk_lock);
  }
  ref_assert_internal(b->nobj == 0);
  return b;
}

void ref__wbuf_putempty(ref__workbuf *b) {
  ref_assert_internal(b->nobj == 0);
  ref__lfstack_push(&empty_list, &b->node);
}

/* A counted list of non-empty buffers: the count goes up before the push
 * and down after the pop (see ref__wbuf_nfull). */
static void counted_push(ref__lfstack *l, _Atomic size_t *n, ref__workbuf *b) {
  ref_assert_internal(b->nobj > 0 && b->nobj <= REF_WORKBUF_NOBJ);
  atomic_fetch_add(n, 1);
  ref__lfstack_push(l, &b->node);
  ref__unpark_work();
}

static ref__workbuf *counted_pop(ref__lfstack *l, _Atomic size_t *n) {
  ref__workbuf *b = (ref__workbuf *)ref__lfstack_pop(l);
  if (b != NULL) {
    ref_assert_internal(b->nobj > 0);
    atomic_fetch_sub(n, 1);
  }
  return b;
}

void ref__wbuf_putfull(ref__workbuf *b) { counted_push(&full_list, &xnfull, b); }
ref__workbuf *ref__wbuf_tryget_full(void) { return counted_pop(&full_list, &xnfull); }
size_t ref__wbuf_nfull(void) { return atomic_load(&xnfull); }

void ref__wbuf_putjobs(ref__workbuf *b) { counted_push(&jobs_list, &xnjobs, b); }
ref__workbuf *ref__wbuf_tryget_jobs(void) { return counted_pop(&jobs_list, &xnjobs); }
size_t ref__wbuf_njobs(void) { return atomic_load(&xnjobs); }

/* Pops every buffer of s; returns how many there were. */
static size_t list_drain(ref__lfstack *s) {
  size_t n = 0;
  while (ref__lfstack_pop(s) != NULL)
    n++;
  return n;
}

void ref__wbuf_shutdown(void) {
  pthread_mutex_lock(&chunk_lock);
  size_t nlisted = list_drain(&full_list) + list_drain(&empty_list) + list_drain(&jobs_list);
  if (nlisted != nbufs_carved)
    ref__throw("wbuf_shutdown: %zu of %zu buffers are still held by workers",
               nbufs_carved - nlisted, nbufs_carved);
  while (chunks != NULL) {
    wbuf_chunk *c = chunks;
    chunks = c->next;
    ref__os_unmap(c, WBUF_CHUNK_SIZE);
  }
  nbufs_carved = 0;
  atomic_store(&xnfull, 0);
  atomic_store(&xnjobs, 0);
  pthread_mutex_unlock(&chunk_lock);
}

/* ---------------------------------------------------------------------------
 * Per-worker buffer pair: slow paths
 * ------------------------------------------------------------------------- */

static void gcw_publish(ref__gcwork *w, ref__workbuf *b) {
  ref__wbuf_putfull(b);
  w->bufs_given++;
}

/* Makes wbuf1 a buffer with room, keeping the invariant. */
static void gcw_make_room(ref__gcwork *w) {
  if (w->wbuf1 == NULL) {
    w->wbuf1 = ref__wbuf_getempty();
    w->wbuf2 = ref__wbuf_getempty();
    return;
  }
  ref__workbuf *b = w->wbuf1;
  w->wbuf1 = w->wbuf2;
  w->wbuf2 = b;
  if (w->wbuf1->nobj == REF_WORKBUF_NOBJ) { /* both full: publish one */
    gcw_publish(w, w->wbuf1);
    w->wbuf1 = ref__wbuf_getempty();
  }
}

void ref__gcw_put_slow(ref__gcwork *w, uintptr_t item) {
  gcw_make_room(w);
  ref__workbuf *b = w->wbuf1;
  b->obj[b->nobj++] = item;
}

uintptr_t ref__gcw_tryget_slow(ref__gcwork *w) {
  uintptr_t item = ref__gcw_tryget_fast(w);
  if (item != 0)
    return item;
  ref__workbuf *full = ref__wbuf_tryget_full();
  if (full == NULL)
    return 0;
  w->bufs_taken++;
  if (w->wbuf1 == NULL)
    w->wbuf2 = ref__wbuf_getempty();
  else
    ref__wbuf_putempty(w->wbuf1); /* both were empty: keep wbuf2 as the spare */
  w->wbuf1 = full;
  return full->obj[--full->nobj];
}

void ref__gcw_put_batch(ref__gcwork *w, const uintptr_t *items, size_t n) {
  while (n > 0) {
    if (w->wbuf1 == NULL || w->wbuf1->nobj == REF_WORKBUF_NOBJ)
      gcw_make_room(w);
    ref__workbuf *b = w->wbuf1;
    size_t k = REF_WORKBUF_NOBJ - b->nobj;
    if (k > n)
      k = n;
    memcpy(&b->obj[b->nobj], items, k * sizeof *items);
    b->nobj += k;
    items += k;
    n -= k;
  }
}

/* Returns one buffer to the list its contents call for. */
static void gcw_release(ref__gcwork *w, ref__workbuf *b) {
  if (b->nobj == 0)
    ref__wbuf_putempty(b);
  else
    gcw_publish(w, b);
}

void ref__gcw_dispose(ref__gcwork *w) {
  if (w->wbuf1 == NULL)
    return;
  gcw_release(w, w->wbuf1);
  gcw_release(w, w->wbuf2);
  w->wbuf1 = w->wbuf2 = NULL;
}

/* Moves the top half of wbuf1 into a fresh buffer that becomes wbuf1, and
 * publishes the old wbuf1 with the bottom half (Go's handoff). */
static void gcw_handoff(ref__gcwork *w) {
  ref__workbuf *b = w->wbuf1, *b1 = ref__wbuf_getempty();
  size_t n = b->nobj / 2;
  b->nobj -= n;
  memcpy(b1->obj, &b->obj[b->nobj], n * sizeof b->obj[0]);
  b1->nobj = n;
  gcw_publish(w, b);
  w->wbuf1 = b1;
}

void ref__gcw_balance(ref__gcwork *w) {
  if (w->wbuf1 == NULL)
    return;
  if (w->wbuf2->nobj != 0) {
    gcw_publish(w, w->wbuf2);
    w->wbuf2 = ref__wbuf_getempty();
  } else if (w->wbuf1->nobj > 4) {
    gcw_handoff(w);
  }
}
