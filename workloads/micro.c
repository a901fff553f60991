/*
 * micro.c: micro benchmarks of the runtime's parts -- goroutine switch,
 * create+exit, unbuffered channel handoff, parked-goroutine memory, and the
 * conservative scanner against a plain streaming read of the same bytes
 * (the physical limit). Each builds a runtime of its own.
 */
#include "workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int start(void) {
  ref_config cfg;
  ref_config_default(&cfg);
  cfg.poison = false;
  cfg.checkmark = false;
  if (ref_init(&cfg) != 0) {
    fprintf(stderr, "micro: ref_init: %s\n", ref_error());
    return -1;
  }
  return 0;
}

size_t wl_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, rss = 0;
  if (!f) return 0;
  if (fscanf(f, "%lu %lu", &size, &rss) != 2) rss = 0;
  fclose(f);
  return rss * (size_t)sysconf(_SC_PAGESIZE); /* statm counts pages: 4K, or 16K/64K on arm64 */
}

/* ---- goroutine switch: two goroutines yielding to each other ---- */

static int64_t switch_iters;

static void yielder(void *arg) {
  (void)arg;
  for (int64_t i = 0; i < switch_iters; i++) ref_yield();
}

static double micro_switch(int64_t iters, uint64_t *bytes) {
  (void)bytes;
  if (start() != 0) return -1;
  switch_iters = iters / 2 > 0 ? iters / 2 : 1;
  ref_go(yielder, NULL);
  ref_go(yielder, NULL);
  double t0 = now_s();
  ref_run();
  double t = now_s() - t0;
  ref_shutdown();
  return t * (double)iters / (double)(2 * switch_iters);
}

/* ---- create + start + exit, with stacks reused ---- */

static void nop(void *arg) { (void)arg; }

static double micro_create(int64_t iters, uint64_t *bytes) {
  (void)bytes;
  if (start() != 0) return -1;
  ref_go(nop, NULL); /* warm the stack cache */
  ref_run();
  double t0 = now_s();
  for (int64_t i = 0; i < iters; i += 64) {
    for (int k = 0; k < 64; k++) ref_go(nop, NULL);
    ref_run();
  }
  double t = now_s() - t0;
  ref_shutdown();
  int64_t done = (iters + 63) / 64 * 64;
  return t * (double)iters / (double)done;
}

/* ---- unbuffered channel handoff between two goroutines ---- */

static ref_chan *handoff_ch;
static int64_t handoff_iters;

static void h_send(void *arg) {
  (void)arg;
  for (int64_t i = 0; i < handoff_iters; i++) ref_chan_send(handoff_ch, &i);
}

static void h_recv(void *arg) {
  (void)arg;
  int64_t v;
  for (int64_t i = 0; i < handoff_iters; i++) ref_chan_recv(handoff_ch, &v);
}

static double micro_handoff(int64_t iters, uint64_t *bytes) {
  (void)bytes;
  if (start() != 0) return -1;
  handoff_ch = ref_chan_make_size(sizeof(int64_t), 0);
  ref_add_root(&handoff_ch, sizeof handoff_ch);
  handoff_iters = iters;
  ref_go(h_recv, NULL);
  ref_go(h_send, NULL);
  double t0 = now_s();
  ref_run();
  double t = now_s() - t0;
  ref_remove_root(&handoff_ch);
  ref_shutdown();
  return t;
}

/* ---- scanning a stack-like buffer: conservative scan vs streaming read ---- */

#define SCAN_BYTES (64 << 10) /* stays in L2 */

static uint64_t *scan_buf;

/* Fills buf like a parked stack: mostly small integers and code/stack
 * addresses, one word in 16 a pointer into the heap. */
static int scan_setup(void) {
  static const ref_type obj = {64, NULL, "micro.obj"};
  if (start() != 0) return -1;
  scan_buf = aligned_alloc(64, SCAN_BYTES);
  void *objs[64];
  for (int i = 0; i < 64; i++) objs[i] = ref_alloc(&obj);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < SCAN_BYTES / 8; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    scan_buf[i] = i % 16 == 0 ? (uint64_t)(uintptr_t)objs[x % 64] : (x & 0xffff) | 0x7ffc00000000ull;
  }
  return 0;
}

static double micro_scan(int64_t iters, uint64_t *bytes) {
  if (scan_setup() != 0) return -1;
  double t0 = now_s();
  uint64_t cand = 0;
  for (int64_t i = 0; i < iters; i++) cand += ref_debug_scan_conservative(scan_buf, SCAN_BYTES);
  double t = now_s() - t0;
  if (cand != (uint64_t)iters * (SCAN_BYTES / 8 / 16)) t = -1; /* every pointer found */
  *bytes = (uint64_t)iters * SCAN_BYTES;
  free(scan_buf);
  ref_shutdown();
  return t;
}

static double micro_stream(int64_t iters, uint64_t *bytes) {
  if (scan_setup() != 0) return -1;
  volatile uint64_t sink = 0;
  double t0 = now_s();
  for (int64_t i = 0; i < iters; i++) {
    uint64_t s = 0;
    for (size_t k = 0; k < SCAN_BYTES / 8; k++) s += scan_buf[k];
    sink += s;
  }
  double t = now_s() - t0;
  (void)sink;
  *bytes = (uint64_t)iters * SCAN_BYTES;
  free(scan_buf);
  ref_shutdown();
  return t;
}

const wl_micro wl_micros[] = {
    {"GoroutineSwitch", "two goroutines yielding to each other, per switch", micro_switch},
    {"GoroutineCreate", "create + start + exit of a goroutine, stacks reused", micro_create},
    {"ChanHandoff", "unbuffered channel send/receive between two goroutines", micro_handoff},
    {"ConservativeScan", "conservative scan of a 64 KiB stack-like buffer in cache", micro_scan},
    {"StreamRead", "summing the same 64 KiB buffer: the physical limit", micro_stream},
};
const size_t wl_nmicros = REF_ARRAY_SIZE(wl_micros);
