#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""How busy the machine is apart from the benchmark: every process's CPU
time over an interval; prints the machine's busy share (all CPUs) and that
of the processes not in the PIDs given (the benchmark's own), busiest
first.  Processes that end inside the interval are not seen.

  busy.py SECS [PID...]        sample over SECS seconds
  busy.py snap FILE            remember now in FILE
  busy.py since FILE [PID...]  from FILE's moment to now
  ->  busy_pct=X other_pct=Y top=comm:pct,comm:pct
"""
import json
import os
import sys
import time


def snap():
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            s = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        f = s[s.rindex(")") + 2:].split()
        out[int(p)] = (comm, int(f[11]) + int(f[12]), int(f[19]))	# starttime
    return out


def cpu_total():
    f = open("/proc/stat").readline().split()[1:]
    v = [int(x) for x in f]
    return sum(v), v[3] + v[4]		# all, idle + iowait


def main():
    if sys.argv[1] == "snap":
        with open(sys.argv[2], "w") as f:
            json.dump({"t": time.monotonic(), "procs": snap(), "cpu": cpu_total()}, f)
        return
    if sys.argv[1] == "since":
        with open(sys.argv[2]) as f:
            j = json.load(f)
        a = {int(k): v for k, v in j["procs"].items()}
        t0, i0 = j["cpu"]
        secs = time.monotonic() - j["t"]
        ours = {int(p) for p in sys.argv[3:]}
    else:
        secs = float(sys.argv[1])
        ours = {int(p) for p in sys.argv[2:]}
        a, (t0, i0) = snap(), cpu_total()
        time.sleep(secs)
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count()
    b, (t1, i1) = snap(), cpu_total()
    busy = 100.0 * (1 - (i1 - i0) / max(t1 - t0, 1))
    other = []
    for pid, (comm, t, start) in b.items():
        if pid in ours or pid == os.getpid():
            continue
        # a process started meanwhile: all its time is in the interval
        d = t - a[pid][1] if pid in a and a[pid][2] == start else t
        if d > 0:
            other.append((d, comm))
    other.sort(reverse=True)
    tot = sum(d for d, _ in other)
    pct = lambda d: 100.0 * d / hz / secs / ncpu
    top = ",".join(f"{c}:{pct(d):.0f}" for d, c in other[:3]) or "-"
    print(f"busy_pct={busy:.1f} other_pct={pct(tot):.1f} top={top}")


main()
