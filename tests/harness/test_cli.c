/*
 * test_cli.c: stackscan-bench's flag parser (Google Benchmark's flags
 * included) and --help.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "cliargs.h"
#include "workloads.h"

/* ---------------------------------------------------------------------------
 * Rejected input: every case gives -1 and a message naming the flag
 * ------------------------------------------------------------------------- */

typedef struct bad_case {
  const char *arg1, *arg2; /* arg2 may be NULL */
  const char *want;        /* must appear in the message */
} bad_case;

static const bad_case bad[] = {
    {"--workloads=Nope", NULL, "--workloads: unknown workload \"Nope\"; accepted: GoroutineSelect,"},
    {"--workloads=GoroutineIdle,GoroutineIdle", NULL, "--workloads: workload \"GoroutineIdle\" given twice"},
    {"--workloads=", NULL, "--workloads: missing value"},
    {"--strategies=frames-foo", NULL, "--strategies: unknown strategy \"frames-foo\"; accepted: conservative-serial"},
    {"--strategies=all,frames-serial", NULL, "--strategies: strategy \"frames-serial\" given twice"},
    {"--n=0", NULL, "--n: \"0\" is too small; accepted: integers 1..10000000"},
    {"--n=-5", NULL, "--n: \"-5\" is not a number"},
    {"--n", "-5", "--n: \"-5\" is not a number"},
    {"--n=abc", NULL, "--n: \"abc\" is not a number"},
    {"--n=1x", NULL, "--n: \"1x\" is not a number"},
    {"--n=1kk", NULL, "--n: \"1kk\" is not a number"},
    {"--n=1,,2", NULL, "--n: empty item in \"1,,2\""},
    {"--n=1,", NULL, "--n: empty item in \"1,\""},
    {"--n=,1", NULL, "--n: empty item in \",1\""},
    {"--n=99999999999999999999999", NULL, "--n: \"99999999999999999999999\" is too large"},
    {"--n=18446744073709551615M", NULL, "--n: \"18446744073709551615M\" is too large"},
    {"--n=20000000", NULL, "--n: \"20000000\" is too large"},
    {"--n=5,5", NULL, "--n: n=5 given twice"},
    {"--n", NULL, "--n: missing value"},
    {"--n", "--workers=2", "--n: missing value"},
    {"--workers=0", NULL, "--workers: \"0\" is too small; accepted: integers 1..256, or all"},
    {"--workers=-1", NULL, "--workers: \"-1\" is not a number"},
    {"--workers=1,2,", NULL, "--workers: empty item in \"1,2,\""},
    {"--workers=257", NULL, "--workers: \"257\" is too large"},
    {"--workers=1,all", NULL, "--workers: \"all\" is not a number"},
    {"--mutators=0", NULL, "--mutators: \"0\" is too small; accepted: integers 1..64"},
    {"--mutators=65", NULL, "--mutators: \"65\" is too large; accepted: integers 1..64"},
    {"--mutators=two", NULL, "--mutators: \"two\" is not a number"},
    {"--mutators=1,2,2", NULL, "--mutators: mutators=2 given twice"},
    {"--mutators=1,", NULL, "--mutators: empty item in \"1,\""},
    {"--mutators=all", NULL, "--mutators: \"all\" is not a number"},
    /* Never polling holds a cooperative stop forever: both flags are named. */
    {"--poll-every=0", NULL, "--poll-every=0 (never poll) needs --preempt=async and no other "
     "value: a cooperative stop would wait forever"},
    {"--poll-every=0", "--preempt=async,cooperative", "--poll-every=0 (never poll) needs "
     "--preempt=async and no other value"},
    {"--preempt=cooperative", "--poll-every=0", "--poll-every=0 (never poll) needs "
     "--preempt=async"},
    {"--preempt=preemptive", NULL, "--preempt: unknown preempt \"preemptive\"; accepted: "
     "cooperative, async"},
    {"--preempt=async,async", NULL, "--preempt: preempt \"async\" given twice"},
    {"--preempt=async,", NULL, "--preempt: empty item in \"async,\""},
    {"--preempt=", NULL, "--preempt: missing value; accepted: cooperative, async"},
    {"--preempt=ASYNC", NULL, "--preempt: unknown preempt \"ASYNC\""},
    {"--mode=concurrent", NULL, "--mode: unknown mode \"concurrent\"; accepted: stw, "
     "concurrent-rescan, concurrent-hybrid"},
    {"--mode=stw,stw", NULL, "--mode: mode \"stw\" given twice"},
    {"--mode=", NULL, "--mode: missing value; accepted: stw, concurrent-rescan, concurrent-hybrid"},
    {"--mode=stw,", NULL, "--mode: empty item in \"stw,\""},
    {"--poll-every=1000000001", NULL, "--poll-every: \"1000000001\": poll-every must be in "
     "0..1000000000"},
    {"--poll-every=-3", NULL, "--poll-every: \"-3\" is not a number"},
    {"--placement=spread", NULL, "--placement: unknown placement \"spread\"; accepted: none, compact, scatter"},
    {"--stackmaps=fast", NULL, "--stackmaps: unknown stackmaps \"fast\"; accepted: direct, pctab, pctab-cached"},
    {"--format=json", NULL, "--format: unknown format \"json\"; accepted: go, console"},
    {"--depth=10001", NULL, "--depth: \"10001\": depth must be in 0..4096"},
    {"--depth=99999999999", NULL, "--depth: \"99999999999\" is too large; accepted: integers 0..4096"},
    {"--frame-bytes=2M", NULL, "--frame-bytes: \"2M\": frame-bytes must be in 0..16384"},
    {"--frame-bytes=abc", NULL, "--frame-bytes: \"abc\" is not a number"},
    {"--slots=65", NULL, "--slots: \"65\": slots must be in 1..64"},
    {"--slots=0", NULL, "--slots: \"0\": slots must be in 1..64"},
    {"--slots=x", NULL, "--slots: \"x\" is not a number; accepted: integers 1..64"},
    {"--heap-per-g=2G", NULL, "--heap-per-g: \"2G\" is too large; accepted: sizes 0..1048576"},
    {"--heap-per-g=2M", NULL, "--heap-per-g: \"2M\": heap-per-g must be in 0..1048576"},
    {"--seed=x", NULL, "--seed: \"x\" is not a number"},
    {"--prefetch=1,2", NULL, "--prefetch: \"1,2\" is not auto or three integers in range; accepted: auto, or W,L,P with W and L 1..64 and P 1..64"},
    {"--prefetch=0,2,3", NULL, "--prefetch: \"0,2,3\" is not auto or three integers in range"},
    {"--prefetch=4,2,65", NULL, "--prefetch: \"4,2,65\" is not auto or three integers in range"},
    {"--prefetch=4,2,8x", NULL, "--prefetch: \"4,2,8x\" is not auto or three integers in range"},
    {"--max-mem=0", NULL, "--max-mem: \"0\" is too small"},
    {"--trace=", NULL, "--trace: missing value; accepted: a file name"},
    {"--wake=nan", NULL, "--wake: \"nan\": wake must be in 0..1"},
    {"--wake=-inf", NULL, "--wake: \"-inf\": wake must be in 0..1"},
    {"--wake=0.5x", NULL, "--wake: \"0.5x\" is not a number"},
    {"--gc-percent=-1", NULL, "--gc-percent: \"-1\" is not a number; accepted: integers 0..2147483647 (INT_MAX), or off"},
    {"--gc-percent=2147483648", NULL, "--gc-percent: \"2147483648\" is too large"},
    {"--gc-percent=Off", NULL, "--gc-percent: \"Off\" is not a number"},
    {"--max-mem=16Q", NULL, "--max-mem: \"16Q\" is not a number"},
    {"--stack-size=8K", NULL, "--stack-size: \"8K\" is too small; accepted: sizes 16K..1G, multiples of 4K"},
    {"--stack-size=2G", NULL, "--stack-size: \"2G\" is too large"},
    {"--stack-size=20000", NULL, "--stack-size: \"20000\" is not a multiple of 4K"},
    {"--stack-size=big", NULL, "--stack-size: \"big\" is not a number"},
    {"--topology", NULL, "--topology: missing value"},
    {"--list=yes", NULL, "--list: takes no value, got \"yes\""},
    {"--bogus", NULL, "unknown flag \"--bogus\"; accepted: --workloads,"},
    {"--bogus=1", NULL, "unknown flag \"--bogus=1\""},
    {"-x", NULL, "unexpected argument \"-x\"; accepted: --workloads,"},
    {"positional", NULL, "unexpected argument \"positional\""},
    {"--benchmark_out_format=xml", NULL, "--benchmark_out_format: unknown format \"xml\"; accepted: console, json, csv"},
    {"--benchmark_format=yaml", NULL, "--benchmark_format: unknown format \"yaml\""},
    {"--benchmark_time_unit=h", NULL, "--benchmark_time_unit: unknown time unit \"h\"; accepted: ns, us, ms, s"},
    /* glibc's regcomp would take gigabytes for these (fuzz_cli found the first shape) */
    {"--benchmark_filter=ls++++++++++++++++++++++++++++++", NULL, "repeats too much"},
    {"--benchmark_filter=((a{1,100}){1,100}){1,100}", NULL, "repeats too much"},
    {"--benchmark_filter=(x{3,}){9999}", NULL, "repeats too much"},
    {"--benchmark_filter=(((){30}){30}){30}", NULL, "repeats too much"},
    /* ... and seconds for this one (fuzz_cli found it) */
    {"--benchmark_filter==*+++++++++++", NULL, "repeats too much"},
};

