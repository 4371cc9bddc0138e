#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spry's selftests as a target of the kernel's own kselftest framework
# (docs/KSELFTEST.md): from Debian's linux-source-6.1 tarball only the
# framework (tools/testing/selftests: Makefile, lib.mk, kselftest/,
# run_kselftest.sh, kselftest_install.sh, kselftest.h; scripts/
# subarch.include, which that Makefile includes) goes into a temporary
# directory; this directory is copied in as the `spry` target, built and
# installed with the kernel's make targets (O= and INSTALL_PATH=), `clean`
# with O= is checked to end and to keep O; then the installed tests run
# with run_kselftest.sh -c spry with spry's tree hidden (a tmpfs over it in
# a private mount namespace, SPRY_SRC unset) and must all pass.
#
# The installed run repeats the whole suite, so it runs once: in the plain
# build (`make check`), skipped under ASan+UBSan (`make SAN=1 check`).
# Run by run_tests.sh (SPRY_KSFT_LOG set), the installed run's output and,
# after it, a line "# time: NAME Ns" per test go to SPRY_KSFT_LOG too:
# run_tests.sh reports each installed test from it instead of running the
# test a second time.

. "$(dirname "$0")/lib.sh"

KSRC_TAR=/usr/src/linux-source-6.1.tar.xz
KVER=linux-source-6.1

[ "$SPRY_INSTALLED" -eq 0 ] || tap_skip_all "needs spry's source tree"
[ "$(id -u)" -eq 0 ] || tap_skip_all "needs root (the installed tests do)"
[ -r "$KSRC_TAR" ] || tap_skip_all "$KSRC_TAR missing (apt-get install $KVER)"
for c in make cc clang bpftool rsync perl xz unshare readelf; do
	command -v $c >/dev/null || tap_skip_all "$c not installed"
done
[ -x "$SPRY" ] || tap_skip_all "$SPRY not built"
if readelf -d "$SPRY" | grep -q 'libasan'; then
	tap_skip_all "sanitizer build: the installed suite runs once, in make check"
fi

# A clean make: none of the make that runs us (make check's -j, SAN=1, O=)
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES SAN O V OUTPUT INSTALL_PATH

tap_plan 6
T=$(mktemp -d /tmp/spry-test-kselftest.XXXXXX) || tap_skip_all "mktemp failed"
trap 'rm -rf "$T"' EXIT
# test_isolation.sh runs the installed examples as other users
chmod 0755 "$T"
KST=$T/$KVER/tools/testing/selftests
INST=$T/install
OBJ=$T/obj

tar -xJf "$KSRC_TAR" -C "$T" \
	$KVER/tools/testing/selftests/Makefile \
	$KVER/tools/testing/selftests/lib.mk \
	$KVER/tools/testing/selftests/kselftest \
	$KVER/tools/testing/selftests/run_kselftest.sh \
	$KVER/tools/testing/selftests/kselftest_install.sh \
	$KVER/tools/testing/selftests/kselftest.h \
	$KVER/scripts/subarch.include 2>"$T/tar.log"
tap_ok $? "the kselftest framework extracted from $KSRC_TAR" ||
	{ tap_diag "$(cat "$T/tar.log")"; tap_finish; }

tap_diag "extracted in ${SECONDS}s"
cp -r "$SPRY_SELFTESTS" "$KST/spry"
make -C "$KST" -j"$(nproc)" TARGETS=spry SPRY_SRC="$SPRY_SRC" O="$OBJ" \
	install INSTALL_PATH="$INST" >"$T/install.log" 2>&1
st=$?
tap_diag "built and installed in ${SECONDS}s"
# every test but those needing spry's tree is listed, each once
tree_only=$(sed -n 's/^SPRY_TREE_ONLY := //p' "$SPRY_SELFTESTS/Makefile")
want=$(cd "$SPRY_SELFTESTS" && for f in test_*.c test_*.sh; do
	case " $tree_only " in *" $f "*) continue ;; esac
	echo "spry:${f%.c}"
done | sort)
have=$(sort "$INST/kselftest-list.txt" 2>/dev/null)
[ $st -eq 0 ] && [ -n "$want" ] && [ "$want" = "$have" ] && [ -x "$INST/run_kselftest.sh" ]
tap_ok $? "make TARGETS=spry O=DIR install INSTALL_PATH=DIR: $(echo "$have" | wc -l) tests listed" || {
	tap_diag "make: exit $st; want/have list:"
	tap_diag "$(diff <(echo "$want") <(echo "$have"))"
	tap_diag "$(tail -40 "$T/install.log")"
}

# Nothing installed names spry's tree or the build (text files: the
# programs' debug info keeps their source paths).
refs=$(grep -rIl -e "$SPRY_SRC" -e "$OBJ" "$INST" 2>/dev/null)
[ -z "$refs" ] && [ -s "$INST/spry/spry-bins" ] && [ -d "$INST/spry/example-data" ]
tap_ok $? "the installed tests name neither spry's tree nor the build" ||
	tap_diag "naming them: $refs"

