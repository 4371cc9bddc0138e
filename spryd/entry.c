// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's request-core room (spryd/entry.h): the in-flight table (req_id =
 * (seq << 16) | slot, slot < SPRY_REQ_SLOTS), the chain pools, admission
 * and the send queue, answers, deadlines, retries, and the requests a dead
 * instance held.  Every front starts requests with entry_prepare() (or
 * entry_adopt()) + entry_submit(); every answer goes back through the ops
 * of the request's owner, d->fronts[r->owner]->complete (front.h): this
 * room names no front.
 *
 * Pools: one per chain, made on the chain's first REGISTER or INVOKE from
 * its record: buf_size x n_bufs regular buffers plus a large class of
 * n_bufs/16 (at least 1) buffers of 16 x buf_size (capped at
 * SPRY_POOL_MAX_BUF; none when that is not larger), owned by the chain's
 * uid, file "<pool-dir>/spry-<chain>" (memfd of that name without a
 * hugetlbfs pool dir, or when the file already exists).  The pool's size is
 * written into the chain record (pool_size) for the router's bounds checks,
 * and re-written whenever spryd finds the record disagrees.
 *
 * If the chain record's name, uid or geometry changes while the pool has
 * requests or registered instances, spryd refuses new registrations and
 * requests for it (-ESTALE, logged once) until they are gone; then the old
 * pool is closed and a new one made.
 *
 * Deadlines: a request past its chain's deadline_ms gets RESULT -ETIMEDOUT.
 * If spry_reqloc shows it never reached a function, its buffers are
 * reclaimed at once; else it stays a zombie (counted in the chain's
 * in-flight bound) until its descriptor comes back or its instance dies,
 * and at most SPRYD_ZOMBIE_TTL_NS, after which its buffers are reclaimed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "spryd/entry.h"
#include "spryd/spryd.h"

#define SLOT_MASK	(SPRY_REQ_SLOTS - 1)
/* spry_inst's mapping: the values back to back (24 bytes, 8-aligned). */
#define INST_MEM_BYTES	((size_t)SPRY_MAX_FNS * SPRY_MAX_INST * \
			 sizeof(struct spry_inst_state))

static const char *backing_name(uint32_t b)
{
	switch (b) {
	case SPRY_POOL_HUGETLBFS:
		return "hugetlbfs file";
	case SPRY_POOL_MEMFD_HUGE:
		return "memfd (hugetlb)";
	case SPRY_POOL_MEMFD:
		return "memfd (4 KiB pages)";
	default:
		return "unknown";
	}
}

/* ------------------------------------------------------------ lists */

static struct spryd_list *req_list(struct spryd *d, struct spryd_req *r)
{
	struct spryd_chain *cs = &d->chains[r->chain];

	return r->list == RL_LIVE ? &cs->live : &cs->zombie;
}

static void list_add_tail(struct spryd *d, struct spryd_list *l, struct spryd_req *r,
			  uint8_t which)
{
	uint32_t slot = (uint32_t)(r - d->reqs);

	r->list = which;
	r->next = SPRYD_NIL;
	r->prev = l->tail;
	if (l->tail != SPRYD_NIL)
		d->reqs[l->tail].next = slot;
	else
		l->head = slot;
	l->tail = slot;
}

static void list_del(struct spryd *d, struct spryd_req *r)
{
	struct spryd_list *l;

	if (r->list == RL_NONE)
		return;
	l = req_list(d, r);
	if (r->prev != SPRYD_NIL)
		d->reqs[r->prev].next = r->next;
	else
		l->head = r->next;
	if (r->next != SPRYD_NIL)
		d->reqs[r->next].prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = SPRYD_NIL;
	r->list = RL_NONE;
}

/* ------------------------------------------------------- send queue */

static void sendq_compact(struct spryd *d)
{
	uint32_t i, n = d->sendq_len, out = 0;

	for (i = 0; i < n; i++) {
		uint64_t id = d->sendq[(d->sendq_head + i) & SLOT_MASK];
		struct spryd_req *r = &d->reqs[id & SLOT_MASK];

		if (r->req_id == id && r->state == REQ_QUEUED)
			d->sendq[(d->sendq_head + out++) & SLOT_MASK] = id;
	}
	d->sendq_len = out;
}

static void sendq_push(struct spryd *d, uint64_t id)
{
	if (d->sendq_len == SPRY_REQ_SLOTS)
		sendq_compact(d);
	d->sendq[(d->sendq_head + d->sendq_len) & SLOT_MASK] = id;
	d->sendq_len++;
}

bool entry_sendq_pop(struct spryd *d, struct spryd_req **out)
{
	while (d->sendq_len) {
		uint64_t id = d->sendq[d->sendq_head];
		struct spryd_req *r = &d->reqs[id & SLOT_MASK];

		d->sendq_head = (d->sendq_head + 1) & SLOT_MASK;
		d->sendq_len--;
		if (r->req_id == id && r->state == REQ_QUEUED) {
			*out = r;
			return true;
		}
	}
	return false;
}

struct spryd_req *entry_req(struct spryd *d, uint64_t req_id)
{
	struct spryd_req *r = &d->reqs[req_id & SLOT_MASK];

	return req_id && r->req_id == req_id ? r : NULL;
}

void entry_sendq_unpop(struct spryd *d, uint64_t req_id)
{
	/* from an engine's completion no pop made room just before */
	if (d->sendq_len == SPRY_REQ_SLOTS)
		sendq_compact(d);
	d->sendq_head = (d->sendq_head - 1) & SLOT_MASK;
	d->sendq[d->sendq_head] = req_id;
	d->sendq_len++;
}

/* ------------------------------------------------------------ pools */

