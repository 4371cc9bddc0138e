// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * recommendation: products like the ones given, without them.
 *
 *   recommend N ID...  ->  "ID ID ..." (at most N, 1..10; empty line if none)
 *
 * First the products of the given products' categories, then (to fill N)
 * any others, both in catalog order; never a given id.  With no ids: the
 * first N of the catalog.  Deterministic, so pages can be checked.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "examples/boutique/boutique.h"

#define REC_MAX		10

static bool listed(char **ids, int n, const char *id)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(ids[i], id))
			return true;
	return false;
}

static bool same_category(char **ids, int n, const char *category)
{
	const struct bq_product *p;
	int i;

	for (i = 0; i < n; i++) {
		p = bq_product_find(ids[i]);
		if (p && !strcmp(p->category, category))
			return true;
	}
	return false;
}

int bq_recommendation(struct spry_req *req, void *user)
{
	char in[BQ_MSG_MAX], out[BQ_MSG_MAX], *w[BQ_MAX_WORDS];
	const struct bq_product *p;
	uint64_t want;
	size_t at = 0, i;
	int n, pass, got = 0, k, ret;

	(void)user;
	ret = bq_payload_str(req, in, sizeof(in));
	if (ret)
		return ret;
	n = bq_split(in, w, BQ_MAX_WORDS);
	if (n < 2 || strcmp(w[0], "recommend") || bq_parse_u64(w[1], REC_MAX, &want) ||
	    !want) {
		at = snprintf(out, sizeof(out), "ERR bad-request recommendation\n");
		return spry_req_reply(req, 0, NULL, out, at);
	}
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < bq_n_products && (uint64_t)got < want; i++) {
			p = &bq_products[i];
			if (listed(w + 2, n - 2, p->id))
				continue;
			/* pass 0: same categories; pass 1: the others */
			if (same_category(w + 2, n - 2, p->category) != !pass)
				continue;
			k = snprintf(out + at, sizeof(out) - at, "%s%s", got ? " " : "", p->id);
			if (k < 0 || (size_t)k >= sizeof(out) - at)
				return -EMSGSIZE;
			at += k;
			got++;
		}
	}
	out[at++] = '\n';
	return spry_req_reply(req, 0, NULL, out, at);
}
