/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's part in fan-outs (docs/WORKFLOWS.md, "Fan-out and fan-in"): what
 * only the daemon, which sees an instance go, can do for its callers.
 */
#ifndef SPRYD_FAN_H
#define SPRYD_FAN_H

#include "spryd/spryd.h"

/*
 * Instance @in is going (out of the sockhash already, before its slot is
 * cleared): answer through the router every fan-out branch it held
 * (SPRY_ST_CALLEE_GONE), which gives each caller its budget back and a
 * failure for that branch, and forget the branches it had out itself.
 */
void fan_inst_gone(struct spryd *d, struct spryd_inst *in);

/*
 * At start: the records an earlier spryd's instances left (their callers
 * register again with budgets from 0; nobody waits for those answers).
 */
void fan_reset(struct spryd *d);

#endif /* SPRYD_FAN_H */
