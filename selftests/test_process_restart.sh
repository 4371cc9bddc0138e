#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Cloud processes across a restart of spryd (docs/PROCESS.md "Restarts",
# docs/STATE.md's durability contract): the process table on disk.
# After a kill -9 of spryd: every id keeps its app and state, a running OS
# process is adopted (the same pid, no duplicate, requests routed to it), a
# swapped process stays swapped and wakes, a deleted id stays 404, the ids
# counter does not go back, and a process whose OS process died meanwhile
# is restarted with its state by its next request (never another's: the
# router's stale entries are gone).  After a SIGTERM: the same, every OS
# process stopped.  A table naming an OS process that was being swapped,
# gone when spryd is back: swapped at load.  A simulated reboot (another boot id, the in-memory
# stores removed): a swapped state comes back from its swap file, a pid of
# another boot is never adopted.  A corrupt table: a clear error, the file
# kept aside, spryd starts, the other apps lose nothing.  A process whose
# swap file was removed, damaged or replaced by another app's: its
# request gets 500 naming it and the reason, `spry process show` says
# lost, /metrics counts it, the same after a kill -9 of spryd; put back,
# it wakes with its state.  `spry app del` removes the table.
#
# Private network namespace, pin directory, state directory, control socket.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

CTR=$SPRY_OUT/examples/counter
require_bins "$SPRY" "$SPRYD" "$CTR"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v curl >/dev/null || tap_skip_all "curl not installed"
[ -r /proc/sys/kernel/random/boot_id ] || tap_skip_all "no boot id"

spry_test_env procrestart
export SPRY_STATE_DIR=$TMP/state
PORT=18437
URL=http://127.0.0.1:$PORT
TABLES=$SPRY_STATE_DIR/apps/processes
STORES=$SPRY_STATE_DIR/procs
SWAP=$TMP/swap

# The OS processes of this test's apps (spryd's environment names this
# test's state directory: an exec'd process inherits it, a process cloned
# from its app's template has its template's, spryd's too), whichever
# spryd started them: adopted ones are not the current spryd's children.
# Templates and their spares included (named T:...).
ours() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$CTR" ] || continue
		tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "SPRY_STATE_DIR=$SPRY_STATE_DIR" &&
			echo "${p#/proc/}"
	done
}
# os_of APP ID: the pids of the OS processes of process ID of APP: its
# app's (argv), not a template (comm T:...), and this process: in its
# environment (exec'd) or with its state store mapped (cloned: its
# environment is its template's; the counter's handlers map the store,
# whose mapping names the temporary file it was made as: its inode)
os_of() {
	local p ino
	ino=$(stat -c %i "$STORES/$1/$2" 2>/dev/null) || ino=none
	for p in $(ours); do
		case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
		*" --chain $1 --fn proc"*) ;;
		*) continue ;;
		esac
		case "$(cat "/proc/$p/comm" 2>/dev/null)" in T:*) continue ;; esac
		{ tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SPRY_PROCESS_ID=$2" &&
			tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SPRY_STATE_APP=$1"; } ||
			awk -v i="$ino" -v d="$STORES/$1/" '$5 == i && index($6, d) == 1 { f = 1 } END { exit !f }' \
				"/proc/$p/maps" 2>/dev/null ||
			continue
		echo "$p"
	done
}
spry_test_cleanup_extra() {
	local p
	kill_wait $(ours)
}

post() { curl -s -m 10 -d "${2:-x}" "$URL/$1"; }
code() { curl -s -m 10 -o /dev/null -w '%{http_code}' -d x "$URL/$1"; }
pshow() { spry -j process show "$@" sock "$SOCK"; }
state_of() { pshow "$1" id "$2" | jq -r '.list[0].state'; }
pid_of() { pshow "$1" id "$2" | jq -r '.list[0].pid'; }
ids_of() { pshow "$1" | jq -c '[.list[].id]'; }
is_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }

up() {
	start_spryd --http 127.0.0.1:$PORT --start-timeout 3 --stop-timeout "$SPRYD_STOP_TIMEOUT" -v
	wait_for 5 sh -c "'$SPRY' -P '$PIN' process show r1 sock '$SOCK' >/dev/null 2>&1"
}
# kill9: spryd killed; its log kept apart
kill9() {
	kill -KILL "$SPRYD_PID"
	wait "$SPRYD_PID" 2>/dev/null
	cat "$TMP/spryd.log" >>"$TMP/spryd.all.log"
}
stop() {
	term_all "$SPRYD_PID"
	local rc=$?
	cat "$TMP/spryd.log" >>"$TMP/spryd.all.log"
	return $rc
}
# set_boot APP ID: the table of APP as if written in boot ID
set_boot() {
	jq --arg b "$2" '.boot = $b' "$TABLES/$1.json" >"$TMP/t.json" &&
		cat "$TMP/t.json" >"$TABLES/$1.json"
}

