// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's HTTP/1.1 front (--http ADDR:PORT), in spryd's epoll loop.
 *
 * Connections: a table of --max-conns small records (index + generation:
 * an answer for a closed or reused connection is dropped); beyond it a new
 * connection is accepted and closed.  Sockets are edge-triggered (EPOLLIN,
 * EPOLLOUT, EPOLLRDHUP registered once); may_read/may_write remember what
 * the last edge allowed until a call returns EAGAIN.  The parser state and
 * read buffer (struct gw_state, ~22 KiB) are taken from a cache when a
 * request starts and given back when the connection is idle, so idle
 * keep-alive connections cost only their record.
 *
 * One request per connection at a time: while it is in the chain or its
 * response is being written, nothing more is read or parsed (pipelined
 * requests wait in the read buffer and the socket; TCP flow control bounds
 * them).  At the parser's HEAD event (a body follows) the chain is looked
 * up, a pool buffer of metadata + Content-Length (chunked: the largest
 * buffer, at most max_body) is taken through entry_prepare(), the metadata
 * block written at its start (padded with '\n', at least 64 spare bytes)
 * and the parser's body sink pointed right after it: the body is written
 * once, into the pool.  At DONE the request is submitted (entry_submit);
 * the descriptor goes out with the loop iteration's batch (origin_flush).
 * gateway_complete() answers: @status/@content-type from the response
 * metadata, head + payload with writev straight from the pool buffer,
 * which is freed when the response is fully written or the connection
 * closes.
 *
 * Statuses: the parser's (400, 413, 414, 417, 431, 501, 505: answered
 * with close), 404 unknown chain (and NO_CHAIN), 405 with Allow, 413 body
 * over the largest buffer, 503 + Retry-After (chain's in-flight bound,
 * request table full, no free buffer, NO_INSTANCE, shutdown), 504
 * deadline, 502 (instance died, bad descriptor or buffer, @status not
 * three digits 200..599, other error statuses), 500 FN_ERROR (or the
 * function's own @status 400..599 and payload when it set one).  A request
 * refused before its body was read is answered with close.
 *
 * Timeouts (checked every 100 ms): idle between requests (silent close),
 * header (from a request's first byte to the end of its head: 408 and
 * close), body (from the head to the end of the body: 408 and close),
 * write (no write progress: close).  An answer with close is followed by
 * shutdown(SHUT_WR) and a drain of what the client still sends (at most
 * 1 MiB, 2 s), so a refused body cannot turn the close into a reset that
 * destroys the answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
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

static const double bucket_le[GW_N_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

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
	char			ebody[96];
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
	uint32_t		n_open;
	uint32_t		hiwater;	/* conns[0..hiwater) ever used */
	struct gw_state		*cache;
	uint32_t		n_cache;
	struct spry_http_limits	lim;
	uint64_t		next_scan;
	FILE			*log;
	bool			log_close;
	struct gw_chain_stats	*stats[SPRY_MAX_CHAINS];
	uint32_t		*resume;	/* conns to read on (gateway_run) */
	uint32_t		n_resume;
	uint64_t		accepted;
	uint64_t		refused;
	char			meta[SPRY_HTTP_SCRATCH + 1024];
};

void gateway_opts_default(struct spryd_http_opts *o)
{
	struct spry_http_limits lim;

	spry_http_limits_default(&lim);
	memset(o, 0, sizeof(*o));
	o->addr = "127.0.0.1:8080";
	o->max_conns = 16384;
	o->max_line = lim.max_line;
	o->max_header_bytes = lim.max_header_bytes;
	o->max_headers = lim.max_headers;
	o->max_body = lim.max_body;
	o->idle_ns = 60ULL * 1000000000ULL;
	o->header_ns = 10ULL * 1000000000ULL;
	o->body_ns = 30ULL * 1000000000ULL;
	o->write_ns = 30ULL * 1000000000ULL;
}

/* ------------------------------------------------------------ stats */

static struct gw_chain_stats *chain_stats(struct spryd *d, uint16_t id)
{
	struct spryd_gw *gw = d->gw;
	const char *name = id == GW_NO_CHAIN ? "" : d->chains[id].name;
	struct gw_chain_stats *s = gw->stats[id];

	if (s && strncmp(s->name, name, SPRY_NAME_LEN)) {
		/* the chain id now names another chain: start again */
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		snprintf(s->name, sizeof(s->name), "%s", name);
		gw->stats[id] = s;
	}
	return s;
}

static void count_response(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct gw_chain_stats *s = chain_stats(d, c->chain);
	double sec = (double)(now - c->t_req) / 1e9;
	unsigned int i;

	if (!s)
		return;
	if (c->status >= 100 && c->status <= 599)
		s->codes[c->status - 100]++;
	for (i = 0; i < GW_N_BUCKETS; i++)
		if (sec <= bucket_le[i])
			s->buckets[i]++;
	s->count++;
	s->sum += sec;
}

static void access_log(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct spryd_gw *gw = d->gw;
	const struct spry_http_req *rq = c->st ? &c->st->hc.req : NULL;
	char addr[INET6_ADDRSTRLEN] = "?", ts[40];
	struct timespec rt;
	struct tm tm;
	unsigned int port = 0;

	if (!gw->log)
		return;
	if (c->peer.sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &c->peer.in.sin_addr, addr, sizeof(addr));
		port = ntohs(c->peer.in.sin_port);
	} else if (c->peer.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, addr, sizeof(addr));
		port = ntohs(c->peer.in6.sin6_port);
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	gmtime_r(&rt.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* The target is screened by the parser: no control bytes, no spaces. */
	fprintf(gw->log,
		"time=%s.%06ldZ client=%s:%u method=%s path=%.*s status=%d bytes=%llu "
		"duration_us=%llu chain=%s req_id=%#llx\n",
		ts, rt.tv_nsec / 1000, addr, port,
		rq && rq->method_str ? rq->method_str : "-",
		rq && rq->path_len ? (int)rq->path_len : 1,
		rq && rq->path_len ? rq->path : "-", c->status,
		(unsigned long long)c->resp_bytes,
		(unsigned long long)((now - c->t_req) / 1000),
		c->chain != GW_NO_CHAIN ? d->chains[c->chain].name : "-",
		(unsigned long long)c->req_id);
}

/* ------------------------------------------------------- connections */

static struct gw_state *state_get(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_state *st = gw->cache;

	if (st) {
		gw->cache = st->next;
		gw->n_cache--;
	} else {
		st = malloc(sizeof(*st));
		if (!st)
			return NULL;
	}
	if (spry_http_conn_init(&st->hc, &gw->lim)) {
		free(st);
		return NULL;
	}
	st->roff = st->rlen = 0;
	return st;
}

static void state_put(struct spryd *d, struct gw_state *st)
{
	struct spryd_gw *gw = d->gw;

	if (gw->n_cache >= GW_STATE_CACHE) {
		free(st);
		return;
	}
	st->next = gw->cache;
	gw->cache = st;
	gw->n_cache++;
}

static void release_buf(struct spryd *d, struct gw_conn *c)
{
	struct spryd_chain *cs;

	if (!c->holds_buf)
		return;
	cs = &d->chains[c->buf_chain];
	if (cs->pool)
		spry_pool_free(cs->pool, c->buf_off, c->buf_gen);
	if (cs->held)
		cs->held--;
	c->holds_buf = false;
}

/* Drop the request being filled (REQ_PREP), if any. */
static void drop_prep(struct spryd *d, struct gw_conn *c)
{
	struct spryd_req *r = c->req;

	if (r && r->req_id == c->req_id && r->state == REQ_PREP)
		entry_abort(d, r);
	c->req = NULL;
	c->body = NULL;
}

static void conn_close(struct spryd *d, struct gw_conn *c)
{
	struct spryd_gw *gw = d->gw;

	if (!c->used)
		return;
	drop_prep(d, c);
	release_buf(d, c);
	free(c->heap);
	c->heap = NULL;
	if (c->st) {
		state_put(d, c->st);
		c->st = NULL;
	}
	spryd_ep_close(d, &c->ep);
	c->used = false;
	c->resume = false;
	c->gen++;
	gw->n_open--;
	gw->free_idx[gw->n_free++] = (uint32_t)(c - gw->conns);
}

static void set_deadline(struct spryd *d, struct gw_conn *c, enum gw_deadline k,
			 uint64_t now)
{
	const struct spryd_http_opts *o = &d->http;

	c->dl_kind = k;
	switch (k) {
	case DL_IDLE:
		c->deadline = now + o->idle_ns;
		break;
	case DL_HEADER:
		c->deadline = now + o->header_ns;
		break;
	case DL_BODY:
		c->deadline = now + o->body_ns;
		break;
	case DL_WRITE:
		c->deadline = now + o->write_ns;
		break;
	case DL_LINGER:
		c->deadline = now + (o->write_ns < GW_LINGER_NS ? o->write_ns : GW_LINGER_NS);
		break;
	default:
		c->deadline = 0;
		break;
	}
}

/* ----------------------------------------------------------- answers */

static void start_write(struct spryd *d, struct gw_conn *c, uint64_t now);

/*
 * Queue a response: head into st->hdr, @body (pool, heap or st->ebody)
 * after it unless HEAD.  @extra: more header lines.
 */
static void respond(struct spryd *d, struct gw_conn *c, int status, const char *ctype,
		    const char *body, size_t len, const char *extra, uint64_t now)
{
	struct gw_state *st = c->st;
	struct spry_http_resp resp = {
		.status = status,
		.content_type = ctype,
		.body_len = len,
		.date = time(NULL),
		.extra = extra,
	};
	size_t hl;

	if (!c->st->hc.req.keep_alive)
		c->close_after = true;
	resp.keep_alive = !c->close_after;
	if (spry_http_response_ex(st->hdr, sizeof(st->hdr), &resp, &hl)) {
		/* cannot happen with the bounded content type; be safe */
		resp.content_type = "application/octet-stream";
		resp.extra = NULL;
		if (spry_http_response_ex(st->hdr, sizeof(st->hdr), &resp, &hl)) {
			conn_close(d, c);
			return;
		}
	}
	c->status = status;
	c->iov[0].iov_base = st->hdr;
	c->iov[0].iov_len = hl;
	c->iovcnt = 1;
	if (len && !c->is_head && status != 204 && status != 304) {
		c->iov[1].iov_base = (void *)body;
		c->iov[1].iov_len = len;
		c->iovcnt = 2;
	}
	c->resp_bytes = 0;
	count_response(d, c, now);
	start_write(d, c, now);
}

static void respond_error(struct spryd *d, struct gw_conn *c, int status, bool close,
			  const char *extra, uint64_t now)
{
	struct gw_state *st = c->st;
	int n;

	if (close)
		c->close_after = true;
	n = snprintf(st->ebody, sizeof(st->ebody), "%d %s\n", status,
		     spry_http_reason(status));
	respond(d, c, status, "text/plain", st->ebody, (size_t)n, extra, now);
}

/* ------------------------------------------------------------ metrics */

struct mbuf {
	char	*p;
	size_t	len;
	size_t	cap;
	bool	oom;
};

static void __attribute__((format(printf, 2, 3))) mb_printf(struct mbuf *m, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	char *np;
	int n;

	if (m->oom)
		return;
	for (;;) {
		room = m->cap - m->len;
		va_start(ap, fmt);
		n = vsnprintf(m->p + m->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			m->oom = true;
			return;
		}
		if ((size_t)n < room) {
			m->len += (size_t)n;
			return;
		}
		np = realloc(m->p, m->cap * 2 + (size_t)n);
		if (!np) {
			m->oom = true;
			return;
		}
		m->p = np;
		m->cap = m->cap * 2 + (size_t)n;
	}
}

static void metrics_http(struct spryd *d, struct mbuf *m)
{
	struct spryd_gw *gw = d->gw;
	struct gw_chain_stats *s;
	unsigned int i, k;

	mb_printf(m, "# HELP spry_http_requests_total HTTP responses by chain and status.\n"
		  "# TYPE spry_http_requests_total counter\n");
	for (i = 0; i < SPRY_MAX_CHAINS; i++) {
		s = gw->stats[i];
		for (k = 0; s && k < 500; k++)
			if (s->codes[k])
				mb_printf(m, "spry_http_requests_total{chain=\"%s\",code=\"%u\"} %llu\n",
					  s->name, k + 100, (unsigned long long)s->codes[k]);
	}
	mb_printf(m, "# HELP spry_http_errors_total HTTP responses with status >= 400.\n"
		  "# TYPE spry_http_errors_total counter\n");
	for (i = 0; i < SPRY_MAX_CHAINS; i++) {
		s = gw->stats[i];
		for (k = 300; s && k < 500; k++)
			if (s->codes[k])
				mb_printf(m, "spry_http_errors_total{chain=\"%s\",code=\"%u\"} %llu\n",
					  s->name, k + 100, (unsigned long long)s->codes[k]);
	}
	mb_printf(m, "# HELP spry_http_request_duration_seconds "
		  "Time from a request's first byte to its response.\n"
		  "# TYPE spry_http_request_duration_seconds histogram\n");
	for (i = 0; i < SPRY_MAX_CHAINS; i++) {
		s = gw->stats[i];
		if (!s || !s->count)
			continue;
		for (k = 0; k < GW_N_BUCKETS; k++)
			mb_printf(m, "spry_http_request_duration_seconds_bucket{chain=\"%s\",le=\"%g\"} %llu\n",
				  s->name, bucket_le[k], (unsigned long long)s->buckets[k]);
		mb_printf(m, "spry_http_request_duration_seconds_bucket{chain=\"%s\",le=\"+Inf\"} %llu\n"
			  "spry_http_request_duration_seconds_sum{chain=\"%s\"} %.9f\n"
			  "spry_http_request_duration_seconds_count{chain=\"%s\"} %llu\n",
			  s->name, (unsigned long long)s->count, s->name, s->sum, s->name,
			  (unsigned long long)s->count);
	}
	mb_printf(m, "# HELP spry_http_connections Open HTTP connections.\n"
		  "# TYPE spry_http_connections gauge\n"
		  "spry_http_connections %u\n"
		  "# HELP spry_http_connections_accepted_total HTTP connections accepted.\n"
		  "# TYPE spry_http_connections_accepted_total counter\n"
		  "spry_http_connections_accepted_total %llu\n"
		  "# HELP spry_http_connections_refused_total Connections closed at accept (--max-conns).\n"
		  "# TYPE spry_http_connections_refused_total counter\n"
		  "spry_http_connections_refused_total %llu\n",
		  gw->n_open, (unsigned long long)gw->accepted, (unsigned long long)gw->refused);
}

static void metrics_chains(struct spryd *d, struct mbuf *m)
{
	struct spry_pool_stats pst;
	struct spryd_chain *cs;
	unsigned int i;

	mb_printf(m, "# HELP spry_inflight Requests of the chain in flight (zombies included).\n"
		  "# TYPE spry_inflight gauge\n");
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		if (cs->pool)
			mb_printf(m, "spry_inflight{chain=\"%s\"} %u\n", cs->name, cs->inflight);
	}
	mb_printf(m, "# HELP spry_pool_buffers Pool buffers of the chain by state.\n"
		  "# TYPE spry_pool_buffers gauge\n");
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		memset(&pst, 0, sizeof(pst));
		if (!cs->pool || spry_pool_stats(cs->pool, &pst))
			continue;
		mb_printf(m, "spry_pool_buffers{chain=\"%s\",state=\"free\"} %llu\n"
			  "spry_pool_buffers{chain=\"%s\",state=\"used\"} %llu\n",
			  cs->name, (unsigned long long)pst.n_free + pst.n_large_free,
			  cs->name, (unsigned long long)(pst.n_bufs - pst.n_free) +
				    (pst.n_large - pst.n_large_free));
	}
}

