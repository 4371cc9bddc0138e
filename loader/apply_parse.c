// SPDX-License-Identifier: GPL-2.0-only
/*
 * The parser of `spry apply` files (format: loader/apply.h).  Pure: reads
 * a buffer, writes specs, touches no map; the fuzzer and test_apply call
 * spry_apply_parse() directly.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "fn-runtime/cpus.h"
#include "fn-runtime/parse.h"
#include "lib/app.h"
#include "loader/apply.h"

struct parser {
	yaml_document_t	*doc;
	bool		*seen;		/* node visited: aliases show up twice */
	int		n_nodes;
	char		*err;
	size_t		errlen;
};

static int fail(struct parser *p, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, const yaml_node_t *node, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!p->err || !p->errlen)
		return -EINVAL;
	if (node)
		snprintf(p->err, p->errlen, "line %lu: %s",
			 (unsigned long)node->start_mark.line + 1, msg);
	else
		snprintf(p->err, p->errlen, "%s", msg);
	return -EINVAL;
}

static int node_get(struct parser *p, const yaml_node_t *parent, int idx,
		    yaml_node_t **out)
{
	yaml_node_t *node;

	node = yaml_document_get_node(p->doc, idx);
	if (!node || idx < 1 || idx > p->n_nodes)
		return fail(p, parent, "malformed document");
	if (p->seen[idx - 1])
		return fail(p, node, "YAML aliases are not supported");
	p->seen[idx - 1] = true;
	*out = node;
	return 0;
}

static const char *node_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

static int scalar(struct parser *p, yaml_node_t *node, const char *what,
		  const char **out)
{
	const char *s;

	if (node->type != YAML_SCALAR_NODE)
		return fail(p, node, "%s: expected a scalar, found %s", what,
			    node_kind(node));
	s = (const char *)node->data.scalar.value;
	if (strlen(s) != node->data.scalar.length)
		return fail(p, node, "%s: NUL character in value", what);
	*out = s;
	return 0;
}

static int name_node(struct parser *p, yaml_node_t *node, const char *what,
		     char out[SPRY_NAME_LEN])
{
	const char *s;
	int err;

	err = scalar(p, node, what, &s);
	if (err)
		return err;
	if (!*s)
		return fail(p, node, "%s: empty name", what);
	if (strlen(s) >= SPRY_NAME_LEN)
		return fail(p, node, "%s: name '%.40s%s' is too long (at most %d characters)",
			    what, s, strlen(s) > 40 ? "..." : "", SPRY_NAME_LEN - 1);
	if (spry_name_check(s))
		return fail(p, node, "%s: invalid name '%s' (allowed: A-Z a-z 0-9 _ . -)",
			    what, s);
	if (!strcmp(s, "origin"))
		return fail(p, node, "%s: 'origin' is reserved", what);
	memset(out, 0, SPRY_NAME_LEN);
	memcpy(out, s, strlen(s));
	return 0;
}

static int uint_node(struct parser *p, yaml_node_t *node, const char *what,
		     __u32 min, __u32 max, __u32 *out)
{
	const char *s = NULL;
	int err;

	err = scalar(p, node, what, &s);
	if (err)
		return err;
	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return fail(p, node, "%s: expected a number, found a quoted string", what);
	err = spry_num__parse_u32(s, min, max, out);
	if (err == -ERANGE)
		return fail(p, node, "%s: %s out of range %u..%u", what, s, min, max);
	if (err)
		return fail(p, node, "%s: '%s' is %s", what, s,
			    *s == '-' ? "negative" : "not a decimal number");
	return 0;
}

static int user_node(struct parser *p, yaml_node_t *node, __u32 *uid)
{
	const char *s = NULL;
	char msg[256];
	int err;

	err = scalar(p, node, "user", &s);
	if (err)
		return err;
	if (spry_id__parse(SPRY_ID_USER, s, uid, msg, sizeof(msg)))
		return fail(p, node, "user: %s", msg);
	return 0;
}

/*
 * Each item of list @node, at most @max of them, to @take with its index:
 * 0, or the first error.  @what names the list in messages.
 */
static int list_each(struct parser *p, yaml_node_t *node, const char *what, __u32 max,
		     int (*take)(struct parser *p, yaml_node_t *item, __u32 i, void *ctx),
		     void *ctx)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	__u32 n = 0;
	int err;

	if (node->type != YAML_SEQUENCE_NODE)
		return fail(p, node, "%s: expected a list, found %s", what,
			    node_kind(node));
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		err = node_get(p, node, *it, &item);
		if (err)
			return err;
		if (n >= max)
			return fail(p, item, "%s: more than %u entries", what, max);
		err = take(p, item, n++, ctx);
		if (err)
			return err;
	}
	return 0;
}

struct id_list {
	const char		*what;
	enum spry_id_kind	kind;
	__u32			*ids;
	__u32			*n;
};

