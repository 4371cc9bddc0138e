// SPDX-License-Identifier: GPL-2.0-only
/*
 * App declarations (lib/app.h): building and checking one.  Their files:
 * lib/app_file.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/app.h"
#include "lib/core.h"

void spry_app_decl__init(struct spry_app_decl *a)
{
	memset(a, 0, sizeof(*a));
	a->max_procs = SPRY_APP_DEF_MAX;
	a->state_size = SPRY_APP_DEF_STATE;
	a->idle_ms = SPRY_APP_DEF_IDLE_MS;
	a->autocreate = true;
}

int spry_app_decl__add_arg(struct spry_app_decl *a, const char *s)
{
	size_t used = 0, len = strlen(s);
	__u32 i;

	if (!a->argc && !len)
		return -EINVAL;
	if (a->argc >= SPRY_DECL_MAX_ARGS)
		return -E2BIG;
	for (i = 0; i < a->argc; i++)
		used += strlen(a->args + used) + 1;
	if (used + len + 1 > sizeof(a->args))
		return -E2BIG;
	memcpy(a->args + used, s, len + 1);
	a->argc++;
	return 0;
}

const char *spry_app_decl__arg(const struct spry_app_decl *a, __u32 i)
{
	size_t off = 0;
	__u32 k;

	if (i >= a->argc)
		return NULL;
	for (k = 0; k < i; k++)
		off += strlen(a->args + off) + 1;
	return a->args + off;
}

/* A function name: the chain rule, and not all digits (/APP/ID/FN). */
static bool fn_name_ok(const char *fn)
{
	size_t i;

	if (spry_name_check(fn))
		return false;
	for (i = 0; fn[i]; i++)
		if (fn[i] < '0' || fn[i] > '9')
			return true;
	return false;
}

int spry_app_decl__add_fn(struct spry_app_decl *a, const char *fn)
{
	if (!fn_name_ok(fn))
		return -EINVAL;
	if (spry_app_decl__find_fn(a, fn, strlen(fn)) >= 0)
		return -EEXIST;
	if (a->n_fns >= SPRY_APP_MAX_FNS)
		return -E2BIG;
	snprintf(a->fns[a->n_fns++], SPRY_NAME_LEN, "%s", fn);
	return 0;
}

int spry_app_decl__add_next(struct spry_app_decl *a, const char *from, const char *to)
{
	if (strlen(from) >= SPRY_NAME_LEN || strlen(to) >= SPRY_NAME_LEN)
		return -EINVAL;
	if (a->n_next >= SPRY_APP_MAX_NEXT)
		return -E2BIG;
	snprintf(a->next[a->n_next][0], SPRY_NAME_LEN, "%s", from);
	snprintf(a->next[a->n_next][1], SPRY_NAME_LEN, "%s", to);
	a->n_next++;
	return 0;
}

int spry_app_decl__find_fn(const struct spry_app_decl *a, const char *fn, size_t len)
{
	__u32 i;

	if (!len || len >= SPRY_NAME_LEN)
		return -1;
	for (i = 0; i < a->n_fns && i < SPRY_APP_MAX_FNS; i++)
		if (!strncmp(a->fns[i], fn, len) && !a->fns[i][len])
			return (int)i;
	return -1;
}

/* Handler @to reaches @from along the first @n nexts (@edge[i]: from, to). */
static bool next_reaches(const int (*edge)[2], __u32 n, int to, int from)
{
	__u32 seen = 1U << to, grew, i;

	do {
		grew = 0;
		for (i = 0; i < n; i++) {
			if ((seen & (1U << edge[i][0])) && !(seen & (1U << edge[i][1]))) {
				seen |= 1U << edge[i][1];
				grew = 1;
			}
		}
	} while (grew);
	return seen & (1U << from);
}

/*
 * Conditional nexts (docs/WORKFLOWS.md): both ends functions of the app,
 * each pair once, none closing a loop (a request must end: in an app a
 * pick may go to any handler, so the declaration is what keeps it moving
 * forward).
 */
