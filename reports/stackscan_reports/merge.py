"""merge: several stackscan-bench JSON files of ONE machine into one file.

Usage: merge OUT.json IN.json...

ci/bench runs the seed table and the scaling sweep as two bench runs and
stores them as one result (and one baseline). The inputs must come from one
machine (results.machine_of); the first one's context is kept, entries are
concatenated, so runs of one name in several inputs become repetitions of
one benchmark. Exit status: 0; 2 bad input (one line on stderr).
"""

import json
import sys

from . import results


def merge(paths):
    docs = [results.load_doc(p) for p in paths]
    first = docs[0].get("context", {})
    for p, d in zip(paths[1:], docs[1:]):
        if results.machine_of(d.get("context", {})) != results.machine_of(first):
            raise results.InputError(p, f"from another machine than {paths[0]}: not merged")
    return {"context": first, "benchmarks": [b for d in docs for b in d["benchmarks"]]}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print("usage: merge OUT.json IN.json...", file=sys.stderr)
        return 2
    try:
        doc = merge(argv[1:])
    except results.InputError as e:
        results.die("merge", e)
    with open(argv[0], "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
