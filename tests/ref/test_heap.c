/*
 * test_heap.c: the heap alone (ref__heap_init/shutdown called directly, no
 * runtime): size classes and findObject, large objects, noscan segregation,
 * exact sweep with poisoning, reuse and re-zeroing, the heap limit, parallel
 * sweep against a 1-part sweep, concurrent mark bits. Deterministic seeds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "heap.h"

#define TEST_HEAP_MAX ((size_t)256 << 20)

/* Pointer bitmaps for types up to 32 KiB: word 0 a pointer, or nothing. */
static const uint64_t mask_word0[64] = {1};
static const uint64_t mask_zero[64] = {0};

/* One scan and one noscan type per size class, sized exactly to the class. */
static ref_type scan_t[REF_NUM_CLASSES], noscan_t[REF_NUM_CLASSES];

static const ref_type bytes_t = {1, NULL, "byte"};           /* noscan arrays */
static const ref_type pair_t = {16, mask_word0, "pair"};     /* scan, 16 bytes */
static const ref_type zeromask_t = {32, mask_zero, "nomask"}; /* all-zero mask: noscan */

static int setup(void **state) {
  (void)state;
  for (int c = 1; c < REF_NUM_CLASSES; c++) {
    scan_t[c] = (ref_type){ref__class_size[c], mask_word0, "scan"};
    noscan_t[c] = (ref_type){ref__class_size[c], NULL, "noscan"};
  }
  ref__cfg.poison = true;
  return ref__heap_init(TEST_HEAP_MAX, 1);
}

static int teardown(void **state) {
  (void)state;
  ref__heap_check();
  ref__heap_shutdown();
  return 0;
}

static bool all_bytes(const void *p, size_t n, uint8_t v) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

static uintptr_t find(uintptr_t p, ref__span **sp, uint32_t *idx) {
  ref__span *s = NULL;
  uint32_t i = UINT32_MAX;
  uintptr_t base = ref__find_object(p, &s, &i);
  if (sp) *sp = s;
  if (idx) *idx = i;
  return base;
}

/* Sweeps in one part and finishes. */
static ref__sweep_result sweep1(void) {
  ref__sweep_result r;
  ref__heap_sweep_part(0, 1, &r);
  ref__heap_sweep_finish(&r, 1);
  return r;
}

/* ---------------------------------------------------------------------------
 * Size classes and findObject
 * ------------------------------------------------------------------------- */

/* Fills one fresh span of class c and checks every byte offset of it. */
static void check_class(int c, bool noscan) {
  const ref_type *t = noscan ? &noscan_t[c] : &scan_t[c];
  size_t size = ref__class_size[c], spanbytes = (size_t)ref__class_npages[c] * REF_PAGE_SIZE;
  uint32_t nelems = (uint32_t)(spanbytes / size);
  ref__span *s0 = NULL;
  uintptr_t base0 = 0;
  for (uint32_t k = 0; k < nelems; k++) {
    uint8_t *p = ref__heap_alloc(t, 1);
    assert_non_null(p);
    ref__span *s;
    uint32_t idx;
    assert_int_equal(find((uintptr_t)p, &s, &idx), (uintptr_t)p);
    if (k == 0) s0 = s, base0 = (uintptr_t)p;
    assert_ptr_equal(s, s0);
    assert_int_equal(idx, k);
    assert_int_equal((uintptr_t)p, base0 + k * size);
    assert_true(all_bytes(p, size, 0));
    p[0] = p[size - 1] = 0x5a;
  }
  assert_int_equal(s0->sizeclass, c);
  assert_int_equal(ref__span_noscan(s0), noscan);
  assert_int_equal(ref__object_size(s0), size);
  assert_int_equal(s0->nelems, nelems);
  assert_ptr_equal(ref__object_type(s0, nelems - 1), noscan ? NULL : t);
  for (uintptr_t off = 0; off < spanbytes; off++) {
    ref__span *s;
    uint32_t idx;
    uintptr_t want = off < nelems * size ? base0 + off / size * size : 0;
    assert_int_equal(find(base0 + off, &s, &idx), want);
    if (want) assert_int_equal(idx, off / size);
  }
  uint8_t *next = ref__heap_alloc(t, 1); /* the span is full: a new one */
  assert_non_null(next);
  assert_ptr_not_equal(ref__span_of((uintptr_t)next), s0);
}

