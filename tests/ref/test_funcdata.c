/*
 * test_funcdata.c: the function-metadata tables behind stackmaps=pctab.
 *
 * The uvarint/zigzag codec and pc-value tables round-trip and reject bad
 * bytes; findfunc finds the right function for every pc of 10,000 random
 * functions and nothing in padding or outside the text; every safepoint pc
 * maps to its own stack map, with and without the pc-value cache; and the
 * registration list + global table survive init/shutdown cycles.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "funcdata.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rnd32(uint64_t *rng) { return (uint32_t)(ref__rand64(rng) >> 32); }

/* ---------------------------------------------------------------------------
 * Codec
 * ------------------------------------------------------------------------- */

static size_t uvarint_len(uint32_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, n++;
  return n;
}

static void check_uvarint(uint32_t v) {
  uint8_t buf[REF__UVARINT_MAX + 1];
  size_t n = ref__uvarint_put(buf, v);
  assert_int_equal(n, uvarint_len(v));
  const uint8_t *p = buf;
  uint32_t got = ~v;
  assert_true(ref__uvarint_get(&p, buf + n, &got));
  assert_int_equal(got, v);
  assert_ptr_equal(p, buf + n);
  p = buf; /* one byte short: truncated, *p untouched */
  assert_false(ref__uvarint_get(&p, buf + n - 1, &got));
  assert_ptr_equal(p, buf);
}

static void check_zigzag(int32_t v) {
  uint32_t z = ref__zigzag(v);
  assert_int_equal(ref__unzigzag(z), v);
  /* small magnitudes stay small: |v| <= 63 fits one byte */
  if (v >= -64 && v <= 63) assert_true(z < 0x80);
}

static void test_uvarint_zigzag_roundtrip(void **state) {
  (void)state;
  static const uint32_t edges[] = {0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 0x1fffff, 0x200000,
                                   0xfffffff, 0x10000000, 0x7fffffff, 0x80000000, UINT32_MAX};
  for (size_t i = 0; i < REF_ARRAY_SIZE(edges); i++) {
    check_uvarint(edges[i]);
    check_zigzag((int32_t)edges[i]);
    check_zigzag(-(int32_t)(edges[i] & 0x7fffffff));
  }
  check_zigzag(INT32_MIN);
  uint64_t rng = 42;
  for (int i = 0; i < 100000; i++) {
    uint32_t v = rnd32(&rng) >> (rnd32(&rng) % 32); /* all lengths, not just 5-byte ones */
    check_uvarint(v);
    check_zigzag((int32_t)v);
  }
}

static void test_uvarint_rejects_malformed(void **state) {
  (void)state;
  static const struct { uint8_t b[7]; size_t n; } bad[] = {
      {{0x80, 0x00}, 2},                         /* non-minimal zero */
      {{0xff, 0x80, 0x00}, 3},                   /* non-minimal */
      {{0xff, 0xff, 0xff, 0xff, 0x10}, 5},       /* 33 bits */
      {{0xff, 0xff, 0xff, 0xff, 0x8f, 0x01}, 6}, /* 6 bytes */
      {{0x80}, 1},                               /* truncated */
      {{0}, 0},                                  /* empty */
  };
  for (size_t i = 0; i < REF_ARRAY_SIZE(bad); i++) {
    const uint8_t *p = bad[i].b;
    uint32_t v;
    assert_false(ref__uvarint_get(&p, bad[i].b + bad[i].n, &v));
    assert_ptr_equal(p, bad[i].b);
  }
  const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0x0f}, *p = max;
  uint32_t v = 0;
  assert_true(ref__uvarint_get(&p, max + 5, &v));
  assert_int_equal(v, UINT32_MAX);
}

/* A random pc-value table: n ranges, strictly increasing ends, values from a
 * small or a full range, with runs of equal neighbours (which must merge). */
