/*
 * fuzz_cli.c: libFuzzer target for stackscan-bench's command line parser,
 * bench_parse (harness/cli.h).
 *
 * The input is split on NUL bytes into at most MAX_ARGS arguments after
 * argv[0]; each is copied into an exactly-sized heap block so that ASan
 * catches a read past its terminator. The argv is parsed three times:
 *   A  with the full workload table and a 512-byte error buffer (main.c's),
 *   B  the same with a 24-byte error buffer (truncation),
 *   C  with a table of only the Go workloads (no micro entries),
 * and the results are checked (__builtin_trap on a violation):
 *   - failure: the message is non-empty, one line, NUL-terminated inside
 *     the buffer; B's is A's message truncated;
 *   - success: every documented bound of bench_opts holds (the shape
 *     flags pass the workloads' own wl_params_check), the lists hold no
 *     duplicates, and argv keeps exactly the Google Benchmark flags, in
 *     order, NULL-terminated when it shrank; A and B agree.
 */
#include "cli.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32
#define ERR_SHORT 24

static const bench_workload_name table_full[] = {
    {"GoroutineSelect", BENCH_WL_GO},   {"GoroutineBlocking", BENCH_WL_GO},
    {"GoroutineForRange", BENCH_WL_GO}, {"GoroutineIdle", BENCH_WL_GO},
    {"Deep", BENCH_WL_GO},              {"ConservativeScan", BENCH_WL_MICRO},
    {"StreamRead", BENCH_WL_MICRO},
};
#define NFULL (REF_ARRAY_SIZE(table_full))
#define NGO 5 /* table_full's first NGO entries, without the micro ones */

/* A violated property: says which, then traps (libFuzzer saves the input). */
#define check(e) ((e) ? (void)0 : violated(#e, __LINE__))
__attribute__((noreturn)) static void violated(const char *what, int line) {
  fprintf(stderr, "fuzz_cli.c:%d: violated: %s\n", line, what);
  __builtin_trap();
}

/* ---------------------------------------------------------------------------
 * argv from the input
 * ------------------------------------------------------------------------- */

typedef struct args {
  int argc;
  char *argv[MAX_ARGS + 2];     /* what bench_parse gets (it may reorder) */
  char *orig[MAX_ARGS + 2];     /* the same pointers, kept to free and compare */
} args;