static void test_classes_find_object(void **state) {
  (void)state;
  for (int c = 1; c < REF_NUM_CLASSES; c++) {
    check_class(c, false);
    check_class(c, true);
  }
  assert_int_equal(ref__size_to_class(1), 1);
  assert_int_equal(ref__size_to_class(1025), ref__size_to_class(1152));
  for (size_t sz = 1; sz <= REF_MAX_SMALL_SIZE; sz++) {
    int c = ref__size_to_class(sz);
    assert_true(ref__class_size[c] >= sz && ref__class_size[c - 1] < sz);
  }
  ref__heap_check();
}

static void test_not_in_heap(void **state) {
  (void)state;
  int local;
  void *m = malloc(64);
  uint8_t *p = ref__heap_alloc(&scan_t[5], 1); /* 48 bytes: slots 3.. stay free */
  ref__heap_alloc(&scan_t[5], 1);
  ref__heap_alloc(&scan_t[5], 1);
  ref__span *s = (ref__span *)&local;
  uint32_t idx = 77;
  assert_int_equal(ref__find_object((uintptr_t)&local, &s, &idx), 0);
  assert_ptr_equal(s, (ref__span *)&local); /* untouched on a miss */
  assert_int_equal(idx, 77);
  assert_int_equal(find((uintptr_t)m, NULL, NULL), 0);
  assert_int_equal(find(0, NULL, NULL), 0);
  assert_int_equal(find(ref__heap.arena_lo - 1, NULL, NULL), 0);
  assert_int_equal(find(ref__heap.arena_hi, NULL, NULL), 0);
  assert_int_equal(find(ref__heap.arena_hi + REF_PAGE_SIZE, NULL, NULL), 0);
  assert_null(ref__span_of(ref__heap.arena_hi));
  assert_int_equal(find((uintptr_t)p + (uintptr_t)2 * 48 + 47, NULL, NULL), (uintptr_t)p + (uintptr_t)2 * 48);
  assert_int_equal(find((uintptr_t)p + (uintptr_t)3 * 48, NULL, NULL), 0);      /* free slot */
  assert_int_equal(find((uintptr_t)p + (uintptr_t)100 * 48 + 5, NULL, NULL), 0); /* free slot */
  assert_false(ref__span_is_allocated(ref__span_of((uintptr_t)p), 3));
  free(m);
}

/* ---------------------------------------------------------------------------
 * Large objects, arrays, noscan
 * ------------------------------------------------------------------------- */

static void test_large(void **state) {
  (void)state;
  static const ref_type big_t = {40000, mask_word0, "big"};
  uint8_t *p = ref__heap_alloc(&big_t, 1);
  assert_non_null(p);
  ref__span *s;
  uint32_t idx;
  assert_int_equal(find((uintptr_t)p + 39999, &s, &idx), (uintptr_t)p);
  assert_int_equal(idx, 0);
  assert_int_equal(s->sizeclass, 0);
  assert_int_equal(s->nelems, 1);
  assert_int_equal(s->npages, 5);
  assert_int_equal(ref__object_size(s), 40000);
  assert_ptr_equal(ref__object_type(s, 0), &big_t);
  assert_false(ref__span_noscan(s));
  assert_int_equal(find((uintptr_t)p + 40000, NULL, NULL), 0); /* tail of the last page */
  assert_true(all_bytes(p, 40000, 0));

  uint8_t *q = ref__heap_alloc(&bytes_t, (size_t)1 << 20);
  assert_non_null(q);
  s = ref__span_of((uintptr_t)q + 12345);
  assert_true(ref__span_noscan(s));
  assert_null(ref__object_type(s, 0));
  assert_int_equal(ref__object_size(s), (size_t)1 << 20);
  assert_true(all_bytes(q, (size_t)1 << 20, 0));
  memset(q, 1, (size_t)1 << 20);
  for (uintptr_t off = 0; off < ((size_t)1 << 20); off += 4093)
    assert_int_equal(find((uintptr_t)q + off, NULL, NULL), (uintptr_t)q);

  void *arr = ref__heap_alloc(&pair_t, 5000); /* 80000 bytes: large, scan */
  s = ref__span_of((uintptr_t)arr);
  assert_int_equal(s->sizeclass, 0);
  assert_int_equal(ref__object_size(s) / ref__object_type(s, 0)->size, 5000);
  ref__heap_check();
}

