// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/state_bench.sh's driver: the process state (include/spry/state.h)
 * against Redis on loopback, and its swap.
 *
 *   state_bench kv DIR PORT [SECS]   put/get latency and throughput,
 *       64 B .. 1 MiB values, one thread: spry_state_put/get on a store
 *       in DIR (tmpfs) against SET/GET to redis-server on 127.0.0.1:PORT
 *       (one connection, request/response, RESP written and read here)
 *   state_bench swap DIR SWAPDIR MAX  swap out, wake, first get and full
 *       load against the state size (1 MiB .. MAX bytes, x4 each step;
 *       the median of 5 cycles up to 64 MiB, one above)
 *
 * Prints markdown tables (and "# " notes) on stdout.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bench/resp.h"
#include "fn-runtime/parse.h"
#include "spry/state.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct lat {
	double p50, p99, ops;	/* us, us, operations/s */
};

static void summarize(double *t, int n, struct lat *l)
{
	qsort(t, n, sizeof(*t), cmp_d);
	l->p50 = t[n / 2];
	l->p99 = t[(int)(n * 0.99)];
}

/* ----------------------------------------------------------------- kv */

static const size_t sizes[] = { 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))
#define N_KEYS 64

static int ops_for(size_t size, double secs, bool redis)
{
	/* about SECS of work per point, by the size's cost */
	double per = redis ? 40 + size / 300.0 : 0.2 + size / 8000.0;	/* us */
	double n = secs * 1e6 / per;

	if (n < 200)
		n = 200;
	if (n > 2000000)
		n = 2000000;
	return (int)n;
}

static int run_kv(const char *dir, uint16_t port, double secs)
{
	struct lat sp[N_SIZES][2], rd[N_SIZES][2];
	struct spry_state_opts o = { .size = 256ULL << 20, .max_keys = 4096 };
	char path[512], keys[N_KEYS][16];
	size_t klens[N_KEYS];
	struct spry_state *st;
	struct redis r;
	uint8_t *val, *out;
	double *t;
	size_t si, vl;
	int i, n, err;

	snprintf(path, sizeof(path), "%s/kv", dir);
	unlink(path);
	st = spry_state_open(path, &o);
	if (!st) {
		fprintf(stderr, "state_bench: %s\n", spry_state_error());
		return 1;
	}
	err = redis_open(&r, port);
	if (err) {
		fprintf(stderr, "state_bench: redis on 127.0.0.1:%u: %s\n", port, strerror(-err));
		return 1;
	}
	val = malloc(1 << 20);
	out = malloc(1 << 20);
	t = malloc(sizeof(*t) * 2000000);
	if (!val || !out || !t)
		return 1;
	for (i = 0; i < (1 << 20); i++)
		val[i] = (uint8_t)(i * 131 + 7);
	for (i = 0; i < N_KEYS; i++)
		klens[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "key:%d", i);
	for (si = 0; si < N_SIZES; si++) {
		size_t sz = sizes[si];
		double t0 = 0, tall;

		for (int sys = 0; sys < 2; sys++) {
			n = ops_for(sz, secs, sys);
			/* put, then get: per-operation latency, then a loop
			 * without the clock for the throughput */
			for (int op = 0; op < 2; op++) {
				struct lat *l = sys ? &rd[si][op] : &sp[si][op];

				/* pass 0: latency; 1..3: throughput, the best of three
				 * (a shared machine preempts a loop now and then) */
				l->ops = 0;
				for (int pass = 0; pass < 4; pass++) {
					tall = now_us();
					for (i = 0; i < n; i++) {
						const char *k = keys[i % N_KEYS];
						size_t kl = klens[i % N_KEYS];

						if (!pass)
							t0 = now_us();
						if (op == 0)
							err = sys ? redis_set(&r, k, kl, val, sz) :
								    spry_state_put(st, k, kl, val, sz);
						else
							err = sys ? redis_get(&r, k, kl, out, 1 << 20, &vl) :
								    spry_state_get(st, k, kl, out, 1 << 20, &vl);
						if (!pass)
							t[i] = now_us() - t0;
						if (err || (op == 1 && vl != sz)) {
							fprintf(stderr, "state_bench: %s %zu: %d %s\n",
								op ? "get" : "put", sz, err,
								sys ? "" : spry_state_error());
							return 1;
						}
					}
					if (!pass) {
						summarize(t, n, l);
					} else {
						double ops = n / ((now_us() - tall) / 1e6);

						if (ops > l->ops)
							l->ops = ops;
					}
				}
				if (op == 1 && memcmp(out, val, sz)) {
					fprintf(stderr, "state_bench: get %zu: wrong bytes\n", sz);
					return 1;
				}
			}
		}
		fprintf(stderr, "state_bench: %zu B done\n", sz);
	}
	printf("| value | op | spry p50 us | spry p99 us | spry ops/s | redis p50 us | redis p99 us | redis ops/s | p50 redis/spry | ops/s spry/redis |\n");
	printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (si = 0; si < N_SIZES; si++)
		for (int op = 0; op < 2; op++) {
			struct lat *a = &sp[si][op], *b = &rd[si][op];

			printf("| %zu | %s | %.3f | %.3f | %.0f | %.1f | %.1f | %.0f | %.0fx | %.0fx |\n",
			       sizes[si], op ? "get" : "put", a->p50, a->p99, a->ops, b->p50, b->p99,
			       b->ops, b->p50 / (a->p50 > 0 ? a->p50 : 1e-3),
			       a->ops / (b->ops > 0 ? b->ops : 1));
		}
	spry_state_close(st);
	unlink(path);
	redis_close(&r);
	free(val);
	free(out);
	free(t);
	return 0;
}

