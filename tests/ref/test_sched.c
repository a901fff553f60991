/*
 * Goroutines and the scheduler: creation, switching, yield, sleep, park and
 * wake of 100,000 goroutines with stack reuse, sleepers under yield storms,
 * and stack overflow.
 */
#include "testutil.h"

#include "g.h" /* ref_g's deadline (when), REF_TIMER_CHECK_EVERY */

static int order[16], norder;

static void record(void *arg) {
  int id = (int)(intptr_t)arg;
  order[norder++] = id;
  ref_yield();
  order[norder++] = id + 100;
}

/* Goroutines run in creation order; yield moves to the back of the queue.
 * With one mutator: on several, the order is not defined. */
static void test_run_order_and_yield(void **state) {
  (void)state;
  tu_init_one_mutator();
  norder = 0;
  for (int i = 1; i <= 3; i++) assert_non_null(ref_go(record, (void *)(intptr_t)i));
  assert_int_equal(ref_run(), 0);
  int want[] = {1, 2, 3, 101, 102, 103};
  assert_int_equal(norder, 6);
  assert_memory_equal(order, want, sizeof want);
  ref_shutdown();
}

static void sleeper(void *arg) {
  int64_t ns = (int64_t)(intptr_t)arg;
  ref_sleep(ns);
  order[norder++] = (int)(ns / 1000000);
}

/* Sleepers wake in deadline order, whatever their creation order (one
 * mutator: on several, two woken at once may run in either order). */
static void test_sleep_order(void **state) {
  (void)state;
  tu_init_one_mutator();
  norder = 0;
  int ms[] = {30, 10, 20};
  for (int i = 0; i < 3; i++) ref_go(sleeper, (void *)(intptr_t)(ms[i] * 1000000));
  assert_int_equal(ref_run(), 0);
  assert_int_equal(norder, 3);
  assert_int_equal(order[0], 10);
  assert_int_equal(order[1], 20);
  assert_int_equal(order[2], 30);
  ref_shutdown();
}

/* The program: a 1 ms sleeper and a goroutine that yields until the
 * sleeper has run. Once, the scheduler picked the spinner again forever. */
static _Atomic bool slept;
static _Atomic bool starved;

static void sleep_then_flag(void *ns) {
  ref_sleep((int64_t)(intptr_t)ns);
  slept = true;
}

static void spin_until_slept(void *arg) {
  (void)arg;
  for (long n = 1; !slept; n++) {
    ref_yield();
    if (n == 200000000) {
      starved = true;
      return;
    }
  }
}

static void test_sleeper_runs_beside_a_spinner(void **state) {
  (void)state;
  tu_init();
  slept = starved = false;
  ref_go(sleep_then_flag, (void *)(intptr_t)1000000); /* 1 ms */
  ref_go(spin_until_slept, NULL);
  size_t parked = ref_run();
  ref_shutdown();
  assert_int_equal(parked, 0);
  assert_false(starved);
  assert_true(slept);
}

/* A yield storm: spinners count the yields they make after the sleeper's
 * deadline and before it runs. Its timer fires within REF_TIMER_CHECK_EVERY
 * switches of the deadline, and it then runs after the spinners queued
 * before it, one yield each. One mutator: the bound counts one thread's
 * switches (test_sleeper_runs_beside_a_spinner runs on every count). */
#define LATE_CAP 10000000L
static ref_g *sleeper_g;
static long late;

static void storm_spinner(void *arg) {
  (void)arg;
  if (sleeper_g->when == 0) late = LATE_CAP; /* it has not slept: no deadline to count from */
  while (!slept && late < LATE_CAP) {
    if ((int64_t)ref__nanotime() >= sleeper_g->when) late++;
    ref_yield();
  }
}

