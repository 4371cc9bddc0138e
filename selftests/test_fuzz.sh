#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The libFuzzer harnesses (fuzz/, Kbuild fuzzers-y): each replays its
# regression inputs (fuzz/regress/NAME/) and fuzzes for a short bounded
# time from its seed corpus: fuzz/run.sh ${SPRY_FUZZ_SECONDS:-4} (CI's share,
# which keeps `.ci/run` under 20 minutes; fuzz/run.sh alone takes longer
# runs).  Prints
# run.sh's TAP (one point per fuzzer).  Needs no privilege.
#
# Skipped when clang's libFuzzer runtime is absent (then `make selftests`
# does not build the fuzzers either).

. "$(dirname "$0")/lib.sh"

CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null 2>&1 || tap_skip_all "$CLANG not installed"
rt=$("$CLANG" -print-file-name="libclang_rt.fuzzer-$(uname -m).a" 2>/dev/null)
case $rt in
/*) [ -f "$rt" ] || tap_skip_all "clang's libFuzzer runtime $rt missing" ;;
*) tap_skip_all "clang's libFuzzer runtime (libclang_rt.fuzzer) not installed" ;;
esac
ls "$SPRY_OUT"/fuzz/fuzz_* >/dev/null 2>&1 ||
	tap_skip_all "no fuzzers in $SPRY_OUT/fuzz (make fuzz)"

# SPRY_FUZZ_SUITE: the fuzzers of a small input space (Kbuild's
# NAME-suite-secs) take only their few seconds
SPRY_FUZZ_SUITE=1 exec "$SPRY_SRC/fuzz/run.sh" "${SPRY_FUZZ_SECONDS:-4}"
