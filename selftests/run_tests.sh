#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Run spry's selftests, kselftest style: every program built from Kbuild's
# selftests-y (build/selftests/test_*) and every selftests/test_*.sh.
# Prints TAP 13 (each test's own TAP nested as comments, its bytes made
# valid UTF-8; each result line with the test's time in seconds), then
# kselftest's "# Totals: pass:N fail:N ..." and, last,
#   N passed, N failed, N skipped
# both counted over the tests' individual TAP points.
#
#   run_tests.sh [-t NAME]... [-x NAME]... [-f FRONT] [-l]
#   -t: only these tests; -x: not these (each a SKIP saying so, SAN_SKIP
#   in the Makefile); -f: spryd's HTTP front, epoll (default), uring,
#   uring-sqpoll or uring-ring
#   (SPRY_FRONT for selftests/lib.sh); -l: list
# Environment: OUT (build dir, default build/), SPRY_FRONT, per-test
# timeout from selftests/settings.  In a sanitizer build, a test after
# which any of its processes left an ASan/LSan/UBSan report fails.
#
# test_kselftest runs first when it is in the run: it installs the suite
# with the kernel's kselftest and runs every installed test.  A test that
# ran there is reported from that run (its output, status and time, "in
# test_kselftest's installed run") and not run a second time here; one that
# did not (test_kselftest skipped or stopped early, a test kept out of the
# install) runs here.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(cd "${OUT:-$SRC/build}" 2>/dev/null && pwd) || { echo "run_tests.sh: no build dir ${OUT:-$SRC/build} (make selftests)" >&2; exit 2; }
export SPRY_SRC=$SRC SPRY_OUT=$OUT

timeout_s=600
if [ -r "$SRC/selftests/settings" ]; then
	t=$(sed -n 's/^timeout=\([0-9]\+\)$/\1/p' "$SRC/selftests/settings")
	[ -n "$t" ] && timeout_s=$t
fi

only=()
excl=()
list=0
while [ $# -gt 0 ]; do
	case "$1" in
	-t) [ $# -ge 2 ] || { echo "run_tests.sh: -t needs a test name" >&2; exit 2; }
	    only+=("$2"); shift 2 ;;
	-x) [ $# -ge 2 ] || { echo "run_tests.sh: -x needs a test name" >&2; exit 2; }
	    excl+=("$2"); shift 2 ;;
	-f) [ $# -ge 2 ] || { echo "run_tests.sh: -f needs epoll, uring, uring-sqpoll or uring-ring" >&2; exit 2; }
	    case "$2" in epoll|uring|uring-sqpoll|uring-ring) ;; *) echo "run_tests.sh: -f: epoll, uring, uring-sqpoll or uring-ring, not '$2'" >&2; exit 2 ;; esac
	    export SPRY_FRONT=$2; shift 2 ;;
	-l) list=1; shift ;;
	-h|--help) sed -n '3,24p' "$0"; exit 0 ;;
	*) echo "run_tests.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

# in_list NAME LIST...: NAME is one of LIST
in_list() {
	local n=$1 o
	shift
	for o; do [ "$o" = "$n" ] && return 0; done
	return 1
}

