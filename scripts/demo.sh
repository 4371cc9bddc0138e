#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The main job: load spry, start spryd and the demo chain (examples/demo.yaml:
# upper -> reverse -> wordcount, running as nobody), its functions declared
# (`spry fn declare`: spryd starts two instances of each, and up to four
# under load), print
# a command that works, and on Ctrl-C (or SIGTERM, which `spry down` sends)
# remove every pin, pool file and process it made.  Needs root.
# A requested stop (SIGINT, SIGTERM, SIGHUP) exits 0; a failure (spryd
# dying, a step failing) exits 1.
# Environment: OUT (build dir), SPRY_PIN_DIR (/sys/fs/bpf/spry),
# SPRY_RUN_DIR (/run/spry: control socket, demo.pid, hugetlbfs mount),
# SPRY_HTTP_PORT (8080), SPRY_DEMO_HUGEPAGES (2 MiB pages reserved for the
# pool, 16; 0: none reserved, the pool falls back to memfd).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SPRY="$OUT/spry"
PIN=${SPRY_PIN_DIR:-/sys/fs/bpf/spry}
RUN=${SPRY_RUN_DIR:-/run/spry}
SOCK=$RUN/spryd.sock
HUGE=$RUN/huge
PAGES=${SPRY_DEMO_HUGEPAGES:-16}	# 2 MiB pages for the demo pool
HTTP_PORT=${SPRY_HTTP_PORT:-8080}
# the declarations of this pin directory's chains (lib/decl.h)
export SPRY_STATE_DIR=$RUN/fns

die() { echo "demo: $*" >&2; cleanup; exit 1; }

pids=()
mounted_huge=0
old_pages=
cleanup() {
	trap - INT TERM EXIT
	local p i left
	# functions first, then spryd (pids[0]), so every instance leaves cleanly
	for p in "${pids[@]:1}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null; done
	if [ ${#pids[@]} -gt 0 ]; then
		kill -TERM "${pids[0]}" 2>/dev/null	# stops the instances it started
		wait "${pids[0]}" 2>/dev/null
	fi
	# a spryd that was killed left its instances (and, for a moment, the
	# templates' spares): its status file lists them, and each names
	# this demo's control socket on its command line
	left=()
	for p in $(jq -r '.fns[]? | (.pids[]?.pid, .template_pid, .spare_pid) | select(. > 0)' \
			"$SPRY_STATE_DIR/status.json" 2>/dev/null) \
		 $(pgrep -f -- "--chain demo --fn [a-z]*( --sock $SOCK)?\$" 2>/dev/null); do
		case "$(readlink "/proc/$p/exe" 2>/dev/null)" in
		"$OUT"/examples/*|"$RUN"/demo-bin/*) kill -TERM "$p" 2>/dev/null && left+=("$p") ;;
		esac
	done
	for i in $(seq 100); do
		for p in "${left[@]}"; do
			[ -e "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null &&
				{ sleep 0.05; continue 2; }
		done
		break
	done
	rm -rf "$SPRY_STATE_DIR"
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	if [ $mounted_huge -eq 1 ]; then
		rm -f "$HUGE"/spry-* 2>/dev/null
		umount "$HUGE" 2>/dev/null && rmdir "$HUGE" 2>/dev/null
	fi
	[ -n "$old_pages" ] && echo "$old_pages" > /proc/sys/vm/nr_hugepages
	rm -f "$RUN/demo.pid"
	rm -rf "$RUN/demo-bin"
	echo "demo: stopped; pins, pools and processes removed"
}

# A requested stop: clean up and succeed (make prints no "Error 143").
stop() {
	echo
	echo "demo: $1: stopping"
	cleanup
	exit 0
}

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root" >&2; exit 1; }
[ -x "$SPRY" ] || { echo "demo: $SPRY not built (make)" >&2; exit 1; }
if [ -e "$PIN" ]; then
	echo "demo: $PIN exists: spry is already loaded (spry unload first)" >&2
	exit 1
fi
trap 'stop SIGINT' INT
trap 'stop SIGTERM' TERM
trap 'stop SIGHUP' HUP
trap 'cleanup; exit 1' EXIT

mkdir -p "$RUN"
echo $$ > "$RUN/demo.pid"
# Hugepages for the pool: reserve what the demo needs, give them back after.
pool_dir=()
if [ "$PAGES" -gt 0 ]; then
	pool_dir=(--pool-dir "$HUGE")
	if ! grep -q " $HUGE hugetlbfs " /proc/mounts; then
		mkdir -p "$HUGE" && mount -t hugetlbfs -o pagesize=2M,mode=0711 none "$HUGE" &&
			mounted_huge=1
	fi
	old_pages=$(cat /proc/sys/vm/nr_hugepages)
	echo $((old_pages + PAGES)) > /proc/sys/vm/nr_hugepages 2>/dev/null
	echo "demo: hugepages $(cat /proc/sys/vm/nr_hugepages) (was $old_pages)"
fi

"$SPRY" -P "$PIN" load || die "spry load failed"
"$SPRY" -P "$PIN" apply "$SRC/examples/demo.yaml" || die "spry apply failed"
# The functions run as nobody (examples/demo.yaml): a build directory
# nobody cannot reach (a private home, a mktemp directory) is not where
# they can start from; then they run from copies in $RUN.
bin=$OUT/examples
if ! runuser -u nobody -- test -x "$bin/upper" 2>/dev/null; then
	bin=$RUN/demo-bin
	mkdir -p -m 0755 "$bin" &&
		install -m 0755 "$OUT/examples/upper" "$OUT/examples/reverse" \
			"$OUT/examples/wordcount" "$bin/" ||
		die "cannot copy the functions to $bin"
	echo "demo: user nobody cannot reach $OUT: the functions run from copies in $bin"
fi
# spryd starts and scales the instances: two of each, four at most
for fn in upper reverse wordcount; do
	"$SPRY" -P "$PIN" fn declare demo "$fn" exec "$bin/$fn" min 2 max 4 \
		target 16 idle 60 >/dev/null || die "spry fn declare $fn failed"
done

"$OUT/spryd" -P "$PIN" -s "$SOCK" "${pool_dir[@]}" --http "127.0.0.1:$HTTP_PORT" &
pids+=($!)
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || die "spryd did not start"

for i in $(seq 50); do
	n=$("$SPRY" -P "$PIN" -j fn show chain demo 2>/dev/null | jq '[.[] |
		select(.chain == "demo") | .instances[] | select(.flags | index("live"))] | length')
	[ "${n:-0}" -ge 6 ] && break
	sleep 0.1
done

"$SPRY" -P "$PIN" fn show
echo
curl -s --max-time 5 -d 'hello spry' "http://127.0.0.1:$HTTP_PORT/demo" >/dev/null ||
	die "the demo chain does not answer on http://127.0.0.1:$HTTP_PORT/demo"
echo "demo: running. Try:"
echo "  curl -d 'hello spry' http://127.0.0.1:$HTTP_PORT/demo"
echo "  curl http://127.0.0.1:$HTTP_PORT/metrics"
echo "  $SPRY chain invoke demo data 'hello spry'"
echo "  $SPRY stats; $SPRY fn show"
echo "demo: Ctrl-C (or '$SPRY down' from another shell) stops it and removes everything."
wait "${pids[0]}"
# (a stop request runs stop() inside the wait and never comes here)
die "spryd exited (status $?)"
