// SPDX-License-Identifier: GPL-2.0-only
/* spry fn { show | declare | undeclare | help } */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fn-runtime/cpus.h"
#include "fn-runtime/parse.h"
#include "loader/main.h"

static void fn_help(FILE *f)
{
	fprintf(f,
		"Usage: spry fn show [chain NAME]\n"
		"       spry fn declare CHAIN FN exec PATH [user USER] [min N] [max N]\n"
		"                       [target N] [idle SECS] [cpus LIST] [queue N]\n"
		"                       [start template|exec] [args ARG ...]\n"
		"       spry fn undeclare CHAIN FN\n"
		"       spry fn help\n"
		"\n"
		"show: every function (of chain NAME): its chain, id, flags, instances\n"
		"(slot, in-flight count, live/quarantined/unhealthy, pid, uid,\n"
		"socket cookie) and counters.  Function 0 is spryd's origin.  A\n"
		"declared function also shows its declaration and what spryd does\n"
		"with it: desired, actual and starting instances, the last decision\n"
		"and the last error.\n"
		"\n"
		"declare: spryd starts and stops FN's instances itself (also when\n"
		"spryd starts later, and after it restarts):\n"
		"  exec    the executable (a relative path is made absolute here);\n"
		"          spryd adds --chain CHAIN --fn FN (and --sock) unless args\n"
		"          name --chain\n"
		"  user    who it runs as: the chain's user (default) or root\n"
		"  min     instances kept when idle (0-%d, default 0: scale to zero)\n"
		"  max     instances at most (1-%d, default %d)\n"
		"  target  requests in flight per instance the autoscaler aims at\n"
		"          (1-%d, default %d)\n"
		"  idle    seconds without requests before an instance stops\n"
		"          (0.001-86400, default %d)\n"
		"  cpus    CPUs of its instances (default: the chain's)\n"
		"  queue   requests of the chain held while instances start (1-%d,\n"
		"          default %d; more: 503); past the chain's deadline: 504\n"
		"  start   how an instance starts: template (the default: cloned by\n"
		"          FN's template, a process spryd starts once; faster:\n"
		"          docs/ELASTIC.md) or exec (fork + exec each time: for an\n"
		"          executable that is not a libspry function, a wrapper)\n"
		"  args    the rest of the line: FN's arguments\n"
		"undeclare: spryd no longer manages FN (its instances are stopped).\n",
		SPRY_MAX_INST, SPRY_MAX_INST, SPRY_DECL_DEF_MAX, SPRY_DECL_MAX_TARGET,
		SPRY_DECL_DEF_TARGET, SPRY_DECL_DEF_IDLE_MS / 1000, SPRY_DECL_MAX_QUEUE,
		SPRY_DECL_DEF_QUEUE);
}

static int do_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, fn_help);
}

int decl_dir(char *buf, size_t len)
{
	if (spry_state_dir(pin_dir, buf, len)) {
		p_err("state directory of pin directory %s: path too long", pin_dir);
		return -1;
	}
	return 0;
}

int decls_store(const char *chain, struct spry_chain_decls *d, const char *base)
{
	char dir[PATH_MAX], path[PATH_MAX * 2], cwd[PATH_MAX];
	struct spry_fn_decl *f;
	const char *exe;
	size_t used;
	__u32 i, k;
	int err;

	if (decl_dir(dir, sizeof(dir)))
		return -1;
	if (!base) {
		if (!getcwd(cwd, sizeof(cwd))) {
			p_errno(-errno, "getcwd");
			return -1;
		}
		base = cwd;
	}
	/* spryd runs elsewhere: a relative executable is relative to @base. */
	for (i = 0; i < d->n; i++) {
		struct spry_fn_decl abs;

		f = &d->fns[i];
		exe = spry_fn_decl__arg(f, 0);
		if (!exe || exe[0] == '/')
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, exe);
		abs = *f;
		abs.argc = 0;
		used = 0;
		(void)used;
		if (spry_fn_decl__add_arg(&abs, path)) {
			p_err("fn %s: exec path %s too long", f->fn, path);
			return -1;
		}
		for (k = 1; k < f->argc; k++) {
			if (spry_fn_decl__add_arg(&abs, spry_fn_decl__arg(f, k))) {
				p_err("fn %s: arguments too long", f->fn);
				return -1;
			}
		}
		*f = abs;
	}
	err = spry_decls__write(dir, chain, d);
	if (err)
		return p_errno(err, "cannot write the declarations of chain %s in %s", chain,
			       dir);
	return 0;
}

static const char *const declare_keywords[] = {
	"exec", "user", "min", "max", "target", "idle", "cpus", "queue", "start", NULL,
};