/* The functions of active chains: invocations (pass 0), per-instance in-flight (1). */
static void metrics_fns(struct spryd *d, struct mbuf *m, int pass)
{
	struct spry_inst_state is;
	struct spry_fn_stats fs;
	struct spry_chain rec;
	struct spry_fn f;
	char cname[SPRY_NAME_LEN], fname[SPRY_NAME_LEN];
	unsigned int i, k;

	for (i = 1; i < SPRY_MAX_FNS; i++) {
		if (spry_fn__get(&d->maps, (__u16)i, &f) || !(f.flags & SPRY_FF_ACTIVE) ||
		    !f.name[0] || !f.chain || f.chain >= SPRY_MAX_CHAINS ||
		    spry_chain__get(&d->maps, f.chain, &rec) || !rec.name[0])
			continue;
		memcpy(fname, f.name, SPRY_NAME_LEN);
		fname[SPRY_NAME_LEN - 1] = '\0';
		memcpy(cname, rec.name, SPRY_NAME_LEN);
		cname[SPRY_NAME_LEN - 1] = '\0';
		if (pass == 0) {
			if (!spry_fn_stats__read(&d->maps, (__u16)i, &fs))
				mb_printf(m, "spry_fn_invocations_total{chain=\"%s\",fn=\"%s\","
					  "instance=\"all\"} %llu\n",
					  cname, fname, (unsigned long long)fs.delivered);
			continue;
		}
		for (k = 0; k < f.n_inst && k < SPRY_MAX_INST; k++)
			if (!spry_inst__get(&d->maps, (__u16)i, f.inst[k], &is))
				mb_printf(m, "spry_fn_inflight{chain=\"%s\",fn=\"%s\","
					  "instance=\"%u\"} %d\n",
					  cname, fname, f.inst[k], is.inflight);
	}
}

