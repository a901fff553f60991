/*
 * cli.c: stackscan-bench's flags -- the table, the values' parsers, the
 * parse loop -- and --help. Google Benchmark's flags are checked in
 * gbflags.c. See cli.h for the contracts.
 */
#include "cli.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gbflags.h"

/* ---------------------------------------------------------------------------
 * Parser state and errors
 * ------------------------------------------------------------------------- */

typedef struct parser {
  const bench_workload_name *table;
  size_t ntable;
  bench_opts *o;
  char *err;
  size_t errlen;
  bool seen_workloads, seen_strategies, seen_n;
} parser;

/* Values from argv are quoted in error messages verbatim, so control
 * characters become '?': the message must stay one line. Returns -1. */
static int one_line(parser *p) {
  for (char *c = p->err; p->errlen > 0 && *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  return -1;
}

/* Formats the error (one line). */
__attribute__((format(printf, 2, 3))) static int fail(parser *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (p->errlen > 0) vsnprintf(p->err, p->errlen, fmt, ap);
  va_end(ap);
  return one_line(p);
}

/* A flag. set() gets the value (NULL for flags without one). For numeric
 * flags lo/hi bound the value, sfx names its suffix table and off places it
 * in bench_opts (an int64_t, or a uint64_t for set_u64). */
typedef struct flag_def flag_def;
struct flag_def {
  const char *name;
  int (*set)(parser *p, const flag_def *f, const char *value);
  bool has_value;
  const char *accepted;   /* NULL: list() writes it */
  uint64_t lo, hi;
  const struct suffix *sfx;
  size_t off;
  const char *(*list)(const parser *p, char *buf, size_t len);
};

typedef struct suffix {
  char c;
  uint64_t mult;
} suffix;

static const suffix count_sfx[] = {{'k', 1000}, {'M', 1000000}, {0, 0}};
static const suffix size_sfx[] = {{'K', 1u << 10}, {'k', 1u << 10}, {'M', 1u << 20},
                                  {'G', 1u << 30}, {'T', (uint64_t)1 << 40}, {'P', (uint64_t)1 << 50},
                                  {0, 0}};
static const suffix no_sfx[] = {{0, 0}};

/* "A, B, ..., micro": the workloads a table accepts, for error messages. */
static const char *workloads_accepted(const parser *p, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < p->ntable && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s, ", p->table[i].name);
  if (used < len) snprintf(buf + used, len - used, "micro");
  return buf;
}

/* "a, b, c": names(0..n-1) joined, then tail (may be NULL). The names of
 * the switches come from their tables in ref.h and topo.h, never a copy. */
static const char *join_names(char *buf, size_t len, int n, const char *(*name)(int),
                              const char *tail) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", name(i));
  if (tail && used < len) snprintf(buf + used, len - used, ", %s", tail);
  return buf;
}

static const char *strategy_name(int i) {
  return ref_strategy_name((ref_phase)(i % REF_NPHASES), (ref_scan)(i / REF_NPHASES));
}
static const char *stackmaps_name(int i) { return ref_stackmaps_name((ref_stackmaps)i); }
static const char *reuse_name(int i) { return ref_reuse_name((ref_reuse)i); }
static const char *preempt_name(int i) { return ref_preempt_name((ref_preempt)i); }
static const char *mode_name(int i) { return ref_mode_name((ref_mode)i); }
static const char *placement_name(int i) { return topo_placement_name((topo_placement)i); }

static const char *strategies_accepted(const parser *p, char *buf, size_t len) {
  (void)p;
  return join_names(buf, len, REF_NSCANS * REF_NPHASES, strategy_name, "all");
}
static const char *stackmaps_accepted(const parser *p, char *buf, size_t len) {
  (void)p;
  return join_names(buf, len, REF_NSTACKMAPS, stackmaps_name, NULL);
}
static const char *reuses_accepted(const parser *p, char *buf, size_t len) {
  (void)p;
  return join_names(buf, len, REF_NREUSES, reuse_name, NULL);
}
static const char *preempts_accepted(const parser *p, char *buf, size_t len) {
  (void)p;
  return join_names(buf, len, REF_NPREEMPTS, preempt_name, NULL);
}
static const char *modes_accepted(const parser *p, char *buf, size_t len) {
  (void)p;
  return join_names(buf, len, REF_NMODES, mode_name, NULL);
}
static const char *placements_accepted(const parser *p, char *buf, size_t len) {
  (void)p;
  return join_names(buf, len, TOPO_NPLACEMENTS, placement_name, NULL);
}

static const char *accepted(const parser *p, const flag_def *f, char *buf, size_t len) {
  return f->accepted != NULL ? f->accepted : f->list(p, buf, len);
}

