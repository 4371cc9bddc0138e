#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spry against the alternatives (`make bench`, after bench/run.sh's
# chain_bench step).  The same handlers (examples/transforms.h: hop i runs
# upper when i is even, reverse when odd) in chains of 1, 2, 4 and 8
# functions, one process per function, behind four dataplanes, all
# measured end to end with wrk (bench/post.lua) in one run on this machine:
#
#   spry     wrk -HTTP-> spryd -SK_MSG desc-> f1 -> ... -> fN -SK_MSG-> spryd
#            (payload written once into the chain's pool, never copied)
#   http     wrk -HTTP-> f1 -HTTP-> f2 ... -> fN, answers relayed back
#            (bench/httpchain: epoll, keep-alive, pooled upstream conns)
#   sidecar  wrk -> nginx1 -> f1 -> nginx2 -> f2 ... -> fN: an nginx
#            reverse proxy (worker_processes 1, upstream keepalive,
#            HTTP/1.1) in front of every function, like Knative's
#            queue-proxy or a mesh sidecar
#   unix     wrk -HTTP-> front -unix-> f1 -unix-> ... fN -unix-> front
#            (bench/unixchain: the payload is copied at every hop)
#
# The matrix (each point: 1 s of warm-up, then BENCH_SECS seconds; the
# systems take turns at every point):
#   full       4 hops, 1 KiB, concurrency 1, 32 (in rounds), 256
#   hops       1, 2, 4, 8 hops, 1 KiB, concurrency 32 and concurrency 1
#   payload    4 hops, concurrency 32, 64 B, 1 KiB, 16 KiB, 64 KiB
#   hop cost   spry only: 1 and 8 hops, 64 B, concurrency 1, in rounds
#   placement  4 hops, 1 KiB, concurrency 32 (in rounds), each system
#              placed the other way: spry spread by the scheduler (and its
#              hop cost so), the others with every process on spry's CPU
# spry is placed (spryd --cpus, chain cpus) on the last CPU, where the
# scheduler would otherwise spread it; BENCH_SPRY_CPUS overrides ("none").
# Per point: requests/s, p50/p99 latency (wrk), CPU time per request
# (sum_exec_runtime of every thread of every process of the system, from
# /proc/PID/task/TID/schedstat, before and after) and scheduler runs per
# request (schedstat's timeslice count); then CPU at idle (3 s, all
# processes of each system), and skmsg_pingpong, the raw SK_MSG path a spry
# hop rides on.  Answers are checked byte for byte (curl, 1 KiB and
# 64 KiB, every system and chain length) before the load.
#
# Writes bench/results/results.md, results.tsv and PNG plots (gnuplot);
# prints results.md.  Needs root (loads the router); runs in a private
# network namespace with its own pin directory, control socket and
# temporary directory, and stops everything it started.
# Other processes' CPU use (bench/busy.py) is sampled before and after the
# run and during every point, and reported; before measuring, the script
# waits up to BENCH_QUIET_WAIT seconds (60) for them to use under 5% of
# the machine, and a point during which they used over 10% is measured
# again (BENCH_TRIES attempts in all, 3; the last one is kept).
# Environment: OUT (build dir), BENCH_SECS (3), BENCH_RESULTS (directory,
# default bench/results), BENCH_WRK_THREADS (1), BENCH_QUIET_WAIT (60),
# BENCH_TRIES (3), BENCH_SYSTEMS (which systems), BENCH_QUICK (above),
# BENCH_SPRY_CPUS (above), BENCH_HOP_ROUNDS (5), BENCH_HEAD_ROUNDS (3),
# BENCH_WARMUP (seconds of warm-up per point, 1).
# Progress goes to stderr, a line a point ("point n of N: ... about M min
# left"); the raw rows (one a point) only to results.tsv, which report.py
# reads.  A tiny run of the whole matrix, report included, in a few
# minutes: BENCH_SECS=1 BENCH_WARMUP=1 BENCH_HEAD_ROUNDS=1 BENCH_HOP_ROUNDS=1
# BENCH_TRIES=1 BENCH_QUIET_WAIT=0 BENCH_RESULTS=/tmp/r bench/compare.sh
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SECS=${BENCH_SECS:-3}
RES=${BENCH_RESULTS:-$SRC/bench/results}
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
TRIES=${BENCH_TRIES:-3}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
HC=$OUT/bench/httpchain
UC=$OUT/bench/unixchain
PP=$OUT/bench/skmsg_pingpong
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
LENGTHS="1 2 4 8"
SYSTEMS=${BENCH_SYSTEMS:-spry http sidecar unix}
# BENCH_QUICK=1: only 4 hops, 1 KiB, concurrency 32 (for working on spry's
# hot path); prints the points (results.tsv, in its temporary directory
# unless BENCH_RESULTS is set) and writes no report
[ -n "${BENCH_QUICK:-}" ] && LENGTHS=${BENCH_LENGTHS:-4}

