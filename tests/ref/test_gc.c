/*
 * test_gc.c: the collector's correctness ("ref collector"), checked against
 * the test's own knowledge of what is reachable:
 *
 *   - objects reachable only from parked goroutines' stacks survive any
 *     number of cycles, started from the scheduler stack or a goroutine;
 *   - unreachable objects are freed with an exact count;
 *   - interior pointers, large objects and their oblets keep objects alive;
 *   - buffered channels keep their pointer elements alive, and forget them
 *     once received;
 *   - random typed object graphs (seeded): exactly the objects reachable
 *     from the registered roots survive, by an independent BFS;
 *   - the heap limit is reported and recoverable; allocation at the limit
 *     collects.
 *
 * Every runtime here runs with the checkmark verifier and poisoning on:
 * a wrongly freed object reads 0xfe bytes (or another object's contents
 * after reuse), which breaks its canary.
 */
#include "gc.h" /* REF_OBLET_BYTES */
#include "gcutil.h"

#include <stdbool.h>

/* ---------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------- */


/* Starts a runtime like tu_init_with, with the limits these tests vary. */
static void init_rt(ref_phase ph, ref_scan sc, ref_stackmaps maps, int workers, size_t heap_max) {
  ref_config cfg;
  tu_config(&cfg, ph, sc, maps, workers);
  cfg.heap_max = heap_max;
  cfg.stack_size = 128 << 10;
  cfg.gc_percent = -1; /* these tests count what each ref_gc (or the limit's) finds */
  tu_start(&cfg);
}




/* A 64-byte object: word 2 is its only pointer. */
typedef struct obj {
  uint64_t canary;
  uint64_t id;
  struct obj *next;
  uint64_t data[5];
} obj;
static const uint64_t obj_mask[1] = {0x4};
static const ref_type obj_t = {sizeof(obj), obj_mask, "test.obj"};

/* A pointer-free 48-byte leaf. */
typedef struct leaf {
  uint64_t canary;
  uint64_t id;
  uint64_t data[4];
} leaf;
static const ref_type leaf_t = {sizeof(leaf), NULL, "test.leaf"};

static const uint64_t ptr_mask[1] = {0x1};
static const ref_type ptr_t = {sizeof(void *), ptr_mask, "test.ptr"};
static const ref_type byte_t = {1, NULL, "test.byte"};

static obj *new_obj(uint64_t id) {
  obj *o = ref_alloc(&obj_t);
  if (!o) {
    note_fail("allocating object %llu: %s", (unsigned long long)id, ref_error());
    return NULL;
  }
  o->canary = canary(id);
  o->id = id;
  for (int i = 0; i < 5; i++) o->data[i] = canary(id + (uint64_t)i + 1);
  return o;
}

static leaf *new_leaf(uint64_t id) {
  leaf *l = ref_alloc(&leaf_t);
  if (!l) {
    note_fail("allocating leaf %llu: %s", (unsigned long long)id, ref_error());
    return NULL;
  }
  l->canary = canary(id);
  l->id = id;
  for (int i = 0; i < 4; i++) l->data[i] = ~canary(id);
  return l;
}

static void check_obj(const void *p, uint64_t id, const char *what) {
  const obj *o = p;
  res.checked++;
  if (!o) {
    note_fail("%s: object %llu is NULL", what, (unsigned long long)id);
    return;
  }
  bool ok = o->canary == canary(id) && o->id == id;
  for (int i = 0; i < 5; i++) ok = ok && o->data[i] == canary(id + (uint64_t)i + 1);
  if (!ok)
    note_fail("%s: object %llu at %p lost its contents (canary %#llx id %#llx)", what,
              (unsigned long long)id, p, (unsigned long long)o->canary, (unsigned long long)o->id);
}

static void check_leaf(const void *p, uint64_t id, const char *what) {
  const leaf *l = p;
  res.checked++;
  if (!l || l->canary != canary(id) || l->id != id || l->data[3] != ~canary(id))
    note_fail("%s: leaf %llu at %p lost its contents", what, (unsigned long long)id, p);
}

/* Allocates n unreachable objects filled with junk, so that a slot freed by
 * mistake is likely reused and overwritten, not only poisoned. Each is
 * filled before the next allocation: that is a safepoint, and with several
 * mutators another goroutine's collection may free an object held nowhere. */
static void garbage(int n) {
  for (int i = 0; i < n; i++) {
    obj *o = ref_alloc(&obj_t);
    if (o) memset(o, 0x11, sizeof *o), o->next = NULL;
    leaf *l = ref_alloc(&leaf_t);
    if (l) memset(l, 0x22, sizeof *l);
  }
}


/* ---------------------------------------------------------------------------
 * Objects reachable only from goroutine stacks survive
 * ------------------------------------------------------------------------- */

#define NHOLD 24
#define HOLD_IDS 16 /* ids per holder */

REF_FUNC(holder_info, "gc.holder", 4, REF_SP(0xf));
REF_FUNC(gcer_info, "gc.gcer", 2, REF_SP(0x3));

/* Holds 4 objects in slots, one more through the heap, and (conservative
 * scan only) 3 in plain locals; parks; checks them all on wake. */
