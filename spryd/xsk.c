// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's AF_XDP room (spryd/xsk.h): a UMEM registered over a reserved run
 * of a chain's pool and the AF_XDP sockets on it, through libxdp's xsk API
 * (xsk_umem__create, xsk_socket__create_shared with
 * XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD: libxdp loads no program, spry's
 * XDP program redirects into its XSKMAP and the datagram front inserts
 * the socket there).  Ring access is libxdp's xsk_ring_* helpers.
 *
 * Frames are pool buffers of the run, chunk = buffer size, so a received
 * frame can become a request's buffer without a copy.  spryd tracks each
 * frame it holds (on a fill ring, or on a TX ring until its completion);
 * the rest are free in the pool or a request's.  Only spryd allocates
 * reserved buffers, so the kernel is only ever handed frames of the run.
 *
 * Zero-copy is tried by a UMEM's first socket; when the device refuses it
 * the UMEM is registered again (libxdp cannot bind that socket twice) and
 * the socket bound in copy mode.  The UMEM's other sockets (other queues)
 * share it (XDP_SHARED_UMEM), each with its own fill and completion ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_xdp.h>

#include "spry/spry.h"
#include "spryd/xsk.h"

#define XSK_KICK_TRIES		256u	/* sendto() wakeups per kick */
#define XSK_BATCH		64u	/* frames per fill-ring reservation */

static int umem_register(struct spryd_umem *um)
{
	struct xsk_umem_config cfg = {
		.fill_size = um->ring,
		.comp_size = um->ring,
		.frame_size = um->chunk,
		.frame_headroom = 0,
		.flags = 0,
	};

	return xsk_umem__create(&um->umem, um->base, (uint64_t)um->n_frames * um->chunk,
				&um->fill0, &um->comp0, &cfg);
}

int spryd_umem_open(struct spryd_umem *um, struct spry_pool *pool, uint64_t off,
		    uint32_t chunk, uint32_t n_frames, uint32_t ring, uint64_t tag)
{
	int err;

	memset(um, 0, sizeof(*um));
	um->pool = pool;
	um->pool_off = off;
	um->chunk = chunk;
	um->n_frames = n_frames;
	um->ring = ring;
	um->tag = tag;
	um->base = spry_pool_ptr(pool, off, 0);
	if (!um->base || ((uintptr_t)um->base & 4095))
		return -EINVAL;
	um->fr = calloc(n_frames, sizeof(*um->fr));
	if (!um->fr)
		return -ENOMEM;
	err = umem_register(um);
	if (err) {
		free(um->fr);
		um->fr = NULL;
		um->umem = NULL;
	}
	return err;
}

void spryd_umem_close(struct spryd_umem *um)
{
	if (um->umem)
		xsk_umem__delete(um->umem);
	um->umem = NULL;
	free(um->fr);
	um->fr = NULL;
}

/* ------------------------------------------------------------ frames */

bool spryd_xsk_frame_at(const struct spryd_umem *um, uint64_t off, uint32_t *idx)
{
	uint64_t rel = off - um->pool_off;

	if (off < um->pool_off || rel % um->chunk || rel / um->chunk >= um->n_frames)
		return false;
	*idx = (uint32_t)(rel / um->chunk);
	return true;
}

int spryd_xsk_frame_alloc(struct spryd_umem *um, uint32_t *idx)
{
	struct spry_buf b;

	if (spry_pool_alloc_reserved(um->pool, um->tag, &b))
		return -ENOBUFS;
	if (!spryd_xsk_frame_at(um, b.off, idx)) {
		/* cannot happen: the reserved run is the UMEM */
		spry_pool_free(um->pool, b.off, b.gen);
		return -ENOBUFS;
	}
	um->fr[*idx].gen = b.gen;
	return 0;
}

static void frame_free(struct spryd_umem *um, uint32_t idx)
{
	um->fr[idx].state = XSK_FR_OUT;
	spry_pool_free(um->pool, spryd_xsk_frame_off(um, idx), um->fr[idx].gen);
}

