// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's registrar room (spryd/registrar.h): the TCP listener function sockets connect to, the
 * accepted peers (B) waiting for their REGISTER, the checks on a received
 * socket, the instance table and its maps (spry_senders, spry_socks,
 * spry_inst, spry_fns), instance deaths and the quarantine events.
 *
 * HELLO, REGISTER and TEMPLATE reach it from the control socket (ctl.c) through the
 * handlers it installs there; replies go back on the same connection.
 *
 * Refusals (REG_ACK status, and one log line each):
 *   -EINVAL        malformed REGISTER (size, names, flags)
 *   -EBADF         no socket passed
 *   -ENOENT        unknown or inactive chain, or fn not in it
 *   -EPERM         control peer's uid is neither the chain's nor 0
 *   -ENOTSOCK      the fd is not a socket
 *   -EPROTOTYPE    not AF_INET / SOCK_STREAM / IPPROTO_TCP
 *   -ENOTCONN      not ESTABLISHED, or no accepted peer B matches it
 *   -ECONNREFUSED  connected, but not to spryd's listener
 *   -ENOSPC        no free instance slot for the fn (or connection's quota)
 *   -ESTALE        the chain's geometry changed while its pool is in use
 *   other -errno   a map update or pool creation failed
 *
 * A quarantined instance (an event for it, its spry_inst QUARANTINED) is
 * deregistered like a dead one: it can no longer send, so leaving it in
 * spry_fns would only swallow requests.  Its spry_inst entry keeps
 * QUARANTINED (without LIVE) for display until the slot is reused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/file.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "spryd/ctl.h"
#include "spryd/entry.h"
#include "spryd/fan.h"
#include "spryd/mail.h"
#include "spryd/origin.h"
#include "spryd/registrar.h"
#include "spryd/spryd.h"

static void registrar_accept(struct spryd *d);
static void tcp_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
static void pending_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
static void inst_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
static void events_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);

static const struct spryd_ep_ops tcp_ops = { .name = "fn-listen", .event = tcp_event };
static const struct spryd_ep_ops pending_ops = { .name = "fn-pending", .event = pending_event };
static const struct spryd_ep_ops inst_ops = { .name = "fn-inst", .event = inst_event };
static const struct spryd_ep_ops events_ops = { .name = "events", .event = events_event };

static const char *err_name(int err)
{
	return strerror(err < 0 ? -err : err);
}

/* ---------------------------------------------------- map helpers */

/* Read-modify-write spry_fns[fn] under the pin lock: add or remove @idx. */
static int fn_list_update(struct spryd *d, uint16_t fn, uint16_t chain, uint16_t idx,
			  bool add)
{
	struct spry_fn f;
	int lock, err;
	unsigned int i, j;

	lock = spry_pin_lock(d->pin_dir, LOCK_EX);
	if (lock < 0)
		return lock;
	err = spry_fn__get(&d->maps, fn, &f);
	if (err)
		goto out;
	if (f.n_inst > SPRY_MAX_INST)
		f.n_inst = SPRY_MAX_INST;
	if (add) {
		if (f.chain != chain || !f.name[0]) {
			err = -ENOENT;
			goto out;
		}
		for (i = 0; i < f.n_inst; i++)
			if (f.inst[i] == idx)
				goto out;	/* already listed */
		if (f.n_inst >= SPRY_MAX_INST) {
			err = -ENOSPC;
			goto out;
		}
		f.inst[f.n_inst++] = idx;
	} else {
		for (i = 0, j = 0; i < f.n_inst; i++)
			if (f.inst[i] != idx)
				f.inst[j++] = f.inst[i];
		if (j == f.n_inst)
			goto out;	/* not listed (chain replaced/removed) */
		f.n_inst = j;
	}
	err = spry_fn__put(&d->maps, fn, &f);
out:
	spry_pin_unlock(lock);
	return err;
}

static void socks_delete(struct spryd *d, uint16_t fn, uint16_t idx)
{
	struct spry_inst_key key = { .fn = fn, .inst = idx };

	if (bpf_map_delete_elem(d->maps.socks, &key) && errno != ENOENT)
		spryd_log("spry_socks delete {%u, %u}: %s", fn, idx, strerror(errno));
}

/* -------------------------------------------------- TCP listener, B's */

