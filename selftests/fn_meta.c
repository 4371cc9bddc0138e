// SPDX-License-Identifier: GPL-2.0-only
/*
 * A test function for the HTTP front (test_gateway.sh): the response is
 * the request's metadata lines (padding dropped), "--\n", then the
 * payload.  Request headers steer it:
 *   x-spry-status: N      @status N (written as given: also bad values)
 *   x-spry-ctype: T       @content-type T
 *   x-spry-fail: 1        the handler fails (FN_ERROR)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spry/spry.h"

static int meta_fn(struct spry_req *req, void *user)
{
	const struct spry_desc *d = spry_req_desc(req);
	char meta[4096], val[128];
	const char *v;
	unsigned char *p;
	size_t len, vlen, mlen = 0, i;
	const char *m;
	int err;

	(void)user;
	if (spry_req_meta(req, "x-spry-fail", NULL))
		return -EIO;
	/* the metadata area sits right before the payload */
	p = spry_req_data(req, &len);
	m = (const char *)p - d->meta_len;
	for (i = 0; i < d->meta_len && mlen < sizeof(meta) - 1; i++) {
		if (m[i] == '\n' && (!mlen || meta[mlen - 1] == '\n'))
			continue;	/* padding */
		meta[mlen++] = m[i];
	}
	if (mlen && meta[mlen - 1] != '\n' && mlen < sizeof(meta) - 1)
		meta[mlen++] = '\n';
	v = spry_req_meta(req, "x-spry-status", &vlen);
	if (v && vlen < sizeof(val)) {
		memcpy(val, v, vlen);
		val[vlen] = '\0';
		err = spry_req_set_meta(req, SPRY_META_STATUS, val);
		if (err)
			return err;
	}
	v = spry_req_meta(req, "x-spry-ctype", &vlen);
	if (v && vlen < sizeof(val)) {
		memcpy(val, v, vlen);
		val[vlen] = '\0';
		err = spry_req_set_meta(req, SPRY_META_CONTENT_TYPE, val);
		if (err)
			return err;
	}
	p = spry_req_data(req, &len);
	p = spry_req_resize(req, mlen + 3 + len);
	if (!p)
		return -errno;
	memmove(p + mlen + 3, p, len);
	memcpy(p, meta, mlen);
	memcpy(p + mlen, "--\n", 3);
	return spry_req_set_len(req, mlen + 3 + len);
}

int main(int argc, char **argv)
{
	struct spry_fn_opts opts = {};
	int ret;

	if (spry_fn_opts_parse(&opts, argc, argv))
		return 2;
	ret = spry_fn_run(&opts, meta_fn, NULL);
	if (ret) {
		fprintf(stderr, "%s: %s\n", argv[0], strerror(-ret));
		return 1;
	}
	return 0;
}