static size_t random_table(uint64_t *rng, uint32_t *pcs, int32_t *vals, size_t max) {
  size_t n = 1 + rnd32(rng) % max;
  bool wide = rnd32(rng) % 4 == 0;
  uint32_t pc = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t r = rnd32(rng);
    pc += 1 + (r % 8 == 0 ? rnd32(rng) % (1u << 20) : r % 300);
    pcs[i] = pc;
    if (i > 0 && rnd32(rng) % 5 == 0) vals[i] = vals[i - 1];
    else vals[i] = wide ? (int32_t)rnd32(rng) : (int32_t)(rnd32(rng) % 80) - 1;
  }
  if (rnd32(rng) % 16 == 0) vals[0] = INT32_MIN, vals[n - 1] = INT32_MAX;
  return n;
}

static void check_decodes(const uint8_t *buf, size_t len, uintptr_t entry, const uint32_t *pcs,
                          const int32_t *vals, size_t n, uint64_t *rng) {
  int32_t v;
  for (size_t i = 0; i < n; i++) {
    uint32_t lo = i ? pcs[i - 1] : 0, hi = pcs[i];
    uint32_t probe[3] = {lo, hi - 1, lo + rnd32(rng) % (hi - lo)};
    for (int j = 0; j < 3; j++) {
      v = ~vals[i];
      assert_true(ref__pctab_decode(buf, len, entry, entry + probe[j], &v));
      assert_int_equal(v, vals[i]);
    }
  }
  assert_false(ref__pctab_decode(buf, len, entry, entry + pcs[n - 1], &v)); /* past the end */
  assert_false(ref__pctab_decode(buf, len, entry, entry - 1, &v));          /* before entry */
}

static void test_pctab_roundtrip(void **state) {
  (void)state;
  enum { MAXN = 80, CAP = MAXN * 2 * REF__UVARINT_MAX + 1 };
  uint32_t pcs[MAXN];
  int32_t vals[MAXN];
  uint8_t full[CAP];
  uint64_t rng = 7;
  size_t merged_runs = 0;
  for (int t = 0; t < 3000; t++) {
    size_t n = random_table(&rng, pcs, vals, MAXN);
    size_t len = ref__pctab_encode(full, sizeof full, pcs, vals, n);
    assert_true(len >= 3 && len <= CAP);
    assert_int_equal(full[len - 1], 0);
    for (size_t i = 1; i < n; i++) merged_runs += vals[i] == vals[i - 1];
    /* an exact-size heap copy, so ASan catches any read past the end */
    uint8_t *buf = malloc(len);
    memcpy(buf, full, len);
    uintptr_t entry = REF__TEXT_BASE + 16 * (uintptr_t)rnd32(&rng);
    check_decodes(buf, len, entry, pcs, vals, n, &rng);
    /* exactly len bytes suffice, any fewer fail (and, under ASan, without
     * writing past the cap) */
    uint8_t *exact = malloc(len);
    assert_int_equal(ref__pctab_encode(exact, len, pcs, vals, n), len);
    assert_memory_equal(exact, full, len);
    free(exact);
    size_t shortcap = len - 1 - rnd32(&rng) % (len - 1);
    uint8_t *small = malloc(shortcap);
    assert_int_equal(ref__pctab_encode(small, shortcap, pcs, vals, n), 0);
    free(small);
    /* truncated anywhere: a pc past the end is never "found"; and until the
     * last pair is complete (cut >= len - 1), neither is the last range */
    int32_t v;
    for (size_t cut = 0; cut < len; cut++) {
      assert_false(ref__pctab_decode(buf, cut, entry, entry + pcs[n - 1], &v));
      bool got = ref__pctab_decode(buf, cut, entry, entry + pcs[n - 1] - 1, &v);
      assert_int_equal(got, cut == len - 1);
    }
    free(buf);
  }
  assert_true(merged_runs > 100); /* the merge path was exercised */
}

