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
 *   put      keeps the payload in this process's state (key "data"),
 *            answers its length
 *   get      answers what put kept (404 when nothing was put)
 *   gather   fan-out over processes (docs/WORKFLOWS.md): asks the processes
 *            whose ids the payload lists (blank-separated, at most 16)
 *            for their whoami in parallel (1 s deadline) and answers a
 *            line "ID: ANSWER" for each, in order; ANSWER is "no process"
 *            for one that is not active (a branch does not wake it),
 *            "timeout", or "error" for another failure
 *   pick     conditional next (docs/WORKFLOWS.md): "FN REST" hands REST on
 *            to handler FN of this same process (spry_req_next()), which
 *            answers it; the app must declare it ("next pick:FN"), else
 *            the router ends the request with next_refused (HTTP 502)
 *
 *   spry app add counter fns whoami,incr,echo,pick exec build/examples/counter \
 *       next pick:incr,pick:whoami
 *   curl -d x -H 'Spry-Process: 7' http://127.0.0.1:8080/counter/incr
 *   curl -d 'incr abc' http://127.0.0.1:8080/counter/7/pick      # -> "7 4"
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

static const char data_key[] = "data";

static int put(struct spry_req *req, void *user)
{
	struct spry_state *st = spry_fn_state();
	const void *in;
	char out[32];
	size_t len;
	int n, err;

	(void)user;
	in = spry_req_data(req, &len);
	if (!st)
		return spry_req_error(req, 500, -errno, "state: %s", spry_state_error());
	err = spry_state_put(st, data_key, sizeof(data_key) - 1, in, len);
	if (err)
		return spry_req_error(req, 500, err, "state: %s", spry_state_error());
	n = snprintf(out, sizeof(out), "%zu\n", len);
	return spry_req_reply(req, 0, "text/plain", out, (size_t)n);
}

static int get(struct spry_req *req, void *user)
{
	struct spry_state *st = spry_fn_state();
	char buf[4096];
	size_t len;
	int err;

	(void)user;
	if (!st)
		return spry_req_error(req, 500, -errno, "state: %s", spry_state_error());
	err = spry_state_get(st, data_key, sizeof(data_key) - 1, buf, sizeof(buf), &len);
	if (err == -ENOENT)
		return spry_req_error(req, 404, err, "nothing was put");
	if (err == -EMSGSIZE)
		return spry_req_error(req, 413, err, "%zu bytes kept", len);
	if (err)
		return spry_req_error(req, 500, err, "state: %s", spry_state_error());
	return spry_req_reply(req, 0, "application/octet-stream", buf, len);
}

#define GATHER_MAX	16

static int gather(struct spry_req *req, void *user)
{
	struct spry_fanout br[GATHER_MAX];
	char ans[GATHER_MAX][32], out[GATHER_MAX * 64];
	uint64_t ids[GATHER_MAX];
	const char *p, *end, *w;
	size_t len, n = 0, i, o = 0;
	int ret;

	(void)user;
	p = spry_req_data(req, &len);
	end = p + len;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\n'))
			p++;
		for (w = p; p < end && *p != ' ' && *p != '\n'; p++)
			;
		if (p == w)
			break;
		if (n == GATHER_MAX)
			return spry_req_error(req, 400, -E2BIG, "at most %d ids", GATHER_MAX);
		if (spry_parse_u64(w, (size_t)(p - w), 1, (1ULL << 63) - 1, &ids[n]))
			return spry_req_error(req, 400, -EINVAL, "'%.*s' is not a process id",
					      (int)(p - w > 32 ? 32 : p - w), w);
		n++;
	}
	memset(br, 0, sizeof(br));
	for (i = 0; i < n; i++) {
		br[i].fn = "whoami";
		br[i].key = ids[i];
		br[i].out = ans[i];
		br[i].out_cap = sizeof(ans[i]);
	}
	ret = spry_req_fanout(req, br, n, 1000);
	if (ret < 0)
		return spry_req_error(req, 502, ret, "fan-out: %s", strerror(-ret));
	for (i = 0; i < n; i++) {
		const char *what = br[i].err == -ESRCH ? "no process" :
				   br[i].err == -ETIMEDOUT ? "timeout" : "error";
		size_t al = br[i].out_len;

		if (!br[i].err && al && ans[i][al - 1] == '\n')
			al--;
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%" PRIu64 ": %.*s\n", ids[i],
				      br[i].err ? (int)strlen(what) : (int)al,
				      br[i].err ? what : ans[i]);
	}
	return spry_req_reply(req, 0, "text/plain", out, o);
}

static int echo(struct spry_req *req, void *user)
{
	(void)req;
	(void)user;
	return 0;	/* the payload is the answer, in place */
}

static int pick(struct spry_req *req, void *user)
{
	char fn[64];
	const char *p;
	size_t len, n;
	int err;

	(void)user;
	p = spry_req_data(req, &len);
	for (n = 0; n < len && p[n] != ' '; n++)
		;
	if (!n || n >= sizeof(fn))
		return spry_req_error(req, 400, -EINVAL, "pick: 'FN REST' expected");
	memcpy(fn, p, n);
	fn[n] = '\0';
	/* the rest of the payload is what FN gets (first: the pick's
	 * metadata may move the payload) */
	n = n < len ? n + 1 : n;
	err = spry_req_reply(req, 0, NULL, p + n, len - n);
	if (!err)
		err = spry_req_next(req, fn);
	if (err)
		return spry_req_error(req, err == -ENOENT ? 404 : 500, err,
				      "pick: %s: %s", fn, strerror(-err));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct spry_app_fn fns[] = {
		{ "whoami",	whoami },
		{ "incr",	incr },
		{ "echo",	echo },
		{ "gather",	gather },
		{ "pick",	pick },
		{ "put",	put },
		{ "get",	get },
	};

	return spry_app_main(argc, argv, fns, sizeof(fns) / sizeof(fns[0]), NULL);
}
