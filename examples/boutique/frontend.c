// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * frontend: the shop's pages, built from service calls (README.md).
 *
 * The request: parameters "key=value" separated by '&' or newlines, from
 * the metadata "query" and then the body (later ones win); the page from
 * the metadata "path" ("/", "/product", "/cart", "/checkout", with or
 * without a leading "/boutique"), or from the parameter "op" (home,
 * product, cart, checkout), which a client without metadata (spry chain
 * invoke) must send.  Parameters: user ([a-z0-9_-]{1,31}), currency (USD
 * default, EUR, GBP, CAD, CHF, JPY), id (product page), add (cart page:
 * product ids separated by ',', each adds one).
 *
 * Calls, in page order (the cart with the user's sticky key):
 *   home      catalog list, currency
 *   product   catalog get, currency, recommendation
 *   cart      [catalog get + cart add], cart get, catalog get, currency,
 *             recommendation
 *   checkout  cart get, catalog get, currency, checkout, cart empty,
 *             recommendation
 *
 * The response is text/plain (@content-type), @status 200; 400 for a bad
 * request, 404 for an unknown product, 502 when a service fails or does
 * not answer.  Errors read "error NNN: what\n".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/boutique/boutique.h"

#define FE_BODY_MAX	1024
#define FE_ITEMS	40
#define FE_PAGE_MAX	8192
#define FE_RECOMMEND	4
#define FE_SHIP_USD	599	/* shipping, USD cents */

enum fe_op { OP_NONE, OP_HOME, OP_PRODUCT, OP_CART, OP_CHECKOUT };

struct fe_item {
	char		id[BQ_ID_LEN];
	char		name[64];
	char		category[24];
	uint64_t	usd;		/* unit price, USD cents */
	uint64_t	price;		/* unit price, converted */
	unsigned int	qty;
};

struct fe {
	struct spry_req	*req;
	enum fe_op	op;
	char		user[BQ_USER_LEN];
	char		currency[4];
	int		decimals;
	char		id[BQ_ID_LEN];
	char		add[FE_ITEMS][BQ_ID_LEN];
	int		n_add;
	struct fe_item	items[FE_ITEMS];
	int		n_items;
	/* the answer */
	unsigned int	status;
	char		page[FE_PAGE_MAX];
	size_t		at;
	bool		overflow;
};

static void page(struct fe *fe, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void page(struct fe *fe, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (fe->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(fe->page + fe->at, sizeof(fe->page) - fe->at, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(fe->page) - fe->at)
		fe->overflow = true;
	else
		fe->at += n;
}

/* The page becomes "error NNN: ...": returns -1 so callers can stop. */
static int fail(struct fe *fe, unsigned int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct fe *fe, unsigned int status, const char *fmt, ...)
{
	va_list ap;
	int n;

	fe->status = status;
	fe->overflow = false;
	n = snprintf(fe->page, sizeof(fe->page), "error %u: ", status);
	va_start(ap, fmt);
	n += vsnprintf(fe->page + n, sizeof(fe->page) - n - 1, fmt, ap);
	va_end(ap);
	if ((size_t)n > sizeof(fe->page) - 2)
		n = sizeof(fe->page) - 2;
	fe->page[n++] = '\n';
	fe->at = n;
	return -1;
}

static void money(char *buf, size_t size, uint64_t v, int decimals)
{
	if (decimals == 2)
		snprintf(buf, size, "%" PRIu64 ".%02" PRIu64, v / 100, v % 100);
	else
		snprintf(buf, size, "%" PRIu64, v);
}

/* FNV-1a: the cart's sticky key (never 0: 0 means no key). */
static uint64_t user_key(const char *user)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *user; user++)
		h = (h ^ (unsigned char)*user) * 0x100000001b3ULL;
	return h ? h : 1;
}

/*
 * Call @svc with the line @fmt...; the answer, NUL-terminated, in @out.
 * An "ERR" answer or a failed call becomes the page's error.
 */
static int call(struct fe *fe, const char *svc, uint64_t key, char *out, size_t size,
		const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int call(struct fe *fe, const char *svc, uint64_t key, char *out, size_t size,
		const char *fmt, ...)
{
	char in[BQ_MSG_MAX];
	size_t olen = 0;
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(in, sizeof(in), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(in))
		return fail(fe, 400, "request too large");
	ret = spry_req_call_key(fe->req, svc, key, in, n, out, size - 1, &olen, BQ_CALL_MS);
	if (ret)
		return fail(fe, 502, "%s: %s", svc, strerror(-ret));
	out[olen] = '\0';
	if (strlen(out) != olen)
		return fail(fe, 502, "%s: malformed answer", svc);
	if (!strncmp(out, "ERR unknown-product ", 20))
		return fail(fe, 404, "unknown product %.16s", out + 20);
	if (!strncmp(out, "ERR unknown-currency ", 21))
		return fail(fe, 400, "unknown currency %.8s", out + 21);
	if (!strncmp(out, "ERR cart-full", 13))
		return fail(fe, 400, "the cart is full");
	if (!strncmp(out, "ERR ", 4))
		return fail(fe, 502, "%s: %.64s", svc, out + 4);
	return 0;
}

/* ------------------------------------------------------------ request */

static bool product_id_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 2 || n >= BQ_ID_LEN || s[0] != 'P')
		return false;
	for (i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int set_op(struct fe *fe, const char *v, size_t n)
{
	static const struct { const char *name; enum fe_op op; } ops[] = {
		{ "home", OP_HOME }, { "product", OP_PRODUCT },
		{ "cart", OP_CART }, { "checkout", OP_CHECKOUT },
	};
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strlen(ops[i].name) == n && !memcmp(ops[i].name, v, n)) {
			fe->op = ops[i].op;
			return 0;
		}
	}
	return fail(fe, 400, "unknown page '%.*s'", (int)(n > 32 ? 32 : n), v);
}