enum { DK_EXEC, DK_USER, DK_MIN, DK_MAX, DK_TARGET, DK_IDLE, DK_CPUS, DK_QUEUE, DK_START,
       DK_N };

static bool chain_has_fn(const struct spry_maps *m, __u16 chain, const char *fn)
{
	return !spry_fn__lookup(m, chain, fn, NULL, NULL);
}

static int do_declare(int argc, char **argv)
{
	const char *vals[DK_N] = {};
	struct spry_chain_decls *d = NULL;
	char chain[SPRY_NAME_LEN], dir[PATH_MAX], err[256];
	struct spry_fn_decl f;
	struct spry_chain c;
	struct spry_maps m;
	int nkw, i, e, lock, ret = -1;
	__u16 cid;
	uint64_t ns;

	if (argc < 2) {
		p_err("expected CHAIN FN exec PATH ...");
		return -1;
	}
	if (parse_name(argv[0], "chain", chain))
		return -1;
	spry_fn_decl__init(&f);
	if (parse_name(argv[1], "function", f.fn))
		return -1;
	argc -= 2;
	argv += 2;
	/* "args" takes the rest of the line: parse the keywords before it. */
	for (nkw = 0; nkw < argc && strcmp(argv[nkw], "args"); nkw++)
		;
	if (parse_keywords(nkw, argv, declare_keywords, vals))
		return -1;
	if (!vals[DK_EXEC]) {
		p_err("missing 'exec PATH'");
		return -1;
	}
	if (!*vals[DK_EXEC] || spry_fn_decl__add_arg(&f, vals[DK_EXEC])) {
		p_err("exec: empty or too long path");
		return -1;
	}
	for (i = nkw + 1; i < argc; i++) {
		if (spry_fn_decl__add_arg(&f, argv[i])) {
			p_err("args: more than %d arguments or %d bytes", SPRY_DECL_MAX_ARGS - 1,
			      SPRY_DECL_ARGS_BYTES);
			return -1;
		}
	}
	if (vals[DK_USER]) {
		if (parse_user(vals[DK_USER], &f.uid))
			return -1;
		f.has_uid = true;
	}
	if (vals[DK_MIN] && parse_u32(vals[DK_MIN], 0, SPRY_MAX_INST, "min", &f.min))
		return -1;
	if (vals[DK_MAX] && parse_u32(vals[DK_MAX], 1, SPRY_MAX_INST, "max", &f.max))
		return -1;
	if (vals[DK_TARGET] &&
	    parse_u32(vals[DK_TARGET], 1, SPRY_DECL_MAX_TARGET, "target", &f.target))
		return -1;
	if (vals[DK_IDLE]) {
		if (spry_secs__parse(vals[DK_IDLE], 1000000ULL,
				     SPRY_DECL_MAX_IDLE_MS * 1000000ULL, &ns)) {
			p_err("idle: '%s' is not a time in seconds (0.001-86400)", vals[DK_IDLE]);
			return -1;
		}
		f.idle_ms = (__u32)(ns / 1000000ULL);
	}
	if (vals[DK_START]) {
		if (strcmp(vals[DK_START], "template") && strcmp(vals[DK_START], "exec")) {
			p_err("start: '%s' is neither 'template' nor 'exec'", vals[DK_START]);
			return -1;
		}
		f.start_exec = !strcmp(vals[DK_START], "exec");
	}
	if (vals[DK_CPUS] && spry_cpus__parse(vals[DK_CPUS], f.cpus, err, sizeof(err))) {
		p_err("%s", err);
		return -1;
	}
	if (spry_fn_decl__check(&f, err, sizeof(err))) {
		p_err("%s", err);
		return -1;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		p_err("out of memory");
		return -1;
	}
	if (maps_open(&m))
		goto out_free;
	lock = pin_lock();
	if (lock < 0)
		goto out_maps;
	e = spry_chain__lookup(&m, chain, &cid, &c);
	if (e) {
		p_errno(e, "chain '%s'", chain);
		goto out_unlock;
	}
	if (!chain_has_fn(&m, cid, f.fn)) {
		p_err("'%s' is not a function of chain '%s'", f.fn, chain);
		goto out_unlock;
	}
	if (f.has_uid && f.uid && f.uid != c.uid) {
		p_err("user %u: instances run as the chain's user (%u) or root", f.uid, c.uid);
		goto out_unlock;
	}
	if (decl_dir(dir, sizeof(dir)))
		goto out_unlock;
	e = spry_decls__read(dir, chain, d, err, sizeof(err));
	if (e && e != -ENOENT) {
		p_err("declarations of chain %s: %s (replacing them)", chain, err);
		memset(d, 0, sizeof(*d));
	}
	if (vals[DK_QUEUE] &&
	    parse_u32(vals[DK_QUEUE], 1, SPRY_DECL_MAX_QUEUE, "queue", &d->queue))
		goto out_unlock;
	i = spry_decls__find(d, f.fn);
	if (i < 0) {
		if (d->n >= SPRY_DECL_MAX_FNS) {
			p_err("chain %s: more than %d declared functions", chain,
			      SPRY_DECL_MAX_FNS);
			goto out_unlock;
		}
		i = (int)d->n++;
	}
	d->fns[i] = f;
	if (decls_store(chain, d, NULL))
		goto out_unlock;
	if (json_output)
		json_result(json_pack("{s:s,s:s,s:b}", "chain", chain, "fn", f.fn,
				      "declared", 1));
	else
		printf("fn %s/%s declared (min %u max %u target %u idle %u ms)\n", chain,
		       f.fn, f.min, f.max, f.target, f.idle_ms);
	ret = 0;
out_unlock:
	spry_pin_unlock(lock);
out_maps:
	spry_maps__close(&m);
out_free:
	free(d);
	return ret;
}

