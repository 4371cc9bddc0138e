// SPDX-License-Identifier: GPL-2.0-only
/*
 * httpchain: one function of an HTTP microservice chain, the way chains
 * run as plain HTTP services (Knative without its queue-proxy, services
 * calling each other without sidecars).
 *
 *   httpchain --port PORT --hop I [--next PORT2]
 *
 * An HTTP/1.1 server on 127.0.0.1:PORT (one epoll loop, keep-alive,
 * Content-Length bodies, TCP_NODELAY).  Each request's body goes through
 * hop I's handler (bench/bench_util.h: the code spry's example functions
 * run); then, with --next, it is POSTed to 127.0.0.1:PORT2 over a
 * keep-alive connection from a pool (a new connection when every pooled
 * one is busy, kept afterwards) and the answer is relayed back; without
 * --next the handled body is the answer.  Runs until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bench/bench_util.h"

enum kind { K_LISTEN, K_DOWN, K_UP };

struct conn {
	int		fd;
	enum kind	kind;
	uint32_t	events;		/* registered epoll events */
	bool		dead;
	bool		busy;		/* down: request in flight; up: waiting */
	bool		connecting;	/* up: connect() not finished yet */
	bool		close_after;	/* down: close once the answer is out */
	int		idle_idx;	/* up: index in the idle pool, -1 */
	struct conn	*peer;		/* the down/up conn of the request in flight */
	struct conn	*next_dead;
	struct bu_buf	in, out;
};

static int ep;
static unsigned int hop;
static uint16_t next_port;
static bool has_next;
static struct conn **idle;
static size_t n_idle, cap_idle;
static struct conn *dead_list;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int set_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return 0;
	c->events = events;
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) ? -errno : 0;
}

static struct conn *conn_new(int fd, enum kind kind, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->kind = kind;
	c->events = events;
	c->idle_idx = -1;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		free(c);
		return NULL;
	}
	return c;
}

static void idle_del(struct conn *c)
{
	if (c->idle_idx < 0)
		return;
	idle[c->idle_idx] = idle[--n_idle];
	idle[c->idle_idx]->idle_idx = c->idle_idx;
	c->idle_idx = -1;
}

static int idle_put(struct conn *c)
{
	if (n_idle == cap_idle) {
		size_t cap = cap_idle ? cap_idle * 2 : 64;
		struct conn **p = realloc(idle, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		idle = p;
		cap_idle = cap;
	}
	c->idle_idx = n_idle;
	idle[n_idle++] = c;
	return 0;
}

static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	idle_del(c);
	close(c->fd);
	c->next_dead = dead_list;
	dead_list = c;
}

static void reap(void)
{
	struct conn *c;

	while ((c = dead_list)) {
		dead_list = c->next_dead;
		bu_free(&c->in);
		bu_free(&c->out);
		free(c);
	}
}

/* An upstream connection to the next function: pooled, else new. */
static struct conn *up_get(void)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(next_port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct conn *c;
	int fd;

	if (n_idle) {
		c = idle[n_idle - 1];
		idle_del(c);
		return c;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	bu_nodelay(fd);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	c = conn_new(fd, K_UP, EPOLLIN | EPOLLOUT);
	if (!c) {
		close(fd);
		return NULL;
	}
	c->connecting = true;
	return c;
}

/* Send what @c->out holds; watch EPOLLOUT while the socket is full. */
static void conn_flush(struct conn *c)
{
	int ret;

	if (c->connecting)
		return;
	ret = bu_flush(&c->out, c->fd);
	if (ret < 0) {
		conn_kill(c);
		return;
	}
	if (c->kind == K_UP)
		set_events(c, EPOLLIN | (ret ? EPOLLOUT : 0));
	else
		set_events(c, ret ? EPOLLOUT : c->busy ? 0 : EPOLLIN);
}

static void down_process(struct conn *d);

/* Answer down connection @d with @body (or an error status). */
static void down_answer(struct conn *d, unsigned int status, const void *body, size_t len)
{
	d->busy = false;
	if (bu_response_head(&d->out, status, len) || bu_append(&d->out, body, len)) {
		conn_kill(d);
		return;
	}
	conn_flush(d);
	if (d->dead)
		return;
	if (d->out.len) {
		/* the rest goes out on EPOLLOUT; then reading resumes */
		return;
	}
	if (d->close_after)
		conn_kill(d);
	else
		down_process(d);
}

/* Handle every complete request in @d's input, one at a time. */
static void down_process(struct conn *d)
{
	static const char fmt[] =
		"POST / HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
		"Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n";
	struct bu_head h;
	unsigned char *body;
	struct conn *u;
	char head[192];
	int ret, n;

	while (!d->dead && !d->busy && !d->out.len) {
		ret = bu_parse_head(d->in.p + d->in.off, d->in.len - d->in.off, false, &h);
		if (ret < 0) {
			d->close_after = true;
			down_answer(d, 400, NULL, 0);
			return;
		}
		if (!ret || d->in.len - d->in.off < h.head_len + h.body_len)
			return;
		body = d->in.p + d->in.off + h.head_len;
		d->close_after = h.close;
		bu_handler(hop, body, h.body_len);
		if (!has_next) {
			/* the last hop: the handled body is the answer */
			if (bu_response_head(&d->out, 200, h.body_len) ||
			    bu_append(&d->out, body, h.body_len)) {
				conn_kill(d);
				return;
			}
			bu_consume(&d->in, h.head_len + h.body_len);
			conn_flush(d);
			if (!d->dead && !d->out.len && d->close_after)
				conn_kill(d);
			continue;
		}
		u = up_get();
		if (!u) {
			bu_consume(&d->in, h.head_len + h.body_len);
			d->close_after = true;
			down_answer(d, 502, NULL, 0);
			return;
		}
		n = snprintf(head, sizeof(head), fmt, next_port, h.body_len);
		if (bu_append(&u->out, head, n) || bu_append(&u->out, body, h.body_len)) {
			conn_kill(u);
			conn_kill(d);
			return;
		}
		bu_consume(&d->in, h.head_len + h.body_len);
		u->busy = d->busy = true;
		u->peer = d;
		d->peer = u;
		set_events(d, 0);	/* one request at a time */
		conn_flush(u);
		if (u->dead) {
			d->peer = NULL;
			d->close_after = true;
			down_answer(d, 502, NULL, 0);
		}
		return;
	}
}

static void on_down(struct conn *d, uint32_t ev)
{
	ssize_t n;

	if (ev & EPOLLOUT) {
		conn_flush(d);
		if (d->dead || d->out.len)
			return;
		if (d->close_after) {
			conn_kill(d);
			return;
		}
		down_process(d);
		return;
	}
	n = bu_read(&d->in, d->fd, 16384);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		if (d->peer)
			d->peer->peer = NULL;	/* its answer is dropped */
		conn_kill(d);
		return;
	}
	down_process(d);
}

