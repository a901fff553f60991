"""Tests of reports/compare (and benchfilter, which its confirmation runs use) on crafted
Google Benchmark JSON (see benchdata.py); one test runs the bench, given STACKSCAN_BENCH."""

import json
import os
import re
import tempfile
import unittest

import benchdata as bd

SELECT_FP = "GoroutineSelect/frames-parallel/n:1000/workers:2/compact/manual_time"


class CompareTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test_compare-")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def doc(self, name, **kw):
        kw.setdefault("ns", (1000,))
        kw.setdefault("workers", (1, 2))
        return bd.write(self.path(name), bd.make_doc(**kw))

    def compare(self, base, new, *extra):
        return bd.run_tool("compare", base, new, *extra)

    def assert_verdict(self, line_start, verdict, out):
        line = next(ln for ln in out.splitlines() if ln.startswith(line_start + " "))
        self.assertTrue(line.rstrip().endswith(verdict), line)

    # -- timing gate -------------------------------------------------------

    def test_50_percent_slowdown_over_9_repetitions_fails(self):
        base = self.doc("base.json", reps=9, seed=1)
        new = self.doc("new.json", reps=9, seed=2, slow={"GoroutineSelect/frames-parallel": 1.5})
        r = self.compare(base, new)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assert_verdict(SELECT_FP, "REGRESSION", r.stdout)
        regressions = [ln for ln in r.stdout.splitlines() if ln.endswith("REGRESSION")]
        self.assertEqual(len(regressions), 2)  # workers 1 and 2, nothing else
        self.assertRegex(next(ln for ln in regressions if ln.startswith(SELECT_FP)),
                         r" \+(4[89]|5[01])\.\d% ")  # 1.5x, +-1% jitter
        self.assertEqual(r.stderr, "")

    def test_p_value_of_separated_samples(self):
        base = self.doc("base.json", reps=9, seed=1)
        new = self.doc("new.json", reps=9, seed=2, slow={"GoroutineSelect/frames-parallel": 1.5})
        line = next(ln for ln in self.compare(base, new).stdout.splitlines()
                    if ln.startswith(SELECT_FP))
        p = float(line.split()[4])
        self.assertLess(p, 0.001)  # 9 vs 9, no overlap: ~0.0004 (normal approx.)

    def test_identical_runs_pass(self):
        base = self.doc("base.json", reps=9, seed=1)
        r = self.compare(base, base)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("geomean new/base: 1.0000 (+0.0%)", r.stdout)
        self.assertIn("all equal", r.stdout)
        self.assertTrue(r.stdout.rstrip().endswith("compare: OK"))

    def test_noise_within_threshold_passes(self):
        base = self.doc("base.json", reps=9, seed=1)
        new = self.doc("new.json", reps=9, seed=2)
        r = self.compare(base, new)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("REGRESSION", r.stdout)

    def test_threshold_option(self):
        base = self.doc("base.json", reps=9, seed=1)
        new = self.doc("new.json", reps=9, seed=2, slow={"GoroutineSelect/frames-parallel": 1.5})
        self.assertEqual(self.compare(base, new, "--threshold", "0.6").returncode, 0)
        self.assertEqual(self.compare(base, new, "--threshold", "0.4").returncode, 1)

    def test_improvement_passes(self):
        base = self.doc("base.json", reps=9, seed=1)
        new = self.doc("new.json", reps=9, seed=2, slow={"frames-serial": 0.5})
        r = self.compare(base, new)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("improvement", r.stdout)

    def test_geomean_of_ratios(self):
        base = self.doc("base.json", reps=9, seed=1, micro=False)
        new = self.doc("new.json", reps=9, seed=1, micro=False, slow={"Goroutine": 2.0})
        r = self.compare(base, new)
        m = re.search(r"geomean new/base: ([\d.]+)", r.stdout)
        self.assertAlmostEqual(float(m.group(1)), 2.0, places=6)  # same jitter: exactly 2

    def test_few_repetitions_are_not_gated_and_say_so(self):
        base = self.doc("base.json", reps=3, seed=1)
        new = self.doc("new.json", reps=3, seed=2, slow={"GoroutineSelect/frames-parallel": 1.5})
        r = self.compare(base, new)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("too few repetitions", r.stdout)
        self.assertIn("work counters only", r.stdout)
        self.assert_verdict(SELECT_FP, "slower, not gated (3 vs 3 repetitions)", r.stdout)

    def test_single_runs_without_aggregates(self):
        base = self.doc("base.json", reps=1, seed=1)
        new = self.doc("new.json", reps=1, seed=2)
        r = self.compare(base, new)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("too few repetitions", r.stdout)

    def test_aggregates_only_input(self):
        d = bd.make_doc(reps=5, ns=(1000,), workers=(1,))
        d["benchmarks"] = [b for b in d["benchmarks"] if b.get("run_type") == "aggregate"
                           or b["name"].startswith("micro/")]
        base = bd.write(self.path("agg.json"), d)
        r = self.compare(base, base)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("too few repetitions", r.stdout)

    # -- deterministic counters --------------------------------------------

    def edit(self, src, dst, fn):
        with open(src) as f:
            d = json.load(f)
        for b in d["benchmarks"]:
            fn(b)
        return bd.write(self.path(dst), d)

    def test_changed_word_count_fails(self):
        base = self.doc("base.json", reps=9, seed=1)

        def bump(b):
            if b.get("run_name") == SELECT_FP and b.get("repetition_index") == 4:
                b["words"] += 1
        new = self.edit(base, "new.json", bump)
        r = self.compare(base, new)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        changed = [ln for ln in r.stdout.splitlines() if ln.startswith("COUNTER CHANGED")]
        self.assertEqual(len(changed), 1, r.stdout)
        self.assertIn(SELECT_FP, changed[0])
        self.assertIn("words", changed[0])
        self.assertIn("1 counter change", r.stdout)

    def test_counter_change_fails_even_with_few_repetitions(self):
        base = self.doc("base.json", reps=2, seed=1)

        def bump(b):
            if "stack_bytes" in b:
                b["stack_bytes"] *= 2
        r = self.compare(base, self.edit(base, "new.json", bump))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("stack_bytes", r.stdout)

    def test_vanished_counter_fails(self):
        base = self.doc("base.json", reps=3, seed=1)
        r = self.compare(base, self.edit(base, "new.json", lambda b: b.pop("lookups", None)))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"COUNTER CHANGED: .*: lookups [\d/]+ -> absent")

    def test_work_counters_without_context_keys(self):
        # Results from before the bench named its counters: the work counters
        # are found in the entries themselves.
        base = self.doc("base.json", reps=3, seed=1, names_in_context=False)

        def bump(b):
            if b.get("run_name") == SELECT_FP and "objects_marked" in b:
                b["objects_marked"] += 1
        r = self.compare(base, self.edit(base, "new.json", bump))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"COUNTER CHANGED: {SELECT_FP}: objects_marked", r.stdout)

    def test_timing_counters_are_not_compared_exactly(self):
        base = self.doc("base.json", reps=9, seed=1)

        def nudge(b):
            if "mark_ns" in b:
                b["mark_ns"] += 1
        self.assertEqual(self.compare(base, self.edit(base, "new.json", nudge)).returncode, 0)

    def test_benchmark_failing_in_new_fails(self):
        base = self.doc("base.json", reps=3, seed=1)

        def fail(b):
            if b.get("run_name") == SELECT_FP:
                b.update(error_occurred=True, error_message="checkmark mismatch")
        r = self.compare(base, self.edit(base, "new.json", fail))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAILED in new: checkmark mismatch", r.stdout)

    # -- unusable input: exit 2, one line on stderr, nothing on stdout -------

    def assert_bad(self, bad, problem, position="new"):
        good = self.doc("good.json", reps=3)
        args = (good, bad) if position == "new" else (bad, good)
        r = self.compare(*args)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith(f"compare: {bad}: "), lines[0])
        self.assertIn(problem, lines[0])

    def write_text(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_missing_file(self):
        self.assert_bad(self.path("nope.json"), "no such file")
        self.assert_bad(self.path("nope.json"), "no such file", position="base")

    def test_empty_file(self):
        self.assert_bad(self.write_text("empty.json", ""), "empty file")
        self.assert_bad(self.write_text("blank.json", "\n  \n"), "empty file", position="base")

    def test_truncated_json(self):
        with open(self.doc("full.json", reps=3)) as f:
            text = f.read()
        self.assert_bad(self.write_text("trunc.json", text[: len(text) // 2]), "truncated JSON")

    def test_not_json(self):
        self.assert_bad(self.write_text("text.json", "BenchmarkX 10 5 ns/op\n"), "not JSON")
        p = self.path("binary.json")
        with open(p, "wb") as f:
            f.write(b"\x7fELF\xff\xfe\x00")
        self.assert_bad(p, "not JSON", position="base")

    def test_wrong_schema(self):
        self.assert_bad(self.write_text("list.json", "[1, 2]"), "wrong schema")
        self.assert_bad(self.write_text("ctx.json", '{"context": {}}'), "no \"benchmarks\" key")
        self.assert_bad(self.write_text("str.json", '{"benchmarks": "x"}'), "wrong schema")
        self.assert_bad(self.write_text("entry.json", '{"benchmarks": [{"name": "a"}]}'),
                        "wrong schema: benchmark 'a' has no numeric \"real_time\"")
        self.assert_bad(self.write_text("noname.json", '{"benchmarks": [{"real_time": 1}]}'),
                        "wrong schema")

    def test_no_benchmarks(self):
        self.assert_bad(self.write_text("none.json", '{"context": {}, "benchmarks": []}'),
                        "no benchmarks")

    def test_mismatched_names(self):
        d = bd.make_doc(reps=3, ns=(1000,), workers=(1, 2))
        d["benchmarks"] = [b for b in d["benchmarks"] if b["run_name"] != SELECT_FP]
        fewer = bd.write(self.path("fewer.json"), d)
        self.assert_bad(fewer, "benchmark names differ from " + self.path("good.json"))
        self.assert_bad(fewer, "lacks " + SELECT_FP)
        # The NEW file is the one blamed, whichever side has the extra names.
        r = self.compare(fewer, self.path("good.json"))
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertEqual(r.stderr, f"compare: {self.path('good.json')}: benchmark names "
                                   f"differ from {fewer}: has extra {SELECT_FP}\n")


OTHER_CPU = {"machine": "x86_64-intel-xeon-2pu", "cpu": "GenuineIntel family 6 model 85: "
             "Intel(R) Xeon(R) CPU @ 2.20GHz", "host_id": "00000000deadbeef"}
OTHER_HOST = {"host_id": "1111222233334444"}  # same key and CPU, another VM


class MachineTest(unittest.TestCase):
    """Same machine: raw times gate. Another machine or host: times over the
    run's own floor gate, raw deltas are shown. Noisy runs: no timing gate."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test_compare-machine-")
        self.dir = self._tmp.name
        self.base_doc = bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=1)
        self.base = self.write("base.json", self.base_doc)

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, doc):
        return bd.write(os.path.join(self.dir, name), doc)

    def run_new(self, doc, *extra, base=None):
        r = bd.run_tool("compare", base or self.base, self.write("new.json", doc), *extra)
        self.assertEqual(r.stderr, "")
        return r

    def verdict(self, out, name=SELECT_FP):
        return next(ln for ln in out.splitlines() if ln.startswith(name + " "))

    def test_other_cpu_slower_machine_passes_normalized(self):
        new = bd.retarget(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), 1.7,
                          **OTHER_CPU)
        r = self.run_new(new)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("baseline from another machine: times NORMALIZED", r.stdout)
        self.assertIn("+70", self.verdict(r.stdout))  # the raw delta, shown
        self.assertIn("geomean new/base of time/floor: 1.00", r.stdout)

    def test_other_cpu_slowdown_fails_normalized(self):
        new = bd.slow_down(bd.retarget(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2),
                                       0.6, **OTHER_CPU), SELECT_FP, 1.5)
        r = self.run_new(new)
        self.assertEqual(r.returncode, 1, r.stdout)
        line = self.verdict(r.stdout)
        self.assertTrue(line.endswith("REGRESSION"), line)
        self.assertRegex(line, r" -(9|10)\.\d% ")  # raw: 0.6 x 1.5 = 0.9, faster than before

    def test_same_key_other_host_is_normalized(self):
        new = bd.retarget(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), 1.3,
                          **OTHER_HOST)
        r = self.run_new(new)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("another host of the same machine key", r.stdout)
        r = self.run_new(bd.slow_down(new, SELECT_FP, 1.5))
        self.assertEqual(r.returncode, 1, r.stdout)

    def test_same_host_gates_raw_time(self):
        new = bd.retarget(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), 1.3)
        r = self.run_new(new)
        self.assertEqual(r.returncode, 1, r.stdout)  # the floor moved too: raw still gates
        self.assertIn("same machine and host: raw times gated", r.stdout)

    def test_other_word_filter_leaves_conservative_times_ungated(self):
        new = bd.retarget(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), 1.0,
                          scan_filter="scalar", **OTHER_CPU)
        r = self.run_new(bd.slow_down(new, SELECT_CS, 1.5))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("scan filter: conservative scans ran the avx2 word filter in the "
                      "baseline and the scalar one here", r.stdout)
        self.assertIn("not gated (avx2 word filter in the baseline, scalar here)",
                      self.verdict(r.stdout, SELECT_CS))
        self.assertNotIn("not gated", self.verdict(r.stdout))  # frames-parallel: gated
        r = self.run_new(bd.slow_down(new, SELECT_FP, 1.5))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertTrue(self.verdict(r.stdout).endswith("REGRESSION"))
        # The same filter on both sides (or one side unnamed, as in older files): gated.
        same = bd.retarget(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), 1.0,
                           **OTHER_CPU)
        r = self.run_new(bd.slow_down(same, SELECT_CS, 1.5))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertNotIn("scan filter:", r.stdout)
        del same["context"]["scan_filter"]
        r = self.run_new(bd.slow_down(same, SELECT_CS, 1.5))
        self.assertEqual(r.returncode, 1, r.stdout)

    def test_no_floor_on_another_machine_is_not_gated(self):
        new = bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2, floor=False)
        r = self.run_new(bd.slow_down(bd.retarget(new, 1.0, **OTHER_CPU), SELECT_FP, 1.5))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("not gated (no touch_ns floor", self.verdict(r.stdout))

    def test_load_average_makes_times_noisy_but_counters_gate(self):
        new = bd.slow_down(bd.retarget(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2),
                                       1.0, load_avg=[9.5, 8.0, 4.0]), SELECT_FP, 1.5)
        r = self.run_new(new)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("slower, noisy (load average 9.50 at the start, over 2 for 2 PUs)",
                      self.verdict(r.stdout))
        for b in new["benchmarks"]:
            if "words" in b:
                b["words"] += 1
        self.assertEqual(self.run_new(new).returncode, 1)

    def test_steal_and_other_load_from_machine_record(self):
        new = bd.slow_down(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), SELECT_FP, 1.5)
        for rec, words in (({"steal": 0.12, "other_busy": 0.0}, "steal time 12.0%"),
                           ({"steal": 0.0, "other_busy": 0.6}, "other processes' CPU share")):
            load = self.write("load.json", rec)
            r = self.run_new(new, "--machine-load", load)
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertIn(words, self.verdict(r.stdout))
        load = self.write("load.json", {"steal": 0.01, "other_busy": 0.05})
        self.assertEqual(self.run_new(new, "--machine-load", load).returncode, 1)

    def test_dispersed_repetitions_are_noisy(self):
        new = bd.slow_down(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), SELECT_FP, 1.5)
        spread = (1.0, 1.3, 0.8, 1.25, 1.1)
        runs = [b for b in new["benchmarks"] if b["name"] == SELECT_FP]
        for b, f in zip(runs, spread):
            b["real_time"] *= f
        r = self.run_new(new)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(self.verdict(r.stdout), r"noisy \(repetitions spread \d+\.\d%, over 5%\)")

    def test_fail_on_improvement(self):
        new = bd.slow_down(bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2), SELECT_FP, 0.5)
        self.assertEqual(self.run_new(new).returncode, 0)
        r = self.run_new(new, "--fail-on-improvement")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("IMPROVEMENT (stale baseline?)", self.verdict(r.stdout))

    def test_baseline_directory(self):
        bdir = os.path.join(self.dir, "baselines")
        os.mkdir(bdir)
        self.write("baselines/x86_64-amd-epyc-2pu.json", self.base_doc)
        other = bd.retarget(self.base_doc, 3.0, machine="x86_64-intel-xeon-2pu",
                            date="2027-01-01T00:00:00+00:00")
        self.write("baselines/x86_64-intel-xeon-2pu.json", other)
        new = bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=2)
        r = self.run_new(new, base=bdir)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("x86_64-amd-epyc-2pu.json", r.stdout.splitlines()[0])
        # Another CPU with no baseline of its own: the newest 2-PU x86_64 one.
        r = self.run_new(bd.retarget(new, 1.0, machine="x86_64-amd-ryzen-2pu"), base=bdir)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("x86_64-intel-xeon-2pu.json", r.stdout.splitlines()[0])
        # Nothing of its architecture and PU count: unusable, or nothing to do.
        lone = bd.retarget(new, 1.0, machine="aarch64-arm-neoverse-n1-4pu")
        r = bd.run_tool("compare", bdir, self.write("new.json", lone))
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("no baseline for machine aarch64-arm-neoverse-n1-4pu", r.stderr)
        r = bd.run_tool("compare", bdir, self.write("new.json", lone), "--missing-ok")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing to compare", r.stdout)


class ShippedBaselineTest(unittest.TestCase):
    """The baseline ci/bench ships: passes against itself and against a copy
    edited to look like another CPU; a 1.5x slowdown of one benchmark fails
    on the same machine key and on another one (normalized)."""

    def setUp(self):
        bdir = os.path.join(bd.ROOT, "ci", "baselines")
        files = sorted(f for f in os.listdir(bdir) if f.endswith(".json"))
        self.assertTrue(files, "no baseline in ci/baselines")
        self.path = os.path.join(bdir, files[0])
        with open(self.path) as f:
            self.doc = json.load(f)
        self._tmp = tempfile.TemporaryDirectory(prefix="test_compare-shipped-")

    def tearDown(self):
        self._tmp.cleanup()

    def compare(self, base, new):
        paths = []
        for name, d in (("base.json", base), ("new.json", new)):
            paths.append(d if isinstance(d, str) else
                         bd.write(os.path.join(self._tmp.name, name), d))
        r = bd.run_tool("compare", *paths, "--threshold", "0.15")
        self.assertEqual(r.stderr, "")
        return r

    def victim(self):
        """A collector benchmark of the baseline whose time is gated: one with a
        floor and 5+ repetitions (ci/bench's seed table; the sweep has 3)."""
        reps = {}
        for b in self.doc["benchmarks"]:
            if b.get("run_type") == "iteration" and "touch_ns" in b:
                reps[b["run_name"]] = reps.get(b["run_name"], 0) + 1
        names = [n for n, k in reps.items() if k >= 5]
        self.assertTrue(names, "no benchmark with 5 repetitions in the shipped baseline")
        return max(names, key=lambda n: ("GoroutineIdle" in n, "frames" in n))

    def test_against_itself_and_another_cpu(self):
        self.assertEqual(self.compare(self.path, self.path).returncode, 0)
        other = bd.retarget(self.doc, 1.8, **OTHER_CPU)
        r = self.compare(self.path, other)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("NORMALIZED", r.stdout)

    def test_slowdown_fails_on_same_and_other_machine(self):
        # The spread of the recording's repetitions is taken out (it was
        # recorded on a shared VM), so that only the slowdown is left to see.
        quiet = bd.retarget(bd.tighten(self.doc), 1.0, load_avg=[0.0, 0.0, 0.0])
        victim = self.victim()
        for ctx, scale in (({}, 1.0), (OTHER_CPU, 1.8)):
            with self.subTest(machine=ctx.get("machine", "same")):
                new = bd.slow_down(bd.retarget(quiet, scale, **ctx), victim, 1.5)
                r = self.compare(quiet, new)
                self.assertEqual(r.returncode, 1, r.stdout)
                regressions = [ln for ln in r.stdout.splitlines() if ln.endswith("REGRESSION")]
                self.assertEqual(len(regressions), 1, r.stdout)
                self.assertTrue(regressions[0].startswith(victim + " "), regressions[0])


SELECT_CS = "GoroutineSelect/conservative-serial/n:1000/workers:2/compact/manual_time"


class ConfirmTest(unittest.TestCase):
    """--list-regressions and --confirm: a timing failure stands only where a
    second process gives it again; counters and failures fail at once."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test_compare-confirm-")
        self.dir = self._tmp.name
        self.base = self.write("base.json", bd.make_doc(reps=5, ns=(1000,), workers=(2,),
                                                        seed=1))
        # NEW: both GoroutineSelect benchmarks named above 1.3x slower
        self.new_doc = self.run_doc(2, {SELECT_FP: 1.3, SELECT_CS: 1.3})
        self.new = self.write("new.json", self.new_doc)

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, doc):
        return bd.write(os.path.join(self.dir, name), doc)

    def run_doc(self, seed, slow, only=None):
        """A run (another seed: other jitter) with slow's benchmarks slowed;
        only: keep just those benchmarks (what a confirmation run re-runs)."""
        doc = bd.make_doc(reps=5, ns=(1000,), workers=(2,), seed=seed)
        for name, f in slow.items():
            doc = bd.slow_down(doc, name, f)
        if only is not None:
            doc["benchmarks"] = [b for b in doc["benchmarks"] if b["run_name"] in only]
        return doc

    def confirm_file(self, slow, only=(SELECT_FP, SELECT_CS), name="confirm.json"):
        return self.write(name, self.run_doc(3, slow, only))

    def compare(self, *extra, new=None):
        return bd.run_tool("compare", self.base, new or self.new, *extra)

    def row(self, out, name):
        return next(ln for ln in out.splitlines() if ln.startswith(name + " "))

    def test_list_regressions_names_the_timing_failures(self):
        listing = os.path.join(self.dir, "flagged.txt")
        r = self.compare("--list-regressions", listing)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        with open(listing) as f:
            self.assertEqual(f.read().splitlines(), [SELECT_CS, SELECT_FP])  # baseline order
        r = bd.run_tool("compare", self.base, self.base, "--list-regressions", listing)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(listing) as f:
            self.assertEqual(f.read(), "")

    def test_regression_in_both_runs_fails(self):
        r = self.compare("--confirm", self.confirm_file({SELECT_FP: 1.3, SELECT_CS: 1.3}))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "")
        for name in (SELECT_FP, SELECT_CS):
            self.assertRegex(self.row(r.stdout, name),
                             r"REGRESSION \(confirmed: \+\d+\.\d%, p 0\.0079 in the "
                             r"confirmation run\)$")
        self.assertIn(f"confirmed by the confirmation run: {SELECT_CS}, {SELECT_FP}", r.stdout)
        self.assertNotIn("not reproduced", r.stdout)
        self.assertIn("compare: FAIL: 2 regression(s)/failure(s)", r.stdout)

    def test_regression_in_the_first_run_only_passes(self):
        r = self.compare("--confirm", self.confirm_file({}))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "")
        for name in (SELECT_FP, SELECT_CS):
            line = self.row(r.stdout, name)
            self.assertIn("not reproduced: drift (REGRESSION in this run; ", line)
            self.assertTrue(line.endswith("in the confirmation run)"), line)
        self.assertIn(f"not reproduced: drift: {SELECT_CS}, {SELECT_FP}", r.stdout)
        self.assertTrue(r.stdout.rstrip().endswith(
            "compare: OK (2 timing failure(s) not reproduced)"), r.stdout)

    def test_one_confirmed_one_not(self):
        r = self.compare("--confirm", self.confirm_file({SELECT_FP: 1.3}))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("REGRESSION (confirmed", self.row(r.stdout, SELECT_FP))
        self.assertIn("not reproduced: drift", self.row(r.stdout, SELECT_CS))
        self.assertIn("compare: FAIL: 1 regression(s)/failure(s), 0 counter change(s); "
                      "1 timing failure(s) not reproduced", r.stdout)

    def test_noisy_confirmation_does_not_confirm_and_says_so(self):
        doc = bd.retarget(self.run_doc(3, {SELECT_FP: 1.3, SELECT_CS: 1.3},
                                       (SELECT_FP, SELECT_CS)), load_avg=[9.0, 8.0, 4.0])
        r = self.compare("--confirm", self.write("confirm.json", doc))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("not reproduced: confirmation run noisy (REGRESSION in this run; ",
                      self.row(r.stdout, SELECT_FP))
        self.assertIn("noise: the confirmation run is too noisy", r.stdout)

    def test_counter_change_fails_without_confirmation(self):
        doc = json.loads(json.dumps(self.new_doc))
        for b in doc["benchmarks"]:
            if b["run_name"].startswith("GoroutineBlocking/frames-serial/") and "words" in b:
                b["words"] += 8
        new = self.write("new-counters.json", doc)
        listing = os.path.join(self.dir, "flagged.txt")
        r = self.compare("--list-regressions", listing, new=new)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("COUNTER CHANGED: GoroutineBlocking/frames-serial/", r.stdout)
        with open(listing) as f:  # nothing to confirm for the counter
            self.assertEqual(f.read().splitlines(), [SELECT_CS, SELECT_FP])
        # The timing failures go away in the confirmation run; the counter stays.
        r = self.compare("--confirm", self.confirm_file({}), new=new)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not reproduced: drift", self.row(r.stdout, SELECT_FP))
        self.assertIn("compare: FAIL: 0 regression(s)/failure(s), 1 counter change(s); "
                      "2 timing failure(s) not reproduced", r.stdout)

    def test_counter_change_in_the_confirmation_run_fails(self):
        doc = self.run_doc(3, {}, (SELECT_FP, SELECT_CS))
        for b in doc["benchmarks"]:
            if b["run_name"] == SELECT_FP and "objects_marked" in b:
                b["objects_marked"] += 1
        r = self.compare("--confirm", self.write("confirm.json", doc))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"COUNTER CHANGED in the confirmation run: {SELECT_FP}: objects_marked",
                      r.stdout)

    def test_benchmark_failing_in_the_confirmation_run_fails(self):
        doc = self.run_doc(3, {}, (SELECT_FP, SELECT_CS))
        for b in doc["benchmarks"]:
            if b["run_name"] == SELECT_CS:
                b.update(error_occurred=True, error_message="checkmark mismatch")
        r = self.compare("--confirm", self.write("confirm.json", doc))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAILED in new: checkmark mismatch", r.stdout)

    # -- unusable confirmation: exit 2, one line on stderr, nothing on stdout

    def assert_bad_confirm(self, path, problem):
        r = self.compare("--confirm", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith(f"compare: {path}: "), lines[0])
        self.assertIn(problem, lines[0])

    def test_bad_confirmation_file(self):
        self.assert_bad_confirm(os.path.join(self.dir, "nope.json"), "no such file")
        good = self.confirm_file({})
        with open(good) as f:
            text = f.read()
        cut = os.path.join(self.dir, "cut.json")
        with open(cut, "w") as f:
            f.write(text[: len(text) // 2])
        self.assert_bad_confirm(cut, "truncated JSON")
        garbled = os.path.join(self.dir, "garbled.json")
        with open(garbled, "w") as f:
            f.write("BenchmarkGoroutineSelect 10 123 ns/op\n")
        self.assert_bad_confirm(garbled, "not JSON")

    def test_confirmation_that_cannot_confirm(self):
        self.assert_bad_confirm(self.confirm_file({}, only=(SELECT_CS,)),
                                f"lacks flagged benchmark(s) {SELECT_FP}: not re-run")
        doc = self.run_doc(3, {}, (SELECT_FP, SELECT_CS))
        extra = json.loads(json.dumps(next(b for b in doc["benchmarks"]
                                           if b["run_name"] == SELECT_FP)))
        extra["name"] = extra["run_name"] = SELECT_FP.replace("n:1000", "n:7")
        doc["benchmarks"].append(extra)
        self.assert_bad_confirm(self.write("extra.json", doc), "has benchmarks the baseline "
                                                               "lacks: GoroutineSelect/")
        other = bd.retarget(self.run_doc(3, {}, (SELECT_FP, SELECT_CS)), **OTHER_HOST)
        self.assert_bad_confirm(self.write("other.json", other),
                                f"from another machine than {self.new}")

    def test_unwritable_list_is_bad_input(self):
        listing = os.path.join(self.dir, "no-such-dir", "flagged.txt")
        r = self.compare("--list-regressions", listing)
        self.assertEqual((r.returncode, r.stdout), (2, ""), r.stderr)
        self.assertEqual(r.stderr, f"compare: {listing}: cannot write: No such file or "
                                   "directory\n")


class BenchFilterTest(unittest.TestCase):
    """reports/benchfilter: expressions that match exactly the listed names,
    checked with glibc's regcomp (POSIX extended, as the bench checks its
    filter) and, where STACKSCAN_BENCH is set, with the bench itself."""

    NAMES = ["GoroutineIdle/frames-rootjobs/n:1000/workers:2/compact/manual_time",
             "GoroutineSelect/conservative-serial/n:100000/workers:1/compact/manual_time",
             "odd/a.b(c)*+?{1}|^$[x]\\y:z/w"]  # every ERE metacharacter, and ] and }
    NEAR = ["GoroutineIdle/frames-rootjobs/n:10000/workers:2/compact/manual_time",
            "GoroutineIdle/frames-rootjobs/n:1000/workers:2/compact",
            "xGoroutineIdle/frames-rootjobs/n:1000/workers:2/compact/manual_time",
            "odd/aXb(c)*+?{1}|^$[x]\\y:z/w", "odd/a.b(c)", "odd/a.bc", "GoroutineIdle"]

    def setUp(self):
        self.bf = bd.import_tool("benchfilter")

    def ere_matches(self, expr, text):
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        buf = ctypes.create_string_buffer(256)  # regex_t is 64 bytes on glibc
        REG_EXTENDED, REG_NOSUB = 1, 8
        rc = libc.regcomp(buf, expr.encode(), REG_EXTENDED | REG_NOSUB)
        self.assertEqual(rc, 0, f"regcomp rejects {expr!r}")
        try:
            return libc.regexec(buf, text.encode(), ctypes.c_size_t(0), None, 0) == 0
        finally:
            libc.regfree(buf)

    def test_each_expression_matches_exactly_its_names(self):
        exprs = self.bf.filters(self.NAMES)
        self.assertEqual(len(exprs), 1)
        self.assertNotIn("\\/", exprs[0])  # an error in Google Benchmark's std::regex
        self.assertNotIn("\\:", exprs[0])
        for n in self.NAMES:
            self.assertTrue(self.ere_matches(exprs[0], n), n)
        for n in self.NEAR:
            self.assertFalse(self.ere_matches(exprs[0], n), n)

    def test_long_lists_are_split_under_the_bench_limit(self):
        names = [f"GoroutineIdle/frames-rootjobs/n:{n}/workers:{w}/compact/manual_time"
                 for n in (1000, 10000, 100000) for w in range(1, 17)]
        exprs = self.bf.filters(names)
        self.assertGreater(len(exprs), 1)
        self.assertTrue(all(len(e) <= self.bf.MAX_CHARS for e in exprs))
        for n in names:
            self.assertEqual(sum(self.ere_matches(e, n) for e in exprs), 1, n)

    def test_tool_keeps_the_names_its_run_holds(self):
        with tempfile.TemporaryDirectory() as tmp:
            run = bd.write(os.path.join(tmp, "seed.json"),
                           bd.make_doc(reps=2, ns=(1000,), workers=(2,)))
            listing = os.path.join(tmp, "flagged.txt")
            with open(listing, "w") as f:
                f.write(f"{SELECT_FP}\n{self.NAMES[0]}\n\n")
            r = bd.run_tool("benchfilter", listing, run)
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertEqual(r.stdout, "^(" + SELECT_FP + ")$\n")
            with open(listing, "w") as f:
                f.write(self.NAMES[0] + "\n")
            self.assertEqual(bd.run_tool("benchfilter", listing, run).stdout, "")
            r = bd.run_tool("benchfilter", os.path.join(tmp, "nope.txt"), run)
            self.assertEqual(r.returncode, 2)
            self.assertEqual(r.stderr, f"benchfilter: {tmp}/nope.txt: no such file\n")

    @unittest.skipUnless(os.environ.get("STACKSCAN_BENCH"), "STACKSCAN_BENCH not set")
    def test_the_bench_runs_exactly_the_filtered_benchmarks(self):
        import subprocess
        want = ["GoroutineIdle/frames-serial/n:1000/workers:1/compact/manual_time",
                "GoroutineSelect/conservative-serial/n:1000/workers:2/compact/manual_time"]
        # Names the run lacks fill the first expression to near its limit:
        # the bench must take one that long (its size estimate, gbflags.c).
        pad = [f"GoroutineBlocking/frames-pctab/n:{n}/workers:64/scatter/manual_time"
               for n in range(1, 40)]
        exprs = self.bf.filters(want + pad)
        self.assertGreater(len(exprs[0]), self.bf.MAX_CHARS - 80)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.json")
            r = subprocess.run([os.environ["STACKSCAN_BENCH"], "--n=1000,10000",
                                "--workloads=GoroutineIdle,GoroutineSelect",
                                "--strategies=conservative-serial,frames-serial",
                                "--workers=1,2", "--benchmark_min_time=0.001",
                                "--benchmark_repetitions=2", f"--benchmark_filter={exprs[0]}",
                                f"--benchmark_out={out}", "--benchmark_out_format=json"],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(out) as f:
                ran = {b["run_name"] for b in json.load(f)["benchmarks"]}
        self.assertEqual(ran, set(want))


class NamesTest(unittest.TestCase):
    """results.Names: strategy and counter names come from the results."""

    def names(self, doc):
        results = bd.results_module()
        benches = results.benches_of(doc, "x.json")
        return results.Names.of([doc["context"]], list(benches.values()))

    def test_from_context(self):
        doc = bd.make_doc(reps=2, ns=(1000,), strategies=("frames-serial", "conservative-serial"))
        doc["context"]["counters"] = "words,frames,gizmos,roots_ns,total_ns"
        n = self.names(doc)
        self.assertEqual(n.strategies, ["conservative-serial", "frames-serial"])  # bench order
        self.assertEqual(n.exact, ["words", "frames", "gizmos"])
        self.assertEqual(n.phases[:1], ["roots_ns"])
        self.assertNotIn("total_ns", n.phases)

    def test_without_context_keys(self):
        doc = bd.make_doc(reps=2, ns=(1000,), names_in_context=False,
                          strategies=("frames-serial", "conservative-serial"))
        for b in doc["benchmarks"]:
            if "words" in b:
                b["touch_ns"], b["rss_per_goroutine"], b["widgets"] = 5e5, 8192.0, 7.0
        n = self.names(doc)
        self.assertEqual(n.strategies, ["frames-serial", "conservative-serial"])  # as seen
        self.assertEqual(sorted(n.exact), sorted(["stack_bytes", "words", "frames", "lookups",
                                                  "objects_marked", "widgets"]))
        self.assertEqual(n.phases, ["roots_ns", "mark_ns", "sweep_ns"])


    def test_phases_and_pauses(self):
        """The context's phase and pause lists; without them the floors and the
        stop-the-world times are no phases."""
        doc = bd.make_doc(reps=2, ns=(1000,), strategies=("frames-serial",))
        for b in doc["benchmarks"]:
            if "words" in b:
                b.update(touch1_ns=4e5, ttsp_ns=5e3, stw_ns=8e4, ttsp_max_ns=9e4)
        n = self.names(doc)
        self.assertEqual(n.phases, ["roots_ns", "mark_ns", "sweep_ns"])
        self.assertEqual(n.pauses, ["ttsp_ns", "stw_ns", "ttsp_max_ns"])  # as reported
        self.assertNotIn("ttsp_ns", n.exact)
        doc["context"].update(phase_counters="mark_ns,roots_ns", pause_counters="stw_ns")
        n = self.names(doc)
        self.assertEqual((n.phases, n.pauses), (["mark_ns", "roots_ns"], ["stw_ns"]))

    def test_name_dimensions(self):
        results = bd.results_module()
        p = results.parse_name("GoroutineSpin/frames-serial/n:1000/workers:2/compact/"
                               "mutators:2/reuse:clean/manual_time")
        self.assertEqual((p["placement"], p["dims"]),
                         ("compact", (("mutators", "2"), ("reuse", "clean"))))
        self.assertEqual(results.parse_name("I/s/n:5/workers:1/compact")["dims"], ())
        b = results.Bench("x", [], ident=p)
        self.assertEqual(b.mutators, 2)
        self.assertEqual(b.group, (1000, 2, "compact", (("mutators", "2"), ("reuse", "clean"))))
        self.assertEqual(results.Bench("y", [], ident=results.parse_name(
            "I/s/n:5/workers:1/compact")).mutators, 1)


class LoadJsonTest(unittest.TestCase):
    """results.load_json: every proper prefix of a document is reported as truncated."""

    def test_every_prefix_is_truncated(self):
        results = bd.results_module()
        d = bd.make_doc(reps=1, ns=(1000,), workers=(1,), strategies=("frames-serial",),
                        workloads=("W",))
        text = json.dumps(d, indent=1)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "cut.json")
            for i in range(1, len(text)):
                with open(path, "w") as f:
                    f.write(text[:i])
                with self.assertRaises(results.InputError, msg=f"prefix {i}") as cm:
                    results.load_json(path)
                self.assertRegex(cm.exception.problem, "^(truncated JSON|empty file)",
                                 f"prefix of {i} chars: {text[i - 20:i]!r}")


if __name__ == "__main__":
    unittest.main()
