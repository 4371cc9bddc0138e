// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's origin room (spryd/origin.h): where requests leave for their
 * chains and come back, and the reading of every descriptor stream
 * (origins and instances' B sockets).  Origin k is a TCP pair on 127.0.0.1: the end O
 * is registered as {chain 0, fn SPRY_FN_ORIGIN, inst k, ROLE_ORIGIN} and
 * sits in spry_socks[{0, k}]; request descriptors are sent on O (batched:
 * one send() of up to SPRYD_SEND_BATCH descriptors, each judged by the
 * router as if alone, consecutive ones of a chain redirected together) and
 * finished ones are redirected into O's receive queue.
 * The other end O' only ever sees what the router passes (FALLBACK), as
 * does a function's B.  Every stream is read in large recv()s; a partial
 * descriptor is kept until the rest arrives.
 *
 * With an engine (origin_set_engine: the HTTP front's ring, --desc-send
 * ring) a batch is an operation of that engine instead of a send(): it
 * leaves with the responses of the same loop iteration, one system call
 * for both, and its result comes back as origin_sent().  One batch per
 * origin is in the engine at a time; while it is, that origin's other
 * sends are send()s (the order of requests' descriptors does not matter,
 * and each send is whole descriptors or torn and dropped, as above), and
 * a reset waits for the batch's end (origin_reset).
 *
 * A send the router dropped (SK_DROP is sticky: EACCES from then on), or
 * one that split a descriptor, makes spryd take O out of spry_socks and
 * put it back, which resets it.  The requests of a failed send that reached
 * a function (spry_reqloc names them) stay in flight; the others fail with
 * -EIO at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/file.h>

#include <bpf/bpf.h>

#include "spryd/entry.h"
#include "spryd/origin.h"
#include "spryd/spryd.h"

#define DESC_SZ			sizeof(struct spry_desc)
#define READS_PER_EVENT		16

static uint8_t stream_buf[DESC_SZ + SPRYD_RX_BYTES];

int origin_fd_set_sender(struct spryd *d, int fd, const struct spry_sender *s)
{
	return bpf_map_update_elem(d->maps.senders, &fd, s, BPF_ANY) ? -errno : 0;
}

int origin_read_stream(struct spryd *d, int fd, struct spryd_stream *s,
		       uint16_t only_chain)
{
	struct spry_desc desc;
	size_t have, pos;
	ssize_t n;
	int i;

	for (i = 0; i < READS_PER_EVENT; i++) {
		memcpy(stream_buf, s->rem, s->rem_len);
		n = recv(fd, stream_buf + s->rem_len, SPRYD_RX_BYTES, MSG_DONTWAIT);
		if (n == 0)
			return -ENOTCONN;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			return -ENOTCONN;
		}
		have = s->rem_len + (size_t)n;
		for (pos = 0; pos + DESC_SZ <= have; pos += DESC_SZ) {
			memcpy(&desc, stream_buf + pos, DESC_SZ);
			/* a mail's answer whose sender is gone (mailboxes,
			 * spryd/mail.c): counted and ignored */
			if (desc.flags & SPRY_DF_MAIL) {
				d->st.mail_orphans++;
				continue;
			}
			/* our answer for a dead callee's branch, not taken
			 * (answered meanwhile, its caller gone: spryd/fan.c) */
			if (desc.flags == (SPRY_DF_REPLY | SPRY_DF_FAN) &&
			    desc.status == SPRY_ST_CALLEE_GONE) {
				d->st.fan_orphans++;
				continue;
			}
			if (only_chain && desc.chain != only_chain) {
				d->st.unknown++;
				spryd_vlog(d, "descriptor for chain %u on a chain %u socket: ignored",
					   desc.chain, only_chain);
				continue;
			}
			entry_return(d, &desc);
		}
		s->rem_len = (uint32_t)(have - pos);
		memmove(s->rem, stream_buf + pos, s->rem_len);
		if ((size_t)n < SPRYD_RX_BYTES)
			return 0;
	}
	return 0;
}