# The kernel's clean passes O= down: it must remove only spry's outputs in
# it, and end.
touch "$OBJ/keep"
timeout 120 make -C "$KST" TARGETS=spry O="$OBJ" clean >"$T/clean.log" 2>&1
st=$?
[ $st -eq 0 ] && [ -f "$OBJ/keep" ] && [ ! -e "$OBJ/kselftest/spry/spry-build" ] &&
	[ ! -e "$OBJ/kselftest/spry/spry" ] && [ -d "$KST/spry" ]
tap_ok $? "make TARGETS=spry O=DIR clean ends, removes spry's outputs, keeps DIR" || {
	tap_diag "make: exit $st"
	tap_diag "$(tail -20 "$T/clean.log")"
}

# The installed copy alone: the kernel tree and its build gone, spry's tree
# and build hidden under an empty tmpfs, no SPRY_* in the environment.
rm -rf "${T:?}/$KVER" "$OBJ"
hide=()
for d in "$SPRY_SRC" "$SPRY_OUT"; do
	d=$(realpath "$d")
	case "$T/" in "$d"/*) tap_diag "$T is inside $d: not hidden"; continue ;; esac
	for h in "${hide[@]}"; do
		case "$d/" in "$h"/*) continue 2 ;; esac
	done
	hide+=("$d")
done
cd "$T" || exit
# appended: kselftest's runner reopens /dev/stdout for the tests' output
: >"$T/run.log"
# each installed test's time, read from run.log as the runner writes it
# (its own output has none): "NAME SECONDS" lines; it ends after the run,
# or with this test
perl -e '($f, $done, $parent) = @ARGV; open(F, "<", $f) or die "$f: $!\n"; $| = 1;
	while (kill(0, $parent)) {
		$fin = -e $done;
		while (defined($l = <F>)) {
			$part .= $l;
			next unless $part =~ /\n\z/;
			($l, $part) = ($part, "");
			if ($l =~ m{^# selftests: spry: (\S+)$}) { $t{$1} = time }
			elsif ($l =~ m{^(?:not )?ok \d+ selftests: spry: (\S+)} && defined $t{$1}) {
				print "$1 ", time - $t{$1}, "\n";
			}
		}
		last if $fin;
		select(undef, undef, undef, 0.2);
		seek(F, 0, 1);
	}' "$T/run.log" "$T/run.done" $$ >"$T/times" &
TIMES=$!
env -u SPRY_SRC -u SPRY_OUT -u SPRY_TEST_NETNS unshare -m bash -c '
	inst=$1
	shift
	for d; do
		mount -t tmpfs -o size=1m,mode=0755 spry-hidden "$d" || exit 125
	done
	exec "$inst/run_kselftest.sh" -c spry' hide "$INST" "${hide[@]}" >>"$T/run.log" 2>&1
st=$?
touch "$T/run.done"
wait $TIMES
if [ -n "${SPRY_KSFT_LOG:-}" ]; then
	{ cat "$T/run.log"; sed 's/^\(.*\) \([0-9]*\)$/# time: \1 \2s/' "$T/times"; } >"$SPRY_KSFT_LOG"
fi
tap_diag "installed suite done in ${SECONDS}s: its tests' own points:" \
	"$(grep -cE '^# ok [0-9]+ ' "$T/run.log") ok," \
	"$(grep -cE '^# ok [0-9]+ .*# SKIP' "$T/run.log") of them skipped," \
	"$(grep -cE '^# not ok [0-9]+ ' "$T/run.log") not ok"
n=$(echo "$have" | wc -l)
n_ok=$(grep -cE '^ok [0-9]+ selftests: spry: ' "$T/run.log")
n_notok=$(grep -cE '^not ok [0-9]+ selftests: spry: ' "$T/run.log")
grep -E '^(not )?ok [0-9]+ selftests: spry: ' "$T/run.log" | sed 's/^/# /'
[ $st -eq 0 ] && [ "$n_ok" -eq "$n" ] && [ "$n_notok" -eq 0 ] &&
	grep -qx "1\.\.$n" "$T/run.log"
tap_ok $? "run_kselftest.sh -c spry from the install: $n_ok of $n ok, $n_notok not ok" || {
	tap_diag "run_kselftest.sh: exit $st"
	if [ -n "${SPRY_KSFT_LOG:-}" ]; then
		tap_diag "each installed test's output: under its own result (run_tests.sh)"
	else
		tap_diag "its output:"
		sed 's/^/# /' "$T/run.log"
	fi
}

# A test that skips because a program or file it runs was not found next
# to it is a broken install, not a skip.
lost=$(grep -E '^# .*# SKIP .*(not built|not found|missing|No such file)' "$T/run.log")
[ -z "$lost" ]
tap_ok $? "no installed test skipped for a missing program or file" || tap_diag "$lost"

tap_finish
