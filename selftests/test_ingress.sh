#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spry ingress: the XDP filter attached to a veth pair through pinned
# bpf_links, rules, show (JSON), live frames moving the counters, detach,
# and unload removing it all.  Runs in a private network namespace
# (unshare -n: bpffs stays visible, unlike `ip netns exec`) with a private
# pin directory.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root_bpf
require_bins "$SPRY"
command -v jq >/dev/null || tap_skip_all "jq needed"
command -v python3 >/dev/null || tap_skip_all "python3 needed"
command -v unshare >/dev/null || tap_skip_all "unshare needed"

# The rest in a private network namespace (the veths vanish with it).
spry_private_netns

spry_test_env ingress
DIR=$PIN
spry_test_cleanup_extra() {
	"$SPRY" -P "$PIN" ingress detach >/dev/null 2>&1
}

# xdp_of DEV: "MODE PROG_ID" of the XDP program on DEV (ip's numbers:
# 1 native, 2 skb), or "none".
xdp_of() {
	ip -j link show dev "$1" | jq -r '.[0].xdp |
		if . == null then "none" else "\(.mode) \(.prog.id) \(.prog.name)" end'
}

# verdict NAME: the summed XDP verdict counter NAME.
verdict() {
	spry -j ingress show | jq -r ".verdicts.$1"
}

# grew NAME N: verdict NAME is above N.
grew() {
	[ "$(verdict "$1")" -gt "$2" ]
}

tap_plan

ip link set dev lo up
if ! ip link add name a numrxqueues 1 numtxqueues 1 type veth \
	peer name b numrxqueues 1 numtxqueues 1 2>"$TMP/err"; then
	tap_skip_all "cannot create a veth pair: $(cat "$TMP/err")"
fi
ip link set dev a up && ip link set dev b up

# --- attach ------------------------------------------------------------------
spry_fails "attach needs spry load" ingress attach dev a &&
grep -q "not loaded" "$TMP/err"
tap_ok $? "attach before 'spry load' fails: not loaded"

spry load >/dev/null
tap_ok $? "spry load"

ok=0
spry_fails "unknown device" ingress attach dev nosuch0 || ok=1
grep -q "no device 'nosuch0' in this network namespace" "$TMP/err" || ok=1
# (devices of other namespaces are invisible here: "no device" too)
for args in "" "dev" "dev a mode bogus" "dev a mode native mode skb" \
	    "dev a http-port 65536" "dev a dgram-port -1" "dev a http-port 80x" \
	    "dev a bogus 1" "dev a extra"; do
	# shellcheck disable=SC2086
	spry_fails "attach $args" ingress attach $args || ok=1
done
tap_ok $ok "attach: unknown device and bad arguments fail with one error line"
[ ! -e "$DIR/xdp_ingress" ] && [ "$(xdp_of a)" = none ]
tap_ok $? "failed attaches leave no program pinned or attached"

json_check "$(spry -j ingress attach dev a 2>&1)" '.dev == "a" and .mode == "native" and
	.already == false and .http_port == 8080 and .dgram_port == 8081' \
	"attach dev a (native), JSON result"

# The loader has exited: the pinned link keeps the program on the device.
set -- $(xdp_of a)
[ "$1" = 1 ] && [ "$3" = xdp_ingress ]
tap_ok $? "after spry exits, ip link shows xdp_ingress on a in native mode"
prog_a=$2

ok=0
for p in xdp_ingress spry_xlisten spry_xpol4 spry_xpol6 spry_xverdicts \
	 spry_xchain spry_xsks; do
	[ -e "$DIR/$p" ] || { tap_diag "missing pin $p"; ok=1; }
done
ifa=$(ip -j link show dev a | jq .[0].ifindex)
ns=$(stat -L -c %i /proc/self/ns/net)
[ -e "$DIR/xdp_link_${ns}_$ifa" ] || { tap_diag "no link pin"; ok=1; }
bpftool link show pinned "$DIR/xdp_link_${ns}_$ifa" -j |
	jq -e --argjson p "$prog_a" '.type == "xdp" and .prog_id == $p' >/dev/null ||
	{ tap_diag "pinned link is not an XDP link of xdp_ingress"; ok=1; }
tap_ok $ok "program, six maps and the bpf_link pinned in the pin directory"

out=$(spry -j ingress attach dev a) && echo "$out" | jq -e '.already == true' >/dev/null &&
spry_fails "other mode" ingress attach dev a mode skb &&
grep -q "already attached to a in native mode" "$TMP/err" &&
[ "$(xdp_of a)" = "1 $prog_a xdp_ingress" ]
tap_ok $? "attach again: same mode a no-op, other mode an error"

spry ingress attach dev b mode skb http-port 9000 dgram-port 0 >/dev/null &&
[ "$(xdp_of b | cut -d' ' -f1,3)" = "2 xdp_ingress" ]
tap_ok $? "attach dev b mode skb (generic XDP)"

