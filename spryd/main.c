// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd: spry's registrar, origin and request entry.  One epoll loop;
 * this file owns the loop, the control socket and its connections.
 * Protocol: fn-runtime/proto.h; behaviour: docs/DESIGN.md.
 *
 * Control datagrams are received here directly (not with spry_ctl_recv)
 * because a malformed one must still be answered on a non-blocking socket,
 * and replies are queued per connection when the client does not read.
 * Malformed datagrams (short, bad magic or version, length mismatch,
 * truncated, unknown type) are answered with the reply type of the request
 * type they name (HELLO_ACK, REG_ACK, RESULT; REG_ACK when the type is
 * unknown) and status -EINVAL (-EMSGSIZE when truncated); the connection
 * stays usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <bpf/libbpf.h>

#include "fn-runtime/cpus.h"
#include "spryd/http.h"
#include "spryd/spryd.h"

#define CONN_MSGS_PER_EVENT	64

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

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, ep->fd, &ev) ? -errno : 0;
}

int spryd_ep_mod(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = ep };

	return epoll_ctl(d->epfd, EPOLL_CTL_MOD, ep->fd, &ev) ? -errno : 0;
}

/*
 * accept4() that survives running out of fds: with EMFILE/ENFILE the
 * pending connection is accepted on the spare fd's room and dropped, so a
 * level-triggered listener does not spin.  Returns the fd or -1 (errno).
 */
int spryd_accept(struct spryd *d, int lfd, struct sockaddr *sa, socklen_t *len)
{
	int fd = accept4(lfd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0 || (errno != EMFILE && errno != ENFILE) || d->spare_fd < 0)
		return fd;
	close(d->spare_fd);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	spryd_log("out of file descriptors: a connection was dropped");
	errno = ECONNABORTED;
	return -1;
}

void spryd_ep_close(struct spryd *d, struct spryd_ep *ep)
{
	if (ep->fd < 0)
		return;
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
	close(ep->fd);
	ep->fd = -1;
}

/* ------------------------------------------------------- connections */

struct spryd_conn *spryd_conn_get(struct spryd *d, uint32_t idx, uint32_t gen)
{
	struct spryd_conn *c;

	if (idx >= SPRYD_MAX_CONNS)
		return NULL;
	c = &d->conns[idx];
	if (!c->used || c->closing || c->gen != gen)
		return NULL;
	return c;
}

/* Close @c at the next safe point (never from inside a handler chain). */
void spryd_conn_kill(struct spryd *d, struct spryd_conn *c)
{
	if (!c->used || c->closing)
		return;
	c->closing = true;
	d->close_list[d->n_close++] = (uint32_t)(c - d->conns);
}

static void conn_close(struct spryd *d, struct spryd_conn *c)
{
	struct spryd_outmsg *m, *next;

	registrar_conn_closed(d, c);
	for (m = c->outq; m; m = next) {
		next = m->next;
		if (m->fd >= 0)
			close(m->fd);
		free(m);
	}
	c->outq = NULL;
	c->outq_tail = &c->outq;
	c->outq_bytes = 0;
	spryd_ep_close(d, &c->ep);
	c->used = false;
	c->closing = false;
	c->want_out = false;
	c->gen++;
	c->n_reqs = 0;
	d->conn_free[d->n_conn_free++] = (uint32_t)(c - d->conns);
	spryd_vlog(d, "control connection %u closed", (unsigned int)(c - d->conns));
}

static void close_pending_conns(struct spryd *d)
{
	while (d->n_close) {
		uint32_t idx = d->close_list[--d->n_close];

		conn_close(d, &d->conns[idx]);
	}
}

