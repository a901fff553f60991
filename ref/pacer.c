/*
 * pacer.c: the GOGC trigger. At the end of every cycle it sets the heap's
 * next goal, Go 1.18's formula (mgcpacer.go's gcPercentHeapGoal):
 *
 *   goal = live + (live + stack + globals) * gc_percent / 100,
 *   at least the minimum heap, MIN_HEAP * gc_percent / 100,
 *
 * where live is the bytes in objects after the sweep, stack the live stack
 * bytes the cycle scanned (its stack_bytes: deterministic, the same in every
 * strategy), and globals the bytes of the registered root ranges. The heap
 * (ref_alloc) compares its counted bytes with the goal and starts the cycle.
 *
 * The trigger, where an allocation starts the next cycle: in stw the goal
 * itself (the cycle runs before the allocation, so the heap never passes
 * the goal by more than a refill). In the concurrent modes the background
 * cycle must start early enough to finish marking while the program
 * allocates the rest of the way to the goal. The rule is fixed, about the
 * lower bound Go's pacer puts on its trigger (mgcpacer.go: 0.7 of the
 * runway from the marked heap to the goal), without Go's feedback from the
 * last cycle's assists and scan work:
 *
 *   trigger = live + (goal - live) * 7 / 10
 *
 * with live the bytes after the sweep (the goal's own input); at ref_init,
 * live 0, 70% of the minimum heap. An allocation that finds the heap at the
 * goal while the mark still runs assists harder (gc_concurrent.c).
 */
#include "gc.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define MIN_HEAP ((uint64_t)4 << 20) /* Go's defaultHeapMinimum */

/* a * pct / 100, saturating at UINT64_MAX. pct >= 0. */
static uint64_t percent_of(uint64_t a, int pct) {
  uint64_t x;
  if (__builtin_mul_overflow(a, (uint64_t)pct, &x)) return UINT64_MAX;
  return x / 100;
}

/* The goal after a cycle that left `live` bytes and scanned `stack` bytes of
 * stack with `globals` bytes of roots registered; UINT64_MAX when off. */
static uint64_t heap_goal(uint64_t live, uint64_t stack, uint64_t globals) {
  int pct = ref__cfg.gc_percent;
  if (pct < 0) return UINT64_MAX;
  uint64_t base = live + stack + globals; /* each is below 2^40 (heap, stacks, roots) */
  uint64_t grow = percent_of(base, pct);
  uint64_t goal = grow > UINT64_MAX - live ? UINT64_MAX : live + grow;
  uint64_t min = percent_of(MIN_HEAP, pct);
  return goal > min ? goal : min;
}

static uint64_t globals_bytes(void) {
  const ref__rootrange *r = ref__globals();
  uint64_t sum = 0;
  for (size_t i = 0; i < ref__globals_count(); i++) sum += r[i].hi - r[i].lo;
  return sum;
}

#define TRIGGER_NUM 7 /* of TRIGGER_DEN: the runway's share before the trigger */
#define TRIGGER_DEN 10

/* The trigger for goal after a cycle that left `live` bytes (above). */
static uint64_t heap_trigger(uint64_t live, uint64_t goal) {
  if (ref__cfg.mode == REF_MODE_STW || goal == UINT64_MAX || live >= goal) return goal;
  return live + (goal - live) / TRIGGER_DEN * TRIGGER_NUM; /* runway < 2^64 / 10 */
}

static void set_goal(uint64_t live, uint64_t goal) {
  ref__heap_set_goal(goal, heap_trigger(live, goal));
}

void ref__pacer_cycle_end(ref_gc_stats *st) {
  st->globals_bytes = globals_bytes();
  set_goal(st->bytes_live, heap_goal(st->bytes_live, st->stack_bytes, st->globals_bytes));
}

/* STACKSCAN_GOGC as GOGC reads it: "off" or a decimal percentage. */
static int env_gogc(int *pct) {
  const char *v = getenv("STACKSCAN_GOGC");
  if (!v || !*v) return 0;
  if (strcmp(v, "off") == 0) {
    *pct = -1;
    return 0;
  }
  const char *digit = *v == '-' ? v + 1 : v; /* strtol would also take spaces and '+' */
  char *end = (char *)v;
  errno = 0;
  long x = *digit >= '0' && *digit <= '9' ? strtol(v, &end, 10) : 0;
  if (end == v || *end || errno || x < INT_MIN || x > INT_MAX)
    return ref__seterr("STACKSCAN_GOGC='%s': expected a percentage or off", v);
  *pct = (int)x;
  return 0;
}

int ref__pacer_init(void) {
  if (env_gogc(&ref__cfg.gc_percent) != 0) return -1;
  set_goal(0, heap_goal(0, 0, 0));
  return 0;
}
