/*
 * test_preempt.c: how a stop-the-world reaches a goroutine that runs.
 * preempt=async: a loop with no safepoint is stopped by the signal; an
 * object held only in the registers or native frames of such a loop
 * survives in scan=frames, and leaving those frames out of the scan is
 * caught by the checkmark verifier; a goroutine inside the runtime is never
 * stopped there, and a handler that ignored that is caught by the
 * stop. cooperative: the watchdog names the goroutine that holds a
 * stop for over a second. Each needs a second mutator (ctest runs the file
 * with STACKSCAN_MUTATORS=1, 2 and 4; at 1 they skip), and async ones are
 * not available under ThreadSanitizer (ref_init refuses them, checked).
 */
#include "gcutil.h"

#include "g.h"  /* ref__debug_async_ignore_runtime */
#include "gc.h" /* ref__debug_async_precise_top */

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const uint64_t obj_mask[1] = {0x0};
typedef struct obj {
  uint64_t canary, id, data[6];
} obj;
static const ref_type obj_t = {sizeof(obj), obj_mask, "preempt.obj"};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A poll-free loop gives up after this long: a stop that never reaches it
 * fails the test instead of hanging it. */
#define GIVE_UP_NS (10ull * 1000000000u)

static void start(ref_scan scan, ref_preempt preempt) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_ROOTJOBS, scan, REF_MAPS_PCTAB, 2);
  cfg.preempt = preempt;
  cfg.gc_percent = -1; /* the tests count the cycles they start */
  tu_start(&cfg);
}

/* The mutator count ref_init will use (ctest's STACKSCAN_MUTATORS): known
 * before a runtime starts, which tu_mutators is not. */
static int mutators_wanted(void) {
  const char *v = getenv("STACKSCAN_MUTATORS");
  return v && atoi(v) > 0 ? atoi(v) : 1;
}

static void skip_unless_async(void) {
  if (mutators_wanted() == 1) skip();
  if (REF_TSAN) skip();
}

/* ---------------------------------------------------------------------------
 * Spinners that never reach a safepoint, and a controller that collects
 * ------------------------------------------------------------------------- */

#define MAX_SPIN 8
static _Atomic uint64_t spins[MAX_SPIN];
static _Atomic bool quit, gave_up;
static int nspin;
static _Atomic long cycles_seen, cycles_moved;
static uint64_t async_total;

/* Counts without a safepoint until told to quit (or it gives up). */
static void spinner(void *arg) {
  int i = (int)(intptr_t)arg;
  uint64_t t0 = now_ns();
  for (uint64_t n = 1; !atomic_load_explicit(&quit, memory_order_relaxed); n++) {
    atomic_fetch_add_explicit(&spins[i], 1, memory_order_relaxed);
    if (n % 65536 == 0 && now_ns() - t0 > GIVE_UP_NS) {
      gave_up = true;
      break;
    }
  }
}

/* Inside each cycle: the spinners' counts must not move while it lasts. */
static void watch_cycle(void) {
  uint64_t before[MAX_SPIN];
  for (int i = 0; i < nspin; i++) before[i] = atomic_load(&spins[i]);
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
  bool moved = false;
  for (int i = 0; i < nspin; i++) moved |= atomic_load(&spins[i]) != before[i];
  cycles_seen++;
  cycles_moved += moved;
}

/* Until every spinner has started: each then holds an M of its own (none
 * ever gives it up), and the controller has the last one. */
static void wait_started(void) {
  for (int i = 0; i < nspin; i++)
    while (atomic_load(&spins[i]) == 0) ref_yield();
}

static void controller(void *arg) {
  int ncycles = (int)(intptr_t)arg;
  wait_started();
  for (int c = 0; c < ncycles; c++) {
    ref_gc();
    async_total += ref_gc_last()->async_preempts;
  }
  quit = true;
}

/* One goroutine per mutator: nspin spinners and the controller. */
static void spin_run(ref_gofn spin, int ncycles) {
  nspin = tu_mutators() - 1 < MAX_SPIN ? tu_mutators() - 1 : MAX_SPIN;
  quit = gave_up = false;
  cycles_seen = cycles_moved = 0;
  async_total = 0;
  for (int i = 0; i < nspin; i++) {
    spins[i] = 0;
    assert_non_null(ref_go(spin, (void *)(intptr_t)i));
  }
  assert_non_null(ref_go(controller, (void *)(intptr_t)ncycles));
  ref__debug_in_cycle = watch_cycle;
  assert_int_equal(ref_run(), 0);
  ref__debug_in_cycle = NULL;
  assert_false(gave_up);
  assert_int_equal(cycles_seen, ncycles);
}