/* The fronts' snapshot of spry_chains (entry_find_chain_cached). */
static struct spry_chain chain_cache[SPRY_MAX_CHAINS];
static uint64_t chain_cache_ns;

static int chain_write_pool_size(struct spryd *d, uint16_t id, const char *name,
				 uint64_t size)
{
	struct spry_chain cur;
	__u32 key = id;
	int lock, err;

	lock = spry_pin_lock(d->pin_dir, LOCK_EX);
	if (lock < 0)
		return lock;
	err = spry_chain__get(&d->maps, id, &cur);
	if (err)
		goto out;
	if (strncmp(cur.name, name, SPRY_NAME_LEN)) {
		err = -ENOENT;
		goto out;
	}
	if (cur.pool_size != size) {
		cur.pool_size = size;
		if (bpf_map_update_elem(d->maps.chains, &key, &cur, BPF_ANY))
			err = -errno;
	}
	if (!err && !strncmp(chain_cache[id].name, name, SPRY_NAME_LEN))
		chain_cache[id].pool_size = size;
out:
	spry_pin_unlock(lock);
	return err;
}

static void pool_retire(struct spryd *d, struct spryd_chain *cs)
{
	if (!cs->pool)
		return;
	spry_pool_unlink(cs->pool);
	spry_pool_close(cs->pool);
	cs->pool = NULL;
	cs->known = false;
	cs->pool_size = 0;
	(void)d;
}

int entry_chain_pool(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		     struct spryd_chain **out)
{
	struct spryd_chain *cs = &d->chains[id];
	struct spry_pool_opts opts = {};
	struct spry_pool_stats pst;
	uint32_t buf = rec->buf_size ? rec->buf_size : SPRY_DEF_BUF_SIZE;
	uint32_t nb = rec->n_bufs ? rec->n_bufs : SPRY_DEF_N_BUFS;
	char name[SPRY_NAME_LEN];
	char fname[SPRY_NAME_LEN + 8];
	char path[PATH_MAX];
	uint64_t large;
	int err;

	if (!id || id >= SPRY_MAX_CHAINS)
		return -ENOENT;
	memcpy(name, rec->name, SPRY_NAME_LEN);
	name[SPRY_NAME_LEN - 1] = '\0';
	if (cs->pool) {
		if (!strcmp(cs->name, name) && cs->uid == rec->uid &&
		    cs->buf_size == buf && cs->n_bufs == nb) {
			if (rec->pool_size != cs->pool_size) {
				err = chain_write_pool_size(d, id, name, cs->pool_size);
				if (err)
					return err;
			}
			*out = cs;
			return 0;
		}
		if (cs->inflight || cs->n_inst || cs->held) {
			if (!cs->stale_logged)
				spryd_log("chain %u (%s -> %s) changed name, user or pool geometry "
					  "while its pool is in use (%u requests, %u instances): "
					  "refusing it until they are gone",
					  id, cs->name, name, cs->inflight, cs->n_inst);
			cs->stale_logged = true;
			return -ESTALE;
		}
		spryd_log("chain %u: pool of %s retired (chain record changed)", id, cs->name);
		pool_retire(d, cs);
	}
	opts.buf_size = buf;
	opts.n_bufs = nb;
	large = (uint64_t)buf * 16;
	if (large > SPRY_POOL_MAX_BUF)
		large = SPRY_POOL_MAX_BUF;
	if (large > buf) {
		opts.large_size = (uint32_t)large;
		opts.n_large = nb / 16 ? nb / 16 : 1;
	}
	opts.uid = rec->uid;
	opts.gid = (gid_t)-1;
	opts.n_reserved = cs->n_reserved;	/* a front's run (the AF_XDP UMEM) */
	snprintf(fname, sizeof(fname), "spry-%s", name);
	cs->pool = spry_pool_create(d->pool_dir, fname, &opts);
	if (!cs->pool && errno == EEXIST && d->pool_dir) {
		/*
		 * Left by an earlier spryd of this pin directory that was
		 * killed: registrar_init() made sure none is alive, and a pool
		 * directory belongs to one pin directory (docs/SECURITY.md).
		 * Its instances re-register and map the new pool; mappings of
		 * the old one stay valid until they are dropped.
		 */
		snprintf(path, sizeof(path), "%s/%s", d->pool_dir, fname);
		if (!unlink(path)) {
			spryd_log("removed stale pool file %s (left by an earlier spryd)", path);
			cs->pool = spry_pool_create(d->pool_dir, fname, &opts);
		}
		if (!cs->pool) {
			spryd_log("pool file %s: %s: using a memfd", path, strerror(errno));
			cs->pool = spry_pool_create(NULL, fname, &opts);
		}
	}
	if (!cs->pool) {
		err = -errno;
		spryd_log("chain %s: pool of %u x %u bytes: %s", name, nb, buf, strerror(-err));
		return err ? err : -ENOMEM;
	}
	memcpy(cs->name, name, SPRY_NAME_LEN);
	cs->uid = rec->uid;
	cs->buf_size = buf;
	cs->n_bufs = nb;
	cs->pool_size = spry_pool_size(cs->pool);
	cs->known = true;
	cs->stale_logged = false;
	err = chain_write_pool_size(d, id, name, cs->pool_size);
	if (err) {
		spryd_log("chain %s: writing pool_size: %s", name, strerror(-err));
		pool_retire(d, cs);
		return err;
	}
	memset(&pst, 0, sizeof(pst));
	spry_pool_stats(cs->pool, &pst);
	spryd_log("pool for chain %s (id %u): %s, %llu bytes, %u x %u + %u x %u bytes, uid %u",
		  name, id, backing_name(pst.backing), (unsigned long long)cs->pool_size,
		  nb, buf, opts.n_large, opts.large_size, rec->uid);
	*out = cs;
	return 0;
}

