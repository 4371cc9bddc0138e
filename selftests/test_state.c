// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_state: the process state (shm/state.c, shm/swap.c, spry_fn_state())
 * and each line of its durability contract (docs/STATE.md).
 *
 * put/get/del/keys/zero-copy against a model, full store and full index,
 * sharing between processes, kill -9 in the middle of puts (with and
 * without another process holding the store: fresh mutex or EOWNERDEAD),
 * kill -9 during a swap out and during a lazy wake, swap and lazy wake of
 * 1 GiB byte-exact by checksums, ENOSPC on the swap directory (a 1 MiB
 * tmpfs), damaged, missing, truncated and other-app swap files, damaged
 * store files, a reboot (boot id and lost tmpfs), a store on hugetlbfs
 * (nr_hugepages restored), lock-free gets racing a writer, the environment
 * binding.
 *
 * Every step that opens a store after a crash runs in a child with a
 * deadline: a hang fails the point instead of the run.  Stores live in a
 * directory under /dev/shm (memory), swap files in one under /var/tmp
 * (disk); both are removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "spry/state.h"
#include "shm/state_internal.h"
#include "selftests/tap.h"

#define TEST_TIMEOUT	170	/* seconds, the whole program */
#define CHILD_DEADLINE	20	/* seconds, a check after a crash */

static char memdir[64], diskdir[64], smalldir[96], hugedir[128];
static bool small_mounted, huge_mounted;
static long huge_old = -1;	/* >= 0: nr_hugepages to restore */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

/* ---------------------------------------------------------------- helpers */

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void path_in(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* The value of (key k, sequence s): 16 bytes {k, s, len} then a stream. */
static void fill_value(uint8_t *v, size_t len, uint32_t k, uint64_t s)
{
	uint64_t x = (s + 1) * 0x9e3779b97f4a7c15ULL ^ k, w;
	size_t i = 0;

	if (len >= 16) {
		uint32_t l = (uint32_t)len;

		memcpy(v, &k, 4);
		memcpy(v + 4, &l, 4);
		memcpy(v + 8, &s, 8);
		i = 16;
	}
	for (; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(v + i, &x, 8);
	}
	for (w = x; i < len; i++, w >>= 8)
		v[i] = (uint8_t)w;
}

/* 0 when @v is fill_value(len, k, s) for the s it names (in *@s). */
static int check_value(const uint8_t *v, size_t len, uint32_t k, uint64_t *s)
{
	uint8_t *want;
	uint32_t kk, l;
	int ret;

	if (len < 16)
		return -1;
	memcpy(&kk, v, 4);
	memcpy(&l, v + 4, 4);
	memcpy(s, v + 8, 8);
	if (kk != k || l != len)
		return -1;
	want = malloc(len);
	if (!want)
		return -1;
	fill_value(want, len, k, *s);
	ret = memcmp(want, v, len) ? -1 : 0;
	free(want);
	return ret;
}

/*
 * Run @fn(@arg) in a child with a deadline: its exit status, 124 when it
 * had to be killed (a hang), 125 when it died by a signal.
 */
static int bounded(int (*fn)(void *), void *arg, int secs)
{
	double end = now_s() + secs;
	int status;
	pid_t pid, w;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 126;
	if (pid == 0) {
		int rc;

		alarm(secs + 5);
		rc = fn(arg);
		fflush(stdout);	/* its diagnostics, before _exit() drops them */
		_exit(rc);
	}
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return 124;
		}
		usleep(2000);
	}
	if (WIFSIGNALED(status))
		return 125;
	return WEXITSTATUS(status);
}

static void rm_f(const char *path)
{
	if (unlink(path) && errno != ENOENT)
		tap_diag("unlink %s: %s", path, strerror(errno));
}

/* Remove every file of @dir (flat). */
static void clean_dir(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 -maxdepth 1 -type f -delete", dir);
	if (system(cmd))
		tap_diag("cleaning %s failed", dir);
}

static int count_files(const char *dir)
{
	char cmd[256];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 -maxdepth 1 -type f | wc -l", dir);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

static int write_file(const char *path, const uint8_t *data, size_t len);

static struct spry_state *mk(const char *name, uint64_t size, uint32_t max_keys)
{
	struct spry_state_opts o = { .size = size, .max_keys = max_keys };
	char p[128];

	path_in(p, sizeof(p), memdir, name);
	rm_f(p);
	return spry_state_open(p, &o);
}

static int putk(struct spry_state *st, const char *k, const void *v, size_t n)
{
	return spry_state_put(st, k, strlen(k), v, n);
}

/* ------------------------------------------------------------------ cases */

static void case_basic(void)
{
	uint8_t buf[8192], big[5000];
	char p[128], key[SPRY_STATE_KEY_MAX + 2];
	struct spry_state_stats s;
	struct spry_state *st;
	uint64_t cur = 0;
	size_t n = 0, klen;
	int seen = 0, ret;
	uint8_t *z;

	st = mk("basic", 1 << 20, 0);
	ASSERT_TRUE(st != NULL, "create a 1 MiB store (%s)", st ? "ok" : spry_state_error());
	EXPECT_EQ(putk(st, "a", "hello", 5), 0, "put a");
	EXPECT_EQ(spry_state_get(st, "a", 1, buf, sizeof(buf), &n), 0, "get a");
	EXPECT_EQ(n, 5);
	EXPECT_MEMEQ(buf, "hello", 5);
	EXPECT_EQ(putk(st, "a", "bye", 3), 0, "overwrite a");
	n = 0;
	EXPECT_EQ(spry_state_get(st, "a", 1, buf, sizeof(buf), &n), 0);
	EXPECT_EQ(n, 3, "the new length");
	EXPECT_MEMEQ(buf, "bye", 3);
	EXPECT_EQ(spry_state_get(st, "a", 1, buf, 2, &n), -EMSGSIZE, "a buffer too small");
	EXPECT_EQ(n, 3, "the length is still given");
	EXPECT_EQ(spry_state_get(st, "nope", 4, buf, sizeof(buf), &n), -ENOENT, "absent key");
	EXPECT_EQ(putk(st, "empty", "", 0), 0, "a zero-length value");
	EXPECT_EQ(spry_state_get(st, "empty", 5, buf, 0, &n), 0);
	EXPECT_EQ(n, 0);
	/* no buffer at all for an empty value (UBSan: nothing memcpy'd to NULL) */
	n = 1;
	EXPECT_EQ(spry_state_get(st, "empty", 5, NULL, 0, &n), 0, "an empty value, buf NULL");
	EXPECT_EQ(n, 0);
	memset(key, 'k', sizeof(key));
	EXPECT_EQ(spry_state_put(st, key, SPRY_STATE_KEY_MAX + 1, "x", 1), -E2BIG, "key too long");
	EXPECT_TRUE(strstr(spry_state_error(), "at most") != NULL, "error says why: %s",
		    spry_state_error());
	EXPECT_EQ(spry_state_put(st, key, SPRY_STATE_KEY_MAX, "x", 1), 0, "longest key");
	EXPECT_EQ(spry_state_put(st, "", 0, "x", 1), -EINVAL, "empty key");
	/* binary keys and values */
	EXPECT_EQ(spry_state_put(st, "\0\1\2", 3, "\0\0\377", 3), 0, "binary key");
	EXPECT_EQ(spry_state_get(st, "\0\1\2", 3, buf, sizeof(buf), &n), 0);
	EXPECT_MEMEQ(buf, "\0\0\377", 3);
	/* zero-copy */
	fill_value(big, sizeof(big), 7, 1);
	EXPECT_EQ(putk(st, "big", big, sizeof(big)), 0);
	z = spry_state_ptr(st, "big", 3, &n);
	ASSERT_TRUE(z != NULL, "pointer to a value");
	EXPECT_EQ(n, sizeof(big));
	EXPECT_MEMEQ(z, big, sizeof(big));
	z[100] ^= 0xff;		/* written in place */
	EXPECT_EQ(spry_state_get(st, "big", 3, buf, sizeof(buf), &n), 0);
	EXPECT_EQ(buf[100], (uint8_t)(big[100] ^ 0xff), "a write in place is the value");
	z = spry_state_alloc(st, "zc", 2, 300);
	ASSERT_TRUE(z != NULL, "alloc in place");
	EXPECT_TRUE(z[0] == 0 && z[299] == 0, "allocated value is zeros");
	memset(z, 'q', 300);
	EXPECT_EQ(spry_state_get(st, "zc", 2, buf, sizeof(buf), &n), 0);
	EXPECT_EQ(n, 300);
	EXPECT_TRUE(buf[0] == 'q' && buf[299] == 'q');
	errno = 0;
	EXPECT_TRUE(spry_state_ptr(st, "none", 4, &n) == NULL && errno == ENOENT,
		    "pointer to an absent key: NULL, ENOENT");
	/* del */
	EXPECT_EQ(spry_state_del(st, "empty", 5), 0, "del");
	EXPECT_EQ(spry_state_del(st, "empty", 5), -ENOENT, "del again");
	/* keys */
	while ((ret = spry_state_keys(st, &cur, buf, sizeof(buf), &klen)) == 0)
		seen++;
	EXPECT_EQ(ret, -ENOENT, "the keys end with ENOENT");
	EXPECT_EQ(seen, 5, "a, longest, binary, big, zc");
	EXPECT_EQ(spry_state_stats(st, &s), 0);
	EXPECT_EQ(s.keys, 5, "stats: keys");
	EXPECT_EQ(s.size, 1 << 20, "stats: size");
	spry_state_close(st);
	/* reopened: the same */
	path_in(p, sizeof(p), memdir, "basic");
	st = spry_state_open(p, NULL);
	ASSERT_TRUE(st != NULL, "reopen");
	EXPECT_EQ(spry_state_get(st, "a", 1, buf, sizeof(buf), &n), 0);
	EXPECT_MEMEQ(buf, "bye", 3, "kept across close/open");
	EXPECT_EQ(spry_state_get(st, "big", 3, buf, sizeof(buf), &n), 0);
	EXPECT_EQ(buf[100], (uint8_t)(big[100] ^ 0xff), "the in-place write kept");
	spry_state_close(st);
	errno = 0;
	EXPECT_TRUE(spry_state_open("/dev/shm/spry-no-such-state", NULL) == NULL && errno == ENOENT,
		    "open of an absent store without a size: ENOENT");
	{
		struct spry_state_opts o = { .size = 1000 };

		path_in(p, sizeof(p), memdir, "tiny");
		errno = 0;
		EXPECT_TRUE(spry_state_open(p, &o) == NULL && errno == EINVAL,
			    "a store below the minimum size: EINVAL (%s)", spry_state_error());
		EXPECT_EQ(access(p, F_OK), -1, "and no file left");
	}
	path_in(p, sizeof(p), memdir, "basic");
	rm_f(p);
}

/* Random operations against a model; then reopened. */
#define MODEL_KEYS	200
#define MODEL_OPS	20000

static void case_model(void)
{
	static uint64_t seq[MODEL_KEYS];
	static size_t len[MODEL_KEYS];
	static uint8_t buf[70000], val[70000];
	int i, bad = 0, enospc = 0;
	struct spry_state *st;
	char k[32], p[128];
	uint64_t s;
	size_t n;

	memset(seq, 0, sizeof(seq));
	st = mk("model", 4 << 20, 512);
	ASSERT_TRUE(st != NULL, "open (%s)", st ? "ok" : spry_state_error());
	for (i = 0; i < MODEL_OPS; i++) {
		uint32_t key = (uint32_t)(rnd() % MODEL_KEYS);
		int op = (int)(rnd() % 10), ret;

		snprintf(k, sizeof(k), "key-%u", key);
		if (op < 5) {
			size_t l = 16 + (rnd() % 4 ? rnd() % 2000 : rnd() % 65000);

			fill_value(val, l, key, (uint64_t)i + 1);
			ret = putk(st, k, val, l);
			if (ret == 0) {
				seq[key] = (uint64_t)i + 1;
				len[key] = l;
			} else if (ret == -ENOSPC) {
				enospc++;
			} else {
				bad++;
			}
		} else if (op < 7) {
			ret = spry_state_del(st, k, strlen(k));
			if (ret != (seq[key] ? 0 : -ENOENT))
				bad++;
			seq[key] = 0;
		} else {
			ret = spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n);
			if (seq[key] ? (ret || n != len[key] || check_value(buf, n, key, &s) ||
					s != seq[key]) : ret != -ENOENT)
				bad++;
		}
	}
	EXPECT_EQ(bad, 0, "%d random put/del/get agree with the model (%d ENOSPC)", MODEL_OPS,
		  enospc);
	spry_state_close(st);
	path_in(p, sizeof(p), memdir, "model");
	st = spry_state_open(p, NULL);
	ASSERT_TRUE(st != NULL);
	for (i = 0, bad = 0; i < MODEL_KEYS; i++) {
		int ret;

		snprintf(k, sizeof(k), "key-%u", i);
		ret = spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n);
		if (seq[i] ? (ret || check_value(buf, n, (uint32_t)i, &s) || s != seq[i]) :
			     ret != -ENOENT)
			bad++;
	}
	EXPECT_EQ(bad, 0, "after reopening, every key as the model has it");
	spry_state_close(st);
	rm_f(p);
}

