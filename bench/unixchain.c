// SPDX-License-Identifier: GPL-2.0-only
/*
 * unixchain: a chain of processes linked by unix stream sockets that
 * copies the payload at every hop (read() into the function, write() out
 * of it), with a small HTTP front so it is measured like the others.
 *
 *   unixchain front --port PORT --to PATH --from PATH
 *	HTTP/1.1 on 127.0.0.1:PORT (one epoll loop, keep-alive,
 *	Content-Length bodies).  A request body becomes the message
 *	{u32 len, u32 id} + body, written to the first function (--to);
 *	finished messages come back from the last one (--from: the front
 *	listens there) and are answered by id.
 *
 *   unixchain fn --hop I --listen PATH --to PATH2
 *	One function: accepts one connection on PATH, reads messages
 *	(as many as one read() brings), runs hop I's handler on each body
 *	in place (bench/bench_util.h) and writes them on to PATH2 with one
 *	write().  Blocking sockets: it sleeps in read() like a spry
 *	function sleeps in recv().
 *
 * Runs until SIGTERM/SIGINT (or the neighbours go away).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "bench/bench_util.h"

struct msg_hdr {
	uint32_t	len;
	uint32_t	id;	/* front: (generation << 16) | connection slot */
};

#define MAX_SLOTS	65536

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
	*sun = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	if (unix_addr(path, &sun))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 16)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Connect to @path, retrying for 10 s while nobody listens there yet. */
static int unix_connect(const char *path)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	struct sockaddr_un sun;
	int fd, i;

	if (unix_addr(path, &sun))
		return -ENAMETOOLONG;
	for (i = 0; i < 1000 && !stop; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
			return fd;
		close(fd);
		if (errno != ENOENT && errno != ECONNREFUSED)
			return -errno;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* ------------------------------------------------------------ function */

static int fn_main(unsigned int hop, const char *listen_path, const char *to)
{
	struct bu_buf in = {};
	int lfd, in_fd, out_fd;
	ssize_t n;

	lfd = unix_listen(listen_path);
	if (lfd < 0) {
		fprintf(stderr, "unixchain fn: %s: %s\n", listen_path, strerror(-lfd));
		return 1;
	}
	out_fd = unix_connect(to);
	if (out_fd < 0) {
		fprintf(stderr, "unixchain fn: %s: %s\n", to, strerror(-out_fd));
		return 1;
	}
	in_fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (in_fd < 0)
		return 1;
	close(lfd);

	while (!stop) {
		size_t done = 0, want = 65536;
		struct msg_hdr h;

		n = bu_read(&in, in_fd, want);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n <= 0)
			break;
		/* every complete message, in place; they stay contiguous */
		for (;;) {
			size_t left = in.len - in.off - done;

			if (left < sizeof(h))
				break;
			memcpy(&h, in.p + in.off + done, sizeof(h));
			if (h.len > BU_MAX_BODY)
				return 1;
			if (left < sizeof(h) + h.len) {
				/* make room for the rest of this one */
				if (bu_reserve(&in, sizeof(h) + h.len - left))
					return 1;
				break;
			}
			bu_handler(hop, in.p + in.off + done + sizeof(h), h.len);
			done += sizeof(h) + h.len;
		}
		if (done) {
			if (write_all(out_fd, in.p + in.off, done))
				break;
			bu_consume(&in, done);
		}
	}
	return 0;
}

/* --------------------------------------------------------------- front */

enum kind { K_LISTEN, K_DOWN, K_TO, K_FROM };

struct conn {
	int		fd;
	enum kind	kind;
	uint32_t	events;
	bool		dead;
	bool		busy;		/* a request is in the chain */
	bool		close_after;
	uint32_t	slot;		/* down: index in slots[] */
	uint32_t	id;		/* down: id of the request in the chain */
	uint16_t	gen;
	struct conn	*next_dead;
	struct bu_buf	in, out;
};

static int ep;
static struct conn *slots[MAX_SLOTS];
static uint32_t free_slots[MAX_SLOTS], n_free;
static struct conn *to_conn, *from_conn, *dead_list;

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
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		free(c);
		return NULL;
	}
	return c;
}

static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->kind == K_DOWN) {
		slots[c->slot] = NULL;
		free_slots[n_free++] = c->slot;
	}
	close(c->fd);
	c->next_dead = dead_list;
	dead_list = c;
}

static void conn_flush(struct conn *c)
{
	int ret = bu_flush(&c->out, c->fd);

	if (ret < 0) {
		conn_kill(c);
		return;
	}
	if (c->kind == K_TO)
		set_events(c, ret ? EPOLLOUT : 0);
	else
		set_events(c, ret ? EPOLLOUT : c->busy ? 0 : EPOLLIN);
}