static void holder(void *arg) {
  uint64_t base = (uint64_t)(uintptr_t)arg * HOLD_IDS;
  bool cons = ref_get_config()->scan == REF_SCAN_CONSERVATIVE;
  REF_FRAME(f, holder_info);
  REF_SAFEPOINT(f, 0);
  for (int i = 0; i < 4; i++) f.slot[i] = new_obj(base + (uint64_t)i);
  obj *first = f.slot[0];
  if (first) ref_store((void **)&first->next, new_obj(base + 8));
  obj *volatile local[3] = {NULL, NULL, NULL};
  if (cons)
    for (int i = 0; i < 3; i++) local[i] = new_obj(base + 4 + (uint64_t)i);
  ref_chan_recv(park_ch, NULL);
  for (int i = 0; i < 4; i++) check_obj(f.slot[i], base + (uint64_t)i, "holder slot");
  first = f.slot[0];
  check_obj(first ? first->next : NULL, base + 8, "holder heap");
  if (cons)
    for (int i = 0; i < 3; i++) check_obj(local[i], base + 4 + (uint64_t)i, "holder local");
  res.done++;
}

/* Collects from a goroutine while the holders are parked; its own objects,
 * in slots, must survive its own collections. */
static void gcer(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  REF_FRAME(f, gcer_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(id);
  f.slot[1] = new_leaf(id + 1);
  for (int k = 0; k < 3; k++) {
    garbage(50);
    ref_gc();
    if (ref_gc_last()->stacks_scanned != NHOLD + 1)
      note_fail("gc from a goroutine scanned %llu stacks",
                (unsigned long long)ref_gc_last()->stacks_scanned);
  }
  check_obj(f.slot[0], id, "gcer slot");
  check_leaf(f.slot[1], id + 1, "gcer leaf");
}

static void stack_only_run(ref_phase ph, ref_scan sc, int W) {
  init_rt(ph, sc, REF_MAPS_PCTAB, W, (size_t)1 << 30);
  res_reset();
  park_ch_open();
  for (int i = 0; i < NHOLD; i++) assert_non_null(ref_go(holder, (void *)(intptr_t)(i + 1)));
  assert_int_equal(ref_run(), NHOLD);
  assert_no_fail();
  for (int round = 0; round < 8; round++) {
    garbage(200);
    size_t live = live_objects();
    ref_gc();
    assert_int_equal(ref_gc_last()->stacks_scanned, NHOLD);
    /* The floor hook reads what a conservative scan reads: the same bytes. */
    uint64_t touched = 0;
    ref_debug_touch_stacks(&touched);
    assert_int_equal(touched, ref_gc_last()->stack_bytes);
    /* The channel, and per holder 4 slot objects + 1 heap object (+ 3 in
     * locals, conservative only); the rest is garbage. */
    bool frames = sc == REF_SCAN_FRAMES;
    assert_collected(live, 1 + NHOLD * (frames ? 5 : 8), frames);
    assert_true(ref_gc_last()->objects_freed >= 400 - CONS_SLACK);
    if (round % 2 == 1) {
      assert_non_null(ref_go(gcer, (void *)(intptr_t)(100000 + round * 10)));
      assert_int_equal(ref_run(), NHOLD);
    }
  }
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, NHOLD);
  long want = NHOLD * (sc == REF_SCAN_FRAMES ? 5 : 8) + 4 * 2;
  assert_int_equal(res.checked, want);
  ref_shutdown();
}

static void test_stack_only_objects_survive(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++)
    for (int ph = 0; ph < 3; ph++)
      for (int W = 1; W <= 2; W++) stack_only_run((ref_phase)ph, (ref_scan)sc, W);
}

/* The parallel floor reads the same bytes, and the same words, as the
 * one-thread floor and the cycle, with any number of its workers: enough
 * goroutines that W workers claim several runs each. */
#define NFLOOR 901 /* 7 full runs of 128, ref__claim_batch's least, and a short one */

static void floor_parker(void *arg) {
  (void)arg;
  ref_chan_recv(park_ch, NULL);
}

static void test_parallel_floor_reads_the_cycles_bytes(void **state) {
  (void)state;
  for (int W = 1; W <= 3; W++) {
    init_rt(REF_PHASE_ROOTJOBS, REF_SCAN_CONSERVATIVE, REF_MAPS_PCTAB, W, (size_t)1 << 30);
    park_ch_open();
    for (int i = 0; i < NFLOOR; i++) assert_non_null(ref_go(floor_parker, NULL));
    assert_int_equal(ref_run(), NFLOOR);
    ref_gc();
    uint64_t want = ref_gc_last()->stack_bytes, bytes1 = 0;
    assert_int_equal(ref_gc_last()->stacks_scanned, NFLOOR);
    uint64_t sum1 = ref_debug_touch_stacks(&bytes1);
    assert_int_equal(bytes1, want);
    for (int nw = 1; nw <= W; nw++) {
      uint64_t sum = 0, bytes = 0;
      assert_int_equal(ref_debug_touch_stacks_parallel(nw, &sum, &bytes), 0);
      assert_int_equal(bytes, want);
      assert_int_equal(sum, sum1);
    }
    assert_int_equal(ref_debug_touch_stacks_parallel(0, NULL, NULL), -1);
    assert_int_equal(ref_debug_touch_stacks_parallel(W + 1, NULL, NULL), -1);
    assert_non_null(strstr(ref_error(), "touch workers"));
    park_ch_close_all();
    assert_int_equal(ref_run(), 0);
    ref_shutdown();
  }
}

/* ---------------------------------------------------------------------------
 * Unreachable objects are freed, exactly
 * ------------------------------------------------------------------------- */

/* Allocates k unreachable objects of mixed kinds, sizes and classes,
 * including large ones; returns k. */
