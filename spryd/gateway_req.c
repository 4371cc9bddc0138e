// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's HTTP front room, its requests and responses (gateway_int.h; the
 * connections are gateway.c's): the parser's events turned into a request
 * (HEAD: the chain looked up, a pool buffer of metadata + body taken
 * through entry_prepare(), the body sink pointed into it; DONE:
 * entry_submit()), the front's completion op gw_complete() turning the
 * chain's answer into a response (status and content type from the
 * response metadata, the payload written straight from the pool buffer),
 * the statuses of errors, per-chain statistics, the access log and the
 * front's part of /metrics.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "fn-runtime/parse.h"
#include "spryd/entry.h"
#include "spryd/gateway_int.h"
#include "spryd/gateway_route.h"
#include "spryd/http.h"
#include "spryd/metrics.h"
#include "spryd/process.h"
#include "spryd/spryd.h"

static const double bucket_le[GW_N_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};


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

void gw_count_response(struct spryd *d, struct gw_conn *c, uint64_t now)
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

void gw_access_log(struct spryd *d, struct gw_conn *c, uint64_t now)
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

/* ------------------------------------------------------------ metrics */

void gw_metrics(struct spryd *d, struct mbuf *m)
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
		  "spry_http_connections_refused_total %llu\n"
		  "# HELP spry_http_body_direct_receives_total Receives of a request body straight into its pool buffer (--body-direct).\n"
		  "# TYPE spry_http_body_direct_receives_total counter\n"
		  "spry_http_body_direct_receives_total %llu\n"
		  "# HELP spry_http_body_direct_bytes_total Body bytes received straight into pool buffers.\n"
		  "# TYPE spry_http_body_direct_bytes_total counter\n"
		  "spry_http_body_direct_bytes_total %llu\n"
		  "# HELP spry_http_front_info The HTTP front's I/O engine (--front) and its threads (2: --sqpoll).\n"
		  "# TYPE spry_http_front_info gauge\n"
		  "spry_http_front_info{engine=\"%s\",threads=\"%u\"} 1\n",
		  gw->n_open, (unsigned long long)gw->accepted, (unsigned long long)gw->refused,
		  (unsigned long long)gw->direct_recvs, (unsigned long long)gw->direct_bytes,
		  gw->u ? "uring" : "epoll", gw->u && d->http.sqpoll ? 2u : 1u);
}