static void down_process(struct conn *d)
{
	struct msg_hdr m;
	struct bu_head h;
	int ret;

	while (!d->dead && !d->busy && !d->out.len) {
		ret = bu_parse_head(d->in.p + d->in.off, d->in.len - d->in.off, false, &h);
		if (ret < 0) {
			conn_kill(d);
			return;
		}
		if (!ret || d->in.len - d->in.off < h.head_len + h.body_len)
			return;
		d->close_after = h.close;
		d->gen++;
		d->id = (uint32_t)d->gen << 16 | d->slot;
		m = (struct msg_hdr){ .len = h.body_len, .id = d->id };
		if (bu_append(&to_conn->out, &m, sizeof(m)) ||
		    bu_append(&to_conn->out, d->in.p + d->in.off + h.head_len, h.body_len)) {
			conn_kill(d);
			return;
		}
		bu_consume(&d->in, h.head_len + h.body_len);
		d->busy = true;
		set_events(d, 0);
		/* flushed once per loop iteration: requests of one wake-up batch */
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
		if (d->close_after)
			conn_kill(d);
		else
			down_process(d);
		return;
	}
	n = bu_read(&d->in, d->fd, 16384);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		conn_kill(d);	/* an answer still in the chain is dropped by id */
		return;
	}
	down_process(d);
}

static void on_from(struct conn *f)
{
	struct msg_hdr m;
	struct conn *d;
	ssize_t n;

	n = bu_read(&f->in, f->fd, 65536);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		stop = 1;	/* the chain is gone */
		return;
	}
	for (;;) {
		size_t left = f->in.len - f->in.off;

		if (left < sizeof(m))
			break;
		memcpy(&m, f->in.p + f->in.off, sizeof(m));
		if (left < sizeof(m) + m.len) {
			if (bu_reserve(&f->in, sizeof(m) + m.len - left))
				stop = 1;
			break;
		}
		d = slots[m.id & 0xffff];
		if (d && !d->dead && d->busy && d->id == m.id) {
			d->busy = false;
			if (bu_response_head(&d->out, 200, m.len) ||
			    bu_append(&d->out, f->in.p + f->in.off + sizeof(m), m.len)) {
				conn_kill(d);
			} else {
				conn_flush(d);
				if (!d->dead && !d->out.len) {
					if (d->close_after)
						conn_kill(d);
					else
						down_process(d);
				}
			}
		}
		bu_consume(&f->in, sizeof(m) + m.len);
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
		if (!n_free) {
			close(fd);
			continue;
		}
		bu_nodelay(fd);
		c = conn_new(fd, K_DOWN, EPOLLIN);
		if (!c) {
			close(fd);
			continue;
		}
		c->slot = free_slots[--n_free];
		slots[c->slot] = c;
	}
}

static int front_main(uint16_t port, const char *to, const char *from)
{
	struct epoll_event evs[128];
	int lfd, fl, tfd, ffd, n, i;
	struct conn *l;

	for (i = 0; i < MAX_SLOTS; i++)
		free_slots[i] = MAX_SLOTS - 1 - i;
	n_free = MAX_SLOTS;
	ep = epoll_create1(EPOLL_CLOEXEC);
	fl = unix_listen(from);
	lfd = bu_listen_tcp(port);
	if (ep < 0 || fl < 0 || lfd < 0) {
		fprintf(stderr, "unixchain front: cannot listen\n");
		return 1;
	}
	tfd = unix_connect(to);
	if (tfd < 0) {
		fprintf(stderr, "unixchain front: %s: %s\n", to, strerror(-tfd));
		return 1;
	}
	ffd = accept4(fl, NULL, NULL, SOCK_CLOEXEC);
	if (ffd < 0 || bu_nonblock(tfd) || bu_nonblock(ffd))
		return 1;
	close(fl);
	to_conn = conn_new(tfd, K_TO, 0);
	from_conn = conn_new(ffd, K_FROM, EPOLLIN);
	l = conn_new(lfd, K_LISTEN, EPOLLIN);
	if (!to_conn || !from_conn || !l)
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
			switch (c->kind) {
			case K_LISTEN:
				on_listen(c);
				break;
			case K_DOWN:
				on_down(c, evs[i].events);
				break;
			case K_TO:
				conn_flush(c);
				break;
			case K_FROM:
				on_from(c);
				break;
			}
		}
		/* one write for all requests of this wake-up */
		if (to_conn->out.len && !(to_conn->events & EPOLLOUT)) {
			conn_flush(to_conn);
			if (to_conn->dead)
				return 1;
		}
		while (dead_list) {
			struct conn *c = dead_list;

			dead_list = c->next_dead;
			bu_free(&c->in);
			bu_free(&c->out);
			free(c);
		}
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: unixchain front --port PORT --to PATH --from PATH\n"
		"       unixchain fn --hop I --listen PATH --to PATH\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *to = NULL, *from = NULL, *listen_path = NULL;
	unsigned int hop = 0;
	uint16_t port = 0;
	bool front;
	int i;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "front"))
		front = true;
	else if (!strcmp(argv[1], "fn"))
		front = false;
	else
		usage();
	for (i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--port")) {
			if (bu_parse_port(argv[++i], &port))
				usage();
		} else if (!strcmp(argv[i], "--to")) {
			to = argv[++i];
		} else if (!strcmp(argv[i], "--from")) {
			from = argv[++i];
		} else if (!strcmp(argv[i], "--listen")) {
			listen_path = argv[++i];
		} else if (!strcmp(argv[i], "--hop")) {
			if (spry_num__parse_u32(argv[++i], 0, 255, &hop))
				usage();
		} else {
			usage();
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (front) {
		/* the front stops between loop iterations; functions just die */
		signal(SIGTERM, on_signal);
		signal(SIGINT, on_signal);
		if (!port || !to || !from)
			usage();
		return front_main(port, to, from);
	}
	if (!listen_path || !to)
		usage();
	return fn_main(hop, listen_path, to);
}
