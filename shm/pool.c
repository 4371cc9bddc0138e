// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * spry's buffer pool: one shared mapping per chain, buffers named by
 * offsets, lock-free alloc/free from any process that maps it.  Layout and
 * invariants: shm/pool_internal.h; design: docs/DESIGN.md "Pool".
 *
 * Decisions worth knowing:
 *   - opts->no_huge = 1 means no hugepages at all: a plain memfd.
 *   - memfds are sealed against shrinking and growing (F_SEAL_SHRINK |
 *     F_SEAL_GROW), so a process handed the fd cannot make the others fault
 *     with SIGBUS by truncating it.  A hugetlbfs file cannot be sealed:
 *     its mode (0600, the chain's user) is the protection.
 *   - spry_pool_ptr() accepts len 0 for any offset inside a buffer.
 *   - spry_pool_unlink() of a pool without a path (memfd, or attached by
 *     fd) is -ENOENT.
 *   - alloc never falls back from the regular class to the large one.
 *   - alloc on a damaged free list (an index out of its class, or a
 *     buffer on the list that is allocated) fails with -EUCLEAN after a
 *     bounded number of steps; -EAGAIN after an absurd number of lost CAS
 *     races (no legitimate load gets there).
 *   - a process killed between taking a buffer off a list and marking it
 *     (or between marking it free and pushing it) leaks that buffer: the
 *     windows are a few instructions; nothing can tell it from a live one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "spry/spry.h"
#include "shm/pool_internal.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB	(21U << 26)
#endif

#define HUGE_2MB		(2u << 20)
#define SMALL_PAGE		4096u
/* CAS attempts an allocation may lose before it gives up (-EAGAIN). */
#define POOL_MAX_CAS_RETRIES	(1u << 22)
/* Attempts to free one buffer in reclaim while its owner races us. */
#define POOL_RECLAIM_RETRIES	16

struct pool_class {
	uint64_t	off;		/* first buffer */
	uint64_t	end;		/* one past the last buffer */
	uint32_t	size;
	uint32_t	n;
	uint32_t	first;		/* global index of the first buffer */
};

/* Free lists: regular (not reserved), large, reserved regular. */
enum { LIST_REG = 0, LIST_LARGE = 1, LIST_RES = 2, N_LISTS = 3 };

struct spry_pool {
	uint8_t			*base;
	size_t			map_size;
	int			fd;
	uint32_t		backing;
	char			*path;		/* hugetlbfs file, else NULL */
	struct spry_pool_hdr	*hdr;
	struct spry_pool_meta	*meta;
	uint32_t		n_total;
	uint32_t		n_reserved;
	struct pool_class	cls[SPRY_POOL_N_CLASSES];
	struct pool_class	lst[N_LISTS];	/* index range of each list */
	struct spry_pool_freelist *fl[N_LISTS];
};

static int round_up_u64(uint64_t v, uint64_t align, uint64_t *out)
{
	if (v > UINT64_MAX - (align - 1))
		return -EOVERFLOW;
	*out = (v + align - 1) / align * align;
	return 0;
}

int spry_pool__layout(uint32_t buf_size, uint32_t n_bufs, uint32_t large_size,
		      uint32_t n_large, struct spry_pool_layout *l)
{
	uint64_t meta_bytes, data, bytes;
	int c;

	if (buf_size < SPRY_POOL_MIN_BUF || buf_size > SPRY_POOL_MAX_BUF ||
	    buf_size % SPRY_POOL_BUF_ALIGN)
		return -EINVAL;
	if (n_bufs < 1 || n_bufs > SPRY_POOL_MAX_BUFS)
		return -EINVAL;
	if (n_large > SPRY_POOL_MAX_BUFS)
		return -EINVAL;
	if (n_large) {
		if (large_size <= buf_size || large_size > SPRY_POOL_MAX_BUF ||
		    large_size % SPRY_POOL_BUF_ALIGN)
			return -EINVAL;
	} else if (large_size) {
		return -EINVAL;
	}

	memset(l, 0, sizeof(*l));
	l->size[0] = buf_size;
	l->n[0] = n_bufs;
	l->size[1] = large_size;
	l->n[1] = n_large;
	l->meta_off = SPRY_POOL_HDR_SIZE;
	/* n_bufs + n_large <= 2^21: none of this can overflow, but check. */
	if (__builtin_mul_overflow((uint64_t)n_bufs + n_large,
				   (uint64_t)sizeof(struct spry_pool_meta), &meta_bytes) ||
	    __builtin_add_overflow(l->meta_off, meta_bytes, &data) ||
	    round_up_u64(data, SPRY_POOL_DATA_ALIGN, &data))
		return -EINVAL;
	l->data_off = data;
	for (c = 0; c < SPRY_POOL_N_CLASSES; c++) {
		l->cls_off[c] = data;
		if (__builtin_mul_overflow((uint64_t)l->size[c], (uint64_t)l->n[c], &bytes) ||
		    __builtin_add_overflow(data, bytes, &data))
			return -EINVAL;
	}
	if (data > (uint64_t)SIZE_MAX || data > (uint64_t)INT64_MAX)
		return -EINVAL;
	l->size_total = data;
	return 0;
}

static int opts_layout(const struct spry_pool_opts *opts, struct spry_pool_layout *l)
{
	uint64_t bs, ls = 0;

	if (!opts)
		return -EINVAL;
	if (opts->buf_size < SPRY_POOL_MIN_BUF || opts->buf_size > SPRY_POOL_MAX_BUF)
		return -EINVAL;
	if (round_up_u64(opts->buf_size, SPRY_POOL_BUF_ALIGN, &bs))
		return -EINVAL;
	if (opts->n_large) {
		if (opts->large_size > SPRY_POOL_MAX_BUF)
			return -EINVAL;
		if (round_up_u64(opts->large_size, SPRY_POOL_BUF_ALIGN, &ls))
			return -EINVAL;
	}
	/* bs, ls <= SPRY_POOL_MAX_BUF (a multiple of 64): they fit 32 bits. */
	return spry_pool__layout((uint32_t)bs, opts->n_bufs, (uint32_t)ls,
				 opts->n_large, l);
}

/*
 * Map @fd (@file_size bytes), check its header and fill @pool.  Everything
 * the bounds checks use is copied out of the shared header here, once.
 */
static int pool_setup(struct spry_pool *pool, int fd, uint64_t file_size)
{
	struct spry_pool_layout l;
	struct spry_pool_hdr *h;
	uint32_t c, n, backing, reserved;
	void *base;
	int err;

	if (file_size < SPRY_POOL_HDR_SIZE || file_size > (uint64_t)SIZE_MAX)
		return -EINVAL;
	base = mmap(NULL, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	h = base;

	err = -EBADMSG;
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != SPRY_POOL_MAGIC)
		goto err_unmap;
	if (h->version != SPRY_POOL_VERSION || h->hdr_size != SPRY_POOL_HDR_SIZE ||
	    h->meta_size != sizeof(struct spry_pool_meta))
		goto err_unmap;
	backing = h->backing;
	if (backing < SPRY_POOL_HUGETLBFS || backing > SPRY_POOL_MEMFD)
		goto err_unmap;
	/* Read each geometry field once; recompute the layout from them. */
	if (spry_pool__layout(h->cls[0].size, h->cls[0].n, h->cls[1].size,
			      h->cls[1].n, &l))
		goto err_unmap;
	if (h->cls[0].size != l.size[0] || h->cls[0].n != l.n[0] ||
	    h->cls[1].size != l.size[1] || h->cls[1].n != l.n[1])
		goto err_unmap;	/* changed under us */
	if (h->meta_off != l.meta_off || h->data_off != l.data_off ||
	    h->size != l.size_total || l.size_total > file_size)
		goto err_unmap;
	reserved = h->cls[0].reserved;
	if (reserved >= l.n[0] || h->cls[1].reserved)
		goto err_unmap;
	for (c = 0, n = 0; c < SPRY_POOL_N_CLASSES; c++) {
		if (h->cls[c].off != l.cls_off[c] || h->cls[c].first != n)
			goto err_unmap;
		pool->cls[c].off = l.cls_off[c];
		pool->cls[c].size = l.size[c];
		pool->cls[c].n = l.n[c];
		pool->cls[c].first = n;
		pool->cls[c].end = l.cls_off[c] + (uint64_t)l.size[c] * l.n[c];
		n += l.n[c];
	}

	pool->base = base;
	pool->map_size = file_size;
	pool->hdr = h;
	pool->meta = (struct spry_pool_meta *)((uint8_t *)base + l.meta_off);
	pool->n_total = n;
	pool->n_reserved = reserved;
	pool->lst[LIST_REG].first = reserved;
	pool->lst[LIST_REG].n = l.n[0] - reserved;
	pool->lst[LIST_LARGE].first = l.n[0];
	pool->lst[LIST_LARGE].n = l.n[1];
	pool->lst[LIST_RES].first = 0;
	pool->lst[LIST_RES].n = reserved;
	pool->fl[LIST_REG] = &h->fl[0];
	pool->fl[LIST_LARGE] = &h->fl[1];
	pool->fl[LIST_RES] = &h->fl_res;
	pool->backing = backing;
	return 0;

err_unmap:
	munmap(base, file_size);
	return err;
}

static struct spry_pool *pool_alloc_struct(void)
{
	struct spry_pool *pool = calloc(1, sizeof(*pool));

	if (pool)
		pool->fd = -1;
	return pool;
}

SPRY_API struct spry_pool *spry_pool_attach(int fd)
{
	struct spry_pool *pool;
	struct stat st;
	int err;

	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	if (fstat(fd, &st))
		return NULL;
	if (!S_ISREG(st.st_mode) || st.st_size < 0) {
		errno = EINVAL;
		return NULL;
	}
	pool = pool_alloc_struct();
	if (!pool)
		return NULL;
	pool->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (pool->fd < 0) {
		err = -errno;
		goto err_free;
	}
	err = pool_setup(pool, pool->fd, (uint64_t)st.st_size);
	if (err)
		goto err_close;
	return pool;

err_close:
	close(pool->fd);
err_free:
	free(pool);
	errno = -err;
	return NULL;
}

SPRY_API struct spry_pool *spry_pool_open(const char *path)
{
	struct spry_pool *pool;
	int fd, err;

	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	pool = spry_pool_attach(fd);
	if (!pool) {
		err = errno;
		goto err_close;
	}
	pool->path = strdup(path);
	if (!pool->path) {
		err = ENOMEM;
		spry_pool_close(pool);
		goto err_close;
	}
	close(fd);
	return pool;

err_close:
	close(fd);
	errno = err;
	return NULL;
}

static bool name_ok(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	/* 249: memfd_create's limit, below NAME_MAX. */
	return len > 0 && len <= 249 && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..");
}

/* Errors that mean "no hugepages for this": fall back to the next backing. */
static bool huge_fallback_err(int err)
{
	return err == ENOMEM || err == ENOSPC || err == EINVAL;
}

static int fix_owner(int fd, uid_t uid, gid_t gid)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if ((uid == (uid_t)-1 || st.st_uid == uid) &&
	    (gid == (gid_t)-1 || st.st_gid == gid))
		return 0;
	return fchown(fd, uid, gid) ? -errno : 0;
}

