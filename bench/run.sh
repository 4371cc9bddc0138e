#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spry's benchmark (`make bench`): the chain upper -> reverse -> wordcount
# (one instance each) through spryd's request entry, against a baseline
# measured in the same run: the same three handlers in three relay
# processes chained by loopback TCP.  Closed loop, 1 and 16 clients,
# BENCH_SECS (default 5) seconds per point: about 30 s in all.
#
#   spry:     client -unix-> spryd -SK_MSG-> upper -SK_MSG-> reverse
#             -SK_MSG-> wordcount -SK_MSG-> spryd -unix-> client
#   baseline: client -TCP-> upper -TCP-> reverse -TCP-> wordcount,
#             the answer back the same way (6 TCP hops)
#
# Prints a markdown table, then runs bench/compare.sh (spry against an
# HTTP chain, an HTTP chain with nginx sidecars and a unix-socket chain;
# writes bench/results/), bench/hop_bench.sh (the hop against the bare
# SK_MSG path; bench/results/hop.md), bench/mesh_bench.sh and the other
# benchmarks below, one section each.  Needs root (loads the router); runs in a
# private network namespace with its own pin directory and control socket.
# Environment: OUT (build dir), BENCH_SECS, BENCH_LEN (payload bytes, 64).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SECS=${BENCH_SECS:-5}
LEN=${BENCH_LEN:-64}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
BENCH=$OUT/bench/chain_bench

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$BENCH" "$OUT"/examples/{upper,reverse,wordcount}; do
	[ -x "$b" ] || die "$b not built (make bench-progs)"
done
if [ -z "${SPRY_BENCH_NETNS:-}" ]; then
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf ||
		die "no bpffs"
	SPRY_BENCH_NETNS=1 exec unshare -n "$0" "$@"
fi
ip link set lo up || die "cannot bring lo up"

PIN=/sys/fs/bpf/spry-bench-$$
TMP=$(mktemp -d /tmp/spry-bench-XXXXXX)
export SPRY_STATE_DIR=$TMP/state	# declarations, status: not in /run/spry/fns
SOCK=$TMP/ctl.sock
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

"$SPRY" -P "$PIN" load >/dev/null || die "spry load failed"
"$SPRY" -P "$PIN" chain add bench hops upper,reverse,wordcount >/dev/null ||
	die "spry chain add failed"
"$SPRYD" -P "$PIN" -s "$SOCK" 2>"$TMP/spryd.log" &
PIDS+=($!)
for i in $(seq 100); do
	[ -S "$SOCK" ] && break
	sleep 0.05
done
[ -S "$SOCK" ] || die "spryd did not start: $(cat "$TMP/spryd.log")"
for f in upper reverse wordcount; do
	"$OUT/examples/$f" --chain bench --fn "$f" --sock "$SOCK" --quiet 2>>"$TMP/fn.log" &
	PIDS+=($!)
done
live() {
	"$SPRY" -P "$PIN" -j fn show chain bench 2>/dev/null |
		grep -o '"flags":\["live"\]' | wc -l
}
for i in $(seq 100); do
	[ "$(live)" -ge 3 ] && break
	sleep 0.05
done
[ "$(live)" -ge 3 ] || die "functions did not register: $(cat "$TMP/fn.log")"

