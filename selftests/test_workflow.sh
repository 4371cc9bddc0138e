#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Workflows (docs/WORKFLOWS.md) end to end, with examples/workflow.c on a
# real spryd and router: the declared set of conditional nexts (chain add,
# apply, chain show, refusals), a function picking its next at run time
# (allowed picks followed, a refused one answered next_refused and
# counted), fan-out and fan-in (three branches in parallel, a failed one
# and one past the deadline reported per branch, never hung, the late
# answer's buffers back in the pool), and input batching (concurrent
# requests handled in batches of at most --batch-max, every answer back
# to its own caller byte for byte), and a fan-out over the processes of an
# app (examples/counter's gather: each branch reaches the process it
# names; one not active is reported so, never answered by another), and a
# conditional next inside an app (examples/counter's pick: declared picks
# answered by the picked handler in the same process with its state,
# undeclared ones 502 next_refused and counted, bad declarations refused).
#
# Runs in a private network namespace with its own pin directory, control
# socket and temporary directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

WF=$SPRY_OUT/examples/workflow
CTR=$SPRY_OUT/examples/counter
require_bins "$SPRY" "$SPRYD" "$WF" "$CTR"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v python3 >/dev/null || tap_skip_all "python3 not installed"
command -v curl >/dev/null || tap_skip_all "curl not installed"

spry_test_env workflow
export SPRY_STATE_DIR=$TMP/state

# the app's processes are spryd's children (counter): none left behind
spry_test_cleanup_extra() {
	local p
	for p in $(pgrep -P "${SPRYD_PID:-0}" 2>/dev/null); do
		[ "$(readlink /proc/$p/exe 2>/dev/null)" = "$CTR" ] && kill -KILL "$p" 2>/dev/null
	done
}
HTTP_PORT=18093
BATCH_MAX=4

tap_plan

# --- the declared set ------------------------------------------------------
spry load >/dev/null
tap_ok $? "setup: router loaded" || tap_finish

spry_fails "next backwards" chain add bad hops a,b,c next c:a &&
	grep -q "later hop" "$TMP/err"
tap_ok $? "chain add: next to an earlier hop refused ($(cat "$TMP/err"))"
spry_fails "next to itself" chain add bad hops a,b next a:a
tap_ok $? "chain add: next to itself refused"
spry_fails "next to a call-only function" chain add bad hops a,b functions g next a:g &&
	grep -q "hops of the chain" "$TMP/err"
tap_ok $? "chain add: next to a function that is not a hop refused"
spry_fails "next malformed" chain add bad hops a,b next a-b
tap_ok $? "chain add: next 'a-b' (not F:G) refused"
spry_fails "next twice" chain add bad hops a,b,c next a:c,a:c
tap_ok $? "chain add: the same next twice refused"
spry_fails "next unknown" chain add bad hops a,b next a:zz
tap_ok $? "chain add: next naming no function of the chain refused"

cat >"$TMP/bad.yaml" <<'EOF'
chains:
  - name: bad
    hops: [a, b]
    next:
      - {from: b, to: a}
EOF
spry_fails "apply bad next" apply "$TMP/bad.yaml" && grep -q "later hop" "$TMP/err"
tap_ok $? "apply: a backwards next refused with its reason ($(cat "$TMP/err"))"
cat >"$TMP/bad2.yaml" <<'EOF'
chains:
  - name: bad
    hops: [a, b]
    next:
      - {from: a, to: nope}
EOF
spry_fails "apply unknown next" apply "$TMP/bad2.yaml" && grep -q "line 5" "$TMP/err"
tap_ok $? "apply: a next naming no function refused at its line"

