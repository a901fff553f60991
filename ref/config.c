/*
 * config.c: the configuration (defaults, validation, the switches' names)
 * and the two error channels (ref__throw for broken invariants, ref__seterr
 * for recoverable failures reported through ref_error()). Start-up and
 * shutdown are runtime.c.
 */
#include "internal.h"
#include "g.h" /* REF_RUNTIME_CALL */
#include "os.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char errbuf[256]; /* per thread, as errno */

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */

void ref__throw(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("stackscan: fatal: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  abort();
}

int ref__seterr(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return -1;
}

const char *ref_error(void) { return errbuf; }


/* ---------------------------------------------------------------------------
 * Configuration and strategy names
 * ------------------------------------------------------------------------- */

#define SPLIT_BYTES_DEFAULT (16 << 10)

/* mem_max's default: 3/4 of physical memory. */
static size_t mem_default(void) {
  return ref__os_physical_memory() / 4 * 3;
}

void ref_config_default(ref_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  /* Sanitizers make frames larger: ASan's redzones several times, and
   * clang's TSan at -O1 enough that the workload tests overflow 64 KiB (they
   * pass in 96). One size for both, with room for either compiler. */
  cfg->stack_size = REF_ASAN || REF_TSAN ? 256 << 10 : 64 << 10;
  cfg->heap_max = (size_t)4 << 30;
  if (cfg->heap_max > mem_default()) cfg->heap_max = mem_default(); /* the default must start */
  cfg->workers = 1;
  cfg->mutators = 0; /* STACKSCAN_MUTATORS or 1, at ref_init */
  cfg->phase = REF_PHASE_SERIAL;
  cfg->scan = REF_SCAN_CONSERVATIVE;
  cfg->stackmaps = REF_MAPS_PCTAB;
  cfg->reuse = REF_REUSE_OFF;
  cfg->mode = REF_MODE_STW;
  cfg->split_bytes = SPLIT_BYTES_DEFAULT;
  cfg->poison = REF_ASSERT_LEVEL >= 2;
  cfg->seed = 1;
  cfg->gc_percent = 100;
}

#define NAME_OF(e, name) name,
static const char *const phase_names[] = {REF_PHASES(NAME_OF)};
static const char *const scan_names[] = {REF_SCANS(NAME_OF)};
static const char *const maps_names[] = {REF_STACKMAPS(NAME_OF)};
static const char *const reuse_names[] = {REF_REUSES(NAME_OF)};
static const char *const preempt_names[] = {REF_PREEMPTS(NAME_OF)};
static const char *const mode_names[] = {REF_MODES(NAME_OF)};
#undef NAME_OF

/* "<scan>-<phase>" for every pair, joined once before main from the two
 * tables above (ref_strategy_name returns pointers into it). */
static char strategy_names[REF_NSCANS][REF_NPHASES][32];

__attribute__((constructor)) static void strategy_names_init(void) {
  for (int s = 0; s < REF_NSCANS; s++)
    for (int p = 0; p < REF_NPHASES; p++)
      snprintf(strategy_names[s][p], sizeof strategy_names[s][p], "%s-%s", scan_names[s],
               phase_names[p]);
}

const char *ref_strategy_name(ref_phase phase, ref_scan scan) {
  if ((unsigned)phase >= REF_NPHASES || (unsigned)scan >= REF_NSCANS) return NULL;
  return strategy_names[scan][phase];
}

int ref_strategy_parse(const char *name, ref_phase *phase, ref_scan *scan) {
  for (int s = 0; s < REF_NSCANS; s++) {
    for (int p = 0; p < REF_NPHASES; p++) {
      if (strcmp(name, strategy_names[s][p]) == 0) {
        *phase = (ref_phase)p;
        *scan = (ref_scan)s;
        return 0;
      }
    }
  }
  return -1;
}

/* The index of name in names[0, n), or -1. */
static int name_index(const char *const *names, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

/* ref_<what>_name and ref_<what>_parse over one switch's table. */
#define NAME_AND_PARSE(what, type, names, count)                                  \
  const char *ref_##what##_name(type v) {                                         \
    return (unsigned)v < (count) ? names[v] : NULL;                               \
  }                                                                               \
  int ref_##what##_parse(const char *name, type *v) {                             \
    int i = name_index(names, (count), name);                                     \
    if (i >= 0) *v = (type)i;                                                     \
    return i < 0 ? -1 : 0;                                                        \
  }
