// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's HTTP front room, its io_uring engine (--front uring;
 * gateway_int.h).  The connections, requests, responses, deadlines and
 * statistics are gateway.c's and gateway_req.c's, the same for both
 * engines; this file replaces only the system calls of a connection:
 *
 *  - one multishot accept on the listener;
 *  - one multishot receive per connection, into provided buffers (a
 *    registered buffer ring, GWU_BUFS of GWU_BUF_SIZE bytes): a
 *    completion names the buffer the bytes are in, and the parser reads
 *    them there (gw_parse_from); the buffer goes back to the ring once
 *    parsed.  While a request is in the chain or its response is being
 *    written, what arrives is held (at most GWU_HELD buffers per
 *    connection: past GWU_PAUSE the receive is cancelled, re-armed once
 *    the connection read what it held), as the epoll engine leaves it in
 *    the socket;
 *  - the rest of a large body (--body-direct) as one MSG_WAITALL receive
 *    straight into its pool buffer, the multishot receive cancelled
 *    first (body_recv); the request's buffer is the ring's until that
 *    receive completes;
 *  - responses as sendmsg of the head and the pool payload, queued while
 *    the loop iteration runs and submitted together in one
 *    io_uring_enter after the core sent the iteration's descriptors
 *    (the front's flush op); a short send is resubmitted from where it
 *    stopped;
 *  - with --desc-send ring, the core's descriptor
 *    batches too (the origins' engine, origin.h): one send operation per
 *    batch, in the same io_uring_enter as the responses.
 *
 * The ring's fd is an endpoint of the loop's epoll set: readable when
 * completions wait, processed as the front's event.  Not with
 * IORING_SETUP_DEFER_TASKRUN: its deferred work does not wake the ring's
 * fd, and with an eventfd in its place a request at concurrency 1 took
 * ~18 ms here (docs/KERNEL.md); a completion that needs this task's work
 * interrupts the loop's epoll_wait instead (EINTR, then the fd is
 * readable).  Single-threaded like
 * the rest of spryd: the loop's thread owns the ring, every connection
 * and every completion.
 *
 * --sqpoll adds a second front thread without sharing any of that: the
 * ring's own kernel thread (IORING_SETUP_SQPOLL) takes the submissions
 * from the shared submission queue and does the connections' receives
 * and sends (their TCP work, most of the front's CPU: bench/results/
 * PROFILE.md) and the task work of their completions; the loop's thread
 * parses, routes and answers, and a submission costs it no system call
 * while the ring's thread is awake.  What it hands over is in the queues'
 * shared memory (liburing's release stores of the tails), so the buffers
 * a submission names are written before the ring's thread can see it.
 *
 * Ownership of a slot: an operation carries (op, slot, generation) as
 * its user_data.  Closing a connection cancels what it has in the ring
 * and closes its fd, but its response head and pool payload stay its own
 * until the final completion of each of its operations (gw_conn->u_ops):
 * only then are they released and the slot reused, so a send the kernel
 * still retries never reads a buffer given to another request.  A
 * completion of an older generation only gives its buffer back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <liburing.h>

#include "spryd/entry.h"
#include "spryd/gateway_int.h"
#include "spryd/origin.h"
#include "spryd/spryd.h"

#define GWU_ENTRIES	1024		/* submission queue */
#define GWU_CQ		8192		/* completion queue */
#define GWU_BUFS	1024		/* provided buffers (power of two) */
#define GWU_BUF_SIZE	8192
#define GWU_BGID	0
#define GWU_PAUSE	4		/* held buffers: stop receiving */
#define GWU_DRAIN_NS	(1000ULL * SPRYD_NS_PER_MS)	/* answers out at shutdown */

enum gwu_op {
	OP_ACCEPT = 1,
	OP_RECV,
	OP_SEND,
	OP_CANCEL,
	OP_BODY,
	OP_DESC,	/* an origin's batch of descriptors (--desc-send ring) */
};

struct gw_uring {
	struct spryd_ep		ep;		/* first: the ring's fd in the loop */
	struct io_uring		ring;
	struct io_uring_buf_ring *br;
	size_t			br_bytes;
	char			*bufs;
	int			lfd;
	bool			accepting;	/* the multishot accept is armed */
	bool			stopped;
	bool			sqpoll;		/* --sqpoll: the ring's thread submits */
	uint32_t		n_out;		/* buffers out of the ring */
	uint32_t		*starved;	/* conns whose receive ran out of buffers */
	uint32_t		n_starved;
	uint32_t		*direct_q;	/* conns that may take a body direct */
	uint32_t		n_direct_q;
	uint32_t		n_desc;		/* origins' sends in the ring */
};

static uint64_t ud_make(enum gwu_op op, uint32_t idx, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint64_t)idx << 8 | (uint64_t)op;
}

static struct io_uring_sqe *sqe_get(struct gw_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		/*
		 * full: what is queued goes now; with --sqpoll the ring's
		 * thread takes it in its own time: wait until it took some
		 */
		io_uring_submit(&u->ring);
		io_uring_sqring_wait(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static uint32_t conn_idx(struct spryd *d, const struct gw_conn *c)
{
	return (uint32_t)(c - d->gw->conns);
}

static void buf_put(struct gw_uring *u, uint16_t bid)
{
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * GWU_BUF_SIZE, GWU_BUF_SIZE, bid,
			      io_uring_buf_ring_mask(GWU_BUFS), 0);
	io_uring_buf_ring_advance(u->br, 1);
	u->n_out--;
}

static void arm_accept(struct gw_uring *u)
{
	struct io_uring_sqe *sqe;

	if (u->accepting || u->stopped || u->lfd < 0)
		return;
	sqe = sqe_get(u);
	if (!sqe)
		return;
	/* blocking sockets: the ring waits for them, nothing else reads them */
	io_uring_prep_multishot_accept(sqe, u->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_make(OP_ACCEPT, 0, 0));
	u->accepting = true;
}

static void arm_multishot(struct spryd *d, struct gw_conn *c)
{
	struct gw_uring *u = d->gw->u;
	struct io_uring_sqe *sqe;

	if (c->u_recv || c->u_body || c->u_paused || c->u_eof || c->ep.fd < 0)
		return;
	sqe = sqe_get(u);
	if (!sqe) {
		gw_conn_close(d, c);
		return;
	}
	io_uring_prep_recv_multishot(sqe, c->ep.fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = GWU_BGID;
	io_uring_sqe_set_data64(sqe, ud_make(OP_RECV, conn_idx(d, c), c->gen));
	c->u_recv = true;
	c->u_ops++;
}

static void cancel(struct gw_uring *u, uint64_t ud)
{
	struct io_uring_sqe *sqe = sqe_get(u);

	if (!sqe)
		return;	/* the ring is gone or broken: its exit ends everything */
	io_uring_prep_cancel64(sqe, ud, 0);
	io_uring_sqe_set_data64(sqe, ud_make(OP_CANCEL, 0, 0));
	/*
	 * With the ring's own thread receiving meanwhile, a cancel waits for
	 * no flush: it goes now (no system call while that thread is awake).
	 */
	if (u->sqpoll)
		io_uring_submit(&u->ring);
}

/*
 * The origins' engine (--desc-send ring; origin.h): a batch of descriptors
 * is one send in the ring, submitted at the front's flush with the
 * iteration's responses, so one io_uring_enter carries both.  The router
 * (SK_MSG) judges it as it judges a send(): in the submitting task, or in
 * the ring's thread with --sqpoll (the sender is the socket, not the task).
 */
static int desc_send(struct spryd *d, unsigned int k, int fd, const void *buf, size_t len)
{
	struct gw_uring *u = d->gw ? d->gw->u : NULL;
	struct io_uring_sqe *sqe;

	if (!u || u->stopped)
		return -ESHUTDOWN;
	sqe = sqe_get(u);
	if (!sqe)
		return -EBUSY;
	/*
	 * MSG_DONTWAIT: a full socket ends the operation with -EAGAIN, as
	 * send() returns it (without it the ring would wait for room, the
	 * socket's O_NONBLOCK notwithstanding, holding requests whose
	 * deadlines pass)
	 */
	io_uring_prep_send(sqe, fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(OP_DESC, k, 0));
	u->n_desc++;
	return 0;
}

/*
 * The rest of a large body (gw_body_direct) is received straight into its
 * pool buffer: one receive of all of it (MSG_WAITALL), no provided buffer
 * and no copy.  The multishot receive ends first (cancelled), and what it
 * still brings is parsed before, so the bytes stay in order.  True when
 * the body goes (or will go) that way.
 */
static bool body_recv(struct spryd *d, struct gw_conn *c)
{
	struct gw_uring *u = d->gw->u;
	struct io_uring_sqe *sqe;
	size_t left;
	char *dst;

	if (c->u_body)
		return true;
	if (c->u_n || c->u_eof || c->ep.fd < 0 || u->stopped)
		return false;
	left = gw_body_direct(d, c, &dst);
	if (!left)
		return false;
	if (c->u_recv) {
		if (!c->u_direct) {
			c->u_direct = true;
			cancel(u, ud_make(OP_RECV, conn_idx(d, c), c->gen));
		}
		return true;
	}
	sqe = sqe_get(u);
	if (!sqe) {
		gw_conn_close(d, c);
		return true;
	}
	io_uring_prep_recv(sqe, c->ep.fd, dst, left, MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, ud_make(OP_BODY, conn_idx(d, c), c->gen));
	c->u_body = true;
	c->u_abort = false;
	c->u_dst = dst;
	c->u_body_r = c->req;
	c->u_body_id = c->req_id;
	c->u_ops++;
	return true;
}

/* The socket's bytes go on: into the pool (a large body) or the multishot receive. */
static void arm_recv(struct spryd *d, struct gw_conn *c)
{
	if (!body_recv(d, c))
		arm_multishot(d, c);
}

/* The request whose buffer a cancelled body receive wrote into: freed. */
static void body_abandon(struct spryd *d, struct gw_conn *c)
{
	struct spryd_req *r = c->u_body_r;

	if (c->u_abort && r && r->req_id == c->u_body_id)
		entry_abort(d, r);	/* a REQ_PREP one only */
	c->u_abort = false;
	c->u_body_r = NULL;
}

bool gwu_body_busy(struct spryd *d, struct gw_conn *c)
{
	if (!c->u_body || c->u_body_r != c->req || c->u_body_id != c->req_id)
		return false;
	if (!c->u_abort) {
		c->u_abort = true;
		cancel(d->gw->u, ud_make(OP_BODY, conn_idx(d, c), c->gen));
	}
	return true;
}

static void drop_held(struct gw_uring *u, struct gw_conn *c)
{
	while (c->u_n) {
		buf_put(u, c->u_q[c->u_head].bid);
		c->u_head = (uint8_t)((c->u_head + 1) % GWU_HELD);
		c->u_n--;
	}
	c->u_head = 0;
}

void gwu_conn_start(struct spryd *d, struct gw_conn *c)
{
	c->u_ops = 0;
	c->u_recv = c->u_send = c->u_eof = false;
	/* u_starved, u_dq stay: the slot may still be in u->starved, u->direct_q */
	c->u_paused = c->u_direct = c->u_body = c->u_abort = false;
	c->u_body_r = NULL;
	c->u_head = c->u_n = 0;
	if (d->gw->log) {
		/* a multishot accept has no per-connection address: the log's */
		socklen_t len = sizeof(c->peer);

		if (getpeername(c->ep.fd, &c->peer.sa, &len))
			memset(&c->peer, 0, sizeof(c->peer));
	}
	arm_recv(d, c);
}

void gwu_conn_close(struct spryd *d, struct gw_conn *c)
{
	struct gw_uring *u = d->gw->u;
	uint32_t idx = conn_idx(d, c);

	if (c->u_recv)
		cancel(u, ud_make(OP_RECV, idx, c->gen));
	if (c->u_send)
		cancel(u, ud_make(OP_SEND, idx, c->gen));
	if (c->u_body)	/* again when dropped: that cancel may have found no SQE */
		cancel(u, ud_make(OP_BODY, idx, c->gen));
	drop_held(u, c);
	/* the ring's operations hold the file: the socket goes with the last */
	if (c->ep.fd >= 0)
		close(c->ep.fd);
	c->ep.fd = -1;
}

void gwu_read(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct gw_uring *u = d->gw->u;
	struct gwu_held *h;
	struct gw_state *st;
	char *dst;

	/*
	 * Stopped (shutdown): nothing more is parsed, as with epoll, whose
	 * loop has ended; the core has freed the buffers being filled.
	 */
	if (u->stopped)
		return;
	while (c->used && c->phase == GW_READ) {
		if (!c->st) {
			if (!c->u_n)
				break;
			c->st = gw_state_get(d);
			if (!c->st) {
				gw_conn_close(d, c);
				return;
			}
		}
		if (!c->u_n)
			break;
		h = &c->u_q[c->u_head];
		if (h->off < h->len)
			gw_parse_from(d, c, u->bufs + (size_t)h->bid * GWU_BUF_SIZE, h->len,
				      &h->off, now);
		/* answering may have closed it or dropped what it held */
		if (c->u_n && h == &c->u_q[c->u_head] && h->off >= h->len) {
			buf_put(u, h->bid);
			c->u_head = (uint8_t)((c->u_head + 1) % GWU_HELD);
			c->u_n--;
		}
	}
	if (!c->used || c->phase != GW_READ)
		return;
	if (!c->u_n) {
		if (c->u_eof) {
			/* EOF (mid-request or idle: nothing to answer) */
			gw_conn_close(d, c);
			return;
		}
		if (c->u_paused) {
			c->u_paused = false;
			arm_recv(d, c);
		} else if (c->u_recv && !c->u_dq && gw_body_direct(d, c, &dst)) {
			/*
			 * A large body still to come: the multishot is cancelled
			 * at the flush if the completions reaped until then did
			 * not bring it (a client that sent it at once did).
			 */
			c->u_dq = true;
			u->direct_q[u->n_direct_q++] = conn_idx(d, c);
		}
	}
	st = c->st;
	if (st && !spry_http_in_request(&st->hc) && !c->u_n) {
		/* between requests: the state goes back to the cache */
		gw_state_put(d, st);
		c->st = NULL;
		if (c->dl_kind != DL_IDLE)
			gw_set_deadline(d, c, DL_IDLE, now);
	}
}

void gwu_send(struct spryd *d, struct gw_conn *c)
{
	struct gw_uring *u = d->gw->u;
	struct io_uring_sqe *sqe;

	if (c->ep.fd < 0) {
		gw_conn_close(d, c);
		return;
	}
	sqe = sqe_get(u);
	if (!sqe) {
		gw_conn_close(d, c);
		return;
	}
	memset(&c->u_msg, 0, sizeof(c->u_msg));
	c->u_msg.msg_iov = c->iov;
	c->u_msg.msg_iovlen = (size_t)c->iovcnt;
	io_uring_prep_sendmsg(sqe, c->ep.fd, &c->u_msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(OP_SEND, conn_idx(d, c), c->gen));
	c->u_send = true;
	c->u_ops++;
}

void gwu_linger(struct spryd *d, struct gw_conn *c, uint64_t now)
{
	struct gw_uring *u = d->gw->u;
	uint32_t held = 0;
	uint8_t i;

	for (i = 0; i < c->u_n; i++) {
		const struct gwu_held *h = &c->u_q[(c->u_head + i) % GWU_HELD];

		held += h->len - h->off;
	}
	drop_held(u, c);
	if (c->u_eof || shutdown(c->ep.fd, SHUT_WR)) {
		gw_conn_close(d, c);
		return;
	}
	c->phase = GW_LINGER;
	c->drained = held;
	gw_set_deadline(d, c, DL_LINGER, now);
	c->u_paused = false;
	arm_recv(d, c);
}

/* ------------------------------------------------------- completions */

/* The last operation of a closed slot ended: its buffers and the slot go. */
static void op_done(struct spryd *d, struct gw_conn *c)
{
	c->u_ops--;
	if (!c->used && !c->u_ops)
		gw_conn_release(d, c);
}

static void on_accept(struct spryd *d, int res, bool more)
{
	struct gw_uring *u = d->gw->u;
	union gw_addr a;

	if (!more)
		u->accepting = false;
	if (res >= 0 && u->stopped) {
		close(res);	/* accepted before the cancel reached it */
	} else if (res >= 0) {
		memset(&a, 0, sizeof(a));
		gw_conn_open(d, res, &a);
	} else if (res == -EMFILE || res == -ENFILE) {
		/* out of fds: the pending connection is dropped on the spare fd */
		socklen_t len = sizeof(a);
		int fd = spryd_accept(d, u->lfd, &a.sa, &len);

		if (fd >= 0)
			close(fd);
	} else if (res != -ECANCELED && res != -EINTR && res != -ECONNABORTED &&
		   res != -EAGAIN) {
		spryd_log("http accept: %s", strerror(-res));
	}
	if (!more)
		arm_accept(u);
}

static void on_recv(struct spryd *d, struct gw_conn *c, uint32_t gen,
		    const struct io_uring_cqe *cqe)
{
	struct gw_uring *u = d->gw->u;
	bool more = cqe->flags & IORING_CQE_F_MORE;
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	int res = cqe->res;
	struct gwu_held *h;
	uint64_t now;

	if (has_buf)
		u->n_out++;
	if (!more) {
		if (c->gen == gen)
			c->u_recv = c->u_direct = false;
		op_done(d, c);
	}
	if (!c->used || c->gen != gen) {
		if (has_buf)
			buf_put(u, bid);
		return;
	}
	now = spryd_now_ns();
	if (res > 0 && has_buf) {
		if (c->phase == GW_LINGER) {
			buf_put(u, bid);
			c->drained += (uint32_t)res;
			if (c->drained > GW_LINGER_BYTES)
				gw_conn_close(d, c);
			else if (!more)
				arm_recv(d, c);
			return;
		}
		if (c->u_n == GWU_HELD) {
			/* the pause did not stop it: a client flooding a busy connection */
			buf_put(u, bid);
			spryd_vlog(d, "http: connection %u sent too much while busy: closed",
				   conn_idx(d, c));
			gw_conn_close(d, c);
			return;
		}
		h = &c->u_q[(c->u_head + c->u_n) % GWU_HELD];
		h->bid = bid;
		h->len = (uint16_t)res;
		h->off = 0;
		c->u_n++;
		if (c->u_n >= GWU_PAUSE && c->u_recv && !c->u_paused) {
			c->u_paused = true;
			cancel(u, ud_make(OP_RECV, conn_idx(d, c), c->gen));
		}
		if (c->phase == GW_READ)
			gwu_read(d, c, now);
		if (c->used && c->gen == gen && !more)
			arm_recv(d, c);
		return;
	}
	if (has_buf)
		buf_put(u, bid);
	if (res == 0) {
		c->u_eof = true;
		if (c->phase == GW_READ)
			gwu_read(d, c, now);
		else if (c->phase == GW_LINGER)
			gw_conn_close(d, c);
		return;
	}
	if (res == -ENOBUFS) {
		/* every buffer is held: again once one comes back (gwu_flush) */
		if (!more && !c->u_starved) {
			c->u_starved = true;
			u->starved[u->n_starved++] = conn_idx(d, c);
		}
		return;
	}
	if (res == -ECANCELED) {
		/* paused, or closing; re-armed by gwu_read once it read on */
		if (!c->u_paused && !more)
			arm_recv(d, c);
		return;
	}
	/* a reset or another error: nobody to answer */
	gw_conn_close(d, c);
}

static void on_send(struct spryd *d, struct gw_conn *c, uint32_t gen, int res)
{
	uint64_t now;
	size_t n;

	if (c->gen == gen)
		c->u_send = false;
	op_done(d, c);
	if (!c->used || c->gen != gen)
		return;
	if (res < 0) {
		gw_conn_close(d, c);
		return;
	}
	now = spryd_now_ns();
	c->resp_bytes += (uint64_t)res;
	gw_set_deadline(d, c, DL_WRITE, now);
	n = (size_t)res;
	while (n && c->iovcnt) {
		if (n >= c->iov[0].iov_len) {
			n -= c->iov[0].iov_len;
			c->iov[0] = c->iov[1];
			c->iovcnt--;
		} else {
			c->iov[0].iov_base = (char *)c->iov[0].iov_base + n;
			c->iov[0].iov_len -= n;
			n = 0;
		}
	}
	if (c->iovcnt) {
		if (!res) {
			gw_conn_close(d, c);
			return;
		}
		gwu_send(d, c);
		return;
	}
	gw_finish_response(d, c, now);
	/* what the client pipelined meanwhile */
	if (c->used && c->phase == GW_READ)
		gwu_read(d, c, now);
}

/* A receive into the pool (body_recv) ended. */
static void on_body(struct spryd *d, struct gw_conn *c, uint32_t gen, int res)
{
	bool live = c->used && c->gen == gen, dropped = c->u_abort;
	uint64_t now;

	/* one in flight per slot, and a closed slot waits for it: ours */
	c->u_body = false;
	body_abandon(d, c);
	op_done(d, c);
	if (!live)
		return;
	now = spryd_now_ns();
	if (dropped || c->phase != GW_READ) {
		/* answered meanwhile (408): what came is drained */
		if (res > 0 && c->phase == GW_LINGER) {
			c->drained += (uint32_t)res;
			if (c->drained > GW_LINGER_BYTES) {
				gw_conn_close(d, c);
				return;
			}
		}
		if (res == 0)
			c->u_eof = true;
		if (c->u_eof && c->phase == GW_LINGER)
			gw_conn_close(d, c);
		else
			arm_recv(d, c);
		return;
	}
	if (res > 0) {
		gw_feed_direct(d, c, c->u_dst, (uint32_t)res, now);
		/* the rest of the body, or the next request */
		if (c->used && c->gen == gen)
			arm_recv(d, c);
		return;
	}
	/* EOF mid-body (nothing to answer), a reset or another error */
	gw_conn_close(d, c);
}

static void complete(struct spryd *d, const struct io_uring_cqe *cqe)
{
	struct spryd_gw *gw = d->gw;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	uint32_t idx = (uint32_t)(ud >> 8) & 0xffffff, gen = (uint32_t)(ud >> 32);

	switch ((enum gwu_op)(ud & 0xff)) {
	case OP_ACCEPT:
		on_accept(d, cqe->res, cqe->flags & IORING_CQE_F_MORE);
		break;
	case OP_RECV:
		if (idx < d->http.max_conns)
			on_recv(d, &gw->conns[idx], gen, cqe);
		break;
	case OP_SEND:
		if (idx < d->http.max_conns)
			on_send(d, &gw->conns[idx], gen, cqe->res);
		break;
	case OP_BODY:
		if (idx < d->http.max_conns)
			on_body(d, &gw->conns[idx], gen, cqe->res);
		break;
	case OP_DESC:
		d->gw->u->n_desc--;
		origin_sent(d, idx, cqe->res);
		break;
	default:
		break;	/* OP_CANCEL: the cancelled operation completes itself */
	}
}

static void reap(struct spryd *d)
{
	struct gw_uring *u = d->gw->u;
	struct io_uring_cqe *cqe;
	unsigned int head, n;

	do {
		n = 0;
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			complete(d, cqe);
			n++;
		}
		io_uring_cq_advance(&u->ring, n);
	} while (n);
}

static void submit(struct gw_uring *u)
{
	int err;

	if (!io_uring_sq_ready(&u->ring))
		return;
	err = io_uring_submit(&u->ring);
	if (err < 0 && err != -EINTR && err != -EAGAIN && err != -EBUSY)
		spryd_log("http: io_uring submit: %s", strerror(-err));
}

/* The ring's fd is readable: completions wait. */
void gwu_event(struct spryd *d)
{
	reap(d);
}

/*
 * Before the core sends the iteration's descriptors: the responses queued
 * so far go out, and those the kernel sent at once complete now, so what
 * a client pipelined behind them is parsed and its request leaves with
 * this iteration's batch instead of the next one.  (With --sqpoll the
 * ring's thread sends them in its own time: the reap takes what it
 * finished so far, the rest wakes the loop as completions.)
 */
void gwu_run(struct spryd *d)
{
	struct gw_uring *u = d->gw->u;

	/* --desc-send ring: they leave with the descriptors, at the flush */
	if (d->http.desc_ring || !io_uring_sq_ready(&u->ring))
		return;
	submit(u);
	reap(d);
}

void gwu_flush(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_uring *u = gw->u;
	struct gw_conn *c;
	uint32_t i, n;

	for (i = 0; i < u->n_direct_q; i++) {
		c = &gw->conns[u->direct_q[i]];
		c->u_dq = false;
		if (c->used)
			body_recv(d, c);
	}
	u->n_direct_q = 0;
	if (u->n_starved && u->n_out < GWU_BUFS) {
		n = u->n_starved;
		u->n_starved = 0;
		for (i = 0; i < n; i++) {
			c = &gw->conns[u->starved[i]];
			c->u_starved = false;
			if (c->used)
				arm_recv(d, c);
		}
	}
	submit(u);
}

/* A connection that is @busy, closed slots included; false: none. */
static bool any_conn(struct spryd *d, bool (*busy)(const struct gw_conn *c))
{
	struct spryd_gw *gw = d->gw;
	uint32_t i;

	for (i = 0; i < gw->hiwater; i++)
		if (busy(&gw->conns[i]))
			return true;
	return false;
}

static bool sending(const struct gw_conn *c)
{
	return c->used && c->u_send;
}

static bool receiving_body(const struct gw_conn *c)
{
	return c->u_body;	/* closed slots too: their buffer is the ring's */
}

static bool has_ops(const struct gw_conn *c)
{
	return c->u_ops;
}

/* wait_until() tests: no connection with a send in the ring, ... */
static bool sends_done(struct spryd *d)
{
	return !any_conn(d, sending);
}

/* ... none with a receive into a pool buffer in the ring, ... */
static bool bodies_done(struct spryd *d)
{
	return !any_conn(d, receiving_body);
}

/* ... no operation of any connection nor origin's send in the ring, ... */
static bool ops_done(struct spryd *d)
{
	return !d->gw->u->n_desc && !any_conn(d, has_ops);
}

/* ... the multishot accept ended */
static bool accept_done(struct spryd *d)
{
	return !d->gw->u->accepting;
}

/* Submit and reap until @done, at most GWU_DRAIN_NS. */
static void wait_until(struct spryd *d, bool (*done)(struct spryd *d))
{
	uint64_t end = spryd_now_ns() + GWU_DRAIN_NS;
	struct __kernel_timespec ts = { .tv_nsec = 50 * 1000000 };
	struct io_uring_cqe *cqe;
	int err;

	while (!done(d) && spryd_now_ns() < end) {
		err = io_uring_submit_and_wait_timeout(&d->gw->u->ring, &cqe, 1, &ts, NULL);
		reap(d);
		if (err < 0 && err != -ETIME && err != -EINTR && err != -EAGAIN &&
		    err != -EBUSY)
			return;	/* a broken ring: its exit ends everything */
	}
}

/*
 * At shutdown, before the connections close: the answers the core just
 * gave (503 to what was in flight) are sends in the ring; wait for them
 * (the epoll engine wrote them at once).
 */
void gwu_drain(struct spryd *d)
{
	wait_until(d, sends_done);
}

/*
 * At shutdown, before the core frees the requests being filled: the
 * connections receiving a body into the pool close (their receives
 * cancelled) and the receives are waited for, so each buffer is freed by
 * its own completion (body_abandon), never while the kernel may still
 * write into it.
 */
static void body_stop(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	uint32_t i;

	/* mid-body: nothing to answer (as when the core drops what it fills) */
	for (i = 0; i < gw->hiwater; i++)
		if (gw->conns[i].used && gw->conns[i].u_body)
			gw_conn_close(d, &gw->conns[i]);
	wait_until(d, bodies_done);
}

void gwu_stop(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_uring *u = gw->u;

	if (u->stopped)
		return;
	u->stopped = true;
	if (u->accepting)
		cancel(u, ud_make(OP_ACCEPT, 0, 0));
	body_stop(d);
	/* the accept holds the listener: it closes once the accept ended */
	wait_until(d, accept_done);
	if (u->lfd >= 0)
		close(u->lfd);
	u->lfd = -1;
	gw->lep.fd = -1;
}

int gwu_init(struct spryd *d, int lfd, const struct spryd_ep_ops *ops)
{
	struct spryd_gw *gw = d->gw;
	struct io_uring_params p = {};
	struct io_uring_buf_reg reg = {};
	struct gw_uring *u;
	uint32_t i;
	int err;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->ep.fd = -1;
	u->lfd = lfd;
	u->starved = calloc(d->http.max_conns, sizeof(*u->starved));
	u->direct_q = calloc(d->http.max_conns, sizeof(*u->direct_q));
	if (!u->starved || !u->direct_q) {
		err = -ENOMEM;
		goto err_free;
	}
	/* one thread submits; a submission error does not drop the rest */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER;
	p.cq_entries = GWU_CQ;
	if (d->http.sqpoll) {
		/* the one submitter is the ring's thread; it also runs the task work */
		p.flags |= IORING_SETUP_SQPOLL;
		p.sq_thread_idle = SPRYD_SQPOLL_IDLE_MS;
		if (d->http.sqpoll_cpu >= 0) {
			p.flags |= IORING_SETUP_SQ_AFF;
			p.sq_thread_cpu = (uint32_t)d->http.sqpoll_cpu;
		}
	}
	err = io_uring_queue_init_params(GWU_ENTRIES, &u->ring, &p);
	if (err) {
		if (err == -EINVAL && d->http.sqpoll && d->http.sqpoll_cpu >= 0)
			spryd_log("http: --sqpoll %d: not an online CPU of spryd's cpuset",
				  d->http.sqpoll_cpu);
		goto err_free;
	}
	if (!(p.features & IORING_FEAT_NODROP)) {
		err = -EOPNOTSUPP;	/* a full CQ must not lose a completion */
		goto err_ring;
	}
	u->br_bytes = GWU_BUFS * sizeof(struct io_uring_buf);
	u->br = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	if (u->br == MAP_FAILED) {
		err = -errno;
		u->br = NULL;
		goto err_ring;
	}
	u->bufs = mmap(NULL, (size_t)GWU_BUFS * GWU_BUF_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->bufs == MAP_FAILED) {
		err = -errno;
		u->bufs = NULL;
		goto err_br;
	}
	/* liburing 2.3 has no io_uring_setup_buf_ring(): the ring is ours, registered */
	reg.ring_addr = (uint64_t)(uintptr_t)u->br;
	reg.ring_entries = GWU_BUFS;
	reg.bgid = GWU_BGID;
	err = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (err)
		goto err_bufs;
	io_uring_buf_ring_init(u->br);
	for (i = 0; i < GWU_BUFS; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * GWU_BUF_SIZE, GWU_BUF_SIZE,
				      (uint16_t)i, io_uring_buf_ring_mask(GWU_BUFS), (int)i);
	io_uring_buf_ring_advance(u->br, GWU_BUFS);
	u->ep.ops = ops;
	u->ep.fd = u->ring.ring_fd;
	err = spryd_ep_add(d, &u->ep, EPOLLIN);
	if (err)
		goto err_bufs;
	u->sqpoll = d->http.sqpoll;
	gw->u = u;
	arm_accept(u);
	err = io_uring_submit(&u->ring);
	if (err < 0) {
		gw->u = NULL;
		spryd_ep_del(d, &u->ep);
		goto err_bufs;
	}
	if (d->http.desc_ring)
		origin_set_engine(d, desc_send);
	return 0;

err_bufs:
	munmap(u->bufs, (size_t)GWU_BUFS * GWU_BUF_SIZE);
err_br:
	munmap(u->br, u->br_bytes);
err_ring:
	io_uring_queue_exit(&u->ring);
err_free:
	free(u->starved);
	free(u->direct_q);
	free(u);
	return err;
}

/*
 * The connections are closed, their cancels queued: each operation's final
 * completion is waited for (bounded), so no send or receive of the ring
 * still uses a slot's buffers when the slots are released; the ring's
 * exit (asynchronous in the kernel) ends whatever is left.
 */
void gwu_fini(struct spryd *d)
{
	struct spryd_gw *gw = d->gw;
	struct gw_uring *u = gw->u;
	uint32_t i;

	if (!u)
		return;
	gwu_stop(d);
	wait_until(d, ops_done);
	if (d->http.desc_ring)
		origin_set_engine(d, NULL);
	spryd_ep_del(d, &u->ep);
	io_uring_queue_exit(&u->ring);
	/* the receives into the pool ended with the ring: their requests go */
	for (i = 0; i < gw->hiwater; i++)
		if (gw->conns[i].u_body) {
			gw->conns[i].u_body = false;
			body_abandon(d, &gw->conns[i]);
		}
	munmap(u->bufs, (size_t)GWU_BUFS * GWU_BUF_SIZE);
	munmap(u->br, u->br_bytes);
	free(u->starved);
	free(u->direct_q);
	free(u);
	gw->u = NULL;
}
