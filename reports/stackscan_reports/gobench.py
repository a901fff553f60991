"""gobench: Go's own BenchmarkGoroutine{Select,Blocking,ForRange,Idle}, for the Go column.

Usage: gobench OUT.txt [--n 1000] [--procs W] [--count 5] [--benchtime T]

Runs, in Go's runtime package (malloc_test.go, whose -n flag is the number
of parked goroutines):

  go test -run NONE -bench 'BenchmarkGoroutine(Select|Blocking|ForRange|Idle)$'
          -count COUNT -cpu W [-benchtime T] runtime -args -n=N

and writes its output to OUT.txt, the file `report --go OUT.txt --go-n N`
reads. -cpu W sets GOMAXPROCS to W (Go prints it as the -W suffix), matched
to our workers. Exit status: 0; 1 go test failed (its last lines on
stderr); 2 usage; 3 Go is not installed (ci/bootstrap --with-go installs it).
"""

import argparse
import os
import shutil
import subprocess
import sys

EXIT_NO_GO = 3
BENCH_RE = "BenchmarkGoroutine(Select|Blocking|ForRange|Idle)$"


def command(go, n, procs, count, benchtime=None):
    cmd = [go, "test", "-run", "NONE", "-bench", BENCH_RE, "-count", str(count), "-cpu",
           str(procs)]
    if benchtime:
        cmd += ["-benchtime", benchtime]
    return cmd + ["runtime", "-args", f"-n={n}"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="gobench", description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=1000, help="parked goroutines (default 1000)")
    ap.add_argument("--procs", type=int, default=os.cpu_count(),
                    help="GOMAXPROCS, our workers (default: the PU count)")
    ap.add_argument("--count", type=int, default=5, help="runs of each benchmark (default 5)")
    ap.add_argument("--benchtime", help="go test -benchtime (e.g. 3x)")
    args = ap.parse_args(argv)
    if min(args.n, args.procs, args.count) < 1:
        ap.error("--n, --procs and --count must be positive")
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