static void case_full(void)
{
	struct spry_state_stats s;
	static uint8_t v[4096], buf[4096];
	struct spry_state *st;
	int i, n_ok = 0, ret, bad = 0;
	char k[32];
	size_t n;
	uint64_t sq;

	st = mk("full", 256 << 10, 0);
	ASSERT_TRUE(st != NULL, "open (%s)", st ? "ok" : spry_state_error());
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "f%d", i);
		fill_value(v, sizeof(v) - 64, (uint32_t)i, 1);
		ret = putk(st, k, v, sizeof(v) - 64);
		if (ret) {
			EXPECT_EQ(ret, -ENOSPC, "a full store: ENOSPC");
			EXPECT_TRUE(strstr(spry_state_error(), "full") != NULL, "says: %s",
				    spry_state_error());
			break;
		}
		n_ok++;
	}
	EXPECT_GT(n_ok, 20, "%d values of 4 KiB fit in 256 KiB", n_ok);
	for (i = 0; i < n_ok; i++) {
		snprintf(k, sizeof(k), "f%d", i);
		if (spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n) ||
		    check_value(buf, n, (uint32_t)i, &sq))
			bad++;
	}
	EXPECT_EQ(bad, 0, "every acknowledged put is intact after ENOSPC");
	/* free every other one, then values twice as big fit (coalescing) */
	for (i = 0; i < n_ok; i += 2) {
		snprintf(k, sizeof(k), "f%d", i);
		spry_state_del(st, k, strlen(k));
	}
	for (i = 1; i < n_ok; i += 4) {
		snprintf(k, sizeof(k), "f%d", i);
		spry_state_del(st, k, strlen(k));
	}
	fill_value(v, sizeof(v), 1, 2);
	ret = putk(st, "bigger", v, sizeof(v));
	EXPECT_EQ(ret, 0, "freed space is used again (%s)", ret ? spry_state_error() : "ok");
	spry_state_stats(st, &s);
	spry_state_close(st);

	/* the index: max_keys, and tombstones cleared by a rehash */
	st = mk("full", 256 << 10, 16);
	ASSERT_TRUE(st != NULL);
	spry_state_stats(st, &s);
	for (i = 0; i < (int)s.max_keys; i++) {
		snprintf(k, sizeof(k), "i%d", i);
		if (putk(st, k, "v", 1))
			break;
	}
	EXPECT_EQ(i, (int)s.max_keys, "%llu keys fit", (unsigned long long)s.max_keys);
	EXPECT_EQ(putk(st, "one-more", "v", 1), -ENOSPC, "the index is full: ENOSPC");
	for (i = 0, bad = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "i%d", i % (int)s.max_keys);
		if (spry_state_del(st, k, strlen(k)))
			bad++;
		snprintf(k, sizeof(k), "churn%d", i);
		if (putk(st, k, "w", 1))
			bad++;
		if (spry_state_del(st, k, strlen(k)))
			bad++;
		snprintf(k, sizeof(k), "i%d", i % (int)s.max_keys);
		if (putk(st, k, "v", 1))
			bad++;
	}
	EXPECT_EQ(bad, 0, "5000 rounds of new keys through a full index (rehashes)");
	spry_state_close(st);
	{
		char p[128];

		path_in(p, sizeof(p), memdir, "full");
		rm_f(p);
	}
}

/* Two processes on one store see each other's puts. */
static int share_child(void *arg)
{
	struct spry_state *st = spry_state_open((const char *)arg, NULL);
	char k[16];
	int i;

	if (!st)
		return 2;
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "c%d", i);
		if (putk(st, k, &i, sizeof(i)))
			return 3;
	}
	spry_state_close(st);
	return 0;
}

static void case_share(void)
{
	struct spry_state *st;
	char p[128], k[16];
	int i, v, bad = 0, rc;
	size_t n;

	st = mk("share", 1 << 20, 4096);
	ASSERT_TRUE(st != NULL);
	path_in(p, sizeof(p), memdir, "share");
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "p%d", i);
		putk(st, k, &i, sizeof(i));
	}
	rc = bounded(share_child, p, CHILD_DEADLINE);
	EXPECT_EQ(rc, 0, "another process puts 1000 keys in the same store");
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "c%d", i);
		if (spry_state_get(st, k, strlen(k), &v, sizeof(v), &n) || v != i)
			bad++;
		snprintf(k, sizeof(k), "p%d", i);
		if (spry_state_get(st, k, strlen(k), &v, sizeof(v), &n) || v != i)
			bad++;
	}
	EXPECT_EQ(bad, 0, "both processes' keys, seen through this mapping");
	spry_state_close(st);
	rm_f(p);
}

