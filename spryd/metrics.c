// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's metrics room (spryd/metrics.h): the Prometheus text exposition
 * (version 0.0.4) served at GET /metrics by the HTTP front.  Built on
 * demand, never on the request path: the fronts' parts first (their
 * metrics ops, front.h: HTTP responses and latency, datagram counters),
 * then the core's: requests in flight and pool buffers per chain, the
 * router's verdicts, each function's deliveries and each instance's
 * in-flight descriptors (read from the pinned maps).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spryd/metrics.h"
#include "spryd/spryd.h"

void mb_printf(struct mbuf *m, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	char *np;
	int n;

	if (m->oom)
		return;
	for (;;) {
		room = m->cap - m->len;
		va_start(ap, fmt);
		n = vsnprintf(m->p + m->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			m->oom = true;
			return;
		}
		if ((size_t)n < room) {
			m->len += (size_t)n;
			return;
		}
		np = realloc(m->p, m->cap * 2 + (size_t)n);
		if (!np) {
			m->oom = true;
			return;
		}
		m->p = np;
		m->cap = m->cap * 2 + (size_t)n;
	}
}

static void metrics_chains(struct spryd *d, struct mbuf *m)
{
	struct spry_pool_stats pst;
	struct spryd_chain *cs;
	unsigned int i;

	mb_printf(m, "# HELP spry_inflight Requests of the chain in flight (zombies included).\n"
		  "# TYPE spry_inflight gauge\n");
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		if (cs->pool)
			mb_printf(m, "spry_inflight{chain=\"%s\"} %u\n", cs->name, cs->inflight);
	}
	mb_printf(m, "# HELP spry_pool_buffers Pool buffers of the chain by state.\n"
		  "# TYPE spry_pool_buffers gauge\n");
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		memset(&pst, 0, sizeof(pst));
		if (!cs->pool || spry_pool_stats(cs->pool, &pst))
			continue;
		mb_printf(m, "spry_pool_buffers{chain=\"%s\",state=\"free\"} %llu\n"
			  "spry_pool_buffers{chain=\"%s\",state=\"used\"} %llu\n",
			  cs->name, (unsigned long long)pst.n_free + pst.n_large_free,
			  cs->name, (unsigned long long)(pst.n_bufs - pst.n_free) +
				    (pst.n_large - pst.n_large_free));
	}
	mb_printf(m, "# HELP spry_invoke_refused_total INVOKEs on the control socket "
		  "from a user the chain does not let invoke it.\n"
		  "# TYPE spry_invoke_refused_total counter\n");
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		if (cs->invoke_refused)
			mb_printf(m, "spry_invoke_refused_total{chain=\"%s\"} %llu\n",
				  cs->refused_name, (unsigned long long)cs->invoke_refused);
	}
}

/* The functions of active chains: invocations (pass 0), per-instance in-flight (1). */
static void metrics_fns(struct spryd *d, struct mbuf *m, int pass)
{
	struct spry_inst_state is;
	struct spry_fn_stats fs;
	struct spry_chain rec;
	struct spry_fn f;
	char cname[SPRY_NAME_LEN], fname[SPRY_NAME_LEN];
	unsigned int i, k;

	for (i = 1; i < SPRY_MAX_FNS; i++) {
		if (spry_fn__get(&d->maps, (__u16)i, &f) || !(f.flags & SPRY_FF_ACTIVE) ||
		    !f.name[0] || !f.chain || f.chain >= SPRY_MAX_CHAINS ||
		    spry_chain__get(&d->maps, f.chain, &rec) || !rec.name[0])
			continue;
		memcpy(fname, f.name, SPRY_NAME_LEN);
		fname[SPRY_NAME_LEN - 1] = '\0';
		memcpy(cname, rec.name, SPRY_NAME_LEN);
		cname[SPRY_NAME_LEN - 1] = '\0';
		if (pass == 0) {
			if (!spry_fn_stats__read(&d->maps, (__u16)i, &fs))
				mb_printf(m, "spry_fn_invocations_total{chain=\"%s\",fn=\"%s\","
					  "instance=\"all\"} %llu\n",
					  cname, fname, (unsigned long long)fs.delivered);
			continue;
		}
		for (k = 0; k < f.n_inst && k < SPRY_MAX_INST; k++)
			if (!spry_inst__get(&d->maps, (__u16)i, f.inst[k], &is))
				mb_printf(m, "spry_fn_inflight{chain=\"%s\",fn=\"%s\","
					  "instance=\"%u\"} %d\n",
					  cname, fname, f.inst[k], is.inflight);
	}
}

