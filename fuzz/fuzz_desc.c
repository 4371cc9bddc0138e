// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of the runtime's descriptor check (fn-runtime/desc.c,
 * what rt_handle() applies before a payload byte is touched) and of the
 * pool's bounds and free checks (shm/pool.c).
 *
 * A pool is created once (plain memfd): 8 buffers of 256 bytes and 2 of
 * 1024; every buffer is allocated and its offset, capacity and gen are
 * recorded from spry_pool_alloc(): the independent picture of the pool
 * the assertions use.
 *
 * Input: a 64-byte struct spry_desc (zero-padded if shorter), then
 * optional steering bytes so that the fuzzer reaches real buffers:
 *   [64]  bit 0: off := buffer[[65] % 10].off + (int16_t)low 16 bits of off
 *         bit 1: cap := that buffer's cap - low 8 bits of cap
 *         bit 2: gen := that buffer's gen
 *         bit 3: version/chain/flags/status := a runnable descriptor
 *         bit 4: version/chain := ours, flags := a mail (bit 5: its answer)
 *
 * Asserted (abort() on failure):
 *   - spry_mail_check()'s verdict equals the one computed here (mailbox,
 *     buffer inside one recorded buffer, len <= cap); a taken mail's
 *     payload lies in the pool mapping;
 *   - spry_desc_check()'s verdict equals the one computed here from the
 *     descriptor rules (version, chain, flags, CALL/REPLY, status) and the
 *     recorded buffers: SPRY_DESC_RUN iff meta_len + len <= cap and
 *     [off, off + cap) lies inside one recorded buffer (a 0-byte range:
 *     off inside one);
 *   - with SPRY_DESC_RUN the pointer is the pool base + off, and the
 *     payload range is written and read back (a SIGSEGV if outside the
 *     mapping);
 *   - spry_pool_ptr(off, len) is non-NULL iff [off, off + len) lies in one
 *     recorded buffer;
 *   - spry_pool_free(off, gen) succeeds iff off is a recorded buffer's
 *     start and gen its current gen; then the buffer is taken again and
 *     must come back at the same offset with a new gen.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fn-runtime/desc.h"
#include "spry/spry.h"

#define CHAIN		7
#define FN		3
#define N_REG		8
#define N_LARGE		2
#define N_BUFS		(N_REG + N_LARGE)
#define REG_SIZE	256
#define LARGE_SIZE	1024

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_desc: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static struct spry_pool *pool;
static struct spry_buf bufs[N_BUFS];
static uint8_t *base0;		/* spry_pool_ptr(bufs[0].off) - bufs[0].off */

static void setup(void)
{
	struct spry_pool_opts o = {
		.buf_size = REG_SIZE, .n_bufs = N_REG,
		.large_size = LARGE_SIZE, .n_large = N_LARGE,
		.uid = getuid(), .gid = getgid(), .no_huge = 1,
	};
	struct spry_pool_stats st;
	struct spry_buf extra;
	int i;

	pool = spry_pool_create(NULL, "fuzz_desc", &o);
	check(pool);
	for (i = 0; i < N_BUFS; i++) {
		check(!spry_pool_alloc(pool, i < N_REG ? 1 : REG_SIZE + 1,
				       1000 + i, &bufs[i]));
		check(bufs[i].cap == (i < N_REG ? REG_SIZE : LARGE_SIZE));
		check(bufs[i].gen & 1);
	}
	check(spry_pool_alloc(pool, 1, 1, &extra) == -ENOSPC);
	check(!spry_pool_stats(pool, &st) && !st.n_free && !st.n_large_free);
	base0 = (uint8_t *)spry_pool_ptr(pool, bufs[0].off, 0);
	check(base0);
	base0 -= bufs[0].off;
}

/* Index of the recorded buffer holding [off, off + len), or -1. */
static int holder(uint64_t off, uint64_t len)
{
	int i;

	for (i = 0; i < N_BUFS; i++) {
		uint64_t s = bufs[i].off, e = s + bufs[i].cap;

		if (off >= s && off < e && len <= e - off)
			return i;
	}
	return -1;
}

static enum spry_desc_verdict expect(const struct spry_desc *d)
{
	bool ours = d->version == SPRY_DESC_VERSION && d->chain == CHAIN &&
		    !(d->flags & ~(SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_STICKY |
				   SPRY_DF_FAN));
	bool call = d->flags & SPRY_DF_CALL, reply = d->flags & SPRY_DF_REPLY;

	if (ours && reply && !call)
		return SPRY_DESC_LATE_REPLY;
	if (call && !reply && d->fn != FN)
		return SPRY_DESC_DROP;
	if (!ours || reply)
		return SPRY_DESC_FOREIGN;
	if (d->status != SPRY_ST_OK)
		return SPRY_DESC_PASS;
	if ((uint64_t)d->meta_len + d->len > d->cap || holder(d->off, d->cap) < 0)
		return SPRY_DESC_BAD_BOUNDS;
	return SPRY_DESC_RUN;
}

