/*
 * test_frames.c: precise stack scanning by frames ("frames").
 *
 *   - objects held in live slots at every level of stacks 0..200 frames
 *     deep survive any number of cycles, in every stackmaps mode and phase;
 *   - a slot that is dead at the parked safepoint is not scanned: what only
 *     it holds is freed (exact count, poisoned), while a conservative scan
 *     keeps it;
 *   - a record flagged REF_FRAME_CONSERVATIVE keeps plain locals alive;
 *   - records sharing a native frame in either address order: every slot
 *     is kept, and a conservative one's range covers the whole frame, the
 *     registers deeper frames spilled, and on the scheduler stack the
 *     locals below it;
 *   - the checkmark verifier catches a scanner that skips those slots;
 *   - select over 1..64 cases, its case array's allocation collecting, in
 *     every strategy and stackmaps mode;
 *   - on the same parked goroutines, what frames keeps is exactly the set
 *     the test computes from the live slots, and a subset of what a
 *     conservative scan keeps;
 *   - the frame counters: frames, lookups, slots, cache hits;
 *   - a record that never reached REF_SAFEPOINT is at safepoint 0;
 *   - a record without a stack map for its safepoint aborts the cycle.
 *
 * Runtimes run with the checkmark verifier and poisoning on.
 */
#include "gcutil.h"

#include "gc.h" /* ref__debug_legacy_conservative_range */

#include <stdbool.h>

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */


static void init_rt(ref_phase ph, ref_scan sc, ref_stackmaps maps, int workers) {
  ref_config cfg;
  tu_config(&cfg, ph, sc, maps, workers);
  cfg.stack_size = 256 << 10; /* 200 frames deep, with sanitizer redzones */
  tu_start(&cfg);
}




typedef struct obj {
  uint64_t canary;
  uint64_t id;
  struct obj *next;
  uint64_t data[5];
} obj;
static const uint64_t obj_mask[1] = {0x4};
static const ref_type obj_t = {sizeof(obj), obj_mask, "frames.obj"};

static obj *new_obj(uint64_t id) {
  obj *o = ref_alloc(&obj_t);
  if (!o) {
    note_fail("allocating object %llu: %s", (unsigned long long)id, ref_error());
    return NULL;
  }
  o->canary = canary(id);
  o->id = id;
  for (int i = 0; i < 5; i++) o->data[i] = canary(id * 7 + (uint64_t)i);
  return o;
}

static bool obj_ok(const obj *o, uint64_t id) {
  if (!o || o->canary != canary(id) || o->id != id) return false;
  for (int i = 0; i < 5; i++)
    if (o->data[i] != canary(id * 7 + (uint64_t)i)) return false;
  return true;
}

static void check_obj(const void *p, uint64_t id, const char *what) {
  res.checked++;
  if (!obj_ok(p, id))
    note_fail("%s: object %llu at %p lost its contents", what, (unsigned long long)id, p);
}

/* Unreachable junk, so that a wrongly freed slot is likely reused. */
static void garbage(int n) {
  for (int i = 0; i < n; i++) {
    obj *o = ref_alloc(&obj_t);
    if (o) memset(o, 0x11, sizeof *o), o->next = NULL;
  }
}


/* ---------------------------------------------------------------------------
 * Deep stacks: every level's slots survive
 * ------------------------------------------------------------------------- */

REF_FUNC(entry_info, "frames.entry", 1, REF_SP(0x1));
REF_FUNC(level_info, "frames.level", 2, REF_SP(0x3));

static const int depths[] = {0, 1, 2, 5, 17, 64, 130, 200};
#define NDEPTHS ((int)(REF_ARRAY_SIZE(depths)))

static uint64_t level_id(int g, int lvl, int k) {
  return ((uint64_t)g << 20) | ((uint64_t)lvl << 2) | (uint64_t)k;
}

