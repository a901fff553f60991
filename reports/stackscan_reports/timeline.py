"""GC timelines: stackscan-bench --trace=FILE's Chrome trace events, read
back, and the median cycle of each benchmark drawn as a Gantt chart (one row
per mark worker, one colour per kind of span).

The bench writes one trace process per benchmark run, named after the
benchmark; Google Benchmark's trial runs come first under the same name, so
the last process of a name is the final run. Each span carries its cycle
number in args.cycle.
"""
import json
import statistics

from . import results

# The span kinds, in the order ref.h's REF_TRACE_KINDS lists them; a kind
# the bench adds later is drawn too, in the next colour.
KIND_ORDER = ("roots", "wait-roots", "stack-jobs", "drain", "idle", "sweep")


def load(path):
    """{benchmark name: {cycle: [(worker, kind, ts_us, dur_us, items)]}} of
    the final run of each benchmark. Raises results.InputError."""
    try:
        with open(path) as f:
            doc = json.load(f)
        events = doc["traceEvents"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise results.InputError(path, f"not a stackscan-bench trace ({e})") from None
    names, runs = {}, {}
    for ev in events:
        if not isinstance(ev, dict):
            raise results.InputError(path, "a trace event is not an object")
        if ev.get("ph") == "M" and ev.get("name") == "process_name":
            names[ev.get("pid")] = ev.get("args", {}).get("name", "")
        elif ev.get("ph") == "X":
            try:
                span = (int(ev["tid"]), str(ev["name"]), float(ev["ts"]), float(ev["dur"]),
                        int(ev.get("args", {}).get("items", 0)))
                cycle = int(ev["args"]["cycle"])
            except (KeyError, TypeError, ValueError):
                raise results.InputError(path, f"malformed span event {ev!r:.80}") from None
            runs.setdefault(ev.get("pid"), {}).setdefault(cycle, []).append(span)
    final = {}
    for pid in sorted(runs, key=lambda p: (p is None, p)):
        final[names.get(pid, f"process {pid}")] = runs[pid]  # later runs replace trials
    return final


def cycle_length(spans):
    return max(t + d for _, _, t, d, _ in spans) - min(t for _, _, t, _, _ in spans)


def median_cycle(cycles):
    """The cycle number whose length is the median (the lower one for an even count)."""
    order = sorted(cycles, key=lambda c: (cycle_length(cycles[c]), c))
    return order[(len(order) - 1) // 2]


def fig_timeline(plt, save, outdir, bench, cycles):
    """Draws bench's median cycle; returns (svg name, cycle, length in µs, cycles seen)."""
    c = median_cycle(cycles)
    spans = cycles[c]
    t0 = min(t for _, _, t, _, _ in spans)
    workers = sorted({w for w, *_ in spans})
    kinds = list(KIND_ORDER) + sorted({k for _, k, *_ in spans} - set(KIND_ORDER))
    cmap = plt().get_cmap("tab10")
    fig, ax = plt().subplots(figsize=(8, 0.5 + 0.45 * len(workers)), layout="constrained")
    seen = set()
    for w, k, t, d, _ in spans:
        label = k if k not in seen else None
        seen.add(k)
        ax.barh(w, max(d, 1e-3), left=t - t0, height=0.6, color=cmap(kinds.index(k) % 10),
                label=label)
    ax.set_yticks(workers, [f"worker {w}" for w in workers])
    ax.invert_yaxis()
    ax.set_xlabel("µs since the cycle began")
    ax.set_title(f"{bench}: cycle {c}, the median of {len(cycles)}", fontsize="small")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    name = save(fig, outdir, f"timeline-{results.safe_filename(bench)}.svg")
    return name, c, cycle_length(spans), len(cycles)


def summary(cycles):
    """Median over cycles of each kind's total time, µs: {kind: µs}."""
    per = {}
    for spans in cycles.values():
        tot = {}
        for _, k, _, d, _ in spans:
            tot[k] = tot.get(k, 0.0) + d
        for k, v in tot.items():
            per.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in per.items()}
