"""Tests of reports/compare on crafted Google Benchmark JSON (see benchdata.py)."""

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
        self.assertIn("+50", next(ln for ln in regressions if ln.startswith(SELECT_FP)))
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
        self.assertIn("deterministic counters only", r.stdout)
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
