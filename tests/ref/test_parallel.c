/*
 * test_parallel.c: every strategy against the checkmark verifier and
 * against each other ("parallel").
 *
 *   - the six strategies x W in {1, 2, 3, 8} x the three stackmaps modes on
 *     seeded random heaps and random stacks: the checkmark agrees on every
 *     cycle, everything the test computes as reachable survives intact, and
 *     the deterministic counters do not depend on the phase, the stackmaps
 *     mode or W;
 *   - a torture test: goroutines push and pop frames, allocate, drop and
 *     re-link objects between cycles (and collect themselves), one cycle
 *     per round, rotating through every strategy, W = 2;
 *   - conservative stack splitting: a > 100 KiB deep conservative stack is
 *     split into 16 KiB jobs in the parallel and rootjobs phases, counted
 *     as one stack, with the same marks as a serial scan; and split at
 *     any split_bytes, odd ones included, it loses no word.
 *
 * Size: at least 1,000 cycles in a normal build. Under ASan or TSan the
 * seed and round counts shrink by SCALE (4), as mimalloc's stress test
 * does, to keep the run short.
 */
#include "gcutil.h"

#include "heap.h"     /* ref__find_object, REF_MAX_SMALL_SIZE */
#include "internal.h" /* REF_ASAN, REF_TSAN, ref__cfg */
#include "g.h"        /* a parked goroutine's sp and stack top */
#include "gc.h"       /* ref__solo_mark_ns */

#include <stdbool.h>

#if REF_ASAN || REF_TSAN
#define SCALE 4
#else
#define SCALE 1
#endif

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static uint64_t total_cycles; /* across the file, checked by the last test */


static void init_rt(ref_phase ph, ref_scan sc, ref_stackmaps maps, int workers) {
  ref_config cfg;
  tu_config(&cfg, ph, sc, maps, workers);
  cfg.stack_size = 256 << 10;
  cfg.split_bytes = 16 << 10;
  cfg.seed = 7;
  tu_start(&cfg);
}

static void shutdown_rt(void) {
  total_cycles += ref_gc_last()->cycle;
  ref_shutdown();
}




/* The counters that must not depend on the phase, the stackmaps mode or W
 * for the same heap and stacks. */
typedef struct pcounts {
  uint64_t stacks, stack_bytes, words, frames, lookups, slots, marked;
} pcounts;

static pcounts counts_of(const ref_gc_stats *st) {
  return (pcounts){st->stacks_scanned, st->stack_bytes, st->words, st->frames,
                   st->lookups,        st->slots,       st->objects_marked};
}

static void assert_counts_equal(const pcounts *a, const pcounts *b, const char *what) {
  if (memcmp(a, b, sizeof *a) != 0)
    fail_msg("%s: counters differ: stacks %llu/%llu bytes %llu/%llu words %llu/%llu "
             "frames %llu/%llu lookups %llu/%llu slots %llu/%llu marked %llu/%llu",
             what, (unsigned long long)a->stacks, (unsigned long long)b->stacks,
             (unsigned long long)a->stack_bytes, (unsigned long long)b->stack_bytes,
             (unsigned long long)a->words, (unsigned long long)b->words,
             (unsigned long long)a->frames, (unsigned long long)b->frames,
             (unsigned long long)a->lookups, (unsigned long long)b->lookups,
             (unsigned long long)a->slots, (unsigned long long)b->slots,
             (unsigned long long)a->marked, (unsigned long long)b->marked);
}

/* ---------------------------------------------------------------------------
 * The model: a random heap and random stacks the test knows edge by edge
 * ------------------------------------------------------------------------- */

/* pnode: canary, id, three pointers, data. leaf: pointer-free. */
static const uint64_t pnode_mask[1] = {0x1c};
static const ref_type pnode_t = {sizeof(uint64_t[6]), pnode_mask, "par.pnode"};
static const ref_type leaf_t = {sizeof(uint64_t[3]), NULL, "par.leaf"};

typedef struct mfield {
  uint32_t off;  /* of the pointer word in the object */
  int32_t tgt;   /* target object, -1: NULL */
  uint32_t toff; /* into the target: interior pointers */
} mfield;

typedef struct mobj {
  uintptr_t base;
  size_t size;
  uint32_t n;
  bool leaf, alive, reach;
  uint64_t id;
  mfield *f;
  uint32_t nf;
} mobj;

/* A stack root: a frame slot (live or dead at the park) or a plain local of
 * a conservative frame (always scanned). */
typedef struct sroot {
  int32_t tgt;
  uint32_t toff;
  bool live;
} sroot;

#define NROOTS 64
static struct {
  mobj *o;
  size_t n, cap;
  uint64_t rng;
  int32_t *stack;
  sroot *s;
  size_t ns, scap;
  bool cons_frames; /* this seed uses conservative records */
  uintptr_t roots[NROOTS]; /* registered */
  int32_t root_tgt[NROOTS];
  uint32_t root_off[NROOTS];
} M;

