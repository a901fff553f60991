/*
 * test_sizes.c: every size and count a caller passes is checked (ref.h,
 * "Bad sizes"): a call with a failure value refuses it with a one-line
 * error and changes nothing; a call without one aborts with the message.
 */
#include "testutil.h"

#include "heap.h" /* ref__find_object: whether an address is a heap object */

#include <stdbool.h>

static const uint64_t ptr_mask[1] = {0x1};
static const ref_type ptr_t = {sizeof(void *), ptr_mask, "test.ptr"};
static const ref_type byte_t = {1, NULL, "test.byte"};

#define HEAP_MAX ((size_t)64 << 20)

static void init_small_heap(void) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
  cfg.heap_max = HEAP_MAX;
  tu_start(&cfg);
}

static void expect_error(const char *want) {
  if (!strstr(ref_error(), want)) fail_msg("ref_error() lacks \"%s\": %s", want, ref_error());
}

/* ---------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------- */

/* ref_set_strategy checks its values as ref_init does and changes nothing
 * on a bad one: once, phase 3 made the next cycle scan no roots and free a
 * globally rooted object. */
static void test_set_strategy_validates(void **state) {
  (void)state;
  tu_init_with(REF_PHASE_PARALLEL, REF_SCAN_FRAMES, REF_MAPS_PCTAB, 2);
  static void *root;
  ref_add_root(&root, sizeof root);
  root = ref_alloc(&ptr_t);
  int bad[][3] = {{3, 0, 0}, {-1, 0, 0}, {0, 2, 0}, {0, -1, 0}, {0, 0, 3}, {0, 0, -1}};
  for (size_t k = 0; k < REF_ARRAY_SIZE(bad); k++) {
    ref__seterr("x");
    assert_int_equal(ref_set_strategy((ref_phase)bad[k][0], (ref_scan)bad[k][1],
                                      (ref_stackmaps)bad[k][2]),
                     -1);
    expect_error("unknown stack-scanning strategy");
    const ref_config *c = ref_get_config();
    assert_int_equal(c->phase, REF_PHASE_PARALLEL);
    assert_int_equal(c->scan, REF_SCAN_FRAMES);
    assert_int_equal(c->stackmaps, REF_MAPS_PCTAB);
    ref_gc();
    assert_int_equal(ref_gc_last()->objects_freed, 0);
  }
  assert_int_equal(ref_set_strategy(REF_PHASE_ROOTJOBS, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT), 0);
  assert_int_equal(ref_get_config()->phase, REF_PHASE_ROOTJOBS);
  ref_remove_root(&root);
  ref_shutdown();
}

/* The prefetch distances: out of range fails with the limit named, at
 * ref_init and at ref_set_prefetch (nothing changed); 0 is the default. */
static void test_prefetch_distances_validated(void **state) {
  (void)state;
  int bad[][3] = {{-1, 0, 0}, {REF_MAX_PREFETCH_AHEAD + 1, 0, 0}, {0, -1, 0},
                  {0, REF_MAX_PREFETCH_AHEAD + 1, 0}, {0, 0, -1}, {0, 0, REF_MAX_PREFETCH_LINES + 1}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    ref_config cfg;
    ref_config_default(&cfg);
    cfg.walk_ahead = bad[k][0];
    cfg.lines_ahead = bad[k][1];
    cfg.prefetch_lines = bad[k][2];
    assert_int_equal(ref_init(&cfg), -1);
    expect_error("prefetch");
  }
  tu_init_with(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_PCTAB, 1);
  const ref_config *c = ref_get_config();
  assert_int_equal(c->walk_ahead, 8);
  assert_int_equal(c->lines_ahead, 3);
  assert_int_equal(c->prefetch_lines, 8);
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    assert_int_equal(ref_set_prefetch(bad[k][0], bad[k][1], bad[k][2]), -1);
    expect_error("prefetch");
    assert_int_equal(c->walk_ahead, 8);
  }
  assert_int_equal(ref_set_prefetch(REF_MAX_PREFETCH_AHEAD, 1, REF_MAX_PREFETCH_LINES), 0);
  assert_int_equal(c->walk_ahead, REF_MAX_PREFETCH_AHEAD);
  assert_int_equal(c->lines_ahead, 1);
  ref_gc();
  ref_shutdown();
}

