"""results: load and validate stackscan-bench results (Google Benchmark JSON).

Shared by every tool of the package (report, compare, perfsummary). Everything
that reads an input file lives here, so every tool rejects bad input the same
way: a problem is raised as InputError(path, problem) and the tool prints
"<tool>: <path>: <problem>" on one line and exits with EXIT_BAD_INPUT.

Input: the JSON that stackscan-bench writes with --benchmark_out_format=json
(Google Benchmark 1.7). Keys relied on:

  context            optional object; its string entries are shown verbatim
                     (CONTEXT_KEYS first). Keys with a meaning here:
    strategies       comma-separated strategy names in the bench's own order
    counters         comma-separated names of the per-cycle counters
    exact_counters   those of them a comparison may demand equal
    phase_counters   the per-cycle phase times (stacked in the phase chart)
    pause_counters   the stop-the-world times: time to safepoint, the whole
                     pause, and their maxima (shown on their own)
    stop_counters    what the stop did, means per cycle (async_preempts:
                     goroutines stopped by preempt=async's signal)
    machine, cpu, host_id, hwloc_topology   which machine ran it (machine_of)
    load_avg         [1, 5, 15 minute] load when the run started
    scan_filter      the conservative scans' word filter, "avx2" or "scalar"
                     (compare says when a baseline ran the other one)
  benchmarks[]       non-empty list of objects, each with
    name             "Workload/strategy/n:N/workers:W/placement[/k:v...][/manual_time]"
                     for collector runs (k:v: further sweep dimensions, the
                     bench's order being mutators:M, preempt:P, mode:X,
                     reuse:R, each present only when not at its default:
                     no mode:X for stw); anything else is a micro benchmark
    run_name         the name shared by repetitions and their aggregates
                     (falls back to name)
    run_type         "iteration" (default when absent) or "aggregate"
    aggregate_name   mean / median / stddev / cv (aggregates only)
    real_time, cpu_time, time_unit (ns, us, ms or s; default ns)
    error_occurred, error_message     failed runs (their times are ignored)
    counters         any other top-level numeric key; taken as reported (no
                     unit conversion)

No strategy or counter name is written in this package: they come from the
context (strategies, counters) and, for results written before the bench
emitted those keys, from the benchmarks themselves (Names.of).

Statistic: the centre of a benchmark is the median over its iteration runs
(repetitions); when a file has aggregates only, the "median" aggregate, else
the "mean" aggregate. Bench.stat says which was used.
"""

import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass, field

EXIT_BAD_INPUT = 2
# The mode a name without mode:X ran in (the bench's default, never named).
STW_MODE = "stw"

# Context keys shown first, in this order (the rest follow sorted).
CONTEXT_KEYS = ("machine", "cpu", "virtual", "kernel", "hwloc_topology", "host_id",
                "ref_config", "stackmaps", "scan_filter", "compiler", "cflags", "git_rev",
                "host_name", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled", "library_build_type",
                "date", "executable")
# Context keys that are lists for the tools, not facts to print.
LIST_KEYS = ("strategies", "counters", "exact_counters", "phase_counters", "pause_counters",
             "stop_counters")
TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Name components Google Benchmark appends that are not part of our identity.
_GB_SUFFIXES = ("real_time", "manual_time", "process_time")
# Google Benchmark's own fields of a run: whatever else is numeric is a counter.
GB_FIELDS = frozenset({"name", "run_name", "run_type", "aggregate_name", "aggregate_unit",
                       "family_index", "per_family_instance_index", "repetitions",
                       "repetition_index", "threads", "iterations", "real_time",
                       "cpu_time", "time_unit", "error_occurred", "error_message", "label"})


