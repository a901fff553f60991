"""gobench: Go's own BenchmarkGoroutine{Select,Blocking,ForRange,Idle}, for the Go column.

Usage: gobench OUT.txt [--n 1000] [--procs 1,2] [--count 5] [--benchtime T]

Runs, in Go's runtime package (malloc_test.go, whose -n flag is the number
of parked goroutines):

  go test -run NONE -bench 'BenchmarkGoroutine(Select|Blocking|ForRange|Idle)$'
          -count COUNT -cpu PROCS [-benchtime T] runtime -args -n=N

and writes its output to OUT.txt, the file `report --go OUT.txt --go-n N`
reads. -cpu PROCS runs every benchmark at each GOMAXPROCS of the list (Go
prints it as the -P suffix, none for 1). Go's P threads run its goroutines
and its collector's mark workers alike, so the report holds GOMAXPROCS=P
against our runs at mutators = workers = P; the default, 1 and 2, matches
ci/bench's runs at P = 1 (the sweep's one-worker rows) and P = 2 (the seed
table's workloads at --mutators=2 --workers=2). Exit status: 0; 1 go test
failed (its last lines on stderr); 2 usage; 3 Go is not installed
(ci/bootstrap --with-go installs it).
"""

import argparse
import shutil
import subprocess
import sys

EXIT_NO_GO = 3
BENCH_RE = "BenchmarkGoroutine(Select|Blocking|ForRange|Idle)$"
DEFAULT_PROCS = "1,2"


def command(go, n, procs, count, benchtime=None):
    """go test's argv; procs is a list of GOMAXPROCS values."""
    cmd = [go, "test", "-run", "NONE", "-bench", BENCH_RE, "-count", str(count), "-cpu",
           ",".join(str(p) for p in procs)]
    if benchtime:
        cmd += ["-benchtime", benchtime]
    return cmd + ["runtime", "-args", f"-n={n}"]


def procs_list(text):
    """ "1,2" -> [1, 2]: positive GOMAXPROCS values, each once (argparse type)."""
    items = text.split(",")
    if not all(x.isdigit() and int(x) >= 1 for x in items):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a comma-separated list of positive GOMAXPROCS values")
    procs = [int(x) for x in items]
    if len(set(procs)) != len(procs):
        raise argparse.ArgumentTypeError(f"'{text}' names a GOMAXPROCS twice")
    return procs


def main(argv=None):
    ap = argparse.ArgumentParser(prog="gobench", description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=1000, help="parked goroutines (default 1000)")
    ap.add_argument("--procs", type=procs_list, default=DEFAULT_PROCS,
                    help="GOMAXPROCS values, comma-separated: ours at mutators = workers = P "
                         f"is each one's peer (default {DEFAULT_PROCS})")
    ap.add_argument("--count", type=int, default=5, help="runs of each benchmark (default 5)")
    ap.add_argument("--benchtime", help="go test -benchtime (e.g. 3x)")
    args = ap.parse_args(argv)
    if min(args.n, args.count) < 1:
        ap.error("--n and --count must be positive")
    go = shutil.which("go")
    if go is None:
        print("gobench: go not found on PATH (ci/bootstrap --with-go installs golang-go)",
              file=sys.stderr)
        return EXIT_NO_GO
    with open(args.out, "w") as f:
        rc = subprocess.run(command(go, args.n, args.procs, args.count, args.benchtime),
                            stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        with open(args.out, errors="replace") as f:
            tail = f.read().splitlines()[-5:]
        print("gobench: go test failed:\n" + "\n".join(tail), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