static int id_take(struct parser *p, yaml_node_t *item, __u32 n, void *ctx)
{
	struct id_list *l = ctx;
	const char *s;
	char msg[256];
	__u32 i;
	int err;

	err = scalar(p, item, l->what, &s);
	if (err)
		return err;
	if (spry_id__parse(l->kind, s, &l->ids[n], msg, sizeof(msg)))
		return fail(p, item, "%s: %s", l->what, msg);
	for (i = 0; i < n; i++)
		if (l->ids[i] == l->ids[n])
			return fail(p, item, "%s: '%.64s' (id %u) listed twice",
				    l->what, s, l->ids[i]);
	*l->n = n + 1;
	return 0;
}

/* A list of distinct users or groups (names or ids). */
static int id_list(struct parser *p, yaml_node_t *node, const char *what,
		   enum spry_id_kind kind, __u32 *ids, __u32 *n)
{
	struct id_list l = { .what = what, .kind = kind, .ids = ids, .n = n };

	*n = 0;
	return list_each(p, node, what, SPRY_MAX_INVOKERS, id_take, &l);
}

/*
 * The values of mapping @node by keyword: vals[k] the value node of
 * keys[k] (@n keys), untouched where absent.  Keys are scalars (@kwhat in
 * messages); an unknown key fails as "CTXunknown key 'K' in WHERE (k1, k2,
 * ...)" (no "in WHERE" when NULL), a repeated one as "CTX'K' given twice".
 */
static int mapping_vals(struct parser *p, yaml_node_t *node, const char *kwhat,
			const char *ctx, const char *where, const char *const *keys, int n,
			yaml_node_t **vals)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k, *v;
	const char *key;
	char list[256];
	size_t len;
	int err, kw;

	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		err = node_get(p, node, pair->key, &k);
		if (!err)
			err = scalar(p, k, kwhat, &key);
		if (!err)
			err = node_get(p, node, pair->value, &v);
		if (err)
			return err;
		for (kw = 0; kw < n; kw++)
			if (!strcmp(key, keys[kw]))
				break;
		if (kw == n) {
			for (list[0] = '\0', len = 0, kw = 0; kw < n && len < sizeof(list); kw++)
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
							kw ? ", " : "", keys[kw]);
			return fail(p, k, "%sunknown key '%.64s'%s%s (%s)", ctx, key,
				    where ? " in " : "", where ? where : "", list);
		}
		if (vals[kw])
			return fail(p, k, "%s'%s' given twice", ctx, key);
		vals[kw] = v;
	}
	return 0;
}

/*
 * Pair @pair of mapping @node, whose key must be one of the two @keys and
 * each key at most once (@have): the key's index, with the value node in
 * *@v, or the error of fail().  @what names the mapping in messages.
 */
static int pair_of_two(struct parser *p, yaml_node_t *node, yaml_node_pair_t *pair,
		       const char *what, const char *const keys[2], bool have[2],
		       yaml_node_t **v)
{
	char kwhat[32];
	yaml_node_t *k;
	const char *key;
	int err, i;

	snprintf(kwhat, sizeof(kwhat), "%s key", what);
	err = node_get(p, node, pair->key, &k);
	if (!err)
		err = scalar(p, k, kwhat, &key);
	if (!err)
		err = node_get(p, node, pair->value, v);
	if (err)
		return err;
	for (i = 0; i < 2; i++)
		if (!strcmp(key, keys[i]))
			break;
	if (i == 2)
		return fail(p, k, "%s: unknown key '%.64s' (expected %s, %s)", what, key,
			    keys[0], keys[1]);
	if (have[i])
		return fail(p, k, "%s: '%s' given twice", what, key);
	have[i] = true;
	return i;
}

/* invoke: {users: [...], groups: [...]}: at least one of the two. */
static int invoke_node(struct parser *p, yaml_node_t *node, struct spry_chain_spec *spec)
{
	static const char *const keys[] = { "users", "groups" };
	bool have[2] = {};
	yaml_node_pair_t *pair;
	yaml_node_t *v;
	int err, i;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, "invoke: expected a mapping {users: [...], groups: [...]}, found %s",
			    node_kind(node));
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		i = pair_of_two(p, node, pair, "invoke", keys, have, &v);
		if (i < 0)
			return i;
		err = i ? id_list(p, v, "invoke groups", SPRY_ID_GROUP, spec->invoke_gids,
				  &spec->n_invoke_gids) :
			  id_list(p, v, "invoke users", SPRY_ID_USER, spec->invoke_uids,
				  &spec->n_invoke_uids);
		if (err)
			return err;
	}
	if (!have[0] && !have[1])
		return fail(p, node, "invoke: give users, groups or both");
	spec->invoke_set = true;
	return 0;
}

/* YAML 1.2's booleans: plain true or false. */
static int bool_node(struct parser *p, yaml_node_t *node, const char *what, bool *out)
{
	const char *s;
	int err;

	err = scalar(p, node, what, &s);
	if (err)
		return err;
	if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (!strcmp(s, "true") || !strcmp(s, "false")) {
			*out = s[0] == 't';
			return 0;
		}
	}
	return fail(p, node, "%s: expected true or false, found '%.64s'", what, s);
}

