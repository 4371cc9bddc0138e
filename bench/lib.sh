# SPDX-License-Identifier: GPL-2.0-only
#
# Helpers of the benchmarks (sourced by bench/compare.sh, bench/ab.sh,
# bench/mesh_bench.sh, proc_bench.sh, docbuild_bench.sh ...): a private
# network namespace, a spry of its own (bench_spry_env), starting
# processes, spry's placement, a spry set-up (router,
# chains, spryd with its HTTP front, the functions) and one wrk point with
# the CPU time of the processes measured.  The caller defines PIDS=() (what
# it started, for its cleanup), SRC (the source tree: bench/post.lua) and
# WRK_PIN (a taskset prefix for wrk, or empty).

# bench_private_netns NAME ARGS...: re-run this script with ARGS in a
# private network namespace (bpffs mounted first when the host has none);
# in there, bring lo up and raise the open-file limit.  NAME prefixes the
# errors (exit 1).
bench_private_netns() {
	local name=$1
	shift
	if [ -z "${SPRY_BENCH_NETNS:-}" ]; then
		grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf ||
			{ echo "$name: no bpffs" >&2; exit 1; }
		SPRY_BENCH_NETNS=1 exec unshare -n "$0" "$@"
	fi
	ip link set lo up || { echo "$name: cannot bring lo up" >&2; exit 1; }
	ulimit -n 65536 2>/dev/null
}

# bench_spry_env NAME: a spry of this benchmark's own: PIN (its pin
# directory), TMP (a scratch directory), SOCK (spryd's control socket),
# PIDS=() and SPRY_STATE_DIR in TMP; at exit the processes in PIDS are
# ended (TERM, waited for), the router unloaded, PIN and TMP removed; the
# router loaded.  SPRY is the CLI.  Exits 1 with NAME's error if the load
# fails.
bench_spry_env() {
	local name=$1
	PIN=/sys/fs/bpf/spry-bench-$name-$$
	TMP=$(mktemp -d "/tmp/spry-bench-$name-XXXXXX")
	SOCK=$TMP/ctl.sock
	PIDS=()
	export SPRY_STATE_DIR=$TMP/state
	trap bench_spry_cleanup EXIT
	"$SPRY" -P "$PIN" load >/dev/null || { echo "$name: spry load failed" >&2; exit 1; }
}

bench_spry_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	"$SPRY" -P "$PIN" unload >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}

# bench_start LOG CMD...: in the background, remembered in PIDS, pid in LAST
bench_start() {
	local log=$1
	shift
	"$@" >>"$log" 2>&1 &
	LAST=$!
	PIDS+=("$LAST")
}

# bench_wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s)
bench_wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# bench_cpu_ns PIDS...: "ns runs" summed over every thread (schedstat)
bench_cpu_ns() {
	local p
	for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
		awk '{ ns += $1; runs += $3 } END { printf "%.0f %.0f\n", ns, runs }'
}

# bench_spry_cpus: the CPUs spry is placed on (docs/DESIGN.md,
# "Placement"): the last one, or BENCH_SPRY_CPUS ("none": nothing placed,
# prints nothing)
bench_spry_cpus() {
	local c=${BENCH_SPRY_CPUS:-$(($(nproc) - 1))}
	[ "$c" = none ] || echo "$c"
}

# bench_wrk_cpus SPRY_CPUS: the CPUs wrk runs on, those spry is not placed
# on, for every system alike (left free, the scheduler's wake-ups pull it
# next to spryd now and then); nothing when spry is not placed
bench_wrk_cpus() {
	[ -n "$1" ] || return 0
	python3 -c 'import sys
n, spec = int(sys.argv[1]), sys.argv[2]
used = set()
for part in spec.split(","):
    a, _, b = part.partition("-")
    used.update(range(int(a), int(b or a) + 1))
print(",".join(str(c) for c in range(n) if c not in used))' "$(nproc)" "$1"
}

# bench_fn_bin OUT HOP: hop i runs upper when i is even, reverse when odd
bench_fn_bin() { [ $(($2 % 2)) -eq 0 ] && echo "$1/examples/upper" || echo "$1/examples/reverse"; }