die() { echo "compare: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$HC" "$UC" "$PP" "$OUT"/examples/{upper,reverse}; do
	[ -x "$b" ] || die "$b not built (make bench-progs)"
done
for c in wrk curl gnuplot python3; do
	command -v $c >/dev/null || die "$c not installed"
done
[ -x "$NGINX" ] || die "nginx not installed"
"$SPRYD" -h 2>&1 | grep -q -- --http || die "spryd has no HTTP front (--http)"
. "$SRC/bench/lib.sh"
bench_private_netns compare "$@"

PIN=/sys/fs/bpf/spry-compare-$$
TMP=$(mktemp -d /tmp/spry-compare-XXXXXX)
# a quick run's points are printed, never written over bench/results/
[ -n "${BENCH_QUICK:-}" ] && [ -z "${BENCH_RESULTS:-}" ] && RES=$TMP
SOCK=$TMP/ctl.sock
SPRY_PORT=18500
PIDS=()		# everything started, stopped at exit
declare -A SYSPIDS	# "SYS,N" -> pids whose CPU time counts for that chain

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

spry() { "$SPRY" -P "$PIN" "$@"; }
start() { bench_start "$@"; }
wait_port() { bench_wait_port "$@"; }
fn_bin() { bench_fn_bin "$OUT" "$1"; }
http_port() { echo $((19000 + $1 * 10 + $2)); }	# N, hop
sc_fn_port() { echo $((19200 + $1 * 10 + $2)); }
sc_px_port() { echo $((19400 + $1 * 10 + $2)); }
unix_port() { echo $((19600 + $1)); }
url() {
	case $1 in
	spry) echo "http://127.0.0.1:$SPRY_PORT/c$2" ;;
	http) echo "http://127.0.0.1:$(http_port "$2" 0)/c$2" ;;
	sidecar) echo "http://127.0.0.1:$(sc_px_port "$2" 0)/c$2" ;;
	unix) echo "http://127.0.0.1:$(unix_port "$2")/c$2" ;;
	esac
}

# --- spry: router, chains c1 c2 c4 c8, spryd with its HTTP front, functions
# placed on the last CPU (bench_spry_cpus); the load generator and the
# kernel get the others
ALL_CPUS="0-$(($(nproc) - 1))"
SPRY_CPUS=$(bench_spry_cpus)
WRK_CPUS=$(bench_wrk_cpus "$SPRY_CPUS") || die "bad BENCH_SPRY_CPUS '$SPRY_CPUS'"
WRK_PIN=${WRK_CPUS:+taskset -c $WRK_CPUS}
# (only when measured: bench/mesh_bench.sh runs the others under spry mesh,
# which would take spry's own loopback TCP sockets)
if [[ " $SYSTEMS " == *" spry "* ]]; then
	bench_spry_up "$OUT" "$PIN" "$SOCK" "$SPRY_PORT" "$SPRY_CPUS" "$TMP" "$LENGTHS" 2>"$TMP/up.err" ||
		die "$(cat "$TMP/up.err")"
	for n in $LENGTHS; do SYSPIDS[spry,$n]=${SPRY_UP[$n]}; done
fi

# --- http: function servers; the first one is the entry
for n in $LENGTHS; do
	SYSPIDS[http,$n]=""
	for i in $(seq 0 $((n - 1))); do
		next=()
		[ "$i" -lt $((n - 1)) ] && next=(--next "$(http_port "$n" $((i + 1)))")
		start "$TMP/http.log" "$HC" --port "$(http_port "$n" "$i")" --hop "$i" "${next[@]}"
		SYSPIDS[http,$n]+=" $LAST"
	done
