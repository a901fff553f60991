/*
 * pausestats.c: a cycle's pause and suspension figures (ref_gc_stats'
 * suspend_max_ns, suspend_p99_ns, mmu_1ms): a log-linear histogram of the
 * times goroutines' stacks were held for a concurrent scan, and the minimum
 * mutator utilization of a cycle's pauses.
 */
#include "gc.h"

#include <string.h>

#define SUB_BITS 3 /* 8 buckets per power of two: a bucket is within 12.5% */
#define SUB (1u << SUB_BITS)
#define MAX_EXP 36 /* 2^37 ns, 137 s: longer holds share the last bucket */

_Static_assert(REF_SUSP_BUCKETS == SUB * (MAX_EXP - SUB_BITS + 2),
               "gc.h's REF_SUSP_BUCKETS follows SUB_BITS and MAX_EXP");

/* Values below SUB have a bucket each; then SUB buckets per power of two,
 * by the SUB_BITS bits under the leading one. */
static unsigned bucket_of(uint64_t ns) {
  if (ns < SUB) return (unsigned)ns;
  unsigned e = 63u - (unsigned)__builtin_clzll(ns);
  if (e > MAX_EXP) return REF_SUSP_BUCKETS - 1;
  return SUB * (e - SUB_BITS + 1) + (unsigned)((ns >> (e - SUB_BITS)) & (SUB - 1));
}

/* The largest value bucket i holds. */
static uint64_t bucket_hi(unsigned i) {
  if (i < SUB) return i;
  unsigned e = i / SUB + SUB_BITS - 1, mant = i % SUB;
  return (((uint64_t)SUB + mant + 1) << (e - SUB_BITS)) - 1;
}

void ref__susp_add(ref__susp_hist *h, uint64_t ns, uint64_t weight) {
  h->n[bucket_of(ns)] += weight;
  if (ns > h->max) h->max = ns;
}

void ref__susp_merge(ref__susp_hist *into, const ref__susp_hist *h) {
  for (unsigned i = 0; i < REF_SUSP_BUCKETS; i++) into->n[i] += h->n[i];
  if (h->max > into->max) into->max = h->max;
}

uint64_t ref__susp_quantile(const ref__susp_hist *h, unsigned pct) {
  uint64_t total = 0, seen = 0;
  for (unsigned i = 0; i < REF_SUSP_BUCKETS; i++) total += h->n[i];
  if (total == 0) return 0;
  uint64_t rank = (total * pct + 99) / 100; /* the rank-th smallest, from 1 */
  for (unsigned i = 0; i < REF_SUSP_BUCKETS; i++) {
    seen += h->n[i];
    if (seen < rank) continue;
    bool last = i + 1 == REF_SUSP_BUCKETS; /* no upper bound but the largest */
    return !last && bucket_hi(i) < h->max ? bucket_hi(i) : h->max;
  }
  return h->max;
}

/* Pause time inside [s, s + window) of the n intervals. */
static uint64_t overlap(const ref__interval *iv, int n, uint64_t s, uint64_t window) {
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) {
    uint64_t lo = iv[i].t0 > s ? iv[i].t0 : s;
    uint64_t hi = iv[i].t1 < s + window ? iv[i].t1 : s + window;
    if (hi > lo) sum += hi - lo;
  }
  return sum;
}

/* The worst window starts where a pause starts: a window whose start lies
 * in a gap loses nothing by sliding right until it meets one, and one whose
 * start lies inside a pause gains at its start at least what its end loses
 * by sliding left to that pause's start. */
double ref__mmu(const ref__interval *iv, int n, uint64_t window) {
  uint64_t worst = 0;
  for (int i = 0; i < n; i++) {
    uint64_t o = overlap(iv, n, iv[i].t0, window);
    if (o > worst) worst = o;
  }
  return worst >= window ? 0.0 : 1.0 - (double)worst / (double)window;
}
