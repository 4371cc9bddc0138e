// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry app { add | del | show | help } and
 * spry process { create | del | show | swap | wake | help }
 * (docs/PROCESS.md).  An app is a chain flagged SPRY_CF_APP plus its
 * declaration (lib/app.h); its processes live in spryd, which the process
 * commands ask through the control socket (PROC).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"
#include "lib/app.h"
#include "lib/proc_ctl.h"
#include "spry/spry.h"
#include "loader/main.h"

static const char *const ps_names[SPRY_PS_MAX] = {
	"allocated", "starting", "active", "swapped", "deleted", "lost",
};

/* Why a process is lost (enum spry_proc_lost). */
static const char *const pl_names[SPRY_PL_MAX] = {
	NULL, "swap file missing", "swap file damaged", "swap file of another app",
	"swap file unreadable",
};

static void app_help(FILE *f)
{
	fprintf(f,
		"Usage: spry app add NAME fns FN[,FN...] exec PATH [user USER] [max N]\n"
		"                    [state-size BYTES] [swap-dir DIR] [idle SECS]\n"
		"                    [create auto|manual] [next F:G[,F:G...]]\n"
		"                    [start template|exec]\n"
		"                    [args ARG ...]\n"
		"       spry app del NAME\n"
		"       spry app show [NAME]\n"
		"       spry app help\n"
		"\n"
		"An app's functions run together in one process, a cloud process\n"
		"(docs/PROCESS.md): one executable hosting every handler\n"
		"(spry_app_main()), started by spryd per process with its state path.\n"
		"  fns         the functions requests may name (POST /NAME/FN,\n"
		"              /NAME/ID/FN, 'spry chain invoke NAME fn FN')\n"
		"  exec        the executable (a relative path is made absolute)\n"
		"  user        who its processes run as (default root)\n"
		"  max         processes at most (1-%d, default %d)\n"
		"  state-size  state bytes per process (default %llu)\n"
		"  swap-dir    where swapped processes' state goes (its own: another\n"
		"              app's is refused)\n"
		"  idle        seconds without a request before a process is swapped\n"
		"              (0: never, default %d)\n"
		"  create      auto (default): a request naming no process may create\n"
		"              one; manual: only 'spry process create'\n"
		"  start       template (default): each process is cloned by the app's\n"
		"              template, started once (about half the cold start);\n"
		"              exec: fork + exec per process\n"
		"  next        F may pick G with spry_req_next() (both of fns; no loops,\n"
		"              at most %d): the router lets a handler hand its request\n"
		"              to another handler of the same process only along these\n"
		"              (docs/WORKFLOWS.md); any other pick: next_refused (502)\n"
		"  args        the rest of the line: the executable's arguments\n"
		"Processes survive a spryd restart (a table per app); they talk\n"
		"through mailboxes (spry_send, spry_recv: docs/PROCESS.md) and may\n"
		"call each other (spry_req_fanout: docs/WORKFLOWS.md).\n"
		"del: the app, its chain, its process table and (in spryd) every\n"
		"process.\n",
		SPRY_MAX_PROCS, SPRY_APP_DEF_MAX, (unsigned long long)SPRY_APP_DEF_STATE,
		SPRY_APP_DEF_IDLE_MS / 1000, SPRY_APP_MAX_NEXT);
}

static int app_dir(char *buf, size_t len)
{
	char state[PATH_MAX];

	if (decl_dir(state, sizeof(state)))
		return -1;
	if (spry_app_dir(state, buf, len)) {
		p_err("app directory: path too long");
		return -1;
	}
	return 0;
}

static const char *const add_kws[] = {
	"fns", "exec", "user", "max", "state-size", "swap-dir", "idle", "create", "next",
	"start", NULL,
};
enum { AK_FNS, AK_EXEC, AK_USER, AK_MAX, AK_STATE, AK_SWAP, AK_IDLE, AK_CREATE, AK_NEXT,
       AK_START, AK_N };

