// SPDX-License-Identifier: GPL-2.0-only
/*
 * kmeans_redis: examples/kmeans's algorithm keeping its state in Redis,
 * the baseline of bench/kmeans_bench.sh: what a FaaS function does without
 * a process state.  An app (docs/PROCESS.md) with the same functions,
 * payloads and answers as examples/kmeans (load, step, show; the arithmetic
 * of examples/kmeans.h), invoked the same way, but its processes keep
 * nothing between requests: every step reads its shard, assignments and
 * centroids from redis-server (one MGET), and the partial sums go through
 * Redis lists (RPUSH to each other shard's list, BLPOP of its own), then
 * the new assignments and centroids are written back (one pipelined
 * MULTI/SET/SET/EXEC).  Client: hiredis, one connection per process, kept
 * open across requests (a warm function's connection).
 *
 *   kmeans_redis --redis PORT --chain APP --fn proc [...]  (as spryd starts it)
 *
 * Keys: km:<process id>:{params,pts,asg0,asg1,cur} (as examples/kmeans's
 * state), km:mb:<shard> (the shard's mailbox, emptied by load).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <spry/spry.h>

#include "examples/kmeans.h"

#define KM_RECV_TIMEOUT_S	10

struct km_cur {
	uint32_t	iter;
	uint32_t	pad;
	uint64_t	changed;
	/* then int64_t counts[k], cent[k * dim] */
};
_Static_assert(sizeof(struct km_cur) == 16, "km_cur is stored as is");
#define KM_CUR_SIZE(k, dim)	(sizeof(struct km_cur) + (size_t)(k) * ((dim) + 1) * sizeof(int64_t))

static uint16_t redis_port;
static redisContext *rc;

/* The connection (made on first use, again after an error): NULL + @why. */
static redisContext *conn(const char **why)
{
	struct timeval tv = { .tv_sec = 5 };

	if (rc && !rc->err)
		return rc;
	if (rc)
		redisFree(rc);
	rc = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
	if (!rc || rc->err) {
		*why = rc ? rc->errstr : "out of memory";
		return NULL;
	}
	return rc;
}

static int reply_err(struct spry_req *req, redisReply *r, const char *what)
{
	int err;

	if (!r)
		err = spry_req_error(req, 502, -EIO, "redis %s: %s", what,
				     rc && rc->err ? rc->errstr : "no reply");
	else
		err = spry_req_error(req, 502, -EIO, "redis %s: %.*s", what,
				     r->type == REDIS_REPLY_ERROR ? (int)r->len : 10,
				     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected");
	if (r)
		freeReplyObject(r);
	return err;
}

/* Read @n pipelined replies; 0 when none is an error. */
static int drain(int n, redisReply **bad)
{
	redisReply *r;
	int i, ret = 0;

	*bad = NULL;
	for (i = 0; i < n; i++) {
		if (redisGetReply(rc, (void **)&r) != REDIS_OK)
			return -EIO;
		if (r->type == REDIS_REPLY_ERROR && !*bad) {
			*bad = r;
			ret = -EIO;
			continue;
		}
		freeReplyObject(r);
	}
	return ret;
}

static int load(struct spry_req *req, void *user)
{
	uint64_t id = spry_process_id(), lo, hi;
	struct km_cur *cur = NULL;
	const char *why, *in;
	redisReply *bad = NULL;
	struct km_params p;
	uint32_t *asg = NULL;
	int32_t *x = NULL;
	char out[128];
	size_t len;
	int err, n;

	(void)user;
	in = spry_req_data(req, &len);
	if (km_params_parse(in, len, &p, spry_parse_u64, &why))
		return spry_req_error(req, 400, -EINVAL, "%s", why);
	if (!conn(&why))
		return spry_req_error(req, 502, -ECONNREFUSED, "redis: %s", why);
	km_shard(&p, &lo, &hi);
	x = malloc((hi - lo) * p.dim * sizeof(*x) + 1);
	asg = malloc((hi - lo) * sizeof(*asg) + 1);
	cur = calloc(1, KM_CUR_SIZE(p.k, p.dim));
	if (!x || !asg || !cur) {
		err = spry_req_error(req, 500, -ENOMEM, "out of memory");
		goto out;
	}
	km_points(&p, lo, hi, x);
	memset(asg, 0xff, (hi - lo) * sizeof(*asg));
	km_init_centroids(&p, (int64_t *)(cur + 1) + p.k);
	redisAppendCommand(rc, "MULTI");
	redisAppendCommand(rc, "DEL km:mb:%u", p.rank);
	redisAppendCommand(rc, "SET km:%" PRIu64 ":params %b", id, &p, sizeof(p));
	redisAppendCommand(rc, "SET km:%" PRIu64 ":pts %b", id, x, (hi - lo) * p.dim * sizeof(*x));
	redisAppendCommand(rc, "SET km:%" PRIu64 ":asg0 %b", id, asg, (hi - lo) * sizeof(*asg));
	redisAppendCommand(rc, "SET km:%" PRIu64 ":asg1 %b", id, asg, (hi - lo) * sizeof(*asg));
	redisAppendCommand(rc, "SET km:%" PRIu64 ":cur %b", id, cur, KM_CUR_SIZE(p.k, p.dim));
	redisAppendCommand(rc, "EXEC");
	if (drain(8, &bad)) {
		err = reply_err(req, bad, "load");
		goto out;
	}
	n = snprintf(out, sizeof(out), "loaded shard %u of %u points %" PRIu64 "..%" PRIu64 "\n",
		     p.rank, p.nproc, lo, hi);
	err = spry_req_reply(req, 0, "text/plain", out, (size_t)n);
out:
	free(cur);
	free(asg);
	free(x);
	return err;
}

/* The state of this process: one MGET of its keys; 0 or an answer sent. */
static int fetch(struct spry_req *req, bool all, redisReply **out,
		 struct km_params *p, const struct km_cur **cur)
{
	uint64_t id = spry_process_id();
	const char *why;
	redisReply *r;

	if (!conn(&why))
		return spry_req_error(req, 502, -ECONNREFUSED, "redis: %s", why);
	if (all)
		/* both assignment keys: which one is the iteration's is in cur */
		r = redisCommand(rc, "MGET km:%" PRIu64 ":params km:%" PRIu64 ":cur km:%" PRIu64
				 ":pts km:%" PRIu64 ":asg0 km:%" PRIu64 ":asg1", id, id, id, id, id);
	else
		r = redisCommand(rc, "MGET km:%" PRIu64 ":params km:%" PRIu64 ":cur", id, id);
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != (all ? 5u : 2u))
		return reply_err(req, r, "MGET");
	if (r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return spry_req_error(req, 409, -ENOENT, "no data set loaded (load first)");
	}
	if (r->element[0]->len != sizeof(*p)) {
		freeReplyObject(r);
		return spry_req_error(req, 500, -EBADMSG, "redis: bad params");
	}
	memcpy(p, r->element[0]->str, sizeof(*p));
	if (r->element[1]->len != KM_CUR_SIZE(p->k, p->dim)) {
		freeReplyObject(r);
		return spry_req_error(req, 500, -EBADMSG, "redis: bad cur");
	}
	*cur = (const struct km_cur *)r->element[1]->str;
	*out = r;
	return 0;
}

