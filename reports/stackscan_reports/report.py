"""report: turn stackscan-bench JSON (+ perf profiles, + Go's numbers) into Markdown.

Usage: report RESULTS.json... -o DIR [--perf DIR_OR_FILE...] [--perf-top 10]
              [--go GO_BENCH_OUTPUT] [--go-n 1000]

Writes DIR/report.md and the SVG figures it links. Inputs are grouped per
machine (results.by_machine); runs of different machines are never pooled.
With several machines the report opens with their identities and topologies,
the seed tables side by side and which strategy wins where; then, per machine:
  - machine and configuration (the JSON "context": machine, cpu, virtual,
    kernel, hwloc_topology, ref_config, compiler, git_rev, ...);
  - the seed table, one per (n, workers, placement, further dimensions):
    ns/op per workload x strategy and the ratio to the reference strategy
    (the bench's first, conservative-serial), as in Go CL 17410043, with a
    Go column (ns/op and the same ratio) when --go is given, one machine is
    reported and the table is Go's like for like (go_procs);
  - ns per goroutine for every configuration, with Go's own ns/op / n as a
    peer column when --go is given (`go test -bench` output lines,
    "BenchmarkGoroutineSelect-2   10   123456789 ns/op"; the -2 suffix is
    GOMAXPROCS, none for 1; Go's n is --go-n, malloc_test.go's -n).
    GOMAXPROCS = P is matched only to our runs at mutators = workers = P:
    Go's P threads run its goroutines and its mark workers alike. A like-
    for-like table without Go's result at its P leaves the cell empty and
    says so; other tables have no Go column;
  - scaling plots per workload (time vs workers, ns per goroutine vs n) and
    a sentence per strategy on whether the speed-up is near-linear;
  - phase breakdown (the per-cycle time counters, stacked bars), the GC time
    over the stack-touch floor (touch_ns), and worker imbalance (max/mean
    busy time), per (n, workers, placement, further dimensions such as
    mutators:M);
  - the pause: time to safepoint and the whole stop-the-world (the JSON's
    pause_counters, medians and maxima over cycles), what the stop did where
    not 0 (stop_counters, means per cycle: async_preempts), with
    GoroutineSpin's spinners and poll interval (its counters spinners,
    poll_interval_ns; 0: they never poll);
  - concurrent marking, when some run is in a concurrent mode (the name's
    /mode:X, X not stw): per mode, the pauses and their times to
    safepoint, the mark's and the assists' times, where the stacks were
    scanned, what the barrier shaded, and the figures of GoroutineLatency's
    round trips and of the runtime's suspension and utilisation counters
    where the run reports them (CONCURRENT_TABLES; a counter a run lacks is
    left out); then the termination pause's slope in ns per goroutine (a
    least-squares line of stw_ns over the run's n values) per mode, stw's
    beside the concurrent ones;
  - work counters; micro benchmarks; failed benchmarks.
Then Go's own results, and the top symbols of each perf profile (--perf:
files, or directories whose *.data files are taken; a file name containing a
strategy name is shown under that strategy, NAME.gc.data first as its
collector-only profile), else one line saying why there is none.

Times are real_time per iteration (one full GC for collector benchmarks);
with repetitions, the median over the iteration runs (results.Bench.center).

Output is atomic: everything is rendered into a temporary directory next to
DIR and then renamed into place (report.md last), so a failed run never
leaves a new or half-written DIR/report.md. Figures are reproducible (fixed
svg.hashsalt, no Date metadata).

Exit status: 0; 2 bad input (one line on stderr: "report: <file>: <problem>").
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from collections import Counter

from . import perfsummary, results, timeline

GO_LINE = re.compile(r"^Benchmark(?P<name>\S+?)(?:-(?P<procs>\d+))?\s+(?P<iters>\d+)\s+"
                     r"(?P<ns>\d+(?:\.\d+)?(?:e[+-]?\d+)?) ns/op\b")
# The concurrent section's tables: title, then its counters in column order.
# The bench does not list these in its context (as it lists pause_counters),
# so the names are here; each column is shown only when some run of the mode
# reports it. *_ns are shown in µs, mmu_1ms (a fraction) with two decimals,
# the rest as integers.
CONCURRENT_TABLES = (
    ("pauses and mark (µs)", ("pause1_ns", "ttsp1_ns", "stw_ns", "ttsp_ns", "pause_total_ns",
                              "pause_max_ns", "suspend_max_ns", "suspend_p99_ns", "mark_ns",
                              "mark_cpu_ns", "assist_ns")),
    ("work", ("stacks_bg", "stacks_self", "stacks_pause", "rescan_bytes", "barrier_shades",
              "overshoot_bytes", "mmu_1ms")),
    ("goroutine round trips (µs; counts)", ("rtt_p50_ns", "rtt_p99_ns", "rtt_max_ns",
                                            "rtt_gc_p50_ns", "rtt_gc_p99_ns", "rtt_gc_max_ns",
                                            "rtt_count", "rtt_gc_count")),
)
# The pause whose growth with n the slope table fits: the whole stop (in a
# concurrent cycle, its termination's; ref_gc_stats).
SLOPE_PAUSE = "stw_ns"
PHASE_COLORS = ("#8c6bb1", "#2b8cbe", "#a6bddb", "#74c476", "#fd8d3c", "#969696")


def phase_label(counter):
    """roots_ns -> roots."""
    return counter[:-3] if counter.endswith("_ns") else counter


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

class Model:
    """Everything the report shows, loaded and validated before rendering."""

    def __init__(self, contexts, benches, label=None):
        self.label = label   # the machine's, when the report holds several
        self.prefix = results.safe_filename(label) + "-" if label else ""  # figure names
        self.suffix = f" — {label}" if label else ""                        # headings
        self.contexts = contexts
        self.all = benches
        self.failed = [b for b in benches if b.error]
        ok = [b for b in benches if not b.error and b.center() is not None]
        self.gc = [b for b in ok if b.is_gc]
        self.micro = [b for b in ok if not b.is_gc]
        self.workloads = list(dict.fromkeys(b.workload for b in self.gc))
        self.names = results.Names.of([c for _, c in contexts], benches)
        self.strategies = [s for s in self.names.strategies if any(b.strategy == s
                                                                    for b in self.gc)]
        self.reference = self.strategies[0] if self.strategies else None
        self.groups = sorted({b.group for b in self.gc})
        self.index = {(b.workload, b.strategy) + b.group: b for b in self.gc}
        self.go = {}         # (workload, n, procs) -> median ns/op (one machine only)

    def go_ran_at(self, workload, n):
        """The GOMAXPROCS values Go ran workload at with n goroutines."""
        return sorted(p for wl, k, p in self.go if wl == workload and k == n)

    def get(self, workload, strategy, group):
        return self.index.get((workload, strategy) + tuple(group))

    @property
    def context(self):
        return self.contexts[0][1] if self.contexts else {}

    def context_value(self, key):
        v = self.context.get(key)
        return "–" if v is None else v


class Report:
    """The machines' Models (never pooled across machines), Go's runs, profiles."""

    def __init__(self, machines):
        self.machines = machines
        self.go_rows = []    # (name, workload, n, procs, [ns/op...])
        self.perf = None     # None: not requested; else [(path, label, gc_only)]
        self.perf_note = "perf was not run (no --perf given)."

    @property
    def several(self):
        return len(self.machines) > 1


def load_go(path, default_n):
    """Parses `go test -bench` output; returns {(name, workload, n, procs): [ns/op]}.
    procs is GOMAXPROCS: the name's -P suffix, 1 without one (as Go prints it)."""
    runs = {}
    for i, line in enumerate(results.read_text(path).splitlines(), 1):
        m = GO_LINE.match(line.strip())
        if not m:
            continue
        parts = m.group("name").split("/")
        n = default_n
        for p in parts[1:]:
            k, _, v = p.replace("=", ":").partition(":")
            if k == "n" and v.isdigit():
                n = int(v)
        procs = int(m.group("procs") or 1)
        if n < 1 or procs < 1:
            raise results.InputError(path, f"line {i}: Benchmark{m.group('name')} has "
                                           f"n = {n} goroutines and GOMAXPROCS = {procs}, "
                                           "expected both positive")
        runs.setdefault((m.group("name"), parts[0], n, procs), []).append(float(m.group("ns")))
    if not runs:
        raise results.InputError(path, "no `go test -bench` result lines "
                                     "(\"BenchmarkX-P  N  T ns/op\")")
    return runs