static void test_arrays_small(void **state) {
  (void)state;
  void *a = ref__heap_alloc(&pair_t, 3); /* 48 bytes */
  ref__span *s = ref__span_of((uintptr_t)a);
  assert_int_equal(ref__object_size(s), 48);
  assert_ptr_equal(ref__object_type(s, 0), &pair_t);
  void *z = ref__heap_alloc(&pair_t, 0); /* empty array: a distinct minimal object */
  assert_non_null(z);
  assert_int_equal(ref__object_size(ref__span_of((uintptr_t)z)), 8);
  void *r1 = ref_alloc(&pair_t), *r2 = ref_alloc_array(&pair_t, 2);
  assert_non_null(r1);
  assert_non_null(r2);
  assert_int_equal(ref__object_size(ref__span_of((uintptr_t)r2)), 32);
}

static void test_noscan_segregation(void **state) {
  (void)state;
  static const ref_type scan32 = {32, mask_word0, "scan32"};
  void *sp[10], *np[10], *zp[10];
  for (int i = 0; i < 10; i++) {
    sp[i] = ref__heap_alloc(&scan32, 1);
    np[i] = ref__heap_alloc(&noscan_t[4], 1);
    zp[i] = ref__heap_alloc(&zeromask_t, 1);
  }
  ref__span *ss = ref__span_of((uintptr_t)sp[0]), *ns = ref__span_of((uintptr_t)np[0]);
  assert_ptr_not_equal(ss, ns);
  assert_false(ref__span_noscan(ss));
  assert_true(ref__span_noscan(ns));
  assert_int_equal(ss->sizeclass, ns->sizeclass);
  for (int i = 0; i < 10; i++) {
    assert_ptr_equal(ref__span_of((uintptr_t)sp[i]), ss);
    assert_ptr_equal(ref__span_of((uintptr_t)np[i]), ns);
    assert_ptr_equal(ref__span_of((uintptr_t)zp[i]), ns); /* all-zero ptrmask is noscan */
    assert_ptr_equal(ref__object_type(ss, (uint32_t)i), &scan32);
    assert_int_equal((uintptr_t)np[i], ns->base + 32 * (uintptr_t)(2 * i));
  }
}

/* ---------------------------------------------------------------------------
 * Sweep: exact counts, poison, survivors, reuse, zeroing
 * ------------------------------------------------------------------------- */

typedef struct obj {
  uint8_t *p;
  size_t size;     /* slot size */
  bool marked;
  bool released;   /* large and long enough to go back to the OS when freed */
  uint8_t fill;
} obj;

/* Sizes of the seeded heap: mostly small, some large, never 0xfe-filled. */
static size_t pick_size(uint64_t *rng) {
  uint64_t r = ref__rand64(rng);
  if (r % 64 == 0) return REF_MAX_SMALL_SIZE + 1 + (size_t)(r >> 8) % (200 << 10);
  if (r % 4 == 0) return 1 + (size_t)(r >> 8) % 4096;
  return 1 + (size_t)(r >> 8) % 256;
}

/* Allocates n objects of seeded sizes and kinds, fills each with a byte and
 * marks a seeded subset. Objects of 4096 bytes (class 44) and large ones of
 * 150 KiB+ are never marked, so whole spans and long runs are freed. */
