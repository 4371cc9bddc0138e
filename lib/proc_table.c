// SPDX-License-Identifier: GPL-2.0-only
/* An app's process table on disk (lib/proc_table.h), with jansson. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fn-runtime/proto.h"
#include "lib/app.h"
#include "lib/core.h"
#include "lib/jsonfile.h"
#include "lib/proc_table.h"

#define TABLE_MAX_BYTES	(64UL << 20)	/* 65536 records are ~8 MiB */

int spry_proc_table_dir(const char *apps_dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", apps_dir, SPRY_PROC_TABLE_DIR);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int spry_proc_table__add(struct spry_proc_table *t, const struct spry_proc_rec *r)
{
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 64;
		struct spry_proc_rec *recs = realloc(t->recs, (size_t)cap * sizeof(*recs));

		if (!recs)
			return -ENOMEM;
		t->recs = recs;
		t->cap = cap;
	}
	t->recs[t->n++] = *r;
	return 0;
}

void spry_proc_table__free(struct spry_proc_table *t)
{
	free(t->recs);
	t->recs = NULL;
	t->n = t->cap = 0;
}

static const char *state_name(uint8_t s)
{
	return s == SPRY_PS_SWAPPED ? "swapped" : "allocated";
}

/* An integer member @key in min..max (absent: @def). */
static int int_member(json_t *o, const char *key, uint64_t min, uint64_t max, uint64_t def,
		      uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	json_int_t x;

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v))
		return -EINVAL;
	x = json_integer_value(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return -EINVAL;
	*out = (uint64_t)x;
	return 0;
}

static bool keys_known(json_t *o, const char *const *keys, const char **bad)
{
	const char *key;
	json_t *v;
	int k;

	json_object_foreach(o, key, v) {
		for (k = 0; keys[k]; k++)
			if (!strcmp(keys[k], key))
				break;
		if (!keys[k]) {
			*bad = key;
			return false;
		}
	}
	return true;
}

static int rec_of(json_t *o, struct spry_proc_rec *r, size_t i, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"id", "state", "pid", "pid-start", "swap", "swap-file", "activations", "swaps",
		NULL,
	};
	const char *bad = NULL, *s;
	uint64_t x;
	json_t *v;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o)) {
		spry_err__set(err, errlen, "processes[%zu]: not an object", i);
		return -EINVAL;
	}
	if (!keys_known(o, keys, &bad)) {
		spry_err__set(err, errlen, "processes[%zu]: unknown key '%.32s'", i, bad);
		return -EINVAL;
	}
	if (!json_object_get(o, "id") || int_member(o, "id", 1, SPRY_PROC_ID_MAX, 0, &r->id)) {
		spry_err__set(err, errlen, "processes[%zu]: missing or bad 'id'", i);
		return -EINVAL;
	}
	s = json_string_value(json_object_get(o, "state"));
	if (s && !strcmp(s, "allocated"))
		r->state = SPRY_PS_ALLOCATED;
	else if (s && !strcmp(s, "swapped"))
		r->state = SPRY_PS_SWAPPED;
	else {
		spry_err__set(err, errlen, "process %llu: 'state' is neither 'allocated' nor 'swapped'",
			      (unsigned long long)r->id);
		return -EINVAL;
	}
	if (int_member(o, "pid", 0, INT32_MAX, 0, &x) || x == 1) {
		spry_err__set(err, errlen, "process %llu: bad 'pid'", (unsigned long long)r->id);
		return -EINVAL;
	}
	r->pid = (int32_t)x;
	/* absent (an older table, or no start time known): 0 */
	if (int_member(o, "pid-start", 0, INT64_MAX, 0, &r->pid_start) ||
	    (r->pid_start && !r->pid)) {
		spry_err__set(err, errlen, "process %llu: bad 'pid-start'", (unsigned long long)r->id);
		return -EINVAL;
	}
	v = json_object_get(o, "swap");
	if (v && !json_is_boolean(v)) {
		spry_err__set(err, errlen, "process %llu: 'swap' is not true or false",
			      (unsigned long long)r->id);
		return -EINVAL;
	}
	r->swap = json_is_true(v);
	v = json_object_get(o, "swap-file");
	if (v && !json_is_boolean(v)) {
		spry_err__set(err, errlen, "process %llu: 'swap-file' is not true or false",
			      (unsigned long long)r->id);
		return -EINVAL;
	}
	r->swap_file = !v ? SPRY_SF_UNKNOWN : json_is_true(v) ? SPRY_SF_YES : SPRY_SF_NO;
	if (int_member(o, "activations", 0, INT64_MAX, 0, &r->activations) ||
	    int_member(o, "swaps", 0, INT64_MAX, 0, &r->swaps)) {
		spry_err__set(err, errlen, "process %llu: bad counter", (unsigned long long)r->id);
		return -EINVAL;
	}
	return 0;
}

