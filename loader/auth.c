// SPDX-License-Identifier: GPL-2.0-only
/* spry auth { show | allow | deny | help } */
#include <errno.h>
#include <string.h>

#include "loader/main.h"

static void auth_help(FILE *f)
{
	fprintf(f,
		"Usage: spry auth show [chain NAME]\n"
		"       spry auth allow chain NAME from F to G\n"
		"       spry auth deny chain NAME from F to G\n"
		"       spry auth help\n"
		"\n"
		"The hand-offs the router allows within a chain: F may send to G\n"
		"(next hop, call or reply).  F or G may be 'origin' (spryd).  'chain\n"
		"add' and 'apply' reset a chain's hand-offs to its definition.\n"
		"Denying a hand-off that is not allowed is not an error.  Entries\n"
		"marked (next) are conditional nexts ('chain add ... next F:G'); those\n"
		"marked (app next) an app's ('app add ... next F:G'), between its\n"
		"handlers' numbers (#N: the N-th of its fns, 'spry app show').\n");
}

static int do_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, auth_help);
}

static void auth_print(json_t *a)
{
	const char *kind = json_string_value(json_object_get(a, "kind"));

	printf("%s: %s(%lld) -> %s(%lld)%s\n",
	       json_string_value(json_object_get(a, "chain")),
	       json_string_value(json_object_get(a, "from")),
	       json_integer_value(json_object_get(a, "from_id")),
	       json_string_value(json_object_get(a, "to")),
	       json_integer_value(json_object_get(a, "to_id")),
	       kind && !strcmp(kind, "next") ? "  (next)" :
	       kind && !strcmp(kind, "app_next") ? "  (app next: handler numbers)" : "");
}

static int do_show(int argc, char **argv)
{
	struct snapshot *s;
	struct spry_maps m;
	char hfrom[16], hto[16];
	json_t *arr, *a;
	int chain, ret = -1;
	size_t i;

	if (show_begin(argc, argv, &m, &s, &chain))
		return -1;
	arr = json_array();
	if (!arr) {
		p_err("out of memory");
		goto out;
	}
	for (i = 0; i < s->n_auth; i++) {
		const struct spry_auth_key *k = &s->auth[i];
		const char *cname = k->chain < SPRY_MAX_CHAINS && s->chains[k->chain].name[0] ?
				    s->chains[k->chain].name : "?";

		if (chain >= 0 && k->chain != chain)
			continue;
		if (k->kind == SPRY_AK_APP_NEXT) {
			/* between an app's handlers: numbers, not fn ids */
			snprintf(hfrom, sizeof(hfrom), "#%u", k->from);
			snprintf(hto, sizeof(hto), "#%u", k->to);
		}
		a = json_pack("{s:s,s:i,s:s,s:i,s:s,s:i,s:s}", "chain", cname,
			      "chain_id", k->chain, "from",
			      k->kind == SPRY_AK_APP_NEXT ? hfrom : snapshot__fn_name(s, k->from),
			      "from_id", k->from, "to",
			      k->kind == SPRY_AK_APP_NEXT ? hto : snapshot__fn_name(s, k->to),
			      "to_id", k->to, "kind",
			      k->kind == SPRY_AK_NEXT ? "next" :
			      k->kind == SPRY_AK_APP_NEXT ? "app_next" : "handoff");
		if (jappend(arr, a))
			goto out;
	}
	show_emit(arr, auth_print);
	arr = NULL;
	ret = 0;
out:
	json_decref(arr);
	snapshot__free(s);
	spry_maps__close(&m);
	return ret;
}

/* Function id of @name in chain @chain ('origin' is 0); -1 after p_err. */
static int fn_resolve(const struct spry_maps *m, __u16 chain, const char *cname,
		      const char *name)
{
	char fname[SPRY_NAME_LEN];
	__u16 id;
	int err;

	if (!strcmp(name, "origin"))
		return SPRY_FN_ORIGIN;
	if (parse_name(name, "function", fname))
		return -1;
	err = spry_fn__lookup(m, chain, fname, &id, NULL);
	if (err == -ENOENT) {
		p_err("chain '%s' has no function '%s'", cname, fname);
		return -1;
	}
	if (err)
		return p_errno(err, "cannot read functions");
	return id;
}

static int auth_set(int argc, char **argv, bool allow)
{
	static const char *const kws[] = { "chain", "from", "to", NULL };
	const char *vals[3] = {};
	char cname[SPRY_NAME_LEN];
	struct spry_maps m;
	int kw, from, to, err, lock, ret = -1;
	__u16 cid;

	if (parse_keywords(argc, argv, kws, vals))
		return -1;
	for (kw = 0; kw < 3; kw++) {
		if (!vals[kw]) {
			p_err("missing '%s'", kws[kw]);
			return -1;
		}
	}
	if (parse_name(vals[0], "chain", cname))
		return -1;
	if (maps_open(&m))
		return -1;
	lock = pin_lock();
	if (lock < 0)
		goto out_maps;
	err = spry_chain__lookup(&m, cname, &cid, NULL);
	if (err == -ENOENT) {
		p_err("no chain '%s'", cname);
		goto out_unlock;
	}
	if (err) {
		p_errno(err, "cannot read chains");
		goto out_unlock;
	}
	from = fn_resolve(&m, cid, cname, vals[1]);
	if (from < 0)
		goto out_unlock;
	to = fn_resolve(&m, cid, cname, vals[2]);
	if (to < 0)
		goto out_unlock;
	if (from == SPRY_FN_ORIGIN && to == SPRY_FN_ORIGIN) {
		p_err("a hand-off from origin to origin is meaningless");
		goto out_unlock;
	}
	err = spry_auth__set(&m, cid, from, to, allow);
	if (err) {
		p_errno(err, "cannot update %s", SPRY_STR(SPRY_MAP_AUTH));
		goto out_unlock;
	}
	if (json_output)
		json_result(json_pack("{s:s,s:s,s:s,s:b}", "chain", cname, "from",
				      vals[1], "to", vals[2], "allowed", allow));
	else
		printf("chain %s: %s -> %s %s\n", cname, vals[1], vals[2],
		       allow ? "allowed" : "denied");
	ret = 0;
out_unlock:
	spry_pin_unlock(lock);
out_maps:
	spry_maps__close(&m);
	return ret;
}

static int do_allow(int argc, char **argv)
{
	return auth_set(argc, argv, true);
}

static int do_deny(int argc, char **argv)
{
	return auth_set(argc, argv, false);
}

int do_auth(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_show },
		{ "allow",	do_allow },
		{ "deny",	do_deny },
		{ "help",	do_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "auth command");
}
