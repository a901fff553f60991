/*
 * Several mutator threads: channel races across threads, select against a
 * close from another thread, ping-pong across threads, objects handed
 * between threads' allocation caches while collections run, and the
 * stop-the-world handshake: no goroutine runs during a cycle (and a
 * deliberately broken handshake is caught). ctest runs this file with
 * STACKSCAN_MUTATORS=1, 2 and 4; with one mutator the races are
 * interleavings of one thread.
 */
#include "gcutil.h"

#include "g.h"  /* ref__debug_stop_no_wait */
#include "gc.h" /* ref__debug_in_cycle */

#include <time.h>

static void start(int workers) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, REF_SCAN_FRAMES, REF_MAPS_PCTAB, workers);
  tu_start(&cfg);
}

/* ---------------------------------------------------------------------------
 * Senders and receivers on one channel, from every thread
 * ------------------------------------------------------------------------- */

#define NSEND 8
#define NRECV 8
#define PER_SENDER 2000
static ref_chan *race_ch;
static _Atomic uint8_t seen[NSEND * PER_SENDER];
static _Atomic long nrecv, dupes;

static void race_sender(void *arg) {
  int id = (int)(intptr_t)arg;
  for (int i = 0; i < PER_SENDER; i++) {
    int v = id * PER_SENDER + i;
    ref_chan_send(race_ch, &v);
  }
}

static void race_receiver(void *arg) {
  (void)arg;
  int v;
  while (ref_chan_recv(race_ch, &v)) {
    if (v < 0 || v >= NSEND * PER_SENDER || atomic_fetch_add(&seen[v], 1) != 0) dupes++;
    nrecv++;
  }
}

/* Every value sent arrives exactly once, buffered or not; close ends the
 * receivers, which park on the channel in between. */
static void test_many_senders_many_receivers(void **state) {
  (void)state;
  size_t caps[] = {0, 1, 64};
  for (size_t k = 0; k < REF_ARRAY_SIZE(caps); k++) {
    start(2);
    race_ch = ref_chan_make_size(sizeof(int), caps[k]);
    ref_add_root(&race_ch, sizeof race_ch);
    memset(seen, 0, sizeof seen);
    nrecv = dupes = 0;
    for (int i = 0; i < NRECV; i++) assert_non_null(ref_go(race_receiver, NULL));
    for (int i = 0; i < NSEND; i++) assert_non_null(ref_go(race_sender, (void *)(intptr_t)i));
    assert_int_equal(ref_run(), NRECV); /* the senders are done, the receivers wait */
    assert_int_equal(nrecv, NSEND * PER_SENDER);
    assert_int_equal(dupes, 0);
    ref_chan_close(race_ch);
    assert_int_equal(ref_run(), 0);
    ref_remove_root(&race_ch);
    ref_shutdown();
  }
}

/* ---------------------------------------------------------------------------
 * Select against a close from another thread
 * ------------------------------------------------------------------------- */

#define NSEL 64
#define NVALS 24
static ref_chan *sel_a, *sel_b; /* a: closed while they wait; b: buffered, NVALS values */
static _Atomic long fired_closed, fired_value, sel_bad;

static void selector(void *arg) {
  (void)arg;
  int v = -1;
  ref_case cs[2] = {{sel_a, REF_RECV, &v, false}, {sel_b, REF_RECV, &v, false}};
  int k = ref_select(cs, 2, false);
  if (k == 0 && !cs[0].ok && v == 0) fired_closed++;
  else if (k == 1 && cs[1].ok && v >= 1 && v <= NVALS) fired_value++;
  else sel_bad++;
}

static void sel_closer(void *arg) {
  (void)arg;
  ref_chan_close(sel_a);
}

static void sel_feeder(void *arg) {
  (void)arg;
  for (int i = 1; i <= NVALS; i++) ref_chan_send(sel_b, &i);
}

/* Each selector fires exactly one case: a value from b, or a's close;
 * whatever b still holds was not taken. */
