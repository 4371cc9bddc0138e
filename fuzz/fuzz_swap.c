// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of the swap file reader (shm/swap.c: header and
 * checksum table checks, the lazy wake, chunk loads) and of what reads
 * the woken store (shm/state.c: header, index, records, free lists).
 * Everything lives in memfds: nothing is left on disk.
 *
 * Input: data[0] is the mode, the rest depends on it:
 *   bit 0 clear: data[1..] is the swap file;
 *   bit 0 set:   a store is built through the API from data[1..]: n =
 *                data[1] % 24 keys "kI", value I of data[2 + I] * 37 bytes
 *                (a pattern of I); it is swapped out (state_swap_write)
 *                into the swap file; then the remaining bytes, 5 at a
 *                time (u32 offset, u8 xor), damage that file;
 *   bit 1 set:   the swap file's checksums (chunks, table, header) are
 *                recomputed after the damage, so that damaged content
 *                reaches the woken store's own checks.
 * Then the file is woken (state_wake_fd) and, when that works, every key
 * is read, the keys listed, puts and dels done, the rest prefetched, and
 * the store swapped out and woken again.
 *
 * Asserted (abort() on failure): a store built and swapped with no
 * damage wakes, and every key reads back byte-exact, before and after a
 * second swap; a woken store's operations return 0 or a -errno, never
 * crash or hang (libFuzzer's -timeout).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "shm/state_internal.h"

#define MAX_STATE	(8u << 20)	/* bigger stores are not woken here */
#define MAX_FILE	(16u << 20)

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_swap: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static void pattern(uint8_t *v, size_t len, unsigned int i)
{
	size_t j;

	for (j = 0; j < len; j++)
		v[j] = (uint8_t)(i * 31 + j * 7 + (j >> 8));
}

/* Recompute the checksums of the swap file in @fd (when its sizes are sane). */
static void fix_sums(int fd)
{
	struct spry_swap_hdr sh;
	uint64_t size, c, *sums;
	uint8_t *m;

	size = (uint64_t)lseek(fd, 0, SEEK_END);
	if (size < SWAP_HDR_SIZE || size > MAX_FILE)
		return;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return;
	memcpy(&sh, m, sizeof(sh));
	if (sh.chunk_size >= STATE_MIN_CHUNK && !(sh.chunk_size & (sh.chunk_size - 1)) &&
	    sh.nchunks && sh.nchunks <= STATE_MAX_CHUNKS && sh.sums_off == SWAP_HDR_SIZE &&
	    sh.sums_off + (uint64_t)sh.nchunks * 8 <= size && sh.data_off <= size &&
	    sh.image_len <= size - sh.data_off) {
		sums = (uint64_t *)(void *)(m + sh.sums_off);
		for (c = 0; c < sh.nchunks; c++) {
			uint64_t start = c * sh.chunk_size, len = 0;

			if (start < sh.image_len)
				len = sh.image_len - start < sh.chunk_size ?
				      sh.image_len - start : sh.chunk_size;
			sums[c] = state_sum(m + sh.data_off + start, len, c);
		}
		sh.sums_check = state_sum(sums, (size_t)sh.nchunks * 8, sh.swap_id);
	}
	sh.hdr_check = state_sum(&sh, offsetof(struct spry_swap_hdr, hdr_check), SWAP_MAGIC);
	memcpy(m, &sh, sizeof(sh));
	munmap(m, size);
}

/* Every key kI (I < n) as built, when @exact; else only exercised. */
static void read_all(struct spry_state *st, unsigned int n, const uint8_t *lens, bool exact)
{
	static uint8_t buf[24 * 255 * 37], want[255 * 37];
	unsigned int i;
	size_t len;
	char k[8];
	int ret;

	for (i = 0; i < 24; i++) {
		snprintf(k, sizeof(k), "k%u", i);
		ret = spry_state_get(st, k, strlen(k), buf, sizeof(buf), &len);
		if (!exact)
			continue;
		if (i >= n) {
			check(ret == -ENOENT);
			continue;
		}
		check(ret == 0);
		check(len == (size_t)lens[i] * 37);
		pattern(want, len, i);
		check(!memcmp(buf, want, len));
	}
}

static struct spry_state *wake(int swap_fd, int *state_fd)
{
	struct spry_state *st;
	int dup_fd = dup(swap_fd);

	*state_fd = memfd_create("fuzz_swap_state", MFD_CLOEXEC);
	check(*state_fd >= 0 && dup_fd >= 0);
	st = state_wake_fd(dup_fd, *state_fd, NULL, NULL, "fz");
	if (!st) {
		close(*state_fd);
		*state_fd = -1;
	}
	return st;
}

static void exercise(struct spry_state *st)
{
	uint8_t buf[4096];
	uint64_t cur = 0;
	size_t len;
	int i, guard = 0;

	while (spry_state_keys(st, &cur, buf, sizeof(buf), &len) == 0 && guard++ < 100000)
		;
	memset(buf, 0xab, sizeof(buf));
	for (i = 0; i < 8; i++) {
		char k[8];

		snprintf(k, sizeof(k), "n%d", i);
		spry_state_put(st, k, strlen(k), buf, (size_t)i * 500);
		snprintf(k, sizeof(k), "k%d", i);
		spry_state_del(st, k, strlen(k));
	}
	spry_state_prefetch(st, UINT64_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spry_state *st, *st2;
	uint8_t lens[24] = { 0 };
	unsigned int n = 0, i;
	bool damaged = false;
	int swap_fd, sfd = -1, sfd2 = -1, swap2;
	size_t at = 1;

	if (size < 1 || size > MAX_FILE)
		return 0;
	swap_fd = memfd_create("fuzz_swap", MFD_CLOEXEC);
	check(swap_fd >= 0);
	if (data[0] & 1) {
		struct spry_state_opts o = { .size = SPRY_STATE_MIN_SIZE, .max_keys = 64 };
		static uint8_t v[255 * 37];
		int fd = memfd_create("fuzz_swap_build", MFD_CLOEXEC);

		check(fd >= 0);
		st = state_map(fd, NULL, 0, true, true, &o);
		check(st);
		n = size > 1 ? data[1] % 24 : 0;
		for (i = 0; i < n; i++) {
			char k[8];

			lens[i] = 2 + i < size ? data[2 + i] : 0;
			snprintf(k, sizeof(k), "k%u", i);
			pattern(v, (size_t)lens[i] * 37, i);
			check(!spry_state_put(st, k, strlen(k), v, (size_t)lens[i] * 37));
		}
		check(!state_lock(st));
		check(!state_swap_write(st, swap_fd, "fz"));
		state_unlock(st);
		spry_state_close(st);
		at = 2 + n;
		for (; at + 5 <= size; at += 5) {
			uint32_t off;
			uint64_t fsize = (uint64_t)lseek(swap_fd, 0, SEEK_END);
			uint8_t b;

			memcpy(&off, data + at, 4);
			if (!fsize || !data[at + 4])
				continue;
			off %= fsize;
			if (pread(swap_fd, &b, 1, off) != 1)
				continue;
			b ^= data[at + 4];
			check(pwrite(swap_fd, &b, 1, off) == 1);
			damaged = true;
		}
	} else {
		if (size > 1)
			check(write(swap_fd, data + 1, size - 1) == (ssize_t)(size - 1));
		damaged = true;	/* not a file this harness made */
	}
	if (data[0] & 2)
		fix_sums(swap_fd);
	{
		/* a store too big for the fuzzer's memory is not woken */
		struct spry_swap_hdr sh;

		if (pread(swap_fd, &sh, sizeof(sh), 0) == (ssize_t)sizeof(sh) &&
		    sh.state_size > MAX_STATE) {
			close(swap_fd);
			return 0;
		}
	}
	st = wake(swap_fd, &sfd);
	if (!damaged)
		check(st);
	if (st) {
		read_all(st, n, lens, !damaged);
		if (!damaged) {
			/* swap it again and wake it: the same keys */
			swap2 = memfd_create("fuzz_swap2", MFD_CLOEXEC);
			check(swap2 >= 0);
			check(!state_lock(st));
			check(!state_swap_write(st, swap2, "fz"));
			state_unlock(st);
			st2 = wake(swap2, &sfd2);
			check(st2);
			read_all(st2, n, lens, true);
			spry_state_close(st2);
			close(swap2);
		}
		exercise(st);
		spry_state_close(st);
	}
	close(swap_fd);
	return 0;
}