/*
 * Size and map @fd.  On success *@base and *@len are set.  Returns 0,
 * 1 when the failure is a lack of hugepages (caller falls back), or
 * -errno.
 */
static int size_and_map(int fd, uint64_t size, uint64_t page, bool huge,
			void **base, uint64_t *len)
{
	uint64_t l;
	void *p;
	int err;

	if (round_up_u64(size, page, &l) || l > (uint64_t)INT64_MAX || l > (uint64_t)SIZE_MAX)
		return -EINVAL;
	if (ftruncate(fd, (off_t)l)) {
		err = errno;
		return huge && huge_fallback_err(err) ? 1 : -err;
	}
	p = mmap(NULL, l, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		return huge && huge_fallback_err(err) ? 1 : -err;
	}
	*base = p;
	*len = l;
	return 0;
}

/* Try @dir/@name on hugetlbfs.  0, 1 (fall back) or -errno. */
static int create_hugetlbfs(const char *dir, const char *name, const struct spry_pool_opts *opts,
			    uint64_t size, int *fdp, char **pathp, void **base, uint64_t *len)
{
	struct statfs sfs;
	char *path;
	int fd, err;

	if (statfs(dir, &sfs) || sfs.f_type != HUGETLBFS_MAGIC || sfs.f_bsize <= 0)
		return 1;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (strlen(path) >= PATH_MAX) {
		err = -ENAMETOOLONG;
		goto err_free;
	}
	fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto err_free;
	}
	/* The umask may have narrowed it; the owner needs exactly 0600. */
	if (fchmod(fd, 0600)) {
		err = -errno;
		goto err_unlink;
	}
	err = fix_owner(fd, opts->uid, opts->gid);
	if (err)
		goto err_unlink;
	err = size_and_map(fd, size, (uint64_t)sfs.f_bsize, true, base, len);
	if (err)
		goto err_unlink;
	*fdp = fd;
	*pathp = path;
	return 0;

