/*
 * config.c: the configuration (defaults, validation, the switches' names)
 * and the two error channels (ref__throw for broken invariants, ref__seterr
 * for recoverable failures reported through ref_error()). Start-up and
 * shutdown are runtime.c.
 */
#include "internal.h"

#include <stdarg.h>
#include <string.h>

static char errbuf[256];

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
}

#define NAME_OF(e, name) name,
static const char *const phase_names[] = {REF_PHASES(NAME_OF)};
static const char *const scan_names[] = {REF_SCANS(NAME_OF)};
static const char *const maps_names[] = {REF_STACKMAPS(NAME_OF)};
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

const char *ref_stackmaps_name(ref_stackmaps maps) {
  return (unsigned)maps < REF_NSTACKMAPS ? maps_names[maps] : NULL;
}

int ref_stackmaps_parse(const char *name, ref_stackmaps *maps) {
  for (int i = 0; i < REF_NSTACKMAPS; i++) {
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

bool ref__env_on(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

int ref__config_check(const ref_config *cfg) {
  if (cfg->workers < 1 || cfg->workers > REF_MAX_WORKERS)
    return ref__seterr("workers must be in 1..%d, not %d", REF_MAX_WORKERS, cfg->workers);
  if (!ref_strategy_name(cfg->phase, cfg->scan) || !ref_stackmaps_name(cfg->stackmaps))
    return ref__seterr("unknown stack-scanning strategy");
  if (cfg->heap_max < ((size_t)1 << 20))
    return ref__seterr("heap limit %zu bytes too small (minimum 1 MiB)", cfg->heap_max);
  return 0;
}