static void origin_broken(struct spryd *d, unsigned int k, const char *why)
{
	struct spryd_origin *o = &d->origins[k];

	if (o->broken)
		return;
	o->broken = true;
	spryd_log("origin %u: %s; not used any more", k, why);
	spryd_ep_close(d, &o->peer);
	spryd_ep_del(d, &o->o);
}

static void read_origin(struct spryd *d, unsigned int k)
{
	struct spryd_origin *o = &d->origins[k];

	if (o->broken)
		return;
	if (origin_read_stream(d, o->o.fd, &o->o_in, 0) == -ENOTCONN)
		origin_broken(d, k, "its socket closed");
	else if (origin_read_stream(d, o->peer.fd, &o->peer_in, 0) == -ENOTCONN)
		origin_broken(d, k, "its peer closed");
}

static void origin_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);

/* O carries finished requests: dispatched first (loop.h, early). */
static const struct spryd_ep_ops origin_ops = {
	.name = "origin", .event = origin_event, .early = true,
};
static const struct spryd_ep_ops origin_peer_ops = {
	.name = "origin-peer", .event = origin_event,
};

static void origin_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct spryd_origin *o;
	unsigned int k;

	if (ep->ops == &origin_ops)
		o = (struct spryd_origin *)((char *)ep - offsetof(struct spryd_origin, o));
	else
		o = (struct spryd_origin *)((char *)ep - offsetof(struct spryd_origin, peer));
	k = (unsigned int)(o - d->origins);
	if (k >= d->n_origins || o->broken)
		return;
	if ((events & EPOLLOUT) && o->want_out) {
		if (!spryd_ep_mod(d, &o->o, EPOLLIN))
			o->want_out = false;
	}
	read_origin(d, k);
}

void origin_drain(struct spryd *d)
{
	unsigned int k;

	for (k = 0; k < d->n_origins; k++)
		read_origin(d, k);
}

static int origin_publish(struct spryd *d, unsigned int k)
{
	struct spryd_origin *o = &d->origins[k];
	struct spry_sender s = {
		.chain = 0, .fn = SPRY_FN_ORIGIN, .inst = (__u16)k, .role = SPRY_ROLE_ORIGIN,
	};
	struct spry_inst_state st = {
		.flags = SPRY_IF_LIVE, .cookie = o->cookie, .pid = (__u32)getpid(), .uid = 0,
	};
	struct spry_inst_key key = { .fn = SPRY_FN_ORIGIN, .inst = (__u16)k };
	__u64 val = (__u64)o->o.fd;
	int err;

	err = origin_fd_set_sender(d, o->o.fd, &s);
	if (err)
		return err;
	err = spry_inst__put(&d->maps, SPRY_FN_ORIGIN, (__u16)k, &st);
	if (err)
		return err;
	if (bpf_map_update_elem(d->maps.socks, &key, &val, BPF_ANY))
		return -errno;
	return 0;
}

void origin_recover(struct spryd *d, unsigned int k)
{
	struct spry_inst_key key = { .fn = SPRY_FN_ORIGIN, .inst = (__u16)k };
	struct spryd_origin *o = &d->origins[k];
	int err;

	if (k >= d->n_origins || o->broken)
		return;
	/* What is already queued on O would go with the psock. */
	read_origin(d, k);
	if (bpf_map_delete_elem(d->maps.socks, &key) && errno != ENOENT)
		spryd_log("origin %u: spry_socks delete: %s", k, strerror(errno));
	err = origin_publish(d, k);
	if (err) {
		origin_broken(d, k, "re-registration failed");
		return;
	}
	spryd_log("origin %u reset after a drop", k);
}

/*
 * A drop or a torn descriptor: reset origin @k (origin_recover), or, while
 * a batch of its engine may still be sent, once that batch ended: a send
 * between the reset's delete and insert would reach O' as plain bytes.
 * Until then the origin is not picked.
 */
static void origin_reset(struct spryd *d, unsigned int k)
{
	if (d->origins[k].tx_busy)
		d->origins[k].reset_due = true;
	else
		origin_recover(d, k);
}

