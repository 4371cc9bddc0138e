// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * skmsg_route: spry's router.  Runs on every send() of a socket in
 * spry_socks and decides where each 64-byte descriptor goes (docs/DESIGN.md,
 * "Routing").  Nothing a sender writes is trusted: who it is comes from the
 * socket's storage (set by spryd), where a request may go from the chain
 * and the authorization map, and the fields the router owns (hop, origin,
 * inst, ret_fn, ret_inst, status on errors) are rewritten in place.
 *
 * One program run judges the first descriptor left in the send with every
 * check.  When that is a plain FORWARD (no flags) or a DONE and the
 * redirect took, the descriptors right behind it in the linear data that
 * would get the same decision (same version, flags 0, chain, hop, status
 * OK, inside the pool, for DONE the same origin) join it as a run of up to
 * SPRY_RUN_MAX, bounded for a function by what it has in flight: each is
 * rewritten and counted as if routed alone, and the whole run gets one
 * redirect (bpf_msg_apply_bytes(64 * n)): one sk_msg, one wake-up of the
 * receiver.  The first descriptor that differs starts the next run, where
 * it is judged (and dropped, if it must be) on its own.
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
#define DF_ALL			(SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_STICKY | SPRY_DF_MAIL | \
				 SPRY_DF_NEXT | SPRY_DF_FAN)

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

/*
 * Workflows (docs/WORKFLOWS.md): the fan-out branches each instance has
 * out, SPRY_FAN_MAX at most.  A branch (CALL|FAN) leaves the caller's
 * in-flight count alone (the caller still holds its request) and takes
 * one here; its reply (REPLY|FAN) gives it back and is not counted in the
 * caller's in-flight either.  A slot belongs to one registration of the
 * instance: @cookie is the instance's spry_inst cookie when it was taken,
 * and a new registration starts from 0.  Private, not pinned.
 */
struct fan_slot {
	__u64	cookie;
	__u32	out;
	__u32	pad;
};

/*
 * *@p -= 1 unless it is 0; true when it was decremented.  Others may
 * change it meanwhile (their sends and answers): a compare-and-swap, and
 * if it keeps losing, a subtraction undone when it found 0, so that a busy
 * counter is never taken for an empty one (which would drop an innocent
 * sender as a flood).
 */
static __always_inline bool count_take(__u32 *p)
{
	__u32 v, old;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		v = *(volatile __u32 *)p;
		if (!v)
			return false;
		old = __sync_val_compare_and_swap(p, v, v - 1);
		if (old == v)
			return true;
	}
	if (__sync_fetch_and_sub(p, 1))
		return true;
	__sync_fetch_and_add(p, 1);	/* it was 0 after all */
	return false;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPRY_MAX_FNS * SPRY_MAX_INST);
	__type(key, __u32);
	__type(value, struct fan_slot);
} spry_fan SEC(".maps");

/* What a descriptor does to the fan-out accounting. */
enum fan_kind {
	FAN_NONE,	/* not a branch: in-flight counts as usual */
	FAN_CALL,	/* a branch out: the caller's in-flight untouched */
	FAN_REPLY,	/* a branch's answer: the caller's in-flight untouched */
	FAN_BOUNCE,	/* a branch refused back to its caller: neither count */
};

/* Where a routed descriptor goes. */
enum route_to {
	TO_FN,		/* an instance of fn, chosen by pick_inst() */
	TO_INST,	/* exactly {fn, inst} (a reply to its caller) */
	TO_ORIGIN,	/* the origin instance desc.origin */
};

/* Whether, and how, the descriptors behind the first may join its run. */
enum run_kind {
	RUN_NONE,	/* the descriptor goes alone */
	RUN_ORIGIN,	/* origin -> hops[0]: each gets hop 0, origin, inst */
	RUN_FN,		/* fn -> next hop: each gets hop + 1, inst */
	RUN_DONE,	/* last hop -> its origin: nothing to rewrite */
};

struct route {
	__u32	verdict;
	__u32	to;		/* enum route_to */
	__u16	fn;
	__u16	inst;
	__u32	fan;		/* enum fan_kind */
};

