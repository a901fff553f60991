"""compare: gate a stackscan-bench run against a baseline.

Usage: compare BASE.json NEW.json [--threshold 0.05] [--alpha 0.05]

For every benchmark (matched by run name; both files must hold the same
names) it prints the median real_time of each side, the delta
new/base - 1, and the two-sided Mann-Whitney U test p-value over the
repetitions (iteration runs, never the aggregates), and the geomean
new/base, all from Google Benchmark's own tooling (gbench.report's
get_difference_report and calculate_geomean, Debian's libbenchmark-tools).
Then an exact comparison of the work counters (results.Names.exact: the
per-cycle counters that count work, named by the JSON) of every repetition.

Exit status:
  0  no regression, counters equal
  1  a benchmark is slower by more than --threshold with p < --alpha; or a
     deterministic counter changed (reported by name and benchmark); or a
     benchmark that ran in BASE fails in NEW
  2  unusable input (missing, empty, not JSON, truncated, no "benchmarks",
     no benchmarks, different benchmark names): one line on stderr,
     "compare: <file>: <problem>", and nothing on stdout

Few repetitions: the U test needs enough repetitions to reach p < alpha at
all (exact two-sided test: with 3 vs 3 the smallest p is 0.1, 4 vs 4 reaches
0.029; Google Benchmark recommends 9). When a benchmark has too few (smallest
exact p >= alpha, e.g. a single run each), the output says so and its timing
is shown but never gated, whatever p scipy's approximation gives: the gate
then rests on the deterministic counters (and failures) only.
"""

import argparse
import math
import sys

from . import gbtools

from . import results

def gb_doc(benches, key="real_time"):
    """The iteration runs of benches as a Google Benchmark document for gbench
    (a benchmark with aggregates only contributes its centre once)."""
    out = []
    for b in benches:
        ts = [(value(r, key), value(r, "cpu_time")) for r in b.runs]
        ts = [(t, c if c is not None else t) for t, c in ts if t is not None]
        if not ts and b.center(key) is not None:
            ts = [(b.center(key), b.center("cpu_time") or b.center(key))]
        out += [{"name": b.name, "run_type": "iteration", "real_time": t, "cpu_time": c,
                 "time_unit": "ns"} for t, c in ts]
    return {"benchmarks": out}


def difference_report(gb, pairs, key="real_time"):
    """gbench's difference report over the pairs: ({name: p-value}, geomean).

    p is the two-sided U test of real_time over the repetitions (None below
    2 repetitions); geomean is new/base of gbench's calculate_geomean over
    every repetition of the pairs, or None.
    """
    base, new = gb_doc([b for b, _ in pairs], key), gb_doc([n for _, n in pairs], key)
    pvalues, geomean = {}, None
    for d in gb.get_difference_report(base, new, utest=True):
        if d["name"] == "OVERALL_GEOMEAN":
            geomean = 1.0 + d["measurements"][0]["time"]
        else:
            pvalues[d["name"]] = d["utest"].get("time_pvalue")
    return pvalues, geomean


value = results.value


def min_pvalue(n, m):
    """The smallest two-sided p an exact U test can give with n vs m samples."""
    if min(n, m) < 2:
        return 1.0
    return min(1.0, 2.0 / math.comb(n + m, n))


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


def check_names(base_path, base, new_path, new):
    """InputError naming the differences when the two runs hold other benchmarks."""
    bn, nn = [b.name for b in base], [b.name for b in new]
    only_b = [x for x in bn if x not in set(nn)]
    only_n = [x for x in nn if x not in set(bn)]
    if not only_b and not only_n:
        return

    def few(xs):
        head = ", ".join(xs[:3])
        return head + (f" (+{len(xs) - 3} more)" if len(xs) > 3 else "")
    parts = []
    if only_b:
        parts.append(f"lacks {few(only_b)}")
    if only_n:
        parts.append(f"has extra {few(only_n)}")
    raise results.InputError(new_path, "benchmark names differ from " + base_path + ": "
                           + "; ".join(parts))