tests=()
ksft=
for f in "$OUT"/selftests/test_* "$SRC"/selftests/test_*.sh; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	name=$(basename "$f" .sh)
	[ ${#only[@]} -eq 0 ] || in_list "$name" "${only[@]}" || continue
	if [ "$name" = test_kselftest ]; then
		ksft=$f
		continue
	fi
	tests+=("$f")
done
# test_kselftest first: the tests its installed run ran are reported from it
[ -n "$ksft" ] && tests=("$ksft" "${tests[@]}")

if [ $list -eq 1 ]; then
	for f in "${tests[@]}"; do basename "$f" .sh; done
	exit 0
fi

TMPD=$(mktemp -d /tmp/spry-run-tests.XXXXXX) || exit 2
trap 'rm -rf "$TMPD"' EXIT
log=$TMPD/log
ksft_log=$TMPD/installed.log

# A sanitizer build (make SAN=1): every process of a test (spryd, the
# functions it starts, those running as other users) writes its ASan, LSan
# or UBSan report into a directory of that test, whatever becomes of its
# stderr; a test that left a report fails, the report shown.
san=0
if nm -D "$OUT/spryd" 2>/dev/null | grep -q ' __asan_init$'; then
	san=1
	chmod 755 "$TMPD"
	asan_opts=${ASAN_OPTIONS:+$ASAN_OPTIONS:}
	ubsan_opts=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}
fi

# installed NAME: NAME's output in test_kselftest's installed run (the
# runner's "# " taken off) into $log, its exit status and seconds into RC
# and SECS; fails when NAME did not run there.
installed() {
	local r
	[ -s "$ksft_log" ] || return 1
	r=$(perl -ne '
		BEGIN { ($n, $out) = (shift, shift); open(O, ">", $out) or die "$out: $!\n" }
		$secs = $1 if m{^# time: \Q$n\E(?:\.sh)? (\d+)s$};
		if ($in == 0) { $in = 1 if m{^# selftests: spry: \Q$n\E(\.sh)?$}; next }
		if ($in == 1) {
			if (m{^(not )?ok \d+ selftests: spry: \Q$n\E(\.sh)?(\s.*)?$}) {
				$rc = !defined $1 ? (/# SKIP/ ? 4 : 0) :
				      /# TIMEOUT/ ? 124 : /# exit=(\d+)/ ? $1 : 1;
				$in = 2;
				next;
			}
			s/^# ?//;
			print O;
			next;
		}
		END { print "$rc ", $secs // "?", "\n" if defined $rc }
		' "$1" "$log" "$ksft_log") && [ -n "$r" ] || return 1
	RC=${r% *} SECS=${r#* }
}

pass=0 fail=0 skip=0
echo "TAP version 13"
echo "1..${#tests[@]}"
n=0
for f in "${tests[@]}"; do
	n=$((n + 1))
	name=$(basename "$f" .sh)
	echo "# selftests: spry: $name"
	if [ ${#excl[@]} -gt 0 ] && in_list "$name" "${excl[@]}"; then
		echo "ok $n selftests: spry: $name # SKIP excluded from this run (-x; the Makefile's SAN_SKIP says why)"
		skip=$((skip + 1))
		continue
	fi
	where=
	if [ $san -eq 1 ]; then
		sandir=$TMPD/san-$name
		mkdir -m 1777 "$sandir"
		export ASAN_OPTIONS=${asan_opts}log_path=$sandir/asan
		export UBSAN_OPTIONS=${ubsan_opts}print_stacktrace=1:log_path=$sandir/ubsan
	fi
	if [ "$f" != "$ksft" ] && installed "$name"; then
		where=", in test_kselftest's installed run"
	else
		start=$(date +%s)
		if [ "$f" = "$ksft" ]; then
			: >"$ksft_log"
			( cd "$SRC/selftests" && SPRY_KSFT_LOG=$ksft_log timeout --kill-after=10 "$timeout_s" "$f" ) >"$log" 2>&1
		else
			( cd "$SRC/selftests" && timeout --kill-after=10 "$timeout_s" "$f" ) >"$log" 2>&1
		fi
		RC=$?
		SECS=$(( $(date +%s) - start ))
	fi
	# as comments; bytes that are not UTF-8, and control characters,
	# become U+FFFD so that TAP consumers can read every line
	perl -MEncode -pe '$_ = decode("UTF-8", $_);
		s/[\x00-\x08\x0b-\x1f\x7f]/\x{fffd}/g;
		s/\n?\z/\n/;
		$_ = encode("UTF-8", "# $_")' "$log"
	p=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# *SKIP' "$log" | tr -d ' ')
	fl=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
	p=$((p - s))
	reports=()
	[ $san -eq 0 ] || reports=("$sandir"/*san.*)
	if [ -e "${reports[0]:-}" ]; then
		for r in "${reports[@]}"; do
			echo "# sanitizer report ${r##*/} (its first 60 lines):"
			sed -n '/^Shadow bytes around/q; p' "$r" | head -n 60 | sed 's/^/#   /'
		done
		echo "not ok $n selftests: spry: $name # sanitizer report (exit=$RC, ${SECS}s)"
		fail=$((fail + fl + 1)) pass=$((pass + p)) skip=$((skip + s))
		continue
	fi
	case $RC in
	0)
		echo "ok $n selftests: spry: $name (${SECS}s$where)"
		;;
	4)
		echo "ok $n selftests: spry: $name # SKIP (${SECS}s$where)"
		# a test skipped as a whole counts once
		[ $((p + s + fl)) -eq 0 ] && s=1
		;;
	124|137)
		echo "not ok $n selftests: spry: $name # TIMEOUT ${timeout_s} seconds (${SECS}s$where)"
		fl=$((fl + 1))
		;;
	*)
		echo "not ok $n selftests: spry: $name # exit=$RC (${SECS}s$where)"
		# a failure the TAP points do not show (crash, bad exit)
		[ "$fl" -eq 0 ] && fl=1
		;;
	esac
	pass=$((pass + p)) skip=$((skip + s)) fail=$((fail + fl))
done
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
