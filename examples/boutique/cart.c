// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cart: per-user carts in this process's memory.
 *
 *   add USER ID...   one of each id (repeats add more), "OK N" with N the
 *                    items in the cart; ids are not checked here (the
 *                    frontend asks the catalog first)
 *   get USER         "ID QTY" lines, in the order first added
 *   empty USER       "OK 0"
 *
 * The state is this instance's: with several cart instances the frontend
 * calls with the user's sticky key (spry_req_call_key), so one user's
 * calls always reach the same live instance.  At the end of this file the
 * same cart as sessions kept in cloud processes' state.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <spry/state.h>

#include "examples/boutique/boutique.h"

#define CART_USERS	256
#define CART_LINES	32
#define CART_QTY_MAX	99

struct cart {
	char		user[BQ_USER_LEN];	/* "" = free slot */
	unsigned int	n;
	struct {
		char		id[BQ_ID_LEN];
		unsigned int	qty;
	} line[CART_LINES];
};

static struct cart carts[CART_USERS];

static struct cart *cart_find(const char *user, int create)
{
	struct cart *free_slot = NULL;
	size_t i;

	for (i = 0; i < CART_USERS; i++) {
		if (!strcmp(carts[i].user, user))
			return &carts[i];
		if (!free_slot && !carts[i].user[0])
			free_slot = &carts[i];
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	strcpy(free_slot->user, user);
	return free_slot;
}

static unsigned int cart_items(const struct cart *c)
{
	unsigned int i, n = 0;

	for (i = 0; i < c->n; i++)
		n += c->line[i].qty;
	return n;
}

static int cart_add(struct cart *c, const char *id)
{
	unsigned int i;

	if (strlen(id) >= BQ_ID_LEN)
		return -EINVAL;
	for (i = 0; i < c->n; i++) {
		if (strcmp(c->line[i].id, id))
			continue;
		if (c->line[i].qty >= CART_QTY_MAX)
			return -ENOSPC;
		c->line[i].qty++;
		return 0;
	}
	if (c->n == CART_LINES)
		return -ENOSPC;
	strcpy(c->line[c->n].id, id);
	c->line[c->n].qty = 1;
	c->n++;
	return 0;
}

int bq_cart(struct spry_req *req, void *user)
{
	char in[BQ_MSG_MAX], out[BQ_MSG_MAX], *w[BQ_MAX_WORDS];
	struct cart *c, saved;
	size_t at = 0;
	unsigned int i;
	int n, k, ret;

	(void)user;
	ret = bq_payload_str(req, in, sizeof(in));
	if (ret)
		return ret;
	n = bq_split(in, w, BQ_MAX_WORDS);
	if (n < 2 || !bq_user_ok(w[1])) {
		at = snprintf(out, sizeof(out), "ERR bad-request cart\n");
		return spry_req_reply(req, 0, NULL, out, at);
	}
	if (!strcmp(w[0], "add") && n >= 3) {
		c = cart_find(w[1], 1);
		if (!c) {
			at = snprintf(out, sizeof(out), "ERR too-many-users\n");
			return spry_req_reply(req, 0, NULL, out, at);
		}
		saved = *c;		/* all or nothing */
		for (k = 2; k < n; k++) {
			if (cart_add(c, w[k])) {
				*c = saved;
				at = snprintf(out, sizeof(out), "ERR cart-full\n");
				return spry_req_reply(req, 0, NULL, out, at);
			}
		}
		at = snprintf(out, sizeof(out), "OK %u\n", cart_items(c));
	} else if (!strcmp(w[0], "get") && n == 2) {
		c = cart_find(w[1], 0);
		for (i = 0; c && i < c->n; i++) {
			k = snprintf(out + at, sizeof(out) - at, "%s %u\n", c->line[i].id,
				     c->line[i].qty);
			if (k < 0 || (size_t)k >= sizeof(out) - at)
				return -EMSGSIZE;
			at += k;
		}
	} else if (!strcmp(w[0], "empty") && n == 2) {
		c = cart_find(w[1], 0);
		if (c)
			memset(c, 0, sizeof(*c));
		at = snprintf(out, sizeof(out), "OK 0\n");
	} else {
		at = snprintf(out, sizeof(out), "ERR bad-request cart\n");
	}
	return spry_req_reply(req, 0, NULL, out, at);
}

/*
 * Sessions (`--service cart-session`): the cart kept in a cloud process's
 * state (docs/PROCESS.md), one cart per process, the process id being the
 * session: an app with the functions
 *
 *   add      the payload's ids (separated by blanks), all or nothing: "OK N"
 *   get      "ID QTY" lines, in the order first added
 *   empty    "OK 0"
 *
 * The cart is one value of the state, written whole with one put: it
 * survives a swap, a wake and the kill -9 of the process.
 *
 *   spry app add cart fns add,get,empty exec build/examples/boutique \
 *        args --service cart-session
 *   curl -d 'P3 P7' http://127.0.0.1:8080/cart/42/add
 */
static const char session_key[] = "cart";

/* This process's cart into *c (empty when it has none): 0 or an answer. */
static int session_load(struct spry_req *req, struct spry_state **stp, struct cart *c)
{
	struct spry_state *st = spry_fn_state();
	unsigned int i;
	size_t vl;
	int err;

	if (!st)
		return spry_req_error(req, 500, errno ? -errno : -EIO,
				      "cart sessions keep carts in a process state: %s",
				      spry_state_error());
	*stp = st;
	memset(c, 0, sizeof(*c));
	err = spry_state_get(st, session_key, sizeof(session_key) - 1, c, sizeof(*c), &vl);
	if (err == -ENOENT)
		return 0;
	if (err)
		return spry_req_error(req, 500, err, "state: %s", spry_state_error());
	if (vl != sizeof(*c) || c->n > CART_LINES)
		return spry_req_error(req, 500, -EBADMSG, "state: the cart's value is damaged");
	for (i = 0; i < c->n; i++)
		if (!memchr(c->line[i].id, '\0', BQ_ID_LEN) || !c->line[i].qty ||
		    c->line[i].qty > CART_QTY_MAX)
			return spry_req_error(req, 500, -EBADMSG, "state: the cart's line %u is damaged",
					      i + 1);
	return 0;
}

static int session_add(struct spry_req *req, void *user)
{
	char in[BQ_MSG_MAX], out[32], *w[BQ_MAX_WORDS];
	struct spry_state *st;
	struct cart c;
	int n, k, err;

	(void)user;
	err = bq_payload_str(req, in, sizeof(in));
	if (err)
		return spry_req_error(req, 400, err, "the payload must be ids, at most %d bytes",
				      BQ_MSG_MAX - 1);
	n = bq_split(in, w, BQ_MAX_WORDS);
	if (n < 1)
		return spry_req_error(req, 400, -EINVAL, "no id to add (at most %d)", BQ_MAX_WORDS);
	err = session_load(req, &st, &c);
	if (err)
		return err;
	for (k = 0; k < n; k++)
		if (cart_add(&c, w[k]))	/* c is a copy: nothing is kept */
			return spry_req_error(req, 409, -ENOSPC, "cart full or bad id '%.16s'", w[k]);
	err = spry_state_put(st, session_key, sizeof(session_key) - 1, &c, sizeof(c));
	if (err)
		return spry_req_error(req, 500, err, "state: %s", spry_state_error());
	n = snprintf(out, sizeof(out), "OK %u\n", cart_items(&c));
	return spry_req_reply(req, 0, "text/plain", out, (size_t)n);
}

static int session_get(struct spry_req *req, void *user)
{
	char out[BQ_MSG_MAX];
	struct spry_state *st;
	struct cart c;
	size_t at = 0;
	unsigned int i;
	int k, err;

	(void)user;
	err = session_load(req, &st, &c);
	if (err)
		return err;
	for (i = 0; i < c.n; i++) {
		k = snprintf(out + at, sizeof(out) - at, "%s %u\n", c.line[i].id, c.line[i].qty);
		if (k < 0 || (size_t)k >= sizeof(out) - at)
			return -EMSGSIZE;
		at += k;
	}
	return spry_req_reply(req, 0, "text/plain", out, at);
}

static int session_empty(struct spry_req *req, void *user)
{
	struct spry_state *st;
	struct cart c;
	int err;

	(void)user;
	err = session_load(req, &st, &c);
	if (err)
		return err;
	err = spry_state_del(st, session_key, sizeof(session_key) - 1);
	if (err && err != -ENOENT)
		return spry_req_error(req, 500, err, "state: %s", spry_state_error());
	return spry_req_reply(req, 0, "text/plain", "OK 0\n", 5);
}

const struct spry_app_fn bq_cart_session_fns[] = {
	{ "add",	session_add },
	{ "get",	session_get },
	{ "empty",	session_empty },
};
const size_t bq_cart_session_nfns = sizeof(bq_cart_session_fns) / sizeof(bq_cart_session_fns[0]);
