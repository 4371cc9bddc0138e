#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Workflows (docs/WORKFLOWS.md), each against its baseline in the same run:
#   - fan-out: one request calling N functions in parallel
#     (spry_req_fanout) against the same N calls one after the other
#     (spry_req_call), the callee waiting BENCH_FLOW_WORK_US (1000 us: a
#     service waiting on I/O) with N instances of it, and again with a
#     callee that does nothing (the fan-out's own cost);
#   - input batching: THREADS clients of a function with a fixed cost per
#     invocation (BENCH_FLOW_CALL_US, 200 us busy: the set-up of a batched
#     model call) unbatched against batched (spry_fn_run_batch, up to 32,
#     no wait), and with no cost at all (the runtime's own overhead).
# Through spryd's control-socket entry (INVOKE), driven by bench/flow_bench.c.
# Writes bench/results/workflow.md.  Needs root (loads the router); private
# network namespace, pins, socket.
# Environment: OUT (build dir), BENCH_FLOW_N (invocations per fan-out
# point and path, default 400), BENCH_FLOW_MS (ms per batching point and
# round, 1500), BENCH_FLOW_THREADS (16), BENCH_RESULTS.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
N=${BENCH_FLOW_N:-400}
MS=${BENCH_FLOW_MS:-1500}
THREADS=${BENCH_FLOW_THREADS:-16}
WORK_US=${BENCH_FLOW_WORK_US:-1000}
CALL_US=${BENCH_FLOW_CALL_US:-200}
RES=${BENCH_RESULTS:-$SRC/bench/results}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
DRV=$OUT/bench/flow_bench
FN=$OUT/bench/flow_fn

die() { echo "flow_bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$DRV" "$FN"; do
	[ -x "$b" ] || die "$b not built (make bench-progs)"
done
. "$SRC/bench/lib.sh"
bench_private_netns flow_bench "$@"
bench_spry_env flow_bench

spry() { "$SPRY" -P "$PIN" "$@"; }
spry chain add fanw hops fan functions work calls fan:work >/dev/null &&
spry chain add fan0 hops fan functions work calls fan:work >/dev/null &&
spry chain add one hops one max-inflight 1024 >/dev/null &&
spry chain add many hops many max-inflight 1024 >/dev/null &&
spry chain add one0 hops one max-inflight 1024 >/dev/null &&
spry chain add many0 hops many max-inflight 1024 >/dev/null || die "chain add failed"
bench_start "$TMP/spryd.log" "$SPRYD" -P "$PIN" -s "$SOCK"
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || die "spryd did not start: $(cat "$TMP/spryd.log")"

fn() { bench_start "$TMP/fn.log" "$FN" --sock "$SOCK" --quiet "$@"; }
fn --chain fanw --fn fan
for i in $(seq 8); do fn --chain fanw --fn work --work-us "$WORK_US"; done
fn --chain fan0 --fn fan
fn --chain fan0 --fn work --work-us 0
fn --chain one --fn one --call-us "$CALL_US"
fn --chain many --fn many --call-us "$CALL_US" --batch-max 32 --batch-wait-us 0
fn --chain one0 --fn one --call-us 0
fn --chain many0 --fn many --call-us 0 --batch-max 32 --batch-wait-us 0
want=$(( 1 + 8 + 1 + 1 + 4 ))
for i in $(seq 100); do
	live=$(spry -j fn show | jq '[.[] | select(.chain != null) | .instances[]? | select(.listed and (.flags | index("live")))] | length')
	[ "$live" = "$want" ] && break
	sleep 0.05
done
[ "$live" = "$want" ] || die "$live of $want instances registered: $(cat "$TMP/fn.log")"

{
	echo "### Fan-out: N calls in parallel against one after the other"
	echo
	echo "Callee waiting $WORK_US us (8 instances); $N invocations per point and path, one client, closed loop; us."
	echo
	echo "| N | parallel p50 | parallel p99 | sequential p50 | sequential p99 | sequential / parallel (p50) |"
	echo "|---|---|---|---|---|---|"
	for n in 1 2 4 8; do
		echo "flow_bench: fan-out N=$n, callee $WORK_US us" >&2
		"$DRV" fan "$SOCK" fanw "$n" "$N" || exit 1
	done
	echo
	echo "Callee doing nothing (1 instance): the fan-out's own cost."
	echo
	echo "| N | parallel p50 | parallel p99 | sequential p50 | sequential p99 | sequential / parallel (p50) |"
	echo "|---|---|---|---|---|---|"
	for n in 1 4 16; do
		echo "flow_bench: fan-out N=$n, callee 0 us" >&2
		"$DRV" fan "$SOCK" fan0 "$n" "$N" || exit 1
	done
	echo
	echo "### Input batching: unbatched against batched (up to 32, no wait)"
	echo
	echo "$THREADS clients, closed loop, 10-byte requests, 2 rounds of $MS ms per function, alternating."
	echo
	echo "Fixed cost of $CALL_US us per invocation of the handler:"
	echo
	echo "| function | clients | requests/s | p50 us | p99 us | throughput / unbatched |"
	echo "|---|---|---|---|---|---|"
	echo "flow_bench: batching, $CALL_US us per invocation" >&2
	"$DRV" batch "$SOCK" one many "$THREADS" "$MS" || exit 1
	echo
	echo "No cost (the runtime's own overhead of batching):"
	echo
	echo "| function | clients | requests/s | p50 us | p99 us | throughput / unbatched |"
	echo "|---|---|---|---|---|---|"
	echo "flow_bench: batching, no cost" >&2
	"$DRV" batch "$SOCK" one0 many0 "$THREADS" "$MS" || exit 1
} >"$TMP/table.md" || die "the driver failed: $(tail -3 "$TMP/fn.log")"
cat "$TMP/table.md"

mkdir -p "$RES"
{
	echo "# Workflows: fan-out and batching"
	echo
	echo "Generated by bench/flow_bench.sh ($(date -u '+%Y-%m-%d %H:%M UTC')) on"
	echo "$(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg) at the end; through"
	echo "spryd's control-socket entry (INVOKE), bench/flow_fn.c's functions,"
	echo "docs/WORKFLOWS.md."
	echo
	cat "$TMP/table.md"
} >"$RES/workflow.md"
echo "flow_bench: $RES/workflow.md" >&2
