// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mesh: sockmap acceleration of plain local TCP between programs that know
 * nothing of spry (docs/MESH.md).
 *
 *   mesh_sockops  (sock_ops, on the cgroups of `spry mesh attach`)
 *                 when a TCP connection is established, puts the socket in
 *                 spry_mesh_socks under its own 4-tuple if the policy lets
 *                 the connection be accelerated, and records its peer's
 *                 key in spry_mesh_conn.
 *   mesh_msg      (SK_MSG, on spry_mesh_socks) redirects what a mapped
 *                 socket sends into its peer's receive queue
 *                 (BPF_F_INGRESS), or passes it to TCP.
 *   mesh_skb      (SK_SKB verdict, on spry_mesh_socks) passes everything:
 *                 without a verdict program, a mapped socket that receives
 *                 by TCP reports FIONREAD 0 on this kernel.
 *
 * The decisions are per connection and per direction, never per message:
 * redirected bytes are read before TCP bytes queued earlier, so a
 * direction may redirect only while none of the bytes it sent by TCP is
 * still unread.  A direction decides at its first send (REDIRECT when the
 * peer is mapped, else TCP for good) and falls back from REDIRECT to TCP
 * when its peer left the map (for good), or when the peer's own receive
 * buffer is full or it holds max_queued unread redirected bytes (the
 * reader stalled; BPF_F_INGRESS knows no receive window, TCP does:
 * peer_fits()).  A stalled direction comes back to REDIRECT once the peer
 * has copied to user space every byte this socket ever gave TCP
 * (comeback_ok(); docs/MESH.md, "Ordering").  Anything that cannot or
 * may not be redirected is passed (SK_PASS), never dropped: SK_DROP fails
 * every later send of the socket with EACCES.
 *
 * Counters are per CPU, added atomically (sock_ops runs in softirq and may
 * interrupt an SK_MSG run on the same CPU).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "mesh_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* #defines of uapi and kernel headers, absent from vmlinux.h. */
#define AF_INET			2
#define AF_INET6		10
#ifndef BPF_F_INGRESS
#define BPF_F_INGRESS		(1ULL << 0)
#endif
/* include/net/sock.h: low bits of sk_user_data */
#define SK_USER_DATA_PSOCK	4UL
#define SK_USER_DATA_PTRMASK	(~7UL)

/*
 * Context fields read with volatile loads: clang may otherwise merge the
 * IPv4 and IPv6 reads into one load through a selected pointer, which the
 * verifier rejects ("dereference of modified ctx ptr").
 */
#define CTX(ops, f)		(*(volatile __u32 *)&(ops)->f)

/*
 * Set by the loader when this kernel's tcp_sock.copied_seq counts only the
 * bytes a socket's own TCP stack received ("bpf, sockmap: Fix incorrect
 * copied_seq calculation", mainline b40cc5adaa80, which added
 * __sk_msg_recvmsg; in 6.18 stable since February 2026): the proof of
 * comeback_ok() rests on it.  Off: a stalled
 * direction stays on TCP for good.
 */
const volatile bool spry_mesh_comeback_ok = false;

static __always_inline void count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&SPRY_MAP_MESH_STATS, &stat);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void set_mapped4(__u8 a[16], __u32 ip4)
{
	__u32 *w = (__u32 *)a;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0xffff);
	w[3] = ip4;
}

static __always_inline bool is_mapped4(const __u8 a[16])
{
	const __u32 *w = (const __u32 *)a;

	return !w[0] && !w[1] && w[2] == bpf_htonl(0xffff);
}

/* 127.0.0.0/8, ::ffff:127.0.0.0/104 or ::1. */
static __always_inline bool is_loopback(const __u8 a[16])
{
	const __u32 *w = (const __u32 *)a;

	if (is_mapped4(a))
		return a[12] == 127;
	return !w[0] && !w[1] && !w[2] && w[3] == bpf_htonl(1);
}