static ref_noinline void level(int g, int lvl, int depth) {
  REF_FRAME(f, level_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(level_id(g, lvl, 0));
  f.slot[1] = new_obj(level_id(g, lvl, 1));
  if (f.slot[0]) ((obj *)f.slot[0])->next = f.slot[1];
  if (lvl < depth) level(g, lvl + 1, depth);
  else park();
  check_obj(f.slot[0], level_id(g, lvl, 0), "level slot 0");
  check_obj(f.slot[1], level_id(g, lvl, 1), "level slot 1");
  if (f.slot[0] && ((obj *)f.slot[0])->next != f.slot[1]) note_fail("level %d: link changed", lvl);
}

/* Goroutine g: an entry frame, then depths[g] level frames. */
static void deep_g(void *arg) {
  int g = (int)(intptr_t)arg;
  REF_FRAME(f, entry_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(level_id(g, 0, 3));
  if (depths[g] > 0) level(g, 1, depths[g]);
  else park();
  check_obj(f.slot[0], level_id(g, 0, 3), "entry slot");
  res.done++;
}

static void deep_run(ref_phase ph, ref_stackmaps maps, int W) {
  init_rt(ph, REF_SCAN_FRAMES, maps, W);
  res_reset();
  park_ch_open();
  uint64_t nframes = 0, nobj = 0;
  for (int g = 0; g < NDEPTHS; g++) {
    assert_non_null(ref_go(deep_g, (void *)(intptr_t)g));
    nframes += 1 + (uint64_t)depths[g];
    nobj += 1 + 2 * (uint64_t)depths[g];
  }
  assert_int_equal(ref_run(), NDEPTHS);
  for (int round = 0; round < 5; round++) {
    garbage(300);
    ref_gc();
    const ref_gc_stats *st = ref_gc_last();
    assert_int_equal(st->stacks_scanned, NDEPTHS);
    assert_int_equal(st->frames, nframes);
    assert_int_equal(st->lookups, nframes);
    assert_int_equal(st->slots, nobj);
    assert_int_equal(st->objects_marked, 1 + nobj);
    assert_int_equal(st->objects_freed, 300);
    assert_int_equal(st->words, 1); /* the root word only: no conservative records */
  }
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, NDEPTHS);
  assert_int_equal(res.checked, nobj);
  ref_shutdown();
}

static void test_deep_stacks_survive(void **state) {
  (void)state;
  for (int maps = 0; maps < 3; maps++)
    for (int ph = 0; ph < 3; ph++)
      for (int W = 1; W <= 2; W++) deep_run((ref_phase)ph, (ref_stackmaps)maps, W);
}

/* ---------------------------------------------------------------------------
 * Dead slots are not scanned
 * ------------------------------------------------------------------------- */

/* Safepoint 0: both slots live; safepoint 1: only slot 0. */
REF_FUNC(two_info, "frames.two", 2, REF_SP(0x3), REF_SP(0x1));
REF_FUNC(inner_info, "frames.inner", 1, REF_SP(0x1));

enum { PARK_HERE, PARK_BELOW, GC_HERE };
static uintptr_t dead_addr; /* a plain global: not a root */
static struct {
  uint64_t freed, marked;
  bool poisoned, allocated;
} self;

static ref_noinline void inner_park(void) {
  REF_FRAME(f, inner_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(3);
  park();
  check_obj(f.slot[0], 3, "inner");
}

static void two(void *arg) {
  int mode = (int)(intptr_t)arg;
  REF_FRAME(f, two_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(1);
  f.slot[1] = new_obj(2);
  dead_addr = (uintptr_t)f.slot[1];
  REF_SAFEPOINT(f, 1); /* slot 1 is dead from here, though it still holds obj 2 */
  if (mode == PARK_HERE) {
    park();
  } else if (mode == PARK_BELOW) {
    inner_park();
  } else {
    ref_gc();
    self.freed = ref_gc_last()->objects_freed;
    self.marked = ref_gc_last()->objects_marked;
    self.allocated = is_allocated((uintptr_t)f.slot[1]);
    self.poisoned = all_bytes(f.slot[1], sizeof(obj), 0xfe);
  }
  check_obj(f.slot[0], 1, "live slot");
  res.done++;
}

static void dead_slot_run(ref_phase ph, ref_scan sc, ref_stackmaps maps, int mode) {
  init_rt(ph, sc, maps, 2);
  res_reset();
  memset(&self, 0, sizeof self);
  park_ch_open();
  bool frames = sc == REF_SCAN_FRAMES;
  assert_non_null(ref_go(two, (void *)(intptr_t)mode));
  if (mode == GC_HERE) {
    assert_int_equal(ref_run(), 0);
    assert_no_fail();
    assert_int_equal(self.freed, frames ? 1 : 0);
    assert_int_equal(self.marked, frames ? 2 : 3); /* channel, obj 1 (, obj 2) */
    assert_int_equal(self.allocated, !frames);
    assert_int_equal(self.poisoned, frames);
    ref_shutdown();
    return;
  }
  assert_int_equal(ref_run(), 1);
  uint64_t held = mode == PARK_BELOW ? 1 : 0; /* inner's own object */
  ref_gc();
  const ref_gc_stats *st = ref_gc_last();
  assert_int_equal(st->objects_freed, frames ? 1 : 0);
  assert_int_equal(st->objects_marked, (frames ? 2 : 3) + held);
  assert_int_equal(is_allocated(dead_addr), !frames);
  if (frames) assert_true(all_bytes((void *)dead_addr, sizeof(obj), 0xfe));
  else assert_true(obj_ok((const obj *)dead_addr, 2));
  garbage(100); /* the freed slot may be reused now */
  size_t live = live_objects();
  ref_gc();
  assert_collected(live, (frames ? 2 : 3) + held, frames);
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, 1);
  assert_int_equal(res.checked, 1 + held);
  ref_shutdown();
}

static void test_dead_slots_not_scanned(void **state) {
  (void)state;
  for (int mode = PARK_HERE; mode <= GC_HERE; mode++)
    for (int maps = 0; maps < 3; maps++)
      for (int ph = 0; ph < 3; ph++)
        dead_slot_run((ref_phase)ph, REF_SCAN_FRAMES, (ref_stackmaps)maps, mode);
  /* The contrast: a conservative scan keeps the dead slot's object. */
  for (int mode = PARK_HERE; mode <= GC_HERE; mode++)
    for (int ph = 0; ph < 3; ph++)
      dead_slot_run((ref_phase)ph, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, mode);
}

/* ---------------------------------------------------------------------------
 * Conservative records keep plain locals alive
 * ------------------------------------------------------------------------- */

REF_FUNC(cons_info, "frames.cons", 1, REF_SP(0x0)); /* its slot is never live */

static uintptr_t local_addr; /* plain global: not a root */

/* Holds object 10 only in a volatile local; parks here (PARK_HERE: its
 * record is the top one) or in a callee with a record (PARK_BELOW). */
static ref_noinline void cons_frame(int mode, bool flagged) {
  REF_FRAME(f, cons_info);
  if (flagged) f.h.flags |= REF_FRAME_CONSERVATIVE;
  REF_SAFEPOINT(f, 0);
  obj *volatile local = new_obj(10);
  local_addr = (uintptr_t)local;
  if (mode == PARK_HERE) park();
  else inner_park();
  if (flagged) check_obj(local, 10, "local of a conservative frame");
}

static void cons_g(void *arg) {
  int mode = (int)(intptr_t)arg & 1;
  bool flagged = ((intptr_t)arg & 2) != 0;
  REF_FRAME(f, entry_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(12);
  cons_frame(mode, flagged);
  check_obj(f.slot[0], 12, "entry above a conservative frame");
  res.done++;
}

static void cons_run(ref_phase ph, ref_stackmaps maps, int mode, bool flagged) {
  init_rt(ph, REF_SCAN_FRAMES, maps, 2);
  res_reset();
  park_ch_open();
  assert_non_null(ref_go(cons_g, (void *)(intptr_t)(mode | (flagged ? 2 : 0))));
  assert_int_equal(ref_run(), 1);
  uint64_t held = mode == PARK_BELOW ? 1 : 0, nframes = 2 + held;
  for (int round = 0; round < 3; round++) {
    garbage(100);
    size_t live = live_objects();
    ref_gc();
    const ref_gc_stats *st = ref_gc_last();
    /* channel, obj 12, inner's obj 3, and obj 10 when the frame is
     * conservative (whose extent may also hold stale words) */
    assert_collected(live, 2 + held + (flagged ? 1 : 0), !flagged);
    if (!flagged && round == 0) assert_int_equal(st->objects_freed, 101); /* obj 10 went */
    assert_int_equal(st->frames, nframes);
    assert_int_equal(st->lookups, nframes - (flagged ? 1 : 0));
    if (flagged) assert_true(st->words > 1 && st->candidates > 1);
    else assert_int_equal(st->words, 1); /* the root word */
    assert_int_equal(is_allocated(local_addr), flagged);
    if (flagged) assert_true(obj_ok((const obj *)local_addr, 10));
  }
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, 1);
  assert_int_equal(res.checked, 1 + held + (flagged ? 1 : 0));
  ref_shutdown();
}

static void test_conservative_record_keeps_locals(void **state) {
  (void)state;
  for (int flagged = 1; flagged >= 0; flagged--)
    for (int mode = PARK_HERE; mode <= PARK_BELOW; mode++)
      for (int maps = 0; maps < 3; maps++)
        for (int ph = 0; ph < 3; ph++) cons_run((ref_phase)ph, (ref_stackmaps)maps, mode, flagged);
}

/* ---------------------------------------------------------------------------
 * Records that share a native frame, and what a conservative record covers
 * ------------------------------------------------------------------------- */

/* A record built by hand, so that a test decides where it lies. */
typedef struct rec1 {
  ref_frame h;
  void *slot[1];
} rec1;
REF_FUNC(pair_info, "frames.pair", 1, REF_SP(0x1));

static void rec1_push(rec1 *r, bool conservative) {
  ref__frame_push(&r->h, &pair_info, 1);
  if (conservative) r->h.flags |= REF_FRAME_CONSERVATIVE;
  REF_SAFEPOINT(*r, 0);
}

enum { YOUNGER_ABOVE = 1, OLDER_CONS = 2, YOUNGER_CONS = 4, NSHAPES = 8 };

/* Two records in this one native frame, as two REF_FRAMEs or an inlined
 * callee's record give: pushed older first, the younger placed above or
 * below the older as shape says, either conservative, and a plain local
 * above both. Objects 20 and 21 are only in the records' slots, 22 only in
 * the local. */
static ref_noinline void shared_frame(int shape) {
  struct {
    rec1 r[2];
    void *local;
  } fr;
  memset(&fr, 0, sizeof fr);
  rec1 *older = &fr.r[shape & YOUNGER_ABOVE ? 0 : 1];
  rec1 *younger = &fr.r[shape & YOUNGER_ABOVE ? 1 : 0];
  rec1_push(older, shape & OLDER_CONS);
  older->slot[0] = new_obj(20);
  rec1_push(younger, shape & YOUNGER_CONS);
  younger->slot[0] = new_obj(21);
  *(void *volatile *)&fr.local = new_obj(22);
  local_addr = (uintptr_t)fr.local;
  park();
  check_obj(older->slot[0], 20, "older record of a shared frame");
  check_obj(younger->slot[0], 21, "younger record of a shared frame");
  if (shape & (OLDER_CONS | YOUNGER_CONS)) check_obj(fr.local, 22, "local of a shared frame");
  ref__frame_pop(&younger->h);
  ref__frame_pop(&older->h);
}

static void shared_g(void *arg) {
  REF_FRAME(f, entry_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(12);
  shared_frame((int)(intptr_t)arg);
  check_obj(f.slot[0], 12, "entry above a shared frame");
  res.done++;
}

/* Runs gofn(arg) until it parks, collects twice with garbage between, and
 * returns whether the object at local_addr survived. */
static bool park_and_collect(ref_gofn gofn, void *arg) {
  res_reset();
  park_ch_open();
  assert_non_null(ref_go(gofn, arg));
  assert_int_equal(ref_run(), 1);
  for (int round = 0; round < 2; round++) {
    garbage(100);
    ref_gc();
  }
  bool kept = is_allocated(local_addr);
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, 1);
  return kept;
}

static void test_records_share_a_frame(void **state) {
  (void)state;
  for (int shape = 0; shape < NSHAPES; shape++)
    for (int maps = 0; maps < 3; maps++)
      for (int ph = 0; ph < 3; ph++) {
        init_rt((ref_phase)ph, REF_SCAN_FRAMES, (ref_stackmaps)maps, 2);
        bool cons = shape & (OLDER_CONS | YOUNGER_CONS);
        bool kept = park_and_collect(shared_g, (void *)(intptr_t)shape);
        if (kept != cons) fail_msg("shape %d: local kept %d", shape, kept);
        assert_int_equal(res.checked, 3 + (cons ? 1 : 0));
        ref_shutdown();
      }
}

/* The shape the torture client found in natural code: a conservative record
 * at every level of a recursion, the last level calling a static function
 * with a record of its own, which gcc -O2 inlines and places above the
 * level's record. */
REF_FUNC(nest_info, "frames.nest", 1, REF_SP(0x1));
REF_FUNC(nest_bottom_info, "frames.nest_bottom", 1, REF_SP(0x1));

static void nest_bottom(int lvl) {
  REF_FRAME(f, nest_bottom_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(1000 + (uint64_t)lvl);
  park();
  check_obj(f.slot[0], 1000 + (uint64_t)lvl, "inlined record");
}

static ref_noinline void nest_level(int lvl, int depth) {
  REF_FRAME(f, nest_info);
  f.h.flags |= REF_FRAME_CONSERVATIVE;
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj((uint64_t)lvl);
  if (lvl < depth) nest_level(lvl + 1, depth);
  else nest_bottom(lvl);
  check_obj(f.slot[0], (uint64_t)lvl, "conservative record's own slot");
}

static void nest_g(void *arg) {
  (void)arg;
  nest_level(1, 5);
  res.done++;
}

static void test_inlined_record_under_conservative(void **state) {
  (void)state;
  for (int maps = 0; maps < 3; maps++)
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, REF_SCAN_FRAMES, (ref_stackmaps)maps, 2);
      local_addr = 0;
      park_and_collect(nest_g, NULL);
      assert_int_equal(res.checked, 6);
      ref_shutdown();
    }
}

#if defined(__x86_64__)
/* A conservative function's pointer that lives only in a callee-saved
 * register (r15) across a call into precise code: the precise callee does
 * not touch r15, so only the context switch saves it, at the saved stack
 * pointer, below the callee's record. */
static ref_noinline void spill_frame(void) {
  REF_FRAME(f, cons_info);
  f.h.flags |= REF_FRAME_CONSERVATIVE;
  REF_SAFEPOINT(f, 0);
  register obj *p __asm__("r15") = new_obj(30);
  local_addr = (uintptr_t)p;
  __asm__ volatile("" : "+r"(p));
  inner_park();
  __asm__ volatile("" : "+r"(p));
  check_obj(p, 30, "register of a conservative frame");
}

static void spill_g(void *arg) {
  (void)arg;
  spill_frame();
  res.done++;
}
#endif

static void test_conservative_covers_spilled_registers(void **state) {
  (void)state;
#if defined(__x86_64__)
  for (int maps = 0; maps < 3; maps++)
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, REF_SCAN_FRAMES, (ref_stackmaps)maps, 2);
      assert_true(park_and_collect(spill_g, NULL));
      assert_int_equal(res.checked, 2); /* inner's object, the register's */
      ref_shutdown();
    }
