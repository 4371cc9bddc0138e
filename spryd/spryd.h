/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd internals: the registrar (registrar.c), the origin sockets
 * (origin.c), the request entry and its in-flight table (entry.c), and the
 * epoll loop with the control connections (main.c).  Single-threaded: every
 * function here runs on the loop's thread.
 */
#ifndef SPRYD_SPRYD_H
#define SPRYD_SPRYD_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "lib/core.h"
#include "fn-runtime/proto.h"
#include "spry/spry.h"

/* Bounds against hostile or runaway local clients. */
#define SPRYD_MAX_CONNS		1024		/* control connections */
#define SPRYD_MAX_PENDING	1024		/* accepted B's awaiting REGISTER */
#define SPRYD_PENDING_TTL_NS	(5ULL * 1000000000ULL)
#define SPRYD_CONN_MAX_INST	64		/* registrations per connection */
#define SPRYD_CONN_MAX_REQS	4096		/* requests in flight per connection */
#define SPRYD_CONN_OUTQ_MAX	(8u << 20)	/* queued reply bytes per connection */
#define SPRYD_ZOMBIE_TTL_NS	(60ULL * 1000000000ULL)	/* timed-out request kept */
#define SPRYD_MAX_ORIGINS	SPRY_MAX_INST
#define SPRYD_SEND_BATCH	64		/* descriptors per send() */
#define SPRYD_RX_BYTES		(64 * 1024)	/* descriptor stream read size */
#define SPRYD_NS_PER_MS		1000000ULL

#define SPRYD_NIL		UINT32_MAX
/* Tag of a request's input copy (never a request id: seq < 2^47). */
#define SPRYD_COPY_TAG		(1ULL << 63)
#define SPRYD_IDEM_AGE_NS	(1000ULL * 1000000ULL)	/* idem_hops refresh */

enum spryd_ep_kind {
	EP_CTL_LISTEN = 1,
	EP_CONN,
	EP_TCP_LISTEN,
	EP_PENDING,
	EP_INST,
	EP_ORIGIN,
	EP_ORIGIN_PEER,
	EP_TIMER,
	EP_SIGNAL,
	EP_EVENTS,
	EP_HTTP_LISTEN,
	EP_HTTP,
	EP_DGRAM,	/* dgram.c: an AF_XDP or UDP datagram socket */
};

/* What an epoll event points at; first member of every watched object. */
struct spryd_ep {
	enum spryd_ep_kind	kind;
	int			fd;
};

/* A byte stream of 64-byte descriptors: the bytes of a partial one. */
struct spryd_stream {
	uint8_t		rem[sizeof(struct spry_desc)];
	uint32_t	rem_len;
};

/* A reply that could not be sent at once (the client is not reading). */
struct spryd_outmsg {
	struct spryd_outmsg	*next;
	int			fd;		/* fd to pass, -1 none */
	uint32_t		len;
	uint8_t			data[];
};

struct spryd_conn {
	struct spryd_ep		ep;
	uint32_t		gen;		/* bumped on close: stale request owners */
	bool			used;
	bool			closing;	/* queued for close at a safe point */
	bool			want_out;	/* EPOLLOUT armed */
	struct ucred		cred;		/* SO_PEERCRED at accept */
	uint32_t		n_reqs;
	uint32_t		n_inst;
	uint32_t		inst[SPRYD_CONN_MAX_INST];	/* indexes in d->insts */
	struct spryd_outmsg	*outq;
	struct spryd_outmsg	**outq_tail;
	uint64_t		outq_bytes;
};

/* An accepted TCP connection (B) waiting for its REGISTER. */
struct spryd_pending {
	struct spryd_ep		ep;
	struct sockaddr_in	peer;		/* = the function's A local address */
	uint64_t		t_ns;
};

/* A registered function instance; index fn * SPRY_MAX_INST + inst. */
struct spryd_inst {
	struct spryd_ep		ep;		/* B */
	bool			used;
	uint16_t		chain;
	uint16_t		fn;
	uint16_t		idx;
	uint32_t		conn;		/* control connection index */
	uint32_t		pid;
	uint32_t		uid;
	uint64_t		cookie;
	uint64_t		reg_ns;
	char			name[SPRY_NAME_LEN];	/* function name, for logs */
	struct spryd_stream	in;
};

struct spryd_origin {
	struct spryd_ep		o;		/* registered end: sends and receives */
	struct spryd_ep		peer;		/* O': FALLBACK data lands here */
	struct spryd_stream	o_in;
	struct spryd_stream	peer_in;
	uint64_t		cookie;
	bool			want_out;
	bool			broken;
};

