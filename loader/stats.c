// SPDX-License-Identifier: GPL-2.0-only
/* spry stats: router verdict counters and per-function counters. */
#include <string.h>

#include "loader/main.h"

static void stats_help(FILE *f)
{
	fprintf(f,
		"Usage: spry stats\n"
		"       spry stats help\n"
		"\n"
		"Router verdicts (summed over CPUs) by name, then the counters of\n"
		"every function: delivered, sent, errors, dropped.\n");
}

static json_t *verdicts_json(const __u64 v[SPRY_V_MAX])
{
	json_t *o = json_object();
	unsigned int i;

	if (!o)
		return NULL;
	for (i = 0; i < SPRY_V_MAX; i++) {
		if (json_object_set_new(o, spry_verdict_name(i),
					json_integer((json_int_t)v[i]))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

int do_stats(int argc, char **argv)
{
	struct snapshot *s = NULL;
	__u64 verdicts[SPRY_V_MAX];
	struct spry_fn_stats fs;
	json_t *o = NULL, *fns, *f;
	struct spry_maps m;
	int err, ret = -1;
	unsigned int i;
	size_t k;

	if (argc == 1 && !strcmp(argv[0], "help")) {
		stats_help(json_output ? stderr : stdout);
		if (json_output)
			json_result(json_null());
		return 0;
	}
	if (argc) {
		p_err("unexpected argument '%s'", argv[0]);
		stats_help(stderr);
		return -1;
	}
	if (maps_open(&m))
		return -1;
	err = spry_verdicts__read(&m, verdicts);
	if (err) {
		p_errno(err, "cannot read %s", SPRY_STR(SPRY_MAP_VERDICTS));
		goto out;
	}
	s = snapshot__read(&m);
	if (!s)
		goto out;
	o = json_object();
	fns = json_array();
	if (!o || !fns) {
		json_decref(fns);
		p_err("out of memory");
		goto out;
	}
	if (jset(o, "verdicts", verdicts_json(verdicts))) {
		json_decref(fns);
		goto out;
	}
	if (jset(o, "functions", fns))
		goto out;
	for (i = 0; i < SPRY_MAX_FNS; i++) {
		if (i && !s->fns[i].name[0])
			continue;
		err = spry_fn_stats__read(&m, i, &fs);
		if (err) {
			p_errno(err, "cannot read %s", SPRY_STR(SPRY_MAP_FN_STATS));
			goto out;
		}
		if (!i && !fs.delivered && !fs.sent && !fs.errors && !fs.dropped)
			continue;
		f = json_pack("{s:i,s:s,s:s?,s:I,s:I,s:I,s:I}", "id", i,
			      "name", snapshot__fn_name(s, i), "chain",
			      i && s->fns[i].chain < SPRY_MAX_CHAINS &&
			      s->chains[s->fns[i].chain].name[0] ?
			      s->chains[s->fns[i].chain].name : NULL,
			      "delivered", (json_int_t)fs.delivered,
			      "sent", (json_int_t)fs.sent,
			      "errors", (json_int_t)fs.errors,
			      "dropped", (json_int_t)fs.dropped);
		if (jappend(fns, f))
			goto out;
	}
	if (json_output) {
		json_result(o);
		o = NULL;
	} else {
		printf("verdicts:\n");
		for (i = 0; i < SPRY_V_MAX; i++)
			printf("  %-14s %llu\n", spry_verdict_name(i),
			       (unsigned long long)verdicts[i]);
		printf("functions:%s\n", json_array_size(fns) ? "" : " none");
		json_array_foreach(fns, k, f)
			printf("  %lld %s/%s: delivered %lld  sent %lld  errors %lld  dropped %lld\n",
			       json_integer_value(json_object_get(f, "id")),
			       json_string_value(json_object_get(f, "chain")) ?: "-",
			       json_string_value(json_object_get(f, "name")),
			       json_integer_value(json_object_get(f, "delivered")),
			       json_integer_value(json_object_get(f, "sent")),
			       json_integer_value(json_object_get(f, "errors")),
			       json_integer_value(json_object_get(f, "dropped")));
	}
	ret = 0;
out:
	json_decref(o);
	snapshot__free(s);
	spry_maps__close(&m);
	return ret;
}
