// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_dgram: the datagram request parser and response writer
 * (fn-runtime/dgram.c) against the rules of struct spry_dgram_hdr
 * (include/spry/abi.h): a valid request (also at an odd address), every field
 * that must be refused, len against the bytes that follow, the chain
 * range; the response's bytes, in place and with too small a buffer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "fn-runtime/dgram.h"
#include "selftests/tap.h"

static const uint8_t REQ_ID[8] = { 1, 2, 3, 4, 5, 6, 7, 0xff };

/* A request on the wire, written byte by byte (not with the struct). */
static size_t mk(uint8_t *b, uint16_t chain, const char *payload)
{
	size_t n = strlen(payload);

	memset(b, 0, 24);
	b[0] = 'S'; b[1] = 'P'; b[2] = 'R'; b[3] = 'Q';
	b[4] = 1;
	b[6] = chain >> 8;
	b[7] = chain & 0xff;
	memcpy(b + 8, REQ_ID, 8);
	b[20] = n >> 24; b[21] = n >> 16; b[22] = n >> 8; b[23] = n;
	memcpy(b + 24, payload, n);
	return 24 + n;
}

static int parse_fails(const uint8_t *b, size_t n)
{
	struct spry_dgram_req r;

	memset(&r, 0x5a, sizeof(r));
	return spry_dgram_parse(b, n, &r) == -EBADMSG && r.chain == 0x5a5a;
}

/* Room for a request one byte in: parsed at an odd address. */
static uint8_t raw[256 + 1];

static void case_valid(void)
{
	uint8_t *b = raw + 1;
	struct spry_dgram_req r;
	size_t n;
	int ok;

	n = mk(b, 42, "hello");
	ok = spry_dgram_parse(b, n, &r) == 0;
	tap_ok(ok && r.chain == 42 && r.len == 5 && r.payload == b + 24 &&
	       !memcmp(r.payload, "hello", 5) && !memcmp(&r.req_id, REQ_ID, 8),
	       "valid request: chain, req_id, payload in place");
	n = mk(b, 255, "");
	tap_ok(spry_dgram_parse(b, n, &r) == 0 && r.chain == 255 && r.len == 0 &&
	       r.payload == b + 24, "empty payload, chain 255");
}

static void case_chains(void)
{
	uint8_t *b = raw + 1;
	size_t n;
	int ok;

	n = mk(b, 0, "x");
	tap_ok(parse_fails(b, n), "chain 0 refused");
	n = mk(b, 256, "x");
	ok = parse_fails(b, n);
	n = mk(b, 0xffff, "x");
	tap_ok(ok && parse_fails(b, n), "chain 256 and 65535 refused");
}

static void case_fields(void)
{
	uint8_t *b = raw + 1;
	struct spry_dgram_req r;
	size_t n;
	int i, ok;

	n = mk(b, 1, "abc");
	b[3] = 'P';
	tap_ok(parse_fails(b, n), "bad magic refused");
	n = mk(b, 1, "abc");
	b[4] = 2;
	tap_ok(parse_fails(b, n), "version 2 refused");
	n = mk(b, 1, "abc");
	b[5] = SPRY_DGF_RESPONSE;
	tap_ok(parse_fails(b, n), "flags (a response) refused");
	n = mk(b, 1, "abc");
	b[16] = 1;
	tap_ok(parse_fails(b, n), "non-zero status refused");
	for (ok = 1, i = 17; i < 20; i++) {
		n = mk(b, 1, "abc");
		b[i] = 0x80;
		ok &= parse_fails(b, n);
	}
	tap_ok(ok, "each pad byte non-zero refused");
	n = mk(b, 1, "abc");
	tap_ok(spry_dgram_parse(b, n, &r) == 0, "same request with the fields right parses");
}

static void case_len(void)
{
	uint8_t *b = raw + 1;
	struct spry_dgram_req r;
	size_t n;
	int i, ok;

	n = mk(b, 1, "abc");
	tap_ok(parse_fails(b, n - 1), "fewer payload bytes than len refused");
	b[n] = 'd';
	tap_ok(parse_fails(b, n + 1), "more payload bytes than len refused");
	n = mk(b, 1, "");
	b[20] = 0xff; b[21] = 0xff; b[22] = 0xff; b[23] = 0xff;
	tap_ok(parse_fails(b, 200), "len 0xffffffff refused");
	for (ok = 1, i = 0; i < 24; i++)
		ok &= parse_fails(b, i);
	tap_ok(ok && spry_dgram_parse(NULL, 0, &r) == -EBADMSG &&
	       spry_dgram_parse(b, 24, NULL) == -EINVAL &&
	       spry_dgram_parse(NULL, 24, &r) == -EINVAL,
	       "shorter than the header refused; NULL arguments -EINVAL");
}