static int parse_app(int argc, char **argv, struct spry_app_decl *a)
{
	const char *vals[AK_N] = {};
	char err[256], cwd[PATH_MAX], buf[SPRY_DECL_ARGS_BYTES], *tok, *save;
	uint64_t ns;
	int nkw, i, e;

	spry_app_decl__init(a);
	if (argc < 1) {
		p_err("missing app NAME");
		return -1;
	}
	if (parse_name(argv[0], "app", a->name))
		return -1;
	argc--;
	argv++;
	for (nkw = 0; nkw < argc && strcmp(argv[nkw], "args"); nkw++)
		;
	if (parse_keywords(nkw, argv, add_kws, vals))
		return -1;
	if (!vals[AK_FNS] || !vals[AK_EXEC]) {
		p_err("missing '%s'", !vals[AK_FNS] ? "fns FN[,FN...]" : "exec PATH");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", vals[AK_FNS]);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		e = spry_app_decl__add_fn(a, tok);
		if (e) {
			p_err("fns: %s '%s'", e == -EEXIST ? "duplicate function" :
			      e == -E2BIG ? "more than 32 functions at" :
			      "invalid function name (A-Z a-z 0-9 _ . -, not digits only)", tok);
			return -1;
		}
	}
	if (vals[AK_EXEC][0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(buf, sizeof(buf), "%s/%s", cwd, vals[AK_EXEC]) >= (int)sizeof(buf)) {
			p_err("exec: path too long");
			return -1;
		}
	} else {
		snprintf(buf, sizeof(buf), "%s", vals[AK_EXEC]);
	}
	if (access(buf, X_OK)) {
		p_err("exec: '%s' is not an executable: %s", buf, strerror(errno));
		return -1;
	}
	if (spry_app_decl__add_arg(a, buf)) {
		p_err("exec: path too long");
		return -1;
	}
	for (i = nkw + 1; i < argc; i++) {
		if (spry_app_decl__add_arg(a, argv[i])) {
			p_err("args: more than %d arguments or %d bytes", SPRY_DECL_MAX_ARGS - 1,
			      SPRY_DECL_ARGS_BYTES);
			return -1;
		}
	}
	if (vals[AK_USER]) {
		if (parse_user(vals[AK_USER], &a->uid))
			return -1;
		a->has_uid = true;
	}
	if (vals[AK_MAX] && parse_u32(vals[AK_MAX], 1, SPRY_MAX_PROCS, "max", &a->max_procs))
		return -1;
	if (vals[AK_STATE]) {
		{
			uint64_t v;

			e = spry_num__parse(vals[AK_STATE], NULL, 4096, SPRY_APP_MAX_STATE, &v);
			if (!e)
				a->state_size = v;
		}
		if (e) {
			p_err("state-size: '%s' is not a number of bytes in 4096..%llu",
			      vals[AK_STATE], (unsigned long long)SPRY_APP_MAX_STATE);
			return -1;
		}
	}
	if (vals[AK_SWAP]) {
		if (vals[AK_SWAP][0] != '/' || strlen(vals[AK_SWAP]) >= sizeof(a->swap_dir)) {
			p_err("swap-dir: '%s' is not an absolute path (at most %d bytes)",
			      vals[AK_SWAP], SPRY_APP_SWAP_LEN - 1);
			return -1;
		}
		snprintf(a->swap_dir, sizeof(a->swap_dir), "%s", vals[AK_SWAP]);
	}
	if (vals[AK_IDLE]) {
		if (!strcmp(vals[AK_IDLE], "0")) {
			a->idle_ms = 0;
		} else if (spry_secs__parse(vals[AK_IDLE], 1000000ULL,
					    SPRY_DECL_MAX_IDLE_MS * 1000000ULL, &ns)) {
			p_err("idle: '%s' is not a time in seconds (0, or 0.001-86400)",
			      vals[AK_IDLE]);
			return -1;
		} else {
			a->idle_ms = (__u32)(ns / 1000000ULL);
		}
	}
	if (vals[AK_CREATE]) {
		if (strcmp(vals[AK_CREATE], "auto") && strcmp(vals[AK_CREATE], "manual")) {
			p_err("create: '%s' is neither 'auto' nor 'manual'", vals[AK_CREATE]);
			return -1;
		}
		a->autocreate = !strcmp(vals[AK_CREATE], "auto");
	}
	if (vals[AK_START]) {
		if (strcmp(vals[AK_START], "template") && strcmp(vals[AK_START], "exec")) {
			p_err("start: '%s' is neither 'template' nor 'exec'", vals[AK_START]);
			return -1;
		}
		a->start_exec = !strcmp(vals[AK_START], "exec");
	}
	if (vals[AK_NEXT] &&
	    parse_pairs(vals[AK_NEXT], "next", a->next, SPRY_APP_MAX_NEXT, &a->n_next))
		return -1;
	if (spry_app_decl__check(a, err, sizeof(err))) {
		p_err("%s", err);
		return -1;
	}
	return 0;
}

