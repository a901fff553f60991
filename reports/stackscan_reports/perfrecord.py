"""perfrecord: run a command under perf record, or say why there is no profile.

Usage: perfrecord [--gc-only] OUT.data -- command [args...]

Runs `perf record -e cpu-clock -g --call-graph fp -o OUT.data -- command...`
(cpu-clock: this VM has no hardware counters; frame-pointer call graphs:
the project builds with -fno-omit-frame-pointer).

--gc-only samples inside collections only: perf starts with its events off
(-D -1) and listens on a control pipe (--control=fd:CTL,ACK); the command
gets the other ends as STACKSCAN_PERF_CTL_FD and STACKSCAN_PERF_ACK_FD, and
stackscan-bench writes enable / disable around each timed gc() and waits
for perf's ack (harness/perfctl.h). The profile then holds the collector's
own functions, not the wake-ups between cycles or the helpers' idle spins.
A command that ignores the variables gives an empty profile.

Before that it probes `perf record -e cpu-clock -- true`. When perf is not
installed or not permitted (perf_event_paranoid, containers), it prints one
line "perfrecord: no profile: <reason>" on stderr, does NOT run the command,
and exits EXIT_NO_PERF (3): ci/bench treats that as "no profile" and runs
the command without perf if it wants the numbers.

Otherwise the exit status is the command's own (perf record passes it
through), so a command that itself exits 3 is indistinguishable; the stackscan
tools do not use 3 for anything but "no perf".
"""

import os
import shutil
import subprocess
import sys
import tempfile

EXIT_NO_PERF = 3
EXIT_USAGE = 2
RECORD = ["record", "-e", "cpu-clock", "-g", "--call-graph", "fp"]


def probe(perf):
    """None when `perf record` works here, else a one-line reason."""
    fd, tmp = tempfile.mkstemp(prefix="perfrecord-probe-", suffix=".data")
    os.close(fd)
    try:
        proc = subprocess.run([perf, "record", "-e", "cpu-clock", "-q", "-o", tmp, "--",
                               "true"], capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL)
    except OSError as e:
        return f"cannot run {perf}: {e.strerror}"
    finally:
        os.unlink(tmp)
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    return f"perf record is not permitted or failed: {lines[0] if lines else 'no message'}"


def control_pipes():
    """(perf's args, the command's env, fds to pass, fds to close afterwards)."""
    ctl_r, ctl_w = os.pipe()
    ack_r, ack_w = os.pipe()
    args = ["-D", "-1", f"--control=fd:{ctl_r},{ack_w}"]
    env = dict(os.environ, STACKSCAN_PERF_CTL_FD=str(ctl_w), STACKSCAN_PERF_ACK_FD=str(ack_r))
    fds = (ctl_r, ctl_w, ack_r, ack_w)
    return args, env, fds


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    gc_only = bool(argv) and argv[0] == "--gc-only"
    argv = argv[1:] if gc_only else argv
    if len(argv) < 3 or argv[1] != "--":
        print("usage: perfrecord [--gc-only] OUT.data -- command [args...]", file=sys.stderr)
        return EXIT_USAGE
    out, cmd = argv[0], argv[2:]
    perf = shutil.which("perf")
    reason = "perf not found on PATH" if perf is None else probe(perf)
    if reason is not None:
        print(f"perfrecord: no profile: {reason}", file=sys.stderr)
        return EXIT_NO_PERF
    extra, env, fds = control_pipes() if gc_only else ([], None, ())
    try:
        rc = subprocess.run([perf] + RECORD + extra + ["-o", out, "--"] + cmd, env=env,
                            pass_fds=fds).returncode
    finally:
        for fd in fds:
            os.close(fd)
    return 128 - rc if rc < 0 else rc  # killed by a signal: the shell's convention

if __name__ == "__main__":
    sys.exit(main())