/* Every size in ref_config is checked up front, the limit in the message:
 * a 1 TiB stack was accepted, SIZE_MAX wrapped to "too small" and 2^59
 * overflowed the stack-chunk length. */
static void test_config_sizes(void **state) {
  (void)state;
  size_t bad_stacks[] = {0, REF_MIN_STACK_SIZE - 1, REF_MAX_STACK_SIZE + 1, (size_t)1 << 40,
                         (size_t)1 << 59, SIZE_MAX};
  for (size_t k = 0; k < REF_ARRAY_SIZE(bad_stacks); k++) {
    ref_config cfg;
    tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
    cfg.stack_size = bad_stacks[k];
    assert_int_equal(ref_init(&cfg), -1);
    char want[128];
    snprintf(want, sizeof want, "stack_size %zu out of range [%zu, %zu] (16 KiB to 1 GiB)",
             bad_stacks[k], REF_MIN_STACK_SIZE, REF_MAX_STACK_SIZE);
    assert_string_equal(ref_error(), want);
  }
  size_t bad_heaps[] = {0, REF_MIN_HEAP - 1, REF_MAX_HEAP + 1, SIZE_MAX};
  for (size_t k = 0; k < REF_ARRAY_SIZE(bad_heaps); k++) {
    ref_config cfg;
    tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
    cfg.heap_max = bad_heaps[k];
    cfg.mem_max = SIZE_MAX;
    assert_int_equal(ref_init(&cfg), -1);
    expect_error("heap_max");
    expect_error("out of range [1048576, 1099511627776] (1 MiB to 1 TiB)");
  }
  ref_config cfg; /* the limits themselves are fine */
  tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
  cfg.stack_size = REF_MIN_STACK_SIZE;
  cfg.heap_max = REF_MIN_HEAP;
  tu_start(&cfg);
  ref_shutdown();
  cfg.stack_size = REF_MAX_STACK_SIZE;
  tu_start(&cfg);
  ref_shutdown();
}

/* mem_max bounds what ref_init commits to up front, the heap limit (no
 * stack is reserved before the first ref_go); 0 means 3/4 of physical
 * memory, which the default heap limit fits. */
static void test_mem_max(void **state) {
  (void)state;
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
  cfg.heap_max = (size_t)128 << 20;
  cfg.mem_max = (size_t)64 << 20;
  assert_int_equal(ref_init(&cfg), -1);
  assert_string_equal(ref_error(), "heap_max 134217728 bytes exceeds mem_max 67108864 bytes");
  cfg.heap_max = cfg.mem_max;
  tu_start(&cfg);
  ref_shutdown();

  size_t phys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
  size_t mem_default = phys / 4 * 3;
  cfg.mem_max = 0;
  if (mem_default < REF_MAX_HEAP) {
    cfg.heap_max = mem_default + 1;
    assert_int_equal(ref_init(&cfg), -1);
    char want[128];
    snprintf(want, sizeof want,
             "heap_max %zu bytes exceeds mem_max %zu bytes (3/4 of physical memory)",
             mem_default + 1, mem_default);
    assert_string_equal(ref_error(), want);
  }
  ref_config def;
  ref_config_default(&def);
  assert_true(def.heap_max <= mem_default);
  tu_start(&def);
  ref_shutdown();
}

/* ---------------------------------------------------------------------------
 * Allocation and channel sizes
 * ------------------------------------------------------------------------- */

/* n * size overflowing is refused with its own message, and at once: no
 * collection can make it fit, and neither can one make room for an object
 * above the heap limit. */
static void test_alloc_array_overflow(void **state) {
  (void)state;
  init_small_heap();
  uint64_t c0 = ref_gc_last()->cycle;
  assert_null(ref_alloc_array(&ptr_t, SIZE_MAX / 8 + 2));
  expect_error("allocation size out of range: 2305843009213693953 elements of 8 bytes");
  assert_null(ref_alloc_array(&ptr_t, ((size_t)1 << 61) + 1));
  expect_error("allocation size out of range");
  assert_null(ref_alloc_array(&byte_t, HEAP_MAX + 1));
  expect_error("heap limit 64 MiB exceeded");
  assert_int_equal(ref_gc_last()->cycle, c0);
  assert_non_null(ref_alloc_array(&ptr_t, 1000));
  ref_shutdown();
}

