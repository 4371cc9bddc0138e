#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spry mesh on against off, measured in the same run (`make bench`, its own
# section; docs/MESH.md).  Every point runs BENCH_MESH_ROUNDS times (3) with
# the mesh off and on, interleaved (off on, on off, off on, ...), and the
# table shows the median of each (the mesh attached to a cgroup this script
# makes and runs in; servers stay up, every run opens new connections,
# which the mesh judges when they are established):
#
#   iperf3      1 and 4 streams, Gbit/s, and machine CPU time per GB; and
#               1 stream with max-queued 64 MiB (spry mesh set max-queued),
#               and 1 stream with 256 KiB socket buffers (iperf3 -w)
#   sockperf    TCP ping-pong, 64 B, 1 KiB, 16 KiB, 64000 B: p50 and p99 us
#   nginx+wrk   1 KiB static file, 32 connections: requests/s, p99, CPU
#               time per request
#   redis       redis-benchmark SET and GET, 16 clients: requests/s
#   chains      bench/compare.sh's HTTP chain and nginx-sidecar chain at 4
#               hops, 1 KiB, 32 connections (BENCH_QUICK): requests/s, p99
#
# Prints a markdown table with on/off ratios (for latencies and CPU time,
# below 1 is better).  A tool that is not installed skips its rows.  CPU
# time is the whole machine's (/proc/stat), so other load on it shows.
# Needs root; runs in a private network namespace with its own pin
# directory and cgroup, and stops everything it started.
# Environment: OUT (build dir), BENCH_SECS (5 s per run),
# BENCH_MESH_ROUNDS (3 runs each way per point), BENCH_MESH_POINTS (the
# sections to run, of "iperf3 sockperf nginx redis chains"; default all),
# BENCH_MESH_QUICK=1 (1 s points, fewer sizes, no chains: a smoke test),
# BENCH_MESH_CHAINS=0 (skip the chains).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_MESH_ROUNDS:-3}
QUICK=${BENCH_MESH_QUICK:-}
CHAINS=${BENCH_MESH_CHAINS:-1}
POINTS=" ${BENCH_MESH_POINTS:-iperf3 sockperf nginx redis chains} "
SPRY=$OUT/spry
SIZES="64 1024 16384 64000"
if [ -n "$QUICK" ]; then
	SECS=1
	ROUNDS=1
	SIZES="64 16384"
	CHAINS=0
fi