static int tcp_listen(struct spryd *d)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd, err;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&d->tcp_addr, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	d->tcp_ep.ops = &tcp_ops;
	d->tcp_ep.fd = fd;
	err = spryd_ep_add(d, &d->tcp_ep, EPOLLIN);
	if (err) {
		close(fd);
		d->tcp_ep.fd = -1;
	}
	return err;
}

static void pending_drop(struct spryd *d, struct spryd_pending *p)
{
	spryd_ep_close(d, &p->ep);
	d->n_pending--;
}

/* A free pending slot; evicts the oldest when all are taken. */
static struct spryd_pending *pending_slot(struct spryd *d)
{
	struct spryd_pending *oldest = NULL;
	unsigned int i;

	for (i = 0; i < SPRYD_MAX_PENDING; i++) {
		struct spryd_pending *p = &d->pending[i];

		if (p->ep.fd < 0)
			return p;
		if (!oldest || p->t_ns < oldest->t_ns)
			oldest = p;
	}
	spryd_vlog(d, "pending TCP connections full: dropping the oldest");
	pending_drop(d, oldest);
	return oldest;
}

static void registrar_accept(struct spryd *d)
{
	struct spryd_pending *p;
	struct sockaddr_in sa;
	socklen_t len;
	int fd;

	if (d->tcp_ep.fd < 0)
		return;
	for (;;) {
		len = sizeof(sa);
		fd = spryd_accept(d, d->tcp_ep.fd, (struct sockaddr *)&sa, &len);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				spryd_log("TCP accept: %s", strerror(errno));
			return;
		}
		if (len != sizeof(sa) || sa.sin_family != AF_INET) {
			close(fd);
			continue;
		}
		p = pending_slot(d);
		p->ep.ops = &pending_ops;
		p->ep.fd = fd;
		p->peer = sa;
		p->t_ns = spryd_now_ns();
		if (spryd_ep_add(d, &p->ep, EPOLLIN | EPOLLRDHUP)) {
			close(fd);
			p->ep.fd = -1;
			continue;
		}
		d->n_pending++;
	}
}

static void tcp_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	(void)ep;
	(void)events;
	registrar_accept(d);
}

/* Data or EOF on an unregistered B: it has no business talking yet. */
static void pending_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct spryd_pending *p = (struct spryd_pending *)ep;

	(void)events;
	spryd_vlog(d, "unregistered TCP peer 127.0.0.1:%u sent data or closed",
		   ntohs(p->peer.sin_port));
	pending_drop(d, p);
}

static struct spryd_pending *pending_find(struct spryd *d, const struct sockaddr_in *a)
{
	unsigned int i;

	for (i = 0; i < SPRYD_MAX_PENDING; i++) {
		struct spryd_pending *p = &d->pending[i];

		if (p->ep.fd >= 0 && p->peer.sin_port == a->sin_port &&
		    p->peer.sin_addr.s_addr == a->sin_addr.s_addr)
			return p;
	}
	return NULL;
}

/* ------------------------------------------------------------ HELLO */

static void registrar_hello(struct spryd *d, struct spryd_conn *c)
{
	struct spry_ctl_hello_ack ack = {
		.tcp_port = ntohs(d->tcp_addr.sin_port),
		.abi = SPRY_ABI_VERSION,
	};

	spryd_conn_send(d, c, SPRY_CTL_HELLO_ACK, 0, &ack, sizeof(ack), NULL, 0, -1);
}

/* --------------------------------------------------------- REGISTER */

static int check_socket(struct spryd *d, int fd, struct sockaddr_in *local,
			const char **why)
{
	struct sockaddr_in peer;
	struct tcp_info ti;
	socklen_t len;
	int v;

	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len)) {
		*why = errno == ENOTSOCK ? "not a socket" : "SO_DOMAIN failed";
		return errno == ENOTSOCK ? -ENOTSOCK : -EINVAL;
	}
	if (v != AF_INET) {
		*why = "not an AF_INET socket";
		return -EPROTOTYPE;
	}
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) || v != SOCK_STREAM) {
		*why = "not a SOCK_STREAM socket";
		return -EPROTOTYPE;
	}
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) || v != IPPROTO_TCP) {
		*why = "not a TCP socket";
		return -EPROTOTYPE;
	}
	memset(&ti, 0, sizeof(ti));
	len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) || len < 1 ||
	    ti.tcpi_state != TCP_ESTABLISHED) {
		*why = "TCP socket not established";
		return -ENOTCONN;
	}
	len = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &len)) {
		*why = "getpeername failed";
		return -ENOTCONN;
	}
	if (len != sizeof(peer) || peer.sin_family != AF_INET ||
	    peer.sin_addr.s_addr != d->tcp_addr.sin_addr.s_addr ||
	    peer.sin_port != d->tcp_addr.sin_port) {
		*why = "socket connected elsewhere than spryd's listener";
		return -ECONNREFUSED;
	}
	len = sizeof(*local);
	if (getsockname(fd, (struct sockaddr *)local, &len) || len != sizeof(*local) ||
	    local->sin_family != AF_INET) {
		*why = "getsockname failed";
		return -ENOTCONN;
	}
	return 0;
}

