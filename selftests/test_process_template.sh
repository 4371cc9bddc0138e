#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Cloud processes started from their app's template (docs/PROCESS.md,
# "Started from the template"): an app's processes are clones of a
# template spryd starts once (start template, the default), each told its
# id, state path, swap directory, state size and functions in the
# template's FORK body, which it sets before anything reads them.
#
# Checked: `start template|exec` in the CLI (refusals, app show); a clone
# answers with its own id and keeps its own state across a swap and a
# wake; it is a clone (spryd's child, its environment its template's,
# counted how="template" in /metrics) while an app declared start exec
# has exec'd processes; a process started by hand as the app's template is
# refused its pool; a killed template is replaced (its processes answer
# on, by the same OS processes; a process started meanwhile is exec'd,
# one after the new template is ready cloned); a kill -9 of spryd: the
# clone adopted by its start time (in the journal), the same pid, its
# state going on; one whose start time differs not adopted (started again
# by its next request, with its state); an exec'd one in a table without a
# start time adopted by its environment, as before; a hostile template
# (tmpl_hostile) naming as its clone another app's process (one adopted,
# one spryd's child), spryd itself or a pid that does not exist, or as its spare another app's process:
# each refused with the reason, the victim never signalled (the same pid,
# answering), the process exec'd instead; no OS process left after spryd
# stops.
#
# Private network namespace, pin directory, state directory, control socket.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

CTR=$SPRY_OUT/examples/counter
HOSTILE=$SPRY_HELPERS/tmpl_hostile
require_bins "$SPRY" "$SPRYD" "$CTR" "$HOSTILE"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v curl >/dev/null || tap_skip_all "curl not installed"

spry_test_env proctpl
export SPRY_STATE_DIR=$TMP/state
PORT=18443
URL=http://127.0.0.1:$PORT
TABLES=$SPRY_STATE_DIR/apps/processes
# app h's template (tmpl_hostile) lies as told in this directory; its
# exec'd processes run the counter (spryd passes its environment on)
export TMPL_HOSTILE_DIR=$TMP/hostile TMPL_HOSTILE_EXEC=$CTR
mkdir -p "$TMPL_HOSTILE_DIR"

post() { curl -s -m 10 -d "${2:-x}" "$URL/$1"; }
pshow() { spry -j process show "$@" sock "$SOCK"; }
pid_of() { pshow "$1" id "$2" | jq -r '.list[0].pid'; }
state_of() { pshow "$1" id "$2" | jq -r '.list[0].state'; }
is_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# starts APP HOW: spry_app_process_starts_total{app=APP,how=HOW}
starts() {
	curl -s -m 5 "$URL/metrics" |
		sed -n "s/^spry_app_process_starts_total{app=\"$1\",how=\"$2\"} //p"
}
# tmpl_pid APP: the pid of APP's ready template, from spryd's log (the last one)
tmpl_pid() {
	sed -n "s|.*fn $1/proc: template pid \([0-9]*\) ready.*|\1|p" "$TMP/spryd.log" | tail -1
}
# env_has PID VAR=VALUE
env_has() { tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qx "$2"; }
# The OS processes of this test (its state directory in their
# environment: exec'd ones inherit spryd's, clones have their template's)
ours() {
	local p
	for p in /proc/[0-9]*; do
		case $(readlink "$p/exe" 2>/dev/null) in "$CTR"|"$HOSTILE") ;; *) continue ;; esac
		env_has "${p#/proc/}" "SPRY_STATE_DIR=$SPRY_STATE_DIR" && echo "${p#/proc/}"
	done
}
spry_test_cleanup_extra() {
	local p
	kill_wait $(ours)
}
up() {
	start_spryd --http 127.0.0.1:$PORT --start-timeout 3 --stop-timeout "$SPRYD_STOP_TIMEOUT" -v
	wait_for 5 sh -c "'$SPRY' -P '$PIN' process show t1 sock '$SOCK' >/dev/null 2>&1"
}

tap_plan

# --- the CLI ---------------------------------------------------------------
spry load >/dev/null
spry_fails "bad start" app add t1 fns whoami exec "$CTR" start fork &&
	grep -q "start: 'fork' is neither 'template' nor 'exec'" "$TMP/err"
tap_ok $? "app add ... start fork: refused with the reason" || tap_diag "$(cat "$TMP/err")"
spry app add t1 fns whoami,incr exec "$CTR" idle 0 swap-dir "$TMP/swap1" >/dev/null &&
	spry app add t2 fns whoami,incr exec "$CTR" idle 0 start exec >/dev/null