spry apply "$SPRY_DATA/workflow.yaml" >/dev/null
tap_ok $? "apply examples/workflow.yaml"
got=$(spry chain show workflow | grep -E '^[[:space:]]next')
expect_eq "$got" "$(printf '\tnext route:long route:tally short:tally')" "chain show: the nexts"
got=$(spry -j chain show workflow | jq -c '[.next[] | "\(.from):\(.to)"]')
expect_eq "$got" '["route:long","route:tally","short:tally"]' "chain show -j: the nexts"
got=$(spry -j chain show workflow | jq -c '[.calls[] | "\(.from):\(.to)"]')
expect_eq "$got" '["long:words","long:chars","long:lines"]' "chain show -j: calls apart from nexts"
# replaced without them: gone from the router too
spry chain add wf2 hops a,b,c next a:c >/dev/null &&
	[ "$(spry -j auth show chain wf2 | jq '[.[] | select(.kind == "next")] | length')" = 1 ] &&
	spry chain add wf2 hops a,b,c >/dev/null &&
	[ "$(spry -j auth show chain wf2 | jq '[.[] | select(.kind == "next")] | length')" = 0 ] &&
	spry chain del wf2 >/dev/null
tap_ok $? "chain add again without next: its SPRY_AK_NEXT authorizations removed"

# --- the chain running -------------------------------------------------------
start_spryd --http 127.0.0.1:$HTTP_PORT
tap_ok $? "spryd listening" || { tap_diag "$(cat "$TMP/spryd.log")"; tap_finish; }
declare -A FNPID
for f in route short long words chars lines; do
	start "$WF" "$TMP/fn-$f.log" --chain workflow --fn "$f" --sock "$SOCK"
	FNPID[$f]=$LAST
done
start "$WF" "$TMP/fn-tally.log" --chain workflow --fn tally --sock "$SOCK" \
	--batch-max $BATCH_MAX --batch-wait-us 20000
wait_for 5 live_is workflow 7
tap_ok $? "7 functions registered"

verdict() { spry -j stats | jq ".verdicts.$1"; }
inv() { spry chain invoke workflow data "$1" sock "$SOCK"; }

n0=$(verdict next)
expect_eq "$(inv 'hi there')" "$(printf 'HI THERE\n(batch 1)')" \
	"short payload: route -> short (next hop) -> tally (picked)"
expect_eq "$(inv 'a longer text of words, seven of')" "$(printf 'words 7 chars 32 lines 1\n(batch 1)')" \
	"long payload: route -> long (picked) -> fan-out -> tally"
expect_eq "$(inv '#skip')" "$(printf '#skip\n(batch 1)')" \
	"'#' payload: route -> tally directly (picked)"
expect_num "$(( $(verdict next) - n0 ))" -eq 3 "verdict next counted the 3 picks (short's, route's two)"

