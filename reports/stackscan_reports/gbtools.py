"""gbtools: Google Benchmark's own compare tooling, from Debian's libbenchmark-tools.

Debian installs the `gbench` package (report.py: get_difference_report,
calculate_geomean, calc_utest) under /usr/share/benchmark, which is not on
Python's path. report() finds it there with the standard path finder and
imports it once under its own name; None when the package is not installed
(callers then fall back to scipy, or say so).
"""

import importlib
import importlib.machinery
import importlib.util
import sys

GBENCH_DIR = "/usr/share/benchmark"
_report = False  # not looked up yet


def report():
    """The gbench.report module, or None when libbenchmark-tools is missing."""
    global _report
    if _report is False:
        _report = _import_report()
    return _report


def _import_report():
    if "gbench" not in sys.modules:
        spec = importlib.machinery.PathFinder.find_spec("gbench", [GBENCH_DIR])
        if spec is None:
            return None
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["gbench"] = pkg
        try:
            spec.loader.exec_module(pkg)
        except ImportError:
            del sys.modules["gbench"]
            return None
    try:
        return importlib.import_module("gbench.report")
    except ImportError:
        return None
