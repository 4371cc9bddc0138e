// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The process state: a crash-safe key-value store in a MAP_SHARED file
 * mapping (layout and invariants: shm/state_internal.h, docs/STATE.md).
 *
 * Every loop over the mapping is bounded by a size validated at open
 * (nslots, the heap's bounds), every offset read from the mapping is
 * checked before it is followed, and the lock is a robust process-shared
 * mutex: a process killed while holding it hands it to the next locker
 * with EOWNERDEAD, which rebuilds what the dead writer may have left half
 * done.  A sole opener (no other process has the file open: flock) starts
 * the mutex afresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "shm/state_internal.h"

/* ------------------------------------------------------------ errors */

static __thread char state_errbuf[512];

void state_seterr(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(state_errbuf, sizeof(state_errbuf), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(state_errbuf) - 4 && err)
		snprintf(state_errbuf + n, sizeof(state_errbuf) - n, ": %s", strerror(err));
}

SPRY_API const char *spry_state_error(void)
{
	return state_errbuf[0] ? state_errbuf : "no error";
}

/* ------------------------------------------------------------ hashing */

#define P1 0x9e3779b185ebca87ULL
#define P2 0xc2b2ae3d27d4eb4fULL
#define P3 0x165667b19e3779f9ULL

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t fmix(uint64_t h)
{
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

/* Checksum of a block: four independent lanes (fast on long input). */
uint64_t state_sum(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *s = p, *end = s + len;
	uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1, h;

	while (end - s >= 32) {
		a = rotl(a + ld64(s) * P2, 31) * P1;
		b = rotl(b + ld64(s + 8) * P2, 31) * P1;
		c = rotl(c + ld64(s + 16) * P2, 31) * P1;
		d = rotl(d + ld64(s + 24) * P2, 31) * P1;
		s += 32;
	}
	h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + len;
	while (end - s >= 8) {
		h ^= rotl(ld64(s) * P2, 31) * P1;
		h = rotl(h, 27) * P1 + P3;
		s += 8;
	}
	while (s < end) {
		h ^= *s++ * P3;
		h = rotl(h, 11) * P1;
	}
	return fmix(h);
}

uint64_t state_hash(const void *p, size_t len)
{
	return state_sum(p, len, 0x5350525953544154ULL);
}

static uint32_t rec_crc(const struct state_rec *r, uint64_t off)
{
	return (uint32_t)state_sum(r, offsetof(struct state_rec, hcrc), off ^ REC_MAGIC);
}

uint64_t state_hdr_check(const struct spry_state_hdr *h)
{
	return state_sum(h, offsetof(struct spry_state_hdr, hdr_check), STATE_MAGIC);
}

/* ------------------------------------------------------------ geometry */

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static inline uint64_t idx_off(const struct spry_state *st, unsigned int i)
{
	return STATE_IDX_OFF + (uint64_t)i * st->nslots * 8;
}

static uint32_t chunk_for(uint64_t size)
{
	uint64_t cs = STATE_MIN_CHUNK;

	while (cs * STATE_MAX_CHUNKS < size)
		cs <<= 1;
	return (uint32_t)cs;
}

struct geom {
	uint64_t size, heap_off;
	uint32_t nslots, max_keys, chunk_size, nchunks;
};

/* The geometry of a store of @size bytes with @n slots per index. */
static int geom_fill(uint64_t size, uint32_t n, struct geom *g)
{
	if (size < SPRY_STATE_MIN_SIZE || size > SPRY_STATE_MAX_SIZE || size % 4096 ||
	    n < STATE_MIN_SLOTS || n > STATE_MAX_SLOTS || (n & (n - 1)))
		return -EINVAL;
	g->size = size;
	g->nslots = n;
	g->max_keys = n / 4 * 3;
	g->heap_off = align_up(STATE_IDX_OFF + 2ULL * n * 8, 4096);
	g->chunk_size = chunk_for(size);
	g->nchunks = (uint32_t)((size + g->chunk_size - 1) / g->chunk_size);
	if (g->heap_off + 64 * 1024 > size)
		return -EINVAL;
	return 0;
}

/* The geometry of a store of @size bytes holding @max_keys keys. */
static int geom_make(uint64_t size, uint32_t max_keys, struct geom *g)
{
	uint64_t want = (uint64_t)max_keys * 4 / 3 + 1;
	uint32_t n = STATE_MIN_SLOTS;

	while (n < want && n < STATE_MAX_SLOTS)
		n <<= 1;
	if (want > n)
		return -EINVAL;
	return geom_fill(size, n, g);
}

/* ------------------------------------------------------------ classes */

static unsigned int class_of(uint64_t cap)
{
	uint64_t u = cap / STATE_ALIGN;
	unsigned int e;

	if (u < 16)
		return (unsigned int)u;
	e = 63 - __builtin_clzll(u);
	return 16 + (e - 4) * 4 + (unsigned int)((u >> (e - 2)) & 3);
}

/* ------------------------------------------------------------ locking */

static pthread_mutex_t *state_mutex(struct spry_state *st)
{
	return (pthread_mutex_t *)(void *)state_hdr(st)->lock_area;
}

static int mutex_init(struct spry_state *st)
{
	pthread_mutexattr_t a;
	int err;

	memset(state_hdr(st)->lock_area, 0, sizeof(state_hdr(st)->lock_area));
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	err = pthread_mutex_init(state_mutex(st), &a);
	pthread_mutexattr_destroy(&a);
	return -err;
}

int state_lock(struct spry_state *st)
{
	int err = pthread_mutex_lock(state_mutex(st));

	if (err == EOWNERDEAD) {
		/* its holder died: repair, then mark the mutex usable */
		state_hdr(st)->writing = 1;
		err = state_rebuild(st);
		pthread_mutex_consistent(state_mutex(st));
		if (err) {
			pthread_mutex_unlock(state_mutex(st));
			return err;
		}
		return 0;
	}
	if (err) {
		state_seterr(err, "state lock");
		return -err;
	}
	if (state_hdr(st)->writing) {
		/* a writer died in a change and nobody repaired it yet */
		err = state_rebuild(st);
		if (err) {
			pthread_mutex_unlock(state_mutex(st));
			return err;
		}
	}
	return 0;
}

void state_unlock(struct spry_state *st)
{
	pthread_mutex_unlock(state_mutex(st));
}

/* ------------------------------------------------------------ lazy load */

static inline bool pending(const struct spry_state *st)
{
	return state_hdr(st)->flags & STATE_F_SWAP_PENDING;
}

/*
 * The change counter of lock-free gets (a seqlock): odd while a change
 * runs.  A writer that dies leaves it odd: gets then take the lock, whose
 * repair ends the change.
 */
static inline void change_begin(struct spry_state *st)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint32_t v = atomic_load_explicit(&hd->seq, memory_order_relaxed);

	hd->writing = 1;
	atomic_store_explicit(&hd->seq, v | 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static inline void change_end(struct spry_state *st)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint32_t v = atomic_load_explicit(&hd->seq, memory_order_relaxed);

	/* even first: a death in between leaves writing set, which repairs */
	atomic_store_explicit(&hd->seq, (v | 1) + 1, memory_order_release);
	hd->writing = 0;
}

/* Make [off, off + len) of the mapping hold the state (read it from the
 * swap file when it is not in memory yet).  Locked. */
int state_ensure(struct spry_state *st, uint64_t off, uint64_t len)
{
	const uint8_t *loaded = st->base + STATE_LOADED_OFF;
	uint64_t c, last;
	int err;

	if (!pending(st) || !len)
		return 0;
	if (off >= st->size || len > st->size - off)
		return -EFAULT;
	last = (off + len - 1) / st->chunk_size;
	for (c = off / st->chunk_size; c <= last && pending(st); c++) {
		if (loaded[c])
			continue;
		err = state_load_chunk(st, (uint32_t)c);
		if (err)
			return err;
	}
	return 0;
}

/* ------------------------------------------------------------ records */

static inline uint64_t *slots(struct spry_state *st)
{
	uint64_t sel = atomic_load_explicit(&state_hdr(st)->idx_sel, memory_order_acquire);

	return (uint64_t *)(st->base + idx_off(st, (unsigned int)(sel & 1)));
}

static inline uint64_t rec_need(size_t klen, uint64_t vlen)
{
	return align_up(sizeof(struct state_rec) + align_up(klen, 8) + vlen, STATE_ALIGN);
}

/*
 * The record at @off if it is one (checked, its header and key in
 * memory), else NULL.  Bounded by top, which is within the file.
 */
static struct state_rec *rec_at_err(struct spry_state *st, uint64_t off, int *err)
{
	uint64_t top = state_hdr(st)->top;
	struct state_rec *r;

	if (top > st->size || off < st->heap_off || off % STATE_ALIGN ||
	    off >= top || top - off < sizeof(*r))
		return NULL;
	*err = state_ensure(st, off, sizeof(*r));
	if (*err)
		return NULL;
	r = (struct state_rec *)(st->base + off);
	if (r->magic != REC_MAGIC || r->hcrc != rec_crc(r, off))
		return NULL;
	if (!r->klen || r->klen > SPRY_STATE_KEY_MAX || r->cap % STATE_ALIGN ||
	    r->cap > top - off || r->vlen > r->cap ||
	    rec_need(r->klen, r->vlen) > r->cap)
		return NULL;
	*err = state_ensure(st, off, sizeof(*r) + r->klen);
	if (*err)
		return NULL;
	return r;
}

static struct state_rec *rec_at(struct spry_state *st, uint64_t off)
{
	int err = 0;

	return rec_at_err(st, off, &err);
}

static inline uint8_t *rec_key(struct state_rec *r)
{
	return (uint8_t *)(r + 1);
}

static inline uint8_t *rec_val(struct state_rec *r)
{
	return rec_key(r) + align_up(r->klen, 8);
}

struct probe {
	uint64_t	slot;		/* found: its slot; else where to insert */
	uint64_t	off;		/* found: the record */
	struct state_rec *rec;		/* found: the record, checked */
	bool		found;
	bool		have_free;	/* slot is a place to insert */
	bool		free_empty;	/* that place is empty (not a tombstone) */
};

static int lookup(struct spry_state *st, const void *key, size_t klen, uint64_t h,
		  struct probe *p)
{
	uint64_t mask = st->nslots - 1, i = h & mask, n, s, *idx = slots(st);
	uint64_t ioff = (uint64_t)((uint8_t *)idx - st->base);
	struct state_rec *r;
	int err;

	memset(p, 0, sizeof(*p));
	for (n = 0; n < st->nslots; n++, i = (i + 1) & mask) {
		err = state_ensure(st, ioff + i * 8, 8);
		if (err)
			return err;
		s = atomic_load_explicit((_Atomic uint64_t *)&idx[i], memory_order_acquire);
		if (s == SLOT_EMPTY) {
			if (!p->have_free) {
				p->slot = i;
				p->have_free = true;
				p->free_empty = true;
			}
			return -ENOENT;
		}
		if (s == SLOT_TOMB) {
			if (!p->have_free) {
				p->slot = i;
				p->have_free = true;
			}
			continue;
		}
		if (SLOT_TAG(s) != SLOT_TAG(h))
			continue;
		err = 0;
		r = rec_at_err(st, s & SLOT_OFF_MASK, &err);
		if (err)
			return err;	/* its part of the swap file is damaged */
		if (r && r->hash == (uint32_t)h && r->klen == klen &&
		    !memcmp(rec_key(r), key, klen)) {
			p->slot = i;
			p->off = s & SLOT_OFF_MASK;
			p->rec = r;
			p->found = true;
			return 0;
		}
	}
	return -ENOENT;
}

/* ------------------------------------------------------------ heap */

static void free_block(struct spry_state *st, uint64_t off, uint64_t cap)
{
	struct spry_state_hdr *hd = state_hdr(st);
	struct state_free *f;
	unsigned int c;

	if (off + cap == hd->top) {
		hd->top = off;
		return;
	}
	if (state_ensure(st, off, sizeof(*f)))
		return;		/* leaked until the next rebuild */
	c = class_of(cap);
	f = (struct state_free *)(st->base + off);
	f->magic = FREE_MAGIC;
	f->pad = 0;
	f->cap = cap;
	f->next = hd->free_head[c];
	f->check = cap ^ f->next ^ off ^ FREE_MAGIC;
	hd->free_head[c] = off;
}

/* The free block at @off if it is one of class @c, else NULL. */
static struct state_free *free_at(struct spry_state *st, uint64_t off, unsigned int c)
{
	uint64_t top = state_hdr(st)->top;
	struct state_free *f;

	if (top > st->size || off < st->heap_off || off % STATE_ALIGN || off >= top ||
	    top - off < sizeof(*f) || state_ensure(st, off, sizeof(*f)))
		return NULL;
	f = (struct state_free *)(st->base + off);
	if (f->magic != FREE_MAGIC || f->check != (f->cap ^ f->next ^ off ^ FREE_MAGIC) ||
	    f->cap < STATE_ALIGN || f->cap % STATE_ALIGN || f->cap > top - off ||
	    class_of(f->cap) != c)
		return NULL;
	return f;
}

/* Take the head of class @c's list if it holds @need bytes: 0, 1 (none),
 * -EUCLEAN (a damaged list). */
static int pop_class(struct spry_state *st, unsigned int c, uint64_t need, uint64_t *off)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint64_t o = hd->free_head[c], cap;
	struct state_free *f;

	if (!o)
		return 1;
	f = free_at(st, o, c);
	if (!f)
		return -EUCLEAN;
	if (f->cap < need)
		return 1;
	cap = f->cap;
	hd->free_head[c] = f->next;
	if (cap - need >= STATE_ALIGN)
		free_block(st, o + need, cap - need);
	*off = o;
	return 0;
}

static int heap_alloc_once(struct spry_state *st, uint64_t need, uint64_t *off)
{
	struct spry_state_hdr *hd = state_hdr(st);
	unsigned int c = class_of(need), s;
	int ret;

	/* the block's own class first (a freed value of the same size) */
	ret = pop_class(st, c, need, off);
	if (ret <= 0)
		return ret;
	for (s = c + 1; s < STATE_N_CLASSES; s++) {
		if (!hd->free_head[s])
			continue;
		ret = pop_class(st, s, need, off);
		if (ret <= 0)
			return ret;
	}
	if (hd->top % STATE_ALIGN || hd->top < st->heap_off)
		return -EUCLEAN;
	if (hd->top <= st->size && need <= st->size - hd->top) {
		*off = hd->top;
		hd->top += need;
		return 0;
	}
	return -ENOSPC;
}

static int heap_alloc(struct spry_state *st, uint64_t need, uint64_t *off)
{
	int ret = heap_alloc_once(st, need, off);

	if (ret == -ENOSPC || ret == -EUCLEAN) {
		/* coalesce the free space (or repair a damaged list), retry */
		ret = state_rebuild(st);
		change_begin(st);	/* still inside the caller's change */
		if (!ret)
			ret = heap_alloc_once(st, need, off);
		if (ret == -EUCLEAN)
			ret = -ENOSPC;
	}
	return ret;
}

/* ------------------------------------------------------------ rebuild */

struct live {
	uint64_t off, cap, slot;
};

static int live_cmp(const void *a, const void *b)
{
	const struct live *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * Rebuild everything but the index from the index: drop slots that do not
 * lead to a valid record or that overlap another, recount, rebuild the
 * free lists from the gaps (which coalesces them) and top.  Locked.
 */
int state_rebuild(struct spry_state *st)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint64_t i, n = 0, tombs = 0, prev, bytes = 0, *idx, old_top;
	struct state_rec *r;
	struct live *lv;
	int err;

	change_begin(st);
	if (atomic_load(&hd->idx_sel) > 1)
		atomic_store(&hd->idx_sel, 0);
	idx = slots(st);
	err = state_ensure(st, (uint64_t)((uint8_t *)idx - st->base), (uint64_t)st->nslots * 8);
	if (err)
		return err;
	lv = calloc(st->nslots, sizeof(*lv));
	if (!lv) {
		state_seterr(ENOMEM, "state rebuild");
		return -ENOMEM;
	}
	/* records are looked for in the whole heap; top is found again */
	old_top = hd->top;
	hd->top = st->size;
	for (i = 0; i < st->nslots; i++) {
		if (idx[i] == SLOT_EMPTY)
			continue;
		if (idx[i] == SLOT_TOMB) {
			tombs++;
			continue;
		}
		err = 0;
		r = rec_at_err(st, idx[i] & SLOT_OFF_MASK, &err);
		if (err) {
			/* not readable now (a damaged swap chunk): keep it,
			 * change nothing, fail */
			hd->top = old_top;
			free(lv);
			return err;
		}
		if (!r) {
			idx[i] = SLOT_TOMB;
			tombs++;
			continue;
		}
		lv[n].off = idx[i] & SLOT_OFF_MASK;
		lv[n].cap = r->cap;
		lv[n].slot = i;
		n++;
	}
	qsort(lv, n, sizeof(*lv), live_cmp);
	memset(hd->free_head, 0, sizeof(hd->free_head));
	prev = st->heap_off;
	for (i = 0; i < n; i++) {
		if (lv[i].off < prev) {
			/* overlaps the record before: not a record put made */
			idx[lv[i].slot] = SLOT_TOMB;
			tombs++;
			lv[i].cap = 0;
			continue;
		}
		bytes += lv[i].cap;
		prev = lv[i].off + lv[i].cap;
	}
	/* top: the end of the last live record; gaps below it are free */
	hd->top = prev;
	prev = st->heap_off;
	for (i = 0; i < n; i++) {
		if (!lv[i].cap)
			continue;
		if (lv[i].off > prev)
			free_block(st, prev, lv[i].off - prev);
		prev = lv[i].off + lv[i].cap;
	}
	hd->nkeys = 0;
	for (i = 0; i < n; i++)
		hd->nkeys += lv[i].cap != 0;
	hd->used_slots = hd->nkeys + tombs;
	hd->used_bytes = bytes;
	hd->recoveries++;
	free(lv);
	change_end(st);
	return 0;
}

/*
 * Move the live keys into the other index (dropping tombstones) and switch
 * to it with one 8-byte store: a crash before the switch leaves the old
 * index as it was.  Locked.
 */
static int rehash(struct spry_state *st)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint64_t sel = atomic_load(&hd->idx_sel) & 1, i, j, n, mask = st->nslots - 1;
	uint64_t *from = (uint64_t *)(st->base + idx_off(st, (unsigned int)sel));
	uint64_t *to = (uint64_t *)(st->base + idx_off(st, (unsigned int)!sel));
	uint64_t live = 0;
	struct state_rec *r;
	int err;

	err = state_ensure(st, idx_off(st, 0), 2ULL * st->nslots * 8);
	if (err)
		return err;
	memset(to, 0, (size_t)st->nslots * 8);
	for (i = 0; i < st->nslots; i++) {
		if (from[i] <= SLOT_TOMB)
			continue;
		r = rec_at(st, from[i] & SLOT_OFF_MASK);
		if (!r)
			continue;	/* not a record: dropped */
		for (n = 0, j = r->hash & mask; n < st->nslots; n++, j = (j + 1) & mask)
			if (to[j] == SLOT_EMPTY)
				break;
		if (n == st->nslots)
			return -EUCLEAN;
		to[j] = from[i];
		live++;
	}
	atomic_store_explicit(&hd->idx_sel, !sel, memory_order_release);
	hd->used_slots = live;
	hd->nkeys = live;
	return 0;
}

