/*
 * fuzz_pctab.c: libFuzzer target for the pc-value table codec (funcdata.h):
 * ref__pctab_decode, ref__pctab_encode and ref__uvarint_get/put.
 *
 * Input layout (short inputs are zero-extended up to the header):
 *   [0, 8)    entry, little-endian uint64
 *   [8, 12)   targetpc - entry as a signed 32-bit delta (so targets below
 *             the entry and ones that wrap around are reachable too)
 *   [12, 13)  encoder capacity slack (see check_roundtrip)
 *   [13, ...) the table bytes
 *
 * Checks, each aborting (__builtin_trap) on a violation:
 *   - decode over an exactly-sized heap copy never reads outside it (ASan)
 *     and agrees with an independent decoder written from the format's
 *     description in funcdata.h, at the input's target and at every range
 *     boundary of the table (pc - 1, pc);
 *   - ref__uvarint_get agrees with an independent reader, and put/get round
 *     trip for a uint32 taken from the input, with an exact end bound;
 *   - encode of (pcs, vals) derived from the table bytes never writes past
 *     its capacity, fails exactly when the capacity is short, and decodes
 *     back to vals[i] on [pcs[i-1], pcs[i]) and to "none" past the end.
 */
#include "funcdata.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 13
#define MAX_PAIRS 64

/* A violated property: says which, then traps (libFuzzer saves the input). */
#define check(e) ((e) ? (void)0 : violated(#e, __LINE__))
__attribute__((noreturn)) static void violated(const char *what, int line) {
  fprintf(stderr, "fuzz_pctab.c:%d: violated: %s\n", line, what);
  __builtin_trap();
}

/* Copies [p, p+n) into a heap block of exactly n bytes, so that any read
 * past the end (or of a 0-byte table) is an ASan report. */
static uint8_t *exact_copy(const uint8_t *p, size_t n) {
  uint8_t *b = malloc(n);
  if (b == NULL && n > 0) abort();
  if (n) memcpy(b, p, n);
  return b;
}

static uint64_t get_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* ---------------------------------------------------------------------------
 * The independent model, written from funcdata.h's description
 * ------------------------------------------------------------------------- */

/* A uvarint of at most 5 bytes, at most 32 bits, minimally encoded.
 * Returns the bytes consumed, 0 when rejected. */
static size_t model_uvarint(const uint8_t *p, size_t avail, uint32_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < 5; i++) {
    if (i >= avail) return 0;
    x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (p[i] & 0x80) continue;
    if (i > 0 && p[i] == 0) return 0; /* non-minimal */
    if (x > UINT32_MAX) return 0;
    *v = (uint32_t)x;
    return i + 1;
  }
  return 0; /* a 5th byte with a continuation bit */
}

static int64_t model_unzigzag(uint32_t z) {
  return (z & 1) ? -(int64_t)(z >> 1) - 1 : (int64_t)(z >> 1);
}

/* Pairs (zigzag value delta, pc delta) from value -1 at pc 0; a pair's
 * value covers [previous pc, pc); a 0 byte where a later pair would start
 * ends the table. */
static bool model_decode(const uint8_t *p, size_t len, uint64_t entry, uint64_t target,
                         int32_t *val) {
  if (target < entry) return false;
  uint64_t off = target - entry, pc = 0;
  int64_t v = -1;
  size_t i = 0;
  for (bool first = true;; first = false) {
    uint32_t vd, pd;
    size_t n;
    if (i >= len || (!first && p[i] == 0)) return false;
    if ((n = model_uvarint(p + i, len - i, &vd)) == 0) return false;
    i += n;
    if ((n = model_uvarint(p + i, len - i, &pd)) == 0) return false;
    i += n;
    v = (int64_t)(int32_t)(uint32_t)(v + model_unzigzag(vd)); /* 32-bit wrap */
    pc += pd;
    if (off < pc) {
      *val = (int32_t)v;
      return true;
    }
  }
}

/* ---------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------- */

static void check_decode_at(const uint8_t *tab, size_t len, uintptr_t entry, uintptr_t target) {
  int32_t got = 0x5a5a5a5a, want = 0x5a5a5a5a;
  bool ok = ref__pctab_decode(tab, len, entry, target, &got);
  bool mok = model_decode(tab, len, entry, target, &want);
  check(ok == mok);
  check(!ok || got == want);
}

/* The decoder at the input's target and at both sides of every range end
 * the model finds (the boundaries are where off-by-one errors live). */
static void check_decode(const uint8_t *tab, size_t len, uintptr_t entry, uintptr_t target) {
  check_decode_at(tab, len, entry, target);
  check_decode_at(tab, len, entry, entry - 1);
  uint64_t pc = 0;
  size_t i = 0;
  for (int k = 0; k < MAX_PAIRS && i < len && (k == 0 || tab[i] != 0); k++) {
    uint32_t vd, pd;
    size_t n = model_uvarint(tab + i, len - i, &vd);
    if (n == 0) break;
    i += n;
    if ((n = model_uvarint(tab + i, len - i, &pd)) == 0) break;
    i += n;
    pc += pd;
    check_decode_at(tab, len, entry, entry + (uintptr_t)pc - 1);
    check_decode_at(tab, len, entry, entry + (uintptr_t)pc);
  }
}

