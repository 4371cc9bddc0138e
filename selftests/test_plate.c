// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_plate: the parking example's plate reader (examples/parking/plate.c)
 * on the shipped image and on generated variants (shifted, other noise
 * seeds, other texts, another font scale), and its refusal of images
 * without a plate and of malformed PGM files.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/parking/plate.h"
#include "selftests/tap.h"

#define IMG_MAX		(64 * 1024)

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return -errno;
	*len = fread(buf, 1, cap, f);
	fclose(f);
	return 0;
}

/*
 * The shipped image: installed by kselftest (spry-bins next to this
 * program), in example-data/ beside it; in spry's tree, under SPRY_SRC (or
 * .. from selftests/, where the runner starts us).
 */
static void shipped_path(char *path, size_t size)
{
	const char *src = getenv("SPRY_SRC");
	char dir[PATH_MAX], marker[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	char *slash;

	if (n > 0) {
		dir[n] = '\0';
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			snprintf(marker, sizeof(marker), "%s/spry-bins", dir);
			if (!access(marker, F_OK)) {
				snprintf(path, size, "%s/example-data/parking/plate.pgm", dir);
				return;
			}
		}
	}
	snprintf(path, size, "%s/examples/parking/plate.pgm", src ? src : "..");
}

/* Render @text and read it back. */
static int variant(const char *text, unsigned int w, unsigned int h, unsigned int x,
		   unsigned int y, unsigned int scale, uint32_t seed, char *got)
{
	struct pgm img = { .w = w, .h = h, .maxval = 255 };
	uint8_t *pix = malloc((size_t)w * h);
	int err;

	if (!pix)
		return -ENOMEM;
	err = plate_render(pix, w, h, text, x, y, scale, seed);
	if (!err) {
		img.pix = pix;
		err = plate_read(&img, got, NULL);
	}
	free(pix);
	return err;
}

static int parse_str(const char *s, size_t len)
{
	struct pgm img;

	return pgm_parse((const uint8_t *)s, len, &img, NULL);
}

int main(void)
{
	static uint8_t buf[IMG_MAX];
	static const struct {
		const char *text;
		unsigned int w, h, x, y, scale;
		uint32_t seed;
	} vars[] = {
		{ "KA5791Z", 160, 80, 3, 50, 2, 7 },		/* shifted, other noise */
		{ "XY98ZT2", 160, 80, 40, 10, 2, 12345 },	/* other text */
		{ "M0O1IQ8", 200, 100, 10, 30, 3, 99 },		/* scale 3, look-alikes */
		{ "BJ4WN6V", 120, 40, 6, 6, 1, 3 },		/* scale 1 */
	};
	char got[PLATE_LEN + 1], path[PATH_MAX + 64];
	struct plate_box box;
	struct pgm img;
	size_t len = 0, i;
	uint8_t *pix;
	int err;


	shipped_path(path, sizeof(path));
	err = read_file(path, buf, sizeof(buf), &len);
	if (!err)
		err = pgm_parse(buf, len, &img, NULL);
	tap_ok(!err && img.w == 160 && img.h == 80, "shipped %s parses: %ux%u", path,
	       err ? 0 : img.w, err ? 0 : img.h);
	err = err ? err : plate_read(&img, got, &box);
	tap_ok(!err && !strcmp(got, "KA5791Z"), "shipped image reads KA5791Z (%s, box %u,%u %ux%u)",
	       err ? strerror(-err) : got, box.x, box.y, box.w, box.h);

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		err = variant(vars[i].text, vars[i].w, vars[i].h, vars[i].x, vars[i].y,
			      vars[i].scale, vars[i].seed, got);
		tap_ok(!err && !strcmp(got, vars[i].text),
		       "variant %s at %u,%u scale %u seed %u reads %s", vars[i].text,
		       vars[i].x, vars[i].y, vars[i].scale, vars[i].seed,
		       err ? strerror(-err) : got);
	}

	/* every seed 1..200 of the shipped layout */
	err = 0;
	for (i = 1; i <= 200 && !err; i++) {
		err = variant("Z7Y3X1W", 160, 80, (unsigned int)(i % 50), (unsigned int)(i % 50),
			      2, (uint32_t)i, got);
		if (!err && strcmp(got, "Z7Y3X1W"))
			err = -EBADMSG;
	}
	tap_ok(!err, "200 seeds and positions: all read Z7Y3X1W (%s)", err ? strerror(-err) : "ok");

	/* background only: no plate */
	pix = malloc(160 * 80);
	if (pix) {
		plate_render(pix, 160, 80, "AAAAAAA", 0, 0, 1, 5);
		memset(pix, 90, 160 * 80);
		img = (struct pgm){ .w = 160, .h = 80, .maxval = 255, .pix = pix };
		err = plate_read(&img, got, NULL);
		free(pix);
	}
	tap_ok(pix && err == -ENOENT, "a frame without a plate: -ENOENT (%d)", err);

	tap_ok(parse_str("P6\n1 1\n255\n\0", 12) == -EINVAL, "wrong magic refused");
	tap_ok(parse_str("P5\n4 4\n255\n\1\2\3", 14) == -ENODATA, "truncated raster refused");
	tap_ok(parse_str("P5\n99999 99999\n255\n", 19) == -E2BIG &&
	       parse_str("P5\n4294967296 1\n255\n", 20) == -E2BIG,
	       "huge dimensions refused");
	tap_ok(parse_str("P5\n1 1\n0\n\0", 10) == -EINVAL &&
	       parse_str("P5\n1 1\n100\n\200", 12) == -EINVAL &&
	       parse_str("P5\n1 1\n255\n\0\0", 13) == -EINVAL &&
	       parse_str("P5\n-1 1\n255\n\0", 13) == -EINVAL &&
	       parse_str("P5 #c\n1 # c\n1\n255\n\7", 19) == 0,
	       "maxval 0, pixel over maxval, trailing bytes, sign refused; comments ok");
	return tap_finish();
}
