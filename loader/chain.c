// SPDX-License-Identifier: GPL-2.0-only
/* spry chain { show | add | del | invoke | help } */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

#include <spry/spry.h>

#include "fn-runtime/cpus.h"
#include "loader/main.h"

static void chain_help(FILE *f)
{
	fprintf(f,
		"Usage: spry chain add NAME hops F1,F2,... [functions G1,...] [calls F:G,...]\n"
		"                 [next F:G,...]\n"
		"                 [user USER|UID] [buffers N] [buffer-size BYTES]\n"
		"                 [max-inflight N] [deadline MS] [idempotent F,...]\n"
		"                 [cpus LIST] [invoke users U,...] [invoke groups G,...]\n"
		"                 [http on|off]\n"
		"       spry chain del NAME\n"
		"       spry chain show [NAME]\n"
		"       spry chain invoke NAME [data STRING | file PATH|-] [fn FN [process ID]] [sock PATH]\n"
		"       spry chain help\n"
		"\n"
		"add creates a chain, or replaces the chain of that name: functions\n"
		"keep their ids and live instances by name; functions and\n"
		"authorizations the new definition lacks are removed (including\n"
		"ones added with 'spry auth allow').\n"
		"  hops        the functions a request visits, in order (1-%d)\n"
		"  functions   functions reachable only by calls (at most %d)\n"
		"  calls       F may call G (both functions of the chain)\n"
		"  next        hop F may pick hop G, a later one, as its next at run\n"
		"              time (spry_req_next(); docs/WORKFLOWS.md)\n"
		"  user        the user the functions run as (default: the caller)\n"
		"  buffers     buffers in the chain's pool (1-%u, default %d)\n"
		"  buffer-size bytes per buffer (%u-%u, default %d)\n"
		"  max-inflight requests in flight at once (1-%u, default %d)\n"
		"  deadline    request deadline in ms (1-%u, default %d)\n"
		"  idempotent  hops that may be retried on another instance\n"
		"  cpus        CPUs the chain's instances run on, e.g. 1 or 0-3,6\n"
		"              (CPUs 0-%d; default: wherever the scheduler puts them)\n"
		"  invoke users, invoke groups\n"
		"              who may run the chain through spryd's control socket\n"
		"              ('chain invoke'): these users, and members of these\n"
		"              groups (primary or supplementary), by name or id, at\n"
		"              most %d of each; root always may.  Default: the\n"
		"              chain's user; giving either list replaces it\n"
		"  http        whether spryd's HTTP front serves the chain (default\n"
		"              on; off: 404 as if it did not exist)\n"
		"invoke runs the chain once through spryd (control socket PATH,\n"
		"default " SPRY_CTL_SOCK_DEFAULT ") and prints the response.\n"
		"Names: 1-%d characters of A-Z a-z 0-9 _ . -; 'origin' is reserved.\n",
		SPRY_MAX_HOPS, SPRY_MAX_HOPS, SPRY_MAX_N_BUFS, SPRY_DEF_N_BUFS,
		SPRY_MIN_BUF_SIZE, SPRY_MAX_BUF_SIZE, SPRY_DEF_BUF_SIZE,
		SPRY_MAX_INFLIGHT, SPRY_DEF_MAX_INFLIGHT, SPRY_MAX_DEADLINE_MS,
		SPRY_DEF_DEADLINE_MS, SPRY_MAX_CPUS - 1, SPRY_MAX_INVOKERS,
		SPRY_NAME_LEN - 1);
}

static int do_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, chain_help);
}

/*
 * Call @item on every entry of the comma-separated list @arg, in order; an
 * empty list or entry is an error.  0, or -1 after p_err.
 */
