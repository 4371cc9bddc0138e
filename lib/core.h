/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libsprycore: what the loader (spry) and the daemon (spryd) share.
 * Pinned maps, the pin-directory lock, chain and function records, names.
 * Internal: never installed, never linked by functions.
 *
 * Conventions: int functions return 0 or -errno; pointer functions return
 * NULL and set errno.
 */
#ifndef SPRY_CORE_H
#define SPRY_CORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "spry/abi.h"
#include "lib/decl.h"

/* File descriptors of every pinned map, -1 when not open. */
struct spry_maps {
	int	socks;
	int	senders;
	int	chains;
	int	fns;
	int	auth;
	int	inst;
	int	verdicts;
	int	fn_stats;
	int	reqloc;
	int	events;
	int	procs;
	int	fanrec;
	char	dir[PATH_MAX];
};

/* Number of pinned maps, and their pin names in struct spry_maps order. */
#define SPRY_N_MAPS	12
extern const char *const spry_map_pin_names[SPRY_N_MAPS + 1];	/* NULL-terminated */

/* Pin directory: @override, else $SPRY_PIN_DIR, else SPRY_PIN_DIR_DEFAULT. */
const char *spry_pin_dir(const char *override);
/* Mount bpffs on the pin directory's bpffs root if needed; mkdir -p 0700. */
int spry_bpffs_ensure(const char *dir);
/* flock(@how) the pin directory (created if missing); returns the fd. */
int spry_pin_lock(const char *dir, int how);
void spry_pin_unlock(int fd);

/* Every fd -1 (safe to spry_maps__close()). */
void spry_maps__init(struct spry_maps *m);
/*
 * Open every pinned map of a loaded spry; -ENOENT when not loaded, -EPROTO
 * when a pinned map's type or sizes do not match include/spry/abi.h.
 */
int spry_maps__open(struct spry_maps *m, const char *dir);
void spry_maps__close(struct spry_maps *m);

/* A chain as written by `spry chain add` and `spry apply`. */
struct spry_chain_spec {
	char	name[SPRY_NAME_LEN];
	__u32	uid;
	__u32	buf_size;		/* 0: default */
	__u32	n_bufs;			/* 0: default */
	__u32	max_inflight;		/* 0: default */
	__u32	deadline_ms;		/* 0: default */
	__u32	n_hops;
	char	hops[SPRY_MAX_HOPS][SPRY_NAME_LEN];
	__u32	n_extra;		/* functions reachable only by calls */
	char	extra[SPRY_MAX_HOPS][SPRY_NAME_LEN];
	__u32	n_allow;		/* extra hand-offs (calls) */
	char	allow[SPRY_MAX_HOPS * 2][2][SPRY_NAME_LEN];
	/* Conditional nexts (docs/WORKFLOWS.md): hops[] F may pick hops[] G,
	 * G after F (SPRY_AK_NEXT authorizations). */
	__u32	n_next;
	char	next[SPRY_MAX_HOPS * 2][2][SPRY_NAME_LEN];	/* SPRY_MAX_ALLOW */
	__u32	idempotent_mask;	/* bit i: hops[i] may be retried */
	__u64	cpus[SPRY_CPU_WORDS];	/* placement; none set: any CPU */
	/*
	 * Who may invoke it through spryd (struct spry_chain.invoke_*):
	 * without invoke_set, the chain's user (and root, always).
	 */
	bool	invoke_set;
	__u32	n_invoke_uids;
	__u32	invoke_uids[SPRY_MAX_INVOKERS];
	__u32	n_invoke_gids;
	__u32	invoke_gids[SPRY_MAX_INVOKERS];
	bool	http_off;		/* not served by spryd's HTTP front */
	bool	app;			/* an app's chain (SPRY_CF_APP, lib/app.h) */
	/*
	 * An app's conditional nexts (docs/WORKFLOWS.md): handler numbers
	 * (1 + index in the app's fns), SPRY_AK_APP_NEXT authorizations.
	 */
	__u32	n_app_next;
	__u16	app_next[SPRY_MAX_HOPS * 2][2];	/* SPRY_MAX_ALLOW */
	/*
	 * Functions spryd starts itself (lib/decl.h): not in the maps but in
	 * the state directory's file of the chain.
	 */
	struct spry_chain_decls	decls;
};

#define SPRY_DEF_BUF_SIZE	4096
#define SPRY_DEF_N_BUFS		1024
#define SPRY_DEF_MAX_INFLIGHT	256
#define SPRY_DEF_DEADLINE_MS	5000

