#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""bench/compare.sh's report: results.tsv, idle.tsv and pingpong.txt of
one run into results.md (tables, ratios, targets) plus the data files and
gnuplot script for the plots.  Nothing here is measured: every number comes
from the run's files."""
import argparse
import csv
import os
import re

SYSTEMS = ["spry", "http", "sidecar", "unix"]
NAMES = {
    "spry": "spry (SK_MSG descriptors, shared pool)",
    "http": "HTTP chain (keep-alive TCP)",
    "sidecar": "HTTP chain + nginx sidecars",
    "unix": "unix-socket chain (copy per hop)",
}
SHORT = {"spry": "spry", "http": "HTTP", "sidecar": "sidecar", "unix": "unix"}


def hop_rounds(path, set_name):
    """Per-hop p50 of each round of a hop-cost set (pairs of 1- and 8-hop
    points in file order): (p50(8) - p50(1)) / 7."""
    one, out = None, []
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["set"] != set_name:
                continue
            if int(r["hops"]) == 1:
                one = float(r["p50_us"])
            elif int(r["hops"]) == 8 and one is not None:
                out.append((float(r["p50_us"]) - one) / 7)
                one = None
    return out


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else None


def load(path):
    """Rows by (system, hops, size, conc); a point measured in several
    rounds (same set) keeps its median round by requests/s, and every
    round's requests/s in "rounds"."""
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            sys = r["system"] + ("-other" if r["set"].endswith("-other") else "")
            key = (sys, int(r["hops"]), int(r["size"]), int(r["conc"]))
            row = {k: (float(v) if k not in ("set", "system") else v)
                   for k, v in r.items()}
            prev = rows.get(key)
            if prev is not None and prev["set"] == row["set"]:
                row["all"] = prev["all"] + [row]
            else:
                row["all"] = [row]
            rows[key] = row
    for key, row in rows.items():
        runs = sorted(row["all"], key=lambda x: x["rps"])
        med = dict(runs[len(runs) // 2])
        med["rounds"] = [x["rps"] for x in row["all"]]
        rows[key] = med
    return rows


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def rfmt(v):
    return "-" if v is None else f"{v:.2f}x"


def size_name(s):
    return f"{s // 1024} KiB" if s >= 1024 else f"{s} B"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--secs", required=True)
    ap.add_argument("--wall", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--background", default="")
    ap.add_argument("--steal", default="",
                    help="%% of CPU time the hypervisor stole during the run")
    ap.add_argument("--wrk-cpus", default="",
                    help="the CPUs wrk was pinned to ('' = not pinned)")
    ap.add_argument("--placement", default="",
                    help="the CPUs spry was placed on ('' = not placed)")
    a = ap.parse_args()
    d = a.dir
    R = load(os.path.join(d, "results.tsv"))

    def get(sys, n, size, c, k):
        r = R.get((sys, n, size, c))
        return None if r is None else r[k]

    idle = []
    with open(os.path.join(d, "idle.tsv")) as f:
        idle = list(csv.DictReader(f, delimiter="\t"))
    pp = {}
    try:
        for line in open(os.path.join(d, "pingpong.txt")):
            kv = dict(re.findall(r"(\w+)=([\w.-]+)", line))
            if "mode" in kv:
                pp[kv["mode"] if kv.get("ring", "2") == "2" else
                   f"ring{kv['ring']}-{kv['mode']}"] = kv
    except OSError:
        pass

    out = []
    w = out.append
    w("# spry against the alternatives")
    w("")
    w(f"Machine: {a.machine}. Taken {a.date} by `make bench` (bench/compare.sh); "
      "every number below is this machine's, from this one run. Load generator: "
      "wrk (1 thread) on the same machine, "
      + (f"pinned to CPU {a.wrk_cpus} (the CPUs spry is not placed on) for every "
         "system alike; the systems other than spry run on all CPUs, so they "
         "share CPU " + a.wrk_cpus + " with it."
         if a.wrk_cpus else
         "where the scheduler puts it, so it competes for the same CPUs as the "
         "system under test, the same way for every system."))
    w("")
    bg = [float(x) for x in re.findall(r"other_pct=([\d.]+)", a.background)]
    w(f"Other processes on the machine (CPU share of all CPUs over 2 s, "
      f"bench/busy.py): {a.background or 'not sampled'}.")
    if a.steal:
        w("")
        w(f"Steal time (the hypervisor running something else on this VM's "
          f"CPUs) during the measurements: {a.steal}% of CPU time. On this VM "
          "requests/s move by up to a fifth from one run to the next; the "
          "systems take turns at every point, so compare the ratios.")
    if bg and max(bg) > 5:
        w("")
        w(f"**Warning: other processes used up to {max(bg):.0f}% of the machine "
          "around this run; absolute numbers are lower than on a quiet machine "
          "(every system measured under the same conditions, point by point).**")
    w("")
    w(f"Matrix ({a.secs} s per point after 1 s of warm-up; the systems take turns "
      "at every point): 4 hops x 1 KiB at concurrency 1, 32, 256; chain length "
      "1, 2, 4, 8 at 1 KiB and concurrency 32 and 1; payload 64 B, 1 KiB, "
      "16 KiB, 64 KiB at 4 hops and concurrency 32; spry's hop cost also at "
      "64 B; 4 hops x 1 KiB at concurrency 32 again with each system placed "
      "the other way (below). Same handlers everywhere (examples/transforms.h: "
      "upper on even hops, reverse on odd), one process per function. "
      f"Measuring took {a.wall} s.")
    w("")
    w("Systems:")
    w("")
    w("- **spry**: wrk -> spryd's HTTP front -> N functions by SK_MSG "
      "descriptors -> spryd; the payload is written once into the chain's pool. "
      + (f"Placed (docs/DESIGN.md, \"Placement\"): spryd (`--cpus {a.placement}`) "
         f"and every chain (`cpus {a.placement}`) on CPU {a.placement}, so no hop "
         "wakes another CPU; wrk and the kernel have the other CPUs."
         if a.placement else "Not placed: where the scheduler puts it."))
    w("- **HTTP**: N HTTP/1.1 servers (bench/httpchain.c, epoll, keep-alive, "
      "pooled upstream connections); function i POSTs to i+1 and relays the "
      "answer back.")
    w("- **sidecar**: the same, with an nginx reverse proxy (1 worker, upstream "
      "keepalive, HTTP/1.1) in front of every function: wrk -> nginx 1 -> f1 -> "
      "nginx 2 -> f2 ...")
    w("- **unix**: an HTTP front and N processes on unix stream sockets "
      "(bench/unixchain.c), the payload read and written at every hop; the "
      "last function writes back to the front.")
    w("")
    w("CPU per request: the CPU time of every thread of every process of the "
      "system (spry: spryd + functions; sidecar: functions + nginx masters and "
      "workers), from /proc/PID/task/TID/schedstat before and after the point, "
      "divided by the requests; it includes kernel time (TCP, SK_MSG, "
      "softirq work done in those processes' context) and excludes wrk. "
      "Runs/request: how many times those threads were scheduled in, per "
      "request (wake-ups).")
    w("")

    # --- headline
    w("## 4 hops, 1 KiB, by concurrency")
    w("")
    w("| system | conc | requests/s | p50 (us) | p99 (us) | CPU us/req | runs/req | errors | others' CPU % |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in (1, 32, 256):
        for s in SYSTEMS:
            r = R.get((s, 4, 1024, c))
            if not r:
                continue
            w(f"| {NAMES[s]} | {c} | {fmt(r['rps'])} | {fmt(r['p50_us'])} | "
              f"{fmt(r['p99_us'])} | {fmt(r['cpu_us_req'], 1)} | "
              f"{fmt(r['runs_req'], 1)} | {int(r['errors'])} | {fmt(r['other_pct'], 0)} |")
    w("")
    rounds = [(s, R[(s, 4, 1024, 32)]["rounds"]) for s in SYSTEMS
              if (s, 4, 1024, 32) in R and len(R[(s, 4, 1024, 32)]["rounds"]) > 1]
    if rounds:
        w("Concurrency 32 was measured in rounds (the systems taking turns); "
          "each row is the system's median round. Requests/s of the rounds: "
          + "; ".join(f"{SHORT[s]} " + ", ".join(fmt(x) for x in v) for s, v in rounds)
          + ".")
        w("")
    w("Ratios spry / alternative (requests/s: higher is better for spry; "
      "latency and CPU: lower is better for spry):")
    w("")
    w("| vs | conc | requests/s | p50 | p99 | CPU/req |")
    w("|---|---:|---:|---:|---:|---:|")
    for c in (1, 32, 256):
        for s in SYSTEMS[1:]:
            w(f"| {SHORT[s]} | {c} | "
              + " | ".join(rfmt(ratio(get("spry", 4, 1024, c, k), get(s, 4, 1024, c, k)))
                           for k in ("rps", "p50_us", "p99_us", "cpu_us_req")) + " |")
    w("")

    # --- chain length
    for c in (32, 1):
        w(f"## Chain length, 1 KiB, concurrency {c}")
        w("")
        w("| hops | " + " | ".join(f"{SHORT[s]} req/s" for s in SYSTEMS) + " | "
          + " | ".join(f"{SHORT[s]} p50/p99 (us)" for s in SYSTEMS) + " | "
          + " | ".join(f"{SHORT[s]} CPU us/req" for s in SYSTEMS) + " |")
        w("|---:|" + "---:|" * (3 * len(SYSTEMS)))
        for n in (1, 2, 4, 8):
            w(f"| {n} | "
              + " | ".join(fmt(get(s, n, 1024, c, "rps")) for s in SYSTEMS) + " | "
              + " | ".join(f"{fmt(get(s, n, 1024, c, 'p50_us'))} / "
                           f"{fmt(get(s, n, 1024, c, 'p99_us'))}" for s in SYSTEMS) + " | "
              + " | ".join(fmt(get(s, n, 1024, c, "cpu_us_req"), 1) for s in SYSTEMS) + " |")
        w("")
        w("| hops | " + " | ".join(f"req/s spry/{SHORT[s]}" for s in SYSTEMS[1:]) + " | "
          + " | ".join(f"p99 spry/{SHORT[s]}" for s in SYSTEMS[1:]) + " |")
        w("|---:|" + "---:|" * (2 * (len(SYSTEMS) - 1)))
        for n in (1, 2, 4, 8):
            w(f"| {n} | "
              + " | ".join(rfmt(ratio(get("spry", n, 1024, c, "rps"), get(s, n, 1024, c, "rps")))
                           for s in SYSTEMS[1:]) + " | "
              + " | ".join(rfmt(ratio(get("spry", n, 1024, c, "p99_us"),
                                      get(s, n, 1024, c, "p99_us"))) for s in SYSTEMS[1:])
              + " |")
        w("")

    # --- payload
    w("## Payload size, 4 hops, concurrency 32")
    w("")
    w("| payload | " + " | ".join(f"{SHORT[s]} req/s" for s in SYSTEMS) + " | "
      + " | ".join(f"{SHORT[s]} p99 (us)" for s in SYSTEMS) + " | "
      + " | ".join(f"req/s spry/{SHORT[s]}" for s in SYSTEMS[1:]) + " |")
    w("|---:|" + "---:|" * (2 * len(SYSTEMS) + len(SYSTEMS) - 1))
    for size in (64, 1024, 16384, 65536):
        w(f"| {size_name(size)} | "
          + " | ".join(fmt(get(s, 4, size, 32, "rps")) for s in SYSTEMS) + " | "
          + " | ".join(fmt(get(s, 4, size, 32, "p99_us")) for s in SYSTEMS) + " | "
          + " | ".join(rfmt(ratio(get("spry", 4, size, 32, "rps"), get(s, 4, size, 32, "rps")))
                       for s in SYSTEMS[1:]) + " |")
    w("")

    # --- placement
    if any(k[0].endswith("-other") and k[1:] == (4, 1024, 32) for k in R):
        w("## Placement (4 hops, 1 KiB, concurrency 32)")
        w("")
        w("Each system as measured above and placed the other way: spry spread "
          "over the CPUs by the scheduler, the others with every process on "
          f"spry's CPU ({a.placement}); the median of the rounds each.")
        better = []
        for sname in SYSTEMS:
            r0, r1 = R.get((sname, 4, 1024, 32)), R.get((sname + "-other", 4, 1024, 32))
            if r0 and r1:
                better.append(f"{SHORT[sname]} {r1['rps'] / r0['rps']:.2f}x")
        if better:
            w("")
            w("Requests/s placed the other way / as above: " + ", ".join(better)
              + " (below 1: the tables above use the system's better placement).")
        w("")
        w("| system | placement | requests/s | p50 (us) | p99 (us) | CPU us/req | runs/req |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for sname in SYSTEMS:
            for key, label in ((sname, "as above"), (sname + "-other", "the other way")):
                r = R.get((key, 4, 1024, 32))
                if not r:
                    continue
                where = ((f"on CPU {a.placement}" if sname == "spry" else "scheduler")
                         if label == "as above" else
                         ("scheduler" if sname == "spry" else f"on CPU {a.placement}"))
                w(f"| {NAMES[sname]} | {where} | {fmt(r['rps'])} | {fmt(r['p50_us'])} | "
                  f"{fmt(r['p99_us'])} | {fmt(r['cpu_us_req'], 1)} | {fmt(r['runs_req'], 1)} |")
        w("")

    # --- hop cost
    w("## Cost of one hop (concurrency 1)")
    w("")
    w("(p50 latency at 8 hops - p50 at 1 hop) / 7, so the fixed cost of the "
      "entry drops out; the raw reference is bench/skmsg_pingpong: two bare "
      "processes bouncing a 64-byte message through a minimal SK_MSG redirect, "
      "one-way = round trip / 2.")
    w("")
    w("| path | per hop p50 (us) |")
    w("|---|---:|")
    hop = {}
    for s in SYSTEMS:
        a8, a1 = get(s, 8, 1024, 1, "p50_us"), get(s, 1, 1024, 1, "p50_us")
        if a8 is not None and a1 is not None:
            hop[s] = (a8 - a1) / 7
            w(f"| {NAMES[s]}, 1 KiB | {hop[s]:.1f} |")
    tsv = os.path.join(d, "results.tsv")
    rounds = hop_rounds(tsv, "hopcost")
    spry64 = median(rounds)
    if spry64 is not None:
        where = f"placed on CPU {a.placement}" if a.placement else "not placed"
        w(f"| spry, 64 B, {where} (median of {len(rounds)} rounds: "
          + ", ".join(f"{x:.1f}" for x in rounds) + f") | {spry64:.1f} |")
    rounds = hop_rounds(tsv, "hopcost-other")
    spry_spread = median(rounds)
    if spry_spread is not None:
        w(f"| spry, 64 B, spread by the scheduler (median of {len(rounds)} rounds: "
          + ", ".join(f"{x:.1f}" for x in rounds) + f") | {spry_spread:.1f} |")
    for m, label in (("any", "ping-pong, unpinned (where the scheduler puts them)"),
                     ("same", "ping-pong, both on CPU 0"),
                     ("cross", "ping-pong, CPU 0 <-> CPU 1"),
                     ("ring9-any", "ring of 9 processes (like spryd + 8 functions), unpinned"),
                     ("ring9-same", "ring of 9 processes, all on CPU 0"),
                     ("ring9-any-epoll", "ring of 9 processes sleeping in epoll_wait "
                      "(as spry's runtime), unpinned"),
                     ("ring9-same-epoll", "ring of 9 processes sleeping in epoll_wait, "
                      "all on CPU 0")):
        if m in pp:
            w(f"| raw SK_MSG {label}, one hop | "
              f"{float(pp[m]['oneway_p50_us']):.1f} (p99 {float(pp[m]['oneway_p99_us']):.1f}) |")
    w("")

    # --- idle
    w("## CPU at idle (3 s, every process of each system, all chains)")
    w("")
    w("| system | processes | CPU (ms) | scheduled in | % of one core |")
    w("|---|---:|---:|---:|---:|")
    idle_pct = {}
    for r in idle:
        idle_pct[r["system"]] = float(r["percent_of_one_core"])
        w(f"| {NAMES.get(r['system'], r['system'])} | {r['processes']} | "
          f"{int(r['cpu_ns']) / 1e6:.2f} | {r['runs']} | {float(r['percent_of_one_core']):.3f} |")
    w("")

    # --- targets
    w("## Targets")
    w("")
    rs = lambda s: get(s, 4, 1024, 32, "rps")
    p99 = lambda s: get(s, 4, 1024, 32, "p99_us")

    def verdict(ok):
        return "**met**" if ok else "**not met**"

    r1 = ratio(rs("spry"), rs("http"))
    r2 = ratio(rs("spry"), rs("sidecar"))
    r3 = ratio(p99("spry"), p99("http"))
    w("| target | measured | |")
    w("|---|---:|---|")
    if r1 is not None:
        w(f"| 4 hops, c=32: spry >= 5x the HTTP chain's requests/s | {r1:.2f}x | {verdict(r1 >= 5)} |")
    if r2 is not None:
        w(f"| 4 hops, c=32: spry >= 10x the sidecar chain's requests/s | {r2:.2f}x | {verdict(r2 >= 10)} |")
    if r3 is not None:
        w(f"| 4 hops, c=32: spry p99 <= 1/5 of the HTTP chain's | {r3:.2f}x | {verdict(r3 <= 0.2)} |")
    placed = f"spry on CPU {a.placement}" if a.placement else "spry not placed"
    for m, what in (("same", "the raw SK_MSG ping-pong's one-way cost, both on one CPU"),
                    ("ring9-same-epoll", "a hop of the raw 9-process SK_MSG ring sleeping "
                     "in epoll, all on one CPU (the closest raw analogue of a placed chain)")):
        if spry64 is not None and m in pp:
            ow = float(pp[m]["oneway_p50_us"])
            w(f"| a spry hop (64 B, {placed}) within 1.5x of {what} | "
              f"{spry64:.1f} / {ow:.1f} us = {spry64 / ow:.2f}x | "
              f"{verdict(spry64 <= 1.5 * ow)} |")
    if "spry" in hop and "same" in pp:
        ow = float(pp["same"]["oneway_p50_us"])
        w(f"| the same at 1 KiB (chain length 1 vs 8 at c=1) | "
          f"{hop['spry']:.1f} / {ow:.1f} us = {hop['spry'] / ow:.2f}x | "
          f"{verdict(hop['spry'] <= 1.5 * ow)} |")
    if spry_spread is not None and "any" in pp:
        ow = float(pp["any"]["oneway_p50_us"])
        w(f"| spry spread by the scheduler vs the ping-pong where the scheduler "
          f"puts it | {spry_spread:.1f} / {ow:.1f} us = {spry_spread / ow:.2f}x | "
          f"{verdict(spry_spread <= 1.5 * ow)} |")
    if "spry" in idle_pct:
        w(f"| spry uses 0% CPU at idle | {idle_pct['spry']:.3f}% | "
          f"{verdict(idle_pct['spry'] < 0.05)} (0.05% of a core allowed for timers) |")
    w("")
    noisy = sorted((k, r) for k, r in R.items() if r["other_pct"] > 10)
    if noisy:
        w("Points measured while other processes used over 10% of the machine "
          "(after the retries; treat them with care): "
          + ", ".join(f"{k[0]} {k[1]} hops {size_name(k[2])} c={k[3]} ({r['other_pct']:.0f}%)"
                      for k, r in noisy) + ".")
    else:
        w("No point was measured while other processes used over 10% of the machine.")
    w("")
    w("Where spry falls short and why: [PROFILE.md](PROFILE.md).")
    w("")
    w("Plots: ![latency vs chain length](latency_hops.png) "
      "![requests/s vs concurrency](rps_conc.png) "
      "![CPU per request](cpu_req.png) ![requests/s vs payload](rps_payload.png)")
    w("")
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write("\n".join(out))

    # --- plot data: one column per system
    def dat(name, xs, key, pick):
        with open(os.path.join(d, name), "w") as f:
            f.write("# x " + " ".join(SYSTEMS) + "\n")
            for x in xs:
                vals = [get(*pick(s, x), key) for s in SYSTEMS]
                f.write(f"{x} " + " ".join("NaN" if v is None else f"{v}" for v in vals) + "\n")

    dat("lat1.dat", (1, 2, 4, 8), "p50_us", lambda s, x: (s, x, 1024, 1))
    dat("lat32.dat", (1, 2, 4, 8), "p99_us", lambda s, x: (s, x, 1024, 32))
    dat("rps_conc.dat", (1, 32, 256), "rps", lambda s, x: (s, 4, 1024, x))
    dat("cpu.dat", (1, 2, 4, 8), "cpu_us_req", lambda s, x: (s, x, 1024, 32))
    dat("rps_size.dat", (64, 1024, 16384, 65536), "rps", lambda s, x: (s, 4, x, 32))
    title = a.machine.replace('"', "'")
    lines = lambda f: ", ".join(
        f"'{f}' using 1:{i + 2} with linespoints lw 2 pt 7 title '{SHORT[s]}'"
        for i, s in enumerate(SYSTEMS))
    gp = f"""set terminal pngcairo size 900,560 font ',10'
set grid
set key top left
set logscale y
set output 'latency_hops.png'
set multiplot layout 1,2 title "Latency vs chain length, 1 KiB ({title})"
set title 'p50, concurrency 1'
set xlabel 'functions in the chain'
set ylabel 'microseconds'
set xtics (1, 2, 4, 8)
plot {lines('lat1.dat')}
set title 'p99, concurrency 32'
plot {lines('lat32.dat')}
unset multiplot
set output 'rps_conc.png'
set title "Requests/s vs concurrency, 4 hops, 1 KiB ({title})"
set xlabel 'concurrent connections (wrk)'
set ylabel 'requests/s'
set logscale x 2
set xtics (1, 32, 256)
plot {lines('rps_conc.dat')}
unset logscale x
set output 'cpu_req.png'
set title "CPU time per request, 1 KiB, concurrency 32 ({title})"
set xlabel 'functions in the chain'
set ylabel 'CPU microseconds per request (all processes)'
set xtics (1, 2, 4, 8)
plot {lines('cpu.dat')}
set output 'rps_payload.png'
set title "Requests/s vs payload, 4 hops, concurrency 32 ({title})"
set xlabel 'payload bytes'
set ylabel 'requests/s'
set logscale x 2
set xtics ('64' 64, '1K' 1024, '16K' 16384, '64K' 65536)
plot {lines('rps_size.dat')}
"""
    with open(os.path.join(d, "plots.gp"), "w") as f:
        f.write(gp)


if __name__ == "__main__":
    main()