/* Gets without the lock while another process puts, then is killed. */
static void case_concurrent(void)
{
	static uint8_t buf[70000], v[70000];
	struct spry_state *st;
	int i, bad = 0, gets = 0, missing = 0, ready[2];
	char p[128], k[16], c;
	double end;
	uint64_t sq;
	size_t n;
	pid_t pid;

	st = mk("conc", 8 << 20, 0);
	ASSERT_TRUE(st != NULL);
	path_in(p, sizeof(p), memdir, "conc");
	for (i = 0; i < 32; i++) {
		snprintf(k, sizeof(k), "c%d", i);
		fill_value(v, 100, (uint32_t)i, 1);
		putk(st, k, v, 100);
	}
	ASSERT_EQ(pipe(ready), 0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct spry_state *w = spry_state_open(p, NULL);
		uint64_t q;

		alarm(30);
		if (!w || write(ready[1], "r", 1) != 1)
			_exit(2);
		for (q = 2;; q++) {
			uint32_t key = (uint32_t)(q % 32);
			size_t l = 16 + (size_t)(q * 7919 % 60000);

			snprintf(k, sizeof(k), "c%u", key);
			fill_value(v, l, key, q);
			if (spry_state_put(w, k, strlen(k), v, l))
				_exit(3);
			if (q % 5 == 0 && spry_state_del(w, k, strlen(k)))
				_exit(4);
		}
	}
	close(ready[1]);
	ASSERT_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	end = now_s() + 1.5;
	while (now_s() < end) {
		for (i = 0; i < 32; i++) {
			int ret;

			snprintf(k, sizeof(k), "c%d", i);
			ret = spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n);
			gets++;
			if (ret == -ENOENT)
				missing++;
			else if (ret || check_value(buf, n, (uint32_t)i, &sq))
				bad++;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	EXPECT_EQ(bad, 0, "%d gets while another process put and deleted: every value whole "
		  "(%d absent)", gets, missing);
	for (i = 0, bad = 0; i < 32; i++) {
		int ret;

		snprintf(k, sizeof(k), "c%d", i);
		ret = spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n);
		if (ret != -ENOENT && (ret || check_value(buf, n, (uint32_t)i, &sq)))
			bad++;
	}
	EXPECT_EQ(bad, 0, "after the writer's kill -9, gets still whole (repaired if needed)");
	EXPECT_EQ(putk(st, "after", "x", 1), 0, "and puts work");
	spry_state_close(st);
	rm_f(p);
}

/* ------------------------------------------------- a process holding a store */

struct holder {
	pid_t	pid;
	int	go;		/* write end: a byte ends it */
};

/* A child that opens @path and keeps it open until told or killed. */
static int holder_start(struct holder *h, const char *path)
{
	int ready[2], go[2];
	char c;

	if (pipe(ready) || pipe(go))
		return -1;
	fflush(stdout);
	h->pid = fork();
	if (h->pid < 0)
		return -1;
	if (h->pid == 0) {
		struct spry_state *st = spry_state_open(path, NULL);

		close(ready[0]);
		close(go[1]);
		alarm(TEST_TIMEOUT);
		c = st ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(2);
		if (read(go[0], &c, 1) < 0)
			_exit(2);
		spry_state_close(st);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	h->go = go[1];
	if (read(ready[0], &c, 1) != 1 || c != 'y') {
		close(ready[0]);
		return -1;
	}
	close(ready[0]);
	return 0;
}

static int holder_stop(struct holder *h)
{
	int status = 0;

	if (h->pid <= 0)
		return 0;
	if (write(h->go, "x", 1) != 1)
		kill(h->pid, SIGKILL);
	close(h->go);
	waitpid(h->pid, &status, 0);
	h->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

/* ------------------------------------------------------- kill -9 mid-put */

#define CRASH_KEYS	64
#define CRASH_ROUNDS	24

static uint64_t crash_seq[CRASH_KEYS];	/* last acknowledged put per key */

static size_t crash_len(uint64_t seq)
{
	return 16 + (size_t)(seq * 7919 % 40000);
}

struct crash_check {
	const char	*path;
	uint64_t	inflight;	/* the put that may or may not have landed */
};

/* exit 0: every key as acknowledged, the in-flight one not landed; 1: landed;
 * 10+: a failure (printed) */
static int crash_verify(void *arg)
{
	const struct crash_check *cc = arg;
	static uint8_t buf[65536];
	struct spry_state *st = spry_state_open(cc->path, NULL);
	uint32_t k, ik = (uint32_t)(cc->inflight % CRASH_KEYS);
	int landed = 0, ret;
	uint64_t s;
	size_t n;

	if (!st) {
		printf("# reopen after kill -9: %s\n", spry_state_error());
		return 10;
	}
	for (k = 0; k < CRASH_KEYS; k++) {
		char key[16];

		snprintf(key, sizeof(key), "k%u", k);
		ret = spry_state_get(st, key, strlen(key), buf, sizeof(buf), &n);
		if (ret == -ENOENT && !crash_seq[k] && !(k == ik))
			continue;
		if (ret == -ENOENT && !crash_seq[k] && k == ik)
			continue;
		if (ret || check_value(buf, n, k, &s)) {
			printf("# key %u: get %d, len %zu: not a whole value\n", k, ret, n);
			return 11;
		}
		if (s == crash_seq[k])
			continue;
		if (k == ik && s == cc->inflight) {
			landed = 1;
			continue;
		}
		printf("# key %u: sequence %llu, acknowledged %llu (in flight %llu)\n", k,
		       (unsigned long long)s, (unsigned long long)crash_seq[k],
		       (unsigned long long)cc->inflight);
		return 12;
	}
	/* and the store still works */
	if (spry_state_put(st, "after", 5, "x", 1) || spry_state_del(st, "after", 5)) {
		printf("# put after recovery: %s\n", spry_state_error());
		return 13;
	}
	spry_state_close(st);
	return landed;
}

static void case_kill_put(void)
{
	int round, fails = 0, hangs = 0, landed = 0, total_acks = 0;
	struct spry_state_stats s;
	struct spry_state *st;
	uint64_t next = 1;
	char p[128];

	memset(crash_seq, 0, sizeof(crash_seq));
	st = mk("crash", 8 << 20, 0);
	ASSERT_TRUE(st != NULL);
	spry_state_close(st);
	path_in(p, sizeof(p), memdir, "crash");
	for (round = 0; round < CRASH_ROUNDS; round++) {
		struct holder h = { 0 };
		struct crash_check cc = { .path = p };
		bool hold = round % 2;
		int ack[2], rc;
		uint64_t a, last = 0;
		pid_t pid;

		if (hold && holder_start(&h, p)) {
			fails++;
			break;
		}
		if (pipe(ack))
			break;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			static uint8_t v[65536];
			struct spry_state *cs = spry_state_open(p, NULL);
			uint64_t sq;
			char key[16];

			close(ack[0]);
			alarm(30);
			if (!cs)
				_exit(2);
			sq = 0;
			if (write(ack[1], &sq, 8) != 8)
				_exit(2);
			for (sq = next;; sq++) {
				uint32_t k = (uint32_t)(sq % CRASH_KEYS);
				size_t l = crash_len(sq);

				snprintf(key, sizeof(key), "k%u", k);
				fill_value(v, l, k, sq);
				if (spry_state_put(cs, key, strlen(key), v, l))
					_exit(3);
				if (write(ack[1], &sq, 8) != 8)
					_exit(2);
			}
		}
		close(ack[1]);
		/* started, then a random moment in its puts */
		if (read(ack[0], &a, 8) == 8) {
			usleep(200 + (useconds_t)(rnd() % 4000));
			kill(pid, SIGKILL);
		} else {
			kill(pid, SIGKILL);
		}
		waitpid(pid, NULL, 0);
		while (read(ack[0], &a, 8) == 8) {
			if (!a)
				continue;
			crash_seq[a % CRASH_KEYS] = a;
			last = a;
			total_acks++;
		}
		close(ack[0]);
		if (!last)
			last = next - 1;
		cc.inflight = last + 1;
		rc = bounded(crash_verify, &cc, CHILD_DEADLINE);
		if (rc == 124)
			hangs++;
		if (rc == 1) {
			crash_seq[cc.inflight % CRASH_KEYS] = cc.inflight;
			landed++;
		} else if (rc) {
			fails++;
			tap_diag("round %d (%s): verify exit %d", round,
				 hold ? "another process holds the store" : "sole reopen", rc);
		}
		next = cc.inflight + 1;
		if (hold && holder_stop(&h))
			fails++;
	}
	EXPECT_EQ(hangs, 0, "no reopen hung (each bounded by %d s)", CHILD_DEADLINE);
	EXPECT_EQ(fails, 0, "%d kill -9 rounds (%d acknowledged puts): every acknowledged put "
		  "kept, no torn value, the store works after", CRASH_ROUNDS, total_acks);
	st = spry_state_open(p, NULL);
	ASSERT_TRUE(st != NULL);
	spry_state_stats(st, &s);
	tap_diag("in-flight puts that landed: %d of %d; repairs: %llu", landed, CRASH_ROUNDS,
		 (unsigned long long)s.recoveries);
	spry_state_close(st);
	rm_f(p);
}

/* ------------------------------------------------------------------ swap */

#define SW_KEYS		128
#define SW_LEN		(64 << 10)

static void sw_fill(struct spry_state *st, int nkeys, size_t len, uint64_t seq)
{
	static uint8_t v[1 << 20];
	char k[16];
	int i;

	for (i = 0; i < nkeys; i++) {
		snprintf(k, sizeof(k), "s%d", i);
		fill_value(v, len, (uint32_t)i, seq);
		if (spry_state_put(st, k, strlen(k), v, len))
			tap_diag("sw_fill %s: %s", k, spry_state_error());
	}
}

/* keys s0..s(n-1) of @len bytes and sequence @seq: how many are wrong */
static int sw_check(struct spry_state *st, int nkeys, size_t len, uint64_t seq)
{
	static uint8_t buf[1 << 20];
	int i, bad = 0;
	char k[16];
	uint64_t s;
	size_t n;

	for (i = 0; i < nkeys; i++) {
		snprintf(k, sizeof(k), "s%d", i);
		if (spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n) || n != len ||
		    check_value(buf, n, (uint32_t)i, &s) || s != seq)
			bad++;
	}
	return bad;
}

