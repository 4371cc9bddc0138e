// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_router: the SK_MSG router (bpf/skmsg_route.c) against real loopback
 * TCP sockets in a private network namespace, with the maps in a private
 * pin directory.  Every case checks where the descriptor arrives (or that it
 * does not) and the exact change of the verdict counters.
 *
 * Topology: "origin" and "instance" sockets are the registered ends A of
 * connected TCP pairs (A, B); B stands for spryd's end and is where a
 * FALLBACK descriptor shows up.
 *
 * Runs (one verdict for consecutive descriptors going the same way) are
 * counted with the program's run_cnt (BPF stats enabled while the test
 * runs): a send's runs are exact when its bytes are one scatterlist
 * element, which send_fresh() arranges.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "spry/abi.h"
#include "skmsg_route.skel.h"
#include "selftests/tap.h"
#include "selftests/bpf_env.h"

#define DSZ		((int)sizeof(struct spry_desc))
#define POOL_SIZE	(1ULL << 20)
#define WAIT_MS		1000

/* Chains and functions of the test. */
#define C1	1	/* F1 -> F2 -> F3, F1 may call G */
#define C2	2	/* F4 */
#define C3	3	/* F5 -> F6 -> F5, F5 may call H */
#define F1	10
#define F2	11
#define F3	12
#define G	13
#define F4	20
#define F5	30
#define F6	31
#define H	32
#define C4	4	/* an app: P's instances are its processes */
#define C5	5	/* another app: Q */
#define P	40
#define Q	50
#define C6	6	/* an app whose processes mail each other: R */
#define R	60

struct inst {
	int	a;		/* registered end: the function's (or origin's) */
	int	b;		/* its TCP peer: spryd's end */
	__u16	chain;
	__u16	fn;
	__u16	inst;
	__u8	role;
	bool	storage;	/* sender storage written */
};

static struct skmsg_route *skel;
static int m_socks, m_senders, m_chains, m_fns, m_auth, m_inst;
static int m_verdicts, m_stats, m_reqloc, m_procs, m_fanrec;
static struct ring_buffer *rb;
static int prog_fd = -1, stats_fd = -1;
static int listen_fd = -1;
static struct sockaddr_in laddr;
static int ncpus;
static void *percpu_buf;
static char pin_dir[64];

static struct spry_event last_ev;
static int n_events;
static int n_drops;		/* drops the test caused: one event each */

static const char *const vnames[SPRY_V_MAX] = {
	"FORWARD", "CALL", "REPLY", "DONE", "ERROR", "NO_INSTANCE",
	"NO_CHAIN", "NO_CALLER", "NO_PROCESS", "FALLBACK", "NEXT", "NEXT_REFUSED",
	"FAN_REFUSED", "MAIL", "MAIL_ANSWER", "MAIL_FULL", "MAIL_BOUNCE", "MAIL_ORPHAN",
	"DROP_SHORT", "DROP_VERSION",
	"DROP_SENDER", "DROP_CHAIN", "DROP_HOP", "DROP_AUTH", "DROP_BOUNDS",
	"DROP_FLOOD",
};

static const char *vname(__u32 v)
{
	return v < SPRY_V_MAX ? vnames[v] : "?";
}

/* ------------------------------------------------------------ maps */

static int verdicts_read(__u64 out[SPRY_V_MAX])
{
	__u64 *vals = percpu_buf;
	__u32 v;
	int cpu;

	for (v = 0; v < SPRY_V_MAX; v++) {
		if (bpf_map_lookup_elem(m_verdicts, &v, vals))
			return -errno;
		out[v] = 0;
		for (cpu = 0; cpu < ncpus; cpu++)
			out[v] += vals[cpu];
	}
	return 0;
}

/* The verdict counters moved by exactly @want since @before. */
static bool verdicts_expect(const __u64 before[SPRY_V_MAX],
			    const __u64 want[SPRY_V_MAX])
{
	__u64 now[SPRY_V_MAX];
	bool ok = true;
	__u32 i;

	if (verdicts_read(now)) {
		tap_diag("reading verdicts: %s", strerror(errno));
		return false;
	}
	for (i = 0; i < SPRY_V_MAX; i++) {
		if (now[i] - before[i] != want[i]) {
			tap_diag("verdict %s moved by %llu, expected %llu", vname(i),
				 (unsigned long long)(now[i] - before[i]),
				 (unsigned long long)want[i]);
			ok = false;
		}
	}
	return ok;
}

/* Moved by @n on @v and @n2 on @v2 (SPRY_V_MAX: none), nowhere else. */
static bool verdicts_moved2(const __u64 before[SPRY_V_MAX], __u32 v, __u64 n,
			    __u32 v2, __u64 n2)
{
	__u64 want[SPRY_V_MAX] = {};

	if (v < SPRY_V_MAX)
		want[v] += n;
	if (v2 < SPRY_V_MAX)
		want[v2] += n2;
	return verdicts_expect(before, want);
}

static bool verdicts_moved(const __u64 before[SPRY_V_MAX], __u32 v, __u64 n)
{
	return verdicts_moved2(before, v, n, SPRY_V_MAX, 0);
}

static int fn_stats_read(__u16 fn, struct spry_fn_stats *out)
{
	struct spry_fn_stats *vals = percpu_buf;
	__u32 key = fn;
	int cpu;

	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(m_stats, &key, vals))
		return -errno;
	for (cpu = 0; cpu < ncpus; cpu++) {
		out->delivered += vals[cpu].delivered;
		out->sent += vals[cpu].sent;
		out->errors += vals[cpu].errors;
		out->dropped += vals[cpu].dropped;
	}
	return 0;
}

static int inst_get(__u16 fn, __u16 inst, struct spry_inst_state *st)
{
	__u32 key = (__u32)fn * SPRY_MAX_INST + inst;

	return bpf_map_lookup_elem(m_inst, &key, st) ? -errno : 0;
}

static __s32 inflight(const struct inst *x)
{
	struct spry_inst_state st;

	if (inst_get(x->fn, x->inst, &st))
		return INT32_MIN;
	return st.inflight;
}

/* As if @x had been given @n descriptors (the flood bound counts them). */
static int inflight_set(const struct inst *x, __s32 n)
{
	__u32 key = (__u32)x->fn * SPRY_MAX_INST + x->inst;
	struct spry_inst_state st;

	if (inst_get(x->fn, x->inst, &st))
		return -errno;
	st.inflight = n;
	return bpf_map_update_elem(m_inst, &key, &st, BPF_ANY) ? -errno : 0;
}

static int chain_put(__u16 id, const __u16 *hops, int n_hops, bool active)
{
	struct spry_chain c = {
		.flags = active ? SPRY_CF_ACTIVE : 0,
		.pool_size = POOL_SIZE,
		.buf_size = 4096,
		.n_bufs = POOL_SIZE / 4096,
		.max_inflight = 256,
		.deadline_ms = 5000,
		.n_hops = n_hops,
	};
	__u32 key = id;

	memcpy(c.hops, hops, n_hops * sizeof(*hops));
	snprintf(c.name, sizeof(c.name), "chain%u", id);
	return bpf_map_update_elem(m_chains, &key, &c, BPF_ANY) ? -errno : 0;
}

static int chain_set_active(__u16 id, bool active)
{
	struct spry_chain c;
	__u32 key = id;

	if (bpf_map_lookup_elem(m_chains, &key, &c))
		return -errno;
	c.flags = active ? SPRY_CF_ACTIVE : 0;
	return bpf_map_update_elem(m_chains, &key, &c, BPF_ANY) ? -errno : 0;
}

static int fn_put(__u16 id, __u16 chain, const struct inst *const *xs, int n)
{
	struct spry_fn f = {
		.flags = SPRY_FF_ACTIVE,
		.chain = chain,
		.n_inst = n,
	};
	__u32 key = id;
	int i;

	for (i = 0; i < n; i++)
		f.inst[i] = xs[i]->inst;
	snprintf(f.name, sizeof(f.name), "fn%u", id);
	return bpf_map_update_elem(m_fns, &key, &f, BPF_ANY) ? -errno : 0;
}

static int auth_set(__u16 chain, __u16 from, __u16 to, bool allow)
{
	struct spry_auth_key key = { .chain = chain, .from = from, .to = to };
	__u32 one = 1;

	if (allow)
		return bpf_map_update_elem(m_auth, &key, &one, BPF_ANY) ? -errno : 0;
	return bpf_map_delete_elem(m_auth, &key) ? -errno : 0;
}

static int auth_set_next(__u16 chain, __u16 from, __u16 to)
{
	struct spry_auth_key key = { .chain = chain, .from = from, .to = to,
				     .kind = SPRY_AK_NEXT };
	__u32 one = 1;

	return bpf_map_update_elem(m_auth, &key, &one, BPF_ANY) ? -errno : 0;
}

static bool sender_quarantined(const struct inst *x)
{
	struct spry_sender s;

	if (bpf_map_lookup_elem(m_senders, &x->a, &s))
		return false;
	return s.flags & SPRY_SF_QUARANTINED;
}

static bool inst_quarantined(const struct inst *x)
{
	struct spry_inst_state st;

	if (inst_get(x->fn, x->inst, &st))
		return false;
	return st.flags & SPRY_IF_QUARANTINED;
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size >= sizeof(last_ev))
		memcpy(&last_ev, data, sizeof(last_ev));
	n_events++;
	return 0;
}

/* --------------------------------------------------------- sockets */

static int listener_open(void)
{
	socklen_t len = sizeof(laddr);

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		return -errno;
	laddr.sin_family = AF_INET;
	laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	laddr.sin_port = 0;
	if (bind(listen_fd, (struct sockaddr *)&laddr, sizeof(laddr)) ||
	    listen(listen_fd, 128) ||
	    getsockname(listen_fd, (struct sockaddr *)&laddr, &len))
		return -errno;
	return 0;
}

static int tcp_pair(int *a, int *b)
{
	int one = 1, err;

	*b = -1;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0)
		return -errno;
	if (connect(*a, (struct sockaddr *)&laddr, sizeof(laddr)))
		goto fail;
	*b = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (*b < 0)
		goto fail;
	if (setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		goto fail;
	return 0;
fail:
	err = -errno;
	close(*a);
	if (*b >= 0)
		close(*b);
	*a = *b = -1;
	return err;
}

static void inst_close(struct inst *x)
{
	if (x->a >= 0)
		close(x->a);
	if (x->b >= 0)
		close(x->b);
	x->a = x->b = -1;
}

/*
 * Register a socket as spryd would: sender storage (unless !storage),
 * instance state, then into spry_socks at {fn, inst}.  Not listed in
 * spry_fns: that is fn_put()'s job.
 */
static int inst_new(struct inst *x, __u16 chain, __u16 fn, __u16 inst, __u8 role,
		    bool storage)
{
	struct spry_sender s = { .chain = chain, .fn = fn, .inst = inst, .role = role };
	struct spry_inst_state st = { .flags = SPRY_IF_LIVE };
	struct spry_inst_key key = { .fn = fn, .inst = inst };
	__u32 ikey = (__u32)fn * SPRY_MAX_INST + inst;
	__u64 fd;
	int err;

	memset(x, 0, sizeof(*x));
	x->chain = chain;
	x->fn = fn;
	x->inst = inst;
	x->role = role;
	x->storage = storage;
	err = tcp_pair(&x->a, &x->b);
	if (err)
		return err;
	if (storage && bpf_map_update_elem(m_senders, &x->a, &s, BPF_ANY))
		goto fail;
	if (bpf_map_update_elem(m_inst, &ikey, &st, BPF_ANY))
		goto fail;
	fd = x->a;
	if (bpf_map_update_elem(m_socks, &key, &fd, BPF_ANY))
		goto fail;
	return 0;
fail:
	err = -errno;
	inst_close(x);
	return err;
}

