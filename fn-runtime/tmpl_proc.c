// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A template's FORK body for a cloud process: decode + check, encode (tmpl_proc.h). */
#include <errno.h>
#include <string.h>

#include "fn-runtime/tmpl_proc.h"
#include "spry/state.h"

#define TMPL_PROC_ID_MAX	((1ULL << 63) - 1)

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* @s[0..@len): 1..SPRY_NAME_LEN-1 name characters. */
static int name_ok(const char *s, size_t len)
{
	size_t i;

	if (!len || len >= SPRY_NAME_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!name_char(s[i]))
			return 0;
	return 1;
}

/* @len bytes at @s: a string whose only NUL is its last byte. */
static int str_ok(const char *s, size_t len)
{
	return len >= 1 && s[len - 1] == '\0' && strlen(s) == len - 1;
}

/* "F1,F2,...": 1..SPRY_TMPL_PROC_MAX_FNS names, single commas. */
static int fns_ok(const char *s)
{
	const char *end;
	unsigned int n = 0;

	for (;;) {
		end = strchr(s, ',');
		if (!end)
			end = s + strlen(s);
		if (!name_ok(s, (size_t)(end - s)) || ++n > SPRY_TMPL_PROC_MAX_FNS)
			return 0;
		if (!*end)
			return 1;
		s = end + 1;
	}
}

int spry_tmpl_proc__decode(const void *body, size_t len, struct spry_tmpl_proc_dec *out)
{
	struct spry_tmpl_proc h;
	const char *s, *path, *swap, *fns, *nul;
	size_t i;

	if (!body || len < sizeof(h))
		return -EINVAL;
	memcpy(&h, body, sizeof(h));
	if (h.pad || !h.id || h.id > TMPL_PROC_ID_MAX)
		return -EINVAL;
	if (h.state_size && (h.state_size < SPRY_STATE_MIN_SIZE ||
			     h.state_size > SPRY_STATE_MAX_SIZE))
		return -EINVAL;
	nul = memchr(h.app, '\0', sizeof(h.app));
	if (!nul || !name_ok(h.app, (size_t)(nul - h.app)))
		return -EINVAL;
	for (i = (size_t)(nul - h.app); i < sizeof(h.app); i++)
		if (h.app[i])
			return -EINVAL;
	if (h.path_len < 2 || h.path_len > SPRY_TMPL_PROC_PATH_MAX ||
	    h.swap_len == 1 || h.swap_len > SPRY_TMPL_PROC_SWAP_MAX ||
	    h.fns_len < 2 || h.fns_len > SPRY_TMPL_PROC_FNS_MAX)
		return -EINVAL;
	if (len != sizeof(h) + (size_t)h.path_len + h.swap_len + h.fns_len)
		return -EINVAL;
	s = (const char *)body + sizeof(h);
	path = s;
	swap = s + h.path_len;
	fns = swap + h.swap_len;
	if (!str_ok(path, h.path_len) || path[0] != '/')
		return -EINVAL;
	if (h.swap_len && (!str_ok(swap, h.swap_len) || swap[0] != '/'))
		return -EINVAL;
	if (!str_ok(fns, h.fns_len) || !fns_ok(fns))
		return -EINVAL;
	if (out) {
		out->hdr = h;
		out->path = path;
		out->swap = h.swap_len ? swap : "";
		out->fns = fns;
	}
	return 0;
}

int spry_tmpl_proc__encode(void *buf, size_t size, const char *app, uint64_t id,
			   uint64_t state_size, const char *path, const char *swap,
			   const char *fns)
{
	struct spry_tmpl_proc h = {};
	size_t alen, plen, slen, flen, len;
	char *b = buf;

	if (!buf || !app || !path || !fns)
		return -EINVAL;
	if (!swap)
		swap = "";
	alen = strlen(app);
	plen = strlen(path) + 1;
	slen = *swap ? strlen(swap) + 1 : 0;
	flen = strlen(fns) + 1;
	if (alen >= sizeof(h.app) || plen > SPRY_TMPL_PROC_PATH_MAX ||
	    slen > SPRY_TMPL_PROC_SWAP_MAX || flen > SPRY_TMPL_PROC_FNS_MAX)
		return -EINVAL;
	len = sizeof(h) + plen + slen + flen;
	if (size < len)
		return -ENOSPC;
	memcpy(h.app, app, alen);
	h.id = id;
	h.state_size = state_size;
	h.path_len = (uint16_t)plen;
	h.swap_len = (uint16_t)slen;
	h.fns_len = (uint16_t)flen;
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), path, plen);
	if (slen)
		memcpy(b + sizeof(h) + plen, swap, slen);
	memcpy(b + sizeof(h) + plen + slen, fns, flen);
	if (spry_tmpl_proc__decode(b, len, NULL)) {
		memset(b, 0, len);
		return -EINVAL;
	}
	return (int)len;
}
