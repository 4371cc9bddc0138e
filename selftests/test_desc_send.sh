#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# How spryd's descriptors leave for their chains (spryd --desc-send
# send|ring; docs/DESIGN.md, "The HTTP front's two engines"): with send()
# (the default) or as operations of the io_uring front's ring, submitted
# with the loop iteration's responses.  The option is refused with a bad
# value and, for ring, without --front uring.  In each of five set-ups
# (epoll; uring; epoll --desc-send send; uring --desc-send ring; uring
# --sqpoll any --desc-send ring) requests are answered, /metrics counts every batch
# on the path asked for (and, for send, none on the ring), a send the router drops
# (the origin's hand-off to the chain's first function taken out of
# spry_auth) fails that request with 502, counts one send error and
# resets the origin, so that once the hand-off is back the next request
# is answered; 400 requests from 16 connections at once are all answered
# right; every pool buffer is free after; SIGTERM: exit 0, and the log
# has no ring error.
#
# Private network namespace, pin directory, control socket and temporary
# directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

require_bins "$SPRY" "$SPRYD" "$SPRY_OUT"/examples/{upper,reverse} "$SPRY_HELPERS/e2e_client"
for c in curl python3 bpftool jq; do
	command -v $c >/dev/null || tap_skip_all "$c not installed"
done

spry_test_env descsend
PORT=18097
URL=http://127.0.0.1:$PORT

c() { curl -s --max-time 10 "$@"; }

# metric NAME_AND_LABELS: its value in spryd's /metrics
metric() {
	c "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# auth_key: the hex bytes of spry_auth's key origin (fn 0) -> demo's first
# function, and AUTH_VAL its value's
auth_key() {
	bpftool -j map dump pinned "$PIN/spry_auth" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    k = [int(b, 16) for b in e["key"]]
    # chain, from, to, kind: u16 each, little-endian
    if k[2] | k[3] << 8 == 0 and k[6] | k[7] << 8 == 0:
        print(" ".join("%02x" % b for b in k), "|", " ".join("%02x" % int(b, 16) for b in e["value"]))
        break
'
}

# burst N CONNS: N POSTs over CONNS connections at once; "ok" when every
# answer is its body upper-cased and reversed
burst() {
	python3 - "$PORT" "$1" "$2" <<'PY'
import http.client, sys, threading
port, n, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
bad = []
def run(t):
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(t, n, conns):
        body = ("burst-%d" % i).encode()
        try:
            h.request("POST", "/demo", body)
            r = h.getresponse()
            got = r.read()
        except Exception as e:
            bad.append("%d: %s" % (i, e))
            return
        if r.status != 200 or got != body.upper()[::-1]:
            bad.append("%d: %d %r" % (i, r.status, got[:40]))
ts = [threading.Thread(target=run, args=(t,)) for t in range(conns)]
for t in ts: t.start()
for t in ts: t.join()
print("ok" if not bad else "%d bad: %s" % (len(bad), bad[:3]))
PY
}

tap_plan

if ! spry load >/dev/null || ! spry chain add demo hops upper,reverse >/dev/null; then
	tap_ok 1 "spry load; spry chain add demo hops upper,reverse"
	tap_finish
fi

# no io_uring here: a skip, decided before any point
start "$SPRYD" "$TMP/probe.log" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" --front uring
probe=$LAST
uring_up_or_skip "$TMP/probe.log"
kill_wait "$probe"

# 1-2: refused at the command line
expect_cmd -s '!0' -e 'spryd: --desc-send ring needs --front uring' \
	"--desc-send ring without --front uring: refused" -- \
	timeout 10 "$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" --desc-send ring
expect_cmd -s '!0' -e "spryd: --desc-send: 'send' or 'ring', not 'tcp'" \
	"--desc-send tcp: refused" -- \
	timeout 10 "$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" --front uring \
	--desc-send tcp

IFS='|' read -r KEY VAL < <(auth_key)
if [ -z "$KEY" ] || [ -z "$VAL" ]; then
	tap_ok 1 "spry_auth holds the origin's hand-off to demo's first function"
	tap_finish
fi

# setup NAME VIA ARGS...: one spryd with ARGS, its batches expected on VIA
setup() {
	local name=$1 via=$2 other log=$TMP/spryd-$1.log got i n_ok=0 st
	shift 2
	[ "$via" = ring ] && other=send || other=ring
	start "$SPRYD" "$log" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" "$@"
	SPRYD_PID=$LAST
	wait_for 5 test -S "$SOCK"
	start "$SPRY_OUT/examples/upper" "$TMP/upper-$name.log" --chain demo --fn upper --sock "$SOCK"
	local up=$LAST
	start "$SPRY_OUT/examples/reverse" "$TMP/reverse-$name.log" --chain demo --fn reverse --sock "$SOCK"
	local rev=$LAST
	wait_for 5 live_is demo 2
	wait_for 5 c -o /dev/null "$URL/metrics"

	for i in $(seq 1 20); do
		[ "$(c -d "req $i" "$URL/demo")" = "$(echo "REQ $i" | rev)" ] && n_ok=$((n_ok + 1))
	done
	expect_eq "$n_ok" 20 "$name: 20 POSTs one after another answered"
	# one batch per request: at least 20 on the path asked for means all
	# of them; the ring's path may send() while its last batch's
	# completion is not reaped yet, the send() path never uses a ring
	got="$(metric "spry_origin_send_batches_total{via=\"$via\"}") $(metric "spry_origin_send_batches_total{via=\"$other\"}")"
	set -- $got
	[ "${1:-0}" -ge 20 ] && { [ "$via" = ring ] || [ "${2:-x}" = 0 ]; }
	tap_ok $? "$name: /metrics counts their batches via $via ($1; via $other: ${2:-none})"

	bpftool map delete pinned "$PIN/spry_auth" key hex $KEY
	st=$(c -o /dev/null -w '%{http_code}' -d 'dropped' "$URL/demo")
	bpftool map update pinned "$PIN/spry_auth" key hex $KEY value hex $VAL
	expect_eq "$st" 502 "$name: a request whose send the router drops (no hand-off in spry_auth) gets 502"
	grep -q 'origin 0: send of 1 descriptors: Permission denied' "$log" &&
		grep -q 'origin 0 reset after a drop' "$log" &&
		[ "$(metric spry_origin_send_errors_total)" = 1 ]
	tap_ok $? "$name: spryd logs the drop, resets the origin and counts one send error" ||
		tap_diag "$(grep origin "$log") errors=$(metric spry_origin_send_errors_total)"
	expect_eq "$(c -d 'back again' "$URL/demo")" "NIAGA KCAB" \
		"$name: the hand-off back, the next request is answered (the origin was reset)"

	expect_eq "$(burst 400 16)" ok "$name: 400 POSTs over 16 connections at once, all answered right"
	wait_for 5 pool_whole demo
	tap_ok $? "$name: every pool buffer of demo free ($POOL)"

	term_all "$SPRYD_PID"
	tap_ok $? "$name: SIGTERM: spryd exits 0"
	kill_wait "$up" "$rev"
	local BAD='Sanitizer|runtime error|io_uring (submit|front):'
	! grep -qE "$BAD" "$log"
	tap_ok $? "$name: spryd's log: no ring error" || tap_diag "$(grep -E "$BAD" "$log")"
}

setup epoll send
setup uring send --front uring
setup epoll-send send --desc-send send
setup uring-ring ring --front uring --desc-send ring
setup uring-sqpoll-ring ring --front uring --sqpoll any --desc-send ring

tap_finish
