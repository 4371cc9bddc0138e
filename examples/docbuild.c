// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * docbuild: an incremental document build, an app (docs/PROCESS.md) whose
 * process caches each section's rendering in its state (include/spry/state.h).
 *
 *   build    the payload is a document; a line that is exactly "---" ends a
 *            section (k markers: k + 1 sections).  Each section is rendered
 *            from a markdown subset to HTML, or taken from the process's
 *            state when a section with the same bytes was rendered before
 *            (key "sec/<FNV-1a 64 of the section>/<its length>").  The
 *            answer: "docbuild sections N rebuilt R cached C\n", then for
 *            each section i (from 1)
 *              <section id="sI" data-hash="HASH">\n ... </section>\n
 *   forget   drops every cached section: "forgot N\n"
 *
 * The subset, line by line (a line is cut at '\n'; the last one may lack it):
 *   "# T", "## T", "### T"  <h1>..<h3>, T inline
 *   "- T"                   <li>T</li>, consecutive items in one <ul>
 *   an empty line           ends a paragraph or a list
 *   any other line          paragraph text: consecutive lines joined by
 *                           one space in one <p>
 * Inline: & < > " escaped; `x` <code>, **x** <strong>, *x* <em> (their
 * text escaped, not nested); an opener without its closer is text.
 *
 * Run by hand (no state) it renders every section every time.  When the
 * store is full the cached sections are dropped and the put is tried once
 * more; a section that still does not fit is answered, not cached.
 *
 *   spry app add docbuild fns build,forget exec build/examples/docbuild
 *   curl --data-binary @doc.md http://127.0.0.1:8080/docbuild/1/build
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spry/spry.h>
#include <spry/state.h>

#define KEY_PREFIX	"sec/"
#define KEY_MAX		48

struct buf {
	char	*p;
	size_t	len, cap;
	int	err;
};

/* Room for @n more bytes; 0 or b->err. */
static int buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return b->err;
	if (n > b->cap - b->len) {
		cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2)
				return b->err = -ENOMEM;
			cap *= 2;
		}
		p = realloc(b->p, cap);
		if (!p)
			return b->err = -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	return 0;
}