/* fail() with the flag's "; accepted: ..." tail. */
__attribute__((format(printf, 3, 4))) static int fail_flag(parser *p, const flag_def *f,
                                                            const char *fmt, ...) {
  char what[256], acc[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return fail(p, "--%s: %s; accepted: %s", f->name, what, accepted(p, f, acc, sizeof acc));
}

/* ---------------------------------------------------------------------------
 * Values: numbers and lists
 * ------------------------------------------------------------------------- */

/* Parses decimal digits with at most one trailing suffix from sfx.
 * Returns 0, -1 when malformed, -2 on uint64 overflow. */
static int parse_u64(const char *s, const suffix *sfx, uint64_t *out) {
  uint64_t v = 0, mult = 1;
  const char *q = s;
  if (*q < '0' || *q > '9') return -1;
  for (; *q >= '0' && *q <= '9'; q++) {
    unsigned d = (unsigned)(*q - '0');
    if (v > (UINT64_MAX - d) / 10) return -2;
    v = v * 10 + d;
  }
  if (*q != '\0') {
    const suffix *x = sfx;
    while (x->c != 0 && x->c != *q) x++;
    if (x->c == 0 || q[1] != '\0') return -1;
    mult = x->mult;
  }
  if (v != 0 && mult > UINT64_MAX / v) return -2;
  *out = v * mult;
  return 0;
}

/* Parses one number for flag f and checks it against [f->lo, f->hi]. */
static int parse_number(parser *p, const flag_def *f, const char *s, uint64_t *out) {
  uint64_t v;
  int rc = parse_u64(s, f->sfx, &v);
  if (rc == -1) return fail_flag(p, f, "\"%s\" is not a number", s);
  if (rc == -2 || v > f->hi) return fail_flag(p, f, "\"%s\" is too large", s);
  if (v < f->lo) return fail_flag(p, f, "\"%s\" is too small", s);
  *out = v;
  return 0;
}

typedef int (*item_fn)(parser *p, const flag_def *f, const char *item);

/* Calls fn for each comma-separated item of list; rejects empty items
 * (a leading, doubled or trailing comma) and items longer than 255 bytes. */
static int each_item(parser *p, const flag_def *f, const char *list, item_fn fn) {
  const char *s = list;
  for (;;) {
    const char *end = strchr(s, ',');
    size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
    char item[256];
    if (len == 0) return fail_flag(p, f, "empty item in \"%s\"", list);
    if (len >= sizeof item) return fail_flag(p, f, "item too long in \"%s\"", list);
    memcpy(item, s, len);
    item[len] = '\0';
    if (fn(p, f, item) != 0) return -1;
    if (end == NULL) return 0;
    s = end + 1;
  }
}

/* ---------------------------------------------------------------------------
 * Flag setters
 * ------------------------------------------------------------------------- */

static int add_workload(parser *p, const flag_def *f, int idx) {
  bench_opts *o = p->o;
  for (int i = 0; i < o->nworkloads; i++)
    if (o->workload[i] == idx)
      return fail_flag(p, f, "workload \"%s\" given twice", p->table[idx].name);
  if (o->nworkloads == BENCH_MAX_LIST) return fail_flag(p, f, "more than %d workloads", BENCH_MAX_LIST);
  o->workload[o->nworkloads++] = idx;
  return 0;
}

static int workload_item(parser *p, const flag_def *f, const char *item) {
  if (strcmp(item, "micro") == 0) {
    int found = 0;
    for (size_t i = 0; i < p->ntable; i++) {
      if (p->table[i].kind != BENCH_WL_MICRO) continue;
      found++;
      if (add_workload(p, f, (int)i) != 0) return -1;
    }
    return found > 0 ? 0 : fail_flag(p, f, "no micro benchmarks are built in");
  }
  for (size_t i = 0; i < p->ntable; i++)
    if (strcmp(item, p->table[i].name) == 0) return add_workload(p, f, (int)i);
  return fail_flag(p, f, "unknown workload \"%s\"", item);
}

static int set_workloads(parser *p, const flag_def *f, const char *v) {
  p->o->nworkloads = 0;
  p->seen_workloads = true;
  return each_item(p, f, v, workload_item);
}

static int add_strategy(parser *p, const flag_def *f, ref_phase ph, ref_scan sc) {
  bench_opts *o = p->o;
  for (int i = 0; i < o->nstrategies; i++)
    if (o->strategy[i].phase == ph && o->strategy[i].scan == sc)
      return fail_flag(p, f, "strategy \"%s\" given twice", ref_strategy_name(ph, sc));
  o->strategy[o->nstrategies++] = (bench_strategy){ph, sc};
  return 0;
}

static int strategy_item(parser *p, const flag_def *f, const char *item) {
  ref_phase ph;
  ref_scan sc;
  if (strcmp(item, "all") == 0) {
    for (int s = 0; s < REF_NSCANS; s++)
      for (int k = 0; k < REF_NPHASES; k++)
        if (add_strategy(p, f, (ref_phase)k, (ref_scan)s) != 0) return -1;
    return 0;
  }
  if (ref_strategy_parse(item, &ph, &sc) != 0)
    return fail_flag(p, f, "unknown strategy \"%s\"", item);
  return add_strategy(p, f, ph, sc);
}

static int set_strategies(parser *p, const flag_def *f, const char *v) {
  p->o->nstrategies = 0;
  p->seen_strategies = true;
  return each_item(p, f, v, strategy_item);
}

static int n_item(parser *p, const flag_def *f, const char *item) {
  bench_opts *o = p->o;
  uint64_t v;
  if (parse_number(p, f, item, &v) != 0) return -1;
  for (int i = 0; i < o->nn; i++)
    if (o->n[i] == (int64_t)v) return fail_flag(p, f, "n=%s given twice", item);
  if (o->nn == BENCH_MAX_LIST) return fail_flag(p, f, "more than %d values", BENCH_MAX_LIST);
  o->n[o->nn++] = (int64_t)v;
  return 0;
}

static int set_n(parser *p, const flag_def *f, const char *v) {
  p->o->nn = 0;
  p->seen_n = true;
  return each_item(p, f, v, n_item);
}

static int workers_item(parser *p, const flag_def *f, const char *item) {
  bench_opts *o = p->o;
  uint64_t v;
  if (parse_number(p, f, item, &v) != 0) return -1;
  for (int i = 0; i < o->nworkers; i++)
    if (o->workers[i] == (int)v) return fail_flag(p, f, "workers=%s given twice", item);
  if (o->nworkers == BENCH_MAX_LIST) return fail_flag(p, f, "more than %d values", BENCH_MAX_LIST);
  o->workers[o->nworkers++] = (int)v;
  return 0;
}

static int set_workers(parser *p, const flag_def *f, const char *v) {
  p->o->nworkers = 0;
  p->o->workers_all = strcmp(v, "all") == 0;
  return p->o->workers_all ? 0 : each_item(p, f, v, workers_item);
}

static int mutators_item(parser *p, const flag_def *f, const char *item) {
  bench_opts *o = p->o;
  uint64_t v;
  if (parse_number(p, f, item, &v) != 0) return -1;
  for (int i = 0; i < o->nmutators; i++)
    if (o->mutators[i] == (int)v) return fail_flag(p, f, "mutators=%s given twice", item);
  if (o->nmutators == BENCH_MAX_LIST) return fail_flag(p, f, "more than %d values", BENCH_MAX_LIST);
  o->mutators[o->nmutators++] = (int)v;
  return 0;
}

static int set_mutators(parser *p, const flag_def *f, const char *v) {
  p->o->nmutators = 0;
  p->o->mutators_given = true;
  return each_item(p, f, v, mutators_item);
}

static int set_stackmaps(parser *p, const flag_def *f, const char *v) {
  if (ref_stackmaps_parse(v, &p->o->stackmaps) != 0)
    return fail_flag(p, f, "unknown stackmaps \"%s\"", v);
  return 0;
}

/* item_fn parses one item of a list of a switch's names into o->arr with
 * parse, refusing unknown names and repeats; set_fn parses the list. */
#define NAME_LIST_FLAG(item_fn, set_fn, type, parse, what, arr, count)                      \
  static int item_fn(parser *p, const flag_def *f, const char *item) {                    \
    bench_opts *o = p->o;                                                                 \
    type r;                                                                               \
    if (parse(item, &r) != 0) return fail_flag(p, f, "unknown " what " \"%s\"", item);    \
    for (int i = 0; i < o->count; i++)                                                    \
      if (o->arr[i] == r) return fail_flag(p, f, what " \"%s\" given twice", item);       \
    o->arr[o->count++] = r;                                                               \
    return 0;                                                                             \
  }                                                                                       \
  static int set_fn(parser *p, const flag_def *f, const char *v) {                        \
    p->o->count = 0;                                                                      \
    return each_item(p, f, v, item_fn);                                                   \
  }
NAME_LIST_FLAG(reuse_item, set_reuse, ref_reuse, ref_reuse_parse, "reuse", reuse, nreuse)
NAME_LIST_FLAG(preempt_item, set_preempt, ref_preempt, ref_preempt_parse, "preempt", preempt,
               npreempt)
NAME_LIST_FLAG(mode_item, set_mode, ref_mode, ref_mode_parse, "mode", mode, nmode)
#undef NAME_LIST_FLAG

static int set_placement(parser *p, const flag_def *f, const char *v) {
  if (topo_placement_parse(v, &p->o->placement) != 0)
    return fail_flag(p, f, "unknown placement \"%s\"", v);
  return 0;
}

static int set_format(parser *p, const flag_def *f, const char *v) {
  if (strcmp(v, "go") == 0)
    p->o->format = BENCH_FORMAT_GO;
  else if (strcmp(v, "console") == 0)
    p->o->format = BENCH_FORMAT_CONSOLE;
  else
    return fail_flag(p, f, "unknown format \"%s\"", v);
  return 0;
}

static int set_topology(parser *p, const flag_def *f, const char *v) {
  (void)f;
  p->o->topology = v; /* checked when the topology loads */
  return 0;
}

static int set_trace(parser *p, const flag_def *f, const char *v) {
  (void)f;
  p->o->trace = v; /* opened before the first benchmark runs */
  return 0;
}

/* Numeric flags: the value lands at f->off in bench_opts. */
static int set_i64(parser *p, const flag_def *f, const char *v) {
  uint64_t x;
  if (parse_number(p, f, v, &x) != 0) return -1;
  *(int64_t *)((char *)p->o + f->off) = (int64_t)x;
  return 0;
}

static int set_u64(parser *p, const flag_def *f, const char *v) {
  uint64_t x;
  if (parse_number(p, f, v, &x) != 0) return -1;
  *(uint64_t *)((char *)p->o + f->off) = x;
  return 0;
}

/* A workload shape flag: lo/hi only keep the value within wl_params' int;
 * the workloads judge it, with every shape flag given so far. */
static int set_shape(parser *p, const flag_def *f, const char *v) {
  char why[128];
  if (set_i64(p, f, v) != 0) return -1;
  wl_params probe = bench_wl_params(p->o, 1);
  if (wl_params_check(&probe, why, sizeof why) != 0)
    return fail(p, "--%s: \"%s\": %s", f->name, v, why);
  return 0;
}

/* GOGC: a percentage, or off (as Go's GOGC=off). */
static int set_gc_percent(parser *p, const flag_def *f, const char *v) {
  if (strcmp(v, "off") == 0) {
    p->o->gc_percent = -1;
    return 0;
  }
  return set_i64(p, f, v);
}

/* --wake: a fraction, judged by wl_params_check like the shape flags. */
static int set_wake(parser *p, const flag_def *f, const char *v) {
  char *end, why[128];
  double x = strtod(v, &end);
  if (end == v || *end != '\0') return fail_flag(p, f, "\"%s\" is not a number", v);
  p->o->wake = x < 0 ? 2 : x; /* a negative fraction is refused, not the default */
  wl_params probe = bench_wl_params(p->o, 1);
  if (wl_params_check(&probe, why, sizeof why) != 0)
    return fail(p, "--%s: \"%s\": %s", f->name, v, why);
  return 0;
}

static int set_stack_size(parser *p, const flag_def *f, const char *v) {
  if (set_u64(p, f, v) != 0) return -1;
  if (p->o->stack_size % 4096 != 0) return fail_flag(p, f, "\"%s\" is not a multiple of 4K", v);
  return 0;
}

/* --prefetch=auto or W,L,P: three integers, the aheads 1..REF_MAX_PREFETCH_AHEAD
 * and the lines 1..REF_MAX_PREFETCH_LINES. */
static int set_prefetch(parser *p, const flag_def *f, const char *v) {
  int *d = p->o->prefetch, end = -1;
  if (strcmp(v, "auto") == 0) {
    d[0] = d[1] = d[2] = 0;
    return 0;
  }
  if (sscanf(v, "%d,%d,%d%n", &d[0], &d[1], &d[2], &end) != 3 || v[end] != '\0' ||
      d[0] < 1 || d[0] > REF_MAX_PREFETCH_AHEAD || d[1] < 1 || d[1] > REF_MAX_PREFETCH_AHEAD ||
      d[2] < 1 || d[2] > REF_MAX_PREFETCH_LINES)
    return fail_flag(p, f, "\"%s\" is not auto or three integers in range", v);
  return 0;
}

static int set_bool(parser *p, const flag_def *f, const char *v) {
  (void)v;
  *(bool *)((char *)p->o + f->off) = true;
  return 0;
}

#define STR_(x) #x
#define STR(x) STR_(x)
#define OFF(field) offsetof(bench_opts, field)

static const flag_def flags[] = {
    {"workloads", set_workloads, true, NULL, 0, 0, no_sfx, 0, workloads_accepted},
    {"strategies", set_strategies, true, NULL, 0, 0, no_sfx, 0, strategies_accepted},
    {"stackmaps", set_stackmaps, true, NULL, 0, 0, no_sfx, 0, stackmaps_accepted},
    {"n", set_n, true, "integers 1.." STR(BENCH_MAX_N) " with optional suffix k (1000) or M "
     "(1000000), e.g. 1000,10k", 1, BENCH_MAX_N, count_sfx, 0, NULL},
    {"workers", set_workers, true, "integers 1.." STR(REF_MAX_WORKERS) ", or all", 1,
     REF_MAX_WORKERS, no_sfx, 0, NULL},
    {"mutators", set_mutators, true, "integers 1.." STR(REF_MAX_MUTATORS), 1, REF_MAX_MUTATORS,
     no_sfx, 0, NULL},
    {"reuse", set_reuse, true, NULL, 0, 0, no_sfx, 0, reuses_accepted},
    {"preempt", set_preempt, true, NULL, 0, 0, no_sfx, 0, preempts_accepted},
    {"mode", set_mode, true, NULL, 0, 0, no_sfx, 0, modes_accepted},
    {"placement", set_placement, true, NULL, 0, 0, no_sfx, 0, placements_accepted},
    {"depth", set_shape, true, "integers 0.." STR(WL_MAX_DEPTH), 0, INT_MAX, no_sfx, OFF(depth), NULL},
    {"frame-bytes", set_shape, true, "sizes 0.." STR(WL_MAX_FRAME_BYTES) " (suffix K, M)", 0,
     INT_MAX, size_sfx, OFF(frame_bytes), NULL},
    {"slots", set_shape, true, "integers " STR(WL_MIN_SLOTS) ".." STR(WL_MAX_SLOTS), 0, INT_MAX,
     no_sfx, OFF(slots), NULL},
    {"heap-per-g", set_shape, true, "sizes 0.." STR(WL_MAX_HEAP_PER_G) " (suffix K, M)", 0,
     INT_MAX, size_sfx, OFF(heap_per_g), NULL},
    {"wake", set_wake, true, "fractions " STR(WL_MIN_WAKE) ".." STR(WL_MAX_WAKE), 0, 0, no_sfx, 0,
     NULL},
    {"dirty", set_shape, true, "sizes 0.." STR(WL_MAX_DIRTY) " (suffix K, M)", 0, INT_MAX,
     size_sfx, OFF(dirty), NULL},
    {"poll-every", set_shape, true, "integers " STR(WL_MIN_POLL_EVERY) ".."
     STR(WL_MAX_POLL_EVERY) " (suffix k, M); 0 (never) with --preempt=async only", 0, INT_MAX,
     count_sfx, OFF(poll_every), NULL},
    {"topology", set_topology, true, "an hwloc synthetic description, e.g. \"pack:2 numa:2 "
     "core:4 pu:2\"", 0, 0, no_sfx, 0, NULL},
    {"trace", set_trace, true, "a file name", 0, 0, no_sfx, 0, NULL},
    {"format", set_format, true, "go, console", 0, 0, no_sfx, 0, NULL},
    {"gc-percent", set_gc_percent, true, "integers 0..2147483647 (INT_MAX), or off", 0, INT_MAX,
     no_sfx, OFF(gc_percent), NULL},
    {"seed", set_u64, true, "integers 0..18446744073709551615", 0, UINT64_MAX, no_sfx, OFF(seed), NULL},
    {"max-mem", set_u64, true, "sizes 1..1P bytes with suffix K, M, G, T, P (e.g. 16G)", 1,
     BENCH_MAX_MEM, size_sfx, OFF(max_mem), NULL},
    {"stack-size", set_stack_size, true, "sizes 16K..1G, multiples of 4K (suffix K, M, G)",
     BENCH_MIN_STACK, BENCH_MAX_STACK, size_sfx, OFF(stack_size), NULL},
    {"prefetch", set_prefetch, true, "auto, or W,L,P with W and L 1.." STR(REF_MAX_PREFETCH_AHEAD)
     " and P 1.." STR(REF_MAX_PREFETCH_LINES), 0, 0, no_sfx, 0, NULL},
    {"list", set_bool, false, "no value", 0, 0, no_sfx, OFF(list), NULL},
    {"checkmark", set_bool, false, "no value", 0, 0, no_sfx, OFF(checkmark), NULL},
    {"help", set_bool, false, "no value", 0, 0, no_sfx, OFF(help), NULL},
};

#define NFLAGS (REF_ARRAY_SIZE(flags))

/* "--workloads, ..., --help, --benchmark_*": every flag, for error messages. */
static const char *flag_names(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < NFLAGS && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "--%s, ", flags[i].name);
  if (used < len) snprintf(buf + used, len - used, "--benchmark_*");
  return buf;
}