/* Every cycle stops the spinners, which reach no safepoint: the signal
 * does, and nothing moves while the cycle runs. */
static void test_async_stops_poll_free_loops(void **state) {
  (void)state;
  skip_unless_async();
  start(REF_SCAN_FRAMES, REF_PREEMPT_ASYNC);
  spin_run(spinner, 30);
  assert_int_equal(cycles_moved, 0);
  assert_int_equal(async_total, 30 * (uint64_t)nspin); /* each spinner, every cycle */
  assert_true(ref__preempt_signals() >= async_total); /* a stop by signal needs one */
  ref_shutdown();
}

/* ---------------------------------------------------------------------------
 * An object only a preempted loop holds
 * ------------------------------------------------------------------------- */

REF_FUNC(holder_info, "preempt.holder", 1, REF_SP(0x0));

static _Atomic long holder_bad;

/* Its record declares no live slot: the object's only pointer is in a
 * register or a spill slot of this frame, as the loop uses it. */
static ref_noinline void holder(void *arg) {
  int i = (int)(intptr_t)arg;
  REF_FRAME(f, holder_info);
  REF_SAFEPOINT(f, 0);
  obj *o = ref_alloc(&obj_t);
  if (!o) {
    holder_bad++;
    return;
  }
  o->id = 1000 + (uint64_t)i;
  o->canary = canary(o->id);
  for (int k = 0; k < 6; k++) o->data[k] = canary(o->id + 1 + (uint64_t)k);
  uint64_t t0 = now_ns(), sum = 0;
  for (uint64_t n = 1; !atomic_load_explicit(&quit, memory_order_relaxed); n++) {
    sum += o->data[n % 6] ^ n;
    atomic_fetch_add_explicit(&spins[i], 1, memory_order_relaxed);
    if (n % 65536 == 0 && now_ns() - t0 > GIVE_UP_NS) {
      gave_up = true;
      break;
    }
  }
  bool ok = o->canary == canary(o->id) && o->id == 1000 + (uint64_t)i;
  for (int k = 0; k < 6; k++) ok = ok && o->data[k] == canary(o->id + 1 + (uint64_t)k);
  if (!ok) holder_bad++;
  spins[i] += sum & 1; /* keeps the loop's reads */
}

/* Collects while holders spin; garbage in between, so that a freed object
 * would be poisoned and its slot handed out again. */
static void churn_controller(void *arg) {
  int ncycles = (int)(intptr_t)arg;
  wait_started();
  for (int c = 0; c < ncycles; c++) {
    for (int k = 0; k < 500; k++) (void)ref_alloc(&obj_t);
    ref_gc();
    async_total += ref_gc_last()->async_preempts;
  }
  quit = true;
}

static void holder_run(int ncycles) {
  nspin = tu_mutators() - 1 < MAX_SPIN ? tu_mutators() - 1 : MAX_SPIN;
  quit = gave_up = false;
  holder_bad = 0;
  async_total = 0;
  for (int i = 0; i < nspin; i++) {
    spins[i] = 0;
    assert_non_null(ref_go(holder, (void *)(intptr_t)i));
  }
  assert_non_null(ref_go(churn_controller, (void *)(intptr_t)ncycles));
  assert_int_equal(ref_run(), 0);
}

static void test_registers_of_a_preempted_loop_survive(void **state) {
  (void)state;
  skip_unless_async();
  start(REF_SCAN_FRAMES, REF_PREEMPT_ASYNC);
  holder_run(30);
  assert_false(gave_up);
  assert_int_equal(holder_bad, 0);
  assert_true(async_total > 0);
  ref_shutdown();
}

/* The same with the interrupted frames left out of the scan: the object is
 * unmarked, and the verifier (which reads those frames) says so. */
static void precise_top_child(void) {
  alarm(120);
  ref__debug_async_precise_top = true;
  start(REF_SCAN_FRAMES, REF_PREEMPT_ASYNC);
  holder_run(200);
}

static void test_checkmark_catches_a_skipped_preempted_frame(void **state) {
  (void)state;
  skip_unless_async();
  tu_expect_death(precise_top_child, "unmarked by the collector but marked by the verifier");
}

/* ---------------------------------------------------------------------------
 * Never stopped inside the runtime
 * ------------------------------------------------------------------------- */