int app_store(struct spry_maps *m, const struct spry_app_decl *a, __u16 *id)
{
	struct spry_chain_spec *spec;
	struct spry_chain old;
	char dir[PATH_MAX], owner[SPRY_NAME_LEN];
	__u32 i;
	int err;

	err = spry_chain__lookup(m, a->name, NULL, &old);
	if (!err && !(old.flags & SPRY_CF_APP)) {
		p_err("'%s' is a chain, not an app (spry chain del it first)", a->name);
		return -1;
	}
	if (app_dir(dir, sizeof(dir)))
		return -1;
	err = spry_app__swap_dir_user(dir, a->name, a->swap_dir, owner);
	if (err < 0)
		return p_errno(err, "cannot read the apps in %s", dir);
	if (err) {
		p_err("swap-dir %s is app '%s''s: each app needs its own (swap files are named by process id)",
		      a->swap_dir, owner);
		return -1;
	}
	spec = calloc(1, sizeof(*spec));
	if (!spec) {
		p_err("out of memory");
		return -1;
	}
	snprintf(spec->name, sizeof(spec->name), "%s", a->name);
	spec->uid = a->has_uid ? a->uid : 0;
	spec->n_hops = 1;
	snprintf(spec->hops[0], SPRY_NAME_LEN, "%s", SPRY_APP_FN);
	/* Its processes may call each other (fan-out, docs/WORKFLOWS.md). */
	spec->n_allow = 1;
	snprintf(spec->allow[0][0], SPRY_NAME_LEN, "%s", SPRY_APP_FN);
	snprintf(spec->allow[0][1], SPRY_NAME_LEN, "%s", SPRY_APP_FN);
	spec->app = true;
	/* Its conditional nexts: handler numbers, 1 + index in fns. */
	for (i = 0; i < a->n_next; i++) {
		spec->app_next[i][0] = (__u16)(1 + spry_app_decl__find_fn(a, a->next[i][0],
								strlen(a->next[i][0])));
		spec->app_next[i][1] = (__u16)(1 + spry_app_decl__find_fn(a, a->next[i][1],
								strlen(a->next[i][1])));
	}
	spec->n_app_next = a->n_next;
	err = spry_chain__add(m, spec, id);
	free(spec);
	if (err == -ENOSPC) {
		p_err("no free chain or function id for app '%s'", a->name);
		return -1;
	}
	if (err)
		return p_errno(err, "cannot add app '%s'", a->name);
	err = spry_app__write(dir, a);
	if (err)
		return p_errno(err, "cannot write app '%s' in %s", a->name, dir);
	return 0;
}

