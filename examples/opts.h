/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A program's own numeric options beside the common function command line
 * (spry_fn_opts_parse() takes the rest): examples/workflow.c and the
 * benchmark's bench/flow_fn.c.
 */
#ifndef SPRY_EXAMPLES_OPTS_H
#define SPRY_EXAMPLES_OPTS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"

/*
 * Take "NAME VALUE" (VALUE a number in 0..@max, spry_parse_u64) out of
 * argv into *@out.  0 taken, 1 absent, -1 bad (said on stderr as @prog's).
 */
static inline int example_take_u32(const char *prog, int *argc, char **argv,
				   const char *name, uint64_t max, unsigned int *out)
{
	uint64_t v;
	int i;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], name))
			continue;
		if (i + 1 >= *argc ||
		    spry_parse_u64(argv[i + 1], strlen(argv[i + 1]), 0, max, &v)) {
			fprintf(stderr, "%s: %s: expected a number in 0..%llu\n", prog, name,
				(unsigned long long)max);
			return -1;
		}
		*out = (unsigned int)v;
		memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2 + 1) * sizeof(*argv));
		*argc -= 2;
		return 0;
	}
	return 1;
}

#endif /* SPRY_EXAMPLES_OPTS_H */