static char *dup_exact(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (s == NULL) abort();
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* Splits data on NUL bytes; a trailing NUL does not start an empty arg. */
static void args_make(args *a, const uint8_t *data, size_t size) {
  a->argc = 0;
  a->orig[a->argc++] = dup_exact((const uint8_t *)"stackscan-bench", 15);
  size_t i = 0;
  while (i < size && a->argc < MAX_ARGS + 1) {
    const uint8_t *nul = memchr(data + i, 0, size - i);
    size_t n = nul ? (size_t)(nul - (data + i)) : size - i;
    a->orig[a->argc++] = dup_exact(data + i, n);
    i += n + 1;
  }
  a->orig[a->argc] = NULL;
  memcpy(a->argv, a->orig, sizeof a->argv);
}

static void args_free(args *a) {
  for (int i = 0; i < a->argc && a->orig[i]; i++) free(a->orig[i]);
}

/* ---------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------- */

/* One line, non-empty, terminated within len bytes. */
static void check_message(const char *err, size_t len) {
  const char *nul = memchr(err, '\0', len);
  check(nul != NULL);
  check(nul != err);
  check(memchr(err, '\n', (size_t)(nul - err)) == NULL);
}

static bool in_range(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

/* A shape field: -1 (the workload's default) or lo..hi. */
static bool shape_ok(int64_t v, int64_t lo, int64_t hi) { return v == -1 || in_range(v, lo, hi); }

static void check_shape(const bench_opts *o) {
  char err[128];
  wl_params p = bench_wl_params(o, 1);
  check(wl_params_check(&p, err, sizeof err) == 0);
  check(shape_ok(o->depth, 0, WL_MAX_DEPTH));
  check(shape_ok(o->frame_bytes, 0, WL_MAX_FRAME_BYTES));
  check(shape_ok(o->slots, WL_MIN_SLOTS, WL_MAX_SLOTS));
  check(shape_ok(o->heap_per_g, 0, WL_MAX_HEAP_PER_G));
}

static void check_workloads(const bench_opts *o, size_t ntable) {
  check(in_range(o->nworkloads, 1, BENCH_MAX_LIST));
  for (int i = 0; i < o->nworkloads; i++) {
    check(o->workload[i] >= 0 && (size_t)o->workload[i] < ntable);
    for (int j = 0; j < i; j++) check(o->workload[i] != o->workload[j]);
  }
}

static void check_strategies(const bench_opts *o) {
  check(in_range(o->nstrategies, 1, BENCH_MAX_STRATEGIES));
  for (int i = 0; i < o->nstrategies; i++) {
    const bench_strategy *s = &o->strategy[i];
    check(ref_strategy_name(s->phase, s->scan) != NULL);
    for (int j = 0; j < i; j++)
      check(s->phase != o->strategy[j].phase || s->scan != o->strategy[j].scan);
  }
}

static void check_lists(const bench_opts *o) {
  check(in_range(o->nn, 1, BENCH_MAX_LIST));
  for (int i = 0; i < o->nn; i++) {
    check(in_range(o->n[i], 1, BENCH_MAX_N));
    for (int j = 0; j < i; j++) check(o->n[i] != o->n[j]);
  }
  if (o->workers_all) check(o->nworkers == 0);
  else check(in_range(o->nworkers, 1, BENCH_MAX_LIST));
  for (int i = 0; i < o->nworkers; i++) {
    check(in_range(o->workers[i], 1, REF_MAX_WORKERS));
    for (int j = 0; j < i; j++) check(o->workers[i] != o->workers[j]);
  }
}

/* Known, distinct preempt values; never polling only when all are async
 * (a cooperative stop would wait for such a spinner forever). */
static void check_preempt(const bench_opts *o) {
  check(in_range(o->npreempt, 1, REF_NPREEMPTS));
  for (int i = 0; i < o->npreempt; i++) {
    check(ref_preempt_name(o->preempt[i]) != NULL);
    for (int j = 0; j < i; j++) check(o->preempt[i] != o->preempt[j]);
    check(o->poll_every != 0 || o->preempt[i] == REF_PREEMPT_ASYNC);
  }
  check(in_range(o->nmode, 1, REF_NMODES));
  for (int i = 0; i < o->nmode; i++) {
    check(ref_mode_name(o->mode[i]) != NULL);
    for (int j = 0; j < i; j++) check(o->mode[i] != o->mode[j]);
  }
}

/* topology, when set, points into one of the original argument strings. */
static bool points_into_args(const char *s, const args *a) {
  for (int i = 1; i < a->argc; i++) {
    size_t n = strlen(a->orig[i]);
    if (s >= a->orig[i] && s < a->orig[i] + n + 1) return true;
  }
  return false;
}

static void check_opts(const bench_opts *o, size_t ntable, const args *a) {
  check_workloads(o, ntable);
  check_strategies(o);
  check_lists(o);
  check_preempt(o);
  check(ref_stackmaps_name(o->stackmaps) != NULL);
  check(topo_placement_name(o->placement) != NULL);
  check_shape(o);
  check(o->format == BENCH_FORMAT_CONSOLE || o->format == BENCH_FORMAT_GO);
  check(o->max_mem <= BENCH_MAX_MEM);
  check(o->topology == NULL || points_into_args(o->topology, a));
}

static bool is_gbench(const char *s) {
  return strncmp(s, "--benchmark_", 12) == 0 || strncmp(s, "--v=", 4) == 0;
}

/* argv after a successful parse: argv[0], then exactly the original
 * arguments that are Google Benchmark flags, in order; NULL after them
 * when the list shrank. (A gbench-looking string consumed as a flag's
 * value, "--topology --v=1", is not one: it starts with "--", so flags do
 * not take it as a separate value.) */
static void check_leftover(int argc, char *const *argv, const args *a) {
  check(argc >= 1 && argv[0] == a->orig[0]);
  int k = 1;
  for (int i = 1; i < a->argc; i++)
    if (is_gbench(a->orig[i])) {
      check(k < argc && argv[k] == a->orig[i]);
      k++;
    }
  check(k == argc);
  if (argc < a->argc) check(argv[argc] == NULL);
}

/* Field by field: bench_opts has padding. */
static bool opts_equal(const bench_opts *a, const bench_opts *b) {
  bool same = a->nworkloads == b->nworkloads && a->nstrategies == b->nstrategies &&
              a->nn == b->nn && a->nworkers == b->nworkers && a->workers_all == b->workers_all &&
              a->stackmaps == b->stackmaps && a->placement == b->placement &&
              a->depth == b->depth && a->frame_bytes == b->frame_bytes && a->slots == b->slots &&
              a->heap_per_g == b->heap_per_g && a->topology == b->topology &&
              a->format == b->format && a->list == b->list && a->help == b->help &&
              a->checkmark == b->checkmark && a->seed == b->seed && a->max_mem == b->max_mem;
  for (int i = 0; same && i < a->nworkloads; i++) same = a->workload[i] == b->workload[i];
  for (int i = 0; same && i < a->nstrategies; i++)
    same = a->strategy[i].phase == b->strategy[i].phase && a->strategy[i].scan == b->strategy[i].scan;
  for (int i = 0; same && i < a->nn; i++) same = a->n[i] == b->n[i];
  for (int i = 0; same && i < a->nworkers; i++) same = a->workers[i] == b->workers[i];
  return same;
}

/* Parses a fresh copy of a's argv; checks the outcome; returns rc. */
static int parse_checked(const args *a, const bench_workload_name *table, size_t ntable,
                         bench_opts *o, char *err, size_t errlen) {
  args c = *a;
  int argc = c.argc;
  int rc = bench_parse(&argc, c.argv, table, ntable, o, err, errlen);
  check(rc == 0 || rc == -1);
  if (rc == 0) {
    check_opts(o, ntable, a);
    check_leftover(argc, c.argv, a);
  } else if (errlen > 0) {
    check_message(err, errlen);
  }
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bench_opts oa, ob, oc;
  args a;
  args_make(&a, data, size);
  char *ea = malloc(512), *eb = malloc(ERR_SHORT), *ec = malloc(512);
  if (!ea || !eb || !ec) abort();

  int ra = parse_checked(&a, table_full, NFULL, &oa, ea, 512);
  int rb = parse_checked(&a, table_full, NFULL, &ob, eb, ERR_SHORT);
  check(ra == rb);
  if (ra == 0) check(opts_equal(&oa, &ob));
  else check(strncmp(ea, eb, ERR_SHORT - 1) == 0);
  int rc = parse_checked(&a, table_full, NGO, &oc, ec, 512);
  if (ra != 0) check(rc != 0); /* fewer workloads never makes a bad line good */

  free(ea);
  free(eb);
  free(ec);
  args_free(&a);
  return 0;
}