/* Pick the next origin that can send now; -1 when none. */
static int pick_origin(struct spryd *d)
{
	unsigned int i, k;

	for (i = 0; i < d->n_origins; i++) {
		k = (d->next_origin + i) % d->n_origins;
		if (!d->origins[k].broken && !d->origins[k].want_out &&
		    !d->origins[k].reset_due) {
			d->next_origin = (k + 1) % d->n_origins;
			return (int)k;
		}
	}
	return -1;
}

int origin_send_descs(struct spryd *d, const struct spry_desc *descs, unsigned int n)
{
	unsigned int done = 0, tries;
	size_t left;
	ssize_t w;
	int k, err = -EAGAIN;

	/*
	 * What one origin does not take (a short send: its socket is full)
	 * goes on the next, each origin tried once.  A descriptor torn by a
	 * short send is dropped by the router (docs/KERNEL.md): it was not
	 * sent, and goes again whole after the origin's reset.
	 */
	for (tries = 0; done < n && tries < d->n_origins; tries++) {
		k = pick_origin(d);
		if (k < 0)
			break;
		left = (size_t)(n - done) * DESC_SZ;
		do {
			w = send(d->origins[k].o.fd, descs + done, left,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		} while (w < 0 && errno == EINTR);
		d->st.send_batches++;
		if (w < 0) {
			err = -errno;
			if (errno == EACCES)
				origin_reset(d, (unsigned int)k);
			continue;
		}
		done += (unsigned int)((size_t)w / DESC_SZ);
		if ((size_t)w % DESC_SZ)
			origin_reset(d, (unsigned int)k);	/* split: reset, as origin_flush() */
	}
	return done ? (int)done : err;
}

/*
 * The end of one send of @cnt descriptors (@ids) on origin @k: @n bytes
 * went (-1: none, @err the errno).  Those the kernel took are the
 * chain's; the rest go back to the front of the send queue (a full
 * socket, or a short send that ended between two descriptors), or, after
 * a drop or a torn descriptor, fail unless a function has them
 * (entry_send_failed) and the origin is reset.  Those not taken are
 * REQ_QUEUED here (popped, not sent); a NULL entry is one origin_sent()
 * settled itself (released, or answered at its deadline meanwhile).
 */
static void sent(struct spryd *d, unsigned int k, struct spryd_req **batch,
		 unsigned int cnt, ssize_t n, int err)
{
	unsigned int i, full;

	if (n == (ssize_t)(cnt * DESC_SZ))
		return;
	if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) {
		for (i = cnt; i-- > 0;)
			if (batch[i])
				entry_sendq_unpop(d, batch[i]->req_id);
		if (err != EINTR && !spryd_ep_mod(d, &d->origins[k].o, EPOLLIN | EPOLLOUT))
			d->origins[k].want_out = true;
		return;
	}
	full = n > 0 ? (unsigned int)((size_t)n / DESC_SZ) : 0;
	if (n > 0 && (size_t)n % DESC_SZ == 0) {
		/* Short but whole: the rest goes in the next send. */
		for (i = cnt; i-- > full;)
			if (batch[i])
				entry_sendq_unpop(d, batch[i]->req_id);
		return;
	}
	d->st.send_errors++;
	spryd_log("origin %u: send of %u descriptors: %s", k, cnt,
		  n < 0 ? strerror(err) : "split a descriptor");
	for (i = full; i < cnt; i++)
		if (batch[i])
			entry_send_failed(d, batch[i]);
	if (n > 0 || err == EACCES)
		origin_reset(d, k);
}

/*
 * One batch into the engine (--desc-send ring): copied to the origin's own
 * buffer, which stays the kernel's until origin_sent().  The requests
 * count as sent from here (a function may have one before the completion
 * is reaped); entry.c keeps their buffers at a deadline, and a zombie's
 * past its time to live, while tx_origin is set.  False when the engine took nothing (the caller sends).
 */
