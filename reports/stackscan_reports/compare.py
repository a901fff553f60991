"""compare: gate a stackscan-bench run against a baseline.

Usage: compare BASE NEW.json [--threshold 0.05] [--normalized-threshold 0.30]
               [--alpha 0.05] [--machine-load LOAD.json] [--fail-on-improvement]
               [--missing-ok] [--list-regressions FILE]
               [--confirm CONFIRM.json [--confirm-machine-load LOAD.json]]

BASE is a baseline file, or a directory of them (ci/baselines): then the one
whose machine key is NEW's, else the newest with NEW's architecture and PU
count (x86_64-*-2pu), else none (exit 2, or 0 with --missing-ok).

For every benchmark (matched by run name; both files must hold the same
names) it prints the median real_time of each side, the delta new/base - 1,
the two-sided Mann-Whitney U test p-value over the repetitions (iteration
runs, never the aggregates) and a verdict; then the geomean new/base. The
p-values and geomeans are Google Benchmark's own tooling (gbench.report's
get_difference_report, calculate_geomean; Debian's libbenchmark-tools).
Then an exact comparison of the work counters (results.Names.exact: the
per-cycle counters that count work, named by the JSON) of every repetition.

What is gated depends on where the baseline was recorded:

  same machine   the same machine key and host (context machine, cpu and
                 host_id): raw times, slower by more than --threshold with
                 p < --alpha is a REGRESSION.
  other machine  another key, or the same key on another host (a new VM of
                 one model is another host): times are not comparable, so
                 the gate holds each GC's time over the same run's own
                 memory floor (touch_ns: GC time / floor, repetition by
                 repetition; it moves with the machine) against the
                 baseline's, with --normalized-threshold (default 0.30:
                 the ratio itself differs between CPUs, see README);
                 raw-time deltas are shown, never gated. Benchmarks without
                 a floor (micro benchmarks) are not gated there.

Word filter: when both runs' context names the conservative scans' word
filter (scan_filter: "avx2" or "scalar", by CPU) and they differ, the
conservative-* timings are shown and not gated: they differ by the filter
the CPU has (an AVX2 scan took 0.77-0.96x the scalar's time at n=1000 on
the 2-vCPU EPYC), not by the change. Their counters still gate.

Noise: a timing verdict is "noisy (reason)" instead of a regression or an
improvement when the new run is too noisy to judge (NOISE_BOUNDS, measured
as described there): its 1-minute load average when it started over
load_per_pu x PUs, or (from --machine-load, written by reports/machine
around the run) steal or other processes' CPU share over their bounds, or
the benchmark's own repetitions spread (MAD / median of the gated quantity)
over dispersion. Counters and failures gate whatever the noise.

Confirmation: two processes running the same binary can differ by more
than the repetitions inside one of them show (on the 2-vCPU EPYC VM, four
n=1000 W=2 benchmarks ran 18-51% slower, each p = 0.008, in the run right
after the baseline's, and the next run passed). So a timing verdict that
fails (REGRESSION, or IMPROVEMENT with --fail-on-improvement) can be checked
in a second process:

  --list-regressions FILE   writes the names of NEW's benchmarks whose timing
                 verdict fails, one per line (an empty file when none): what
                 a confirmation run re-runs (reports/benchfilter turns them
                 into --benchmark_filter expressions).
  --confirm CONFIRM.json    a run of (at least) those benchmarks in a fresh
                 process, same repetitions and min_time, same machine. Each
                 is gated against BASE as NEW was; a timing failure of NEW
                 stands only where CONFIRM gives the same verdict: the row
                 then says "REGRESSION (confirmed: ...)", else "not
                 reproduced: drift (...)" ("not reproduced: confirmation
                 run noisy (...)" when CONFIRM was too noisy to judge) and
                 it does not fail. Counter
                 changes and failures need no confirmation and fail at once,
                 in NEW or in CONFIRM. CONFIRM must hold every flagged
                 benchmark, nothing that BASE lacks, and come from NEW's
                 machine; --confirm-machine-load is reports/machine's record
                 of it, as --machine-load is of NEW.

Exit status:
  0  no regression, counters equal
  1  a timing REGRESSION; a work counter changed (reported by name and
     benchmark); a benchmark that ran in BASE fails in NEW; or, with
     --fail-on-improvement, a significant IMPROVEMENT beyond the threshold
     (a large speed-up usually means the baseline is stale)
  2  unusable input (missing, empty, not JSON, truncated, no "benchmarks",
     no benchmarks, different benchmark names, no baseline for the
     machine; a confirmation file that is any of those, lacks a flagged
     benchmark, has one BASE lacks or comes from another machine; a
     --list-regressions file that cannot be written): one line on stderr,
     "compare: <file>: <problem>", and nothing on stdout

Few repetitions: the U test needs enough repetitions to reach p < alpha at
all (exact two-sided test: with 3 vs 3 the smallest p is 0.1, 4 vs 4 reaches
0.029; Google Benchmark recommends 9). When a benchmark has too few (smallest
exact p >= alpha, e.g. a single run each), the output says so and its timing
is shown but never gated: the gate then rests on the counters and failures.
"""

