// SPDX-License-Identifier: GPL-2.0-only
/*
 * flow_bench: the workflow benchmarks' driver (bench/flow_bench.sh), each
 * against its baseline in the same run, interleaved.
 *
 *   flow_bench fan SOCK CHAIN N COUNT
 *	One client, closed loop: COUNT invocations of "P N" (flow_fn's fan:
 *	N calls in parallel, spry_req_fanout) and COUNT of "S N" (the same N
 *	calls one after the other), alternating in rounds of 20.  Prints a
 *	markdown row: N, p50 and p99 of each in us, sequential/parallel.
 *
 *   flow_bench batch SOCK CHAIN_ONE CHAIN_MANY THREADS MS
 *	THREADS clients, closed loop, 10-byte requests, for MS milliseconds
 *	on CHAIN_ONE (unbatched), then CHAIN_MANY (batched), twice each,
 *	alternating.  Prints a markdown row per chain: requests/s, p50, p99
 *	in us; and batched/unbatched throughput.
 *
 * Every answer is checked (status OK and the expected bytes).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spry/spry.h"

#define ROUND		20
#define PER_T		8192	/* latencies kept per client thread */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

static int num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (spry_parse_u64(s, strlen(s), min, max, out)) {
		fprintf(stderr, "flow_bench: '%s': expected a number in %llu..%llu\n", s,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	return 0;
}

static int invoke_check(struct spry_client *c, const char *chain, const char *in,
			const char *want)
{
	char out[256];
	size_t out_len = 0;
	uint32_t st = 0;
	int ret;

	ret = spry_client_invoke(c, chain, in, strlen(in), out, sizeof(out), &out_len, &st);
	if (ret || st != SPRY_ST_OK || out_len != strlen(want) ||
	    memcmp(out, want, out_len)) {
		fprintf(stderr, "flow_bench: %s '%s': ret %d status %u answer '%.*s'\n",
			chain, in, ret, st, (int)out_len, out);
		return -1;
	}
	return 0;
}

static int bench_fan(const char *sock, const char *chain, unsigned int n, size_t count)
{
	uint64_t *par = calloc(count, sizeof(*par)), *seq = calloc(count, sizeof(*seq));
	struct spry_client *c = spry_client_open(sock);
	char in_p[16], in_s[16], want[16];
	size_t done = 0, k;
	uint64_t t0;
	int ret = 1;

	if (!par || !seq || !c) {
		fprintf(stderr, "flow_bench: %s\n", strerror(c ? ENOMEM : errno));
		goto out;
	}
	snprintf(in_p, sizeof(in_p), "P %u", n);
	snprintf(in_s, sizeof(in_s), "S %u", n);
	snprintf(want, sizeof(want), "ok %u", n);
	/* warm up: instances placed, pools touched */
	for (k = 0; k < 20; k++)
		if (invoke_check(c, chain, in_p, want) || invoke_check(c, chain, in_s, want))
			goto out;
	while (done < count) {
		for (k = 0; k < ROUND && done + k < count; k++) {
			t0 = now_ns();
			if (invoke_check(c, chain, in_p, want))
				goto out;
			par[done + k] = now_ns() - t0;
		}
		for (k = 0; k < ROUND && done + k < count; k++) {
			t0 = now_ns();
			if (invoke_check(c, chain, in_s, want))
				goto out;
			seq[done + k] = now_ns() - t0;
		}
		done += k;
	}
	{
		double pp50 = pct_us(par, count, 0.5), pp99 = pct_us(par, count, 0.99);
		double sp50 = pct_us(seq, count, 0.5), sp99 = pct_us(seq, count, 0.99);

		printf("| %u | %.0f | %.0f | %.0f | %.0f | %.2f |\n", n, pp50, pp99, sp50, sp99,
		       pp50 > 0 ? sp50 / pp50 : 0);
	}
	ret = 0;
out:
	if (c)
		spry_client_close(c);
	free(par);
	free(seq);
	return ret;
}

struct load {
	pthread_t	tid;
	const char	*sock, *chain;
	uint64_t	end_ns;
	uint64_t	*lat;
	size_t		n_lat, n;
	int		err;
};

static void *load_run(void *arg)
{
	struct load *l = arg;
	struct spry_client *c = spry_client_open(l->sock);
	uint64_t t0;

	if (!c) {
		l->err = -errno;
		return NULL;
	}
	while ((t0 = now_ns()) < l->end_ns) {
		if (invoke_check(c, l->chain, "0123456789", "0123456789")) {
			l->err = -EIO;
			break;
		}
		if (l->n_lat < PER_T)
			l->lat[l->n_lat++] = now_ns() - t0;
		l->n++;
	}
	spry_client_close(c);
	return NULL;
}

/* THREADS clients on @chain for @ms: requests/s and latencies into @out. */
static int load_point(const char *sock, const char *chain, unsigned int threads,
		      unsigned int ms, double *rps, uint64_t *all, size_t *n_all)
{
	struct load *ls = calloc(threads, sizeof(*ls));
	uint64_t t0, total = 0;
	unsigned int i;
	int ret = 0;

	if (!ls)
		return -ENOMEM;
	t0 = now_ns();
	for (i = 0; i < threads; i++) {
		ls[i] = (struct load){ .sock = sock, .chain = chain,
				       .end_ns = t0 + (uint64_t)ms * 1000000,
				       .lat = all + *n_all + (size_t)i * (PER_T) };
		if (pthread_create(&ls[i].tid, NULL, load_run, &ls[i])) {
			ret = -EAGAIN;
			threads = i;
			break;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(ls[i].tid, NULL);
		if (ls[i].err)
			ret = ls[i].err;
		total += ls[i].n;
	}
	*rps += (double)total / ((double)(now_ns() - t0) / 1e9);
	/* pack the latencies */
	{
		size_t at = *n_all;

		for (i = 0; i < threads; i++) {
			memmove(all + at, ls[i].lat, ls[i].n_lat * sizeof(*all));
			at += ls[i].n_lat;
		}
		*n_all = at;
	}
	free(ls);
	return ret;
}

static int bench_batch(const char *sock, const char *one, const char *many,
		       unsigned int threads, unsigned int ms)
{
	size_t cap = (size_t)threads * PER_T * 3;
	uint64_t *lat1 = calloc(cap, sizeof(uint64_t)), *lat2 = calloc(cap, sizeof(uint64_t));
	size_t n1 = 0, n2 = 0;
	double r1 = 0, r2 = 0;
	int round, ret = 1;

	if (!lat1 || !lat2) {
		fprintf(stderr, "flow_bench: out of memory\n");
		goto out;
	}
	for (round = 0; round < 2; round++) {
		if (load_point(sock, one, threads, ms, &r1, lat1, &n1) ||
		    load_point(sock, many, threads, ms, &r2, lat2, &n2))
			goto out;
	}
	r1 /= 2;
	r2 /= 2;
	printf("| unbatched (%s) | %u | %.0f | %.0f | %.0f | 1.00 |\n", one, threads, r1,
	       pct_us(lat1, n1, 0.5), pct_us(lat1, n1, 0.99));
	printf("| batched (%s) | %u | %.0f | %.0f | %.0f | %.2f |\n", many, threads, r2,
	       pct_us(lat2, n2, 0.5), pct_us(lat2, n2, 0.99), r1 > 0 ? r2 / r1 : 0);
	ret = 0;
out:
	free(lat1);
	free(lat2);
	return ret;
}

int main(int argc, char **argv)
{
	uint64_t a, b;

	if (argc == 6 && !strcmp(argv[1], "fan")) {
		if (num(argv[4], 1, SPRY_FAN_MAX, &a) || num(argv[5], 1, 1000000, &b))
			return 2;
		return bench_fan(argv[2], argv[3], (unsigned int)a, (size_t)b);
	}
	if (argc == 7 && !strcmp(argv[1], "batch")) {
		if (num(argv[5], 1, 256, &a) || num(argv[6], 1, 600000, &b))
			return 2;
		return bench_batch(argv[2], argv[3], argv[4], (unsigned int)a, (unsigned int)b);
	}
	fprintf(stderr, "usage: flow_bench fan SOCK CHAIN N COUNT\n"
		"       flow_bench batch SOCK CHAIN_ONE CHAIN_MANY THREADS MS\n");
	return 2;
}
