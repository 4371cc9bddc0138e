// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fan-out room: spryd's part in fan-outs (fan.h, docs/WORKFLOWS.md
 * "Fan-out and fan-in").  The router records every branch it delivers in
 * spry_fanrec (include/spry/abi.h) with the callee instance holding it;
 * when an instance goes, spryd answers the branches it held, through the
 * router (bpf/skmsg_route.c, fan_from_spryd()), which takes each answer
 * only while the record still names that callee.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "spryd/fan.h"
#include "spryd/origin.h"
#include "spryd/spryd.h"

/* Answers sent per origin send. */
#define FAN_GIVE_BATCH	64

struct fan_found {
	struct spry_fan_key	key;
	bool			held;	/* held by the instance (else sent by it) */
};

/* The records naming instance {fn, idx}: held by it, or its own branches. */
static int fan_collect(int fd, uint16_t fn, uint16_t idx, struct fan_found **out,
		       size_t *n_out)
{
	struct spry_fan_key key, next;
	struct spry_fan_rec rec;
	struct fan_found *v = NULL, *nv;
	size_t n = 0, cap = 0, visits = 0;
	bool held, own;
	int err;

	/*
	 * A key the router deletes under the walk restarts it from the first
	 * bucket: bounded, so a busy table never holds spryd's loop for long
	 * (a record seen twice is answered twice: the router takes one and
	 * gives the other back as fan_orphan).
	 */
	err = bpf_map_get_next_key(fd, NULL, &next);
	while (!err && visits++ < 2 * (size_t)SPRY_FAN_RECS) {
		key = next;
		if (!bpf_map_lookup_elem(fd, &key, &rec)) {
			held = rec.fn == fn && rec.inst == idx;
			own = key.fn == fn && key.inst == idx;
			if (held || own) {
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					nv = realloc(v, cap * sizeof(*v));
					if (!nv) {
						free(v);
						return -ENOMEM;
					}
					v = nv;
				}
				v[n].key = key;
				v[n].held = held;
				n++;
			}
		}
		err = bpf_map_get_next_key(fd, &key, &next);
	}
	if (err && errno != ENOENT) {
		err = -errno;
		free(v);
		return err;
	}
	*out = v;
	*n_out = n;
	return 0;
}

void fan_inst_gone(struct spryd *d, struct spryd_inst *in)
{
	struct spry_desc give[FAN_GIVE_BATCH];
	struct fan_found *found = NULL;
	uint32_t k = 0, sent = 0, lost = 0, forgot = 0;
	size_t n = 0, i;
	int err;

	if (d->maps.fanrec < 0)
		return;
	err = fan_collect(d->maps.fanrec, in->fn, in->idx, &found, &n);
	if (err) {
		spryd_log("fan-out: reading spry_fanrec for dead instance %u/%u: %s; its callers' branches time out",
			  in->fn, in->idx, strerror(-err));
		return;
	}
	for (i = 0; i <= n; i++) {
		if (i < n && !found[i].held) {
			/*
			 * A branch it had out: nobody waits for its answer
			 * any more (a new registration starts from 0).
			 */
			if (!bpf_map_delete_elem(d->maps.fanrec, &found[i].key))
				forgot++;
			continue;
		}
		if (i < n) {
			memset(&give[k], 0, sizeof(give[k]));
			give[k].version = SPRY_DESC_VERSION;
			give[k].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
			give[k].status = SPRY_ST_CALLEE_GONE;
			give[k].chain = in->chain;
			give[k].fn = in->fn;
			give[k].inst = in->idx;
			give[k].ret_fn = found[i].key.fn;
			give[k].ret_inst = found[i].key.inst;
			give[k].req_id = found[i].key.req_id;
			give[k].t_start = found[i].key.tag;
			k++;
		}
		if (k == FAN_GIVE_BATCH || (i == n && k)) {
			err = origin_send_descs(d, give, k);
			if (err < 0)
				err = 0;
			sent += (uint32_t)err;
			lost += k - (uint32_t)err;
			k = 0;
		}
	}
	free(found);
	d->st.fan_given_back += sent;
	if (lost)
		spryd_log("fan-out: %u branches of dead instance %u/%u could not be answered (the origins are full): their callers time out",
			  lost, in->fn, in->idx);
	if (sent || forgot)
		spryd_vlog(d, "fan-out: instance %u/%u gone: %u branches it held answered, %u of its own forgotten",
			   in->fn, in->idx, sent, forgot);
}

void fan_reset(struct spryd *d)
{
	struct spry_fan_key key;
	uint32_t n = 0;

	if (d->maps.fanrec < 0)
		return;
	/* always the first key left: deleting does not disturb the walk */
	while (n <= SPRY_FAN_RECS && !bpf_map_get_next_key(d->maps.fanrec, NULL, &key)) {
		if (bpf_map_delete_elem(d->maps.fanrec, &key) && errno != ENOENT) {
			spryd_log("spry_fanrec: clearing an earlier spryd's records: %s",
				  strerror(errno));
			return;
		}
		n++;
	}
	if (n)
		spryd_log("spry_fanrec: %u fan-out records of an earlier spryd cleared", n);
}
