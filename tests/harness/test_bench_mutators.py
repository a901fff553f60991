#!/usr/bin/python3
"""test_bench_mutators: stackscan-bench end to end with several mutator threads.

Usage: test_bench_mutators.py STACKSCAN_BENCH [unittest args]

Runs the real binary tiny (n=100, a few cycles, --checkmark) and reads its
JSON: benchmark names gain /mutators:M only when M is not 1, STACKSCAN_MUTATORS
is the default of --mutators, the context lists the sweep's mutators and the
pause counters (never among the exact ones), every collector benchmark
reports ttsp_ns and stw_ns, and the counts that follow from construction hold:

  - GoroutineIdle collects from the main thread outside ref_run, where no
    goroutine runs: stacks_scanned is n (the readers) and ttsp_ns is 0, which
    ref reports for a cycle outside ref_run.
  - GoroutineSpin collects from a controller goroutine once a spinner runs on
    every other mutator thread: stacks_scanned is n + P (the readers, the
    P - 1 spinners stopped at a poll, the controller), spinners is P - 1.
    With P = 2, ttsp_ns > 0: the controller asks only after its spinner has
    entered its loop, whose thread ref counts as running until it stops at a
    poll, so the requester sleeps on the stop's condition variable at least
    once and reads CLOCK_MONOTONIC (ns resolution on Linux) after it is woken;
    every cycle's ttsp is positive, so their median is. With P = 1 nothing else
    runs: ttsp_ns is 0. No test here compares a time with a bound.
  - Per cycle stw >= ttsp (the pause holds the stop), so the medians and the
    maxima are ordered likewise.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

BENCH = None
N = 100
QUICK = ["--n=%d" % N, "--workers=1", "--strategies=frames-rootjobs", "--checkmark",
         "--benchmark_min_time=0.005", "--prefetch=8,3,8"]


def run(args, env_mutators=None, check=True):
    """Runs the bench; returns (CompletedProcess, parsed JSON or None)."""
    env = {k: v for k, v in os.environ.items() if k != "STACKSCAN_MUTATORS"}
    if env_mutators is not None:
        env["STACKSCAN_MUTATORS"] = env_mutators
    with tempfile.TemporaryDirectory(prefix="test_bench_mutators.") as d:
        out = os.path.join(d, "out.json")
        argv = [BENCH] + args
        if "--list" not in args:
            argv += [f"--benchmark_out={out}", "--benchmark_out_format=json"]
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=240)
        doc = None
        if os.path.exists(out):
            with open(out) as f:
                doc = json.load(f)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r, doc


def listed(args, env_mutators=None):
    r, _ = run(["--list", "--workloads=GoroutineIdle"] + args, env_mutators)
    return [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("  GoroutineIdle/")]


def gc_runs(doc):
    """{name without /manual_time: benchmark entry} of the iteration runs."""
    out = {}
    for b in doc["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            out[b["name"].removesuffix("/manual_time")] = b
    return out


class NamesTest(unittest.TestCase):
    def test_mutators_named_only_when_not_one(self):
        self.assertEqual(listed(["--mutators=1,2", "--n=10", "--workers=1",
                                 "--strategies=frames-serial"]),
                         ["GoroutineIdle/frames-serial/n:10/workers:1/compact",
                          "GoroutineIdle/frames-serial/n:10/workers:1/compact/mutators:2"])

    def test_env_is_the_default_and_a_list_wins(self):
        base = ["--n=10", "--workers=1", "--strategies=frames-serial"]
        self.assertEqual(listed(base, env_mutators="2"),
                         ["GoroutineIdle/frames-serial/n:10/workers:1/compact/mutators:2"])
        self.assertEqual(listed(base + ["--mutators=1"], env_mutators="2"),
                         ["GoroutineIdle/frames-serial/n:10/workers:1/compact"])


class RunTest(unittest.TestCase):
    doc = None

    @classmethod
    def setUpClass(cls):
        _, cls.doc = run(QUICK + ["--workloads=GoroutineIdle,GoroutineSpin", "--mutators=1,2"])
        cls.runs = gc_runs(cls.doc)

    def get(self, workload, mutators):
        name = f"{workload}/frames-rootjobs/n:{N}/workers:1/compact"
        if mutators != 1:
            name += f"/mutators:{mutators}"
        self.assertIn(name, self.runs)
        b = self.runs[name]
        self.assertFalse(b.get("error_occurred"), b.get("error_message"))
        return b

    def test_context(self):
        ctx = self.doc["context"]
        self.assertEqual(ctx["mutators"], "1,2")
        self.assertEqual(ctx["pause_counters"].split(","),
                         ["ttsp_ns", "ttsp_max_ns", "stw_ns", "stw_max_ns"])
        self.assertEqual(ctx["phase_counters"].split(","), ["roots_ns", "mark_ns", "sweep_ns"])
        exact = ctx["exact_counters"].split(",")
        for c in ctx["pause_counters"].split(","):
            self.assertNotIn(c, exact)
            self.assertNotIn(c, ctx["counters"].split(","))

    def test_every_run_reports_the_pause(self):
        for wl in ("GoroutineIdle", "GoroutineSpin"):
            for p in (1, 2):
                b = self.get(wl, p)
                self.assertEqual(b["mutators"], p)
                self.assertGreater(b["stw_ns"], 0)
                self.assertGreaterEqual(b["stw_ns"], b["ttsp_ns"])
                self.assertGreaterEqual(b["stw_max_ns"], b["ttsp_max_ns"])
                self.assertGreaterEqual(b["ttsp_max_ns"], b["ttsp_ns"])

    def test_idle_collects_with_nothing_running(self):
        for p in (1, 2):
            b = self.get("GoroutineIdle", p)
            self.assertEqual(b["stacks_scanned"], N)
            self.assertEqual(b["ttsp_ns"], 0)
            self.assertEqual(b["ttsp_max_ns"], 0)

    def test_spin_stops_running_spinners(self):
        one, two = self.get("GoroutineSpin", 1), self.get("GoroutineSpin", 2)
        self.assertEqual((one["spinners"], two["spinners"]), (0, 1))
        self.assertEqual(one["stacks_scanned"], N + 1)  # and the controller
        self.assertEqual(two["stacks_scanned"], N + 2)  # and a spinner, stopped at a poll
        self.assertEqual(one["ttsp_ns"], 0)
        self.assertGreater(two["ttsp_ns"], 0)
        self.assertGreater(two["poll_interval_ns"], 0)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BENCH = sys.argv.pop(1)
    unittest.main()
