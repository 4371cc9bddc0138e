#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Install the Debian 12 packages spry builds and runs with.  Idempotent:
# installs only what is missing.  Needs root.
set -eu

pkgs=(
	make gcc g++ clang pkg-config	# toolchain (clang for BPF; g++: the headers compile as C++)
	libbpf-dev libxdp-dev bpftool xdp-tools	# BPF
	libelf-dev zlib1g-dev
	libjansson-dev libyaml-dev libhttp-parser-dev libcap-dev	# parsing, JSON
	liburing-dev			# spryd --front uring
	libclang-rt-14-dev		# ASan/UBSan runtimes for clang
	iproute2 util-linux procps psmisc python3 jq	# tests: netns, unshare, ps, JSON
	groff-base man-db		# tests: the man pages render without warnings
	perl linux-source-6.1 rsync xz-utils	# tests: TAP output, the kernel's kselftest
	curl wrk gnuplot-nox nginx-light	# demo and benchmarks
	bpftrace			# bench/hop_trace.bt: where a hop's time goes
	iperf3 sockperf redis-server redis-tools	# spry mesh: tests and bench
	libhiredis-dev			# the benchmarks' Redis client (bench/resp.c, bench/kmeans_redis.c)
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx-light starts a service on install; spry's benchmarks run their own.
# So does redis-server (test_mesh.sh and bench/mesh_bench.sh run their own).
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now nginx >/dev/null 2>&1 || true
	systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
echo "install-deps: done"