err_unlink:
	unlink(path);
	close(fd);
err_free:
	free(path);
	return err;
}

/* A memfd, hugetlb or not.  0, 1 (fall back) or -errno. */
static int create_memfd(const char *name, const struct spry_pool_opts *opts, uint64_t size,
			bool huge, int *fdp, void **base, uint64_t *len)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd, err;

	if (huge)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	fd = memfd_create(name, flags);
	if (fd < 0) {
		err = errno;
		return huge && huge_fallback_err(err) ? 1 : -err;
	}
	err = fix_owner(fd, opts->uid, opts->gid);
	if (err)
		goto err_close;
	err = size_and_map(fd, size, huge ? HUGE_2MB : SMALL_PAGE, huge, base, len);
	if (err)
		goto err_close;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		err = -errno;
		munmap(*base, *len);
		goto err_close;
	}
	*fdp = fd;
	return 0;

err_close:
	close(fd);
	return err;
}

/* Link buffers [first, first + n) into @fl, lowest offsets first. */
static void list_init(struct spry_pool_meta *meta, struct spry_pool_freelist *fl,
		      uint32_t first, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint32_t idx = first + i;

		atomic_store_explicit(&meta[idx].next, i + 1 < n ? idx + 2 : 0,
				      memory_order_relaxed);
		atomic_store_explicit(&meta[idx].gen, 0, memory_order_relaxed);
		atomic_store_explicit(&meta[idx].tag, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&fl->head, SPRY_POOL_HEAD(0, n ? first + 1 : 0),
			      memory_order_relaxed);
	atomic_store_explicit(&fl->n_free, n, memory_order_relaxed);
}