static obj *build_heap(uint64_t seed, size_t n) {
  obj *o = calloc(n, sizeof *o);
  uint64_t rng = seed;
  for (size_t i = 0; i < n; i++) {
    size_t size = pick_size(&rng);
    bool ns = ref__rand64(&rng) & 1;
    o[i].p = ref__heap_alloc(ns ? &bytes_t : &pair_t, ns ? size : (size + 15) / 16);
    assert_non_null(o[i].p);
    ref__span *s = ref__span_of((uintptr_t)o[i].p);
    o[i].size = ref__object_size(s);
    o[i].fill = (uint8_t)(1 + i % 200);
    o[i].released = s->sizeclass == 0 && ref__heap_releasable(s->base, s->npages);
    memset(o[i].p, o[i].fill, o[i].size);
    bool never = (s->sizeclass == 44) || o[i].size >= (150 << 10);
    o[i].marked = !never && ref__rand64(&rng) % 3 != 0;
    if (o[i].marked) {
      uint32_t idx = 0;
      assert_int_equal(ref__find_object((uintptr_t)o[i].p, &s, &idx), (uintptr_t)o[i].p);
      assert_true(ref__mark_tryset(s, idx));
      assert_false(ref__mark_tryset(s, idx));
    }
  }
  return o;
}

static void test_sweep_exact(void **state) {
  (void)state;
  size_t n = 20000;
  obj *o = build_heap(42, n);
  uint64_t want_freed = 0, want_fbytes = 0, want_live = 0, want_lbytes = 0;
  for (size_t i = 0; i < n; i++) {
    if (o[i].marked) want_live++, want_lbytes += o[i].size;
    else want_freed++, want_fbytes += o[i].size;
  }
  ref_heap_stats st;
  ref_heap_stats_get(&st);
  assert_int_equal(st.objects_live, n);
  assert_int_equal(st.bytes_live, want_fbytes + want_lbytes);
  ref__heap_check();

  ref__sweep_result r = sweep1();
  assert_int_equal(r.objects_freed, want_freed);
  assert_int_equal(r.bytes_freed, want_fbytes);
  assert_int_equal(r.objects_live, want_live);
  assert_int_equal(r.bytes_live, want_lbytes);
  assert_true(r.spans_emptied > 0);
  ref_heap_stats_get(&st);
  assert_int_equal(st.objects_live, want_live);
  assert_int_equal(st.bytes_live, want_lbytes);
  ref__heap_check();

  size_t released = 0;
  for (size_t i = 0; i < n; i++) {
    ref__span *s = NULL;
    uint32_t idx = 0;
    uintptr_t b = ref__find_object((uintptr_t)o[i].p, &s, &idx);
    if (o[i].marked) {
      assert_int_equal(b, (uintptr_t)o[i].p);
      assert_false(ref__is_marked(s, idx));
      assert_true(all_bytes(o[i].p, o[i].size, o[i].fill));
    } else if (o[i].released) {
      assert_int_equal(b, 0);
      assert_true(all_bytes(o[i].p, o[i].size, 0)); /* given back with madvise */
      released++;
    } else {
      assert_int_equal(b, 0);
      assert_true(all_bytes(o[i].p, o[i].size, 0xfe));
    }
  }
  assert_true(released > 0);
  free(o);
}

/* After a sweep, the lowest freed slot of the first surviving span of a class
 * is handed out first, zeroed; whole freed spans' pages are reused, zeroed. */
