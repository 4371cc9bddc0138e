// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * counter: an app (docs/PROCESS.md) whose process hosts three functions.
 *
 *   whoami   "ID\n": the process's id (spry_process_id())
 *   incr     adds the payload's length to this process's counter and
 *            answers "ID COUNT\n": the counter is in the process's state
 *            (spry_fn_state(), include/spry/state.h), so it survives a
 *            crash, a swap and a wake; run by hand (no state), in memory
 *   echo     the payload back
 *
 *   spry app add counter fns whoami,incr,echo exec build/examples/counter
 *   curl -d x -H 'Spry-Process: 7' http://127.0.0.1:8080/counter/incr
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <spry/spry.h>
#include <spry/state.h>

static uint64_t mem_count;	/* without a state store only */

static int whoami(struct spry_req *req, void *user)
{
	char out[32];
	int n;

	(void)user;
	n = snprintf(out, sizeof(out), "%" PRIu64 "\n", spry_process_id());
	return spry_req_reply(req, 0, "text/plain", out, (size_t)n);
}

static int incr(struct spry_req *req, void *user)
{
	static const char key[] = "count";
	struct spry_state *st = spry_fn_state();
	uint64_t count = 0;
	char out[64];
	size_t len, vl;
	int n, err;

	(void)user;
	spry_req_data(req, &len);
	if (!st && errno != ENOENT)
		return spry_req_error(req, 500, -errno, "state: %s", spry_state_error());
	if (!st) {
		count = mem_count += len;
	} else {
		err = spry_state_get(st, key, sizeof(key) - 1, &count, sizeof(count), &vl);
		if (err && err != -ENOENT)
			return spry_req_error(req, 500, err, "state: %s", spry_state_error());
		count += len;
		err = spry_state_put(st, key, sizeof(key) - 1, &count, sizeof(count));
		if (err)
			return spry_req_error(req, 500, err, "state: %s", spry_state_error());
	}
	n = snprintf(out, sizeof(out), "%" PRIu64 " %" PRIu64 "\n", spry_process_id(), count);
	return spry_req_reply(req, 0, "text/plain", out, (size_t)n);
}

static int echo(struct spry_req *req, void *user)
{
	(void)req;
	(void)user;
	return 0;	/* the payload is the answer, in place */
}

int main(int argc, char **argv)
{
	static const struct spry_app_fn fns[] = {
		{ "whoami",	whoami },
		{ "incr",	incr },
		{ "echo",	echo },
	};

	return spry_app_main(argc, argv, fns, sizeof(fns) / sizeof(fns[0]), NULL);
}