/* ------------------------------------------------------------ open */

/* The header's mutable fields are possible ones (else: rebuild). */
bool state_mutable_ok(const struct spry_state *st)
{
	const struct spry_state_hdr *h = state_hdr(st);

	return h->top <= st->size && h->top >= st->heap_off && !(h->top % STATE_ALIGN) &&
	       h->used_slots <= st->nslots && h->nkeys <= h->used_slots && !h->writing;
}

int state_boot_id(char out[40])
{
	ssize_t n;
	int fd;

	memset(out, 0, 40);
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, out, 39);
	close(fd);
	if (n <= 0)
		return -EIO;
	out[strcspn(out, "\n")] = 0;
	return 0;
}

void state_free_handle(struct spry_state *st)
{
	if (!st)
		return;
	if (st->base)
		munmap(st->base, st->size);
	if (st->swap_fd >= 0)
		close(st->swap_fd);
	if (st->fd >= 0)
		close(st->fd);
	free(st->swap_sums);
	free(st->path);
	free(st);
}

static bool hdr_valid(const struct spry_state_hdr *h, uint64_t fsize, struct geom *g)
{
	if (h->magic != STATE_MAGIC || h->version != STATE_VERSION ||
	    h->hdr_size != STATE_HDR_SIZE || h->size != fsize ||
	    h->hdr_check != state_hdr_check(h))
		return false;
	if (geom_fill(h->size, h->nslots, g))
		return false;
	return g->nslots == h->nslots && g->max_keys == h->max_keys &&
	       g->heap_off == h->heap_off && g->chunk_size == h->chunk_size &&
	       g->nchunks == h->nchunks && atomic_load(&h->idx_sel) <= 1;
}

