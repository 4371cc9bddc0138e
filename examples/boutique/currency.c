// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * currency: converts USD cents to another currency at fixed rates.
 *
 *   convert CUR CENTS...  ->  "CUR AMOUNT AMOUNT ..."
 *
 * A rate is the number of target minor units one USD cent is worth, in
 * millionths (EUR 890300: 1 USD = 0.8903 EUR; JPY 1495000: 1 USD =
 * 149.50 JPY, and JPY has no minor unit).  Each amount is converted on
 * its own, in integers, rounding half up:
 *
 *   amount = (cents * rate + 500000) / 1000000
 *
 * so a line total is (converted unit price) x quantity, never a converted
 * sum.  Amounts up to 10^12 cents.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "examples/boutique/boutique.h"

#define MAX_CENTS	1000000000000ULL

static const struct {
	const char	*code;
	uint32_t	rate;		/* target minor units per USD cent, x 10^6 */
	int		decimals;
} rates[] = {
	{ "USD", 1000000, 2 },
	{ "EUR",  890300, 2 },
	{ "GBP",  771500, 2 },
	{ "CAD", 1365000, 2 },
	{ "CHF",  880100, 2 },
	{ "JPY", 1495000, 0 },
};

static int rate_find(const char *cur)
{
	size_t i;

	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (!strcmp(rates[i].code, cur))
			return (int)i;
	return -ENOENT;
}

int bq_currency_decimals(const char *cur)
{
	int i = rate_find(cur);

	return i < 0 ? i : rates[i].decimals;
}

int bq_currency(struct spry_req *req, void *user)
{
	char in[BQ_MSG_MAX], out[BQ_MSG_MAX], *w[BQ_MAX_WORDS];
	uint64_t cents;
	size_t at;
	int n, i, r, ret;

	(void)user;
	ret = bq_payload_str(req, in, sizeof(in));
	if (ret)
		return ret;
	n = bq_split(in, w, BQ_MAX_WORDS);
	if (n < 2 || strcmp(w[0], "convert")) {
		at = snprintf(out, sizeof(out), "ERR bad-request currency\n");
		return spry_req_reply(req, 0, NULL, out, at);
	}
	r = rate_find(w[1]);
	if (r < 0) {
		at = snprintf(out, sizeof(out), "ERR unknown-currency %.8s\n", w[1]);
		return spry_req_reply(req, 0, NULL, out, at);
	}
	at = snprintf(out, sizeof(out), "%s", rates[r].code);
	for (i = 2; i < n; i++) {
		int k;

		if (bq_parse_u64(w[i], MAX_CENTS, &cents)) {
			at = snprintf(out, sizeof(out), "ERR bad-amount %.20s\n", w[i]);
			return spry_req_reply(req, 0, NULL, out, at);
		}
		k = snprintf(out + at, sizeof(out) - at, " %" PRIu64,
			     (cents * rates[r].rate + 500000) / 1000000);
		if (k < 0 || (size_t)k >= sizeof(out) - at)
			return -EMSGSIZE;
		at += k;
	}
	if (at + 1 >= sizeof(out))
		return -EMSGSIZE;
	out[at++] = '\n';
	return spry_req_reply(req, 0, NULL, out, at);
}