static int set_param(struct fe *fe, const char *k, size_t kl, const char *v, size_t vl)
{
	char val[FE_BODY_MAX + 1], *tok, *save = NULL;

	memcpy(val, v, vl);
	val[vl] = '\0';
	if (kl == 2 && !memcmp(k, "op", 2))
		return set_op(fe, v, vl);
	if (kl == 4 && !memcmp(k, "user", 4)) {
		if (!bq_user_ok(val))
			return fail(fe, 400, "bad user name");
		strcpy(fe->user, val);
		return 0;
	}
	if (kl == 8 && !memcmp(k, "currency", 8)) {
		if (vl != 3 || bq_currency_decimals(val) < 0)
			return fail(fe, 400, "unknown currency %.8s", val);
		strcpy(fe->currency, val);
		return 0;
	}
	if (kl == 2 && !memcmp(k, "id", 2)) {
		if (!product_id_ok(val))
			return fail(fe, 400, "bad product id");
		strcpy(fe->id, val);
		return 0;
	}
	if (kl == 3 && !memcmp(k, "add", 3)) {
		fe->n_add = 0;
		for (tok = strtok_r(val, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!product_id_ok(tok))
				return fail(fe, 400, "bad product id");
			if (fe->n_add == FE_ITEMS)
				return fail(fe, 400, "too many products");
			strcpy(fe->add[fe->n_add++], tok);
		}
		if (!fe->n_add)
			return fail(fe, 400, "nothing to add");
		return 0;
	}
	return fail(fe, 400, "unknown parameter '%.*s'", (int)(kl > 32 ? 32 : kl), k);
}

/* "k=v" pairs separated by '&' or newlines (CR ignored); empty ones skipped. */
static int parse_params(struct fe *fe, const char *s, size_t len)
{
	const char *end = s + len, *e, *eq;
	size_t pl;

	while (s < end) {
		for (e = s; e < end && *e != '&' && *e != '\n'; e++)
			;
		pl = e - s;
		while (pl && (s[pl - 1] == '\r' || s[pl - 1] == ' '))
			pl--;
		if (pl) {
			eq = memchr(s, '=', pl);
			if (!eq || eq == s)
				return fail(fe, 400, "expected key=value");
			if (set_param(fe, s, eq - s, eq + 1, pl - (eq + 1 - s)))
				return -1;
		}
		s = e + 1;
	}
	return 0;
}

