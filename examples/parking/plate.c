// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Licence plates: PGM parser, renderer and reader (see plate.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "examples/parking/plate.h"

#define FONT_W		5
#define FONT_H		7
#define NOISE		24
#define MATCH_PCT	85

/* The 5x7 font: one byte per row, bit 4 = leftmost column. */
static const struct glyph {
	char	c;
	uint8_t	row[FONT_H];
} font[] = {
	{ '0', { 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e } },
	{ '1', { 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e } },
	{ '2', { 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f } },
	{ '3', { 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e } },
	{ '4', { 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 } },
	{ '5', { 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e } },
	{ '6', { 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e } },
	{ '7', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 } },
	{ '8', { 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e } },
	{ '9', { 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c } },
	{ 'A', { 0x0e, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11 } },
	{ 'B', { 0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e } },
	{ 'C', { 0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e } },
	{ 'D', { 0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c } },
	{ 'E', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f } },
	{ 'F', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10 } },
	{ 'G', { 0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f } },
	{ 'H', { 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 } },
	{ 'I', { 0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e } },
	{ 'J', { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c } },
	{ 'K', { 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 } },
	{ 'L', { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f } },
	{ 'M', { 0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11 } },
	{ 'N', { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 } },
	{ 'O', { 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
	{ 'P', { 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10 } },
	{ 'Q', { 0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d } },
	{ 'R', { 0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11 } },
	{ 'S', { 0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e } },
	{ 'T', { 0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 } },
	{ 'U', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
	{ 'V', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04 } },
	{ 'W', { 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a } },
	{ 'X', { 0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11 } },
	{ 'Y', { 0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04 } },
	{ 'Z', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f } },
};
#define N_GLYPHS	(sizeof(font) / sizeof(font[0]))

static const struct glyph *glyph_of(char c)
{
	size_t i;

	for (i = 0; i < N_GLYPHS; i++)
		if (font[i].c == c)
			return &font[i];
	return NULL;
}

int plate_char_ok(char c)
{
	return glyph_of(c) != NULL;
}

static bool glyph_px(const struct glyph *g, unsigned int x, unsigned int y)
{
	return g->row[y] & (0x10 >> x);
}

/* Leftmost and rightmost inked columns of @g. */
static void glyph_cols(const struct glyph *g, unsigned int *x0, unsigned int *x1)
{
	unsigned int x, y;

	*x0 = FONT_W;
	*x1 = 0;
	for (x = 0; x < FONT_W; x++)
		for (y = 0; y < FONT_H; y++)
			if (glyph_px(g, x, y)) {
				if (x < *x0)
					*x0 = x;
				*x1 = x;
			}
}

/* ---------------------------------------------------------------- PGM */

static bool pgm_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skip whitespace and comments, then read a decimal number <= @max. */
static int pgm_num(const uint8_t *buf, size_t len, size_t *pos, unsigned int max,
		   unsigned int *out)
{
	size_t p = *pos;
	unsigned long v = 0;
	size_t digits = 0;

	for (;;) {
		if (p >= len)
			return -ENODATA;
		if (pgm_space(buf[p])) {
			p++;
		} else if (buf[p] == '#') {
			while (p < len && buf[p] != '\n' && buf[p] != '\r')
				p++;
		} else {
			break;
		}
	}
	while (p < len && buf[p] >= '0' && buf[p] <= '9') {
		v = v * 10 + (buf[p] - '0');
		if (v > max)
			return -E2BIG;
		p++;
		digits++;
	}
	if (!digits)
		return -EINVAL;
	if (p >= len)
		return -ENODATA;
	if (!pgm_space(buf[p]) && buf[p] != '#')
		return -EINVAL;
	*pos = p;
	*out = (unsigned int)v;
	return 0;
}

