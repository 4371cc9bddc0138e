// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * skmsg_route: spry's router.  Runs on every send() of a socket in
 * spry_socks, once per 64-byte descriptor, and decides where it goes
 * (docs/DESIGN.md, "Routing").  Nothing a sender writes is trusted: who it
 * is comes from the socket's storage (set by spryd), where a request may go
 * from the chain and the authorization map, and the fields the router owns
 * (hop, origin, inst, ret_fn, ret_inst, status on errors) are rewritten in
 * place.
 *
 * Every SK_DROP is a deliberate quarantine: the kernel keeps dropping a
 * socket's sends once one was dropped, the sender and its instance are
 * flagged, and an event tells spryd.  Failures that are nobody's fault (no
 * chain, no instance, no caller) go back to the origin with a status.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* From uapi/linux/bpf.h (a #define, so not in vmlinux.h). */
#ifndef BPF_F_INGRESS
#define BPF_F_INGRESS		(1ULL << 0)
#endif

#define DESC_SIZE		sizeof(struct spry_desc)
#define DF_ALL			(SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_STICKY)

/*
 * How many instances to try, at most, before giving up with NO_INSTANCE.
 * Redirecting to a closed socket fails without side effects, so probing is
 * only paid for while spryd has not yet removed a dead instance.
 */
const volatile __u32 spry_max_probe = SPRY_MAX_INST;

/*
 * Round-robin position per CPU and per function.  One counter per function
 * rather than one for all: with a shared counter the hops of a chain step
 * it in lockstep (with two hops, every request would see the same parity
 * at the same hop and always get the same instance).  Private to this
 * program: not pinned, not part of the ABI.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SPRY_MAX_FNS);
	__type(key, __u32);
	__type(value, __u32);
} spry_rr SEC(".maps");

/* Where a routed descriptor goes. */
enum route_to {
	TO_FN,		/* an instance of fn, chosen by pick_inst() */
	TO_INST,	/* exactly {fn, inst} (a reply to its caller) */
	TO_ORIGIN,	/* the origin instance desc.origin */
};

struct route {
	__u32	verdict;
	__u32	to;		/* enum route_to */
	__u16	fn;
	__u16	inst;
};

static __always_inline void count_verdict(__u32 v)
{
	__u64 *cnt = bpf_map_lookup_elem(&SPRY_MAP_VERDICTS, &v);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
}

static __always_inline struct spry_fn_stats *fn_stats(__u16 fn)
{
	__u32 key = fn;

	return bpf_map_lookup_elem(&SPRY_MAP_FN_STATS, &key);
}

static __always_inline struct spry_inst_state *inst_state(__u16 fn, __u16 inst)
{
	__u32 key;

	if (fn >= SPRY_MAX_FNS || inst >= SPRY_MAX_INST)
		return NULL;
	key = (__u32)fn * SPRY_MAX_INST + inst;
	return bpf_map_lookup_elem(&SPRY_MAP_INST, &key);
}

static __always_inline bool authorized(__u16 chain, __u16 from, __u16 to)
{
	struct spry_auth_key key = { .chain = chain, .from = from, .to = to };

	return bpf_map_lookup_elem(&SPRY_MAP_AUTH, &key) != NULL;
}

/*
 * The buffer a descriptor names must lie inside the chain's pool:
 * [off, off + max(cap, meta_len + len)) within [0, pool_size).  meta_len and
 * len are 32-bit, so their sum cannot overflow in 64 bits, and comparing
 * against pool_size - off (off < pool_size checked first) cannot overflow
 * either, whatever off is (UINT64_MAX included).
 */
static __always_inline bool in_pool(const struct spry_desc *d, __u64 pool_size)
{
	__u64 need = (__u64)d->meta_len + d->len;

	if (d->cap > need)
		need = d->cap;
	return d->off < pool_size && need <= pool_size - d->off;
}

/* The descriptor at the start of the message, linear; NULL if short. */
static __always_inline struct spry_desc *desc_get(struct sk_msg_md *msg)
{
	void *data = (void *)(long)msg->data;
	void *data_end = (void *)(long)msg->data_end;

	/*
	 * Measured on 6.18: after bpf_msg_apply_bytes() every run's data
	 * points at the current descriptor and data_end at the end of its
	 * scatterlist element; msg->size is what is left of the send.
	 */
	if (data + DESC_SIZE <= data_end)
		return data;
	/*
	 * The descriptor straddles two elements.  Elements are cut from the
	 * sending thread's page fragment (32 KiB pages shared by all its TCP
	 * sockets), so this happens at the end of a fragment page when an
	 * earlier send of the thread left the offset off a 64-byte multiple.
	 * Linearize this descriptor only (offsets are relative to it).
	 */
	if (msg->size < DESC_SIZE || bpf_msg_pull_data(msg, 0, DESC_SIZE, 0))
		return NULL;
	data = (void *)(long)msg->data;
	data_end = (void *)(long)msg->data_end;
	if (data + DESC_SIZE > data_end)
		return NULL;
	return data;
}

/*
 * Quarantine the sender: flag its storage and instance, count, tell spryd.
 * SK_DROP then makes the kernel fail this and every later send on the
 * socket with EACCES.  @s and @d may be NULL (unknown sender, short send).
 */
static __always_inline int drop(struct spry_sender *s, const struct spry_desc *d,
				__u32 v)
{
	struct spry_event ev = {};
	struct spry_inst_state *st;
	struct spry_fn_stats *fs;

	ev.ts_ns = bpf_ktime_get_ns();
	ev.verdict = v;
	if (d) {
		ev.req_id = d->req_id;
		ev.desc_chain = d->chain;
		ev.hop = d->hop;
	}
	if (s) {
		ev.chain = s->chain;
		ev.fn = s->fn;
		ev.inst = s->inst;
		/* Sends on one socket are serialized by its lock. */
		s->flags |= SPRY_SF_QUARANTINED;
		if (s->role == SPRY_ROLE_FN) {
			st = inst_state(s->fn, s->inst);
			if (st)
				__sync_fetch_and_or(&st->flags, SPRY_IF_QUARANTINED);
		}
		fs = fn_stats(s->fn);
		if (fs)
			__sync_fetch_and_add(&fs->dropped, 1);
	}
	count_verdict(v);
	bpf_ringbuf_output(&SPRY_MAP_EVENTS, &ev, sizeof(ev), 0);
	return SK_DROP;
}

/* A 64-bit mix (murmur3's finalizer): sticky keys spread over instances. */
static __always_inline __u32 key_hash(__u64 k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return (__u32)k;
}

/*
 * fn->inst[idx] with idx < SPRY_MAX_INST made visible to the verifier:
 * clang knows idx < n <= SPRY_MAX_INST and would drop a plain mask, but the
 * verifier cannot follow a modulo, so mask behind a compiler barrier.
 */
static __always_inline __u16 fn_inst(const struct spry_fn *fn, __u32 idx)
{
	barrier_var(idx);
	return fn->inst[idx & (SPRY_MAX_INST - 1)];
}

static __always_inline __s32 inflight_of(__u16 fn, __u16 inst)
{
	struct spry_inst_state *st = inst_state(fn, inst);

	return st ? st->inflight : 0;
}

/*
 * The instance flags pick_inst() skips for @fn_id: quarantined ones, and
 * unhealthy ones too while the function has a healthy instance.  A global
 * function, verified on its own: its result is one unknown value to the
 * caller, so the probe loop is not explored once per outcome.
 */
__noinline __u32 avoid_mask(__u32 fn_id)
{
	const struct spry_inst_state *st;
	struct spry_fn *fn;
	__u32 n, i;

	fn = bpf_map_lookup_elem(&SPRY_MAP_FNS, &fn_id);
	if (!fn)
		return SPRY_IF_QUARANTINED;
	n = fn->n_inst;
	for (i = 0; i < SPRY_MAX_INST; i++) {
		if (i >= n)
			break;
		st = inst_state(fn_id, fn_inst(fn, i));
		if (st && !(st->flags & (SPRY_IF_QUARANTINED | SPRY_IF_UNHEALTHY)))
			return SPRY_IF_QUARANTINED | SPRY_IF_UNHEALTHY;
	}
	return SPRY_IF_QUARANTINED;
}

/*
 * Choose an instance of @fn and set the redirect to it.  The first
 * candidate is the sticky key's hash (SPRY_DF_STICKY) or this CPU's
 * round-robin position; without a sticky key the next instance is the
 * second candidate and whichever has fewer requests in flight goes first
 * (two choices).  A sticky key keeps its order so that it always lands on
 * the same live instance.  Then the rest in order: a redirect to a closed
 * socket fails without side effects, so a dead instance spryd has not yet
 * removed is skipped, as is a quarantined one (it could not send on).
 * An unhealthy instance (it held a request past its deadline: spryd sets
 * SPRY_IF_UNHEALTHY) is skipped while the function has a healthy one
 * (neither quarantined nor unhealthy): one bounded look over the instances
 * before the probes.
 * Returns 0 with *out set and the redirect in place, -1 if none took it.
 */
static __always_inline int pick_inst(struct sk_msg_md *msg, __u16 fn_id,
				     const struct spry_desc *d, __u16 *out)
{
	struct spry_inst_key key = { .fn = fn_id };
	struct spry_inst_state *st;
	struct spry_fn *fn;
	__u32 n, start, first, second, idx, i, fkey = fn_id;
	bool sticky = d->flags & SPRY_DF_STICKY;
	__u32 avoid;
	__u32 *rr;
	__u16 inst;

	fn = bpf_map_lookup_elem(&SPRY_MAP_FNS, &fkey);
	if (!fn)
		return -1;
	n = fn->n_inst;
	if (n > SPRY_MAX_INST)
		n = SPRY_MAX_INST;
	if (!n)
		return -1;

	if (sticky) {
		start = key_hash(d->key) % n;
	} else {
		rr = bpf_map_lookup_elem(&spry_rr, &fkey);
		if (!rr)
			return -1;
		start = *rr % n;
		*rr += 1;
	}
	first = start;
	second = start + 1 < n ? start + 1 : 0;
	if (!sticky && n > 1 &&
	    inflight_of(fn_id, fn_inst(fn, second)) <
	    inflight_of(fn_id, fn_inst(fn, first))) {
		first = second;
		second = start;
	}

	avoid = avoid_mask(fn_id);
	for (i = 0; i < SPRY_MAX_INST; i++) {
		if (i >= n || i >= spry_max_probe)
			break;
		if (i == 0)
			idx = first;
		else if (i == 1)
			idx = second;
		else
			idx = (start + i) % n;
		inst = fn_inst(fn, idx);
		st = inst_state(fn_id, inst);
		if (!st || (st->flags & avoid))
			continue;
		key.inst = inst;
		if (bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &key,
					  BPF_F_INGRESS) == SK_PASS) {
			*out = inst;
			return 0;
		}
	}
	return -1;
}

