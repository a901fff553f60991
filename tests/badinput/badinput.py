#!/usr/bin/python3
"""badinput: the bad-input catalogue. Every documented way to call the tools
wrongly must be refused cleanly.

Usage: badinput.py --bench STACKSCAN_BENCH --reports REPORTS_DIR [-k SUBSTRING]

Runs stackscan-bench with every flag given bad values, reports/compare and
reports/report (with /usr/bin/python3) on missing, empty, truncated, not-JSON
and wrong-schema files, and ci/bench and ci/fuzz with bad arguments. Each case must:
  - exit with status 2 (a signal or a core dump fails the case),
  - print exactly one line on stderr,
  - leave no output behind: stackscan-bench runs get --benchmark_out=TMP/out.json,
    report runs get -o TMP/rep; neither may exist afterwards.
Usage errors of the Python tools (missing arguments, a bad option value)
come from argparse, which prints its usage lines before the one
"TOOL: error: ..." line; only that line is counted for them.
A few control cases (good input) must succeed, so that a refusal is the bad
value's doing. Prints every case and its result; the last line is
"badinput: N passed, M failed"; exit status 1 on any failure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

PYTHON = "/usr/bin/python3"
TIMEOUT = 120  # seconds per case: a guard, not a measurement

# Flags that keep an accidentally accepted bad value from running a long
# sweep: no benchmark matches, so the run ends at once (with exit 1, which
# fails the case).
QUICK = ["--workloads=GoroutineIdle", "--n=10", "--workers=1", "--benchmark_filter=^$"]

BENCH_CASES = [
    # (case name, bad arguments)
    ("unknown workload", ["--workloads=NoSuch"]),
    ("empty workloads", ["--workloads="]),
    ("workload given twice", ["--workloads=GoroutineIdle,GoroutineIdle"]),
    ("unknown strategy", ["--strategies=nosuch"]),
    ("strategy given twice", ["--strategies=frames-serial,frames-serial"]),
    ("strategies trailing comma", ["--strategies=frames-serial,"]),
    ("n=0", ["--n=0"]),
    ("n=-1", ["--n=-1"]),
    ("n -1 (separate value)", ["--n", "-1"]),
    ("n=abc", ["--n=abc"]),
    ("n=1,,2", ["--n=1,,2"]),
    ("n=1, (trailing comma)", ["--n=1,"]),
    ("n=,1 (leading comma)", ["--n=,1"]),
    ("n=1.5", ["--n=1.5"]),
    ("n=1k5", ["--n=1k5"]),
    ("n=10000001 (over the maximum)", ["--n=10000001"]),
    ("n=99999999999999999999999 (overflow)", ["--n=99999999999999999999999"]),
    ("n=2,2 (duplicate)", ["--n=2,2"]),
    ("n without value", ["--n"]),
    ("n= (empty value)", ["--n="]),
    ("workers=0", ["--workers=0"]),
    ("workers=x", ["--workers=x"]),
    ("workers=257", ["--workers=257"]),
    ("workers=1,,2", ["--workers=1,,2"]),
    ("mutators=0", ["--mutators=0"]),
    ("mutators=65 (over REF_MAX_MUTATORS)", ["--mutators=65"]),
    ("mutators=x", ["--mutators=x"]),
    ("mutators=1,,2", ["--mutators=1,,2"]),
    ("mutators=2,2 (duplicate)", ["--mutators=2,2"]),
    ("mutators without value", ["--mutators"]),
    ("GoroutineLatency at the default 1 mutator", ["--workloads=GoroutineLatency"]),
    ("GoroutineLatency with mutators=2,1", ["--workloads=GoroutineLatency", "--mutators=2,1"]),
    # 0 is "never poll": only preempt=async stops such a spinner; with a
    # cooperative run in the sweep it would hang at its first collection.
    ("poll-every=0 (never polling, cooperative by default)", ["--poll-every=0"]),
    ("poll-every=0 with preempt=cooperative", ["--poll-every=0", "--preempt=cooperative"]),
    ("poll-every=0 with preempt=async,cooperative", ["--preempt=async,cooperative",
                                                     "--poll-every=0"]),
    ("poll-every=0, preempt=async then cooperative", ["--preempt=async", "--poll-every=0",
                                                      "--preempt=cooperative"]),
    ("preempt=signal", ["--preempt=signal"]),
    ("preempt=async,async (duplicate)", ["--preempt=async,async"]),
    ("preempt=async, (trailing comma)", ["--preempt=async,"]),
    ("preempt without value", ["--preempt"]),
    ("mode=concurrent", ["--mode=concurrent"]),
    ("mode=stw,stw (duplicate)", ["--mode=stw,stw"]),
    ("mode without value", ["--mode"]),
    ("poll-every=-1", ["--poll-every=-1"]),
    ("poll-every=2000000000 (over the workloads' 1000000000)", ["--poll-every=2000000000"]),
    ("poll-every=fast", ["--poll-every=fast"]),
    ("placement=diagonal", ["--placement=diagonal"]),
    ("stackmaps=fast", ["--stackmaps=fast"]),
    ("format=xml", ["--format=xml"]),
    ("depth=-1", ["--depth=-1"]),
    ("depth=10001", ["--depth=10001"]),
    # The workloads' limits (workloads.h): the bench once took more and then
    # failed every benchmark with exit 1.
    ("depth=5000 (over the workloads' 4096)", ["--depth=5000"]),
    ("frame-bytes=-1", ["--frame-bytes=-1"]),
    ("frame-bytes=2M", ["--frame-bytes=2M"]),
    ("frame-bytes=20K (over the workloads' 16K)", ["--frame-bytes=20K"]),
    ("frame-bytes=1Q", ["--frame-bytes=1Q"]),
    ("slots=65", ["--slots=65"]),
    ("slots=0 (under the workloads' 1)", ["--slots=0"]),
    ("slots=x", ["--slots=x"]),
    ("heap-per-g=-5", ["--heap-per-g=-5"]),
    ("heap-per-g=2G", ["--heap-per-g=2G"]),
    ("heap-per-g=2M (over the workloads' 1M)", ["--heap-per-g=2M"]),
    ("topology=pack:x", ["--topology=pack:x"]),
    ("topology=nonsense", ["--topology=nonsense words"]),
    ("seed=abc", ["--seed=abc"]),
    ("seed=-1", ["--seed=-1"]),
    ("seed=18446744073709551616 (overflow)", ["--seed=18446744073709551616"]),
    ("max-mem=0", ["--max-mem=0"]),
    ("gc-percent=-5", ["--gc-percent=-5"]),
    ("wake=nan", ["--wake=nan"]),
    ("trace= (empty)", ["--trace="]),
    ("trace into a missing directory", ["--trace=/nonexistent/dir/t.json"]),
    ("gc-percent=none", ["--gc-percent=none"]),
    ("max-mem=lots", ["--max-mem=lots"]),
    ("max-mem=2P (over the maximum)", ["--max-mem=2P"]),
    ("stack-size=12K (under ref's minimum)", ["--stack-size=12K"]),
    ("stack-size=20000 (not whole pages)", ["--stack-size=20000"]),
    ("list=yes (takes no value)", ["--list=yes"]),
    ("checkmark=1 (takes no value)", ["--checkmark=1"]),
    ("unknown flag", ["--no-such-flag"]),
    ("unknown flag with value", ["--no-such-flag=1"]),
    ("single-dash flag", ["-x"]),
    ("positional argument", ["extra"]),
    ("unknown benchmark flag", ["--benchmark_nosuch=1"]),
    ("unknown benchmark flag with a newline", ["--benchmark_nosuch\nx"]),
    ("benchmark_format=xml", ["--benchmark_format=xml"]),
    ("benchmark_out_format=xml", ["--benchmark_out_format=xml"]),
    ("benchmark_time_unit=weeks", ["--benchmark_time_unit=weeks"]),
    ("benchmark_min_time=abc", ["--benchmark_min_time=abc"]),
    ("benchmark_repetitions=x", ["--benchmark_repetitions=x"]),
    ("benchmark_min_time=-1", ["--benchmark_min_time=-1"]),
    ("benchmark_repetitions=-3", ["--benchmark_repetitions=-3"]),
    ("benchmark_filter=( (bad regex)", ["--benchmark_filter=("]),
    ("benchmark_filter with stacked repetitions", ["--benchmark_filter=s" + "+" * 40]),
    ("benchmark_out in a missing directory", ["--benchmark_out=/nonexistent/dir/out.json"]),
]


# ---------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------

class Catalogue:
    def __init__(self, only):
        self.only = only
        self.passed = 0
        self.failed = []

    def run(self, name, argv, leftovers, expect=2, usage=False, stdin=subprocess.DEVNULL,
            env=None):
        """Runs argv; checks exit `expect` and, for expect == 2, one stderr line
        and that no path in leftovers exists afterwards. usage=True: an
        argparse usage error, which prints the usage before its one error line
        ("TOOL: error: ..."); those usage lines are allowed. env: variables
        added to the environment."""
        if self.only and self.only not in name:
            return
        for p in leftovers:  # each case starts without the output it must not leave
            if os.path.isdir(p):
                os.rmdir(p)
            elif os.path.exists(p):
                os.unlink(p)
        problems = []
        try:
            r = subprocess.run(argv, stdin=stdin, capture_output=True, timeout=TIMEOUT,
                               env=dict(os.environ, **env) if env else None)
            rc, err = r.returncode, r.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired as e:
            rc, err = None, (e.stderr or b"").decode("utf-8", "replace")
            problems.append(f"timed out after {TIMEOUT} s")
        lines = err.splitlines()
        if usage and lines and lines[0].startswith("usage:"):
            lines = [ln for ln in lines if ": error: " in ln] or lines
        if rc is not None and rc < 0:
            problems.append(f"killed by signal {-rc}")
        elif rc is not None and rc != expect:
            problems.append(f"exit status {rc}, expected {expect}")
        if expect == 2 and len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected 1")
        if expect == 2 and lines and not lines[0].strip():
            problems.append("the stderr line is blank")
        for p in leftovers if expect == 2 else ():
            if os.path.exists(p):
                problems.append(f"left {p} behind")
        shown = lines[0] if len(lines) == 1 else " | ".join(lines[:4])
        if problems:
            self.failed.append(name)
            print(f"FAIL  {name}: {'; '.join(problems)}\n        stderr: {shown[:300]}")
        else:
            self.passed += 1
            print(f"ok    {name}: {shown[:200] if expect == 2 else 'exit %d' % rc}")


# ---------------------------------------------------------------------------
# Input files for the report tools
# ---------------------------------------------------------------------------

def good_doc(workloads=("GoroutineIdle",)):
    """A small valid stackscan-bench JSON document (Google Benchmark 1.7 layout)."""
    benches = []
    for wl in workloads:
        for s in ("conservative-serial", "frames-serial"):
            name = f"{wl}/{s}/n:1000/workers:1/compact/manual_time"
            for rep in range(2):
                benches.append({
                    "name": name, "run_name": name, "run_type": "iteration",
                    "repetitions": 2, "repetition_index": rep, "threads": 1,
                    "iterations": 5, "real_time": 1.0e6 + rep, "cpu_time": 1.0e6,
                    "time_unit": "ns", "ns_per_goroutine": 1000.0, "words": 4096.0,
                    "frames": 1000.0, "lookups": 1000.0, "stack_bytes": 65536.0,
                    "roots_ns": 1e4, "mark_ns": 9e5, "sweep_ns": 9e4})
    return {"context": {"machine": "x86_64-2pu", "git_rev": "badinput"}, "benchmarks": benches}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def bad_files(d):
    """[(case name, path)]: every kind of unusable input file."""
    good = json.dumps(good_doc(), indent=1)
    one = good_doc()["benchmarks"][0]
    files = [
        ("missing file", os.path.join(d, "no-such-file.json")),
        ("empty file", write(os.path.join(d, "empty.json"), b"")),
        ("whitespace-only file", write(os.path.join(d, "blank.json"), b" \n\t\n")),
        ("truncated JSON", write(os.path.join(d, "truncated.json"), good[: len(good) // 2])),
        ("truncated after the first byte", write(os.path.join(d, "brace.json"), "{")),
        ("not JSON (text)", write(os.path.join(d, "text.json"), "hello, world\n")),
        ("not JSON (binary)", write(os.path.join(d, "binary.json"), bytes(range(256)))),
        ("JSON with trailing garbage", write(os.path.join(d, "trailing.json"), good + "\n}x")),
        ("a directory", os.path.join(d, "adir")),
        ("top level is a list", write(os.path.join(d, "list.json"), "[]")),
        ("top level is a number", write(os.path.join(d, "number.json"), "42")),
        ("no benchmarks key", write(os.path.join(d, "nokey.json"), '{"context": {}}')),
        ("benchmarks is not a list", write(os.path.join(d, "notlist.json"), '{"benchmarks": "x"}')),
        ("benchmarks is empty", write(os.path.join(d, "nobench.json"), '{"benchmarks": []}')),
        ("benchmark is not an object", write(os.path.join(d, "notobj.json"), '{"benchmarks": [1]}')),
        ("benchmark without name", write(os.path.join(d, "noname.json"),
                                         json.dumps({"benchmarks": [{"real_time": 1.0}]}))),
        ("real_time is a string", write(os.path.join(d, "strtime.json"),
                                        json.dumps({"benchmarks": [dict(one, real_time="fast")]}))),
        ("unknown time unit", write(os.path.join(d, "unit.json"),
                                    json.dumps({"benchmarks": [dict(one, time_unit="weeks")]}))),
        ("context is not an object", write(os.path.join(d, "ctx.json"),
                                           json.dumps(dict(good_doc(), context=[1, 2])))),
    ]
    os.makedirs(os.path.join(d, "adir"), exist_ok=True)
    return files


# ---------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------

def bench_cases(cat, bench, tmp):
    out = os.path.join(tmp, "out.json")
    cat.run("bench control: --list", [bench, "--list", "--workloads=GoroutineIdle"], [], expect=0)
    for name, args in BENCH_CASES:
        # The bad flag goes last: it overrides QUICK and --benchmark_out, and
        # a flag missing its value has nothing after it to swallow.
        argv = [bench] + QUICK + [f"--benchmark_out={out}"] + args
        cat.run(f"stackscan-bench {name}", argv, [out])
    # STACKSCAN_MUTATORS is --mutators's default (as GOMAXPROCS is ref's):
    # a bad value is refused where it is used, and a given list wins over it.
    for value in ("abc", "0", "65"):
        cat.run(f"stackscan-bench STACKSCAN_MUTATORS={value} as the default",
                [bench] + QUICK + [f"--benchmark_out={out}"], [out],
                env={"STACKSCAN_MUTATORS": value})
    cat.run("bench control: --mutators=2 wins over STACKSCAN_MUTATORS=abc",
            [bench, "--list", "--mutators=2", "--workloads=GoroutineIdle"], [], expect=0,
            env={"STACKSCAN_MUTATORS": "abc"})
    cat.run("bench control: GoroutineLatency with --mutators=2",
            [bench, "--list", "--mutators=2", "--workloads=GoroutineLatency"], [], expect=0)
    cat.run("bench control: --poll-every=0 with --preempt=async",
            [bench, "--list", "--poll-every=0", "--preempt=async", "--workloads=GoroutineSpin"],
            [], expect=0)
    cat.run("stackscan-bench max-mem too small for n", [bench, "--workloads=GoroutineIdle",
            "--n=1000000", "--max-mem=64M", f"--benchmark_out={out}"], [out])
    # Not a usage error: the run starts and the workload refuses stacks too
    # small for its 64 frames, so that benchmark fails and the exit is 1.
    cat.run("stackscan-bench --stack-size too small for GoroutineDeep", [bench,
            "--workloads=GoroutineDeep", "--stack-size=16K", "--n=10", "--workers=1",
            "--strategies=frames-serial", "--benchmark_min_time=0.001"], [], expect=1)
    cat.run("stackscan-bench stacks over the address space", [bench, "--workloads=GoroutineIdle",
            "--n=100k", "--stack-size=1G", "--max-mem=1P", f"--benchmark_out={out}"], [out])


# The ci/ scripts refuse bad arguments before they bootstrap or build.
SCRIPT_CASES = [
    ("ci/bench --reps 0", ["ci/bench", "--reps", "0"]),
    ("ci/bench --reps without value", ["ci/bench", "--reps"]),
    ("ci/bench --threshold=abc", ["ci/bench", "--threshold=abc"]),
    ("ci/bench --threshold without value", ["ci/bench", "--threshold"]),
    ("ci/bench unknown argument", ["ci/bench", "--no-such-flag"]),
    ("ci/fuzz --seconds 0", ["ci/fuzz", "--seconds", "0"]),
    ("ci/fuzz --seconds without value", ["ci/fuzz", "--seconds"]),
    ("ci/fuzz unknown target", ["ci/fuzz", "fuzz_no_such"]),
    ("ci/fuzz unknown argument", ["ci/fuzz", "--no-such-flag"]),
]


def script_cases(cat, root):
    for name, argv in SCRIPT_CASES:
        cat.run(name, [os.path.join(root, argv[0])] + argv[1:], [])


def compare_cases(cat, reports, tmp):
    tool = [PYTHON, os.path.join(reports, "compare")]
    good = write(os.path.join(tmp, "good.json"), json.dumps(good_doc()))
    cat.run("compare control: good vs good", tool + [good, good], [], expect=0)
    for name, path in bad_files(tmp):
        cat.run(f"compare base: {name}", tool + [path, good], [])
        cat.run(f"compare new: {name}", tool + [good, path], [])
    other = write(os.path.join(tmp, "other.json"), json.dumps(good_doc(("GoroutineSelect",))))
    cat.run("compare: different benchmark names", tool + [good, other], [])
    cat.run("compare: no arguments", tool, [], usage=True)
    cat.run("compare: one argument", tool + [good], [], usage=True)
    cat.run("compare: --threshold=abc", tool + [good, good, "--threshold=abc"], [], usage=True)
    cat.run("compare: unknown flag", tool + [good, good, "--no-such-flag"], [], usage=True)


def report_cases(cat, reports, tmp):
    tool = [PYTHON, os.path.join(reports, "report")]
    good = write(os.path.join(tmp, "good.json"), json.dumps(good_doc()))
    rep = os.path.join(tmp, "rep")
    cat.run("report control: good input", tool + [good, "-o", rep], [], expect=0)
    if os.path.isdir(rep):
        for root, dirs, files in os.walk(rep, topdown=False):
            for f in files:
                os.unlink(os.path.join(root, f))
            for d in dirs:
                os.rmdir(os.path.join(root, d))
        os.rmdir(rep)
    for name, path in bad_files(tmp):
        cat.run(f"report: {name}", tool + [path, "-o", rep], [rep])
        cat.run(f"report second file: {name}", tool + [good, path, "-o", rep], [rep])
    cat.run("report: --go missing file", tool + [good, "-o", rep, "--go",
            os.path.join(tmp, "no-such-go.txt")], [rep])
    cat.run("report: --go without results", tool + [good, "-o", rep, "--go",
            write(os.path.join(tmp, "go.txt"), "PASS\nok stackscan 1.0s\n")], [rep])
    cat.run("report: --perf missing path", tool + [good, "-o", rep, "--perf",
            os.path.join(tmp, "no-such-perf")], [rep])
    cat.run("report: -o is a file", tool + [good, "-o", good], [])
    cat.run("report: no -o", tool + [good], [rep], usage=True)
    cat.run("report: no input", tool + ["-o", rep], [rep], usage=True)
    cat.run("report: --perf-top=x", tool + [good, "-o", rep, "--perf-top=x"], [rep], usage=True)


def main():
    ap = argparse.ArgumentParser(description="the bad-input catalogue")
    ap.add_argument("--bench", required=True, help="the stackscan-bench binary")
    ap.add_argument("--reports", required=True, help="the reports/ directory")
    ap.add_argument("-k", dest="only", default="", help="run only cases whose name contains this")
    args = ap.parse_args()
    cat = Catalogue(args.only)
    env_keep = os.environ.copy()
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="badinput.") as tmp:
        bench_cases(cat, args.bench, tmp)
        compare_cases(cat, args.reports, tmp)
        report_cases(cat, args.reports, tmp)
        script_cases(cat, os.path.dirname(os.path.abspath(args.reports)))
    os.environ.clear()
    os.environ.update(env_keep)
    for name in cat.failed:
        print(f"badinput: FAILED {name}")
    print(f"badinput: {cat.passed} passed, {len(cat.failed)} failed")
    return 1 if cat.failed else 0


if __name__ == "__main__":
    sys.exit(main())
