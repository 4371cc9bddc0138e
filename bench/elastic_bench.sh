#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Elastic instances (issue 11), measured: load traces through spryd's HTTP
# front on the chain "el" (one declared function, upper: min 0, max 8,
# target 1 request in flight per instance: upper's work is ~1 us, so with
# a higher target spryd's front, not the function, is the bottleneck and
# one instance stays enough; idle 3 s), spryd started with
# short windows (stable 5 s, panic 1 s, tick 50 ms).
#
#   step    wrk, closed loop, 1 -> 4 -> 16 -> 64 -> 16 -> 4 -> 1
#           connections, STEP seconds each, starting from zero instances
#   burst   from zero instances, 128 connections at once for BURST seconds
#   static  the same burst against the same function kept at 8 instances
#           (min = max = 8): the baseline, measured in the same run
#   idle    spryd's CPU over IDLE seconds at zero instances
#
# Per second of each trace: requests answered (the offered load of a
# closed loop is its answers plus its errors), errors, p99 latency (exact:
# spryd's access log, duration_us of every request) and instances
# (spryd's status file, sampled every 100 ms: the most seen in the second).
# Writes bench/results/elastic_{step,burst,static}.tsv, elastic.png
# (gnuplot) and prints a summary with the burst against the static
# baseline.  Needs root; private network namespace, pins and state dir.
# Environment: OUT, STEP (3), BURST (8), IDLE (10), RES (bench/results).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
STEP=${STEP:-3}
BURST=${BURST:-8}
IDLE=${IDLE:-10}
RES=${RES:-$SRC/bench/results}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
UPPER=$OUT/examples/upper
PORT=18480

. "$SRC/bench/lib.sh"