/* ---------------------------------------------------------------------------
 * The parse loop
 * ------------------------------------------------------------------------- */

static void set_defaults(bench_opts *o) {
  memset(o, 0, sizeof *o);
  o->stackmaps = REF_MAPS_PCTAB;
  o->reuse[0] = REF_REUSE_OFF;
  o->nreuse = 1;
  o->preempt[0] = REF_PREEMPT_COOPERATIVE;
  o->npreempt = 1;
  o->mode[0] = REF_MODE_STW;
  o->nmode = 1;
  o->mutators[0] = 1;
  o->nmutators = 1;
  o->workers_all = true;
  o->placement = TOPO_PLACE_COMPACT;
  o->depth = o->frame_bytes = o->slots = o->heap_per_g = o->dirty = o->poll_every = -1;
  o->wake = -1;
  o->format = BENCH_FORMAT_CONSOLE;
  o->seed = 1;
  ref_config def;
  ref_config_default(&def);
  o->gc_percent = def.gc_percent;
}

/* Lists not given on the command line get their defaults, parsed like user
 * input so that a default workload missing from the table is reported. */
static const flag_def *find_flag(const char *name, size_t len);

static int apply_list_defaults(parser *p) {
  if (!p->seen_workloads &&
      set_workloads(p, find_flag("workloads", 9), BENCH_DEFAULT_WORKLOADS) != 0)
    return -1;
  if (!p->seen_strategies &&
      set_strategies(p, find_flag("strategies", 10), BENCH_DEFAULT_STRATEGIES) != 0)
    return -1;
  if (!p->seen_n) {
    p->o->n[0] = BENCH_DEFAULT_N;
    p->o->nn = 1;
  }
  return 0;
}

