// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry: load the router, manage chains, show state.
 *
 *   spry [OPTIONS] OBJECT COMMAND [ARGS]
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fn-runtime/parse.h"
#include "loader/main.h"

bool json_output;
bool pretty_output;
const char *pin_dir;

static bool debug_output;
static json_t *result;
static char *first_error;

const char *const chain_flag_names[] = { "active", "no-http" };
const char *const fn_flag_names[] = { "active", "idempotent" };
const char *const inst_flag_names[] = { "live", "quarantined", "unhealthy" };

void json_result(json_t *val)
{
	json_decref(result);
	result = val;
}

void p_err(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "Error: %s\n", buf);
	if (json_output && !first_error)
		first_error = strdup(buf);
}

void p_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int p_errno(int err, const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p_err("%s: %s", buf, strerror(err < 0 ? -err : err));
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: spry [OPTIONS] OBJECT COMMAND [ARGS]\n"
		"       spry OBJECT help\n"
		"\n"
		"OBJECT := { load | unload | chain | fn | auth | ingress | mesh | app | process |\n"
		"           stats | apply | down | version | help }\n"
		"  load                   load the router, pin it and its maps, attach it\n"
		"  unload                 detach and unpin everything load pinned\n"
		"  chain { add | del | show | invoke | help }\n"
		"  fn { show | declare | undeclare | help }\n"
		"                         functions; declared ones spryd starts and scales\n"
		"  auth { show | allow | deny | help }\n"
		"  ingress { show | attach | detach | allow | deny | del | help }\n"
		"                         the gateway's XDP filter on network devices\n"
		"  mesh { show | attach | detach | allow | deny | del | set | help }\n"
		"                         sockmap acceleration of local TCP (any program)\n"
		"  app { add | del | show | help }\n"
		"                         apps: functions run together in cloud processes\n"
		"  process { create | del | show | swap | wake | help }\n"
		"                         an app's processes (in spryd)\n"
		"  stats                  router verdicts and per-function counters\n"
		"  apply FILE [--prune]   add/replace the chains of a YAML file\n"
		"  down                   stop the main job (make demo) and all it made\n"
		"  version\n"
		"\n"
		"OPTIONS:\n"
		"  -j, --json             JSON output (one value on stdout)\n"
		"  -p, --pretty           pretty JSON output (implies -j)\n"
		"  -d, --debug            libbpf debug messages\n"
		"  -P, --pin-dir DIR      pin directory (default $SPRY_PIN_DIR, else %s)\n"
		"  -V, --version          same as 'spry version'\n"
		"  -h, --help             this help\n"
		"\n"
		"Objects and commands may be abbreviated to any unambiguous prefix.\n",
		SPRY_PIN_DIR_DEFAULT);
}

static int do_help(int argc, char **argv)
{
	(void)argv;
	if (argc) {
		p_err("'help' takes no arguments");
		return -1;
	}
	usage(json_output ? stderr : stdout);
	if (json_output)
		json_result(json_null());
	return 0;
}

int do_version(int argc, char **argv)
{
	json_t *o;

	if (argc == 1 && !strcmp(argv[0], "help")) {
		fprintf(json_output ? stderr : stdout,
			"Usage: spry version\n\nThe version of spry, its ABI and libbpf.\n");
		if (json_output)
			json_result(json_null());
		return 0;
	}
	if (argc) {
		p_err("'version' takes no arguments");
		return -1;
	}
	if (!json_output) {
		printf("spry %s (ABI %d, libbpf %u.%u)\n", SPRY_VERSION,
		       SPRY_ABI_VERSION, libbpf_major_version(),
		       libbpf_minor_version());
		return 0;
	}
	o = json_object();
	if (!o || jset(o, "version", json_string(SPRY_VERSION)) ||
	    jset(o, "abi", json_integer(SPRY_ABI_VERSION)) ||
	    jset(o, "libbpf", json_sprintf("%u.%u", libbpf_major_version(),
					   libbpf_minor_version()))) {
		json_decref(o);
		return -1;
	}
	json_result(o);
	return 0;
}

int match_word(const char *const *names, const char *arg, const char *what)
{
	char list[256] = "";
	int i, found = -1, n = 0;
	size_t len = strlen(arg);

	for (i = 0; names[i]; i++)
		if (!strcmp(names[i], arg))
			return i;
	if (len) {
		for (i = 0; names[i]; i++) {
			if (strncmp(names[i], arg, len))
				continue;
			if (n++)
				strncat(list, ", ", sizeof(list) - strlen(list) - 1);
			strncat(list, names[i], sizeof(list) - strlen(list) - 1);
			found = i;
		}
	}
	if (n == 1)
		return found;
	if (n > 1)
		p_err("ambiguous %s '%s': could be %s", what, arg, list);
	else
		p_err("unknown %s '%s'", what, arg);
	return -1;
}