die() { echo "elastic_bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$UPPER"; do [ -x "$b" ] || die "$b not built"; done
for c in wrk jq gnuplot curl; do command -v $c >/dev/null || die "$c not installed"; done
bench_private_netns elastic_bench "$@"

PIN=/sys/fs/bpf/spry-ebench-$$
TMP=$(mktemp -d /tmp/spry-ebench-XXXXXX)
chmod 755 "$TMP"
SOCK=$TMP/ctl.sock
export SPRY_STATE_DIR=$TMP/state
PIDS=()
S() { "$SPRY" -P "$PIN" "$@"; }

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	S unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

S load >/dev/null || die "spry load"
S chain add el hops upper max-inflight 4096 deadline 5000 >/dev/null &&
	S chain add st hops upper max-inflight 4096 deadline 5000 >/dev/null &&
	S fn declare el upper exec "$UPPER" min 0 max 8 target 1 idle 3 args --quiet >/dev/null ||
	die "chains"
bench_start "$TMP/spryd.log" "$SPRYD" -P "$PIN" -s "$SOCK" --http 127.0.0.1:$PORT \
	--access-log "$TMP/access.log" --scale-tick 0.05 --stable-window 5 --panic-window 1
SPRYD_PID=$LAST
bench_wait_port $PORT || die "spryd did not start: $(tail -3 "$TMP/spryd.log")"

# sampler: "ns actual" of chain CHAIN every 100 ms, into FILE
sampler() {
	local a last=0
	while :; do
		a=$(jq -r --arg c "$1" '[.fns[] | select(.chain == $c) | .actual] | add // 0' \
			"$SPRY_STATE_DIR/status.json" 2>/dev/null)
		# a read that failed (jq starved on a loaded machine) repeats the last
		[ -n "$a" ] && last=$a
		echo "$(date +%s%N) $last"
		sleep 0.1
	done >"$2"
}

actual() {
	jq -r --arg c "$1" '[.fns[] | select(.chain == $c) | .actual] | add // 0' \
		"$SPRY_STATE_DIR/status.json" 2>/dev/null
}
wait_actual() {	# CHAIN N SECS
	local i
	for i in $(seq $(( $3 * 10 ))); do
		[ "$(actual "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# trace NAME CHAIN PHASES...: each phase "CONNS SECS" of wrk; per-second TSV
trace() {
	local name=$1 chain=$2 t0 c s
	shift 2
	: >"$TMP/access.log.$name"
	sampler "$chain" "$TMP/inst.$name" &
	local sp=$!
	t0=$(date +%s%N)
	echo "$t0" >"$TMP/t0.$name"
	: >"$TMP/wrk.$name"
	while [ $# -gt 0 ]; do
		c=$1 s=$2
		shift 2
		echo "$(( ($(date +%s%N) - t0) / 1000000 )) $c" >>"$TMP/phases.$name"
		wrk -t "$([ "$c" -ge 2 ] && echo 2 || echo 1)" -c "$c" -d "${s}s" \
			-s "$SRC/bench/post.lua" \
			"http://127.0.0.1:$PORT/$chain" -- 64 >>"$TMP/wrk.$name" 2>&1
	done
	sleep 0.3
	kill "$sp" 2>/dev/null
	wait "$sp" 2>/dev/null
	# the access log lines of this trace: those of its chain after t0
	python3 - "$TMP/access.log" "$chain" "$t0" "$TMP/inst.$name" "$TMP/phases.$name" \
		>"$RES/elastic_$name.tsv" <<'PY'
import sys, datetime, collections
log, chain, t0, inst, phases = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
lat = collections.defaultdict(list); err = collections.Counter()
for ln in open(log, errors="replace"):
    f = dict(kv.split("=", 1) for kv in ln.split() if "=" in kv)
    if f.get("chain") != chain:
        continue
    ts = datetime.datetime.strptime(f["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1e9
    if ts < t0:
        continue
    sec = int((ts - t0) // 1e9)
    if f["status"] == "200":
        lat[sec].append(int(f["duration_us"]))
    else:
        err[sec] += 1
ninst = collections.defaultdict(int)
for ln in open(inst):
    t, a = ln.split()
    s = int((int(t) - t0) // 1e9)
    if s >= 0:
        ninst[s] = max(ninst[s], int(a))
conns = {}
for ln in open(phases):
    ms, c = ln.split()
    conns[int(ms) // 1000] = int(c)
last = max(list(lat) + list(err) + list(ninst) + [0])
print("sec\tconns\tanswered_rps\terrors\tp99_ms\tinstances")
c = 0
for s in range(last + 1):
    c = conns.get(s, c)
    v = sorted(lat[s])
    p99 = v[min(len(v) - 1, int(len(v) * 0.99))] / 1000 if v else 0
    print("%d\t%d\t%d\t%d\t%.2f\t%d" % (s, c, len(v), err[s], p99, ninst[s]))
PY
}

echo "elastic_bench: step trace (${STEP} s per step)"
wait_actual el 0 10 || die "el does not start at zero instances"
trace step el 1 "$STEP" 4 "$STEP" 16 "$STEP" 64 "$STEP" 16 "$STEP" 4 "$STEP" 1 "$STEP"

echo "elastic_bench: waiting for zero instances (idle 3 s)"
wait_actual el 0 30 || die "el did not go back to zero: $(tail -3 "$TMP/spryd.log")"
echo "elastic_bench: burst from zero (${BURST} s, 128 connections)"
trace burst el 128 "$BURST"

echo "elastic_bench: static baseline (8 instances kept)"
S fn declare st upper exec "$UPPER" min 8 max 8 idle 3 args --quiet >/dev/null
wait_actual st 8 20 || die "st did not start 8 instances"
trace static st 128 "$BURST"

echo "elastic_bench: idle CPU of spryd at zero instances (${IDLE} s)"
S fn undeclare st upper >/dev/null
wait_actual el 0 30 && wait_actual st 0 30
sleep 1
# utime + stime (clock ticks, /proc/PID/stat fields 14 and 15) and the
# context switches (each a wake-up) of spryd over IDLE seconds
stat_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
ctxt() { awk '/ctxt_switches/ { n += $2 } END { print n }' "/proc/$1/status"; }
c0=$(bench_cpu_ns "$SPRYD_PID" | cut -d' ' -f1); t0=$(stat_ticks "$SPRYD_PID"); w0=$(ctxt "$SPRYD_PID")
sleep "$IDLE"
c1=$(bench_cpu_ns "$SPRYD_PID" | cut -d' ' -f1); t1=$(stat_ticks "$SPRYD_PID"); w1=$(ctxt "$SPRYD_PID")
IDLE_PCT=$(awk -v a="$c0" -v b="$c1" -v s="$IDLE" 'BEGIN { printf "%.3f", (b - a) / (s * 1e9) * 100 }')
IDLE_TICKS=$((t1 - t0))
IDLE_WAKE=$((w1 - w0))

# wrk's own totals: requests and errors of each trace
wrk_sum() {
	awk '/requests=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2] } }
	     END { printf "%d %d %d", v["requests"], v["errors"], v["non2xx"] }' "$TMP/wrk.$1"
}
read -r BR BE BN <<<"$(wrk_sum burst)"
read -r SR SE SN <<<"$(wrk_sum static)"
read -r TR TE TN <<<"$(wrk_sum step)"
peak() { awk 'NR > 1 && $3 > m { m = $3 } END { print m + 0 }' "$RES/elastic_$1.tsv"; }
p99all() { awk 'NR > 1 && $3 > 0 { print $5 }' "$RES/elastic_$1.tsv" | sort -n | tail -1; }
first_ok() { awk 'NR > 1 && $3 > 0 { print $1; exit }' "$RES/elastic_$1.tsv"; }
maxinst() { awk 'NR > 1 && $6 > m { m = $6 } END { print m + 0 }' "$RES/elastic_$1.tsv"; }

cat >"$TMP/plot.gp" <<GP
set terminal pngcairo size 1100,800 noenhanced
set output "$RES/elastic.png"
set multiplot layout 2,2 title "spry elastic instances: answered req/s, p99 and instances per second"
set datafile separator "\t"
set key top left
set xlabel "s"
do for [t in "step burst"] {
  set title t." trace (chain el: min 0, max 8, target 1)"
  set ylabel "req/s"
  set y2label "p99 ms"
  set y2tics
  plot "$RES/elastic_".t.".tsv" every ::1 using 1:3 with lines lw 2 title "answered req/s", \
       "" every ::1 using 1:5 axes x1y2 with lines title "p99 ms"
  set title t.": instances and connections"
  set ylabel "instances"
  set y2label "connections"
  plot "$RES/elastic_".t.".tsv" every ::1 using 1:6 with steps lw 2 title "instances", \
       "" every ::1 using 1:2 axes x1y2 with steps title "wrk connections"
}
unset multiplot
GP
gnuplot "$TMP/plot.gp" 2>"$TMP/gnuplot.err" || echo "elastic_bench: gnuplot failed: $(cat "$TMP/gnuplot.err")"

echo
echo "| trace | requests | errors (socket, non-2xx) | peak req/s | worst p99 (ms) | instances (max) | first answer (s) |"
echo "|---|---|---|---|---|---|---|"
echo "| step 1-4-16-64-16-4-1 conns | $TR | $TE, $TN | $(peak step) | $(p99all step) | $(maxinst step) | $(first_ok step) |"
echo "| burst 0 -> 128 conns, from zero | $BR | $BE, $BN | $(peak burst) | $(p99all burst) | $(maxinst burst) | $(first_ok burst) |"
echo "| static baseline, 8 instances | $SR | $SE, $SN | $(peak static) | $(p99all static) | $(maxinst static) | $(first_ok static) |"
echo
awk -v b="$BR" -v s="$SR" 'BEGIN { if (s > 0) printf "burst from zero / static: %.2f of the requests\n", b / s }'
echo "spryd idle CPU at zero instances (declared functions el, min 0: scale tick 50 ms when busy): ${IDLE_PCT}% of one CPU over ${IDLE} s (schedstat); utime+stime +${IDLE_TICKS} ticks of $(getconf CLK_TCK)/s (/proc/PID/stat), ${IDLE_WAKE} wake-ups (context switches)"
echo "scale decisions: $(grep -c 'scale [0-9]* -> ' "$TMP/spryd.log")  (log: $(grep 'scale [0-9]* -> ' "$TMP/spryd.log" | head -3 | sed 's/.*: scale/scale/' | cut -c1-60 | tr '\n' ';'))"
echo "TSV: $RES/elastic_{step,burst,static}.tsv; plot: $RES/elastic.png"
