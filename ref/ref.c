/*
 * ref.c: runtime lifetime (init/shutdown), configuration, strategy names,
 * and the two error channels (ref__throw for broken invariants, ref__seterr
 * for recoverable failures reported through ref_error()).
 */
#include "internal.h"
#include "g.h"
#include "gc.h"
#include "heap.h"
#include "funcdata.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

ref_config ref__cfg;

static char errbuf[256];

/* ---------------------------------------------------------------------------
 * Errors and time
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

uint64_t ref__nanotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------
 * Configuration and strategy names
 * ------------------------------------------------------------------------- */

/* mem_max's default: 3/4 of physical memory. */
static size_t mem_default(void) {
  return (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE) / 4 * 3;
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
  cfg->phase = REF_PHASE_SERIAL;
  cfg->scan = REF_SCAN_CONSERVATIVE;
  cfg->stackmaps = REF_MAPS_PCTAB;
  cfg->split_bytes = 16 << 10;
  cfg->poison = REF_ASSERT_LEVEL >= 2;
  cfg->seed = 1;
}

static const char *const phase_names[] = {"serial", "parallel", "rootjobs"};
static const char *const scan_names[] = {"conservative", "frames"};
static const char *const maps_names[] = {"direct", "pctab", "pctab-cached"};

const char *ref_strategy_name(ref_phase phase, ref_scan scan) {
  static const char *const names[2][3] = {
      {"conservative-serial", "conservative-parallel", "conservative-rootjobs"},
      {"frames-serial", "frames-parallel", "frames-rootjobs"}};
  if ((unsigned)phase > REF_PHASE_ROOTJOBS || (unsigned)scan > REF_SCAN_FRAMES) return NULL;
  return names[scan][phase];
}

int ref_strategy_parse(const char *name, ref_phase *phase, ref_scan *scan) {
  for (int s = 0; s < 2; s++) {
    size_t len = strlen(scan_names[s]);
    if (strncmp(name, scan_names[s], len) != 0 || name[len] != '-') continue;
    for (int p = 0; p < 3; p++) {
      if (strcmp(name + len + 1, phase_names[p]) == 0) {
        *phase = (ref_phase)p;
        *scan = (ref_scan)s;
        return 0;
      }
    }
  }
  return -1;
}

const char *ref_stackmaps_name(ref_stackmaps maps) {
  return (unsigned)maps <= REF_MAPS_PCTAB_CACHED ? maps_names[maps] : NULL;
}

int ref_stackmaps_parse(const char *name, ref_stackmaps *maps) {
  for (int i = 0; i < 3; i++) {
    if (strcmp(name, maps_names[i]) == 0) {
      *maps = (ref_stackmaps)i;
      return 0;
    }
  }
  return -1;
}

static int check_strategy(ref_phase phase, ref_scan scan, ref_stackmaps maps) {
  if (!ref_strategy_name(phase, scan) || !ref_stackmaps_name(maps))
    return ref__seterr("unknown stack-scanning strategy (phase %d, scan %d, stackmaps %d)",
                       (int)phase, (int)scan, (int)maps);
  return 0;
}

int ref_set_strategy(ref_phase phase, ref_scan scan, ref_stackmaps maps) {
  if (check_strategy(phase, scan, maps) != 0) return -1;
  ref__cfg.phase = phase;
  ref__cfg.scan = scan;
  ref__cfg.stackmaps = maps;
  return 0;
}

const ref_config *ref_get_config(void) { return &ref__cfg; }

/* ---------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------- */

static bool env_on(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

static int check_config(const ref_config *cfg) {
  if (cfg->workers < 1 || cfg->workers > REF_MAX_WORKERS)
    return ref__seterr("workers must be in 1..%d, not %d", REF_MAX_WORKERS, cfg->workers);
  if (check_strategy(cfg->phase, cfg->scan, cfg->stackmaps) != 0) return -1;
  if (cfg->split_bytes % REF_WORD != 0)
    return ref__seterr("split_bytes %zu is not a multiple of %zu", cfg->split_bytes, REF_WORD);
  size_t min_stack = 4 * (size_t)sysconf(_SC_PAGESIZE);
  if (cfg->stack_size < min_stack || cfg->stack_size > REF_MAX_STACK_SIZE)
    return ref__seterr("stack_size %zu out of range [%zu, %zu] (4 pages to 1 GiB)",
                       cfg->stack_size, min_stack, REF_MAX_STACK_SIZE);
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

static bool initialized;

int ref_init(const ref_config *cfg) {
  ref_config def;
  if (!cfg) {
    ref_config_default(&def);
    cfg = &def;
  }
  if (initialized) return ref__seterr("ref_init: the runtime is already running");
  if (check_config(cfg) != 0) return -1;
  ref__cfg = *cfg;
  if (ref__cfg.split_bytes == 0) ref__cfg.split_bytes = 16 << 10;
  if (env_on("STACKSCAN_CHECKMARK")) ref__cfg.checkmark = true;
  if (env_on("STACKSCAN_POISON") || ref__cfg.checkmark) ref__cfg.poison = true;
  if (ref__g_init(&ref__cfg) != 0) return -1;
  if (ref__sched_init(&ref__cfg) != 0) goto fail_g;
  if (ref__funcdata_init(ref__cfg.seed) != 0) goto fail_sched;
  if (ref__heap_init(ref__cfg.heap_max) != 0) goto fail_funcdata;
  if (ref__gc_init(&ref__cfg) != 0) goto fail_heap;
  initialized = true;
  return 0;
fail_heap:
  ref__heap_shutdown();
fail_funcdata:
  ref__funcdata_shutdown();
fail_sched:
  ref__sched_shutdown();
fail_g:
  ref__g_shutdown();
  return -1;
}

void ref_shutdown(void) {
  if (!initialized) return;
  ref__gc_shutdown();
  ref__heap_shutdown();
  ref__funcdata_shutdown();
  ref__sched_shutdown();
  ref__g_shutdown();
  initialized = false;
}
