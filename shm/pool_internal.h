/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The pool's shared layout (docs/DESIGN.md "Pool").  Internal to shm/ and
 * its selftest: functions only see offsets and spry_pool_ptr().
 *
 *   [0, 4096)                 struct spry_pool_hdr
 *   [meta_off, +16 * n)       struct spry_pool_meta, one per buffer
 *                             (regular buffers first, then large ones)
 *   [data_off, size)          the buffers: n_bufs x buf_size, then
 *                             n_large x large_size; data_off is page
 *                             aligned, sizes are multiples of 64
 *
 * Reserved buffers: the first cls[0].reserved regular buffers (a
 * contiguous, page-aligned run at data_off) have a free list of their own,
 * fl_res.  spry_pool_alloc() never takes them; spry_pool_alloc_reserved()
 * does (spryd: AF_XDP frames, the run is the socket's UMEM).  Free and
 * reclaim put every buffer back on the list it belongs to.
 *
 * Buffer index i is global: 0 .. n_bufs-1 regular, n_bufs .. n_bufs+n_large-1
 * large.  Free-list links and heads hold index + 1 (0 = end of list).
 *
 * A buffer's gen is even while it is free and odd while it is allocated:
 * alloc stores gen + 1 (odd, handed to the owner), free CASes gen -> gen + 1
 * (even), so of several concurrent frees (free, reclaim, reclaim_if in any
 * process) exactly one wins.
 *
 * Everything that is not an atomic is written once by spry_pool_create()
 * before the magic, and is copied into the process's struct spry_pool
 * after validation by every attach: a hostile process changing the header
 * afterwards cannot move another process's bounds.
 */
#ifndef SPRY_SHM_POOL_INTERNAL_H
#define SPRY_SHM_POOL_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#define SPRY_POOL_HDR_SIZE	4096u
#define SPRY_POOL_DATA_ALIGN	4096u
#define SPRY_POOL_BUF_ALIGN	64u
#define SPRY_POOL_N_CLASSES	2	/* 0 regular, 1 large */

/* Free-list head: {ABA counter:32 | index + 1:32}. */
#define SPRY_POOL_HEAD(cnt, idx1)	(((uint64_t)(cnt) << 32) | (uint32_t)(idx1))
#define SPRY_POOL_HEAD_CNT(h)		((uint32_t)((h) >> 32))
#define SPRY_POOL_HEAD_IDX1(h)		((uint32_t)(h))

struct spry_pool_class_hdr {
	uint32_t	size;		/* bytes per buffer (multiple of 64) */
	uint32_t	n;		/* buffers in the class */
	uint32_t	first;		/* global index of its first buffer */
	uint32_t	reserved;	/* class 0: leading buffers on fl_res; else 0 */
	uint64_t	off;		/* offset of its first buffer */
};
_Static_assert(sizeof(struct spry_pool_class_hdr) == 24, "class hdr");

struct spry_pool_freelist {
	_Atomic uint64_t	head;	/* SPRY_POOL_HEAD() */
	_Atomic uint32_t	n_free;
	uint32_t		pad[13];
};
_Static_assert(sizeof(struct spry_pool_freelist) == 64, "freelist");

struct spry_pool_hdr {
	_Atomic uint64_t	magic;	/* SPRY_POOL_MAGIC, written last */
	uint32_t	version;	/* SPRY_POOL_VERSION */
	uint32_t	hdr_size;	/* SPRY_POOL_HDR_SIZE */
	uint64_t	size;		/* bytes the layout uses (<= file size) */
	uint64_t	meta_off;
	uint64_t	data_off;
	uint32_t	meta_size;	/* sizeof(struct spry_pool_meta) */
	uint32_t	backing;	/* enum spry_pool_backing */
	struct spry_pool_class_hdr cls[SPRY_POOL_N_CLASSES];
	uint8_t		pad0[32];
	/* one cache line each */
	struct spry_pool_freelist fl[SPRY_POOL_N_CLASSES];
	struct spry_pool_freelist fl_res;	/* reserved regular buffers */
};
_Static_assert(offsetof(struct spry_pool_hdr, fl) == 128, "hdr layout");
_Static_assert(sizeof(struct spry_pool_hdr) <= SPRY_POOL_HDR_SIZE, "hdr size");

struct spry_pool_meta {
	_Atomic uint32_t	next;	/* index + 1 of the next free buffer */
	_Atomic uint32_t	gen;	/* even: free, odd: allocated */
	_Atomic uint64_t	tag;	/* owning request id, 0 = free */
};
_Static_assert(sizeof(struct spry_pool_meta) == 16, "meta size");

/* Where everything is, computed from the geometry alone. */
struct spry_pool_layout {
	uint32_t	size[SPRY_POOL_N_CLASSES];
	uint32_t	n[SPRY_POOL_N_CLASSES];
	uint64_t	meta_off;
	uint64_t	data_off;
	uint64_t	cls_off[SPRY_POOL_N_CLASSES];
	uint64_t	size_total;
};

/*
 * Validate a geometry (sizes already rounded, large_size 0 iff n_large 0)
 * and compute its layout.  0 or -EINVAL.  Used by create and by attach
 * (which compares the header against it).
 */
int spry_pool__layout(uint32_t buf_size, uint32_t n_bufs, uint32_t large_size,
		      uint32_t n_large, struct spry_pool_layout *l);

#endif /* SPRY_SHM_POOL_INTERNAL_H */