static ssize_t send_descs(int fd, const struct spry_desc *d, int n)
{
	return send(fd, d, (size_t)n * DSZ, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static bool send_ok(int fd, const struct spry_desc *d, int n)
{
	ssize_t r = send_descs(fd, d, n);

	if (r != (ssize_t)n * DSZ) {
		tap_diag("send of %d descriptors returned %zd (%s)", n, r,
			 r < 0 ? strerror(errno) : "short");
		return false;
	}
	return true;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Receive exactly @n descriptors from @fd within @ms; returns how many came. */
static int recv_descs(int fd, struct spry_desc *d, int n, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t want = (size_t)n * DSZ, got = 0;
	struct timespec t0;
	long left;
	ssize_t r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < want) {
		left = ms - ms_since(&t0);
		if (left < 0)
			left = 0;
		if (poll(&p, 1, (int)left) <= 0)
			break;
		r = recv(fd, (char *)d + got, want - got, MSG_DONTWAIT);
		if (r <= 0) {
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			break;
		}
		got += r;
	}
	return got / DSZ;
}

/* How many times the router has run (run_cnt; 0 without BPF stats). */
static __u64 prog_runs(void)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return 0;
	return info.run_cnt;
}

/* The router ran exactly @want times since @before. */
static bool runs_moved(__u64 before, __u64 want)
{
	__u64 got = prog_runs() - before;

	if (got != want)
		tap_diag("router ran %llu times, expected %llu",
			 (unsigned long long)got, (unsigned long long)want);
	return got == want;
}

struct fresh_send {
	int			fd;
	const void		*buf;
	size_t			len;
	ssize_t			ret;
	int			err;
};

static void *fresh_send_run(void *arg)
{
	struct fresh_send *f = arg;

	f->ret = send(f->fd, f->buf, f->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	f->err = errno;
	return NULL;
}

/*
 * send() from a new thread: TCP copies a send into the sending thread's
 * page fragment, and a new thread's has no page yet, so up to 4 KiB land
 * in one scatterlist element from offset 0 (at least an order-0 page):
 * linear for the router, and its runs are exactly those of the data.
 * Returns send()'s result (errno kept).
 */
static ssize_t send_fresh(int fd, const struct spry_desc *d, int n)
{
	struct fresh_send f = { .fd = fd, .buf = d, .len = (size_t)n * DSZ };
	pthread_t th;

	if (f.len > 4096) {
		errno = EMSGSIZE;
		return -1;
	}
	if (pthread_create(&th, NULL, fresh_send_run, &f))
		return -1;
	pthread_join(th, NULL);
	errno = f.err;
	return f.ret;
}

static bool send_fresh_ok(int fd, const struct spry_desc *d, int n)
{
	ssize_t r = send_fresh(fd, d, n);

	if (r != (ssize_t)n * DSZ) {
		tap_diag("fresh send of %d descriptors returned %zd (%s)", n, r,
			 r < 0 ? strerror(errno) : "short");
		return false;
	}
	return true;
}

static bool quiet(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 0;
}

/* One descriptor from whichever of @xs has one: its index, or -1. */
static int recv_any(struct inst *const *xs, int n, struct spry_desc *d, int ms)
{
	struct pollfd p[8];
	int i;

	for (i = 0; i < n && i < 8; i++) {
		p[i].fd = xs[i]->a;
		p[i].events = POLLIN;
		p[i].revents = 0;
	}
	if (poll(p, i, ms) <= 0)
		return -1;
	for (i = 0; i < n && i < 8; i++)
		if (p[i].revents & POLLIN)
			return recv_descs(xs[i]->a, d, 1, ms) == 1 ? i : -1;
	return -1;
}

static struct spry_desc mkdesc(__u16 chain, __u64 req_id)
{
	struct spry_desc d = {
		.version = SPRY_DESC_VERSION,
		.chain = chain,
		.req_id = req_id,
		.off = 8192,
		.len = 100,
		.cap = 4096,
		.meta_len = 16,
		.gen = 1,
		.key = req_id,
	};
	return d;
}

/* ------------------------------------------------------------ world */

static struct inst origin, f1a, f1b, f2a, f3a, ga, f4a, f4b;
static struct inst origin2, f5a, f6a, ha;	/* the run tests' */
static struct inst *all_live[] = { &f1a, &f1b, &f2a, &f3a, &ga, &f4a, &f4b,
				   &f5a, &f6a, &ha };
static int plain_a = -1, plain_b = -1;	/* a TCP pair outside spry_socks */
static __u64 next_req = 0x100;

static int world_setup(void)
{
	static const __u16 h1[] = { F1, F2, F3 }, h2[] = { F4 }, h3[] = { F5, F6, F5 };
	const struct inst *l1[] = { &f1a }, *l2[] = { &f2a }, *l3[] = { &f3a };
	const struct inst *lg[] = { &ga }, *l4[] = { &f4a };
	const struct inst *l5[] = { &f5a }, *l6[] = { &f6a }, *lh[] = { &ha };
	int err;

	if ((err = chain_put(C1, h1, 3, true)) || (err = chain_put(C2, h2, 1, true)) ||
	    (err = chain_put(C3, h3, 3, true)))
		return err;
	if ((err = auth_set(C1, 0, F1, true)) || (err = auth_set(C1, F1, F2, true)) ||
	    (err = auth_set(C1, F2, F3, true)) || (err = auth_set(C1, F3, 0, true)) ||
	    (err = auth_set(C1, F1, G, true)) ||
	    (err = auth_set(C2, 0, F4, true)) || (err = auth_set(C2, F4, 0, true)) ||
	    (err = auth_set(C3, 0, F5, true)) || (err = auth_set(C3, F5, F6, true)) ||
	    (err = auth_set(C3, F6, F5, true)) || (err = auth_set(C3, F5, 0, true)) ||
	    (err = auth_set(C3, F5, H, true)))
		return err;
	if ((err = inst_new(&origin, 0, SPRY_FN_ORIGIN, 2, SPRY_ROLE_ORIGIN, true)) ||
	    (err = inst_new(&f1a, C1, F1, 0, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&f1b, C1, F1, 1, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&f2a, C1, F2, 3, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&f3a, C1, F3, 5, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&ga, C1, G, 4, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&f4a, C2, F4, 0, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&f4b, C2, F4, 1, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&origin2, 0, SPRY_FN_ORIGIN, 3, SPRY_ROLE_ORIGIN, true)) ||
	    (err = inst_new(&f5a, C3, F5, 0, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&f6a, C3, F6, 0, SPRY_ROLE_FN, true)) ||
	    (err = inst_new(&ha, C3, H, 0, SPRY_ROLE_FN, true)))
		return err;
	err = tcp_pair(&plain_a, &plain_b);
	if (err)
		return err;
	/* f1b and f4b join later. */
	if ((err = fn_put(F1, C1, l1, 1)) || (err = fn_put(F2, C1, l2, 1)) ||
	    (err = fn_put(F3, C1, l3, 1)) || (err = fn_put(G, C1, lg, 1)) ||
	    (err = fn_put(F4, C2, l4, 1)) || (err = fn_put(F5, C3, l5, 1)) ||
	    (err = fn_put(F6, C3, l6, 1)) || (err = fn_put(H, C3, lh, 1)))
		return err;
	return 0;
}

/* ------------------------------------------------------------ cases */

/* origin -> F1 -> F2 -> F3 -> origin, one descriptor, every hop checked. */
static void test_chain(void)
{
	struct spry_desc d = mkdesc(C1, 0x5a0001), r;
	struct spry_fn_stats st0, st1;
	struct spry_reqloc loc;
	__u64 before[SPRY_V_MAX];
	__u32 slot = d.req_id & (SPRY_REQ_SLOTS - 1);
	bool ok;

	fn_stats_read(F1, &st0);
	/* Router-owned fields are garbage on purpose: they get rewritten. */
	d.hop = 7;
	d.origin = 31;
	d.inst = 17;
	verdicts_read(before);
	ok = send_ok(origin.a, &d, 1) && recv_descs(f1a.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_FORWARD, 1),
	       "chain: origin -> f1 delivered, FORWARD +1");
	tap_ok(ok && r.req_id == d.req_id && r.hop == 0 && r.origin == origin.inst &&
	       r.inst == f1a.inst && r.status == SPRY_ST_OK && r.off == d.off &&
	       r.len == d.len && r.meta_len == d.meta_len,
	       "chain: f1 sees hop 0, origin %u, inst %u, payload fields intact",
	       origin.inst, f1a.inst);
	ok = !bpf_map_lookup_elem(m_reqloc, &slot, &loc);
	tap_ok(ok && loc.req_id == d.req_id && loc.fn == F1 && loc.inst == f1a.inst &&
	       loc.hop == 0, "chain: reqloc records {req, f1, inst %u, hop 0}", f1a.inst);
	EXPECT_EQ(inflight(&f1a), 1, "chain: f1 instance has 1 in flight");

	verdicts_read(before);
	r.inst = 9;	/* forged: rewritten on delivery */
	ok = send_ok(f1a.a, &r, 1) && recv_descs(f2a.a, &r, 1, WAIT_MS) == 1;
	ok = ok && verdicts_moved(before, SPRY_V_FORWARD, 1);
	ok = ok && r.hop == 1 && r.inst == f2a.inst && r.origin == origin.inst;
	ok = ok && !bpf_map_lookup_elem(m_reqloc, &slot, &loc) && loc.fn == F2 &&
	     loc.inst == f2a.inst && loc.hop == 1;
	tap_ok(ok, "chain: f1 -> f2 FORWARD, hop 1, inst %u, reqloc", f2a.inst);

	verdicts_read(before);
	ok = send_ok(f2a.a, &r, 1) && recv_descs(f3a.a, &r, 1, WAIT_MS) == 1;
	ok = ok && verdicts_moved(before, SPRY_V_FORWARD, 1);
	ok = ok && r.hop == 2 && r.inst == f3a.inst && r.origin == origin.inst;
	ok = ok && !bpf_map_lookup_elem(m_reqloc, &slot, &loc) && loc.fn == F3 &&
	     loc.hop == 2;
	tap_ok(ok, "chain: f2 -> f3 FORWARD, hop 2, inst %u, reqloc", f3a.inst);

	verdicts_read(before);
	ok = send_ok(f3a.a, &r, 1) && recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_DONE, 1) && r.req_id == d.req_id &&
	       r.status == SPRY_ST_OK && r.hop == 2,
	       "chain: f3 -> origin DONE, request back at its origin");

	fn_stats_read(F1, &st1);
	EXPECT_EQ(inflight(&f1a), 0, "chain: inflight back to 0 on f1");
	EXPECT_EQ(inflight(&f2a), 0, "chain: inflight back to 0 on f2");
	EXPECT_EQ(inflight(&f3a), 0, "chain: inflight back to 0 on f3");
	EXPECT_EQ(st1.delivered - st0.delivered, 1, "chain: f1 stats delivered +1");
	EXPECT_EQ(st1.sent - st0.sent, 1, "chain: f1 stats sent +1");
}

static bool arrived(const struct inst *x, const struct spry_desc *got,
		    const struct spry_desc *want, int n, __u8 hop, __u16 orig);

/* Receive @n descriptors at @x and send them on as one batch. */
static bool relay(struct inst *x, struct spry_desc *buf, int n)
{
	int got = recv_descs(x->a, buf, n, WAIT_MS);

	if (got != n) {
		tap_diag("relay: %d of %d at fn %u inst %u", got, n, x->fn, x->inst);
		return false;
	}
	return send_ok(x->a, buf, n);
}

/*
 * TCP sends copy into the sending thread's page fragment (shared by all its
 * sockets), and a send()'s scatterlist elements break where a fragment
 * page ends.  @bytes left unread on a plain TCP pair hold the page and move
 * this thread's fragment offset off a 64-byte multiple, so the descriptors
 * of the next large batch straddle element boundaries and the router must
 * pull them.  (Once the bytes are read the page is free and reused from
 * offset 0.)  Call again with @bytes 0 to read them.
 */
static bool skew_page_frag(int bytes)
{
	static char buf[16384 + 64];
	static int pending;

	if (!bytes) {
		bytes = pending;
		pending = 0;
		return !bytes || recv(plain_b, buf, bytes, MSG_WAITALL) == bytes;
	}
	if (bytes > (int)sizeof(buf) ||
	    send(plain_a, buf, bytes, MSG_NOSIGNAL | MSG_DONTWAIT) != bytes)
		return false;
	pending = bytes;
	return true;
}

/*
 * One send() of @n descriptors alternating between chain 1 and chain 2:
 * each is routed on its own.  Then every hop sends its share on in one
 * batch, which goes in runs, each descriptor rewritten as if alone.
 * @skew: misalign the page fragment first (see skew_page_frag()), for f1's
 * batch too, half a page in: its run ends where the page does, and the
 * descriptor straddling the end is pulled and routed alone.
 */
static void test_batch(int n, int skew)
{
	struct spry_desc *d = calloc(n, sizeof(*d));
	struct spry_desc *r1 = calloc(n, sizeof(*d));
	struct spry_desc *r2 = calloc(n, sizeof(*d));
	__u64 before[SPRY_V_MAX], base = next_req, runs;
	int i, n1 = (n + 1) / 2, n2 = n / 2;
	bool ok, order = true;
	ssize_t sent;

	if (!d || !r1 || !r2) {
		tap_ok(0, "batch %d: allocation", n);
		tap_ok(0, "batch %d: routing", n);
		tap_ok(0, "batch %d: return", n);
		tap_ok(0, "batch %d: runs", n);
		goto out;
	}
	next_req += n;
	for (i = 0; i < n; i++)
		d[i] = mkdesc(i % 2 ? C2 : C1, base + i);

	if (skew && !skew_page_frag(skew))
		tap_diag("could not skew the page fragment");
	verdicts_read(before);
	sent = send_descs(origin.a, d, n);
	tap_ok(sent == (ssize_t)n * DSZ && verdicts_moved(before, SPRY_V_FORWARD, n),
	       "batch %d%s: one send of %d bytes, FORWARD +%d", n,
	       skew ? " (misaligned)" : "", n * DSZ, n);

	ok = recv_descs(f1a.a, r1, n1, WAIT_MS) == n1 &&
	     recv_descs(f4a.a, r2, n2, WAIT_MS) == n2;
	for (i = 0; ok && i < n1; i++)
		order &= r1[i].req_id == base + 2 * i && r1[i].hop == 0 &&
			 r1[i].chain == C1;
	for (i = 0; ok && i < n2; i++)
		order &= r2[i].req_id == base + 2 * i + 1 && r2[i].chain == C2;
	if (skew && !skew_page_frag(0))
		tap_diag("could not read the skew bytes back");
	tap_ok(ok && order && quiet(f1a.a, 0) && quiet(f4a.a, 0),
	       "batch %d%s: %d at f1 and %d at f4, each in order", n,
	       skew ? " (misaligned)" : "", n1, n2);

	/* Back: f1 -> f2 -> f3 -> origin and f4 -> origin, batch by batch. */
	if (skew && !skew_page_frag(16384 + skew))
		tap_diag("could not skew the page fragment for f1");
	verdicts_read(before);
	runs = prog_runs();
	ok = send_ok(f1a.a, r1, n1);
	if (skew && !skew_page_frag(0))
		tap_diag("could not read the skew bytes back");
	ok = ok && recv_descs(f2a.a, d, n1, WAIT_MS) == n1 &&
	     arrived(&f2a, d, r1, n1, 1, origin.inst);
	ok = ok && send_ok(f2a.a, d, n1) && relay(&f3a, d, n1) &&
	     (n2 == 0 || send_ok(f4a.a, r2, n2));
	runs = prog_runs() - runs;
	ok = ok && recv_descs(origin.a, d, n, WAIT_MS) == n;
	tap_ok(ok && verdicts_moved2(before, SPRY_V_FORWARD, 2ULL * n1, SPRY_V_DONE, n) &&
	       inflight(&f1a) == 0 && inflight(&f2a) == 0 && inflight(&f3a) == 0 &&
	       inflight(&f4a) == 0,
	       "batch %d%s: all back at the origin in batches, inflight 0", n,
	       skew ? " (misaligned)" : "");
	/*
	 * Each hop's batch is one chain and hop: runs, cut only by
	 * SPRY_RUN_MAX and where the data stops being linear (a page
	 * fragment ends; a descriptor straddling it goes alone).
	 */
	tap_ok(ok && runs >= 4 && runs * 4 <= 3ULL * n1 + n2,
	       "batch %d%s: the hops' %d descriptors took %llu router runs", n,
	       skew ? " (misaligned)" : "", 3 * n1 + n2, (unsigned long long)runs);
out:
	free(d);
	free(r1);
	free(r2);
}

/* A send of one and a half descriptors: the first goes, the tail is short. */
static void test_partial(void)
{
	struct spry_desc d[2] = { mkdesc(C2, next_req++), mkdesc(C2, next_req++) };
	__u64 before[SPRY_V_MAX];
	struct inst o;
	struct spry_desc r;
	ssize_t sent;
	bool ok;

	if (inst_new(&o, 0, SPRY_FN_ORIGIN, 20, SPRY_ROLE_ORIGIN, true)) {
		tap_ok(0, "partial send: setup");
		return;
	}
	verdicts_read(before);
	sent = send(o.a, d, DSZ + DSZ / 2, MSG_NOSIGNAL | MSG_DONTWAIT);
	tap_diag("partial send returned %zd (%s)", sent, sent < 0 ? strerror(errno) : "");
	ok = recv_descs(f4a.a, &r, 1, WAIT_MS) == 1 && r.req_id == d[0].req_id;
	ok = ok && verdicts_moved2(before, SPRY_V_FORWARD, 1, SPRY_V_DROP_SHORT, 1);
	ok = ok && send_ok(f4a.a, &r, 1) && recv_descs(o.a, &r, 1, WAIT_MS) == 1;
	n_drops++;
	ring_buffer__consume(rb);
	tap_ok(ok && sender_quarantined(&o) && last_ev.verdict == SPRY_V_DROP_SHORT,
	       "partial send of 1.5 descriptors: first routed, tail DROP_SHORT and quarantined");
	inst_close(&o);
}

/* Two live instances of f4: spread, stickiness, a closed instance. */
static void test_balance(void)
{
	const struct inst *l4[] = { &f4a, &f4b };
	struct spry_desc d[50], abuf[50], rbuf[50];
	__u64 before[SPRY_V_MAX];
	int na = 0, nb = 0, round, i, got_a, got_b, stuck = -1, lost = 0;
	bool ok = true, both;

	if (fn_put(F4, C2, l4, 2)) {
		tap_ok(0, "balance: listing f4's instances");
		return;
	}

	verdicts_read(before);
	for (round = 0; round < 20; round++) {
		for (i = 0; i < 50; i++)
			d[i] = mkdesc(C2, next_req++);
		if (!send_ok(origin.a, d, 50)) {
			ok = false;
			break;
		}
		/* Everything was redirected during send(): count what is queued. */
		got_a = got_b = 0;
		while (!quiet(f4a.a, 0) && got_a < 50 && recv_descs(f4a.a, &abuf[got_a], 1, 0) == 1)
			got_a++;
		while (!quiet(f4b.a, 0) && got_b < 50 && recv_descs(f4b.a, &rbuf[got_b], 1, 0) == 1)
			got_b++;
		lost += 50 - got_a - got_b;
		na += got_a;
		nb += got_b;
		if ((got_a && !send_ok(f4a.a, abuf, got_a)) ||
		    (got_b && !send_ok(f4b.a, rbuf, got_b)) ||
		    recv_descs(origin.a, d, got_a + got_b, WAIT_MS) != got_a + got_b) {
			ok = false;
			break;
		}
	}
	tap_ok(ok && lost == 0 && na + nb == 1000 &&
	       verdicts_moved2(before, SPRY_V_FORWARD, 1000, SPRY_V_DONE, 1000),
	       "balance: 1000 requests FORWARD and DONE, none lost");
	tap_ok(na >= 200 && nb >= 200, "balance: spread over both instances (%d / %d)",
	       na, nb);
	tap_ok(inflight(&f4a) == 0 && inflight(&f4b) == 0,
	       "balance: inflight back to 0 on both instances");

	/* One sticky key: always the same instance. */
	ok = true;
	for (i = 0; i < 100 && ok; i++) {
		struct spry_desc s = mkdesc(C2, next_req++);
		struct inst *xs[] = { &f4a, &f4b };
		int at;

		s.flags = SPRY_DF_STICKY;
		s.key = 0xfeedbeefULL;
		ok = send_ok(origin.a, &s, 1);
		at = recv_any(xs, 2, &s, WAIT_MS);
		if (at < 0 || (stuck >= 0 && at != stuck))
			ok = false;
		stuck = at;
		ok = ok && send_ok(xs[at]->a, &s, 1) &&
		     recv_descs(origin.a, &s, 1, WAIT_MS) == 1;
	}
	tap_ok(ok, "sticky: 100 requests with one key all on instance %d", stuck);

	/* Different keys land on both instances (the hash spreads them). */
	na = nb = 0;
	ok = true;
	for (i = 1; i <= 32 && ok; i++) {
		struct spry_desc s = mkdesc(C2, next_req++);
		struct inst *xs[] = { &f4a, &f4b };
		int at;

		s.flags = SPRY_DF_STICKY;
		s.key = i;
		ok = send_ok(origin.a, &s, 1);
		at = recv_any(xs, 2, &s, WAIT_MS);
		ok = ok && at >= 0 && send_ok(xs[at]->a, &s, 1) &&
		     recv_descs(origin.a, &s, 1, WAIT_MS) == 1;
		if (at == 0)
			na++;
		else if (at == 1)
			nb++;
	}
	tap_ok(ok && na && nb, "sticky: 32 keys spread over both (%d / %d)", na, nb);

	/* A quarantined instance gets no work (it could not send it on). */
	{
		struct spry_inst_state st;

		ok = !inst_get(F4, f4b.inst, &st);
		st.flags |= SPRY_IF_QUARANTINED;
		ok = ok && !bpf_map_update_elem(m_inst, &(__u32){ F4 * SPRY_MAX_INST + f4b.inst },
						&st, BPF_ANY);
		for (i = 0; i < 20 && ok; i++) {
			struct spry_desc s = mkdesc(C2, next_req++);

			ok = send_ok(origin.a, &s, 1) &&
			     recv_descs(f4a.a, &s, 1, WAIT_MS) == 1 &&
			     send_ok(f4a.a, &s, 1) &&
			     recv_descs(origin.a, &s, 1, WAIT_MS) == 1;
		}
		ok = ok && quiet(f4b.a, 0);
		st.flags &= ~SPRY_IF_QUARANTINED;
		ok = !bpf_map_update_elem(m_inst, &(__u32){ F4 * SPRY_MAX_INST + f4b.inst },
					  &st, BPF_ANY) && ok;
		tap_ok(ok, "quarantined instance skipped: 20 requests all at the other");
	}

	/* f4b dies; spry_fns still lists it: everything must go to f4a. */
	close(f4b.a);
	f4b.a = -1;
	verdicts_read(before);
	ok = true;
	na = 0;
	for (i = 0; i < 200 && ok; i++) {
		struct spry_desc s = mkdesc(C2, next_req++);

		if (i % 2) {
			s.flags = SPRY_DF_STICKY;
			s.key = i;
		}
		ok = send_ok(origin.a, &s, 1) && recv_descs(f4a.a, &s, 1, WAIT_MS) == 1;
		na += ok;
		ok = ok && send_ok(f4a.a, &s, 1) && recv_descs(origin.a, &s, 1, WAIT_MS) == 1;
	}
	tap_ok(ok && na == 200 &&
	       verdicts_moved2(before, SPRY_V_FORWARD, 200, SPRY_V_DONE, 200),
	       "closed instance: 200 requests all at the live one, nothing dropped");
	both = !sender_quarantined(&origin) && !inst_quarantined(&f4a) &&
	       !inst_quarantined(&f4b) && inflight(&f4a) == 0;
	tap_ok(both, "closed instance: no quarantine, inflight 0");
}

