#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A/B of two git revisions of spry on make bench's head point: 4 hops,
# 1 KiB, concurrency 32, spry placed as bench/compare.sh places it.
#
#   bench/ab.sh [-r ROUNDS] [-d SECS] BASE [NEW]
#
# Builds BASE (A) and NEW (B, default HEAD) each in its own temporary git
# worktree with an out-of-tree build directory, starts both (their own
# pins, control sockets and HTTP ports, in one private network namespace),
# then measures A, B, A, B ... for ROUNDS rounds (default 5) of SECS
# seconds each (default 3, after BENCH_WARMUP seconds of warm-up, 1), and
# prints each round's requests/s, p50, p99 and CPU us/request (every
# thread of spryd and the functions, as in results.md), then the medians,
# the ratios B/A, the noise (the spread of A's rounds: (max - min) /
# median) and a verdict: "no loss beyond noise", or "loss" when B's
# requests/s fall below A's by more than the noise of A's requests/s, or
# its CPU per request rises above A's by more than theirs.  Only committed
# changes count: NEW is a revision, not the working tree.
# Needs root (loads the router).  Uses bench/lib.sh of this tree.
# Environment: BENCH_SPRY_CPUS (placement, as compare.sh), BENCH_WARMUP,
# BENCH_WRK_THREADS, AB_KEEP=1 (keep the temporary directory), AB_CACHE=DIR
# (build each revision once into DIR/REV, its worktree DIR/REV-src, and
# reuse it in later runs: bisecting; remove the worktrees with
# `git worktree remove` when done), AB_BUILD_ONLY=1 (with AB_CACHE: build
# BASE and NEW and stop, so that the build can run under the bench lock's
# shared hold and the measurement alone under its exclusive one).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=5
SECS=3
usage() {
	echo "usage: bench/ab.sh [-r ROUNDS] [-d SECS] BASE [NEW]   (NEW: HEAD)" >&2
	exit 2
}
die() { echo "ab: $*" >&2; exit 1; }

if [ "${1:-}" = --measure ]; then	# the second half, in the namespace
	MEASURE=1
	shift
	TMP=$1 ROUNDS=$2 SECS=$3 NAME_A=$4 NAME_B=$5