#else
  skip();
#endif
}

/* A conservative record on the scheduler stack with four plain locals below
 * it in its native frame: they are roots across ref_gc. */
static ref_noinline void g0_conservative_frame(void) {
  struct {
    void *local[4];
    rec1 r;
  } fr;
  memset(&fr, 0, sizeof fr);
  rec1_push(&fr.r, true);
  uintptr_t addr[4];
  for (int i = 0; i < 4; i++) {
    *(void *volatile *)&fr.local[i] = new_obj(40 + (uint64_t)i);
    addr[i] = (uintptr_t)fr.local[i];
  }
  for (int round = 0; round < 2; round++) {
    garbage(100);
    ref_gc();
  }
  for (int i = 0; i < 4; i++) {
    if (!is_allocated(addr[i])) note_fail("scheduler-stack local %d freed", i);
    check_obj(fr.local[i], 40 + (uint64_t)i, "scheduler-stack local");
  }
  ref__frame_pop(&fr.r.h);
}

static void test_scheduler_stack_conservative_record(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++)
    for (int maps = 0; maps < 3; maps++)
      for (int ph = 0; ph < 3; ph++) {
        init_rt((ref_phase)ph, (ref_scan)sc, (ref_stackmaps)maps, 2);
        res_reset();
        g0_conservative_frame();
        assert_no_fail();
        assert_int_equal(res.checked, 4);
        ref_shutdown();
      }
}

