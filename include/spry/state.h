/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libspry's process state: a key-value store in a MAP_SHARED file mapping
 * (tmpfs, hugetlbfs or /dev/shm), shared by every function of a cloud
 * process, kept across invocations and across the kill -9 of the OS
 * process, swapped to disk when the process is idle and loaded back
 * lazily.  The exact durability contract is docs/STATE.md.
 *
 * Conventions (libbpf's): functions returning int give 0 or -errno;
 * functions returning a pointer give NULL and set errno.  After a failure,
 * spry_state_error() says why in words (the thread's last failure).
 *
 * Every function may be called from several threads and several processes
 * mapping the same file; a put is complete (and survives a crash of its
 * process) when spry_state_put() returns 0.
 */
#ifndef SPRY_STATE_H
#define SPRY_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "spry.h"

#ifdef __cplusplus
extern "C" {
#endif

struct spry_state;

#define SPRY_STATE_KEY_MAX	1024u		/* bytes of a key */
#define SPRY_STATE_APP_MAX	63u		/* bytes of an app tag */
#define SPRY_STATE_MIN_SIZE	(256u << 10)	/* smallest store */
#define SPRY_STATE_MAX_SIZE	(1ULL << 40)	/* largest store */

/* The environment spry_fn_state() reads (spryd sets it for a process). */
#define SPRY_STATE_PATH_ENV	"SPRY_STATE_PATH"	/* the store's file */
#define SPRY_STATE_SWAP_DIR_ENV	"SPRY_STATE_SWAP_DIR"	/* where it is swapped */
#define SPRY_STATE_APP_ENV	"SPRY_STATE_APP"	/* the app tag */
#define SPRY_STATE_SIZE_ENV	"SPRY_STATE_SIZE"	/* bytes of a new store */

struct spry_state_opts {
	/*
	 * Size of the store's file in bytes (header, index and values),
	 * rounded up to the file system's page size; 0: open an existing
	 * store only.  An existing store keeps its own size.
	 */
	uint64_t	size;
	/* Keys the index holds at most (0: size / 1024, at least 192). */
	uint32_t	max_keys;
	uint32_t	mode;		/* of a new file (0: 0600) */
};

struct spry_state_stats {
	uint64_t	size;		/* bytes of the file */
	uint64_t	heap_size;	/* bytes for records */
	uint64_t	used;		/* bytes of live records */
	uint64_t	keys;		/* live keys */
	uint64_t	max_keys;	/* keys the index holds at most */
	uint64_t	chunks;		/* swap chunks of the file (lazy load) */
	uint64_t	chunks_loaded;	/* of them, in memory (== chunks: all) */
	uint64_t	recoveries;	/* times the store was rebuilt */
};

/*
 * Open the store at @path, creating it (opts->size bytes) when it does
 * not exist and opts->size is not 0.  A store whose last writer died in
 * the middle of a change is checked and repaired here (docs/STATE.md).
 */
SPRY_API struct spry_state *spry_state_open(const char *path,
					    const struct spry_state_opts *opts);
SPRY_API void spry_state_close(struct spry_state *st);

/*
 * Set @key (1..SPRY_STATE_KEY_MAX bytes) to the @vlen bytes at @val.
 * Atomic: a crash leaves the old value or the new one, never a mix.
 * -ENOSPC when the store or its index is full, -E2BIG when a key is too
 * long, -EBADMSG when the part of a swap file it needs is damaged.
 */
SPRY_API int spry_state_put(struct spry_state *st, const void *key, size_t klen,
			    const void *val, size_t vlen);
/*
 * Copy @key's value into @buf (@cap bytes) and its length into *@vlen.
 * -ENOENT no such key; -EMSGSIZE @cap too small (*@vlen is set).
 */
SPRY_API int spry_state_get(struct spry_state *st, const void *key, size_t klen,
			    void *buf, size_t cap, size_t *vlen);
/* Remove @key.  -ENOENT when it is absent. */
SPRY_API int spry_state_del(struct spry_state *st, const void *key, size_t klen);
/*
 * The keys, one per call: start with *@cursor = 0; each call copies the
 * next key into @key (@cap bytes, -EMSGSIZE if smaller; *@klen is set)
 * and advances *@cursor; -ENOENT after the last.  Keys put or deleted
 * while iterating may or may not be seen.
 */
SPRY_API int spry_state_keys(struct spry_state *st, uint64_t *cursor, void *key,
			     size_t cap, size_t *klen);

/*
 * Zero-copy: a pointer to @key's value inside the state, its length in
 * *@vlen; read or write it in place.  Valid until @key is put, allocated
 * or deleted again, or the store is swapped or closed.  Writes through it
 * are visible at once to every function of the process and survive a
 * crash, but are not atomic: a crash in the middle of one leaves the
 * bytes written so far (use spry_state_put() for an atomic change).
 * NULL with errno ENOENT when the key is absent.
 */
SPRY_API void *spry_state_ptr(struct spry_state *st, const void *key, size_t klen,
			      size_t *vlen);
/* Set @key to @vlen zero bytes (atomically, as a put) and return a pointer
 * to them to fill in place, as spry_state_ptr(). */
SPRY_API void *spry_state_alloc(struct spry_state *st, const void *key, size_t klen,
				size_t vlen);

SPRY_API int spry_state_stats(struct spry_state *st, struct spry_state_stats *s);

/*
 * Swap out: write the state to @swap_dir/<file name of the store>.swap,
 * tagged with @app (1..SPRY_STATE_APP_MAX printable bytes), atomically
 * (a temporary file, fsync, rename, fsync of the directory), then give
 * its memory back: the store's file is removed and @st is closed.  On
 * failure nothing changed and @st stays open (-ENOSPC: disk full; -EBUSY:
 * another process has the store open).
 */
SPRY_API int spry_state_swap_out(struct spry_state *st, const char *swap_dir,
				 const char *app);
/*
 * Open a process's state wherever it is: the store at @path when it
 * exists (it must belong to @app), else a lazy wake from @swap_dir's swap
 * file (index first, values read when they are touched), else a new store
 * when opts->size is set.  -ENOENT nothing to open; -EACCES the state or
 * swap file belongs to another app; -EBADMSG a damaged swap file.
 */
SPRY_API struct spry_state *spry_state_open_swap(const char *path, const char *swap_dir,
						 const char *app,
						 const struct spry_state_opts *opts);
/*
 * Read up to @max_bytes more of a lazily woken state from its swap file
 * (an idle process calls it).  0 when all of it is in memory, -EAGAIN
 * when some is left, else -errno.
 */
SPRY_API int spry_state_prefetch(struct spry_state *st, uint64_t max_bytes);
/* Remove a process's store and its swap file (either may be absent).
 * 0, or -errno of the first removal that failed. */
SPRY_API int spry_state_unlink(const char *path, const char *swap_dir);

/* Why the calling thread's last failing spry_state_* call failed. */
SPRY_API const char *spry_state_error(void);

/*
 * Inside a function: the process's state, opened on first use from the
 * environment spryd sets when it spawns a process:
 *   SPRY_STATE_PATH      the store's file (required)
 *   SPRY_STATE_SWAP_DIR  the app's swap directory (optional: wake from it)
 *   SPRY_STATE_APP       the app's name (required with SPRY_STATE_SWAP_DIR)
 *   SPRY_STATE_SIZE      bytes of a new store (default 64 MiB); 0: open
 *                        only, never create (spryd, for a process that
 *                        has a swap file)
 * The same store for every call and thread; NULL with errno (ENOENT when
 * SPRY_STATE_PATH is unset; ENODATA when SPRY_STATE_SIZE is 0 and neither
 * the store nor its swap file is there: its state is lost).
 */
SPRY_API struct spry_state *spry_fn_state(void);

#ifdef __cplusplus
}
#endif
#endif /* SPRY_STATE_H */