static int do_undeclare(int argc, char **argv)
{
	struct spry_chain_decls *d;
	char chain[SPRY_NAME_LEN], fn[SPRY_NAME_LEN], dir[PATH_MAX], err[256];
	int i, e, ret = -1;

	if (argc != 2) {
		p_err("expected CHAIN FN");
		return -1;
	}
	if (parse_name(argv[0], "chain", chain) || parse_name(argv[1], "function", fn))
		return -1;
	if (decl_dir(dir, sizeof(dir)))
		return -1;
	d = calloc(1, sizeof(*d));
	if (!d) {
		p_err("out of memory");
		return -1;
	}
	e = spry_decls__read(dir, chain, d, err, sizeof(err));
	if (e == -ENOENT || (!e && (i = spry_decls__find(d, fn)) < 0)) {
		p_err("fn %s/%s is not declared", chain, fn);
		goto out;
	}
	if (e) {
		p_err("declarations of chain %s: %s", chain, err);
		goto out;
	}
	d->fns[i] = d->fns[--d->n];
	e = spry_decls__write(dir, chain, d);
	if (e) {
		p_errno(e, "cannot write the declarations of chain %s", chain);
		goto out;
	}
	if (json_output)
		json_result(json_pack("{s:s,s:s,s:b}", "chain", chain, "fn", fn, "declared", 0));
	else
		printf("fn %s/%s undeclared\n", chain, fn);
	ret = 0;
out:
	free(d);
	return ret;
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
	/* a cloud process's mailboxes (docs/PROCESS.md, "Mailboxes") */
	if (o && st->proc_id &&
	    jset(o, "mail", json_pack("{s:I,s:I,s:I,s:I}", "process", (json_int_t)st->proc_id,
				      "out", (json_int_t)st->mail_out,
				      "unread_answers", (json_int_t)st->mail_unread,
				      "in", (json_int_t)st->mail_in))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* spryd's supervisor status (state directory's status.json), or NULL. */
static json_t *status_load(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];

	if (spry_state_dir(pin_dir, dir, sizeof(dir)))
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, SPRY_DECL_STATUS);
	return json_load_file(path, 0, NULL);
}

/*
 * The declaration of @fn of @chain and what spryd does with it:
 * {"declared": {...}, "scale": {...}} members of @o.  0, or -1 after p_err.
 */
static int fn_decl_json(json_t *o, json_t *status, const char *chain, const char *fn)
{
	struct spry_chain_decls *d;
	char dir[PATH_MAX], err[256], cpus[256];
	const struct spry_fn_decl *f;
	json_t *dj, *argv, *e;
	size_t i;
	int k, ret = -1;

	if (spry_state_dir(pin_dir, dir, sizeof(dir)))
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d) {
		p_err("out of memory");
		return -1;
	}
	if (spry_decls__read(dir, chain, d, err, sizeof(err)) ||
	    (k = spry_decls__find(d, fn)) < 0) {
		ret = 0;
		goto out;
	}
	f = &d->fns[k];
	argv = json_array();
	for (i = 0; i < f->argc; i++)
		json_array_append_new(argv, json_string(spry_fn_decl__arg(f, (__u32)i)));
	cpus[0] = '\0';
	spry_cpus__format(f->cpus, cpus, sizeof(cpus));
	dj = json_pack("{s:o,s:i,s:i,s:i,s:i,s:s,s:i,s:s}", "argv", argv, "min", f->min,
		       "max", f->max, "target", f->target, "idle_ms", f->idle_ms,
		       "cpus", cpus, "queue", d->queue ? d->queue : SPRY_DECL_DEF_QUEUE,
		       "start", f->start_exec ? "exec" : "template");
	if (f->has_uid && dj)
		json_object_set_new(dj, "uid", json_integer(f->uid));
	if (jset(o, "declared", dj))
		goto out;
	json_array_foreach(json_object_get(status, "fns"), i, e) {
		const char *c = json_string_value(json_object_get(e, "chain"));
		const char *n = json_string_value(json_object_get(e, "fn"));

		if (c && n && !strcmp(c, chain) && !strcmp(n, fn)) {
			json_t *sc = json_deep_copy(e);

			json_object_del(sc, "chain");
			json_object_del(sc, "fn");
			if (jset(o, "scale", sc))
				goto out;
			break;
		}
	}
	ret = 0;
