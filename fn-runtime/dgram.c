// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Datagram request parser and response writer (fn-runtime/dgram.h).  The
 * header is copied out before it is read: a UDP payload in an AF_XDP frame
 * has no alignment guarantee.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "fn-runtime/dgram.h"

_Static_assert(SPRY_DGRAM_HDR_LEN == 24, "datagram header is 24 bytes");

int spry_dgram_parse(const void *buf, size_t len, struct spry_dgram_req *out)
{
	struct spry_dgram_hdr h;
	uint16_t chain;

	if (!out || (!buf && len))
		return -EINVAL;
	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (ntohl(h.magic) != SPRY_DGRAM_MAGIC ||
	    h.version != SPRY_DGRAM_VERSION || h.flags || h.status ||
	    h.pad[0] || h.pad[1] || h.pad[2])
		return -EBADMSG;
	chain = ntohs(h.chain);
	if (chain == 0 || chain >= SPRY_MAX_CHAINS)
		return -EBADMSG;
	if ((uint64_t)ntohl(h.len) != (uint64_t)(len - sizeof(h)))
		return -EBADMSG;
	out->chain = chain;
	out->req_id = h.req_id;
	out->payload = (const uint8_t *)buf + sizeof(h);
	out->len = ntohl(h.len);
	return 0;
}

int spry_dgram_build_response(void *out, size_t cap, uint16_t chain,
			      uint64_t req_id, uint8_t status,
			      const void *payload, size_t len,
			      size_t *written)
{
	struct spry_dgram_hdr h;

	if (!written)
		return -EINVAL;
	*written = 0;
	if (!out || (!payload && len) || chain == 0 ||
	    chain >= SPRY_MAX_CHAINS || status >= SPRY_ST_MAX ||
	    len > UINT32_MAX - sizeof(h))
		return -EINVAL;
	if (cap < sizeof(h) || len > cap - sizeof(h))
		return -ENOSPC;
	memset(&h, 0, sizeof(h));
	h.magic = htonl(SPRY_DGRAM_MAGIC);
	h.version = SPRY_DGRAM_VERSION;
	h.flags = SPRY_DGF_RESPONSE;
	h.chain = htons(chain);
	h.req_id = req_id;
	h.status = status;
	h.len = htonl((uint32_t)len);
	/* payload first: it may overlap where the header goes */
	if (len)
		memmove((uint8_t *)out + sizeof(h), payload, len);
	memcpy(out, &h, sizeof(h));
	*written = sizeof(h) + len;
	return 0;
}