/* The checkmark verifier derives conservative ranges on its own: a scanner
 * that goes back to the old range, and so frees the older record's object
 * in a shared frame, is caught by the verifier before the sweep. */
/* In a child process: one goroutine running child.fn until it parks, then a
 * cycle, in the phase and stackmaps mode of child. */
static struct {
  ref_gofn fn;
  void *arg;
  ref_phase phase;
  ref_stackmaps maps;
} child;

static void park_and_collect_child(void) {
  init_rt(child.phase, REF_SCAN_FRAMES, child.maps, 2);
  park_ch_open();
  ref_go(child.fn, child.arg);
  ref_run();
  ref_gc();
}

/* Expects that child dies with expect in its stderr in every stackmaps mode. */
static void expect_death_in_each_mode(ref_phase ph, ref_gofn fn, void *arg, const char *expect) {
  child.fn = fn;
  child.arg = arg;
  child.phase = ph;
  for (int maps = 0; maps < 3; maps++) {
    child.maps = (ref_stackmaps)maps;
    tu_expect_death(park_and_collect_child, expect);
  }
}

static void legacy_range_g(void *arg) {
  ref__debug_legacy_conservative_range = true; /* in the child only */
  shared_g(arg);
}

static void test_checkmark_catches_a_skipped_conservative_slot(void **state) {
  (void)state;
  expect_death_in_each_mode(REF_PHASE_SERIAL, legacy_range_g,
                            (void *)(intptr_t)(YOUNGER_ABOVE | OLDER_CONS),
                            "unmarked by the collector but marked by the verifier");
}

