// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_xdp: the XDP ingress filter (bpf/xdp_ingress.c) through
 * BPF_PROG_TEST_RUN, kernel selftests style.  A table of packets built by
 * small helpers (Ethernet, VLAN tags, IPv4 with options, IPv6 with
 * extension headers, UDP, TCP, the datagram request header), each with
 * the XDP action it must get and the exact change of the verdict counters
 * and of the per-chain counters.
 *
 * Rows marked xsk reach the AF_XDP redirect.  They run twice: first with
 * spry_xsks empty (a drop, DROP_NO_XSK), then with a real AF_XDP socket
 * bound to queue 0 of a veth in the test's private network namespace and
 * inserted at index 0 (XDP_REDIRECT; test_run without live frames only
 * reports the action).
 *
 * Last, live: the program attached (native) to that veth end, frames sent
 * into the pair from an AF_PACKET socket on the peer; an allowed request
 * must land in the AF_XDP socket's RX ring byte for byte, a refused one
 * must not.
 *
 * Frames shorter than an Ethernet header are not in the table: no driver
 * delivers them and test_run refuses them (EINVAL on 6.18, metadata or
 * not), so the program's runt check exists for the verifier only.
 *
 * Maps are pinned in a private directory, removed at the end.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "spry/abi.h"
#include "fn-runtime/parse.h"
#include "xdp_ingress.skel.h"
#include "selftests/tap.h"
#include "selftests/bpf_env.h"

/* Ports of the test world. */
#define DGRAM_PORT	9000	/* UDP, protected, datagram */
#define OPEN_PORT	9100	/* UDP, datagram, not protected; TCP too */
#define HTTP_PORT	8080	/* TCP, protected */
#define UPROT_PORT	7000	/* UDP, protected, not datagram */
#define PLAIN_PORT	5353	/* UDP, listed, neither */
#define OTHER_PORT	53	/* not a listener */

#define CH		5	/* a chain */
#define CH2		6	/* another chain */

#define FRAME_MAX	2048
#define VETH		"spryxv0"
#define VETH_PEER	"spryxv1"
#define XSK_FRAMES	4
#define XSK_FRAME	4096
#define XSK_RING	4

/* Layers of a built frame, for truncation: at[] is where each starts. */
enum layer {
	L_ETH, L_VLAN, L_IP, L_IPOPT, L_EXT,
	L_L4 = L_EXT + 8, L_DGRAM, L_PAY, L_END, L_N,
};

#define NOWHERE		UINT32_MAX

struct frame {
	__u8	b[FRAME_MAX];
	__u32	len;
	__u32	at[L_N];
	__u8	af;		/* AF_INET, AF_INET6 or 0 */
	__u8	l4;		/* IPPROTO_* of the L4 header built */
};

enum l4kind { L4_UDP, L4_TCP, L4_ICMP, L4_NONE };

/* What to build.  Zero means the default everywhere. */
struct spec {
	__u8	af;		/* AF_INET, AF_INET6; 0: ARP */
	__u8	vlans;		/* tags: the outer one 802.1ad when 2+ */
	const char *src;	/* source address */
	__u8	optlen;		/* IPv4 option bytes (multiple of 4) */
	__u16	frag;		/* IPv4 frag_off, or the IPv6 fragment header's */
	__u8	n_ext;		/* IPv6 extension headers ... */
	__u8	ext[8];		/* ... their types, in order */
	__u8	ext_hl[8];	/* ... their hdrlen fields */
	__u8	l4;		/* enum l4kind */
	__u16	dport;
	bool	dgram;		/* a request header after UDP */
	__u16	chain;		/* its chain */
	__u16	paylen;		/* payload bytes after the L4/request header */
	__u16	pad_to;		/* Ethernet padding up to this frame length */
	/* Truncation: the frame ends cut_delta bytes into layer cut_layer. */
	bool	cut;
	__u8	cut_layer;
	__u16	cut_delta;
	bool	consistent;	/* after the cut, rewrite lengths to match */
	/*
	 * Bytes appended after the datagram (Ethernet trailer, attacker
	 * controlled): UDP headers to OTHER_PORT every 8 bytes from the IP
	 * header, so a parser that walks past the datagram's end finds one.
	 */
	__u16	trailer;
	void	(*fix)(struct frame *f);	/* break a field */
};

enum cs_want { CS_NONE, CS_PKT, CS_DROP };

struct row {
	const char *name;
	struct spec s;
	int	ret;		/* XDP action */
	__u32	xv;		/* verdict counted */
	__u8	cs;		/* enum cs_want on chain s.chain */
	bool	xsk;		/* reaches the redirect (see above) */
};

static struct xdp_ingress *skel;
static int prog_fd, m_listen, m_pol4, m_pol6, m_xv, m_chain, m_xsks;
static int ncpus;
static void *percpu_buf;
static char pin_dir[64];
static const char *const xdp_maps[] = {
	SPRY_STR(SPRY_MAP_XLISTEN), SPRY_STR(SPRY_MAP_XPOL4),
	SPRY_STR(SPRY_MAP_XPOL6), SPRY_STR(SPRY_MAP_XVERDICTS),
	SPRY_STR(SPRY_MAP_XCHAIN), SPRY_STR(SPRY_MAP_XSKS),
};

static const char *const xvnames[SPRY_XV_MAX] = {
	"PASS_NOT_IP", "PASS_PROTO", "PASS_OTHER_PORT", "PASS_FRAG", "ALLOW",
	"REDIRECT_XSK", "DROP_POLICY", "DROP_DENY", "DROP_CHAIN",
	"DROP_MALFORMED", "DROP_BAD_DGRAM", "DROP_NO_XSK",
};

/* ------------------------------------------------------------ frames */

static void put16(__u8 *p, __u16 v)
{
	v = htons(v);
	memcpy(p, &v, 2);
}

