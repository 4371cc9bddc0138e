// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The process state inside a function (spry_fn_state()): the store named
 * by the environment spryd sets when it spawns a cloud process, opened on
 * first use and shared by every handler and thread of the process
 * (include/spry/state.h, docs/STATE.md).
 */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fn-runtime/parse.h"
#include "shm/state_internal.h"

#define STATE_DEFAULT_SIZE	(64ULL << 20)

static pthread_mutex_t fn_state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spry_state *fn_state;

static struct spry_state *fn_state_open(void)
{
	const char *path = getenv(SPRY_STATE_PATH_ENV);
	const char *dir = getenv(SPRY_STATE_SWAP_DIR_ENV);
	const char *app = getenv(SPRY_STATE_APP_ENV);
	const char *size = getenv(SPRY_STATE_SIZE_ENV);
	struct spry_state_opts o = { .size = STATE_DEFAULT_SIZE };
	struct spry_state *st;
	int err;

	if (!path || !*path) {
		state_seterr(0, "SPRY_STATE_PATH is not set: this process has no state");
		errno = ENOENT;
		return NULL;
	}
	if (size && *size) {
		/* 0: open only (spryd's process that has a swap file) */
		err = spry_num__parse(size, NULL, 0, SPRY_STATE_MAX_SIZE, &o.size);
		if (!err && o.size && o.size < SPRY_STATE_MIN_SIZE)
			err = -ERANGE;
		if (err) {
			state_seterr(-err, "SPRY_STATE_SIZE '%s' (bytes, 0 or %u..%llu)", size,
				     SPRY_STATE_MIN_SIZE, (unsigned long long)SPRY_STATE_MAX_SIZE);
			errno = -err;
			return NULL;
		}
	}
	if (dir && *dir) {
		if (!app || !*app) {
			state_seterr(0, "SPRY_STATE_SWAP_DIR is set without SPRY_STATE_APP");
			errno = EINVAL;
			return NULL;
		}
		st = spry_state_open_swap(path, dir, app, &o);
	} else {
		st = spry_state_open(path, &o);
	}
	if (!st && errno == ENOENT && !o.size) {
		/* told it has a state: gone is not "no state" (ENOENT), it is lost */
		char why[400];

		snprintf(why, sizeof(why), "%s", spry_state_error());
		state_seterr(0, "%s (SPRY_STATE_SIZE=0: this process's state must exist): "
			     "its state is lost", why);
		errno = ENODATA;
	}
	return st;
}

SPRY_API struct spry_state *spry_fn_state(void)
{
	struct spry_state *st;
	int err = 0;

	pthread_mutex_lock(&fn_state_lock);
	if (!fn_state) {
		fn_state = fn_state_open();
		if (!fn_state)
			err = errno;
	}
	st = fn_state;
	pthread_mutex_unlock(&fn_state_lock);
	if (!st)
		errno = err;
	return st;
}