static int step(struct spry_req *req, void *user)
{
	uint64_t id = spry_process_id(), iter, lo, hi, count;
	redisReply *st = NULL, *r, *bad;
	char text[KM_TEXT_MAX];
	bool seen[KM_P_MAX] = { false };
	const struct km_cur *cur;
	struct km_cur *next = NULL;
	struct km_msg *msg = NULL;
	const struct km_msg *m;
	int64_t *sums, *counts, *tsums = NULL, *cent;
	const int64_t *ms;
	uint32_t *asg_new = NULL, q, got = 0;
	const redisReply *xr, *ar;
	struct km_params p;
	const char *in, *why;
	size_t len, kd, j, size;
	int err;

	(void)user;
	in = spry_req_data(req, &len);
	if (spry_parse_u64(in, len, 1, KM_ITER_MAX, &iter))
		return spry_req_error(req, 400, -EINVAL, "want the iteration's number (1..%u)",
				      KM_ITER_MAX);
	err = fetch(req, true, &st, &p, &cur);
	if (err)
		return err;
	if (iter != (uint64_t)cur->iter + 1) {
		err = spry_req_error(req, 409, -EALREADY, "at iteration %u: the next is %u",
				     cur->iter, cur->iter + 1);
		goto out;
	}
	km_shard(&p, &lo, &hi);
	count = hi - lo;
	kd = (size_t)p.k * p.dim;
	size = KM_MSG_SIZE(p.k, p.dim);
	xr = st->element[2];
	ar = st->element[3 + ((iter - 1) & 1)];
	if (xr->type != REDIS_REPLY_STRING || xr->len != count * p.dim * sizeof(int32_t) ||
	    ar->type != REDIS_REPLY_STRING || ar->len != count * sizeof(uint32_t)) {
		err = spry_req_error(req, 500, -EBADMSG, "redis: no or bad points or assignments");
		goto out;
	}
	msg = malloc(size);
	next = malloc(KM_CUR_SIZE(p.k, p.dim));
	tsums = malloc(kd * sizeof(*tsums));
	asg_new = malloc(count * sizeof(*asg_new) + 1);
	if (!msg || !next || !tsums || !asg_new) {
		err = spry_req_error(req, 500, -ENOMEM, "out of memory");
		goto out;
	}
	*msg = (struct km_msg){ .magic = KM_MSG_MAGIC, .iter = (uint32_t)iter, .rank = p.rank,
				.nproc = p.nproc, .k = p.k, .dim = p.dim };
	sums = (int64_t *)(msg + 1);
	counts = sums + kd;
	/* the points and assignments read in place (hiredis mallocs each string) */
	msg->changed = km_assign(p.k, p.dim, (const int64_t *)(cur + 1) + p.k,
				 (const int32_t *)xr->str, count, (const uint32_t *)ar->str,
				 asg_new, sums, counts);
	*next = (struct km_cur){ .iter = (uint32_t)iter, .changed = msg->changed };
	memcpy(next + 1, counts, p.k * sizeof(*counts));
	cent = (int64_t *)(next + 1) + p.k;
	memcpy(cent, (const int64_t *)(cur + 1) + p.k, kd * sizeof(*cent));
	memcpy(tsums, sums, kd * sizeof(*tsums));

	/* the exchange: RPUSH to every other shard, BLPOP our own */
	for (q = 0; q < p.nproc; q++)
		if (q != p.rank)
			redisAppendCommand(rc, "RPUSH km:mb:%u %b", q, msg, size);
	if (drain((int)p.nproc - 1, &bad)) {
		err = reply_err(req, bad, "RPUSH");
		goto out;
	}
	seen[p.rank] = true;
	while (got < p.nproc - 1) {
		r = redisCommand(rc, "BLPOP km:mb:%u %d", p.rank, KM_RECV_TIMEOUT_S);
		if (r && r->type == REDIS_REPLY_NIL) {
			freeReplyObject(r);
			err = spry_req_error(req, 504, -ETIMEDOUT,
					     "iteration %" PRIu64 ": %u of %u partial sums received",
					     iter, got, p.nproc - 1);
			goto out;
		}
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[1]->type != REDIS_REPLY_STRING) {
			err = reply_err(req, r, "BLPOP");
			goto out;
		}
		m = (const struct km_msg *)r->element[1]->str;
		why = NULL;
		if (!km_msg_check(&p, m, r->element[1]->len, &why) && m->iter >= iter &&
		    (m->iter > iter || seen[m->rank]))
			why = "a later iteration or a second message of a shard";
		if (why) {
			err = spry_req_error(req, 502, -EPROTO, "%s", why);
			freeReplyObject(r);
			goto out;
		}
		if (m->iter == iter) {
			seen[m->rank] = true;
			got++;
			ms = (const int64_t *)(m + 1);
			for (j = 0; j < kd; j++)
				tsums[j] += ms[j];
			for (j = 0; j < p.k; j++)
				((int64_t *)(next + 1))[j] += ms[kd + j];
			next->changed += m->changed;
		}
		freeReplyObject(r);
	}
	km_update(p.k, p.dim, tsums, (int64_t *)(next + 1), cent);

	/* commit: the assignments and the iteration with its centroids */
	redisAppendCommand(rc, "MULTI");
	redisAppendCommand(rc, "SET km:%" PRIu64 ":asg%u %b", id, (unsigned int)(iter & 1),
			   asg_new, count * sizeof(*asg_new));
	redisAppendCommand(rc, "SET km:%" PRIu64 ":cur %b", id, next, KM_CUR_SIZE(p.k, p.dim));
	redisAppendCommand(rc, "EXEC");
	if (drain(4, &bad)) {
		err = reply_err(req, bad, "SET");
		goto out;
	}
	len = km_text(text, (uint32_t)iter, next->changed, p.k, p.dim,
		      (const int64_t *)(next + 1), cent);
	err = spry_req_reply(req, 0, "text/plain", text, len);