tap_ok $? "apps t1 (start template, the default) and t2 (start exec) added"
expect_eq "$(spry -j app show t1 | jq -r .start) $(spry -j app show t2 | jq -r .start)" \
	"template exec" "app show: start template, start exec"

up
tap_ok $? "spryd read the apps"
wait_for 5 sh -c "grep -q 'fn t1/proc: template pid [0-9]* ready' '$TMP/spryd.log'"
tap_ok $? "t1's template is ready" || tap_diag "$(grep -i template "$TMP/spryd.log" | tail -3)"
T1=$(tmpl_pid t1)
expect_eq "$(grep -c 'fn t2/proc: template' "$TMP/spryd.log")" 0 "t2 (start exec) has no template"

# --- a clone: its own id and state ------------------------------------------
spry process create t1 id 7 sock "$SOCK" >/dev/null &&
	spry process create t1 id 8 sock "$SOCK" >/dev/null
expect_eq "$(post t1/7/whoami) $(post t1/8/whoami)" "7 8" "processes 7 and 8 answer with their own ids"
expect_eq "$(post t1/7/incr abc) $(post t1/8/incr x) $(post t1/7/incr de)" "7 3 8 1 7 5" \
	"each has its own state (spry_fn_state())"
P7=$(pid_of t1 7)
[ "$P7" -gt 1 ] && [ "$(ps -o ppid= -p "$P7" | tr -d ' ')" = "$SPRYD_PID" ] &&
	! env_has "$P7" "SPRY_PROCESS_ID=7" && env_has "$P7" "SPRY_TEMPLATE_FD=$(
		tr '\0' '\n' <"/proc/$T1/environ" | sed -n 's/^SPRY_TEMPLATE_FD=//p')"
tap_ok $? "process 7 (pid $P7) is a clone of the template (pid $T1): spryd's child, the template's environment"
expect_eq "$(starts t1 template) $(starts t1 exec)" "2 0" "/metrics: t1's 2 starts by its template, 0 by exec"

spry process swap t1 id 7 sock "$SOCK" >/dev/null
expect_eq "$(state_of t1 7) $(ls "$TMP/swap1")" "swapped 7.swap" "process 7 swapped to its swap file"
expect_eq "$(post t1/7/incr x)" "7 6" "woken (cloned again, state size 0: open only): its state back (5 + 1)"
expect_eq "$(starts t1 template)" 3 "/metrics: the wake was a clone too"

# --- start exec ----------------------------------------------------------------
spry process create t2 id 3 sock "$SOCK" >/dev/null
expect_eq "$(post t2/3/whoami) $(post t2/3/incr ab)" "3 3 2" "t2's process 3 answers with its id and state"
P3=$(pid_of t2 3)
env_has "$P3" "SPRY_PROCESS_ID=3" && env_has "$P3" "SPRY_STATE_APP=t2"
tap_ok $? "t2's process 3 (pid $P3) was exec'd: its id in its own environment"
expect_eq "$(starts t2 template) $(starts t2 exec)" "0 1" "/metrics: t2's start by exec"

# --- only spryd's template gets the app's pool -------------------------------------
SPRY_TEMPLATE_FD=3 timeout 5 "$CTR" --chain t1 --fn proc --sock "$SOCK" 3>"$TMP/fd3" 2>"$TMP/hand.err"
RC=$?
[ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] &&
	grep -q "template refused: t1/proc from pid [0-9]* .*not the template spryd started for the app" \
		"$TMP/spryd.log"
tap_ok $? "a template of t1 started by hand: refused its pool (exit $RC, spryd says why)" ||
	tap_diag "$(tail -3 "$TMP/hand.err")"

# --- a killed template is replaced ---------------------------------------------
P8=$(pid_of t1 8)
kill -KILL "$T1"
wait_for 5 gone "$T1"
tap_ok $? "t1's template (pid $T1) killed"
spry process create t1 id 9 sock "$SOCK" >/dev/null
expect_eq "$(post t1/9/whoami) $(post t1/7/incr y) $(post t1/8/incr y)" "9 7 7 8 2" \
	"processes answer on: 7 and 8 with their states, 9 started meanwhile"
expect_eq "$(pid_of t1 8)" "$P8" "process 8: still its OS process $P8"
wait_for 10 sh -c "[ \"\$(sed -n 's|.*fn t1/proc: template pid \([0-9]*\) ready.*|\1|p' '$TMP/spryd.log' | tail -1)\" != '$T1' ]"
tap_ok $? "a new template is ready (after its backoff)" ||
	tap_diag "$(grep -i 'template' "$TMP/spryd.log" | tail -3)"