def compare_one(base, new, p, args):
    """One row: dict(name, base, new, delta, p, verdict, reachable)."""
    row = {"name": base.name, "base": base.center(), "new": new.center(),
           "delta": None, "p": None, "verdict": "", "reachable": True}
    if new.error:
        row["verdict"] = ("failed in both: " if base.error else "FAILED in new: ") + new.error
        row["fail"] = not base.error
        return row
    if base.error or not row["base"] or row["new"] is None:
        row["verdict"] = "no baseline" + (f" (failed: {base.error})" if base.error else "")
        return row
    row["delta"] = row["new"] / row["base"] - 1.0
    row["p"] = p
    nb, nn = base.repetitions, new.repetitions
    # Below the exact test's reach, a small p (scipy's normal approximation
    # with ties) means nothing: such timings are never gated.
    row["reachable"] = min_pvalue(nb, nn) < args.alpha
    significant = row["p"] is not None and row["p"] < args.alpha
    if not row["reachable"]:
        slower = "slower, " if row["delta"] > args.threshold else ""
        row["verdict"] = f"{slower}not gated ({nb} vs {nn} repetitions)"
    elif row["delta"] > args.threshold and significant:
        row["verdict"], row["fail"] = "REGRESSION", True
    elif row["delta"] < -args.threshold and significant:
        row["verdict"] = "improvement"
    return row


def fmt_ns(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 1000 else f"{x:.1f}"


def print_table(rows):
    w = max(len("benchmark"), *(len(r["name"]) for r in rows))
    print(f"{'benchmark':<{w}}  {'base ns/op':>16}  {'new ns/op':>16}  {'delta':>8}  "
          f"{'U p-value':>9}  verdict")
    for r in rows:
        d = "-" if r["delta"] is None else f"{r['delta']:+.1%}"
        p = "-" if r["p"] is None else f"{r['p']:.4f}"
        print(f"{r['name']:<{w}}  {fmt_ns(r['base']):>16}  {fmt_ns(r['new']):>16}  "
              f"{d:>8}  {p:>9}  {r['verdict']}")


def print_repetition_note(rows, args, gb):
    weak = [r for r in rows if r["delta"] is not None and not r["reachable"]]
    if not weak:
        return
    print(f"note: {len(weak)} of {len(rows)} benchmarks have too few repetitions for the "
          f"U test to reach p < {args.alpha} (Google Benchmark recommends >= "
          f"{gb.UTEST_OPTIMAL_REPETITIONS}); their timings are "
          "shown but not gated: the gate there rests on the deterministic counters only.")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="compare", description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.05,
                    help="relative slowdown that counts as a regression (default 0.05)")
    ap.add_argument("--alpha", type=float, default=0.05,
                    help="U test significance level (default 0.05)")
    args = ap.parse_args(argv)
    gb = gbtools.report()
    try:
        if gb is None:
            raise results.InputError(gbtools.GBENCH_DIR, "no gbench package (install Debian's "
                                     "libbenchmark-tools)")
        base_ctx, base = results.load([args.base])
        new_ctx, new = results.load([args.new])
        check_names(args.base, base, args.new, new)
    except results.InputError as e:
        results.die("compare", e)
    names = results.Names.of([c for _, c in base_ctx + new_ctx], base + new)
    new_by_name = {b.name: b for b in new}
    pairs = [(b, new_by_name[b.name]) for b in base]
    ok = [(b, n) for b, n in pairs if not b.error and not n.error]
    pvalues, g = difference_report(gb, ok)

    rows = [compare_one(b, n, pvalues.get(b.name), args) for b, n in pairs]
    print_table(rows)
    if g is not None:
        print(f"geomean new/base: {g:.4f} ({g - 1:+.1%}) over {len(ok)} benchmarks")
    print_repetition_note(rows, args, gb)

    changes = [(b.name, c) for b, n in ok for c in counter_changes(b, n, names.exact)]
    for name, (c, bv, nv) in changes:
        print(f"COUNTER CHANGED: {name}: {c} {fmt_vals(bv)} -> {fmt_vals(nv)}")
    if not changes:
        print("work counters (" + ", ".join(names.exact) + "): all equal")

    regressions = [r for r in rows if r.get("fail")]
    if regressions or changes:
        print(f"compare: FAIL: {len(regressions)} regression(s)/failure(s), "
              f"{len(changes)} counter change(s)")
        return 1
    print("compare: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