static void serve_metrics(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct mbuf m;

	if (metrics_render(d, &m)) {
		gw_respond_error(d, c, 503, false, "Retry-After: 1\r\n", now);
		return;
	}
	c->heap = m.p;
	gw_respond(d, c, 200, "text/plain; version=0.0.4; charset=utf-8", m.p, m.len, NULL, now);
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
 * An app's request (docs/PROCESS.md): /APP/FN[/...] with an optional
 * Spry-Process header, or /APP/ID/FN[/...].  The function must be one of
 * the app's; *@key the process id (0: none, any live process).  @mreq's
 * path becomes what follows FN.  0, or the HTTP status to answer.
 */
static int app_route(struct spryd *d, const struct spry_http_req *rq, uint16_t id,
		     struct spry_http_req *mreq, const char **fn, size_t *fn_len,
		     uint64_t *key)
{
	const struct spry_app_decl *app = d->chains[id].app;
	int hi = rq->well_known[SPRY_HDR_SPRY_PROCESS];
	struct spry_app_route rt;
	int status;

	if (!app)
		return 404;	/* spryd has not read its declaration (yet) */
	status = spry_app_route(app, mreq->path, mreq->path_len,
				hi >= 0 ? rq->headers[hi].value : NULL,
				hi >= 0 ? rq->headers[hi].value_len : 0, &rt);
	if (status)
		return status;
	*fn = rt.fn;
	*fn_len = rt.fn_len;
	*key = rt.key;
	mreq->path = rt.rest;
	mreq->path_len = rt.rest_len;
	return 0;
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
	const char *app_fn = NULL;
	size_t mlen, app_fn_len = 0;
	int status;
	uint32_t meta_len;
	uint16_t id;
	void *p;
	int err;

	c->is_head = rq->method == HTTP_HEAD;
	err = spry_http_route(rq->path, rq->path_len, rq->method, &rt);
	if (err == -EOPNOTSUPP) {
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", rt.allow);
		gw_respond_error(d, c, 405, body_follows, allow, now);
		return -1;
	}
	if (err) {
		gw_respond_error(d, c, 404, body_follows, NULL, now);
		return -1;
	}
	if (rt.kind == SPRY_ROUTE_METRICS) {
		if (body_follows) {
			/* GET/HEAD with a body: refused rather than drained */
			gw_respond_error(d, c, 413, true, NULL, now);
			return -1;
		}
		serve_metrics(d, c, now);
		return -1;
	}
	err = entry_find_chain_cached(d, rt.chain, now, &id, &rec);
	/* A chain added with `http off` is not there for HTTP clients. */
	if (err || (rec.flags & SPRY_CF_NO_HTTP)) {
		gw_respond_error(d, c, 404, body_follows, NULL, now);
		return -1;
	}
	/* the metadata: the path after /CHAIN */
	mreq = *rq;
	mreq.path = rt.rest;
	mreq.path_len = rt.rest_len;
	c->proc_key = 0;
	if (rec.flags & SPRY_CF_APP) {
		status = app_route(d, rq, id, &mreq, &app_fn, &app_fn_len, &c->proc_key);
		if (status) {
			gw_respond_error(d, c, status, body_follows, NULL, now);
			return -1;
		}
	}
	err = spry_http_meta_build(&mreq, gw->meta, sizeof(gw->meta), &mlen);
	if (!err && app_fn_len) {
		/* the function the app's process runs (spry_req_fn()) */
		if (sizeof(gw->meta) - mlen < app_fn_len + 6) {
			err = -ENOSPC;
		} else {
			memcpy(gw->meta + mlen, "fn: ", 4);
			memcpy(gw->meta + mlen + 4, app_fn, app_fn_len);
			gw->meta[mlen + 4 + app_fn_len] = '\n';
			mlen += app_fn_len + 5;
		}
	}
	if (err) {
		gw_respond_error(d, c, 431, true, NULL, now);
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
		gw_respond_error(d, c, 413, true, NULL, now);
		return -1;
	}
	err = entry_prepare(d, id, &rec, (uint32_t)size, (uint8_t)gw->front,
			    (uint32_t)(c - gw->conns), c->gen, &r, &p);
	if (d->chains[id].known)
		c->chain = id;
	if (err) {
		int status = prep_error_status(err);

		gw_respond_error(d, c, status, body_follows, status == 503 ?
			      "Retry-After: 1\r\n" : NULL, now);
		return -1;
	}
	memcpy(p, gw->meta, mlen);
	memset((char *)p + mlen, '\n', meta_len - mlen);
	/* an app's handler number: what the router checks a next against */
	if (app_fn_len && d->chains[id].app)
		r->desc.fn = (uint16_t)(1 + spry_app_decl__find_fn(d->chains[id].app, app_fn,
								   app_fn_len));
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
				gw_conn_close(d, c);
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
	entry_submit(d, r, c->meta_len, (uint32_t)rq->body_len,
		     c->proc_key ? SPRY_DF_STICKY : 0, c->proc_key);
}

/* Parse what is in the read buffer; returns false when nothing more now. */
bool gw_parse(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	return gw_parse_from(d, c, c->st->rbuf, c->st->rlen, &c->st->roff, now);
}

/*
 * Parse @buf from *@off (the read buffer, or a buffer the io_uring engine
 * received into).  *@off moves before the event is handled: answering
 * can close the connection or give its state back.
 */
bool gw_parse_from(struct spryd *d, struct gw_conn *c, const char *buf, uint32_t len,
		   uint32_t *off, uint64_t now)
{
	struct gw_state *st = c->st;
	bool was_in = spry_http_in_request(&st->hc);
	size_t used;
	int r;

	r = spry_http_feed(&st->hc, buf + *off, len - *off, &used);
	*off += (uint32_t)used;
	if (buf == st->rbuf && st->roff == st->rlen)
		st->roff = st->rlen = 0;
	if (!was_in && (used || r != SPRY_HTTP_AGAIN)) {
		c->t_req = now;
		c->chain = GW_NO_CHAIN;
		c->req_id = 0;
		c->is_head = false;
		gw_set_deadline(d, c, DL_HEADER, now);
	}
	switch (r) {
	case SPRY_HTTP_AGAIN:
		return false;
	case SPRY_HTTP_HEAD:
		gw_set_deadline(d, c, DL_BODY, now);
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
		gw_drop_prep(d, c);
		c->is_head = st->hc.req.method == HTTP_HEAD && st->hc.req.method_str;
		gw_respond_error(d, c, st->hc.req.status ? st->hc.req.status : 400, true, NULL, now);
		return false;
	default:
		gw_conn_close(d, c);
		return false;
	}
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
	uint64_t s;

	if (!m->status)
		return 200;
	if (m->status_len != 3 || spry_parse_u64(m->status, 3, 200, 599, &s))
		return -1;
	return (int)s;
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
	case -EAGAIN:	/* its functions could not start (activation) */
		return 503;
	case -ENOENT:	/* no such process (an app's: docs/PROCESS.md) */
		return 404;
	case -ENOTRECOVERABLE:	/* its swap file is missing or damaged */
		return 500;
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
	case SPRY_ST_NO_PROCESS:
		return 404;
	case SPRY_ST_FN_ERROR:
		return 500;
	default:
		return 502;	/* BAD_DESC, TOO_BIG, NO_CALLER, unknown */
	}
}