/*
 * Sends @len bytes from @x, which must be dropped with verdict @v: EACCES,
 * quarantine flags, the event.
 */
static void expect_drop(struct inst *x, const void *buf, size_t len, __u32 v,
			const char *what)
{
	struct spry_fn_stats st0, st1;
	__u64 before[SPRY_V_MAX];
	int ev0 = n_events;
	bool ok = true;
	ssize_t r;

	fn_stats_read(x->fn, &st0);
	verdicts_read(before);
	r = send(x->a, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (!(r < 0 && errno == EACCES)) {
		tap_diag("send returned %zd (%s), expected EACCES", r,
			 r < 0 ? strerror(errno) : "accepted");
		ok = false;
	}
	ok &= verdicts_moved(before, v, 1);
	n_drops++;
	if (x->storage) {
		fn_stats_read(x->fn, &st1);
		if (!sender_quarantined(x) || st1.dropped - st0.dropped != 1) {
			tap_diag("sender not flagged or not counted");
			ok = false;
		}
	}
	if (x->storage && x->role == SPRY_ROLE_FN && !inst_quarantined(x)) {
		tap_diag("instance not flagged");
		ok = false;
	}
	ring_buffer__consume(rb);
	if (n_events != ev0 + 1 || last_ev.verdict != v ||
	    (x->storage && (last_ev.fn != x->fn || last_ev.inst != x->inst))) {
		tap_diag("event: %d new, verdict %s fn %u inst %u", n_events - ev0,
			 vname(last_ev.verdict), last_ev.fn, last_ev.inst);
		ok = false;
	}
	tap_ok(ok, "%s: %s, EACCES, quarantined, event", what, vname(v));
}

/* A fresh, unlisted instance of @fn sends one forged descriptor. */
static void forged(__u16 chain, __u16 fn, __u8 role, bool storage,
		   const struct spry_desc *d, size_t len, __u32 v, const char *what)
{
	static unsigned int k;
	struct inst x;

	/* Unlisted slots 12..31, clear of the test world's instances. */
	if (inst_new(&x, chain, fn, 12 + k++ % 20, role, storage) ||
	    (storage && role == SPRY_ROLE_FN && inflight_set(&x, 1))) {
		tap_ok(0, "%s: setup", what);
		return;
	}
	/* It holds one descriptor, so the check under test is the one hit. */
	expect_drop(&x, d, len, v, what);
	inst_close(&x);
}

/*
 * The flood bound: a function that sends a descriptor it was never given
 * (its in-flight count is 0), or one more than it was given, is making
 * requests up: DROP_FLOOD and quarantine.
 */
static void test_flood(void)
{
	struct spry_desc d = mkdesc(C1, next_req++);
	struct inst x;

	if (inst_new(&x, C1, F1, 11, SPRY_ROLE_FN, true)) {
		tap_ok(0, "flood: setup");
		tap_ok(0, "flood: setup");
		return;
	}
	expect_drop(&x, &d, DSZ, SPRY_V_DROP_FLOOD,
		    "flood: a descriptor the function was never given");
	inst_close(&x);

	/* Given one, it may send one; the second is made up. */
	if (inst_new(&x, C1, F1, 11, SPRY_ROLE_FN, true) || inflight_set(&x, 1)) {
		tap_ok(0, "flood: setup");
		return;
	}
	d = mkdesc(C1, next_req++);
	d.status = SPRY_ST_FN_ERROR;	/* straight back to the origin */
	d.origin = origin.inst;
	if (!send_ok(x.a, &d, 1) || recv_descs(origin.a, &d, 1, WAIT_MS) != 1) {
		tap_ok(0, "flood: the one it was given goes through");
		inst_close(&x);
		return;
	}
	expect_drop(&x, &d, DSZ, SPRY_V_DROP_FLOOD,
		    "flood: one more than it was given");
	inst_close(&x);
}

static void test_forged(void)
{
	struct spry_desc d;

#define FORGE(field_stmt, v, what) do {					\
		d = mkdesc(C1, next_req++);				\
		field_stmt;						\
		forged(C1, F1, SPRY_ROLE_FN, true, &d, DSZ, v, what);	\
	} while (0)

	FORGE(d.version = 2, SPRY_V_DROP_VERSION, "forged: version 2");
	FORGE(d.flags = 0x40, SPRY_V_DROP_VERSION, "forged: unknown flag");
	FORGE(d.flags = SPRY_DF_CALL | SPRY_DF_REPLY, SPRY_V_DROP_VERSION,
	      "forged: CALL and REPLY");
	FORGE(d.chain = C2, SPRY_V_DROP_CHAIN, "forged: other chain");
	FORGE(d.hop = 1, SPRY_V_DROP_HOP, "forged: hop of another function");
	FORGE(d.hop = 3, SPRY_V_DROP_HOP, "forged: hop past the chain");
	FORGE(d.off = POOL_SIZE, SPRY_V_DROP_BOUNDS, "forged: off == pool size");
	FORGE((d.off = POOL_SIZE - 64, d.len = 128), SPRY_V_DROP_BOUNDS,
	      "forged: off + len past the pool");
	FORGE((d.off = UINT64_MAX - 1, d.len = 4, d.meta_len = 0, d.cap = 4),
	      SPRY_V_DROP_BOUNDS, "forged: off = UINT64_MAX - 1");
	FORGE((d.off = 0, d.len = UINT32_MAX, d.meta_len = UINT32_MAX),
	      SPRY_V_DROP_BOUNDS, "forged: meta_len + len overflow 32 bits");
	FORGE((d.off = POOL_SIZE - 4096, d.cap = 8192), SPRY_V_DROP_BOUNDS,
	      "forged: capacity past the pool");
	FORGE((d.flags = SPRY_DF_CALL, d.fn = F3), SPRY_V_DROP_AUTH,
	      "unauthorized call f1 -> f3");
	/* A stray authorization naming another chain's function. */
	auth_set(C1, F1, F4, true);
	FORGE((d.flags = SPRY_DF_CALL, d.fn = F4), SPRY_V_DROP_AUTH,
	      "call to another chain's function");
	auth_set(C1, F1, F4, false);
#undef FORGE

	d = mkdesc(C1, next_req++);
	forged(C1, F1, SPRY_ROLE_FN, true, &d, DSZ / 2, SPRY_V_DROP_SHORT,
	       "forged: short send (32 bytes)");
	forged(C1, F1, SPRY_ROLE_FN, false, &d, DSZ, SPRY_V_DROP_SENDER,
	       "forged: unregistered sender");
	d.chain = 0;
	forged(0, SPRY_FN_ORIGIN, SPRY_ROLE_ORIGIN, true, &d, DSZ, SPRY_V_DROP_CHAIN,
	       "origin: chain 0");
	d.chain = SPRY_MAX_CHAINS + 4;
	forged(0, SPRY_FN_ORIGIN, SPRY_ROLE_ORIGIN, true, &d, DSZ, SPRY_V_DROP_CHAIN,
	       "origin: chain out of range");
	d = mkdesc(C1, next_req++);
	d.flags = SPRY_DF_CALL;
	d.fn = F2;
	forged(0, SPRY_FN_ORIGIN, SPRY_ROLE_ORIGIN, true, &d, DSZ, SPRY_V_DROP_VERSION,
	       "origin: CALL");

	/* A callee forging where its reply goes. */
	d = mkdesc(C1, next_req++);
	d.flags = SPRY_DF_REPLY;
	d.fn = G;
	d.ret_fn = F2;
	d.ret_inst = f2a.inst;
	forged(C1, G, SPRY_ROLE_FN, true, &d, DSZ, SPRY_V_DROP_AUTH,
	       "forged reply target (f2 never called g)");
	d.ret_fn = SPRY_FN_ORIGIN;
	d.ret_inst = origin.inst;
	forged(C1, G, SPRY_ROLE_FN, true, &d, DSZ, SPRY_V_DROP_AUTH,
	       "forged reply target (the origin)");
	d.ret_fn = F1;
	d.ret_inst = f1a.inst;
	d.fn = F2;
	forged(C1, G, SPRY_ROLE_FN, true, &d, DSZ, SPRY_V_DROP_AUTH,
	       "forged reply naming another callee");
}

/* ------------------------------------------------------------ runs */

/*
 * @got[0..n) arrived at function instance @x in the order of @want, each
 * as routing it alone would leave it: hop @hop, inst @x's, origin @orig,
 * its reqloc slot naming @x, status and payload fields as sent.
 */
static bool arrived(const struct inst *x, const struct spry_desc *got,
		    const struct spry_desc *want, int n, __u8 hop, __u16 orig)
{
	struct spry_reqloc loc;
	__u32 slot;
	int i;

	for (i = 0; i < n; i++) {
		slot = got[i].req_id & (SPRY_REQ_SLOTS - 1);
		if (got[i].req_id != want[i].req_id || got[i].hop != hop ||
		    got[i].inst != x->inst || got[i].origin != orig ||
		    got[i].status != want[i].status || got[i].off != want[i].off ||
		    got[i].len != want[i].len ||
		    bpf_map_lookup_elem(m_reqloc, &slot, &loc) ||
		    loc.req_id != got[i].req_id || loc.fn != x->fn ||
		    loc.inst != x->inst || loc.hop != hop) {
			tap_diag("descriptor %d at fn %u: req %#llx hop %u inst %u origin %u",
				 i, x->fn, (unsigned long long)got[i].req_id, got[i].hop,
				 got[i].inst, got[i].origin);
			return false;
		}
	}
	return true;
}

/* @got[0..n) are @want's requests, in order. */
static bool same_reqs(const struct spry_desc *got, const struct spry_desc *want, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (got[i].req_id != want[i].req_id)
			return false;
	return true;
}

/* A fresh request of @chain that a function holds at @hop for @orig. */
static struct spry_desc held_desc(__u16 chain, __u8 hop, __u16 orig)
{
	struct spry_desc d = mkdesc(chain, next_req++);

	d.hop = hop;
	d.origin = orig;
	return d;
}

/* f2 sends the @n descriptors it received (@buf) on to f3 and the origin. */
static bool drain_c1(struct spry_desc *buf, int n)
{
	return send_ok(f2a.a, buf, n) && relay(&f3a, buf, n) &&
	       recv_descs(origin.a, buf, n, WAIT_MS) == n && quiet(origin.a, 0);
}

/*
 * 64 descriptors along C1 in one send per hop: each send is one router
 * run (64 without runs), and every descriptor is rewritten and counted as
 * if routed alone.
 */
static void test_run_chain(void)
{
	struct spry_desc d[64], r[64], want[64];
	struct spry_fn_stats a0, a1, b0, b1;
	__u64 before[SPRY_V_MAX], runs;
	bool ok;
	int i;

	for (i = 0; i < 64; i++) {
		d[i] = mkdesc(C1, next_req++);
		/* Router-owned fields are garbage: rewritten in each. */
		d[i].hop = 9;
		d[i].origin = 30;
		d[i].inst = 17;
	}
	fn_stats_read(F1, &a0);
	verdicts_read(before);
	runs = prog_runs();
	ok = send_fresh_ok(origin.a, d, 64) && runs_moved(runs, 1) &&
	     verdicts_moved(before, SPRY_V_FORWARD, 64) &&
	     recv_descs(f1a.a, r, 64, WAIT_MS) == 64 && quiet(f1a.a, 0) &&
	     arrived(&f1a, r, d, 64, 0, origin.inst);
	fn_stats_read(F1, &a1);
	tap_ok(ok && inflight(&f1a) == 64 && a1.delivered - a0.delivered == 64,
	       "run: 64 from the origin in one send, one router run, FORWARD +64; "
	       "all at f1 in order with hop 0, origin, inst, reqloc; f1 +64");

	memcpy(want, r, sizeof(r));
	for (i = 0; i < 64; i++)
		r[i].inst = 9;	/* forged: rewritten in each */
	fn_stats_read(F1, &a0);
	fn_stats_read(F2, &b0);
	verdicts_read(before);
	runs = prog_runs();
	ok = send_fresh_ok(f1a.a, r, 64) && runs_moved(runs, 1) &&
	     verdicts_moved(before, SPRY_V_FORWARD, 64) &&
	     recv_descs(f2a.a, r, 64, WAIT_MS) == 64 && quiet(f2a.a, 0) &&
	     arrived(&f2a, r, want, 64, 1, origin.inst);
	tap_ok(ok, "run: f1's batch of 64 to f2 in one router run, FORWARD +64, "
	       "hop 1, inst and reqloc rewritten in each");
	fn_stats_read(F1, &a1);
	fn_stats_read(F2, &b1);
	tap_ok(a1.sent - a0.sent == 64 && b1.delivered - b0.delivered == 64 &&
	       a1.delivered == a0.delivered && inflight(&f1a) == 0 &&
	       inflight(&f2a) == 64,
	       "run: f1 sent +64 and back to 0 in flight, f2 delivered +64 and 64 in flight");

	memcpy(want, r, sizeof(r));
	fn_stats_read(SPRY_FN_ORIGIN, &a0);
	verdicts_read(before);
	runs = prog_runs();
	ok = send_fresh_ok(f2a.a, r, 64) && recv_descs(f3a.a, r, 64, WAIT_MS) == 64 &&
	     arrived(&f3a, r, want, 64, 2, origin.inst) &&
	     send_fresh_ok(f3a.a, r, 64) && recv_descs(origin.a, r, 64, WAIT_MS) == 64 &&
	     quiet(origin.a, 0) && same_reqs(r, d, 64);
	for (i = 0; ok && i < 64; i++)
		ok = r[i].hop == 2 && r[i].inst == f3a.inst && r[i].status == SPRY_ST_OK;
	fn_stats_read(SPRY_FN_ORIGIN, &a1);
	tap_ok(ok && runs_moved(runs, 2) &&
	       verdicts_moved2(before, SPRY_V_FORWARD, 64, SPRY_V_DONE, 64) &&
	       a1.delivered - a0.delivered == 64 && inflight(&f2a) == 0 &&
	       inflight(&f3a) == 0,
	       "run: f2 -> f3 and f3 -> origin (DONE) one router run each, "
	       "all 64 back in order, inflight 0");
}

/*
 * An origin's batch mixing chains and a sticky key: a run ends where the
 * chain changes and at the sticky one; garbage hops do not matter (an
 * origin's descriptors all get hop 0).
 */
