/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Redis for the benchmarks' baselines (bench/state_bench.c,
 * bench/mail_bench.c): one connection to redis-server on 127.0.0.1, a
 * command and its reply at a time, over hiredis (Debian's libhiredis, the
 * tree's one Redis client: bench/kmeans_redis.c uses it directly).
 * 0 or -errno.
 */
#ifndef SPRY_BENCH_RESP_H
#define SPRY_BENCH_RESP_H

#include <stddef.h>
#include <stdint.h>

struct redisContext;

struct redis {
	struct redisContext *c;
};

int redis_open(struct redis *r, uint16_t port);
void redis_close(struct redis *r);
int redis_set(struct redis *r, const char *k, size_t kl, const void *v, size_t vl);
/* GET into @out (at most @cap bytes), its length into *@vl; -ENOENT: none */
int redis_get(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
	      size_t *vl);
int redis_del(struct redis *r, const char *k, size_t kl);
/* LPUSH KEY VAL: the list's length after it, or -errno */
int64_t redis_lpush(struct redis *r, const char *k, size_t kl, const void *v, size_t vl);
/* BRPOP KEY 0 (waits): the value into @out (at most @cap), its length in *@vl */
int redis_brpop(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
		size_t *vl);

#endif /* SPRY_BENCH_RESP_H */