static ssize_t send_dgram(int fd, const struct iovec *iov, int iovcnt, int pass_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	struct cmsghdr *cm;

	if (pass_fd >= 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void conn_want_out(struct spryd *d, struct spryd_conn *c, bool on)
{
	if (c->want_out == on)
		return;
	if (!spryd_ep_mod(d, &c->ep, EPOLLIN | (on ? EPOLLOUT : 0)))
		c->want_out = on;
}

int spryd_conn_send(struct spryd *d, struct spryd_conn *c, uint16_t type,
		    int32_t status, const void *a, uint32_t alen,
		    const void *b, uint32_t blen, int fd)
{
	struct spry_ctl_hdr hdr = {
		.magic = SPRY_CTL_MAGIC,
		.type = type,
		.version = SPRY_ABI_VERSION,
		.len = alen + blen,
		.status = status,
	};
	struct iovec iov[3] = {
		{ &hdr, sizeof(hdr) },
		{ (void *)a, alen },
		{ (void *)b, blen },
	};
	struct spryd_outmsg *m;
	uint32_t total = sizeof(hdr) + alen + blen;
	ssize_t n;

	if (!c->used || c->closing)
		return -ENOTCONN;
	if (!c->outq) {
		n = send_dgram(c->ep.fd, iov, 3, fd);
		if (n == (ssize_t)total)
			return 0;
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			spryd_vlog(d, "control connection %u: send: %s",
				   (unsigned int)(c - d->conns),
				   n < 0 ? strerror(errno) : "short");
			spryd_conn_kill(d, c);
			return -EPIPE;
		}
	}
	if (c->outq_bytes + total > SPRYD_CONN_OUTQ_MAX) {
		spryd_log("control connection %u (pid %d): reply queue over %u bytes, closing",
			  (unsigned int)(c - d->conns), c->cred.pid, SPRYD_CONN_OUTQ_MAX);
		spryd_conn_kill(d, c);
		return -ENOBUFS;
	}
	m = malloc(sizeof(*m) + total);
	if (!m) {
		spryd_conn_kill(d, c);
		return -ENOMEM;
	}
	m->next = NULL;
	m->fd = -1;
	if (fd >= 0) {
		m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (m->fd < 0) {
			free(m);
			spryd_conn_kill(d, c);
			return -EMFILE;
		}
	}
	m->len = total;
	memcpy(m->data, &hdr, sizeof(hdr));
	if (alen)
		memcpy(m->data + sizeof(hdr), a, alen);
	if (blen)
		memcpy(m->data + sizeof(hdr) + alen, b, blen);
	*c->outq_tail = m;
	c->outq_tail = &m->next;
	c->outq_bytes += total;
	conn_want_out(d, c, true);
	return 0;
}

static void conn_flush(struct spryd *d, struct spryd_conn *c)
{
	struct spryd_outmsg *m;
	struct iovec iov;
	ssize_t n;

	while ((m = c->outq)) {
		iov.iov_base = m->data;
		iov.iov_len = m->len;
		n = send_dgram(c->ep.fd, &iov, 1, m->fd);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n != (ssize_t)m->len) {
			spryd_conn_kill(d, c);
			return;
		}
		c->outq = m->next;
		if (!c->outq)
			c->outq_tail = &c->outq;
		c->outq_bytes -= m->len;
		if (m->fd >= 0)
			close(m->fd);
		free(m);
	}
	conn_want_out(d, c, false);
}

static void ctl_accept(struct spryd *d)
{
	struct spryd_conn *c;
	socklen_t len;
	int fd, sz;

	for (;;) {
		fd = spryd_accept(d, d->ctl_ep.fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				spryd_log("control accept: %s", strerror(errno));
			return;
		}
		if (!d->n_conn_free) {
			d->st.conns_refused++;
			spryd_vlog(d, "control connection refused: %d connections open",
				   SPRYD_MAX_CONNS);
			close(fd);
			continue;
		}
		c = &d->conns[d->conn_free[--d->n_conn_free]];
		memset(&c->cred, 0, sizeof(c->cred));
		len = sizeof(c->cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len)) {
			spryd_log("control accept: SO_PEERCRED: %s", strerror(errno));
			d->n_conn_free++;
			close(fd);
			continue;
		}
		/* Results up to SPRY_CTL_MAX_MSG must fit one datagram. */
		sz = 2 * SPRY_CTL_MAX_MSG;
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		c->ep.kind = EP_CONN;
		c->ep.fd = fd;
		c->used = true;
		c->closing = false;
		c->want_out = false;
		c->n_reqs = 0;
		c->n_inst = 0;
		c->outq = NULL;
		c->outq_tail = &c->outq;
		c->outq_bytes = 0;
		if (spryd_ep_add(d, &c->ep, EPOLLIN)) {
			spryd_log("control accept: epoll: %s", strerror(errno));
			c->used = false;
			close(fd);
			c->ep.fd = -1;
			d->n_conn_free++;
			continue;
		}
		spryd_vlog(d, "control connection %u from pid %d uid %u",
			   (unsigned int)(c - d->conns), c->cred.pid, c->cred.uid);
	}
}

