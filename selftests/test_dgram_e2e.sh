#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Datagram requests end to end (docs/DATAGRAM.md): a client namespace and
# this test's own namespace (the server) joined by a one-queue veth pair;
# the XDP ingress filter on the server end steers datagram requests into
# spryd's AF_XDP socket (--dgram srv:0=demo), whose UMEM is a reserved run
# of chain demo's pool; upper -> reverse answer them.  Also the kernel UDP
# baseline (--dgram-udp), policy drops, malformed headers, the NO_CHAIN
# error response, pool accounting, fd stability and a clean teardown.
#
# Pool accounting: at rest spryd keeps exactly F frames on each AF_XDP
# socket's fill ring (allocated, tag "ingress"), F read from spryd's log
# line "... F on the fill ring"; every other buffer of the pool must be
# free: n_free == n_bufs - F and every large buffer free.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root_bpf
command -v jq >/dev/null || tap_skip_all "jq needed"
command -v python3 >/dev/null || tap_skip_all "python3 needed"
command -v nsenter >/dev/null || tap_skip_all "nsenter needed"
spry_private_netns "$@"
require_bins "$SPRY" "$SPRYD" "$SPRY_OUT/examples/upper" "$SPRY_OUT/examples/reverse" \
	"$SPRY_HELPERS/e2e_client"
spry_test_env dgram

CLIENT="$SPRY_SELFTESTS/dgram_client.py"
N=${DGRAM_N:-2000}
PORT=9100
UPORT=9200
NSPID=

spry_test_cleanup_extra() {
	[ -n "$NSPID" ] && kill "$NSPID" 2>/dev/null
	"$SPRY" -P "$PIN" ingress detach >/dev/null 2>&1
	ip link del srv 2>/dev/null
}

cli() { nsenter -t "$NSPID" -n "$@"; }

verdict() { spry -j ingress show | jq -r ".verdicts.$1"; }

# n_fds PID
n_fds() { ls /proc/"$1"/fd | wc -l; }

tap_plan

# --- two namespaces, one veth -------------------------------------------------
sleep 600 &
sleeper=$!
unshare -n sleep 600 &
NSPID=$!
PIDS+=("$NSPID" "$sleeper")
other_ns() { [ "$(readlink /proc/"$NSPID"/ns/net)" != "$(readlink /proc/self/ns/net)" ]; }
wait_for 5 other_ns
ip link add srv numrxqueues 1 numtxqueues 1 type veth peer name cli \
	numrxqueues 1 numtxqueues 1 &&
ip link set cli netns "$NSPID" &&
ip addr add 10.77.0.1/24 dev srv && ip link set srv up &&
cli ip link set lo up &&
cli ip addr add 10.77.0.2/24 dev cli &&
cli ip addr add 10.77.0.3/24 dev cli &&
cli ip addr add 10.77.0.4/24 dev cli &&
ip addr add fd00:77::1/64 dev srv nodad &&
cli ip addr add fd00:77::2/64 dev cli nodad &&
cli ip link set cli up
tap_ok $? "veth srv (here) <-> cli (client namespace), one queue each" || tap_finish

spry load >/dev/null &&
spry chain add demo hops upper,reverse buffer-size 4096 buffers 2048 >/dev/null &&
spry chain add other hops upper >/dev/null &&
spry ingress attach dev srv dgram-port $PORT >/dev/null &&
spry ingress allow 10.77.0.2/32 port $PORT chain demo >/dev/null &&
spry ingress allow 10.77.0.4/32 port $PORT >/dev/null &&
spry ingress allow fd00:77::2/128 port $PORT chain demo >/dev/null
tap_ok $? "spry load, chains demo (upper,reverse) and other, ingress on srv, rules"

start_spryd --http none --dgram srv:0=demo --dgram-udp 10.77.0.1:$UPORT=demo
for i in 1 2; do
	start "$SPRY_OUT/examples/upper" "$TMP/upper$i.log" --chain demo --fn upper --sock "$SOCK"
	start "$SPRY_OUT/examples/reverse" "$TMP/reverse$i.log" --chain demo --fn reverse --sock "$SOCK"
done
wait_for 10 live_is demo 4 &&
grep -q "dgram srv queue 0 -> chain demo" "$TMP/spryd.log"
tap_ok $? "spryd with --dgram srv:0=demo and --dgram-udp; 2 x upper, 2 x reverse" ||
	{ cat "$TMP/spryd.log"; tap_finish; }
FILL=$(sed -n 's/.*, \([0-9]*\) on the fill ring.*/\1/p' "$TMP/spryd.log")
tap_diag "$(grep 'dgram srv' "$TMP/spryd.log")"

# the XDP program steers to spryd's socket: spry_xsks[0] is set
json_check "$(bpftool map dump pinned "$PIN/spry_xsks" -j 2>&1)" 'length >= 1' \
	"spry_xsks[0] holds spryd's AF_XDP socket"

# warm up ARP, then count from here
cli python3 "$CLIENT" run 10.77.0.1 $PORT 1 1 1 10.77.0.2 >/dev/null
x0=$(verdict redirect_xsk)
c0=$(spry -j ingress show | jq '[.chains[] | select(.name == "demo") | .packets] | add // 0')
fds0=$(n_fds "$SPRYD_PID")

out=$(cli python3 "$CLIENT" run 10.77.0.1 $PORT 1 "$N" 64 10.77.0.2)
[ "$out" = "ok $N" ]
tap_ok $? "AF_XDP: $N requests, window 64, every response byte-exact ($out)"

