#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Mailboxes between cloud processes (docs/PROCESS.md, "Mailboxes")
# against their baseline, Redis lists (Debian's redis-server on loopback,
# started here without persistence), in the same run:
#   - latency: round trips of a message of SIZE bytes, process 1 -> process
#     2's mailbox -> back to process 1 (examples/mailbox ping against echo:
#     each spry_send() acknowledged by the receiver), against LPUSH / BRPOP
#     / LPUSH / BRPOP between two Redis clients (bench/mail_bench.c);
#   - messages/s: acknowledged sends one after the other while the
#     receiver reads them (stream against drain), against LPUSHes while
#     a client BRPOPs.
# 64 B and 1 KiB, interleaved rounds; ratios printed (spry / Redis).
# Writes bench/results/mail.md.  Needs root (loads the router); private
# network namespace, pins, socket.  No redis-server: exit 1 (no baseline).
# Environment: OUT (build dir), BENCH_MAIL_N (messages per round, default
# 2000), BENCH_MAIL_ROUNDS (3), BENCH_RESULTS.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
N=${BENCH_MAIL_N:-2000}
ROUNDS=${BENCH_MAIL_ROUNDS:-3}
RES=${BENCH_RESULTS:-$SRC/bench/results}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
DRV=$OUT/bench/mail_bench
MB=$OUT/examples/mailbox

