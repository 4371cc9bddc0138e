/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The example functions' work, shared by the examples and by the
 * benchmark's plain-TCP baseline (bench/chain_bench.c) so both chains run
 * the same code.  Plain functions on bytes: no spry types.
 */
#ifndef SPRY_EXAMPLES_TRANSFORMS_H
#define SPRY_EXAMPLES_TRANSFORMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* ASCII uppercase in place. */
static inline void xf_upper(unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] >= 'a' && p[i] <= 'z')
			p[i] -= 'a' - 'A';
}

/* Reverse the bytes in place. */
static inline void xf_reverse(unsigned char *p, size_t len)
{
	unsigned char t;
	size_t i;

	for (i = 0; i < len / 2; i++) {
		t = p[i];
		p[i] = p[len - 1 - i];
		p[len - 1 - i] = t;
	}
}

static inline bool xf_is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * wc(1)'s counts of @p as the line "words=N lines=M bytes=K\n" in @head
 * (@size bytes).  Returns the line's length, or -1 if it does not fit.
 */
static inline int xf_wordcount_head(const unsigned char *p, size_t len,
				    char *head, size_t size)
{
	unsigned long long words = 0, lines = 0;
	bool in_word = false;
	size_t i;
	int n;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n')
			lines++;
		if (xf_is_space(p[i])) {
			in_word = false;
		} else if (!in_word) {
			in_word = true;
			words++;
		}
	}
	n = snprintf(head, size, "words=%llu lines=%llu bytes=%zu\n", words, lines, len);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

#define XF_HEAD_MAX	96

#endif /* SPRY_EXAMPLES_TRANSFORMS_H */
