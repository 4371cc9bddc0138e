// SPDX-License-Identifier: GPL-2.0-only
/* spry fn { show | help } */
#include <string.h>

#include "loader/main.h"

static void fn_help(FILE *f)
{
	fprintf(f,
		"Usage: spry fn show [chain NAME]\n"
		"       spry fn help\n"
		"\n"
		"Every function (of chain NAME): its chain, id, flags, instances\n"
		"(slot, in-flight count, live/quarantined/unhealthy, pid, uid,\n"
		"socket cookie) and counters.  Function 0 is spryd's origin.\n");
}

static int do_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, fn_help);
}

static json_t *inst_json(__u16 inst, const struct spry_inst_state *st, bool listed)
{
	json_t *o;

	o = json_pack("{s:i,s:i,s:b,s:I,s:I,s:I}", "inst", inst, "inflight",
		      st->inflight, "listed", listed, "pid", (json_int_t)st->pid,
		      "uid", (json_int_t)st->uid, "cookie", (json_int_t)st->cookie);
	if (o && jset(o, "flags", jflags(st->flags, inst_flag_names, 3))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* One function as JSON; NULL after p_err. */
static json_t *fn_json(const struct spry_maps *m, const struct snapshot *s, __u16 id)
{
	const struct spry_fn *f = &s->fns[id];
	struct spry_inst_state st;
	struct spry_fn_stats fs;
	json_t *o, *insts;
	bool listed;
	__u16 i, j;
	int err;

	err = spry_fn_stats__read(m, id, &fs);
	if (err) {
		p_errno(err, "cannot read the counters of fn %u", id);
		return NULL;
	}
	insts = json_array();
	if (!insts) {
		p_err("out of memory");
		return NULL;
	}
	for (i = 0; i < SPRY_MAX_INST; i++) {
		err = spry_inst__get(m, id, i, &st);
		if (err) {
			p_errno(err, "cannot read instance %u of fn %u", i, id);
			json_decref(insts);
			return NULL;
		}
		listed = false;
		for (j = 0; j < f->n_inst && j < SPRY_MAX_INST; j++)
			if (f->inst[j] == i)
				listed = true;
		if (!listed && !st.flags)
			continue;
		if (jappend(insts, inst_json(i, &st, listed))) {
			json_decref(insts);
			return NULL;
		}
	}
	o = json_object();
	if (!o || jset(o, "id", json_integer(id)) ||
	    jset(o, "name", json_string(snapshot__fn_name(s, id))) ||
	    jset(o, "chain", id && f->chain < SPRY_MAX_CHAINS && s->chains[f->chain].name[0] ?
			     json_string(s->chains[f->chain].name) : json_null()) ||
	    jset(o, "chain_id", json_integer(f->chain)) ||
	    jset(o, "flags", jflags(f->flags, fn_flag_names, 2)) ||
	    jset(o, "n_inst", json_integer(f->n_inst)) ||
	    jset(o, "stats", json_pack("{s:I,s:I,s:I,s:I}",
				       "delivered", (json_int_t)fs.delivered,
				       "sent", (json_int_t)fs.sent,
				       "errors", (json_int_t)fs.errors,
				       "dropped", (json_int_t)fs.dropped))) {
		json_decref(insts);
		json_decref(o);
		return NULL;
	}
	if (jset(o, "instances", insts)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void fn_print(json_t *f)
{
	json_t *v, *inst, *fl;
	size_t i, k;

	printf("%lld: %s", json_integer_value(json_object_get(f, "id")),
	       json_string_value(json_object_get(f, "name")));
	if (json_string_value(json_object_get(f, "chain")))
		printf("  chain %s(%lld)", json_string_value(json_object_get(f, "chain")),
		       json_integer_value(json_object_get(f, "chain_id")));
	json_array_foreach(json_object_get(f, "flags"), i, v)
		printf("  %s", json_string_value(v));
	v = json_object_get(f, "stats");
	printf("\n\tdelivered %lld  sent %lld  errors %lld  dropped %lld\n",
	       json_integer_value(json_object_get(v, "delivered")),
	       json_integer_value(json_object_get(v, "sent")),
	       json_integer_value(json_object_get(v, "errors")),
	       json_integer_value(json_object_get(v, "dropped")));
	json_array_foreach(json_object_get(f, "instances"), i, inst) {
		printf("\tinst %lld: inflight %lld  pid %lld  uid %lld  cookie %llu ",
		       json_integer_value(json_object_get(inst, "inst")),
		       json_integer_value(json_object_get(inst, "inflight")),
		       json_integer_value(json_object_get(inst, "pid")),
		       json_integer_value(json_object_get(inst, "uid")),
		       (unsigned long long)json_integer_value(json_object_get(inst, "cookie")));
		fl = json_object_get(inst, "flags");
		json_array_foreach(fl, k, v)
			printf(" %s", json_string_value(v));
		if (!json_is_true(json_object_get(inst, "listed")))
			printf(" (not routed to)");
		printf("\n");
	}
}

static int do_show(int argc, char **argv)
{
	struct snapshot *s;
	struct spry_maps m;
	json_t *arr, *f;
	int chain, id;

	if (show_begin(argc, argv, &m, &s, &chain))
		return -1;
	arr = json_array();
	if (!arr) {
		p_err("out of memory");
		goto err;
	}
	for (id = 0; id < SPRY_MAX_FNS; id++) {
		if (chain >= 0 && (!id || s->fns[id].chain != chain))
			continue;
		if (id && !s->fns[id].name[0])
			continue;
		f = fn_json(&m, s, id);
		if (!f)
			goto err;
		/* The origin only when spryd registered something. */
		if (!id && !s->fns[0].n_inst && !json_array_size(json_object_get(f, "instances"))) {
			json_decref(f);
			continue;
		}
		if (jappend(arr, f))
			goto err;
	}
	show_emit(arr, fn_print);
	snapshot__free(s);
	spry_maps__close(&m);
	return 0;
err:
	json_decref(arr);
	snapshot__free(s);
	spry_maps__close(&m);
	return -1;
}

int do_fn(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_show },
		{ "help",	do_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "fn command");
}
