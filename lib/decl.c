// SPDX-License-Identifier: GPL-2.0-only
/*
 * Declared functions (lib/decl.h): the record, its defaults and checks.
 * Pure (no file, no map): spry apply's parser and its fuzzer use it; the
 * files are lib/decl_file.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core.h"
#include "lib/decl.h"

void spry_fn_decl__init(struct spry_fn_decl *f)
{
	memset(f, 0, sizeof(*f));
	f->min = 0;
	f->max = SPRY_DECL_DEF_MAX;
	f->target = SPRY_DECL_DEF_TARGET;
	f->idle_ms = SPRY_DECL_DEF_IDLE_MS;
	/* cloned by the function's template (docs/ELASTIC.md, "Cold start");
	 * the supervisor lists the template and its spare apart from instances */
	f->start_exec = false;
}

int spry_fn_decl__add_arg(struct spry_fn_decl *f, const char *s)
{
	size_t used = 0, len = strlen(s);
	__u32 i;

	if (!f->argc && !len)
		return -EINVAL;
	if (f->argc >= SPRY_DECL_MAX_ARGS)
		return -E2BIG;
	for (i = 0; i < f->argc; i++)
		used += strlen(f->args + used) + 1;
	if (used + len + 1 > sizeof(f->args))
		return -E2BIG;
	memcpy(f->args + used, s, len + 1);
	f->argc++;
	return 0;
}

const char *spry_fn_decl__arg(const struct spry_fn_decl *f, __u32 i)
{
	size_t off = 0;
	__u32 k;

	if (i >= f->argc)
		return NULL;
	for (k = 0; k < i; k++)
		off += strlen(f->args + off) + 1;
	return f->args + off;
}

int spry_fn_decl__check(const struct spry_fn_decl *f, char *err, size_t errlen)
{
	const char *exe = spry_fn_decl__arg(f, 0);

	if (spry_name_check(f->fn)) {
		spry_err__set(err, errlen, "invalid function name '%.40s'", f->fn);
		return -EINVAL;
	}
	if (!exe || !*exe) {
		spry_err__set(err, errlen, "fn %s: missing 'exec PATH'", f->fn);
		return -EINVAL;
	}
	if (f->max < 1 || f->max > SPRY_MAX_INST) {
		spry_err__set(err, errlen, "fn %s: max %u out of range 1..%d", f->fn,
			      f->max, SPRY_MAX_INST);
		return -EINVAL;
	}
	if (f->min > f->max) {
		spry_err__set(err, errlen, "fn %s: min %u is above max %u", f->fn, f->min,
			      f->max);
		return -EINVAL;
	}
	if (f->target < 1 || f->target > SPRY_DECL_MAX_TARGET) {
		spry_err__set(err, errlen, "fn %s: target %u out of range 1..%d", f->fn,
			      f->target, SPRY_DECL_MAX_TARGET);
		return -EINVAL;
	}
	if (f->idle_ms < 1 || f->idle_ms > SPRY_DECL_MAX_IDLE_MS) {
		spry_err__set(err, errlen, "fn %s: idle out of range (1 ms .. 1 day)", f->fn);
		return -EINVAL;
	}
	return 0;
}

int spry_decls__find(const struct spry_chain_decls *d, const char *fn)
{
	__u32 i;

	for (i = 0; i < d->n && i < SPRY_DECL_MAX_FNS; i++)
		if (!strncmp(d->fns[i].fn, fn, SPRY_NAME_LEN))
			return (int)i;
	return -1;
}

int spry_state_dir(const char *pin_dir, char *buf, size_t len)
{
	const char *env = getenv("SPRY_STATE_DIR");
	size_t n, i;

	if (env && *env) {
		n = strlen(env);
		if (n + 1 > len)
			return -ENAMETOOLONG;
		memcpy(buf, env, n + 1);
		return 0;
	}
	n = strlen(SPRY_STATE_DIR_BASE) + 1 + strlen(pin_dir);
	if (n + 1 > len)
		return -ENAMETOOLONG;
	n = (size_t)snprintf(buf, len, "%s/%s", SPRY_STATE_DIR_BASE, pin_dir);
	for (i = strlen(SPRY_STATE_DIR_BASE) + 1; i < n; i++)
		if (buf[i] == '/')
			buf[i] = '_';
	return 0;
}
