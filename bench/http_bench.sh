#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spryd's HTTP front under wrk, against nginx in the same run.
#
#   spry:  wrk -HTTP-> spryd -SK_MSG-> upper -> reverse -> wordcount
#          (2 instances each) -SK_MSG-> spryd -HTTP-> wrk
#   nginx: wrk -HTTP-> nginx `return 200 "<as many bytes>"`
#
# Both answer POST /demo (BENCH_LEN payload bytes, default 64) with a body
# of the same size, keep-alive, at concurrency 1, 32 and 256 (wrk --latency,
# BENCH_SECS seconds each, default 5: about a minute in all), and the
# script prints a markdown table of requests/s and p50/p99 latency with
# the spry/nginx ratios.  nginx runs NGINX_WORKERS worker processes
# (default 1, like spryd's one event loop).
#
# Builds first (make all); needs root (loads the router); runs in a
# private network namespace with its own pin directory, control socket
# and temporary directory, and stops everything it started.
# Environment: OUT (build dir), BENCH_SECS, BENCH_LEN, NGINX_WORKERS.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SECS=${BENCH_SECS:-5}
LEN=${BENCH_LEN:-64}
WORKERS=${NGINX_WORKERS:-1}
SPRY=$OUT/spry
SPRYD=$OUT/spryd

die() { echo "http_bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for c in wrk curl nginx; do
	command -v $c >/dev/null || [ -x /usr/sbin/$c ] || die "$c not installed"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# its own marker: under bench/run.sh (SPRY_BENCH_NETNS) the build still runs
if [ -z "${SPRY_HTTP_BENCH_INNER:-}" ]; then
	make -s -C "$SRC" O="$OUT" all >/dev/null || die "build failed"
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf ||
		die "no bpffs"
	SPRY_HTTP_BENCH_INNER=1 exec unshare -n "$0" "$@"
fi
ip link set lo up || die "cannot bring lo up"

PIN=/sys/fs/bpf/spry-http-bench-$$
TMP=$(mktemp -d /tmp/spry-http-bench-XXXXXX)
export SPRY_STATE_DIR=$TMP/state	# declarations, status: not in /run/spry/fns
SOCK=$TMP/ctl.sock
SPORT=18090
NPORT=18091
PIDS=()

cleanup() {
	local p
	[ -f "$TMP/nginx.pid" ] && kill -QUIT "$(cat "$TMP/nginx.pid")" 2>/dev/null
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

spry() { "$SPRY" -P "$PIN" "$@"; }

# --- spry
spry load >/dev/null || die "spry load failed"
spry chain add demo hops upper,reverse,wordcount buffers 4096 max-inflight 1024 >/dev/null ||
	die "chain add failed"
"$SPRYD" -P "$PIN" -s "$SOCK" --http "127.0.0.1:$SPORT" 2>"$TMP/spryd.log" &
PIDS+=($!)
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
for f in upper reverse wordcount upper reverse wordcount; do
	"$OUT/examples/$f" --chain demo --fn "$f" --sock "$SOCK" --quiet 2>>"$TMP/fns.log" &
	PIDS+=($!)
done
live() {
	spry -j fn show | jq -e '[.[] | select(.chain == "demo") | .instances[] |
		select(.listed and (.flags | index("live")))] | length == 6' >/dev/null
}
for i in $(seq 50); do live && break; sleep 0.1; done
live || die "the 6 instances did not register"

BODY=$(head -c "$LEN" /dev/zero | tr '\0' 'a' | sed 's/a\{5\}/spry /g' | head -c "$LEN")
curl -s --max-time 5 --data-binary "$BODY" "http://127.0.0.1:$SPORT/demo" -o "$TMP/resp" ||
	die "spry did not answer"
RLEN=$(wc -c < "$TMP/resp")

# --- nginx: the same response size
mkdir -p "$TMP/nginx"
RBODY=$(head -c "$RLEN" /dev/zero | tr '\0' 'x')
cat > "$TMP/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $TMP/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx/body;
	proxy_temp_path $TMP/nginx/proxy;
	fastcgi_temp_path $TMP/nginx/fastcgi;
	uwsgi_temp_path $TMP/nginx/uwsgi;
	scgi_temp_path $TMP/nginx/scgi;
	keepalive_requests 100000000;
	keepalive_timeout 60s;
	server {
		listen 127.0.0.1:$NPORT;
		location / {
			default_type application/octet-stream;
			return 200 "$RBODY";
		}
	}
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" || die "nginx did not start"
for i in $(seq 50); do [ -s "$TMP/nginx.pid" ] && break; sleep 0.1; done
NLEN=$(curl -s --max-time 5 --data-binary "$BODY" "http://127.0.0.1:$NPORT/demo" | wc -c)
[ "$NLEN" = "$RLEN" ] || die "nginx answered $NLEN bytes, spry $RLEN"

cat > "$TMP/post.lua" <<EOF
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "text/plain"
EOF

# us VALUE: wrk's "1.23ms" / "456.00us" / "1.01s" in microseconds
us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000
		printf "%.0f", n * m }'
}

# run NAME PORT CONNS: sets RPS P50 P99 ERR
run() {
	local t=2 f=$TMP/wrk-$1-$3
	[ "$3" -lt 2 ] && t=1
	wrk -t$t -c"$3" -d"${SECS}s" --latency -s "$TMP/post.lua" "http://127.0.0.1:$2/demo" > "$f" 2>&1
	RPS=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$f")
	P50=$(us "$(awk '$1 == "50%" { print $2 }' "$f")")
	P99=$(us "$(awk '$1 == "99%" { print $2 }' "$f")")
	ERR=$(grep -E 'Non-2xx|Socket errors' "$f" | tr -s ' ' | tr '\n' ';')
}

echo "spry HTTP front vs nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') ($WORKERS worker$([ "$WORKERS" -gt 1 ] && echo s)):"
echo "POST /demo, ${LEN}-byte body, ${RLEN}-byte answer, keep-alive, ${SECS}s per point, $(nproc) CPUs"
echo "spry: upper -> reverse -> wordcount, 2 instances each"
echo
echo "| conns | spry req/s | nginx req/s | ratio | spry p50 us | nginx p50 us | spry p99 us | nginx p99 us |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
NOTES=
for c in 1 32 256; do
	run spry $SPORT $c
	S_RPS=$RPS S_P50=$P50 S_P99=$P99
	[ -n "$ERR" ] && NOTES="$NOTES spry c=$c: $ERR"
	run nginx $NPORT $c
	[ -n "$ERR" ] && NOTES="$NOTES nginx c=$c: $ERR"
	ratio=$(awk -v a="$S_RPS" -v b="$RPS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	printf '| %d | %.0f | %.0f | %s | %s | %s | %s | %s |\n' "$c" "${S_RPS:-0}" "${RPS:-0}" \
		"$ratio" "$S_P50" "$P50" "$S_P99" "$P99"
done
[ -n "$NOTES" ] && echo && echo "errors:$NOTES"
exit 0
