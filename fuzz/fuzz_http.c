// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of spryd's HTTP/1.1 parser (spryd/http.c), driven the
 * way spryd drives it (spryd/gateway.c): feed, pipeline until the input
 * is used, a body sink set at SPRY_HTTP_HEAD, metadata and routing of
 * every complete request.
 *
 * Input: 8 control bytes, then the byte stream of one connection.
 *   [0] max_line          8 + 4 * b          (8..1028)
 *   [1] max_header_bytes  16 + 8 * b         (16..2056)
 *   [2] max_headers       1 + b % 32
 *   [3] max_body          16 * b             (0..4080)
 *   [4] body sink         0: none (count and drop), else b * 8 bytes
 *   [5..6] split seed     chunk sizes of the second pass
 *   [7] flags             bit 0: default limits instead of [0..3]
 *
 * The stream is parsed twice: whole (each feed gets everything not yet
 * consumed), and split into reads of 1..16 bytes at seed-derived points.
 * http.h promises that the earliest fault decides the status however the
 * stream is split: both passes must give the same trace of events,
 * statuses, requests and bodies.
 *
 * Asserted (abort() on failure):
 *   - consumed <= len; SPRY_HTTP_AGAIN consumes everything given;
 *   - -EPROTO: req.status in {400,413,414,417,431,501,505}, and is sticky;
 *     -EPIPE only after a DONE without keep-alive, and sticky;
 *   - no progress loop: a bounded number of calls per input byte;
 *   - HEAD: has_body; set_body accepted at HEAD only;
 *   - DONE: strings NUL-terminated inside the connection, path/query
 *     slices inside the target, body_len == content_length when given,
 *     body within max_body and the sink; meta_build and route succeed or
 *     fail cleanly;
 *   - whole and split traces equal.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spryd/http.h"

#define CTL_BYTES	8
#define TRACE_MAX	4096
#define SINK_MAX	(255 * 8)

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_http: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

struct trace {
	uint64_t	v[TRACE_MAX];
	size_t		n;
	uint64_t	hash;		/* of everything, also past TRACE_MAX */
};

static void tr(struct trace *t, uint64_t x)
{
	t->hash = (t->hash ^ x) * 0x100000001b3ULL;
	if (t->n < TRACE_MAX)
		t->v[t->n++] = x;
}

static void tr_bytes(struct trace *t, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	tr(t, n);
	for (i = 0; i < n; i++)
		tr(t, b[i]);
}