static void test_reuse_zeroed(void **state) {
  (void)state;
  size_t n = 20000;
  obj *o = build_heap(7, n);
  uintptr_t old_hi = ref__heap.arena_hi;
  /* Expected first 48-byte scan slot: the lowest freed one in a span that keeps
   * a survivor (spans were bump-allocated, so table order is address order). */
  uintptr_t want = UINTPTR_MAX;
  for (size_t i = 0; i < n; i++) {
    ref__span *s = ref__span_of((uintptr_t)o[i].p);
    if (o[i].marked || s->sizeclass != 5 || s->noscan) continue;
    bool survivor = false;
    for (uint32_t k = 0; k < s->nelems; k++) survivor |= ref__is_marked(s, k);
    if (survivor && (uintptr_t)o[i].p < want) want = (uintptr_t)o[i].p;
  }
  assert_true(want != UINTPTR_MAX);
  sweep1();
  uint8_t *p = ref__heap_alloc(&pair_t, 3);
  assert_int_equal((uintptr_t)p, want);
  assert_true(all_bytes(p, 48, 0));

  size_t reused = 0;
  uint64_t rng = 99;
  for (size_t i = 0; i < n; i++) {
    size_t size = pick_size(&rng);
    uint8_t *q = ref__heap_alloc(&bytes_t, size);
    assert_non_null(q);
    assert_true(all_bytes(q, size, 0));
    reused += (uintptr_t)q < old_hi;
  }
  assert_true(reused > n / 4);
  ref__heap_check();
  free(o);
}

/* ---------------------------------------------------------------------------
 * Heap limit
 * ------------------------------------------------------------------------- */

static void test_heap_limit(void **state) {
  (void)state;
  ref__heap_shutdown();
  assert_int_equal(ref__heap_init((size_t)1 << 20, 1), 0);
  size_t count = 0;
  while (ref__heap_alloc(&noscan_t[32], 1) != NULL) count++; /* 1024 bytes, 8 per page */
  assert_int_equal(count, 1024);
  assert_string_equal(ref_error(), "heap limit 1 MiB exceeded");
  ref_heap_stats st;
  ref_heap_stats_get(&st);
  assert_int_equal(st.bytes_mapped, (size_t)1 << 20);
  assert_int_equal(st.objects_live, 1024);

  ref__seterr("x");
  assert_null(ref__heap_alloc(&bytes_t, (size_t)2 << 20));
  assert_string_equal(ref_error(), "heap limit 1 MiB exceeded");
  ref__seterr("x");
  assert_null(ref__heap_alloc(&pair_t, SIZE_MAX / 8)); /* size overflows */
  assert_string_equal(ref_error(),
                      "allocation size out of range: 2305843009213693951 elements of 16 bytes");

  ref__sweep_result r = sweep1(); /* nothing marked: everything goes */
  assert_int_equal(r.objects_freed, 1024);
  ref_heap_stats_get(&st);
  assert_int_equal(st.bytes_mapped, 0);
  assert_non_null(ref__heap_alloc(&bytes_t, 512 << 10));
  ref__heap_check();

  ref__heap_shutdown();
  assert_int_equal(ref__heap_init(0, 1), -1);
  assert_non_null(strstr(ref_error(), "heap_max"));
  assert_int_equal(ref__heap_init(TEST_HEAP_MAX, 1), 0);
}

static void test_reinit(void **state) {
  (void)state;
  for (int i = 0; i < 40; i++) {
    ref__heap_shutdown();
    assert_int_equal(ref__heap_init(TEST_HEAP_MAX, 1), 0);
    ref_heap_stats st;
    ref_heap_stats_get(&st);
    assert_int_equal(st.objects_live, 0);
    for (int k = 0; k < 100; k++) assert_non_null(ref__heap_alloc(&pair_t, (size_t)k * 7 + 1));
    assert_non_null(ref__heap_alloc(&bytes_t, 100000));
    ref_heap_stats_get(&st);
    assert_int_equal(st.objects_live, 101);
  }
}

/* ---------------------------------------------------------------------------
 * Iteration
 * ------------------------------------------------------------------------- */