def go_procs(g):
    """The GOMAXPROCS whose Go run is the like-for-like peer of a group
    (n, workers, placement, dims), or None when no Go run is.

    Go's P threads (GOMAXPROCS) run its goroutines and, while runtime.GC()
    waits with every other goroutine parked, its mark workers: so Go at
    GOMAXPROCS = P is ours at mutators = workers = P (mutators:M in the name,
    1 when absent), never at another worker count. A further dimension Go
    has no counterpart for (reuse:clean) makes no peer either.
    """
    _, workers, _, dims = g
    d = dict(dims)
    mutators = d.pop("mutators", "1")
    if d or not mutators.isdigit() or int(mutators) != workers:
        return None
    return workers


# A profile named STRATEGY.gc.data was recorded inside collections only
# (perfrecord --gc-only); STRATEGY.data is the whole process.
GC_ONLY_SUFFIX = ".gc"
# The line ci/bench leaves in a perf directory when perf could not record.
PERF_UNAVAILABLE = "unavailable.txt"


def find_perf(paths, strategies):
    """[(file, label, gc_only)] for --perf arguments, each strategy's collector
    profile before its whole-process one; InputError for a missing path."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".data"))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise results.InputError(p, "no such perf file or directory")
    order = {s: i for i, s in enumerate(strategies)}
    found = [(f, perf_label(f, strategies), is_gc_only(f)) for f in files]
    return sorted(found, key=lambda f: (order.get(f[1], len(order)), f[1], not f[2], f[0]))


def is_gc_only(path):
    return os.path.splitext(os.path.basename(path))[0].endswith(GC_ONLY_SUFFIX)


def perf_label(path, strategies):
    """The strategy a profile's file name mentions (longest match), else its stem."""
    base = os.path.basename(path)
    hits = [s for s in strategies if s in base]
    stem = os.path.splitext(base)[0]
    return max(hits, key=len) if hits else stem.removesuffix(GC_ONLY_SUFFIX)


def perf_note(paths):
    """The one line for --perf paths that hold no profile."""
    for p in paths:
        note = os.path.join(p, PERF_UNAVAILABLE)
        if os.path.isdir(p) and os.path.isfile(note):
            with open(note, errors="replace") as f:
                why = " ".join(f.read().split())
            if why:
                return f"perf was not available: {why.rstrip('.')}."
    return "perf was not available: no *.data profile in " + ", ".join(paths) + "."


def load_model(args):
    """The Report: one Model per machine (results.by_machine), Go, perf."""
    groups = results.by_machine(args.json)
    several = len(groups) > 1
    rep = Report([Model(g.contexts, g.benches, g.label if several else None) for g in groups])
    if args.go:
        for (name, workload, n, procs), xs in load_go(args.go, args.go_n).items():
            rep.go_rows.append((name, workload, n, procs, xs))
            if not several:  # Go's numbers belong to the machine they ran on
                rep.machines[0].go[(workload, n, procs)] = statistics.median(xs)
    if args.perf:
        strategies = list(dict.fromkeys(s for m in rep.machines for s in m.strategies))
        rep.perf = find_perf((p for group in args.perf for p in group), strategies)
        if not rep.perf:
            rep.perf_note = perf_note([p for group in args.perf for p in group])
    return rep


# ---------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------

def fmt_int(x):
    return "–" if x is None else f"{x:,.0f}"


def fmt_num(x, digits=1):
    return "–" if x is None else f"{x:,.{digits}f}"


def table(header, rows, align=None):
    """A Markdown table; align is a string of 'l'/'r' per column."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "--:" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def group_title(g):
    n, w, p, dims = g
    return (f"n = {n:,}, workers = {w}" + ("" if p == "-" else f", placement = {p}")
            + "".join(f", {k} = {v}" for k, v in dims))


def group_slug(g):
    n, w, p, dims = g
    return results.safe_filename(f"n{n}-w{w}" + ("" if p == "-" else f"-{p}")
                                 + "".join(f"-{k}{v}" for k, v in dims))


def dims_text(dims):
    """ "mutators:2 reuse:clean" for a name's further dimensions, "" for none."""
    return " ".join(f"{k}:{v}" for k, v in dims)


def per_goroutine(b):
    v = b.center("ns_per_goroutine")
    return v if v is not None else b.center() / b.n