static __always_inline void count_verdict(__u32 v, __u32 n)
{
	__u64 *cnt = bpf_map_lookup_elem(&SPRY_MAP_VERDICTS, &v);

	if (cnt)
		__sync_fetch_and_add(cnt, n);
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

/* ---- workflows (docs/WORKFLOWS.md) ---- */

/*
 * The hop a conditional next goes to: the hop after @hop whose function
 * is @target, when chain @cid lets @from pick it (SPRY_AK_NEXT); -1 when
 * not.  A global function, verified once on its own.
 */
__noinline int next_hop(__u32 cid, __u32 hop, __u32 target, __u32 from)
{
	struct spry_auth_key key = {};
	struct spry_chain *c;
	__u32 j, n;

	if (!cid || cid >= SPRY_MAX_CHAINS || !target || target >= SPRY_MAX_FNS ||
	    from >= SPRY_MAX_FNS)
		return -1;
	key.chain = cid;
	key.from = from;
	key.to = target;
	key.kind = SPRY_AK_NEXT;
	if (!bpf_map_lookup_elem(&SPRY_MAP_AUTH, &key))
		return -1;
	c = bpf_map_lookup_elem(&SPRY_MAP_CHAINS, &cid);
	if (!c)
		return -1;
	n = c->n_hops;
	for (j = 0; j < SPRY_MAX_HOPS; j++) {
		if (j >= n)
			break;
		if (j > hop && c->hops[j] == target)
			return j;
	}
	return -1;
}

/*
 * A conditional next inside an app (docs/WORKFLOWS.md): 0 when the
 * handler that request @req_id was delivered to, at instance {@fn, @inst}
 * (the sender), may pick handler @target: an SPRY_AK_APP_NEXT
 * authorization {cid, that handler, target}.  The handler is the router's
 * word (spry_reqloc.handler, written at the request's last plain
 * delivery), never the sender's; -1 when the sender does not hold the
 * request (another instance, an overwritten slot), holds it as a callee,
 * or the pick is not declared.  A global function, verified on its own.
 */
__noinline int app_next(__u32 cid, __u64 req_id, __u32 fn, __u32 inst, __u32 target)
{
	struct spry_auth_key key = {};
	struct spry_reqloc *loc;
	__u32 slot = req_id & (SPRY_REQ_SLOTS - 1);
	__u32 from;

	if (!cid || cid >= SPRY_MAX_CHAINS || !target || target >= SPRY_RL_CALLEE)
		return -1;
	loc = bpf_map_lookup_elem(&SPRY_MAP_REQLOC, &slot);
	if (!loc || loc->req_id != req_id || loc->fn != fn || loc->inst != inst)
		return -1;
	from = loc->handler;
	if (!from || (from & SPRY_RL_CALLEE))
		return -1;
	key.chain = cid;
	key.from = from;
	key.to = target;
	key.kind = SPRY_AK_APP_NEXT;
	return bpf_map_lookup_elem(&SPRY_MAP_AUTH, &key) ? 0 : -1;
}

/* The fan slot of {fn, inst} for its current registration. */
static __always_inline struct fan_slot *fan_slot(__u16 fn, __u16 inst, bool claim)
{
	struct spry_inst_state *st;
	struct fan_slot *f;
	__u64 cookie;
	__u32 key;

	if (fn >= SPRY_MAX_FNS || inst >= SPRY_MAX_INST)
		return NULL;
	key = (__u32)fn * SPRY_MAX_INST + inst;
	f = bpf_map_lookup_elem(&spry_fan, &key);
	st = bpf_map_lookup_elem(&SPRY_MAP_INST, &key);
	if (!f || !st)
		return NULL;
	cookie = st->cookie;
	if (f->cookie != cookie) {
		if (!claim)
			return NULL;	/* a reply for an earlier registration */
		/* Only the caller's own (serialized) sends claim. */
		f->cookie = cookie;
		f->out = 0;
	}
	return f;
}

/* Take a branch for caller {fn, inst}: false when SPRY_FAN_MAX are out. */
static __always_inline bool fan_take(__u16 fn, __u16 inst)
{
	struct fan_slot *f = fan_slot(fn, inst, true);

	if (!f || f->out >= SPRY_FAN_MAX)
		return false;
	__sync_fetch_and_add(&f->out, 1);
	return true;
}

/*
 * Give a branch of caller {fn, inst} back (its reply, or a refusal): false
 * when it had none out (then it is no branch's answer).
 */
static __always_inline bool fan_give(__u16 fn, __u16 inst)
{
	struct fan_slot *f = fan_slot(fn, inst, false);

	return f && count_take(&f->out);
}

/*
 * The record of each branch out (SPRY_MAP_FANREC, include/spry/abi.h):
 * made when the branch is taken (so a full table refuses it as the
 * budget does), given its callee when delivered, deleted when answered,
 * bounced, or answered by spryd for a callee that died.  Deleting is what
 * makes one answer per branch: the callee's own and spryd's cannot both
 * find the record.
 */
static __always_inline void fan_key(struct spry_fan_key *k, __u16 fn, __u16 inst,
				    const struct spry_desc *d)
{
	k->fn = fn;
	k->inst = inst;
	k->pad = 0;
	k->req_id = d->req_id;
	k->tag = d->t_start;
}

/* A branch of caller {fn, inst} taken: its record, callee not known yet. */
static __always_inline bool fan_rec_add(__u16 fn, __u16 inst, const struct spry_desc *d)
{
	struct spry_fan_rec rec = { .fn = SPRY_FAN_NONE, .inst = SPRY_FAN_NONE };
	struct spry_fan_key k;

	fan_key(&k, fn, inst, d);
	return !bpf_map_update_elem(&SPRY_MAP_FANREC, &k, &rec, BPF_NOEXIST);
}

/* The branch @d of caller {fn, inst} was delivered to {to_fn, to_inst}. */
static __always_inline void fan_rec_deliver(__u16 fn, __u16 inst, const struct spry_desc *d,
					    __u16 to_fn, __u16 to_inst)
{
	struct spry_fan_rec *rec;
	struct spry_fan_key k;

	fan_key(&k, fn, inst, d);
	rec = bpf_map_lookup_elem(&SPRY_MAP_FANREC, &k);
	if (rec) {
		rec->fn = to_fn;
		rec->inst = to_inst;
	}
}

/*
 * The branch @d of caller {fn, inst} ends, answered by callee {by_fn,
 * by_inst}: true when that callee held it and this is its one answer.
 */
static __always_inline bool fan_rec_end(__u16 fn, __u16 inst, const struct spry_desc *d,
					__u16 by_fn, __u16 by_inst)
{
	struct spry_fan_rec *rec;
	struct spry_fan_key k;

	fan_key(&k, fn, inst, d);
	rec = bpf_map_lookup_elem(&SPRY_MAP_FANREC, &k);
	if (!rec || rec->fn != by_fn || rec->inst != by_inst)
		return false;
	return !bpf_map_delete_elem(&SPRY_MAP_FANREC, &k);
}

/* A branch taken and then bounced back to caller {fn, inst}: undone. */
static __always_inline void fan_cancel(__u16 fn, __u16 inst, const struct spry_desc *d)
{
	struct spry_fan_key k;

	fan_key(&k, fn, inst, d);
	bpf_map_delete_elem(&SPRY_MAP_FANREC, &k);
	fan_give(fn, inst);
}

/* Turn a branch into its refusal, back to its caller {fn, inst}. */
static __always_inline void fan_bounce(struct spry_desc *d, struct route *r,
				       __u16 fn, __u16 inst, __u8 status, __u32 v)
{
	d->flags = SPRY_DF_REPLY | SPRY_DF_FAN;
	d->status = status;
	r->fan = FAN_BOUNCE;
	r->verdict = v;
	r->to = TO_INST;
	r->fn = fn;
	r->inst = inst;
}

/* ---- end of workflows ---- */

/*
 * The buffer a descriptor names must lie inside the chain's pool:
 * [off, off + max(cap, meta_len + len)) within [0, pool_size).  meta_len and
 * len are 32-bit, so their sum cannot overflow in 64 bits, and comparing
 * against pool_size - off (off < pool_size checked first) cannot overflow
 * either, whatever off is (UINT64_MAX included).  The maximum is checked
 * as both of its operands, so every failed test just returns (a join
 * after a max() would double the verifier's paths in run_scan()'s loop).
 */
static __always_inline bool in_pool(const struct spry_desc *d, __u64 pool_size)
{
	__u64 room;

	if (d->off >= pool_size)
		return false;
	room = pool_size - d->off;
	return (__u64)d->meta_len + d->len <= room && d->cap <= room;
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
	count_verdict(v, 1);
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

/* So spryd knows which requests a dead instance held. */
static __always_inline void reqloc_set(const struct spry_desc *d, __u16 fn,
				       __u16 inst)
{
	__u32 slot = d->req_id & (SPRY_REQ_SLOTS - 1);
	struct spry_reqloc *loc = bpf_map_lookup_elem(&SPRY_MAP_REQLOC, &slot);

	if (loc) {
		loc->req_id = d->req_id;
		loc->fn = fn;
		loc->inst = inst;
		loc->hop = d->hop;
		/*
		 * An app's handler (app_next()): a plain delivery names it in
		 * fn (spryd's front, or a checked next); a call leaves it to
		 * the caller, flagged while the callee holds the request, and
		 * the reply gives it back.
		 */
		if (d->flags & SPRY_DF_CALL)
			loc->handler |= SPRY_RL_CALLEE;
		else if (d->flags & SPRY_DF_REPLY)
			loc->handler &= ~SPRY_RL_CALLEE;
		else
			loc->handler = d->fn < SPRY_RL_CALLEE ? d->fn : 0;
	}
}

/*
 * A descriptor was redirected into instance {fn, inst}; a branch's answer
 * (@fan FAN_REPLY, FAN_BOUNCE) is not counted in its caller's in-flight.
 */
static __always_inline void delivered(struct spry_desc *d, __u16 fn, __u16 inst,
				      __u32 fan)
{
	struct spry_inst_state *st = inst_state(fn, inst);
	struct spry_fn_stats *fs = fn_stats(fn);

	d->inst = inst;
	if (fan == FAN_CALL)
		fan_rec_deliver(d->ret_fn, d->ret_inst, d, fn, inst);
	if (st && fan != FAN_REPLY && fan != FAN_BOUNCE)
		__sync_fetch_and_add(&st->inflight, 1);
	if (fs)
		__sync_fetch_and_add(&fs->delivered, 1);
	/* a branch leaves the request where it is: with its caller */
	if (fan == FAN_NONE)
		reqloc_set(d, fn, inst);
}

/*
 * An instance as one scalar, the key of spry_inst (fn * SPRY_MAX_INST +
 * inst), for run_extend()'s arguments; INST_KEY_NONE for none.
 */
#define INST_KEY_NONE	0xffffffffu

static __always_inline __u32 inst_key(__u16 fn, __u16 inst)
{
	if (fn >= SPRY_MAX_FNS || inst >= SPRY_MAX_INST)
		return INST_KEY_NONE;
	return (__u32)fn * SPRY_MAX_INST + inst;
}

static __always_inline struct spry_inst_state *inst_state_key(__u32 key)
{
	return key == INST_KEY_NONE ? NULL : bpf_map_lookup_elem(&SPRY_MAP_INST, &key);
}

/*
 * Extend the run of the first descriptor @d (at msg->data, in linear data
 * ending at @data_end) over the descriptors right behind it that the
 * single path would send the same way, at most @max in all; returns the
 * run's length.  They must match @d where the decision depends on them:
 * version, no flags, chain, status OK, inside the chain's pool (@pool_size),
 * the hop it was sent at (function senders), and for RUN_DONE its origin.
 * Each one that joins gets what @d got from routing (hop, origin, inst,
 * its reqloc slot, target fn @to_fn).  @kind is a constant at every call:
 * each kind gets its own copy of the loop without branches on it, which
 * keeps the verifier to one path per loop iteration.
 */
static __always_inline __u32 run_scan(struct spry_desc *d, void *data_end,
				      __u32 kind, __u32 to_fn, __u64 pool_size,
				      __s64 max)
{
	/* route_fn() moved the first one's hop on; the others still have it. */
	__u8 sent_hop = kind == RUN_FN ? d->hop - 1 : d->hop;
	struct spry_desc *e;
	__u32 k;

#pragma clang loop unroll(disable)
	for (k = 1; k < SPRY_RUN_MAX; k++) {
		e = (void *)d + k * DESC_SIZE;
		if ((void *)(e + 1) > data_end || k >= max)
			break;
		/* No flags: calls, replies and sticky keys are routed alone. */
		if (e->version != SPRY_DESC_VERSION || e->flags ||
		    e->chain != d->chain || e->status != SPRY_ST_OK ||
		    !in_pool(e, pool_size))
			break;
		if (kind == RUN_ORIGIN) {
			/* As route_origin(): the request is this origin's. */
			e->origin = d->origin;
		} else if (e->hop != sent_hop) {
			/* Same hop, same hand-off: authorized with the first. */
			break;
		}
		if (kind == RUN_DONE) {
			/* One redirect: to the first one's origin. */
			if (e->origin != d->origin)
				break;
			e->inst = d->inst;	/* the sender, as for the first */
			continue;
		}
		e->hop = d->hop;
		e->inst = d->inst;
		reqloc_set(e, to_fn, d->inst);
	}
	return k;
}

/*
 * The first descriptor was routed alone with every check (a plain FORWARD
 * or DONE, @kind), rewritten and redirected: extend its run (run_scan())
 * and carry it out.  At most SPRY_RUN_MAX in all, and a function (instance
 * key @from) may not send more than it has in flight: where a run would
 * cross that, it ends and the next program run drops (the flood bound).
 * The descriptors that joined are counted as the first was (verdict,
 * sender's sent and in-flight, target's delivered and in-flight: instance
 * key @to of fn @to_fn), then one bpf_msg_apply_bytes() covers the run,
 * replacing the 64 set first, so the redirect already made takes it all.
 * The first descriptor that did not join is judged by the program's next
 * run on its own.  Returns the run's length.
 *
 * A global function, verified once on its own with scalar arguments: the
 * loops are walked once, not once for every way the caller reaches them.
 */
__noinline __u32 run_extend(struct sk_msg_md *msg, __u32 kind, __u32 to_fn,
			    __u32 to, __u32 from)
{
	void *data = (void *)(long)msg->data;
	void *data_end = (void *)(long)msg->data_end;
	struct spry_desc *d = data;
	struct spry_inst_state *st;
	struct spry_fn_stats *fs;
	struct spry_chain *c;
	__s64 max = SPRY_RUN_MAX;
	__u32 n, cid, rest;

	/*
	 * msg->data is the first descriptor (see desc_get()); if it had to
	 * be pulled, data_end is right behind it and the run is just it.  A
	 * message of one descriptor (every send at concurrency 1) ends here,
	 * before any lookup.
	 */
	if (data + 2 * DESC_SIZE > data_end)
		return 1;
	cid = d->chain;
	c = bpf_map_lookup_elem(&SPRY_MAP_CHAINS, &cid);
	if (!c)
		return 1;
	if (kind != RUN_ORIGIN) {
		/* What it still holds after the first, plus the first. */
		st = inst_state_key(from);
		if (!st)
			return 1;
		max = (__s64)st->inflight + 1;
	}
	if (kind == RUN_ORIGIN)
		n = run_scan(d, data_end, RUN_ORIGIN, to_fn, c->pool_size, max);
	else if (kind == RUN_FN)
		n = run_scan(d, data_end, RUN_FN, to_fn, c->pool_size, max);
	else if (kind == RUN_DONE)
		n = run_scan(d, data_end, RUN_DONE, to_fn, c->pool_size, max);
	else
		n = 1;
	if (n <= 1)
		return 1;

	rest = n - 1;
	count_verdict(kind == RUN_DONE ? SPRY_V_DONE : SPRY_V_FORWARD, rest);
	if (kind != RUN_ORIGIN) {
		st = inst_state_key(from);
		if (st)
			__sync_fetch_and_sub(&st->inflight, rest);
		fs = fn_stats(from / SPRY_MAX_INST);
		if (fs)
			__sync_fetch_and_add(&fs->sent, rest);
	}
	st = inst_state_key(to);
	if (st)
		__sync_fetch_and_add(&st->inflight, rest);
	fs = fn_stats(to_fn);
	if (fs)
		__sync_fetch_and_add(&fs->delivered, rest);
	bpf_msg_apply_bytes(msg, n * DESC_SIZE);
	return n;
}

/* The run kind of a routed descriptor: RUN_NONE if it goes alone. */
static __always_inline __u32 run_kind(const struct spry_sender *s,
				      const struct spry_desc *d, __u32 verdict)
{
	/* A sticky key's instance is the key's choice, not the run's. */
	if (d->flags)
		return RUN_NONE;
	if (verdict == SPRY_V_DONE)
		return RUN_DONE;
	if (verdict != SPRY_V_FORWARD)
		return RUN_NONE;
	return s->role == SPRY_ROLE_ORIGIN ? RUN_ORIGIN : RUN_FN;
}

/*
 * Carry out a routing decision that is not a drop.  A function sender
 * has handed the descriptor on, whatever happens next: its in-flight count
 * goes down.  A target without a live instance (or a gone caller) turns
 * the decision into NO_INSTANCE (NO_CALLER) to the origin; an origin that
 * is gone too leaves the bytes to the sending socket's TCP peer, which is
 * spryd's (FALLBACK).  Once a plain FORWARD's or DONE's redirect took,
 * run_extend() lets the descriptors behind it follow in the same redirect.
 */
static __always_inline int deliver(struct sk_msg_md *msg, const struct spry_sender *s,
				   struct spry_desc *d, struct route *r)
{
	struct spry_inst_key okey = { .fn = SPRY_FN_ORIGIN };
	__u32 kind, from = INST_KEY_NONE;
	struct spry_inst_state *st;
	struct spry_fn_stats *fs;
	__u16 inst;

	if (s->role == SPRY_ROLE_FN) {
		from = inst_key(s->fn, s->inst);
		st = inst_state(s->fn, s->inst);
		if (st) {
			/* A fan-out branch out: the caller still holds its request. */
			if (r->fan != FAN_CALL && r->fan != FAN_BOUNCE)
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
			delivered(d, r->fn, inst, r->fan);
			count_verdict(r->verdict, 1);
			kind = run_kind(s, d, r->verdict);
			if (kind != RUN_NONE)
				run_extend(msg, kind, r->fn, inst_key(r->fn, inst), from);
			return SK_PASS;
		}
		r->verdict = SPRY_V_NO_INSTANCE;
		d->status = SPRY_ST_NO_INSTANCE;
		/* A branch without a callee fails alone: back to its caller. */
		if (r->fan == FAN_CALL) {
			fan_cancel(s->fn, s->inst, d);
			fan_bounce(d, r, s->fn, s->inst, SPRY_ST_NO_INSTANCE,
				   SPRY_V_NO_INSTANCE);
		}
	}
	if (r->to == TO_INST) {
		struct spry_inst_key key = { .fn = r->fn, .inst = r->inst };

		if (bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &key,
					  BPF_F_INGRESS) == SK_PASS) {
			delivered(d, r->fn, r->inst, r->fan);
			count_verdict(r->verdict, 1);
			return SK_PASS;
		}
		/* A branch to a process whose socket just closed: to its caller. */
		if (r->fan == FAN_CALL) {
			fan_cancel(s->fn, s->inst, d);
			fan_bounce(d, r, s->fn, s->inst, SPRY_ST_NO_PROCESS,
				   SPRY_V_NO_PROCESS);
			key.fn = r->fn;
			key.inst = r->inst;
			if (bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &key,
						  BPF_F_INGRESS) == SK_PASS) {
				delivered(d, r->fn, r->inst, r->fan);
				count_verdict(r->verdict, 1);
				return SK_PASS;
			}
		}
		/*
		 * A named process whose socket just closed (spryd has not yet
		 * seen it die) is as absent as one not in spry_procs; a reply's
		 * caller is gone.  Either way back to the origin, to no one else.
		 */
		if (s->role == SPRY_ROLE_ORIGIN) {
			r->verdict = SPRY_V_NO_PROCESS;
			d->status = SPRY_ST_NO_PROCESS;
		} else {
			r->verdict = SPRY_V_NO_CALLER;
			d->status = SPRY_ST_NO_CALLER;
		}
	}

	/* Back at the origin, inst says who sent it (an app's answer names its process). */
	if (s->role == SPRY_ROLE_FN)
		d->inst = s->inst;
	okey.inst = d->origin;
	if (bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &okey, BPF_F_INGRESS) ==
	    SK_PASS) {
		fs = fn_stats(SPRY_FN_ORIGIN);
		if (fs)
			__sync_fetch_and_add(&fs->delivered, 1);
		count_verdict(r->verdict, 1);
		/* Only a DONE has a run here (a failed FORWARD is alone). */
		if (run_kind(s, d, r->verdict) == RUN_DONE)
			run_extend(msg, RUN_DONE, SPRY_FN_ORIGIN, INST_KEY_NONE, from);
		return SK_PASS;
	}
	/* No redirect set: SK_PASS sends the bytes on the socket's own TCP. */
	count_verdict(SPRY_V_FALLBACK, 1);
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