static bool engine_send(struct spryd *d, unsigned int k, struct spryd_req **batch,
			unsigned int cnt)
{
	struct spryd_origin *o = &d->origins[k];
	unsigned int i;

	if (!o->tx && !(o->tx = calloc(1, sizeof(*o->tx))))
		return false;
	for (i = 0; i < cnt; i++) {
		o->tx->descs[i] = batch[i]->desc;
		o->tx->ids[i] = batch[i]->req_id;
	}
	if (d->origin_engine(d, k, o->o.fd, o->tx->descs, cnt * DESC_SZ))
		return false;
	o->tx->cnt = cnt;
	o->tx_busy = true;
	d->st.ring_batches++;
	for (i = 0; i < cnt; i++) {
		batch[i]->state = REQ_SENT;
		batch[i]->tx_origin = (uint8_t)(k + 1);
	}
	return true;
}

void origin_sent(struct spryd *d, unsigned int k, int res)
{
	struct spryd_req *batch[SPRYD_SEND_BATCH];
	struct spryd_origin *o;
	unsigned int i, cnt, full;
	struct spryd_req *r;

	if (k >= d->n_origins || !d->origins[k].tx_busy)
		return;
	o = &d->origins[k];
	o->tx_busy = false;
	cnt = o->tx->cnt;
	full = res > 0 ? (unsigned int)((size_t)res / DESC_SZ) : 0;
	for (i = 0; i < cnt; i++) {
		r = entry_req(d, o->tx->ids[i]);
		batch[i] = NULL;
		/* released already (came back), or in another batch since (a retry) */
		if (!r || r->tx_origin != k + 1)
			continue;
		r->tx_origin = 0;
		if (i < full)
			continue;
		/* not taken by the kernel: popped again, as send() leaves it */
		if (r->state == REQ_SENT) {
			r->state = REQ_QUEUED;
			batch[i] = r;
		} else if (r->state == REQ_ZOMBIE) {
			entry_send_failed(d, r);	/* answered meanwhile */
		}
	}
	sent(d, k, batch, cnt, res < 0 ? -1 : res, res < 0 ? -res : 0);
	if (o->reset_due) {
		o->reset_due = false;
		origin_recover(d, k);
	}
}

void origin_set_engine(struct spryd *d, spryd_origin_engine_fn fn)
{
	unsigned int k;

	d->origin_engine = fn;
	if (fn)
		return;
	/* the engine is gone: what it still held is given up (at shutdown) */
	for (k = 0; k < d->n_origins; k++)
		d->origins[k].tx_busy = d->origins[k].reset_due = false;
}

void origin_flush(struct spryd *d)
{
	struct spry_desc buf[SPRYD_SEND_BATCH];
	struct spryd_req *batch[SPRYD_SEND_BATCH];
	struct spryd_origin *o;
	unsigned int cnt, i, full;
	size_t total;
	ssize_t n;
	int k;

	while (d->sendq_len) {
		k = pick_origin(d);
		if (k < 0)
			return;
		o = &d->origins[k];
		for (cnt = 0; cnt < SPRYD_SEND_BATCH; cnt++)
			if (!entry_sendq_pop(d, &batch[cnt]))
				break;
		if (!cnt)
			return;
		if (d->origin_engine && !o->tx_busy && engine_send(d, (unsigned int)k, batch, cnt))
			continue;
		for (i = 0; i < cnt; i++)
			buf[i] = batch[i]->desc;
		total = cnt * DESC_SZ;
		n = send(o->o.fd, buf, total, MSG_DONTWAIT | MSG_NOSIGNAL);
		d->st.send_batches++;
		full = n > 0 ? (unsigned int)((size_t)n / DESC_SZ) : 0;
		for (i = 0; i < full; i++)
			batch[i]->state = REQ_SENT;
		sent(d, (unsigned int)k, batch, cnt, n, n < 0 ? errno : 0);
	}
}

static int fcntl_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -1 : 0;
}