static void metrics_router(struct spryd *d, struct mbuf *m)
{
	__u64 v[SPRY_V_MAX];
	unsigned int i;

	mb_printf(m, "# HELP spry_router_verdicts_total Router verdicts (all CPUs).\n"
		  "# TYPE spry_router_verdicts_total counter\n");
	if (!spry_verdicts__read(&d->maps, v))
		for (i = 0; i < SPRY_V_MAX; i++)
			mb_printf(m, "spry_router_verdicts_total{verdict=\"%s\"} %llu\n",
				  spry_verdict_name(i), (unsigned long long)v[i]);
	/* Per-instance delivery is not counted by the router: per function. */
	mb_printf(m, "# HELP spry_fn_invocations_total "
		  "Descriptors delivered to the function (all its instances).\n"
		  "# TYPE spry_fn_invocations_total counter\n");
	metrics_fns(d, m, 0);
	mb_printf(m, "# HELP spry_fn_inflight Descriptors an instance holds.\n"
		  "# TYPE spry_fn_inflight gauge\n");
	metrics_fns(d, m, 1);
}

/* Retries: of requests (entry.c's retry()) and of registrations. */
static void metrics_retries(struct spryd *d, struct mbuf *m)
{
	unsigned int i;

	mb_printf(m, "# HELP spry_request_retries_total Requests resubmitted from hop 0 "
		  "after the instance of the function holding them died (idempotent hops).\n"
		  "# TYPE spry_request_retries_total counter\n");
	for (i = 1; d->retries && i < SPRY_MAX_FNS; i++)
		if (d->retries[i].n)
			mb_printf(m, "spry_request_retries_total{chain=\"%s\",fn=\"%s\"} %llu\n",
				  d->retries[i].chain, d->retries[i].fn,
				  (unsigned long long)d->retries[i].n);
	mb_printf(m, "# HELP spry_registrations_total Function instances registered "
		  "(re-registrations after a lost spryd included).\n"
		  "# TYPE spry_registrations_total counter\n"
		  "spry_registrations_total %llu\n"
		  "# HELP spry_registrations_refused_total Registrations refused "
		  "(a function retrying an unknown chain counts each attempt).\n"
		  "# TYPE spry_registrations_refused_total counter\n"
		  "spry_registrations_refused_total %llu\n",
		  (unsigned long long)d->st.registered, (unsigned long long)d->st.reg_refused);
}

