// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_http: spryd's HTTP/1.1 request parser, response writer, metadata
 * and route helpers (spryd/http.c).  No sockets: byte buffers only.
 *
 * Requests are fed whole, at every two-piece split point and byte by
 * byte; each way must give the same result.  A table of malformed and
 * hostile requests checks the status of each (fed whole and byte by byte)
 * and that the connection then reports close.  Random mutations of valid
 * requests must give the same result whole and byte by byte, and never
 * anything but a request, "more input" or an error status.
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spryd/http.h"
#include "selftests/tap.h"

/* ------------------------------------------------------------ helpers */

/* What a request parsed to: compared with memcmp, so always zeroed. */
struct result {
	int	rc;		/* SPRY_HTTP_DONE, SPRY_HTTP_AGAIN or -EPROTO */
	int	status;
	bool	saw_head;
	bool	keep_alive, chunked, has_body, expect_continue;
	bool	has_cl;
	uint64_t cl;
	int	method;
	int	minor;
	char	target[512];
	char	path[512];
	char	query[256];
	bool	has_query;
	unsigned int n_headers;
	char	headers[1024];	/* "name=value;" ... */
	size_t	body_len;
	char	body[4096];
	size_t	consumed;
};

static void snapshot(struct spry_http_conn *c, int rc, struct result *res)
{
	struct spry_http_req *r = &c->req;
	unsigned int i;
	size_t n = 0;

	res->rc = rc;
	if (rc < 0) {
		res->status = r->status;
		res->keep_alive = r->keep_alive;
		return;
	}
	if (rc != SPRY_HTTP_DONE)
		return;
	res->keep_alive = r->keep_alive;
	res->chunked = r->chunked;
	res->has_body = r->has_body;
	res->expect_continue = r->expect_continue;
	res->has_cl = r->has_content_length;
	res->cl = r->content_length;
	res->method = r->method;
	res->minor = r->http_minor;
	snprintf(res->target, sizeof(res->target), "%s", r->target);
	snprintf(res->path, sizeof(res->path), "%.*s", (int)r->path_len,
		 r->path ? r->path : "");
	if (r->query) {
		res->has_query = true;
		snprintf(res->query, sizeof(res->query), "%.*s",
			 (int)r->query_len, r->query);
	}
	res->n_headers = r->n_headers;
	for (i = 0; i < r->n_headers && n < sizeof(res->headers); i++)
		n += snprintf(res->headers + n, sizeof(res->headers) - n,
			      "%s=%s;", r->headers[i].name,
			      r->headers[i].value);
	res->body_len = r->body_len;
}

/*
 * Parse one request from in[0..len) as a reader would: bytes arrive
 * @step at a time (0: all at once); unconsumed bytes stay in the buffer.
 * Stops at DONE, an error, or when the input is used up (AGAIN).
 * *res gets the result; returns bytes consumed.
 */
static size_t run_one(struct spry_http_conn *c, const char *in, size_t len,
		      size_t step, struct result *res)
{
	size_t pos = 0, have = step ? (step < len ? step : len) : len;
	size_t used;
	int rc;

	memset(res, 0, sizeof(*res));
	for (;;) {
		rc = spry_http_feed(c, in + pos, have - pos, &used);
		if (used > have - pos) {
			res->rc = -ERANGE;	/* consumed more than given */
			return pos;
		}
		pos += used;
		if (rc == SPRY_HTTP_HEAD) {
			res->saw_head = true;
			if (spry_http_set_body(c, res->body,
					       sizeof(res->body)))
				res->rc = -EFAULT;
			continue;
		}
		if (rc != SPRY_HTTP_AGAIN || have == len)
			break;
		have += step ? step : len;
		if (have > len)
			have = len;
	}
	snapshot(c, rc, res);
	res->consumed = pos;
	return pos;
}

static struct spry_http_limits small_limits = {
	.max_line = 64,
	.max_header_bytes = 256,
	.max_headers = 4,
	.max_body = 16,
};

static int parse_whole(const char *in, size_t len, bool small,
		       struct result *res)
{
	struct spry_http_conn *c = malloc(sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	err = spry_http_conn_init(c, small ? &small_limits : NULL);
	if (!err)
		run_one(c, in, len, 0, res);
	free(c);
	return err;
}

/* The same input whole, byte by byte and at every two-piece split. */
static bool split_invariant(const char *in, size_t len, bool small,
			    struct result *ref)
{
	struct spry_http_conn *c = malloc(sizeof(*c));
	struct result *r = malloc(sizeof(*r));
	bool same = true;
	size_t k;

