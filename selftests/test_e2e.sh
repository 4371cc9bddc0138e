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
spry_private_netns

E2E=$SPRY_HELPERS/e2e_client
require_bins "$SPRY" "$SPRYD" "$E2E" "$SPRY_OUT"/examples/{upper,reverse,wordcount}
command -v jq >/dev/null || tap_skip_all "jq not installed"

N=${SPRY_E2E_REQUESTS:-100000}
N_BIG=2000
spry_test_env e2e
FNS=()

six_live() { [ "$(n_live e2e)" -eq 6 ]; }
none_live() { [ "$(n_live e2e)" -eq 0 ]; }

# no_drops: no drop or fallback verdict, no function dropped anything
NO_DROPS='(.verdicts | to_entries | map(select(.key | test("^drop_|^fallback$"))) |
	   all(.value == 0)) and
	  (.functions | all(.dropped == 0))'
no_drops() { spry -j stats | jq -e "$NO_DROPS" >/dev/null; }

tap_plan

setup() {
	spry load >/dev/null &&
	spry chain add e2e hops upper,reverse,wordcount >/dev/null &&
	start_spryd
}
setup
tap_ok $? "setup: router loaded, chain e2e = upper,reverse,wordcount, spryd listening" || {
	tap_diag "$(cat "$TMP/spryd.log" 2>/dev/null)"
	tap_finish
}

for f in upper reverse wordcount upper reverse wordcount; do
	start "$SPRY_OUT/examples/$f" "$TMP/fn-$f-${#PIDS[@]}.log" \
		--chain e2e --fn "$f" --sock "$SOCK"
	FNS+=("$LAST")
done
wait_for 5 six_live
tap_ok $? "6 instances (2 x upper, reverse, wordcount) registered"

timeout 300 "$E2E" -s "$SOCK" -c e2e -n "$N" -t 16 >"$TMP/e2e.out" 2>"$TMP/e2e.err"
rc=$?
tap_diag "$(cat "$TMP/e2e.out")"
[ -s "$TMP/e2e.err" ] && tap_diag "$(head -5 "$TMP/e2e.err")"
tap_ok $rc "$N requests from 16 clients: none lost, duplicated or wrong"

json_check "$(spry -j stats)" "$NO_DROPS" \
	"router: no drop or fallback verdict, no function dropped anything"

json_check "$(spry -j stats)" '
	.verdicts.done == $n and .verdicts.forward == 3 * $n and .verdicts.error == 0 and
	([.functions[] | select(.chain == "e2e")] | length == 3 and
	 all(.delivered == $n and .sent == $n and .errors == 0))' \
	"counters add up: done $N, forward 3 x $N, each function delivered = sent = $N" \
	--argjson n "$N"

wait_for 3 all_idle e2e 6
tap_ok $? "fn show: 6 instances, inflight 0"

wait_for 3 pool_whole e2e
tap_ok $? "every pool buffer is free again (${POOL:-pool not found})"

# payloads near the buffer size: wordcount resizes into large buffers
timeout 120 "$E2E" -s "$SOCK" -c e2e -n "$N_BIG" -t 4 -z 4090 >"$TMP/big.out" 2>"$TMP/big.err"
rc=$?
tap_diag "$(cat "$TMP/big.out")"
[ -s "$TMP/big.err" ] && tap_diag "$(head -5 "$TMP/big.err")"
long=$(sed -n 's/.* long=\([0-9]*\) .*/\1/p' "$TMP/big.out")
[ $rc -eq 0 ] && [ "${long:-0}" -gt 0 ]
tap_ok $? "$N_BIG requests of up to 4090 bytes: all exact, ${long:-0} answers over 4096 bytes (resized by wordcount)"

no_drops && wait_for 3 all_idle e2e 6 && wait_for 3 pool_whole e2e
tap_ok $? "after resizing: no drops, all idle, every buffer free (${POOL:-})"

json_eq "$(spry -j stats)" .verdicts.error 0 "no request ended in an error status"

term_all "${FNS[@]}"
ok=$?
tap_ok $ok "SIGTERM: all 6 instances exit 0"

wait_for 3 none_live
tap_ok $? "no instance left in fn show"

tap_finish