static void case_response(void)
{
	uint8_t *b = raw + 1;
	uint8_t out[64];
	struct spry_dgram_req r;
	size_t n, w;
	int ok;

	memcpy(&r.req_id, REQ_ID, sizeof(r.req_id));
	memset(out, 0xee, sizeof(out));
	ok = spry_dgram_build_response(out, sizeof(out), 42, r.req_id,
				       SPRY_ST_FN_ERROR, "bye", 3, &w) == 0;
	{
		static const uint8_t want[27] = {
			'S', 'P', 'R', 'Q', 1, SPRY_DGF_RESPONSE, 0, 42,
			1, 2, 3, 4, 5, 6, 7, 0xff,
			SPRY_ST_FN_ERROR, 0, 0, 0, 0, 0, 0, 3, 'b', 'y', 'e' };

		tap_ok(ok && w == 27 && !memcmp(out, want, 27) && out[27] == 0xee,
		       "response bytes: magic, RESPONSE flag, chain, req_id echoed, status, len");
	}
	tap_ok(parse_fails(out, w), "a response is not a request");
	n = mk(b, 9, "in place payload");
	ok = spry_dgram_parse(b, n, &r) == 0 &&
	     spry_dgram_build_response(b, n, r.chain, r.req_id, SPRY_ST_OK,
				       r.payload, r.len, &w) == 0;
	tap_ok(ok && w == n && b[5] == SPRY_DGF_RESPONSE && b[7] == 9 &&
	       !memcmp(b + 24, "in place payload", 16),
	       "response built in place over its request");
}

static void case_writer_refusals(void)
{
	uint8_t out[64];
	size_t w;

	memset(out, 0xee, sizeof(out));
	tap_ok(spry_dgram_build_response(out, 26, 1, 0, 0, "bye", 3, &w) == -ENOSPC &&
	       w == 0 && out[0] == 0xee &&
	       spry_dgram_build_response(out, 23, 1, 0, 0, NULL, 0, &w) == -ENOSPC,
	       "too small a buffer: -ENOSPC, nothing written");
	tap_ok(spry_dgram_build_response(out, sizeof(out), 0, 0, 0, NULL, 0, &w) == -EINVAL &&
	       spry_dgram_build_response(out, sizeof(out), 256, 0, 0, NULL, 0, &w) == -EINVAL &&
	       spry_dgram_build_response(out, sizeof(out), 1, 0, SPRY_ST_MAX, NULL, 0, &w) == -EINVAL,
	       "chain 0, chain 256, unknown status: -EINVAL");
	tap_ok(spry_dgram_build_response(out, sizeof(out), 1, 0, 0, NULL, 1, &w) == -EINVAL &&
	       spry_dgram_build_response(NULL, sizeof(out), 1, 0, 0, NULL, 0, &w) == -EINVAL &&
	       spry_dgram_build_response(out, sizeof(out), 1, 0, 0, NULL, 0, NULL) == -EINVAL &&
	       spry_dgram_build_response(out, sizeof(out), 1, 0, 0, out, (size_t)UINT32_MAX, &w) == -EINVAL,
	       "NULL arguments, len over 32 bits: -EINVAL");
}

static const struct tap_case cases[] = {
	TAP_CASE(case_valid, "valid requests, also at an odd address: chain, req_id, payload in place"),
	TAP_CASE(case_chains, "chains 0, 256 and 65535 refused"),
	TAP_CASE(case_fields, "each fixed field (magic, version, flags, status, pad) checked"),
	TAP_CASE(case_len, "len against the bytes that follow; short headers, NULL arguments"),
	TAP_CASE(case_response, "the response: its bytes, not a request, built in place"),
	TAP_CASE(case_writer_refusals, "the writer refuses small buffers, bad chains, statuses and arguments"),
};

int main(void)
{
	return tap_run_cases(cases, TAP_N(cases));
}
