/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The process state's layout (docs/STATE.md, "Layout").  Internal to shm/,
 * its selftest and its fuzzer.
 *
 *   [0, 4096)            struct spry_state_hdr
 *   [4096, 8192)         loaded[]: one byte per swap chunk (lazy wake)
 *   [idx_off(0), +8 n)   index 0: n slots of 8 bytes
 *   [idx_off(1), +8 n)   index 1 (the one not selected is scratch)
 *   [heap_off, size)     records, 64-byte aligned, bump-allocated below
 *                        top, freed blocks on size-class lists
 *
 * A slot is 0 (empty), 1 (tombstone) or tag:16 | offset:48 of a record
 * (offset >= heap_off, a multiple of 64).  A put writes a whole new record
 * and commits with one aligned 8-byte store into the slot; only then is
 * the old record freed.  Every change happens under the robust mutex; a
 * writer that dies holding it leaves the free lists and counters to
 * rebuild, which state_rebuild() does from the index alone, validating
 * every record it follows (bounds, header checksum over its own offset).
 */
#ifndef SPRY_SHM_STATE_INTERNAL_H
#define SPRY_SHM_STATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spry/state.h"

#define STATE_MAGIC		0x4554415453595250ULL	/* "PRYSTATE" */
#define STATE_VERSION		1u
#define STATE_HDR_SIZE		4096u
#define STATE_LOADED_OFF	4096u
#define STATE_MAX_CHUNKS	4096u
#define STATE_IDX_OFF		8192u
#define STATE_ALIGN		64u
#define STATE_MIN_SLOTS		256u
#define STATE_MAX_SLOTS		(1u << 28)
#define STATE_N_CLASSES		160
#define STATE_MIN_CHUNK		(64u << 10)

#define SLOT_EMPTY		0ULL
#define SLOT_TOMB		1ULL
#define SLOT_OFF_MASK		((1ULL << 48) - 1)
#define SLOT_TAG(h)		((uint64_t)((h) >> 48))
#define SLOT_MAKE(h, off)	(((uint64_t)((h) >> 48) << 48) | (uint64_t)(off))

#define REC_MAGIC		0x43455253u		/* "SREC" */
#define FREE_MAGIC		0x45524653u		/* "SFRE" */

/* hdr.flags */
#define STATE_F_SWAP_PENDING	1u	/* chunks still to read from the swap file */

struct state_rec {
	uint32_t	magic;		/* REC_MAGIC */
	uint32_t	klen;
	uint64_t	vlen;
	uint64_t	cap;		/* bytes of the block, header included */
	uint32_t	hash;		/* low 32 bits of the key's hash */
	uint32_t	hcrc;		/* state_rec_crc(rec, its offset) */
	/* key (klen bytes), padding to 8, value (vlen bytes) */
};
_Static_assert(sizeof(struct state_rec) == 32, "record header");

struct state_free {
	uint32_t	magic;		/* FREE_MAGIC */
	uint32_t	pad;
	uint64_t	cap;
	uint64_t	next;		/* offset of the next free block, 0: end */
	uint64_t	check;		/* cap ^ next ^ offset ^ FREE_MAGIC */
};
_Static_assert(sizeof(struct state_free) == 32, "free block header");

struct spry_state_hdr {
	uint64_t	magic;
	uint32_t	version;
	uint32_t	hdr_size;
	uint64_t	size;		/* bytes of the file */
	uint32_t	nslots;		/* per index, a power of two */
	uint32_t	max_keys;	/* live + tombstones at most */
	uint64_t	heap_off;
	uint32_t	chunk_size;	/* swap chunk (power of two) */
	uint32_t	nchunks;
	uint64_t	hdr_check;	/* state_hdr_check() of the fields above */
	/* --- mutable, under the mutex ------------------------------------ */
	_Atomic uint64_t idx_sel;	/* 0 or 1: the live index */
	uint64_t	top;		/* bump pointer, heap_off <= top <= size */
	uint64_t	used_slots;	/* live + tombstones in the live index */
	uint64_t	nkeys;
	uint64_t	used_bytes;	/* caps of live records */
	uint64_t	recoveries;
	uint32_t	flags;		/* STATE_F_* */
	uint32_t	chunks_loaded;
	uint32_t	writing;	/* 1 inside a change: a dead writer's mark */
	_Atomic uint32_t seq;	/* odd while a change runs (lock-free gets) */
	uint64_t	swap_id;	/* the swap file being read (pending) */
	uint64_t	image_len;	/* bytes of the swap image */
	char		app[64];	/* app tag ("" none) */
	char		boot_id[40];	/* kernel boot id of the last opener */
	char		swap_path[1024];
	uint64_t	free_head[STATE_N_CLASSES];
	uint8_t		lock_area[64];	/* pthread_mutex_t, robust + pshared */
	uint8_t		pad[STATE_HDR_SIZE - 1264 - STATE_N_CLASSES * 8 - 64];
};
_Static_assert(sizeof(pthread_mutex_t) <= 64, "mutex fits its area");
_Static_assert(sizeof(struct spry_state_hdr) == STATE_HDR_SIZE, "state header");
_Static_assert(offsetof(struct spry_state_hdr, idx_sel) % 8 == 0, "idx_sel aligned");