/* ---------------------------------------------------------------------------
 * The runtime's own records have a map wherever a collection can see them
 * ------------------------------------------------------------------------- */

#define SEL_MAX 64
static const uint64_t ptr_mask[1] = {0x1};
static const ref_type ptr_t = {sizeof(void *), ptr_mask, "frames.ptr"};
static ref_chan **sel_chans; /* a registered root */
static int sel_n;
static uint64_t sel_cycles; /* cycles that ran inside the select */

/* Fills the heap up to its limit with garbage arrays of n pointers, the
 * size class and kind of select's case array, so that select's own
 * allocation of it has to collect. */
static void fill_class_of(size_t n) {
  while (ref__heap_alloc(&ptr_t, n) != NULL) {
  }
}

static void sel_g(void *arg) {
  (void)arg;
  ref_case cases[SEL_MAX];
  for (int i = 0; i < sel_n; i++) cases[i] = (ref_case){.c = sel_chans[i], .dir = REF_RECV};
  fill_class_of((size_t)sel_n);
  uint64_t c0 = ref_gc_last()->cycle;
  int k = ref_select(cases, sel_n, false);
  sel_cycles = ref_gc_last()->cycle - c0;
  if (k != sel_n - 1 || !cases[k].ok) note_fail("select of %d cases chose %d", sel_n, k);
  res.done++;
}

