// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's HTTP front room (spryd/gateway.h), --http ADDR:PORT.  This
 * file: the listener, the connections (accept, read, write, linger,
 * timeouts) and the front's ops; gateway_req.c: requests and responses
 * (what goes into the pool and the chain, what comes back as a response).
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
 * once, into the pool.  Once at least --body-direct bytes of it are still
 * to come and the read buffer is empty, they are received straight there
 * (gw_body_direct; the io_uring engine's way: gateway_uring.c) and parsed
 * where they landed, not copied.  At DONE the request is submitted (entry_submit);
 * the descriptor goes out with the loop iteration's batch (origin_flush).
 * gw_complete() (gateway_req.c: the front's completion op, front.h)
 * answers: @status/@content-type from the response metadata, head +
 * payload with writev straight from the pool buffer,
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "spryd/entry.h"
#include "spryd/gateway.h"
#include "spryd/gateway_int.h"
#include "fn-runtime/parse.h"
#include "spryd/http.h"
#include "spryd/spryd.h"

static const struct spryd_front_ops gw_front_ops;

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
	o->body_direct = GW_BODY_DIRECT;
}

/* ------------------------------------------------------- connections */

struct gw_state *gw_state_get(struct spryd *d)
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

void gw_state_put(struct spryd *d, struct gw_state *st)
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
void gw_drop_prep(struct spryd *d, struct gw_conn *c)
{
	struct spryd_req *r = c->req;

	/* a body the ring still receives into its buffer: freed when that ends */
	if (r && r->req_id == c->req_id && r->state == REQ_PREP &&
	    !(d->gw->u && gwu_body_busy(d, c)))
		entry_abort(d, r);
	c->req = NULL;
	c->body = NULL;
}

void gw_conn_close(struct spryd *d, struct gw_conn *c)
{
	struct spryd_gw *gw = d->gw;

	if (!c->used)
		return;
	gw_drop_prep(d, c);
	if (gw->u)
		gwu_conn_close(d, c);
	else
		spryd_ep_close(d, &c->ep);
	c->used = false;
	c->resume = false;
	c->gen++;
	gw->n_open--;
	/* a send in the ring still reads the head and the payload */
	if (!gw->u || !c->u_ops)
		gw_conn_release(d, c);
}

void gw_conn_release(struct spryd *d, struct gw_conn *c)
{
	struct spryd_gw *gw = d->gw;

	release_buf(d, c);
	free(c->heap);
	c->heap = NULL;
	if (c->st) {
		gw_state_put(d, c->st);
		c->st = NULL;
	}
	/*
	 * Free for reuse only after this loop iteration (gw_run): an event
	 * of this connection may still wait in the batch epoll_wait returned,
	 * and must find the slot unused, not a new client in it.
	 */
	gw->closed_idx[gw->n_closed++] = (uint32_t)(c - gw->conns);
}

void gw_set_deadline(struct spryd *d, struct gw_conn *c, enum gw_deadline k,
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
void gw_respond(struct spryd *d, struct gw_conn *c, int status, const char *ctype,
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
			gw_conn_close(d, c);
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
	gw_count_response(d, c, now);
	start_write(d, c, now);
}

void gw_respond_error(struct spryd *d, struct gw_conn *c, int status, bool close,
			  const char *extra, uint64_t now)
{
	struct gw_state *st = c->st;
	int n;

	if (close)
		c->close_after = true;
	n = snprintf(st->ebody, sizeof(st->ebody), "%d %s\n", status,
		     spry_http_reason(status));
	gw_respond(d, c, status, "text/plain", st->ebody, (size_t)n, extra, now);
}

void gw_respond_error_why(struct spryd *d, struct gw_conn *c, int status, const char *why,
			  uint64_t now)
{
	struct gw_state *st = c->st;
	int n;

	n = snprintf(st->ebody, sizeof(st->ebody), "%d %s\n%s", status,
		     spry_http_reason(status), why);
	if (n < 0 || (size_t)n >= sizeof(st->ebody))
		n = (int)strlen(st->ebody);
	gw_respond(d, c, status, "text/plain", st->ebody, (size_t)n, NULL, now);
}

size_t gw_body_direct(struct spryd *d, struct gw_conn *c, char **dst)
{
	uint64_t left;

	if (!d->http.body_direct || !c->st || c->phase != GW_READ || !c->body)
		return 0;
	left = spry_http_body_room(&c->st->hc, dst);
	if (left < d->http.body_direct)
		return 0;
	return left > GW_BODY_DIRECT_MAX ? GW_BODY_DIRECT_MAX : (size_t)left;
}

void gw_feed_direct(struct spryd *d, struct gw_conn *c, char *dst, uint32_t n, uint64_t now)
{
	uint32_t off = 0, was;

	d->gw->direct_recvs++;
	d->gw->direct_bytes += n;
	do {
		was = off;
		gw_parse_from(d, c, dst, n, &off, now);
	} while (c->used && c->phase == GW_READ && off < n && off != was);
}

static void do_read(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct gw_state *st;
	size_t left;
	char *dst;
	ssize_t n;

	if (d->gw->u) {
		gwu_read(d, c, now);
		return;
	}
	while (c->used && c->phase == GW_READ) {
		if (!c->st) {
			if (!c->may_read)
				return;
			c->st = gw_state_get(d);
			if (!c->st) {
				gw_conn_close(d, c);
				return;
			}
		}
		st = c->st;
		if (st->rlen > st->roff) {
			gw_parse(d, c, now);
			continue;
		}
		if (!c->may_read)
			break;
		left = gw_body_direct(d, c, &dst);
		if (left) {
			/* the rest of a large body: into its pool buffer, fed from there */
			n = recv(c->ep.fd, dst, left, MSG_DONTWAIT);
			if (n > 0) {
				gw_feed_direct(d, c, dst, (uint32_t)n, now);
				continue;
			}
		} else {
			n = recv(c->ep.fd, st->rbuf + st->rlen, GW_RBUF - st->rlen,
				 MSG_DONTWAIT);
		}
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
		gw_conn_close(d, c);
		return;
	}
	if (!c->used || c->phase != GW_READ || !c->st)
		return;
	st = c->st;
	if (!spry_http_in_request(&st->hc) && st->rlen == st->roff) {
		/* between requests: the state goes back to the cache */
		gw_state_put(d, st);
		c->st = NULL;
		if (c->dl_kind != DL_IDLE)
			gw_set_deadline(d, c, DL_IDLE, now);
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
		gw_conn_close(d, c);
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
		gw_state_put(d, c->st);
		c->st = NULL;
	}
	if (d->gw->u) {
		gwu_linger(d, c, now);
		return;
	}
	if (shutdown(c->ep.fd, SHUT_WR)) {
		gw_conn_close(d, c);
		return;
	}
	c->phase = GW_LINGER;
	c->drained = 0;
	gw_set_deadline(d, c, DL_LINGER, now);
	c->may_read = true;
	drain(d, c);
}

void gw_finish_response(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	gw_access_log(d, c, now);
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
	gw_set_deadline(d, c, DL_IDLE, now);
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
			gw_conn_close(d, c);
			return;
		}
		c->resp_bytes += (uint64_t)n;
		gw_set_deadline(d, c, DL_WRITE, now);
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
	gw_finish_response(d, c, now);
}

static void start_write(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	c->phase = GW_WRITE;
	gw_set_deadline(d, c, DL_WRITE, now);
	c->may_write = true;
	if (d->gw->u)
		gwu_send(d, c);
	else
		do_write(d, c, now);
}

void gw_resume_later(struct spryd *d, struct gw_conn *c)
{
	struct spryd_gw *gw = d->gw;

	if (!c->used || c->phase != GW_READ || c->resume)
		return;
	c->resume = true;
	gw->resume[gw->n_resume++] = (uint32_t)(c - gw->conns);
}

static void gw_run(struct spryd *d)
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
	if (gw->u)
		gwu_run(d);
	/* the slots closed during this iteration's events (gw_conn_close) */
	while (gw->n_closed)
		gw->free_idx[gw->n_free++] = gw->closed_idx[--gw->n_closed];
	if (gw->log)
		fflush(gw->log);
}

