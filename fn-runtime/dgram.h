/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Datagram requests (struct spry_dgram_hdr in include/spry/abi.h): the userspace
 * parser of a request and the writer of its response.  Pure functions over
 * byte buffers, in libspry; spryd's AF_XDP path and the selftests use them.
 *
 * spry_dgram_parse() applies exactly the rules XDP applies before a packet
 * reaches a socket (bpf/xdp_ingress.c), so a datagram that got past the
 * filter parses, and anything else (a socket reached another way, a
 * filter that is not loaded) is refused the same way:
 *   magic SPRY_DGRAM_MAGIC, version SPRY_DGRAM_VERSION, flags 0, status 0,
 *   pad zero, chain 1..SPRY_MAX_CHAINS-1, len == the bytes after the header.
 */
#ifndef SPRY_FN_RUNTIME_DGRAM_H
#define SPRY_FN_RUNTIME_DGRAM_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include "spry/abi.h"

#define SPRY_DGRAM_HDR_LEN	sizeof(struct spry_dgram_hdr)

/* A parsed request.  payload points into the caller's buffer. */
struct spry_dgram_req {
	uint16_t	chain;		/* host order, 1..SPRY_MAX_CHAINS-1 */
	uint64_t	req_id;		/* the 8 wire bytes, as they came */
	const uint8_t	*payload;	/* buf + SPRY_DGRAM_HDR_LEN */
	uint32_t	len;		/* payload bytes */
};

/*
 * Parse the UDP payload @buf (@len bytes) as a request.  0 and *@out
 * filled; -EBADMSG when it breaks a rule above (*@out untouched);
 * -EINVAL for NULL arguments.
 */
int spry_dgram_parse(const void *buf, size_t len, struct spry_dgram_req *out);

/*
 * Write the response to a request of @chain/@req_id into @out (@cap
 * bytes): header with SPRY_DGF_RESPONSE, @status (enum spry_status), then
 * @len bytes of @payload (NULL allowed when @len is 0; it may overlap
 * @out, e.g. already sit at out + SPRY_DGRAM_HDR_LEN).  *@written gets
 * SPRY_DGRAM_HDR_LEN + @len.  0, -ENOSPC (@cap too small, nothing
 * written), -EINVAL (NULL, chain 0 or >= SPRY_MAX_CHAINS, status >=
 * SPRY_ST_MAX, @len over UINT32_MAX - header).
 */
int spry_dgram_build_response(void *out, size_t cap, uint16_t chain,
			      uint64_t req_id, uint8_t status,
			      const void *payload, size_t len,
			      size_t *written);

#endif /* SPRY_FN_RUNTIME_DGRAM_H */