static int do_add(int argc, char **argv)
{
	struct spry_app_decl *a = malloc(sizeof(*a));
	struct spry_maps m;
	int lock, ret = -1;
	__u16 id;

	if (!a) {
		p_err("out of memory");
		return -1;
	}
	if (parse_app(argc, argv, a) || maps_open(&m))
		goto out;
	lock = pin_lock();
	if (lock >= 0) {
		if (!app_store(&m, a, &id)) {
			if (json_output)
				json_result(json_pack("{s:s,s:i}", "app", a->name, "id", id));
			else
				printf("app %s added (chain id %u, %u functions)\n", a->name, id,
				       a->n_fns);
			ret = 0;
		}
		spry_pin_unlock(lock);
	}
	spry_maps__close(&m);
out:
	free(a);
	return ret;
}

static int do_del(int argc, char **argv)
{
	char name[SPRY_NAME_LEN], dir[PATH_MAX];
	struct spry_chain c;
	struct spry_maps m;
	int err, lock, ret = -1;

	if (argc != 1) {
		p_err(argc ? "unexpected argument '%s'" : "missing app NAME%s",
		      argc ? argv[1] : "");
		return -1;
	}
	if (parse_name(argv[0], "app", name) || app_dir(dir, sizeof(dir)) || maps_open(&m))
		return -1;
	lock = pin_lock();
	if (lock < 0)
		goto out;
	err = spry_chain__lookup(&m, name, NULL, &c);
	if (err == -ENOENT || (!err && !(c.flags & SPRY_CF_APP))) {
		p_err("no app '%s'", name);
		goto out_unlock;
	}
	err = err ?: spry_app__remove(dir, name);
	err = err ?: spry_chain__del(&m, name);
	if (err) {
		p_errno(err, "cannot delete app '%s'", name);
		goto out_unlock;
	}
	if (json_output)
		json_result(json_pack("{s:s,s:b}", "app", name, "deleted", 1));
	else
		printf("app %s deleted\n", name);
	ret = 0;
out_unlock:
	spry_pin_unlock(lock);
out:
	spry_maps__close(&m);
	return ret;
}

static json_t *app_json(const struct spry_app_decl *a)
{
	json_t *o = json_object(), *fns = json_array(), *argv = json_array();
	json_t *next = json_array();
	__u32 i;

	if (!o || !fns || !argv || !next)
		goto fail;
	for (i = 0; i < a->n_next; i++)
		if (jappend(next, json_pack("{s:s,s:s}", "from", a->next[i][0], "to",
					    a->next[i][1])))
			goto fail;

	for (i = 0; i < a->n_fns; i++)
		if (json_array_append_new(fns, json_string(a->fns[i])))
			goto fail;
	for (i = 0; i < a->argc; i++)
		if (json_array_append_new(argv, json_string(spry_app_decl__arg(a, i))))
			goto fail;
	if (jset(o, "app", json_string(a->name)) || jset(o, "fns", fns)) {
		fns = NULL;
		goto fail;
	}
	fns = NULL;
	if (jset(o, "argv", argv)) {
		argv = NULL;
		goto fail;
	}
	argv = NULL;
	if (jset(o, "uid", json_integer(a->has_uid ? a->uid : 0)) ||
	    jset(o, "max", json_integer(a->max_procs)) ||
	    jset(o, "state_size", json_integer((json_int_t)a->state_size)) ||
	    jset(o, "swap_dir", json_string(a->swap_dir)) ||
	    jset(o, "idle_ms", json_integer(a->idle_ms)) ||
	    jset(o, "create", json_string(a->autocreate ? "auto" : "manual")) ||
	    jset(o, "start", json_string(a->start_exec ? "exec" : "template")))
		goto fail;
	if (jset(o, "next", next)) {
		next = NULL;
		goto fail;
	}
	return o;
fail:
	json_decref(next);
	json_decref(fns);
	json_decref(argv);
	json_decref(o);
	return NULL;
}