#define KW_MAX		32	/* keywords of one command */
#define KW_WORD_LEN	32	/* bytes of one word of a keyword */

/* Word @w (0 or 1) of keyword @name ("invoke users") into @out; "" if none. */
static void kw_word(const char *name, int w, char out[KW_WORD_LEN])
{
	const char *sp = strchr(name, ' ');

	if (w)
		snprintf(out, KW_WORD_LEN, "%s", sp ? sp + 1 : "");
	else
		snprintf(out, KW_WORD_LEN, "%.*s", sp ? (int)(sp - name) : (int)strlen(name),
			 name);
}

/*
 * The keyword at argv[0] (and argv[1] for a two-word one): its index in
 * @names, and the words it took in *@used; -1 after p_err.  Each word
 * matches by unambiguous prefix among the words that may stand there.
 */
static int match_keyword(const char *const *names, int argc, char **argv, int *used)
{
	char words[KW_MAX][KW_WORD_LEN], head[KW_WORD_LEN], what[KW_WORD_LEN + 16];
	const char *list[KW_MAX + 1];
	int idx[KW_MAX], i, n = 0, w;

	/* The distinct first words. */
	for (i = 0; names[i] && i < KW_MAX; i++) {
		kw_word(names[i], 0, words[n]);
		for (w = 0; w < n; w++)
			if (!strcmp(words[w], words[n]))
				break;
		if (w == n) {
			list[n] = words[n];
			n++;
		}
	}
	list[n] = NULL;
	w = match_word(list, argv[0], "keyword");
	if (w < 0)
		return -1;
	snprintf(head, sizeof(head), "%s", list[w]);
	/* The keywords starting with it, by their second word. */
	for (i = 0, n = 0; names[i] && i < KW_MAX; i++) {
		kw_word(names[i], 0, words[n]);
		if (strcmp(words[n], head))
			continue;
		kw_word(names[i], 1, words[n]);
		idx[n] = i;
		list[n] = words[n];
		n++;
	}
	list[n] = NULL;
	if (n == 1 && !words[0][0]) {
		*used = 1;
		return idx[0];
	}
	if (argc < 2) {
		p_err("missing word after '%s'", head);
		return -1;
	}
	snprintf(what, sizeof(what), "%s keyword", head);
	w = match_word(list, argv[1], what);
	if (w < 0)
		return -1;
	*used = 2;
	return idx[w];
}

int parse_keywords(int argc, char **argv, const char *const *names, const char **vals)
{
	int kw, used;

	while (argc) {
		kw = match_keyword(names, argc, argv, &used);
		if (kw < 0)
			return -1;
		if (vals[kw]) {
			p_err("'%s' given twice", names[kw]);
			return -1;
		}
		if (argc <= used) {
			p_err("missing value after '%s'", names[kw]);
			return -1;
		}
		vals[kw] = argv[used];
		argc -= used + 1;
		argv += used + 1;
	}
	return 0;
}

int cmd_select(const struct cmd *cmds, int argc, char **argv, const char *what)
{
	const char *names[32];
	int i, n;

	for (n = 0; cmds[n].name && n < 31; n++)
		names[n] = cmds[n].name;
	names[n] = NULL;
	if (argc < 1)
		return cmds[0].func(0, argv);
	i = match_word(names, argv[0], what);
	if (i < 0)
		return -1;
	return cmds[i].func(argc - 1, argv + 1);
}

int parse_u32(const char *s, __u32 min, __u32 max, const char *what, __u32 *out)
{
	int err;

	err = spry_num__parse_u32(s, min, max, out);
	if (err == -ERANGE) {
		p_err("%s: %s out of range %u..%u", what, s, min, max);
		return -1;
	}
	if (err) {
		p_err("%s: '%s' is %s", what, s,
		      *s == '-' ? "negative" : "not a decimal number");
		return -1;
	}
	return 0;
}

int parse_user(const char *s, __u32 *uid)
{
	char err[256];

	if (spry_id__parse(SPRY_ID_USER, s, uid, err, sizeof(err))) {
		p_err("%s", err);
		return -1;
	}
	return 0;
}

