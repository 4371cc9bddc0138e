/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the comparison chains (bench/httpchain.c, bench/unixchain.c) share:
 * the hop handlers (examples/transforms.h, the code the spry functions
 * examples/upper and examples/reverse run), growable byte buffers, a
 * minimal HTTP/1.1 message-head parser (Content-Length bodies only) and
 * socket helpers.
 *
 * Hop i of a chain (0-based) runs upper when i is even, reverse when odd:
 * spry's chains in bench/compare.sh are built the same way.
 */
#ifndef SPRY_BENCH_UTIL_H
#define SPRY_BENCH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "examples/transforms.h"
#include "fn-runtime/parse.h"
#include "spry/spry.h"

#define BU_MAX_BODY	(1u << 20)	/* largest body accepted */
#define BU_MAX_HEAD	16384		/* largest message head */

/* ------------------------------------------------------------ handlers */

static inline void bu_handler(unsigned int hop, unsigned char *p, size_t len)
{
	if (hop % 2 == 0)
		xf_upper(p, len);
	else
		xf_reverse(p, len);
}

/* --------------------------------------------------------------- buffers */

struct bu_buf {
	unsigned char	*p;
	size_t		len;	/* bytes held */
	size_t		off;	/* bytes consumed (output: written) */
	size_t		cap;
};

static inline int bu_reserve(struct bu_buf *b, size_t more)
{
	size_t cap;
	void *p;

	if (b->len + more <= b->cap)
		return 0;
	if (b->off) {
		/* move what is left to the front first */
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return 0;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline int bu_append(struct bu_buf *b, const void *data, size_t len)
{
	if (bu_reserve(b, len))
		return -ENOMEM;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

/* Drop the first @n unconsumed bytes. */
static inline void bu_consume(struct bu_buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static inline void bu_free(struct bu_buf *b)
{
	free(b->p);
	*b = (struct bu_buf){};
}

/*
 * Write what @b holds to non-blocking @fd.  0: all written; 1: the socket
 * is full (wait for EPOLLOUT); -errno on error.
 */
static inline int bu_flush(struct bu_buf *b, int fd)
{
	ssize_t n;

	while (b->off < b->len) {
		n = send(fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 1;
			return -errno;
		}
		b->off += n;
	}
	b->off = b->len = 0;
	return 0;
}

/*
 * Read once from non-blocking @fd into @b (at least @want bytes of room).
 * >0 bytes read, 0 EOF, -EAGAIN nothing yet, other -errno.
 */
static inline ssize_t bu_read(struct bu_buf *b, int fd, size_t want)
{
	ssize_t n;

	if (bu_reserve(b, want))
		return -ENOMEM;
	do
		n = recv(fd, b->p + b->len, b->cap - b->len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	b->len += n;
	return n;
}

/* ---------------------------------------------------------------- HTTP */

struct bu_head {
	size_t		head_len;	/* bytes up to and including CRLFCRLF */
	size_t		body_len;	/* Content-Length (0 when absent) */
	unsigned int	status;		/* responses: the status code */
	bool		close;		/* Connection: close, or HTTP/1.0 */
};

static inline bool bu_hdr_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && line[n] == ':' && !strncasecmp(line, name, n);
}

/*
 * Parse the message head at the start of @p[0..@len).  1: parsed into @h;
 * 0: incomplete; -EBADMSG malformed or unsupported (chunked bodies).
 * @response: a status line rather than a request line.
 */
static inline int bu_parse_head(const unsigned char *p, size_t len, bool response,
				struct bu_head *h)
{
	const char *s = (const char *)p, *end, *line, *eol, *v;
	size_t ll;
	uint64_t cl, st;
	const char *e;

	end = memmem(s, len, "\r\n\r\n", 4);
	if (!end)
		return len > BU_MAX_HEAD ? -EBADMSG : 0;
	*h = (struct bu_head){ .head_len = end + 4 - s };

	eol = memchr(s, '\r', end + 2 - s);
	if (response) {
		if (eol - s < 12 || strncmp(s, "HTTP/1.", 7))
			return -EBADMSG;
		h->close = s[7] == '0';
		if (spry_parse_u64(s + 9, 3, 100, 599, &st))
			return -EBADMSG;
		h->status = (unsigned int)st;
	} else {
		if (eol - s < 14 || strncmp(eol - 8, "HTTP/1.", 7))
			return -EBADMSG;
		h->close = eol[-1] == '0';
	}
	for (line = eol + 2; line < end + 2; line = eol + 2) {
		eol = memchr(line, '\r', end + 2 - line);
		ll = eol - line;
		if (bu_hdr_is(line, ll, "content-length")) {
			for (v = line + 15; *v == ' ' || *v == '\t'; v++)
				;
			if (spry_num__parse(v, &e, 0, BU_MAX_BODY, &cl) ||
			    (*e != '\r' && *e != ' ' && *e != '\t'))
				return -EBADMSG;
			h->body_len = cl;
		} else if (bu_hdr_is(line, ll, "transfer-encoding")) {
			return -EBADMSG;
		} else if (bu_hdr_is(line, ll, "connection")) {
			if (memmem(line, ll, "close", 5))
				h->close = true;
			else if (memmem(line, ll, "keep-alive", 10))
				h->close = false;
		}
	}
	return 1;
}

/* A response head with Content-Length @len, appended to @b. */
static inline int bu_response_head(struct bu_buf *b, unsigned int status, size_t len)
{
	char head[160];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %u %s\r\nContent-Type: application/octet-stream\r\n"
		     "Content-Length: %zu\r\n\r\n",
		     status, status == 200 ? "OK" : "Error", len);
	return bu_append(b, head, n);
}

/* ------------------------------------------------------------- sockets */

static inline int bu_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -errno : fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

static inline void bu_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A non-blocking TCP listener on 127.0.0.1:@port. */
static inline int bu_listen_tcp(uint16_t port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 4096)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static inline int bu_parse_port(const char *s, uint16_t *port)
{
	return spry_port__parse(s, port);
}

#endif /* SPRY_BENCH_UTIL_H */
