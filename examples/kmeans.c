// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kmeans: K-Means over P cloud processes of one app (docs/PROCESS.md,
 * "Workloads"), each holding a shard of the points in its state
 * (include/spry/state.h) and exchanging the centroids' partial sums with
 * the others through mailboxes (spry_send_all/spry_recv) every iteration.
 * The data set, the arithmetic and the answers' text: examples/kmeans.h.
 *
 *   load   "N D K SEED RANK P": generate shard RANK of P of the data set
 *          into this process's state (its points, no centroid assignment,
 *          the first centroids, iteration 0): "loaded shard R of P points
 *          LO..HI\n"
 *   step   "I": iteration I (the state's iteration + 1, else 409).  Assign
 *          this shard's points, send the partial sums to every other
 *          process of the app (mailbox 0: exactly P - 1 must be live),
 *          receive theirs (10 s at most), and compute the new centroids
 *          exactly as every other process does; answer the iteration's
 *          text.  The state changes only when all of it succeeded (the
 *          assignments under a key per iteration's parity, then the
 *          iteration and centroids in one put): a failed or killed step
 *          leaves the state of iteration I - 1, and may be done again.
 *   show   the text of the state's iteration (after a swap, a wake, a
 *          kill -9: the same)
 *
 * Every process of the app must be a shard of the same data set, all P of
 * them live during a step (a driver invokes step on all P at once).
 *
 *   kmeans reference N D K SEED ITERS
 *
 * runs the same algorithm in this one process (no spry) and prints the
 * text of each iteration, up to ITERS or the first that changes nothing:
 * what the P processes' answers, one iteration after another, must equal.
 *
 *   spry app add kmeans fns load,step,show exec build/examples/kmeans create manual
 *   for r in 0 1 2; do spry process create kmeans id $((r + 1)); done
 *   curl -d '30000 4 8 7 0 3' http://127.0.0.1:8080/kmeans/1/load   # ranks 1, 2 too
 *   curl -d 1 http://127.0.0.1:8080/kmeans/1/step &   # and /2/step, /3/step at once
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spry/spry.h>
#include <spry/state.h>

#include "kmeans.h"

#define KM_MAILBOX		0
#define KM_RECV_TIMEOUT_MS	10000

#define K_PARAMS	"km/params"
#define K_POINTS	"km/pts"
#define K_CUR		"km/cur"
static const char *const k_asg[2] = { "km/asg0", "km/asg1" };
#define KLEN(s)		strlen(s)

/* The committed iteration: "km/cur" = this, counts[k], cent[k * dim]. */
struct km_cur {
	uint32_t	iter;
	uint32_t	pad;
	uint64_t	changed;
	/* then int64_t counts[k], cent[k * dim] */
};
_Static_assert(sizeof(struct km_cur) == 16, "km_cur is stored as is");
#define KM_CUR_SIZE(k, dim)	(sizeof(struct km_cur) + (size_t)(k) * ((dim) + 1) * sizeof(int64_t))

static struct spry_state *state_of(struct spry_req *req, int *err)
{
	struct spry_state *st = spry_fn_state();

	if (!st)
		*err = spry_req_error(req, 500, errno == ENOENT ? -ENOTSUP : -errno,
				      "kmeans needs a process state (%s)", spry_state_error());
	return st;
}

/* This process's data set and committed iteration (pointers into its state). */
static int load_cur(struct spry_req *req, struct spry_state *st, struct km_params *p,
		    struct km_cur **cur)
{
	size_t vl;
	int err;

	err = spry_state_get(st, K_PARAMS, KLEN(K_PARAMS), p, sizeof(*p), &vl);
	if (err == -ENOENT)
		return spry_req_error(req, 409, -ENOENT, "no data set loaded (load first)");
	if (err || vl != sizeof(*p))
		return spry_req_error(req, 500, err ? err : -EBADMSG, "state: %s",
				      err ? spry_state_error() : "bad km/params");
	*cur = spry_state_ptr(st, K_CUR, KLEN(K_CUR), &vl);
	if (!*cur && errno == ENOENT)
		return spry_req_error(req, 409, -ENOENT, "no data set loaded (load first)");
	if (!*cur)
		return spry_req_error(req, 500, -errno, "state: %s", spry_state_error());
	if (vl != KM_CUR_SIZE(p->k, p->dim))
		return spry_req_error(req, 500, -EBADMSG, "state: bad km/cur");
	return 0;
}

