// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_ingress: the gateway's packet filter and datagram request path.
 * Attached to the gateway's interfaces; every received frame is parsed
 * (Ethernet, up to two VLAN tags, IPv4 with options or IPv6 with up to
 * XV_EXT_MAX extension headers, then UDP or TCP) and judged:
 *
 *   not IPv4/IPv6                               PASS   PASS_NOT_IP
 *   IP headers truncated or inconsistent        DROP   DROP_MALFORMED
 *   non-first fragment (no L4 header)           PASS   PASS_FRAG
 *   IP, neither TCP nor UDP (ICMP, ESP, ...)    PASS   PASS_PROTO
 *   TCP/UDP header truncated or inconsistent    DROP   DROP_MALFORMED
 *   {dport, proto} not in spry_xlisten          PASS   PASS_OTHER_PORT
 *   protected listener, no rule for the source  DROP   DROP_POLICY
 *   protected listener, deny rule (or unknown   DROP   DROP_DENY
 *     action: the filter fails closed)
 *   allowed, TCP or a plain UDP listener        PASS   ALLOW
 *   datagram port, fragment or bad request hdr  DROP   DROP_BAD_DGRAM
 *   datagram port, rule scoped to another chain DROP   DROP_CHAIN
 *   datagram port, no AF_XDP socket on the      DROP   DROP_NO_XSK
 *     frame's RX queue
 *   datagram port, valid request                REDIRECT to spry_xsks
 *
 * Malformed packets are dropped whatever their port: a header that cannot
 * be parsed cannot be matched against the listeners, so the filter fails
 * closed.  "Malformed" means: a frame shorter than its Ethernet header, a
 * third VLAN tag, an IP version that does not match the ethertype, IPv4
 * ihl < 5 or a total length shorter than the header or longer than the
 * frame, an IPv6 payload length of 0 (jumbograms are not supported) or
 * longer than the frame, an extension header that does not fit the
 * payload, a hop-by-hop header that is not first, more than XV_EXT_MAX
 * extension headers, a first fragment too short for its L4 header, a UDP
 * length < 8 or (unfragmented) beyond the IP payload, a TCP data offset
 * < 5 or beyond the IP payload.  The kernel would drop nearly all of these
 * anyway; the one legal case lost is an IPv6 packet with more than
 * XV_EXT_MAX extension headers.
 *
 * Fragments: a first fragment is judged by its L4 header like any packet
 * (and is never a valid datagram request).  Non-first fragments carry no
 * ports and pass: the kernel cannot reassemble them without the first one,
 * which was judged.  Tunnels and ESP are judged by their outer header
 * only.  Checksums are left to the kernel and to the gateway (which sees
 * the redirected frames whole).
 *
 * Every header is bounds-checked against data_end before it is read, and
 * every length field against what encloses it.  Offsets are carried as
 * scalars masked to XV_OFF_MASK, a no-op on real values (the largest
 * reachable offset is below it) that bounds them for the verifier.  The
 * parsers are global functions (xv_parse, xv_parse_l4): the verifier
 * checks each once rather than the rest of the program once per path
 * through the IPv6 extension headers (19k instead of 115k instructions
 * processed on 6.18).  Only bounded loops: VLAN tags and extension headers.
 *
 * Counters are per CPU and incremented without atomics: an update is lost
 * only if the program interrupts itself on one CPU (BPF_PROG_TEST_RUN
 * preempted by NAPI), which costs a count, never a verdict.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdp_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* #defines of uapi headers, absent from vmlinux.h. */
#define ETH_P_IP		0x0800
#define ETH_P_IPV6		0x86DD
#define ETH_P_8021Q		0x8100
#define ETH_P_8021AD		0x88A8
#define IP_MF			0x2000
#define IP_OFFSET		0x1FFF
#define IP6_OFFSET		0xFFF8
#define IP6_MF			0x0001
#define NEXTHDR_HOP		0
#define NEXTHDR_ROUTING		43
#define NEXTHDR_FRAGMENT	44
#define NEXTHDR_AUTH		51
#define NEXTHDR_DEST		60

#define XV_VLAN_MAX		2	/* VLAN tags parsed (802.1Q, 802.1ad) */
#define XV_EXT_MAX		6	/* IPv6 extension headers walked */
/*
 * Bound on every offset from data: 14 + 2 * 4 + 40 + 6 * 2048 (the longest
 * extension headers) = 12350 < 16384.
 */