static void test_pctab_encode_rejects_unordered(void **state) {
  (void)state;
  uint8_t buf[64];
  const int32_t vals[] = {-1, 0, 1};
  const uint32_t zero_first[] = {0, 4, 8}, flat[] = {4, 4, 8}, down[] = {4, 8, 6};
  assert_int_equal(ref__pctab_encode(buf, sizeof buf, zero_first, vals, 3), 0);
  assert_int_equal(ref__pctab_encode(buf, sizeof buf, flat, vals, 3), 0);
  assert_int_equal(ref__pctab_encode(buf, sizeof buf, down, vals, 3), 0);
  /* Go's own shape: value -1 from the entry encodes a 0 first byte */
  const uint32_t ok[] = {4, 8, 12};
  size_t len = ref__pctab_encode(buf, sizeof buf, ok, vals, 3);
  static const uint8_t want[] = {0x00, 4, 0x02, 4, 0x02, 4, 0};
  assert_int_equal(len, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
}

/* An independent, simple decoder: parse the whole prefix into pairs first. */
static int ref_model_decode(const uint8_t *p, size_t len, uint64_t target, int32_t *val) {
  size_t i = 0;
  uint32_t v = UINT32_MAX;
  uint64_t pc = 0;
  for (int pair = 0;; pair++) {
    uint32_t d[2];
    if (i >= len || (pair > 0 && p[i] == 0)) return 0;
    for (int h = 0; h < 2; h++) {
      uint64_t x = 0;
      int nb = 0;
      for (;;) {
        if (i >= len || nb == 5) return 0;
        uint8_t b = p[i++];
        x |= (uint64_t)(b & 0x7f) << (7 * nb++);
        if (!(b & 0x80)) {
          if (x > UINT32_MAX || (nb > 1 && b == 0)) return 0;
          break;
        }
      }
      d[h] = (uint32_t)x;
    }
    v += (d[0] & 1) ? ~(d[0] >> 1) : (d[0] >> 1);
    pc += d[1];
    if (target < pc) return *val = (int32_t)v, 1;
  }
}

static void test_pctab_decode_arbitrary_bytes(void **state) {
  (void)state;
  uint64_t rng = 99;
  int found = 0;
  for (int t = 0; t < 20000; t++) {
    size_t len = rnd32(&rng) % 24;
    uint8_t *buf = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) {
      uint32_t r = rnd32(&rng);
      buf[i] = (uint8_t)(r % 4 == 0 ? 0 : r % 4 == 1 ? 0x80 | (r >> 8) : r >> 8);
    }
    uint64_t target = rnd32(&rng) % 512;
    int32_t v1 = 0, v2 = 0;
    bool got = ref__pctab_decode(buf, len, REF__TEXT_BASE, REF__TEXT_BASE + target, &v1);
    int want = ref_model_decode(buf, len, target, &v2);
    assert_int_equal(got, want);
    if (got) assert_int_equal(v1, v2);
    found += got;
    free(buf);
  }
  assert_true(found > 100);
}

/* ---------------------------------------------------------------------------
 * Function tables over random functions
 * ------------------------------------------------------------------------- */

#define NFUNCS 10000

typedef struct fixture {
  ref_funcinfo **funcs;
  size_t n;
  ref__functab tab;
} fixture;

/* n heap functions with 1..64 slots and 0..64 safepoints (a few with none). */
static ref_funcinfo **make_funcs(size_t n, uint32_t maxsp, uint64_t seed) {
  uint64_t rng = seed;
  ref_funcinfo **funcs = calloc(n, sizeof *funcs);
  for (size_t i = 0; i < n; i++) {
    ref_funcinfo *fi = calloc(1, sizeof *fi);
    fi->name = "random";
    fi->nslots = 1 + rnd32(&rng) % REF_MAX_SLOTS;
    fi->nsafepoints = rnd32(&rng) % 32 == 0 ? 0 : 1 + rnd32(&rng) % maxsp;
    uint64_t *live = calloc(fi->nsafepoints + 1, sizeof *live);
    uint64_t mask = fi->nslots == 64 ? ~0ull : (1ull << fi->nslots) - 1;
    for (uint32_t k = 0; k < fi->nsafepoints; k++) live[k] = ref__rand64(&rng) & mask;
    fi->live = live;
    funcs[i] = fi;
  }
  return funcs;
}

static void free_funcs(ref_funcinfo **funcs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free((void *)funcs[i]->live);
    free(funcs[i]);
  }
  free(funcs);
}

