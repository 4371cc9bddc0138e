// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of `spry apply`'s chain-file parser
 * (loader/apply_parse.c): arbitrary bytes as the file.
 *
 * Asserted (abort() on failure), besides ASan/UBSan/LeakSanitizer:
 *   - the return is 0, -EINVAL or -ENOMEM;
 *   - 0: *n in 0..SPRY_MAX_CHAINS-1, specs non-NULL iff *n > 0, every spec
 *     passes spry_chain_spec__check() (what the loader then relies on),
 *     names NUL-terminated, chain names distinct; err left empty;
 *   - -EINVAL: a non-empty, NUL-terminated reason that fits err, and
 *     nothing returned;
 *   - a second parse of the same bytes gives the same result (no hidden
 *     state);
 * and what it returns is freed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/apply.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_apply: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static bool name_ok(const char *s)
{
	return memchr(s, '\0', SPRY_NAME_LEN) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spry_chain_spec *specs = NULL, *again = NULL;
	char err[256], err2[256], msg[256];
	int n = -1, n2 = -1, ret, ret2, i, j;
	__u32 k;

	/* a sentinel past the reason must survive */
	memset(err, 'X', sizeof(err));
	ret = spry_apply_parse((const char *)data, size, &specs, &n, err, 200);
	check(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	check(err[200] == 'X' && memchr(err, '\0', 200));

	if (ret == 0) {
		check(n >= 0 && n < SPRY_MAX_CHAINS);
		check((n > 0) == (specs != NULL));
		check(err[0] == '\0');
		for (i = 0; i < n; i++) {
			const struct spry_chain_spec *s = &specs[i];

			check(name_ok(s->name));
			check(s->n_hops >= 1 && s->n_hops <= SPRY_MAX_HOPS);
			check(s->n_extra <= SPRY_MAX_HOPS);
			for (k = 0; k < s->n_hops; k++)
				check(name_ok(s->hops[k]));
			for (k = 0; k < s->n_extra; k++)
				check(name_ok(s->extra[k]));
			check(s->idempotent_mask >> s->n_hops == 0);
			check(spry_chain_spec__check(s, msg, sizeof(msg)) == 0);
			for (j = 0; j < i; j++)
				check(strcmp(specs[j].name, s->name));
		}
	} else {
		check(specs == NULL && n == 0);
		if (ret == -EINVAL)
			check(err[0] != '\0');
	}

	ret2 = spry_apply_parse((const char *)data, size, &again, &n2, err2,
				sizeof(err2));
	if (ret != -ENOMEM && ret2 != -ENOMEM) {
		check(ret2 == ret && n2 == n);
		if (n)
			check(!memcmp(specs, again, n * sizeof(*specs)));
		if (ret == -EINVAL)
			check(!strncmp(err, err2, 199));
	}
	free(specs);
	free(again);

	/* no reason buffer at all: still no crash */
	ret2 = spry_apply_parse((const char *)data, size, &again, &n2, NULL, 0);
	if (ret != -ENOMEM && ret2 != -ENOMEM)
		check(ret2 == ret);
	free(again);
	return 0;
}
