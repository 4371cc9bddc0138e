/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Licence plates on small grayscale images: the PGM (P5) parser, the
 * renderer the generator uses (gen_plate.c) and the reader the detect
 * function uses (detect.c).  Plain functions on bytes: no spry types.
 *
 * The image (what gen_plate draws, what plate_read expects):
 *   - a plate: a bright (220 +- noise) rectangle, the brightest region of
 *     the frame (retroreflective paint), with PLATE_LEN characters of the
 *     5x7 bitmap font below drawn dark (30 +- noise) at an integer scale s:
 *     3s margin around the text, 2s between characters;
 *   - a background darker than PLATE_BRIGHT (30..150 in 4x4 blocks,
 *     +- noise); noise is uniform in [-24, 24], from a seeded xorshift32.
 *
 * The reader: threshold at PLATE_BRIGHT, 4-connected components of bright
 * pixels, the plate is the largest component whose bounding box is at
 * least 40x12 with a width/height ratio in [2.5, 8] and at least half
 * bright; inside it ink is < PLATE_INK; columns with ink split the
 * characters; each character's ink box is compared cell by cell with
 * every glyph of the font (scaled to the box) and the best match wins if
 * at least 85% of its pixels agree.
 */
#ifndef SPRY_EXAMPLES_PLATE_H
#define SPRY_EXAMPLES_PLATE_H

#include <stddef.h>
#include <stdint.h>

#define PLATE_LEN	7		/* characters on a plate */
#define PLATE_BRIGHT	190		/* plate background threshold */
#define PLATE_INK	128		/* ink threshold inside the plate */
#define PGM_MAX_DIM	1024		/* width and height at most */
#define PGM_MAX_PIXELS	(256 * 1024)	/* width * height at most */

struct pgm {
	unsigned int	w, h;
	const uint8_t	*pix;		/* w * h bytes, row major */
	unsigned int	maxval;		/* 1..255 */
};

/*
 * Parse a binary PGM (P5) of exactly @len bytes: "P5", width, height,
 * maxval (1..255) as decimal numbers separated by whitespace or '#'
 * comments, one whitespace byte, then exactly width*height pixel bytes,
 * each <= maxval.  0, or -EINVAL (malformed, trailing bytes, pixel over
 * maxval), -E2BIG (over PGM_MAX_DIM / PGM_MAX_PIXELS), -ENODATA
 * (truncated).  @why (may be NULL) gets a short reason.
 */
int pgm_parse(const uint8_t *buf, size_t len, struct pgm *img, const char **why);

/* True if @c is a character of the font (0-9, A-Z). */
int plate_char_ok(char c);

/* Plate size in pixels for font scale @scale. */
void plate_size(unsigned int scale, unsigned int *pw, unsigned int *ph);

/*
 * Draw a @w x @h frame into @pix: noisy background, a plate with @text
 * (PLATE_LEN font characters) at (@x, @y), font scale @scale, noise from
 * @seed.  -EINVAL if the text is bad or the plate does not fit.
 */
int plate_render(uint8_t *pix, unsigned int w, unsigned int h, const char *text,
		 unsigned int x, unsigned int y, unsigned int scale, uint32_t seed);

struct plate_box {
	unsigned int	x, y, w, h;
};

/*
 * Read the plate in @img (pixels scaled to 0..255 by maxval) into
 * @text (PLATE_LEN + 1 bytes, NUL-terminated).  0, -ENOENT no plate found,
 * -EBADMSG a plate but not PLATE_LEN readable characters, -ENOMEM.
 * @box (may be NULL) gets the plate's bounding box.
 */
int plate_read(const struct pgm *img, char *text, struct plate_box *box);

#endif /* SPRY_EXAMPLES_PLATE_H */