static int setup_big(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->n = NFUNCS;
  f->funcs = make_funcs(f->n, REF_MAX_SAFEPOINTS, 1234);
  if (ref__functab_build(&f->tab, f->funcs, f->n, 5678) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown_big(void **state) {
  fixture *f = *state;
  ref__functab_free(&f->tab);
  free_funcs(f->funcs, f->n);
  free(f);
  return 0;
}

static void test_layout(void **state) {
  fixture *f = *state;
  const ref__functab *t = &f->tab;
  size_t straddle = 0, nonzero_sub = 0, padded = 0;
  assert_int_equal(t->nfunc, f->n);
  for (size_t i = 0; i < f->n; i++) {
    const ref_funcinfo *fi = f->funcs[i];
    uintptr_t end = t->base + t->ftab[i].endoff;
    assert_true(fi->entry >= REF__TEXT_BASE && fi->entry % 16 == 0);
    assert_true(end - fi->entry >= REF__MINFUNC);
    if (i > 0) assert_true(fi->entry >= t->base + t->ftab[i - 1].endoff);
    for (uint32_t k = 0; k < fi->nsafepoints; k++) {
      assert_true(fi->pcoff[k] > (k ? fi->pcoff[k - 1] : 0));
      assert_true(fi->entry + fi->pcoff[k] < end);
    }
    straddle += fi->entry / REF__FUNCTAB_BUCKET != (end - 1) / REF__FUNCTAB_BUCKET;
    padded += i + 1 < f->n && f->funcs[i + 1]->entry - end >= 16;
  }
  for (size_t b = 0; b < t->nbuckets; b++) nonzero_sub += t->buckets[b].subbuckets[15] != 0;
  assert_true(straddle > f->n / 10);     /* functions cross bucket edges */
  assert_true(padded > f->n / 20);       /* gaps that belong to no function */
  assert_true(nonzero_sub > t->nbuckets / 2);
}

static void test_findfunc_every_pc(void **state) {
  fixture *f = *state;
  const ref__functab *t = &f->tab;
  size_t in_padding = 0;
  for (size_t i = 0; i < f->n; i++) {
    uintptr_t entry = f->funcs[i]->entry, end = t->base + t->ftab[i].endoff;
    uintptr_t next = i + 1 < f->n ? f->funcs[i + 1]->entry : end;
    for (uintptr_t pc = entry; pc < end; pc++) {
      uint32_t idx = UINT32_MAX;
      const ref_funcinfo *fi = ref__findfunc(t, pc, &idx);
      if (fi != f->funcs[i] || idx != i) fail_msg("pc %#lx: wrong function", (unsigned long)pc);
    }
    for (uintptr_t pc = end; pc < next; pc++, in_padding++) {
      uint32_t idx;
      assert_null(ref__findfunc(t, pc, &idx));
    }
  }
  assert_true(in_padding > 0);
  uintptr_t textend = t->base + t->textsize;
  const uintptr_t outside[] = {0, 1, t->base - 1, t->base - REF__FUNCTAB_BUCKET, textend,
                               textend + 1, textend + REF__FUNCTAB_BUCKET, UINTPTR_MAX};
  for (size_t j = 0; j < REF_ARRAY_SIZE(outside); j++) {
    uint32_t idx;
    assert_null(ref__findfunc(t, outside[j], &idx));
  }
}

/* The pc-value table of the first functions at every pc: -1 in the
 * prologue, then non-decreasing, k at pcoff[k]. */
static void test_pcvalue_every_pc(void **state) {
  fixture *f = *state;
  const ref__functab *t = &f->tab;
  for (size_t i = 0; i < 500; i++) {
    const ref_funcinfo *fi = f->funcs[i];
    uintptr_t end = t->base + t->ftab[i].endoff;
    int32_t prev = -1;
    assert_int_equal(ref__pcvalue(t, (uint32_t)i, fi->entry), -1);
    for (uintptr_t pc = fi->entry; pc < end; pc++) {
      int32_t v = ref__pcvalue(t, (uint32_t)i, pc);
      assert_true(v == prev || v == prev + 1);
      prev = v;
    }
    assert_int_equal(prev, (int32_t)fi->nsafepoints - 1);
    for (uint32_t k = 0; k < fi->nsafepoints; k++)
      assert_int_equal(ref__pcvalue(t, (uint32_t)i, fi->entry + fi->pcoff[k]), (int32_t)k);
    assert_int_equal(ref__pcvalue(t, (uint32_t)i, end), -1);
    assert_int_equal(ref__pcvalue(t, (uint32_t)i, fi->entry - 1), -1);
  }
}

static void test_stackmap_every_safepoint(void **state) {
  fixture *f = *state;
  const ref__functab *t = &f->tab;
  ref__pccache *cache = malloc(sizeof *cache);
  ref__pccache_reset(cache);
  size_t lookups = 0;
  for (size_t i = 0; i < f->n; i++) {
    const ref_funcinfo *fi = f->funcs[i], *fn = NULL;
    bool hit = true;
    for (uint32_t k = 0; k < fi->nsafepoints; k++, lookups++) {
      uintptr_t pc = fi->entry + fi->pcoff[k];
      assert_ptr_equal(ref__stackmap_pctab(t, pc, NULL, &fn, &hit), &fi->live[k]);
      assert_ptr_equal(fn, fi);
      assert_false(hit);
      assert_ptr_equal(ref__stackmap_pctab(t, pc, cache, &fn, &hit), &fi->live[k]);
      assert_ptr_equal(ref__stackmap_pctab(t, pc, cache, &fn, &hit), &fi->live[k]);
      assert_true(hit); /* the same pc again: always in the cache */
    }
    /* the entry is prologue: a function, but no stack map */
    assert_null(ref__stackmap_pctab(t, fi->entry, cache, &fn, &hit));
    assert_ptr_equal(fn, fi);
  }
  const ref_funcinfo *fn = f->funcs[0];
  bool hit = true;
  assert_null(ref__stackmap_pctab(t, t->base - 8, cache, &fn, &hit));
  assert_null(fn);
  assert_false(hit);
  assert_true(lookups > (size_t)f->n * 20);
  free(cache);
}

/* A working set that fits the cache hits on its second pass; a cache warmed
 * on one table never answers for another built over the same pcs. */
static void test_pccache_second_pass(void **state) {
  (void)state;
  enum { N = 16 };
  ref_funcinfo **a = make_funcs(N, 4, 11), **b = make_funcs(N, 4, 12);
  ref__functab ta, tb;
  assert_int_equal(ref__functab_build(&ta, a, N, 1), 0);
  assert_int_equal(ref__functab_build(&tb, b, N, 2), 0);
  assert_true(ta.gen != tb.gen && ta.gen != 0);
  ref__pccache cache;
  ref__pccache_reset(&cache);
  size_t hits[2] = {0, 0}, npc = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < N; i++) {
      for (uint32_t k = 0; k < a[i]->nsafepoints; k++, npc += pass == 0) {
        const ref_funcinfo *fn;
        bool hit;
        const uint64_t *m = ref__stackmap_pctab(&ta, a[i]->entry + a[i]->pcoff[k], &cache, &fn, &hit);
        assert_ptr_equal(m, &a[i]->live[k]);
        hits[pass] += hit;
      }
    }
  }
  assert_int_equal(hits[0], 0);
  assert_true(npc > 16 && hits[1] > npc / 2);
  for (size_t i = 0; i < N; i++) {
    for (uint32_t k = 0; k < b[i]->nsafepoints; k++) {
      const ref_funcinfo *fn;
      bool hit = true;
      const uint64_t *m = ref__stackmap_pctab(&tb, b[i]->entry + b[i]->pcoff[k], &cache, &fn, &hit);
      assert_ptr_equal(m, &b[i]->live[k]);
      assert_false(hit);
    }
  }
  ref__functab_free(&ta);
  ref__functab_free(&tb);
  assert_null(a[0]->pcoff); /* free resets the functions that pointed into it */
  assert_int_equal(a[0]->entry, 0);
  free_funcs(a, N);
  free_funcs(b, N);
}

