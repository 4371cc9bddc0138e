// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's loop room (spryd/loop.h): the epoll set and its dispatch, the
 * one timerfd every room's deadlines share, SIGTERM/SIGINT, the log line
 * format and the clock.  It calls rooms only through the ops of the
 * endpoints they added and the hooks they registered.
 *
 * One iteration: epoll_wait; the events of "early" endpoints (descriptors
 * coming back from chains) are dispatched first, so a finished request's
 * answer is not made to wait behind the parsing of the next batch; then
 * the other events; then the timer hooks (each says when it needs the
 * next run: the earliest is armed on the timerfd); then the tick hooks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "fn-runtime/parse.h"
#include "spryd/spryd.h"

#define LOOP_EVENTS	64

static int trace_fd = -1;

int spryd_trace_fd(void)
{
	return trace_fd;
}

void spryd_trace(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	if (trace_fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "spry-trace ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(trace_fd, buf, (size_t)n) < 0 && errno != EAGAIN)
		trace_fd = -1;	/* the reader went away: stop */
}

static void trace_init(void)
{
	const char *v = getenv(SPRY_TRACE_ENV);
	uint32_t fd;
	int fl;

	if (!v || spry_num__parse_u32(v, 3, INT_MAX, &fd))
		return;
	fl = fcntl((int)fd, F_GETFL);
	if (fl < 0 || fcntl((int)fd, F_SETFL, fl | O_NONBLOCK))
		return;
	trace_fd = (int)fd;
	spryd_log("tracing cold-start events to fd %d (%s)", trace_fd, SPRY_TRACE_ENV);
}

void spryd_log(const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char buf[512];
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf), "spryd %02d:%02d:%02d.%03ld ", tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);
}

uint64_t spryd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int spryd_ep_add(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = ep };

	return epoll_ctl(d->loop.epfd, EPOLL_CTL_ADD, ep->fd, &ev) ? -errno : 0;
}

int spryd_ep_mod(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = ep };

	return epoll_ctl(d->loop.epfd, EPOLL_CTL_MOD, ep->fd, &ev) ? -errno : 0;
}

void spryd_ep_del(struct spryd *d, struct spryd_ep *ep)
{
	if (ep->fd >= 0)
		epoll_ctl(d->loop.epfd, EPOLL_CTL_DEL, ep->fd, NULL);
}

void spryd_ep_close(struct spryd *d, struct spryd_ep *ep)
{
	if (ep->fd < 0)
		return;
	epoll_ctl(d->loop.epfd, EPOLL_CTL_DEL, ep->fd, NULL);
	close(ep->fd);
	ep->fd = -1;
}

/* A level-triggered listener must not spin on a connection it cannot take. */
int spryd_accept(struct spryd *d, int lfd, struct sockaddr *sa, socklen_t *len)
{
	struct spryd_loop *l = &d->loop;
	int fd = accept4(lfd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0 || (errno != EMFILE && errno != ENFILE) || l->spare_fd < 0)
		return fd;
	close(l->spare_fd);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	spryd_log("out of file descriptors: a connection was dropped");
	errno = ECONNABORTED;
	return -1;
}

int loop_on_timer(struct spryd *d, spryd_timer_fn fn)
{
	struct spryd_loop *l = &d->loop;

	if (l->n_timers == SPRYD_LOOP_MAX_HOOKS)
		return -ENOSPC;
	l->timers[l->n_timers++] = fn;
	return 0;
}

int loop_on_tick(struct spryd *d, spryd_tick_fn fn)
{
	struct spryd_loop *l = &d->loop;

	if (l->n_ticks == SPRYD_LOOP_MAX_HOOKS)
		return -ENOSPC;
	l->ticks[l->n_ticks++] = fn;
	return 0;
}

static void timer_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	(void)ep;
	(void)events;
	d->loop.timer_fired = true;	/* timer_run() runs every iteration */
}

static void signal_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(ep->fd, &si, sizeof(si)) == sizeof(si)) {
		spryd_log("signal %u: shutting down", si.ssi_signo);
		d->loop.stop = true;
	}
}

