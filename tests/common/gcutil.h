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
 * (cmocka's failure longjmp must not leave a goroutine stack). */
static struct {
  int fails;
  char first[256];
  long checked;
  long done;
} res;

static inline void res_reset(void) { memset(&res, 0, sizeof res); }

__attribute__((format(printf, 1, 2))) static inline void note_fail(const char *fmt, ...) {
  if (res.fails++ > 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res.first, sizeof res.first, fmt, ap);
  va_end(ap);
}

static inline void assert_no_fail(void) {
  if (res.fails) fail_msg("%d failures; first: %s", res.fails, res.first);
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
