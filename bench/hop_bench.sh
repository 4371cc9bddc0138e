#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# hop_bench (`make bench`, after bench/compare.sh): the cost of a spry hop
# against the bare kernel path it rides on, and against the unix-socket
# chain, with the runtime's two ways of waiting A/B'd in the same run.
#
# One spryd serves two sets of chains of 1, 4 and 8 functions (hop i runs
# upper when i is even, reverse when odd, as in bench/compare.sh): bN, whose
# functions sleep in a blocking recv() (SPRY_FN_WAIT=block, the default),
# and eN, whose functions sleep in epoll_wait() and then recv()
# (SPRY_FN_WAIT=epoll, the runtime before).  Beside them bench/unixchain
# chains of 4 and 8 functions.
#
#   hop (c=1, 64 B)   spry's hop = (p50 at 8 hops - p50 at 1 hop) / 7 through
#                     the control socket (chain_bench -a, no HTTP front),
#                     against bench/skmsg_pingpong: the 9-process ring (each
#                     member in a blocking recv(), and with -e in epoll) and
#                     the 2-process ping-pong, one way.  Two placements:
#                     "same" (spryd, the functions and the client all on
#                     CPU 0, as the ring's "same") and "any" (the scheduler's).
#   load (c=32, 1 KiB, 4 and 8 hops)   spry (both waits) and the unix chain
#                     through HTTP (wrk), and spry without the front
#                     (chain_bench -a -t 32 through the control socket):
#                     requests/s, CPU us per request of all the system's
#                     processes, and of its functions alone (the front, the
#                     first process, left out).  Systems on the last CPU,
#                     the load generator on the others (as compare.sh).
#
# The systems take turns within each round (BENCH_HOP_ROUNDS, 5, for the
# hop; BENCH_LOAD_ROUNDS, 3, for the load; BENCH_SECS, 2, per point); the
# report takes medians, since other processes share this machine.  Writes
# bench/results/hop.md and hop.tsv (raw rounds); prints hop.md.  Needs root.
# Environment: OUT, BENCH_RESULTS, BENCH_SECS, BENCH_HOP_ROUNDS,
# BENCH_LOAD_ROUNDS, BENCH_WARMUP, BENCH_WRK_THREADS; HOP_BENCH_CMD: instead
# of measuring, run this command against the set-up (profiling: see
# bench/hop_trace.bt) with SOCK, CB, PP, PIN, SPRYD_PID, SPRY_PIDS, FN_COMMS
# (the functions' two process names) and PP_COMM set.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SECS=${BENCH_SECS:-2}
RES=${BENCH_RESULTS:-$SRC/bench/results}
HOP_ROUNDS=${BENCH_HOP_ROUNDS:-5}
LOAD_ROUNDS=${BENCH_LOAD_ROUNDS:-3}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
CB=$OUT/bench/chain_bench
UC=$OUT/bench/unixchain
PP=$OUT/bench/skmsg_pingpong

