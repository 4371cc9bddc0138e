#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Declared functions (issue 11), the cases test_elastic.sh does not run:
#   - a chain whose second hop is at zero instances (its first hop runs,
#     started by hand): requests are held at the origin and released when
#     the second hop's instance has registered, none answered 503 or lost;
#   - `spry apply` of a file with run: sections on a running spryd: the
#     instances follow each new min/max (started, scaled to zero, stopped
#     when the run: section goes).
# Short windows (spryd --scale-tick etc.) so it runs in seconds.
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

spry_test_env elastic-live
chmod 755 "$TMP"
export SPRY_STATE_DIR=$TMP/state
PORT=18393

# scale CHAIN FN FIELD: spryd's view of a declared function (spry fn show)
scale() {
	spry -j fn show chain "$1" | jq -r --arg f "$2" --arg k "$3" \
		'.[] | select(.name == $f) | .scale[$k] // empty'
}
scale_is() { [ "$(scale "$1" "$2" "$3")" = "$4" ]; }
# instances of spryd running BIN: its children but zombies and the
# templates and their spares (named "T:..." by libspry)
n_children() {
	local n=0 p
	for p in $(pgrep -P "$SPRYD_PID" 2>/dev/null); do
		grep -aq '^State:.*Z' /proc/$p/status 2>/dev/null && continue
		case "$(cat /proc/$p/comm 2>/dev/null)" in T:*) continue ;; esac
		[ "$(readlink /proc/$p/exe 2>/dev/null)" = "$1" ] && n=$((n + 1))
	done
	echo $n
}
not_in_status() {
	jq -e --arg c "$1" --arg f "$2" '[.fns[] | select(.chain == $c and .fn == $f)] | length == 0' \
		"$SPRY_STATE_DIR/status.json" >/dev/null
}
children_are() { [ "$(n_children "$1")" -eq "$2" ]; }

spry_test_cleanup_extra() {
	local p
	for p in $(jq -r '.fns[].pids[].pid' "$SPRY_STATE_DIR/status.json" 2>/dev/null); do
		case "$(readlink /proc/$p/exe 2>/dev/null)" in
		"$UPPER"|"$WHOAMI") kill -KILL "$p" 2>/dev/null ;;
		esac
	done
}

tap_plan

spry load >/dev/null || { tap_ok 1 "spry load"; tap_finish; }
start_spryd --http 127.0.0.1:$PORT --access-log "$TMP/access.log" \
	--scale-tick 0.005 --stable-window 1 --panic-window 0.2 \
	--start-timeout 3 --start-backoff 0.05 --stop-timeout 1 -v ||
	tap_skip_all "spryd did not start: $(tail -3 "$TMP/spryd.log")"

# --- the second hop at zero ------------------------------------------------------
spry chain add two hops upper,whoami deadline 3000 >/dev/null &&
	spry fn declare two whoami exec "$WHOAMI" min 0 max 1 idle 0.3 >/dev/null
tap_ok $? "chain two: upper (started by hand), whoami declared min 0"
start "$UPPER" "$TMP/upper.log" --chain two --fn upper --sock "$SOCK" --quiet
UP=$LAST
wait_for 5 grep -aq "registered two/upper" "$TMP/spryd.log" &&
	wait_for 3 grep -aq 'fn two/whoami declared' "$TMP/spryd.log"
sleep 0.3
[ "$(n_children "$WHOAMI")" -eq 0 ] && scale_is two whoami actual 0
tap_ok $? "the first hop runs, the second is at zero instances"