x1=$(verdict redirect_xsk)
c1=$(spry -j ingress show | jq '[.chains[] | select(.name == "demo") | .packets] | add // 0')
[ $((x1 - x0)) -eq "$N" ] && [ $((c1 - c0)) -eq "$N" ]
tap_ok $? "redirect_xsk +$((x1 - x0)), chain demo packets +$((c1 - c0)) (want $N)"

out=$(cli python3 "$CLIENT" run fd00:77::1 $PORT 1 300 16 fd00:77::2)
[ "$out" = "ok 300" ]
tap_ok $? "AF_XDP over IPv6 (UDP checksum computed): 300 requests byte-exact ($out)"

out=$(cli python3 "$CLIENT" run 10.77.0.1 $UPORT 1 500 32 10.77.0.2)
[ "$out" = "ok 500" ]
tap_ok $? "kernel UDP baseline: 500 requests byte-exact ($out)"

# a source without a rule: dropped by XDP, counted, no answer
p0=$(verdict drop_policy)
req=$(python3 -c 'import struct; print((struct.pack("!IBBH8sB3sI", 0x53505251, 1, 0, 1,
	b"denied!!", 0, b"\0\0\0", 2) + b"hi").hex())')
out=$(cli python3 "$CLIENT" one 10.77.0.1 $PORT "$req" 1 10.77.0.3)
[ "$out" = none ] && [ "$(verdict drop_policy)" -eq $((p0 + 1)) ]
tap_ok $? "no rule for 10.77.0.3: no answer, drop_policy +1"

# a malformed header from an allowed source: XDP drops it (documented)
b0=$(verdict drop_bad_dgram)
bad=$(python3 -c 'import struct; print((struct.pack("!IBBH8sB3sI", 0x53505251, 1, 0, 1,
	b"badlen!!", 0, b"\0\0\0", 99) + b"hi").hex())')
out=$(cli python3 "$CLIENT" one 10.77.0.1 $PORT "$bad" 1 10.77.0.2)
[ "$out" = none ] && [ "$(verdict drop_bad_dgram)" -eq $((b0 + 1)) ]
tap_ok $? "length mismatch in the header: dropped by XDP, drop_bad_dgram +1"

# the same malformed header to the kernel UDP baseline: error response
out=$(cli python3 "$CLIENT" one 10.77.0.1 $UPORT "$bad" 2 10.77.0.2)
[ "${out:0:8}" = 53505251 ] && [ "${out:10:2}" = 01 ] && [ "${out:32:2}" = 05 ] &&
[ "${out:16:16}" = "$(printf badlen!! | od -An -tx1 | tr -d ' \n')" ]
tap_ok $? "UDP baseline: malformed header answered BAD_DESC ($out)"

# a request naming chain other (id 2) on demo's socket: NO_CHAIN answer
oth=$(python3 -c 'import struct; print((struct.pack("!IBBH8sB3sI", 0x53505251, 1, 0, 2,
	b"otherchn", 0, b"\0\0\0", 2) + b"hi").hex())')
out=$(cli python3 "$CLIENT" one 10.77.0.1 $PORT "$oth" 2 10.77.0.4)
[ "${out:0:8}" = 53505251 ] && [ "${out:10:2}" = 01 ] && [ "${out:12:4}" = 0002 ] &&
[ "${out:32:2}" = 02 ] && [ "${out:40:8}" = 00000000 ]
tap_ok $? "AF_XDP: a request for another chain is answered NO_CHAIN ($out)"

wait_for 5 all_idle demo 4 && wait_for 5 pool_whole demo "$FILL"
tap_ok $? "pool at rest: n_free = n_bufs - $FILL (fill ring), large all free ($POOL)"

# again: fds stable, pool at rest
out=$(cli python3 "$CLIENT" run 10.77.0.1 $PORT 1 "$N" 64 10.77.0.2)
[ "$out" = "ok $N" ] && wait_for 5 pool_whole demo "$FILL" && [ "$(n_fds "$SPRYD_PID")" -eq "$fds0" ]
tap_ok $? "second run: ok, pool at rest, spryd's fd count stable ($fds0)"

grep -q "dgram srv queue 0 -> chain demo (id 1): AF_XDP copy mode" "$TMP/spryd.log"
tap_ok $? "veth: AF_XDP bound in copy mode (zero-copy tried first), logged"

spry ingress detach >/dev/null &&
[ "$(ip -j link show dev srv | jq -r '.[0].xdp // "none"')" = none ]
tap_ok $? "ingress detach: no XDP program left on srv"

# rx = tx = 2 runs of N + 300 (IPv6) + warm-up + NO_CHAIN; nothing refused
want=$((2 * N + 300 + 2))
term_all "$SPRYD_PID" &&
grep -q "dgram srv queue 0 -> demo: rx $want tx $want bad-frame 0 bad-dgram 0 error-responses 1 busy 0 tx-copied 0 tx-full 0 too-big 0 tx-errors 0" "$TMP/spryd.log" &&
! grep -qi "sanitizer\|leak" "$TMP/spryd.log"
tap_ok $? "spryd SIGTERM: clean exit; AF_XDP rx = tx = $want, nothing copied or refused"
tap_diag "$(grep 'dgram .* -> demo: rx' "$TMP/spryd.log" | sed 's/^spryd [0-9:.]* //')"

spry unload >/dev/null && [ ! -e "$PIN" ]
tap_ok $? "unload: pin directory gone"

tap_finish