struct name_list {
	const char	*what;
	char		(*out)[SPRY_NAME_LEN];
	__u32		*n;
};

static int name_take(struct parser *p, yaml_node_t *item, __u32 n, void *ctx)
{
	struct name_list *l = ctx;
	__u32 i;
	int err;

	err = name_node(p, item, l->what, l->out[n]);
	if (err)
		return err;
	for (i = 0; i < n; i++)
		if (!strcmp(l->out[i], l->out[n]))
			return fail(p, item, "%s: '%s' listed twice", l->what, l->out[i]);
	*l->n = n + 1;
	return 0;
}

/* A list of distinct names. */
static int name_list(struct parser *p, yaml_node_t *node, const char *what,
		     char out[][SPRY_NAME_LEN], __u32 max, __u32 *n)
{
	struct name_list l = { .what = what, .out = out, .n = n };

	*n = 0;
	return list_each(p, node, what, max, name_take, &l);
}

static bool spec_has_fn(const struct spry_chain_spec *spec, const char *name)
{
	__u32 i;

	for (i = 0; i < spec->n_hops; i++)
		if (!strcmp(spec->hops[i], name))
			return true;
	for (i = 0; i < spec->n_extra; i++)
		if (!strcmp(spec->extra[i], name))
			return true;
	return false;
}

/*
 * One {from: F, to: G} appended to @list (*@n of @max): calls: and next:
 * of a chain, next: of an app (@what).  @has says whether a name is a
 * function of @owner (@kind @name: "chain 'x' (hops or functions)").
 */
static int pair_take(struct parser *p, yaml_node_t *node, const char *what,
		     bool (*has)(const void *owner, const char *name), const void *owner,
		     const char *where, char (*list)[2][SPRY_NAME_LEN], __u32 *n, __u32 max)
{
	static const char *const keys[] = { "from", "to" };
	char names[2][SPRY_NAME_LEN];
	bool have[2] = {};
	yaml_node_pair_t *pair;
	yaml_node_t *v;
	int err, i;
	__u32 j;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, "%s: expected a mapping {from: F, to: G}, found %s",
			    what, node_kind(node));
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		i = pair_of_two(p, node, pair, what, keys, have, &v);
		if (i < 0)
			return i;
		err = name_node(p, v, what, names[i]);
		if (err)
			return err;
		if (!has(owner, names[i]))
			return fail(p, v, "%s: '%s' is not a function of %s", what, names[i],
				    where);
	}
	for (i = 0; i < 2; i++)
		if (!have[i])
			return fail(p, node, "%s: missing '%s'", what, keys[i]);
	for (j = 0; j < *n; j++)
		if (!strcmp(list[j][0], names[0]) && !strcmp(list[j][1], names[1]))
			return fail(p, node, "%s: %s -> %s listed twice", what, names[0],
				    names[1]);
	if (*n >= max)
		return fail(p, node, "%s: more than %u entries", what, max);
	memcpy(list[*n][0], names[0], SPRY_NAME_LEN);
	memcpy(list[*n][1], names[1], SPRY_NAME_LEN);
	(*n)++;
	return 0;
}

static bool spec_has(const void *owner, const char *name)
{
	return spec_has_fn(owner, name);
}

/*
 * One {from: F, to: G} of calls: (@what "calls", into spec->allow) or of
 * next: (@what "next", into spec->next: conditional nexts,
 * docs/WORKFLOWS.md).
 */
static int pair_node(struct parser *p, yaml_node_t *node, struct spry_chain_spec *spec,
		     const char *what)
{
	bool is_next = !strcmp(what, "next");
	char where[SPRY_NAME_LEN + 48];

	snprintf(where, sizeof(where), "chain '%s' (hops or functions)", spec->name);
	return pair_take(p, node, what, spec_has, spec, where,
			 is_next ? spec->next : spec->allow,
			 is_next ? &spec->n_next : &spec->n_allow, SPRY_MAX_ALLOW);
}

/* One declared function: run: {FN: {exec: PATH, args: [...], ...}}. */
enum {
	R_EXEC, R_ARGS, R_USER, R_MIN, R_MAX, R_TARGET, R_IDLE, R_CPUS, R_START, R_N,
};

static const char *const run_keys[R_N] = {
	[R_EXEC]	= "exec",
	[R_ARGS]	= "args",
	[R_USER]	= "user",
	[R_MIN]		= "min",
	[R_MAX]		= "max",
	[R_TARGET]	= "target",
	[R_IDLE]	= "idle",
	[R_CPUS]	= "cpus",
	[R_START]	= "start",
};

static int run_fn_node(struct parser *p, yaml_node_t *knode, yaml_node_t *node,
		       struct spry_chain_spec *spec, struct spry_fn_decl *f)
{
	yaml_node_t *vals[R_N] = {}, *k, *v;
	yaml_node_item_t *it;
	const char *s = NULL;
	char msg[256];
	uint64_t ns;
	int err;

