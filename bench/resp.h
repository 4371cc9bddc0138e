/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A Redis client for the benchmarks' baselines (bench/state_bench.c,
 * bench/mail_bench.c): one connection to redis-server on 127.0.0.1,
 * request/response, RESP written and read here.  0 or -errno.
 */
#ifndef SPRY_BENCH_RESP_H
#define SPRY_BENCH_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redis {
	int fd;
	char *buf;
	size_t cap, len, pos;
};

int redis_open(struct redis *r, uint16_t port);
void redis_close(struct redis *r);
/* at least @need unread bytes in the buffer */
int redis_fill(struct redis *r, size_t need);
/* one reply line (without CRLF) into *line, its length into *len */
int redis_line(struct redis *r, const char **line, size_t *len);
/* CMD KEY [VAL] */
int redis_cmd(struct redis *r, const char *cmd, const char *key, size_t klen,
	      const void *val, size_t vlen, bool has_val);
int redis_set(struct redis *r, const char *k, size_t kl, const void *v, size_t vl);
/* GET into @out (at most @cap bytes), its length into *@vl */
int redis_get(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
	      size_t *vl);
/* LPUSH KEY VAL: the list's length after it, or -errno */
int64_t redis_lpush(struct redis *r, const char *k, size_t kl, const void *v, size_t vl);
/* BRPOP KEY 0 (waits): the value into @out (at most @cap), its length in *@vl */
int redis_brpop(struct redis *r, const char *k, size_t kl, void *out, size_t cap,
		size_t *vl);

#endif /* SPRY_BENCH_RESP_H */