static void test_select_against_close(void **state) {
  (void)state;
  for (int round = 0; round < 20; round++) {
    start(1);
    sel_a = ref_chan_make_size(sizeof(int), 0);
    sel_b = ref_chan_make_size(sizeof(int), NVALS);
    ref_add_root(&sel_a, sizeof sel_a);
    ref_add_root(&sel_b, sizeof sel_b);
    fired_closed = fired_value = sel_bad = 0;
    for (int i = 0; i < NSEL; i++) assert_non_null(ref_go(selector, NULL));
    if (round % 2) assert_int_equal(ref_run(), NSEL); /* half the rounds: all parked first */
    assert_non_null(ref_go(sel_feeder, NULL));
    assert_non_null(ref_go(sel_closer, NULL));
    assert_int_equal(ref_run(), 0);
    assert_int_equal(sel_bad, 0);
    assert_int_equal(fired_closed + fired_value, NSEL);
    assert_int_equal(fired_value + (long)ref_chan_len(sel_b), NVALS);
    ref_remove_root(&sel_a);
    ref_remove_root(&sel_b);
    ref_shutdown();
  }
}

/* ---------------------------------------------------------------------------
 * Ping-pong across threads
 * ------------------------------------------------------------------------- */

#define ROUNDS 50000
static ref_chan *ping, *pong;
static _Atomic long pong_bad;

static void pinger(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS; i++) {
    int v = i, back = -1;
    ref_chan_send(ping, &v);
    ref_chan_recv(pong, &back);
    if (back != i + 1) pong_bad++;
  }
}

static void ponger(void *arg) {
  (void)arg;
  int v;
  while (ref_chan_recv(ping, &v)) {
    v++;
    ref_chan_send(pong, &v);
  }
}

/* Each hand-off wakes the peer, on its own thread when there are several;
 * idle threads steal what they are woken for. */
static void test_ping_pong(void **state) {
  (void)state;
  start(1);
  ping = ref_chan_make_size(sizeof(int), 0);
  pong = ref_chan_make_size(sizeof(int), 0);
  ref_add_root(&ping, sizeof ping);
  ref_add_root(&pong, sizeof pong);
  pong_bad = 0;
  assert_non_null(ref_go(ponger, NULL));
  assert_non_null(ref_go(pinger, NULL));
  assert_int_equal(ref_run(), 1); /* the ponger waits for more */
  assert_int_equal(pong_bad, 0);
  ref_chan_close(ping);
  assert_int_equal(ref_run(), 0);
  ref_remove_root(&ping);
  ref_remove_root(&pong);
  ref_shutdown();
}

/* ---------------------------------------------------------------------------
 * Objects handed between threads while collections run
 * ------------------------------------------------------------------------- */

typedef struct cell {
  uint64_t canary, id;
  struct cell *next;
} cell;
static const uint64_t cell_mask[1] = {0x4};
static const ref_type cell_t = {sizeof(cell), cell_mask, "mn.cell"};
static const uint64_t ptr_mask[1] = {0x1};
static const ref_type cellp_t = {sizeof(cell *), ptr_mask, "mn.cellp"}; /* the channel's elements */

#define PRODUCERS 4
#define PER_PRODUCER 20000
#define CHAIN 4
static ref_chan *cells;
static _Atomic long consumed;
REF_FUNC(producer_info, "mn.producer", 1, REF_SP(0x1));

/* Builds a chain of CHAIN cells (the head held in its record while the
 * rest are allocated) and sends its head; garbage in between. */
static void producer(void *arg) {
  uint64_t base = (uint64_t)(intptr_t)arg * PER_PRODUCER * CHAIN;
  REF_FRAME(f, producer_info);
  REF_SAFEPOINT(f, 0);
  for (uint64_t i = 0; i < PER_PRODUCER; i++) {
    f.slot[0] = NULL;
    for (int k = 0; k < CHAIN; k++) {
      cell *c = ref_alloc(&cell_t);
      if (!c) {
        note_fail("allocation failed: %s", ref_error());
        return;
      }
      c->id = base + i * CHAIN + (uint64_t)k;
      c->canary = canary(c->id);
      c->next = f.slot[0];
      f.slot[0] = c;
      if (!ref_alloc(&cell_t)) note_fail("garbage allocation failed");
    }
    ref_chan_send(cells, &f.slot[0]);
  }
}