/* The connection's 4-tuple as the socket sees it: false for other families. */
static __always_inline bool read_tuple(struct bpf_sock_ops *ops, struct spry_mesh_key *k)
{
	__u32 family = CTX(ops, family);
	__u32 *l = (__u32 *)k->local, *r = (__u32 *)k->remote;

	if (family == AF_INET) {
		set_mapped4(k->local, CTX(ops, local_ip4));
		set_mapped4(k->remote, CTX(ops, remote_ip4));
	} else if (family == AF_INET6) {
		l[0] = CTX(ops, local_ip6[0]);
		l[1] = CTX(ops, local_ip6[1]);
		l[2] = CTX(ops, local_ip6[2]);
		l[3] = CTX(ops, local_ip6[3]);
		r[0] = CTX(ops, remote_ip6[0]);
		r[1] = CTX(ops, remote_ip6[1]);
		r[2] = CTX(ops, remote_ip6[2]);
		r[3] = CTX(ops, remote_ip6[3]);
	} else {
		return false;
	}
	/* local_port is host order; remote_port network order in the high half */
	k->lport = CTX(ops, local_port);
	k->rport = bpf_ntohl(CTX(ops, remote_port));
	k->netns = bpf_get_netns_cookie(ops);
	return true;
}

/* Rule of the server address's longest matching prefix (NONE: no rule). */
static __always_inline __u8 prefix_action(const __u8 a[16])
{
	struct spry_mesh_rule *r;

	if (is_mapped4(a)) {
		struct spry_mesh_pol4_key k4 = { .prefixlen = 32 };

		__builtin_memcpy(k4.addr, &a[12], 4);
		r = bpf_map_lookup_elem(&SPRY_MAP_MESH_POL4, &k4);
	} else {
		struct spry_mesh_pol6_key k6 = { .prefixlen = 128 };

		__builtin_memcpy(k6.addr, a, 16);
		r = bpf_map_lookup_elem(&SPRY_MAP_MESH_POL6, &k6);
	}
	return r ? r->action : SPRY_MESH_NONE;
}

static __always_inline __u8 port_action(__u16 port)
{
	__u32 k = port;
	struct spry_mesh_rule *r = bpf_map_lookup_elem(&SPRY_MAP_MESH_PORTS, &k);

	return r ? r->action : SPRY_MESH_NONE;
}

/*
 * Rule of the socket's cgroup v2 or of its nearest ancestor that has one.
 * The socket's cgroup is fixed at socket() (an accepted socket inherits
 * the listener's); it is read from the socket, since sock_ops of a passive
 * connection runs in softirq, in whatever task was current.
 */
static __always_inline __u8 cgroup_action(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;
	struct spry_mesh_rule *r;
	struct tcp_sock *tp;
	struct cgroup *cg;
	__u64 id;
	int i;

	if (!sk)
		return SPRY_MESH_NONE;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return SPRY_MESH_NONE;
	cg = tp->inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup;
	for (i = 0; i < SPRY_MESH_CGROUP_DEPTH && cg; i++) {
		id = cg->kn->id;
		r = bpf_map_lookup_elem(&SPRY_MAP_MESH_CGROUPS, &id);
		if (r && r->action)
			return r->action;
		/* cgroup.self is the cgroup's own css; its parent's cgroup */
		if (!cg->self.parent)
			break;
		cg = cg->self.parent->cgroup;
	}
	return SPRY_MESH_NONE;
}

/*
 * Whether the connection may be accelerated: 0, or the counter of the
 * refusal.  Both ends judge by the server's address and port, so they
 * agree but for their cgroups; a connection is only ever redirected when
 * both ends were inserted.
 */