static void test_build_edge_cases(void **state) {
  (void)state;
  ref__functab t;
  uint32_t idx;
  assert_int_equal(ref__functab_build(&t, NULL, 0, 1), 0);
  assert_null(ref__findfunc(&t, REF__TEXT_BASE, &idx));
  ref__functab_free(&t);

  static const uint64_t live[1] = {1};
  ref_funcinfo ok = {"ok", 1, 1, live, 0, 0, 0};
  ref_funcinfo bad = {"bad", 1, REF_MAX_SAFEPOINTS + 1, live, 0, 0, 0};
  ref_funcinfo nolive = {"nolive", 1, 2, NULL, 0, 0, 0};
  ref_funcinfo *two_bad[] = {&ok, &bad}, *no_live[] = {&nolive};
  assert_int_equal(ref__functab_build(&t, two_bad, 2, 1), -1);
  assert_non_null(strstr(ref_error(), "bad"));
  assert_null(t.ftab);
  assert_null(ok.pcoff); /* a failed build leaves the functions alone */
  assert_int_equal(ref__functab_build(&t, no_live, 1, 1), -1);
  assert_non_null(strstr(ref_error(), "nolive"));
}

/* ---------------------------------------------------------------------------
 * Registration and the global table
 * ------------------------------------------------------------------------- */