static void select_run(ref_phase ph, ref_scan sc, ref_stackmaps maps) {
  ref_config cfg;
  tu_config(&cfg, ph, sc, maps, 2);
  cfg.heap_max = (size_t)1 << 20;
  tu_start(&cfg);
  res_reset();
  sel_chans = ref_alloc_array(&ptr_t, SEL_MAX);
  assert_non_null(sel_chans);
  ref_add_root(&sel_chans, sizeof sel_chans);
  for (int i = 0; i < SEL_MAX; i++) assert_non_null(sel_chans[i] = ref_chan_make_size(sizeof(int), 0));
  for (sel_n = 1; sel_n <= SEL_MAX; sel_n++) {
    sel_cycles = 0;
    assert_non_null(ref_go(sel_g, NULL));
    assert_int_equal(ref_run(), 1);
    int v = sel_n;
    ref_chan_send(sel_chans[sel_n - 1], &v); /* the select is waiting: does not block */
    assert_int_equal(ref_run(), 0);
    /* Up to 8 cases select holds the channels in its record; beyond, in a
     * heap array, whose allocation collected once. */
    assert_int_equal(sel_cycles, sel_n > 8 ? 1 : 0);
  }
  assert_no_fail();
  assert_int_equal(res.done, SEL_MAX);
  ref_remove_root(&sel_chans);
  ref_shutdown();
}

static void test_select_collects_in_its_allocation(void **state) {
  (void)state;
  for (int maps = 0; maps < 3; maps++)
    for (int sc = 0; sc < 2; sc++)
      for (int ph = 0; ph < 3; ph++) select_run((ref_phase)ph, (ref_scan)sc, (ref_stackmaps)maps);
}

/* ---------------------------------------------------------------------------
 * Frames marks a subset of what a conservative scan marks
 * ------------------------------------------------------------------------- */

/* Four slots; safepoint k leaves a different subset live. */
static const uint64_t quad_masks[] = {0xf, 0x3, 0x9, 0x0, 0x6};
REF_FUNC(quad_info, "frames.quad", 4, REF_SP(0xf), REF_SP(0x3), REF_SP(0x9), REF_SP(0x0),
         REF_SP(0x6));

#define SUB_NG 12
#define SUB_MAXOBJ 4096

static struct {
  uintptr_t addr[SUB_MAXOBJ]; /* every object the goroutines allocated (not a root) */
  bool live[SUB_MAXOBJ];      /* held in a live slot at the park */
  int n;
  uint64_t rng;
} sub;

static uint64_t sub_rand(void) { return ref__rand64(&sub.rng); }

/* Records object number sub.n (its id) and whether a live slot holds it. */
static void sub_track(void *p, bool live) {
  if (sub.n == SUB_MAXOBJ) {
    note_fail("too many objects");
    return;
  }
  sub.addr[sub.n] = (uintptr_t)p;
  sub.live[sub.n] = live;
  sub.n++;
}

/* One frame: four slot objects (ids = their tracking numbers), a safepoint
 * drawn at random, and one object only in a plain local. Checks only the
 * live slots after the park: the rest is garbage to scan=frames. */
static ref_noinline void sub_level(int lvl, int depth) {
  REF_FRAME(f, quad_info);
  REF_SAFEPOINT(f, 0);
  uint32_t sp = (uint32_t)(sub_rand() % 5);
  int ids[4];
  for (int i = 0; i < 4; i++) {
    ids[i] = sub.n;
    f.slot[i] = new_obj((uint64_t)ids[i]);
    sub_track(f.slot[i], (quad_masks[sp] >> i) & 1);
  }
  obj *volatile local = new_obj((uint64_t)sub.n);
  sub_track(local, false);
  REF_SAFEPOINT(f, sp);
  if (lvl < depth) {
    sub_level(lvl + 1, depth);
  } else {
    turn_end(); /* built: the next goroutine's turn */
    park();
  }
  for (int i = 0; i < 4; i++)
    if ((quad_masks[sp] >> i) & 1) check_obj(f.slot[i], (uint64_t)ids[i], "subset live slot");
}

/* arg: goroutine number << 8 | depth. The goroutines draw from one stream
 * and number the objects in one table: they build in turn, in creation
 * order. */
static void sub_g(void *arg) {
  turn_wait((intptr_t)arg >> 8);
  sub_level(0, (int)((intptr_t)arg & 0xff));
  res.done++;
}

/* The set of tracked objects still allocated, and its size. */
static int alive_set(bool *out) {
  int k = 0;
  for (int i = 0; i < sub.n; i++) k += out[i] = is_allocated(sub.addr[i]);
  return k;
}

