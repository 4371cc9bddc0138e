/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's AF_XDP room (xsk.c): UMEMs that are a reserved run of a chain's
 * pool, and AF_XDP sockets on them, on libxdp's xsk API (<xdp/xsk.h>).
 * Every frame is a pool buffer: the fill ring is topped up with reserved
 * buffers (spry_pool_alloc_reserved, tag um->tag), a received frame can
 * become a request's buffer in place, and a response is transmitted from
 * the buffer it was written in.  No XDP program is loaded here (spry's own
 * redirects into its XSKMAP; the datagram front inserts the socket).
 */
#ifndef SPRYD_XSK_H
#define SPRYD_XSK_H

#include <stdbool.h>
#include <stdint.h>
#include <xdp/xsk.h>

struct spry_pool;

enum spryd_xsk_frame_state {
	XSK_FR_OUT = 0,	/* not held here: free in the pool or a request's */
	XSK_FR_FILL,	/* on a fill ring (or the RX ring: the kernel's) */
	XSK_FR_TX,	/* on a TX ring until its completion */
};

struct spryd_xsk_frame {
	uint32_t	gen;	/* pool generation of the buffer */
	uint8_t		state;	/* enum spryd_xsk_frame_state */
	uint8_t		sock;	/* socket whose ring holds it */
};

struct spryd_umem {
	struct xsk_umem		*umem;		/* libxdp's; NULL: not registered */
	struct xsk_ring_prod	fill0;		/* rings made with the UMEM: */
	struct xsk_ring_cons	comp0;		/* copied by its first socket */
	struct spry_pool	*pool;
	uint8_t			*base;		/* spryd's address of frame 0 */
	uint64_t		pool_off;	/* pool offset of frame 0 */
	uint32_t		n_frames;
	uint32_t		chunk;		/* frame = buffer size */
	uint32_t		ring;		/* ring sizes (power of 2) */
	uint64_t		tag;		/* pool tag of the frames held here */
	unsigned int		n_socks;
	bool			zerocopy;	/* its first socket's bind mode */
	struct spryd_xsk_frame	*fr;
};

struct spryd_xsk {
	struct xsk_socket	*xsk;		/* NULL: closed */
	struct spryd_umem	*um;
	struct xsk_ring_prod	fill, tx;
	struct xsk_ring_cons	comp, rx;
	uint8_t			idx;		/* frames' owner id */
	bool			kick;		/* TX submitted, not yet woken */
	uint32_t		fill_target;
	uint32_t		n_fill;		/* frames on the fill ring */
	uint32_t		n_tx;		/* frames on the TX ring */
	uint64_t		bad_frame, tx_full, tx_err;	/* counters */
};

/*
 * A UMEM over @n_frames buffers of @chunk bytes at pool offset @off (the
 * pool's reserved run, page aligned), rings of @ring entries; 0 or -errno.
 */
int spryd_umem_open(struct spryd_umem *um, struct spry_pool *pool, uint64_t off,
		    uint32_t chunk, uint32_t n_frames, uint32_t ring, uint64_t tag);
/* After its sockets are closed. */
void spryd_umem_close(struct spryd_umem *um);

/*
 * An AF_XDP socket on @ifname's @queue over @um (zero-copy tried first by
 * a UMEM's first socket, the others share its mode), its fill ring topped
 * up to @fill_target; 0 or -errno with *@why.
 */
int spryd_xsk_open(struct spryd_xsk *x, struct spryd_umem *um, const char *ifname,
		   uint32_t queue, uint8_t idx, uint32_t fill_target, const char **why);
void spryd_xsk_close(struct spryd_xsk *x);
static inline int spryd_xsk_fd(const struct spryd_xsk *x)
{
	return x->xsk ? xsk_socket__fd(x->xsk) : -1;
}

/* Frame @idx's pool offset and spryd's address. */
static inline uint64_t spryd_xsk_frame_off(const struct spryd_umem *um, uint32_t idx)
{
	return um->pool_off + (uint64_t)idx * um->chunk;
}

static inline uint8_t *spryd_xsk_frame_ptr(const struct spryd_umem *um, uint32_t idx)
{
	return um->base + (uint64_t)idx * um->chunk;
}

/* The frame at pool offset @off (a buffer start inside the UMEM); false: none. */
bool spryd_xsk_frame_at(const struct spryd_umem *um, uint64_t off, uint32_t *idx);
/* A fresh reserved frame held here (gen recorded); 0 or -ENOBUFS. */
int spryd_xsk_frame_alloc(struct spryd_umem *um, uint32_t *idx);
/* A held frame that is done: back on @x's fill ring, or freed. */
void spryd_xsk_frame_release(struct spryd_xsk *x, uint32_t idx);

/*
 * Receiving: spryd_xsk_rx_peek() gives up to @max descriptors from ring
 * position *@pos; spryd_xsk_rx_take() copies descriptor @pos + i and takes
 * its frame out of the fill accounting (false: not a frame of this
 * socket's fill ring, counted and left); spryd_xsk_rx_release() gives the
 * ring positions back.
 */
uint32_t spryd_xsk_rx_peek(struct spryd_xsk *x, uint32_t max, uint32_t *pos);
bool spryd_xsk_rx_take(struct spryd_xsk *x, uint32_t pos, struct xdp_desc *xd,
		       uint32_t *idx);
void spryd_xsk_rx_release(struct spryd_xsk *x, uint32_t n);
/*
 * Transmit @len bytes at UMEM address @addr of held frame @idx; false
 * (frame freed, tx_full counted) when the TX ring stays full.
 */
bool spryd_xsk_tx(struct spryd_xsk *x, uint32_t idx, uint64_t addr, uint32_t len);
/* Each loop iteration: wake TX (or reap completions), top the fill ring up. */
void spryd_xsk_run(struct spryd_xsk *x);
/* Top the fill ring up to its target from the reserved buffers. */
void spryd_xsk_refill(struct spryd_xsk *x);

#endif /* SPRYD_XSK_H */