static int parse_request(struct fe *fe)
{
	const char *v, *body;
	size_t vl, len, i;

	strcpy(fe->currency, "USD");
	v = spry_req_meta(fe->req, "path", &vl);
	if (v) {
		if (vl >= 9 && !memcmp(v, "/boutique", 9) && (vl == 9 || v[9] == '/' || v[9] == '?')) {
			v += 9;
			vl -= 9;
		}
		if (vl && v[0] == '/') {
			v++;
			vl--;
		}
		if (!vl)
			fe->op = OP_HOME;
		else if (set_op(fe, v, vl))
			return fail(fe, 404, "no page %.*s", (int)(vl > 32 ? 32 : vl), v);
	}
	v = spry_req_meta(fe->req, "query", &vl);
	if (v && vl) {
		if (vl > FE_BODY_MAX)
			return fail(fe, 400, "query too long");
		if (parse_params(fe, v, vl))
			return -1;
	}
	body = spry_req_data(fe->req, &len);
	if (len > FE_BODY_MAX)
		return fail(fe, 400, "body too long");
	for (i = 0; i < len; i++)
		if ((body[i] < ' ' || body[i] > '~') && body[i] != '\n' && body[i] != '\r')
			return fail(fe, 400, "body is not printable text");
	if (parse_params(fe, body, len))
		return -1;
	if (fe->op == OP_NONE)
		return fail(fe, 400, "no page: give a path or op=home|product|cart|checkout");
	if ((fe->op == OP_CART || fe->op == OP_CHECKOUT) && !fe->user[0])
		return fail(fe, 400, "user= is required");
	if (fe->op == OP_PRODUCT && !fe->id[0])
		return fail(fe, 400, "id= is required");
	if (fe->n_add && fe->op != OP_CART)
		return fail(fe, 400, "add= belongs to the cart page");
	fe->decimals = bq_currency_decimals(fe->currency);
	return 0;
}

/* ------------------------------------------------------------ services */