/*
 * A request naming a process of an app (docs/PROCESS.md): to that
 * process's instance of the app's function @fn and to no other.  Not in
 * spry_procs (unknown, deleted) or not active (allocated, swapped,
 * starting): back to the origin with SPRY_ST_NO_PROCESS, where spryd wakes
 * it or answers 404.  One hash lookup; no instance choice.
 */
static __always_inline __u32 route_process(struct spry_desc *d, struct route *r,
					   __u32 cid, __u16 fn)
{
	struct spry_proc_key key = { .chain = cid, .id = d->key };
	struct spry_proc *p;

	p = bpf_map_lookup_elem(&SPRY_MAP_PROCS, &key);
	if (!p || !(p->flags & SPRY_PF_ACTIVE) || p->inst >= SPRY_MAX_INST) {
		d->status = SPRY_ST_NO_PROCESS;
		return to_origin(r, SPRY_V_NO_PROCESS);
	}
	r->verdict = SPRY_V_FORWARD;
	r->to = TO_INST;
	r->fn = fn;
	r->inst = p->inst;
	return SPRY_V_FORWARD;
}

/* The origin (spryd) starts a request: to an instance of hops[0]. */
static __always_inline __u32 route_origin(const struct spry_sender *s,
					  struct spry_desc *d, struct route *r)
{
	struct spry_chain *c;
	__u32 cid = d->chain;
	__u16 first;

