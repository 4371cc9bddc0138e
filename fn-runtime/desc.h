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

/* What the runtime does with a descriptor flagged SPRY_DF_MAIL. */
enum spry_mail_verdict {
	SPRY_MAIL_NONE,		/* not a mail: spry_desc_check()'s */
	SPRY_MAIL_FOREIGN,	/* bad version, chain or flags: ignored, counted */
	SPRY_MAIL_ANSWER,	/* the answer to one of this process's mails */
	SPRY_MAIL_TAKE,		/* a mail to queue: its mailbox and buffer good */
	SPRY_MAIL_BAD_BOX,	/* mailbox >= SPRY_MAIL_BOXES: BAD_DESC, the buffer
				 * left to its sender (which frees it) */
	SPRY_MAIL_BAD_BUF,	/* len > cap or [off, off + cap) not in one buffer:
				 * BAD_DESC, the buffer untouched */
};

/*
 * Judge @d (a mail, or an answer to one) as a process of chain @chain
 * whose pool is @pool.  Pure, as spry_desc_check().  With SPRY_MAIL_TAKE
 * and SPRY_MAIL_BAD_BOX, [d->off, d->off + d->cap) lies inside one buffer
 * of @pool and d->len <= d->cap.
 */
enum spry_mail_verdict spry_mail_check(const struct spry_desc *d, uint16_t chain,
				       const struct spry_pool *pool);

#endif /* SPRY_FN_RUNTIME_DESC_H */
