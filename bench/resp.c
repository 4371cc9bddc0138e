// SPDX-License-Identifier: GPL-2.0-only
/*
 * A Redis client for the benchmarks' baselines (resp.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bench/resp.h"
#include "spry/spry.h"

int redis_open(struct redis *r, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&a, sizeof(a)))
		return -errno;
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r->cap = (2 << 20) + 64;
	r->buf = malloc(r->cap);
	r->len = r->pos = 0;
	return r->buf ? 0 : -ENOMEM;
}

int redis_fill(struct redis *r, size_t need)
{
	ssize_t n;

	if (r->pos && r->len - r->pos < need) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	while (r->len - r->pos < need) {
		if (r->len >= r->cap)
			return -EMSGSIZE;
		n = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		r->len += (size_t)n;
	}
	return 0;
}

/* one reply line (without CRLF) into *line, its length into *len */
int redis_line(struct redis *r, const char **line, size_t *len)
{
	char *nl;
	int err;

	for (;;) {
		nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl)
			break;
		err = redis_fill(r, r->len - r->pos + 1);
		if (err)
			return err;
	}
	*line = r->buf + r->pos;
	*len = (size_t)(nl - *line);
	if (*len && (*line)[*len - 1] == '\r')
		(*len)--;
	r->pos = (size_t)(nl - r->buf) + 1;
	return 0;
}

int redis_cmd(struct redis *r, const char *cmd, const char *key, size_t klen,
		     const void *val, size_t vlen, bool has_val)
{
	char head[128], kh[64], vh[64];
	struct iovec iov[6];
	int n = 0;
	size_t total = 0;
	ssize_t w;

	iov[n].iov_base = head;
	iov[n++].iov_len = (size_t)snprintf(head, sizeof(head), "*%d\r\n$%zu\r\n%s\r\n",
					    has_val ? 3 : 2, strlen(cmd), cmd);
	iov[n].iov_base = kh;
	iov[n++].iov_len = (size_t)snprintf(kh, sizeof(kh), "$%zu\r\n", klen);
	iov[n].iov_base = (void *)key;
	iov[n++].iov_len = klen;
	if (has_val) {
		iov[n].iov_base = vh;
		iov[n++].iov_len = (size_t)snprintf(vh, sizeof(vh), "\r\n$%zu\r\n", vlen);
		iov[n].iov_base = (void *)val;
		iov[n++].iov_len = vlen;
	}
	iov[n].iov_base = "\r\n";
	iov[n++].iov_len = 2;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	w = writev(r->fd, iov, n);
	if (w < 0)
		return -errno;
	if ((size_t)w != total) {
		/* a short write: the rest, plainly */
		size_t done = (size_t)w;

		for (int i = 0; i < n; i++) {
			size_t l = iov[i].iov_len;
			const char *p = iov[i].iov_base;

			if (done >= l) {
				done -= l;
				continue;
			}
			p += done;
			l -= done;
			done = 0;
			while (l) {
				w = write(r->fd, p, l);
				if (w <= 0)
					return -errno;
				p += w;
				l -= (size_t)w;
			}
		}
	}
	return 0;
}

int redis_set(struct redis *r, const char *k, size_t kl, const void *v, size_t vl)
{
	const char *line;
	size_t len;
	int err = redis_cmd(r, "SET", k, kl, v, vl, true);

	if (!err)
		err = redis_line(r, &line, &len);
	if (!err && (len != 3 || memcmp(line, "+OK", 3)))
		err = -EPROTO;
	return err;
}

int redis_get(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
		     size_t *vl)
{
	const char *line;
	uint64_t n;
	size_t len;
	int err = redis_cmd(r, "GET", k, kl, NULL, 0, false);

	if (!err)
		err = redis_line(r, &line, &len);
	if (err)
		return err;
	if (len < 2 || line[0] != '$' || spry_parse_u64(line + 1, len - 1, 0, cap, &n))
		return -EPROTO;
	err = redis_fill(r, (size_t)n + 2);
	if (err)
		return err;
	memcpy(out, r->buf + r->pos, (size_t)n);
	r->pos += (size_t)n + 2;
	*vl = (size_t)n;
	return 0;
}

void redis_close(struct redis *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->fd = -1;
	r->buf = NULL;
}

/* A bulk string reply ("$N" then N bytes) into @out. */
static int redis_bulk(struct redis *r, const char *line, size_t len, void *out, size_t cap,
		      size_t *vl)
{
	uint64_t n;
	int err;

	if (len < 2 || line[0] != '$' || spry_parse_u64(line + 1, len - 1, 0, cap, &n))
		return -EPROTO;
	err = redis_fill(r, (size_t)n + 2);
	if (err)
		return err;
	memcpy(out, r->buf + r->pos, (size_t)n);
	r->pos += (size_t)n + 2;
	*vl = (size_t)n;
	return 0;
}

int64_t redis_lpush(struct redis *r, const char *k, size_t kl, const void *v, size_t vl)
{
	const char *line;
	uint64_t n;
	size_t len;
	int err = redis_cmd(r, "LPUSH", k, kl, v, vl, true);

	if (!err)
		err = redis_line(r, &line, &len);
	if (err)
		return err;
	if (len < 2 || line[0] != ':' || spry_parse_u64(line + 1, len - 1, 0, INT64_MAX, &n))
		return -EPROTO;
	return (int64_t)n;
}

int redis_brpop(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
		size_t *vl)
{
	const char *line;
	size_t len, skip;
	char junk[256];
	int err = redis_cmd(r, "BRPOP", k, kl, "0", 1, true);

	/* *2, then the key, then the value */
	if (!err)
		err = redis_line(r, &line, &len);
	if (!err && (len != 2 || memcmp(line, "*2", 2)))
		err = -EPROTO;
	if (!err)
		err = redis_line(r, &line, &len);
	if (!err)
		err = redis_bulk(r, line, len, junk, sizeof(junk), &skip);
	if (!err)
		err = redis_line(r, &line, &len);
	if (!err)
		err = redis_bulk(r, line, len, out, cap, vl);
	return err;
}
