/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's part in mailboxes (docs/PROCESS.md, "Mailboxes"): what only the
 * daemon, which sees a process die, can do.
 */
#ifndef SPRYD_MAIL_H
#define SPRYD_MAIL_H

#include <stdbool.h>

#include "spryd/spryd.h"

/*
 * An app's instance @in is going (before its slot is cleared and its
 * process forgotten): answer the mails it had not answered (SPRY_ST_NO_PROCESS
 * from spryd through the router, so their senders count them back), forget
 * the mails it sent that others hold, and reclaim the pool buffers of the
 * mails sent to its process (unread ones included).
 */
void mail_inst_gone(struct spryd *d, struct spryd_inst *in);

#endif /* SPRYD_MAIL_H */
