// SPDX-License-Identifier: GPL-2.0-only
/*
 * The mail room: spryd's part in mailboxes (mail.h, docs/PROCESS.md
 * "Mailboxes").  A mail's orphan answer that reaches spryd is counted by
 * the origin room (origin.c) as it reads.
 *
 * The router counts each instance's mails in spry_inst (bpf/skmsg_route.c,
 * "mailboxes"); spryd reads and changes them through its mapping with
 * atomic operations only, as the router updates them concurrently.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "spryd/mail.h"
#include "spryd/origin.h"
#include "spryd/spryd.h"

/* Giveback answers sent per origin send (one for each unanswered mail). */
#define MAIL_GIVE_BATCH	64

void mail_inst_gone(struct spryd *d, struct spryd_inst *in)
{
	struct spry_desc give[MAIL_GIVE_BATCH];
	struct spryd_chain *cs = &d->chains[in->chain];
	struct spry_inst_state *row, *st;
	uint64_t proc_id;
	uint32_t n, j, k, done, sent = 0, lost = 0;
	int reclaimed, err;

	if (!cs->app || !d->inst_mem || in->fn >= SPRY_MAX_FNS || in->idx >= SPRY_MAX_INST)
		return;
	row = &d->inst_mem[(uint32_t)in->fn * SPRY_MAX_INST + in->idx];
	/* written at its activation (process.c); app_proc may be cleared already */
	proc_id = __atomic_load_n(&row->proc_id, __ATOMIC_ACQUIRE);

	/*
	 * Mails it sent that others still hold: their answers would reach
	 * whoever takes this slot next.  Zeroed, they go to spryd instead
	 * (counted by origin.c as it reads).
	 */
	for (j = 0; j < SPRY_MAX_INST; j++) {
		st = &d->inst_mem[(uint32_t)in->fn * SPRY_MAX_INST + j];
		if (j != in->idx)
			__atomic_exchange_n(&st->mail_from[in->idx], 0, __ATOMIC_ACQ_REL);
	}

	/* Mails sent to it and not answered: answered now, by spryd. */
	for (j = 0; j < SPRY_MAX_INST; j++) {
		n = __atomic_exchange_n(&row->mail_from[j], 0, __ATOMIC_ACQ_REL);
		while (n) {
			k = n > MAIL_GIVE_BATCH ? MAIL_GIVE_BATCH : n;
			memset(give, 0, k * sizeof(give[0]));
			for (uint32_t i = 0; i < k; i++) {
				give[i].version = SPRY_DESC_VERSION;
				give[i].flags = SPRY_DF_MAIL | SPRY_DF_REPLY;
				give[i].status = SPRY_ST_NO_PROCESS;
				give[i].chain = in->chain;
				give[i].key = proc_id;
				give[i].ret_fn = in->fn;
				give[i].ret_inst = (uint16_t)j;
			}
			err = origin_send_descs(d, give, k);
			done = err > 0 ? (uint32_t)err : 0;
			sent += done;
			n -= done;
			if (done < k) {
				/* every origin full or broken: these stay unanswered */
				lost += n;
				spryd_log("mail: answering %u mails of instance %u for dead instance %u: %u not sent (%s)",
					  n + done, j, in->idx, n,
					  err < 0 ? strerror(-err) : "the origins are full");
				break;
			}
		}
	}
	d->st.mail_given_back += sent;

	/* Every buffer of a mail to it: unread in its mailboxes, or unanswered. */
	reclaimed = 0;
	if (proc_id && cs->pool)
		reclaimed = spry_pool_reclaim(cs->pool, SPRY_MAIL_TAG(proc_id));
	if (reclaimed > 0)
		d->st.mail_reclaimed += (uint64_t)reclaimed;
	if (sent || lost || reclaimed > 0)
		spryd_vlog(d, "mail: process %" PRIu64 " (instance %u) gone: %u mails answered for it, %u could not be, %d buffers reclaimed",
			   proc_id, in->idx, sent, lost, reclaimed);
}
