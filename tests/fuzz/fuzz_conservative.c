/*
 * fuzz_conservative.c: libFuzzer target for the conservative stack scanner,
 * through its public hook ref_debug_scan_conservative (ref.h), against a
 * small live heap.
 *
 * Setup (once, lazily): a runtime with one mark worker and poison on, and
 * a heap of NLIVE objects of eight shapes (small with and without
 * pointers, odd size classes, an array, a large object) linked into a
 * graph reachable from a registered root array; a byte-for-byte shadow
 * copy of that graph is kept outside the GC heap. Then NGARBAGE unreachable
 * objects per input, so that free, garbage and live slots are all about.
 *
 * Per input:
 *   1. The bytes go into a buffer whose end touches a PROT_NONE page (the
 *      scanner is not ASan-instrumented, so the guard catches overreads);
 *      it starts word-aligned when the length is a multiple of 8. Every
 *      aligned word inside is rewritten by its low two bits, so that most
 *      inputs hit the heap whatever the arena's address:
 *        00  kept as is (stack-like noise, or a raw address)
 *        01  an address in [arena_lo - 8, arena_hi + 8)
 *        10  a live object's base plus an offset up to 16 bytes past it
 *        11  the same for a garbage object
 *   2. ref_debug_scan_conservative(buf, len), then, against a model that
 *      finds objects by walking the span table (no page map, no divmul):
 *        - the return value is the number of words in [arena_lo, arena_hi),
 *          and the worker counted exactly the aligned words of the range;
 *        - no mark bit is set on a free slot (nor past nelems);
 *        - every word that points into an allocated slot marked it, and
 *          nothing else got marked (|marked| = |distinct objects hit|);
 *        - the buffer was not written.
 *   3. ref_gc(): every live object is still allocated with the contents of
 *      its shadow (a lost object is freed and poisoned 0xfe). Objects the
 *      scan marked are kept by this cycle, by the hook's contract.
 *   4. ref_gc() again, which frees those; now no mark bit may be set
 *      anywhere (sweep clears them). New garbage is allocated.
 * A violation prints what failed and traps. Checkmark (STACKSCAN_CHECKMARK)
 * must stay off: by design the hook's marks are not reachability, which the
 * verifier would report as a difference.
 */
#include "gc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NROOT 64
#define NLIVE 400
#define NGARBAGE 48
#define MAX_BYTES ((size_t)64 << 10) /* longer inputs are cut */
#define PAGE ((size_t)sysconf(_SC_PAGESIZE)) /* 4K; 16K or 64K on some arm64 kernels */

#define check(e) ((e) ? (void)0 : violated(#e, __LINE__))
__attribute__((noreturn)) static void violated(const char *what, int line) {
  fprintf(stderr, "fuzz_conservative.c:%d: violated: %s\n", line, what);
  __builtin_trap();
}

/* ---------------------------------------------------------------------------
 * Object shapes: the first nptr words of each element are pointers
 * ------------------------------------------------------------------------- */

typedef struct shape {
  ref_type t;
  uint32_t nptr;   /* pointer words per element, at its start */
  uint32_t n;      /* elements (ref_alloc_array) */
} shape;

/* A ptrmask covers every word of its type (ref_type's contract). */
#define MASKWORDS(bytes) (((bytes) / 8 + 63) / 64)
static const uint64_t mask2[1] = {0x3}, mask_rec[MASKWORDS(112)] = {0x1},
                      mask_wide[MASKWORDS(1152)] = {0x1}, mask_large[MASKWORDS(33000)] = {0x1};
static const shape shapes[] = {
    {{32, mask2, "fz.node"}, 2, 1},           /* class 32 */
    {{16, mask2, "fz.pair"}, 2, 1},           /* class 16, all pointers */
    {{48, NULL, "fz.blob"}, 0, 1},            /* noscan */
    {{112, mask_rec, "fz.rec"}, 1, 1},        /* class 112 */
    {{1152, mask_wide, "fz.wide"}, 1, 1},     /* class 1152, 3-word ptrmask */
    {{3064, NULL, "fz.odd"}, 0, 1},           /* noscan, class 3072 */
    {{32, mask2, "fz.node[5]"}, 2, 5},        /* array: class 160 */
    {{33000, mask_large, "fz.large"}, 1, 1},  /* large: a span of its own */
};
#define NSHAPES (REF_ARRAY_SIZE(shapes))