static uint16_t reply_type(uint16_t req_type)
{
	switch (req_type) {
	case SPRY_CTL_HELLO:
		return SPRY_CTL_HELLO_ACK;
	case SPRY_CTL_INVOKE:
		return SPRY_CTL_RESULT;
	default:
		return SPRY_CTL_REG_ACK;
	}
}

static void reply_malformed(struct spryd *d, struct spryd_conn *c, uint16_t type,
			    int32_t err, const char *why)
{
	struct spry_ctl_result res = {};
	struct spry_ctl_reg_ack ack = {};
	struct spry_ctl_hello_ack hack = {};
	uint16_t rt = reply_type(type);

	spryd_log("control connection %u (pid %d uid %u): malformed message: %s",
		  (unsigned int)(c - d->conns), c->cred.pid, c->cred.uid, why);
	if (rt == SPRY_CTL_RESULT)
		spryd_conn_send(d, c, rt, err, &res, sizeof(res), NULL, 0, -1);
	else if (rt == SPRY_CTL_HELLO_ACK)
		spryd_conn_send(d, c, rt, err, &hack, sizeof(hack), NULL, 0, -1);
	else
		spryd_conn_send(d, c, rt, err, &ack, sizeof(ack), NULL, 0, -1);
}

/* Receive one datagram: 1 handled, 0 nothing more now, -1 connection gone. */
static int conn_recv_one(struct spryd *d, struct spryd_conn *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { d->rxbuf, SPRY_CTL_MAX_MSG };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct spry_ctl_hdr hdr;
	struct cmsghdr *cm;
	int fds[8], n_fds = 0, fd = -1, i;
	uint16_t type = 0;
	ssize_t n;

	n = recvmsg(c->ep.fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		return -1;
	}
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k, cnt;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
			if (n_fds < (int)(sizeof(fds) / sizeof(fds[0])))
				fds[n_fds++] = f;
			else
				close(f);
		}
	}
	if (n == 0 && !n_fds)
		return -1;	/* EOF (or an empty datagram: the client's loss) */
	if ((size_t)n >= 6)
		memcpy(&type, d->rxbuf + 4, sizeof(type));
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		reply_malformed(d, c, type, msg.msg_flags & MSG_TRUNC ? -EMSGSIZE : -EINVAL,
				msg.msg_flags & MSG_TRUNC ? "too long" : "control data truncated");
		goto out_close_fds;
	}
	if ((size_t)n < sizeof(hdr)) {
		reply_malformed(d, c, type, -EINVAL, "short");
		goto out_close_fds;
	}
	memcpy(&hdr, d->rxbuf, sizeof(hdr));
	if (hdr.magic != SPRY_CTL_MAGIC) {
		reply_malformed(d, c, type, -EINVAL, "bad magic");
		goto out_close_fds;
	}
	if (hdr.version != SPRY_ABI_VERSION) {
		reply_malformed(d, c, type, -EINVAL, "bad version");
		goto out_close_fds;
	}
	if (hdr.len != (size_t)n - sizeof(hdr)) {
		reply_malformed(d, c, type, -EINVAL, "length mismatch");
		goto out_close_fds;
	}
	if (n_fds > 1 || (n_fds && hdr.type != SPRY_CTL_REGISTER)) {
		reply_malformed(d, c, type, -EINVAL, "unexpected file descriptors");
		goto out_close_fds;
	}
	if (n_fds)
		fd = fds[0];
	switch (hdr.type) {
	case SPRY_CTL_HELLO:
		if (hdr.len) {
			reply_malformed(d, c, type, -EINVAL, "HELLO with a body");
			break;
		}
		registrar_hello(d, c);
		break;
	case SPRY_CTL_REGISTER:
		/* Takes the fd (closes it in every case). */
		registrar_register(d, c, d->rxbuf + sizeof(hdr), hdr.len, fd);
		return 1;
	case SPRY_CTL_INVOKE:
		entry_invoke(d, c, d->rxbuf + sizeof(hdr), hdr.len);
		break;
	default:
		reply_malformed(d, c, type, -EINVAL, "unknown type");
		break;
	}
	return 1;