static void buf_add(struct buf *b, const void *s, size_t n)
{
	if (!n || buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static uint64_t fnv1a64(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void esc(struct buf *b, const char *s, size_t n)
{
	size_t i, from = 0;
	const char *e;

	for (i = 0; i < n; i++) {
		switch (s[i]) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		default: continue;
		}
		buf_add(b, s + from, i - from);
		buf_str(b, e);
		from = i + 1;
	}
	buf_add(b, s + from, n - from);
}

/* The first @pat (@plen bytes) in s[from, n), or -1. */
static long find(const char *s, size_t n, size_t from, const char *pat, size_t plen)
{
	size_t i;

	for (i = from; i + plen <= n; i++)
		if (!memcmp(s + i, pat, plen))
			return (long)i;
	return -1;
}

static void span(struct buf *b, const char *tag, const char *s, size_t n)
{
	buf_str(b, "<");
	buf_str(b, tag);
	buf_str(b, ">");
	esc(b, s, n);
	buf_str(b, "</");
	buf_str(b, tag);
	buf_str(b, ">");
}

static void inline_text(struct buf *b, const char *s, size_t n)
{
	size_t i = 0;
	long j;

	while (i < n) {
		if (s[i] == '`' && (j = find(s, n, i + 1, "`", 1)) >= 0) {
			span(b, "code", s + i + 1, (size_t)j - i - 1);
			i = (size_t)j + 1;
		} else if (i + 1 < n && s[i] == '*' && s[i + 1] == '*' &&
			   (j = find(s, n, i + 2, "**", 2)) >= 0) {
			span(b, "strong", s + i + 2, (size_t)j - i - 2);
			i = (size_t)j + 2;
		} else if (s[i] == '*' && (j = find(s, n, i + 1, "*", 1)) >= 0) {
			span(b, "em", s + i + 1, (size_t)j - i - 1);
			i = (size_t)j + 1;
		} else {
			esc(b, s + i, 1);
			i++;
		}
	}
}

enum block { B_NONE, B_PARA, B_LIST };

static void block_end(struct buf *b, enum block *blk)
{
	if (*blk == B_PARA)
		buf_str(b, "</p>\n");
	else if (*blk == B_LIST)
		buf_str(b, "</ul>\n");
	*blk = B_NONE;
}

/* Render the section s[0, n) (whole lines, each ending in '\n'). */
static void render(struct buf *b, const char *s, size_t n)
{
	enum block blk = B_NONE;
	const char *line, *nl;
	size_t at = 0, len;
	int level;

	while (at < n) {
		line = s + at;
		nl = memchr(line, '\n', n - at);
		len = nl ? (size_t)(nl - line) : n - at;
		at += len + (nl ? 1 : 0);
		for (level = 0; level < 3 && level < (int)len && line[level] == '#'; level++)
			;
		if (level && (size_t)level < len && line[level] == ' ') {
			char tag[3] = { 'h', (char)('0' + level), 0 };

			block_end(b, &blk);
			buf_str(b, "<");
			buf_str(b, tag);
			buf_str(b, ">");
			inline_text(b, line + level + 1, len - level - 1);
			buf_str(b, "</");
			buf_str(b, tag);
			buf_str(b, ">\n");
		} else if (len >= 2 && line[0] == '-' && line[1] == ' ') {
			if (blk != B_LIST) {
				block_end(b, &blk);
				buf_str(b, "<ul>\n");
				blk = B_LIST;
			}
			buf_str(b, "<li>");
			inline_text(b, line + 2, len - 2);
			buf_str(b, "</li>\n");
		} else if (!len) {
			block_end(b, &blk);
		} else {
			if (blk == B_PARA) {
				buf_str(b, " ");
			} else {
				block_end(b, &blk);
				buf_str(b, "<p>");
				blk = B_PARA;
			}
			inline_text(b, line, len);
		}
	}
	block_end(b, &blk);
}

/*
 * Drop every cached section; the number dropped or -errno.  Keys deleted
 * while iterating may hide others: passes until one deletes nothing.
 */
static int forget_all(struct spry_state *st)
{
	char key[SPRY_STATE_KEY_MAX];
	uint64_t cursor = 0;
	size_t klen;
	int n = 0, pass = 0, err;

	for (;;) {
		err = spry_state_keys(st, &cursor, key, sizeof(key), &klen);
		if (err == -ENOENT) {
			if (!pass)
				return n;
			pass = 0;
			cursor = 0;
			continue;
		}
		if (err)
			return err;
		if (klen < sizeof(KEY_PREFIX) - 1 || memcmp(key, KEY_PREFIX, sizeof(KEY_PREFIX) - 1))
			continue;
		err = spry_state_del(st, key, klen);
		if (err && err != -ENOENT)
			return err;
		n += !err;
		pass += !err;
	}
}

/* The cached rendering of @key appended to @b: 1, 0 when absent, or -errno. */
static int cache_get(struct spry_state *st, const char *key, size_t klen, struct buf *b)
{
	size_t vlen, room;
	int err;

	for (room = 4096;; room = vlen) {
		if (buf_reserve(b, room))
			return b->err;
		err = spry_state_get(st, key, klen, b->p + b->len, b->cap - b->len, &vlen);
		if (err == -ENOENT)
			return 0;
		if (!err) {
			b->len += vlen;
			return 1;
		}
		if (err != -EMSGSIZE)
			return err;
	}
}

static int cache_put(struct spry_state *st, const char *key, size_t klen,
		     const char *val, size_t vlen)
{
	int err = spry_state_put(st, key, klen, val, vlen);

	if (err != -ENOSPC)
		return err;
	err = forget_all(st);	/* full: start the cache afresh */
	if (err < 0)
		return err;
	err = spry_state_put(st, key, klen, val, vlen);
	return err == -ENOSPC ? 0 : err;	/* too big to cache: answered anyway */
}

static int build(struct spry_req *req, void *user)
{
	struct spry_state *st = spry_fn_state();
	struct buf out = {}, body = {};
	unsigned int nsec = 0, rebuilt = 0, cached = 0;
	size_t len, at = 0, sec_start = 0, line_len = 0, klen;
	const char *doc, *nl = NULL;
	char key[KEY_MAX], head[96], open[96];
	uint64_t h;
	int err = 0, hit, n;

	(void)user;
	if (!st && errno != ENOENT)
		return spry_req_error(req, 500, -errno, "state: %s", spry_state_error());
	doc = spry_req_data(req, &len);
	for (;;) {
		int last = at >= len;

		if (!last) {
			nl = memchr(doc + at, '\n', len - at);
			line_len = nl ? (size_t)(nl - (doc + at)) : len - at;
			if (!(line_len == 3 && !memcmp(doc + at, "---", 3))) {
				at += line_len + (nl ? 1 : 0);
				continue;
			}
		}
		/* a section: doc[sec_start, at) */
		nsec++;
		h = fnv1a64(doc + sec_start, at - sec_start);
		klen = (size_t)snprintf(key, sizeof(key), KEY_PREFIX "%016" PRIx64 "/%zu", h,
					at - sec_start);
		n = snprintf(open, sizeof(open), "<section id=\"s%u\" data-hash=\"%016" PRIx64 "\">\n",
			     nsec, h);
		buf_add(&body, open, (size_t)n);
		hit = st ? cache_get(st, key, klen, &body) : 0;
		if (hit < 0) {
			err = spry_req_error(req, 500, hit, "state: %s", spry_state_error());
			goto out;
		}
		if (hit) {
			cached++;
		} else {
			size_t from = body.len;

			render(&body, doc + sec_start, at - sec_start);
			rebuilt++;
			if (st && !body.err) {
				err = cache_put(st, key, klen, body.p + from, body.len - from);
				if (err) {
					err = spry_req_error(req, 500, err, "state: %s",
							     spry_state_error());
					goto out;
				}
			}
		}
		buf_str(&body, "</section>\n");
		if (last)
			break;
		at += line_len + (nl ? 1 : 0);	/* past the marker */
		sec_start = at;	/* a marker as the last line: an empty section follows */
	}
	n = snprintf(head, sizeof(head), "docbuild sections %u rebuilt %u cached %u\n",
		     nsec, rebuilt, cached);
	buf_add(&out, head, (size_t)n);
	buf_add(&out, body.p, body.len);
	if (body.err || out.err) {
		err = spry_req_error(req, 500, -ENOMEM, "out of memory");
		goto out;
	}
	err = spry_req_reply(req, 0, "text/html", out.p, out.len);
	if (err == -EMSGSIZE || err == -ENOSPC)	/* -EFBIG: -EMSGSIZE would drop our answer */
		err = spry_req_error(req, 413, -EFBIG, "the rendered document (%zu bytes) does not fit a buffer",
				     out.len);
out:
	free(out.p);
	free(body.p);
	return err;
}

static int forget(struct spry_req *req, void *user)
{
	struct spry_state *st = spry_fn_state();
	char out[32];
	int n;

	(void)user;
	if (!st)
		return spry_req_error(req, 500, -errno, "state: %s", spry_state_error());
	n = forget_all(st);
	if (n < 0)
		return spry_req_error(req, 500, n, "state: %s", spry_state_error());
	n = snprintf(out, sizeof(out), "forgot %d\n", n);
	return spry_req_reply(req, 0, "text/plain", out, (size_t)n);
}

int main(int argc, char **argv)
{
	static const struct spry_app_fn fns[] = {
		{ "build",	build },
		{ "forget",	forget },
	};

	return spry_app_main(argc, argv, fns, sizeof(fns) / sizeof(fns[0]), NULL);
}