static size_t shape_bytes(const shape *s) { return s->t.size * s->n; }

/* Shape of live object i: mostly small ones, a few wide and odd ones, one
 * large one. Big objects are few because every cycle scans them word by
 * word, which the fuzzer's comparison hooks make slow. */
static const shape *live_shape(size_t i) {
  static const uint8_t mix[16] = {0, 1, 2, 3, 6, 0, 1, 2, 0, 1, 3, 6, 0, 2, 1, 0};
  if (i == 75) return &shapes[7];
  if (i % 40 == 20) return &shapes[4];
  if (i % 40 == 30) return &shapes[5];
  return &shapes[mix[i % 16]];
}

/* ---------------------------------------------------------------------------
 * The heap under test
 * ------------------------------------------------------------------------- */

typedef struct obj {
  uintptr_t base;
  size_t bytes;
  const shape *sh;
} obj;

static void *roots[NROOT];          /* the only GC root */
static obj live[NLIVE];
static uint8_t *shadow[NLIVE];      /* contents of live[i] as built */
static obj garbage[NGARBAGE];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void) { return ref__rand64(&rng); }

static obj alloc_obj(const shape *sh) {
  void *p = sh->n > 1 ? ref_alloc_array(&sh->t, sh->n) : ref_alloc(&sh->t);
  if (p == NULL) {
    fprintf(stderr, "fuzz_conservative: %s\n", ref_error());
    abort();
  }
  return (obj){(uintptr_t)p, shape_bytes(sh), sh};
}

/* Data words get a pattern that is odd and far from any heap address. */
static void fill_data(const obj *o, uint64_t tag) {
  uint64_t *w = (uint64_t *)o->base;
  size_t nw = o->sh->t.size / 8;
  for (size_t e = 0; e < o->sh->n; e++)
    for (size_t k = o->sh->nptr; k < nw; k++)
      w[e * nw + k] = ((tag << 20 | (e * nw + k)) * 0x9e3779b97f4a7c15ull) | 0x8000000000000001ull;
}

/* The addresses of o's pointer words, appended at out[*n]. */
static void pointer_words(const obj *o, uintptr_t **out, size_t *n) {
  size_t nw = o->sh->t.size / 8;
  for (size_t e = 0; e < o->sh->n; e++)
    for (size_t k = 0; k < o->sh->nptr; k++) out[(*n)++] = (uintptr_t *)o->base + e * nw + k;
}

/* An exact or (one time in four) interior pointer to a live object. */
static uintptr_t random_live_pointer(void) {
  const obj *o = &live[next_rand() % NLIVE];
  uint64_t r = next_rand();
  return r % 4 == 0 ? o->base + (r >> 8) % o->bytes : o->base;
}

/* Live object i >= NROOT is stored in the next unused pointer word of the
 * objects before it, so everything is reachable from roots[]; the words
 * left over point at random live objects (sharing, cycles, interior
 * pointers) or stay NULL. */
static void build_live(void) {
  static uintptr_t *slot[NLIVE * 10];
  size_t nslots = 0, used = 0;
  for (size_t i = 0; i < NLIVE; i++) {
    live[i] = alloc_obj(live_shape(i));
    fill_data(&live[i], i);
    if (i < NROOT) roots[i] = (void *)live[i].base;
    else if (used < nslots) *slot[used++] = live[i].base;
    else abort(); /* not reached with these shapes */
    pointer_words(&live[i], slot, &nslots);
  }
  for (; used < nslots; used++)
    if (next_rand() % 3 != 0) *slot[used] = random_live_pointer();
  for (size_t i = 0; i < NLIVE; i++) {
    shadow[i] = malloc(live[i].bytes);
    if (shadow[i] == NULL) abort();
    memcpy(shadow[i], (void *)live[i].base, live[i].bytes);
  }
}

/* Unreachable objects, pointing at live ones and at each other. The same
 * shapes and links every time (the generator restarts), so that the heap
 * an input meets does not depend on the inputs before it. */
