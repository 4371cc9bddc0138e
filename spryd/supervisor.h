/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's supervisor room (supervisor.c): the instances of declared
 * functions (lib/decl.h).  Reads the declarations from the state
 * directory, starts instances (spawn.c), watches them (pidfd in the loop),
 * scales them (autoscale.c), holds and releases requests while they start
 * (the request core's activation), adopts the instances an earlier spryd
 * started.
 */
#ifndef SPRYD_SUPERVISOR_H
#define SPRYD_SUPERVISOR_H

#include <stdint.h>

struct spryd;

void supervisor_opts_default(struct spryd *d);
int supervisor_init(struct spryd *d);
/* Loop timer hook: declarations, activation, the autoscaler, restarts. */
void supervisor_timer(struct spryd *d, uint64_t now, uint64_t *next);
/* Stop (SIGTERM, then SIGKILL) and reap every instance it started. */
void supervisor_fini(struct spryd *d);
/* Is @pid one of its instances (any state), templates or their spares? */
bool supervisor_pid_known(struct spryd *d, pid_t pid);

#endif /* SPRYD_SUPERVISOR_H */
