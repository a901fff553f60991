/*
 * funcdata.c: function registration, the synthetic text space, and the
 * function / findfunctab / pc-value tables that stackmaps=pctab looks up
 * (see funcdata.h for the glossary). Modelled on Go's linker output and
 * runtime/symtab.go (findfunc, pcvalue, step), written for ref.
 *
 * Sections: Registration, Codec, Layout, Build, Lookup, The global table.
 */
#include "funcdata.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

ref__functab ref__functab_global;

/* ---------------------------------------------------------------------------
 * Registration
 *
 * Invariant: fi->next_registered != NULL exactly when fi is on the list; the
 * last function on the list points at reg_end. That makes registration O(1)
 * and idempotent without allocating (it runs from constructors before main).
 * ------------------------------------------------------------------------- */

static ref_funcinfo reg_end;
static ref_funcinfo *reg_head = &reg_end;
static size_t reg_count;

/* Not thread-safe: registration happens before main() or at least before
 * ref_init(), on one thread. Registering into a live table would leave the
 * function without a pc, so it is a fatal error. */
void ref_func_register(ref_funcinfo *fi) {
  if (fi->next_registered != NULL) return;
  if (ref__functab_global.gen != 0)
    ref__throw("ref_func_register(%s) after the function tables were built (ref_init)",
               fi->name ? fi->name : "?");
  fi->next_registered = reg_head;
  reg_head = fi;
  reg_count++;
}

/* ---------------------------------------------------------------------------
 * Codec: LEB128 uvarints, zigzag value deltas, pc-value tables
 * ------------------------------------------------------------------------- */

size_t ref__uvarint_put(uint8_t *buf, uint32_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  buf[n++] = (uint8_t)v;
  return n;
}

bool ref__uvarint_get(const uint8_t **pp, const uint8_t *end, uint32_t *v) {
  const uint8_t *p = *pp;
  uint32_t x = 0;
  for (unsigned i = 0; i < REF__UVARINT_MAX; i++) {
    if (p >= end) return false;                   /* truncated */
    uint8_t b = *p++;
    if (i == REF__UVARINT_MAX - 1 && b > 0x0f) return false; /* > 32 bits or a 6th byte */
    x |= (uint32_t)(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (b == 0 && i > 0) return false;          /* non-minimal */
      *pp = p;
      *v = x;
      return true;
    }
  }
  return false; /* not reached: a 5th byte with 0x80 set is > 0x0f */
}

/* Single-byte fast path (Go's step: ~70% of deltas fit in a byte). */
static inline bool uvarint_get_fast(const uint8_t **p, const uint8_t *end, uint32_t *v) {
  if (ref_likely(*p < end && **p < 0x80)) {
    *v = *(*p)++;
    return true;
  }
  return ref__uvarint_get(p, end, v);
}

/* Appends one (value delta, pc delta) pair at buf[*len]; false if it does
 * not fit in cap. Deltas are computed modulo 2^32 and so are the sums in the
 * decoder: no signed overflow anywhere. */
static bool put_pair(uint8_t *buf, size_t cap, size_t *len, uint32_t vdelta, uint32_t pcdelta) {
  uint8_t tmp[2 * REF__UVARINT_MAX];
  size_t m = ref__uvarint_put(tmp, ref__zigzag((int32_t)vdelta));
  m += ref__uvarint_put(tmp + m, pcdelta);
  if (cap - *len < m) return false;
  memcpy(buf + *len, tmp, m);
  *len += m;
  return true;
}

size_t ref__pctab_encode(uint8_t *buf, size_t cap, const uint32_t *pcs, const int32_t *vals,
                         size_t n) {
  size_t len = 0;
  uint32_t prevval = UINT32_MAX; /* -1 */
  uint32_t prevpc = 0;
  for (size_t i = 0; i < n; i++) {
    if (pcs[i] <= (i > 0 ? pcs[i - 1] : 0)) return 0;
    if (i + 1 < n && vals[i + 1] == vals[i]) continue; /* range extends into the next */
    if (!put_pair(buf, cap, &len, (uint32_t)vals[i] - prevval, pcs[i] - prevpc)) return 0;
    prevval = (uint32_t)vals[i];
    prevpc = pcs[i];
  }
  if (len >= cap) return 0;
  buf[len++] = 0; /* terminator */
  return len;
}

/* The decoder behind both ref__pctab_decode and ref__pcvalue: target is the
 * pc's offset from the entry. Each iteration consumes >= 2 bytes of
 * [p, end), so it terminates; pc sums at most len/2 32-bit deltas in 64
 * bits, so it cannot wrap. */