int parse_name(const char *s, const char *what, char out[SPRY_NAME_LEN])
{
	if (strlen(s) >= SPRY_NAME_LEN) {
		p_err("%s name '%s' is too long (at most %d characters)", what, s,
		      SPRY_NAME_LEN - 1);
		return -1;
	}
	if (spry_name_check(s)) {
		p_err("invalid %s name '%s' (allowed: A-Z a-z 0-9 _ . -)", what, s);
		return -1;
	}
	memset(out, 0, SPRY_NAME_LEN);
	memcpy(out, s, strlen(s));
	return 0;
}

const char *user_name(__u32 uid, char *buf, size_t len)
{
	return spry_id__name(SPRY_ID_USER, uid, buf, len);
}

int maps_open(struct spry_maps *m)
{
	int err;

	err = spry_maps__open(m, pin_dir);
	if (err == -ENOENT) {
		p_err("spry is not loaded in %s (run 'spry load')", pin_dir);
		return -1;
	}
	if (err == -EPROTO) {
		p_err("maps pinned in %s do not match this spry's ABI", pin_dir);
		return -1;
	}
	if (err)
		return p_errno(err, "cannot open the maps pinned in %s", pin_dir);
	return 0;
}

int pin_lock(void)
{
	int fd;

	fd = spry_pin_lock(pin_dir, LOCK_EX);
	if (fd < 0)
		return p_errno(fd, "cannot lock %s", pin_dir);
	return fd;
}

static int auth_cmp(const void *a, const void *b)
{
	const struct spry_auth_key *x = a, *y = b;

	if (x->chain != y->chain)
		return x->chain < y->chain ? -1 : 1;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return 0;
}

struct snapshot *snapshot__read(const struct spry_maps *m)
{
	struct spry_auth_key key, next, *keys;
	struct snapshot *s;
	bool first = true;
	size_t cap = 0;
	__u32 k;