static void test_run_origin_mix(void)
{
	/* chain per descriptor; 0x100: sticky */
	static const int kind[9] = { C1, C1, C1, C2, C2, C1 | 0x100, C1, C1, C2 };
	struct spry_desc d[9], w1[9], w4[9], r[9];
	__u64 before[SPRY_V_MAX], runs;
	int i, n1 = 0, n4 = 0;
	bool ok;

	for (i = 0; i < 9; i++) {
		d[i] = mkdesc(kind[i] & 0xff, next_req++);
		d[i].hop = i;
		if (kind[i] & 0x100) {
			d[i].flags = SPRY_DF_STICKY;
			d[i].key = 0xabcdef;
		}
		if ((kind[i] & 0xff) == C1)
			w1[n1++] = d[i];
		else
			w4[n4++] = d[i];
	}
	verdicts_read(before);
	runs = prog_runs();
	ok = send_fresh_ok(origin.a, d, 9);
	/* [C1 C1 C1] [C2 C2] [C1 sticky] [C1 C1] [C2] */
	tap_ok(ok && runs_moved(runs, 5) && verdicts_moved(before, SPRY_V_FORWARD, 9),
	       "run: origin batch of 9 mixing chains and a sticky key: 5 router runs, FORWARD +9");
	ok = ok && recv_descs(f1a.a, r, n1, WAIT_MS) == n1 && quiet(f1a.a, 0) &&
	     arrived(&f1a, r, w1, n1, 0, origin.inst);
	ok = ok && recv_descs(f4a.a, w1, n4, WAIT_MS) == n4 && quiet(f4a.a, 0) &&
	     arrived(&f4a, w1, w4, n4, 0, origin.inst);
	tap_ok(ok, "run: %d at f1 and %d at f4, each in order with hop 0, origin, inst",
	       n1, n4);

	verdicts_read(before);
	ok = ok && send_ok(f1a.a, r, n1) && recv_descs(f2a.a, r, n1, WAIT_MS) == n1 &&
	     drain_c1(r, n1) &&
	     send_ok(f4a.a, w1, n4) && recv_descs(origin.a, w1, n4, WAIT_MS) == n4;
	tap_ok(ok && verdicts_moved2(before, SPRY_V_FORWARD, 2 * n1, SPRY_V_DONE, n1 + n4) &&
	       inflight(&f1a) == 0 && inflight(&f4a) == 0,
	       "run: the mixed batch comes back (sticky one included), inflight 0");
}

/*
 * A function's batch mixing hops, origins, a call, a sticky key and an
 * error status: each descriptor goes where it would alone, a run ends at
 * each change.  f5 holds C3's hops 0 and 2.
 */
static void test_run_fn_mix(void)
{
	struct spry_fn_stats s5a, s5b, s6a, s6b, sha, shb, soa, sob;
	struct spry_desc d[12], r[12], w6[12], wo[3], c;
	__u64 before[SPRY_V_MAX], runs;
	__u64 want[SPRY_V_MAX] = {
		[SPRY_V_FORWARD] = 7, [SPRY_V_DONE] = 3, [SPRY_V_CALL] = 1,
		[SPRY_V_ERROR] = 1,
	};
	bool ok;
	int i;

	d[0] = held_desc(C3, 0, origin.inst);		/* a: to f6 */
	d[1] = held_desc(C3, 0, origin.inst);		/* b: to f6 */
	d[2] = held_desc(C3, 2, origin.inst);		/* c: DONE */
	d[3] = held_desc(C3, 2, origin.inst);		/* d: DONE */
	d[4] = held_desc(C3, 2, origin2.inst);		/* e: DONE, other origin */
	d[5] = held_desc(C3, 0, origin.inst);		/* f: call h */
	d[5].flags = SPRY_DF_CALL;
	d[5].fn = H;
	d[6] = held_desc(C3, 0, origin.inst);		/* g: to f6 */
	d[7] = held_desc(C3, 0, origin.inst);		/* h: sticky, to f6 */
	d[7].flags = SPRY_DF_STICKY;
	d[8] = held_desc(C3, 0, origin.inst);		/* i: to f6 */
	d[9] = held_desc(C3, 0, origin.inst);		/* j: to f6 */
	d[10] = held_desc(C3, 0, origin.inst);		/* k: error */
	d[10].status = SPRY_ST_FN_ERROR;
	d[11] = held_desc(C3, 0, origin.inst);		/* l: to f6 */
	w6[0] = d[0], w6[1] = d[1], w6[2] = d[6], w6[3] = d[7], w6[4] = d[8];
	w6[5] = d[9], w6[6] = d[11];
	wo[0] = d[2], wo[1] = d[3], wo[2] = d[10];

	if (inflight_set(&f5a, 12)) {
		tap_ok(0, "run mix: setup");
		return;
	}
	fn_stats_read(F5, &s5a);
	fn_stats_read(F6, &s6a);
	fn_stats_read(H, &sha);
	fn_stats_read(SPRY_FN_ORIGIN, &soa);
	verdicts_read(before);
	runs = prog_runs();
	ok = send_fresh_ok(f5a.a, d, 12);
	/* [a b] [c d] [e] [f] [g] [h] [i j] [k] [l] */
	tap_ok(ok && runs_moved(runs, 9) && verdicts_expect(before, want),
	       "run mix: 12 from f5 in 9 router runs: FORWARD +7, DONE +3, CALL +1, ERROR +1");

	ok = ok && recv_descs(f6a.a, r, 7, WAIT_MS) == 7 && quiet(f6a.a, 0) &&
	     arrived(&f6a, r, w6, 7, 1, origin.inst) && r[3].flags == SPRY_DF_STICKY;
	ok = ok && recv_descs(ha.a, &c, 1, WAIT_MS) == 1 && quiet(ha.a, 0) &&
	     c.req_id == d[5].req_id && c.flags == SPRY_DF_CALL && c.hop == 0 &&
	     c.inst == ha.inst && c.ret_fn == F5 && c.ret_inst == f5a.inst;
	ok = ok && recv_descs(origin.a, w6 + 7, 3, WAIT_MS) == 3 && quiet(origin.a, 0) &&
	     same_reqs(w6 + 7, wo, 3) && w6[9].status == SPRY_ST_FN_ERROR &&
	     w6[7].status == SPRY_ST_OK && w6[7].hop == 2;
	ok = ok && recv_descs(origin2.a, w6 + 10, 1, WAIT_MS) == 1 &&
	     quiet(origin2.a, 0) && w6[10].req_id == d[4].req_id;
	tap_ok(ok, "run mix: 7 at f6 in order (hop 1), the call at h (ret f5 inst %u), "
	       "DONE/ERROR at the origin, the other origin's DONE at it", f5a.inst);

	fn_stats_read(F5, &s5b);
	fn_stats_read(F6, &s6b);
	fn_stats_read(H, &shb);
	fn_stats_read(SPRY_FN_ORIGIN, &sob);
	tap_ok(s5b.sent - s5a.sent == 12 && s5b.errors - s5a.errors == 1 &&
	       s6b.delivered - s6a.delivered == 7 && shb.delivered - sha.delivered == 1 &&
	       sob.delivered - soa.delivered == 4 && inflight(&f5a) == 0 &&
	       inflight(&f6a) == 7 && inflight(&ha) == 1,
	       "run mix: f5 sent +12 errors +1, inflight 0; f6 +7, h +1, origins +4");

	/* Back: f6 -> f5 (hop 2), h replies to f5, f5 finishes them all. */
	verdicts_read(before);
	c.flags = SPRY_DF_REPLY;
	ok = ok && send_ok(f6a.a, r, 7) && recv_descs(f5a.a, r, 7, WAIT_MS) == 7 &&
	     send_ok(ha.a, &c, 1) && recv_descs(f5a.a, &c, 1, WAIT_MS) == 1 &&
	     send_ok(f5a.a, r, 7) && recv_descs(origin.a, r, 7, WAIT_MS) == 7;
	c.flags = 0;
	ok = ok && send_ok(f5a.a, &c, 1) && relay(&f6a, &c, 1) && relay(&f5a, &c, 1) &&
	     recv_descs(origin.a, &c, 1, WAIT_MS) == 1 && c.req_id == d[5].req_id;
	for (i = 0; ok && i < 7; i++)
		ok = r[i].req_id == w6[i].req_id && r[i].hop == 2;
	memset(want, 0, sizeof(want));
	want[SPRY_V_FORWARD] = 9;
	want[SPRY_V_REPLY] = 1;
	want[SPRY_V_DONE] = 8;
	tap_ok(ok && verdicts_expect(before, want) && inflight(&f5a) == 0 &&
	       inflight(&f6a) == 0 && inflight(&ha) == 0,
	       "run mix: all back at the origin through hop 2 and the reply, inflight 0");
}

/* DONE runs: one per origin; a change of origin ends the run. */
static void test_run_origins(void)
{
	struct spry_desc d[6], r[6];
	__u64 before[SPRY_V_MAX], runs;
	struct spry_fn_stats s0, s1;
	bool ok;
	int i;

	for (i = 0; i < 6; i++)
		d[i] = held_desc(C1, 2, i == 3 || i == 4 ? origin2.inst : origin.inst);
	if (inflight_set(&f3a, 6)) {
		tap_ok(0, "run origins: setup");
		return;
	}
	fn_stats_read(SPRY_FN_ORIGIN, &s0);
	verdicts_read(before);
	runs = prog_runs();
	ok = send_fresh_ok(f3a.a, d, 6);
	/* [o o o] [o2 o2] [o] */
	ok = ok && runs_moved(runs, 3) && verdicts_moved(before, SPRY_V_DONE, 6);
	ok = ok && recv_descs(origin.a, r, 4, WAIT_MS) == 4 && quiet(origin.a, 0) &&
	     r[0].req_id == d[0].req_id && r[1].req_id == d[1].req_id &&
	     r[2].req_id == d[2].req_id && r[3].req_id == d[5].req_id;
	ok = ok && recv_descs(origin2.a, r, 2, WAIT_MS) == 2 && quiet(origin2.a, 0) &&
	     r[0].req_id == d[3].req_id && r[1].req_id == d[4].req_id;
	fn_stats_read(SPRY_FN_ORIGIN, &s1);
	tap_ok(ok && s1.delivered - s0.delivered == 6 && inflight(&f3a) == 0,
	       "run: 6 DONE naming origins o,o,o,o2,o2,o: 3 router runs, "
	       "each at its origin in order");
}

/*
 * A fresh instance of F1 holding @held descriptors sends the batch @d of
 * @n: the first @pass go to f2 in one run, then descriptor @pass is
 * dropped with @v on its own run (nothing after it is routed), and the
 * sender is quarantined.
 */
static void run_then_drop(const struct spry_desc *d, int n, int held, int pass,
			  __u32 v, const char *what)
{
	struct spry_fn_stats st0, st1;
	__u64 before[SPRY_V_MAX], runs;
	struct spry_desc r[16];
	int ev0 = n_events;
	struct inst x;
	ssize_t sent;
	bool ok;

	if (inst_new(&x, C1, F1, 12, SPRY_ROLE_FN, true) || inflight_set(&x, held)) {
		tap_ok(0, "%s: setup", what);
		tap_ok(0, "%s: setup", what);
		return;
	}
	fn_stats_read(F1, &st0);
	verdicts_read(before);
	runs = prog_runs();
	sent = send_fresh(x.a, d, n);
	tap_diag("%s: send of %d returned %zd (%s)", what, n * DSZ, sent,
		 sent < 0 ? strerror(errno) : "");
	n_drops++;
	ok = runs_moved(runs, 2) && verdicts_moved2(before, SPRY_V_FORWARD, pass, v, 1);
	ok = ok && recv_descs(f2a.a, r, pass, WAIT_MS) == pass && quiet(f2a.a, 0) &&
	     arrived(&f2a, r, d, pass, 1, origin.inst);
	tap_ok(ok, "%s: the %d before it in one run to f2, then %s on its own run",
	       what, pass, vname(v));
	fn_stats_read(F1, &st1);
	ring_buffer__consume(rb);
	tap_ok(sender_quarantined(&x) && inst_quarantined(&x) &&
	       st1.dropped - st0.dropped == 1 && st1.sent - st0.sent == (__u64)pass &&
	       inflight(&x) == held - pass && n_events == ev0 + 1 &&
	       last_ev.verdict == v && last_ev.req_id == d[pass].req_id,
	       "%s: sender quarantined, sent +%d, dropped +1, event for descriptor %d",
	       what, pass, pass);
	inst_close(&x);
	if (!drain_c1(r, pass))
		tap_diag("%s: could not drain f2", what);
}

static void test_run_drops(void)
{
	struct spry_desc d[5];
	int i;

	/* An out-of-pool descriptor in the middle. */
	for (i = 0; i < 5; i++)
		d[i] = held_desc(C1, 0, origin.inst);
	d[2].off = POOL_SIZE;
	run_then_drop(d, 5, 5, 2, SPRY_V_DROP_BOUNDS, "run: bad bounds mid-batch");

	/* The flood bound: holding 3, a batch of 5. */
	for (i = 0; i < 5; i++)
		d[i] = held_desc(C1, 0, origin.inst);
	run_then_drop(d, 5, 3, 3, SPRY_V_DROP_FLOOD, "run: batch of 5 holding 3");
}

/* Start a request at the origin; returns the f1 instance that got it. */
static struct inst *start_req(struct spry_desc *r)
{
	struct inst *xs[] = { &f1a, &f1b };
	struct spry_desc d = mkdesc(C1, next_req++);
	int at;

	if (!send_ok(origin.a, &d, 1))
		return NULL;
	at = recv_any(xs, 2, r, WAIT_MS);
	return at < 0 ? NULL : xs[at];
}

/* Calls: f1 -> g -> back to the very f1 instance that called. */
static void test_call(void)
{
	const struct inst *l1[] = { &f1a, &f1b };
	struct spry_desc r, c;
	struct inst *x, *other, f1c;
	__u64 before[SPRY_V_MAX];
	bool ok = true, ok_call = true, ok_reply = true, used_a = false, used_b = false;
	int i;

	if (fn_put(F1, C1, l1, 2)) {
		tap_ok(0, "call: listing f1's instances");
		return;
	}
	verdicts_read(before);
	for (i = 0; i < 4 && ok; i++) {
		x = start_req(&r);
		if (!x) {
			ok = false;
			break;
		}
		other = x == &f1a ? &f1b : &f1a;
		used_a |= x == &f1a;
		used_b |= x == &f1b;
		r.flags = SPRY_DF_CALL;
		r.fn = G;
		r.ret_fn = F3;	/* forged: the router writes the caller */
		r.ret_inst = 30;
		ok = send_ok(x->a, &r, 1) && recv_descs(ga.a, &c, 1, WAIT_MS) == 1;
		ok_call &= ok && c.ret_fn == F1 && c.ret_inst == x->inst && c.hop == 0 &&
			   c.inst == ga.inst && c.flags == SPRY_DF_CALL;
		/* g replies: back to x, not to its sibling. */
		c.flags = SPRY_DF_REPLY;
		ok = ok && send_ok(ga.a, &c, 1) && recv_descs(x->a, &r, 1, WAIT_MS) == 1;
		ok_reply &= ok && quiet(other->a, 0) && r.inst == x->inst &&
			    r.req_id == c.req_id;
		/* The request goes on along the chain. */
		r.flags = 0;
		ok = ok && send_ok(x->a, &r, 1) && relay(&f2a, &r, 1) &&
		     relay(&f3a, &r, 1) && recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	}
	tap_ok(ok && ok_call, "call: f1 -> g delivered with ret_fn/ret_inst of the caller");
	tap_ok(ok && ok_reply && used_a && used_b,
	       "reply: back to the exact calling instance (both f1 instances called)");
	{
		__u64 want[SPRY_V_MAX] = {
			[SPRY_V_FORWARD] = 12, [SPRY_V_DONE] = 4,
			[SPRY_V_CALL] = 4, [SPRY_V_REPLY] = 4,
		};

		tap_ok(ok && verdicts_expect(before, want),
		       "call/reply: CALL +4, REPLY +4, FORWARD +12, DONE +4, nothing else");
	}

	/* The caller dies before the reply: NO_CALLER to the origin. */
	if (inst_new(&f1c, C1, F1, 2, SPRY_ROLE_FN, true)) {
		tap_ok(0, "no caller: setup");
		tap_ok(0, "no caller: callee not quarantined");
		return;
	}
	r = mkdesc(C1, next_req++);
	r.origin = origin.inst;	/* as if f1c had it from the origin */
	ok = !inflight_set(&f1c, 1);
	r.flags = SPRY_DF_CALL;
	r.fn = G;
	ok = ok && send_ok(f1c.a, &r, 1) && recv_descs(ga.a, &c, 1, WAIT_MS) == 1 &&
	     c.ret_inst == f1c.inst;
	inst_close(&f1c);
	c.flags = SPRY_DF_REPLY;
	verdicts_read(before);
	ok = ok && send_ok(ga.a, &c, 1) && recv_descs(origin.a, &r, 1, WAIT_MS) == 1;

	tap_ok(ok && verdicts_moved(before, SPRY_V_NO_CALLER, 1) &&
	       r.status == SPRY_ST_NO_CALLER && r.req_id == c.req_id,
	       "reply to a closed caller: NO_CALLER to the origin with the status");
	/* g is fine: it answers the next call. */
	x = start_req(&r);
	ok = x != NULL;
	r.flags = SPRY_DF_CALL;
	r.fn = G;
	ok = ok && send_ok(x->a, &r, 1) && recv_descs(ga.a, &c, 1, WAIT_MS) == 1;
	c.flags = SPRY_DF_REPLY;
	ok = ok && send_ok(ga.a, &c, 1) && recv_descs(x->a, &r, 1, WAIT_MS) == 1;
	r.flags = 0;
	ok = ok && send_ok(x->a, &r, 1) && relay(&f2a, &r, 1) && relay(&f3a, &r, 1) &&
	     recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok && !sender_quarantined(&ga) && !inst_quarantined(&ga),
	       "no caller: the callee is not quarantined, its next reply is routed");
}

