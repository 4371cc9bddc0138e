#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spryd's registrar against hostile clients, in a private network
# namespace with a private pin directory, control socket and pool dir:
# every kind of bad registration is refused with its own status and the
# connection stays usable; a flood of connect/register/close cycles leaves
# spryd's fd count where it was; INVOKE runs through the origin and the
# router; SIGTERM stops spryd cleanly.  Clients: spryd_probe.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root_bpf
PROBE="$SPRY_HELPERS/spryd_probe"
require_bins "$SPRY" "$SPRYD" "$PROBE"
command -v unshare >/dev/null || tap_skip_all "unshare needed"

# Run the rest in private network and mount namespaces (bpffs stays
# visible; a hugetlbfs mount for the pools stays private).
spry_private_netns -m

NOBODY=65534
spry_test_env spryd
DIR=$PIN
chmod 0755 "$TMP"	# the probe also runs as nobody
SOCK="$TMP/run/spryd.sock"
POOLS="$TMP/pools"
mkdir -p "$POOLS"
SPRYD_PID=
# With hugepages to spare the pools are files on a private hugetlbfs.
HUGE=0
free_huge=$(sed -n 's/^HugePages_Free: *//p' /proc/meminfo)
if [ "${free_huge:-0}" -ge 5 ] &&
   mount -t hugetlbfs -o pagesize=2M,mode=0711 none "$POOLS" 2>/dev/null; then
	HUGE=1
fi

spry_test_cleanup_extra() {
	[ -n "$SPRYD_PID" ] && kill_wait "$SPRYD_PID"
	[ -n "${SPRYD_TEST_LOG:-}" ] && cp "$TMP/spryd.log" "$SPRYD_TEST_LOG"
	[ $HUGE -eq 1 ] && umount "$POOLS"
}

probe() { "$PROBE" -s "$SOCK" "$@" 2>>"$TMP/probe.err"; }
nfds() { ls "/proc/$SPRYD_PID/fd" 2>/dev/null | wc -l; }

# expect NAME WANT ARGS...: the probe prints "status WANT" (last status line).
expect() {
	local name=$1 want=$2 out got
	shift 2
	out=$(probe "$@")
	got=$(echo "$out" | sed -n 's/^status \(-\?[0-9]*\).*/\1/p' | tail -n 1)
	[ "$got" = "$want" ] || tap_diag "the probe said: $out"
	expect_eq "$got" "$want" "$name"
}

# expect_bad KIND WANT: malformed message refused with WANT, HELLO still works.
expect_bad() {
	local out
	out=$(probe bad "$1")
	echo "$out" | grep -q "^status $2 " && echo "$out" | grep -q '^usable 1$'
	local rc=$?
	[ $rc -eq 0 ] || tap_diag "bad $1: $out"
	tap_ok $rc "malformed ($1): refused with $2, connection still usable"
}

tap_plan

if ! "$SPRY" -P "$DIR" load >/dev/null 2>"$TMP/load.err"; then
	tap_diag "$(cat "$TMP/load.err")"
	tap_ok 1 "spry load"
	tap_finish
fi
"$SPRY" -P "$DIR" chain add rootc hops a,b user 0 >/dev/null &&
"$SPRY" -P "$DIR" chain add nobc hops n user $NOBODY >/dev/null &&
"$SPRY" -P "$DIR" chain add fast hops u user 0 >/dev/null &&
"$SPRY" -P "$DIR" chain add slow hops h user 0 deadline 200 max-inflight 1 >/dev/null &&
"$SPRY" -P "$DIR" chain add evil hops e user 0 >/dev/null ||
	tap_skip_all "spry chain add failed"

# 1: a missing load is a clear error.
"$SPRYD" -P "$DIR-none" -s "$SOCK" 2>"$TMP/noload.err"
rc=$?
[ $rc -ne 0 ] && grep -q "spry.* load" "$TMP/noload.err"
tap_ok $? "spryd without loaded maps fails and says to run spry load"

# 2: --cpus places spryd; a bad list is refused before anything starts
CPU=$(( $(nproc) - 1 ))
"$SPRYD" -P "$DIR" -s "$SOCK" --cpus 3-1 2>"$TMP/badcpus.err"
rc=$?
refused=1
[ $rc -ne 0 ] && grep -q "range must go upwards" "$TMP/badcpus.err" && [ ! -e "$SOCK" ] &&
	refused=0
"$SPRYD" -P "$DIR" -s "$SOCK" "${SPRYD_FRONT[@]}" --pool-dir "$POOLS" --cpus "$CPU" 2>"$TMP/spryd.log" &
SPRYD_PID=$!
[ $refused -eq 0 ] && wait_for 5 test -S "$SOCK" && probe hello >/dev/null &&
	[ "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$SPRYD_PID/status)" = "$CPU" ]
tap_ok $? "spryd --cpus $CPU runs on CPU $CPU and answers HELLO; --cpus 3-1 refused (rc $rc)"

