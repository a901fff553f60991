/*
 * stackscan-bench: sweeps workloads x strategies x goroutine counts x worker
 * counts on Google Benchmark and reports per-cycle phase times and work
 * counters. `stackscan-bench --help` documents every flag.
 */
#include "machine.h"
#include "run.h"
#include "tracefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef STACKSCAN_GIT_REV
#define STACKSCAN_GIT_REV "unknown"
#endif
#ifndef STACKSCAN_CFLAGS
#define STACKSCAN_CFLAGS "unknown"
#endif


/* The workload table the CLI reads: GC workloads, then micro benchmarks. */
static bench_workload_name *workload_table(size_t *n, size_t *ngc) {
  size_t k = 0;
  while (wl_all[k]) k++;
  *ngc = k;
  *n = k + wl_nmicros;
  bench_workload_name *t = calloc(*n, sizeof *t);
  if (!t) return NULL;
  for (size_t i = 0; i < k; i++) t[i] = (bench_workload_name){wl_all[i]->name, BENCH_WL_GO};
  for (size_t i = 0; i < wl_nmicros; i++)
    t[k + i] = (bench_workload_name){wl_micros[i].name, BENCH_WL_MICRO};
  return t;
}

static void usage_error(const char *msg) {
  fprintf(stderr, "stackscan-bench: %s\n", msg);
  exit(BENCH_EXIT_USAGE);
}

/* Bytes per goroutine stack: --stack-size, or ref's default. */
static uint64_t stack_size(const bench_opts *o) {
  ref_config cfg;
  ref_config_default(&cfg);
  return o->stack_size ? o->stack_size : cfg.stack_size;
}

/* x86-64 gives a process 128 TiB of address space (AArch64 Linux with
 * 48-bit addresses 256 TiB); stacks may have half of the smaller. */
#define STACK_SPACE_MAX ((uint64_t)64 << 40)

/* Refuses a sweep with a run that would not fit in --max-mem (default: 3/4
 * of physical memory), or whose stacks (reserved, not touched) would not fit
 * in the address space, before anything is started. */
/* Whether the plan times a collector workload (not only micro benchmarks). */
static bool plan_has_gc(const bench_plan *plan, size_t ngc) {
  for (size_t i = 0; i < plan->nitems; i++)
    if ((size_t)plan->item[i].workload < ngc) return true;
  return false;
}

static void check_memory(const bench_opts *o, const bench_plan *plan, size_t ngc) {
  uint64_t limit = o->max_mem;
  if (!limit) limit = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) / 4 * 3;
  uint64_t stack = stack_size(o), page = (uint64_t)sysconf(_SC_PAGESIZE);
  for (size_t i = 0; i < plan->nitems; i++) {
    const bench_item *it = &plan->item[i];
    if ((size_t)it->workload >= ngc) continue; /* micro benchmarks are small */
    const wl_desc *d = wl_all[it->workload];
    wl_params p = bench_wl_params(o, it->n);
    wl_resolve(d, &p, &p);
    uint64_t need = wl_estimate_bytes(d, &p);
    uint64_t space = (uint64_t)it->n * (stack + page); /* and a guard page */
    if (space > STACK_SPACE_MAX) {
      char msg[240];
      snprintf(msg, sizeof msg, "%s with --n=%lld and %llu KiB stacks reserves %llu GiB of address "
               "space for stacks, over the %llu GiB allowed", d->name, (long long)it->n,
               (unsigned long long)(stack >> 10), (unsigned long long)(space >> 30),
               (unsigned long long)(STACK_SPACE_MAX >> 30));
      usage_error(msg);
    }
    if (need > limit) {
      char msg[240];
      snprintf(msg, sizeof msg, "%s with --n=%lld needs about %llu MiB, over the %s of %llu MiB",
               d->name, (long long)it->n, (unsigned long long)(need >> 20),
               o->max_mem ? "--max-mem limit" : "default limit (3/4 of memory)",
               (unsigned long long)(limit >> 20));
      usage_error(msg);
    }
  }
}

/* The names of the cycle's counters, comma-separated, for the reports: they
 * read the lists from here instead of keeping a copy. "counters" has every
 * one, "exact_counters" those a comparison may demand equal (ref.h). */
