// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of the process table reader (lib/proc_table.c): what
 * spryd reads at start from <state-dir>/apps/processes/APP.json and its
 * journal APP.json.log, which a crash, a full disk or a hand may have
 * damaged.
 *
 * Input: the table file, then (after the first NUL byte, if any) the
 * journal; the table is parsed for app "a1", then the journal replayed
 * over it.
 *
 * Asserted (abort() on failure), besides ASan/UBSan/LeakSanitizer:
 *   - parse and replay return 0, -EINVAL or -ENOMEM;
 *   - -EINVAL: a non-empty, NUL-terminated reason that fits err, and
 *     (parse) nothing returned;
 *   - 0: the app is "a1", at most SPRY_MAX_PROCS records, ids in
 *     1..2^63-1 strictly increasing (so never twice), each state
 *     allocated or swapped, each pid 0 or above 1, each swap-file no,
 *     yes or unknown (absent); next-id in range;
 *   - a second parse and replay of the same bytes give the same records
 *     (no hidden state);
 * and everything is freed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn-runtime/proto.h"
#include "lib/app.h"
#include "lib/proc_table.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_proc_table: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static void check_table(const struct spry_proc_table *t)
{
	uint32_t i;

	check(!strcmp(t->app, "a1"));
	check(t->n <= SPRY_MAX_PROCS);
	check(!t->n || t->recs);
	check(t->next_id <= SPRY_PROC_ID_MAX);
	check(memchr(t->boot, '\0', sizeof(t->boot)));
	for (i = 0; i < t->n; i++) {
		const struct spry_proc_rec *r = &t->recs[i];

		check(r->id >= 1 && r->id <= SPRY_PROC_ID_MAX);
		check(!i || r->id > t->recs[i - 1].id);
		check(r->state == SPRY_PS_ALLOCATED || r->state == SPRY_PS_SWAPPED);
		check(r->pid == 0 || r->pid > 1);
		check(r->swap_file == SPRY_SF_NO || r->swap_file == SPRY_SF_YES ||
		      r->swap_file == SPRY_SF_UNKNOWN);
	}
}

/* parse + replay: the status; *t filled when 0 */
static int run(const char *tab, size_t tlen, const char *jr, size_t jlen,
	       struct spry_proc_table *t, bool *torn)
{
	char err[256];
	int ret;

	memset(err, 'X', sizeof(err));
	ret = spry_proc_table__parse(tab, tlen, "a1", t, err, 200);
	check(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	check(err[200] == 'X' && memchr(err, '\0', 200));
	if (ret) {
		check(ret != -EINVAL || err[0]);
		check(!t->recs && !t->n);
		return ret;
	}
	check_table(t);
	*torn = false;
	if (!jr)
		return 0;
	ret = spry_proc_table__replay(t, jr, jlen, torn, err, 200);
	check(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	check(err[200] == 'X' && memchr(err, '\0', 200));
	check(ret != -EINVAL || err[0]);
	if (!ret)
		check_table(t);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nul = memchr(data, '\0', size);
	size_t tlen = nul ? (size_t)(nul - text) : size;
	const char *jr = nul ? nul + 1 : NULL;
	size_t jlen = nul ? size - tlen - 1 : 0;
	struct spry_proc_table t1, t2;
	bool torn1, torn2;
	int r1, r2;

	r1 = run(text, tlen, jr, jlen, &t1, &torn1);
	r2 = run(text, tlen, jr, jlen, &t2, &torn2);
	check(r1 == r2 || r1 == -ENOMEM || r2 == -ENOMEM);
	if (!r1 && !r2) {
		check(torn1 == torn2 && t1.n == t2.n && t1.next_id == t2.next_id);
		check(!t1.n || !memcmp(t1.recs, t2.recs, t1.n * sizeof(*t1.recs)));
	}
	spry_proc_table__free(&t1);
	spry_proc_table__free(&t2);
	return 0;
}
