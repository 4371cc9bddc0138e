// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_parse: the tree's one number parser and one ADDR:PORT parser
 * (fn-runtime/parse.c) against tables of good and bad inputs: decimal
 * only, no sign, no spaces, no junk, overflow at 2^64 and outside
 * [min, max] as -ERANGE; seconds with fractions; ports 1..65535 (0
 * refused); A.B.C.D:PORT and [IPV6]:PORT, nothing else.  A refused
 * input leaves the output untouched.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"
#include "selftests/tap.h"

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aULL

static const struct {
	const char *s;
	uint64_t min, max;
	int ret;
	uint64_t v;
} nums[] = {
	{ "0", 0, UINT64_MAX, 0, 0 },
	{ "1", 0, UINT64_MAX, 0, 1 },
	{ "007", 0, UINT64_MAX, 0, 7 },
	{ "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
	{ "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },	/* 2^64 */
	{ "99999999999999999999999", 0, UINT64_MAX, -ERANGE, 0 },
	{ "99999999999999999999999x", 0, UINT64_MAX, -EINVAL, 0 },
	{ "10", 10, 10, 0, 10 },
	{ "9", 10, 20, -ERANGE, 0 },
	{ "21", 10, 20, -ERANGE, 0 },
	{ "", 0, UINT64_MAX, -EINVAL, 0 },
	{ " ", 0, UINT64_MAX, -EINVAL, 0 },
	{ " 1", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1 ", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1\n", 0, UINT64_MAX, -EINVAL, 0 },
	{ "+1", 0, UINT64_MAX, -EINVAL, 0 },
	{ "-1", 0, UINT64_MAX, -EINVAL, 0 },
	{ "-0", 0, UINT64_MAX, -EINVAL, 0 },
	{ "0x10", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1k", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1.5", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1e3", 0, UINT64_MAX, -EINVAL, 0 },
};

static const struct {
	const char *s;
	int ret;
	uint64_t ns;
} secs[] = {
	{ "30", 0, 30000000000ULL },
	{ "0.5", 0, 500000000ULL },
	{ "0.001", 0, 1000000ULL },
	{ "1.000000001", 0, 1000000001ULL },
	{ "86400", 0, 86400000000000ULL },
	{ "86400.000000001", -ERANGE, 0 },
	{ "0.0009", -ERANGE, 0 },		/* below 1 ms */
	{ "0", -ERANGE, 0 },
	{ "1.0000000001", -EINVAL, 0 },		/* finer than 1 ns */
	{ "1.", -EINVAL, 0 },
	{ ".5", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "1e3", -EINVAL, 0 },
	{ "inf", -EINVAL, 0 },
	{ "nan", -EINVAL, 0 },
	{ "1.5s", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
	{ "18446744073709551615", -ERANGE, 0 },
};

static const struct {
	const char *s;
	int ret;
	int family;
	const char *host;
	uint16_t port;
} addrs[] = {
	{ "127.0.0.1:8080", 0, AF_INET, "127.0.0.1", 8080 },
	{ "0.0.0.0:1", 0, AF_INET, "0.0.0.0", 1 },
	{ "10.1.2.3:65535", 0, AF_INET, "10.1.2.3", 65535 },
	{ "[::1]:80", 0, AF_INET6, "::1", 80 },
	{ "[::]:443", 0, AF_INET6, "::", 443 },
	{ "[2001:db8::7]:9", 0, AF_INET6, "2001:db8::7", 9 },
	{ "[::ffff:10.0.0.1]:80", 0, AF_INET6, "::ffff:10.0.0.1", 80 },
	{ "1.2.3.4:0", -ERANGE, 0, NULL, 0 },	/* port 0: nobody's port */
	{ "[::1]:0", -ERANGE, 0, NULL, 0 },
	{ "1.2.3.4:65536", -ERANGE, 0, NULL, 0 },
	{ "1.2.3.4:99999999999999999999", -ERANGE, 0, NULL, 0 },
	{ "", -EINVAL, 0, NULL, 0 },
	{ "80", -EINVAL, 0, NULL, 0 },		/* no bare port */
	{ ":80", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.4", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.4:", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.4:+80", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.4:-1", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.4:0x50", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.4: 80", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.4:80 ", -EINVAL, 0, NULL, 0 },
	{ " 1.2.3.4:80", -EINVAL, 0, NULL, 0 },
	{ "1.2.3:80", -EINVAL, 0, NULL, 0 },
	{ "1.2.3.256:80", -EINVAL, 0, NULL, 0 },
	{ "localhost:80", -EINVAL, 0, NULL, 0 },
	{ "1:2:3", -EINVAL, 0, NULL, 0 },
	{ "::1:80", -EINVAL, 0, NULL, 0 },	/* IPv6 without brackets */
	{ "[::1]", -EINVAL, 0, NULL, 0 },
	{ "[::1]:", -EINVAL, 0, NULL, 0 },
	{ "[::1]80", -EINVAL, 0, NULL, 0 },
	{ "[::1:80", -EINVAL, 0, NULL, 0 },
	{ "[]:80", -EINVAL, 0, NULL, 0 },
	{ "[1.2.3.4]:80", -EINVAL, 0, NULL, 0 },
	{ "[::1]:80:81", -EINVAL, 0, NULL, 0 },
	{ "[fe80::1%lo]:80", -EINVAL, 0, NULL, 0 },
	{ "[0000:0000:0000:0000:0000:0000:0000:0000:0]:80", -EINVAL, 0, NULL, 0 },
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int addr_is(const struct sockaddr_storage *ss, socklen_t len, int family,
		   const char *host, uint16_t port)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
	unsigned char want[16];

	if (ss->ss_family != family || inet_pton(family, host, want) != 1)
		return 0;
	if (family == AF_INET)
		return len == sizeof(*a4) && ntohs(a4->sin_port) == port &&
		       !memcmp(&a4->sin_addr, want, 4);
	return len == sizeof(*a6) && ntohs(a6->sin6_port) == port &&
	       !memcmp(&a6->sin6_addr, want, 16) && !a6->sin6_scope_id &&
	       !a6->sin6_flowinfo;
}

int main(void)
{
	struct sockaddr_storage ss;
	const char *end;
	uint64_t v;
	uint32_t u32;
	uint16_t port;
	socklen_t len;
	int i, ret, iv;

	tap_plan(N(nums) + N(secs) + N(addrs) + 11);

	for (i = 0; i < N(nums); i++) {
		v = UNTOUCHED;
		ret = spry_num__parse(nums[i].s, NULL, nums[i].min, nums[i].max, &v);
		tap_ok(ret == nums[i].ret && v == (ret ? UNTOUCHED : nums[i].v),
		       "number '%s' in %llu..%llu: %d (want %d), %llu", nums[i].s,
		       (unsigned long long)nums[i].min, (unsigned long long)nums[i].max,
		       ret, nums[i].ret, (unsigned long long)v);
	}

	for (i = 0; i < N(secs); i++) {
		v = UNTOUCHED;
		ret = spry_secs__parse(secs[i].s, 1000000ULL, 86400000000000ULL, &v);
		tap_ok(ret == secs[i].ret && v == (ret ? UNTOUCHED : secs[i].ns),
		       "seconds '%s' in 1 ms..1 day: %d (want %d), %llu ns", secs[i].s,
		       ret, secs[i].ret, (unsigned long long)v);
	}

	for (i = 0; i < N(addrs); i++) {
		memset(&ss, 0x5a, sizeof(ss));
		len = 12345;
		ret = spry_addr__parse(addrs[i].s, &ss, &len);
		if (addrs[i].ret)
			tap_ok(ret == addrs[i].ret && len == 12345 &&
			       ss.ss_family == 0x5a5a,
			       "address '%s' refused: %d (want %d)", addrs[i].s, ret,
			       addrs[i].ret);
		else
			tap_ok(!ret && addr_is(&ss, len, addrs[i].family, addrs[i].host,
					       addrs[i].port),
			       "address '%s': %d, family %d, port %u", addrs[i].s, ret,
			       ss.ss_family, addrs[i].port);
	}

	/* the prefix form: the number, then where the caller goes on */
	v = UNTOUCHED;
	end = NULL;
	ret = spry_num__parse("12-34", &end, 0, 100, &v);
	tap_ok(!ret && v == 12 && end && *end == '-', "prefix '12-34': 12, stops at '-'");
	end = NULL;
	ret = spry_num__parse("x1", &end, 0, 100, &v);
	tap_ok(ret == -EINVAL && !end, "prefix 'x1': -EINVAL, end untouched");
	ret = spry_num__parse("101,", &end, 0, 100, &v);
	tap_ok(ret == -ERANGE && !end, "prefix '101,' above 100: -ERANGE");
	ret = spry_num__parse(NULL, NULL, 0, 1, &v);
	tap_ok(ret == -EINVAL, "NULL: -EINVAL");

	/* the public span form (libspry's API): exactly @len bytes */
	v = UNTOUCHED;
	ret = spry_parse_u64("123abc", 3, 0, UINT64_MAX, &v);
	tap_ok(!ret && v == 123, "span '123' of '123abc': 123");
	v = UNTOUCHED;
	ret = spry_parse_u64("1\0002", 3, 0, UINT64_MAX, &v);
	tap_ok(ret == -EINVAL && v == UNTOUCHED, "span with a NUL inside: -EINVAL");
	ret = spry_parse_u64("5", 0, 0, UINT64_MAX, &v);
	tap_ok(ret == -EINVAL && v == UNTOUCHED, "empty span: -EINVAL");

	/* the narrower types and the port */
	u32 = 7;
	ret = spry_num__parse_u32("4294967296", 0, UINT32_MAX, &u32);
	tap_ok(ret == -ERANGE && u32 == 7, "u32 '4294967296': -ERANGE");
	ret = spry_num__parse_int("2147483647", 0, INT32_MAX, &iv);
	tap_ok(!ret && iv == INT32_MAX, "int '2147483647'");
	port = 7;
	ret = spry_port__parse("0", &port);
	tap_ok(ret == -ERANGE && port == 7, "port '0': -ERANGE");
	ret = spry_port__parse("65535", &port);
	tap_ok(!ret && port == 65535, "port '65535'");

	return tap_finish();
}