/* ------------------------------------------------------------ events */

/* A new connection on @fd (closed on failure); NULL: refused. */
struct gw_conn *gw_conn_open(struct spryd *d, int fd, const union gw_addr *a)
{
	struct spryd_gw *gw = d->gw;
	struct gw_conn *c;
	int one = 1;

	if (!gw->n_free) {
		gw->refused++;
		close(fd);
		return NULL;
	}
	c = &gw->conns[gw->free_idx[--gw->n_free]];
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ep.ops = &gw_front_ops.ep;
	c->ep.fd = fd;
	if (!gw->u && spryd_ep_add(d, &c->ep, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)) {
		close(fd);
		c->ep.fd = -1;
		gw->n_free++;
		return NULL;
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
	c->peer = *a;
	gw_set_deadline(d, c, DL_IDLE, spryd_now_ns());
	gw->n_open++;
	gw->accepted++;
	if ((uint32_t)(c - gw->conns) + 1 > gw->hiwater)
		gw->hiwater = (uint32_t)(c - gw->conns) + 1;
	if (gw->u)
		gwu_conn_start(d, c);
	return c;
}

static void gw_accept(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	union gw_addr a;
	socklen_t len;
	int fd, i;

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
		gw_conn_open(d, fd, &a);
	}
}

static void gw_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct gw_conn *c;
	uint64_t now;

	if (!d->gw)
		return;
	if (d->gw->u && ep == (struct spryd_ep *)d->gw->u) {
		gwu_event(d);
		return;
	}
	if (ep == &d->gw->lep) {
		gw_accept(d);
		return;
	}
	c = (struct gw_conn *)ep;
	if (!c->used)
		return;
	now = spryd_now_ns();
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* reset or both directions shut: nobody to answer */
		gw_conn_close(d, c);
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
		gw_drop_prep(d, c);
		gw_respond_error(d, c, 408, true, NULL, now);
		return;
	}
	gw_conn_close(d, c);
}