static void metrics_router(struct spryd *d, struct mbuf *m)
{
	__u64 v[SPRY_V_MAX];
	unsigned int i;

	mb_printf(m, "# HELP spry_router_verdicts_total Router verdicts (all CPUs).\n"
		  "# TYPE spry_router_verdicts_total counter\n");
	if (!spry_verdicts__read(&d->maps, v))
		for (i = 0; i < SPRY_V_MAX; i++)
			mb_printf(m, "spry_router_verdicts_total{verdict=\"%s\"} %llu\n",
				  spry_verdict_name(i), (unsigned long long)v[i]);
	/* Per-instance delivery is not counted by the router: per function. */
	mb_printf(m, "# HELP spry_fn_invocations_total "
		  "Descriptors delivered to the function (all its instances).\n"
		  "# TYPE spry_fn_invocations_total counter\n");
	metrics_fns(d, m, 0);
	mb_printf(m, "# HELP spry_fn_inflight Descriptors an instance holds.\n"
		  "# TYPE spry_fn_inflight gauge\n");
	metrics_fns(d, m, 1);
}

/* Retries: of requests (entry.c's retry()) and of registrations. */
static void metrics_retries(struct spryd *d, struct mbuf *m)
{
	unsigned int i;

	mb_printf(m, "# HELP spry_request_retries_total Requests resubmitted from hop 0 "
		  "after the instance of the function holding them died (idempotent hops).\n"
		  "# TYPE spry_request_retries_total counter\n");
	for (i = 1; d->retries && i < SPRY_MAX_FNS; i++)
		if (d->retries[i].n)
			mb_printf(m, "spry_request_retries_total{chain=\"%s\",fn=\"%s\"} %llu\n",
				  d->retries[i].chain, d->retries[i].fn,
				  (unsigned long long)d->retries[i].n);
	/* The origins' sends (spryd/origin.c): batches of descriptors, by path. */
	mb_printf(m, "# HELP spry_origin_send_batches_total Batches of request descriptors "
		  "spryd sent to its chains: by send(), or as operations of the HTTP front's "
		  "io_uring ring (--desc-send ring).\n"
		  "# TYPE spry_origin_send_batches_total counter\n"
		  "spry_origin_send_batches_total{via=\"send\"} %llu\n"
		  "spry_origin_send_batches_total{via=\"ring\"} %llu\n"
		  "# HELP spry_origin_send_errors_total Such sends the router dropped or that "
		  "tore a descriptor (the origin is reset; requests no function had fail).\n"
		  "# TYPE spry_origin_send_errors_total counter\n"
		  "spry_origin_send_errors_total %llu\n",
		  (unsigned long long)d->st.send_batches, (unsigned long long)d->st.ring_batches,
		  (unsigned long long)d->st.send_errors);
	mb_printf(m, "# HELP spry_registrations_total Function instances registered "
		  "(re-registrations after a lost spryd included).\n"
		  "# TYPE spry_registrations_total counter\n"
		  "spry_registrations_total %llu\n"
		  "# HELP spry_registrations_refused_total Registrations refused "
		  "(a function retrying an unknown chain counts each attempt).\n"
		  "# TYPE spry_registrations_refused_total counter\n"
		  "spry_registrations_refused_total %llu\n",
		  (unsigned long long)d->st.registered, (unsigned long long)d->st.reg_refused);
	/* Mailboxes (spryd/mail.c); mails sent and refused are router verdicts. */
	mb_printf(m, "# HELP spry_mail_given_back_total Mails spryd answered (no process) "
		  "for a receiver that died or was swapped or deleted before answering them.\n"
		  "# TYPE spry_mail_given_back_total counter\n"
		  "spry_mail_given_back_total %llu\n"
		  "# HELP spry_mail_reclaimed_total Pool buffers of mails to a process that "
		  "went away (unread ones included), freed by spryd.\n"
		  "# TYPE spry_mail_reclaimed_total counter\n"
		  "spry_mail_reclaimed_total %llu\n"
		  "# HELP spry_mail_orphans_total Mail answers whose sender had gone.\n"
		  "# TYPE spry_mail_orphans_total counter\n"
		  "spry_mail_orphans_total %llu\n",
		  (unsigned long long)d->st.mail_given_back,
		  (unsigned long long)d->st.mail_reclaimed,
		  (unsigned long long)d->st.mail_orphans);
	/* Fan-out branches of dead callees (spryd/fan.c). */
	mb_printf(m, "# HELP spry_fan_given_back_total Fan-out branches spryd answered "
		  "(callee_gone) for a callee instance that went away holding them.\n"
		  "# TYPE spry_fan_given_back_total counter\n"
		  "spry_fan_given_back_total %llu\n"
		  "# HELP spry_fan_orphans_total Such answers the router gave back (the "
		  "branch answered meanwhile, or its caller gone).\n"
		  "# TYPE spry_fan_orphans_total counter\n"
		  "spry_fan_orphans_total %llu\n",
		  (unsigned long long)d->st.fan_given_back,
		  (unsigned long long)d->st.fan_orphans);
}

