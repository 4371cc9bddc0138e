#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# K-Means over cloud processes (issue 12, point 7 a; docs/PROCESS.md,
# "Workloads"): examples/kmeans with P processes of one app, each holding a
# shard of the points in its state, exchanging the centroids' partial sums
# through mailboxes every iteration.  Every iteration's answer of every
# process is compared byte for byte with a single-process reference: the
# Python one (selftests/kmeans_client.py ref, written from the rules in
# examples/kmeans.h) and `kmeans reference` (the same arithmetic in one
# process), for P = 3 and P = 1, after a swap and wake of every process and
# after the kill -9 of one; a step that cannot reach all its peers, a step
# of the wrong iteration, a bad data set are refused with their reason.
#
# Private network namespace, pin directory, state directory, control socket.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

KM=$SPRY_OUT/examples/kmeans
CLIENT=$SPRY_SELFTESTS/kmeans_client.py
require_bins "$SPRY" "$SPRYD" "$KM"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v curl >/dev/null || tap_skip_all "curl not installed"
command -v python3 >/dev/null || tap_skip_all "python3 not installed"

spry_test_env kmeans
export SPRY_STATE_DIR=$TMP/state
PORT=18441
URL=http://127.0.0.1:$PORT
# the data set: N points, D coordinates, K clusters, SEED; ITERS at most
N=6000 D=3 K=6 SEED=13 ITERS=60

spry_test_cleanup_extra() {
	local p
	for p in $(pgrep -P "${SPRYD_PID:-0}" 2>/dev/null); do
		[ "$(readlink /proc/$p/exe 2>/dev/null)" = "$KM" ] && kill -KILL "$p" 2>/dev/null
	done
}

pshow() { spry -j process show "$@" sock "$SOCK"; }
state_of() { pshow "$1" id "$2" | jq -r '.list[0].state'; }
# km APP ID FN DATA: the answer's body; code APP ID FN DATA: its status
km() { curl -s -m 20 --data-binary "$4" "$URL/$1/$2/$3"; }
code() { curl -s -m 20 -o /dev/null -w '%{http_code}' --data-binary "$4" "$URL/$1/$2/$3"; }
# drive APP IDS OUT: load and iterate to the end, the transcript into OUT
drive() {
	python3 "$CLIENT" run "$URL" "$1" "$2" $N $D $K $SEED $ITERS >"$3" 2>"$TMP/drive.err" ||
		{ tap_diag "$(cat "$TMP/drive.err")"; return 1; }
}
same() { cmp -s "$1" "$2" || { tap_diag "$(diff "$1" "$2" | head -10)"; return 1; }; }
last_block() { awk '/^iter /{b=""} {b=b $0 "\n"} END {printf "%s", b}' "$1"; }

tap_plan

# --- the references ----------------------------------------------------------
python3 "$CLIENT" ref 2000 4 7 9 50 >"$TMP/py-small" &&
	"$KM" reference 2000 4 7 9 50 >"$TMP/c-small" && same "$TMP/py-small" "$TMP/c-small"
tap_ok $? "kmeans reference equals the Python reference (2,000 points, D 4, K 7: $(grep -c '^iter' "$TMP/c-small") iterations)"
python3 "$CLIENT" ref $N $D $K $SEED $ITERS >"$TMP/ref" &&
	"$KM" reference $N $D $K $SEED $ITERS >"$TMP/c-ref" && same "$TMP/ref" "$TMP/c-ref"
tap_ok $? "and for the test's data set ($N points: $(grep -c '^iter' "$TMP/ref") iterations)"
NIT=$(grep -c '^iter' "$TMP/ref")
[ "$NIT" -ge 5 ] && [ "$NIT" -lt $ITERS ] && tail -n $((K + 1)) "$TMP/ref" | grep -q "^iter $NIT changed 0$"
tap_ok $? "the reference converges (an iteration that changes nothing) after more than 4 iterations"
"$KM" reference 10 2 20 1 5 >/dev/null 2>"$TMP/err"
expect_eq "$? $(cat "$TMP/err")" "2 kmeans: N must be K..2^26" "reference: fewer points than clusters refused"
"$KM" reference 10 x 2 1 5 >/dev/null 2>"$TMP/err"
expect_eq "$? $(head -1 "$TMP/err")" "2 kmeans: 'x' is not a number" "reference: a bad number refused"

# --- P processes ----------------------------------------------------------------
spry load >/dev/null
spry app add kmeans fns load,step,show exec "$KM" create manual idle 0 \
	swap-dir "$TMP/swap" >/dev/null &&
	spry app add km1 fns load,step,show exec "$KM" create manual idle 0 >/dev/null
