// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parking-gen-plate: draw a licence plate on a noisy grayscale frame and
 * write it as a binary PGM (P5).  Regenerates the shipped image:
 *
 *   parking-gen-plate -o examples/parking/plate.pgm
 *
 * (the defaults: text KA5791Z, 160x80, plate at 27,27, scale 2, seed 1).
 *
 *   parking-gen-plate [-t TEXT] [-W WIDTH] [-H HEIGHT] [-x X] [-y Y]
 *                     [-c SCALE] [-s SEED] [-e "event=entry ts=N"] [-o FILE]
 *
 * -e prefixes the image with a request header line (the parking chain's
 * request format, see examples/parking/README.md).  Output: FILE or stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/parking/plate.h"
#include "spry/spry.h"

static int num(const char *s, unsigned long max, unsigned long *out)
{
	uint64_t v;

	if (spry_parse_u64(s, strlen(s), 0, max, &v))
		return -1;
	*out = (unsigned long)v;
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-t TEXT] [-W WIDTH] [-H HEIGHT] [-x X] [-y Y] [-c SCALE] [-s SEED] [-e HEADER] [-o FILE]\n",
		prog);
}

int main(int argc, char **argv)
{
	unsigned long w = 160, h = 80, x = 27, y = 27, scale = 2, seed = 1;
	const char *text = "KA5791Z", *out = NULL, *head = NULL;
	uint8_t *pix;
	FILE *f;
	int opt, err, bad = 0;

	while ((opt = getopt(argc, argv, "t:W:H:x:y:c:s:e:o:")) != -1) {
		switch (opt) {
		case 't': text = optarg; break;
		case 'W': bad |= num(optarg, PGM_MAX_DIM, &w); break;
		case 'H': bad |= num(optarg, PGM_MAX_DIM, &h); break;
		case 'x': bad |= num(optarg, PGM_MAX_DIM, &x); break;
		case 'y': bad |= num(optarg, PGM_MAX_DIM, &y); break;
		case 'c': bad |= num(optarg, 8, &scale); break;
		case 's': bad |= num(optarg, UINT32_MAX, &seed); break;
		case 'e': head = optarg; break;
		case 'o': out = optarg; break;
		default: bad = 1;
		}
	}
	if (bad || optind != argc || !w || !h || w * h > PGM_MAX_PIXELS) {
		usage(argv[0]);
		return 2;
	}
	pix = malloc(w * h);
	if (!pix) {
		fprintf(stderr, "%s: out of memory\n", argv[0]);
		return 1;
	}
	err = plate_render(pix, w, h, text, x, y, scale, (uint32_t)seed);
	if (err) {
		fprintf(stderr, "%s: cannot draw '%s' (7 of 0-9 A-Z) at %lu,%lu scale %lu in %lux%lu\n",
			argv[0], text, x, y, scale, w, h);
		free(pix);
		return 2;
	}
	f = out ? fopen(out, "wb") : stdout;
	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], out, strerror(errno));
		free(pix);
		return 1;
	}
	if (head)
		fprintf(f, "%s\n", head);
	fprintf(f, "P5\n# spry parking example: plate %s seed %lu\n%lu %lu\n255\n",
		text, seed, w, h);
	fwrite(pix, 1, w * h, f);
	free(pix);
	if (ferror(f) | (f != stdout ? fclose(f) : fflush(f))) {
		fprintf(stderr, "%s: cannot write the image\n", argv[0]);
		return 1;
	}
	return 0;
}
