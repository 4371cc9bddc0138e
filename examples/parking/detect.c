// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parking-detect: the parking chain's first hop.  Reads the licence plate
 * on the request's image and replaces the request with its record.
 *
 *   in:  "event=entry|exit ts=SECONDS\n" then a binary PGM (P5) image
 *   out: "event=E ts=T plate=KA5791Z\n"
 *
 * Errors (the request ends with fn_error, payload "error: ...", @status):
 * 400 bad header line or PGM, 413 image over 1024x1024 / 256 Kpixels,
 * 422 no plate found or not 7 readable characters.
 *
 *   parking-detect --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "examples/parking/parking.h"
#include "examples/parking/plate.h"

static int detect(struct spry_req *req, void *user)
{
	char text[PLATE_LEN + 1], line[REC_LINE_MAX];
	unsigned long long ts;
	const uint8_t *p, *nl;
	const char *why = NULL;
	struct pgm img;
	struct rec r;
	size_t len, hl;
	int err;

	(void)user;
	p = spry_req_data(req, &len);
	nl = memchr(p, '\n', len < REC_LINE_MAX ? len : REC_LINE_MAX);
	if (!nl)
		return spry_req_error(req, 400, -EINVAL,
				      "no header line (event=entry|exit ts=SECONDS)");
	hl = nl - p + 1;
	if (rec_parse(p, hl, &r, &why))
		return spry_req_error(req, 400, -EINVAL, "bad header line: %s", why);
	if (r.n != 2 || !rec_get(&r, "event") ||
	    (strcmp(rec_get(&r, "event"), "entry") && strcmp(rec_get(&r, "event"), "exit")) ||
	    rec_u64(&r, "ts", 1, PK_TS_MAX, &ts))
		return spry_req_error(req, 400, -EINVAL,
				      "header line must be event=entry|exit ts=SECONDS");

	err = pgm_parse(p + hl, len - hl, &img, &why);
	if (err)
		return spry_req_error(req, err == -E2BIG ? 413 : 400, -EINVAL, "image: %s", why);
	err = plate_read(&img, text, NULL);
	if (err == -ENOMEM)
		return spry_req_error(req, 503, err, "out of memory");
	if (err)
		return spry_req_error(req, 422, -EINVAL, "%s",
				      err == -ENOENT ? "no plate found in the image" : "plate found but not readable");
	err = rec_set(&r, "plate", text);
	if (err)
		return spry_req_error(req, 500, err, "cannot build the record");
	return spry_req_reply(req, 0, NULL, line, rec_format(&r, line));
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, detect, NULL);
}
