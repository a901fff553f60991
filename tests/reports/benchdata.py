"""benchdata: craft stackscan-bench JSON (Google Benchmark 1.7 layout) for tests.

make_doc() builds a deterministic document shaped like a real
`stackscan-bench --benchmark_out_format=json` run: iteration runs per
repetition followed by mean/median/stddev/cv aggregates, user counters as
top-level keys, names "Workload/strategy/n:N/workers:W/placement/manual_time",
plus micro benchmarks and optionally a failed benchmark.
"""

import importlib
import json
import os
import random
import statistics
import subprocess

WORKLOADS = ("GoroutineSelect", "GoroutineBlocking")
STRATEGIES = ("conservative-serial", "frames-serial", "frames-parallel",
              "conservative-rootjobs")
# Relative cost of each strategy, shaped like CL 17410043's numbers.
COST = {"conservative-serial": 1.0, "frames-serial": 2.75, "frames-parallel": 1.7,
        "conservative-parallel": 0.9, "conservative-rootjobs": 0.8, "frames-rootjobs": 1.5}
CONTEXT = {
    "date": "2026-01-01T00:00:00+00:00", "host_name": "vm", "executable": "stackscan-bench",
    "num_cpus": 2, "mhz_per_cpu": 2600, "cpu_scaling_enabled": False,
    "caches": [{"type": "Data", "level": 1, "size": 49152, "num_sharing": 1},
               {"type": "Unified", "level": 3, "size": 503316480, "num_sharing": 2}],
    "load_avg": [0.1, 0.2, 0.3], "library_build_type": "release",
    "hwloc_topology": "Machine (7.7GB) Package L#0 2 x (L2 L1d Core PU)",
    "ref_config": "stack_size=65536 heap_max=1073741824 stackmaps=pctab checkmark=0",
    "compiler": "gcc 12.2.0", "cflags": "-O2 -fno-omit-frame-pointer",
    "git_rev": "0123abc", "stackmaps": "pctab", "scan_filter": "avx2",
    "machine": "x86_64-amd-epyc-2pu",
    "cpu": "AuthenticAMD family 25 model 17: AMD EPYC", "kernel": "Linux 6.1.0 x86_64",
    "virtual": "KVM", "host_id": "5f1e0c2a9b7d4e31",
    # What the bench's context says once ref's tables emit them (issue 20): the
    # strategies in ref's order and the per-cycle counters.
    "strategies": "conservative-serial,frames-serial,frames-parallel,conservative-parallel,"
                  "conservative-rootjobs,frames-rootjobs",
    "counters": "stack_bytes,words,frames,lookups,objects_marked,roots_ns,mark_ns,sweep_ns",
}


def gc_name(wl, strategy, n, workers, placement):
    return f"{wl}/{strategy}/n:{n}/workers:{workers}/{placement}/manual_time"


def counters(wl, strategy, n, workers, t):
    """Counters of one run; the deterministic ones depend on (wl, strategy, n) only."""
    frames_based = strategy.startswith("frames")
    words = n * (24 if frames_based else 64) + len(wl)
    c = {"ns_per_goroutine": t / n, "stack_bytes": n * 512.0, "words": float(words),
         "frames": float(n * 3 if frames_based else 0),
         "lookups": float(n * 3 if frames_based else 0),
         "objects_marked": float(n * 2 + 100), "roots_ns": t * 0.05, "mark_ns": t * 0.8,
         "sweep_ns": t * 0.15, "stack_bytes_per_second": n * 512.0 / (t * 1e-9)}
    if workers > 1:
        c["imbalance"] = 1.0 + 0.1 * workers
        for w in range(workers):
            c[f"busy_ns_w{w}"] = t * 0.8 / workers * (1.1 if w == 0 else 0.95)
    return c


def entry(name, rep, reps, t, extra):
    e = {"name": name, "family_index": 0, "per_family_instance_index": 0,
         "run_name": name, "run_type": "iteration", "repetitions": reps,
         "repetition_index": rep, "threads": 1, "iterations": 10, "real_time": t,
         "cpu_time": t * 0.9, "time_unit": "ns"}
    e.update(extra)
    return e


def aggregates(name, runs):
    out = []
    for agg, f in (("mean", statistics.mean), ("median", statistics.median),
                   ("stddev", statistics.stdev)):
        if agg == "stddev" and len(runs) < 2:
            continue
        e = dict(runs[0])
        e.pop("repetition_index")
        e.update({"name": f"{name}_{agg}", "run_type": "aggregate", "aggregate_name": agg,
                  "iterations": len(runs)})
        for k, v in runs[0].items():
            if isinstance(v, float):
                e[k] = f([r[k] for r in runs])
        out.append(e)
    return out