static void pool_init(void *base, const struct spry_pool_layout *l, uint32_t backing,
		      uint32_t reserved)
{
	struct spry_pool_hdr *h = base;
	struct spry_pool_meta *meta;
	uint32_t c, first = 0;

	/* Every gen starts at 0 (free), every tag at 0. */
	h->version = SPRY_POOL_VERSION;
	h->hdr_size = SPRY_POOL_HDR_SIZE;
	h->size = l->size_total;
	h->meta_off = l->meta_off;
	h->data_off = l->data_off;
	h->meta_size = sizeof(struct spry_pool_meta);
	h->backing = backing;
	meta = (struct spry_pool_meta *)((uint8_t *)base + l->meta_off);
	for (c = 0; c < SPRY_POOL_N_CLASSES; c++) {
		h->cls[c].size = l->size[c];
		h->cls[c].n = l->n[c];
		h->cls[c].first = first;
		h->cls[c].off = l->cls_off[c];
		h->cls[c].reserved = c == 0 ? reserved : 0;
		/* Buffer k links to k + 1: the lowest offsets go out first. */
		if (c == 0) {
			list_init(meta, &h->fl_res, first, reserved);
			list_init(meta, &h->fl[c], first + reserved, l->n[c] - reserved);
		} else {
			list_init(meta, &h->fl[c], first, l->n[c]);
		}
		first += l->n[c];
	}
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&h->magic, SPRY_POOL_MAGIC, memory_order_release);
}

