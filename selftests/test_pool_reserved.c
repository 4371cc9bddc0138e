// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_pool_reserved: the pool's reserved run (spryd's AF_XDP UMEM,
 * docs/DATAGRAM.md): opts.n_reserved regular buffers at the start of the
 * data area, page aligned, on a free list of their own.  spry_pool_alloc()
 * never hands them out, spry_pool_alloc_reserved() only them; free and
 * reclaim put each buffer back on its own list (also from a second
 * mapping); spry_pool_retag() checks gen and the old tag; the geometry
 * survives attach; a reservation of every buffer is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "selftests/tap.h"

#define BS	4096u
#define NB	64u
#define NR	24u
#define TAG	0x8000000000000001ULL

static struct spry_buf res[NR], reg[NB];

static bool in_run(uint64_t off, uint64_t run_off)
{
	return off >= run_off && off < run_off + (uint64_t)NR * BS && (off - run_off) % BS == 0;
}

int main(void)
{
	struct spry_pool_opts o = {
		.buf_size = BS, .n_bufs = NB, .large_size = 4 * BS, .n_large = 4,
		.uid = (uid_t)-1, .gid = (gid_t)-1, .no_huge = 1, .n_reserved = NR,
	};
	struct spry_pool *p, *q;
	struct spry_pool_stats st;
	struct spry_buf b, extra;
	uint64_t run_off, run_len;
	bool ok;
	uint32_t i, n;
	int err;

	o.n_reserved = NB;
	p = spry_pool_create(NULL, "spry-test-reserved", &o);
	tap_ok(!p && errno == EINVAL, "n_reserved == n_bufs refused (EINVAL)");
	o.n_reserved = NR;

	p = spry_pool_create(NULL, "spry-test-reserved", &o);
	if (!p) {
		tap_ok(0, "create with %u reserved: %s", NR, strerror(errno));
		return tap_finish();
	}
	ok = !spry_pool_stats(p, &st) && st.n_bufs == NB && st.n_free == NB &&
	     st.n_reserved == NR && st.n_reserved_free == NR &&
	     !spry_pool_reserved(p, &run_off, &run_len) && run_len == (uint64_t)NR * BS &&
	     run_off % 4096 == 0;
	tap_ok(ok, "stats: %u free of %u, %u reserved; run at %#llx, %llu bytes, page aligned",
	       st.n_free, st.n_bufs, st.n_reserved, (unsigned long long)run_off,
	       (unsigned long long)run_len);

	ok = true;
	for (n = 0; n < NB; n++) {
		err = spry_pool_alloc(p, BS, 77, &reg[n]);
		if (err)
			break;
		ok &= !in_run(reg[n].off, run_off) && reg[n].off >= run_off + run_len;
	}
	tap_ok(ok && n == NB - NR && err == -ENOSPC,
	       "spry_pool_alloc: %u buffers, none in the run, then ENOSPC", n);

	ok = true;
	for (i = 0; i < NR; i++) {
		err = spry_pool_alloc_reserved(p, TAG, &res[i]);
		ok &= !err && in_run(res[i].off, run_off) && res[i].cap == BS && (res[i].gen & 1);
		ok &= res[i].off == run_off + (uint64_t)i * BS;	/* lowest first */
	}
	tap_ok(ok && spry_pool_alloc_reserved(p, TAG, &extra) == -ENOSPC,
	       "spry_pool_alloc_reserved: the %u run buffers in order, then ENOSPC", NR);

	ok = spry_pool_alloc_reserved(p, 0, &extra) == -EINVAL &&
	     spry_pool_alloc_reserved(NULL, TAG, &extra) == -EINVAL;
	tap_ok(ok, "alloc_reserved: tag 0 or no pool refused");

	/* free a reserved and a regular one: each comes back on its own list */
	ok = !spry_pool_free(p, res[3].off, res[3].gen) &&
	     !spry_pool_free(p, reg[5].off, reg[5].gen) &&
	     !spry_pool_alloc(p, BS, 78, &b) && b.off == reg[5].off &&
	     spry_pool_alloc(p, BS, 78, &extra) == -ENOSPC;
	reg[5] = b;
	ok = ok && !spry_pool_alloc_reserved(p, TAG, &b) && b.off == res[3].off &&
	     b.gen == res[3].gen + 2;
	res[3] = b;
	tap_ok(ok, "free: a reserved buffer returns to the reserved list, a regular one to its own");

	/* retag: gen and old tag must match */
	ok = !spry_pool_retag(p, res[0].off, res[0].gen, TAG, 0x10001) &&
	     spry_pool_retag(p, res[0].off, res[0].gen, TAG, 0x10002) == -ESTALE &&
	     spry_pool_retag(p, res[0].off, res[0].gen + 2, 0x10001, 5) == -ESTALE &&
	     spry_pool_retag(p, res[0].off + 64, res[0].gen, 0x10001, 5) == -EINVAL &&
	     spry_pool_retag(p, res[0].off, res[0].gen, 0x10001, 0) == -EINVAL;
	tap_ok(ok, "retag: needs the current gen and old tag; bad offset, tag 0 refused");

	/* reclaim by the new tag: back on the reserved list */
	n = (uint32_t)spry_pool_reclaim(p, 0x10001);
	ok = n == 1 && !spry_pool_stats(p, &st) && st.n_reserved_free == 1 &&
	     !spry_pool_alloc_reserved(p, TAG, &b) && b.off == res[0].off;
	res[0] = b;
	tap_ok(ok, "reclaim of a retagged run buffer puts it back on the reserved list");

	/* a second mapping (a function) sees the geometry and frees correctly */
	q = spry_pool_attach(spry_pool_fd(p));
	ok = q && !spry_pool_stats(q, &st) && st.n_reserved == NR &&
	     !spry_pool_free(q, res[7].off, res[7].gen) &&
	     spry_pool_alloc(q, BS, 79, &extra) == -ENOSPC &&
	     !spry_pool_alloc_reserved(q, TAG, &b) && b.off == res[7].off;
	res[7] = b;
	tap_ok(ok, "attach: same reservation; a free from it lands on the reserved list");
	spry_pool_close(q);

	n = (uint32_t)spry_pool_reclaim(p, TAG);
	ok = n == NR && !spry_pool_stats(p, &st) && st.n_reserved_free == NR;
	tap_ok(ok, "reclaim of the ingress tag frees the %u run buffers (%u)", NR, n);

	for (i = 0; i < NB - NR; i++)
		spry_pool_free(p, reg[i].off, reg[i].gen);
	ok = !spry_pool_stats(p, &st) && st.n_free == NB && st.n_large_free == st.n_large;
	tap_ok(ok, "every buffer free at the end (%u/%u)", st.n_free, st.n_bufs);

	/* a pool without a reservation: alloc_reserved has nothing */
	spry_pool_close(p);
	o.n_reserved = 0;
	p = spry_pool_create(NULL, "spry-test-reserved0", &o);
	ok = p && spry_pool_alloc_reserved(p, TAG, &b) == -ENOSPC &&
	     !spry_pool_reserved(p, &run_off, &run_len) && run_len == 0;
	tap_ok(ok, "no reservation: alloc_reserved ENOSPC, empty run");
	spry_pool_close(p);
	return tap_finish();
}