import argparse
import math
import os
import re
import statistics
import sys

from . import gbtools, results

# When a run is too noisy to judge its times. Measured on the project's
# 2-vCPU KVM VM (AMD EPYC) with the seed table (12 benchmarks, 5
# repetitions, n=1000): recorded on a quiet machine (load 1.08 at the start,
# after the build), every benchmark's MAD / median was 0.1-1.4%; while other
# builds ran (load 10.5, other processes 83% of the CPU time, steal 0.3%)
# it was 3-38%, median 11%. dispersion 0.05 sits between the two;
# load_per_pu 1.0 lets a machine that just finished a build start (1.08 on 2
# PUs) and stops one that is oversubscribed before the run begins;
# other_busy 0.25 is a quarter of the machine's CPU taken by others. Steal
# never went over 0.4% here, so its bound (5% of the CPU time lost to other
# guests, about the size of the effects the gate looks for) is not measured.
NOISE_BOUNDS = {"dispersion": 0.05, "load_per_pu": 1.0, "other_busy": 0.25, "steal": 0.05}

value = results.value


# ---------------------------------------------------------------------------
# Which baseline, which machine
# ---------------------------------------------------------------------------

def key_parts(key):
    """("x86_64", 2) from "x86_64-amd-epyc-2pu" (None for an unknown shape)."""
    m = re.fullmatch(r"([^-]+)-(?:.*-)?(\d+)pu", key or "")
    return (m.group(1), int(m.group(2))) if m else None


def pick_baseline(directory, new_ctx):
    """The baseline file in directory for NEW's machine, or None."""
    key = new_ctx.get("machine")
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.endswith(".json"))
    exact = os.path.join(directory, f"{key}.json")
    if exact in files:
        return exact
    kin = []
    for f in files:
        ctx = results.load_doc(f).get("context", {})
        if key_parts(ctx.get("machine")) == key_parts(key) and key_parts(key):
            kin.append((str(ctx.get("date", "")), f))
    return max(kin)[1] if kin else None


def same_host(base_ctx, new_ctx):
    """Same machine key, CPU and host id (an unknown host id is never the same)."""
    keys = ("machine", "cpu", "host_id")
    if any(base_ctx.get(k) in (None, "", "unknown") for k in keys):
        return False
    return all(base_ctx.get(k) == new_ctx.get(k) for k in keys)


def machine_words(ctx):
    return (f"{ctx.get('machine', 'unknown')} (cpu {ctx.get('cpu', 'unknown')}, "
            f"host {ctx.get('host_id', 'unknown')})")


# ---------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------

def machine_noise(new_ctx, load):
    """Reasons the whole new run is too noisy to judge ([] when it is not)."""
    out = []
    pus = new_ctx.get("num_cpus") or (load or {}).get("pus") or 1
    la = new_ctx.get("load_avg")
    if isinstance(la, list) and la and la[0] > NOISE_BOUNDS["load_per_pu"] * pus:
        out.append(f"load average {la[0]:.2f} at the start, over "
                   f"{NOISE_BOUNDS['load_per_pu'] * pus:g} for {pus} PUs")
    for k, what in (("steal", "steal time"), ("other_busy", "other processes' CPU share")):
        v = (load or {}).get(k)
        if isinstance(v, (int, float)) and v > NOISE_BOUNDS[k]:
            out.append(f"{what} {v:.1%} during the run, over {NOISE_BOUNDS[k]:.0%}")
    return out