/* ------------------------------------------------------------ workflows */

#define G2	14	/* a callee of C1 without instances */

/* Conditional next (docs/WORKFLOWS.md): f1 may pick f3 (SPRY_AK_NEXT). */
static void test_next(void)
{
	struct spry_desc r, d;
	struct inst *x, f1c;
	__u64 before[SPRY_V_MAX];
	bool ok;

	if (auth_set_next(C1, F1, F3)) {
		tap_ok(0, "next: setup");
		return;
	}
	/* Allowed: f1 -> f3, skipping f2; hop 2 at f3, plain descriptor. */
	x = start_req(&r);
	verdicts_read(before);
	r.flags = SPRY_DF_NEXT;
	r.fn = F3;
	ok = x && send_ok(x->a, &r, 1) && recv_descs(f3a.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_NEXT, 1) && d.hop == 2 && d.flags == 0 &&
	       d.inst == f3a.inst && quiet(f2a.a, 0) && inflight(&f3a) == 1 &&
	       inflight(x) == 0,
	       "next: f1 picks f3 (allowed): delivered at hop 2 (got %u), flags cleared (got %#x), f2 skipped, NEXT +1",
	       d.hop, d.flags);
	ok = ok && send_ok(f3a.a, &d, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && d.status == SPRY_ST_OK && inflight(&f3a) == 0,
	       "next: f3 hands back to the origin as the last hop");

	/* Not allowed: f2 (no SPRY_AK_NEXT), g (not a hop), 0, a bad id. */
	{
		static const __u16 bad[] = { F2, G, 0, SPRY_MAX_FNS + 5 };
		unsigned int i;

		for (i = 0; i < 4; i++) {
			x = start_req(&r);
			verdicts_read(before);
			r.flags = SPRY_DF_NEXT;
			r.fn = bad[i];
			ok = x && send_ok(x->a, &r, 1) &&
			     recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
			tap_ok(ok && verdicts_moved(before, SPRY_V_NEXT_REFUSED, 1) &&
			       d.status == SPRY_ST_NEXT_REFUSED && d.req_id == r.req_id &&
			       !(d.flags & SPRY_DF_NEXT) && !sender_quarantined(x) &&
			       inflight(x) == 0 && quiet(f2a.a, 0) && quiet(f3a.a, 0),
			       "next: f1 picks fn %u (not allowed): status next_refused (got %u) to the origin, NEXT_REFUSED +1, not quarantined",
			       bad[i], d.status);
		}
	}
	/* Backwards: f3 may not pick f1 (declared or not, the router looks forward). */
	ok = !auth_set_next(C1, F3, F1);
	x = start_req(&r);
	r.flags = 0;
	ok = ok && x && send_ok(x->a, &r, 1) && relay(&f2a, &r, 1) &&
	     recv_descs(f3a.a, &r, 1, WAIT_MS) == 1;
	verdicts_read(before);
	r.flags = SPRY_DF_NEXT;
	r.fn = F1;
	ok = ok && send_ok(f3a.a, &r, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && d.status == SPRY_ST_NEXT_REFUSED && quiet(f1a.a, 0) && quiet(f1b.a, 0) &&
	       verdicts_moved(before, SPRY_V_NEXT_REFUSED, 1),
	       "next: f3 picks f1, an earlier hop, even authorized: refused (got status %u)",
	       d.status);
	auth_set(C1, F3, F1, false);

	/* A forged hop is still a forgery: quarantined. */
	if (inst_new(&f1c, C1, F1, 2, SPRY_ROLE_FN, true) || inflight_set(&f1c, 1)) {
		tap_ok(0, "next: forged hop setup");
		return;
	}
	d = mkdesc(C1, next_req++);
	d.hop = 1;	/* f2's hop */
	d.flags = SPRY_DF_NEXT;
	d.fn = F3;
	expect_drop(&f1c, &d, sizeof(d), SPRY_V_DROP_HOP, "next: from a hop not the sender's");
	inst_close(&f1c);
	/* next with call or reply, fan without either: malformed. */
	{
		static const __u8 fl[] = { SPRY_DF_NEXT | SPRY_DF_CALL, SPRY_DF_NEXT | SPRY_DF_FAN,
					   SPRY_DF_FAN };
		unsigned int i;

		for (i = 0; i < 3; i++) {
			if (inst_new(&f1c, C1, F1, 2, SPRY_ROLE_FN, true) ||
			    inflight_set(&f1c, 1)) {
				tap_ok(0, "next: flags setup");
				return;
			}
			d = mkdesc(C1, next_req++);
			d.flags = fl[i];
			d.fn = F3;
			expect_drop(&f1c, &d, sizeof(d), SPRY_V_DROP_VERSION,
				    i == 0 ? "flags next|call" : i == 1 ? "flags next|fan" :
				    "flags fan alone");
			inst_close(&f1c);
		}
	}
}

/* Send @n CALL|FAN from @x to @fn (tags 1..n in t_start). */
static bool fan_send(struct inst *x, const struct spry_desc *req, __u16 fn, int n)
{
	struct spry_desc c[SPRY_FAN_MAX + 4];
	int i;

	for (i = 0; i < n; i++) {
		c[i] = *req;
		c[i].flags = SPRY_DF_CALL | SPRY_DF_FAN;
		c[i].fn = fn;
		c[i].t_start = i + 1;
	}
	return send_ok(x->a, c, n);
}

/* Fan-out: branches leave the caller's in-flight alone, bounded per instance. */
static void test_fan(void)
{
	struct spry_desc r, c[SPRY_FAN_MAX + 4], a[SPRY_FAN_MAX + 4];
	__u64 before[SPRY_V_MAX];
	struct inst *x;
	bool ok, tags = true;
	int i, n;

	if (fn_put(G2, C1, NULL, 0) || auth_set(C1, F1, G2, true)) {
		tap_ok(0, "fan: setup");
		return;
	}
	x = start_req(&r);
	verdicts_read(before);
	ok = x && fan_send(x, &r, G, 3) && recv_descs(ga.a, c, 3, WAIT_MS) == 3;
	for (i = 0; ok && i < 3; i++)
		tags &= c[i].t_start == (__u64)i + 1 && c[i].flags == (SPRY_DF_CALL | SPRY_DF_FAN) &&
			c[i].ret_fn == F1 && c[i].ret_inst == x->inst;
	tap_ok(ok && tags && inflight(x) == 1 && inflight(&ga) == 3 &&
	       verdicts_moved(before, SPRY_V_CALL, 3),
	       "fan: 3 branches f1 -> g in one send: g has 3 (%d), f1 still 1 in flight (%d), tags echoed",
	       ok ? inflight(&ga) : -1, ok ? inflight(x) : -1);
	/* g answers: two fine, one failed; all three go back to the caller. */
	for (i = 0; i < 3; i++) {
		c[i].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
		c[i].status = i == 1 ? SPRY_ST_FN_ERROR : SPRY_ST_OK;
	}
	verdicts_read(before);
	ok = ok && send_ok(ga.a, c, 3) && recv_descs(x->a, a, 3, WAIT_MS) == 3;
	tap_ok(ok && a[1].status == SPRY_ST_FN_ERROR && a[0].t_start == 1 && a[2].t_start == 3 &&
	       inflight(x) == 1 && inflight(&ga) == 0 && quiet(origin.a, 0) &&
	       verdicts_moved(before, SPRY_V_REPLY, 3),
	       "fan: 3 answers (one failed) back to the caller, not the origin; f1 still 1, g 0");

	/* The bound: SPRY_FAN_MAX out, the rest refused back to the caller. */
	n = SPRY_FAN_MAX + 2;
	verdicts_read(before);
	ok = ok && fan_send(x, &r, G, n) &&
	     recv_descs(ga.a, c, SPRY_FAN_MAX, WAIT_MS) == SPRY_FAN_MAX &&
	     recv_descs(x->a, a, 2, WAIT_MS) == 2;
	tap_ok(ok && a[0].status == SPRY_ST_FAN_LIMIT && a[1].status == SPRY_ST_FAN_LIMIT &&
	       a[0].flags == (SPRY_DF_REPLY | SPRY_DF_FAN) && a[0].t_start == SPRY_FAN_MAX + 1 &&
	       inflight(x) == 1 && inflight(&ga) == SPRY_FAN_MAX &&
	       verdicts_moved2(before, SPRY_V_CALL, SPRY_FAN_MAX, SPRY_V_FAN_REFUSED, 2) &&
	       !sender_quarantined(x),
	       "fan: %d branches: %d delivered, 2 back with status fan_limit (got %u), FAN_REFUSED +2, caller fine",
	       n, SPRY_FAN_MAX, ok ? a[0].status : 0);
	for (i = 0; i < SPRY_FAN_MAX; i++)
		c[i].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
	ok = ok && send_ok(ga.a, c, SPRY_FAN_MAX) &&
	     recv_descs(x->a, a, SPRY_FAN_MAX, WAIT_MS) == SPRY_FAN_MAX;
	/* answered: the budget is back */
	ok = ok && fan_send(x, &r, G, 1) && recv_descs(ga.a, c, 1, WAIT_MS) == 1;
	c[0].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
	ok = ok && send_ok(ga.a, c, 1) && recv_descs(x->a, a, 1, WAIT_MS) == 1;
	tap_ok(ok && inflight(x) == 1 && inflight(&ga) == 0,
	       "fan: the answers give the budget back: one more branch goes out");

	/*
	 * A callee that dies holding a branch: spryd (the origin) answers for
	 * it with callee_gone, naming the dead callee.  Taken once, while the
	 * record says that callee holds it: the caller gets it, its budget
	 * back; the same answer again, or one naming another callee, goes
	 * back to spryd's end (fan_orphan), and nobody is quarantined.
	 */
	ok = ok && fan_send(x, &r, G, 2) && recv_descs(ga.a, c, 2, WAIT_MS) == 2;
	{
		struct spry_fan_key fk = { .fn = F1, .inst = x->inst, .req_id = r.req_id, .tag = 1 };
		struct spry_fan_rec fr = {};
		struct spry_desc g[3];

		ok = ok && !bpf_map_lookup_elem(m_fanrec, &fk, &fr) && fr.fn == G &&
		     fr.inst == ga.inst;
		tap_ok(ok, "fan: the router records the branch with its callee (g/%u: got %u/%u)",
		       ga.inst, fr.fn, fr.inst);
		for (i = 0; i < 3; i++) {
			g[i] = (struct spry_desc){
				.version = SPRY_DESC_VERSION, .flags = SPRY_DF_REPLY | SPRY_DF_FAN,
				.status = SPRY_ST_CALLEE_GONE, .chain = C1, .fn = G, .inst = ga.inst,
				.ret_fn = F1, .ret_inst = x->inst, .req_id = r.req_id,
				.t_start = i == 2 ? 2 : 1, .off = 8192, .cap = 4096, .gen = 1,
			};
		}
		g[2].inst = ga.inst + 1;	/* branch 2 is g's, not this instance's */
		verdicts_read(before);
		ok = ok && send_ok(origin.a, g, 1) && recv_descs(x->a, a, 1, WAIT_MS) == 1;
		tap_ok(ok && a[0].status == SPRY_ST_CALLEE_GONE && a[0].t_start == 1 &&
		       a[0].flags == (SPRY_DF_REPLY | SPRY_DF_FAN) && !a[0].cap && !a[0].off &&
		       bpf_map_lookup_elem(m_fanrec, &fk, &fr) && inflight(x) == 1 &&
		       verdicts_moved(before, SPRY_V_FAN_GONE, 1),
		       "fan: spryd's callee_gone answer reaches the caller (status %u), no buffer, the record gone",
		       ok ? a[0].status : 0);
		verdicts_read(before);
		ok = ok && send_ok(origin.a, &g[1], 2) && recv_descs(origin.b, a, 2, WAIT_MS) == 2;
		tap_ok(ok && quiet(x->a, 50) && verdicts_moved(before, SPRY_V_FAN_ORPHAN, 2) &&
		       !sender_quarantined(&origin),
		       "fan: the same answer again, and one naming another callee: back to spryd (fan_orphan), not to the caller");
		/* g's own answer to branch 2 still counts as the branch's */
		c[1].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
		verdicts_read(before);
		ok = ok && send_ok(ga.a, &c[1], 1) && recv_descs(x->a, a, 1, WAIT_MS) == 1;
		fk.tag = 2;
		/* g "died" holding branch 1: spryd would clear its slot; its count */
		{
			__u32 ik = (__u32)G * SPRY_MAX_INST + ga.inst;
			struct spry_inst_state st;

			if (!bpf_map_lookup_elem(m_inst, &ik, &st)) {
				st.inflight--;
				bpf_map_update_elem(m_inst, &ik, &st, BPF_ANY);
			}
		}
		tap_ok(ok && a[0].t_start == 2 && inflight(x) == 1 && inflight(&ga) == 0 &&
		       bpf_map_lookup_elem(m_fanrec, &fk, &fr),
		       "fan: the live callee's own answer: the branch's, its record gone (f1 %d, g %d)",
		       ok ? inflight(x) : -1, ok ? inflight(&ga) : -1);
	}

	/*
	 * A callee cannot pass a plain call's answer off as a branch's: with
	 * no branch out it counts as the plain reply it is, so the caller's
	 * in-flight count comes back and its next send is not a flood.
	 */
	c[0] = r;
	c[0].flags = SPRY_DF_CALL;
	c[0].fn = G;
	ok = ok && send_ok(x->a, c, 1) && recv_descs(ga.a, c, 1, WAIT_MS) == 1;
	c[0].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
	ok = ok && send_ok(ga.a, c, 1) && recv_descs(x->a, a, 1, WAIT_MS) == 1;
	tap_ok(ok && inflight(x) == 1 && inflight(&ga) == 0 && !sender_quarantined(x) &&
	       a[0].flags == SPRY_DF_REPLY,
	       "fan: a plain call's answer flagged FAN counts as a plain reply (f1 %d, g %d), "
	       "delivered without FAN (flags %#x, expected %#x), caller fine",
	       ok ? inflight(x) : -1, ok ? inflight(&ga) : -1, ok ? a[0].flags : 0, SPRY_DF_REPLY);

	/* No instance of the callee: that branch fails alone, back to the caller. */
	verdicts_read(before);
	ok = ok && fan_send(x, &r, G2, 1) && recv_descs(x->a, a, 1, WAIT_MS) == 1;
	tap_ok(ok && a[0].status == SPRY_ST_NO_INSTANCE && a[0].flags == (SPRY_DF_REPLY | SPRY_DF_FAN) &&
	       quiet(origin.a, 0) && inflight(x) == 1 &&
	       verdicts_moved(before, SPRY_V_NO_INSTANCE, 1),
	       "fan: a branch to a function without instances comes back no_instance (got %u) to the caller",
	       ok ? a[0].status : 0);
	/* The request goes on. */
	r.flags = 0;
	ok = ok && send_ok(x->a, &r, 1) && relay(&f2a, &r, 1) && relay(&f3a, &r, 1) &&
	     recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok && r.status == SPRY_ST_OK && inflight(x) == 0,
	       "fan: the caller hands its request on, nothing left in flight");
	auth_set(C1, F1, G2, false);
}