enum spryd_req_state {
	REQ_FREE = 0,
	REQ_QUEUED,	/* waiting in the send queue: nobody has it */
	REQ_SENT,	/* on its way through the chain */
	REQ_ZOMBIE,	/* answered (deadline); buffer held until it returns */
	REQ_PREP,	/* slot and buffer taken, being filled (entry_prepare) */
};

/* Who started a request: where its answer goes. */
enum spryd_req_owner {
	REQ_OWN_CTL = 0,	/* a control connection (INVOKE): d->conns */
	REQ_OWN_HTTP,		/* an HTTP connection: gateway.c's table */
	REQ_OWN_DGRAM,		/* a datagram request: dgram.c, conn = slot */
};

enum spryd_req_list {
	RL_NONE = 0,
	RL_LIVE,
	RL_ZOMBIE,
};

struct spryd_req {
	uint64_t		req_id;		/* (seq << 16) | slot; 0 = free */
	uint64_t		t_start;
	uint64_t		deadline;	/* answer by (live), reap at (zombie);
						 * deadline in ms while REQ_PREP */
	uint32_t		conn;		/* owner's connection index */
	uint32_t		conn_gen;	/* and generation */
	uint32_t		prev;
	uint32_t		next;
	uint16_t		chain;
	uint8_t			state;		/* enum spryd_req_state */
	uint8_t			list;		/* enum spryd_req_list */
	uint8_t			owner;		/* enum spryd_req_owner */
	uint8_t			retried;	/* resubmitted once (idempotent hops) */
	struct spry_desc	desc;		/* as sent */
	struct spry_buf		copy;		/* the input, kept for a retry
						 * (cap 0: none); tag req_id |
						 * SPRYD_COPY_TAG */
};

struct spryd_list {
	uint32_t	head;
	uint32_t	tail;
};

/* Per chain id: its pool and its requests. */
struct spryd_chain {
	bool			known;		/* name/geometry below are valid */
	char			name[SPRY_NAME_LEN];
	uint32_t		uid;
	uint32_t		buf_size;	/* geometry the pool was made for */
	uint32_t		n_bufs;
	struct spry_pool	*pool;
	uint64_t		pool_size;
	uint32_t		inflight;	/* live + zombie requests */
	uint32_t		n_inst;		/* registered instances */
	uint32_t		held;		/* buffers the HTTP front holds
						 * after completion (responses
						 * being written): pool stays */
	bool			stale_logged;
	uint8_t			idem_hops;	/* leading hops that are idempotent */
	uint64_t		idem_ns;	/* when idem_hops was read */
	uint32_t		dg_reserve;	/* reserved buffers (AF_XDP UMEM),
						 * set by dgram.c before the pool */
	struct spryd_list	live;		/* by deadline (start order) */
	struct spryd_list	zombie;		/* by reap time */
};

struct spryd_stats {
	uint64_t	invoked;
	uint64_t	completed;
	uint64_t	refused;
	uint64_t	timed_out;
	uint64_t	reset;
	uint64_t	late;
	uint64_t	unknown;
	uint64_t	reaped;
	uint64_t	registered;
	uint64_t	reg_refused;
	uint64_t	died;
	uint64_t	quarantines;
	uint64_t	conns_refused;
	uint64_t	send_errors;
	uint64_t	retried;	/* resubmitted after an instance died */
};

/*
 * Requests resubmitted after the instance of a function holding them died
 * (entry.c's retry()), per function id: /metrics'
 * spry_request_retries_total{chain,fn}.  The names are those at the
 * retry (a reused id starts again from zero).
 */
struct spryd_retries {
	char		chain[SPRY_NAME_LEN];
	char		fn[SPRY_NAME_LEN];
	uint64_t	n;
};

/* HTTP front options (gateway.c); timeouts in ns. */
struct spryd_http_opts {
	const char		*addr;		/* "ADDR:PORT", NULL: none */
	bool			addr_given;	/* --http given: failing to listen is fatal */
	uint32_t		max_conns;
	size_t			max_line;
	size_t			max_header_bytes;
	size_t			max_headers;
	uint64_t		max_body;
	uint64_t		idle_ns;
	uint64_t		header_ns;
	uint64_t		body_ns;
	uint64_t		write_ns;
	const char		*access_log;	/* NULL off, "-" stderr, else a file */
};

struct spryd_gw;
struct spryd_dg;

struct spryd {
	/* options */
	const char		*pin_dir;
	char			sock_path[108];
	const char		*pool_dir;
	unsigned int		n_origins;
	int			verbose;
	struct spryd_http_opts	http;
	struct spryd_gw		*gw;		/* NULL: no HTTP front */
	struct spryd_dg		*dg;		/* datagram fronts (dgram.c) */