static int alloc_unreachable(int k) {
  for (int i = 0; i < k; i++) {
    void *p;
    switch (i % 8) {
    case 0: p = ref_alloc(&obj_t); break;
    case 1: p = ref_alloc(&leaf_t); break;
    case 2: p = ref_alloc_array(&ptr_t, (size_t)(i % 50) + 1); break;
    case 3: p = ref_alloc_array(&byte_t, (size_t)(i % 3000) + 1); break;
    case 4: p = ref_alloc_array(&obj_t, 3); break;
    case 5: p = i % 40 == 5 ? ref_alloc_array(&ptr_t, 5000) : ref_alloc(&ptr_t); break;
    case 6: p = i % 80 == 6 ? ref_alloc_array(&byte_t, 300 << 10) : ref_alloc(&leaf_t); break;
    default: p = ref_alloc_array(&leaf_t, 7); break;
    }
    if (!p) {
      note_fail("allocation %d failed: %s", i, ref_error());
      return i;
    }
    memset(p, 0x33, 8); /* a non-pointer word */
  }
  return k;
}

/* From the scheduler stack, which is never scanned, with no goroutines:
 * every object is garbage, whatever the scan mode. */
static void test_unreachable_freed_exactly_no_goroutines(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, (ref_scan)sc, REF_MAPS_DIRECT, 2, (size_t)1 << 30);
      for (int round = 0; round < 3; round++) {
        res_reset();
        int k = alloc_unreachable(1000 + 137 * round);
        assert_no_fail();
        ref_gc();
        const ref_gc_stats *st = ref_gc_last();
        assert_int_equal(st->objects_freed, k);
        assert_int_equal(st->objects_marked, 0);
        ref_heap_stats hs;
        ref_heap_stats_get(&hs);
        assert_int_equal(hs.objects_live, 0);
        assert_int_equal(hs.bytes_live, 0);
      }
      ref_shutdown();
    }
  }
}

REF_FUNC(dropper_info, "gc.dropper", 3, REF_SP(0x7));

#define DROP_K 1500
static struct {
  uint64_t freed, marked;
  size_t live_before, live_after;
} drop;

/* Holds 3 objects, allocates DROP_K it drops at once, collects itself. */
static void dropper(void *arg) {
  (void)arg;
  REF_FRAME(f, dropper_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(1);
  f.slot[1] = new_leaf(2);
  f.slot[2] = ref_alloc_array(&ptr_t, 6000); /* large, holds nothing */
  ref_gc(); /* nothing to free yet */
  if (ref_gc_last()->objects_freed != 0) note_fail("first cycle freed objects");
  ref_heap_stats hs;
  ref_heap_stats_get(&hs);
  drop.live_before = hs.objects_live;
  alloc_unreachable(DROP_K);
  ref_gc();
  drop.freed = ref_gc_last()->objects_freed;
  drop.marked = ref_gc_last()->objects_marked;
  ref_heap_stats_get(&hs);
  drop.live_after = hs.objects_live;
  check_obj(f.slot[0], 1, "dropper");
  check_leaf(f.slot[1], 2, "dropper");
}

/* A goroutine collects with garbage of its own: scan=frames frees exactly
 * that garbage; a conservative scan may retain some through stale stack
 * words, but what it does not free it marks. */
static void test_unreachable_freed_exactly_from_goroutine(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, (ref_scan)sc, REF_MAPS_PCTAB_CACHED, 2, (size_t)1 << 30);
      res_reset();
      memset(&drop, 0, sizeof drop);
      assert_non_null(ref_go(dropper, NULL));
      assert_int_equal(ref_run(), 0);
      assert_no_fail();
      assert_int_equal(drop.live_before, 3);
      if (sc == REF_SCAN_FRAMES) {
        assert_int_equal(drop.freed, DROP_K);
        assert_int_equal(drop.marked, 3);
      } else {
        assert_true(drop.freed <= DROP_K);
        assert_true(drop.freed >= DROP_K / 2); /* a stack cannot hold more than a few */
      }
      assert_int_equal(drop.marked + drop.freed, 3 + DROP_K);
      assert_int_equal(drop.live_after, drop.marked);
      ref_shutdown();
    }
  }
}

/* ---------------------------------------------------------------------------
 * A goroutine's start argument is a root until it starts
 * ------------------------------------------------------------------------- */

#define NARG 10
REF_FUNC(arg_info, "gc.arg", 1, REF_SP(0x1));

static void arg_g(void *arg) {
  REF_FRAME(f, arg_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = arg;
  garbage(20);
  ref_gc(); /* started now: the slot holds it */
  const obj *o = f.slot[0];
  check_obj(o, o ? o->id : 0, "start argument");
  if (o && o->id >= NARG) note_fail("start argument id %llu", (unsigned long long)o->id);
  res.done++;
}

static void test_start_arg_is_root(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, (ref_scan)sc, REF_MAPS_PCTAB, 2, (size_t)1 << 30);
      res_reset();
      for (int i = 0; i < NARG; i++) assert_non_null(ref_go(arg_g, new_obj((uint64_t)i)));
      for (int round = 0; round < 3; round++) {
        garbage(100);
        ref_gc();
        assert_int_equal(ref_gc_last()->objects_marked, NARG);
        assert_int_equal(ref_gc_last()->objects_freed, 200);
        assert_int_equal(ref_gc_last()->stacks_scanned, 0); /* none has started */
        uint64_t touched = 1;
        ref_debug_touch_stacks(&touched);
        assert_int_equal(touched, 0);
      }
      assert_int_equal(ref_run(), 0);
      assert_no_fail();
      assert_int_equal(res.done, NARG);
      ref_shutdown();
    }
  }
}

/* ---------------------------------------------------------------------------
 * Interior pointers and large objects (with oblets)
 * ------------------------------------------------------------------------- */

