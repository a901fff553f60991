/*
 * test_reuse.c: reuse=clean, the replay of clean stacks' scans (ref.h,
 * ref_config.reuse), in both scan modes, every phase, one and two workers:
 *
 *   - holders that stay parked keep their objects alive through their
 *     records alone: a stack is recorded by its second scan in a row
 *     without running (g.h, REF_G_SEEN), and from the third cycle on no
 *     holder stack is read (stacks_reused counts them all), and the objects
 *     survive (checkmark, poison and canaries);
 *   - holders woken between cycles replace their object and park again: the
 *     cycle after frees the old objects (frames: exactly those; conservative:
 *     what reuse=off frees in the same run) and keeps the new ones, while the
 *     holders recorded and not woken are replayed (a model of each holder's
 *     state says which);
 *   - reuse=off reads every stack, and a record over REF_REUSE_MAX_WORDS
 *     words is not kept (reuse_unrecorded);
 *   - a record made under one scan mode is not replayed under the other
 *     (ref_set_strategy), and is dropped, its words freed, before the stack
 *     is read and recorded again.
 */
#include "gcutil.h"

#define NHOLDERS 16

typedef struct robj {
  uint64_t canary;
  uint64_t id;
  uint64_t pad[2];
} robj;
static const ref_type robj_t = {sizeof(robj), NULL, "reuse.obj"};

/* One holder: a goroutine that holds its current object in a frame slot
 * and waits on its channel; each value received replaces the object (a
 * negative one ends it). cur is the test's copy, not a root. */
typedef struct holder {
  ref_chan *c; /* in the registered root `chans` */
  uint64_t id;
  robj *cur;
  bool deep;   /* conservative: spread candidates over a deep stack */
  bool wide;   /* conservative: hold WIDE_OBJS more objects in its stack */
} holder;
static holder hs[NHOLDERS];
static ref_chan *chans[NHOLDERS];
static _Atomic uint64_t next_id;

REF_FUNC(holder_info, "reuse.holder", 2, REF_SP(0x3));

static robj *new_obj(holder *h) {
  robj *o = ref_alloc(&robj_t);
  if (!o) return NULL;
  o->id = ++next_id;
  o->canary = canary(o->id);
  h->cur = o;
  return o;
}

/* Parks with REF_REUSE_MAX_WORDS + 1 copies of the object's address in a
 * conservative stack: a record too big to keep. */
static ref_noinline void park_deep(ref_chan *c, robj *o, int64_t *cmd) {
  volatile uintptr_t words[REF_REUSE_MAX_WORDS + 1];
  for (size_t i = 0; i < REF_ARRAY_SIZE(words); i++) words[i] = (uintptr_t)o;
  ref_chan_recv(c, cmd);
  words[0] = 0;
}

/* Parks with WIDE_OBJS objects of its own in a conservative stack: a
 * record of more words than an entry holds inline. Under frames the
 * objects are not roots (this frame has no map) and die. */
#define WIDE_OBJS 8
static ref_noinline void park_wide(ref_chan *c, int64_t *cmd) {
  volatile uintptr_t objs[WIDE_OBJS];
  for (size_t i = 0; i < WIDE_OBJS; i++) objs[i] = (uintptr_t)ref_alloc(&robj_t);
  ref_chan_recv(c, cmd);
  (void)objs[0]; /* keeps them in the frame across the wait */
}

static void holder_fn(void *arg) {
  holder *h = arg;
  REF_FRAME(f, holder_info);
  f.slot[0] = h->c;
  for (;;) {
    f.slot[1] = new_obj(h);
    if (!f.slot[1]) {
      note_fail("holder %llu: %s", (unsigned long long)h->id, ref_error());
      return;
    }
    int64_t cmd = 0;
    if (h->deep) park_deep(h->c, f.slot[1], &cmd);
    else if (h->wide) park_wide(h->c, &cmd);
    else ref_chan_recv(h->c, &cmd);
    if (cmd < 0) return;
  }
}

/* Starts NHOLDERS holders, the first `deep` of them deep, the next `wide`
 * wide. */