static int rec_cmp(const void *x, const void *y)
{
	const struct spry_proc_rec *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

static int from_json(json_t *root, const char *app, struct spry_proc_table *t, char *err,
		     size_t errlen)
{
	static const char *const keys[] = { "app", "boot", "next-id", "processes", NULL };
	struct spry_proc_rec r;
	const char *bad = NULL, *s;
	json_t *procs, *o;
	size_t i;
	int e;

	if (!json_is_object(root)) {
		spry_err__set(err, errlen, "not a JSON object");
		return -EINVAL;
	}
	if (!keys_known(root, keys, &bad)) {
		spry_err__set(err, errlen, "unknown key '%.32s'", bad);
		return -EINVAL;
	}
	s = json_string_value(json_object_get(root, "app"));
	if (!s || spry_name_check(s)) {
		spry_err__set(err, errlen, "missing or bad 'app'");
		return -EINVAL;
	}
	if (app && strcmp(s, app)) {
		spry_err__set(err, errlen, "the table of app '%s'", s);
		return -EINVAL;
	}
	snprintf(t->app, sizeof(t->app), "%s", s);
	o = json_object_get(root, "boot");
	s = json_string_value(o);
	if (o && (!s || strlen(s) >= sizeof(t->boot))) {
		spry_err__set(err, errlen, "bad 'boot'");
		return -EINVAL;
	}
	snprintf(t->boot, sizeof(t->boot), "%s", s ? s : "");
	if (int_member(root, "next-id", 0, SPRY_PROC_ID_MAX, 0, &t->next_id)) {
		spry_err__set(err, errlen, "'next-id' is not a number in 0..%llu",
			      (unsigned long long)SPRY_PROC_ID_MAX);
		return -EINVAL;
	}
	procs = json_object_get(root, "processes");
	if (!json_is_array(procs)) {
		spry_err__set(err, errlen, "missing 'processes'");
		return -EINVAL;
	}
	if (json_array_size(procs) > SPRY_MAX_PROCS) {
		spry_err__set(err, errlen, "%zu processes (at most %d)", json_array_size(procs),
			      SPRY_MAX_PROCS);
		return -EINVAL;
	}
	json_array_foreach(procs, i, o) {
		e = rec_of(o, &r, i, err, errlen);
		e = e ?: spry_proc_table__add(t, &r);
		if (e)
			return e;
	}
	if (t->n)
		qsort(t->recs, t->n, sizeof(*t->recs), rec_cmp);
	for (i = 1; i < t->n; i++) {
		if (t->recs[i].id == t->recs[i - 1].id) {
			spry_err__set(err, errlen, "process %llu listed twice",
				      (unsigned long long)t->recs[i].id);
			return -EINVAL;
		}
	}
	return 0;
}

int spry_proc_table__parse(const char *text, size_t len, const char *app,
			   struct spry_proc_table *t, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	int e;

	memset(t, 0, sizeof(*t));
	if (errlen)
		err[0] = '\0';
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		spry_err__set(err, errlen, "line %d: %s", je.line, je.text);
		return -EINVAL;
	}
	e = from_json(root, app, t, err, errlen);
	json_decref(root);
	if (e) {
		spry_proc_table__free(t);
		memset(t, 0, sizeof(*t));
	}
	return e;
}

struct op {
	struct spry_proc_rec	rec;
	uint32_t		order;
	bool			del;
};

