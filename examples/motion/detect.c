// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * motion-detect (hop detect): motion from the accelerometer samples of one
 * event (struct motion_hdr + samples) -> struct motion_result.
 *
 * For each sample, in order: the deviation from gravity
 *   dev = | sqrt(ax^2 + ay^2 + az^2) - 9807 |   (integer mm/s^2)
 * drives a two-state detector with hysteresis, starting still:
 *   still  -> moving   when dev >= 1962 (0.2 g)
 *   moving -> still    after 2 samples in a row with dev < 981 (0.1 g)
 * moving = samples spent in the moving state, peak = the largest dev,
 * still_end = the state after the last sample, lux and ts of the last one.
 * A device at rest reads 1 g whatever its orientation, so dev ~ 0.
 *
 *   motion-detect --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "examples/motion/motion.h"

#define ON_DEV		1962		/* 0.2 g */
#define OFF_DEV		981		/* 0.1 g */
#define OFF_SAMPLES	2

/* floor(sqrt(v)) */
static uint64_t isqrt(uint64_t v)
{
	uint64_t r = 0, bit = 1ULL << 62;

	while (bit > v)
		bit >>= 2;
	while (bit) {
		if (v >= r + bit) {
			v -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

static bool acc_ok(int32_t a)
{
	return a >= -MOTION_ACC_MAX && a <= MOTION_ACC_MAX;
}

static int detect(struct spry_req *req, void *user)
{
	struct motion_result res = { .magic = MOTION_RESULT_MAGIC,
				     .version = MOTION_VERSION };
	unsigned int i, quiet = 0;
	struct motion_sample s;
	struct motion_hdr hdr;
	bool moving = false;
	int64_t prev_ts = 0;
	const uint8_t *p;
	size_t len;

	(void)user;
	p = spry_req_data(req, &len);
	if (len < sizeof(hdr))
		return spry_req_error(req, 400, -EINVAL, "not a motion record (%zu bytes)", len);
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.magic != MOTION_MAGIC || hdr.version != MOTION_VERSION)
		return spry_req_error(req, 400, -EINVAL, "not a motion record (magic/version)");
	if (!hdr.n || hdr.n > MOTION_MAX_SAMPLES ||
	    len != sizeof(hdr) + (size_t)hdr.n * sizeof(s))
		return spry_req_error(req, 400, -EINVAL,
				      "motion record: bad sample count %u for %zu bytes", hdr.n,
				      len);
	if (!motion_dev_ok(hdr.device))
		return spry_req_error(req, 400, -EINVAL, "motion record: bad device name");

	for (i = 0; i < hdr.n; i++) {
		uint64_t mag;
		uint32_t dev;

		memcpy(&s, p + sizeof(hdr) + (size_t)i * sizeof(s), sizeof(s));
		if (!acc_ok(s.ax) || !acc_ok(s.ay) || !acc_ok(s.az) ||
		    s.lux > MOTION_LUX_MAX || s.ts_ms <= prev_ts || s.ts_ms > MOTION_TS_MAX)
			return spry_req_error(req, 400, -EINVAL,
					      "motion record: sample %u out of range", i + 1);
		prev_ts = s.ts_ms;
		mag = isqrt((uint64_t)((int64_t)s.ax * s.ax + (int64_t)s.ay * s.ay +
				       (int64_t)s.az * s.az));
		dev = (uint32_t)(mag > MOTION_G ? mag - MOTION_G : MOTION_G - mag);
		if (dev > res.peak)
			res.peak = dev;
		if (!moving && dev >= ON_DEV) {
			moving = true;
			quiet = 0;
		} else if (moving && dev < OFF_DEV) {
			if (++quiet == OFF_SAMPLES)
				moving = false;
		} else if (moving) {
			quiet = 0;
		}
		if (moving)
			res.moving++;
		res.lux = s.lux;
		res.ts_ms = s.ts_ms;
	}
	res.samples = hdr.n;
	res.still_end = !moving;
	memcpy(res.device, hdr.device, MOTION_DEV_LEN);
	return spry_req_reply(req, 0, NULL, &res, sizeof(res));
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, detect, NULL);
}
