// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_app_route: an app's HTTP routing (spryd/gateway_route.c,
 * spry_app_route(); docs/PROCESS.md, "Sticky invocation") against a
 * table: the path after /APP and the Spry-Process header in, the status,
 * function, process id, its sources and the rest of the path out.
 * fuzz/fuzz_app_route.c fuzzes the same function.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/app.h"
#include "spryd/gateway_route.h"
#include "selftests/tap.h"

#define P	SPRY_APP_KEY_PATH
#define H	SPRY_APP_KEY_HEADER

static const struct {
	const char *path, *hdr;	/* hdr NULL: no header */
	int status;
	const char *fn, *rest;
	uint64_t key;
	uint32_t from;
} cases[] = {
	/* the forms */
	{ "/whoami", NULL, 0, "whoami", "", 0, 0 },
	{ "/incr/a/b?", NULL, 0, "incr", "/a/b?", 0, 0 },
	{ "/incr/", NULL, 0, "incr", "/", 0, 0 },
	{ "/7/incr", NULL, 0, "incr", "", 7, P },
	{ "/007/incr/x", NULL, 0, "incr", "/x", 7, P },
	{ "/incr", "7", 0, "incr", "", 7, H },
	{ "/7/incr", "7", 0, "incr", "", 7, P | H },
	{ "/9223372036854775807/echo", NULL, 0, "echo", "", 9223372036854775807ULL, P },
	{ "/echo//x", "9223372036854775807", 0, "echo", "//x", 9223372036854775807ULL, H },
	/* a function starting with a digit is a function, not a bad id */
	{ "/3d", NULL, 0, "3d", "", 0, 0 },
	{ "/3d/more", "4", 0, "3d", "/more", 4, H },
	{ "/4/3d", NULL, 0, "3d", "", 4, P },
	/* 404: no such function, nothing after the id */
	{ "", NULL, 404, NULL, NULL, 0, 0 },
	{ "/", NULL, 404, NULL, NULL, 0, 0 },
	{ "//whoami", NULL, 404, NULL, NULL, 0, 0 },
	{ "/nosuch", NULL, 404, NULL, NULL, 0, 0 },
	{ "/Incr", NULL, 404, NULL, NULL, 0, 0 },
	{ "/incrx", NULL, 404, NULL, NULL, 0, 0 },
	{ "/inc", NULL, 404, NULL, NULL, 0, 0 },
	{ "/11", NULL, 404, NULL, NULL, 0, 0 },
	{ "/11/", NULL, 404, NULL, NULL, 0, 0 },
	{ "/7/8/incr", NULL, 404, NULL, NULL, 0, 0 },
	{ "/7/nosuch", "7", 404, NULL, NULL, 0, 0 },
	{ "incr", NULL, 404, NULL, NULL, 0, 0 },
	/* 400: a bad id, in the path or the header; two different ids */
	{ "/0/whoami", NULL, 400, NULL, NULL, 0, 0 },
	{ "/9223372036854775808/whoami", NULL, 400, NULL, NULL, 0, 0 },
	{ "/99999999999999999999/whoami", NULL, 400, NULL, NULL, 0, 0 },
	{ "/7x/whoami", NULL, 400, NULL, NULL, 0, 0 },
	{ "/whoami", "", 400, NULL, NULL, 0, 0 },
	{ "/whoami", "0", 400, NULL, NULL, 0, 0 },
	{ "/whoami", "-1", 400, NULL, NULL, 0, 0 },
	{ "/whoami", " 7", 400, NULL, NULL, 0, 0 },
	{ "/whoami", "0x7", 400, NULL, NULL, 0, 0 },
	{ "/whoami", "9223372036854775808", 400, NULL, NULL, 0, 0 },
	{ "/nosuch", "abc", 400, NULL, NULL, 0, 0 },
	{ "/7/incr", "8", 400, NULL, NULL, 0, 0 },
	{ "/7/nosuch", "8", 400, NULL, NULL, 0, 0 },
};

int main(void)
{
	struct spry_app_decl app;
	struct spry_app_route rt;
	char fn[64], rest[64];
	size_t i;
	int st;

	memset(&app, 0, sizeof(app));
	snprintf(app.name, sizeof(app.name), "counter");
	tap_ok(!spry_app_decl__add_fn(&app, "whoami") && !spry_app_decl__add_fn(&app, "incr") &&
	       !spry_app_decl__add_fn(&app, "echo") && !spry_app_decl__add_fn(&app, "3d"),
	       "the app's functions: whoami, incr, echo, 3d");
	EXPECT_EQ(spry_app_decl__add_fn(&app, "12"), -EINVAL,
		  "a function of digits only is refused (/APP/ID/FN stays unambiguous)");
	for (i = 0; i < TAP_N(cases); i++) {
		const char *path = cases[i].path, *hdr = cases[i].hdr;

		st = spry_app_route(&app, path, strlen(path), hdr, hdr ? strlen(hdr) : 0, &rt);
		EXPECT_EQ(st, cases[i].status, "%s%s%s: status", path,
				    hdr ? " + Spry-Process: " : "", hdr ? hdr : "");
		if (!st && !cases[i].status) {
			snprintf(fn, sizeof(fn), "%.*s", (int)rt.fn_len, rt.fn);
			snprintf(rest, sizeof(rest), "%.*s", (int)rt.rest_len, rt.rest);
			EXPECT_STREQ(fn, cases[i].fn, "%s: function", path);
			EXPECT_STREQ(rest, cases[i].rest, "%s: rest", path);
			EXPECT_EQ(rt.key, cases[i].key, "%s: process id", path);
			EXPECT_EQ(rt.from, cases[i].from, "%s: its sources", path);
			EXPECT_TRUE(rt.rest + rt.rest_len == path + strlen(path),
					      "%s: the rest is the path's suffix", path);
		} else if (st) {
			EXPECT_TRUE(!rt.fn && !rt.key && !rt.from && !rt.rest,
					      "%s: nothing routed", path);
		}
	}
	return tap_finish();
}