out_close_fds:
	for (i = 0; i < n_fds; i++)
		close(fds[i]);
	return 1;
}

static void conn_event(struct spryd *d, struct spryd_conn *c, uint32_t events)
{
	int i, r;

	if (!c->used || c->closing)
		return;
	if (events & EPOLLOUT)
		conn_flush(d, c);
	for (i = 0; i < CONN_MSGS_PER_EVENT && c->used && !c->closing; i++) {
		r = conn_recv_one(d, c);
		if (r < 0) {
			spryd_conn_kill(d, c);
			break;
		}
		if (!r)
			break;
	}
}

/* ------------------------------------------------------- setup */

static int mkdir_parents(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int ctl_listen(struct spryd *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat stt;
	int fd, err, probe;

	if (strlen(d->sock_path) >= sizeof(sa.sun_path)) {
		spryd_log("control socket path too long: %s", d->sock_path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, d->sock_path, strlen(d->sock_path) + 1);
	err = mkdir_parents(d->sock_path);
	if (err) {
		spryd_log("cannot create the directory of %s: %s", d->sock_path, strerror(-err));
		return err;
	}
	if (!lstat(d->sock_path, &stt)) {
		if (!S_ISSOCK(stt.st_mode)) {
			spryd_log("%s exists and is not a socket", d->sock_path);
			return -EEXIST;
		}
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
			close(probe);
			spryd_log("another spryd is listening on %s", d->sock_path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(d->sock_path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		spryd_log("bind %s: %s", d->sock_path, strerror(errno));
		goto err_close;
	}
	if (chmod(d->sock_path, 0666)) {
		err = -errno;
		goto err_unlink;
	}
	if (listen(fd, SOMAXCONN)) {
		err = -errno;
		goto err_unlink;
	}
	d->ctl_ep.kind = EP_CTL_LISTEN;
	d->ctl_ep.fd = fd;
	err = spryd_ep_add(d, &d->ctl_ep, EPOLLIN);
	if (err) {
		d->ctl_ep.fd = -1;
		goto err_unlink;
	}
	return 0;

err_unlink:
	unlink(d->sock_path);
err_close:
	close(fd);
	return err;
}

static int signals_init(struct spryd *d)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	d->sig_ep.kind = EP_SIGNAL;
	d->sig_ep.fd = fd;
	if (spryd_ep_add(d, &d->sig_ep, EPOLLIN)) {
		close(fd);
		d->sig_ep.fd = -1;
		return -errno;
	}
	return 0;
}

static int timer_init(struct spryd *d)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	d->timer_ep.kind = EP_TIMER;
	d->timer_ep.fd = fd;
	if (spryd_ep_add(d, &d->timer_ep, EPOLLIN)) {
		close(fd);
		d->timer_ep.fd = -1;
		return -errno;
	}
	return 0;
}

static void timer_run(struct spryd *d)
{
	uint64_t now = spryd_now_ns(), next = 0, exp;
	struct itimerspec its = {};

	if (d->timer_fired) {
		d->timer_fired = false;
		if (read(d->timer_ep.fd, &exp, sizeof(exp)) > 0)
			d->timer_armed = 0;	/* it fired: disarmed */
	}
	entry_timer(d, now, &next);
	registrar_timer(d, now, &next);
	gateway_timer(d, now, &next);
	if (next == d->timer_armed)
		return;
	if (next) {
		its.it_value.tv_sec = next / 1000000000ULL;
		its.it_value.tv_nsec = next % 1000000000ULL;
	}
	if (!timerfd_settime(d->timer_ep.fd, TFD_TIMER_ABSTIME, &its, NULL))
		d->timer_armed = next;
}

static void signal_event(struct spryd *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_ep.fd, &si, sizeof(si)) == sizeof(si)) {
		spryd_log("signal %u: shutting down", si.ssi_signo);
		d->stop = true;
	}
}

