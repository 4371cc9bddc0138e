// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_pool: the chain buffer pool (shm/pool.c).
 *
 * Backings (memfd, hugetlbfs with owner and mode, memfd hugetlb, the
 * fallbacks), option checks, alloc/free/stale/double free, size classes,
 * exhaustion, spry_pool_ptr() bounds, attach through a passed fd, four
 * processes hammering one pool, reclaim after SIGKILL, reclaim_if, and
 * damaged or hostile pool files (attach refuses; alloc fails, never hangs).
 *
 * Needs root for the hugetlbfs part (mount, /proc/sys/vm/nr_hugepages,
 * fchown); those points are skipped otherwise.  nr_hugepages is restored.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"
#include "shm/pool_internal.h"
#include "selftests/tap.h"

#define TEST_TIMEOUT	300	/* seconds, the whole program */

#define NB		16	/* regular buffers in the main pool */
#define BS_ASKED	1000	/* rounded up to 1024 */
#define BS		1024
#define NL		4
#define LS		8192

#define N_CHILDREN	4
#define N_CYCLES	50000

#define NR_HUGE_PATH	"/proc/sys/vm/nr_hugepages"
#define HUGE_UID	65534
#define HUGE_GID	65534

static char tmpdir[64];
static char hugedir[96], smalldir[96], junkpath[96];
static bool huge_mounted, small_mounted;
static long nr_huge_old = -1;		/* >= 0: must be restored */

/* ---------------------------------------------------------------- helpers */

static long read_long(const char *path)
{
	const char *end;
	char buf[64];
	uint64_t v;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* "N\n" */
	if (spry_num__parse(buf, &end, 0, LONG_MAX, &v) || strcmp(end, "\n"))
		return -EINVAL;
	return (long)v;
}

/* Async-signal-safe: used by the timeout handler too. */
static int write_long(const char *path, long v)
{
	char buf[32], *p = buf + sizeof(buf);
	int fd, err = 0;
	ssize_t len;

	do {
		*--p = '0' + v % 10;
		v /= 10;
	} while (v);
	len = buf + sizeof(buf) - p;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, p, len) != len)
		err = -errno;
	close(fd);
	return err;
}

static long meminfo(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	const char *p, *end;
	long v = -1;
	uint64_t u;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			/* "Key:     N kB" or "Key:     N" */
			p = line + klen + 1;
			while (*p == ' ')
				p++;
			if (!spry_num__parse(p, &end, 0, LONG_MAX, &u))
				v = (long)u;
			break;
		}
	}
	fclose(f);
	return v;
}

static void cleanup_system(void)
{
	if (huge_mounted && !umount2(hugedir, MNT_DETACH))
		huge_mounted = false;
	if (small_mounted && !umount2(smalldir, MNT_DETACH))
		small_mounted = false;
	if (nr_huge_old >= 0 && !write_long(NR_HUGE_PATH, nr_huge_old))
		nr_huge_old = -1;
}

/* SIGALRM (our own time limit), SIGTERM/SIGINT: leave the machine as it was. */
static void on_fatal(int sig)
{
	static const char msg[] = "Bail out! test_pool timed out or killed\n";

	(void)sig;
	cleanup_system();
	unlink(junkpath);
	rmdir(hugedir);
	rmdir(smalldir);
	rmdir(tmpdir);
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(KSFT_FAIL);
	_exit(KSFT_FAIL);
}

static struct spry_pool_opts main_opts(void)
{
	struct spry_pool_opts o = {
		.buf_size = BS_ASKED, .n_bufs = NB,
		.large_size = LS, .n_large = NL,
		.uid = (uid_t)-1, .gid = (gid_t)-1, .no_huge = 1,
	};
	return o;
}

static bool pool_whole(struct spry_pool *p)
{
	struct spry_pool_stats st;

	return !spry_pool_stats(p, &st) && st.n_free == st.n_bufs &&
	       st.n_large_free == st.n_large;
}

/*
 * Allocate every buffer of the class that fits @size, check they are
 * distinct and in range, then that one more is -ENOSPC, then free them all.
 */
static bool drain_class(struct spry_pool *p, uint32_t size, uint32_t n, uint32_t cap)
{
	struct spry_buf *b = calloc(n + 1, sizeof(*b));
	bool ok = true;
	uint32_t i, j;
	int err;

	if (!b)
		return false;
	for (i = 0; i < n && ok; i++) {
		err = spry_pool_alloc(p, size, 0x5eed, &b[i]);
		if (err || b[i].cap != cap || !spry_pool_ptr(p, b[i].off, cap)) {
			tap_diag("drain: alloc %u: %d cap %u", i, err, b[i].cap);
			ok = false;
			n = i;
			break;
		}
		for (j = 0; j < i; j++)
			if (b[j].off == b[i].off)
				ok = false;
	}
	if (ok) {
		err = spry_pool_alloc(p, size, 0x5eed, &b[n]);
		if (err != -ENOSPC) {
			tap_diag("drain: alloc past the end: %d", err);
			ok = false;
			if (!err)
				n++;
		}
	}
	for (i = 0; i < n; i++)
		if (spry_pool_free(p, b[i].off, b[i].gen))
			ok = false;
	free(b);
	return ok;
}

static pid_t fork_child(void)
{
	pid_t parent = getpid(), pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		/* Die with the parent, whatever kills it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(KSFT_FAIL);
		/* Only the parent cleans up mounts and nr_hugepages. */
		signal(SIGALRM, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
	}
	return pid;
}

/* Wait for @pid until @deadline_s seconds from now; SIGKILL it after. */
static int wait_child(pid_t pid, int deadline_s)
{
	struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
	int status, i;
	pid_t r;

	for (i = 0; i < deadline_s * 100; i++) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	tap_diag("child %d timed out", (int)pid);
	return -1;
}

static bool read_ready(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&pfd, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1;
}

static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -errno;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* A shared mapping of the pool's file, to look at and damage the header. */
static void *map_raw(struct spry_pool *p)
{
	void *m = mmap(NULL, spry_pool_size(p), PROT_READ | PROT_WRITE, MAP_SHARED,
		       spry_pool_fd(p), 0);

	return m == MAP_FAILED ? NULL : m;
}

static struct spry_pool_meta *raw_meta(void *raw)
{
	struct spry_pool_hdr *h = raw;

	return (struct spry_pool_meta *)((uint8_t *)raw + h->meta_off);
}

/* ------------------------------------------------------- create, options */