/* ------------------------------------------------------- requests */

/* @r no longer waits for a process (process.c). */
static void proc_unwait(struct spryd *d, struct spryd_chain *cs, struct spryd_req *r)
{
	if (!r->proc_wait)
		return;
	r->proc_wait = 0;
	if (cs->n_proc_wait)
		cs->n_proc_wait--;
	if (d->n_proc_wait)
		d->n_proc_wait--;
}

/* Hold @r (its buffer as sent) for an app's process: process.c decides. */
static void proc_hold(struct spryd *d, struct spryd_chain *cs, struct spryd_req *r)
{
	r->state = REQ_HELD;
	if (!r->proc_wait) {
		r->proc_wait = 1;
		cs->n_proc_wait++;
		d->n_proc_wait++;
	}
}

static void release(struct spryd *d, struct spryd_req *r)
{
	struct spryd_chain *cs = &d->chains[r->chain];
	uint32_t slot = (uint32_t)(r - d->reqs);

	list_del(d, r);
	if (r->hold && cs->n_held)
		cs->n_held--;
	r->hold = 0;
	proc_unwait(d, cs, r);
	if (r->copy.cap) {
		spry_pool_free(cs->pool, r->copy.off, r->copy.gen);
		r->copy.cap = 0;
	}
	if (cs->inflight)
		cs->inflight--;
	r->req_id = 0;
	r->state = REQ_FREE;
	d->slot_free[d->n_slot_free++] = slot;
}

/*
 * A failed request's answer, to the front that started it (front.h):
 * @status is the descriptor's when one came back.
 */
static void answer_error(struct spryd *d, struct spryd_req *r, int err, uint32_t status)
{
	d->fronts[r->owner]->complete(d, r, err, status, NULL);
}

int entry_find_chain(struct spryd *d, const char *name, uint16_t *id,
		     struct spry_chain *rec)
{
	unsigned int i;
	int err;

	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		if (!d->chains[i].known || strcmp(d->chains[i].name, name))
			continue;
		if (!spry_chain__get(&d->maps, (uint16_t)i, rec) &&
		    !strncmp(rec->name, name, SPRY_NAME_LEN) &&
		    (rec->flags & SPRY_CF_ACTIVE)) {
			*id = (uint16_t)i;
			return 0;
		}
		break;
	}
	err = spry_chain__lookup(&d->maps, name, id, rec);
	if (err)
		return err;
	if (!(rec->flags & SPRY_CF_ACTIVE) || !*id || *id >= SPRY_MAX_CHAINS)
		return -ENOENT;
	return 0;
}

/*
 * How many of the chain's first hops are idempotent functions
 * (SPRY_FF_IDEMPOTENT in spry_fns), read again after a second.
 */
static uint8_t chain_idem_hops(struct spryd *d, struct spryd_chain *cs,
			       const struct spry_chain *rec)
{
	uint64_t now = spryd_now_ns();
	struct spry_fn f;
	uint8_t n = 0;

	if (cs->idem_ns && now - cs->idem_ns < SPRYD_IDEM_AGE_NS)
		return cs->idem_hops;
	while (n < rec->n_hops && n < SPRY_MAX_HOPS &&
	       !spry_fn__get(&d->maps, rec->hops[n], &f) &&
	       (f.flags & SPRY_FF_IDEMPOTENT) && f.chain == (uint16_t)(cs - d->chains))
		n++;
	cs->idem_hops = n;
	cs->idem_ns = now;
	return n;
}

/*
 * Admission of a new request on chain @cs: the chain's in-flight bound and
 * a free slot.  The request id the next req_start() will use goes to
 * @req_id (its low 16 bits are the slot).
 */
static int req_admit(struct spryd *d, const struct spryd_chain *cs,
		     const struct spry_chain *rec, uint64_t *req_id)
{
	uint32_t max_inflight = rec->max_inflight ? rec->max_inflight : SPRY_DEF_MAX_INFLIGHT;

	if (cs->inflight >= max_inflight || !d->n_slot_free)
		return -EBUSY;
	*req_id = (d->seq << 16) | d->slot_free[d->n_slot_free - 1];
	return 0;
}

/* Take the slot req_admit() chose and start the request on @buf. */
static struct spryd_req *req_start(struct spryd *d, uint16_t id,
				   const struct spry_chain *rec, uint64_t req_id,
				   const struct spry_buf *buf, uint8_t owner,
				   uint32_t conn, uint32_t gen)
{
	struct spryd_req *r = &d->reqs[req_id & SLOT_MASK];

	d->seq++;
	d->n_slot_free--;
	memset(r, 0, sizeof(*r));
	r->prev = r->next = SPRYD_NIL;
	r->req_id = req_id;
	r->deadline = rec->deadline_ms ? rec->deadline_ms : SPRY_DEF_DEADLINE_MS;
	r->conn = conn;
	r->conn_gen = gen;
	r->owner = owner;
	r->chain = id;
	r->state = REQ_PREP;
	r->desc.off = buf->off;
	r->desc.cap = buf->cap;
	r->desc.gen = buf->gen;
	d->chains[id].inflight++;
	return r;
}

/* ------------------------------------------------------- activation */

bool entry_chain_ready(const struct spryd *d, const struct spryd_chain *cs)
{
	uint32_t i;

	if (!d->fn_routable)
		return true;
	for (i = 0; i < cs->n_managed; i++)
		if (!d->fn_routable[cs->managed[i]])
			return false;
	return true;
}

static bool must_hold(const struct spryd *d, const struct spryd_chain *cs)
{
	return cs->n_managed && !entry_chain_ready(d, cs);
}