static bool name_field_ok(const char *s)
{
	return memchr(s, '\0', SPRY_NAME_LEN) && !spry_name_check(s);
}

static void reg_refuse(struct spryd *d, struct spryd_conn *c, int err, const char *chain,
		       const char *fn, const char *why)
{
	struct spry_ctl_reg_ack ack = {};

	d->st.reg_refused++;
	spryd_log("registration refused: %s/%s from pid %d uid %u: %s (%s)",
		  chain ? chain : "?", fn ? fn : "?", c->cred.pid, c->cred.uid, why,
		  err_name(err));
	spryd_conn_send(d, c, SPRY_CTL_REG_ACK, err, &ack, sizeof(ack), NULL, 0, -1);
}

static void tmpl_refuse(struct spryd *d, struct spryd_conn *c, int err, const char *chain,
			const char *fn, const char *why)
{
	struct spry_ctl_template_ack ack = {};

	d->st.reg_refused++;
	spryd_log("template refused: %s/%s from pid %d uid %u: %s (%s)",
		  chain ? chain : "?", fn ? fn : "?", c->cred.pid, c->cred.uid, why,
		  err_name(err));
	spryd_conn_send(d, c, SPRY_CTL_TEMPLATE_ACK, err, &ack, sizeof(ack), NULL, 0, -1);
}

static int inst_publish(struct spryd *d, struct spryd_inst *in, int fd)
{
	struct spry_sender s = {
		.chain = in->chain, .fn = in->fn, .inst = in->idx, .role = SPRY_ROLE_FN,
	};
	struct spry_inst_state st = {
		.flags = SPRY_IF_LIVE, .cookie = in->cookie, .pid = in->pid, .uid = in->uid,
	};
	struct spry_inst_key key = { .fn = in->fn, .inst = in->idx };
	__u64 val = (__u64)fd;
	int err;

	err = origin_fd_set_sender(d, fd, &s);
	if (err)
		return err;
	err = spry_inst__put(&d->maps, in->fn, in->idx, &st);
	if (err)
		goto err_sender;
	if (bpf_map_update_elem(d->maps.socks, &key, &val, BPF_ANY)) {
		err = -errno;
		goto err_inst;
	}
	err = fn_list_update(d, in->fn, in->chain, in->idx, true);
	if (err)
		goto err_socks;
	in->draining = false;
	if (d->fn_routable)
		d->fn_routable[in->fn]++;
	return 0;

err_socks:
	socks_delete(d, in->fn, in->idx);
err_inst:
	memset(&st, 0, sizeof(st));
	spry_inst__put(&d->maps, in->fn, in->idx, &st);
err_sender:
	bpf_map_delete_elem(d->maps.senders, &fd);
	return err;
}

/*
 * The chain's function table that follows struct spry_ctl_reg_ack in
 * REG_ACK (fn-runtime/proto.h), so the function can CALL by name.  Fills
 * @tab (SPRY_MAX_FNS entries) and returns how many; a map read failure
 * ends the table early (calls to the missing names get -ENOENT).
 */
static uint32_t reg_fn_table(struct spryd *d, uint16_t chain_id,
			     struct spry_ctl_fn_entry *tab)
{
	struct spry_fn f;
	uint32_t n = 0;
	uint16_t id;

	for (id = 1; id < SPRY_MAX_FNS; id++) {
		if (spry_fn__get(&d->maps, id, &f))
			break;
		if (!f.name[0] || f.chain != chain_id)
			continue;
		memset(&tab[n], 0, sizeof(tab[n]));
		tab[n].id = id;
		memcpy(tab[n].name, f.name, SPRY_NAME_LEN);
		tab[n].name[SPRY_NAME_LEN - 1] = '\0';
		n++;
	}
	return n;
}