static void make_garbage(void) {
  rng = 0x2545f4914f6cdd1dull;
  for (size_t i = 0; i < NGARBAGE; i++) {
    uintptr_t *slot[10];
    size_t n = 0;
    garbage[i] = alloc_obj(&shapes[(i + next_rand() % 3) % (NSHAPES - 1)]);
    fill_data(&garbage[i], NLIVE + i);
    pointer_words(&garbage[i], slot, &n);
    for (size_t k = 0; k < n; k++)
      *slot[k] = k % 2 ? random_live_pointer() : garbage[next_rand() % (i + 1)].base;
  }
}

static uint8_t *guard_buf; /* MAX_BYTES of buffer, its end at a PROT_NONE page */

static void setup(void) {
  ref_config cfg;
  ref_config_default(&cfg);
  cfg.heap_max = (size_t)64 << 20;
  cfg.mem_max = (size_t)256 << 20;
  cfg.workers = 1;
  cfg.scan = REF_SCAN_CONSERVATIVE;
  cfg.poison = true;
  if (ref_init(&cfg) != 0) {
    fprintf(stderr, "fuzz_conservative: ref_init: %s\n", ref_error());
    abort();
  }
  ref_add_root(roots, sizeof roots);
  build_live();
  make_garbage();
  size_t len = MAX_BYTES + 2 * PAGE;
  uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) abort();
  if (mprotect(m, PAGE, PROT_NONE) != 0 || mprotect(m + PAGE + MAX_BYTES, PAGE, PROT_NONE) != 0)
    abort();
  guard_buf = m + PAGE;
}

/* ---------------------------------------------------------------------------
 * The model: objects found by walking the span table
 * ------------------------------------------------------------------------- */

/* The allocated object holding address v: its span and slot. */
static bool model_find(uintptr_t v, ref__span **sp, uint32_t *idx) {
  for (size_t i = 0; i < ref__heap_nspans(); i++) {
    ref__span *s = ref__heap_span(i);
    if (v < s->base || v >= s->base + (uintptr_t)s->npages * REF_PAGE_SIZE) continue;
    if (v >= s->limit) return false;
    uint32_t k = (uint32_t)((v - s->base) / s->elemsize);
    if (!ref__span_is_allocated(s, k)) return false;
    *sp = s;
    *idx = k;
    return true;
  }
  return false;
}

/* Marked slots; traps on a mark on a free slot or past nelems. */
static size_t count_marks(void) {
  size_t n = 0;
  for (size_t i = 0; i < ref__heap_nspans(); i++) {
    ref__span *s = ref__heap_span(i);
    for (uint32_t b = 0; b < (s->nelems + 63) / 64 * 8; b++) {
      uint8_t m = atomic_load_explicit(&s->xmarkbits[b], memory_order_relaxed);
      for (; m; m &= (uint8_t)(m - 1)) {
        uint32_t k = b * 8 + (uint32_t)__builtin_ctz(m);
        check(k < s->nelems && ref__span_is_allocated(s, k));
        n++;
      }
    }
  }
  return n;
}

/* ---------------------------------------------------------------------------
 * One input
 * ------------------------------------------------------------------------- */

static uintptr_t object_pointer(const obj *o, uint64_t v) {
  return o->base + (uintptr_t)((v >> 32) % (o->bytes + 16));
}

static int cmp_uptr_fwd(const void *a, const void *b);
/* Rewrites word w by its low two bits (see the header). */
static uintptr_t map_word(uint64_t v) {
  uintptr_t lo = ref__heap.arena_lo, hi = ref__heap.arena_hi;
  switch (v & 3) {
  case 0: return (uintptr_t)v;
  case 1: return lo - 8 + (uintptr_t)((v >> 2) % (hi - lo + 16));
  case 2: return object_pointer(&live[(v >> 2) % NLIVE], v);
  default: return object_pointer(&garbage[(v >> 2) % NGARBAGE], v);
  }
}

/* Whether some marked object's pointer words point into [base, base+size):
 * the hook marks the closure of what it finds, so every marked object that
 * no scanned word hit must be reached this way. */