def dispersion(xs):
    """MAD / median of the samples (0 for fewer than 3)."""
    if len(xs) < 3:
        return 0.0
    m = statistics.median(xs)
    return statistics.median(abs(x - m) for x in xs) / m if m else 0.0


def load_sidecars(paths):
    """reports/machine's records of the run's parts, as one: the worst of each."""
    out = {}
    for path in paths or []:
        doc = results.load_json(path)
        if not isinstance(doc, dict):
            raise results.InputError(path, "wrong schema: expected reports/machine's object")
        for k in ("steal", "other_busy"):
            if isinstance(doc.get(k), (int, float)):
                out[k] = max(out.get(k, 0.0), doc[k])
        out.setdefault("pus", doc.get("pus"))
    return out or None


# ---------------------------------------------------------------------------
# Samples and gbench's difference report
# ---------------------------------------------------------------------------

def raw_samples(b):
    """(real_time, cpu_time) per repetition in ns (an aggregates-only file: its centre)."""
    ts = [(value(r, "real_time"), value(r, "cpu_time")) for r in b.runs]
    ts = [(t, c if c is not None else t) for t, c in ts if t is not None]
    if not ts and b.center() is not None:
        ts = [(b.center(), b.center("cpu_time") or b.center())]
    return ts


def floor_samples(b):
    """Per repetition, time over the run's memory floor (touch_ns); [] without one."""
    out = []
    for r in b.runs:
        t, c, f = value(r, "real_time"), value(r, "cpu_time"), value(r, "touch_ns")
        if t is not None and f and f > 0:
            out.append((t / f, (c if c is not None else t) / f))
    if not out and not b.runs and b.center("touch_ns"):
        f = b.center("touch_ns")
        out = [(b.center() / f, (b.center("cpu_time") or b.center()) / f)]
    return out


def gb_doc(benches, samples):
    """benches as a Google Benchmark document of iteration runs, for gbench."""
    return {"benchmarks": [{"name": b.name, "run_type": "iteration", "real_time": t,
                            "cpu_time": c, "time_unit": "ns"}
                           for b in benches for t, c in samples(b)]}


def difference_report(gb, pairs, samples):
    """gbench's difference report over the pairs: ({name: p-value}, geomean).

    p is the two-sided U test of real_time over the repetitions (None below
    2 repetitions); geomean is new/base of gbench's calculate_geomean over
    every repetition of the pairs, or None.
    """
    pairs = [(b, n) for b, n in pairs if samples(b) and samples(n)]
    if not pairs:
        return {}, None
    base = gb_doc([b for b, _ in pairs], samples)
    new = gb_doc([n for _, n in pairs], samples)
    pvalues, geomean = {}, None
    for d in gb.get_difference_report(base, new, utest=True):
        if d["name"] == "OVERALL_GEOMEAN":
            geomean = 1.0 + d["measurements"][0]["time"]
        else:
            pvalues[d["name"]] = d["utest"].get("time_pvalue")
    return pvalues, geomean


def min_pvalue(n, m):
    """The smallest two-sided p an exact U test can give with n vs m samples."""
    if min(n, m) < 2:
        return 1.0
    return min(1.0, 2.0 / math.comb(n + m, n))


# ---------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------

class Gate:
    """How timing is judged for one pair of files."""

    def __init__(self, args, base_ctx, new_ctx, load):
        self.same = same_host(base_ctx, new_ctx)
        self.samples = raw_samples if self.same else floor_samples
        self.threshold = args.threshold if self.same else args.normalized_threshold
        self.alpha = args.alpha
        self.fail_on_improvement = args.fail_on_improvement
        self.noise = machine_noise(new_ctx, load)
        self.filters = filters_differ(base_ctx, new_ctx)

    def quantity(self):
        return "time" if self.same else "time/floor"