/* Declared functions (supervisor.c): instances and the autoscaler's decisions. */
static void metrics_scale(struct spryd *d, struct mbuf *m)
{
	static const struct {
		const char	*name, *type, *help;
	} series[] = {
		{ "spry_fn_desired_instances", "gauge", "Instances the autoscaler wants." },
		{ "spry_fn_actual_instances", "gauge", "Routable instances." },
		{ "spry_fn_starting_instances", "gauge", "Instances started, not yet registered." },
		{ "spry_fn_draining_instances", "gauge", "Instances being stopped." },
		{ "spry_fn_starts_total", "counter", "Instances started by spryd." },
		{ "spry_fn_start_failures_total", "counter",
		  "Failed starts (missing executable, exit before registering, start timeout)." },
		{ "spry_fn_crashes_total", "counter", "Registered instances that exited on their own." },
		{ "spry_fn_adopted_total", "counter", "Instances of an earlier spryd adopted." },
		{ "spry_fn_scale_ups_total", "counter", "Autoscaler decisions up (activations included)." },
		{ "spry_fn_scale_downs_total", "counter", "Autoscaler decisions down." },
	};
	const struct spryd_fn_scale *f;
	struct spryd_chain *cs;
	unsigned int i, k;
	uint64_t v;

	for (k = 0; d->scale && k < sizeof(series) / sizeof(series[0]); k++) {
		mb_printf(m, "# HELP %s %s\n# TYPE %s %s\n", series[k].name, series[k].help,
			  series[k].name, series[k].type);
		for (i = 0; i < SPRYD_SV_MAX_FNS; i++) {
			f = &d->scale[i];
			if (!f->used)
				continue;
			v = k == 0 ? f->desired : k == 1 ? f->actual : k == 2 ? f->starting :
			    k == 3 ? f->draining : k == 4 ? f->starts : k == 5 ? f->failures :
			    k == 6 ? f->crashes : k == 7 ? f->adopted : k == 8 ? f->scale_ups :
			    f->scale_downs;
			mb_printf(m, "%s{chain=\"%s\",fn=\"%s\"} %llu\n", series[k].name,
				  f->chain, f->fn, (unsigned long long)v);
		}
	}
	mb_printf(m, "# HELP spry_held_requests Requests held at the origin while the chain's "
		  "declared functions start.\n# TYPE spry_held_requests gauge\n");
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		if (cs->known && cs->n_managed)
			mb_printf(m, "spry_held_requests{chain=\"%s\"} %u\n", cs->name, cs->n_held);
	}
	mb_printf(m, "# HELP spry_held_requests_total Requests held (activation), by outcome "
		  "of the hold: held, refused (queue full: 503), failed (start failed: 503).\n"
		  "# TYPE spry_held_requests_total counter\n");
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		if (!cs->known || (!cs->n_managed && !cs->held_total))
			continue;
		mb_printf(m, "spry_held_requests_total{chain=\"%s\",outcome=\"held\"} %llu\n"
			  "spry_held_requests_total{chain=\"%s\",outcome=\"refused\"} %llu\n"
			  "spry_held_requests_total{chain=\"%s\",outcome=\"failed\"} %llu\n",
			  cs->name, (unsigned long long)cs->held_total,
			  cs->name, (unsigned long long)cs->hold_refused,
			  cs->name, (unsigned long long)cs->hold_failed);
	}
}

