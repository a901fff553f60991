/*
 * topo.h: the machine's topology (hwloc) and where benchmark workers run.
 *
 * A topo is the real machine or an hwloc synthetic description such as
 * "pack:2 numa:2 core:4 pu:2". From it the harness reads counts for the
 * report's context and builds a placement plan: for thread i, the PU it is
 * bound to. Synthetic topologies are for planning and tests only: binding
 * to one fails.
 *
 * Two kinds of thread index one plan: mutator i (the threads that run
 * goroutines; 0 is the ref_init thread) and mark worker i (0 is the thread
 * that runs the cycle, itself a mutator; 1..W-1 are helpers that sleep
 * between cycles) both run on slot[i]. The two take turns on a PU instead
 * of competing: helpers sleep while mutators run, and during a cycle every
 * mutator but the one running it is stopped. So with W = P the pause marks
 * on the PUs the program runs on, as Go's mark workers run on its Ps, and
 * one mutator gives the placements of before mutators existed. The
 * alternative, mutators first and then the helpers (worker j >= 1 on slot
 * P + j - 1), gives every thread a PU of its own only where P + W - 1 PUs
 * exist; short of that it wraps helper 1 onto slot 0, the ref_init
 * thread's, which starts every collection of the workloads that collect
 * from the main thread: on a 2-PU machine at P = W = 2 both of such a
 * cycle's workers would share PU 0 while PU 1 idled (README has the
 * measurement). What the shared layout costs instead: a cycle started on
 * mutator k >= 1 (GoroutineSpin's controller runs on any mutator) has
 * helper k on its own PU when k < W.
 *
 * Errors: functions returning int give 0 or -1 (pointers: NULL); then
 * topo_error() holds a one-line message naming the problem. The message is
 * per thread, so worker threads can bind concurrently.
 */
#ifndef HARNESS_TOPO_H
#define HARNESS_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct topo topo;

/* The calling thread's last error, one line, no trailing newline. */
const char *topo_error(void);

/* Loads the real machine (synthetic == NULL) or a synthetic description.
 * Returns NULL on failure, e.g. for a malformed synthetic string. */
topo *topo_load(const char *synthetic);
void topo_free(topo *t);

/* True for a synthetic topology (one that cannot be bound to). */
bool topo_is_synthetic(const topo *t);

typedef struct topo_counts {
  int packages, numa_nodes, l3_caches, cores, pus;
  uint64_t l3_bytes;        /* size of the first L3, 0 if none */
  int llc_level;            /* last-level cache: highest level present (1..5), 0 if none */
  int llc_count;            /* caches at that level */
  uint64_t llc_bytes;       /* size of the first cache at that level */
} topo_counts;

void topo_get_counts(const topo *t, topo_counts *c);

/* One line for the JSON context, e.g.
 * "1 package, 1 NUMA node, 2 cores, 2 PUs, L3 32 MiB" or
 * "2 packages, 4 NUMA nodes, 16 cores, 32 PUs, 4 x L3 16 MiB"; the cache
 * named is the last-level one, omitted when the topology has none.
 * Truncated to len; returns the length it needed (snprintf-style). */
int topo_summary(const topo *t, char *buf, size_t len);

/* ---------------------------------------------------------------------------
 * Placement
 * ------------------------------------------------------------------------- */

/* The placements, X(enumerator, name, what it does): the enum, the names
 * and --help's lines are made from this table. */
#define TOPO_PLACEMENTS(X)                                                        \
  X(TOPO_PLACE_NONE, "none", "no binding: the OS schedules workers")             \
  X(TOPO_PLACE_COMPACT, "compact", "fill one core's PUs, then the next core")    \
  X(TOPO_PLACE_SCATTER, "scatter",                                                \
    "round-robin over packages, NUMA nodes, L3s, cores, then PUs")

#define TOPO__ENUMERATOR(e, name, what) e,
#define TOPO__ONE(e, name, what) +1
typedef enum topo_placement { TOPO_PLACEMENTS(TOPO__ENUMERATOR) } topo_placement;
enum { TOPO_NPLACEMENTS = 0 TOPO_PLACEMENTS(TOPO__ONE) };

/* The name and the description of placement p; NULL outside the table. */
const char *topo_placement_name(topo_placement p);
const char *topo_placement_what(topo_placement p);
int topo_placement_parse(const char *name, topo_placement *p);

typedef struct topo_slot {
  int pu_os;            /* OS index of the PU (what binding uses); -1: unbound */
  int pu_logical;       /* hwloc logical index of the PU; -1: unbound */
  char cpuset[40];      /* the PU's cpuset as hwloc prints it, e.g. "0x00000001"
                           (truncated on huge machines); "" if unbound */
} topo_slot;

/* Thread i's PU (worker i's and mutator i's) is slot[i]. With more threads
 * of a kind than PUs the order wraps around (oversubscription): slot[i] =
 * order[i % npus]. */
typedef struct topo_plan {
  topo_placement placement;
  int nworkers;
  topo_slot *slot;      /* nworkers entries, owned by the plan */
} topo_plan;

/* Builds the plan for `workers` >= 1 slots: the larger of the worker and
 * mutator counts. */
int topo_plan_make(const topo *t, topo_placement p, int workers, topo_plan *plan);
void topo_plan_free(topo_plan *plan);

/* Binds the calling thread to the PU with OS index pu_os_index
 * (hwloc_set_cpubind, HWLOC_CPUBIND_THREAD). Returns 0, or -1 (unknown PU,
 * synthetic topology, or the OS refused). */
int topo_bind_current_thread(const topo *t, int pu_os_index);

/* ref's worker-start and mutator-start callbacks (ref_worker_start_fn):
 * bind worker or mutator `index` to slot[index] of the binder's plan. Pass
 * one topo_binder (set up by topo_binder_init, outliving the runtime) as
 * both callbacks' argument. A thread whose slot is unbound (placement
 * none) is left alone. Threads call them concurrently; the first failure's
 * message is kept in err and its thread index in failed (-1 while none
 * failed). */
typedef struct topo_binder {
  const topo *t;
  const topo_plan *plan;
  int failed;           /* claimed atomically by the first failing worker */
  char err[288];
} topo_binder;
void topo_binder_init(topo_binder *b, const topo *t, const topo_plan *plan);
int topo_worker_start(int index, void *binder);
int topo_mutator_start(int index, void *binder);

/* The first failing thread's message ("worker 3: binding to PU P#5 failed:
 * ...", "mutator 1: ..."), or NULL while none failed. */
const char *topo_binder_failure(const topo_binder *b);

#endif /* HARNESS_TOPO_H */
