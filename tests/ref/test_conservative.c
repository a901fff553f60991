/*
 * test_conservative.c: the conservative scan's word filter against a model,
 * with each filter this CPU has (scalar always, AVX2 where the CPU has it).
 *
 * Short ranges are checked word for word: the words queued in the worker's
 * ptrbuf must be exactly the aligned words of the range that lie in
 * [arena_lo, arena_hi), in address order, once each, and the worker's words
 * and candidates counters must count them. The words are drawn from the
 * values either side of each bound, values that differ from a bound only in
 * the top bit (the AVX2 filter biases by 2^63 to compare unsigned), and
 * noise; ranges start and end at every byte offset. Long ranges, whose
 * candidates overflow the ptrbuf, go through ref_debug_scan_conservative and
 * are checked by its count.
 */
#include "testutil.h"

#include "gc.h" /* ref__scan_conservative, ref__worker_get, ref__scan_avx2 */

#define MAX_WORDS 48 /* fewer candidates than REF_PTRBUF: nothing is flushed */
#define LONG_WORDS 4096

typedef struct leaf {
  uint64_t v[4];
} leaf;
static const ref_type leaf_t = {sizeof(leaf), NULL, "test.leaf"};

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A word near a bound of the arena, or noise. */
static uintptr_t draw(void) {
  const uintptr_t lo = ref__heap.arena_lo, hi = ref__heap.arena_hi, top = (uintptr_t)1 << 63;
  const uintptr_t near[] = {lo - 8, lo - 1, lo, lo + 1, lo + 8, hi - 8, hi - 1, hi, hi + 1,
                            lo ^ top, (hi - 1) ^ top, hi ^ top, 0, ~(uintptr_t)0, top, top - 1};
  uint64_t r = next_rand();
  switch (r % 4) {
  case 0: return near[(r >> 8) % (sizeof near / sizeof near[0])];
  case 1: return lo + (r >> 8) % (hi - lo); /* inside */
  case 2: return lo + (r >> 8) % (hi - lo) * 2; /* inside or above */
  default: return (uintptr_t)(r >> 3); /* noise */
  }
}

static bool in_arena(uintptr_t v) { return v - ref__heap.arena_lo < ref__heap.arena_hi - ref__heap.arena_lo; }

/* The filters to test: scalar, and AVX2 if this CPU has it. */
static int nfilters(void) {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") ? 2 : 1;
#else
  return 1;
#endif
}
static void use_filter(int f) {
#if defined(__x86_64__)
  ref__scan_avx2 = f == 1;
#else
  (void)f;
#endif
}

static void start(void) {
  tu_init();
  for (int i = 0; i < 64; i++)
    if (!ref_alloc(&leaf_t)) fail_msg("ref_alloc: %s", ref_error());
  assert_true(ref__heap.arena_hi > ref__heap.arena_lo);
}

static int teardown(void **state) {
  (void)state;
#if defined(__x86_64__)
  ref__scan_avx2 = __builtin_cpu_supports("avx2");
#endif
  ref_shutdown();
  return 0;
}

/* ref_init picks AVX2 exactly when the CPU has it, and ref_scan_filter
 * names the filter it picked, with or without a runtime. */
static void test_filter_matches_cpu(void **state) {
  (void)state;
#if defined(__x86_64__)
  const char *want = __builtin_cpu_supports("avx2") ? "avx2" : "scalar";
#else
  const char *want = "scalar";
#endif
  assert_string_equal(ref_scan_filter(), want);
  start();
  assert_string_equal(ref_scan_filter(), want);
#if defined(__x86_64__)
  assert_int_equal(ref__scan_avx2, __builtin_cpu_supports("avx2") != 0);
#endif
}

static void test_short_ranges_word_for_word(void **state) {
  (void)state;
  start();
  ref__worker *w = ref__worker_get(0);
  uintptr_t buf[MAX_WORDS + 2];
  uintptr_t want[MAX_WORDS];
  for (int f = 0; f < nfilters(); f++) {
    use_filter(f);
    for (int round = 0; round < 40; round++) {
      for (size_t i = 0; i < MAX_WORDS + 2; i++) buf[i] = draw();
      for (size_t from = 0; from < 2 * REF_WORD; from++) {
        for (size_t len = 0; len + from <= MAX_WORDS * REF_WORD; len += 1 + round % 3) {
          uintptr_t lo = (uintptr_t)buf + from, hi = lo + len;
          const uintptr_t *first = (const uintptr_t *)ref_align_up(lo, REF_WORD);
          const uintptr_t *end = (const uintptr_t *)ref_align_down(hi, REF_WORD);
          uint64_t nwords = end > first ? (uint64_t)(end - first) : 0;
          size_t nwant = 0;
          for (const uintptr_t *p = first; p < end; p++)
            if (in_arena(*p)) want[nwant++] = *p;
          uint64_t words0 = w->n.words, cand0 = w->n.candidates;
          ref__ptrbuf_reset(w);
          ref__scan_conservative(w, lo, hi);
          if (w->nptr != nwant || memcmp(w->ptrbuf, want, nwant * sizeof want[0]) != 0 ||
              w->n.candidates - cand0 != nwant || w->n.words - words0 != nwords)
            fail_msg("filter %d, [buf+%zu, +%zu): queued %zu words (want %zu), counted %llu "
                     "candidates and %llu words (want %llu)",
                     f, from, len, w->nptr, nwant, (unsigned long long)(w->n.candidates - cand0),
                     (unsigned long long)(w->n.words - words0), (unsigned long long)nwords);
          ref__ptrbuf_reset(w); /* nothing queued is looked up */
        }
      }
    }
  }
}

/* Ranges with more candidates than the ptrbuf holds, at each end offset. */
static void test_long_ranges_count(void **state) {
  (void)state;
  start();
  static uintptr_t buf[LONG_WORDS];
  for (int f = 0; f < nfilters(); f++) {
    use_filter(f);
    for (size_t i = 0; i < LONG_WORDS; i++) buf[i] = draw();
    for (size_t cut = 0; cut < 16; cut++) {
      size_t n = LONG_WORDS - cut, want = 0;
      for (size_t i = cut % 3; i < n; i++) want += in_arena(buf[i]);
      uint64_t got = ref_debug_scan_conservative(buf + cut % 3, (n - cut % 3) * REF_WORD);
      if (got != want) fail_msg("filter %d, %zu words: %llu candidates, want %zu", f, n - cut % 3,
                                (unsigned long long)got, want);
      assert_true(want > REF_PTRBUF);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_filter_matches_cpu, teardown),
      cmocka_unit_test_teardown(test_short_ranges_word_for_word, teardown),
      cmocka_unit_test_teardown(test_long_ranges_count, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