def md_escape(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------
# Figures (matplotlib, Agg, SVG, reproducible)
# ---------------------------------------------------------------------------

_plt = None


def plt():
    """pyplot, configured once for reproducible SVG output."""
    global _plt
    if _plt is None:
        import matplotlib
        matplotlib.use("Agg")
        matplotlib.rcParams["svg.hashsalt"] = "stackscan"
        matplotlib.rcParams["figure.max_open_warning"] = 0
        import matplotlib.pyplot as pyplot
        _plt = pyplot
    return _plt


def save(fig, outdir, name):
    """Writes fig as outdir/name (name carries the machine's prefix)."""
    fig.savefig(os.path.join(outdir, name), format="svg", metadata={"Date": None},
                bbox_inches="tight")
    plt().close(fig)
    return name


def color(m, strategy):
    return plt().get_cmap("tab10")(m.strategies.index(strategy) % 10)


def subplots(k, width=4.2, height=3.2):
    cols = min(k, 3)
    rows = (k + cols - 1) // cols
    fig, axes = plt().subplots(rows, cols, figsize=(width * cols, height * rows),
                               squeeze=False, layout="constrained")
    flat = [a for row in axes for a in row]
    for a in flat[k:]:
        a.set_visible(False)
    return fig, flat[:k]


def legend_right(ax):
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))


def plot_lines(m, ax, benches, x, y):
    """One line per (strategy, placement) through the benches, x/y functions."""
    placements = sorted({b.placement for b in benches})
    styles = ["-", "--", ":", "-."]
    for s in m.strategies:
        for i, p in enumerate(placements):
            pts = sorted((x(b), y(b)) for b in benches if b.strategy == s and b.placement == p)
            if pts:
                label = s if len(placements) == 1 else f"{s} ({p})"
                ax.plot([a for a, _ in pts], [c for _, c in pts], styles[i % 4], marker="o",
                        color=color(m, s), label=label)


def fig_workers(m, outdir, workload):
    """Time per GC vs workers, one panel per n; None if only one worker count."""
    bs = [b for b in m.gc if b.workload == workload]
    if len({b.workers for b in bs}) < 2:
        return None
    ns = sorted({b.n for b in bs})
    fig, axes = subplots(len(ns))
    for ax, n in zip(axes, ns):
        sel = [b for b in bs if b.n == n]
        plot_lines(m, ax, sel, lambda b: b.workers, lambda b: b.center() / 1e6)
        ax.set_title(f"{workload}, n = {n:,}")
        ax.set_xlabel("workers")
        ax.set_ylabel("ms per GC")
        ax.set_xticks(sorted({b.workers for b in sel}))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    legend_right(axes[-1])
    return save(fig, outdir, m.prefix + f"scaling-workers-{results.safe_filename(workload)}.svg")


def fig_n(m, outdir, workload):
    """ns per goroutine vs n, one panel per worker count; None if only one n."""
    bs = [b for b in m.gc if b.workload == workload]
    if len({b.n for b in bs}) < 2:
        return None
    ws = sorted({b.workers for b in bs})
    fig, axes = subplots(len(ws))
    for ax, w in zip(axes, ws):
        plot_lines(m, ax, [b for b in bs if b.workers == w], lambda b: b.n, per_goroutine)
        ax.set_title(f"{workload}, workers = {w}")
        ax.set_xscale("log")
        ax.set_xlabel("goroutines (n)")
        ax.set_ylabel("ns per goroutine")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    legend_right(axes[-1])
    return save(fig, outdir, m.prefix + f"scaling-n-{results.safe_filename(workload)}.svg")


def fig_phases(m, outdir, g):
    """Stacked roots/mark/sweep bars per strategy, one panel per workload."""
    fig, axes = subplots(len(m.workloads))
    for ax, wl in zip(axes, m.workloads):
        bs = [b for s in m.strategies if (b := m.get(wl, s, g)) is not None]
        xs = range(len(bs))
        bottom = [0.0] * len(bs)
        for i, ph in enumerate(m.names.phases):
            ys = [(b.center(ph) or 0.0) / 1e6 for b in bs]
            ax.bar(xs, ys, bottom=bottom, color=PHASE_COLORS[i % len(PHASE_COLORS)],
                   label=phase_label(ph))
            bottom = [a + c for a, c in zip(bottom, ys)]
        ax.set_xticks(list(xs), [b.strategy for b in bs], rotation=35, ha="right",
                      fontsize="small")
        ax.set_title(wl)
        ax.set_ylabel("ms")
    legend_right(axes[-1])
    fig.suptitle(group_title(g))
    return save(fig, outdir, m.prefix + f"phases-{group_slug(g)}.svg")


def fig_imbalance(m, outdir, g):
    """Grouped bars of max/mean worker busy time: workloads x strategies."""
    fig, ax = plt().subplots(figsize=(8, 3.5), layout="constrained")
    k = len(m.strategies)
    width = 0.8 / k
    for i, s in enumerate(m.strategies):
        xs, ys = [], []
        for j, wl in enumerate(m.workloads):
            b = m.get(wl, s, g)
            if b is not None and b.center("imbalance") is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(b.center("imbalance") - 1.0)
        # Bars grow from 1.0 (perfect balance), the least an imbalance can be.
        ax.bar(xs, ys, width, bottom=1.0, color=color(m, s), label=s)
    ax.set_ylim(bottom=1.0)
    ax.set_xticks(range(len(m.workloads)), m.workloads)
    ax.set_ylabel("max / mean worker busy time")
    ax.set_title(group_title(g))
    legend_right(ax)
    return save(fig, outdir, m.prefix + f"imbalance-{group_slug(g)}.svg")


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------

def sec_header(rep, args):
    benches = [b for m in rep.machines for b in m.gc + m.micro]
    stats = Counter(b.stat for b in benches)
    how = ", ".join(f"{s} ({k} benchmarks)" for s, k in sorted(stats.items()))
    out = ["# stackscan benchmark report", ""]
    out += ["Inputs: " + ", ".join(f"`{p}`" for p in args.json) + ".", ""]
    out += ["Times are Google Benchmark `real_time` per iteration (one full GC for the "
            "collector benchmarks). With repetitions the report uses the **median** over "
            "the iteration runs, never the aggregates; per benchmark: " + (how or "none")
            + ".", ""]
    if rep.several:
        out += [f"The inputs come from {len(rep.machines)} machines (machine key, CPU, host "
                "and topology from their contexts): their runs are never pooled; each "
                "machine has its own tables below, after a side-by-side view.", ""]
    for m in rep.machines:
        pooled = [b.name for b in m.all if len(b.sources) > 1]
        if pooled:
            out += [f"{len(pooled)} benchmarks appear in several inputs of one machine"
                    f"{m.suffix.replace(' — ', ' (') + ')' if m.label else ''}; their runs "
                    "are pooled.", ""]
    return out


def caches(v):
    parts = []
    for c in v if isinstance(v, list) else []:
        if isinstance(c, dict) and "level" in c and "size" in c:
            kind = {"Data": "d", "Instruction": "i"}.get(c.get("type"), "")
            size = c["size"]
            txt = f"{size // 1048576} MiB" if size >= 1048576 else f"{size // 1024} KiB"
            share = c.get("num_sharing", 1)
            parts.append(f"L{c['level']}{kind} {txt}" + (f" (x{share} shared)"
                                                         if share > 1 else ""))
    return ", ".join(parts)