# run MODE THREADS: one chain_bench line, key=value pairs
declare -A R
run() {
	local line k v
	if [ "$1" = spry ]; then
		line=$("$BENCH" spry -s "$SOCK" -c bench -t "$2" -d "$SECS" -z "$LEN") || {
			echo "bench: $1 x $2 failed: $line" >&2
			return 1
		}
	else
		line=$("$BENCH" tcp -t "$2" -d "$SECS" -z "$LEN") || {
			echo "bench: $1 x $2 failed: $line" >&2
			return 1
		}
	fi
	for kv in $line; do
		k=${kv%%=*}
		v=${kv#*=}
		R[$1,$2,$k]=$v
	done
}

fail=0
k=0
for t in 1 16; do
	for m in spry tcp; do
		k=$((k + 1))
		echo "bench: point $k of 4: $m, 3 hops, $LEN B, $t client$([ "$t" -eq 1 ] || echo s)" \
			"— about $(((4 - k + 1) * SECS)) s left, then bench/compare.sh" >&2
		run "$m" "$t" || fail=1
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo
echo "### spry chain benchmark ($(uname -r), $(nproc) CPUs, ${LEN}-byte payload, ${SECS} s per point)"
echo
echo "| path | clients | requests/s | p50 (us) | p99 (us) | errors |"
echo "|---|---:|---:|---:|---:|---:|"
for t in 1 16; do
	for m in spry tcp; do
		name="spry: spryd entry + 3 functions (SK_MSG)"
		[ $m = tcp ] && name="baseline: 3 TCP relay processes"
		echo "| $name | $t | ${R[$m,$t,rps]:--} | ${R[$m,$t,p50_us]:--} |" \
			"${R[$m,$t,p99_us]:--} | ${R[$m,$t,errors]:--} |"
	done
done
echo
echo "| clients | rps spry/baseline | p50 spry/baseline | p99 spry/baseline |"
echo "|---:|---:|---:|---:|"
for t in 1 16; do
	echo "| $t | $(ratio "${R[spry,$t,rps]:-0}" "${R[tcp,$t,rps]:-0}") |" \
		"$(ratio "${R[spry,$t,p50_us]:-0}" "${R[tcp,$t,p50_us]:-0}") |" \
		"$(ratio "${R[spry,$t,p99_us]:-0}" "${R[tcp,$t,p99_us]:-0}") |"
done
drops=$("$SPRY" -P "$PIN" -j stats | jq '[.verdicts | to_entries[] |
	select(.key | test("^drop_|^fallback$")) | .value] | add' 2>/dev/null)
echo
echo "router drops during the run: ${drops:-unknown}"

# One section of its own (a script beside this one): a failure is the
# run's, and each says how long it took.
section() {
	local t0=$SECONDS

	"$SRC/bench/$1" || { fail=1; echo "bench/run.sh: $1 failed" >&2; }
	echo "bench/run.sh: $1 took $((SECONDS - t0)) s" >&2
}

# spry against the alternatives (HTTP chain, sidecars, unix sockets):
# bench/results/results.md and plots.  Its own pins, socket and processes.
cleanup
trap - EXIT
section compare.sh
# spry's hop against the bare SK_MSG ring and ping-pong, the runtime's
# blocking wait against its epoll wait, and the unix chain with and
# without the HTTP front (bench/results/hop.md)
section hop_bench.sh
# spry mesh: local TCP with the sockmap accelerator on vs off (docs/MESH.md)
section mesh_bench.sh
# elastic instances: step and burst load traces, idle CPU (issue 11)
section elastic_bench.sh
# cold start of an instance: template vs fork+exec+connect (docs/ELASTIC.md)
section coldstart_bench.sh
# spryd's HTTP fronts, epoll against io_uring, one front thread against
# two (bench/results/front.md)
section front_bench.sh
# datagrams: the AF_XDP front against the kernel UDP socket and the load
# generator's own ceiling (bench/results/dgram.md)
section dgram_bench.sh
# cloud-process state against Redis, and its swap (bench/results/state.md)
section state_bench.sh
# a cloud process's local invocation latency at 10 B (bench/results/process.md)
section proc_bench.sh
# mailboxes between cloud processes against Redis lists: round-trip latency
# and messages/s (bench/results/mail.md)
section mail_bench.sh
# a process's cold start, cloned by its app's template against fork + exec,
# and a declared function's both ways (bench/results/proc_coldstart.md)
section proc_coldstart_bench.sh
# the incremental document build: cold, one section changed, cached
# (examples/docbuild; bench/results/docbuild.md)
section docbuild_bench.sh
# workflows: fan-out against sequential calls, batched against unbatched
# (docs/WORKFLOWS.md; bench/results/workflow.md)
section flow_bench.sh
# K-Means over P processes (state + mailboxes) against the same algorithm
# keeping its state in Redis (examples/kmeans; bench/results/kmeans.md)
section kmeans_bench.sh
exit $fail
