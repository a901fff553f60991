"""python3 -m stackscan_reports TOOL [args...]: runs one tool of the package."""
import importlib
import sys

TOOLS = ("report", "compare", "perfrecord", "perfsummary", "machine", "merge", "gobench",
         "benchfilter")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in TOOLS:
        print("usage: python3 -m stackscan_reports {" + ",".join(TOOLS) + "} [args...]",
              file=sys.stderr)
        return 2
    return importlib.import_module(f"stackscan_reports.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