out:
	free(asg_new);
	free(tsums);
	free(next);
	free(msg);
	freeReplyObject(st);
	return err;
}

static int show(struct spry_req *req, void *user)
{
	char text[KM_TEXT_MAX];
	const struct km_cur *cur;
	const int64_t *counts;
	struct km_params p;
	redisReply *st;
	size_t len;
	int err;

	(void)user;
	err = fetch(req, false, &st, &p, &cur);
	if (err)
		return err;
	counts = (const int64_t *)(cur + 1);
	len = km_text(text, cur->iter, cur->changed, p.k, p.dim, counts, counts + p.k);
	freeReplyObject(st);
	return spry_req_reply(req, 0, "text/plain", text, len);
}

int main(int argc, char **argv)
{
	static const struct spry_app_fn fns[] = {
		{ "load",	load },
		{ "step",	step },
		{ "show",	show },
	};
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	uint64_t port = 0;
	int i, n = 0, ret;

	if (!args)
		return 1;
	/* take --redis PORT out; the rest is the common function command line */
	for (i = 0; i < argc; i++) {
		if (i && !strcmp(argv[i], "--redis") && i + 1 < argc) {
			i++;
			if (spry_parse_u64(argv[i], strlen(argv[i]), 1, 65535, &port)) {
				fprintf(stderr, "%s: --redis wants a port (1-65535), not '%s'\n",
					argv[0], argv[i]);
				free(args);
				return 2;
			}
		} else {
			args[n++] = argv[i];
		}
	}
	if (!port) {
		fprintf(stderr, "usage: %s --redis PORT --chain APP --fn proc [--sock PATH]\n", argv[0]);
		free(args);
		return 2;
	}
	redis_port = (uint16_t)port;
	ret = spry_app_main(n, args, fns, sizeof(fns) / sizeof(fns[0]), NULL);
	if (rc)
		redisFree(rc);
	free(args);
	return ret;
}
