/*
 * gbflags.c: checks of Google Benchmark's own flags, before the library sees
 * them, and the cost estimate that keeps --benchmark_filter's regular
 * expression cheap to compile. See gbflags.h for the contracts.
 */
#include "gbflags.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                       ...) {
  va_list ap;
  va_start(ap, fmt);
  if (errlen > 0) vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

bool bench_is_gbench_flag(const char *a) {
  return strncmp(a, "--benchmark_", 12) == 0 || strncmp(a, "--v=", 4) == 0;
}

/* The rest of a after prefix, or NULL. */
static const char *strprefix(const char *a, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(a, prefix, n) == 0 ? a + n : NULL;
}

static bool one_of(const char *v, const char *const *set) {
  for (; *set != NULL; set++)
    if (strcmp(v, *set) == 0) return true;
  return false;
}

/* glibc's regcomp copies a repeated atom once per repetition, so stacked
 * and nested repetitions multiply: "s" followed by 30 "+" or
 * "((a{1,100}){1,100}){1,100}" takes gigabytes to compile (fuzz_cli found
 * the first), and its epsilon closures take time quadratic in the copies:
 * "=*" and 11 "+", 4096 copies, took 1.1 s and 12 "+" 5 s (fuzz_cli found
 * it too). A group is copied with its contents even when it is empty:
 * "(((){30}){30}){30}" took 37 s (fuzz_cli found it), so a group counts one
 * more than what it holds. Under 1000 copies, a random search took at most
 * 33 ms. No benchmark name needs a tenth of that.
 *
 * filter_nodes is an upper estimate of the copies, from one pass over the
 * ERE: each atom counts 1, each group 1 more than its contents, and a
 * repetition multiplies the atom or group before it by its upper bound (2
 * for *, + and ?, m + 1 for {m,}).
 * Malformed patterns get an estimate too; regcomp then says what is
 * wrong. */
#define FILTER_MAX_NODES 1000
#define FILTER_MAX_DEPTH 64

/* The bound of a {m}, {m,} or {m,n} at *p (just past the '{'); advances
 * *p past the '}'. 0 when it is not a bound (regcomp will judge it). */
static double repeat_bound(const char **p) {
  const char *q = *p;
  double m = 0, n = -1;
  if (!isdigit((unsigned char)*q)) return 0;
  while (isdigit((unsigned char)*q)) m = m * 10 + (*q++ - '0');
  if (*q == ',') {
    q++;
    if (isdigit((unsigned char)*q)) n = 0;
    while (isdigit((unsigned char)*q)) n = n * 10 + (*q++ - '0');
    if (n < 0) n = m + 1;
  }
  if (*q != '}') return 0;
  *p = q + 1;
  return n > m ? n : m > 1 ? m : 1;
}

static double filter_nodes(const char *v) {
  double outer[FILTER_MAX_DEPTH]; /* the enclosing groups' sums so far */
  double sum = 0, last = 0;       /* this group's sum; the last atom's count */
  int depth = 0;
  for (const char *p = v; *p;) {
    char c = *p++;
    double f = 0;
    if (c == '*' || c == '+' || c == '?') f = 2;
    else if (c == '{') f = repeat_bound(&p);
    if (f > 0) {
      sum += last * (f - 1);
      last *= f;
      continue;
    }
    if (c == '(') {
      if (depth == FILTER_MAX_DEPTH) return INFINITY;
      outer[depth++] = sum;
      sum = last = 0;
      continue;
    }
    if (c == ')' && depth > 0) {
      last = sum + 1; /* the group is a node of its own, empty or not */
      sum = outer[--depth] + last;
      continue;
    }
    if (c == '\\' && *p) p++;
    if (c == '[') { /* a bracket expression is one atom: ] first is a member */
      if (*p == '^') p++;
      if (*p == ']') p++;
      while (*p && *p != ']') {
        const char *cls = p[0] == '[' && p[1] == ':' ? strstr(p + 2, ":]") : NULL;
        p = cls ? cls + 2 : p + 1;
      }
      if (*p) p++;
    }
    last = 1;
    sum += 1;
  }
  while (depth > 0) sum += outer[--depth];
  return sum;
}

/* The library takes bad numbers with a warning and a default, a bad regex or
 * an unwritable output file only after it has started: check them first. */
static int check_gbench_value(char *err, size_t errlen, const char *a) {
  const char *v;
  if ((v = strprefix(a, "--benchmark_min_time=")) != NULL) {
    char *end;
    double t = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(t > 0) || t > 1e6)
      return fail(err, errlen, "--benchmark_min_time: \"%s\" is not a positive number of "
                  "seconds", v);
  } else if ((v = strprefix(a, "--benchmark_repetitions=")) != NULL) {
    char *end;
    long r = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || r < 1 || r > 100000)
      return fail(err, errlen, "--benchmark_repetitions: \"%s\" is not a count in 1..100000", v);
  } else if ((v = strprefix(a, "--benchmark_filter=")) != NULL) {
    regex_t re;
    if (filter_nodes(v) > FILTER_MAX_NODES)
      return fail(err, errlen, "--benchmark_filter: \"%s\" repeats too much (nested or stacked "
                  "repetitions over %d copies)", v, FILTER_MAX_NODES);
    if (regcomp(&re, v, REG_EXTENDED | REG_NOSUB) != 0)
      return fail(err, errlen, "--benchmark_filter: \"%s\" is not a valid regular expression", v);
    regfree(&re);
  } else if ((v = strprefix(a, "--benchmark_out=")) != NULL) {
    char dir[4096];
    const char *slash = strrchr(v, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - v) + 1 : 1, slash ? v : ".");
    if (*v == '\0' || access(dir, W_OK) != 0)
      return fail(err, errlen, "--benchmark_out: cannot write \"%s\" (no writable directory %s)",
                  v, dir);
  }
  return 0;
}

int bench_check_gbench_flag(const char *a, char *err, size_t errlen) {
  static const char *const formats[] = {"console", "json", "csv", NULL};
  static const char *const units[] = {"ns", "us", "ms", "s", NULL};
  static const struct {
    const char *prefix, *what, *const *values, *accepted;
  } checked[] = {{"--benchmark_format=", "format", formats, "console, json, csv"},
                 {"--benchmark_out_format=", "format", formats, "console, json, csv"},
                 {"--benchmark_time_unit=", "time unit", units, "ns, us, ms, s"}};
  for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++) {
    size_t len = strlen(checked[i].prefix);
    if (strncmp(a, checked[i].prefix, len) != 0 || one_of(a + len, checked[i].values)) continue;
    return fail(err, errlen, "%.*s: unknown %s \"%s\"; accepted: %s", (int)len - 1, a,
                checked[i].what, a + len, checked[i].accepted);
  }
  return check_gbench_value(err, errlen, a);
}
