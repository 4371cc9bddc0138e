// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * checkout: totals an order and gives it an id.
 *
 *   order USER CUR SHIP PRICExQTY...
 *     -> "ORDER SPRY-NNNNNN SUBTOTAL TAX SHIPPING TOTAL"
 *
 * Amounts are minor units of CUR, already converted (the frontend asks the
 * currency service; a callee does not call on).  subtotal = sum of
 * price x qty; tax = 8 % of the subtotal rounded half up, (subtotal * 8 +
 * 50) / 100; shipping = SHIP, free from 3 items on; total = the three.
 * Order ids count up per instance from SPRY-000001.  Emptying the cart is
 * the frontend's next call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "examples/boutique/boutique.h"

#define MAX_AMOUNT	1000000000000ULL	/* per price, and shipping */
#define MAX_QTY		99
#define FREE_SHIP_ITEMS	3

static unsigned int next_order = 1;

int bq_checkout(struct spry_req *req, void *user)
{
	char in[BQ_MSG_MAX], out[BQ_MSG_MAX], *w[BQ_MAX_WORDS], *x;
	uint64_t ship, price, qty, sub = 0, items = 0, tax;
	size_t at;
	int n, i, ret;

	(void)user;
	ret = bq_payload_str(req, in, sizeof(in));
	if (ret)
		return ret;
	n = bq_split(in, w, BQ_MAX_WORDS);
	if (n < 5 || strcmp(w[0], "order") || !bq_user_ok(w[1]) ||
	    bq_currency_decimals(w[2]) < 0 || bq_parse_u64(w[3], MAX_AMOUNT, &ship))
		goto bad;
	for (i = 4; i < n; i++) {
		x = strchr(w[i], 'x');
		if (!x)
			goto bad;
		*x = '\0';
		if (bq_parse_u64(w[i], MAX_AMOUNT, &price) ||
		    bq_parse_u64(x + 1, MAX_QTY, &qty) || !qty)
			goto bad;
		sub += price * qty;		/* <= 92 * 10^12 * 99: no overflow */
		items += qty;
	}
	tax = (sub * 8 + 50) / 100;
	if (items >= FREE_SHIP_ITEMS)
		ship = 0;
	at = snprintf(out, sizeof(out), "ORDER SPRY-%06u %" PRIu64 " %" PRIu64 " %" PRIu64
		      " %" PRIu64 "\n", next_order % 1000000, sub, tax, ship,
		      sub + tax + ship);
	next_order++;
	return spry_req_reply(req, 0, NULL, out, at);
bad:
	at = snprintf(out, sizeof(out), "ERR bad-request checkout\n");
	return spry_req_reply(req, 0, NULL, out, at);
}
