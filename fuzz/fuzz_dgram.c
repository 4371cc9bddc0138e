// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of the datagram request parser (fn-runtime/dgram.c).
 *
 * Asserted (abort() on failure):
 *   - the parser accepts exactly what the rules of struct spry_dgram_hdr
 *     (include/spry/abi.h) accept, computed here independently, byte by byte;
 *   - when it accepts: payload == input + 24, payload + len == input end
 *     (inside the input), chain and req_id as on the wire;
 *   - the response built for it parses back field by field (and is
 *     refused as a request: it has SPRY_DGF_RESPONSE), also when built in
 *     place over the request; too small a buffer is -ENOSPC with nothing
 *     written.
 * The input is copied into an exact-size heap buffer so that ASan sees
 * any read past it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn-runtime/dgram.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_dgram: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The rules of include/spry/abi.h, on raw bytes. */
static bool valid_request(const uint8_t *p, size_t n)
{
	if (n < 24)
		return false;
	return be32(p) == 0x53505251 && p[4] == 1 && p[5] == 0 &&
	       (p[6] << 8 | p[7]) >= 1 && (p[6] << 8 | p[7]) <= 255 &&
	       p[16] == 0 && p[17] == 0 && p[18] == 0 && p[19] == 0 &&
	       (uint64_t)be32(p + 20) == n - 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spry_dgram_req req, again;
	uint8_t *in = malloc(size ? size : 1), *out;
	size_t w, cap;
	int ret;

	check(in);
	memcpy(in, data, size);
	memset(&req, 0xa5, sizeof(req));
	ret = spry_dgram_parse(in, size, &req);
	check(ret == 0 || ret == -EBADMSG);
	check((ret == 0) == valid_request(data, size));
	if (ret) {
		free(in);
		return 0;
	}
	check(req.payload == in + 24);
	check(req.payload + req.len == in + size);
	check(req.chain == (data[6] << 8 | data[7]));
	check(!memcmp(&req.req_id, data + 8, 8));
	if (req.len)	/* touch the payload: ASan checks the range */
		check(memchr(req.payload, data[size - 1], req.len));

	/* the response, into an exact buffer */
	cap = 24 + (size_t)req.len;
	out = malloc(cap);
	check(out);
	check(spry_dgram_build_response(out, cap - 1, req.chain, req.req_id,
					 SPRY_ST_OK, req.payload, req.len,
					 &w) == -ENOSPC && w == 0);
	check(spry_dgram_build_response(out, cap, req.chain, req.req_id,
					 data[16] % SPRY_ST_MAX, req.payload,
					 req.len, &w) == 0);
	check(w == cap);
	check(be32(out) == 0x53505251 && out[4] == 1 &&
	      out[5] == SPRY_DGF_RESPONSE && !memcmp(out + 6, data + 6, 10) &&
	      out[16] == data[16] % SPRY_ST_MAX && !out[17] && !out[18] &&
	      !out[19] && be32(out + 20) == req.len &&
	      !memcmp(out + 24, data + 24, req.len));
	check(spry_dgram_parse(out, w, &again) == -EBADMSG);

	/* in place: the payload already sits after the header */
	check(spry_dgram_build_response(in, size, req.chain, req.req_id,
					 SPRY_ST_FN_ERROR, in + 24, req.len,
					 &w) == 0);
	check(w == size && !memcmp(in, out, 16) && in[16] == SPRY_ST_FN_ERROR &&
	      !memcmp(in + 17, out + 17, size - 17));
	free(out);
	free(in);
	return 0;
}
