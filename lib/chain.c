// SPDX-License-Identifier: GPL-2.0-only
/*
 * Chain and function records: validating a chain spec, adding, replacing
 * and removing chains with their functions and authorizations.
 *
 * A chain id is in use when its record has a name; so is a function id.
 * Function names are scoped to their chain.  Every writer holds the pin
 * lock, so the read-modify-write sequences here do not race each other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "lib/core.h"

#define ORIGIN_NAME	"origin"

/* A fixed-size name field: NUL-terminated and valid. */
static int field_check(const char *name)
{
	if (!memchr(name, '\0', SPRY_NAME_LEN))
		return -EINVAL;
	return spry_name_check(name);
}

static bool name_eq(const char *a, const char *b)
{
	return !strncmp(a, b, SPRY_NAME_LEN);
}

/* Copy a checked name into a zeroed fixed-size field. */
static void name_copy(char dst[SPRY_NAME_LEN], const char *src)
{
	memset(dst, 0, SPRY_NAME_LEN);
	memcpy(dst, src, strnlen(src, SPRY_NAME_LEN - 1));
}

static int spec_fn_index(const struct spry_chain_spec *spec, const char *name)
{
	__u32 i;

	for (i = 0; i < spec->n_hops; i++)
		if (name_eq(spec->hops[i], name))
			return i;
	for (i = 0; i < spec->n_extra; i++)
		if (name_eq(spec->extra[i], name))
			return spec->n_hops + i;
	return -1;
}

static int fn_name_check(const char *what, const char *name, char *err,
			 size_t errlen)
{
	if (field_check(name)) {
		spry_err__set(err, errlen, "invalid %s name '%.*s' (1-%d of A-Z a-z 0-9 _ . -)",
			      what, SPRY_NAME_LEN - 1, name, SPRY_NAME_LEN - 1);
		return -EINVAL;
	}
	if (!strcmp(name, ORIGIN_NAME)) {
		spry_err__set(err, errlen, "'%s' is reserved and cannot name a function",
			      ORIGIN_NAME);
		return -EINVAL;
	}
	return 0;
}