static const flag_def *find_flag(const char *name, size_t len) {
  for (size_t i = 0; i < NFLAGS; i++)
    if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0) return &flags[i];
  return NULL;
}

/* A spinner that never polls (--poll-every=0) holds a cooperative stop
 * forever: that run would hang at its first collection, so a sweep with
 * any --preempt value but async is refused, whatever the flags' order. */
static int check_poll_never(parser *p) {
  for (int i = 0; p->o->poll_every == 0 && i < p->o->npreempt; i++)
    if (p->o->preempt[i] != REF_PREEMPT_ASYNC)
      return fail(p, "--poll-every=0 (never poll) needs --preempt=%s and no other value: a %s "
                  "stop would wait forever for a spinner that never polls (--preempt's default "
                  "is %s)", ref_preempt_name(REF_PREEMPT_ASYNC),
                  ref_preempt_name(p->o->preempt[i]), ref_preempt_name(REF_PREEMPT_COOPERATIVE));
  return 0;
}

/* Handles argv[*i], a flag of ours; may consume argv[*i + 1] as its value. */
static int parse_one(parser *p, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  char names[512];
  if (strcmp(a, "-h") == 0) a = "--help";
  if (strncmp(a, "--", 2) != 0)
    return fail(p, "unexpected argument \"%s\"; accepted: %s", a, flag_names(names, sizeof names));
  const char *name = a + 2, *eq = strchr(name, '=');
  size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
  const flag_def *f = find_flag(name, len);
  if (f == NULL)
    return fail(p, "unknown flag \"%s\"; accepted: %s", a, flag_names(names, sizeof names));
  if (!f->has_value) {
    if (eq != NULL) return fail_flag(p, f, "takes no value, got \"%s\"", eq + 1);
    return f->set(p, f, NULL);
  }
  const char *v = eq != NULL ? eq + 1 : NULL;
  if (v == NULL && *i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) v = argv[++*i];
  if (v == NULL || *v == '\0') return fail_flag(p, f, "missing value");
  return f->set(p, f, v);
}

