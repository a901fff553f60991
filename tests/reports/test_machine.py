"""Tests of reports/machine: the load record compare judges noise by."""

import json
import os
import tempfile
import unittest

import benchdata as bd

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 0.5: pass\n"


class MachineRecordTest(unittest.TestCase):
    def test_record_and_status(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "load.json")
            r = bd.run_tool("machine", out, "--", bd.PYTHON, "-c", BUSY + "raise SystemExit(3)")
            self.assertEqual(r.returncode, 3, r.stderr)
            with open(out) as f:
                rec = json.load(f)
            self.assertGreaterEqual(rec["elapsed_s"], 0.5)
            for k in ("steal", "other_busy"):
                self.assertTrue(0.0 <= rec[k] <= 1.0, rec)
            self.assertEqual(len(rec["load_avg_start"]), 3)

    def test_own_cpu_is_not_other_load(self):
        # The command's own busy loop is its CPU time, not another process's:
        # other_busy stays below the whole of one PU's share.
        machine = bd.import_tool("machine")
        before = {k: 0.0 for k in machine.STAT_FIELDS}
        after = dict(before, user=2.0, idle=2.0)  # 2 PUs x 2 s: one busy, one idle
        rec = machine.interval(before, after, 2.0, 2.0, [0, 0, 0], [0, 0, 0])
        self.assertEqual(rec["other_busy"], 0.0)
        rec = machine.interval(before, after, 1.0, 2.0, [0, 0, 0], [0, 0, 0])
        self.assertEqual(rec["other_busy"], 0.25)

    def test_usage(self):
        self.assertEqual(bd.run_tool("machine", "x.json").returncode, 2)


if __name__ == "__main__":
    unittest.main()
