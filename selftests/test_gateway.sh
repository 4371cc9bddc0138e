#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spryd's HTTP front end to end, with curl and wrk as real clients: the
# demo-like chain upper -> reverse transforms POSTed bodies, metadata
# (method, path, query, headers) reaches a function (fn_meta) which sets
# @status/@content-type, keep-alive, Connection: close, chunked uploads,
# Expect: 100-continue, large bodies received straight into the pool (in
# pieces, pipelined, the client gone or stalled mid-body), HEAD, the error statuses (404, 405, 413, 500, 502,
# 503 + Retry-After for the in-flight bound, an exhausted pool and no live
# instance, 504), /metrics in Prometheus text format matching
# the requests made, the access log, and a wrk run after which every pool
# buffer is free and spryd's fd count is back to its baseline; SIGTERM
# with a request in flight answers it 503 and spryd exits 0; the front on
# IPv6 (--http [::1]:PORT).
#
# Private network namespace, pin directory, control socket and temporary
# directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

META=$SPRY_HELPERS/fn_meta
require_bins "$SPRY" "$SPRYD" "$META" "$SPRY_OUT"/examples/{upper,reverse}
for c in curl wrk python3; do
	command -v $c >/dev/null || tap_skip_all "$c not installed"
done

spry_test_env gw
PORT=18080
URL=http://127.0.0.1:$PORT

fn() {	# fn BIN CHAIN FN
	start "$1" "$TMP/fn-$2-$3-${#PIDS[@]}.log" --chain "$2" --fn "$3" --sock "$SOCK"
}

c() { curl -s --max-time 10 "$@"; }