/* ----------------------------------------------------------------- swap */

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[n / 2];
}

static int run_swap(const char *dir, const char *swapdir, uint64_t max)
{
	const size_t vlen = (64 << 10) - 128;
	char path[512], key[32];
	uint8_t *val, *out;
	uint64_t size;

	snprintf(path, sizeof(path), "%s/sw", dir);
	val = malloc(vlen);
	out = malloc(vlen);
	if (!val || !out)
		return 1;
	for (size_t i = 0; i < vlen; i++)
		val[i] = (uint8_t)(i * 29 + 3);
	printf("| state | values | runs | swap out ms | wake ms | first get ms | wake + first get ms | rest loaded ms | swap file MiB |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size = 1 << 20; size <= max; size *= 4) {
		int nv = (int)(size / (64 << 10)), i, err;
		struct spry_state_opts o = { .size = size + size / 16 + (4 << 20),
					     .max_keys = (uint32_t)nv + 1024 };
		double t0, t_out, t_wake, t_first, t_rest, t_both;
		double r_out[5], r_wake[5], r_first[5], r_rest[5], r_both[5];
		int rep, reps;
		struct spry_state *st;
		size_t vl;
		char sp[600];
		FILE *f;
		long fsz = 0;

		spry_state_unlink(path, swapdir);
		st = spry_state_open(path, &o);
		if (!st) {
			fprintf(stderr, "state_bench: %s\n", spry_state_error());
			return 1;
		}
		for (i = 0; i < nv; i++) {
			int kl = snprintf(key, sizeof(key), "v%d", i);

			memcpy(val, &i, sizeof(i));
			if (spry_state_put(st, key, (size_t)kl, val, vlen)) {
				fprintf(stderr, "state_bench: fill: %s\n", spry_state_error());
				return 1;
			}
		}
		reps = size <= (64 << 20) ? 5 : 1;
		for (rep = 0; rep < reps; rep++) {
			t0 = now_us();
			err = spry_state_swap_out(st, swapdir, "bench");
			r_out[rep] = now_us() - t0;
			if (err) {
				fprintf(stderr, "state_bench: swap out: %s\n", spry_state_error());
				return 1;
			}
			snprintf(sp, sizeof(sp), "%s/sw.swap", swapdir);
			f = fopen(sp, "r");
			if (f) {
				fseek(f, 0, SEEK_END);
				fsz = ftell(f);
				fclose(f);
			}
			t0 = now_us();
			st = spry_state_open_swap(path, swapdir, "bench", NULL);
			r_wake[rep] = now_us() - t0;
			if (!st) {
				fprintf(stderr, "state_bench: wake: %s\n", spry_state_error());
				return 1;
			}
			t0 = now_us();
			i = (nv / 2 + rep * 7) % nv;
			snprintf(key, sizeof(key), "v%d", i);
			err = spry_state_get(st, key, strlen(key), out, vlen, &vl);
			r_first[rep] = now_us() - t0;
			memcpy(val, &i, sizeof(i));
			if (err || vl != vlen || memcmp(out, val, vlen)) {
				fprintf(stderr, "state_bench: first get: %s\n", spry_state_error());
				return 1;
			}
			t0 = now_us();
			err = spry_state_prefetch(st, UINT64_MAX);
			r_rest[rep] = now_us() - t0;
			r_both[rep] = r_wake[rep] + r_first[rep];
			if (err) {
				fprintf(stderr, "state_bench: prefetch: %s\n", spry_state_error());
				return 1;
			}
		}
		t_out = median(r_out, reps);
		t_wake = median(r_wake, reps);
		t_first = median(r_first, reps);
		t_rest = median(r_rest, reps);
		t_both = median(r_both, reps);
		spry_state_close(st);
		printf("| %llu MiB | %d | %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f |\n",
		       (unsigned long long)(size >> 20), nv, reps, t_out / 1e3, t_wake / 1e3,
		       t_first / 1e3, t_both / 1e3, t_rest / 1e3, fsz / 1048576.0);
		fflush(stdout);
		fprintf(stderr, "state_bench: swap %llu MiB done\n", (unsigned long long)(size >> 20));
	}
	spry_state_unlink(path, swapdir);
	free(val);
	free(out);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t v;

	if (argc >= 4 && !strcmp(argv[1], "kv")) {
		double secs = 1;

		if (spry_num__parse(argv[3], NULL, 1, 65535, &v)) {
			fprintf(stderr, "state_bench: bad port '%s'\n", argv[3]);
			return 2;
		}
		if (argc > 4) {
			uint64_t ns;

			if (spry_secs__parse(argv[4], 1000000, 600000000000ULL, &ns)) {
				fprintf(stderr, "state_bench: bad seconds '%s'\n", argv[4]);
				return 2;
			}
			secs = ns / 1e9;
		}
		return run_kv(argv[2], (uint16_t)v, secs);
	}
	if (argc == 5 && !strcmp(argv[1], "swap")) {
		if (spry_num__parse(argv[4], NULL, 1 << 20, 1ULL << 34, &v)) {
			fprintf(stderr, "state_bench: bad size '%s'\n", argv[4]);
			return 2;
		}
		return run_swap(argv[2], argv[3], v);
	}
	fprintf(stderr, "usage: state_bench kv DIR PORT [SECS] | swap DIR SWAPDIR MAX_BYTES\n");
	return 2;
}