static __always_inline __u32 judge(struct bpf_sock_ops *ops, const struct spry_mesh_key *k,
				   bool active)
{
	const __u8 *srv = active ? k->remote : k->local;
	__u16 sport = active ? k->rport : k->lport;
	__u8 pa = prefix_action(srv), po = port_action(sport), cg = cgroup_action(ops);
	__u32 zero = 0;
	struct spry_mesh_config *cfg;

	/* Beyond loopback only where an address rule says so. */
	if (!(is_loopback(k->local) && is_loopback(k->remote)) && pa != SPRY_MESH_ALLOW)
		return SPRY_MESH_S_REFUSED_NOT_LOCAL;
	if (pa == SPRY_MESH_DENY || po == SPRY_MESH_DENY || cg == SPRY_MESH_DENY)
		return SPRY_MESH_S_REFUSED_DENY;
	if (pa == SPRY_MESH_ALLOW || po == SPRY_MESH_ALLOW || cg == SPRY_MESH_ALLOW)
		return 0;
	cfg = bpf_map_lookup_elem(&SPRY_MAP_MESH_CONFIG, &zero);
	if (cfg && cfg->def_action == SPRY_MESH_DENY)
		return SPRY_MESH_S_REFUSED_DEFAULT;
	return 0;
}

/* Record where the socket's psock (made by the insertion) is. */
static __always_inline void psock_record(struct bpf_sock *sk, const struct spry_mesh_key *key,
					 __u64 cookie)
{
	struct spry_mesh_psock v = {};
	struct spry_mesh_rx rx = {};
	struct tcp_sock *tp;
	unsigned long ud;

	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	ud = (unsigned long)tp->inet_conn.icsk_inet.sk.sk_user_data;
	if (!(ud & SK_USER_DATA_PSOCK))
		return;
	v.psock = ud & SK_USER_DATA_PTRMASK;
	/* the socket's address, as the psock knows it: a scalar, not a pointer */
	if (bpf_probe_read_kernel(&v.sk, sizeof(v.sk), &((struct sk_psock *)v.psock)->sk))
		return;
	/* nothing queued by TCP yet: the next segment starts at rcv_nxt */
	rx.end = tp->rcv_nxt;
	v.cookie = cookie;
	if (bpf_map_update_elem(&SPRY_MAP_MESH_RX, &cookie, &rx, BPF_ANY))
		return;
	bpf_map_update_elem(&SPRY_MAP_MESH_PSOCKS, key, &v, BPF_ANY);
}

