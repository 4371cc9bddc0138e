// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The runtime's descriptor check (fn-runtime/desc.h), factored out of
 * rt_handle() so that the fuzzer (fuzz/fuzz_desc.c) judges exactly what
 * the runtime judges.
 */
#include <stdbool.h>
#include <stddef.h>

#include "fn-runtime/desc.h"
#include "spry/spry.h"

#define DESC_KNOWN_FLAGS	(SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_STICKY)

enum spry_desc_verdict spry_desc_check(const struct spry_desc *d,
				       uint16_t chain, uint16_t fn,
				       const struct spry_pool *pool, void **buf)
{
	bool ours = d->version == SPRY_DESC_VERSION && d->chain == chain &&
		    !(d->flags & ~DESC_KNOWN_FLAGS);
	void *p;

	if (ours && (d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY)) == SPRY_DF_REPLY)
		return SPRY_DESC_LATE_REPLY;
	if (!ours || (d->flags & SPRY_DF_REPLY)) {
		/* a CALL for another fn must never be sent: it would get
		 * this socket quarantined */
		if (d->flags & SPRY_DF_CALL && !(d->flags & SPRY_DF_REPLY) &&
		    d->fn != fn)
			return SPRY_DESC_DROP;
		return SPRY_DESC_FOREIGN;
	}
	if (d->flags & SPRY_DF_CALL && d->fn != fn)
		return SPRY_DESC_DROP;
	if (d->status != SPRY_ST_OK)
		return SPRY_DESC_PASS;
	/* Bounds: the whole buffer inside one pool buffer, the data inside it. */
	if (d->meta_len > d->cap || d->len > d->cap - d->meta_len)
		return SPRY_DESC_BAD_BOUNDS;
	p = spry_pool_ptr(pool, d->off, d->cap);
	if (!p)
		return SPRY_DESC_BAD_BOUNDS;
	if (buf)
		*buf = p;
	return SPRY_DESC_RUN;
}

enum spry_mail_verdict spry_mail_check(const struct spry_desc *d, uint16_t chain,
				       const struct spry_pool *pool)
{
	if (!(d->flags & SPRY_DF_MAIL))
		return SPRY_MAIL_NONE;
	if (d->version != SPRY_DESC_VERSION || d->chain != chain ||
	    (d->flags & ~(SPRY_DF_MAIL | SPRY_DF_REPLY)))
		return SPRY_MAIL_FOREIGN;
	if (d->flags & SPRY_DF_REPLY)
		return SPRY_MAIL_ANSWER;
	if (d->len > d->cap || !spry_pool_ptr(pool, d->off, d->cap))
		return SPRY_MAIL_BAD_BUF;
	if (d->hop >= SPRY_MAIL_BOXES)
		return SPRY_MAIL_BAD_BOX;
	return SPRY_MAIL_TAKE;
}
