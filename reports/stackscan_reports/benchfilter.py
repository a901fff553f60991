"""benchfilter: --benchmark_filter expressions that re-run exactly the named benchmarks.

Usage: benchfilter NAMES.txt RUN.json

NAMES.txt holds benchmark names, one per line (compare --list-regressions
writes it). For the ones that RUN.json holds (its run names), benchfilter
prints one or more extended regular expressions, one per line, each of the
form ^(NAME|NAME...)$ with every name's metacharacters escaped, so that
`stackscan-bench <RUN's own flags> --benchmark_filter=EXPR` runs those
benchmarks and no other. Nothing is printed when RUN.json holds none of
them; names that RUN.json lacks are left to the other runs (ci/bench runs
the seed table and the sweep as two). Exit status: 0; 2 bad input (one
line on stderr) or usage.

Google Benchmark 1.7 compiles the filter as a POSIX extended expression
(std::regex, extended): a backslash before an ordinary character such as
'/' or ':' is an error there ("Invalid escape in regular expression"), so
only ERE_SPECIAL is escaped; '/', ':', '-', ']' and '}' are ordinary.
The bench refuses a filter whose estimated size is over 1000 atoms
(harness/gbflags.c, FILTER_MAX_NODES; an escaped character or a '|' counts
as one, so the length bounds it): names are split over expressions of at
most MAX_CHARS characters, each a run of its own.
"""

import sys

from . import results

ERE_SPECIAL = ".[\\()*+?{|^$"
MAX_CHARS = 900  # under the bench's 1000, harness/gbflags.c


def escape(name):
    """name as an ERE that matches it literally."""
    return "".join("\\" + c if c in ERE_SPECIAL else c for c in name)


def filters(names, max_chars=MAX_CHARS):
    """Anchored alternations matching exactly names, each at most max_chars
    long (a single name longer than that gets one of its own)."""
    out, group = [], []
    for n in dict.fromkeys(names):
        e = escape(n)
        if group and len("^()$") + len("|".join(group + [e])) > max_chars:
            out.append(group)
            group = []
        group.append(e)
    if group:
        out.append(group)
    return ["^(" + "|".join(g) + ")$" for g in out]


def read_names(path):
    """The non-empty lines of path (an empty file is no names, not an error)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [ln.strip() for ln in f if ln.strip()]
    except FileNotFoundError:
        raise results.InputError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise results.InputError(path, f"cannot read: {getattr(e, 'strerror', e)}") from None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0].startswith("-"):
        print("usage: benchfilter NAMES.txt RUN.json", file=sys.stderr)
        return 2
    try:
        wanted = read_names(argv[0])
        held = {b.name for b in results.load([argv[1]])[1]}
    except results.InputError as e:
        results.die("benchfilter", e)
    for expr in filters([n for n in wanted if n in held]):
        print(expr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
