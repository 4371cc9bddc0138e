// SPDX-License-Identifier: GPL-2.0-only
/*
 * proc_bench: local invocation latency of a cloud process (docs/PROCESS.md)
 * against its baseline, the same one-hop invocation of a plain chain, in
 * one run, interleaved.
 *
 *   proc_bench SOCK APP FN ID CHAIN N LEN [PICK]
 *
 * Each round runs 100 invocations of function FN of app APP in process ID
 * (spry_client_invoke_proc(): spryd's INVOKE, the router's sticky lookup
 * in spry_procs, the process, back) and 100 of CHAIN (spry_client_invoke():
 * the same path with the router's instance choice), alternating, until N
 * of each; LEN-byte payloads.  Every answer is checked (the payload back,
 * status OK).  Prints a markdown table: p50, p90, p99, mean in
 * microseconds for each path, and process/chain ratios.
 *
 * With PICK, a third path in the same rounds: function PICK of the same
 * process with the payload "FN " + the payload, a handler that picks FN
 * with spry_req_next() (a conditional next inside an app,
 * docs/WORKFLOWS.md: examples/counter's pick), so FN answers it after one
 * more hop through the router; its ratio to FN named directly is the cost
 * of a pick.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"

#define ROUND	100
#define MAX_LEN	4096

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

static double pct(const uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return (double)v[i < n ? i : n - 1] / 1000.0;
}

static double mean(const uint64_t *v, size_t n)
{
	double s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += (double)v[i];
	return s / (double)n / 1000.0;
}

int main(int argc, char **argv)
{
	static unsigned char in[MAX_LEN], out[MAX_LEN], want[MAX_LEN];
	static unsigned char pin[MAX_LEN + 64];
	uint64_t id, n, len, *tp, *tc, *tk = NULL, t0, done = 0;
	const char *pick = argc == 9 ? argv[8] : NULL;
	size_t plen = 0;
	struct spry_client *c;
	size_t out_len, i;
	uint32_t st;
	int err, k, round;

	if ((argc != 8 && argc != 9) || spry_parse_u64(argv[4], strlen(argv[4]), 1, (1ULL << 63) - 1, &id) ||
	    spry_parse_u64(argv[6], strlen(argv[6]), ROUND, 10000000, &n) ||
	    spry_parse_u64(argv[7], strlen(argv[7]), 1, MAX_LEN, &len)) {
		fprintf(stderr, "usage: proc_bench SOCK APP FN ID CHAIN N LEN [PICK]\n");
		return 2;
	}
	tp = calloc(n, sizeof(*tp));
	tc = calloc(n, sizeof(*tc));
	if (pick)
		tk = calloc(n, sizeof(*tk));
	c = spry_client_open(argv[1]);
	if (!tp || !tc || (pick && !tk) || !c) {
		fprintf(stderr, "proc_bench: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < len; i++) {
		in[i] = (unsigned char)('a' + i % 26);
		want[i] = (unsigned char)('A' + i % 26);
	}
	if (pick) {
		plen = strlen(argv[3]);
		if (plen + 1 > sizeof(pin) - MAX_LEN) {
			fprintf(stderr, "proc_bench: function name too long\n");
			return 2;
		}
		memcpy(pin, argv[3], plen);
		pin[plen++] = ' ';
		memcpy(pin + plen, in, len);
		plen += len;
	}
	/* warm up both paths (the process starts at its first request) */
	for (k = 0; k < 200; k++) {
		err = spry_client_invoke_proc(c, argv[2], argv[3], id, in, len, out,
					      sizeof(out), &out_len, &st);
		err = err ?: spry_client_invoke(c, argv[5], in, len, out, sizeof(out),
						&out_len, &st);
		if (!err && pick)
			err = spry_client_invoke_proc(c, argv[2], pick, id, pin, plen, out,
						      sizeof(out), &out_len, &st);
		if (!err && pick && (st != SPRY_ST_OK || out_len != len || memcmp(out, in, len)))
			err = -EBADMSG;	/* the pick not declared? (status) */
		if (err) {
			fprintf(stderr, "proc_bench: warm-up: %s\n", strerror(-err));
			return 1;
		}
	}
	for (round = 0; done < n; round++) {
		for (k = 0; k < ROUND && done + k < n; k++) {
			t0 = now_ns();
			err = spry_client_invoke_proc(c, argv[2], argv[3], id, in, len, out,
						      sizeof(out), &out_len, &st);
			tp[done + k] = now_ns() - t0;
			if (err || st != SPRY_ST_OK || out_len != len || memcmp(out, in, len)) {
				fprintf(stderr, "proc_bench: process: err %d status %u len %zu\n",
					err, st, out_len);
				return 1;
			}
		}
		for (k = 0; k < ROUND && done + k < n; k++) {
			t0 = now_ns();
			err = spry_client_invoke(c, argv[5], in, len, out, sizeof(out), &out_len,
						 &st);
			tc[done + k] = now_ns() - t0;
			if (err || st != SPRY_ST_OK || out_len != len || memcmp(out, want, len)) {
				fprintf(stderr, "proc_bench: chain: err %d status %u len %zu\n",
					err, st, out_len);
				return 1;
			}
		}
		for (k = 0; pick && k < ROUND && done + k < n; k++) {
			t0 = now_ns();
			err = spry_client_invoke_proc(c, argv[2], pick, id, pin, plen, out,
						      sizeof(out), &out_len, &st);
			tk[done + k] = now_ns() - t0;
			if (err || st != SPRY_ST_OK || out_len != len || memcmp(out, in, len)) {
				fprintf(stderr, "proc_bench: pick: err %d status %u len %zu\n",
					err, st, out_len);
				return 1;
			}
		}
		done += k;
	}
	qsort(tp, n, sizeof(*tp), cmp_u64);
	qsort(tc, n, sizeof(*tc), cmp_u64);
	printf("| path | invocations | p50 (us) | p90 (us) | p99 (us) | mean (us) |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	printf("| process %s/%" PRIu64 ", fn %s (sticky, spry_procs) | %" PRIu64
	       " | %.1f | %.1f | %.1f | %.1f |\n", argv[2], id, argv[3], n, pct(tp, n, 0.5),
	       pct(tp, n, 0.9), pct(tp, n, 0.99), mean(tp, n));
	printf("| baseline: chain %s, one function (instance choice) | %" PRIu64
	       " | %.1f | %.1f | %.1f | %.1f |\n", argv[5], n, pct(tc, n, 0.5), pct(tc, n, 0.9),
	       pct(tc, n, 0.99), mean(tc, n));
	if (pick) {
		qsort(tk, n, sizeof(*tk), cmp_u64);
		printf("| process %s/%" PRIu64 ", fn %s picking %s (one more hop) | %" PRIu64
		       " | %.1f | %.1f | %.1f | %.1f |\n", argv[2], id, pick, argv[3], n,
		       pct(tk, n, 0.5), pct(tk, n, 0.9), pct(tk, n, 0.99), mean(tk, n));
	}
	printf("\n| ratio process/baseline | p50 %.2f | p99 %.2f | mean %.2f |\n",
	       pct(tp, n, 0.5) / pct(tc, n, 0.5), pct(tp, n, 0.99) / pct(tc, n, 0.99),
	       mean(tp, n) / mean(tc, n));
	printf("| against PraaS's reported 73 us (local invocation, 10 B) | p50 %.2f |\n",
	       pct(tp, n, 0.5) / 73.0);
	if (pick)
		printf("| ratio pick/process (the cost of a pick) | p50 %.2f | p99 %.2f | mean %.2f |\n",
		       pct(tk, n, 0.5) / pct(tp, n, 0.5), pct(tk, n, 0.99) / pct(tp, n, 0.99),
		       mean(tk, n) / mean(tp, n));
	spry_client_close(c);
	free(tp);
	free(tc);
	free(tk);
	return 0;
}