static int connect_pair(int lfd, const struct sockaddr_in *laddr, int *o_fd, int *p_fd)
{
	struct sockaddr_in me, peer;
	socklen_t len;
	int o, p, err, one = 1;

	o = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (o < 0)
		return -errno;
	if (connect(o, (const struct sockaddr *)laddr, sizeof(*laddr))) {
		err = -errno;
		goto err_o;
	}
	len = sizeof(me);
	if (getsockname(o, (struct sockaddr *)&me, &len)) {
		err = -errno;
		goto err_o;
	}
	for (;;) {
		len = sizeof(peer);
		p = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (p < 0) {
			err = -errno;
			goto err_o;
		}
		if (peer.sin_port == me.sin_port && peer.sin_addr.s_addr == me.sin_addr.s_addr)
			break;
		close(p);	/* somebody else's connection: not ours */
	}
	if (setsockopt(o, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    fcntl_nonblock(o)) {
		err = -errno;
		close(p);
		goto err_o;
	}
	*o_fd = o;
	*p_fd = p;
	return 0;

err_o:
	close(o);
	return err;
}

static int fn0_publish(struct spryd *d, unsigned int n)
{
	struct spry_fn f;
	unsigned int i;
	int lock, err;

	lock = spry_pin_lock(d->pin_dir, LOCK_EX);
	if (lock < 0)
		return lock;
	err = spry_fn__get(&d->maps, SPRY_FN_ORIGIN, &f);
	if (err)
		memset(&f, 0, sizeof(f));
	f.flags |= SPRY_FF_ACTIVE;
	f.chain = 0;
	memset(f.name, 0, sizeof(f.name));
	strcpy(f.name, "origin");
	f.n_inst = (__u16)n;
	for (i = 0; i < SPRY_MAX_INST; i++)
		f.inst[i] = i < n ? (__u16)i : 0;
	err = spry_fn__put(&d->maps, SPRY_FN_ORIGIN, &f);
	spry_pin_unlock(lock);
	return err;
}

int origin_init(struct spryd *d)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct spryd_origin *o;
	socklen_t len = sizeof(sa);
	unsigned int k;
	int lfd, err;

	for (k = 0; k < SPRYD_MAX_ORIGINS; k++)
		d->origins[k].o.fd = d->origins[k].peer.fd = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len)) {
		err = -errno;
		goto out;
	}
	for (k = 0; k < d->n_origins; k++) {
		o = &d->origins[k];
		err = connect_pair(lfd, &sa, &o->o.fd, &o->peer.fd);
		if (err) {
			spryd_log("origin %u: TCP pair: %s", k, strerror(-err));
			goto out;
		}
		o->o.ops = &origin_ops;
		o->peer.ops = &origin_peer_ops;
		len = sizeof(o->cookie);
		if (getsockopt(o->o.fd, SOL_SOCKET, SO_COOKIE, &o->cookie, &len))
			o->cookie = 0;
		err = origin_publish(d, k);
		if (err) {
			spryd_log("origin %u: registration in the maps: %s", k, strerror(-err));
			goto out;
		}
		err = spryd_ep_add(d, &o->o, EPOLLIN);
		if (!err)
			err = spryd_ep_add(d, &o->peer, EPOLLIN);
		if (err)
			goto out;
	}
	err = fn0_publish(d, d->n_origins);
	if (err)
		spryd_log("spry_fns[0] (origins): %s", strerror(-err));
out:
	close(lfd);
	return err;
}

void origin_fini(struct spryd *d)
{
	struct spry_inst_state zero = {};
	struct spry_inst_key key = { .fn = SPRY_FN_ORIGIN };
	struct spryd_origin *o;
	unsigned int k;

	for (k = 0; k < SPRYD_MAX_ORIGINS; k++) {
		o = &d->origins[k];
		if (o->o.fd < 0)
			continue;
		key.inst = (__u16)k;
		bpf_map_delete_elem(d->maps.socks, &key);
		spry_inst__put(&d->maps, SPRY_FN_ORIGIN, (__u16)k, &zero);
		spryd_ep_close(d, &o->o);
		spryd_ep_close(d, &o->peer);
		free(o->tx);
		o->tx = NULL;
	}
	fn0_publish(d, 0);
}