static bool marked_referrer(uintptr_t base, uintptr_t size) {
  for (size_t i = 0; i < ref__heap_nspans(); i++) {
    ref__span *s = ref__heap_span(i);
    for (uint32_t k = ref__span_next_allocated(s, 0); k < s->nelems;
         k = ref__span_next_allocated(s, k + 1)) {
      const ref_type *t = ref__object_type(s, k);
      if (!ref__is_marked(s, k) || !t || !t->ptrmask) continue;
      const uintptr_t *w = (const uintptr_t *)ref__object_base(s, k);
      size_t nw = t->size / 8, n = s->elemsize / 8;
      for (size_t j = 0; j < n; j++)
        if ((t->ptrmask[(j % nw) / 64] >> ((j % nw) % 64) & 1) && w[j] - base < size) return true;
    }
  }
  return false;
}

static bool is_hit(const uintptr_t *hits, size_t nhits, uintptr_t base) {
  return bsearch(&base, hits, nhits, sizeof *hits, cmp_uptr_fwd) != NULL;
}

static int cmp_uptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

/* Step 2's checks over the words the scanner read, [p, end). */
static void check_scan(const uintptr_t *p, const uintptr_t *end, uint64_t cand) {
  static uintptr_t hits[MAX_BYTES / 8];
  size_t nwords = (size_t)(end - p), nin = 0, nhits = 0;
  uintptr_t lo = ref__heap.arena_lo, hi = ref__heap.arena_hi;
  for (; p < end; p++) {
    ref__span *s;
    uint32_t k;
    if (*p >= lo && *p < hi) nin++;
    if (!model_find(*p, &s, &k)) continue;
    check(ref__is_marked(s, k)); /* complete */
    hits[nhits++] = ref__object_base(s, k);
  }
  check(cand == nin && cand <= nwords);
  qsort(hits, nhits, sizeof hits[0], cmp_uptr);
  size_t distinct = 0;
  for (size_t i = 0; i < nhits; i++) distinct += i == 0 || hits[i] != hits[i - 1];
  check(count_marks() >= distinct);
  /* sound: every other mark is reached from a marked object */
  for (size_t i = 0; i < ref__heap_nspans(); i++) {
    ref__span *s = ref__heap_span(i);
    for (uint32_t k = ref__span_next_allocated(s, 0); k < s->nelems;
         k = ref__span_next_allocated(s, k + 1)) {
      uintptr_t b = ref__object_base(s, k);
      if (ref__is_marked(s, k) && !is_hit(hits, nhits, b)) check(marked_referrer(b, s->elemsize));
    }
  }
}

static int cmp_uptr_fwd(const void *a, const void *b) { return cmp_uptr(a, b); }

/* Step 3: every live object survived, intact. */
static void check_live(void) {
  for (size_t i = 0; i < NLIVE; i++) {
    ref__span *s;
    uint32_t k;
    bool kept = model_find(live[i].base, &s, &k) && ref__object_base(s, k) == live[i].base;
    if (kept && memcmp((void *)live[i].base, shadow[i], live[i].bytes) == 0) continue;
    fprintf(stderr, "fuzz_conservative: live object %zu (%s at %#lx) was %s by the cycle\n", i,
            live[i].sh->t.name, (unsigned long)live[i].base, kept ? "changed" : "freed");
    check(!"every live object survives a cycle intact");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool ready;
  static uint8_t before[MAX_BYTES];
  if (!ready) setup();
  ready = true;
  size_t len = size < MAX_BYTES ? size : MAX_BYTES;
  uint8_t *buf = guard_buf + MAX_BYTES - len;
  memcpy(buf, data, len);
  const uintptr_t *p = (const uintptr_t *)ref_align_up((uintptr_t)buf, 8);
  const uintptr_t *end = (const uintptr_t *)ref_align_down((uintptr_t)buf + len, 8);
  for (uintptr_t *w = (uintptr_t *)p; w < end; w++) *w = map_word(*w);
  memcpy(before, buf, len);

  check(count_marks() == 0);
  ref__worker *w0 = ref__worker_get(0);
  uint64_t words0 = w0->n.words;
  uint64_t cand = ref_debug_scan_conservative(buf, len);
  check(w0->n.words - words0 == (uint64_t)(p < end ? end - p : 0));
  check(memcmp(before, buf, len) == 0);
  check_scan(p, p < end ? end : p, cand);

  ref_gc();
  check_live();
  ref_gc();
  check(count_marks() == 0);
  make_garbage();
  return 0;
}