static void on_up(struct conn *u, uint32_t ev)
{
	struct conn *d = u->peer;
	struct bu_head h;
	ssize_t n;
	int ret, err = 0;
	socklen_t sl = sizeof(err);

	if (u->connecting && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &sl) || err)
			goto fail;
		u->connecting = false;
		conn_flush(u);
		if (u->dead)
			goto fail;
	} else if (ev & EPOLLOUT) {
		conn_flush(u);
		if (u->dead)
			goto fail;
	}
	if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	n = bu_read(&u->in, u->fd, 16384);
	if (n == -EAGAIN)
		return;
	if (n <= 0)
		goto fail;
	ret = bu_parse_head(u->in.p + u->in.off, u->in.len - u->in.off, true, &h);
	if (ret < 0)
		goto fail;
	if (!ret || u->in.len - u->in.off < h.head_len + h.body_len)
		return;
	if (!u->busy)
		goto fail;	/* an answer nobody asked for */
	u->busy = false;
	u->peer = NULL;
	if (d) {
		d->peer = NULL;
		down_answer(d, h.status, u->in.p + u->in.off + h.head_len, h.body_len);
	}
	bu_consume(&u->in, h.head_len + h.body_len);
	if (h.close || u->in.len || u->dead || idle_put(u))
		conn_kill(u);
	return;
fail:
	if (!u->dead)
		conn_kill(u);
	if (d && u->busy) {
		d->peer = NULL;
		d->close_after = true;
		down_answer(d, 502, NULL, 0);
	}
}

static void on_listen(struct conn *l)
{
	struct conn *c;
	int fd;

	for (;;) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		bu_nodelay(fd);
		c = conn_new(fd, K_DOWN, EPOLLIN);
		if (!c)
			close(fd);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: httpchain --port PORT --hop I [--next PORT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct epoll_event evs[128];
	uint16_t port = 0;
	struct conn *l;
	int i, n, lfd;

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--port")) {
			if (bu_parse_port(argv[++i], &port))
				usage();
		} else if (!strcmp(argv[i], "--next")) {
			if (bu_parse_port(argv[++i], &next_port))
				usage();
			has_next = true;
		} else if (!strcmp(argv[i], "--hop")) {
			if (spry_num__parse_u32(argv[++i], 0, 255, &hop))
				usage();
		} else {
			usage();
		}
	}
	if (!port)
		usage();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	ep = epoll_create1(EPOLL_CLOEXEC);
	lfd = bu_listen_tcp(port);
	if (ep < 0 || lfd < 0) {
		fprintf(stderr, "httpchain: port %u: %s\n", port, strerror(lfd < 0 ? -lfd : errno));
		return 1;
	}
	l = conn_new(lfd, K_LISTEN, EPOLLIN);
	if (!l)
		return 1;
	while (!stop) {
		n = epoll_wait(ep, evs, 128, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->dead)
				continue;
			if (c->kind == K_LISTEN)
				on_listen(c);
			else if (c->kind == K_DOWN)
				on_down(c, evs[i].events);
			else
				on_up(c, evs[i].events);
		}
		reap();
	}
	return 0;
}