/*
 * Map the store in @fd (@path for messages, may be NULL).  @sole: no
 * other process has it open (the caller holds flock LOCK_EX): start the
 * mutex afresh, and repair when a writer died in a change or the machine
 * rebooted since.  @created: @fd is new and empty, write a new store of
 * opts->size.  Else the header must be valid.
 */
struct spry_state *state_map(int fd, const char *path, uint64_t expect_size,
			     bool sole, bool created, const struct spry_state_opts *opts)
{
	const char *name = path ? path : "(fd)";
	struct spry_state_hdr *h;
	struct spry_state *st;
	char boot[40] = "";
	struct stat sb;
	struct geom g;
	int err;

	st = calloc(1, sizeof(*st));
	if (!st) {
		state_seterr(ENOMEM, "%s", name);
		errno = ENOMEM;
		return NULL;
	}
	st->fd = fd;
	st->swap_fd = -1;
	if (path && !(st->path = strdup(path))) {
		err = -ENOMEM;
		goto fail_nofd;
	}
	if (created) {
		struct statfs sf;
		uint64_t size = opts->size, page = 4096;

		if (!fstatfs(fd, &sf) && sf.f_bsize > 4096 && !(sf.f_bsize & (sf.f_bsize - 1)))
			page = (uint64_t)sf.f_bsize;	/* hugetlbfs: its page */
		size = align_up(size, page);
		err = geom_make(size, opts->max_keys ? opts->max_keys :
				(uint32_t)(size / 1024 > 192 ? (size / 1024 > UINT32_MAX / 2 ?
				UINT32_MAX / 2 : size / 1024) : 192), &g);
		if (err) {
			state_seterr(0, "%s: size %llu (max keys %u) out of range: %llu..%llu bytes, "
				     "and room for the index", name, (unsigned long long)opts->size,
				     opts->max_keys, (unsigned long long)SPRY_STATE_MIN_SIZE,
				     (unsigned long long)SPRY_STATE_MAX_SIZE);
			goto fail_nofd;
		}
		if (ftruncate(fd, (off_t)size)) {
			err = -errno;
			state_seterr(errno, "%s: ftruncate %llu", name, (unsigned long long)size);
			goto fail_nofd;
		}
	}
	if (fstat(fd, &sb)) {
		err = -errno;
		state_seterr(errno, "%s: fstat", name);
		goto fail_nofd;
	}
	if ((uint64_t)sb.st_size < SPRY_STATE_MIN_SIZE || (uint64_t)sb.st_size > SPRY_STATE_MAX_SIZE ||
	    (expect_size && (uint64_t)sb.st_size != expect_size)) {
		err = -EBADMSG;
		state_seterr(0, "%s: not a state store (%lld bytes)", name, (long long)sb.st_size);
		goto fail_nofd;
	}
	st->size = (uint64_t)sb.st_size;
	st->base = mmap(NULL, st->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (st->base == MAP_FAILED) {
		st->base = NULL;
		err = -errno;
		state_seterr(errno, "%s: mmap %llu bytes", name, (unsigned long long)st->size);
		goto fail_nofd;
	}
	h = state_hdr(st);
	if (created) {
		memset(h, 0, STATE_HDR_SIZE);
		h->version = STATE_VERSION;
		h->hdr_size = STATE_HDR_SIZE;
		h->size = g.size;
		h->nslots = g.nslots;
		h->max_keys = g.max_keys;
		h->heap_off = g.heap_off;
		h->chunk_size = g.chunk_size;
		h->nchunks = g.nchunks;
		h->top = g.heap_off;
		h->magic = STATE_MAGIC;
		h->hdr_check = state_hdr_check(h);
	}
	if (!hdr_valid(h, st->size, &g)) {
		err = -EBADMSG;
		state_seterr(0, "%s: not a state store, or a damaged header", name);
		goto fail_nofd;
	}
	st->heap_off = g.heap_off;
	st->nslots = g.nslots;
	st->max_keys = g.max_keys;
	st->chunk_size = g.chunk_size;
	st->nchunks = g.nchunks;

	if (sole) {
		bool repair = h->writing;

		if (atomic_load(&h->seq) & 1)
			repair = true;	/* a change that never ended */
		err = mutex_init(st);
		if (err) {
			state_seterr(-err, "%s: mutex", name);
			goto fail_nofd;
		}
		state_boot_id(boot);
		if (strncmp(boot, h->boot_id, sizeof(h->boot_id)))
			repair = true;	/* the machine restarted since: trust nothing */
		memcpy(h->boot_id, boot, sizeof(h->boot_id));
		if (h->flags & STATE_F_SWAP_PENDING) {
			err = state_swap_attach(st);
			if (err)
				goto fail_nofd;
		}
		if (repair || !state_mutable_ok(st)) {
			pthread_mutex_lock(state_mutex(st));
			err = state_rebuild(st);
			pthread_mutex_unlock(state_mutex(st));
			if (err) {
				state_seterr(-err, "%s: repair", name);
				goto fail_nofd;
			}
		}
	} else if (h->flags & STATE_F_SWAP_PENDING) {
		err = state_swap_attach(st);
		if (err)
			goto fail_nofd;
	}
	return st;

fail_nofd:
	st->fd = -1;	/* the caller's */
	state_free_handle(st);
	errno = -err;
	return NULL;
}

/* flock LOCK_SH, having tried LOCK_EX first: *sole when it was granted. */
static int take_flock(int fd, bool *sole)
{
	*sole = !flock(fd, LOCK_EX | LOCK_NB);
	if (*sole)
		return 0;
	if (errno != EWOULDBLOCK)
		return -errno;
	return flock(fd, LOCK_SH) ? -errno : 0;
}

static struct spry_state *open_fd(int fd, const char *path, bool created,
				  const struct spry_state_opts *opts)
{
	struct spry_state *st;
	bool sole;
	int err;

	err = take_flock(fd, &sole);
	if (err) {
		state_seterr(-err, "%s: flock", path);
		close(fd);
		errno = -err;
		return NULL;
	}
	/* the path may have been swapped out (removed) while we waited */
	{
		struct stat a, b;

		if (fstat(fd, &a) || stat(path, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
			close(fd);
			errno = ESTALE;
			return NULL;
		}
	}
	st = state_map(fd, path, 0, sole || created, created, opts);
	if (!st) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	if (sole)
		flock(fd, LOCK_SH);
	return st;
}

SPRY_API struct spry_state *spry_state_open(const char *path, const struct spry_state_opts *opts)
{
	char tmp[PATH_MAX];
	int fd, err, tries;

	if (!path || !*path) {
		state_seterr(0, "state: no path");
		errno = EINVAL;
		return NULL;
	}
	for (tries = 0; tries < 8; tries++) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			struct spry_state *st = open_fd(fd, path, false, opts);

			if (st || errno != ESTALE)
				return st;
			continue;
		}
		if (errno != ENOENT || !opts || !opts->size) {
			err = errno;
			state_seterr(err, "%s", path);
			errno = err;
			return NULL;
		}
		/* a new store: made whole under a temporary name, then linked
		 * (link fails if another process made it meanwhile) */
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new.%d", path, (int)getpid()) >= sizeof(tmp)) {
			state_seterr(0, "%s: path too long", path);
			errno = ENAMETOOLONG;
			return NULL;
		}
		unlink(tmp);
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, opts->mode ? opts->mode : 0600);
		if (fd < 0) {
			err = errno;
			state_seterr(err, "%s", tmp);
			errno = err;
			return NULL;
		}
		{
			struct spry_state *st;

			flock(fd, LOCK_EX);
			st = state_map(fd, path, 0, true, true, opts);
			if (!st) {
				err = errno;
				close(fd);
				unlink(tmp);
				errno = err;
				return NULL;
			}
			if (link(tmp, path)) {
				err = errno;
				unlink(tmp);
				spry_state_close(st);
				if (err == EEXIST)
					continue;
				state_seterr(err, "%s", path);
				errno = err;
				return NULL;
			}
			unlink(tmp);
			flock(fd, LOCK_SH);
			return st;
		}
	}
	state_seterr(0, "%s: kept changing while opening", path);
	errno = EAGAIN;
	return NULL;
}