static void gw_timer(struct spryd *d, uint64_t now, uint64_t *next)
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
	struct sockaddr_storage ss;
	int err;

	err = spry_addr__parse(s, &ss, len);
	if (err)
		return err;
	memset(a, 0, sizeof(*a));
	memcpy(a, &ss, *len);
	return 0;
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
		spryd_log("--http '%s': expected %s", o->addr, SPRY_ADDR_PORT_HELP);
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
	gw->closed_idx = calloc(o->max_conns, sizeof(*gw->closed_idx));
	gw->resume = calloc(o->max_conns, sizeof(*gw->resume));
	if (!gw->conns || !gw->free_idx || !gw->closed_idx || !gw->resume) {
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
	gw->lep.ops = &gw_front_ops.ep;
	gw->lep.fd = fd;
	d->gw = gw;
	if (o->uring)
		err = gwu_init(d, fd, &gw_front_ops.ep);
	else
		err = spryd_ep_add(d, &gw->lep, EPOLLIN);
	if (err) {
		if (o->uring)
			spryd_log("http: io_uring front: %s", strerror(-err));
		close(fd);
		goto err_log;
	}
	gw->front = front_register(d, &gw_front_ops);
	if (gw->front < 0) {
		err = gw->front;
		if (gw->u)
			gwu_fini(d);
		spryd_ep_close(d, &gw->lep);
		goto err_log;
	}
	if (o->sqpoll && o->sqpoll_cpu >= 0)
		spryd_log("http: listening on %s (max %u connections, io_uring front, its "
			  "submission thread on CPU %d)", o->addr, o->max_conns, o->sqpoll_cpu);
	else
		spryd_log("http: listening on %s (max %u connections, %s front%s)", o->addr,
			  o->max_conns, gw->u ? "io_uring" : "epoll",
			  o->sqpoll ? ", its submission thread on spryd's CPUs" : "");
	return 0;

err_log:
	d->gw = NULL;
	if (gw->log_close)
		fclose(gw->log);
err_free:
	free(gw->conns);
	free(gw->free_idx);
	free(gw->closed_idx);
	free(gw->resume);
	free(gw);
	return err;
}

static void gw_stop(struct spryd *d)
{
	if (!d->gw)
		return;
	if (d->gw->u)
		gwu_stop(d);
	else
		spryd_ep_close(d, &d->gw->lep);
}

/* After the core's sends of the iteration: the ring's submissions. */
static void gw_flush(struct spryd *d)
{
	if (d->gw && d->gw->u)
		gwu_flush(d);
}

static void gw_shutdown(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_state *st;
	uint32_t i;

	if (!gw)
		return;
	if (gw->u) {
		gwu_stop(d);
		gwu_drain(d);
	} else {
		spryd_ep_close(d, &gw->lep);
	}
	for (i = 0; i < gw->hiwater; i++)
		gw_conn_close(d, &gw->conns[i]);
	/* the ring's exit ends what it still had: the slots' buffers back */
	if (gw->u) {
		gwu_fini(d);
		for (i = 0; i < gw->hiwater; i++)
			if (gw->conns[i].u_ops) {
				gw->conns[i].u_ops = 0;
				gw_conn_release(d, &gw->conns[i]);
			}
	}
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
	free(gw->closed_idx);
	free(gw->resume);
	free(gw);
	d->gw = NULL;
}

static const struct spryd_front_ops gw_front_ops = {
	.ep = { .name = "http", .event = gw_event },
	.complete = gw_complete,
	.run = gw_run,
	.timer = gw_timer,
	.stop = gw_stop,
	.flush = gw_flush,
	.shutdown = gw_shutdown,
	.metrics = gw_metrics,
};
