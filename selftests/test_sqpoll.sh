#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spryd --front uring --sqpoll CPU|any: the HTTP front's second thread,
# the ring's kernel submission thread (docs/DESIGN.md, "Front threads").
# The option is refused without --front uring and with a bad value; with
# --sqpoll CPU (the first CPU this test may use) spryd has the thread
# (iou-sqp-PID) on that CPU only and /metrics says engine uring, 2
# threads; POSTs are answered, 64 of them pipelined
# on one connection in order; at rest the thread sleeps (its CPU time does
# not grow) and the next request wakes it; every pool buffer is free
# after; SIGTERM: spryd exits 0; a CPU the machine does not have: a clear
# log line, spryd exits non-zero.  The rest
# of the HTTP front under --sqpoll: run_tests.sh -f uring-sqpoll (make
# check runs test_gateway and test_http_hostile so).
#
# Private network namespace, pin directory, control socket and temporary
# directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

require_bins "$SPRY" "$SPRYD" "$SPRY_OUT"/examples/{upper,reverse} "$SPRY_HELPERS/e2e_client"
for c in curl python3; do
	command -v $c >/dev/null || tap_skip_all "$c not installed"
done

spry_test_env sqpoll
PORT=18095
URL=http://127.0.0.1:$PORT

c() { curl -s --max-time 10 "$@"; }

# sq_thread: the ring thread's task directory under spryd's
sq_thread() {
	local t
	for t in /proc/"$SPRYD_PID"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "iou-sqp-$SPRYD_PID" ] && { echo "$t"; return 0; }
	done
	return 1
}
# sq_ns: nanoseconds the ring thread ran so far
sq_ns() { awk '{ print $1 }' "$(sq_thread)/schedstat"; }

tap_plan

if ! spry load >/dev/null || ! spry chain add demo hops upper,reverse >/dev/null; then
	tap_ok 1 "spry load; spry chain add demo hops upper,reverse"
	tap_finish
fi

# the first CPU this test may run on
CPU=$(awk '$1 == "Cpus_allowed_list:" { split($2, a, /[,-]/); print a[1] }' /proc/self/status)
start "$SPRYD" "$TMP/spryd.log" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" --front uring \
	--sqpoll "$CPU"
SPRYD_PID=$LAST
# no io_uring here: a skip, decided before any point; any other failure
# to start fails the points below
uring_up_or_skip "$TMP/spryd.log"

# 1-2: refused at the command line (before touching the pins or socket)
expect_cmd -s '!0' -e 'spryd: --sqpoll needs --front uring' \
	"--sqpoll without --front uring: refused" -- \
	timeout 10 "$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" --sqpoll any
expect_cmd -s '!0' -e "spryd: bad value 'one' for --sqpoll" \
	"--sqpoll one: refused (a CPU number or 'any')" -- \
	timeout 10 "$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" --front uring \
	--sqpoll one

# 3-5: the ring thread, where it runs
start "$SPRY_OUT/examples/upper" "$TMP/upper.log" --chain demo --fn upper --sock "$SOCK"
start "$SPRY_OUT/examples/reverse" "$TMP/reverse.log" --chain demo --fn reverse --sock "$SOCK"
wait_for 5 live_is demo 2
t=$(sq_thread)
tap_ok $? "spryd --front uring --sqpoll $CPU: its ring thread iou-sqp-$SPRYD_PID runs" ||
	tap_diag "threads: $(cat /proc/"$SPRYD_PID"/task/*/comm | tr '\n' ' ')"
expect_eq "$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "$t/status" 2>/dev/null)" "$CPU" \
	"the ring thread may run on CPU $CPU only"
grep -q "io_uring front, its submission thread on CPU $CPU)" "$TMP/spryd.log"
tap_ok $? "spryd's log says where the ring thread runs" || tap_diag "$(grep http: "$TMP/spryd.log")"

# 6-7
expect_eq "$(c -d 'Hello, sqpoll' "$URL/demo")" "LLOPQS ,OLLEH" "POST /demo: upper -> reverse"
expect_eq "$(c "$URL/metrics" | grep '^spry_http_front_info')" \
	'spry_http_front_info{engine="uring",threads="2"} 1' "/metrics: the front's engine and threads"

# 8: 64 requests written at once on one connection, the answers in order
got=$(python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
reqs = b""
for i in range(64):
    body = b"req-%02d" % i
    reqs += (b"POST /demo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
s.sendall(reqs)
buf, bodies = b"", []
while len(bodies) < 64:
    d = s.recv(65536)
    if not d:
        break
    buf += d
    while True:
        h = buf.find(b"\r\n\r\n")
        if h < 0:
            break
        head = buf[:h].decode()
        n = int([l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length:")][0])
        if len(buf) < h + 4 + n:
            break
        bodies.append(buf[h + 4:h + 4 + n].decode())
        buf = buf[h + 4 + n:]
ok = bodies == [("req-%02d" % i).upper()[::-1] for i in range(64)]
print("ok" if ok else "got %d answers: %s" % (len(bodies), bodies[:4]))
PY
)
expect_eq "$got" ok "64 requests pipelined on one connection: 64 answers, in order"

# 9-10: at rest the ring thread sleeps; a request wakes it
sleep 0.3	# the thread polls SPRYD_SQPOLL_IDLE_MS (5 ms) after its last work
a=$(sq_ns)
sleep 1
b=$(sq_ns)
if [ -n "$a" ] && [ -n "$b" ]; then
	expect_num $((b - a)) -lt 2000000 "at rest the ring thread sleeps: it ran $((b - a)) ns in 1 s"
else
	tap_ok 1 "at rest the ring thread sleeps: no ring thread to read"
fi
got=$(c -d 'awake' "$URL/demo")
c2=$(sq_ns)
[ "$got" = EKAWA ] && [ -n "$c2" ] && [ "$c2" -gt "$b" ]
tap_ok $? "the next request wakes it (it ran $((${c2:-0} - ${b:-0})) ns) and is answered ($got)"

# 11-13
wait_for 5 pool_whole demo
tap_ok $? "every pool buffer of demo free ($POOL)"
term_all "$SPRYD_PID"
tap_ok $? "SIGTERM: spryd exits 0"
BAD='Sanitizer|runtime error|io_uring (submit|front):|send-errors [1-9]'
! grep -qE "$BAD" "$TMP/spryd.log"
tap_ok $? "spryd's log: no ring error, no send error" || tap_diag "$(grep -E "$BAD" "$TMP/spryd.log")"

# 14: spryd is gone, its socket and port free again
NOCPU=1023
if [ "$(nproc --all)" -lt 1024 ]; then
	expect_cmd -s '!0' -e "http: --sqpoll $NOCPU: not an online CPU of spryd's cpuset" \
		"--sqpoll $NOCPU (no such CPU): spryd says so and exits non-zero" -- \
		timeout 10 "$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" --front uring \
		--sqpoll "$NOCPU"
else
	tap_skip "--sqpoll to a CPU the machine lacks" "this machine has 1024 CPUs or more"
fi

tap_finish