static struct spry_pool *test_create(struct spry_pool_layout *lay)
{
	struct spry_pool_opts o = main_opts();
	struct spry_pool_stats st = { 0 };
	struct spry_pool *p;
	int seals;

	p = spry_pool_create(NULL, "test-main", &o);
	if (p)
		spry_pool_stats(p, &st);
	if (!tap_ok(p && st.backing == SPRY_POOL_MEMFD &&
		    st.buf_size == BS && st.n_bufs == NB && st.n_free == NB &&
		    st.large_size == LS && st.n_large == NL && st.n_large_free == NL,
		    "create memfd pool: backing %u, %u x %u free %u, %u x %u free %u",
		    st.backing, st.n_bufs, st.buf_size, st.n_free, st.n_large,
		    st.large_size, st.n_large_free))
		return p;
	spry_pool__layout(BS, NB, LS, NL, lay);
	seals = fcntl(spry_pool_fd(p), F_GET_SEALS);
	tap_ok(spry_pool_size(p) == st.size && st.size % 4096 == 0 &&
	       st.size >= lay->size_total && spry_pool_fd(p) >= 0 && seals >= 0 &&
	       (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW),
	       "size %llu (layout %llu), fd %d, seals %#x",
	       (unsigned long long)st.size, (unsigned long long)lay->size_total,
	       spry_pool_fd(p), seals);
	return p;
}

static void test_opts(void)
{
	static const struct {
		uint32_t bs, nb, ls, nl;
		const char *name;
	} bad[] = {
		{ 0, 8, 0, 0, "zero buf_size" },
		{ 63, 8, 0, 0, "buf_size below min" },
		{ SPRY_POOL_MAX_BUF + 1, 8, 0, 0, "buf_size above max" },
		{ UINT32_MAX, 8, 0, 0, "buf_size 2^32-1 (rounding overflows)" },
		{ 1024, 0, 0, 0, "zero n_bufs" },
		{ 1024, SPRY_POOL_MAX_BUFS + 1, 0, 0, "n_bufs above max" },
		{ 1024, UINT32_MAX, 0, 0, "n_bufs 2^32-1" },
		{ 1024, 8, 0, 1, "large_size 0 with n_large" },
		{ 1000, 8, 1024, 1, "large_size rounds to buf_size" },
		{ 1024, 8, 512, 1, "large_size below buf_size" },
		{ 1024, 8, SPRY_POOL_MAX_BUF + 1, 1, "large_size above max" },
		{ 1024, 8, UINT32_MAX - 62, 1, "large_size rounding overflows" },
		{ 1024, 8, 4096, SPRY_POOL_MAX_BUFS + 1, "n_large above max" },
		{ 1024, 8, 4096, UINT32_MAX, "n_large 2^32-1" },
	};
	static const char *bad_names[] = { "", "a/b", "..", "." };
	struct spry_pool_opts o = main_opts();
	struct spry_pool *p;
	bool ok = true;
	size_t i;

	errno = 0;
	p = spry_pool_create(NULL, "x", NULL);
	if (p || errno != EINVAL) {
		tap_diag("NULL opts: %p errno %d", (void *)p, errno);
		ok = false;
		spry_pool_close(p);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.buf_size = bad[i].bs;
		o.n_bufs = bad[i].nb;
		o.large_size = bad[i].ls;
		o.n_large = bad[i].nl;
		errno = 0;
		p = spry_pool_create(NULL, "test-bad", &o);
		if (p || errno != EINVAL) {
			tap_diag("%s: %p errno %d", bad[i].name, (void *)p, errno);
			ok = false;
			spry_pool_close(p);
		}
	}
	o = main_opts();
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		errno = 0;
		p = spry_pool_create(NULL, bad_names[i], &o);
		if (p || errno != EINVAL) {
			tap_diag("name '%s': %p errno %d", bad_names[i], (void *)p, errno);
			ok = false;
			spry_pool_close(p);
		}
	}
	errno = 0;
	p = spry_pool_create(NULL, NULL, &o);
	if (p || errno != EINVAL) {
		ok = false;
		spry_pool_close(p);
	}
	tap_ok(ok, "bad options and names refused with EINVAL");

	/* The edges are accepted: min size, one buffer, large_size ignored
	 * without large buffers. */
	o = main_opts();
	o.buf_size = SPRY_POOL_MIN_BUF;
	o.n_bufs = 1;
	o.large_size = 12345;
	o.n_large = 0;
	p = spry_pool_create(NULL, "test-edge", &o);
	{
		struct spry_pool_stats st = { 0 };

		tap_ok(p && !spry_pool_stats(p, &st) && st.buf_size == 64 &&
		       st.n_bufs == 1 && st.n_large == 0 && st.large_size == 0 &&
		       drain_class(p, 1, 1, 64) &&
		       spry_pool_alloc(p, 65, 1, &(struct spry_buf){ 0 }) == -EMSGSIZE,
		       "edge geometry 1 x 64, no large class: works, 65 bytes -EMSGSIZE");
	}
	spry_pool_close(p);
}

/* ------------------------------------------------------ alloc and free */

