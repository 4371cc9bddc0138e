#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Where a small message's round trip goes, mesh off and on
# (bench/results/mesh.md, "Where a ping-pong's time goes"):
#
#   bench/mesh_pp_profile.sh off|on SIZE [OUTDIR]
#
# sockperf ping-pong of SIZE bytes for 6 s in a private network namespace
# and a cgroup of its own (the mesh attached to it when "on"); meanwhile
# perf records both ends (cpu-clock, call graphs, 4 s) and counts their
# CPU time, context switches and system calls (2 s).  Prints sockperf's
# p50 and, per round trip, the CPU time, system calls and context
# switches; leaves OUTDIR/pp-MODE-SIZE.{txt,data,stat} for perf report.
# Needs root, sockperf and perf.
set -u
[ $# -ge 2 ] || { echo "usage: $0 off|on SIZE [OUTDIR]" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
SPRY=$OUT/spry
D=${3:-/tmp}
if [ -z "${SPRY_PP_NETNS:-}" ]; then
	SPRY_PP_NETNS=1 exec unshare -n "$0" "$@"
fi
case $1 in on|off) ;; *) echo "$0: off or on, not '$1'" >&2; exit 2 ;; esac
case $2 in *[!0-9]*|"") echo "$0: SIZE is a number of bytes, not '$2'" >&2; exit 2 ;; esac
for c in sockperf perf; do
	command -v $c >/dev/null || { echo "$0: $c not installed" >&2; exit 1; }
done
[ -x "$SPRY" ] || { echo "$0: $SPRY not built (make)" >&2; exit 1; }
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
PIN=/sys/fs/bpf/spry-mesh-pp-$$
CG=$CGROOT/spry-mesh-pp-$$
ORIG=$CGROOT$(sed -n 's/^0:://p' /proc/self/cgroup)
S="" C=""
cleanup() {
	[ -n "$C" ] && kill "$C" 2>/dev/null
	[ -n "$S" ] && kill "$S" 2>/dev/null
	wait 2>/dev/null
	echo $$ >"$ORIG/cgroup.procs" 2>/dev/null
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rmdir "$CG" 2>/dev/null
	rm -rf "$PIN"
}
trap cleanup EXIT
ip link set lo up
if ! mkdir "$CG" || ! echo $$ >"$CG/cgroup.procs"; then
	echo "$0: cannot make $CG" >&2
	exit 1
fi
"$SPRY" -P "$PIN" mesh set default allow >/dev/null || exit 1
if [ "$1" = on ]; then
	"$SPRY" -P "$PIN" mesh attach cgroup "$CG" >/dev/null || exit 1
fi
sockperf sr --tcp -i 127.0.0.1 -p 11111 >/dev/null 2>&1 &
S=$!
sleep 0.5
sockperf pp --tcp -i 127.0.0.1 -p 11111 -t 6 -m "$2" >"$D/pp-$1-$2.txt" 2>&1 &
C=$!
sleep 1
perf record -q -e cpu-clock -F 10000 -g -o "$D/pp-$1-$2.data" -p "$S,$C" -- sleep 4 2>/dev/null
perf stat -e task-clock,context-switches,raw_syscalls:sys_enter -p "$S,$C" -- sleep 2 2>"$D/pp-$1-$2.stat"
wait "$C"
C=""
p50=$(awk '/percentile 50.000/ { print $NF }' "$D/pp-$1-$2.txt")
# two context switches per round trip: each end sleeps once
awk -v mode="$1" -v size="$2" -v p50="$p50" '
	/task-clock/ { cpu = $1 } /context-switches/ { cs = $1 } /sys_enter/ { sc = $1 }
	END { rt = cs / 2; if (!rt) exit 1
	      printf "%s %s B: p50 %s us one way; per round trip %.1f us CPU, %.1f system calls, 2 context switches\n",
		     mode, size, p50, cpu * 1000 / rt, sc / rt }' "$D/pp-$1-$2.stat"