SPRY_API void spry_state_close(struct spry_state *st)
{
	state_free_handle(st);
}

/* ------------------------------------------------------------ operations */

static int key_check(const void *key, size_t klen)
{
	if (!key || !klen) {
		state_seterr(0, "state: empty key");
		return -EINVAL;
	}
	if (klen > SPRY_STATE_KEY_MAX) {
		state_seterr(0, "state: key of %zu bytes (at most %u)", klen, SPRY_STATE_KEY_MAX);
		return -E2BIG;
	}
	return 0;
}

/* Set @key to a new record of @vlen bytes (copied from @val, zeros when
 * NULL); *@out: the record.  Locked. */
static int put_locked(struct spry_state *st, const void *key, size_t klen, const void *val,
		      uint64_t vlen, struct state_rec **out)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint64_t h = state_hash(key, klen), need = rec_need(klen, vlen), off, old = 0, oldcap = 0, top0;
	struct state_rec *r;
	struct probe p;
	int err;

	if (vlen > st->size || need > st->size - st->heap_off) {
		state_seterr(0, "state: a value of %llu bytes does not fit",
			     (unsigned long long)vlen);
		return -ENOSPC;
	}
	err = lookup(st, key, klen, h, &p);
	if (err && err != -ENOENT)
		return err;
	if (!p.found) {
		if (!p.have_free || (p.free_empty && hd->used_slots >= st->max_keys)) {
			if (hd->nkeys >= st->max_keys) {
				state_seterr(0, "state: the index is full (%u keys)", st->max_keys);
				return -ENOSPC;
			}
			err = rehash(st);
			if (err)
				return err;
			err = lookup(st, key, klen, h, &p);
			if (err != -ENOENT)
				return err ? err : -EUCLEAN;
			if (!p.have_free) {
				state_seterr(0, "state: the index is full (%u keys)", st->max_keys);
				return -ENOSPC;
			}
		}
	} else {
		old = p.off;
		oldcap = p.rec->cap;
	}
	top0 = hd->top;
	err = heap_alloc(st, need, &off);
	if (err) {
		if (err == -ENOSPC)
			state_seterr(0, "state: full (%llu bytes asked, %llu of %llu in use)",
				     (unsigned long long)need, (unsigned long long)hd->used_bytes,
				     (unsigned long long)(st->size - st->heap_off));
		return err;
	}
	/* a rebuild inside heap_alloc may have moved the insertion point:
	 * look again (the key's own slot does not move) */
	if (!p.found) {
		err = lookup(st, key, klen, h, &p);
		if (err != -ENOENT || !p.have_free) {
			free_block(st, off, need);
			return err && err != -ENOENT ? err : -EUCLEAN;
		}
	}
	err = state_ensure(st, off, need);
	if (err) {
		free_block(st, off, need);
		return err;
	}
	if (need >= (64u << 10) && off >= top0) {
		/* a big value in new space: its pages at once rather than a
		 * fault each (reused space has its pages) */
		uint64_t a = off & ~4095ULL;

		madvise(st->base + a, align_up(off + need, 4096) - a, MADV_POPULATE_WRITE);
	}
	r = (struct state_rec *)(st->base + off);
	r->magic = REC_MAGIC;
	r->klen = (uint32_t)klen;
	r->vlen = vlen;
	r->cap = need;
	r->hash = (uint32_t)h;
	memcpy(rec_key(r), key, klen);
	if (val)
		memcpy(rec_val(r), val, vlen);
	else
		memset(rec_val(r), 0, vlen);
	r->hcrc = rec_crc(r, off);
	/* the commit: one aligned 8-byte store, after the record */
	atomic_store_explicit((_Atomic uint64_t *)&slots(st)[p.slot], SLOT_MAKE(h, off),
			      memory_order_release);
	if (old) {
		free_block(st, old, oldcap);
		hd->used_bytes += need - oldcap;
	} else {
		hd->nkeys++;
		if (p.free_empty)
			hd->used_slots++;
		hd->used_bytes += need;
	}
	*out = r;
	return 0;
}