r0=$(verdict next_refused)
spry chain invoke workflow data '?x' sock "$SOCK" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q "next_refused" "$TMP/err"
tap_ok $? "a pick the chain does not allow: answered with status next_refused (rc $rc: $(cat "$TMP/err"))"
expect_num "$(( $(verdict next_refused) - r0 ))" -eq 1 "verdict next_refused +1"
code=$(curl -s -o /dev/null -w '%{http_code}' -d '?y' http://127.0.0.1:$HTTP_PORT/workflow)
expect_eq "$code" 502 "HTTP: a refused next is 502"
[ "$(spry -j fn show chain workflow | jq '[.[] | .instances[]? | select(.flags | index("quarantined"))] | length')" = 0 ]
tap_ok $? "nobody quarantined by a refused next"
M=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics")
printf '%s\n' "$M" | grep -q "^spry_router_verdicts_total{verdict=\"next\"} $(verdict next)\$" &&
	printf '%s\n' "$M" | grep -q "^spry_router_verdicts_total{verdict=\"next_refused\"} $(verdict next_refused)\$" &&
	printf '%s\n' "$M" | grep -q '^spry_router_verdicts_total{verdict="fan_refused"} 0$'
tap_ok $? "/metrics: the next, next_refused and fan_refused verdicts" ||
	tap_diag "$(printf '%s\n' "$M" | grep -E 'verdict="(next|fan)')"

# --- fan-out: partial failure, deadline --------------------------------------
expect_eq "$(inv 'this one will FAIL to count')" "$(printf 'words error chars 27 lines 1\n(batch 1)')" \
	"fan-out: a failed branch reported as error, the others answered"
t0=$(date +%s%N)
got=$(inv 'this one is SLOW to count lines')
t1=$(date +%s%N)
expect_eq "$got" "$(printf 'words 7 chars 31 lines timeout\n(batch 1)')" \
	"fan-out: a branch past the deadline reported as timeout"
ms=$(( (t1 - t0) / 1000000 ))
# not a timing test: 1.5 s of slack for a loaded machine or a sanitizer
# build, and still well before the slow branch's 2 s
expect_num "$ms" -lt 1500 "fan-out: answered at the deadline (200 ms), not after the slow branch's 2 s (took $ms ms)"
# the late answer comes at 2 s: its buffers must come back
wait_for 6 pool_whole workflow
tap_ok $? "after the late answer: every pool buffer free ($POOL)"
grep -q "late reply" "$TMP/fn-long.log"
tap_ok $? "the late answer was dropped by the caller (its log: late reply)"
# a fan-out right after: no stale answer mixed in
expect_eq "$(inv "$(printf 'two lines\nof text here')")" "$(printf 'words 5 chars 22 lines 2\n(batch 1)')" \
	"fan-out after a late answer: the right answers"

# --- fan-out: a callee killed holding a branch ----------------------------------
# long again with a deadline of 5 s: lines, killed (-9) while it sleeps on
# a SLOW branch, must cost its caller neither the deadline nor budget.
# pids_drop PID: no longer one of this test's live processes (ended by it)
pids_drop() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}
kill -TERM "${FNPID[long]}" 2>/dev/null
wait "${FNPID[long]}" 2>/dev/null
pids_drop "${FNPID[long]}"
start "$WF" "$TMP/fn-long2.log" --chain workflow --fn long --sock "$SOCK" --fan-timeout-ms 5000
FNPID[long]=$LAST
wait_for 5 live_is workflow 7
tap_ok $? "long registered again with a 5 s fan-out deadline"
expect_eq "$(inv 'WIDE open, over sixteen bytes')" "$(printf 'wide 64/64 busy 0\n(batch 1)')" \
	"a fan-out of SPRY_FAN_MAX (64) branches: all answered"
g0=$(verdict fan_gone)
t0=$(date +%s%N)
inv 'this one is SLOW to count lines' >"$TMP/slow.out" 2>&1 &
INV=$!
sleep 0.5	# lines holds its branch (asleep for 2 s)
kill -KILL "${FNPID[lines]}"
wait "$INV"
wait "${FNPID[lines]}" 2>/dev/null
pids_drop "${FNPID[lines]}"
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
expect_eq "$(cat "$TMP/slow.out")" "$(printf 'words 7 chars 31 lines error\n(batch 1)')" \
	"callee killed mid-branch: that branch failed (callee_gone), the others answered"
# not a timing test: the deadline is 5 s, the answer comes when spryd sees lines die
expect_num "$ms" -lt 4500 "... within the caller's deadline of 5 s (took $ms ms)"
expect_num "$(( $(verdict fan_gone) - g0 ))" -eq 1 "verdict fan_gone +1 (spryd answered for the dead callee)"
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | grep -q '^spry_fan_given_back_total 1$'
tap_ok $? "/metrics: spry_fan_given_back_total 1"
start "$WF" "$TMP/fn-lines2.log" --chain workflow --fn lines --sock "$SOCK"
FNPID[lines]=$LAST
wait_for 5 live_is workflow 7
tap_ok $? "lines started again"
expect_eq "$(inv 'WIDE again, over sixteen bytes')" "$(printf 'wide 64/64 busy 0\n(batch 1)')" \
	"then again 64 branches at once: the dead callee's branch was given back (none -EBUSY)"
wait_for 3 pool_whole workflow
tap_ok $? "after it: every pool buffer free ($POOL)"