/* A descriptor was redirected into instance {fn, inst}. */
static __always_inline void delivered(struct spry_desc *d, __u16 fn, __u16 inst)
{
	struct spry_inst_state *st = inst_state(fn, inst);
	struct spry_fn_stats *fs = fn_stats(fn);
	struct spry_reqloc *loc;
	__u32 slot = d->req_id & (SPRY_REQ_SLOTS - 1);

	d->inst = inst;
	if (st)
		__sync_fetch_and_add(&st->inflight, 1);
	if (fs)
		__sync_fetch_and_add(&fs->delivered, 1);
	/* So spryd knows which requests a dead instance held. */
	loc = bpf_map_lookup_elem(&SPRY_MAP_REQLOC, &slot);
	if (loc) {
		loc->req_id = d->req_id;
		loc->fn = fn;
		loc->inst = inst;
		loc->hop = d->hop;
	}
}

/*
 * Carry out a routing decision that is not a drop.  A function sender
 * has handed the descriptor on, whatever happens next: its in-flight count
 * goes down.  A target without a live instance (or a gone caller) turns
 * the decision into NO_INSTANCE (NO_CALLER) to the origin; an origin that
 * is gone too leaves the bytes to the sending socket's TCP peer, which is
 * spryd's (FALLBACK).
 */