	if (!c || !r || parse_whole(in, len, small, ref)) {
		same = false;
		goto out;
	}
	if (spry_http_conn_init(c, small ? &small_limits : NULL)) {
		same = false;
		goto out;
	}
	run_one(c, in, len, 1, r);
	if (memcmp(r, ref, sizeof(*r))) {
		tap_diag("byte by byte: rc %d status %d (whole: rc %d status %d)",
			 r->rc, r->status, ref->rc, ref->status);
		same = false;
	}
	for (k = 1; same && k < len; k++) {
		spry_http_conn_init(c, small ? &small_limits : NULL);
		run_one(c, in, len, k, r);
		if (memcmp(r, ref, sizeof(*r))) {
			tap_diag("split %zu: rc %d status %d (whole: rc %d status %d)",
				 k, r->rc, r->status, ref->rc, ref->status);
			same = false;
		}
	}
out:
	free(c);
	free(r);
	return same;
}

#define S(lit)	lit, sizeof(lit) - 1

/* ------------------------------------------------------ well-formed */

static void test_simple(struct spry_http_conn *c)
{
	static const char get[] =
		"GET /echo/a?x=1&y=2 HTTP/1.1\r\nHost: example\r\n"
		"Accept: text/plain\r\nUser-Agent: t\r\n\r\n";
	const struct spry_http_header *h;
	struct result r;

	spry_http_conn_init(c, NULL);
	run_one(c, get, sizeof(get) - 1, 0, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && r.consumed == sizeof(get) - 1 &&
	       r.method == HTTP_GET && !strcmp(c->req.method_str, "GET") &&
	       r.minor == 1 && r.keep_alive && !r.has_body && !r.saw_head,
	       "simple GET: DONE, all consumed, 1.1, keep-alive, no body");
	tap_ok(!strcmp(r.target, "/echo/a?x=1&y=2") &&
	       !strcmp(r.path, "/echo/a") && r.has_query &&
	       !strcmp(r.query, "x=1&y=2"),
	       "target, path and query split");
	h = spry_http_req_header(&c->req, "HOST");
	tap_ok(h && !strcmp(h->value, "example") && h->value_len == 7 &&
	       r.n_headers == 2 &&
	       !strcmp(r.headers, "host=example;accept=text/plain;") &&
	       !spry_http_req_header(&c->req, "user-agent"),
	       "host and accept kept, user-agent dropped");
	tap_ok(!spry_http_in_request(c), "no request in progress after DONE");
}

static void test_post(struct spry_http_conn *c)
{
	static const char post[] =
		"POST /up HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
		"Content-Length: 11\r\nX-Request-Id: r1\r\n"
		"X-Spry-Trace:  on \t\r\n\r\nhello world";
	char body[64];
	size_t used, off;
	int rc;

	spry_http_conn_init(c, NULL);
	rc = spry_http_feed(c, post, sizeof(post) - 1, &used);
	tap_ok(rc == SPRY_HTTP_HEAD && used == sizeof(post) - 1 - 11 &&
	       c->req.has_content_length && c->req.content_length == 11 &&
	       c->req.has_body && !c->req.chunked && !c->req.expect_continue &&
	       spry_http_in_request(c),
	       "POST: HEAD at end of headers, Content-Length known");
	tap_ok(spry_http_set_body(c, body, sizeof(body)) == 0,
	       "set_body at HEAD");
	off = used;
	rc = spry_http_feed(c, post + off, sizeof(post) - 1 - off, &used);
	tap_ok(rc == SPRY_HTTP_DONE && used == 11 && c->req.body_len == 11 &&
	       !memcmp(body, "hello world", 11),
	       "POST body written to the sink, DONE");
	tap_ok(!strcmp(spry_http_req_header(&c->req, "x-spry-trace")->value,
		       "on") &&
	       !strcmp(spry_http_req_header(&c->req, "x-request-id")->value,
		       "r1") &&
	       spry_http_set_body(c, body, sizeof(body)) == -EINVAL,
	       "x-spry-* and x-request-id kept (OWS trimmed); set_body after DONE is -EINVAL");
}

/*
 * spry_http_body_room: where the rest of a Content-Length body goes; bytes
 * received there are fed from there and parsed without a second copy.
 */
static void test_body_room(struct spry_http_conn *c)
{
	static const char head[] =
		"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n0123456789";
	static const char rest[] = "abcdefghijklmnopqrstuvwxyz0123";	/* 30 */
	static const char chunked[] =
		"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char big[] =
		"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n";
	char body[64], *dst = NULL;
	size_t used;
	int rc;

	spry_http_conn_init(c, NULL);
	rc = spry_http_feed(c, head, sizeof(head) - 1, &used);
	ASSERT_EQ(rc, SPRY_HTTP_HEAD);
	ASSERT_EQ(spry_http_body_room(c, &dst), 0, "no sink yet: nothing to receive into");
	ASSERT_EQ(spry_http_set_body(c, body, sizeof(body)), 0);
	ASSERT_EQ(spry_http_body_room(c, &dst), 40, "at HEAD: the whole body to come");
	ASSERT_TRUE(dst == body);
	rc = spry_http_feed(c, head + used, sizeof(head) - 1 - used, &used);
	ASSERT_EQ(rc, SPRY_HTTP_AGAIN);
	ASSERT_EQ(spry_http_body_room(c, &dst), 30, "10 bytes fed: 30 to come");
	ASSERT_TRUE(dst == body + 10);
	/* received straight into the sink, then fed from there */
	memcpy(dst, rest, 30);
	rc = spry_http_feed(c, dst, 30, &used);
	ASSERT_EQ(rc, SPRY_HTTP_DONE);
	ASSERT_EQ(used, 30);
	ASSERT_EQ(c->req.body_len, 40);
	ASSERT_MEMEQ(body, "0123456789abcdefghijklmnopqrstuvwxyz0123", 40);
	ASSERT_EQ(spry_http_body_room(c, &dst), 0, "after DONE: none");

	/* the head alone, then the whole body received into the sink at HEAD */
	spry_http_conn_init(c, NULL);
	rc = spry_http_feed(c, head, sizeof(head) - 1 - 10, &used);
	ASSERT_EQ(rc, SPRY_HTTP_HEAD);
	ASSERT_EQ(spry_http_set_body(c, body, sizeof(body)), 0);
	ASSERT_EQ(spry_http_body_room(c, &dst), 40);
	ASSERT_TRUE(dst == body);
	memcpy(dst, "0123456789", 10);
	memcpy(dst + 10, rest, 30);
	rc = spry_http_feed(c, dst, 40, &used);
	ASSERT_EQ(rc, SPRY_HTTP_DONE);
	ASSERT_EQ(used, 40);
	ASSERT_MEMEQ(body, "0123456789abcdefghijklmnopqrstuvwxyz0123", 40);

	spry_http_conn_init(c, NULL);
	ASSERT_EQ(spry_http_feed(c, chunked, sizeof(chunked) - 1, &used), SPRY_HTTP_HEAD);
	ASSERT_EQ(spry_http_set_body(c, body, sizeof(body)), 0);
	ASSERT_EQ(spry_http_body_room(c, &dst), 0, "chunked: framing bytes in the stream");

	/* larger than the sink: fed as usual, so that it is refused 413 */
	spry_http_conn_init(c, NULL);
	ASSERT_EQ(spry_http_feed(c, big, sizeof(big) - 1, &used), SPRY_HTTP_HEAD);
	ASSERT_EQ(spry_http_set_body(c, body, sizeof(body)), 0);
	ASSERT_EQ(spry_http_body_room(c, &dst), 0, "100 bytes to a 64-byte sink: none");
	ASSERT_EQ(spry_http_body_room(NULL, &dst), 0);
	ASSERT_EQ(spry_http_body_room(c, NULL), 0);
}

static const char chunked_req[] =
	"POST /chain/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	"Content-Type: application/octet-stream\r\n\r\n"
	"7;name=value\r\nHello, \r\n"
	"A\r\nchunked wo\r\n"
	"3;a=\"q\";b\r\nrld\r\n"
	"0\r\nX-Trailer: t\r\nX-Spry-Late: no\r\n\r\n";

static void test_chunked(void)
{
	struct result ref;
	bool inv;

	inv = split_invariant(S(chunked_req), false, &ref);
	tap_ok(ref.rc == SPRY_HTTP_DONE && ref.chunked && ref.saw_head &&
	       !ref.has_cl && ref.body_len == 20 &&
	       !memcmp(ref.body, "Hello, chunked world", 20) &&
	       ref.consumed == sizeof(chunked_req) - 1,
	       "chunked POST: extensions skipped, 3 chunks decoded");
	tap_ok(ref.n_headers == 2 &&
	       !strcmp(ref.headers, "host=h;content-type=application/octet-stream;"),
	       "trailers dropped (x-spry-* in a trailer is not kept)");
	tap_ok(inv, "chunked POST: same result at every split point and byte by byte");
}

static void test_keepalive(struct spry_http_conn *c)
{
	struct result r;
	size_t used;

	spry_http_conn_init(c, NULL);
	run_one(c, S("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
		0, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && !r.keep_alive,
	       "HTTP/1.1 Connection: close -> close");
	tap_ok(spry_http_feed(c, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
			      &used) == -EPIPE && used == 0,
	       "after a close request nothing more is parsed (-EPIPE)");

	parse_whole(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"),
		    false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && r.keep_alive,
	       "HTTP/1.1 Connection: keep-alive -> keep-alive");
	parse_whole(S("GET / HTTP/1.0\r\n\r\n"), false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && !r.keep_alive && r.minor == 0,
	       "HTTP/1.0 (no Host needed) -> close by default");
	parse_whole(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
		    false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && r.keep_alive,
	       "HTTP/1.0 Connection: keep-alive -> keep-alive");
}

static void test_pipeline(struct spry_http_conn *c)
{
#define P1 "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
#define P2 "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
#define P3 "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" \
	   "2\r\nok\r\n0\r\n\r\n"
#define P4 "GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
	static const char in[] = P1 P2 P3 P4 "GET /e HTTP/1.1\r\nHost: h\r\n\r\n";
	static const char *const paths[] = { "/a", "/b", "/c", "/d" };
	static const size_t lens[] = {
		sizeof(P1) - 1, sizeof(P2) - 1, sizeof(P3) - 1, sizeof(P4) - 1 };
	struct result r;
	size_t pos = 0, n;
	bool in_order = true;
	unsigned int i;

	spry_http_conn_init(c, NULL);
	for (i = 0; i < 4; i++) {
		n = run_one(c, in + pos, sizeof(in) - 1 - pos, 0, &r);
		if (r.rc != SPRY_HTTP_DONE || strcmp(r.path, paths[i]) ||
		    n != lens[i]) {
			tap_diag("request %u: rc %d path %s consumed %zu",
				 i, r.rc, r.path, n);
			in_order = false;
		}
		if (i == 1 && (r.body_len != 3 || memcmp(r.body, "xyz", 3)))
			in_order = false;
		if (i == 2 && (r.body_len != 2 || memcmp(r.body, "ok", 2)))
			in_order = false;
		pos += n;
	}
	tap_ok(in_order, "4 pipelined requests: one DONE each, in order, exact lengths");
	tap_ok(spry_http_feed(c, in + pos, sizeof(in) - 1 - pos, &n) == -EPIPE &&
	       n == 0, "request after the Connection: close one is not parsed");

	/* 10000 requests through one connection: fixed memory */
	{
		static const char one[] =
			"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd";
		struct mallinfo2 before, after;
		char body[8];
		bool all = true;
		size_t used;
		int k, rc;

		spry_http_conn_init(c, NULL);
		before = mallinfo2();
		for (k = 0; k < 10000 && all; k++) {
			rc = spry_http_feed(c, S(one) - 4, &used);
			all = rc == SPRY_HTTP_HEAD &&
			      !spry_http_set_body(c, body, sizeof(body));
			rc = spry_http_feed(c, one + sizeof(one) - 5, 4, &used);
			all = all && rc == SPRY_HTTP_DONE && used == 4 &&
			      !memcmp(body, "abcd", 4);
		}
		after = mallinfo2();
		tap_ok(all && after.uordblks == before.uordblks,
		       "10000 requests on one conn, heap in use unchanged (%zu -> %zu)",
		       before.uordblks, after.uordblks);
	}
}

static void test_splits(void)
{
	static const char req[] =
		"\r\nPOST /s/t?q=1 HTTP/1.1\r\nHost: h:80\r\n"
		"Content-Length: 5\r\nX-Spry-A: b\r\nExpect: 100-continue\r\n"
		"Accept: */*\r\n\r\nabcde";
	struct result ref;
	bool inv;

	inv = split_invariant(S(req), false, &ref);
	tap_ok(ref.rc == SPRY_HTTP_DONE && ref.body_len == 5 &&
	       !memcmp(ref.body, "abcde", 5) && ref.expect_continue &&
	       !strcmp(ref.headers,
		       "host=h:80;content-length=5;x-spry-a=b;expect=100-continue;accept=*/*;"),
	       "sample POST (leading CRLF) parsed");
	tap_ok(inv, "sample POST: same result at every split point and byte by byte");
}

static void test_expect(struct spry_http_conn *c)
{
	struct result r;
	size_t used;
	int rc;

	spry_http_conn_init(c, NULL);
	rc = spry_http_feed(c, S("PUT /x HTTP/1.1\r\nHost: h\r\n"
				 "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\n"),
			    &used);
	tap_ok(rc == SPRY_HTTP_HEAD && c->req.expect_continue &&
	       c->req.method == HTTP_PUT,
	       "Expect: 100-continue raised at HEAD (case-insensitive)");
	parse_whole(S("GET /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"),
		    false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && !r.expect_continue,
	       "Expect: 100-continue without a body: no 100");
	parse_whole(S("POST /x HTTP/1.0\r\nExpect: 100-continue\r\n"
		      "Content-Length: 1\r\n\r\nz"), false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && !r.expect_continue && r.body_len == 1,
	       "Expect in HTTP/1.0 ignored");
}

static void test_misc(struct spry_http_conn *c)
{
	struct result r;
	char small[4];
	size_t used;
	int rc;

	parse_whole(S("HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n"), false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && r.method == HTTP_HEAD && !r.has_body,
	       "HEAD request");
	parse_whole(S("GET http://example.com/abs/p?k=v HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		    false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && !strcmp(r.path, "/abs/p") &&
	       !strcmp(r.query, "k=v"), "absolute-form target: path and query");
	parse_whole(S("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n\r\nab"),
		    false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && r.method == HTTP_CONNECT &&
	       r.body_len == 2 && r.path[0] == 0,
	       "CONNECT parsed as an ordinary request (body read, no tunnel)");
	parse_whole(S("GET /u HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n"
		      "Connection: Upgrade\r\n\r\n"), false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE, "Upgrade ignored");
	parse_whole(S("GET /lf HTTP/1.1\nHost: h\nX-Spry-K: v\n\n"), false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && !strcmp(r.path, "/lf") &&
	       !strcmp(r.headers, "host=h;x-spry-k=v;"),
	       "LF-only line ends in the header section accepted");
	parse_whole(S("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
		    false, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE && r.has_cl && r.cl == 0 && !r.has_body &&
	       !r.saw_head, "Content-Length: 0: DONE without HEAD");

	/* the sink bounds the body too */
	spry_http_conn_init(c, NULL);
	rc = spry_http_feed(c, S("POST /x HTTP/1.1\r\nHost: h\r\n"
				 "Content-Length: 5\r\n\r\n"), &used);
	spry_http_set_body(c, small, sizeof(small));
	rc = spry_http_feed(c, S("12345"), &used);
	tap_ok(rc == -EPROTO && c->req.status == 413 && !c->req.keep_alive,
	       "body over the sink capacity: 413");
	/* no sink: body counted and dropped */
	spry_http_conn_init(c, NULL);
	rc = spry_http_feed(c, S("POST /x HTTP/1.1\r\nHost: h\r\n"
				 "Content-Length: 5\r\n\r\n12345"), &used);
	rc = spry_http_feed(c, S("12345"), &used);
	tap_ok(rc == SPRY_HTTP_DONE && c->req.body_len == 5 && used == 5,
	       "no sink: body counted and dropped");

	/* incomplete request */
	spry_http_conn_init(c, NULL);
	tap_ok(!spry_http_in_request(c) &&
	       spry_http_feed(c, S("GET / HTTP/1.1\r\nHo"), &used) ==
	       SPRY_HTTP_AGAIN && used == 18 && spry_http_in_request(c),
	       "partial request: AGAIN, all consumed, in_request");
	tap_ok(spry_http_feed(NULL, "x", 1, &used) == -EINVAL &&
	       spry_http_feed(c, NULL, 1, &used) == -EINVAL &&
	       spry_http_set_body(c, small, 1) == -EINVAL,
	       "NULL arguments and set_body outside HEAD: -EINVAL");
	{
		struct spry_http_limits l;

		spry_http_limits_default(&l);
		l.max_line = SPRY_HTTP_LINE_MAX + 1;
		tap_ok(spry_http_conn_init(c, &l) == -EINVAL &&
		       l.max_header_bytes == 16384 && l.max_headers == 64 &&
		       l.max_body == 1 << 20,
		       "defaults; max_line over the cap is -EINVAL");
	}
	tap_ok(sizeof(struct spry_http_conn) < 16384,
	       "struct spry_http_conn is %zu bytes (fixed, no heap)",
	       sizeof(struct spry_http_conn));
}

/* ------------------------------------------------- malformed, hostile */

struct bad {
	const char	*name;
	const char	*raw;
	size_t		len;
	int		status;
	bool		small;
};

#define BAD(n, r, s)	{ n, r, sizeof(r) - 1, s, false }
#define BADS(n, r, s)	{ n, r, sizeof(r) - 1, s, true }
#define H11		"Host: h\r\n"

static const struct bad bad_table[] = {
	BAD("missing version", "GET / \r\n" H11 "\r\n", 400),
	BAD("no version (HTTP/0.9 form)", "GET /\r\n" H11 "\r\n", 400),
	BAD("lowercase method", "get / HTTP/1.1\r\n" H11 "\r\n", 400),
	BAD("unknown method", "FROB / HTTP/1.1\r\n" H11 "\r\n", 400),
	BAD("garbage line", "\x01\x02 garbage\r\n\r\n", 400),
	BAD("lowercase version", "GET / http/1.1\r\n" H11 "\r\n", 400),
	BAD("junk after version", "GET / HTTP/1.1 x\r\n" H11 "\r\n", 400),
	BAD("CR-only line ends", "GET / HTTP/1.1\rHost: h\r\r", 400),
	BAD("NUL in target", "GET /a\0b HTTP/1.1\r\n" H11 "\r\n", 400),
	BAD("TAB in target", "GET /a\tb HTTP/1.1\r\n" H11 "\r\n", 400),
	BAD("non-ASCII in target", "GET /\xff HTTP/1.1\r\n" H11 "\r\n", 400),
	BAD("NUL in header value", "GET / HTTP/1.1\r\n" H11 "X: a\0b\r\n\r\n", 400),
	BAD("bare CR in header value", "GET / HTTP/1.1\r\n" H11 "X: a\rb\r\n\r\n", 400),
	BAD("control byte in value", "GET / HTTP/1.1\r\n" H11 "X: a\x01\r\n\r\n", 400),
	BAD("DEL in value", "GET / HTTP/1.1\r\n" H11 "X: a\x7f\r\n\r\n", 400),
	BAD("obs-fold", "GET / HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n", 400),
	BAD("obs-fold (tab)", "GET / HTTP/1.1\r\n" H11 "X: a\r\n\tb\r\n\r\n", 400),
	BAD("space before colon", "GET / HTTP/1.1\r\n" H11 "X : a\r\n\r\n", 400),
	BAD("tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400),
	BAD("field line without colon", "GET / HTTP/1.1\r\n" H11 "Xa\r\n\r\n", 400),
	BAD("empty field name", "GET / HTTP/1.1\r\n" H11 ": a\r\n\r\n", 400),
	BAD("whitespace before first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400),
	BAD("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
	BAD("duplicate Host", "GET / HTTP/1.1\r\n" H11 H11 "\r\n", 400),
	BAD("duplicate Content-Type", "GET / HTTP/1.1\r\n" H11
	    "Content-Type: a\r\ncontent-type: a\r\n\r\n", 400),
	BAD("duplicate equal Content-Length", "POST / HTTP/1.1\r\n" H11
	    "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
	BAD("negative Content-Length", "POST / HTTP/1.1\r\n" H11
	    "Content-Length: -1\r\n\r\n", 400),
	BAD("overflowing Content-Length", "POST / HTTP/1.1\r\n" H11
	    "Content-Length: 99999999999999999999999\r\n\r\n", 400),
	BAD("non-numeric Content-Length", "POST / HTTP/1.1\r\n" H11
	    "Content-Length: abc\r\n\r\n", 400),
	BAD("empty Content-Length", "POST / HTTP/1.1\r\n" H11
	    "Content-Length:\r\n\r\n", 400),
	BAD("Content-Length list", "POST / HTTP/1.1\r\n" H11
	    "Content-Length: 1, 1\r\n\r\nx", 400),
	BAD("Content-Length and chunked", "POST / HTTP/1.1\r\n" H11
	    "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
	BAD("chunked and Content-Length", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
	BAD("duplicate Transfer-Encoding", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
	BAD("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
	BAD("Transfer-Encoding: gzip", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: gzip\r\n\r\n", 501),
	BAD("Transfer-Encoding: gzip, chunked", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
	BAD("non-hex chunk size", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
	BAD("64-bit overflowing chunk size", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400),
	BAD("chunk data without CRLF", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n", 400),
	BAD("chunk size line with bare LF", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
	BAD("LF inside chunk extension", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", 400),
	BAD("NUL in chunk extension", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\n\r\n5;a\0\r\nhello\r\n0\r\n\r\n", 400),
	BAD("obs-fold in a trailer", "POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400),
	BAD("HTTP/2.0", "GET / HTTP/2.0\r\n" H11 "\r\n", 505),
	BAD("HTTP/1.2", "GET / HTTP/1.2\r\n" H11 "\r\n", 505),
	BAD("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 400),
	BAD("two-digit version", "GET / HTTP/1.10\r\n" H11 "\r\n", 400),
	BAD("Expect: other", "POST / HTTP/1.1\r\n" H11
	    "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417),
	BAD("x-spry-* name outside [a-z0-9_.-]", "GET / HTTP/1.1\r\n" H11
	    "X-Spry-A+b: 1\r\n\r\n", 400),
	BAD("too many empty lines first",
	    "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	    "GET / HTTP/1.1\r\n" H11 "\r\n", 400),
	BADS("target over max_line",
	     "GET /0123456789012345678901234567890123456789012345678901234567890123 HTTP/1.1\r\n"
	     H11 "\r\n", 414),
	BADS("headers over max_header_bytes", "GET / HTTP/1.1\r\n" H11
	     "X-A: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	     "X-B: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	     "X-C: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	     "\r\n", 431),
	BADS("more than max_headers", "GET / HTTP/1.1\r\n" H11
	     "A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", 431),
	BADS("trailers over max_headers", "POST / HTTP/1.1\r\n" H11
	     "Transfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 1\r\nC: 1\r\n\r\n", 431),
	BADS("Content-Length over max_body", "POST / HTTP/1.1\r\n" H11
	     "Content-Length: 17\r\n\r\n", 413),
	BADS("chunked body over max_body", "POST / HTTP/1.1\r\n" H11
	     "Transfer-Encoding: chunked\r\n\r\n"
	     "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", 413),
};

static void test_bad_table(void)
{
	struct spry_http_conn *c = malloc(sizeof(*c));
	struct result whole, bytes;
	size_t i, used;

	for (i = 0; i < sizeof(bad_table) / sizeof(bad_table[0]); i++) {
		const struct bad *b = &bad_table[i];
		const struct spry_http_limits *lim =
			b->small ? &small_limits : NULL;
		bool sticky;

		spry_http_conn_init(c, lim);
		run_one(c, b->raw, b->len, 1, &bytes);
		spry_http_conn_init(c, lim);
		run_one(c, b->raw, b->len, 0, &whole);
		sticky = spry_http_feed(c, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
					&used) == -EPROTO && used == 0 &&
			 !spry_http_in_request(c);
		if (!tap_ok(whole.rc == -EPROTO && whole.status == b->status &&
			    bytes.rc == -EPROTO && bytes.status == b->status &&
			    !whole.keep_alive && !bytes.keep_alive && sticky,
			    "%s -> %d, then close", b->name, b->status))
			tap_diag("whole rc %d status %d, byte by byte rc %d status %d",
				 whole.rc, whole.status, bytes.rc, bytes.status);
	}
	free(c);
}

/* Long hostile inputs built at run time. */

/* @head, @n bytes of @fill, then @tail, in @buf; returns the length. */
static int padded(char *buf, size_t cap, const char *head, char fill, size_t n,
		  const char *tail)
{
	int len = snprintf(buf, cap, "%s", head);

	memset(buf + len, fill, n);
	len += (int)n;
	return len + snprintf(buf + len, cap - (size_t)len, "%s", tail);
}
static void test_hostile(void)
{
	static char buf[1 << 17];
	struct result r;
	size_t n;

	n = padded(buf, sizeof(buf), "GET /", 'a', 9000, " HTTP/1.1\r\nHost: h\r\n\r\n");
	parse_whole(buf, n, false, &r);
	tap_ok(r.rc == -EPROTO && r.status == 414 && r.consumed <= 8192,
	       "9000-byte target with default limits -> 414");

	n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX: ");
	memset(buf + n, 'v', 100000);
	n += 100000;
	parse_whole(buf, n, false, &r);
	tap_ok(r.rc == -EPROTO && r.status == 431 && r.consumed <= 26 + 16384,
	       "endless header value -> 431 within max_header_bytes");

	n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
	while (n + 8 < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - n, "A: b\r\n");
	parse_whole(buf, n, false, &r);
	tap_ok(r.rc == -EPROTO && r.status == 431,
	       "thousands of small headers -> 431");

	n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n1;");
	memset(buf + n, 'e', 5000);
	n += 5000;
	parse_whole(buf, n, false, &r);
	tap_ok(r.rc == -EPROTO && r.status == 400,
	       "endless chunk extension -> 400");

	n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n");
	while (n + 16 < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - n, "4\r\nabcd\r\n");
	parse_whole(buf, n, false, &r);
	tap_ok(r.rc == -EPROTO && r.status == 413 &&
	       r.consumed < 80 + (sizeof(r.body) / 4 + 1) * 9,
	       "endless small chunks into a 4 KiB sink -> 413");

	n = 0;
	while (n + 2 < sizeof(buf)) {
		buf[n++] = '\r';
		buf[n++] = '\n';
	}
	parse_whole(buf, n, false, &r);
	tap_ok(r.rc == -EPROTO && r.status == 400,
	       "endless empty lines -> 400");
}

/*
 * Runs of plain bytes are screened in one go; the byte at a limit, and
 * line ends other than CRLF, byte by byte.  Inputs that end exactly at a
 * limit and one byte over it must give the same result at every split.
 */
static void test_limit_edges(void)
{
	static char buf[2048];
	struct result r0, r1;
	bool inv0, inv1;
	size_t n, i;

	/* request line of max_line (64) bytes: 5 + 50 + 9 */
	n = padded(buf, sizeof(buf), "GET /", 'a', 50, " HTTP/1.1\r\nHost: h\r\n\r\n");
	inv0 = split_invariant(buf, n, true, &r0);
	memmove(buf + 6, buf + 5, n - 5);
	inv1 = split_invariant(buf, n + 1, true, &r1);
	tap_ok(inv0 && r0.rc == SPRY_HTTP_DONE && inv1 && r1.rc == -EPROTO &&
	       r1.status == 414 && r1.consumed == 64,
	       "request line of max_line bytes: DONE, one more: 414, at every split");

	/*
	 * header section of max_header_bytes (256), CRLF (9 + 5 + 238 + 2 + 2)
	 * and LF (8 + 5 + 241 + 1 + 1) line ends; then one 'v' more
	 */
	for (i = 0; i < 2; i++) {
		static const struct {
			const char *head, *tail, *what;
			size_t fill, eol, line1;
		} hl[] = {
			{ "GET / HTTP/1.1\r\nHost: h\r\nX-V: ", "\r\n\r\n", "CRLF", 238, 2, 16 },
			{ "GET / HTTP/1.1\nHost: h\nX-V: ", "\n\n", "LF", 241, 1, 15 },
		};
		size_t at;

		n = padded(buf, sizeof(buf), hl[i].head, 'v', hl[i].fill, hl[i].tail);
		inv0 = split_invariant(buf, n, true, &r0);
		at = n - 2 * hl[i].eol;
		memmove(buf + at + 1, buf + at, n - at);
		buf[at] = 'v';
		inv1 = split_invariant(buf, n + 1, true, &r1);
		tap_ok(inv0 && r0.rc == SPRY_HTTP_DONE && inv1 && r1.rc == -EPROTO &&
		       r1.status == 431 && r1.consumed == hl[i].line1 + 256,
		       "header section of max_header_bytes (%s): DONE, one more: 431, at every split",
		       hl[i].what);
	}

	/* a field line starting right at the limit: 9 + 5 + 240 + 2 */
	n = padded(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX-V: ", 'v', 240, "\r\nY: z\r\n\r\n");
	inv1 = split_invariant(buf, n, true, &r1);
	tap_ok(inv1 && r1.rc == -EPROTO && r1.status == 431 &&
	       r1.consumed == 16 + 256,
	       "a field line starting at max_header_bytes: 431 at its first byte, at every split");

	/* a field name: 9 + 242 + 1 + 2 + 2 fits; 9 + 247 leaves no room for ':' */
	n = padded(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n", 'N', 242, ":\r\n\r\n");
	inv0 = split_invariant(buf, n, true, &r0);
	n = padded(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n", 'N', 247, ":\r\n\r\n");
	inv1 = split_invariant(buf, n, true, &r1);
	tap_ok(inv0 && r0.rc == SPRY_HTTP_DONE && inv1 && r1.rc == -EPROTO &&
	       r1.status == 431 && r1.consumed == 16 + 256,
	       "field name up to max_header_bytes: DONE; ':' over it: 431, at every split");

	/* chunk-size line of SPRY_HTTP_CHUNK_LINE_MAX bytes, CR included */
	n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n5;");
	memset(buf + n, 'e', SPRY_HTTP_CHUNK_LINE_MAX - 3);
	n += SPRY_HTTP_CHUNK_LINE_MAX - 3;
	n += snprintf(buf + n, sizeof(buf) - n, "\r\nhello\r\n0\r\n\r\n");
	inv0 = split_invariant(buf, n, false, &r0);
	memmove(buf + n - 17, buf + n - 18, 18);
	buf[n - 18] = 'e';
	inv1 = split_invariant(buf, n + 1, false, &r1);
	tap_ok(inv0 && r0.rc == SPRY_HTTP_DONE && r0.body_len == 5 &&
	       inv1 && r1.rc == -EPROTO && r1.status == 400 &&
	       r1.consumed == 56 + SPRY_HTTP_CHUNK_LINE_MAX,
	       "chunk-size line of the maximum length: DONE, one more: 400, at every split");
}

/* Long runs at the default limits, in reads of many sizes. */
static void test_long_runs(void)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64, 1000, 4093, 8191 };
	static char buf[32768];
	struct spry_http_conn *c = malloc(sizeof(*c));
	struct result *ref = malloc(sizeof(*ref)), *r = malloc(sizeof(*r));
	bool same[2] = { true, true }, ok[2];
	size_t n, k;
	int t;

	if (!c || !ref || !r)
		exit(KSFT_FAIL);
	for (t = 0; t < 2; t++) {
		if (!t) {
			/* request line of 8192 bytes: 5 + 8178 + 9 */
			n = snprintf(buf, sizeof(buf), "GET /");
			memset(buf + n, 'a', 8178);
			n += 8178;
			n += snprintf(buf + n, sizeof(buf) - n,
				      " HTTP/1.1\r\nHost: h\r\n\r\n");
		} else {
			/* header section of 16384 bytes: 9 + 5 + 16366 + 2 + 2
			 * (a dropped field: a kept one would not fit the scratch) */
			n = snprintf(buf, sizeof(buf),
				     "GET / HTTP/1.1\r\nHost: h\r\nX-V: ");
			memset(buf + n, 'v', 16366);
			n += 16366;
			n += snprintf(buf + n, sizeof(buf) - n, "\r\n\r\n");
		}
		spry_http_conn_init(c, NULL);
		run_one(c, buf, n, 0, ref);
		ok[t] = ref->rc == SPRY_HTTP_DONE && ref->consumed == n;
		for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			spry_http_conn_init(c, NULL);
			run_one(c, buf, n, steps[k], r);
			if (memcmp(r, ref, sizeof(*r))) {
				tap_diag("reads of %zu: rc %d status %d", steps[k],
					 r->rc, r->status);
				same[t] = false;
			}
		}
	}
	tap_ok(ok[0] && same[0],
	       "8 KiB request line (max_line): DONE, the same in reads of 1..8191 bytes");
	tap_ok(ok[1] && same[1],
	       "16 KiB header section (max_header_bytes): DONE, the same in reads of 1..8191 bytes");
	free(c);
	free(ref);
	free(r);
}

/* xorshift: reproducible */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static bool status_known(int s)
{
	return s == 400 || s == 413 || s == 414 || s == 417 || s == 431 ||
	       s == 501 || s == 505;
}

static void test_mutations(void)
{
	static const char *const seeds[] = {
		"POST /c/x?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
		"X-Spry-A: b\r\n\r\nabcde",
		chunked_req,
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	};
	struct spry_http_conn *c = malloc(sizeof(*c));
	struct result *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char buf[512];
	int i, k, same = 0, sane = 0, errors = 0;
	const int rounds = 3000;

	for (i = 0; i < rounds; i++) {
		const char *s = seeds[i % 3];
		size_t len = strlen(s), step;

		memcpy(buf, s, len);
		for (k = 0; k < 1 + (int)(rnd() % 3); k++) {
			static const char pick[] = "\r\n \t:;0\x00\x7f\xff-aZ9";

			buf[rnd() % len] = rnd() % 2 ? (char)rnd() :
					   pick[rnd() % (sizeof(pick) - 1)];
		}
		spry_http_conn_init(c, NULL);
		run_one(c, buf, len, 0, a);
		spry_http_conn_init(c, NULL);
		step = 1 + rnd() % 7;
		run_one(c, buf, len, step, b);
		if (!memcmp(a, b, sizeof(*a)))
			same++;
		else
			tap_diag("mutation %d (step %zu): rc %d/%d status %d/%d",
				 i, step, a->rc, b->rc, a->status, b->status);
		if ((a->rc == SPRY_HTTP_DONE || a->rc == SPRY_HTTP_AGAIN ||
		     (a->rc == -EPROTO && status_known(a->status) &&
		      !a->keep_alive)) && a->consumed <= len)
			sane++;
		errors += a->rc == -EPROTO;
	}
	tap_ok(same == rounds,
	       "%d random mutations: same result whole and in random pieces (%d)",
	       rounds, same);
	tap_ok(sane == rounds && errors > rounds / 4,
	       "mutations end in DONE, AGAIN or a known status with close (%d errors)",
	       errors);
	free(c);
	free(a);
	free(b);
}

/* ---------------------------------------------------------- responses */

static void test_response(void)
{
	static const char exp1[] =
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		"Content-Length: 5\r\nConnection: keep-alive\r\n\r\n";
	static const char exp2[] =
		"HTTP/1.1 503 Service Unavailable\r\n"
		"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
		"Content-Length: 0\r\nConnection: close\r\n"
		"Retry-After: 1\r\n\r\n";
	static const char exp3[] =
		"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n";
	struct spry_http_resp r = {
		.status = 503, .date = 784111777, .extra = "Retry-After: 1\r\n",
	};
	char out[256];
	size_t w, cap;
	bool nospc = true;
	int err;

	err = spry_http_response(out, sizeof(out), 200, "text/plain", 5, true, &w);
	tap_ok(!err && w == sizeof(exp1) - 1 && !memcmp(out, exp1, w),
	       "200 response head, exact bytes");
	err = spry_http_response_ex(out, sizeof(out), &r, &w);
	tap_ok(!err && w == sizeof(exp2) - 1 && !memcmp(out, exp2, w),
	       "503 with Date and Retry-After, close, exact bytes");
	err = spry_http_response(out, sizeof(out), 204, NULL, 0, true, &w);
	tap_ok(!err && w == sizeof(exp3) - 1 && !memcmp(out, exp3, w),
	       "204 without Content-Length");
	for (cap = 0; cap < sizeof(exp2) - 1; cap++) {
		err = spry_http_response_ex(out, cap, &r, &w);
		if (err != -ENOSPC || w != 0)
			nospc = false;
	}
	err = spry_http_response_ex(out, sizeof(exp2) - 1, &r, &w);
	tap_ok(nospc && !err && w == sizeof(exp2) - 1,
	       "every cap below the length is -ENOSPC; the exact length fits");
	tap_ok(spry_http_response(out, sizeof(out), 99, NULL, 0, true, &w) == -EINVAL &&
	       spry_http_response(out, sizeof(out), 600, NULL, 0, true, &w) == -EINVAL &&
	       spry_http_response(out, sizeof(out), 200, "a\r\nX: y", 0, true, &w) == -EINVAL &&
	       spry_http_response(out, sizeof(out), 204, NULL, 3, true, &w) == -EINVAL,
	       "bad status, CRLF in content type, 204 with a body: -EINVAL");
	r.extra = "Retry-After: 1";
	err = spry_http_response_ex(out, sizeof(out), &r, &w);
	r.extra = "Retry-After: 1\nX: y\r\n";
	tap_ok(err == -EINVAL &&
	       spry_http_response_ex(out, sizeof(out), &r, &w) == -EINVAL,
	       "extra headers must be CRLF-terminated lines");
	tap_ok(!strcmp(spry_http_reason(413), "Content Too Large") &&
	       !strcmp(spry_http_reason(431), "Request Header Fields Too Large") &&
	       !strcmp(spry_http_reason(505), "HTTP Version Not Supported") &&
	       !strcmp(spry_http_reason(299), "Success") &&
	       !strcmp(SPRY_HTTP_CONTINUE, "HTTP/1.1 100 Continue\r\n\r\n"),
	       "reason phrases");
}

static void test_meta(struct spry_http_conn *c)
{
	static const char exp[] =
		"method: POST\npath: /m/p\nquery: a=b\n"
		"content-type: text/plain\nhost: h\nx-spry-user: u1\n";
	struct result r;
	char out[256];
	size_t n, cap;
	bool nospc = true;

	spry_http_conn_init(c, NULL);
	run_one(c, S("POST /m/p?a=b HTTP/1.1\r\nContent-Type: text/plain\r\n"
		     "Host: h\r\nX-Spry-User: u1\r\nContent-Length: 2\r\n"
		     "Expect: 100-continue\r\n\r\nhi"), 0, &r);
	tap_ok(r.rc == SPRY_HTTP_DONE &&
	       !spry_http_meta_build(&c->req, out, sizeof(out), &n) &&
	       n == sizeof(exp) - 1 && !memcmp(out, exp, n),
	       "metadata block from a request");
	for (cap = 0; cap < sizeof(exp) - 1; cap++)
		if (spry_http_meta_build(&c->req, out, cap, &n) != -ENOSPC)
			nospc = false;
	tap_ok(nospc, "metadata: every cap below the length is -ENOSPC");
	n = 0;
	tap_ok(!spry_http_meta_add(out, sizeof(out), &n, "status", "200", 3) &&
	       n == 12 && !memcmp(out, "status: 200\n", 12) &&
	       spry_http_meta_add(out, sizeof(out), &n, "k", "a\nb", 3) == -EINVAL &&
	       spry_http_meta_add(out, sizeof(out), &n, "k", "a\rb", 3) == -EINVAL &&
	       spry_http_meta_add(out, sizeof(out), &n, "Bad Key", "v", 1) == -EINVAL &&
	       spry_http_meta_add(out, sizeof(out), &n, "", "v", 1) == -EINVAL &&
	       n == 12,
	       "meta_add: appends; refuses CR/LF values and bad keys, length untouched");
	{
		char key[65];

		memset(key, 'k', 64);
		key[64] = '\0';
		n = 0;
		tap_ok(spry_http_meta_add(out, sizeof(out), &n, key, "v", 1) == -EINVAL &&
		       n == 0 && (key[63] = '\0',
				  !spry_http_meta_add(out, sizeof(out), &n, key, "v", 1)) &&
		       n == 63 + 4 && !memcmp(out + 63, ": v\n", 4) &&
		       spry_http_meta_add(out, sizeof(out), &n, "k", "a\0b", 3) == -EINVAL,
		       "meta_add: 63-byte key accepted, 64 refused; NUL in a value refused");
	}
}

/* ------------------------------------------------------------ routing */

static void test_route(void)
{
	struct spry_http_route rt;
	char long_name[40];
	int err;

	err = spry_http_route(S("/echo/a/b"), HTTP_GET, &rt);
	tap_ok(!err && rt.kind == SPRY_ROUTE_CHAIN && !strcmp(rt.chain, "echo") &&
	       rt.rest_len == 4 && !memcmp(rt.rest, "/a/b", 4) && rt.status == 0,
	       "/echo/a/b GET -> chain echo, rest /a/b");
	err = spry_http_route(S("/my_chain-1.v2"), HTTP_POST, &rt);
	tap_ok(!err && !strcmp(rt.chain, "my_chain-1.v2") && rt.rest_len == 0,
	       "/my_chain-1.v2 POST -> chain, empty rest");
	err = spry_http_route(S("/metrics"), HTTP_HEAD, &rt);
	tap_ok(!err && rt.kind == SPRY_ROUTE_METRICS &&
	       spry_http_route(S("/metrics"), HTTP_POST, &rt) == -EOPNOTSUPP &&
	       rt.status == 405 && !strcmp(rt.allow, "GET, HEAD"),
	       "/metrics: GET/HEAD, POST -> 405");
	err = spry_http_route(S("/echo"), HTTP_DELETE, &rt);
	tap_ok(err == -EOPNOTSUPP && rt.status == 405 &&
	       !strcmp(rt.allow, "GET, HEAD, POST"),
	       "DELETE on a chain -> 405 with Allow");
	memset(long_name, 'a', sizeof(long_name));
	long_name[0] = '/';
	tap_ok(spry_http_route(long_name, 32, HTTP_GET, &rt) == 0 &&
	       strlen(rt.chain) == 31 &&
	       spry_http_route(long_name, 33, HTTP_GET, &rt) == -ENOENT &&
	       rt.status == 404,
	       "31-character chain name ok, 32 -> 404");
	tap_ok(spry_http_route(S("/"), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("//x"), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("/a b"), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("/a%2fb"), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("/.."), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("/./x"), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("/metrics/x"), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("*"), HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(NULL, 0, HTTP_GET, &rt) == -ENOENT &&
	       spry_http_route(S("/x"), HTTP_GET, NULL) == -EINVAL,
	       "bad chain names, reserved metrics/, non-origin paths -> 404");
}

/* The connection state the cases that take one share (it is reset each time). */
static struct spry_http_conn *conn;

#define ON_CONN(name, fn)	static void name(void) { fn(conn); }
ON_CONN(case_simple, test_simple)
ON_CONN(case_post, test_post)
ON_CONN(case_body_room, test_body_room)
ON_CONN(case_keepalive, test_keepalive)
ON_CONN(case_pipeline, test_pipeline)
ON_CONN(case_expect, test_expect)
ON_CONN(case_misc, test_misc)
ON_CONN(case_meta, test_meta)

static const struct tap_case cases[] = {
	TAP_CASE(case_simple, "a simple GET: target, path, query, headers, keep-alive"),
	TAP_CASE(case_post, "POST: HEAD at the end of headers, body to the sink"),
	TAP_CASE(case_body_room, "the rest of a body received into the sink, fed from there"),
	TAP_CASE(test_chunked, "chunked POST: chunks decoded, trailers dropped, at every split"),
	TAP_CASE(case_keepalive, "keep-alive and close by version and Connection"),
	TAP_CASE(case_pipeline, "pipelined requests: one DONE each, in order, none after a close"),
	TAP_CASE(test_splits, "a sample POST: same result at every split point and byte by byte"),
	TAP_CASE(case_expect, "Expect: 100-continue only with a body, only in HTTP/1.1"),
	TAP_CASE(case_misc, "HEAD, absolute-form targets, CONNECT, Upgrade and other corners"),
	TAP_CASE(test_bad_table, "malformed requests: each its status, then close"),
	TAP_CASE(test_hostile, "hostile sizes: long targets 414, endless headers 431"),
	TAP_CASE(test_limit_edges, "limits at their edges: max bytes DONE, one more refused, at every split"),
	TAP_CASE(test_long_runs, "long runs at the default limits, in reads of many sizes"),
	TAP_CASE(test_mutations, "random mutations: same result whole and in pieces, known outcomes"),
	TAP_CASE(test_response, "response heads: exact bytes for each status"),
	TAP_CASE(case_meta, "the metadata block of a request: caps, meta_add refusals"),
	TAP_CASE(test_route, "routing: chain paths, /metrics, 404 and 405 with Allow"),
};

int main(void)
{
	int ret;

	conn = malloc(sizeof(*conn));
	if (!conn)
		tap_bail_out("out of memory");
	ret = tap_run_cases(cases, TAP_N(cases));
	free(conn);
	return ret;
}
