// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's HTTP front room: an app's routing, /APP/ID/FN and /APP/FN +
 * Spry-Process (gateway_route.h).  Pure, no spryd state: gateway_req.c
 * calls it, and so do fuzz/fuzz_app_route.c and selftests/test_app_route.c.
 */
#include <string.h>

#include "fn-runtime/parse.h"
#include "spryd/gateway_route.h"

int spry_app_route(const struct spry_app_decl *app, const char *path, size_t path_len,
		   const char *hdr, size_t hdr_len, struct spry_app_route *rt)
{
	const char *p = path, *end = path + path_len, *seg;
	uint64_t hkey = 0, pkey = 0;
	size_t n;

	memset(rt, 0, sizeof(*rt));
	if (hdr && spry_parse_u64(hdr, hdr_len, 1, SPRY_PROC_ID_MAX, &hkey))
		return 400;
	for (;;) {
		if (p == end || *p != '/')
			return 404;
		seg = ++p;
		while (p < end && *p != '/')
			p++;
		n = (size_t)(p - seg);
		if (pkey || !n || seg[0] < '0' || seg[0] > '9' ||
		    spry_app_decl__find_fn(app, seg, n) >= 0)
			break;
		/* a first segment of digits, not a function: the process id */
		if (spry_parse_u64(seg, n, 1, SPRY_PROC_ID_MAX, &pkey))
			return 400;
	}
	if (hkey && pkey && hkey != pkey)
		return 400;	/* two different processes named */
	if (spry_app_decl__find_fn(app, seg, n) < 0)
		return 404;
	rt->fn = seg;
	rt->fn_len = n;
	rt->key = pkey ? pkey : hkey;
	rt->from = (pkey ? SPRY_APP_KEY_PATH : 0) | (hkey ? SPRY_APP_KEY_HEADER : 0);
	rt->rest = p;
	rt->rest_len = (size_t)(end - p);
	return 0;
}
