/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A directory of declarations watched by inotify, so that a room reads it
 * again when it changed instead of polling it (spryd at rest makes no
 * wake-up: docs/ELASTIC.md, "At rest").  The supervisor watches the
 * declared functions' directory, the process room the apps'.
 */
#ifndef SPRYD_DIRWATCH_H
#define SPRYD_DIRWATCH_H

#include <stdbool.h>

#include "spryd/loop.h"

struct spryd_dirwatch {
	struct spryd_ep	ep;		/* first: the loop's endpoint; fd -1 unwatched */
	const char	*dir;		/* the caller's string, kept */
	const char	*const *skip;	/* names whose changes are spryd's own, or NULL */
	bool		due;		/* changed (or never read) since dirwatch__take() */
};

/* Not watched yet, and due: the first read is always wanted. */
void dirwatch__init(struct spryd_dirwatch *w, const char *dir, const char *const *skip);
/*
 * Watch w->dir (made 0700 if missing, its missing parents 0755) in @d's loop.  0 or -errno: then the
 * caller reads the directory by its mtime and tries again later.  When the
 * directory itself goes, the watch ends (fd -1) and due is set.
 */
int dirwatch__start(struct spryd *d, struct spryd_dirwatch *w);
/* True once per change seen. */
bool dirwatch__take(struct spryd_dirwatch *w);
static inline bool dirwatch__watching(const struct spryd_dirwatch *w)
{
	return w->ep.fd >= 0;
}

#endif
