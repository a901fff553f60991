/*
 * scan_conservative.c: conservative scanning of a memory range -- every
 * aligned word is a candidate pointer. Used for whole stacks in scan=
 * conservative, for frames flagged conservative, and for global roots.
 *
 * The loop holds the heap bounds in locals and batches the words that pass
 * the range filter in the worker's ptrbuf (the 2013 design's ptrbuf), so
 * that their span lookups can be prefetched together in ref__ptrbuf_flush.
 *
 * Most words are not heap pointers, so the filter tests a group of words at
 * once and branches once per group. On x86-64 CPUs with AVX2 (tested at run
 * time) a group is 8 words in two vector compares; elsewhere it is 4 words
 * in scalar compares. Both push the words that pass in address order, so
 * the ptrbuf, the reuse record and every counter are the same either way.
 */
#include "gc.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* A scan's place in w's ptrbuf and its count of candidates, in locals. */
typedef struct queue {
  size_t nptr;
  uint64_t cand;
} queue;

/* Queues word v, which passed the range filter. */
static inline void push(ref__worker *w, queue *q, uintptr_t v) {
  w->ptrbuf[q->nptr++] = v;
  q->cand++;
  if (ref_unlikely(q->nptr == REF_PTRBUF)) {
    w->nptr = q->nptr;
    ref__ptrbuf_flush(w);
    q->nptr = 0;
  }
}

/* The words of [p, end) in groups of 4, in scalar compares. */
REF_NO_SANITIZE_ADDRESS REF_NO_SANITIZE_THREAD
static inline void scan_scalar(ref__worker *w, const uintptr_t *p, const uintptr_t *end,
                               uintptr_t alo, uintptr_t span, queue *q) {
  for (; end - p >= 4; p += 4) {
    uintptr_t a = p[0], b = p[1], c = p[2], d = p[3];
    if (ref_likely(((a - alo < span) | (b - alo < span) | (c - alo < span) | (d - alo < span)) == 0))
      continue;
    if (a - alo < span) push(w, q, a);
    if (b - alo < span) push(w, q, b);
    if (c - alo < span) push(w, q, c);
    if (d - alo < span) push(w, q, d);
  }
  for (; p < end; p++)
    if (*p - alo < span) push(w, q, *p);
}

#if defined(__x86_64__)
bool ref__scan_avx2;

/* Whether this CPU runs the AVX2 filter (its OS saving the YMM state too). */
static bool cpu_has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}

void ref__scan_conservative_init(void) { ref__scan_avx2 = cpu_has_avx2(); }

const char *ref_scan_filter(void) { return cpu_has_avx2() ? "avx2" : "scalar"; }

/* AVX2's filter: the mask of the 8 words at p that lie in the arena.
 * (v - alo) < span unsigned is (v - (alo + 2^63)) < (span + 2^63) signed,
 * and AVX2 compares signed 64-bit lanes: lo and lim hold the biased bounds. */
#define REF_AVX2 __attribute__((target("avx2"))) REF_NO_SANITIZE_ADDRESS REF_NO_SANITIZE_THREAD
REF_AVX2 static inline unsigned hits8(const uintptr_t *p, __m256i lo, __m256i lim) {
  __m256i a = _mm256_cmpgt_epi64(lim, _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)p), lo));
  __m256i b = _mm256_cmpgt_epi64(lim, _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)p + 1), lo));
  __m256i any = _mm256_or_si256(a, b);
  if (ref_likely(_mm256_testz_si256(any, any))) return 0;
  return (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(a)) |
         (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(b)) << 4;
}

/* Queues the words of the 8 at p that mask m selects, in address order. */
REF_NO_SANITIZE_ADDRESS REF_NO_SANITIZE_THREAD
static inline void push_mask(ref__worker *w, queue *q, const uintptr_t *p, unsigned m) {
  for (; m != 0; m &= m - 1) push(w, q, p[__builtin_ctz(m)]);
}

/* The words of [p, end), at least 8, in groups of 8. A last part group is
 * read as the 8 words that end at end, its words already seen masked off. */
REF_AVX2 static void scan_avx2(ref__worker *w, const uintptr_t *p, const uintptr_t *end,
                               uintptr_t alo, uintptr_t span, queue *qp) {
  queue q = *qp; /* in registers */
  const uintptr_t bias = (uintptr_t)1 << 63;
  const __m256i lo = _mm256_set1_epi64x((long long)(alo + bias));
  const __m256i lim = _mm256_set1_epi64x((long long)(span + bias));
  for (; end - p >= 8; p += 8) push_mask(w, &q, p, hits8(p, lo, lim));
  if (p < end) {
    unsigned seen = 8 - (unsigned)(end - p);
    push_mask(w, &q, end - 8, hits8(end - 8, lo, lim) >> seen << seen);
  }
  *qp = q;
}
#undef REF_AVX2
#else
void ref__scan_conservative_init(void) {}

const char *ref_scan_filter(void) { return "scalar"; }
#endif

/* Reads arbitrary stack words, including ones ASan considers poisoned (dead
 * frames, redzones of other goroutines' locals): not instrumented. */
REF_NO_SANITIZE_ADDRESS REF_NO_SANITIZE_THREAD
void ref__scan_conservative(ref__worker *w, uintptr_t lo, uintptr_t hi) {
  const uintptr_t alo = ref__heap.arena_lo;
  const uintptr_t span = ref__heap_arena_size();
  const uintptr_t *p = (const uintptr_t *)ref_align_up(lo, REF_WORD);
  const uintptr_t *end = (const uintptr_t *)ref_align_down(hi, REF_WORD);
  if (p >= end) return;
  queue q = {w->nptr, 0};
  w->n.words += (uint64_t)(end - p);
#if defined(__x86_64__)
  if (ref__scan_avx2 && end - p >= 8) scan_avx2(w, p, end, alo, span, &q);
  else
#endif
    scan_scalar(w, p, end, alo, span, &q);
  w->nptr = q.nptr;
  w->n.candidates += q.cand;
}
