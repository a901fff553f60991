/*
 * gofmt.c: Go benchmark lines, as Go's testing package prints them, for
 * benchstat. See gofmt.h for the contracts.
 */
#include "gofmt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A "/k:v" part of a name that the bench wrote (mutators:M, reuse:R), not
 * one of the suffixes Google Benchmark appends (gbench.h's gb_register). */
static bool own_dimension(const char *part, int n) {
  static const char *const gb[] = {"min_time:", "iterations:", "repeats:", "threads:"};
  if (memchr(part, ':', (size_t)n) == NULL) return false;
  for (size_t i = 0; i < sizeof gb / sizeof gb[0]; i++)
    if (strncmp(part, gb[i], strlen(gb[i])) == 0) return false;
  return true;
}

int bench_go_name(char *buf, size_t len, const char *name) {
  const char *w = strstr(name, "/workers:");
  if (w == NULL) return snprintf(buf, len, "Benchmark%s", name);
  int procs = atoi(w + 9);
  char dims[160] = ""; /* the bench's "/k:v" parts after the placement */
  size_t used = 0;
  for (const char *p = strchr(w + 1, '/'); p != NULL && used < sizeof dims; p = strchr(p + 1, '/')) {
    int n = (int)strcspn(p + 1, "/");
    if (own_dimension(p + 1, n))
      used += (size_t)snprintf(dims + used, sizeof dims - used, "/%.*s", n, p + 1);
  }
  if (procs == 1) return snprintf(buf, len, "Benchmark%.*s%s", (int)(w - name), name, dims);
  return snprintf(buf, len, "Benchmark%.*s%s-%d", (int)(w - name), name, dims, procs);
}

/* Go's testing.prettyPrint: four or five significant digits for small
 * values, none after the point from 999.95 on. */
static int go_pretty(char *buf, size_t len, double x, const char *unit) {
  static const struct { double min; int width, prec; } rules[] = {
      {999.95, 10, 0}, {99.995, 12, 1}, {9.9995, 13, 2}, {0.99995, 14, 3},
      {0.099995, 15, 4}, {0.0099995, 16, 5}, {0.00099995, 17, 6}, {0, 18, 7}};
  double y = x < 0 ? -x : x;
  int r = 0;
  if (y != 0)
    while (y < rules[r].min) r++;
  return snprintf(buf, len, "%*.*f %s", rules[r].width, rules[r].prec, x, unit);
}

/* Line building with snprintf semantics: `used` grows by each piece's full
 * length even when buf is too small, so the caller learns the length needed;
 * once full, pieces go to (NULL, 0). */
static char *tail(char *buf, size_t len, size_t used) { return used < len ? buf + used : NULL; }
static size_t room(size_t len, size_t used) { return used < len ? len - used : 0; }
static void grow(size_t *used, int n) { *used += n > 0 ? (size_t)n : 0; }

int bench_go_line(char *buf, size_t len, const char *name, int64_t iterations, double ns_per_op,
                  const bench_metric *extra, size_t nextra) {
  size_t used = 0;
  grow(&used, bench_go_name(tail(buf, len, used), room(len, used), name));
  grow(&used, snprintf(tail(buf, len, used), room(len, used), "\t%8lld", (long long)iterations));
  if (ns_per_op != 0) {
    grow(&used, snprintf(tail(buf, len, used), room(len, used), "\t"));
    grow(&used, go_pretty(tail(buf, len, used), room(len, used), ns_per_op, "ns/op"));
  }
  for (size_t i = 0; i < nextra; i++) {
    grow(&used, snprintf(tail(buf, len, used), room(len, used), "\t"));
    grow(&used, go_pretty(tail(buf, len, used), room(len, used), extra[i].value, extra[i].unit));
  }
  return (int)used;
}

void bench_go_header(FILE *f, const char *cpu) {
#if defined(__x86_64__)
  const char *arch = "amd64";
#elif defined(__aarch64__)
  const char *arch = "arm64";
#else
  const char *arch = "unknown";
#endif
  fprintf(f, "goos: linux\ngoarch: %s\npkg: stackscan\n", arch);
  if (cpu != NULL && *cpu != '\0') fprintf(f, "cpu: %s\n", cpu);
}