out:
	free(d);
	return ret;
}

/* One function as JSON; NULL after p_err. */
static json_t *fn_json(const struct spry_maps *m, const struct snapshot *s, __u16 id,
		       json_t *status)
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
	if (id && f->chain < SPRY_MAX_CHAINS && s->chains[f->chain].name[0] &&
	    fn_decl_json(o, status, s->chains[f->chain].name, f->name)) {
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
		v = json_object_get(inst, "mail");
		if (v)
			printf("\n\t  process %lld  mails out %lld  answers unread %lld  mails in %lld",
			       json_integer_value(json_object_get(v, "process")),
			       json_integer_value(json_object_get(v, "out")),
			       json_integer_value(json_object_get(v, "unread_answers")),
			       json_integer_value(json_object_get(v, "in")));
		printf("\n");
	}
	v = json_object_get(f, "declared");
	if (v) {
		printf("\tdeclared: %s  min %lld  max %lld  target %lld  idle %lld ms",
		       json_string_value(json_array_get(json_object_get(v, "argv"), 0)),
		       json_integer_value(json_object_get(v, "min")),
		       json_integer_value(json_object_get(v, "max")),
		       json_integer_value(json_object_get(v, "target")),
		       json_integer_value(json_object_get(v, "idle_ms")));
		if (*json_string_value(json_object_get(v, "cpus")))
			printf("  cpus %s", json_string_value(json_object_get(v, "cpus")));
		printf("  start %s", json_string_value(json_object_get(v, "start")));
		printf("\n");
	}
	v = json_object_get(f, "scale");
	if (v) {
		printf("\tscale: desired %lld  actual %lld  starting %lld  draining %lld  "
		       "held %lld  starts %lld  failures %lld  crashes %lld\n",
		       json_integer_value(json_object_get(v, "desired")),
		       json_integer_value(json_object_get(v, "actual")),
		       json_integer_value(json_object_get(v, "starting")),
		       json_integer_value(json_object_get(v, "draining")),
		       json_integer_value(json_object_get(v, "held")),
		       json_integer_value(json_object_get(v, "starts")),
		       json_integer_value(json_object_get(v, "failures")),
		       json_integer_value(json_object_get(v, "crashes")));
		if (json_integer_value(json_object_get(v, "template_pid")) > 0)
			printf("\ttemplate pid %lld  spare pid %lld (processes, not instances)\n",
			       json_integer_value(json_object_get(v, "template_pid")),
			       json_integer_value(json_object_get(v, "spare_pid")));
		if (json_string_length(json_object_get(v, "last_decision")))
			printf("\tlast decision: %s\n",
			       json_string_value(json_object_get(v, "last_decision")));
		if (json_string_length(json_object_get(v, "last_error")))
			printf("\tlast error: %s\n",
			       json_string_value(json_object_get(v, "last_error")));
	} else if (json_object_get(f, "declared")) {
		printf("\tscale: no spryd status yet\n");
	}
}

static int do_show(int argc, char **argv)
{
	struct snapshot *s;
	struct spry_maps m;
	json_t *arr, *f, *status;
	int chain, id;

	if (show_begin(argc, argv, &m, &s, &chain))
		return -1;
	status = status_load();
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
		f = fn_json(&m, s, id, status);
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
	json_decref(status);
	snapshot__free(s);
	spry_maps__close(&m);
	return 0;
err:
	json_decref(status);
	json_decref(arr);
	snapshot__free(s);
	spry_maps__close(&m);
	return -1;
}

int do_fn(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_show },
		{ "declare",	do_declare },
		{ "undeclare",	do_undeclare },
		{ "help",	do_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "fn command");
}