static void test_alloc_free(struct spry_pool *p, const struct spry_pool_layout *lay)
{
	struct spry_pool_stats st;
	struct spry_buf b, b2, big;
	uint64_t bad_offs[7];
	bool ok;
	size_t i;
	int err;

	err = spry_pool_alloc(p, 100, 0xabc, &b);
	spry_pool_stats(p, &st);
	tap_ok(!err && b.off == lay->cls_off[0] && b.cap == BS && (b.gen & 1) &&
	       st.n_free == NB - 1 && spry_pool_ptr(p, b.off, b.cap),
	       "alloc: err %d off %llu cap %u gen %u, %u free", err,
	       (unsigned long long)b.off, b.cap, b.gen, st.n_free);

	err = spry_pool_free(p, b.off, b.gen);
	spry_pool_stats(p, &st);
	tap_ok(!err && st.n_free == NB, "free: %d, %u free", err, st.n_free);
	err = spry_pool_free(p, b.off, b.gen);
	tap_ok(err == -ESTALE && pool_whole(p), "double free: %d", err);

	spry_pool_alloc(p, 1, 0xabc, &b2);
	ok = spry_pool_free(p, b2.off, b2.gen + 2) == -ESTALE &&
	     spry_pool_free(p, b2.off, b2.gen - 2) == -ESTALE &&
	     spry_pool_free(p, b2.off, b2.gen + 1) == -ESTALE &&
	     spry_pool_free(p, b2.off, b.gen) == -ESTALE;	/* old holder */
	tap_ok(ok && b2.gen != b.gen && !spry_pool_free(p, b2.off, b2.gen) &&
	       pool_whole(p), "gen mismatch -ESTALE (gens %u then %u), right gen frees",
	       b.gen, b2.gen);

	spry_pool_alloc(p, 1, 0xabc, &b);
	bad_offs[0] = 0;
	bad_offs[1] = lay->meta_off;
	bad_offs[2] = b.off + 1;
	bad_offs[3] = b.off + 64;
	bad_offs[4] = lay->cls_off[1] + LS / 2;
	bad_offs[5] = lay->size_total;
	bad_offs[6] = UINT64_MAX;
	ok = true;
	for (i = 0; i < sizeof(bad_offs) / sizeof(bad_offs[0]); i++) {
		err = spry_pool_free(p, bad_offs[i], b.gen);
		if (err != -EINVAL) {
			tap_diag("free(%llu): %d", (unsigned long long)bad_offs[i], err);
			ok = false;
		}
	}
	ok = ok && spry_pool_alloc(p, 1, 0, &b2) == -EINVAL &&
	     spry_pool_alloc(p, 1, 1, NULL) == -EINVAL;
	tap_ok(ok && !spry_pool_free(p, b.off, b.gen) && pool_whole(p),
	       "bad offsets -EINVAL, tag 0 -EINVAL, buffer intact");

	err = spry_pool_alloc(p, BS + 1, 0xabc, &big);
	ok = !err && big.cap == LS && big.off == lay->cls_off[1];
	if (!err)
		ok = !spry_pool_free(p, big.off, big.gen) && ok;
	err = spry_pool_alloc(p, LS, 0xabc, &big);
	ok = ok && !err && big.cap == LS;
	if (!err)
		ok = !spry_pool_free(p, big.off, big.gen) && ok;
	spry_pool_alloc(p, BS, 0xabc, &b);
	ok = ok && b.cap == BS && !spry_pool_free(p, b.off, b.gen);
	tap_ok(ok && spry_pool_alloc(p, LS + 1, 0xabc, &big) == -EMSGSIZE &&
	       spry_pool_alloc(p, UINT32_MAX, 0xabc, &big) == -EMSGSIZE && pool_whole(p),
	       "size classes: <= %u regular, %u..%u large, more -EMSGSIZE", BS, BS + 1, LS);
}

static void test_exhaust(struct spry_pool *p)
{
	struct spry_buf b[NB + 1], again;
	struct spry_pool_stats st;
	bool ok = true;
	int i, err;

	for (i = 0; i < NB; i++)
		if (spry_pool_alloc(p, BS, 0x77, &b[i]))
			ok = false;
	err = spry_pool_alloc(p, BS, 0x77, &b[NB]);
	spry_pool_stats(p, &st);
	tap_ok(ok && err == -ENOSPC && st.n_free == 0 && st.n_large_free == NL,
	       "all %d regular taken: next %d, %u free, large untouched", NB, err, st.n_free);

	ok = !spry_pool_free(p, b[5].off, b[5].gen);
	spry_pool_stats(p, &st);
	ok = ok && st.n_free == 1;
	err = spry_pool_alloc(p, 1, 0x77, &again);
	tap_ok(ok && !err && again.off == b[5].off && again.gen == b[5].gen + 2 &&
	       spry_pool_alloc(p, 1, 0x77, &b[NB]) == -ENOSPC,
	       "free one: alloc gets it back with gen %u, then -ENOSPC", again.gen);
	b[5] = again;
	ok = true;
	for (i = 0; i < NB; i++)
		if (spry_pool_free(p, b[i].off, b[i].gen))
			ok = false;
	tap_ok(ok && pool_whole(p) && drain_class(p, LS, NL, LS) && pool_whole(p),
	       "all freed; large class drains to -ENOSPC and refills");
}

/* --------------------------------------------------------------- bounds */

static void test_bounds(struct spry_pool *p, const struct spry_pool_layout *lay)
{
	uint64_t end = lay->size_total, last_large = end - LS;
	uint8_t *base;
	bool ok;

	base = spry_pool_ptr(p, lay->cls_off[0], 0);
	errno = 0;
	ok = !spry_pool_ptr(p, 0, 1) && errno == EFAULT &&
	     !spry_pool_ptr(p, 0, 0) && !spry_pool_ptr(p, 100, 8) &&
	     !spry_pool_ptr(p, lay->meta_off, 16) &&
	     !spry_pool_ptr(p, lay->meta_off + 16 * (NB + NL) - 1, 1) &&
	     !spry_pool_ptr(p, lay->cls_off[0] - 1, 2) &&
	     !spry_pool_ptr(p, lay->cls_off[0] - 1, 0);
	tap_ok(base && ok, "ptr: header, metadata, gap before the data refused (EFAULT)");

	ok = spry_pool_ptr(p, lay->cls_off[0], BS) == base &&
	     spry_pool_ptr(p, lay->cls_off[0] + BS, BS) == base + BS &&
	     spry_pool_ptr(p, lay->cls_off[0] + 100, BS - 100) == base + 100 &&
	     spry_pool_ptr(p, last_large, LS) == base + (last_large - lay->cls_off[0]) &&
	     spry_pool_ptr(p, end - 1, 1) && spry_pool_ptr(p, lay->cls_off[0], 0) &&
	     spry_pool_ptr(p, lay->cls_off[0] + 17, 0);
	tap_ok(ok, "ptr: exactly fitting ranges (first, second, last large, last byte, len 0)");

	errno = 0;
	ok = !spry_pool_ptr(p, lay->cls_off[0], BS + 1) && errno == EFAULT &&
	     !spry_pool_ptr(p, lay->cls_off[0] + BS - 8, 16) &&
	     !spry_pool_ptr(p, lay->cls_off[1] - 8, 16) &&	/* regular | large */
	     !spry_pool_ptr(p, lay->cls_off[1], LS + 1) &&
	     !spry_pool_ptr(p, lay->cls_off[0], (uint64_t)BS * NB);
	tap_ok(ok, "ptr: ranges crossing two buffers refused");

	ok = !spry_pool_ptr(p, end, 0) && !spry_pool_ptr(p, end, 1) &&
	     !spry_pool_ptr(p, end - 1, 2) &&
	     !spry_pool_ptr(p, spry_pool_size(p), 0) &&
	     !spry_pool_ptr(p, spry_pool_size(p), 1) &&
	     !spry_pool_ptr(p, spry_pool_size(p) + 4096, 1) &&
	     !spry_pool_ptr(p, lay->cls_off[0] + 8, UINT64_MAX) &&
	     !spry_pool_ptr(p, lay->cls_off[0] + 8, UINT64_MAX - 7) &&
	     !spry_pool_ptr(p, UINT64_MAX, 1) && !spry_pool_ptr(p, UINT64_MAX - 3, 8) &&
	     !spry_pool_ptr(p, UINT64_MAX, 0);
	tap_ok(ok && errno == EFAULT, "ptr: end of pool, past the mapping, off+len overflow refused");
}