static void subset_run(ref_phase ph, ref_stackmaps maps, uint64_t seed) {
  init_rt(ph, REF_SCAN_CONSERVATIVE, maps, 2);
  res_reset();
  memset(&sub, 0, sizeof sub);
  sub.rng = seed * 0x9E3779B97F4A7C15ull + 7;
  park_ch_open();
  for (int g = 0; g < SUB_NG; g++)
    assert_non_null(ref_go(sub_g, (void *)(intptr_t)(g << 8 | (int)(sub_rand() % 24))));
  assert_int_equal(ref_run(), SUB_NG);
  assert_no_fail();
  int nlive = 0;
  for (int i = 0; i < sub.n; i++) nlive += sub.live[i];

  static bool cons_set[SUB_MAXOBJ], frames_set[SUB_MAXOBJ];
  ref_gc();
  uint64_t marked_c = ref_gc_last()->objects_marked;
  assert_int_equal(ref_gc_last()->objects_freed, 0); /* all on the stacks */
  assert_int_equal(alive_set(cons_set), sub.n);
  assert_int_equal(marked_c, 1 + (uint64_t)sub.n);

  ref_set_strategy(ph, REF_SCAN_FRAMES, maps);
  ref_gc();
  uint64_t marked_f = ref_gc_last()->objects_marked;
  assert_true(marked_f <= marked_c);
  assert_int_equal(marked_f, 1 + (uint64_t)nlive);
  assert_int_equal(ref_gc_last()->objects_freed, marked_c - marked_f);
  assert_int_equal(alive_set(frames_set), nlive);
  for (int i = 0; i < sub.n; i++) {
    if (frames_set[i] && !cons_set[i]) fail_msg("object %d kept by frames, not conservative", i);
    if (frames_set[i] != sub.live[i]) fail_msg("object %d: frames kept %d, live %d", i,
                                               frames_set[i], sub.live[i]);
    if (frames_set[i]) assert_true(obj_ok((const obj *)sub.addr[i], (uint64_t)i));
    else assert_true(all_bytes((const void *)sub.addr[i], sizeof(obj), 0xfe));
  }

  /* Back to conservative on the same stacks: it still sees everything
   * frames kept (the live slots are on the stacks), and nothing else is
   * left to see. */
  ref_set_strategy(ph, REF_SCAN_CONSERVATIVE, maps);
  ref_gc();
  assert_int_equal(ref_gc_last()->objects_marked, marked_f);
  assert_int_equal(ref_gc_last()->objects_freed, 0);
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, SUB_NG);
  assert_int_equal(res.checked, nlive);
  assert_true(nlive > 0 && nlive < sub.n);
  ref_shutdown();
}

static void test_frames_subset_of_conservative(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 3; seed++)
    for (int maps = 0; maps < 3; maps++)
      for (int ph = 0; ph < 3; ph++) subset_run((ref_phase)ph, (ref_stackmaps)maps, seed);
}

/* ---------------------------------------------------------------------------
 * Counters
 * ------------------------------------------------------------------------- */

#define ST_NG 40

/* Goroutine g: an entry frame (1 live slot), then g % 7 quad frames at
 * safepoint g % 5, every third of them conservative. */
static ref_noinline void st_level(int g, int lvl, int depth) {
  REF_FRAME(f, quad_info);
  REF_SAFEPOINT(f, 0);
  for (int i = 0; i < 4; i++)
    f.slot[i] = new_obj((uint64_t)g * 100 + (uint64_t)lvl * 4 + (uint64_t)i);
  if (lvl % 3 == 2) f.h.flags |= REF_FRAME_CONSERVATIVE;
  REF_SAFEPOINT(f, (uint32_t)(g % 5));
  if (lvl < depth) st_level(g, lvl + 1, depth);
  else park();
}