/*
 * What REGISTER and TEMPLATE both check: the names, the chain (active),
 * the function in it, the peer's uid.  0 (ids and the chain's record out)
 * or -errno with *@why.
 */
static int reg_lookup(struct spryd *d, const struct spryd_conn *c,
		      const struct spry_ctl_register *req, uint16_t *chain_id,
		      struct spry_chain *chain, uint16_t *fn_id, const char **why)
{
	struct spry_fn fnrec;
	int err;

	if (!name_field_ok(req->chain) || !name_field_ok(req->fn) || req->flags || req->pad) {
		*why = "bad names or flags";
		return -EINVAL;
	}
	err = spry_chain__lookup(&d->maps, req->chain, chain_id, chain);
	if (!err && !(chain->flags & SPRY_CF_ACTIVE))
		err = -ENOENT;
	if (err) {
		*why = "unknown chain";
		return err;
	}
	err = spry_fn__lookup(&d->maps, *chain_id, req->fn, fn_id, &fnrec);
	if (!err && (*fn_id == SPRY_FN_ORIGIN || *fn_id >= SPRY_MAX_FNS ||
		     fnrec.chain != *chain_id))
		err = -ENOENT;
	if (err) {
		*why = "unknown function";
		return err;
	}
	if (c->cred.uid != 0 && c->cred.uid != chain->uid) {
		*why = "wrong user for the chain";
		return -EPERM;
	}
	return 0;
}

