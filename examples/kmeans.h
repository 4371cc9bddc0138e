/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * K-Means on integers: the arithmetic shared by examples/kmeans (each cloud
 * process holding a shard of the points in its state, the centroids'
 * partial sums exchanged through mailboxes), its single-process reference
 * (`kmeans reference`) and the Redis baseline (bench/kmeans_redis.c), so
 * that all of them compute exactly the same thing.  Plain C on integers:
 * no floating point, no spry types; every result is independent of how the
 * points are split (sums of integers do not depend on their order).
 *
 * The data set (N points of D coordinates, K clusters, a 64-bit SEED):
 *   mix(x)        splitmix64's finalizer of x + 0x9e3779b97f4a7c15
 *   rnd(i)        mix(SEED ^ mix(i)) (all arithmetic modulo 2^64)
 *   center c, d   2^17 + rnd(2^62 + c*D + d) % (2^20 - 2^18)
 *   point g:      cluster c = rnd(g*(D+1)) % K, coordinate d =
 *                 center(c, d) + rnd(g*(D+1) + 1 + d) % 2^18 - 2^17
 *                 (every coordinate in [0, 2^20))
 * Iteration i (from 1), from centroids C (at first: points 0..K-1):
 *   each point goes to the centroid at the least squared distance (the
 *   lowest index among equals); "changed" counts the points whose centroid
 *   is not the one of iteration i - 1 (every point at iteration 1);
 *   centroid c becomes, per coordinate, floor(sum / count) over its points
 *   (unchanged when it has none).
 * The text of an iteration (what `step` answers and the reference prints):
 *   "iter I changed X\n", then per centroid "COUNT X1 ... XD\n".
 */
#ifndef SPRY_EXAMPLES_KMEANS_H
#define SPRY_EXAMPLES_KMEANS_H

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define KM_DIM_MAX	16
#define KM_K_MAX	64
#define KM_N_MAX	(1ULL << 26)	/* points of a data set */
#define KM_P_MAX	64		/* processes sharing one (a mailbox holds 64 mails) */
#define KM_ITER_MAX	100000
/* the longest text of one iteration */
#define KM_TEXT_MAX	(64 + KM_K_MAX * (21 + KM_DIM_MAX * 8))

/* What defines a data set and a process's share of it. */
struct km_params {
	uint64_t	n;		/* points in all */
	uint64_t	seed;
	uint32_t	dim;		/* D */
	uint32_t	k;		/* K */
	uint32_t	rank;		/* this shard: 0..nproc-1 */
	uint32_t	nproc;		/* P */
};
_Static_assert(sizeof(struct km_params) == 32, "km_params is stored as is");

/* Partial sums of one iteration over one shard (a mailbox message). */
#define KM_MSG_MAGIC	0x6b6d7331u	/* "kms1" */
struct km_msg {
	uint32_t	magic;
	uint32_t	iter;
	uint32_t	rank;		/* sender's shard */
	uint32_t	nproc;
	uint32_t	k;
	uint32_t	dim;
	uint64_t	changed;
	/* then int64_t sums[k * dim], counts[k] */
};
_Static_assert(sizeof(struct km_msg) == 32, "km_msg crosses processes");
#define KM_MSG_SIZE(k, dim)	(sizeof(struct km_msg) + (size_t)(k) * ((dim) + 1) * sizeof(int64_t))

static inline uint64_t km_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline uint64_t km_rnd(uint64_t seed, uint64_t i)
{
	return km_mix(seed ^ km_mix(i));
}

/* 0, or -EINVAL with the reason in @why when @p is out of bounds. */
static inline int km_params_check(const struct km_params *p, const char **why)
{
	if (p->dim < 1 || p->dim > KM_DIM_MAX)
		return *why = "D must be 1..16", -EINVAL;
	if (p->k < 1 || p->k > KM_K_MAX)
		return *why = "K must be 1..64", -EINVAL;
	if (p->n < p->k || p->n > KM_N_MAX)
		return *why = "N must be K..2^26", -EINVAL;
	if (p->nproc < 1 || p->nproc > KM_P_MAX)
		return *why = "P must be 1..64", -EINVAL;
	if (p->rank >= p->nproc)
		return *why = "the rank must be below P", -EINVAL;
	if (p->n < p->nproc)
		return *why = "fewer points than processes", -EINVAL;
	return 0;
}

/* The points of shard @p->rank: global indices [*lo, *hi). */
static inline void km_shard(const struct km_params *p, uint64_t *lo, uint64_t *hi)
{
	*lo = p->n * p->rank / p->nproc;
	*hi = p->n * (p->rank + 1) / p->nproc;
}

/* Point @g's coordinates into @x[0..dim). */
static inline void km_point(const struct km_params *p, uint64_t g, int32_t *x)
{
	uint64_t base = g * (p->dim + 1);
	uint32_t c = (uint32_t)(km_rnd(p->seed, base) % p->k), d;

	for (d = 0; d < p->dim; d++) {
		uint64_t center = (1u << 17) +
			km_rnd(p->seed, (1ULL << 62) + (uint64_t)c * p->dim + d) % ((1u << 20) - (1u << 18));

		x[d] = (int32_t)(center + km_rnd(p->seed, base + 1 + d) % (1u << 18)) - (1 << 17);
	}
}

/* Points [lo, hi) into @x (row after row). */
static inline void km_points(const struct km_params *p, uint64_t lo, uint64_t hi, int32_t *x)
{
	uint64_t g;

	for (g = lo; g < hi; g++)
		km_point(p, g, x + (g - lo) * p->dim);
}