/* Endpoints live in tables that outlive the loop: kind is always readable. */
static int ep_kind(const struct epoll_event *ev)
{
	const struct spryd_ep *ep = ev->data.ptr;

	return ep->kind;
}

static void dispatch(struct spryd *d, struct epoll_event *ev)
{
	struct spryd_ep *ep = ev->data.ptr;

	if (ep->fd < 0)
		return;
	switch (ep->kind) {
	case EP_CTL_LISTEN:
		ctl_accept(d);
		break;
	case EP_CONN:
		conn_event(d, (struct spryd_conn *)ep, ev->events);
		break;
	case EP_TCP_LISTEN:
		registrar_accept(d);
		break;
	case EP_PENDING:
		registrar_pending_event(d, (struct spryd_pending *)ep);
		break;
	case EP_INST:
		registrar_inst_event(d, (struct spryd_inst *)ep);
		break;
	case EP_ORIGIN:
	case EP_ORIGIN_PEER:
		origin_event(d, ep, ev->events);
		break;
	case EP_TIMER:
		d->timer_fired = true;	/* timer_run() runs every iteration */
		break;
	case EP_SIGNAL:
		signal_event(d);
		break;
	case EP_EVENTS:
		registrar_events(d);
		break;
	case EP_HTTP_LISTEN:
	case EP_HTTP:
		gateway_event(d, ep, ev->events);
		break;
	case EP_DGRAM:
		dgram_event(d, ep, ev->events);
		break;
	}
}

