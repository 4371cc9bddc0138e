#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Mailboxes between the processes of an app (issue 12 point 5,
# docs/PROCESS.md "Mailboxes"), with examples/mailbox: send and receive
# (payload byte for byte, the sender's id as the router wrote it), FIFO
# order, poll and timeout, a too small buffer keeping the message, bad
# mailbox, unknown, swapped and deleted receivers (-ESRCH), two apps that
# cannot send to each other, a full mailbox (-EAGAIN at the 65th, nothing
# lost), send-to-all, a process's own thread, handlers echoing to each
# other, a process deleted with unread messages giving their buffers back
# (the pool's free count back to where it was), a receiver stopped then
# killed with mails unanswered (its senders answered by spryd), the new
# control message (PROC SHOW of the active processes) exact and fuzzed,
# the router's counters back at zero, /metrics.
#
# Private network namespace, pin directory, control socket.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

MB=$SPRY_OUT/examples/mailbox
require_bins "$SPRY" "$SPRYD" "$MB"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v curl >/dev/null || tap_skip_all "curl not installed"
command -v python3 >/dev/null || tap_skip_all "python3 not installed"

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
spry app add m1 fns whoami,send,sendall,recv,flood,thread,ping,echo,exchange exec "$MB" idle 0 create manual >/dev/null &&
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

# --- who can be reached -----------------------------------------------------
expect_eq "$(call m1 1 send '99 0 x')" "-3" "an unknown process: -ESRCH"
expect_eq "$(call m1 1 send '4 0 x')" "-3" "an allocated process that never ran: -ESRCH (not live)"
expect_eq "$(call m1 1 send '0 0 x')" "-3" "process id 0: -ESRCH"
call m2 1 whoami x >/dev/null
expect_eq "$(call m2 1 send '3 0 x')" "-3" \
	"app m2's process 1 sends to id 3, which only m1 has: -ESRCH (ids are per app)"
expect_eq "$(call m1 3 send '1 0 from-m1')" 0 "m1's 3 sends to id 1: m1's process 1 gets it"
expect_eq "$(call m2 1 recv '0 0 64')" "-110" "... and m2's process 1 got nothing"
expect_eq "$(call m1 1 recv '0 0 64')" "3 7 from-m1" "... m1's process 1 did"
expect_cmd -o 'process 3 swapped' "process swap m1 3" -- spry process swap m1 id 3 sock "$SOCK"
expect_eq "$(call m1 1 send '3 0 x')" "-3" "a swapped process: -ESRCH (not live)"

# --- bounds -----------------------------------------------------------------
poolfree() { curl -s "$URL/metrics" | sed -n 's/^spry_pool_buffers{chain="m1",state="free"} //p'; }
free0=$(poolfree)
expect_eq "$(call m1 1 flood '2 7 70')" "64 64 -11" \
	"70 mails into one mailbox: 64 accepted, the 65th and after -EAGAIN (mailbox full)"
expect_eq "$(call m1 2 recv '7 0 8' | cut -d' ' -f1-2)" "1 8" "the first of them is read"
expect_eq "$(call m1 1 flood '2 7 2')" "1 1 -11" "one more fits, then full again"
n=0
while r=$(call m1 2 recv '7 0 8') && [ "${r%% *}" = 1 ]; do n=$((n + 1)); done
expect_eq "$n" 64 "64 read back, nothing lost or doubled"
expect_eq "$(poolfree)" "$free0" "every read mail's buffer back in the pool"
# unread mails of a deleted process
expect_eq "$(call m1 1 flood '2 4 30')" "30 0 0" "30 mails to process 2, not read"
[ "$(poolfree)" -le $((free0 - 30)) ]
tap_ok $? "their buffers are in use ($(poolfree) free of $free0)"
expect_cmd -o 'process 2 deleted' "process del m1 2 with 30 unread mails" -- \
	spry process del m1 id 2 sock "$SOCK"
wait_for 5 sh -c "[ \"\$(curl -s $URL/metrics | sed -n 's/^spry_pool_buffers{chain=\"m1\",state=\"free\"} //p')\" = $free0 ]"
tap_ok $? "a process deleted with unread mails: their buffers back in the pool ($(poolfree) free)"
expect_eq "$(call m1 1 send '2 0 x')" "-3" "a deleted process: -ESRCH"
M=$(curl -s "$URL/metrics")
printf '%s\n' "$M" | grep -q '^spry_mail_reclaimed_total 30$' &&
	printf '%s\n' "$M" | grep -q '^spry_router_verdicts_total{verdict="mail_full"} 7$'
tap_ok $? "/metrics: spry_mail_reclaimed_total 30, the 7 refusals as mail_full" ||
	tap_diag "$(printf '%s\n' "$M" | grep mail)"