static void case_swap(void)
{
	char p[128], sp[160];
	struct spry_state_stats s;
	struct spry_state *st;
	struct holder h = { 0 };
	double t0, t1;
	uint8_t buf[64];
	size_t n;
	int ret;

	st = mk("sw", 16 << 20, 0);
	ASSERT_TRUE(st != NULL);
	path_in(p, sizeof(p), memdir, "sw");
	snprintf(sp, sizeof(sp), "%s/sw.swap", diskdir);
	sw_fill(st, SW_KEYS, SW_LEN, 1);
	/* another process has it open: no swap */
	if (!holder_start(&h, p)) {
		EXPECT_EQ(spry_state_swap_out(st, diskdir, "appA"), -EBUSY,
			  "swap while another process has the store: EBUSY");
		EXPECT_TRUE(strstr(spry_state_error(), "another process") != NULL, "says: %s",
			    spry_state_error());
		holder_stop(&h);
	}
	EXPECT_EQ(spry_state_swap_out(st, diskdir, "bad app"), -EINVAL, "an app tag with a space");
	t0 = now_s();
	ret = spry_state_swap_out(st, diskdir, "appA");
	t1 = now_s();
	ASSERT_EQ(ret, 0, "swap out 8 MiB (%s)", ret ? spry_state_error() : "ok");
	tap_diag("swap out of 8 MiB: %.1f ms", (t1 - t0) * 1e3);
	EXPECT_EQ(access(p, F_OK), -1, "the store's file is gone (memory given back)");
	EXPECT_EQ(access(sp, F_OK), 0, "the swap file is there");
	EXPECT_EQ(count_files(diskdir), 1, "and nothing else in the swap directory");

	errno = 0;
	EXPECT_TRUE(spry_state_open_swap(p, diskdir, "appB", NULL) == NULL && errno == EACCES,
		    "another app's swap file: EACCES");
	EXPECT_TRUE(strstr(spry_state_error(), "belongs to app 'appA'") != NULL, "says: %s",
		    spry_state_error());
	EXPECT_EQ(access(sp, F_OK), 0, "the swap file is kept");

	t0 = now_s();
	st = spry_state_open_swap(p, diskdir, "appA", NULL);
	t1 = now_s();
	ASSERT_TRUE(st != NULL, "wake (%s)", st ? "ok" : spry_state_error());
	EXPECT_EQ(spry_state_get(st, "s77", 3, buf, sizeof(buf), &n), -EMSGSIZE, "first get");
	tap_diag("wake %.2f ms, first get %.2f ms", (t1 - t0) * 1e3, (now_s() - t1) * 1e3);
	spry_state_stats(st, &s);
	EXPECT_LT(s.chunks_loaded, s.chunks / 2, "lazy: %llu of %llu chunks read after one get",
		  (unsigned long long)s.chunks_loaded, (unsigned long long)s.chunks);
	EXPECT_EQ(spry_state_prefetch(st, 1 << 20), -EAGAIN, "prefetch 1 MiB: more to read");
	EXPECT_EQ(sw_check(st, SW_KEYS, SW_LEN, 1), 0, "every value byte-exact after the wake");
	EXPECT_EQ(spry_state_prefetch(st, UINT64_MAX), 0, "prefetch the rest: all in memory");
	spry_state_stats(st, &s);
	EXPECT_EQ(s.chunks_loaded, s.chunks);
	/* a state file of app A is not app B's either */
	spry_state_close(st);
	errno = 0;
	EXPECT_TRUE(spry_state_open_swap(p, diskdir, "appB", NULL) == NULL && errno == EACCES,
		    "another app's state file: EACCES");
	/* the store wins over an older swap file */
	st = spry_state_open_swap(p, diskdir, "appA", NULL);
	ASSERT_TRUE(st != NULL);
	EXPECT_EQ(putk(st, "new", "1", 1), 0);
	spry_state_close(st);
	st = spry_state_open_swap(p, diskdir, "appA", NULL);
	ASSERT_TRUE(st != NULL);
	EXPECT_EQ(spry_state_get(st, "new", 3, buf, sizeof(buf), &n), 0,
		  "a live store is opened, not its older swap file");
	/* reboot: memory lost, the last swap comes back */
	EXPECT_EQ(spry_state_swap_out(st, diskdir, "appA"), 0, "swap again");
	st = spry_state_open_swap(p, diskdir, "appA", NULL);
	ASSERT_TRUE(st != NULL);
	EXPECT_EQ(putk(st, "after-swap", "1", 1), 0);
	spry_state_close(st);
	rm_f(p);	/* what a reboot does to /dev/shm */
	st = spry_state_open_swap(p, diskdir, "appA", NULL);
	ASSERT_TRUE(st != NULL, "after a 'reboot': %s", st ? "opened" : spry_state_error());
	EXPECT_EQ(spry_state_get(st, "after-swap", 10, buf, sizeof(buf), &n), -ENOENT,
		  "reboot: a put after the last swap is gone");
	EXPECT_EQ(spry_state_get(st, "new", 3, buf, sizeof(buf), &n), 0,
		  "reboot: the last swap is back");
	EXPECT_EQ(sw_check(st, SW_KEYS, SW_LEN, 1), 0);
	spry_state_close(st);
	{
		char junk[200];

		snprintf(junk, sizeof(junk), "%s.new.99999", p);
		write_file(junk, (const uint8_t *)"x", 1);
		snprintf(junk, sizeof(junk), "%s.wake.99998", p);
		write_file(junk, (const uint8_t *)"x", 1);
	}
	EXPECT_EQ(spry_state_unlink(p, diskdir), 0, "unlink store and swap file");
	EXPECT_EQ(count_files(memdir), 0, "and what a killed create or wake left");
	EXPECT_EQ(count_files(diskdir), 0, "nothing left");
	errno = 0;
	EXPECT_TRUE(spry_state_open_swap(p, diskdir, "appA", NULL) == NULL && errno == ENOENT,
		    "neither store nor swap file: ENOENT (%s)", spry_state_error());
	{
		struct spry_state_opts o = { .size = 1 << 20 };

		st = spry_state_open_swap(p, diskdir, "appA", &o);
		EXPECT_TRUE(st != NULL, "with a size: a new store");
		spry_state_close(st);
		spry_state_unlink(p, diskdir);
	}
}

/*
 * kill -9 in the middle of a swap out: the state is whole, in one place,
 * and the newest.  Every round puts its own data (sequence SWK_SEQ0 +
 * round in every value) before its swap out starts: those puts are
 * acknowledged, so after the kill the state must be exactly that round's,
 * whether the swap finished (from the new swap file) or not (from the
 * store).  The previous round's data is what a stale swap file (one the
 * swap did not replace) would give: counted apart, as any other sequence
 * or a torn value.
 */
#define SWK_ROUNDS	12
#define SWK_SEQ0	100

struct swk {
	const char *path;
	uint64_t seq;		/* the round's data */
};

/* keys of sequence @seq, of @seq - 1, and the others (torn, missing, older) */
static void sw_census(struct spry_state *st, uint64_t seq, int *now, int *prev, int *other)
{
	static uint8_t buf[1 << 20];
	char k[16];
	uint64_t s;
	size_t n;
	int i;

	*now = *prev = *other = 0;
	for (i = 0; i < SW_KEYS; i++) {
		snprintf(k, sizeof(k), "s%d", i);
		if (spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n) || n != SW_LEN ||
		    check_value(buf, n, (uint32_t)i, &s))
			(*other)++;
		else if (s == seq)
			(*now)++;
		else if (s == seq - 1)
			(*prev)++;
		else
			(*other)++;
	}
}

static int swk_verify(void *arg)
{
	const struct swk *w = arg;
	struct spry_state *st = spry_state_open_swap(w->path, diskdir, "crash", NULL);
	int now, prev, other;

	if (!st) {
		printf("# open after a killed swap: %s\n", spry_state_error());
		return 10;
	}
	sw_census(st, w->seq, &now, &prev, &other);
	if (now != SW_KEYS) {
		printf("# want all %d keys of sequence %llu: %d are, %d of the previous round "
		       "(%llu), %d other or torn\n", SW_KEYS, (unsigned long long)w->seq, now,
		       prev, (unsigned long long)w->seq - 1, other);
		return 11;
	}
	if (spry_state_prefetch(st, UINT64_MAX)) {
		printf("# prefetch: %s\n", spry_state_error());
		return 12;
	}
	spry_state_close(st);
	return 0;
}

