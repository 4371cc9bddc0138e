#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spryd's two HTTP fronts in the same run: --front epoll (A) against
# --front uring (B), on the chain of 4 hops with 1 KiB bodies, wrk at
# concurrency 1 and 32, and the uring front with a second thread, the
# ring's submission thread (--sqpoll): E with it on spry's first CPU, F
# with it on wrk's first CPU (spry not placed: E only, --sqpoll any;
# FRONT_SQPOLL=0: neither); B sends the requests' descriptors as
# operations of its ring (--desc-send ring) and G is B with them sent by
# send() (--desc-send send), H likewise F (FRONT_DESC=0: no G, H); then
# large bodies (FRONT_BODY bytes, default
# 61440 and 262144, concurrency 1 and 8) received straight into the pool (spryd's
# default --body-direct) against copied there from the read buffers
# (--body-direct 0: set-ups C = epoll and D = uring), on both fronts.
#
#   bench/front_bench.sh [-r ROUNDS] [-d SECS]
#
# Starts two spry set-ups of this build (their own pins, control sockets,
# HTTP ports and function instances, in one private network namespace;
# spry placed as bench/compare.sh places it), then for each concurrency
# measures A, B, A, B ... for ROUNDS rounds (default 5) of SECS seconds
# (default 3, after BENCH_WARMUP seconds of warm-up): the machine is
# shared, so the two fronts see the same noise and the medians are
# compared.  Prints each round's requests/s, p50, p99, CPU us per request
# of spryd alone and of spryd with the functions (every thread, from
# /proc/PID/task/*/schedstat), then the medians and the ratios B/A.
# Needs root (loads the router).  Environment: OUT (build dir),
# BENCH_SPRY_CPUS, BENCH_WARMUP, BENCH_WRK_THREADS, FRONT_CONNS ("1 32"),
# FRONT_BODY ("61440 262144"; 0: no large-body rounds), FRONT_BODY_CONNS
# ("1 8"), FRONT_SQPOLL (1: set-ups E and F, the default; 0: not),
# FRONT_DESC (1: set-ups G and H, the default; 0: not).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
ROUNDS=5
SECS=3
die() { echo "front_bench: $*" >&2; exit 1; }
while getopts r:d:h o; do
	case $o in
	r) ROUNDS=$OPTARG ;;
	d) SECS=$OPTARG ;;
	*) echo "usage: bench/front_bench.sh [-r ROUNDS] [-d SECS]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "bad rounds '$ROUNDS'"
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "bad seconds '$SECS'"
[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$OUT/spry" "$OUT/spryd" "$OUT"/examples/{upper,reverse}; do
	[ -x "$b" ] || die "$b not built (make)"
done
for c in wrk curl python3 unshare; do
	command -v $c >/dev/null || die "$c not installed"
done

. "$SRC/bench/lib.sh"
bench_private_netns front_bench -r "$ROUNDS" -d "$SECS"

TMP=$(mktemp -d /tmp/spry-front-bench-XXXXXX) || die "mktemp failed"
PIDS=()
declare -A PIN SOCK PORT URL FNPIDS
cleanup() {
	local p x
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for x in a b c d e f g h; do
		[ -n "${PIN[$x]:-}" ] && "$OUT/spry" -P "${PIN[$x]}" unload >/dev/null 2>&1
		[ -n "${PIN[$x]:-}" ] && rm -rf "${PIN[$x]}"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SPRY_CPUS=$(bench_spry_cpus)
WRK_CPUS=$(bench_wrk_cpus "$SPRY_CPUS") || die "bad BENCH_SPRY_CPUS '$SPRY_CPUS'"
WRK_PIN=${WRK_CPUS:+taskset -c $WRK_CPUS}
BODY=${FRONT_BODY:-61440 262144}
[[ "$BODY" =~ ^[0-9]+( [0-9]+)*$ ]] || die "bad FRONT_BODY '$BODY'"
SQPOLL_ON=${FRONT_SQPOLL:-1}
[[ "$SQPOLL_ON" =~ ^[01]$ ]] || die "bad FRONT_SQPOLL '$SQPOLL_ON'"
DESC_ON=${FRONT_DESC:-1}
[[ "$DESC_ON" =~ ^[01]$ ]] || die "bad FRONT_DESC '$DESC_ON'"
declare -A FRONT=([a]=epoll [b]=uring [c]=epoll [d]=uring [e]=uring [f]=uring [g]=uring
	[h]=uring)
declare -A DIRECT=([a]=16384 [b]=16384 [c]=0 [d]=0 [e]=16384 [f]=16384 [g]=16384 [h]=16384)
declare -A PORTS=([a]=18700 [b]=18710 [c]=18720 [d]=18730 [e]=18740 [f]=18750 [g]=18760
	[h]=18770)
# the ring's thread: on spry's first CPU (E), on wrk's first (F); unplaced: any
SQ_E=${SPRY_CPUS:+${SPRY_CPUS%%[,-]*}}
SQ_F=${WRK_CPUS:+${WRK_CPUS%%[,-]*}}
declare -A EXTRA=([a]= [b]="--desc-send ring" [c]= [d]= [e]="--sqpoll ${SQ_E:-any} --desc-send ring"
	[f]="--sqpoll ${SQ_F:-any} --desc-send ring" [g]="--desc-send send"
	[h]="--sqpoll ${SQ_F:-any} --desc-send send")
declare -A LABEL=([a]=epoll [b]=uring [c]=epoll [d]=uring [e]="uring+sq@${SQ_E:-any}"
	[f]="uring+sq@${SQ_F:-any}" [g]=uring/send [h]="uring+sq@${SQ_F:-any}/send")
SMALL="a b"
[ "$DESC_ON" = 0 ] || SMALL="$SMALL g"
[ "$SQPOLL_ON" = 0 ] || SMALL="$SMALL e${SQ_F:+ f}"
[ "$DESC_ON" = 0 ] || [ "$SQPOLL_ON" = 0 ] || [ -z "$SQ_F" ] || SMALL="$SMALL h"
SETUPS=$SMALL
[ "$BODY" = 0 ] || SETUPS="$SMALL c d"
for x in $SETUPS; do
	PIN[$x]=/sys/fs/bpf/spry-front-$$-$x
	SOCK[$x]=$TMP/$x.sock
	PORT[$x]=${PORTS[$x]}
	URL[$x]=http://127.0.0.1:${PORT[$x]}/c4
	mkdir -p "$TMP/logs-$x"
	bench_spry_up "$OUT" "${PIN[$x]}" "${SOCK[$x]}" "${PORT[$x]}" "$SPRY_CPUS" \
		"$TMP/logs-$x" 4 --front "${FRONT[$x]}" --body-direct "${DIRECT[$x]}" ${EXTRA[$x]} ||
		die "$x: spry did not come up"
	FNPIDS[$x]=${SPRY_UP[4]}
	[ "$(curl -s --max-time 5 -d abcd "${URL[$x]}")" = ABCD ] ||
		die "$x (${FRONT[$x]}): c4 does not answer ABCD"
done

echo "front_bench: A = --front epoll, B = --front uring ${EXTRA[b]}$([ "$DESC_ON" = 0 ] ||
	echo ", G = B with --desc-send send")$([ "$SQPOLL_ON" = 0 ] ||
	echo ", E = uring ${EXTRA[e]}${SQ_F:+, F = uring ${EXTRA[f]}}")$([ "$DESC_ON" = 0 ] ||
	[ "$SQPOLL_ON" = 0 ] || [ -z "$SQ_F" ] || echo ", H = F with --desc-send send"); 4 hops," \
	"1 KiB, ${SECS} s per" \
	"point, $ROUNDS rounds; spry on CPU ${SPRY_CPUS:-(not placed)}, wrk on" \
	"${WRK_CPUS:-any CPU}; $(nproc) CPUs, kernel $(uname -r)" >&2
ALLFN=$(for x in $SETUPS; do echo "${FNPIDS[$x]}"; done)
echo "front_bench: others' load before: $(python3 "$SRC/bench/busy.py" 2 $ALLFN $$)" >&2
ROWS=$TMP/rounds.tsv
: >"$ROWS"
printf '%-6s %-5s %-5s %-12s %10s %9s %9s %12s %12s\n' size conns round set-up 'req/s' 'p50 us' \
	'p99 us' 'spryd us/req' 'all us/req'
# rounds SIZE CONNS SETUPS: ROUNDS rounds of each of SETUPS, interleaved
rounds() {
	local size=$1 conns=$2 setups=$3 c r x q sd all errs
	for c in $conns; do
		for r in $(seq "$ROUNDS"); do
			for x in $setups; do
				bench_wrk "${URL[$x]}" "$size" "$c" "$SECS" ${FNPIDS[$x]} ||
					die "$x: wrk failed"
				q=${BW[requests]}
				sd=$(awk -v ns="$BW_FIRST_NS" -v q="$q" 'BEGIN { printf "%.2f", q ? ns / 1e3 / q : 0 }')
				all=$(awk -v ns="$BW_NS" -v q="$q" 'BEGIN { printf "%.2f", q ? ns / 1e3 / q : 0 }')
				errs=$((BW[errors] + BW[non2xx]))
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "$x" \
					"${BW[rps]}" "${BW[p50_us]}" "${BW[p99_us]}" "$sd" "$all" "$errs" \
					"$size" >>"$ROWS"
				printf '%-6s %-5s %-5s %-12s %10.0f %9.0f %9.0f %12s %12s%s\n' "$size" "$c" \
					"$r" "${LABEL[$x]}/${DIRECT[$x]}" "${BW[rps]}" "${BW[p50_us]}" \
					"${BW[p99_us]}" "$sd" "$all" \
					"$([ "$errs" -eq 0 ] || echo "  ($errs errors)")"
			done
		done
	done
}
rounds 1024 "${FRONT_CONNS:-1 32}" "$SMALL"
if [ "$BODY" != 0 ]; then
	for size in $BODY; do rounds "$size" "${FRONT_BODY_CONNS:-1 8}" "a c b d"; done
fi
echo "front_bench: others' load after: $(python3 "$SRC/bench/busy.py" 2 $ALLFN $$)" >&2

# spryd's system calls per request at each concurrency (strace -c on
# spryd alone, 2 s of wrk; strace slows spryd down: counts, not times)
if command -v strace >/dev/null; then
	echo
	echo "spryd's system calls per request (strace -c -f, 2 s of wrk per point)"
	for c in ${FRONT_CONNS:-1 32}; do
		for x in $SMALL; do
			strace -c -f -o "$TMP/strace-$x-$c" -p "${FNPIDS[$x]%% *}" 2>/dev/null &
			st=$!
			sleep 0.5
			n=$($WRK_PIN wrk -t1 -c"$c" -d2s -s "$SRC/bench/post.lua" "${URL[$x]}" -- 1024 2>&1 |
				sed -n 's/^requests=\([0-9]*\).*/\1/p')
			kill -INT "$st" 2>/dev/null
			wait "$st" 2>/dev/null
			awk -v n="${n:-0}" -v c="$c" -v f="${LABEL[$x]}" '
				$NF == "total" { tot = $4; next }
				$1 ~ /^[0-9.]+$/ && NF >= 5 { calls[$NF] = $4 }
				END {
					line = ""
					for (k in calls) if (n && calls[k] / n >= 0.05)
						line = line sprintf(" %s=%.2f", k, calls[k] / n)
					printf "c=%s %-10s requests=%d total=%.2f%s\n", c, f, n,
						n ? tot / n : 0, line
				}' "$TMP/strace-$x-$c"
		done
	done
fi

python3 - "$ROWS" "${LABEL[e]}" "${LABEL[f]}" <<'PY'
import sys
allrows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
rows = [r for r in allrows if r[9] == "1024"]
big = [r for r in allrows if r[9] != "1024"]
cols = ["req/s", "p50 us", "p99 us", "spryd us/req", "all us/req"]
def med(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2 if v else 0.0
noise = lambda v: (max(v) - min(v)) / med(v) if v and med(v) else 0.0
print()
print("medians (A = epoll, B = uring)")
print("| conns | metric | epoll | uring | uring/epoll | noise of epoll |")
print("|---:|---|---:|---:|---:|---:|")
errs = 0
for c in sorted({r[0] for r in rows}, key=int):
    for i, name in enumerate(cols):
        a = [float(r[3 + i]) for r in rows if r[0] == c and r[2] == "a"]
        b = [float(r[3 + i]) for r in rows if r[0] == c and r[2] == "b"]
        ma, mb = med(a), med(b)
        print("| %s | %s | %.1f | %.1f | %.3fx | %.1f%% |" %
              (c, name, ma, mb, mb / ma if ma else float("nan"), 100 * noise(a)))
if any(r[2] == "g" for r in rows):
    print()
    print("medians, the uring front's descriptor sends: in its ring with the responses "
          "(--desc-send ring) against send() (--desc-send send); one front thread (B against "
          "G) and with the ring's thread on wrk's CPU (F against H)")
    print("| conns | metric | send (G) | ring (B) | B/G | noise of G | sq, send (H) | sq, ring (F) "
          "| F/H | noise of H |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in sorted({r[0] for r in rows}, key=int):
        for i, name in enumerate(cols):
            m = {x: [float(r[3 + i]) for r in rows if r[0] == c and r[2] == x] for x in "bgfh"}
            def pair(x, y):
                if not m[x] or not m[y]:
                    return "- | - | - | -"
                mx, my = med(m[x]), med(m[y])
                return "%.1f | %.1f | %.3fx | %.1f%%" % (my, mx, mx / my if my else float("nan"),
                                                        100 * noise(m[y]))
            print("| %s | %s | %s | %s |" % (c, name, pair("b", "g"), pair("f", "h")))
if any(r[2] in "ef" for r in rows):
    le, lf = sys.argv[2], sys.argv[3]
    print()
    print("medians, the uring front with its ring's submission thread (--sqpoll): one front "
          "thread (B) against two (E: %s, F: %s)" % (le, lf))
    print("| conns | metric | uring, 1 thread | %s | E/B | %s | F/B | noise of B |" % (le, lf))
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for c in sorted({r[0] for r in rows}, key=int):
        for i, name in enumerate(cols):
            m = {x: [float(r[3 + i]) for r in rows if r[0] == c and r[2] == x] for x in "bef"}
            mb = med(m["b"])
            cell = lambda x: ("%.1f | %.3fx" % (med(m[x]), med(m[x]) / mb if mb else float("nan"))
                              if m[x] else "- | -")
            print("| %s | %s | %.1f | %s | %s | %.1f%% |" %
                  (c, name, mb, cell("e"), cell("f"), 100 * noise(m["b"])))
for size in sorted({r[9] for r in big}, key=int):
    print()
    print("medians, %s-byte bodies: received straight into the pool (direct, spryd's "
          "default --body-direct 16384) or copied there (--body-direct 0)" % size)
    print("(paired: the median of each round's direct/copy, the two measured back to back)")
    print("| conns | metric | epoll copy | epoll direct | direct/copy | paired | uring copy | "
          "uring direct | direct/copy | paired | noise of epoll copy |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sz = [r for r in big if r[9] == size]
    def paired(c, i, x, y):
        v = {r[1]: float(r[3 + i]) for r in sz if r[0] == c and r[2] == x}
        w = {r[1]: float(r[3 + i]) for r in sz if r[0] == c and r[2] == y}
        return med([v[k] / w[k] for k in v if k in w and w[k]])
    for c in sorted({r[0] for r in sz}, key=int):
        for i, name in enumerate(cols):
            m = {}
            for x in "abcd":
                m[x] = [float(r[3 + i]) for r in sz if r[0] == c and r[2] == x]
            a, b, cc, d = (med(m[x]) for x in "abcd")
            print("| %s | %s | %.1f | %.1f | %.3fx | %.3fx | %.1f | %.1f | %.3fx | %.3fx | %.1f%% |" %
                  (c, name, cc, a, a / cc if cc else float("nan"), paired(c, i, "a", "c"),
                   d, b, b / d if d else float("nan"), paired(c, i, "b", "d"),
                   100 * noise(m["c"])))
errs = sum(int(r[8]) for r in allrows)
print()
print("errors (socket errors + non-2xx) in all rounds: %d" % errs)
PY