# --- send to all, a process's own thread ------------------------------------
spry process create m1 id 2 sock "$SOCK" >/dev/null
for i in 2 3 4; do call m1 $i whoami x >/dev/null; done
expect_eq "$(call m1 1 sendall '6 to-all')" "3 0" "send to all: delivered to the 3 other live processes"
expect_eq "$(call m1 2 recv '6 0 64')|$(call m1 3 recv '6 0 64')|$(call m1 4 recv '6 0 64')|$(call m1 1 recv '6 0 64')" \
	"1 6 to-all|1 6 to-all|1 6 to-all|-110" "each got it once, the sender none"
expect_eq "$(call m1 4 thread '1 8 9')" started "process 4 starts a thread echoing mailbox 8 to 9"
r=$(call m1 1 ping '4 8 9 200 100')
set -- $r
[ $# = 3 ] && [ "$1" -gt 0 ] && [ "$2" -ge "$1" ]
tap_ok $? "200 round trips through process 4's own thread: p50 $(( ${1:-0} / 1000 )) us p99 $(( ${2:-0} / 1000 )) us" ||
	tap_diag "$r"
# the thread waits in spry_recv(-1) on a condition: asleep, no CPU
P4=$(spry -j process show m1 id 4 sock "$SOCK" | jq -r '.list[0].pid')
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
c0=$(cpu "$P4"); sleep 1; c1=$(cpu "$P4")
[ $((c1 - c0)) -le 5 ]
tap_ok $? "a thread waiting for mail uses no CPU ($((c1 - c0)) ticks in 1 s)"
# a handler waiting in spry_recv() while the mail it waits for came in the
# same read as its request: mails of a batch are taken first
ok=0
for r in 1 2 3 4 5 6; do
	curl -s -m 20 -d '8 9 200' "$URL/m1/2/echo" >"$TMP/echo.out" &
	e=$!
	out=$(call m1 1 ping '2 8 9 200 64')
	wait $e
	set -- $out
	[ $# = 3 ] && [ "$(cat "$TMP/echo.out")" = 200 ] && ok=$((ok + 1))
done
expect_eq "$ok" 6 "6 rounds of 200 round trips between two handlers (echo started with ping)"

# K-Means' exchange: every process sends to all and reads one mail from each
# other, 30 rounds, the four at once (process 4's thread reads mailbox 8,
# not 10)
for i in 1 2 3 4; do
	curl -s -m 30 -d '10 30' "$URL/m1/$i/exchange" >"$TMP/ex.$i" &
	eval "ex$i=\$!"
done
wait $ex1 $ex2 $ex3 $ex4
expect_eq "$(cat "$TMP/ex.1") $(cat "$TMP/ex.2") $(cat "$TMP/ex.3") $(cat "$TMP/ex.4")" \
	"30 90 30 90 30 90 30 90" \
	"4 processes exchanging through send to all, 30 rounds: each got 90 mails, every sender's in order"

# --- too big, and the pool exhausted -----------------------------------------
expect_eq "$(call m1 1 flood '4 1 1 70000')" "0 0 -90" \
	"a mail larger than the pool's largest buffer (64 KiB): -EMSGSIZE"
expect_eq "$(call m1 1 flood '4 1 64 60000')" "64 0 0" "64 mails of 60000 bytes: every large buffer in use"
expect_eq "$(call m1 1 flood '4 2 1 60000')" "0 0 -105" "one more: no pool buffer, -ENOBUFS"
n=0
for i in $(seq 64); do
	[ "$(call m1 4 recv '1 0 65536' | head -c 8)" = "1 60000 " ] && n=$((n + 1))
done
expect_eq "$n" 64 "the 64 read back whole"
expect_eq "$(call m1 1 flood '4 2 1 60000')" "1 0 0" "and a buffer is free again"
expect_eq "$(call m1 4 recv '2 0 65536' | head -c 8)" "1 60000 " "... that one read too"

# --- a receiver that never answers, then dies --------------------------------
pid_of() { pshow_j | jq -r --argjson i "$1" '.list[] | select(.id == $i) | .pid'; }
pshow_j() { spry -j process show m1 sock "$SOCK"; }
P3=$(pid_of 3)
kill -STOP "$P3" && STOPPED+=("$P3")
t0=$(date +%s%N)
expect_eq "$(call m1 1 send '3 0 to-a-stopped-one')" "-110" \
	"a receiver that does not answer (SIGSTOP): -ETIMEDOUT at the deadline"
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
[ $ms -ge 2900 ] && [ $ms -lt 8000 ]
tap_ok $? "... after the 3 s deadline ($ms ms)"
mail_of() { spry -j fn show chain m1 | jq -r --argjson i "$1" \
	'[.[].instances[]? | select(.mail.process == $i) | .mail | "\(.out) \(.in)"][0]'; }
expect_eq "$(mail_of 1) $(mail_of 3)" "1 0 0 1" \
	"the router counts it: 1 out at the sender, 1 in at the receiver (spry fn show)"
kill -KILL "$P3"
kill -CONT "$P3" 2>/dev/null
wait_for 5 sh -c "'$SPRY' -P '$PIN' -j process show m1 id 3 sock '$SOCK' | grep -q allocated"
tap_ok $? "the receiver killed: its process allocated again"
wait_for 5 sh -c "[ \"\$('$SPRY' -P '$PIN' -j fn show chain m1 | jq -r '[.[].instances[]? | select(.mail.process == 1) | .mail.out][0]')\" = 0 ]"
tap_ok $? "spryd answered for it: the sender's count back to 0 (out $(mail_of 1))"
curl -s "$URL/metrics" | grep -q '^spry_mail_given_back_total 1$'
tap_ok $? "/metrics: spry_mail_given_back_total 1"
expect_eq "$(call m1 1 flood '4 2 64')" "64 0 0" "the sender's window is whole: 64 more mails accepted"
n=0
while r=$(call m1 4 recv '2 0 8') && [ "${r%% *}" = 1 ]; do n=$((n + 1)); done
expect_eq "$n" 64 "... and read"

# --- the new control message: PROC SHOW of the active processes -------------
# (spry_send_all's question) exact cases, then 1,000 random PROC datagrams
# around it: each answered with a valid header, spryd carries on.
python3 - "$SOCK" <<'PY' 2>"$TMP/proc_fuzz.err"
import random, socket, struct, sys
MAGIC, ABI, PROC, PROC_ACK = 0x53505259, 7, 9, 10
def call(body, typ=PROC):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.settimeout(5)
    s.send(struct.pack("=IHHIi", MAGIC, typ, ABI, len(body), 0) + body)
    try:
        r = s.recv(300000)
    except (ConnectionResetError, socket.timeout):
        return None, b""
    finally:
        s.close()
    if len(r) < 16:
        return None, b""
    h = struct.unpack("=IHHIi", r[:16])
    return h, r[16:]
def proc(app, pid, op, flags):
    return struct.pack("=32sQII", app, pid, op, flags)
bad = 0
h, b = call(proc(b"m1", 0, 3, 1))
ids = []
if h and h[4] == 0 and len(b) >= 112:
    # struct spry_ctl_proc_app (112 bytes: n[6], max, n_info, ...), then infos
    n = struct.unpack_from("=I", b, 4 * 6 + 4)[0]
    for i in range(n):
        pid, state = struct.unpack_from("=QI", b, 112 + 48 * i)
        ids.append((pid, state))
if not ids or any(st != 2 for _, st in ids) or sorted(p for p, _ in ids) != [1, 2, 4]:
    print("SHOW active: %r %r" % (h, ids), file=sys.stderr); bad += 1
for name, body, want in [
    ("active with an id", proc(b"m1", 1, 3, 1), -22),
    ("active flag on swap", proc(b"m1", 1, 4, 1), -22),
    ("active flag on create", proc(b"m1", 0, 1, 1), -22),
    ("unknown flag", proc(b"m1", 0, 3, 2), -22),
    ("all flags", proc(b"m1", 0, 3, 0xffffffff), -22),
    ("active of an unknown app", proc(b"zz", 0, 3, 1), -19),
]:
    h, _ = call(body)
    if not h or h[1] != PROC_ACK or h[4] != want:
        print("%s: %r (want %d)" % (name, h, want), file=sys.stderr); bad += 1
rnd = random.Random(5)
for i in range(1000):
    app = rnd.choice([b"m1", b"m2", b"zz", b"", b"m1\x00junk", bytes(rnd.randrange(256) for _ in range(32))])
    pid = rnd.choice([0, 1, 2, 3, 99, (1 << 63) - 1, 1 << 63, rnd.getrandbits(64)])
    op = rnd.choice([0, 1, 3, 3, 3, 4, 5, 6, rnd.getrandbits(32)])
    if op in (1, 2, 4, 5):
        op = 3  # never change the processes: SHOW, or refused ops
    flags = rnd.choice([0, 1, 1, 2, 3, rnd.getrandbits(32)])
    body = proc(app[:32].ljust(32, b"\x00") if len(app) < 32 else app[:32], pid, op, flags)
    cut = rnd.choice([len(body)] * 6 + [0, 8, 40, 47, 49])
    body = body[:cut] + (b"x" if cut == 49 else b"")
    h, _ = call(body)
    if not h or h[0] != MAGIC or h[1] != PROC_ACK:
        print("random %d: no valid answer to %r" % (i, body), file=sys.stderr); bad += 1
        if bad > 5:
            break
sys.exit(bad)
PY
tap_ok $? "PROC SHOW of the active processes: 1, 2, 4 (3 is allocated); flags refused elsewhere; 1,000 random PROC datagrams each answered" ||
	tap_diag "$(head -5 "$TMP/proc_fuzz.err")"
expect_eq "$(call m1 1 sendall '6 still')" "2 0" "spryd carries on: send to all (2 and 4) works"
for i in 2 4; do call m1 $i recv '6 0 64' >/dev/null; done

# --- at the end: the router's mail counts all back at 0 ----------------------
expect_eq "$(spry -j fn show chain m1 | jq -c '[.[].instances[]? | select(.mail) | .mail.out + .mail.in] | add')" 0 \
	"every live process: nothing out, nothing in"