static int parse_list(const char *arg, const char *what,
		      int (*item)(char *tok, void *ctx), void *ctx)
{
	char *copy, *tok, *save = NULL;
	int ret = -1;

	if (!*arg || arg[strlen(arg) - 1] == ',' || arg[0] == ',' || strstr(arg, ",,")) {
		p_err("%s: empty entry in '%s'", what, arg);
		return -1;
	}
	copy = strdup(arg);
	if (!copy) {
		p_err("out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (item(tok, ctx))
			goto out;
	ret = 0;
out:
	free(copy);
	return ret;
}

/* Where parse_list()'s items go: at most @max of them. */
struct list_out {
	const char	*what;
	void		*out;
	__u32		max;
	__u32		*n;
	enum spry_id_kind kind;		/* id lists */
};

static bool list_full(struct list_out *o)
{
	if (*o->n < o->max)
		return false;
	p_err("%s: more than %u entries", o->what, o->max);
	return true;
}

static int name_item(char *tok, void *ctx)
{
	struct list_out *o = ctx;
	char (*out)[SPRY_NAME_LEN] = o->out;

	if (list_full(o) || parse_name(tok, "function", out[*o->n]))
		return -1;
	(*o->n)++;
	return 0;
}

/* Split a comma-separated list of names into @out (at most @max). */
static int parse_name_list(const char *arg, const char *what,
			   char out[][SPRY_NAME_LEN], __u32 max, __u32 *n)
{
	struct list_out o = { .what = what, .out = out, .max = max, .n = n };

	*n = 0;
	return parse_list(arg, what, name_item, &o);
}

static int id_item(char *tok, void *ctx)
{
	struct list_out *o = ctx;
	__u32 *ids = o->out;
	char err[256];

	if (list_full(o))
		return -1;
	if (spry_id__parse(o->kind, tok, &ids[*o->n], err, sizeof(err))) {
		p_err("%s: %s", o->what, err);
		return -1;
	}
	(*o->n)++;
	return 0;
}

/* Users or groups (names or ids, comma-separated) who may invoke the chain. */
static int parse_id_list(const char *arg, const char *what, enum spry_id_kind kind,
			 __u32 *ids, __u32 *n)
{
	struct list_out o = { .what = what, .out = ids, .max = SPRY_MAX_INVOKERS,
			      .n = n, .kind = kind };

	*n = 0;
	return parse_list(arg, what, id_item, &o);
}

/* One F:G of a pairs list (parse_pairs()). */
static int pair_item(char *tok, void *ctx)
{
	struct list_out *o = ctx;
	char (*pairs)[2][SPRY_NAME_LEN] = o->out;
	char *colon = strchr(tok, ':');

	if (!colon || strchr(colon + 1, ':')) {
		p_err("%s: '%s' is not F:G", o->what, tok);
		return -1;
	}
	*colon = '\0';
	if (list_full(o) ||
	    parse_name(tok, "function", pairs[*o->n][0]) ||
	    parse_name(colon + 1, "function", pairs[*o->n][1]))
		return -1;
	(*o->n)++;
	return 0;
}

int parse_pairs(const char *arg, const char *what, char (*pairs)[2][SPRY_NAME_LEN],
		__u32 max, __u32 *n)
{
	struct list_out o = { .what = what, .out = pairs, .max = max, .n = n };

	return parse_list(arg, what, pair_item, &o);
}

static int parse_calls(const char *arg, struct spry_chain_spec *spec)
{
	return parse_pairs(arg, "calls", spec->allow, SPRY_MAX_ALLOW, &spec->n_allow);
}

/* next F:G,...: conditional nexts (docs/WORKFLOWS.md). */
static int parse_next(const char *arg, struct spry_chain_spec *spec)
{
	return parse_pairs(arg, "next", spec->next, SPRY_MAX_ALLOW, &spec->n_next);
}

static int hop_index(const struct spry_chain_spec *spec, const char *name)
{
	__u32 i;

	for (i = 0; i < spec->n_hops; i++)
		if (!strcmp(spec->hops[i], name))
			return i;
	return -1;
}

static const char *const add_keywords[] = {
	"hops", "functions", "calls", "user", "buffers", "buffer-size",
	"max-inflight", "deadline", "idempotent", "cpus", "invoke users",
	"invoke groups", "http", "next", NULL,
};

enum { KW_HOPS, KW_FUNCTIONS, KW_CALLS, KW_USER, KW_BUFFERS, KW_BUF_SIZE,
       KW_MAX_INFLIGHT, KW_DEADLINE, KW_IDEMPOTENT, KW_CPUS, KW_INVOKE_USERS,
       KW_INVOKE_GROUPS, KW_HTTP, KW_NEXT, KW_N };

static int parse_add(int argc, char **argv, struct spry_chain_spec *spec)
{
	char idem[SPRY_MAX_HOPS][SPRY_NAME_LEN];
	char err[256];
	static const char *const on_off[] = { "on", "off", NULL };
	const char *vals[KW_N] = {}, *val;
	__u32 n_idem = 0, i;
	int kw, h;

	memset(spec, 0, sizeof(*spec));
	spec->uid = getuid();
	if (argc < 1) {
		p_err("missing chain NAME");
		return -1;
	}
	if (parse_name(argv[0], "chain", spec->name))
		return -1;
	NEXT_ARG();
	if (parse_keywords(argc, argv, add_keywords, vals))
		return -1;
	for (kw = 0; kw < KW_N; kw++) {
		val = vals[kw];
		if (!val)
			continue;
		switch (kw) {
		case KW_HOPS:
			if (parse_name_list(val, "hops", spec->hops, SPRY_MAX_HOPS,
					    &spec->n_hops))
				return -1;
			break;
		case KW_FUNCTIONS:
			if (parse_name_list(val, "functions", spec->extra,
					    SPRY_MAX_HOPS, &spec->n_extra))
				return -1;
			break;
		case KW_CALLS:
			if (parse_calls(val, spec))
				return -1;
			break;
		case KW_USER:
			if (parse_user(val, &spec->uid))
				return -1;
			break;
		case KW_BUFFERS:
			if (parse_u32(val, 1, SPRY_MAX_N_BUFS, "buffers", &spec->n_bufs))
				return -1;
			break;
		case KW_BUF_SIZE:
			if (parse_u32(val, SPRY_MIN_BUF_SIZE, SPRY_MAX_BUF_SIZE,
				      "buffer-size", &spec->buf_size))
				return -1;
			break;
		case KW_MAX_INFLIGHT:
			if (parse_u32(val, 1, SPRY_MAX_INFLIGHT, "max-inflight",
				      &spec->max_inflight))
				return -1;
			break;
		case KW_DEADLINE:
			if (parse_u32(val, 1, SPRY_MAX_DEADLINE_MS, "deadline",
				      &spec->deadline_ms))
				return -1;
			break;
		case KW_IDEMPOTENT:
			if (parse_name_list(val, "idempotent", idem, SPRY_MAX_HOPS,
					    &n_idem))
				return -1;
			break;
		case KW_CPUS:
			if (spry_cpus__parse(val, spec->cpus, err, sizeof(err))) {
				p_err("%s", err);
				return -1;
			}
			break;
		case KW_INVOKE_USERS:
			spec->invoke_set = true;
			if (parse_id_list(val, "invoke users", SPRY_ID_USER,
					  spec->invoke_uids, &spec->n_invoke_uids))
				return -1;
			break;
		case KW_INVOKE_GROUPS:
			spec->invoke_set = true;
			if (parse_id_list(val, "invoke groups", SPRY_ID_GROUP,
					  spec->invoke_gids, &spec->n_invoke_gids))
				return -1;
			break;
		case KW_NEXT:
			if (parse_next(val, spec))
				return -1;
			break;
		case KW_HTTP:
			h = match_word(on_off, val, "http value (on or off)");
			if (h < 0)
				return -1;
			spec->http_off = h == 1;
			break;
		}
	}
	if (!vals[KW_HOPS]) {
		p_err("missing 'hops F1,F2,...'");
		return -1;
	}
	for (i = 0; i < n_idem; i++) {
		h = hop_index(spec, idem[i]);
		if (h < 0) {
			p_err("idempotent: '%s' is not a hop of the chain", idem[i]);
			return -1;
		}
		spec->idempotent_mask |= 1U << h;
	}
	if (spry_chain_spec__check(spec, err, sizeof(err))) {
		p_err("%s", err);
		return -1;
	}
	return 0;
}

/*
 * A replaced chain keeps the declarations (spry fn declare) of the
 * functions it still has; those of removed functions go.  0 or -1.
 */
static int decls_keep(const struct spry_chain_spec *spec)
{
	struct spry_chain_decls *d;
	char dir[PATH_MAX], err[256];
	__u32 i, n = 0;
	int h, ret = -1;
	bool in;

	if (decl_dir(dir, sizeof(dir)))
		return -1;
	d = calloc(1, sizeof(*d));
	if (!d) {
		p_err("out of memory");
		return -1;
	}
	if (spry_decls__read(dir, spec->name, d, err, sizeof(err))) {
		ret = 0;	/* none (a damaged file is spryd's to report) */
		goto out;
	}
	for (i = 0; i < d->n; i++) {
		in = hop_index(spec, d->fns[i].fn) >= 0;
		for (h = 0; !in && h < (int)spec->n_extra; h++)
			in = !strcmp(spec->extra[h], d->fns[i].fn);
		if (in)
			d->fns[n++] = d->fns[i];
	}
	/* Written even when unchanged: spryd, which watches the directory,
	 * then looks at the chain again (replaced under the same names). */
	if (n != d->n || n) {
		d->n = n;
		if (spry_decls__write(dir, spec->name, d)) {
			p_err("cannot write the declarations of chain %s", spec->name);
			goto out;
		}
	}
	ret = 0;
out:
	free(d);
	return ret;
}

static int do_add(int argc, char **argv)
{
	struct spry_chain_spec spec;
	struct spry_maps m;
	bool existed;
	json_t *o;
	__u16 id;
	int err, lock, ret = -1;

	if (parse_add(argc, argv, &spec))
		return -1;
	if (maps_open(&m))
		return -1;
	lock = pin_lock();
	if (lock < 0)
		goto out_maps;
	err = spry_chain__lookup(&m, spec.name, NULL, NULL);
	if (err && err != -ENOENT) {
		p_errno(err, "cannot read chains");
		goto out_unlock;
	}
	existed = !err;
	err = spry_chain__add(&m, &spec, &id);
	if (err == -ENOSPC) {
		p_err("no free chain or function id for chain '%s'", spec.name);
		goto out_unlock;
	}
	if (err) {
		p_errno(err, "cannot add chain '%s'", spec.name);
		goto out_unlock;
	}
	if (decls_keep(&spec))
		goto out_unlock;
	if (json_output) {
		o = json_object();
		if (!o || jset(o, "name", json_string(spec.name)) ||
		    jset(o, "id", json_integer(id)) ||
		    jset(o, "replaced", json_boolean(existed))) {
			json_decref(o);
			goto out_unlock;
		}
		json_result(o);
	} else {
		printf("chain %s %s (id %u)\n", spec.name,
		       existed ? "replaced" : "added", id);
	}
	ret = 0;
out_unlock:
	spry_pin_unlock(lock);
out_maps:
	spry_maps__close(&m);
	return ret;
}

static int do_del(int argc, char **argv)
{
	char name[SPRY_NAME_LEN];
	struct spry_maps m;
	int err, lock, ret = -1;

	if (argc < 1) {
		p_err("missing chain NAME");
		return -1;
	}
	if (argc > 1) {
		p_err("unexpected argument '%s'", argv[1]);
		return -1;
	}
	if (parse_name(argv[0], "chain", name))
		return -1;
	if (maps_open(&m))
		return -1;
	lock = pin_lock();
	if (lock < 0)
		goto out_maps;
	{
		struct spry_chain c;

		if (!spry_chain__lookup(&m, name, NULL, &c) && (c.flags & SPRY_CF_APP)) {
			p_err("'%s' is an app: spry app del %s", name, name);
			goto out_unlock;
		}
	}
	err = spry_chain__del(&m, name);
	if (err == -ENOENT) {
		p_err("no chain '%s'", name);
		goto out_unlock;
	}
	if (err) {
		p_errno(err, "cannot delete chain '%s'", name);
		goto out_unlock;
	}
	{
		char dir[PATH_MAX];

		if (decl_dir(dir, sizeof(dir)) || spry_decls__remove(dir, name))
			p_info("declarations of chain %s: not removed", name);
	}
	if (json_output)
		json_result(json_pack("{s:s,s:b}", "name", name, "deleted", 1));
	else
		printf("chain %s deleted\n", name);
	ret = 0;
out_unlock:
	spry_pin_unlock(lock);
out_maps:
	spry_maps__close(&m);
	return ret;
}

/* Whether auth key @k is one of the chain's consecutive hand-offs. */
static bool auth_is_path(const struct spry_chain *c, const struct spry_auth_key *k)
{
	unsigned int i, n = c->n_hops > SPRY_MAX_HOPS ? SPRY_MAX_HOPS : c->n_hops;

	if (!n)
		return false;
	if (k->from == SPRY_FN_ORIGIN && k->to == c->hops[0])
		return true;
	if (k->from == c->hops[n - 1] && k->to == SPRY_FN_ORIGIN)
		return true;
	for (i = 0; i + 1 < n; i++)
		if (k->from == c->hops[i] && k->to == c->hops[i + 1])
			return true;
	return false;
}

static bool is_hop(const struct spry_chain *c, __u16 fn)
{
	unsigned int i;

	for (i = 0; i < c->n_hops && i < SPRY_MAX_HOPS; i++)
		if (c->hops[i] == fn)
			return true;
	return false;
}

/* [{"uid": 1000, "name": "alice"}, ...] ("gid" for groups; name null if none). */
static json_t *ids_json(enum spry_id_kind kind, const __u32 *ids, unsigned int n)
{
	json_t *arr = json_array(), *o;
	char name[256];
	unsigned int i;

	if (!arr)
		return NULL;
	for (i = 0; i < n && i < SPRY_MAX_INVOKERS; i++) {
		const char *nm = spry_id__name(kind, ids[i], name, sizeof(name));

		o = json_pack("{s:I,s:o}", kind == SPRY_ID_USER ? "uid" : "gid",
			      (json_int_t)ids[i], "name",
			      nm ? json_string(nm) : json_null());
		if (jappend(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *invoke_json(const struct spry_chain *c)
{
	json_t *users = ids_json(SPRY_ID_USER, c->invoke_uids, c->n_invoke_uids);
	json_t *groups = ids_json(SPRY_ID_GROUP, c->invoke_gids, c->n_invoke_gids);

	if (!users || !groups) {
		json_decref(users);
		json_decref(groups);
		return NULL;
	}
	return json_pack("{s:o,s:o}", "users", users, "groups", groups);
}

static json_t *chain_json(const struct snapshot *s, __u16 id)
{
	const struct spry_chain *c = &s->chains[id];
	json_t *o, *hops, *fns, *calls, *next, *h;
	unsigned int i;
	char uname[64], cpus[SPRY_MAX_CPUS * 4];
	size_t k;

	o = json_object();
	hops = json_array();
	fns = json_array();
	calls = json_array();
	next = json_array();
	if (!o || !hops || !fns || !calls || !next)
		goto err;
	for (i = 0; i < c->n_hops && i < SPRY_MAX_HOPS; i++) {
		h = json_pack("{s:i,s:s,s:b}", "id", c->hops[i], "name",
			      snapshot__fn_name(s, c->hops[i]), "idempotent",
			      c->hops[i] < SPRY_MAX_FNS &&
			      (s->fns[c->hops[i]].flags & SPRY_FF_IDEMPOTENT));
		if (jappend(hops, h))
			goto err;
	}
	for (i = 1; i < SPRY_MAX_FNS; i++) {
		if (!s->fns[i].name[0] || s->fns[i].chain != id || is_hop(c, i))
			continue;
		if (jappend(fns, json_pack("{s:i,s:s}", "id", i, "name",
					   s->fns[i].name)))
			goto err;
	}
	for (k = 0; k < s->n_auth; k++) {
		const struct spry_auth_key *a = &s->auth[k];

		/* an app's handler nexts are 'spry app show''s (handler names) */
		if (a->chain != id || (a->kind == SPRY_AK_HANDOFF && auth_is_path(c, a)) ||
		    a->kind == SPRY_AK_APP_NEXT)
			continue;
		if (jappend(a->kind == SPRY_AK_NEXT ? next : calls, json_pack("{s:s,s:s}", "from",
					     snapshot__fn_name(s, a->from), "to",
					     snapshot__fn_name(s, a->to))))
			goto err;
	}
	if (jset(o, "id", json_integer(id)) ||
	    jset(o, "name", json_string(c->name)) ||
	    jset(o, "flags", jflags(c->flags, chain_flag_names, 2)) ||
	    jset(o, "uid", json_integer(c->uid)) ||
	    jset(o, "user", user_name(c->uid, uname, sizeof(uname)) ?
		 json_string(uname) : json_null()) ||
	    jset(o, "pool_size", json_integer(c->pool_size)) ||
	    jset(o, "buffers", json_integer(c->n_bufs)) ||
	    jset(o, "buffer_size", json_integer(c->buf_size)) ||
	    jset(o, "max_inflight", json_integer(c->max_inflight)) ||
	    jset(o, "deadline_ms", json_integer(c->deadline_ms)) ||
	    jset(o, "cpus", spry_cpus__format(c->cpus, cpus, sizeof(cpus)) ||
		 !cpus[0] ? json_null() : json_string(cpus)) ||
	    jset(o, "n_hops", json_integer(c->n_hops)) ||
	    jset(o, "invoke", invoke_json(c)) ||
	    jset(o, "http", json_boolean(!(c->flags & SPRY_CF_NO_HTTP))))
		goto err;
	if (jset(o, "hops", hops))
		goto err_parts;
	if (jset(o, "functions", fns))
		goto err_calls;
	if (jset(o, "calls", calls))
		goto err_next;
	if (jset(o, "next", next))
		goto err_obj;
	return o;
err:
	json_decref(hops);
err_parts:
	json_decref(fns);
err_calls:
	json_decref(calls);
err_next:
	json_decref(next);
err_obj:
	json_decref(o);
	return NULL;
}

/* "@what alice(1000) 1001" as ids_json() listed them; "none" for []. */
static void ids_print(const char *what, json_t *arr, const char *key)
{
	const char *name;
	json_t *v;
	size_t i;

	printf("%s", what);
	if (!json_array_size(arr))
		printf(" none");
	json_array_foreach(arr, i, v) {
		name = json_string_value(json_object_get(v, "name"));
		if (name)
			printf(" %s(%lld)", name, json_integer_value(json_object_get(v, key)));
		else
			printf(" %lld", json_integer_value(json_object_get(v, key)));
	}
}

static void chain_print(json_t *c)
{
	json_t *v, *flags = json_object_get(c, "flags");
	const char *user, *cpus;
	size_t i;

	printf("%lld: %s", json_integer_value(json_object_get(c, "id")),
	       json_string_value(json_object_get(c, "name")));
	json_array_foreach(flags, i, v)
		printf("  %s", json_string_value(v));
	user = json_string_value(json_object_get(c, "user"));
	printf("  uid %lld", json_integer_value(json_object_get(c, "uid")));
	if (user)
		printf(" (%s)", user);
	printf("\n\thops");
	json_array_foreach(json_object_get(c, "hops"), i, v)
		printf("%s %s(%lld)%s", i ? " ->" : "",
		       json_string_value(json_object_get(v, "name")),
		       json_integer_value(json_object_get(v, "id")),
		       json_is_true(json_object_get(v, "idempotent")) ? "*" : "");
	printf("\n");
	if (json_array_size(json_object_get(c, "functions"))) {
		printf("\tfunctions");
		json_array_foreach(json_object_get(c, "functions"), i, v)
			printf(" %s(%lld)", json_string_value(json_object_get(v, "name")),
			       json_integer_value(json_object_get(v, "id")));
		printf("\n");
	}
	if (json_array_size(json_object_get(c, "calls"))) {
		printf("\tcalls");
		json_array_foreach(json_object_get(c, "calls"), i, v)
			printf(" %s:%s", json_string_value(json_object_get(v, "from")),
			       json_string_value(json_object_get(v, "to")));
		printf("\n");
	}
	if (json_array_size(json_object_get(c, "next"))) {
		printf("\tnext");
		json_array_foreach(json_object_get(c, "next"), i, v)
			printf(" %s:%s", json_string_value(json_object_get(v, "from")),
			       json_string_value(json_object_get(v, "to")));
		printf("\n");
	}
	printf("\tbuffers %lld x %lld B  pool %lld B  max-inflight %lld  deadline %lld ms",
	       json_integer_value(json_object_get(c, "buffers")),
	       json_integer_value(json_object_get(c, "buffer_size")),
	       json_integer_value(json_object_get(c, "pool_size")),
	       json_integer_value(json_object_get(c, "max_inflight")),
	       json_integer_value(json_object_get(c, "deadline_ms")));
	cpus = json_string_value(json_object_get(c, "cpus"));
	printf("  cpus %s\n", cpus ? cpus : "any");
	printf("\tinvoke");
	ids_print(" users", json_object_get(json_object_get(c, "invoke"), "users"), "uid");
	ids_print("  groups", json_object_get(json_object_get(c, "invoke"), "groups"), "gid");
	printf("  (root always)  http %s\n",
	       json_is_true(json_object_get(c, "http")) ? "on" : "off");
}

static int do_show(int argc, char **argv)
{
	struct snapshot *s = NULL;
	char name[SPRY_NAME_LEN];
	struct spry_maps m;
	json_t *arr = NULL, *c;
	int id, ret = -1;

	if (argc > 1) {
		p_err("unexpected argument '%s'", argv[1]);
		return -1;
	}
	if (argc == 1 && parse_name(argv[0], "chain", name))
		return -1;
	if (maps_open(&m))
		return -1;
	s = snapshot__read(&m);
	if (!s)
		goto out;
	if (argc == 1) {
		id = snapshot__chain(s, name);
		if (id < 0)
			goto out;
		c = chain_json(s, id);
		if (!c) {
			p_err("out of memory");
			goto out;
		}
		if (json_output)
			json_result(c);
		else {
			chain_print(c);
			json_decref(c);
		}
		ret = 0;
		goto out;
	}
	arr = json_array();
	if (!arr) {
		p_err("out of memory");
		goto out;
	}
	for (id = 1; id < SPRY_MAX_CHAINS; id++) {
		if (!s->chains[id].name[0])
			continue;
		if (jappend(arr, chain_json(s, id)))
			goto out;
	}
	show_emit(arr, chain_print);
	arr = NULL;
	ret = 0;
out:
	json_decref(arr);
	snapshot__free(s);
	spry_maps__close(&m);
	return ret;
}

int do_chain(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_show },
		{ "add",	do_add },
		{ "del",	do_del },
		{ "invoke",	do_invoke },
		{ "help",	do_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "chain command");
}