static void app_print(json_t *o)
{
	json_t *v;
	size_t i;

	printf("app %s: fns", json_string_value(json_object_get(o, "app")));
	json_array_foreach(json_object_get(o, "fns"), i, v)
		printf("%s%s", i ? "," : " ", json_string_value(v));
	printf("  exec %s  uid %lld  max %lld  state-size %lld  idle %lld ms  create %s  start %s",
	       json_string_value(json_array_get(json_object_get(o, "argv"), 0)),
	       json_integer_value(json_object_get(o, "uid")),
	       json_integer_value(json_object_get(o, "max")),
	       json_integer_value(json_object_get(o, "state_size")),
	       json_integer_value(json_object_get(o, "idle_ms")),
	       json_string_value(json_object_get(o, "create")),
	       json_string_value(json_object_get(o, "start")));
	if (*json_string_value(json_object_get(o, "swap_dir")))
		printf("  swap-dir %s", json_string_value(json_object_get(o, "swap_dir")));
	json_array_foreach(json_object_get(o, "next"), i, v)
		printf("%s%s:%s", i ? "," : "  next ",
		       json_string_value(json_object_get(v, "from")),
		       json_string_value(json_object_get(v, "to")));
	printf("\n");
}

static int do_show(int argc, char **argv)
{
	char dir[PATH_MAX], name[SPRY_NAME_LEN], err[256];
	struct spry_app_decl *a = malloc(sizeof(*a));
	json_t *arr = json_array();
	struct dirent *de;
	DIR *dh;
	size_t n;
	int e, ret = -1;

	if (!a || !arr) {
		p_err("out of memory");
		goto out;
	}
	if (argc > 1) {
		p_err("unexpected argument '%s'", argv[1]);
		goto out;
	}
	if ((argc && parse_name(argv[0], "app", name)) || app_dir(dir, sizeof(dir)))
		goto out;
	if (argc) {
		e = spry_app__read(dir, name, a, err, sizeof(err));
		if (e) {
			if (e == -ENOENT)
				p_err("no app '%s'", name);
			else
				p_err("app %s: %s", name, err);
			goto out;
		}
		show_emit_one(app_json(a), app_print);
		ret = 0;
		goto out;
	}
	dh = opendir(dir);
	while (dh && (de = readdir(dh))) {
		n = strlen(de->d_name);
		if (n <= 5 || n - 5 >= SPRY_NAME_LEN || strcmp(de->d_name + n - 5, ".json"))
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = '\0';
		if (spry_app__read(dir, name, a, err, sizeof(err))) {
			p_info("app %s: %s", name, err);
			continue;
		}
		if (jappend(arr, app_json(a))) {
			closedir(dh);
			goto out;
		}
	}
	if (dh)
		closedir(dh);
	show_emit(arr, app_print);
	arr = NULL;
	ret = 0;
out:
	json_decref(arr);
	free(a);
	return ret;
}

static int do_app_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, app_help);
}

int do_app(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_show },
		{ "add",	do_add },
		{ "del",	do_del },
		{ "help",	do_app_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "app command");
}

/* ------------------------------------------------------------ process */

static void process_help(FILE *f)
{
	fprintf(f,
		"Usage: spry process create APP [id ID] [sock PATH]\n"
		"       spry process { del | swap | wake } APP id ID [sock PATH]\n"
		"       spry process show APP [id ID] [sock PATH]\n"
		"       spry process help\n"
		"\n"
		"An app's processes, in spryd (its control socket: default %s).\n"
		"ID: 1-%llu.  Life cycle: allocated -> (starting) -> active -> swapped\n"
		"-> active ... -> deleted; every transition counted (show, /metrics).\n"
		"lost: its swap file is missing, damaged or another app's: not started,\n"
		"its requests get an error, until the file is back or it is deleted.\n"
		"  create  a process (id: the next free one when not given); it starts\n"
		"          at its first request, or with 'wake'\n"
		"  del     the process and its state; requests naming it get 404\n"
		"  swap    stop its OS process, its state to the app's swap directory;\n"
		"          waits until it is swapped\n"
		"  wake    start it (its state is loaded lazily); waits until it is active\n"
		"  show    the app's counters and its processes (or process ID)\n",
		SPRY_CTL_SOCK_DEFAULT, (unsigned long long)SPRY_PROC_ID_MAX);
}