static int next_check(const struct spry_app_decl *a, char *err, size_t errlen)
{
	int edge[SPRY_APP_MAX_NEXT][2];
	__u32 i, j;
	int k;

	if (a->n_next > SPRY_APP_MAX_NEXT) {
		spry_err__set(err, errlen, "app %s: %u nexts, at most %d", a->name, a->n_next,
			      SPRY_APP_MAX_NEXT);
		return -EINVAL;
	}
	for (i = 0; i < a->n_next; i++) {
		for (k = 0; k < 2; k++) {
			edge[i][k] = spry_app_decl__find_fn(a, a->next[i][k],
							    strnlen(a->next[i][k], SPRY_NAME_LEN));
			if (edge[i][k] < 0) {
				spry_err__set(err, errlen, "app %s: next %.32s:%.32s: '%.32s' is not "
					      "a function of the app (fns)", a->name, a->next[i][0],
					      a->next[i][1], a->next[i][k]);
				return -EINVAL;
			}
		}
		if (edge[i][0] == edge[i][1]) {
			spry_err__set(err, errlen, "app %s: next %.32s:%.32s: a function cannot "
				      "pick itself (a request would never end)", a->name,
				      a->next[i][0], a->next[i][1]);
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (edge[j][0] == edge[i][0] && edge[j][1] == edge[i][1]) {
				spry_err__set(err, errlen, "app %s: next %.32s:%.32s listed twice",
					      a->name, a->next[i][0], a->next[i][1]);
				return -EINVAL;
			}
		}
		if (next_reaches(edge, i, edge[i][1], edge[i][0])) {
			spry_err__set(err, errlen, "app %s: next %.32s:%.32s closes a loop ('%.32s' "
				      "already leads back to '%.32s': a request would never end)",
				      a->name, a->next[i][0], a->next[i][1], a->next[i][1],
				      a->next[i][0]);
			return -EINVAL;
		}
	}
	return 0;
}

int spry_app_decl__check(const struct spry_app_decl *a, char *err, size_t errlen)
{
	const char *exe = spry_app_decl__arg(a, 0);
	__u32 i;

	if (spry_name_check(a->name)) {
		spry_err__set(err, errlen, "invalid app name '%.40s'", a->name);
		return -EINVAL;
	}
	if (!a->n_fns || a->n_fns > SPRY_APP_MAX_FNS) {
		spry_err__set(err, errlen, "app %s: 1..%d functions needed", a->name,
			      SPRY_APP_MAX_FNS);
		return -EINVAL;
	}
	for (i = 0; i < a->n_fns; i++) {
		if (!fn_name_ok(a->fns[i])) {
			spry_err__set(err, errlen, "app %s: invalid function name '%.40s' "
				      "(A-Z a-z 0-9 _ . -, not digits only)", a->name, a->fns[i]);
			return -EINVAL;
		}
		if (spry_app_decl__find_fn(a, a->fns[i], strlen(a->fns[i])) != (int)i) {
			spry_err__set(err, errlen, "app %s: function %s given twice", a->name,
				      a->fns[i]);
			return -EINVAL;
		}
	}
	if (!exe || exe[0] != '/') {
		spry_err__set(err, errlen, "app %s: 'exec PATH' missing or not absolute",
			      a->name);
		return -EINVAL;
	}
	if (a->max_procs < 1 || a->max_procs > SPRY_MAX_PROCS) {
		spry_err__set(err, errlen, "app %s: max %u out of range 1..%d", a->name,
			      a->max_procs, SPRY_MAX_PROCS);
		return -EINVAL;
	}
	/* the state store's own bounds (include/spry/state.h) */
	if (a->state_size < SPRY_STATE_MIN_SIZE || a->state_size > SPRY_APP_MAX_STATE) {
		spry_err__set(err, errlen, "app %s: state size %llu out of range %u..%llu",
			      a->name, (unsigned long long)a->state_size, SPRY_STATE_MIN_SIZE,
			      (unsigned long long)SPRY_APP_MAX_STATE);
		return -EINVAL;
	}
	if (a->swap_dir[0] && a->swap_dir[0] != '/') {
		spry_err__set(err, errlen, "app %s: swap directory '%.64s' is not absolute",
			      a->name, a->swap_dir);
		return -EINVAL;
	}
	if (strnlen(a->swap_dir, sizeof(a->swap_dir)) >= sizeof(a->swap_dir)) {
		spry_err__set(err, errlen, "app %s: swap directory too long", a->name);
		return -EINVAL;
	}
	if (a->idle_ms > SPRY_DECL_MAX_IDLE_MS) {
		spry_err__set(err, errlen, "app %s: idle out of range (0 .. 1 day)", a->name);
		return -EINVAL;
	}
	return next_check(a, err, errlen);
}