tap_ok $? "apps kmeans and km1 added"
start_spryd --http 127.0.0.1:$PORT --start-timeout 3 --stop-timeout 1
wait_for 5 sh -c "'$SPRY' -P '$PIN' process show km1 sock '$SOCK' >/dev/null 2>&1"
tap_ok $? "spryd read the apps"
for i in 1 2 3; do spry process create kmeans id $i sock "$SOCK" >/dev/null; done
spry process create km1 id 5 sock "$SOCK" >/dev/null

expect_eq "$(code kmeans 1 show x)" 409 "show before a load: 409"
expect_eq "$(code kmeans 1 step 1)" 409 "step before a load: 409"
expect_eq "$(code kmeans 1 load '10 2 3')" 400 "load with too few numbers: 400"
expect_eq "$(km kmeans 1 load '100 2 3 1 3 3')" "error: the rank must be below P" \
	"load of rank 3 of 3: refused with the reason"
expect_eq "$(km kmeans 1 load '100 17 3 1 0 3')" "error: D must be 1..16" "load with D 17: refused"

drive km1 5 "$TMP/p1"
tap_ok $? "P = 1: process 5 of km1 loaded and iterated"
same "$TMP/ref" "$TMP/p1"
tap_ok $? "P = 1: every iteration equals the reference byte for byte"

drive kmeans 1,2,3 "$TMP/p3"
tap_ok $? "P = 3: processes 1, 2, 3 loaded, every iteration answered the same by all three"
same "$TMP/ref" "$TMP/p3"
tap_ok $? "P = 3: every iteration equals the single-process reference byte for byte ($NIT iterations)"
last_block "$TMP/ref" >"$TMP/last"
for i in 1 2 3; do km kmeans $i show x >"$TMP/show$i"; done
same "$TMP/last" "$TMP/show1" && same "$TMP/last" "$TMP/show2" && same "$TMP/last" "$TMP/show3"
tap_ok $? "show: each process's state holds the final centroids"
expect_eq "$(code kmeans 2 step 1)" 409 "a step of a past iteration: 409"

for i in 1 2 3; do
	spry process swap kmeans id $i sock "$SOCK" >/dev/null || tap_diag "swap $i failed"
done
[ -s "$TMP/swap/1.swap" ] && [ -s "$TMP/swap/2.swap" ] && [ -s "$TMP/swap/3.swap" ] &&
	[ "$(state_of kmeans 1)$(state_of kmeans 2)$(state_of kmeans 3)" = swappedswappedswapped ]
tap_ok $? "the three processes swapped: their shards in swap files"
for i in 1 2 3; do km kmeans $i show x >"$TMP/show$i"; done
same "$TMP/last" "$TMP/show1" && same "$TMP/last" "$TMP/show2" && same "$TMP/last" "$TMP/show3"
tap_ok $? "woken by a request: each still holds the final centroids"

# a kill -9, then a second run from a new load: the same transcript
P=$(pshow kmeans id 2 | jq -r '.list[0].pid')
kill -KILL "$P" 2>/dev/null
wait_for 5 sh -c "[ \"\$('$SPRY' -P '$PIN' -j process show kmeans id 2 sock '$SOCK' | jq -r '.list[0].state')\" = allocated ]"
tap_ok $? "kill -9 of process 2's OS process"
km kmeans 2 show x >"$TMP/show2"
same "$TMP/last" "$TMP/show2"
tap_ok $? "restarted: process 2 still holds the final centroids"
drive kmeans 3,1,2 "$TMP/p3b" && same "$TMP/ref" "$TMP/p3b"
tap_ok $? "a second run, the shards in another order of processes: equal to the reference"

# a step that cannot reach its P - 1 peers: refused, the state unchanged
expect_eq "$(km kmeans 1 load "$N $D $K $SEED 0 2")" "loaded shard 0 of 2 points 0..3000" \
	"process 1 loaded as shard 0 of 2 (3 processes live)"
expect_eq "$(code kmeans 1 step 1)" 503 "its step: 503 (partial sums delivered to 2 processes, 1 wanted)"
expect_eq "$(km kmeans 1 show x | head -1)" "iter 0 changed 0" "... and its state still at iteration 0"
# its partial sums wait, unread, in processes 2 and 3: a load empties the mailbox
drive kmeans 1,2,3 "$TMP/p3c" && same "$TMP/ref" "$TMP/p3c"
tap_ok $? "loaded again (the stale mails dropped by load): equal to the reference"

term_all "$SPRYD_PID"
tap_ok $? "spryd stops cleanly"
tap_finish
