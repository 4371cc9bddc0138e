/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * BPF-only map definitions.  Types and names: include/spry/abi.h.  Every map is
 * pinned by name (LIBBPF_PIN_BY_NAME) in the pin directory the loader sets.
 */
#ifndef SPRY_MAPS_BPF_H
#define SPRY_MAPS_BPF_H

#include "spry/abi.h"

/* Function instance sockets: where descriptors are redirected. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SPRY_MAX_FNS * SPRY_MAX_INST);
	__type(key, struct spry_inst_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_SOCKS SEC(".maps");

/* Who a sending socket is (chain, fn, instance, role); dies with it. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct spry_sender);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_SENDERS SEC(".maps");

/* Chains by id: hops, pool bounds, flags. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPRY_MAX_CHAINS);
	__type(key, __u32);
	__type(value, struct spry_chain);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_CHAINS SEC(".maps");

/* Functions by id: chain, live instance list. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPRY_MAX_FNS);
	__type(key, __u32);
	__type(value, struct spry_fn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_FNS SEC(".maps");

/* Allowed hand-offs within a chain: {chain, from, to} present = allowed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct spry_auth_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_AUTH SEC(".maps");

/*
 * Per-instance state: in-flight count, flags, socket cookie.  Mappable:
 * spryd sets and clears SPRY_IF_UNHEALTHY with atomic operations on its
 * mapping, which a read-modify-write through bpf() could not do without
 * losing the router's concurrent in-flight updates.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SPRY_MAX_FNS * SPRY_MAX_INST);
	__type(key, __u32);
	__type(value, struct spry_inst_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_INST SEC(".maps");

/* Per-CPU count of each router verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SPRY_V_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_VERDICTS SEC(".maps");

/* Per-CPU per-function counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SPRY_MAX_FNS);
	__type(key, __u32);
	__type(value, struct spry_fn_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_FN_STATS SEC(".maps");

/* Where each in-flight request was last delivered (slot = req_id & mask). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPRY_REQ_SLOTS);
	__type(key, __u32);
	__type(value, struct spry_reqloc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_REQLOC SEC(".maps");

/* Cloud processes: {app chain, process id} -> instance (docs/PROCESS.md). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPRY_MAX_PROCS);
	__type(key, struct spry_proc_key);
	__type(value, struct spry_proc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_PROCS SEC(".maps");

/*
 * Fan-out branches out: {caller, req_id, tag} -> the callee holding it
 * (docs/WORKFLOWS.md); spryd answers a dead callee's (spryd/fan.c).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPRY_FAN_RECS);
	__type(key, struct spry_fan_key);
	__type(value, struct spry_fan_rec);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_FANREC SEC(".maps");

/* Quarantine events for spryd. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SPRY_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SPRY_MAP_EVENTS SEC(".maps");

#endif /* SPRY_MAPS_BPF_H */