def context_rows(ctx):
    keys = [k for k in results.CONTEXT_KEYS if k in ctx]
    keys += sorted(k for k in ctx if k not in keys and k not in results.LIST_KEYS
                   and isinstance(ctx[k], (str, int, float, bool)))
    rows = {k: ctx[k] for k in keys}
    if ctx.get("caches"):
        rows["caches"] = caches(ctx["caches"])
    if isinstance(ctx.get("load_avg"), list):
        rows["load_avg"] = " ".join(f"{x:.2f}" for x in ctx["load_avg"] if
                                    isinstance(x, (int, float)))
    return rows


MACHINE_KEYS = ("machine", "cpu", "virtual", "kernel", "hwloc_topology", "num_cpus",
                "host_id")


def sec_machines(rep):
    """Each machine's identity and topology, from its context, side by side."""
    cols = [m.label for m in rep.machines]
    rows = [[f"`{k}`"] + [md_escape(m.context_value(k)) for m in rep.machines]
            for k in MACHINE_KEYS]
    rows.append(["inputs"] + [", ".join(f"`{p}`" for p, _ in m.contexts) for m in rep.machines])
    return ["## Machines", ""] + table(["key"] + cols, rows, "l" * (1 + len(cols))) + [""]


def sec_side_by_side(rep):
    """The seed table of every (n, workers, placement), machines side by side."""
    out = ["## Side by side", "",
           "ns per op per machine and strategy, each machine's ratio to its own reference "
           "strategy in parentheses (machines are never pooled; a configuration a machine "
           "did not run is –).", ""]
    groups = sorted({g for m in rep.machines for g in m.groups})
    workloads = list(dict.fromkeys(w for m in rep.machines for w in m.workloads))
    for g in groups:
        ms = [m for m in rep.machines if g in m.groups]
        header = ["benchmark"] + [f"{m.label}: {s}" for m in ms for s in m.strategies]
        rows = [[wl] + [seed_cell(m.get(wl, s, g), m.get(wl, m.reference, g), s != m.reference)
                        for m in ms for s in m.strategies] for wl in workloads]
        out += [f"### {group_title(g)}", ""] + table(header, rows) + [""]
    return out


def winner(m, wl, g):
    """(best Bench, the runner-up's time over the best's) or None."""
    bs = sorted((b for s in m.strategies if (b := m.get(wl, s, g)) is not None),
                key=lambda b: b.center())
    if not bs:
        return None
    return bs[0], (bs[1].center() / bs[0].center() if len(bs) > 1 else None)


def sec_winners(rep):
    """Which strategy is fastest, per machine, workload and configuration."""
    out = ["## Which strategy wins where", ""]
    keys = sorted({(wl, g) for m in rep.machines for g in m.groups for wl in m.workloads},
                  key=lambda k: (k[1], k[0]))
    rows, wins = [], {m.label: Counter() for m in rep.machines}
    for wl, g in keys:
        row = [wl, f"{g[0]:,}", " ".join(str(x) for x in (g[1], dims_text(g[3])) if x)]
        for m in rep.machines:
            w = winner(m, wl, g)
            if w is None:
                row.append("–")
                continue
            wins[m.label][w[0].strategy] += 1
            row.append(f"{w[0].strategy}" + (f" ({w[1]:.2f}x ahead)" if w[1] else ""))
        rows.append(row)
    for m in rep.machines:
        c, total = wins[m.label], sum(wins[m.label].values())
        if total:
            parts = ", ".join(f"`{s}` {k} of {total}" for s, k in c.most_common())
            out.append(f"- **{m.label}** ({m.context_value('cpu')}, "
                       f"{m.context_value('hwloc_topology')}): fastest {parts}.")
    out += ["", "Per configuration (the fastest strategy, and how far behind the runner-up is):",
            ""]
    header = ["benchmark", "n", "workers"] + [m.label for m in rep.machines]
    return out + table(header, rows, "lrr" + "l" * len(rep.machines)) + [""]


def sec_context(m):
    out = [f"## Machine and configuration{m.suffix}", ""]
    per_file = [(p, context_rows(c)) for p, c in m.contexts]
    if all(r == per_file[0][1] for _, r in per_file):  # one machine and config: one column
        rows = [(f"`{k}`", md_escape(v)) for k, v in per_file[0][1].items()]
        out += table(["key", "value"], rows, "ll") if rows else ["(no context in the input)"]
    else:
        keys = list(dict.fromkeys(k for _, r in per_file for k in r))
        rows = [[f"`{k}`"] + [md_escape(r.get(k, "–")) for _, r in per_file] for k in keys]
        out += table(["key"] + [f"`{p}`" for p, _ in per_file], rows, "l" * (1 + len(per_file)))
    return out + [""]


def sec_seed(m):
    out = [f"## Seed table{m.suffix}", "",
           "ns per op (one full GC with n parked goroutines), and in parentheses the ratio to "
           f"`{m.reference}` on the same configuration (Go CL 17410043's table: "
           "conservative serial 108 ms, frames serial 297 ms, frames parallel 184 ms for "
           "GoroutineSelect).", ""]
    if not m.gc:
        return out + ["No collector benchmarks in the input.", ""]
    if m.go:
        out[-2] += " " + go_words(m)
    for g in m.groups:
        # Only what ran in this configuration (a sweep covers fewer workloads).
        strategies = [s for s in m.strategies if any(m.get(wl, s, g) for wl in m.workloads)]
        workloads = [wl for wl in m.workloads if any(m.get(wl, s, g) for s in strategies)]
        procs = go_procs(g)
        go_ran = [wl for wl in workloads if m.go_ran_at(wl, g[0])]
        go = bool(go_ran) and procs is not None
        rows = []
        for wl in workloads:
            base = m.get(wl, m.reference, g)
            row = [wl] + [seed_cell(m.get(wl, s, g), base, s != m.reference)
                          for s in strategies]
            if go:
                row.append(seed_cell(m.go.get((wl, g[0], procs)), base, True))
            rows.append(row)
        header = ["benchmark"] + strategies + ([f"Go (GOMAXPROCS={procs})"] if go else [])
        out += [f"### {group_title(g)}", ""] + table(header, rows) + [""]
        out += go_note(m, g, procs, go_ran)
    return out