die() { echo "mail_bench: $*" >&2; [ -n "${TMP:-}" ] && [ -n "${BENCH_MAIL_DEBUG:-}" ] && tail -30 "$TMP/spryd.log" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$DRV" "$MB"; do
	[ -x "$b" ] || die "$b not built (make bench-progs)"
done
command -v redis-server >/dev/null || die "redis-server not installed (the baseline)"
. "$SRC/bench/lib.sh"
bench_private_netns mail_bench "$@"

bench_spry_env mail_bench
"$SPRY" -P "$PIN" app add mbench fns ping,echo,stream,drain exec "$MB" idle 0 \
	create manual >/dev/null || die "app add failed"
bench_start "$TMP/spryd.log" "$SPRYD" -P "$PIN" -s "$SOCK"
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || die "spryd did not start: $(cat "$TMP/spryd.log")"
for id in 1 2; do
	for i in $(seq 100); do
		"$SPRY" -P "$PIN" process create mbench id $id sock "$SOCK" >/dev/null 2>&1 && break
		sleep 0.05
	done
	"$SPRY" -P "$PIN" process wake mbench id $id sock "$SOCK" >/dev/null ||
		die "process $id did not start: $(tail -5 "$TMP/spryd.log")"
done
port=$((20000 + RANDOM % 20000))
bench_start "$TMP/redis.log" redis-server --port "$port" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$TMP"
bench_wait_port "$port" || die "redis-server did not start"

inv() { "$SPRY" -P "$PIN" chain invoke mbench fn "$1" process "$2" data "$3" sock "$SOCK"; }

# spry_ping SIZE: "p50 p99 total" (ns) of N round trips
spry_ping() {
	local out echo_pid
	inv echo 2 "8 9 $N" >"$TMP/echo.out" 2>&1 &
	echo_pid=$!
	out=$(inv ping 1 "2 8 9 $N $1")
	wait "$echo_pid"
	[ "$(cat "$TMP/echo.out")" = "$N" ] || { echo "echo: $(cat "$TMP/echo.out")" >&2; return 1; }
	echo "$out"
}
spry_stream() {
	local out drain_pid
	inv drain 2 "7 $N" >"$TMP/drain.out" 2>&1 &
	drain_pid=$!
	out=$(inv stream 1 "2 7 $N $1")
	wait "$drain_pid"
	[ "$(cat "$TMP/drain.out")" = "$N" ] || { echo "drain: $(cat "$TMP/drain.out")" >&2; return 1; }
	echo "$out"
}

declare -A P50 P99 MPS
add() { # KEY VALUES...: appended, space separated
	local -n arr=$1
	arr[$2]="${arr[$2]:-} $3"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

echo "mail_bench: $ROUNDS rounds of $N messages, 64 B and 1 KiB, spry and Redis interleaved" >&2
for r in $(seq "$ROUNDS"); do
	for size in 64 1024; do
		out=$(spry_ping "$size") || die "spry ping failed: $out"
		set -- $out
		[ $# = 3 ] || die "spry ping: '$out'"
		add P50 "spry,$size" "$1"; add P99 "spry,$size" "$2"
		out=$("$DRV" ping "$port" "$N" "$size") || die "redis ping failed"
		set -- $out
		add P50 "redis,$size" "$1"; add P99 "redis,$size" "$2"
		out=$(spry_stream "$size") || die "spry stream failed: $out"
		case $out in ''|*[!0-9]*) die "spry stream: '$out'" ;; esac
		add MPS "spry,$size" "$(( N * 1000000000 / out ))"
		out=$("$DRV" stream "$port" "$N" "$size") || die "redis stream failed"
		add MPS "redis,$size" "$(( N * 1000000000 / out ))"
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
us() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1000 }'; }
table() {
	echo "| size | spry p50 (us) | Redis p50 (us) | p50 ratio | spry p99 (us) | Redis p99 (us) | spry msgs/s | Redis msgs/s | msgs/s ratio |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for size in 64 1024; do
		sp50=$(echo "${P50[spry,$size]}" | median); rp50=$(echo "${P50[redis,$size]}" | median)
		sp99=$(echo "${P99[spry,$size]}" | median); rp99=$(echo "${P99[redis,$size]}" | median)
		smps=$(echo "${MPS[spry,$size]}" | median); rmps=$(echo "${MPS[redis,$size]}" | median)
		echo "| $size B | $(us "$sp50") | $(us "$rp50") | $(ratio "$sp50" "$rp50") |" \
		     "$(us "$sp99") | $(us "$rp99") | $smps | $rmps | $(ratio "$smps" "$rmps") |"
	done
}
table >"$TMP/table.md"
cat "$TMP/table.md"
# the medians as rows for the plot: size, system, p50 us, p99 us, msgs/s
{
	printf 'size\tsystem\tp50_us\tp99_us\tmsgs_s\n'
	for size in 64 1024; do
		for sys in spry redis; do
			printf '%s\t%s\t%s\t%s\t%s\n' "$size" "$sys" \
				"$(us "$(echo "${P50[$sys,$size]}" | median)")" \
				"$(us "$(echo "${P99[$sys,$size]}" | median)")" \
				"$(echo "${MPS[$sys,$size]}" | median)"
		done
	done
} >"$TMP/mail.tsv"
drops=$("$SPRY" -P "$PIN" -j stats | jq '[.verdicts | to_entries[] |
	select(.key | test("^drop_")) | .value] | add' 2>/dev/null)
mails=$("$SPRY" -P "$PIN" -j stats | jq '.verdicts.mail' 2>/dev/null)

mkdir -p "$RES"
{
	echo "# Mailboxes: latency and messages/s against Redis lists"
	echo
	echo "Generated by bench/mail_bench.sh ($(date -u '+%Y-%m-%d %H:%M UTC'))."
	echo "Two processes of one app (examples/mailbox), the median of $ROUNDS rounds of"
	echo "$N messages each, spry and Redis interleaved in the same run:"
	echo
	echo "- latency: a round trip, process 1 -> process 2's mailbox -> process 1's"
	echo "  (ping against echo: two spry_send(), each acknowledged by the receiving"
	echo "  runtime through the router, and two spry_recv()), against LPUSH a /"
	echo "  BRPOP a / LPUSH b / BRPOP b between two clients of redis-server $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')"
	echo "  on loopback (no persistence);"
	echo "- messages/s: acknowledged spry_send() one after the other while the"
	echo "  receiver's handler reads them (stream against drain), against"
	echo "  acknowledged LPUSHes while a client BRPOPs them."
	echo
	echo "Ratios are spry / Redis (latency: below 1 is faster; msgs/s: above 1 is"
	echo "more).  Router drops during the run: ${drops:-unknown}; mails routed: ${mails:-unknown}."
	echo
	echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
	echo "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "(a machine shared with other jobs: p99 includes their interference)."
	echo
	cat "$TMP/table.md"
	echo
	echo "Medians as rows: [mail.tsv](mail.tsv); plot: [mail.png](mail.png) (p50 round"
	echo "trip and messages/s, spry against Redis, per size)."
} >"$RES/mail.md.new" && mv "$RES/mail.md.new" "$RES/mail.md"
cp "$TMP/mail.tsv" "$RES/mail.tsv"
if command -v gnuplot >/dev/null; then
	cat >"$TMP/plot.gp" <<GP
set terminal pngcairo size 1000,420 noenhanced
set output "$RES/mail.png"
set multiplot layout 1,2 title "spry mailboxes against Redis lists (loopback, same run)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left
set grid ytics
set yrange [0:*]
set title "round trip, p50 (us, lower is better)"
plot "< awk -F'\t' 'NR > 1 && \$2 == \"spry\" {s[\$1] = \$3} NR > 1 && \$2 == \"redis\" {r[\$1] = \$3} END {print \"64B\", s[64], r[64]; print \"1KiB\", s[1024], r[1024]}' $RES/mail.tsv" \
	using 2:xtic(1) title "spry", "" using 3 title "Redis"
set key top right
set title "messages/s, acknowledged (higher is better)"
plot "< awk -F'\t' 'NR > 1 && \$2 == \"spry\" {s[\$1] = \$5} NR > 1 && \$2 == \"redis\" {r[\$1] = \$5} END {print \"64B\", s[64], r[64]; print \"1KiB\", s[1024], r[1024]}' $RES/mail.tsv" \
	using 2:xtic(1) title "spry", "" using 3 title "Redis"
unset multiplot
GP
	gnuplot "$TMP/plot.gp" || echo "mail_bench: gnuplot failed: no plot" >&2
else
	echo "mail_bench: gnuplot not installed: no plot" >&2
fi
echo "mail_bench: wrote $RES/mail.md" >&2
