#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# K-Means iteration time over P cloud processes (examples/kmeans,
# docs/PROCESS.md "Workloads"): each process holding its shard of the
# points in its state and exchanging the partial sums through mailboxes,
# against its baseline in the same run, the same algorithm keeping its
# state in Redis (bench/kmeans_redis: shard, assignments and centroids in
# Debian's redis-server on loopback, started here without persistence, the
# partial sums through Redis lists).  Both are apps of the same spryd,
# invoked the same way: for each iteration, `step` on the P processes at
# once over the HTTP front (selftests/kmeans_client.py), the time from the
# first request to the last answer.  Rounds alternate spry and Redis; each
# loads the data set again and iterates until nothing changes (at most
# BENCH_KM_ITERS); every round's transcript must equal `kmeans reference`
# byte for byte.  Prints the table with the ratios; writes
# bench/results/kmeans.md.
# Needs root (loads the router) and redis-server; private network
# namespace, pins, socket.
# Environment: OUT (build dir), BENCH_KM_ROUNDS (per system and data set,
# default 5), BENCH_KM_ITERS (default 20), BENCH_KM_SETS ("N:D:K:P ...",
# default "20000:4:8:2 200000:4:16:2 200000:2:2:2 200000:4:16:4": the third
# one light on arithmetic, where moving the state dominates), BENCH_RESULTS.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
ROUNDS=${BENCH_KM_ROUNDS:-5}
ITERS=${BENCH_KM_ITERS:-20}
SETS=${BENCH_KM_SETS:-20000:4:8:2 200000:4:16:2 200000:2:2:2 200000:4:16:4}
RES=${BENCH_RESULTS:-$SRC/bench/results}
SEED=7
SPRY=$OUT/spry
SPRYD=$OUT/spryd
KM=$OUT/examples/kmeans
KR=$OUT/bench/kmeans_redis
CLIENT=$SRC/selftests/kmeans_client.py
PORT=18543

die() { echo "kmeans_bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$KM" "$KR"; do
	[ -x "$b" ] || die "$b not built (make bench-progs)"
done
command -v python3 >/dev/null || die "python3 not installed"
command -v redis-server >/dev/null || die "redis-server not installed (scripts/install-deps.sh)"
. "$SRC/bench/lib.sh"
bench_private_netns kmeans_bench "$@"

bench_spry_env kmeans_bench
RPORT=$((20000 + RANDOM % 20000))
bench_start "$TMP/redis.log" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$TMP" --logfile "$TMP/redis.log"
bench_wait_port "$RPORT" || die "redis-server did not start: $(cat "$TMP/redis.log")"

# one app per system and P: send-to-all reaches exactly the app's processes
PS=$(for s in $SETS; do echo "${s##*:}"; done | sort -un)
for p in $PS; do
	"$SPRY" -P "$PIN" app add km$p fns load,step,show exec "$KM" idle 0 create manual \
		max $p state-size $((64 << 20)) >/dev/null || die "app add km$p failed"
	"$SPRY" -P "$PIN" app add kr$p fns load,step,show exec "$KR" idle 0 create manual \
		max $p args --redis "$RPORT" >/dev/null || die "app add kr$p failed"
done
bench_start "$TMP/spryd.log" "$SPRYD" -P "$PIN" -s "$SOCK" --http 127.0.0.1:$PORT
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || die "spryd did not start: $(cat "$TMP/spryd.log")"
for p in $PS; do
	for app in km$p kr$p; do
		for id in $(seq "$p"); do
			for i in $(seq 100); do
				"$SPRY" -P "$PIN" process create $app id "$id" sock "$SOCK" \
					>/dev/null 2>&1 && break
				sleep 0.05
			done
		done
	done
done
bench_wait_port $PORT || die "no HTTP front"

# run APP P N D K ROUNDS TIMES: the transcript into $TMP/out, times into TIMES
run() {
	python3 "$CLIENT" run "http://127.0.0.1:$PORT" "$1" "$(seq -s, "$2")" "$3" "$4" "$5" \
		$SEED $ITERS --rounds "$6" --times "$7" >"$TMP/out" 2>"$TMP/drv.log" ||
		die "$1: $(cat "$TMP/drv.log")"
}

echo "kmeans_bench: data sets $SETS, $ROUNDS rounds per system" >&2
: >"$TMP/rows"
i=0
for s in $SETS; do
	i=$((i + 1))
	IFS=: read -r n d k p <<<"$s"
	"$KM" reference "$n" "$d" "$k" $SEED $ITERS >"$TMP/ref" || die "reference $s failed"
	run km$p "$p" "$n" "$d" "$k" 1 "$TMP/warm"	# start the processes, load
	run kr$p "$p" "$n" "$d" "$k" 1 "$TMP/warm"
	: >"$TMP/t.spry.$i"
	: >"$TMP/t.redis.$i"
	for r in $(seq "$ROUNDS"); do
		run km$p "$p" "$n" "$d" "$k" 1 "$TMP/t1"
		cmp -s "$TMP/out" "$TMP/ref" || die "spry, $s: the transcript differs from the reference"
		cat "$TMP/t1" >>"$TMP/t.spry.$i"
		run kr$p "$p" "$n" "$d" "$k" 1 "$TMP/t1"
		cmp -s "$TMP/out" "$TMP/ref" || die "redis, $s: the transcript differs from the reference"
		cat "$TMP/t1" >>"$TMP/t.redis.$i"
	done
	echo "$n $d $k $p $(grep -c '^iter' "$TMP/ref") $TMP/t.spry.$i $TMP/t.redis.$i" >>"$TMP/rows"
done

python3 - "$TMP/rows" "$TMP/kmeans.tsv" >"$TMP/table.md" <<'PY' || die "the table failed"
import sys
def stats(path):
    v = sorted(float(l.split()[2]) for l in open(path) if l.strip())
    return v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))], sum(v) / len(v), len(v)