static void start(ref_phase ph, ref_scan sc, int workers, ref_reuse reuse, int deep, int wide) {
  ref_config cfg;
  tu_config(&cfg, ph, sc, REF_MAPS_PCTAB_CACHED, workers);
  cfg.reuse = reuse;
  cfg.gc_percent = -1; /* every cycle is one of the test's */
  tu_start(&cfg);
  res_reset();
  memset(hs, 0, sizeof hs);
  ref_add_root(chans, sizeof chans);
  for (int i = 0; i < NHOLDERS; i++) {
    chans[i] = hs[i].c = ref_chan_make_size(sizeof(int64_t), 0);
    assert_non_null(chans[i]);
    hs[i].id = (uint64_t)i;
    hs[i].deep = i < deep;
    hs[i].wide = i >= deep && i < deep + wide;
    assert_non_null(ref_go(holder_fn, &hs[i]));
  }
  assert_int_equal(ref_run(), NHOLDERS);
}

static void send_to(int i, int64_t cmd) {
  ref_chan_send(chans[i], &cmd); /* a holder waits: does not block */
}

static void stop(void) {
  for (int i = 0; i < NHOLDERS; i++) send_to(i, -1);
  assert_int_equal(ref_run(), 0);
  ref_remove_root(chans);
  assert_no_fail();
  ref_shutdown();
}

static void check_objects(void) {
  for (int i = 0; i < NHOLDERS; i++) {
    robj *o = hs[i].cur;
    assert_true(is_allocated((uintptr_t)o));
    assert_int_equal(o->canary, canary(o->id));
  }
}

/* Wakes the holders whose bit is set in mask (they replace their objects
 * and park again), collects, and returns the objects the cycle freed. */
static uint64_t round_trip(uint32_t mask) {
  for (int i = 0; i < NHOLDERS; i++)
    if (mask >> i & 1) send_to(i, 1);
  assert_int_equal(ref_run(), NHOLDERS);
  ref_gc();
  check_objects();
  return ref_gc_last()->objects_freed;
}

#define FOR_EACH_STRATEGY(ph, sc, w)                                                       \
  for (int ph = 0; ph < REF_NPHASES; ph++)                                                  \
    for (int sc = 0; sc < REF_NSCANS; sc++)                                                 \
      for (int w = 1; w <= 2; w++)

static void test_record_alone_keeps_objects(void **state) {
  (void)state;
  FOR_EACH_STRATEGY(ph, sc, w) {
    start(ph, sc, w, REF_REUSE_CLEAN, 0, 0);
    ref_gc(); /* reads every holder: seen */
    assert_int_equal(ref_gc_last()->stacks_reused, 0);
    assert_int_equal(ref_gc_last()->reuse_bytes, 0);
    ref_gc(); /* reads and records every holder */
    assert_int_equal(ref_gc_last()->stacks_reused, 0);
    assert_true(ref_gc_last()->reuse_bytes >= NHOLDERS * 64);
    for (int k = 0; k < 4; k++) {
      ref_gc();
      const ref_gc_stats *st = ref_gc_last();
      assert_int_equal(st->stacks_reused, NHOLDERS);
      assert_int_equal(st->stack_bytes_skipped, st->stack_bytes);
      assert_int_equal(st->stacks_scanned, NHOLDERS);
      assert_true(st->reuse_words >= NHOLDERS); /* at least each holder's object */
      assert_true(st->reuse_bytes >= NHOLDERS * 64);
      assert_int_equal(st->objects_freed, 0);
      check_objects();
    }
    stop();
  }
}

/* The objects freed by each of a fixed series of rounds. */
static void run_rounds(ref_phase ph, ref_scan sc, int w, ref_reuse reuse, uint64_t *freed,
                       int nrounds) {
  start(ph, sc, w, reuse, 0, 0);
  ref_gc();
  /* The holders whose last scan was their first in a row without running
   * (seen), and those recorded since (clean): after the first cycle every
   * holder is seen. */
  uint32_t seen = (1u << NHOLDERS) - 1, clean = 0;
  uint64_t rnd = 0x1234 + (uint64_t)(ph * 7 + sc * 3 + w);
  for (int r = 0; r < nrounds; r++) {
    uint32_t mask = (uint32_t)ref__rand64(&rnd) & ((1u << NHOLDERS) - 1);
    freed[r] = round_trip(mask);
    const ref_gc_stats *st = ref_gc_last();
    if (reuse == REF_REUSE_CLEAN)
      assert_int_equal(st->stacks_reused, __builtin_popcount(clean & ~mask));
    clean = (clean | seen) & ~mask;
    seen = mask;
    if (sc == REF_SCAN_FRAMES) assert_int_equal(freed[r], __builtin_popcount(mask));
  }
  stop();
}