# --- batching ----------------------------------------------------------------
python3 - "$HTTP_PORT" >"$TMP/batch.out" 2>&1 <<'EOF'
import http.client, sys, threading
port = int(sys.argv[1])
N = 24
res = [None] * N
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = ("#req-%02d" % i).encode()
    c.request("POST", "/workflow", body=body)
    r = c.getresponse()
    res[i] = (r.status, r.read().decode())
    c.close()
for rnd in range(2):
    ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for t in ts: t.start()
    for t in ts: t.join()
    for i in range(N):
        st, text = res[i]
        head, _, tail = text.partition("\n")
        print(i, st, head, tail)
EOF
tap_ok $? "48 concurrent requests over HTTP answered" || tap_diag "$(tail -5 "$TMP/batch.out")"
bad=$(awk '{ want = sprintf("#req-%02d", $1); if ($2 != 200 || $3 != want) print }' "$TMP/batch.out" | head -3)
expect_eq "$bad" "" "batching: each answer is its own request's (no mix-up)"
sizes=$(awk '{ print $5 }' "$TMP/batch.out" | tr -d ')' | sort -n | uniq -c | awk '{ printf "%s%dx%d", (NR > 1 ? " " : ""), $1, $2 }')
maxb=$(awk '{ print $5 }' "$TMP/batch.out" | tr -d ')' | sort -n | tail -1)
expect_num "$maxb" -le $BATCH_MAX "batching: no batch over --batch-max $BATCH_MAX (requests x batch size: $sizes)"
expect_num "$maxb" -ge 2 "batching: requests were batched (largest batch $maxb)"
wait_for 3 pool_whole workflow
tap_ok $? "after the batches: every pool buffer free ($POOL)"

# --- fan-out over processes ----------------------------------------------------
URL=http://127.0.0.1:$HTTP_PORT
spry app add wfapp fns whoami,gather exec "$CTR" idle 0 create manual \
	swap-dir "$TMP/swap" >/dev/null
tap_ok $? "app wfapp added (counter: whoami, gather)"
wait_for 5 sh -c "'$SPRY' -P '$PIN' process show wfapp sock '$SOCK' >/dev/null 2>&1"
for i in 1 2 3 4; do spry process create wfapp id $i sock "$SOCK" >/dev/null || break; done &&
	for i in 1 2 3; do spry process wake wfapp id $i sock "$SOCK" >/dev/null || break; done
tap_ok $? "processes 1-4 created, 1-3 active, 4 allocated"
got=$(curl -s -m 10 -d '2 3 4 77' "$URL/wfapp/1/gather")
expect_eq "$got" "$(printf '2: 2\n3: 3\n4: no process\n77: no process')" \
	"process 1 gathers 2, 3, 4, 77: each active one answers for itself, the others 'no process'"
got=$(curl -s -m 10 -d '3 2 3' "$URL/wfapp/2/gather")
expect_eq "$got" "$(printf '3: 3\n2: error\n3: 3')" \
	"process 2 gathers 3, itself, 3: itself refused (it would wait for itself), 3 twice"
expect_eq "$(spry -j process show wfapp id 4 sock "$SOCK" | jq -r '.list[0].state')" allocated \
	"a branch to an allocated process did not wake it"
wait_for 3 pool_whole wfapp
tap_ok $? "the app's pool whole after the fan-outs ($POOL)"

# --- conditional next inside an app ------------------------------------------
# examples/counter's pick: "FN REST" hands REST to handler FN of the same
# process (spry_req_next), which the app must declare (next pick:FN).
nfail() { spry_fails "$1" app add wfbad fns whoami,incr,pick exec "$CTR" next "$2" &&
	grep -q "$3" "$TMP/err"; }
