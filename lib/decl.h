/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Declared functions (issue 11): how spryd starts a chain's instances by
 * itself.  A declaration names the executable and its arguments, the user,
 * the instance bounds, the target concurrency per instance, the idle time
 * before an instance is stopped, and the CPUs.  `spry fn declare` and
 * `spry apply` (run:) write them; spryd reads them.
 *
 * They live in one root-only JSON file per chain, <state-dir>/<chain>.json
 * (directory 0700, files 0600), written whole by rename(): the pin
 * directory on bpffs holds no regular files, and a file is there before
 * spryd starts and after it restarts.  The state directory follows the pin
 * directory ($SPRY_STATE_DIR, else /run/spry/fns/<pin dir, '/' as '_'>),
 * so two pin directories (tests) never share declarations.
 * spryd writes what it does with them to <state-dir>/status.json
 * (`spry fn show`).
 */
#ifndef SPRY_LIB_DECL_H
#define SPRY_LIB_DECL_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "spry/abi.h"

#define SPRY_DECL_MAX_FNS	(SPRY_MAX_HOPS * 2)	/* hops + call-only functions */
#define SPRY_DECL_MAX_ARGS	32			/* argv entries, argv[0] included */
#define SPRY_DECL_ARGS_BYTES	2048			/* argv strings, NULs included */
#define SPRY_DECL_DEF_MAX	4
#define SPRY_DECL_DEF_TARGET	8
#define SPRY_DECL_MAX_TARGET	65536
#define SPRY_DECL_DEF_IDLE_MS	30000
#define SPRY_DECL_MAX_IDLE_MS	(86400U * 1000)
#define SPRY_DECL_DEF_QUEUE	1024
#define SPRY_DECL_MAX_QUEUE	SPRY_REQ_SLOTS
#define SPRY_STATE_DIR_BASE	"/run/spry/fns"
#define SPRY_DECL_STATUS	"status.json"

struct spry_fn_decl {
	char	fn[SPRY_NAME_LEN];
	bool	has_uid;		/* else: the chain's user */
	__u32	uid;
	__u32	min;			/* instances kept even when idle */
	__u32	max;			/* instances at most (1..SPRY_MAX_INST) */
	__u32	target;			/* requests in flight per instance */
	__u32	idle_ms;		/* no request for this long: scale down */
	__u64	cpus[SPRY_CPU_WORDS];	/* none set: the chain's, else any */
	bool	start_exec;		/* every instance by fork + exec; else (the
					 * default) cloned by the function's template
					 * (docs/ELASTIC.md, "Cold start") */
	__u32	argc;			/* argv[0] is the executable (absolute) */
	char	args[SPRY_DECL_ARGS_BYTES];	/* argc strings, NUL after each */
};

struct spry_chain_decls {
	__u32			queue;	/* requests held while instances start (0: default) */
	__u32			n;
	struct spry_fn_decl	fns[SPRY_DECL_MAX_FNS];
};

/* Defaults of everything but fn and args. */
void spry_fn_decl__init(struct spry_fn_decl *f);
/* Append argument @s; -E2BIG past SPRY_DECL_MAX_ARGS or SPRY_DECL_ARGS_BYTES, -EINVAL if empty argv[0]. */
int spry_fn_decl__add_arg(struct spry_fn_decl *f, const char *s);
/* argv[@i] of @f, or NULL past argc. */
const char *spry_fn_decl__arg(const struct spry_fn_decl *f, __u32 i);
/*
 * Check a declaration: bounds, an executable named (the loader makes a
 * relative path absolute before writing; spryd refuses a relative one).  0 or -EINVAL
 * with a one-line reason in @err.
 */
int spry_fn_decl__check(const struct spry_fn_decl *f, char *err, size_t errlen);

/* The state directory of pin directory @pin_dir into @buf: 0 or -ENAMETOOLONG. */
int spry_state_dir(const char *pin_dir, char *buf, size_t len);
/*
 * The declarations of chain @chain in @dir: 0, -ENOENT (none), or -EINVAL
 * with a reason in @err (a damaged or foreign file).
 */
int spry_decls__read(const char *dir, const char *chain, struct spry_chain_decls *out,
		     char *err, size_t errlen);
/* Write them (mkdir -p 0700, file 0600, atomic); n == 0 removes the file. */
int spry_decls__write(const char *dir, const char *chain, const struct spry_chain_decls *d);
/* Remove chain @chain's file: 0 (also when absent) or -errno. */
int spry_decls__remove(const char *dir, const char *chain);
/* The index of @fn in @d, or -1. */
int spry_decls__find(const struct spry_chain_decls *d, const char *fn);

#endif /* SPRY_LIB_DECL_H */
