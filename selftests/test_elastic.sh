#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Declared functions (issue 11): spryd starts, scales, stops and restarts
# instances itself.  Declarations made before spryd starts, the CLI's
# refusals, min instances, scale to zero after idle and back (held
# requests all answered, in arrival order, with the right bodies), scale
# up under a wrk step load within max, the hold queue's bound (503 +
# Retry-After) and deadline (504), bad executables, a crash loop with
# exponential backoff, an instance that never registers, a crash under
# load replaced, spryd killed and restarted adopting its instances without
# duplicates, and 1,000 scale cycles (200 under ASan+UBSan) leaving no
# zombie and spryd's fd count where it started.  Windows are short (spryd
# --scale-tick etc.) so it runs in seconds; the timings are not measured
# here (bench/elastic_bench.sh).
#
# Private network namespace, pin directory, state directory, control socket.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

UPPER=$SPRY_OUT/examples/upper
WHOAMI=$SPRY_HELPERS/fn_whoami
HTTPC=$SPRY_SELFTESTS/elastic_http.py
require_bins "$SPRY" "$SPRYD" "$UPPER" "$WHOAMI"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v python3 >/dev/null || tap_skip_all "python3 not installed"

spry_test_env elastic
chmod 755 "$TMP"
export SPRY_STATE_DIR=$TMP/state
PORT=18391
# 1,000 in both builds (about 16 ms a cycle, 34 s under ASan+UBSan)
CYCLES=${ELASTIC_CYCLES:-1000}

spryd_up() {
	start_spryd --http 127.0.0.1:$PORT --access-log "$TMP/access.log" \
		--scale-tick 0.002 --stable-window 1 --panic-window 0.2 \
		--start-timeout 3 --start-backoff 0.05 --stop-timeout 1 -v
}

# scale CHAIN FN FIELD: spryd's view of a declared function (spry fn show)
scale() {
	spry -j fn show chain "$1" | jq -r --arg f "$2" --arg k "$3" \
		'.[] | select(.name == $f) | .scale[$k] // empty'
}
scale_is() { [ "$(scale "$1" "$2" "$3")" = "$4" ]; }
scale_ge() { local v; v=$(scale "$1" "$2" "$3"); [ -n "$v" ] && [ "$v" -ge "$4" ]; }
# instances of spryd running BIN: its children (no zombies counted) but
# the templates and their spares (named "T:..." by libspry)
n_children() {
	local n=0 p
	for p in $(pgrep -P "$SPRYD_PID" 2>/dev/null); do
		grep -aq '^State:.*Z' /proc/$p/status 2>/dev/null && continue
		case "$(cat /proc/$p/comm 2>/dev/null)" in T:*) continue ;; esac
		[ "$(readlink /proc/$p/exe 2>/dev/null)" = "$1" ] && n=$((n + 1))
	done
	echo $n
}
# spryd's timerfd disarmed (it_value (0, 0) in its fdinfo): nothing to wake it
timer_disarmed() {
	local f
	for f in /proc/"$SPRYD_PID"/fd/*; do
		[ "$(readlink "$f")" = "anon_inode:[timerfd]" ] || continue
		grep -q '^it_value: (0, 0)$' /proc/"$SPRYD_PID"/fdinfo/"${f##*/}"
		return
	done
	return 1
}
# spryd's context switches (each a wake-up) and utime + stime (ticks)
wakeups() { awk '/ctxt_switches/ { n += $2 } END { print n }' /proc/"$SPRYD_PID"/status; }
cputicks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$SPRYD_PID"/stat; }
no_children() { [ "$(n_children "$1")" -eq 0 ]; }
# instances of chain CHAIN among spryd's children (by their command line)
n_chain() {
	local n=0 p
	for p in $(pgrep -P "$SPRYD_PID" 2>/dev/null); do
		grep -aq '^State:.*Z' /proc/$p/status 2>/dev/null && continue
		case "$(cat /proc/$p/comm 2>/dev/null)" in T:*) continue ;; esac
		tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | grep -q -- "--chain $1 " && n=$((n + 1))
	done
	echo $n
}
chain_empty() { [ "$(n_chain "$1")" -eq 0 ]; }
# instances of chain el running BIN, whoever's children (adopted ones too)
n_el() {
	local n=0 p
	for p in $(pgrep -f "^$1 --chain el" 2>/dev/null); do
		grep -aq '^State:.*Z' /proc/$p/status 2>/dev/null && continue
		case "$(cat /proc/$p/comm 2>/dev/null)" in T:*) continue ;; esac
		n=$((n + 1))
	done
	echo $n
}
zombies() { ps -o stat= --ppid "$SPRYD_PID" 2>/dev/null | grep -c '^Z'; }
nfds() { ls /proc/"$SPRYD_PID"/fd | wc -l; }