metrics() { c "$URL/metrics"; }
# metric NAME{LABELS}: its value (0 when absent)
metric() {
	metrics | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
pool_used() { [ "$(metric "spry_pool_buffers{chain=\"$1\",state=\"used\"}")" = 0 ]; }
inflight_is() { [ "$(metric "spry_inflight{chain=\"$1\"}")" = "$2" ]; }
nfds() { ls "/proc/$SPRYD_PID/fd" | wc -l; }
fds_back() { [ "$(nfds)" -le "$FD_BASE" ]; }


tap_plan

# 1
setup() {
	spry load >/dev/null &&
	spry chain add demo hops upper,reverse >/dev/null &&
	spry chain add meta hops fn_meta >/dev/null &&
	spry chain add slow hops fn_meta max-inflight 4 deadline 200 >/dev/null &&
	spry chain add crash hops fn_meta >/dev/null &&
	spry chain add tiny hops fn_meta buffers 2 >/dev/null &&
	spry chain add ghost hops nobody_home >/dev/null || return 1
	start "$SPRYD" "$TMP/spryd.log" -P "$PIN" -s "$SOCK" "${SPRYD_FRONT[@]}" --http "127.0.0.1:$PORT" \
		--max-body 65536 --body-timeout 2 --access-log "$TMP/access.log"
	SPRYD_PID=$LAST
	wait_for 5 test -S "$SOCK" || return 1
	fn "$SPRY_OUT/examples/upper" demo upper
	fn "$SPRY_OUT/examples/reverse" demo reverse
	fn "$META" meta fn_meta
	METAFN=$LAST
	fn "$META" slow fn_meta
	SLOW=$LAST
	fn "$META" crash fn_meta
	CRASH=$LAST
	fn "$META" tiny fn_meta
	TINY=$LAST
	wait_for 5 live_is 6 && wait_for 5 c -o /dev/null "$URL/metrics"
}
setup
tap_ok $? "setup: chains demo, meta, slow, crash, tiny, ghost; 6 instances; spryd on :$PORT" || {
	tap_diag "$(tail -20 "$TMP/spryd.log")"
	tap_finish
}

N_DEMO=0
# 2
want=$(printf 'Hello, spry world 42' | tr a-z A-Z | rev)
got=$(c -d 'Hello, spry world 42' "$URL/demo")
N_DEMO=$((N_DEMO + 1))
[ "$got" = "$want" ]
tap_ok $? "POST /demo: upper -> reverse gives '$got'"

# 3
got=$(c "$URL/meta/a/b%20c?x=1&y=two" -H 'X-Request-Id: rid-7' -H 'X-Spry-Tenant: t1' \
	-H 'X-Other: dropped')
echo "$got" | grep -qx 'method: GET' && echo "$got" | grep -qx 'path: /a/b%20c' &&
	echo "$got" | grep -qx 'query: x=1&y=two' && echo "$got" | grep -qx 'x-request-id: rid-7' &&
	echo "$got" | grep -qx 'x-spry-tenant: t1' && echo "$got" | grep -qx "host: 127.0.0.1:$PORT" &&
	! echo "$got" | grep -q 'x-other'
tap_ok $? "GET /meta/a/b%20c?x=1&y=two: method, path, query and kept headers reach the function" ||
	tap_diag "$got"

# 4
nx() {	# nx N ARGS...: N requests with ARGS, curl's --next between them
	local n=$1 a=()
	shift
	while [ "$n" -gt 0 ]; do
		a+=(-s -o /dev/null -w '%{http_code}:%{num_connects} ' "$@")
		n=$((n - 1))
		[ "$n" -gt 0 ] && a+=(--next)
	done
	curl --max-time 10 "${a[@]}"
}
got=$(nx 4 -d abc "$URL/demo")
N_DEMO=$((N_DEMO + 4))
[ "$got" = "200:1 200:0 200:0 200:0 " ]
tap_ok $? "keep-alive: 4 requests on one connection ($got)"

# 5
got=$(nx 2 -D "$TMP/h5" -H 'Connection: close' -d abc "$URL/demo")
N_DEMO=$((N_DEMO + 2))
[ "$got" = "200:1 200:1 " ] && grep -qi '^Connection: close' "$TMP/h5"
tap_ok $? "Connection: close: answered with close, the next request reconnects ($got)"

# 6
head -c 30000 /dev/urandom | base64 -w 76 > "$TMP/body"
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d.upper()[::-1])' \
	"$TMP/body" > "$TMP/want"
c -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/body" "$URL/demo" -o "$TMP/got6"
N_DEMO=$((N_DEMO + 1))
cmp -s "$TMP/want" "$TMP/got6"
tap_ok $? "chunked upload of $(wc -c < "$TMP/body") bytes: exact transformed body"

# 7
c -v -H 'Expect: 100-continue' --data-binary @"$TMP/body" "$URL/demo" -o "$TMP/got7" 2>"$TMP/v7"
N_DEMO=$((N_DEMO + 1))
grep -q '^< HTTP/1.1 100 Continue' "$TMP/v7" && cmp -s "$TMP/want" "$TMP/got7"
tap_ok $? "Expect: 100-continue: 100 first, then the exact answer"

# 7b-7d: the rest of a large body is received straight into its pool
# buffer (--body-direct, default 16 KiB): in pieces with a request
# pipelined behind it, the client gone mid-body, one stalled mid-body
BD=$SPRY_SELFTESTS/body_direct.py
head -c 45000 /dev/urandom | base64 -w 76 > "$TMP/dbody"
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d.upper()[::-1])' \
	"$TMP/dbody" > "$TMP/dwant"
dlen=$(wc -c < "$TMP/dbody")
dr0=$(metric spry_http_body_direct_receives_total)
db0=$(metric spry_http_body_direct_bytes_total)
got=$(python3 "$BD" "$PORT" pieces "$TMP/dbody" "$TMP/dwant" 2>&1)
N_DEMO=$((N_DEMO + 2))
dr=$(($(metric spry_http_body_direct_receives_total) - dr0))
db=$(($(metric spry_http_body_direct_bytes_total) - db0))
# all but the last piece (under 16 KiB to come: read as usual)
[ "$got" = ok ] && [ "$dr" -ge 1 ] && [ "$db" -ge $((dlen / 4 * 3 - 1000)) ] &&
	[ "$db" -le $((dlen - 1000)) ]
tap_ok $? "$dlen-byte body in pieces, a request pipelined behind it: both exact; $db of its bytes in $dr receive(s) straight into the pool ($got)"

got=$(python3 "$BD" "$PORT" gone "$TMP/dbody" 2>&1)
got2=$(python3 "$BD" "$PORT" reset "$TMP/dbody" 2>&1)
[ "$got" = ok ] && [ "$got2" = ok ] && wait_for 5 pool_used demo &&
	[ "$(c -d abc "$URL/demo")" = CBA ]
N_DEMO=$((N_DEMO + 1))
tap_ok $? "client gone (FIN, then RST) halfway through a direct body: its pool buffer free, the next request answered ($got $got2)"

got=$(python3 "$BD" "$PORT" stall "$TMP/dbody" 2>&1)
[ "$got" = ok ] && wait_for 5 pool_used demo && [ "$(c -d abc "$URL/demo")" = CBA ]
N_DEMO=$((N_DEMO + 1))
N_DEMO_408=1	# in the demo chain's duration histogram too
tap_ok $? "a direct body stalled past --body-timeout 2: 408, its pool buffer free, the next request answered ($got)"

# 8: HEAD: headers with the GET's Content-Length, no body
raw() {	# raw METHOD OUTFILE: one request on a raw connection, read to EOF
	exec 3<>/dev/tcp/127.0.0.1/$PORT || return 1
	printf '%s /meta/h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n' "$1" >&3
	timeout 5 cat <&3 > "$2"
	exec 3<&-
}
raw HEAD "$TMP/head.raw"
raw GET "$TMP/get.raw"
cl=$(tr -d '\r' < "$TMP/head.raw" | sed -n 's/^Content-Length: //p')
blen() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(len(d.split(b"\r\n\r\n",1)[1]))' "$1"; }
after=$(blen "$TMP/head.raw")
getlen=$(blen "$TMP/get.raw")
head -1 "$TMP/head.raw" | grep -q '^HTTP/1.1 200 ' && [ "$after" = 0 ] && [ "${cl:-0}" -gt 0 ] &&
	[ "$cl" -eq $((getlen + 1)) ]
tap_ok $? "HEAD: 200, Content-Length $cl (GET's $getlen + 1 for 'HEAD'), no body bytes"

# 9
got=$(c -o /dev/null -w '%{http_code}' "$URL/no-such-chain/x")
[ "$got" = 404 ]
tap_ok $? "unknown chain: 404"

# 10
got=$(c -o /dev/null -D "$TMP/h10" -w '%{http_code}' -X DELETE "$URL/demo")
[ "$got" = 405 ] && grep -qi '^Allow: GET, HEAD, POST' "$TMP/h10"
tap_ok $? "DELETE /demo: 405 with Allow"

# 11
head -c 70000 /dev/zero > "$TMP/big"
got=$(c -o /dev/null -w '%{http_code}' --data-binary @"$TMP/big" "$URL/demo")
got2=$(c -o /dev/null -w '%{http_code}' -H 'Expect: 100-continue' --data-binary @"$TMP/big" "$URL/demo")
[ "$got" = 413 ] && [ "$got2" = 413 ]
tap_ok $? "70000-byte body over --max-body 65536: 413 (with and without Expect: $got $got2)"

# 12
got=$(c -o "$TMP/b12" -w '%{http_code} %{content_type}' -H 'X-Spry-Status: 201' \
	-H 'X-Spry-Ctype: text/x-spry; charset=utf-8' -d 'new' "$URL/meta")
[ "$got" = "201 text/x-spry; charset=utf-8" ] && tail -1 "$TMP/b12" | grep -qx 'new'
tap_ok $? "function sets @status 201 and @content-type: $got"

# 13
got=$(c -o /dev/null -w '%{http_code}' -H 'X-Spry-Fail: 1' "$URL/meta")
got2=$(c -o /dev/null -w '%{http_code}' -H 'X-Spry-Status: 99' "$URL/meta")
got3=$(c -o /dev/null -w '%{http_code}' -H 'X-Spry-Status: 700' "$URL/meta")
[ "$got" = 500 ] && [ "$got2" = 502 ] && [ "$got3" = 502 ]
tap_ok $? "handler fails: 500; @status 99 / 700: 502 ($got $got2 $got3)"

# 14
got=$(c -o /dev/null -D "$TMP/h14" -w '%{http_code}' "$URL/ghost")
[ "$got" = 503 ] && grep -qi '^Retry-After: ' "$TMP/h14"
tap_ok $? "chain with no live instance: 503 with Retry-After"

# 15-17: slow (max-inflight 4, deadline 200 ms), its instance stopped
kill -STOP "$SLOW"
STOPPED+=("$SLOW")
CURLS=()
for i in 1 2 3 4; do
	c -o /dev/null -w '%{http_code}\n' -d "req$i" "$URL/slow" > "$TMP/slow$i" &
	CURLS+=($!)
done
wait_for 5 inflight_is slow 4
c -o /dev/null -D "$TMP/h15" -w '%{http_code}' -d over "$URL/slow" > "$TMP/slow5"
wait "${CURLS[@]}"
got=$(cat "$TMP/slow5")
[ "$got" = 503 ] && grep -qi '^Retry-After: 1' "$TMP/h15"
tap_ok $? "max-inflight 4 reached (instance stopped): 503 with Retry-After"

got=$(cat "$TMP/slow1" "$TMP/slow2" "$TMP/slow3" "$TMP/slow4" | sort | uniq -c | tr -s ' ')
[ "$got" = " 4 504" ]
tap_ok $? "the 4 stuck requests: 504 at the 200 ms deadline ($got)"

used=$(metric 'spry_pool_buffers{chain="slow",state="used"}')
kill -CONT "$SLOW"
STOPPED=()
wait_for 5 pool_used slow && wait_for 5 inflight_is slow 0
tap_ok $? "late answers after SIGCONT: buffers held while stopped ($used), then all free"

# 18-19: tiny (2 regular buffers + 1 large one), its instance stopped:
# two requests hold the regular buffers, a third finds none free
two_used() { [ "$(metric 'spry_pool_buffers{chain="tiny",state="used"}')" = 2 ]; }
kill -STOP "$TINY"
STOPPED+=("$TINY")
CURLS=()
for i in 1 2; do
	c -o /dev/null -w '%{http_code}' -d "t$i" "$URL/tiny" > "$TMP/tiny$i" &
	CURLS+=($!)
done
wait_for 5 two_used && wait_for 5 inflight_is tiny 2
got=$(c -o /dev/null -D "$TMP/h18" -w '%{http_code}' -d dry "$URL/tiny")
[ "$got" = 503 ] && grep -qi '^Retry-After: 1' "$TMP/h18"
tap_ok $? "pool exhausted (2 requests hold the regular buffers): 503 with Retry-After"

kill -CONT "$TINY"
STOPPED=()
wait "${CURLS[@]}"
got=$(cat "$TMP"/tiny* | tr -d '\n')
wait_for 5 pool_used tiny
rc=$?
[ "$got" = "$(printf '200%.0s' "${CURLS[@]}")" ] && [ $rc -eq 0 ]
tap_ok $? "after SIGCONT: the held requests answered ($got), every buffer free"

# 20: crash: the instance holding the request is killed
kill -STOP "$CRASH"
c -o /dev/null -w '%{http_code}' -d doomed "$URL/crash" > "$TMP/crash" &
CURL=$!
wait_for 5 inflight_is crash 1
kill -KILL "$CRASH"
{ wait "$CRASH"; } 2>/dev/null
wait "$CURL"
got=$(cat "$TMP/crash")
wait_for 5 pool_used crash
rc=$?
[ "$got" = 502 ] && [ $rc -eq 0 ]
tap_ok $? "function SIGKILLed mid-request: 502, its buffers back in the pool"

# 21: /metrics format
metrics > "$TMP/metrics"
python3 - "$TMP/metrics" <<'EOF'
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
lab = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
sample = re.compile(r'^(%s)(\{(%s(,%s)*)?\})? -?([0-9.eE+-]+|\+Inf|-Inf|NaN)$' % (name, lab, lab))
comment = re.compile(r'^# (HELP|TYPE) (%s) (.*)$' % name)
types = {}
done = set()
cur = None
bad = []
for l in open(sys.argv[1]).read().split('\n')[:-1]:
    m = comment.match(l)
    if m:
        fam = m.group(2)
        if m.group(1) == 'TYPE':
            if m.group(3) not in ('counter', 'gauge', 'histogram', 'summary', 'untyped') \
               or fam in types:
                bad.append(l)
            types[fam] = m.group(3)
        if fam != cur:
            if cur:
                done.add(cur)
            if fam in done:
                bad.append('family split: ' + l)
            cur = fam
        continue
    m = sample.match(l)
    if not m:
        bad.append(l)
        continue
    fam = m.group(1)
    if fam not in types:
        fam = re.sub(r'_(bucket|sum|count)$', '', fam)
    if fam != cur or fam not in types:
        bad.append('sample outside its family: ' + l)
for l in bad[:5]:
    print('# bad line: %r' % l)
sys.exit(1 if bad else 0)
EOF
tap_ok $? "/metrics: every line a Prometheus sample or HELP/TYPE comment, families grouped ($(wc -l < "$TMP/metrics") lines)"

# 22
m() { awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }' "$TMP/metrics"; }
d200=$(m 'spry_http_requests_total{chain="demo",code="200"}')
s504=$(m 'spry_http_requests_total{chain="slow",code="504"}')
s503=$(m 'spry_http_errors_total{chain="slow",code="503"}')
c502=$(m 'spry_http_errors_total{chain="crash",code="502"}')
dcount=$(m 'spry_http_request_duration_seconds_count{chain="demo"}')
dinf=$(m 'spry_http_request_duration_seconds_bucket{chain="demo",le="+Inf"}')
[ "$d200" = "$N_DEMO" ] && [ "$s504" = 4 ] && [ "$s503" = 1 ] && [ "$c502" = 1 ] &&
	[ "$dcount" = $((N_DEMO + N_DEMO_408)) ] && [ "$dinf" = $((N_DEMO + N_DEMO_408)) ]
tap_ok $? "counters match: demo 200 = $d200 (sent $N_DEMO), slow 504 = $s504, 503 = $s503, crash 502 = $c502, histogram count $dcount"

# 23
grep -q '^spry_router_verdicts_total{verdict="done"} [1-9]' "$TMP/metrics" &&
	grep -q '^spry_fn_invocations_total{chain="demo",fn="upper",instance="all"} [1-9]' "$TMP/metrics" &&
	grep -q '^spry_http_connections [0-9]' "$TMP/metrics" &&
	grep -q '^spry_inflight{chain="demo"} 0' "$TMP/metrics" &&
	grep -qx "spry_http_front_info{engine=\"${SPRYD_FRONT[1]}\",threads=\"$SPRYD_FRONT_THREADS\"} 1" \
		"$TMP/metrics"
tap_ok $? "/metrics: router verdicts, function invocations, connections, in-flight, the front (${SPRYD_FRONT[*]})"

# 24
grep -q 'method=POST path=/meta status=201 .* chain=meta req_id=0x' "$TMP/access.log" &&
	grep -q 'client=127.0.0.1:[0-9]* method=GET path=/no-such-chain/x status=404' "$TMP/access.log"
tap_ok $? "access log: one line per request ($(wc -l < "$TMP/access.log") lines)"

# 25-28: wrk
cat > "$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = "the quick brown fox jumps over the lazy dog"
EOF
wait_for 5 inflight_is demo 0
FD_BASE=$(nfds)
wrk -t2 -c256 -d3s -s "$TMP/post.lua" "$URL/demo" > "$TMP/wrk" 2>&1
rc=$?
tap_diag "$(grep -E 'Requests/sec|Latency|requests in' "$TMP/wrk" | tr -s ' ')"
reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP/wrk")
[ $rc -eq 0 ] && [ "${reqs:-0}" -gt 1000 ]
tap_ok $? "wrk -t2 -c256 -d3s POST /demo: ${reqs:-0} requests"

! grep -q -e 'Non-2xx' -e 'Socket errors' "$TMP/wrk"
tap_ok $? "wrk: no non-2xx/3xx response, no socket error" || tap_diag "$(cat "$TMP/wrk")"

wait_for 5 pool_used demo && wait_for 5 inflight_is demo 0
tap_ok $? "after wrk: every demo pool buffer free, nothing in flight"

wait_for 5 fds_back
tap_ok $? "after wrk: spryd's fd count back to its baseline ($(nfds) <= $FD_BASE)"

# 29: shutdown with an idle connection open, a request in flight and one
# whose body is half received (straight into the pool)
exec 4<>/dev/tcp/127.0.0.1/$PORT
kill -STOP "$METAFN"
STOPPED+=("$METAFN")
c -o /dev/null -w '%{http_code}' -d last "$URL/meta" > "$TMP/last" &
CURL=$!
python3 "$BD" "$PORT" hold "$TMP/dbody" > "$TMP/hold" 2>&1 &
HOLD=$!
wait_for 5 inflight_is meta 1 && wait_for 5 grep -q sent "$TMP/hold" && sleep 0.2
kill -TERM "$SPRYD_PID"
wait_for 5 proc_gone "$SPRYD_PID"
wait "$SPRYD_PID"
rc=$?
wait "$CURL" "$HOLD"
exec 4<&-
kill -CONT "$METAFN"
STOPPED=()
got=$(cat "$TMP/last")
hold=$(tail -1 "$TMP/hold")
! grep -qE 'Sanitizer|runtime error' "$TMP/spryd.log" && [ $rc -eq 0 ] && [ "$got" = 503 ] &&
	[ "$hold" = ok ]
tap_ok $? "SIGTERM with a connection idle, a request in flight and a body half received: 503 to the request, the body's connection closed ($hold), spryd exits $rc, log clean" ||
	tap_diag "$(grep -E -A5 'Sanitizer|runtime error' "$TMP/spryd.log" | head -20)"

# 30-31: the HTTP front on IPv6 (--http [::1]:PORT): the functions register
# again with this spryd, which answers there and not on 127.0.0.1
URL6="http://[::1]:$PORT"
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
	start "$SPRYD" "$TMP/spryd6.log" -P "$PIN" -s "$SOCK" "${SPRYD_FRONT[@]}" --http "[::1]:$PORT"
	SPRYD_PID=$LAST
	ollehs() { [ "$(c -g -d hello "$URL6/demo")" = OLLEH ]; }
	wait_for 5 test -S "$SOCK" && wait_for 10 ollehs &&
		[ "$(c -g -o /dev/null -w '%{http_code}' "$URL6/nosuch")" = 404 ]
	tap_ok $? "--http [::1]:$PORT: POST /demo over IPv6 answers OLLEH, an unknown chain 404" ||
		tap_diag "$(tail -5 "$TMP/spryd6.log")"
	! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null &&
		grep -q 'spry_http_requests_total{chain="demo",code="200"} 1$' <(c -g "$URL6/metrics")
	tap_ok $? "nothing listens on 127.0.0.1:$PORT; the IPv6 request is counted in /metrics"
else
	tap_skip "--http [::1]:$PORT" "no ::1 on lo in the namespace (IPv6 disabled)"
	tap_skip "IPv6 only" "no ::1 on lo in the namespace (IPv6 disabled)"
fi

tap_finish