static __always_inline int deliver(struct sk_msg_md *msg, const struct spry_sender *s,
				   struct spry_desc *d, struct route *r)
{
	struct spry_inst_key okey = { .fn = SPRY_FN_ORIGIN };
	struct spry_inst_state *st;
	struct spry_fn_stats *fs;
	__u16 inst;

	if (s->role == SPRY_ROLE_FN) {
		st = inst_state(s->fn, s->inst);
		if (st) {
			__sync_fetch_and_sub(&st->inflight, 1);
			/* It answers again: healthy (docs/DESIGN.md). */
			__sync_fetch_and_and(&st->flags, ~(__u32)SPRY_IF_UNHEALTHY);
		}
		fs = fn_stats(s->fn);
		if (fs) {
			__sync_fetch_and_add(&fs->sent, 1);
			if (r->verdict == SPRY_V_ERROR)
				__sync_fetch_and_add(&fs->errors, 1);
		}
	}

	if (r->to == TO_FN) {
		if (!pick_inst(msg, r->fn, d, &inst)) {
			delivered(d, r->fn, inst);
			count_verdict(r->verdict);
			return SK_PASS;
		}
		r->verdict = SPRY_V_NO_INSTANCE;
		d->status = SPRY_ST_NO_INSTANCE;
	} else if (r->to == TO_INST) {
		struct spry_inst_key key = { .fn = r->fn, .inst = r->inst };

		if (bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &key,
					  BPF_F_INGRESS) == SK_PASS) {
			delivered(d, r->fn, r->inst);
			count_verdict(r->verdict);
			return SK_PASS;
		}
		r->verdict = SPRY_V_NO_CALLER;
		d->status = SPRY_ST_NO_CALLER;
	}

	okey.inst = d->origin;
	if (bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &okey, BPF_F_INGRESS) ==
	    SK_PASS) {
		fs = fn_stats(SPRY_FN_ORIGIN);
		if (fs)
			__sync_fetch_and_add(&fs->delivered, 1);
		count_verdict(r->verdict);
		return SK_PASS;
	}
	/* No redirect set: SK_PASS sends the bytes on the socket's own TCP. */
	count_verdict(SPRY_V_FALLBACK);
	return SK_PASS;
}