/* put every key with sequence @seq: the puts that failed */
static int swk_fill(struct spry_state *st, uint64_t seq)
{
	static uint8_t v[SW_LEN];
	int i, bad = 0;
	char k[16];

	for (i = 0; i < SW_KEYS; i++) {
		snprintf(k, sizeof(k), "s%d", i);
		fill_value(v, SW_LEN, (uint32_t)i, seq);
		if (spry_state_put(st, k, strlen(k), v, SW_LEN)) {
			tap_diag("put %s: %s", k, spry_state_error());
			bad++;
		}
	}
	return bad;
}

static void case_kill_swap(void)
{
	int round, fails = 0, swapped = 0;
	struct spry_state *st;
	struct swk w;
	char p[128];
	double t0, full;

	st = mk("swk", 16 << 20, 0);
	ASSERT_TRUE(st != NULL);
	path_in(p, sizeof(p), memdir, "swk");
	w.path = p;
	ASSERT_EQ(swk_fill(st, SWK_SEQ0 - 1), 0);
	t0 = now_s();
	ASSERT_EQ(spry_state_swap_out(st, diskdir, "crash"), 0);
	full = now_s() - t0;
	for (round = 0; round < SWK_ROUNDS; round++) {
		int ready[2], rc;
		pid_t pid;
		char c;

		/* the state back in memory (a wake), this round's data put, then a swap killed */
		w.seq = SWK_SEQ0 + (uint64_t)round;
		st = spry_state_open_swap(p, diskdir, "crash", NULL);
		if (!st || spry_state_prefetch(st, UINT64_MAX)) {
			tap_diag("round %d: wake: %s", round, spry_state_error());
			fails++;
			break;
		}
		if (swk_fill(st, w.seq)) {
			spry_state_close(st);
			fails++;
			break;
		}
		spry_state_close(st);
		if (pipe(ready))
			break;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			struct spry_state *cs = spry_state_open(p, NULL);

			alarm(30);
			if (!cs || write(ready[1], "r", 1) != 1)
				_exit(2);
			_exit(spry_state_swap_out(cs, diskdir, "crash") ? 3 : 0);
		}
		close(ready[1]);
		/* every third round the swap completes (its file must then be served) */
		if (read(ready[0], &c, 1) == 1 && round % 3 != 2)
			usleep((useconds_t)(rnd() % (uint64_t)(full * 2e6 + 1)));
		if (round % 3 != 2)
			kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(ready[0]);
		swapped += access(p, F_OK) != 0;
		rc = bounded(swk_verify, &w, CHILD_DEADLINE);
		if (rc) {
			fails++;
			tap_diag("round %d (sequence %llu): verify exit %d", round,
				 (unsigned long long)w.seq, rc);
		}
	}
	EXPECT_EQ(fails, 0, "%d swaps, 2 in 3 killed at random points (%d had finished), each round "
		  "with its own data: the state is exactly the round's, whole, from the store "
		  "or the new swap file (never the previous round's)", SWK_ROUNDS, swapped);
	spry_state_unlink(p, diskdir);
	EXPECT_EQ(count_files(diskdir), 0, "no swap file or temporary left after unlink");
}

/* kill -9 while waking lazily: the next open resumes from the swap file */
static void case_kill_wake(void)
{
	struct spry_state *st;
	struct swk w;
	char p[128];
	int round, fails = 0;

	st = mk("swk", 16 << 20, 0);
	ASSERT_TRUE(st != NULL);
	path_in(p, sizeof(p), memdir, "swk");
	w.path = p;
	w.seq = 3;
	sw_fill(st, SW_KEYS, SW_LEN, w.seq);
	ASSERT_EQ(spry_state_swap_out(st, diskdir, "crash"), 0);
	for (round = 0; round < 6; round++) {
		int ready[2], rc;
		pid_t pid;
		char c;

		if (pipe(ready))
			break;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			struct spry_state *cs = spry_state_open_swap(p, diskdir, "crash", NULL);
			uint8_t b[16];
			size_t n;

			alarm(30);
			if (!cs)
				_exit(2);
			/* touch a few keys, change one, then prefetch until killed */
			spry_state_get(cs, "s5", 2, b, 0, &n);
			spry_state_get(cs, "s99", 3, b, 0, &n);
			if (write(ready[1], "r", 1) != 1)
				_exit(2);
			while (spry_state_prefetch(cs, 64 << 10) == -EAGAIN)
				usleep(300);
			pause();
			_exit(0);
		}
		close(ready[1]);
		if (read(ready[0], &c, 1) == 1)
			usleep((useconds_t)(rnd() % 6000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(ready[0]);
		rc = bounded(swk_verify, &w, CHILD_DEADLINE);
		if (rc) {
			fails++;
			tap_diag("round %d: verify exit %d", round, rc);
		}
		/* swap out again for the next round */
		st = spry_state_open(p, NULL);
		if (!st || spry_state_swap_out(st, diskdir, "crash")) {
			fails++;
			spry_state_close(st);
			break;
		}
	}
	EXPECT_EQ(fails, 0, "6 lazy wakes killed part way: the next open resumes, every value "
		  "byte-exact");
	spry_state_unlink(p, diskdir);
}

/* ENOSPC on the swap directory: nothing lost, the store stays */
static void case_enospc(void)
{
	struct spry_state *st;
	char p[128];

	if (getuid() != 0) {
		tap_skip_case("needs root to mount a small tmpfs");
		return;
	}
	if (mount("spry-test", smalldir, "tmpfs", 0, "size=1m,mode=0700")) {
		tap_skip_case("cannot mount a tmpfs");
		return;
	}
	small_mounted = true;
	st = mk("nospc", 8 << 20, 0);
	ASSERT_TRUE(st != NULL);
	path_in(p, sizeof(p), memdir, "nospc");
	sw_fill(st, 48, SW_LEN, 5);	/* 3 MiB */
	EXPECT_EQ(spry_state_swap_out(st, smalldir, "app"), -ENOSPC,
		  "swap out of 3 MiB to a 1 MiB file system: ENOSPC");
	EXPECT_TRUE(strstr(spry_state_error(), "No space") != NULL, "says: %s",
		    spry_state_error());
	EXPECT_EQ(count_files(smalldir), 0, "no temporary file left behind");
	EXPECT_EQ(access(p, F_OK), 0, "the store's file is still there");
	EXPECT_EQ(sw_check(st, 48, SW_LEN, 5), 0, "every value intact in the open store");
	EXPECT_EQ(spry_state_swap_out(st, diskdir, "app"), 0, "swap out elsewhere works");
	st = spry_state_open_swap(p, diskdir, "app", NULL);
	ASSERT_TRUE(st != NULL);
	EXPECT_EQ(sw_check(st, 48, SW_LEN, 5), 0, "and wakes whole");
	spry_state_close(st);
	spry_state_unlink(p, diskdir);
	umount2(smalldir, MNT_DETACH);
	small_mounted = false;
}

/* ------------------------------------------------------ damaged swap files */

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	struct stat sb;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb))
		return -1;
	*len = (size_t)sb.st_size;
	*data = malloc(*len);
	if (!*data || read(fd, *data, *len) != (ssize_t)*len) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, data, len) == (ssize_t)len ? 0 : -1;
	close(fd);
	return ret;
}

/* open_swap with a swap file made of @data: the errno (0: opened) */
static int wake_errno(const char *p, const uint8_t *data, size_t len, const char *sp)
{
	struct spry_state *st;

	unlink(p);
	if (write_file(sp, data, len))
		return -1;
	st = spry_state_open_swap(p, diskdir, "dmg", NULL);
	if (!st)
		return errno;
	spry_state_close(st);
	return 0;
}