/*
 * Frames @idx[0..n) onto @x's fill ring in one reservation and one
 * submit (the caller keeps n_fill under the ring size); a frame the ring
 * has no room for is freed.
 */
static void fill_put(struct spryd_xsk *x, const uint32_t *idx, uint32_t n)
{
	struct spryd_umem *um = x->um;
	uint32_t pos, got, i;

	got = n ? xsk_ring_prod__reserve(&x->fill, n, &pos) : 0;
	for (i = 0; i < got; i++) {
		*xsk_ring_prod__fill_addr(&x->fill, pos + i) = (uint64_t)idx[i] * um->chunk;
		um->fr[idx[i]].state = XSK_FR_FILL;
		um->fr[idx[i]].sock = x->idx;
	}
	if (got)
		xsk_ring_prod__submit(&x->fill, got);
	x->n_fill += got;
	for (i = got; i < n; i++)
		frame_free(um, idx[i]);
}

void spryd_xsk_refill(struct spryd_xsk *x)
{
	uint32_t idx[XSK_BATCH], n;

	while (x->n_fill < x->fill_target) {
		for (n = 0; n < XSK_BATCH && x->n_fill + n < x->fill_target; n++)
			if (spryd_xsk_frame_alloc(x->um, &idx[n]))
				break;
		fill_put(x, idx, n);
		if (n < XSK_BATCH)
			break;	/* reached the target, or out of reserved buffers */
	}
}

void spryd_xsk_frame_release(struct spryd_xsk *x, uint32_t idx)
{
	if (x->n_fill < x->fill_target)
		fill_put(x, &idx, 1);
	else
		frame_free(x->um, idx);
}

/*
 * Frames the kernel finished transmitting: back on the fill ring (one
 * reservation per batch) up to its target, the rest freed.
 */
static void comp_reap(struct spryd_xsk *x)
{
	struct spryd_umem *um = x->um;
	uint32_t n, i, pos, idx, back[XSK_BATCH], n_back = 0;
	uint64_t addr;

	n = xsk_ring_cons__peek(&x->comp, um->ring, &pos);
	for (i = 0; i < n; i++) {
		addr = *xsk_ring_cons__comp_addr(&x->comp, pos + i);
		idx = (uint32_t)(addr / um->chunk);
		if (idx >= um->n_frames || um->fr[idx].state != XSK_FR_TX) {
			x->bad_frame++;
			continue;
		}
		if (x->n_tx)
			x->n_tx--;
		um->fr[idx].state = XSK_FR_OUT;
		if (x->n_fill + n_back >= x->fill_target) {
			frame_free(um, idx);
			continue;
		}
		back[n_back++] = idx;
		if (n_back == XSK_BATCH) {
			fill_put(x, back, n_back);
			n_back = 0;
		}
	}
	if (n_back)
		fill_put(x, back, n_back);
	if (n)
		xsk_ring_cons__release(&x->comp, n);
}

/* TX needs a wakeup (copy mode, and zero-copy without need_wakeup). */
static void kick(struct spryd_xsk *x)
{
	uint32_t tries;
	int fd = spryd_xsk_fd(x);

	for (tries = 0; tries < XSK_KICK_TRIES && x->kick; tries++) {
		if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
		    errno != EAGAIN && errno != EBUSY && errno != ENOBUFS &&
		    errno != EINTR) {
			x->tx_err++;
			x->kick = false;
		}
		comp_reap(x);
		if (xsk_prod_nb_free(&x->tx, x->um->ring) >= x->um->ring)
			x->kick = false;	/* the kernel took everything */
	}
}

void spryd_xsk_run(struct spryd_xsk *x)
{
	if (!x->xsk)
		return;
	if (x->kick)
		kick(x);
	else
		comp_reap(x);
	spryd_xsk_refill(x);
}

/* -------------------------------------------------------------- RX/TX */