	/* Origins start plain requests; calls and replies are functions'. */
	if (d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_NEXT | SPRY_DF_FAN))
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
	if ((c->flags & SPRY_CF_APP) && (d->flags & SPRY_DF_STICKY))
		return route_process(d, r, cid, first);
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
	 * with each other; deliveries only raise the count.  A run is held
	 * to this count too (run_extend()): where it would cross it, it ends
	 * and the next program run drops here.
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

	/*
	 * A failed request goes straight back to its origin; a failed
	 * fan-out branch to its caller (which reports it per branch).
	 */
	if (d->status != SPRY_ST_OK &&
	    (d->flags & (SPRY_DF_REPLY | SPRY_DF_FAN)) != (SPRY_DF_REPLY | SPRY_DF_FAN))
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
		if (d->flags & SPRY_DF_FAN) {
			if (!fan_take(s->fn, s->inst)) {
				fan_bounce(d, r, s->fn, s->inst, SPRY_ST_FAN_LIMIT,
					   SPRY_V_FAN_REFUSED);
				return SPRY_V_FAN_REFUSED;
			}
			/*
			 * Its record (a full table, or a tag already out, is
			 * refused as the budget is).
			 */
			if (!fan_rec_add(s->fn, s->inst, d)) {
				fan_give(s->fn, s->inst);
				fan_bounce(d, r, s->fn, s->inst, SPRY_ST_FAN_LIMIT,
					   SPRY_V_FAN_REFUSED);
				return SPRY_V_FAN_REFUSED;
			}
			r->fan = FAN_CALL;
		}
		/*
		 * A call naming a process of this app (docs/WORKFLOWS.md): to
		 * that process and no other, as a request from the origin;
		 * not active: a branch comes back to its caller, a plain call
		 * ends at the origin, with NO_PROCESS.
		 */
		if ((c->flags & SPRY_CF_APP) && (d->flags & SPRY_DF_STICKY)) {
			route_process(d, r, cid, d->fn);
			if (r->to != TO_ORIGIN) {
				r->verdict = SPRY_V_CALL;
				return SPRY_V_CALL;
			}
			if (r->fan == FAN_CALL) {
				fan_cancel(s->fn, s->inst, d);
				fan_bounce(d, r, s->fn, s->inst, SPRY_ST_NO_PROCESS,
					   SPRY_V_NO_PROCESS);
			}
			return r->verdict;
		}
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
		/*
		 * A branch's answer only if its record names this sender as
		 * the callee holding it (a callee's word alone would leave the
		 * caller's in-flight count short); else it counts as a plain
		 * call's reply, and loses its FAN flag so that the caller never
		 * takes it for a branch's answer (a guessed tag would have it
		 * free another callee's call buffer still in use).
		 */
		if (d->flags & SPRY_DF_FAN) {
			if (fan_rec_end(d->ret_fn, d->ret_inst, d, s->fn, s->inst) &&
			    fan_give(d->ret_fn, d->ret_inst))
				r->fan = FAN_REPLY;
			else
				d->flags &= ~SPRY_DF_FAN;
		}
		return SPRY_V_REPLY;
	}

	/* A conditional next (docs/WORKFLOWS.md): one of the sender's set. */
	if (d->flags & SPRY_DF_NEXT) {
		int j;

		d->flags &= ~SPRY_DF_NEXT;
		/*
		 * Inside an app: from handler to handler of the same process
		 * (the sender, so the request keeps its process and state).
		 */
		if (c->flags & SPRY_CF_APP) {
			if (app_next(cid, d->req_id, s->fn, s->inst, d->fn)) {
				d->status = SPRY_ST_NEXT_REFUSED;
				return to_origin(r, SPRY_V_NEXT_REFUSED);
			}
			r->verdict = SPRY_V_NEXT;
			r->to = TO_INST;
			r->fn = s->fn;
			r->inst = s->inst;
			return SPRY_V_NEXT;
		}
		j = next_hop(cid, hop, d->fn, s->fn);
		if (j < 0 || j >= SPRY_MAX_HOPS) {
			d->status = SPRY_ST_NEXT_REFUSED;
			return to_origin(r, SPRY_V_NEXT_REFUSED);
		}
		d->hop = j;
		return to_fn(r, SPRY_V_NEXT, c->hops[j & (SPRY_MAX_HOPS - 1)]);
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

/* ------------------------------------------------------------ mailboxes */

/*
 * Mails between the processes of an app (docs/PROCESS.md, "Mailboxes"):
 * routed here, apart from requests, on their own counters in spry_inst
 * (never inflight, which the flood bound, the autoscaler and idle swaps
 * read).  The bounds, against a hostile process on either end:
 *
 *   - a sender has mail_out (mails delivered, not answered) + mail_unread
 *     (answers delivered since it last proved it read them) below
 *     SPRY_MAIL_OUT_MAX, else DROP_FLOOD.  The proof: each answer carries
 *     a random token, XORed into the sender's mail_tok; a mail that shows
 *     (in meta_len) the XOR of every answer delivered so far can only come
 *     from a sender that read them all (its socket is FIFO), and settles
 *     mail_unread.  So what waits unread in a sender's socket, mails it
 *     could still get answers for included, never passes the bound;
 *   - a receiver holds at most what senders may have out (32 instances
 *     of the app times SPRY_MAIL_OUT_MAX), and may answer only mails it
 *     was given (mail_in, and mail_from[] of the sender it names), else
 *     DROP_FLOOD: it cannot make answers up, nor send one to another
 *     instance than the mail's sender;
 *   - an answer names no buffer (the router zeroes it): the receiver
 *     keeps the mail's buffer, or freed it before answering.
 */

/* An answer reaches sender @st: its count moves to unread; the token. */
static __always_inline __u32 mail_answered(struct spry_inst_state *st)
{
	__u32 tok = bpf_get_prandom_u32() | 1;

	count_take(&st->mail_out);
	/* the token first: a proof read before it cannot cover this answer */
	__sync_fetch_and_xor(&st->mail_tok, tok);
	__sync_fetch_and_add(&st->mail_unread, 1);
	return tok;
}

static __always_inline int mail_redirect(struct sk_msg_md *msg, __u16 fn, __u16 inst)
{
	struct spry_inst_key key = { .fn = fn, .inst = inst };

	return bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &key, BPF_F_INGRESS);
}