static void case_bad_swap(void)
{
	struct spry_swap_hdr sh;
	struct spry_state *st;
	uint8_t *good = NULL, *bad;
	char p[128], sp[160];
	size_t len, n;
	int i, errs = 0, oks = 0, ret;
	uint64_t chunk_at;

	st = mk("dmg", 4 << 20, 0);
	ASSERT_TRUE(st != NULL);
	path_in(p, sizeof(p), memdir, "dmg");
	snprintf(sp, sizeof(sp), "%s/dmg.swap", diskdir);
	sw_fill(st, 40, SW_LEN, 9);	/* 2.5 MiB: 40 chunks */
	ASSERT_EQ(spry_state_swap_out(st, diskdir, "dmg"), 0);
	ASSERT_EQ(read_file(sp, &good, &len), 0);
	memcpy(&sh, good, sizeof(sh));
	bad = malloc(len);
	ASSERT_TRUE(bad != NULL);

	/* a byte of the image flipped: the keys in that chunk fail, the rest work */
	memcpy(bad, good, len);
	chunk_at = sh.data_off + 20ULL * sh.chunk_size + 4000;
	bad[chunk_at] ^= 0x40;
	EXPECT_EQ(wake_errno(p, bad, len, sp), 0, "a damaged chunk: the wake itself works (lazy)");
	unlink(p);
	st = spry_state_open_swap(p, diskdir, "dmg", NULL);
	ASSERT_TRUE(st != NULL);
	for (i = 0; i < 40; i++) {
		static uint8_t buf[SW_LEN];
		char k[16];

		snprintf(k, sizeof(k), "s%d", i);
		ret = spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n);
		if (ret == -EBADMSG)
			errs++;
		else if (ret == 0)
			oks++;
	}
	EXPECT_TRUE(errs >= 1 && errs <= 2 && oks == 40 - errs,
		    "the keys in the damaged chunk: EBADMSG (%d), the others read (%d)", errs, oks);
	{
		static uint8_t buf[SW_LEN];

		for (i = 0; i < 40; i++) {
			char k[16];

			snprintf(k, sizeof(k), "s%d", i);
			if (spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n) == -EBADMSG)
				break;
		}
		EXPECT_TRUE(strstr(spry_state_error(), "damaged") != NULL, "says: %s",
			    spry_state_error());
	}
	spry_state_close(st);
	/* a writer dies in a change of the half-woken store: the repair
	 * cannot read the damaged chunk, so it refuses, and drops nothing */
	{
		int fd = open(p, O_RDWR);
		struct spry_state_hdr *h;

		ASSERT_TRUE(fd >= 0);
		h = mmap(NULL, STATE_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		ASSERT_TRUE(h != MAP_FAILED);
		h->writing = 1;
		munmap(h, STATE_HDR_SIZE);
		errno = 0;
		st = spry_state_open_swap(p, diskdir, "dmg", NULL);
		EXPECT_TRUE(st == NULL && errno == EBADMSG,
			    "a repair that needs a damaged chunk: EBADMSG (%s)",
			    st ? "opened" : spry_state_error());
		spry_state_close(st);
	}
	/* the file repaired (say, restored from a backup): nothing was lost */
	ASSERT_EQ(write_file(sp, good, len), 0);
	st = spry_state_open_swap(p, diskdir, "dmg", NULL);
	ASSERT_TRUE(st != NULL, "the half-woken store resumes (%s)", st ? "ok" : spry_state_error());
	EXPECT_EQ(sw_check(st, 40, SW_LEN, 9), 0, "then every value is whole");
	spry_state_close(st);

	/* damaged headers, table, truncation, another app, absence */
	memcpy(bad, good, len);
	bad[0] ^= 1;
	EXPECT_EQ(wake_errno(p, bad, len, sp), EBADMSG, "bad magic: EBADMSG");
	memcpy(bad, good, len);
	bad[offsetof(struct spry_swap_hdr, state_size) + 2] ^= 1;
	EXPECT_EQ(wake_errno(p, bad, len, sp), EBADMSG, "a header field changed: EBADMSG");
	memcpy(bad, good, len);
	bad[SWAP_HDR_SIZE + 24] ^= 1;
	EXPECT_EQ(wake_errno(p, bad, len, sp), EBADMSG, "a checksum of the table changed: EBADMSG");
	EXPECT_TRUE(strstr(spry_state_error(), "checksum table") != NULL, "says: %s",
		    spry_state_error());
	EXPECT_EQ(wake_errno(p, good, len - 4096, sp), EBADMSG, "truncated: EBADMSG");
	EXPECT_TRUE(strstr(spry_state_error(), "truncated") != NULL, "says: %s",
		    spry_state_error());
	EXPECT_EQ(wake_errno(p, good, 100, sp), EBADMSG, "100 bytes: EBADMSG");
	memcpy(bad, good, len);
	memset(bad, 0, 4096);
	EXPECT_EQ(wake_errno(p, bad, len, sp), EBADMSG, "a zeroed header: EBADMSG");
	memcpy(bad, good, len);
	bad[sh.data_off + 10] ^= 1;	/* chunk 0: the store's header */
	EXPECT_EQ(wake_errno(p, bad, len, sp), EBADMSG, "chunk 0 damaged: EBADMSG at the wake");
	unlink(sp);
	unlink(p);
	errno = 0;
	EXPECT_TRUE(spry_state_open_swap(p, diskdir, "dmg", NULL) == NULL && errno == ENOENT,
		    "missing swap file: ENOENT");
	EXPECT_TRUE(strstr(spry_state_error(), "no swap file") != NULL, "says: %s",
		    spry_state_error());
	{
		struct spry_state *o;

		ASSERT_EQ(write_file(sp, good, len), 0);
		errno = 0;
		o = spry_state_open_swap(p, diskdir, "other", NULL);
		EXPECT_TRUE(o == NULL && errno == EACCES, "another app's swap file: EACCES");
		spry_state_close(o);
	}
	/* none of that lost the acknowledged state */
	st = spry_state_open_swap(p, diskdir, "dmg", NULL);
	ASSERT_TRUE(st != NULL);
	EXPECT_EQ(sw_check(st, 40, SW_LEN, 9), 0, "the good swap file still wakes whole");
	spry_state_close(st);
	spry_state_unlink(p, diskdir);
	free(good);
	free(bad);
}

/* ------------------------------------------------- damaged store files */

struct dmg_arg {
	const char	*src, *dst;
	int		rounds;
};

static int dmg_child(void *arg)
{
	const struct dmg_arg *d = arg;
	uint8_t *img = NULL, buf[4096];
	size_t len, n;
	int r, i, opened = 0;

	if (read_file(d->src, &img, &len))
		return 2;
	for (r = 0; r < d->rounds; r++) {
		struct spry_state *st;
		uint64_t cur = 0;
		int flips = 1 + (int)(rnd() % 8);
		uint8_t *m;
		int fd;

		if (write_file(d->dst, img, len))
			return 2;
		fd = open(d->dst, O_RDWR);
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (m == MAP_FAILED)
			return 2;
		for (i = 0; i < flips; i++) {
			/* mostly where it hurts: header, index, the first records */
			uint64_t where = rnd() % 4 ? rnd() % (64 << 10) : rnd() % len;

			if (rnd() % 2)
				m[where] ^= (uint8_t)(1u << (rnd() % 8));
			else
				memset(m + (where & ~7ULL), (int)(rnd() % 3 == 0 ? 0xff : 0), 8);
		}
		munmap(m, len);
		st = spry_state_open(d->dst, NULL);
		if (!st)
			continue;
		opened++;
		for (i = 0; i < 60; i++) {
			char k[16];

			snprintf(k, sizeof(k), "d%d", i);
			spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n);
		}
		while (spry_state_keys(st, &cur, buf, sizeof(buf), &n) == 0)
			;
		for (i = 0; i < 40; i++) {
			char k[16];

			snprintf(k, sizeof(k), "n%d", i);
			spry_state_put(st, k, strlen(k), buf, (size_t)(rnd() % 3000));
			snprintf(k, sizeof(k), "d%d", i);
			spry_state_del(st, k, strlen(k));
		}
		spry_state_close(st);
	}
	free(img);
	unlink(d->dst);
	printf("# %d of %d damaged stores opened (the rest refused)\n", opened, d->rounds);
	return 0;
}