#define L1_N 5000u  /* 40,000 bytes: a large object, one oblet */
#define L1_MID ((size_t)L1_N * 4) /* its middle byte */
#define L2_N 80000u /* 640,000 bytes: five oblets */
#define L3_BYTES ((size_t)200 << 10)
static const uint32_t l1_at[] = {0, 100, 2048, L1_N - 1};
static const uint32_t l2_at[] = {0, 16383, 16384, 32768, 40000, 65535, 65536, L2_N - 1};
#define NL1 (sizeof l1_at / sizeof l1_at[0])
#define NL2 (sizeof l2_at / sizeof l2_at[0])
#define L3_AT 50001u /* L2's slot that holds the large noscan L3 */
/* L4: 10,000 elements of 40 bytes, words 1, 3 and 4 pointers, held in L2's
 * slot L4_AT. Oblet ends cut elements 3276, 6553 and 9830 in two. */
#define L4_N 10000u
#define L4_AT 50002u
typedef struct cut_elem {
  uint64_t w[5];
} cut_elem;
static const uint64_t cut_mask[1] = {0x1A};
static const ref_type cut_t = {sizeof(cut_elem), cut_mask, "test.cut"};
static const uint32_t l4_at[] = {0, 3276, 6553, 9830, L4_N - 1};
static const int l4_word[] = {1, 3, 4};
#define NL4 (sizeof l4_at / sizeof l4_at[0])

REF_FUNC(interior_info, "gc.interior", 4, REF_SP(0xf));

static uintptr_t interior_root; /* registered: an interior pointer to object 900 */
static int interior_objects;    /* reachable objects the holder builds */

static void interior_holder(void *arg) {
  (void)arg;
  REF_FRAME(f, interior_info);
  REF_SAFEPOINT(f, 0);
  obj *a = new_obj(1);
  f.slot[0] = (char *)a + 37;                /* unaligned, mid-object */
  obj *b = new_obj(2);
  f.slot[1] = (char *)b + sizeof(obj) - 1;   /* its last byte */
  void **l1 = ref_alloc_array(&ptr_t, L1_N);
  f.slot[2] = (char *)l1 + L1_MID;           /* the middle of a large object */
  for (size_t i = 0; i < NL1; i++) l1[l1_at[i]] = new_leaf(100 + i);
  void **l2 = ref_alloc_array(&ptr_t, L2_N);
  f.slot[3] = (char *)l2 + 300000;           /* inside its third oblet */
  for (size_t i = 0; i < NL2; i++) l2[l2_at[i]] = new_obj(200 + i);
  uint64_t *l3 = ref_alloc_array(&byte_t, L3_BYTES);
  l3[0] = canary(300);
  l3[L3_BYTES / 8 - 1] = canary(301);
  l2[L3_AT] = (char *)l3 + 12345;            /* large -> large, interior */
  cut_elem *l4 = ref_alloc_array(&cut_t, L4_N);
  l2[L4_AT] = l4;
  for (size_t i = 0; i < NL4; i++)
    for (size_t j = 0; j < 3; j++)
      l4[l4_at[i]].w[l4_word[j]] = (uint64_t)(uintptr_t)new_leaf(400 + 3 * i + j);
  obj *c = new_obj(900);
  interior_root = (uintptr_t)c + 20;
  interior_objects = 2 + 1 + (int)NL1 + 1 + (int)NL2 + 1 + 1 + 1 + 3 * (int)NL4;

  ref_chan_recv(park_ch, NULL);

  check_obj((char *)f.slot[0] - 37, 1, "interior");
  check_obj((char *)f.slot[1] - (sizeof(obj) - 1), 2, "last byte");
  l1 = (void **)((char *)f.slot[2] - L1_MID);
  for (size_t i = 0; i < NL1; i++) check_leaf(l1[l1_at[i]], 100 + i, "large object slot");
  l2 = (void **)((char *)f.slot[3] - 300000);
  for (size_t i = 0; i < NL2; i++) check_obj(l2[l2_at[i]], 200 + i, "oblet slot");
  l3 = (uint64_t *)((char *)l2[L3_AT] - 12345);
  res.checked++;
  if (l3[0] != canary(300) || l3[L3_BYTES / 8 - 1] != canary(301))
    note_fail("large noscan object lost its canaries");
  cut_elem *l4c = l2[L4_AT];
  for (size_t i = 0; i < NL4; i++)
    for (size_t j = 0; j < 3; j++)
      check_leaf((void *)(uintptr_t)l4c[l4_at[i]].w[l4_word[j]], 400 + 3 * i + j,
                 "element an oblet cuts");
  check_obj((char *)interior_root - 20, 900, "interior global root");
  res.done++;
}

static void test_interior_and_large(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    for (int ph = 0; ph < 3; ph++) {
      for (int W = 1; W <= 2; W++) {
        init_rt((ref_phase)ph, (ref_scan)sc, REF_MAPS_DIRECT, W, (size_t)1 << 30);
        res_reset();
        park_ch_open();
        interior_root = 0;
        ref_add_root(&interior_root, sizeof interior_root);
        assert_non_null(ref_go(interior_holder, NULL));
        assert_int_equal(ref_run(), 1);
        for (int round = 0; round < 4; round++) {
          garbage(100);
          /* large garbage, so freed large spans are reused */
          for (int k = 0; k < 3; k++) {
            void **g = ref_alloc_array(&ptr_t, L2_N);
            assert_non_null(g);
            memset(g, 0x44, L2_N * sizeof(void *));
          }
          size_t live = live_objects();
          ref_gc();
          assert_collected(live, 1 + (size_t)interior_objects, sc == REF_SCAN_FRAMES);
          assert_true(ref_gc_last()->objects_freed >= 203 - CONS_SLACK);
        }
        park_ch_close_all();
        assert_no_fail();
        assert_int_equal(res.done, 1);
        assert_int_equal(res.checked, 4 + NL1 + NL2 + 3 * NL4);
        ref_remove_root(&interior_root);
        ref_shutdown();
      }
    }
  }
}