static void st_g(void *arg) {
  int g = (int)(intptr_t)arg;
  REF_FRAME(f, entry_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj((uint64_t)g);
  if (g % 7 > 0) st_level(g, 1, g % 7);
  else park();
}

typedef struct fcounts {
  uint64_t stacks, stack_bytes, words, frames, lookups, slots, marked;
} fcounts;

static fcounts st_run(ref_phase ph, ref_scan sc, ref_stackmaps maps, int W, uint64_t *hits) {
  init_rt(ph, sc, maps, W);
  park_ch_open();
  for (int g = 0; g < ST_NG; g++) assert_non_null(ref_go(st_g, (void *)(intptr_t)g));
  assert_int_equal(ref_run(), ST_NG);
  ref_gc();
  const ref_gc_stats *st = ref_gc_last();
  fcounts c = {st->stacks_scanned, st->stack_bytes, st->words, st->frames,
               st->lookups, st->slots, st->objects_marked};
  *hits = st->cache_hits;
  assert_true(st->cache_hits <= st->lookups);
  ref_chan_close(park_ch);
  assert_int_equal(ref_run(), 0);
  ref_remove_root(&park_ch);
  ref_shutdown();
  return c;
}

static void test_frame_counters(void **state) {
  (void)state;
  uint64_t want_frames = 0, want_cons = 0, want_slots = 0;
  for (int g = 0; g < ST_NG; g++) {
    int depth = g % 7;
    want_frames += 1 + (uint64_t)depth;
    want_slots += 1;
    for (int lvl = 1; lvl <= depth; lvl++) {
      if (lvl % 3 == 2) want_cons++;
      else want_slots += (uint64_t)__builtin_popcountll(quad_masks[g % 5]);
    }
  }
  fcounts base = {0};
  for (int maps = 0; maps < 3; maps++) {
    for (int ph = 0; ph < 3; ph++) {
      for (int W = 1; W <= 2; W++) {
        uint64_t hits;
        fcounts c = st_run((ref_phase)ph, REF_SCAN_FRAMES, (ref_stackmaps)maps, W, &hits);
        assert_int_equal(c.stacks, ST_NG);
        assert_int_equal(c.frames, want_frames);
        assert_int_equal(c.lookups, want_frames - want_cons);
        assert_int_equal(c.slots, want_slots);
        assert_true(c.words > 1); /* the root word and the conservative records */
        if (maps == REF_MAPS_PCTAB_CACHED) assert_true(hits > 0);
        else assert_int_equal(hits, 0);
        if (maps == 0 && ph == 0 && W == 1) base = c;
        /* Conservative records read whatever their frames hold, and with
         * several mutators that depends on which P ran the goroutine. */
        if (tu_mutators() > 1) assert_true(c.marked >= want_slots), c.marked = base.marked;
        assert_memory_equal(&c, &base, sizeof c); /* nothing depends on the strategy */
      }
    }
  }
  for (int ph = 0; ph < 3; ph++) {
    uint64_t hits;
    fcounts c = st_run((ref_phase)ph, REF_SCAN_CONSERVATIVE, REF_MAPS_PCTAB_CACHED, 2, &hits);
    assert_int_equal(c.stacks, ST_NG);
    assert_int_equal(c.frames, 0);
    assert_int_equal(c.lookups, 0);
    assert_int_equal(c.slots, 0);
    assert_int_equal(hits, 0);
    assert_int_equal(c.words, c.stack_bytes / 8 + 1); /* every stack word once, the root */
    assert_int_equal(c.stack_bytes, base.stack_bytes);
    assert_true(c.marked >= base.marked);
  }
}

/* ---------------------------------------------------------------------------
 * A record is at safepoint 0 from its push, in every stackmaps mode
 * ------------------------------------------------------------------------- */

/* Parks without ever reaching REF_SAFEPOINT, holding object 50 only in slot
 * 0, live at safepoint 0. */
static void never_safepoint_g(void *arg) {
  (void)arg;
  REF_FRAME(f, entry_info);
  f.slot[0] = new_obj(50);
  local_addr = (uintptr_t)f.slot[0];
  park();
  check_obj(f.slot[0], 50, "slot of a record that never reached a safepoint");
  res.done++;
}

static void test_record_starts_at_safepoint_0(void **state) {
  (void)state;
  for (int maps = 0; maps < 3; maps++)
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, REF_SCAN_FRAMES, (ref_stackmaps)maps, 2);
      assert_true(park_and_collect(never_safepoint_g, NULL));
      assert_int_equal(ref_gc_last()->lookups, 1);
      assert_int_equal(ref_gc_last()->slots, 1);
      ref_shutdown();
    }
}

/* ---------------------------------------------------------------------------
 * A frame without a stack map aborts the cycle
 * ------------------------------------------------------------------------- */

static void no_safepoint_g(void *arg) {
  (void)arg;
  REF_FRAME(f, two_info);
  if (ref_get_config()->stackmaps == REF_MAPS_DIRECT) f.h.safepoint = 7; /* out of range */
  else f.h.pc = two_info.entry; /* the prologue: no stack map there */
  park();
}

static void test_missing_stack_map_aborts(void **state) {
  (void)state;
  expect_death_in_each_mode(REF_PHASE_PARALLEL, no_safepoint_g, NULL,
                            "goroutine 1: no stack map for frame");
}

/* After a failed assertion the runtime is still up: shut it down so that
 * the next test can start its own. */
static int teardown(void **state) {
  (void)state;
  ref_shutdown();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_deep_stacks_survive, teardown),
      cmocka_unit_test_teardown(test_dead_slots_not_scanned, teardown),
      cmocka_unit_test_teardown(test_conservative_record_keeps_locals, teardown),
      cmocka_unit_test_teardown(test_records_share_a_frame, teardown),
      cmocka_unit_test_teardown(test_inlined_record_under_conservative, teardown),
      cmocka_unit_test_teardown(test_conservative_covers_spilled_registers, teardown),
      cmocka_unit_test_teardown(test_scheduler_stack_conservative_record, teardown),
      cmocka_unit_test_teardown(test_checkmark_catches_a_skipped_conservative_slot, teardown),
      cmocka_unit_test_teardown(test_select_collects_in_its_allocation, teardown),
      cmocka_unit_test_teardown(test_frames_subset_of_conservative, teardown),
      cmocka_unit_test_teardown(test_frame_counters, teardown),
      cmocka_unit_test_teardown(test_record_starts_at_safepoint_0, teardown),
      cmocka_unit_test_teardown(test_missing_stack_map_aborts, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