int bench_parse(int *argc, char **argv, const bench_workload_name *table, size_t ntable,
                bench_opts *o, char *err, size_t errlen) {
  parser p = {table, ntable, o, err, errlen, false, false, false};
  int out = 1;
  set_defaults(o);
  if (errlen > 0) err[0] = '\0';
  for (int i = 1; i < *argc; i++) {
    if (bench_is_gbench_flag(argv[i])) {
      if (bench_check_gbench_flag(argv[i], err, errlen) != 0) return one_line(&p);
      argv[out++] = argv[i];
    } else if (parse_one(&p, *argc, argv, &i) != 0) {
      return -1;
    }
  }
  if (out < *argc) argv[out] = NULL;
  *argc = out;
  return apply_list_defaults(&p) != 0 ? -1 : check_poll_never(&p);
}

wl_params bench_wl_params(const bench_opts *o, int64_t n) {
  return (wl_params){n, (int)o->depth, (int)o->frame_bytes, (int)o->slots, (int)o->heap_per_g,
                     o->seed, o->wake, (int)o->dirty, (int)o->poll_every};
}

int bench_mutators_env(bench_opts *o, const char *env, char *err, size_t errlen) {
  parser p = {.o = o, .err = err, .errlen = errlen};
  uint64_t v;
  if (o->mutators_given || env == NULL || *env == '\0') return 0;
  if (parse_u64(env, no_sfx, &v) != 0 || v < 1 || v > REF_MAX_MUTATORS)
    return fail(&p, "STACKSCAN_MUTATORS=\"%s\" is not a number of mutator threads in 1..%d "
                "(it is the default of --mutators, and ref_init's)", env, REF_MAX_MUTATORS);
  o->mutators[0] = (int)v;
  o->nmutators = 1;
  return 0;
}