def filters_differ(base_ctx, new_ctx):
    """(base, new) conservative word filters when both runs name theirs and
    they differ, else None: a conservative scan's time then differs by the
    filter the CPU has, not by the change under test."""
    b, n = base_ctx.get("scan_filter"), new_ctx.get("scan_filter")
    return (b, n) if b and n and b != n else None


def filter_bound(bench, gate):
    """Whether bench's time rests on the word filter that differs."""
    return bool(gate.filters) and bench.is_gc and bench.strategy.startswith("conservative")


def median_of(samples):
    return statistics.median(t for t, _ in samples) if samples else None


def compare_one(base, new, p, gate):
    """One row: dict(name, base, new, delta, gated, p, verdict, reachable, fail)."""
    row = {"name": base.name, "base": base.center(), "new": new.center(), "delta": None,
           "gated": None, "p": None, "verdict": "", "reachable": True, "fail": False,
           "timing_fail": False}
    if new.error:
        row["verdict"] = ("failed in both: " if base.error else "FAILED in new: ") + new.error
        row["fail"] = not base.error
        return row
    if base.error or not row["base"] or row["new"] is None:
        row["verdict"] = "no baseline" + (f" (failed: {base.error})" if base.error else "")
        return row
    row["delta"] = row["new"] / row["base"] - 1.0
    bs, ns = gate.samples(base), gate.samples(new)
    if not bs or not ns:
        row["verdict"] = "not gated (no touch_ns floor to normalize by)"
        return row
    row["gated"] = median_of(ns) / median_of(bs) - 1.0
    row["p"] = p
    if filter_bound(new, gate):
        row["verdict"] = "not gated (%s word filter in the baseline, %s here)" % gate.filters
        return row
    row["verdict"], row["fail"], row["reachable"] = timing_verdict(row, len(bs), len(ns),
                                                                   gate, ns)
    row["timing_fail"] = row["fail"]  # the only verdicts a confirmation run may clear
    return row


def timing_verdict(row, nb, nn, gate, new_samples):
    """(verdict, fail, reachable) of one benchmark's gated quantity."""
    d, thr = row["gated"], gate.threshold
    # Below the exact test's reach, a small p (scipy's normal approximation
    # with ties) means nothing: such timings are never gated.
    if min_pvalue(nb, nn) >= gate.alpha:
        return ("slower, " if d > thr else "") + f"not gated ({nb} vs {nn} repetitions)", \
            False, False
    spread = dispersion([t for t, _ in new_samples])
    reasons = list(gate.noise)
    if spread > NOISE_BOUNDS["dispersion"]:
        reasons.append(f"repetitions spread {spread:.1%}, over "
                       f"{NOISE_BOUNDS['dispersion']:.0%}")
    significant = row["p"] is not None and row["p"] < gate.alpha
    beyond = "slower" if d > thr and significant else \
        "faster" if d < -thr and significant else ""
    if reasons:
        return (f"{beyond}, " if beyond else "") + "noisy (" + "; ".join(reasons) + ")", \
            False, True
    if beyond == "slower":
        return "REGRESSION", True, True
    if beyond == "faster":
        if gate.fail_on_improvement:
            return "IMPROVEMENT (stale baseline?)", True, True
        return "improvement", False, True
    return "", False, True


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def counter_changes(base, new, names):
    """Work counters whose per-repetition values differ: [(counter, b, n)]."""
    out = []
    for c in names:
        bv = sorted(set(base.samples(c))) or _agg(base, c)
        nv = sorted(set(new.samples(c))) or _agg(new, c)
        if bv != nv:
            out.append((c, bv, nv))
    return out


def _agg(b, c):
    v = b.center(c)
    return [] if v is None else [v]


def fmt_vals(vs):
    if not vs:
        return "absent"
    return "/".join(f"{v:.17g}" for v in vs)


def few_names(xs):
    head = ", ".join(xs[:3])
    return head + (f" (+{len(xs) - 3} more)" if len(xs) > 3 else "")


def check_names(base_path, base, new_path, new):
    """InputError naming the differences when the two runs hold other benchmarks."""
    bn, nn = [b.name for b in base], [b.name for b in new]
    only_b = [x for x in bn if x not in set(nn)]
    only_n = [x for x in nn if x not in set(bn)]
    if not only_b and not only_n:
        return
    parts = []
    if only_b:
        parts.append(f"lacks {few_names(only_b)}")
    if only_n:
        parts.append(f"has extra {few_names(only_n)}")
    raise results.InputError(new_path, "benchmark names differ from " + base_path + ": "
                             + "; ".join(parts))


