"""stackscan_reports: stackscan-bench JSON (+ perf data) -> Markdown, SVG, verdicts.

Modules (each tool's docstring is its manual; `python3 -m stackscan_reports
TOOL --help` or the wrapper scripts reports/TOOL run them):

  results      loading, validation, names, machines (every tool reads through it)
  report       the Markdown report and its figures
  compare      the baseline gate (exit 0 pass / 1 regression / 2 unusable input)
  perfrecord   perf record of a command, whole process or inside collections only
  perfsummary  top symbols of a profile as Markdown
  gobench      Go's own BenchmarkGoroutine* runs, for the Go column
  machine      /proc/stat and load sampling around a command (noise judgement)
  benchfilter  --benchmark_filter expressions that re-run named benchmarks
  gbtools      Debian's Google Benchmark tooling (gbench.report)

Run with Debian's /usr/bin/python3 and its python3-numpy, -scipy and
-matplotlib packages; nothing is installed with pip.
"""
