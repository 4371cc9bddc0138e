// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Swap of the process state (docs/STATE.md, "Swap").
 *
 * Out: the store's image [0, top) goes to SWAP_DIR/NAME.swap through
 * SWAP_DIR/.NAME.swap.tmp: a 4 KiB header (magic, version, app tag, swap
 * id, sizes, checksums of the header and of the checksum table), a table
 * of one 64-bit checksum per chunk, then the image, page aligned, chunks
 * of zeros left as holes.  fsync, rename, fsync of the directory; only
 * then is the store's file removed and its memory given back.
 *
 * In (lazy): a new store file gets chunk 0 (the store's header) at once;
 * every other chunk is read, and checked against its checksum, the first
 * time an operation touches it (state_ensure()), or by
 * spry_state_prefetch().  Which chunks are in memory is recorded in the
 * store itself (loaded[], one byte per chunk), with the swap file's path
 * and id: a process killed while waking resumes from the same swap file.
 * The swap file stays after the wake as the last durable copy of the
 * state.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "shm/state_internal.h"

static uint64_t swap_hdr_check(const struct spry_swap_hdr *h)
{
	return state_sum(h, offsetof(struct spry_swap_hdr, hdr_check), SWAP_MAGIC);
}

static int app_check(const char *app)
{
	size_t i, n;

	if (!app || !*app) {
		state_seterr(0, "state: no app tag");
		return -EINVAL;
	}
	n = strlen(app);
	if (n > SPRY_STATE_APP_MAX) {
		state_seterr(0, "state: app tag of %zu bytes (at most %u)", n, SPRY_STATE_APP_MAX);
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		if (app[i] <= ' ' || app[i] > '~' || app[i] == '/') {
			state_seterr(0, "state: app tag '%s': printable bytes, no space or '/'", app);
			return -EINVAL;
		}
	return 0;
}

/* Read exactly @len bytes at @off (zeros past the end of the file). */
static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t i, n = len / 8;

	for (i = 0; i < n; i++)
		if (w[i])
			return false;
	for (i = n * 8; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static inline uint64_t chunk_len(uint64_t image_len, uint32_t cs, uint32_t c)
{
	uint64_t start = (uint64_t)c * cs;

	if (start >= image_len)
		return 0;
	return image_len - start < cs ? image_len - start : cs;
}

/* ------------------------------------------------------------ in */

/* Read and check a swap file's header and checksum table: 0 or -errno. */
static int swap_read_hdr(int fd, const char *name, const char *app,
			 struct spry_swap_hdr *sh, uint64_t **sums_out)
{
	uint8_t page[SWAP_HDR_SIZE];
	uint64_t *sums, need;
	struct stat sb;
	size_t n;
	int err;

	if (fstat(fd, &sb)) {
		err = errno;
		state_seterr(err, "swap file %s", name);
		return -err;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < SWAP_HDR_SIZE) {
		state_seterr(0, "swap file %s: not a swap file (%lld bytes)", name,
			     (long long)sb.st_size);
		return -EBADMSG;
	}
	err = pread_full(fd, page, sizeof(page), 0);
	if (err) {
		state_seterr(-err, "swap file %s", name);
		return err;
	}
	memcpy(sh, page, sizeof(*sh));
	if (sh->magic != SWAP_MAGIC || sh->version != SWAP_VERSION ||
	    sh->hdr_size != SWAP_HDR_SIZE || sh->hdr_check != swap_hdr_check(sh)) {
		state_seterr(0, "swap file %s: not a spry swap file, or a damaged header", name);
		return -EBADMSG;
	}
	if (memchr(sh->app, 0, sizeof(sh->app)) == NULL) {
		state_seterr(0, "swap file %s: damaged app tag", name);
		return -EBADMSG;
	}
	if (app && strcmp(sh->app, app)) {
		state_seterr(0, "swap file %s belongs to app '%.63s', not '%s'", name, sh->app, app);
		return -EACCES;
	}
	/* the geometry must be the one a store of that size has */
	if (sh->state_size < SPRY_STATE_MIN_SIZE || sh->state_size > SPRY_STATE_MAX_SIZE ||
	    sh->state_size % 4096 || sh->image_len < STATE_IDX_OFF ||
	    sh->image_len > sh->state_size || !sh->chunk_size ||
	    sh->chunk_size < STATE_MIN_CHUNK || (sh->chunk_size & (sh->chunk_size - 1)) ||
	    (uint64_t)sh->chunk_size * STATE_MAX_CHUNKS < sh->state_size ||
	    (sh->chunk_size > STATE_MIN_CHUNK &&
	     (uint64_t)sh->chunk_size / 2 * STATE_MAX_CHUNKS >= sh->state_size) ||
	    sh->nchunks != (sh->state_size + sh->chunk_size - 1) / sh->chunk_size ||
	    sh->sums_off != SWAP_HDR_SIZE ||
	    sh->data_off != ((SWAP_HDR_SIZE + (uint64_t)sh->nchunks * 8 + 4095) & ~4095ULL)) {
		state_seterr(0, "swap file %s: inconsistent sizes", name);
		return -EBADMSG;
	}
	need = sh->data_off + sh->image_len;
	if ((uint64_t)sb.st_size != need) {
		state_seterr(0, "swap file %s: %lld bytes, its header says %llu (truncated?)", name,
			     (long long)sb.st_size, (unsigned long long)need);
		return -EBADMSG;
	}
	n = (size_t)sh->nchunks * 8;
	sums = malloc(n);
	if (!sums) {
		state_seterr(ENOMEM, "swap file %s", name);
		return -ENOMEM;
	}
	err = pread_full(fd, sums, n, sh->sums_off);
	if (!err && state_sum(sums, n, sh->swap_id) != sh->sums_check) {
		state_seterr(0, "swap file %s: damaged checksum table", name);
		err = -EBADMSG;
	} else if (err) {
		state_seterr(-err, "swap file %s", name);
	}
	if (err) {
		free(sums);
		return err;
	}
	*sums_out = sums;
	return 0;
}

/* Read chunk @c of the image into the mapping and check it.  Locked. */
int state_load_chunk(struct spry_state *st, uint32_t c)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint8_t *loaded = st->base + STATE_LOADED_OFF;
	uint64_t len = chunk_len(hd->image_len, st->chunk_size, c);
	uint8_t *dst = st->base + (uint64_t)c * st->chunk_size;
	int err;

	if (c >= st->nchunks)
		return -EFAULT;
	if (loaded[c])
		return 0;
	if (st->swap_fd < 0 || !st->swap_sums) {
		state_seterr(0, "%s: its swap file is not open", st->path ? st->path : "state");
		return -EBADMSG;
	}
	if (len) {
		/* the pages at once rather than a fault each (best effort) */
		madvise(dst, len, MADV_POPULATE_WRITE);
		err = pread_full(st->swap_fd, dst, len, st->swap_data_off + (uint64_t)c * st->chunk_size);
		if (err) {
			state_seterr(-err, "swap file %s: chunk %u", hd->swap_path, c);
			return err;
		}
		if (state_sum(dst, len, c) != st->swap_sums[c]) {
			state_seterr(0, "swap file %s: chunk %u damaged (checksum)", hd->swap_path, c);
			return -EBADMSG;
		}
	}
	loaded[c] = 1;
	if (++hd->chunks_loaded >= st->nchunks) {
		/* all in memory: the store stands alone again */
		hd->flags &= ~STATE_F_SWAP_PENDING;
		close(st->swap_fd);
		st->swap_fd = -1;
		free(st->swap_sums);
		st->swap_sums = NULL;
	}
	return 0;
}

/* A pending store opened again: open its swap file and check it is the
 * one it was woken from. */
int state_swap_attach(struct spry_state *st)
{
	struct spry_state_hdr *hd = state_hdr(st);
	struct spry_swap_hdr sh;
	uint64_t *sums = NULL;
	int fd, err;

	if (memchr(hd->swap_path, 0, sizeof(hd->swap_path)) == NULL || !hd->swap_path[0]) {
		state_seterr(0, "%s: waking from a swap file it does not name",
			     st->path ? st->path : "state");
		return -EBADMSG;
	}
	fd = open(hd->swap_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* not -ENOENT: the store exists, what it needs does not */
		state_seterr(errno, "%s: half woken, its swap file %s",
			     st->path ? st->path : "state", hd->swap_path);
		return -EBADMSG;
	}
	err = swap_read_hdr(fd, hd->swap_path, NULL, &sh, &sums);
	if (!err && (sh.swap_id != hd->swap_id || sh.state_size != st->size ||
		     sh.image_len != hd->image_len || sh.chunk_size != st->chunk_size)) {
		state_seterr(0, "%s: swap file %s is not the one it was woken from",
			     st->path ? st->path : "state", hd->swap_path);
		err = -EBADMSG;
	}
	if (err) {
		free(sums);
		close(fd);
		return err;
	}
	st->swap_fd = fd;
	st->swap_sums = sums;
	st->swap_data_off = sh.data_off;
	return 0;
}

/*
 * Wake a store from the swap file @swap_fd into the empty file @state_fd
 * (which the caller holds flock LOCK_EX on): chunk 0 now, the rest when
 * touched.  @swap_path is recorded for a resume (NULL: an fd-only store
 * that cannot resume).  Takes @swap_fd (closed on failure); @state_fd
 * stays the caller's on failure.
 */
struct spry_state *state_wake_fd(int swap_fd, int state_fd, const char *swap_path,
				 const char *state_path, const char *app)
{
	const char *name = swap_path ? swap_path : "(fd)";
	struct spry_state_opts o = { 0 };
	struct spry_state_hdr *hd;
	struct spry_swap_hdr sh;
	struct spry_state *st;
	uint64_t *sums = NULL, len;
	uint8_t *loaded;
	uint32_t c, nimg;
	int err;

	err = swap_read_hdr(swap_fd, name, app, &sh, &sums);
	if (err)
		goto fail;
	if (swap_path && strlen(swap_path) >= sizeof(hd->swap_path)) {
		state_seterr(0, "swap file %s: path too long", name);
		err = -ENAMETOOLONG;
		goto fail;
	}
	if (ftruncate(state_fd, 0) || ftruncate(state_fd, (off_t)sh.state_size)) {
		err = -errno;
		state_seterr(errno, "%s: ftruncate", state_path ? state_path : "state");
		goto fail;
	}
	/* chunk 0 holds the store's header: read and check it first */
	{
		/* the whole file (hugetlbfs maps whole huge pages only) */
		uint8_t *m = mmap(NULL, sh.state_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				  state_fd, 0);

		if (m == MAP_FAILED) {
			err = -errno;
			state_seterr(errno, "%s: mmap", state_path ? state_path : "state");
			goto fail;
		}
		len = chunk_len(sh.image_len, sh.chunk_size, 0);
		err = pread_full(swap_fd, m, len, sh.data_off);
		if (!err && state_sum(m, len, 0) != sums[0]) {
			state_seterr(0, "swap file %s: chunk 0 damaged (checksum)", name);
			err = -EBADMSG;
		} else if (err) {
			state_seterr(-err, "swap file %s", name);
		}
		if (!err) {
			hd = (struct spry_state_hdr *)m;
			/* the store's own flags say nothing of this wake */
			hd->flags = 0;	/* set pending once mapped */
			hd->image_len = sh.image_len;
			hd->swap_id = sh.swap_id;
			hd->chunks_loaded = 0;
			memset(hd->swap_path, 0, sizeof(hd->swap_path));
			if (swap_path)
				strcpy(hd->swap_path, swap_path);
			memset(m + STATE_LOADED_OFF, 0, STATE_MAX_CHUNKS);
		}
		munmap(m, sh.state_size);
		if (err)
			goto fail;
	}
	/* map and check it as any store (no repair yet: the pending flag
	 * makes every touch load first; state_map with sole repairs only
	 * a store left mid-change) */
	st = state_map(state_fd, state_path, sh.state_size, false, false, &o);
	if (!st) {
		err = -errno;
		goto fail;
	}
	if (st->chunk_size != sh.chunk_size || st->nchunks != sh.nchunks ||
	    sh.image_len < st->heap_off) {
		state_seterr(0, "swap file %s: its store's geometry does not match", name);
		st->fd = -1;
		state_free_handle(st);
		err = -EBADMSG;
		goto fail;
	}
	hd = state_hdr(st);
	hd->flags = STATE_F_SWAP_PENDING;
	st->swap_fd = swap_fd;
	st->swap_sums = sums;
	st->swap_data_off = sh.data_off;
	/* a fresh mutex: the image's is the swapper's */
	{
		pthread_mutexattr_t a;

		memset(hd->lock_area, 0, sizeof(hd->lock_area));
		pthread_mutexattr_init(&a);
		pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
		pthread_mutex_init((pthread_mutex_t *)(void *)hd->lock_area, &a);
		pthread_mutexattr_destroy(&a);
	}
	hd->writing = 0;
	atomic_store(&hd->seq, 0);
	loaded = st->base + STATE_LOADED_OFF;
	nimg = (uint32_t)((sh.image_len + sh.chunk_size - 1) / sh.chunk_size);
	hd->chunks_loaded = 1;
	loaded[0] = 1;
	for (c = nimg; c < st->nchunks; c++) {
		loaded[c] = 1;	/* past the image: zeros, as the new file */
		hd->chunks_loaded++;
	}
	if (hd->chunks_loaded >= st->nchunks) {
		hd->flags &= ~STATE_F_SWAP_PENDING;
		close(st->swap_fd);
		st->swap_fd = -1;
		free(st->swap_sums);
		st->swap_sums = NULL;
	}
	/* an image whose counters are impossible (a swap holds the lock, so
	 * only a forged file has them): rebuilt, reading what it must */
	if (!state_mutable_ok(st)) {
		pthread_mutex_lock((pthread_mutex_t *)(void *)hd->lock_area);
		err = state_rebuild(st);
		pthread_mutex_unlock((pthread_mutex_t *)(void *)hd->lock_area);
		if (err) {
			st->fd = -1;
			state_free_handle(st);	/* closes swap_fd, frees sums */
			errno = -err;
			return NULL;
		}
	}
	return st;

fail:
	free(sums);
	close(swap_fd);
	errno = -err;
	return NULL;
}

SPRY_API int spry_state_prefetch(struct spry_state *st, uint64_t max_bytes)
{
	const uint8_t *loaded;
	uint64_t done = 0;
	uint32_t c;
	int err;

	if (!st)
		return -EINVAL;
	err = state_lock(st);
	if (err)
		return err;
	loaded = st->base + STATE_LOADED_OFF;
	for (c = 0; c < st->nchunks && (state_hdr(st)->flags & STATE_F_SWAP_PENDING); c++) {
		if (loaded[c])
			continue;
		if (done >= max_bytes)
			break;
		err = state_load_chunk(st, c);
		if (err)
			break;
		done += st->chunk_size;
	}
	if (!err && (state_hdr(st)->flags & STATE_F_SWAP_PENDING))
		err = -EAGAIN;
	state_unlock(st);
	return err;
}

/* ------------------------------------------------------------ out */

/* Write the image of @st (locked, whole in memory) to @fd.  fsynced. */
int state_swap_write(struct spry_state *st, int fd, const char *app)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint8_t page[SWAP_HDR_SIZE] = { 0 };
	struct spry_swap_hdr sh = { 0 };
	uint64_t *sums, image_len, len;
	uint32_t c, nimg;
	int err;

	if (hd->top > st->size || hd->top < st->heap_off)
		return -EUCLEAN;
	image_len = hd->top;
	sh.magic = SWAP_MAGIC;
	sh.version = SWAP_VERSION;
	sh.hdr_size = SWAP_HDR_SIZE;
	snprintf(sh.app, sizeof(sh.app), "%s", app);
	if (getrandom(&sh.swap_id, sizeof(sh.swap_id), 0) != sizeof(sh.swap_id))
		sh.swap_id = state_hash(&sh, sizeof(sh)) ^ (uint64_t)getpid();
	sh.state_size = st->size;
	sh.image_len = image_len;
	sh.chunk_size = st->chunk_size;
	sh.nchunks = st->nchunks;
	sh.sums_off = SWAP_HDR_SIZE;
	sh.data_off = (SWAP_HDR_SIZE + (uint64_t)st->nchunks * 8 + 4095) & ~4095ULL;
	sums = calloc(st->nchunks, 8);
	if (!sums)
		return -ENOMEM;
	/* the image says what the store is, not how it was being woken */
	snprintf(hd->app, sizeof(hd->app), "%s", app);
	hd->flags = 0;
	hd->chunks_loaded = 0;
	hd->swap_id = 0;
	hd->image_len = 0;
	memset(hd->swap_path, 0, sizeof(hd->swap_path));

	err = ftruncate(fd, 0) ? -errno : 0;
	nimg = (uint32_t)((image_len + st->chunk_size - 1) / st->chunk_size);
	for (c = 0; !err && c < nimg; c++) {
		const uint8_t *src = st->base + (uint64_t)c * st->chunk_size;

		len = chunk_len(image_len, st->chunk_size, c);
		sums[c] = state_sum(src, len, c);
		if (!all_zero(src, len))
			err = pwrite_full(fd, src, len, sh.data_off + (uint64_t)c * st->chunk_size);
	}
	for (; c < st->nchunks; c++)
		sums[c] = state_sum("", 0, c);
	if (!err && ftruncate(fd, (off_t)(sh.data_off + image_len)))
		err = -errno;
	if (!err)
		err = pwrite_full(fd, sums, (size_t)st->nchunks * 8, sh.sums_off);
	sh.sums_check = state_sum(sums, (size_t)st->nchunks * 8, sh.swap_id);
	sh.hdr_check = swap_hdr_check(&sh);
	memcpy(page, &sh, sizeof(sh));
	if (!err)
		err = pwrite_full(fd, page, sizeof(page), 0);
	if (!err && fsync(fd))
		err = -errno;
	free(sums);
	return err;
}

static int swap_paths(const struct spry_state *st, const char *dir, char *final,
		      char *tmp, size_t cap)
{
	const char *base;

	if (!st->path) {
		state_seterr(0, "state: a store without a path cannot be swapped by name");
		return -EINVAL;
	}
	base = strrchr(st->path, '/');
	base = base ? base + 1 : st->path;
	if ((size_t)snprintf(final, cap, "%s/%s.swap", dir, base) >= cap ||
	    (size_t)snprintf(tmp, cap, "%s/.%s.swap.tmp", dir, base) >= cap) {
		state_seterr(0, "%s: swap path too long", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

SPRY_API int spry_state_swap_out(struct spry_state *st, const char *swap_dir, const char *app)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	int fd = -1, dfd = -1, err;

	if (!st || !swap_dir || !*swap_dir)
		return -EINVAL;
	err = app_check(app);
	if (err)
		return err;
	err = swap_paths(st, swap_dir, final, tmp, sizeof(final));
	if (err)
		return err;
	if (strlen(final) >= sizeof(state_hdr(st)->swap_path)) {
		state_seterr(0, "%s: swap path too long", final);
		return -ENAMETOOLONG;
	}
	/* only the last user of a store swaps it out */
	if (flock(st->fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		state_seterr(err == -EBUSY ? 0 : errno, "%s: %s", st->path,
			     err == -EBUSY ? "another process has the store open" : "flock");
		return err;
	}
	dfd = open(swap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		err = -errno;
		state_seterr(errno, "swap directory %s", swap_dir);
		goto out_flock;
	}
	err = state_lock(st);
	if (err)
		goto out_flock;
	/* a store still waking: read the rest first */
	{
		uint32_t c;

		for (c = 0; !err && c < st->nchunks && (state_hdr(st)->flags & STATE_F_SWAP_PENDING); c++)
			err = state_load_chunk(st, c);
	}
	if (err)
		goto out_unlock;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		state_seterr(errno, "swap file %s", tmp);
		goto out_unlock;
	}
	err = state_swap_write(st, fd, app);
	if (err) {
		state_seterr(-err, "swap file %s", tmp);
		goto out_unlink;
	}
	if (close(fd)) {
		fd = -1;
		err = -errno;
		state_seterr(errno, "swap file %s: close", tmp);
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, final)) {
		err = -errno;
		state_seterr(errno, "swap file %s", final);
		goto out_unlink;
	}
	if (fsync(dfd)) {
		/* the rename may not be durable: the store stays */
		err = -errno;
		state_seterr(errno, "swap directory %s: fsync", swap_dir);
		goto out_unlock;
	}
	/* durable: give the memory back */
	if (unlink(st->path) && errno != ENOENT) {
		err = -errno;
		state_seterr(errno, "%s: swapped out, but not removed", st->path);
		goto out_unlock;
	}
	state_unlock(st);
	close(dfd);
	state_free_handle(st);
	return 0;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out_unlock:
	state_unlock(st);
out_flock:
	if (dfd >= 0)
		close(dfd);
	flock(st->fd, LOCK_SH);
	return err;
}

static int app_of_store(struct spry_state *st, const char *app)
{
	struct spry_state_hdr *hd = state_hdr(st);
	int err;

	err = state_lock(st);
	if (err)
		return err;
	if (!hd->app[0] || memchr(hd->app, 0, sizeof(hd->app)) == NULL) {
		snprintf(hd->app, sizeof(hd->app), "%s", app);
	} else if (strcmp(hd->app, app)) {
		state_seterr(0, "%s belongs to app '%.63s', not '%s'", st->path, hd->app, app);
		err = -EACCES;
	}
	state_unlock(st);
	return err;
}

SPRY_API struct spry_state *spry_state_open_swap(const char *path, const char *swap_dir,
						 const char *app,
						 const struct spry_state_opts *opts)
{
	char final[PATH_MAX], tmp[PATH_MAX], wake[PATH_MAX];
	struct spry_state fake = { .path = (char *)path };
	struct spry_state *st;
	int err, tries, sfd, wfd;

	if (!path || !*path || !swap_dir || !*swap_dir) {
		state_seterr(0, "state: no path or swap directory");
		errno = EINVAL;
		return NULL;
	}
	err = app_check(app);
	if (!err)
		err = swap_paths(&fake, swap_dir, final, tmp, sizeof(final));
	if (!err && (size_t)snprintf(wake, sizeof(wake), "%s.wake.%d", path, (int)getpid()) >=
		    sizeof(wake))
		err = -ENAMETOOLONG;
	if (err) {
		errno = -err;
		return NULL;
	}
	for (tries = 0; tries < 8; tries++) {
		st = spry_state_open(path, NULL);
		if (st) {
			err = app_of_store(st, app);
			if (err) {
				spry_state_close(st);
				errno = -err;
				return NULL;
			}
			return st;
		}
		if (errno != ENOENT)
			return NULL;
		sfd = open(final, O_RDONLY | O_CLOEXEC);
		if (sfd < 0) {
			err = errno;
			if (err != ENOENT) {
				state_seterr(err, "swap file %s", final);
				errno = err;
				return NULL;
			}
			if (!opts || !opts->size) {
				state_seterr(0, "no state at %s and no swap file %s", path, final);
				errno = ENOENT;
				return NULL;
			}
			st = spry_state_open(path, opts);
			if (!st)
				return NULL;
			err = app_of_store(st, app);
			if (err) {
				spry_state_close(st);
				errno = -err;
				return NULL;
			}
			return st;
		}
		/* wake: into a file of its own name first, linked when whole */
		unlink(wake);
		wfd = open(wake, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			   opts && opts->mode ? opts->mode : 0600);
		if (wfd < 0) {
			err = errno;
			close(sfd);
			state_seterr(err, "%s", wake);
			errno = err;
			return NULL;
		}
		flock(wfd, LOCK_EX);
		st = state_wake_fd(sfd, wfd, final, path, app);
		if (!st) {
			err = errno;
			close(wfd);
			unlink(wake);
			errno = err;
			return NULL;
		}
		if (link(wake, path)) {
			err = errno;
			unlink(wake);
			state_free_handle(st);
			if (err == EEXIST)
				continue;
			state_seterr(err, "%s", path);
			errno = err;
			return NULL;
		}
		unlink(wake);
		free(st->path);
		st->path = strdup(path);
		if (!st->path) {
			state_free_handle(st);
			errno = ENOMEM;
			return NULL;
		}
		flock(wfd, LOCK_SH);
		return st;
	}
	state_seterr(0, "%s: kept changing while opening", path);
	errno = EAGAIN;
	return NULL;
}

int state_swap_check(const char *path, const char *swap_dir, const char *app)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	struct spry_state fake = { .path = (char *)path };
	struct spry_swap_hdr sh;
	uint64_t *sums = NULL;
	struct stat sb;
	int fd, err;

	if (!path || !*path)
		return -EINVAL;
	if (!stat(path, &sb))
		return 0;	/* the store: at least as new as its swap file */
	if (errno != ENOENT) {
		err = errno;
		state_seterr(err, "%s", path);
		return -err;
	}
	if (!swap_dir || !*swap_dir) {
		state_seterr(0, "no state at %s and no swap directory", path);
		return -ENOENT;
	}
	err = app_check(app);
	err = err ?: swap_paths(&fake, swap_dir, final, tmp, sizeof(final));
	if (err)
		return err;
	fd = open(final, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT)
			state_seterr(0, "no state at %s and no swap file %s", path, final);
		else
			state_seterr(err, "swap file %s", final);
		return -err;
	}
	err = swap_read_hdr(fd, final, app, &sh, &sums);
	free(sums);
	close(fd);
	return err;
}

SPRY_API int spry_state_unlink(const char *path, const char *swap_dir)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	struct spry_state fake = { .path = (char *)path };
	int err = 0, e;
	glob_t g;
	size_t i;

	if (!path || !*path)
		return -EINVAL;
	if (unlink(path) && errno != ENOENT) {
		err = -errno;
		state_seterr(errno, "%s", path);
	}
	/* what a process killed while creating or waking it left */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.[nw][ea][wk]*.[0-9]*", path) < sizeof(tmp) &&
	    !glob(tmp, GLOB_NOSORT, NULL, &g)) {
		for (i = 0; i < g.gl_pathc; i++)
			unlink(g.gl_pathv[i]);
		globfree(&g);
	}
	if (swap_dir && *swap_dir) {
		e = swap_paths(&fake, swap_dir, final, tmp, sizeof(final));
		if (e)
			return err ? err : e;
		if (unlink(final) && errno != ENOENT && !err) {
			err = -errno;
			state_seterr(errno, "%s", final);
		}
		unlink(tmp);
	}
	return err;
}