/* The mailboxes' judgement (spry_mail_check()), from the same rules. */
static enum spry_mail_verdict expect_mail(const struct spry_desc *d)
{
	if (!(d->flags & SPRY_DF_MAIL))
		return SPRY_MAIL_NONE;
	if (d->version != SPRY_DESC_VERSION || d->chain != CHAIN ||
	    (d->flags & ~(SPRY_DF_MAIL | SPRY_DF_REPLY)))
		return SPRY_MAIL_FOREIGN;
	if (d->flags & SPRY_DF_REPLY)
		return SPRY_MAIL_ANSWER;
	if (d->len > d->cap || holder(d->off, d->cap) < 0)
		return SPRY_MAIL_BAD_BUF;
	return d->hop >= SPRY_MAIL_BOXES ? SPRY_MAIL_BAD_BOX : SPRY_MAIL_TAKE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum spry_mail_verdict mv;
	enum spry_desc_verdict v;
	struct spry_desc d;
	void *p = NULL;
	uint8_t *pp;
	int i, ret;

	if (!pool)
		setup();
	memset(&d, 0, sizeof(d));
	memcpy(&d, data, size < sizeof(d) ? size : sizeof(d));
	if (size > sizeof(d)) {
		uint8_t f = data[64];
		const struct spry_buf *b = &bufs[(size > 65 ? data[65] : 0) % N_BUFS];

		if (f & 1)
			d.off = b->off + (int64_t)(int16_t)(d.off & 0xffff);
		if (f & 2)
			d.cap = b->cap - (d.cap & 0xff);
		if (f & 4)
			d.gen = b->gen;
		if (f & 8) {
			d.version = SPRY_DESC_VERSION;
			d.chain = CHAIN;
			d.flags &= SPRY_DF_STICKY;
			d.status = SPRY_ST_OK;
		}
		if (f & 16) {
			d.version = SPRY_DESC_VERSION;
			d.chain = CHAIN;
			d.flags = SPRY_DF_MAIL | (f & 32 ? SPRY_DF_REPLY : 0);
		}
	}

	/* a mail: the payload range is inside one buffer when it is taken */
	mv = spry_mail_check(&d, CHAIN, pool);
	check(mv == expect_mail(&d));
	if (mv == SPRY_MAIL_TAKE || mv == SPRY_MAIL_BAD_BOX) {
		pp = spry_pool_ptr(pool, d.off, d.len);
		check(pp == base0 + d.off);
		if (d.len)
			(void)*(volatile uint8_t *)(pp + d.len - 1);
	}

	v = spry_desc_check(&d, CHAIN, FN, pool, &p);
	if (v != expect(&d)) {
		fprintf(stderr, "fuzz_desc: verdict %d, expected %d (off %#llx cap %u meta %u len %u)\n",
			v, expect(&d), (unsigned long long)d.off, d.cap,
			d.meta_len, d.len);
		abort();
	}
	if (v == SPRY_DESC_RUN) {
		i = holder(d.off, d.cap);
		check(i >= 0);
		check(p == base0 + d.off);
		check(d.meta_len + (uint64_t)d.len <= d.cap);
		/* the payload range: inside bufs[i] */
		check(d.off + d.meta_len + d.len <= bufs[i].off + bufs[i].cap);
		pp = (uint8_t *)p + d.meta_len;
		memset(pp, 0x5a, d.len);
		if (d.len)
			check(pp[0] == 0x5a && pp[d.len - 1] == 0x5a);
	}

	/* the raw bounds check */
	p = spry_pool_ptr(pool, d.off, d.len);
	check((p != NULL) == (holder(d.off, d.len) >= 0));
	if (p)
		check(p == base0 + d.off);
	p = spry_pool_ptr(pool, d.off, d.key);
	check((p != NULL) == (holder(d.off, d.key) >= 0));

	/* the free check: only the exact (start, gen) of a buffer frees it */
	ret = spry_pool_free(pool, d.off, d.gen);
	check(ret == 0 || ret == -ESTALE || ret == -EINVAL);
	for (i = 0; i < N_BUFS; i++)
		if (bufs[i].off == d.off && bufs[i].gen == d.gen)
			break;
	check((ret == 0) == (i < N_BUFS));
	if (!ret) {
		struct spry_buf nb;
		uint32_t old = bufs[i].gen;

		check(spry_pool_free(pool, d.off, d.gen) == -ESTALE);
		check(!spry_pool_alloc(pool, i < N_REG ? 1 : REG_SIZE + 1,
				       1000 + i, &nb));
		check(nb.off == bufs[i].off && nb.cap == bufs[i].cap);
		check(nb.gen != old && (nb.gen & 1));
		bufs[i] = nb;
	}
	return 0;
}