uint32_t spryd_xsk_rx_peek(struct spryd_xsk *x, uint32_t max, uint32_t *pos)
{
	return xsk_ring_cons__peek(&x->rx, max, pos);
}

bool spryd_xsk_rx_take(struct spryd_xsk *x, uint32_t pos, struct xdp_desc *xd,
		       uint32_t *idx)
{
	struct spryd_umem *um = x->um;
	struct spryd_xsk_frame *f;
	uint64_t i;

	*xd = *xsk_ring_cons__rx_desc(&x->rx, pos);
	i = xd->addr / um->chunk;
	if (i >= um->n_frames)
		goto bad;
	f = &um->fr[i];
	if (f->state != XSK_FR_FILL || f->sock != x->idx)
		goto bad;		/* not a frame we handed out: leave it */
	x->n_fill--;
	f->state = XSK_FR_OUT;
	*idx = (uint32_t)i;
	return true;
bad:
	x->bad_frame++;
	return false;
}

void spryd_xsk_rx_release(struct spryd_xsk *x, uint32_t n)
{
	if (n)
		xsk_ring_cons__release(&x->rx, n);
}

bool spryd_xsk_tx(struct spryd_xsk *x, uint32_t idx, uint64_t addr, uint32_t len)
{
	struct spryd_umem *um = x->um;
	struct xdp_desc *xd;
	uint32_t pos;

	if (xsk_ring_prod__reserve(&x->tx, 1, &pos) != 1) {
		x->kick = true;
		kick(x);
		if (xsk_ring_prod__reserve(&x->tx, 1, &pos) != 1) {
			x->tx_full++;
			frame_free(um, idx);
			return false;
		}
	}
	xd = xsk_ring_prod__tx_desc(&x->tx, pos);
	xd->addr = addr;
	xd->len = len;
	xd->options = 0;
	xsk_ring_prod__submit(&x->tx, 1);
	um->fr[idx].state = XSK_FR_TX;
	um->fr[idx].sock = x->idx;
	x->n_tx++;
	x->kick = true;
	return true;
}

/* ------------------------------------------------------------ sockets */

static int sock_create(struct spryd_xsk *x, struct spryd_umem *um, const char *ifname,
		       uint32_t queue, uint16_t bind_flags)
{
	struct xsk_socket_config cfg = {
		.rx_size = um->ring,
		.tx_size = um->ring,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = 0,
		.bind_flags = bind_flags,
	};

	return xsk_socket__create_shared(&x->xsk, ifname, queue, um->umem, &x->rx, &x->tx,
					 &x->fill, &x->comp, &cfg);
}

int spryd_xsk_open(struct spryd_xsk *x, struct spryd_umem *um, const char *ifname,
		   uint32_t queue, uint8_t idx, uint32_t fill_target, const char **why)
{
	int err;

	memset(x, 0, sizeof(*x));
	x->um = um;
	x->idx = idx;
	x->fill_target = fill_target < um->ring ? fill_target : um->ring;
	if (um->n_socks) {
		/* libxdp binds it with XDP_SHARED_UMEM to the UMEM's socket */
		err = sock_create(x, um, ifname, queue, 0);
	} else {
		err = sock_create(x, um, ifname, queue, XDP_ZEROCOPY);
		um->zerocopy = !err;
		if (err) {
			xsk_umem__delete(um->umem);
			um->umem = NULL;
			err = umem_register(um);
			if (err) {
				*why = "UMEM registration (more than 8 MiB needs CAP_IPC_LOCK)";
				return err;
			}
			err = sock_create(x, um, ifname, queue, XDP_COPY);
		}
	}
	if (err) {
		x->xsk = NULL;
		*why = "socket, rings or bind";
		return err;
	}
	um->n_socks++;
	spryd_xsk_refill(x);
	return 0;
}

void spryd_xsk_close(struct spryd_xsk *x)
{
	if (!x->xsk)
		return;
	if (x->kick)
		kick(x);
	xsk_socket__delete(x->xsk);
	x->xsk = NULL;
	x->um->n_socks--;
}
