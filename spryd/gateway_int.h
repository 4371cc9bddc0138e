/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Inside spryd's HTTP front room: what gateway.c (connections: accept,
 * read, write, linger, timeouts) and gateway_req.c (requests and
 * responses: a request into the pool and the chain, the answer out of its
 * metadata, statistics, /metrics) share.  Not for other rooms.
 */
#ifndef SPRYD_GATEWAY_INT_H
#define SPRYD_GATEWAY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "spryd/http.h"
#include "spryd/spryd.h"

#define GW_RBUF			8192		/* read buffer per active conn */
#define GW_HDR			640		/* response head */
#define GW_META_SPARE		64		/* '\n' padding after metadata */
#define GW_STATE_CACHE		1024		/* idle gw_state kept for reuse */
#define GW_LINGER_NS		(2000ULL * SPRYD_NS_PER_MS)
#define GW_LINGER_BYTES		(1u << 20)	/* drained at most before closing */
#define GW_ACCEPTS_PER_EVENT	64
#define GW_SCAN_NS		(100ULL * SPRYD_NS_PER_MS)
#define GW_CTYPE_MAX		127
#define GW_N_BUCKETS		16
#define GW_NO_CHAIN		0		/* stats slot of non-chain requests */
#define GWU_HELD		16		/* received buffers a connection holds */
#define GW_BODY_DIRECT		16384		/* --body-direct default */
#define GW_BODY_DIRECT_MAX	(1u << 30)	/* bytes per receive into the pool */


enum gw_phase {
	GW_READ,	/* reading/parsing a request (or idle) */
	GW_WAIT,	/* request in the chain */
	GW_WRITE,	/* writing the response */
	GW_LINGER,	/* answered with close: reading what the client still sends */
};

enum gw_deadline {
	DL_IDLE,
	DL_HEADER,
	DL_BODY,
	DL_NONE,
	DL_WRITE,
	DL_LINGER,
};

struct gw_state {
	struct gw_state		*next;		/* cache list */
	struct spry_http_conn	hc;
	uint32_t		roff;
	uint32_t		rlen;
	char			hdr[GW_HDR];
	char			ebody[512];	/* an error's body */
	char			rbuf[GW_RBUF];
};

union gw_addr {
	struct sockaddr		sa;
	struct sockaddr_in	in;
	struct sockaddr_in6	in6;
};

struct gw_conn {
	struct spryd_ep		ep;
	uint32_t		gen;
	bool			used;
	bool			may_read;
	bool			may_write;
	bool			close_after;	/* close once the response is out */
	uint8_t			phase;		/* enum gw_phase */
	uint8_t			dl_kind;	/* enum gw_deadline */
	bool			is_head;	/* HEAD: no body in the response */
	uint64_t		deadline;	/* ns, 0 none */
	uint64_t		t_req;		/* request start */
	struct gw_state		*st;
	union gw_addr		peer;

	/* the request being filled (REQ_PREP) or in flight */
	struct spryd_req	*req;
	uint64_t		req_id;
	uint16_t		chain;		/* stats slot; GW_NO_CHAIN */
	char			*body;		/* the body sink in the pool */
	uint32_t		meta_len;
	uint64_t		proc_key;	/* an app's process (0: none) */

	/* the response */
	struct iovec		iov[2];
	int			iovcnt;
	uint64_t		resp_bytes;
	uint32_t		drained;	/* bytes read while lingering */
	int			status;
	bool			holds_buf;	/* pool buffer below is ours */
	bool			resume;		/* queued in gw->resume */
	uint16_t		buf_chain;
	uint64_t		buf_off;
	uint32_t		buf_gen;
	char			*heap;		/* /metrics body */

	/*
	 * The io_uring engine's (gateway_uring.c; unused with epoll).  A
	 * closed slot keeps its buffers (response head, payload) until the
	 * final completion of every operation it had in the ring: u_ops.
	 */
	struct msghdr		u_msg;		/* the send in flight */
	uint8_t			u_ops;		/* operations in the ring */
	bool			u_recv;		/* multishot receive armed */
	bool			u_send;		/* a send in flight */
	bool			u_eof;		/* the peer shut its side */
	bool			u_paused;	/* receive cancelled: too much held */
	bool			u_starved;	/* receive ended: no free buffer */
	bool			u_direct;	/* receive cancelled: a body goes direct */
	bool			u_dq;		/* in u->direct_q (gwu_flush) */
	bool			u_body;		/* a receive into the pool in flight */
	bool			u_abort;	/* its request dropped: freed when it ends */
	char			*u_dst;		/* where it writes */
	struct spryd_req	*u_body_r;	/* the request whose buffer it is */
	uint64_t		u_body_id;
	uint8_t			u_head;		/* held buffers: a ring of GWU_HELD */
	uint8_t			u_n;
	struct gwu_held {
		uint16_t	bid;
		uint16_t	len;
		uint32_t	off;
	}			u_q[GWU_HELD];
};

struct gw_chain_stats {
	char		name[SPRY_NAME_LEN];
	uint64_t	codes[500];	/* status 100..599 */
	uint64_t	buckets[GW_N_BUCKETS];
	uint64_t	count;
	double		sum;
};