/* ---------------------------------------------------------------------------
 * Channels keep buffered pointer elements alive
 * ------------------------------------------------------------------------- */

typedef struct celem {
  void *p;
  uint64_t tag;
} celem;
static const uint64_t celem_mask[1] = {0x1};
static const ref_type celem_t = {sizeof(celem), celem_mask, "test.celem"};

static ref_chan *chans[2]; /* registered: [0] of celem, [1] of plain pointers */
#define CAP0 16
#define CAP1 8

REF_FUNC(sender_info, "gc.sender", 1, REF_SP(0x1));

/* Sends one more object into the full channel: parks, holding the value in
 * its slot, as the send contract asks. */
static void blocked_sender(void *arg) {
  (void)arg;
  REF_FRAME(f, sender_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(5000);
  ref_chan_send(chans[1], &f.slot[0]);
  res.done++;
}

static void send_celem(uint64_t id) {
  celem e = {new_obj(id), id};
  ref_chan_send(chans[0], &e);
}

static void recv_celem(uint64_t id) {
  celem e = {NULL, 0};
  if (!ref_chan_recv(chans[0], &e)) fail_msg("receive %llu: closed", (unsigned long long)id);
  assert_int_equal(e.tag, id);
  check_obj(e.p, id, "celem");
}

static void test_channel_buffers_keep_values(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, (ref_scan)sc, REF_MAPS_PCTAB, 2, (size_t)1 << 30);
      res_reset();
      chans[0] = ref_chan_make(&celem_t, CAP0);
      ref_add_root(chans, sizeof chans);
      chans[1] = ref_chan_make(&ptr_t, CAP1);
      assert_non_null(chans[0]);
      assert_non_null(chans[1]);
      /* From the scheduler stack: the buffers hold the only references. */
      for (uint64_t i = 0; i < CAP0; i++) send_celem(1000 + i);
      for (uint64_t i = 0; i < CAP1; i++) {
        void *p = new_obj(2000 + i);
        ref_chan_send(chans[1], &p);
      }
      for (int round = 0; round < 3; round++) {
        garbage(100);
        ref_gc();
        /* 2 channels + 2 buffers + the elements; no stacks exist */
        assert_int_equal(ref_gc_last()->objects_marked, 4 + CAP0 + CAP1);
      }
      /* Wrap around: take 5, collect (they are garbage now), refill. */
      for (uint64_t i = 0; i < 5; i++) recv_celem(1000 + i);
      ref_gc();
      assert_int_equal(ref_gc_last()->objects_freed, 5); /* received slots were cleared */
      for (uint64_t i = 0; i < 5; i++) send_celem(1000 + CAP0 + i);
      garbage(100);
      ref_gc();
      assert_int_equal(ref_gc_last()->objects_marked, 4 + CAP0 + CAP1);
      /* A sender parked on the full pointer channel, value in its slot. */
      assert_non_null(ref_go(blocked_sender, NULL));
      assert_int_equal(ref_run(), 1);
      garbage(100);
      size_t live = live_objects();
      ref_gc();
      assert_collected(live, 4 + CAP0 + CAP1 + 1, sc == REF_SCAN_FRAMES);
      /* Drain in FIFO order; the sender's value moves into the buffer. */
      for (uint64_t i = 5; i < CAP0 + 5; i++) recv_celem(1000 + i);
      for (uint64_t i = 0; i <= CAP1; i++) {
        void *p = NULL;
        assert_true(ref_chan_recv(chans[1], &p));
        if (i == 0) assert_int_equal(ref_run(), 0); /* the sender moved in and exited */
        check_obj(p, i < CAP1 ? 2000 + i : 5000, "pointer element");
        if (i == 0) {
          garbage(50);
          ref_gc(); /* the moved value is only in the buffer now */
        }
      }
      assert_int_equal(res.done, 1);
      assert_no_fail();
      ref_gc();
      assert_int_equal(ref_gc_last()->objects_marked, 4);
      ref_remove_root(chans);
      ref_shutdown();
    }
  }
}

/* ---------------------------------------------------------------------------
 * Random object graphs against an independent reachability computation
 * ------------------------------------------------------------------------- */

/* Types: word 0 of every element is a canary; `fake` words are data that
 * sometimes hold real heap addresses and must not keep anything alive. */
enum { TA, TB, TC, TD, TE, TZ, NTYPES };
static const uint64_t mA[1] = {0x2};        /* canary, p */
static const uint64_t mB[1] = {0x6};        /* canary, p, p, fake */
static const uint64_t mC[1] = {0xB4};       /* canary, d, p, fake, p, p, d, p */
static const uint64_t mE[2] = {(1ull << 1) | (1ull << 63), 1ull | (1ull << 1) | (1ull << 15)};
static const uint64_t mZ[1] = {0};          /* a mask without bits: noscan */
static const ref_type gtypes[NTYPES] = {
    {sizeof(uint64_t[2]), mA, "g.A"},   {sizeof(uint64_t[4]), mB, "g.B"},
    {sizeof(uint64_t[8]), mC, "g.C"},   {sizeof(uint64_t[3]), NULL, "g.D"},
    {sizeof(uint64_t[80]), mE, "g.E"},  {sizeof(uint64_t[2]), mZ, "g.Z"},
};
static const int fake_word[NTYPES] = {-1, 3, 3, 1, 2, 1};