def go_words(m):
    """What the Go column compares, for the seed table's opening paragraph."""
    procs = sorted({p for _, _, p in m.go})
    ns = sorted({n for _, n, _ in m.go})
    return ("**Go** is Go's own runtime.GC on its own benchmark (`go test -bench` in Go's "
            "runtime package, median ns/op over its runs; here at GOMAXPROCS = "
            + ", ".join(map(str, procs)) + ", n = " + ", ".join(f"{n:,}" for n in ns)
            + "), matched like for like: Go's GOMAXPROCS threads run its goroutines and "
            "its mark workers alike, so GOMAXPROCS = P stands only in the tables of ours "
            "at mutators = P and workers = P with the same n (GOMAXPROCS = 1 beside "
            "mutators = 1, workers = 1; GOMAXPROCS = 2 beside mutators = 2, workers = 2), "
            "with its ratio to that table's `" + str(m.reference) + "`: above 1.00x Go is "
            "slower. Tables of any other mutators and workers have no Go column. Go is "
            "matched only when the report holds one machine (ci/bench runs both in one "
            "run): hold the ratios against each other, never a number of another machine.")


def go_note(m, g, procs, go_ran):
    """The line under a seed table Go ran the workloads of, when its Go
    column is absent (not like for like) or has holes (no result at P)."""
    if not go_ran:
        return []
    mutators = dict(g[3]).get("mutators", "1")
    if procs is None:
        return [f"No Go column: this table has mutators = {mutators}, workers = {g[1]}"
                + "".join(f", {k} = {v}" for k, v in g[3] if k != "mutators")
                + "; Go at GOMAXPROCS = P is compared only with mutators = workers = P.", ""]
    missing = [wl for wl in go_ran if (wl, g[0], procs) not in m.go]
    if not missing:
        return []
    return [f"No Go result at GOMAXPROCS = {procs}, n = {g[0]:,} for "
            + ", ".join(f"{wl} (Go ran it at GOMAXPROCS = "
                        + ", ".join(map(str, m.go_ran_at(wl, g[0]))) + ")" for wl in missing)
            + (": their Go cells are" if len(missing) > 1 else ": its Go cell is")
            + " empty, not matched to another GOMAXPROCS.", ""]


def seed_cell(b, base, ratio):
    """ns/op of a Bench (or a plain number: Go's), with its ratio to base."""
    t = b.center() if isinstance(b, results.Bench) else b
    if t is None:
        return "–"
    cell = fmt_int(t)
    if ratio and base and base.center() > 0:
        cell += f" ({t / base.center():.2f}x)"
    return cell


def sec_per_goroutine(m):
    out = [f"## ns per goroutine{m.suffix}", "",
           "The `ns_per_goroutine` counter (else ns/op / n)."]
    go = bool(m.go)
    if go:
        out[-1] += (" **Go** is Go's own runtime.GC on the same benchmark (`go test -bench`), "
                    "ns/op / n, median over its runs, at GOMAXPROCS = P on the rows of ours "
                    "at mutators = workers = P only (its like-for-like peer, as in the seed "
                    "table); – on every other row.")
    out.append("")
    header = ["benchmark", "n", "workers", "placement"] + m.strategies + (["Go"] if go else [])
    rows = []
    for g in m.groups:
        for wl in m.workloads:
            bs = [m.get(wl, s, g) for s in m.strategies]
            if not any(bs):
                continue
            place = " ".join(x for x in (g[2], dims_text(g[3])) if x)
            row = [wl, f"{g[0]:,}", g[1], place] + [fmt_num(per_goroutine(b)) if b else "–"
                                                    for b in bs]
            if go:
                v = m.go.get((wl, g[0], go_procs(g)))
                row.append(fmt_num(v / g[0]) if v is not None else "–")
            rows.append(row)
    return out + table(header, rows, "lrrl" + "r" * (len(header) - 4)) + [""]


def sec_go(rep):
    if not rep.go_rows:
        return []
    out = ["### Go peer results", "",
           "Each Go result and the runs of ours it is compared with: those at mutators = "
           "workers = GOMAXPROCS and the same n.", ""]
    rows = [(f"Benchmark{name}", f"{n:,}", procs, fmt_int(statistics.median(xs)),
             fmt_num(statistics.median(xs) / n), len(xs), go_peer_text(rep, wl, n, procs))
            for name, wl, n, procs, xs in rep.go_rows]
    return out + table(["benchmark", "n", "GOMAXPROCS", "ns/op", "ns/goroutine", "runs",
                        "compared with"], rows, "lrrrrrl") + [""]


def go_peer_text(rep, wl, n, procs):
    """Which runs of ours a Go result stands beside, in words."""
    if rep.several:
        return "nothing (several machines: Go is not matched)"
    strategies = [b.strategy for b in rep.machines[0].gc
                  if b.workload == wl and b.n == n and go_procs(b.group) == procs]
    if not strategies:
        return f"nothing (no run of ours at mutators = workers = {procs}, n = {n:,})"
    return f"mutators = workers = {procs}: " + ", ".join(dict.fromkeys(strategies))


def sec_scaling(m, outdir):
    out = [f"## Scaling{m.suffix}", ""]
    for wl in m.workloads:
        figs = [(fig_workers(m, outdir, wl), "time per GC vs workers"),
                (fig_n(m, outdir, wl), "ns per goroutine vs n")]
        out += [f"### {wl}", ""]
        for f, what in figs:
            out += [f"![{wl}: {what}]({f})" if f else
                    f"{what}: only one value measured, no plot.", ""]
        out += scaling_words(m, wl)
    return out


# A speed-up from 1 to W workers of at least this fraction of W is "near-linear".
NEAR_LINEAR = 0.8


def scaling_words(m, wl):
    """One sentence per strategy on how its GC time scales with workers, at
    the largest n measured with more than one worker count."""
    bs = [b for b in m.gc if b.workload == wl]
    ns = [n for n in sorted({b.n for b in bs}) if len({b.workers for b in bs if b.n == n}) > 1]
    if not ns:
        return []
    n, out = ns[-1], []
    for s in m.strategies:
        pts = {b.workers: b for b in bs if b.n == n and b.strategy == s}
        if 1 not in pts or len(pts) < 2:
            continue
        w = max(pts)
        one, many = pts[1], pts[w]
        speedup = one.center() / many.center()
        eff = speedup / w
        verdict = "near-linear" if eff >= NEAR_LINEAR else "not near-linear"
        text = (f"`{s}` at n = {n:,}: speed-up {speedup:.2f}x from 1 to {w} workers "
                f"({eff:.0%} of linear): {verdict}.")
        f1, fw = one.center("touch_ns"), many.center("touch_ns")
        if f1 and fw:
            text += (f" Over the memory floor (touch_ns, one thread's read of the stacks; "
                     f"no parallel floor is measured): {one.center() / f1:.2f} with 1 worker, "
                     f"{many.center() / fw:.2f} with {w} (linear scaling would be "
                     f"{one.center() / f1 / w:.2f}).")
        out += [text, ""]
    if out:
        out.insert(0, f"Scaling with workers (near-linear: a speed-up of at least "
                      f"{NEAR_LINEAR:.0%} of the worker count; medians, on this run's machine):")
        out.insert(1, "")
    return out