	spry_fn_decl__init(f);
	err = name_node(p, knode, "run", f->fn);
	if (err)
		return err;
	if (!spec_has_fn(spec, f->fn))
		return fail(p, knode, "run: '%s' is not a function of chain '%s' (hops or functions)",
			    f->fn, spec->name);
	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, "run: %s: expected a mapping {exec: PATH, ...}, found %s",
			    f->fn, node_kind(node));
	snprintf(msg, sizeof(msg), "run: %s: ", f->fn);
	err = mapping_vals(p, node, "run key", msg, NULL, run_keys, R_N, vals);
	if (err)
		return err;
	if (!vals[R_EXEC])
		return fail(p, node, "run: %s: missing 'exec'", f->fn);
	err = scalar(p, vals[R_EXEC], "exec", &s);
	if (err)
		return err;
	if (!*s)
		return fail(p, vals[R_EXEC], "run: %s: empty 'exec'", f->fn);
	if (spry_fn_decl__add_arg(f, s))
		return fail(p, vals[R_EXEC], "run: %s: exec path too long", f->fn);
	if (vals[R_ARGS]) {
		v = vals[R_ARGS];
		if (v->type != YAML_SEQUENCE_NODE)
			return fail(p, v, "args: expected a list, found %s", node_kind(v));
		for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
			err = node_get(p, v, *it, &k);
			if (!err)
				err = scalar(p, k, "args", &s);
			if (err)
				return err;
			if (spry_fn_decl__add_arg(f, s))
				return fail(p, k, "args: more than %d arguments or %d bytes",
					    SPRY_DECL_MAX_ARGS - 1, SPRY_DECL_ARGS_BYTES);
		}
	}
	if (vals[R_USER]) {
		err = user_node(p, vals[R_USER], &f->uid);
		if (err)
			return err;
		f->has_uid = true;
	}
	if (vals[R_MIN] &&
	    (err = uint_node(p, vals[R_MIN], "min", 0, SPRY_MAX_INST, &f->min)))
		return err;
	if (vals[R_MAX] &&
	    (err = uint_node(p, vals[R_MAX], "max", 1, SPRY_MAX_INST, &f->max)))
		return err;
	if (vals[R_TARGET] &&
	    (err = uint_node(p, vals[R_TARGET], "target", 1, SPRY_DECL_MAX_TARGET,
			     &f->target)))
		return err;
	if (vals[R_IDLE]) {
		err = scalar(p, vals[R_IDLE], "idle", &s);
		if (err)
			return err;
		if (spry_secs__parse(s, 1000000ULL, SPRY_DECL_MAX_IDLE_MS * 1000000ULL, &ns))
			return fail(p, vals[R_IDLE], "idle: '%.32s' is not a time in seconds (0.001-86400)",
				    s);
		f->idle_ms = (__u32)(ns / 1000000ULL);
	}
	if (vals[R_CPUS]) {
		err = scalar(p, vals[R_CPUS], "cpus", &s);
		if (err)
			return err;
		if (spry_cpus__parse(s, f->cpus, msg, sizeof(msg)))
			return fail(p, vals[R_CPUS], "%s", msg);
	}
	if (vals[R_START]) {
		err = scalar(p, vals[R_START], "start", &s);
		if (err)
			return err;
		if (strcmp(s, "template") && strcmp(s, "exec"))
			return fail(p, vals[R_START], "start: '%.32s' is neither 'template' nor 'exec'",
				    s);
		f->start_exec = !strcmp(s, "exec");
	}
	if (spry_fn_decl__check(f, msg, sizeof(msg)))
		return fail(p, node, "run: %s", msg);
	return 0;
}

static int run_node(struct parser *p, yaml_node_t *node, struct spry_chain_spec *spec)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k, *v;
	int err;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, "run: expected a mapping FN: {exec: PATH, ...}, found %s",
			    node_kind(node));
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		err = node_get(p, node, pair->key, &k);
		if (!err)
			err = node_get(p, node, pair->value, &v);
		if (err)
			return err;
		if (spec->decls.n >= SPRY_DECL_MAX_FNS)
			return fail(p, k, "run: more than %d functions", SPRY_DECL_MAX_FNS);
		err = run_fn_node(p, k, v, spec, &spec->decls.fns[spec->decls.n]);
		if (err)
			return err;
		if (spry_decls__find(&spec->decls, spec->decls.fns[spec->decls.n].fn) >= 0)
			return fail(p, k, "run: '%s' given twice",
				    spec->decls.fns[spec->decls.n].fn);
		spec->decls.n++;
	}
	return 0;
}

enum {
	K_NAME, K_USER, K_HOPS, K_FUNCTIONS, K_CALLS, K_BUFFERS, K_BUF_SIZE,
	K_MAX_INFLIGHT, K_DEADLINE, K_IDEMPOTENT, K_CPUS, K_INVOKE, K_HTTP,
	K_RUN, K_QUEUE, K_NEXT, K_N,
};