SPRY_API int spry_state_put(struct spry_state *st, const void *key, size_t klen,
			    const void *val, size_t vlen)
{
	struct state_rec *r;
	int err;

	if (!st || (!val && vlen))
		return -EINVAL;
	err = key_check(key, klen);
	if (err)
		return err;
	err = state_lock(st);
	if (err)
		return err;
	change_begin(st);
	err = put_locked(st, key, klen, val ? val : "", vlen, &r);
	change_end(st);
	state_unlock(st);
	return err;
}

SPRY_API void *spry_state_alloc(struct spry_state *st, const void *key, size_t klen,
				size_t vlen)
{
	struct state_rec *r = NULL;
	int err;

	if (!st) {
		errno = EINVAL;
		return NULL;
	}
	err = key_check(key, klen);
	if (!err)
		err = state_lock(st);
	if (err) {
		errno = -err;
		return NULL;
	}
	change_begin(st);
	err = put_locked(st, key, klen, NULL, vlen, &r);
	change_end(st);
	state_unlock(st);
	if (err) {
		errno = -err;
		return NULL;
	}
	return rec_val(r);
}

/* The record of @key, whole in memory.  Locked. */
static int find_locked(struct spry_state *st, const void *key, size_t klen,
		       struct state_rec **out, struct probe *p)
{
	struct state_rec *r;
	int err;