static int op_cmp(const void *x, const void *y)
{
	const struct op *a = x, *b = y;

	if (a->rec.id != b->rec.id)
		return a->rec.id < b->rec.id ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* One journal line into @o: 0 or -EINVAL (reason in @err). */
static int line_of(const char *line, size_t n, struct op *o, uint64_t *next_id, char *err,
		   size_t errlen)
{
	static const char *const keys[] = { "set", "del", "next-id", NULL };
	const char *bad = NULL;
	json_error_t je;
	json_t *root, *set, *del;
	uint64_t x;
	int e = -EINVAL;

	root = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		spry_err__set(err, errlen, "%s", je.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		spry_err__set(err, errlen, "not a JSON object");
		goto out;
	}
	if (!keys_known(root, keys, &bad)) {
		spry_err__set(err, errlen, "unknown key '%.32s'", bad);
		goto out;
	}
	set = json_object_get(root, "set");
	del = json_object_get(root, "del");
	if (!set == !del) {
		spry_err__set(err, errlen, "neither 'set' nor 'del' (or both)");
		goto out;
	}
	if (int_member(root, "next-id", 0, SPRY_PROC_ID_MAX, 0, &x)) {
		spry_err__set(err, errlen, "bad 'next-id'");
		goto out;
	}
	if (x > *next_id)
		*next_id = x;
	memset(o, 0, sizeof(*o));
	if (set) {
		e = rec_of(set, &o->rec, 0, err, errlen);
		goto out;
	}
	if (int_member(root, "del", 1, SPRY_PROC_ID_MAX, 0, &o->rec.id)) {
		spry_err__set(err, errlen, "bad 'del'");
		goto out;
	}
	o->del = true;
	e = 0;
out:
	json_decref(root);
	return e;
}

int spry_proc_table__replay(struct spry_proc_table *t, const char *text, size_t len,
			    bool *torn, char *err, size_t errlen)
{
	struct op *ops = NULL, *no;
	struct spry_proc_rec *out = NULL;
	size_t n_ops = 0, cap = 0, off = 0, i, j, k, n_out = 0;
	uint32_t lineno = 0;
	const char *nl;
	int e = 0;

	*torn = false;
	while (off < len) {
		nl = memchr(text + off, '\n', len - off);
		lineno++;
		if (!nl) {
			*torn = true;	/* a write cut short: never answered */
			break;
		}
		if (n_ops == cap) {
			cap = cap ? cap * 2 : 256;
			if (cap > (size_t)SPRY_MAX_PROCS * 64) {
				spry_err__set(err, errlen, "journal line %u: too many lines", lineno);
				e = -EINVAL;
				goto out;
			}
			no = realloc(ops, cap * sizeof(*ops));
			if (!no) {
				e = -ENOMEM;
				goto out;
			}
			ops = no;
		}
		e = line_of(text + off, (size_t)(nl - (text + off)), &ops[n_ops], &t->next_id,
			    err, errlen);
		if (e) {
			char reason[256];

			snprintf(reason, sizeof(reason), "%s", err);
			spry_err__set(err, errlen, "journal line %u: %s", lineno, reason);
			goto out;
		}
		ops[n_ops].order = (uint32_t)n_ops;
		n_ops++;
		off = (size_t)(nl - text) + 1;
	}
	if (!n_ops)
		goto out;
	qsort(ops, n_ops, sizeof(*ops), op_cmp);
	out = malloc((t->n + n_ops) * sizeof(*out));
	if (!out) {
		e = -ENOMEM;
		goto out;
	}
	/* merge: the table's records by id, each replaced by its last op */
	for (i = 0, j = 0; i < t->n || j < n_ops;) {
		if (j == n_ops || (i < t->n && t->recs[i].id < ops[j].rec.id)) {
			out[n_out++] = t->recs[i++];
			continue;
		}
		for (k = j; k + 1 < n_ops && ops[k + 1].rec.id == ops[j].rec.id; k++)
			;
		if (i < t->n && t->recs[i].id == ops[j].rec.id)
			i++;
		if (!ops[k].del)
			out[n_out++] = ops[k].rec;
		j = k + 1;
	}
	if (n_out > SPRY_MAX_PROCS) {
		spry_err__set(err, errlen, "%zu processes (at most %d)", n_out, SPRY_MAX_PROCS);
		e = -EINVAL;
		goto out;
	}
	free(t->recs);
	t->recs = out;
	t->n = t->cap = (uint32_t)n_out;
	out = NULL;
	if (!t->cap) {
		free(t->recs);
		t->recs = NULL;
	}
out:
	free(out);
	free(ops);
	return e;
}

/* The whole of @path in *@buf (NUL added): 0, -ENOENT, -EINVAL (too big, not a file), -errno. */
static int read_all(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			spry_err__set(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > TABLE_MAX_BYTES) {
		spry_err__set(err, errlen, "%s: not a regular file of at most %lu bytes", path,
			      TABLE_MAX_BYTES);
		close(fd);
		return -EINVAL;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		spry_err__set(err, errlen, "%s: short read", path);
		free(*buf);
		*buf = NULL;
		return -EIO;
	}
	(*buf)[got] = '\0';
	*len = got;
	return 0;
}

int spry_proc_table__read(const char *dir, const char *app, struct spry_proc_table *t,
			  bool *torn, char *err, size_t errlen)
{
	char path[PATH_MAX], jpath[PATH_MAX], reason[256], *buf = NULL, *jbuf = NULL;
	size_t len = 0, jlen = 0;
	int e, je;

	memset(t, 0, sizeof(*t));
	*torn = false;
	e = spry_jsonfile__path(dir, app, "", path, sizeof(path));
	e = e ?: spry_jsonfile__path(dir, app, ".log", jpath, sizeof(jpath));
	if (e) {
		spry_err__set(err, errlen, "bad app name or path");
		return e;
	}
	e = read_all(path, &buf, &len, err, errlen);
	if (e && e != -ENOENT)
		goto out;
	je = read_all(jpath, &jbuf, &jlen, err, errlen);
	if (je && je != -ENOENT) {
		e = je;
		goto out;
	}
	if (e == -ENOENT && je == -ENOENT)
		goto out;
	if (!e) {
		e = spry_proc_table__parse(buf, len, app, t, err, errlen);
		if (e == -EINVAL) {
			snprintf(reason, sizeof(reason), "%s", err);
			spry_err__set(err, errlen, "%s: %s", path, reason);
		}
		if (e)
			goto out;
	} else {
		/* a journal alone: the file was never written (a first table) */
		snprintf(t->app, sizeof(t->app), "%s", app);
		e = 0;
	}
	if (!je) {
		e = spry_proc_table__replay(t, jbuf, jlen, torn, err, errlen);
		if (e == -EINVAL) {
			snprintf(reason, sizeof(reason), "%s", err);
			spry_err__set(err, errlen, "%s: %s", jpath, reason);
		}
	}
out:
	if (e) {
		spry_proc_table__free(t);
		memset(t, 0, sizeof(*t));
	}
	free(buf);
	free(jbuf);
	return e;
}

static json_t *rec_json(const struct spry_proc_rec *r)
{
	json_t *o = json_pack("{s:I,s:s,s:i,s:b,s:I,s:I}", "id", (json_int_t)r->id,
			      "state", state_name(r->state), "pid", (int)r->pid, "swap", r->swap,
			      "activations", (json_int_t)r->activations,
			      "swaps", (json_int_t)r->swaps);

	/* unknown stays unknown: written as it was read (absent) */
	if (o && r->swap_file != SPRY_SF_UNKNOWN &&
	    json_object_set_new(o, "swap-file", json_boolean(r->swap_file == SPRY_SF_YES))) {
		json_decref(o);
		return NULL;
	}
	if (o && r->pid && r->pid_start &&
	    json_object_set_new(o, "pid-start", json_integer((json_int_t)r->pid_start))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A string as JSON (quoted, escaped), written to @f: 0 or -ENOMEM/-EIO. */
static int put_string(FILE *f, const char *s)
{
	json_t *v = json_string(s);
	int err = v && !json_dumpf(v, f, JSON_ENCODE_ANY) ? 0 : -EIO;

	json_decref(v);
	return err;
}

/*
 * The table one record at a time (each a small json_t dumped and freed):
 * a table of 65536 processes never is one tree of objects in memory.
 */
struct emit_ctx {
	const struct spry_proc_table	*t;
	int				(*next)(void *ctx, struct spry_proc_rec *r);
	void				*ctx;
};

static int emit_table(FILE *f, void *arg)
{
	const struct emit_ctx *ec = arg;
	const struct spry_proc_table *t = ec->t;
	struct spry_proc_rec r;
	json_t *o;
	uint32_t i;
	int err;

	if (fputs("{\"app\": ", f) == EOF || put_string(f, t->app) ||
	    fputs(", \"boot\": ", f) == EOF || put_string(f, t->boot) ||
	    fprintf(f, ", \"next-id\": %llu, \"processes\": [",
		    (unsigned long long)t->next_id) < 0)
		return -EIO;
	for (i = 0;; i++) {
		if (ec->next) {
			if (!ec->next(ec->ctx, &r))
				break;
		} else if (i < t->n) {
			r = t->recs[i];
		} else {
			break;
		}
		o = rec_json(&r);
		if (!o)
			return -ENOMEM;
		err = fputs(i ? ",\n " : "\n ", f) == EOF ||
		      json_dumpf(o, f, JSON_COMPACT) ? -EIO : 0;
		json_decref(o);
		if (err)
			return err;
	}
	return fputs("\n]}\n", f) == EOF ? -EIO : 0;
}

int spry_proc_table__write(const char *dir, const struct spry_proc_table *t, int jfd,
			   int (*next)(void *ctx, struct spry_proc_rec *r), void *ctx)
{
	struct emit_ctx ec = { .t = t, .next = next, .ctx = ctx };
	int err = spry_jsonfile__write_stream(dir, t->app, emit_table, &ec);

	/* the file holds every line now: the journal starts again */
	if (!err && jfd >= 0 && ftruncate(jfd, 0))
		err = -errno;
	return err;
}

int spry_proc_table__journal_open(const char *dir, const char *app)
{
	char path[PATH_MAX];
	int fd, err;

	err = spry_jsonfile__path(dir, app, ".log", path, sizeof(path));
	if (err)
		return err;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

int spry_proc_table__append(int jfd, const struct spry_proc_rec *r, uint64_t del_id,
			    uint64_t next_id)
{
	json_t *root;
	char *line;
	size_t n;
	ssize_t w;
	int err = 0;

	if (r)
		root = json_pack("{s:o,s:I}", "set", rec_json(r), "next-id", (json_int_t)next_id);
	else
		root = json_pack("{s:I,s:I}", "del", (json_int_t)del_id, "next-id",
				 (json_int_t)next_id);
	line = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (!line)
		return -ENOMEM;
	n = strlen(line);
	line[n] = '\n';		/* json_dumps's NUL: one write with the newline */
	w = write(jfd, line, n + 1);
	if (w < 0)
		err = -errno;
	else if ((size_t)w != n + 1)
		err = -EIO;	/* a short line: the replay ignores it only if last */
	free(line);
	return err;
}

int spry_proc_table__remove(const char *dir, const char *app)
{
	char path[PATH_MAX];
	int err = spry_jsonfile__path(dir, app, ".log", path, sizeof(path));

	if (err)
		return err;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return spry_jsonfile__remove(dir, app);
}

int spry_proc_table__set_aside(const char *dir, const char *app, char *bad, size_t len)
{
	char path[PATH_MAX], jpath[PATH_MAX], jbad[PATH_MAX];
	int err;

	err = spry_jsonfile__path(dir, app, "", path, sizeof(path));
	err = err ?: spry_jsonfile__path(dir, app, ".bad", bad, len);
	err = err ?: spry_jsonfile__path(dir, app, ".log", jpath, sizeof(jpath));
	err = err ?: spry_jsonfile__path(dir, app, ".log.bad", jbad, sizeof(jbad));
	if (err)
		return err;
	if (rename(path, bad) && errno != ENOENT)
		return -errno;
	if (rename(jpath, jbad) && errno != ENOENT)
		return -errno;
	return 0;
}