static const char *const chain_keys[K_N] = {
	[K_NAME]		= "name",
	[K_USER]		= "user",
	[K_HOPS]		= "hops",
	[K_FUNCTIONS]		= "functions",
	[K_CALLS]		= "calls",
	[K_BUFFERS]		= "buffers",
	[K_BUF_SIZE]		= "buffer-size",
	[K_MAX_INFLIGHT]	= "max-inflight",
	[K_DEADLINE]		= "deadline-ms",
	[K_IDEMPOTENT]		= "idempotent",
	[K_CPUS]		= "cpus",
	[K_INVOKE]		= "invoke",
	[K_HTTP]		= "http",
	[K_RUN]			= "run",
	[K_QUEUE]		= "queue",
	[K_NEXT]		= "next",
};

static int chain_node(struct parser *p, yaml_node_t *node, struct spry_chain_spec *spec)
{
	yaml_node_t *vals[K_N] = {}, *k, *v;
	char idem[SPRY_MAX_HOPS][SPRY_NAME_LEN], msg[256];
	yaml_node_item_t *it;
	__u32 n_idem, i, h;
	int err;

	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, "chains: expected a mapping per chain, found %s",
			    node_kind(node));
	memset(spec, 0, sizeof(*spec));
	spec->uid = getuid();
	/* Collect first: calls and idempotent depend on hops and functions. */
	err = mapping_vals(p, node, "chain key", "", "a chain", chain_keys, K_N, vals);
	if (err)
		return err;
	if (!vals[K_NAME])
		return fail(p, node, "chain without 'name'");
	err = name_node(p, vals[K_NAME], "name", spec->name);
	if (err)
		return err;
	if (!vals[K_HOPS])
		return fail(p, node, "chain '%s' without 'hops'", spec->name);
	err = name_list(p, vals[K_HOPS], "hops", spec->hops, SPRY_MAX_HOPS,
			&spec->n_hops);
	if (err)
		return err;
	if (!spec->n_hops)
		return fail(p, vals[K_HOPS], "hops: at least one function needed");
	if (vals[K_FUNCTIONS]) {
		err = name_list(p, vals[K_FUNCTIONS], "functions", spec->extra,
				SPRY_MAX_HOPS, &spec->n_extra);
		if (err)
			return err;
		for (i = 0; i < spec->n_extra; i++)
			for (h = 0; h < spec->n_hops; h++)
				if (!strcmp(spec->extra[i], spec->hops[h]))
					return fail(p, vals[K_FUNCTIONS],
						    "functions: '%s' is already a hop",
						    spec->extra[i]);
	}
	if (vals[K_USER] && (err = user_node(p, vals[K_USER], &spec->uid)))
		return err;
	if (vals[K_BUFFERS] &&
	    (err = uint_node(p, vals[K_BUFFERS], "buffers", 1, SPRY_MAX_N_BUFS,
			     &spec->n_bufs)))
		return err;
	if (vals[K_BUF_SIZE] &&
	    (err = uint_node(p, vals[K_BUF_SIZE], "buffer-size", SPRY_MIN_BUF_SIZE,
			     SPRY_MAX_BUF_SIZE, &spec->buf_size)))
		return err;
	if (vals[K_MAX_INFLIGHT] &&
	    (err = uint_node(p, vals[K_MAX_INFLIGHT], "max-inflight", 1,
			     SPRY_MAX_INFLIGHT, &spec->max_inflight)))
		return err;
	if (vals[K_DEADLINE] &&
	    (err = uint_node(p, vals[K_DEADLINE], "deadline-ms", 1,
			     SPRY_MAX_DEADLINE_MS, &spec->deadline_ms)))
		return err;
	for (i = 0; i < 2; i++) {
		const char *what = i ? "next" : "calls";

		v = vals[i ? K_NEXT : K_CALLS];
		if (!v)
			continue;
		if (v->type != YAML_SEQUENCE_NODE)
			return fail(p, v, "%s: expected a list, found %s", what,
				    node_kind(v));
		for (it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++) {
			err = node_get(p, v, *it, &k);
			if (!err)
				err = pair_node(p, k, spec, what);
			if (err)
				return err;
		}
	}
	if (vals[K_IDEMPOTENT]) {
		err = name_list(p, vals[K_IDEMPOTENT], "idempotent", idem,
				SPRY_MAX_HOPS, &n_idem);
		if (err)
			return err;
		for (i = 0; i < n_idem; i++) {
			for (h = 0; h < spec->n_hops; h++)
				if (!strcmp(idem[i], spec->hops[h]))
					break;
			if (h == spec->n_hops)
				return fail(p, vals[K_IDEMPOTENT],
					    "idempotent: '%s' is not a hop of chain '%s'",
					    idem[i], spec->name);
			spec->idempotent_mask |= 1U << h;
		}
	}
	if (vals[K_CPUS]) {
		const char *list;

		err = scalar(p, vals[K_CPUS], "cpus", &list);
		if (err)
			return err;
		if (spry_cpus__parse(list, spec->cpus, msg, sizeof(msg)))
			return fail(p, vals[K_CPUS], "%s", msg);
	}
	if (vals[K_INVOKE] && (err = invoke_node(p, vals[K_INVOKE], spec)))
		return err;
	if (vals[K_HTTP]) {
		bool on = true;

		err = bool_node(p, vals[K_HTTP], "http", &on);
		if (err)
			return err;
		spec->http_off = !on;
	}
	if (vals[K_RUN] && (err = run_node(p, vals[K_RUN], spec)))
		return err;
	if (vals[K_QUEUE] &&
	    (err = uint_node(p, vals[K_QUEUE], "queue", 1, SPRY_DECL_MAX_QUEUE,
			     &spec->decls.queue)))
		return err;
	if (spry_chain_spec__check(spec, msg, sizeof(msg)))
		return fail(p, node, "%s", msg);
	return 0;
}