SPRY_API struct spry_pool *spry_pool_create(const char *dir, const char *name,
					    const struct spry_pool_opts *opts)
{
	struct spry_pool_layout l;
	struct spry_pool *pool;
	uint32_t backing = 0;
	char *path = NULL;
	void *base = NULL;
	uint64_t len = 0;
	int fd = -1, err;

	if (!name_ok(name)) {
		errno = EINVAL;
		return NULL;
	}
	err = opts_layout(opts, &l);
	if (err)
		goto err_out;
	err = -EINVAL;
	if (opts->n_reserved >= l.n[0])
		goto err_out;

	err = 1;
	if (dir && !opts->no_huge) {
		err = create_hugetlbfs(dir, name, opts, l.size_total, &fd, &path, &base, &len);
		if (err < 0)
			goto err_out;
		if (!err)
			backing = SPRY_POOL_HUGETLBFS;
	}
	if (err && !opts->no_huge) {
		err = create_memfd(name, opts, l.size_total, true, &fd, &base, &len);
		if (err < 0)
			goto err_out;
		if (!err)
			backing = SPRY_POOL_MEMFD_HUGE;
	}
	if (err) {
		err = create_memfd(name, opts, l.size_total, false, &fd, &base, &len);
		if (err)
			goto err_out;	/* no fallback from here: 1 cannot happen */
		backing = SPRY_POOL_MEMFD;
	}

	pool_init(base, &l, backing, opts->n_reserved);
	munmap(base, len);

	pool = pool_alloc_struct();
	if (!pool) {
		err = -ENOMEM;
		goto err_close;
	}
	pool->fd = fd;
	pool->path = path;
	err = pool_setup(pool, fd, len);
	if (err) {
		free(pool);
		goto err_close;
	}
	return pool;

err_close:
	if (path)
		unlink(path);
	free(path);
	close(fd);
err_out:
	errno = err < 0 ? -err : EINVAL;
	return NULL;
}

SPRY_API void spry_pool_close(struct spry_pool *pool)
{
	if (!pool)
		return;
	munmap(pool->base, pool->map_size);
	close(pool->fd);
	free(pool->path);
	free(pool);
}

SPRY_API int spry_pool_unlink(struct spry_pool *pool)
{
	if (!pool)
		return -EINVAL;
	if (!pool->path)
		return -ENOENT;
	if (unlink(pool->path))
		return -errno;
	free(pool->path);
	pool->path = NULL;
	return 0;
}

SPRY_API int spry_pool_fd(const struct spry_pool *pool)
{
	return pool ? pool->fd : -EINVAL;
}

SPRY_API uint64_t spry_pool_size(const struct spry_pool *pool)
{
	return pool ? pool->map_size : 0;
}

static inline bool idx_in_class(const struct pool_class *pc, uint32_t idx1)
{
	return idx1 > pc->first && idx1 - 1 - pc->first < pc->n;
}

/* The free list buffer @idx of class @c belongs to. */
static int list_of(const struct spry_pool *pool, int c, uint32_t idx)
{
	if (c == 1)
		return LIST_LARGE;
	return idx < pool->n_reserved ? LIST_RES : LIST_REG;
}

