// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * spry_app_main: the main() of an app's process (docs/PROCESS.md): one OS
 * process hosting the app's functions, each request dispatched to the
 * handler its metadata "fn" names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spry/spry.h"

struct app_table {
	const struct spry_app_fn	*fns;
	size_t				n;
	void				*user;
};

SPRY_API const char *spry_req_fn(const struct spry_req *req, size_t *len)
{
	const char *v = spry_req_meta(req, "fn", len);

	if (!v) {
		*len = 0;
		return "";
	}
	return v;
}

SPRY_API uint64_t spry_process_id(void)
{
	const char *s = getenv("SPRY_PROCESS_ID");
	uint64_t id;

	if (!s || spry_parse_u64(s, strlen(s), 1, (1ULL << 63) - 1, &id))
		return 0;
	return id;
}

static int app_dispatch(struct spry_req *req, void *user)
{
	const struct app_table *t = user;
	const char *fn;
	size_t len, i;

	fn = spry_req_fn(req, &len);
	for (i = 0; i < t->n; i++) {
		if (t->fns[i].name && strlen(t->fns[i].name) == len &&
		    !memcmp(t->fns[i].name, fn, len))
			return t->fns[i].handler(req, t->user);
	}
	return spry_req_error(req, 404, -ENOENT, "no function '%.*s' in this app",
			      (int)(len > 64 ? 64 : len), fn);
}

SPRY_API int spry_app_main(int argc, char **argv, const struct spry_app_fn *fns,
			   size_t n, void *user)
{
	struct app_table t = { .fns = fns, .n = n, .user = user };
	size_t i;

	for (i = 0; i < n; i++)
		if (!fns[i].name || !fns[i].handler)
			return 2;
	return spry_fn_main(argc, argv, app_dispatch, &t);
}