/* ------------------------------------------------------------ apps */

enum { A_NAME, A_FNS, A_EXEC, A_ARGS, A_USER, A_MAX, A_STATE, A_SWAP, A_IDLE, A_CREATE,
       A_NEXT, A_START, A_N };
static const char *const app_keys[A_N] = {
	[A_NAME] = "name", [A_FNS] = "functions", [A_EXEC] = "exec", [A_ARGS] = "args",
	[A_USER] = "user", [A_MAX] = "max", [A_STATE] = "state-size",
	[A_SWAP] = "swap-dir", [A_IDLE] = "idle", [A_CREATE] = "create", [A_NEXT] = "next",
	[A_START] = "start",
};

static bool app_has(const void *owner, const char *name)
{
	return spry_app_decl__find_fn(owner, name, strlen(name)) >= 0;
}

static int app_fn_take(struct parser *p, yaml_node_t *item, __u32 n, void *ctx)
{
	struct spry_app_decl *a = ctx;
	const char *s = NULL;
	int err;

	(void)n;
	err = scalar(p, item, "functions", &s);
	if (err)
		return err;
	err = spry_app_decl__add_fn(a, s);
	if (err == -EEXIST)
		return fail(p, item, "functions: '%.40s' given twice", s);
	if (err)
		return fail(p, item, "functions: invalid name '%.40s' (A-Z a-z 0-9 _ . -, "
			    "not digits only)", s);
	return 0;
}

static int arg_take(struct parser *p, yaml_node_t *item, __u32 n, void *ctx)
{
	struct spry_app_decl *a = ctx;
	const char *s = NULL;
	int err;

	(void)n;
	err = scalar(p, item, "args", &s);
	if (err)
		return err;
	if (spry_app_decl__add_arg(a, s))
		return fail(p, item, "args: more than %d arguments or %d bytes",
			    SPRY_DECL_MAX_ARGS - 1, SPRY_DECL_ARGS_BYTES);
	return 0;
}

/*
 * An app (lib/app.h).  Its exec may be relative (to the file: the loader
 * makes it absolute), so spry_app_decl__check() is the loader's, after.
 */