static void test_woken_holders_drop_old_objects(void **state) {
  (void)state;
  enum { NROUNDS = 8 };
  FOR_EACH_STRATEGY(ph, sc, w) {
    uint64_t off[NROUNDS], clean[NROUNDS];
    run_rounds(ph, sc, w, REF_REUSE_OFF, off, NROUNDS);
    run_rounds(ph, sc, w, REF_REUSE_CLEAN, clean, NROUNDS);
    /* Two runtimes built the same stacks. With several mutators each P
     * allocates from its own spans, so which stale words a conservative
     * scan finds in the heap differs between them (test_parallel says the
     * same); scan=frames is exact either way. */
    if (sc == REF_SCAN_FRAMES || tu_mutators() == 1)
      for (int r = 0; r < NROUNDS; r++) assert_int_equal(clean[r], off[r]);
  }
}

static void test_off_reads_every_stack(void **state) {
  (void)state;
  start(REF_PHASE_SERIAL, REF_SCAN_FRAMES, 1, REF_REUSE_OFF, 0, 0);
  ref_gc();
  ref_gc();
  assert_int_equal(ref_gc_last()->stacks_reused, 0);
  assert_int_equal(ref_gc_last()->reuse_bytes, 0);
  stop();
}

static void test_record_over_limit_not_kept(void **state) {
  (void)state;
  start(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, 1, REF_REUSE_CLEAN, 2, 0);
  ref_gc(); /* seen */
  ref_gc(); /* recorded, but for the two over the limit */
  assert_int_equal(ref_gc_last()->reuse_unrecorded, 2);
  ref_gc();
  const ref_gc_stats *st = ref_gc_last();
  assert_int_equal(st->reuse_unrecorded, 2);
  assert_int_equal(st->stacks_reused, NHOLDERS - 2);
  check_objects();
  stop();
}

static void test_record_of_other_mode_dropped(void **state) {
  (void)state;
  for (int w = 1; w <= 2; w++) {
    start(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, w, REF_REUSE_CLEAN, 0, NHOLDERS);
    ref_gc(); /* seen */
    ref_gc(); /* recorded: each record past the entry, malloc'd */
    assert_true(ref_gc_last()->reuse_bytes >= NHOLDERS * (64 + WIDE_OBJS * sizeof(uintptr_t)));
    ref_set_strategy(REF_PHASE_SERIAL, REF_SCAN_FRAMES, REF_MAPS_PCTAB_CACHED);
    ref_gc(); /* not replayed: dropped, and read whole (seen) */
    assert_int_equal(ref_gc_last()->stacks_reused, 0);
    ref_gc(); /* recorded again, under frames (the internal assertions check
                 the old words were freed first) */
    assert_int_equal(ref_gc_last()->stacks_reused, 0);
    assert_true(ref_gc_last()->reuse_bytes >= NHOLDERS * 64);
    ref_gc();
    assert_int_equal(ref_gc_last()->stacks_reused, NHOLDERS);
    check_objects();
    stop();
  }
}

static void test_reuse_names(void **state) {
  (void)state;
  ref_reuse r;
  assert_string_equal(ref_reuse_name(REF_REUSE_CLEAN), "clean");
  assert_int_equal(ref_reuse_parse("off", &r), 0);
  assert_int_equal(r, REF_REUSE_OFF);
  assert_int_equal(ref_reuse_parse("dirty", &r), -1);
  assert_null(ref_reuse_name((ref_reuse)REF_NREUSES));
  ref_config cfg;
  ref_config_default(&cfg);
  assert_int_equal(cfg.reuse, REF_REUSE_OFF);
  cfg.reuse = (ref_reuse)7;
  assert_int_equal(ref_init(&cfg), -1);
  assert_non_null(strstr(ref_error(), "reuse"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_record_alone_keeps_objects, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_woken_holders_drop_old_objects, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_off_reads_every_stack, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_record_over_limit_not_kept, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_record_of_other_mode_dropped, tu_teardown_shutdown),
      cmocka_unit_test(test_reuse_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
