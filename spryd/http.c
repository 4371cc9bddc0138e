// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's HTTP parser room (spryd/http.h): the request parser and
 * response writer, the policy around http-parser 2.9.4.  See http.h for the rules.
 *
 * How the pieces interlock: spry_http_feed() alternates a byte screen and
 * http_parser_execute().  The screen walks ahead and accepts a run of
 * bytes; only that run is given to http-parser.  The screen stops where it
 * needs what the parser knows (the end of the header section, the end of
 * a chunk-size line) so the parser's callbacks can tell it what comes next
 * (a body of N bytes, chunk data of N bytes, trailers).  When the screen
 * refuses a byte, the parser first gets the bytes before it, so the
 * earliest fault in the stream decides the status, however the stream was
 * split into reads.  The screen takes the common way through a head
 * (runs of plain bytes, CRLF, ':') in one go, the rest byte by byte.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spryd/http.h"

enum {
	PH_IDLE,	/* between requests */
	PH_HEAD,	/* in the request line and headers */
	PH_HEAD_READY,	/* SPRY_HTTP_HEAD returned: sink may be set */
	PH_BODY,
	PH_DONE,	/* SPRY_HTTP_DONE returned */
	PH_CLOSED,	/* DONE with keep_alive false */
	PH_ERROR,
};

enum {
	SC_PRE,		/* empty lines before the request line */
	SC_RLINE,	/* request line */
	SC_LSTART,	/* start of a field line, or the empty line */
	SC_NAME,	/* field name, before ':' */
	SC_VALUE,	/* field value */
	SC_WAIT,	/* the parser must tell what comes next */
	SC_BODY,	/* Content-Length body: skip bytes, then WAIT */
	SC_CHUNK_LINE,	/* chunk-size line */
	SC_DATA,	/* chunk data: skip bytes, then CRLF */
	SC_CRLF,	/* the CRLF after chunk data */
};

#define KEPT_NONE	-1
#define KEPT_TE		-2

#define WK(s)	{ s, sizeof(s) - 1 }

static const struct {
	const char	*name;
	size_t		len;
} well_known[SPRY_HDR_N_WELL_KNOWN] = {
	[SPRY_HDR_CONTENT_TYPE]		= WK("content-type"),
	[SPRY_HDR_CONTENT_LENGTH]	= WK("content-length"),
	[SPRY_HDR_HOST]			= WK("host"),
	[SPRY_HDR_EXPECT]		= WK("expect"),
	[SPRY_HDR_ACCEPT]		= WK("accept"),
	[SPRY_HDR_REQUEST_ID]		= WK("x-request-id"),
	[SPRY_HDR_SPRY_PROCESS]		= WK("spry-process"),
};

#define X_SPRY_PREFIX	"x-spry-"
#define X_SPRY_LEN	(sizeof(X_SPRY_PREFIX) - 1)
#define TE_NAME		"transfer-encoding"

/*
 * Byte classes of the screen: the states in which a byte is plain, i.e.
 * the per-byte screen would only count it (no state change, no fault).
 * A run of plain bytes is taken in one go (screen_fast()).
 */
#define RUN_RLINE	0x01	/* request line: visible ASCII, SP */
#define RUN_NAME	0x02	/* field name: visible ASCII but ':', non-ASCII */
#define RUN_VALUE	0x04	/* field value: HT, SP, visible ASCII, non-ASCII */
#define RUN_CHUNK	0x08	/* chunk-size line: HT, SP, visible ASCII */

static const uint8_t run_class[256] = {
	['\t']			= RUN_VALUE | RUN_CHUNK,
	[' ']			= RUN_RLINE | RUN_VALUE | RUN_CHUNK,
	['!' ... '9']		= RUN_RLINE | RUN_NAME | RUN_VALUE | RUN_CHUNK,
	[':']			= RUN_RLINE | RUN_VALUE | RUN_CHUNK,
	[';' ... '~']		= RUN_RLINE | RUN_NAME | RUN_VALUE | RUN_CHUNK,
	[0x80 ... 0xff]		= RUN_NAME | RUN_VALUE,
};

/* ------------------------------------------------------------ helpers */

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static char lower(char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch + ('a' - 'A') : ch;
}