typedef struct mfield {
  uint32_t off;  /* byte offset of the pointer word in the object */
  int32_t tgt;   /* target object, -1 for NULL */
  uint32_t toff; /* byte offset into the target (interior pointers) */
} mfield;

typedef struct mobj {
  uintptr_t base;
  size_t size; /* requested bytes: n * type size */
  uint32_t n;
  uint8_t type;
  bool alive, reach;
  uint64_t id;
  uintptr_t fakeval;
  mfield *f;
  uint32_t nf;
} mobj;

#define NROOTS 96
static struct {
  mobj *o;
  size_t n, cap;
  uint64_t rng;
  int32_t *stack;
  uintptr_t roots[NROOTS]; /* registered */
  int32_t root_tgt[NROOTS];
  uint32_t root_off[NROOTS];
} M;

static uint64_t mrand(void) { return ref__rand64(&M.rng); }
static uint32_t mrange(uint32_t n) { return (uint32_t)(mrand() % n); }

static uint64_t elem_canary(const mobj *o, uint32_t e) { return canary(o->id * 1000003u + e); }

static uint32_t ptr_words(int type, uint32_t *out) {
  const ref_type *t = &gtypes[type];
  uint32_t k = 0;
  if (!t->ptrmask) return 0;
  for (uint32_t w = 0; w < t->size / 8; w++)
    if ((t->ptrmask[w / 64] >> (w % 64)) & 1) out[k++] = w;
  return k;
}

/* A random alive object's index, or -1 when there is none. */
static int32_t random_alive(void) {
  for (int tries = 0; tries < 64 && M.n > 0; tries++) {
    uint32_t i = mrange((uint32_t)M.n);
    if (M.o[i].alive) return (int32_t)i;
  }
  return -1;
}

static uintptr_t field_value(int32_t tgt, uint32_t toff) {
  return tgt < 0 ? 0 : M.o[tgt].base + toff;
}

/* Points field f at a random alive object (or NULL) and writes it. */
static void set_field(mobj *o, mfield *f, uint32_t null_pct) {
  f->tgt = mrange(100) < null_pct ? -1 : random_alive();
  f->toff = 0;
  if (f->tgt >= 0 && mrange(4) != 0) f->toff = mrange((uint32_t)M.o[f->tgt].size);
  ref_store((void **)(o->base + f->off), (void *)field_value(f->tgt, f->toff));
}

static void model_alloc(void) {
  if (M.n == M.cap) {
    M.cap = M.cap ? 2 * M.cap : 1024;
    M.o = realloc(M.o, M.cap * sizeof *M.o);
    assert_non_null(M.o);
  }
  uint32_t r = mrange(1000), n = 1;
  int type = (int)mrange(NTYPES);
  if (r < 100) n = 2 + mrange(15);
  else if (r < 140) type = TA, n = 2100 + mrange(4000);   /* 33-100 KiB */
  else if (r < 145) type = TC, n = 2100 + mrange(8000);   /* 134-645 KiB */
  else if (r < 150) type = TE, n = 210 + mrange(800);     /* 134-645 KiB, oblets cut elements */
  mobj *o = &M.o[M.n];
  memset(o, 0, sizeof *o);
  o->type = (uint8_t)type;
  o->n = n;
  o->size = (size_t)n * gtypes[type].size;
  o->id = M.n;
  o->base = (uintptr_t)ref_alloc_array(&gtypes[type], n);
  if (!o->base) fail_msg("model allocation: %s", ref_error());
  o->alive = true;
  M.n++;
  for (uint32_t e = 0; e < n; e++)
    ((uint64_t *)(o->base + (size_t)e * gtypes[type].size))[0] = elem_canary(o, e);
  int32_t fk = random_alive();
  o->fakeval = fk >= 0 ? M.o[fk].base + mrange(8) : 0;
  if (fake_word[type] >= 0)
    for (uint32_t e = 0; e < n; e++)
      ((uintptr_t *)(o->base + (size_t)e * gtypes[type].size))[fake_word[type]] = o->fakeval;
  uint32_t pw[80];
  uint32_t npw = ptr_words(type, pw);
  o->nf = npw * n;
  o->f = o->nf ? calloc(o->nf, sizeof(mfield)) : NULL;
  uint32_t null_pct = n > 64 ? 99 : 35; /* big arrays: sparse */
  size_t esize = gtypes[type].size;
  for (uint32_t e = 0, k = 0; e < n; e++) {
    /* An element an oblet's end cuts in two has all its fields set. */
    bool cut = e * esize / REF_OBLET_BYTES != ((e + 1) * esize - 1) / REF_OBLET_BYTES;
    for (uint32_t j = 0; j < npw; j++, k++) {
      o->f[k].off = (uint32_t)(e * esize + (size_t)pw[j] * 8);
      set_field(o, &o->f[k], cut ? 0 : null_pct);
    }
  }
}

static void set_root(int i) {
  M.root_tgt[i] = mrange(8) == 0 ? -1 : random_alive();
  M.root_off[i] = 0;
  if (M.root_tgt[i] >= 0 && mrange(3) == 0)
    M.root_off[i] = mrange((uint32_t)M.o[M.root_tgt[i]].size);
  M.roots[i] = field_value(M.root_tgt[i], M.root_off[i]);
}