	err = lookup(st, key, klen, state_hash(key, klen), p);
	if (err)
		return err;
	r = p->rec;
	err = state_ensure(st, p->off, sizeof(*r) + align_up(r->klen, 8) + r->vlen);
	if (err)
		return err;
	*out = r;
	return 0;
}

/*
 * A get without the lock: a seqlock read.  Every byte read from the
 * mapping may be changing under it, so each value used to address memory
 * is read once into a local and checked against the file's bounds, and the
 * result counts only if no change ran meanwhile.  -EAGAIN: take the lock.
 */
static int get_fast(struct spry_state *st, const void *key, size_t klen, uint64_t h,
		    void *buf, size_t cap, size_t *vlen)
{
	struct spry_state_hdr *hd = state_hdr(st);
	uint64_t mask = st->nslots - 1, i, n, s, off, vl;
	const _Atomic uint64_t *idx;
	struct state_rec rec;
	uint32_t s1;
	int ret;

	s1 = atomic_load_explicit(&hd->seq, memory_order_acquire);
	if ((s1 & 1) || pending(st))
		return -EAGAIN;
	idx = (const _Atomic uint64_t *)slots(st);
	ret = -ENOENT;
	for (n = 0, i = h & mask; n < st->nslots; n++, i = (i + 1) & mask) {
		s = atomic_load_explicit(&idx[i], memory_order_relaxed);
		if (s == SLOT_EMPTY)
			break;
		if (s == SLOT_TOMB || SLOT_TAG(s) != SLOT_TAG(h))
			continue;
		off = s & SLOT_OFF_MASK;
		if (off < st->heap_off || off % STATE_ALIGN || off > st->size - sizeof(rec))
			return -EAGAIN;
		memcpy(&rec, st->base + off, sizeof(rec));
		if (rec.magic != REC_MAGIC || rec.hcrc != rec_crc(&rec, off) ||
		    rec.klen != klen || rec.hash != (uint32_t)h)
			continue;
		vl = rec.vlen;
		if (rec.cap > st->size - off || vl > rec.cap ||
		    sizeof(rec) + align_up(klen, 8) + vl > rec.cap)
			return -EAGAIN;
		if (memcmp(st->base + off + sizeof(rec), key, klen))
			continue;
		if (vlen)
			*vlen = (size_t)vl;
		if (vl > cap) {
			ret = -EMSGSIZE;
		} else {
			/* an empty value may be asked for with buf NULL, cap 0:
			 * memcpy's pointers must not be NULL even for 0 bytes */
			if (vl)
				memcpy(buf, st->base + off + sizeof(rec) + align_up(klen, 8),
				       (size_t)vl);
			ret = 0;
		}
		break;
	}
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&hd->seq, memory_order_relaxed) != s1)
		return -EAGAIN;
	return ret;
}