python3 "$HTTPC" burst $PORT two 20 2 >"$TMP/burst" 2>&1
bad=$(awk -v n=20 '{ if ($2 != 200 || $4 !~ ("^[0-9]+:REQ-" $1 "$")) b++ }
	END { print b + (NR != n) }' "$TMP/burst")
[ "$bad" = 0 ]
tap_ok $? "20 requests while the second hop is at zero: held, then all answered 200 (upper then whoami)" ||
	tap_diag "$(head -5 "$TMP/burst"; grep -a 'two' "$TMP/spryd.log" | tail -5)"
none_held() {
	[ "$(jq '[.fns[] | select(.chain == "two")][0].held' "$SPRY_STATE_DIR/status.json")" = 0 ]
}
grep -aq 'fn two/whoami: scale 0 -> 1 (activation' "$TMP/spryd.log" &&
	grep -aq 'chain two: [0-9]* held requests released' "$TMP/spryd.log" &&
	wait_for 3 none_held
tap_ok $? "the second hop's activation held them and released them when it registered" ||
	tap_diag "$(grep -a 'two' "$TMP/spryd.log" | grep -av registered | tail -5)"

wait_for 5 scale_is two whoami actual 0 && wait_for 3 children_are "$WHOAMI" 0
tap_ok $? "idle: the second hop back to zero, the first still serving" ||
	tap_diag "$(spry fn show chain two)"
out=$(curl -s -m 5 -d again http://127.0.0.1:$PORT/two)
echo "$out" | grep -aq '^[0-9]*:AGAIN$'
tap_ok $? "one more request at zero: held and answered ('$out')"
kill_wait "$UP"

# --- spry apply with run: sections, live ---------------------------------------------
apply_file() {	# MIN MAX: chain ap, upper declared with these bounds
	cat >"$TMP/ap.yaml" <<EOF
chains:
  - name: ap
    hops: [upper]
    deadline-ms: 3000
    run:
      upper:
        exec: $UPPER
        args: [--quiet]
        min: $1
        max: $2
        idle: 0.3
EOF
	spry apply "$TMP/ap.yaml" >/dev/null
}
apply_file 2 3
wait_for 5 scale_is ap upper actual 2 && wait_for 3 children_are "$UPPER" 2
tap_ok $? "spry apply, run: min 2: spryd starts 2 instances ($(n_children "$UPPER"))" ||
	tap_diag "$(spry fn show chain ap; tail -5 "$TMP/spryd.log")"

apply_file 3 3
wait_for 5 scale_is ap upper actual 3 && wait_for 3 children_are "$UPPER" 3
tap_ok $? "min 3 applied: a third instance ($(n_children "$UPPER"))"

apply_file 0 1
wait_for 8 scale_is ap upper actual 0 && wait_for 3 children_are "$UPPER" 0
tap_ok $? "min 0 max 1 applied: scaled down to zero after idle ($(n_children "$UPPER"))" ||
	tap_diag "$(spry fn show chain ap)"
out=$(curl -s -m 5 -d live http://127.0.0.1:$PORT/ap)
[ "$out" = LIVE ] && [ "$(scale ap upper max)" = 1 ]
tap_ok $? "and a request starts it from zero again ('$out', max $(scale ap upper max))"

apply_file 1 2
wait_for 5 scale_is ap upper actual 1 && wait_for 3 children_are "$UPPER" 1
tap_ok $? "min 1 applied: one instance kept ($(n_children "$UPPER"))" ||
	tap_diag "$(spry -j fn show chain ap | jq -c '.[].scale'; grep -a 'ap/upper\|chain ap' "$TMP/spryd.log" | tail -8)"

cat >"$TMP/ap.yaml" <<EOF
chains:
  - name: ap
    hops: [upper]
    deadline-ms: 3000
EOF
spry apply "$TMP/ap.yaml" >/dev/null &&
	wait_for 5 children_are "$UPPER" 0 &&
	wait_for 3 not_in_status ap upper &&
	[ -z "$(scale ap upper actual)" ]
tap_ok $? "the run: section removed: its instances stopped, the function no longer declared" ||
	tap_diag "$(spry fn show chain ap; grep -a 'ap/upper\|chain ap' "$TMP/spryd.log" | tail -5)"

kill -TERM "$SPRYD_PID"
wait_for 8 proc_gone "$SPRYD_PID"
wait "$SPRYD_PID" 2>/dev/null
[ "$(pgrep -fc "^$UPPER --chain ap")" -eq 0 ] && [ "$(pgrep -fc "^$WHOAMI --chain two")" -eq 0 ]
tap_ok $? "spryd stopped cleanly: nothing of ours left"

tap_finish