static void serve_metrics(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct mbuf m = { .cap = 16384 };

	m.p = malloc(m.cap);
	if (!m.p) {
		respond_error(d, c, 503, false, "Retry-After: 1\r\n", now);
		return;
	}
	metrics_http(d, &m);
	metrics_chains(d, &m);
	metrics_router(d, &m);
	metrics_retries(d, &m);
	if (m.oom) {
		free(m.p);
		respond_error(d, c, 503, false, "Retry-After: 1\r\n", now);
		return;
	}
	c->heap = m.p;
	respond(d, c, 200, "text/plain; version=0.0.4; charset=utf-8", m.p, m.len, NULL, now);
}

/* --------------------------------------------------------- requests */

static int prep_error_status(int err)
{
	switch (err) {
	case -ENOENT:
		return 404;
	case -EMSGSIZE:
		return 413;
	default:
		return 503;	/* -EBUSY, -ENOSPC, no pool */
	}
}

/*
 * Route, look up the chain, take a buffer and write the metadata: at HEAD
 * (a body follows) or DONE (none).  0: c->req prepared; else an answer
 * was queued (with close when a body is pending).
 */
static int start_request(struct spryd *d, struct gw_conn *c, bool body_follows,
			 uint64_t now)
{
	struct spryd_gw *gw = d->gw;
	struct spry_http_req *rq = &c->st->hc.req, mreq;
	struct spry_http_route rt;
	struct spry_chain rec;
	struct spry_pool_stats pst;
	struct spryd_req *r;
	char allow[64];
	uint64_t size, body_cap;
	size_t mlen;
	uint32_t meta_len;
	uint16_t id;
	void *p;
	int err;

	c->is_head = rq->method == HTTP_HEAD;
	err = spry_http_route(rq->path, rq->path_len, rq->method, &rt);
	if (err == -EOPNOTSUPP) {
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", rt.allow);
		respond_error(d, c, 405, body_follows, allow, now);
		return -1;
	}
	if (err) {
		respond_error(d, c, 404, body_follows, NULL, now);
		return -1;
	}
	if (rt.kind == SPRY_ROUTE_METRICS) {
		if (body_follows) {
			/* GET/HEAD with a body: refused rather than drained */
			respond_error(d, c, 413, true, NULL, now);
			return -1;
		}
		serve_metrics(d, c, now);
		return -1;
	}
	err = entry_find_chain_cached(d, rt.chain, now, &id, &rec);
	if (err) {
		respond_error(d, c, 404, body_follows, NULL, now);
		return -1;
	}
	/* the metadata: the path after /CHAIN */
	mreq = *rq;
	mreq.path = rt.rest;
	mreq.path_len = rt.rest_len;
	err = spry_http_meta_build(&mreq, gw->meta, sizeof(gw->meta), &mlen);
	if (err) {
		respond_error(d, c, 431, true, NULL, now);
		return -1;
	}
	meta_len = (uint32_t)((mlen + GW_META_SPARE + 63) & ~(size_t)63);
	if (!body_follows)
		body_cap = 0;
	else if (rq->has_content_length)
		body_cap = rq->content_length;
	else {
		/* chunked: the largest buffer there is, at most max_body */
		body_cap = gw->lim.max_body;
		if (d->chains[id].pool && !spry_pool_stats(d->chains[id].pool, &pst)) {
			uint64_t big = pst.large_size > pst.buf_size ? pst.large_size
								     : pst.buf_size;

			if (big > meta_len && big - meta_len < body_cap)
				body_cap = big - meta_len;
		}
	}
	size = meta_len + body_cap;
	if (size > UINT32_MAX) {
		respond_error(d, c, 413, true, NULL, now);
		return -1;
	}
	err = entry_prepare(d, id, &rec, (uint32_t)size, REQ_OWN_HTTP,
			    (uint32_t)(c - gw->conns), c->gen, &r, &p);
	if (d->chains[id].known)
		c->chain = id;
	if (err) {
		int status = prep_error_status(err);

		respond_error(d, c, status, body_follows, status == 503 ?
			      "Retry-After: 1\r\n" : NULL, now);
		return -1;
	}
	memcpy(p, gw->meta, mlen);
	memset((char *)p + mlen, '\n', meta_len - mlen);
	c->req = r;
	c->req_id = r->req_id;
	c->meta_len = meta_len;
	c->body = (char *)p + meta_len;
	if (body_follows) {
		spry_http_set_body(&c->st->hc, c->body,
				   (size_t)(r->desc.cap - meta_len));
		if (rq->expect_continue) {
			ssize_t n = send(c->ep.fd, SPRY_HTTP_CONTINUE,
					 sizeof(SPRY_HTTP_CONTINUE) - 1,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n != (ssize_t)sizeof(SPRY_HTTP_CONTINUE) - 1) {
				/* nothing else is queued: a peer this slow is gone */
				conn_close(d, c);
				return -2;
			}
		}
	}
	return 0;
}

