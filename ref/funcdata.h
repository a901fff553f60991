/*
 * funcdata.h: function metadata for precise stack scanning (stackmaps=pctab).
 *
 * C has no linker-made symbol table, so ref builds one the way Go's linker
 * does, over a synthetic text space: every registered function gets an entry
 * pc and one pc per safepoint, and the scanner maps a frame record's pc back
 * to its stack map exactly as Go's unwinder does (runtime/symtab.go):
 *
 *   pc --findfunc--> function (bucketed function table)
 *      --pcvalue---> stack-map index k (varint pc-value table)
 *      --> fn->live[k]
 *
 * Glossary
 *   text        [base, base + textsize): function i covers
 *               [entry_i, end_i); the gap [end_i, entry_{i+1}) is padding
 *               that belongs to no function. Entries are 16-byte aligned and
 *               functions are at least REF__MINFUNC bytes, so findfunctab's
 *               per-sub-bucket deltas fit in a byte.
 *   ftab        the functions sorted by entry, plus a sentinel whose entryoff
 *               is textsize (the forward scan in findfunc needs no bound).
 *   findfunctab one bucket per REF__FUNCTAB_BUCKET bytes of text: idx is the
 *               last function whose entry is <= the bucket start, and
 *               subbuckets[j] the same for sub-bucket j, minus idx.
 *   pc-value    per function, pairs (zigzag uvarint value delta, uvarint pc
 *   table       delta), starting at value -1 at the entry; a value applies to
 *               [previous pc, pc); a 0 byte where a value delta would start
 *               (other than the first) ends the table. Value = stack-map
 *               index; -1 = no stack map (the prologue).
 *
 * Lifetime: tables are built before the collector runs and are read-only
 * afterwards, so any number of mark workers may look up concurrently; each
 * worker owns its own ref__pccache.
 */
#ifndef REF_FUNCDATA_H
#define REF_FUNCDATA_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REF__TEXT_BASE ((uintptr_t)0x400000)
#define REF__MINFUNC 16u                                  /* minimum function size, and entry alignment */
#define REF__FUNCTAB_BUCKET 4096u                         /* text bytes per findfunctab bucket */
#define REF__FUNCTAB_NSUB 16u                             /* sub-buckets per bucket */
#define REF__FUNCTAB_SUB (REF__FUNCTAB_BUCKET / REF__FUNCTAB_NSUB) /* 256 bytes */
#define REF__UVARINT_MAX 5u                               /* bytes of a uint32 uvarint */

/* One function in the sorted function table. Offsets are from t->base. */
typedef struct ref__ftab {
  uint32_t entryoff;   /* entry - base */
  uint32_t endoff;     /* end of the function's code (exclusive) */
  uint32_t pcvoff;     /* its pc-value table: t->pcdata[pcvoff, pcvoff + pcvlen) */
  uint32_t pcvlen;
} ref__ftab;

/* Go's findfuncbucket. */
typedef struct ref__findfuncbucket {
  uint32_t idx;
  uint8_t subbuckets[REF__FUNCTAB_NSUB];
} ref__findfuncbucket;

typedef struct ref__functab {
  uintptr_t base;                 /* pc of text offset 0 (= entry of function 0) */
  uint32_t textsize;              /* end offset of the last function */
  uint32_t nfunc;
  uint64_t gen;                   /* unique per build, never 0; keys the pc caches */
  ref__ftab *ftab;                /* nfunc + 1 entries (sentinel last) */
  ref_funcinfo **funcs;           /* funcs[i] is the function of ftab[i] */
  ref__findfuncbucket *buckets;   /* ceil(textsize / REF__FUNCTAB_BUCKET) */
  size_t nbuckets;
  uint8_t *pcdata;                /* all pc-value tables */
  size_t pcdatalen;
  uint32_t *pcoffs;               /* storage of every fi->pcoff */
  size_t npcoffs;
} ref__functab;

/* ---------------------------------------------------------------------------
 * Building
 * ------------------------------------------------------------------------- */

/* Lays out funcs[0..n) in this order in a synthetic text space at
 * REF__TEXT_BASE (sizes and safepoint offsets drawn from seed), builds the
 * function table, findfunctab and pc-value tables, and stores each function's
 * entry and pcoff (owned by *t) into it. The funcs must be distinct, valid
 * (nslots, nsafepoints within the REF_MAX_ limits, live non-NULL when there
 * are safepoints), and must outlive *t. Returns 0, or -1 with ref__seterr
 * (*t is then empty and needs no free). */
int ref__functab_build(ref__functab *t, ref_funcinfo *const *funcs, size_t n, uint64_t seed);

/* Frees t's storage and resets entry/pcoff of its functions that still point
 * into it (a function rebuilt into another table since is left alone). */
void ref__functab_free(ref__functab *t);

/* The table of the registered functions, used by the collector. */
extern ref__functab ref__functab_global;

/* (Re)builds ref__functab_global from every ref_func_register()ed function,
 * assigning their entry and pcoff. Returns 0, or -1 with ref__seterr. */
int ref__funcdata_init(uint64_t seed);

/* Frees ref__functab_global; registered functions keep their registration
 * and get entry = 0, pcoff = NULL. Safe to call when not initialised. */
void ref__funcdata_shutdown(void);

/* ---------------------------------------------------------------------------
 * Low-level codec (exposed for tests and the fuzzer)
 * ------------------------------------------------------------------------- */

/* Writes v as a LEB128 uvarint into buf (room for REF__UVARINT_MAX bytes);
 * returns the number of bytes written (1..5). */
size_t ref__uvarint_put(uint8_t *buf, uint32_t v);

