// SPDX-License-Identifier: GPL-2.0-only
/*
 * Redis for the benchmarks' baselines (resp.h), over hiredis: commands are
 * sent with binary-safe arguments ("%b") and replies are hiredis's.
 */
#include <errno.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "bench/resp.h"

int redis_open(struct redis *r, uint16_t port)
{
	r->c = redisConnect("127.0.0.1", port);
	if (!r->c)
		return -ENOMEM;
	if (r->c->err) {
		redisFree(r->c);
		r->c = NULL;
		return -ECONNREFUSED;
	}
	return 0;
}

void redis_close(struct redis *r)
{
	if (r->c)
		redisFree(r->c);
	r->c = NULL;
}

/* A command's reply, NULL + errno when the connection failed. */
static redisReply *redis_do(struct redis *r, const char *fmt, const char *k, size_t kl,
			    const void *v, size_t vl)
{
	redisReply *rep = v ? redisCommand(r->c, fmt, k, kl, v, vl) :
			      redisCommand(r->c, fmt, k, kl);

	if (!rep)
		errno = r->c->err == REDIS_ERR_IO && r->c->errstr[0] ? EIO : EPROTO;
	return rep;
}

/* A bulk string @rep into @out (at most @cap bytes). */
static int redis_copy(const redisReply *rep, void *out, size_t cap, size_t *vl)
{
	if (rep->type == REDIS_REPLY_NIL)
		return -ENOENT;
	if (rep->type != REDIS_REPLY_STRING)
		return -EPROTO;
	if (rep->len > cap)
		return -EMSGSIZE;
	memcpy(out, rep->str, rep->len);
	*vl = rep->len;
	return 0;
}

int redis_set(struct redis *r, const char *k, size_t kl, const void *v, size_t vl)
{
	redisReply *rep = redis_do(r, "SET %b %b", k, kl, v, vl);
	int err;

	if (!rep)
		return -errno;
	err = rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "OK") ? 0 : -EPROTO;
	freeReplyObject(rep);
	return err;
}

int redis_get(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
	      size_t *vl)
{
	redisReply *rep = redis_do(r, "GET %b", k, kl, NULL, 0);
	int err;

	if (!rep)
		return -errno;
	err = redis_copy(rep, out, cap, vl);
	freeReplyObject(rep);
	return err;
}

int redis_del(struct redis *r, const char *k, size_t kl)
{
	redisReply *rep = redis_do(r, "DEL %b", k, kl, NULL, 0);
	int err;

	if (!rep)
		return -errno;
	err = rep->type == REDIS_REPLY_INTEGER ? 0 : -EPROTO;
	freeReplyObject(rep);
	return err;
}

int64_t redis_lpush(struct redis *r, const char *k, size_t kl, const void *v, size_t vl)
{
	redisReply *rep = redis_do(r, "LPUSH %b %b", k, kl, v, vl);
	int64_t n;

	if (!rep)
		return -errno;
	n = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -EPROTO;
	freeReplyObject(rep);
	return n;
}

int redis_brpop(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
		size_t *vl)
{
	redisReply *rep = redis_do(r, "BRPOP %b 0", k, kl, NULL, 0);
	int err;

	if (!rep)
		return -errno;
	/* the list's name, then the value */
	err = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ?
	      redis_copy(rep->element[1], out, cap, vl) : -EPROTO;
	freeReplyObject(rep);
	return err;
}
