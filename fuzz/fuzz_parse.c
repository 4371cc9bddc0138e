// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of the tree's number and ADDR:PORT parsers
 * (fn-runtime/parse.c).  The input, NUL-terminated, is given to each.
 *
 * Input: [0..7] max (little endian), [8] min as max >> ([8] % 65), then
 * the string.
 *
 * Asserted (abort() on failure):
 *   - spry_num__parse(): 0, -EINVAL or -ERANGE; accepted iff the string is
 *     1+ ASCII digits whose value (computed here in 128 bits) fits
 *     [min, max]; -ERANGE iff all digits but the value does not fit; the
 *     value is right; the prefix form stops at the first non-digit;
 *     nothing is written on a refusal; spry_parse_u64() over the
 *     string's length says the same;
 *   - spry_secs__parse(): accepted only for DIGITS[.DIGITS] with at most 9
 *     fraction digits, and its whole seconds are the integer part's;
 *   - spry_addr__parse(): accepted only with a port 1..65535 at the end;
 *     printed back with inet_ntop() as A.B.C.D:P / [V6]:P it parses to
 *     the same bytes; refused: *ss and *len untouched.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_parse: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

#define UNTOUCHED 0xa5a5a5a5a5a5a5a5ULL

static void num(const char *s, uint64_t min, uint64_t max)
{
	unsigned __int128 ref = 0;
	bool digits = *s != '\0', big = false;
	const char *p, *end = NULL;
	uint64_t v = UNTOUCHED;
	int ret;

	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9') {
			digits = false;
			break;
		}
		if (!big)
			ref = ref * 10 + (unsigned)(*p - '0');
		if (ref > UINT64_MAX)
			big = true;
	}
	ret = spry_num__parse(s, NULL, min, max, &v);
	check(ret == 0 || ret == -EINVAL || ret == -ERANGE);
	if (!digits) {
		check(ret == -EINVAL && v == UNTOUCHED);
	} else if (big || ref < min || ref > max) {
		check(ret == -ERANGE && v == UNTOUCHED);
	} else {
		check(ret == 0 && v == (uint64_t)ref);
	}

	/* the public span form agrees on the whole string */
	v = UNTOUCHED;
	check(spry_parse_u64(s, strlen(s), min, max, &v) == ret);
	check(ret ? v == UNTOUCHED : v == (uint64_t)ref);

	/* the prefix form: up to the first non-digit */
	v = UNTOUCHED;
	ret = spry_num__parse(s, &end, 0, UINT64_MAX, &v);
	if (*s >= '0' && *s <= '9' && !ret) {
		check(end > s && (*end < '0' || *end > '9'));
		for (p = s; p < end; p++)
			check(*p >= '0' && *p <= '9');
	} else {
		check(ret && !end && v == UNTOUCHED);
	}
}

static void secs(const char *s)
{
	const char *dot = strchr(s, '.'), *p;
	uint64_t ns = UNTOUCHED, whole;
	char *ipart;
	size_t n;
	int ret;

	ret = spry_secs__parse(s, 0, UINT64_MAX, &ns);
	check(ret == 0 || ret == -EINVAL || ret == -ERANGE);
	if (ret) {
		check(ns == UNTOUCHED);
		return;
	}
	n = dot ? (size_t)(dot - s) : strlen(s);
	ipart = strndup(s, n);	/* leading zeros: any length */
	check(n > 0 && ipart);
	check(spry_num__parse(ipart, NULL, 0, UINT64_MAX, &whole) == 0);
	free(ipart);
	check(ns / 1000000000ULL == whole);
	if (dot) {
		for (p = dot + 1; *p; p++)
			check(*p >= '0' && *p <= '9');
		check(p - dot - 1 >= 1 && p - dot - 1 <= 9);
	}
}

static void addr(const char *s)
{
	struct sockaddr_storage ss, again;
	char host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 16];
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
	const char *colon = strrchr(s, ':');
	socklen_t len = 777, len2;
	uint16_t port;
	int ret;

	memset(&ss, 0xa5, sizeof(ss));
	ret = spry_addr__parse(s, &ss, &len);
	check(ret == 0 || ret == -EINVAL || ret == -ERANGE);
	if (ret) {
		check(len == 777 && ss.ss_family == 0xa5a5);
		return;
	}
	check(colon && spry_port__parse(colon + 1, &port) == 0);
	if (ss.ss_family == AF_INET) {
		check(len == sizeof(*a4) && ntohs(a4->sin_port) == port && *s != '[');
		check(inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host)));
		snprintf(text, sizeof(text), "%s:%u", host, port);
	} else {
		check(ss.ss_family == AF_INET6 && len == sizeof(*a6) && *s == '[');
		check(ntohs(a6->sin6_port) == port);
		check(inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host)));
		snprintf(text, sizeof(text), "[%s]:%u", host, port);
	}
	check(spry_addr__parse(text, &again, &len2) == 0);
	check(len2 == len && !memcmp(&again, &ss, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t max, min;
	char *s;

	if (size < 9)
		return 0;
	memcpy(&max, data, 8);
	min = data[8] % 65 == 64 ? 0 : max >> (data[8] % 65);
	s = malloc(size - 9 + 1);
	check(s);
	memcpy(s, data + 9, size - 9);
	s[size - 9] = '\0';

	num(s, min, max);
	secs(s);
	addr(s);
	free(s);
	return 0;
}