static void model_mutate(void) {
  for (int i = 0; i < 150; i++) model_alloc();
  for (size_t i = 0; i < M.n; i++) {
    mobj *o = &M.o[i];
    if (!o->alive || mrange(5) != 0) continue;
    for (uint32_t k = 0; k < o->nf; k++)
      if (mrange(2) == 0) set_field(o, &o->f[k], o->n > 64 ? 99 : 35);
  }
  for (int k = 0; k < 30; k++) set_root((int)mrange(NROOTS));
}

/* BFS (a stack, in fact) over the model's edges from the roots. */
static size_t model_reach(void) {
  size_t nreach = 0, sp = 0;
  M.stack = realloc(M.stack, (M.n + 1) * sizeof *M.stack);
  for (size_t i = 0; i < M.n; i++) M.o[i].reach = false;
  for (int r = 0; r < NROOTS; r++) {
    int32_t t = M.root_tgt[r];
    if (t >= 0 && !M.o[t].reach) M.o[t].reach = true, M.stack[sp++] = t, nreach++;
  }
  while (sp > 0) {
    const mobj *o = &M.o[M.stack[--sp]];
    for (uint32_t k = 0; k < o->nf; k++) {
      int32_t t = o->f[k].tgt;
      if (t >= 0 && !M.o[t].reach) M.o[t].reach = true, M.stack[sp++] = t, nreach++;
    }
  }
  return nreach;
}

/* Large spans that ref__heap_releasable accepts are given back to the OS
 * instead of poisoned. */
static bool released_large(const mobj *o) {
  size_t bytes = (o->size + 7) & ~(size_t)7;
  return bytes > REF_MAX_SMALL_SIZE &&
         ref__heap_releasable(o->base, (bytes + REF_PAGE_SIZE - 1) / REF_PAGE_SIZE);
}

static void model_verify(void) {
  for (size_t i = 0; i < M.n; i++) {
    mobj *o = &M.o[i];
    if (!o->alive) continue;
    if (!o->reach) { /* freed by this cycle */
      if (is_allocated(o->base)) fail_msg("unreachable object %zu survived", i);
      bool ok = released_large(o) ? *(uint64_t *)o->base == 0
                                  : all_bytes((void *)o->base, o->size, 0xfe);
      if (!ok) fail_msg("freed object %zu (%zu bytes) is not poisoned", i, o->size);
      o->alive = false;
      free(o->f);
      o->f = NULL;
      continue;
    }
    if (!is_allocated(o->base)) fail_msg("reachable object %zu was freed", i);
    size_t tsize = gtypes[o->type].size;
    for (uint32_t e = 0; e < o->n; e++) {
      const uintptr_t *el = (const uintptr_t *)(o->base + (size_t)e * tsize);
      if (el[0] != elem_canary(o, e)) fail_msg("object %zu element %u: canary lost", i, e);
      if (fake_word[o->type] >= 0 && el[fake_word[o->type]] != o->fakeval)
        fail_msg("object %zu element %u: data word changed", i, e);
    }
    for (uint32_t k = 0; k < o->nf; k++)
      if (*(uintptr_t *)(o->base + o->f[k].off) != field_value(o->f[k].tgt, o->f[k].toff))
        fail_msg("object %zu: pointer field at +%u changed", i, o->f[k].off);
  }
}

static void model_free(void) {
  for (size_t i = 0; i < M.n; i++) free(M.o[i].f);
  free(M.o);
  free(M.stack);
  memset(&M, 0, sizeof M);
}

static uint64_t graph_run(uint64_t seed, ref_phase ph, ref_scan sc, int W) {
  init_rt(ph, sc, REF_MAPS_DIRECT, W, (size_t)1 << 30);
  memset(&M, 0, sizeof M);
  M.rng = seed * 0x9E3779B97F4A7C15ull + 1;
  ref_add_root(M.roots, sizeof M.roots);
  for (int i = 0; i < 1200; i++) model_alloc();
  for (int i = 0; i < NROOTS; i++) set_root(i);
  uint64_t sum = 0;
  for (int round = 0; round < 4; round++) {
    if (round > 0) model_mutate();
    size_t alive = 0;
    for (size_t i = 0; i < M.n; i++) alive += M.o[i].alive;
    size_t nreach = model_reach();
    ref_gc();
    const ref_gc_stats *st = ref_gc_last();
    assert_int_equal(st->objects_marked, nreach);
    assert_int_equal(st->objects_freed, alive - nreach);
    ref_heap_stats hs;
    ref_heap_stats_get(&hs);
    assert_int_equal(hs.objects_live, nreach);
    model_verify();
    /* The graphs must be neither trivial nor total. */
    assert_true(nreach > 20 && nreach < alive);
    sum += nreach;
  }
  ref_remove_root(M.roots);
  model_free();
  ref_shutdown();
  return sum;
}

static void test_random_graphs(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 6; seed++) {
    uint64_t first = 0;
    for (int sc = 0; sc < 2; sc++) {
      for (int ph = 0; ph < 3; ph++) {
        for (int W = 1; W <= 2; W++) {
          uint64_t sum = graph_run(seed, (ref_phase)ph, (ref_scan)sc, W);
          if (!first) first = sum;
          assert_int_equal(sum, first); /* the same graphs whatever the strategy */
        }
      }
    }
  }
}

/* ---------------------------------------------------------------------------
 * The heap limit
 * ------------------------------------------------------------------------- */

#define HL_MAX 8192
static void *hl_roots[HL_MAX]; /* registered */
static const ref_type kib_t = {1024, NULL, "test.kib"};

/* Fills the heap with 1 KiB objects rooted in hl_roots[first...] until
 * allocation fails; returns how many. */
