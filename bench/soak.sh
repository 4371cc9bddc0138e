#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Soak: two chains under wrk through spryd's HTTP front while a fault
# injector SIGKILLs a random function instance every 2-4 s and starts a
# new one in its place.
#
#   bench/soak.sh [SECONDS]      (root; default 600; OUT=build dir)
#
# Chains: web = upper -> reverse (plain functions: a request whose
# instance is killed is answered 502), rev = reverse -> upper with both
# hops idempotent (such a request is resubmitted from hop 0 once, so it
# should succeed).  Two instances of each function.  spryd's RSS and fd
# count are sampled at the start (after a 5 s warm-up), the middle and the
# end.
#
# At the end it prints the counts and checks:
#  - every answer wrk got is 2xx or a documented error: 502 (the instance
#    holding the request died), 503 (pool or in-flight bound, no live
#    instance of a function between its kill and its replacement's
#    registration), 504 (deadline);
#  - wrk saw no socket error (connect/read/write/timeout): a killed
#    function never costs a client its connection, spryd answers for it;
#  - spryd answered every request wrk counted: spryd's responses per chain
#    (spry_http_requests_total, less the setup's one request) minus wrk's
#    are between 0 and the number of connections (wrk does not count the
#    answers in flight when its time is up, spryd does);
#  - every pool buffer is free afterwards (spry_pool_buffers used == 0);
#  - spryd's fd count at the end is not above the start's and its RSS grew
#    by less than 4 MiB from start to end.
# Exit 0 when all hold, 1 otherwise.  Own network namespace, pins, control
# socket and temporary directory; stops only what it started.

set -u
DUR=${1:-600}
case "$DUR" in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
[ "$DUR" -ge 20 ] || { echo "soak: at least 20 seconds" >&2; exit 2; }

SRC=$(cd "$(dirname "$0")/.." && pwd)
SPRY_OUT=$(cd "${OUT:-$SRC/build}" 2>/dev/null && pwd) ||
	{ echo "soak: no build dir (make)" >&2; exit 2; }
export SPRY_OUT
. "$SRC/selftests/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "soak: needs root" >&2; exit 2; }
if [ -z "${SPRY_TEST_NETNS:-}" ]; then
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf ||
		{ echo "soak: no bpffs" >&2; exit 2; }
	SPRY_TEST_NETNS=1 exec unshare -n "$BASH" "$0" "$@"
fi
ip link set lo up || { echo "soak: cannot bring lo up" >&2; exit 2; }
for b in "$SPRY" "$SPRYD" "$SPRY_OUT"/examples/{upper,reverse}; do
	[ -x "$b" ] || { echo "soak: $b not built" >&2; exit 2; }
done
for c in wrk curl jq; do
	command -v $c >/dev/null || { echo "soak: $c not installed" >&2; exit 2; }
done

PIN=/sys/fs/bpf/spry-soak-$$
TMP=$(mktemp -d /tmp/spry-soak-XXXXXX)
export SPRY_STATE_DIR=$TMP/state	# declarations, status: not in /run/spry/fns
SOCK=$TMP/ctl.sock
PORT=18190
URL=http://127.0.0.1:$PORT
CONNS=8		# per chain
PIDS=()
WRKS=()