/* The case: 8-byte elements with cap 2^61 + 1 made an 8-byte buffer
 * and a channel that accepted sends over its neighbours. */
static void test_chan_make_out_of_range(void **state) {
  (void)state;
  init_small_heap();
  size_t caps[] = {((size_t)1 << 61) + 1, SIZE_MAX, SIZE_MAX / 8, HEAP_MAX / 8 + 1};
  for (size_t k = 0; k < REF_ARRAY_SIZE(caps); k++) {
    ref__seterr("x");
    assert_null(ref_chan_make_size(8, caps[k]));
    expect_error("makechan: size out of range");
    ref__seterr("x");
    assert_null(ref_chan_make(&ptr_t, caps[k]));
    expect_error("makechan: size out of range");
  }
  assert_null(ref_chan_make_size(SIZE_MAX, 2));
  expect_error("makechan: size out of range: 2 elements of 18446744073709551615 bytes "
               "(heap limit 64 MiB)");
  ref_chan *c = ref_chan_make_size(8, HEAP_MAX / 16);
  assert_non_null(c);
  assert_int_equal(ref_chan_cap(c), HEAP_MAX / 16);
  ref_shutdown();
}

/* ---------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------- */

static bool in_heap(const void *p) {
  ref__span *s;
  uint32_t idx;
  return ref__find_object((uintptr_t)p, &s, &idx) != 0;
}

/* A type with pointers whose size is not a multiple of 8 is refused: its
 * elements' words would not line up with its bitmap (a 12-byte type with
 * word 0 a pointer lost the children of elements 1 and 3). The same sizes
 * without pointers are fine. A 16-byte pointer type goes first, so that the
 * refused types' class has a loaded allocation cache (the fast path). */
static void test_odd_size_pointer_types(void **state) {
  (void)state;
  init_small_heap();
  static const uint64_t mask2[80] = {0x3}, mask0[80] = {0}; /* bitmaps for up to 40 KiB */
  ref_type two = {16, mask2, "test.two"};
  assert_non_null(ref_alloc(&two));
  uint64_t c0 = ref_gc_last()->cycle;
  size_t sizes[] = {1, 4, 7, 9, 12, 15, 20, 100, 1001, 40004};
  for (size_t k = 0; k < REF_ARRAY_SIZE(sizes); k++) {
    ref_type odd = {sizes[k], mask2, "test.odd"};
    ref__seterr("x");
    assert_null(ref_alloc(&odd));
    char want[96];
    snprintf(want, sizeof want, "type test.odd has pointers and %zu bytes, not a multiple of 8",
             sizes[k]);
    assert_string_equal(ref_error(), want);
    assert_null(ref_alloc_array(&odd, 4));
    assert_string_equal(ref_error(), want);
    assert_null(ref_chan_make(&odd, 4));
    ref_type plain = {sizes[k], NULL, "test.plain"}, zeros = {sizes[k], mask0, "test.zeros"};
    assert_non_null(ref_alloc_array(&plain, 4));
    assert_non_null(ref_alloc_array(&zeros, 4));
  }
  assert_int_equal(ref_gc_last()->cycle, c0); /* refusals do not collect */
  ref_shutdown();
}

/* 0-byte objects (Go's struct{}): each a distinct object of the smallest
 * class, kept while reachable and freed when not. */
