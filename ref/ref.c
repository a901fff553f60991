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

void ref_config_default(ref_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  /* ASan's redzones make frames several times larger. */
  cfg->stack_size = REF_ASAN ? 256 << 10 : 64 << 10;
  cfg->heap_max = (size_t)4 << 30;
  cfg->workers = 1;
  cfg->phase = REF_PHASE_SERIAL;
  cfg->scan = REF_SCAN_CONSERVATIVE;
  cfg->stackmaps = REF_MAPS_PCTAB;
  cfg->split_bytes = 16 << 10;
  cfg->poison = REF_ASSERT_LEVEL >= 2;
  cfg->seed = 1;
  cfg->gc_percent = 100;
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

void ref_set_strategy(ref_phase phase, ref_scan scan, ref_stackmaps maps) {
  ref__cfg.phase = phase;
  ref__cfg.scan = scan;
  ref__cfg.stackmaps = maps;
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
  if (!ref_strategy_name(cfg->phase, cfg->scan) || !ref_stackmaps_name(cfg->stackmaps))
    return ref__seterr("unknown stack-scanning strategy");
  if (cfg->heap_max < ((size_t)1 << 20))
    return ref__seterr("heap limit %zu bytes too small (minimum 1 MiB)", cfg->heap_max);
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
