/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spry, the loader and control CLI: what its source files share.
 *
 * Grammar (bpftool's): spry [OPTIONS] OBJECT COMMAND [ARGS].  Objects and
 * commands match by unambiguous prefix.  Every do_*() returns 0 or -1
 * after reporting the error with p_err().
 */
#ifndef SPRY_LOADER_MAIN_H
#define SPRY_LOADER_MAIN_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>

#include "lib/core.h"

#define SPRY_VERSION	"0.1.0"

/* Global options. */
extern bool json_output;	/* -j */
extern bool pretty_output;	/* -p */
extern const char *pin_dir;	/* -P, $SPRY_PIN_DIR, default */

/* The single JSON value printed at exit (json_output only); owned. */
void json_result(json_t *val);

/* Report an error: "Error: ..." on stderr (and {"error": ...} with -j). */
void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A note on stderr that does not fail the command. */
void p_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a -errno from libsprycore or libbpf with a context prefix. */
int p_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct cmd {
	const char	*name;
	int		(*func)(int argc, char **argv);
};

/*
 * Run the command argv[0] names in @cmds (exact name, else unique
 * prefix); @what is the object for messages.  No argument runs @cmds[0].
 */
int cmd_select(const struct cmd *cmds, int argc, char **argv, const char *what);
/* Index of the entry of @names (NULL-terminated) @arg names, or -1 after p_err. */
int match_word(const char *const *names, const char *arg, const char *what);
/*
 * "KEYWORD VALUE ..." pairs to the end of argv: vals[i] is the value of
 * names[i] (NULL-terminated, prefixes allowed), NULL when absent.  A name
 * may be two words ("invoke users": argv "invoke users VALUE"; each word
 * by prefix).  0, or -1 after p_err for an unknown or repeated keyword or
 * a missing value.
 */
int parse_keywords(int argc, char **argv, const char *const *names, const char **vals);

#define NEXT_ARG()	({ argc--; argv++; })
/* Fetch the value after keyword argv[0]; p_err and return -1 when missing. */
#define GET_VALUE(var)							\
	({								\
		if (argc < 2) {						\
			p_err("missing value after '%s'", argv[0]);	\
			return -1;					\
		}							\
		(var) = argv[1];					\
		argc -= 2;						\
		argv += 2;						\
	})

/* Strict decimal number in [min, max]; p_err names @what on failure. */
int parse_u32(const char *s, __u32 min, __u32 max, const char *what, __u32 *out);
/* A user name (getpwnam) or a numeric uid. */
int parse_user(const char *s, __u32 *uid);
/* A chain or function name. */
int parse_name(const char *s, const char *what, char out[SPRY_NAME_LEN]);
/*
 * A comma-separated list of F:G pairs (calls, next: of chains and apps)
 * appended to @pairs, at most @max in all (*@n counts them).  0, or -1
 * after p_err.
 */
int parse_pairs(const char *arg, const char *what, char (*pairs)[2][SPRY_NAME_LEN],
		__u32 max, __u32 *n);
/* Name of @uid or NULL. */
const char *user_name(__u32 uid, char *buf, size_t len);

/* Open the pinned maps of pin_dir; p_err (not loaded: how to load). */
int maps_open(struct spry_maps *m);
/* Take the pin directory lock for a writer; p_err on failure. */
int pin_lock(void);

/* Everything in the maps at one moment: for the show commands. */
struct snapshot {
	struct spry_chain	chains[SPRY_MAX_CHAINS];	/* name[0] = free */
	struct spry_fn		fns[SPRY_MAX_FNS];
	struct spry_auth_key	*auth;				/* sorted */
	size_t			n_auth;
};
struct snapshot *snapshot__read(const struct spry_maps *m);
void snapshot__free(struct snapshot *s);
/* Chain id by name in @s, or -1 after p_err. */
int snapshot__chain(const struct snapshot *s, const char *name);
/* Function name of @fn (the origin for 0). */
const char *snapshot__fn_name(const struct snapshot *s, __u16 fn);

/*
 * An object's `help` command: no arguments, the text of @print on stdout
 * (stderr with -j, where the JSON value is null).
 */
int help_cmd(int argc, void (*print)(FILE *f));

/*
 * The start of a `show [chain NAME]` command: parses the optional filter,
 * opens the maps and reads a snapshot.  *@chain is the chain id, or -1 for
 * all.  0, or -1 after p_err (nothing left open).
 */
int show_begin(int argc, char **argv, struct spry_maps *m, struct snapshot **s,
	       int *chain);
/*
 * The end of a show command: with -j, @arr becomes the result; else
 * @print prints each element.  Takes @arr.
 */
void show_emit(json_t *arr, void (*print)(json_t *elem));
/* The same for a command whose result is the one object @o. */
void show_emit_one(json_t *o, void (*print)(json_t *o));

/* JSON helpers: 0, or -1 after p_err on allocation failure. */
int jset(json_t *obj, const char *key, json_t *val);
int jappend(json_t *arr, json_t *val);
json_t *jflags(__u32 flags, const char *const *names, unsigned int n);

/* Objects. */
int do_load(int argc, char **argv);
int do_unload(int argc, char **argv);
int do_version(int argc, char **argv);
int do_chain(int argc, char **argv);
int do_fn(int argc, char **argv);
int do_auth(int argc, char **argv);
int do_stats(int argc, char **argv);
int do_apply(int argc, char **argv);
int do_invoke(int argc, char **argv);	/* spry chain invoke */
int do_app(int argc, char **argv);	/* spry app (loader/app.c) */
int do_process(int argc, char **argv);	/* spry process (loader/app.c) */
struct spry_app_decl;
/* App @a's chain and declaration written (the pin lock held): 0 or -1 (p_err). */
int app_store(struct spry_maps *m, const struct spry_app_decl *a, __u16 *id);
int do_down(int argc, char **argv);
int do_ingress(int argc, char **argv);

/*
 * Detach every XDP ingress link pinned in pin_dir and unpin the XDP
 * program and its maps (spry unload; caller holds the pin lock): the
 * number of pins removed, or -1 after p_err.
 */
int ingress_remove_all(void);

/* spry mesh (loader/mesh.c). */
int do_mesh(int argc, char **argv);
/*
 * Detach every mesh cgroup link and unpin the mesh programs and maps
 * (spry unload; caller holds the pin lock): pins removed, or -1 after p_err.
 */
int mesh_remove_all(void);
/* Whether anything of spry mesh is pinned in pin_dir. */
bool mesh_loaded(void);

/* An address prefix: ADDRESS[/LEN], IPv4 or IPv6 (loader/ingress.c). */
struct prefix {
	int	family;		/* AF_INET or AF_INET6 */
	__u8	addr[16];
	__u32	len;		/* address prefix length */
};
/* Parse @s; host bits after LEN are an error.  0, or -1 after p_err. */
int parse_prefix(const char *s, struct prefix *p);
/* "ADDRESS/LEN" of @p into @buf. */
void prefix_str(const struct prefix *p, char *buf, size_t len);
/* Sum per-CPU entry @key of @map (@size bytes per CPU, u64 fields) into @out. */
int percpu_sum(int map, __u32 key, size_t size, __u64 *out);

/*
 * Pins of pin_dir by name (loader/pins.c).  pin_path: "pin_dir/@name"
 * into @buf, or -1 after p_err when too long.
 */
int pin_path(char *buf, size_t len, const char *name);
/* Whether @name is pinned (anything by that name). */
bool pin_exists(const char *name);
/* Unpin @name: 1 removed, 0 absent, -1 after p_err. */
int pin_remove(const char *name);
/* pin_remove() each of @names: how many were removed, or -1 after p_err. */
int pins_remove(const char *const *names, int n);
/* The pinned object @name: its fd, or -errno (-EINVAL: path too long, after p_err). */
int pin_get(const char *name);
/* The pinned map @name, checked to have these sizes: fd, or -errno (-EPROTO: other sizes). */
int pin_map_get(const char *name, __u32 key_size, __u32 value_size);
/* Detach and unpin the bpf_link pinned as @name: 1 done, 0 absent, -1 after p_err. */
int pin_link_remove(const char *name);
/* Make pin_dir on bpffs if it is not there: 0, or -1 after p_err. */
int pin_dir_prepare(void);
/*
 * The entries of pin_dir that @take accepts (returns 0 after filling
 * @elem, @size bytes, from the name): an array of *@n of them in *@out
 * (free() it; NULL when none or pin_dir is absent).  0, or -1 after p_err.
 */
int pins_collect(int (*take)(const char *name, void *elem), size_t size, void **out,
		 size_t *n);
/*
 * Whether pin_dir exists, before a command that may create it; a failed
 * command gives that to pin_dir_undo(), which removes the (empty) pin
 * directory the command created.
 */
bool pin_dir_exists(void);
void pin_dir_undo(bool had_dir);

/*
 * Declared functions (loader/fn.c, lib/decl.h).  decl_dir: the state
 * directory of pin_dir; decls_store: write chain @chain's declarations
 * (relative executables made absolute against @base, the cwd when NULL).
 * 0, or -1 after p_err.
 */
int decl_dir(char *buf, size_t len);
int decls_store(const char *chain, struct spry_chain_decls *d, const char *base);

/* Flag names shared by the show commands. */
extern const char *const chain_flag_names[];
extern const char *const fn_flag_names[];
extern const char *const inst_flag_names[];

#endif /* SPRY_LOADER_MAIN_H */
