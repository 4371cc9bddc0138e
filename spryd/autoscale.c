// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's autoscale room (autoscale.h).  Averages over windows of samples
 * damp the noise of one sample (a request in flight or not at the instant
 * of the sample); the stable window (default 60 s) decides in steady state,
 * the panic window (6 s) reacts to a burst; scale-down waits a stable
 * window after a scale-up and goes one instance per decision, so a load
 * that oscillates around a boundary does not flap.
 */
#include <stdio.h>
#include <string.h>

#include "spryd/autoscale.h"

void autoscale__init(struct as_state *st, uint64_t now, uint32_t desired)
{
	memset(st, 0, sizeof(*st));
	(void)now;
	st->last_active = 0;	/* never: a function starts idle, at min */
	st->desired = desired;
}

static double window_avg(const struct as_state *st, uint64_t now, uint64_t win)
{
	double sum = 0;
	uint32_t i, k, n = 0;

	for (i = 0; i < st->n; i++) {
		k = (st->head + AS_SAMPLES - 1 - i) % AS_SAMPLES;
		if (now - st->t[k] > win)
			break;
		sum += st->c[k];
		n++;
	}
	return n ? sum / n : 0;
}

static uint32_t ceil_div(double v, uint32_t target)
{
	double q = v / target;
	uint32_t w;

	if (q > 65536)
		return 65536;
	w = (uint32_t)q;
	return (double)w < q ? w + 1 : w;
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

uint32_t autoscale__decide(struct as_state *st, const struct as_cfg *cfg,
			   const struct as_in *in, char *why, size_t len)
{
	uint32_t want, want_panic, cap, prev = st->desired, base;
	double avg_s, avg_p;
	const char *mode;

	st->t[st->head] = in->now;
	st->c[st->head] = (float)in->conc;
	st->head = (st->head + 1) % AS_SAMPLES;
	if (st->n < AS_SAMPLES)
		st->n++;
	if (in->active || in->conc > 0)
		st->last_active = in->now;
	avg_s = window_avg(st, in->now, cfg->stable_ns);
	avg_p = window_avg(st, in->now, cfg->panic_ns);
	want = ceil_div(avg_s, in->target);
	want_panic = ceil_div(avg_p, in->target);
	base = in->ready ? in->ready : 1;
	if (want_panic >= AS_PANIC_RATIO * base && want_panic > in->ready) {
		if (!st->panic)
			st->panic_since = in->now;
		st->panic = true;
		st->panic_since = in->now;
	} else if (st->panic && in->now - st->panic_since >= cfg->stable_ns) {
		st->panic = false;
	}
	mode = st->panic ? "panic" : "stable";
	if (st->panic && want_panic > want)
		want = want_panic;
	if (st->panic && want < prev)
		want = prev;	/* no scale-down while panicking */
	/* recent work keeps one instance until the idle time passes */
	if (in->now - st->last_active < in->idle_ns && want < 1)
		want = 1;
	if (in->conc > 0 && want < 1)
		want = 1;	/* activation */
	want = clamp(want, in->min, in->max);
	if (in->now - st->last_active >= in->idle_ns && !st->panic) {
		want = in->min;	/* idle: straight to min */
		mode = "idle";
	} else if (want > prev) {
		cap = base * 2 > base + AS_BURST ? base * 2 : base + AS_BURST;
		if (want > cap && prev < cap)
			want = cap;
		else if (want > cap)
			want = prev;
		st->last_up = in->now;
	} else if (want < prev) {
		if (in->now - st->last_up < cfg->stable_ns) {
			want = prev;	/* too soon after a scale-up */
		} else {
			want = prev - 1;
		}
	}
	if (why && len)
		snprintf(why, len, "%s: concurrency %.2f (stable %.2f, panic %.2f) target %u, "
			 "ready %u -> %u", mode, in->conc, avg_s, avg_p, in->target, in->ready,
			 want);
	st->desired = want;
	return want;
}