SPRY_API int spry_state_get(struct spry_state *st, const void *key, size_t klen,
			    void *buf, size_t cap, size_t *vlen)
{
	struct state_rec *r;
	struct probe p;
	int err, tries;

	if (!st || (!buf && cap))
		return -EINVAL;
	err = key_check(key, klen);
	if (err)
		return err;
	for (tries = 0; tries < 3; tries++) {
		err = get_fast(st, key, klen, state_hash(key, klen), buf, cap, vlen);
		if (err != -EAGAIN)
			return err;
	}
	err = state_lock(st);
	if (err)
		return err;
	err = find_locked(st, key, klen, &r, &p);
	if (!err) {
		if (vlen)
			*vlen = r->vlen;
		if (r->vlen > cap)
			err = -EMSGSIZE;
		else if (r->vlen)	/* buf may be NULL for an empty value */
			memcpy(buf, rec_val(r), r->vlen);
	}
	state_unlock(st);
	return err;
}

SPRY_API void *spry_state_ptr(struct spry_state *st, const void *key, size_t klen,
			      size_t *vlen)
{
	struct state_rec *r;
	struct probe p;
	int err;

	if (!st) {
		errno = EINVAL;
		return NULL;
	}
	err = key_check(key, klen);
	if (!err)
		err = state_lock(st);
	if (err) {
		errno = -err;
		return NULL;
	}
	err = find_locked(st, key, klen, &r, &p);
	state_unlock(st);
	if (err) {
		errno = -err;
		return NULL;
	}
	if (vlen)
		*vlen = r->vlen;
	return rec_val(r);
}

