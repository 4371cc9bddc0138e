// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * catalog: the product table and lookups.
 *
 *   list          every product, "ID|PRICE|CATEGORY|NAME", table order
 *   get ID...     the products asked for, in that order (repeats kept);
 *                 any unknown id: "ERR unknown-product ID" instead
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "examples/boutique/boutique.h"

/* Prices in USD cents. */
const struct bq_product bq_products[] = {
	{ "P1",  "Sunglasses",		 1999, "accessories" },
	{ "P2",  "Tank Top",		 1899, "clothing" },
	{ "P3",  "Watch",		10999, "accessories" },
	{ "P4",  "Loafers",		 8999, "footwear" },
	{ "P5",  "Hairdryer",		 2499, "beauty" },
	{ "P6",  "Candle Holder",	 1875, "decor" },
	{ "P7",  "Salt & Pepper Shakers", 1849, "kitchen" },
	{ "P8",  "Bamboo Glass Jar",	  549, "kitchen" },
	{ "P9",  "Mug",			  899, "kitchen" },
	{ "P10", "Vintage Typewriter",	 6799, "vintage" },
	{ "P11", "Vintage Camera Lens",	 1249, "vintage" },
	{ "P12", "Record Player",	 6550, "vintage" },
	{ "P13", "City Bike",		78999, "cycling" },
	{ "P14", "Air Plant",		 1230, "garden" },
	{ "P15", "Terrarium",		 3645, "garden" },
	{ "P16", "Film Camera",		 2245, "photography" },
	{ "P17", "Camera Tripod",	 3499, "photography" },
	{ "P18", "Wool Scarf",		 2899, "clothing" },
	{ "P19", "Running Shoes",	11999, "footwear" },
	{ "P20", "Bike Helmet",		 4599, "cycling" },
};
const size_t bq_n_products = sizeof(bq_products) / sizeof(bq_products[0]);

const struct bq_product *bq_product_find(const char *id)
{
	size_t i;

	for (i = 0; i < bq_n_products; i++)
		if (!strcmp(bq_products[i].id, id))
			return &bq_products[i];
	return NULL;
}

static int line(char *out, size_t size, size_t *at, const struct bq_product *p)
{
	int n = snprintf(out + *at, size - *at, "%s|%u|%s|%s\n", p->id, p->usd_cents,
			 p->category, p->name);

	if (n < 0 || (size_t)n >= size - *at)
		return -EMSGSIZE;
	*at += n;
	return 0;
}

int bq_catalog(struct spry_req *req, void *user)
{
	char in[BQ_MSG_MAX], out[BQ_MSG_MAX], *w[BQ_MAX_WORDS];
	const struct bq_product *p;
	size_t at = 0, i;
	int n, ret;

	(void)user;
	ret = bq_payload_str(req, in, sizeof(in));
	if (ret)
		return ret;
	n = bq_split(in, w, BQ_MAX_WORDS);
	if (n == 1 && !strcmp(w[0], "list")) {
		for (i = 0; i < bq_n_products; i++) {
			ret = line(out, sizeof(out), &at, &bq_products[i]);
			if (ret)
				return ret;
		}
	} else if (n >= 2 && !strcmp(w[0], "get")) {
		for (i = 1; i < (size_t)n; i++) {
			p = bq_product_find(w[i]);
			if (!p) {
				at = snprintf(out, sizeof(out), "ERR unknown-product %.*s\n",
					      BQ_ID_LEN * 2, w[i]);
				break;
			}
			ret = line(out, sizeof(out), &at, p);
			if (ret)
				return ret;
		}
	} else {
		at = snprintf(out, sizeof(out), "ERR bad-request catalog\n");
	}
	return spry_req_reply(req, 0, NULL, out, at);
}