NAME_AND_PARSE(stackmaps, ref_stackmaps, maps_names, REF_NSTACKMAPS)
NAME_AND_PARSE(reuse, ref_reuse, reuse_names, REF_NREUSES)
NAME_AND_PARSE(preempt, ref_preempt, preempt_names, REF_NPREEMPTS)
NAME_AND_PARSE(mode, ref_mode, mode_names, REF_NMODES)
#undef NAME_AND_PARSE

static int check_strategy(ref_phase phase, ref_scan scan, ref_stackmaps maps) {
  if (!ref_strategy_name(phase, scan) || !ref_stackmaps_name(maps))
    return ref__seterr("unknown stack-scanning strategy (phase %d, scan %d, stackmaps %d)",
                       (int)phase, (int)scan, (int)maps);
  return 0;
}

typedef struct strategy_req {
  ref_phase phase;
  ref_scan scan;
  ref_stackmaps maps;
  bool done; /* set when they were written */
} strategy_req;

static void set_strategy(void *arg) {
  strategy_req *r = arg;
  if (!ref__cgc_idle()) return; /* background workers read them while a cycle marks */
  ref__cfg.phase = r->phase;
  ref__cfg.scan = r->scan;
  ref__cfg.stackmaps = r->maps;
  r->done = true;
}

/* With the world stopped, so that a goroutine may switch it while others
 * run: they read the switches after the restart, which orders the writes
 * before. In a concurrent mode the background mark workers do not stop
 * with the world, so the switch waits for a cycle under way to end
 * (torture found the race under TSan). */
int ref_set_strategy(ref_phase phase, ref_scan scan, ref_stackmaps maps) {
  REF_RUNTIME_CALL();
  if (check_strategy(phase, scan, maps) != 0) return -1;
  strategy_req r = {phase, scan, maps, false};
  for (;;) {
    ref__with_world_stopped(set_strategy, &r);
    if (r.done) return 0;
    ref__cgc_wait_idle();
  }
}

/* The prefetch distances' defaults (scan_stack.c says where they come from). */
#define WALK_AHEAD_DEFAULT 8
#define LINES_AHEAD_DEFAULT 3
#define PREFETCH_LINES_DEFAULT 8

static int check_prefetch(int walk, int lines, int nlines) {
  if (walk < 0 || walk > REF_MAX_PREFETCH_AHEAD || lines < 0 || lines > REF_MAX_PREFETCH_AHEAD)
    return ref__seterr("prefetch walk_ahead %d and lines_ahead %d must be in 0..%d", walk, lines,
                       REF_MAX_PREFETCH_AHEAD);
  if (nlines < 0 || nlines > REF_MAX_PREFETCH_LINES)
    return ref__seterr("prefetch_lines %d must be in 0..%d", nlines, REF_MAX_PREFETCH_LINES);
  return 0;
}

void ref__config_fill_defaults(ref_config *cfg) {
  if (cfg->split_bytes == 0) cfg->split_bytes = SPLIT_BYTES_DEFAULT;
}

int ref__config_env_mutators(ref_config *cfg) {
  if (cfg->mutators != 0) return 0; /* set by the program: it wins */
  const char *v = getenv("STACKSCAN_MUTATORS");
  if (!v || !*v) {
    cfg->mutators = 1;
    return 0;
  }
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < 1 || n > REF_MAX_MUTATORS)
    return ref__seterr("STACKSCAN_MUTATORS='%s': expected a number of threads in 1..%d", v,
                       REF_MAX_MUTATORS);
  cfg->mutators = (int)n;
  return 0;
}

