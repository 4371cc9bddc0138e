/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * boutique: an online-boutique style shop on one spry chain.  A frontend
 * (the chain's only hop) calls five services with spry_req_call(), so the
 * request branches out and returns:
 *
 *   frontend -> cart, catalog, currency, checkout, recommendation
 *
 * One program, `boutique --service NAME --chain C --fn F ...`, runs any of
 * them (NAME defaults to the function name).  See README.md for the
 * frontend's request and response formats.
 *
 * The services speak one text line, words separated by spaces, answers
 * one item per line.  A service that cannot do what it is asked answers
 * "ERR <code> <detail>" (its reply is still OK: the frontend turns the
 * code into an HTTP status):
 *
 *   catalog         list                  -> "ID|PRICE|CATEGORY|NAME" lines
 *                   get ID...             -> same, in the order asked;
 *                                            ERR unknown-product ID
 *   currency        convert CUR CENTS...  -> "CUR AMOUNT..." (minor units)
 *                                            ERR unknown-currency CUR
 *   cart            add USER ID...        -> "OK N" (items in the cart)
 *                   get USER              -> "ID QTY" lines (oldest first)
 *                   empty USER            -> "OK 0"
 *   recommendation  recommend N ID...     -> "ID ID ..." (N at most)
 *   checkout        order USER CUR SHIP PRICExQTY...
 *                                         -> "ORDER ID SUBTOTAL TAX SHIPPING TOTAL"
 *
 * Prices are integers: USD cents in the catalog, minor units of the
 * requested currency after conversion (JPY has none).
 */
#ifndef BOUTIQUE_H
#define BOUTIQUE_H

#include <stddef.h>
#include <stdint.h>

#include "spry/spry.h"

#define BQ_MSG_MAX	4096	/* longest service request or answer */
#define BQ_MAX_WORDS	96	/* words in one service request */
#define BQ_ID_LEN	8	/* "P20" and NUL, with room */
#define BQ_USER_LEN	32	/* user names: [a-z0-9_-]{1,31} */
#define BQ_CALL_MS	2000	/* per service call */

struct bq_product {
	const char	*id;
	const char	*name;
	uint32_t	usd_cents;
	const char	*category;
};

/* The product table (catalog.c); the recommendation service shares it. */
extern const struct bq_product bq_products[];
extern const size_t bq_n_products;
const struct bq_product *bq_product_find(const char *id);

/* Split @s (NUL-terminated, modified) at spaces/tabs/newlines into at most
 * @max words.  Returns the count, or -E2BIG for more. */
int bq_split(char *s, char **words, int max);

/* The request payload as a NUL-terminated copy in @buf (@size bytes). */
int bq_payload_str(struct spry_req *req, char *buf, size_t size);

/* A user name: 1..31 of [a-z0-9_-]. */
int bq_user_ok(const char *user);

/* A decimal number without sign or junk, at most @max.  0 or -EINVAL. */
int bq_parse_u64(const char *s, uint64_t max, uint64_t *out);

int bq_catalog(struct spry_req *req, void *user);
int bq_currency(struct spry_req *req, void *user);
int bq_cart(struct spry_req *req, void *user);
/* The cart as an app whose processes are sessions (--service cart-session). */
extern const struct spry_app_fn bq_cart_session_fns[];
extern const size_t bq_cart_session_nfns;
int bq_recommendation(struct spry_req *req, void *user);
int bq_checkout(struct spry_req *req, void *user);
int bq_frontend(struct spry_req *req, void *user);

/* currency.c, shared with the frontend for formatting. */
int bq_currency_decimals(const char *cur);	/* -ENOENT unknown */

#endif /* BOUTIQUE_H */