/*
 * Completions run inside entry.c's loops over its request lists: reading
 * (and so starting) the connection's next request waits for gw_run().
 */
bool gw_complete(struct spryd *d, const struct spryd_req *r, int err,
			uint32_t status_in, const struct spry_desc *desc)
{
	struct spryd_gw *gw = d->gw;
	struct spryd_chain *cs = &d->chains[r->chain];
	char ctype[GW_CTYPE_MAX + 1];
	struct resp_meta rm;
	const char *meta, *ct;
	struct gw_conn *c;
	uint64_t now;
	int status;

	(void)status_in;	/* an error's status: the answer depends on @err alone */
	if (!gw || r->conn >= d->http.max_conns)
		return false;
	c = &gw->conns[r->conn];
	if (!c->used || c->gen != r->conn_gen || c->phase != GW_WAIT ||
	    c->req_id != r->req_id)
		return false;	/* the connection went away: dropped */
	if (!c->st) {
		gw_conn_close(d, c);	/* cannot happen: WAIT keeps the state */
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
	if (err == -ENOTRECOVERABLE) {
		char why[400];

		/* a process whose state is lost: which, and why (process.c) */
		if (process_lost_text(d, r->chain, r->desc.key, why, sizeof(why)))
			snprintf(why, sizeof(why), "the process's state is lost\n");
		gw_respond_error_why(d, c, 500, why, now);
		gw_resume_later(d, c);
		return false;
	}
	if (err || !desc || desc->status != SPRY_ST_OK) {
		status = err || !desc ? err_status(err) : desc_status(desc->status);
		gw_respond_error(d, c, status, false, status == 503 ? "Retry-After: 1\r\n" : NULL,
			      now);
		gw_resume_later(d, c);
		return false;
	}
	meta = spry_pool_ptr(cs->pool, desc->off, (uint64_t)desc->meta_len + desc->len);
	if (meta)
		resp_meta_scan(meta, desc->meta_len, &rm);
	status = meta ? resp_status(&rm) : -1;
	if (status < 0) {
		spryd_vlog(d, "request %#llx: bad buffer or @status in the response",
			   (unsigned long long)r->req_id);
		gw_respond_error(d, c, 502, false, NULL, now);
		gw_resume_later(d, c);
		return false;
	}
answer:
	ct = resp_ctype(&rm, ctype, sizeof(ctype));
	c->holds_buf = true;
	c->buf_chain = r->chain;
	c->buf_off = desc->off;
	c->buf_gen = desc->gen;
	cs->held++;
	/* an app's answer names the process that gave it (the router's inst) */
	if (cs->app && desc->inst < SPRY_MAX_INST && cs->app_proc[desc->inst]) {
		char extra[48];

		snprintf(extra, sizeof(extra), "Spry-Process: %llu\r\n",
			 (unsigned long long)cs->app_proc[desc->inst]);
		gw_respond(d, c, status, ct, meta + desc->meta_len, desc->len, extra, now);
	} else {
		gw_respond(d, c, status, ct, meta + desc->meta_len, desc->len, NULL, now);
	}
	gw_resume_later(d, c);
	return true;
}