class InputError(Exception):
    """A problem with one input file; str() is "<path>: <problem>"."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def die(tool, err):
    """Prints "<tool>: <err>" as one line on stderr and exits EXIT_BAD_INPUT."""
    msg = " ".join(str(err).split())
    print(f"{tool}: {msg}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------

def read_text(path):
    """Returns the file's text; InputError if missing, unreadable, empty or binary."""
    if not os.path.exists(path):
        raise InputError(path, "no such file")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, expected a file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror}") from None
    if not data.strip():
        raise InputError(path, "empty file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(path, "not JSON (not UTF-8 text)") from None


def load_json(path):
    """Parses a JSON file; InputError says empty / truncated / not JSON."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        if _truncated(text, e):
            raise InputError(path, f"truncated JSON (input ends inside the document, "
                                   f"{e.msg.lower()} at line {e.lineno})") from None
        raise InputError(path, f"not JSON ({e.msg} at line {e.lineno} column "
                               f"{e.colno})") from None


def _truncated(text, err):
    """True if the decode error is the input ending early (a prefix of JSON)."""
    rest = text[err.pos:].strip()
    # Python's decoder reports an unterminated string only at end of input.
    return (not rest or err.msg.startswith("Unterminated string")
            or any(lit.startswith(rest) for lit in ("true", "false", "null"))
            or re.fullmatch(r"[-+.eE0-9]+", rest) is not None)


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_entry(path, i, b):
    """Validates benchmarks[i]; raises InputError('wrong schema: ...')."""
    if not isinstance(b, dict):
        raise InputError(path, f"wrong schema: benchmarks[{i}] is not an object")
    name = b.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(path, f"wrong schema: benchmarks[{i}] has no \"name\" string")
    if b.get("error_occurred"):
        return
    for key in ("real_time", "cpu_time"):
        if not _number(b.get(key)):
            raise InputError(path, f"wrong schema: benchmark {name!r} has no numeric "
                                   f"\"{key}\"")
    if b.get("time_unit", "ns") not in TIME_UNIT_NS:
        raise InputError(path, f"wrong schema: benchmark {name!r} has unknown "
                               f"time_unit {b.get('time_unit')!r}")
    if b.get("run_type", "iteration") not in ("iteration", "aggregate"):
        raise InputError(path, f"wrong schema: benchmark {name!r} has unknown "
                               f"run_type {b.get('run_type')!r}")


def load_doc(path):
    """Loads and validates one Google Benchmark JSON file; returns the dict."""
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise InputError(path, f"wrong schema: top level is a {type(doc).__name__}, "
                               "expected an object with \"benchmarks\"")
    if "benchmarks" not in doc:
        raise InputError(path, "wrong schema: no \"benchmarks\" key "
                               "(not Google Benchmark JSON output?)")
    if not isinstance(doc["benchmarks"], list):
        raise InputError(path, "wrong schema: \"benchmarks\" is not a list")
    if not doc["benchmarks"]:
        raise InputError(path, "no benchmarks (\"benchmarks\" is empty)")
    if not isinstance(doc.get("context", {}), dict):
        raise InputError(path, "wrong schema: \"context\" is not an object")
    for i, b in enumerate(doc["benchmarks"]):
        _check_entry(path, i, b)
    return doc


# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------

def parse_name(name):
    """Splits "Workload/strategy/n:N/workers:W/placement[/k:v...]".

    Returns a dict with workload, strategy, n, workers, placement and dims
    (the other k:v parts as a sorted tuple of (k, v), () for names with
    every further dimension at its default), or None for a name that is not
    a collector benchmark (no n: and workers: parts). Google Benchmark's own
    suffixes (manual_time, real_time, ...) are ignored.
    """
    parts = name.split("/")
    if len(parts) < 4:
        return None
    params, plain = {}, []
    for p in parts[2:]:
        k, sep, v = p.partition(":")
        if sep:
            params[k] = v
        elif p not in _GB_SUFFIXES:
            plain.append(p)
    try:
        n, workers = int(params["n"]), int(params["workers"])
    except (KeyError, ValueError):
        return None
    dims = tuple(sorted((k, v) for k, v in params.items() if k not in ("n", "workers")))
    return {"workload": parts[0], "strategy": parts[1], "n": n, "workers": workers,
            "placement": plain[0] if plain else "-", "dims": dims}


@dataclass
class Bench:
    """All runs of one benchmark (one run_name), from one or more files."""
    name: str
    sources: list
    runs: list = field(default_factory=list)        # iteration entries
    aggregates: dict = field(default_factory=dict)  # aggregate_name -> entry
    error: str = None
    ident: dict = None                              # parse_name() result

    @property
    def is_gc(self):
        return self.ident is not None

    # The name's parts; only for collector benchmarks (is_gc).
    workload = property(lambda self: self.ident["workload"])
    strategy = property(lambda self: self.ident["strategy"])
    n = property(lambda self: self.ident["n"])
    workers = property(lambda self: self.ident["workers"])
    placement = property(lambda self: self.ident["placement"])

    dims = property(lambda self: self.ident["dims"])

    @property
    def mutators(self):
        """P: the name's mutators:M, 1 when absent (the default's names lack it)."""
        return int(dict(self.dims).get("mutators", 1))

    @property
    def mode(self):
        """The collector's mode: the name's mode:X, stw when absent."""
        return dict(self.dims).get("mode", STW_MODE)

    @property
    def group(self):
        """(n, workers, placement, dims): the benchmarks that share one seed table."""
        return (self.n, self.workers, self.placement, self.dims)

    @property
    def repetitions(self):
        return len(self.runs)

    @property
    def stat(self):
        """How center() summarises: 'median of R runs', 'median aggregate', ..."""
        if self.runs:
            return f"median of {len(self.runs)}" if len(self.runs) > 1 else "single run"
        for agg in ("median", "mean"):
            if agg in self.aggregates:
                return f"{agg} aggregate"
        return "no data"

    def samples(self, key="real_time"):
        """Per-repetition values of key (times in ns); empty if never measured."""
        return [value(r, key) for r in self.runs if value(r, key) is not None]

    def center(self, key="real_time"):
        """The median over repetitions (or an aggregate), or None."""
        xs = self.samples(key)
        if xs:
            return statistics.median(xs)
        for agg in ("median", "mean"):
            if agg in self.aggregates:
                return value(self.aggregates[agg], key)
        return None

    def counter_names(self):
        """Numeric keys other than Google Benchmark's own, in first-seen order."""
        seen = {}
        for r in self.runs + list(self.aggregates.values()):
            for k, v in r.items():
                if k not in GB_FIELDS and _number(v):
                    seen.setdefault(k, None)
        return list(seen)


