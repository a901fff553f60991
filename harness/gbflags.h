/*
 * gbflags.h: Google Benchmark's own flags on stackscan-bench's command line.
 *
 * They pass through to gb_initialize, but some values are checked first: on
 * a bad format or time unit the library prints its usage and exits 0, it
 * takes bad numbers with a warning and a default, and it finds a bad filter
 * regex or an unwritable output file only after it has started; and glibc's
 * regcomp takes gigabytes or seconds for a filter that repeats too much.
 */
#ifndef HARNESS_GBFLAGS_H
#define HARNESS_GBFLAGS_H

#include <stdbool.h>
#include <stddef.h>

/* True for an argument that belongs to Google Benchmark: --benchmark_*, --v=. */
bool bench_is_gbench_flag(const char *arg);

/* Checks the value of one of Google Benchmark's flags. Returns 0, or -1 with
 * a message in err that quotes arg verbatim (the caller makes it one line). */
int bench_check_gbench_flag(const char *arg, char *err, size_t errlen);

#endif /* HARNESS_GBFLAGS_H */
