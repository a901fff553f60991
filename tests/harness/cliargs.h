/*
 * cliargs.h: what the harness tests that parse a command line share: a
 * workload table (five Go workloads, two micro) and parse(), which runs
 * bench_parse over copies of its arguments.
 */
#ifndef TESTS_HARNESS_CLIARGS_H
#define TESTS_HARNESS_CLIARGS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli.h"

static const bench_workload_name table[] = {
    {"GoroutineSelect", BENCH_WL_GO},   {"GoroutineBlocking", BENCH_WL_GO},
    {"GoroutineForRange", BENCH_WL_GO}, {"GoroutineIdle", BENCH_WL_GO},
    {"MicroScan", BENCH_WL_MICRO},      {"MicroAlloc", BENCH_WL_MICRO},
    {"GoroutineLatency", BENCH_WL_GO},  /* the table's name: min_mutators is wl_find's */
};
#define NTABLE (REF_ARRAY_SIZE(table))

/* argv storage for one parse: the strings are copied so the parser may
 * reorder the pointers. */
typedef struct args {
  char store[24][128];
  char *argv[25];
  int argc;
  bench_opts o;
  char err[1024];
  int rc;
} args;

/* Parses "prog" followed by the NULL-terminated arguments. */
static args *parse(const char *first, ...) {
  static args a;
  memset(&a, 0, sizeof a);
  va_list ap;
  va_start(ap, first);
  strcpy(a.store[0], "stackscan-bench");
  a.argv[a.argc] = a.store[a.argc];
  a.argc++;
  for (const char *s = first; s != NULL; s = va_arg(ap, const char *)) {
    assert_true(a.argc < 24);
    snprintf(a.store[a.argc], sizeof a.store[0], "%s", s);
    a.argv[a.argc] = a.store[a.argc];
    a.argc++;
  }
  va_end(ap);
  a.rc = bench_parse(&a.argc, a.argv, table, NTABLE, &a.o, a.err, sizeof a.err);
  return &a;
}

#endif /* TESTS_HARNESS_CLIARGS_H */