	struct spry_maps	maps;
	struct spry_inst_state	*inst_mem;	/* spry_inst mapped (atomic flag
						 * updates); NULL: not mappable */
	int			epfd;
	int			spare_fd;	/* /dev/null, given up on EMFILE */
	bool			stop;

	struct spryd_ep		ctl_ep;		/* control listener */
	struct spryd_ep		tcp_ep;		/* function listener */
	struct spryd_ep		timer_ep;
	struct spryd_ep		sig_ep;
	struct spryd_ep		events_ep;
	struct ring_buffer	*rb;
	struct sockaddr_in	tcp_addr;
	uint64_t		timer_armed;	/* absolute ns, 0 = disarmed */
	bool			timer_fired;

	struct spryd_conn	*conns;		/* SPRYD_MAX_CONNS */
	uint32_t		*conn_free;	/* free conn indexes (stack) */
	uint32_t		n_conn_free;
	uint32_t		*close_list;	/* conns to close at a safe point */
	uint32_t		n_close;

	struct spryd_pending	pending[SPRYD_MAX_PENDING];
	uint32_t		n_pending;

	struct spryd_inst	*insts;		/* SPRY_MAX_FNS * SPRY_MAX_INST */

	struct spryd_origin	origins[SPRYD_MAX_ORIGINS];
	uint32_t		next_origin;

	struct spryd_req	*reqs;		/* SPRY_REQ_SLOTS */
	uint32_t		*slot_free;	/* free slots (stack) */
	uint32_t		n_slot_free;
	uint64_t		seq;
	uint64_t		*sendq;		/* ring of req_ids to send */
	uint32_t		sendq_head;
	uint32_t		sendq_len;

	struct spryd_chain	chains[SPRY_MAX_CHAINS];

	uint8_t			*rxbuf;		/* control datagrams / streams */
	struct spryd_stats	st;
	struct spryd_retries	*retries;	/* by fn id (SPRY_MAX_FNS) */
};

/* main.c */
void spryd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define spryd_vlog(d, ...)	do { if ((d)->verbose) spryd_log(__VA_ARGS__); } while (0)
uint64_t spryd_now_ns(void);
int spryd_ep_add(struct spryd *d, struct spryd_ep *ep, uint32_t events);
int spryd_ep_mod(struct spryd *d, struct spryd_ep *ep, uint32_t events);
void spryd_ep_close(struct spryd *d, struct spryd_ep *ep);
int spryd_accept(struct spryd *d, int lfd, struct sockaddr *sa, socklen_t *len);
/* Send one datagram (hdr + a + b), queued if the client is slow; fd dup'd. */
int spryd_conn_send(struct spryd *d, struct spryd_conn *c, uint16_t type,
		    int32_t status, const void *a, uint32_t alen,
		    const void *b, uint32_t blen, int fd);
void spryd_conn_kill(struct spryd *d, struct spryd_conn *c);
struct spryd_conn *spryd_conn_get(struct spryd *d, uint32_t idx, uint32_t gen);

/* privs.c: keep only the capabilities spryd's loop uses (docs/SECURITY.md). */
int spryd_drop_privs(struct spryd *d);

/* registrar.c */
int registrar_init(struct spryd *d);
void registrar_fini(struct spryd *d);
void registrar_hello(struct spryd *d, struct spryd_conn *c);
void registrar_register(struct spryd *d, struct spryd_conn *c, const void *body,
			uint32_t len, int fd);
void registrar_accept(struct spryd *d);
void registrar_pending_event(struct spryd *d, struct spryd_pending *p);
void registrar_inst_event(struct spryd *d, struct spryd_inst *in);
void registrar_conn_closed(struct spryd *d, struct spryd_conn *c);
void registrar_timer(struct spryd *d, uint64_t now, uint64_t *next);
int registrar_events_init(struct spryd *d);
void registrar_events(struct spryd *d);

/* origin.c */
int origin_init(struct spryd *d);
void origin_fini(struct spryd *d);
void origin_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
void origin_drain(struct spryd *d);
void origin_flush(struct spryd *d);
void origin_recover(struct spryd *d, unsigned int k);
/* Read descriptors from a stream socket; 0 (more later), -ENOTCONN on EOF. */
int origin_read_stream(struct spryd *d, int fd, struct spryd_stream *s,
		       uint16_t only_chain);
int origin_fd_set_sender(struct spryd *d, int fd, const struct spry_sender *s);

