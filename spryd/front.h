/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's front interface: how a room that starts requests (a front)
 * plugs into the daemon.  Fronts: the control socket's INVOKE (ctl.c), HTTP
 * (gateway.c), datagrams (dgram.c).  Each registers one ops table and gets
 * a front id; a request it starts carries (id, the front's own cookie
 * conn/gen) as its owner, and the request core (entry.c) hands the answer
 * back through the table: one indirect call per finished request, and
 * entry.c never names a front.
 */
#ifndef SPRYD_FRONT_H
#define SPRYD_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include "spryd/loop.h"

struct spryd;
struct spryd_req;
struct spry_desc;
struct mbuf;

#define SPRYD_MAX_FRONTS	4

struct spryd_front_ops {
	/* name + the events of the front's endpoints (ep->ops = &ops->ep) */
	struct spryd_ep_ops	ep;
	/*
	 * A request this front started finished.  @err 0: @desc came back
	 * (its buffer checked with spry_pool_ptr over meta_len + len);
	 * -errno (-ETIMEDOUT, -ECONNRESET, -EBADMSG, -EIO, -ESHUTDOWN,
	 * -EMSGSIZE): @desc NULL and @status the descriptor's status if one
	 * came back, else 0.  Returns true when the front took @desc's buffer
	 * (it frees it later), false when the core frees it.
	 */
	bool	(*complete)(struct spryd *d, const struct spryd_req *r, int err,
			    uint32_t status, const struct spry_desc *desc);
	/* each loop iteration, after the events (NULL: none) */
	void	(*run)(struct spryd *d);
	/* deadlines: like a loop timer hook (NULL: none) */
	void	(*timer)(struct spryd *d, uint64_t now, uint64_t *next);
	/*
	 * each loop iteration after the core sent the iteration's
	 * descriptors: what the front batched goes out (NULL: none)
	 */
	void	(*flush)(struct spryd *d);
	/* stop accepting new work (NULL: none) */
	void	(*stop)(struct spryd *d);
	/* after the core answered everything in flight: close everything */
	void	(*shutdown)(struct spryd *d);
	/* its part of /metrics (NULL: none) */
	void	(*metrics)(struct spryd *d, struct mbuf *m);
};

/* Register a front; its id (owner of its requests) or -ENOSPC. */
int front_register(struct spryd *d, const struct spryd_front_ops *ops);
/* Every registered front's op, in registration order. */
void front_run_all(struct spryd *d);
void front_flush_all(struct spryd *d);
void front_timer_all(struct spryd *d, uint64_t now, uint64_t *next);
void front_stop_all(struct spryd *d);
void front_shutdown_all(struct spryd *d);
void front_metrics_all(struct spryd *d, struct mbuf *m);

#endif /* SPRYD_FRONT_H */