def phase_cell(b, phases):
    if b is None:
        return "–"
    vals = [b.center(p) for p in phases]
    return " / ".join(fmt_num(v / 1e6, 2) if v is not None else "–" for v in vals)


def sec_phases(m, outdir):
    out = [f"## Phases and worker imbalance{m.suffix}", "",
           "Cells: " + " / ".join(phase_label(p) for p in m.names.phases)
           + " in ms (medians of the counters). Imbalance: max / "
           "mean worker busy time (1.00 = perfectly even); per-worker busy ms in brackets "
           "when reported.", ""]
    has_phases = any(b.center(p) is not None for b in m.gc for p in m.names.phases)
    for g in m.groups:
        out += [f"### {group_title(g)}", ""]
        if has_phases:
            out += [f"![phases, {group_title(g)}]({fig_phases(m, outdir, g)})", ""]
        rows = [[wl] + [phase_cell(m.get(wl, s, g), m.names.phases) for s in m.strategies]
                for wl in m.workloads]
        out += table(["benchmark"] + m.strategies, rows) + [""]
        out += sec_floor(m, g)
        out += sec_imbalance(m, outdir, g)
    return out


def floor_cell(b):
    if b is None or not b.center("touch_ns"):
        return "–"
    t, floor = b.center(), b.center("touch_ns")
    at = f"{floor / 1e3:,.0f} µs" if floor < 1e6 else f"{floor / 1e6:,.2f} ms"
    return f"{t / floor:.2f} ({at})"


def sec_floor(m, g):
    """One GC against touch_ns, the time to read the same parked stacks with
    no collector work, both measured in one process."""
    bs = [m.get(wl, s, g) for wl in m.workloads for s in m.strategies]
    if not any(b is not None and b.center("touch_ns") for b in bs):
        return []
    rows = [[wl] + [floor_cell(m.get(wl, s, g)) for s in m.strategies] for wl in m.workloads]
    return ["Against the memory floor: one GC's time over `touch_ns` (in brackets), the "
            "time to read every parked stack's live bytes with the collector's prefetching "
            "and no other work, measured in the same process right after the GCs. A "
            "machine's speed moves both alike, so the ratio is steadier than either. At "
            "small n the GC's fixed costs (worker wake-up, sweep) dominate the ratio.", ""] \
        + table(["benchmark"] + m.strategies, rows) + [""]


def imbalance_cell(b):
    if b is None or b.center("imbalance") is None:
        return "–"
    busy = sorted((k for k in b.counter_names() if re.fullmatch(r"busy_ns_w\d+", k)),
                  key=lambda k: int(k[9:]))
    cell = f"{b.center('imbalance'):.2f}"
    if busy:
        cell += " [" + ", ".join(fmt_num(b.center(k) / 1e6, 1) for k in busy) + "]"
    return cell


def sec_imbalance(m, outdir, g):
    if g[1] < 2:
        return []
    if not any(b.center("imbalance") is not None for b in m.gc if b.group == g):
        return ["Imbalance: not reported.", ""]
    out = [f"![imbalance, {group_title(g)}]({fig_imbalance(m, outdir, g)})", ""]
    rows = [[wl] + [imbalance_cell(m.get(wl, s, g)) for s in m.strategies]
            for wl in m.workloads]
    return out + table(["imbalance"] + m.strategies, rows) + [""]


def pause_cell(b, pauses, stops=()):
    """ "ttsp / ... / stw_max" in µs, then "; async_preempts 1.00" for each
    stop counter the run reports other than 0."""
    if b is None or all(b.center(p) is None for p in pauses):
        return "–"
    cell = " / ".join(fmt_num(v / 1e3, 1) if (v := b.center(p)) is not None else "–"
                      for p in pauses)
    counts = [f"{s} {v:.2f}" for s in stops if (v := b.center(s))]
    return cell + "".join("; " + c for c in counts)


def spin_note(b):
    """ " (1 spinner, poll 0.98 µs)" for a benchmark that reports GoroutineSpin's
    spinners and poll interval (" (1 spinner, never polls)" for 0), else "". """
    k, poll = b.center("spinners"), b.center("poll_interval_ns")
    if k is None or poll is None:
        return ""
    every = f"poll {poll / 1e3:,.2f} µs" if poll else "never polls"
    return f" ({k:.0f} spinner{'s' if k != 1 else ''}, {every})"


def sec_pauses(m):
    """The stop-the-world's times per configuration: time to safepoint (the
    request until every other mutator stopped) and the whole pause."""
    pauses = m.names.pauses
    if not any(b.center(p) is not None for b in m.gc for p in pauses):
        return []
    out = [f"## Pause and time to safepoint{m.suffix}", "",
           "Cells: " + " / ".join(phase_label(p) for p in pauses) + " in µs, over the timed "
           "cycles (medians and maxima per run, then the median over repetitions). `ttsp`: "
           "from the stop request until every other mutator thread stopped at a safepoint "
           "(0 with one mutator, or when the cycle is requested outside ref_run, where no "
           "goroutine runs: every workload but GoroutineSpin); `stw`: from the request to "
           "the restart, the whole pause. Then, where not 0, the stop's counters ("
           + (", ".join(f"`{c}`" for c in m.names.stops) or "none reported") + "), means "
           "per cycle: async_preempts counts the goroutines a stop stopped by preempt=async's "
           "signal rather than at a safepoint. GoroutineSpin's spinners poll every interval "
           "given in brackets.", ""]
    for g in m.groups:
        rows = []
        for wl in m.workloads:
            bs = [m.get(wl, s, g) for s in m.strategies]
            if not any(bs):
                continue
            note = next((spin_note(b) for b in bs if b and spin_note(b)), "")
            rows.append([wl + note] + [pause_cell(b, pauses, m.names.stops) for b in bs])
        if rows:
            out += [f"### {group_title(g)}", ""] + table(["benchmark"] + m.strategies, rows)
            out += [""]
    return out


def modes_of(m):
    """The modes m's runs ran in: the contexts' mode lists' order, then any
    other seen in names."""
    declared = [x for _, c in m.contexts for x in results.context_list(c, "mode")]
    seen = [b.mode for b in m.gc]
    return [x for x in dict.fromkeys(declared + seen) if x in seen]


def concurrent_cell(name, v):
    if v is None:
        return "–"
    if name.endswith("_ns"):
        return fmt_num(v / 1e3, 1)
    if name == "mmu_1ms":
        return f"{v:.2f}"
    return fmt_int(v)