static void test_bad_flags_are_rejected(void **state) {
  (void)state;
  for (size_t i = 0; i < REF_ARRAY_SIZE(bad); i++) {
    args *a = parse(bad[i].arg1, bad[i].arg2, NULL);
    if (a->rc != -1) fail_msg("accepted %s %s", bad[i].arg1, bad[i].arg2 ? bad[i].arg2 : "");
    if (strstr(a->err, bad[i].want) == NULL)
      fail_msg("%s: message \"%s\" lacks \"%s\"", bad[i].arg1, a->err, bad[i].want);
    assert_null(strchr(a->err, '\n')); /* one line */
  }
}

/* The repetition bound on --benchmark_filter leaves ordinary patterns, and
 * repetition up to its limit, alone. */
static void test_filters_accepted(void **state) {
  (void)state;
  static const char *const ok[] = {
      "--benchmark_filter=Idle",
      "--benchmark_filter=^(Goroutine(Idle|Select))/frames-[[:alpha:]]+/n:[0-9]{1,7}/.*$",
      "--benchmark_filter=[]a+*]{2}x?",
      "--benchmark_filter=ls+++++++++",  /* 2^9 copies: under the limit */
      "--benchmark_filter=(a{1,100}){1,9}", /* 900 */
  };
  for (size_t i = 0; i < REF_ARRAY_SIZE(ok); i++) {
    args *a = parse(ok[i], NULL);
    if (a->rc == -1) fail_msg("rejected %s: %s", ok[i], a->err);
  }
}

