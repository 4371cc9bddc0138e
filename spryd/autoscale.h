/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's autoscale room (autoscale.c): how many instances a declared
 * function should have, from the concurrency observed over time (Knative
 * KPA's stable and panic windows).  Pure: no syscall, no spryd state; the
 * supervisor (supervisor.c) feeds it samples and acts on the answer.
 */
#ifndef SPRYD_AUTOSCALE_H
#define SPRYD_AUTOSCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AS_SAMPLES	512	/* ring of samples (the stable window's) */
#define AS_PANIC_RATIO	2.0	/* panic: the panic window wants 2x the instances */
#define AS_BURST	4	/* scale-up step: at most x2 or +4 instances */

struct as_cfg {
	uint64_t	stable_ns;
	uint64_t	panic_ns;
};

struct as_in {
	uint64_t	now;
	double		conc;		/* requests in flight + held, now */
	bool		active;		/* a request was delivered since the last sample */
	uint32_t	ready;		/* instances that take requests */
	uint32_t	min, max, target;
	uint64_t	idle_ns;
};

struct as_state {
	uint64_t	t[AS_SAMPLES];
	float		c[AS_SAMPLES];
	uint32_t	head, n;
	bool		panic;
	uint64_t	panic_since;	/* last time the panic condition held */
	uint64_t	last_active;
	uint64_t	last_up;	/* last scale-up (no scale-down within a stable window) */
	uint32_t	desired;
};

void autoscale__init(struct as_state *st, uint64_t now, uint32_t desired);
/*
 * The desired instance count after sample @in, with the reason in @why:
 * stable window average over target, panic when the panic window asks for
 * AS_PANIC_RATIO times the ready instances (no scale-down while
 * panicking), scale-up bounded to x2 or +AS_BURST per decision,
 * scale-down one at a time and not within a stable window of a scale-up,
 * min once idle for idle_ns, at least one while requests are seen.
 */
uint32_t autoscale__decide(struct as_state *st, const struct as_cfg *cfg,
			   const struct as_in *in, char *why, size_t len);

#endif /* SPRYD_AUTOSCALE_H */
