#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Datagram requests per second: spryd's AF_XDP path (--dgram, the XDP
# ingress filter steering into a socket whose UMEM is the chain's pool)
# against the kernel UDP socket baseline (--dgram-udp: recvmmsg, copy into
# the pool, sendmmsg), in one run, through the same one-function chain
# (upper, BENCH_INST instances, default 1).
#
#   bench/dgram_bench.sh [-r ROUNDS] [-d SECS] [BASE]
#
#   client netns: dgram_load (WINDOW outstanding) --veth--> server netns:
#   XDP -> AF_XDP -> spryd -SK_MSG-> upper -SK_MSG-> spryd -> TX ring
#
# With BASE (a git revision: the previous datagram front), BASE is built
# in a temporary git worktree and served by its own spry (own pin
# directory, router, XDP filter, spryd and upper) on a second veth pair,
# so both fronts are measured in the same run: "af_xdp-A" (BASE), "af_xdp"
# (this tree) and "udp" (this tree's kernel UDP socket).  A third pair
# carries "echo": an XDP program (bench/dgram_echo.bpf.c) answering every
# request in the driver, no process involved: the generator's own ceiling
# on this machine.  Each round runs every path for SECS seconds (default
# 5), in an order rotated each round; ROUNDS (default 3) rounds.  Prints
# every run (responses/s, p50/p99, lost, the generator's and the server's
# (spryd + upper) busy CPUs and CPU us per response, spryd's part of it), the medians and the
# ratios of the medians, of responses/s and of total CPU per response
# (which others' load on the machine disturbs less).  Builds first; needs root; private
# network namespaces, own pin directories; stops everything it started.
# Environment: OUT (build dir), BENCH_SECS, BENCH_LEN (payload, default
# 64), BENCH_WINDOW (default 64), BENCH_INST.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SECS=${BENCH_SECS:-5}
ROUNDS=3
LEN=${BENCH_LEN:-64}
WINDOW=${BENCH_WINDOW:-64}
INST=${BENCH_INST:-1}
PORT=9100
UPORT=9200

die() { echo "dgram_bench: $*" >&2; exit 1; }
usage() { echo "usage: bench/dgram_bench.sh [-r ROUNDS] [-d SECS] [BASE]" >&2; exit 2; }