static void test_zero_size_objects(void **state) {
  (void)state;
  init_small_heap();
  static const ref_type empty_t = {0, NULL, "test.empty"}, empty_ptr_t = {0, ptr_mask, "e"};
  static void *root[4];
  ref_add_root(root, sizeof root);
  root[0] = ref_alloc(&empty_t);
  root[1] = ref_alloc(&empty_ptr_t);
  root[2] = ref_alloc_array(&empty_t, SIZE_MAX);
  void *garbage = ref_alloc(&empty_t);
  for (int i = 0; i < 3; i++) {
    assert_true(in_heap(root[i]));
    assert_ptr_not_equal(root[i], garbage);
  }
  assert_ptr_not_equal(root[0], root[1]);
  garbage = NULL;
  size_t live = 0;
  ref_gc();
  assert_true(ref_gc_last()->objects_freed >= 1);
  for (int i = 0; i < 3; i++) live += in_heap(root[i]);
  assert_int_equal(live, 3);
  void *z = root[0];
  ref_chan *c = ref_chan_make(&empty_t, 3); /* a channel of them */
  assert_non_null(c);
  ref_chan_send(c, z);
  assert_int_equal(ref_chan_len(c), 1);
  ref_remove_root(root);
  ref_shutdown();
}

/* ---------------------------------------------------------------------------
 * Counts of calls without a failure value: they abort
 * ------------------------------------------------------------------------- */

static ref_case *nil_cases(int n) {
  ref_case *cs = calloc((size_t)n, sizeof *cs);
  assert_non_null(cs);
  return cs;
}

static void select_negative_child(void) {
  tu_init();
  ref_case cs[1] = {{NULL, REF_RECV, NULL, false}};
  ref_select(cs, -1, true);
}

static void select_too_many_child(void) {
  tu_init();
  ref_select(nil_cases(REF_MAX_SELECT_CASES + 1), REF_MAX_SELECT_CASES + 1, true);
}

static void select_null_cases_child(void) {
  tu_init();
  ref_select(NULL, 1, true);
}

static void test_select_case_count(void **state) {
  (void)state;
  tu_expect_death(select_negative_child, "select: -1 cases");
  tu_expect_death(select_too_many_child, "select: 65537 cases");
  tu_expect_death(select_null_cases_child, "select: 1 cases at (nil)");
  tu_init();
  ref_case *cs = nil_cases(REF_MAX_SELECT_CASES); /* the limit itself is fine */
  assert_int_equal(ref_select(cs, REF_MAX_SELECT_CASES, true), -1);
  assert_int_equal(ref_select(cs, 0, true), -1);
  free(cs);
  ref_shutdown();
}

static void add_root_wrap_child(void) {
  tu_init();
  static uint64_t word;
  ref_add_root(&word, SIZE_MAX);
}

static void test_add_root_wraps(void **state) {
  (void)state;
  tu_expect_death(add_root_wrap_child, "ref_add_root: [");
}

/* ref_sleep(INT64_MAX): its deadline wrapped negative and it woke at once.
 * It must sleep (forever, for this test's purposes): the child exits with
 * its verdict once a spinner has switched past many timer checks. */
static volatile bool woke;

static void sleep_forever(void *arg) {
  (void)arg;
  ref_sleep(INT64_MAX);
  woke = true;
}

static void spin_then_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < 100000 && !woke; i++) ref_yield();
  fputs(woke ? "sleeper woke early\n" : "sleeper still asleep\n", stderr);
  _exit(3);
}

static void sleep_max_child(void) {
  tu_init();
  ref_go(sleep_forever, NULL);
  ref_go(spin_then_exit, NULL);
  ref_run();
}

static void gc_before_init_child(void) { ref_gc(); }

static void gc_after_shutdown_child(void) {
  tu_init();
  ref_shutdown();
  ref_gc();
}

/* ref_gc() with no runtime aborts with a message, as every other call does;
 * it used to segfault on the missing scheduler state. */
static void test_gc_without_runtime(void **state) {
  (void)state;
  tu_expect_death(gc_before_init_child, "ref_gc called with no runtime");
  tu_expect_death(gc_after_shutdown_child, "ref_gc called with no runtime");
}

static void test_sleep_max(void **state) {
  (void)state;
  tu_expect_death(sleep_max_child, "sleeper still asleep");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_set_strategy_validates, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_config_sizes, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_prefetch_distances_validated, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_mem_max, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_alloc_array_overflow, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_chan_make_out_of_range, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_odd_size_pointer_types, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_zero_size_objects, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_select_case_count, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_add_root_wraps, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_gc_without_runtime, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_sleep_max, tu_teardown_shutdown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