done

# --- sidecar: the same servers, each behind its own nginx; hop i POSTs to
# sidecar i+1, wrk to sidecar 0
nginx_conf() {	# DIR LISTEN-PORT UPSTREAM-PORT
	cat >"$1/nginx.conf" <<-EOF
	user root;
	worker_processes 1;
	daemon off;
	master_process on;
	pid $1/nginx.pid;
	error_log $1/error.log warn;
	events { worker_connections 4096; }
	http {
		access_log off;
		client_body_temp_path $1/body;
		proxy_temp_path $1/proxy;
		keepalive_timeout 300s;
		keepalive_requests 1000000;
		client_max_body_size 2m;
		client_body_buffer_size 128k;
		proxy_buffer_size 16k;
		proxy_buffers 16 16k;
		proxy_busy_buffers_size 64k;
		upstream fn {
			server 127.0.0.1:$3;
			keepalive 1024;
			keepalive_requests 1000000;
			keepalive_timeout 300s;
		}
		server {
			listen 127.0.0.1:$2 backlog=4096;
			location / {
				proxy_pass http://fn;
				proxy_http_version 1.1;
				proxy_set_header Connection "";
			}
		}
	}
	EOF
}
for n in $LENGTHS; do
	SYSPIDS[sidecar,$n]=""
	for i in $(seq 0 $((n - 1))); do
		next=()
		[ "$i" -lt $((n - 1)) ] && next=(--next "$(sc_px_port "$n" $((i + 1)))")
		start "$TMP/sidecar.log" "$HC" --port "$(sc_fn_port "$n" "$i")" --hop "$i" "${next[@]}"
		SYSPIDS[sidecar,$n]+=" $LAST"
		d=$TMP/nginx-$n-$i
		mkdir -p "$d"
		nginx_conf "$d" "$(sc_px_port "$n" "$i")" "$(sc_fn_port "$n" "$i")"
		start "$TMP/sidecar.log" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
		SYSPIDS[sidecar,$n]+=" $LAST"
	done
done

# --- unix: a front and N functions
for n in $LENGTHS; do
	u=$TMP/u$n
	start "$TMP/unix.log" "$UC" front --port "$(unix_port "$n")" --to "$u-0" --from "$u-ret"
	SYSPIDS[unix,$n]=$LAST
	for i in $(seq 0 $((n - 1))); do
		to=$u-$((i + 1))
		[ "$i" -eq $((n - 1)) ] && to=$u-ret
		start "$TMP/unix.log" "$UC" fn --hop "$i" --listen "$u-$i" --to "$to"
		SYSPIDS[unix,$n]+=" $LAST"
	done
done

for n in $LENGTHS; do
	for i in $(seq 0 $((n - 1))); do
		wait_port "$(http_port "$n" "$i")" && wait_port "$(sc_px_port "$n" "$i")" ||
			die "chain servers did not start: $(cat "$TMP/http.log" "$TMP/sidecar.log")"
	done
	wait_port "$(unix_port "$n")" || die "unix chain did not start: $(cat "$TMP/unix.log")"
done
# nginx workers count too: the master's children
for n in $LENGTHS; do
	for p in ${SYSPIDS[sidecar,$n]}; do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = nginx ] || continue
		SYSPIDS[sidecar,$n]+=" $(cat /proc/"$p"/task/"$p"/children)"
	done
done

# --- every answer byte for byte
expect() {	# N FILE: what an N-hop chain answers for FILE
	python3 - "$1" "$2" <<-'EOF'
	import sys
	n, data = int(sys.argv[1]), bytearray(open(sys.argv[2], 'rb').read())
	for i in range(n):
	    data = data.upper() if i % 2 == 0 else data[::-1]
	sys.stdout.buffer.write(bytes(data))
	EOF
}
check_fail=0
for size in 1024 65536; do
	python3 -c "import sys
