// SPDX-License-Identifier: GPL-2.0-only
/*
 * App declarations' files (lib/app.h): <state-dir>/apps/<app>.json, with
 * jansson.
 *
 *   {"app": "shop", "fns": ["cart", "checkout"], "argv": ["/usr/lib/shop"],
 *    "uid": 1000, "max": 1024, "state-size": 1048576, "swap-dir": "/var/spry",
 *    "idle-ms": 60000, "create": "auto", "start": "template",
 *    "next": [{"from": "cart", "to": "checkout"}]}
 *
 * "uid", "swap-dir", "next" and "start" (absent: template) are optional;
 * anything else is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/app.h"
#include "lib/core.h"
#include "lib/jsonfile.h"
#include "lib/proc_table.h"

int spry_app_dir(const char *state_dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", state_dir, SPRY_APP_DIR);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static json_t *app_json(const struct spry_app_decl *a)
{
	json_t *o = json_object(), *argv = json_array(), *fns = json_array();
	__u32 i;

	if (!o || !argv || !fns)
		goto fail;
	for (i = 0; i < a->argc; i++)
		if (json_array_append_new(argv, json_string(spry_app_decl__arg(a, i))))
			goto fail;
	for (i = 0; i < a->n_fns; i++)
		if (json_array_append_new(fns, json_string(a->fns[i])))
			goto fail;
	if (json_object_set_new(o, "argv", argv)) {
		argv = NULL;
		goto fail;
	}
	argv = NULL;
	if (json_object_set_new(o, "fns", fns)) {
		fns = NULL;
		goto fail;
	}
	fns = NULL;
	if (json_object_set_new(o, "app", json_string(a->name)) ||
	    json_object_set_new(o, "max", json_integer(a->max_procs)) ||
	    json_object_set_new(o, "state-size", json_integer((json_int_t)a->state_size)) ||
	    json_object_set_new(o, "idle-ms", json_integer(a->idle_ms)) ||
	    json_object_set_new(o, "create", json_string(a->autocreate ? "auto" : "manual")) ||
	    json_object_set_new(o, "start", json_string(a->start_exec ? "exec" : "template")))
		goto fail;
	if (a->has_uid && json_object_set_new(o, "uid", json_integer(a->uid)))
		goto fail;
	if (a->swap_dir[0] && json_object_set_new(o, "swap-dir", json_string(a->swap_dir)))
		goto fail;
	if (a->n_next) {
		json_t *next = json_array();

		if (!next || json_object_set_new(o, "next", next))
			goto fail;
		for (i = 0; i < a->n_next; i++)
			if (json_array_append_new(next, json_pack("{s:s,s:s}", "from",
								  a->next[i][0], "to",
								  a->next[i][1])))
				goto fail;
	}
	return o;
fail:
	json_decref(argv);
	json_decref(fns);
	json_decref(o);
	return NULL;
}

int spry_app__write(const char *dir, const struct spry_app_decl *a)
{
	json_t *root = app_json(a);

	if (!root)
		return -ENOMEM;
	return spry_jsonfile__write(dir, a->name, root);
}

int spry_app__remove(const char *dir, const char *name)
{
	char tdir[PATH_MAX];
	int err;

	/* its process table first: an app added again later starts afresh */
	err = spry_proc_table_dir(dir, tdir, sizeof(tdir));
	err = err ?: spry_proc_table__remove(tdir, name);
	return err ?: spry_jsonfile__remove(dir, name);
}