static int fill_heap_from(int first) {
  int n = first;
  while (n < HL_MAX) {
    void *p = ref_alloc(&kib_t);
    if (!p) break;
    hl_roots[n++] = p;
  }
  return n - first;
}

static int fill_heap(void) { return fill_heap_from(0); }

static void test_heap_limit(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    init_rt(REF_PHASE_PARALLEL, (ref_scan)sc, REF_MAPS_DIRECT, 2, (size_t)2 << 20);
    memset(hl_roots, 0, sizeof hl_roots);
    ref_add_root(hl_roots, sizeof hl_roots);
    int n1 = fill_heap();
    assert_true(n1 > 1500 && n1 <= 2048);
    assert_string_equal(ref_error(), "heap limit 2 MiB exceeded");
    assert_null(ref_alloc_array(&byte_t, (size_t)3 << 20));
    assert_string_equal(ref_error(), "heap limit 2 MiB exceeded");
    memset(hl_roots, 0, sizeof hl_roots);
    ref_gc();
    assert_int_equal(ref_gc_last()->objects_freed, n1);
    ref_heap_stats hs;
    ref_heap_stats_get(&hs);
    assert_int_equal(hs.objects_live, 0);
    int n2 = fill_heap(); /* the same empty heap again */
    assert_int_equal(n2, n1);
    memset(hl_roots, 0, sizeof hl_roots);
    void *big = ref_alloc_array(&byte_t, (size_t)3 << 19); /* 1.5 MiB: collects first */
    assert_non_null(big);
    ref_remove_root(hl_roots);
    ref_shutdown();
  }
}

REF_FUNC(churner_info, "gc.churner", 2, REF_SP(0x3));
static uint64_t churn_cycles;

/* Allocates 12 MiB through a 2 MiB heap: at the limit ref_alloc collects,
 * from this goroutine, and its slots must survive each time. */
static void churner(void *arg) {
  (void)arg;
  REF_FRAME(f, churner_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = new_obj(7);
  f.slot[1] = new_leaf(8);
  uint64_t c0 = ref_gc_last()->cycle;
  for (int i = 0; i < 12 * 1024; i++) {
    void *p = ref_alloc(&kib_t);
    if (!p) {
      note_fail("allocation %d failed at the limit: %s", i, ref_error());
      break;
    }
    memset(p, 0x55, 1024);
  }
  churn_cycles = ref_gc_last()->cycle - c0;
  check_obj(f.slot[0], 7, "churner");
  check_leaf(f.slot[1], 8, "churner");
}

static void test_alloc_at_limit_collects(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    for (int ph = 0; ph < 3; ph++) {
      init_rt((ref_phase)ph, (ref_scan)sc, REF_MAPS_PCTAB, 2, (size_t)2 << 20);
      res_reset();
      churn_cycles = 0;
      assert_non_null(ref_go(churner, NULL));
      assert_int_equal(ref_run(), 0);
      assert_no_fail();
      assert_int_equal(res.checked, 2);
      assert_true(churn_cycles >= 5); /* 12 MiB through 2 MiB */
      ref_shutdown();
    }
  }
}

/* ref_chan_make on the scheduler stack when the buffer's allocation hits
 * the heap limit: that allocation collects, and the channel header, just
 * allocated and held only by chan_make's frame record (which on the
 * scheduler stack is never scanned), must not be freed under it. */
static void test_chan_make_at_limit_on_scheduler_stack(void **state) {
  (void)state;
  init_rt(REF_PHASE_SERIAL, REF_SCAN_FRAMES, REF_MAPS_DIRECT, 1, (size_t)2 << 20);
  memset(hl_roots, 0, sizeof hl_roots);
  ref_add_root(hl_roots, sizeof hl_roots);
  ref_chan *warm = ref_chan_make(&ptr_t, 0); /* a span of the header's class, with room */
  assert_non_null(warm);
  hl_roots[0] = warm;
  int n = 1 + fill_heap_from(1);
  assert_true(n > 1000);
  for (int i = 1; i < 257; i++) hl_roots[i] = NULL; /* whole spans of garbage, not collected */
  uint64_t c0 = ref_gc_last()->cycle;
  ref_chan *c = ref_chan_make(&ptr_t, 1000); /* an 8000-byte buffer: a new span */
  assert_non_null(c);
  assert_true(ref_gc_last()->cycle > c0); /* the buffer's allocation collected */
  hl_roots[n] = c;
  assert_true(is_allocated((uintptr_t)c));
  assert_int_equal(ref_chan_cap(c), 1000);
  assert_int_equal(ref_chan_len(c), 0);
  ref_remove_root(hl_roots);
  ref_shutdown();
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
      cmocka_unit_test_teardown(test_stack_only_objects_survive, teardown),
      cmocka_unit_test_teardown(test_parallel_floor_reads_the_cycles_bytes, teardown),
      cmocka_unit_test_teardown(test_unreachable_freed_exactly_no_goroutines, teardown),
      cmocka_unit_test_teardown(test_unreachable_freed_exactly_from_goroutine, teardown),
      cmocka_unit_test_teardown(test_start_arg_is_root, teardown),
      cmocka_unit_test_teardown(test_interior_and_large, teardown),
      cmocka_unit_test_teardown(test_channel_buffers_keep_values, teardown),
      cmocka_unit_test_teardown(test_random_graphs, teardown),
      cmocka_unit_test_teardown(test_heap_limit, teardown),
      cmocka_unit_test_teardown(test_alloc_at_limit_collects, teardown),
      cmocka_unit_test_teardown(test_chan_make_at_limit_on_scheduler_stack, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
