#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Datagram requests per second: spryd's AF_XDP path (--dgram, the XDP
# ingress filter steering into a socket whose UMEM is the chain's pool)
# against the kernel UDP socket baseline (--dgram-udp: recvmmsg, copy into
# the pool, sendmmsg), in one run, through the same one-function chain
# (upper, BENCH_INST instances, default 1).
#
#   client netns: dgram_load (WINDOW outstanding) --veth--> server netns:
#   XDP -> AF_XDP -> spryd -SK_MSG-> upper -SK_MSG-> spryd -> TX ring
#
# Each path runs BENCH_SECS seconds (default 10) twice, alternating
# (AF_XDP, UDP, AF_XDP, UDP): about a minute in all.  Prints a markdown
# table (responses/s, p50/p99 latency, lost) and the AF_XDP/UDP ratio of
# the best runs.  Builds first; needs root; runs in private network
# namespaces with its own pin directory and stops everything it started.
# Environment: OUT (build dir), BENCH_SECS, BENCH_LEN (payload, default
# 64), BENCH_WINDOW (default 64), BENCH_INST.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SECS=${BENCH_SECS:-10}
LEN=${BENCH_LEN:-64}
WINDOW=${BENCH_WINDOW:-64}
INST=${BENCH_INST:-1}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
LOAD=$OUT/bench/dgram_load
PORT=9100
UPORT=9200

die() { echo "dgram_bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router and XDP)"
if [ -z "${SPRY_BENCH_NETNS:-}" ]; then
	make -s -C "$SRC" O="$OUT" all bench-progs >/dev/null || die "build failed"
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf ||
		die "no bpffs"
	SPRY_BENCH_NETNS=1 exec unshare -n "$BASH" "$0" "$@"
fi
for b in "$SPRY" "$SPRYD" "$LOAD" "$OUT/examples/upper"; do
	[ -x "$b" ] || die "$b not built"
done

PIN=/sys/fs/bpf/spry-dgram-bench-$$
TMP=$(mktemp -d /tmp/spry-dgram-bench.XXXXXX)
SOCK=$TMP/ctl.sock
PIDS=()
NSPID=
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	"$SPRY" -P "$PIN" ingress detach >/dev/null 2>&1
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
spry() { "$SPRY" -P "$PIN" "$@"; }
cli() { nsenter -t "$NSPID" -n "$@"; }

ip link set lo up
unshare -n sleep 3600 &
NSPID=$!
PIDS+=("$NSPID")
for _ in $(seq 50); do
	[ "$(readlink /proc/$NSPID/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.02
done
ip link add srv numrxqueues 1 numtxqueues 1 type veth peer name cli \
	numrxqueues 1 numtxqueues 1 || die "cannot create a veth pair"
ip link set cli netns "$NSPID" &&
ip addr add 10.77.0.1/24 dev srv && ip link set srv up &&
cli ip link set lo up && cli ip addr add 10.77.0.2/24 dev cli && cli ip link set cli up ||
	die "veth setup"

spry load >/dev/null &&
spry chain add up hops upper buffer-size 4096 buffers 8192 max-inflight 4096 >/dev/null &&
spry ingress attach dev srv dgram-port $PORT >/dev/null &&
spry ingress allow 10.77.0.2/32 port $PORT chain up >/dev/null || die "spry setup"
"$SPRYD" -P "$PIN" -s "$SOCK" --http none --dgram srv:0=up \
	--dgram-udp 10.77.0.1:$UPORT=up 2>"$TMP/spryd.log" &
PIDS+=($!)
for _ in $(seq 250); do [ -S "$SOCK" ] && break; sleep 0.02; done
[ -S "$SOCK" ] || { cat "$TMP/spryd.log"; die "spryd did not start"; }
for i in $(seq "$INST"); do
	"$OUT/examples/upper" --chain up --fn upper --sock "$SOCK" 2>"$TMP/upper$i.log" &
	PIDS+=($!)
done
sleep 0.5
id=$(spry -j chain show | jq -r '.[] | select(.name == "up") | .id' 2>/dev/null)
[ -n "$id" ] && [ "$id" != null ] || id=1

# warm up (ARP, caches)
cli "$LOAD" 10.77.0.1 $PORT "$id" 1 "$WINDOW" "$LEN" >/dev/null
cli "$LOAD" 10.77.0.1 $UPORT "$id" 1 "$WINDOW" "$LEN" >/dev/null

declare -A best
rows=()
for round in 1 2; do
	for path in af_xdp udp; do
		port=$PORT
		[ $path = udp ] && port=$UPORT
		line=$(cli "$LOAD" 10.77.0.1 $port "$id" "$SECS" "$WINDOW" "$LEN") ||
			die "load generator failed"
		eval "$(echo "$line" | tr ' ' '\n' | sed 's/^/r_/')"
		rows+=("| $path | $round | $r_rps | $r_p50_us | $r_p99_us | $r_lost | $r_late | $r_bad |")
		if [ -z "${best[$path]:-}" ] || [ "$r_rps" -gt "${best[$path]}" ]; then
			best[$path]=$r_rps
		fi
	done
done

echo "Datagram requests through chain 'up' (upper, $INST instance(s)), payload $LEN B,"
echo "window $WINDOW, ${SECS} s per run, veth in copy mode ($(nproc) CPUs):"
echo
echo "| path | run | responses/s | p50 µs | p99 µs | lost | late | bad |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
awk -v a="${best[af_xdp]}" -v u="${best[udp]}" 'BEGIN {
	printf "AF_XDP / kernel UDP (best runs): %d / %d = %.2fx\n", a, u, u ? a / u : 0 }'
kill -TERM "${PIDS[1]}" 2>/dev/null
sleep 0.5
grep -E "dgram .* -> up: rx" "$TMP/spryd.log" | sed 's/^spryd [0-9:.]* /# /'