static void submit(struct spryd *d, struct gw_conn *c)
{
	struct spry_http_req *rq = &c->st->hc.req;
	struct spryd_req *r = c->req;

	if (!r || r->req_id != c->req_id || r->state != REQ_PREP) {
		c->req = NULL;
		return;
	}
	c->phase = GW_WAIT;
	c->dl_kind = DL_NONE;
	c->deadline = 0;
	c->body = NULL;
	entry_submit(d, r, c->meta_len, (uint32_t)rq->body_len, 0, 0);
}

/* Parse what is in the read buffer; returns false when nothing more now. */
static bool parse(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct gw_state *st = c->st;
	bool was_in = spry_http_in_request(&st->hc);
	size_t used;
	int r;

	r = spry_http_feed(&st->hc, st->rbuf + st->roff, st->rlen - st->roff, &used);
	st->roff += (uint32_t)used;
	if (st->roff == st->rlen)
		st->roff = st->rlen = 0;
	if (!was_in && (used || r != SPRY_HTTP_AGAIN)) {
		c->t_req = now;
		c->chain = GW_NO_CHAIN;
		c->req_id = 0;
		c->is_head = false;
		set_deadline(d, c, DL_HEADER, now);
	}
	switch (r) {
	case SPRY_HTTP_AGAIN:
		return false;
	case SPRY_HTTP_HEAD:
		set_deadline(d, c, DL_BODY, now);
		if (start_request(d, c, true, now) == -2)
			return false;
		return c->used && c->phase == GW_READ;
	case SPRY_HTTP_DONE:
		if (!c->req) {
			if (start_request(d, c, false, now))
				return false;
		}
		submit(d, c);
		return false;
	case -EPROTO:
		drop_prep(d, c);
		c->is_head = st->hc.req.method == HTTP_HEAD && st->hc.req.method_str;
		respond_error(d, c, st->hc.req.status ? st->hc.req.status : 400, true, NULL, now);
		return false;
	default:
		conn_close(d, c);
		return false;
	}
}

