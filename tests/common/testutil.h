/*
 * testutil.h: helpers shared by the cmocka tests: start a runtime with the
 * test defaults (checkmark and poison on), and run code that must die in a
 * child process, checking its exit and its message.
 */
#ifndef STACKSCAN_TESTUTIL_H
#define STACKSCAN_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h" /* REF_ASAN, REF_TSAN */
#include "ref.h"

#include <stdatomic.h>

/* TSan makes every goroutine a fiber, and fibers count against its limit
 * of 8128 threads: tests that park many goroutines cap their count. */
#define TU_MAX_GOROUTINES (REF_TSAN ? 4000 : 100000000)
#define TU_CAP_G(n) ((n) < TU_MAX_GOROUTINES ? (n) : TU_MAX_GOROUTINES)

/* The test defaults: checkmark + poison, a 1 GiB heap, the given strategy. */
static inline void tu_config(ref_config *cfg, ref_phase phase, ref_scan scan, ref_stackmaps maps,
                             int workers) {
  ref_config_default(cfg);
  cfg->checkmark = true;
  cfg->poison = true;
  cfg->phase = phase;
  cfg->scan = scan;
  cfg->stackmaps = maps;
  cfg->workers = workers;
  cfg->heap_max = (size_t)1 << 30;
}

/* Starts the runtime with cfg or fails the test. */
static inline void tu_start(const ref_config *cfg) {
  if (ref_init(cfg) != 0) fail_msg("ref_init: %s", ref_error());
}

/* Starts the runtime with the test defaults and the given strategy. */
static inline void tu_init_with(ref_phase phase, ref_scan scan, ref_stackmaps maps, int workers) {
  ref_config cfg;
  tu_config(&cfg, phase, scan, maps, workers);
  tu_start(&cfg);
}

static inline void tu_init(void) {
  tu_init_with(REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
}

/* tu_init with one mutator whatever STACKSCAN_MUTATORS says: for a test of
 * what only one thread defines (the order goroutines run in). */
static inline void tu_init_one_mutator(void) {
  ref_config cfg;
  tu_config(&cfg, REF_PHASE_SERIAL, REF_SCAN_CONSERVATIVE, REF_MAPS_DIRECT, 1);
  cfg.mutators = 1;
  tu_start(&cfg);
}

/* The mutators in use (ctest runs each test with STACKSCAN_MUTATORS=1, 2, 4). */
static inline int tu_mutators(void) { return ref_get_config()->mutators; }

/* A lock for test state that goroutines on several mutators share (a
 * model of the heap, say). Waiting yields, a safepoint: a goroutine that
 * blocked its thread instead would keep a collection's stop from
 * completing while the holder is stopped inside (an allocation). */
typedef struct tu_glock {
  _Atomic int held;
} tu_glock;
static inline void tu_glock_take(tu_glock *l) {
  int z = 0;
  while (!atomic_compare_exchange_weak(&l->held, &z, 1)) {
    z = 0;
    ref_yield();
  }
}
static inline void tu_glock_give(tu_glock *l) { atomic_store(&l->held, 0); }

/* A cmocka teardown: after a failed assertion the runtime is still up; shut
 * it down so that the next test can start its own. */
static inline int tu_teardown_shutdown(void **state) {
  (void)state;
  ref_shutdown();
  return 0;
}

/* Runs fn in a child process; asserts it dies abnormally (a signal or a
 * non-zero exit) with `expect` in its stderr. */
static inline void tu_expect_death(void (*fn)(void), const char *expect) {
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(pfd[1], 2);
    close(pfd[0]);
    signal(SIGABRT, SIG_DFL);
    fn();
    _exit(0); /* survived: the parent fails the test */
  }
  close(pfd[1]);
  char buf[8192];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof buf - 1 && (r = read(pfd[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = 0;
  close(pfd[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  bool abnormal = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
  if (!abnormal) fail_msg("child survived; stderr: %s", buf);
  if (!strstr(buf, expect)) fail_msg("child stderr lacks \"%s\": %s", expect, buf);
}

#endif