static bool eq_nocase(const char *a, size_t alen, const char *b)
{
	size_t i;

	if (alen != strlen(b))
		return false;
	for (i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* CTL per RFC 5234, HT excepted (allowed in values by the callers). */
static bool is_ctl(unsigned char ch)
{
	return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* Byte classes of metadata lines: one table load per byte. */
#define META_KEY	0x01	/* a metadata key (and a kept x-spry-* name) */
#define META_NOT_VALUE	0x02	/* never in a value: CR, LF, NUL */

static const uint8_t meta_class[256] = {
	['\0']		= META_NOT_VALUE,
	['\n']		= META_NOT_VALUE,
	['\r']		= META_NOT_VALUE,
	['-']		= META_KEY,
	['.']		= META_KEY,
	['0' ... '9']	= META_KEY,
	['_']		= META_KEY,
	['a' ... 'z']	= META_KEY,
};

/* What a metadata key (and so a kept x-spry-* name) may hold. */
static bool meta_key_char(char ch)
{
	return meta_class[(unsigned char)ch] & META_KEY;
}

static struct spry_http_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int cb_fail(struct spry_http_conn *c, int status)
{
	if (!c->cb_status)
		c->cb_status = status;
	return -1;
}

/* ---------------------------------------------------------- the screen */

/* Bytes at @p[0..len) of class @cls before the first other one. */
static inline size_t run_len(const unsigned char *p, size_t len,
			     unsigned int cls)
{
	size_t n = 0;

	while (n + 4 <= len && (run_class[p[n]] & run_class[p[n + 1]] &
				run_class[p[n + 2]] & run_class[p[n + 3]] & cls))
		n += 4;
	while (n < len && (run_class[p[n]] & cls))
		n++;
	return n;
}

static inline size_t room(size_t used, size_t max)
{
	return used < max ? max - used : 0;
}

static inline bool at_crlf(const unsigned char *p, size_t i, size_t len)
{
	return len - i >= 2 && p[i] == '\r' && p[i + 1] == '\n';
}

/*
 * The common way through a head, with the state in registers: runs of
 * plain bytes, CRLF line ends, a field name's ':', the CRLF ending the
 * section.  Each byte is counted exactly as the per-byte screen below
 * counts it; whatever else comes (a byte at a limit, a byte the screen
 * refuses, a lone LF, a CR at the end of the input, chunk-size lines'
 * ends) is left to the per-byte screen, so a fault is found at the same
 * byte, with the same status, however the input was split.  Not after a
 * CR (c->cr).  Returns the bytes taken.
 */
static size_t screen_fast(struct spry_http_conn *c, const unsigned char *p,
			  size_t len)
{
	size_t hb = c->hbytes, hmax = c->lim.max_header_bytes;
	size_t i = 0, n, k, spaces = 0;
	int scan = c->scan;

	for (;;) {
		switch (scan) {
		case SC_RLINE:
			n = min_size(len - i, room(c->rl_len, c->lim.max_line));
			n = run_len(p + i, n, RUN_RLINE);
			for (k = i; k < i + n; k++)
				spaces += p[k] == ' ';
			c->rl_len += n;
			i += n;
			/* CR and LF end the line: not counted in max_line */
			if (!at_crlf(p, i, len))
				goto out;
			i += 2;
			scan = SC_LSTART;
			break;
		case SC_LSTART:
			if (i < len && (run_class[p[i]] & RUN_NAME)) {
				if (hb >= hmax ||
				    c->nfields >= c->lim.max_headers)
					goto out;
				hb++;
				c->nfields++;
				i++;
				scan = SC_NAME;
				break;
			}
			if (!at_crlf(p, i, len) || room(hb, hmax) < 2)
				goto out;
			hb += 2;
			i += 2;
			scan = SC_WAIT;	/* end of section */
			goto out;
		case SC_NAME:
			n = min_size(len - i, room(hb, hmax));
			n = run_len(p + i, n, RUN_NAME);
			hb += n;
			i += n;
			if (i == len || p[i] != ':' || hb >= hmax)
				goto out;
			hb++;
			i++;
			scan = SC_VALUE;
			break;
		case SC_VALUE:
			n = min_size(len - i, room(hb, hmax));
			n = run_len(p + i, n, RUN_VALUE);
			hb += n;
			i += n;
			if (!at_crlf(p, i, len) || room(hb, hmax) < 2)
				goto out;
			hb += 2;
			i += 2;
			scan = SC_LSTART;
			break;
		case SC_CHUNK_LINE:
			/* its CRLF is the per-byte screen's: the end of a line */
			n = min_size(len - i, room(c->chunk_line,
						   SPRY_HTTP_CHUNK_LINE_MAX));
			n = run_len(p + i, n, RUN_CHUNK);
			c->chunk_line += n;
			i += n;
			goto out;
		default:
			goto out;
		}
	}
out:
	c->scan = scan;
	c->hbytes = hb;
	c->rl_spaces += spaces;
	return i;
}

/*
 * Accept bytes of @p[0..len) in the current screen state.  *@ok gets how
 * many may go to the parser.  Returns 0, or the status for the byte at
 * @p[*ok] (which is refused).
 */
static int screen(struct spry_http_conn *c, const unsigned char *p,
		  size_t len, size_t *ok)
{
	const struct spry_http_limits *lim = &c->lim;
	size_t i = 0;
	int err = 0;

	while (i < len) {
		unsigned char ch = p[i];

		switch (c->scan) {
		case SC_WAIT:
			goto out;
		case SC_BODY:
		case SC_DATA: {
			uint64_t n = len - i;

			if (n > c->skip)
				n = c->skip;
			c->skip -= n;
			i += n;
			if (!c->skip) {
				if (c->scan == SC_BODY) {
					c->scan = SC_WAIT;
				} else {
					c->scan = SC_CRLF;
					c->crlf = 0;
				}
			}
			continue;
		}
		case SC_CRLF:
			if (ch != (c->crlf ? '\n' : '\r')) {
				err = 400;
				goto out;
			}
			i++;
			if (++c->crlf == 2) {
				c->scan = SC_CHUNK_LINE;
				c->chunk_line = 0;
				c->cr = false;
			}
			continue;
		default:
			break;
		}

		/* line-oriented states */
		if (c->cr && ch != '\n') {
			err = 400;	/* bare CR */
			goto out;
		}
		if (!c->cr) {
			size_t n = screen_fast(c, p + i, len - i);

			if (n) {
				i += n;
				continue;
			}
		}
		if (c->scan == SC_PRE) {
			if (ch == '\r' || ch == '\n') {
				if (ch == '\n' && ++c->pre_lines >
				    SPRY_HTTP_PRE_CRLF_MAX) {
					err = 400;
					goto out;
				}
				c->cr = ch == '\r';
				i++;
				c->started = true;
				continue;
			}
			c->scan = SC_RLINE;
		}
		c->started = true;

		if (c->scan == SC_CHUNK_LINE) {
			if (ch == '\n') {
				if (!c->cr) {
					err = 400;
					goto out;
				}
				c->cr = false;
				c->scan = SC_WAIT;
				i++;
				goto out;
			}
			if (++c->chunk_line > SPRY_HTTP_CHUNK_LINE_MAX ||
			    (ch != '\r' && (is_ctl(ch) || ch >= 0x80))) {
				err = 400;
				goto out;
			}
			c->cr = ch == '\r';
			i++;
			continue;
		}

		if (c->scan == SC_RLINE) {
			if (ch == '\n') {
				c->cr = false;
				c->scan = SC_LSTART;
				i++;
				continue;
			}
			if (ch == '\r') {
				c->cr = true;
				i++;
				continue;
			}
			if (ch < 0x21 || ch >= 0x7f) {
				if (ch != ' ') {
					err = 400;
					goto out;
				}
				c->rl_spaces++;
			}
			if (++c->rl_len > lim->max_line) {
				err = 414;
				goto out;
			}
			i++;
			continue;
		}

		/* header section or trailers: every byte counts */
		if (++c->hbytes > lim->max_header_bytes) {
			err = 431;
			goto out;
		}
		if (ch == '\r') {
			c->cr = true;
			i++;
			continue;
		}
		if (ch == '\n') {
			c->cr = false;
			if (c->scan == SC_NAME) {
				err = 400;	/* field line without ':' */
				goto out;
			}
			i++;
			if (c->scan == SC_LSTART) {
				c->scan = SC_WAIT;	/* end of section */
				goto out;
			}
			c->scan = SC_LSTART;
			continue;
		}
		switch (c->scan) {
		case SC_LSTART:
			if (ch == ' ' || ch == '\t') {
				err = 400;	/* obs-fold */
				goto out;
			}
			if (c->nfields >= lim->max_headers) {
				err = 431;
				goto out;
			}
			c->nfields++;
			c->scan = SC_NAME;
			/* fall through */
		case SC_NAME:
			if (ch == ' ' || ch == '\t' || is_ctl(ch)) {
				err = 400;
				goto out;
			}
			if (ch == ':')
				c->scan = SC_VALUE;
			break;
		case SC_VALUE:
			if (is_ctl(ch)) {
				err = 400;
				goto out;
			}
			break;
		}
		i++;
	}
out:
	*ok = i;
	return err;
}

/* ------------------------------------------------- header collection */

static int scratch_put(struct spry_http_conn *c, const char *p, size_t n)
{
	if (n > sizeof(c->scratch) - c->used)
		return -ENOSPC;
	memcpy(c->scratch + c->used, p, n);
	c->used += n;
	return 0;
}

static int finish_target(struct spry_http_conn *c)
{
	struct spry_http_req *r = &c->req;

	if (c->target_done)
		return 0;
	c->target_done = true;
	r->target = c->scratch;
	r->target_len = c->used;
	return scratch_put(c, "", 1) ? 414 : 0;
}

/* The value of the current header is complete. */
static int finish_value(struct spry_http_conn *c)
{
	struct spry_http_req *r = &c->req;
	struct spry_http_header *h;
	size_t start = c->cur_off, end = c->used;

	if (c->hstate != 2 || c->cur < 0)
		return 0;
	while (start < end && (c->scratch[start] == ' ' ||
			       c->scratch[start] == '\t'))
		start++;
	while (end > start && (c->scratch[end - 1] == ' ' ||
			       c->scratch[end - 1] == '\t'))
		end--;
	if (start != c->cur_off)
		memmove(c->scratch + c->cur_off, c->scratch + start,
			end - start);
	c->used = c->cur_off + (end - start);
	if (scratch_put(c, "", 1))
		return 431;
	h = &r->headers[c->cur];
	h->value = c->scratch + c->cur_off;
	h->value_len = end - start;
	return 0;
}

/* The name of the current header is complete: keep it or not. */
static int classify(struct spry_http_conn *c)
{
	struct spry_http_req *r = &c->req;
	struct spry_http_header *h;
	size_t n = c->name_len, i;
	int id = -1;

	c->cur = KEPT_NONE;
	if (c->trailer)
		return 0;
	if (!c->name_long) {
		for (i = 0; i < SPRY_HDR_N_WELL_KNOWN; i++)
			if (n == well_known[i].len &&
			    !memcmp(c->name, well_known[i].name, n))
				id = i;
		if (n == sizeof(TE_NAME) - 1 && !memcmp(c->name, TE_NAME, n)) {
			if (c->te_seen)
				return 400;
			c->te_seen = true;
			c->cur = KEPT_TE;
			return 0;
		}
	}
	if (id < 0 && c->name_len > X_SPRY_LEN &&
	    !memcmp(c->name, X_SPRY_PREFIX, X_SPRY_LEN)) {
		if (c->name_long)
			return 431;
		for (i = 0; i < n; i++)
			if (!meta_key_char(c->name[i]))
				return 400;
		id = SPRY_HDR_X_SPRY;
		for (i = 0; i < r->n_headers; i++)
			if (r->headers[i].name_len == n &&
			    !memcmp(r->headers[i].name, c->name, n))
				return 400;	/* duplicate x-spry-* */
	}
	if (id < 0)
		return 0;
	if (id < SPRY_HDR_N_WELL_KNOWN && r->well_known[id] >= 0)
		return 400;			/* duplicate */
	if (r->n_headers >= SPRY_HTTP_KEPT_MAX)
		return 431;
	h = &r->headers[r->n_headers];
	h->name = c->scratch + c->used;
	h->name_len = n;
	h->id = id;
	if (scratch_put(c, c->name, n) || scratch_put(c, "", 1))
		return 431;
	h->value = c->scratch + c->used;
	h->value_len = 0;
	c->cur = r->n_headers;
	c->cur_off = c->used;
	if (id < SPRY_HDR_N_WELL_KNOWN)
		r->well_known[id] = r->n_headers;
	r->n_headers++;
	return 0;
}

/* ------------------------------------------------------- the callbacks */

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct spry_http_conn *c = conn_of(p);

	if (c->target_done || scratch_put(c, at, len))
		return cb_fail(c, 414);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct spry_http_conn *c = conn_of(p);
	size_t i, n;
	int st;

	st = finish_target(c);
	if (st)
		return cb_fail(c, st);
	if (c->hstate != 1) {
		st = finish_value(c);
		if (st)
			return cb_fail(c, st);
		c->hstate = 1;
		c->name_len = 0;
		c->name_long = false;
	}
	n = min_size(len, sizeof(c->name) - 1 - c->name_len);
	for (i = 0; i < n; i++)
		c->name[c->name_len + i] = lower(at[i]);
	c->name_len += n;
	if (n < len)
		c->name_long = true;	/* a byte did not fit */
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct spry_http_conn *c = conn_of(p);
	int st;

	if (c->hstate == 1) {
		c->hstate = 2;
		st = classify(c);
		if (st)
			return cb_fail(c, st);
	}
	if (c->cur == KEPT_TE) {
		if (len > sizeof(c->te) - c->te_len) {
			c->te_long = true;
		} else {
			memcpy(c->te + c->te_len, at, len);
			c->te_len += len;
		}
	} else if (c->cur >= 0 && scratch_put(c, at, len)) {
		return cb_fail(c, 431);
	}
	return 0;
}

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool te_is_chunked(const struct spry_http_conn *c)
{
	size_t s = 0, e = c->te_len;

	if (c->te_long)
		return false;
	while (s < e && (c->te[s] == ' ' || c->te[s] == '\t'))
		s++;
	while (e > s && (c->te[e - 1] == ' ' || c->te[e - 1] == '\t'))
		e--;
	return eq_nocase(c->te + s, e - s, "chunked");
}

static int head_checks(struct spry_http_conn *c)
{
	struct spry_http_req *r = &c->req;
	http_parser *p = &c->parser;
	const struct spry_http_header *h;
	struct http_parser_url u;

	r->method = p->method;
	r->method_str = http_method_str(p->method);
	r->http_major = p->http_major;
	r->http_minor = p->http_minor;

	/* "GET /" parses as HTTP/0.9: a missing version */
	if (c->rl_spaces < 2 || p->http_major == 0)
		return 400;
	if (p->http_major != 1 || p->http_minor > 1)
		return 505;
	if (p->http_minor == 1 && r->well_known[SPRY_HDR_HOST] < 0)
		return 400;

	r->chunked = !!(p->flags & F_CHUNKED);
	if (c->te_seen) {
		if (p->http_minor == 0)
			return 400;
		if (!te_is_chunked(c))
			return 501;
		if (!r->chunked)
			return 400;
	}
	if (r->well_known[SPRY_HDR_CONTENT_LENGTH] >= 0) {
		h = &r->headers[r->well_known[SPRY_HDR_CONTENT_LENGTH]];
		if (!all_digits(h->value, h->value_len) ||
		    !(p->flags & F_CONTENTLENGTH) || c->te_seen)
			return 400;
		r->has_content_length = true;
		r->content_length = p->content_length;
	}
	if (r->chunked && r->has_content_length)
		return 400;

	if (!r->target_len)
		return 400;
	http_parser_url_init(&u);
	if (http_parser_parse_url(r->target, r->target_len,
				  p->method == HTTP_CONNECT, &u))
		return 400;
	if (u.field_set & (1 << UF_PATH)) {
		r->path = r->target + u.field_data[UF_PATH].off;
		r->path_len = u.field_data[UF_PATH].len;
	}
	if (u.field_set & (1 << UF_QUERY)) {
		r->query = r->target + u.field_data[UF_QUERY].off;
		r->query_len = u.field_data[UF_QUERY].len;
	}

	r->has_body = r->chunked ||
		      (r->has_content_length && r->content_length > 0);
	if (r->has_content_length && r->content_length > c->lim.max_body)
		return 413;
	if (r->well_known[SPRY_HDR_EXPECT] >= 0) {
		h = &r->headers[r->well_known[SPRY_HDR_EXPECT]];
		if (!eq_nocase(h->value, h->value_len, "100-continue"))
			return 417;
		/* RFC 9110 10.1.1: ignored in HTTP/1.0 */
		r->expect_continue = r->has_body && p->http_minor == 1;
	}
	r->keep_alive = http_should_keep_alive(p);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct spry_http_conn *c = conn_of(p);
	struct spry_http_req *r = &c->req;
	int st;

	if (c->trailer)
		return 0;
	st = finish_target(c);
	if (!st)
		st = finish_value(c);
	if (!st)
		st = head_checks(c);
	if (st)
		return cb_fail(c, st);
	c->hstate = 0;
	c->head_done = true;
	/* No protocol switch: Upgrade and CONNECT are ordinary requests. */
	p->upgrade = 0;
	if (r->chunked) {
		c->scan = SC_CHUNK_LINE;
		c->chunk_line = 0;
	} else if (r->has_body) {
		c->scan = SC_BODY;
		c->skip = r->content_length;
	}
	return 0;
}

static uint64_t body_limit(const struct spry_http_conn *c)
{
	if (c->sink && c->sink_cap < c->lim.max_body)
		return c->sink_cap;
	return c->lim.max_body;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct spry_http_conn *c = conn_of(p);
	struct spry_http_req *r = &c->req;

	if (len > body_limit(c) - r->body_len)
		return cb_fail(c, 413);
	/* bytes received straight into the sink are fed from there */
	if (c->sink && len && at != c->sink + r->body_len)
		memcpy(c->sink + r->body_len, at, len);
	r->body_len += len;
	return 0;
}

static int on_chunk_header(http_parser *p)
{
	struct spry_http_conn *c = conn_of(p);
	uint64_t n = p->content_length;

	if (c->scan != SC_WAIT)
		return cb_fail(c, 400);
	if (!n) {
		c->trailer = true;
		c->scan = SC_LSTART;
		return 0;
	}
	if (n > body_limit(c) - c->req.body_len)
		return cb_fail(c, 413);
	c->scan = SC_DATA;
	c->skip = n;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct spry_http_conn *c = conn_of(p);

	c->msg_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings spry_http_settings = {
	.on_url			= on_url,
	.on_header_field	= on_header_field,
	.on_header_value	= on_header_value,
	.on_headers_complete	= on_headers_complete,
	.on_body		= on_body,
	.on_chunk_header	= on_chunk_header,
	.on_message_complete	= on_message_complete,
};

/* ------------------------------------------------------------- the feed */

void spry_http_limits_default(struct spry_http_limits *lim)
{
	lim->max_line = 8192;
	lim->max_header_bytes = 16384;
	lim->max_headers = 64;
	lim->max_body = 1 << 20;
}

static void request_reset(struct spry_http_conn *c)
{
	struct spry_http_req *r = &c->req;

	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	memset(r, 0, sizeof(*r));
	memset(r->well_known, -1, sizeof(r->well_known));
	r->target = "";
	c->phase = PH_HEAD;
	c->cb_status = 0;
	c->started = false;
	c->msg_done = false;
	c->head_done = false;
	c->scan = SC_PRE;
	c->cr = false;
	c->trailer = false;
	c->pre_lines = 0;
	c->rl_spaces = 0;
	c->rl_len = 0;
	c->hbytes = 0;
	c->nfields = 0;
	c->chunk_line = 0;
	c->skip = 0;
	c->crlf = 0;
	c->sink = NULL;
	c->sink_cap = 0;
	c->hstate = 0;
	c->cur = KEPT_NONE;
	c->cur_off = 0;
	c->name_len = 0;
	c->name_long = false;
	c->target_done = false;
	c->te_len = 0;
	c->te_seen = false;
	c->te_long = false;
	c->used = 0;
}

int spry_http_conn_init(struct spry_http_conn *c,
			const struct spry_http_limits *lim)
{
	struct spry_http_limits def;

	if (!c)
		return -EINVAL;
	if (!lim) {
		spry_http_limits_default(&def);
		lim = &def;
	}
	if (!lim->max_line || lim->max_line > SPRY_HTTP_LINE_MAX ||
	    !lim->max_header_bytes ||
	    lim->max_header_bytes > SPRY_HTTP_HBYTES_MAX ||
	    !lim->max_headers || lim->max_headers > SPRY_HTTP_NHDR_MAX)
		return -EINVAL;
	c->lim = *lim;
	c->settings = &spry_http_settings;
	request_reset(c);
	c->phase = PH_IDLE;
	return 0;
}

static int parser_status(enum http_errno e)
{
	switch (e) {
	case HPE_HEADER_OVERFLOW:
		return 431;
	case HPE_INVALID_TRANSFER_ENCODING:
		return 501;
	default:
		return 400;
	}
}

static int fail(struct spry_http_conn *c, int status)
{
	c->phase = PH_ERROR;
	c->req.status = status;
	c->req.keep_alive = false;
	return -EPROTO;
}

int spry_http_feed(struct spry_http_conn *c, const char *buf, size_t len,
		   size_t *consumed)
{
	size_t off = 0;

	if (!c || !consumed || (!buf && len))
		return -EINVAL;
	*consumed = 0;
	switch (c->phase) {
	case PH_ERROR:
		return -EPROTO;
	case PH_CLOSED:
		return -EPIPE;
	case PH_IDLE:
	case PH_DONE:
		request_reset(c);
		break;
	case PH_HEAD_READY:
		c->phase = PH_BODY;
		break;
	default:
		break;
	}

	while (off < len) {
		enum http_errno e;
		size_t ok, got;
		int bad;

		bad = screen(c, (const unsigned char *)buf + off, len - off,
			     &ok);
		if (ok) {
			got = http_parser_execute(&c->parser, c->settings,
						  buf + off, ok);
			off += got;
			*consumed = off;
			e = HTTP_PARSER_ERRNO(&c->parser);
			if (e == HPE_PAUSED && c->msg_done) {
				if (c->scan != SC_WAIT || got != ok)
					return fail(c, 400);
				c->phase = c->req.keep_alive ? PH_DONE
							     : PH_CLOSED;
				return SPRY_HTTP_DONE;
			}
			if (e != HPE_OK)
				return fail(c, c->cb_status ? c->cb_status
							    : parser_status(e));
			if (got != ok)
				return fail(c, 400);
		}
		if (bad)
			return fail(c, bad);
		if (c->head_done && c->phase == PH_HEAD) {
			c->phase = PH_HEAD_READY;
			return SPRY_HTTP_HEAD;
		}
		if (!ok)	/* the screen waits on a parser that did not answer */
			return fail(c, 400);
	}
	*consumed = off;
	return SPRY_HTTP_AGAIN;
}

int spry_http_set_body(struct spry_http_conn *c, char *dst, size_t cap)
{
	if (!c || c->phase != PH_HEAD_READY)
		return -EINVAL;
	c->sink = dst;
	c->sink_cap = dst ? cap : 0;
	return 0;
}

uint64_t spry_http_body_room(const struct spry_http_conn *c, char **dst)
{
	if (!c || !dst || !c->sink || c->scan != SC_BODY ||
	    (c->phase != PH_HEAD_READY && c->phase != PH_BODY))
		return 0;
	/* more than the sink holds is 413: fed, not received into it */
	if (c->skip > body_limit(c) - c->req.body_len)
		return 0;
	*dst = c->sink + c->req.body_len;
	return c->skip;
}

bool spry_http_in_request(const struct spry_http_conn *c)
{
	switch (c->phase) {
	case PH_HEAD:
		return c->started;
	case PH_HEAD_READY:
	case PH_BODY:
		return true;
	default:
		return false;
	}
}

const struct spry_http_header *
spry_http_req_header(const struct spry_http_req *req, const char *name)
{
	unsigned int i;

	if (!req || !name)
		return NULL;
	for (i = 0; i < req->n_headers; i++)
		if (eq_nocase(name, strlen(name), req->headers[i].name))
			return &req->headers[i];
	return NULL;
}

/* ----------------------------------------------------------- responses */

const char *spry_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	if (status >= 100 && status < 200)
		return "Informational";
	if (status >= 200 && status < 300)
		return "Success";
	if (status >= 300 && status < 400)
		return "Redirection";
	if (status >= 400 && status < 500)
		return "Client Error";
	return "Server Error";
}

struct outbuf {
	char	*p;
	size_t	cap;
	size_t	len;
	bool	full;
};

static void out_put(struct outbuf *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void out_str(struct outbuf *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* A string literal: its length is known at compile time. */
#define out_lit(o, s)	out_put(o, s, sizeof(s) - 1)

static void out_u64(struct outbuf *o, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[sizeof(tmp) - 1 - n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	out_put(o, tmp + sizeof(tmp) - n, n);
}

static void out_2d(struct outbuf *o, int v)
{
	char d[2] = { '0' + v / 10 % 10, '0' + v % 10 };

	out_put(o, d, 2);
}

static int format_date(struct outbuf *o, time_t t)
{
	static const char wd[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mo[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1000 ||
	    tm.tm_year + 1900 > 9999)
		return -EINVAL;
	out_lit(o, "Date: ");
	out_put(o, wd[tm.tm_wday], 3);
	out_lit(o, ", ");
	out_2d(o, tm.tm_mday);
	out_lit(o, " ");
	out_put(o, mo[tm.tm_mon], 3);
	out_lit(o, " ");
	out_u64(o, tm.tm_year + 1900);
	out_lit(o, " ");
	out_2d(o, tm.tm_hour);
	out_lit(o, ":");
	out_2d(o, tm.tm_min);
	out_lit(o, ":");
	out_2d(o, tm.tm_sec);
	out_lit(o, " GMT\r\n");
	return 0;
}

/* The Date line; one gmtime_r() per second and thread, not per response. */
static int out_date(struct outbuf *o, time_t t)
{
	static __thread char line[48];
	static __thread size_t line_len;
	static __thread time_t line_t;
	struct outbuf lo = { .p = line, .cap = sizeof(line) };

	if (!line_len || t != line_t) {
		line_len = 0;
		if (format_date(&lo, t) || lo.full)
			return -EINVAL;
		line_len = lo.len;
		line_t = t;
	}
	out_put(o, line, line_len);
	return 0;
}

static bool field_value_ok(const char *s)
{
	for (; *s; s++)
		if (is_ctl((unsigned char)*s))
			return false;
	return true;
}

/* Pre-formatted header lines: "Name: value\r\n"..., nothing else. */
static bool extra_ok(const char *s)
{
	const char *line = s;
	bool name = true;

	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '\r') {
			if (s[1] != '\n' || name || s == line)
				return false;
			s++;
			line = s + 1;
			name = true;
			continue;
		}
		if (name) {
			if (ch == ':' && s != line)
				name = false;
			else if (ch <= ' ' || ch >= 0x7f || ch == ':')
				return false;
		} else if (is_ctl(ch)) {
			return false;
		}
	}
	return s == line;	/* ends with CRLF (or is empty) */
}

int spry_http_response_ex(char *out, size_t cap,
			  const struct spry_http_resp *resp, size_t *written)
{
	struct outbuf o = { .p = out, .cap = cap };
	bool no_body;

	if (!written)
		return -EINVAL;
	*written = 0;
	if (!out || !resp || resp->status < 200 || resp->status > 599)
		return -EINVAL;
	no_body = resp->status == 204 || resp->status == 304;
	if (no_body && resp->body_len)
		return -EINVAL;
	if (resp->content_type && (!resp->content_type[0] ||
				   !field_value_ok(resp->content_type)))
		return -EINVAL;
	if (resp->extra && !extra_ok(resp->extra))
		return -EINVAL;

	out_lit(&o, "HTTP/1.1 ");
	out_u64(&o, resp->status);
	out_lit(&o, " ");
	out_str(&o, spry_http_reason(resp->status));
	out_lit(&o, "\r\n");
	if (resp->date && out_date(&o, resp->date))
		return -EINVAL;
	if (resp->content_type) {
		out_lit(&o, "Content-Type: ");
		out_str(&o, resp->content_type);
		out_lit(&o, "\r\n");
	}
	if (!no_body) {
		out_lit(&o, "Content-Length: ");
		out_u64(&o, resp->body_len);
		out_lit(&o, "\r\n");
	}
	if (resp->keep_alive)
		out_lit(&o, "Connection: keep-alive\r\n");
	else
		out_lit(&o, "Connection: close\r\n");
	if (resp->extra)
		out_str(&o, resp->extra);
	out_lit(&o, "\r\n");
	if (o.full)
		return -ENOSPC;
	*written = o.len;
	return 0;
}

int spry_http_response(char *out, size_t cap, int status,
		       const char *content_type, size_t body_len,
		       bool keep_alive, size_t *written)
{
	struct spry_http_resp r = {
		.status = status,
		.content_type = content_type,
		.body_len = body_len,
		.keep_alive = keep_alive,
	};

	return spry_http_response_ex(out, cap, &r, written);
}

/* ------------------------------------------------------------ metadata */

/* A metadata value: no CR, LF or NUL. */
static bool meta_value_ok(const char *v, size_t n)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t i = 0;

	for (; i + 4 <= n; i += 4)
		if ((meta_class[p[i]] | meta_class[p[i + 1]] |
		     meta_class[p[i + 2]] | meta_class[p[i + 3]]) &
		    META_NOT_VALUE)
			return false;
	for (; i < n; i++)
		if (meta_class[p[i]] & META_NOT_VALUE)
			return false;
	return true;
}

/* A NUL-terminated key's length if it is a metadata key, else 0. */
static size_t meta_key_len(const char *key)
{
	size_t n;

	for (n = 0; key[n]; n++)
		if (n >= 63 || !meta_key_char(key[n]))
			return 0;
	return n;
}

/* Append "key: value\n", all checked: 0 or -ENOSPC (*@len untouched). */
static int meta_put(char *dst, size_t cap, size_t *len, const char *key,
		    size_t klen, const char *val, size_t val_len)
{
	size_t need = klen + 2 + val_len + 1;
	char *o;

	if (need > cap - *len)
		return -ENOSPC;
	o = dst + *len;
	memcpy(o, key, klen);
	o[klen] = ':';
	o[klen + 1] = ' ';
	if (val_len)
		memcpy(o + klen + 2, val, val_len);
	o[need - 1] = '\n';
	*len += need;
	return 0;
}

#define meta_put_lit(dst, cap, len, key, val, val_len) \
	meta_put(dst, cap, len, key, sizeof(key) - 1, val, val_len)

int spry_http_meta_add(char *dst, size_t cap, size_t *len, const char *key,
		       const char *val, size_t val_len)
{
	size_t klen;

	if (!dst || !len || !key || (!val && val_len) || *len > cap)
		return -EINVAL;
	klen = meta_key_len(key);
	if (!klen || !meta_value_ok(val, val_len))
		return -EINVAL;
	return meta_put(dst, cap, len, key, klen, val, val_len);
}

int spry_http_meta_build(const struct spry_http_req *req, char *dst,
			 size_t cap, size_t *len)
{
	const struct spry_http_header *h;
	size_t n = 0, klen;
	unsigned int i;
	int err;

	if (!req || !dst || !len || !req->method_str)
		return -EINVAL;
	klen = strlen(req->method_str);
	if (!meta_value_ok(req->method_str, klen))
		return -EINVAL;
	err = meta_put_lit(dst, cap, &n, "method", req->method_str, klen);
	if (err)
		return err;
	if (req->path_len) {
		if (!meta_value_ok(req->path, req->path_len))
			return -EINVAL;
		err = meta_put_lit(dst, cap, &n, "path", req->path,
				   req->path_len);
	} else {
		err = meta_put_lit(dst, cap, &n, "path", "/", 1);
	}
	if (err)
		return err;
	if (req->query) {
		if (!meta_value_ok(req->query, req->query_len))
			return -EINVAL;
		err = meta_put_lit(dst, cap, &n, "query", req->query,
				   req->query_len);
		if (err)
			return err;
	}
	for (i = 0; i < req->n_headers; i++) {
		h = &req->headers[i];
		if (h->id == SPRY_HDR_CONTENT_LENGTH ||
		    h->id == SPRY_HDR_EXPECT)
			continue;
		klen = meta_key_len(h->name);
		if (!klen || !meta_value_ok(h->value, h->value_len))
			return -EINVAL;
		err = meta_put(dst, cap, &n, h->name, klen, h->value,
			       h->value_len);
		if (err)
			return err;
	}
	*len = n;
	return 0;
}

/* ------------------------------------------------------------- routing */

static bool chain_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
}

int spry_http_route(const char *path, size_t path_len, enum http_method m,
		    struct spry_http_route *rt)
{
	size_t n = 0;

	if (!rt || (!path && path_len))
		return -EINVAL;
	memset(rt, 0, sizeof(*rt));
	rt->rest = "";
	rt->status = 404;
	if (!path_len || path[0] != '/')
		return -ENOENT;
	path++;
	path_len--;
	if (path_len == strlen("metrics") && !memcmp(path, "metrics", 7)) {
		rt->kind = SPRY_ROUTE_METRICS;
		rt->allow = "GET, HEAD";
		if (m != HTTP_GET && m != HTTP_HEAD) {
			rt->status = 405;
			return -EOPNOTSUPP;
		}
		rt->status = 0;
		return 0;
	}
	while (n < path_len && path[n] != '/') {
		if (!chain_char(path[n]) || n >= sizeof(rt->chain) - 1)
			return -ENOENT;
		n++;
	}
	if (!n || (n == 1 && path[0] == '.') ||
	    (n == 2 && path[0] == '.' && path[1] == '.') ||
	    (n == 7 && !memcmp(path, "metrics", 7)))
		return -ENOENT;
	memcpy(rt->chain, path, n);
	rt->chain[n] = 0;
	rt->rest = path + n;
	rt->rest_len = path_len - n;
	rt->kind = SPRY_ROUTE_CHAIN;
	rt->allow = "GET, HEAD, POST";
	if (m != HTTP_GET && m != HTTP_HEAD && m != HTTP_POST) {
		rt->status = 405;
		return -EOPNOTSUPP;
	}
	rt->status = 0;
	return 0;
}