static inline bool pctab_find(const uint8_t *p, const uint8_t *end, uint64_t target,
                              int32_t *val) {
  uint32_t v = UINT32_MAX; /* -1 at the entry */
  uint64_t pc = 0;
  for (bool first = true;; first = false) {
    uint32_t vdelta, pcdelta;
    if (p >= end || (*p == 0 && !first)) return false; /* truncated, or terminator */
    if (!uvarint_get_fast(&p, end, &vdelta) || !uvarint_get_fast(&p, end, &pcdelta))
      return false;
    v += (uint32_t)ref__unzigzag(vdelta);
    pc += pcdelta;
    if (target < pc) {
      *val = (int32_t)v;
      return true;
    }
  }
}

bool ref__pctab_decode(const uint8_t *p, size_t len, uintptr_t entry, uintptr_t targetpc,
                       int32_t *val) {
  if (targetpc < entry || p == NULL) return false;
  return pctab_find(p, p + len, (uint64_t)(targetpc - entry), val);
}

/* ---------------------------------------------------------------------------
 * Layout: the synthetic text space
 *
 * A function is a prologue, one call site per safepoint with a few
 * instructions between, and an epilogue plus seeded padding (cold paths,
 * alignment nops); entries are 16-byte aligned and now and then an extra
 * 16..48 bytes of inter-function fill belongs to no function. Sizes run from
 * 16 bytes to ~3.6 KiB, so functions straddle findfunctab buckets and
 * sub-buckets the way real code does.
 * ------------------------------------------------------------------------- */

#define TEXT_LIMIT ((uint64_t)UINT32_MAX - REF__FUNCTAB_BUCKET)

/* Draws the safepoint offsets of a function with nsp safepoints into pcoff
 * (strictly increasing, > 0) and returns its size (> every pcoff, >= 16). */
static uint32_t layout_func(uint32_t *pcoff, uint32_t nsp, uint64_t *rng) {
  uint32_t off = 16 + 4 * (uint32_t)(ref__rand64(rng) % 12);  /* prologue */
  for (uint32_t k = 0; k < nsp; k++) {
    pcoff[k] = off;
    off += 8 + (uint32_t)(ref__rand64(rng) % 48);              /* code up to the next call */
  }
  return off + (uint32_t)(ref__rand64(rng) % 64);              /* epilogue, padding */
}

/* Bytes of fill after a function ending at end, up to the next entry. */
static uint64_t gap_after(uint64_t end, uint64_t *rng) {
  uint64_t r = ref__rand64(rng);
  uint64_t extra = (r & 7) == 0 ? REF__MINFUNC * (1 + (r >> 3) % 3) : 0;
  return ref_align_up(end, REF__MINFUNC) - end + extra;
}

static uint64_t seed_rng(uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull; /* splitmix64: xorshift needs a nonzero state */
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z ? z : 1;
}

/* Lays out every function: ftab[i].entryoff/endoff, the pcoff storage
 * (function i's at pcoffs + pcbase[i], at least one slot each so ownership
 * is unambiguous) and the sentinel. */
static int layout_text(ref__functab *t, const size_t *pcbase, uint64_t seed) {
  uint64_t rng = seed_rng(seed), off = 0, end = 0;
  for (uint32_t i = 0; i < t->nfunc; i++) {
    uint32_t size = layout_func(t->pcoffs + pcbase[i], t->funcs[i]->nsafepoints, &rng);
    end = off + size;
    if (end > TEXT_LIMIT)
      return ref__seterr("funcdata: synthetic text exceeds 4 GiB at function %u of %u", i,
                         t->nfunc);
    t->ftab[i].entryoff = (uint32_t)off;
    t->ftab[i].endoff = (uint32_t)end;
    off = end + gap_after(end, &rng);
  }
  t->textsize = (uint32_t)end;
  t->ftab[t->nfunc] = (ref__ftab){(uint32_t)end, (uint32_t)end, 0, 0};
  return 0;
}

/* ---------------------------------------------------------------------------
 * Build
 * ------------------------------------------------------------------------- */

static _Atomic uint64_t next_gen = 1;

static int check_func(const ref_funcinfo *fi, size_t i) {
  if (fi == NULL) return ref__seterr("funcdata: function %zu is NULL", i);
  const char *name = fi->name ? fi->name : "?";
  if (fi->nslots > REF_MAX_SLOTS || fi->nsafepoints > REF_MAX_SAFEPOINTS)
    return ref__seterr("funcdata: %s: %u slots / %u safepoints exceed %d / %d", name,
                       fi->nslots, fi->nsafepoints, REF_MAX_SLOTS, REF_MAX_SAFEPOINTS);
  if (fi->nsafepoints > 0 && fi->live == NULL)
    return ref__seterr("funcdata: %s: %u safepoints but no live bitmaps", name, fi->nsafepoints);
  return 0;
}