void entry_hold_release(struct spryd *d, uint16_t chain)
{
	struct spryd_chain *cs = &d->chains[chain];
	struct spryd_req *r;
	uint32_t i, n = 0;

	/* The live list is in arrival order: so is the send queue after. */
	for (i = cs->live.head; i != SPRYD_NIL && cs->n_held; i = r->next) {
		r = &d->reqs[i];
		if (r->state != REQ_HELD)
			continue;
		r->state = REQ_QUEUED;
		r->hold = 0;
		cs->n_held--;
		sendq_push(d, r->req_id);
		n++;
	}
	if (n) {
		spryd_trace("release %u %llu chain=%s", n, (unsigned long long)spryd_now_ns(),
			    cs->name);
		spryd_vlog(d, "chain %s: %u held requests released", cs->name, n);
	}
}

uint32_t entry_hold_fail(struct spryd *d, uint16_t chain, int err)
{
	struct spryd_chain *cs = &d->chains[chain];
	struct spryd_req *r;
	uint32_t i, next, n = 0;

	for (i = cs->live.head; i != SPRYD_NIL; i = next) {
		r = &d->reqs[i];
		next = r->next;
		if (r->state != REQ_HELD)
			continue;
		answer_error(d, r, err, 0);
		spry_pool_free(cs->pool, r->desc.off, r->desc.gen);
		release(d, r);
		cs->hold_failed++;
		n++;
	}
	return n;
}

/* ------------------------------------------------------- processes */

bool entry_proc_next(struct spryd *d, uint16_t chain, uint32_t *cursor, uint64_t *key)
{
	struct spryd_chain *cs = &d->chains[chain];
	struct spryd_req *r;
	uint32_t i;

	i = *cursor == SPRYD_NIL ? cs->live.head : d->reqs[*cursor].next;
	for (; i != SPRYD_NIL; i = r->next) {
		r = &d->reqs[i];
		if (r->state == REQ_HELD && r->proc_wait) {
			*cursor = i;
			*key = (r->desc.flags & SPRY_DF_STICKY) ? r->desc.key : 0;
			return true;
		}
	}
	return false;
}

/* Held for the process @key (0: any process). */
static bool proc_waits_for(const struct spryd_req *r, uint64_t key)
{
	if (r->state != REQ_HELD || !r->proc_wait)
		return false;
	if (r->desc.flags & SPRY_DF_STICKY)
		return r->desc.key == key;
	return !key;
}

uint32_t entry_proc_release(struct spryd *d, uint16_t chain, uint64_t key)
{
	struct spryd_chain *cs = &d->chains[chain];
	struct spryd_req *r;
	uint32_t i, n = 0;

	for (i = cs->live.head; i != SPRYD_NIL && cs->n_proc_wait; i = r->next) {
		r = &d->reqs[i];
		if (!proc_waits_for(r, key))
			continue;
		proc_unwait(d, cs, r);
		r->state = REQ_QUEUED;
		sendq_push(d, r->req_id);
		n++;
	}
	return n;
}

uint32_t entry_proc_fail(struct spryd *d, uint16_t chain, uint64_t key, int err)
{
	struct spryd_chain *cs = &d->chains[chain];
	struct spryd_req *r;
	uint32_t i, next, n = 0;

	for (i = cs->live.head; i != SPRYD_NIL && cs->n_proc_wait; i = next) {
		r = &d->reqs[i];
		next = r->next;
		if (!proc_waits_for(r, key))
			continue;
		answer_error(d, r, err, SPRY_ST_NO_PROCESS);
		spry_pool_free(cs->pool, r->desc.off, r->desc.gen);
		release(d, r);
		n++;
	}
	return n;
}

int entry_prepare(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		  uint32_t size, uint8_t owner, uint32_t conn, uint32_t gen,
		  struct spryd_req **out, void **ptr)
{
	struct spryd_chain *cs;
	struct spry_buf buf;
	uint64_t req_id;
	bool hold;
	void *p;
	int err;

	err = entry_chain_pool(d, id, rec, &cs);
	if (err)
		return err;
	err = req_admit(d, cs, rec, &req_id);
	if (err)
		return err;
	hold = must_hold(d, cs);
	if (hold && cs->n_held >= cs->hold_max) {
		cs->hold_refused++;
		return -EBUSY;	/* the activation queue is full: 503 */
	}
	err = spry_pool_alloc(cs->pool, size ? size : 1, req_id, &buf);
	if (err)
		return err;
	p = spry_pool_ptr(cs->pool, buf.off, buf.cap);
	if (!p) {
		spry_pool_free(cs->pool, buf.off, buf.gen);
		return -EFAULT;
	}
	*out = req_start(d, id, rec, req_id, &buf, owner, conn, gen);
	if (hold) {
		(*out)->hold = 1;	/* its place in the queue, from now */
		cs->n_held++;
	}
	chain_idem_hops(d, cs, rec);	/* for entry_submit() */
	*ptr = p;
	return 0;
}

int entry_adopt(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		const struct spry_buf *buf, uint64_t old_tag, uint8_t owner,
		uint32_t conn, uint32_t gen, struct spryd_req **out)
{
	struct spryd_chain *cs = &d->chains[id];
	uint64_t req_id;
	int err;

	if (!id || id >= SPRY_MAX_CHAINS || !cs->pool)
		return -ESTALE;
	err = req_admit(d, cs, rec, &req_id);
	if (err)
		return err;
	err = spry_pool_retag(cs->pool, buf->off, buf->gen, old_tag, req_id);
	if (err)
		return err;
	*out = req_start(d, id, rec, req_id, buf, owner, conn, gen);
	return 0;
}

