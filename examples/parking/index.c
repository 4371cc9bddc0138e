// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parking-index: the lot's in-memory index of parked vehicles, plate ->
 * entry time (open addressing, linear probing, tombstones).
 *
 *   entry: records plate -> ts (a second entry without an exit, i.e. a
 *          missed exit read, replaces the time); adds " occupancy=N"
 *   exit:  takes the plate out; adds " entry=T0", or " entry=none" when
 *          the lot has no entry for it (lost ticket); an exit before its
 *          entry is refused (400) and the entry kept
 *   permit=blocked: passes through, nothing recorded
 *
 * Stateful: run ONE instance (an exit must reach the instance that saw
 * the entry; a hop cannot set a sticky routing key for the next hop, and
 * keyed calls (spry_req_call_key) remap keys when instances change).
 * The index is lost when the process ends: the ledger (parking-persist)
 * is the durable record.  Full at INDEX_MAX vehicles: entries get 503.
 *
 *   parking-index --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "examples/parking/parking.h"

#define INDEX_SLOTS	4096		/* power of two */
#define INDEX_MAX	3072		/* vehicles at most (75% load) */

enum { SLOT_FREE, SLOT_USED, SLOT_GONE };

struct slot {
	char			plate[8];
	unsigned long long	ts;
	int			state;
};

struct index {
	struct slot	slot[INDEX_SLOTS];
	unsigned int	n;		/* vehicles inside */
	unsigned int	gone;		/* tombstones */
};

static unsigned int plate_hash(const char *p)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	while (*p)
		h = (h ^ (uint8_t)*p++) * 16777619u;
	return h & (INDEX_SLOTS - 1);
}

/* The slot holding @plate, or NULL. */
static struct slot *index_find(struct index *ix, const char *plate)
{
	unsigned int i, h = plate_hash(plate);

	for (i = 0; i < INDEX_SLOTS; i++) {
		struct slot *s = &ix->slot[(h + i) & (INDEX_SLOTS - 1)];

		if (s->state == SLOT_FREE)
			return NULL;
		if (s->state == SLOT_USED && !strcmp(s->plate, plate))
			return s;
	}
	return NULL;
}

/* Drop the tombstones: insert every vehicle again into a clean table. */
static void index_rebuild(struct index *ix)
{
	static struct slot old[INDEX_SLOTS];
	unsigned int i, j;

	memcpy(old, ix->slot, sizeof(old));
	memset(ix->slot, 0, sizeof(ix->slot));
	ix->gone = 0;
	for (i = 0; i < INDEX_SLOTS; i++) {
		if (old[i].state != SLOT_USED)
			continue;
		for (j = plate_hash(old[i].plate); ix->slot[j].state == SLOT_USED;
		     j = (j + 1) & (INDEX_SLOTS - 1))
			;
		ix->slot[j] = old[i];
	}
}

/* Insert or update.  0, or -ENOSPC. */
static int index_put(struct index *ix, const char *plate, unsigned long long ts)
{
	struct slot *s = index_find(ix, plate);
	unsigned int i, h = plate_hash(plate);

	if (s) {
		s->ts = ts;
		return 0;
	}
	if (ix->n == INDEX_MAX)
		return -ENOSPC;
	if (ix->n + ix->gone >= INDEX_MAX)
		index_rebuild(ix);
	for (i = 0; i < INDEX_SLOTS; i++) {
		s = &ix->slot[(h + i) & (INDEX_SLOTS - 1)];
		if (s->state != SLOT_USED)
			break;
	}
	/* n < INDEX_MAX < INDEX_SLOTS: a slot is free or gone */
	if (s->state == SLOT_GONE)
		ix->gone--;
	snprintf(s->plate, sizeof(s->plate), "%s", plate);
	s->ts = ts;
	s->state = SLOT_USED;
	ix->n++;
	return 0;
}

static int do_index(struct spry_req *req, void *user)
{
	struct index *ix = user;
	char line[REC_LINE_MAX];
	unsigned long long ts;
	const char *plate;
	struct slot *s;
	bool exit_ev;
	struct rec r;
	int err;

	err = pk_input(req, &r, &exit_ev, &ts);
	if (err)
		return err;
	if (!rec_get(&r, "permit"))
		return spry_req_error(req, 400, -EINVAL, "record without permit (search first)");
	if (rec_get(&r, "entry") || rec_get(&r, "occupancy"))
		return spry_req_error(req, 400, -EINVAL, "record already indexed");
	if (!strcmp(rec_get(&r, "permit"), "blocked"))
		return spry_req_reply(req, 0, NULL, line, rec_format(&r, line));

	plate = rec_get(&r, "plate");
	if (!exit_ev) {
		err = index_put(ix, plate, ts);
		if (err)
			return spry_req_error(req, 503, err, "lot full (%u vehicles)", ix->n);
		err = rec_set_u64(&r, "occupancy", ix->n);
	} else {
		s = index_find(ix, plate);
		if (s && ts < s->ts)
			return spry_req_error(req, 400, -EINVAL,
					      "exit at %llu before entry at %llu", ts, s->ts);
		if (s) {
			err = rec_set_u64(&r, "entry", s->ts);
			s->state = SLOT_GONE;
			ix->n--;
			ix->gone++;
		} else {
			err = rec_set(&r, "entry", "none");
		}
	}
	if (err)
		return spry_req_error(req, 400, err, "record too long");
	return spry_req_reply(req, 0, NULL, line, rec_format(&r, line));
}

int main(int argc, char **argv)
{
	static struct index ix;

	return spry_fn_main(argc, argv, do_index, &ix);
}
