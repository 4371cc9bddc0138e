// SPDX-License-Identifier: GPL-2.0-only
/*
 * flow_fn: the functions of bench/flow_bench.sh (docs/WORKFLOWS.md), one
 * program, the function its --fn.
 *
 *   fan    payload "P N" or "S N": N calls of `work`, in parallel
 *          (spry_req_fanout) or one after the other (spry_req_call);
 *          answers "ok N" when all N answered, else fails.
 *   work   waits --work-us microseconds (a service waiting on I/O), then
 *          echoes its input.
 *   one    unbatched: --call-us of fixed cost (busy: the per-invocation
 *          setup of a batched model call) per request, then echo.
 *   many   batched (spry_fn_run_batch, --batch-max, --batch-wait-us): the
 *          same fixed cost once per batch, then echo each request.
 *
 *   flow_fn --chain C --fn F [--sock S] [--quiet] [--work-us US]
 *           [--call-us US] [--batch-max N] [--batch-wait-us US]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spry/spry.h"
#include "examples/opts.h"

#define FAN_N_MAX	SPRY_FAN_MAX
#define TIMEOUT_MS	5000

static unsigned int work_us = 1000, call_us = 200;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void busy_us(unsigned int us)
{
	uint64_t end = now_ns() + (uint64_t)us * 1000;

	while (now_ns() < end)
		;
}

static int fan(struct spry_req *req, void *user)
{
	struct spry_fanout br[FAN_N_MAX];
	char out[FAN_N_MAX][16], msg[32];
	static const char in[] = "0123456789";
	const char *p;
	uint64_t n;
	size_t len, i, got;
	int ok = 0, ret, m;

	(void)user;
	p = spry_req_data(req, &len);
	if (len < 3 || (p[0] != 'P' && p[0] != 'S') || p[1] != ' ' ||
	    spry_parse_u64(p + 2, len - 2, 1, FAN_N_MAX, &n))
		return spry_req_error(req, 400, -EINVAL, "expected 'P N' or 'S N' (N 1..%d)",
				      FAN_N_MAX);
	if (p[0] == 'P') {
		memset(br, 0, sizeof(br));
		for (i = 0; i < n; i++) {
			br[i].fn = "work";
			br[i].in = in;
			br[i].in_len = 10;
			br[i].out = out[i];
			br[i].out_cap = sizeof(out[i]);
		}
		ok = spry_req_fanout(req, br, n, TIMEOUT_MS);
	} else {
		for (i = 0; i < n; i++) {
			ret = spry_req_call(req, "work", in, 10, out[0], sizeof(out[0]), &got,
					    TIMEOUT_MS);
			ok += !ret;
		}
	}
	if (ok != (int)n)
		return spry_req_error(req, 502, -EREMOTEIO, "%d of %d answered", ok, (int)n);
	m = snprintf(msg, sizeof(msg), "ok %d", ok);
	return spry_req_reply(req, 0, NULL, msg, (size_t)m);
}

static int work(struct spry_req *req, void *user)
{
	struct timespec ts = { .tv_sec = work_us / 1000000,
			       .tv_nsec = (long)(work_us % 1000000) * 1000 };

	(void)req;
	(void)user;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	return 0;
}

static int one(struct spry_req *req, void *user)
{
	(void)req;
	(void)user;
	busy_us(call_us);
	return 0;
}

static void many(struct spry_req *const *reqs, int *rets, size_t n, void *user)
{
	(void)reqs;
	(void)rets;
	(void)n;
	(void)user;
	busy_us(call_us);
}

int main(int argc, char **argv)
{
	struct spry_batch_opts bopts = { .max = 32, .wait_us = 0 };
	struct spry_fn_opts opts;
	int ret;

	if (example_take_u32("flow_fn", &argc, argv, "--work-us", 1000000, &work_us) < 0 ||
	    example_take_u32("flow_fn", &argc, argv, "--call-us", 1000000, &call_us) < 0 ||
	    example_take_u32("flow_fn", &argc, argv, "--batch-max", SPRY_BATCH_MAX, &bopts.max) < 0 ||
	    example_take_u32("flow_fn", &argc, argv, "--batch-wait-us", SPRY_BATCH_WAIT_MAX_US,
			     &bopts.wait_us) < 0)
		return 2;
	memset(&opts, 0, sizeof(opts));
	if (spry_fn_opts_parse(&opts, argc, argv) || !bopts.max) {
		fprintf(stderr, "usage: flow_fn --chain C --fn fan|work|one|many [--sock S] "
			"[--quiet] [--work-us US] [--call-us US] [--batch-max N] "
			"[--batch-wait-us US]\n");
		return 2;
	}
	if (!strcmp(opts.fn, "fan"))
		ret = spry_fn_run(&opts, fan, NULL);
	else if (!strcmp(opts.fn, "work"))
		ret = spry_fn_run(&opts, work, NULL);
	else if (!strcmp(opts.fn, "one"))
		ret = spry_fn_run(&opts, one, NULL);
	else if (!strcmp(opts.fn, "many"))
		ret = spry_fn_run_batch(&opts, &bopts, many, NULL);
	else
		ret = -ENOENT;
	if (ret) {
		fprintf(stderr, "flow_fn: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
