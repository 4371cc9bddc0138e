# SPDX-License-Identifier: GPL-2.0-only
# TAP 13 helpers for spry's shell selftests (kselftest style).
#
#   . "$(dirname "$0")/lib.sh"
#   tap_plan              # the header; the plan "1..N" is counted at the end
#   some_command; tap_ok $? "it works"
#   expect_eq "$got" "$want" "name"            # prints expected and actual
#   expect_cmd -s 1 -o 'usage' "name" -- spry bogus
#   json_check "$(spry -j stats)" '.verdicts.error == 0' "no errors"
#   tap_skip "name" "why"
#   tap_finish            # exit 0 all passed, 1 any failed, 4 all skipped
#
# tap_skip_all "why" exits 4 (KSFT_SKIP) before any test ran.
#
# Where things are (docs/KSELFTEST.md):
#   SPRY, SPRYD     the CLI and the daemon
#   SPRYD_FRONT     spryd's HTTP front options, an array: --front $SPRY_FRONT
#                   (environment SPRY_FRONT=epoll|uring|uring-sqpoll|uring-ring,
#                   default epoll; uring-sqpoll: --front uring --sqpoll any;
#                   uring-ring: --front uring --desc-send ring; the HTTP
#                   tests run against each: start_spryd passes it);
#                   SPRYD_FRONT_THREADS: its threads, 2 with --sqpoll, else 1
#   SPRY_OUT        the build: SPRY_OUT/examples/NAME are the example functions
#   SPRY_HELPERS    the test helper programs (e2e_client, fn_meta, ...)
#   SPRY_SELFTESTS  this directory: the test scripts, python helpers
#   SPRY_DATA       the examples' yaml and data files (boutique/boutique.yaml)
# In spry's tree: SPRY_SRC (the repo root) and SPRY_OUT (default build/)
# from the environment.  Installed by kselftest (`make install`, or built
# in a kernel tree): everything next to this file, SPRY_SRC unset, and a
# missing program is a failure, not a skip.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

SPRY_SELFTESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -f "$SPRY_SELFTESTS/../Kbuild" ] && [ -d "$SPRY_SELFTESTS/../spryd" ]; then
	SPRY_INSTALLED=0
	: "${SPRY_SRC:=$(cd "$SPRY_SELFTESTS/.." && pwd)}"
	: "${SPRY_OUT:=$SPRY_SRC/build}"
	SPRY_HELPERS=$SPRY_OUT/selftests
	SPRY_DATA=$SPRY_SRC/examples
	export SPRY_SRC
else
	SPRY_INSTALLED=1
	unset SPRY_SRC
	SPRY_OUT=$SPRY_SELFTESTS
	SPRY_HELPERS=$SPRY_SELFTESTS
	SPRY_DATA=$SPRY_SELFTESTS/example-data
	# spry-bins (written by selftests/Makefile) lists every program
	# the installed tests run
	_missing=$(cd "$SPRY_SELFTESTS" || exit
		if [ -r spry-bins ]; then
			while read -r _b; do [ -x "$_b" ] || echo "$_b"; done <spry-bins
		else
			echo spry-bins
		fi)
	[ -d "$SPRY_DATA" ] || _missing="$_missing example-data/"
	if [ -n "$_missing" ]; then
		echo "TAP version 13"
		echo "1..1"
		echo "not ok 1 - installed test set incomplete, missing in $SPRY_SELFTESTS:" $_missing
		exit $KSFT_FAIL
	fi
fi
SPRY="$SPRY_OUT/spry"
SPRYD="$SPRY_OUT/spryd"
export SPRY_OUT
SPRY_FRONT=${SPRY_FRONT:-epoll}
case "$SPRY_FRONT" in
epoll|uring) SPRYD_FRONT=(--front "$SPRY_FRONT") SPRYD_FRONT_THREADS=1 ;;
uring-sqpoll) SPRYD_FRONT=(--front uring --sqpoll any) SPRYD_FRONT_THREADS=2 ;;
uring-ring) SPRYD_FRONT=(--front uring --desc-send ring) SPRYD_FRONT_THREADS=1 ;;
*) echo "1..0 # SKIP SPRY_FRONT='$SPRY_FRONT': epoll, uring, uring-sqpoll or uring-ring"; exit 4 ;;
esac