cleanup() {
	local p
	for p in "${WRKS[@]}"; do kill "$p" 2>/dev/null; done
	kill_wait "${PIDS[@]}" "${INST_PID[@]}"
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

spry() { "$SPRY" -P "$PIN" "$@"; }
c() { curl -s --max-time 10 "$@"; }
metrics() { c "$URL/metrics"; }
used_bufs() {
	metrics | awk '$1 ~ /^spry_pool_buffers\{.*state="used"/ { n += $2 } END { print n + 0 }'
}
no_used() { [ "$(used_bufs)" = 0 ]; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SPRYD_PID/status"; }
nfds() { ls "/proc/$SPRYD_PID/fd" | wc -l; }

# The instances: INST_CHAIN[i] INST_FN[i] run as INST_PID[i].
INST_CHAIN=(web web web web rev rev rev rev)
INST_FN=(upper upper reverse reverse reverse reverse upper upper)
INST_PID=()
inst_start() {	# inst_start I
	local i=$1
	"$SPRY_OUT/examples/${INST_FN[$i]}" --chain "${INST_CHAIN[$i]}" --fn "${INST_FN[$i]}" \
		--sock "$SOCK" 2>>"$TMP/fn-$i.log" &
	INST_PID[$i]=$!
}
live_total() {
	spry -j fn show | jq '[.[] | select(.chain != null) | .instances[]? |
		select(.listed and (.flags | index("live")))] | length'
}
live_is() { [ "$(live_total)" -eq "$1" ]; }

spry load >/dev/null &&
	spry chain add web hops upper,reverse buffers 256 >/dev/null &&
	spry chain add rev hops reverse,upper buffers 256 idempotent reverse,upper >/dev/null ||
	{ echo "soak: spry load/chain add failed" >&2; exit 1; }
"$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$PORT" 2>"$TMP/spryd.log" &
SPRYD_PID=$!
PIDS+=("$SPRYD_PID")
wait_for 5 test -S "$SOCK" || { echo "soak: spryd did not start" >&2; cat "$TMP/spryd.log" >&2; exit 1; }
for i in "${!INST_FN[@]}"; do inst_start "$i"; done
wait_for 10 live_is ${#INST_FN[@]} &&
	[ "$(c -d soak "$URL/web")" = KAOS ] && [ "$(c -d soak "$URL/rev")" = KAOS ] ||
	{ echo "soak: setup failed" >&2; tail -20 "$TMP/spryd.log" >&2; exit 1; }

# wrk with per-status counts (a Lua response() hook; summed in done())
cat > "$TMP/soak.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
wrk.method = "POST"
wrk.body = "spry soak payload"
function response(status, headers, body)
	counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
	local total = {}
	for _, t in ipairs(threads) do
		for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
	end
	for k, v in pairs(total) do io.write(string.format("status %d %d\n", k, v)) end
	io.write(string.format("total %d\nsockerr %d %d %d %d\np99_ms %.2f\n", summary.requests,
		summary.errors.connect, summary.errors.read, summary.errors.write,
		summary.errors.timeout, latency:percentile(99) / 1000))
end
EOF
for ch in web rev; do
	wrk -t1 -c$CONNS -d"${DUR}s" --timeout 10s -s "$TMP/soak.lua" "$URL/$ch" \
		> "$TMP/wrk-$ch.out" 2>&1 &
	WRKS+=($!)
done

T0=$(date +%s)
END=$((T0 + DUR))
FAULTS=0
sleep 5
RSS0=$(rss_kb) FD0=$(nfds)
RSS1= FD1=
while [ "$(date +%s)" -lt $((END - 3)) ]; do
	sleep "$(( 2 + RANDOM % 3 )).$(( RANDOM % 10 ))"
	[ "$(date +%s)" -lt $((END - 3)) ] || break
	i=$(( RANDOM % ${#INST_FN[@]} ))
	kill -KILL "${INST_PID[$i]}" 2>/dev/null
	wait "${INST_PID[$i]}" 2>/dev/null
	inst_start "$i"
	FAULTS=$((FAULTS + 1))
	if [ -z "$RSS1" ] && [ "$(date +%s)" -ge $((T0 + DUR / 2)) ]; then
		RSS1=$(rss_kb) FD1=$(nfds)
	fi
done
wait "${WRKS[@]}"
WRKS=()
: "${RSS1:=$(rss_kb)}" "${FD1:=$(nfds)}"
wait_for 15 no_used
LEAKED=$(used_bufs)
RSS2=$(rss_kb) FD2=$(nfds)

# the counts
fail=0
M=$(metrics)
echo "soak: ${DUR} s, $FAULTS faults injected (SIGKILL + restart of a function instance)"
for ch in web rev; do
	W=$TMP/wrk-$ch.out
	wtotal=$(awk '$1 == "total" { print $2 }' "$W")
	read -r e_conn e_read e_write e_to < <(awk '$1 == "sockerr" { print $2, $3, $4, $5 }' "$W")
	stat=$(awk '$1 == "status" { printf "%s:%s ", $2, $3 }' "$W")
	other=$(awk '$1 == "status" && $2 !~ /^(2..|502|503|504)$/ { n += $3 } END { print n + 0 }' "$W")
	sum=$(awk '$1 == "status" { n += $3 } END { print n + 0 }' "$W")
	# minus the setup's one request per chain
	stotal=$(awk -v ch="$ch" '$1 ~ "^spry_http_requests_total\\{chain=\"" ch "\"" { n += $2 } END { print n - 1 }' <<<"$M")
	sstat=$(awk -v ch="$ch" '$1 ~ "^spry_http_requests_total\\{chain=\"" ch "\"" {
		match($1, /code="[0-9]+"/); printf "%s:%s ", substr($1, RSTART + 6, 3), $2 }' <<<"$M")
	echo "chain $ch: wrk $wtotal requests, by status ${stat:-none}(other $other); socket errors connect ${e_conn:-?} read ${e_read:-?} write ${e_write:-?} timeout ${e_to:-?}; p99 $(awk '$1 == "p99_ms" { print $2 }' "$W") ms"
	echo "chain $ch: spryd answered $stotal (+1 setup request), by status ${sstat:-none}"
	if [ -z "$wtotal" ] || [ "$wtotal" -eq 0 ] || [ "$sum" != "$wtotal" ] || [ "$other" -ne 0 ]; then
		echo "FAIL chain $ch: statuses other than 2xx/502/503/504, or none" ; fail=1
	fi
	if [ "${e_conn:-1}" -ne 0 ] || [ "${e_read:-1}" -ne 0 ] || [ "${e_write:-1}" -ne 0 ] ||
	   [ "${e_to:-1}" -ne 0 ]; then
		echo "FAIL chain $ch: socket errors"; fail=1
	fi
	if [ -n "$wtotal" ] && { [ "$stotal" -lt "$wtotal" ] || [ "$stotal" -gt $((wtotal + CONNS)) ]; }; then
		echo "FAIL chain $ch: spryd's count $stotal vs wrk's $wtotal (allowed: up to $CONNS more)"; fail=1
	fi
done
retried=$(grep -c 'resubmitted from hop 0' "$TMP/spryd.log")
echo "retries of idempotent requests: $retried; instances removed (died): $(grep -c 'removed: ' "$TMP/spryd.log")"
echo "pool buffers leaked: $LEAKED"
echo "spryd RSS kB start/middle/end: $RSS0 / $RSS1 / $RSS2 (growth $((RSS2 - RSS0)) kB); fds: $FD0 / $FD1 / $FD2"
[ "$LEAKED" = 0 ] || { echo "FAIL: buffers leaked"; fail=1; }
[ "$FD2" -le "$FD0" ] || { echo "FAIL: fds grew"; fail=1; }
[ $((RSS2 - RSS0)) -lt 4096 ] || { echo "FAIL: RSS grew"; fail=1; }
proc_gone "$SPRYD_PID" && { echo "FAIL: spryd died"; fail=1; }
[ $fail -eq 0 ] && echo "soak: PASS" || echo "soak: FAIL (spryd log: last lines below)"
[ $fail -eq 0 ] || tail -20 "$TMP/spryd.log"
exit $fail