def make_doc(reps=5, workloads=WORKLOADS, strategies=STRATEGIES, ns=(1000, 10000),
             workers=(1, 2), placements=("compact",), slow=None, seed=1, micro=True,
             failed=False, with_aggregates=True, names_in_context=True, floor=True):
    """A results document. slow: {name_substring: factor} multiplies times.

    names_in_context=False leaves out the context's strategies and counters
    keys, as the bench wrote results before it emitted them; floor=False
    leaves out touch_ns, the memory floor (results from before it existed)."""
    rng = random.Random(seed)
    benches = []
    for wl in workloads:
        for n in ns:
            for w in workers:
                for p in placements:
                    for s in strategies:
                        name = gc_name(wl, s, n, w, p)
                        base = 100e6 * n / 1000 * COST[s] * (1 if "serial" in s else 1.5 / w)
                        touch = 0.7 * base  # the memory floor: not slowed by `slow`
                        for sub, f in (slow or {}).items():
                            if sub in name:
                                base *= f
                        runs = []
                        for r in range(reps):
                            t = base * (1 + rng.uniform(-0.01, 0.01))
                            c = counters(wl, s, n, w, t)
                            if floor:
                                c["touch_ns"] = touch * (1 + rng.uniform(-0.01, 0.01))
                            runs.append(entry(name, r, reps, t, c))
                        benches += runs
                        if with_aggregates and reps > 1:
                            benches += aggregates(name, runs)
    if micro:
        for r in range(reps):
            benches.append(entry("micro/GoroutineSwitch", r, reps, 41.5 + r * 0.1, {}))
    if failed:
        benches.append({"name": "GoroutineIdle/frames-serial/n:1000/workers:1/compact",
                        "run_name": "GoroutineIdle/frames-serial/n:1000/workers:1/compact",
                        "run_type": "iteration", "repetitions": 1, "repetition_index": 0,
                        "threads": 1, "error_occurred": True,
                        "error_message": "checkmark: object 0x7f00 unmarked",
                        "iterations": 1, "real_time": 0.0, "cpu_time": 0.0,
                        "time_unit": "ns"})
    ctx = dict(CONTEXT)
    if not names_in_context:
        del ctx["strategies"], ctx["counters"]
    return {"context": ctx, "benchmarks": benches}


def retarget(doc, scale=1.0, **ctx):
    """doc as if run on another machine: context entries replaced (machine=,
    cpu=, host_id=, load_avg=...), every time (real_time, cpu_time and each
    ..._ns counter, the floor too) multiplied by scale. Returns a copy."""
    out = json.loads(json.dumps(doc))
    out["context"].update(ctx)
    for b in out["benchmarks"]:
        for k, v in list(b.items()):
            if isinstance(v, float) and (k in ("real_time", "cpu_time") or k.endswith("_ns")):
                b[k] = v * scale
    return out


def with_mutators(doc, mutators, workers, scale=1.0):
    """A copy of doc with, beside each collector benchmark of `workers` workers,
    the same run at /mutators:M (inserted after the placement, as the bench
    names it), its times (real_time, cpu_time, ..._ns) multiplied by scale."""
    out = json.loads(json.dumps(doc))
    more = []
    for b in out["benchmarks"]:
        if f"/workers:{workers}/" not in b["name"]:
            continue
        two = json.loads(json.dumps(b))
        for k in ("name", "run_name"):
            parts = two[k].split("/")
            two[k] = "/".join(parts[:5] + [f"mutators:{mutators}"] + parts[5:])
        for k, v in list(two.items()):
            if isinstance(v, float) and (k in ("real_time", "cpu_time", "ns_per_goroutine")
                                         or k.endswith("_ns")):
                two[k] = v * scale
        more.append(two)
    out["benchmarks"] += more
    return out


def slow_down(doc, name_part, factor):
    """A copy of doc whose benchmarks named with name_part take factor times as
    long (real_time, cpu_time and the phase times; not the floor, touch_ns)."""
    out = json.loads(json.dumps(doc))
    for b in out["benchmarks"]:
        if name_part in b["name"]:
            for k, v in list(b.items()):
                if isinstance(v, float) and (k in ("real_time", "cpu_time")
                                             or (k.endswith("_ns") and k != "touch_ns")):
                    b[k] = v * factor
    return out


def tighten(doc):
    """A copy of doc whose repetitions of each benchmark lie within +-0.1% of
    their median (real_time, cpu_time, touch_ns): a recording without noise."""
    out = json.loads(json.dumps(doc))
    by = {}
    for b in out["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred"):
            by.setdefault(b["run_name"], []).append(b)
    for runs in by.values():
        for k in ("real_time", "cpu_time", "touch_ns"):
            vals = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
            if len(vals) == len(runs) and vals:
                m = statistics.median(vals)
                for i, r in enumerate(runs):
                    r[k] = m * (1 + 0.001 * (i - len(runs) // 2) / max(1, len(runs)))
    return out


def write(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return path


# ---------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------

PYTHON = "/usr/bin/python3"  # Debian's, with numpy/scipy/matplotlib
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORTS = os.path.join(ROOT, "reports")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def run_tool(name, *args, env=None, timeout=300):
    """Runs reports/<name> with Debian's python; returns CompletedProcess (text)."""
    e = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    e.update(env or {})
    return subprocess.run([PYTHON, os.path.join(REPORTS, name)] + [str(a) for a in args],
                          capture_output=True, text=True, env=e, timeout=timeout)


def results_module():
    """stackscan_reports.results (reports/ is on PYTHONPATH: tests/reports/CMakeLists.txt)."""
    return importlib.import_module("stackscan_reports.results")


def import_tool(name):
    """The tool module stackscan_reports.<name>."""
    return importlib.import_module(f"stackscan_reports.{name}")