# 3-4: registrations that should work.
expect "root registers rootc/a" 0 reg rootc a tcp
expect "nobody registers its own chain nobc/n" 0 -u $NOBODY reg nobc n tcp
# 5-15: refusals.
expect "(a) nobody registering a root chain: -EPERM" -1 -u $NOBODY reg rootc a tcp
expect "(b) UDP socket: -EPROTOTYPE" -91 reg rootc a udp
expect "(c) unconnected TCP socket: -ENOTCONN" -107 reg rootc a unconn
expect "    listening TCP socket: -ENOTCONN" -107 reg rootc a listen
expect "(d) TCP socket connected elsewhere: -ECONNREFUSED" -111 reg rootc a elsewhere
expect "(e) AF_UNIX socket: -EPROTOTYPE" -91 reg rootc a unix
expect "    not a socket (/dev/null): -ENOTSOCK" -88 reg rootc a file
expect "    no fd passed: -EBADF" -9 reg rootc a none
expect "    same socket registered twice: -ENOTCONN" -107 reg rootc a twice
expect "(g) unknown chain: -ENOENT" -2 reg nochain a tcp
expect "(g) unknown function: -ENOENT" -2 reg rootc zz tcp
# 16-22: (f) malformed messages.
expect_bad magic -22
expect_bad short -22
expect_bad len -22
expect_bad version -22
expect_bad type -22
expect_bad regsize -22
expect_bad trunc -90

# 23: INVOKE goes out through the origin; with no instance of rootc's
# first hop the router sends it straight back: status NO_INSTANCE (1).
out=$(probe invoke rootc hello)
echo "$out" | grep -q '^status 0 desc 1 len 5 data hello$'
rc=$?
[ $rc -eq 0 ] || tap_diag "invoke: $out"
tap_ok $rc "INVOKE without instances comes back NO_INSTANCE through the origin"

# 24: the flood.
base=$(nfds)
out=$(probe flood 500 rootc a)
back() { [ "$(nfds)" -le "$base" ]; }
wait_for 5 back
now=$(nfds)
[ "$out" = "ok 500" ] && [ "$now" -le "$base" ] && probe hello >/dev/null
rc=$?
[ $rc -eq 0 ] || tap_diag "flood: $out; fds $base -> $now"
tap_ok $rc "500 connect/register/close cycles: all answered, fds back ($base -> $now), still answers"

if [ $HUGE -eq 1 ]; then
	grep -q 'pool for chain .*hugetlbfs file' "$TMP/spryd.log" && [ -n "$(ls -A "$POOLS")" ]
	tap_ok $? "pools on hugetlbfs are files in the pool dir ($(ls "$POOLS" | tr '\n' ' '))"
else
	grep -q 'pool for chain .*memfd' "$TMP/spryd.log"
	tap_ok $? "no hugepages to spare: pools are memfds (logged)"
fi

# 26-30: requests through a function (spryd_probe serve).
serve() {
	local out=$TMP/serve.$1.$2
	"$PROBE" -s "$SOCK" serve "$@" >"$out" 2>>"$TMP/probe.err" &
	SERVE_PID=$!
	wait_for 5 grep -q '^registered' "$out"
}
serve fast u upper
out=$(probe invoke fast hello)
[ "$out" = "status 0 desc 0 len 5 data HELLO" ]
rc=$?
[ $rc -eq 0 ] || tap_diag "fast: $out"
tap_ok $rc "INVOKE through a function: RESULT with its response"
kill_wait "$SERVE_PID"

serve slow h hold
HOLD_PID=$SERVE_PID
out=$(probe invoke slow x)
echo "$out" | grep -q '^status -110 '
tap_ok $? "a request past its deadline: RESULT -ETIMEDOUT ($out)"
out=$(probe invoke slow y)
echo "$out" | grep -q '^status -16 '
tap_ok $? "its zombie still counts against max-inflight: -EBUSY ($out)"
kill_wait "$HOLD_PID"
wait_for 3 grep -q 'slow/0 .*removed: its socket closed' "$TMP/spryd.log"
out=$(probe invoke slow z)
echo "$out" | grep -q '^status 0 desc 1 '
tap_ok $? "its instance died: zombie reclaimed, next request NO_INSTANCE ($out)"

serve evil e evil
out=$(probe invoke evil x)
wait_for 3 grep -q 'evil/e\[0\] .*removed: quarantined' "$TMP/spryd.log"
rc=$?
echo "$out" | grep -q '^status -104 ' && [ $rc -eq 0 ] &&
	grep -qi 'quarantine: .*hop' "$TMP/spryd.log"
rc=$?
[ $rc -eq 0 ] || tap_diag "evil: $out; log: $(grep -i quarant "$TMP/spryd.log")"
tap_ok $rc "a function quarantined by the router: logged, removed, its request -ECONNRESET"
kill_wait "$SERVE_PID"

# 31: clean shutdown.
kill -TERM "$SPRYD_PID"
wait_for 5 proc_gone "$SPRYD_PID"
wait "$SPRYD_PID"
rc=$?
SPRYD_PID=
[ $rc -eq 0 ] && [ ! -e "$SOCK" ] && [ -z "$(ls -A "$POOLS")" ]
rc2=$?
[ $rc2 -eq 0 ] || tap_diag "exit $rc; left: $(ls -A "$TMP/run" "$POOLS")"
tap_ok $rc2 "SIGTERM: exit 0, control socket and pool files removed"
if [ -s "$TMP/probe.err" ]; then
	tap_diag "probe stderr: $(head -5 "$TMP/probe.err")"
fi
grep -q "registration refused" "$TMP/spryd.log" ||
	tap_diag "spryd logged no refusals: $(tail -5 "$TMP/spryd.log")"

tap_finish