/* Parse what is buffered, read more, until a request is complete or EAGAIN. */
static void do_read(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct gw_state *st;
	ssize_t n;

	while (c->used && c->phase == GW_READ) {
		if (!c->st) {
			if (!c->may_read)
				return;
			c->st = state_get(d);
			if (!c->st) {
				conn_close(d, c);
				return;
			}
		}
		st = c->st;
		if (st->rlen > st->roff) {
			parse(d, c, now);
			continue;
		}
		if (!c->may_read)
			break;
		n = recv(c->ep.fd, st->rbuf + st->rlen, GW_RBUF - st->rlen, MSG_DONTWAIT);
		if (n > 0) {
			st->rlen += (uint32_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->may_read = false;
			break;
		}
		/* EOF (mid-request or idle: nothing to answer) or an error */
		conn_close(d, c);
		return;
	}
	if (!c->used || c->phase != GW_READ || !c->st)
		return;
	st = c->st;
	if (!spry_http_in_request(&st->hc) && st->rlen == st->roff) {
		/* between requests: the state goes back to the cache */
		state_put(d, st);
		c->st = NULL;
		if (c->dl_kind != DL_IDLE)
			set_deadline(d, c, DL_IDLE, now);
	}
}

/* Read and drop what the client sends after a close answer: until EOF. */
static void drain(struct spryd *d, struct gw_conn *c)
{
	static char sink[65536];
	ssize_t n;

	for (;;) {
		n = recv(c->ep.fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0) {
			c->drained += (uint32_t)n;
			if (c->drained <= GW_LINGER_BYTES)
				continue;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->may_read = false;
			return;
		}
		conn_close(d, c);
		return;
	}
}

/*
 * Closing with unread bytes in the socket (a refused body, pipelined
 * requests) would reset the connection and could destroy the answer
 * before the client reads it: shut our side down, drain for a while.
 */
static void linger(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	if (c->st) {
		state_put(d, c->st);
		c->st = NULL;
	}
	if (shutdown(c->ep.fd, SHUT_WR)) {
		conn_close(d, c);
		return;
	}
	c->phase = GW_LINGER;
	c->drained = 0;
	set_deadline(d, c, DL_LINGER, now);
	c->may_read = true;
	drain(d, c);
}

static void finish_response(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	access_log(d, c, now);
	release_buf(d, c);
	free(c->heap);
	c->heap = NULL;
	c->iovcnt = 0;
	if (c->close_after) {
		linger(d, c, now);
		return;
	}
	/* the caller reads on: pipelined bytes already read, or the socket */
	c->phase = GW_READ;
	c->req = NULL;
	c->req_id = 0;
	set_deadline(d, c, DL_IDLE, now);
	c->may_read = true;
}

static void do_write(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	ssize_t n;

	while (c->iovcnt) {
		n = writev(c->ep.fd, c->iov, c->iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->may_write = false;
				return;
			}
			conn_close(d, c);
			return;
		}
		c->resp_bytes += (uint64_t)n;
		set_deadline(d, c, DL_WRITE, now);
		while (n && c->iovcnt) {
			if ((size_t)n >= c->iov[0].iov_len) {
				n -= (ssize_t)c->iov[0].iov_len;
				c->iov[0] = c->iov[1];
				c->iovcnt--;
			} else {
				c->iov[0].iov_base = (char *)c->iov[0].iov_base + n;
				c->iov[0].iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	finish_response(d, c, now);
}

static void start_write(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	c->phase = GW_WRITE;
	set_deadline(d, c, DL_WRITE, now);
	c->may_write = true;
	do_write(d, c, now);
}

/* ------------------------------------------------------- completion */

/* The response fields of a metadata block (last line of each key wins). */
struct resp_meta {
	const char	*status;	/* value, OWS trimmed; NULL if absent */
	const char	*ctype;
	size_t		status_len;
	size_t		ctype_len;
};

static bool meta_key_is(const char *p, const char *eol, const char *key,
			size_t klen, const char **v, size_t *vlen)
{
	const char *a, *b;

	if ((size_t)(eol - p) <= klen || p[klen] != ':' || memcmp(p, key, klen))
		return false;
	a = p + klen + 1;
	while (a < eol && (*a == ' ' || *a == '\t'))
		a++;
	b = eol;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	*v = a;
	*vlen = (size_t)(b - a);
	return true;
}

/*
 * One pass over the block.  Response fields start with '@' (a request
 * header name cannot), so only lines starting with '@' are looked at,
 * found with memchr rather than line by line: the block is mostly '\n'
 * padding, one line per byte.
 */
static void resp_meta_scan(const char *meta, size_t n, struct resp_meta *m)
{
	const char *p = meta, *end = meta + n, *eol;

	m->status = m->ctype = NULL;
	m->status_len = m->ctype_len = 0;
	while (p < end && (p = memchr(p, '@', (size_t)(end - p)))) {
		if (p > meta && p[-1] != '\n') {
			p++;	/* not at a line start */
			continue;
		}
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (!meta_key_is(p, eol, SPRY_META_STATUS, sizeof(SPRY_META_STATUS) - 1,
				 &m->status, &m->status_len))
			meta_key_is(p, eol, SPRY_META_CONTENT_TYPE,
				    sizeof(SPRY_META_CONTENT_TYPE) - 1, &m->ctype,
				    &m->ctype_len);
		p = eol + 1;
	}
}

/* @status: three digits, 200..599 (a 1xx cannot be a final response). */
static int resp_status(const struct resp_meta *m)
{
	const char *v = m->status;
	int s;

	if (!v)
		return 200;
	if (m->status_len != 3 || v[0] < '2' || v[0] > '5' || v[1] < '0' ||
	    v[1] > '9' || v[2] < '0' || v[2] > '9')
		return -1;
	s = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
	return s;
}

/* @content-type copied into @out when valid (visible ASCII, SP, HT). */
static const char *resp_ctype(const struct resp_meta *m, char *out, size_t cap)
{
	const char *v = m->ctype;
	size_t len = m->ctype_len, i;

	if (!v || !len || len >= cap)
		return "application/octet-stream";
	for (i = 0; i < len; i++)
		if ((v[i] < 0x20 && v[i] != '\t') || v[i] > 0x7e)
			return "application/octet-stream";
	memcpy(out, v, len);
	out[len] = '\0';
	return out;
}

static int err_status(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return 504;
	case -ESHUTDOWN:
		return 503;
	default:
		return 502;	/* -ECONNRESET, -EBADMSG, -EIO */
	}
}

static int desc_status(uint8_t st)
{
	switch (st) {
	case SPRY_ST_NO_INSTANCE:
		return 503;
	case SPRY_ST_NO_CHAIN:
		return 404;
	case SPRY_ST_FN_ERROR:
		return 500;
	default:
		return 502;	/* BAD_DESC, TOO_BIG, NO_CALLER, unknown */
	}
}

/*
 * Completions run inside entry.c's loops over its request lists: reading
 * (and so starting) the connection's next request waits for gateway_run().
 */
static void resume_later(struct spryd *d, struct gw_conn *c)
{
	struct spryd_gw *gw = d->gw;

	if (!c->used || c->phase != GW_READ || c->resume)
		return;
	c->resume = true;
	gw->resume[gw->n_resume++] = (uint32_t)(c - gw->conns);
}

void gateway_run(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_conn *c;
	uint64_t now;
	uint32_t i;

	if (!gw)
		return;
	if (gw->n_resume) {
		now = spryd_now_ns();
		for (i = 0; i < gw->n_resume; i++) {
			c = &gw->conns[gw->resume[i]];
			if (!c->resume)
				continue;
			c->resume = false;
			if (c->used && c->phase == GW_READ)
				do_read(d, c, now);
		}
		gw->n_resume = 0;
	}
	if (gw->log)
		fflush(gw->log);
}

bool gateway_complete(struct spryd *d, const struct spryd_req *r, int err,
		      const struct spry_desc *desc)
{
	struct spryd_gw *gw = d->gw;
	struct spryd_chain *cs = &d->chains[r->chain];
	char ctype[GW_CTYPE_MAX + 1];
	struct resp_meta rm;
	const char *meta, *ct;
	struct gw_conn *c;
	uint64_t now;
	int status;

	if (!gw || r->conn >= d->http.max_conns)
		return false;
	c = &gw->conns[r->conn];
	if (!c->used || c->gen != r->conn_gen || c->phase != GW_WAIT ||
	    c->req_id != r->req_id)
		return false;	/* the connection went away: dropped */
	if (!c->st) {
		conn_close(d, c);	/* cannot happen: WAIT keeps the state */
		return false;
	}
	c->req = NULL;
	now = spryd_now_ns();
	/*
	 * A handler that failed may have said why: an explicit @status of
	 * 400..599 and its payload are the answer (a function refusing bad
	 * input gives 400 and its message, not a bare 500).
	 */
	if (!err && desc && desc->status == SPRY_ST_FN_ERROR) {
		meta = spry_pool_ptr(cs->pool, desc->off,
				     (uint64_t)desc->meta_len + desc->len);
		if (meta)
			resp_meta_scan(meta, desc->meta_len, &rm);
		status = meta ? resp_status(&rm) : -1;
		if (status >= 400 && meta && rm.status)
			goto answer;
	}
	if (err || !desc || desc->status != SPRY_ST_OK) {
		status = err || !desc ? err_status(err) : desc_status(desc->status);
		respond_error(d, c, status, false, status == 503 ? "Retry-After: 1\r\n" : NULL,
			      now);
		resume_later(d, c);
		return false;
	}
	meta = spry_pool_ptr(cs->pool, desc->off, (uint64_t)desc->meta_len + desc->len);
	if (meta)
		resp_meta_scan(meta, desc->meta_len, &rm);
	status = meta ? resp_status(&rm) : -1;
	if (status < 0) {
		spryd_vlog(d, "request %#llx: bad buffer or @status in the response",
			   (unsigned long long)r->req_id);
		respond_error(d, c, 502, false, NULL, now);
		resume_later(d, c);
		return false;
	}
answer:
	ct = resp_ctype(&rm, ctype, sizeof(ctype));
	c->holds_buf = true;
	c->buf_chain = r->chain;
	c->buf_off = desc->off;
	c->buf_gen = desc->gen;
	cs->held++;
	respond(d, c, status, ct, meta + desc->meta_len, desc->len, NULL, now);
	resume_later(d, c);
	return true;
}

/* ------------------------------------------------------------ events */

static void gw_accept(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_conn *c;
	union gw_addr a;
	socklen_t len;
	int fd, i, one = 1;

	for (i = 0; i < GW_ACCEPTS_PER_EVENT; i++) {
		len = sizeof(a);
		fd = spryd_accept(d, gw->lep.fd, &a.sa, &len);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				spryd_log("http accept: %s", strerror(errno));
			return;
		}
		if (!gw->n_free) {
			gw->refused++;
			close(fd);
			continue;
		}
		c = &gw->conns[gw->free_idx[--gw->n_free]];
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->ep.kind = EP_HTTP;
		c->ep.fd = fd;
		if (spryd_ep_add(d, &c->ep, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)) {
			close(fd);
			c->ep.fd = -1;
			gw->n_free++;
			continue;
		}
		c->used = true;
		c->may_read = false;
		c->may_write = true;
		c->close_after = false;
		c->phase = GW_READ;
		c->st = NULL;
		c->req = NULL;
		c->req_id = 0;
		c->chain = GW_NO_CHAIN;
		c->iovcnt = 0;
		c->holds_buf = false;
		c->heap = NULL;
		c->peer = a;
		set_deadline(d, c, DL_IDLE, spryd_now_ns());
		gw->n_open++;
		gw->accepted++;
		if ((uint32_t)(c - gw->conns) + 1 > gw->hiwater)
			gw->hiwater = (uint32_t)(c - gw->conns) + 1;
	}
}

void gateway_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct gw_conn *c;
	uint64_t now;

	if (!d->gw)
		return;
	if (ep->kind == EP_HTTP_LISTEN) {
		gw_accept(d);
		return;
	}
	c = (struct gw_conn *)ep;
	if (!c->used)
		return;
	now = spryd_now_ns();
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* reset or both directions shut: nobody to answer */
		conn_close(d, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP))
		c->may_read = true;
	if (events & EPOLLOUT)
		c->may_write = true;
	switch (c->phase) {
	case GW_READ:
		do_read(d, c, now);
		break;
	case GW_WRITE:
		if (c->may_write)
			do_write(d, c, now);
		if (c->used && c->phase == GW_READ)
			do_read(d, c, now);
		break;
	case GW_LINGER:
		if (c->may_read)
			drain(d, c);
		break;
	default:
		break;	/* in the chain: the socket waits */
	}
}