/* A default workload missing from the table is an error, not a silent skip. */
static void test_defaults_need_the_go_workloads(void **state) {
  (void)state;
  static const bench_workload_name micro_only[] = {{"MicroScan", BENCH_WL_MICRO}};
  bench_opts o;
  char err[512];
  char a0[] = "stackscan-bench", *argv[] = {a0, NULL};
  int argc = 1;
  assert_int_equal(bench_parse(&argc, argv, micro_only, 1, &o, err, sizeof err), -1);
  assert_non_null(strstr(err, "GoroutineSelect"));
  /* ... and micro with no micro benchmarks is one too. */
  char a1[] = "--workloads=micro", *argv2[] = {a0, a1, NULL};
  argc = 2;
  assert_int_equal(bench_parse(&argc, argv2, table, 4, &o, err, sizeof err), -1);
  assert_non_null(strstr(err, "no micro benchmarks"));
}

/* --help's text (free it). */
static char *usage_text(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  bench_usage(f, table, NTABLE);
  fclose(f);
  return text;
}

/* The shape flags take exactly what the workloads take (workloads.h's
 * limits, judged by wl_params_check), and --help prints those limits.
 * --poll-every's 0 (never) comes with --preempt=async (test_preempt). */
static void test_shape_limits_are_the_workloads(void **state) {
  (void)state;
  static const struct {
    const char *flag;
    int lo, hi;
    size_t off;
    const char *with; /* a further argument, or NULL */
  } shape[] = {{"depth", 0, WL_MAX_DEPTH, offsetof(bench_opts, depth), NULL},
               {"frame-bytes", 0, WL_MAX_FRAME_BYTES, offsetof(bench_opts, frame_bytes), NULL},
               {"slots", WL_MIN_SLOTS, WL_MAX_SLOTS, offsetof(bench_opts, slots), NULL},
               {"heap-per-g", 0, WL_MAX_HEAP_PER_G, offsetof(bench_opts, heap_per_g), NULL},
               {"dirty", 0, WL_MAX_DIRTY, offsetof(bench_opts, dirty), NULL},
               {"poll-every", WL_MIN_POLL_EVERY, WL_MAX_POLL_EVERY,
                offsetof(bench_opts, poll_every), "--preempt=async"},
               {"wake", WL_MIN_WAKE, WL_MAX_WAKE, 0, NULL}};
  char *help = usage_text();
  for (size_t i = 0; i < REF_ARRAY_SIZE(shape); i++) {
    int lo = shape[i].lo, hi = shape[i].hi;
    const int values[] = {lo - 1, lo, hi, hi + 1};
    for (size_t k = lo > 0 ? 0 : 1; k < 4; k++) {
      char arg[64], flag[32];
      snprintf(arg, sizeof arg, "--%s=%d", shape[i].flag, values[k]);
      snprintf(flag, sizeof flag, "--%s: ", shape[i].flag);
      args *a = parse(arg, shape[i].with, NULL);
      bool in = values[k] >= lo && values[k] <= hi;
      if (in && a->rc != 0) fail_msg("rejected %s: %s", arg, a->err);
      if (!in && a->rc == 0) fail_msg("accepted %s", arg);
      if (in && shape[i].off == 0) assert_true(a->o.wake == values[k]); /* --wake: a double */
      else if (in) assert_int_equal(*(const int64_t *)((const char *)&a->o + shape[i].off), values[k]);
      else if (strncmp(a->err, flag, strlen(flag)) != 0) fail_msg("%s: \"%s\"", arg, a->err);
    }
    char range[64];
    snprintf(range, sizeof range, "--%s=", shape[i].flag);
    const char *line = strstr(help, range);
    assert_non_null(line);
    snprintf(range, sizeof range, " %d..%d ", lo, hi);
    const char *eol = strchr(line, '\n'), *at = strstr(line, range);
    if (at == NULL || at > eol) fail_msg("--help's --%s line lacks%s", shape[i].flag, range);
  }
  free(help);
}