static int run(struct spryd *d)
{
	struct epoll_event evs[64];
	int n, i;

	while (!d->stop) {
		n = epoll_wait(d->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			spryd_log("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		/*
		 * Finished requests first: their answers go out before this
		 * iteration reads and starts new ones (a request's latency is
		 * not made to wait behind the next batch's parsing).
		 */
		for (i = 0; i < n; i++)
			if (ep_kind(&evs[i]) == EP_ORIGIN)
				dispatch(d, &evs[i]);
		for (i = 0; i < n; i++)
			if (ep_kind(&evs[i]) != EP_ORIGIN)
				dispatch(d, &evs[i]);
		timer_run(d);
		gateway_run(d);
		dgram_run(d);
		origin_flush(d);
		close_pending_conns(d);
	}
	return 0;
}

static void shutdown_all(struct spryd *d)
{
	uint32_t i;

	/* Stop accepting. */
	spryd_ep_close(d, &d->ctl_ep);
	spryd_ep_close(d, &d->tcp_ep);
	gateway_stop(d);
	/* Answer what is in flight, then push the replies out. */
	entry_shutdown(d);
	gateway_fini(d);
	dgram_fini(d);
	for (i = 0; i < SPRYD_MAX_CONNS; i++)
		if (d->conns[i].used && !d->conns[i].closing && d->conns[i].outq)
			conn_flush(d, &d->conns[i]);
	for (i = 0; i < SPRYD_MAX_CONNS; i++)
		if (d->conns[i].used)
			spryd_conn_kill(d, &d->conns[i]);
	close_pending_conns(d);
	registrar_fini(d);
	origin_fini(d);
	entry_fini(d);
	unlink(d->sock_path);
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

static void usage(FILE *f)
{
	fprintf(f,
		"usage: spryd [options]\n"
		"  -P, --pin-dir DIR    pinned maps (default $SPRY_PIN_DIR or %s)\n"
		"  -s, --sock PATH      control socket (default %s)\n"
		"      --pool-dir DIR   pool files: hugetlbfs mount (else memfd)\n"
		"      --origins N      origin sockets (1..%d, default 1)\n"
		"      --cpus LIST      run on these CPUs (e.g. 1 or 0-3,6), like the chains\n"
		"                       placed there with `spry chain add ... cpus LIST`\n"
		"HTTP front:\n"
		"      --http ADDR:PORT listen there (default 127.0.0.1:8080; [::1]:P for IPv6;\n"
		"                       'none': no HTTP front)\n"
		"      --max-conns N    open HTTP connections (default 16384; more: closed at accept)\n"
		"      --max-line B     request line bytes (default 8192) -> 414\n"
		"      --max-header-bytes B  header section bytes (default 16384) -> 431\n"
		"      --max-headers N  header fields (default 64) -> 431\n"
		"      --max-body B     request body bytes (default 1048576) -> 413\n"
		"      --idle-timeout S    keep-alive idle (default 60)\n"
		"      --header-timeout S  a request's head (default 10) -> 408\n"
		"      --body-timeout S    a request's body after its head (default 30) -> 408\n"
		"      --write-timeout S   no write progress on a response (default 30): close\n"
		"      --access-log FILE   one line per request ('-': stderr; default off)\n"
		"Datagram requests (docs/DATAGRAM.md; repeatable):\n"
		"      --dgram IFNAME[:QUEUE]=CHAIN  AF_XDP socket on IFNAME's RX queue (default 0)\n"
		"                       for CHAIN, inserted in spry_xsks (`spry ingress attach`);\n"
		"                       its UMEM is a reserved run of CHAIN's pool (buffer size\n"
		"                       2048 or 4096); datagrams naming another chain: NO_CHAIN\n"
		"      --dgram-udp ADDR:PORT=CHAIN   the kernel UDP socket baseline, same format\n"
		"  -v, --verbose        log more\n"
		"  -h, --help           this text\n",
		SPRY_PIN_DIR_DEFAULT, SPRY_CTL_SOCK_DEFAULT, SPRYD_MAX_ORIGINS);
}

static int opt_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Seconds, fractions allowed ("0.5"): 1 ms .. 1 day, in ns. */
static int opt_secs(const char *s, uint64_t *ns)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.001 && v <= 86400.0))
		return -EINVAL;
	*ns = (uint64_t)(v * 1e9);
	return 0;
}

static int opt_index(const struct option *opts, int val)
{
	int i;

	for (i = 0; opts[i].name; i++)
		if (opts[i].val == val)
			return i;
	return 0;
}

/*
 * --cpus: run spryd (and the threads it starts later) on these CPUs.  On a
 * small machine, spryd and the chains it serves on one CPU hand requests
 * to each other without waking another CPU (docs/DESIGN.md, "Placement").
 */
static int place(const char *list)
{
	__u64 mask[SPRY_CPU_WORDS];
	char err[128];
	cpu_set_t set;

	if (spry_cpus__parse(list, mask, err, sizeof(err))) {
		fprintf(stderr, "spryd: --%s\n", err);
		return -EINVAL;
	}
	spry_cpus__to_set(mask, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "spryd: --cpus %s: %s\n", list, strerror(errno));
		return -errno;
	}
	return 0;
}