void entry_submit(struct spryd *d, struct spryd_req *r, uint32_t meta_len,
		  uint32_t len, uint8_t flags, uint64_t key)
{
	struct spryd_chain *cs = &d->chains[r->chain];

	r->t_start = spryd_now_ns();
	r->deadline = r->t_start + r->deadline * SPRYD_NS_PER_MS;
	r->state = REQ_QUEUED;
	r->desc.version = SPRY_DESC_VERSION;
	r->desc.hop = 0;
	r->desc.status = SPRY_ST_OK;
	r->desc.flags = flags;
	r->desc.chain = r->chain;
	r->desc.req_id = r->req_id;
	r->desc.len = len;
	r->desc.key = key;
	r->desc.meta_len = meta_len;
	r->desc.t_start = r->t_start;
	/*
	 * A chain whose first hops are idempotent keeps a copy of the input
	 * for one retry (see retry()): a second buffer, as small as the input
	 * allows.  None to spare: the request runs without the retry.
	 */
	if (cs->idem_hops && !spry_pool_alloc(cs->pool, meta_len + len ? meta_len + len : 1,
					      r->req_id | SPRYD_COPY_TAG, &r->copy)) {
		void *src = spry_pool_ptr(cs->pool, r->desc.off, (uint64_t)meta_len + len);
		void *dst = spry_pool_ptr(cs->pool, r->copy.off, r->copy.cap);

		if (src && dst && (uint64_t)meta_len + len <= r->copy.cap) {
			memcpy(dst, src, (size_t)meta_len + len);
		} else {
			spry_pool_free(cs->pool, r->copy.off, r->copy.gen);
			r->copy.cap = 0;
		}
	} else {
		r->copy.cap = 0;
	}
	list_add_tail(d, &cs->live, r, RL_LIVE);
	d->st.invoked++;
	/*
	 * An app's request naming no process while none is active waits for
	 * process.c to wake or create one.  One naming a process goes to the
	 * router, which alone knows whether it is active (never a lookup
	 * here): it comes back SPRY_ST_NO_PROCESS when not (entry_return()).
	 */
	if (cs->app && !(flags & SPRY_DF_STICKY) && d->fn_routable &&
	    !d->fn_routable[cs->app_fn]) {
		if (r->hold) {
			r->hold = 0;
			cs->n_held--;
		}
		proc_hold(d, cs, r);
		return;
	}
	if (must_hold(d, cs) && (r->hold || cs->n_held < cs->hold_max)) {
		/* Activation: sent once the functions have instances. */
		if (!r->hold)
			cs->n_held++;
		r->hold = 1;
		r->state = REQ_HELD;
		cs->held_total++;
		spryd_trace("hold %llu %llu chain=%s", (unsigned long long)r->req_id,
			    (unsigned long long)r->t_start, cs->name);
		return;
	}
	if (r->hold) {
		r->hold = 0;
		cs->n_held--;
	}
	sendq_push(d, r->req_id);
}

void entry_abort(struct spryd *d, struct spryd_req *r)
{
	if (r->state != REQ_PREP)
		return;
	spry_pool_free(d->chains[r->chain].pool, r->desc.off, r->desc.gen);
	release(d, r);
}

/* A snapshot of spry_chains for the fronts: no syscall per request. */
#define CHAIN_CACHE_MAX_AGE_NS	(1000ULL * SPRYD_NS_PER_MS)
#define CHAIN_CACHE_MISS_AGE_NS	(50ULL * SPRYD_NS_PER_MS)

static int chain_cache_read(struct spryd *d, uint64_t now)
{
	__u32 key;

	for (key = 1; key < SPRY_MAX_CHAINS; key++)
		if (bpf_map_lookup_elem(d->maps.chains, &key, &chain_cache[key]))
			return -errno;
	chain_cache_ns = now ? now : 1;
	return 0;
}

static int chain_cache_find(const char *name, uint16_t *id, struct spry_chain *rec)
{
	unsigned int i;

	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		if (!(chain_cache[i].flags & SPRY_CF_ACTIVE) ||
		    strncmp(chain_cache[i].name, name, SPRY_NAME_LEN))
			continue;
		*id = (uint16_t)i;
		*rec = chain_cache[i];
		rec->name[SPRY_NAME_LEN - 1] = '\0';
		return 0;
	}
	return -ENOENT;
}

int entry_find_chain_cached(struct spryd *d, const char *name, uint64_t now,
			    uint16_t *id, struct spry_chain *rec)
{
	int err;

	if (spry_name_check(name))
		return -ENOENT;
	if (!chain_cache_ns || now - chain_cache_ns > CHAIN_CACHE_MAX_AGE_NS) {
		err = chain_cache_read(d, now);
		if (err)
			return err;
	}
	if (!chain_cache_find(name, id, rec))
		return 0;
	if (now - chain_cache_ns <= CHAIN_CACHE_MISS_AGE_NS)
		return -ENOENT;
	err = chain_cache_read(d, now);
	if (err)
		return err;
	return chain_cache_find(name, id, rec);
}

/* Free the buffer a descriptor names; every buffer of the request if bad. */
static void free_desc_buffer(struct spryd *d, struct spryd_chain *cs,
			     const struct spry_desc *desc, uint64_t req_id)
{
	int err = spry_pool_free(cs->pool, desc->off, desc->gen);
	int n;

	if (!err)
		return;
	n = spry_pool_reclaim(cs->pool, req_id);
	spryd_vlog(d, "request %#llx: free of %#llx gen %u: %s; reclaimed %d buffers",
		   (unsigned long long)req_id, (unsigned long long)desc->off, desc->gen,
		   strerror(-err), n);
}

static void late_unknown(struct spryd *d, const struct spry_desc *desc)
{
	struct spryd_chain *cs;
	int err = -ENOENT;

	d->st.unknown++;
	if (desc->chain && desc->chain < SPRY_MAX_CHAINS) {
		cs = &d->chains[desc->chain];
		if (cs->pool)
			err = spry_pool_free(cs->pool, desc->off, desc->gen);
	}
	spryd_vlog(d, "unknown descriptor req %#llx chain %u status %u: buffer free %s",
		   (unsigned long long)desc->req_id, desc->chain, desc->status,
		   err ? strerror(-err) : "done");
}