/* An answer names no buffer. */
static __always_inline void mail_no_buffer(struct spry_desc *d)
{
	d->off = 0;
	d->cap = 0;
	d->len = 0;
	d->gen = 0;
}

/* A process @me (instance @inst of the app's function @fn) sends a mail. */
static __always_inline __u32 mail_send(struct sk_msg_md *msg, struct spry_desc *d,
				       struct spry_inst_state *me, __u16 fn, __u16 inst,
				       __u32 cid, __u64 pool_size)
{
	struct spry_proc_key key = { .chain = cid, .id = d->key };
	struct spry_inst_state *peer;
	struct spry_proc *p;
	__u32 unread;

	if (d->hop >= SPRY_MAIL_BOXES)
		return SPRY_V_DROP_HOP;
	/* in_pool() without meta_len: a mail's holds the sender's proof */
	if (d->off >= pool_size || d->len > d->cap || d->cap > pool_size - d->off)
		return SPRY_V_DROP_BOUNDS;
	/* The proof of reading (read unread before the token: see mail_answered). */
	unread = *(volatile __u32 *)&me->mail_unread;
	if (unread && d->meta_len == *(volatile __u32 *)&me->mail_tok)
		__sync_fetch_and_sub(&me->mail_unread, unread);
	if (me->mail_out + me->mail_unread >= SPRY_MAIL_OUT_MAX)
		return SPRY_V_DROP_FLOOD;
	__sync_fetch_and_add(&me->mail_out, 1);
	d->ret_fn = fn;
	d->ret_inst = inst;
	d->status = SPRY_ST_OK;

	p = bpf_map_lookup_elem(&SPRY_MAP_PROCS, &key);
	if (p && (p->flags & SPRY_PF_ACTIVE) && p->inst < SPRY_MAX_INST) {
		peer = inst_state(fn, p->inst);
		if (peer) {
			/* counted before the receiver can answer */
			__sync_fetch_and_add(&peer->mail_in, 1);
			__sync_fetch_and_add(&peer->mail_from[inst & (SPRY_MAX_INST - 1)], 1);
			if (mail_redirect(msg, fn, p->inst) == SK_PASS) {
				d->inst = p->inst;
				/* the receiver learns who sent it from the router */
				d->key = me->proc_id;
				count_verdict(SPRY_V_MAIL, 1);
				return SPRY_V_MAIL;
			}
			count_take(&peer->mail_from[inst & (SPRY_MAX_INST - 1)]);
			count_take(&peer->mail_in);
		}
	}
	/* Not active (swapped, deleted, another app's id, closing): back, as an answer. */
	d->flags = SPRY_DF_MAIL | SPRY_DF_REPLY;
	d->status = SPRY_ST_NO_PROCESS;
	d->inst = inst;
	if (mail_redirect(msg, fn, inst) == SK_PASS) {
		d->meta_len = mail_answered(me);
		count_verdict(SPRY_V_MAIL_BOUNCE, 1);
		return SPRY_V_MAIL_BOUNCE;
	}
	count_take(&me->mail_out);
	count_verdict(SPRY_V_FALLBACK, 1);
	return SPRY_V_FALLBACK;
}