# bench_spry_up OUT PIN SOCK PORT CPUS LOGDIR LENGTHS [SPRYD_ARGS...]: spry of build OUT
# with pins PIN: chains cN of N functions for every N in LENGTHS (buffers
# for 64 KiB bodies, in-flight bound above 256), placed on CPUS (empty: not
# placed), spryd with its HTTP front on 127.0.0.1:PORT, one instance per
# function, SPRYD_ARGS given to spryd, its state directory LOGDIR/state.  Sets SPRY_UP_SPRYD (spryd's pid) and SPRY_UP[N] (the pids of
# chain N, spryd first).  0, or 1 with the reason on stderr.
declare -A SPRY_UP
bench_spry_up() {
	local out=$1 pin=$2 sock=$3 port=$4 cpus=$5 logs=$6 lengths=$7
	local n i hops want live
	shift 7
	"$out/spry" -P "$pin" load >/dev/null || { echo "spry load failed" >&2; return 1; }
	for n in $lengths; do
		hops=$(for i in $(seq 0 $((n - 1))); do printf 'c%s-f%s,' "$n" "$i"; done)
		"$out/spry" -P "$pin" chain add "c$n" hops "${hops%,}" buffer-size 66560 \
			buffers 640 max-inflight 1024 ${cpus:+cpus $cpus} >/dev/null ||
			{ echo "chain add c$n failed" >&2; return 1; }
	done
	# its own state directory: not one in /run/spry/fns left behind, and
	# never shared with another spryd of the same benchmark
	bench_start "$logs/spryd.log" env SPRY_STATE_DIR="$logs/state" "$out/spryd" -P "$pin" \
		-s "$sock" --http "127.0.0.1:$port" ${cpus:+--cpus $cpus} "$@"
	SPRY_UP_SPRYD=$LAST
	bench_wait_port "$port" || { echo "spryd did not start: $(cat "$logs/spryd.log")" >&2; return 1; }
	want=0
	for n in $lengths; do
		SPRY_UP[$n]=$SPRY_UP_SPRYD
		for i in $(seq 0 $((n - 1))); do
			bench_start "$logs/fn.log" "$(bench_fn_bin "$out" "$i")" --chain "c$n" \
				--fn "c$n-f$i" --sock "$sock" --quiet
			SPRY_UP[$n]+=" $LAST"
		done
		want=$((want + n))
	done
	for i in $(seq 100); do
		live=$("$out/spry" -P "$pin" -j fn show 2>/dev/null | python3 -c 'import json,sys
print(sum(1 for f in json.load(sys.stdin) if f.get("chain")
	  for i in f.get("instances", []) if "live" in i.get("flags", [])))' 2>/dev/null)
		[ "$live" = "$want" ] && return 0
		sleep 0.05
	done
	echo "spry functions did not register: $(cat "$logs/fn.log")" >&2
	return 1
}

# bench_wrk URL SIZE CONC SECS PIDS...: BENCH_WARMUP (1) seconds of
# warm-up, then SECS seconds of wrk (bench/post.lua, SIZE-byte bodies,
# CONC connections).  Sets BW (wrk's key=value pairs: requests,
# duration_us, rps, p50_us, p99_us, errors, non2xx), BW_NS and BW_RUNS
# (CPU time and scheduler runs of every thread of PIDS over the
# measurement) and BW_FIRST_NS (those of the first of PIDS alone).  Runs
# the caller's bench_before and bench_after, when defined, right around
# the measurement.  1 when wrk printed nothing.
declare -A BW
bench_wrk() {
	local u=$1 size=$2 c=$3 secs=$4 line kv c0 r0 c1 r1 f0 f1
	shift 4
	$WRK_PIN wrk -t"${BENCH_WRK_THREADS:-1}" -c"$c" -d"${BENCH_WARMUP:-1}s" --timeout 10s \
		-s "$SRC/bench/post.lua" "$u" -- "$size" >/dev/null 2>&1
	! declare -F bench_before >/dev/null || bench_before
	read -r f0 _ < <(bench_cpu_ns "$1")
	read -r c0 r0 < <(bench_cpu_ns "$@")
	line=$($WRK_PIN wrk -t"${BENCH_WRK_THREADS:-1}" -c"$c" -d"${secs}s" --timeout 10s \
		-s "$SRC/bench/post.lua" "$u" -- "$size" 2>&1 | grep '^requests=')
	read -r c1 r1 < <(bench_cpu_ns "$@")
	read -r f1 _ < <(bench_cpu_ns "$1")
	! declare -F bench_after >/dev/null || bench_after
	BW=()
	for kv in $line; do BW[${kv%%=*}]=${kv#*=}; done
	BW_NS=$((c1 - c0))
	BW_RUNS=$((r1 - r0))
	BW_FIRST_NS=$((f1 - f0))
	[ -n "$line" ]
}

# bench_size BYTES: "1 KiB", "64 B"
bench_size() { [ "$1" -ge 1024 ] && echo "$(($1 / 1024)) KiB" || echo "$1 B"; }