#define XV_OFF_MASK		0x3FFF

/* Returned by the parsers to go on; anything else is a final verdict. */
#define XV_CONTINUE		SPRY_XV_MAX

struct vlan_tag {
	__be16	tci;
	__be16	proto;		/* encapsulated ethertype */
};

/* What the parsers found out about a packet. */
struct pkt {
	__u32	l3off;		/* IP header */
	__u32	l4off;		/* TCP/UDP header */
	__u32	l4len;		/* L4 bytes according to the IP header */
	__u32	ulen;		/* UDP length field */
	__be16	dport;
	__u8	proto;		/* L4 protocol */
	bool	v6;
	bool	frag;		/* first fragment of a fragmented datagram */
};

static __always_inline __u32 xv_off(__u32 off)
{
	barrier_var(off);
	return off & XV_OFF_MASK;
}

static __always_inline int verdict(__u32 v)
{
	__u64 *cnt = bpf_map_lookup_elem(&SPRY_MAP_XVERDICTS, &v);

	if (cnt)
		*cnt += 1;
	if (v == SPRY_XV_REDIRECT_XSK)
		return XDP_REDIRECT;
	return v >= SPRY_XV_FIRST_DROP ? XDP_DROP : XDP_PASS;
}

/* Ethernet and VLAN tags: *off past them, *proto the ethertype. */
static __always_inline __u32 parse_l2(void *data, void *data_end, __u32 *off,
				      __u16 *proto)
{
	struct ethhdr *eth = data;
	struct vlan_tag *tag;
	__u16 p;
	int i;

	if ((void *)(eth + 1) > data_end)
		return SPRY_XV_DROP_MALFORMED;
	p = bpf_ntohs(eth->h_proto);
	*off = sizeof(*eth);
	for (i = 0; i < XV_VLAN_MAX; i++) {
		if (p != ETH_P_8021Q && p != ETH_P_8021AD)
			break;
		tag = data + *off;
		if ((void *)(tag + 1) > data_end)
			return SPRY_XV_DROP_MALFORMED;
		p = bpf_ntohs(tag->proto);
		*off += sizeof(*tag);
	}
	/* A third tag could hide IP from us but not from stacked VLAN devices. */
	if (p == ETH_P_8021Q || p == ETH_P_8021AD)
		return SPRY_XV_DROP_MALFORMED;
	*proto = p;
	return XV_CONTINUE;
}

static __always_inline __u32 parse_ipv4(void *data, void *data_end, __u32 off,
					struct pkt *p)
{
	struct iphdr *iph;
	__u32 ihl, tot;
	__u16 frag;

	off = xv_off(off);
	iph = data + off;
	if ((void *)(iph + 1) > data_end)
		return SPRY_XV_DROP_MALFORMED;
	if (iph->version != 4)
		return SPRY_XV_DROP_MALFORMED;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return SPRY_XV_DROP_MALFORMED;
	tot = bpf_ntohs(iph->tot_len);
	/* Frames may carry padding after the datagram, never less of it. */
	if (tot < ihl || data + off + tot > data_end)
		return SPRY_XV_DROP_MALFORMED;
	frag = bpf_ntohs(iph->frag_off);
	if (frag & IP_OFFSET)
		return SPRY_XV_PASS_FRAG;
	p->frag = frag & IP_MF;
	p->proto = iph->protocol;
	p->l3off = off;
	p->l4off = off + ihl;
	p->l4len = tot - ihl;
	return XV_CONTINUE;
}

static __always_inline bool ipv6_is_ext(__u8 nh)
{
	return nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_DEST ||
	       nh == NEXTHDR_FRAGMENT || nh == NEXTHDR_AUTH;
}

static __always_inline __u32 parse_ipv6(void *data, void *data_end, __u32 off,
					struct pkt *p)
{
	struct ipv6_opt_hdr *oh;
	struct ipv6hdr *ip6h;
	struct frag_hdr *fh;
	__u32 plen, end, hlen;
	__u8 nh;
	int i;

	off = xv_off(off);
	ip6h = data + off;
	if ((void *)(ip6h + 1) > data_end)
		return SPRY_XV_DROP_MALFORMED;
	if (ip6h->version != 6)
		return SPRY_XV_DROP_MALFORMED;
	plen = bpf_ntohs(ip6h->payload_len);
	if (plen == 0)
		return SPRY_XV_DROP_MALFORMED;
	p->l3off = off;
	p->v6 = true;
	off += sizeof(*ip6h);
	if (data + off + plen > data_end)
		return SPRY_XV_DROP_MALFORMED;
	end = off + plen;
	nh = ip6h->nexthdr;

