/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's metrics room (metrics.c): the Prometheus text of GET /metrics.
 * Each front adds its part through its metrics op (front.h); the core's
 * (chains, pools, router, functions) is written here.
 */
#ifndef SPRYD_METRICS_H
#define SPRYD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct spryd;

/* A growing text buffer; oom set once an allocation failed. */
struct mbuf {
	char	*p;
	size_t	len;
	size_t	cap;
	bool	oom;
};

void mb_printf(struct mbuf *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * The whole exposition into a new buffer (m->p: malloc'd, the caller
 * frees it); 0, or -ENOMEM (nothing to free).
 */
int metrics_render(struct spryd *d, struct mbuf *m);

#endif /* SPRYD_METRICS_H */
