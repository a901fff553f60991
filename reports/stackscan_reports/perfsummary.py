"""perfsummary: the top symbols of a perf profile, by self time, as Markdown.

Usage: perfsummary PERF.data [-n 10]

Runs `perf report --stdio --no-children --sort symbol -n -g none -i PERF.data`
and prints a Markdown table (rank, symbol, self %, samples) of the N symbols
with the most self time. The input may also be a text file holding such
`perf report --stdio` output (with or without -n and call graphs): anything
that does not start with perf.data's magic is parsed as that text.

Importable (from stackscan_reports import perfsummary):
  perf_table(path, top=10) -> str        caption line + Markdown table
  summarize(path)         -> Summary     runs perf if needed, then parses
  parse_report(text)      -> Summary     parses perf report --stdio text
  markdown(summary, top=10) -> str       the table (no trailing newline)
Summary has .rows [Row(symbol, kernel, percent, samples)], .event, .samples.

Exit status: 0; 2 bad input (missing file, not a profile, no samples);
3 perf is not installed or `perf report` failed (no profile).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from . import results

EXIT_NO_PERF = 3
PERF_MAGIC = b"PERFILE2"
REPORT_ARGS = ["report", "--stdio", "--no-children", "--sort", "symbol", "-n",
               "-g", "none", "-i"]


class PerfError(Exception):
    """perf is missing or failed; the message is one line."""


@dataclass
class Row:
    symbol: str
    kernel: bool
    percent: float
    samples: int = None


@dataclass
class Summary:
    rows: list = field(default_factory=list)  # by self time, descending
    event: str = None
    samples: int = None                        # total, when perf printed a count


def run_perf_report(path):
    """Returns `perf report --stdio` text for a perf.data file; PerfError on failure."""
    perf = shutil.which("perf")
    if perf is None:
        raise PerfError("perf not found on PATH")
    proc = subprocess.run([perf] + REPORT_ARGS + [path], capture_output=True, text=True,
                          errors="replace", stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()] or ["(no message)"]
        raise PerfError(f"perf report failed on {path}: {lines[0].strip()}")
    return proc.stdout


def _columns(header, dots):
    """{column name: (start, end)} from perf's header line and its '....' rule."""
    spans = [m.span() for m in re.finditer(r"\.+", dots)]
    cols = {}
    for i, (s, e) in enumerate(spans):
        end = spans[i + 1][0] if i + 1 < len(spans) else None
        cols[header[s:e].strip().lower()] = (s, end)
    return cols


_ROW_FALLBACK = re.compile(r"^\s*([\d.]+)%\s+(?:(\d+)\s+)?(\[.\]\s+\S.*?)\s*(?:-\s+-\s*)?$")


def _row(percent, samples, sym):
    m = re.match(r"\[(.)\]\s+(.*)", sym.strip())
    kernel, name = (m.group(1) == "k", m.group(2).strip()) if m else (False, sym.strip())
    return Row(name, kernel, float(percent), int(samples) if samples else None)


def _parse_line(line, cols):
    """A Row from one table line, or None for call-graph and other lines."""
    if cols and "overhead" in cols and "symbol" in cols:
        def col(name):
            s, e = cols.get(name, (0, 0))
            return line[s:e].strip()
        pct = col("overhead").rstrip("%")
        smp = col("samples")
        if re.fullmatch(r"[\d.]+", pct) and (not smp or smp.isdigit()) and col("symbol"):
            return _row(pct, smp, col("symbol"))
        return None
    m = _ROW_FALLBACK.match(line)
    return _row(*m.groups()) if m else None


def parse_report(text):
    """Parses `perf report --stdio` text into a Summary (rows sorted by self %)."""
    out, cols, lines = Summary(), None, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#"):
            m = re.match(r"# Samples: \S+\s+of event '([^']*)'", line)
            if m:
                out.event = m.group(1)
            if line.startswith("# Overhead") and i + 1 < len(lines):
                cols = _columns(line, lines[i + 1])
            continue
        row = _parse_line(line, cols) if line.strip() else None
        if row is not None:
            out.rows.append(row)
    out.rows.sort(key=lambda r: (-r.percent, -(r.samples or 0), r.symbol))
    if out.rows and all(r.samples is not None for r in out.rows):
        out.samples = sum(r.samples for r in out.rows)
    return out


def summarize(path):
    """Summary of a perf.data file or of saved `perf report --stdio` text.

    Raises results.InputError (missing / not a profile / no samples) or
    PerfError (perf missing or failing).
    """
    if not os.path.isfile(path):
        raise results.InputError(path, "no such file")
    with open(path, "rb") as f:
        magic = f.read(len(PERF_MAGIC))
    text = run_perf_report(path) if magic == PERF_MAGIC else results.read_text(path)
    s = parse_report(text)
    if not s.rows:
        raise results.InputError(path, "no samples (or not perf report --stdio output)")
    return s


def markdown(summary, top=10):
    """The top rows as a Markdown table."""
    lines = ["| # | symbol | self % | samples |", "|--:|---|--:|--:|"]
    for i, r in enumerate(summary.rows[:top], 1):
        sym = "`" + r.symbol.replace("`", "'").replace("|", "\\|") + "`"
        if r.kernel:
            sym += " (kernel)"
        smp = "-" if r.samples is None else str(r.samples)
        lines.append(f"| {i} | {sym} | {r.percent:.2f} | {smp} |")
    return "\n".join(lines)


def caption(summary, top=10):
    """One line: event, total samples, how many rows are shown."""
    ev = summary.event or "unknown event"
    total = f"{summary.samples} samples" if summary.samples is not None else "samples: ?"
    return (f"{ev}, {total}; top {min(top, len(summary.rows))} of "
            f"{len(summary.rows)} symbols by self time")


def user_only(summary):
    """The summary without its kernel rows, and one line on what they held."""
    kern = [r for r in summary.rows if r.kernel]
    rest = Summary([r for r in summary.rows if not r.kernel], summary.event, summary.samples)
    if not kern:
        return rest, "The kernel: no samples."
    top = kern[0].symbol.replace("`", "'")
    return rest, (f"The kernel: {sum(r.percent for r in kern):.2f}% of the samples, in "
                  f"{len(kern)} symbols (the largest `{top}`, {kern[0].percent:.2f}%), left "
                  "out of the table.")


def perf_table(path, top=10, user=False):
    """caption + blank line + Markdown table for one profile (raises as summarize).
    user: the table lists user-space symbols only, and a line gives the
    kernel's share."""
    s = summarize(path)
    if not user:
        return caption(s, top) + "\n\n" + markdown(s, top)
    rest, kline = user_only(s)
    if not rest.rows:
        return caption(s, top) + "\n\n" + kline
    return (caption(rest, top).replace(" symbols by self time", " user-space symbols by self time")
            + "\n\n" + kline + "\n\n" + markdown(rest, top))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="perfsummary", description=__doc__.split("\n")[0])
    ap.add_argument("perf_data")
    ap.add_argument("-n", type=int, default=10, help="symbols to show (default 10)")
    args = ap.parse_args(argv)
    try:
        print(perf_table(args.perf_data, args.n))
    except results.InputError as e:
        results.die("perfsummary", e)
    except PerfError as e:
        print(f"perfsummary: {e}", file=sys.stderr)
        return EXIT_NO_PERF
    return 0


if __name__ == "__main__":
    sys.exit(main())
