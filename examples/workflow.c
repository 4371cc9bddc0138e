// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * workflow: the three workflow tools of libspry in one chain
 * (examples/workflow.yaml, docs/WORKFLOWS.md).  One program; the function
 * it runs is its --fn.
 *
 *   hops: route -> short -> long -> tally      functions: words, chars, lines
 *
 *   route   conditional next: a payload starting with '#' goes straight to
 *           tally, one over 16 bytes to long, any other to short (the next
 *           hop, no pick needed).  A payload starting with '?' picks
 *           short explicitly, which the chain does not allow: the router
 *           refuses it (status next_refused at the origin).
 *   short   uppercases the payload, then picks tally (skipping long).
 *   long    fan-out and fan-in: asks words, chars and lines in parallel
 *           (--fan-timeout-ms, default 200) and answers
 *           "words W chars C lines L", a branch that failed as "error",
 *           one that missed the deadline as "timeout".  A payload
 *           starting with "WIDE" asks chars SPRY_FAN_MAX times at once
 *           instead and answers "wide OK/N busy B": the branches that
 *           answered, and those the router's bound refused (-EBUSY).
 *   words, chars, lines
 *           count them; a payload containing "FAIL" makes words fail, one
 *           containing "SLOW" makes lines answer after 2 s.
 *   tally   input batching: up to --batch-max requests (default 8) that
 *           arrive within --batch-wait-us (default 2000) of the first are
 *           handled by one call; each answer is its own payload followed by
 *           "\n(batch N)", N the size of the batch it was in.
 *
 *   workflow --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 *            [--batch-max N] [--batch-wait-us US] [--fan-timeout-ms MS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spry/spry.h"
#include "transforms.h"	/* beside this file: builds out of the tree */
#include "opts.h"		/* beside this file too */

#define SHORT_MAX	16
#define SLOW_MS		2000

static unsigned int fan_timeout_ms = 200;

static bool has(const char *p, size_t len, const char *word)
{
	size_t n = strlen(word), i;

	for (i = 0; i + n <= len; i++)
		if (!memcmp(p + i, word, n))
			return true;
	return false;
}

static int route(struct spry_req *req, void *user)
{
	const char *p;
	size_t len;

	(void)user;
	p = spry_req_data(req, &len);
	if (len && p[0] == '#')
		return spry_req_next(req, "tally");
	if (len && p[0] == '?')
		return spry_req_next(req, "short");	/* not allowed: refused */
	if (len > SHORT_MAX)
		return spry_req_next(req, "long");
	return 0;	/* short, the next hop */
}

static int shorten(struct spry_req *req, void *user)
{
	unsigned char *p;
	size_t len;

	(void)user;
	p = spry_req_data(req, &len);
	xf_upper(p, len);
	return spry_req_next(req, "tally");
}

/* The three branches' answers, by name. */
static const char *const branch_fns[] = { "words", "chars", "lines" };

/* "WIDE...": SPRY_FAN_MAX branches to chars at once (the whole budget). */
static int fan_wide(struct spry_req *req, const void *p, size_t len)
{
	static struct spry_fanout br[SPRY_FAN_MAX];
	static char out[SPRY_FAN_MAX][24];
	char msg[64];
	int ret, n, busy = 0;
	size_t i;

	memset(br, 0, sizeof(br));
	for (i = 0; i < SPRY_FAN_MAX; i++) {
		br[i].fn = "chars";
		br[i].in = p;
		br[i].in_len = len;
		br[i].out = out[i];
		br[i].out_cap = sizeof(out[i]);
	}
	ret = spry_req_fanout(req, br, SPRY_FAN_MAX, fan_timeout_ms);
	if (ret < 0)
		return spry_req_error(req, 502, ret, "fan-out: %s", strerror(-ret));
	for (i = 0; i < SPRY_FAN_MAX; i++)
		busy += br[i].err == -EBUSY;
	n = snprintf(msg, sizeof(msg), "wide %d/%d busy %d", ret, SPRY_FAN_MAX, busy);
	return spry_req_reply(req, 0, NULL, msg, (size_t)n);
}

static int fan(struct spry_req *req, void *user)
{
	struct spry_fanout br[3];
	char out[3][32], msg[160], part[3][40];
	const void *p;
	size_t len, i;
	int ret, n;

	(void)user;
	p = spry_req_data(req, &len);
	if (len >= 4 && !memcmp(p, "WIDE", 4))
		return fan_wide(req, p, len);
	memset(br, 0, sizeof(br));
	for (i = 0; i < 3; i++) {
		br[i].fn = branch_fns[i];
		br[i].in = p;
		br[i].in_len = len;
		br[i].out = out[i];
		br[i].out_cap = sizeof(out[i]) - 1;
	}
	ret = spry_req_fanout(req, br, 3, fan_timeout_ms);
	if (ret < 0)
		return spry_req_error(req, 502, ret, "fan-out: %s", strerror(-ret));
	for (i = 0; i < 3; i++) {
		if (!br[i].err) {
			out[i][br[i].out_len] = '\0';
			snprintf(part[i], sizeof(part[i]), "%s", out[i]);
		} else {
			snprintf(part[i], sizeof(part[i]), "%s",
				 br[i].err == -ETIMEDOUT ? "timeout" : "error");
		}
	}
	n = snprintf(msg, sizeof(msg), "words %s chars %s lines %s", part[0], part[1],
		     part[2]);
	return spry_req_reply(req, 0, NULL, msg, (size_t)n);
}

static int answer_count(struct spry_req *req, size_t v)
{
	char s[24];
	int n = snprintf(s, sizeof(s), "%zu", v);

	return spry_req_reply(req, 0, NULL, s, (size_t)n);
}

static int words(struct spry_req *req, void *user)
{
	const char *p;
	size_t len, i, n = 0;
	bool in = false;

	(void)user;
	p = spry_req_data(req, &len);
	if (has(p, len, "FAIL"))
		return -EIO;
	for (i = 0; i < len; i++) {
		bool sp = p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r';

		if (!sp && !in)
			n++;
		in = !sp;
	}
	return answer_count(req, n);
}

static int chars(struct spry_req *req, void *user)
{
	size_t len;

	(void)user;
	spry_req_data(req, &len);
	return answer_count(req, len);
}

static int lines(struct spry_req *req, void *user)
{
	const char *p;
	size_t len, i, n = 0;

	(void)user;
	p = spry_req_data(req, &len);
	if (has(p, len, "SLOW")) {
		struct timespec ts = { .tv_sec = SLOW_MS / 1000,
				       .tv_nsec = (SLOW_MS % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	for (i = 0; i < len; i++)
		n += p[i] == '\n';
	if (len && p[len - 1] != '\n')
		n++;
	return answer_count(req, n);
}

/* Each request of the batch: its payload, then "\n(batch N)". */
static void tally(struct spry_req *const *reqs, int *rets, size_t n, void *user)
{
	char tail[32];
	size_t i, len;
	int t;
	char *p;

	(void)user;
	t = snprintf(tail, sizeof(tail), "\n(batch %zu)", n);
	for (i = 0; i < n; i++) {
		spry_req_data(reqs[i], &len);
		p = spry_req_resize(reqs[i], len + (size_t)t);
		if (!p) {
			rets[i] = -errno;
			continue;
		}
		memcpy(p + len, tail, (size_t)t);
		rets[i] = spry_req_set_len(reqs[i], len + (size_t)t);
	}
}

static const struct {
	const char	*name;
	spry_handler_t	fn;
} fns[] = {
	{ "route", route }, { "short", shorten }, { "long", fan },
	{ "words", words }, { "chars", chars }, { "lines", lines },
};

int main(int argc, char **argv)
{
	struct spry_batch_opts bopts = { .max = 8, .wait_us = 2000 };
	struct spry_fn_opts opts;
	size_t i;
	int ret;

	if (example_take_u32("workflow", &argc, argv, "--batch-max", SPRY_BATCH_MAX, &bopts.max) < 0 ||
	    example_take_u32("workflow", &argc, argv, "--batch-wait-us", SPRY_BATCH_WAIT_MAX_US,
			     &bopts.wait_us) < 0 ||
	    example_take_u32("workflow", &argc, argv, "--fan-timeout-ms", 60000, &fan_timeout_ms) < 0)
		return 2;
	if (!bopts.max) {
		fprintf(stderr, "workflow: --batch-max: at least 1\n");
		return 2;
	}
	memset(&opts, 0, sizeof(opts));
	if (spry_fn_opts_parse(&opts, argc, argv)) {
		fprintf(stderr, "usage: %s --chain NAME --fn route|short|long|tally|words|chars|lines "
			"[--sock PATH] [--batch N] [--quiet] [--batch-max N] "
			"[--batch-wait-us US] [--fan-timeout-ms MS]\n", argv[0]);
		return 2;
	}
	if (!strcmp(opts.fn, "tally")) {
		ret = spry_fn_run_batch(&opts, &bopts, tally, NULL);
	} else {
		for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
			if (!strcmp(opts.fn, fns[i].name))
				break;
		if (i == sizeof(fns) / sizeof(fns[0])) {
			fprintf(stderr, "workflow: no function '%s'\n", opts.fn);
			return 2;
		}
		ret = spry_fn_run(&opts, fns[i].fn, NULL);
	}
	if (ret == -EIDRM)
		return SPRY_EXIT_GONE;
	if (ret) {
		fprintf(stderr, "workflow: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