int bench_check_leftover(int argc, char **argv, char *err, size_t errlen) {
  if (argc <= 1) return 0;
  parser p = {.err = err, .errlen = errlen};
  char names[512];
  return fail(&p, "unknown flag \"%s\"; accepted: %s (Google Benchmark's: see --help)", argv[1],
              flag_names(names, sizeof names));
}

/* ---------------------------------------------------------------------------
 * Help
 * ------------------------------------------------------------------------- */

/* The switches' lines, printed from their tables. */
static void usage_switches(FILE *f) {
  char buf[512];
  fprintf(f,
          "  --workloads=LIST    comma-separated workloads, or micro for the micro benchmarks\n"
          "                      (default " BENCH_DEFAULT_WORKLOADS ")\n"
          "  --strategies=LIST   where x how stacks are scanned, or all for the %d:\n",
          REF_NSCANS * REF_NPHASES);
  for (int s = 0; s < REF_NSCANS; s++) {
    fputs("                     ", f);
    for (int k = 0; k < REF_NPHASES; k++)
      fprintf(f, " %s%s", ref_strategy_name((ref_phase)k, (ref_scan)s),
              s + 1 < REF_NSCANS || k + 1 < REF_NPHASES ? "," : "");
    fputc('\n', f);
  }
  fprintf(f, "                      (default " BENCH_DEFAULT_STRATEGIES ")\n");
  fprintf(f, "  --stackmaps=MODE    how frame metadata is found: %s (default %s)\n",
          join_names(buf, sizeof buf, REF_NSTACKMAPS, stackmaps_name, NULL),
          ref_stackmaps_name(REF_MAPS_PCTAB));
  fprintf(f, "  --reuse=LIST        replay clean stacks' scans: %s (default %s); a sweep\n"
             "                      dimension, named /reuse:R in a benchmark name when not %s\n",
          join_names(buf, sizeof buf, REF_NREUSES, reuse_name, NULL),
          ref_reuse_name(REF_REUSE_OFF), ref_reuse_name(REF_REUSE_OFF));
  fprintf(f, "  --preempt=LIST      how a stop reaches a running goroutine: %s (default\n"
             "                      %s); a sweep dimension, named /preempt:P when not %s;\n"
             "                      ref_init refuses %s in a ThreadSanitizer build\n",
          join_names(buf, sizeof buf, REF_NPREEMPTS, preempt_name, NULL),
          ref_preempt_name(REF_PREEMPT_COOPERATIVE), ref_preempt_name(REF_PREEMPT_COOPERATIVE),
          ref_preempt_name(REF_PREEMPT_ASYNC));
  fprintf(f, "  --mode=LIST         when the collector marks: %s\n"
             "                      (default %s); a sweep dimension, named /mode:X when not %s\n",
          join_names(buf, sizeof buf, REF_NMODES, mode_name, NULL), ref_mode_name(REF_MODE_STW),
          ref_mode_name(REF_MODE_STW));
  fprintf(f, "  --placement=P       how mark workers and mutators are bound to PUs (default %s):\n",
          topo_placement_name(TOPO_PLACE_COMPACT));
  for (int i = 0; i < TOPO_NPLACEMENTS; i++)
    fprintf(f, "                      %s: %s\n", placement_name(i),
            topo_placement_what((topo_placement)i));
  fputs("                      more workers than PUs wrap around\n", f);
}

