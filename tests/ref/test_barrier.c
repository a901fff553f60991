/*
 * test_barrier.c: the mode switch (its table, its checks) and the write
 * barrier's API in mode stw: ref_store and ref_typedmemmove store what
 * they are given, a typed copy moves overlapping values as memmove does and
 * zeroes from NULL, and what they store keeps objects alive across cycles.
 */
#include "testutil.h"

static void test_mode_names(void **state) {
  (void)state;
  ref_mode m;
  assert_string_equal(ref_mode_name(REF_MODE_STW), "stw");
  assert_string_equal(ref_mode_name(REF_MODE_CONCURRENT_RESCAN), "concurrent-rescan");
  assert_string_equal(ref_mode_name(REF_MODE_CONCURRENT_HYBRID), "concurrent-hybrid");
  assert_null(ref_mode_name((ref_mode)REF_NMODES));
  assert_null(ref_mode_name((ref_mode)-1));
  for (int i = 0; i < REF_NMODES; i++) {
    assert_int_equal(ref_mode_parse(ref_mode_name((ref_mode)i), &m), 0);
    assert_int_equal(m, i);
  }
  m = REF_MODE_CONCURRENT_HYBRID;
  assert_int_equal(ref_mode_parse("concurrent", &m), -1);
  assert_int_equal(ref_mode_parse("", &m), -1);
  assert_int_equal(m, REF_MODE_CONCURRENT_HYBRID); /* unchanged on failure */
}

static void test_mode_default_and_check(void **state) {
  (void)state;
  ref_config cfg;
  ref_config_default(&cfg);
  assert_int_equal(cfg.mode, REF_MODE_STW);
  cfg.mode = (ref_mode)REF_NMODES;
  assert_int_equal(ref_init(&cfg), -1);
  assert_non_null(strstr(ref_error(), "unknown mode 3"));
  cfg.mode = (ref_mode)-1;
  assert_int_equal(ref_init(&cfg), -1);
  assert_non_null(strstr(ref_error(), "unknown mode"));
}

typedef struct pnode {
  uint64_t canary;
  struct pnode *next;
  void *other;
  uint64_t tail;
} pnode;
static const uint64_t pnode_mask[1] = {0x6};
static const ref_type pnode_t = {sizeof(pnode), pnode_mask, "test.pnode"};

/* Two values of four pointers and a scalar, for the overlapping copies. */
typedef struct quad {
  void *p[4];
  uint64_t x;
} quad;
static const uint64_t quad_mask[1] = {0xf};
static const ref_type quad_t_ = {sizeof(quad), quad_mask, "test.quad"};

static pnode *new_pnode(uint64_t id) {
  pnode *n = ref_alloc(&pnode_t);
  assert_non_null(n);
  n->canary = 0xc0ffee00 + id;
  return n;
}

static struct { pnode *head; } root;

/* A list built and relinked only through ref_store, then a struct copy
 * with ref_typedmemmove: every node survives checkmarked cycles. */
static void test_store_keeps_objects(void **state) {
  (void)state;
  tu_init();
  ref_add_root(&root, sizeof root);
  ref_store((void **)&root.head, new_pnode(0));
  for (uint64_t i = 1; i < 100; i++) {
    pnode *n = new_pnode(i);
    ref_store((void **)&n->next, root.head);
    ref_store((void **)&root.head, n); /* a registered root: the barrier too */
  }
  ref_gc();
  /* Reverse the list in place through the barrier. */
  pnode *prev = NULL, *cur = root.head;
  while (cur) {
    pnode *next = cur->next;
    ref_store((void **)&cur->next, prev);
    prev = cur;
    cur = next;
  }
  ref_store((void **)&root.head, prev);
  ref_gc();
  uint64_t id = 0;
  for (pnode *n = root.head; n; n = n->next, id++) assert_int_equal(n->canary, 0xc0ffee00 + id);
  assert_int_equal(id, 100);
  /* A struct copy onto the head moves its pointers and its scalars. */
  pnode copy = *root.head->next;
  ref_typedmemmove(&pnode_t, root.head, &copy);
  assert_ptr_equal(root.head->next, copy.next);
  assert_int_equal(root.head->canary, 0xc0ffee01);
  ref_gc();
  assert_int_equal(ref_gc_last()->objects_freed, 1); /* node 1: only the copy names node 2 */
  ref_remove_root(&root);
  ref_store((void **)&root.head, NULL);
}

/* ref_typedmemmove is memmove for overlapping values and zeroes from NULL. */
static void test_typedmemmove_semantics(void **state) {
  (void)state;
  tu_init();
  typedef struct arr8 {
    void *p[8];
  } arr8;
  static const uint64_t arr_mask[1] = {0xff};
  static const ref_type arr_t = {sizeof(arr8), arr_mask, "test.arr8"};
  arr8 *o = ref_alloc(&arr_t);
  assert_non_null(o);
  void **a = o->p;
  for (uintptr_t i = 0; i < 8; i++) a[i] = (void *)(0x1000 + 8 * i); /* never heap addresses */
  ref_typedmemmove(&quad_t_, a + 1, a); /* up by one word, overlapping */
  assert_ptr_equal(a[0], (void *)0x1000);
  for (uintptr_t i = 1; i <= 4; i++) assert_ptr_equal(a[i], (void *)(0x1000 + 8 * (i - 1)));
  assert_ptr_equal(a[5], (void *)0x1020); /* quad's scalar: old a[4] */
  ref_typedmemmove(&quad_t_, a, a + 1); /* and back down */
  for (uintptr_t i = 0; i < 5; i++) assert_ptr_equal(a[i], (void *)(0x1000 + 8 * i));
  quad *q = ref_alloc(&quad_t_);
  assert_non_null(q);
  memcpy(q, a, sizeof *q);
  ref_typedmemmove(&quad_t_, q, NULL);
  for (int i = 0; i < 4; i++) assert_null(q->p[i]);
  assert_int_equal(q->x, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mode_names),
      cmocka_unit_test(test_mode_default_and_check),
      cmocka_unit_test_teardown(test_store_keeps_objects, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_typedmemmove_semantics, tu_teardown_shutdown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