tap_plan

spry load >/dev/null
spry app add r1 fns whoami,incr exec "$CTR" max 64 idle 0 create manual swap-dir "$SWAP" >/dev/null &&
	spry app add r2 fns whoami,incr exec "$CTR" idle 0 >/dev/null
tap_ok $? "apps r1 (manual, swap directory) and r2 (create auto) added"
up
tap_ok $? "spryd started"

for i in 1 2 3 4; do spry process create r1 id $i sock "$SOCK" >/dev/null; done
expect_eq "$(post r1/1/incr abc) $(post r1/2/incr xx) $(post r1/3/incr y) $(post r1/4/whoami)" \
	"1 3 2 2 3 1 4" "r1's processes 1..4 answer, counters in their states"
spry process swap r1 id 2 sock "$SOCK" >/dev/null &&
	spry process del r1 id 3 sock "$SOCK" >/dev/null
tap_ok $? "process 2 swapped, process 3 deleted"
expect_eq "$(post r2/whoami)" 1 "r2: a request without id creates process 1"
expect_cmd -o '^app r2: process 2 allocated' "r2: process create without id picks 2" -- \
	spry process create r2 sock "$SOCK"
spry process del r2 id 2 sock "$SOCK" >/dev/null
P1=$(pid_of r1 1)
J=$(jq -sc '[.[] | select(.del == 3)] | length' "$TABLES/r1.json.log") &&
	K=$(jq -sc "[.[] | select(.set.id == 1 and .set.pid == $P1)] | length > 0" "$TABLES/r1.json.log")
expect_eq "$J $K" "1 true" "r1's journal: a line for the delete of 3, one for process 1's pid (written before the answers)"
[ "$(stat -c %a "$TABLES/r1.json")" = 600 ] && [ "$(stat -c %a "$TABLES/r1.json.log")" = 600 ]
tap_ok $? "the table and its journal are root's only (0600)"

# --- kill -9 of spryd --------------------------------------------------------
kill9
gone "$P1"
expect_eq $? 1 "spryd killed: process 1's OS process still runs"
up
wait_for 6 is_state r1 1 active
tap_ok $? "the next spryd: process 1 active again (it re-registered)"
expect_eq "$(pid_of r1 1) $(os_of r1 1 | wc -l)" "$P1 1" \
	"adopted: the same OS process (pid $P1), no duplicate started"
grep -q "app r1: process 1: adopted its OS process (pid $P1)" "$TMP/spryd.log"
tap_ok $? "spryd's log says it adopted it"
expect_eq "$(post r1/1/incr a)" "1 4" "requests reach the adopted process: its counter goes on (3 + 1)"
expect_eq "$(state_of r1 2)" swapped "process 2 still swapped"
[ -s "$SWAP/2.swap" ]
tap_ok $? "with its swap file"
expect_eq "$(post r1/2/incr z)" "2 3" "a request wakes it with its state (2 + 1)"
expect_eq "$(code r1/3/whoami)" 404 "deleted process 3 stays deleted: 404"
expect_eq "$(ids_of r1)" "[1,2,4]" "r1 keeps exactly its processes 1, 2, 4"
expect_eq "$(post r1/4/whoami)" 4 "process 4 (allocated) starts on its request"
expect_cmd -o '^app r2: process 3 allocated' "r2's ids counter did not go back: the next id is 3, not the deleted 2" -- \
	spry process create r2 sock "$SOCK"
expect_eq "$(code r2/2/whoami)" 404 "r2's deleted process 2: 404"
expect_eq "$(code r2/4/whoami)" 404 "r1's process 4 is not r2's: 404"

# --- kill -9 of spryd, then of a process's OS process while no spryd runs ----
P1=$(pid_of r1 1) P4=$(pid_of r1 4)
kill9
kill -KILL "$P1"
wait_for 5 gone "$P1"
up
wait_for 6 is_state r1 4 active
tap_ok $? "process 4 adopted again"
expect_eq "$(post r1/1/whoami)" 1 \
	"process 1, whose OS process died while no spryd ran: its request reaches it (restarted), no other"
