#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# hop_profile: where a hop's time goes at concurrency 1 (bench/results/
# PROFILE.md), spry's 8-function chain (blocking and epoll waits) against
# the bare SK_MSG ring of 9 and the ping-pong, all on CPU 0.  Run through
# bench/hop_bench.sh's set-up:
#   HOP_BENCH_CMD="bash $PWD/bench/hop_profile.sh" bench/hop_bench.sh
# Per point: the router's (or the bare redirect's) mean run time from BPF
# run stats (kernel.bpf_stats_enabled, on for the measurement), and the
# median of each step of bench/hop_trace.bt (bpftrace, ~5 s).
set -u
SRCD=$(cd "$(dirname "$0")/.." && pwd)
BT=$SRCD/bench/hop_trace.bt
T=$(mktemp -d /tmp/spry-hop-prof-XXXXXX)
trap 'rm -rf "$T"' EXIT
set -- $FN_COMMS
sed "s/COMM1/$1/g; s/COMM2/$2/g" "$BT" >"$T/fn.bt"
sed "s/COMM1/$PP_COMM/g; s/COMM2/$PP_COMM/g" "$BT" >"$T/pp.bt"
for p in $SPRY_PIDS; do taskset -a -p -c 0 "$p" >/dev/null; done
old=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
progs() {	# the sk_msg programs using map id $1, or named $2
	bpftool -j prog show | python3 -c 'import json,sys
m, n = int(sys.argv[1]), sys.argv[2]
print(" ".join(str(p["id"]) for p in json.load(sys.stdin) if p.get("type") == "sk_msg"
      and (m in p.get("map_ids", []) or p.get("name") == n)))' "$1" "$2"
}
stats() {	# "run_time_ns run_cnt" summed over prog ids
	local id
	for id in "$@"; do bpftool -j prog show id "$id"; echo; done | python3 -c 'import json,sys
t = c = 0
for l in sys.stdin:
    if l.strip():
        j = json.loads(l); t += j.get("run_time_ns", 0); c += j.get("run_cnt", 0)
print(t, c)'
}
trace() {	# BT-FILE OUT: bpftrace for 7 s, attaching included (in the
	# foreground: a background job of a script ignores SIGINT)
	timeout -s INT -k 10 7 bpftrace "$1" >"$2" 2>&1
}
report() {	# NAME TRACE-OUT T0 C0 T1 C1
	python3 - "$@" <<'PY'
import re, sys
name, f, t0, c0, t1, c1 = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
steps = {"1": "send() enters -> next woken (router, redirect)", "2": "woken -> on CPU",
         "30": "on CPU -> epoll_wait() returns", "31": "on CPU -> recv() returns",
         "41": "epoll_wait() returns -> recv() enters", "42": "recv() without sleeping",
         "5": "recv() returns -> send() enters (checks, handler)", "6": "send() returns"}
h, cur, counts = {}, None, {}
for l in open(f):
    m = re.match(r"@h\[(\d+)\]:", l)
    if m:
        cur = m.group(1); h[cur] = []; continue
    m = re.match(r"\[(\d+), \d+\)\s+(\d+)", l) or re.match(r"\[(\d+), \.\.\.\)\s+(\d+)", l)
    if m and cur:
        h[cur].append((int(m.group(1)), int(m.group(2)))); continue
    m = re.match(r"@(\w+): (\d+)$", l)
    if m:
        counts[m.group(1)] = int(m.group(2))
    if not l.strip():
        cur = None
def med(b):
    n = sum(c for _, c in b); acc = 0
    for lo, c in b:
        acc += c
        if acc * 2 >= n:
            return lo / 10 + 0.05, n
    return float("nan"), n
runs = c1 - c0
print("%s: BPF program %.2f us/run over %d runs; sends %d, switches out %d, preempted in send %d"
      % (name, (t1 - t0) / 1e3 / runs if runs else 0, runs, counts.get("sends", 0),
         counts.get("switches_out", 0), counts.get("preempted_in_send", 0)))
for k in ("1", "2", "30", "31", "41", "42", "5", "6"):
    if k in h:
        m, n = med(h[k])
        print("  %-52s p50 %5.2f us  (%d)" % (steps[k], m, n))
PY
}
mid=$(bpftool -j map show pinned "$PIN/spry_socks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
router=$(progs "$mid" -)
for round in 1 2 3; do
	for w in b e; do
		taskset -c 0 "$CB" spry -s "$SOCK" -c "${w}8" -a 8 -t 1 -d 9 -z 64 >"$T/cb" &
		cb=$!
		sleep 1
		read -r t0 c0 < <(stats $router)
		trace "$T/fn.bt" "$T/out"
		read -r t1 c1 < <(stats $router)
		wait "$cb"
		report "round $round spry ${w}8 ($(sed 's/.*p50_us=\([0-9.]*\).*/p50 \1 us/' "$T/cb"))" "$T/out" "$t0" "$c0" "$t1" "$c1"
	done
	for args in "-r 9" "-r 9 -e" "-r 2"; do
		"$PP" -d 10 $args -m same >"$T/pp" &
		pp=$!
		sleep 1
		ppr=$(progs 0 pp_redirect)
		read -r t0 c0 < <(stats $ppr)
		trace "$T/pp.bt" "$T/out"
		read -r t1 c1 < <(stats $ppr)
		wait "$pp"
		report "round $round skmsg_pingpong $args ($(sed 's/.*oneway_p50_us=\([0-9.]*\).*/one way p50 \1 us/' "$T/pp"))" "$T/out" "$t0" "$c0" "$t1" "$c1"
	done
done
sysctl -qw kernel.bpf_stats_enabled="$old"