static uint64_t mrand(void) { return ref__rand64(&M.rng); }
static uint32_t mrange(uint32_t n) { return (uint32_t)(mrand() % n); }

static const ref_type *mtype(const mobj *o) { return o->leaf ? &leaf_t : &pnode_t; }
static uint64_t elem_canary(const mobj *o, uint32_t e) { return canary(o->id * 4099u + e); }

static int32_t random_alive(void) {
  for (int tries = 0; tries < 64 && M.n > 0; tries++) {
    uint32_t i = mrange((uint32_t)M.n);
    if (M.o[i].alive) return (int32_t)i;
  }
  return -1;
}

static uintptr_t ref_value(int32_t tgt, uint32_t toff) {
  return tgt < 0 ? 0 : M.o[tgt].base + toff;
}

/* A random target: NULL, or an alive object at a random (often interior)
 * offset. */
static void pick_target(int32_t *tgt, uint32_t *toff, uint32_t null_pct) {
  *tgt = mrange(100) < null_pct ? -1 : random_alive();
  *toff = *tgt >= 0 && mrange(3) == 0 ? mrange((uint32_t)M.o[*tgt].size) : 0;
}

static void set_field(mobj *o, mfield *f) {
  pick_target(&f->tgt, &f->toff, o->n > 16 ? 98 : 40);
  *(uintptr_t *)(o->base + f->off) = ref_value(f->tgt, f->toff);
}

/* Allocates a random object and gives it random edges. Also called from
 * goroutines (one thread runs everything, so the model needs no lock). */
static int32_t model_alloc(void) {
  if (M.n == M.cap) {
    M.cap = M.cap ? 2 * M.cap : 1024;
    M.o = realloc(M.o, M.cap * sizeof *M.o);
    if (!M.o) abort();
  }
  uint32_t r = mrange(1000), n = 1;
  bool leaf = mrange(4) == 0;
  if (r < 120) n = 2 + mrange(7);
  else if (r < 135) leaf = false, n = 700 + mrange(2800); /* 33-168 KiB: oblets */
  mobj *o = &M.o[M.n];
  memset(o, 0, sizeof *o);
  o->leaf = leaf;
  o->n = n;
  o->size = (size_t)n * mtype(o)->size;
  o->id = M.n;
  o->base = (uintptr_t)ref_alloc_array(mtype(o), n);
  if (!o->base) {
    note_fail("model allocation: %s", ref_error());
    return -1;
  }
  o->alive = true;
  int32_t idx = (int32_t)M.n++;
  size_t tsz = mtype(o)->size;
  for (uint32_t e = 0; e < n; e++) {
    uint64_t *el = (uint64_t *)(o->base + e * tsz);
    el[0] = elem_canary(o, e);
    el[1] = o->id;
  }
  o->nf = leaf ? 0 : 3 * n;
  o->f = o->nf ? calloc(o->nf, sizeof(mfield)) : NULL;
  for (uint32_t k = 0; k < o->nf; k++) {
    o->f[k].off = (uint32_t)((k / 3) * tsz + (size_t)(2 + k % 3) * 8);
    set_field(o, &o->f[k]);
  }
  return idx;
}

static void set_root(int i) {
  pick_target(&M.root_tgt[i], &M.root_off[i], 15);
  M.roots[i] = ref_value(M.root_tgt[i], M.root_off[i]);
}

static void model_mutate(void) {
  for (int i = 0; i < 120; i++) model_alloc();
  for (size_t i = 0; i < M.n; i++) {
    mobj *o = &M.o[i];
    if (!o->alive || mrange(4) != 0) continue;
    for (uint32_t k = 0; k < o->nf; k++)
      if (mrange(2) == 0) set_field(o, &o->f[k]);
  }
  for (int k = 0; k < 16; k++) set_root((int)mrange(NROOTS));
}

/* Reachable from the global roots and the live stack roots: what every
 * strategy must keep. Returns how many objects. */
static size_t model_reach(void) {
  size_t nreach = 0, sp = 0;
  M.stack = realloc(M.stack, (M.n + 1) * sizeof *M.stack);
  for (size_t i = 0; i < M.n; i++) M.o[i].reach = false;
#define PUSH(t)                                                                                    \
  do {                                                                                             \
    int32_t t_ = (t);                                                                              \
    if (t_ >= 0 && !M.o[t_].reach) M.o[t_].reach = true, M.stack[sp++] = t_, nreach++;            \
  } while (0)
  for (int r = 0; r < NROOTS; r++) PUSH(M.root_tgt[r]);
  for (size_t i = 0; i < M.ns; i++)
    if (M.s[i].live) PUSH(M.s[i].tgt);
  while (sp > 0) {
    const mobj *o = &M.o[M.stack[--sp]];
    for (uint32_t k = 0; k < o->nf; k++) PUSH(o->f[k].tgt);
  }
#undef PUSH
  return nreach;
}

