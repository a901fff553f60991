#!/usr/bin/python3
"""test_bench_mutators: stackscan-bench end to end with several mutator threads.

Usage: test_bench_mutators.py [--tsan] STACKSCAN_BENCH [unittest args]

Runs the real binary tiny (n=100, a few cycles, --checkmark) and reads its
JSON: benchmark names gain /mutators:M only when M is not 1, STACKSCAN_MUTATORS
is the default of --mutators, the context lists the sweep's mutators and the
pause counters (never among the exact ones) and names the word filter this
CPU's conservative scans run, every collector benchmark
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
  - Those runs are cooperative: no stop signals anyone, so async_preempts
    (the mean per cycle of the goroutines a stop stopped by signal) is 0.
  - GoroutineSpin with --poll-every=0 --preempt=async at P = 2: its spinner
    never reaches a safepoint (its loop has no ref_poll), so every cycle's
    stop can only have stopped it by preempt=async's signal: async_preempts
    is 1 (the one spinner) in every cycle, its mean 1; it never polls, so
    poll_interval_ns is 0; it is scanned stopped inside the signal handler
    (n + 2 stacks), with --checkmark verifying the cycle. In a ThreadSanitizer
    build (--tsan) ref_init refuses async: the run must fail (exit 1) with
    ref_init's message in its output and in the JSON's error_message.
  - GoroutineLatency at P = 2, in every mode: round trips timed outside
    the collections and overlapping one (rtt_count, rtt_gc_count > 0).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

BENCH = None
TSAN = False  # a ThreadSanitizer build: ref_init refuses preempt=async
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
        # The conservative scans' word filter: AVX2 exactly on an x86-64 CPU
        # whose flags (the kernel's, which include the OS's YMM support) list it.
        avx2 = ctx["machine"].startswith("x86_64") and any(
            ln.startswith("flags") and "avx2" in ln.split() for ln in open("/proc/cpuinfo"))
        self.assertEqual(ctx["scan_filter"], "avx2" if avx2 else "scalar")
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
                self.assertEqual(b["async_preempts"], 0)  # cooperative: nobody signalled

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


ASYNC = QUICK + ["--workloads=GoroutineSpin", "--mutators=2", "--poll-every=0",
                 "--preempt=async"]
ASYNC_NAME = f"GoroutineSpin/frames-rootjobs/n:{N}/workers:1/compact/mutators:2/preempt:async"
TSAN_REFUSAL = "preempt=async is not available under ThreadSanitizer"


class AsyncPreemptTest(unittest.TestCase):
    # TSAN is set by __main__ after the class is made: skip at run time.
    def test_a_spinner_that_never_polls_is_stopped_by_signal(self):
        if TSAN:
            self.skipTest("ref_init refuses preempt=async under ThreadSanitizer")
        _, doc = run(ASYNC)
        ctx = doc["context"]
        self.assertEqual(ctx["preempt"], "async")
        self.assertEqual(ctx["stop_counters"], "async_preempts")
        self.assertNotIn("async_preempts", ctx["exact_counters"].split(","))
        runs = gc_runs(doc)
        self.assertEqual(list(runs), [ASYNC_NAME])
        b = runs[ASYNC_NAME]
        self.assertFalse(b.get("error_occurred"), b.get("error_message"))
        self.assertEqual(b["spinners"], 1)
        self.assertEqual(b["poll_interval_ns"], 0)   # never polls
        self.assertEqual(b["stacks_scanned"], N + 2)
        self.assertGreater(b["async_preempts"], 0)
        self.assertEqual(b["async_preempts"], 1)     # the spinner, in every cycle
        self.assertGreater(b["ttsp_ns"], 0)

    def test_tsan_build_refuses_async(self):
        if not TSAN:
            self.skipTest("only a ThreadSanitizer build refuses preempt=async")
        r, doc = run(ASYNC, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(TSAN_REFUSAL, r.stdout + r.stderr)
        b = gc_runs(doc)[ASYNC_NAME]
        self.assertTrue(b.get("error_occurred"))
        self.assertIn("ref_init: " + TSAN_REFUSAL, b["error_message"])


RTT = ["rtt_p50_ns", "rtt_p99_ns", "rtt_max_ns", "rtt_count",
       "rtt_gc_p50_ns", "rtt_gc_p99_ns", "rtt_gc_max_ns", "rtt_gc_count"]


class LatencyTest(unittest.TestCase):
    """GoroutineLatency at P = 2 in every mode reports its round trips: some
    timed outside the collections and some overlapping one (ref_gc_seq saw
    the timed collection: the pair runs on through a concurrent mark, and an
    stw pause stops the pinger inside a round trip, its only safepoints), and
    each side's p50 <= p99 <= max. At P = 1 the plan refuses it (exit 2)."""

    def test_every_mode(self):
        _, doc = run(QUICK + ["--workloads=GoroutineLatency", "--mutators=2",
                              "--mode=stw,concurrent-hybrid,concurrent-rescan"])
        runs = gc_runs(doc)
        for mode in ("", "/mode:concurrent-hybrid", "/mode:concurrent-rescan"):
            name = f"GoroutineLatency/frames-rootjobs/n:{N}/workers:1/compact/mutators:2{mode}"
            self.assertIn(name, runs)
            b = runs[name]
            self.assertFalse(b.get("error_occurred"), b.get("error_message"))
            for c in RTT:
                self.assertIn(c, b, name)
            self.assertGreater(b["rtt_count"], 0, name)
            self.assertGreater(b["rtt_gc_count"], 0, name)
            for side in ("rtt", "rtt_gc"):
                self.assertLessEqual(b[f"{side}_p50_ns"], b[f"{side}_p99_ns"], name)
                self.assertLessEqual(b[f"{side}_p99_ns"], b[f"{side}_max_ns"], name)

    def test_one_mutator_is_refused(self):
        r, _ = run(["--list", "--workloads=GoroutineLatency", "--mutators=1"], check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("GoroutineLatency needs 2 or more mutators", r.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--tsan":
        TSAN = bool(sys.argv.pop(1))
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BENCH = sys.argv.pop(1)
    unittest.main()
