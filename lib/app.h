/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Apps (docs/PROCESS.md): functions that run together in one process, a
 * cloud process, addressable by a process id.  `spry app add` and
 * `spry apply` (apps:) write an app's declaration, spryd's process room
 * (spryd/process.c) reads it.  An app is also a chain of the same name,
 * flagged SPRY_CF_APP, with one function, SPRY_APP_FN, whose instances
 * are the app's active processes; the declaration says the rest.
 *
 * One root-only JSON file per app, <state-dir>/apps/<app>.json (the state
 * directory of lib/decl.h; directory 0700, file 0600, written whole by
 * rename()).
 */
#ifndef SPRY_LIB_APP_H
#define SPRY_LIB_APP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "spry/abi.h"
#include "spry/state.h"
#include "lib/decl.h"

#define SPRY_APP_FN		"proc"		/* the app chain's one function */
#define SPRY_APP_MAX_NEXT	32		/* conditional nexts an app declares */
#define SPRY_APP_DIR		"apps"		/* under the state directory */
#define SPRY_APP_MAX_FNS	32		/* functions an app hosts */
#define SPRY_APP_DEF_MAX	1024		/* processes of an app */
#define SPRY_APP_DEF_STATE	(1ULL << 20)	/* state bytes per process */
#define SPRY_APP_MAX_STATE	SPRY_STATE_MAX_SIZE
#define SPRY_APP_DEF_IDLE_MS	60000		/* idle before swap */
#define SPRY_APP_SWAP_LEN	512		/* swap directory path */
#define SPRY_PROC_ID_MAX	((1ULL << 63) - 1)	/* process ids 1..this */

/*
 * The environment of a process's OS process (set by spryd): its id, and
 * the state store's SPRY_STATE_*_ENV (include/spry/state.h).
 */
#define SPRY_PROCESS_ID_ENV	"SPRY_PROCESS_ID"	/* decimal process id */
/*
 * The app's functions in their declared order (comma-separated): handler
 * i + 1 is the i-th, what spry_req_next() names in desc.fn.
 */
#define SPRY_APP_FNS_ENV	"SPRY_APP_FNS"

struct spry_app_decl {
	char	name[SPRY_NAME_LEN];
	__u32	n_fns;
	char	fns[SPRY_APP_MAX_FNS][SPRY_NAME_LEN];
	/*
	 * Conditional nexts (docs/WORKFLOWS.md): handler next[i][0] may pick
	 * next[i][1], both of fns; each an SPRY_AK_APP_NEXT authorization
	 * between their handler numbers (1 + index in fns).
	 */
	__u32	n_next;
	char	next[SPRY_APP_MAX_NEXT][2][SPRY_NAME_LEN];
	bool	has_uid;		/* else root */
	__u32	uid;
	__u32	max_procs;		/* processes at most (1..SPRY_MAX_PROCS) */
	__u64	state_size;		/* state bytes per process */
	char	swap_dir[SPRY_APP_SWAP_LEN];	/* absolute; "" none */
	__u32	idle_ms;		/* idle this long: swapped (0: never) */
	bool	autocreate;		/* a request without id may create one */
	bool	start_exec;		/* processes fork + exec'd, not cloned by
					 * the app's template ("start": "exec") */
	__u32	argc;			/* argv[0]: the executable (absolute) */
	char	args[SPRY_DECL_ARGS_BYTES];
};

/* Defaults of everything but name, fns and args. */
void spry_app_decl__init(struct spry_app_decl *a);
/* Append argument @s: 0, -E2BIG, -EINVAL (empty argv[0]). */
int spry_app_decl__add_arg(struct spry_app_decl *a, const char *s);
const char *spry_app_decl__arg(const struct spry_app_decl *a, __u32 i);
/* Append function @fn: 0, -EINVAL (bad name, digits only), -EEXIST, -E2BIG. */
int spry_app_decl__add_fn(struct spry_app_decl *a, const char *fn);
/*
 * Append a conditional next @from:@to: 0, -EINVAL (a name too long),
 * -E2BIG; spry_app_decl__check() checks the names and the graph.
 */
int spry_app_decl__add_next(struct spry_app_decl *a, const char *from, const char *to);
/* The index of @fn (@len bytes, no NUL needed), or -1. */
int spry_app_decl__find_fn(const struct spry_app_decl *a, const char *fn, size_t len);
/*
 * Bounds, names, an absolute executable; nexts between its functions, each
 * once, none closing a loop.  0 or -EINVAL with a reason.
 */
int spry_app_decl__check(const struct spry_app_decl *a, char *err, size_t errlen);

/* <state-dir>/apps into @buf: 0 or -ENAMETOOLONG. */
int spry_app_dir(const char *state_dir, char *buf, size_t len);
/* Read app @name from @dir (spry_app_dir): 0, -ENOENT, -EINVAL + reason. */
int spry_app__read(const char *dir, const char *name, struct spry_app_decl *out,
		   char *err, size_t errlen);
/* Write (mkdir -p 0700, file 0600, fsync, rename). */
int spry_app__write(const char *dir, const struct spry_app_decl *a);
/*
 * Swap directories are not shared: swap files are named by process id
 * alone, so two apps in one directory would overwrite and remove each
 * other's (docs/PROCESS.md, "Apps").  The first app of @dir other than
 * @self whose swap-dir is @swap_dir into @owner (SPRY_NAME_LEN): 1, else 0
 * (also when @dir does not exist), or -errno.
 */
int spry_app__swap_dir_user(const char *dir, const char *self, const char *swap_dir,
			    char *owner);
/* @a and @b name the same directory: by name (trailing slashes aside), or by inode. */
bool spry_app__same_dir(const char *a, const char *b);
/* Remove, with its process table (lib/proc_table.h): 0 (also when absent) or -errno. */
int spry_app__remove(const char *dir, const char *name);

#endif /* SPRY_LIB_APP_H */