nfail "next unknown" pick:nope "'nope' is not a function of the app"
tap_ok $? "app add: next naming no function of the app refused ($(cat "$TMP/err"))"
nfail "next itself" pick:pick "cannot pick itself"
tap_ok $? "app add: a function picking itself refused ($(cat "$TMP/err"))"
nfail "next loop" pick:incr,incr:whoami,whoami:pick "closes a loop"
tap_ok $? "app add: nexts closing a loop refused ($(cat "$TMP/err"))"
nfail "next twice" pick:incr,pick:incr "listed twice"
tap_ok $? "app add: the same next twice refused"
nfail "next malformed" pick-incr "is not F:G"
tap_ok $? "app add: next 'pick-incr' (not F:G) refused"
printf '%s\n' "apps:" "  - name: wfbad" "    functions: [whoami, incr, pick]" \
	"    exec: $CTR" "    next:" "      - {from: pick, to: incr}" \
	"      - {from: pick, to: echo}" >"$TMP/badapp.yaml"
spry_fails "apply app next unknown" apply "$TMP/badapp.yaml" &&
	grep -q "7.*'echo' is not a function of app 'wfbad'" "$TMP/err"
tap_ok $? "apply: an app's next naming no function refused at its line ($(cat "$TMP/err"))"
printf '%s\n' "apps:" "  - name: wfbad" "    functions: [whoami, incr, pick]" \
	"    exec: $CTR" "    next:" "      - {from: pick, to: incr}" \
	"      - {from: incr, to: whoami}" "      - {from: whoami, to: pick}" >"$TMP/badapp.yaml"
spry_fails "apply app next loop" apply "$TMP/badapp.yaml" && grep -q "closes a loop" "$TMP/err"
tap_ok $? "apply: an app's nexts closing a loop refused ($(cat "$TMP/err"))"
! spry app show wfbad >/dev/null 2>&1
tap_ok $? "nothing of the refused apps was written"

printf '%s\n' "apps:" "  - name: wfnext" "    functions: [whoami, incr, echo, pick]" \
	"    exec: $CTR" "    idle: 0" "    create: manual" "    swap-dir: $TMP/swap-next" \
	"    next:" "      - {from: pick, to: incr}" "      - {from: pick, to: whoami}" \
	>"$TMP/app.yaml"
spry apply "$TMP/app.yaml" >/dev/null
tap_ok $? "apply: app wfnext with next: pick -> incr, pick -> whoami"
json_eq "$(spry -j app show wfnext)" '.next' \
	'[{"from":"pick","to":"incr"},{"from":"pick","to":"whoami"}]' "app show -j: next"
spry app show wfnext | grep -q "  next pick:incr,pick:whoami$"
tap_ok $? "app show: a next line ($(spry app show wfnext))"
json_eq "$(spry -j auth show chain wfnext)" \
	'[.[] | select(.kind == "app_next") | [.from, .to]] | sort' '[["#4","#1"],["#4","#2"]]' \
	"auth show: two app_next authorizations between handler numbers (pick #4 -> whoami #1, incr #2)"
json_eq "$(spry -j chain show wfnext)" '[.next // [] | length]' '[0]' \
	"chain show of the app's chain: no chain next (the app's are in app show, by name)"

wait_for 5 sh -c "'$SPRY' -P '$PIN' process show wfnext sock '$SOCK' >/dev/null 2>&1"
spry process create wfnext id 5 sock "$SOCK" >/dev/null &&
	spry process create wfnext id 6 sock "$SOCK" >/dev/null
tap_ok $? "processes 5 and 6 created"
expect_eq "$(curl -s -m 10 -d abc "$URL/wfnext/5/incr")" "5 3" \
	"process 5's counter at 3 (incr, named by the request)"
n0=$(verdict next)
curl -s -m 10 -D "$TMP/hdr" -d 'incr abcd' "$URL/wfnext/5/pick" >"$TMP/out"
expect_eq "$(cat "$TMP/out")" "5 7" \
	"pick -> incr (declared): answered by incr, in process 5, with process 5's state (3 + 4)"