static bool reqloc_at(struct spryd *d, struct spryd_req *r, struct spry_reqloc *loc);

/*
 * Activation's race: the router found no instance of a declared first hop
 * (the last one died before the registrar saw it).  No function ever had
 * the request (spry_reqloc), so its buffer is as sent: hold it again, in
 * its place, instead of answering 503.
 */
static bool rehold(struct spryd *d, struct spryd_chain *cs, struct spryd_req *r,
		   const struct spry_desc *desc)
{
	struct spry_reqloc loc;

	if (desc->status != SPRY_ST_NO_INSTANCE || !cs->n_managed || r->state != REQ_SENT ||
	    desc->off != r->desc.off || cs->n_held >= cs->hold_max || reqloc_at(d, r, &loc))
		return false;
	r->state = REQ_HELD;
	r->hold = 1;
	cs->n_held++;
	cs->held_total++;
	return true;
}

void entry_return(struct spryd *d, const struct spry_desc *desc)
{
	struct spryd_req *r = &d->reqs[desc->req_id & SLOT_MASK];
	struct spryd_chain *cs;
	uint64_t total;
	uint8_t *p;

	if (!desc->req_id || r->req_id != desc->req_id ||
	    (r->state != REQ_SENT && r->state != REQ_ZOMBIE)) {
		late_unknown(d, desc);
		return;
	}
	if (desc->chain != r->chain) {
		d->st.unknown++;
		spryd_vlog(d, "descriptor of request %#llx names chain %u, not %u: ignored",
			   (unsigned long long)desc->req_id, desc->chain, r->chain);
		return;
	}
	cs = &d->chains[r->chain];
	if (r->state == REQ_ZOMBIE) {
		free_desc_buffer(d, cs, desc, r->req_id);
		d->st.late++;
		spryd_vlog(d, "late descriptor of request %#llx: buffer freed",
			   (unsigned long long)r->req_id);
		release(d, r);
		return;
	}
	if (rehold(d, cs, r, desc))
		return;
	if (cs->app) {
		struct spry_reqloc loc;

		/*
		 * The named process is not active: hold the request as sent
		 * (no function had it) for process.c to wake the process, or
		 * to answer 404 when there is none.
		 */
		if (desc->status == SPRY_ST_NO_PROCESS && r->state == REQ_SENT &&
		    desc->off == r->desc.off && !reqloc_at(d, r, &loc)) {
			proc_hold(d, cs, r);
			return;
		}
		if (desc->inst < SPRY_MAX_INST && cs->app_fn)
			d->insts[(uint32_t)cs->app_fn * SPRY_MAX_INST + desc->inst].last_ns =
				spryd_now_ns();
	}
	total = (uint64_t)desc->meta_len + desc->len;
	p = desc->version == SPRY_DESC_VERSION ?
		spry_pool_ptr(cs->pool, desc->off, total) : NULL;
	if (!p) {
		spryd_log("request %#llx came back with a bad buffer (off %#llx len %u meta %u)",
			  (unsigned long long)r->req_id, (unsigned long long)desc->off,
			  desc->len, desc->meta_len);
		answer_error(d, r, -EBADMSG, desc->status);
		spry_pool_reclaim(cs->pool, r->req_id);
		release(d, r);
		return;
	}
	/* The one indirect call of a finished request: its front's answer. */
	if (!d->fronts[r->owner]->complete(d, r, 0, desc->status, desc))
		free_desc_buffer(d, cs, desc, r->req_id);
	d->st.completed++;
	release(d, r);
}

static bool reqloc_at(struct spryd *d, struct spryd_req *r, struct spry_reqloc *loc)
{
	__u32 key = (__u32)(r->req_id & SLOT_MASK);

	if (bpf_map_lookup_elem(d->maps.reqloc, &key, loc))
		return false;
	return loc->req_id == r->req_id;
}

void entry_send_failed(struct spryd *d, struct spryd_req *r)
{
	struct spry_reqloc loc;

	if (reqloc_at(d, r, &loc)) {
		if (r->state != REQ_ZOMBIE)
			r->state = REQ_SENT;	/* a function has it */
		return;
	}
	if (r->state == REQ_ZOMBIE) {
		/* answered at its deadline; no function ever had it */
		spry_pool_reclaim(d->chains[r->chain].pool, r->req_id);
		release(d, r);
		return;
	}
	answer_error(d, r, -EIO, 0);
	spry_pool_free(d->chains[r->chain].pool, r->desc.off, r->desc.gen);
	release(d, r);
}

/* One more retry of a request of @cs for function @fn (record @f). */
static void count_retry(struct spryd *d, const struct spryd_chain *cs, uint16_t fn,
			const struct spry_fn *f)
{
	struct spryd_retries *rt;

	if (!d->retries || fn >= SPRY_MAX_FNS)
		return;
	rt = &d->retries[fn];
	if (strncmp(rt->chain, cs->name, SPRY_NAME_LEN) ||
	    strncmp(rt->fn, f->name, SPRY_NAME_LEN)) {
		snprintf(rt->chain, sizeof(rt->chain), "%s", cs->name);
		memcpy(rt->fn, f->name, SPRY_NAME_LEN);
		rt->fn[SPRY_NAME_LEN - 1] = '\0';
		rt->n = 0;
	}
	rt->n++;
}