static void test_iterate_allocated(void **state) {
  (void)state;
  uint8_t *p[256];
  for (int i = 0; i < 256; i++) p[i] = ref__heap_alloc(&noscan_t[1], 1); /* 8 bytes */
  ref__span *s = ref__span_of((uintptr_t)p[0]);
  for (uint32_t i = 0; i < 256; i++) {
    assert_int_equal(ref__object_base(s, i), (uintptr_t)p[i]);
    if (i % 3 == 0 || i == 130) assert_true(ref__mark_tryset(s, i));
  }
  sweep1();
  assert_int_equal(ref__heap_nspans(), 1);
  assert_ptr_equal(ref__heap_span(0), s);
  uint32_t seen = 0;
  for (uint32_t i = ref__span_next_allocated(s, 0); i < s->nelems; i = ref__span_next_allocated(s, i + 1)) {
    assert_true(i % 3 == 0 || i == 130);
    seen++;
  }
  assert_int_equal(seen, 86 + 1);
}

/* ---------------------------------------------------------------------------
 * Threads: parallel sweep, concurrent mark bits
 * ------------------------------------------------------------------------- */

typedef struct sweep_arg {
  int part, nparts;
  ref__sweep_result out;
} sweep_arg;

static void *sweep_thread(void *p) {
  sweep_arg *a = p;
  ref__heap_sweep_part(a->part, a->nparts, &a->out);
  return NULL;
}

/* FNV-1a over the arena up to the high-water mark and over the live set. */
static uint64_t heap_digest(void) {
  uint64_t h = 1469598103934665603ULL;
  for (const uint8_t *b = (const uint8_t *)ref__heap.arena_lo; b < (const uint8_t *)ref__heap.arena_hi; b++)
    h = (h ^ *b) * 1099511628211ULL;
  for (size_t i = 0; i < ref__heap_nspans(); i++) {
    ref__span *s = ref__heap_span(i);
    for (uint32_t k = ref__span_next_allocated(s, 0); k < s->nelems; k = ref__span_next_allocated(s, k + 1))
      h = (h ^ (ref__object_base(s, k) - ref__heap.arena_lo)) * 1099511628211ULL;
  }
  return h;
}

static void test_parallel_sweep(void **state) {
  (void)state;
  size_t n = 30000;
  free(build_heap(1234, n));
  ref__sweep_result one = sweep1();
  uint64_t d1 = heap_digest();
  ref_heap_stats st1;
  ref_heap_stats_get(&st1);

  ref__heap_shutdown();
  assert_int_equal(ref__heap_init(TEST_HEAP_MAX, 1), 0);
  free(build_heap(1234, n));
  assert_true(ref__heap_nspans() > 100);
  sweep_arg a[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (sweep_arg){i, 4, {0}};
    assert_int_equal(pthread_create(&th[i], NULL, sweep_thread, &a[i]), 0);
  }
  ref__sweep_result parts[4];
  ref__sweep_result sum = {0};
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    parts[i] = a[i].out;
    assert_true(parts[i].spans_swept > 0);
    sum.objects_freed += parts[i].objects_freed;
    sum.bytes_freed += parts[i].bytes_freed;
    sum.objects_live += parts[i].objects_live;
    sum.bytes_live += parts[i].bytes_live;
    sum.spans_swept += parts[i].spans_swept;
    sum.spans_emptied += parts[i].spans_emptied;
  }
  ref__heap_sweep_finish(parts, 4);
  assert_memory_equal(&sum, &one, sizeof sum);
  assert_int_equal(heap_digest(), d1);
  ref_heap_stats st4;
  ref_heap_stats_get(&st4);
  assert_memory_equal(&st4, &st1, sizeof st4);
  ref__heap_check();
}

#define MARK_THREADS 4

typedef struct mark_arg {
  ref__span **spans;
  uint32_t *idx;
  size_t n;
  int id;
  bool check;               /* checkmark bits instead of mark bits */
  pthread_barrier_t *start;
  size_t won;
} mark_arg;

static void *mark_thread(void *p) {
  mark_arg *a = p;
  pthread_barrier_wait(a->start);
  size_t from = (size_t)a->id * a->n / MARK_THREADS;
  for (size_t k = 0; k < a->n; k++) {
    size_t i = (from + (a->id & 1 ? a->n - k : k)) % a->n;
    bool won = a->check ? ref__checkmark_tryset(a->spans[i], a->idx[i])
                        : ref__mark_tryset(a->spans[i], a->idx[i]);
    a->won += won;
  }
  return NULL;
}