/* Put buffer @idx (already marked free) back on list @c. */
static void pool_push(struct spry_pool *pool, int c, uint32_t idx)
{
	struct spry_pool_freelist *fl = pool->fl[c];
	uint64_t old, new;

	old = atomic_load_explicit(&fl->head, memory_order_relaxed);
	do {
		/*
		 * A damaged head is not propagated: the list restarts here
		 * (what it held is lost, but nothing goes out of bounds).
		 */
		uint32_t next = SPRY_POOL_HEAD_IDX1(old);

		if (next && !idx_in_class(&pool->lst[c], next))
			next = 0;
		atomic_store_explicit(&pool->meta[idx].next, next, memory_order_relaxed);
		new = SPRY_POOL_HEAD(SPRY_POOL_HEAD_CNT(old) + 1, idx + 1);
	} while (!atomic_compare_exchange_weak_explicit(&fl->head, &old, new,
							memory_order_release,
							memory_order_relaxed));
	atomic_fetch_add_explicit(&fl->n_free, 1, memory_order_relaxed);
}

/* Take a buffer off list @c: its index, or -errno. */
static int64_t pool_pop(struct spry_pool *pool, int c)
{
	const struct pool_class *pc = &pool->lst[c];
	struct spry_pool_freelist *fl = pool->fl[c];
	uint32_t lost = 0, dropped = 0;
	uint64_t old, new;

	old = atomic_load_explicit(&fl->head, memory_order_acquire);
	for (;;) {
		uint32_t idx1 = SPRY_POOL_HEAD_IDX1(old), next, idx;

		if (!idx1)
			return -ENOSPC;
		if (!idx_in_class(pc, idx1)) {
			/* Damaged head: only trust it if it is stable. */
			new = atomic_load_explicit(&fl->head, memory_order_acquire);
			if (new == old)
				return -EUCLEAN;
			old = new;
			goto retry;
		}
		idx = idx1 - 1;
		next = atomic_load_explicit(&pool->meta[idx].next, memory_order_relaxed);
		if (next && !idx_in_class(pc, next)) {
			new = atomic_load_explicit(&fl->head, memory_order_acquire);
			if (new == old)
				return -EUCLEAN;
			old = new;
			goto retry;
		}
		new = SPRY_POOL_HEAD(SPRY_POOL_HEAD_CNT(old) + 1, next);
		if (atomic_compare_exchange_weak_explicit(&fl->head, &old, new,
							  memory_order_acquire,
							  memory_order_acquire)) {
			atomic_fetch_sub_explicit(&fl->n_free, 1, memory_order_relaxed);
			/* Ours now; a free buffer has an even gen. */
			if (!(atomic_load_explicit(&pool->meta[idx].gen,
						   memory_order_acquire) & 1))
				return idx;
			/* Allocated yet on the list: damaged, leave it be. */
			if (++dropped > pc->n)
				return -EUCLEAN;
			old = atomic_load_explicit(&fl->head, memory_order_acquire);
			continue;
		}
retry:
		if (++lost > POOL_MAX_CAS_RETRIES)
			return -EAGAIN;
	}
}

SPRY_API int spry_pool_alloc(struct spry_pool *pool, uint32_t min_size,
			     uint64_t tag, struct spry_buf *buf)
{
	struct spry_pool_meta *m;
	uint32_t gen;
	int64_t idx;
	int c;

	if (!pool || !buf || !tag)
		return -EINVAL;
	if (min_size <= pool->cls[0].size)
		c = 0;
	else if (pool->cls[1].n && min_size <= pool->cls[1].size)
		c = 1;
	else
		return -EMSGSIZE;

	idx = pool_pop(pool, c == 0 ? LIST_REG : LIST_LARGE);
	if (idx < 0)
		return (int)idx;
	m = &pool->meta[idx];
	/* Tag before gen: whoever sees the odd gen sees this tag. */
	atomic_store_explicit(&m->tag, tag, memory_order_relaxed);
	gen = atomic_load_explicit(&m->gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&m->gen, gen, memory_order_release);

	buf->off = pool->cls[c].off + (uint64_t)(idx - pool->cls[c].first) * pool->cls[c].size;
	buf->cap = pool->cls[c].size;
	buf->gen = gen;
	return 0;
}

