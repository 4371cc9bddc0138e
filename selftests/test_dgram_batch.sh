#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The datagram front's batches (docs/DATAGRAM.md "The AF_XDP path"): a
# burst of requests from many clients (each its own source port, more
# than the 64 slots of the per-socket metadata cache, so slots are shared)
# reaches spryd's AF_XDP socket as one RX batch and leaves in one TX kick.
# The chain's function (fn_meta) answers with the metadata spryd wrote, so
# every answer shows it was built for its own client: "src: ADDR:PORT".
# Every 4th request names another chain (answered NO_CHAIN inside the
# batch) and the chain's in-flight bound is 4, so requests of a batch
# may be refused NO_INSTANCE; the rest must be answered OK, byte-exact.
# A partial batch (3 requests) too.  After each burst the pool is at
# rest (the fill ring's frames back, refilled and reaped in batches), and
# spryd's exit line counts exactly what was sent.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root_bpf
command -v jq >/dev/null || tap_skip_all "jq needed"
command -v python3 >/dev/null || tap_skip_all "python3 needed"
command -v nsenter >/dev/null || tap_skip_all "nsenter needed"
spry_private_netns "$@"
require_bins "$SPRY" "$SPRYD" "$SPRY_HELPERS/fn_meta" "$SPRY_HELPERS/e2e_client"
spry_test_env dgbatch

CLIENT="$SPRY_SELFTESTS/dgram_client.py"
PORT=9110
NSPID=

spry_test_cleanup_extra() {
	[ -n "$NSPID" ] && kill "$NSPID" 2>/dev/null
	"$SPRY" -P "$PIN" ingress detach >/dev/null 2>&1
	ip link del dgb0 2>/dev/null
}

cli() { nsenter -t "$NSPID" -n "$@"; }

tap_plan

unshare -n sleep 600 &
NSPID=$!
PIDS+=("$NSPID")
other_ns() { [ "$(readlink /proc/"$NSPID"/ns/net)" != "$(readlink /proc/self/ns/net)" ]; }
wait_for 5 other_ns
ip link set lo up &&
ip link add dgb0 numrxqueues 1 numtxqueues 1 type veth peer name dgb1 \
	numrxqueues 1 numtxqueues 1 &&
ip link set dgb1 netns "$NSPID" &&
ip addr add 10.78.0.1/24 dev dgb0 && ip link set dgb0 up &&
cli ip link set lo up && cli ip addr add 10.78.0.2/24 dev dgb1 && cli ip link set dgb1 up
tap_ok $? "veth dgb0 (here) <-> dgb1 (client namespace), one queue each" || tap_finish

spry load >/dev/null &&
spry chain add meta hops fn_meta buffer-size 4096 buffers 512 max-inflight 4 >/dev/null &&
spry chain add other hops fn_meta >/dev/null &&
spry ingress attach dev dgb0 dgram-port $PORT >/dev/null &&
spry ingress allow 10.78.0.2/32 port $PORT >/dev/null
tap_ok $? "chain meta (fn_meta, max-inflight 4), chain other, ingress on dgb0"

id=$(spry -j chain show | jq -r '.[] | select(.name == "meta") | .id')
oid=$(spry -j chain show | jq -r '.[] | select(.name == "other") | .id')
start_spryd --http none --dgram dgb0:0=meta
for i in 1 2; do
	start "$SPRY_HELPERS/fn_meta" "$TMP/meta$i.log" --chain meta --fn fn_meta --sock "$SOCK"
done
wait_for 10 live_is meta 2 && grep -q "dgram dgb0 queue 0 -> chain meta" "$TMP/spryd.log"
tap_ok $? "spryd --dgram dgb0:0=meta, 2 x fn_meta" || { cat "$TMP/spryd.log"; tap_finish; }
FILL=$(sed -n 's/.*, \([0-9]*\) on the fill ring.*/\1/p' "$TMP/spryd.log")

ok_sum=0 busy_sum=0 nochain_sum=0 sent=0
# burst N: N clients (new sockets, new ports) at once; checks the counts and the pool at rest after
burst() {
	local n=$1 out ok busy nochain
	out=$(cli python3 "$CLIENT" burst 10.78.0.1 $PORT "$id" "$oid" "$n" 10.78.0.2) ||
		{ tap_diag "$out"; return 1; }
	eval "$out"
	sent=$((sent + n))
	ok_sum=$((ok_sum + ok)) busy_sum=$((busy_sum + busy)) nochain_sum=$((nochain_sum + nochain))
	BURST=$out
	[ "$nochain" -eq $((n / 4)) ] && [ $((ok + busy)) -eq $((n - n / 4)) ] &&
	[ "$ok" -ge 1 ] && wait_for 5 all_idle meta 2 && wait_for 5 pool_whole meta "$FILL"
}

burst 3 && [ "$BURST" = "ok=3 busy=0 nochain=0" ]
tap_ok $? "partial batch: 3 clients, each answered with its own src line ($BURST)"

# a burst fits the fill ring (the kernel drops what finds no frame: UDP)
[ "$FILL" -ge 120 ]
tap_ok $? "$FILL frames on the fill ring: a burst of 120 fits"

burst 120
tap_ok $? "120 clients in one batch: OK byte-exact (own src port) or NO_INSTANCE, every 4th NO_CHAIN, pool at rest ($BURST)"

rc=0
for r in 1 2 3; do burst 120 || { rc=1; break; }; done
tap_ok $rc "3 more bursts of 120 new clients (the 64 cache slots shared by 480 ports): all answered, pool at rest after each ($BURST)"

term_all "$SPRYD_PID" &&
grep -q "dgram dgb0 queue 0 -> meta: rx $sent tx $sent bad-frame 0 bad-dgram 0 error-responses $nochain_sum busy $busy_sum .* tx-full 0 too-big 0 tx-errors 0" "$TMP/spryd.log" &&
! grep -qi "sanitizer\|leak" "$TMP/spryd.log"
tap_ok $? "spryd SIGTERM: rx = tx = $sent, error-responses = NO_CHAIN ($nochain_sum), busy = NO_INSTANCE ($busy_sum)"
tap_diag "$(grep 'dgram .* -> meta: rx' "$TMP/spryd.log" | sed 's/^spryd [0-9:.]* //')"

spry ingress detach >/dev/null && spry unload >/dev/null && [ ! -e "$PIN" ]
tap_ok $? "detach, unload: pin directory gone"

tap_finish
