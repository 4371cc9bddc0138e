// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's datagram front room (spryd/dgram.h, docs/DATAGRAM.md): one
 * request per UDP datagram (struct spry_dgram_hdr, include/spry/abi.h), answered
 * with one datagram.
 *
 * --dgram IFNAME[:QUEUE]=CHAIN: an AF_XDP socket bound to (IFNAME, QUEUE),
 * inserted into the pinned XSKMAP spry_xsks[QUEUE] so bpf/xdp_ingress.c
 * steers the queue's datagram requests to it.  Its UMEM is a run of
 * CHAIN's pool: the pool is created with opts.n_reserved regular buffers
 * set aside (the first ones, page aligned at the data area's start), and
 * the UMEM is registered at that run's address in spryd's mapping, chunk
 * size = buffer size (2048 or 4096).  Every frame is a pool buffer:
 *
 *   spry_pool_alloc_reserved(tag DG_TAG(chain)) -> fill ring -> RX ring
 *   -> headers checked, spry_dgram_parse(), the bytes in front of the
 *      payload overwritten with metadata lines in place
 *   -> spry_pool_retag(tag -> req_id), entry_adopt() + entry_submit():
 *      the frame IS the request's buffer, the payload never moves
 *   -> the chain -> dg_complete(): retag back, Ethernet/IP/UDP and the
 *      response header written in front of the response payload in the
 *      same buffer (else copied into a fresh frame: counted)
 *   -> TX ring -> completion ring -> back on the fill ring (or freed).
 *
 * Only spryd allocates reserved buffers, so the kernel is only ever handed
 * frames inside the UMEM run.  A function may free or replace the request
 * buffer (spry_req_resize): a freed reserved buffer goes back to the
 * reserved list, and a response in another buffer is copied into a frame.
 *
 * Several sockets of one chain (queues) share one UMEM (XDP_SHARED_UMEM,
 * each with its own fill and completion ring).  One chain per (device,
 * queue): a request naming another chain is answered NO_CHAIN.
 *
 * --dgram-udp ADDR:PORT=CHAIN: the kernel UDP socket baseline: recvmmsg
 * into a scratch area, copied into a pool buffer (entry_prepare), the
 * response sent with sendmmsg from the pool buffer (header + payload
 * iovecs), the buffer freed after the send.
 *
 * Single-threaded like the rest of spryd; nothing here allocates per
 * request: the tables are made in dgram_init().
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "fn-runtime/dgram.h"
#include "spryd/dgram.h"
#include "spryd/entry.h"
#include "fn-runtime/parse.h"
#include "spryd/spryd.h"
#include "spryd/xsk.h"

#define DG_MAX_SOCKS		SPRY_XSK_MAX_QUEUES
#define DG_FRAMES_MAX		4096u	/* UMEM frames per AF_XDP socket */
#define DG_FRAMES_MIN		64u
#define DG_RX_BUDGET		256u	/* RX descriptors per event */
#define DG_UDP_BATCH		32u	/* recvmmsg/sendmmsg batch */
#define DG_UDP_SCRATCH		65536u	/* bytes per received datagram */
#define DG_UDP_META		128u	/* metadata area of a UDP request */
#define DG_META_BITS		6u	/* metadata cache: 64 sources per socket */
#define DG_REC_REFRESH_NS	(1000ULL * SPRYD_NS_PER_MS)
/* Tag of the frames spryd holds (fill, RX, TX): never a request id. */
#define DG_TAG(chain)		((1ULL << 63) | (uint64_t)(chain))

#define ETH_HLEN_		14u
#define IP4_HLEN		20u
#define IP6_HLEN		40u
#define UDP_HLEN		8u

/* Reply addressing of a request (the request record's datagram part). */
struct dg_req {
	uint8_t		sock;
	uint8_t		v6;
	uint16_t	chain;		/* chain the client named */
	__be16		sport;		/* client's port */
	__be16		dport;		/* our port */
	uint64_t	wire_id;	/* client's req_id bytes */
	uint8_t		smac[ETH_ALEN];	/* client's MAC */
	uint8_t		dmac[ETH_ALEN];	/* ours */
	uint8_t		saddr[16];
	uint8_t		daddr[16];
};

/* A source's metadata lines, formatted (write_meta). */
struct dg_meta {
	uint8_t		v6;
	uint8_t		len;		/* 0: empty */
	__be16		sport;
	uint8_t		saddr[16];
	char		line[76];	/* the longest: an IPv6 source, 70 bytes */
};

struct dg_udp_out {
	struct spry_dgram_hdr	hdr;
	uint64_t		off;	/* pool buffer to free after the send */
	uint32_t		gen;
	bool			holds;
};

struct dg_sock {
	struct spryd_ep		ep;		/* first member */
	bool			udp;
	uint8_t			idx;
	char			name[64];	/* IFNAME, or ADDR:PORT (udp) */
	uint32_t		ifindex;
	uint32_t		queue;
	char			chain_name[SPRY_NAME_LEN];
	uint16_t		chain;
	struct spry_chain	rec;
	uint64_t		rec_ns;
	uint32_t		mtu;
	bool			in_map;
	struct dg_meta		*meta;		/* 1 << DG_META_BITS */
	/* AF_XDP (xsk.h) */
	struct spryd_xsk	x;
	struct spryd_umem	*um;
	/* UDP */
	struct sockaddr_storage	laddr;
	socklen_t		laddr_len;
	uint8_t			*scratch;
	struct mmsghdr		*rmsg;
	struct iovec		*riov;
	struct sockaddr_storage	*raddr;
	struct mmsghdr		*smsg;
	struct iovec		*siov;
	struct sockaddr_storage	*saddr;
	struct dg_udp_out	*sout;
	uint32_t		n_out;
	/* counters */
	uint64_t		c_rx, c_tx, bad_frame, bad_dgram, err_resp, busy;
	uint64_t		tx_copied, tx_full, tx_big, tx_err;
};

struct spryd_dg {
	struct dg_sock		socks[DG_MAX_SOCKS];
	uint32_t		n_socks;
	struct spryd_umem	umems[SPRY_MAX_CHAINS];	/* by chain id */
	struct dg_req		*reqs;		/* SPRY_REQ_SLOTS */
	int			xsks_fd;	/* pinned spry_xsks */
	int			front;		/* front id: owner of its requests */
	const char		*specs[DG_MAX_SOCKS];
	bool			spec_udp[DG_MAX_SOCKS];
	uint32_t		n_specs;
};

static const struct spryd_front_ops dg_front_ops;

/* ----------------------------------------------------------- options */

int dgram_opt(struct spryd *d, const char *spec, bool udp)
{
	struct spryd_dg *dg = d->dg;

	if (!dg) {
		dg = calloc(1, sizeof(*dg));
		if (!dg) {
			fprintf(stderr, "spryd: out of memory\n");
			return -ENOMEM;
		}
		dg->xsks_fd = -1;
		d->dg = dg;
	}
	if (dg->n_specs == DG_MAX_SOCKS) {
		fprintf(stderr, "spryd: at most %d --dgram/--dgram-udp options\n", DG_MAX_SOCKS);
		return -E2BIG;
	}
	if (!strchr(spec, '=')) {
		fprintf(stderr, "spryd: --%s '%s': expected %s=CHAIN\n",
			udp ? "dgram-udp" : "dgram", spec, udp ? "ADDR:PORT" : "IFNAME[:QUEUE]");
		return -EINVAL;
	}
	dg->specs[dg->n_specs] = spec;
	dg->spec_udp[dg->n_specs] = udp;
	dg->n_specs++;
	return 0;
}

/* "LEFT=CHAIN": LEFT into @left (@cap bytes), the chain name into @chain. */
static int spec_split(const char *spec, char *left, size_t cap, char *chain)
{
	const char *eq = strrchr(spec, '=');
	size_t n;

	if (!eq)
		return -EINVAL;
	n = (size_t)(eq - spec);
	if (!n || n >= cap || strlen(eq + 1) >= SPRY_NAME_LEN || spry_name_check(eq + 1))
		return -EINVAL;
	memcpy(left, spec, n);
	left[n] = '\0';
	strcpy(chain, eq + 1);
	return 0;
}

/* ------------------------------------------------------ checksums */

static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* ---------------------------------------------------- frame parsing */

/*
 * Parse Ethernet/IPv4 or IPv6/UDP of a received frame @p (@len bytes).
 * The UDP payload's offset and length into *@pl_off and *@pl_len, the reply
 * addressing into @q.  false: not a well-formed unfragmented UDP packet.
 */
static bool parse_frame(const uint8_t *p, uint32_t len, struct dg_req *q,
			uint32_t *pl_off, uint32_t *pl_len)
{
	uint16_t proto, ulen;
	struct udphdr uh;
	uint32_t l4;

	if (len < ETH_HLEN_)
		return false;
	memcpy(q->dmac, p, ETH_ALEN);
	memcpy(q->smac, p + ETH_ALEN, ETH_ALEN);
	proto = (uint16_t)(p[12] << 8 | p[13]);
	if ((q->smac[0] & 1) || !memcmp(q->smac, q->dmac, ETH_ALEN))
		return false;	/* a multicast source cannot be answered */
	if (proto == ETH_P_IP) {
		struct iphdr ih;
		uint32_t ihl, tot;

		if (len < ETH_HLEN_ + IP4_HLEN)
			return false;
		memcpy(&ih, p + ETH_HLEN_, sizeof(ih));
		ihl = (uint32_t)ih.ihl * 4;
		tot = ntohs(ih.tot_len);
		if (ih.version != 4 || ihl < IP4_HLEN || tot < ihl + UDP_HLEN ||
		    tot > len - ETH_HLEN_ || ih.protocol != IPPROTO_UDP ||
		    (ntohs(ih.frag_off) & 0x3fff) ||
		    csum_fold(csum_add(0, p + ETH_HLEN_, ihl)) != 0)
			return false;
		q->v6 = 0;
		memcpy(q->saddr, &ih.saddr, 4);
		memcpy(q->daddr, &ih.daddr, 4);
		l4 = ETH_HLEN_ + ihl;
		ulen = (uint16_t)(tot - ihl);
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ih;

		if (len < ETH_HLEN_ + IP6_HLEN)
			return false;
		memcpy(&ih, p + ETH_HLEN_, sizeof(ih));
		if (ih.version != 6 || ih.nexthdr != IPPROTO_UDP ||
		    ntohs(ih.payload_len) < UDP_HLEN ||
		    ntohs(ih.payload_len) > len - ETH_HLEN_ - IP6_HLEN)
			return false;
		q->v6 = 1;
		memcpy(q->saddr, &ih.saddr, 16);
		memcpy(q->daddr, &ih.daddr, 16);
		l4 = ETH_HLEN_ + IP6_HLEN;
		ulen = ntohs(ih.payload_len);
	} else {
		return false;
	}
	memcpy(&uh, p + l4, sizeof(uh));
	if (ntohs(uh.len) != ulen || !uh.source || !uh.dest)
		return false;
	q->sport = uh.source;
	q->dport = uh.dest;
	*pl_off = l4 + UDP_HLEN;
	*pl_len = ulen - UDP_HLEN;
	return true;
}

static uint32_t hdr_room(const struct dg_req *q)
{
	return ETH_HLEN_ + (q->v6 ? IP6_HLEN : IP4_HLEN) + UDP_HLEN + SPRY_DGRAM_HDR_LEN;
}

/*
 * Write the response header and Ethernet/IP/UDP in front of @len payload
 * bytes at @payload (the bytes before it are ours to overwrite); the
 * frame's first byte into *@start.  The payload is read (IPv6 checksum),
 * never moved.
 */
static uint32_t build_reply(const struct dg_req *q, uint8_t *payload, uint32_t len,
			    uint8_t status, uint8_t **start)
{
	uint32_t room = hdr_room(q), udp_len = UDP_HLEN + SPRY_DGRAM_HDR_LEN + len;
	uint8_t *f = payload - room, *ip = f + ETH_HLEN_;
	uint8_t *udp = ip + (q->v6 ? IP6_HLEN : IP4_HLEN);
	struct spry_dgram_hdr h;
	struct udphdr uh;
	size_t n;
	__be32 blen;

	/*
	 * The header alone (payload length 0, then the real length): the
	 * payload already sits after it and must not be copied onto itself.
	 */
	if (spry_dgram_build_response(&h, sizeof(h), q->chain, q->wire_id, status,
				      NULL, 0, &n))
		memset(&h, 0, sizeof(h));	/* cannot happen: chain checked */
	blen = htonl(len);
	memcpy(&h.len, &blen, sizeof(blen));
	memcpy(udp + UDP_HLEN, &h, sizeof(h));

	memcpy(f, q->smac, ETH_ALEN);
	memcpy(f + ETH_ALEN, q->dmac, ETH_ALEN);
	f[12] = q->v6 ? 0x86 : 0x08;
	f[13] = q->v6 ? 0xdd : 0x00;
	uh.source = q->dport;
	uh.dest = q->sport;
	uh.len = htons((uint16_t)udp_len);
	uh.check = 0;
	if (!q->v6) {
		struct iphdr ih = {
			.version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_UDP,
			.tot_len = htons((uint16_t)(IP4_HLEN + udp_len)),
			.frag_off = htons(0x4000),
		};

		memcpy(&ih.saddr, q->daddr, 4);
		memcpy(&ih.daddr, q->saddr, 4);
		ih.check = htons(csum_fold(csum_add(0, &ih, sizeof(ih))));
		memcpy(ip, &ih, sizeof(ih));
		memcpy(udp, &uh, sizeof(uh));	/* UDP checksum 0: none (IPv4) */
	} else {
		struct ipv6hdr ih = { .version = 6, .nexthdr = IPPROTO_UDP, .hop_limit = 64 };
		uint32_t sum;
		uint16_t c;

		ih.payload_len = htons((uint16_t)udp_len);
		memcpy(&ih.saddr, q->daddr, 16);
		memcpy(&ih.daddr, q->saddr, 16);
		memcpy(ip, &ih, sizeof(ih));
		memcpy(udp, &uh, sizeof(uh));
		sum = csum_add(0, q->daddr, 16);
		sum = csum_add(sum, q->saddr, 16);
		sum += udp_len + IPPROTO_UDP;
		sum = csum_add(sum, udp, UDP_HLEN + SPRY_DGRAM_HDR_LEN);
		sum = csum_add(sum, payload, len);
		c = csum_fold(sum);
		uh.check = htons(c ? c : 0xffff);
		memcpy(udp, &uh, sizeof(uh));
	}
	*start = f;
	return room + len;
}

/*
 * Transmit frame @idx (held, tag DG_TAG) whose response payload starts at
 * @pos within the frame.  Frees the frame when it cannot go out.
 */
static void xsk_send(struct dg_sock *s, uint32_t idx, uint32_t pos, uint32_t len,
		     uint8_t status, const struct dg_req *q)
{
	struct spryd_umem *um = s->um;
	uint8_t *frame = spryd_xsk_frame_ptr(um, idx), *start;
	uint32_t flen;

	if (hdr_room(q) + len > s->mtu + ETH_HLEN_) {
		s->tx_big++;
		len = 0;
		status = SPRY_ST_TOO_BIG;
	}
	flen = build_reply(q, frame + pos, len, status, &start);
	if (spryd_xsk_tx(&s->x, idx, (uint64_t)(start - um->base), flen))
		s->c_tx++;
}

/* An answer without a request buffer: a fresh frame, payload empty. */
static void xsk_send_status(struct dg_sock *s, const struct dg_req *q, uint8_t status)
{
	uint32_t idx;

	if (spryd_xsk_frame_alloc(s->um, &idx)) {
		s->tx_full++;
		return;
	}
	xsk_send(s, idx, hdr_room(q), 0, status, q);
}

/* --------------------------------------------------------- metadata */

/* The metadata cache's slot of a source (address, port). */
static uint32_t meta_slot(const struct dg_req *q)
{
	uint32_t h = (uint32_t)q->sport * 0x9e3779b1u, i, w;

	for (i = 0; i < (q->v6 ? 16u : 4u); i += 4) {
		memcpy(&w, q->saddr + i, 4);
		h = (h ^ w) * 0x9e3779b1u;
	}
	return h >> (32 - DG_META_BITS);
}

/*
 * "proto: udp\nsrc: ADDR:PORT\n" then '\n' up to @cap bytes; false: no
 * room.  The line of a source is formatted once and kept in @s's cache
 * (a slot per hash of the source, the last one wins): inet_ntop() and
 * snprintf() per datagram were a tenth of the front's time.
 */
static bool write_meta(struct dg_sock *s, uint8_t *p, uint32_t cap, const struct dg_req *q)
{
	struct dg_meta *m = &s->meta[meta_slot(q)];
	char a[INET6_ADDRSTRLEN];
	int n;

	if (!m->len || m->v6 != q->v6 || m->sport != q->sport ||
	    memcmp(m->saddr, q->saddr, q->v6 ? 16 : 4)) {
		m->len = 0;
		if (!inet_ntop(q->v6 ? AF_INET6 : AF_INET, q->saddr, a, sizeof(a)))
			return false;
		n = snprintf(m->line, sizeof(m->line), q->v6 ? "proto: udp\nsrc: [%s]:%u\n" :
			     "proto: udp\nsrc: %s:%u\n", a, ntohs(q->sport));
		if (n < 0 || (size_t)n >= sizeof(m->line))
			return false;
		m->v6 = q->v6;
		m->sport = q->sport;
		memcpy(m->saddr, q->saddr, sizeof(m->saddr));
		m->len = (uint8_t)n;
	}
	if (m->len > cap)
		return false;
	memcpy(p, m->line, m->len);
	memset(p + m->len, '\n', cap - m->len);
	return true;
}

/* ------------------------------------------------------------ chains */

static void sock_rec_refresh(struct spryd *d, struct dg_sock *s, uint64_t now)
{
	struct spry_chain rec;

	if (now - s->rec_ns < DG_REC_REFRESH_NS)
		return;
	s->rec_ns = now;
	if (!spry_chain__get(&d->maps, s->chain, &rec) &&
	    !strncmp(rec.name, s->chain_name, SPRY_NAME_LEN))
		s->rec = rec;
}

/* enum spry_status of an error entry.c reports (docs/DATAGRAM.md). */
static uint8_t err_status(int err)
{
	switch (err) {
	case -EBUSY:
	case -ENOSPC:
		return SPRY_ST_NO_INSTANCE;
	case -EMSGSIZE:
		return SPRY_ST_TOO_BIG;
	case -ESTALE:
	case -ENOENT:
		return SPRY_ST_NO_CHAIN;
	case -EBADMSG:
		return SPRY_ST_BAD_DESC;
	default:	/* -ETIMEDOUT, -ECONNRESET, -EIO, -ESHUTDOWN */
		return SPRY_ST_FN_ERROR;
	}
}

/*
 * A UDP payload that spry_dgram_parse() refused: answerable (BAD_DESC)
 * when it has a whole header with the right magic and version and a chain
 * id a response can carry; else dropped.
 */
static bool bad_dgram_answerable(const uint8_t *p, uint32_t len, struct dg_req *q)
{
	struct spry_dgram_hdr h;
	uint16_t chain;

	if (len < sizeof(h))
		return false;
	memcpy(&h, p, sizeof(h));
	chain = ntohs(h.chain);
	if (ntohl(h.magic) != SPRY_DGRAM_MAGIC || h.version != SPRY_DGRAM_VERSION ||
	    !chain || chain >= SPRY_MAX_CHAINS || (h.flags & SPRY_DGF_RESPONSE))
		return false;
	q->chain = chain;
	q->wire_id = h.req_id;
	return true;
}

/* ------------------------------------------------------------ AF_XDP RX */

/* Received frame @idx (taken from the fill ring, held here) of descriptor @xd. */
static void xsk_rx_one(struct spryd *d, struct dg_sock *s, uint32_t idx,
		       const struct xdp_desc *xd)
{
	struct spryd_dg *dg = d->dg;
	struct spryd_umem *um = s->um;
	struct spry_dgram_req dr;
	struct spryd_req *r;
	struct spry_buf b;
	struct dg_req q;
	uint32_t in, pl_off, pl_len, meta_len;
	uint8_t *frame;
	int err;

	in = (uint32_t)(xd->addr % um->chunk);
	if (xd->len > um->chunk - in || xd->options) {
		s->bad_frame++;
		spryd_xsk_frame_release(&s->x, idx);
		return;
	}
	frame = spryd_xsk_frame_ptr(um, idx);
	s->c_rx++;
	memset(&q, 0, sizeof(q));
	q.sock = s->idx;
	if (!parse_frame(frame + in, xd->len, &q, &pl_off, &pl_len)) {
		s->bad_frame++;
		spryd_xsk_frame_release(&s->x, idx);
		return;
	}
	pl_off += in;
	if (spry_dgram_parse(frame + pl_off, pl_len, &dr)) {
		s->bad_dgram++;
		if (!bad_dgram_answerable(frame + pl_off, pl_len, &q)) {
			spryd_xsk_frame_release(&s->x, idx);
			return;
		}
		s->err_resp++;
		xsk_send(s, idx, pl_off + SPRY_DGRAM_HDR_LEN, 0, SPRY_ST_BAD_DESC, &q);
		return;
	}
	q.chain = dr.chain;
	q.wire_id = dr.req_id;
	meta_len = pl_off + SPRY_DGRAM_HDR_LEN;
	if (dr.chain != s->chain) {
		s->err_resp++;
		xsk_send(s, idx, meta_len, 0, SPRY_ST_NO_CHAIN, &q);
		return;
	}
	if (!write_meta(s, frame, meta_len, &q)) {
		s->bad_frame++;
		spryd_xsk_frame_release(&s->x, idx);
		return;
	}
	b.off = spryd_xsk_frame_off(um, idx);
	b.cap = um->chunk;
	b.gen = um->fr[idx].gen;
	err = entry_adopt(d, s->chain, &s->rec, &b, um->tag, (uint8_t)d->dg->front, s->idx, 0, &r);
	if (err) {
		s->busy++;
		/* the metadata overwrote the headers: rebuilt in front of it */
		xsk_send(s, idx, meta_len, 0, err_status(err), &q);
		return;
	}
	dg->reqs[r - d->reqs] = q;
	entry_submit(d, r, meta_len, dr.len, 0, 0);
}

static void xsk_rx(struct spryd *d, struct dg_sock *s)
{
	struct xdp_desc xd;
	uint32_t n, i, pos, idx;

	sock_rec_refresh(d, s, spryd_now_ns());
	n = spryd_xsk_rx_peek(&s->x, DG_RX_BUDGET, &pos);
	for (i = 0; i < n; i++)
		if (spryd_xsk_rx_take(&s->x, pos + i, &xd, &idx))
			xsk_rx_one(d, s, idx, &xd);
	spryd_xsk_rx_release(&s->x, n);
	spryd_xsk_refill(&s->x);
}

/* --------------------------------------------------------- UDP socket */

static void udp_flush(struct spryd *d, struct dg_sock *s)
{
	uint32_t i, sent = 0;
	int n;

	while (sent < s->n_out) {
		n = sendmmsg(s->ep.fd, s->smsg + sent, s->n_out - sent, MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		sent += (uint32_t)n;
	}
	s->c_tx += sent;
	s->tx_err += s->n_out - sent;	/* a full socket buffer: dropped */
	for (i = 0; i < s->n_out; i++)
		if (s->sout[i].holds)
			spry_pool_free(d->chains[s->chain].pool, s->sout[i].off, s->sout[i].gen);
	s->n_out = 0;
}

/* Queue a response (@payload NULL: none) for sendmmsg; @off/@gen freed after. */
static void udp_queue(struct spryd *d, struct dg_sock *s, const struct dg_req *q,
		      uint8_t status, void *payload, uint32_t len, bool holds,
		      uint64_t off, uint32_t gen)
{
	struct dg_udp_out *o;
	struct mmsghdr *m;
	size_t n;
	__be32 blen;
	uint32_t i;

	if (s->n_out == DG_UDP_BATCH)
		udp_flush(d, s);
	i = s->n_out++;
	o = &s->sout[i];
	if (spry_dgram_build_response(&o->hdr, sizeof(o->hdr), q->chain, q->wire_id,
				      status, NULL, 0, &n))
		memset(&o->hdr, 0, sizeof(o->hdr));
	blen = htonl(len);
	memcpy(&o->hdr.len, &blen, sizeof(blen));
	o->holds = holds;
	o->off = off;
	o->gen = gen;
	s->siov[2 * i].iov_base = &o->hdr;
	s->siov[2 * i].iov_len = sizeof(o->hdr);
	s->siov[2 * i + 1].iov_base = payload;
	s->siov[2 * i + 1].iov_len = len;
	memset(&s->saddr[i], 0, sizeof(s->saddr[i]));
	m = &s->smsg[i];
	memset(m, 0, sizeof(*m));
	if (q->v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s->saddr[i];

		a->sin6_family = AF_INET6;
		a->sin6_port = q->sport;
		memcpy(&a->sin6_addr, q->saddr, 16);
		m->msg_hdr.msg_namelen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&s->saddr[i];

		a->sin_family = AF_INET;
		a->sin_port = q->sport;
		memcpy(&a->sin_addr, q->saddr, 4);
		m->msg_hdr.msg_namelen = sizeof(*a);
	}
	m->msg_hdr.msg_name = &s->saddr[i];
	m->msg_hdr.msg_iov = &s->siov[2 * i];
	m->msg_hdr.msg_iovlen = len ? 2 : 1;
}

static void udp_rx_one(struct spryd *d, struct dg_sock *s, const uint8_t *p, uint32_t len,
		       const struct sockaddr_storage *from, bool trunc)
{
	struct spry_dgram_req dr;
	struct spryd_req *r;
	struct dg_req q;
	void *buf;
	int err;

	memset(&q, 0, sizeof(q));
	q.sock = s->idx;
	if (from->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;

		q.v6 = 1;
		q.sport = a->sin6_port;
		memcpy(q.saddr, &a->sin6_addr, 16);
	} else if (from->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)from;

		q.sport = a->sin_port;
		memcpy(q.saddr, &a->sin_addr, 4);
	} else {
		s->bad_frame++;
		return;
	}
	s->c_rx++;
	if (!q.sport) {
		s->bad_frame++;
		return;
	}
	if (trunc || spry_dgram_parse(p, len, &dr)) {
		s->bad_dgram++;
		if (bad_dgram_answerable(p, len, &q)) {
			s->err_resp++;
			udp_queue(d, s, &q, trunc ? SPRY_ST_TOO_BIG : SPRY_ST_BAD_DESC,
				  NULL, 0, false, 0, 0);
		}
		return;
	}
	q.chain = dr.chain;
	q.wire_id = dr.req_id;
	if (dr.chain != s->chain) {
		s->err_resp++;
		udp_queue(d, s, &q, SPRY_ST_NO_CHAIN, NULL, 0, false, 0, 0);
		return;
	}
	err = entry_prepare(d, s->chain, &s->rec, DG_UDP_META + dr.len, (uint8_t)d->dg->front,
			    s->idx, 0, &r, &buf);
	if (err) {
		s->busy++;
		udp_queue(d, s, &q, err_status(err), NULL, 0, false, 0, 0);
		return;
	}
	if (!write_meta(s, buf, DG_UDP_META, &q)) {
		entry_abort(d, r);
		s->bad_frame++;
		return;
	}
	memcpy((uint8_t *)buf + DG_UDP_META, dr.payload, dr.len);
	d->dg->reqs[r - d->reqs] = q;
	entry_submit(d, r, DG_UDP_META, dr.len, 0, 0);
}

static void udp_rx(struct spryd *d, struct dg_sock *s)
{
	uint32_t i, rounds;
	int n;

	sock_rec_refresh(d, s, spryd_now_ns());
	for (rounds = 0; rounds < DG_RX_BUDGET / DG_UDP_BATCH; rounds++) {
		for (i = 0; i < DG_UDP_BATCH; i++) {
			s->rmsg[i].msg_hdr.msg_namelen = sizeof(s->raddr[i]);
			s->rmsg[i].msg_hdr.msg_flags = 0;
			s->rmsg[i].msg_len = 0;
		}
		n = recvmmsg(s->ep.fd, s->rmsg, DG_UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		for (i = 0; i < (uint32_t)n; i++)
			udp_rx_one(d, s, s->riov[i].iov_base, s->rmsg[i].msg_len,
				   &s->raddr[i], s->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC);
		if ((uint32_t)n < DG_UDP_BATCH)
			break;
	}
}

/* ---------------------------------------------------------- completion */

static bool dg_complete(struct spryd *d, const struct spryd_req *r, int err,
			uint32_t status, const struct spry_desc *desc)
{
	struct spryd_dg *dg = d->dg;
	const struct dg_req *q;
	struct dg_sock *s;
	struct spryd_umem *um;
	uint32_t idx, room;
	uint8_t *p;

	(void)status;	/* an error's status: the answer depends on @err alone */
	if (!dg || !dg->reqs)
		return false;
	q = &dg->reqs[r - d->reqs];
	if (q->sock >= dg->n_socks)
		return false;
	s = &dg->socks[q->sock];
	if (s->ep.fd < 0)
		return false;
	if (s->udp) {
		if (err || !desc) {
			udp_queue(d, s, q, err_status(err), NULL, 0, false, 0, 0);
			return false;
		}
		p = spry_pool_ptr(d->chains[r->chain].pool, desc->off + desc->meta_len,
				  desc->len);
		if (!p) {
			udp_queue(d, s, q, SPRY_ST_BAD_DESC, NULL, 0, false, 0, 0);
			return false;
		}
		if (sizeof(struct spry_dgram_hdr) + (uint64_t)desc->len > 65507) {
			s->tx_big++;
			udp_queue(d, s, q, SPRY_ST_TOO_BIG, NULL, 0, false, 0, 0);
			return false;
		}
		udp_queue(d, s, q, desc->status, p, desc->len, true, desc->off, desc->gen);
		return true;
	}
	um = s->um;
	if (err || !desc) {
		xsk_send_status(s, q, err_status(err));
		return false;
	}
	room = hdr_room(q);
	/* The request's frame (or another reserved one) with room in front. */
	if (spryd_xsk_frame_at(um, desc->off, &idx) && desc->meta_len >= room &&
	    (uint64_t)desc->meta_len + desc->len <= um->chunk &&
	    !spry_pool_retag(um->pool, desc->off, desc->gen, r->req_id, um->tag)) {
		um->fr[idx].gen = desc->gen;
		xsk_send(s, idx, desc->meta_len, desc->len, desc->status, q);
		return true;
	}
	/* Else copy into a fresh frame (counted); the caller frees desc's. */
	if (room + (uint64_t)desc->len > um->chunk ||
	    room + desc->len > s->mtu + ETH_HLEN_) {
		s->tx_big++;
		xsk_send_status(s, q, SPRY_ST_TOO_BIG);
		return false;
	}
	p = spry_pool_ptr(um->pool, desc->off + desc->meta_len, desc->len);
	if (!p || spryd_xsk_frame_alloc(um, &idx)) {
		if (!p)
			xsk_send_status(s, q, SPRY_ST_BAD_DESC);
		else
			s->tx_full++;
		return false;
	}
	memcpy(spryd_xsk_frame_ptr(um, idx) + room, p, desc->len);
	s->tx_copied++;
	xsk_send(s, idx, room, desc->len, desc->status, q);
	return false;
}

/* -------------------------------------------------------------- loop */

static void dg_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct dg_sock *s = (struct dg_sock *)ep;

	if (s->udp) {
		udp_rx(d, s);
		return;
	}
	if (events & EPOLLERR) {
		int e = 0;
		socklen_t el = sizeof(e);

		/* Sticky (e.g. the device went away): stop serving this queue. */
		getsockopt(s->ep.fd, SOL_SOCKET, SO_ERROR, &e, &el);
		spryd_log("dgram %s queue %u: socket error (%s): closed", s->name, s->queue,
			  strerror(e ? e : EIO));
		s->tx_err++;
		if (s->in_map)
			bpf_map_delete_elem(d->dg->xsks_fd, &s->queue);
		s->in_map = false;
		s->x.kick = false;
		spryd_ep_del(d, &s->ep);	/* the socket is libxdp's to close */
		s->ep.fd = -1;
		return;
	}
	xsk_rx(d, s);
}

static void dg_run(struct spryd *d)
{
	struct spryd_dg *dg = d->dg;
	struct dg_sock *s;
	uint32_t i;

	if (!dg)
		return;
	for (i = 0; i < dg->n_socks; i++) {
		s = &dg->socks[i];
		if (s->ep.fd < 0)
			continue;
		if (s->udp) {
			if (s->n_out)
				udp_flush(d, s);
			continue;
		}
		spryd_xsk_run(&s->x);
	}
}

/* -------------------------------------------------------------- setup */

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static int xsk_setup(struct spryd *d, struct dg_sock *s, uint32_t frames)
{
	struct spryd_dg *dg = d->dg;
	struct ifreq ifr = {};
	const char *why = "";
	bool shared = s->um->n_socks > 0;
	int err, fd;

	err = spryd_xsk_open(&s->x, s->um, s->name, s->queue, s->idx, frames / 2, &why);
	if (err) {
		spryd_log("dgram %s:%u: AF_XDP socket: %s: %s", s->name, s->queue, why,
			  strerror(-err));
		return err;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	s->mtu = 1500;
	if (fd >= 0) {
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", s->name);
		if (!ioctl(fd, SIOCGIFMTU, &ifr) && ifr.ifr_mtu >= 576)
			s->mtu = (uint32_t)ifr.ifr_mtu;
		close(fd);
	}
	s->ep.fd = spryd_xsk_fd(&s->x);
	if (bpf_map_update_elem(dg->xsks_fd, &s->queue, &s->ep.fd, BPF_ANY)) {
		err = -errno;
		spryd_log("dgram %s:%u: inserting the socket into %s/%s: %s", s->name,
			  s->queue, d->pin_dir, SPRY_STR(SPRY_MAP_XSKS), strerror(-err));
		return err;
	}
	s->in_map = true;
	err = spryd_ep_add(d, &s->ep, EPOLLIN);
	if (err)
		return err;
	spryd_log("dgram %s queue %u -> chain %s (id %u): AF_XDP %s, UMEM %u frames of %u "
		  "at pool offset %#llx%s, %u on the fill ring, mtu %u",
		  s->name, s->queue, s->chain_name, s->chain,
		  shared ? "shared UMEM" : s->um->zerocopy ? "zero-copy" : "copy mode",
		  s->um->n_frames, s->um->chunk, (unsigned long long)s->um->pool_off,
		  shared ? " (shared)" : "", s->x.fill_target, s->mtu);
	return 0;
}

static int udp_setup(struct spryd *d, struct dg_sock *s)
{
	int fd, one = 1, sz = 4 << 20;
	uint32_t i;

	s->scratch = malloc((size_t)DG_UDP_BATCH * DG_UDP_SCRATCH);
	s->rmsg = calloc(DG_UDP_BATCH, sizeof(*s->rmsg));
	s->riov = calloc(DG_UDP_BATCH, sizeof(*s->riov));
	s->raddr = calloc(DG_UDP_BATCH, sizeof(*s->raddr));
	s->smsg = calloc(DG_UDP_BATCH, sizeof(*s->smsg));
	s->siov = calloc(2 * DG_UDP_BATCH, sizeof(*s->siov));
	s->saddr = calloc(DG_UDP_BATCH, sizeof(*s->saddr));
	s->sout = calloc(DG_UDP_BATCH, sizeof(*s->sout));
	if (!s->scratch || !s->rmsg || !s->riov || !s->raddr || !s->smsg || !s->siov ||
	    !s->saddr || !s->sout)
		return -ENOMEM;
	for (i = 0; i < DG_UDP_BATCH; i++) {
		s->riov[i].iov_base = s->scratch + (size_t)i * DG_UDP_SCRATCH;
		s->riov[i].iov_len = DG_UDP_SCRATCH;
		s->rmsg[i].msg_hdr.msg_iov = &s->riov[i];
		s->rmsg[i].msg_hdr.msg_iovlen = 1;
		s->rmsg[i].msg_hdr.msg_name = &s->raddr[i];
	}
	fd = socket(s->laddr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&s->laddr, s->laddr_len)) {
		int err = -errno;

		spryd_log("dgram-udp: bind: %s", strerror(-err));
		close(fd);
		return err;
	}
	s->ep.fd = fd;
	if (spryd_ep_add(d, &s->ep, EPOLLIN))
		return -errno;
	spryd_log("dgram-udp %s -> chain %s (id %u): kernel UDP socket", s->name,
		  s->chain_name, s->chain);
	return 0;
}

static int sock_parse(struct spryd *d, uint32_t i)
{
	struct spryd_dg *dg = d->dg;
	struct dg_sock *s = &dg->socks[i];
	const char *spec = dg->specs[i];
	char left[64], *colon;
	uint32_t j;
	int err;

	s->ep.ops = &dg_front_ops.ep;
	s->ep.fd = -1;
	s->idx = (uint8_t)i;
	s->meta = calloc(1u << DG_META_BITS, sizeof(*s->meta));
	if (!s->meta)
		return -ENOMEM;
	s->udp = dg->spec_udp[i];
	if (spec_split(spec, left, sizeof(left), s->chain_name))
		goto bad;
	if (s->udp) {
		if (spry_addr__parse(left, &s->laddr, &s->laddr_len))
			goto bad;
		strcpy(s->name, left);
	} else {
		colon = strchr(left, ':');
		if (colon) {
			*colon = '\0';
			if (spry_num__parse_u32(colon + 1, 0, SPRY_XSK_MAX_QUEUES - 1, &s->queue))
				goto bad;
		}
		if (!*left || strlen(left) >= IF_NAMESIZE)
			goto bad;
		strcpy(s->name, left);
		s->ifindex = if_nametoindex(left);
		if (!s->ifindex) {
			spryd_log("--dgram %s: no device '%s' in this network namespace", spec, left);
			return -ENODEV;
		}
		for (j = 0; j < i; j++)
			if (!dg->socks[j].udp && dg->socks[j].ifindex == s->ifindex &&
			    dg->socks[j].queue == s->queue) {
				spryd_log("--dgram %s: %s queue %u given twice (one chain per queue)",
					  spec, left, s->queue);
				return -EEXIST;
			}
	}
	err = spry_chain__lookup(&d->maps, s->chain_name, &s->chain, &s->rec);
	if (err || !(s->rec.flags & SPRY_CF_ACTIVE) || !s->chain ||
	    s->chain >= SPRY_MAX_CHAINS) {
		spryd_log("--dgram%s %s: no active chain '%s'", s->udp ? "-udp" : "", spec,
			  s->chain_name);
		return -ENOENT;
	}
	s->rec_ns = spryd_now_ns();
	return 0;
bad:
	spryd_log("--dgram%s '%s': expected %s", s->udp ? "-udp" : "", spec,
		  s->udp ? "ADDR:PORT=CHAIN, ADDR:PORT as " SPRY_ADDR_PORT_HELP :
			   "IFNAME[:QUEUE]=CHAIN");
	return -EINVAL;
}

/* The chain's reserved run and its UMEM bookkeeping, for @n_socks sockets. */
static int umem_setup(struct spryd *d, uint16_t id, uint32_t n_socks, uint32_t *frames)
{
	struct spryd_dg *dg = d->dg;
	struct spryd_umem *um = &dg->umems[id];
	struct dg_sock *s0 = NULL;
	struct spryd_chain *cs;
	struct spry_pool_stats st;
	uint32_t i, buf, nb, per;
	uint64_t off, len;
	int err;

	for (i = 0; i < dg->n_socks && !s0; i++)
		if (!dg->socks[i].udp && dg->socks[i].chain == id)
			s0 = &dg->socks[i];
	buf = s0->rec.buf_size ? s0->rec.buf_size : SPRY_DEF_BUF_SIZE;
	nb = s0->rec.n_bufs ? s0->rec.n_bufs : SPRY_DEF_N_BUFS;
	if (buf != 2048 && buf != 4096) {
		spryd_log("--dgram: chain %s has %u-byte buffers: AF_XDP frames need a buffer "
			  "size of 2048 or 4096 (spry chain add ... buffer-size 4096)",
			  s0->chain_name, buf);
		return -EINVAL;
	}
	per = nb / 2 / n_socks;
	if (per > DG_FRAMES_MAX)
		per = DG_FRAMES_MAX;
	if (per < DG_FRAMES_MIN) {
		spryd_log("--dgram: chain %s has %u buffers: %u AF_XDP socket%s need at least %u",
			  s0->chain_name, nb, n_socks, n_socks == 1 ? "" : "s",
			  2 * DG_FRAMES_MIN * n_socks);
		return -EINVAL;
	}
	cs = &d->chains[id];
	if (cs->pool) {
		spryd_log("--dgram: chain %s already has a pool", s0->chain_name);
		return -EEXIST;
	}
	cs->n_reserved = per * n_socks;
	err = entry_chain_pool(d, id, &s0->rec, &cs);
	if (err)
		return err;
	if (spry_pool_stats(cs->pool, &st) || st.n_reserved != per * n_socks ||
	    st.buf_size != buf || spry_pool_reserved(cs->pool, &off, &len)) {
		spryd_log("--dgram: chain %s: pool without the reserved run", s0->chain_name);
		return -EIO;
	}
	err = spryd_umem_open(um, cs->pool, off, buf, per * n_socks, pow2_at_least(per),
			      DG_TAG(id));
	if (err) {
		spryd_log("--dgram: chain %s: AF_XDP UMEM of %u frames: %s (more than 8 MiB "
			  "needs CAP_IPC_LOCK)", s0->chain_name, per * n_socks, strerror(-err));
		return err;
	}
	cs->held++;	/* the pool stays while the UMEM exists */
	*frames = per;
	return 0;
}

int dgram_init(struct spryd *d)
{
	struct spryd_dg *dg = d->dg;
	uint32_t i, j, n, frames[SPRY_MAX_CHAINS] = {};
	char path[512];
	bool any_xsk = false;
	int err;

	if (!dg)
		return 0;
	dg->front = front_register(d, &dg_front_ops);
	if (dg->front < 0)
		return dg->front;
	dg->reqs = calloc(SPRY_REQ_SLOTS, sizeof(*dg->reqs));
	if (!dg->reqs)
		return -ENOMEM;
	for (i = 0; i < dg->n_specs; i++) {
		dg->socks[i].ep.fd = -1;
		dg->n_socks = i + 1;
		err = sock_parse(d, i);
		if (err)
			return err;
		any_xsk |= !dg->socks[i].udp;
	}
	if (any_xsk) {
		snprintf(path, sizeof(path), "%s/%s", d->pin_dir, SPRY_STR(SPRY_MAP_XSKS));
		dg->xsks_fd = bpf_obj_get(path);
		if (dg->xsks_fd < 0) {
			err = -errno;
			spryd_log("--dgram: %s: %s (run `spry ingress attach dev IFNAME` first)",
				  path, strerror(-err));
			return err;
		}
	}
	for (i = 0; i < dg->n_socks; i++) {
		struct dg_sock *s = &dg->socks[i];

		if (s->udp)
			continue;
		if (!frames[s->chain]) {
			for (j = 0, n = 0; j < dg->n_socks; j++)
				n += !dg->socks[j].udp && dg->socks[j].chain == s->chain;
			err = umem_setup(d, s->chain, n, &frames[s->chain]);
			if (err)
				return err;
		}
		s->um = &dg->umems[s->chain];
		err = xsk_setup(d, s, frames[s->chain]);
		if (err)
			return err;
	}
	for (i = 0; i < dg->n_socks; i++) {
		struct dg_sock *s = &dg->socks[i];
		struct spryd_chain *cs;

		if (!s->udp)
			continue;
		err = entry_chain_pool(d, s->chain, &s->rec, &cs);
		if (!err)
			err = udp_setup(d, s);
		if (err)
			return err;
	}
	return 0;
}

static void sock_fini(struct spryd *d, struct dg_sock *s)
{
	struct spryd_dg *dg = d->dg;
	char lab[96];

	if (s->udp) {
		if (s->ep.fd >= 0 && s->n_out)
			udp_flush(d, s);
	} else if (s->in_map) {
		bpf_map_delete_elem(dg->xsks_fd, &s->queue);
		s->in_map = false;
	}
	if (s->udp)
		snprintf(lab, sizeof(lab), "udp %s", s->name);
	else
		snprintf(lab, sizeof(lab), "%s queue %u", s->name, s->queue);
	spryd_log("dgram %s -> %s: rx %llu tx %llu bad-frame %llu bad-dgram %llu "
		  "error-responses %llu busy %llu tx-copied %llu tx-full %llu too-big %llu "
		  "tx-errors %llu", lab, s->chain_name,
		  (unsigned long long)s->c_rx, (unsigned long long)s->c_tx,
		  (unsigned long long)(s->bad_frame + s->x.bad_frame),
		  (unsigned long long)s->bad_dgram,
		  (unsigned long long)s->err_resp, (unsigned long long)s->busy,
		  (unsigned long long)s->tx_copied,
		  (unsigned long long)(s->tx_full + s->x.tx_full),
		  (unsigned long long)s->tx_big, (unsigned long long)(s->tx_err + s->x.tx_err));
	if (s->udp) {
		spryd_ep_close(d, &s->ep);
	} else {
		/* libxdp closes the socket (the UMEM's first one with the UMEM) */
		spryd_ep_del(d, &s->ep);
		s->ep.fd = -1;
		spryd_xsk_close(&s->x);
	}
	free(s->meta);
	free(s->scratch);
	free(s->rmsg);
	free(s->riov);
	free(s->raddr);
	free(s->smsg);
	free(s->siov);
	free(s->saddr);
	free(s->sout);
}

void dgram_fini(struct spryd *d)
{
	struct spryd_dg *dg = d->dg;
	struct spryd_chain *cs;
	uint32_t i;

	if (!dg)
		return;
	for (i = 0; i < dg->n_socks; i++)
		sock_fini(d, &dg->socks[i]);
	for (i = 0; i < SPRY_MAX_CHAINS; i++) {
		struct spryd_umem *um = &dg->umems[i];

		if (!um->fr)
			continue;
		cs = &d->chains[i];
		/* The sockets are closed: nothing of the UMEM is the kernel's. */
		if (cs->pool == um->pool) {
			spry_pool_reclaim(um->pool, um->tag);
			if (cs->held)
				cs->held--;
		}
		spryd_umem_close(um);
	}
	if (dg->xsks_fd >= 0)
		close(dg->xsks_fd);
	free(dg->reqs);
	free(dg);
	d->dg = NULL;
}

static const struct spryd_front_ops dg_front_ops = {
	.ep = { .name = "dgram", .event = dg_event },
	.complete = dg_complete,
	.run = dg_run,
	.shutdown = dgram_fini,
};