T1B=$(tmpl_pid t1)
N0=$(starts t1 template)
spry process create t1 id 10 sock "$SOCK" >/dev/null
expect_eq "$(post t1/10/incr abcd) $(starts t1 template)" "10 4 $((N0 + 1))" \
	"process 10 cloned by the new template (pid $T1B)"
json_eq "$(pshow t1)" '[.processes.active, .transitions.failed, .transitions.crashed]' '[4,0,0]' \
	"t1: 4 processes active, no start failed, none crashed"

# --- kill -9 of spryd: the clone adopted by its start time ---------------------
P10=$(pid_of t1 10)
ST=$(jq -s "[.[] | select(.set.id == 10 and .set.pid == $P10) | .set[\"pid-start\"]] | last" \
	"$TABLES/t1.json.log")
expect_eq "$ST" "$(cut -d')' -f2 "/proc/$P10/stat" | awk '{ print $20 }')" \
	"the journal holds process 10's pid and its start time (/proc/PID/stat)"
P8=$(pid_of t1 8) P3=$(pid_of t2 3)
kill -KILL "$SPRYD_PID"
wait "$SPRYD_PID" 2>/dev/null
cp "$TMP/spryd.log" "$TMP/spryd.1.log"
wait_for 5 gone "$T1B"
tap_ok $? "spryd killed: its template left with it"
# journal lines as if process 8's OS process had another start time (a
# pid reused) and t2's process 3 were in an older table (no pid-start)
# setline APP ID PID [PID-START]: a journal line about ID, the last one
setline() {
	local nx
	nx=$(jq '.["next-id"]' "$TABLES/$1.json")
	jq -nc --argjson id "$2" --argjson pid "$3" --argjson nx "$nx" --arg st "${4:-}" \
		'{set: ({id: $id, state: "allocated", pid: $pid, swap: false,
			 "swap-file": false, activations: 1, swaps: 0} +
			(if $st == "" then {} else {"pid-start": ($st | tonumber)} end)),
		  "next-id": $nx}' >>"$TABLES/$1.json.log"
}
setline t1 8 "$P8" 1 && setline t2 3 "$P3"
tap_ok $? "journals: process 8 with another start time, t2's process 3 without one"
up
wait_for 6 is_state t1 10 active
tap_ok $? "the next spryd: process 10 active again"
expect_eq "$(pid_of t1 10) $(post t1/10/incr z)" "$P10 10 5" \
	"adopted: the same OS process (pid $P10), its state going on (4 + 1)"
grep -q "app t1: process 10: adopted its OS process (pid $P10)" "$TMP/spryd.log"
tap_ok $? "spryd's log says it adopted it"
grep -q "app t1: process 8: pid $P8 not adopted: Stale file handle" "$TMP/spryd.log" &&
	wait_for 5 gone "$P8"
tap_ok $? "process 8: another start time, not adopted (its OS process $P8 refused, gone)" ||
	tap_diag "$(grep 'process 8' "$TMP/spryd.log" | tail -3)"
expect_eq "$(post t1/8/incr a) $(test "$(pid_of t1 8)" != "$P8"; echo $?)" "8 3 0" \
	"process 8 started again by its next request, its state kept (2 + 1)"
wait_for 6 is_state t2 3 active
expect_eq "$(pid_of t2 3) $(post t2/3/incr q)" "$P3 3 3" \
	"t2's process 3 (exec'd, no start time in the table): adopted by its environment, the same pid"

# --- a hostile template cannot name another process as its clone ----------
HD=$TMPL_HOSTILE_DIR
# h_ready N: app h's template has said READY N times (spryd's log)
h_ready() { [ "$(grep -c 'fn h/proc: template pid [0-9]* ready' "$TMP/spryd.log")" -ge "$1" ]; }
# refused PID clone|spare: spryd's log refused PID as h's template's clone|spare
refused() { grep -q "fn h/proc: template pid [0-9]* named pid $1 as its $2: .*: refused" "$TMP/spryd.log"; }
# hostile_fork ID VICTIM: h's template answers process ID's FORK naming VICTIM
hostile_fork() {
	local n
	n=$(grep -c 'fn h/proc: template pid [0-9]* ready' "$TMP/spryd.log")
	wait_for 10 h_ready "$n" || return 1
	echo "$2" >"$HD/forked"
	spry process create h id "$1" sock "$SOCK" >/dev/null &&
		[ "$(post "h/$1/whoami")" = "$1" ] &&
		grep -qx "forked $2" "$HD/log" &&
		# the refusal dropped the template: the next one to be ready
		wait_for 10 h_ready $((n + 1))
}
spry app add h fns whoami,incr exec "$HOSTILE" idle 0 >/dev/null &&
	wait_for 10 h_ready 1