static int app_node(struct parser *p, yaml_node_t *node, struct spry_app_decl *a)
{
	yaml_node_t *vals[A_N] = {};
	const char *s = NULL;
	uint64_t x;
	int err;

	spry_app_decl__init(a);
	if (node->type != YAML_MAPPING_NODE)
		return fail(p, node, "apps: expected a mapping per app, found %s",
			    node_kind(node));
	err = mapping_vals(p, node, "app key", "", "an app", app_keys, A_N, vals);
	if (err)
		return err;
	if (!vals[A_NAME])
		return fail(p, node, "app without 'name'");
	err = name_node(p, vals[A_NAME], "name", a->name);
	if (err)
		return err;
	if (!vals[A_FNS] || !vals[A_EXEC])
		return fail(p, node, "app %s: missing '%s'", a->name,
			    !vals[A_FNS] ? "functions" : "exec");
	err = list_each(p, vals[A_FNS], "functions", SPRY_APP_MAX_FNS, app_fn_take, a);
	if (err)
		return err;
	if (!a->n_fns)
		return fail(p, vals[A_FNS], "app %s: no functions", a->name);
	err = scalar(p, vals[A_EXEC], "exec", &s);
	if (err)
		return err;
	if (!*s || spry_app_decl__add_arg(a, s))
		return fail(p, vals[A_EXEC], "app %s: empty or too long 'exec'", a->name);
	if (vals[A_ARGS] &&
	    (err = list_each(p, vals[A_ARGS], "args", SPRY_DECL_MAX_ARGS - 1, arg_take, a)))
		return err;
	if (vals[A_USER]) {
		err = user_node(p, vals[A_USER], &a->uid);
		if (err)
			return err;
		a->has_uid = true;
	}
	if (vals[A_MAX] &&
	    (err = uint_node(p, vals[A_MAX], "max", 1, SPRY_MAX_PROCS, &a->max_procs)))
		return err;
	if (vals[A_STATE]) {
		err = scalar(p, vals[A_STATE], "state-size", &s);
		if (err)
			return err;
		if (vals[A_STATE]->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
		    spry_num__parse(s, NULL, 4096, SPRY_APP_MAX_STATE, &x))
			return fail(p, vals[A_STATE], "state-size: '%.32s' is not a number of "
				    "bytes in 4096..%llu", s,
				    (unsigned long long)SPRY_APP_MAX_STATE);
		a->state_size = x;
	}
	if (vals[A_SWAP]) {
		err = scalar(p, vals[A_SWAP], "swap-dir", &s);
		if (err)
			return err;
		if (s[0] != '/' || strlen(s) >= sizeof(a->swap_dir))
			return fail(p, vals[A_SWAP], "swap-dir: '%.64s' is not an absolute path "
				    "(at most %d bytes)", s, SPRY_APP_SWAP_LEN - 1);
		snprintf(a->swap_dir, sizeof(a->swap_dir), "%s", s);
	}
	if (vals[A_IDLE]) {
		err = scalar(p, vals[A_IDLE], "idle", &s);
		if (err)
			return err;
		if (!strcmp(s, "0"))
			a->idle_ms = 0;
		else if (spry_secs__parse(s, 1000000ULL, SPRY_DECL_MAX_IDLE_MS * 1000000ULL, &x))
			return fail(p, vals[A_IDLE], "idle: '%.32s' is not a time in seconds "
				    "(0, or 0.001-86400)", s);
		else
			a->idle_ms = (__u32)(x / 1000000ULL);
	}
	if (vals[A_CREATE]) {
		err = scalar(p, vals[A_CREATE], "create", &s);
		if (err)
			return err;
		if (strcmp(s, "auto") && strcmp(s, "manual"))
			return fail(p, vals[A_CREATE], "create: '%.32s' is neither 'auto' nor "
				    "'manual'", s);
		a->autocreate = !strcmp(s, "auto");
	}
	if (vals[A_START]) {
		err = scalar(p, vals[A_START], "start", &s);
		if (err)
			return err;
		if (strcmp(s, "template") && strcmp(s, "exec"))
			return fail(p, vals[A_START], "start: '%.32s' is neither 'template' nor "
				    "'exec'", s);
		a->start_exec = !strcmp(s, "exec");
	}
	if (vals[A_NEXT]) {
		char where[SPRY_NAME_LEN + 16];
		yaml_node_item_t *it;
		yaml_node_t *k;

		if (vals[A_NEXT]->type != YAML_SEQUENCE_NODE)
			return fail(p, vals[A_NEXT], "next: expected a list, found %s",
				    node_kind(vals[A_NEXT]));
		snprintf(where, sizeof(where), "app '%s'", a->name);
		for (it = vals[A_NEXT]->data.sequence.items.start;
		     it < vals[A_NEXT]->data.sequence.items.top; it++) {
			err = node_get(p, vals[A_NEXT], *it, &k);
			if (!err)
				err = pair_take(p, k, "next", app_has, a, where, a->next,
						&a->n_next, SPRY_APP_MAX_NEXT);
			if (err)
				return err;
		}
	}
	return 0;
}