static void registrar_register(struct spryd *d, struct spryd_conn *c, const void *body,
			       uint32_t len, int fd)
{
	struct spry_ctl_fn_entry fn_tab[SPRY_MAX_FNS];	/* 36 KiB */
	uint32_t n_tab;
	struct spry_ctl_register req;
	struct spry_ctl_reg_ack ack = {};
	struct spry_chain chain;
	struct spryd_chain *cs;
	struct spryd_pending *p;
	struct spryd_inst *in;
	struct sockaddr_in local;
	const char *why = NULL;
	uint16_t chain_id, fn_id, idx;
	socklen_t olen;
	int err;

	if (len != sizeof(req)) {
		reg_refuse(d, c, -EINVAL, NULL, NULL, "REGISTER of the wrong size");
		goto out;
	}
	memcpy(&req, body, sizeof(req));
	if (!name_field_ok(req.chain) || !name_field_ok(req.fn)) {
		reg_refuse(d, c, -EINVAL, NULL, NULL, "bad names or flags");
		goto out;
	}
	if (fd < 0) {
		reg_refuse(d, c, -EBADF, req.chain, req.fn, "no socket passed");
		goto out;
	}
	err = reg_lookup(d, c, &req, &chain_id, &chain, &fn_id, &why);
	if (err) {
		reg_refuse(d, c, err, req.chain, req.fn, why);
		goto out;
	}
	/* An app's instances are its processes: only those spryd started. */
	if (chain.flags & SPRY_CF_APP) {
		err = d->proc_hooks ? d->proc_hooks->reg_check(d, chain_id,
							      (uint32_t)c->cred.pid) : -EIDRM;
		if (err) {
			reg_refuse(d, c, err, req.chain, req.fn,
				   "not a process spryd started for the app");
			goto out;
		}
	}
	err = check_socket(d, fd, &local, &why);
	if (err) {
		reg_refuse(d, c, err, req.chain, req.fn, why);
		goto out;
	}
	p = pending_find(d, &local);
	if (!p) {
		registrar_accept(d);
		p = pending_find(d, &local);
	}
	if (!p) {
		reg_refuse(d, c, -ENOTCONN, req.chain, req.fn,
			   "no accepted peer for the socket");
		goto out;
	}
	if (c->n_inst >= SPRYD_CONN_MAX_INST) {
		reg_refuse(d, c, -ENOSPC, req.chain, req.fn,
			   "too many registrations on this connection");
		goto out;
	}
	for (idx = 0; idx < SPRY_MAX_INST; idx++)
		if (!d->insts[fn_id * SPRY_MAX_INST + idx].used)
			break;
	if (idx == SPRY_MAX_INST) {
		reg_refuse(d, c, -ENOSPC, req.chain, req.fn, "no free instance slot");
		goto out;
	}
	err = entry_chain_pool(d, chain_id, &chain, &cs);
	if (err) {
		reg_refuse(d, c, err, req.chain, req.fn, "no pool for the chain");
		goto out;
	}
	in = &d->insts[fn_id * SPRY_MAX_INST + idx];
	memset(in, 0, sizeof(*in));
	in->ep.fd = -1;
	in->chain = chain_id;
	in->fn = fn_id;
	in->idx = idx;
	in->conn = (uint32_t)(c - d->conns);
	in->pid = (uint32_t)c->cred.pid;
	in->uid = c->cred.uid;
	in->reg_ns = spryd_now_ns();
	snprintf(in->name, sizeof(in->name), "%s", req.fn);
	olen = sizeof(in->cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &in->cookie, &olen))
		in->cookie = 0;
	err = inst_publish(d, in, fd);
	if (err) {
		reg_refuse(d, c, err, req.chain, req.fn, "map update failed");
		goto out;
	}
	/* B becomes the instance's: EOF on it is the instance's death. */
	in->ep.ops = &inst_ops;
	in->ep.fd = p->ep.fd;
	p->ep.fd = -1;
	d->n_pending--;
	if (spryd_ep_mod(d, &in->ep, EPOLLIN | EPOLLRDHUP))
		spryd_log("epoll on an instance socket: %s", strerror(errno));
	in->used = true;
	c->inst[c->n_inst++] = (uint32_t)(in - d->insts);
	cs->n_inst++;
	close(fd);
	fd = -1;
	d->st.registered++;
	ack.chain = chain_id;
	ack.fn = fn_id;
	ack.inst = idx;
	ack.pool_size = cs->pool_size;
	memcpy(ack.cpus, chain.cpus, sizeof(ack.cpus));
	spryd_log("registered %s/%s inst %u (chain %u fn %u) pid %u uid %u cookie %llu",
		  req.chain, req.fn, idx, chain_id, fn_id, in->pid, in->uid,
		  (unsigned long long)in->cookie);
	if ((chain.flags & SPRY_CF_APP) && d->proc_hooks)
		d->proc_hooks->reg_done(d, in);
	n_tab = reg_fn_table(d, chain_id, fn_tab);
	spryd_conn_send(d, c, SPRY_CTL_REG_ACK, 0, &ack, sizeof(ack), fn_tab,
			n_tab * (uint32_t)sizeof(fn_tab[0]), spry_pool_fd(cs->pool));
	spryd_trace("reg %u %llu chain=%s fn=%s", in->pid, (unsigned long long)spryd_now_ns(),
		    req.chain, req.fn);
out:
	if (fd >= 0)
		close(fd);
}

/* --------------------------------------------------------- TEMPLATE */

/*
 * A template (docs/ELASTIC.md, "Cold start") gets what every instance of
 * its function would: the chain's pool, its function table, the TCP port.
 * Nothing goes into the router's maps and no instance slot is taken; its
 * clones register one by one.  The control connection is the template's
 * only tie: closing it removes nothing.
 */
