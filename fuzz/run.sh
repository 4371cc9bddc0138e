#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Run every fuzzer of $OUT/fuzz (built by `make fuzz`, listed in Kbuild's
# fuzzers-y) for SECONDS each (default 20), printing TAP 13: one point per
# fuzzer.
#
#   fuzz/run.sh [SECONDS] [NAME...]
#
# For each fuzzer NAME:
#   1. the regression inputs fuzz/regress/NAME/* (crashes found before)
#      are replayed: libFuzzer runs the files it is given, once each;
#   2. it fuzzes for SECONDS from a temporary copy of fuzz/corpus/NAME/
#      (new inputs do not dirty the repository), with -rss_limit_mb=2048
#      and -timeout=5.
# ok: both ran without a crash, leak, timeout or OOM.  not ok: a diag
# line gives the input's path (kept under $OUT/fuzz/artifacts/NAME/) and
# its base64; the report's last lines follow as diag lines.
#
# Environment: OUT or SPRY_OUT (build dir, default build/); SPRY_FUZZ_SUITE
# set (selftests/test_fuzz.sh): a fuzzer with NAME-suite-secs in Kbuild
# (a small input space its seeds and a few seconds cover) fuzzes at most
# that long.  Exit 0 all passed, 1 any failed, 4 all skipped.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${SPRY_OUT:-${OUT:-$SRC/build}}
SECS=${1:-20}
[ $# -gt 0 ] && shift
case $SECS in
''|*[!0-9]*) echo "run.sh: SECONDS must be a number, not '$SECS'" >&2; exit 2 ;;
esac

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	# the list of Kbuild, in its order
	mapfile -t names < <(sed -n 's/^fuzzers-y[[:space:]]*+=[[:space:]]*//p' "$SRC/Kbuild" | tr ' \t' '\n\n' | sed '/^$/d')
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:symbolize=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TMP=$(mktemp -d /tmp/spry-fuzz-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

pass=0 fail=0 skip=0 n=0
echo "TAP version 13"
echo "1..${#names[@]}"

# not_ok NAME LOG ARTIFACT: the failure, with the input that caused it
not_ok() {
	local name=$1 log=$2 art=$3
	fail=$((fail + 1))
	echo "not ok $n - $name"
	if [ -n "$art" ] && [ -f "$art" ]; then
		echo "# crash input: $art ($(stat -c %s "$art") bytes)"
		echo "# base64: $(base64 -w0 < "$art")"
	else
		echo "# no crash input was written (see the report)"
	fi
	grep -E 'ERROR|SUMMARY|#[0-9]+ |fuzz_[a-z]+: |runtime error|in LLVMFuzzerTestOneInput|^ +#[0-9]+ 0x' "$log" |
		grep -v 'INFO:' | head -40 | sed 's/^/# /'
}

for name in "${names[@]}"; do
	n=$((n + 1))
	bin=$OUT/fuzz/$name
	if [ ! -x "$bin" ]; then
		skip=$((skip + 1))
		echo "ok $n - $name # SKIP $bin not built (make fuzz)"
		continue
	fi
	arts=$OUT/fuzz/artifacts/$name
	mkdir -p "$arts"
	log=$TMP/$name.log

	# 1. regressions
	reg=()
	if [ -d "$SRC/fuzz/regress/$name" ]; then
		for f in "$SRC/fuzz/regress/$name"/*; do
			[ -f "$f" ] && reg+=("$f")
		done
	fi
	if [ ${#reg[@]} -gt 0 ]; then
		if ! timeout --kill-after=10 $((30 + 10 * ${#reg[@]})) \
			"$bin" -rss_limit_mb=2048 -timeout=5 "${reg[@]}" >"$log" 2>&1; then
			# the file being run when it died is the last "Running:"
			art=$(sed -n 's/^Running: //p' "$log" | tail -1)
			echo "# $name: a regression input fails again"
			not_ok "$name" "$log" "$art"
			continue
		fi
	fi

	# 2. fuzzing from a copy of the corpus, for SECS (or its suite share)
	secs=$SECS
	if [ -n "${SPRY_FUZZ_SUITE:-}" ]; then
		cap=$(sed -n "s/^$name-suite-secs[[:space:]]*:=[[:space:]]*\([0-9][0-9]*\)[[:space:]]*$/\1/p" "$SRC/Kbuild")
		[ -n "$cap" ] && [ "$cap" -lt "$secs" ] && secs=$cap
	fi
	corpus=$TMP/$name.corpus
	mkdir -p "$corpus"
	[ -d "$SRC/fuzz/corpus/$name" ] && cp "$SRC/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
	before=$(ls "$arts" | wc -l)
	timeout --kill-after=10 $((secs + 120)) "$bin" -max_total_time="$secs" \
		-rss_limit_mb=2048 -timeout=5 -print_final_stats=1 \
		-artifact_prefix="$arts/" "$corpus" >"$log" 2>&1
	rc=$?
	stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 |
		sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/')
	eps=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -1)
	runs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -1)
	if [ $rc -eq 0 ] && [ -n "$stats" ]; then
		pass=$((pass + 1))
		echo "ok $n - $name (${secs}s, ${runs:-?} runs, ${eps:-?} exec/s, $stats${reg:+, ${#reg[@]} regressions replayed})"
	else
		art=$(ls -t "$arts" 2>/dev/null | head -1)
		[ "$(ls "$arts" | wc -l)" -gt "$before" ] && art=$arts/$art || art=
		echo "# $name: exit status $rc"
		not_ok "$name" "$log" "$art"
	fi
done

echo "# $pass passed, $fail failed, $skip skipped"
[ $fail -gt 0 ] && exit 1
[ $pass -eq 0 ] && [ $skip -gt 0 ] && exit 4
exit 0