/* -------------------------------------------------------- attach by fd */

static void test_attach_fd(struct spry_pool *p)
{
	struct spry_pool *q = NULL;
	struct spry_pool_stats sp, sq;
	int sv[2], rfd = -1;
	struct spry_buf b;
	uint8_t *a, *c;
	bool ok = false;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		tap_ok(0, "socketpair: %s", strerror(errno));
		tap_ok(0, "attach: cross-mapping alloc/free");
		return;
	}
	if (!send_fd(sv[0], spry_pool_fd(p)))
		rfd = recv_fd(sv[1]);
	close(sv[0]);
	close(sv[1]);
	if (rfd >= 0) {
		q = spry_pool_attach(rfd);
		/* The pool keeps its own fd: the passed one may go away. */
		ok = q && spry_pool_fd(q) != rfd && spry_pool_fd(q) >= 0;
		close(rfd);
	}
	if (ok && !spry_pool_alloc(p, 200, 0x42, &b)) {
		a = spry_pool_ptr(p, b.off, b.cap);
		c = spry_pool_ptr(q, b.off, b.cap);
		ok = a && c && a != c;
		if (ok) {
			memset(a, 0xa5, b.cap);
			memcpy(c + 10, "spry", 4);
			ok = c[0] == 0xa5 && c[b.cap - 1] == 0xa5 && !memcmp(a + 10, "spry", 4);
		}
		ok = ok && !spry_pool_stats(p, &sp) && !spry_pool_stats(q, &sq) &&
		     sp.n_free == NB - 1 && sq.n_free == NB - 1 && sp.size == sq.size;
	} else {
		ok = false;
	}
	tap_ok(ok, "attach via SCM_RIGHTS fd: own fd, same offsets see the same bytes");
	/* Freed through the other mapping, with the gen from the first. */
	tap_ok(q && !spry_pool_free(q, b.off, b.gen) &&
	       spry_pool_free(p, b.off, b.gen) == -ESTALE && pool_whole(p),
	       "attach: buffer from one mapping freed in the other, stale in the first");
	spry_pool_close(q);
}

/* --------------------------------------------------- many processes */

struct holder {
	struct spry_pool	*p;
	struct spry_buf		held[3];
	uint64_t		val[3];
	int			n;
};

/* Check buffer @i still holds our pattern, free it, drop it from the list. */
static int check_free(struct holder *h, int i)
{
	const struct spry_buf *b = &h->held[i];
	uint64_t *w = spry_pool_ptr(h->p, b->off, b->cap);
	uint32_t j;

	if (!w)
		return 12;
	for (j = 0; j < b->cap / 8; j += 8)
		if (w[j] != h->val[i])
			return 13;	/* someone else wrote into our buffer */
	if (spry_pool_free(h->p, b->off, b->gen))
		return 14;
	h->n--;
	memmove(&h->held[i], &h->held[i + 1], (h->n - i) * sizeof(h->held[0]));
	memmove(&h->val[i], &h->val[i + 1], (h->n - i) * sizeof(h->val[0]));
	return 0;
}

/*
 * One child: N_CYCLES alloc/fill/verify/free, holding up to 3 buffers, in
 * both classes.  Each buffer gets pid:counter every 64 bytes, checked
 * before it is freed.  Exit code 0 or what went wrong.
 */
static int child_hammer(int fd, int start_fd, _Atomic uint64_t *waits)
{
	uint64_t pid = (uint64_t)getpid(), spins = 0;
	unsigned int seed = (unsigned int)pid;
	struct holder h = { 0 };
	char c;
	int i, err;

	h.p = spry_pool_attach(fd);
	if (!h.p)
		return 10;
	/* Start together: EOF when the parent has forked everyone. */
	if (read(start_fd, &c, 1) != 0)
		return 17;
	for (i = 0; i < N_CYCLES; i++) {
		uint32_t want = (rand_r(&seed) % 8) ? (uint32_t)rand_r(&seed) % BS + 1
						    : BS + 1 + (uint32_t)rand_r(&seed) % (LS - BS);
		struct spry_buf b;
		uint64_t *w;
		uint32_t j;

		while ((err = spry_pool_alloc(h.p, want, pid, &b)) == -ENOSPC) {
			atomic_fetch_add(waits, 1);
			if (h.n) {
				err = check_free(&h, 0);	/* make room */
				if (err)
					return err;
				continue;
			}
			if (++spins > 50000000)
				return 11;
			sched_yield();
		}
		if (err)
			return 15;
		if (b.cap < want || !(b.gen & 1))
			return 16;
		w = spry_pool_ptr(h.p, b.off, b.cap);
		if (!w)
			return 12;
		h.held[h.n] = b;
		h.val[h.n] = pid << 32 | (uint32_t)i;
		for (j = 0; j < b.cap / 8; j += 8)
			w[j] = h.val[h.n];
		h.n++;
		if (rand_r(&seed) % 16 == 0)
			sched_yield();
		if (h.n == 3 || rand_r(&seed) % 2) {
			err = check_free(&h, 0);
			if (err)
				return err;
		}
	}
	while (h.n) {
		err = check_free(&h, 0);
		if (err)
			return err;
	}
	spry_pool_close(h.p);
	return 0;
}

static void test_processes(struct spry_pool *p)
{
	pid_t pids[N_CHILDREN];
	int i, status, bad = 0, start[2];
	struct timespec t0, t1;
	_Atomic uint64_t *waits;

	waits = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (waits == MAP_FAILED || pipe2(start, O_CLOEXEC)) {
		tap_ok(0, "processes: setup: %s", strerror(errno));
		tap_ok(0, "processes: pool afterwards");
		return;
	}
	atomic_store(waits, 0);
	for (i = 0; i < N_CHILDREN; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			close(start[1]);
			_exit(child_hammer(spry_pool_fd(p), start[0], waits));
		}
		if (pids[i] < 0)
			bad++;
	}
	close(start[0]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	close(start[1]);	/* go */
	for (i = 0; i < N_CHILDREN; i++) {
		if (pids[i] <= 0)
			continue;
		status = wait_child(pids[i], 120);
		if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
			tap_diag("child %d: status %#x", (int)pids[i], status);
			bad++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tap_ok(!bad, "%d processes x %d alloc/fill/verify/free cycles, no buffer shared "
	       "(%.2f s, %llu allocs found the class empty)", N_CHILDREN, N_CYCLES,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)atomic_load(waits));
	munmap(waits, 4096);
	tap_ok(pool_whole(p) && drain_class(p, BS, NB, BS) && drain_class(p, LS, NL, LS) &&
	       pool_whole(p), "afterwards every buffer is free and listed once");
}