/* "ID|PRICE|CATEGORY|NAME" lines into fe->items (qty kept). */
static int parse_catalog(struct fe *fe, char *ans, int expect)
{
	char *line, *save = NULL, *f[4], *p;
	uint64_t price;
	int n = 0, i;

	for (line = strtok_r(ans, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (n == FE_ITEMS)
			return fail(fe, 502, "catalog: too many lines");
		for (i = 0, p = line; i < 3; i++) {
			f[i] = p;
			p = strchr(p, '|');
			if (!p)
				return fail(fe, 502, "catalog: malformed line");
			*p++ = '\0';
		}
		f[3] = p;
		if (!product_id_ok(f[0]) || bq_parse_u64(f[1], UINT32_MAX, &price) ||
		    strlen(f[2]) >= sizeof(fe->items[n].category) ||
		    strlen(f[3]) >= sizeof(fe->items[n].name) || !*f[3])
			return fail(fe, 502, "catalog: malformed line");
		if (expect >= 0 && strcmp(f[0], fe->items[n].id))
			return fail(fe, 502, "catalog: answered %s for %s", f[0],
				    fe->items[n].id);
		strcpy(fe->items[n].id, f[0]);
		strcpy(fe->items[n].category, f[2]);
		strcpy(fe->items[n].name, f[3]);
		fe->items[n].usd = price;
		n++;
	}
	if (expect >= 0 && n != expect)
		return fail(fe, 502, "catalog: %d products for %d asked", n, expect);
	fe->n_items = n;
	return 0;
}

/* Look up fe->items[0..n_items) by id (their qty kept). */
static int catalog_get(struct fe *fe)
{
	char line[BQ_MSG_MAX], ans[BQ_MSG_MAX];
	size_t at = 0;
	int i, k;

	if (!fe->n_items)
		return 0;
	at = snprintf(line, sizeof(line), "get");
	for (i = 0; i < fe->n_items; i++) {
		k = snprintf(line + at, sizeof(line) - at, " %s", fe->items[i].id);
		if (k < 0 || (size_t)k >= sizeof(line) - at)
			return fail(fe, 400, "too many products");
		at += k;
	}
	if (call(fe, "catalog", 0, ans, sizeof(ans), "%s", line))
		return -1;
	return parse_catalog(fe, ans, fe->n_items);
}

/* Convert every item's price (and *@extra when not NULL) to fe->currency. */
static int convert(struct fe *fe, uint64_t *extra)
{
	char line[BQ_MSG_MAX], ans[BQ_MSG_MAX], *w[BQ_MAX_WORDS];
	size_t at;
	int i, k, n, want = fe->n_items + !!extra;

	if (!want)
		return 0;
	at = snprintf(line, sizeof(line), "convert %s", fe->currency);
	for (i = 0; i < fe->n_items; i++) {
		k = snprintf(line + at, sizeof(line) - at, " %" PRIu64, fe->items[i].usd);
		if (k < 0 || (size_t)k >= sizeof(line) - at)
			return fail(fe, 400, "too many products");
		at += k;
	}
	if (extra) {
		k = snprintf(line + at, sizeof(line) - at, " %" PRIu64, *extra);
		if (k < 0 || (size_t)k >= sizeof(line) - at)
			return fail(fe, 400, "too many products");
	}
	if (call(fe, "currency", 0, ans, sizeof(ans), "%s", line))
		return -1;
	n = bq_split(ans, w, BQ_MAX_WORDS);
	if (n != want + 1 || strcmp(w[0], fe->currency))
		return fail(fe, 502, "currency: malformed answer");
	for (i = 0; i < want; i++) {
		uint64_t v;

		if (bq_parse_u64(w[i + 1], UINT64_MAX / 1000, &v))
			return fail(fe, 502, "currency: malformed amount");
		if (i < fe->n_items)
			fe->items[i].price = v;
		else
			*extra = v;
	}
	return 0;
}

/* The user's cart into fe->items (ids and quantities). */
static int cart_get(struct fe *fe)
{
	char ans[BQ_MSG_MAX], *line, *save = NULL, *sp;
	uint64_t qty;

	if (call(fe, "cart", user_key(fe->user), ans, sizeof(ans), "get %s", fe->user))
		return -1;
	fe->n_items = 0;
	for (line = strtok_r(ans, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		sp = strchr(line, ' ');
		if (!sp || fe->n_items == FE_ITEMS)
			return fail(fe, 502, "cart: malformed answer");
		*sp = '\0';
		if (!product_id_ok(line) || bq_parse_u64(sp + 1, 1000, &qty) || !qty)
			return fail(fe, 502, "cart: malformed answer");
		strcpy(fe->items[fe->n_items].id, line);
		fe->items[fe->n_items].qty = qty;
		fe->n_items++;
	}
	return 0;
}

/* "recommended ID ..." for the page, without the items shown. */
static int recommend(struct fe *fe)
{
	char line[BQ_MSG_MAX], ans[BQ_MSG_MAX];
	size_t at;
	int i, k;

	at = snprintf(line, sizeof(line), "recommend %d", FE_RECOMMEND);
	for (i = 0; i < fe->n_items; i++) {
		k = snprintf(line + at, sizeof(line) - at, " %s", fe->items[i].id);
		if (k < 0 || (size_t)k >= sizeof(line) - at)
			return fail(fe, 400, "too many products");
		at += k;
	}
	if (call(fe, "recommendation", 0, ans, sizeof(ans), "%s", line))
		return -1;
	ans[strcspn(ans, "\n")] = '\0';
	page(fe, "recommended %s\n", ans);
	return 0;
}

/* "ID NAME QTY x PRICE = LINE" lines; the subtotal and item count. */
static void item_lines(struct fe *fe, uint64_t *sub, unsigned int *items)
{
	char a[32], b[32];
	int i;

	*sub = 0;
	*items = 0;
	for (i = 0; i < fe->n_items; i++) {
		const struct fe_item *it = &fe->items[i];

		money(a, sizeof(a), it->price, fe->decimals);
		money(b, sizeof(b), it->price * it->qty, fe->decimals);
		page(fe, "%s %s %u x %s = %s\n", it->id, it->name, it->qty, a, b);
		*sub += it->price * it->qty;
		*items += it->qty;
	}
}

/* ------------------------------------------------------------ pages */

static int page_home(struct fe *fe)
{
	char ans[BQ_MSG_MAX], a[32];
	int i;

	if (call(fe, "catalog", 0, ans, sizeof(ans), "list") ||
	    parse_catalog(fe, ans, -1) || convert(fe, NULL))
		return -1;
	page(fe, "boutique %s\n", fe->currency);
	for (i = 0; i < fe->n_items; i++) {
		money(a, sizeof(a), fe->items[i].price, fe->decimals);
		page(fe, "%s %s %s\n", fe->items[i].id, fe->items[i].name, a);
	}
	return 0;
}

static int page_product(struct fe *fe)
{
	char a[32];

	fe->n_items = 1;
	strcpy(fe->items[0].id, fe->id);
	fe->items[0].qty = 1;
	if (catalog_get(fe) || convert(fe, NULL))
		return -1;
	money(a, sizeof(a), fe->items[0].price, fe->decimals);
	page(fe, "product %s %s %s %s %s\n", fe->items[0].id, fe->items[0].name,
	     fe->items[0].category, a, fe->currency);
	return recommend(fe);
}

static int page_cart(struct fe *fe)
{
	char line[BQ_MSG_MAX], ans[BQ_MSG_MAX], a[32];
	unsigned int items;
	uint64_t sub;
	size_t at;
	int i;

	if (fe->n_add) {
		/* every product must exist before any is added */
		fe->n_items = fe->n_add;
		for (i = 0; i < fe->n_add; i++)
			strcpy(fe->items[i].id, fe->add[i]);
		if (catalog_get(fe))
			return -1;
		at = snprintf(line, sizeof(line), "add %s", fe->user);
		for (i = 0; i < fe->n_add; i++)
			at += snprintf(line + at, sizeof(line) - at, " %s", fe->add[i]);
		if (call(fe, "cart", user_key(fe->user), ans, sizeof(ans), "%s", line))
			return -1;
	}
	if (cart_get(fe) || catalog_get(fe) || convert(fe, NULL))
		return -1;
	page(fe, "cart %s %s\n", fe->user, fe->currency);
	item_lines(fe, &sub, &items);
	money(a, sizeof(a), sub, fe->decimals);
	page(fe, "items %u subtotal %s\n", items, a);
	return recommend(fe);
}

static int page_checkout(struct fe *fe)
{
	char line[BQ_MSG_MAX], ans[BQ_MSG_MAX], *w[8], s[4][32];
	uint64_t ship = FE_SHIP_USD, v[4];
	unsigned int items;
	uint64_t sub;
	size_t at;
	int i, k;

	if (cart_get(fe))
		return -1;
	if (!fe->n_items)
		return fail(fe, 400, "the cart is empty");
	if (catalog_get(fe) || convert(fe, &ship))
		return -1;
	at = snprintf(line, sizeof(line), "order %s %s %" PRIu64, fe->user, fe->currency, ship);
	for (i = 0; i < fe->n_items; i++) {
		k = snprintf(line + at, sizeof(line) - at, " %" PRIu64 "x%u",
			     fe->items[i].price, fe->items[i].qty);
		if (k < 0 || (size_t)k >= sizeof(line) - at)
			return fail(fe, 400, "too many products");
		at += k;
	}
	if (call(fe, "checkout", 0, ans, sizeof(ans), "%s", line))
		return -1;
	if (bq_split(ans, w, 8) != 6 || strcmp(w[0], "ORDER") || strncmp(w[1], "SPRY-", 5))
		return fail(fe, 502, "checkout: malformed answer");
	for (i = 0; i < 4; i++) {
		if (bq_parse_u64(w[i + 2], UINT64_MAX / 1000, &v[i]))
			return fail(fe, 502, "checkout: malformed answer");
		money(s[i], sizeof(s[i]), v[i], fe->decimals);
	}
	/* the order is placed: the cart goes */
	if (call(fe, "cart", user_key(fe->user), ans, sizeof(ans), "empty %s", fe->user))
		return -1;
	page(fe, "order %s %s %s\n", w[1], fe->user, fe->currency);
	item_lines(fe, &sub, &items);
	if (sub != v[0])
		return fail(fe, 502, "checkout: subtotal %" PRIu64 ", expected %" PRIu64,
			    v[0], sub);
	page(fe, "items %u subtotal %s tax %s shipping %s total %s\n", items, s[0], s[1],
	     s[2], s[3]);
	return recommend(fe);
}

int bq_frontend(struct spry_req *req, void *user)
{
	struct fe *fe;
	int ret;

	(void)user;
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->req = req;
	fe->status = 200;
	if (!parse_request(fe)) {
		switch (fe->op) {
		case OP_HOME:
			page_home(fe);
			break;
		case OP_PRODUCT:
			page_product(fe);
			break;
		case OP_CART:
			page_cart(fe);
			break;
		default:
			page_checkout(fe);
			break;
		}
	}
	if (fe->overflow)
		fail(fe, 500, "page too large");
	ret = spry_req_reply(req, fe->status, "text/plain; charset=utf-8", fe->page, fe->at);
	free(fe);
	return ret;
}