/* Every reachable object is intact: canaries, ids and pointer fields. */
static void model_verify(void) {
  for (size_t i = 0; i < M.n; i++) {
    const mobj *o = &M.o[i];
    if (!o->alive || !o->reach) continue;
    if (!is_allocated(o->base)) fail_msg("reachable object %zu was freed", i);
    size_t tsz = mtype(o)->size;
    for (uint32_t e = 0; e < o->n; e++) {
      const uint64_t *el = (const uint64_t *)(o->base + e * tsz);
      if (el[0] != elem_canary(o, e) || el[1] != o->id)
        fail_msg("object %zu element %u lost its canary", i, e);
    }
    for (uint32_t k = 0; k < o->nf; k++)
      if (*(uintptr_t *)(o->base + o->f[k].off) != ref_value(o->f[k].tgt, o->f[k].toff))
        fail_msg("object %zu: pointer field at +%u changed", i, o->f[k].off);
  }
}

/* After a precise cycle: what is not reachable is gone from the model. */
static void model_retire(bool expect_freed) {
  for (size_t i = 0; i < M.n; i++) {
    mobj *o = &M.o[i];
    if (!o->alive || o->reach) continue;
    if (expect_freed && is_allocated(o->base)) fail_msg("unreachable object %zu survived", i);
    o->alive = false;
    free(o->f);
    o->f = NULL;
  }
}

static void model_free(void) {
  for (size_t i = 0; i < M.n; i++) free(M.o[i].f);
  free(M.o);
  free(M.stack);
  free(M.s);
  memset(&M, 0, sizeof M);
}

/* Records a stack root and returns the value to store: a model object
 * (20% fresh, allocated here on the goroutine), or NULL. */
static void *stack_root(bool live, size_t *idx) {
  if (M.ns == M.scap) {
    M.scap = M.scap ? 2 * M.scap : 1024;
    M.s = realloc(M.s, M.scap * sizeof *M.s);
    if (!M.s) abort();
  }
  sroot *r = &M.s[M.ns];
  *idx = M.ns++;
  if (mrange(5) == 0) r->tgt = model_alloc(), r->toff = 0;
  else pick_target(&r->tgt, &r->toff, 10);
  M.s[*idx].live = live;
  return (void *)ref_value(M.s[*idx].tgt, M.s[*idx].toff);
}

/* On the way out: a live stack root still holds its value, and its target
 * is intact. */
static void stack_check(const void *value, size_t idx) {
  const sroot *r = &M.s[idx];
  if (!r->live) return;
  res.checked++;
  if ((uintptr_t)value != ref_value(r->tgt, r->toff)) {
    note_fail("stack root %zu changed", idx);
    return;
  }
  if (r->tgt < 0) return;
  const mobj *o = &M.o[r->tgt];
  uint32_t e = (uint32_t)(r->toff / mtype(o)->size);
  if (*(const uint64_t *)(o->base + e * mtype(o)->size) != elem_canary(o, e))
    note_fail("object %d held by stack root %zu lost its canary", r->tgt, idx);
}

/* ---------------------------------------------------------------------------
 * Random stacks
 * ------------------------------------------------------------------------- */

REF_FUNC(p1_info, "par.p1", 1, REF_SP(0x1), REF_SP(0x0));
REF_FUNC(p4_info, "par.p4", 4, REF_SP(0xf), REF_SP(0x5), REF_SP(0xa), REF_SP(0x0), REF_SP(0x3));
REF_FUNC(p16_info, "par.p16", 16, REF_SP(0xffff), REF_SP(0x00ff), REF_SP(0xf0f0), REF_SP(0x8001),
         REF_SP(0x0));
REF_FUNC(pcons_info, "par.pcons", 2, REF_SP(0x3));
REF_FUNC(pentry_info, "par.pentry", 1, REF_SP(0x1));

static void pdescend(int lvl, int depth);

/* A frame of NS slots: fills every slot at safepoint 0 (all live), then
 * parks (deeper) at a random safepoint; checks the live ones on return. */