/* Apps' processes (process.c): per state, and every transition counted. */
static void metrics_apps(struct spryd *d, struct mbuf *m)
{
	static const char *const states[SPRY_PS_MAX] = {
		[SPRY_PS_ALLOCATED] = "allocated", [SPRY_PS_STARTING] = "starting",
		[SPRY_PS_ACTIVE] = "active", [SPRY_PS_SWAPPED] = "swapped",
		[SPRY_PS_LOST] = "lost",
	};
	static const char *const trans[] = {
		"created", "started", "activated", "swapped", "woken", "deleted", "crashed",
		"failed", "lost",
	};
	const struct spryd_app_pub *a;
	unsigned int i, k;

	if (!d->apps)
		return;
	mb_printf(m, "# HELP spry_app_processes An app's processes in each state.\n"
		  "# TYPE spry_app_processes gauge\n");
	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		a = &d->apps[i];
		for (k = 0; a->used && k < SPRY_PS_MAX; k++)
			if (states[k])
				mb_printf(m, "spry_app_processes{app=\"%s\",state=\"%s\"} %u\n", a->app,
				  states[k], a->st.n[k]);
	}
	mb_printf(m, "# HELP spry_app_process_transitions_total Life-cycle transitions of an "
		  "app's processes (created: -> allocated, started: -> starting, activated: "
		  "-> active, swapped, woken: swapped -> starting, deleted, crashed: exited on "
		  "its own, failed: a start that failed, lost: its swap file missing or "
		  "damaged).\n"
		  "# TYPE spry_app_process_transitions_total counter\n");
	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		const uint64_t v[9] = {
			d->apps[i].st.created, d->apps[i].st.started, d->apps[i].st.activated,
			d->apps[i].st.swapped, d->apps[i].st.woken, d->apps[i].st.deleted,
			d->apps[i].st.crashed, d->apps[i].st.failed, d->apps[i].st.lost,
		};

		a = &d->apps[i];
		for (k = 0; a->used && k < 9; k++)
			mb_printf(m, "spry_app_process_transitions_total{app=\"%s\",transition=\"%s\"} %llu\n",
				  a->app, trans[k], (unsigned long long)v[k]);
	}
	mb_printf(m, "# HELP spry_app_process_starts_total OS processes started for an app's "
		  "processes, by how: template (cloned by the app's template) or exec (fork + "
		  "exec).\n"
		  "# TYPE spry_app_process_starts_total counter\n");
	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		a = &d->apps[i];
		if (!a->used)
			continue;
		mb_printf(m, "spry_app_process_starts_total{app=\"%s\",how=\"template\"} %llu\n",
			  a->app, (unsigned long long)a->cloned);
		mb_printf(m, "spry_app_process_starts_total{app=\"%s\",how=\"exec\"} %llu\n",
			  a->app, (unsigned long long)(a->st.started - a->cloned));
	}
}

int metrics_render(struct spryd *d, struct mbuf *m)
{
	memset(m, 0, sizeof(*m));
	m->cap = 16384;
	m->p = malloc(m->cap);
	if (!m->p)
		return -ENOMEM;
	front_metrics_all(d, m);
	metrics_chains(d, m);
	metrics_router(d, m);
	metrics_retries(d, m);
	metrics_scale(d, m);
	metrics_apps(d, m);
	if (m->oom) {
		free(m->p);
		m->p = NULL;
		return -ENOMEM;
	}
	return 0;
}
