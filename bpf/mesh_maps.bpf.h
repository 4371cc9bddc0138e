/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * BPF-only map definitions of the mesh accelerator (bpf/mesh.c).  Types and
 * names: bpf/mesh.h.  Every map is pinned by name (LIBBPF_PIN_BY_NAME) in
 * the pin directory the loader sets, like the router's and the XDP maps.
 */
#ifndef SPRY_MESH_MAPS_BPF_H
#define SPRY_MESH_MAPS_BPF_H

#include "mesh.h"

/* Accelerated sockets by their own 4-tuple; close removes them. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SPRY_MESH_MAX_SOCKS);
	__type(key, struct spry_mesh_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_SOCKS SEC(".maps");

/* Per mapped socket: its peer's key and the mode of its sends. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct spry_mesh_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_CONN SEC(".maps");

/* Mapped socket -> its psock, for the peer's queue bound. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SPRY_MESH_MAX_SOCKS);
	__type(key, struct spry_mesh_key);
	__type(value, struct spry_mesh_psock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_PSOCKS SEC(".maps");

/* Mapped socket (cookie) -> the end of what its TCP stack queued (mesh_skb). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SPRY_MESH_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct spry_mesh_rx);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_RX SEC(".maps");

/* Server port -> rule (one slot per port: a range is written port by port). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPRY_MESH_PORTS);
	__type(key, __u32);
	__type(value, struct spry_mesh_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_PORTS SEC(".maps");

/* Server address prefix -> rule, longest match. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SPRY_MESH_MAX_PREFIXES);
	__type(key, struct spry_mesh_pol4_key);
	__type(value, struct spry_mesh_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_POL4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SPRY_MESH_MAX_PREFIXES);
	__type(key, struct spry_mesh_pol6_key);
	__type(value, struct spry_mesh_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_POL6 SEC(".maps");

/* cgroup v2 id -> rule (applies to the cgroup and its descendants). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPRY_MESH_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct spry_mesh_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_CGROUPS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct spry_mesh_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SPRY_MESH_S_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_MESH_STATS SEC(".maps");

#endif /* SPRY_MESH_MAPS_BPF_H */