static void test_errors(void)
{
	const struct inst *l2[] = { &f2a }, *l3[] = { &f3a };
	struct spry_fn_stats st0, st1;
	__u64 before[SPRY_V_MAX];
	struct spry_desc r, d;
	struct inst *x, dead1, dead2, o2;
	const struct inst *ld[] = { &dead1, &dead2 };
	bool ok;

	/* A handler failed: straight back to the origin. */
	x = start_req(&r);
	fn_stats_read(F1, &st0);
	verdicts_read(before);
	r.status = SPRY_ST_FN_ERROR;
	ok = x && send_ok(x->a, &r, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	fn_stats_read(F1, &st1);
	tap_ok(ok && verdicts_moved(before, SPRY_V_ERROR, 1) &&
	       d.status == SPRY_ST_FN_ERROR && d.req_id == r.req_id &&
	       st1.errors - st0.errors == 1 && inflight(x) == 0,
	       "error status: ERROR to the origin, status kept, fn errors +1");

	/* Chain deactivated while the request is at f1. */
	x = start_req(&r);
	chain_set_active(C1, false);
	verdicts_read(before);
	ok = x && send_ok(x->a, &r, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_NO_CHAIN, 1) &&
	       d.status == SPRY_ST_NO_CHAIN && d.req_id == r.req_id && !inst_quarantined(x),
	       "chain deactivated mid-way: NO_CHAIN to the origin");
	d = mkdesc(C1, next_req++);
	verdicts_read(before);
	ok = send_ok(origin.a, &d, 1) && recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_NO_CHAIN, 1) &&
	       r.status == SPRY_ST_NO_CHAIN && r.req_id == d.req_id,
	       "new request on an inactive chain: NO_CHAIN back to its origin");
	chain_set_active(C1, true);

	/* f2 has no instance listed. */
	fn_put(F2, C1, l2, 0);
	x = start_req(&r);
	verdicts_read(before);
	ok = x && send_ok(x->a, &r, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_NO_INSTANCE, 1) &&
	       d.status == SPRY_ST_NO_INSTANCE && d.req_id == r.req_id,
	       "n_inst 0: NO_INSTANCE to the origin with the status");
	fn_put(F2, C1, l2, 1);
	ok = x && !sender_quarantined(x) && !inst_quarantined(x) && inflight(x) == 0;
	x = ok ? start_req(&r) : NULL;
	ok = x && send_ok(x->a, &r, 1) && relay(&f2a, &r, 1) && relay(&f3a, &r, 1) &&
	     recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok, "NO_INSTANCE: the sender is not quarantined, its next send is routed");

	/* f3's listed instances are all closed. */
	if (inst_new(&dead1, C1, F3, 6, SPRY_ROLE_FN, true) ||
	    inst_new(&dead2, C1, F3, 7, SPRY_ROLE_FN, true)) {
		tap_ok(0, "closed instances: setup");
	} else {
		fn_put(F3, C1, ld, 2);
		inst_close(&dead1);
		inst_close(&dead2);
		x = start_req(&r);
		ok = x && send_ok(x->a, &r, 1) && recv_descs(f2a.a, &r, 1, WAIT_MS) == 1;
		verdicts_read(before);
		ok = ok && send_ok(f2a.a, &r, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
		tap_ok(ok && verdicts_moved(before, SPRY_V_NO_INSTANCE, 1) &&
		       d.status == SPRY_ST_NO_INSTANCE && !inst_quarantined(&f2a) &&
		       inflight(&f2a) == 0,
		       "all instances closed: NO_INSTANCE to the origin, sender fine");
	}
	fn_put(F3, C1, l3, 1);

	/* The origin is gone by the time the last hop is done. */
	if (inst_new(&o2, 0, SPRY_FN_ORIGIN, 9, SPRY_ROLE_ORIGIN, true)) {
		tap_ok(0, "fallback: setup");
		return;
	}
	d = mkdesc(C2, next_req++);
	ok = send_ok(o2.a, &d, 1) && recv_descs(f4a.a, &r, 1, WAIT_MS) == 1 &&
	     r.origin == o2.inst;
	close(o2.a);
	o2.a = -1;
	verdicts_read(before);
	ok = ok && send_ok(f4a.a, &r, 1) && recv_descs(f4a.b, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_FALLBACK, 1) && d.req_id == r.req_id &&
	       !inst_quarantined(&f4a) && inflight(&f4a) == 0,
	       "origin gone: FALLBACK, the bytes reach the sender's TCP peer");
	inst_close(&o2);
}

/* Revoke a hand-off: the sender is quarantined, others carry on. */
static void test_revoke(void)
{
	const struct inst *l2[] = { &f2a }, *lr[1];
	struct spry_fn_stats st0, st1;
	__u64 before[SPRY_V_MAX];
	struct spry_desc r;
	struct inst *x, f2r;
	int ev0;
	bool ok;

	if (inst_new(&f2r, C1, F2, 8, SPRY_ROLE_FN, true)) {
		tap_ok(0, "revoke: setup");
		return;
	}
	lr[0] = &f2r;
	fn_put(F2, C1, lr, 1);
	x = start_req(&r);
	ok = x && send_ok(x->a, &r, 1) && recv_descs(f2r.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok, "revoke: request reached the f2 instance");

	auth_set(C1, F2, F3, false);
	fn_stats_read(F2, &st0);
	ev0 = n_events;
	verdicts_read(before);
	errno = 0;
	ok = send_descs(f2r.a, &r, 1) < 0 && errno == EACCES;
	n_drops++;
	tap_ok(ok && verdicts_moved(before, SPRY_V_DROP_AUTH, 1),
	       "revoked f2 -> f3: DROP_AUTH, send fails with EACCES");

	verdicts_read(before);
	errno = 0;
	ok = send_descs(f2r.a, &r, 1) < 0 && errno == EACCES;
	errno = 0;
	r.status = SPRY_ST_FN_ERROR;	/* even a valid error report */
	ok = ok && send_descs(f2r.a, &r, 1) < 0 && errno == EACCES;
	tap_ok(ok && verdicts_moved(before, 0, 0),
	       "quarantine is sticky: later sends fail with EACCES, router not run");

	fn_stats_read(F2, &st1);
	tap_ok(sender_quarantined(&f2r) && inst_quarantined(&f2r) &&
	       st1.dropped - st0.dropped == 1,
	       "quarantine: sender storage and spry_inst flagged, fn dropped +1");

	ring_buffer__consume(rb);
	tap_ok(n_events == ev0 + 1 && last_ev.verdict == SPRY_V_DROP_AUTH &&
	       last_ev.chain == C1 && last_ev.fn == F2 && last_ev.inst == f2r.inst &&
	       last_ev.desc_chain == C1 && last_ev.hop == 1 && last_ev.req_id == r.req_id &&
	       last_ev.ts_ns != 0,
	       "event: DROP_AUTH from chain 1 fn %u inst %u with the req_id", F2, f2r.inst);

	/* Others are unaffected: f1 still hands to f2, and on. */
	fn_put(F2, C1, l2, 1);
	auth_set(C1, F2, F3, true);
	x = start_req(&r);
	verdicts_read(before);
	ok = x && send_ok(x->a, &r, 1) && relay(&f2a, &r, 1) && relay(&f3a, &r, 1) &&
	     recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	tap_ok(ok && verdicts_moved2(before, SPRY_V_FORWARD, 2, SPRY_V_DONE, 1) &&
	       !inst_quarantined(x) && !inst_quarantined(&f2a),
	       "other senders unaffected: f1 -> f2 -> f3 -> origin");
	inst_close(&f2r);
}

/* Blocked readers wake up for a redirected descriptor. */
struct waiter {
	int		fd;
	bool		epoll;
	pid_t		tid;
	int		got;
	struct spry_desc d;
};

static void *waiter_run(void *arg)
{
	struct waiter *w = arg;
	struct epoll_event ev = { .events = EPOLLIN };
	struct timeval tv = { .tv_sec = 3 };
	int ep;

	w->tid = syscall(SYS_gettid);
	if (w->epoll) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0)
			return NULL;
		ev.data.fd = w->fd;
		if (!epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) &&
		    epoll_wait(ep, &ev, 1, 3000) == 1)
			w->got = recv_descs(w->fd, &w->d, 1, 0);
		close(ep);
	} else {
		setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		w->got = recv(w->fd, &w->d, DSZ, 0) == DSZ;
		tv.tv_sec = 0;
		setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return NULL;
}

/* Wait until thread @tid sleeps (state S), at most 1 s. */
static void wait_sleeping(struct waiter *w)
{
	struct timespec t0, step = { .tv_nsec = 1000000 };
	char path[64], buf[256], *p;
	FILE *f;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < 1000) {
		pid_t tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);

		if (tid) {
			snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
			f = fopen(path, "r");
			if (f) {
				p = fgets(buf, sizeof(buf), f);
				fclose(f);
				p = p ? strrchr(buf, ')') : NULL;
				if (p && p[1] == ' ' && p[2] == 'S')
					return;
			}
		}
		nanosleep(&step, NULL);
	}
}

static void test_wakeup(bool use_epoll)
{
	struct waiter w = { .fd = f4a.a, .epoll = use_epoll };
	struct spry_desc d = mkdesc(C2, next_req++);
	struct timespec t0;
	pthread_t th;
	long ms;
	bool ok;

	if (pthread_create(&th, NULL, waiter_run, &w)) {
		tap_ok(0, "wake-up: thread");
		return;
	}
	wait_sleeping(&w);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok = send_ok(origin.a, &d, 1);
	pthread_join(th, NULL);
	ms = ms_since(&t0);
	ok = ok && w.got == 1 && w.d.req_id == d.req_id && ms < 2000;
	tap_ok(ok, "wake-up: a thread blocked in %s woke for a redirect (%ld ms)",
	       use_epoll ? "epoll_wait" : "recv", ms);
	if (w.got == 1 && send_ok(f4a.a, &w.d, 1))
		recv_descs(origin.a, &d, 1, WAIT_MS);
}

static void test_final(void)
{
	bool ok = true;
	unsigned int i;

	for (i = 0; i < sizeof(all_live) / sizeof(all_live[0]); i++) {
		if (all_live[i] == &f4b)
			continue;	/* closed on purpose */
		if (inflight(all_live[i]) != 0 || inst_quarantined(all_live[i])) {
			tap_diag("fn %u inst %u: inflight %d", all_live[i]->fn,
				 all_live[i]->inst, inflight(all_live[i]));
			ok = false;
		}
	}
	tap_ok(ok, "every live instance ends with nothing in flight, unquarantined");
	ring_buffer__consume(rb);
	tap_ok(n_events == n_drops, "one event per drop and none otherwise (%d / %d)",
	       n_events, n_drops);
}

/* ------------------------------------------------------------- main */

static int load(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = pin_dir);
	int err;

	skel = skmsg_route__open_opts(&oopts);
	if (!skel)
		return -errno;
	err = skmsg_route__load(skel);
	if (err)
		return err;
	m_socks = bpf_map__fd(skel->maps.spry_socks);
	m_senders = bpf_map__fd(skel->maps.spry_senders);
	m_chains = bpf_map__fd(skel->maps.spry_chains);
	m_fns = bpf_map__fd(skel->maps.spry_fns);
	m_auth = bpf_map__fd(skel->maps.spry_auth);
	m_inst = bpf_map__fd(skel->maps.spry_inst);
	m_verdicts = bpf_map__fd(skel->maps.spry_verdicts);
	m_stats = bpf_map__fd(skel->maps.spry_fn_stats);
	m_reqloc = bpf_map__fd(skel->maps.spry_reqloc);
	m_procs = bpf_map__fd(skel->maps.spry_procs);
	m_fanrec = bpf_map__fd(skel->maps.spry_fanrec);
	prog_fd = bpf_program__fd(skel->progs.skmsg_route);
	/* run_cnt counts while this fd is open (kernel.bpf_stats_enabled). */
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0)
		tap_diag("bpf_enable_stats: %s (run counts will not match)",
			 strerror(errno));
	rb = ring_buffer__new(bpf_map__fd(skel->maps.spry_events), on_event, NULL, NULL);
	if (!rb)
		return -errno;
	if (bpf_prog_attach(bpf_program__fd(skel->progs.skmsg_route), m_socks,
			    BPF_SK_MSG_VERDICT, 0))
		return -errno;
	return 0;
}

static void teardown(void)
{
	struct inst *xs[] = { &origin, &f1a, &f1b, &f2a, &f3a, &ga, &f4a, &f4b,
			      &origin2, &f5a, &f6a, &ha };
	unsigned int i;

	for (i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		inst_close(xs[i]);
	if (plain_a >= 0)
		close(plain_a);
	if (plain_b >= 0)
		close(plain_b);
	if (listen_fd >= 0)
		close(listen_fd);
	ring_buffer__free(rb);
	if (stats_fd >= 0)
		close(stats_fd);
	if (skel) {
		bpf_prog_detach2(bpf_program__fd(skel->progs.skmsg_route), m_socks,
				 BPF_SK_MSG_VERDICT);
		bpf_object__unpin_maps(skel->obj, NULL);
		skmsg_route__destroy(skel);
	}
	if (rmdir(pin_dir))
		tap_diag("rmdir %s: %s", pin_dir, strerror(errno));
	free(percpu_buf);
}

/* The first case: every other one runs in the world it sets up. */
static void test_setup(void)
{
	int err;

	if (!bpf_env_loaded(load(), "private pins, attached to spry_socks"))
		return;
	err = listener_open();
	if (!err)
		err = world_setup();
	if (!tap_ok(!err, "sockets and maps of the test world set up (%s)",
		    err ? strerror(-err) : "ok"))
		tap_skip_rest("no test world");
}

/* ------------------------------------------------------------ processes */

static int proc_put(__u16 chain, __u64 id, __u16 inst, bool active)
{
	struct spry_proc_key key = { .chain = chain, .id = id };
	struct spry_proc val = { .flags = active ? SPRY_PF_ACTIVE : 0, .inst = inst };

	return bpf_map_update_elem(m_procs, &key, &val, BPF_ANY) ? -errno : 0;
}

static int app_put(__u16 id, __u16 fn)
{
	struct spry_chain c;
	__u32 key = id;
	int err;

	err = chain_put(id, &fn, 1, true);
	if (err)
		return err;
	if (bpf_map_lookup_elem(m_chains, &key, &c))
		return -errno;
	c.flags |= SPRY_CF_APP;
	if (bpf_map_update_elem(m_chains, &key, &c, BPF_ANY))
		return -errno;
	return auth_set(id, 0, fn, true) ?: auth_set(id, fn, 0, true);
}

static struct inst pa, pb, qa, pc, pd;

/* A process request back at the origin with NO_PROCESS, no instance had it. */
static bool no_process(__u16 chain, __u64 id, const char *what)
{
	struct spry_desc d = mkdesc(chain, next_req++), r;
	__u64 before[SPRY_V_MAX];
	bool ok;

	d.flags = SPRY_DF_STICKY;
	d.key = id;
	verdicts_read(before);
	ok = send_ok(origin.a, &d, 1) && recv_descs(origin.a, &r, 1, WAIT_MS) == 1;
	ok = ok && verdicts_moved(before, SPRY_V_NO_PROCESS, 1) &&
	     r.status == SPRY_ST_NO_PROCESS && r.req_id == d.req_id &&
	     quiet(pa.a, 20) && quiet(pb.a, 0) && quiet(qa.a, 0);
	return tap_ok(ok, "%s: NO_PROCESS back to the origin, no process had it", what);
}

/*
 * Cloud processes (docs/PROCESS.md): a request naming a process of an app
 * goes to that process's instance and no other; one that names a process
 * missing, not active, of another app, or whose socket closed goes back
 * to the origin with NO_PROCESS; a process cannot send into another app.
 */
static void test_process(void)
{
	const struct inst *lp[] = { &pa, &pb }, *lq[] = { &qa };
	struct spry_desc d, r;
	__u64 before[SPRY_V_MAX];
	int i, at_a = 0, at_b = 0;
	bool ok = true;

	if (app_put(C4, P) || app_put(C5, Q) ||
	    inst_new(&pa, C4, P, 0, SPRY_ROLE_FN, true) ||
	    inst_new(&pb, C4, P, 1, SPRY_ROLE_FN, true) ||
	    inst_new(&qa, C5, Q, 0, SPRY_ROLE_FN, true) ||
	    fn_put(P, C4, lp, 2) || fn_put(Q, C5, lq, 1) ||
	    proc_put(C4, 100, pb.inst, true) || proc_put(C4, 101, pa.inst, true) ||
	    proc_put(C4, 102, pa.inst, false) || proc_put(C5, 200, qa.inst, true)) {
		tap_ok(0, "process: setup");
		return;
	}
	/* 100 requests alternating processes 100 and 101: each to its own. */
	verdicts_read(before);
	for (i = 0; i < 100 && ok; i++) {
		struct inst *want = i & 1 ? &pa : &pb;

		d = mkdesc(C4, next_req++);
		d.flags = SPRY_DF_STICKY;
		d.key = i & 1 ? 101 : 100;
		ok = send_ok(origin.a, &d, 1) && recv_descs(want->a, &r, 1, WAIT_MS) == 1 &&
		     r.req_id == d.req_id && r.inst == want->inst && r.hop == 0;
		r.inst = 31;	/* forged: back at the origin, inst is the sender's */
		ok = ok && send_ok(want->a, &r, 1) && recv_descs(origin.a, &r, 1, WAIT_MS) == 1 &&
		     r.status == SPRY_ST_OK && r.inst == want->inst;
		at_a += ok && want == &pa;
		at_b += ok && want == &pb;
	}
	tap_ok(ok && at_a == 50 && at_b == 50 &&
	       verdicts_moved2(before, SPRY_V_FORWARD, 100, SPRY_V_DONE, 100),
	       "process: 100 requests to processes 100 and 101, each at its own instance, "
	       "back with the sender's instance (%d / %d)", at_b, at_a);
	EXPECT_EQ(inflight(&pa) + inflight(&pb), 0, "process: nothing left in flight");

	no_process(C4, 999, "unknown process 999");
	no_process(C4, 102, "process 102 not active (allocated, swapped)");
	no_process(C4, 200, "app C4 naming C5's process 200");
	no_process(C5, 100, "app C5 naming C4's process 100");

	/* Without a key: any live process of the app, by load. */
	d = mkdesc(C4, next_req++);
	ok = send_ok(origin.a, &d, 1) && recv_any((struct inst *[]){ &pa, &pb }, 2, &r,
						  WAIT_MS) >= 0;
	ok = ok && send_ok(r.inst == pa.inst ? pa.a : pb.a, &r, 1) &&
	     recv_descs(origin.a, &r, 1, WAIT_MS) == 1 && r.status == SPRY_ST_OK;
	tap_ok(ok, "process: a request naming none goes to a live process of the app");

	/* A process's socket closed before spryd saw it: never another one. */
	inst_close(&pb);
	no_process(C4, 100, "process 100's socket closed, still in spry_procs");

	/* A process of C4 sending into app C5: dropped, quarantined. */
	d = mkdesc(C5, next_req++);
	inflight_set(&pa, 1);
	expect_drop(&pa, &d, sizeof(d), SPRY_V_DROP_CHAIN, "process of C4 sends into app C5");
	inst_close(&pa);
	inst_close(&qa);
}

/*
 * Fan-out over the processes of an app (docs/WORKFLOWS.md): a branch naming
 * a process reaches that process and no other; one naming a process not
 * active, unknown, of another app, or whose socket closed comes back to
 * its caller with NO_PROCESS.
 */
static void test_fan_process(void)
{
	const struct inst *lp[] = { &pc, &pd };
	struct inst pe;
	struct spry_desc d, c, a;
	__u64 before[SPRY_V_MAX];
	bool ok;
	static const struct { __u64 id; const char *what; } gone[] = {
		{ 302, "not active" }, { 999, "unknown" }, { 200, "of another app" },
		{ 303, "whose socket closed" },
	};
	unsigned int i;

	if (auth_set(C4, P, P, true) || inst_new(&pc, C4, P, 2, SPRY_ROLE_FN, true) ||
	    inst_new(&pd, C4, P, 3, SPRY_ROLE_FN, true) ||
	    inst_new(&pe, C4, P, 4, SPRY_ROLE_FN, true) || fn_put(P, C4, lp, 2) ||
	    proc_put(C4, 300, pc.inst, true) || proc_put(C4, 301, pd.inst, true) ||
	    proc_put(C4, 302, pd.inst, false) || proc_put(C4, 303, pe.inst, true)) {
		tap_ok(0, "fan process: setup");
		return;
	}
	inst_close(&pe);
	/* process 300 holds a request from the origin */
	d = mkdesc(C4, next_req++);
	d.flags = SPRY_DF_STICKY;
	d.key = 300;
	ok = send_ok(origin.a, &d, 1) && recv_descs(pc.a, &d, 1, WAIT_MS) == 1;
	c = d;
	c.flags = SPRY_DF_CALL | SPRY_DF_FAN | SPRY_DF_STICKY;
	c.fn = P;
	c.key = 301;
	c.t_start = 7;
	verdicts_read(before);
	ok = ok && send_ok(pc.a, &c, 1) && recv_descs(pd.a, &a, 1, WAIT_MS) == 1;
	tap_ok(ok && a.ret_inst == pc.inst && a.key == 301 && a.t_start == 7 &&
	       quiet(pc.a, 0) && verdicts_moved(before, SPRY_V_CALL, 1) &&
	       inflight(&pc) == 1 && inflight(&pd) == 1,
	       "fan process: a branch of process 300 naming process 301 reaches it");
	a.flags = SPRY_DF_REPLY | SPRY_DF_FAN | SPRY_DF_STICKY;
	ok = ok && send_ok(pd.a, &a, 1) && recv_descs(pc.a, &a, 1, WAIT_MS) == 1;
	tap_ok(ok && a.status == SPRY_ST_OK && a.t_start == 7 && inflight(&pc) == 1 &&
	       inflight(&pd) == 0, "fan process: its answer back at process 300");
	for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		c.key = gone[i].id;
		verdicts_read(before);
		ok = ok && send_ok(pc.a, &c, 1) && recv_descs(pc.a, &a, 1, WAIT_MS) == 1;
		tap_ok(ok && a.status == SPRY_ST_NO_PROCESS &&
		       a.flags == (SPRY_DF_REPLY | SPRY_DF_FAN) && quiet(pd.a, 0) &&
		       quiet(origin.a, 0) && inflight(&pc) == 1 &&
		       verdicts_moved(before, SPRY_V_NO_PROCESS, 1),
		       "fan process: a branch naming process %llu (%s) back to its caller, no_process",
		       (unsigned long long)gone[i].id, gone[i].what);
	}
	/* The request goes back to the origin: nothing left in flight. */
	ok = ok && send_ok(pc.a, &d, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && d.status == SPRY_ST_OK && inflight(&pc) == 0 && inflight(&pd) == 0 &&
	       !sender_quarantined(&pc), "fan process: the request done, nothing in flight");
	inst_close(&pc);
	inst_close(&pd);
}

