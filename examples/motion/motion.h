/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The motion chain's records (examples/motion/README.md):
 *
 *   sensor-parse -> detect:  struct motion_hdr, then n struct motion_sample
 *   detect -> actuate:       struct motion_result
 *
 * Host byte order (the chain runs on one machine); read and written with
 * memcpy (the payload has no alignment guarantee).  Every hop checks the
 * record it gets: magic, version, sizes, ranges, the device name.
 */
#ifndef SPRY_EXAMPLES_MOTION_H
#define SPRY_EXAMPLES_MOTION_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"

#define MOTION_MAGIC		0x314f4d53u	/* "SMO1" */
#define MOTION_RESULT_MAGIC	0x31524d53u	/* "SMR1" */
#define MOTION_VERSION		1
#define MOTION_MAX_SAMPLES	64
#define MOTION_DEV_LEN		16		/* NUL included */
#define MOTION_ACC_MAX		156906		/* 16 g in mm/s^2 */
#define MOTION_LUX_MAX		100000
#define MOTION_TS_MAX		4102444800000LL	/* 2100-01-01 in ms */
#define MOTION_G		9807		/* 1 g in mm/s^2 */

struct motion_hdr {
	uint32_t	magic;		/* MOTION_MAGIC */
	uint16_t	version;	/* MOTION_VERSION */
	uint16_t	n;		/* samples, 1..MOTION_MAX_SAMPLES */
	char		device[MOTION_DEV_LEN];
};
_Static_assert(sizeof(struct motion_hdr) == 24, "motion_hdr size");

struct motion_sample {
	int64_t		ts_ms;		/* ms since the epoch */
	int32_t		ax, ay, az;	/* mm/s^2, |.| <= MOTION_ACC_MAX */
	uint32_t	lux;		/* 0..MOTION_LUX_MAX */
};
_Static_assert(sizeof(struct motion_sample) == 24, "motion_sample size");

struct motion_result {
	uint32_t	magic;		/* MOTION_RESULT_MAGIC */
	uint16_t	version;
	uint16_t	samples;	/* samples looked at */
	uint16_t	moving;		/* samples in the moving state */
	uint16_t	still_end;	/* 1: still at the last sample */
	uint32_t	peak;		/* largest | |a| - 1 g |, mm/s^2 */
	uint32_t	lux;		/* light at the last sample */
	uint32_t	pad;
	int64_t		ts_ms;		/* time of the last sample */
	char		device[MOTION_DEV_LEN];
};
_Static_assert(sizeof(struct motion_result) == 48, "motion_result size");

/* 1-15 of A-Z a-z 0-9 _ -, NUL-terminated within MOTION_DEV_LEN. */
static inline bool motion_dev_ok(const char *d)
{
	size_t i;

	for (i = 0; i < MOTION_DEV_LEN && d[i]; i++)
		if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= 'A' && d[i] <= 'Z') ||
		      (d[i] >= '0' && d[i] <= '9') || d[i] == '_' || d[i] == '-'))
			return false;
	return i > 0 && i < MOTION_DEV_LEN;
}

#endif /* SPRY_EXAMPLES_MOTION_H */