grep -qi '^Spry-Process: 5' "$TMP/hdr"
tap_ok $? "the answer names process 5, the one the request named ($(grep -i spry-process "$TMP/hdr" | tr -d '\r'))"
expect_eq "$(curl -s -m 10 -d 'whoami x' -H 'Spry-Process: 6' "$URL/wfnext/pick")" "6" \
	"pick -> whoami (declared) for process 6 named by header: answered by whoami in process 6"
expect_eq "$(spry chain invoke wfnext fn pick process 5 data 'incr z' sock "$SOCK")" "5 8" \
	"spry chain invoke ... fn pick process 5: incr answers from process 5's state"
curl -s -m 10 -D "$TMP/hdr" -d 'whoami x' "$URL/wfnext/pick" >"$TMP/out"
pid=$(grep -i '^Spry-Process:' "$TMP/hdr" | tr -dc 0-9)
[ -n "$pid" ] && [ "$(cat "$TMP/out")" = "$pid" ]
tap_ok $? "a request naming no process: whoami answers from the process that took it ($(cat "$TMP/out") / header $pid)"
expect_num "$(( $(verdict next) - n0 ))" -eq 4 "verdict next counted the 4 picks"

r0=$(verdict next_refused)
code=$(curl -s -m 10 -o "$TMP/out" -w '%{http_code}' -d 'echo hi' "$URL/wfnext/5/pick")
expect_eq "$code" 502 "pick -> echo (not declared): HTTP 502 ($(cat "$TMP/out"))"
spry chain invoke wfnext fn pick process 5 data 'echo hi' sock "$SOCK" >"$TMP/out" 2>"$TMP/err"
[ $? -ne 0 ] && grep -q "next_refused" "$TMP/err"
tap_ok $? "spry chain invoke: a refused pick answered with status next_refused ($(cat "$TMP/err"))"
expect_num "$(( $(verdict next_refused) - r0 ))" -eq 2 "verdict next_refused +2"
expect_eq "$(curl -s -m 10 -d x "$URL/wfnext/5/whoami")" "5" \
	"process 5 not quarantined: it still answers"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -d 'zz x' "$URL/wfnext/5/pick")
expect_eq "$code" 404 "pick of a handler the app does not have: 404 from the process (-ENOENT)"

# The check is the router's: the process knows no declaration.
spry app add wfnext fns whoami,incr,echo,pick exec "$CTR" idle 0 create manual \
	swap-dir "$TMP/swap-next" next pick:incr >/dev/null
[ "$(spry -j auth show chain wfnext | jq '[.[] | select(.kind == "app_next")] | length')" = 1 ]
tap_ok $? "app add again with next pick:incr only: pick -> whoami's authorization removed"
code=$(curl -s -m 10 -o "$TMP/out" -w '%{http_code}' -d 'whoami x' "$URL/wfnext/5/pick")
expect_eq "$code" 502 "pick -> whoami, allowed a moment ago, now refused by the router (same process running)"
expect_eq "$(curl -s -m 10 -d 'incr ab' "$URL/wfnext/5/pick")" "5 10" \
	"pick -> incr still answered by process 5 with its state"
wait_for 3 pool_whole wfnext
tap_ok $? "the app's pool whole after the picks ($POOL)"
[ "$(spry -j fn show chain wfnext | jq '[.[] | .instances[]? | select(.flags | index("quarantined"))] | length')" = 0 ]
tap_ok $? "no process quarantined by the refused picks"
spry app del wfnext >/dev/null

# --- the end -----------------------------------------------------------------
[ "$(spry -j fn show chain workflow | jq '[.[] | .instances[]? | select(.flags | index("quarantined"))] | length')" = 0 ]
tap_ok $? "no instance quarantined"
wait_for 3 all_idle workflow 7
tap_ok $? "nothing left in flight"
spry app del wfapp >/dev/null
term_all "${PIDS[@]:1}"
tap_ok $? "the functions leave cleanly on SIGTERM"
grep -h "batches of" "$TMP/fn-tally.log" | tail -1 | sed 's/^/# /'
tap_finish