static void case_bad_store(void)
{
	struct spry_state_stats s0, s1;
	struct spry_state *st;
	char p[128], q[128];
	uint8_t buf[4096];
	struct dmg_arg d;
	size_t n;
	int i, fd, bad = 0;

	st = mk("src", 1 << 20, 0);
	ASSERT_TRUE(st != NULL);
	for (i = 0; i < 60; i++) {
		char k[16];

		snprintf(k, sizeof(k), "d%d", i);
		fill_value(buf, 100 + (size_t)i * 30, (uint32_t)i, 1);
		putk(st, k, buf, 100 + (size_t)i * 30);
	}
	for (i = 0; i < 60; i += 3) {
		char k[16];

		snprintf(k, sizeof(k), "d%d", i);
		spry_state_del(st, k, strlen(k));
	}
	spry_state_close(st);
	path_in(p, sizeof(p), memdir, "src");
	path_in(q, sizeof(q), memdir, "dst");
	d.src = p;
	d.dst = q;
	d.rounds = 300;
	EXPECT_EQ(bounded(dmg_child, &d, 60), 0,
		  "300 randomly damaged stores: refused or used, no crash, no hang");
	unlink(q);

	/* a damaged free list and a boot id of another boot: repaired at open */
	st = spry_state_open(p, NULL);
	ASSERT_TRUE(st != NULL);
	spry_state_stats(st, &s0);
	spry_state_close(st);
	fd = open(p, O_RDWR);
	ASSERT_TRUE(fd >= 0);
	{
		struct spry_state_hdr *h = mmap(NULL, STATE_HDR_SIZE, PROT_READ | PROT_WRITE,
						MAP_SHARED, fd, 0);

		ASSERT_TRUE(h != MAP_FAILED);
		for (i = 0; i < STATE_N_CLASSES; i++)
			if (h->free_head[i])
				h->free_head[i] += 64;	/* into the middle of a block */
		memcpy(h->boot_id, "another-boot", 13);
		munmap(h, STATE_HDR_SIZE);
	}
	close(fd);
	st = spry_state_open(p, NULL);
	ASSERT_TRUE(st != NULL, "open after a 'reboot'");
	spry_state_stats(st, &s1);
	EXPECT_EQ(s1.recoveries, s0.recoveries + 1, "a store from another boot is checked and "
		  "repaired at open");
	for (i = 0; i < 60; i++) {
		char k[16];
		uint64_t sq;

		snprintf(k, sizeof(k), "d%d", i);
		if (i % 3 ? (spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n) ||
			     check_value(buf, n, (uint32_t)i, &sq)) :
			    spry_state_get(st, k, strlen(k), buf, sizeof(buf), &n) != -ENOENT)
			bad++;
	}
	EXPECT_EQ(bad, 0, "every key as it was");
	for (i = 0; i < 200; i++) {
		char k[16];

		snprintf(k, sizeof(k), "x%d", i);
		if (putk(st, k, buf, 1000) && putk(st, k, buf, 1000) != -ENOSPC)
			bad++;
	}
	EXPECT_EQ(bad, 0, "puts work on the repaired free space");
	spry_state_close(st);
	rm_f(p);
	/* junk files */
	ASSERT_EQ(write_file(q, (const uint8_t *)"not a store", 11), 0);
	errno = 0;
	EXPECT_TRUE(spry_state_open(q, NULL) == NULL && errno == EBADMSG, "a short file: EBADMSG");
	{
		static uint8_t zero[1 << 20];

		ASSERT_EQ(write_file(q, zero, sizeof(zero)), 0);
		errno = 0;
		EXPECT_TRUE(spry_state_open(q, NULL) == NULL && errno == EBADMSG,
			    "1 MiB of zeros: EBADMSG (%s)", spry_state_error());
	}
	rm_f(q);
}

/* ------------------------------------------------------------ 1 GiB swap */

#define BIG_VALUES	1000
#define BIG_LEN		((1 << 20) - 64)

/*
 * Value i of the 1 GiB case: one random block shared by all, every 4 KiB
 * of it stamped with (i, page): a page read into the wrong place or from
 * another value shows.  Made by rewriting the stamps only (fast enough
 * for a sanitized build too).
 */
static void big_stamp(uint8_t *v, uint32_t i)
{
	uint64_t pg, stamp;

	for (pg = 0; pg < BIG_LEN / 4096; pg++) {
		stamp = ((uint64_t)i << 32 | pg) * 0x9e3779b97f4a7c15ULL;
		memcpy(v + pg * 4096, &stamp, 8);
	}
}

static void case_big(void)
{
	struct spry_state_opts o = { .size = (1ULL << 30) + (64ULL << 20), .max_keys = 4096 };
	static uint64_t sums[BIG_VALUES];
	struct statvfs vm, vd;
	struct spry_state *st;
	double t0, t_fill, t_out, t_wake, t_first, t_all;
	uint8_t *v, *z;
	char p[128], k[16];
	int i, bad = 0, ret;
	size_t n;
	long avail_mb = 0;
	FILE *mi;

	if (statvfs(memdir, &vm) || statvfs(diskdir, &vd) ||
	    (uint64_t)vm.f_bavail * vm.f_frsize < (3ULL << 29) ||
	    (uint64_t)vd.f_bavail * vd.f_frsize < (3ULL << 29)) {
		tap_skip_case("needs 1.5 GiB free on /dev/shm and on the swap directory's disk");
		return;
	}
	mi = fopen("/proc/meminfo", "r");
	if (mi) {
		char line[128];

		while (fgets(line, sizeof(line), mi))
			if (sscanf(line, "MemAvailable: %ld kB", &avail_mb) == 1)
				break;
		fclose(mi);
		avail_mb /= 1024;
	}
	if (avail_mb < 3072) {
		tap_skip_case("needs 3 GiB of available memory");
		return;
	}
	path_in(p, sizeof(p), memdir, "big");
	rm_f(p);
	st = spry_state_open(p, &o);
	ASSERT_TRUE(st != NULL, "a 1 GiB store (%s)", st ? "ok" : spry_state_error());
	v = malloc(BIG_LEN);
	ASSERT_TRUE(v != NULL);
	fill_value(v, BIG_LEN, 0, 7);
	t0 = now_s();
	for (i = 0; i < BIG_VALUES; i++) {
		snprintf(k, sizeof(k), "b%d", i);
		big_stamp(v, (uint32_t)i);
		sums[i] = state_sum(v, BIG_LEN, 1);
		if (putk(st, k, v, BIG_LEN)) {
			bad++;
			break;
		}
	}
	t_fill = now_s() - t0;
	ASSERT_EQ(bad, 0, "1000 values of 1 MiB put (%s)", bad ? spry_state_error() : "ok");
	t0 = now_s();
	ret = spry_state_swap_out(st, diskdir, "big");
	t_out = now_s() - t0;
	ASSERT_EQ(ret, 0, "swap out 1 GiB (%s)", ret ? spry_state_error() : "ok");
	EXPECT_EQ(access(p, F_OK), -1, "memory given back");
	t0 = now_s();
	st = spry_state_open_swap(p, diskdir, "big", NULL);
	t_wake = now_s() - t0;
	ASSERT_TRUE(st != NULL, "wake (%s)", st ? "ok" : spry_state_error());
	t0 = now_s();
	ret = spry_state_get(st, "b500", 4, v, BIG_LEN, &n);
	t_first = now_s() - t0;
	EXPECT_EQ(ret, 0, "first get after the wake");
	t0 = now_s();
	for (i = 0; i < BIG_VALUES; i++) {
		snprintf(k, sizeof(k), "b%d", i);
		z = spry_state_ptr(st, k, strlen(k), &n);
		big_stamp(v, (uint32_t)i);
		if (!z || n != BIG_LEN || state_sum(z, n, 1) != sums[i] || memcmp(z, v, n))
			bad++;
	}
	t_all = now_s() - t0;
	EXPECT_EQ(bad, 0, "1 GiB swapped and woken: every value byte-exact, checksums equal");
	tap_diag("1 GiB: fill %.2f s, swap out %.2f s, wake %.1f ms, first get %.1f ms, "
		 "all read and checked %.2f s", t_fill, t_out, t_wake * 1e3, t_first * 1e3, t_all);
	spry_state_close(st);
	free(v);
	spry_state_unlink(p, diskdir);
}

/* ------------------------------------------------------------ hugetlbfs */

static int write_long(const char *path, long v)
{
	char b[32];
	int fd = open(path, O_WRONLY), n, ret;

	if (fd < 0)
		return -1;
	n = snprintf(b, sizeof(b), "%ld\n", v);
	ret = write(fd, b, (size_t)n) == n ? 0 : -1;
	close(fd);
	return ret;
}

static void case_huge(void)
{
	struct spry_state_opts o = { .size = 3 << 20 };
	struct spry_state_stats s;
	struct spry_state *st;
	char dir[128], p[160];
	long old = -1;
	uint8_t buf[64];
	size_t n;
	FILE *f;

	if (getuid() != 0) {
		tap_skip_case("needs root (mount hugetlbfs, nr_hugepages)");
		return;
	}
	f = fopen("/proc/sys/vm/nr_hugepages", "r");
	if (!f || fscanf(f, "%ld", &old) != 1) {
		if (f)
			fclose(f);
		tap_skip_case("no /proc/sys/vm/nr_hugepages");
		return;
	}
	fclose(f);
	snprintf(dir, sizeof(dir), "%s/huge", diskdir);
	snprintf(hugedir, sizeof(hugedir), "%s", dir);
	mkdir(dir, 0700);
	huge_old = old;
	if (write_long("/proc/sys/vm/nr_hugepages", old + 8) ||
	    mount("spry-test", dir, "hugetlbfs", 0, "pagesize=2M,mode=0700")) {
		write_long("/proc/sys/vm/nr_hugepages", old);
		huge_old = -1;
		rmdir(dir);
		tap_skip_case("cannot mount hugetlbfs with 2 MiB pages");
		return;
	}
	huge_mounted = true;
	snprintf(p, sizeof(p), "%s/st", dir);
	st = spry_state_open(p, &o);
	EXPECT_TRUE(st != NULL, "a store on hugetlbfs (%s)", st ? "ok" : spry_state_error());
	if (st) {
		spry_state_stats(st, &s);
		EXPECT_EQ(s.size, 4 << 20, "3 MiB asked: 4 MiB, whole huge pages");
		EXPECT_EQ(putk(st, "k", "hello", 5), 0);
		EXPECT_EQ(spry_state_swap_out(st, diskdir, "h"), 0, "swapped out from hugetlbfs");
		st = spry_state_open_swap(p, diskdir, "h", NULL);
		EXPECT_TRUE(st != NULL, "woken into hugetlbfs (%s)", st ? "ok" : spry_state_error());
		if (st) {
			EXPECT_EQ(spry_state_get(st, "k", 1, buf, sizeof(buf), &n), 0);
			EXPECT_MEMEQ(buf, "hello", 5, "the value back");
			EXPECT_EQ(spry_state_prefetch(st, UINT64_MAX), 0);
			spry_state_close(st);
		}
		spry_state_unlink(p, diskdir);
	}
	umount2(dir, MNT_DETACH);
	huge_mounted = false;
	rmdir(dir);
	EXPECT_EQ(write_long("/proc/sys/vm/nr_hugepages", old), 0, "nr_hugepages back to %ld", old);
	huge_old = -1;
}