static const char usage_text[] =
    "  --n=LIST            parked goroutines per benchmark, 1.." STR(BENCH_MAX_N)
    ", suffix k or M (default 1000)\n"
    "  --workers=LIST|all  mark workers W, 1.." STR(REF_MAX_WORKERS)
    " (default all: one run with W = the PU count)\n"
    "  --mutators=LIST     threads that run goroutines, P (Go's GOMAXPROCS), 1.." STR(REF_MAX_MUTATORS)
    " (default\n"
    "                      STACKSCAN_MUTATORS's value, else 1); a sweep dimension, named\n"
    "                      /mutators:M in a benchmark name when not 1; mutator i is bound to\n"
    "                      worker i's PU (--placement); GoroutineLatency, whose ping-pong pair\n"
    "                      runs on two Ps at once, needs " STR(WL_LATENCY_MIN_MUTATORS) " or more\n"
    "  --depth=N           frames per goroutine stack, 0.." STR(WL_MAX_DEPTH)
    " (default: the workload's)\n"
    "  --frame-bytes=SIZE  native bytes per frame, 0.." STR(WL_MAX_FRAME_BYTES)
    " (default: the workload's)\n"
    "  --slots=N           GC slots per frame record, " STR(WL_MIN_SLOTS) ".." STR(WL_MAX_SLOTS)
    " (default: the workload's)\n"
    "  --heap-per-g=SIZE   heap bytes held per goroutine, 0.." STR(WL_MAX_HEAP_PER_G)
    " (default: the workload's)\n"
    "  --wake=F            GoroutineParked: fraction of readers woken per iteration, "
    STR(WL_MIN_WAKE) ".." STR(WL_MAX_WAKE) " \n                      (default 0.01)\n"
    "  --dirty=SIZE        GoroutineDirtyStack: stack bytes rewritten per wake, 0.." STR(WL_MAX_DIRTY)
    " (default 10K)\n"
    "  --poll-every=K      GoroutineSpin: " STR(WL_MIN_POLL_EVERY) ".." STR(WL_MAX_POLL_EVERY)
    " work units (dependent multiply-adds) between\n"
    "                      a spinner's polls, suffix k or M (default " STR(WL_DEFAULT_POLL_EVERY)
    "); 0, never polling,\n"
    "                      only with --preempt=async (a cooperative stop would wait forever)\n"
    "  --topology=SYNTH    plan for an hwloc synthetic topology, e.g. \"pack:2 numa:2 core:4 pu:2\";\n"
    "                      prints the plan and exits without binding or running\n"
    "  --trace=FILE        write the collections' per-worker timelines (Chrome trace events,\n"
    "                      for Perfetto or chrome://tracing; at most 32 cycles per benchmark)\n"
    "  --format=F          console (Google Benchmark's table) or go (Go benchmark lines for\n"
    "                      benchstat) (default console)\n"
    "  --list              print the plan (benchmarks and worker PUs) and exit\n"
    "  --seed=N            seed for select order and workload shapes (default 1)\n"
    "  --gc-percent=N|off  GOGC: collect by itself when the heap grows N% over the live\n"
    "                      heap, stacks and globals (default 100; timed cycles are ref_gc's)\n"
    "  --max-mem=SIZE      up-front limit on stacks + heap, e.g. 16G (default: 3/4 of memory)\n"
    "  --stack-size=SIZE   bytes reserved per goroutine stack (plus a guard page), 16K..1G in\n"
    "                      4K steps (default 64K, 256K in ASan/TSan builds); parked stacks\n"
    "                      are this far apart, which changes the cost of their TLB misses\n"
    "  --prefetch=auto|W,L,P  stack-scan prefetch distances: goroutines ahead that start the\n"
    "                      page walk, goroutines ahead whose live top is fetched, its lines\n"
    "                      (default auto: the fastest of a few triples, timed once on a\n"
    "                      floor of 8192 parked goroutines)\n"
    "  --checkmark         verify every collection with an independent marker\n"
    "  --help, -h          this text\n"
    "\n"
    "Values go as --flag=value or --flag value. SIZE takes suffixes K, M, G, T, P (powers of\n"
    "1024). Benchmark names are\n"
    "Workload/strategy/n:N/workers:W/placement[/mutators:M][/preempt:P][/mode:X][/reuse:R].\n"
    "\n"
    "Google Benchmark's flags pass through (use --flag=value), among them:\n"
    "  --benchmark_filter=REGEX        run only the benchmarks whose name matches\n"
    "  --benchmark_repetitions=N       repeat each benchmark N times (with aggregates)\n"
    "  --benchmark_min_time=SECONDS    minimum time per benchmark\n"
    "  --benchmark_out=FILE            also write results to FILE\n"
    "  --benchmark_out_format=json     FILE's format: json, console, csv\n"
    "  --benchmark_format=FMT          standard output's format: console, json, csv\n"
    "  --benchmark_report_aggregates_only=true, --benchmark_display_aggregates_only=true,\n"
    "  --benchmark_enable_random_interleaving=true, --benchmark_list_tests=true,\n"
    "  --benchmark_context=key=value, --benchmark_time_unit=ns|us|ms|s, --v=N\n"
    "\n"
    "Exit status: 0 on success, 2 on a bad flag or topology, 1 when a benchmark fails.\n";

void bench_usage(FILE *f, const bench_workload_name *table, size_t ntable) {
  fputs("usage: stackscan-bench [flags]\n\n"
        "Times one full garbage collection with n parked goroutines per workload, strategy\n"
        "and worker count.\n\nWorkloads:", f);
  for (size_t i = 0; i < ntable; i++)
    fprintf(f, " %s%s", table[i].name, table[i].kind == BENCH_WL_MICRO ? " (micro)" : "");
  fputs("\n\nFlags:\n", f);
  usage_switches(f);
  fputs(usage_text, f);
}
