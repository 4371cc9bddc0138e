#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Mailboxes between the processes of an app (issue 12 point 5,
# docs/PROCESS.md "Mailboxes"), with examples/mailbox: send and receive
# (payload byte for byte, the sender's id as the router wrote it), FIFO
# order, poll and timeout, a too small buffer keeping the message, bad
# mailbox, unknown, swapped and deleted receivers (-ESRCH), two apps that
# cannot send to each other, a full mailbox (-EAGAIN at the 65th, nothing
# lost), send-to-all, a process's own thread, a process deleted with
# unread messages giving their buffers back (the pool's free count back to
# where it was), a receiver killed with mails unanswered (its senders
# answered by spryd), the router's counters back at zero, /metrics.
#
# Private network namespace, pin directory, control socket.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

MB=$SPRY_OUT/examples/mailbox
require_bins "$SPRY" "$SPRYD" "$MB"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v curl >/dev/null || tap_skip_all "curl not installed"

spry_test_env mail
export SPRY_STATE_DIR=$TMP/state
PORT=18451
URL=http://127.0.0.1:$PORT

spry_test_cleanup_extra() {
	local p
	[ -n "${MAIL_KEEP_LOG:-}" ] && cp "$TMP/spryd.log" "$MAIL_KEEP_LOG"
	for p in $(pgrep -P "${SPRYD_PID:-0}" 2>/dev/null); do
		[ "$(readlink /proc/$p/exe 2>/dev/null)" = "$MB" ] && kill -KILL "$p" 2>/dev/null
	done
}

# call APP ID FN DATA: the answer of function FN of process ID
call() { curl -s -m 20 --data-binary "$4" "$URL/$1/$2/$3"; }

tap_plan


spry load >/dev/null
spry app add m1 fns whoami,send,sendall,recv,flood,thread exec "$MB" idle 0 create manual >/dev/null &&
	spry app add m2 fns whoami,send,recv exec "$MB" idle 0 create manual >/dev/null
tap_ok $? "apps m1 and m2 added"
SPRY_MAIL_TIMEOUT_MS=3000 start_spryd --http 127.0.0.1:$PORT --start-timeout 3 --stop-timeout 1 -v
wait_for 5 sh -c "'$SPRY' -P '$PIN' process show m1 sock '$SOCK' >/dev/null 2>&1"
tap_ok $? "spryd read the apps"
for i in 1 2 3 4; do spry process create m1 id $i sock "$SOCK" >/dev/null; done
spry process create m2 id 1 sock "$SOCK" >/dev/null
for i in 1 2 3; do call m1 $i whoami x >/dev/null; done
expect_eq "$(call m1 1 whoami x)$(call m1 2 whoami x)" "12" "processes 1 and 2 of m1 active"

# --- send and receive -------------------------------------------------------
expect_eq "$(call m1 1 send '2 0 hello world')" 0 "spry_send 1 -> 2 mailbox 0: accepted (0)"
expect_eq "$(call m1 2 recv '0 0 64')" "1 11 hello world" \
	"spry_recv on 2: the payload byte for byte, from process 1 (the router's word)"
expect_eq "$(call m1 2 recv '0 0 64')" "-110" "poll of an empty mailbox: -ETIMEDOUT"
t0=$(date +%s%N)
r=$(call m1 2 recv '0 300 64')
t1=$(date +%s%N)
[ "$r" = -110 ] && [ $(( (t1 - t0) / 1000000 )) -ge 290 ]
tap_ok $? "recv with a 300 ms timeout: -ETIMEDOUT after it ($(( (t1 - t0) / 1000000 )) ms)"
for w in one two three; do call m1 1 send "2 5 $w" >/dev/null; done
expect_eq "$(call m1 2 recv '5 0 64'),$(call m1 2 recv '5 0 64'),$(call m1 2 recv '5 0 64')" \
	"1 3 one,1 3 two,1 5 three" "a mailbox is FIFO"
call m1 1 send "2 3 0123456789" >/dev/null
expect_eq "$(call m1 2 recv '3 0 4')" "-90" "recv into 4 bytes of a 10-byte message: -EMSGSIZE"
expect_eq "$(call m1 2 recv '3 0 10')" "1 10 0123456789" "... and the message stayed queued"
expect_eq "$(call m1 1 send '2 16 x')" "-22" "mailbox 16: -EINVAL"
expect_eq "$(call m1 2 recv '16 0 4')" "-22" "recv of mailbox 16: -EINVAL"
expect_eq "$(call m1 1 send '2 0 ')" 0 "an empty message is sent"
expect_eq "$(call m1 2 recv '0 0 4')" "1 0 " "... and received empty"
expect_eq "$(call m1 3 send '3 1 me')$(call m1 3 recv '1 0 8')" "03 2 me" "a process mails itself"