/* Allocates everything but pcdata; pcbase[i] gets function i's first pcoff
 * slot. */
static int alloc_tables(ref__functab *t, ref_funcinfo *const *funcs, size_t n, size_t *pcbase) {
  size_t npc = 0;
  for (size_t i = 0; i < n; i++) {
    if (check_func(funcs[i], i) != 0) return -1;
    pcbase[i] = npc;
    npc += funcs[i]->nsafepoints > 0 ? funcs[i]->nsafepoints : 1;
  }
  t->nfunc = (uint32_t)n;
  t->npcoffs = npc;
  t->ftab = calloc(n + 1, sizeof *t->ftab);
  t->funcs = calloc(n ? n : 1, sizeof *t->funcs);
  t->pcoffs = calloc(npc ? npc : 1, sizeof *t->pcoffs);
  if (!t->ftab || !t->funcs || !t->pcoffs)
    return ref__seterr("funcdata: out of memory for %zu functions", n);
  if (n) memcpy(t->funcs, funcs, n * sizeof *funcs);
  return 0;
}

/* Function i's pc-value table: -1 over the first half of the prologue, then
 * value k from halfway between safepoints k-1 and k to halfway between k and
 * k+1 (the last one to the end), so entry + pcoff[k] lies inside k's range,
 * never at its edge. */
static size_t encode_func(uint8_t *buf, size_t cap, const uint32_t *pcoff, uint32_t nsp,
                          uint32_t size) {
  uint32_t pcs[REF_MAX_SAFEPOINTS + 1];
  int32_t vals[REF_MAX_SAFEPOINTS + 1];
  vals[0] = -1;
  pcs[0] = nsp ? pcoff[0] / 2 : size;
  for (uint32_t k = 0; k < nsp; k++) {
    vals[k + 1] = (int32_t)k;
    pcs[k + 1] = k + 1 < nsp ? (pcoff[k] + pcoff[k + 1] + 1) / 2 : size;
  }
  return ref__pctab_encode(buf, cap, pcs, vals, nsp + 1);
}

static int encode_pctabs(ref__functab *t, const size_t *pcbase) {
  size_t cap = 1;
  for (uint32_t i = 0; i < t->nfunc; i++)
    cap += (size_t)(2 * REF__UVARINT_MAX) * ((size_t)t->funcs[i]->nsafepoints + 1) + 1;
  t->pcdata = malloc(cap);
  if (!t->pcdata) return ref__seterr("funcdata: out of memory for %zu bytes of pc tables", cap);
  size_t len = 0;
  for (uint32_t i = 0; i < t->nfunc; i++) {
    ref__ftab *f = &t->ftab[i];
    size_t m = encode_func(t->pcdata + len, cap - len, t->pcoffs + pcbase[i],
                           t->funcs[i]->nsafepoints, f->endoff - f->entryoff);
    if (m == 0) ref__throw("funcdata: pc-value table of %s does not encode", t->funcs[i]->name);
    f->pcvoff = (uint32_t)len;
    f->pcvlen = (uint32_t)m;
    len += m;
  }
  t->pcdatalen = len;
  return 0;
}

/* findfunctab. Each sub-bucket delta is at most (3840 bytes / REF__MINFUNC)
 * = 240 functions, since entries are distinct multiples of 16: fits a byte. */
static int build_buckets(ref__functab *t) {
  t->nbuckets = ((size_t)t->textsize + REF__FUNCTAB_BUCKET - 1) / REF__FUNCTAB_BUCKET;
  t->buckets = calloc(t->nbuckets ? t->nbuckets : 1, sizeof *t->buckets);
  if (!t->buckets) return ref__seterr("funcdata: out of memory for %zu buckets", t->nbuckets);
  uint32_t i = 0;
  for (size_t b = 0; b < t->nbuckets; b++) {
    ref__findfuncbucket *fb = &t->buckets[b];
    for (uint32_t j = 0; j < REF__FUNCTAB_NSUB; j++) {
      uint64_t start = (uint64_t)b * REF__FUNCTAB_BUCKET + (uint64_t)j * REF__FUNCTAB_SUB;
      while (i + 1 < t->nfunc && t->ftab[i + 1].entryoff <= start) i++;
      if (j == 0) fb->idx = i;
      if (i - fb->idx > UINT8_MAX)
        ref__throw("funcdata: %u functions in one findfunctab bucket", i - fb->idx);
      fb->subbuckets[j] = (uint8_t)(i - fb->idx);
    }
  }
  return 0;
}