print("| points | D | K | P | iterations | spry p50 | spry p99 | spry mean | Redis p50 | Redis p99 | Redis mean | p50 Redis/spry | mean Redis/spry |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
tsv = open(sys.argv[2], "w")
tsv.write("# set\tspry_p50_ms\tredis_p50_ms\tspry_mean_ms\tredis_mean_ms\n")
for line in open(sys.argv[1]):
    n, d, k, p, its, ts, tr = line.split()
    s50, s99, sm, cnt = stats(ts)
    r50, r99, rm, _ = stats(tr)
    us = lambda x: "%.0f us" % x if x < 10000 else "%.1f ms" % (x / 1000)
    print("| %s | %s | %s | %s | %s x %d | %s | %s | %s | %s | %s | %s | %.2f | %.2f |" %
          (n, d, k, p, its, cnt // int(its), us(s50), us(s99), us(sm), us(r50), us(r99), us(rm),
           r50 / s50, rm / sm))
    tsv.write("%s pts D%s K%s P%s\t%.3f\t%.3f\t%.3f\t%.3f\n" %
              (n, d, k, p, s50 / 1000, r50 / 1000, sm / 1000, rm / 1000))
PY
cat "$TMP/table.md"

mkdir -p "$RES"
cp "$TMP/kmeans.tsv" "$RES/kmeans.tsv"
plot=
if command -v gnuplot >/dev/null; then
	cat >"$TMP/plot.gp" <<EOF
set terminal pngcairo size 1000,480 noenhanced
set output "$RES/kmeans.png"
set title "K-Means: time per iteration (p50), P processes, same run"
set ylabel "ms per iteration"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key outside top center horizontal
set xrange [-0.6:]
set yrange [0:]
set grid ytics
set datafile separator "\t"
plot "$RES/kmeans.tsv" using 2:xtic(1) title "spry: state in the process, mailboxes", \\
     "" using 3 title "Redis: state in redis-server, lists"
EOF
	if gnuplot "$TMP/plot.gp" 2>"$TMP/gnuplot.err"; then
		plot=1
	else
		echo "kmeans_bench: gnuplot failed: $(cat "$TMP/gnuplot.err")" >&2
	fi
fi
{
	echo "# Cloud processes: K-Means iteration time, process state and mailboxes against Redis"
	echo
	echo "Generated by bench/kmeans_bench.sh ($(date -u '+%Y-%m-%d %H:%M UTC'))."
	echo "examples/kmeans (each of P processes holds its shard of the points in its"
	echo "state; the partial sums go to the others through mailboxes) against"
	echo "bench/kmeans_redis (the same algorithm, its state in redis-server"
	echo "$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') on loopback, no persistence: one MGET of shard, assignments and"
	echo "centroids per step, the partial sums through RPUSH/BLPOP, the results"
	echo "written back in one MULTI/EXEC; hiredis). Both are apps of the same spryd,"
	echo "driven the same way: each iteration is \`step\` on the P processes at once"
	echo "over the HTTP front (one keep-alive connection per process), timed from"
	echo "the first request to the last answer. $ROUNDS rounds per system, alternating;"
	echo "each round loads the data set and iterates until nothing changes (at most"
	echo "$ITERS iterations); every round's transcript equals \`kmeans reference\`"
	echo "byte for byte. Ratios above 1: the process state is faster."
	echo
	echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
	echo "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "(a machine shared with other jobs: p99 includes their interference)."
	echo
	cat "$TMP/table.md"
	if [ -n "$plot" ]; then
		echo
		echo "![p50 time per iteration](kmeans.png) (data: kmeans.tsv)"
	fi
} >"$RES/kmeans.md.new" && mv "$RES/kmeans.md.new" "$RES/kmeans.md"
echo "kmeans_bench: wrote $RES/kmeans.md" >&2