def value(entry, key):
    """entry[key] as a float (times converted to ns), or None if absent."""
    v = entry.get(key)
    if not _number(v):
        return None
    if key in ("real_time", "cpu_time"):
        return float(v) * TIME_UNIT_NS[entry.get("time_unit", "ns")]
    return float(v)


def benches_of(doc, path, into=None):
    """Groups a validated doc's entries by run name into Bench objects.

    into: an existing {name: Bench} to merge into (runs of the same name in
    several files are pooled). Returns the dict, in first-seen order.
    """
    out = {} if into is None else into
    for e in doc["benchmarks"]:
        run_name = e.get("run_name") or e["name"]
        b = out.get(run_name)
        if b is None:
            b = out[run_name] = Bench(run_name, [], ident=parse_name(run_name))
        if path not in b.sources:
            b.sources.append(path)
        if e.get("error_occurred"):
            b.error = b.error or str(e.get("error_message") or "error_occurred")
        elif e.get("run_type", "iteration") == "aggregate":
            b.aggregates.setdefault(e.get("aggregate_name", "mean"), e)
        else:
            b.runs.append(e)
    return out


def load(paths):
    """Loads several result files. Returns ([(path, context)], [Bench]).

    Runs of one name in several files are pooled: callers that may get files
    from several machines split them with by_machine() first. Raises
    InputError on the first bad file, before anything is returned.
    """
    contexts, benches = [], {}
    for p in paths:
        doc = load_doc(p)
        contexts.append((p, doc.get("context", {})))
        benches_of(doc, p, benches)
    return contexts, list(benches.values())


def geomean(xs):
    """Geometric mean of the positive values, or None if there are none."""
    xs = [x for x in xs if x > 0]
    return statistics.geometric_mean(xs) if xs else None


def safe_filename(s):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "x"


# ---------------------------------------------------------------------------
# Names: strategies and counters, from the results themselves
# ---------------------------------------------------------------------------

def context_list(ctx, key):
    """A comma-separated context entry as a list ([] when absent)."""
    v = ctx.get(key)
    if not isinstance(v, str):
        return []
    return [x.strip() for x in v.split(",") if x.strip()]


def is_time_counter(name):
    """A counter in nanoseconds, by the bench's naming rule (..._ns, ns_...)."""
    return re.search(r"(^|_)ns(_|$)", name) is not None


def is_floor_counter(name):
    """The memory floors (touch_ns, touch1_ns): a time, but no part of a cycle."""
    return name.startswith("touch")


def is_pause_counter(name):
    """Stop-the-world times by the bench's names (ttsp_..., stw_...), for
    results whose context predates pause_counters."""
    return re.match(r"(ttsp|stw)_", name) is not None


def is_rate_counter(name):
    """A derived per-something value (ns_per_goroutine, stack_bytes_per_second)."""
    return "_per_" in name