/*
 * A conditional next inside an app (docs/WORKFLOWS.md): handler 1 of app
 * C4 may pick handler 2 (SPRY_AK_APP_NEXT {C4, 1, 2}).  The pick goes back
 * into the very process that sent it, with fn = 2; the handler a request
 * is at is the router's (spry_reqloc.handler), never the sender's word.
 */
static struct inst pf, pg;

static int app_next_set(__u16 chain, __u16 from, __u16 to, bool allow)
{
	struct spry_auth_key key = { .chain = chain, .from = from, .to = to,
				     .kind = SPRY_AK_APP_NEXT };
	__u32 one = 1;

	if (allow)
		return bpf_map_update_elem(m_auth, &key, &one, BPF_ANY) ? -errno : 0;
	return bpf_map_delete_elem(m_auth, &key) ? -errno : 0;
}

static int reqloc_get(__u64 req_id, struct spry_reqloc *loc)
{
	__u32 slot = req_id & (SPRY_REQ_SLOTS - 1);

	return bpf_map_lookup_elem(m_reqloc, &slot, loc) ? -errno : 0;
}

/* Process 400 (pf) gets a request for handler @handler from the origin. */
static bool app_req(__u16 handler, struct spry_desc *r)
{
	struct spry_desc d = mkdesc(C4, next_req++);

	d.flags = SPRY_DF_STICKY;
	d.key = 400;
	d.fn = handler;
	return send_ok(origin.a, &d, 1) && recv_descs(pf.a, r, 1, WAIT_MS) == 1 &&
	       r->req_id == d.req_id;
}

/* @x picks handler @to for @r; refused: back at the origin, counted, not quarantined. */
static void app_next_refused(struct inst *x, struct spry_desc *r, __u16 to, const char *what)
{
	struct spry_desc d;
	__u64 before[SPRY_V_MAX];
	bool ok;

	verdicts_read(before);
	r->flags = SPRY_DF_NEXT | SPRY_DF_STICKY;
	r->fn = to;
	ok = send_ok(x->a, r, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && d.status == SPRY_ST_NEXT_REFUSED && d.req_id == r->req_id &&
	       verdicts_moved(before, SPRY_V_NEXT_REFUSED, 1) && !sender_quarantined(x) &&
	       !inst_quarantined(x) && inflight(x) == 0 && quiet(pf.a, 0) && quiet(pg.a, 0),
	       "app next: %s: next_refused to the origin (status %u), NEXT_REFUSED +1, "
	       "sender not quarantined", what, d.status);
}