REF_FUNC(fd_test_a, "fd_test_a", 3, REF_SP(0x7), REF_SP(0x1), REF_SP(0x4));
REF_FUNC(fd_test_b, "fd_test_b", 1, REF_SP(0x1));

static void check_global_lookup(ref_funcinfo *fi) {
  assert_true(fi->entry >= REF__TEXT_BASE);
  assert_non_null(fi->pcoff);
  ref__pccache cache;
  ref__pccache_reset(&cache);
  for (uint32_t k = 0; k < fi->nsafepoints; k++) {
    const ref_funcinfo *fn;
    bool hit;
    uintptr_t pc = fi->entry + fi->pcoff[k]; /* what REF_SAFEPOINT stores */
    assert_ptr_equal(ref__stackmap_pctab(&ref__functab_global, pc, NULL, &fn, &hit), &fi->live[k]);
    assert_ptr_equal(ref__stackmap_pctab(&ref__functab_global, pc, &cache, &fn, &hit), &fi->live[k]);
    assert_ptr_equal(fn, fi);
  }
}

static void test_register_and_init(void **state) {
  (void)state;
  /* the constructors ran before main */
  assert_non_null(fd_test_a.next_registered);
  assert_non_null(fd_test_b.next_registered);
  ref_funcinfo *before = fd_test_a.next_registered;
  ref_func_register(&fd_test_a); /* idempotent */
  assert_ptr_equal(fd_test_a.next_registered, before);

  assert_int_equal(ref__funcdata_init(1), 0);
  assert_true(ref__functab_global.nfunc >= 2);
  check_global_lookup(&fd_test_a);
  check_global_lookup(&fd_test_b);
  uintptr_t first_entry = fd_test_a.entry;
  assert_true(fd_test_b.entry > first_entry); /* laid out in registration order */

  ref__funcdata_shutdown();
  assert_int_equal(fd_test_a.entry, 0);
  assert_null(fd_test_a.pcoff);
  assert_null(fd_test_b.pcoff);
  ref__funcdata_shutdown(); /* twice is harmless */

  /* registering between runs is allowed */
  static const uint64_t live_c[] = {3, 2};
  static ref_funcinfo late = {"fd_test_late", 2, 2, live_c, 0, 0, 0};
  ref_func_register(&late);
  for (uint64_t seed = 2; seed < 6; seed++) {
    assert_int_equal(ref__funcdata_init(seed), 0);
    assert_int_equal(ref__funcdata_init(seed), 0); /* init over init rebuilds */
    check_global_lookup(&fd_test_a);
    check_global_lookup(&fd_test_b);
    check_global_lookup(&late);
    ref__funcdata_shutdown();
  }
  assert_null(late.pcoff);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uvarint_zigzag_roundtrip),
      cmocka_unit_test(test_uvarint_rejects_malformed),
      cmocka_unit_test(test_pctab_roundtrip),
      cmocka_unit_test(test_pctab_encode_rejects_unordered),
      cmocka_unit_test(test_pctab_decode_arbitrary_bytes),
      cmocka_unit_test_setup_teardown(test_layout, setup_big, teardown_big),
      cmocka_unit_test_setup_teardown(test_findfunc_every_pc, setup_big, teardown_big),
      cmocka_unit_test_setup_teardown(test_pcvalue_every_pc, setup_big, teardown_big),
      cmocka_unit_test_setup_teardown(test_stackmap_every_safepoint, setup_big, teardown_big),
      cmocka_unit_test(test_pccache_second_pass),
      cmocka_unit_test(test_build_edge_cases),
      cmocka_unit_test(test_register_and_init),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