static int load(struct spry_req *req, void *user)
{
	struct spry_state *st;
	struct km_params p;
	struct km_cur *cur;
	uint64_t lo, hi, i;
	const char *why, *in;
	char out[128];
	size_t len, vlen;
	uint32_t *asg;
	int32_t *x;
	int err = 0, n;

	(void)user;
	st = state_of(req, &err);
	if (!st)
		return err;
	in = spry_req_data(req, &len);
	if (km_params_parse(in, len, &p, spry_parse_u64, &why))
		return spry_req_error(req, 400, -EINVAL, "%s", why);
	km_shard(&p, &lo, &hi);
	/* mails of an earlier data set or of a failed step: not for this one */
	for (;;) {
		char junk[64];
		ssize_t r = spry_recv(KM_MAILBOX, junk, sizeof(junk), 0, NULL);

		if (r == -ETIMEDOUT)
			break;
		if (r == -EMSGSIZE) {	/* too big for junk: take it with room enough */
			size_t cap = 1u << 20;
			void *big = malloc(cap);

			r = big ? spry_recv(KM_MAILBOX, big, cap, 0, NULL) : -ENOMEM;
			free(big);
		}
		if (r < 0 && r != -ETIMEDOUT)
			return spry_req_error(req, 500, (int)r, "emptying mailbox %d: %s",
					      KM_MAILBOX, strerror((int)-r));
	}

	/* "km/cur" last: a load cut short leaves no data set */
	err = spry_state_del(st, K_CUR, KLEN(K_CUR));
	if (err && err != -ENOENT)
		goto fail;
	err = spry_state_put(st, K_PARAMS, KLEN(K_PARAMS), &p, sizeof(p));
	if (err)
		goto fail;
	vlen = (size_t)(hi - lo) * p.dim * sizeof(*x);
	x = spry_state_alloc(st, K_POINTS, KLEN(K_POINTS), vlen ? vlen : 1);
	if (!x)
		goto fail_errno;
	km_points(&p, lo, hi, x);
	vlen = (size_t)(hi - lo) * sizeof(*asg);
	for (i = 0; i < 2; i++) {
		asg = spry_state_alloc(st, k_asg[i], KLEN(k_asg[i]), vlen ? vlen : 1);
		if (!asg)
			goto fail_errno;
		memset(asg, 0xff, vlen);	/* UINT32_MAX: no centroid yet */
	}
	cur = calloc(1, KM_CUR_SIZE(p.k, p.dim));
	if (!cur)
		return spry_req_error(req, 500, -ENOMEM, "out of memory");
	km_init_centroids(&p, (int64_t *)(cur + 1) + p.k);
	err = spry_state_put(st, K_CUR, KLEN(K_CUR), cur, KM_CUR_SIZE(p.k, p.dim));
	free(cur);
	if (err)
		goto fail;
	n = snprintf(out, sizeof(out), "loaded shard %u of %u points %" PRIu64 "..%" PRIu64 "\n",
		     p.rank, p.nproc, lo, hi);
	return spry_req_reply(req, 0, "text/plain", out, (size_t)n);
fail_errno:
	err = -errno;
fail:
	return spry_req_error(req, err == -ENOSPC ? 507 : 500, err, "state: %s",
			      spry_state_error());
}

static int64_t ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/*
 * Send this shard's partial sums @mine to the P - 1 others and add theirs
 * for iteration @iter into @sums, @counts, *@changed (which hold ours;
 * @sums may be @mine's own: @mine is sent before anything is added).  0, or an HTTP status (with @why, @err) to answer.
 */
