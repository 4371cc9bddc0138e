// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A client of spryd's request entry: INVOKE on the control socket, one
 * RESULT back.  One request at a time per client (a client is not
 * thread-safe: open one per thread).
 *
 * A transport or protocol failure leaves the connection in an unknown
 * state (a late RESULT could be taken for the next request's), so the
 * client drops it and reconnects on the next invoke.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "fn-runtime/proto.h"
#include "spry/spry.h"

/* Bound on one invoke when spryd itself stops answering. */
#define CLIENT_TIMEOUT_S	60

struct spry_client {
	int	fd;
	char	*path;		/* NULL: default */
	uint8_t	*tx;		/* SPRY_CTL_MAX_MSG */
	uint8_t	*rx;		/* SPRY_CTL_MAX_MSG */
};

static int client_connect(struct spry_client *c)
{
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };
	int fd, err;

	fd = spry_ctl_connect(c->path);
	if (fd < 0)
		return fd;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		err = -errno;
		close(fd);
		return err;
	}
	c->fd = fd;
	return 0;
}

static void client_drop(struct spry_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

SPRY_API struct spry_client *spry_client_open(const char *sock_path)
{
	struct spry_client *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = -1;
	if (sock_path) {
		c->path = strdup(sock_path);
		if (!c->path) {
			err = -ENOMEM;
			goto err_free;
		}
	}
	c->tx = malloc(SPRY_CTL_MAX_MSG);
	c->rx = malloc(SPRY_CTL_MAX_MSG);
	if (!c->tx || !c->rx) {
		err = -ENOMEM;
		goto err_free;
	}
	err = client_connect(c);
	if (err)
		goto err_free;
	return c;

err_free:
	free(c->rx);
	free(c->tx);
	free(c->path);
	free(c);
	errno = -err;
	return NULL;
}

SPRY_API void spry_client_close(struct spry_client *c)
{
	if (!c)
		return;
	client_drop(c);
	free(c->rx);
	free(c->tx);
	free(c->path);
	free(c);
}

static int client_invoke(struct spry_client *c, const char *chain, const char *fn,
			 uint64_t key, const void *in, size_t in_len, void *out,
			 size_t out_cap, size_t *out_len, uint32_t *status);

SPRY_API int spry_client_invoke(struct spry_client *c, const char *chain,
				const void *in, size_t in_len, void *out,
				size_t out_cap, size_t *out_len, uint32_t *status)
{
	return client_invoke(c, chain, NULL, 0, in, in_len, out, out_cap, out_len, status);
}

SPRY_API int spry_client_invoke_proc(struct spry_client *c, const char *app,
				     const char *fn, uint64_t id, const void *in,
				     size_t in_len, void *out, size_t out_cap,
				     size_t *out_len, uint32_t *status)
{
	if (!fn || !*fn)
		return -EINVAL;
	return client_invoke(c, app, fn, id, in, in_len, out, out_cap, out_len, status);
}

static int client_invoke(struct spry_client *c, const char *chain, const char *fn,
			 uint64_t key, const void *in, size_t in_len, void *out,
			 size_t out_cap, size_t *out_len, uint32_t *status)
{
	const size_t body_max = SPRY_CTL_MAX_MSG - sizeof(struct spry_ctl_hdr);
	struct spry_ctl_invoke *inv;
	struct spry_ctl_result res;
	struct spry_ctl_hdr hdr;
	size_t clen, flen = fn ? strlen(fn) : 0;
	int ret;

	if (!c || !chain || (in_len && !in) || (out_cap && !out))
		return -EINVAL;
	clen = strlen(chain);
	if (!clen || clen >= SPRY_NAME_LEN || flen >= SPRY_NAME_LEN)
		return -EINVAL;
	if (in_len > body_max - sizeof(*inv))
		return -EMSGSIZE;
	if (c->fd < 0) {
		ret = client_connect(c);
		if (ret)
			return ret;
	}

	inv = (struct spry_ctl_invoke *)c->tx;
	memset(inv, 0, sizeof(*inv));
	memcpy(inv->chain, chain, clen);
	if (flen)
		memcpy(inv->fn, fn, flen);
	if (key) {
		inv->key = key;
		inv->flags = SPRY_DF_STICKY;
	}
	inv->len = in_len;
	if (in_len)
		memcpy(c->tx + sizeof(*inv), in, in_len);
	ret = spry_ctl_send(c->fd, SPRY_CTL_INVOKE, 0, inv, sizeof(*inv) + in_len, -1);
	if (ret)
		goto err_drop;

	ret = spry_ctl_recv(c->fd, c->rx, body_max, &hdr, NULL);
	if (ret < 0) {
		/* -ENOTCONN: spryd closed the connection (went away). */
		if (ret == -EAGAIN || ret == -EWOULDBLOCK)
			ret = -ETIMEDOUT;
		goto err_drop;
	}
	if (hdr.type != SPRY_CTL_RESULT || hdr.status > 0) {
		ret = -EPROTO;
		goto err_drop;
	}
	if (hdr.status < 0)
		return hdr.status;	/* refused; the connection is in step */
	if ((size_t)ret < sizeof(res)) {
		ret = -EPROTO;
		goto err_drop;
	}
	memcpy(&res, c->rx, sizeof(res));
	if (res.len != (size_t)ret - sizeof(res) || res.status >= SPRY_ST_MAX) {
		ret = -EPROTO;
		goto err_drop;
	}
	if (status)
		*status = res.status;
	if (out_len)
		*out_len = res.len;
	if (res.len > out_cap)
		return -EMSGSIZE;
	if (res.len)
		memcpy(out, c->rx + sizeof(res), res.len);
	return 0;

err_drop:
	client_drop(c);
	return ret;
}