static bool inside(const struct spry_http_conn *c, const char *p, size_t n)
{
	const char *lo = (const char *)c, *hi = lo + sizeof(*c);

	return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static bool is_error_status(int st)
{
	switch (st) {
	case 400: case 413: case 414: case 417: case 431: case 501: case 505:
		return true;
	}
	return false;
}

/*
 * A response head as spryd writes it: a well-formed head or a refusal,
 * never bytes that would split it (header values come from the request).
 */
static void respond(int status, const char *ctype, const char *extra,
		    size_t body_len, bool keep_alive)
{
	struct spry_http_resp resp = {
		.status = status, .content_type = ctype, .body_len = body_len,
		.keep_alive = keep_alive, .extra = extra,
		.date = status >= 400 ? 1700000000 : 0,
	};
	char out[512];
	size_t w = 1, i;
	int err;

	err = spry_http_response_ex(out, sizeof(out), &resp, &w);
	check(err == 0 || err == -ENOSPC || err == -EINVAL);
	if (err) {
		check(w == 0);
		return;
	}
	check(w >= 4 && w <= sizeof(out));
	check(!memcmp(out, "HTTP/1.1 ", 9));
	check(!memcmp(out + w - 4, "\r\n\r\n", 4));
	check(!memchr(out, '\0', w));
	for (i = 0; i < w; i++) {
		if (out[i] == '\r')
			check(i + 1 < w && out[i + 1] == '\n');
		if (out[i] == '\n')
			check(i > 0 && out[i - 1] == '\r');
		/* the only empty line is the last */
		if (i + 4 <= w - 4)
			check(memcmp(out + i, "\r\n\r\n", 4));
	}
}

/* A complete request: check it, use it as spryd does, record it. */
static void on_done(struct spry_http_conn *c, const char *sink, size_t sink_cap,
		    struct trace *t)
{
	const struct spry_http_req *r = &c->req;
	struct spry_http_route rt;
	char meta[1024];
	size_t mlen = 0;
	unsigned int i;
	int err;

	check(r->method_str && r->target);
	check(inside(c, r->target, r->target_len + 1));
	check(r->target[r->target_len] == '\0');
	check(r->target_len > 0);
	if (r->path_len)
		check(r->path >= r->target &&
		      r->path + r->path_len <= r->target + r->target_len);
	if (r->query)
		check(r->query >= r->target &&
		      r->query + r->query_len <= r->target + r->target_len);
	check(r->http_major == 1 && r->http_minor <= 1);
	check(r->n_headers <= SPRY_HTTP_KEPT_MAX);
	for (i = 0; i < r->n_headers; i++) {
		const struct spry_http_header *h = &r->headers[i];

		check(inside(c, h->name, h->name_len + 1u));
		check(inside(c, h->value, h->value_len + 1u));
		check(strlen(h->name) == h->name_len);
		check(!memchr(h->value, '\r', h->value_len) &&
		      !memchr(h->value, '\n', h->value_len));
		check(spry_http_req_header(r, h->name) == h);
	}
	check(r->body_len <= c->lim.max_body);
	if (sink)
		check(r->body_len <= sink_cap);
	if (r->has_content_length)
		check(r->body_len == r->content_length && !r->chunked);
	else if (!r->chunked)
		check(r->body_len == 0);
	check(!r->expect_continue || r->has_body);

	err = spry_http_meta_build(r, meta, sizeof(meta), &mlen);
	check(err == 0 || err == -ENOSPC || err == -EINVAL);
	if (!err)
		check(mlen <= sizeof(meta));
	err = spry_http_route(r->path, r->path_len, r->method, &rt);
	check(err == 0 || err == -ENOENT || err == -EOPNOTSUPP);
	check(err == 0 ? rt.status == 0 :
	      rt.status == (err == -ENOENT ? 404 : 405));
	if (!err && rt.kind == SPRY_ROUTE_CHAIN)
		check(strlen(rt.chain) >= 1 && strlen(rt.chain) < sizeof(rt.chain));

	/* answers: plain, and with request-supplied header text */
	respond(200 + r->n_headers, NULL, NULL, r->body_len, r->keep_alive);
	for (i = 0; i < r->n_headers; i++) {
		const struct spry_http_header *h = &r->headers[i];
		char extra[128];

		respond(200, h->value, NULL, 0, true);
		if (h->value_len < sizeof(extra) - 3) {
			memcpy(extra, h->value, h->value_len);
			memcpy(extra + h->value_len, "\r\n", 3);
			respond(404, "text/plain", extra, 9, false);
		}
	}

	tr(t, SPRY_HTTP_DONE);
	tr(t, r->method);
	tr(t, r->keep_alive);
	tr(t, r->chunked);
	tr(t, r->body_len);
	tr(t, r->n_headers);
	tr_bytes(t, r->target, r->target_len);
	if (!err)
		tr_bytes(t, meta, mlen);
	if (sink)
		tr_bytes(t, sink, r->body_len);
}

/*
 * One pass over @buf: reads of at most @chunk(state) bytes (0: whole).
 * Returns the trace in @t.
 */
static void run(const struct spry_http_limits *lim, const uint8_t *in,
		size_t len, size_t sink_cap, uint32_t seed, struct trace *t)
{
	static struct spry_http_conn c;
	static char sink[SINK_MAX];
	const char *buf = (const char *)in;
	size_t off = 0, avail = 0, used, calls = 0;
	bool sink_set = false, closed = false;
	int r, zero_runs = 0;

	check(spry_http_conn_init(&c, lim) == 0);
	check(!spry_http_in_request(&c));
	check(spry_http_set_body(&c, sink, sizeof(sink)) == -EINVAL);
	t->n = 0;
	t->hash = 0xcbf29ce484222325ULL;

	for (;;) {
		size_t give;

		/* "read" more: the whole rest, or the next split chunk */
		if (avail == off) {
			if (off == len)
				break;
			if (!seed) {
				avail = len;
			} else {
				seed = seed * 1103515245u + 12345u;
				avail += 1 + (seed >> 16) % 16;
				if (avail > len)
					avail = len;
			}
		}
		give = avail - off;
		check(++calls <= 4 * len + 16);
		r = spry_http_feed(&c, buf + off, give, &used);
		check(used <= give);
		off += used;
		zero_runs = used ? 0 : zero_runs + 1;
		check(zero_runs <= 2);

		switch (r) {
		case SPRY_HTTP_AGAIN:
			check(used == give);
			check(!closed);
			break;
		case SPRY_HTTP_HEAD:
			check(c.req.has_body);
			check(spry_http_in_request(&c));
			sink_set = sink_cap > 0;
			check(spry_http_set_body(&c, sink_set ? sink : NULL,
						 sink_cap) == 0);
			tr(t, SPRY_HTTP_HEAD);
			tr(t, c.req.has_content_length ? c.req.content_length
						       : UINT64_MAX);
			tr(t, c.req.expect_continue);
			break;
		case SPRY_HTTP_DONE:
			check(!spry_http_in_request(&c));
			check(spry_http_set_body(&c, sink, 1) == -EINVAL);
			on_done(&c, sink_set ? sink : NULL, sink_cap, t);
			sink_set = false;
			closed = !c.req.keep_alive;
			break;
		case -EPROTO:
			check(is_error_status(c.req.status));
			check(!c.req.keep_alive);
			respond(c.req.status, "text/plain", NULL, 12, false);
			tr(t, 1000 + c.req.status);
			/* sticky */
			check(spry_http_feed(&c, buf, len, &used) == -EPROTO &&
			      used == 0);
			return;
		case -EPIPE:
			check(closed && used == 0);
			check(spry_http_feed(&c, buf, len, &used) == -EPIPE &&
			      used == 0);
			tr(t, 2000);
			return;
		default:
			check(!"unexpected return of spry_http_feed");
		}
	}
	/* input used up: an idle connection, or a request cut short */
	tr(t, spry_http_in_request(&c) ? 3001 : 3000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct trace whole, split;
	struct spry_http_limits lim;
	size_t sink_cap;
	uint32_t seed;

	if (size < CTL_BYTES)
		return 0;
	if (data[7] & 1) {
		spry_http_limits_default(&lim);
	} else {
		lim.max_line = 8 + 4 * (size_t)data[0];
		lim.max_header_bytes = 16 + 8 * (size_t)data[1];
		lim.max_headers = 1 + data[2] % 32;
		lim.max_body = 16 * (uint64_t)data[3];
	}
	sink_cap = 8 * (size_t)data[4];
	seed = ((uint32_t)data[5] << 8 | data[6]) + 1;

	run(&lim, data + CTL_BYTES, size - CTL_BYTES, sink_cap, 0, &whole);
	run(&lim, data + CTL_BYTES, size - CTL_BYTES, sink_cap, seed, &split);
	if (whole.hash != split.hash || whole.n != split.n ||
	    memcmp(whole.v, split.v, whole.n * sizeof(whole.v[0]))) {
		size_t i;

		for (i = 0; i < whole.n && i < split.n; i++)
			if (whole.v[i] != split.v[i])
				break;
		fprintf(stderr, "fuzz_http: whole and split traces differ at "
			"entry %zu (%llu vs %llu), seed %u\n", i,
			i < whole.n ? (unsigned long long)whole.v[i] : 0ULL,
			i < split.n ? (unsigned long long)split.v[i] : 0ULL,
			seed);
		abort();
	}
	return 0;
}
