/*
 * test_workbuf.c: the lock-free stack under contention, the global buffer
 * lists, and the per-worker buffer pair (single-threaded properties, balance,
 * and items flowing between threads exactly once).
 *
 * Threads never call cmocka asserts (not thread-safe): they count failures in
 * atomics that the main thread checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "workbuf.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Lock-free stack stress
 * ------------------------------------------------------------------------- */

#define LF_THREADS 8
#define LF_NODES 24 /* few enough that the stack often runs dry */
#define LF_HOLD 4   /* nodes a thread may hold at once */
/* Push/pop operations per thread: the full 10^6 in every build. Not scaled
 * down under TSan (REF_TSAN): the whole file takes about 4 s there. */
#define LF_OPS 1000000

typedef struct lf_item {
  ref__lfnode node; /* first, so a node pointer is an item pointer */
  _Atomic int owner; /* thread id + 1 while popped, 0 while on the stack */
} lf_item;

static ref__lfstack lf_stack;
static lf_item lf_pool[LF_NODES];
static _Atomic long lf_double_pops;  /* popped a node some thread already held */
static _Atomic long lf_bad_owner;    /* a held node's owner flag changed under us */
static _Atomic long lf_empty_pops;   /* pops that found the stack empty */

static void lf_push_held(lf_item *it, int me) {
  if (atomic_exchange(&it->owner, 0) != me)
    atomic_fetch_add(&lf_bad_owner, 1);
  ref__lfstack_push(&lf_stack, &it->node);
}

static void *lf_worker(void *arg) {
  int me = (int)(intptr_t)arg + 1;
  uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)me;
  lf_item *held[LF_HOLD];
  int nheld = 0;
  for (long op = 0; op < LF_OPS; op++) {
    bool pop = nheld == 0 || (nheld < LF_HOLD && (ref__rand64(&rng) & 1));
    if (pop) {
      lf_item *it = (lf_item *)ref__lfstack_pop(&lf_stack);
      if (it == NULL) {
        atomic_fetch_add_explicit(&lf_empty_pops, 1, memory_order_relaxed);
        continue;
      }
      if (atomic_exchange(&it->owner, me) != 0)
        atomic_fetch_add(&lf_double_pops, 1);
      held[nheld++] = it;
    } else {
      size_t k = ref__rand64(&rng) % (uint64_t)nheld; /* not always LIFO */
      lf_item *it = held[k];
      held[k] = held[--nheld];
      lf_push_held(it, me);
    }
  }
  while (nheld > 0)
    lf_push_held(held[--nheld], me);
  return NULL;
}

static void test_lfstack_stress(void **state) {
  (void)state;
  for (int i = 0; i < LF_NODES; i++)
    ref__lfstack_push(&lf_stack, &lf_pool[i].node);
  pthread_t th[LF_THREADS];
  for (int i = 0; i < LF_THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, lf_worker, (void *)(intptr_t)i), 0);
  for (int i = 0; i < LF_THREADS; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&lf_double_pops), 0);
  assert_int_equal(atomic_load(&lf_bad_owner), 0);

  /* Every node exactly once: nothing lost, nothing duplicated. */
  int seen[LF_NODES] = {0};
  int n = 0;
  lf_item *it;
  while ((it = (lf_item *)ref__lfstack_pop(&lf_stack)) != NULL) {
    ptrdiff_t idx = it - lf_pool;
    assert_true(idx >= 0 && idx < LF_NODES);
    assert_int_equal(seen[idx], 0);
    seen[idx] = 1;
    assert_int_equal(atomic_load(&it->owner), 0);
    assert_true(++n <= LF_NODES);
  }
  assert_int_equal(n, LF_NODES);
  assert_true(ref__lfstack_empty(&lf_stack));
  print_message("lfstack: %d threads x %d ops, %ld empty pops\n", LF_THREADS, LF_OPS,
                atomic_load(&lf_empty_pops));
}