static __always_inline __u32 to_origin(struct route *r, __u32 v)
{
	r->verdict = v;
	r->to = TO_ORIGIN;
	return v;
}

static __always_inline __u32 to_fn(struct route *r, __u32 v, __u16 fn)
{
	r->verdict = v;
	r->to = TO_FN;
	r->fn = fn;
	return v;
}

/*
 * The routing decisions: each returns a drop verdict, or a verdict with
 * @r saying where the descriptor goes.  The caller carries it out, so that
 * drop() and deliver() are inlined once each.
 */

/* The origin (spryd) starts a request: to an instance of hops[0]. */
static __always_inline __u32 route_origin(const struct spry_sender *s,
					  struct spry_desc *d, struct route *r)
{
	struct spry_chain *c;
	__u32 cid = d->chain;
	__u16 first;

	/* Origins start plain requests; calls and replies are functions'. */
	if (d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY))
		return SPRY_V_DROP_VERSION;
	if (cid == 0 || cid >= SPRY_MAX_CHAINS)
		return SPRY_V_DROP_CHAIN;
	c = bpf_map_lookup_elem(&SPRY_MAP_CHAINS, &cid);
	if (!c)
		return SPRY_V_DROP_CHAIN;

	/* The request belongs to this origin instance from now on. */
	d->origin = s->inst;
	d->hop = 0;
	/* A chain without hops is as unusable as an inactive one. */
	if (!(c->flags & SPRY_CF_ACTIVE) || c->n_hops == 0 ||
	    c->n_hops > SPRY_MAX_HOPS) {
		d->status = SPRY_ST_NO_CHAIN;
		return to_origin(r, SPRY_V_NO_CHAIN);
	}
	if (!in_pool(d, c->pool_size))
		return SPRY_V_DROP_BOUNDS;
	/* origin -> hops[0] is a hand-off from fn 0 like any other. */
	first = c->hops[0];
	if (!authorized(cid, SPRY_FN_ORIGIN, first))
		return SPRY_V_DROP_AUTH;
	return to_fn(r, SPRY_V_FORWARD, first);
}

/* A function instance hands a descriptor on. */
static __always_inline __u32 route_fn(const struct spry_sender *s,
				      struct spry_desc *d, struct route *r)
{
	struct spry_inst_state *st;
	struct spry_chain *c;
	__u32 cid = d->chain;
	__u32 hop = d->hop;
	__u32 n_hops;
	__u16 next;

	/*
	 * The flood bound: a function sends one descriptor for each one it
	 * was given (a call's reply comes back as a delivery), so it can never
	 * have sent more than it received.  One that tries is making requests
	 * up: without this, nothing would bound what it queues in the kernel
	 * (redirects have no backpressure).  Its sends are serialized by its
	 * socket lock, so the check and the decrement in deliver() do not race
	 * with each other; deliveries only raise the count.
	 */
	st = inst_state(s->fn, s->inst);
	if (!st || st->inflight <= 0)
		return SPRY_V_DROP_FLOOD;
	if (cid == 0 || cid >= SPRY_MAX_CHAINS || cid != s->chain)
		return SPRY_V_DROP_CHAIN;
	c = bpf_map_lookup_elem(&SPRY_MAP_CHAINS, &cid);
	if (!c)
		return SPRY_V_DROP_CHAIN;
	n_hops = c->n_hops;
	if (!(c->flags & SPRY_CF_ACTIVE) || n_hops == 0 || n_hops > SPRY_MAX_HOPS) {
		d->status = SPRY_ST_NO_CHAIN;
		return to_origin(r, SPRY_V_NO_CHAIN);
	}
	if (!in_pool(d, c->pool_size))
		return SPRY_V_DROP_BOUNDS;