struct proc_reply {
	struct spry_ctl_proc_app	sum;
	struct spry_ctl_proc_info	*info;
	uint8_t				*buf;
};

static int proc_call(int fd, const char *app, uint32_t op, uint64_t id,
		     struct proc_reply *out)
{
	struct spry_ctl_proc req;
	struct spry_ctl_hdr hdr;
	int n;

	n = spry_ctl_proc__encode(app, id, op, 0, &req);
	if (n)
		return n;
	n = spry_ctl_send(fd, SPRY_CTL_PROC, 0, &req, sizeof(req), -1);
	if (n)
		return n;
	n = spry_ctl_recv(fd, out->buf, SPRY_CTL_MAX_MSG, &hdr, NULL);
	if (n < 0)
		return n;
	if (hdr.type != SPRY_CTL_PROC_ACK)
		return -EPROTO;
	if (hdr.status)
		return hdr.status < 0 ? hdr.status : -EPROTO;
	if ((size_t)n < sizeof(out->sum))
		return -EPROTO;
	memcpy(&out->sum, out->buf, sizeof(out->sum));
	if (out->sum.n_info != ((size_t)n - sizeof(out->sum)) / sizeof(*out->info))
		return -EPROTO;
	out->info = (struct spry_ctl_proc_info *)(out->buf + sizeof(out->sum));
	return 0;
}

