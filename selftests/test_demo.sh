#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The main job (scripts/demo.sh, `make demo`) stops cleanly: stopped by
# Ctrl-C (SIGINT to its whole process group, as a terminal sends it) or by
# `spry down`, it exits 0 and leaves no process it started, no pin and no
# pid file; a real failure (spryd killed under it) exits non-zero, cleaned
# up too.  The demo runs with a private pin directory, run directory and
# HTTP port in a private network namespace, without hugepages.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns "$@"
require_bins "$SPRY" "$SPRYD" "$SPRY_OUT"/examples/{upper,reverse,wordcount}
for c in curl jq; do
	command -v $c >/dev/null || tap_skip_all "$c not installed"
done
id nobody >/dev/null 2>&1 || tap_skip_all "no user nobody"
spry_test_env demo

DEMO_SH=$SPRY_SRC/scripts/demo.sh
RUN=$TMP/run
PORT=18097
DEMO=
DESC=()
# the functions run as nobody: they reach the control socket in $RUN
chmod 755 "$TMP"
mkdir -m 755 "$RUN"

spry_test_cleanup_extra() {
	local p
	[ -n "$DEMO" ] && kill_wait "$DEMO"
	for p in "${DESC[@]}"; do kill_wait "$p"; done
}

# descendants PID: every process under PID (children, recursively)
descendants() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

# start_demo: the demo script in its own process group (job control on),
# its signals at their defaults as in a terminal; DEMO its pid, DESC what
# it started, once it says it runs
start_demo() {
	: >"$TMP/demo.log"
	set -m
	OUT=$SPRY_OUT SPRY_PIN_DIR=$PIN SPRY_RUN_DIR=$RUN SPRY_HTTP_PORT=$PORT \
		SPRY_DEMO_HUGEPAGES=0 "$DEMO_SH" >"$TMP/demo.log" 2>&1 &
	DEMO=$!
	set +m
	wait_for 30 grep -q '^demo: running' "$TMP/demo.log" || {
		tap_diag "the demo did not start: $(tail -5 "$TMP/demo.log")"
		return 1
	}
	mapfile -t DESC < <(descendants "$DEMO")
	[ "${#DESC[@]}" -ge 7 ] || { tap_diag "demo runs ${#DESC[@]} processes, want 7"; return 1; }
	[ "$(curl -s --max-time 5 -d 'hello spry' "http://127.0.0.1:$PORT/demo")" != "" ]
}

# stopped_clean WANT_RC: the demo exited with WANT_RC (0 or "non-zero"),
# nothing it started runs, its pins and pid file are gone
stopped_clean() {
	local rc p left=0
	wait_for 20 proc_gone "$DEMO" || { tap_diag "the demo still runs"; return 1; }
	wait "$DEMO"
	rc=$?
	DEMO=
	for p in "${DESC[@]}"; do
		proc_gone "$p" || { left=1; tap_diag "pid $p ($(cat /proc/"$p"/comm)) still runs"; }
	done
	DESC=()
	tap_diag "demo exited with $rc: $(tail -1 "$TMP/demo.log")"
	cat "$TMP/demo.log" >>"$TMP/demo-$1.log"
	if [ "$1" = 0 ]; then
		[ $rc -eq 0 ] || return 1
	else
		[ $rc -ne 0 ] || return 1
	fi
	[ $left -eq 0 ] && [ ! -e "$PIN" ] && [ ! -e "$RUN/demo.pid" ]
}

tap_plan 7

start_demo
tap_ok $? "the demo starts and answers on its private port"
# declared functions: spryd (the demo's child) started every instance
spryd_kids() {
	local s p n=0
	for s in "${DESC[@]}"; do
		[ "$(cat /proc/"$s"/comm 2>/dev/null)" = spryd ] || continue
		for p in $(cat /proc/"$s"/task/*/children); do
			# not the templates and their spares (libspry names them T:)
			case "$(cat /proc/"$p"/comm 2>/dev/null)" in T:*) continue ;; esac
			[ "$(stat -c %U /proc/"$p")" = nobody ] && n=$((n + 1))
		done
	done
	echo $n
}
n=$(spryd_kids)
SPRY_STATE_DIR=$RUN/fns "$SPRY" -P "$PIN" -j fn show chain demo |
	jq -e '[.[] | select(.scale.actual == 2 and .declared.min == 2)] | length == 3' >/dev/null &&
	[ "$n" -eq 6 ]
tap_ok $? "its functions are declared: spryd started 2 instances of each, as nobody ($n)"
kill -INT -- -"$DEMO"
stopped_clean 0
tap_ok $? "Ctrl-C (SIGINT to the process group): exit 0, nothing left"

if start_demo; then
	"$SPRY" down pidfile "$RUN/demo.pid" >"$TMP/down.out" 2>&1
	rc=$?
	tap_ok $rc "spry down pidfile PATH stops it ($(cat "$TMP/down.out"))"
	stopped_clean 0
	tap_ok $? "after spry down: exit 0, nothing left"
else
	tap_ok 1 "spry down pidfile PATH stops it (the demo did not start)"
	tap_ok 1 "after spry down: exit 0, nothing left"
fi

if start_demo; then
	for p in "${DESC[@]}"; do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = spryd ] && kill -KILL "$p"
	done
	stopped_clean non-zero
	tap_ok $? "spryd killed under it: a failure, non-zero exit, nothing left"
else
	tap_ok 1 "spryd killed under it: a failure, non-zero exit, nothing left"
fi
! grep -E 'line [0-9]+: |Error [0-9]+' "$TMP/demo-0.log" &&
	[ "$(grep -c '^demo: stopped' "$TMP/demo-0.log")" = 2 ]
tap_ok $? "both stops cleaned up, no shell job line or make Error line"

tap_finish