expect_eq "$(post r1/1/incr b)" "1 5" "restarted with its state (4 + 1)"
expect_eq "$(pid_of r1 4)" "$P4" "process 4: still its OS process $P4"

# --- SIGTERM of spryd --------------------------------------------------------
P1=$(pid_of r1 1)
stop
tap_ok $? "spryd stops cleanly"
wait_for 5 gone "$P1" && [ -z "$(ours)" ]
tap_ok $? "its processes' OS processes are stopped"
json_eq "$(cat "$TABLES/r1.json")" '(.processes | sort_by(.id)) as $p | [.app, [$p[].id], [$p[].state], [$p[].pid]]' \
	'["r1",[1,2,4],["allocated","allocated","allocated"],[0,0,0]]' \
	"the table written whole at the stop: ids 1, 2, 4, no OS process"
expect_eq "$(stat -c %s "$TABLES/r1.json.log")" 0 "and its journal emptied"
up
expect_eq "$(state_of r1 1) $(state_of r1 2) $(ids_of r1)" "allocated allocated [1,2,4]" \
	"after a clean stop: processes 1, 2, 4 allocated (no OS process)"
expect_eq "$(post r1/1/incr c)" "1 6" "process 1 restarted on its request with its state (5 + 1)"
spry process swap r1 id 2 sock "$SOCK" >/dev/null
expect_eq "$(state_of r1 2)" swapped "process 2 swapped again"

# --- an OS process being swapped when spryd died, gone when it is back -----
spry process create r1 id 5 sock "$SOCK" >/dev/null
expect_eq "$(post r1/5/incr a)" "5 1" "process 5 created, its counter 1"
stop
sleep 0 & DEAD=$!
wait "$DEAD"
jq --argjson p "$DEAD" '(.processes[] | select(.id == 5)) |= (.pid = $p | .swap = true)' \
	"$TABLES/r1.json" >"$TMP/t.json" && cat "$TMP/t.json" >"$TABLES/r1.json"
up
expect_eq "$(state_of r1 5)" swapped \
	"a table naming process 5's OS process as being swapped, that process gone: swapped at load"
[ -s "$SWAP/5.swap" ] && grep -q "app r1: 4 processes from its table (0 OS processes adopted, 1 swapped now)" \
	"$TMP/spryd.log"
tap_ok $? "its swap file written by the new spryd, said in its log"
expect_eq "$(post r1/5/incr b)" "5 2" "woken by its request with its state (1 + 1)"
spry process del r1 id 5 sock "$SOCK" >/dev/null

# --- a reboot (simulated) ----------------------------------------------------
# what is on disk stays (the tables here, the swap files); the stores in
# memory (tmpfs: /dev/shm, hugetlbfs) are gone, and so is every OS process.
spry process swap r1 id 1 sock "$SOCK" >/dev/null &&
	expect_eq "$(post r1/1/incr dd)" "1 8" "process 1: swapped at 6, woken, then 8 in memory only"