die() { echo "mesh_bench: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null; }
want() { [[ "$POINTS" == *" $1 "* ]]; }

[ "$(id -u)" -eq 0 ] || die "needs root (sock_ops on a cgroup)"
[ -x "$SPRY" ] || die "$SPRY not built (make)"
have jq || die "jq not installed"
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CGROOT" ] || die "no cgroup2 file system mounted"
. "$SRC/bench/lib.sh"
bench_private_netns mesh_bench "$@"

PIN=/sys/fs/bpf/spry-mesh-bench-$$
TMP=$(mktemp -d /tmp/spry-mesh-bench-XXXXXX)
CG=$CGROOT/spry-mesh-bench-$$
ORIG=$CGROOT$(sed -n 's/^0:://p' /proc/self/cgroup)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	echo $$ >"$ORIG/cgroup.procs" 2>/dev/null
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rmdir "$CG" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$CG" || die "cannot make $CG"
echo $$ >"$CG/cgroup.procs" || die "cannot move into $CG"
spry() { "$SPRY" -P "$PIN" "$@"; }
spry mesh set default allow >/dev/null || die "cannot load the mesh"

start() { bench_start "$@"; }
listening() { ss -Hltn "sport = :$1" | grep -q .; }
wait_port() {
	local i
	for i in $(seq 200); do
		listening "$1" && return 0
		sleep 0.05
	done
	return 1
}
mesh() {	# mesh on|off
	if [ "$1" = on ]; then
		spry mesh attach cgroup "$CG" >/dev/null
	else
		spry mesh detach cgroup "$CG" >/dev/null 2>&1
	fi
	return 0
}
busy_us() { awk '/^cpu / { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8) * 1e6 / 100 }' /proc/stat; }
counters() { spry -j mesh show | jq -r '.counters | "\(.redirected_bytes) \(.passed_bytes) \(.fallback_stalled) \(.comeback)"'; }
# median V...: the median of numbers
median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { if (!NR) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

ROWS=()
row() {	# row NAME METRIC OFF ON: a line of the table
	local r
	r=$(awk -v a="$3" -v b="$4" 'BEGIN { if (a + 0 > 0 && b != "") printf "%.2f", b / a; else print "-" }')
	ROWS+=("| $1 | $2 | ${3:--} | ${4:--} | $r |")
}

# Each measure_* prints "METRIC=VALUE ..." for one run.
measure_iperf3() {	# PORT STREAMS [SOCKET_BUFFER]
	local b0 b1 j
	b0=$(busy_us)
	j=$(timeout $((SECS + 30)) iperf3 -c 127.0.0.1 -p "$1" -P "$2" ${3:+-w "$3"} -t "$SECS" -J 2>/dev/null) || return 1
	b1=$(busy_us)
	jq -r --argjson cpu $((b1 - b0)) '.end.sum_received | "gbps=\(.bits_per_second / 1e9 | . * 100 | round / 100) cpu_s_gb=\($cpu / 1e6 / (.bytes / 1e9) | . * 1000 | round / 1000)"' <<<"$j"
}
measure_sockperf() {	# PORT SIZE
	timeout $((SECS + 30)) sockperf pp --tcp -i 127.0.0.1 -p "$1" -t "$SECS" -m "$2" 2>&1 |
		awk '/percentile 50.000/ { p50 = $NF } /percentile 99.000/ { p99 = $NF }
		     END { if (p50 == "") exit 1; printf "p50_us=%s p99_us=%s\n", p50, p99 }'
}
measure_wrk() {	# URL
	local b0 b1 out
	b0=$(busy_us)
	out=$(timeout $((SECS + 30)) wrk -t1 -c32 -d"${SECS}s" --latency "$1" 2>&1) || return 1
	b1=$(busy_us)
	awk -v cpu=$((b1 - b0)) '
		/Requests\/sec:/ { rps = $2 }
		/ requests in / { req = $1 }
		$1 == "99%" { p = $2; u = 1; if (p ~ /ms$/) u = 1000; else if (p ~ /us$/) u = 1; else if (p ~ /s$/) u = 1e6
			      sub(/[a-z]+$/, "", p); p99 = p * u }
		END { if (rps == "") exit 1; printf "rps=%.0f p99_us=%.0f cpu_us_req=%.1f\n", rps, p99, req ? cpu / req : 0 }' <<<"$out"
}
measure_redis() {	# PORT
	timeout $((SECS * 4 + 60)) redis-benchmark -p "$1" -c 16 -n $((SECS * 20000)) -t set,get --csv 2>/dev/null |
		awk -F'"' '$2 == "SET" { s = $4 } $2 == "GET" { g = $4 } END { if (s == "") exit 1; printf "set_rps=%.0f get_rps=%.0f\n", s, g }'
}
measure_chains() {	# compare.sh's HTTP and sidecar chains, 4 hops (its results.tsv)
	rm -rf "$TMP/compare"
	BENCH_QUICK=1 BENCH_SYSTEMS="http sidecar" BENCH_QUIET_WAIT=0 BENCH_TRIES=1 \
		BENCH_SECS="$SECS" BENCH_RESULTS="$TMP/compare" \
		"$SRC/bench/compare.sh" >/dev/null 2>"$TMP/compare.err" ||
		{ cat "$TMP/compare.err" >&2; return 1; }
	awk -F'\t' '$1 == "full" && $3 == 4 { printf "%s_rps=%s %s_p99_us=%s ", $2, $6, $2, $8; n++ }
		END { print ""; exit n ? 0 : 1 }' "$TMP/compare/results.tsv"
}

# point NAME CMD...: run CMD ROUNDS times with the mesh off and on,
# interleaved; one row per metric, the medians
point() {
	local name=$1 out k i m keys="" c0 c1 red=0 pas=0 fb=0 cb=0
	shift
	declare -A V=()
	for i in $(seq "$ROUNDS"); do
		for m in $( ((i % 2)) && echo off on || echo on off); do
			mesh "$m"
			[ "$m" = on ] && c0=$(counters)
			out=$("$@") || { echo "mesh_bench: $name ($m) failed" >&2; mesh off; return; }
			if [ "$m" = on ]; then
				c1=$(counters)
				read -r -a a0 <<<"$c0"
				read -r -a a1 <<<"$c1"
				red=$((red + a1[0] - a0[0])) pas=$((pas + a1[1] - a0[1]))
				fb=$((fb + a1[2] - a0[2])) cb=$((cb + a1[3] - a0[3]))
			fi
			mesh off
			for k in $out; do
				[ "$m" = off ] && [ "$i" = 1 ] && keys="$keys ${k%%=*}"
				V[$m.${k%%=*}]="${V[$m.${k%%=*}]:-} ${k#*=}"
			done
		done
	done
	for k in $keys; do
		# shellcheck disable=SC2086
		row "$name" "$k" "$(median ${V[off.$k]})" "$(median ${V[on.$k]:-})"
		echo "mesh_bench: $name $k: off${V[off.$k]} / on${V[on.$k]:-}" >&2
	done
	echo "mesh_bench: $name: mesh on redirected $red bytes, passed $pas, $fb fallbacks, $cb comebacks" >&2
}

measure_iperf3_q() {	# PORT STREAMS MAX_QUEUED: measure_iperf3 with that max-queued
	local r
	spry mesh set max-queued "$3" >/dev/null || return 1
	measure_iperf3 "$1" "$2"
	r=$?
	spry mesh set max-queued 0 >/dev/null
	return $r
}

echo "mesh_bench: $SECS s per run, $ROUNDS runs each way per point, interleaved" >&2

if ! want iperf3; then
	:
elif have iperf3; then
	start "$TMP/iperf3.log" iperf3 -s -p 15201 -B 127.0.0.1
	if wait_port 15201; then
		point "iperf3 1 stream" measure_iperf3 15201 1
		point "iperf3 4 streams" measure_iperf3 15201 4
		point "iperf3 1 stream, max-queued 64 MiB" measure_iperf3_q 15201 1 $((64 << 20))
		point "iperf3 1 stream, 256 KiB socket buffers" measure_iperf3 15201 1 256K
	fi
else
	echo "mesh_bench: iperf3 not installed: skipped" >&2
fi

if ! want sockperf; then
	:
elif have sockperf; then
	start "$TMP/sockperf.log" sockperf sr --tcp -i 127.0.0.1 -p 15202
	if wait_port 15202; then
		for s in $SIZES; do
			point "sockperf ping-pong $s B" measure_sockperf 15202 "$s"
		done
	fi
else
	echo "mesh_bench: sockperf not installed: skipped" >&2
fi

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! want nginx; then
	:
elif have wrk && [ -x "$NGINX" ]; then
	mkdir -p "$TMP/www" "$TMP/nginx"
	head -c 1024 /dev/urandom >"$TMP/www/1k.bin"
	cat >"$TMP/nginx.conf" <<-EOF
	daemon off;
	worker_processes 1;
	user root;
	pid $TMP/nginx/nginx.pid;
	error_log $TMP/nginx/error.log;
	events { worker_connections 1024; }
	http {
		access_log off;
		sendfile on;
		keepalive_requests 1000000;
		client_body_temp_path $TMP/nginx;
		proxy_temp_path $TMP/nginx;
		fastcgi_temp_path $TMP/nginx;
		uwsgi_temp_path $TMP/nginx;
		scgi_temp_path $TMP/nginx;
		server { listen 127.0.0.1:15203; root $TMP/www; }
	}
	EOF
	start "$TMP/nginx.log" "$NGINX" -c "$TMP/nginx.conf" -p "$TMP/nginx"
	wait_port 15203 && point "nginx + wrk, 1 KiB" measure_wrk "http://127.0.0.1:15203/1k.bin"
else
	echo "mesh_bench: wrk or nginx not installed: skipped" >&2
fi

if ! want redis; then
	:
elif have redis-server && have redis-benchmark; then
	start "$TMP/redis.log" redis-server --port 15204 --bind 127.0.0.1 --save "" \
		--appendonly no --dir "$TMP"
	wait_port 15204 && point "redis-benchmark" measure_redis 15204
else
	echo "mesh_bench: redis-server or redis-benchmark not installed: skipped" >&2
fi

if [ "$CHAINS" = 1 ] && want chains; then
	if [ -x "$OUT/bench/httpchain" ]; then
		point "HTTP chains, 4 hops, 1 KiB, c=32" measure_chains
	else
		echo "mesh_bench: $OUT/bench/httpchain not built: chains skipped" >&2
	fi
fi

echo
echo "## spry mesh: local TCP, mesh on vs off (medians of $ROUNDS runs of $SECS s each way, interleaved)"
echo
echo "| point | metric | off | on | on/off |"
echo "|---|---|---:|---:|---:|"
for r in "${ROWS[@]}"; do echo "$r"; done
echo
echo "mesh counters: $(spry -j mesh show | jq -c '.counters | with_entries(select(.value != 0))')"