def fmt_ns(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 1000 else f"{x:.1f}"


def fmt_pct(x):
    return "-" if x is None else f"{x:+.1%}"


def print_table(rows, gate, run="new"):
    w = max(len("benchmark"), *(len(r["name"]) for r in rows))
    norm = "" if gate.same else f"  {'time/floor':>10}"
    print(f"{'benchmark':<{w}}  {'base ns/op':>16}  {run + ' ns/op':>16}  {'delta':>8}{norm}  "
          f"{'U p-value':>9}  verdict")
    for r in rows:
        p = "-" if r["p"] is None else f"{r['p']:.4f}"
        norm = "" if gate.same else f"  {fmt_pct(r['gated']):>10}"
        print(f"{r['name']:<{w}}  {fmt_ns(r['base']):>16}  {fmt_ns(r['new']):>16}  "
              f"{fmt_pct(r['delta']):>8}{norm}  {p:>9}  {r['verdict']}")


def print_header(base_path, base_ctx, new_ctx, gate):
    print(f"baseline: {base_path}: {machine_words(base_ctx)}")
    print(f"new run:  {machine_words(new_ctx)}")
    if gate.same:
        print(f"timing: same machine and host: raw times gated (> {gate.threshold:.0%} "
              f"slower with p < {gate.alpha})")
    else:
        other = ("another host of the same machine key"
                 if base_ctx.get("machine") == new_ctx.get("machine") else "another machine")
        print(f"timing: baseline from {other}: times NORMALIZED by each run's own memory "
              f"floor (GC time / touch_ns) and gated on that (> {gate.threshold:.0%} with "
              f"p < {gate.alpha}); raw-time deltas are shown, not gated")
    if gate.filters:
        print("scan filter: conservative scans ran the %s word filter in the baseline and the %s "
              "one here: conservative-* timings are shown, not gated" % gate.filters)
    if gate.noise:
        print("noise: the new run is too noisy to judge its times: " + "; ".join(gate.noise)
              + ". Timing verdicts say noisy; counters and failures still gate.")


def print_notes(rows, gb, gate):
    weak = [r for r in rows if r["gated"] is not None and not r["reachable"]]
    if weak:
        print(f"note: {len(weak)} of {len(rows)} benchmarks have too few repetitions for the "
              f"U test to reach p < {gate.alpha} (Google Benchmark recommends >= "
              f"{gb.UTEST_OPTIMAL_REPETITIONS}); their timings are shown but not gated: the "
              "gate there rests on the work counters only.")


def print_geomeans(ok, gb, gate):
    _, g = difference_report(gb, ok, raw_samples)
    if g is not None:
        print(f"geomean new/base: {g:.4f} ({g - 1:+.1%}) over {len(ok)} benchmarks")
    if not gate.same:
        _, g = difference_report(gb, ok, floor_samples)
        if g is not None:
            print(f"geomean new/base of time/floor: {g:.4f} ({g - 1:+.1%})")


def load_inputs(args):
    """(base_path, base_ctx, base, new_ctx, new, load); InputError on bad input."""
    new_ctx, new = results.load([args.new])
    new_ctx = new_ctx[0][1]
    base_path = args.base
    if os.path.isdir(base_path):
        base_path = pick_baseline(args.base, new_ctx)
        if base_path is None:
            raise results.InputError(args.base, "no baseline for machine "
                                     f"{new_ctx.get('machine', 'unknown')} (nor one of its "
                                     "architecture and PU count)")
    base_ctx, base = results.load([base_path])
    check_names(base_path, base, args.new, new)
    return base_path, base_ctx[0][1], base, new_ctx, new, load_sidecars(args.machine_load)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="compare", description=__doc__.split("\n")[0])
    ap.add_argument("base", help="baseline JSON, or a directory of them")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.05,
                    help="relative slowdown that counts as a regression on the same "
                         "machine (default 0.05)")
    ap.add_argument("--normalized-threshold", type=float, default=0.30,
                    help="the same for time over the memory floor, against another "
                         "machine's baseline (default 0.30)")
    ap.add_argument("--alpha", type=float, default=0.05,
                    help="U test significance level (default 0.05)")
    ap.add_argument("--machine-load", metavar="LOAD.json", action="append",
                    help="reports/machine's record of the new run (steal, other load); "
                         "repeat for a run in several parts")
    ap.add_argument("--fail-on-improvement", action="store_true",
                    help="exit 1 on a significant improvement beyond the threshold too")
    ap.add_argument("--missing-ok", action="store_true",
                    help="with a baseline directory: no baseline for the machine is exit 0")
    ap.add_argument("--list-regressions", metavar="FILE",
                    help="write the names of the benchmarks whose timing verdict fails, "
                         "one per line: what a confirmation run re-runs")
    ap.add_argument("--confirm", metavar="CONFIRM.json",
                    help="a re-run of the flagged benchmarks in a fresh process: a timing "
                         "failure stands only if it recurs there")
    ap.add_argument("--confirm-machine-load", metavar="LOAD.json", action="append",
                    help="reports/machine's record of the confirmation run")
    return ap.parse_args(argv)