/* ---------------------------------------------------------------------------
 * Accepted input
 * ------------------------------------------------------------------------- */

static void test_defaults(void **state) {
  (void)state;
  args *a = parse(NULL);
  assert_int_equal(a->rc, 0);
  const bench_opts *o = &a->o;
  assert_int_equal(o->nworkloads, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(o->workload[i], i);
  assert_int_equal(o->nstrategies, 3);
  assert_string_equal(ref_strategy_name(o->strategy[0].phase, o->strategy[0].scan), "conservative-serial");
  assert_string_equal(ref_strategy_name(o->strategy[1].phase, o->strategy[1].scan), "frames-serial");
  assert_string_equal(ref_strategy_name(o->strategy[2].phase, o->strategy[2].scan), "frames-parallel");
  assert_int_equal(o->stackmaps, REF_MAPS_PCTAB);
  assert_int_equal(o->nn, 1);
  assert_int_equal(o->n[0], 1000);
  assert_true(o->workers_all);
  assert_int_equal(o->nworkers, 0);
  assert_int_equal(o->placement, TOPO_PLACE_COMPACT);
  assert_int_equal(o->depth, -1);
  assert_int_equal(o->frame_bytes, -1);
  assert_int_equal(o->slots, -1);
  assert_int_equal(o->heap_per_g, -1);
  assert_null(o->topology);
  assert_int_equal(o->format, BENCH_FORMAT_CONSOLE);
  assert_false(o->list || o->help || o->checkmark);
  assert_int_equal(o->seed, 1);
  assert_int_equal(o->max_mem, 0);
  assert_true(o->prefetch[0] == 0 && o->prefetch[1] == 0 && o->prefetch[2] == 0); /* auto */
  assert_int_equal(o->stack_size, 0);
  assert_int_equal(o->nmutators, 1);
  assert_int_equal(o->mutators[0], 1);
  assert_false(o->mutators_given);
  assert_int_equal(o->poll_every, -1);
  assert_int_equal(o->npreempt, 1);
  assert_int_equal(o->preempt[0], REF_PREEMPT_COOPERATIVE);
  assert_int_equal(o->nmode, 1);
  assert_int_equal(o->mode[0], REF_MODE_STW);
  assert_int_equal(a->argc, 1);
}

/* --preempt is a list like --reuse, in the order given; --poll-every=0 is
 * taken when every value is async, before or after it on the line, and
 * reaches the workloads as 0 (never), not as their default. */
static void test_preempt(void **state) {
  (void)state;
  args *a = parse("--preempt=async,cooperative", NULL);
  assert_int_equal(a->rc, 0);
  assert_int_equal(a->o.npreempt, 2);
  assert_true(a->o.preempt[0] == REF_PREEMPT_ASYNC && a->o.preempt[1] == REF_PREEMPT_COOPERATIVE);
  a = parse("--preempt", "async", "--poll-every=0", NULL);
  assert_int_equal(a->rc, 0);
  assert_int_equal(a->o.npreempt, 1);
  assert_int_equal(a->o.poll_every, 0);
  assert_int_equal(bench_wl_params(&a->o, 5).poll_every, 0);
  a = parse("--poll-every=0", "--preempt=async", NULL);
  assert_int_equal(a->rc, 0);
  /* A later --preempt replaces an earlier one, and is the one judged. */
  a = parse("--preempt=cooperative", "--poll-every=0", "--preempt=async", NULL);
  assert_int_equal(a->rc, 0);
  assert_true(a->o.npreempt == 1 && a->o.preempt[0] == REF_PREEMPT_ASYNC);
  a = parse("--preempt=async", "--poll-every=0", "--preempt=cooperative", NULL);
  assert_int_equal(a->rc, -1);
  assert_non_null(strstr(a->err, "--poll-every=0"));
  assert_non_null(strstr(a->err, "--preempt=async"));
  /* Polling needs no async. */
  a = parse("--poll-every=1", "--preempt=cooperative", NULL);
  assert_int_equal(a->rc, 0);
}

static void test_every_flag(void **state) {
  (void)state;
  args *a = parse("--workloads=micro,GoroutineIdle", "--benchmark_filter=Idle", "--strategies=all",
                  "--stackmaps", "pctab-cached", "--n=1k,2M,5", "--workers=1,2,4",
                  "--placement=scatter", "--depth=12", "--frame-bytes=4K", "--slots=8",
                  "--heap-per-g=1M", "--benchmark_out=x.json", "--topology",
                  "pack:2 numa:2 core:4 pu:2", "--format=go", NULL);
  assert_int_equal(a->rc, 0);
  const bench_opts *o = &a->o;
  assert_int_equal(o->nworkloads, 3);
  assert_int_equal(o->workload[0], 4); /* micro: MicroScan, MicroAlloc, in table order */
  assert_int_equal(o->workload[1], 5);
  assert_int_equal(o->workload[2], 3);
  assert_int_equal(o->nstrategies, 6);
  assert_int_equal(o->stackmaps, REF_MAPS_PCTAB_CACHED);
  assert_int_equal(o->nn, 3);
  assert_int_equal(o->n[0], 1000);
  assert_int_equal(o->n[1], 2000000);
  assert_int_equal(o->n[2], 5);
  assert_false(o->workers_all);
  assert_int_equal(o->nworkers, 3);
  assert_int_equal(o->workers[2], 4);
  assert_int_equal(o->placement, TOPO_PLACE_SCATTER);
  assert_int_equal(o->depth, 12);
  assert_int_equal(o->frame_bytes, 4096);
  assert_int_equal(o->slots, 8);
  assert_int_equal(o->heap_per_g, 1 << 20);
  assert_string_equal(o->topology, "pack:2 numa:2 core:4 pu:2");
  assert_int_equal(o->format, BENCH_FORMAT_GO);
  /* Google Benchmark's flags stay, in order, for gb_initialize. */
  assert_int_equal(a->argc, 3);
  assert_string_equal(a->argv[1], "--benchmark_filter=Idle");
  assert_string_equal(a->argv[2], "--benchmark_out=x.json");
  assert_null(a->argv[3]);

  a = parse("--list", "--checkmark", "--seed=18446744073709551615", "--max-mem=16G",
            "--stack-size=20K", "--workers=all", "--strategies", "frames-rootjobs", "-h",
            "--prefetch=64,1,64", NULL);
  assert_int_equal(a->rc, 0);
  assert_true(a->o.list && a->o.checkmark && a->o.help);
  assert_true(a->o.seed == UINT64_MAX);
  assert_true(a->o.max_mem == (uint64_t)16 << 30);
  assert_true(a->o.stack_size == 20480);
  assert_true(a->o.prefetch[0] == 64 && a->o.prefetch[1] == 1 && a->o.prefetch[2] == 64);
  assert_true(a->o.workers_all);
  assert_int_equal(a->o.gc_percent, 100); /* ref's default */
  assert_int_equal(a->o.nstrategies, 1);
  assert_int_equal(a->o.strategy[0].phase, REF_PHASE_ROOTJOBS);
  assert_int_equal(a->o.strategy[0].scan, REF_SCAN_FRAMES);
  assert_int_equal(a->argc, 1);

  a = parse("--mutators=4,1,64", "--poll-every=2k", NULL);
  assert_int_equal(a->rc, 0);
  assert_true(a->o.mutators_given);
  assert_int_equal(a->o.nmutators, 3);
  assert_true(a->o.mutators[0] == 4 && a->o.mutators[1] == 1 && a->o.mutators[2] == 64);
  assert_int_equal(a->o.poll_every, 2000);
  assert_int_equal(bench_wl_params(&a->o, 5).poll_every, 2000);

  a = parse("--trace=t.json", NULL);
  assert_int_equal(a->rc, 0);
  assert_string_equal(a->o.trace, "t.json");

  a = parse("--gc-percent=off", NULL);
  assert_int_equal(a->rc, 0);
  assert_int_equal(a->o.gc_percent, -1);
  a = parse("--gc-percent", "0", NULL);
  assert_int_equal(a->rc, 0);
  assert_int_equal(a->o.gc_percent, 0);
  a = parse("--gc-percent=2147483647", NULL);
  assert_int_equal(a->rc, 0);
  assert_int_equal(a->o.gc_percent, INT_MAX);

  /* A later list flag replaces an earlier one. */
  a = parse("--n=5", "--n=7,9", NULL);
  assert_int_equal(a->rc, 0);
  assert_int_equal(a->o.nn, 2);
  assert_int_equal(a->o.n[0], 7);
}

/* The synthetic topology is only checked when it loads. */
/* STACKSCAN_MUTATORS is --mutators's default; a given list wins over it. */
static void test_mutators_env(void **state) {
  (void)state;
  char err[256];
  args *a = parse(NULL);
  assert_int_equal(bench_mutators_env(&a->o, NULL, err, sizeof err), 0);
  assert_int_equal(bench_mutators_env(&a->o, "", err, sizeof err), 0);
  assert_true(a->o.nmutators == 1 && a->o.mutators[0] == 1);
  assert_int_equal(bench_mutators_env(&a->o, "4", err, sizeof err), 0);
  assert_true(a->o.nmutators == 1 && a->o.mutators[0] == 4);
  static const char *const bad_env[] = {"0", "65", "two", "2 ", "-1", "1k"};
  for (size_t i = 0; i < REF_ARRAY_SIZE(bad_env); i++) {
    a = parse(NULL);
    assert_int_equal(bench_mutators_env(&a->o, bad_env[i], err, sizeof err), -1);
    assert_non_null(strstr(err, "STACKSCAN_MUTATORS=\""));
    assert_non_null(strstr(err, "is not a number of mutator threads in 1..64"));
  }
  a = parse("--mutators=1,2", NULL);
  assert_int_equal(bench_mutators_env(&a->o, "4", err, sizeof err), 0);
  assert_true(a->o.nmutators == 2 && a->o.mutators[0] == 1 && a->o.mutators[1] == 2);
  assert_int_equal(bench_mutators_env(&a->o, "junk", err, sizeof err), 0); /* not used */
}

static void test_unreadable_topology(void **state) {
  (void)state;
  args *a = parse("--topology=pack:2 bogus:3", NULL);
  assert_int_equal(a->rc, 0);
  assert_null(topo_load(a->o.topology));
  assert_non_null(strstr(topo_error(), "pack:2 bogus:3"));
}

static void test_leftover(void **state) {
  (void)state;
  char a0[] = "stackscan-bench", a1[] = "--benchmark_fitler=x";
  char *argv[] = {a0, a1, NULL};
  char err[512];
  assert_int_equal(bench_check_leftover(1, argv, err, sizeof err), 0);
  assert_int_equal(bench_check_leftover(2, argv, err, sizeof err), -1);
  assert_non_null(strstr(err, "unknown flag \"--benchmark_fitler=x\""));
  /* The message stays one line whatever the flag holds. */
  char a2[] = "--benchmark_x\ny";
  argv[1] = a2;
  assert_int_equal(bench_check_leftover(2, argv, err, sizeof err), -1);
  assert_non_null(strstr(err, "unknown flag \"--benchmark_x?y\""));
  assert_null(strchr(err, '\n'));
}

static void test_usage_mentions_every_flag(void **state) {
  (void)state;
  char *text = usage_text();
  static const char *const want[] = {
      "--workloads", "--strategies", "--stackmaps", "--n=", "--workers", "--placement",
      "--depth", "--frame-bytes", "--slots", "--heap-per-g", "--topology", "--format",
      "--list", "--seed", "--trace", "--gc-percent", "--max-mem", "--checkmark", "--help", "--benchmark_filter",
      "--mutators=LIST", "STACKSCAN_MUTATORS", "/mutators:M", "--poll-every=K", "GoroutineSpin",
      "GoroutineLatency, whose ping-pong pair", "needs 2 or more",
      "--preempt=LIST", "/preempt:P", "[/mutators:M][/preempt:P][/mode:X][/reuse:R]",
      "--preempt=async", "--mode=LIST", "/mode:X",
      "--benchmark_repetitions", "--benchmark_out=", "--benchmark_out_format=json",
      "--benchmark_min_time", "MicroScan (micro)", "frames-rootjobs"};
  for (size_t i = 0; i < REF_ARRAY_SIZE(want); i++)
    if (strstr(text, want[i]) == NULL) fail_msg("usage lacks %s", want[i]);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_flags_are_rejected),
      cmocka_unit_test(test_filters_accepted),
      cmocka_unit_test(test_defaults_need_the_go_workloads),
      cmocka_unit_test(test_shape_limits_are_the_workloads),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_every_flag),
      cmocka_unit_test(test_preempt),
      cmocka_unit_test(test_mutators_env),
      cmocka_unit_test(test_unreadable_topology),
      cmocka_unit_test(test_leftover),
      cmocka_unit_test(test_usage_mentions_every_flag),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