static const struct spryd_ep_ops timer_ops = { .name = "timer", .event = timer_event };
static const struct spryd_ep_ops signal_ops = { .name = "signal", .event = signal_event };

static void timer_run(struct spryd *d)
{
	struct spryd_loop *l = &d->loop;
	uint64_t now = spryd_now_ns(), next = 0, exp;
	struct itimerspec its = {};
	unsigned int i;

	if (l->timer_fired) {
		l->timer_fired = false;
		if (read(l->timer_ep.fd, &exp, sizeof(exp)) > 0)
			l->timer_armed = 0;	/* it fired: disarmed */
	}
	for (i = 0; i < l->n_timers; i++)
		l->timers[i](d, now, &next);
	if (next == l->timer_armed)
		return;
	if (next) {
		its.it_value.tv_sec = next / 1000000000ULL;
		its.it_value.tv_nsec = next % 1000000000ULL;
	}
	if (!timerfd_settime(l->timer_ep.fd, TFD_TIMER_ABSTIME, &its, NULL))
		l->timer_armed = next;
}

/* Endpoints live in tables that outlive the loop: ops is always readable. */
static void dispatch(struct spryd *d, struct epoll_event *ev)
{
	struct spryd_ep *ep = ev->data.ptr;

	if (ep->fd >= 0)
		ep->ops->event(d, ep, ev->events);
}

int loop_run(struct spryd *d)
{
	struct spryd_loop *l = &d->loop;
	struct epoll_event evs[LOOP_EVENTS];
	unsigned int k;
	int n, i;

	/* Once before the first wait: a hook with work at start arms the timer. */
	timer_run(d);
	while (!l->stop) {
		n = epoll_wait(l->epfd, evs, LOOP_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			spryd_log("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (i = 0; i < n; i++)
			if (((struct spryd_ep *)evs[i].data.ptr)->ops->early)
				dispatch(d, &evs[i]);
		for (i = 0; i < n; i++)
			if (!((struct spryd_ep *)evs[i].data.ptr)->ops->early)
				dispatch(d, &evs[i]);
		timer_run(d);
		for (k = 0; k < l->n_ticks; k++)
			l->ticks[k](d);
	}
	return 0;
}

static int signals_init(struct spryd *d)
{
	struct spryd_loop *l = &d->loop;
	sigset_t set;
	int fd, err;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	l->sig_ep.ops = &signal_ops;
	l->sig_ep.fd = fd;
	err = spryd_ep_add(d, &l->sig_ep, EPOLLIN);
	if (err) {
		close(fd);
		l->sig_ep.fd = -1;
	}
	return err;
}

static int timer_init(struct spryd *d)
{
	struct spryd_loop *l = &d->loop;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int err;

	if (fd < 0)
		return -errno;
	l->timer_ep.ops = &timer_ops;
	l->timer_ep.fd = fd;
	err = spryd_ep_add(d, &l->timer_ep, EPOLLIN);
	if (err) {
		close(fd);
		l->timer_ep.fd = -1;
	}
	return err;
}

int loop_init(struct spryd *d)
{
	struct spryd_loop *l = &d->loop;
	int err;

	l->timer_ep.fd = l->sig_ep.fd = -1;
	trace_init();
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		err = -errno;
		goto err_spare;
	}
	err = signals_init(d);
	if (err)
		goto err_epoll;
	err = timer_init(d);
	if (err)
		goto err_sig;
	return 0;

err_sig:
	spryd_ep_close(d, &l->sig_ep);
err_epoll:
	close(l->epfd);
	l->epfd = -1;
err_spare:
	if (l->spare_fd >= 0)
		close(l->spare_fd);
	l->spare_fd = -1;
	return err;
}

void loop_fini(struct spryd *d)
{
	struct spryd_loop *l = &d->loop;

	spryd_ep_close(d, &l->timer_ep);
	spryd_ep_close(d, &l->sig_ep);
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
	if (l->spare_fd >= 0)
		close(l->spare_fd);
	l->spare_fd = -1;
}