#define PFRAME(NAME, INFO, NS)                                                                     \
  static ref_noinline void NAME(int lvl, int depth) {                                              \
    REF_FRAME(f, INFO);                                                                            \
    REF_SAFEPOINT(f, 0);                                                                           \
    uint32_t sp = mrange((INFO).nsafepoints);                                                      \
    size_t idx[NS];                                                                                \
    for (int i = 0; i < (NS); i++) f.slot[i] = stack_root((INFO##_live[sp] >> i) & 1, &idx[i]);   \
    REF_SAFEPOINT(f, sp);                                                                          \
    pdescend(lvl + 1, depth);                                                                      \
    for (int i = 0; i < (NS); i++) stack_check(f.slot[i], idx[i]);                                 \
  }
PFRAME(pframe1, p1_info, 1)
PFRAME(pframe4, p4_info, 4)
PFRAME(pframe16, p16_info, 16)

/* A conservative record: its slots and three plain locals are all roots. */
static ref_noinline void pframe_cons(int lvl, int depth) {
  REF_FRAME(f, pcons_info);
  f.h.flags |= REF_FRAME_CONSERVATIVE;
  REF_SAFEPOINT(f, 0);
  size_t idx[5];
  void *volatile local[3];
  for (int i = 0; i < 2; i++) f.slot[i] = stack_root(true, &idx[i]);
  for (int i = 0; i < 3; i++) local[i] = stack_root(true, &idx[2 + i]);
  pdescend(lvl + 1, depth);
  for (int i = 0; i < 2; i++) stack_check(f.slot[i], idx[i]);
  for (int i = 0; i < 3; i++) stack_check(local[i], idx[2 + i]);
}

static void pdescend(int lvl, int depth) {
  if (lvl >= depth) {
    turn_end(); /* built: the next goroutine's turn */
    park();
    return;
  }
  uint32_t r = mrange(M.cons_frames ? 8 : 7);
  if (r < 3) pframe1(lvl, depth);
  else if (r < 5) pframe4(lvl, depth);
  else if (r < 7) pframe16(lvl, depth);
  else pframe_cons(lvl, depth);
}

/* arg: goroutine number << 16 | depth. Goroutines build their stacks from
 * the model's one stream in turn, in creation order. */
static void pgoroutine(void *arg) {
  int depth = (int)((intptr_t)arg & 0xffff);
  turn_wait((intptr_t)arg >> 16);
  REF_FRAME(f, pentry_info);
  REF_SAFEPOINT(f, 0);
  size_t idx;
  f.slot[0] = stack_root(true, &idx);
  pdescend(0, depth);
  stack_check(f.slot[0], idx);
  res.done++;
}

/* ---------------------------------------------------------------------------
 * Every strategy agrees, on random heaps and stacks
 * ------------------------------------------------------------------------- */

#define AG_SEEDS (12 / SCALE)
#define AG_ROUNDS 4
#define AG_NG 32
#define AG_NOBJ 1200

static const int ag_workers[] = {1, 2, 3, 8};

/* One GC in strategy (ph, sc, maps) on the current heap and stacks. */
static pcounts ag_cycle(ref_phase ph, ref_scan sc, ref_stackmaps maps, size_t nreach) {
  ref_set_strategy(ph, sc, maps);
  ref_gc();
  const ref_gc_stats *st = ref_gc_last();
  assert_true(st->objects_marked >= nreach + 1); /* + the channel */
  if (sc == REF_SCAN_FRAMES && !M.cons_frames) assert_int_equal(st->objects_marked, nreach + 1);
  assert_int_equal(st->stacks_scanned, AG_NG);
  assert_int_equal(st->nworkers, ref_get_config()->workers);
  model_verify();
  return counts_of(st);
}

/* The serial phase's helpers join after its roots and REF_SOLO_MARK_NS of
 * marking alone: by seed, never, at once (after the first items), or at
 * that default; the counts must not depend on which. */
static const uint64_t ag_solo_ns[] = {UINT64_MAX, 0, REF_SOLO_MARK_NS};

/* Builds seed's heap and stacks with W workers and runs AG_ROUNDS rounds of
 * 12 cycles; base[round][scan] holds (W == 1) or is compared with (W > 1)
 * the counters. */
static void ag_run(uint64_t seed, int W, pcounts base[AG_ROUNDS][2]) {
  init_rt(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, W);
  ref__solo_mark_ns = ag_solo_ns[seed % REF_ARRAY_SIZE(ag_solo_ns)];
  res_reset();
  memset(&M, 0, sizeof M);
  M.rng = seed * 0x9E3779B97F4A7C15ull + 3;
  M.cons_frames = seed % 2 == 0;
  ref_add_root(M.roots, sizeof M.roots);
  park_ch_open();
  for (int i = 0; i < AG_NOBJ; i++) model_alloc();
  for (int i = 0; i < NROOTS; i++) set_root(i);
  for (int g = 0; g < AG_NG; g++) {
    int depth = g == 0 ? 120 : (int)mrange(g % 4 == 0 ? 40 : 12);
    assert_non_null(ref_go(pgoroutine, (void *)(intptr_t)(g << 16 | depth)));
  }
  assert_int_equal(ref_run(), AG_NG);
  assert_no_fail();
  for (int round = 0; round < AG_ROUNDS; round++) {
    if (round > 0) model_mutate();
    assert_no_fail();
    size_t nreach = model_reach();
    pcounts c[2];
    for (int sc = 0; sc < 2; sc++) {
      for (int ph = 0; ph < 3; ph++) {
        for (int maps = 0; maps < 3; maps++) {
          if (sc == REF_SCAN_CONSERVATIVE && maps != ph) continue; /* maps unused: one each */
          pcounts k = ag_cycle((ref_phase)ph, (ref_scan)sc, (ref_stackmaps)maps, nreach);
          if (ph == 0 && maps == 0) c[sc] = k;
          else assert_counts_equal(&k, &c[sc], ref_strategy_name((ref_phase)ph, (ref_scan)sc));
        }
      }
    }
    /* Scanning by frames sees a subset of the roots a conservative scan sees. */
    assert_true(c[REF_SCAN_FRAMES].marked <= c[REF_SCAN_CONSERVATIVE].marked);
    assert_true(c[REF_SCAN_FRAMES].frames > 0 && c[REF_SCAN_CONSERVATIVE].frames == 0);
    model_retire(!M.cons_frames);
    for (int sc = 0; sc < 2; sc++) {
      if (W == 1) {
        base[round][sc] = c[sc];
        continue;
      }
      /* Another runtime built the same stacks. With several mutators each
       * P allocates from its own spans, so objects land at other addresses
       * than in the W == 1 run, and which stale stack words happen to hit
       * one differs: a conservative scan's marks are not comparable across
       * runs then (within a run, above, they stay exact), nor are those of
       * frames mode's conservative records (words > 0). */
      pcounts k = c[sc];
      if ((sc == REF_SCAN_CONSERVATIVE || k.words > 0) && tu_mutators() > 1) {
        k.marked = base[round][sc].marked;
      }
      assert_counts_equal(&k, &base[round][sc], "W");
    }
  }
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, AG_NG);
  assert_true(res.checked > 0);
  ref_remove_root(M.roots);
  model_free();
  shutdown_rt();
  ref__solo_mark_ns = REF_SOLO_MARK_NS;
}

static void test_strategies_agree(void **state) {
  (void)state;
  static pcounts base[AG_ROUNDS][2];
  for (uint64_t seed = 1; seed <= AG_SEEDS; seed++)
    for (size_t w = 0; w < REF_ARRAY_SIZE(ag_workers); w++)
      ag_run(seed, ag_workers[w], base);
}

/* ---------------------------------------------------------------------------
 * Torture: stacks that change between cycles
 * ------------------------------------------------------------------------- */

#define T_NG 24
#define T_ROUNDS (800 / SCALE)
#define T_MAXDEPTH 24
#define T_POOL 64

/* A torture node: links to two others, with their serials for checking. */
typedef struct tnode {
  uint64_t canary;
  uint64_t serial;
  struct tnode *next[2];
  uint64_t next_serial[2];
} tnode;
static const uint64_t tnode_mask[1] = {0xc};
static const ref_type tnode_t = {sizeof(tnode), tnode_mask, "par.tnode"};

/* Safepoint 0: all live (used while mutating); the others, some. */
static const uint64_t tort_masks[] = {0xf, 0x3, 0x5, 0xe, 0x8};
REF_FUNC(tort_info, "par.tort", 4, REF_SP(0xf), REF_SP(0x3), REF_SP(0x5), REF_SP(0xe),
         REF_SP(0x8));
REF_FUNC(tentry_info, "par.tentry", 1, REF_SP(0x1));

static struct {
  ref_chan *ch[T_NG];          /* registered with pool */
  tnode *pool[T_POOL];
  uint64_t pool_serial[T_POOL]; /* not scanned: the test's record */
  uint64_t serial, rng;
  long pushes, pops, mutations, self_gcs;
  long steps[T_NG];             /* each goroutine's steps so far (turns) */
} T;

static uint64_t trand(void) { return ref__rand64(&T.rng); }

static tnode *tnew(void) {
  tnode *n = ref_alloc(&tnode_t);
  if (!n) {
    note_fail("torture allocation: %s", ref_error());
    return NULL;
  }
  n->serial = ++T.serial;
  n->canary = canary(n->serial);
  return n;
}

/* n is the node with this serial (0: NULL), intact, and so are the nodes
 * it links to, depth levels down. */
static void tcheck(const tnode *n, uint64_t serial, int depth, const char *what) {
  res.checked++;
  if (serial == 0) {
    if (n) note_fail("%s: expected NULL", what);
    return;
  }
  if (!n || n->serial != serial || n->canary != canary(serial)) {
    note_fail("%s: node %llu lost (serial %#llx)", what, (unsigned long long)serial,
              n ? (unsigned long long)n->serial : 0ull);
    return;
  }
  if (depth > 0)
    for (int k = 0; k < 2; k++) tcheck(n->next[k], n->next_serial[k], depth - 1, what);
}

static void tlink(tnode *from, int k, tnode *to) {
  if (!from) return;
  from->next[k] = to;
  from->next_serial[k] = to ? to->serial : 0;
}

static uint64_t serial_of(const tnode *n) { return n ? n->serial : 0; }

enum { T_QUIT, T_POP };

/* Replaces and re-links the objects of a frame's slots, which are all live
 * (the caller cleared the dead ones and set safepoint 0); may collect.
 * Returns the safepoint to park at next. */
static uint32_t tmutate(void **slot, uint64_t *expect) {
  for (int i = 0; i < 4; i++) {
    switch (trand() % 5) {
    case 0: slot[i] = tnew(); break;                       /* replace: the old one may die */
    case 1: slot[i] = T.pool[trand() % T_POOL]; break;     /* share a pool object */
    case 2: slot[i] = slot[trand() % 4]; break;            /* alias another slot */
    case 3: slot[i] = NULL; break;
    default: break;                                        /* keep */
    }
    expect[i] = serial_of(slot[i]);
  }
  for (int i = 0; i < 4; i++) {
    tnode *n = slot[i];
    tlink(n, (int)(trand() % 2), trand() % 3 ? slot[trand() % 4] : T.pool[trand() % T_POOL]);
  }
  int p = (int)(trand() % T_POOL);
  T.pool[p] = trand() % 2 ? slot[trand() % 4] : tnew();
  T.pool_serial[p] = serial_of(T.pool[p]);
  for (int k = 0; k < 20; k++) tnew(); /* garbage */
  if (trand() % 16 == 0) {
    T.self_gcs++;
    ref_gc(); /* from this goroutine, others parked or runnable */
  }
  T.mutations++;
  return (uint32_t)(trand() % 5);
}

static ref_noinline int tort_level(int g, int level) {
  REF_FRAME(f, tort_info);
  REF_SAFEPOINT(f, 0);
  uint64_t expect[4];
  for (int i = 0; i < 4; i++) f.slot[i] = tnew(), expect[i] = serial_of(f.slot[i]);
  for (int i = 0; i < 4; i++) tlink(f.slot[i], 0, f.slot[(i + 1) % 4]);
  uint32_t sp = (uint32_t)(trand() % 5);
  REF_SAFEPOINT(f, sp);
  for (;;) {
    int cmd = 0;
    turn_end();
    bool ok = ref_chan_recv(T.ch[g], &cmd);
    if (ok) turn_wait((long)++T.steps[g] * T_NG + g);
    for (int i = 0; i < 4; i++)
      if ((tort_masks[sp] >> i) & 1) tcheck(f.slot[i], expect[i], 3, "torture slot");
    if (!ok) return T_QUIT;
    uint64_t act = trand() % 10;
    if (act < 3 && level < T_MAXDEPTH) {
      T.pushes++;
      if (tort_level(g, level + 1) == T_QUIT) return T_QUIT;
    } else if (act < 5 && level > 0) {
      T.pops++;
      return T_POP;
    } else {
      for (int i = 0; i < 4; i++) /* dead slots may point at freed objects */
        if (!((tort_masks[sp] >> i) & 1)) f.slot[i] = NULL, expect[i] = 0;
      REF_SAFEPOINT(f, 0);
      sp = tmutate(f.slot, expect);
      REF_SAFEPOINT(f, sp);
    }
  }
}

/* Goroutine g's k-th step (from a receive to its next) is turn k * T_NG +
 * g: the order one mutator runs them in, as main wakes them in g order. */
static void tgoroutine(void *arg) {
  int g = (int)(intptr_t)arg;
  turn_wait(g);
  REF_FRAME(f, tentry_info);
  REF_SAFEPOINT(f, 0);
  f.slot[0] = tnew();
  uint64_t s = serial_of(f.slot[0]);
  while (tort_level(g, 0) != T_QUIT) {
  }
  tcheck(f.slot[0], s, 0, "torture entry");
  res.done++;
}

static void tverify_pool(void) {
  for (int i = 0; i < T_POOL; i++) tcheck(T.pool[i], T.pool_serial[i], 3, "pool");
}

static void test_torture_changing_stacks(void **state) {
  (void)state;
  init_rt(REF_PHASE_PARALLEL, REF_SCAN_FRAMES, REF_MAPS_PCTAB, 2);
  res_reset();
  memset(&T, 0, sizeof T);
  T.rng = 0x1234567;
  ref_add_root(&T, offsetof(__typeof__(T), pool_serial)); /* ch and pool */
  for (int g = 0; g < T_NG; g++) {
    T.ch[g] = ref_chan_make_size(sizeof(int), 0);
    assert_non_null(T.ch[g]);
  }
  for (int i = 0; i < T_POOL; i++) T.pool[i] = tnew(), T.pool_serial[i] = T.pool[i]->serial;
  for (int g = 0; g < T_NG; g++) assert_non_null(ref_go(tgoroutine, (void *)(intptr_t)g));
  assert_int_equal(ref_run(), T_NG);
  uint64_t freed = 0;
  for (int round = 0; round < T_ROUNDS; round++) {
    int one = 1;
    for (int g = 0; g < T_NG; g++) ref_chan_send(T.ch[g], &one); /* each is parked: a handoff */
    assert_int_equal(ref_run(), T_NG);
    ref_phase ph = (ref_phase)(round % 3);
    ref_scan sc = (ref_scan)(round / 3 % 2);
    ref_set_strategy(ph, sc, (ref_stackmaps)(round / 6 % 3));
    ref_gc();
    assert_int_equal(ref_gc_last()->stacks_scanned, T_NG);
    freed += ref_gc_last()->objects_freed;
    tverify_pool();
    assert_no_fail();
  }
  for (int g = 0; g < T_NG; g++) ref_chan_close(T.ch[g]);
  assert_int_equal(ref_run(), 0);
  assert_no_fail();
  assert_int_equal(res.done, T_NG);
  /* The rounds did what they are for. */
  assert_true(T.pushes > T_ROUNDS && T.pops > T_ROUNDS / 2 && T.mutations > T_ROUNDS);
  assert_true(T.self_gcs > 0);
  assert_true(freed > (uint64_t)T_ROUNDS * T_NG * 2);
  ref_remove_root(&T);
  shutdown_rt();
}

/* ---------------------------------------------------------------------------
 * Conservative stack splitting
 * ------------------------------------------------------------------------- */

#define SPLIT_DEPTH 110 /* about 1 KiB a frame */
#define SPLIT_SHALLOW 3

typedef struct sobj {
  uint64_t canary, id;
} sobj;
static const ref_type sobj_t = {sizeof(sobj), NULL, "par.sobj"};
REF_FUNC(deepc_info, "par.deepc", 1, REF_SP(0x1));

static sobj *snew(uint64_t id) {
  sobj *o = ref_alloc(&sobj_t);
  if (!o) {
    note_fail("allocation: %s", ref_error());
    return NULL;
  }
  o->canary = canary(id);
  o->id = id;
  return o;
}

static void scheck(const sobj *o, uint64_t id) {
  res.checked++;
  if (!o || o->id != id || o->canary != canary(id))
    note_fail("object %llu lost", (unsigned long long)id);
}

/* A frame of about 1 KiB holding one object in a slot and one only in a
 * plain local (seen by conservative scans alone). */
static ref_noinline void deep_cons(int lvl, int depth) {
  REF_FRAME(f, deepc_info);
  REF_SAFEPOINT(f, 0);
  volatile uint64_t pad[120];
  for (int i = 0; i < 120; i++) pad[i] = 0x5a5a5a5a5a5a5a5aull;
  f.slot[0] = snew(100000 + (uint64_t)lvl);
  sobj *volatile local = snew((uint64_t)lvl);
  if (lvl < depth) deep_cons(lvl + 1, depth);
  else park();
  scheck(f.slot[0], 100000 + (uint64_t)lvl);
  if (ref_get_config()->scan == REF_SCAN_CONSERVATIVE) scheck(local, (uint64_t)lvl);
  if (pad[lvl % 120] != 0x5a5a5a5a5a5a5a5aull) note_fail("frame data changed");
}

static void split_g(void *arg) {
  deep_cons(0, (int)(intptr_t)arg);
  res.done++;
}

static pcounts split_run(ref_phase ph, ref_scan sc, int W) {
  init_rt(ph, sc, REF_MAPS_PCTAB_CACHED, W);
  res_reset();
  park_ch_open();
  assert_non_null(ref_go(split_g, (void *)(intptr_t)SPLIT_DEPTH));
  for (int g = 0; g < SPLIT_SHALLOW; g++) assert_non_null(ref_go(split_g, (void *)(intptr_t)2));
  assert_int_equal(ref_run(), 1 + SPLIT_SHALLOW);
  pcounts c = {0};
  for (int round = 0; round < 3; round++) {
    for (int k = 0; k < 200; k++) snew(1u << 30); /* garbage */
    ref_gc();
    const ref_gc_stats *st = ref_gc_last();
    c = counts_of(st);
    assert_int_equal(st->stacks_scanned, 1 + SPLIT_SHALLOW); /* one each, split or not */
    uint64_t per_worker = 0, worker_bytes = 0, worker_cpu = 0;
    for (int i = 0; i < st->nworkers; i++) {
      per_worker += st->worker[i].stacks_scanned;
      worker_bytes += st->worker[i].stack_bytes;
      worker_cpu += st->worker[i].cpu_ns;
    }
    assert_int_equal(per_worker, 1 + SPLIT_SHALLOW);
    /* Every worker's CPU, which a worker spends within the cycle. */
    assert_int_equal(worker_cpu, st->mark_cpu_ns);
    assert_true(st->mark_cpu_ns > 0);
    assert_true(st->mark_cpu_ns <= (uint64_t)st->nworkers * st->total_ns);
    assert_int_equal(worker_bytes, st->stack_bytes);
    assert_true(st->stack_bytes > (100u << 10));
    if (sc == REF_SCAN_CONSERVATIVE) {
      assert_int_equal(st->words, st->stack_bytes / 8 + 1); /* every word once, + the root */
      assert_true(st->objects_marked >= 1 + 2 * (SPLIT_DEPTH + 1 + SPLIT_SHALLOW * 3));
    } else {
      assert_int_equal(st->objects_marked, 1 + (SPLIT_DEPTH + 1 + SPLIT_SHALLOW * 3));
    }
  }
  park_ch_close_all();
  assert_no_fail();
  assert_int_equal(res.done, 1 + SPLIT_SHALLOW);
  long per_frame = sc == REF_SCAN_CONSERVATIVE ? 2 : 1;
  assert_int_equal(res.checked, per_frame * (SPLIT_DEPTH + 1 + SPLIT_SHALLOW * 3));
  shutdown_rt();
  return c;
}

static void test_conservative_split(void **state) {
  (void)state;
  for (int sc = 0; sc < 2; sc++) {
    pcounts base = split_run(REF_PHASE_SERIAL, (ref_scan)sc, 1);
    for (int ph = 0; ph < 3; ph++) {
      for (int W = 1; W <= 3; W++) {
        pcounts c = split_run((ref_phase)ph, (ref_scan)sc, W);
        /* Conservative marks across runtimes: exact with one mutator only
         * (see test_strategies_agree); split_run checks their lower bound. */
        if (sc == REF_SCAN_CONSERVATIVE && tu_mutators() > 1) c.marked = base.marked;
        assert_counts_equal(&c, &base, "split");
      }
    }
  }
}

/* A wall of pointers: a goroutine's stack where about 9 KiB of words each
 * hold the only reference to an object (the torture client's shape). */
#define WALL 1100
static size_t wall_live; /* bytes from the parked wall goroutine's sp to its top */

static void wall_g(void *arg) {
  (void)arg;
  sobj *volatile wall[WALL];
  for (int i = 0; i < WALL; i++) wall[i] = snew((uint64_t)i);
  park();
  for (int i = 0; i < WALL; i++) scheck(wall[i], (uint64_t)i);
  res.done++;
}

/* Scans the wall with split_bytes forced to split (past ref_init's check:
 * the split itself must not skip a word whatever the value). */
static void wall_run(ref_phase ph, size_t split) {
  init_rt(ph, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 2);
  res_reset();
  park_ch_open();
  ref_g *g = ref_go(wall_g, NULL);
  assert_int_equal(ref_run(), 1);
  wall_live = g->stack.hi - (uintptr_t)g->sp;
  ref__cfg.split_bytes = split;
  for (int round = 0; round < 2; round++) {
    for (int k = 0; k < 100; k++) snew(1u << 30); /* garbage, to reuse any freed slot */
    ref_gc();
    assert_int_equal(ref_gc_last()->words, wall_live / 8 + 1); /* every word once, + the root */
  }
  park_ch_close_all();
  if (res.fails) fail_msg("split_bytes %zu: %s", split, res.first);
  assert_int_equal(res.checked, WALL);
  assert_int_equal(res.done, 1);
  shutdown_rt();
}

static void test_split_any_value(void **state) {
  (void)state;
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 2);
  cfg.split_bytes = 12;
  assert_int_equal(ref_init(&cfg), -1);
  assert_string_equal(ref_error(), "split_bytes 12 is not a multiple of 8");
  wall_run(REF_PHASE_ROOTJOBS, 16 << 10); /* learns wall_live */
  size_t L = wall_live;
  /* odd values; pieces that end one word or byte short of the top, or
   * straddle it; a first piece that straddles the saved sp's word */
  size_t splits[] = {1,     3,     7,     9,     12,    13,    20,        1001,
                     4100,  L / 2 + 4, L - 12, L - 9, L - 8, L - 1, L + 1, SIZE_MAX};
  for (int ph = REF_PHASE_PARALLEL; ph <= REF_PHASE_ROOTJOBS; ph++)
    for (size_t k = 0; k < REF_ARRAY_SIZE(splits); k++)
      wall_run((ref_phase)ph, splits[k]);
}

/* The file's size promise: >= 1,000 cycles unless shrunk by SCALE. */
static void test_cycle_budget(void **state) {
  (void)state;
  printf("test_parallel: %llu GC cycles (scale 1/%d)\n", (unsigned long long)total_cycles, SCALE);
  assert_true(total_cycles >= 1000 / SCALE);
}

static int teardown(void **state) {
  (void)state;
  ref_shutdown(); /* after a failed assertion the runtime is still up */
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_strategies_agree, teardown),
      cmocka_unit_test_teardown(test_torture_changing_stacks, teardown),
      cmocka_unit_test_teardown(test_conservative_split, teardown),
      cmocka_unit_test_teardown(test_split_any_value, teardown),
      cmocka_unit_test(test_cycle_budget),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
