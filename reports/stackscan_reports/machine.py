"""machine: how busy the machine was while a command ran, for compare's noise judgement.

Usage: machine OUT.json -- command [args...]

Runs the command and writes OUT.json with what /proc/stat and /proc/loadavg
say about the interval (the command's own CPU time is taken out, so its
helper threads do not count against it):

  elapsed_s      wall time of the command
  pus            online CPUs (os.cpu_count())
  steal          share of all CPU time the hypervisor gave to other guests
                 (/proc/stat's steal column over every column's sum)
  other_busy     share of all CPU time other processes used: busy time
                 (user+nice+system+irq+softirq+steal... minus idle/iowait)
                 minus the command's own user+system time
  load_avg_start, load_avg_end    /proc/loadavg's 1, 5, 15 minute figures

compare --machine-load OUT.json holds these against NOISE_BOUNDS (there,
with how they were measured). Exit status: the command's; 2 usage.
"""

import json
import os
import resource
import subprocess
import sys
import time

STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(path="/proc/stat"):
    """The aggregate "cpu" line of /proc/stat as {field: seconds}."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "cpu":
                vals = [int(x) / tick for x in parts[1:1 + len(STAT_FIELDS)]]
                return dict(zip(STAT_FIELDS, vals + [0.0] * (len(STAT_FIELDS) - len(vals))))
    raise OSError(f"{path}: no aggregate cpu line")


def load_avg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def interval(before, after, own_cpu_s, elapsed_s, load0, load1):
    """The OUT.json record for one interval (before/after: cpu_times())."""
    d = {k: after[k] - before[k] for k in STAT_FIELDS}
    total = sum(d.values()) or 1e-9
    busy = total - d["idle"] - d["iowait"]
    return {"elapsed_s": round(elapsed_s, 3), "pus": os.cpu_count(),
            "steal": round(d["steal"] / total, 4),
            "other_busy": round(max(0.0, busy - d["steal"] - own_cpu_s) / total, 4),
            "load_avg_start": load0, "load_avg_end": load1}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--":
        print("usage: machine OUT.json -- command [args...]", file=sys.stderr)
        return 2
    out, cmd = argv[0], argv[2:]
    load0, before, t0 = load_avg(), cpu_times(), time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        rc = subprocess.run(cmd).returncode
    except OSError as e:
        print(f"machine: cannot run {cmd[0]}: {e.strerror}", file=sys.stderr)
        return 2
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    rec = interval(before, cpu_times(), own, time.monotonic() - t0, load0, load_avg())
    with open(out, "w") as f:
        json.dump(rec, f, indent=1)
        f.write("\n")
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
