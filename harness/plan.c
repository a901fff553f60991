/*
 * plan.c: the benchmark plan -- the cross product of the parsed flags, its
 * benchmark names, and the --list printout with each worker count's PUs.
 * See plan.h for the contracts.
 */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

void bench_opts_resolve(bench_opts *o, const topo *t) {
  topo_counts c;
  if (!o->workers_all) return;
  topo_get_counts(t, &c);
  o->workers[0] = c.pus < 1 ? 1 : c.pus > REF_MAX_WORKERS ? REF_MAX_WORKERS : c.pus;
  o->nworkers = 1;
  o->workers_all = false;
}

static int item_name(bench_item *it, const char *workload, topo_placement pl) {
  char mutators[24] = "";
  if (it->mutators != 1) snprintf(mutators, sizeof mutators, "/mutators:%d", it->mutators);
  bool coop = it->preempt == REF_PREEMPT_COOPERATIVE, stw = it->mode == REF_MODE_STW;
  int len = snprintf(it->name, sizeof it->name, "%s/%s/n:%lld/workers:%d/%s%s%s%s%s%s%s%s",
                     workload, ref_strategy_name(it->strategy.phase, it->strategy.scan),
                     (long long)it->n, it->workers, topo_placement_name(pl), mutators,
                     coop ? "" : "/preempt:", coop ? "" : ref_preempt_name(it->preempt),
                     stw ? "" : "/mode:", stw ? "" : ref_mode_name(it->mode),
                     it->reuse == REF_REUSE_OFF ? "" : "/reuse:",
                     it->reuse == REF_REUSE_OFF ? "" : ref_reuse_name(it->reuse));
  return len < 0 || (size_t)len >= sizeof it->name ? -1 : 0;
}

/* Item i of the cross product: i in mixed radix, reuse the lowest digit,
 * then mode, then preempt. */
static bench_item item_at(const bench_opts *o, size_t i) {
  bench_item it = {0};
  it.reuse = o->reuse[i % (size_t)o->nreuse];
  i /= (size_t)o->nreuse;
  it.mode = o->mode[i % (size_t)o->nmode];
  i /= (size_t)o->nmode;
  it.preempt = o->preempt[i % (size_t)o->npreempt];
  i /= (size_t)o->npreempt;
  it.mutators = o->mutators[i % (size_t)o->nmutators];
  i /= (size_t)o->nmutators;
  it.workers = o->workers[i % (size_t)o->nworkers];
  i /= (size_t)o->nworkers;
  it.n = o->n[i % (size_t)o->nn];
  i /= (size_t)o->nn;
  it.strategy = o->strategy[i % (size_t)o->nstrategies];
  it.workload = o->workload[i / (size_t)o->nstrategies];
  return it;
}

/* A workload that needs more mutator threads than the item has
 * (wl_desc.min_mutators: GoroutineLatency's pair runs on two at once) is
 * refused before anything starts. */
static int check_mutators(const bench_item *it, const bench_workload_name *wn, char *err,
                          size_t errlen) {
  const wl_desc *d = wn->kind == BENCH_WL_GO ? wl_find(wn->name) : NULL;
  if (!d || it->mutators >= d->min_mutators) return 0;
  snprintf(err, errlen, "--mutators: %s needs %d or more mutators, and the sweep has %d (the "
           "default is 1, or STACKSCAN_MUTATORS's value)", d->name, d->min_mutators, it->mutators);
  return -1;
}

int bench_plan_make(const bench_opts *o, const bench_workload_name *table, size_t ntable,
                    bench_plan *plan, char *err, size_t errlen) {
  memset(plan, 0, sizeof *plan);
  if (o->nworkers < 1 || o->nworkloads < 1 || o->nstrategies < 1 || o->nn < 1 ||
      o->nmutators < 1 || o->npreempt < 1 || o->nmode < 1 || o->nreuse < 1) {
    snprintf(err, errlen, "empty plan (call bench_opts_resolve for --workers=all)");
    return -1;
  }
  size_t n = (size_t)o->nworkloads * (size_t)o->nstrategies * (size_t)o->nn *
             (size_t)o->nworkers * (size_t)o->nmutators * (size_t)o->npreempt *
             (size_t)o->nmode * (size_t)o->nreuse;
  bench_item *items = calloc(n, sizeof *items);
  if (items == NULL) {
    snprintf(err, errlen, "out of memory for a plan of %zu benchmarks", n);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    bench_item *it = &items[i];
    *it = item_at(o, i);
    if ((size_t)it->workload >= ntable ||
        item_name(it, table[it->workload].name, o->placement) != 0) {
      snprintf(err, errlen, "bad workload index or name too long in the plan");
      free(items);
      return -1;
    }
    if (check_mutators(it, &table[it->workload], err, errlen) != 0) {
      free(items);
      return -1;
    }
  }
  *plan = (bench_plan){items, n, o->placement, o->stackmaps};
  return 0;
}

void bench_plan_free(bench_plan *plan) {
  free(plan->item);
  memset(plan, 0, sizeof *plan);
}

/* "workers:W  PU L#a (P#x), ..." for w threads of one kind ("workers",
 * "mutators"). */
static int print_placement(FILE *f, const topo *t, topo_placement pl, const char *kind, int w) {
  topo_plan tp;
  if (topo_plan_make(t, pl, w, &tp) != 0) return -1;
  fprintf(f, "  %s:%-*d", kind, 11 - (int)strlen(kind), w);
  if (pl == TOPO_PLACE_NONE) fputs(" unbound", f);
  for (int i = 0; i < tp.nworkers && pl != TOPO_PLACE_NONE; i++)
    fprintf(f, "%s L#%d (P#%d)", i == 0 ? " PU" : ",", tp.slot[i].pu_logical, tp.slot[i].pu_os);
  fputc('\n', f);
  topo_plan_free(&tp);
  return 0;
}

/* True when no item before index i has the same worker count (mutators:
 * mutator count). */
static bool first_with(const bench_plan *plan, size_t i, bool mutators) {
  for (size_t k = 0; k < i; k++)
    if (mutators ? plan->item[k].mutators == plan->item[i].mutators
                 : plan->item[k].workers == plan->item[i].workers)
      return false;
  return true;
}

int bench_plan_print(FILE *f, const bench_plan *plan, const topo *t) {
  char summary[256];
  topo_summary(t, summary, sizeof summary);
  fprintf(f, "topology: %s%s\n", summary, topo_is_synthetic(t) ? " (synthetic)" : "");
  fprintf(f, "placement: %s\nstackmaps: %s\nbenchmarks: %zu\n", topo_placement_name(plan->placement),
          ref_stackmaps_name(plan->stackmaps), plan->nitems);
  for (size_t i = 0; i < plan->nitems; i++) fprintf(f, "  %s\n", plan->item[i].name);
  fputs("workers bound to (worker 0 first):\n", f);
  for (size_t i = 0; i < plan->nitems; i++)
    if (first_with(plan, i, false) &&
        print_placement(f, t, plan->placement, "workers", plan->item[i].workers) != 0)
      return -1;
  bool several = false;
  for (size_t i = 0; i < plan->nitems; i++) several |= plan->item[i].mutators != 1;
  if (several) fputs("mutators bound to (mutator 0, the ref_init thread, first):\n", f);
  for (size_t i = 0; i < plan->nitems && several; i++)
    if (first_with(plan, i, true) &&
        print_placement(f, t, plan->placement, "mutators", plan->item[i].mutators) != 0)
      return -1;
  return 0;
}