static void registrar_template(struct spryd *d, struct spryd_conn *c, const void *body,
			       uint32_t len)
{
	struct spry_ctl_fn_entry fn_tab[SPRY_MAX_FNS];	/* 36 KiB */
	struct spry_ctl_template_ack ack = {};
	struct spry_ctl_register req;
	struct spry_chain chain;
	struct spryd_chain *cs;
	const char *why = NULL;
	uint16_t chain_id, fn_id;
	uint32_t n_tab;
	int err;

	if (len != sizeof(req)) {
		tmpl_refuse(d, c, -EINVAL, NULL, NULL, "TEMPLATE of the wrong size");
		return;
	}
	memcpy(&req, body, sizeof(req));
	if (!name_field_ok(req.chain) || !name_field_ok(req.fn)) {
		tmpl_refuse(d, c, -EINVAL, NULL, NULL, "bad names");
		return;
	}
	err = reg_lookup(d, c, &req, &chain_id, &chain, &fn_id, &why);
	if (err) {
		tmpl_refuse(d, c, err, req.chain, req.fn, why);
		return;
	}
	/* An app's pool: only to the template spryd started for the app. */
	if (chain.flags & SPRY_CF_APP) {
		err = d->proc_hooks ? d->proc_hooks->tmpl_check(d, chain_id,
							       (uint32_t)c->cred.pid) : -EIDRM;
		if (err) {
			tmpl_refuse(d, c, err, req.chain, req.fn,
				    "not the template spryd started for the app");
			return;
		}
	}
	err = entry_chain_pool(d, chain_id, &chain, &cs);
	if (err) {
		tmpl_refuse(d, c, err, req.chain, req.fn, "no pool for the chain");
		return;
	}
	ack.tcp_port = ntohs(d->tcp_addr.sin_port);
	ack.chain = chain_id;
	ack.fn = fn_id;
	ack.abi = SPRY_ABI_VERSION;
	ack.pool_size = cs->pool_size;
	spryd_log("template for %s/%s (chain %u fn %u) pid %d uid %u: pool handed over",
		  req.chain, req.fn, chain_id, fn_id, c->cred.pid, c->cred.uid);
	n_tab = reg_fn_table(d, chain_id, fn_tab);
	spryd_conn_send(d, c, SPRY_CTL_TEMPLATE_ACK, 0, &ack, sizeof(ack), fn_tab,
			n_tab * (uint32_t)sizeof(fn_tab[0]), spry_pool_fd(cs->pool));
}

/* ----------------------------------------------------- deregistration */

/*
 * Take an instance out: no new deliveries (spry_fns), its socket out of
 * spry_socks, its requests failed, B closed.  @keep_flags: spry_inst flags
 * left for display.
 */
static void inst_remove(struct spryd *d, struct spryd_inst *in, const char *why,
			uint32_t keep_flags)
{
	struct spry_inst_state st = { .flags = keep_flags };
	struct spryd_conn *c;
	uint16_t chain = in->chain, fn = in->fn, idx = in->idx;
	uint32_t i, me = (uint32_t)(in - d->insts);
	int err;

	if (!in->used)
		return;
	err = fn_list_update(d, fn, chain, idx, false);
	if (err && err != -ENOENT)
		spryd_log("spry_fns[%u] update: %s", fn, err_name(err));
	if (!in->draining && d->fn_routable && d->fn_routable[fn])
		d->fn_routable[fn]--;
	in->draining = false;
	/* A process: out of spry_procs before its slot can be taken again. */
	if (d->chains[chain].app && d->proc_hooks)
		d->proc_hooks->removed(d, in);
	socks_delete(d, fn, idx);
	/* Its mails answered and reclaimed once no more can reach it (out of
	 * spry_procs and the sockhash), while its process id is still known
	 * (spry_inst until the put below). */
	mail_inst_gone(d, in);
	/* The fan-out branches it held answered, its own forgotten. */
	fan_inst_gone(d, in);
	/* Results already on their way back count as done, not lost. */
	origin_drain(d);
	entry_inst_died(d, chain, fn, idx);
	err = spry_inst__put(&d->maps, fn, idx, &st);
	if (err)
		spryd_log("spry_inst[%u/%u] clear: %s", fn, idx, err_name(err));
	spryd_ep_close(d, &in->ep);
	in->used = false;
	spryd_trace("dereg %u %llu", in->pid, (unsigned long long)spryd_now_ns());
	if (in->conn < SPRYD_MAX_CONNS) {
		c = &d->conns[in->conn];
		for (i = 0; i < c->n_inst; i++) {
			if (c->inst[i] == me) {
				c->inst[i] = c->inst[--c->n_inst];
				break;
			}
		}
	}
	if (d->chains[chain].n_inst)
		d->chains[chain].n_inst--;
	d->st.died++;
	spryd_log("instance %s/%s[%u] (chain %u fn %u pid %u) removed: %s",
		  d->chains[chain].name, in->name, idx, chain, fn, in->pid, why);
}

int registrar_inst_drain(struct spryd *d, struct spryd_inst *in)
{
	int err;

	if (!in->used || in->draining)
		return 0;
	err = fn_list_update(d, in->fn, in->chain, in->idx, false);
	if (err && err != -ENOENT)
		return err;
	in->draining = true;
	if (d->fn_routable && d->fn_routable[in->fn])
		d->fn_routable[in->fn]--;
	spryd_vlog(d, "instance %s/%s[%u] (pid %u) draining: no new requests",
		   d->chains[in->chain].name, in->name, in->idx, in->pid);
	return 0;
}