/*
 * The instance holding @r died at @loc->hop.  When every hop up to it is
 * idempotent (and so is the function that held it: a callee) and the
 * input was kept, resubmit the request from hop 0, once:
 * the buffers the dead instance had are reclaimed (it cannot write any
 * more), the copy becomes the request's buffer (retagged with its id), and
 * it goes back to the send queue with its deadline unchanged.  True when
 * it was resubmitted.
 */
static bool retry(struct spryd *d, struct spryd_chain *cs, struct spryd_req *r,
		  const struct spry_reqloc *loc)
{
	struct spry_fn f;
	int n;

	if (!r->copy.cap || r->retried || loc->hop >= cs->idem_hops)
		return false;
	/* a callee at that hop must be idempotent too */
	if (spry_fn__get(&d->maps, loc->fn, &f) || !(f.flags & SPRY_FF_IDEMPOTENT))
		return false;
	n = spry_pool_reclaim(cs->pool, r->req_id);
	if (spry_pool_retag(cs->pool, r->copy.off, r->copy.gen,
			    r->req_id | SPRYD_COPY_TAG, r->req_id))
		return false;	/* a damaged pool: fail the request instead */
	r->desc.off = r->copy.off;
	r->desc.cap = r->copy.cap;
	r->desc.gen = r->copy.gen;
	r->desc.hop = 0;
	r->desc.status = SPRY_ST_OK;
	r->copy.cap = 0;
	r->retried = 1;
	r->state = REQ_QUEUED;
	sendq_push(d, r->req_id);
	d->st.retried++;
	count_retry(d, cs, loc->fn, &f);
	spryd_log("request %#llx of chain %s: fn %u inst %u died holding it at hop %u "
		  "(idempotent): resubmitted from hop 0, %d buffers reclaimed",
		  (unsigned long long)r->req_id, cs->name, loc->fn, loc->inst, loc->hop, n);
	return true;
}

static void died_in_list(struct spryd *d, struct spryd_list *l, uint16_t fn,
			 uint16_t inst)
{
	struct spryd_chain *cs;
	struct spry_reqloc loc;
	struct spryd_req *r;
	uint32_t i, next;
	int n;

	for (i = l->head; i != SPRYD_NIL; i = next) {
		r = &d->reqs[i];
		next = r->next;
		if (r->state != REQ_SENT && r->state != REQ_ZOMBIE)
			continue;
		if (!reqloc_at(d, r, &loc) || loc.fn != fn || loc.inst != inst)
			continue;
		cs = &d->chains[r->chain];
		if (r->state == REQ_SENT && retry(d, cs, r, &loc))
			continue;
		if (r->state == REQ_SENT) {
			answer_error(d, r, -ECONNRESET, 0);
			d->st.reset++;
		}
		n = spry_pool_reclaim(cs->pool, r->req_id);
		spryd_vlog(d, "request %#llx (%s) lost with fn %u inst %u: %d buffers reclaimed",
			   (unsigned long long)r->req_id,
			   r->state == REQ_SENT ? "failed" : "timed out earlier", fn, inst, n);
		release(d, r);
	}
}

void entry_inst_died(struct spryd *d, uint16_t chain, uint16_t fn, uint16_t inst)
{
	struct spryd_chain *cs;

	if (!chain || chain >= SPRY_MAX_CHAINS)
		return;
	cs = &d->chains[chain];
	if (!cs->pool)
		return;
	died_in_list(d, &cs->live, fn, inst);
	died_in_list(d, &cs->zombie, fn, inst);
}

/*
 * A request's deadline expired while instance {fn, inst} held it: the
 * router prefers the function's other instances until this one hands a
 * descriptor on again (the router clears the flag then).  An atomic OR on
 * the mapping: the router updates the same entry concurrently.
 */
static void inst_mark_unhealthy(struct spryd *d, uint16_t fn, uint16_t inst)
{
	struct spry_inst_state *st;
	uint32_t old;

	if (!d->inst_mem || fn >= SPRY_MAX_FNS || inst >= SPRY_MAX_INST)
		return;
	st = &d->inst_mem[(uint32_t)fn * SPRY_MAX_INST + inst];
	old = __atomic_fetch_or(&st->flags, SPRY_IF_UNHEALTHY, __ATOMIC_SEQ_CST);
	if ((old & SPRY_IF_LIVE) && !(old & SPRY_IF_UNHEALTHY))
		spryd_log("fn %u inst %u missed a deadline: unhealthy", fn, inst);
}

static void timeout(struct spryd *d, struct spryd_chain *cs, struct spryd_req *r,
		    uint64_t now)
{
	struct spry_reqloc loc;

	answer_error(d, r, -ETIMEDOUT, 0);
	d->st.timed_out++;
	if (r->state == REQ_SENT && reqloc_at(d, r, &loc) && loc.fn != SPRY_FN_ORIGIN)
		inst_mark_unhealthy(d, loc.fn, loc.inst);
	if (r->state == REQ_QUEUED || r->state == REQ_HELD) {
		spry_pool_free(cs->pool, r->desc.off, r->desc.gen);
		release(d, r);
		return;
	}
	if (r->tx_origin) {
		/* Its send is still in the origin's engine: it may yet go. */
		spryd_vlog(d, "request %#llx timed out while being sent: kept until it returns",
			   (unsigned long long)r->req_id);
	} else if (!reqloc_at(d, r, &loc)) {
		/* No function ever had it: nothing can still write its buffers. */
		spry_pool_reclaim(cs->pool, r->req_id);
		release(d, r);
		return;
	} else {
		spryd_vlog(d, "request %#llx timed out at fn %u inst %u hop %u: kept until it returns",
			   (unsigned long long)r->req_id, loc.fn, loc.inst, loc.hop);
	}
	list_del(d, r);
	r->state = REQ_ZOMBIE;
	r->deadline = now + SPRYD_ZOMBIE_TTL_NS;
	list_add_tail(d, &cs->zombie, r, RL_ZOMBIE);
}