	s = calloc(1, sizeof(*s));
	if (!s) {
		p_err("out of memory");
		return NULL;
	}
	for (k = 1; k < SPRY_MAX_CHAINS; k++) {
		if (bpf_map_lookup_elem(m->chains, &k, &s->chains[k]))
			goto err_map;
		s->chains[k].name[SPRY_NAME_LEN - 1] = '\0';
	}
	for (k = 0; k < SPRY_MAX_FNS; k++) {
		if (bpf_map_lookup_elem(m->fns, &k, &s->fns[k]))
			goto err_map;
		s->fns[k].name[SPRY_NAME_LEN - 1] = '\0';
	}
	while (!bpf_map_get_next_key(m->auth, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (s->n_auth == cap) {
			cap = cap ? cap * 2 : 64;
			keys = realloc(s->auth, cap * sizeof(*keys));
			if (!keys) {
				p_err("out of memory");
				goto err;
			}
			s->auth = keys;
		}
		s->auth[s->n_auth++] = key;
	}
	if (errno != ENOENT)
		goto err_map;
	if (s->n_auth)
		qsort(s->auth, s->n_auth, sizeof(*s->auth), auth_cmp);
	return s;

err_map:
	p_errno(-errno, "cannot read the pinned maps");
err:
	snapshot__free(s);
	return NULL;
}

void snapshot__free(struct snapshot *s)
{
	if (!s)
		return;
	free(s->auth);
	free(s);
}

int snapshot__chain(const struct snapshot *s, const char *name)
{
	int i;

	for (i = 1; i < SPRY_MAX_CHAINS; i++)
		if (s->chains[i].name[0] && !strcmp(s->chains[i].name, name))
			return i;
	p_err("no chain '%s'", name);
	return -1;
}

const char *snapshot__fn_name(const struct snapshot *s, __u16 fn)
{
	if (fn == SPRY_FN_ORIGIN)
		return "origin";
	if (fn >= SPRY_MAX_FNS || !s->fns[fn].name[0])
		return "?";
	return s->fns[fn].name;
}

int jset(json_t *obj, const char *key, json_t *val)
{
	if (!val || json_object_set_new(obj, key, val)) {
		p_err("out of memory");
		return -1;
	}
	return 0;
}

int jappend(json_t *arr, json_t *val)
{
	if (!val || json_array_append_new(arr, val)) {
		p_err("out of memory");
		return -1;
	}
	return 0;
}

int help_cmd(int argc, void (*print)(FILE *f))
{
	if (argc) {
		p_err("'help' takes no arguments");
		return -1;
	}
	print(json_output ? stderr : stdout);
	if (json_output)
		json_result(json_null());
	return 0;
}

int show_begin(int argc, char **argv, struct spry_maps *m, struct snapshot **s,
	       int *chain)
{
	static const char *const kws[] = { "chain", NULL };
	char name[SPRY_NAME_LEN];
	const char *val = NULL;

	*s = NULL;
	*chain = -1;
	if (argc) {
		if (match_word(kws, argv[0], "keyword") < 0)
			return -1;
		GET_VALUE(val);
		if (argc) {
			p_err("unexpected argument '%s'", argv[0]);
			return -1;
		}
		if (parse_name(val, "chain", name))
			return -1;
	}
	if (maps_open(m))
		return -1;
	*s = snapshot__read(m);
	if (!*s)
		goto err;
	if (val) {
		*chain = snapshot__chain(*s, name);
		if (*chain < 0)
			goto err;
	}
	return 0;
err:
	snapshot__free(*s);
	*s = NULL;
	spry_maps__close(m);
	return -1;
}

void show_emit(json_t *arr, void (*print)(json_t *elem))
{
	json_t *e;
	size_t i;

	if (json_output) {
		json_result(arr);
		return;
	}
	json_array_foreach(arr, i, e)
		print(e);
	json_decref(arr);
}

void show_emit_one(json_t *o, void (*print)(json_t *o))
{
	if (json_output) {
		json_result(o);
		return;
	}
	print(o);
	json_decref(o);
}

json_t *jflags(__u32 flags, const char *const *names, unsigned int n)
{
	json_t *a = json_array();
	unsigned int i;

	if (!a)
		return NULL;
	for (i = 0; i < 32; i++) {
		if (!(flags & (1U << i)))
			continue;
		if (json_array_append_new(a, i < n ? json_string(names[i]) :
					  json_sprintf("0x%x", 1U << i))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !debug_output)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static const struct cmd objects[] = {
	{ "help",	do_help },
	{ "load",	do_load },
	{ "unload",	do_unload },
	{ "chain",	do_chain },
	{ "fn",		do_fn },
	{ "auth",	do_auth },
	{ "stats",	do_stats },
	{ "apply",	do_apply },
	{ "version",	do_version },
	{ "down",	do_down },
	{ "ingress",	do_ingress },
	{ "mesh",	do_mesh },
	{ "app",	do_app },
	{ "process",	do_process },
	{ NULL,		NULL },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json",	no_argument,		NULL, 'j' },
		{ "pretty",	no_argument,		NULL, 'p' },
		{ "debug",	no_argument,		NULL, 'd' },
		{ "pin-dir",	required_argument,	NULL, 'P' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 },
	};
	bool version = false, help = false;
	const char *dir = NULL;
	int opt, ret;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:jpdP:Vh", opts, NULL)) >= 0) {
		switch (opt) {
		case 'j':
			json_output = true;
			break;
		case 'p':
			json_output = true;
			pretty_output = true;
			break;
		case 'd':
			debug_output = true;
			break;
		case 'P':
			dir = optarg;
			break;
		case 'V':
			version = true;
			break;
		case 'h':
			help = true;
			break;
		case ':':
			p_err("option '%s' needs a value", argv[optind - 1]);
			ret = -1;
			goto out;
		default:
			if (optopt)
				p_err("unknown option '-%c'", optopt);
			else
				p_err("unknown option '%s'", argv[optind - 1]);
			usage(stderr);
			ret = -1;
			goto out;
		}
	}
	argc -= optind;
	argv += optind;
	libbpf_set_print(libbpf_print);
	pin_dir = spry_pin_dir(dir);
	if (strlen(pin_dir) >= PATH_MAX - SPRY_NAME_LEN - 1) {
		p_err("pin directory path is too long");
		ret = -1;
		goto out;
	}

	if (help) {
		ret = do_help(0, argv);
	} else if (version) {
		ret = do_version(0, argv);
	} else if (argc < 1) {
		p_err("missing OBJECT");
		usage(stderr);
		ret = -1;
	} else {
		ret = cmd_select(objects, argc, argv, "object");
	}
out:
	if (json_output) {
		json_t *out = result;

		/*
		 * A command that failed without an error message but with a
		 * result (chain invoke answered with an error status) keeps
		 * its result; the exit code still says it failed.
		 */
		if (first_error || (ret && !result)) {
			out = json_pack("{s:s}", "error",
					first_error ? first_error : "failed");
			json_decref(result);
			result = NULL;
		}
		if (!out)
			out = json_null();
		json_dumpf(out, stdout, (pretty_output ? JSON_INDENT(4) : JSON_COMPACT) |
			   JSON_ENCODE_ANY);
		fputc('\n', stdout);
		json_decref(out);
		result = NULL;
	}
	json_decref(result);
	free(first_error);
	if (fflush(stdout) && !ret) {
		fprintf(stderr, "Error: cannot write output: %s\n", strerror(errno));
		ret = -1;
	}
	return ret ? 1 : 0;
}
