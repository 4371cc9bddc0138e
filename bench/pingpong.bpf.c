// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * pingpong: the bare kernel path under spry's hops, for
 * bench/skmsg_pingpong.c.  A SOCKHASH of TCP sockets (two for the
 * ping-pong, K for a ring) and the least an SK_MSG program can do: the
 * first 4 bytes of each 64-byte message name the socket it goes to (BPF_F_INGRESS: it is queued for that socket's
 * owner to recv()).  No sender check, no counters, no rewriting.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef BPF_F_INGRESS
#define BPF_F_INGRESS		(1ULL << 0)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} pp_socks SEC(".maps");

SEC("sk_msg")
int pp_redirect(struct sk_msg_md *msg)
{
	void *data = msg->data, *end = msg->data_end;
	__u32 key;

	if (data + sizeof(key) > end)
		return SK_DROP;
	key = *(__u32 *)data;
	return bpf_msg_redirect_hash(msg, &pp_socks, &key, BPF_F_INGRESS);
}