/* Reads a uvarint at *p, never at or past end, and advances *p. Returns
 * false, leaving *p alone, on truncation, on more than 5 bytes or a value
 * over 32 bits, and on a non-minimal encoding (a final 0x00 after a
 * continuation byte): every uint32 has exactly one accepted encoding. */
bool ref__uvarint_get(const uint8_t **p, const uint8_t *end, uint32_t *v);

/* Zigzag: small magnitudes of either sign map to small codes. */
static inline uint32_t ref__zigzag(int32_t v) {
  uint32_t u = (uint32_t)v;
  return (u << 1) ^ (0u - (u >> 31));
}
static inline int32_t ref__unzigzag(uint32_t z) {
  return (int32_t)((z >> 1) ^ (0u - (z & 1)));
}

/* Encodes a pc-value table: vals[i] applies to [pcs[i-1], pcs[i]) (offsets
 * from the entry, pcs[-1] = 0), so pcs must be strictly increasing from > 0.
 * Adjacent equal values are merged into one range (the format cannot hold a
 * 0 value delta after the first pair). Appends the 0 terminator. Returns the
 * length, or 0 if cap is too small or pcs is not strictly increasing. */
size_t ref__pctab_encode(uint8_t *buf, size_t cap, const uint32_t *pcs, const int32_t *vals,
                         size_t n);

/* Finds the value at targetpc in the table [p, p+len) of a function at
 * entry. Returns true with *val set when a range covers targetpc; false
 * when none does (targetpc < entry, or past the terminator) or the table is
 * malformed (truncated, bad varint, no terminator). Reads only inside
 * [p, p+len); safe on arbitrary bytes. */
bool ref__pctab_decode(const uint8_t *p, size_t len, uintptr_t entry, uintptr_t targetpc,
                       int32_t *val);

/* ---------------------------------------------------------------------------
 * Lookups (hot: once per frame in stackmaps=pctab)
 * ------------------------------------------------------------------------- */

/* The function whose code covers pc, with its table index in *funcidx; NULL
 * if pc is outside the text or in padding between functions. Go's findfunc:
 * bucket -> idx + sub-bucket delta -> short scan forward. */
static inline const ref_funcinfo *ref__findfunc(const ref__functab *t, uintptr_t pc,
                                                uint32_t *funcidx) {
  uintptr_t off = pc - t->base;            /* wraps high when pc < base */
  if (off >= t->textsize) return NULL;
  const ref__findfuncbucket *b = &t->buckets[off / REF__FUNCTAB_BUCKET];
  uint32_t i = b->idx + b->subbuckets[off % REF__FUNCTAB_BUCKET / REF__FUNCTAB_SUB];
  while (t->ftab[i + 1].entryoff <= off) i++; /* the sentinel stops it */
  if (off >= t->ftab[i].endoff) return NULL;
  *funcidx = i;
  return t->funcs[i];
}

/* Decodes function funcidx's pc-value table at pc: the stack-map index, or
 * -1 where there is none (the prologue, or pc outside the function). */
int32_t ref__pcvalue(const ref__functab *t, uint32_t funcidx, uintptr_t pc);

/* A per-worker direct-mapped pc-value cache (Go 1.5's pcvalueCache idea).
 * Entries belong to the table whose gen is in gen; a lookup against another
 * table empties the cache first, so a rebuilt table never sees stale
 * entries. An entry with pc 0 is empty (no text lies at pc 0). */
#define REF__PCCACHE_BITS 8
#define REF__PCCACHE_SIZE (1u << REF__PCCACHE_BITS)
typedef struct ref__pccache_entry {
  uintptr_t pc;
  uint32_t funcidx;
  int32_t val;
} ref__pccache_entry;
typedef struct ref__pccache {
  uint64_t gen;
  ref__pccache_entry e[REF__PCCACHE_SIZE];
} ref__pccache;

void ref__pccache_reset(ref__pccache *c);

static inline uint32_t ref__pccache_slot(uintptr_t pc) {
  return (uint32_t)(((uint64_t)pc * 0x9E3779B97F4A7C15ull) >> (64 - REF__PCCACHE_BITS));
}

/* ref__pcvalue through cache c; *hit says whether c answered. */
static inline int32_t ref__pcvalue_cached(const ref__functab *t, ref__pccache *c,
                                          uint32_t funcidx, uintptr_t pc, bool *hit) {
  if (ref_unlikely(c->gen != t->gen)) {
    ref__pccache_reset(c);
    c->gen = t->gen;
  }
  ref__pccache_entry *e = &c->e[ref__pccache_slot(pc)];
  if (e->pc == pc && e->funcidx == funcidx) {
    *hit = true;
    return e->val;
  }
  *hit = false;
  int32_t v = ref__pcvalue(t, funcidx, pc);
  e->pc = pc;
  e->funcidx = funcidx;
  e->val = v;
  return v;
}

/* A frame record's stack map in stackmaps=pctab: findfunc -> pcvalue (via
 * cache when non-NULL) -> &fn->live[k]. NULL when pc is in no function or
 * at no safepoint. *fn_out is the function (NULL if none); *hit whether the
 * cache answered (false without a cache or function). */
static inline const uint64_t *ref__stackmap_pctab(const ref__functab *t, uintptr_t pc,
                                                  ref__pccache *cache, const ref_funcinfo **fn_out,
                                                  bool *hit) {
  uint32_t idx;
  const ref_funcinfo *fn = ref__findfunc(t, pc, &idx);
  *fn_out = fn;
  *hit = false;
  if (fn == NULL) return NULL;
  int32_t k = cache ? ref__pcvalue_cached(t, cache, idx, pc, hit) : ref__pcvalue(t, idx, pc);
  if (k < 0) return NULL;
  ref_assert_internal((uint32_t)k < fn->nsafepoints);
  return &fn->live[k];
}

#endif /* REF_FUNCDATA_H */
