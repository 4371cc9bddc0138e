/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's loop room: one epoll set, one timerfd, one signalfd, and the
 * dispatch of every epoll event to the ops of the object it points at.
 * The loop knows no room by name: rooms hand it endpoints (struct
 * spryd_ep, first member of the object watched) and hooks (timer hooks
 * that say when they next need to run, tick hooks run once per
 * iteration); composition is daemon.c's.  Single-threaded.
 */
#ifndef SPRYD_LOOP_H
#define SPRYD_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

struct spryd;
struct spryd_ep;

/* What the loop calls for an endpoint's events. */
struct spryd_ep_ops {
	const char	*name;
	void		(*event)(struct spryd *d, struct spryd_ep *ep, uint32_t events);
	/*
	 * Dispatched before the iteration's other events: finished requests
	 * (the origins' descriptors) go out before new requests are read.
	 */
	bool		early;
};

/* What an epoll event points at; first member of every watched object. */
struct spryd_ep {
	const struct spryd_ep_ops	*ops;
	int				fd;
};

/* A timer hook: runs every iteration; lowers *@next to when it needs the next run. */
typedef void (*spryd_timer_fn)(struct spryd *d, uint64_t now, uint64_t *next);
/* A tick hook: runs every iteration after the events and the timer hooks. */
typedef void (*spryd_tick_fn)(struct spryd *d);

#define SPRYD_LOOP_MAX_HOOKS	8

struct spryd_loop {
	int			epfd;
	int			spare_fd;	/* /dev/null, given up on EMFILE */
	bool			stop;
	struct spryd_ep		timer_ep;
	struct spryd_ep		sig_ep;
	uint64_t		timer_armed;	/* absolute ns, 0 = disarmed */
	bool			timer_fired;
	spryd_timer_fn		timers[SPRYD_LOOP_MAX_HOOKS];
	unsigned int		n_timers;
	spryd_tick_fn		ticks[SPRYD_LOOP_MAX_HOOKS];
	unsigned int		n_ticks;
};

void spryd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define spryd_vlog(d, ...)	do { if ((d)->verbose) spryd_log(__VA_ARGS__); } while (0)
uint64_t spryd_now_ns(void);
/*
 * Cold-start events for benchmarks (docs/ELASTIC.md, "Cold start"): when
 * spryd was started with SPRY_TRACE_FD (fn-runtime/proto.h) naming an open
 * fd, "spry-trace EVENT ..." lines (CLOCK_MONOTONIC ns) are written to it,
 * non-blocking (a reader that falls behind loses lines, spryd never
 * waits); the fd goes on to the instances spryd starts.  -1: not tracing.
 */
int spryd_trace_fd(void);
void spryd_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int spryd_ep_add(struct spryd *d, struct spryd_ep *ep, uint32_t events);
int spryd_ep_mod(struct spryd *d, struct spryd_ep *ep, uint32_t events);
void spryd_ep_close(struct spryd *d, struct spryd_ep *ep);
/* Stop watching @ep, its fd kept open. */
void spryd_ep_del(struct spryd *d, struct spryd_ep *ep);
/*
 * accept4() that survives running out of fds: with EMFILE/ENFILE the
 * pending connection is accepted on the spare fd's room and dropped.
 * Returns the fd or -1 (errno).
 */
int spryd_accept(struct spryd *d, int lfd, struct sockaddr *sa, socklen_t *len);

/* epoll set, spare fd, SIGTERM/SIGINT on a signalfd, the timerfd; 0 or -errno. */
int loop_init(struct spryd *d);
void loop_fini(struct spryd *d);
/* Hooks run in the order added; 0 or -ENOSPC. */
int loop_on_timer(struct spryd *d, spryd_timer_fn fn);
int loop_on_tick(struct spryd *d, spryd_tick_fn fn);
/* Until a signal (or loop_stop()); 0 or -errno of epoll_wait. */
int loop_run(struct spryd *d);

#endif /* SPRYD_LOOP_H */
