/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's HTTP/1.1 front: request parser and response writer.
 *
 * Pure functions over byte buffers (no sockets, no epoll, no heap): spryd
 * owns the reads and writes, this file owns the protocol policy.
 * Tokenizing, chunked decoding and the state machine are nodejs
 * http-parser 2.9.4's (<http_parser.h>, -lhttp_parser).  Around it:
 *
 *  - a byte screen that runs ahead of http-parser and hands it only
 *    bytes it has accepted: limits (request line, header bytes, header
 *    count, chunk-size line), bare CR, NUL and other control bytes,
 *    obs-fold continuation lines, whitespace before the colon, CRLF after
 *    chunk data, non-ASCII in the request line: things http-parser 2.9.4
 *    lets through or counts differently;
 *  - header selection into a fixed per-connection scratch area;
 *  - framing rules (Host, Content-Length, Transfer-Encoding, Expect);
 *  - one request at a time (pipelining): the parser is paused at the end
 *    of every request and spry_http_feed() returns;
 *  - the mapping of every failure to a status, after which the connection
 *    is "close after response".
 *
 * Use (one struct spry_http_conn per TCP connection, never moved while in
 * use, no allocation inside):
 *
 *	spry_http_conn_init(c, &limits);
 *	for (;;) {
 *		r = spry_http_feed(c, rbuf + off, rlen - off, &used);
 *		off += used;
 *		if (r == SPRY_HTTP_AGAIN)      read more, feed again;
 *		if (r == SPRY_HTTP_HEAD) {     headers done, a body follows:
 *			c->req.content_length (if has_content_length) or
 *			chunked; pick the destination:
 *			spry_http_set_body(c, pool_buf + meta_len, room);
 *			if (c->req.expect_continue) send SPRY_HTTP_CONTINUE;
 *			feed again (with what is left, or after reading);
 *		}
 *		if (r == SPRY_HTTP_DONE)       c->req is complete: answer it,
 *			with Connection: close and a close if !req.keep_alive;
 *			c->req stays valid until the next feed.
 *		if (r == -EPROTO)              answer c->req.status with
 *			Connection: close, then close.
 *	}
 *
 * Status rules (RFC 9110/9112, tightened):
 *   400  malformed request line or header line (http-parser's errors),
 *        unknown method (http-parser 2.9.4 only knows its fixed method
 *        list: any other token is 400 here, not 501), missing version,
 *        HTTP/0.9, bad/negative/overflowing/duplicate Content-Length,
 *        Content-Length with Transfer-Encoding, Transfer-Encoding in an
 *        HTTP/1.0 request, duplicate Transfer-Encoding, bad chunk size or
 *        chunk line, chunk data not followed by CRLF, obs-fold, bare CR,
 *        control bytes (NUL included; HT allowed in values), whitespace
 *        before the colon, HTTP/1.1 without Host, duplicate Host (and
 *        duplicate of any kept header), more than 16 empty lines before
 *        the request line, a target http_parser_parse_url() refuses,
 *        an x-spry-* name with a byte outside [a-z0-9_.-] (case-folded).
 *   414  request line longer than max_line (the target is what can make
 *        it long: methods and versions are short).
 *   417  Expect other than 100-continue.
 *   431  header section (and trailers) over max_header_bytes, more than
 *        max_headers fields, kept headers overflowing the scratch area or
 *        SPRY_HTTP_KEPT_MAX entries.
 *   413  Content-Length over max_body, or decoded chunked body over
 *        max_body, or body over the capacity given to spry_http_set_body().
 *   501  a Transfer-Encoding other than "chunked" (gzip, "gzip, chunked").
 *   505  a version other than HTTP/1.0 and HTTP/1.1.
 * Line ends: CRLF; a lone LF is accepted in the request line and header
 * section (RFC 9112 2.2), not in chunk lines.  Upgrade and CONNECT are
 * parsed as ordinary requests (spryd does not switch protocols; the
 * router answers 405 to CONNECT).  Trailer fields are screened and counted
 * against the header limits, then dropped.
 */
#ifndef SPRYD_HTTP_H
#define SPRYD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <http_parser.h>

/* Hard caps of the limits, and the fixed areas of a connection. */
#define SPRY_HTTP_LINE_MAX	8192	/* cap of max_line */
#define SPRY_HTTP_HBYTES_MAX	65536	/* cap of max_header_bytes */
#define SPRY_HTTP_NHDR_MAX	1024	/* cap of max_headers */
#define SPRY_HTTP_SCRATCH	12288	/* target + kept headers, per conn */
#define SPRY_HTTP_KEPT_MAX	16	/* kept headers per request */
#define SPRY_HTTP_NAME_MAX	64	/* longest kept header name + NUL */
#define SPRY_HTTP_CHUNK_LINE_MAX 1024	/* chunk-size line incl. extensions */
#define SPRY_HTTP_PRE_CRLF_MAX	16	/* empty lines before a request */

#define SPRY_HTTP_CONTINUE	"HTTP/1.1 100 Continue\r\n\r\n"

struct spry_http_limits {
	size_t		max_line;	  /* request line, no CRLF: 8 KiB -> 414 */
	size_t		max_header_bytes; /* header lines + trailers: 16 KiB -> 431 */
	size_t		max_headers;	  /* field lines: 64 -> 431 */
	uint64_t	max_body;	  /* decoded body: 1 MiB -> 413 */
};

/* The headers spry keeps; anything else is screened and dropped. */
enum spry_http_hdr_id {
	SPRY_HDR_CONTENT_TYPE,
	SPRY_HDR_CONTENT_LENGTH,
	SPRY_HDR_HOST,
	SPRY_HDR_EXPECT,
	SPRY_HDR_ACCEPT,
	SPRY_HDR_REQUEST_ID,	/* x-request-id */
	SPRY_HDR_SPRY_PROCESS,	/* spry-process: an app's process id */
	SPRY_HDR_N_WELL_KNOWN,
	SPRY_HDR_X_SPRY = SPRY_HDR_N_WELL_KNOWN,	/* any x-spry-* */
};

struct spry_http_header {
	const char	*name;		/* lowercase, NUL-terminated */
	const char	*value;		/* NUL-terminated, OWS trimmed */
	uint16_t	name_len;
	uint16_t	value_len;
	uint8_t		id;		/* enum spry_http_hdr_id */
};

/*
 * One request.  Strings point into the connection's scratch area: valid
 * until the next spry_http_feed() after SPRY_HTTP_DONE (or an error).
 */
struct spry_http_req {
	enum http_method method;
	const char	*method_str;	/* "GET", ... */
	unsigned short	http_major, http_minor;
	const char	*target;	/* as sent, NUL-terminated */
	size_t		target_len;
	const char	*path;		/* slice of target (not NUL-terminated) */
	size_t		path_len;	/* 0: none (authority-form) */
	const char	*query;		/* slice after '?', NULL if none */
	size_t		query_len;
	bool		keep_alive;	/* false: answer with close, then close */
	bool		has_body;	/* SPRY_HTTP_HEAD was/will be returned */
	bool		chunked;
	bool		has_content_length;
	bool		expect_continue; /* send SPRY_HTTP_CONTINUE at HEAD */
	uint64_t	content_length;	/* when has_content_length */
	uint64_t	body_len;	/* decoded body bytes received so far */
	int		status;		/* after -EPROTO: the status to answer */
	unsigned int	n_headers;	/* kept headers */
	struct spry_http_header headers[SPRY_HTTP_KEPT_MAX];
	int8_t		well_known[SPRY_HDR_N_WELL_KNOWN]; /* index or -1 */
};

enum spry_http_event {
	SPRY_HTTP_AGAIN	= 0,	/* all input used, request not complete */
	SPRY_HTTP_HEAD	= 1,	/* headers complete and a body follows */
	SPRY_HTTP_DONE	= 2,	/* request complete (body included) */
};

/* Everything below the request is private to http.c. */
struct spry_http_conn {
	http_parser			parser;
	const http_parser_settings	*settings;
	struct spry_http_limits		lim;
	struct spry_http_req		req;

	int		phase;		/* enum in http.c */
	int		cb_status;	/* status set by a callback */
	bool		started;	/* a byte of this request was consumed */
	bool		msg_done;
	bool		head_done;

	/* the byte screen */
	int		scan;		/* enum in http.c */
	bool		cr;		/* previous byte was CR */
	bool		trailer;
	unsigned int	pre_lines;
	unsigned int	rl_spaces;
	size_t		rl_len;
	size_t		hbytes;
	size_t		nfields;
	size_t		chunk_line;
	uint64_t	skip;		/* body/chunk bytes still to pass */
	uint8_t		crlf;		/* CRLF bytes seen after chunk data */

	/* body sink */
	char		*sink;
	size_t		sink_cap;

	/* header collection */
	int		hstate;		/* 0 none, 1 in name, 2 in value */
	int		cur;		/* kept index, -1 dropped, -2 TE */
	size_t		cur_off;	/* value start in scratch */
	char		name[SPRY_HTTP_NAME_MAX];
	size_t		name_len;
	bool		name_long;
	bool		target_done;
	char		te[16];
	size_t		te_len;
	bool		te_seen;
	bool		te_long;
	size_t		used;
	char		scratch[SPRY_HTTP_SCRATCH];
};

/* Defaults: 8 KiB line, 16 KiB headers, 64 fields, 1 MiB body. */
void spry_http_limits_default(struct spry_http_limits *lim);

/*
 * Prepare @c for a new connection.  @lim NULL: defaults.  -EINVAL if a
 * limit is 0 or over its SPRY_HTTP_*_MAX cap.
 */
int spry_http_conn_init(struct spry_http_conn *c,
			const struct spry_http_limits *lim);

/*
 * Parse @len bytes at @buf; *@consumed gets how many were used (the rest
 * belongs to a later call: the next part of this request, or the next
 * pipelined request).  Returns an enum spry_http_event, or
 *   -EPROTO   the request is bad: answer c->req.status and close (sticky:
 *             every later call returns -EPROTO);
 *   -EPIPE    the previous request said close: nothing more is parsed;
 *   -EINVAL   NULL arguments.
 */
int spry_http_feed(struct spry_http_conn *c, const char *buf, size_t len,
		   size_t *consumed);

/*
 * At SPRY_HTTP_HEAD only (before the next feed): the decoded body goes to
 * @dst (at most @cap bytes; more is 413).  Not called, or @dst NULL: the body is counted
 * against max_body and dropped.  -EINVAL outside SPRY_HTTP_HEAD.
 */
int spry_http_set_body(struct spry_http_conn *c, char *dst, size_t cap);

/*
 * A Content-Length body going to a sink (spry_http_set_body), at
 * SPRY_HTTP_HEAD or after it: how many of its bytes are still to come, and
 * *@dst where the next one goes.  0 (and *@dst untouched): none to come,
 * no sink, a chunked body, or one larger than the sink (413 when fed).
 * Bytes received straight into *@dst are then fed from there
 * (spry_http_feed(c, *dst, n, ...)): parsed, not copied again.
 */
uint64_t spry_http_body_room(const struct spry_http_conn *c, char **dst);

/* True when part of a request has been consumed (408 vs silent close). */
bool spry_http_in_request(const struct spry_http_conn *c);

/* A kept header by lowercase name, NULL if absent. */
const struct spry_http_header *
spry_http_req_header(const struct spry_http_req *req, const char *name);

/* The reason phrase of @status ("Unknown" classes for unlisted codes). */
const char *spry_http_reason(int status);

/*
 * A response head.  Written: status line, Date (if @date != 0),
 * Content-Type (if non-NULL), Content-Length (not for 204/304),
 * Connection: keep-alive|close, @extra (pre-formatted "Name: v\r\n"
 * lines, e.g. "Retry-After: 1\r\n"; NULL none), the empty line.  The
 * caller sends the body itself, and none for HEAD (Content-Length still
 * tells the length a GET would have).
 */
struct spry_http_resp {
	int		status;		/* 200..599 */
	const char	*content_type;
	size_t		body_len;
	bool		keep_alive;
	time_t		date;		/* 0: no Date header */
	const char	*extra;
};

/* 0, -ENOSPC (@cap too small; nothing usable in @out), -EINVAL. */
int spry_http_response_ex(char *out, size_t cap,
			  const struct spry_http_resp *resp, size_t *written);
int spry_http_response(char *out, size_t cap, int status,
		       const char *content_type, size_t body_len,
		       bool keep_alive, size_t *written);

/*
 * Metadata (docs/DESIGN.md "Metadata").  meta_add appends "key: value\n"
 * at dst + *len; key: 1..63 bytes of [a-z0-9_.-]; value: no CR, LF or
 * NUL.  meta_build writes "method", "path" (the request path, "/" if
 * none), "query" (if any), then every kept header but content-length and
 * expect.  No NUL is written.  0, -ENOSPC, -EINVAL.
 */
int spry_http_meta_add(char *dst, size_t cap, size_t *len, const char *key,
		       const char *val, size_t val_len);
int spry_http_meta_build(const struct spry_http_req *req, char *dst,
			 size_t cap, size_t *len);

/*
 * Routing: "/metrics" (GET, HEAD) or "/CHAIN[/rest]" with CHAIN
 * [A-Za-z0-9_.-]{1,31}, not "." or "..", not "metrics" (GET, HEAD,
 * POST).  Returns 0 (rt filled), -ENOENT (answer 404), -EOPNOTSUPP
 * (answer 405 with "Allow: rt->allow"), -EINVAL (NULL arguments).
 * rt->status is 0, 404 or 405 to match.
 */
enum spry_http_route_kind {
	SPRY_ROUTE_NONE,
	SPRY_ROUTE_CHAIN,
	SPRY_ROUTE_METRICS,
};

struct spry_http_route {
	enum spry_http_route_kind kind;
	int		status;
	char		chain[32];
	const char	*rest;		/* "/..." after the chain, or "" */
	size_t		rest_len;
	const char	*allow;		/* methods for this route, for 405 */
};

int spry_http_route(const char *path, size_t path_len, enum http_method m,
		    struct spry_http_route *rt);

#endif /* SPRYD_HTTP_H */