t=b'the quick brown fox jumps over the lazy dog\n'
sys.stdout.buffer.write((t*($size//len(t)+1))[:$size])" >"$TMP/body"
	for n in $LENGTHS; do
		expect "$n" "$TMP/body" >"$TMP/want"
		for s in $SYSTEMS; do
			curl -s -o "$TMP/got" -X POST --data-binary @"$TMP/body" \
				-H 'Content-Type: application/octet-stream' "$(url "$s" "$n")"
			cmp -s "$TMP/got" "$TMP/want" || {
				echo "compare: $s, $n hops, $size B: wrong answer" >&2
				check_fail=1
			}
		done
	done
done
[ $check_fail -eq 0 ] || die "answers differ from the expected bytes: not measuring"

# --- measuring
cpu_ns() { bench_cpu_ns "$@"; }
mkdir -p "$RES"
TSV=$RES/results.tsv
printf 'set\tsystem\thops\tsize\tconc\trps\tp50_us\tp99_us\terrors\tcpu_us_req\truns_req\tcpu_cores\tfirst_cpu_us_req\tmachine_busy_pct\tother_pct\ttries\n' >"$TSV"
machine() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }

# progress on stderr, one line a point; the raw rows go to results.tsv only
PLAN_N=0	# points in the plan (counted by a dry pass of schedule)
DONE_N=0
COUNTING=
progress() {	# SYS N SIZE CONC
	local left="time left: known after the first point"
	if [ "$DONE_N" -gt 0 ]; then
		# the points still to come at the pace of those done, and the
		# idle and ping-pong measurements after them
		left=$(awk -v t=$(($(date +%s) - T_START)) -v d="$DONE_N" -v n="$PLAN_N" \
			-v tail=$([ -n "${BENCH_QUICK:-}" ] && echo 0 || echo $((4 + 3 * SECS))) 'BEGIN {
			m = (t / d * (n - d) + tail) / 60
			printf "about %s min left", m < 1 ? "<1" : sprintf("%.0f", m) }')
	fi
	printf 'compare: point %d of %d: %s, %d hop%s, %s, c=%d — %s\n' $((DONE_N + 1)) \
		"$PLAN_N" "$1" "$2" "$([ "$2" -eq 1 ] || echo s)" "$(bench_size "$3")" "$4" "$left" >&2
}

point() {	# SET SYS N SIZE CONC: measure, again while others were busy
	local try other
	if [ -n "$COUNTING" ]; then
		PLAN_N=$((PLAN_N + 1))
		return 0
	fi
	progress "$2" "$3" "$4" "$5"
	for try in $(seq "$TRIES"); do
		measure "$@" "$try" || { DONE_N=$((DONE_N + 1)); return 1; }
		other=$(tail -1 "$TSV" | cut -f15)
		awk -v o="$other" 'BEGIN { exit !(o > 10) }' || break
		[ "$try" -lt "$TRIES" ] || break
		echo "compare: other processes used ${other}% of the machine: again" >&2
		sed -i '$d' "$TSV"
		sleep 2
	done
	DONE_N=$((DONE_N + 1))
}

bench_before() {
	python3 "$SRC/bench/busy.py" snap "$TMP/busy.json"
	read -r MT0 MI0 < <(machine)
}
bench_after() {
	read -r MT1 MI1 < <(machine)
	OTHER=$(python3 "$SRC/bench/busy.py" since "$TMP/busy.json" $OURS $$ |
		sed -n 's/.*other_pct=\([0-9.]*\).*/\1/p')
}
measure() {	# SET SYS N SIZE CONC TRY: one row of results.tsv
	local set=$1 sys=$2 n=$3 size=$4 c=$5
	if ! bench_wrk "$(url "$sys" "$n")" "$size" "$c" "$SECS" ${SYSPIDS[$sys,$n]}; then
		echo "compare: $sys $n hops ${size} B c=$c: wrk failed" >&2
		return 1
	fi
	awk -v set="$set" -v sys="$sys" -v n="$n" -v size="$size" -v c="$c" \
		-v rps="${BW[rps]}" -v p50="${BW[p50_us]}" -v p99="${BW[p99_us]}" \
		-v err=$((BW[errors] + BW[non2xx])) -v ns="$BW_NS" -v runs="$BW_RUNS" \
		-v req="${BW[requests]}" -v dur="${BW[duration_us]}" -v fns="$BW_FIRST_NS" \
		-v mt=$((MT1 - MT0)) -v mi=$((MI1 - MI0)) -v other="${OTHER:-0}" -v try="$6" 'BEGIN {
		printf "%s\t%s\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%d\n",
			set, sys, n, size, c, rps, p50, p99, err,
			req ? ns / 1e3 / req : 0, req ? runs / req : 0, ns / 1e3 / dur,
			req ? fns / 1e3 / req : 0, mt ? 100 * (1 - mi / mt) : 0, other, try
	}' >>"$TSV"
}

# --- other load on the machine skews everything: wait a while for quiet,
# and report what there was
OURS=$(for k in "${!SYSPIDS[@]}"; do echo ${SYSPIDS[$k]}; done | tr ' ' '\n' | sort -u)
bg() { python3 "$SRC/bench/busy.py" 2 $OURS $$; }
BG_BEFORE=$(bg)
for i in $(seq $((QUIET_WAIT / 5))); do
	other=$(sed -n 's/.*other_pct=\([0-9.]*\).*/\1/p' <<<"$BG_BEFORE")
	awk -v o="${other:-0}" 'BEGIN { exit !(o > 5) }' || break
	echo "compare: other processes use ${other}% of the machine ($BG_BEFORE); waiting" >&2
	sleep 3
	BG_BEFORE=$(bg)
done

T_START=$(date +%s)
# time the hypervisor gave this VM's CPUs to others (steal), over the run
steal() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
read -r ST0 STT0 < <(steal)
echo "compare: measuring ($SECS s per point)..." >&2
run_set() {	# SET N SIZE CONC [SYSTEMS]
	local s
	for s in ${5:-$SYSTEMS}; do point "$1" "$s" "$2" "$3" "$4"; done
}
if [ -n "${BENCH_QUICK:-}" ]; then
	# experiments: BENCH_PIN_SPRYD / BENCH_PIN_FNS = CPU lists
	set -- ${SYSPIDS[spry,4]:-}
	[ -n "${BENCH_PIN_SPRYD:-}" ] && taskset -a -p -c "$BENCH_PIN_SPRYD" "$1" >/dev/null
	shift
	if [ -n "${BENCH_PIN_FNS:-}" ]; then
		for p in "$@"; do taskset -a -p -c "$BENCH_PIN_FNS" "$p" >/dev/null; done
	fi
	if [ -n "${BENCH_QUICK_CMD:-}" ]; then	# e.g. a profiler, with URL and PIDS
		URL=$(url spry 4) PIDS="${SYSPIDS[spry,4]:-}" HURL=$(url http 4) HPIDS="${SYSPIDS[http,4]:-}" SURL=$(url sidecar 4) SPIDS="${SYSPIDS[sidecar,4]:-}" URL1=$(url spry 1) PIDS1="${SYSPIDS[spry,1]:-}" URL8=$(url spry 8) PIDS8="${SYSPIDS[spry,8]:-}" bash -c "$BENCH_QUICK_CMD"
		exit 0
	fi
fi
HEAD_ROUNDS=${BENCH_HEAD_ROUNDS:-3}
HOP_ROUNDS=${BENCH_HOP_ROUNDS:-5}
pin_sys() {	# SYS CPUS
	local n p
	[ -z "$COUNTING" ] || return 0
	for n in $LENGTHS; do
		for p in ${SYSPIDS[$1,$n]}; do taskset -a -p -c "$2" "$p" >/dev/null; done
	done
}
# every point in order (run twice: a dry pass counts them for the progress)
schedule() {
	local r n s size
	if [ -n "${BENCH_QUICK:-}" ]; then
		run_set full 4 1024 32
		return
	fi
	# the targets' point (4 hops, 1 KiB, c=32) in HEAD_ROUNDS rounds, the
	# systems taking turns; the report keeps each system's median round
	run_set full 4 1024 1
	for r in $(seq "$HEAD_ROUNDS"); do run_set full 4 1024 32; done
	run_set full 4 1024 256
	for n in 1 2 8; do run_set hops32 "$n" 1024 32; done
	for n in 1 2 8; do run_set hops1 "$n" 1024 1; done
	for size in 64 16384 65536; do run_set payload 4 "$size" 32; done
	# hop cost: (p50 at 8 hops - p50 at 1 hop) / 7 in HOP_ROUNDS rounds of
	# both points; the report takes the median round
	for r in $(seq "$HOP_ROUNDS"); do
		for n in 1 8; do run_set hopcost "$n" 64 1 spry; done
	done
	# placement, the other way round for every system (4 hops, c=32): spry
	# spread over the CPUs by the scheduler (and its hop cost so), the others
	# with every process on spry's CPU(s)
	if [ -n "$SPRY_CPUS" ]; then
		pin_sys spry "$ALL_CPUS"
		for r in $(seq "$HOP_ROUNDS"); do
			for n in 1 8; do run_set hopcost-other "$n" 64 1 spry; done
		done
		for r in $(seq "$HEAD_ROUNDS"); do run_set full-other 4 1024 32 spry; done
		pin_sys spry "$SPRY_CPUS"
		for s in $SYSTEMS; do
			[ "$s" = spry ] && continue
			pin_sys "$s" "$SPRY_CPUS"
			for r in $(seq "$HEAD_ROUNDS"); do run_set full-other 4 1024 32 "$s"; done
			pin_sys "$s" "$ALL_CPUS"
		done
	fi
}
COUNTING=1
schedule
COUNTING=
schedule
if [ -n "${BENCH_QUICK:-}" ]; then
	column -t -s "$(printf '\t')" "$TSV" 2>/dev/null || cat "$TSV"
	exit 0
fi

# --- idle: every process of each system, 3 s, nothing running
sleep 1
IDLE=$RES/idle.tsv
printf 'system\tprocesses\tcpu_ns\truns\tpercent_of_one_core\n' >"$IDLE"
declare -A I0 I1
all_pids() { local n; for n in $LENGTHS; do echo ${SYSPIDS[$1,$n]}; done | tr ' ' '\n' | sort -u; }
for s in $SYSTEMS; do I0[$s]=$(cpu_ns $(all_pids "$s")); done
t0=$(date +%s%N)
sleep 3
for s in $SYSTEMS; do I1[$s]=$(cpu_ns $(all_pids "$s")); done
t1=$(date +%s%N)
for s in $SYSTEMS; do
	read -r a ar <<<"${I0[$s]}"
	read -r b br <<<"${I1[$s]}"
	printf '%s\t%d\t%d\t%d\t%.3f\n' "$s" "$(all_pids "$s" | wc -l)" $((b - a)) $((br - ar)) \
		"$(awk -v d=$((b - a)) -v t=$((t1 - t0)) 'BEGIN { print 100 * d / t }')" >>"$IDLE"
done

# --- the raw SK_MSG path
# (a ping-pong of two processes, and a ring of 9 like spryd + 8 functions,
# also sleeping in epoll_wait() as spry's runtime does)
{ "$PP" -d "$SECS" && "$PP" -d "$SECS" -r 9 -m any -m same &&
  "$PP" -d "$SECS" -r 9 -e -m any -m same; } >"$RES/pingpong.txt" 2>&1 ||
	echo "compare: skmsg_pingpong failed" >&2
T_END=$(date +%s)
read -r ST1 STT1 < <(steal)
STEAL=$(awk -v s=$((ST1 - ST0)) -v t=$((STT1 - STT0)) 'BEGIN { printf "%.1f", t ? 100 * s / t : 0 }')
BG_AFTER=$(bg)

# --- report
MACHINE="$(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'),"
MACHINE+=" $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
python3 "$SRC/bench/report.py" --dir "$RES" --machine "$MACHINE" --secs "$SECS" \
	--wall $((T_END - T_START)) --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	--background "before: $BG_BEFORE; after: $BG_AFTER" --placement "$SPRY_CPUS" \
	--steal "$STEAL" --wrk-cpus "$WRK_CPUS" ||
	die "report failed"
(cd "$RES" && gnuplot plots.gp) || die "gnuplot failed"
rm -f "$RES/plots.gp" "$RES"/*.dat
cat "$RES/results.md"
