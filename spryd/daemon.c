// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's daemon room (spryd/daemon.h): where the rooms are put together.
 *
 *   loop       epoll, timerfd, signals (loop.c)
 *   core       request table and pools (entry.c), origins (origin.c)
 *   registrar  functions' sockets and instances (registrar.c)
 *   fronts     HTTP (gateway.c), datagrams (dgram.c), control socket
 *              INVOKE (ctl.c), each registered with its ops (front.h)
 *   supervisor declared functions: instances started, scaled, stopped
 *              (supervisor.c, autoscale.c, spawn.c)
 *   privs      capabilities dropped once everything is open (privs.c)
 *
 * Each loop iteration after the events: the timer hooks (deadlines of the
 * core, pending function sockets, the fronts' timeouts), then the tick
 * hooks: the fronts' per-iteration work, the send queue flushed to the
 * origins, closed control connections reaped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/resource.h>

#include <bpf/libbpf.h>

#include "spryd/ctl.h"
#include "spryd/daemon.h"
#include "spryd/dgram.h"
#include "spryd/entry.h"
#include "spryd/gateway.h"
#include "spryd/origin.h"
#include "spryd/privs.h"
#include "spryd/registrar.h"
#include "spryd/spryd.h"
#include "spryd/process.h"
#include "spryd/supervisor.h"

/*
 * Both rooms that start processes: a template's clone is neither's yet.
 * Once they are being torn down their tables are freed under the walk
 * (a template stopped last announces its spare): every pid is "known"
 * then, so the clone is refused, never recorded nor signalled (a spare
 * leaves on its template's EOF).
 */
static bool pid_known(struct spryd *d, pid_t pid)
{
	if (d->rooms_down)
		return true;
	return supervisor_pid_known(d, pid) || process_pid_known(d, pid);
}

struct spryd *spryd_new(void)
{
	struct spryd *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->loop.epfd = d->loop.spare_fd = -1;
	d->ctl_ep.fd = d->tcp_ep.fd = d->events_ep.fd = -1;
	d->maps.socks = d->maps.senders = d->maps.chains = d->maps.fns = -1;
	d->maps.auth = d->maps.inst = d->maps.verdicts = d->maps.fn_stats = -1;
	d->maps.reqloc = d->maps.events = d->maps.procs = -1;
	d->n_origins = 1;
	gateway_opts_default(&d->http);
	supervisor_opts_default(d);
	d->pid_known = pid_known;
	return d;
}

void spryd_free(struct spryd *d)
{
	if (!d)
		return;
	dgram_fini(d);	/* options parsed, nothing opened: frees them */
	free(d);
}

/* Deadlines: answers already back are read before a request times out. */
static void core_timer(struct spryd *d, uint64_t now, uint64_t *next)
{
	if (entry_timer(d, now, next, false)) {
		origin_drain(d);
		entry_timer(d, now, next, true);
	}
}

static int hooks_init(struct spryd *d)
{
	int err = 0;

	err = err ?: loop_on_timer(d, core_timer);
	err = err ?: loop_on_timer(d, registrar_timer);
	err = err ?: loop_on_timer(d, supervisor_timer);
	err = err ?: loop_on_timer(d, process_timer);
	err = err ?: loop_on_timer(d, front_timer_all);
	err = err ?: loop_on_tick(d, front_run_all);
	err = err ?: loop_on_tick(d, origin_flush);
	err = err ?: loop_on_tick(d, front_flush_all);
	err = err ?: loop_on_tick(d, ctl_reap);
	return err;
}

/* Instances, connections (control and HTTP) and pending peers each hold an fd. */
static void raise_nofile(struct spryd *d)
{
	rlim_t want = (rlim_t)SPRYD_MAX_CONNS + SPRYD_MAX_PENDING + 1024 +
		      (d->http.addr ? d->http.max_conns : 0);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_max < want) {
		/* needs CAP_SYS_RESOURCE; else the hard limit it is */
		struct rlimit up = { want, want };

		if (!setrlimit(RLIMIT_NOFILE, &up))
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < want)
		spryd_log("RLIMIT_NOFILE is %llu (wanted %llu): connections beyond it are dropped",
			  (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

static void log_stats(struct spryd *d)
{
	struct spryd_stats *s = &d->st;

	spryd_log("stats: invoked %llu completed %llu refused %llu timed-out %llu "
		  "reset %llu late %llu unknown %llu reaped %llu registered %llu "
		  "reg-refused %llu died %llu quarantines %llu send-errors %llu",
		  (unsigned long long)s->invoked, (unsigned long long)s->completed,
		  (unsigned long long)s->refused, (unsigned long long)s->timed_out,
		  (unsigned long long)s->reset, (unsigned long long)s->late,
		  (unsigned long long)s->unknown, (unsigned long long)s->reaped,
		  (unsigned long long)s->registered, (unsigned long long)s->reg_refused,
		  (unsigned long long)s->died, (unsigned long long)s->quarantines,
		  (unsigned long long)s->send_errors);
}

/* Stop taking work, answer what is in flight, push the replies out, close. */
static void shutdown_all(struct spryd *d)
{
	front_stop_all(d);
	registrar_stop(d);
	entry_shutdown(d);
	front_shutdown_all(d);
	d->rooms_down = true;
	process_fini(d);
	supervisor_fini(d);
	registrar_fini(d);
	origin_fini(d);
	entry_fini(d);
}

int spryd_run(struct spryd *d)
{
	int err;

	err = ctl_alloc(d);
	if (err) {
		spryd_log("out of memory");
		goto out_ctl;
	}
	libbpf_set_print(NULL);
	raise_nofile(d);
	err = spry_maps__open(&d->maps, d->pin_dir);
	if (err) {
		if (err == -ENOENT)
			spryd_log("spry is not loaded in %s: run `spry -P %s load` first",
				  d->pin_dir, d->pin_dir);
		else
			spryd_log("cannot open the maps pinned in %s: %s", d->pin_dir,
				  strerror(-err));
		goto out_ctl;
	}
	err = loop_init(d);
	if (err)
		goto out_maps;
	err = hooks_init(d);
	if (err)
		goto out_loop;
	err = entry_init(d);
	if (err) {
		spryd_log("request table: %s", strerror(-err));
		goto out_loop;
	}
	err = registrar_init(d);
	if (err)
		goto out_entry;
	err = origin_init(d);
	if (err)
		goto out_registrar;
	err = registrar_events_init(d);
	if (err)
		goto out_origin;
	err = gateway_init(d);
	if (err)
		goto out_origin;
	err = dgram_init(d);
	if (!err)
		err = ctl_init(d);
	if (!err) {
		err = supervisor_init(d);
		if (err)
			spryd_log("supervisor: %s", strerror(-err));
	}
	if (!err) {
		err = process_init(d);
		if (err)
			spryd_log("processes: %s", strerror(-err));
	}
	if (err) {
		front_shutdown_all(d);
		goto out_origin;
	}
	/* Everything needing more is set up: keep what the loop uses. */
	err = spryd_drop_privs(d);
	if (err) {
		shutdown_all(d);
		goto out_loop;
	}
	spryd_log("ready: pins %s, control %s, functions connect to 127.0.0.1:%u, "
		  "%u origin%s, pools %s", d->pin_dir, d->sock_path,
		  ntohs(d->tcp_addr.sin_port), d->n_origins, d->n_origins == 1 ? "" : "s",
		  d->pool_dir ? d->pool_dir : "memfd");
	err = loop_run(d);
	shutdown_all(d);
	log_stats(d);
	spryd_log("stopped");
	goto out_loop;

out_origin:
	origin_fini(d);
out_registrar:
	registrar_fini(d);
out_entry:
	entry_fini(d);
out_loop:
	loop_fini(d);
out_maps:
	spry_maps__close(&d->maps);
out_ctl:
	ctl_free(d);
	return err;
}
