// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * motion-parse (hop sensor-parse): a sensor event in text -> the compact
 * binary record detect reads (struct motion_hdr + samples, motion.h).
 *
 * Input: 1..64 lines, one sample each, '\n'-separated (the last '\n' is
 * optional), each exactly these six fields in any order, separated by
 * single spaces:
 *
 *   device=cam7 ts=1700000000123 ax=0.12 ay=-0.03 az=9.81 lux=120
 *
 *   device  1-15 of A-Z a-z 0-9 _ -, the same on every line
 *   ts      ms since the epoch, 1..4102444800000, increasing line to line
 *   ax ay az  acceleration in m/s^2: [-]D{1,3}[.D{1,3}], |v| <= 156.906
 *           (16 g); stored as integer mm/s^2
 *   lux     integer 0..100000
 *
 * Anything else is refused: payload "error: ...", @status 400, fn_error.
 *
 *   motion-parse --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "examples/motion/motion.h"

enum { F_DEVICE, F_TS, F_AX, F_AY, F_AZ, F_LUX, F_N };
static const char *const fields[F_N] = { "device", "ts", "ax", "ay", "az", "lux" };

/* [-]D{1,3}[.D{1,3}] -> milli-units in [-MOTION_ACC_MAX, MOTION_ACC_MAX]. */
static int parse_milli(const char *s, size_t n, int32_t *out)
{
	size_t i = 0, d = 0, f = 0;
	bool neg = false;
	long v = 0;

	if (i < n && s[i] == '-') {
		neg = true;
		i++;
	}
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, d++) {
		if (d == 3)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (!d)
		return -EINVAL;
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, f++) {
			if (f == 3)
				return -EINVAL;
			v = v * 10 + (s[i] - '0');
		}
		if (!f)
			return -EINVAL;
	}
	if (i != n)
		return -EINVAL;
	for (; f < 3; f++)
		v *= 10;
	if (v > MOTION_ACC_MAX)
		return -ERANGE;
	*out = (int32_t)(neg ? -v : v);
	return 0;
}

/* Unsigned decimal in [min, max], no leading zeros (but "0"). */
static int parse_u64(const char *s, size_t n, unsigned long long min,
		     unsigned long long max, unsigned long long *out)
{
	uint64_t v;
	int err;

	if (n > 1 && s[0] == '0')
		return -EINVAL;
	err = spry_parse_u64(s, n, min, max, &v);
	if (!err)
		*out = v;
	return err;
}

/* One line of @n bytes into @smp; its device into @dev. */
static int parse_line(struct spry_req *req, unsigned int ln, const char *s, size_t n,
		      struct motion_sample *smp, char dev[MOTION_DEV_LEN])
{
	unsigned long long u;
	bool seen[F_N] = {};
	size_t i = 0;
	int f;

	while (i < n) {
		const char *k = s + i, *v, *sp;
		size_t kl, vl;

		sp = memchr(k, ' ', n - i);
		vl = (sp ? (size_t)(sp - k) : n - i);
		v = memchr(k, '=', vl);
		if (!v)
			return spry_req_error(req, 400, -EINVAL, "line %u: field without '='", ln);
		kl = v - k;
		v++;
		vl -= kl + 1;
		for (f = 0; f < F_N; f++)
			if (strlen(fields[f]) == kl && !memcmp(k, fields[f], kl))
				break;
		if (f == F_N)
			return spry_req_error(req, 400, -EINVAL, "line %u: unknown field '%.*s'",
					      ln, (int)(kl > 16 ? 16 : kl), k);
		if (seen[f])
			return spry_req_error(req, 400, -EINVAL, "line %u: %s given twice", ln,
					      fields[f]);
		seen[f] = true;
		switch (f) {
		case F_DEVICE:
			if (!vl || vl >= MOTION_DEV_LEN)
				return spry_req_error(req, 400, -EINVAL,
						      "line %u: device: 1-15 characters", ln);
			memset(dev, 0, MOTION_DEV_LEN);
			memcpy(dev, v, vl);
			if (!motion_dev_ok(dev) || strlen(dev) != vl)
				return spry_req_error(req, 400, -EINVAL,
						      "line %u: device: A-Z a-z 0-9 _ - only", ln);
			break;
		case F_TS:
			if (parse_u64(v, vl, 1, MOTION_TS_MAX, &u))
				return spry_req_error(req, 400, -EINVAL,
						      "line %u: ts: ms since the epoch, 1..%lld",
						      ln, MOTION_TS_MAX);
			smp->ts_ms = (int64_t)u;
			break;
		case F_LUX:
			if (parse_u64(v, vl, 0, MOTION_LUX_MAX, &u))
				return spry_req_error(req, 400, -EINVAL,
						      "line %u: lux: integer 0..%d", ln,
						      MOTION_LUX_MAX);
			smp->lux = (uint32_t)u;
			break;
		default:
			if (parse_milli(v, vl, f == F_AX ? &smp->ax : f == F_AY ? &smp->ay :
					&smp->az))
				return spry_req_error(req, 400, -EINVAL,
						      "line %u: %s: m/s^2 as [-]D{1,3}[.D{1,3}], at most 156.906",
						      ln, fields[f]);
		}
		i += kl + 1 + vl;
		if (i < n && ++i == n)
			return spry_req_error(req, 400, -EINVAL, "line %u: trailing space", ln);
	}
	for (f = 0; f < F_N; f++)
		if (!seen[f])
			return spry_req_error(req, 400, -EINVAL, "line %u: missing %s", ln,
					      fields[f]);
	return 0;
}

static int sensor_parse(struct spry_req *req, void *user)
{
	struct motion_sample smp[MOTION_MAX_SAMPLES];
	uint8_t out[sizeof(struct motion_hdr) + sizeof(smp)];
	struct motion_hdr hdr = { .magic = MOTION_MAGIC, .version = MOTION_VERSION };
	char dev[MOTION_DEV_LEN];
	const char *p, *nl;
	size_t len, i = 0, n;
	int err;

	(void)user;
	p = spry_req_data(req, &len);
	if (len && p[len - 1] == '\n')
		len--;
	if (!len)
		return spry_req_error(req, 400, -EINVAL, "empty event");
	while (i <= len) {
		if (hdr.n == MOTION_MAX_SAMPLES)
			return spry_req_error(req, 400, -EINVAL, "more than %d samples",
					      MOTION_MAX_SAMPLES);
		nl = memchr(p + i, '\n', len - i);
		n = nl ? (size_t)(nl - (p + i)) : len - i;
		if (!n)
			return spry_req_error(req, 400, -EINVAL, "line %u: empty", hdr.n + 1);
		err = parse_line(req, hdr.n + 1, p + i, n, &smp[hdr.n], dev);
		if (err)
			return err;
		if (!hdr.n)
			memcpy(hdr.device, dev, MOTION_DEV_LEN);
		else if (memcmp(hdr.device, dev, MOTION_DEV_LEN))
			return spry_req_error(req, 400, -EINVAL, "line %u: another device",
					      hdr.n + 1);
		else if (smp[hdr.n].ts_ms <= smp[hdr.n - 1].ts_ms)
			return spry_req_error(req, 400, -EINVAL, "line %u: ts not increasing",
					      hdr.n + 1);
		hdr.n++;
		i += n + 1;
	}
	memcpy(out, &hdr, sizeof(hdr));
	memcpy(out + sizeof(hdr), smp, hdr.n * sizeof(smp[0]));
	return spry_req_reply(req, 0, NULL, out, sizeof(hdr) + hdr.n * sizeof(smp[0]));
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, sensor_parse, NULL);
}
