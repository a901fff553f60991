/*
 * runtime.c: start-up and shutdown of the runtime (Go's schedinit role):
 * ref_init checks the configuration, takes its copy, and starts the
 * subsystems in order -- goroutines and stacks, the scheduler, the function
 * tables, the heap, the collector -- and unwinds them in reverse on a
 * failure; ref_shutdown stops them in reverse.
 */
#include "internal.h"
#include "g.h"
#include "gc.h"
#include "os.h"
#include "heap.h"
#include "funcdata.h"

#include <string.h>

ref_config ref__cfg;

static bool initialized;

int ref_init(const ref_config *cfg) {
  ref_config def;
  if (!cfg) {
    ref_config_default(&def);
    cfg = &def;
  }
  if (initialized) return ref__seterr("ref_init: the runtime is already running");
  ref__os_cpus_capture(); /* before any start callback binds this thread */
  if (ref__config_check(cfg) != 0) return -1;
  ref__cfg = *cfg;
  ref__config_fill_defaults(&ref__cfg);
  if (ref__config_env_mutators(&ref__cfg) != 0) return -1;
  ref_set_prefetch(cfg->walk_ahead, cfg->lines_ahead, cfg->prefetch_lines); /* checked */
  if (ref__env_on("STACKSCAN_CHECKMARK")) ref__cfg.checkmark = true;
  if (ref__env_on("STACKSCAN_POISON") || ref__cfg.checkmark) ref__cfg.poison = true;
  if (ref__g_init(&ref__cfg) != 0) return -1;
  if (ref__sched_init(&ref__cfg) != 0) goto fail_g;
  if (ref__funcdata_init(ref__cfg.seed) != 0) goto fail_sched;
  if (ref__heap_init(ref__cfg.heap_max, ref__cfg.mutators) != 0) goto fail_funcdata;
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