static void inst_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct spryd_inst *in = (struct spryd_inst *)ep;
	int r;

	(void)events;
	if (!in->used)
		return;
	r = origin_read_stream(d, in->ep.fd, &in->in, in->chain);
	if (r == -ENOTCONN)
		inst_remove(d, in, "its socket closed", 0);
}

static void registrar_conn_closed(struct spryd *d, struct spryd_conn *c)
{
	struct spryd_inst *in;

	while (c->n_inst) {
		in = &d->insts[c->inst[c->n_inst - 1]];
		if (!in->used || in->conn != (uint32_t)(c - d->conns)) {
			c->n_inst--;
			continue;
		}
		inst_remove(d, in, "its control connection closed", 0);
	}
}

void registrar_timer(struct spryd *d, uint64_t now, uint64_t *next)
{
	unsigned int i;

	if (!d->n_pending)
		return;
	for (i = 0; i < SPRYD_MAX_PENDING; i++) {
		struct spryd_pending *p = &d->pending[i];
		uint64_t exp;

		if (p->ep.fd < 0)
			continue;
		exp = p->t_ns + SPRYD_PENDING_TTL_NS;
		if (exp <= now) {
			spryd_vlog(d, "TCP peer 127.0.0.1:%u never registered: closed",
				   ntohs(p->peer.sin_port));
			pending_drop(d, p);
			continue;
		}
		if (!*next || exp < *next)
			*next = exp;
	}
}

/* ------------------------------------------------------ quarantines */

static int event_cb(void *ctx, void *data, size_t size)
{
	struct spryd *d = ctx;
	struct spry_inst_state st;
	struct spry_event ev;
	struct spryd_inst *in;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	d->st.quarantines++;
	spryd_log("quarantine: chain %u fn %u inst %u: %s (descriptor chain %u hop %u req %#llx)",
		  ev.chain, ev.fn, ev.inst, spry_verdict_name(ev.verdict), ev.desc_chain,
		  ev.hop, (unsigned long long)ev.req_id);
	if (ev.fn == SPRY_FN_ORIGIN && ev.chain == 0) {
		if (ev.inst < d->n_origins)
			origin_recover(d, ev.inst);
		return 0;
	}
	if (ev.fn >= SPRY_MAX_FNS || ev.inst >= SPRY_MAX_INST)
		return 0;
	in = &d->insts[ev.fn * SPRY_MAX_INST + ev.inst];
	/* The event may be about an earlier holder of the slot. */
	if (!in->used || in->chain != ev.chain || ev.ts_ns < in->reg_ns)
		return 0;
	if (spry_inst__get(&d->maps, ev.fn, ev.inst, &st) ||
	    !(st.flags & SPRY_IF_QUARANTINED))
		return 0;
	inst_remove(d, in, "quarantined", SPRY_IF_QUARANTINED);
	return 0;
}

int registrar_events_init(struct spryd *d)
{
	int fd;

	d->rb = ring_buffer__new(d->maps.events, event_cb, d, NULL);
	if (!d->rb) {
		spryd_log("spry_events ring buffer: %s", strerror(errno));
		return -errno;
	}
	fd = ring_buffer__epoll_fd(d->rb);
	d->events_ep.ops = &events_ops;
	d->events_ep.fd = fd;
	if (spryd_ep_add(d, &d->events_ep, EPOLLIN)) {
		spryd_log("epoll on the ring buffer: %s", strerror(errno));
		d->events_ep.fd = -1;
		return -errno;
	}
	return 0;
}

static void events_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	int n = ring_buffer__consume(d->rb);

	(void)ep;
	(void)events;
	if (n < 0)
		spryd_log("spry_events: %s", err_name(n));
}

/* ------------------------------------------------------ init / fini */

/* Is @pid a live spryd other than us? */
static bool other_spryd(uint32_t pid)
{
	char path[64], comm[32] = "";
	ssize_t n;
	int fd;

	if (!pid || pid == (uint32_t)getpid())
		return false;
	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	return n > 0 && !strncmp(comm, "spryd\n", 6);
}

/*
 * Instances left by an earlier spryd are dead: their registrar is gone.
 * One spryd per pin directory: origin 0's pid tells whether one runs.
 */
