"""sslib: load and validate stackscan-bench results (Google Benchmark JSON).

Shared by the report tools (report, compare, perfsummary). Everything that
reads an input file lives here, so every tool rejects bad input the same way:
a problem is raised as InputError(path, problem) and the tool prints
"<tool>: <path>: <problem>" on one line and exits with EXIT_BAD_INPUT.

Input: the JSON that stackscan-bench writes with --benchmark_out_format=json
(Google Benchmark 1.7). Keys relied on:

  context            optional object; its string entries are shown verbatim
                     (CONTEXT_KEYS first: machine, hwloc_topology, ...)
  benchmarks[]       non-empty list of objects, each with
    name             "Workload/strategy/n:N/workers:W/placement[/manual_time]"
                     for collector runs; anything else is a micro benchmark
    run_name         the name shared by repetitions and their aggregates
                     (falls back to name)
    run_type         "iteration" (default when absent) or "aggregate"
    aggregate_name   mean / median / stddev / cv (aggregates only)
    real_time, cpu_time, time_unit (ns, us, ms or s; default ns)
    error_occurred, error_message     failed runs (their times are ignored)
    counters         any other top-level numeric key (COUNTERS and per-worker
                     busy_ns_wK); counters are taken as reported (no unit
                     conversion)

Statistic: the centre of a benchmark is the median over its iteration runs
(repetitions); when a file has aggregates only, the "median" aggregate, else
the "mean" aggregate. Bench.stat says which was used.
"""

import importlib.machinery
import importlib.util
import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass, field

EXIT_BAD_INPUT = 2

STRATEGIES = ("conservative-serial", "frames-serial", "frames-parallel",
              "conservative-parallel", "conservative-rootjobs", "frames-rootjobs")
BASELINE = "conservative-serial"
# Counters that depend only on the workload and the collector, never on timing.
DETERMINISTIC = ("words", "frames", "lookups", "stack_bytes")
PHASES = ("roots_ns", "mark_ns", "sweep_ns")
COUNTERS = ("ns_per_goroutine", "stack_bytes", "stack_bytes_per_second", "words",
            "frames", "lookups", "roots_ns", "mark_ns", "sweep_ns",
            "objects_marked", "imbalance")
CONTEXT_KEYS = ("machine", "hwloc_topology", "ref_config", "stackmaps", "compiler",
                "cflags", "git_rev", "host_name", "num_cpus", "mhz_per_cpu",
                "cpu_scaling_enabled", "library_build_type", "date", "executable")
TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Name components Google Benchmark appends that are not part of our identity.
_GB_SUFFIXES = ("real_time", "manual_time", "process_time")
_NOT_TIMING_KEYS = {"name", "run_name", "run_type", "aggregate_name", "aggregate_unit",
                    "family_index", "per_family_instance_index", "repetitions",
                    "repetition_index", "threads", "iterations", "real_time",
                    "cpu_time", "time_unit", "error_occurred", "error_message", "label"}


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


def import_tool(name):
    """Imports the extension-less tool script reports/<name> as a module."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    loader = importlib.machinery.SourceFileLoader(f"stackscan_{name}", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


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
    """Splits "Workload/strategy/n:N/workers:W/placement[/...]".

    Returns a dict with workload, strategy, n, workers, placement, or None for
    a name that is not a collector benchmark (no n: and workers: parts).
    Google Benchmark's own suffixes (manual_time, real_time, ...) are ignored.
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
    return {"workload": parts[0], "strategy": parts[1], "n": n, "workers": workers,
            "placement": plain[0] if plain else "-"}


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

    @property
    def group(self):
        """(n, workers, placement): the benchmarks that share one seed table."""
        return (self.n, self.workers, self.placement)

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
                if k not in _NOT_TIMING_KEYS and _number(v):
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

    Raises InputError on the first bad file, before anything is returned.
    """
    contexts, benches = [], {}
    for p in paths:
        doc = load_doc(p)
        contexts.append((p, doc.get("context", {})))
        benches_of(doc, p, benches)
    return contexts, list(benches.values())


def strategy_order(names):
    """Known strategies in canonical order, then unknown ones sorted."""
    names = set(names)
    return [s for s in STRATEGIES if s in names] + sorted(names - set(STRATEGIES))


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def safe_filename(s):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "x"
