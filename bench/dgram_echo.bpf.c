// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * dgram_echo: the cheapest datagram server there is, for
 * bench/dgram_bench.sh's "echo" path: a valid-looking IPv4 request to
 * udp_port is turned into its own response in the driver (MACs,
 * addresses and ports swapped, the RESPONSE flag set, the payload kept)
 * and sent back with XDP_TX; no process sees it.  What the load generator
 * gets through it is the generator's own ceiling on this machine.
 * Swapping the addresses leaves the IPv4 header checksum as it is; the
 * UDP checksum is set to 0 (none, allowed on IPv4).  Anything else
 * passes.  xdp_pass is the program the client's end of the veth needs to
 * receive XDP_TX frames (veth hands them to the peer's NAPI).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP		0x0800
#define ETH_ALEN		6
#define DGRAM_MAGIC		0x53505251	/* SPRY_DGRAM_MAGIC */
#define DGF_RESPONSE		1

const volatile __u16 udp_port = 0;	/* host order; set before load */

struct echo_hdrs {
	struct ethhdr	eth;
	struct iphdr	ip;
	struct udphdr	udp;
	__be32		magic;
	__u8		version;
	__u8		flags;
} __attribute__((packed));

SEC("xdp")
int xdp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct echo_hdrs *h = data;
	unsigned char mac[ETH_ALEN];
	__be32 a;
	__be16 p;

	if ((void *)(h + 1) > end || h->eth.h_proto != bpf_htons(ETH_P_IP) ||
	    h->ip.ihl != 5 || h->ip.protocol != IPPROTO_UDP ||
	    h->udp.dest != bpf_htons(udp_port) || h->magic != bpf_htonl(DGRAM_MAGIC) ||
	    (h->flags & DGF_RESPONSE))
		return XDP_PASS;
	__builtin_memcpy(mac, h->eth.h_dest, ETH_ALEN);
	__builtin_memcpy(h->eth.h_dest, h->eth.h_source, ETH_ALEN);
	__builtin_memcpy(h->eth.h_source, mac, ETH_ALEN);
	a = h->ip.saddr;
	h->ip.saddr = h->ip.daddr;
	h->ip.daddr = a;
	p = h->udp.source;
	h->udp.source = h->udp.dest;
	h->udp.dest = p;
	h->udp.check = 0;
	h->flags = DGF_RESPONSE;
	return XDP_TX;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