static void test_sleeper_wakes_within_bounded_switches(void **state) {
  (void)state;
  int nspin[] = {1, 2, 7, 100};
  for (size_t k = 0; k < REF_ARRAY_SIZE(nspin); k++) {
    tu_init_one_mutator();
    slept = false;
    late = 0;
    sleeper_g = ref_go(sleep_then_flag, (void *)(intptr_t)200000); /* runs first, sleeps */
    for (int i = 0; i < nspin[k]; i++) ref_go(storm_spinner, NULL);
    size_t parked = ref_run();
    ref_shutdown();
    assert_int_equal(parked, 0);
    if (late > REF_TIMER_CHECK_EVERY + nspin[k])
      fail_msg("%d spinners: %ld yields after the deadline (at most %d)", nspin[k], late,
               REF_TIMER_CHECK_EVERY + nspin[k]);
  }
}

#define NG TU_CAP_G(100000)
static ref_chan *wake_ch;
static _Atomic int exited;

static void parker(void *arg) {
  (void)arg;
  int v = 0;
  assert_true(ref_chan_recv(wake_ch, &v));
  assert_int_equal(v, 42);
  exited++;
}

static void waker(void *arg) {
  (void)arg;
  int v = 42;
  for (int i = 0; i < NG; i++) ref_chan_send(wake_ch, &v);
}

/* 100,000 goroutines (4,000 under TSan) park on a channel, are woken and
 * exit; a second round reuses their stacks instead of mapping new ones. */
static void test_100k_park_wake_reuse(void **state) {
  (void)state;
  tu_init();
  wake_ch = ref_chan_make_size(sizeof(int), 0);
  ref_add_root(&wake_ch, sizeof wake_ch);
  for (int round = 0; round < 2; round++) {
    exited = 0;
    for (int i = 0; i < NG; i++) assert_non_null(ref_go(parker, NULL));
    assert_int_equal(ref_run(), NG);
    ref_sched_stats st;
    ref_sched_stats_get(&st);
    assert_int_equal(st.waiting, NG);
    ref_gc(); /* 100,000 parked stacks, verified by the checkmark */
    assert_int_equal(ref_gc_last()->stacks_scanned, NG);
    ref_go(waker, NULL);
    assert_int_equal(ref_run(), 0);
    assert_int_equal(exited, NG);
    ref_sched_stats_get(&st);
    assert_int_equal(st.total_created, (size_t)(round + 1) * (NG + 1));
    assert_int_equal(st.stacks, NG + 1); /* round 2 ran on round 1's stacks */
    assert_int_equal(st.dead_cached, NG + 1);
  }
  ref_remove_root(&wake_ch);
  ref_shutdown();
}

static int recurse(int n) {
  volatile char pad[512];
  pad[0] = (char)n;
  return n == 0 ? pad[0] : recurse(n - 1) + pad[0];
}

static void overflow_g(void *arg) {
  (void)arg;
  recurse(1 << 20);
}

static void overflow_child(void) {
  tu_init();
  ref_go(overflow_g, NULL);
  ref_run();
}

/* A guard-page hit is reported with the goroutine and its stack size. */
static void test_stack_overflow(void **state) {
  (void)state;
  char want[96];
  ref_config def;
  ref_config_default(&def);
  snprintf(want, sizeof want, "stackscan: goroutine 1 overflowed its stack (%zu bytes)",
           def.stack_size);
  tu_expect_death(overflow_child, want);
}

static void yield_from_g0(void) {
  tu_init();
  ref_yield();
}

static void test_yield_on_scheduler_stack_aborts(void **state) {
  (void)state;
  tu_expect_death(yield_from_g0, "ref_yield called on the scheduler stack");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_run_order_and_yield),
      cmocka_unit_test(test_sleep_order),
      cmocka_unit_test(test_sleeper_runs_beside_a_spinner),
      cmocka_unit_test(test_sleeper_wakes_within_bounded_switches),
      cmocka_unit_test(test_100k_park_wake_reuse),
      cmocka_unit_test(test_stack_overflow),
      cmocka_unit_test(test_yield_on_scheduler_stack_aborts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
