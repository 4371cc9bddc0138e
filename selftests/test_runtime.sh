#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The function runtime against the real spryd and router: registration
# before receiving, wake-ups of an idle function, no CPU while idle,
# SIGTERM, spreading over instances, the clear failures (unknown chain,
# spryd not there) and spryd going away (the functions wait for the next
# one; test_faults.sh restarts it under them), except when their chain was
# deleted meanwhile: they give up (exit status 3).
#
# Runs in a private network namespace with its own pin directory, control
# socket and temporary directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

E2E=$SPRY_HELPERS/e2e_client
WHOAMI=$SPRY_HELPERS/fn_whoami
UPPER=$SPRY_OUT/examples/upper
require_bins "$SPRY" "$SPRYD" "$E2E" "$WHOAMI" "$UPPER"
command -v jq >/dev/null || tap_skip_all "jq not installed"

spry_test_env runtime
chmod 755 "$TMP"	# the control socket is for any user

# fn_live FN PID: PID is a live instance of FN
fn_live() {
	spry -j fn show | jq -e --arg n "$1" --argjson p "$2" \
		'[.[] | select(.name == $n) | .instances[] |
		  select(.pid == $p and .listed and (.flags | index("live")))] | length == 1' \
		>/dev/null
}

fn_not_live() { ! fn_live "$@"; }

invoke() { timeout 10 "$E2E" invoke "$SOCK" "$@"; }

# CPU ticks (utime + stime) of PID
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# exited PID SECS: PID exits within SECS; its status in $RC
exited() {
	RC=-1
	wait_for "$2" proc_gone "$1" || return 1
	wait "$1"
	RC=$?
	return 0
}

tap_plan

setup() {
	spry load >/dev/null &&
	spry chain add rt hops upper >/dev/null &&
	spry chain add who hops whoami >/dev/null &&
	spry chain add rtu hops upper user nobody >/dev/null &&
	start_spryd
}
setup
tap_ok $? "setup: router loaded, chains rt, who and rtu (user nobody), spryd listening" || {
	tap_diag "$(cat "$TMP/spryd.log" 2>/dev/null)"
	tap_finish
}

out=$(invoke rt "nobody here" 2>"$TMP/err"); rc=$?
[ $rc -eq 3 ] && grep -q '^status=1$' "$TMP/err"
tap_ok $? "no instance yet: the request comes back NO_INSTANCE (rc $rc)"

start "$UPPER" "$TMP/upper.log" --chain rt --fn upper --sock "$SOCK"
UP=$LAST
wait_for 3 fn_live upper "$UP"
tap_ok $? "upper registers: fn show lists pid $UP live"

out=$(invoke rt "hello, spry 1"); rc=$?
[ $rc -eq 0 ] && [ "$out" = "HELLO, SPRY 1" ] &&
	grep -q 'registered' "$TMP/upper.log"
tap_ok $? "the first request after registration is answered ('$out')"

# an idle function is asleep and wakes for each request
ok=0
for i in $(seq 1 10); do
	sleep 0.2
	st=$(sed 's/.*) //' "/proc/$UP/stat" | cut -d' ' -f1)
	out=$(invoke rt "wake up $i") || { ok=1; tap_diag "cycle $i: invoke failed"; break; }
	if [ "$st" != S ] || [ "$out" != "WAKE UP $i" ]; then
		tap_diag "cycle $i: state '$st' before, answer '$out'"
		ok=1
		break
	fi
done
tap_ok $ok "wake-up: asleep (S) when idle, answers at once, 10 cycles"

t0=$(ticks "$UP"); sleep 1; t1=$(ticks "$UP")
[ $((t1 - t0)) -le 1 ]
tap_ok $? "idle for 1 s: $((t1 - t0)) CPU ticks (utime+stime)"

