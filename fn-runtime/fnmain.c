// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* spry_fn_main: the whole main() of a typical function. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"

SPRY_API int spry_fn_main(int argc, char **argv, spry_handler_t handler, void *user)
{
	struct spry_fn_opts opts;
	int ret;

	memset(&opts, 0, sizeof(opts));
	if (spry_fn_opts_parse(&opts, argc, argv)) {
		fprintf(stderr, "usage: %s --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]\n",
			argc > 0 ? argv[0] : "spry-fn");
		return 2;
	}
	ret = spry_fn_run(&opts, handler, user);
	if (ret == -EIDRM) {
		fprintf(stderr, "%s: spryd has no chain %s with a function %s: not retrying\n",
			argc > 0 ? argv[0] : "spry-fn", opts.chain, opts.fn);
		return SPRY_EXIT_GONE;
	}
	if (ret) {
		fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "spry-fn", strerror(-ret));
		return 1;
	}
	return 0;
}