static void timed_out(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	if ((c->dl_kind == DL_HEADER || c->dl_kind == DL_BODY) && c->phase == GW_READ &&
	    c->st) {
		/* 408, then close (at once, or at the write timeout) */
		drop_prep(d, c);
		respond_error(d, c, 408, true, NULL, now);
		return;
	}
	conn_close(d, c);
}

void gateway_timer(struct spryd *d, uint64_t now, uint64_t *next)
{
	struct spryd_gw *gw = d->gw;
	struct gw_conn *c;
	uint32_t i;

	if (!gw || !gw->n_open)
		return;
	if (now >= gw->next_scan) {
		for (i = 0; i < gw->hiwater; i++) {
			c = &gw->conns[i];
			if (c->used && c->deadline && c->deadline <= now)
				timed_out(d, c, now);
		}
		gw->next_scan = now + GW_SCAN_NS;
	}
	if (gw->n_open && (!*next || gw->next_scan < *next))
		*next = gw->next_scan;
}

/* ------------------------------------------------------------- setup */

static int parse_addr(const char *s, union gw_addr *a, socklen_t *len)
{
	char host[64];
	const char *colon;
	char *end;
	unsigned long port;
	size_t hl;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		colon++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons((uint16_t)port);
		*len = sizeof(a->in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons((uint16_t)port);
		*len = sizeof(a->in6);
		return 0;
	}
	return -EINVAL;
}