#if REF_ASSERT_LEVEL >= 3
/* Whole-table validator (expensive tier): order, sizes, and that every
 * function's entry finds it and its safepoint pcs decode to their index. */
static bool functab_valid(const ref__functab *t) {
  for (uint32_t i = 0; i < t->nfunc; i++) {
    const ref__ftab *f = &t->ftab[i];
    const ref_funcinfo *fi = t->funcs[i];
    uint32_t idx = UINT32_MAX;
    if (f->entryoff % REF__MINFUNC || f->endoff - f->entryoff < REF__MINFUNC) return false;
    if (f->endoff > t->ftab[i + 1].entryoff) return false;
    if (fi->entry != t->base + f->entryoff) return false; /* e.g. a duplicate function */
    if (ref__findfunc(t, fi->entry, &idx) != fi || idx != i) return false;
    for (uint32_t k = 0; k < fi->nsafepoints; k++)
      if (ref__pcvalue(t, i, fi->entry + fi->pcoff[k]) != (int32_t)k) return false;
  }
  return true;
}
#endif

int ref__functab_build(ref__functab *t, ref_funcinfo *const *funcs, size_t n, uint64_t seed) {
  memset(t, 0, sizeof *t);
  if (n >= UINT32_MAX / 2) return ref__seterr("funcdata: %zu functions are too many", n);
  size_t *pcbase = malloc((n ? n : 1) * sizeof *pcbase);
  if (!pcbase) return ref__seterr("funcdata: out of memory for %zu functions", n);
  t->base = REF__TEXT_BASE;
  int rc = alloc_tables(t, funcs, n, pcbase);
  if (rc == 0) rc = layout_text(t, pcbase, seed);
  if (rc == 0) rc = encode_pctabs(t, pcbase);
  if (rc == 0) rc = build_buckets(t);
  if (rc != 0) {
    free(pcbase);
    ref__functab_free(t); /* no function points into t yet */
    return -1;
  }
  for (uint32_t i = 0; i < t->nfunc; i++) {
    t->funcs[i]->entry = t->base + t->ftab[i].entryoff;
    t->funcs[i]->pcoff = t->pcoffs + pcbase[i];
  }
  free(pcbase);
  t->gen = atomic_fetch_add_explicit(&next_gen, 1, memory_order_relaxed);
  ref_assert_expensive(functab_valid(t));
  return 0;
}

void ref__functab_free(ref__functab *t) {
  uintptr_t lo = (uintptr_t)t->pcoffs, hi = lo + t->npcoffs * sizeof *t->pcoffs;
  for (uint32_t i = 0; t->funcs && i < t->nfunc; i++) {
    ref_funcinfo *fi = t->funcs[i];
    uintptr_t p = (uintptr_t)fi->pcoff;
    if (p >= lo && p < hi) {
      fi->entry = 0;
      fi->pcoff = NULL;
    }
  }
  free(t->ftab);
  free(t->funcs);
  free(t->buckets);
  free(t->pcdata);
  free(t->pcoffs);
  memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------------------
 * Lookup (findfunc and the cache's fast path are inline in funcdata.h)
 * ------------------------------------------------------------------------- */

int32_t ref__pcvalue(const ref__functab *t, uint32_t funcidx, uintptr_t pc) {
  ref_assert_internal(funcidx < t->nfunc);
  const ref__ftab *f = &t->ftab[funcidx];
  const uint8_t *p = t->pcdata + f->pcvoff;
  int32_t val;
  /* pc below the entry wraps to a huge offset: past the terminator, -1. */
  if (!pctab_find(p, p + f->pcvlen, (uint64_t)(pc - (t->base + f->entryoff)), &val)) return -1;
  return val;
}

void ref__pccache_reset(ref__pccache *c) { memset(c, 0, sizeof *c); }

/* ---------------------------------------------------------------------------
 * The global table
 * ------------------------------------------------------------------------- */

int ref__funcdata_init(uint64_t seed) {
  ref__funcdata_shutdown();
  ref_funcinfo **funcs = malloc((reg_count ? reg_count : 1) * sizeof *funcs);
  if (!funcs) return ref__seterr("funcdata: out of memory for %zu functions", reg_count);
  size_t i = reg_count; /* the list is newest first: lay out in registration order */
  for (ref_funcinfo *fi = reg_head; fi != &reg_end; fi = fi->next_registered) funcs[--i] = fi;
  ref_assert_internal(i == 0);
  int rc = ref__functab_build(&ref__functab_global, funcs, reg_count, seed);
  free(funcs);
  return rc;
}

void ref__funcdata_shutdown(void) { ref__functab_free(&ref__functab_global); }