static int reset_stale(struct spryd *d)
{
	struct spry_inst_state zero = {};
	struct spry_inst_key key;
	struct spry_fn f;
	unsigned int stale = 0, i;
	int lock, err = 0;
	__u16 fn;

	lock = spry_pin_lock(d->pin_dir, LOCK_EX);
	if (lock < 0)
		return lock;
	if (!spry_inst__get(&d->maps, SPRY_FN_ORIGIN, 0, &zero) &&
	    (zero.flags & SPRY_IF_LIVE) && other_spryd(zero.pid)) {
		spryd_log("another spryd (pid %u) serves %s", zero.pid, d->pin_dir);
		err = -EBUSY;
		goto out;
	}
	memset(&zero, 0, sizeof(zero));
	while (!bpf_map_get_next_key(d->maps.socks, NULL, &key)) {
		if (bpf_map_delete_elem(d->maps.socks, &key)) {
			err = -errno;
			goto out;
		}
		stale++;
	}
	for (fn = 0; fn < SPRY_MAX_FNS; fn++) {
		err = spry_fn__get(&d->maps, fn, &f);
		if (err == -ENOENT) {
			err = 0;
			continue;
		}
		if (err)
			goto out;
		if (!f.n_inst)
			continue;
		for (i = 0; i < f.n_inst && i < SPRY_MAX_INST; i++)
			if (f.inst[i] < SPRY_MAX_INST)
				spry_inst__put(&d->maps, fn, f.inst[i], &zero);
		f.n_inst = 0;
		err = spry_fn__put(&d->maps, fn, &f);
		if (err)
			goto out;
	}
	if (stale)
		spryd_log("removed %u stale sockets of an earlier spryd", stale);
	/* after the check above: never another live spryd's records */
	fan_reset(d);
out:
	spry_pin_unlock(lock);
	return err;
}

static const struct spryd_ctl_handlers ctl_handlers = {
	.hello = registrar_hello,
	.reg = registrar_register,
	.tmpl = registrar_template,
	.conn_closed = registrar_conn_closed,
};

int registrar_init(struct spryd *d)
{
	unsigned int i;
	int err;

	d->tcp_ep.fd = d->events_ep.fd = -1;
	for (i = 0; i < SPRYD_MAX_PENDING; i++)
		d->pending[i].ep.fd = -1;
	d->insts = calloc(SPRY_MAX_FNS * SPRY_MAX_INST, sizeof(*d->insts));
	d->fn_routable = calloc(SPRY_MAX_FNS, sizeof(*d->fn_routable));
	if (!d->insts || !d->fn_routable) {
		free(d->insts);
		free(d->fn_routable);
		d->insts = NULL;
		d->fn_routable = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < SPRY_MAX_FNS * SPRY_MAX_INST; i++)
		d->insts[i].ep.fd = -1;
	err = reset_stale(d);
	if (err) {
		if (err != -EBUSY)
			spryd_log("clearing stale instances: %s", err_name(err));
		goto err_free;
	}
	err = tcp_listen(d);
	if (err) {
		spryd_log("TCP listener: %s", err_name(err));
		goto err_free;
	}
	ctl_set_handlers(d, &ctl_handlers);
	return 0;

err_free:
	free(d->insts);
	free(d->fn_routable);
	d->insts = NULL;
	d->fn_routable = NULL;
	return err;
}

void registrar_stop(struct spryd *d)
{
	spryd_ep_close(d, &d->tcp_ep);
}

void registrar_fini(struct spryd *d)
{
	unsigned int i;

	if (!d->insts)
		return;

	for (i = 0; i < SPRY_MAX_FNS * SPRY_MAX_INST; i++)
		if (d->insts[i].used)
			inst_remove(d, &d->insts[i], "spryd stopping", 0);
	for (i = 0; i < SPRYD_MAX_PENDING; i++)
		if (d->pending[i].ep.fd >= 0)
			pending_drop(d, &d->pending[i]);
	spryd_ep_close(d, &d->tcp_ep);
	if (d->rb) {
		/* The ring buffer owns its epoll fd. */
		d->events_ep.fd = -1;
		ring_buffer__free(d->rb);
		d->rb = NULL;
	}
	ctl_set_handlers(d, NULL);
	free(d->insts);
	free(d->fn_routable);
	d->insts = NULL;
	d->fn_routable = NULL;
}