	for (i = 0; i < XV_EXT_MAX; i++) {
		if (!ipv6_is_ext(nh))
			break;
		off = xv_off(off);
		if (nh == NEXTHDR_FRAGMENT) {
			fh = data + off;
			if ((void *)(fh + 1) > data_end || off + sizeof(*fh) > end)
				return SPRY_XV_DROP_MALFORMED;
			if (bpf_ntohs(fh->frag_off) & IP6_OFFSET)
				return SPRY_XV_PASS_FRAG;
			if (bpf_ntohs(fh->frag_off) & IP6_MF)
				p->frag = true;
			nh = fh->nexthdr;
			off += sizeof(*fh);
			continue;
		}
		/* Hop-by-hop, routing, destination options and AH. */
		if (nh == NEXTHDR_HOP && i != 0)
			return SPRY_XV_DROP_MALFORMED;
		oh = data + off;
		if ((void *)(oh + 1) > data_end)
			return SPRY_XV_DROP_MALFORMED;
		if (nh == NEXTHDR_AUTH)
			hlen = ((__u32)oh->hdrlen + 2) * 4;
		else
			hlen = ((__u32)oh->hdrlen + 1) * 8;
		if (off + hlen > end)
			return SPRY_XV_DROP_MALFORMED;
		nh = oh->nexthdr;
		off += hlen;
	}
	if (ipv6_is_ext(nh))
		return SPRY_XV_DROP_MALFORMED;	/* chain too long */
	p->proto = nh;
	p->l4off = off;
	p->l4len = end - off;
	return XV_CONTINUE;
}

/* The L4 header at p->l4off.  Global for the same reason as xv_parse(). */
__noinline int xv_parse_l4(struct xdp_md *ctx, struct pkt *p)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct udphdr *uh;
	struct tcphdr *th;
	__u32 off, doff;

	if (!p)
		return SPRY_XV_DROP_MALFORMED;
	off = xv_off(p->l4off);

	if (p->proto == IPPROTO_UDP) {
		uh = data + off;
		if ((void *)(uh + 1) > data_end || p->l4len < sizeof(*uh))
			return SPRY_XV_DROP_MALFORMED;
		p->ulen = bpf_ntohs(uh->len);
		if (p->ulen < sizeof(*uh) || (!p->frag && p->ulen > p->l4len))
			return SPRY_XV_DROP_MALFORMED;
		p->dport = uh->dest;
		return XV_CONTINUE;
	}
	if (p->proto == IPPROTO_TCP) {
		th = data + off;
		if ((void *)(th + 1) > data_end)
			return SPRY_XV_DROP_MALFORMED;
		doff = th->doff * 4;
		/*
		 * Even a first fragment must hold the whole TCP header (and
		 * so l4len >= 20).
		 */
		if (doff < sizeof(*th) || doff > p->l4len)
			return SPRY_XV_DROP_MALFORMED;
		p->dport = th->dest;
		return XV_CONTINUE;
	}
	return SPRY_XV_PASS_PROTO;
}

/*
 * Parse the frame into @p; returns a final verdict or XV_CONTINUE.  A
 * global function, so the verifier checks it once on its own and the
 * program once after it, with @p unknown, instead of the whole rest of the
 * program once per path through the headers (every IPv6 extension header
 * chain is a path).  Everything read from @p afterwards is bounds-checked
 * again.
 */
__noinline int xv_parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	__u32 v, off = 0;
	__u16 proto = 0;

	if (!p)
		return SPRY_XV_DROP_MALFORMED;
	v = parse_l2(data, data_end, &off, &proto);
	if (v != XV_CONTINUE)
		return v;
	if (proto == ETH_P_IP)
		v = parse_ipv4(data, data_end, off, p);
	else if (proto == ETH_P_IPV6)
		v = parse_ipv6(data, data_end, off, p);
	else
		return SPRY_XV_PASS_NOT_IP;
	if (v != XV_CONTINUE)
		return v;
	return xv_parse_l4(ctx, p);
}

