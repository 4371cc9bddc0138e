// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * wordcount: prefix the payload with "words=N lines=M bytes=K\n", counted
 * as wc(1) does (words: runs of non-space; lines: newlines).  The response
 * is longer than the request: it moves to a bigger pool buffer when it
 * does not fit (spry_req_resize).
 *
 *   wordcount --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"
#include "transforms.h"

static int wordcount(struct spry_req *req, void *user)
{
	char head[XF_HEAD_MAX];
	unsigned char *p;
	size_t len;
	int hlen;

	(void)user;
	p = spry_req_data(req, &len);
	hlen = xf_wordcount_head(p, len, head, sizeof(head));
	if (hlen < 0)
		return spry_req_error(req, 500, -EOVERFLOW, "the count line is over %d bytes",
				      XF_HEAD_MAX);
	/* may move the request to a bigger buffer */
	p = spry_req_resize(req, len + hlen);
	if (!p)
		return -errno;
	memmove(p + hlen, p, len);
	memcpy(p, head, hlen);
	return spry_req_set_len(req, len + hlen);
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, wordcount, NULL);
}
