// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's control-socket room (spryd/ctl.h): the SOCK_SEQPACKET listener
 * (d->sock_path, mode 0666), its connections, the framing of control
 * datagrams and their dispatch, and the INVOKE front.  Protocol:
 * fn-runtime/proto.h; behaviour: docs/DESIGN.md.
 *
 * Control datagrams are received here directly (not with spry_ctl_recv)
 * because a malformed one must still be answered on a non-blocking socket,
 * and replies are queued per connection when the client does not read.
 * Malformed datagrams (short, bad magic or version, length mismatch,
 * truncated, unknown type) are answered with the reply type of the request
 * type they name (HELLO_ACK, REG_ACK, RESULT; REG_ACK when the type is
 * unknown) and status -EINVAL (-EMSGSIZE when truncated); the connection
 * stays usable.
 *
 * HELLO, REGISTER and TEMPLATE go to the registrar's handlers (ctl_set_handlers);
 * INVOKE starts a request through the request core (entry.h) owned by this
 * front, whose completion op sends the RESULT.  A connection counts its
 * requests until they are answered (SPRYD_CONN_MAX_REQS).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "lib/fs.h"
#include "spryd/ctl.h"
#include "spryd/entry.h"
#include "spryd/spryd.h"

#define CONN_MSGS_PER_EVENT	64

static const struct spryd_front_ops ctl_front_ops;

void ctl_set_handlers(struct spryd *d, const struct spryd_ctl_handlers *h)
{
	d->ctl_reg = h;
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

	if (d->ctl_reg)
		d->ctl_reg->conn_closed(d, c);
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

void ctl_reap(struct spryd *d)
{
	while (d->n_close) {
		uint32_t idx = d->close_list[--d->n_close];

		conn_close(d, &d->conns[idx]);
	}
}

static ssize_t send_dgram(int fd, const struct iovec *iov, int iovcnt, int pass_fd)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	union spry_ctl_fdbuf cb;

	if (pass_fd >= 0)
		spry_ctl_put_fd(&msg, &cb, pass_fd);
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
		c->ep.ops = &ctl_front_ops.ep;
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
	case SPRY_CTL_TEMPLATE:
		return SPRY_CTL_TEMPLATE_ACK;
	case SPRY_CTL_PROC:
		return SPRY_CTL_PROC_ACK;
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
	struct spry_ctl_template_ack tack = {};
	uint16_t rt = reply_type(type);

	spryd_log("control connection %u (pid %d uid %u): malformed message: %s",
		  (unsigned int)(c - d->conns), c->cred.pid, c->cred.uid, why);
	if (rt == SPRY_CTL_RESULT)
		spryd_conn_send(d, c, rt, err, &res, sizeof(res), NULL, 0, -1);
	else if (rt == SPRY_CTL_HELLO_ACK)
		spryd_conn_send(d, c, rt, err, &hack, sizeof(hack), NULL, 0, -1);
	else if (rt == SPRY_CTL_TEMPLATE_ACK)
		spryd_conn_send(d, c, rt, err, &tack, sizeof(tack), NULL, 0, -1);
	else if (rt == SPRY_CTL_PROC_ACK)
		spryd_conn_send(d, c, rt, err, NULL, 0, NULL, 0, -1);
	else
		spryd_conn_send(d, c, rt, err, &ack, sizeof(ack), NULL, 0, -1);
}

/* ------------------------------------------------------------ INVOKE */

/* An app's metadata: "fn: NAME\n" (at most 36 bytes), padded. */
#define INVOKE_META_LEN		64

static void refuse(struct spryd *d, struct spryd_conn *c, int err, const char *why)
{
	struct spry_ctl_result res = {};

	d->st.refused++;
	spryd_vlog(d, "INVOKE from pid %d refused: %s (%s)", c->cred.pid, why,
		   strerror(-err));
	spryd_conn_send(d, c, SPRY_CTL_RESULT, err, &res, sizeof(res), NULL, 0, -1);
}

/*
 * The control peer's supplementary groups (SO_PEERGROUPS: the groups it
 * had at connect(), like SO_PEERCRED) into *@out (@buf, or malloc'd when
 * more than @cap: free it if it is not @buf): the count, or -errno.
 */