/* entry.c */
int entry_init(struct spryd *d);
void entry_fini(struct spryd *d);
void entry_invoke(struct spryd *d, struct spryd_conn *c, const void *body, uint32_t len);
void entry_return(struct spryd *d, const struct spry_desc *desc);
void entry_inst_died(struct spryd *d, uint16_t chain, uint16_t fn, uint16_t inst);
void entry_timer(struct spryd *d, uint64_t now, uint64_t *next);
void entry_shutdown(struct spryd *d);
/* The chain's pool (created on first use); 0 or -errno. */
int entry_chain_pool(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		     struct spryd_chain **out);
/*
 * The common request path of INVOKE and the HTTP front.  entry_prepare()
 * checks the chain's in-flight bound, takes a request slot and a pool
 * buffer of at least @size bytes tagged with the request id (*@ptr: its
 * first byte, r->desc.off/cap/gen: the buffer); the request counts in the
 * chain's in-flight bound from here.  -EBUSY (in-flight bound or request
 * table full), -ENOSPC (no free buffer), -EMSGSIZE (over the largest
 * buffer), -ESTALE/-errno (no pool).  Then exactly one of entry_submit()
 * (the buffer holds @meta_len bytes of metadata and @len of payload) or
 * entry_abort() (buffer freed, slot released).  The answer goes to the
 * owner: spryd_conn_send() RESULT for REQ_OWN_CTL, gateway_complete() for
 * REQ_OWN_HTTP.
 */
int entry_prepare(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		  uint32_t size, uint8_t owner, uint32_t conn, uint32_t gen,
		  struct spryd_req **out, void **ptr);
void entry_submit(struct spryd *d, struct spryd_req *r, uint32_t meta_len,
		  uint32_t len, uint8_t flags, uint64_t key);
void entry_abort(struct spryd *d, struct spryd_req *r);
/*
 * entry_prepare() for a buffer the caller already holds (an AF_XDP frame):
 * the buffer at @buf, tagged @old_tag, is retagged to the new request id
 * (spry_pool_retag) and becomes the request's.  Then entry_submit() or
 * entry_abort() as above (abort frees the buffer).  -EBUSY, -ESTALE.
 */
int entry_adopt(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		const struct spry_buf *buf, uint64_t old_tag, uint8_t owner,
		uint32_t conn, uint32_t gen, struct spryd_req **out);
/*
 * A chain by name for the HTTP front: from a snapshot of spry_chains, read
 * again when older than 1 s, or 50 ms when the name is missing from it.
 */
int entry_find_chain_cached(struct spryd *d, const char *name, uint64_t now,
			    uint16_t *id, struct spry_chain *rec);

/* gateway.c: the HTTP/1.1 front (--http). */
int gateway_init(struct spryd *d);
void gateway_stop(struct spryd *d);	/* close the listener */
void gateway_fini(struct spryd *d);	/* close every connection */
void gateway_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
void gateway_timer(struct spryd *d, uint64_t now, uint64_t *next);
/* Each loop iteration, before origin_flush(): connections whose answer was
 * written read and start their next request. */
void gateway_run(struct spryd *d);
void gateway_opts_default(struct spryd_http_opts *o);
/*
 * The answer to a REQ_OWN_HTTP request.  @err: 0 with @desc (its buffer
 * checked with spry_pool_ptr over meta_len + len), or -errno (-ETIMEDOUT,
 * -ECONNRESET, -EBADMSG, -EIO, -ESHUTDOWN) with @desc NULL.  Returns true
 * when the gateway took @desc's buffer (it frees it once the response is
 * written), false when the caller must free it.
 */
bool gateway_complete(struct spryd *d, const struct spryd_req *r, int err,
		      const struct spry_desc *desc);

/* dgram.c: datagram requests (--dgram AF_XDP, --dgram-udp; docs/DATAGRAM.md). */
struct spryd_dg;
int dgram_opt(struct spryd *d, const char *spec, bool udp);	/* parse an option */
int dgram_init(struct spryd *d);	/* after gateway_init(): sockets, pools */
void dgram_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
void dgram_run(struct spryd *d);	/* each iteration: completions, kicks, refill */
void dgram_fini(struct spryd *d);	/* after entry_shutdown(), before entry_fini() */
/*
 * The answer to a REQ_OWN_DGRAM request, like gateway_complete(): true when
 * dgram.c took @desc's buffer (it is freed once transmitted).
 */
bool dgram_complete(struct spryd *d, const struct spryd_req *r, int err,
		    const struct spry_desc *desc);

/* Pop the next queued request to send; false when none. */
bool entry_sendq_pop(struct spryd *d, struct spryd_req **out);
void entry_sendq_unpop(struct spryd *d, uint64_t req_id);
/* A queued send failed: fail or keep the request depending on reqloc. */
void entry_send_failed(struct spryd *d, struct spryd_req *r);

#endif /* SPRYD_SPRYD_H */
