// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of an app's HTTP routing (spryd/gateway_route.c:
 * spry_app_route(), what the gateway runs on every request to an app:
 * /APP/FN[/...] with an optional Spry-Process header, /APP/ID/FN[/...]).
 *
 * Input: [0] bit 0: a Spry-Process header is sent; then the app's
 * functions (comma-separated, up to the first '\n'; each added with
 * spry_app_decl__add_fn(), those it refuses left out), then the header's
 * value up to the next '\n', then the path after /APP (the rest, any
 * bytes).
 *
 * Asserted (abort() on failure), besides ASan/UBSan:
 *   - the status is 0, 400 or 404; not 0: the route is all zero;
 *   - a header that is not a process id (1..2^63-1): 400;
 *   - 0: the function is one the app declares, a whole segment of the
 *     path; the rest is the path's suffix right after it, "" or "/...";
 *     the key is 0 with no source, else in 1..2^63-1 and equal to what
 *     each source it names says (the path's first segment, just before
 *     the function, and it is not a function; the header), and a valid
 *     header is always named;
 *   - a first segment that is one of the app's functions is routed to
 *     (with a valid header or none);
 *   - naming another id in the other place (a header for an id of the
 *     path, a /ID/ for the header's id) is 400; the same id there gives
 *     the same route from both places; with no process named, a /ID/
 *     prefix gives the same function and rest with that key;
 *   - the same input gives the same route twice.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/app.h"
#include "spry/spry.h"
#include "spryd/gateway_route.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_app_route: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static struct spry_app_decl app;
static char buf[8192];

static bool is_id(const char *s, size_t n, uint64_t *v)
{
	return !spry_parse_u64(s, n, 1, SPRY_PROC_ID_MAX, v);
}

static int route(const char *path, size_t plen, const char *hdr, size_t hlen,
		 struct spry_app_route *rt)
{
	struct spry_app_route again;
	int st;

	memset(rt, 0xa5, sizeof(*rt));
	st = spry_app_route(&app, path, plen, hdr, hlen, rt);
	check(st == 0 || st == 400 || st == 404);
	check(spry_app_route(&app, path, plen, hdr, hlen, &again) == st);
	check(!memcmp(rt, &again, sizeof(again)));
	if (st) {
		static const struct spry_app_route zero;

		check(!memcmp(rt, &zero, sizeof(zero)));
	}
	return st;
}

static void check_route(const char *path, size_t plen, const char *hdr, size_t hlen,
			const struct spry_app_route *rt)
{
	const char *end = path + plen;
	uint64_t v;

	/* the function: declared, a whole segment of the path */
	check(rt->fn > path && rt->fn <= end && rt->fn[-1] == '/');
	check(rt->fn_len >= 1 && rt->fn_len <= (size_t)(end - rt->fn));
	check(spry_app_decl__find_fn(&app, rt->fn, rt->fn_len) >= 0);
	/* the rest: the suffix right after it */
	check(rt->rest == rt->fn + rt->fn_len);
	check(rt->rest + rt->rest_len == end);
	check(!rt->rest_len || rt->rest[0] == '/');
	/* the key and its sources */
	check(!(rt->from & ~(uint32_t)(SPRY_APP_KEY_PATH | SPRY_APP_KEY_HEADER)));
	check(!rt->key == !rt->from);
	check(rt->key <= SPRY_PROC_ID_MAX);
	if (rt->from & SPRY_APP_KEY_PATH) {
		const char *seg = path + 1;
		size_t n = (size_t)(rt->fn - 1 - seg);

		check(path[0] == '/' && rt->fn - 1 > seg);
		check(!memchr(seg, '/', n));
		check(is_id(seg, n, &v) && v == rt->key);
		check(spry_app_decl__find_fn(&app, seg, n) < 0);
	} else {
		check(rt->fn == path + 1);
	}
	if (hdr) {
		check(rt->from & SPRY_APP_KEY_HEADER);
		check(is_id(hdr, hlen, &v) && v == rt->key);
	} else {
		check(!(rt->from & SPRY_APP_KEY_HEADER));
	}
}

/* "/ID" + @path into buf: its length, 0 if it does not fit */
static size_t prefixed(uint64_t id, const char *path, size_t plen)
{
	int n = snprintf(buf, sizeof(buf), "/%" PRIu64, id);

	if (n < 0 || (size_t)n + plen > sizeof(buf))
		return 0;
	memcpy(buf + n, path, plen);
	return (size_t)n + plen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1, *end = (const char *)data + size;
	const char *nl, *hdr, *path, *f;
	char fn[SPRY_NAME_LEN + 8], num[24];
	size_t hlen, plen, len;
	struct spry_app_route rt, rt2;
	uint64_t other, v;
	int st;

	if (size < 1)
		return 0;
	/* the app */
	memset(&app, 0, sizeof(app));
	snprintf(app.name, sizeof(app.name), "a1");
	nl = memchr(in, '\n', (size_t)(end - in));
	if (!nl)
		return 0;
	for (f = in; f < nl;) {
		const char *c = memchr(f, ',', (size_t)(nl - f));
		size_t n = (size_t)((c ? c : nl) - f);

		if (n < sizeof(fn) && !memchr(f, '\0', n)) {
			memcpy(fn, f, n);
			fn[n] = '\0';
			(void)spry_app_decl__add_fn(&app, fn);
		}
		f += n + (c ? 1 : 0);
		if (!c)
			break;
	}
	/* the header, the path */
	in = nl + 1;
	nl = memchr(in, '\n', (size_t)(end - in));
	if (!nl)
		return 0;
	hdr = data[0] & 1 ? in : NULL;
	hlen = hdr ? (size_t)(nl - in) : 0;
	path = nl + 1;
	plen = (size_t)(end - path);
	if (plen > sizeof(buf) / 2)
		return 0;

	st = route(path, plen, hdr, hlen, &rt);
	if (hdr && !is_id(hdr, hlen, &v))
		check(st == 400);
	if (plen > 1 && path[0] == '/') {
		const char *seg = path + 1, *s = memchr(seg, '/', plen - 1);

		len = (size_t)((s ? s : end) - seg);
		if (spry_app_decl__find_fn(&app, seg, len) >= 0 && (!hdr || is_id(hdr, hlen, &v)))
			check(st == 0 && rt.fn == seg && !(rt.from & SPRY_APP_KEY_PATH));
	}
	if (st)
		return 0;
	check_route(path, plen, hdr, hlen, &rt);

	other = rt.key % SPRY_PROC_ID_MAX + 1;	/* never rt.key */
	if (rt.from & SPRY_APP_KEY_PATH) {
		/* the path's id and another in the header: refused */
		len = (size_t)snprintf(num, sizeof(num), "%" PRIu64, other);
		check(route(path, plen, num, len, &rt2) == 400);
		/* the same in the header: the same route, from both */
		len = (size_t)snprintf(num, sizeof(num), "%" PRIu64, rt.key);
		check(route(path, plen, num, len, &rt2) == 0);
		check(rt2.key == rt.key && rt2.fn == rt.fn && rt2.rest == rt.rest &&
		      rt2.from == (SPRY_APP_KEY_PATH | SPRY_APP_KEY_HEADER));
	} else if (rt.from & SPRY_APP_KEY_HEADER) {
		/* the header's id and another in the path: refused */
		len = prefixed(other, path, plen);
		check(len && route(buf, len, hdr, hlen, &rt2) == 400);
		len = prefixed(rt.key, path, plen);
		check(len && route(buf, len, hdr, hlen, &rt2) == 0);
		check(rt2.key == rt.key && rt2.fn_len == rt.fn_len &&
		      !memcmp(rt2.fn, rt.fn, rt.fn_len) && rt2.rest_len == rt.rest_len &&
		      rt2.from == (SPRY_APP_KEY_PATH | SPRY_APP_KEY_HEADER));
		check_route(buf, len, hdr, hlen, &rt2);
	} else {
		/* no process named: /ID/ in front names one */
		other = (uint64_t)plen * 2654435761u % SPRY_PROC_ID_MAX + 1;
		len = prefixed(other, path, plen);
		check(len && route(buf, len, NULL, 0, &rt2) == 0);
		check(rt2.key == other && rt2.from == SPRY_APP_KEY_PATH &&
		      rt2.fn_len == rt.fn_len && !memcmp(rt2.fn, rt.fn, rt.fn_len) &&
		      rt2.rest_len == rt.rest_len && !memcmp(rt2.rest, rt.rest, rt.rest_len));
		check_route(buf, len, NULL, 0, &rt2);
	}
	return 0;
}