static void add_counter_names(void) {
  static const struct {
    const char *name;
    bool exact;
  } table[] = {
#define COUNTER_ROW(name, exact, meaning) {#name, exact},
      REF_GC_COUNTERS(COUNTER_ROW)
#undef COUNTER_ROW
  };
  char all[512] = "", exact[512] = "";
  for (size_t i = 0; i < REF_ARRAY_SIZE(table); i++) {
    const char *sep = i ? "," : "";
    snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", sep, table[i].name);
    if (table[i].exact)
      snprintf(exact + strlen(exact), sizeof exact - strlen(exact), "%s%s", *exact ? "," : "",
               table[i].name);
  }
  gb_add_context("counters", all);
  gb_add_context("exact_counters", exact);
  /* The time counters by kind (run.h): the reports stack the phases and
   * show the pause on its own. */
#define PHASE_NAME(f) "," #f
#define PAUSE_NAMES(f, max) "," #f "," #max
  gb_add_context("phase_counters", &RUN_PHASES(PHASE_NAME)[1]);
  gb_add_context("pause_counters", &RUN_PAUSES(PAUSE_NAMES)[1]);
  gb_add_context("stop_counters", &RUN_STOP_COUNTS(PHASE_NAME)[1]);
#undef PHASE_NAME
#undef PAUSE_NAMES
}

/* Every strategy name, comma-separated, from ref's tables. */
static void add_strategy_names(void) {
  char buf[512] = "";
  for (int s = 0; s < REF_NSCANS; s++)
    for (int k = 0; k < REF_NPHASES; k++)
      snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", *buf ? "," : "",
               ref_strategy_name((ref_phase)k, (ref_scan)s));
  gb_add_context("strategies", buf);
}

static void add_context(const bench_opts *o, const topo *t, const bench_plan *plan) {
  char buf[512];
  topo_summary(t, buf, sizeof buf);
  gb_add_context("hwloc_topology", buf);
  topo_counts c;
  topo_get_counts(t, &c);
  machine_info mi;
  machine_get(&mi, c.pus);
  gb_add_context("machine", mi.key);
  gb_add_context("cpu", mi.cpu);
  gb_add_context("kernel", mi.kernel);
  gb_add_context("virtual", mi.virt);
  gb_add_context("host_id", mi.host_id);
  snprintf(buf, sizeof buf,
           "stack_size=%llu stackmaps=%s placement=%s checkmark=%d seed=%llu gc_percent=%lld "
           "prefetch=%d,%d,%d",
           (unsigned long long)stack_size(o), ref_stackmaps_name(plan->stackmaps),
           topo_placement_name(plan->placement), o->checkmark, (unsigned long long)o->seed,
           (long long)o->gc_percent, o->prefetch[0], o->prefetch[1], o->prefetch[2]);
  gb_add_context("ref_config", buf);
  snprintf(buf, sizeof buf, "%d,%d,%d%s", o->prefetch[0], o->prefetch[1], o->prefetch[2],
           o->prefetch_auto ? " (auto)" : "");
  gb_add_context("prefetch", buf);
  gb_add_context("stackmaps", ref_stackmaps_name(plan->stackmaps));
  gb_add_context("scan_filter", ref_scan_filter()); /* conservative scans' word filter */
  buf[0] = '\0';
  for (int i = 0; i < o->nmutators; i++)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%d", i ? "," : "", o->mutators[i]);
  gb_add_context("mutators", buf); /* the sweep's P values; each run's is its counter */
  buf[0] = '\0';
  for (int i = 0; i < o->npreempt; i++)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "",
             ref_preempt_name(o->preempt[i]));
  gb_add_context("preempt", buf); /* the sweep's values; each run's is in its name */
  buf[0] = '\0';
  for (int i = 0; i < o->nmode; i++)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "",
             ref_mode_name(o->mode[i]));
  gb_add_context("mode", buf);
  gb_add_context("compiler", __VERSION__);
  gb_add_context("cflags", STACKSCAN_CFLAGS);
  gb_add_context("git_rev", STACKSCAN_GIT_REV);
  add_counter_names();
  add_strategy_names();
}