def gate_run(gb, args, base, base_ctx, run_ctx, run, load):
    """(gate, rows, ok): one run's rows against the baseline, for the names it holds."""
    gate = Gate(args, base_ctx, run_ctx, load)
    by_name = {b.name: b for b in run}
    pairs = [(b, by_name[b.name]) for b in base if b.name in by_name]
    ok = [(b, n) for b, n in pairs if not b.error and not n.error]
    pvalues, _ = difference_report(gb, ok, gate.samples)
    rows = [compare_one(b, n, pvalues.get(b.name), gate) for b, n in pairs]
    return gate, rows, ok


# ---------------------------------------------------------------------------
# Confirmation: a second process must give a timing failure again
# ---------------------------------------------------------------------------

def flagged(rows):
    """The names whose timing verdict fails: what a confirmation run re-runs."""
    return [r["name"] for r in rows if r["timing_fail"]]


def write_names(path, names):
    """names one per line into path; InputError when it cannot be written."""
    try:
        with open(path, "w") as f:
            f.writelines(n + "\n" for n in names)
    except OSError as e:
        raise results.InputError(path, f"cannot write: {e.strerror}") from None


def load_confirm(args, base, new_ctx, rows):
    """(context, benches, load) of --confirm; InputError when it cannot confirm NEW."""
    ctx, benches = results.load([args.confirm])
    ctx = ctx[0][1]
    if results.machine_of(ctx) != results.machine_of(new_ctx):
        raise results.InputError(args.confirm, f"from another machine than {args.new}: "
                                 "not a confirmation of it")
    have, known = {b.name for b in benches}, {b.name for b in base}
    extra = [b.name for b in benches if b.name not in known]
    if extra:
        raise results.InputError(args.confirm, f"has benchmarks the baseline lacks: "
                                 f"{few_names(extra)}")
    lacking = [n for n in flagged(rows) if n not in have]
    if lacking:
        raise results.InputError(args.confirm, f"lacks flagged benchmark(s) "
                                 f"{few_names(lacking)}: not re-run")
    return ctx, benches, load_sidecars(args.confirm_machine_load)


def fmt_p(p):
    return "-" if p is None else f"{p:.4f}"


def apply_confirmation(rows, confirm_rows):
    """Keeps a timing failure of rows only where confirm_rows gives the same
    verdict; the others stop failing. Returns (confirmed names, {why: names})
    with why "drift" or "confirmation run noisy"."""
    by_name = {c["name"]: c for c in confirm_rows}
    confirmed, unreproduced = [], {}
    for r in rows:
        if not r["timing_fail"]:
            continue
        c = by_name[r["name"]]
        seen = f"{fmt_pct(c['gated'])}, p {fmt_p(c['p'])}"
        if c["timing_fail"] and c["verdict"] == r["verdict"]:
            r["verdict"] += f" (confirmed: {seen} in the confirmation run)"
            confirmed.append(r["name"])
            continue
        why = "confirmation run noisy" if "noisy (" in c["verdict"] else "drift"
        r["verdict"] = (f"not reproduced: {why} ({r['verdict']} in this run; "
                        f"{seen}{', ' + c['verdict'] if c['verdict'] else ''} in the "
                        "confirmation run)")
        r["fail"] = False
        unreproduced.setdefault(why, []).append(r["name"])
    return confirmed, unreproduced