static int apps_node(struct parser *p, yaml_node_t *v, struct spry_app_decl **apps,
		     int *n_apps, const struct spry_chain_spec *specs, int n)
{
	struct spry_app_decl *out;
	yaml_node_item_t *it;
	yaml_node_t *item;
	int i, j, count, err;

	if (v->type == YAML_SCALAR_NODE && !v->data.scalar.length &&
	    v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(p, v, "apps: expected a list, found %s", node_kind(v));
	count = v->data.sequence.items.top - v->data.sequence.items.start;
	if (count > SPRY_MAX_CHAINS - 1)
		return fail(p, v, "apps: %d apps, at most %d", count, SPRY_MAX_CHAINS - 1);
	if (!count)
		return 0;
	out = calloc(count, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (i = 0, it = v->data.sequence.items.start; i < count; i++, it++) {
		err = node_get(p, v, *it, &item);
		if (!err)
			err = app_node(p, item, &out[i]);
		for (j = 0; !err && j < i; j++)
			if (!strcmp(out[j].name, out[i].name))
				err = fail(p, item, "app '%s' defined twice", out[i].name);
		for (j = 0; !err && j < n; j++)
			if (!strcmp(specs[j].name, out[i].name))
				err = fail(p, item, "'%s' is both a chain and an app", out[i].name);
		if (err) {
			free(out);
			return err;
		}
	}
	*apps = out;
	*n_apps = count;
	return 0;
}

static int parse_doc(struct parser *p, struct spry_chain_spec **specs, int *n,
		     struct spry_app_decl **apps, int *n_apps)
{
	yaml_node_t *va = NULL;
	struct spry_chain_spec *out = NULL;
	yaml_node_t *root, *k, *v = NULL, *item;
	yaml_node_pair_t *pair;
	yaml_node_item_t *it;
	const char *key;
	int err, i, j, count;

	root = yaml_document_get_root_node(p->doc);
	if (!root)
		return fail(p, NULL, "empty file: expected 'chains:'");
	p->seen[0] = true;
	if (root->type != YAML_MAPPING_NODE)
		return fail(p, root, "expected a mapping with 'chains', found %s",
			    node_kind(root));
	for (pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		err = node_get(p, root, pair->key, &k);
		if (!err)
			err = scalar(p, k, "key", &key);
		if (err)
			return err;
		if (!strcmp(key, "apps")) {
			if (va)
				return fail(p, k, "'apps' given twice");
			err = node_get(p, root, pair->value, &va);
			if (err)
				return err;
			continue;
		}
		if (strcmp(key, "chains"))
			return fail(p, k, "unknown key '%.64s' (expected 'chains' or 'apps')", key);
		if (v)
			return fail(p, k, "'chains' given twice");
		err = node_get(p, root, pair->value, &v);
		if (err)
			return err;
	}
	if (!v && !va)
		return fail(p, root, "missing 'chains'");
	/* "chains:" with nothing after it (or none) is an empty list. */
	if (!v || (v->type == YAML_SCALAR_NODE && !v->data.scalar.length &&
		   v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
		*specs = NULL;
		*n = 0;
		return va ? apps_node(p, va, apps, n_apps, NULL, 0) : 0;
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(p, v, "chains: expected a list, found %s", node_kind(v));
	count = v->data.sequence.items.top - v->data.sequence.items.start;
	if (count > SPRY_MAX_CHAINS - 1)
		return fail(p, v, "chains: %d chains, at most %d", count,
			    SPRY_MAX_CHAINS - 1);
	if (count) {
		out = calloc(count, sizeof(*out));
		if (!out)
			return -ENOMEM;
	}
	for (i = 0, it = v->data.sequence.items.start; i < count; i++, it++) {
		err = node_get(p, v, *it, &item);
		if (!err)
			err = chain_node(p, item, &out[i]);
		if (!err) {
			for (j = 0; j < i; j++) {
				if (!strcmp(out[j].name, out[i].name)) {
					err = fail(p, item, "chain '%s' defined twice",
						   out[i].name);
					break;
				}
			}
		}
		if (err) {
			free(out);
			return err;
		}
	}
	if (va) {
		err = apps_node(p, va, apps, n_apps, out, count);
		if (err) {
			free(out);
			return err;
		}
	}
	*specs = out;
	*n = count;
	return 0;
}

static int yaml_error(const yaml_parser_t *parser, char *err, size_t errlen)
{
	if (parser->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (err && errlen)
		snprintf(err, errlen, "line %lu: %s%s%s",
			 (unsigned long)parser->problem_mark.line + 1,
			 parser->problem ? parser->problem : "invalid YAML",
			 parser->context ? " " : "",
			 parser->context ? parser->context : "");
	return -EINVAL;
}

int spry_apply_parse(const char *buf, size_t len, struct spry_chain_spec **specs,
		     int *n, char *err, size_t errlen)
{
	struct spry_app_decl *apps = NULL;
	int n_apps = 0, ret;

	ret = spry_apply_parse_apps(buf, len, specs, n, &apps, &n_apps, err, errlen);
	free(apps);
	return ret;
}

int spry_apply_parse_apps(const char *buf, size_t len, struct spry_chain_spec **specs,
			  int *n, struct spry_app_decl **apps, int *n_apps, char *err,
			  size_t errlen)
{
	struct parser p = { .err = err, .errlen = errlen };
	yaml_document_t doc, extra;
	yaml_parser_t parser;
	bool more;
	int ret;

	*specs = NULL;
	*n = 0;
	*apps = NULL;
	*n_apps = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = yaml_error(&parser, err, errlen);
		yaml_parser_delete(&parser);
		return ret;
	}
	/* One document only. */
	if (!yaml_parser_load(&parser, &extra)) {
		ret = yaml_error(&parser, err, errlen);
		goto out_doc;
	}
	more = yaml_document_get_root_node(&extra) != NULL;
	if (more) {
		ret = fail(&p, yaml_document_get_root_node(&extra),
			   "more than one YAML document");
		yaml_document_delete(&extra);
		goto out_doc;
	}
	yaml_document_delete(&extra);

	p.doc = &doc;
	p.n_nodes = doc.nodes.top - doc.nodes.start;
	p.seen = calloc(p.n_nodes ? p.n_nodes : 1, sizeof(*p.seen));
	if (!p.seen) {
		ret = -ENOMEM;
		goto out_doc;
	}
	ret = parse_doc(&p, specs, n, apps, n_apps);
	free(p.seen);
out_doc:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}