/* ---------------------------------------------------------- reclaim */

/* Child: allocate @n[k] buffers with tag @tags[k], report, wait to die. */
static pid_t spawn_holder(struct spry_pool *p, const uint64_t *tags, const int *n,
			  const uint32_t *size, int nk)
{
	int pfd[2], k, i;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	pid = fork_child();
	if (pid == 0) {
		struct spry_pool *q = spry_pool_attach(spry_pool_fd(p));
		struct spry_buf b;

		close(pfd[0]);
		if (!q)
			_exit(1);
		for (k = 0; k < nk; k++)
			for (i = 0; i < n[k]; i++)
				if (spry_pool_alloc(q, size[k], tags[k], &b))
					_exit(2);
		if (write(pfd[1], "R", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (pid > 0 && !read_ready(pfd[0], 10000)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	close(pfd[0]);
	return pid;
}

static int is_live_tag(uint64_t tag, void *ctx)
{
	return tag == *(uint64_t *)ctx;
}

static void test_reclaim(struct spry_pool *p)
{
	const uint64_t T = 0x1234000000000007ULL;
	uint64_t tags[3] = { 0xd1, 0xd2, 0xd3 }, live = 0x11;
	int n[3] = { 5, 3, 2 };
	uint32_t size[3] = { 10, BS, LS };
	struct spry_pool_stats st = { 0 };
	struct spry_buf mine;
	int got, got2, status;
	pid_t pid;

	pid = spawn_holder(p, &T, (int[]){ 10 }, (uint32_t[]){ 1 }, 1);
	if (pid > 0) {
		spry_pool_stats(p, &st);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	got = spry_pool_reclaim(p, T);
	tap_ok(pid > 0 && st.n_free == NB - 10 && got == 10 && pool_whole(p),
	       "holder SIGKILLed with 10 buffers tagged %#llx: reclaim %d, pool whole",
	       (unsigned long long)T, got);
	got = spry_pool_reclaim(p, T);
	tap_ok(got == 0 && spry_pool_reclaim(p, 0) == -EINVAL &&
	       spry_pool_reclaim_if(p, NULL, NULL) == -EINVAL,
	       "reclaim again: %d; tag 0 and NULL callback -EINVAL", got);

	got = spry_pool_alloc(p, 1, live, &mine);
	pid = spawn_holder(p, tags, n, size, 3);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	spry_pool_stats(p, &st);
	got2 = spry_pool_reclaim_if(p, is_live_tag, &live);
	tap_ok(!got && pid > 0 && st.n_free == NB - 9 && st.n_large_free == NL - 2 &&
	       got2 == 10 && spry_pool_reclaim_if(p, is_live_tag, &live) == 0 &&
	       !spry_pool_free(p, mine.off, mine.gen) && pool_whole(p),
	       "reclaim_if: dead holder's 10 buffers (3 tags, both classes) freed: %d, "
	       "the live one kept", got2);
}

/* ------------------------------------------------- hostile pool files */

static bool refused(struct spry_pool *p, int want, const char *what)
{
	int e = errno;

	if (p) {
		tap_diag("%s: accepted", what);
		spry_pool_close(p);
		return false;
	}
	if (e != want) {
		tap_diag("%s: errno %d (%s), want %d", what, e, strerror(e), want);
		return false;
	}
	return true;
}

static struct spry_pool *small_pool(const char *name, uint32_t bs, uint32_t nb,
				    uint32_t ls, uint32_t nl)
{
	struct spry_pool_opts o = {
		.buf_size = bs, .n_bufs = nb, .large_size = ls, .n_large = nl,
		.uid = (uid_t)-1, .gid = (gid_t)-1, .no_huge = 1,
	};

	return spry_pool_create(NULL, name, &o);
}

static void test_not_pools(void)
{
	char path[128];
	uint8_t junk[8192];
	bool ok = true;
	int fd, pfd[2];
	size_t i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	snprintf(path, sizeof(path), "%s", junkpath);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, junk, sizeof(junk)) != sizeof(junk))
		ok = false;
	ok = ok && refused(spry_pool_open(path), EBADMSG, "junk file");
	/* The right magic is not enough. */
	if (fd >= 0) {
		uint64_t magic = SPRY_POOL_MAGIC;

		ok = ok && pwrite(fd, &magic, sizeof(magic), 0) == sizeof(magic) &&
		     refused(spry_pool_attach(fd), EBADMSG, "magic over junk");
		ok = ok && !ftruncate(fd, 100) &&
		     refused(spry_pool_attach(fd), EINVAL, "100-byte file");
		close(fd);
	}
	unlink(path);
	ok = ok && !pipe2(pfd, O_CLOEXEC);
	if (ok) {
		ok = refused(spry_pool_attach(pfd[0]), EINVAL, "pipe");
		close(pfd[0]);
		close(pfd[1]);
	}
	ok = ok && refused(spry_pool_attach(-1), EBADF, "fd -1");
	snprintf(path, sizeof(path), "%s/absent", tmpdir);
	ok = ok && refused(spry_pool_open(path), ENOENT, "absent path");
	tap_ok(ok, "attach/open refuse junk, right-magic junk, short file, pipe, bad fd, absent path");
}

static void test_bad_geometry(void)
{
	struct spry_pool_hdr *h, saved;
	struct spry_pool_layout big;
	struct spry_pool *p, *q;
	bool ok;

	p = small_pool("test-geom", 1024, 8, 0, 0);
	h = p ? map_raw(p) : NULL;
	if (!h) {
		tap_ok(0, "geometry larger than the file: no pool");
		tap_ok(0, "inconsistent header: no pool");
		spry_pool_close(p);
		return;
	}
	memcpy(&saved, h, sizeof(saved));
	/* A self-consistent header describing 4096 buffers in an 8-buffer file. */
	spry_pool__layout(1024, 4096, 0, 0, &big);
	h->cls[0].n = 4096;
	h->cls[1].off = big.cls_off[1];
	h->data_off = big.data_off;
	h->cls[0].off = big.cls_off[0];
	h->size = big.size_total;
	errno = 0;
	q = spry_pool_attach(spry_pool_fd(p));
	tap_ok(refused(q, EBADMSG, "geometry > file"),
	       "attach refuses a consistent geometry larger than the file (%llu > %llu)",
	       (unsigned long long)big.size_total, (unsigned long long)spry_pool_size(p));

	ok = true;
	memcpy(h, &saved, sizeof(saved));
	h->cls[0].n = 9;			/* offsets left as they were */
	ok = ok && refused(spry_pool_attach(spry_pool_fd(p)), EBADMSG, "n changed");
	memcpy(h, &saved, sizeof(saved));
	h->version = 2;
	ok = ok && refused(spry_pool_attach(spry_pool_fd(p)), EBADMSG, "version");
	memcpy(h, &saved, sizeof(saved));
	h->cls[0].size = 1000;			/* not a multiple of 64 */
	ok = ok && refused(spry_pool_attach(spry_pool_fd(p)), EBADMSG, "size");
	memcpy(h, &saved, sizeof(saved));
	h->cls[1].size = 4096;			/* large size without large buffers */
	ok = ok && refused(spry_pool_attach(spry_pool_fd(p)), EBADMSG, "large size");
	memcpy(h, &saved, sizeof(saved));
	h->cls[0].first = 1;
	ok = ok && refused(spry_pool_attach(spry_pool_fd(p)), EBADMSG, "first");
	memcpy(h, &saved, sizeof(saved));
	h->backing = 9;
	ok = ok && refused(spry_pool_attach(spry_pool_fd(p)), EBADMSG, "backing");
	memcpy(h, &saved, sizeof(saved));
	q = spry_pool_attach(spry_pool_fd(p));
	tap_ok(ok && q, "attach refuses changed n, version, size, first, backing; "
	       "accepts the restored header");
	spry_pool_close(q);
	munmap(h, spry_pool_size(p));
	spry_pool_close(p);
}

static void test_bad_freelist(void)
{
	struct spry_buf b[9];
	struct spry_pool_hdr *h;
	struct spry_pool_meta *m;
	struct spry_pool *p;
	bool ok = true;
	int i, j, err, err2;

	/* An out-of-range next index inside the list. */
	p = small_pool("test-next", 512, 8, 0, 0);
	h = p ? map_raw(p) : NULL;
	if (!h) {
		tap_ok(0, "damaged next: no pool");
		tap_ok(0, "damaged head: no pool");
		tap_ok(0, "free-list cycle: no pool");
		spry_pool_close(p);
		return;
	}
	m = raw_meta(h);
	atomic_store(&m[3].next, 1000);
	for (i = 0; i < 3; i++)
		if (spry_pool_alloc(p, 1, 9, &b[i]))
			ok = false;
	err = spry_pool_alloc(p, 1, 9, &b[3]);
	err2 = spry_pool_alloc(p, 1, 9, &b[3]);
	for (i = 0; i < 3; i++)
		if (spry_pool_free(p, b[i].off, b[i].gen))
			ok = false;
	tap_ok(ok && err == -EUCLEAN && err2 == -EUCLEAN && spry_pool_ptr(p, b[0].off, 512),
	       "next index out of range: 3 allocs, then %d, %d (no loop); frees still work",
	       err, err2);

	/* A head out of range; a free restarts the list. */
	atomic_store(&h->fl[0].head, SPRY_POOL_HEAD(5, 0xfffffff0u));
	err = spry_pool_alloc(p, 1, 9, &b[0]);
	atomic_store(&h->fl[1].head, SPRY_POOL_HEAD(5, 1));	/* class without buffers */
	err2 = spry_pool_alloc(p, 513, 9, &b[1]);
	ok = err == -EUCLEAN && err2 == -EMSGSIZE;
	/* Take the one allocated-looking buffer's gen to free something. */
	atomic_store(&m[6].gen, 7);
	ok = ok && !spry_pool_free(p, h->cls[0].off + 6 * 512, 7) &&
	     !spry_pool_alloc(p, 1, 9, &b[0]) && b[0].off == h->cls[0].off + 6 * 512 &&
	     spry_pool_alloc(p, 1, 9, &b[1]) == -ENOSPC &&
	     !spry_pool_free(p, b[0].off, b[0].gen);
	tap_ok(ok, "head out of range: alloc %d; a free restarts the list", err);
	munmap(h, spry_pool_size(p));
	spry_pool_close(p);

	/* A cycle: the last buffer links back to the first. */
	p = small_pool("test-cycle", 512, 8, 0, 0);
	h = p ? map_raw(p) : NULL;
	if (!h) {
		tap_ok(0, "free-list cycle: no pool");
		spry_pool_close(p);
		return;
	}
	m = raw_meta(h);
	atomic_store(&m[7].next, 1);
	ok = true;
	for (i = 0; i < 8; i++) {
		if (spry_pool_alloc(p, 1, 9, &b[i]))
			ok = false;
		for (j = 0; j < i; j++)
			if (b[j].off == b[i].off)
				ok = false;
	}
	err = spry_pool_alloc(p, 1, 9, &b[8]);
	tap_ok(ok && err == -EUCLEAN,
	       "free-list cycle: 8 distinct buffers, then %d (no double hand-out, no hang)", err);
	munmap(h, spry_pool_size(p));
	spry_pool_close(p);
}

/*
 * Random damage to the header and metadata of a live pool file: attach
 * refuses (EINVAL/EBADMSG) or the pool works within its bounds.
 */
static void test_fuzz(void)
{
	enum { ITERS = 3000 };
	uint8_t saved[SPRY_POOL_HDR_SIZE + 16 * 10];
	unsigned int seed = 20261122;
	int refusals = 0, accepted = 0, wrong = 0, it;
	struct spry_pool *p;
	uint8_t *raw;

	p = small_pool("test-fuzz", 256, 8, 1024, 2);
	raw = p ? map_raw(p) : NULL;
	if (!raw) {
		tap_ok(0, "fuzz: no pool");
		spry_pool_close(p);
		return;
	}
	memcpy(saved, raw, sizeof(saved));
	for (it = 0; it < ITERS; it++) {
		struct spry_buf bufs[24];
		int k, nb = 0, flips = 1 + rand_r(&seed) % 4;
		struct spry_pool_stats st;
		struct spry_pool *q;

		memcpy(raw, saved, sizeof(saved));
		for (k = 0; k < flips; k++) {
			size_t at = (size_t)rand_r(&seed) % 256;

			if (rand_r(&seed) % 4 == 0)
				at = SPRY_POOL_HDR_SIZE + (size_t)rand_r(&seed) % 160;

			raw[at] = (uint8_t)rand_r(&seed);
		}
		errno = 0;
		q = spry_pool_attach(spry_pool_fd(p));
		if (!q) {
			if (errno == EINVAL || errno == EBADMSG)
				refusals++;
			else
				wrong++;
			continue;
		}
		accepted++;
		for (k = 0; k < 24; k++) {
			struct spry_buf b;
			uint8_t *ptr;

			if (spry_pool_alloc(q, 1 + rand_r(&seed) % 1100, 0x5eed, &b))
				continue;
			ptr = spry_pool_ptr(q, b.off, b.cap);
			if (!ptr)
				wrong++;
			else
				memset(ptr, 0x3c, b.cap);
			bufs[nb++] = b;
		}
		for (k = 0; k < 32; k++)
			spry_pool_ptr(q, rand_r(&seed) % (spry_pool_size(q) + 8192),
				      rand_r(&seed) % 2048);
		for (k = 0; k < nb; k++)
			spry_pool_free(q, bufs[k].off, bufs[k].gen);
		spry_pool_reclaim(q, 0x5eed);
		spry_pool_stats(q, &st);
		spry_pool_close(q);
	}
	memcpy(raw, saved, sizeof(saved));
	tap_ok(!wrong && refusals > 0 && accepted > 0,
	       "fuzz %d damaged headers: %d refused, %d accepted and used, %d wrong",
	       ITERS, refusals, accepted, wrong);
	munmap(raw, spry_pool_size(p));
	spry_pool_close(p);
}

/* ---------------------------------------------------------- hugetlbfs */

#define N_HUGE_TESTS	9

static void skip_huge(int n, const char *why)
{
	while (n-- > 0)
		tap_skip("hugetlbfs", why);
}

static bool file_absent(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) && errno == ENOENT;
}

static void test_huge(void)
{
	struct spry_pool_opts o = {
		.buf_size = 4096, .n_bufs = 64, .large_size = 65536, .n_large = 4,
		.uid = HUGE_UID, .gid = HUGE_GID, .no_huge = 0,
	};
	struct spry_pool_stats st = { 0 }, st2 = { 0 };
	struct spry_pool *p, *q;
	long free_pages, nr;
	char path[256];
	struct stat sb;
	struct spry_buf b;
	bool ok;
	int err;

	if (geteuid() != 0) {
		skip_huge(N_HUGE_TESTS, "needs root (mount, nr_hugepages)");
		return;
	}
	if (mkdir(hugedir, 0700) || mkdir(smalldir, 0700)) {
		skip_huge(N_HUGE_TESTS, "mkdir failed");
		return;
	}
	if (mount("none", hugedir, "hugetlbfs", 0, "pagesize=2M,mode=0711")) {
		tap_diag("mount hugetlbfs: %s", strerror(errno));
		skip_huge(N_HUGE_TESTS, "cannot mount hugetlbfs");
		return;
	}
	huge_mounted = true;
	/* At most one 2 MiB page for a pool that needs two. */
	if (!mount("none", smalldir, "hugetlbfs", 0, "pagesize=2M,size=2M,mode=0711"))
		small_mounted = true;

	/* no hugepages at all: hugetlbfs and memfd hugetlb both fall back. */
	free_pages = meminfo("HugePages_Free");
	if (free_pages == 0 && read_long("/proc/sys/vm/nr_overcommit_hugepages") == 0) {
		p = spry_pool_create(hugedir, "nopages", &o);
		ok = p && !spry_pool_stats(p, &st);
		ok = ok && st.backing == SPRY_POOL_MEMFD &&
		     file_absent(hugedir, "nopages") && drain_class(p, 1, 64, 4096);
		tap_ok(ok, "no hugepages: hugetlbfs dir falls back to a plain memfd (backing %u), "
		       "no file left", st.backing);
		spry_pool_close(p);
	} else {
		tap_skip("no hugepages: fallback to plain memfd",
			 "hugepages already available on this machine");
	}

	/* Reserve 8 more. */
	nr_huge_old = read_long(NR_HUGE_PATH);
	if (nr_huge_old < 0 || write_long(NR_HUGE_PATH, nr_huge_old + 8)) {
		nr_huge_old = -1;
		skip_huge(N_HUGE_TESTS - 1, "cannot write " NR_HUGE_PATH);
		return;
	}
	free_pages = meminfo("HugePages_Free");
	if (free_pages < 4) {
		char why[96];

		snprintf(why, sizeof(why), "only %ld free hugepages after reserving 8",
			 free_pages);
		skip_huge(N_HUGE_TESTS - 2, why);
		goto restore;
	}
	tap_diag("nr_hugepages %ld -> %ld, %ld free", nr_huge_old, read_long(NR_HUGE_PATH),
		 free_pages);

	/* a pool file on hugetlbfs. */
	p = spry_pool_create(hugedir, "chain1", &o);
	ok = p && !spry_pool_stats(p, &st);
	ok = ok && st.backing == SPRY_POOL_HUGETLBFS &&
	     st.size % (2u << 20) == 0 && drain_class(p, 1, 64, 4096) &&
	     drain_class(p, 65536, 4, 65536);
	tap_ok(ok, "hugetlbfs pool: backing %u, size %llu, both classes drain",
	       st.backing, (unsigned long long)st.size);
	snprintf(path, sizeof(path), "%s/chain1", hugedir);
	err = stat(path, &sb);
	tap_ok(p && !err && (sb.st_mode & 07777) == 0600 && sb.st_uid == HUGE_UID &&
	       sb.st_gid == HUGE_GID && S_ISREG(sb.st_mode),
	       "pool file mode %o owner %u:%u", err ? 0 : (unsigned int)(sb.st_mode & 07777),
	       err ? 0 : (unsigned int)sb.st_uid, err ? 0 : (unsigned int)sb.st_gid);
	errno = 0;
	q = spry_pool_create(hugedir, "chain1", &o);
	tap_ok(refused(q, EEXIST, "create over an existing file"),
	       "create over an existing pool file: EEXIST");

	q = spry_pool_open(path);
	ok = p && q && !spry_pool_stats(q, &st2) && st2.backing == SPRY_POOL_HUGETLBFS &&
	     st2.size == st.size && !spry_pool_alloc(q, 100, 0x99, &b);
	if (ok) {
		char *a = spry_pool_ptr(p, b.off, b.cap), *c = spry_pool_ptr(q, b.off, b.cap);

		memcpy(c, "hugetlbfs", 10);
		ok = a && c && a != c && !memcmp(a, "hugetlbfs", 10) &&
		     !spry_pool_free(p, b.off, b.gen);
	}
	tap_ok(ok, "open by path: same pool, same bytes, freed across mappings");

	ok = q && spry_pool_unlink(q) == 0 && file_absent(hugedir, "chain1") &&
	     spry_pool_unlink(q) == -ENOENT && spry_pool_unlink(p) == -ENOENT &&
	     pool_whole(p);
	tap_ok(ok, "unlink removes the file (mappings stay), then -ENOENT");
	spry_pool_close(q);
	spry_pool_close(p);

	/* hugetlbfs without room (size=2M): falls back to memfd hugetlb. */
	if (small_mounted) {
		struct spry_pool_opts o2 = o;

		o2.buf_size = 65536;
		o2.n_bufs = 40;		/* > 2 MiB: two hugepages */
		o2.large_size = 0;
		o2.n_large = 0;
		st.backing = 0;
		p = spry_pool_create(smalldir, "toobig", &o2);
		ok = p && !spry_pool_stats(p, &st);
		ok = ok && st.backing == SPRY_POOL_MEMFD_HUGE &&
		     file_absent(smalldir, "toobig") && drain_class(p, 1, 40, 65536);
		tap_ok(ok, "hugetlbfs mount too small: falls back to memfd hugetlb "
		       "(backing %u), no file left", st.backing);
		spry_pool_close(p);
	} else {
		tap_skip("hugetlbfs mount too small", "cannot mount hugetlbfs with size=2M");
	}

	/* no directory: memfd hugetlb. */
	st.backing = 0;
	p = spry_pool_create(NULL, "memfd-huge", &o);
	err = p ? fcntl(spry_pool_fd(p), F_GET_SEALS) : -1;
	ok = p && !spry_pool_stats(p, &st);
	ok = ok && st.backing == SPRY_POOL_MEMFD_HUGE &&
	     st.size % (2u << 20) == 0 && err >= 0 && (err & F_SEAL_SHRINK) &&
	     drain_class(p, 4096, 64, 4096) && spry_pool_unlink(p) == -ENOENT;
	tap_ok(ok, "no dir: memfd hugetlb (backing %u, sealed), unlink -ENOENT", st.backing);
	spry_pool_close(p);

restore:
	/* leave the machine as it was. */
	if (small_mounted && !umount2(smalldir, 0))
		small_mounted = false;
	if (huge_mounted && !umount2(hugedir, 0))
		huge_mounted = false;
	nr = nr_huge_old;
	cleanup_system();
	tap_ok(!huge_mounted && !small_mounted && nr_huge_old < 0 &&
	       read_long(NR_HUGE_PATH) == nr,
	       "hugetlbfs unmounted, nr_hugepages back to %ld", nr);
}

/* The pool test_create() made, for the cases that use it. */
static struct spry_pool *main_pool;
static struct spry_pool_layout main_lay;

static void case_create(void)
{
	main_pool = test_create(&main_lay);
}

#define ON_MAIN_POOL(name, call)					\
static void name(void)							\
{									\
	struct spry_pool *p = main_pool;				\
	const struct spry_pool_layout *lay = &main_lay;			\
									\
	(void)lay;							\
	if (!p) {							\
		tap_skip_case("no pool created");			\
		return;							\
	}								\
	call;								\
}
ON_MAIN_POOL(case_opts, test_opts())
ON_MAIN_POOL(case_alloc_free, test_alloc_free(p, lay))
ON_MAIN_POOL(case_exhaust, test_exhaust(p))
ON_MAIN_POOL(case_bounds, test_bounds(p, lay))
ON_MAIN_POOL(case_attach_fd, test_attach_fd(p))
ON_MAIN_POOL(case_processes, test_processes(p))
ON_MAIN_POOL(case_reclaim, test_reclaim(p); spry_pool_close(p); main_pool = NULL)

static const struct tap_case cases[] = {
	TAP_CASE(case_create, "create: a sealed memfd pool of both classes, all free"),
	TAP_CASE(case_opts, "bad options and names refused with EINVAL"),
	TAP_CASE(case_alloc_free, "alloc and free: offsets, generations, double free refused"),
	TAP_CASE(case_exhaust, "exhaustion: -ENOSPC, a freed buffer comes back, large class drains"),
	TAP_CASE(case_bounds, "spry_pool_ptr: exact ranges only, header/gap/crossing/overflow refused"),
	TAP_CASE(case_attach_fd, "attach by fd (SCM_RIGHTS): same offsets, same bytes, cross-mapping free"),
	TAP_CASE(case_processes, "processes allocating at once never share a buffer"),
	TAP_CASE(case_reclaim, "reclaim by tag: a SIGKILLed holder's buffers come back"),
	TAP_CASE(test_not_pools, "attach/open refuse junk, short files, pipes, bad fds, absent paths"),
	TAP_CASE(test_bad_geometry, "inconsistent or changed geometry: no pool"),
	TAP_CASE(test_bad_freelist, "damaged free lists (next, head, cycle): no pool or a restarted list"),
	TAP_CASE(test_fuzz, "random damage to a live pool file: refused or works within bounds"),
	TAP_CASE(test_huge, "hugetlbfs pools, open by path, unlink, fallbacks to memfd"),
};

int main(void)
{
	int ret;

	signal(SIGALRM, on_fatal);
	signal(SIGTERM, on_fatal);
	signal(SIGINT, on_fatal);
	alarm(TEST_TIMEOUT);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/spry-test-pool.XXXXXX");
	if (!mkdtemp(tmpdir))
		tap_skip_all("mkdtemp failed");

	snprintf(junkpath, sizeof(junkpath), "%s/junk", tmpdir);
	snprintf(hugedir, sizeof(hugedir), "%s/huge", tmpdir);
	snprintf(smalldir, sizeof(smalldir), "%s/huge-2m", tmpdir);
	ret = tap_run_cases(cases, TAP_N(cases));
	if (main_pool)
		spry_pool_close(main_pool);

	cleanup_system();
	rmdir(hugedir);
	rmdir(smalldir);
	if (rmdir(tmpdir))
		tap_diag("rmdir %s: %s", tmpdir, strerror(errno));
	return ret;
}