/* ref__uvarint_get at the start of the table and right after its first
 * byte, against the model; it must leave *p alone on failure. */
static void check_uvarint_get(const uint8_t *tab, size_t len) {
  for (size_t start = 0; start < 2 && start <= len; start++) {
    const uint8_t *p = tab + start, *end = tab + len;
    uint32_t got = 0, want = 0;
    bool ok = ref__uvarint_get(&p, end, &got);
    size_t n = model_uvarint(tab + start, len - start, &want);
    check(ok == (n != 0));
    check(ok ? (got == want && p == tab + start + n) : p == tab + start);
  }
}

static void check_uvarint_roundtrip(uint32_t v) {
  uint8_t tmp[REF__UVARINT_MAX];
  size_t n = ref__uvarint_put(tmp, v);
  check(n >= 1 && n <= REF__UVARINT_MAX);
  uint8_t *b = exact_copy(tmp, n);
  const uint8_t *p = b;
  uint32_t got = ~v;
  check(ref__uvarint_get(&p, b + n, &got) && got == v && p == b + n);
  p = b;
  check(!ref__uvarint_get(&p, b + n - 1, &got) && p == b); /* truncated */
  free(b);
}

/* (pcs, vals) from the table bytes, two bytes a pair: a pc step of 1..128
 * (bit 7 of the first byte picks a step of 0 now and then, which encode
 * must reject) and a value in -2..13 (few values, so that runs of equal
 * values, which encode merges, are common). */
static size_t derive_pairs(const uint8_t *b, size_t len, uint32_t *pcs, int32_t *vals,
                           bool *increasing) {
  size_t n = 0;
  uint32_t pc = 0;
  *increasing = true;
  for (size_t i = 0; i + 1 < len && n < MAX_PAIRS; i += 2, n++) {
    uint32_t step = (b[i] & 0x80) && (b[i] & 0x7f) == 0x7f ? 0 : (uint32_t)(b[i] & 0x7f) + 1;
    if (step == 0) *increasing = false;
    pc += step;
    pcs[n] = pc;
    vals[n] = (int32_t)(b[i + 1] % 16) - 2;
  }
  return n;
}

static void check_roundtrip(const uint8_t *b, size_t len, uint8_t slack) {
  uint32_t pcs[MAX_PAIRS];
  int32_t vals[MAX_PAIRS];
  bool increasing;
  size_t n = derive_pairs(b, len, pcs, vals, &increasing);
  uint8_t big[MAX_PAIRS * 2 * REF__UVARINT_MAX + 1];
  size_t need = ref__pctab_encode(big, sizeof big, pcs, vals, n);
  check(increasing ? need >= 1 && need <= sizeof big : need == 0);
  if (!increasing) return;
  /* Capacity need - 8 .. need + 7: short ones must fail without writing
   * past the block; others give the same bytes. */
  size_t cap = need + (size_t)(slack & 15);
  cap = cap >= 8 ? cap - 8 : 0;
  uint8_t *buf = malloc(cap); /* 0 bytes: any write is an ASan report */
  if (buf == NULL && cap > 0) abort();
  size_t got = ref__pctab_encode(buf, cap, pcs, vals, n);
  check(cap < need ? got == 0 : (got == need && memcmp(buf, big, need) == 0));
  free(buf);
  uint8_t *tab = exact_copy(big, need);
  const uintptr_t entry = 0x400000;
  for (size_t i = 0; i < n; i++) {
    int32_t v;
    uint32_t lo = i ? pcs[i - 1] : 0;
    check(ref__pctab_decode(tab, need, entry, entry + lo, &v) && v == vals[i]);
    check(ref__pctab_decode(tab, need, entry, entry + pcs[i] - 1, &v) && v == vals[i]);
  }
  int32_t v;
  check(!ref__pctab_decode(tab, need, entry, entry + (n ? pcs[n - 1] : 0), &v));
  check_decode(tab, need, entry, entry + (n ? pcs[n - 1] / 2 : 0));
  free(tab);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t hdr[HEADER] = {0};
  memcpy(hdr, data, size < HEADER ? size : HEADER);
  const uint8_t *body = size > HEADER ? data + HEADER : data + size;
  size_t len = size > HEADER ? size - HEADER : 0;
  uintptr_t entry = (uintptr_t)get_le(hdr, 8);
  uintptr_t target = entry + (uintptr_t)(intptr_t)(int32_t)(uint32_t)get_le(hdr + 8, 4);

  uint8_t *tab = exact_copy(body, len);
  check_decode(tab, len, entry, target);
  check_uvarint_get(tab, len);
  free(tab);
  check_uvarint_roundtrip((uint32_t)get_le(hdr + 4, 4) ^ (uint32_t)get_le(hdr + 8, 4));
  check_roundtrip(body, len, hdr[12]);
  return 0;
}