/* ------------------------------------------------------- environment */

static int env_child(void *arg)
{
	struct spry_state *a, *b;
	char p[128];

	(void)arg;
	path_in(p, sizeof(p), memdir, "env");
	unsetenv("SPRY_STATE_PATH");
	errno = 0;
	if (spry_fn_state() != NULL || errno != ENOENT)
		return 10;
	setenv("SPRY_STATE_PATH", p, 1);
	setenv("SPRY_STATE_SIZE", "12x", 1);
	if (spry_fn_state() != NULL || errno != EINVAL)
		return 11;
	setenv("SPRY_STATE_SIZE", "1048576", 1);
	setenv("SPRY_STATE_SWAP_DIR", diskdir, 1);
	if (spry_fn_state() != NULL || errno != EINVAL)	/* no SPRY_STATE_APP */
		return 12;
	setenv("SPRY_STATE_APP", "envapp", 1);
	a = spry_fn_state();
	b = spry_fn_state();
	if (!a || a != b)
		return 13;
	if (spry_state_put(a, "k", 1, "v", 1))
		return 14;
	return 0;
}

static int env_child2(void *arg)
{
	struct spry_state *a;
	char p[128], v;
	size_t n;

	(void)arg;
	path_in(p, sizeof(p), memdir, "env");
	setenv("SPRY_STATE_PATH", p, 1);
	setenv("SPRY_STATE_SWAP_DIR", diskdir, 1);
	setenv("SPRY_STATE_APP", "envapp", 1);
	a = spry_fn_state();
	if (!a || spry_state_get(a, "k", 1, &v, 1, &n) || v != 'v')
		return 20;
	return spry_state_swap_out(a, diskdir, "envapp") ? 21 : 0;
}

/* SPRY_STATE_SIZE=0 (spryd's process that has a swap file): open only */
static int env_child_open_only(void *arg)
{
	struct spry_state *a;
	char p[128], v;
	size_t n;

	path_in(p, sizeof(p), memdir, "env");
	setenv("SPRY_STATE_PATH", p, 1);
	setenv("SPRY_STATE_SWAP_DIR", diskdir, 1);
	setenv("SPRY_STATE_APP", "envapp", 1);
	setenv("SPRY_STATE_SIZE", "0", 1);
	errno = 0;
	a = spry_fn_state();
	if (*(const int *)arg) {
		/* its swap file is there: woken from it */
		if (!a || spry_state_get(a, "k", 1, &v, 1, &n) || v != 'v')
			return 30;
		return spry_state_swap_out(a, diskdir, "envapp") ? 31 : 0;
	}
	/* gone: refused with ENODATA (not ENOENT, "no state"), nothing made */
	if (a || errno != ENODATA || !strstr(spry_state_error(), "its state is lost"))
		return 32;
	return access(p, F_OK) == -1 && errno == ENOENT ? 0 : 33;
}

static void case_env(void)
{
	char p[128];

	path_in(p, sizeof(p), memdir, "env");
	EXPECT_EQ(bounded(env_child, NULL, CHILD_DEADLINE), 0,
		  "spry_fn_state(): NULL/ENOENT without SPRY_STATE_PATH, bad size and missing "
		  "app refused, one store for every call");
	EXPECT_EQ(bounded(env_child2, NULL, CHILD_DEADLINE), 0,
		  "a new process of the same id sees the put, and swaps out");
	EXPECT_EQ(access(p, F_OK), -1, "swapped: no store file");
	EXPECT_EQ(bounded(env_child2, NULL, CHILD_DEADLINE), 0,
		  "the next process wakes it from the swap file");
	{
		char sw[160], saved[176];
		int there = 1, gone = 0;

		/* env_child2 woke and swapped it out again: the swap file is there */
		EXPECT_EQ(bounded(env_child_open_only, &there, CHILD_DEADLINE), 0,
			  "SPRY_STATE_SIZE=0 with its swap file there: woken from it");
		snprintf(sw, sizeof(sw), "%s/env.swap", diskdir);
		snprintf(saved, sizeof(saved), "%s.saved", sw);
		EXPECT_EQ(rename(sw, saved), 0, "its swap file moved away");
		EXPECT_EQ(bounded(env_child_open_only, &gone, CHILD_DEADLINE), 0,
			  "SPRY_STATE_SIZE=0, no store and no swap file: NULL, ENODATA, "
			  "'its state is lost', no empty store made");
		unlink(saved);
	}
	spry_state_unlink(p, diskdir);
}

/* ------------------------------------------------------------------ main */

static const struct tap_case cases[] = {
	TAP_CASE(case_basic, "put/get/del/keys, zero-copy pointer and alloc, stats, reopen"),
	TAP_CASE(case_model, "20000 random operations against a model, then reopened"),
	TAP_CASE(case_full, "a full store and a full index: ENOSPC, nothing lost, space reused"),
	TAP_CASE(case_share, "two processes on one store"),
	TAP_CASE(case_concurrent, "gets without the lock while another process puts and dies"),
	TAP_CASE(case_kill_put, "kill -9 in the middle of puts: every acknowledged put kept"),
	TAP_CASE(case_swap, "swap out, lazy wake, prefetch, apps, reboot, unlink"),
	TAP_CASE(case_kill_swap, "kill -9 during a swap out: the state is whole"),
	TAP_CASE(case_kill_wake, "kill -9 during a lazy wake: the next open resumes"),
	TAP_CASE(case_enospc, "ENOSPC on the swap directory: nothing lost"),
	TAP_CASE(case_bad_swap, "damaged, truncated, missing and other-app swap files"),
	TAP_CASE(case_bad_store, "damaged store files: refused or repaired, never a hang"),
	TAP_CASE(case_big, "1 GiB swapped out and woken, byte-exact by checksums"),
	TAP_CASE(case_huge, "a store on hugetlbfs: create, swap out, wake"),
	TAP_CASE(case_env, "spry_fn_state(): the store named by the environment"),
};

static void cleanup(void)
{
	if (small_mounted)
		umount2(smalldir, MNT_DETACH);
	if (memdir[0]) {
		clean_dir(memdir);
		rmdir(memdir);
	}
	if (diskdir[0]) {
		clean_dir(diskdir);
		rmdir(smalldir);
		rmdir(diskdir);
	}
}

static pid_t main_pid;

static void on_fatal(int sig)
{
	/* only async-signal-safe calls */
	static const char msg[] = "# test_state: timed out or killed\nBail out!\n";
	static char *const envp[] = { NULL };
	char *argv[] = { "rm", "-rf", memdir, diskdir, NULL };
	pid_t pid;

	(void)sig;
	if (getpid() != main_pid)
		_exit(124);	/* a child's own deadline: the parent reports it */
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	if (small_mounted)
		umount2(smalldir, MNT_DETACH);
	if (huge_mounted)
		umount2(hugedir, MNT_DETACH);
	if (huge_old >= 0) {
		/* what write_long() does, with async-signal-safe calls only */
		char b[24];
		int i = sizeof(b), fd;
		long v = huge_old;

		b[--i] = '\n';
		do {
			b[--i] = (char)('0' + v % 10);
			v /= 10;
		} while (v && i > 0);
		fd = open("/proc/sys/vm/nr_hugepages", O_WRONLY);
		if (fd >= 0) {
			if (write(fd, b + i, sizeof(b) - (size_t)i) < 0)
				i = 0;
			close(fd);
		}
	}
	/* the stores may hold a GiB of memory: removed even now */
	pid = fork();
	if (pid == 0) {
		execve("/bin/rm", argv, envp);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	_exit(1);
}

int main(void)
{
	int ret;

	main_pid = getpid();
	signal(SIGALRM, on_fatal);
	signal(SIGTERM, on_fatal);
	signal(SIGINT, on_fatal);
	alarm(TEST_TIMEOUT);
	rng ^= (uint64_t)getpid() << 20 ^ (uint64_t)time(NULL);
	snprintf(memdir, sizeof(memdir), "/dev/shm/spry-test-state.XXXXXX");
	if (!mkdtemp(memdir)) {
		memdir[0] = 0;
		tap_skip_all("cannot make a directory in /dev/shm");
	}
	snprintf(diskdir, sizeof(diskdir), "/var/tmp/spry-test-state.XXXXXX");
	if (!mkdtemp(diskdir)) {
		diskdir[0] = 0;
		cleanup();
		tap_skip_all("cannot make a directory in /var/tmp");
	}
	snprintf(smalldir, sizeof(smalldir), "%s/small", diskdir);
	mkdir(smalldir, 0700);
	ret = tap_run_cases(cases, TAP_N(cases));
	cleanup();
	return ret;
}