static int parse_args(struct spryd *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "sock", required_argument, NULL, 's' },
		{ "pool-dir", required_argument, NULL, 'p' },
		{ "origins", required_argument, NULL, 'o' },
		{ "http", required_argument, NULL, 'H' },
		{ "max-conns", required_argument, NULL, 1000 },
		{ "max-line", required_argument, NULL, 1001 },
		{ "max-header-bytes", required_argument, NULL, 1002 },
		{ "max-headers", required_argument, NULL, 1003 },
		{ "max-body", required_argument, NULL, 1004 },
		{ "idle-timeout", required_argument, NULL, 1005 },
		{ "header-timeout", required_argument, NULL, 1006 },
		{ "body-timeout", required_argument, NULL, 1007 },
		{ "write-timeout", required_argument, NULL, 1008 },
		{ "access-log", required_argument, NULL, 1009 },
		{ "dgram", required_argument, NULL, 1010 },
		{ "dgram-udp", required_argument, NULL, 1011 },
		{ "cpus", required_argument, NULL, 1012 },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *sock = SPRY_CTL_SOCK_DEFAULT, *pin = NULL;
	uint64_t u;
	char *end;
	long v;
	int c;

	d->n_origins = 1;
	gateway_opts_default(&d->http);
	while ((c = getopt_long(argc, argv, "P:s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			d->http.addr = strcmp(optarg, "none") ? optarg : NULL;
			d->http.addr_given = true;
			break;
		case 1000:
			if (opt_u64(optarg, 1, 1000000, &u))
				goto bad;
			d->http.max_conns = (uint32_t)u;
			break;
		case 1001:
			if (opt_u64(optarg, 1, SPRY_HTTP_LINE_MAX, &u))
				goto bad;
			d->http.max_line = u;
			break;
		case 1002:
			if (opt_u64(optarg, 1, SPRY_HTTP_HBYTES_MAX, &u))
				goto bad;
			d->http.max_header_bytes = u;
			break;
		case 1003:
			if (opt_u64(optarg, 1, SPRY_HTTP_NHDR_MAX, &u))
				goto bad;
			d->http.max_headers = u;
			break;
		case 1004:
			if (opt_u64(optarg, 0, SPRY_POOL_MAX_BUF, &u))
				goto bad;
			d->http.max_body = u;
			break;
		case 1005:
		case 1006:
		case 1007:
		case 1008:
			if (opt_secs(optarg, &u))
				goto bad;
			*(c == 1005 ? &d->http.idle_ns : c == 1006 ? &d->http.header_ns :
			  c == 1007 ? &d->http.body_ns : &d->http.write_ns) = u;
			break;
		case 1009:
			d->http.access_log = optarg;
			break;
		case 1010:
		case 1011:
			if (dgram_opt(d, optarg, c == 1011))
				return -EINVAL;
			break;
		case 1012:
			if (place(optarg))
				return -EINVAL;
			break;
		case 'P':
			pin = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'p':
			d->pool_dir = optarg;
			break;
		case 'o':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > SPRYD_MAX_ORIGINS) {
				fprintf(stderr, "spryd: --origins: 1..%d\n", SPRYD_MAX_ORIGINS);
				return -EINVAL;
			}
			d->n_origins = (unsigned int)v;
			break;
		case 'v':
			d->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		continue;
bad:
		fprintf(stderr, "spryd: bad value '%s' for --%s\n", optarg,
			opts[opt_index(opts, c)].name);
		return -EINVAL;
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (!*sock || strlen(sock) >= sizeof(d->sock_path)) {
		fprintf(stderr, "spryd: control socket path empty or too long\n");
		return -EINVAL;
	}
	strcpy(d->sock_path, sock);
	d->pin_dir = spry_pin_dir(pin);
	return 0;
}

static int alloc_tables(struct spryd *d)
{
	uint32_t i;

	d->conns = calloc(SPRYD_MAX_CONNS, sizeof(*d->conns));
	d->conn_free = calloc(SPRYD_MAX_CONNS, sizeof(*d->conn_free));
	d->close_list = calloc(SPRYD_MAX_CONNS, sizeof(*d->close_list));
	d->insts = calloc(SPRY_MAX_FNS * SPRY_MAX_INST, sizeof(*d->insts));
	d->rxbuf = malloc(SPRY_CTL_MAX_MSG);
	d->retries = calloc(SPRY_MAX_FNS, sizeof(*d->retries));
	if (!d->conns || !d->conn_free || !d->close_list || !d->insts || !d->rxbuf ||
	    !d->retries)
		return -ENOMEM;
	for (i = 0; i < SPRYD_MAX_CONNS; i++) {
		d->conns[i].ep.fd = -1;
		d->conns[i].outq_tail = &d->conns[i].outq;
		d->conn_free[i] = SPRYD_MAX_CONNS - 1 - i;
	}
	d->n_conn_free = SPRYD_MAX_CONNS;
	for (i = 0; i < SPRY_MAX_FNS * SPRY_MAX_INST; i++)
		d->insts[i].ep.fd = -1;
	for (i = 0; i < SPRYD_MAX_PENDING; i++)
		d->pending[i].ep.fd = -1;
	for (i = 0; i < SPRYD_MAX_ORIGINS; i++) {
		d->origins[i].o.fd = -1;
		d->origins[i].peer.fd = -1;
	}
	return 0;
}

static void free_tables(struct spryd *d)
{
	free(d->conns);
	free(d->conn_free);
	free(d->close_list);
	free(d->insts);
	free(d->retries);
	free(d->rxbuf);
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

int main(int argc, char **argv)
{
	struct spryd *d;
	int err;

	d = calloc(1, sizeof(*d));
	if (!d) {
		fprintf(stderr, "spryd: out of memory\n");
		return 1;
	}
	d->epfd = -1;
	d->spare_fd = -1;
	d->ctl_ep.fd = d->tcp_ep.fd = d->timer_ep.fd = d->sig_ep.fd = d->events_ep.fd = -1;
	memset(&d->maps, 0, sizeof(d->maps));
	d->maps.socks = d->maps.senders = d->maps.chains = d->maps.fns = -1;
	d->maps.auth = d->maps.inst = d->maps.verdicts = d->maps.fn_stats = -1;
	d->maps.reqloc = d->maps.events = -1;
	err = parse_args(d, argc, argv);
	if (err)
		goto out_free;
	err = alloc_tables(d);
	if (err) {
		spryd_log("out of memory");
		goto out_tables;
	}
	libbpf_set_print(NULL);
	raise_nofile(d);
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	err = spry_maps__open(&d->maps, d->pin_dir);
	if (err) {
		if (err == -ENOENT)
			spryd_log("spry is not loaded in %s: run `spry -P %s load` first",
				  d->pin_dir, d->pin_dir);
		else
			spryd_log("cannot open the maps pinned in %s: %s", d->pin_dir,
				  strerror(-err));
		goto out_tables;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0) {
		err = -errno;
		goto out_maps;
	}
	err = signals_init(d);
	if (err)
		goto out_epoll;
	err = timer_init(d);
	if (err)
		goto out_sig;
	err = entry_init(d);
	if (err) {
		spryd_log("request table: %s", strerror(-err));
		goto out_timer;
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
	if (err) {
		gateway_fini(d);
		dgram_fini(d);
		goto out_origin;
	}
	err = ctl_listen(d);
	if (err) {
		gateway_fini(d);
		dgram_fini(d);
		goto out_origin;
	}
	/* Everything needing more is set up: keep what the loop uses. */
	err = spryd_drop_privs(d);
	if (err) {
		shutdown_all(d);
		goto out_timer;
	}
	spryd_log("ready: pins %s, control %s, functions connect to 127.0.0.1:%u, "
		  "%u origin%s, pools %s", d->pin_dir, d->sock_path,
		  ntohs(d->tcp_addr.sin_port), d->n_origins, d->n_origins == 1 ? "" : "s",
		  d->pool_dir ? d->pool_dir : "memfd");
	err = run(d);
	shutdown_all(d);
	log_stats(d);
	spryd_log("stopped");
	goto out_timer;

out_origin:
	origin_fini(d);
out_registrar:
	registrar_fini(d);
out_entry:
	entry_fini(d);
out_timer:
	spryd_ep_close(d, &d->timer_ep);
out_sig:
	spryd_ep_close(d, &d->sig_ep);
out_epoll:
	close(d->epfd);
out_maps:
	spry_maps__close(&d->maps);
out_tables:
	if (d->spare_fd >= 0)
		close(d->spare_fd);
	free_tables(d);
out_free:
	dgram_fini(d);	/* options parsed, nothing opened: frees them */
	free(d);
	return err ? 1 : 0;
}