static void test_app_next(void)
{
	const struct inst *lp[] = { &pf, &pg };
	struct spry_reqloc loc;
	struct spry_desc r, d, c;
	__u64 before[SPRY_V_MAX];
	bool ok;
	int at;

	if (app_next_set(C4, 1, 2, true) || auth_set(C4, P, P, true) ||
	    inst_new(&pf, C4, P, 5, SPRY_ROLE_FN, true) ||
	    inst_new(&pg, C4, P, 6, SPRY_ROLE_FN, true) || fn_put(P, C4, lp, 2) ||
	    proc_put(C4, 400, pf.inst, true) || proc_put(C4, 401, pg.inst, true)) {
		tap_ok(0, "app next: setup");
		return;
	}
	/* Declared: 1 -> 2, back into the same process. */
	ok = app_req(1, &r) && !reqloc_get(r.req_id, &loc);
	tap_ok(ok && loc.handler == 1 && loc.inst == pf.inst,
	       "app next: the origin's request for handler 1 at process 400, reqloc handler %u",
	       loc.handler);
	verdicts_read(before);
	r.flags = SPRY_DF_NEXT | SPRY_DF_STICKY;
	r.fn = 2;
	ok = ok && send_ok(pf.a, &r, 1) && recv_descs(pf.a, &d, 1, WAIT_MS) == 1 &&
	     !reqloc_get(r.req_id, &loc);
	tap_ok(ok && d.req_id == r.req_id && d.fn == 2 && d.flags == SPRY_DF_STICKY &&
	       d.inst == pf.inst && d.hop == 0 && loc.handler == 2 &&
	       verdicts_moved(before, SPRY_V_NEXT, 1) && inflight(&pf) == 1 &&
	       quiet(pg.a, 0) && quiet(origin.a, 0),
	       "app next: handler 1 picks 2 (declared): back into process 400 with fn 2 "
	       "(got %u), NEXT +1, reqloc handler %u", d.fn, loc.handler);
	/* At handler 2 now: 2 -> 1 is not declared. */
	app_next_refused(&pf, &d, 1, "handler 2 picks 1 (not declared)");

	/* Undeclared targets: 3, 0, one past the handler numbers. */
	{
		static const __u16 bad[] = { 3, 0, SPRY_RL_CALLEE, 1000 };
		char what[64];
		unsigned int i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(what, sizeof(what), "handler 1 picks %u", bad[i]);
			if (!app_req(1, &r)) {
				tap_ok(0, "app next: %s: setup", what);
				continue;
			}
			app_next_refused(&pf, &r, bad[i], what);
		}
	}
	/* The sender's own word does not count: a request at handler 3 claiming 1. */
	ok = app_req(3, &r);
	if (ok)
		app_next_refused(&pf, &r, 2, "at handler 3 (the router's word), picks 2");
	/* A process that does not hold the request cannot move it. */
	if (app_req(1, &r) && !inflight_set(&pg, 1)) {
		c = r;
		app_next_refused(&pg, &c, 2, "process 401 picks for process 400's request");
		inflight_set(&pg, 0);
		/* the real holder still may */
		r.flags = SPRY_DF_NEXT | SPRY_DF_STICKY;
		r.fn = 2;
		ok = send_ok(pf.a, &r, 1) && recv_descs(pf.a, &d, 1, WAIT_MS) == 1 &&
		     d.fn == 2;
		ok = ok && send_ok(pf.a, &d, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1 &&
		     d.status == SPRY_ST_OK;
		tap_ok(ok && inflight(&pf) == 0,
		       "app next: ... while process 400, which holds it, picks 2 and is done");
	} else {
		tap_ok(0, "app next: holder setup");
	}
	/* A callee holding the caller's request cannot pick for it. */
	ok = app_req(1, &r);
	c = r;
	c.flags = SPRY_DF_CALL | SPRY_DF_STICKY;
	c.fn = P;
	c.key = 401;
	ok = ok && send_ok(pf.a, &c, 1) && recv_descs(pg.a, &c, 1, WAIT_MS) == 1 &&
	     !reqloc_get(r.req_id, &loc);
	tap_ok(ok && loc.inst == pg.inst && loc.handler == (1 | SPRY_RL_CALLEE),
	       "app next: a call into process 401: reqloc at it, handler %#x (1, callee)",
	       loc.handler);
	if (ok) {
		d = c;
		d.flags = SPRY_DF_STICKY;
		app_next_refused(&pg, &d, 2, "the callee picks for its caller's request");
	}
	/* The caller, answered, may pick again (the reply gives its handler back). */
	ok = app_req(1, &r);
	c = r;
	c.flags = SPRY_DF_CALL | SPRY_DF_STICKY;
	c.fn = P;
	c.key = 401;
	ok = ok && send_ok(pf.a, &c, 1) && recv_descs(pg.a, &c, 1, WAIT_MS) == 1;
	c.flags = SPRY_DF_REPLY | SPRY_DF_STICKY;
	ok = ok && send_ok(pg.a, &c, 1) && recv_descs(pf.a, &c, 1, WAIT_MS) == 1 &&
	     !reqloc_get(r.req_id, &loc) && loc.handler == 1 && loc.inst == pf.inst;
	r.flags = SPRY_DF_NEXT | SPRY_DF_STICKY;
	r.fn = 2;
	ok = ok && send_ok(pf.a, &r, 1) && recv_descs(pf.a, &d, 1, WAIT_MS) == 1 && d.fn == 2;
	ok = ok && send_ok(pf.a, &d, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1;
	tap_ok(ok && d.status == SPRY_ST_OK && inflight(&pf) == 0 && inflight(&pg) == 0,
	       "app next: a caller answered picks 2: into its own process, then done");

	/* No process named (by load): the pick stays in the process that had it. */
	d = mkdesc(C4, next_req++);
	d.fn = 1;
	ok = send_ok(origin.a, &d, 1) &&
	     (at = recv_any((struct inst *[]){ &pf, &pg }, 2, &r, WAIT_MS)) >= 0;
	if (ok) {
		struct inst *x = at ? &pg : &pf, *y = at ? &pf : &pg;

		r.flags = SPRY_DF_NEXT;
		r.fn = 2;
		ok = send_ok(x->a, &r, 1) && recv_descs(x->a, &d, 1, WAIT_MS) == 1 &&
		     d.fn == 2 && quiet(y->a, 0);
		ok = ok && send_ok(x->a, &d, 1) && recv_descs(origin.a, &d, 1, WAIT_MS) == 1 &&
		     d.status == SPRY_ST_OK && d.inst == x->inst;
	}
	tap_ok(ok && inflight(&pf) == 0 && inflight(&pg) == 0,
	       "app next: a request naming no process: the pick stays in the process that had it");

	/* The check can fail: the authorization removed, 1 -> 2 is refused. */
	ok = !app_next_set(C4, 1, 2, false) && app_req(1, &r);
	if (ok)
		app_next_refused(&pf, &r, 2, "1 -> 2 with its authorization removed");
	else
		tap_ok(0, "app next: removing the authorization");
	EXPECT_EQ(inflight(&pf) + inflight(&pg), 0, "app next: nothing left in flight");
	inst_close(&pf);
	inst_close(&pg);
}

/* ------------------------------------------------------------ mailboxes */

static struct inst ma, mb, mc;

/* spry_inst of @x: its mail counts; proc_id as spryd writes it. */
static int mail_state(const struct inst *x, struct spry_inst_state *st)
{
	return inst_get(x->fn, x->inst, st);
}

static int proc_id_set(const struct inst *x, __u64 id)
{
	__u32 key = (__u32)x->fn * SPRY_MAX_INST + x->inst;
	struct spry_inst_state st;

	if (inst_get(x->fn, x->inst, &st))
		return -errno;
	st.proc_id = id;
	return bpf_map_update_elem(m_inst, &key, &st, BPF_ANY) ? -errno : 0;
}

/* A mail of @x's to process @to, mailbox @box, buffer at @off. */
static struct spry_desc mkmail(__u16 chain, __u64 to, __u8 box, __u64 seq, __u32 proof)
{
	struct spry_desc d = {
		.version = SPRY_DESC_VERSION,
		.flags = SPRY_DF_MAIL,
		.hop = box,
		.chain = chain,
		.fn = R,
		.req_id = seq,
		.off = 4096 * (seq % 64),
		.len = 5,
		.cap = 4096,
		.gen = 7,
		.key = to,
		.meta_len = proof,
	};
	return d;
}

/* The receiver's answer to @m (as a runtime writes it). */
static struct spry_desc mkanswer(const struct spry_desc *m, __u8 status)
{
	struct spry_desc a = *m;

	a.flags = SPRY_DF_MAIL | SPRY_DF_REPLY;
	a.status = status;
	return a;
}

static bool mail_world(void)
{
	const struct inst *lr[] = { &ma, &mb, &mc };

	return !(app_put(C6, R) ||
		 inst_new(&ma, C6, R, 0, SPRY_ROLE_FN, true) ||
		 inst_new(&mb, C6, R, 1, SPRY_ROLE_FN, true) ||
		 inst_new(&mc, C6, R, 2, SPRY_ROLE_FN, true) ||
		 fn_put(R, C6, lr, 3) ||
		 proc_put(C6, 300, ma.inst, true) || proc_put(C6, 301, mb.inst, true) ||
		 proc_put(C6, 302, mc.inst, true) || proc_put(C6, 303, 7, false) ||
		 proc_id_set(&ma, 300) || proc_id_set(&mb, 301) || proc_id_set(&mc, 302));
}

/*
 * Every instance of @xs (@n of the app's): a sender within its bound, a
 * receiver holding no more than the senders may have out (by each and in
 * all), inflight untouched.
 */
static bool mail_invariants(const struct inst *const *xs, int n)
{
	struct spry_inst_state st;
	bool ok = true, from_ok;
	__u64 sum;
	int i, j;

	for (i = 0; i < n; i++) {
		if (mail_state(xs[i], &st))
			return false;
		from_ok = true;
		for (sum = 0, j = 0; j < SPRY_MAX_INST; j++) {
			sum += st.mail_from[j];
			from_ok &= st.mail_from[j] <= SPRY_MAIL_OUT_MAX;
		}
		if (st.mail_out + st.mail_unread > SPRY_MAIL_OUT_MAX || !from_ok ||
		    st.mail_in > (__u32)n * SPRY_MAIL_OUT_MAX || st.inflight != 0) {
			tap_diag("inst %u: out %u unread %u in %u (from %llu) inflight %d",
				 xs[i]->inst, st.mail_out, st.mail_unread, st.mail_in,
				 (unsigned long long)sum, st.inflight);
			ok = false;
		}
	}
	return ok;
}

static void test_mail(void)
{
	struct spry_desc m, a, r[80];
	struct spry_inst_state st, st2;
	__u64 before[SPRY_V_MAX];
	__u32 tok = 0;
	int i, n;
	bool ok;

	/*
	 * Others write a process's mail counters (senders, answers) while
	 * the router writes its inflight: never on the same cache line.
	 */
	tap_ok(offsetof(struct spry_inst_state, mail_out) / 64 !=
	       offsetof(struct spry_inst_state, inflight) / 64 &&
	       offsetof(struct spry_inst_state, mail_out) % 64 == 0 &&
	       sizeof(struct spry_inst_state) % 64 == 0,
	       "mail: counters on their own cache line (mail_out at %zu, inflight at %zu, size %zu)",
	       offsetof(struct spry_inst_state, mail_out),
	       offsetof(struct spry_inst_state, inflight), sizeof(struct spry_inst_state));
	if (!mail_world()) {
		tap_ok(0, "mail: setup");
		return;
	}
	/* a mail: to the named process, the sender's id written by the router */
	verdicts_read(before);
	m = mkmail(C6, 301, 3, 1, 0);
	m.key = 301;
	m.ret_inst = 17;	/* forged: the router writes the sender */
	ok = send_ok(ma.a, &m, 1) && recv_descs(mb.a, r, 1, WAIT_MS) == 1 &&
	     r[0].key == 300 && r[0].ret_inst == ma.inst && r[0].inst == mb.inst &&
	     r[0].hop == 3 && r[0].off == m.off && r[0].len == 5 && quiet(mc.a, 0);
	ok = ok && !mail_state(&ma, &st) && st.mail_out == 1 && st.inflight == 0 &&
	     !mail_state(&mb, &st2) && st2.mail_in == 1 && st2.mail_from[ma.inst] == 1 &&
	     st2.inflight == 0;
	tap_ok(ok && verdicts_moved(before, SPRY_V_MAIL, 1),
	       "mail: 300 -> 301 at 301's instance, from 300 (the router's word), counted "
	       "apart from inflight");
	/* its answer: to the sender, without a buffer, with a token */
	a = mkanswer(&r[0], SPRY_ST_OK);
	a.off = 8192;	/* forged: an answer names no buffer */
	a.cap = 4096;
	verdicts_read(before);
	ok = send_ok(mb.a, &a, 1) && recv_descs(ma.a, r, 1, WAIT_MS) == 1 &&
	     r[0].flags == (SPRY_DF_MAIL | SPRY_DF_REPLY) && r[0].req_id == 1 &&
	     r[0].off == 0 && r[0].cap == 0 && r[0].key == 301 && r[0].meta_len != 0;
	tok ^= r[0].meta_len;
	ok = ok && !mail_state(&ma, &st) && st.mail_out == 0 && st.mail_unread == 1 &&
	     st.mail_tok == tok && !mail_state(&mb, &st2) && st2.mail_in == 0;
	tap_ok(ok && verdicts_moved(before, SPRY_V_MAIL_ANSWER, 1),
	       "mail: the answer reaches the sender with no buffer and a token; counts moved");
	/* a mail showing the token proves the answer was read */
	m = mkmail(C6, 302, 0, 2, tok);
	ok = send_ok(ma.a, &m, 1) && recv_descs(mc.a, r, 1, WAIT_MS) == 1 &&
	     !mail_state(&ma, &st) && st.mail_out == 1 && st.mail_unread == 0;
	a = mkanswer(&r[0], SPRY_ST_MAILBOX_FULL);
	verdicts_read(before);
	ok = ok && send_ok(mc.a, &a, 1) && recv_descs(ma.a, r, 1, WAIT_MS) == 1 &&
	     r[0].status == SPRY_ST_MAILBOX_FULL && verdicts_moved(before, SPRY_V_MAIL_FULL, 1);
	tok ^= r[0].meta_len;
	tap_ok(ok, "mail: the proof settles what was read; a full mailbox's answer counted as mail_full");
	/* not active, unknown, another app's: back to the sender as an answer */
	verdicts_read(before);
	ok = true;
	for (i = 0; i < 3 && ok; i++) {
		__u64 to[] = { 303, 999, 100 };

		m = mkmail(C6, to[i], 1, 10 + i, tok);
		ok = send_ok(ma.a, &m, 1) && recv_descs(ma.a, r, 1, WAIT_MS) == 1 &&
		     r[0].flags == (SPRY_DF_MAIL | SPRY_DF_REPLY) &&
		     r[0].status == SPRY_ST_NO_PROCESS && r[0].off == m.off &&
		     r[0].gen == m.gen && r[0].req_id == m.req_id;
		tok ^= r[0].meta_len;
	}
	/* each mail's proof settled the answer before it: one unproven left */
	ok = ok && quiet(mb.a, 0) && quiet(mc.a, 0) && !mail_state(&ma, &st) &&
	     st.mail_out == 0 && st.mail_unread == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_MAIL_BOUNCE, 3),
	       "mail: to a process not active, unknown, or another app's id: back to the "
	       "sender with its buffer (NO_PROCESS)");
	/* a receiver answering another instance than the sender: spryd gets it */
	m = mkmail(C6, 301, 0, 20, 0);
	ok = send_ok(mc.a, &m, 1) && recv_descs(mb.a, r, 1, WAIT_MS) == 1;
	a = mkanswer(&r[0], SPRY_ST_OK);
	a.ret_inst = ma.inst;	/* forged */
	verdicts_read(before);
	ok = ok && send_ok(mb.a, &a, 1) && recv_descs(mb.b, r, 1, WAIT_MS) == 1 &&
	     quiet(ma.a, 50) && quiet(mc.a, 0) && !mail_state(&mb, &st2) && st2.mail_in == 0 &&
	     !mail_state(&mc, &st) && st.mail_out == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_MAIL_ORPHAN, 1),
	       "mail: an answer naming another instance than the sender goes to spryd's peer, "
	       "not to it");
	/* spryd answers for a receiver that died: to the sender */
	a = mkmail(C6, 0, 0, 0, 0);
	a.flags = SPRY_DF_MAIL | SPRY_DF_REPLY;
	a.status = SPRY_ST_NO_PROCESS;
	a.key = 301;
	a.ret_inst = mc.inst;
	verdicts_read(before);
	ok = send_ok(origin.a, &a, 1) && recv_descs(mc.a, r, 1, WAIT_MS) == 1 &&
	     r[0].status == SPRY_ST_NO_PROCESS && r[0].cap == 0 && !mail_state(&mc, &st) &&
	     st.mail_out == 0 && st.mail_unread == 1;
	tap_ok(ok && verdicts_moved(before, SPRY_V_MAIL_ANSWER, 1),
	       "mail: spryd's answer for a dead receiver gives the sender its count back");
	tap_ok(mail_invariants((const struct inst *[]){ &ma, &mb, &mc }, 3),
	       "mail: every bound holds, inflight untouched");

	/* a sender that never reads its answers: at most SPRY_MAIL_OUT_MAX of them */
	if (!mail_state(&ma, &st))
		n = SPRY_MAIL_OUT_MAX - (int)(st.mail_out + st.mail_unread);
	else
		n = 0;
	ok = n > 0;
	for (i = 0; i < n && ok; i++) {
		m = mkmail(C6, 301, 2, 100 + i, 0);	/* no proof */
		ok = send_ok(ma.a, &m, 1) && recv_descs(mb.a, r, 1, WAIT_MS) == 1;
		a = mkanswer(&r[0], SPRY_ST_OK);
		ok = ok && send_ok(mb.a, &a, 1);
	}
	tap_ok(ok, "mail: %d mails answered while the sender reads nothing", n);
	m = mkmail(C6, 301, 2, 999, 0x1234567);	/* a guessed proof */
	expect_drop(&ma, &m, sizeof(m), SPRY_V_DROP_FLOOD,
		    "mail: one more from a sender that did not read its answers");
	n = recv_descs(ma.a, r, 80, 200);
	tap_ok(n <= SPRY_MAIL_OUT_MAX, "mail: what waited unread at that sender stayed within "
	       "the bound (%d answers)", n);

	/* answers without mails, forged mails */
	a = mkanswer(&m, SPRY_ST_OK);
	a.ret_inst = mc.inst;
	expect_drop(&mb, &a, sizeof(a), SPRY_V_DROP_FLOOD, "mail: an answer to no mail");
	m = mkmail(C4, 100, 0, 1, 0);
	expect_drop(&mc, &m, sizeof(m), SPRY_V_DROP_CHAIN, "mail: into another app's chain");
	inst_new(&mc, C6, R, 2, SPRY_ROLE_FN, true);
	m = mkmail(C6, 300, 16, 1, 0);
	expect_drop(&mc, &m, sizeof(m), SPRY_V_DROP_HOP, "mail: mailbox 16");
	inst_new(&mc, C6, R, 2, SPRY_ROLE_FN, true);
	m = mkmail(C6, 300, 0, 1, 0);
	m.off = POOL_SIZE - 100;
	expect_drop(&mc, &m, sizeof(m), SPRY_V_DROP_BOUNDS, "mail: a buffer past the pool");
	inst_new(&mc, C6, R, 2, SPRY_ROLE_FN, true);
	m = mkmail(C6, 300, 0, 1, 0);
	m.flags |= SPRY_DF_CALL;
	expect_drop(&mc, &m, sizeof(m), SPRY_V_DROP_VERSION, "mail: MAIL with CALL");
	m = mkmail(C1, 300, 0, 1, 0);
	inflight_set(&f1a, 1);
	expect_drop(&f1a, &m, sizeof(m), SPRY_V_DROP_CHAIN, "mail: from a chain that is no app");
	inst_new(&f1a, C1, F1, 0, SPRY_ROLE_FN, true);
	m = mkmail(C6, 301, 0, 1, 0);
	m.flags = SPRY_DF_MAIL;
	expect_drop(&origin2, &m, sizeof(m), SPRY_V_DROP_VERSION, "mail: a mail from an origin");
	inst_close(&ma);
	inst_close(&mb);
	inst_close(&mc);
}

/* Random mail descriptors from the app's instances: never a bound broken. */
static void test_mail_fuzz(void)
{
	struct inst *xs[] = { &ma, &mb, &mc };
	struct spry_desc d, r[64];
	unsigned int seed = 12;
	int i, k, drops = 0, passed = 0;
	bool ok = true;

	if (!mail_world()) {
		tap_ok(0, "mail fuzz: setup");
		return;
	}
	for (i = 0; i < 1500 && ok; i++) {
		int xi = rand_r(&seed) % 3;
		struct inst *x = xs[xi];
		ssize_t w;

		for (k = 0; k < DSZ; k++)
			((__u8 *)&d)[k] = (__u8)rand_r(&seed);
		d.version = rand_r(&seed) % 16 ? SPRY_DESC_VERSION : d.version;
		d.flags = rand_r(&seed) % 8 ? SPRY_DF_MAIL | (rand_r(&seed) % 2 ? SPRY_DF_REPLY : 0)
					    : d.flags | SPRY_DF_MAIL;
		d.chain = rand_r(&seed) % 8 ? C6 : d.chain;
		d.hop %= rand_r(&seed) % 8 ? SPRY_MAIL_BOXES : 256;
		d.key = 300 + rand_r(&seed) % (rand_r(&seed) % 8 ? 4 : 1000);
		d.ret_inst %= rand_r(&seed) % 4 ? 3 : 65535;
		if (rand_r(&seed) % 4) {
			d.off %= POOL_SIZE;
			d.cap %= 8192;
			d.len = d.cap ? d.len % d.cap : 0;
		}
		w = send(x->a, &d, sizeof(d), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EACCES) {
			drops++;
			n_drops++;
			inst_close(x);
			ok = !inst_new(x, C6, R, (__u16)xi, SPRY_ROLE_FN, true) &&
			     !proc_id_set(x, 300 + xi);
		} else if (w != sizeof(d)) {
			tap_diag("send: %zd (%s)", w, w < 0 ? strerror(errno) : "short");
			ok = false;
		} else {
			passed++;
		}
		/* whatever arrived is read, as a runtime would (not answered) */
		for (k = 0; k < 3; k++)
			while (recv_descs(xs[k]->a, r, 64, 0) > 0)
				;
		if (i % 50 == 0)
			ok = ok && mail_invariants((const struct inst *const *)xs, 3);
	}
	ring_buffer__consume(rb);
	ok = ok && mail_invariants((const struct inst *const *)xs, 3);
	tap_ok(ok && drops > 0 && passed > 0,
	       "mail fuzz: 1500 random mail descriptors (%d dropped, %d passed): every "
	       "bound holds", drops, passed);
	for (k = 0; k < 3; k++)
		inst_close(xs[k]);
}

static void test_batch_16(void) { test_batch(16, 0); }
static void test_batch_64(void) { test_batch(64, 0); }
static void test_batch_600(void) { test_batch(600, 0); }
static void test_batch_600_skew(void) { test_batch(600, 36); }
static void test_wakeup_epoll(void) { test_wakeup(true); }
static void test_wakeup_recv(void) { test_wakeup(false); }

static const struct tap_case cases[] = {
	TAP_CASE(test_setup, "setup: skeleton loaded, sockets and maps of the test world"),
	TAP_CASE(test_chain, "origin -> F1 -> F2 -> F3 -> origin, every hop rewritten and counted"),
	TAP_CASE(test_batch_16, "a send of 16 descriptors over two chains, each routed as if alone"),
	TAP_CASE(test_batch_64, "a send of 64 descriptors over two chains, each routed as if alone"),
	TAP_CASE(test_batch_600, "a send of 600 descriptors over two chains, each routed as if alone"),
	TAP_CASE(test_batch_600_skew, "600 descriptors straddling a page end: pulled and routed alone"),
	TAP_CASE(test_partial, "one and a half descriptors: the first goes, the short tail does not"),
	TAP_CASE(test_run_chain, "64 descriptors per hop in one router run each, counted as if alone"),
	TAP_CASE(test_run_origin_mix, "an origin's mixed batch: a run ends at a chain change and a sticky key"),
	TAP_CASE(test_run_fn_mix, "a function's mixed batch: each descriptor goes where it would alone"),
	TAP_CASE(test_run_origins, "DONE runs: one per origin"),
	TAP_CASE(test_run_drops, "a bad descriptor mid-batch: the run stops there, the sender is quarantined"),
	TAP_CASE(test_balance, "two live instances: spread, stickiness, a closed instance"),
	TAP_CASE(test_call, "calls: f1 -> g -> back to the very f1 instance that called"),
	TAP_CASE(test_forged, "forged descriptors (bad flags, hops, bounds, calls, senders) dropped, each with its verdict"),
	TAP_CASE(test_flood, "the flood bound: descriptors never given are DROP_FLOOD, quarantine"),
	TAP_CASE(test_next, "conditional next: an allowed pick goes there, a refused one to the origin"),
	TAP_CASE(test_fan, "fan-out: branches out and back without touching the caller's in-flight, bounded"),
	TAP_CASE(test_errors, "ERROR, NO_CHAIN, NO_INSTANCE, FALLBACK: back to the origin or its TCP peer, sender fine"),
	TAP_CASE(test_revoke, "a revoked hand-off quarantines its sender, others carry on"),
	TAP_CASE(test_process, "cloud processes: a request naming a process reaches it and no other"),
	TAP_CASE(test_fan_process, "fan-out over processes: a branch reaches the process it names, else back to its caller"),
	TAP_CASE(test_app_next, "app next: a declared pick back into the same process, any other refused"),
	TAP_CASE(test_mail, "mailboxes: mails and answers between an app's processes, every bound"),
	TAP_CASE(test_mail_fuzz, "mailboxes: random mail descriptors never break a bound"),
	TAP_CASE(test_wakeup_epoll, "a thread blocked in epoll_wait wakes for a redirect"),
	TAP_CASE(test_wakeup_recv, "a thread blocked in recv wakes for a redirect"),
	TAP_CASE(test_final, "the end: nothing in flight, one event per drop"),
};

int main(void)
{
	struct inst *xs[] = { &origin, &f1a, &f1b, &f2a, &f3a, &ga, &f4a, &f4b,
			      &origin2, &f5a, &f6a, &ha, &pc, &pd, &pf, &pg };
	unsigned int i;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		xs[i]->a = xs[i]->b = -1;
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		tap_skip_all("cannot count CPUs");
	bpf_env_enter("router", pin_dir, sizeof(pin_dir));
	percpu_buf = calloc(ncpus, sizeof(struct spry_fn_stats));
	if (!percpu_buf) {
		rmdir(pin_dir);
		tap_bail_out("out of memory");
	}
	ret = tap_run_cases(cases, TAP_N(cases));
	teardown();
	return ret;
}