static void reap(struct spryd *d, struct spryd_chain *cs, struct spryd_req *r)
{
	int n;

	if (r->tx_origin) {
		/* its send is still in an engine: its buffers may yet be read */
		list_del(d, r);
		r->deadline = spryd_now_ns() + SPRYD_ZOMBIE_TTL_NS;
		list_add_tail(d, &cs->zombie, r, RL_ZOMBIE);
		return;
	}
	n = spry_pool_reclaim(cs->pool, r->req_id);

	d->st.reaped++;
	spryd_log("request %#llx of chain %s never came back: %d buffers reclaimed",
		  (unsigned long long)r->req_id, cs->name, n);
	release(d, r);
}

bool entry_timer(struct spryd *d, uint64_t now, uint64_t *next, bool drained)
{
	struct spryd_chain *cs;
	struct spryd_req *r;
	unsigned int i;

	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		while (cs->live.head != SPRYD_NIL) {
			r = &d->reqs[cs->live.head];
			if (r->deadline > now) {
				if (!*next || r->deadline < *next)
					*next = r->deadline;
				break;
			}
			if (!drained)
				return true;	/* answers already back beat the deadline */
			timeout(d, cs, r, now);
		}
		while (cs->zombie.head != SPRYD_NIL) {
			r = &d->reqs[cs->zombie.head];
			if (r->deadline > now) {
				if (!*next || r->deadline < *next)
					*next = r->deadline;
				break;
			}
			reap(d, cs, r);
		}
	}
	return false;
}

void entry_shutdown(struct spryd *d)
{
	uint32_t i;

	for (i = 0; i < SPRY_REQ_SLOTS; i++) {
		struct spryd_req *r = &d->reqs[i];

		if (r->state == REQ_QUEUED || r->state == REQ_SENT || r->state == REQ_HELD)
			answer_error(d, r, -ESHUTDOWN, 0);
		if (r->state == REQ_PREP || r->state == REQ_HELD)
			spry_pool_free(d->chains[r->chain].pool, r->desc.off, r->desc.gen);
		if (r->state != REQ_FREE)
			release(d, r);
	}
}

/*
 * spry_reqloc as an earlier spryd left it: its entries name request ids
 * this spryd hands out again (seq starts at 1), so a request that never
 * reached a function would look as if one had it (a NO_PROCESS answer of
 * a process after a restart would not be held).  Zeroed, in one call when
 * the kernel has batch updates.
 */
static void reqloc_reset(struct spryd *d)
{
	struct spry_reqloc *zero = calloc(SPRY_REQ_SLOTS, sizeof(*zero));
	__u32 *keys = calloc(SPRY_REQ_SLOTS, sizeof(*keys));
	__u32 i, n = SPRY_REQ_SLOTS;

	if (d->maps.reqloc < 0 || !zero || !keys)
		goto out;
	for (i = 0; i < SPRY_REQ_SLOTS; i++)
		keys[i] = i;
	if (bpf_map_update_batch(d->maps.reqloc, keys, zero, &n, NULL)) {
		for (i = 0; i < SPRY_REQ_SLOTS; i++)
			if (bpf_map_update_elem(d->maps.reqloc, &keys[i], &zero[i], BPF_ANY))
				break;
		if (i < SPRY_REQ_SLOTS)
			spryd_log("spry_reqloc: clearing an earlier spryd's entries: %s",
				  strerror(errno));
	}
out:
	free(zero);
	free(keys);
}

int entry_init(struct spryd *d)
{
	uint32_t i;

	d->reqs = calloc(SPRY_REQ_SLOTS, sizeof(*d->reqs));
	d->slot_free = calloc(SPRY_REQ_SLOTS, sizeof(*d->slot_free));
	d->sendq = calloc(SPRY_REQ_SLOTS, sizeof(*d->sendq));
	d->retries = calloc(SPRY_MAX_FNS, sizeof(*d->retries));
	if (!d->reqs || !d->slot_free || !d->sendq || !d->retries) {
		entry_fini(d);
		return -ENOMEM;
	}
	for (i = 0; i < SPRY_REQ_SLOTS; i++) {
		d->reqs[i].prev = d->reqs[i].next = SPRYD_NIL;
		d->slot_free[i] = SPRY_REQ_SLOTS - 1 - i;
	}
	d->n_slot_free = SPRY_REQ_SLOTS;
	for (i = 0; i < SPRY_MAX_CHAINS; i++) {
		d->chains[i].live.head = d->chains[i].live.tail = SPRYD_NIL;
		d->chains[i].zombie.head = d->chains[i].zombie.tail = SPRYD_NIL;
	}
	d->seq = 1;
	reqloc_reset(d);
	d->inst_mem = mmap(NULL, INST_MEM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			   d->maps.inst, 0);
	if (d->inst_mem == MAP_FAILED) {
		spryd_log("spry_inst is not mappable (%s; pins of an older spry load?): "
			  "instances missing deadlines are not marked unhealthy",
			  strerror(errno));
		d->inst_mem = NULL;
	}
	return 0;
}

void entry_fini(struct spryd *d)
{
	unsigned int i;

	for (i = 0; i < SPRY_MAX_CHAINS; i++) {
		if (d->chains[i].pool) {
			spryd_log("pool of chain %s closed", d->chains[i].name);
			pool_retire(d, &d->chains[i]);
		}
	}
	if (d->inst_mem)
		munmap(d->inst_mem, INST_MEM_BYTES);
	d->inst_mem = NULL;
	free(d->reqs);
	free(d->slot_free);
	free(d->sendq);
	free(d->retries);
	d->retries = NULL;
	d->reqs = NULL;
	d->slot_free = NULL;
	d->sendq = NULL;
}
