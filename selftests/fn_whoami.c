// SPDX-License-Identifier: GPL-2.0-only
/*
 * A test function that says who served a request: the response is
 * "<pid>:" followed by the request payload (so tests can see how requests
 * spread over instances).  Options: those of every spry function.
 * WHOAMI_DELAY_US in the environment (0..1000000, through spry's number
 * parser): each request takes that long (a slow function, so that a test's
 * load keeps requests in flight at the instances).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"

static uint32_t delay_us;

static int whoami(struct spry_req *req, void *user)
{
	char head[24];
	unsigned char *p;
	size_t len;
	int h;

	(void)user;
	if (delay_us)
		usleep(delay_us);
	spry_req_data(req, &len);
	h = snprintf(head, sizeof(head), "%d:", (int)getpid());
	p = spry_req_resize(req, len + h);
	if (!p)
		return -errno;
	memmove(p + h, p, len);
	memcpy(p, head, h);
	return spry_req_set_len(req, len + h);
}

int main(int argc, char **argv)
{
	struct spry_fn_opts opts = {};
	int ret;

	const char *d = getenv("WHOAMI_DELAY_US");

	if (spry_fn_opts_parse(&opts, argc, argv))
		return 2;
	if (d && spry_num__parse_u32(d, 0, 1000000, &delay_us)) {
		fprintf(stderr, "%s: WHOAMI_DELAY_US '%s': not a number of microseconds (0..1000000)\n",
			argv[0], d);
		return 2;
	}
	ret = spry_fn_run(&opts, whoami, NULL);
	if (ret) {
		fprintf(stderr, "%s: %s\n", argv[0], strerror(-ret));
		return 1;
	}
	return 0;
}
