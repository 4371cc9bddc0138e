// SPDX-License-Identifier: GPL-2.0-only
/*
 * Declared functions' files (lib/decl.h): <state-dir>/<chain>.json, read
 * and written with jansson.  Format:
 *
 *   {"chain": "demo", "queue": 1024,
 *    "fns": [{"fn": "upper", "argv": ["/usr/lib/spry/upper"], "uid": 65534,
 *             "min": 0, "max": 4, "target": 8, "idle-ms": 30000, "start": "template",
 *             "cpus": "1"}]}
 *
 * "uid" and "cpus" are optional.  Anything else is refused: the file is
 * root's, but a damaged one must not start a wrong process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fn-runtime/cpus.h"
#include "lib/core.h"
#include "lib/decl.h"
#include "lib/jsonfile.h"

static json_t *fn_json(const struct spry_fn_decl *f)
{
	json_t *o = json_object(), *argv = json_array();
	char cpus[1024];
	__u32 i;

	if (!o || !argv)
		goto fail;
	for (i = 0; i < f->argc; i++)
		if (json_array_append_new(argv, json_string(spry_fn_decl__arg(f, i))))
			goto fail;
	if (json_object_set_new(o, "fn", json_string(f->fn)) ||
	    json_object_set_new(o, "argv", argv))
		goto fail_o;
	argv = NULL;
	if (f->has_uid && json_object_set_new(o, "uid", json_integer(f->uid)))
		goto fail_o;
	if (json_object_set_new(o, "min", json_integer(f->min)) ||
	    json_object_set_new(o, "max", json_integer(f->max)) ||
	    json_object_set_new(o, "target", json_integer(f->target)) ||
	    json_object_set_new(o, "idle-ms", json_integer(f->idle_ms)) ||
	    json_object_set_new(o, "start", json_string(f->start_exec ? "exec" : "template")))
		goto fail_o;
	if (!spry_cpus__empty(f->cpus)) {
		if (spry_cpus__format(f->cpus, cpus, sizeof(cpus)) ||
		    json_object_set_new(o, "cpus", json_string(cpus)))
			goto fail_o;
	}
	return o;
fail:
	json_decref(argv);
fail_o:
	json_decref(o);
	return NULL;
}

int spry_decls__write(const char *dir, const char *chain, const struct spry_chain_decls *d)
{
	json_t *root, *fns;
	__u32 i;

	if (!d->n)
		return spry_decls__remove(dir, chain);
	root = json_object();
	fns = json_array();
	if (!root || !fns || json_object_set_new(root, "chain", json_string(chain)) ||
	    json_object_set_new(root, "queue", json_integer(d->queue)) ||
	    json_object_set_new(root, "fns", fns)) {
		json_decref(root);
		return -ENOMEM;
	}
	for (i = 0; i < d->n; i++) {
		if (json_array_append_new(fns, fn_json(&d->fns[i]))) {
			json_decref(root);
			return -ENOMEM;
		}
	}
	return spry_jsonfile__write(dir, chain, root);
}

int spry_decls__remove(const char *dir, const char *chain)
{
	return spry_jsonfile__remove(dir, chain);
}

static int u32_field(json_t *o, const char *key, __u32 min, __u32 max, __u32 *out,
		     bool need, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	json_int_t x;

	if (!v) {
		if (!need)
			return 0;
		spry_err__set(err, errlen, "missing '%s'", key);
		return -EINVAL;
	}
	x = json_is_integer(v) ? json_integer_value(v) : -1;
	if (x < (json_int_t)min || x > (json_int_t)max) {
		spry_err__set(err, errlen, "'%s' is not a number in %u..%u", key, min, max);
		return -EINVAL;
	}
	*out = (__u32)x;
	return 0;
}

static int fn_from_json(json_t *o, struct spry_fn_decl *f, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"fn", "argv", "uid", "min", "max", "target", "idle-ms", "cpus", "start", NULL,
	};
	const char *key, *s;
	json_t *v, *argv;
	size_t i;
	int e, k;

	spry_fn_decl__init(f);
	if (!json_is_object(o)) {
		spry_err__set(err, errlen, "a function is not an object");
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
	s = json_string_value(json_object_get(o, "fn"));
	if (!s || strlen(s) >= SPRY_NAME_LEN || spry_name_check(s)) {
		spry_err__set(err, errlen, "missing or invalid 'fn'");
		return -EINVAL;
	}
	memcpy(f->fn, s, strlen(s) + 1);
	argv = json_object_get(o, "argv");
	if (!json_is_array(argv) || !json_array_size(argv)) {
		spry_err__set(err, errlen, "fn %s: missing 'argv'", f->fn);
		return -EINVAL;
	}
	json_array_foreach(argv, i, v) {
		s = json_string_value(v);
		if (!s || spry_fn_decl__add_arg(f, s)) {
			spry_err__set(err, errlen, "fn %s: bad argv[%zu]", f->fn, i);
			return -EINVAL;
		}
	}
	if (json_object_get(o, "uid")) {
		e = u32_field(o, "uid", 0, UINT32_MAX - 1, &f->uid, true, err, errlen);
		if (e)
			return e;
		f->has_uid = true;
	}
	e = u32_field(o, "min", 0, SPRY_MAX_INST, &f->min, true, err, errlen);
	e = e ?: u32_field(o, "max", 1, SPRY_MAX_INST, &f->max, true, err, errlen);
	e = e ?: u32_field(o, "target", 1, SPRY_DECL_MAX_TARGET, &f->target, true, err, errlen);
	e = e ?: u32_field(o, "idle-ms", 1, SPRY_DECL_MAX_IDLE_MS, &f->idle_ms, true, err,
			   errlen);
	if (e)
		return e;
	v = json_object_get(o, "start");
	if (v) {
		s = json_string_value(v);
		if (!s || (strcmp(s, "template") && strcmp(s, "exec"))) {
			spry_err__set(err, errlen, "fn %s: 'start' is neither \"template\" nor \"exec\"",
				      f->fn);
			return -EINVAL;
		}
		f->start_exec = !strcmp(s, "exec");
	}
	v = json_object_get(o, "cpus");
	if (v && (!json_is_string(v) ||
		  spry_cpus__parse(json_string_value(v), f->cpus, err, errlen))) {
		if (!json_is_string(v))
			spry_err__set(err, errlen, "'cpus' is not a string");
		return -EINVAL;
	}
	return spry_fn_decl__check(f, err, errlen);
}

int spry_decls__read(const char *dir, const char *chain, struct spry_chain_decls *out,
		     char *err, size_t errlen)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *root, *fns, *v;
	const char *name;
	size_t i;
	int e;

	memset(out, 0, sizeof(*out));
	e = spry_jsonfile__path(dir, chain, "", path, sizeof(path));
	if (e)
		return e;
	if (access(path, F_OK))
		return -errno;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		spry_err__set(err, errlen, "%s: %s", path, jerr.text);
		return -EINVAL;
	}
	e = -EINVAL;
	name = json_string_value(json_object_get(root, "chain"));
	if (!name || strcmp(name, chain)) {
		spry_err__set(err, errlen, "%s: names another chain", path);
		goto out;
	}
	e = u32_field(root, "queue", 0, SPRY_DECL_MAX_QUEUE, &out->queue, false, err, errlen);
	if (e)
		goto out;
	e = -EINVAL;
	fns = json_object_get(root, "fns");
	if (!json_is_array(fns) || json_array_size(fns) > SPRY_DECL_MAX_FNS) {
		spry_err__set(err, errlen, "%s: 'fns' is not a list of at most %d", path,
			      SPRY_DECL_MAX_FNS);
		goto out;
	}
	json_array_foreach(fns, i, v) {
		e = fn_from_json(v, &out->fns[i], err, errlen);
		if (e)
			goto out;
		if (spry_decls__find(out, out->fns[i].fn) >= 0) {
			spry_err__set(err, errlen, "fn %s declared twice", out->fns[i].fn);
			e = -EINVAL;
			goto out;
		}
		out->n = (__u32)i + 1;
	}
	e = 0;
out:
	json_decref(root);
	if (e)
		memset(out, 0, sizeof(*out));
	return e;
}