/* Allocates in a loop: most of its time is inside ref_alloc, where the
 * signal must not stop it (the allocation itself stops it cooperatively). */
static void allocator(void *arg) {
  int i = (int)(intptr_t)arg;
  uint64_t t0 = now_ns();
  for (uint64_t n = 1; !atomic_load_explicit(&quit, memory_order_relaxed); n++) {
    if (!ref_alloc(&obj_t)) break;
    atomic_fetch_add_explicit(&spins[i], 1, memory_order_relaxed);
    if (n % 4096 == 0 && now_ns() - t0 > GIVE_UP_NS) {
      gave_up = true;
      break;
    }
  }
}

static void test_not_stopped_inside_the_runtime(void **state) {
  (void)state;
  skip_unless_async();
  start(REF_SCAN_CONSERVATIVE, REF_PREEMPT_ASYNC);
  spin_run(allocator, 30);
  assert_int_equal(cycles_moved, 0);
  ref_shutdown();
}

/* A handler that ignored the in-runtime count stops an allocator inside
 * ref_alloc sooner or later, and the stop itself refuses it. */
static void ignore_runtime_child(void) {
  alarm(120); /* a child that neither aborts nor ends fails, never hangs */
  ref__debug_async_ignore_runtime = true;
  start(REF_SCAN_CONSERVATIVE, REF_PREEMPT_ASYNC);
  spin_run(allocator, 2000);
}

static void test_stop_inside_the_runtime_is_caught(void **state) {
  (void)state;
  skip_unless_async();
  tu_expect_death(ignore_runtime_child, "was stopped by a signal inside the runtime");
}

/* ---------------------------------------------------------------------------
 * Cooperative: the watchdog
 * ------------------------------------------------------------------------- */

static _Atomic uint64_t long_spinner_id;

/* Spins without a safepoint for 1.5 s. */
static void long_spinner(void *arg) {
  (void)arg;
  long_spinner_id = ref_goid(ref_curg());
  uint64_t t0 = now_ns();
  while (now_ns() - t0 < 1500000000u) spins[0]++;
}

static void one_gc(void *arg) {
  (void)arg;
  while (long_spinner_id == 0) ref_yield(); /* the spinner runs on another M */
  ref_gc();
}

/* The stop waits for the spinner's end, and after a second the watchdog
 * names it on stderr. */
static void test_watchdog_names_the_holder(void **state) {
  (void)state;
  if (mutators_wanted() == 1) skip();
  start(REF_SCAN_FRAMES, REF_PREEMPT_COOPERATIVE);
  assert_int_equal(tu_mutators(), mutators_wanted());
  long_spinner_id = 0;
  char path[] = "/tmp/stackscan-watchdog-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  assert_non_null(ref_go(long_spinner, NULL));
  assert_non_null(ref_go(one_gc, NULL));
  size_t left = ref_run();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  assert_int_equal(left, 0);
  char buf[4096];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  close(fd);
  assert_true(n > 0);
  buf[n] = 0;
  char want[64];
  snprintf(want, sizeof want, "running goroutine %llu:", (unsigned long long)long_spinner_id);
  if (!strstr(buf, "stop the world has waited") || !strstr(buf, want))
    fail_msg("the watchdog did not name goroutine %llu; stderr: %s",
             (unsigned long long)long_spinner_id, buf);
  assert_true(ref_gc_last()->ttsp_ns >= 1000000000u);
  ref_shutdown();
}

/* Under ThreadSanitizer, ref_init says async preemption is not there. */
static void test_async_refused_under_tsan(void **state) {
  (void)state;
  if (!REF_TSAN) skip();
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_FRAMES, REF_MAPS_PCTAB, 1);
  cfg.preempt = REF_PREEMPT_ASYNC;
  assert_int_equal(ref_init(&cfg), -1);
  assert_non_null(strstr(ref_error(), "preempt=async"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_async_stops_poll_free_loops, tu_teardown_shutdown),
      cmocka_unit_test_teardown(test_registers_of_a_preempted_loop_survive, tu_teardown_shutdown),
      cmocka_unit_test(test_checkmark_catches_a_skipped_preempted_frame),
      cmocka_unit_test_teardown(test_not_stopped_inside_the_runtime, tu_teardown_shutdown),
      cmocka_unit_test(test_stop_inside_the_runtime_is_caught),
      cmocka_unit_test_teardown(test_watchdog_names_the_holder, tu_teardown_shutdown),
      cmocka_unit_test(test_async_refused_under_tsan),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