/* Receiver @me (instance @inst) answers a mail of instance d->ret_inst. */
static __always_inline __u32 mail_answer(struct sk_msg_md *msg, struct spry_desc *d,
					 struct spry_inst_state *me, __u16 fn, __u16 inst)
{
	struct spry_inst_state *peer;
	__u16 to = d->ret_inst;

	if (to >= SPRY_MAX_INST)
		return SPRY_V_DROP_HOP;
	if (!count_take(&me->mail_in))
		return SPRY_V_DROP_FLOOD;
	mail_no_buffer(d);
	d->inst = inst;
	d->key = me->proc_id;
	if (count_take(&me->mail_from[to & (SPRY_MAX_INST - 1)])) {
		peer = inst_state(fn, to);
		if (peer && mail_redirect(msg, fn, to) == SK_PASS) {
			d->meta_len = mail_answered(peer);
			count_verdict(d->status == SPRY_ST_MAILBOX_FULL ? SPRY_V_MAIL_FULL :
				      SPRY_V_MAIL_ANSWER, 1);
			return SPRY_V_MAIL_ANSWER;
		}
	}
	/*
	 * Its sender is gone (spryd zeroed its column): on the socket's own
	 * TCP to spryd, which reads and counts it (flow-controlled).
	 */
	count_verdict(SPRY_V_MAIL_ORPHAN, 1);
	return SPRY_V_MAIL_ORPHAN;
}

