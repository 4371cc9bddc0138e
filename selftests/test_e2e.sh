#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End to end: the chain upper -> reverse -> wordcount with two instances
# of each function carries 100,000 requests from 16 clients, every answer
# checked byte for byte (selftests/e2e_client.c); then the router dropped
# nothing, the counters add up, every pool buffer is free and every
# instance is idle.  A second run with payloads near the buffer size makes
# wordcount move every request to a large buffer (spry_req_resize).
#
# Runs in a private network namespace with its own pin directory, control
# socket and temporary directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
if [ -z "${SPRY_TEST_NETNS:-}" ]; then
	SPRY_TEST_NETNS=1 exec unshare -n "$0" "$@"
fi
ip link set lo up || tap_skip_all "cannot bring lo up in a new network namespace"

E2E=$SPRY_OUT/selftests/e2e_client
for b in "$SPRY" "$SPRYD" "$E2E" "$SPRY_OUT"/examples/{upper,reverse,wordcount}; do
	[ -x "$b" ] || tap_skip_all "$b not built"
done
command -v jq >/dev/null || tap_skip_all "jq not installed"

N=${SPRY_E2E_REQUESTS:-100000}
N_BIG=2000
PIN=/sys/fs/bpf/spry-test-e2e-$$
TMP=$(mktemp -d /tmp/spry-test-e2e-XXXXXX)
SOCK=$TMP/ctl.sock
PIDS=()
FNS=()

cleanup() {
	kill_wait "${PIDS[@]}"
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

spry() { "$SPRY" -P "$PIN" "$@"; }

start() {
	local bin=$1 log=$2
	shift 2
	"$bin" "$@" 2>"$log" &
	LAST=$!
	PIDS+=("$LAST")
}

# n_live: live, listed instances of the chain's three functions
n_live() {
	spry -j fn show chain e2e | jq '[.[] | select(.chain == "e2e") | .instances[] |
		select(.listed and (.flags | index("live")))] | length'
}
six_live() { [ "$(n_live)" -eq 6 ]; }
none_live() { [ "$(n_live)" -eq 0 ]; }

# six instances, all idle
all_idle() {
	spry -j fn show chain e2e | jq -e '[.[] | select(.chain == "e2e") | .instances[] |
		select(.listed)] | length == 6 and all(.inflight == 0)' >/dev/null
}

# pool_whole: every buffer of the chain's pool is free (read through
# spryd's memfd: /proc/PID/fd/N)
pool_whole() {
	local fd st
	for fd in /proc/"$SPRYD_PID"/fd/*; do
		case "$(readlink "$fd")" in
		/memfd:spry-e2e*|*/spry-e2e*) ;;
		*) continue ;;
		esac
		st=$("$E2E" pool "$fd") || return 1
		POOL="$st"
		set -- $st
		[ "${1#n_bufs=}" = "${2#n_free=}" ] && [ "${3#n_large=}" = "${4#n_large_free=}" ]
		return
	done
	return 1
}

# no_drops: no drop or fallback verdict, no function dropped anything
no_drops() {
	spry -j stats | jq -e '
		(.verdicts | to_entries | map(select(.key | test("^drop_|^fallback$"))) |
		 all(.value == 0)) and
		(.functions | all(.dropped == 0))' >/dev/null
}

tap_plan 12

# 1
setup() {
	spry load >/dev/null &&
	spry chain add e2e hops upper,reverse,wordcount >/dev/null || return 1
	start "$SPRYD" "$TMP/spryd.log" -P "$PIN" -s "$SOCK"
	SPRYD_PID=$LAST
	wait_for 5 test -S "$SOCK"
}
setup
tap_ok $? "setup: router loaded, chain e2e = upper,reverse,wordcount, spryd listening" || {
	tap_diag "$(cat "$TMP/spryd.log" 2>/dev/null)"
	tap_finish
}

# 2
for f in upper reverse wordcount upper reverse wordcount; do
	start "$SPRY_OUT/examples/$f" "$TMP/fn-$f-${#PIDS[@]}.log" \
		--chain e2e --fn "$f" --sock "$SOCK"
	FNS+=("$LAST")
done
wait_for 5 six_live
tap_ok $? "6 instances (2 x upper, reverse, wordcount) registered"

# 3
timeout 300 "$E2E" -s "$SOCK" -c e2e -n "$N" -t 16 >"$TMP/e2e.out" 2>"$TMP/e2e.err"
rc=$?
tap_diag "$(cat "$TMP/e2e.out")"
[ -s "$TMP/e2e.err" ] && tap_diag "$(head -5 "$TMP/e2e.err")"
tap_ok $rc "$N requests from 16 clients: none lost, duplicated or wrong"

# 4
no_drops
tap_ok $? "router: no drop or fallback verdict, no function dropped anything"

# 5
spry -j stats | jq -e --argjson n "$N" '
	.verdicts.done == $n and .verdicts.forward == 3 * $n and .verdicts.error == 0 and
	([.functions[] | select(.chain == "e2e")] | length == 3 and
	 all(.delivered == $n and .sent == $n and .errors == 0))' >/dev/null
tap_ok $? "counters add up: done $N, forward 3 x $N, each function delivered = sent = $N"

# 6
wait_for 3 all_idle
tap_ok $? "fn show: 6 instances, inflight 0"

# 7
wait_for 3 pool_whole
tap_ok $? "every pool buffer is free again (${POOL:-pool not found})"

# 8: payloads near the buffer size: wordcount resizes into large buffers
timeout 120 "$E2E" -s "$SOCK" -c e2e -n "$N_BIG" -t 4 -z 4090 >"$TMP/big.out" 2>"$TMP/big.err"
rc=$?
tap_diag "$(cat "$TMP/big.out")"
[ -s "$TMP/big.err" ] && tap_diag "$(head -5 "$TMP/big.err")"
long=$(sed -n 's/.* long=\([0-9]*\) .*/\1/p' "$TMP/big.out")
[ $rc -eq 0 ] && [ "${long:-0}" -gt 0 ]
tap_ok $? "$N_BIG requests of up to 4090 bytes: all exact, ${long:-0} answers over 4096 bytes (resized by wordcount)"

# 9
no_drops && wait_for 3 all_idle && wait_for 3 pool_whole
tap_ok $? "after resizing: no drops, all idle, every buffer free (${POOL:-})"

# 10
spry -j stats | jq -e '.verdicts.error == 0' >/dev/null
tap_ok $? "no request ended in an error status"

# 11
ok=0
for p in "${FNS[@]}"; do
	kill -TERM "$p"
done
for p in "${FNS[@]}"; do
	if wait_for 3 proc_gone "$p"; then
		wait "$p" || { ok=1; tap_diag "pid $p exited with $?"; }
	else
		ok=1
		tap_diag "pid $p still running"
	fi
done
tap_ok $ok "SIGTERM: all 6 instances exit 0"

# 12
wait_for 3 none_live
tap_ok $? "no instance left in fn show"

tap_finish