static int num_field(json_t *o, const char *key, __u64 min, __u64 max, __u64 *out,
		     char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	json_int_t x;

	if (!v)
		return 0;
	x = json_is_integer(v) ? json_integer_value(v) : -1;
	if (x < 0 || (__u64)x < min || (__u64)x > max) {
		spry_err__set(err, errlen, "'%s' is not a number in %llu..%llu", key,
			      (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = (__u64)x;
	return 0;
}

static int from_json(json_t *o, struct spry_app_decl *a, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"app", "fns", "argv", "uid", "max", "state-size", "swap-dir", "idle-ms",
		"create", "next", "start", NULL,
	};
	const char *key, *s;
	json_t *v;
	__u64 x;
	size_t i;
	int k, e;

	if (!json_is_object(o)) {
		spry_err__set(err, errlen, "not a JSON object");
		return -EINVAL;
	}
	json_object_foreach(o, key, v) {
		for (k = 0; keys[k]; k++)
			if (!strcmp(keys[k], key))
				break;
		if (!keys[k]) {
			spry_err__set(err, errlen, "unknown key '%.32s'", key);
			return -EINVAL;
		}
	}
	s = json_string_value(json_object_get(o, "app"));
	if (!s || strlen(s) >= SPRY_NAME_LEN) {
		spry_err__set(err, errlen, "missing or bad 'app'");
		return -EINVAL;
	}
	snprintf(a->name, sizeof(a->name), "%s", s);
	v = json_object_get(o, "fns");
	if (!json_is_array(v)) {
		spry_err__set(err, errlen, "missing 'fns'");
		return -EINVAL;
	}
	json_array_foreach(json_object_get(o, "fns"), i, v) {
		s = json_string_value(v);
		if (!s || spry_app_decl__add_fn(a, s)) {
			spry_err__set(err, errlen, "bad function in 'fns'");
			return -EINVAL;
		}
	}
	v = json_object_get(o, "argv");
	if (!json_is_array(v)) {
		spry_err__set(err, errlen, "missing 'argv'");
		return -EINVAL;
	}
	json_array_foreach(json_object_get(o, "argv"), i, v) {
		s = json_string_value(v);
		if (!s || spry_app_decl__add_arg(a, s)) {
			spry_err__set(err, errlen, "bad 'argv'");
			return -EINVAL;
		}
	}
	if (json_object_get(o, "uid")) {
		x = 0;
		e = num_field(o, "uid", 0, UINT32_MAX - 1, &x, err, errlen);
		if (e)
			return e;
		a->has_uid = true;
		a->uid = (__u32)x;
	}
	x = a->max_procs;
	e = num_field(o, "max", 1, SPRY_MAX_PROCS, &x, err, errlen);
	a->max_procs = (__u32)x;
	e = e ?: num_field(o, "state-size", 0, SPRY_APP_MAX_STATE, &a->state_size, err, errlen);
	x = a->idle_ms;
	e = e ?: num_field(o, "idle-ms", 0, SPRY_DECL_MAX_IDLE_MS, &x, err, errlen);
	if (e)
		return e;
	a->idle_ms = (__u32)x;
	v = json_object_get(o, "swap-dir");
	if (v) {
		s = json_string_value(v);
		if (!s || strlen(s) >= sizeof(a->swap_dir)) {
			spry_err__set(err, errlen, "bad 'swap-dir'");
			return -EINVAL;
		}
		snprintf(a->swap_dir, sizeof(a->swap_dir), "%s", s);
	}
	v = json_object_get(o, "create");
	if (v) {
		s = json_string_value(v);
		if (!s || (strcmp(s, "auto") && strcmp(s, "manual"))) {
			spry_err__set(err, errlen, "'create' is neither 'auto' nor 'manual'");
			return -EINVAL;
		}
		a->autocreate = !strcmp(s, "auto");
	}
	v = json_object_get(o, "start");
	if (v) {
		s = json_string_value(v);
		if (!s || (strcmp(s, "template") && strcmp(s, "exec"))) {
			spry_err__set(err, errlen, "'start' is neither 'template' nor 'exec'");
			return -EINVAL;
		}
		a->start_exec = !strcmp(s, "exec");
	}
	v = json_object_get(o, "next");
	if (v) {
		json_t *e;
		const char *from, *to;

		if (!json_is_array(v)) {
			spry_err__set(err, errlen, "'next' is not a list");
			return -EINVAL;
		}
		json_array_foreach(v, i, e) {
			from = json_string_value(json_object_get(e, "from"));
			to = json_string_value(json_object_get(e, "to"));
			if (!json_is_object(e) || json_object_size(e) != 2 || !from || !to ||
			    spry_app_decl__add_next(a, from, to)) {
				spry_err__set(err, errlen, "bad entry %zu in 'next'", i);
				return -EINVAL;
			}
		}
	}
	return spry_app_decl__check(a, err, errlen);
}

int spry_app__read(const char *dir, const char *name, struct spry_app_decl *out,
		   char *err, size_t errlen)
{
	char path[PATH_MAX];
	json_error_t je;
	json_t *root;
	int e;

	spry_app_decl__init(out);
	e = spry_jsonfile__path(dir, name, "", path, sizeof(path));
	if (e) {
		spry_err__set(err, errlen, "bad app name or path");
		return e;
	}
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (access(path, F_OK) && errno == ENOENT)
			return -ENOENT;
		spry_err__set(err, errlen, "%s: %s", path, je.text);
		return -EINVAL;
	}
	e = from_json(root, out, err, errlen);
	json_decref(root);
	if (!e && strcmp(out->name, name)) {
		spry_err__set(err, errlen, "%s names app '%s'", path, out->name);
		e = -EINVAL;
	}
	return e;
}

bool spry_app__same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	size_t la = strlen(a), lb = strlen(b);

	/* the same path but for trailing slashes */
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	if (la == lb && !memcmp(a, b, la))
		return true;
	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

int spry_app__swap_dir_user(const char *dir, const char *self, const char *swap_dir,
			    char *owner)
{
	struct spry_app_decl *o;
	char name[SPRY_NAME_LEN + 8], err[8];
	struct dirent *e;
	size_t n;
	int ret = 0;
	DIR *dp;

	if (!swap_dir[0])
		return 0;
	dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	o = malloc(sizeof(*o));
	if (!o) {
		closedir(dp);
		return -ENOMEM;
	}
	while (!ret && (e = readdir(dp))) {
		n = strlen(e->d_name);
		if (n <= 5 || n - 5 >= SPRY_NAME_LEN || n >= sizeof(name) ||
		    strcmp(e->d_name + n - 5, ".json"))
			continue;
		memcpy(name, e->d_name, n - 5);
		name[n - 5] = '\0';
		if (!strcmp(name, self) || spry_app__read(dir, name, o, err, sizeof(err)))
			continue;	/* itself, or not an app's file */
		if (o->swap_dir[0] && spry_app__same_dir(o->swap_dir, swap_dir)) {
			memcpy(owner, name, n - 5 + 1);	/* < SPRY_NAME_LEN */
			ret = 1;
		}
	}
	closedir(dp);
	free(o);
	return ret;
}