/*
 * spryd answers for a receiver that died with mails unanswered (it read
 * the receiver's mail_from[] before clearing the slot): to the sender
 * d->ret_inst, as the receiver would have.
 */
static __always_inline __u32 mail_from_spryd(struct sk_msg_md *msg, struct spry_desc *d,
					     __u16 fn)
{
	struct spry_inst_state *peer;
	__u16 to = d->ret_inst;

	if (!(d->flags & SPRY_DF_REPLY) || to >= SPRY_MAX_INST)
		return SPRY_V_DROP_VERSION;
	mail_no_buffer(d);
	peer = inst_state(fn, to);
	if (peer && mail_redirect(msg, fn, to) == SK_PASS) {
		d->meta_len = mail_answered(peer);
		count_verdict(SPRY_V_MAIL_ANSWER, 1);
		return SPRY_V_MAIL_ANSWER;
	}
	count_verdict(SPRY_V_MAIL_ORPHAN, 1);
	return SPRY_V_MAIL_ORPHAN;
}

/*
 * spryd answers a branch whose callee died (spryd/fan.c): REPLY|FAN with
 * status CALLEE_GONE, the caller in ret_fn/ret_inst, the dead callee in
 * fn/inst, the branch's req_id and tag.  Taken only while the record says
 * that callee holds the branch (then deleted: the callee's own answer can
 * no longer come through as the branch's), which gives the caller its
 * budget back and wakes it with a failure for that branch.  Anything else
 * (answered meanwhile, a caller gone or registered again) goes back to
 * spryd, counted.  Never a drop: the sender is spryd.
 */