static int peer_groups(int fd, __u32 *buf, size_t cap, __u32 **out)
{
	socklen_t len = cap * sizeof(*buf);
	__u32 *big;

	*out = buf;
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len))
		return len / sizeof(*buf);
	if (errno != ERANGE)
		return -errno;
	/* len is now what the groups need (at most NGROUPS_MAX of them). */
	big = malloc(len ? len : 1);
	if (!big)
		return -ENOMEM;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, big, &len)) {
		free(big);
		return -errno;
	}
	*out = big;
	return len / sizeof(*big);
}

/*
 * May the peer of control connection @c invoke chain @id?  Its record's
 * invoke lists (docs/SECURITY.md): root always, a listed uid, or a listed
 * group among the peer's gid and supplementary groups.  0, or -EACCES
 * after counting the refusal (per chain, /metrics) and logging it once
 * per connection and at most INVOKE_LOG_PER_S times a second overall.
 */
#define INVOKE_LOG_PER_S	10
static int invoke_check(struct spryd *d, struct spryd_conn *c, uint16_t id,
			const struct spry_chain *rec)
{
	static uint64_t log_second, suppressed;
	static unsigned int logged_this_second;
	static bool groups_warned;
	struct spryd_chain *cs = &d->chains[id];
	__u32 buf[64], *groups = NULL;
	uint64_t sec;
	int n = 0;
	bool ok;

	ok = spry_chain__may_invoke(rec, c->cred.uid, c->cred.gid, NULL, 0);
	if (!ok && rec->n_invoke_gids) {
		n = peer_groups(c->ep.fd, buf, sizeof(buf) / sizeof(buf[0]), &groups);
		if (n < 0 && !groups_warned) {
			groups_warned = true;
			spryd_log("SO_PEERGROUPS: %s: invoke groups match the peer's "
				  "primary group only", strerror(-n));
		}
		if (n > 0)
			ok = spry_chain__may_invoke(rec, c->cred.uid, c->cred.gid,
						    groups, (size_t)n);
		if (groups != buf)
			free(groups);
	}
	if (ok)
		return 0;

	if (strncmp(cs->refused_name, rec->name, SPRY_NAME_LEN)) {
		/* A new chain on this id: a new series in /metrics. */
		memcpy(cs->refused_name, rec->name, SPRY_NAME_LEN);
		cs->refused_name[SPRY_NAME_LEN - 1] = '\0';
		cs->invoke_refused = 0;
	}
	cs->invoke_refused++;
	/* c->gen changes when the slot is reused: gen + 1 marks this one. */
	if (c->refusal_logged == c->gen + 1)
		return -EACCES;
	sec = spryd_now_ns() / 1000000000ULL;
	if (sec != log_second) {
		log_second = sec;
		logged_this_second = 0;
	}
	if (logged_this_second >= INVOKE_LOG_PER_S) {
		suppressed++;
		return -EACCES;
	}
	logged_this_second++;
	c->refusal_logged = c->gen + 1;
	if (suppressed) {
		spryd_log("INVOKE refused %llu more times, not logged (at most %d lines a second)",
			  (unsigned long long)suppressed, INVOKE_LOG_PER_S);
		suppressed = 0;
	}
	spryd_log("INVOKE refused: user %u (pid %d, gid %u) may not invoke chain %s "
		  "(further refusals on this connection are only counted)",
		  c->cred.uid, c->cred.pid, c->cred.gid, cs->refused_name);
	return -EACCES;
}