static void put32(__u8 *p, __u32 v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static __u16 get16(const __u8 *p)
{
	__u16 v;

	memcpy(&v, p, 2);
	return ntohs(v);
}

static __u16 ip_csum(const __u8 *p, unsigned int len)
{
	__u32 sum = 0;
	unsigned int i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

static __u32 eth_put(struct frame *f, __u32 o, const struct spec *s)
{
	static const __u8 dst[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const __u8 src[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	__u16 type;
	int i;

	memcpy(f->b + o, dst, 6);
	memcpy(f->b + o + 6, src, 6);
	o += 12;
	for (i = 0; i < s->vlans; i++) {
		put16(f->b + o, i == 0 && s->vlans > 1 ? 0x88A8 : 0x8100);
		put16(f->b + o + 2, 100 + i);
		if (i == 0)
			f->at[L_VLAN] = o + 2;	/* where the parser's tag starts */
		o += 4;
	}
	type = s->af == AF_INET ? 0x0800 : s->af == AF_INET6 ? 0x86DD : 0x0806;
	put16(f->b + o, type);
	return o + 2;
}

static __u32 arp_put(struct frame *f, __u32 o)
{
	__u8 *a = f->b + o;

	put16(a, 1);		/* Ethernet */
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);	/* request */
	memset(a + 8, 0x02, 6);
	inet_pton(AF_INET, "10.0.0.1", a + 14);
	inet_pton(AF_INET, "10.9.9.9", a + 24);
	return o + 28;
}

static __u8 l4_proto(const struct spec *s)
{
	switch (s->l4) {
	case L4_TCP:
		return IPPROTO_TCP;
	case L4_ICMP:
		return s->af == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	case L4_NONE:
		return 59;	/* IPv6 "no next header" */
	default:
		return IPPROTO_UDP;
	}
}

static __u32 ipv4_put(struct frame *f, __u32 o, const struct spec *s)
{
	__u8 *ip = f->b + o;

	ip[0] = 0x40 | (5 + s->optlen / 4);
	put16(ip + 4, 0x1234);
	put16(ip + 6, s->frag);
	ip[8] = 64;
	ip[9] = l4_proto(s);
	inet_pton(AF_INET, s->src ? s->src : "10.0.0.1", ip + 12);
	inet_pton(AF_INET, "10.9.9.9", ip + 16);
	if (s->optlen) {
		f->at[L_IPOPT] = o + 20;
		memset(ip + 20, 1, s->optlen);		/* NOPs */
		ip[20 + s->optlen - 1] = 0;		/* end of options */
	}
	return o + 20 + s->optlen;
}

static __u32 ipv6_put(struct frame *f, __u32 o, const struct spec *s)
{
	__u8 *ip = f->b + o, *e;
	__u8 next, type, hl;
	int i;

	ip[0] = 0x60;
	ip[6] = s->n_ext ? s->ext[0] : l4_proto(s);
	ip[7] = 64;
	inet_pton(AF_INET6, s->src ? s->src : "2001:db8::1", ip + 8);
	inet_pton(AF_INET6, "2001:db8::ffff", ip + 24);
	o += 40;
	for (i = 0; i < s->n_ext && i < 8; i++) {
		f->at[L_EXT + i] = o;
		e = f->b + o;
		type = s->ext[i];
		hl = s->ext_hl[i];
		next = i + 1 < s->n_ext ? s->ext[i + 1] : l4_proto(s);
		e[0] = next;
		if (type == 44) {			/* fragment */
			put16(e + 2, s->frag);
			put32(e + 4, 0xabcd);
			o += 8;
			continue;
		}
		e[1] = hl;
		if (type == 51) {			/* AH: SPI, seq, ICV */
			put32(e + 4, 0x100);
			put32(e + 8, 1);
			o += (hl + 2) * 4;
		} else if (type == 43) {		/* routing, type 4 */
			e[2] = 4;
			o += (hl + 1) * 8;
		} else {				/* options: PadN */
			e[2] = 1;
			e[3] = (hl + 1) * 8 - 4;
			o += (hl + 1) * 8;
		}
	}
	return o;
}

static __u32 l4_put(struct frame *f, __u32 o, const struct spec *s)
{
	__u8 *h = f->b + o;
	int i;

	f->at[L_L4] = o;
	switch (s->l4) {
	case L4_UDP:
		put16(h, 40000);
		put16(h + 2, s->dport);
		o += 8;
		if (s->dgram) {
			f->at[L_DGRAM] = o;
			h = f->b + o;
			put32(h, SPRY_DGRAM_MAGIC);
			h[4] = SPRY_DGRAM_VERSION;
			put16(h + 6, s->chain);
			memcpy(h + 8, "req-id-8", 8);
			put32(h + 20, s->paylen);
			o += sizeof(struct spry_dgram_hdr);
		}
		break;
	case L4_TCP:
		put16(h, 40000);
		put16(h + 2, s->dport);
		put32(h + 4, 1000);
		h[12] = 5 << 4;
		h[13] = 0x02;		/* SYN */
		put16(h + 14, 65535);
		o += 20;
		break;
	case L4_ICMP:
		h[0] = s->af == AF_INET6 ? 128 : 8;	/* echo request */
		o += 8;
		break;
	default:
		break;
	}
	f->at[L_PAY] = o;
	for (i = 0; i < s->paylen; i++)
		f->b[o + i] = 'a' + i % 26;
	return o + s->paylen;
}

/* Write the IP and UDP length fields (and checksum) for a frame of @end. */
static void lengths(struct frame *f, __u32 end)
{
	__u8 *ip = f->b + f->at[L_IP];

	if (f->af == AF_INET && end >= f->at[L_IP] + 20) {
		put16(ip + 2, end - f->at[L_IP]);
		put16(ip + 10, 0);
		put16(ip + 10, ip_csum(ip, (ip[0] & 15) * 4));
	} else if (f->af == AF_INET6 && end >= f->at[L_IP] + 40) {
		put16(ip + 4, end - f->at[L_IP] - 40);
	}
	if (f->l4 == IPPROTO_UDP && f->at[L_L4] != NOWHERE &&
	    end >= f->at[L_L4] + 8)
		put16(f->b + f->at[L_L4] + 4, end - f->at[L_L4]);
}

static void build(const struct spec *s, struct frame *f)
{
	__u32 o, i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < L_N; i++)
		f->at[i] = NOWHERE;
	f->af = s->af;
	f->at[L_ETH] = 0;
	o = eth_put(f, 0, s);
	f->at[L_IP] = o;
	if (s->af == AF_INET)
		o = ipv4_put(f, o, s);
	else if (s->af == AF_INET6)
		o = ipv6_put(f, o, s);
	else
		o = arp_put(f, o);
	if (s->af) {
		f->l4 = l4_proto(s);
		o = l4_put(f, o, s);
	}
	f->at[L_END] = o;
	lengths(f, o);
	f->len = o;
	if (s->pad_to > f->len)
		f->len = s->pad_to;	/* zero padding after the datagram */
	if (s->cut) {
		f->len = f->at[s->cut_layer] + s->cut_delta;
		if (s->consistent)
			lengths(f, f->len);
	}
	for (i = 0; i < s->trailer; i++) {
		static const __u8 udp[8] = { 0x9c, 0x40, 0, OTHER_PORT, 0, 8, 0, 0 };

		f->b[f->len + i] = udp[(f->len + i - f->at[L_IP]) % 8];
	}
	f->len += s->trailer;
	if (s->fix)
		s->fix(f);
}

/* Field breakers. */
#define IP(f)		((f)->b + (f)->at[L_IP])
#define L4(f)		((f)->b + (f)->at[L_L4])
#define DG(f)		((f)->b + (f)->at[L_DGRAM])

static void fix_ihl4(struct frame *f) { IP(f)[0] = 0x44; }
static void fix_ver6(struct frame *f) { IP(f)[0] = 0x65; }
static void fix_tot_big(struct frame *f) { put16(IP(f) + 2, get16(IP(f) + 2) + 1); }
static void fix_tot_small(struct frame *f) { put16(IP(f) + 2, 19); }
static void fix_plen_big(struct frame *f) { put16(IP(f) + 4, get16(IP(f) + 4) + 1); }
static void fix_plen0(struct frame *f) { put16(IP(f) + 4, 0); }
static void fix_ver4_in_v6(struct frame *f) { IP(f)[0] = 0x40; }
static void fix_ulen7(struct frame *f) { put16(L4(f) + 4, 7); }
static void fix_ulen_big(struct frame *f) { put16(L4(f) + 4, get16(L4(f) + 4) + 1); }
static void fix_doff4(struct frame *f) { L4(f)[12] = 4 << 4; }
static void fix_doff15(struct frame *f) { L4(f)[12] = 15 << 4; }
static void fix_magic(struct frame *f) { put32(DG(f), 0x53505253); }
static void fix_version(struct frame *f) { DG(f)[4] = 2; }
static void fix_flags(struct frame *f) { DG(f)[5] = SPRY_DGF_RESPONSE; }
static void fix_status(struct frame *f) { DG(f)[16] = 1; }
static void fix_pad(struct frame *f) { DG(f)[18] = 1; }
static void fix_dlen_less(struct frame *f) { put32(DG(f) + 20, 10); }
static void fix_dlen_more(struct frame *f) { put32(DG(f) + 20, 12); }

/* ------------------------------------------------------------ table */

#define V4	.af = AF_INET
#define V6	.af = AF_INET6
#define REQ(c)	.dport = DGRAM_PORT, .dgram = true, .chain = (c), .paylen = 11
#define TCP_TO(p)	.l4 = L4_TCP, .dport = (p)
#define CUT(l, d)	.cut = true, .cut_layer = (l), .cut_delta = (d)
#define EXTS(...)	.ext = { __VA_ARGS__ }, .n_ext = sizeof((__u8[]){ __VA_ARGS__ })

#define PASSES(v)	.ret = XDP_PASS, .xv = (v)
#define DROPS(v)	.ret = XDP_DROP, .xv = (v)
#define DROPC(v)	.ret = XDP_DROP, .xv = (v), .cs = CS_DROP
#define NOXSK		DROPC(SPRY_XV_DROP_NO_XSK), .xsk = true

#define HOP	0
#define RT	43
#define FRAG	44
#define AH	51
#define DST	60

static const struct row rows[] = {
	/* IPv4 source policy on the datagram port. */
	{ .name = "v4 request, exact /32 allow",
	  .s = { V4, REQ(CH) },
	  NOXSK },
	{ .name = "v4 request, /16 allow",
	  .s = { V4, .src = "10.1.7.7", REQ(CH) },
	  NOXSK },
	{ .name = "v4 request, /24 deny inside an allowed /16",
	  .s = { V4, .src = "10.1.2.3", REQ(CH) },
	  DROPS(SPRY_XV_DROP_DENY) },
	{ .name = "v4 request, no rule",
	  .s = { V4, .src = "192.0.2.1", REQ(CH) },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "v4 request, rule of another port only",
	  .s = { V4, .src = "10.4.0.5", REQ(CH) },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "v4 request for chain X, rule for chain X",
	  .s = { V4, .src = "10.2.0.9", REQ(CH) },
	  NOXSK },
	{ .name = "v4 request for chain Y, rule for chain X",
	  .s = { V4, .src = "10.2.0.9", REQ(CH2) },
	  DROPC(SPRY_XV_DROP_CHAIN) },
	/* IPv6 equivalents. */
	{ .name = "v6 request, exact /128 allow",
	  .s = { V6, REQ(CH) },
	  NOXSK },
	{ .name = "v6 request, /48 allow",
	  .s = { V6, .src = "2001:db8:1:5::9", REQ(CH) },
	  NOXSK },
	{ .name = "v6 request, /64 deny inside an allowed /48",
	  .s = { V6, .src = "2001:db8:1:2::7", REQ(CH) },
	  DROPS(SPRY_XV_DROP_DENY) },
	{ .name = "v6 request, no rule",
	  .s = { V6, .src = "2001:db8:ff::1", REQ(CH) },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "v6 request for chain X, rule for chain X",
	  .s = { V6, .src = "2001:db8:2::3", REQ(CH) },
	  NOXSK },
	{ .name = "v6 request for chain Y, rule for chain X",
	  .s = { V6, .src = "2001:db8:2::3", REQ(CH2) },
	  DROPC(SPRY_XV_DROP_CHAIN) },
	{ .name = "unprotected datagram port, source without rules",
	  .s = { V4, .src = "192.0.2.1", .dport = OPEN_PORT, .dgram = true, .chain = CH,
		 .paylen = 3 },
	  NOXSK },
	/* The request header. */
	{ .name = "bad magic",
	  .s = { V4, REQ(CH), .fix = fix_magic },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "bad version",
	  .s = { V4, REQ(CH), .fix = fix_version },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "response flag in a request",
	  .s = { V6, REQ(CH), .fix = fix_flags },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "status set in a request",
	  .s = { V4, REQ(CH), .fix = fix_status },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "pad not zero",
	  .s = { V4, REQ(CH), .fix = fix_pad },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "chain 0",
	  .s = { V4, REQ(0) },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "chain 256",
	  .s = { V4, REQ(256) },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "length field below the payload",
	  .s = { V4, REQ(CH), .fix = fix_dlen_less },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "length field beyond the payload",
	  .s = { V6, REQ(CH), .fix = fix_dlen_more },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "UDP payload shorter than the request header",
	  .s = { V4, REQ(CH), CUT(L_DGRAM, 20), .consistent = true },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "UDP payload empty",
	  .s = { V6, REQ(CH), CUT(L_DGRAM, 0), .consistent = true },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "frame cut inside the request header",
	  .s = { V4, REQ(CH), CUT(L_DGRAM, 20) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "bad request from a source without rules",
	  .s = { V4, .src = "192.0.2.1", REQ(CH), .fix = fix_magic },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "request in an Ethernet-padded frame",
	  .s = { V4, .dport = DGRAM_PORT, .dgram = true, .chain = CH, .pad_to = 80 },
	  NOXSK },
	/* Ethernet and VLAN. */
	{ .name = "request with an 802.1Q tag",
	  .s = { V4, .vlans = 1, REQ(CH) },
	  NOXSK },
	{ .name = "v6 request with 802.1ad + 802.1Q tags",
	  .s = { V6, .vlans = 2, REQ(CH) },
	  NOXSK },
	{ .name = "three VLAN tags",
	  .s = { V4, .vlans = 3, REQ(CH) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "frame cut in the VLAN tag",
	  .s = { V4, .vlans = 1, REQ(CH), CUT(L_VLAN, 2) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "frame cut in the second VLAN tag",
	  .s = { V4, .vlans = 2, REQ(CH), CUT(L_VLAN, 6) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "IPv4 ethertype, frame ends with the Ethernet header",
	  .s = { V4, REQ(CH), CUT(L_IP, 0) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "IPv6 ethertype, frame ends with the Ethernet header",
	  .s = { V6, REQ(CH), CUT(L_IP, 0) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "ARP",
	  .s = { 0 },
	  PASSES(SPRY_XV_PASS_NOT_IP) },
	{ .name = "ARP with an 802.1Q tag",
	  .s = { 0, .vlans = 1 },
	  PASSES(SPRY_XV_PASS_NOT_IP) },
	/* IPv4 header. */
	{ .name = "v4 request with 8 bytes of options",
	  .s = { V4, .optlen = 8, REQ(CH) },
	  NOXSK },
	{ .name = "v4 TCP with 40 bytes of options, allowed",
	  .s = { V4, .optlen = 40, TCP_TO(HTTP_PORT) },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "v4 ihl 4",
	  .s = { V4, REQ(CH), .fix = fix_ihl4 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v4 ihl 4, ICMP",
	  .s = { V4, .l4 = L4_ICMP, .fix = fix_ihl4 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v4 ethertype, version 6",
	  .s = { V4, REQ(CH), .fix = fix_ver6 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "frame cut in the IPv4 header",
	  .s = { V4, REQ(CH), CUT(L_IP, 10) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "frame cut in the IPv4 options",
	  .s = { V4, .optlen = 12, REQ(CH), CUT(L_IPOPT, 4) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v4 total length beyond the frame",
	  .s = { V4, REQ(CH), .fix = fix_tot_big },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v4 total length below ihl",
	  .s = { V4, REQ(CH), .fix = fix_tot_small },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	/* IPv4 fragments. */
	{ .name = "v4 non-first fragment, source without rules",
	  .s = { V4, .src = "192.0.2.1", REQ(CH), .frag = 100 },
	  PASSES(SPRY_XV_PASS_FRAG) },
	{ .name = "v4 first fragment, source without rules",
	  .s = { V4, .src = "192.0.2.1", REQ(CH), .frag = 0x2000 },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "v4 first fragment of a request, allowed source",
	  .s = { V4, REQ(CH), .frag = 0x2000 },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "v4 first fragment, TCP to the HTTP port, allowed",
	  .s = { V4, TCP_TO(HTTP_PORT), .frag = 0x2000 },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "v4 first fragment too short for its UDP header",
	  .s = { V4, REQ(CH), .frag = 0x2000, CUT(L_L4, 4), .consistent = true, .trailer = 16 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v4 DF set, not a fragment",
	  .s = { V4, REQ(CH), .frag = 0x4000 },
	  NOXSK },
	/* IPv6 header and extension headers. */
	{ .name = "v6 hop-by-hop, routing, destination options",
	  .s = { V6, EXTS(HOP, RT, DST), .ext_hl = { 0, 2, 1 }, REQ(CH) },
	  NOXSK },
	{ .name = "v6 AH",
	  .s = { V6, EXTS(AH), .ext_hl = { 4 }, REQ(CH) },
	  NOXSK },
	{ .name = "v6 six extension headers",
	  .s = { V6, EXTS(HOP, DST, RT, FRAG, AH, DST), .ext_hl = { 0, 0, 0, 0, 2, 0 }, REQ(CH) },
	  NOXSK },
	{ .name = "v6 seven extension headers",
	  .s = { V6, EXTS(HOP, DST, RT, DST, AH, DST, DST), .ext_hl = { 0, 0, 0, 0, 2, 0, 0 },
		 REQ(CH) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 hop-by-hop not first",
	  .s = { V6, EXTS(DST, HOP), REQ(CH) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 ethertype, version 4",
	  .s = { V6, REQ(CH), .fix = fix_ver4_in_v6 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "frame cut in the IPv6 header",
	  .s = { V6, REQ(CH), CUT(L_IP, 39) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload length beyond the frame",
	  .s = { V6, REQ(CH), .fix = fix_plen_big },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload length 0 (jumbogram)",
	  .s = { V6, REQ(CH), .fix = fix_plen0 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload length 0, ICMPv6",
	  .s = { V6, .l4 = L4_ICMP, .fix = fix_plen0 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload ends 1 byte into hop-by-hop",
	  .s = { V6, EXTS(HOP), REQ(CH), CUT(L_EXT, 1), .consistent = true },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload ends inside routing, trailer follows",
	  .s = { V6, EXTS(HOP, RT), .ext_hl = { 0, 1 }, REQ(CH), CUT(L_EXT + 1, 12),
		 .consistent = true, .trailer = 32 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload ends inside destination options, trailer follows",
	  .s = { V6, EXTS(DST), REQ(CH), CUT(L_EXT, 6), .consistent = true, .trailer = 32 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload ends inside AH, trailer follows",
	  .s = { V6, EXTS(AH), .ext_hl = { 4 }, REQ(CH), CUT(L_EXT, 20), .consistent = true,
		 .trailer = 32 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 payload ends inside the fragment header, trailer follows",
	  .s = { V6, EXTS(FRAG), REQ(CH), CUT(L_EXT, 4), .consistent = true, .trailer = 32 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "frame cut in an extension header",
	  .s = { V6, EXTS(HOP, DST), REQ(CH), CUT(L_EXT + 1, 3) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "v6 no next header",
	  .s = { V6, EXTS(DST), .l4 = L4_NONE },
	  PASSES(SPRY_XV_PASS_PROTO) },
	/* IPv6 fragments. */
	{ .name = "v6 non-first fragment, source without rules",
	  .s = { V6, .src = "2001:db8:ff::1", EXTS(FRAG), .frag = 0x0008, REQ(CH) },
	  PASSES(SPRY_XV_PASS_FRAG) },
	{ .name = "v6 first fragment, source without rules",
	  .s = { V6, .src = "2001:db8:ff::1", EXTS(FRAG), .frag = 0x0001, REQ(CH) },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "v6 first fragment of a request, allowed source",
	  .s = { V6, EXTS(HOP, FRAG), .frag = 0x0001, REQ(CH) },
	  DROPS(SPRY_XV_DROP_BAD_DGRAM) },
	{ .name = "v6 atomic fragment (offset 0, no M)",
	  .s = { V6, EXTS(FRAG), REQ(CH) },
	  NOXSK },
	/* UDP and TCP headers. */
	{ .name = "frame cut in the UDP header",
	  .s = { V4, REQ(CH), CUT(L_L4, 4) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "IP payload shorter than a UDP header",
	  .s = { V6, REQ(CH), CUT(L_L4, 6), .consistent = true },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "UDP length 7",
	  .s = { V4, REQ(CH), .fix = fix_ulen7 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "UDP length beyond the IP payload",
	  .s = { V6, REQ(CH), .fix = fix_ulen_big },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "frame cut in the TCP header",
	  .s = { V4, TCP_TO(HTTP_PORT), CUT(L_L4, 12) },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "IP payload shorter than a TCP header",
	  .s = { V4, TCP_TO(HTTP_PORT), CUT(L_L4, 19), .consistent = true },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "TCP data offset 4",
	  .s = { V4, TCP_TO(HTTP_PORT), .fix = fix_doff4 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	{ .name = "TCP data offset beyond the IP payload",
	  .s = { V6, TCP_TO(HTTP_PORT), .fix = fix_doff15 },
	  DROPS(SPRY_XV_DROP_MALFORMED) },
	/* The HTTP port and the other listeners. */
	{ .name = "v4 TCP to the HTTP port, allowed source",
	  .s = { V4, TCP_TO(HTTP_PORT), .paylen = 40 },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "v4 TCP to the HTTP port, no rule",
	  .s = { V4, .src = "10.1.7.7", TCP_TO(HTTP_PORT) },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "v4 TCP to the HTTP port, deny rule",
	  .s = { V4, .src = "10.3.3.3", TCP_TO(HTTP_PORT) },
	  DROPS(SPRY_XV_DROP_DENY) },
	{ .name = "v4 TCP to the HTTP port, port-scoped rule",
	  .s = { V4, .src = "10.4.0.5", TCP_TO(HTTP_PORT) },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "v6 TCP to the HTTP port, allowed source",
	  .s = { V6, TCP_TO(HTTP_PORT) },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "v6 TCP to the HTTP port, no rule",
	  .s = { V6, .src = "2001:db8:1:5::9", TCP_TO(HTTP_PORT) },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "TCP to the datagram port's number",
	  .s = { V4, .src = "192.0.2.1", TCP_TO(DGRAM_PORT) },
	  PASSES(SPRY_XV_PASS_OTHER_PORT) },
	{ .name = "v4 UDP to another port",
	  .s = { V4, .src = "192.0.2.1", .dport = OTHER_PORT, .paylen = 30 },
	  PASSES(SPRY_XV_PASS_OTHER_PORT) },
	{ .name = "v6 UDP to another port",
	  .s = { V6, .src = "2001:db8:ff::1", .dport = OTHER_PORT },
	  PASSES(SPRY_XV_PASS_OTHER_PORT) },
	{ .name = "TCP to a listener flagged datagram (ignored on TCP)",
	  .s = { V4, .src = "192.0.2.1", TCP_TO(OPEN_PORT) },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "UDP to an unprotected plain listener",
	  .s = { V4, .src = "192.0.2.1", .dport = PLAIN_PORT },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "UDP to a protected plain listener, allowed",
	  .s = { V4, .dport = UPROT_PORT, .paylen = 5 },
	  PASSES(SPRY_XV_ALLOW) },
	{ .name = "UDP to a protected plain listener, no rule",
	  .s = { V6, .dport = UPROT_PORT, .paylen = 5 },
	  DROPS(SPRY_XV_DROP_POLICY) },
	{ .name = "ICMP",
	  .s = { V4, .src = "192.0.2.1", .l4 = L4_ICMP },
	  PASSES(SPRY_XV_PASS_PROTO) },
	{ .name = "ICMPv6 after a destination options header",
	  .s = { V6, EXTS(DST), .l4 = L4_ICMP },
	  PASSES(SPRY_XV_PASS_PROTO) },
};

#define N_ROWS	((int)(sizeof(rows) / sizeof(rows[0])))

/* ------------------------------------------------------------ maps */

static int listen_put(__u16 port, __u8 proto, __u32 flags)
{
	struct spry_xlisten_key k = { .port = htons(port), .proto = proto };
	struct spry_xlisten v = { .flags = flags };

	return bpf_map_update_elem(m_listen, &k, &v, BPF_NOEXIST) ? -errno : 0;
}

/* A rule "@cidr on @port: @action, @chain". */
static int pol_put(const char *cidr, __u16 port, __u8 action, __u16 chain)
{
	struct spry_xpol v = { .action = action, .chain = chain };
	struct spry_xpol6_key k6 = { .port = htons(port) };
	struct spry_xpol4_key k4 = { .port = htons(port) };
	char addr[64];
	const char *slash = strchr(cidr, '/');
	int len;

	if (!slash || (size_t)(slash - cidr) >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, cidr, slash - cidr);
	addr[slash - cidr] = 0;
	if (spry_num__parse_int(slash + 1, 0, 128, &len))
		return -EINVAL;
	if (inet_pton(AF_INET, addr, k4.addr) == 1) {
		k4.prefixlen = SPRY_XPOL_PORT_BITS + len;
		return bpf_map_update_elem(m_pol4, &k4, &v, BPF_NOEXIST) ? -errno : 0;
	}
	if (inet_pton(AF_INET6, addr, k6.addr) == 1) {
		k6.prefixlen = SPRY_XPOL_PORT_BITS + len;
		return bpf_map_update_elem(m_pol6, &k6, &v, BPF_NOEXIST) ? -errno : 0;
	}
	return -EINVAL;
}

static int world_setup(void)
{
	int err = 0;

	err = err ?: listen_put(DGRAM_PORT, IPPROTO_UDP,
				SPRY_XLF_PROTECTED | SPRY_XLF_DATAGRAM);
	err = err ?: listen_put(OPEN_PORT, IPPROTO_UDP, SPRY_XLF_DATAGRAM);
	err = err ?: listen_put(HTTP_PORT, IPPROTO_TCP, SPRY_XLF_PROTECTED);
	/* DATAGRAM means nothing on TCP. */
	err = err ?: listen_put(OPEN_PORT, IPPROTO_TCP, SPRY_XLF_DATAGRAM);
	err = err ?: listen_put(UPROT_PORT, IPPROTO_UDP, SPRY_XLF_PROTECTED);
	err = err ?: listen_put(PLAIN_PORT, IPPROTO_UDP, 0);

	err = err ?: pol_put("10.0.0.1/32", DGRAM_PORT, SPRY_XPA_ALLOW, 0);
	err = err ?: pol_put("10.1.0.0/16", DGRAM_PORT, SPRY_XPA_ALLOW, 0);
	err = err ?: pol_put("10.1.2.0/24", DGRAM_PORT, SPRY_XPA_DENY, 0);
	err = err ?: pol_put("10.2.0.0/24", DGRAM_PORT, SPRY_XPA_ALLOW, CH);
	err = err ?: pol_put("10.0.0.1/32", HTTP_PORT, SPRY_XPA_ALLOW, 0);
	err = err ?: pol_put("10.3.0.0/16", HTTP_PORT, SPRY_XPA_DENY, 0);
	err = err ?: pol_put("10.4.0.0/16", HTTP_PORT, SPRY_XPA_ALLOW, 0);
	err = err ?: pol_put("10.0.0.1/32", UPROT_PORT, SPRY_XPA_ALLOW, 0);

	err = err ?: pol_put("2001:db8::1/128", DGRAM_PORT, SPRY_XPA_ALLOW, 0);
	err = err ?: pol_put("2001:db8:1::/48", DGRAM_PORT, SPRY_XPA_ALLOW, 0);
	err = err ?: pol_put("2001:db8:1:2::/64", DGRAM_PORT, SPRY_XPA_DENY, 0);
	err = err ?: pol_put("2001:db8:2::/64", DGRAM_PORT, SPRY_XPA_ALLOW, CH);
	err = err ?: pol_put("2001:db8::1/128", HTTP_PORT, SPRY_XPA_ALLOW, 0);
	return err;
}

static int xv_read(__u64 out[SPRY_XV_MAX])
{
	__u64 *vals = percpu_buf;
	__u32 v;
	int cpu;

	for (v = 0; v < SPRY_XV_MAX; v++) {
		if (bpf_map_lookup_elem(m_xv, &v, vals))
			return -errno;
		out[v] = 0;
		for (cpu = 0; cpu < ncpus; cpu++)
			out[v] += vals[cpu];
	}
	return 0;
}

/* Chain @chain's counters in @one, the sum over all chains in @all. */
static int cs_read(__u16 chain, struct spry_xchain_stats *one,
		   struct spry_xchain_stats *all)
{
	struct spry_xchain_stats *vals = percpu_buf, s;
	__u32 c;
	int cpu;

	memset(one, 0, sizeof(*one));
	memset(all, 0, sizeof(*all));
	for (c = 0; c < SPRY_MAX_CHAINS; c++) {
		if (bpf_map_lookup_elem(m_chain, &c, vals))
			return -errno;
		memset(&s, 0, sizeof(s));
		for (cpu = 0; cpu < ncpus; cpu++) {
			s.packets += vals[cpu].packets;
			s.bytes += vals[cpu].bytes;
			s.dropped += vals[cpu].dropped;
		}
		if (c == chain)
			*one = s;
		all->packets += s.packets;
		all->bytes += s.bytes;
		all->dropped += s.dropped;
	}
	return 0;
}

/* ------------------------------------------------------------ running */

/* One test run of @f on RX queue 0. */
static int run(const struct frame *f, __u32 *retval)
{
	struct xdp_md ctx = { .data_end = f->len, .rx_queue_index = 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = f->b,
		.data_size_in = f->len,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = 1,
	);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	*retval = opts.retval;
	return 0;
}

static const char *xvname(__u32 v)
{
	return v < SPRY_XV_MAX ? xvnames[v] : "?";
}

/*
 * Run row @r; with @xsk_bound its redirect finds a socket.  Checks the
 * action, that exactly the expected verdict moved by one, and the chain
 * counters.
 */
static void run_row(const struct row *r, bool xsk_bound)
{
	struct spry_xchain_stats c0, a0, c1, a1, want = {};
	__u64 before[SPRY_XV_MAX], after[SPRY_XV_MAX];
	__u32 xv = r->xv, retval = ~0U, v;
	int ret = r->ret, err;
	struct frame f;
	bool ok = true;
	__u8 cs = r->cs;

	if (r->xsk && xsk_bound) {
		ret = XDP_REDIRECT;
		xv = SPRY_XV_REDIRECT_XSK;
		cs = CS_PKT;
	}
	build(&r->s, &f);
	if (xv_read(before) || cs_read(r->s.chain, &c0, &a0)) {
		tap_ok(0, "%s: reading counters: %s", r->name, strerror(errno));
		return;
	}
	err = run(&f, &retval);
	if (err) {
		tap_ok(0, "%s: test_run: %s", r->name, strerror(-err));
		return;
	}
	if (xv_read(after) || cs_read(r->s.chain, &c1, &a1)) {
		tap_ok(0, "%s: reading counters: %s", r->name, strerror(errno));
		return;
	}
	if ((int)retval != ret) {
		tap_diag("action %u, expected %d", retval, ret);
		ok = false;
	}
	for (v = 0; v < SPRY_XV_MAX; v++) {
		if (after[v] - before[v] != (v == xv)) {
			tap_diag("verdict %s moved by %llu, expected %d", xvname(v),
				 (unsigned long long)(after[v] - before[v]), v == xv);
			ok = false;
		}
	}
	if (cs == CS_PKT) {
		want.packets = 1;
		want.bytes = sizeof(struct spry_dgram_hdr) + r->s.paylen;
	} else if (cs == CS_DROP) {
		want.dropped = 1;
	}
	if (c1.packets - c0.packets != want.packets ||
	    c1.bytes - c0.bytes != want.bytes ||
	    c1.dropped - c0.dropped != want.dropped ||
	    a1.packets - a0.packets != want.packets ||
	    a1.bytes - a0.bytes != want.bytes ||
	    a1.dropped - a0.dropped != want.dropped) {
		tap_diag("chain %u moved by %llu/%llu/%llu (all chains %llu/%llu/%llu), "
			 "expected %llu/%llu/%llu packets/bytes/dropped", r->s.chain,
			 (unsigned long long)(c1.packets - c0.packets),
			 (unsigned long long)(c1.bytes - c0.bytes),
			 (unsigned long long)(c1.dropped - c0.dropped),
			 (unsigned long long)(a1.packets - a0.packets),
			 (unsigned long long)(a1.bytes - a0.bytes),
			 (unsigned long long)(a1.dropped - a0.dropped),
			 (unsigned long long)want.packets,
			 (unsigned long long)want.bytes,
			 (unsigned long long)want.dropped);
		ok = false;
	}
	tap_ok(ok, "%s%s: %s (%u bytes)", r->name,
	       r->xsk ? (xsk_bound ? " [socket]" : " [no socket]") : "",
	       xvname(xv), f.len);
}

/* ------------------------------------------------------------ AF_XDP */

struct xsk {
	int	fd;
	void	*umem;
	int	ifindex;
	bool	attached;	/* xdp_ingress attached to the veth */
	/* Rings, mapped for the live part. */
	void	*fill_map, *rx_map;
	size_t	fill_len, rx_len;
	__u32	*fill_prod, *rx_prod, *rx_cons;
	__u64	*fill_desc;
	struct xdp_desc *rx_desc;
};

static struct xsk xsk = { .fd = -1 };

/*
 * A veth pair with one queue each in this (private) namespace, and an
 * AF_XDP socket bound to queue 0 of its first end in copy mode, with a
 * UMEM of XSK_FRAMES frames.  Returns 0, or -errno with @why set.
 */
static int xsk_setup(const char **why)
{
	struct xdp_umem_reg mr = {};
	struct sockaddr_xdp sxdp = {};
	int ring = XSK_RING;

	if (system("ip link add " VETH " numrxqueues 1 numtxqueues 1 type veth peer name "
		   VETH_PEER " numrxqueues 1 numtxqueues 1 >/dev/null 2>&1") ||
	    system("ip link set " VETH " up >/dev/null 2>&1") ||
	    system("ip link set " VETH_PEER " up >/dev/null 2>&1")) {
		*why = "cannot create a veth pair with ip(8)";
		return -ENODEV;
	}
	xsk.ifindex = if_nametoindex(VETH);
	if (!xsk.ifindex) {
		*why = "veth has no ifindex";
		return -ENODEV;
	}
	xsk.umem = mmap(NULL, XSK_FRAMES * XSK_FRAME, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (xsk.umem == MAP_FAILED) {
		xsk.umem = NULL;
		*why = "cannot map the UMEM";
		return -ENOMEM;
	}
	xsk.fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (xsk.fd < 0) {
		*why = "no AF_XDP sockets";
		return -errno;
	}
	mr.addr = (uintptr_t)xsk.umem;
	mr.len = XSK_FRAMES * XSK_FRAME;
	mr.chunk_size = XSK_FRAME;
	if (setsockopt(xsk.fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr)) ||
	    setsockopt(xsk.fd, SOL_XDP, XDP_UMEM_FILL_RING, &ring, sizeof(ring)) ||
	    setsockopt(xsk.fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ring, sizeof(ring)) ||
	    setsockopt(xsk.fd, SOL_XDP, XDP_RX_RING, &ring, sizeof(ring))) {
		*why = "AF_XDP UMEM or ring setup refused";
		return -errno;
	}
	sxdp.sxdp_family = AF_XDP;
	sxdp.sxdp_ifindex = xsk.ifindex;
	sxdp.sxdp_queue_id = 0;
	sxdp.sxdp_flags = XDP_COPY;
	if (bind(xsk.fd, (struct sockaddr *)&sxdp, sizeof(sxdp))) {
		*why = "AF_XDP bind to the veth refused";
		return -errno;
	}
	return 0;
}

/* Map the fill and RX rings and hand every UMEM frame to the kernel. */
static int xsk_rings(void)
{
	struct xdp_mmap_offsets mo;
	socklen_t len = sizeof(mo);
	__u32 i;

	if (getsockopt(xsk.fd, SOL_XDP, XDP_MMAP_OFFSETS, &mo, &len))
		return -errno;
	xsk.fill_len = mo.fr.desc + XSK_RING * sizeof(__u64);
	xsk.fill_map = mmap(NULL, xsk.fill_len, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_POPULATE, xsk.fd, XDP_UMEM_PGOFF_FILL_RING);
	if (xsk.fill_map == MAP_FAILED) {
		xsk.fill_map = NULL;
		return -errno;
	}
	xsk.rx_len = mo.rx.desc + XSK_RING * sizeof(struct xdp_desc);
	xsk.rx_map = mmap(NULL, xsk.rx_len, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_POPULATE, xsk.fd, XDP_PGOFF_RX_RING);
	if (xsk.rx_map == MAP_FAILED) {
		xsk.rx_map = NULL;
		return -errno;
	}
	xsk.fill_prod = (__u32 *)((char *)xsk.fill_map + mo.fr.producer);
	xsk.fill_desc = (__u64 *)((char *)xsk.fill_map + mo.fr.desc);
	xsk.rx_prod = (__u32 *)((char *)xsk.rx_map + mo.rx.producer);
	xsk.rx_cons = (__u32 *)((char *)xsk.rx_map + mo.rx.consumer);
	xsk.rx_desc = (struct xdp_desc *)((char *)xsk.rx_map + mo.rx.desc);
	for (i = 0; i < XSK_RING; i++)
		xsk.fill_desc[i] = (__u64)i * XSK_FRAME;
	__atomic_store_n(xsk.fill_prod, XSK_RING, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Wait up to @ms for a frame on the RX ring; copy it to @out (at most
 * @cap bytes) and give its UMEM frame back.  Returns its length, 0 when
 * none came, -errno on error.
 */
static int xsk_recv(__u8 *out, __u32 cap, int ms)
{
	struct pollfd pfd = { .fd = xsk.fd, .events = POLLIN };
	__u32 cons, prod, fprod;
	struct xdp_desc d;

	cons = *xsk.rx_cons;
	prod = __atomic_load_n(xsk.rx_prod, __ATOMIC_ACQUIRE);
	if (prod == cons) {
		if (poll(&pfd, 1, ms) < 0)
			return -errno;
		prod = __atomic_load_n(xsk.rx_prod, __ATOMIC_ACQUIRE);
		if (prod == cons)
			return 0;
	}
	d = xsk.rx_desc[cons & (XSK_RING - 1)];
	if (d.addr + d.len > XSK_FRAMES * XSK_FRAME || d.len > cap)
		return -EMSGSIZE;
	memcpy(out, (__u8 *)xsk.umem + d.addr, d.len);
	__atomic_store_n(xsk.rx_cons, cons + 1, __ATOMIC_RELEASE);
	/* The frame goes back to the fill ring (aligned mode: chunk start). */
	fprod = *xsk.fill_prod;
	xsk.fill_desc[fprod & (XSK_RING - 1)] = d.addr & ~((__u64)XSK_FRAME - 1);
	__atomic_store_n(xsk.fill_prod, fprod + 1, __ATOMIC_RELEASE);
	return d.len;
}

/* Send @f into the veth pair from its peer end. */
static int veth_send(const struct frame *f)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = if_nametoindex(VETH_PEER),
		.sll_halen = 6,
	};
	int fd, err = 0;

	if (!sll.sll_ifindex)
		return -ENODEV;
	memcpy(sll.sll_addr, f->b, 6);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, f->b, f->len, 0, (struct sockaddr *)&sll, sizeof(sll)) !=
	    (ssize_t)f->len)
		err = errno ? -errno : -EIO;
	close(fd);
	return err;
}

/*
 * The live part: xdp_ingress on the veth end the socket is bound to, an
 * allowed request and a refused one sent from the peer.
 */
static void test_live(void)
{
	const struct row *req = &rows[0], *refused = NULL;
	struct spry_xchain_stats c0, a0, c1, a1;
	__u64 before[SPRY_XV_MAX], after[SPRY_XV_MAX];
	__u8 got[FRAME_MAX];
	struct frame f;
	int i, n, err;

	for (i = 0; i < N_ROWS; i++)
		if (rows[i].xv == SPRY_XV_DROP_POLICY && rows[i].s.dgram && !refused)
			refused = &rows[i];
	err = xsk_rings();
	if (!err)
		err = bpf_xdp_attach(xsk.ifindex, prog_fd, XDP_FLAGS_DRV_MODE, NULL) ?
		      -errno : 0;
	xsk.attached = !err;
	tap_ok(!err, "rings mapped, xdp_ingress attached to " VETH " in native mode (%s)",
	       err ? strerror(-err) : "ok");
	if (err) {
		tap_skip("live request reaches the AF_XDP socket", "setup failed");
		tap_skip("live refused request does not", "setup failed");
		return;
	}

	build(&req->s, &f);
	err = xv_read(before) ?: cs_read(req->s.chain, &c0, &a0) ?: veth_send(&f);
	n = err ?: xsk_recv(got, sizeof(got), 2000);
	err = n < 0 ? n : (xv_read(after) ?: cs_read(req->s.chain, &c1, &a1));
	if (n > 0 && (n != (int)f.len || memcmp(got, f.b, f.len)))
		tap_diag("received %d bytes, sent %u, %s", n, f.len,
			 n == (int)f.len ? "contents differ" : "lengths differ");
	tap_ok(!err && n == (int)f.len && !memcmp(got, f.b, f.len) &&
	       after[SPRY_XV_REDIRECT_XSK] - before[SPRY_XV_REDIRECT_XSK] == 1 &&
	       c1.packets - c0.packets == 1,
	       "live request (%s) reaches the AF_XDP socket intact, counted (%s)",
	       req->name, err ? strerror(-err) : n ? "ok" : "nothing received");

	build(&refused->s, &f);
	err = xv_read(before) ?: veth_send(&f);
	n = err ?: xsk_recv(got, sizeof(got), 300);
	err = n < 0 ? n : xv_read(after);
	tap_ok(!err && n == 0 &&
	       after[SPRY_XV_DROP_POLICY] - before[SPRY_XV_DROP_POLICY] == 1 &&
	       after[SPRY_XV_REDIRECT_XSK] == before[SPRY_XV_REDIRECT_XSK],
	       "live refused request (%s) does not, counted (%s)", refused->name,
	       err ? strerror(-err) : n ? "received" : "ok");
}

static void xsk_teardown(void)
{
	if (xsk.attached && bpf_xdp_detach(xsk.ifindex, XDP_FLAGS_DRV_MODE, NULL))
		tap_diag("detaching from " VETH ": %s", strerror(errno));
	if (xsk.rx_map)
		munmap(xsk.rx_map, xsk.rx_len);
	if (xsk.fill_map)
		munmap(xsk.fill_map, xsk.fill_len);
	if (xsk.fd >= 0)
		close(xsk.fd);
	if (xsk.umem)
		munmap(xsk.umem, XSK_FRAMES * XSK_FRAME);
	if (xsk.ifindex && system("ip link del " VETH " >/dev/null 2>&1"))
		tap_diag("could not delete " VETH);
}

/* ------------------------------------------------------------- main */

static bool is_xdp_map(const char *name)
{
	unsigned int i;

	for (i = 0; i < sizeof(xdp_maps) / sizeof(xdp_maps[0]); i++)
		if (!strcmp(name, xdp_maps[i]))
			return true;
	return false;
}

static int load(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = pin_dir);
	int err;

	skel = xdp_ingress__open_opts(&oopts);
	if (!skel)
		return -errno;
	err = xdp_ingress__load(skel);
	if (err)
		return err;
	prog_fd = bpf_program__fd(skel->progs.xdp_ingress);
	m_listen = bpf_map__fd(skel->maps.SPRY_MAP_XLISTEN);
	m_pol4 = bpf_map__fd(skel->maps.SPRY_MAP_XPOL4);
	m_pol6 = bpf_map__fd(skel->maps.SPRY_MAP_XPOL6);
	m_xv = bpf_map__fd(skel->maps.SPRY_MAP_XVERDICTS);
	m_chain = bpf_map__fd(skel->maps.SPRY_MAP_XCHAIN);
	m_xsks = bpf_map__fd(skel->maps.SPRY_MAP_XSKS);
	return 0;
}

static void teardown(void)
{
	struct bpf_map *map;

	if (skel) {
		bpf_object__for_each_map(map, skel->obj) {
			if (is_xdp_map(bpf_map__name(map)) && bpf_map__is_pinned(map) &&
			    bpf_map__unpin(map, NULL))
				tap_diag("unpin %s: %s", bpf_map__name(map), strerror(errno));
		}
		xdp_ingress__destroy(skel);
	}
	if (rmdir(pin_dir))
		tap_diag("rmdir %s: %s", pin_dir, strerror(errno));
	free(percpu_buf);
}

/* The pins are all in the private directory and are exactly the XDP maps. */
static bool pins_ok(void)
{
	char path[128];
	struct stat st;
	unsigned int i;
	bool ok = true;

	for (i = 0; i < sizeof(xdp_maps) / sizeof(xdp_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, xdp_maps[i]);
		if (stat(path, &st)) {
			tap_diag("missing pin %s", path);
			ok = false;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", pin_dir, SPRY_STR(SPRY_MAP_SOCKS));
	if (!stat(path, &st)) {
		tap_diag("router map pinned: %s", path);
		ok = false;
	}
	return ok;
}

static void case_setup(void)
{
	int err;

	if (!bpf_env_loaded(load(), "private pins"))
		return;
	tap_ok(pins_ok(), "the six XDP maps pinned in %s, no router map", pin_dir);
	err = world_setup();
	if (!tap_ok(!err, "listeners and policy rules set up (%s)",
		    err ? strerror(-err) : "ok"))
		tap_skip_rest("no listeners and rules");
}

static void case_table(void)
{
	int i;

	for (i = 0; i < N_ROWS; i++)
		run_row(&rows[i], false);
}

/* Why there is no AF_XDP socket in spry_xsks[0], or NULL. */
static const char *no_xsk = "not set up";

static void case_xsk(void)
{
	const char *why = NULL;
	__u32 key = 0;
	int i, err;

	err = xsk_setup(&why);
	if (!err && bpf_map_update_elem(m_xsks, &key, &xsk.fd, BPF_ANY)) {
		err = -errno;
		why = "cannot insert the AF_XDP socket into spry_xsks";
	}
	if (err) {
		tap_diag("%s: %s", why, strerror(-err));
		no_xsk = why;
		tap_skip_case(why);
		return;
	}
	no_xsk = NULL;
	tap_ok(1, "AF_XDP socket on veth queue 0 in spry_xsks[0]");
	for (i = 0; i < N_ROWS; i++)
		if (rows[i].xsk)
			run_row(&rows[i], true);
}

static void case_live(void)
{
	if (no_xsk) {
		tap_skip_case(no_xsk);
		return;
	}
	test_live();
}

static void case_xsk_removed(void)
{
	__u32 key = 0;
	int i, err;

	if (no_xsk) {
		tap_skip_case(no_xsk);
		return;
	}
	err = bpf_map_delete_elem(m_xsks, &key) ? -errno : 0;
	tap_ok(!err, "socket removed from spry_xsks (%s)", err ? strerror(-err) : "ok");
	for (i = 0; i < N_ROWS && !rows[i].xsk; i++)
		;
	run_row(&rows[i], false);
}

static const struct tap_case cases[] = {
	TAP_CASE(case_setup, "setup: skeleton, its six pins, listeners and policy rules"),
	TAP_CASE(case_table, "the packet table through BPF_PROG_TEST_RUN: each frame its verdict"),
	TAP_CASE(case_xsk, "with an AF_XDP socket in spry_xsks, allowed requests redirect to it"),
	TAP_CASE(case_live, "live on a veth: an allowed request reaches the socket, a refused one not"),
	TAP_CASE(case_xsk_removed, "the socket removed: requests fail again"),
};

int main(void)
{
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		tap_skip_all("cannot count CPUs");
	bpf_env_enter("xdp", pin_dir, sizeof(pin_dir));
	percpu_buf = calloc(ncpus, sizeof(struct spry_xchain_stats));
	if (!percpu_buf) {
		rmdir(pin_dir);
		tap_bail_out("out of memory");
	}
	ret = tap_run_cases(cases, TAP_N(cases));
	xsk_teardown();
	teardown();
	return ret;
}