static __always_inline __u32 fan_from_spryd(struct sk_msg_md *msg, struct spry_desc *d)
{
	struct spry_inst_key key = { .fn = d->ret_fn, .inst = d->ret_inst };

	if (d->status == SPRY_ST_OK || d->ret_fn == SPRY_FN_ORIGIN ||
	    d->ret_fn >= SPRY_MAX_FNS || d->ret_inst >= SPRY_MAX_INST ||
	    !fan_rec_end(d->ret_fn, d->ret_inst, d, d->fn, d->inst))
		goto orphan;
	if (!fan_give(d->ret_fn, d->ret_inst))
		goto orphan;
	d->off = 0;
	d->cap = 0;
	d->len = 0;
	d->gen = 0;
	if (bpf_msg_redirect_hash(msg, &SPRY_MAP_SOCKS, &key, BPF_F_INGRESS) == SK_PASS) {
		count_verdict(SPRY_V_FAN_GONE, 1);
		return SPRY_V_FAN_GONE;
	}
orphan:
	/* no redirect: the bytes go on the origin socket's TCP, to spryd */
	count_verdict(SPRY_V_FAN_ORPHAN, 1);
	return SPRY_V_FAN_ORPHAN;
}

/*
 * A descriptor flagged SPRY_DF_MAIL: within one app (a chain flagged
 * SPRY_CF_APP; another chain's id is DROP_CHAIN, as for a forged hop),
 * from its function's instances, or from spryd.  Returns a drop verdict,
 * or the verdict carried out (redirect set, or none: the bytes go on the
 * socket's TCP to spryd).
 */
static __always_inline __u32 mail_route(struct sk_msg_md *msg, const struct spry_sender *s,
					struct spry_desc *d)
{
	struct spry_inst_state *me;
	struct spry_chain *c;
	__u32 cid = d->chain;
	__u16 fn;

	if (d->flags & ~(SPRY_DF_MAIL | SPRY_DF_REPLY))
		return SPRY_V_DROP_VERSION;
	if (cid == 0 || cid >= SPRY_MAX_CHAINS)
		return SPRY_V_DROP_CHAIN;
	if (s->role == SPRY_ROLE_FN && cid != s->chain)
		return SPRY_V_DROP_CHAIN;
	c = bpf_map_lookup_elem(&SPRY_MAP_CHAINS, &cid);
	if (!c || !(c->flags & SPRY_CF_APP) || c->n_hops < 1)
		return SPRY_V_DROP_CHAIN;
	fn = c->hops[0];
	if (s->role == SPRY_ROLE_ORIGIN)
		return mail_from_spryd(msg, d, fn);
	if (s->role != SPRY_ROLE_FN || s->fn != fn || s->inst >= SPRY_MAX_INST)
		return SPRY_V_DROP_HOP;
	me = inst_state(fn, s->inst);
	if (!me)
		return SPRY_V_DROP_SENDER;
	if (d->flags & SPRY_DF_REPLY)
		return mail_answer(msg, d, me, fn, s->inst);
	return mail_send(msg, d, me, fn, s->inst, cid, c->pool_size);
}

SEC("sk_msg")
int skmsg_route(struct sk_msg_md *msg)
{
	struct route r = {};
	struct spry_sender *s;
	struct spry_desc *d;
	__u32 v;

	/*
	 * This verdict covers one descriptor, even when a send() carries
	 * many; deliver() widens it to the descriptor's run.
	 */
	bpf_msg_apply_bytes(msg, DESC_SIZE);

	d = desc_get(msg);
	s = bpf_sk_storage_get(&SPRY_MAP_SENDERS, msg->sk, 0, 0);
	if (!d)
		v = SPRY_V_DROP_SHORT;
	else if (!s || (s->flags & SPRY_SF_QUARANTINED))
		/* Unregistered, or quarantined and yet re-inserted by someone. */
		v = SPRY_V_DROP_SENDER;
	else if (d->version != SPRY_DESC_VERSION || (d->flags & ~DF_ALL) ||
		 (d->flags & SPRY_DF_CALL && d->flags & SPRY_DF_REPLY) ||
		 /* a next is a plain send; a fan branch is a call or reply */
		 (d->flags & SPRY_DF_NEXT && d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY |
							 SPRY_DF_FAN)) ||
		 (d->flags & SPRY_DF_FAN && !(d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY))))
		v = SPRY_V_DROP_VERSION;
	else if (d->flags & SPRY_DF_MAIL) {
		/* carried out in mail_route() (its own counters, never inflight) */
		v = mail_route(msg, s, d);
		if (v < SPRY_V_FIRST_DROP)
			return SK_PASS;
	} else if (s->role == SPRY_ROLE_ORIGIN &&
		   d->flags == (SPRY_DF_REPLY | SPRY_DF_FAN)) {
		/* spryd answers for a dead callee (its own redirect) */
		fan_from_spryd(msg, d);
		return SK_PASS;
	} else if (s->role == SPRY_ROLE_ORIGIN)
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