/* The first centroids: points 0..K-1. */
static inline void km_init_centroids(const struct km_params *p, int64_t *cent)
{
	int32_t x[KM_DIM_MAX];
	uint32_t c, d;

	for (c = 0; c < p->k; c++) {
		km_point(p, c, x);
		for (d = 0; d < p->dim; d++)
			cent[c * p->dim + d] = x[d];
	}
}

/*
 * One pass over @n points @x: each point's nearest centroid of @cent into
 * @asg_new (UINT32_MAX in @asg_old: none yet), its coordinates added to
 * @sums[c*dim..], @counts[c] incremented (both zeroed here).  The number of
 * points whose centroid changed.
 */
static inline uint64_t km_assign(uint32_t k, uint32_t dim, const int64_t *cent,
				 const int32_t *x, uint64_t n, const uint32_t *asg_old,
				 uint32_t *asg_new, int64_t *sums, int64_t *counts)
{
	uint64_t i, changed = 0;
	uint32_t c, d;

	memset(sums, 0, sizeof(*sums) * k * dim);
	memset(counts, 0, sizeof(*counts) * k);
	for (i = 0; i < n; i++) {
		const int32_t *pt = x + i * dim;
		uint64_t best = UINT64_MAX;
		uint32_t bc = 0;

		for (c = 0; c < k; c++) {
			uint64_t dist = 0;

			for (d = 0; d < dim; d++) {
				int64_t t = pt[d] - cent[c * dim + d];

				dist += (uint64_t)(t * t);
			}
			if (dist < best) {
				best = dist;
				bc = c;
			}
		}
		changed += asg_old[i] != bc;
		asg_new[i] = bc;
		counts[bc]++;
		for (d = 0; d < dim; d++)
			sums[bc * dim + d] += pt[d];
	}
	return changed;
}

/* New centroids from the sums and counts of every shard. */
static inline void km_update(uint32_t k, uint32_t dim, const int64_t *sums,
			     const int64_t *counts, int64_t *cent)
{
	uint32_t c, d;

	for (c = 0; c < k; c++)
		if (counts[c])
			for (d = 0; d < dim; d++)
				cent[c * dim + d] = sums[c * dim + d] / counts[c];
}

/* The text of iteration @iter into @out (KM_TEXT_MAX bytes): its length. */
static inline size_t km_text(char *out, uint32_t iter, uint64_t changed, uint32_t k,
			     uint32_t dim, const int64_t *counts, const int64_t *cent)
{
	size_t at;
	uint32_t c, d;

	at = (size_t)snprintf(out, KM_TEXT_MAX, "iter %u changed %" PRIu64 "\n", iter, changed);
	for (c = 0; c < k; c++) {
		at += (size_t)snprintf(out + at, KM_TEXT_MAX - at, "%" PRId64, counts[c]);
		for (d = 0; d < dim; d++)
			at += (size_t)snprintf(out + at, KM_TEXT_MAX - at, " %" PRId64,
					       cent[c * dim + d]);
		out[at++] = '\n';
	}
	return at;
}

/*
 * Parse "N D K SEED RANK P" (decimal numbers separated by blanks) with
 * @parse (spry_parse_u64's signature).  0 or -EINVAL with @why.
 */
static inline int km_params_parse(const char *s, size_t len, struct km_params *p,
				  int (*parse)(const char *, size_t, uint64_t, uint64_t, uint64_t *),
				  const char **why)
{
	uint64_t v[6];
	size_t at = 0, from;
	int i;

	for (i = 0; i < 6; i++) {
		while (at < len && (s[at] == ' ' || s[at] == '\t' || s[at] == '\n'))
			at++;
		from = at;
		while (at < len && s[at] != ' ' && s[at] != '\t' && s[at] != '\n')
			at++;
		if (parse(s + from, at - from, 0, UINT64_MAX, &v[i]))
			return *why = "want N D K SEED RANK P (decimal numbers)", -EINVAL;
	}
	while (at < len && (s[at] == ' ' || s[at] == '\t' || s[at] == '\n'))
		at++;
	if (at != len)
		return *why = "want N D K SEED RANK P (decimal numbers)", -EINVAL;
	if (v[1] > UINT32_MAX || v[2] > UINT32_MAX || v[4] > UINT32_MAX || v[5] > UINT32_MAX)
		return *why = "D, K, RANK or P out of range", -EINVAL;
	p->n = v[0];
	p->dim = (uint32_t)v[1];
	p->k = (uint32_t)v[2];
	p->seed = v[3];
	p->rank = (uint32_t)v[4];
	p->nproc = (uint32_t)v[5];
	return km_params_check(p, why);
}

/*
 * Check a message of partial sums for @p (and iteration @iter): 0, or
 * -EBADMSG with @why.  Its iteration is checked by the caller.
 */
static inline int km_msg_check(const struct km_params *p, const void *buf, size_t len,
			       const char **why)
{
	const struct km_msg *m = buf;

	if (len < sizeof(*m) || m->magic != KM_MSG_MAGIC)
		return *why = "not a k-means message", -EBADMSG;
	if (m->k != p->k || m->dim != p->dim || m->nproc != p->nproc || m->rank >= p->nproc)
		return *why = "a message of another data set", -EBADMSG;
	if (len != KM_MSG_SIZE(p->k, p->dim))
		return *why = "a message of the wrong size", -EBADMSG;
	return 0;
}

#endif /* SPRY_EXAMPLES_KMEANS_H */