@dataclass
class Names:
    """The strategy and counter names of a set of results.

    strategies  in the bench's order (context "strategies"), then any others
                seen in benchmark names, in first-seen order
    counters    the per-cycle counters (context "counters"; without it, every
                counter the collector benchmarks report)
    exact       counters that count work, so equal work must give equal
                values: context "exact_counters" (ref.h's table marks them;
                cache_hits is not, each worker having its own cache); without
                it, the per-cycle counters that are neither times nor rates by
                name and, without "counters" either, whose every reported
                value is an integer (rules out imbalance, ratios)
    phases      time counters of the cycle's parts, stacked in the phase
                chart: context "phase_counters"; without it, the per-cycle
                times except total_ns (their sum), the memory floors
                (touch_ns, touch1_ns) and the pause's times
    pauses      the stop-the-world times (context "pause_counters", without
                it the ttsp_/stw_ counters reported): not phases, since the
                whole pause holds every phase
    stops       counts of what the stop did (context "stop_counters"; none
                without it), shown with the pause
    """
    strategies: list
    counters: list
    exact: list
    phases: list
    pauses: list
    stops: list = field(default_factory=list)

    @classmethod
    def of(cls, contexts, benches):
        gc = [b for b in benches if b.is_gc]
        declared = list(dict.fromkeys(x for c in contexts for x in context_list(c, "strategies")))
        seen = list(dict.fromkeys(b.strategy for b in gc))
        strategies = [s for s in declared if s in seen] + [s for s in seen if s not in declared]
        listed = list(dict.fromkeys(x for c in contexts for x in context_list(c, "counters")))
        reported = list(dict.fromkeys(k for b in gc for k in b.counter_names()))
        counters = listed or reported
        work = [c for c in counters if not is_time_counter(c) and not is_rate_counter(c)]
        declared_exact = list(dict.fromkeys(
            x for c in contexts for x in context_list(c, "exact_counters")))
        if declared_exact:
            work = [c for c in counters if c in declared_exact]
        elif not listed:
            work = [c for c in work if all(_integral(b, c) for b in gc)]
        declared_phases = list(dict.fromkeys(
            x for c in contexts for x in context_list(c, "phase_counters")))
        phases = declared_phases or [
            c for c in listed + [r for r in reported if r not in listed]
            if is_time_counter(c) and not is_rate_counter(c) and c != "total_ns"
            and not is_floor_counter(c) and not is_pause_counter(c)
            and not re.search(r"_w\d+$", c)]
        pauses = list(dict.fromkeys(
            x for c in contexts for x in context_list(c, "pause_counters")))
        pauses = pauses or [r for r in reported if is_pause_counter(r)]
        stops = list(dict.fromkeys(x for c in contexts for x in context_list(c, "stop_counters")))
        return cls(strategies, counters, work, phases, pauses, stops)

    def reference(self):
        """The strategy others are held against: the bench's first one present."""
        return self.strategies[0] if self.strategies else None


def _integral(b, key):
    vals = [v for r in b.runs + list(b.aggregates.values()) if (v := value(r, key)) is not None]
    return all(v == int(v) for v in vals)


# ---------------------------------------------------------------------------
# Machines: results of different machines are never pooled
# ---------------------------------------------------------------------------

def machine_of(ctx):
    """What identifies the machine (and topology) a run came from.

    Results written before the bench recorded cpu and host_id fall back to
    the host name; a machine key alone is not enough (two VMs of one key
    are different hosts).
    """
    return (ctx.get("machine", "unknown"), ctx.get("cpu", ""),
            ctx.get("host_id", ctx.get("host_name", "")), ctx.get("hwloc_topology", ""))


@dataclass
class Machine:
    """The runs of one machine: label, its files' contexts, its benchmarks."""
    label: str
    contexts: list       # [(path, context)]
    benches: list

    @property
    def context(self):
        return self.contexts[0][1]


def by_machine(paths):
    """Loads files and groups them per machine_of(); [Machine] in input order.

    Files of one machine are pooled (their runs of one name form one
    benchmark); files of different machines never are. Labels are the
    machine keys, with a suffix when two machines share one.
    """
    groups = {}
    for p in paths:
        doc = load_doc(p)
        ctx = doc.get("context", {})
        g = groups.setdefault(machine_of(ctx), ([], {}))
        g[0].append((p, ctx))
        benches_of(doc, p, g[1])
    keys = [k[0] for k in groups]
    out = []
    for ident, (contexts, benches) in groups.items():
        label = ident[0]
        if keys.count(label) > 1:
            label += f" #{sum(1 for m in out if m.label.startswith(ident[0] + ' #')) + 1}"
        out.append(Machine(label, contexts, list(benches.values())))
    return out