SPRY_API int spry_state_del(struct spry_state *st, const void *key, size_t klen)
{
	struct spry_state_hdr *hd;
	struct state_rec *r;
	struct probe p;
	uint64_t cap;
	int err;

	if (!st)
		return -EINVAL;
	err = key_check(key, klen);
	if (err)
		return err;
	err = state_lock(st);
	if (err)
		return err;
	hd = state_hdr(st);
	change_begin(st);
	err = lookup(st, key, klen, state_hash(key, klen), &p);
	if (!err) {
		r = rec_at(st, p.off);
		cap = r ? r->cap : 0;
		atomic_store_explicit((_Atomic uint64_t *)&slots(st)[p.slot], SLOT_TOMB,
				      memory_order_release);
		if (cap) {
			free_block(st, p.off, cap);
			hd->used_bytes -= cap <= hd->used_bytes ? cap : hd->used_bytes;
		}
		if (hd->nkeys)
			hd->nkeys--;
	}
	change_end(st);
	state_unlock(st);
	return err;
}

SPRY_API int spry_state_keys(struct spry_state *st, uint64_t *cursor, void *key,
			     size_t cap, size_t *klen)
{
	uint64_t i, *idx, ioff;
	struct state_rec *r;
	int err;

	if (!st || !cursor || (!key && cap))
		return -EINVAL;
	err = state_lock(st);
	if (err)
		return err;
	idx = slots(st);
	ioff = (uint64_t)((uint8_t *)idx - st->base);
	err = -ENOENT;
	for (i = *cursor; i < st->nslots; i++) {
		if (state_ensure(st, ioff + i * 8, 8)) {
			err = -EBADMSG;
			break;
		}
		if (idx[i] <= SLOT_TOMB)
			continue;
		r = rec_at(st, idx[i] & SLOT_OFF_MASK);
		if (!r)
			continue;
		if (klen)
			*klen = r->klen;
		if (r->klen > cap) {
			err = -EMSGSIZE;
			break;
		}
		memcpy(key, rec_key(r), r->klen);
		*cursor = i + 1;
		err = 0;
		break;
	}
	if (err == -ENOENT)
		*cursor = st->nslots;
	state_unlock(st);
	return err;
}

SPRY_API int spry_state_stats(struct spry_state *st, struct spry_state_stats *s)
{
	struct spry_state_hdr *hd;
	int err;

	if (!st || !s)
		return -EINVAL;
	err = state_lock(st);
	if (err)
		return err;
	hd = state_hdr(st);
	memset(s, 0, sizeof(*s));
	s->size = st->size;
	s->heap_size = st->size - st->heap_off;
	s->used = hd->used_bytes;
	s->keys = hd->nkeys;
	s->max_keys = st->max_keys;
	s->chunks = st->nchunks;
	s->chunks_loaded = pending(st) ? hd->chunks_loaded : st->nchunks;
	s->recoveries = hd->recoveries;
	state_unlock(st);
	return 0;
}
