"""Tests of reports/perfsummary and reports/perfrecord.

The parser is tested on committed `perf report --stdio` output
(fixtures/perf_report_*.txt, recorded on this VM with perf 6.1), and on a
profile recorded here when perf is permitted (skipped with a message if not).
"""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

import benchdata as bd

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 0.3: pass\n"


def fixture(name):
    return os.path.join(bd.FIXTURES, name)


class ParseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ps = bd.import_tool("perfsummary")

    def parse(self, name):
        with open(fixture(name)) as f:
            return self.ps.parse_report(f.read())

    def test_call_graph_output(self):
        s = self.parse("perf_report_dd_callgraph.txt")
        self.assertEqual(s.event, "cpu-clock")
        self.assertEqual(s.samples, 379)  # the header's "Samples: 379"
        self.assertEqual(len(s.rows), 48)  # call-graph lines are not rows
        top = s.rows[0]
        self.assertEqual((top.symbol, top.kernel, top.percent, top.samples),
                         ("do_syscall_64", True, 29.29, 111))
        self.assertEqual((s.rows[1].symbol, s.rows[1].kernel), ("__GI___libc_write", False))
        self.assertAlmostEqual(sum(r.percent for r in s.rows), 100.0, delta=0.5)

    def test_symbols_with_spaces(self):
        s = self.parse("perf_report_cxx_flat.txt")
        names = [r.symbol for r in s.rows]
        self.assertIn("std::__cxx11::moneypunct<char, false>::_M_initialize_moneypunct@plt",
                      names)
        self.assertEqual((s.rows[0].symbol, s.rows[0].samples), ("BM", 1286))

    def test_sorted_by_self_time(self):
        s = self.parse("perf_report_dd_callgraph.txt")
        pcts = [r.percent for r in s.rows]
        self.assertEqual(pcts, sorted(pcts, reverse=True))

    def test_without_samples_column(self):
        text = ("# Samples: 2K of event 'cpu-clock'\n#\n"
                "# Overhead  Symbol\n# ........  ......................\n#\n"
                "    60.00%  [.] scan_frames\n    40.00%  [k] clear_page_erms\n")
        s = self.ps.parse_report(text)
        self.assertIsNone(s.samples)
        self.assertEqual([(r.symbol, r.percent, r.samples) for r in s.rows],
                         [("scan_frames", 60.0, None), ("clear_page_erms", 40.0, None)])

    def test_markdown(self):
        s = self.parse("perf_report_dd_callgraph.txt")
        md = self.ps.markdown(s, 3).splitlines()
        self.assertEqual(md[0], "| # | symbol | self % | samples |")
        self.assertEqual(md[2], "| 1 | `do_syscall_64` (kernel) | 29.29 | 111 |")
        self.assertEqual(len(md), 2 + 3)
        odd = self.ps.Summary([self.ps.Row("a|b", False, 1.0, 1)])
        self.assertIn("`a\\|b`", self.ps.markdown(odd))

    def test_cli_on_fixture(self):
        r = bd.run_tool("perfsummary", fixture("perf_report_dd_callgraph.txt"), "-n", "5")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "cpu-clock, 379 samples; top 5 of 48 symbols by self time")
        self.assertEqual(len([ln for ln in lines if ln.startswith("| ")]), 1 + 5)

    def test_cli_bad_input(self):
        with tempfile.TemporaryDirectory() as tmp:
            junk = os.path.join(tmp, "junk.txt")
            with open(junk, "w") as f:
                f.write("not a profile\n")
            for path, problem in ((os.path.join(tmp, "nope.data"), "no such file"),
                                  (junk, "no samples")):
                r = bd.run_tool("perfsummary", path)
                self.assertEqual(r.returncode, 2)
                self.assertEqual(r.stderr, f"perfsummary: {path}: {problem}"
                                 + r.stderr.split(problem, 1)[1])
                self.assertEqual(r.stderr.count("\n"), 1)


class RecordTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test_perf-")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def test_record_and_summarize(self):
        data = os.path.join(self.dir, "tmp.data")
        r = bd.run_tool("perfrecord", data, "--", bd.PYTHON, "-c", BUSY)
        if r.returncode == 3:
            self.skipTest("perf is not permitted here: " + r.stderr.strip())
        self.assertEqual(r.returncode, 0, r.stderr)
        ps = bd.import_tool("perfsummary")
        s = ps.summarize(data)
        self.assertEqual(s.event, "cpu-clock")
        self.assertGreater(s.samples, 0)
        self.assertTrue(s.rows)
        pcts = [x.percent for x in s.rows]
        self.assertEqual(pcts, sorted(pcts, reverse=True))
        # Each row's percent is rounded to 0.01 by perf: the sum may exceed
        # 100 by half a unit per row.
        self.assertLessEqual(sum(pcts), 100 + 0.005 * len(pcts) + 1e-9)
        r = bd.run_tool("perfsummary", data, "-n", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len([ln for ln in r.stdout.splitlines() if ln.startswith("| ")]),
                         1 + min(4, len(s.rows)))

    def test_command_status_passes_through(self):
        r = bd.run_tool("perfrecord", os.path.join(self.dir, "x.data"), "--",
                        "/bin/sh", "-c", "exit 5")
        if r.returncode == 3:
            self.skipTest("perf is not permitted here: " + r.stderr.strip())
        self.assertEqual(r.returncode, 5)

    def test_no_perf_exits_3_without_running_the_command(self):
        marker = os.path.join(self.dir, "ran")
        r = bd.run_tool("perfrecord", os.path.join(self.dir, "x.data"), "--",
                        "/usr/bin/touch", marker, env={"PATH": self.dir})
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stderr, "perfrecord: no profile: perf not found on PATH\n")
        self.assertFalse(os.path.exists(marker))

    def fake_profile(self):
        data = os.path.join(self.dir, "fake.data")
        with open(data, "wb") as f:
            f.write(b"PERFILE2" + b"\0" * 64)
        return data

    def test_perfsummary_without_perf_exits_3(self):
        r = bd.run_tool("perfsummary", self.fake_profile(), env={"PATH": self.dir})
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stderr, "perfsummary: perf not found on PATH\n")

    def test_perfsummary_on_corrupt_profile_exits_3(self):
        if shutil.which("perf") is None:
            self.skipTest("perf is not installed")
        r = bd.run_tool("perfsummary", self.fake_profile())
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertTrue(r.stderr.startswith("perfsummary: perf report failed on "), r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1)

    def test_usage(self):
        self.assertEqual(bd.run_tool("perfrecord", "out.data").returncode, 2)
        self.assertEqual(bd.run_tool("perfrecord", "out.data", "true").returncode, 2)


def bench_or_skip(test):
    """$STACKSCAN_BENCH (set by tests/reports/CMakeLists.txt), or skip the test."""
    bench = os.environ.get("STACKSCAN_BENCH")
    if not bench or not os.access(bench, os.X_OK):
        test.skipTest("STACKSCAN_BENCH is not set to an executable stackscan-bench")
    return bench


TINY = ["--workloads=GoroutineIdle", "--strategies=frames-parallel", "--n=1000",
        "--benchmark_min_time=0.05"]


class GcOnlyTest(unittest.TestCase):
    """perfrecord --gc-only with the bench's control hook (harness/perfctl.c)."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test_perf-gc-")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def ref_symbols(self):
        lib = os.environ.get("STACKSCAN_REF_LIB")
        if not lib or shutil.which("nm") is None:
            self.skipTest("STACKSCAN_REF_LIB (ref's static library) or nm is missing")
        out = subprocess.run(["nm", "--defined-only", lib], capture_output=True, text=True).stdout
        return {ln.split()[-1] for ln in out.splitlines() if len(ln.split()) == 3}

    def test_profile_holds_the_collector(self):
        bench = bench_or_skip(self)
        data = os.path.join(self.dir, "gc.data")
        r = bd.run_tool("perfrecord", "--gc-only", data, "--", bench, *TINY)
        if r.returncode == 3:
            self.skipTest("perf is not permitted here: " + r.stderr.strip())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("perf control", r.stderr)  # the hook never gave up
        rows = [x for x in bd.import_tool("perfsummary").summarize(data).rows if not x.kernel]
        ref = self.ref_symbols()
        self.assertTrue(rows)
        # The top user-space entry is one of ref's own functions, not the
        # workload's wake-ups or the harness.
        self.assertIn(rows[0].symbol, ref, [x.symbol for x in rows[:5]])

    def test_no_ack_gives_up_in_one_line_and_runs_on(self):
        bench = bench_or_skip(self)
        ctl_r, ctl_w = os.pipe()
        ack_r, ack_w = os.pipe()  # nobody answers on ack_w
        env = dict(os.environ, STACKSCAN_PERF_CTL_FD=str(ctl_w), STACKSCAN_PERF_ACK_FD=str(ack_r))
        try:
            t0 = time.monotonic()
            r = subprocess.run([bench] + TINY, env=env, pass_fds=(ctl_w, ack_r),
                               capture_output=True, text=True, timeout=120)
        finally:
            for fd in (ctl_r, ctl_w, ack_r, ack_w):
                os.close(fd)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if "perf control" in ln]
        self.assertEqual(lines, ["stackscan-bench: perf control: enable: no ack from perf; "
                                 "profiling the rest unfiltered"])
        self.assertLess(time.monotonic() - t0, 60)

    def test_bad_descriptor_is_one_line(self):
        bench = bench_or_skip(self)
        env = dict(os.environ, STACKSCAN_PERF_CTL_FD="987", STACKSCAN_PERF_ACK_FD="988")
        r = subprocess.run([bench] + TINY, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("stackscan-bench: STACKSCAN_PERF_CTL_FD=987 is not an open file "
                      "descriptor; perf control off\n", r.stderr)


if __name__ == "__main__":
    unittest.main()
