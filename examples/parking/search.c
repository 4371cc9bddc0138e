// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parking-search: look the plate up in the lot's permit and block list
 * (permits.h, binary search) and add the result to the record.
 *
 *   in:  "event=E ts=T plate=P\n"
 *   out: the record + " permit=resident|staff|none", or for a blocked
 *        plate " permit=blocked reason=stolen|unpaid|banned"
 *
 * A blocked plate is not an error: the later hops let it through unparked
 * and persist logs the refusal (@status 403).
 *
 *   parking-search --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "examples/parking/parking.h"
#include "examples/parking/permits.h"

static const struct permit *lookup(const char *plate)
{
	size_t lo = 0, hi = N_PERMITS;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(plate, permits[mid].plate);

		if (!c)
			return &permits[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int search(struct spry_req *req, void *user)
{
	const struct permit *pm;
	char line[REC_LINE_MAX];
	unsigned long long ts;
	bool exit_ev;
	struct rec r;
	int err;

	(void)user;
	err = pk_input(req, &r, &exit_ev, &ts);
	if (err)
		return err;
	if (rec_get(&r, "permit"))
		return spry_req_error(req, 400, -EINVAL, "record already searched");
	pm = lookup(rec_get(&r, "plate"));
	if (!pm) {
		err = rec_set(&r, "permit", "none");
	} else if (!strncmp(pm->type, "blocked:", 8)) {
		err = rec_set(&r, "permit", "blocked");
		if (!err)
			err = rec_set(&r, "reason", pm->type + 8);
	} else {
		err = rec_set(&r, "permit", pm->type);
	}
	if (err)
		return spry_req_error(req, 400, err, "record too long");
	return spry_req_reply(req, 0, NULL, line, rec_format(&r, line));
}

int main(int argc, char **argv)
{
	size_t i;

	/* the table must stay sorted for the binary search */
	for (i = 1; i < N_PERMITS; i++)
		if (strcmp(permits[i - 1].plate, permits[i].plate) >= 0) {
			fprintf(stderr, "%s: permits.h is not sorted at %s\n", argv[0],
				permits[i].plate);
			return 1;
		}
	return spry_fn_main(argc, argv, search, NULL);
}
