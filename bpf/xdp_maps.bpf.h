/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * BPF-only map definitions of the XDP ingress program (bpf/xdp_ingress.c).
 * Types and names: include/spry/abi.h ("XDP ingress").  Kept apart from
 * bpf/maps.bpf.h so that each object defines, creates and pins only the
 * maps it uses.
 */
#ifndef SPRY_XDP_MAPS_BPF_H
#define SPRY_XDP_MAPS_BPF_H

#include "spry/abi.h"

/* Gateway ports and what they are: {port, proto} -> protected/datagram. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPRY_XLISTEN_MAX);
	__type(key, struct spry_xlisten_key);
	__type(value, struct spry_xlisten);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_XLISTEN SEC(".maps");

/* IPv4 source policy per port: longest {port, prefix} match decides. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SPRY_XPOL_MAX);
	__type(key, struct spry_xpol4_key);
	__type(value, struct spry_xpol);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_XPOL4 SEC(".maps");

/* IPv6 source policy per port. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SPRY_XPOL_MAX);
	__type(key, struct spry_xpol6_key);
	__type(value, struct spry_xpol);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_XPOL6 SEC(".maps");

/* Per-CPU count of each XDP verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SPRY_XV_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_XVERDICTS SEC(".maps");

/* Per-CPU per-chain datagram counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SPRY_MAX_CHAINS);
	__type(key, __u32);
	__type(value, struct spry_xchain_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_XCHAIN SEC(".maps");

/* The gateway's AF_XDP sockets, one per RX queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, SPRY_XSK_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_XSKS SEC(".maps");

#endif /* SPRY_XDP_MAPS_BPF_H */