def bench_key(m, b):
    """Sort key: workload, n, strategy, workers, placement, dims."""
    return (m.workloads.index(b.workload), b.n, m.strategies.index(b.strategy), b.workers,
            b.placement, b.dims)


def other_dims(b):
    """b's further dimensions but its mode."""
    return tuple((k, v) for k, v in b.dims if k != "mode")


def concurrent_tables(m, mode):
    """The lines of one mode's tables."""
    bs = sorted((b for b in m.gc if b.mode == mode), key=lambda b: bench_key(m, b))
    out = []
    for title, names in CONCURRENT_TABLES:
        cols = [c for c in names if any(b.center(c) is not None for b in bs)]
        if not cols:
            continue
        rows = [[b.workload, f"{b.n:,}", b.strategy, b.workers, dims_text(other_dims(b))]
                + [concurrent_cell(c, b.center(c)) for c in cols] for b in bs]
        out += [f"#### {mode}: {title}", ""]
        out += table(["benchmark", "n", "strategy", "workers", "further"]
                     + [phase_label(c) for c in cols], rows, "lrlrl" + "r" * len(cols)) + [""]
    return out


def slope(points):
    """The least-squares slope of [(x, y)], None for fewer than two x."""
    xs = [x for x, _ in points]
    if len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(y for _, y in points)
    return (sum((x - mx) * (y - my) for x, y in points)
            / sum((x - mx) ** 2 for x in xs))


def pause_slopes(m, modes):
    """{(workload, strategy, workers, placement, dims but mode): {mode: (slope, ns)}}
    for the configurations that ran in some concurrent mode."""
    points = {}
    for b in m.gc:
        v = b.center(SLOPE_PAUSE)
        if v is not None and b.mode in modes:
            key = (b.workload, b.strategy, b.workers, b.placement, other_dims(b))
            points.setdefault(key, {}).setdefault(b.mode, []).append((b.n, v))
    out = {}
    for key, per_mode in points.items():
        if not any(mode != results.STW_MODE for mode in per_mode):
            continue
        out[key] = {mode: (slope(ps), sorted({n for n, _ in ps})) for mode, ps in per_mode.items()}
    return out


def slope_cell(s_ns):
    if s_ns is None:
        return "–"
    s, ns = s_ns
    if s is None:
        return f"– (n = {ns[0]:,} only)"
    return f"{s:,.2f} (n = {ns[0]:,}..{ns[-1]:,})"


def mark_cpu_rows(m, conc):
    """Rows of the mark CPU table: each concurrent run's mark_cpu_ns over
    stw's in the same configuration (workload, n, strategy, workers,
    placement, dimensions but the mode)."""
    def key(b):
        return (b.workload, b.n, b.strategy, b.workers, b.placement, other_dims(b))
    stw = {key(b): b.center("mark_cpu_ns") for b in m.gc if b.mode == results.STW_MODE}
    rows = []
    for b in sorted(m.gc, key=lambda b: bench_key(m, b)):
        base, v = stw.get(key(b)), b.center("mark_cpu_ns")
        if b.mode not in conc or not base or v is None:
            continue
        rows.append([b.workload, f"{b.n:,}", b.strategy, b.workers, dims_text(other_dims(b)),
                     b.mode, fmt_num(base / 1e3, 1), fmt_num(v / 1e3, 1), f"{v / base:.2f}x"])
    return rows


def sec_concurrent(m):
    """Concurrent marking's figures per mode, and the termination pause's slope."""
    modes = modes_of(m)
    conc = [x for x in modes if x != results.STW_MODE]
    if not conc:
        return []
    out = [f"## Concurrent marking{m.suffix}", "",
           "Runs in the concurrent modes (the name's `mode:X`); medians over repetitions of "
           "what the bench reports per run. A cycle has three pauses: the first (`pause1`, "
           "its time to safepoint `ttsp1`), mark termination (`stw`, `ttsp`) and the short "
           "one that ends the sweep, which runs with the world going between the last two; "
           "`pause_total` and `pause_max` take all three. `mark`: the concurrent mark's wall time; "
           "`mark_cpu`: the CPU time spent marking on every thread, pauses included "
           "(ref_gc_stats.mark_cpu_ns); "
           "`assist`: the mutators' assists. Stacks scanned as stack jobs (`stacks_bg`: the "
           "background workers, an allocation at the goal, a `ref_gc` caller with nothing "
           "else to run), by the thread about to run the goroutine (`stacks_self`), in the "
           "pauses (`stacks_pause`); `rescan_bytes`: stack bytes the termination read; "
           "`barrier_shades`: pointers the write barrier shaded. Columns a run does not report "
           "are left out.", ""]
    for mode in conc:
        out += [f"### {mode}", ""] + concurrent_tables(m, mode)
    rows = mark_cpu_rows(m, conc)
    if rows:
        out += ["### Mark CPU against stw", "",
                "What marking cost, summed over threads (`mark_cpu`), in each concurrent run "
                "and in the stw run of the same configuration; the ratio is the concurrent "
                "mode's price in CPU for its short pauses.", ""]
        out += table(["benchmark", "n", "strategy", "workers", "further", "mode",
                      "stw mark_cpu (µs)", "mark_cpu (µs)", "ratio"], rows,
                     "lrlrllrrr") + [""]
    slopes = pause_slopes(m, modes)
    if slopes:
        out += ["### Termination pause per goroutine", "",
                f"The slope of `{phase_label(SLOPE_PAUSE)}` (the whole stop; in a concurrent "
                "cycle its termination) over n, in ns per goroutine: a least-squares line "
                "through each mode's runs at the n values given. stw's is the whole pause; "
                "concurrent-rescan's termination rescans every stack, so it grows like stw's; "
                "concurrent-hybrid's should not.", ""]
        rows = [[wl, st, w, " ".join(x for x in (p if p != "-" else "", dims_text(d)) if x)]
                + [slope_cell(per.get(mode)) for mode in modes]
                for (wl, st, w, p, d), per in sorted(
                    slopes.items(), key=lambda kv: (m.workloads.index(kv[0][0]),
                                                    m.strategies.index(kv[0][1]), kv[0][2:]))]
        out += table(["benchmark", "strategy", "workers", "further"] + modes, rows,
                     "llrl" + "r" * len(modes)) + [""]
    return out


