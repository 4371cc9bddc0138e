// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's front room (spryd/front.h), the registry of fronts: the table of fronts, and the
 * calls that reach every front at once (per iteration, deadlines, stop,
 * shutdown, metrics).  A request's completion goes straight through
 * d->fronts[r->owner]->complete (entry.c).
 */
#include <errno.h>

#include "spryd/spryd.h"

int front_register(struct spryd *d, const struct spryd_front_ops *ops)
{
	if (d->n_fronts == SPRYD_MAX_FRONTS)
		return -ENOSPC;
	d->fronts[d->n_fronts] = ops;
	return (int)d->n_fronts++;
}

void front_run_all(struct spryd *d)
{
	unsigned int i;

	for (i = 0; i < d->n_fronts; i++)
		if (d->fronts[i]->run)
			d->fronts[i]->run(d);
}

void front_flush_all(struct spryd *d)
{
	unsigned int i;

	for (i = 0; i < d->n_fronts; i++)
		if (d->fronts[i]->flush)
			d->fronts[i]->flush(d);
}

void front_timer_all(struct spryd *d, uint64_t now, uint64_t *next)
{
	unsigned int i;

	for (i = 0; i < d->n_fronts; i++)
		if (d->fronts[i]->timer)
			d->fronts[i]->timer(d, now, next);
}

void front_stop_all(struct spryd *d)
{
	unsigned int i;

	for (i = 0; i < d->n_fronts; i++)
		if (d->fronts[i]->stop)
			d->fronts[i]->stop(d);
}

void front_shutdown_all(struct spryd *d)
{
	unsigned int i;

	for (i = 0; i < d->n_fronts; i++)
		if (d->fronts[i]->shutdown)
			d->fronts[i]->shutdown(d);
}

void front_metrics_all(struct spryd *d, struct mbuf *m)
{
	unsigned int i;

	for (i = 0; i < d->n_fronts; i++)
		if (d->fronts[i]->metrics)
			d->fronts[i]->metrics(d, m);
}