json_check "$(spry -j ingress show 2>&1)" '
	.loaded and
	([.devices[] | {name, mode, attached, this_netns}] | sort_by(.name)) ==
	[{name: "a", mode: "native", attached: true, this_netns: true},
	 {name: "b", mode: "skb", attached: true, this_netns: true}] and
	all(.devices[]; .prog_id == $p) and
	([.listeners[] | "\(.proto) \(.port) \(.flags | join(","))"] | sort) ==
	["tcp 8080 protected", "tcp 9000 protected", "udp 8081 protected,datagram"]' \
	"show -j: both devices, modes, program id, listeners" --argjson p "$prog_a"

# --- rules ---------------------------------------------------------------------
spry chain add demo hops upper >/dev/null
spry ingress allow 10.0.0.0/8 port 8080 >/dev/null &&
spry ingress deny 10.1.0.0/16 port 8080 >/dev/null &&
spry ingress allow 2001:db8::/32 port 8081 chain demo >/dev/null &&
spry ingress allow 192.0.2.7 port 8081 >/dev/null &&
spry ingress allow ::1 port 8080 >/dev/null
tap_ok $? "allow/deny rules, IPv4 and IPv6, bare addresses, a chain-scoped rule"

json_eq "$(spry -j ingress show 2>&1)" '[.rules[] | "\(.prefix) \(.port) \(.action) \(.chain)"]' \
	'["10.0.0.0/8 8080 allow null","10.1.0.0/16 8080 deny null","192.0.2.7/32 8081 allow null","::1/128 8080 allow null","2001:db8::/32 8081 allow demo"]' \
	"show -j lists the rules (sorted, prefix lengths, chain names)"

# the trie holds the port-scoped key: prefixlen = 32 + prefix length
json_check "$(bpftool map dump pinned "$DIR/spry_xpol4" -j 2>&1)" '
	any(.[].formatted; .key.prefixlen == 40 and .key.addr == [10,0,0,0] and
		.key.port == 36895 and .value.action == 1)' \
	"spry_xpol4 key: prefixlen 32+8, port in network order"

out=$(spry -j ingress deny 10.0.0.0/8 port 8080) &&
echo "$out" | jq -e '.replaced == true and .action == "deny"' >/dev/null &&
spry -j ingress show | jq -e '[.rules[] | select(.prefix == "10.0.0.0/8")] |
	length == 1 and .[0].action == "deny"' >/dev/null
tap_ok $? "writing a rule again replaces it"

spry ingress del 10.1.0.0/16 port 8080 >/dev/null &&
spry -j ingress show | jq -e '[.rules[].prefix] | index("10.1.0.0/16") == null' >/dev/null &&
spry_fails "del twice" ingress del 10.1.0.0/16 port 8080 &&
grep -q "no rule for 10.1.0.0/16 port 8080" "$TMP/err"
tap_ok $? "del removes a rule; deleting it again is an error"

ok=0
for p in 10.0.0.1/8 10.0.0.0/33 10.0.0.0/ 10.0.0/8 300.0.0.1 2001:db8::1/32 \
	 ::/129 2001:db8::/-1 "" "10.0.0.0/8 " 10.0.0.0/08x fe80::1%a; do
	spry_fails "prefix '$p'" ingress allow "$p" port 8080 || ok=1
done
grep -q "invalid prefix" "$TMP/err" || ok=1
tap_ok $ok "malformed prefixes, host bits after the length, bad lengths rejected"

ok=0
for a in "port 0" "port 65536" "port x" "port" "" "port 80 port 81" "port 80 bogus 1"; do
	# shellcheck disable=SC2086
	spry_fails "port args '$a'" ingress allow 10.0.0.0/8 $a || ok=1
done
spry_fails "unknown chain" ingress allow 10.0.0.0/8 port 80 chain nosuch || ok=1
grep -q "no chain 'nosuch'" "$TMP/err" || ok=1
spry_fails "deny with chain" ingress deny 10.0.0.0/8 port 80 chain demo || ok=1
spry_fails "bad chain name" ingress allow 10.0.0.0/8 port 80 chain 'a b' || ok=1
out=$(spry -j ingress allow 10.0.0.0/8 port 0 2>/dev/null)
[ $? -ne 0 ] && echo "$out" | jq -e '.error | test("port")' >/dev/null || ok=1
tap_ok $ok "bad ports, unknown chains, chain on deny rejected (JSON error with -j)"