static run_item *register_all(const run_env *env, const bench_workload_name *table) {
  const bench_plan *plan = env->plan;
  run_item *items = calloc(plan->nitems, sizeof *items);
  if (!items) return NULL;
  bool micro_done[64] = {false};
  for (size_t i = 0; i < plan->nitems; i++) {
    const bench_item *it = &plan->item[i];
    run_item *ri = &items[i];
    if (table[it->workload].kind == BENCH_WL_MICRO) { /* strategies etc. do not apply */
      size_t m = (size_t)it->workload - env->ngc;
      if (m >= 64 || micro_done[m]) continue;
      micro_done[m] = true;
    }
    ri->env = env;
    ri->index = i;
    ri->total = plan->nitems;
    if (table[it->workload].kind == BENCH_WL_MICRO) {
      ri->micro = &wl_micros[(size_t)it->workload - env->ngc];
      snprintf(ri->name, sizeof ri->name, "micro/%s", ri->micro->name);
      gb_use_manual_time(gb_register(ri->name, run_micro, ri));
    } else {
      ri->item = it;
      ri->wl = wl_all[it->workload];
      snprintf(ri->name, sizeof ri->name, "%s", it->name);
      gb_use_manual_time(gb_register(ri->name, run_gc_workload, ri));
    }
  }
  return items;
}

static void print_go(void) {
  const run_result *r;
  size_t n = run_results(&r);
  if (!n) return;
  printf("\n");
  bench_go_header(stdout, NULL);
  for (size_t i = 0; i < n; i++) {
    char line[512];
    bench_go_line(line, sizeof line, r[i].name, r[i].iterations, r[i].ns_per_op, r[i].extra,
                  r[i].nextra);
    printf("%s\n", line);
  }
}

int main(int argc, char **argv) {
  size_t ntable, ngc;
  bench_workload_name *table = workload_table(&ntable, &ngc);
  if (!table) usage_error("out of memory");
  bench_opts o;
  char err[512];
  if (bench_parse(&argc, argv, table, ntable, &o, err, sizeof err) != 0 ||
      bench_mutators_env(&o, getenv("STACKSCAN_MUTATORS"), err, sizeof err) != 0)
    usage_error(err);
  if (o.help) {
    bench_usage(stdout, table, ntable);
    return 0;
  }
  topo *t = topo_load(o.topology);
  if (!t) {
    snprintf(err, sizeof err, "--topology: %s", topo_error());
    usage_error(err);
  }
  bench_opts_resolve(&o, t);
  bench_plan plan;
  if (bench_plan_make(&o, table, ntable, &plan, err, sizeof err) != 0) usage_error(err);
  if (o.list || o.topology) {
    int rc = bench_plan_print(stdout, &plan, t);
    return rc == 0 ? 0 : 1;
  }
  if (gb_initialize(&argc, argv) != 0) usage_error(gb_error());
  if (bench_check_leftover(argc, argv, err, sizeof err) != 0) usage_error(err);
  check_memory(&o, &plan, ngc);
  if (o.trace && tracefile_open(o.trace, err, sizeof err) != 0) usage_error(err);
  o.prefetch_auto = o.prefetch[0] == 0;
  if (o.prefetch_auto && plan_has_gc(&plan, ngc) && run_prefetch_auto(&o, err, sizeof err) != 0) {
    fprintf(stderr, "stackscan-bench: %s\n", err);
    tracefile_close(false); /* no half-written trace */
    return 1;
  }
  add_context(&o, t, &plan);
  run_env env = {&o, &plan, t, ngc};
  run_item *items = register_all(&env, table);
  if (!items) usage_error("out of memory");
  size_t ran = gb_run_specified();
  bool ok = ran != 0 && ran != (size_t)-1 && run_failures() == 0;
  if (tracefile_close(ok) != 0) ok = false;
  if (o.format == BENCH_FORMAT_GO) print_go();
  gb_shutdown();
  run_results_free();
  free(items);
  bench_plan_free(&plan);
  topo_free(t);
  free(table);
  return ok ? 0 : 1;
}