SEC("sockops")
int mesh_sockops(struct bpf_sock_ops *ops)
{
	__u32 op = CTX(ops, op), refused;
	struct spry_mesh_key key = {};
	struct spry_mesh_conn *c;
	struct bpf_sock *sk;
	bool active;

	if (op == BPF_SOCK_OPS_STATE_CB) {
		/* args[1]: the new state; the socket leaves the SOCKHASH by itself */
		if (CTX(ops, args[1]) == BPF_TCP_CLOSE && read_tuple(ops, &key)) {
			__u64 cookie = bpf_get_socket_cookie(ops);

			bpf_map_delete_elem(&SPRY_MAP_MESH_PSOCKS, &key);
			bpf_map_delete_elem(&SPRY_MAP_MESH_RX, &cookie);
		}
		return 1;
	}
	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	active = op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB;
	if (!read_tuple(ops, &key))
		return 1;
	refused = judge(ops, &key, active);
	/*
	 * Data this end sent before now (TCP Fast Open's SYN) went by TCP:
	 * redirecting what follows would let the peer read it first.
	 */
	if (!refused && CTX(ops, data_segs_out))
		refused = SPRY_MESH_S_REFUSED_SENT;
	if (refused) {
		count(refused, 1);
		return 1;
	}
	sk = ops->sk;
	if (!sk)
		return 1;
	c = bpf_sk_storage_get(&SPRY_MAP_MESH_CONN, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		count(SPRY_MESH_S_INSERT_FAILED, 1);
		return 1;
	}
	c->peer.netns = key.netns;
	__builtin_memcpy(c->peer.local, key.remote, 16);
	__builtin_memcpy(c->peer.remote, key.local, 16);
	c->peer.lport = key.rport;
	c->peer.rport = key.lport;
	c->peer.pad = 0;
	c->mode = SPRY_MESH_UNDECIDED;
	/* NOEXIST: replacing an entry would drop that socket's unread data */
	if (bpf_sock_hash_update(ops, &SPRY_MAP_MESH_SOCKS, &key, BPF_NOEXIST)) {
		count(SPRY_MESH_S_INSERT_FAILED, 1);
		return 1;
	}
	count(SPRY_MESH_S_INSERTED, 1);
	psock_record(sk, &key, bpf_get_socket_cookie(ops));
	bpf_sock_ops_cb_flags_set(ops, BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}

enum { PEER_NO_RECORD, PEER_STALE, PEER_OK };

/*
 * The peer's psock and socket, from spry_mesh_psocks, checked to still
 * belong to each other (psock->sk == sk, sk's sk_user_data == psock):
 * PEER_OK, PEER_STALE (the peer is closing) or PEER_NO_RECORD.
 */
static __always_inline int peer_psock(const struct spry_mesh_conn *c, struct sk_psock **ps,
				      struct sock **psk)
{
	struct spry_mesh_psock *v;
	unsigned long ud = 0, back = 0;

	v = bpf_map_lookup_elem(&SPRY_MAP_MESH_PSOCKS, &c->peer);
	if (!v)
		return PEER_NO_RECORD;
	*ps = (struct sk_psock *)v->psock;
	*psk = (struct sock *)v->sk;
	if (bpf_probe_read_kernel(&back, sizeof(back), &(*ps)->sk) || back != v->sk ||
	    bpf_probe_read_kernel(&ud, sizeof(ud), &(*psk)->sk_user_data) ||
	    (ud & SK_USER_DATA_PTRMASK) != v->psock)
		return PEER_STALE;
	return PEER_OK;
}

/*
 * Whether the peer can take size more redirected bytes.  Two limits:
 *
 * - its receive buffer, where the reader set it (SO_RCVBUF), by TCP's
 *   own rule: a segment is admitted only while the socket's receive
 *   memory (sk_rmem_alloc) is within sk_rcvbuf (tcp_try_rmem_schedule).  On this kernel a redirected
 *   message is charged to the reader's sk_rmem_alloc too (by its size),
 *   so redirecting past sk_rcvbuf would leave the first TCP segments of
 *   a fallback with no room: the reader drops them (RcvPruned), as many
 *   as come before it has read the redirected backlog, and the sender
 *   waits out a retransmission timeout (200 ms) each time.  A reader
 *   with a 256 KiB SO_RCVBUF under iperf3 ran at 0.3 Gbit/s that way.
 *   Stopping where TCP's window would have stopped the sender keeps the
 *   fallback's segments within the buffer, and redirects as much as TCP
 *   would let queue.  A buffer TCP autotunes starts at 128 KiB and
 *   outgrows max_queued in the first TCP phases: bounding by it early
 *   sent streams to TCP for long (4-stream iperf3 at 16-31 Gbit/s
 *   against 55-78), so max_queued alone bounds those;
 * - max_queued unread redirected bytes (its psock's msg_tot_len, what
 *   FIONREAD reports), whatever the buffer.
 *
 * A stale record bounds only the message (the peer is closing, and the
 * redirect fails once it is gone).  Without a record (the LRU evicted it), and on kernels
 * without msg_tot_len, what the direction redirected in all is bounded
 * instead.
 */
#ifndef SOCK_RCVBUF_LOCK
#define SOCK_RCVBUF_LOCK	2	/* sk_userlocks: SO_RCVBUF was set */
#endif

static __always_inline bool peer_fits(const struct spry_mesh_conn *c, __u32 size, __u64 max)
{
	struct sk_psock *ps = NULL;
	struct sock *psk = NULL;
	__u32 q = 0;
	int rmem = 0, rcvbuf = 0;

	if (!bpf_core_field_exists(ps->msg_tot_len))
		return c->redirected + size <= max;
	switch (peer_psock(c, &ps, &psk)) {
	case PEER_NO_RECORD:	/* evicted from the full LRU */
		return c->redirected + size <= max;
	case PEER_STALE:
		return size <= max;
	}
	bpf_probe_read_kernel(&q, sizeof(q), &ps->msg_tot_len);
	if ((__u64)q + size > max)
		return false;
	if (!(BPF_CORE_READ(psk, sk_userlocks) & SOCK_RCVBUF_LOCK))
		return true;
	rmem = BPF_CORE_READ(psk, sk_backlog.rmem_alloc.counter);
	rcvbuf = BPF_CORE_READ(psk, sk_rcvbuf);
	return (__s64)rmem + size <= rcvbuf;
}

/*
 * Whether a stalled direction may come back to REDIRECT without any byte
 * overtaking another.  Runs in the sender's SK_MSG program, so under the
 * sender's socket lock: its write_seq cannot move meanwhile.  The peer's
 * fields are read without its lock, through the psock record.
 *
 * The proof rests on one equality: peer.copied_seq == write_seq.  On this
 * kernel a mapped reader's copied_seq moves only when recvmsg has copied
 * to user space bytes its own TCP stack received (redirected bytes do not
 * count; spry_mesh_comeback_ok), under the reader's socket lock, after
 * the copy.  write_seq counts every byte this socket ever gave TCP, and
 * the peer's TCP bytes are exactly those.  So the equality says no TCP
 * byte of this direction is anywhere but in the reader's user buffer: not
 * in flight, not in the receive queue, not between tcp_read_skb and the
 * psock, not in the psock's backlog or message queue.  The redirect then
 * queues behind whatever the reader's current recvmsg holds (it takes the
 * reader's socket lock).  copied_seq only grows, so the equality stays
 * true until this socket sends by TCP again, which only this program
 * decides, under this lock.  The other conditions follow from it (nothing
 * sent is unsent, nothing received is unread, the receive queue and both
 * psock queues are empty) and are checked as a guard against a record
 * that misreads the reader.  That the sender has seen the ACK (snd_una)
 * is not needed, and is not required: the sender's own socket lock holds
 * ACKs in its backlog while it sends, so requiring it would only delay
 * the comeback; a later retransmission of acknowledged-by-reading bytes
 * is dropped by the reader as old.
 */
static __always_inline bool comeback_ok(struct sk_msg_md *msg, const struct spry_mesh_conn *c)
{
	struct sk_psock *ps = NULL;
	struct tcp_sock *me, *peer;
	struct sock *psk = NULL;
	__u32 wseq, copied, rcv_nxt, tot, rq, bq;
	struct spry_mesh_psock *v;
	struct spry_mesh_rx *rx;
	unsigned long head, next;
	__u64 cookie;

	if (!spry_mesh_comeback_ok || !msg->sk)
		return false;
	if (!bpf_core_field_exists(ps->msg_tot_len) || !bpf_core_field_exists(ps->ingress_msg) ||
	    !bpf_core_field_exists(ps->ingress_skb))
		return false;
	me = bpf_skc_to_tcp_sock(msg->sk);
	if (!me)
		return false;
	wseq = me->write_seq;
	if (me->snd_nxt != wseq)
		return false;
	if (peer_psock(c, &ps, &psk) != PEER_OK)
		return false;
	peer = (struct tcp_sock *)psk;
	copied = BPF_CORE_READ(peer, copied_seq);
	if (copied != wseq)
		return false;
	rcv_nxt = BPF_CORE_READ(peer, rcv_nxt);
	rq = BPF_CORE_READ(psk, sk_receive_queue.qlen);
	tot = BPF_CORE_READ(ps, msg_tot_len);
	bq = BPF_CORE_READ(ps, ingress_skb.qlen);
	next = (unsigned long)BPF_CORE_READ(ps, ingress_msg.next);
	head = (unsigned long)ps + bpf_core_field_offset(ps->ingress_msg);
	if (rcv_nxt != copied || rq || tot || bq || next != head)
		return false;
	/*
	 * And what the reader's TCP stack queued to its psock, segment by
	 * segment (mesh_skb), ends exactly there, contiguous: copied_seq
	 * counts bytes as they are copied out, so a segment queued twice in
	 * part (rx_overlap) or a gap would make it say "all read" while TCP
	 * bytes are still queued.  Read again after the queues: rx_end only
	 * grows while TCP brings bytes, and none is on its way (rcv_nxt).
	 */
	v = bpf_map_lookup_elem(&SPRY_MAP_MESH_PSOCKS, &c->peer);
	if (!v)
		return false;
	cookie = v->cookie;
	rx = bpf_map_lookup_elem(&SPRY_MAP_MESH_RX, &cookie);
	return rx && rx->end == copied && !(rx->flags & SPRY_MESH_RX_UNORDERED);
}

static __always_inline int pass(struct spry_mesh_conn *c, __u32 stat, __u32 size)
{
	count(stat, 1);
	count(SPRY_MESH_S_PASSED_BYTES, size);
	if (c)
		c->passed += size;
	return SK_PASS;
}

static const __u32 mode_stat[SPRY_MESH_MODE_MAX] = {
	[SPRY_MESH_TCP_NO_PEER]		= SPRY_MESH_S_PASS_NO_PEER,
	[SPRY_MESH_TCP_PEER_GONE]	= SPRY_MESH_S_PASS_PEER_GONE,
	[SPRY_MESH_TCP_STALLED]		= SPRY_MESH_S_PASS_STALLED,
};

SEC("sk_msg")
int mesh_msg(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	__u32 size = msg->size, zero = 0, mode;
	struct spry_mesh_config *cfg;
	struct spry_mesh_conn *c;
	bool back = false;
	__u64 max;

	if (!sk)
		return SK_PASS;
	/*
	 * The redirect path ignores a shut-down send side: after
	 * shutdown(SHUT_WR) (FIN_WAIT*, CLOSING, LAST_ACK) TCP must answer
	 * the write, with EPIPE.
	 */
	if (sk->state != BPF_TCP_ESTABLISHED && sk->state != BPF_TCP_CLOSE_WAIT)
		return pass(NULL, SPRY_MESH_S_PASS_STATE, size);
	c = bpf_sk_storage_get(&SPRY_MAP_MESH_CONN, sk, 0, 0);
	if (!c)
		return pass(NULL, SPRY_MESH_S_PASS_NO_CONN, size);
	mode = c->mode;
	cfg = bpf_map_lookup_elem(&SPRY_MAP_MESH_CONFIG, &zero);
	max = cfg && cfg->max_queued ? cfg->max_queued : SPRY_MESH_DEF_MAX_QUEUED;
	/*
	 * A stalled direction comes back once the reader has copied out every
	 * byte this socket gave TCP (comeback_ok) and the message fits; the
	 * other TCP modes are for good (no peer, or it is gone).  Every
	 * message redirected fits (peer_fits): the first, a comeback's, and
	 * each after.
	 */
	if (mode == SPRY_MESH_TCP_STALLED && peer_fits(c, size, max) && comeback_ok(msg, c)) {
		mode = SPRY_MESH_REDIRECT;
		back = true;
	} else if (mode != SPRY_MESH_UNDECIDED && mode != SPRY_MESH_REDIRECT) {
		return pass(c, mode < SPRY_MESH_MODE_MAX ? mode_stat[mode] :
			    SPRY_MESH_S_PASS_NO_CONN, size);
	} else {
		if (!peer_fits(c, size, max)) {
			/* Stalled reader: TCP's window bounds the rest, behind the queue. */
			c->mode = SPRY_MESH_TCP_STALLED;
			count(SPRY_MESH_S_FALLBACK_STALLED, 1);
			return pass(c, SPRY_MESH_S_PASS_STALLED, size);
		}
	}
	/* an UNDECIDED direction decides here: peer mapped or TCP for good */
	if (bpf_msg_redirect_hash(msg, &SPRY_MAP_MESH_SOCKS, &c->peer,
				  BPF_F_INGRESS) != SK_PASS) {
		/* no peer in the map: never was (not accelerated), or closed */
		c->mode = mode == SPRY_MESH_UNDECIDED ? SPRY_MESH_TCP_NO_PEER :
							SPRY_MESH_TCP_PEER_GONE;
		return pass(c, mode_stat[c->mode], size);
	}
	c->mode = SPRY_MESH_REDIRECT;
	c->redirected += size;
	if (back)
		count(SPRY_MESH_S_COMEBACK, 1);
	count(SPRY_MESH_S_REDIRECTED, 1);
	count(SPRY_MESH_S_REDIRECTED_BYTES, size);
	return SK_PASS;
}

/* bpf_skb_adjust_room() on SK_SKB pops at most this much per call */
#define SKB_POP_MAX		4095
#define SKB_POP_CALLS		17	/* 17 * 4095 > 64 KiB, one GSO segment */

/*
 * Pop n bytes off the head of a segment about to be queued to the psock;
 * false if it could not.
 */
static __always_inline bool skb_pop_head(struct __sk_buff *skb, __u32 n)
{
	int i;

	for (i = 0; i < SKB_POP_CALLS && n; i++) {
		__u32 k = n < SKB_POP_MAX ? n : SKB_POP_MAX;

		if (bpf_skb_adjust_room(skb, -(__s32)k, 0, 0))
			return false;
		n -= k;
	}
	return !n;
}

/*
 * Runs on every segment a mapped socket's TCP stack hands its psock
 * (tcp_read_skb(), whole segments).  TCP may queue a segment that begins
 * before what it had already received (a retransmission that overlaps,
 * "partial packet" in tcp_data_queue()): tcp_recvmsg() skips the old
 * bytes by copied_seq, but the psock path queues the whole segment, so
 * the reader would get those bytes twice and copied_seq would count them
 * twice.  skb->cb[0] and cb[1] are the segment's seq and end_seq
 * (TCP_SKB_CB, the first bytes of skb->cb that SK_SKB's cb[] maps): the
 * old head is popped off here (rx_overlap), and the end of what was
 * queued recorded for the comeback of the peer's direction
 * (comeback_ok()).  Anything else out of order is only recorded
 * (rx_unordered), which keeps that direction on TCP for good.  Passes
 * everything: the program also has to be there at all (FIONREAD).
 */
SEC("sk_skb")
int mesh_skb(struct __sk_buff *skb)
{
	__u32 seq = skb->cb[0], end = skb->cb[1], len = skb->len, over;
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct spry_mesh_rx *rx;

	/* TCP_SKB_CB: end_seq - seq is the length, plus one for a FIN */
	if (end - seq != len && end - seq != len + 1)
		return SK_PASS;
	rx = bpf_map_lookup_elem(&SPRY_MAP_MESH_RX, &cookie);
	if (!rx)
		return SK_PASS;
	over = rx->end - seq;
	if (seq != rx->end) {
		if ((__s32)over > 0 && over < len && skb_pop_head(skb, over)) {
			count(SPRY_MESH_S_RX_OVERLAP, 1);
		} else {
			rx->flags |= SPRY_MESH_RX_UNORDERED;
			count(SPRY_MESH_S_RX_UNORDERED, 1);
		}
	}
	if ((__s32)(end - rx->end) > 0)
		rx->end = end;
	return SK_PASS;
}