if [ -z "${SPRY_DGRAM_BENCH_INNER:-}" ]; then
	while getopts r:d:h o; do
		case $o in
		r) ROUNDS=$OPTARG ;;
		d) SECS=$OPTARG ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -le 1 ] || usage
	[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "bad rounds '$ROUNDS'"
	[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "bad seconds '$SECS'"
	[ "$(id -u)" -eq 0 ] || die "needs root (loads the router and XDP)"
	make -s -C "$SRC" O="$OUT" all bench-progs >/dev/null || die "build failed"
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf ||
		die "no bpffs"
	TMP=$(mktemp -d /tmp/spry-dgram-bench.XXXXXX) || die "mktemp failed"
	outer_cleanup() {
		[ -d "$TMP/src-a" ] && git -C "$SRC" worktree remove --force "$TMP/src-a"
		git -C "$SRC" worktree prune
		rm -rf "$TMP"
	}
	trap outer_cleanup EXIT
	trap 'exit 130' INT TERM
	BASE_OUT='' BASE_NAME=''
	if [ $# -eq 1 ]; then
		rev=$(git -C "$SRC" rev-parse --verify -q "$1^{commit}") || die "no revision '$1'"
		BASE_NAME="$(git -C "$SRC" log -1 --format=%h "$rev") ($1)"
		echo "dgram_bench: building $BASE_NAME in $TMP/build-a" >&2
		git -C "$SRC" worktree add -q --detach "$TMP/src-a" "$rev" ||
			die "git worktree add $rev failed"
		nice make -s -C "$TMP/src-a" O="$TMP/build-a" -j"$(nproc)" all \
			>"$TMP/make-a.log" 2>&1 || die "build of $1 failed: $(tail -5 "$TMP/make-a.log")"
		BASE_OUT=$TMP/build-a
	fi
	SPRY_DGRAM_BENCH_INNER=1 unshare -n "$BASH" "$0" -r "$ROUNDS" -d "$SECS" -- \
		"$TMP" "$BASE_OUT" "$BASE_NAME"
	exit $?
fi

# --- in the private network namespace
while getopts r:d: o; do
	case $o in
	r) ROUNDS=$OPTARG ;;
	d) SECS=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
TMP=$1 BASE_OUT=$2 BASE_NAME=$3
LOAD=$OUT/bench/dgram_load
ECHO=$OUT/bench/dgram_echo
for b in "$OUT/spry" "$OUT/spryd" "$LOAD" "$ECHO" "$OUT/examples/upper"; do
	[ -x "$b" ] || die "$b not built"
done

PIDS=()
PINS=()
NSPID=
declare -A SPRY_OF SERVER_PIDS ADDR_OF PORT_OF
cleanup() {
	local p i
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for i in "${!PINS[@]}"; do
		"${SPRY_OF[$i]}" -P "${PINS[$i]}" ingress detach >/dev/null 2>&1
		"${SPRY_OF[$i]}" -P "${PINS[$i]}" unload >/dev/null 2>&1
		rm -rf "${PINS[$i]}"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cli() { nsenter -t "$NSPID" -n "$@"; }

ip link set lo up
unshare -n sleep 3600 &
NSPID=$!
PIDS+=("$NSPID")
for _ in $(seq 50); do
	[ "$(readlink /proc/$NSPID/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.02
done
cli ip link set lo up

# pair SRV/CLI on 10.77.N.0/24, one queue each (one AF_XDP socket serves all)
veth_pair() {
	local srv=$1 cli_if=$2 n=$3
	ip link add "$srv" numrxqueues 1 numtxqueues 1 type veth peer name "$cli_if" \
		numrxqueues 1 numtxqueues 1 || die "cannot create a veth pair"
	ip link set "$cli_if" netns "$NSPID" &&
	ip addr add 10.77.$n.1/24 dev "$srv" && ip link set "$srv" up &&
	cli ip addr add 10.77.$n.2/24 dev "$cli_if" && cli ip link set "$cli_if" up ||
		die "veth setup"
}

# spry of build dir $1 on device $2 (10.77.$3.1), its name $4; extra spryd args after
spry_up() {
	local out=$1 dev=$2 n=$3 name=$4 pin sock id i
	shift 4
	pin=/sys/fs/bpf/spry-dgram-bench-$$-$name
	sock=$TMP/$name.sock
	PINS+=("$pin")
	SPRY_OF[$((${#PINS[@]} - 1))]=$out/spry
	"$out/spry" -P "$pin" load >/dev/null &&
	"$out/spry" -P "$pin" chain add up hops upper buffer-size 4096 buffers 8192 \
		max-inflight 4096 >/dev/null &&
	"$out/spry" -P "$pin" ingress attach dev "$dev" dgram-port $PORT >/dev/null &&
	"$out/spry" -P "$pin" ingress allow 10.77.$n.2/32 port $PORT chain up >/dev/null ||
		die "$name: spry setup"
	SPRY_STATE_DIR=$TMP/state-$name "$out/spryd" -P "$pin" -s "$sock" --http none \
		--dgram "$dev:0=up" "$@" \
		2>"$TMP/spryd-$name.log" &
	PIDS+=($!)
	SERVER_PIDS[$name]=$!
	for _ in $(seq 250); do [ -S "$sock" ] && break; sleep 0.02; done
	[ -S "$sock" ] || { cat "$TMP/spryd-$name.log"; die "$name: spryd did not start"; }
	for i in $(seq "$INST"); do
		"$out/examples/upper" --chain up --fn upper --sock "$sock" \
			2>"$TMP/upper-$name-$i.log" &
		PIDS+=($!)
		SERVER_PIDS[$name]+=" $!"
	done
	sleep 0.5
	id=$("$out/spry" -P "$pin" -j chain show | jq -r '.[] | select(.name == "up") | .id' \
		2>/dev/null)
	[ -n "$id" ] && [ "$id" != null ] || id=1
	CHAIN_ID=$id
}

PATHS=()
veth_pair srv cli 0
spry_up "$OUT" srv 0 b --dgram-udp 10.77.0.1:$UPORT=up
CHAIN=$CHAIN_ID
PATHS+=(af_xdp udp)
ADDR_OF[af_xdp]=10.77.0.1 PORT_OF[af_xdp]=$PORT
ADDR_OF[udp]=10.77.0.1 PORT_OF[udp]=$UPORT
SERVER_PIDS[af_xdp]=${SERVER_PIDS[b]}
SERVER_PIDS[udp]=${SERVER_PIDS[b]}
if [ -n "$BASE_OUT" ]; then
	veth_pair srva clia 1
	spry_up "$BASE_OUT" srva 1 a
	[ "$CHAIN_ID" = "$CHAIN" ] || die "A's chain id $CHAIN_ID, B's $CHAIN"
	PATHS+=(af_xdp-A)
	ADDR_OF[af_xdp-A]=10.77.1.1 PORT_OF[af_xdp-A]=$PORT
	SERVER_PIDS[af_xdp-A]=${SERVER_PIDS[a]}
fi
# the generator's ceiling: answered by XDP in the driver (veth hands
# XDP_TX frames to the peer's NAPI: an XDP_PASS program on the client's
# end of this pair only)
veth_pair srve clie 2
for e in "srve $PORT" "clie pass"; do
	# shellcheck disable=SC2086
	# (nsenter execs it, so $! is the program's pid: a function would fork)
	if [ "${e% *}" = clie ]; then nsenter -t "$NSPID" -n "$ECHO" $e 2>>"$TMP/echo.log" &
	else "$ECHO" $e 2>>"$TMP/echo.log" & fi
	PIDS+=($!)
	sleep 0.3
	kill -0 $! 2>/dev/null || { cat "$TMP/echo.log"; die "dgram_echo $e did not start"; }
done
PATHS+=(echo)
ADDR_OF[echo]=10.77.2.1 PORT_OF[echo]=$PORT
SERVER_PIDS[echo]=

# CPU ticks (user + system) of pids
ticks() {
	local p t=0
	for p in "$@"; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo $t
}
HZ=$(getconf CLK_TCK)

# warm up (ARP, caches)
for p in "${PATHS[@]}"; do
	cli "$LOAD" "${ADDR_OF[$p]}" "${PORT_OF[$p]}" "$CHAIN" 1 "$WINDOW" "$LEN" >/dev/null ||
		die "$p: load generator failed"
done

echo "Datagram requests through chain 'up' (upper, $INST instance(s)), payload $LEN B,"
echo "window $WINDOW, ${SECS} s per run, $ROUNDS rounds, veth in copy mode ($(nproc) CPUs);"
echo "B = this tree${BASE_NAME:+, A = $BASE_NAME}; $(date -u '+%F %H:%M UTC'), load average" \
	"$(cut -d' ' -f1-3 /proc/loadavg) before:"
echo
echo "| path | round | responses/s | p50 µs | p99 µs | lost | generator CPUs | server CPUs | generator µs/resp | server µs/resp | spryd µs/resp | total µs/resp |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
ROWS=$TMP/rows.tsv
: >"$ROWS"
n_paths=${#PATHS[@]}
for round in $(seq "$ROUNDS"); do
	for k in $(seq 0 $((n_paths - 1))); do
		p=${PATHS[$(((k + round - 1) % n_paths))]}
		# shellcheck disable=SC2086
		t0=$(ticks ${SERVER_PIDS[$p]})
		d0=$(ticks ${SERVER_PIDS[$p]%% *})
		line=$(cli "$LOAD" "${ADDR_OF[$p]}" "${PORT_OF[$p]}" "$CHAIN" "$SECS" "$WINDOW" \
			"$LEN") || die "$p: load generator failed"
		# shellcheck disable=SC2086
		t1=$(ticks ${SERVER_PIDS[$p]})
		d1=$(ticks ${SERVER_PIDS[$p]%% *})
		eval "$(echo "$line" | tr ' ' '\n' | sed 's/^/r_/')"
		srv=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v s="$r_secs" 'BEGIN { printf "%.2f", t / hz / s }')
		us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v q="$r_responses" \
			'BEGIN { printf "%.2f", q ? t / hz * 1e6 / q : 0 }')
		gus=$(awk -v c="$r_gen_cpu" -v s="$r_secs" -v q="$r_responses" \
			'BEGIN { printf "%.2f", q ? c * s * 1e6 / q : 0 }')
		dus=$(awk -v t=$((d1 - d0)) -v hz="$HZ" -v q="$r_responses" \
			'BEGIN { printf "%.2f", q ? t / hz * 1e6 / q : 0 }')
		tot=$(awk -v a="$gus" -v b="$us" 'BEGIN { printf "%.2f", a + b }')
		[ "$p" = echo ] && srv=0 us=0 dus=0 tot=$gus
		echo "| $p | $round | $r_rps | $r_p50_us | $r_p99_us | $((r_lost + r_late + r_bad)) |" \
			"$r_gen_cpu | $srv | $gus | $us | $dus | $tot |"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$r_rps" "$r_p50_us" "$r_gen_cpu" \
			"$us" "$gus" "$tot" "$dus" >>"$ROWS"
	done
done
echo
echo "Medians over the rounds (load average after: $(cut -d' ' -f1-3 /proc/loadavg)):"
echo
echo "| path | responses/s | p50 µs | generator CPUs | generator µs/resp | server µs/resp | spryd µs/resp | total µs/resp |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
declare -A MED CPU
med() {	# median of column $2 of path $1
	awk -F'\t' -v p="$1" -v c="$2" '$1 == p { print $c }' "$ROWS" | sort -g |
		awk '{ v[NR] = $1 } END { if (!NR) print 0; else if (NR % 2) print v[(NR + 1) / 2];
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for p in "${PATHS[@]}"; do
	MED[$p]=$(med "$p" 2)
	CPU[$p]=$(med "$p" 7)
	echo "| $p | ${MED[$p]} | $(med "$p" 3) | $(med "$p" 4) | $(med "$p" 6) | $(med "$p" 5) |" \
		"$(med "$p" 8) | ${CPU[$p]} |"
done
echo
ratio() {
	awk -v a="${MED[$1]}" -v b="${MED[$2]}" -v t="$3" \
		'BEGIN { printf "%s: %.0f / %.0f = %.2fx\n", t, a, b, b ? a / b : 0 }'
}
# CPU per response, generator's and server's: what the paths cost
# whatever share of the CPUs others leave them (tick accounting, softirq
# work charged to the task it interrupted)
cpu_ratio() {
	awk -v a="${CPU[$1]}" -v b="${CPU[$2]}" -v t="$3" \
		'BEGIN { printf "%s: %.2f / %.2f us = %.2fx\n", t, a, b, b ? a / b : 0 }'
}
ratio af_xdp udp "AF_XDP / kernel UDP (B)"
[ -n "$BASE_OUT" ] && ratio af_xdp-A udp "AF_XDP / kernel UDP (A)"
[ -n "$BASE_OUT" ] && ratio af_xdp af_xdp-A "AF_XDP B / A"
ratio echo udp "echo (generator ceiling) / kernel UDP"
ratio af_xdp echo "AF_XDP (B) / echo"
cpu_ratio udp af_xdp "total CPU per response, kernel UDP / AF_XDP (B)"
[ -n "$BASE_OUT" ] && cpu_ratio af_xdp-A af_xdp "total CPU per response, AF_XDP A / B"
cpu_ratio udp echo "total CPU per response, kernel UDP / echo (the most a server can save)"
for n in b ${BASE_OUT:+a}; do
	# shellcheck disable=SC2086
	set -- ${SERVER_PIDS[$n]}
	kill -TERM "$1" 2>/dev/null
	sleep 0.5
	grep -E "dgram .* -> up: rx" "$TMP/spryd-$n.log" | sed "s/^spryd [0-9:.]* /# $n: /"
done
exit 0
