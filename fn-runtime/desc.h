/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The runtime's check of an arriving descriptor, before any payload byte
 * is touched (fn-runtime/desc.c).  Internal to libspry and its fuzzer.
 */
#ifndef SPRY_FN_RUNTIME_DESC_H
#define SPRY_FN_RUNTIME_DESC_H

#include <stdint.h>

#include <linux/types.h>
#include "spry/abi.h"

struct spry_pool;

/* What the runtime does with a descriptor. */
enum spry_desc_verdict {
	SPRY_DESC_RUN,		/* run the handler on the payload */
	SPRY_DESC_PASS,		/* error status: send on untouched */
	SPRY_DESC_LATE_REPLY,	/* a REPLY of this chain nobody waits for */
	SPRY_DESC_FOREIGN,	/* bad version/chain/flags: refuse (BAD_DESC) */
	SPRY_DESC_BAD_BOUNDS,	/* meta/len/cap/off outside one pool buffer */
	SPRY_DESC_DROP,		/* a CALL for another fn: never send it */
};

/*
 * Judge @d as the instance of fn @fn in chain @chain whose pool is @pool.
 * Pure: reads @d and the pool's geometry, writes nothing.  With
 * SPRY_DESC_RUN, [d->off, d->off + d->cap) lies inside one buffer of
 * @pool, d->meta_len + d->len <= d->cap, and *@buf (if non-NULL) gets the
 * pointer to d->off.
 */
enum spry_desc_verdict spry_desc_check(const struct spry_desc *d,
				       uint16_t chain, uint16_t fn,
				       const struct spry_pool *pool, void **buf);

#endif /* SPRY_FN_RUNTIME_DESC_H */
