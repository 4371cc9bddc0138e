// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Numbers and ADDR:PORT: the rules are in fn-runtime/parse.h.  Written
 * by hand rather than on strtoul(), which skips spaces, takes a sign
 * (and negates "-1" into ULONG_MAX), reads "0x" with base 0 and reports
 * overflow only through errno.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

SPRY_API int spry_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max,
			    uint64_t *out)
{
	bool overflow = false;
	uint64_t v = 0, d;
	size_t i;

	if (!s || !len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			overflow = true;	/* read on: a later non-digit is -EINVAL */
		else
			v = v * 10 + d;
	}
	if (overflow || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int spry_num__parse(const char *s, const char **endp, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	size_t n = 0;
	int err;

	if (!s)
		return -EINVAL;
	while (is_digit(s[n]))
		n++;
	if (!endp && s[n])
		return -EINVAL;
	err = spry_parse_u64(s, n, min, max, out);
	if (!err && endp)
		*endp = s + n;
	return err;
}

int spry_num__parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int err;

	err = spry_num__parse(s, NULL, min, max, &v);
	if (!err)
		*out = (uint32_t)v;
	return err;
}

int spry_num__parse_int(const char *s, int min, int max, int *out)
{
	uint64_t v;
	int err;

	if (min < 0 || max < min)
		return -EINVAL;		/* no signs: a negative bound is a caller bug */
	err = spry_num__parse(s, NULL, (uint64_t)min, (uint64_t)max, &v);
	if (!err)
		*out = (int)v;
	return err;
}

int spry_secs__parse(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *ns)
{
	const uint64_t max_secs = UINT64_MAX / 1000000000ULL;
	uint64_t secs, frac = 0, v;
	const char *p, *q;
	int err, digits;

	err = spry_num__parse(s, &p, 0, UINT64_MAX, &secs);
	if (err)
		return err;
	if (*p == '.') {
		err = spry_num__parse(p + 1, &q, 0, UINT64_MAX, &frac);
		if (err == -ERANGE)
			return -EINVAL;	/* more than 19 fraction digits */
		if (err)
			return err;	/* "1." */
		digits = (int)(q - (p + 1));
		if (digits > 9)
			return -EINVAL;	/* finer than a nanosecond */
		for (; digits < 9; digits++)
			frac *= 10;
		p = q;
	}
	if (*p)
		return -EINVAL;
	if (secs > max_secs)
		return -ERANGE;
	v = secs * 1000000000ULL;
	if (v > UINT64_MAX - frac)
		return -ERANGE;
	v += frac;
	if (v < min_ns || v > max_ns)
		return -ERANGE;
	*ns = v;
	return 0;
}

int spry_port__parse(const char *s, uint16_t *port)
{
	uint64_t v;
	int err;

	err = spry_num__parse(s, NULL, 1, 65535, &v);
	if (!err)
		*port = (uint16_t)v;
	return err;
}

int spry_addr__parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *hs, *colon;
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	uint16_t port;
	size_t n;
	int err;

	if (!s)
		return -EINVAL;
	if (*s == '[') {
		hs = s + 1;
		colon = strchr(hs, ']');
		if (!colon || colon[1] != ':')
			return -EINVAL;		/* "[::1]", "[::1" */
		n = (size_t)(colon - hs);
		colon++;
	} else {
		hs = s;
		colon = strchr(s, ':');
		if (!colon)
			return -EINVAL;		/* no port */
		n = (size_t)(colon - s);
	}
	if (!n || n >= sizeof(host))
		return -EINVAL;			/* ":80", "[]:80", too long */
	memcpy(host, hs, n);
	host[n] = '\0';
	/* the port first: "1.2.3.4:65536" is a range error, not bad syntax */
	err = spry_port__parse(colon + 1, &port);
	if (err)
		return err;
	if (*s == '[') {
		memset(&a6, 0, sizeof(a6));
		if (inet_pton(AF_INET6, host, &a6.sin6_addr) != 1)
			return -EINVAL;
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(port);
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &a6, sizeof(a6));
		*len = sizeof(a6);
		return 0;
	}
	memset(&a4, 0, sizeof(a4));
	if (inet_pton(AF_INET, host, &a4.sin_addr) != 1)
		return -EINVAL;
	a4.sin_family = AF_INET;
	a4.sin_port = htons(port);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &a4, sizeof(a4));
	*len = sizeof(a4);
	return 0;
}