struct spryd_gw {
	struct spryd_ep		lep;
	struct gw_conn		*conns;
	uint32_t		*free_idx;
	uint32_t		n_free;
	uint32_t		*closed_idx;	/* closed this iteration: free at gw_run */
	uint32_t		n_closed;
	uint32_t		n_open;
	uint32_t		hiwater;	/* conns[0..hiwater) ever used */
	struct gw_state		*cache;
	uint32_t		n_cache;
	struct spry_http_limits	lim;
	uint64_t		next_scan;
	FILE			*log;
	bool			log_close;
	struct gw_chain_stats	*stats[SPRY_MAX_CHAINS];
	uint32_t		*resume;	/* conns to read on (gw_run) */
	uint32_t		n_resume;
	uint64_t		accepted;
	uint64_t		refused;
	uint64_t		direct_recvs;	/* receives straight into the pool */
	uint64_t		direct_bytes;
	char			meta[SPRY_HTTP_SCRATCH + 1024];
	int			front;		/* front id: owner of its requests */
	struct gw_uring		*u;		/* io_uring engine; NULL: epoll */
};


struct gw_uring;

/* gateway.c: connections */
void gw_conn_close(struct spryd *d, struct gw_conn *c);
/* The buffers of a closed slot back, the slot free after the iteration. */
void gw_conn_release(struct spryd *d, struct gw_conn *c);
/* A new connection on @fd (closed on failure); NULL: refused. */
struct gw_conn *gw_conn_open(struct spryd *d, int fd, const union gw_addr *a);
/* The response is out: log it, then read on (or linger when closing). */
void gw_finish_response(struct spryd *d, struct gw_conn *c, uint64_t now);
struct gw_state *gw_state_get(struct spryd *d);
void gw_state_put(struct spryd *d, struct gw_state *st);
void gw_set_deadline(struct spryd *d, struct gw_conn *c, enum gw_deadline k, uint64_t now);
void gw_respond(struct spryd *d, struct gw_conn *c, int status, const char *ctype,
		const char *body, size_t len, const char *extra, uint64_t now);
void gw_respond_error(struct spryd *d, struct gw_conn *c, int status, bool close,
		      const char *extra, uint64_t now);
/* An error with @why after its status line (a lost process's state). */
void gw_respond_error_why(struct spryd *d, struct gw_conn *c, int status, const char *why,
			  uint64_t now);
void gw_resume_later(struct spryd *d, struct gw_conn *c);
/*
 * The request's body has at least --body-direct bytes still to come and
 * nothing of it is buffered: how many to receive at *@dst, straight into
 * its pool buffer (at most GW_BODY_DIRECT_MAX); 0: read as usual.
 */
size_t gw_body_direct(struct spryd *d, struct gw_conn *c, char **dst);
/* @n bytes received at @dst (from gw_body_direct): counted, parsed there. */
void gw_feed_direct(struct spryd *d, struct gw_conn *c, char *dst, uint32_t n, uint64_t now);
void gw_drop_prep(struct spryd *d, struct gw_conn *c);

/* gateway_req.c: requests and responses */
/* Parse what is buffered; false when the connection was closed or answered. */
bool gw_parse(struct spryd *d, struct gw_conn *c, uint64_t now);
/* The same from @buf (@len bytes, from *@off on; *@off advanced first). */
bool gw_parse_from(struct spryd *d, struct gw_conn *c, const char *buf, uint32_t len,
		   uint32_t *off, uint64_t now);

/* gateway_uring.c: the io_uring engine (--front uring) */
int gwu_init(struct spryd *d, int lfd, const struct spryd_ep_ops *ops);
void gwu_fini(struct spryd *d);
void gwu_event(struct spryd *d);
void gwu_run(struct spryd *d);
void gwu_flush(struct spryd *d);
void gwu_stop(struct spryd *d);
/* Shutdown: wait (a while) for the sends in the ring. */
void gwu_drain(struct spryd *d);
/* A connection accepted: its multishot receive. */
void gwu_conn_start(struct spryd *d, struct gw_conn *c);
/* Closing: cancel what it has in the ring, give its held buffers back, close the fd. */
void gwu_conn_close(struct spryd *d, struct gw_conn *c);
/* Read on: feed what the connection holds to the parser. */
void gwu_read(struct spryd *d, struct gw_conn *c, uint64_t now);
/* Send c->iov. */
void gwu_send(struct spryd *d, struct gw_conn *c);
/*
 * gw_drop_prep: true when a receive in the ring still writes into the
 * request's pool buffer (cancelled now; the request is freed when it ends).
 */
bool gwu_body_busy(struct spryd *d, struct gw_conn *c);
/* Answered with close: shut the write side, drop what it holds. */
void gwu_linger(struct spryd *d, struct gw_conn *c, uint64_t now);
void gw_count_response(struct spryd *d, struct gw_conn *c, uint64_t now);
void gw_access_log(struct spryd *d, struct gw_conn *c, uint64_t now);
bool gw_complete(struct spryd *d, const struct spryd_req *r, int err,
		 uint32_t status, const struct spry_desc *desc);
void gw_metrics(struct spryd *d, struct mbuf *m);

#endif /* SPRYD_GATEWAY_INT_H */
