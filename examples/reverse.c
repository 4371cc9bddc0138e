// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * reverse: reverse the payload's bytes, in place.
 *
 *   reverse --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "transforms.h"

static int reverse(struct spry_req *req, void *user)
{
	unsigned char *p;
	size_t len;

	(void)user;
	p = spry_req_data(req, &len);
	xf_reverse(p, len);
	return 0;
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, reverse, NULL);
}