P1=$(pid_of r1 1)
stop
rm -rf "$STORES"/r1/* "$STORES"/r2/*
set_boot r1 00000000-0000-0000-0000-000000000000 &&
	set_boot r2 00000000-0000-0000-0000-000000000000
up
grep -q "app r1: process table of another boot (00000000-0000-0000-0000-000000000000)" "$TMP/spryd.log"
tap_ok $? "spryd's log: a table of another boot, what it means"
expect_eq "$(ids_of r1) $(state_of r1 2)" "[1,2,4] swapped" "after the reboot: r1's ids, process 2 swapped"
expect_eq "$(post r1/1/incr e)" "1 7" "process 1: its state as of its last swap out (6 + 1; the 8 was in memory only)"
expect_eq "$(post r1/2/incr e)" "2 4" "process 2: woken from its swap file (3 + 1)"
expect_eq "$(post r1/4/incr e)" "4 1" "process 4, never swapped: its state is gone (0 + 1)"
expect_eq "$(code r1/3/whoami)" 404 "process 3 still 404"

# a pid written in another boot is never adopted (it may be anything now)
P1=$(pid_of r1 1)
kill9
set_boot r1 00000000-0000-0000-0000-000000000001
up
wait_for 6 gone "$P1"
tap_ok $? "a pid of another boot not adopted: its process, refused at re-registration, leaves"
! grep -q "adopted its OS process (pid $P1)" "$TMP/spryd.log"
tap_ok $? "and spryd did not adopt it"
expect_eq "$(post r1/1/incr f)" "1 8" "process 1 restarted on its request, its store kept (7 + 1)"
expect_num "$(pid_of r1 1)" -ne "$P1" "in a new OS process"

# --- a torn journal line, a corrupt table -----------------------------------
stop
printf '{"del": 1, "next-id": 0' >>"$TABLES/r1.json.log"
up
grep -q "app r1: the last line of its table's journal was cut short" "$TMP/spryd.log"
tap_ok $? "a last journal line cut short (a write never answered): ignored, said in the log"
expect_eq "$(ids_of r1)" "[1,2,4]" "and nothing else lost"
stop
printf '{"app": "r2", "next-id": 3, "processes": [{"id": "x", "state": "allocated"}]}\n' \
	>"$TABLES/r2.json"
up
grep -q "app r2: process table unreadable: $TABLES/r2.json: processes\[0\]: missing or bad 'id'" \
	"$TMP/spryd.log"
tap_ok $? "a corrupt table: spryd starts, its log names the file and the fault"
[ -f "$TABLES/r2.json.bad" ] && grep -q "kept as $TABLES/r2.json.bad" "$TMP/spryd.log"
tap_ok $? "the corrupt table is kept aside (r2.json.bad), not overwritten"
expect_eq "$(ids_of r1) $(post r1/1/incr g)" "[1,2,4] 1 9" "r1 loses nothing (another app's table was bad)"
expect_eq "$(ids_of r2)" "[]" "r2 starts with no process"
printf 'not json' >"$TABLES/r2.json"
stop
up
grep -q "app r2: process table unreadable: $TABLES/r2.json: line 1:" "$TMP/spryd.log"
tap_ok $? "a table that is not JSON: the same, with the line"
expect_eq "$(post r2/whoami)" 1 "r2 works: a request creates its process 1"

# --- a swap file lost behind spryd's back ------------------------------------
# A process that has a swap file starts without a size (SPRY_STATE_SIZE=0):
# its state comes from its store or that file, never a new empty store.
lost_body() { curl -s -m 10 -d x -w ' %{http_code}' "$URL/$1"; }
spry process create r1 id 10 sock "$SOCK" >/dev/null &&
	spry process create r1 id 11 sock "$SOCK" >/dev/null &&
	spry process create r1 id 12 sock "$SOCK" >/dev/null
expect_eq "$(post r1/10/incr ab) $(post r1/11/incr ab) $(post r1/12/incr ab)" "10 2 11 2 12 2" \
	"processes 10, 11, 12 created, counters 2"
for i in 10 11 12; do spry process swap r1 id $i sock "$SOCK" >/dev/null; done
[ -s "$SWAP/10.swap" ] && [ -s "$SWAP/11.swap" ] && [ -s "$SWAP/12.swap" ]
tap_ok $? "swapped: their swap files are there"
json_eq "$(tail -n 20 "$TABLES/r1.json.log" | jq -sc '[.[] | select(.set.id == 10)] | last | .set["swap-file"]')" \
	. true "the journal says process 10 has a swap file"
cp "$SWAP/10.swap" "$TMP/10.swap.saved"
rm "$SWAP/10.swap"
B=$(lost_body r1/10/incr)
case $B in
*"process 10 of app r1: its swap file is missing"*"its state is lost"*" 500") true ;;
*) false ;;
esac
tap_ok $? "its swap file removed: the request that wakes it gets 500, the process and the reason" ||
	tap_diag "got: $B"
[ ! -e "$STORES/r1/10" ]
tap_ok $? "and no empty store was made for it"
json_eq "$(pshow r1 id 10)" '[.list[0].state, .list[0].lost, .processes.lost, .transitions.lost]' \
	'["lost","swap file missing",1,1]' "spry process show: lost (swap file missing), counted"
M=$(curl -s "$URL/metrics")
printf '%s\n' "$M" | grep -q '^spry_app_processes{app="r1",state="lost"} 1$' &&
	printf '%s\n' "$M" | grep -q '^spry_app_process_transitions_total{app="r1",transition="lost"} 1$'
tap_ok $? "/metrics: the lost process and its transition"
expect_cmd -s '!0' -e 'process 10: lost: swap file missing: its state is lost' \
	"spry process wake says the same" -- spry process wake r1 id 10 sock "$SOCK"
expect_cmd -s '!0' -e "process 10: its state is lost" "spry chain invoke says the same" -- \
	spry chain invoke r1 fn incr process 10 data x sock "$SOCK"
expect_eq "$(post r1/1/incr a)" "1 10" "another process is unaffected"
grep -q "app r1: process 10: its swap file is missing (.*): its state is lost" "$TMP/spryd.log"
tap_ok $? "spryd's log says what was lost and why"

kill9
up
B=$(lost_body r1/10/incr)
case $B in *"process 10 of app r1: its swap file is missing"*" 500") true ;; *) false ;; esac
tap_ok $? "after a kill -9 of spryd: the same error (spryd knows process 10 had a swap file)" ||
	tap_diag "got: $B"
expect_eq "$(state_of r1 10)" lost "and it shows lost"
cp "$TMP/10.swap.saved" "$SWAP/10.swap"
expect_eq "$(post r1/10/incr a)" "10 3" "its swap file put back: woken with its state (2 + 1)"

# damaged: bytes of its header flipped
printf '\xff\xfe\xfd\xfc' | dd of="$SWAP/11.swap" bs=1 seek=24 conv=notrunc status=none
B=$(lost_body r1/11/incr)
case $B in *"process 11 of app r1: its swap file is damaged"*" 500") true ;; *) false ;; esac
tap_ok $? "a damaged swap file: 500, damaged" || tap_diag "got: $B"
expect_eq "$(pshow r1 id 11 | jq -r '.list[0].lost')" "swap file damaged" "shown as damaged"

# another app's swap file copied in
spry app add r3 fns whoami,incr exec "$CTR" idle 0 create manual swap-dir "$TMP/swap3" >/dev/null
wait_for 5 sh -c "'$SPRY' -P '$PIN' process create r3 id 12 sock '$SOCK' >/dev/null 2>&1"
expect_eq "$(post r3/12/incr abcdef)" "12 6" "app r3's process 12: counter 6"
spry process swap r3 id 12 sock "$SOCK" >/dev/null
cp "$TMP/swap3/12.swap" "$SWAP/12.swap"
B=$(lost_body r1/12/incr)
case $B in *"process 12 of app r1: its swap file is another app's"*" 500") true ;; *) false ;; esac
tap_ok $? "another app's swap file in its place: 500, never r3's state" || tap_diag "got: $B"

expect_cmd -o 'process 11 deleted' "a lost process can be deleted" -- \
	spry process del r1 id 11 sock "$SOCK"
expect_eq "$(code r1/11/incr)" 404 "and is then 404"
[ ! -e "$SWAP/11.swap" ]
tap_ok $? "its damaged swap file removed with it"
spry process create r1 id 13 sock "$SOCK" >/dev/null
expect_eq "$(post r1/13/incr abc)" "13 3" "a process that never swapped starts with a new store as before"

# a table of an older spryd (no "swap-file"): derived from the file being there
stop
jq '.processes[] |= del(.["swap-file"])' "$TABLES/r1.json" >"$TMP/t.json" &&
	cat "$TMP/t.json" >"$TABLES/r1.json"
up
grep -q "app r1: [0-9]* processes without 'swap-file' (a table of an older spryd)" "$TMP/spryd.log"
tap_ok $? "an older table without 'swap-file': read, said in spryd's log"
rm -f "$STORES/r1/10" "$SWAP/10.swap"
expect_eq "$(code r1/10/incr)" 500 \
	"its swap file was there at load: known, so losing it and its store is an error, not an empty state"
spry process del r1 id 10 sock "$SOCK" >/dev/null && spry process del r1 id 12 sock "$SOCK" >/dev/null &&
	spry process del r1 id 13 sock "$SOCK" >/dev/null && spry app del r3 >/dev/null
tap_ok $? "processes 10, 12, 13 and app r3 deleted"

# --- the table goes with its app ----------------------------------------------
spry app del r2 >/dev/null
wait_for 5 sh -c "[ ! -e '$TABLES/r2.json' ]"
tap_ok $? "spry app del (spryd running): the app's table is removed"
stop
spry app del r1 >/dev/null && [ ! -e "$TABLES/r1.json" ]
tap_ok $? "spry app del (no spryd): the app's table is removed"
spry app add r1 fns whoami,incr exec "$CTR" create manual >/dev/null
up
expect_eq "$(ids_of r1) $(code r1/1/whoami)" "[] 404" "an app added again under the name: none of the old processes"
stop
tap_ok $? "spryd stops cleanly"
tap_finish
