/*
 * globals.c: the registry of global roots (bdwgc's mark_rts.c): ranges that
 * ref_add_root registered, scanned conservatively in blocks of
 * REF_ROOT_BLOCK so that the rootjobs phase can hand them out as jobs.
 */
#include "gc.h"

#include <pthread.h>
#include <string.h>

/* Registered from any mutator under the lock; read by the collector with
 * the world stopped. */
static struct {
  ref__rootrange *ranges;
  size_t nranges, cap;
} gr;
static pthread_mutex_t gr_lock = PTHREAD_MUTEX_INITIALIZER;

void ref_add_root(void *p, size_t len) {
  REF_RUNTIME_CALL();
  ref_assert(((uintptr_t)p & (REF_WORD - 1)) == 0);
  if ((uintptr_t)p + len < (uintptr_t)p)
    ref__throw("ref_add_root: [%p, +%zu) wraps around the address space", p, len);
  pthread_mutex_lock(&gr_lock);
  if (gr.nranges == gr.cap && !REF_GROW(gr.ranges, gr.cap, 16))
    ref__throw("out of memory registering a root range (%zu registered)", gr.nranges);
  gr.ranges[gr.nranges++] = (ref__rootrange){(uintptr_t)p, (uintptr_t)p + len};
  pthread_mutex_unlock(&gr_lock);
}

void ref_remove_root(void *p) {
  REF_RUNTIME_CALL();
  pthread_mutex_lock(&gr_lock);
  for (size_t i = 0; i < gr.nranges; i++) {
    if (gr.ranges[i].lo == (uintptr_t)p) {
      gr.ranges[i] = gr.ranges[--gr.nranges];
      break;
    }
  }
  pthread_mutex_unlock(&gr_lock);
}

size_t ref__globals_count(void) { return gr.nranges; }
const ref__rootrange *ref__globals(void) { return gr.ranges; }

static size_t range_blocks(const ref__rootrange *r) {
  return (r->hi - r->lo + REF_ROOT_BLOCK - 1) / REF_ROOT_BLOCK;
}

size_t ref__globals_nblocks(void) {
  size_t n = 0;
  for (size_t r = 0; r < gr.nranges; r++) n += range_blocks(&gr.ranges[r]);
  return n;
}

/* Scans global block i (counting blocks across ranges in order). */
void ref__globals_scan_block(ref__worker *w, size_t i) {
  for (size_t r = 0; r < gr.nranges; r++) {
    size_t nb = range_blocks(&gr.ranges[r]);
    if (i < nb) {
      uintptr_t lo = gr.ranges[r].lo + i * REF_ROOT_BLOCK;
      uintptr_t hi = lo + REF_ROOT_BLOCK < gr.ranges[r].hi ? lo + REF_ROOT_BLOCK : gr.ranges[r].hi;
      ref__scan_conservative(w, lo, hi);
      ref__ptrbuf_flush(w);
      return;
    }
    i -= nb;
  }
}

void ref__globals_shutdown(void) {
  free(gr.ranges);
  memset(&gr, 0, sizeof gr);
}