_tap_n=0
_tap_fail=0
_tap_skip=0
_tap_planned=0
_tap_header=0

_tap_start() {
	[ $_tap_header -eq 1 ] && return
	_tap_header=1
	echo "TAP version 13"
}

# tap_plan [N]: the header.  The plan is then printed by tap_finish after
# the last point (valid TAP 13 and KTAP), counted, never kept by hand; N
# only for a count the test computes (e.g. from a table's length).
tap_plan() {
	_tap_start
	if [ $# -gt 0 ]; then
		_tap_planned=$1
		echo "1..$1"
	fi
}

# tap_diag MSG...: each line of MSG a "# " comment.  (It does not print
# the header: a test whose points another program prints, such as
# test_http_hostile.sh, adds its diagnostics after them.)
tap_diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

# tap_ok STATUS NAME: STATUS 0 passes.
tap_ok() {
	local st=$1
	shift
	_tap_start
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
	_tap_start
	_tap_n=$((_tap_n + 1))
	_tap_skip=$((_tap_skip + 1))
	echo "ok $_tap_n - $1 # SKIP $2"
}

# tap_skip_all WHY: nothing ran, the whole test is skipped (exit 4).  After
# a point ran, the rest cannot be skipped silently: Bail out!, exit 1.
tap_skip_all() {
	_tap_start
	if [ "$_tap_n" -eq 0 ] && [ "$_tap_planned" -eq 0 ]; then
		echo "1..0 # SKIP $*"
		exit $KSFT_SKIP
	fi
	echo "Bail out! $*"
	exit $KSFT_FAIL
}

# tap_finish: the plan when none was printed, then exit.  No point at all is
# a failure (a test that skips says so with tap_skip_all).
tap_finish() {
	_tap_start
	if [ "$_tap_n" -eq 0 ]; then
		echo "# no test ran"
		_tap_fail=$((_tap_fail + 1))
	fi
	if [ "$_tap_planned" -eq 0 ]; then
		echo "1..$_tap_n"
	elif [ "$_tap_n" -ne "$_tap_planned" ]; then
		echo "# planned $_tap_planned tests, ran $_tap_n"
		_tap_fail=$((_tap_fail + 1))
	fi
	[ "$_tap_fail" -eq 0 ] || exit $KSFT_FAIL
	if [ "$_tap_n" -gt 0 ] && [ "$_tap_skip" -eq "$_tap_n" ]; then
		exit $KSFT_SKIP
	fi
	exit $KSFT_PASS
}

# ------------------------------------------------ checks that say what failed
#
# Each is one point; on failure the "# " lines before its "not ok" show what
# was expected and what was got.  Each returns 0 when it passed.

# _tap_show LABEL TEXT: TEXT as diagnostics under LABEL, at most 20 lines.
_tap_show() {
	local n
	n=$(printf '%s\n' "$2" | wc -l)
	tap_diag "$1$(printf '%s\n' "$2" | head -n 20)"
	[ "$n" -le 20 ] || tap_diag "  ... ($((n - 20)) more lines)"
}

# _tap_where: FILE:LINE of the check's caller (for the diagnostic).
_tap_where() {
	local f=${BASH_SOURCE[2]:-$0}
	echo "${f##*/}:${BASH_LINENO[1]}"
}

# expect_eq ACTUAL EXPECTED NAME: the strings are equal.
expect_eq() {
	_tap_start
	if [ "$1" = "$2" ]; then
		tap_ok 0 "$3"
		return
	fi
	tap_diag "$(_tap_where): expected '$2', got '$1'"
	tap_ok 1 "$3"
}

# expect_num ACTUAL OP EXPECTED NAME: integers compared with test's OP
# (-eq -ne -lt -le -gt -ge); a non-number fails.
expect_num() {
	_tap_start
	if [ "$1" -eq "$1" ] 2>/dev/null && [ "$1" "$2" "$3" ]; then
		tap_ok 0 "$4"
		return
	fi
	tap_diag "$(_tap_where): expected a value $2 $3, got '$1'"
	tap_ok 1 "$4"
}

# expect_cmd [-s STATUS] [-o ERE] [-e ERE] NAME -- CMD...: run CMD; its exit
# status is STATUS (a number, or !0 for any failure; default 0), its stdout
# matches ERE (-o) and its stderr matches ERE (-e), each a grep -E pattern.
# On failure: the command, its status and its output.  OUT and ERR hold
# what it printed, for further checks.
expect_cmd() {
	local want=0 ore= ere= name st ok=0 why=
	while [ $# -gt 0 ]; do
		case $1 in
		-s) want=$2; shift 2 ;;
		-o) ore=$2; shift 2 ;;
		-e) ere=$2; shift 2 ;;
		*) break ;;
		esac
	done
	name=$1
	_tap_start
	[ "${2:-}" = -- ] || { tap_diag "expect_cmd: no -- before the command"; tap_ok 1 "$name"; return 1; }
	shift 2
	local o e
	o=$(mktemp) e=$(mktemp)
	"$@" >"$o" 2>"$e"
	st=$?
	OUT=$(cat "$o") ERR=$(cat "$e")
	rm -f "$o" "$e"
	if [ "$want" = '!0' ]; then
		[ $st -ne 0 ] || { ok=1; why="expected a failing exit status, got 0"; }
	elif [ "$st" -ne "$want" ]; then
		ok=1 why="expected exit status $want, got $st"
	fi
	if [ -n "$ore" ] && ! printf '%s\n' "$OUT" | grep -qE -- "$ore"; then
		ok=1 why="${why:+$why; }expected stdout matching /$ore/"
	fi
	if [ -n "$ere" ] && ! printf '%s\n' "$ERR" | grep -qE -- "$ere"; then
		ok=1 why="${why:+$why; }expected stderr matching /$ere/"
	fi
	if [ $ok -ne 0 ]; then
		tap_diag "$(_tap_where): $why"
		tap_diag "  command: $*"
		tap_diag "  exit status: $st"
		[ -z "$OUT" ] || _tap_show "  stdout: " "$OUT"
		[ -z "$ERR" ] || _tap_show "  stderr: " "$ERR"
	fi
	tap_ok $ok "$name"
}