spry_test_cleanup_extra() {
	# instances spryd started and a killed spryd left behind (ours only)
	local p
	for p in $(jq -r '.fns[].pids[].pid' "$SPRY_STATE_DIR/status.json" 2>/dev/null); do
		case "$(readlink /proc/$p/exe 2>/dev/null)" in
		"$UPPER"|"$WHOAMI") kill -KILL "$p" 2>/dev/null ;;
		esac
	done
}

tap_plan

# --- declarations, before spryd --------------------------------------------
spry load >/dev/null &&
	spry chain add el hops upper,whoami deadline 3000 >/dev/null &&
	spry fn declare el upper exec "$UPPER" min 0 max 3 target 1 idle 0.3 >/dev/null &&
	spry fn declare el whoami exec "$WHOAMI" min 1 max 2 idle 0.3 queue 64 >/dev/null &&
	[ "$(stat -c %a "$SPRY_STATE_DIR/el.json")" = 600 ]
tap_ok $? "declared before spryd starts: root-only file in the state directory"

ok=0
spry_fails "max 0" fn declare el upper exec "$UPPER" max 0 || ok=1
spry_fails "min > max" fn declare el upper exec "$UPPER" min 3 max 2 || ok=1
spry_fails "target 0" fn declare el upper exec "$UPPER" target 0 || ok=1
spry_fails "bad idle" fn declare el upper exec "$UPPER" idle 1x || ok=1
spry_fails "no exec" fn declare el upper min 1 || ok=1
spry_fails "unknown chain" fn declare nochain upper exec "$UPPER" || ok=1
spry_fails "not a function of the chain" fn declare el nosuch exec "$UPPER" || ok=1
spry_fails "queue 0" fn declare el upper exec "$UPPER" queue 0 || ok=1
spry_fails "undeclared" fn undeclare el nosuch || ok=1
tap_ok $ok "spry fn declare refuses bad values with one clear error each"

# --- a state directory whose parents are missing, nothing declared in it: ---
# spryd makes it (parents 0755, itself 0700) and watches it, so it is at
# rest at once (it used to stat() it every 500 ms, for as long as it ran)
STATE_KEPT=$SPRY_STATE_DIR
export SPRY_STATE_DIR=$TMP/run/spry/fns/pin
start_spryd
wait_for 5 timer_disarmed
tap_ok $? "state directory with missing parents: spryd's timerfd is disarmed" ||
	tap_diag "$(grep -a it_value /proc/"$SPRYD_PID"/fdinfo/*; tail -5 "$TMP/spryd.log")"
W0=$(wakeups); C0=$(cputicks)
sleep 1
W1=$(wakeups); C1=$(cputicks)
[ "$W1" -eq "$W0" ] && [ "$C1" -eq "$C0" ] &&
	[ "$(stat -c %a "$TMP/run" "$TMP/run/spry/fns" "$SPRY_STATE_DIR" "$SPRY_STATE_DIR/apps" |
	     tr '\n' ' ')" = "755 755 700 700 " ]
tap_ok $? "... at rest for 1 s (woke $((W1 - W0)) times, $((C1 - C0)) CPU ticks; want 0, 0), directories 0755 above, 0700 its own" ||
	tap_diag "$(stat -c '%a %n' "$TMP/run" "$TMP/run/spry/fns" "$SPRY_STATE_DIR" "$SPRY_STATE_DIR/apps")"
kill_wait "$SPRYD_PID"
export SPRY_STATE_DIR=$STATE_KEPT

spryd_up
wait_for 5 scale_is el whoami actual 1 && [ "$(n_children "$WHOAMI")" -eq 1 ]
tap_ok $? "spryd starts min instances itself (whoami: 1, a child of spryd)" ||
	tap_diag "$(tail -20 "$TMP/spryd.log")"
sleep 0.3
[ "$(n_children "$UPPER")" -eq 0 ] && scale_is el upper actual 0
tap_ok $? "a function with min 0 starts at zero instances"

