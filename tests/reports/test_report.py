"""Tests of reports/report: rendering, reproducibility, bad input, atomic output.

Hook for a real run: if $STACKSCAN_BENCH names an executable stackscan-bench,
RealBenchTest runs it tiny ($STACKSCAN_BENCH_ARGS, default below) and renders
its JSON; otherwise that test is skipped.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest
from unittest import mock
import xml.etree.ElementTree as ET

import benchdata as bd

DEFAULT_BENCH_ARGS = "--benchmark_filter=n:1000/ --benchmark_min_time=0.001"


class ReportCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test_report-")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def doc(self, name="run.json", **kw):
        return bd.write(self.path(name), bd.make_doc(**kw))

    def report(self, *args):
        return bd.run_tool("report", *args)

    def read(self, *names):
        with open(self.path(*names)) as f:
            return f.read()

    def leftovers(self):
        """Temporary output directories left in the parent of the outputs."""
        return [f for f in os.listdir(self.dir) if ".tmp-" in f]

    def assert_renders(self, out):
        """report.md exists and every figure it links is a well-formed SVG."""
        md = self.read(out, "report.md")
        figs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
        for f in figs:
            root = ET.parse(self.path(out, f)).getroot()
            self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg", f)
        return md, figs


class RenderTest(ReportCase):
    def test_renders_markdown_and_svgs(self):
        r = self.report(self.doc(failed=True), "-o", self.path("out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        md, figs = self.assert_renders("out")
        for wl in bd.WORKLOADS:
            self.assertIn(f"scaling-workers-{wl}.svg", figs)
            self.assertIn(f"scaling-n-{wl}.svg", figs)
        self.assertIn("phases-n1000-w2-compact.svg", figs)
        self.assertIn("imbalance-n10000-w2-compact.svg", figs)
        self.assertEqual(sorted(os.listdir(self.path("out"))), sorted(figs + ["report.md"]))
        self.assertEqual(self.leftovers(), [])

    def test_contents(self):
        self.report(self.doc(failed=True), "-o", self.path("out"))
        md = self.read("out", "report.md")
        # Context: machine class, topology and configuration, verbatim.
        for key in ("machine", "hwloc_topology", "ref_config", "compiler", "cflags", "git_rev"):
            self.assertIn(f"| `{key}` | {md_cell(bd.CONTEXT[key])} |", md)
        # Seed table: one per (n, workers, placement), ratio to conservative-serial.
        self.assertIn("### n = 1,000, workers = 2, placement = compact", md)
        self.assertIn("| benchmark | conservative-serial | frames-serial | frames-parallel "
                      "| conservative-rootjobs |", md)
        self.assertRegex(md, r"\| GoroutineSelect \| [\d,]+ \| [\d,]+ \(2\.7\dx\) \|")
        self.assertIn("median", md)
        self.assertIn("perf was not run", md)
        self.assertIn("| `micro/GoroutineSwitch` |", md)
        self.assertIn("## Failed benchmarks", md)
        self.assertIn("checkmark: object 0x7f00 unmarked", md)
        self.assertIn("| GoroutineSelect | 1,000 | frames-serial | 512,000 | 24,015 |", md)
        self.assertNotIn("Counters differ", md)

    def test_median_of_repetitions_not_aggregates(self):
        d = bd.make_doc(reps=3, ns=(1000,), workers=(1,), workloads=("W",),
                        strategies=("conservative-serial",), micro=False)
        runs = [b for b in d["benchmarks"] if b["run_type"] == "iteration"]
        for b, t in zip(runs, (100e6, 200e6, 900e6)):
            b["real_time"] = t
        for b in d["benchmarks"]:
            if b["run_type"] == "aggregate":
                b["real_time"] = 777e6
        self.report(bd.write(self.path("m.json"), d), "-o", self.path("out"))
        md = self.read("out", "report.md")
        self.assertIn("| W | 200,000,000 |", md)
        self.assertIn("median of 3", md)

    def test_memory_floor_table(self):
        d = bd.make_doc(reps=3, ns=(1000,), workers=(1,), workloads=("W",),
                        strategies=("conservative-serial", "frames-serial"), micro=False)
        for b in d["benchmarks"]:
            if b["run_type"] == "iteration":
                b["real_time"] = 12e6 if "conservative" in b["name"] else 6e6
                b["touch_ns"] = 8e6
        self.report(bd.write(self.path("f.json"), d), "-o", self.path("out"))
        md = self.read("out", "report.md")
        self.assertIn("Against the memory floor", md)
        self.assertIn("| W | 1.50 (8.00 ms) | 0.75 (8.00 ms) |", md)
        for b in d["benchmarks"]:
            b["touch_ns"] = 20e3
        self.report(bd.write(self.path("small.json"), d), "-o", self.path("small"))
        self.assertIn("(20 µs)", self.read("small", "report.md"))
        # Results from before the counter existed: no such table.
        self.report(self.doc("old.json", floor=False), "-o", self.path("old"))
        self.assertNotIn("Against the memory floor", self.read("old", "report.md"))

    def test_reproducible(self):
        doc = self.doc()
        self.report(doc, "-o", self.path("a"))
        self.report(doc, "-o", self.path("b"))
        names = sorted(os.listdir(self.path("a")))
        self.assertEqual(names, sorted(os.listdir(self.path("b"))))
        for f in names:
            self.assertEqual(self.read("a", f), self.read("b", f), f)
            self.assertNotIn("<dc:date>", self.read("a", f))

    def test_scaling_sentence(self):
        self.report(self.doc(), "-o", self.path("out"))
        md = self.read("out", "report.md")
        # benchdata: the parallel strategies halve with 2 workers, serial ones do not.
        self.assertIn("`frames-parallel` at n = 10,000: speed-up 2.0", md)
        self.assertRegex(md, r"`frames-parallel` at n = 10,000: [^\n]*\(\d+% of linear\): "
                             r"near-linear\. Over the memory floor")
        self.assertRegex(md, r"`conservative-serial` at n = 10,000: speed-up 1\.0\dx [^\n]*"
                             r"not near-linear")

    def test_single_configuration_has_no_scaling_plots(self):
        doc = self.doc(ns=(1000,), workers=(1,))
        self.assertEqual(self.report(doc, "-o", self.path("out")).returncode, 0)
        md, figs = self.assert_renders("out")
        self.assertEqual([f for f in figs if f.startswith("scaling")], [])
        self.assertIn("only one value measured", md)

    def test_micro_only(self):
        d = bd.make_doc(reps=2)
        d["benchmarks"] = [b for b in d["benchmarks"] if b["name"].startswith("micro/")]
        r = self.report(bd.write(self.path("micro.json"), d), "-o", self.path("out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        md = self.read("out", "report.md")
        self.assertIn("No collector benchmarks", md)
        self.assertIn("| `micro/GoroutineSwitch` | 41.5 |", md)  # median of 41.5, 41.6: 41.55

    def test_several_inputs_of_one_machine(self):
        a = self.doc("a.json", workers=(1,))
        d = bd.make_doc(workers=(2,), seed=5)
        d["context"]["git_rev"] = "4567def"
        b = bd.write(self.path("b.json"), d)
        self.assertEqual(self.report(a, b, "-o", self.path("out")).returncode, 0)
        md = self.read("out", "report.md")
        self.assertIn(f"| key | `{a}` | `{b}` |", md)
        self.assertIn("| `git_rev` | 0123abc | 4567def |", md)
        self.assertIn("workers = 1", md)
        self.assertIn("workers = 2", md)
        self.assertIn("1 benchmarks appear in several inputs of one machine", md)  # the micro
        self.assertNotIn("## Machines", md)

    def test_go_peer_column(self):
        go = self.path("go.txt")
        with open(go, "w") as f:
            f.write("goos: linux\ngoarch: amd64\npkg: runtime\n"
                    "BenchmarkGoroutineSelect-2   \t      10\t 123456789 ns/op\n"
                    "BenchmarkGoroutineSelect-2   \t      10\t 123456791 ns/op\n"
                    "BenchmarkGoroutineSelect-2   \t      10\t 999999999 ns/op\n"
                    "BenchmarkGoroutineBlocking/n=10000 \t 5 \t 2000000000 ns/op\n"
                    "PASS\nok  \truntime\t12.3s\n")
        doc = bd.write(self.path("run.json"), bd.with_mutators(bd.make_doc(), 2, 2))
        r = self.report(doc, "-o", self.path("out"), "--go", go)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = self.read("out", "report.md")
        self.assertIn("| Go |", md)
        rows = [ln for ln in md.splitlines()
                if ln.startswith("| GoroutineSelect | 1,000 | 2 | compact mutators:2 |")]
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0].endswith("| 123,456.8 |"), rows[0])  # median / n
        rows = [ln for ln in md.splitlines()
                if ln.startswith("| GoroutineBlocking | 10,000 | 1 | compact |")]
        self.assertTrue(rows[0].endswith("| 200,000.0 |"), rows[0])  # n from the name
        self.assertIn("| BenchmarkGoroutineSelect | 1,000 | 2 | 123,456,791 |", md)
        # The seed table has Go beside ours, with the ratio to conservative-serial.
        w2 = seed_table(md, "n = 1,000, workers = 2, placement = compact, mutators = 2")
        self.assertIn("| Go (GOMAXPROCS=2) |", w2)
        row = next(ln for ln in w2.splitlines() if ln.startswith("| GoroutineSelect |"))
        self.assertRegex(row, r"\| 123,456,791 \(1\.2\dx\) \|$")
        # No Go run with GOMAXPROCS=1 at n=1000: the like-for-like table's cell
        # is empty, never GOMAXPROCS=2's; the mutators:1 table of 2 workers has none.
        w1 = seed_table(md, "n = 1,000, workers = 1, placement = compact")
        self.assertEqual(table_row(w1, "GoroutineSelect")[-1], "–")
        self.assertIn("No Go result at GOMAXPROCS = 1, n = 1,000 for GoroutineSelect", w1)
        self.assertNotIn("Go (GOMAXPROCS",
                         seed_table(md, "n = 1,000, workers = 2, placement = compact"))

    def test_go_column_is_like_for_like(self):
        """Go at GOMAXPROCS = P stands beside ours at mutators = workers = P only:
        GOMAXPROCS=2 beside mutators:2 (never the mutators:1 table of 2 workers),
        GOMAXPROCS=1 beside mutators = workers = 1."""
        md = self.mutators_report("goos: linux\npkg: runtime\n"
                                  "BenchmarkGoroutineSelect     \t 200 \t 3000000 ns/op\n"
                                  "BenchmarkGoroutineSelect-2   \t 100 \t 7000000 ns/op\n"
                                  "BenchmarkGoroutineBlocking   \t 200 \t 4000000 ns/op\n"
                                  "BenchmarkGoroutineBlocking-2 \t 100 \t 9000000 ns/op\nPASS\n")
        self.assertIn("here at GOMAXPROCS = 1, 2, n = 1,000", md)
        self.assertIn("GOMAXPROCS = 2 beside mutators = 2, workers = 2", md)
        for title, procs, ns in (("workers = 2, placement = compact, mutators = 2", 2,
                                  {"GoroutineSelect": 7e6, "GoroutineBlocking": 9e6}),
                                 ("workers = 1, placement = compact", 1,
                                  {"GoroutineSelect": 3e6, "GoroutineBlocking": 4e6})):
            t = seed_table(md, "n = 1,000, " + title)
            self.assertIn(f"| Go (GOMAXPROCS={procs}) |", t)
            self.assertNotIn("No Go", t)
            for wl, go_ns in ns.items():
                cells = table_row(t, wl)
                base = int(cells[1].replace(",", ""))
                self.assertEqual(cells[-1], f"{go_ns:,.0f} ({go_ns / base:.2f}x)", (title, wl))
        # Go's GOMAXPROCS=2 against our mutators:1 run with 2 workers would be a
        # wrong match: that table has no Go column and says why.
        t = seed_table(md, "n = 1,000, workers = 2, placement = compact")
        self.assertNotIn("Go (GOMAXPROCS", t)
        self.assertNotIn("7,000,000", t)
        self.assertIn("No Go column: this table has mutators = 1, workers = 2; Go at "
                      "GOMAXPROCS = P is compared only with mutators = workers = P.", t)
        # ns per goroutine: the same matching, row by row.
        self.assertEqual(table_row(md, "GoroutineSelect", "1,000", "2", "compact mutators:2")[-1],
                         "7,000.0")
        self.assertEqual(table_row(md, "GoroutineSelect", "1,000", "2", "compact")[-1], "–")
        self.assertEqual(table_row(md, "GoroutineSelect", "1,000", "1", "compact")[-1],
                         "3,000.0")
        # The Go results say what they were compared with.
        go_sec = md.split("### Go peer results")[1]
        self.assertEqual(table_row(go_sec, "BenchmarkGoroutineSelect", "1,000", "2")[-1],
                         "mutators = workers = 2: conservative-serial, frames-serial, "
                         "frames-parallel, conservative-rootjobs")

    def test_missing_gomaxprocs_2_leaves_the_cell_empty(self):
        """Go without a GOMAXPROCS=2 result for a workload: the mutators:2 table's
        Go cell is empty with a note, not Go's GOMAXPROCS=1 number."""
        md = self.mutators_report("BenchmarkGoroutineSelect     \t 200 \t 3000000 ns/op\n"
                                  "BenchmarkGoroutineSelect-2   \t 100 \t 7000000 ns/op\n"
                                  "BenchmarkGoroutineBlocking   \t 200 \t 4000000 ns/op\n")
        t = seed_table(md, "n = 1,000, workers = 2, placement = compact, mutators = 2")
        self.assertIn("| Go (GOMAXPROCS=2) |", t)
        self.assertEqual(table_row(t, "GoroutineBlocking")[-1], "–")
        self.assertNotIn("4,000,000", t)
        self.assertIn("No Go result at GOMAXPROCS = 2, n = 1,000 for GoroutineBlocking (Go ran "
                      "it at GOMAXPROCS = 1): its Go cell is empty, not matched to another "
                      "GOMAXPROCS.", t)
        self.assertRegex(table_row(t, "GoroutineSelect")[-1], r"^7,000,000 \(\d\.\d\dx\)$")
        self.assertEqual(table_row(md, "GoroutineBlocking", "1,000", "2", "compact mutators:2")[-1],
                         "–")
        # GOMAXPROCS=1 only: every cell of the mutators:2 table is empty, with the note.
        md = self.mutators_report("BenchmarkGoroutineSelect     \t 200 \t 3000000 ns/op\n"
                                  "BenchmarkGoroutineBlocking   \t 200 \t 4000000 ns/op\n",
                                  "1")
        t = seed_table(md, "n = 1,000, workers = 2, placement = compact, mutators = 2")
        self.assertEqual([table_row(t, wl)[-1] for wl in ("GoroutineSelect", "GoroutineBlocking")],
                         ["–", "–"])
        self.assertIn("No Go result at GOMAXPROCS = 2, n = 1,000 for GoroutineSelect (Go ran it "
                      "at GOMAXPROCS = 1), GoroutineBlocking (Go ran it at GOMAXPROCS = 1): their "
                      "Go cells are empty", t)
        go_sec = md.split("### Go peer results")[1]
        self.assertIn("| 1 | mutators = workers = 1: ", go_sec)

    def test_go_result_without_a_run_of_ours(self):
        go = self.text("go.txt", "BenchmarkGoroutineSelect-2   \t 100 \t 7000000 ns/op\n")
        r = self.report(self.doc(ns=(1000,), workers=(2,)), "-o", self.path("out"), "--go", go)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = self.read("out", "report.md")
        self.assertNotIn("| Go (GOMAXPROCS", md)
        self.assertIn("| nothing (no run of ours at mutators = workers = 2, n = 1,000) |", md)

    def text(self, name, content):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(content)
        return p

    def mutators_report(self, go_text, tag=""):
        """report.md of benchdata's n=1000 run, W=1 and 2, with its W=2 runs
        again at mutators:2 taking 1.3x as long (a match to the wrong table
        shows in the ratio), and Go's results go_text."""
        doc = bd.with_mutators(bd.make_doc(ns=(1000,), reps=3), 2, 2, scale=1.3)
        run = bd.write(self.path(f"run{tag}.json"), doc)
        go = self.text(f"go{tag}.txt", go_text)
        r = self.report(run, "-o", self.path(f"out{tag}"), "--go", go)
        self.assertEqual(r.returncode, 0, r.stderr)
        return self.read(f"out{tag}", "report.md")

    def test_perf_tables(self):
        fixture = os.path.join(bd.FIXTURES, "perf_report_cxx_flat.txt")
        prof = self.path("frames-parallel.txt")
        shutil.copy(fixture, prof)
        r = self.report(self.doc(), "-o", self.path("out"), "--perf", prof, "--perf-top", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        md = self.read("out", "report.md")
        self.assertIn(f"### frames-parallel: whole process (`{prof}`)", md)
        self.assertIn("| 1 | `BM` | 97.50 | 1286 |", md)
        self.assertIn("| 3 |", md)
        self.assertNotIn("| 4 |", md.split("### frames-parallel")[1].split("##")[0])

    def test_collector_profile_comes_first(self):
        os.mkdir(self.path("perf"))
        for name, fixture in (("frames-serial.data.txt", "perf_report_cxx_flat.txt"),
                              ("frames-serial.gc.txt", "perf_report_dd_callgraph.txt"),
                              ("conservative-serial.txt", "perf_report_cxx_flat.txt")):
            shutil.copy(os.path.join(bd.FIXTURES, fixture), self.path("perf", name))
        files = [self.path("perf", f) for f in sorted(os.listdir(self.path("perf")))]
        r = self.report(self.doc(), "-o", self.path("out"), "--perf", *files)
        self.assertEqual(r.returncode, 0, r.stderr)
        heads = [ln for ln in self.read("out", "report.md").splitlines()
                 if ln.startswith("### ") and ": " in ln and "`" in ln]
        self.assertEqual([h.split(" (`")[0] for h in heads],
                         ["### conservative-serial: whole process",
                          "### frames-serial: inside collections",
                          "### frames-serial: whole process"])

    def test_collector_profile_lists_user_space_and_the_kernels_share(self):
        """Inside collections the table is the collector's own functions; the
        kernel's samples are one line (the fixture's top row is the kernel's
        do_syscall_64, 29.29%)."""
        os.mkdir(self.path("perf"))
        shutil.copy(os.path.join(bd.FIXTURES, "perf_report_dd_callgraph.txt"),
                    self.path("perf", "frames-serial.gc.txt"))
        r = self.report(self.doc(), "-o", self.path("out"), "--perf",
                        self.path("perf", "frames-serial.gc.txt"))
        self.assertEqual(r.returncode, 0, r.stderr)
        sec = self.read("out", "report.md").split("### frames-serial: inside collections")[1]
        sec = sec.split("\n## ")[0]
        self.assertRegex(sec, r"The kernel: \d+\.\d\d% of the samples, in \d+ symbols \(the "
                              r"largest `do_syscall_64`, 29\.29%\), left out of the table\.")
        rows = [ln for ln in sec.splitlines() if ln.startswith("| ") and not ln.startswith("| #")]
        self.assertTrue(rows)
        self.assertFalse([ln for ln in rows if "(kernel)" in ln])
        self.assertIn("user-space symbols by self time", sec)

    def test_perf_unavailable_says_why(self):
        os.mkdir(self.path("perf"))
        with open(self.path("perf", "unavailable.txt"), "w") as f:
            f.write("perf record is not permitted or failed: Access to performance monitoring "
                    "is restricted\n")
        r = self.report(self.doc(), "-o", self.path("out"), "--perf", self.path("perf"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("perf was not available: perf record is not permitted or failed: Access "
                      "to performance monitoring is restricted.\n", self.read("out", "report.md"))

    def test_perf_directory_without_profiles(self):
        os.mkdir(self.path("perf"))
        r = self.report(self.doc(), "-o", self.path("out"), "--perf", self.path("perf"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("perf was not available", self.read("out", "report.md"))


class MutatorsTest(ReportCase):
    """Runs at several mutators (names /mutators:M when M != 1) are configurations
    of their own, and the pause (ttsp, stw) has a section of its own."""

    def doc_with_mutators(self):
        d = bd.make_doc(reps=2, workloads=("GoroutineSpin",), ns=(1000,), workers=(2,),
                        strategies=("conservative-serial", "frames-serial"), micro=False)
        d["context"].update(phase_counters="roots_ns,mark_ns,sweep_ns",
                            pause_counters="ttsp_ns,ttsp_max_ns,stw_ns,stw_max_ns",
                            stop_counters="async_preempts",
                            exact_counters="stack_bytes,words,frames")
        more = []
        for b in d["benchmarks"]:
            b.update(ttsp_ns=0.0, ttsp_max_ns=0.0, stw_ns=50e3, stw_max_ns=400e3,
                     touch1_ns=1e6, spinners=0.0, poll_interval_ns=980.0, async_preempts=0.0)
            two = dict(b)
            for k in ("name", "run_name"):
                two[k] = b[k].replace("/compact/", "/compact/mutators:2/")
            # A spinner's stack more to scan: the work differs, and must not be
            # reported as counters that differ across workers or placements.
            two.update(words=b["words"] + 64, ttsp_ns=5e3, ttsp_max_ns=120e3, stw_ns=90e3,
                       spinners=1.0)
            more.append(two)
            # A spinner that never polls, stopped by preempt=async's signal.
            sig = dict(two)
            for k in ("name", "run_name"):
                sig[k] = two[k].replace("/mutators:2/", "/mutators:2/preempt:async/")
            sig.update(ttsp_ns=30e3, poll_interval_ns=0.0, async_preempts=1.0)
            more.append(sig)
        d["benchmarks"] += more
        return bd.write(self.path("m.json"), d)

    def test_configuration_and_pause_section(self):
        r = self.report(self.doc_with_mutators(), "-o", self.path("out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        md, figs = self.assert_renders("out")
        self.assertIn("### n = 1,000, workers = 2, placement = compact\n", md)
        self.assertIn("### n = 1,000, workers = 2, placement = compact, mutators = 2\n", md)
        self.assertIn("phases-n1000-w2-compact.svg", figs)
        self.assertIn("phases-n1000-w2-compact-mutators2.svg", figs)
        # The phases are the context's: no floor, no pause among them.
        self.assertIn("Cells: roots / mark / sweep in ms", md)
        pause = md.split("## Pause and time to safepoint")[1].split("## Deterministic")[0]
        self.assertIn("Cells: ttsp / ttsp_max / stw / stw_max in µs", pause)
        self.assertIn("| GoroutineSpin (0 spinners, poll 0.98 µs) | 0.0 / 0.0 / 50.0 / 400.0 |",
                      pause)
        self.assertIn("| GoroutineSpin (1 spinner, poll 0.98 µs) | 5.0 / 120.0 / 90.0 / 400.0 |",
                      pause)
        # The stop counter where it is not 0, after the times.
        self.assertIn("### n = 1,000, workers = 2, placement = compact, mutators = 2, "
                      "preempt = async\n", pause)
        self.assertIn("| GoroutineSpin (1 spinner, never polls) | 30.0 / 120.0 / 90.0 / 400.0; "
                      "async_preempts 1.00 |", pause)
        self.assertIn("the stop's counters (`async_preempts`), means per cycle", pause)
        self.assertNotIn("async_preempts 0.00", pause)
        self.assertNotIn("Counters differ", md)
        self.assertIn("| GoroutineSpin | 1,000 | conservative-serial mutators:2 |", md)
        self.assertNotIn("ttsp", md.split("## Deterministic counters")[1])

    def test_no_pause_section_without_the_counters(self):
        self.report(self.doc(), "-o", self.path("out"))
        self.assertNotIn("## Pause and time to safepoint", self.read("out", "report.md"))


class ConcurrentTest(ReportCase):
    """Runs in the concurrent modes (/mode:X after /mutators:M) get a section of
    their own: per mode, the counters present, and the termination pause's
    slope per goroutine beside stw's."""

    # GoroutineLatency's and the runtime's newer counters: rendered when present.
    OPTIONAL = dict(ttsp1_ns=2e3, suspend_max_ns=7e3, suspend_p99_ns=6e3, mmu_1ms=0.75,
                    overshoot_bytes=4096.0, rtt_p50_ns=1e3, rtt_p99_ns=9e3, rtt_max_ns=20e3,
                    rtt_gc_p50_ns=3e3, rtt_gc_p99_ns=30e3, rtt_gc_max_ns=90e3, rtt_count=5000.0,
                    rtt_gc_count=700.0)

    def doc_with_modes(self, optional=True):
        d = bd.make_doc(reps=3, workloads=("GoroutineIdle",), ns=(10000, 100000), workers=(2,),
                        strategies=("frames-rootjobs",), micro=False)
        d["context"].update(mode="stw,concurrent-rescan,concurrent-hybrid",
                            phase_counters="roots_ns,mark_ns,sweep_ns",
                            pause_counters="ttsp_ns,ttsp_max_ns,stw_ns,stw_max_ns")
        more = []
        for b in d["benchmarks"]:
            n = int(re.search(r"/n:(\d+)/", b["name"]).group(1))
            for k in ("name", "run_name"):
                b[k] = b[k].replace("/compact/", "/compact/mutators:2/")
            b.update(ttsp_ns=1e3, stw_ns=50.0 * n + 1e3)
            for mode, stw in (("concurrent-rescan", 40.0 * n + 5e3), ("concurrent-hybrid", 25e3)):
                c = dict(b)
                for k in ("name", "run_name"):
                    c[k] = b[k].replace("/mutators:2/", f"/mutators:2/mode:{mode}/")
                c.update(stw_ns=stw, pause1_ns=8e3, pause_total_ns=stw + 8e3, pause_max_ns=stw,
                         mark_ns=3e6, assist_ns=1e5, stacks_bg=n - 1.0, stacks_self=1.0,
                         stacks_pause=float(n if "rescan" in mode else 0), barrier_shades=12.0,
                         rescan_bytes=float(416 * n if "rescan" in mode else 0))
                if optional and "hybrid" in mode:
                    c.update(self.OPTIONAL)
                more.append(c)
        d["benchmarks"] += more
        return bd.write(self.path("c.json"), d)

    def section(self, md):
        return md.split("## Concurrent marking")[1].split("## Deterministic")[0]

    def table_lines(self, text):
        return "\n".join(line for line in text.splitlines() if line.startswith("|"))

    def test_concurrent_section(self):
        r = self.report(self.doc_with_modes(), "-o", self.path("out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        md, _ = self.assert_renders("out")
        self.assertIn("### n = 10,000, workers = 2, placement = compact, "
                      "mode = concurrent-rescan, mutators = 2\n", md)
        sec = self.section(md)
        rescan = sec.split("\n### concurrent-rescan\n")[1].split("\n### concurrent-hybrid\n")[0]
        hybrid = sec.split("\n### concurrent-hybrid\n")[1].split("### Termination")[0]
        self.assertIn("| benchmark | n | strategy | workers | further | pause1 | stw | ttsp | "
                      "pause_total | pause_max | mark | assist |", rescan)
        self.assertIn("| GoroutineIdle | 100,000 | frames-rootjobs | 2 | mutators:2 | 8.0 | "
                      "4,005.0 | 1.0 | 4,013.0 | 4,005.0 | 3,000.0 | 100.0 |", rescan)
        self.assertIn("| GoroutineIdle | 10,000 | frames-rootjobs | 2 | mutators:2 | 9,999 | 1 | "
                      "10,000 | 4,160,000 | 12 |", rescan)
        # Counters a mode's runs lack are left out silently: no column, no table.
        for name in ("ttsp1", "suspend_max", "mmu_1ms", "overshoot_bytes", "rtt_p50"):
            self.assertNotIn(f" {name} |", self.table_lines(rescan))
        self.assertNotIn("round trips", rescan)
        self.assertIn("| pause1 | ttsp1 | stw | ttsp | pause_total | pause_max | suspend_max | "
                      "suspend_p99 | mark | assist |", hybrid)
        self.assertIn("| 8.0 | 2.0 | 25.0 | 1.0 | 33.0 | 25.0 | 7.0 | 6.0 | 3,000.0 | 100.0 |",
                      hybrid)
        self.assertIn("| barrier_shades | overshoot_bytes | mmu_1ms |", hybrid)
        self.assertIn("| 12 | 4,096 | 0.75 |", hybrid)
        self.assertIn("#### concurrent-hybrid: goroutine round trips (µs; counts)", hybrid)
        self.assertIn("| rtt_p50 | rtt_p99 | rtt_max | rtt_gc_p50 | rtt_gc_p99 | rtt_gc_max | "
                      "rtt_count | rtt_gc_count |", hybrid)
        self.assertIn("| 1.0 | 9.0 | 20.0 | 3.0 | 30.0 | 90.0 | 5,000 | 700 |", hybrid)
        # The slopes: stw_ns = 50 n + 1000, rescan's 40 n + 5000, hybrid's flat.
        self.assertIn("| benchmark | strategy | workers | further | stw | concurrent-rescan | "
                      "concurrent-hybrid |", sec)
        self.assertIn("| GoroutineIdle | frames-rootjobs | 2 | compact mutators:2 | "
                      "50.00 (n = 10,000..100,000) | 40.00 (n = 10,000..100,000) | "
                      "0.00 (n = 10,000..100,000) |", sec)
        # Every counter of the section stays out of the deterministic table.
        self.assertNotIn("pause1", md.split("## Deterministic counters")[1])

    def test_mark_cpu_against_stw(self):
        path = self.doc_with_modes()
        with open(path) as f:
            d = json.load(f)
        per_goroutine = {"concurrent-rescan": 200.0, "concurrent-hybrid": 130.0}
        for b in d["benchmarks"]:
            n = int(re.search(r"/n:(\d+)/", b["name"]).group(1))
            mode = re.search(r"/mode:([a-z-]+)/", b["name"])
            b["mark_cpu_ns"] = per_goroutine[mode.group(1)] * n if mode else 100.0 * n
        bd.write(path, d)
        r = self.report(path, "-o", self.path("out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        sec = self.section(self.read("out", "report.md"))
        table = sec.split("### Mark CPU against stw")[1].split("###")[0]
        self.assertIn("| benchmark | n | strategy | workers | further | mode | "
                      "stw mark_cpu (µs) | mark_cpu (µs) | ratio |", table)
        self.assertIn("| GoroutineIdle | 100,000 | frames-rootjobs | 2 | mutators:2 | "
                      "concurrent-hybrid | 10,000.0 | 13,000.0 | 1.30x |", table)
        self.assertIn("| GoroutineIdle | 10,000 | frames-rootjobs | 2 | mutators:2 | "
                      "concurrent-rescan | 1,000.0 | 2,000.0 | 2.00x |", table)
        self.assertEqual(4, sum(line.startswith("| GoroutineIdle") for line in table.splitlines()))

    def test_no_mark_cpu_table_without_it(self):
        self.report(self.doc_with_modes(), "-o", self.path("out"))
        self.assertNotIn("Mark CPU against stw", self.read("out", "report.md"))

    def test_no_optional_counters(self):
        self.report(self.doc_with_modes(optional=False), "-o", self.path("out"))
        sec = self.section(self.read("out", "report.md"))
        for name in self.OPTIONAL:
            label = name[:-3] if name.endswith("_ns") else name
            self.assertNotIn(f" {label} |", self.table_lines(sec))
        self.assertIn("| pause1 | stw | ttsp | pause_total | pause_max | mark | assist |", sec)
        self.assertNotIn("round trips", sec)

    def test_stw_only_has_no_section(self):
        d = bd.make_doc(reps=2, micro=False)
        for b in d["benchmarks"]:
            b.update(stw_ns=1e5, pause1_ns=5.0)  # a stw run never counts as concurrent
        self.report(bd.write(self.path("s.json"), d), "-o", self.path("out"))
        md = self.read("out", "report.md")
        self.assertNotIn("## Concurrent marking", md)
        self.assertNotIn("Termination pause", md)


class TwoMachineTest(ReportCase):
    """Two JSON files from two machines: side by side, never pooled."""

    def test_two_machines(self):
        a = self.doc("epyc.json", ns=(1000,), workers=(1, 2))
        xeon = bd.make_doc(ns=(1000,), workers=(1, 2), seed=7,
                           slow={"conservative-serial": 0.3})  # wins everything there
        xeon["context"].update(machine="x86_64-intel-xeon-2pu", host_id="00000000deadbeef",
                               cpu="GenuineIntel family 6 model 85: Intel(R) Xeon(R) CPU",
                               hwloc_topology="1 package, 1 NUMA node, 1 core, 2 PUs, L3 "
                                              "38 MiB")
        b = bd.write(self.path("xeon.json"), xeon)
        r = self.report(a, b, "-o", self.path("out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        md, figs = self.assert_renders("out")
        self.assertIn("from 2 machines", md)
        self.assertNotIn("pooled", md.replace("never pooled", ""))
        # Each machine's topology from its context, side by side.
        self.assertIn("| key | x86_64-amd-epyc-2pu | x86_64-intel-xeon-2pu |", md)
        self.assertIn("| `hwloc_topology` | Machine (7.7GB) Package L#0 2 x (L2 L1d Core PU) | "
                      "1 package, 1 NUMA node, 1 core, 2 PUs, L3 38 MiB |", md)
        self.assertIn("| benchmark | x86_64-amd-epyc-2pu: conservative-serial |", md)
        self.assertIn("| x86_64-intel-xeon-2pu: conservative-rootjobs |", md)
        # Who wins where: benchdata's rootjobs wins at 2 workers on the EPYC;
        # conservative-serial, made 0.3x, everywhere on the Xeon.
        self.assertIn("- **x86_64-intel-xeon-2pu** (GenuineIntel family 6 model 85: Intel(R) "
                      "Xeon(R) CPU, 1 package, 1 NUMA node, 1 core, 2 PUs, L3 38 MiB): fastest "
                      "`conservative-serial` 4 of 4.", md)
        row = next(ln for ln in md.splitlines() if ln.startswith("| GoroutineSelect | 1,000 | 2 |"))
        self.assertRegex(row, r"\| conservative-rootjobs \(1\.\d\dx ahead\) \| "
                              r"conservative-serial \(\d\.\d\dx ahead\) \|$")
        # Each machine's own sections and figures, never one median of both.
        self.assertIn("## Seed table — x86_64-amd-epyc-2pu", md)
        self.assertIn("## Seed table — x86_64-intel-xeon-2pu", md)
        self.assertIn("x86_64-intel-xeon-2pu-scaling-workers-GoroutineSelect.svg", figs)
        self.assertIn("x86_64-amd-epyc-2pu-scaling-workers-GoroutineSelect.svg", figs)
        epyc = md.split("## Seed table — x86_64-amd-epyc-2pu")[1].split("## ns per")[0]
        xeon_md = md.split("## Seed table — x86_64-intel-xeon-2pu")[1].split("## ns per")[0]
        cell = r"\| GoroutineSelect \| ([\d,]+) \|"
        self.assertNotEqual(re.search(cell, epyc).group(1), re.search(cell, xeon_md).group(1))

    def test_same_key_other_host_is_another_machine(self):
        a = self.doc("a.json", ns=(1000,), workers=(2,))
        d = bd.make_doc(ns=(1000,), workers=(2,), seed=3)
        d["context"]["host_id"] = "1111222233334444"
        b = bd.write(self.path("b.json"), d)
        self.assertEqual(self.report(a, b, "-o", self.path("out")).returncode, 0)
        md = self.read("out", "report.md")
        self.assertIn("| key | x86_64-amd-epyc-2pu #1 | x86_64-amd-epyc-2pu #2 |", md)


def md_cell(s):
    return str(s).replace("|", "\\|")


def seed_table(md, title):
    """The seed table section "### <title>" (up to the next heading)."""
    seed = md.split("## Seed table")[1].split("## ns per goroutine")[0]
    return seed.split(f"### {title}\n")[1].split("###")[0]


def table_row(md, *first):
    """The cells of the one Markdown table row whose first cells are `first`."""
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in md.splitlines()
            if ln.startswith("| ")]
    hits = [r for r in rows if tuple(r[:len(first)]) == first]
    if len(hits) != 1:
        raise AssertionError(f"{len(hits)} rows start with {first}")
    return hits[0]


class BadInputTest(ReportCase):
    """Exit 2, one line "report: <file>: <problem>", and no output directory."""

    def assert_bad(self, args, bad, problem):
        r = self.report(*args, "-o", self.path("out"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertTrue(r.stderr.startswith(f"report: {bad}: "), r.stderr)
        self.assertIn(problem, r.stderr)
        self.assertFalse(os.path.exists(self.path("out")))
        self.assertEqual(self.leftovers(), [])

    def text(self, name, content):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(content)
        return p

    def test_bad_json_inputs(self):
        good = self.doc()
        with open(good) as f:
            full = f.read()
        cases = [(self.path("missing.json"), "no such file"),
                 (self.text("empty.json", ""), "empty file"),
                 (self.text("trunc.json", full[:-200]), "truncated JSON"),
                 (self.text("text.json", "hello\n"), "not JSON"),
                 (self.text("list.json", "[]"), "wrong schema"),
                 (self.text("nob.json", '{"context": {}}'), "no \"benchmarks\" key"),
                 (self.text("none.json", '{"benchmarks": []}'), "no benchmarks"),
                 (self.text("schema.json", '{"benchmarks": [{"name": "x", "real_time": "1"}]}'),
                  "wrong schema")]
        for bad, problem in cases:
            with self.subTest(bad=bad):
                self.assert_bad([bad], bad, problem)
                # After a good input has been processed, too.
                self.assert_bad([good, bad], bad, problem)

    def test_bad_go_file(self):
        go = self.text("go.txt", "PASS\n")
        self.assert_bad([self.doc(), "--go", go], go, "no `go test -bench` result lines")
        self.assert_bad([self.doc(), "--go", self.path("nogo.txt")], self.path("nogo.txt"),
                        "no such file")

    def test_bad_go_counts(self):
        go = self.text("go.txt", "BenchmarkGoroutineSelect/n=0-2 \t 10 \t 5000 ns/op\n")
        self.assert_bad([self.doc(), "--go", go], go, "line 1: BenchmarkGoroutineSelect/n=0 "
                        "has n = 0 goroutines and GOMAXPROCS = 2, expected both positive")
        go = self.text("go0.txt", "BenchmarkGoroutineSelect-0 \t 10 \t 5000 ns/op\n")
        self.assert_bad([self.doc(), "--go", go], go, "GOMAXPROCS = 0")
        go = self.text("go1.txt", "BenchmarkGoroutineSelect-2 \t 10 \t 5000 ns/op\n")
        self.assert_bad([self.doc(), "--go", go, "--go-n", "0"], "--go-n",
                        "0 is not a positive number of goroutines")

    def test_missing_perf_path(self):
        p = self.path("nope.data")
        self.assert_bad([self.doc(), "--perf", p], p, "no such perf file or directory")

    def test_output_is_a_file(self):
        out = self.text("out", "x")
        r = self.report(self.doc(), "-o", out)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a directory", r.stderr)


class AtomicTest(ReportCase):
    """A run that fails after rendering has started leaves no new report.md."""

    def failing_run(self, out):
        report = bd.import_tool("report")
        results = bd.results_module()
        rendered = []

        def fail(m):
            # Called after the figures of the scaling and phase sections are written.
            rendered.extend(f for d in os.listdir(self.dir) if ".tmp-" in d
                            for f in os.listdir(self.path(d)))
            raise results.InputError("injected", "failure in the middle of rendering")
        with mock.patch.object(report, "sec_counters", fail), \
                self.assertRaises(SystemExit) as cm:
            report.main([self.doc(), "-o", out])
        self.assertEqual(cm.exception.code, 2)
        self.assertTrue(any(f.endswith(".svg") for f in rendered), rendered)

    def test_failure_after_report_md_is_rendered(self):
        report = bd.import_tool("report")
        results = bd.results_module()
        render = report.render

        def render_then_fail(m, args, outdir):
            render(m, args, outdir)
            self.assertTrue(os.path.isfile(os.path.join(outdir, "report.md")))
            raise results.InputError("injected", "failure after rendering")
        out = self.path("out")
        with mock.patch.object(report, "render", render_then_fail), \
                self.assertRaises(SystemExit):
            report.main([self.doc(ns=(1000,), workers=(1,)), "-o", out])
        self.assertFalse(os.path.exists(out))
        self.assertEqual(self.leftovers(), [])

    def test_failed_run_leaves_no_report(self):
        out = self.path("out")
        self.failing_run(out)
        self.assertFalse(os.path.exists(os.path.join(out, "report.md")))
        self.assertFalse(os.path.exists(out))
        self.assertEqual(self.leftovers(), [])

    def test_failed_run_keeps_previous_report(self):
        out = self.path("out")
        old = bd.make_doc(ns=(1000,), workers=(1,))
        r = self.report(bd.write(self.path("old.json"), old), "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        before = {f: self.read("out", f) for f in os.listdir(out)}
        self.failing_run(out)
        after = {f: self.read("out", f) for f in os.listdir(out)}
        self.assertEqual(before, after)
        self.assertEqual(self.leftovers(), [])

    def test_rerun_replaces_report(self):
        out = self.path("out")
        self.report(self.doc("one.json", ns=(1000,), workers=(1,)), "-o", out)
        self.report(self.doc("two.json", ns=(1000,), workers=(1, 2)), "-o", out)
        md = self.read("out", "report.md")
        self.assertIn("two.json", md)
        self.assertIn("workers = 2", md)
        self.assertEqual(self.leftovers(), [])


class GoRunTest(ReportCase):
    """ci/bench --with-go's path on a small n, when Go is installed."""

    def test_go_column_from_a_real_go_run(self):
        if shutil.which("go") is None:
            self.skipTest("Go is not installed (ci/bootstrap --with-go installs golang-go)")
        go = self.path("go.txt")
        r = bd.run_tool("gobench", go, "--n", "100", "--procs", "1,2", "--count", "1",
                        "--benchtime", "2x", timeout=1200)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = bd.with_mutators(bd.make_doc(ns=(100,), workers=(1, 2),
                                           workloads=("GoroutineSelect", "GoroutineIdle")), 2, 2)
        r = self.report(bd.write(self.path("run.json"), doc), "-o", self.path("out"),
                        "--go", go, "--go-n", "100")
        self.assertEqual(r.returncode, 0, r.stderr)
        md = self.read("out", "report.md")
        # Go prints GOMAXPROCS=1 without a suffix and 2 as -2: each lands in
        # its like-for-like table, and the mutators:1 table of 2 workers has none.
        for title, procs in (("workers = 1, placement = compact", 1),
                             ("workers = 2, placement = compact, mutators = 2", 2)):
            t = seed_table(md, "n = 100, " + title)
            self.assertIn(f"| Go (GOMAXPROCS={procs}) |", t)
            for wl in ("GoroutineSelect", "GoroutineIdle"):
                self.assertRegex(table_row(t, wl)[-1], r"^[\d,]+ \(\d+\.\d\dx\)$")
        self.assertIn("No Go column", seed_table(md, "n = 100, workers = 2, placement = compact"))
        self.assertIn("| BenchmarkGoroutineIdle | 100 | 1 |", md)
        self.assertIn("| BenchmarkGoroutineIdle | 100 | 2 |", md)

    def test_bad_procs_exit_2(self):
        for procs, problem in (("1,x", "is not a comma-separated list"), ("0", "is not a comma"),
                               ("2,2", "names a GOMAXPROCS twice"), ("", "is not a comma")):
            with self.subTest(procs=procs):
                r = bd.run_tool("gobench", self.path("go.txt"), "--procs", procs,
                                env={"PATH": self.dir})  # refused before Go is looked for
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(f"gobench: error: argument --procs: '{procs}' {problem}", r.stderr)
                self.assertFalse(os.path.exists(self.path("go.txt")))

    def test_command_runs_every_gomaxprocs(self):
        gobench = bd.import_tool("gobench")
        cmd = gobench.command("go", 1000, gobench.procs_list("1,2"), 5)
        self.assertEqual(cmd[cmd.index("-cpu") + 1], "1,2")
        self.assertEqual(cmd[-3:], ["runtime", "-args", "-n=1000"])

    def test_no_go_exits_3(self):
        r = bd.run_tool("gobench", self.path("go.txt"), env={"PATH": self.dir})
        self.assertEqual(r.returncode, 3)
        self.assertIn("go not found on PATH", r.stderr)


def span(pid, tid, name, ts, dur, cycle, items=0):
    return {"name": name, "cat": "gc", "ph": "X", "pid": pid, "tid": tid, "ts": ts, "dur": dur,
            "args": {"cycle": cycle, "items": items}}


def proc(pid, name):
    return {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": name}}


class TimelineTest(ReportCase):
    """--trace: the median cycle of each benchmark's final run is drawn."""

    BENCH = "GoroutineIdle/frames-rootjobs/n:1000/workers:2/compact"

    def trace(self):
        # pid 1 is a Google Benchmark trial run of the same benchmark; pid 2
        # the final one, with cycles of 30, 10 and 20 us: the median is 3.
        ev = [proc(1, self.BENCH), span(1, 0, "roots", 0, 500, 1),
              proc(2, self.BENCH)]
        for c, length in ((1, 30), (2, 10), (3, 20)):
            t = 1000 * c
            ev += [span(2, 0, "roots", t, 2, c), span(2, 0, "stack-jobs", t + 2, length - 4, c, 128),
                   span(2, 1, "wait-roots", t, 2, c), span(2, 1, "drain", t + 2, length - 2, c),
                   span(2, 0, "sweep", t + length - 2, 2, c)]
        path = self.path("trace.json")
        with open(path, "w") as f:
            json.dump({"traceEvents": ev}, f)
        return path

    def test_median_cycle_of_the_final_run(self):
        from stackscan_reports import timeline
        runs = timeline.load(self.trace())
        self.assertEqual(list(runs), [self.BENCH])
        self.assertEqual(sorted(runs[self.BENCH]), [1, 2, 3])  # the trial's cycle 1 was replaced
        self.assertEqual(timeline.median_cycle(runs[self.BENCH]), 3)
        tot = timeline.summary(runs[self.BENCH])
        self.assertEqual(tot["stack-jobs"], 16)  # median of 26, 6, 16
        self.assertEqual(tot["roots"], 2)

    def test_report_draws_timelines(self):
        r = self.report(self.doc(), "-o", self.path("out"), "--trace", self.trace())
        self.assertEqual(r.returncode, 0, r.stderr)
        md, figs = self.assert_renders("out")
        self.assertIn("## GC timelines", md)
        self.assertTrue(any(f.startswith("timeline-") for f in figs), figs)
        self.assertIn("cycle 3, the median of 3", self.read("out", figs[-1]))

    def test_bad_trace(self):
        bad = self.path("bad.json")
        for text in ("not json", '{"traceEvents": [{"ph": "X", "name": "drain"}]}', "[]"):
            with open(bad, "w") as f:
                f.write(text)
            r = self.report(self.doc(), "-o", self.path("out"), "--trace", bad)
            self.assertEqual(r.returncode, 2, text)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(self.path("out", "report.md")))


class RealBenchTest(ReportCase):
    """The hook for a real run: $STACKSCAN_BENCH, run tiny, then rendered."""

    def test_real_bench_run(self):
        bench = os.environ.get("STACKSCAN_BENCH")
        if not bench or not os.access(bench, os.X_OK):
            self.skipTest("STACKSCAN_BENCH is not set to an executable stackscan-bench")
        args = shlex.split(os.environ.get("STACKSCAN_BENCH_ARGS", DEFAULT_BENCH_ARGS))
        out_json = self.path("bench.json")
        proc = subprocess.run([bench] + args + [f"--benchmark_out={out_json}",
                                                "--benchmark_out_format=json"],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        with open(out_json) as f:
            self.assertTrue(json.load(f)["benchmarks"])
        r = self.report(out_json, "-o", self.path("out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        md, _ = self.assert_renders("out")
        self.assertIn("## Seed table", md)

    def test_real_bench_trace(self):
        """--trace writes spans in time order per worker, at most 32 cycles a run."""
        bench = os.environ.get("STACKSCAN_BENCH")
        if not bench or not os.access(bench, os.X_OK):
            self.skipTest("STACKSCAN_BENCH is not set to an executable stackscan-bench")
        trace = self.path("trace.json")
        proc_ = subprocess.run([bench, "--workloads=GoroutineIdle", "--n=200", "--workers=1,2",
                                "--strategies=conservative-serial,frames-rootjobs",
                                "--benchmark_min_time=0.01", f"--trace={trace}"],
                               capture_output=True, text=True, timeout=600)
        self.assertEqual(proc_.returncode, 0, proc_.stderr[-2000:])
        self.assertFalse(os.path.exists(trace + ".tmp"))
        with open(trace) as f:
            events = json.load(f)["traceEvents"]
        spans = [e for e in events if e["ph"] == "X"]
        self.assertTrue(spans)
        by = {}
        for e in spans:
            by.setdefault((e["pid"], e["tid"]), []).append(e)
            self.assertLessEqual(e["args"]["cycle"], 32)
        for evs in by.values():
            for a, b in zip(evs, evs[1:]):
                self.assertGreaterEqual(b["ts"] + 1e-3, a["ts"] + a["dur"])  # no overlap
        names = {e["args"]["name"] for e in events if e["ph"] == "M"}
        self.assertEqual(len(names), 4)
        self.assertEqual({e["name"] for e in spans} - {"roots", "wait-roots", "stack-jobs",
                                                       "drain", "idle", "sweep"}, set())


if __name__ == "__main__":
    unittest.main()