int gateway_init(struct spryd *d)
{
	const struct spryd_http_opts *o = &d->http;
	struct spryd_gw *gw;
	union gw_addr a;
	socklen_t len;
	uint32_t i;
	int fd, err, one = 1;

	if (!o->addr)
		return 0;
	err = parse_addr(o->addr, &a, &len);
	if (err) {
		spryd_log("--http %s: not ADDR:PORT", o->addr);
		return err;
	}
	gw = calloc(1, sizeof(*gw));
	if (!gw)
		return -ENOMEM;
	gw->lep.fd = -1;
	gw->lim.max_line = o->max_line;
	gw->lim.max_header_bytes = o->max_header_bytes;
	gw->lim.max_headers = o->max_headers;
	gw->lim.max_body = o->max_body;
	gw->conns = calloc(o->max_conns, sizeof(*gw->conns));
	gw->free_idx = calloc(o->max_conns, sizeof(*gw->free_idx));
	gw->resume = calloc(o->max_conns, sizeof(*gw->resume));
	if (!gw->conns || !gw->free_idx || !gw->resume) {
		err = -ENOMEM;
		goto err_free;
	}
	for (i = 0; i < o->max_conns; i++) {
		gw->conns[i].ep.fd = -1;
		gw->free_idx[i] = o->max_conns - 1 - i;
	}
	gw->n_free = o->max_conns;
	if (o->access_log) {
		if (!strcmp(o->access_log, "-")) {
			gw->log = stderr;
		} else {
			gw->log = fopen(o->access_log, "ae");
			if (!gw->log) {
				err = -errno;
				spryd_log("--access-log %s: %s", o->access_log, strerror(errno));
				goto err_free;
			}
			gw->log_close = true;
		}
	}
	fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto err_log;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, &a.sa, len) || listen(fd, 4096)) {
		err = -errno;
		close(fd);
		if (!o->addr_given) {
			spryd_log("http: default listener %s: %s: running without the HTTP front "
				  "(--http ADDR:PORT to choose)", o->addr, strerror(-err));
			err = 0;
		} else {
			spryd_log("http listener %s: %s", o->addr, strerror(-err));
		}
		goto err_log;
	}
	gw->lep.kind = EP_HTTP_LISTEN;
	gw->lep.fd = fd;
	d->gw = gw;
	err = spryd_ep_add(d, &gw->lep, EPOLLIN);
	if (err) {
		d->gw = NULL;
		close(fd);
		goto err_log;
	}
	spryd_log("http: listening on %s (max %u connections)", o->addr, o->max_conns);
	return 0;

err_log:
	if (gw->log_close)
		fclose(gw->log);
err_free:
	free(gw->conns);
	free(gw->free_idx);
	free(gw->resume);
	free(gw);
	return err;
}

void gateway_stop(struct spryd *d)
{
	if (d->gw)
		spryd_ep_close(d, &d->gw->lep);
}

void gateway_fini(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_state *st;
	uint32_t i;

	if (!gw)
		return;
	spryd_ep_close(d, &gw->lep);
	for (i = 0; i < gw->hiwater; i++)
		conn_close(d, &gw->conns[i]);
	while ((st = gw->cache)) {
		gw->cache = st->next;
		free(st);
	}
	for (i = 0; i < SPRY_MAX_CHAINS; i++)
		free(gw->stats[i]);
	if (gw->log) {
		fflush(gw->log);
		if (gw->log_close)
			fclose(gw->log);
	}
	free(gw->conns);
	free(gw->free_idx);
	free(gw->resume);
	free(gw);
	d->gw = NULL;
}