/* Accepted ranges of the spec's sizes (0 always means the default). */
#define SPRY_MIN_BUF_SIZE	64
#define SPRY_MAX_BUF_SIZE	(64U << 20)		/* 64 MiB */
#define SPRY_MAX_N_BUFS		(1U << 20)
#define SPRY_MAX_POOL_BYTES	(16ULL << 30)		/* n_bufs * buf_size */
#define SPRY_MAX_INFLIGHT	SPRY_REQ_SLOTS
#define SPRY_MAX_DEADLINE_MS	(3600U * 1000)		/* one hour */
#define SPRY_MAX_ALLOW		(SPRY_MAX_HOPS * 2)

/*
 * Check a spec: names, counts, sizes, no duplicate function, calls and
 * idempotent bits naming the chain's functions.  0 or -EINVAL with a
 * one-line reason in @err (may be NULL).
 */
int spry_chain_spec__check(const struct spry_chain_spec *spec, char *err,
			   size_t errlen);

/*
 * Whether a peer with @uid, @gid and supplementary @groups (@n_groups of
 * them; NULL, 0: not known) may invoke chain @c through spryd: root
 * always, else a uid or group the chain lists.
 */
bool spry_chain__may_invoke(const struct spry_chain *c, __u32 uid, __u32 gid,
			    const __u32 *groups, size_t n_groups);

/* Chains.  -ENOENT when absent. */
int spry_chain__lookup(const struct spry_maps *m, const char *name, __u16 *id,
		       struct spry_chain *chain);
int spry_chain__get(const struct spry_maps *m, __u16 id, struct spry_chain *chain);
/*
 * Add or replace a chain: ids for the chain and its functions, the
 * consecutive hand-offs (origin -> hop0 -> ... -> origin) and the spec's
 * calls authorized.  Idempotent for an identical spec.  Caller holds the
 * pin lock.
 */
int spry_chain__add(struct spry_maps *m, const struct spry_chain_spec *spec, __u16 *id);
/*
 * Remove a chain, its functions and its authorizations.  A removed
 * function (here, or dropped by a replacing spry_chain__add) also loses its
 * instance sockets (spry_socks), instance states and counters, so a later
 * function reusing the id starts clean; spryd sees the instances' sockets
 * leave the router and reaps them.
 */
int spry_chain__del(struct spry_maps *m, const char *name);

/* Functions.  -ENOENT when absent. */
int spry_fn__lookup(const struct spry_maps *m, __u16 chain, const char *name,
		    __u16 *id, struct spry_fn *fn);
int spry_fn__get(const struct spry_maps *m, __u16 id, struct spry_fn *fn);
int spry_fn__put(const struct spry_maps *m, __u16 id, const struct spry_fn *fn);

/* Authorization of a hand-off within a chain (to 0 = origin). */
/* As spry_auth__set() for a key of @kind (enum spry_auth_kind). */
int spry_auth__set_kind(const struct spry_maps *m, __u16 chain, __u16 from,
			__u16 to, __u16 kind, bool allow);
int spry_auth__set(const struct spry_maps *m, __u16 chain, __u16 from, __u16 to,
		   bool allow);
/* 0 when allowed, -ENOENT when not. */
int spry_auth__get(const struct spry_maps *m, __u16 chain, __u16 from, __u16 to);

/* Instance state (fn, inst). */
int spry_inst__get(const struct spry_maps *m, __u16 fn, __u16 inst,
		   struct spry_inst_state *st);
int spry_inst__put(const struct spry_maps *m, __u16 fn, __u16 inst,
		   const struct spry_inst_state *st);

/* Sum a per-CPU counter array entry. */
int spry_verdicts__read(const struct spry_maps *m, __u64 out[SPRY_V_MAX]);
int spry_fn_stats__read(const struct spry_maps *m, __u16 fn, struct spry_fn_stats *out);
/* Zero a function's counters on every CPU. */
int spry_fn_stats__clear(const struct spry_maps *m, __u16 fn);

/* Names. */
const char *spry_verdict_name(unsigned int v);
const char *spry_status_name(unsigned int s);
/*
 * A one-line reason into the caller's @err buffer (@errlen bytes) of the
 * calls that take one; nothing when @err is NULL.
 */
void spry_err__set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* [A-Za-z0-9_.-]{1,31}: 0 or -EINVAL. */
int spry_name_check(const char *name);

enum spry_id_kind {
	SPRY_ID_USER,
	SPRY_ID_GROUP,
};
/*
 * A user or group as people write it: a name (the passwd or group
 * database), else a decimal id 0..4294967294.  0, or -EINVAL with a
 * one-line reason in @err ("unknown group 'x'").
 */
int spry_id__parse(enum spry_id_kind kind, const char *s, __u32 *id, char *err,
		   size_t errlen);
/* The name of user or group @id in @buf, or NULL when it has none. */
const char *spry_id__name(enum spry_id_kind kind, __u32 id, char *buf, size_t len);

#endif /* SPRY_CORE_H */