/* A list of invoking users or groups: at most SPRY_MAX_INVOKERS, distinct. */
static int ids_check(const char *chain, const char *what, const __u32 *ids, __u32 n,
		     char *err, size_t errlen)
{
	__u32 i, j;

	if (n > SPRY_MAX_INVOKERS) {
		spry_err__set(err, errlen, "chain '%s': %u invoke %ss, at most %d", chain, n,
			      what, SPRY_MAX_INVOKERS);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (ids[i] == (__u32)-1) {
			spry_err__set(err, errlen, "chain '%s': invoke %s id %u is invalid",
				      chain, what, ids[i]);
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (ids[i] == ids[j]) {
				spry_err__set(err, errlen, "chain '%s': invoke %s %u listed twice",
					      chain, what, ids[i]);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/*
 * Conditional nexts (docs/WORKFLOWS.md): F and G hops of the chain, G
 * after F (a request only moves forward, so it cannot loop), each pair
 * once, at most SPRY_MAX_ALLOW.  Not allowed in an app (one hop).
 */
static int next_check(const struct spry_chain_spec *spec, char *err, size_t errlen)
{
	__u32 i, j;
	int from, to;

	if (spec->n_next > SPRY_MAX_ALLOW) {
		spry_err__set(err, errlen, "chain '%s': %u nexts, at most %d",
			      spec->name, spec->n_next, SPRY_MAX_ALLOW);
		return -EINVAL;
	}
	for (i = 0; i < spec->n_next; i++) {
		if (fn_name_check("function", spec->next[i][0], err, errlen) ||
		    fn_name_check("function", spec->next[i][1], err, errlen))
			return -EINVAL;
		from = spec_fn_index(spec, spec->next[i][0]);
		to = spec_fn_index(spec, spec->next[i][1]);
		if (from < 0 || from >= (int)spec->n_hops || to < 0 ||
		    to >= (int)spec->n_hops) {
			spry_err__set(err, errlen, "chain '%s': next %s:%s: both must be hops of the chain",
				      spec->name, spec->next[i][0], spec->next[i][1]);
			return -EINVAL;
		}
		if (to <= from) {
			spry_err__set(err, errlen, "chain '%s': next %s:%s: '%s' must be a later hop than '%s' (a request never goes back)",
				      spec->name, spec->next[i][0], spec->next[i][1],
				      spec->next[i][1], spec->next[i][0]);
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (name_eq(spec->next[i][0], spec->next[j][0]) &&
			    name_eq(spec->next[i][1], spec->next[j][1])) {
				spry_err__set(err, errlen, "chain '%s': next %s:%s listed twice",
					      spec->name, spec->next[i][0], spec->next[i][1]);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int spry_chain_spec__check(const struct spry_chain_spec *spec, char *err,
			   size_t errlen)
{
	__u64 buf_size, n_bufs;
	__u32 i, j;

	if (field_check(spec->name)) {
		spry_err__set(err, errlen, "invalid chain name '%.*s' (1-%d of A-Z a-z 0-9 _ . -)",
			      SPRY_NAME_LEN - 1, spec->name, SPRY_NAME_LEN - 1);
		return -EINVAL;
	}
	if (spec->n_hops < 1 || spec->n_hops > SPRY_MAX_HOPS) {
		spry_err__set(err, errlen, "chain '%s': %u hops, expected 1 to %d",
			      spec->name, spec->n_hops, SPRY_MAX_HOPS);
		return -EINVAL;
	}
	if (spec->n_extra > SPRY_MAX_HOPS) {
		spry_err__set(err, errlen, "chain '%s': %u call-only functions, at most %d",
			      spec->name, spec->n_extra, SPRY_MAX_HOPS);
		return -EINVAL;
	}
	if (spec->n_allow > SPRY_MAX_ALLOW) {
		spry_err__set(err, errlen, "chain '%s': %u calls, at most %d",
			      spec->name, spec->n_allow, SPRY_MAX_ALLOW);
		return -EINVAL;
	}
	for (i = 0; i < spec->n_hops; i++) {
		if (fn_name_check("function", spec->hops[i], err, errlen))
			return -EINVAL;
		for (j = 0; j < i; j++) {
			if (name_eq(spec->hops[i], spec->hops[j])) {
				spry_err__set(err, errlen, "chain '%s': function '%s' appears twice in hops",
					      spec->name, spec->hops[i]);
				return -EINVAL;
			}
		}
	}
	for (i = 0; i < spec->n_extra; i++) {
		if (fn_name_check("function", spec->extra[i], err, errlen))
			return -EINVAL;
		if (spec_fn_index(spec, spec->extra[i]) != (int)(spec->n_hops + i)) {
			spry_err__set(err, errlen, "chain '%s': function '%s' listed twice",
				      spec->name, spec->extra[i]);
			return -EINVAL;
		}
	}
	for (i = 0; i < spec->n_allow; i++) {
		for (j = 0; j < 2; j++) {
			const char *f = spec->allow[i][j];

			if (fn_name_check("function", f, err, errlen))
				return -EINVAL;
			if (spec_fn_index(spec, f) < 0) {
				spry_err__set(err, errlen, "chain '%s': call names '%s', not a function of the chain",
					      spec->name, f);
				return -EINVAL;
			}
		}
	}
	if (spec->n_app_next > SPRY_MAX_ALLOW || (spec->n_app_next && !spec->app)) {
		spry_err__set(err, errlen, "chain '%s': %u handler nexts (an app's, at most %d)",
			      spec->name, spec->n_app_next, SPRY_MAX_ALLOW);
		return -EINVAL;
	}
	for (i = 0; i < spec->n_app_next; i++) {
		if (!spec->app_next[i][0] || !spec->app_next[i][1] ||
		    spec->app_next[i][0] >= SPRY_RL_CALLEE ||
		    spec->app_next[i][1] >= SPRY_RL_CALLEE) {
			spry_err__set(err, errlen, "chain '%s': handler next %u:%u out of range 1..%d",
				      spec->name, spec->app_next[i][0], spec->app_next[i][1],
				      SPRY_RL_CALLEE - 1);
			return -EINVAL;
		}
	}
	if (next_check(spec, err, errlen))
		return -EINVAL;
	if (spec->n_hops < 32 && spec->idempotent_mask >> spec->n_hops) {
		spry_err__set(err, errlen, "chain '%s': idempotent mask 0x%x names hops beyond %u",
			      spec->name, spec->idempotent_mask, spec->n_hops);
		return -EINVAL;
	}
	if (ids_check(spec->name, "user", spec->invoke_uids, spec->n_invoke_uids,
		      err, errlen) ||
	    ids_check(spec->name, "group", spec->invoke_gids, spec->n_invoke_gids,
		      err, errlen))
		return -EINVAL;
	if (spec->uid == (__u32)-1) {
		spry_err__set(err, errlen, "chain '%s': uid %u is invalid", spec->name,
			      spec->uid);
		return -EINVAL;
	}
	if (spec->buf_size &&
	    (spec->buf_size < SPRY_MIN_BUF_SIZE || spec->buf_size > SPRY_MAX_BUF_SIZE)) {
		spry_err__set(err, errlen, "chain '%s': buffer size %u out of range %u..%u",
			      spec->name, spec->buf_size, SPRY_MIN_BUF_SIZE, SPRY_MAX_BUF_SIZE);
		return -EINVAL;
	}
	if (spec->n_bufs > SPRY_MAX_N_BUFS) {
		spry_err__set(err, errlen, "chain '%s': %u buffers, at most %u",
			      spec->name, spec->n_bufs, SPRY_MAX_N_BUFS);
		return -EINVAL;
	}
	buf_size = spec->buf_size ? spec->buf_size : SPRY_DEF_BUF_SIZE;
	n_bufs = spec->n_bufs ? spec->n_bufs : SPRY_DEF_N_BUFS;
	if (buf_size * n_bufs > SPRY_MAX_POOL_BYTES) {
		spry_err__set(err, errlen, "chain '%s': pool of %llu x %llu bytes exceeds %llu bytes",
			      spec->name, (unsigned long long)n_bufs,
			      (unsigned long long)buf_size, SPRY_MAX_POOL_BYTES);
		return -EINVAL;
	}
	if (spec->max_inflight > SPRY_MAX_INFLIGHT) {
		spry_err__set(err, errlen, "chain '%s': max-inflight %u, at most %u",
			      spec->name, spec->max_inflight, SPRY_MAX_INFLIGHT);
		return -EINVAL;
	}
	if (spec->deadline_ms > SPRY_MAX_DEADLINE_MS) {
		spry_err__set(err, errlen, "chain '%s': deadline %u ms, at most %u",
			      spec->name, spec->deadline_ms, SPRY_MAX_DEADLINE_MS);
		return -EINVAL;
	}
	return 0;
}

static bool id_listed(__u32 id, const __u32 *ids, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n && i < SPRY_MAX_INVOKERS; i++)
		if (ids[i] == id)
			return true;
	return false;
}

bool spry_chain__may_invoke(const struct spry_chain *c, __u32 uid, __u32 gid,
			    const __u32 *groups, size_t n_groups)
{
	size_t i;

	if (!uid || id_listed(uid, c->invoke_uids, c->n_invoke_uids) ||
	    id_listed(gid, c->invoke_gids, c->n_invoke_gids))
		return true;
	for (i = 0; i < n_groups; i++)
		if (id_listed(groups[i], c->invoke_gids, c->n_invoke_gids))
			return true;
	return false;
}

int spry_chain__get(const struct spry_maps *m, __u16 id, struct spry_chain *chain)
{
	__u32 key = id;

	if (!id || id >= SPRY_MAX_CHAINS)
		return -EINVAL;
	if (bpf_map_lookup_elem(m->chains, &key, chain))
		return -errno;
	if (!chain->name[0])
		return -ENOENT;
	return 0;
}

/* Find @name, and the lowest free id (0 when none). */
static int chain_scan(const struct spry_maps *m, const char *name, __u16 *id,
		      struct spry_chain *out, __u16 *free_id)
{
	struct spry_chain c;
	bool found = false;
	__u32 key;

	*free_id = 0;
	for (key = 1; key < SPRY_MAX_CHAINS; key++) {
		if (bpf_map_lookup_elem(m->chains, &key, &c))
			return -errno;
		if (!c.name[0]) {
			if (!*free_id)
				*free_id = key;
			continue;
		}
		if (found || !name_eq(c.name, name))
			continue;
		found = true;
		*id = key;
		*out = c;
	}
	return found ? 0 : -ENOENT;
}

int spry_chain__lookup(const struct spry_maps *m, const char *name, __u16 *id,
		       struct spry_chain *chain)
{
	struct spry_chain c;
	__u32 key;

	if (spry_name_check(name))
		return -EINVAL;
	for (key = 1; key < SPRY_MAX_CHAINS; key++) {
		if (bpf_map_lookup_elem(m->chains, &key, &c))
			return -errno;
		if (!c.name[0] || !name_eq(c.name, name))
			continue;
		if (id)
			*id = key;
		if (chain)
			*chain = c;
		return 0;
	}
	return -ENOENT;
}

int spry_fn__get(const struct spry_maps *m, __u16 id, struct spry_fn *fn)
{
	__u32 key = id;

	if (id >= SPRY_MAX_FNS)
		return -EINVAL;
	if (bpf_map_lookup_elem(m->fns, &key, fn))
		return -errno;
	/* fn 0 describes the origins: always there. */
	if (id && !fn->name[0])
		return -ENOENT;
	return 0;
}

int spry_fn__put(const struct spry_maps *m, __u16 id, const struct spry_fn *fn)
{
	__u32 key = id;

	if (id >= SPRY_MAX_FNS || fn->n_inst > SPRY_MAX_INST)
		return -EINVAL;
	return bpf_map_update_elem(m->fns, &key, fn, BPF_ANY) ? -errno : 0;
}

int spry_fn__lookup(const struct spry_maps *m, __u16 chain, const char *name,
		    __u16 *id, struct spry_fn *fn)
{
	struct spry_fn f;
	__u32 key;

	if (spry_name_check(name))
		return -EINVAL;
	for (key = 1; key < SPRY_MAX_FNS; key++) {
		if (bpf_map_lookup_elem(m->fns, &key, &f))
			return -errno;
		if (!f.name[0] || f.chain != chain || !name_eq(f.name, name))
			continue;
		if (id)
			*id = key;
		if (fn)
			*fn = f;
		return 0;
	}
	return -ENOENT;
}

/* Every function record, indexed by id; free() the result. */
static int fns_read_all(const struct spry_maps *m, struct spry_fn **out)
{
	struct spry_fn *fns;
	__u32 key;
	int err;

	fns = calloc(SPRY_MAX_FNS, sizeof(*fns));
	if (!fns)
		return -ENOMEM;
	for (key = 1; key < SPRY_MAX_FNS; key++) {
		if (bpf_map_lookup_elem(m->fns, &key, &fns[key])) {
			err = -errno;
			free(fns);
			return err;
		}
	}
	*out = fns;
	return 0;
}

/*
 * Give @id a clean slate: no sockets in the router, no instance state, no
 * counters.  Used for a function id being freed or newly taken.
 */
static int fn_reset(const struct spry_maps *m, __u16 id)
{
	struct spry_inst_state st;
	struct spry_inst_key key;
	__u16 i;
	int err;

	memset(&st, 0, sizeof(st));
	for (i = 0; i < SPRY_MAX_INST; i++) {
		key.fn = id;
		key.inst = i;
		if (bpf_map_delete_elem(m->socks, &key) && errno != ENOENT)
			return -errno;
		err = spry_inst__put(m, id, i, &st);
		if (err)
			return err;
	}
	return spry_fn_stats__clear(m, id);
}

static int fn_remove(const struct spry_maps *m, __u16 id)
{
	struct spry_fn zero;
	int err;

	memset(&zero, 0, sizeof(zero));
	err = spry_fn__put(m, id, &zero);
	if (err)
		return err;
	return fn_reset(m, id);
}

/* A set of authorization keys of one chain. */
struct auth_set {
	struct spry_auth_key	*keys;
	size_t			n, cap;
};

static bool auth_key_eq(const struct spry_auth_key *a, const struct spry_auth_key *b)
{
	return a->chain == b->chain && a->from == b->from && a->to == b->to &&
	       a->kind == b->kind;
}

static bool auth_set_has(const struct auth_set *s, const struct spry_auth_key *k)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (auth_key_eq(&s->keys[i], k))
			return true;
	return false;
}

static int auth_set_add_kind(struct auth_set *s, __u16 chain, __u16 from,
			     __u16 to, __u16 kind)
{
	struct spry_auth_key k = { .chain = chain, .from = from, .to = to,
				   .kind = kind };
	struct spry_auth_key *keys;
	size_t cap;

	if (auth_set_has(s, &k))
		return 0;
	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 64;
		keys = realloc(s->keys, cap * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		s->keys = keys;
		s->cap = cap;
	}
	s->keys[s->n++] = k;
	return 0;
}

static int auth_set_add(struct auth_set *s, __u16 chain, __u16 from, __u16 to)
{
	return auth_set_add_kind(s, chain, from, to, SPRY_AK_HANDOFF);
}

/* Delete every authorization of @chain not in @keep (NULL: all of them). */
static int auth_prune(const struct spry_maps *m, __u16 chain,
		      const struct auth_set *keep)
{
	struct spry_auth_key key, next;
	struct auth_set stale = {};
	bool first = true;
	size_t i;
	int err = 0;

	/* Collect first: deleting while walking would restart the walk. */
	while (!bpf_map_get_next_key(m->auth, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (key.chain != chain || (keep && auth_set_has(keep, &key)))
			continue;
		err = auth_set_add_kind(&stale, key.chain, key.from, key.to, key.kind);
		if (err)
			goto out;
	}
	if (errno != ENOENT) {
		err = -errno;
		goto out;
	}
	for (i = 0; i < stale.n; i++) {
		if (bpf_map_delete_elem(m->auth, &stale.keys[i]) && errno != ENOENT) {
			err = -errno;
			goto out;
		}
	}
out:
	free(stale.keys);
	return err;
}

int spry_chain__add(struct spry_maps *m, const struct spry_chain_spec *spec, __u16 *id)
{
	__u16 fn_ids[SPRY_MAX_HOPS * 2];
	bool fresh[SPRY_MAX_HOPS * 2];
	struct auth_set auth = {};
	struct spry_chain old, rec;
	struct spry_fn *fns = NULL, f;
	__u16 cid = 0, free_id, next_free;
	__u32 n_all, i, k;
	int err, idx;

	err = spry_chain_spec__check(spec, NULL, 0);
	if (err)
		return err;

	err = chain_scan(m, spec->name, &cid, &old, &free_id);
	if (err == -ENOENT) {
		if (!free_id)
			return -ENOSPC;
		cid = free_id;
		memset(&old, 0, sizeof(old));
	} else if (err) {
		return err;
	}

	err = fns_read_all(m, &fns);
	if (err)
		return err;

	/* Ids: keep the chain's existing functions by name, else lowest free. */
	n_all = spec->n_hops + spec->n_extra;
	next_free = 1;
	for (i = 0; i < n_all; i++) {
		const char *name = i < spec->n_hops ? spec->hops[i] :
				   spec->extra[i - spec->n_hops];

		fn_ids[i] = 0;
		for (k = 1; k < SPRY_MAX_FNS; k++) {
			if (fns[k].name[0] && fns[k].chain == cid &&
			    name_eq(fns[k].name, name)) {
				fn_ids[i] = k;
				break;
			}
		}
		fresh[i] = !fn_ids[i];
	}
	for (i = 0; i < n_all; i++) {
		if (!fresh[i])
			continue;
		while (next_free < SPRY_MAX_FNS && fns[next_free].name[0])
			next_free++;
		if (next_free >= SPRY_MAX_FNS) {
			err = -ENOSPC;
			goto out;
		}
		fn_ids[i] = next_free++;
	}

	/* The authorizations the new definition has. */
	err = auth_set_add(&auth, cid, SPRY_FN_ORIGIN, fn_ids[0]);
	for (i = 0; !err && i + 1 < spec->n_hops; i++)
		err = auth_set_add(&auth, cid, fn_ids[i], fn_ids[i + 1]);
	if (!err)
		err = auth_set_add(&auth, cid, fn_ids[spec->n_hops - 1], SPRY_FN_ORIGIN);
	for (i = 0; !err && i < spec->n_allow; i++)
		err = auth_set_add(&auth, cid,
				   fn_ids[spec_fn_index(spec, spec->allow[i][0])],
				   fn_ids[spec_fn_index(spec, spec->allow[i][1])]);
	for (i = 0; !err && i < spec->n_next; i++)
		err = auth_set_add_kind(&auth, cid,
					fn_ids[spec_fn_index(spec, spec->next[i][0])],
					fn_ids[spec_fn_index(spec, spec->next[i][1])],
					SPRY_AK_NEXT);
	for (i = 0; !err && i < spec->n_app_next; i++)
		err = auth_set_add_kind(&auth, cid, spec->app_next[i][0], spec->app_next[i][1],
					SPRY_AK_APP_NEXT);
	if (err)
		goto out;

	/*
	 * Write in the order the router reads: functions and hand-offs
	 * first, then the chain that names them, then drop what the old
	 * definition had and the new one does not.
	 */
	for (i = 0; i < n_all; i++) {
		const char *name = i < spec->n_hops ? spec->hops[i] :
				   spec->extra[i - spec->n_hops];

		if (fresh[i]) {
			err = fn_reset(m, fn_ids[i]);
			if (err)
				goto out;
			memset(&f, 0, sizeof(f));
		} else {
			/* Re-read: keep the live instance list as it is now. */
			err = spry_fn__get(m, fn_ids[i], &f);
			if (err)
				goto out;
		}
		f.flags = SPRY_FF_ACTIVE;
		if (i < spec->n_hops && (spec->idempotent_mask & (1U << i)))
			f.flags |= SPRY_FF_IDEMPOTENT;
		f.chain = cid;
		name_copy(f.name, name);
		err = spry_fn__put(m, fn_ids[i], &f);
		if (err)
			goto out;
	}
	for (i = 0; i < auth.n; i++) {
		err = spry_auth__set_kind(m, cid, auth.keys[i].from, auth.keys[i].to,
					  auth.keys[i].kind, true);
		if (err)
			goto out;
	}

	memset(&rec, 0, sizeof(rec));
	rec.flags = SPRY_CF_ACTIVE;
	rec.uid = spec->uid;
	rec.pool_size = old.pool_size;
	rec.buf_size = spec->buf_size ? spec->buf_size : SPRY_DEF_BUF_SIZE;
	rec.n_bufs = spec->n_bufs ? spec->n_bufs : SPRY_DEF_N_BUFS;
	rec.max_inflight = spec->max_inflight ? spec->max_inflight :
			   SPRY_DEF_MAX_INFLIGHT;
	rec.deadline_ms = spec->deadline_ms ? spec->deadline_ms :
			  SPRY_DEF_DEADLINE_MS;
	rec.n_hops = spec->n_hops;
	for (i = 0; i < spec->n_hops; i++)
		rec.hops[i] = fn_ids[i];
	memcpy(rec.cpus, spec->cpus, sizeof(rec.cpus));
	name_copy(rec.name, spec->name);
	if (spec->http_off)
		rec.flags |= SPRY_CF_NO_HTTP;
	if (spec->app)
		rec.flags |= SPRY_CF_APP;
	if (spec->invoke_set) {
		rec.n_invoke_uids = spec->n_invoke_uids;
		memcpy(rec.invoke_uids, spec->invoke_uids,
		       spec->n_invoke_uids * sizeof(rec.invoke_uids[0]));
		rec.n_invoke_gids = spec->n_invoke_gids;
		memcpy(rec.invoke_gids, spec->invoke_gids,
		       spec->n_invoke_gids * sizeof(rec.invoke_gids[0]));
	} else {
		/* The default: the chain's own user (root may anyway). */
		rec.n_invoke_uids = 1;
		rec.invoke_uids[0] = spec->uid;
	}
	k = cid;
	if (bpf_map_update_elem(m->chains, &k, &rec, BPF_ANY)) {
		err = -errno;
		goto out;
	}

	err = auth_prune(m, cid, &auth);
	if (err)
		goto out;
	for (k = 1; k < SPRY_MAX_FNS; k++) {
		if (!fns[k].name[0] || fns[k].chain != cid)
			continue;
		for (idx = 0; idx < (int)n_all; idx++)
			if (fn_ids[idx] == k)
				break;
		if (idx < (int)n_all)
			continue;
		err = fn_remove(m, k);
		if (err)
			goto out;
	}
	if (id)
		*id = cid;
out:
	free(auth.keys);
	free(fns);
	return err;
}

int spry_chain__del(struct spry_maps *m, const char *name)
{
	struct spry_chain zero;
	struct spry_fn f;
	__u16 cid;
	__u32 key;
	int err;

	err = spry_chain__lookup(m, name, &cid, NULL);
	if (err)
		return err;
	memset(&zero, 0, sizeof(zero));
	key = cid;
	if (bpf_map_update_elem(m->chains, &key, &zero, BPF_ANY))
		return -errno;
	err = auth_prune(m, cid, NULL);
	if (err)
		return err;
	for (key = 1; key < SPRY_MAX_FNS; key++) {
		if (bpf_map_lookup_elem(m->fns, &key, &f))
			return -errno;
		if (!f.name[0] || f.chain != cid)
			continue;
		err = fn_remove(m, key);
		if (err)
			return err;
	}
	return 0;
}