def print_confirm_header(path, gate, count):
    print(f"confirmation run: {path}: {count} benchmark(s) re-run in a fresh process, "
          "against the same baseline; a timing failure above stands only where it "
          "recurs here")
    if gate.noise:
        print("noise: the confirmation run is too noisy to judge its times: "
              + "; ".join(gate.noise))


def print_counter_changes(ok, names, where=""):
    """COUNTER CHANGED lines; returns how many."""
    changes = [(b.name, c) for b, n in ok for c in counter_changes(b, n, names.exact)]
    for name, (c, bv, nv) in changes:
        print(f"COUNTER CHANGED{where}: {name}: {c} {fmt_vals(bv)} -> {fmt_vals(nv)}")
    return len(changes)


def print_verdict(rows, confirm_rows, confirmed, unreproduced, changes):
    """The closing lines; returns the exit status (0 pass, 1 fail)."""
    if confirmed:
        print("confirmed by the confirmation run: " + ", ".join(confirmed))
    for why, names in unreproduced.items():
        print(f"not reproduced: {why}: " + ", ".join(names))
    # The confirmation run's own timing verdicts count only through rows
    # (apply_confirmation); its failed benchmarks fail as NEW's do.
    failing = [r for r in rows if r["fail"]] + \
        [c for c in confirm_rows if c["fail"] and not c["timing_fail"]]
    n = sum(len(v) for v in unreproduced.values())
    cleared = f"{n} timing failure(s) not reproduced" if n else ""
    if failing or changes:
        print(f"compare: FAIL: {len(failing)} regression(s)/failure(s), "
              f"{changes} counter change(s)" + (f"; {cleared}" if cleared else ""))
        return 1
    print("compare: OK" + (f" ({cleared})" if cleared else ""))
    return 0


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    gb = gbtools.report()
    confirm = None
    try:
        if gb is None:
            raise results.InputError(gbtools.GBENCH_DIR, "no gbench package (install "
                                     "Debian's libbenchmark-tools)")
        base_path, base_ctx, base, new_ctx, new, load = load_inputs(args)
        gate, rows, ok = gate_run(gb, args, base, base_ctx, new_ctx, new, load)
        if args.confirm:
            confirm = load_confirm(args, base, new_ctx, rows)
        if args.list_regressions:
            write_names(args.list_regressions, flagged(rows))
    except results.InputError as e:
        if args.missing_ok and e.problem.startswith("no baseline for machine"):
            if args.list_regressions:
                try:
                    write_names(args.list_regressions, [])
                except results.InputError as e2:
                    results.die("compare", e2)
            print(f"compare: {e.problem}: nothing to compare (ci/bench --record-baseline "
                  "makes one)")
            return 0
        results.die("compare", e)
    contexts, benches = [base_ctx, new_ctx], base + new
    confirmed, unreproduced, crows, cok = [], {}, [], []
    if confirm:
        cgate, crows, cok = gate_run(gb, args, base, base_ctx, *confirm)
        confirmed, unreproduced = apply_confirmation(rows, crows)
        contexts, benches = contexts + [confirm[0]], benches + confirm[1]
    names = results.Names.of(contexts, benches)

    print_header(base_path, base_ctx, new_ctx, gate)
    print_table(rows, gate)
    print_geomeans(ok, gb, gate)
    print_notes(rows, gb, gate)
    if confirm:
        print_confirm_header(args.confirm, cgate, len(crows))
        print_table(crows, cgate, run="confirm")
    changes = print_counter_changes(ok, names)
    changes += print_counter_changes(cok, names, " in the confirmation run")
    if not changes:
        print("work counters (" + ", ".join(names.exact) + "): all equal")
    return print_verdict(rows, crows, confirmed, unreproduced, changes)


if __name__ == "__main__":
    sys.exit(main())
