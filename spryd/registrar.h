/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's registrar room (registrar.c): functions' sockets, instances and
 * their maps, deaths and quarantines.
 */
#ifndef SPRYD_REGISTRAR_H
#define SPRYD_REGISTRAR_H

#include <stdint.h>

struct spryd;

/* Stale state of an earlier spryd, the TCP listener, the ctl handlers. */
int registrar_init(struct spryd *d);
/* The quarantine events' ring buffer. */
int registrar_events_init(struct spryd *d);
/* Stop accepting function sockets. */
void registrar_stop(struct spryd *d);
void registrar_fini(struct spryd *d);
/*
 * Take instance @in out of its function's spry_fns list (the router stops
 * choosing it; what it holds finishes): scale-down.  0 or -errno.
 */
struct spryd_inst;
int registrar_inst_drain(struct spryd *d, struct spryd_inst *in);
/* Loop timer hook: pending peers that never registered. */
void registrar_timer(struct spryd *d, uint64_t now, uint64_t *next);

#endif /* SPRYD_REGISTRAR_H */
