/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The HTTP front's routing of a request to an app (docs/PROCESS.md,
 * "Sticky invocation"): which function, which process.  Pure (no spryd
 * state): the gateway calls it for a chain flagged SPRY_CF_APP;
 * fuzz/fuzz_app_route.c and selftests/test_app_route.c call it alone.
 *
 * @path is what follows /APP in the request's path ("" or "/..."; the
 * query is not in it), @hdr the value of the request's Spry-Process
 * header (NULL: none; HTTP allows it once, spryd/http.c refuses a
 * duplicate).  The forms:
 *
 *   /FN[/...]           no process (or the header's)
 *   /ID/FN[/...]        process ID (1..SPRY_PROC_ID_MAX, decimal)
 *
 * Returns 0 with *@rt filled, or the HTTP status to answer:
 *   400  the header is not a process id; the first segment starts with
 *        a digit, is not one of the app's functions and not a process
 *        id ("0", "9223372036854775808", "7x"); the header and the path
 *        name two different processes;
 *   404  no function (empty path or segment, an id and nothing after
 *        it), or a function the app does not declare.
 * A first segment that is one of the app's functions is that function,
 * even if it starts with a digit ("3d"; a function is never all
 * digits: spry_app_decl__add_fn()).
 */
#ifndef SPRY_SPRYD_GATEWAY_ROUTE_H
#define SPRY_SPRYD_GATEWAY_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/app.h"

/* Where the process id came from (a bit each). */
enum spry_app_key_from {
	SPRY_APP_KEY_NONE	= 0,		/* no process named: key 0 */
	SPRY_APP_KEY_PATH	= 1 << 0,	/* /ID/FN */
	SPRY_APP_KEY_HEADER	= 1 << 1,	/* Spry-Process: ID */
};

struct spry_app_route {
	const char	*fn;		/* in @path: one of the app's functions */
	size_t		fn_len;
	uint64_t	key;		/* the process, 0: none */
	uint32_t	from;		/* enum spry_app_key_from bits */
	const char	*rest;		/* @path after /FN: "" or "/..." */
	size_t		rest_len;
};

int spry_app_route(const struct spry_app_decl *app, const char *path, size_t path_len,
		   const char *hdr, size_t hdr_len, struct spry_app_route *rt);

#endif /* SPRY_SPRYD_GATEWAY_ROUTE_H */