int pgm_parse(const uint8_t *buf, size_t len, struct pgm *img, const char **why)
{
	unsigned int w, h, maxval;
	size_t pos = 2, n, i;
	const char *dummy;
	int err;

	if (!why)
		why = &dummy;
	if (len < 2 || buf[0] != 'P' || buf[1] != '5') {
		*why = "not a binary PGM (magic P5)";
		return len < 2 ? -ENODATA : -EINVAL;
	}
	/* 10x the limit still fits in an unsigned int: tells "huge" apart */
	err = pgm_num(buf, len, &pos, 100000, &w);
	if (!err)
		err = pgm_num(buf, len, &pos, 100000, &h);
	if (!err && (!w || !h)) {
		*why = "zero width or height";
		return -EINVAL;
	}
	if (err == -E2BIG ||
	    (!err && (w > PGM_MAX_DIM || h > PGM_MAX_DIM ||
		      (size_t)w * h > PGM_MAX_PIXELS))) {
		*why = "image too large";
		return -E2BIG;
	}
	if (!err)
		err = pgm_num(buf, len, &pos, 65535, &maxval);
	if (err) {
		*why = err == -ENODATA ? "truncated PGM header" : "malformed PGM header";
		return err;
	}
	if (!maxval || maxval > 255) {
		*why = "maxval not in 1..255";
		return -EINVAL;
	}
	/* exactly one whitespace byte before the raster */
	if (!pgm_space(buf[pos])) {
		*why = "malformed PGM header";
		return -EINVAL;
	}
	pos++;
	n = (size_t)w * h;
	if (len - pos < n) {
		*why = "truncated PGM raster";
		return -ENODATA;
	}
	if (len - pos > n) {
		*why = "trailing bytes after the PGM raster";
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		if (buf[pos + i] > maxval) {
			*why = "pixel value over maxval";
			return -EINVAL;
		}
	img->w = w;
	img->h = h;
	img->maxval = maxval;
	img->pix = buf + pos;
	return 0;
}

/* ------------------------------------------------------------ renderer */

static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static uint8_t noisy(int base, uint32_t *s)
{
	int v = base + (int)(xorshift32(s) % (2 * NOISE + 1)) - NOISE;

	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

void plate_size(unsigned int scale, unsigned int *pw, unsigned int *ph)
{
	*pw = scale * (3 + PLATE_LEN * FONT_W + (PLATE_LEN - 1) * 2 + 3);
	*ph = scale * (3 + FONT_H + 3);
}

int plate_render(uint8_t *pix, unsigned int w, unsigned int h, const char *text,
		 unsigned int x, unsigned int y, unsigned int scale, uint32_t seed)
{
	const struct glyph *g[PLATE_LEN];
	unsigned int pw, ph, i, px, py;
	uint32_t s = seed ? seed : 0x2545f491;
	uint8_t *block;

	if (!text || strlen(text) != PLATE_LEN || !scale || scale > 8)
		return -EINVAL;
	for (i = 0; i < PLATE_LEN; i++) {
		g[i] = glyph_of(text[i]);
		if (!g[i])
			return -EINVAL;
	}
	plate_size(scale, &pw, &ph);
	if (w > PGM_MAX_DIM || h > PGM_MAX_DIM || x > w || y > h ||
	    pw > w - x || ph > h - y)
		return -EINVAL;

	/* background: 4x4 blocks of 30..150 */
	block = malloc(((w + 3) / 4) * ((h + 3) / 4));
	if (!block)
		return -ENOMEM;
	for (i = 0; i < ((w + 3) / 4) * ((h + 3) / 4); i++)
		block[i] = 30 + xorshift32(&s) % 121;
	for (py = 0; py < h; py++)
		for (px = 0; px < w; px++)
			pix[py * w + px] = noisy(block[(py / 4) * ((w + 3) / 4) + px / 4], &s);
	free(block);

	for (py = 0; py < ph; py++)
		for (px = 0; px < pw; px++) {
			unsigned int fx = px / scale, fy = py / scale;
			int base = 220;

			/* text area: 3 font pixels in, 7 cells of 5 + 2 */
			if (fy >= 3 && fy < 3 + FONT_H && fx >= 3) {
				unsigned int cx = fx - 3, c = cx / (FONT_W + 2);

				if (c < PLATE_LEN && cx % (FONT_W + 2) < FONT_W &&
				    glyph_px(g[c], cx % (FONT_W + 2), fy - 3))
					base = 30;
			}
			pix[(y + py) * w + x + px] = noisy(base, &s);
		}
	return 0;
}

/* -------------------------------------------------------------- reader */

struct comp {
	unsigned int	x0, y0, x1, y1;	/* inclusive */
	size_t		n;
};

static uint8_t px_at(const struct pgm *img, unsigned int x, unsigned int y)
{
	unsigned int v = img->pix[(size_t)y * img->w + x];

	return (uint8_t)(v * 255 / img->maxval);
}

/* The best plate-shaped bright component, by pixel count. */
static int find_plate(const struct pgm *img, struct plate_box *box)
{
	size_t n = (size_t)img->w * img->h, top, i, best_n = 0;
	uint32_t *stack;
	uint8_t *seen;
	int found = -ENOENT;

	seen = calloc(n, 1);
	stack = malloc(n * sizeof(*stack));
	if (!seen || !stack) {
		free(seen);
		free(stack);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct comp c;
		unsigned int bw, bh;

		if (seen[i] || px_at(img, i % img->w, i / img->w) < PLATE_BRIGHT)
			continue;
		c = (struct comp){ i % img->w, i / img->w, i % img->w, i / img->w, 0 };
		seen[i] = 1;
		top = 0;
		stack[top++] = (uint32_t)i;
		while (top) {
			uint32_t p = stack[--top];
			unsigned int x = p % img->w, y = p / img->w, k;
			static const int dx[4] = { -1, 1, 0, 0 }, dy[4] = { 0, 0, -1, 1 };

			c.n++;
			if (x < c.x0)
				c.x0 = x;
			if (x > c.x1)
				c.x1 = x;
			if (y < c.y0)
				c.y0 = y;
			if (y > c.y1)
				c.y1 = y;
			for (k = 0; k < 4; k++) {
				long nx = (long)x + dx[k], ny = (long)y + dy[k];
				size_t q;

				if (nx < 0 || ny < 0 || nx >= img->w || ny >= img->h)
					continue;
				q = (size_t)ny * img->w + nx;
				if (seen[q] || px_at(img, nx, ny) < PLATE_BRIGHT)
					continue;
				seen[q] = 1;
				stack[top++] = (uint32_t)q;	/* each pixel once: fits */
			}
		}
		bw = c.x1 - c.x0 + 1;
		bh = c.y1 - c.y0 + 1;
		if (bw < 40 || bh < 12 || bw * 2 < bh * 5 || bw > bh * 8 ||
		    c.n * 2 < (size_t)bw * bh || c.n <= best_n)
			continue;
		best_n = c.n;
		*box = (struct plate_box){ c.x0, c.y0, bw, bh };
		found = 0;
	}
	free(seen);
	free(stack);
	return found;
}

static bool ink(const struct pgm *img, unsigned int x, unsigned int y)
{
	return px_at(img, x, y) < PLATE_INK;
}

/* Recognise the character whose ink box is [x0,x1] x [y0,y1]. */
static char read_char(const struct pgm *img, unsigned int x0, unsigned int x1,
		      unsigned int y0, unsigned int y1)
{
	unsigned int cw = x1 - x0 + 1, ch = y1 - y0 + 1, x, y;
	long best = -1;
	char best_c = 0;
	size_t i;

	for (i = 0; i < N_GLYPHS; i++) {
		const struct glyph *g = &font[i];
		unsigned int g0, g1, gw;
		long agree = 0;

		glyph_cols(g, &g0, &g1);
		gw = g1 - g0 + 1;
		/* the same aspect ratio, within one font column */
		if ((unsigned long)cw * FONT_H + ch < (unsigned long)gw * ch ||
		    (unsigned long)gw * ch + ch < (unsigned long)cw * FONT_H)
			continue;
		for (y = 0; y < ch; y++)
			for (x = 0; x < cw; x++) {
				unsigned int fx = g0 + x * gw / cw, fy = y * FONT_H / ch;

				if (glyph_px(g, fx, fy) == ink(img, x0 + x, y0 + y))
					agree++;
			}
		if (agree > best) {
			best = agree;
			best_c = g->c;
		}
	}
	if (best < 0 || (unsigned long)best * 100 < (unsigned long)cw * ch * MATCH_PCT)
		return 0;
	return best_c;
}

int plate_read(const struct pgm *img, char *text, struct plate_box *box)
{
	struct plate_box b;
	unsigned int x, y, n = 0;
	int err;

	err = find_plate(img, &b);
	if (err)
		return err;
	if (box)
		*box = b;
	x = b.x;
	while (x < b.x + b.w) {
		unsigned int x0, x1, y0 = UINT32_MAX, y1 = 0;
		char c;

		/* next run of columns with ink */
		for (; x < b.x + b.w; x++) {
			for (y = b.y; y < b.y + b.h && !ink(img, x, y); y++)
				;
			if (y < b.y + b.h)
				break;
		}
		if (x == b.x + b.w)
			break;
		x0 = x;
		for (; x < b.x + b.w; x++) {
			bool any = false;

			for (y = b.y; y < b.y + b.h; y++)
				if (ink(img, x, y)) {
					any = true;
					if (y < y0)
						y0 = y;
					if (y > y1)
						y1 = y;
				}
			if (!any)
				break;
		}
		x1 = x - 1;
		if (n == PLATE_LEN)
			return -EBADMSG;	/* more ink than a plate has */
		c = read_char(img, x0, x1, y0, y1);
		if (!c)
			return -EBADMSG;
		text[n++] = c;
	}
	if (n != PLATE_LEN)
		return -EBADMSG;
	text[n] = '\0';
	return 0;
}