# --- live frames through a's XDP program --------------------------------------
# Raw frames sent on b arrive on a: UDP from 10.9.0.2 to the datagram port
# (no rule: drop_policy), then allowed for chain demo with a valid request
# (no AF_XDP socket: drop_no_xsk, chain demo's dropped), then to a port
# that is no listener (pass_other_port).
cid=$(spry -j chain show demo | jq -r .id)
send() {
	python3 - "$@" <<'EOF'
import socket, struct, sys
dport, chain, mac = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
payload = b"hello"
req = struct.pack("!IBBHQB3sI", 0x53505251, 1, 0, chain, 7, 0, b"\0\0\0",
                  len(payload)) + payload
udp = struct.pack("!HHHH", 40000, dport, 8 + len(req), 0) + req
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton("10.9.0.2"), socket.inet_aton("10.9.0.1"))
eth = bytes.fromhex(mac.replace(":", "")) + b"\x02\0\0\0\0\x02" + b"\x08\x00"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("b", 0))
s.send(eth + ip + udp)
EOF
}
mac=$(ip -j link show dev a | jq -r .[0].address)
pol0=$(verdict drop_policy) nox0=$(verdict drop_no_xsk) oth0=$(verdict pass_other_port)
ok=0
send 8081 "$cid" "$mac" || ok=1
wait_for 2 grew drop_policy "$pol0" ||
	{ tap_diag "drop_policy stays $(verdict drop_policy)"; ok=1; }
spry ingress allow 10.9.0.2 port 8081 chain demo >/dev/null || ok=1
send 8081 "$cid" "$mac" || ok=1
send 7777 "$cid" "$mac" || ok=1
wait_for 2 grew drop_no_xsk "$nox0" ||
	{ tap_diag "drop_no_xsk stays $(verdict drop_no_xsk)"; ok=1; }
wait_for 2 grew pass_other_port "$oth0" ||
	{ tap_diag "pass_other_port stays $(verdict pass_other_port)"; ok=1; }
spry -j ingress show | jq -e '[.chains[] | select(.name == "demo")][0].dropped >= 1' \
	>/dev/null || { tap_diag "chain demo: no drop counted"; ok=1; }
spry ingress show | grep -q "^  demo ($cid): packets 0 bytes 0 dropped [1-9]" ||
	{ tap_diag "text show lacks the chain counters"; ok=1; }
tap_ok $ok "live frames on the veth move verdict and per-chain counters in show"

# --- detach ---------------------------------------------------------------------
ifb=$(ip -j link show dev b | jq .[0].ifindex)
spry ingress detach dev b >/dev/null &&
[ "$(xdp_of b)" = none ] && [ ! -e "$DIR/xdp_link_${ns}_$ifb" ] &&
[ "$(xdp_of a)" = "1 $prog_a xdp_ingress" ] && [ -e "$DIR/xdp_ingress" ]
tap_ok $? "detach dev b: b has no program, a keeps it, the program stays pinned"

spry_fails "detach b twice" ingress detach dev b &&
grep -q "not attached to b" "$TMP/err" &&
spry_fails "detach unknown dev" ingress detach dev nosuch0 &&
spry_fails "detach extra arg" ingress detach dev a extra
tap_ok $? "detach: device not attached, unknown device, extra argument fail"

ok=0
spry ingress detach >/dev/null || ok=1
[ "$(xdp_of a)" = none ] || { tap_diag "a still has $(xdp_of a)"; ok=1; }
for p in xdp_ingress spry_xlisten spry_xpol4 spry_xpol6 spry_xverdicts \
	 spry_xchain spry_xsks xdp_link_${ns}_$ifa; do
	[ ! -e "$DIR/$p" ] || { tap_diag "pin $p left"; ok=1; }
done
[ -e "$DIR/skmsg_route" ] || { tap_diag "router pin gone"; ok=1; }
spry -j ingress show | jq -e '.loaded == false and .devices == [] and .rules == []' \
	>/dev/null || ok=1
tap_ok $ok "detach (all): no program on a, XDP pins gone, router untouched"

spry_fails "rules need attach" ingress allow 10.0.0.0/8 port 80 &&
grep -q "not attached" "$TMP/err" &&
spry_fails "detach when not attached" ingress detach
tap_ok $? "rules and detach without an attached filter fail"

# --- unload removes everything ingress made --------------------------------------
spry ingress attach dev a >/dev/null && spry ingress attach dev b mode skb >/dev/null &&
spry ingress allow 10.0.0.0/8 port 8080 >/dev/null &&
spry unload >/dev/null &&
[ ! -e "$DIR" ] && [ "$(xdp_of a)" = none ] && [ "$(xdp_of b)" = none ]
tap_ok $? "attach again, spry unload: pin directory gone, no XDP program left"

spry ingress help >"$TMP/out" 2>&1 && grep -q "spry ingress attach dev IFNAME" "$TMP/out" &&
[ "$(spry -j ingress help 2>/dev/null)" = null ] &&
spry help | grep -q "ingress {"
tap_ok $? "ingress help (text, -j null), listed in spry help"

tap_finish
