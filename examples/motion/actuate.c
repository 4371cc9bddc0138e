// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * motion-actuate (hop actuate): the actuator commands for a detection
 * (struct motion_result), as one text/plain line:
 *
 *   device=cam7 ts=1700000000123 motion=yes light=on duration=30s alarm=off
 *
 * Rules:
 *   motion   yes when any sample was in the moving state
 *   light    on when motion and lux < 50 (dark); duration 60s when the
 *            device was still moving at the last sample, else 30s;
 *            otherwise off (no duration)
 *   alarm    on when the peak deviation is >= 9807 mm/s^2 (1 g beyond
 *            gravity: a blow or a fall: tamper), else off
 *
 *   motion-actuate --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "examples/motion/motion.h"

#define DARK_LUX	50
#define ALARM_DEV	9807

static int actuate(struct spry_req *req, void *user)
{
	struct motion_result res;
	const uint8_t *p;
	char line[160];
	bool motion, light;
	size_t len;
	int n;

	(void)user;
	p = spry_req_data(req, &len);
	if (len != sizeof(res))
		return spry_req_error(req, 400, -EINVAL, "not a motion result (%zu bytes)", len);
	memcpy(&res, p, sizeof(res));
	if (res.magic != MOTION_RESULT_MAGIC || res.version != MOTION_VERSION ||
	    !res.samples || res.samples > MOTION_MAX_SAMPLES || res.moving > res.samples ||
	    res.still_end > 1 || (!res.moving && !res.still_end) ||
	    res.lux > MOTION_LUX_MAX || res.ts_ms <= 0 || res.ts_ms > MOTION_TS_MAX ||
	    res.peak > 4 * MOTION_ACC_MAX || !motion_dev_ok(res.device))
		return spry_req_error(req, 400, -EINVAL, "not a valid motion result");

	motion = res.moving > 0;
	light = motion && res.lux < DARK_LUX;
	n = snprintf(line, sizeof(line), "device=%s ts=%lld motion=%s light=%s%s alarm=%s\n",
		     res.device, (long long)res.ts_ms, motion ? "yes" : "no",
		     light ? "on" : "off",
		     !light ? "" : res.still_end ? " duration=30s" : " duration=60s",
		     res.peak >= ALARM_DEV ? "on" : "off");
	if (n < 0 || (size_t)n >= sizeof(line))
		return spry_req_error(req, 400, -EINVAL, "response too long");
	return spry_req_reply(req, 200, "text/plain", line, n);
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, actuate, NULL);
}
