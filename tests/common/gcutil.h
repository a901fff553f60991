/*
 * gcutil.h: helpers shared by the collector tests (test_gc, test_frames,
 * test_parallel): canaries, failures recorded on goroutines, heap queries,
 * cycle checks, and a channel to park goroutines on.
 */
#ifndef STACKSCAN_GCUTIL_H
#define STACKSCAN_GCUTIL_H

#include "testutil.h"

#include "heap.h" /* ref__find_object: whether an address is an allocated object */

/* A canary: unique per id, top bit set so it never looks like a heap
 * address to a conservative scan, never the poison pattern. */
static inline uint64_t canary(uint64_t id) {
  uint64_t c = (id + 1) * 0x9E3779B97F4A7C15ull;
  c ^= c >> 29;
  return c | (1ull << 63) | 1u;
}

/* Failures seen on goroutines, reported by the test on the scheduler stack
 * (cmocka's failure longjmp must not leave a goroutine stack). Counted by
 * goroutines on every mutator; read after ref_run. */
static struct {
  _Atomic int fails;
  char first[256];   /* written by the first failure only */
  _Atomic long checked;
  _Atomic long done;
} res;

/* Turns. A test whose goroutines draw from one seeded stream or change one
 * model takes turns, so that with several mutators they do it in the order
 * one mutator would run them, and the test stays deterministic: goroutine
 * work item k waits (yielding: a safepoint) for turn_now == k, and ends its
 * turn with turn_end before it parks. With one mutator every wait finds
 * its turn at once. */
static _Atomic long turn_now;

/* Zeroes the stack below the caller: what a wait's yields left there is not
 * in the frames called next, whose unwritten words a conservative scan
 * reads (those words then do not depend on whether the wait waited). */
static __attribute__((noinline)) void turn_scrub(void) {
  volatile char below[2048];
  memset((char *)below, 0, sizeof below);
}

static inline void turn_wait(long k) {
  while (atomic_load(&turn_now) != k) ref_yield();
  turn_scrub();
}

static inline void turn_end(void) { atomic_fetch_add(&turn_now, 1); }

static inline void res_reset(void) {
  memset(&res, 0, sizeof res);
  atomic_store(&turn_now, 0);
}

__attribute__((format(printf, 1, 2))) static inline void note_fail(const char *fmt, ...) {
  if (res.fails++ > 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res.first, sizeof res.first, fmt, ap);
  va_end(ap);
}

static inline void assert_no_fail(void) {
  if (res.fails) fail_msg("%d failures; first: %s", (int)res.fails, res.first);
}

static inline bool is_allocated(uintptr_t p) {
  ref__span *s;
  uint32_t idx;
  return ref__find_object(p, &s, &idx) != 0;
}

/* Garbage a conservative scan may keep through stale stack words (a dead
 * temporary, a one-past-the-end pointer): at most this many objects. */
#define CONS_SLACK 8

static inline size_t live_objects(void) {
  ref_heap_stats hs;
  ref_heap_stats_get(&hs);
  return hs.objects_live;
}

/* Checks the last cycle, which began with live_before objects of which all
 * but `need` were garbage: a precise cycle freed exactly the garbage; a
 * conservative one may have kept up to CONS_SLACK of it. Either way it
 * marked every object it did not free. */
static inline void assert_collected(size_t live_before, size_t need, bool precise) {
  const ref_gc_stats *st = ref_gc_last();
  assert_true(live_before >= need);
  uint64_t garbage = live_before - need;
  assert_int_equal(st->objects_marked + st->objects_freed, live_before);
  if (precise) {
    assert_int_equal(st->objects_freed, garbage);
  } else {
    assert_true(st->objects_freed <= garbage);
    assert_true(st->objects_freed + CONS_SLACK >= garbage);
  }
}

static inline bool all_bytes(const void *p, size_t n, uint8_t v) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

/* An unbuffered channel, a registered root while a test runs, that parked
 * goroutines wait on until park_ch_close_all wakes them all. */
static ref_chan *park_ch;

static inline void park_ch_open(void) {
  park_ch = ref_chan_make_size(sizeof(int), 0);
  assert_non_null(park_ch);
  ref_add_root(&park_ch, sizeof(ref_chan *));
}

static inline void park_ch_close_all(void) {
  ref_chan_close(park_ch);
  assert_int_equal(ref_run(), 0);
  ref_remove_root(&park_ch);
  park_ch = NULL;
}

static inline void park(void) { ref_chan_recv(park_ch, NULL); }

#endif
