// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/mail_bench.sh's baseline driver: the mailboxes' two measures done
 * with Redis lists on loopback (redis-server on 127.0.0.1:PORT, one
 * connection per side, RESP through bench/resp.c).
 *
 *   mail_bench ping PORT N SIZE    N round trips: LPUSH of SIZE bytes to
 *       list a (acknowledged), an echo thread's BRPOP a + LPUSH b, BRPOP b;
 *       as examples/mailbox's ping against its echo
 *   mail_bench stream PORT N SIZE  N LPUSHes of SIZE bytes one after the
 *       other (each acknowledged) while a thread BRPOPs them; as
 *       examples/mailbox's stream against its drain
 *
 * Prints one line: ping "p50_ns p99_ns total_ns", stream "total_ns".
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/resp.h"
#include "spry/spry.h"

#define MAX_SIZE	(1u << 20)

static uint16_t port;
static uint64_t n_msgs;
static size_t size;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The other side: BRPOP @from, and with @to LPUSH it there; n_msgs times. */
struct side {
	const char	*from, *to;
	int		err;
};

static void *side_main(void *arg)
{
	struct side *sd = arg;
	struct redis r;
	char *buf = malloc(MAX_SIZE);
	size_t vl;
	uint64_t i;
	int64_t l;

	sd->err = buf ? redis_open(&r, port) : -ENOMEM;
	for (i = 0; !sd->err && i < n_msgs; i++) {
		sd->err = redis_brpop(&r, sd->from, 1, buf, MAX_SIZE, &vl);
		if (!sd->err && sd->to) {
			l = redis_lpush(&r, sd->to, 1, buf, vl);
			sd->err = l < 0 ? (int)l : 0;
		}
	}
	if (buf)
		redis_close(&r);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct side sd = {};
	uint64_t v, i, t0, t, *lat = NULL;
	struct redis r;
	pthread_t th;
	char *buf;
	size_t vl;
	bool ping;
	int64_t l;
	int err;

	if (argc != 5 || (strcmp(argv[1], "ping") && strcmp(argv[1], "stream"))) {
		fprintf(stderr, "usage: mail_bench ping|stream PORT N SIZE\n");
		return 2;
	}
	ping = !strcmp(argv[1], "ping");
	if (spry_parse_u64(argv[2], strlen(argv[2]), 1, 65535, &v))
		return 2;
	port = (uint16_t)v;
	if (spry_parse_u64(argv[3], strlen(argv[3]), 1, 10000000, &n_msgs) ||
	    spry_parse_u64(argv[4], strlen(argv[4]), 0, MAX_SIZE, &v))
		return 2;
	size = (size_t)v;
	buf = calloc(1, MAX_SIZE);
	lat = calloc(n_msgs, sizeof(*lat));
	if (!buf || !lat)
		return 1;
	err = redis_open(&r, port);
	if (err) {
		fprintf(stderr, "mail_bench: redis on port %u: %s\n", port, strerror(-err));
		return 1;
	}
	/* fresh lists */
	err = redis_del(&r, "a", 1) ?: redis_del(&r, "b", 1);
	if (err) {
		fprintf(stderr, "mail_bench: DEL: %s\n", strerror(-err));
		return 1;
	}
	sd.from = "a";
	sd.to = ping ? "b" : NULL;
	if (pthread_create(&th, NULL, side_main, &sd))
		return 1;
	t0 = now_ns();
	for (i = 0; i < n_msgs; i++) {
		t = now_ns();
		l = redis_lpush(&r, "a", 1, buf, size);
		if (l < 0) {
			err = (int)l;
			break;
		}
		if (ping) {
			err = redis_brpop(&r, "b", 1, buf, MAX_SIZE, &vl);
			if (err)
				break;
		}
		lat[i] = now_ns() - t;
	}
	t = now_ns() - t0;
	pthread_join(th, NULL);
	if (err || sd.err) {
		fprintf(stderr, "mail_bench: %s at %llu: %s\n", argv[1], (unsigned long long)i,
			strerror(-(err ?: sd.err)));
		return 1;
	}
	if (ping) {
		qsort(lat, n_msgs, sizeof(*lat), cmp_u64);
		printf("%llu %llu %llu\n", (unsigned long long)lat[n_msgs / 2],
		       (unsigned long long)lat[n_msgs * 99 / 100], (unsigned long long)t);
	} else {
		printf("%llu\n", (unsigned long long)t);
	}
	redis_close(&r);
	free(lat);
	free(buf);
	return 0;
}