# json_check JSON EXPR NAME [JQ_ARGS...]: jq EXPR on JSON is true (JQ_ARGS
# e.g. --argjson n 3).  On failure: the expression and the document.
json_check() {
	_tap_start
	local json=$1 expr=$2 name=$3 got
	shift 3
	got=$(printf '%s\n' "$json" | jq -c "$@" "$expr" 2>&1)
	if [ "$got" = true ]; then
		tap_ok 0 "$name"
		return
	fi
	tap_diag "$(_tap_where): expected $expr to be true, got ${got:-nothing}"
	_tap_show "  in: " "$(printf '%s\n' "$json" | jq -c . 2>/dev/null || printf '%s' "$json")"
	tap_ok 1 "$name"
}

# json_eq JSON FILTER EXPECTED NAME [JQ_ARGS...]: jq -c FILTER on JSON
# prints EXPECTED (compact JSON, e.g. 3, "demo", [1,2]).
json_eq() {
	_tap_start
	local json=$1 filter=$2 want=$3 name=$4 got
	shift 4
	got=$(printf '%s\n' "$json" | jq -c "$@" "$filter" 2>&1)
	if [ "$got" = "$want" ]; then
		tap_ok 0 "$name"
		return
	fi
	tap_diag "$(_tap_where): expected $filter == $want, got ${got:-nothing}"
	_tap_show "  in: " "$(printf '%s\n' "$json" | jq -c . 2>/dev/null || printf '%s' "$json")"
	tap_ok 1 "$name"
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

# SPRYD_STOP_TIMEOUT: spryd's --stop-timeout for tests that do not test it
# (SIGTERM to SIGKILL of the instances it stops): 1 s, 3 s under ASan,
# where an instance's exit runs LeakSanitizer's scan (see kill_wait)
SPRYD_STOP_TIMEOUT=1
[ -z "${ASAN_OPTIONS:-}" ] || SPRYD_STOP_TIMEOUT=3

# uring_up_or_skip LOG: after spryd was started with --front uring and
# its stderr in LOG, wait (5 s) for its control socket.  0 when it came
# up; when it did not because this kernel refuses io_uring
# (kernel.io_uring_disabled, or not built), the whole test is a skip
# (call it before any point); else its log's tail as a diagnostic, and 1.
uring_up_or_skip() {
	wait_for 5 test -S "$SOCK" && return 0
	grep -qE 'io_uring front: (Operation not permitted|Function not implemented)' "$1" &&
		tap_skip_all "no io_uring here: $(grep 'io_uring front:' "$1")"
	tap_diag "$(tail -5 "$1")"
	return 1
}

# kill_wait PID...: SIGTERM, then SIGKILL after 3 s (15 s under ASan); reap.  Only for
# processes this test started.
kill_wait() {
	local p grace=3
	# under ASan a process's exit runs LeakSanitizer's scan, which can take
	# seconds on a loaded machine; a SIGKILL in the middle of it leaves a
	# report ("Unable to get registers from thread") that is no finding
	[ -z "${ASAN_OPTIONS:-}" ] || grace=15
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null || continue
		wait_for "$grace" proc_gone "$p" || kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}

# ------------------------------------------------ spry test environment
#
#   . lib.sh
#   require_root_bpf
#   spry_private_netns "$@"          # re-runs the test in its own netns
#   require_bins "$SPRY" "$SPRYD" ...
#   spry_test_env NAME               # PIN, TMP, SOCK, PIDS, cleanup trap
#   spry load; spry chain add ...    # spry(): the CLI on the private pins
#   start_spryd [ARGS...]            # SPRYD_PID, control socket ready
#   start BIN LOG ARGS...            # background process, pid in LAST

# Re-run the calling test in a new network namespace with lo up.  Uses
# `unshare -n`, which keeps /sys (and bpffs) visible; `ip netns exec`
# would remount /sys and hide the pins.  Extra unshare flags may follow.
spry_private_netns() {
	if [ -z "${SPRY_TEST_NETNS:-}" ]; then
		SPRY_TEST_NETNS=1 exec unshare -n "$@" "$BASH" "$0"
	fi
	ip link set lo up || tap_skip_all "cannot bring lo up in a new network namespace"
}

# require_bins FILE...: skip the whole test unless each is built (installed:
# fail).
require_bins() {
	local b
	for b in "$@"; do
		[ -x "$b" ] && continue
		# installed: the program should be there
		if [ "$SPRY_INSTALLED" -eq 1 ]; then
			echo "TAP version 13"
			echo "1..1"
			echo "not ok 1 - $b missing"
			exit $KSFT_FAIL
		fi
		tap_skip_all "$b not built"
	done
}

# spry_test_env NAME: a private pin directory, temporary directory and
# control socket; on exit, the processes start() started are stopped (those
# a test SIGSTOPped, listed in STOPPED, continued first), the pins unloaded
# and both directories removed.  A test with more to undo defines
# spry_test_cleanup_extra.
spry_test_env() {
	PIN=/sys/fs/bpf/spry-test-$1-$$
	TMP=$(mktemp -d "/tmp/spry-test-$1-XXXXXX") || tap_skip_all "mktemp failed"
	SOCK=$TMP/ctl.sock
	# declarations and spryd's status in TMP, not in /run/spry/fns (a test
	# may point it elsewhere in TMP)
	export SPRY_STATE_DIR=$TMP/state
	PIDS=()
	STOPPED=()
	trap spry_test_cleanup EXIT
}

spry_test_cleanup() {
	local p
	for p in "${STOPPED[@]}"; do kill -CONT "$p" 2>/dev/null; done
	kill_wait "${PIDS[@]}"
	if declare -F spry_test_cleanup_extra >/dev/null; then
		spry_test_cleanup_extra
	fi
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}

# spry ARGS...: the CLI on this test's pins.
spry() { "$SPRY" -P "$PIN" "$@"; }

# spry_fails NAME ARGS...: true when spry ARGS exits non-zero with exactly
# one "Error:" line (and nothing else) on stderr; else a diagnostic.
# Output in $TMP/out and $TMP/err.
spry_fails() {
	local name=$1 rc
	shift
	spry "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	if [ $rc -ne 0 ] && [ "$(grep -c '^Error: ' "$TMP/err")" -eq 1 ] &&
	   [ "$(wc -l <"$TMP/err")" -eq 1 ]; then
		return 0
	fi
	tap_diag "$name: spry $* -> rc=$rc stderr: $(cat "$TMP/err")"
	return 1
}

# start BIN LOG ARGS...: run BIN in the background, stderr to LOG; its pid
# in LAST and in PIDS (stopped by the cleanup).
start() {
	local bin=$1 log=$2
	shift 2
	"$bin" "$@" 2>"$log" &
	LAST=$!
	PIDS+=("$LAST")
}

# start_spryd [ARGS...]: spryd on this test's pins and socket, its log in
# $TMP/spryd.log; waits for the control socket.  SPRYD_PID.
start_spryd() {
	start "$SPRYD" "$TMP/spryd.log" -P "$PIN" -s "$SOCK" "${SPRYD_FRONT[@]}" "$@"
	SPRYD_PID=$LAST
	wait_for 5 test -S "$SOCK"
}

# n_live [CHAIN]: live, listed instances of the chain's functions (of every
# chain's without one).
n_live() {
	spry -j fn show ${1:+chain "$1"} | jq --arg c "${1:-}" '[.[] |
		select(if $c == "" then .chain != null else .chain == $c end) |
		.instances[]? | select(.listed and (.flags | index("live")))] | length'
}