static size_t mark_race(ref__span **spans, uint32_t *idx, size_t n, bool check) {
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, MARK_THREADS);
  mark_arg a[MARK_THREADS];
  pthread_t th[MARK_THREADS];
  for (int t = 0; t < MARK_THREADS; t++) {
    a[t] = (mark_arg){spans, idx, n, t, check, &start, 0};
    assert_int_equal(pthread_create(&th[t], NULL, mark_thread, &a[t]), 0);
  }
  size_t won = 0;
  for (int t = 0; t < MARK_THREADS; t++) {
    pthread_join(th[t], NULL);
    won += a[t].won;
  }
  pthread_barrier_destroy(&start);
  return won;
}

static void test_concurrent_marks(void **state) {
  (void)state;
  size_t n = 20000;
  ref__span **spans = malloc(n * sizeof(ref__span *));
  uint32_t *idx = malloc(n * sizeof *idx);
  uint64_t rng = 5;
  for (size_t i = 0; i < n; i++) {
    void *p = ref__heap_alloc(&bytes_t, 1 + (size_t)ref__rand64(&rng) % 600);
    assert_int_equal(ref__find_object((uintptr_t)p, &spans[i], &idx[i]), (uintptr_t)p);
  }
  assert_int_equal(mark_race(spans, idx, n, false), n);
  assert_int_equal(mark_race(spans, idx, n, true), n);
  for (size_t i = 0; i < n; i++) {
    assert_true(ref__is_marked(spans[i], idx[i]));
    assert_true(ref__is_checkmarked(spans[i], idx[i]));
  }
  ref__checkmark_clear_all();
  for (size_t i = 0; i < n; i++) {
    assert_true(ref__is_marked(spans[i], idx[i]));
    assert_false(ref__is_checkmarked(spans[i], idx[i]));
  }
  ref__heap_check();
  ref__sweep_result r = sweep1();
  assert_int_equal(r.objects_freed, 0);
  assert_int_equal(r.objects_live, n);
  free(spans);
  free(idx);
}

/* A span answers its one type for every slot until a slot of another type
 * is allocated in it; then each slot's own, for good (heap.h: xtype1). */
static void test_span_one_type(void **state) {
  (void)state;
  static const uint64_t mask_word1[1] = {2};
  static const ref_type pair1_t = {16, mask_word1, "pair1"};
  void *a = ref__heap_alloc(&pair_t, 1), *b = ref__heap_alloc(&pair_t, 1);
  ref__span *s = ref__span_of((uintptr_t)a), *sb;
  uint32_t ia, ib, ic;
  find((uintptr_t)a, NULL, &ia);
  find((uintptr_t)b, &sb, &ib);
  assert_ptr_equal(sb, s); /* a fresh heap: both in the first 16-byte span */
  assert_ptr_equal(atomic_load(&s->xtype1), &pair_t);
  assert_ptr_equal(ref__object_type(s, ib), &pair_t);
  void *c = ref__heap_alloc(&pair1_t, 1);
  ref__span *sc;
  find((uintptr_t)c, &sc, &ic);
  assert_ptr_equal(sc, s);
  assert_ptr_equal(atomic_load(&s->xtype1), REF_SPAN_MIXED);
  assert_ptr_equal(ref__object_type(s, ia), &pair_t);
  assert_ptr_equal(ref__object_type(s, ic), &pair1_t);
  assert_ptr_equal(ref__object_type_slot(s, ic), &pair1_t);
  ref__heap_check(); /* checks every allocated slot against a span's one type */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_span_one_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_classes_find_object, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_in_heap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arrays_small, setup, teardown),
      cmocka_unit_test_setup_teardown(test_noscan_segregation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sweep_exact, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reuse_zeroed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_heap_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reinit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_iterate_allocated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parallel_sweep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_marks, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
