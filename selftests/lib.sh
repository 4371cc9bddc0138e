# SPDX-License-Identifier: GPL-2.0-only
# TAP 13 helpers for spry's shell selftests (kselftest style).
#
#   . "$(dirname "$0")/lib.sh"
#   tap_plan 3
#   some_command; tap_ok $? "it works"
#   tap_skip "name" "why"
#   tap_finish            # exit 0 all passed, 1 any failed, 4 all skipped
#
# tap_skip_all "why" exits 4 (KSFT_SKIP) before any test ran.
# Environment: SPRY_OUT (build dir), SPRY_SRC (repo root).

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

: "${SPRY_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${SPRY_OUT:=$SPRY_SRC/build}"
SPRY="$SPRY_OUT/spry"
SPRYD="$SPRY_OUT/spryd"
export SPRY_SRC SPRY_OUT

_tap_n=0
_tap_fail=0
_tap_skip=0
_tap_planned=0

tap_plan() {
	_tap_planned=$1
	echo "TAP version 13"
	echo "1..$1"
}

tap_diag() {
	echo "# $*"
}

# tap_ok STATUS NAME: STATUS 0 passes.
tap_ok() {
	local st=$1
	shift
	_tap_n=$((_tap_n + 1))
	if [ "$st" -eq 0 ]; then
		echo "ok $_tap_n - $*"
	else
		echo "not ok $_tap_n - $*"
		_tap_fail=$((_tap_fail + 1))
	fi
	return "$st"
}

tap_skip() {
	_tap_n=$((_tap_n + 1))
	_tap_skip=$((_tap_skip + 1))
	echo "ok $_tap_n - $1 # SKIP $2"
}

tap_skip_all() {
	echo "TAP version 13"
	echo "1..0 # SKIP $*"
	exit $KSFT_SKIP
}

tap_finish() {
	if [ "$_tap_planned" -ne 0 ] && [ "$_tap_n" -ne "$_tap_planned" ]; then
		echo "# planned $_tap_planned tests, ran $_tap_n"
		_tap_fail=$((_tap_fail + 1))
	fi
	[ "$_tap_fail" -eq 0 ] || exit $KSFT_FAIL
	if [ "$_tap_n" -gt 0 ] && [ "$_tap_skip" -eq "$_tap_n" ]; then
		exit $KSFT_SKIP
	fi
	exit $KSFT_PASS
}

# Skip the whole test unless root with bpffs available.
require_root_bpf() {
	[ "$(id -u)" -eq 0 ] || tap_skip_all "needs root"
	if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
		mount -t bpf bpf /sys/fs/bpf 2>/dev/null ||
			tap_skip_all "bpffs not mounted and cannot be mounted"
	fi
}

# wait_for TIMEOUT_S CMD...: poll CMD every 20 ms until it succeeds.
wait_for() {
	local deadline=$(( $(date +%s%N) + $1 * 1000000000 ))
	shift
	while ! "$@" 2>/dev/null; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.02
	done
}

# proc_gone PID: the process has exited (gone, or a zombie not yet reaped).
proc_gone() {
	[ ! -e "/proc/$1/stat" ] || grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

# kill_wait PID...: SIGTERM, then SIGKILL after 3 s; reap.  Only for
# processes this test started.
kill_wait() {
	local p
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null || continue
		wait_for 3 proc_gone "$p" || kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}