/* Class and global index of the buffer starting exactly at @off. */
static int buf_at(const struct spry_pool *pool, uint64_t off, int *cp, uint32_t *idxp)
{
	int c;

	for (c = 0; c < SPRY_POOL_N_CLASSES; c++) {
		const struct pool_class *pc = &pool->cls[c];
		uint64_t rel;

		if (!pc->n || off < pc->off || off >= pc->end)
			continue;
		rel = off - pc->off;
		if (rel % pc->size)
			return -EINVAL;
		*cp = c;
		*idxp = pc->first + (uint32_t)(rel / pc->size);
		return 0;
	}
	return -EINVAL;
}

/*
 * Free buffer @idx if its gen is still @gen (odd).  Exactly one of any
 * number of concurrent callers with the same @gen wins.
 */
static int free_idx(struct spry_pool *pool, int c, uint32_t idx, uint32_t gen)
{
	struct spry_pool_meta *m = &pool->meta[idx];

	if (!(gen & 1))
		return -ESTALE;
	if (!atomic_compare_exchange_strong_explicit(&m->gen, &gen, gen + 1,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return -ESTALE;
	atomic_store_explicit(&m->tag, 0, memory_order_relaxed);
	pool_push(pool, list_of(pool, c, idx), idx);
	return 0;
}

SPRY_API int spry_pool_free(struct spry_pool *pool, uint64_t off, uint32_t gen)
{
	uint32_t idx;
	int c, err;

	if (!pool)
		return -EINVAL;
	err = buf_at(pool, off, &c, &idx);
	if (err)
		return err;
	return free_idx(pool, c, idx, gen);
}

/*
 * Free every allocated buffer whose tag @match accepts.  A buffer that is
 * freed and taken again while we look at it is retried a few times.
 */
static int reclaim(struct spry_pool *pool, bool (*match)(uint64_t tag, const void *arg),
		   const void *arg)
{
	int c, count = 0;
	uint32_t i;

	for (c = 0; c < SPRY_POOL_N_CLASSES; c++) {
		const struct pool_class *pc = &pool->cls[c];

		for (i = 0; i < pc->n; i++) {
			uint32_t idx = pc->first + i, tries;
			struct spry_pool_meta *m = &pool->meta[idx];

			for (tries = 0; tries < POOL_RECLAIM_RETRIES; tries++) {
				uint32_t gen = atomic_load_explicit(&m->gen, memory_order_acquire);
				uint64_t tag;

				if (!(gen & 1))
					break;
				tag = atomic_load_explicit(&m->tag, memory_order_relaxed);
				if (!tag || !match(tag, arg))
					break;
				if (!free_idx(pool, c, idx, gen)) {
					count++;
					break;
				}
			}
		}
	}
	return count;
}

static bool match_tag(uint64_t tag, const void *arg)
{
	return tag == *(const uint64_t *)arg;
}

SPRY_API int spry_pool_reclaim(struct spry_pool *pool, uint64_t tag)
{
	if (!pool || !tag)
		return -EINVAL;
	return reclaim(pool, match_tag, &tag);
}

struct live_ctx {
	int	(*is_live)(uint64_t tag, void *ctx);
	void	*ctx;
};

static bool match_dead(uint64_t tag, const void *arg)
{
	const struct live_ctx *lc = arg;

	return !lc->is_live(tag, lc->ctx);
}

SPRY_API int spry_pool_reclaim_if(struct spry_pool *pool,
				  int (*is_live)(uint64_t tag, void *ctx), void *ctx)
{
	struct live_ctx lc = { .is_live = is_live, .ctx = ctx };

	if (!pool || !is_live)
		return -EINVAL;
	return reclaim(pool, match_dead, &lc);
}

SPRY_API void *spry_pool_ptr(const struct spry_pool *pool, uint64_t off, uint64_t len)
{
	int c;

	if (!pool) {
		errno = EINVAL;
		return NULL;
	}
	for (c = 0; c < SPRY_POOL_N_CLASSES; c++) {
		const struct pool_class *pc = &pool->cls[c];
		uint64_t in_buf;

		if (!pc->n || off < pc->off || off >= pc->end)
			continue;
		in_buf = (off - pc->off) % pc->size;
		if (len > pc->size - in_buf)
			break;
		return pool->base + off;
	}
	errno = EFAULT;
	return NULL;
}

SPRY_API int spry_pool_stats(const struct spry_pool *pool, struct spry_pool_stats *st)
{
	uint32_t nf[N_LISTS];
	int c;

	if (!pool || !st)
		return -EINVAL;
	for (c = 0; c < N_LISTS; c++) {
		int32_t v = (int32_t)atomic_load_explicit(&pool->fl[c]->n_free,
							  memory_order_relaxed);

		/* A pop's decrement may land before a push's increment. */
		if (v < 0)
			v = 0;
		nf[c] = (uint32_t)v > pool->lst[c].n ? pool->lst[c].n : (uint32_t)v;
	}
	memset(st, 0, sizeof(*st));
	st->size = pool->map_size;
	st->buf_size = pool->cls[0].size;
	st->n_bufs = pool->cls[0].n;
	st->n_free = nf[LIST_REG] + nf[LIST_RES];
	st->large_size = pool->cls[1].size;
	st->n_large = pool->cls[1].n;
	st->n_large_free = nf[1];
	st->backing = pool->backing;
	st->n_reserved = pool->n_reserved;
	st->n_reserved_free = nf[LIST_RES];
	return 0;
}

SPRY_API int spry_pool_reserved(const struct spry_pool *pool, uint64_t *off,
				uint64_t *len)
{
	if (!pool || !off || !len)
		return -EINVAL;
	*off = pool->cls[0].off;
	*len = (uint64_t)pool->n_reserved * pool->cls[0].size;
	return 0;
}

SPRY_API int spry_pool_alloc_reserved(struct spry_pool *pool, uint64_t tag,
				      struct spry_buf *buf)
{
	struct spry_pool_meta *m;
	uint32_t gen;
	int64_t idx;

	if (!pool || !buf || !tag)
		return -EINVAL;
	if (!pool->n_reserved)
		return -ENOSPC;
	idx = pool_pop(pool, LIST_RES);
	if (idx < 0)
		return (int)idx;
	m = &pool->meta[idx];
	atomic_store_explicit(&m->tag, tag, memory_order_relaxed);
	gen = atomic_load_explicit(&m->gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&m->gen, gen, memory_order_release);
	buf->off = pool->cls[0].off + (uint64_t)(idx - pool->cls[0].first) * pool->cls[0].size;
	buf->cap = pool->cls[0].size;
	buf->gen = gen;
	return 0;
}

SPRY_API int spry_pool_retag(struct spry_pool *pool, uint64_t off, uint32_t gen,
			     uint64_t old_tag, uint64_t new_tag)
{
	struct spry_pool_meta *m;
	uint32_t idx;
	int c, err;

	if (!pool || !new_tag)
		return -EINVAL;
	err = buf_at(pool, off, &c, &idx);
	if (err)
		return err;
	m = &pool->meta[idx];
	if (!(gen & 1) || atomic_load_explicit(&m->gen, memory_order_acquire) != gen)
		return -ESTALE;
	if (!atomic_compare_exchange_strong_explicit(&m->tag, &old_tag, new_tag,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return -ESTALE;
	/* Freed and taken again between the gen check and the CAS? */
	if (atomic_load_explicit(&m->gen, memory_order_acquire) != gen)
		return -ESTALE;
	return 0;
}