def sec_counters(m):
    names = m.names.exact
    out = [f"## Deterministic counters{m.suffix}", "",
           "As reported (medians); they depend on the workload, n, strategy and the name's "
           "further dimensions (mutators, reuse) only, not on timing, workers or placement.",
           ""]
    # The further dimensions (mutators, reuse) change the work: GoroutineSpin
    # scans a spinner's stack per other mutator, reuse skips stacks.
    seen, rows, differ = {}, [], []
    for b in m.gc:
        key = (b.workload, b.n, b.strategy, b.dims)
        vals = tuple(b.center(c) for c in names)
        if key not in seen:
            seen[key] = vals
            label = " ".join(x for x in (b.strategy, dims_text(b.dims)) if x)
            rows.append((key, [b.workload, f"{b.n:,}", label] + [fmt_int(v) for v in vals]))
        elif seen[key] != vals:
            differ.append(b.name)
    rows = [r for _, r in sorted(rows, key=lambda kr: (m.workloads.index(kr[0][0]), kr[0][1],
                                                       m.strategies.index(kr[0][2]), kr[0][3]))]
    out += ["<details><summary>counters per workload, n and strategy</summary>", ""]
    out += table(["benchmark", "n", "strategy"] + list(names), rows, "lrl" + "r" * len(names))
    out += ["", "</details>", ""]
    if differ:
        out += ["**Counters differ across workers/placements** (they should not) for: "
                + ", ".join(f"`{d}`" for d in differ[:10])
                + (f" and {len(differ) - 10} more" if len(differ) > 10 else "") + ".", ""]
    return out


def sec_perf(rep, top):
    out = ["## Profiles (perf, self time)", ""]
    if not rep.perf:
        return out + [rep.perf_note, ""]
    out += ["Per strategy, first the collector alone: samples taken only inside the timed "
            "collections (`perfrecord --gc-only`: perf's events are enabled and disabled "
            "around each cycle by the bench); its table lists the collector's own functions "
            "(user space), and one line gives the kernel's share of those samples (waking and "
            "parking the workers; in a VM cpu-clock books a stretch with interrupts off at "
            "the unlock that turns them on again, often `_raw_spin_unlock_irqrestore`). Then "
            "the whole process, kernel included (set-up, wake-ups, helpers idling between "
            "cycles).", ""]
    for path, label, gc_only in rep.perf:
        what = "inside collections" if gc_only else "whole process"
        out += [f"### {label}: {what} (`{path}`)", ""]
        try:
            out += [perfsummary.perf_table(path, top, user=gc_only), ""]
        except (results.InputError, perfsummary.PerfError) as e:
            out += [f"No profile: {md_escape(e)}.", ""]
    return out


def sec_micro(m):
    if not m.micro:
        return []
    rows = []
    for b in m.micro:
        its = [r.get("iterations") for r in b.runs if isinstance(r.get("iterations"), int)]
        extra = ", ".join(f"{k} {b.center(k):,.4g}" for k in b.counter_names())
        rows.append([f"`{b.name}`", fmt_num(b.center(), 1), b.repetitions or "–",
                     fmt_int(statistics.median(its)) if its else "–", extra])
    return [f"## Micro benchmarks{m.suffix}", ""] + table(
        ["benchmark", "ns/op", "repetitions", "iterations", "counters"], rows, "lrrrl") + [""]


def sec_failed(m):
    if not m.failed:
        return []
    rows = [[f"`{b.name}`", md_escape(b.error)] for b in m.failed]
    return [f"## Failed benchmarks{m.suffix}", ""] + table(["benchmark", "error"], rows,
                                                           "ll") + [""]


def render(rep, args, outdir):
    """Writes report.md and its figures into outdir (a fresh directory)."""
    lines = sec_header(rep, args)
    if rep.several:
        lines += sec_machines(rep) + sec_side_by_side(rep) + sec_winners(rep)
    for m in rep.machines:
        lines += sec_context(m) + sec_seed(m) + sec_per_goroutine(m)
        lines += sec_scaling(m, outdir) + sec_phases(m, outdir) + sec_pauses(m)
        lines += sec_concurrent(m) + sec_counters(m)
        lines += sec_micro(m) + sec_failed(m)
    lines += sec_go(rep) + sec_timelines(args, outdir) + sec_perf(rep, args.perf_top)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")


def sec_timelines(args, outdir):
    """The median cycle of each traced benchmark (stackscan-bench --trace)."""
    if not args.trace:
        return []
    runs = timeline.load(args.trace)
    out = ["## GC timelines", "",
           f"From `{args.trace}`: each benchmark's median cycle (by length) of the cycles "
           "traced, one row per mark worker. Spans are per batch: a run of stack jobs is one "
           "span. Below each chart, the median time per cycle in each kind of span, summed over "
           "the workers.", ""]
    if not runs:
        return out + ["The trace holds no cycles.", ""]
    for bench in sorted(runs):
        name, c, length, n = timeline.fig_timeline(plt, save, outdir, bench, runs[bench])
        out += [f"### {bench}", "", f"![timeline, {bench}]({name})", ""]
        tot = timeline.summary(runs[bench])
        out += ["Median µs per cycle: " + ", ".join(
            f"{k} {tot[k]:,.1f}" for k in sorted(tot, key=lambda k: -tot[k])) + "", ""]
    return out


# ---------------------------------------------------------------------------
# Atomic output
# ---------------------------------------------------------------------------

def publish(tmp, outdir):
    """Moves tmp's files into outdir, report.md last; or renames tmp to outdir."""
    if not os.path.exists(outdir):
        os.rename(tmp, outdir)
        return
    names = sorted(os.listdir(tmp), key=lambda f: f == "report.md")
    for f in names:
        os.replace(os.path.join(tmp, f), os.path.join(outdir, f))
    os.rmdir(tmp)


def write_report(m, args):
    outdir = os.path.abspath(args.out)
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(outdir)}.tmp-", dir=parent)
    try:
        render(m, args, tmp)
        publish(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(prog="report", description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", help="stackscan-bench JSON output files")
    ap.add_argument("-o", "--out", required=True, help="output directory")
    ap.add_argument("--perf", nargs="+", action="append", metavar="DIR_OR_FILE",
                    help="perf.data files, or directories of *.data files")
    ap.add_argument("--perf-top", type=int, default=10, help="symbols per profile")
    ap.add_argument("--go", metavar="GO_RESULTS", help="`go test -bench` output")
    ap.add_argument("--trace", metavar="TRACE_JSON",
                    help="stackscan-bench --trace output: draws each benchmark's median cycle")
    ap.add_argument("--go-n", type=int, default=1000,
                    help="goroutines in the Go run when its names lack /n=N (default 1000)")
    args = ap.parse_args(argv)
    try:
        if args.go_n < 1:
            raise results.InputError("--go-n", f"{args.go_n} is not a positive number of "
                                               "goroutines")
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise results.InputError(args.out, "output exists and is not a directory")
        write_report(load_model(args), args)
    except results.InputError as e:
        results.die("report", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