tap_ok $? "app h added: its template (tmpl_hostile) ready" ||
	tap_diag "$(grep 'h/proc' "$TMP/spryd.log" | tail -3)"
P3=$(pid_of t2 3)
hostile_fork 1 "$P3"
tap_ok $? "h's template answers FORKED naming t2's process 3 (pid $P3): h's process 1 answers (exec'd)"
refused "$P3" clone
tap_ok $? "spryd refused it (adopted by this spryd: not its child), with the reason: $(grep -ao "named pid $P3 as its clone: .*" "$TMP/spryd.log" | head -1)"
[ "$(pid_of h 1)" != "$P3" ]
tap_ok $? "h's process 1 is not pid $P3 ($(pid_of h 1))"
expect_eq "$(pid_of t2 3) $(post t2/3/incr v)" "$P3 3 4" \
	"t2's process 3 still its OS process $P3, answering (3 + 1): never signalled"
# another app's process that is spryd's child: t1's process 8, cloned by
# this spryd's t1 template (above), so only its start time (before the
# FORK) and "a process spryd knows" tell it from a clone
P8=$(pid_of t1 8)
[ "$(ps -o ppid= -p "$P8" | tr -d ' ')" = "$SPRYD_PID" ] && hostile_fork 4 "$P8" &&
	grep -aq "named pid $P8 as its clone: started at tick" "$TMP/spryd.log"
tap_ok $? "h's template names t1's process 8 (pid $P8, spryd's child): refused, started before the FORK; h's process 4 answers"
expect_eq "$(pid_of t1 8) $(post t1/8/incr b)" "$P8 8 4" \
	"t1's process 8 still its OS process $P8, answering (3 + 1): never signalled"
hostile_fork 2 "$SPRYD_PID"
tap_ok $? "h's template names spryd itself (pid $SPRYD_PID): h's process 2 answers (exec'd)"
refused "$SPRYD_PID" clone && grep -q "named pid $SPRYD_PID as its clone: not spryd's child" "$TMP/spryd.log"
tap_ok $? "refused: not spryd's child"
NOPID=$(($(cat /proc/sys/kernel/pid_max) - 7))
while kill -0 "$NOPID" 2>/dev/null; do NOPID=$((NOPID - 1)); done
hostile_fork 3 "$NOPID" && refused "$NOPID" clone &&
	grep -q "named pid $NOPID as its clone: no such process" "$TMP/spryd.log"
tap_ok $? "h's template names a pid that does not exist ($NOPID): refused, h's process 3 answers"
json_eq "$(pshow h)" '[.processes.active, .transitions.failed, .transitions.crashed]' '[4,0,0]' \
	"h: 4 processes active (each exec'd), no start failed"
# a spare: another app's process started after h's template (t2's, exec'd
# now), so that only "a process spryd knows" refuses it; then h's template
# killed (spryd reaps a template's recorded spare: SIGKILL after 200 ms)
N=$(grep -c 'fn h/proc: template pid [0-9]* ready' "$TMP/spryd.log")
spry process create t2 id 4 sock "$SOCK" >/dev/null
expect_eq "$(post t2/4/incr abc)" "4 3" "t2's process 4 answers"
P4=$(pid_of t2 4)
echo "$P4" >"$HD/spare"
wait_for 5 refused "$P4" spare &&
	grep -aq "named pid $P4 as its spare: a process spryd already knows" "$TMP/spryd.log"
tap_ok $? "h's template announces t2's process 4 (pid $P4) as its spare: refused ($(
	grep -ao "named pid $P4 as its spare: .*" "$TMP/spryd.log" | head -1))"
HT=$(sed -n 's|.*fn h/proc: template pid \([0-9]*\) ready.*|\1|p' "$TMP/spryd.log" | tail -1)
kill -KILL "$HT"
wait_for 10 h_ready $((N + 1))
tap_ok $? "h's template (pid $HT) killed, dropped with its spare, and started again"
sleep 0.5
expect_eq "$(pid_of t2 4) $(post t2/4/incr de)" "$P4 4 5" \
	"t2's process 4 still its OS process $P4, answering (3 + 2): never signalled"

# --- the end ---------------------------------------------------------------
term_all "$SPRYD_PID"
tap_ok $? "spryd stops cleanly"
none_left() { [ -z "$(ours)" ]; }
wait_for 5 none_left
L=$(ours)
expect_eq "${L:-none}" none "no OS process of the test left (processes, templates, spares)"
tap_finish