# two instances both serve
start "$WHOAMI" "$TMP/who1.log" --chain who --fn whoami --sock "$SOCK"
W1=$LAST
start "$WHOAMI" "$TMP/who2.log" --chain who --fn whoami --sock "$SOCK"
W2=$LAST
ok=1
if wait_for 3 fn_live whoami "$W1" && wait_for 3 fn_live whoami "$W2"; then
	ok=0
	: >"$TMP/who.out"
	for i in $(seq 1 40); do
		out=$(invoke who "req-$i") || { ok=1; break; }
		case "$out" in
		"$W1:req-$i"|"$W2:req-$i") echo "${out%%:*}" >>"$TMP/who.out" ;;
		*) tap_diag "unexpected answer '$out'"; ok=1; break ;;
		esac
	done
	n1=$(grep -cx "$W1" "$TMP/who.out")
	n2=$(grep -cx "$W2" "$TMP/who.out")
	tap_diag "instance $W1 served $n1, instance $W2 served $n2"
	[ $ok -eq 0 ] && [ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || ok=1
fi
tap_ok $ok "two instances of a function both serve requests"

json_check "$(spry -j fn show)" '[.[] | .instances[] | select(.listed) | .inflight] |
	length >= 4 and all(. == 0)' "every live instance has inflight 0 when idle"

# a function as an unprivileged user (it never calls bpf())
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	NOBODY=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
fi
if [ -n "${NOBODY:-}" ] && "${NOBODY[@]}" test -x "$UPPER" &&
   "${NOBODY[@]}" test -w "$SOCK"; then
	"${NOBODY[@]}" "$UPPER" --chain rtu --fn upper --sock "$SOCK" 2>"$TMP/nobody.log" &
	NB=$!
	PIDS+=("$NB")
	wait_for 3 fn_live upper "$NB" &&
		out=$(invoke rtu "unprivileged") && [ "$out" = UNPRIVILEGED ] &&
		spry -j fn show | jq -e --argjson p "$NB" --argjson u "$(id -u nobody)" \
			'[.[] | .instances[] | select(.pid == $p and .uid == $u)] | length == 1' \
			>/dev/null
	tap_ok $? "user nobody: registers for its chain and serves ('${out:-}')"
	"${NOBODY[@]}" "$UPPER" --chain rt --fn upper --sock "$SOCK" 2>"$TMP/nobody-rt.log" &
	P=$!
	PIDS+=("$P")
	exited "$P" 3 && [ "$RC" -ne 0 ] && grep -qi 'refused' "$TMP/nobody-rt.log"
	tap_ok $? "user nobody: registering for root's chain is refused (status $RC)"
else
	tap_skip "user nobody: registers and serves" "no user nobody, setpriv, or access to the build/socket"
	tap_skip "user nobody: refused for another user's chain" "same"
fi

# SIGTERM while idle
kill -TERM "$UP"
exited "$UP" 2
tap_ok $(( RC == 0 ? 0 : 1 )) "SIGTERM while idle: upper exits 0 within 2 s (status $RC)"
wait_for 2 fn_not_live upper "$UP"
tap_ok $? "its instance is gone from fn show"

# unknown chain
start "$UPPER" "$TMP/nochain.log" --chain nosuchchain --fn upper --sock "$SOCK"
P=$LAST
exited "$P" 3 && [ "$RC" -eq 3 ] && grep -qi 'refused' "$TMP/nochain.log" &&
	grep -q 'spryd has no chain nosuchchain with a function upper: not retrying' "$TMP/nochain.log"
tap_ok $? "unknown chain: exits 3 (SPRY_EXIT_GONE) with a clear error (status $RC: $(head -c 200 "$TMP/nochain.log" | tr '\n' ' '))"

# placement (the chain's cpus): the instance runs on them; CPUs it
# may not use leave it where it was, with a log line
allowed() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/status"; }
cpu=$(( $(nproc) - 1 ))
spry chain add pin hops upper cpus "$cpu" >/dev/null &&
	start "$UPPER" "$TMP/pin.log" --chain pin --fn upper --sock "$SOCK" &&
	P1=$LAST && wait_for 3 fn_live upper "$P1" &&
	[ "$(allowed "$P1")" = "$cpu" ] && grep -q "placed on CPUs $cpu" "$TMP/pin.log" &&
	[ "$(invoke pin "placed")" = "PLACED" ]
tap_ok $? "chain cpus $cpu: the instance runs on CPU $cpu only ($(allowed "${P1:-self}")) and serves"
spry chain add far hops upper cpus 255 >/dev/null &&
	start "$UPPER" "$TMP/far.log" --chain far --fn upper --sock "$SOCK" &&
	P2=$LAST && wait_for 3 fn_live upper "$P2" &&
	[ "$(allowed "$P2")" = "$(allowed $$)" ] &&
	grep -q "none of which this process may use" "$TMP/far.log" &&
	[ "$(invoke far "far")" = "FAR" ]
tap_ok $? "chain cpus 255 (not this machine's): not placed ($(allowed "${P2:-self}")), said so, serves"
kill_wait "$P1" "$P2"

# spryd goes away: the functions notice, try to register again with
# backoff, and leave cleanly on SIGTERM meanwhile
kill -TERM "$SPRYD_PID"
exited "$SPRYD_PID" 5
wait_for 3 grep -q 'lost spryd' "$TMP/who1.log" &&
	wait_for 3 grep -q 'lost spryd' "$TMP/who2.log" &&
	wait_for 3 grep -q 're-registration attempt 2 failed' "$TMP/who1.log" &&
	! proc_gone "$W1" && ! proc_gone "$W2" &&
	kill -TERM "$W1" "$W2" && exited "$W1" 3 && r1=$RC && exited "$W2" 3 &&
	[ "$r1" -eq 0 ] && [ "$RC" -eq 0 ]
tap_ok $? "spryd gone: both instances stay, retry registering, exit 0 on SIGTERM (status $RC)"

# a function started before spryd
start "$UPPER" "$TMP/early.log" --chain rt --fn upper --sock "$SOCK"
P=$LAST
exited "$P" 3 && [ "$RC" -ne 0 ] && grep -q 'cannot reach spryd' "$TMP/early.log"
tap_ok $? "started before spryd: exits non-zero with a clear error ($(head -c 200 "$TMP/early.log" | tr '\n' ' '))"

# 18-19: a chain deleted while its function runs: when spryd comes back,
# the function's re-registration is refused as unknown, and it says so and
# exits 3 (SPRY_EXIT_GONE) instead of retrying forever; a function of a
# chain that still exists registers again
start_spryd &&
	spry chain add gone hops upper >/dev/null &&
	start "$UPPER" "$TMP/gone.log" --chain gone --fn upper --sock "$SOCK" && G=$LAST &&
	start "$UPPER" "$TMP/kept.log" --chain rt --fn upper --sock "$SOCK" && K=$LAST &&
	wait_for 3 fn_live upper "$G" && wait_for 3 fn_live upper "$K" &&
	spry chain del gone >/dev/null &&
	kill -TERM "$SPRYD_PID" && exited "$SPRYD_PID" 5 &&
	wait_for 3 grep -q 're-registration attempt 1 failed' "$TMP/gone.log" &&
	! proc_gone "$G" &&
	start_spryd &&
	exited "$G" 10 && [ "$RC" -eq 3 ] &&
	grep -q 'chain gone no longer exists (or has no function upper); giving up' "$TMP/gone.log"
tap_ok $? "chain deleted, spryd restarted: the function gives up with a clear message and exits 3 (status $RC: $(grep -m1 'giving up\|not retrying' "$TMP/gone.log" 2>/dev/null))"
wait_for 5 fn_live upper "${K:-0}" && ! proc_gone "$K"
tap_ok $? "the function of the chain that remains registers again and runs"

# 20-23: how an instance waits (SPRY_FN_WAIT, libspry(3)): by default in a
# blocking recv() on its data socket (x86_64 syscall 45, recvfrom), also
# after a re-registration; SPRY_FN_WAIT=epoll in epoll_wait() (232); both
# serve and leave with 0 on SIGTERM, the blocking one also in the middle of
# a stream of requests
in_syscall() {	# PID NR: asleep in that system call
	[ "$(cut -d' ' -f1 "/proc/$1/syscall" 2>/dev/null)" = "$2" ]
}
if [ "$(uname -m)" = x86_64 ]; then
	out=$(invoke rt "again") && [ "$out" = AGAIN ] && wait_for 2 in_syscall "$K" 45
	tap_ok $? "re-registered instance serves ('${out:-}') and waits in recv() ($(cut -d' ' -f1 "/proc/$K/syscall" 2>/dev/null))"
	SPRY_FN_WAIT=epoll start "$UPPER" "$TMP/ep.log" --chain rt --fn upper --sock "$SOCK" && E=$LAST &&
		wait_for 3 fn_live upper "$E" && wait_for 2 in_syscall "$E" 232
	tap_ok $? "SPRY_FN_WAIT=epoll: the instance waits in epoll_wait() ($(cut -d' ' -f1 "/proc/${E:-self}/syscall" 2>/dev/null))"
else
	tap_skip "re-registered instance waits in recv()" "syscall numbers checked on x86_64 only"
	SPRY_FN_WAIT=epoll start "$UPPER" "$TMP/ep.log" --chain rt --fn upper --sock "$SOCK" && E=$LAST &&
		wait_for 3 fn_live upper "$E"
	tap_skip "SPRY_FN_WAIT=epoll waits in epoll_wait()" "syscall numbers checked on x86_64 only"
fi
kill_wait "$K"
ok=0
for i in $(seq 1 5); do
	out=$(invoke rt "epoll $i") && [ "$out" = "EPOLL $i" ] || ok=1
done
kill -TERM "$E" && exited "$E" 2 && [ "$RC" -eq 0 ] || ok=1
tap_ok $ok "SPRY_FN_WAIT=epoll: serves 5 requests alone, exits 0 on SIGTERM (status $RC)"
start "$UPPER" "$TMP/busy.log" --chain rt --fn upper --sock "$SOCK" && B=$LAST &&
	wait_for 3 fn_live upper "$B" || B=
( for i in $(seq 1 2000); do invoke rt "busy $i" >/dev/null 2>&1 || true; done ) &
LOADER=$!
PIDS+=("$LOADER")
sleep 0.3
ok=1
[ -n "$B" ] && kill -TERM "$B" && exited "$B" 2 && [ "$RC" -eq 0 ] &&
	grep -q 'Terminated: leaving' "$TMP/busy.log" && ok=0
tap_ok $ok "blocking wait: SIGTERM in a stream of requests: exits 0 within 2 s, says so (status ${RC:-none})"
kill_wait "$LOADER"

tap_finish