/* The longest policy prefix for the packet's source and @port, or NULL. */
static __always_inline struct spry_xpol *policy(void *data, void *data_end,
						const struct pkt *p)
{
	__u32 off = xv_off(p->l3off);
	struct spry_xpol6_key k6 = {};
	struct spry_xpol4_key k4 = {};
	struct ipv6hdr *ip6h;
	struct iphdr *iph;

	/* Both headers were checked by the parser; the verifier needs it again. */
	if (p->v6) {
		ip6h = data + off;
		if ((void *)(ip6h + 1) > data_end)
			return NULL;
		k6.prefixlen = SPRY_XPOL_PORT_BITS + 128;
		k6.port = p->dport;
		__builtin_memcpy(k6.addr, &ip6h->saddr, sizeof(k6.addr));
		return bpf_map_lookup_elem(&SPRY_MAP_XPOL6, &k6);
	}
	iph = data + off;
	if ((void *)(iph + 1) > data_end)
		return NULL;
	k4.prefixlen = SPRY_XPOL_PORT_BITS + 32;
	k4.port = p->dport;
	__builtin_memcpy(k4.addr, &iph->saddr, sizeof(k4.addr));
	return bpf_map_lookup_elem(&SPRY_MAP_XPOL4, &k4);
}

/*
 * A UDP packet to the datagram port from an allowed source (@rule NULL on
 * an unprotected port): a valid request goes to the AF_XDP socket of the
 * RX queue it arrived on.
 */
static __always_inline int datagram(struct xdp_md *ctx, void *data,
				    void *data_end, const struct pkt *p,
				    const struct spry_xpol *rule)
{
	__u32 off = xv_off(p->l4off + sizeof(struct udphdr));
	struct spry_xchain_stats *cs;
	struct spry_dgram_hdr *h;
	__u32 chain, len;

	if (p->frag || p->ulen < sizeof(struct udphdr) + sizeof(*h))
		return verdict(SPRY_XV_DROP_BAD_DGRAM);
	h = data + off;
	if ((void *)(h + 1) > data_end)
		return verdict(SPRY_XV_DROP_BAD_DGRAM);
	if (h->magic != bpf_htonl(SPRY_DGRAM_MAGIC) ||
	    h->version != SPRY_DGRAM_VERSION || h->flags || h->status ||
	    h->pad[0] || h->pad[1] || h->pad[2])
		return verdict(SPRY_XV_DROP_BAD_DGRAM);
	chain = bpf_ntohs(h->chain);
	len = p->ulen - sizeof(struct udphdr) - sizeof(*h);
	if (chain == 0 || chain >= SPRY_MAX_CHAINS || bpf_ntohl(h->len) != len)
		return verdict(SPRY_XV_DROP_BAD_DGRAM);

	cs = bpf_map_lookup_elem(&SPRY_MAP_XCHAIN, &chain);
	if (rule && rule->chain && rule->chain != chain) {
		if (cs)
			cs->dropped++;
		return verdict(SPRY_XV_DROP_CHAIN);
	}
	if (bpf_redirect_map(&SPRY_MAP_XSKS, ctx->rx_queue_index, XDP_DROP) !=
	    XDP_REDIRECT) {
		if (cs)
			cs->dropped++;
		return verdict(SPRY_XV_DROP_NO_XSK);
	}
	if (cs) {
		cs->packets++;
		cs->bytes += p->ulen - sizeof(struct udphdr);
	}
	return verdict(SPRY_XV_REDIRECT_XSK);
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct spry_xlisten_key lkey = {};
	struct spry_xpol *rule = NULL;
	struct spry_xlisten *l;
	struct pkt p = {};
	__u32 v, flags;

	v = xv_parse(ctx, &p);
	if (v != XV_CONTINUE)
		return verdict(v);

	lkey.port = p.dport;
	lkey.proto = p.proto;
	l = bpf_map_lookup_elem(&SPRY_MAP_XLISTEN, &lkey);
	if (!l)
		return verdict(SPRY_XV_PASS_OTHER_PORT);
	flags = l->flags;

	if (flags & SPRY_XLF_PROTECTED) {
		rule = policy(data, data_end, &p);
		if (!rule)
			return verdict(SPRY_XV_DROP_POLICY);
		if (rule->action != SPRY_XPA_ALLOW)
			return verdict(SPRY_XV_DROP_DENY);
	}
	if (p.proto == IPPROTO_UDP && (flags & SPRY_XLF_DATAGRAM))
		return datagram(ctx, data, data_end, &p, rule);
	return verdict(SPRY_XV_ALLOW);
}