static unsigned int exchange(const struct km_params *p, uint32_t iter, const struct km_msg *mine,
			     int64_t *sums, int64_t *counts, uint64_t *changed,
			     char *why, size_t whylen, int *err)
{
	size_t size = KM_MSG_SIZE(p->k, p->dim), cap = size, kd = (size_t)p->k * p->dim;
	bool seen[KM_P_MAX] = { false };
	struct timespec deadline;
	const struct km_msg *m;
	const int64_t *ms;
	unsigned int failed = 0, got = 0, status = 0;
	const char *bad;
	void *buf = NULL, *nb;
	uint64_t from;
	ssize_t r;
	int64_t left;
	size_t j;
	int n;

	if (p->nproc == 1)
		return 0;
	n = spry_send_all(KM_MAILBOX, mine, size, &failed);
	if (n < 0) {
		*err = n;
		snprintf(why, whylen, "send to all: %s", strerror(-n));
		return 502;
	}
	if (failed || (unsigned int)n != p->nproc - 1) {
		*err = -EPIPE;
		snprintf(why, whylen, "partial sums delivered to %d processes (%u failed), want %u",
			 n, failed, p->nproc - 1);
		return 503;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += KM_RECV_TIMEOUT_MS / 1000;
	buf = malloc(cap);
	if (!buf) {
		*err = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		return 500;
	}
	seen[p->rank] = true;
	while (got < p->nproc - 1) {
		left = ms_left(&deadline);
		if (left < 0)
			left = 0;
		r = spry_recv(KM_MAILBOX, buf, cap, (int)left, &from);
		if (r == -EMSGSIZE && cap < (16u << 20)) {	/* not ours: take it out */
			nb = realloc(buf, cap * 4);
			if (!nb) {
				*err = -ENOMEM;
				snprintf(why, whylen, "out of memory");
				status = 500;
				break;
			}
			buf = nb;
			cap *= 4;
			continue;
		}
		if (r < 0) {
			*err = (int)r;
			snprintf(why, whylen, "iteration %u: %u of %u partial sums received: %s",
				 iter, got, p->nproc - 1, strerror((int)-r));
			status = r == -ETIMEDOUT ? 504 : 500;
			break;
		}
		m = buf;
		if (km_msg_check(p, buf, (size_t)r, &bad)) {
			*err = -EBADMSG;
			snprintf(why, whylen, "from process %" PRIu64 ": %s", from, bad);
			status = 502;
			break;
		}
		if (m->iter < iter)	/* of an iteration that failed before: done with */
			continue;
		if (m->iter > iter || seen[m->rank]) {
			*err = -EPROTO;
			snprintf(why, whylen, "from process %" PRIu64 ": %s (iteration %u, shard %u)",
				 from, m->iter > iter ? "a later iteration" : "a second message of a shard",
				 m->iter, m->rank);
			status = 502;
			break;
		}
		seen[m->rank] = true;
		got++;
		ms = (const int64_t *)(m + 1);
		for (j = 0; j < kd; j++)
			sums[j] += ms[j];
		for (j = 0; j < p->k; j++)
			counts[j] += ms[kd + j];
		*changed += m->changed;
	}
	free(buf);
	return status;
}

static int step(struct spry_req *req, void *user)
{
	char text[KM_TEXT_MAX], why[160];
	struct km_msg *msg = NULL;
	struct spry_state *st;
	struct km_params p;
	struct km_cur *cur, *next = NULL;
	uint64_t lo, hi, iter, count;
	uint32_t *asg_old, *asg_new = NULL;
	const int32_t *x;
	int64_t *sums, *counts, *cent;
	const char *in;
	unsigned int status;
	size_t len, vl, kd;
	int err = 0;

	(void)user;
	st = state_of(req, &err);
	if (!st)
		return err;
	in = spry_req_data(req, &len);
	if (spry_parse_u64(in, len, 1, KM_ITER_MAX, &iter))
		return spry_req_error(req, 400, -EINVAL, "want the iteration's number (1..%u)",
				      KM_ITER_MAX);
	err = load_cur(req, st, &p, &cur);
	if (err)
		return err;
	if (iter != (uint64_t)cur->iter + 1)
		return spry_req_error(req, 409, -EALREADY, "at iteration %u: the next is %u",
				      cur->iter, cur->iter + 1);
	km_shard(&p, &lo, &hi);
	count = hi - lo;
	kd = (size_t)p.k * p.dim;
	x = spry_state_ptr(st, K_POINTS, KLEN(K_POINTS), &vl);
	if (!x || vl != (count ? count * p.dim * sizeof(*x) : 1))
		return spry_req_error(req, 500, -EBADMSG, "state: no or bad km/pts");
	asg_old = spry_state_ptr(st, k_asg[(iter - 1) & 1], KLEN(k_asg[0]), &vl);
	if (!asg_old || vl != (count ? count * sizeof(*asg_old) : 1))
		return spry_req_error(req, 500, -EBADMSG, "state: no or bad km/asg");

	msg = malloc(KM_MSG_SIZE(p.k, p.dim));
	next = malloc(KM_CUR_SIZE(p.k, p.dim));
	asg_new = malloc(count ? count * sizeof(*asg_new) : 1);
	if (!msg || !next || !asg_new) {
		err = spry_req_error(req, 500, -ENOMEM, "out of memory");
		goto out;
	}
	*msg = (struct km_msg){ .magic = KM_MSG_MAGIC, .iter = (uint32_t)iter, .rank = p.rank,
				.nproc = p.nproc, .k = p.k, .dim = p.dim };
	sums = (int64_t *)(msg + 1);
	counts = sums + kd;
	msg->changed = km_assign(p.k, p.dim, (const int64_t *)(cur + 1) + p.k, x, count,
				 asg_old, asg_new, sums, counts);

	/* the totals start as ours; the others' are added to them */
	*next = (struct km_cur){ .iter = (uint32_t)iter, .changed = msg->changed };
	memcpy(next + 1, counts, p.k * sizeof(*counts));
	cent = (int64_t *)(next + 1) + p.k;
	memcpy(cent, (const int64_t *)(cur + 1) + p.k, kd * sizeof(*cent));
	/*
	 * Our sums are in @msg; exchange() sends it first, then adds the
	 * others' sums into them in place: they become the totals.
	 */
	status = exchange(&p, (uint32_t)iter, msg, sums, (int64_t *)(next + 1), &next->changed,
			  why, sizeof(why), &err);
	if (!status)
		km_update(p.k, p.dim, sums, (int64_t *)(next + 1), cent);
	if (status) {
		err = spry_req_error(req, status, err, "%s", why);
		goto out;
	}

	/* commit: the assignments, then the iteration with its centroids */
	err = spry_state_put(st, k_asg[iter & 1], KLEN(k_asg[0]), asg_new,
			     count ? count * sizeof(*asg_new) : 1);
	if (!err)
		err = spry_state_put(st, K_CUR, KLEN(K_CUR), next, KM_CUR_SIZE(p.k, p.dim));
	if (err) {
		err = spry_req_error(req, 500, err, "state: %s", spry_state_error());
		goto out;
	}
	len = km_text(text, (uint32_t)iter, next->changed, p.k, p.dim,
		      (const int64_t *)(next + 1), cent);
	err = spry_req_reply(req, 0, "text/plain", text, len);
out:
	free(asg_new);
	free(next);
	free(msg);
	return err;
}

static int show(struct spry_req *req, void *user)
{
	char text[KM_TEXT_MAX];
	struct spry_state *st;
	struct km_params p;
	struct km_cur *cur;
	const int64_t *counts;
	size_t len;
	int err = 0;

	(void)user;
	st = state_of(req, &err);
	if (!st)
		return err;
	err = load_cur(req, st, &p, &cur);
	if (err)
		return err;
	counts = (const int64_t *)(cur + 1);
	len = km_text(text, cur->iter, cur->changed, p.k, p.dim, counts, counts + p.k);
	return spry_req_reply(req, 0, "text/plain", text, len);
}

/* kmeans reference N D K SEED ITERS: the single-process reference. */
static int reference(int argc, char **argv)
{
	static const char usage[] = "usage: kmeans reference N D K SEED ITERS\n";
	uint64_t v[5], iter, changed, n;
	struct km_params p;
	int64_t *cent, *sums, *counts;
	uint32_t *asg[2];
	char text[KM_TEXT_MAX];
	const char *why;
	int32_t *x;
	int i, ret = 1;

	if (argc != 7) {
		fputs(usage, stderr);
		return 2;
	}
	for (i = 0; i < 5; i++)
		if (spry_parse_u64(argv[2 + i], strlen(argv[2 + i]), 0, UINT64_MAX, &v[i])) {
			fprintf(stderr, "kmeans: '%s' is not a number\n%s", argv[2 + i], usage);
			return 2;
		}
	if (v[1] > UINT32_MAX || v[2] > UINT32_MAX || v[4] < 1 || v[4] > KM_ITER_MAX) {
		fprintf(stderr, "kmeans: D, K or ITERS (1..%u) out of range\n", KM_ITER_MAX);
		return 2;
	}
	p = (struct km_params){ .n = v[0], .dim = (uint32_t)v[1], .k = (uint32_t)v[2],
				.seed = v[3], .rank = 0, .nproc = 1 };
	if (km_params_check(&p, &why)) {
		fprintf(stderr, "kmeans: %s\n", why);
		return 2;
	}
	n = p.n;
	x = malloc(n * p.dim * sizeof(*x));
	asg[0] = malloc(n * sizeof(**asg));
	asg[1] = malloc(n * sizeof(**asg));
	cent = malloc(p.k * p.dim * sizeof(*cent));
	sums = malloc(p.k * p.dim * sizeof(*sums));
	counts = malloc(p.k * sizeof(*counts));
	if (!x || !asg[0] || !asg[1] || !cent || !sums || !counts) {
		fprintf(stderr, "kmeans: out of memory\n");
		goto out;
	}
	km_points(&p, 0, n, x);
	memset(asg[0], 0xff, n * sizeof(**asg));
	km_init_centroids(&p, cent);
	for (iter = 1; iter <= v[4]; iter++) {
		changed = km_assign(p.k, p.dim, cent, x, n, asg[(iter - 1) & 1], asg[iter & 1],
				    sums, counts);
		km_update(p.k, p.dim, sums, counts, cent);
		fwrite(text, 1, km_text(text, (uint32_t)iter, changed, p.k, p.dim, counts, cent),
		       stdout);
		if (!changed)
			break;
	}
	ret = fflush(stdout) ? 1 : 0;
out:
	free(counts);
	free(sums);
	free(cent);
	free(asg[1]);
	free(asg[0]);
	free(x);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct spry_app_fn fns[] = {
		{ "load",	load },
		{ "step",	step },
		{ "show",	show },
	};

	if (argc > 1 && !strcmp(argv[1], "reference"))
		return reference(argc, argv);
	return spry_app_main(argc, argv, fns, sizeof(fns) / sizeof(fns[0]), NULL);
}
