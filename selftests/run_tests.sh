#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Run spry's selftests, kselftest style: every program built from Kbuild's
# selftests-y (build/selftests/test_*) and every selftests/test_*.sh.
# Prints TAP 13 (each test's own TAP nested as comments, its bytes made
# valid UTF-8), then kselftest's "# Totals: pass:N fail:N ..." and, last,
#   N passed, N failed, N skipped
# both counted over the tests' individual TAP points.
#
#   run_tests.sh [-t NAME]... [-f FRONT] [-l]
#   -t: only these tests; -f: spryd's HTTP front, epoll (default) or uring
#   (SPRY_FRONT for selftests/lib.sh); -l: list
# Environment: OUT (build dir, default build/), SPRY_FRONT, per-test
# timeout from selftests/settings.
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
list=0
while [ $# -gt 0 ]; do
	case "$1" in
	-t) [ $# -ge 2 ] || { echo "run_tests.sh: -t needs a test name" >&2; exit 2; }
	    only+=("$2"); shift 2 ;;
	-f) [ $# -ge 2 ] || { echo "run_tests.sh: -f needs epoll or uring" >&2; exit 2; }
	    case "$2" in epoll|uring) ;; *) echo "run_tests.sh: -f: epoll or uring, not '$2'" >&2; exit 2 ;; esac
	    export SPRY_FRONT=$2; shift 2 ;;
	-l) list=1; shift ;;
	-h|--help) sed -n '3,14p' "$0"; exit 0 ;;
	*) echo "run_tests.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

tests=()
for f in "$OUT"/selftests/test_* "$SRC"/selftests/test_*.sh; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	name=$(basename "$f" .sh)
	if [ ${#only[@]} -gt 0 ]; then
		keep=0
		for o in "${only[@]}"; do [ "$o" = "$name" ] && keep=1; done
		[ $keep -eq 1 ] || continue
	fi
	tests+=("$f")
done

if [ $list -eq 1 ]; then
	for f in "${tests[@]}"; do basename "$f" .sh; done
	exit 0
fi

pass=0 fail=0 skip=0
echo "TAP version 13"
echo "1..${#tests[@]}"
n=0
for f in "${tests[@]}"; do
	n=$((n + 1))
	name=$(basename "$f" .sh)
	echo "# selftests: spry: $name"
	log=$(mktemp)
	start=$(date +%s)
	( cd "$SRC/selftests" && timeout --kill-after=10 "$timeout_s" "$f" ) >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
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
	rm -f "$log"
	case $rc in
	0)
		echo "ok $n selftests: spry: $name (${secs}s)"
		;;
	4)
		echo "ok $n selftests: spry: $name # SKIP (${secs}s)"
		# a test skipped as a whole counts once
		[ $((p + s + fl)) -eq 0 ] && s=1
		;;
	124|137)
		echo "not ok $n selftests: spry: $name # TIMEOUT ${timeout_s} seconds"
		fl=$((fl + 1))
		;;
	*)
		echo "not ok $n selftests: spry: $name # exit=$rc"
		# a failure the TAP points do not show (crash, bad exit)
		[ "$fl" -eq 0 ] && fl=1
		;;
	esac
	pass=$((pass + p)) skip=$((skip + s)) fail=$((fail + fl))
done
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