/* The per-process handle. */
struct spry_state {
	int		fd;		/* the store's file (flock LOCK_SH held) */
	int		swap_fd;	/* pending: the swap file, else -1 */
	uint8_t		*base;
	uint64_t	size;		/* validated copies of the header's geometry */
	uint64_t	heap_off;
	uint32_t	nslots;
	uint32_t	max_keys;
	uint32_t	chunk_size;
	uint32_t	nchunks;
	uint64_t	swap_data_off;	/* pending: data offset in the swap file */
	uint64_t	*swap_sums;	/* pending: chunk checksums (nchunks) */
	char		*path;		/* NULL: an fd-only store (fuzzer) */
};

/* ------------------------------------------------------------ swap file */

#define SWAP_MAGIC		0x5041575359525053ULL	/* "SPRYSWAP" */
#define SWAP_VERSION		1u
#define SWAP_HDR_SIZE		4096u

struct spry_swap_hdr {
	uint64_t	magic;
	uint32_t	version;
	uint32_t	hdr_size;	/* SWAP_HDR_SIZE */
	char		app[64];
	uint64_t	swap_id;	/* random, also in the state header */
	uint64_t	state_size;	/* bytes of the store */
	uint64_t	image_len;	/* bytes of the image: [0, image_len) */
	uint32_t	chunk_size;
	uint32_t	nchunks;	/* of the store; image: ceil(image_len / cs) */
	uint64_t	sums_off;	/* chunk checksums: nchunks x 8 bytes */
	uint64_t	data_off;	/* the image, page aligned */
	uint64_t	sums_check;	/* checksum of the sums array */
	uint64_t	hdr_check;	/* checksum of this header up to here */
};
_Static_assert(sizeof(struct spry_swap_hdr) == 144, "swap header");

/* ------------------------------------------------------------ helpers */

uint64_t state_hash(const void *p, size_t len);
uint64_t state_sum(const void *p, size_t len, uint64_t seed);
void state_seterr(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t state_hdr_check(const struct spry_state_hdr *h);

/* state.c, used by swap.c */
struct spry_state *state_map(int fd, const char *path, uint64_t expect_size,
			     bool sole, bool created, const struct spry_state_opts *opts);
int state_lock(struct spry_state *st);
void state_unlock(struct spry_state *st);
int state_ensure(struct spry_state *st, uint64_t off, uint64_t len);
int state_rebuild(struct spry_state *st);
bool state_mutable_ok(const struct spry_state *st);
void state_free_handle(struct spry_state *st);
/* The kernel's boot id (/proc/sys/kernel/random/boot_id), NUL-terminated: 0 or -errno. */
int state_boot_id(char out[40]);

/* swap.c, used by state.c: read chunk @c from the swap file (locked). */
int state_load_chunk(struct spry_state *st, uint32_t c);
/* attach the swap file of a pending store (state_map, sole) */
int state_swap_attach(struct spry_state *st);
/* swap.c: fd-level wake, for open_swap and the fuzzer */
struct spry_state *state_wake_fd(int swap_fd, int state_fd, const char *swap_path,
				 const char *state_path, const char *app);
/*
 * swap.c, for spryd before it starts a process that has a swap file: 0
 * when the store @path exists (it wins) or DIR/NAME.swap is there with a
 * sound header and checksum table for @app; else -ENOENT (neither),
 * -EBADMSG (damaged), -EACCES (another app's) or -errno, the reason in
 * spry_state_error().  Reads the header and the checksum table only: the
 * chunks are checked when a wake reads them.
 */
int state_swap_check(const char *path, const char *swap_dir, const char *app);
/* swap.c: fd-level swap out into @out_fd (truncated, written, fsynced) */
int state_swap_write(struct spry_state *st, int out_fd, const char *app);

static inline struct spry_state_hdr *state_hdr(const struct spry_state *st)
{
	return (struct spry_state_hdr *)st->base;
}

#endif /* SPRY_SHM_STATE_INTERNAL_H */