static void test_lfstack_basic(void **state) {
  (void)state;
  ref__lfstack s = {0};
  lf_item a = {0}, b = {0};
  assert_true(ref__lfstack_empty(&s));
  assert_null(ref__lfstack_pop(&s));
  ref__lfstack_push(&s, &a.node);
  ref__lfstack_push(&s, &b.node);
  assert_false(ref__lfstack_empty(&s));
  assert_ptr_equal(ref__lfstack_pop(&s), &b.node); /* LIFO */
  assert_ptr_equal(ref__lfstack_pop(&s), &a.node);
  assert_null(ref__lfstack_pop(&s));
  assert_true(ref__lfstack_empty(&s));
  assert_int_equal(a.node.pushcnt, 1);
}

/* ---------------------------------------------------------------------------
 * Global lists
 * ------------------------------------------------------------------------- */

/* Each test leaves the lists as it found them: nothing held, then unmapped. */
static int teardown_lists(void **state) {
  (void)state;
  ref__wbuf_shutdown();
  return 0;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* More buffers than one chunk holds: all distinct, non-overlapping, empty. */
static void test_lists_getempty_distinct(void **state) {
  (void)state;
  enum { N = 300 };
  static uintptr_t bufs[N];
  assert_int_equal(sizeof(ref__workbuf), 2048);
  assert_true(REF_WORKBUF_NOBJ >= 250);
  for (int round = 0; round < 2; round++) { /* the second round recycles */
    for (int i = 0; i < N; i++) {
      ref__workbuf *b = ref__wbuf_getempty();
      assert_int_equal(b->nobj, 0);
      assert_int_equal((uintptr_t)b % 8, 0);
      b->obj[REF_WORKBUF_NOBJ - 1] = (uintptr_t)i + 1; /* touch the whole range */
      bufs[i] = (uintptr_t)b;
    }
    qsort(bufs, N, sizeof bufs[0], cmp_ptr);
    for (int i = 1; i < N; i++)
      assert_true(bufs[i] - bufs[i - 1] >= sizeof(ref__workbuf));
    for (int i = 0; i < N; i++)
      ref__wbuf_putempty((ref__workbuf *)bufs[i]);
  }
}

static void test_lists_full_count(void **state) {
  (void)state;
  assert_int_equal(ref__wbuf_nfull(), 0);
  assert_null(ref__wbuf_tryget_full());
  ref__workbuf *a = ref__wbuf_getempty(), *b = ref__wbuf_getempty();
  a->obj[a->nobj++] = 11;
  b->obj[b->nobj++] = 22;
  ref__wbuf_putfull(a);
  assert_int_equal(ref__wbuf_nfull(), 1);
  ref__wbuf_putfull(b);
  assert_int_equal(ref__wbuf_nfull(), 2);
  assert_ptr_equal(ref__wbuf_tryget_full(), b);
  assert_int_equal(ref__wbuf_nfull(), 1);
  assert_ptr_equal(ref__wbuf_tryget_full(), a);
  assert_int_equal(ref__wbuf_nfull(), 0);
  assert_null(ref__wbuf_tryget_full());
  a->nobj = b->nobj = 0;
  ref__wbuf_putempty(a);
  ref__wbuf_putempty(b);
}

/* Shutdown, then the lists work again from scratch, several times. */
static void test_lists_init_shutdown_cycles(void **state) {
  (void)state;
  for (int cycle = 0; cycle < 5; cycle++) {
    ref__gcwork w = {0};
    for (uintptr_t i = 1; i <= 1000; i++)
      ref__gcw_put(&w, i);
    ref__gcw_dispose(&w);
    assert_true(ref__wbuf_nfull() > 0);
    ref__wbuf_shutdown();
    assert_int_equal(ref__wbuf_nfull(), 0);
    assert_null(ref__wbuf_tryget_full());
  }
}

/* ---------------------------------------------------------------------------
 * Per-worker pair, single-threaded
 * ------------------------------------------------------------------------- */

static void test_gcw_zero_is_empty(void **state) {
  (void)state;
  ref__gcwork w = {0};
  assert_true(ref__gcw_empty(&w));
  assert_int_equal(ref__gcw_tryget(&w), 0);
  assert_int_equal(ref__gcw_tryget_fast(&w), 0);
  assert_null(w.wbuf1); /* a failed get allocates nothing */
  assert_null(w.wbuf2);
  ref__gcw_balance(&w);
  ref__gcw_dispose(&w);
  assert_int_equal(ref__wbuf_nfull(), 0);
}

static void test_gcw_lifo_within_buffer(void **state) {
  (void)state;
  ref__gcwork w = {0};
  for (uintptr_t i = 1; i <= 10; i++)
    ref__gcw_put(&w, i);
  assert_false(ref__gcw_empty(&w));
  assert_true((w.wbuf1 == NULL) == (w.wbuf2 == NULL));
  for (uintptr_t i = 10; i >= 1; i--)
    assert_int_equal(ref__gcw_tryget(&w), i);
  assert_int_equal(ref__gcw_tryget(&w), 0);
  assert_true(ref__gcw_empty(&w));
  assert_int_equal(w.bufs_given, 0);
  ref__gcw_dispose(&w);
}

/* Puts K items spanning several buffers, gets each back exactly once. */
static void check_put_get_all(bool batch) {
  enum { K = 3 * (int)REF_WORKBUF_NOBJ + 7 };
  static uintptr_t items[K];
  static unsigned char seen[K + 1];
  memset(seen, 0, sizeof seen);
  ref__gcwork w = {0};
  for (int i = 0; i < K; i++)
    items[i] = (uintptr_t)i + 1;
  if (batch) {
    ref__gcw_put_batch(&w, items, 5);
    ref__gcw_put_batch(&w, items + 5, K - 5);
  } else {
    for (int i = 0; i < K; i++)
      ref__gcw_put(&w, items[i]);
  }
  assert_true(w.bufs_given >= 1);
  assert_int_equal(ref__wbuf_nfull(), w.bufs_given);
  uintptr_t v;
  int n = 0;
  while ((v = ref__gcw_tryget(&w)) != 0) {
    assert_true(v >= 1 && v <= K);
    assert_int_equal(seen[v], 0);
    seen[v] = 1;
    n++;
    assert_true((w.wbuf1 == NULL) == (w.wbuf2 == NULL));
  }
  assert_int_equal(n, K);
  assert_true(ref__gcw_empty(&w));
  assert_int_equal(w.bufs_taken, w.bufs_given); /* took back all it gave */
  assert_int_equal(ref__wbuf_nfull(), 0);
  ref__gcw_dispose(&w);
  assert_null(w.wbuf1);
  assert_null(w.wbuf2);
}

static void test_gcw_put_get_count(void **state) {
  (void)state;
  check_put_get_all(false);
}

static void test_gcw_put_batch(void **state) {
  (void)state;
  check_put_get_all(true);
}

/* Two full local buffers: the third fill publishes exactly one. */
static void test_gcw_publishes_when_both_full(void **state) {
  (void)state;
  ref__gcwork w = {0};
  for (uintptr_t i = 1; i <= 2 * REF_WORKBUF_NOBJ; i++)
    ref__gcw_put(&w, i);
  assert_int_equal(w.bufs_given, 0);
  assert_int_equal(ref__wbuf_nfull(), 0);
  ref__gcw_put(&w, 99999);
  assert_int_equal(w.bufs_given, 1);
  assert_int_equal(ref__wbuf_nfull(), 1);
  /* Local items come first, the published buffer last. */
  for (size_t i = 0; i < REF_WORKBUF_NOBJ + 1; i++)
    assert_int_not_equal(ref__gcw_tryget_fast(&w), 0);
  assert_int_equal(ref__gcw_tryget_fast(&w), 0);
  assert_int_equal(ref__wbuf_nfull(), 1);
  assert_int_not_equal(ref__gcw_tryget(&w), 0);
  assert_int_equal(w.bufs_taken, 1);
  while (ref__gcw_tryget(&w) != 0) {
  }
  ref__gcw_dispose(&w);
}

static void test_gcw_dispose_publishes(void **state) {
  (void)state;
  enum { K = (int)REF_WORKBUF_NOBJ + 47 };
  ref__gcwork a = {0}, b = {0};
  for (uintptr_t i = 1; i <= K; i++)
    ref__gcw_put(&a, i);
  ref__gcw_dispose(&a);
  assert_null(a.wbuf1);
  assert_null(a.wbuf2);
  assert_int_equal(a.bufs_given, 2); /* one full and one partial buffer */
  assert_int_equal(ref__wbuf_nfull(), 2);
  uintptr_t sum = 0;
  int n = 0;
  for (uintptr_t v; (v = ref__gcw_tryget(&b)) != 0; n++)
    sum += v;
  assert_int_equal(n, K);
  assert_int_equal(sum, (uintptr_t)K * (K + 1) / 2);
  assert_int_equal(b.bufs_taken, 2);
  ref__gcw_dispose(&b);
  assert_int_equal(b.bufs_given, 0); /* both were empty */
}

static void test_gcw_balance_publishes_wbuf2(void **state) {
  (void)state;
  ref__gcwork w = {0}, thief = {0};
  for (uintptr_t i = 1; i <= REF_WORKBUF_NOBJ + 10; i++)
    ref__gcw_put(&w, i); /* wbuf2 full, wbuf1 holds 10 */
  ref__gcw_balance(&w);
  assert_int_equal(w.bufs_given, 1);
  assert_int_equal(ref__wbuf_nfull(), 1);
  assert_int_equal(w.wbuf2->nobj, 0);
  assert_int_equal(w.wbuf1->nobj, 10);
  int n = 0;
  while (ref__gcw_tryget(&thief) != 0)
    n++;
  assert_int_equal(n, (int)REF_WORKBUF_NOBJ);
  ref__gcw_dispose(&thief);
  for (n = 0; ref__gcw_tryget(&w) != 0;)
    n++;
  assert_int_equal(n, 10);
  ref__gcw_dispose(&w);
}

static void test_gcw_balance_splits_wbuf1(void **state) {
  (void)state;
  ref__gcwork w = {0}, thief = {0};
  for (uintptr_t i = 1; i <= 4; i++)
    ref__gcw_put(&w, i);
  ref__gcw_balance(&w); /* 4 items: too few to share */
  assert_int_equal(w.bufs_given, 0);
  assert_int_equal(ref__wbuf_nfull(), 0);
  for (uintptr_t i = 5; i <= 11; i++)
    ref__gcw_put(&w, i);
  ref__gcw_balance(&w); /* 11 items: 5 stay, 6 are published */
  assert_int_equal(w.bufs_given, 1);
  assert_int_equal(ref__wbuf_nfull(), 1);
  uintptr_t mine = 0, stolen = 0;
  int nmine = 0, nstolen = 0;
  for (uintptr_t v; (v = ref__gcw_tryget_fast(&w)) != 0; nmine++)
    mine += v;
  for (uintptr_t v; (v = ref__gcw_tryget(&thief)) != 0; nstolen++)
    stolen += v;
  assert_int_equal(nmine, 5);
  assert_int_equal(nstolen, 6);
  assert_int_equal(mine + stolen, 66); /* 1 + ... + 11: nothing lost */
  assert_int_equal(mine, 7 + 8 + 9 + 10 + 11); /* the top half stays local */
  ref__gcw_dispose(&w);
  ref__gcw_dispose(&thief);
}

/* ---------------------------------------------------------------------------
 * Per-worker pair, across threads
 * ------------------------------------------------------------------------- */

#define MP_PRODUCERS 4
#define MP_CONSUMERS 4
#define MP_PER_PRODUCER ((uintptr_t)100000)
#define MP_TOTAL (MP_PRODUCERS * MP_PER_PRODUCER)

static _Atomic uint64_t mp_seen[MP_TOTAL / 64 + 1];
static _Atomic uintptr_t mp_got;
static _Atomic long mp_dups;
static _Atomic long mp_bad;

/* Records item v (1-based) as got; counts duplicates and strays. */
static void mp_record(uintptr_t v) {
  if (v < 1 || v > MP_TOTAL) {
    atomic_fetch_add(&mp_bad, 1);
    return;
  }
  uint64_t bit = UINT64_C(1) << ((v - 1) % 64);
  if (atomic_fetch_or(&mp_seen[(v - 1) / 64], bit) & bit)
    atomic_fetch_add(&mp_dups, 1);
  atomic_fetch_add(&mp_got, 1);
}

static void mp_reset(void) {
  for (size_t i = 0; i < REF_ARRAY_SIZE(mp_seen); i++)
    atomic_store(&mp_seen[i], 0);
  atomic_store(&mp_got, 0);
  atomic_store(&mp_dups, 0);
  atomic_store(&mp_bad, 0);
}

static void mp_check_all_seen(void) {
  assert_int_equal(atomic_load(&mp_got), MP_TOTAL);
  assert_int_equal(atomic_load(&mp_dups), 0);
  assert_int_equal(atomic_load(&mp_bad), 0);
  for (uintptr_t v = 1; v <= MP_TOTAL; v++)
    assert_true(atomic_load(&mp_seen[(v - 1) / 64]) & (UINT64_C(1) << ((v - 1) % 64)));
  assert_int_equal(ref__wbuf_nfull(), 0);
}

static void *mp_producer(void *arg) {
  uintptr_t base = (uintptr_t)arg * MP_PER_PRODUCER;
  ref__gcwork w = {0};
  for (uintptr_t i = 1; i <= MP_PER_PRODUCER; i++)
    ref__gcw_put(&w, base + i);
  ref__gcw_dispose(&w);
  return NULL;
}

static void *mp_consumer(void *arg) {
  (void)arg;
  ref__gcwork w = {0};
  while (atomic_load(&mp_got) < MP_TOTAL) {
    uintptr_t v = ref__gcw_tryget(&w);
    if (v == 0)
      sched_yield();
    else
      mp_record(v);
  }
  ref__gcw_dispose(&w);
  return NULL;
}

static void test_gcw_producers_consumers(void **state) {
  (void)state;
  mp_reset();
  pthread_t p[MP_PRODUCERS], c[MP_CONSUMERS];
  for (int i = 0; i < MP_CONSUMERS; i++)
    assert_int_equal(pthread_create(&c[i], NULL, mp_consumer, NULL), 0);
  for (int i = 0; i < MP_PRODUCERS; i++)
    assert_int_equal(pthread_create(&p[i], NULL, mp_producer, (void *)(intptr_t)i), 0);
  for (int i = 0; i < MP_PRODUCERS; i++)
    pthread_join(p[i], NULL);
  for (int i = 0; i < MP_CONSUMERS; i++)
    pthread_join(c[i], NULL);
  mp_check_all_seen();
}

/* A marking-shaped load: items are the nodes of the implicit binary tree on
 * 1..MP_TOTAL (children of v: 2v, 2v+1); each worker gets a node, puts its
 * children, and balances now and then. Every node must be got exactly once. */
static void *tree_worker(void *arg) {
  ref__gcwork w = {0};
  if ((intptr_t)arg == 0)
    ref__gcw_put(&w, 1);
  uint64_t rng = 0x5DEECE66Dull + (uint64_t)(intptr_t)arg;
  while (atomic_load(&mp_got) < MP_TOTAL) {
    uintptr_t v = ref__gcw_tryget(&w);
    if (v == 0) {
      sched_yield();
      continue;
    }
    mp_record(v);
    if (2 * v <= MP_TOTAL)
      ref__gcw_put(&w, 2 * v);
    if (2 * v + 1 <= MP_TOTAL)
      ref__gcw_put(&w, 2 * v + 1);
    if (ref__rand64(&rng) % 64 == 0 && ref__wbuf_nfull() == 0)
      ref__gcw_balance(&w);
  }
  ref__gcw_dispose(&w);
  return NULL;
}

static void test_gcw_tree_with_balance(void **state) {
  (void)state;
  mp_reset();
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, tree_worker, (void *)(intptr_t)i), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  mp_check_all_seen();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lfstack_basic),
      cmocka_unit_test(test_lfstack_stress),
      cmocka_unit_test_teardown(test_lists_getempty_distinct, teardown_lists),
      cmocka_unit_test_teardown(test_lists_full_count, teardown_lists),
      cmocka_unit_test_teardown(test_lists_init_shutdown_cycles, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_zero_is_empty, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_lifo_within_buffer, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_put_get_count, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_put_batch, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_publishes_when_both_full, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_dispose_publishes, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_balance_publishes_wbuf2, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_balance_splits_wbuf1, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_producers_consumers, teardown_lists),
      cmocka_unit_test_teardown(test_gcw_tree_with_balance, teardown_lists),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