else
	MEASURE=
	while getopts r:d:h o; do
		case $o in
		r) ROUNDS=$OPTARG ;;
		d) SECS=$OPTARG ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -ge 1 ] && [ $# -le 2 ] || usage
	BASE=$1
	NEW=${2:-HEAD}
fi
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "bad rounds '$ROUNDS'"
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "bad seconds '$SECS'"
[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"

if [ -z "$MEASURE" ]; then
	for c in git make wrk python3 unshare; do
		command -v $c >/dev/null || die "$c not installed"
	done
	REV_A=$(git -C "$SRC" rev-parse --verify -q "$BASE^{commit}") || die "no revision '$BASE'"
	REV_B=$(git -C "$SRC" rev-parse --verify -q "$NEW^{commit}") || die "no revision '$NEW'"
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf || die "no bpffs"
	TMP=$(mktemp -d /tmp/spry-ab-XXXXXX) || die "mktemp failed"
	cleanup() {
		local x
		for x in a b; do
			[ -d "$TMP/src-$x" ] && git -C "$SRC" worktree remove --force "$TMP/src-$x"
		done
		git -C "$SRC" worktree prune
		if [ -n "${AB_KEEP:-}" ]; then
			echo "ab: kept $TMP" >&2
		else
			rm -rf "$TMP"
		fi
	}
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	[ -z "${AB_BUILD_ONLY:-}" ] || [ -n "${AB_CACHE:-}" ] || die "AB_BUILD_ONLY needs AB_CACHE"
	for x in a b; do
		rev=$REV_A
		[ $x = b ] && rev=$REV_B
		if [ -n "${AB_CACHE:-}" ]; then
			mkdir -p "$AB_CACHE" || die "cannot make $AB_CACHE"
			if [ ! -x "$AB_CACHE/$rev/spryd" ]; then
				echo "ab: building $(git -C "$SRC" log -1 --format='%h %s' "$rev" | cut -c1-60)" \
					"in $AB_CACHE/$rev" >&2
				[ -d "$AB_CACHE/$rev-src" ] ||
					git -C "$SRC" worktree add -q --detach "$AB_CACHE/$rev-src" "$rev" ||
					die "git worktree add $rev failed"
				make -s -C "$AB_CACHE/$rev-src" O="$AB_CACHE/$rev" -j"$(nproc)" all \
					>"$AB_CACHE/$rev.log" 2>&1 ||
					die "build of $rev failed: $(tail -5 "$AB_CACHE/$rev.log")"
			fi
			ln -s "$AB_CACHE/$rev" "$TMP/build-$x"
			continue
		fi
		echo "ab: building $(git -C "$SRC" log -1 --format='%h %s' "$rev" | cut -c1-60)" \
			"in $TMP/build-$x" >&2
		git -C "$SRC" worktree add -q --detach "$TMP/src-$x" "$rev" ||
			die "git worktree add $rev failed"
		make -s -C "$TMP/src-$x" O="$TMP/build-$x" -j"$(nproc)" all \
			>"$TMP/make-$x.log" 2>&1 || die "build of $rev failed: $(tail -5 "$TMP/make-$x.log")"
	done
	[ -z "${AB_BUILD_ONLY:-}" ] || exit 0
	unshare -n "$BASH" "$0" --measure "$TMP" "$ROUNDS" "$SECS" \
		"A = $(git -C "$SRC" log -1 --format=%h "$REV_A") ($BASE)" \
		"B = $(git -C "$SRC" log -1 --format=%h "$REV_B") ($NEW)"
	exit $?
fi

# --- in the private network namespace: both revisions up, then the rounds
ip link set lo up || die "cannot bring lo up"
ulimit -n 65536 2>/dev/null
. "$SRC/bench/lib.sh"
PIDS=()
declare -A PIN SOCK PORT URL FNPIDS
cleanup() {
	local p x
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for x in a b; do
		[ -n "${PIN[$x]:-}" ] && "$TMP/build-$x/spry" -P "${PIN[$x]}" unload >/dev/null 2>&1
		[ -n "${PIN[$x]:-}" ] && rm -rf "${PIN[$x]}"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SPRY_CPUS=$(bench_spry_cpus)
WRK_CPUS=$(bench_wrk_cpus "$SPRY_CPUS") || die "bad BENCH_SPRY_CPUS '$SPRY_CPUS'"
WRK_PIN=${WRK_CPUS:+taskset -c $WRK_CPUS}
for x in a b; do
	PIN[$x]=/sys/fs/bpf/spry-ab-$$-$x
	SOCK[$x]=$TMP/$x.sock
	PORT[$x]=$([ $x = a ] && echo 18600 || echo 18610)
	URL[$x]=http://127.0.0.1:${PORT[$x]}/c4
	mkdir -p "$TMP/logs-$x"
	bench_spry_up "$TMP/build-$x" "${PIN[$x]}" "${SOCK[$x]}" "${PORT[$x]}" "$SPRY_CPUS" \
		"$TMP/logs-$x" 4 || die "$x: spry did not come up"
	FNPIDS[$x]=${SPRY_UP[4]}
	[ "$(curl -s --max-time 5 -d abcd "${URL[$x]}")" = ABCD ] ||
		die "$x: c4 does not answer ABCD"
done

echo "ab: 4 hops, 1 KiB, c=32, ${SECS} s per point, $ROUNDS rounds;" \
	"spry on CPU ${SPRY_CPUS:-(not placed)}, wrk on ${WRK_CPUS:-any CPU}" >&2
echo "ab: others' load before: $(python3 "$SRC/bench/busy.py" 2 ${FNPIDS[a]} ${FNPIDS[b]} $$)" >&2
ROWS=$TMP/rounds.tsv
: >"$ROWS"
printf '%-5s %-3s %10s %9s %9s %11s\n' round rev 'req/s' 'p50 us' 'p99 us' 'CPU us/req'
for r in $(seq "$ROUNDS"); do
	for x in a b; do
		bench_wrk "${URL[$x]}" 1024 32 "$SECS" ${FNPIDS[$x]} || die "$x: wrk failed"
		cpu=$(awk -v ns="$BW_NS" -v q="${BW[requests]}" 'BEGIN { printf "%.2f", q ? ns / 1e3 / q : 0 }')
		errs=$((BW[errors] + BW[non2xx]))
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$x" "${BW[rps]}" "${BW[p50_us]}" \
			"${BW[p99_us]}" "$cpu" "$errs" >>"$ROWS"
		printf '%-5s %-3s %10.0f %9.0f %9.0f %11s%s\n' "$r" "${x^^}" "${BW[rps]}" \
			"${BW[p50_us]}" "${BW[p99_us]}" "$cpu" \
			"$([ "$errs" -eq 0 ] || echo "  ($errs errors)")"
	done
done
echo "ab: others' load after: $(python3 "$SRC/bench/busy.py" 2 ${FNPIDS[a]} ${FNPIDS[b]} $$)" >&2

python3 - "$ROWS" "$NAME_A" "$NAME_B" <<'EOF'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
cols = ["req/s", "p50 us", "p99 us", "CPU us/req"]
val = {x: [[float(r[2 + i]) for r in rows if r[1] == x] for i in range(4)] for x in "ab"}
def med(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2
noise = lambda v: (max(v) - min(v)) / med(v) if med(v) else 0.0
print()
print("%s, %s" % (sys.argv[2], sys.argv[3]))
print("%-11s %10s %10s %7s %13s" % ("median", "A", "B", "B/A", "noise of A"))
ratio = {}
for i, c in enumerate(cols):
    a, b = med(val["a"][i]), med(val["b"][i])
    ratio[c] = b / a if a else float("nan")
    print("%-11s %10.1f %10.1f %6.3fx %12.1f%%" % (c, a, b, ratio[c], 100 * noise(val["a"][i])))
why = []
n_rps, n_cpu = noise(val["a"][0]), noise(val["a"][3])
if ratio["req/s"] < 1 - n_rps:
    why.append("req/s B/A %.3f below 1 - %.3f" % (ratio["req/s"], n_rps))
if ratio["CPU us/req"] > 1 + n_cpu:
    why.append("CPU us/req B/A %.3f above 1 + %.3f" % (ratio["CPU us/req"], n_cpu))
errs = sum(int(r[6]) for r in rows)
if errs:
    why.append("%d errors" % errs)
print("verdict: " + ("loss (" + "; ".join(why) + ")" if why else "no loss beyond noise"))
EOF
