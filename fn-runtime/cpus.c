// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPU lists for chain placement: "0-3,6" <-> a bit mask of
 * SPRY_MAX_CPUS bits (struct spry_chain.cpus).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fn-runtime/cpus.h"
#include "fn-runtime/parse.h"

static void set_err(char *err, size_t errlen, const char *what, const char *s)
{
	if (err && errlen)
		snprintf(err, errlen, "cpus '%s': %s", s, what);
}

/* A CPU number at *p (fn-runtime/parse.h's rules); advances *p. */
static int cpu_num(const char **p, unsigned int *out)
{
	uint64_t v;
	int err;

	err = spry_num__parse(*p, p, 0, SPRY_MAX_CPUS - 1, &v);
	if (!err)
		*out = (unsigned int)v;
	return err;
}

int spry_cpus__parse(const char *s, __u64 mask[SPRY_CPU_WORDS], char *err,
		     size_t errlen)
{
	const char *p = s;
	unsigned int lo, hi, c;
	char why[64];
	int ret;

	memset(mask, 0, SPRY_CPU_WORDS * sizeof(__u64));
	if (!*p) {
		set_err(err, errlen, "empty list", s);
		return -EINVAL;
	}
	for (;;) {
		ret = cpu_num(&p, &lo);
		hi = lo;
		if (!ret && *p == '-') {
			p++;
			ret = cpu_num(&p, &hi);
		}
		if (ret == -ERANGE) {
			snprintf(why, sizeof(why), "CPU numbers go up to %d", SPRY_MAX_CPUS - 1);
			set_err(err, errlen, why, s);
			return -EINVAL;
		}
		if (ret) {
			set_err(err, errlen, "expected a list like 0-3,6", s);
			return -EINVAL;
		}
		if (hi < lo) {
			set_err(err, errlen, "a range must go upwards (N-M with N <= M)", s);
			return -EINVAL;
		}
		for (c = lo; c <= hi; c++)
			mask[c / 64] |= 1ULL << (c % 64);
		if (!*p)
			return 0;
		if (*p != ',') {
			set_err(err, errlen, "expected a list like 0-3,6", s);
			return -EINVAL;
		}
		p++;
	}
}

static bool cpu_isset(const __u64 mask[SPRY_CPU_WORDS], unsigned int c)
{
	return mask[c / 64] & (1ULL << (c % 64));
}

int spry_cpus__format(const __u64 mask[SPRY_CPU_WORDS], char *buf, size_t len)
{
	unsigned int c = 0, end;
	size_t used = 0;
	int n;

	if (!len)
		return -ENOSPC;
	buf[0] = '\0';
	while (c < SPRY_MAX_CPUS) {
		if (!cpu_isset(mask, c)) {
			c++;
			continue;
		}
		for (end = c; end + 1 < SPRY_MAX_CPUS && cpu_isset(mask, end + 1); end++)
			;
		n = end == c ? snprintf(buf + used, len - used, "%s%u", used ? "," : "", c) :
			       snprintf(buf + used, len - used, "%s%u-%u", used ? "," : "", c, end);
		if (n < 0 || (size_t)n >= len - used)
			return -ENOSPC;
		used += (size_t)n;
		c = end + 1;
	}
	return 0;
}

bool spry_cpus__empty(const __u64 mask[SPRY_CPU_WORDS])
{
	unsigned int i;

	for (i = 0; i < SPRY_CPU_WORDS; i++)
		if (mask[i])
			return false;
	return true;
}

void spry_cpus__to_set(const __u64 mask[SPRY_CPU_WORDS], cpu_set_t *set)
{
	unsigned int c;

	CPU_ZERO(set);
	for (c = 0; c < SPRY_MAX_CPUS && c < CPU_SETSIZE; c++)
		if (cpu_isset(mask, c))
			CPU_SET(c, set);
}