die() { echo "hop_bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$CB" "$UC" "$PP" "$OUT"/examples/{upper,reverse}; do
	[ -x "$b" ] || die "$b not built (make bench-progs)"
done
for c in wrk python3 taskset; do
	command -v $c >/dev/null || die "$c not installed"
done
. "$SRC/bench/lib.sh"
bench_private_netns hop_bench "$@"

PIN=/sys/fs/bpf/spry-hop-$$
TMP=$(mktemp -d /tmp/spry-hop-XXXXXX)
export SPRY_STATE_DIR=$TMP/state	# declarations, status: not in /run/spry/fns
SOCK=$TMP/ctl.sock
PORT=18700
PIDS=()
declare -A SYS	# "SYS,N" -> pids, the front first

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the functions and skmsg_pingpong under names of this run's own (comm),
# for tracing (bench/hop_trace.bt)
mkdir "$TMP/bin"
ln -s "$OUT/examples/upper" "$TMP/bin/hopup$$"
ln -s "$OUT/examples/reverse" "$TMP/bin/hoprv$$"
ln -s "$PP" "$TMP/bin/hoppp$$"
PP=$TMP/bin/hoppp$$
fn_bin() { [ $(($1 % 2)) -eq 0 ] && echo "$TMP/bin/hopup$$" || echo "$TMP/bin/hoprv$$"; }

LAST_CPU=$(($(nproc) - 1))
ALL="0-$LAST_CPU"
WRK_CPUS=$(bench_wrk_cpus "$LAST_CPU")
WRK_PIN=${WRK_CPUS:+taskset -c $WRK_CPUS}

# --- spry: bN (blocking recv) and eN (epoll) chains
"$SPRY" -P "$PIN" load >/dev/null || die "spry load failed"
for w in b e; do
	for n in 1 4 8; do
		hops=$(for i in $(seq 0 $((n - 1))); do printf '%s%s-f%s,' "$w" "$n" "$i"; done)
		"$SPRY" -P "$PIN" chain add "$w$n" hops "${hops%,}" buffer-size 66560 \
			buffers 640 max-inflight 1024 >/dev/null || die "chain add $w$n failed"
	done
done
bench_start "$TMP/spryd.log" "$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT"
SPRYD_PID=$LAST
bench_wait_port "$PORT" || die "spryd did not start: $(cat "$TMP/spryd.log")"
for w in b e; do
	wait=block
	[ $w = e ] && wait=epoll
	for n in 1 4 8; do
		SYS[$w,$n]=$SPRYD_PID
		for i in $(seq 0 $((n - 1))); do
			SPRY_FN_WAIT=$wait bench_start "$TMP/fn.log" "$(fn_bin "$i")" \
				--chain "$w$n" --fn "$w$n-f$i" --sock "$SOCK" --quiet
			SYS[$w,$n]+=" $LAST"
		done
	done
done
for i in $(seq 100); do
	live=$("$SPRY" -P "$PIN" -j fn show 2>/dev/null | python3 -c 'import json,sys
print(sum(1 for f in json.load(sys.stdin) if f.get("chain")
	  for i in f.get("instances", []) if "live" in i.get("flags", [])))' 2>/dev/null)
	[ "$live" = 26 ] && break
	sleep 0.05
done
[ "$live" = 26 ] || die "functions did not register ($live of 26): $(cat "$TMP/fn.log")"

# --- unix chains of 4 and 8
for n in 4 8; do
	u=$TMP/u$n
	bench_start "$TMP/unix.log" "$UC" front --port $((PORT + 10 + n)) --to "$u-0" --from "$u-ret"
	SYS[u,$n]=$LAST
	for i in $(seq 0 $((n - 1))); do
		to=$u-$((i + 1))
		[ "$i" -eq $((n - 1)) ] && to=$u-ret
		bench_start "$TMP/unix.log" "$UC" fn --hop "$i" --listen "$u-$i" --to "$to"
		SYS[u,$n]+=" $LAST"
	done
	bench_wait_port $((PORT + 10 + n)) || die "unix chain did not start: $(cat "$TMP/unix.log")"
done

# profiling: HOP_BENCH_CMD runs against the chains (SOCK, CB, PP, PIN, SPRY_PIDS, SPRYD_PID), then exit
if [ -n "${HOP_BENCH_CMD:-}" ]; then
	SOCK=$SOCK CB=$CB PP=$PP PIN=$PIN SPRYD_PID=$SPRYD_PID FN_COMMS="hopup$$ hoprv$$" PP_COMM=hoppp$$ \
		SPRY_PIDS="$(for k in "${!SYS[@]}"; do [ "${k%%,*}" = u ] || echo ${SYS[$k]}; done | tr ' ' '\n' | sort -u | tr '\n' ' ')" \
		bash -c "$HOP_BENCH_CMD"
	exit
fi
ALL_SPRY=$(for k in "${!SYS[@]}"; do [ "${k%%,*}" = u ] || echo ${SYS[$k]}; done | tr ' ' '\n' | sort -u)
ALL_UNIX="${SYS[u,4]} ${SYS[u,8]}"
place() {	# CPUS PIDS...
	local c=$1 p
	shift
	for p in "$@"; do taskset -a -p -c "$c" "$p" >/dev/null; done
}

mkdir -p "$RES"
TSV=$RES/hop.tsv
printf 'part\tround\tplace\tsystem\thops\tconc\trps\tp50_us\tp99_us\tcpu_us_req\tfn_cpu_us_req\n' >"$TSV"
row() { printf '%s\t' "$@" | sed 's/\t$//' >>"$TSV"; echo >>"$TSV"; }
kv() {	# LINE KEY
	sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<" $1"
}

# chain_bench through the control socket: "rps p50 p99 cpu fn_cpu"
cb_point() {	# PIN-PREFIX CHAIN HOPS THREADS LEN PIDS...
	local pre=$1 ch=$2 n=$3 t=$4 z=$5 line c0 c1 f0 f1
	shift 5
	read -r f0 _ < <(bench_cpu_ns "$1")
	read -r c0 _ < <(bench_cpu_ns "$@")
	line=$($pre "$CB" spry -s "$SOCK" -c "$ch" -a "$n" -t "$t" -d "$SECS" -z "$z") ||
		{ echo "hop_bench: chain_bench $ch failed: $line" >&2; return 1; }
	read -r c1 _ < <(bench_cpu_ns "$@")
	read -r f1 _ < <(bench_cpu_ns "$1")
	[ "$(kv "$line" errors)" = 0 ] || echo "hop_bench: $ch: errors in $line" >&2
	awk -v l="$line" -v c=$((c1 - c0)) -v f=$((f1 - f0)) 'BEGIN {
		split(l, a, " "); for (i in a) { split(a[i], kv, "="); v[kv[1]] = kv[2] }
		q = v["requests"]
		printf "%s %s %s %.2f %.2f\n", v["rps"], v["p50_us"], v["p99_us"],
			q ? c / 1e3 / q : 0, q ? (c - f) / 1e3 / q : 0 }'
}

T0=$(date +%s)
steal() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
read -r ST0 STT0 < <(steal)
BG_BEFORE=$(python3 "$SRC/bench/busy.py" 2 $ALL_SPRY $ALL_UNIX $$)

# --- hop, c=1, 64 B
for r in $(seq "$HOP_ROUNDS"); do
	for p in same any; do
		echo "hop_bench: hop round $r of $HOP_ROUNDS, $p" >&2
		if [ $p = same ]; then
			place 0 $ALL_SPRY
			pre="taskset -c 0"
		else
			place "$ALL" $ALL_SPRY
			pre=
		fi
		for w in b e; do
			for n in 1 8; do
				read -r rps p50 p99 _ < <(cb_point "$pre" "$w$n" "$n" 1 64 $SPRYD_PID) || continue
				row hop "$r" $p "spry-$w" "$n" 1 "$rps" "$p50" "$p99" 0 0
			done
		done
		for args in "-r 9" "-r 9 -e" "-r 2"; do
			line=$("$PP" -d "$SECS" $args -m $p 2>&1) ||
				{ echo "hop_bench: skmsg_pingpong $args: $line" >&2; continue; }
			name=ring9
			[[ "$args" == *-e* ]] && name=ring9-epoll
			[[ "$args" == "-r 2" ]] && name=pingpong
			row hop "$r" $p "$name" 1 1 0 "$(kv "$line" oneway_p50_us)" \
				"$(kv "$line" oneway_p99_us)" 0 0
		done
	done
done
place "$ALL" $ALL_SPRY

# --- load, c=32, 1 KiB, 4 and 8 hops: systems on the last CPU
place "$LAST_CPU" $ALL_SPRY $ALL_UNIX
for r in $(seq "$LOAD_ROUNDS"); do
	for n in 4 8; do
		echo "hop_bench: load round $r of $LOAD_ROUNDS, $n hops" >&2
		for s in b e u; do
			url=http://127.0.0.1:$PORT/$s$n
			[ $s = u ] && url=http://127.0.0.1:$((PORT + 10 + n))/c$n
			name=spry-$s
			[ $s = u ] && name=unix
			bench_wrk "$url" 1024 32 "$SECS" ${SYS[$s,$n]} ||
				{ echo "hop_bench: wrk $name $n failed" >&2; continue; }
			[ $((BW[errors] + BW[non2xx])) -eq 0 ] || echo "hop_bench: $name $n: errors" >&2
			row load "$r" placed "$name-http" "$n" 32 "${BW[rps]}" "${BW[p50_us]}" "${BW[p99_us]}" \
				"$(awk -v ns="$BW_NS" -v q="${BW[requests]}" 'BEGIN { printf "%.2f", q ? ns / 1e3 / q : 0 }')" \
				"$(awk -v ns=$((BW_NS - BW_FIRST_NS)) -v q="${BW[requests]}" 'BEGIN { printf "%.2f", q ? ns / 1e3 / q : 0 }')"
		done
		for s in b e; do
			read -r rps p50 p99 cpu fcpu < <(cb_point "$WRK_PIN" "$s$n" "$n" 32 1024 ${SYS[$s,$n]}) ||
				continue
			row load "$r" placed "spry-$s-ctl" "$n" 32 "$rps" "$p50" "$p99" "$cpu" "$fcpu"
		done
	done
done
place "$ALL" $ALL_SPRY $ALL_UNIX
read -r ST1 STT1 < <(steal)
BG_AFTER=$(python3 "$SRC/bench/busy.py" 2 $ALL_SPRY $ALL_UNIX $$)
STEAL=$(awk -v s=$((ST1 - ST0)) -v t=$((STT1 - STT0)) 'BEGIN { printf "%.1f", t ? 100 * s / t : 0 }')

python3 - "$TSV" "$RES/hop.md" <<EOF
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]]
def med(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2 if v else float("nan")
def vals(part, place, sysname, hops, col):
    return [float(r[col]) for r in rows if r[0] == part and r[2] == place and r[3] == sysname and r[4] == str(hops)]
P50, RPS, CPU, FCPU = 7, 6, 9, 10
out = []
o = out.append
o("## spry's hop against the bare SK_MSG path, and the unix chain")
o("")
o("""$(uname -r), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), $SECS s per point, medians of $HOP_ROUNDS (hop) and $LOAD_ROUNDS (load) rounds, the systems taking turns in each round (bench/hop_bench.sh; raw rounds in hop.tsv). Measuring took $(( $(date +%s) - T0 )) s; steal $STEAL percent; other processes before: $BG_BEFORE; after: $BG_AFTER.""")
o("")
o("### One hop at concurrency 1, 64 B (one way, p50 us)")
o("")
o("spry: (p50 at 8 hops - p50 at 1 hop) / 7 through the control socket (no HTTP front); bN chains wait in a blocking recv() (the runtime now), eN in epoll_wait() + recv() (the runtime before). Bare: bench/skmsg_pingpong, one way (round trip / members).")
o("")
o("| placement | spry, blocking recv | spry, epoll | ring of 9 | ring of 9, epoll | ping-pong | spry/ring | spry/ping-pong | epoll/blocking |")
o("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
res = {}
for pl in ("same", "any"):
    hop = {}
    for w in ("b", "e"):
        per_round = []
        rounds = sorted(set(r[1] for r in rows if r[0] == "hop"))
        for rd in rounds:
            a = [float(r[P50]) for r in rows if r[0] == "hop" and r[1] == rd and r[2] == pl and r[3] == "spry-" + w and r[4] == "1"]
            b = [float(r[P50]) for r in rows if r[0] == "hop" and r[1] == rd and r[2] == pl and r[3] == "spry-" + w and r[4] == "8"]
            if a and b:
                per_round.append((b[0] - a[0]) / 7)
        hop[w] = med(per_round)
    ring = med(vals("hop", pl, "ring9", 1, P50))
    ringe = med(vals("hop", pl, "ring9-epoll", 1, P50))
    pp = med(vals("hop", pl, "pingpong", 1, P50))
    res[pl] = (hop["b"], ring, pp)
    o("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.2fx |" % (
        "all on CPU 0" if pl == "same" else "scheduler", hop["b"], hop["e"], ring, ringe, pp,
        hop["b"] / ring, hop["b"] / pp, hop["e"] / hop["b"]))
o("")
o("### 1 KiB at concurrency 32 (systems on CPU $LAST_CPU, load generator on ${WRK_CPUS:-any})")
o("")
o("CPU us/req: every process of the system (spryd or the unix front included); fn CPU: its functions alone. -http: through HTTP (wrk); -ctl: spry through the control socket (chain_bench, no HTTP front).")
o("")
o("| hops | system | req/s | p50 us | CPU us/req | fn CPU us/req | req/s vs unix | CPU/req vs unix | fn CPU/req vs unix |")
o("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
load = {}
for n in (4, 8):
    u = [med(vals("load", "placed", "unix-http", n, c)) for c in (RPS, P50, CPU, FCPU)]
    for s in ("spry-b-http", "spry-e-http", "unix-http", "spry-b-ctl", "spry-e-ctl"):
        v = [med(vals("load", "placed", s, n, c)) for c in (RPS, P50, CPU, FCPU)]
        load[s, n] = v
        o("| %d | %s | %.0f | %.0f | %.2f | %.2f | %.2fx | %.2fx | %.2fx |" % (
            n, s, v[0], v[1], v[2], v[3], v[0] / u[0], v[2] / u[2], v[3] / u[3]))
o("")
o("### Targets (issue 14)")
o("")
o("| target | measured | |")
o("|---|---|---|")
def t(name, val, ok):
    o("| %s | %s | %s |" % (name, val, "met" if ok else "**not met**"))
for pl in ("same", "any"):
    h, ring, pp = res[pl]
    lab = "all on one CPU" if pl == "same" else "spread by the scheduler"
    t("hop p50 at c=1 <= 1.2x the 9-process ring, " + lab, "%.2f / %.2f us = %.2fx" % (h, ring, h / ring), h / ring <= 1.2)
    t("hop p50 at c=1 <= 1.5x the ping-pong, " + lab, "%.2f / %.2f us = %.2fx" % (h, pp, h / pp), h / pp <= 1.5)
for n in (4, 8):
    s, u = load["spry-b-http", n], load["unix-http", n]
    t("%d hops, 1 KiB, c=32: CPU/request <= 0.67x the unix chain's (HTTP)" % n, "%.2f / %.2f us = %.2fx" % (s[2], u[2], s[2] / u[2]), s[2] / u[2] <= 0.67)
    t("%d hops, 1 KiB, c=32: req/s >= 1.5x the unix chain's (HTTP)" % n, "%.0f / %.0f = %.2fx" % (s[0], u[0], s[0] / u[0]), s[0] / u[0] >= 1.5)
open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
cat "$RES/hop.md"