# --- activation: held requests in arrival order --------------------------------
python3 "$HTTPC" burst $PORT el 30 2 >"$TMP/burst" 2>&1
bad=$(awk -v n=30 '{ want = "REQ-" $1; if ($2 != 200 || $4 !~ ("^[0-9]+:" want "$")) b++ }
	END { print b + (NR != n) }' "$TMP/burst")
[ "$bad" = 0 ]
tap_ok $? "30 requests at zero instances: all held, then answered 200 with the right bodies" ||
	tap_diag "$(head -5 "$TMP/burst")"
spry chain add ord hops upper >/dev/null &&
	spry fn declare ord upper exec /bin/sh min 0 max 1 idle 0.3 start exec args -c \
		"sleep 0.5; exec $UPPER --chain ord --fn upper --sock $SOCK" >/dev/null
wait_for 3 grep -aq 'fn ord/upper declared' "$TMP/spryd.log"
python3 "$HTTPC" burst $PORT ord 30 2 >"$TMP/ord" 2>&1
grep -ao 'path=/ord/[0-9]*' "$TMP/access.log" | sed 's|.*/||' >"$TMP/order"
seq 0 29 | cmp -s - "$TMP/order" && [ "$(awk '$2 == 200 && $4 == "REQ-" $1' "$TMP/ord" | wc -l)" -eq 30 ]
tap_ok $? "30 requests held while the instance starts: answered in arrival order (access log)" ||
	tap_diag "order: $(tr '\n' ' ' <"$TMP/order")"
grep -aq 'scale 0 -> 1 (activation' "$TMP/spryd.log" && grep -aq 'held requests released' "$TMP/spryd.log"
tap_ok $? "the activation is logged with its reason"

# --- scale to zero after idle ------------------------------------------------------
wait_for 5 scale_is el upper actual 0 && wait_for 3 no_children "$UPPER"
tap_ok $? "idle for its idle time: upper back to zero instances" ||
	tap_diag "$(spry fn show chain el)"
scale el upper last_decision | grep -aq '^idle'
tap_ok $? "the scale-down decision says why ($(scale el upper last_decision | cut -c1-60))"

# --- scale up under a step load, max respected -------------------------------------
# chain sl: whoami taking 2 ms a request (WHOAMI_DELAY_US, through env), so
# that the load keeps requests in flight at the instances whatever the
# machine's speed
if command -v wrk >/dev/null && ENV=$(command -v env); then
	spry chain add sl hops whoami deadline 3000 >/dev/null &&
		spry fn declare sl whoami exec "$ENV" min 0 max 3 target 1 idle 0.3 \
			args WHOAMI_DELAY_US=2000 "$WHOAMI" >/dev/null
	wait_for 3 grep -aq 'fn sl/whoami declared' "$TMP/spryd.log"
	MAXSEEN=0
	( wrk -t 1 -c 2 -d 1s -s /dev/null http://127.0.0.1:$PORT/sl >/dev/null 2>&1
	  wrk -t 2 -c 16 -d 2s http://127.0.0.1:$PORT/sl >"$TMP/wrk" 2>&1 ) &
	WRK=$!
	while kill -0 $WRK 2>/dev/null; do
		n=$(n_chain sl)
		[ "$n" -gt "$MAXSEEN" ] && MAXSEEN=$n
		sleep 0.05
	done
	wait $WRK
	[ "$MAXSEEN" -ge 2 ] && [ "$MAXSEEN" -le 3 ] && scale_ge sl whoami scale_ups 2
	tap_ok $? "a wrk step load (2 then 16 connections, 2 ms a request) scales up, within max 3 (peak $MAXSEEN)" ||
		tap_diag "$(grep 'fn sl/.*scale' "$TMP/spryd.log" | tail -5)"
	grep -aq 'Non-2xx\|Socket errors' "$TMP/wrk"
	[ $? -ne 0 ]
	tap_ok $? "no error under the step load ($(grep -o '[0-9]* requests in' "$TMP/wrk"))" ||
		tap_diag "$(cat "$TMP/wrk")"
	wait_for 5 scale_is sl whoami actual 0
	tap_ok $? "after the load: back to zero"
else
	tap_skip "wrk or env not installed" 3
fi

# --- the hold queue's bound and deadline ----------------------------------------------
SLOW="sleep 0.6; exec $UPPER --chain hq --fn upper --sock $SOCK"
spry chain add hq hops upper deadline 3000 >/dev/null &&
	spry fn declare hq upper exec /bin/sh min 0 max 1 idle 0.3 queue 4 start exec \
		args -c "$SLOW" >/dev/null
wait_for 3 grep -aq 'fn hq/upper declared' "$TMP/spryd.log"
python3 "$HTTPC" burst $PORT hq 10 1 >"$TMP/hq" 2>&1
n200=$(awk '$2 == 200' "$TMP/hq" | wc -l)
n503=$(awk '$2 == 503 && $3 == 1' "$TMP/hq" | wc -l)
[ "$n200" -eq 4 ] && [ "$n503" -eq 6 ]
tap_ok $? "queue 4 while starting: 4 held and answered, 6 refused 503 + Retry-After" ||
	tap_diag "$(cat "$TMP/hq")"
spry chain add hd hops upper deadline 200 >/dev/null &&
	spry fn declare hd upper exec /bin/sh min 0 max 1 idle 0.3 start exec args -c \
		"sleep 0.6; exec $UPPER --chain hd --fn upper --sock $SOCK" >/dev/null
wait_for 3 grep -aq 'fn hd/upper declared' "$TMP/spryd.log"
python3 "$HTTPC" burst $PORT hd 3 1 >"$TMP/hd" 2>&1
[ "$(awk '$2 == 504' "$TMP/hd" | wc -l)" -eq 3 ]
tap_ok $? "held past the chain's deadline: 504" || tap_diag "$(cat "$TMP/hd")"

# --- failures ------------------------------------------------------------------------
spry chain add bad hops upper >/dev/null &&
	spry fn declare bad upper exec /nonexistent/upper min 0 max 1 >/dev/null
wait_for 3 grep -aq 'fn bad/upper declared' "$TMP/spryd.log"
t0=$(date +%s%N)
out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -d x http://127.0.0.1:$PORT/bad)
t1=$(date +%s%N)
[ "$out" = 503 ] && [ $(( (t1 - t0) / 1000000 )) -lt 2000 ]
tap_ok $? "missing executable: the held request is answered 503 at once ($out, $(( (t1 - t0) / 1000000 )) ms)"
# spry fn show reads the status spryd writes on its tick: wait for it
missing_said() {
	scale bad upper last_error | grep -aq 'No such file' &&
		grep -aq 'fn bad/upper: cannot start /nonexistent/upper: No such file' "$TMP/spryd.log"
}
wait_for 3 missing_said
tap_ok $? "missing executable: clear error in the log and in spry fn show"
out=$(invoke_fails=1; spry chain invoke bad data x sock "$SOCK" 2>&1); rc=$?
[ $rc -ne 0 ]
tap_ok $? "the control socket's INVOKE gets an error too (rc $rc: $(echo "$out" | head -1))"

spry chain add crash hops upper >/dev/null &&
	spry fn declare crash upper exec /bin/false min 1 max 1 >/dev/null
wait_for 6 scale_ge crash upper failures 5
tap_ok $? "crash at start: restarted with failures counted ($(scale crash upper failures))"
grep 'fn crash/upper:.*before registering' "$TMP/spryd.log" | grep -o 'next start in [0-9]* ms' |
	awk '{ print $4 }' | head -5 >"$TMP/backoff"
awk 'NR > 1 && $1 < 2 * prev * 0.9 { b++ } { prev = $1 } END { exit b || NR < 4 }' "$TMP/backoff"
tap_ok $? "crash loop: exponential backoff ($(tr '\n' ' ' <"$TMP/backoff")ms)"
spry fn undeclare crash upper >/dev/null

spry chain add mute hops upper >/dev/null &&
	spry fn declare mute upper exec /bin/sh min 1 max 1 args -c "exec sleep 30" >/dev/null
wait_for 8 grep -aq 'fn mute/upper: instance pid [0-9]* did not register within 3000 ms: killed' \
	"$TMP/spryd.log"
tap_ok $? "never registers: killed after the start timeout, error logged"
wait_for 3 grep -aq 'fn mute/upper: template pid [0-9]* not ready within 3000 ms: is /bin/sh a libspry function' \
	"$TMP/spryd.log"
tap_ok $? "its template (start template, the default) never ready: stopped after the start timeout, the reason logged"
spry fn undeclare mute upper >/dev/null

# the instance to kill: the one ready now (the burst above may have
# started a second one since, and the idle scale-down stopped either)
steady() {
	scale_is el whoami actual 1 && scale_is el whoami starting 0 &&
		scale_is el whoami draining 0 &&
		OLD=$(scale el whoami pids | jq -r '.[] | select(.state == "ready") | .pid') &&
		[ -n "$OLD" ] && [ "$(echo "$OLD" | wc -l)" -eq 1 ]
}
wait_for 5 steady
kill -KILL "$OLD" 2>/dev/null
# the status lists the dead instance until spryd's next write: wait for
# a ready instance that is not the one killed
replaced() {
	NEW=$(scale el whoami pids | jq -r '.[] | select(.state == "ready") | .pid') &&
		[ -n "$NEW" ] && [ "$NEW" != "$OLD" ] && scale_is el whoami actual 1 &&
		scale_ge el whoami crashes 1
}
wait_for 5 replaced
tap_ok $? "an instance that crashes is replaced (pid $OLD -> ${NEW:-none})" ||
	tap_diag "$(spry -j fn show chain el | jq -c '.[] | select(.name == "whoami") | .scale';
		grep -a "whoami\|pid $OLD" "$TMP/spryd.log" | tail -8)"

# --- the template: apart from instances, its death seen in the loop ---------------------
# (the replacement above took the template's spare: the next one is forked
# after it, slowly under ASan, so this waits for it)
templated() {
	TP=$(scale el whoami template_pid); SP=$(scale el whoami spare_pid)
	[ "$(scale el whoami start)" = template ] && [ "${TP:-0}" -gt 0 ] && [ "${SP:-0}" -gt 0 ] &&
		[ "$(ps -o ppid= -p "$TP" | tr -d ' ')" = "$SPRYD_PID" ] &&
		[ "$(cat /proc/"$TP"/comm)" = "T:fn_whoami" ] && [ "$(n_children "$WHOAMI")" -eq 1 ] &&
		[ "$(scale el whoami pids | jq length)" -eq 1 ] &&
		spry fn show chain el | grep -q "template pid $TP  spare pid [0-9]* (processes, not instances)"
}
wait_for 5 templated
tap_ok $? "whoami starts by its template: template $TP and spare $SP listed apart (status, spry fn show), named T:, one instance" ||
	tap_diag "$(ps -o pid,ppid,comm,args --ppid "$SPRYD_PID")"
kill -KILL "$TP"
t0=$(date +%s%N)
wait_for 3 grep -aq "fn el/whoami: template pid $TP: .*(it exited)" "$TMP/spryd.log"
rc=$?; t1=$(date +%s%N)
new_template() {
	TP2=$(scale el whoami template_pid) && [ "${TP2:-0}" -gt 0 ] && [ "$TP2" != "$TP" ] &&
		grep -aq "fn el/whoami: template pid $TP2 ready" "$TMP/spryd.log"
}
[ $rc -eq 0 ] && wait_for 5 new_template && wait_for 3 proc_gone "$SP" && [ "$(zombies)" -eq 0 ]
tap_ok $? "a killed template is seen at once ($(( (t1 - t0) / 1000000 )) ms), its spare reaped, a new one started after its backoff ($TP -> ${TP2:-none})" ||
	tap_diag "$(grep -a 'template' "$TMP/spryd.log" | tail -5)"

# --- spryd killed and restarted: adoption, no duplicate ------------------------------
kill -KILL "$SPRYD_PID"; wait "$SPRYD_PID" 2>/dev/null
spryd_up
adopted() {
	scale_is el whoami actual 1 && [ "$(scale el whoami pids | jq -r '.[0].pid')" = "$NEW" ] &&
		scale_ge el whoami adopted 1
}
wait_for 5 adopted
sleep 0.5
[ "$(n_el "$WHOAMI")" -eq 1 ] && adopted
tap_ok $? "spryd killed and restarted: whoami pid $NEW adopted, no duplicate" ||
	tap_diag "$(ps -o pid,ppid,comm,args -p "$(pgrep -d, -f "$WHOAMI")"; grep -i adopt "$TMP/spryd.log")"
out=$(curl -s -m 5 -d again http://127.0.0.1:$PORT/el)
[ "$out" = "$NEW:AGAIN" ]
tap_ok $? "and serves through the new spryd ('$out')"

# --- 1,000 scale cycles --------------------------------------------------------------
# whoami: the client sees which instance answered, and sends the next
# request once that process is gone (so each one finds zero instances,
# however slow the machine), then 1 ms.  Under ASan, LeakSanitizer's scan
# at each instance's exit would be most of a cycle: off for these
# instances only (through env; ignored by a build without sanitizers).
spry chain add cyc hops whoami >/dev/null &&
	spry fn declare cyc whoami exec "$(command -v env)" min 0 max 1 idle 0.001 \
		args ASAN_OPTIONS=detect_leaks=0 "$WHOAMI" >/dev/null
wait_for 3 grep -aq 'fn cyc/whoami declared' "$TMP/spryd.log"
python3 "$HTTPC" cycles $PORT cyc 1 20 >/dev/null
wait_for 3 scale_is cyc whoami actual 0
FD0=$(nfds); S0=$(scale cyc whoami starts)
python3 "$HTTPC" cycles $PORT cyc "$CYCLES" 1 >"$TMP/cyc" 2>"$TMP/cyc.err"
wait_for 5 scale_is cyc whoami actual 0 && wait_for 3 chain_empty cyc
# the status spry reads is written at most every 200 ms: the last starts
# may not be in it yet
wait_for 3 scale_ge cyc whoami starts $((S0 + CYCLES))
S1=$(scale cyc whoami starts)
[ "$(cat "$TMP/cyc")" = "ok $CYCLES" ] && [ $((S1 - S0)) -ge "$CYCLES" ]
tap_ok $? "$CYCLES requests each finding zero instances: all answered, $((S1 - S0)) instances started and stopped" ||
	tap_diag "$(cat "$TMP/cyc") starts $S0 -> $S1; $(head -3 "$TMP/cyc.err"); $(grep -a 'fn cyc/' "$TMP/spryd.log" | grep -av 'scale\|started instance\|registered in\|stopped (' | head -5)"
Z=$(zombies); FD1=$(nfds)
[ "$Z" -eq 0 ] && [ "$FD1" -eq "$FD0" ]
tap_ok $? "after the cycles: no zombie ($Z), spryd's fds back to $FD0 ($FD1)"

# --- metrics and a clean stop ----------------------------------------------------------
curl -s http://127.0.0.1:$PORT/metrics >"$TMP/metrics"
grep -aq '^spry_fn_starts_total{chain="cyc",fn="whoami"} [1-9]' "$TMP/metrics" &&
	grep -aq '^spry_fn_adopted_total{chain="el",fn="whoami"} 1$' "$TMP/metrics" &&
	grep -aq '^spry_fn_actual_instances{chain="el",fn="whoami"} 1$' "$TMP/metrics" &&
	grep -aq '^spry_held_requests_total{chain="cyc",outcome="held"} [1-9]' "$TMP/metrics"
tap_ok $? "/metrics: starts, adoptions, instances, held requests (of the restarted spryd)" ||
	tap_diag "$(grep -a 'spry_fn_starts_total\|start_failures\|held_requests_total' "$TMP/metrics")"
# --- at rest: spryd sleeps --------------------------------------------------------------
spry fn undeclare bad upper >/dev/null &&
	spry fn declare el whoami exec "$WHOAMI" min 0 max 2 idle 0.3 queue 64 >/dev/null
at_rest() {
	jq -e '[.fns[] | select(.actual + .starting + .draining + .held + (.pids | length) > 0)] |
		length == 0' "$SPRY_STATE_DIR/status.json" >/dev/null && timer_disarmed
}
wait_for 10 at_rest
tap_ok $? "every declared function at zero: spryd's timerfd is disarmed" ||
	tap_diag "$(jq -c '.fns[] | [.chain, .fn, .actual, .starting, .draining, .held]' \
		"$SPRY_STATE_DIR/status.json"; grep -a it_value /proc/"$SPRYD_PID"/fdinfo/*)"
W0=$(wakeups); C0=$(cputicks)
sleep 1
W1=$(wakeups); C1=$(cputicks)
[ "$W1" -eq "$W0" ] && [ "$C1" -eq "$C0" ]
tap_ok $? "at rest for 1 s: spryd woke $((W1 - W0)) times, used $((C1 - C0)) CPU ticks (want 0, 0)"
out=$(curl -s -m 5 -d wake http://127.0.0.1:$PORT/el)
echo "$out" | grep -aq '^[0-9]*:WAKE$' && wait_for 10 at_rest
tap_ok $? "a request wakes it: started from zero, answered ('$out'), back at rest"
spry fn declare el whoami exec "$WHOAMI" min 1 max 2 idle 0.3 queue 64 >/dev/null
wait_for 5 scale_is el whoami actual 1

kill -TERM "$SPRYD_PID"
wait_for 8 proc_gone "$SPRYD_PID"
wait "$SPRYD_PID" 2>/dev/null
! pgrep -f "^$WHOAMI --chain el" >/dev/null
tap_ok $? "spryd stopped cleanly: it stopped the instances it started"

tap_finish
