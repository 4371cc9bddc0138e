// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parking-charge: the fee, in integer cents, added as " fee=C" (and
 * " duration=S" seconds when the entry is known).
 *
 * Tariff (visitors, permit=none), for a stay of S = exit - entry seconds:
 *   S <= 900 (15 min grace)            0
 *   else per started 24 h day D = S / 86400 and rest R = S % 86400:
 *        D * 2000 + min(2000, ceil(R / 3600) * 250)
 *        i.e. 2.50 per started hour, at most 20.00 per day
 *   exit with no entry on record (lost ticket): 2500 flat
 * staff: half of that, rounded down; resident: 0; blocked: 0; entry: 0.
 *
 *   parking-charge --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "examples/parking/parking.h"

#define GRACE_S		900ULL
#define HOUR_CENTS	250ULL
#define DAY_CENTS	2000ULL
#define LOST_CENTS	2500ULL

static unsigned long long tariff(unsigned long long s)
{
	unsigned long long days = s / 86400, rest = s % 86400, part;

	if (s <= GRACE_S)
		return 0;
	part = (rest + 3599) / 3600 * HOUR_CENTS;
	return days * DAY_CENTS + (part < DAY_CENTS ? part : DAY_CENTS);
}

static int charge(struct spry_req *req, void *user)
{
	unsigned long long ts, entry = 0, fee = 0;
	char line[REC_LINE_MAX];
	const char *permit, *e;
	bool exit_ev, known = false;
	struct rec r;
	int err;

	(void)user;
	err = pk_input(req, &r, &exit_ev, &ts);
	if (err)
		return err;
	if (rec_get(&r, "fee"))
		return spry_req_error(req, 400, -EINVAL, "record already charged");
	permit = rec_get(&r, "permit");
	if (!permit || (strcmp(permit, "none") && strcmp(permit, "resident") &&
			strcmp(permit, "staff") && strcmp(permit, "blocked")))
		return spry_req_error(req, 400, -EINVAL, "record without a known permit");
	e = rec_get(&r, "entry");
	if (exit_ev && strcmp(permit, "blocked")) {
		if (!e)
			return spry_req_error(req, 400, -EINVAL,
					      "exit record without entry (index first)");
		if (strcmp(e, "none")) {
			if (rec_u64(&r, "entry", 1, ts, &entry))
				return spry_req_error(req, 400, -EINVAL, "bad entry time");
			known = true;
			fee = tariff(ts - entry);
		} else {
			fee = LOST_CENTS;
		}
		if (!strcmp(permit, "staff"))
			fee /= 2;
		else if (!strcmp(permit, "resident"))
			fee = 0;
	} else if (e) {
		return spry_req_error(req, 400, -EINVAL, "entry time on a record that has none");
	}
	err = known ? rec_set_u64(&r, "duration", ts - entry) : 0;
	if (!err)
		err = rec_set_u64(&r, "fee", fee);
	if (err)
		return spry_req_error(req, 400, err, "record too long");
	return spry_req_reply(req, 0, NULL, line, rec_format(&r, line));
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, charge, NULL);
}