static void set_prefetch(void *arg) {
  const int *v = arg;
  ref__cfg.walk_ahead = v[0] ? v[0] : WALK_AHEAD_DEFAULT;
  ref__cfg.lines_ahead = v[1] ? v[1] : LINES_AHEAD_DEFAULT;
  ref__cfg.prefetch_lines = v[2] ? v[2] : PREFETCH_LINES_DEFAULT;
}

int ref_set_prefetch(int walk_ahead, int lines_ahead, int prefetch_lines) {
  REF_RUNTIME_CALL();
  if (check_prefetch(walk_ahead, lines_ahead, prefetch_lines) != 0) return -1;
  int v[3] = {walk_ahead, lines_ahead, prefetch_lines};
  ref__with_world_stopped(set_prefetch, v);
  return 0;
}

const ref_config *ref_get_config(void) { return &ref__cfg; }

bool ref__env_on(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

int ref__config_check(const ref_config *cfg) {
  if (cfg->workers < 1 || cfg->workers > REF_MAX_WORKERS)
    return ref__seterr("workers must be in 1..%d, not %d", REF_MAX_WORKERS, cfg->workers);
  if (cfg->mutators < 0 || cfg->mutators > REF_MAX_MUTATORS)
    return ref__seterr("mutators must be in 1..%d (0 = 1), not %d", REF_MAX_MUTATORS,
                       cfg->mutators);
  if (check_strategy(cfg->phase, cfg->scan, cfg->stackmaps) != 0) return -1;
  if (!ref_reuse_name(cfg->reuse)) return ref__seterr("unknown reuse setting %d", (int)cfg->reuse);
  if (!ref_preempt_name(cfg->preempt))
    return ref__seterr("unknown preempt setting %d", (int)cfg->preempt);
  if (!ref_mode_name(cfg->mode)) return ref__seterr("unknown mode %d", (int)cfg->mode);
  if (cfg->bg_workers < 0 || cfg->bg_workers > REF_MAX_WORKERS)
    return ref__seterr("bg_workers must be in 1..%d (0 = default), not %d", REF_MAX_WORKERS,
                       cfg->bg_workers);
  if (cfg->mode != REF_MODE_STW && cfg->reuse != REF_REUSE_OFF)
    return ref__seterr("mode %s does not take reuse=%s yet", ref_mode_name(cfg->mode),
                       ref_reuse_name(cfg->reuse));
  if (cfg->mode != REF_MODE_STW && cfg->preempt != REF_PREEMPT_COOPERATIVE)
    return ref__seterr("mode %s does not take preempt=%s yet", ref_mode_name(cfg->mode),
                       ref_preempt_name(cfg->preempt));
  if (REF_TSAN && cfg->preempt == REF_PREEMPT_ASYNC)
    return ref__seterr("preempt=async is not available under ThreadSanitizer (it delays signals)");
  if (check_prefetch(cfg->walk_ahead, cfg->lines_ahead, cfg->prefetch_lines) != 0) return -1;
  if (cfg->split_bytes % REF_WORD != 0)
    return ref__seterr("split_bytes %zu is not a multiple of %zu", cfg->split_bytes, REF_WORD);
  if (cfg->stack_size < REF_MIN_STACK_SIZE || cfg->stack_size > REF_MAX_STACK_SIZE)
    return ref__seterr("stack_size %zu out of range [%zu, %zu] (16 KiB to 1 GiB)",
                       cfg->stack_size, REF_MIN_STACK_SIZE, REF_MAX_STACK_SIZE);
  if (cfg->heap_max < REF_MIN_HEAP || cfg->heap_max > REF_MAX_HEAP)
    return ref__seterr("heap_max %zu out of range [%zu, %zu] (1 MiB to 1 TiB)", cfg->heap_max,
                       REF_MIN_HEAP, REF_MAX_HEAP);
  /* Up front the runtime commits to the heap alone (ref.h, mem_max). */
  size_t mem = cfg->mem_max ? cfg->mem_max : mem_default();
  if (cfg->heap_max > mem)
    return ref__seterr("heap_max %zu bytes exceeds mem_max %zu bytes%s", cfg->heap_max, mem,
                       cfg->mem_max ? "" : " (3/4 of physical memory)");
  return 0;
}