static void invoke(struct spryd *d, struct spryd_conn *c, const void *body, uint32_t len)
{
	struct spry_ctl_invoke inv;
	struct spry_chain rec;
	struct spryd_req *r;
	uint32_t meta_len = 0;
	uint16_t id;
	void *p;
	int err;

	if (len < sizeof(inv)) {
		refuse(d, c, -EINVAL, "INVOKE too short");
		return;
	}
	memcpy(&inv, body, sizeof(inv));
	if (inv.len != len - sizeof(inv)) {
		refuse(d, c, -EINVAL, "INVOKE payload length mismatch");
		return;
	}
	if (!memchr(inv.chain, '\0', sizeof(inv.chain)) || spry_name_check(inv.chain)) {
		refuse(d, c, -EINVAL, "bad chain name");
		return;
	}
	if (inv.flags & ~(uint32_t)SPRY_DF_STICKY) {
		refuse(d, c, -EINVAL, "bad flags");
		return;
	}
	if (!memchr(inv.fn, '\0', sizeof(inv.fn)) || (inv.fn[0] && spry_name_check(inv.fn))) {
		refuse(d, c, -EINVAL, "bad function name");
		return;
	}
	if (c->n_reqs >= SPRYD_CONN_MAX_REQS) {
		refuse(d, c, -EBUSY, "connection's in-flight bound");
		return;
	}
	err = entry_find_chain(d, inv.chain, &id, &rec);
	if (err) {
		refuse(d, c, err == -EINVAL ? -EINVAL : -ENOENT, "unknown chain");
		return;
	}
	err = invoke_check(d, c, id, &rec);
	if (err) {
		refuse(d, c, err, "not allowed to invoke the chain");
		return;
	}
	/*
	 * An app's request names one of its functions (metadata "fn", a
	 * 64-byte line) and a process by its key, 0 (none) or 1..2^63-1.
	 */
	if (rec.flags & SPRY_CF_APP) {
		const struct spry_app_decl *app = d->chains[id].app;

		if (!app || spry_app_decl__find_fn(app, inv.fn, strlen(inv.fn)) < 0) {
			refuse(d, c, -ENOENT, "no such function in the app");
			return;
		}
		if ((inv.flags & SPRY_DF_STICKY) && (!inv.key || inv.key > SPRY_PROC_ID_MAX)) {
			refuse(d, c, -EINVAL, "bad process id");
			return;
		}
		if (!inv.key)
			inv.flags = 0;
		meta_len = INVOKE_META_LEN;
	} else if (inv.fn[0]) {
		refuse(d, c, -EINVAL, "a function name for a chain that is no app");
		return;
	}
	if (inv.len > UINT32_MAX - meta_len) {
		refuse(d, c, -EMSGSIZE, "too big");
		return;
	}
	err = entry_prepare(d, id, &rec, meta_len + inv.len, (uint8_t)d->ctl_front,
			    (uint32_t)(c - d->conns), c->gen, &r, &p);
	if (err) {
		refuse(d, c, err, err == -EBUSY ? "in-flight bound" :
				  err == -ENOSPC || err == -EMSGSIZE ? "no buffer" : "no pool");
		return;
	}
	if (meta_len) {
		int m = snprintf(p, meta_len, "fn: %s\n", inv.fn);

		memset((char *)p + m, '\n', meta_len - (uint32_t)m);
		/* the handler number: what the router checks a next against */
		r->desc.fn = (uint16_t)(1 + spry_app_decl__find_fn(d->chains[id].app, inv.fn,
								   strlen(inv.fn)));
	}
	if (inv.len)
		memcpy((char *)p + meta_len, (const uint8_t *)body + sizeof(inv), inv.len);
	c->n_reqs++;
	entry_submit(d, r, meta_len, inv.len, (uint8_t)(inv.flags & SPRY_DF_STICKY), inv.key);
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
		if (d->ctl_reg)
			d->ctl_reg->hello(d, c);
		break;
	case SPRY_CTL_REGISTER:
		/* Takes the fd (closes it in every case). */
		if (d->ctl_reg)
			d->ctl_reg->reg(d, c, d->rxbuf + sizeof(hdr), hdr.len, fd);
		else if (fd >= 0)
			close(fd);
		return 1;
	case SPRY_CTL_TEMPLATE:
		if (d->ctl_reg)
			d->ctl_reg->tmpl(d, c, d->rxbuf + sizeof(hdr), hdr.len);
		break;
	case SPRY_CTL_INVOKE:
		invoke(d, c, d->rxbuf + sizeof(hdr), hdr.len);
		break;
	case SPRY_CTL_PROC:
		if (d->proc_hooks)
			d->proc_hooks->ctl(d, c, d->rxbuf + sizeof(hdr), hdr.len);
		else
			reply_malformed(d, c, type, -EOPNOTSUPP, "no process room");
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

/* ------------------------------------------------------------ setup */

/* The socket's directory and those above it, 0755: users reach it (docs/SECURITY.md). */
static int mkdir_parents(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = '\0';
	return spry_mkdir_p(buf, 0755, 0755);
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
	d->ctl_ep.ops = &ctl_front_ops.ep;
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


/* ------------------------------------------------------------ front ops */

static void ctl_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	if (ep == &d->ctl_ep)
		ctl_accept(d);
	else
		conn_event(d, (struct spryd_conn *)ep, events);
}

/* RESULT to the connection that sent the INVOKE (dropped if it is gone). */
static bool ctl_complete(struct spryd *d, const struct spryd_req *r, int err,
			 uint32_t status, const struct spry_desc *desc)
{
	struct spryd_conn *c = spryd_conn_get(d, r->conn, r->conn_gen);
	struct spry_ctl_result res = {
		.req_id = r->req_id,
		.status = status,
	};
	const uint8_t *p = NULL;

	if (!c)
		return false;
	if (c->n_reqs)
		c->n_reqs--;
	if (!err && desc) {
		res.status = desc->status;
		if (sizeof(struct spry_ctl_hdr) + sizeof(res) + desc->len > SPRY_CTL_MAX_MSG)
			err = -EMSGSIZE;
		else
			p = spry_pool_ptr(d->chains[r->chain].pool, desc->off,
					  (uint64_t)desc->meta_len + desc->len);
		if (p) {
			p += desc->meta_len;
			res.len = desc->len;
		}
	} else if (!err) {
		err = -EIO;
	}
	res.latency_ns = spryd_now_ns() - r->t_start;
	spryd_conn_send(d, c, SPRY_CTL_RESULT, err, &res, sizeof(res), p, res.len, -1);
	return false;
}

static void ctl_stop(struct spryd *d)
{
	spryd_ep_close(d, &d->ctl_ep);
}

/* Push the answers out, then close every connection. */
static void ctl_shutdown(struct spryd *d)
{
	uint32_t i;

	if (!d->conns)
		return;
	for (i = 0; i < SPRYD_MAX_CONNS; i++)
		if (d->conns[i].used && !d->conns[i].closing && d->conns[i].outq)
			conn_flush(d, &d->conns[i]);
	for (i = 0; i < SPRYD_MAX_CONNS; i++)
		if (d->conns[i].used)
			spryd_conn_kill(d, &d->conns[i]);
	ctl_reap(d);
	unlink(d->sock_path);
}

static const struct spryd_front_ops ctl_front_ops = {
	.ep = { .name = "ctl", .event = ctl_event },
	.complete = ctl_complete,
	.stop = ctl_stop,
	.shutdown = ctl_shutdown,
};

int ctl_alloc(struct spryd *d)
{
	uint32_t i;

	d->ctl_ep.fd = -1;
	d->conns = calloc(SPRYD_MAX_CONNS, sizeof(*d->conns));
	d->conn_free = calloc(SPRYD_MAX_CONNS, sizeof(*d->conn_free));
	d->close_list = calloc(SPRYD_MAX_CONNS, sizeof(*d->close_list));
	d->rxbuf = malloc(SPRY_CTL_MAX_MSG);
	if (!d->conns || !d->conn_free || !d->close_list || !d->rxbuf)
		return -ENOMEM;
	for (i = 0; i < SPRYD_MAX_CONNS; i++) {
		d->conns[i].ep.fd = -1;
		d->conns[i].outq_tail = &d->conns[i].outq;
		d->conn_free[i] = SPRYD_MAX_CONNS - 1 - i;
	}
	d->n_conn_free = SPRYD_MAX_CONNS;
	return 0;
}

void ctl_free(struct spryd *d)
{
	free(d->conns);
	free(d->conn_free);
	free(d->close_list);
	free(d->rxbuf);
	d->conns = NULL;
	d->conn_free = d->close_list = NULL;
	d->rxbuf = NULL;
}

int ctl_init(struct spryd *d)
{
	int err = ctl_listen(d);

	if (err)
		return err;
	d->ctl_front = front_register(d, &ctl_front_ops);
	if (d->ctl_front < 0) {
		err = d->ctl_front;
		spryd_ep_close(d, &d->ctl_ep);
		unlink(d->sock_path);
	}
	return err;
}