	/*
	 * Who may send this descriptor.  A plain (or error) send comes from
	 * the function at its hop.  A call or reply keeps the hop of the
	 * request's position in the chain, which must be a real one, but is
	 * sent by a caller or callee that need not be that hop's function:
	 * a reply must come from the callee it names, and a call's and a
	 * reply's hand-off are checked against the authorization map below.
	 */
	if (hop >= n_hops || hop >= SPRY_MAX_HOPS)
		return SPRY_V_DROP_HOP;
	if (!(d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY)) &&
	    c->hops[hop & (SPRY_MAX_HOPS - 1)] != s->fn)
		return SPRY_V_DROP_HOP;
	if ((d->flags & SPRY_DF_REPLY) && d->fn != s->fn)
		return SPRY_V_DROP_AUTH;

	/* A failed request goes straight back to its origin. */
	if (d->status != SPRY_ST_OK)
		return to_origin(r, SPRY_V_ERROR);

	if (d->flags & SPRY_DF_CALL) {
		__u32 callee = d->fn;
		struct spry_fn *fn;

		/*
		 * The callee must be a function of this chain that the caller
		 * may call (an authorization naming another chain's function
		 * is a control-plane mistake the router does not follow).
		 */
		if (callee == SPRY_FN_ORIGIN || callee >= SPRY_MAX_FNS ||
		    !authorized(cid, s->fn, callee))
			return SPRY_V_DROP_AUTH;
		fn = bpf_map_lookup_elem(&SPRY_MAP_FNS, &callee);
		if (!fn || fn->chain != cid)
			return SPRY_V_DROP_AUTH;
		d->ret_fn = s->fn;
		d->ret_inst = s->inst;
		return to_fn(r, SPRY_V_CALL, d->fn);
	}

	if (d->flags & SPRY_DF_REPLY) {
		/*
		 * ret_fn/ret_inst were written by the router at the call, but
		 * the callee could rewrite them: the reply may only go to a
		 * function that is allowed to call it (never the origin).
		 */
		if (d->ret_fn == SPRY_FN_ORIGIN || d->ret_inst >= SPRY_MAX_INST ||
		    !authorized(cid, d->ret_fn, s->fn))
			return SPRY_V_DROP_AUTH;
		r->verdict = SPRY_V_REPLY;
		r->to = TO_INST;
		r->fn = d->ret_fn;
		r->inst = d->ret_inst;
		return SPRY_V_REPLY;
	}

	if (hop + 1 < n_hops) {
		next = c->hops[(hop + 1) & (SPRY_MAX_HOPS - 1)];
		if (!authorized(cid, s->fn, next))
			return SPRY_V_DROP_AUTH;
		d->hop = hop + 1;
		return to_fn(r, SPRY_V_FORWARD, next);
	}
	/* The last hop hands back to the origin (fn 0). */
	if (!authorized(cid, s->fn, SPRY_FN_ORIGIN))
		return SPRY_V_DROP_AUTH;
	return to_origin(r, SPRY_V_DONE);
}

SEC("sk_msg")
int skmsg_route(struct sk_msg_md *msg)
{
	struct route r = {};
	struct spry_sender *s;
	struct spry_desc *d;
	__u32 v;

	/* One verdict per descriptor, even when a send() carries many. */
	bpf_msg_apply_bytes(msg, DESC_SIZE);

	d = desc_get(msg);
	s = bpf_sk_storage_get(&SPRY_MAP_SENDERS, msg->sk, 0, 0);
	if (!d)
		v = SPRY_V_DROP_SHORT;
	else if (!s || (s->flags & SPRY_SF_QUARANTINED))
		/* Unregistered, or quarantined and yet re-inserted by someone. */
		v = SPRY_V_DROP_SENDER;
	else if (d->version != SPRY_DESC_VERSION || (d->flags & ~DF_ALL) ||
		 (d->flags & SPRY_DF_CALL && d->flags & SPRY_DF_REPLY))
		v = SPRY_V_DROP_VERSION;
	else if (s->role == SPRY_ROLE_ORIGIN)
		v = route_origin(s, d, &r);
	else if (s->role == SPRY_ROLE_FN && s->fn != SPRY_FN_ORIGIN &&
		 s->fn < SPRY_MAX_FNS && s->inst < SPRY_MAX_INST)
		v = route_fn(s, d, &r);
	else
		v = SPRY_V_DROP_SENDER;

	if (v >= SPRY_V_FIRST_DROP)
		return drop(s, d, v);
	return deliver(msg, s, d, &r);
}