REF_FUNC(consumer_info, "mn.consumer", 1, REF_SP(0x1));

static void consumer(void *arg) {
  (void)arg;
  REF_FRAME(f, consumer_info);
  REF_SAFEPOINT(f, 0);
  while (ref_chan_recv(cells, &f.slot[0])) {
    int n = 0;
    for (const cell *c = f.slot[0]; c; c = c->next, n++)
      if (c->canary != canary(c->id)) {
        note_fail("cell %llu lost its canary (%#llx): freed while reachable?",
                  (unsigned long long)c->id, (unsigned long long)c->canary);
        break;
      }
    if (n != CHAIN) note_fail("a chain of %d cells arrived, not %d", n, CHAIN);
    consumed++;
    f.slot[0] = NULL;
    if (consumed % 1000 == 0) ref_yield();
  }
}

/* 320,000 cells on a 64 MiB heap with GOGC on: the cycles start in any
 * thread's allocation and stop the others wherever they are; every chain
 * survives its trip (checkmark and poison on). */
static void test_objects_between_threads(void **state) {
  (void)state;
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_PARALLEL, REF_SCAN_FRAMES, REF_MAPS_PCTAB_CACHED, 2);
  cfg.heap_max = (size_t)64 << 20;
  tu_start(&cfg);
  res_reset();
  cells = ref_chan_make(&cellp_t, 8);
  ref_add_root(&cells, sizeof cells);
  consumed = 0;
  for (int i = 0; i < 2; i++) assert_non_null(ref_go(consumer, NULL));
  for (int i = 0; i < PRODUCERS; i++) assert_non_null(ref_go(producer, (void *)(intptr_t)i));
  assert_int_equal(ref_run(), 2);
  assert_no_fail();
  assert_int_equal(consumed, PRODUCERS * PER_PRODUCER);
  const ref_gc_stats *st = ref_gc_last();
  assert_true(st->cycles_heap > 0);
  assert_true(st->ttsp_ns <= st->stw_ns);
  ref_chan_close(cells);
  assert_int_equal(ref_run(), 0);
  ref_remove_root(&cells);
  ref_shutdown();
}

/* ---------------------------------------------------------------------------
 * Stop the world: nothing runs during a cycle
 * ------------------------------------------------------------------------- */

#define MAX_SPIN 8
static _Atomic uint64_t spins[MAX_SPIN];
static _Atomic bool spin_quit;
static int nspin;
static _Atomic long cycles_seen, cycles_moved;

static void spinner(void *arg) {
  int i = (int)(intptr_t)arg;
  for (uint64_t n = 1; !spin_quit; n++) {
    atomic_fetch_add_explicit(&spins[i], 1, memory_order_relaxed);
    ref_poll();
    if (n % 4096 == 0) ref_yield(); /* with one mutator the controller must run too */
  }
}

/* Inside the cycle: the spinners' counts must not move while it lasts. */
static void watch_cycle(void) {
  uint64_t before[MAX_SPIN];
  for (int i = 0; i < nspin; i++) before[i] = atomic_load(&spins[i]);
  struct timespec ts = {0, 2000000}; /* room for a thread that still runs to show it */
  nanosleep(&ts, NULL);
  bool moved = false;
  for (int i = 0; i < nspin; i++) moved |= atomic_load(&spins[i]) != before[i];
  cycles_seen++;
  cycles_moved += moved;
}

static void controller(void *arg) {
  int ncycles = (int)(intptr_t)arg;
  for (int c = 0; c < ncycles; c++) {
    ref_gc();
    ref_yield();
  }
  spin_quit = true;
}

static void stw_run(int ncycles) {
  start(2);
  nspin = tu_mutators() + 1 < MAX_SPIN ? tu_mutators() + 1 : MAX_SPIN;
  spin_quit = false;
  cycles_seen = cycles_moved = 0;
  for (int i = 0; i < nspin; i++) {
    spins[i] = 0;
    assert_non_null(ref_go(spinner, (void *)(intptr_t)i));
  }
  assert_non_null(ref_go(controller, (void *)(intptr_t)ncycles));
  ref__debug_in_cycle = watch_cycle;
  assert_int_equal(ref_run(), 0);
  ref__debug_in_cycle = NULL;
  assert_int_equal(cycles_seen, ncycles);
  ref_shutdown();
}