# live_is [CHAIN] N: N live, listed instances of CHAIN (of every chain).
live_is() {
	if [ $# -ge 2 ]; then
		[ "$(n_live "$1")" -eq "$2" ]
	else
		[ "$(n_live)" -eq "$1" ]
	fi
}

# all_idle CHAIN N: the chain has N listed instances, none with a request.
all_idle() {
	spry -j fn show chain "$1" | jq -e --arg c "$1" --argjson n "$2" \
		'[.[] | select(.chain == $c) | .instances[] | select(.listed)] |
		 length == $n and all(.inflight == 0)' >/dev/null
}

# pool_whole CHAIN [HELD]: every buffer of the chain's pool is free but
# HELD (default 0: e.g. the buffers an AF_XDP fill ring holds), read through
# spryd's descriptor of it (/proc/SPRYD_PID/fd/N).  POOL: the counts.
pool_whole() {
	local fd st held=${2:-0}
	for fd in /proc/"$SPRYD_PID"/fd/*; do
		case "$(readlink "$fd")" in
		"/memfd:spry-$1 "*|"/memfd:spry-$1"|*/"spry-$1") ;;
		*) continue ;;
		esac
		st=$("$SPRY_HELPERS/e2e_client" pool "$fd") || return 1
		POOL="$st"
		set -- $st
		[ $(( ${1#n_bufs=} - held )) = "${2#n_free=}" ] &&
		[ "${3#n_large=}" = "${4#n_large_free=}" ]
		return
	done
	return 1
}

# term_all PID...: SIGTERM each (processes this test started); 0 when all
# exit with status 0 within 5 s, else a diag line per offender and 1.
term_all() {
	local p rc=0
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "$@"; do
		if wait_for 5 proc_gone "$p"; then
			wait "$p" || { rc=1; tap_diag "pid $p exited with $?"; }
		else
			rc=1
			tap_diag "pid $p still running"
		fi
	done
	return $rc
}
