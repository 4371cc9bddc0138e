// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of a template's FORK body for a cloud process
 * (fn-runtime/tmpl_proc.c: spry_tmpl_proc__decode(), what an app's
 * template takes from spryd before its clone sets the process's id and
 * state in its environment; spry_tmpl_proc__encode(), what spryd sends).
 *
 * Input: the body as received (any length).
 *
 * Asserted (abort() on failure), besides ASan/UBSan/LeakSanitizer:
 *   - decode returns 0 or -EINVAL, and 0 exactly when the body follows
 *     every rule of fn-runtime/tmpl_proc.h, checked here from the rules
 *     as written (an independent oracle);
 *   - accepted: the strings point into the body where its lengths say,
 *     each is what the oracle read, and encoding the fields again gives
 *     back the same bytes (one encoding);
 *   - encode, given fields cut from the input: a length exactly when the
 *     oracle accepts them, and then its output decodes to the same
 *     fields; refused: -EINVAL (or -ENOSPC for a too small buffer).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn-runtime/tmpl_proc.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_tmpl_proc: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

#define HDR	56

static bool name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static unsigned int le16(const uint8_t *p)
{
	return (unsigned int)p[0] | (unsigned int)p[1] << 8;
}

/* @n bytes at @p: a string of @n - 1 non-NUL bytes and its NUL */
static bool cstr(const uint8_t *p, size_t n)
{
	size_t i;

	if (n < 1 || p[n - 1])
		return false;
	for (i = 0; i + 1 < n; i++)
		if (!p[i])
			return false;
	return true;
}

/* "F1,F2,...": 1..32 names of 1..31 name characters */
static bool fns_rule(const char *s)
{
	size_t len = 0, n = 1;

	for (;; s++) {
		if (*s == ',' || !*s) {
			if (len < 1 || len > 31 || n > 32)
				return false;
			if (!*s)
				return true;
			len = 0;
			n++;
		} else if (!name_char((uint8_t)*s)) {
			return false;
		} else {
			len++;
		}
	}
}

static bool fields_ok(const char *app, uint64_t id, uint64_t size, const char *path,
		      const char *swap, const char *fns)
{
	size_t i, alen = strlen(app);

	if (alen < 1 || alen > 31)
		return false;
	for (i = 0; i < alen; i++)
		if (!name_char((uint8_t)app[i]))
			return false;
	if (id < 1 || id > (1ULL << 63) - 1)
		return false;
	if (size && (size < (256u << 10) || size > (1ULL << 40)))
		return false;
	if (path[0] != '/' || strlen(path) + 1 > 4096)
		return false;
	if (*swap && (swap[0] != '/' || strlen(swap) + 1 > 512))
		return false;
	return strlen(fns) + 1 <= 1024 && fns_rule(fns);
}

/* the rules as fn-runtime/tmpl_proc.h states them */
static bool body_ok(const uint8_t *p, size_t n)
{
	unsigned int pl, sl, fl;
	size_t i, alen;

	if (n < HDR)
		return false;
	pl = le16(p + 16);
	sl = le16(p + 18);
	fl = le16(p + 20);
	if (le16(p + 22))
		return false;
	for (alen = 0; alen < 32 && p[24 + alen]; alen++)
		;
	if (alen == 32)
		return false;
	for (i = alen; i < 32; i++)
		if (p[24 + i])
			return false;
	if (pl < 2 || pl > 4096 || sl == 1 || sl > 512 || fl < 2 || fl > 1024)
		return false;
	if (n != HDR + (size_t)pl + sl + fl)
		return false;
	if (!cstr(p + HDR, pl) || (sl && !cstr(p + HDR + pl, sl)) || !cstr(p + HDR + pl + sl, fl))
		return false;
	return fields_ok((const char *)p + 24, le64(p), le64(p + 8), (const char *)p + HDR,
			 sl ? (const char *)p + HDR + pl : "", (const char *)p + HDR + pl + sl);
}

static uint8_t buf[SPRY_TMPL_PROC_BODY_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spry_tmpl_proc_dec d, d2;
	char app[40], *s, *f[3];
	uint64_t id = 0, ssize = 0;
	size_t i, k, nlen;
	bool ok;
	int ret, len;

	/* 1. decode the input as a body */
	ret = spry_tmpl_proc__decode(data, size, &d);
	ok = body_ok(data, size);
	check(ret == 0 || ret == -EINVAL);
	check((ret == 0) == ok);
	if (!ret) {
		check(d.path == (const char *)data + HDR);
		check(strlen(d.path) + 1 == d.hdr.path_len);
		check(d.hdr.swap_len ? d.swap == d.path + d.hdr.path_len : !*d.swap);
		check(d.fns == (const char *)data + HDR + d.hdr.path_len + d.hdr.swap_len);
		check(spry_tmpl_proc__decode(data, size, NULL) == 0);
		len = spry_tmpl_proc__encode(buf, sizeof(buf), d.hdr.app, d.hdr.id,
					     d.hdr.state_size, d.path, d.swap, d.fns);
		check(len > 0 && (size_t)len == size && !memcmp(buf, data, size));
		/* one byte short of room */
		check(spry_tmpl_proc__encode(buf, size - 1, d.hdr.app, d.hdr.id, d.hdr.state_size,
					     d.path, d.swap, d.fns) == -ENOSPC);
	}

	/* 2. encode: id, size, then app, path, swap, fns split at '\n' */
	if (size < 16)
		return 0;
	memcpy(&id, data, 8);
	memcpy(&ssize, data + 8, 8);
	if (data[15] & 0x80)	/* some sizes the rules accept */
		ssize = (ssize % (1ULL << 40)) + (256u << 10);
	s = malloc(size - 16 + 1);
	check(s);
	memcpy(s, data + 16, size - 16);
	s[size - 16] = '\0';
	nlen = strcspn(s, "\n");
	k = 0;
	for (i = nlen; s[i] && k < 3; i++) {
		if (s[i] == '\n') {
			s[i] = '\0';
			f[k++] = s + i + 1;
		}
	}
	if (k < 3 || nlen >= sizeof(app)) {
		free(s);
		return 0;
	}
	for (i = 0; i < 3; i++)
		f[i][strcspn(f[i], "\n")] = '\0';
	memcpy(app, s, nlen + 1);
	ok = fields_ok(app, id, ssize, f[0], f[1], f[2]);
	len = spry_tmpl_proc__encode(buf, sizeof(buf), app, id, ssize, f[0], f[1], f[2]);
	check(ok ? len > 0 : len == -EINVAL);
	if (len > 0) {
		check(spry_tmpl_proc__decode(buf, (size_t)len, &d2) == 0);
		check(!strcmp(d2.hdr.app, app) && d2.hdr.id == id && d2.hdr.state_size == ssize);
		check(!strcmp(d2.path, f[0]) && !strcmp(d2.swap, f[1]) && !strcmp(d2.fns, f[2]));
	}
	free(s);
	return 0;
}