/* No spinner's count moves during any cycle. */
static void test_world_stopped_during_cycle(void **state) {
  (void)state;
  stw_run(50);
  assert_int_equal(cycles_moved, 0);
}

/* The same watch catches a stop that does not wait for the other threads:
 * the spinners run on through the cycle. (Not under TSan, which would
 * rightly report the collector reading stacks that are running.) */
static void test_broken_stop_is_caught(void **state) {
  (void)state;
  if (REF_TSAN || tu_mutators() == 1) skip();
  ref__debug_stop_no_wait = true;
  stw_run(20);
  ref__debug_stop_no_wait = false;
  if (cycles_moved == 0) fail_msg("a stop that did not wait went unnoticed in 20 cycles");
}

/* ---------------------------------------------------------------------------
 * No runnable goroutine waits on a busy thread while another sleeps
 * ------------------------------------------------------------------------- */

/* Each round the controller starts P - 1 goroutines that never block and
 * waits until all of them run at once, one per other thread, then collects
 * and ends the round (GoroutineSpin's shape). A goroutine left in a busy
 * thread's queue while an idle thread sleeps would wait there forever: its
 * thread never switches. Before the fix that happened when a thread went
 * idle just as a goroutine was queued (it had looked at the queues, and the
 * readier saw no idle thread to wake), or when one was readied during a
 * stop (nobody is woken then, and the restart looked only at the global
 * queue); GoroutineSpin at 4 mutators hung on it. */
#define STRAND_ROUNDS 200
#define STRAND_S 5 /* far beyond any scheduling delay: the goroutine is stranded */
static _Atomic int arrived, round_gen, strand_fail;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void busy(void *arg) {
  int gen = (int)(intptr_t)arg;
  atomic_fetch_add(&arrived, 1);
  while (atomic_load(&round_gen) == gen) ref_poll();
}

static void strand_controller(void *arg) {
  int others = (int)(intptr_t)arg;
  for (int r = 0; r < STRAND_ROUNDS && !strand_fail; r++) {
    arrived = 0;
    for (int i = 0; i < others; i++) assert_non_null(ref_go(busy, (void *)(intptr_t)r));
    uint64_t t0 = mono_ns();
    while (atomic_load(&arrived) < others) {
      ref_poll();
      if (mono_ns() - t0 > STRAND_S * 1000000000ull) {
        strand_fail = r + 1;
        break;
      }
    }
    ref_gc();
    atomic_store(&round_gen, r + 1);
  }
  atomic_store(&round_gen, -1);
}

static void test_no_goroutine_stranded(void **state) {
  (void)state;
  if (tu_mutators() == 1) skip(); /* the controller never yields: nothing else would run */
  start(2);
  strand_fail = 0;
  round_gen = 0;
  ref__debug_idle_delay_ns = 200000; /* 0.2 ms between an M's last look and its going idle */
  assert_non_null(ref_go(strand_controller, (void *)(intptr_t)(tu_mutators() - 1)));
  assert_int_equal(ref_run(), 0);
  ref__debug_idle_delay_ns = 0;
  if (strand_fail)
    fail_msg("round %d: a runnable goroutine found no thread for %d s while one was idle",
             strand_fail - 1, STRAND_S);
}

/* A collection started from within a cycle (here by the cycle's own hook)
 * aborts, naming the problem, instead of waiting forever for itself. */
static void nested_gc(void) { ref_gc(); }
static void gc_inside_gc(void) {
  start(1);
  ref__debug_in_cycle = nested_gc;
  ref_gc();
}
static void test_collection_inside_a_collection_aborts(void **state) {
  (void)state;
  tu_expect_death(gc_inside_gc, "was started inside a collection");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_many_senders_many_receivers, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_select_against_close, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_ping_pong, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_objects_between_threads, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_world_stopped_during_cycle, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_broken_stop_is_caught, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_no_goroutine_stranded, tu_teardown_shutdown),
      cmocka_unit_test(test_collection_inside_a_collection_aborts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