static json_t *info_json(const struct spry_ctl_proc_info *p)
{
	json_t *o = json_object();

	if (!o || jset(o, "id", json_integer((json_int_t)p->id)) ||
	    jset(o, "state", json_string(p->state < SPRY_PS_MAX ? ps_names[p->state] : "?")) ||
	    jset(o, "pid", json_integer(p->pid)) ||
	    jset(o, "inst", p->inst == 0xffff ? json_null() : json_integer(p->inst)) ||
	    jset(o, "activations", json_integer((json_int_t)p->activations)) ||
	    jset(o, "swaps", json_integer((json_int_t)p->swaps)) ||
	    jset(o, "idle_ms", json_integer((json_int_t)p->idle_ms)) ||
	    (p->state == SPRY_PS_LOST &&
	     jset(o, "lost", json_string(p->lost && p->lost < SPRY_PL_MAX ? pl_names[p->lost] :
					 "?")))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *reply_json(const char *app, const struct proc_reply *r)
{
	const struct spry_ctl_proc_app *s = &r->sum;
	json_t *o = json_object(), *n = json_object(), *t = json_object(), *arr = json_array();
	uint32_t i;

	if (!o || !n || !t || !arr)
		goto fail;
	for (i = 0; i < SPRY_PS_MAX; i++)
		if (i != SPRY_PS_DELETED && jset(n, ps_names[i], json_integer(s->n[i])))
			goto fail;
	if (jset(t, "created", json_integer((json_int_t)s->created)) ||
	    jset(t, "started", json_integer((json_int_t)s->started)) ||
	    jset(t, "activated", json_integer((json_int_t)s->activated)) ||
	    jset(t, "swapped", json_integer((json_int_t)s->swapped)) ||
	    jset(t, "woken", json_integer((json_int_t)s->woken)) ||
	    jset(t, "deleted", json_integer((json_int_t)s->deleted)) ||
	    jset(t, "crashed", json_integer((json_int_t)s->crashed)) ||
	    jset(t, "failed", json_integer((json_int_t)s->failed)) ||
	    jset(t, "lost", json_integer((json_int_t)s->lost)))
		goto fail;
	for (i = 0; i < s->n_info; i++)
		if (jappend(arr, info_json(&r->info[i])))
			goto fail;
	if (jset(o, "app", json_string(app)) || jset(o, "max", json_integer(s->max)))
		goto fail;
	if (jset(o, "processes", n)) {
		n = NULL;
		goto fail;
	}
	n = NULL;
	if (jset(o, "transitions", t)) {
		t = NULL;
		goto fail;
	}
	t = NULL;
	if (jset(o, "list", arr)) {
		arr = NULL;
		goto fail;
	}
	if (jset(o, "truncated", json_boolean(s->truncated)))
		goto fail;
	return o;
fail:
	json_decref(n);
	json_decref(t);
	json_decref(arr);
	json_decref(o);
	return NULL;
}

static void reply_print(json_t *o)
{
	json_t *p, *v;
	const char *k;
	size_t i;

	printf("app %s: max %lld\n  processes:", json_string_value(json_object_get(o, "app")),
	       json_integer_value(json_object_get(o, "max")));
	json_object_foreach(json_object_get(o, "processes"), k, v)
		printf(" %s %lld", k, json_integer_value(v));
	printf("\n  transitions:");
	json_object_foreach(json_object_get(o, "transitions"), k, v)
		printf(" %s %lld", k, json_integer_value(v));
	printf("\n");
	json_array_foreach(json_object_get(o, "list"), i, p) {
		printf("  process %lld: %s", json_integer_value(json_object_get(p, "id")),
		       json_string_value(json_object_get(p, "state")));
		if (json_is_string(json_object_get(p, "lost")))
			printf(" (%s: its state is lost)",
			       json_string_value(json_object_get(p, "lost")));
		if (json_integer_value(json_object_get(p, "pid")))
			printf("  pid %lld", json_integer_value(json_object_get(p, "pid")));
		if (json_is_integer(json_object_get(p, "inst")))
			printf("  inst %lld", json_integer_value(json_object_get(p, "inst")));
		printf("  activations %lld  swaps %lld  idle %lld ms\n",
		       json_integer_value(json_object_get(p, "activations")),
		       json_integer_value(json_object_get(p, "swaps")),
		       json_integer_value(json_object_get(p, "idle_ms")));
	}
	if (json_is_true(json_object_get(o, "truncated")))
		printf("  (more processes than one answer holds)\n");
}

static const char *proc_errstr(int err)
{
	switch (err) {
	case -ENODEV:
		return "no such app in spryd (spry app add; spryd reads apps within 0.5 s)";
	case -ENOENT:
		return "no such process";
	case -EEXIST:
		return "a process with this id exists";
	case -ENOSPC:
		return "the app has its max processes";
	case -EPERM:
		return "only root and the app's user may manage its processes";
	case -EBUSY:
		return "every instance slot is taken; retry once one is swapped";
	case -EINVAL:
		return "refused as invalid";
	case -ENOEXEC:
		return "the app's executable cannot be started (see spryd's log)";
	case -ENOTRECOVERABLE:
		return "its state is lost: its swap file is missing, damaged or another "
		       "app's (put it back, or delete the process)";
	default:
		return strerror(-err);
	}
}

static int proc_cmd(uint32_t op, int argc, char **argv)
{
	static const char *const kws[] = { "id", "sock", NULL };
	const char *vals[2] = {};
	char app[SPRY_NAME_LEN];
	struct proc_reply r = {};
	uint32_t want = op == SPRY_PROC_SWAP ? SPRY_PS_SWAPPED : SPRY_PS_ACTIVE;
	uint64_t id = 0;
	int fd = -1, err, ret = -1, tries;

	if (argc < 1) {
		p_err("missing APP");
		return -1;
	}
	if (parse_name(argv[0], "app", app) ||
	    parse_keywords(argc - 1, argv + 1, kws, vals))
		return -1;
	if (vals[0] && spry_num__parse(vals[0], NULL, 1, SPRY_PROC_ID_MAX, &id)) {
		p_err("id: '%s' is not a process id (1-%llu)", vals[0],
		      (unsigned long long)SPRY_PROC_ID_MAX);
		return -1;
	}
	if (!id && op != SPRY_PROC_CREATE && op != SPRY_PROC_SHOW) {
		p_err("missing 'id ID'");
		return -1;
	}
	r.buf = malloc(SPRY_CTL_MAX_MSG);
	if (!r.buf) {
		p_err("out of memory");
		return -1;
	}
	fd = spry_ctl_connect(vals[1]);
	if (fd < 0) {
		p_err("cannot reach spryd at %s: %s", vals[1] ? vals[1] : SPRY_CTL_SOCK_DEFAULT,
		      strerror(-fd));
		goto out;
	}
	err = proc_call(fd, app, op, id, &r);
	/* swap and wake wait for the state they ask for (10 s at most) */
	for (tries = 0; !err && (op == SPRY_PROC_SWAP || op == SPRY_PROC_WAKE) &&
	     r.sum.n_info == 1 && r.info[0].state != want && tries < 1000; tries++) {
		struct timespec ts = { 0, 10 * 1000000 };

		if (op == SPRY_PROC_WAKE && tries && r.info[0].state != SPRY_PS_STARTING)
			break;	/* it failed to start: allocated again */
		nanosleep(&ts, NULL);
		err = proc_call(fd, app, SPRY_PROC_SHOW, id, &r);
	}
	if (err == -ENOTRECOVERABLE && id &&
	    !proc_call(fd, app, SPRY_PROC_SHOW, id, &r) && r.sum.n_info == 1 &&
	    r.info[0].state == SPRY_PS_LOST && r.info[0].lost && r.info[0].lost < SPRY_PL_MAX) {
		p_err("app %s, process %" PRIu64 ": lost: %s: its state is lost (put the file "
		      "back, or spry process del %s id %" PRIu64 ")", app, id,
		      pl_names[r.info[0].lost], app, id);
		goto out;
	}
	if (err) {
		if (id)
			p_err("app %s, process %" PRIu64 ": %s", app, id, proc_errstr(err));
		else
			p_err("app %s: %s", app, proc_errstr(err));
		goto out;
	}
	if ((op == SPRY_PROC_SWAP || op == SPRY_PROC_WAKE) && r.info[0].state != want) {
		p_err("app %s, process %" PRIu64 ": not %s (%s): see spryd's log", app, id,
		      ps_names[want], r.info[0].state < SPRY_PS_MAX ?
		      ps_names[r.info[0].state] : "?");
		goto out;
	}
	if (op == SPRY_PROC_SHOW) {
		show_emit_one(reply_json(app, &r), reply_print);
	} else if (json_output) {
		json_result(r.sum.n_info ? info_json(&r.info[0]) : json_null());
	} else if (r.sum.n_info) {
		printf("app %s: process %" PRIu64 " %s\n", app, r.info[0].id,
		       r.info[0].state < SPRY_PS_MAX ? ps_names[r.info[0].state] : "?");
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(r.buf);
	return ret;
}

static int do_create(int argc, char **argv) { return proc_cmd(SPRY_PROC_CREATE, argc, argv); }
static int do_pdel(int argc, char **argv) { return proc_cmd(SPRY_PROC_DEL, argc, argv); }
static int do_pshow(int argc, char **argv) { return proc_cmd(SPRY_PROC_SHOW, argc, argv); }
static int do_swap(int argc, char **argv) { return proc_cmd(SPRY_PROC_SWAP, argc, argv); }
static int do_wake(int argc, char **argv) { return proc_cmd(SPRY_PROC_WAKE, argc, argv); }

static int do_process_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, process_help);
}

int do_process(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_pshow },
		{ "create",	do_create },
		{ "del",	do_pdel },
		{ "swap",	do_swap },
		{ "wake",	do_wake },
		{ "help",	do_process_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "process command");
}
