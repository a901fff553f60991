/*
 * Channel and select semantics, as Go defines them. Goroutines record what
 * they saw in arrival order; with several mutators that order is the
 * threads' (a channel's own order is still FIFO, but two receivers on two
 * threads record theirs in either order), so checks of an order sort the
 * record first there (got_in_order). test_chan_mn.c has the cross-thread
 * races.
 */
#include "testutil.h"

static ref_chan *ch, *ch2;
static int got[64];
static _Atomic int ngot;
static bool oks[64];

static void record_got(int v, bool ok) {
  int i = ngot++;
  got[i] = v;
  oks[i] = ok;
}

static void recv_one(void *arg) {
  (void)arg;
  int v = -1;
  bool ok = ref_chan_recv(ch, &v); /* parks: read ngot only after it returns */
  record_got(v, ok);
}

static int int_cmp(const void *a, const void *b) {
  return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* got[0..n) in the channel's order: as recorded with one mutator, sorted
 * with several (the values the tests send increase). */
static void got_in_order(int n) {
  if (tu_mutators() > 1) qsort(got, (size_t)n, sizeof *got, int_cmp);
}

static void send_val(void *arg) {
  int v = (int)(intptr_t)arg;
  ref_chan_send(ch, &v);
}

static void setup(size_t cap) {
  tu_init();
  ch = ref_chan_make_size(sizeof(int), cap);
  ch2 = ref_chan_make_size(sizeof(int), cap);
  ref_add_root(&ch, sizeof ch);
  ref_add_root(&ch2, sizeof ch2);
  ngot = 0;
}

static void teardown(void) {
  ref_remove_root(&ch);
  ref_remove_root(&ch2);
  ref_shutdown();
}

/* Unbuffered: a send parks until a receiver takes it, values in order. */
static void test_unbuffered_handoff(void **state) {
  (void)state;
  setup(0);
  for (int i = 1; i <= 3; i++) ref_go(send_val, (void *)(intptr_t)i);
  assert_int_equal(ref_run(), 3); /* three senders parked */
  assert_int_equal(ref_chan_len(ch), 0);
  for (int i = 0; i < 3; i++) ref_go(recv_one, NULL);
  assert_int_equal(ref_run(), 0);
  assert_int_equal(ngot, 3);
  got_in_order(3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(got[i], i + 1);
    assert_true(oks[i]);
  }
  teardown();
}

/* Buffered: sends do not park until the buffer is full; FIFO. */
static void test_buffered_fifo(void **state) {
  (void)state;
  setup(2);
  for (int i = 1; i <= 3; i++) ref_go(send_val, (void *)(intptr_t)i);
  assert_int_equal(ref_run(), 1); /* the third sender waits */
  assert_int_equal(ref_chan_len(ch), 2);
  assert_int_equal(ref_chan_cap(ch), 2);
  for (int i = 0; i < 3; i++) ref_go(recv_one, NULL);
  assert_int_equal(ref_run(), 0);
  got_in_order(3);
  for (int i = 0; i < 3; i++) assert_int_equal(got[i], i + 1);
  assert_int_equal(ref_chan_len(ch), 0);
  teardown();
}

static void closer(void *arg) {
  (void)arg;
  ref_chan_close(ch);
}

/* Close wakes every waiting receiver with ok=false and a zero value; later
 * receives drain the buffer first, then return ok=false at once. */
static void test_close_semantics(void **state) {
  (void)state;
  setup(0);
  for (int i = 0; i < 3; i++) ref_go(recv_one, NULL);
  assert_int_equal(ref_run(), 3);
  ref_go(closer, NULL);
  assert_int_equal(ref_run(), 0);
  assert_int_equal(ngot, 3);
  for (int i = 0; i < 3; i++) {
    assert_false(oks[i]);
    assert_int_equal(got[i], 0);
  }
  teardown();

  setup(4); /* one step per ref_run: with several mutators they would race */
  ref_go(send_val, (void *)(intptr_t)7);
  assert_int_equal(ref_run(), 0);
  ref_go(closer, NULL);
  assert_int_equal(ref_run(), 0);
  for (int i = 0; i < 2; i++) {
    ref_go(recv_one, NULL);
    assert_int_equal(ref_run(), 0);
  }
  assert_int_equal(got[0], 7);
  assert_true(oks[0]);
  assert_int_equal(got[1], 0);
  assert_false(oks[1]);
  teardown();
}

static void send_closed_child(void) {
  setup(1);
  ref_chan_close(ch);
  int v = 1;
  ref_chan_send(ch, &v);
}
static void close_closed_child(void) {
  setup(0);
  ref_chan_close(ch);
  ref_chan_close(ch);
}
static void close_nil_child(void) {
  tu_init();
  ref_chan_close(NULL);
}
static void waiting_sender_closed_child(void) {
  setup(0);
  ref_go(send_val, (void *)(intptr_t)1);
  ref_run();
  ref_go(closer, NULL);
  ref_run();
}

/* The panics: each aborts with Go's message. */
static void test_panics(void **state) {
  (void)state;
  tu_expect_death(send_closed_child, "send on closed channel");
  tu_expect_death(close_closed_child, "close of closed channel");
  tu_expect_death(close_nil_child, "close of nil channel");
  tu_expect_death(waiting_sender_closed_child, "send on closed channel");
}

static int sel_result;

static void select_default(void *arg) {
  (void)arg;
  int v = 0;
  ref_case cs[2] = {{ch, REF_RECV, &v, false}, {ch2, REF_RECV, &v, false}};
  sel_result = ref_select(cs, 2, true);
}

static void select_block(void *arg) {
  (void)arg;
  int v = 0;
  ref_case cs[3] = {{NULL, REF_RECV, &v, false}, {ch, REF_RECV, &v, false},
                    {ch2, REF_SEND, &v, false}};
  sel_result = ref_select(cs, 3, false);
  record_got(v, cs[1].ok);
}

/* Select: default when nothing is ready; otherwise it parks on every case
 * and the one that fires wins; a nil channel's case never fires; the other
 * queues are left clean. */
static void test_select(void **state) {
  (void)state;
  setup(0);
  ref_go(select_default, NULL);
  assert_int_equal(ref_run(), 0);
  assert_int_equal(sel_result, -1);

  ref_go(select_block, NULL);
  assert_int_equal(ref_run(), 1);
  ref_go(send_val, (void *)(intptr_t)5); /* fires case 1 */
  assert_int_equal(ref_run(), 0);
  assert_int_equal(sel_result, 1);
  assert_int_equal(got[0], 5);
  assert_true(oks[0]);
  /* Its send case on ch2 was withdrawn: a receiver on ch2 now parks. */
  ch = ch2;
  ref_go(recv_one, NULL);
  assert_int_equal(ref_run(), 1);
  teardown();
}

static _Atomic int fired[2];

static void fairness(void *arg) {
  (void)arg;
  int v;
  for (int i = 0; i < 100000; i++) {
    ref_case cs[2] = {{ch, REF_RECV, &v, false}, {ch2, REF_RECV, &v, false}};
    int k = ref_select(cs, 2, false);
    fired[k]++;
    ref_chan_send(k == 0 ? ch : ch2, &v); /* refill: both stay ready */
  }
}

/* With two ready cases, each fires 45-55% of 100,000 selects. */
static void test_select_fairness(void **state) {
  (void)state;
  setup(1);
  int one = 1;
  ref_chan_send(ch, &one); /* buffered: does not block on the scheduler stack */
  ref_chan_send(ch2, &one);
  fired[0] = fired[1] = 0;
  ref_go(fairness, NULL);
  assert_int_equal(ref_run(), 0);
  assert_int_equal(fired[0] + fired[1], 100000);
  assert_in_range(fired[0], 45000, 55000);
  assert_in_range(fired[1], 45000, 55000);
  teardown();
}

/* ---------------------------------------------------------------------------
 * Channels of 0-byte elements (Go's chan struct{}): no buffer, every copy
 * moves nothing. Values are the counts of sends and receives.
 * ------------------------------------------------------------------------- */

static struct empty {
  char none[0];
} token;
static _Atomic int zsent, zrecv, zclosed;

static void zsend(void *arg) {
  int n = (int)(intptr_t)arg;
  for (int i = 0; i < n; i++, zsent++) ref_chan_send(ch, i % 2 ? &token : NULL);
}

static void zrecv_all(void *arg) {
  (void)arg;
  struct empty e;
  for (int i = 0;; i++) {
    if (!ref_chan_recv(ch, i % 2 ? &e : NULL)) break;
    zrecv++;
  }
  zclosed++;
}

static void zsetup(size_t cap) {
  tu_init();
  ch = ref_chan_make_size(0, cap);
  ch2 = ref_chan_make_size(0, cap);
  assert_non_null(ch);
  assert_non_null(ch2);
  ref_add_root(&ch, sizeof ch);
  ref_add_root(&ch2, sizeof ch2);
  zsent = zrecv = zclosed = 0;
}

/* Buffered and unbuffered: sends fill the buffer and park, receives drain
 * it and take from parked senders, close wakes the receivers. */
static void test_zero_size_elements(void **state) {
  (void)state;
  size_t caps[] = {0, 1, 3, SIZE_MAX};
  for (size_t k = 0; k < REF_ARRAY_SIZE(caps); k++) {
    zsetup(caps[k]);
    assert_int_equal(ref_chan_cap(ch), caps[k]);
    ref_go(zsend, (void *)(intptr_t)10);
    ref_run();
    size_t want = caps[k] < 10 ? caps[k] : 10;
    assert_int_equal(ref_chan_len(ch), want);
    ref_go(zrecv_all, NULL);
    ref_run();
    ref_gc();
    ref_go(closer, NULL);
    assert_int_equal(ref_run(), 0);
    assert_int_equal(zsent, 10);
    assert_int_equal(zrecv, 10);
    assert_int_equal(zclosed, 1);
    assert_int_equal(ref_chan_len(ch), 0);
    teardown();
  }
}

static _Atomic int zsel[4];

/* Select over 0-byte channels: receive and send cases that fire at once
 * (buffered) or after parking (unbuffered), with and without elems. */
static void zselect(void *arg) {
  int n = (int)(intptr_t)arg; /* < 0: -n selects with only the receive case */
  struct empty e;
  for (int i = 0; i < (n < 0 ? -n : n); i++) {
    ref_case cs[2] = {{ch, REF_RECV, i % 2 ? &e : NULL, false},
                      {n < 0 ? NULL : ch2, REF_SEND, i % 3 ? &token : NULL, false}};
    int k = ref_select(cs, 2, false);
    zsel[k]++;
    if (k == 0 && !cs[0].ok) zsel[2]++;
  }
}

static void zdrain2(void *arg) {
  int n = (int)(intptr_t)arg;
  for (int i = 0; i < n; i++) ref_chan_recv(ch2, NULL);
}

static void test_zero_size_select(void **state) {
  (void)state;
  size_t caps[] = {0, 2};
  for (size_t k = 0; k < REF_ARRAY_SIZE(caps); k++) {
    zsetup(caps[k]);
    for (int i = 0; i < 4; i++) zsel[i] = 0;
    ref_go(zsend, (void *)(intptr_t)5);  /* 5 receives for case 0 */
    ref_go(zdrain2, (void *)(intptr_t)5); /* 5 sends for case 1 */
    ref_go(zselect, (void *)(intptr_t)10);
    assert_int_equal(ref_run(), 0);
    assert_int_equal(zsel[0], 5);
    assert_int_equal(zsel[1], 5);
    ref_go(closer, NULL); /* a closed channel's receive case fires, not ok */
    ref_go(zselect, (void *)(intptr_t)-1);
    assert_int_equal(ref_run(), 0);
    assert_int_equal(zsel[2], 1);
    teardown();
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unbuffered_handoff), cmocka_unit_test(test_buffered_fifo),
      cmocka_unit_test(test_close_semantics),    cmocka_unit_test(test_panics),
      cmocka_unit_test(test_select),             cmocka_unit_test(test_select_fairness),
      cmocka_unit_test(test_zero_size_elements), cmocka_unit_test(test_zero_size_select),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
