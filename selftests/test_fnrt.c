// SPDX-License-Identifier: GPL-2.0-only
/*
 * The function runtime (fn-runtime/runtime.c) against a fake spryd: this
 * program plays spryd's part of the control protocol, creates a pool, and
 * writes descriptors straight onto its end of the function's TCP
 * connection (no router involved: the bytes arrive as they were written,
 * and what the function sends comes back on the same connection).
 *
 * Runs as any user; needs no BPF.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"
#include "spry/spry.h"
#include "selftests/tap.h"

#define CHAIN_ID	7
#define FN_ID		3
#define BUF_SIZE	256
#define LARGE_SIZE	4096
#define N_BUFS		128
#define N_LARGE		8
#define TIMEOUT_MS	3000
#define CALLEE_ID	5
#define OTHER_ID	6

struct fake {
	char		dir[64];
	char		path[96];
	int		lsn;		/* control listener */
	int		tcp_lsn;	/* TCP listener */
	uint16_t	port;
	int		ctl;		/* accepted control connection */
	int		b;		/* spryd's end of the function's socket */
	struct spry_pool *pool;
	pid_t		pid;
	struct spry_ctl_register reg;
	bool		reg_sock_ok;
};

static struct fake f;	/* the fake spryd (defined below; the child reads its port) */

/* ---------------------------------------------------- the child: handler */

/* Metadata value @key as a NUL-terminated string in @out ("" if absent). */
static void meta_str(struct spry_req *req, const char *key, char *out, size_t size)
{
	size_t len = 0;
	const char *v = spry_req_meta(req, key, &len);

	if (!v || len >= size)
		len = 0;
	if (len)
		memcpy(out, v, len);
	out[len] = '\0';
}

/* The payload becomes @s. */
static int reply_str(struct spry_req *req, const char *s)
{
	size_t n = strlen(s);
	void *p = spry_req_resize(req, n);

	if (!p)
		return -errno;
	memcpy(p, s, n);
	return spry_req_set_len(req, n);
}

/* op setmeta: three keys, then one rewritten longer; payload kept. */
static int op_setmeta(struct spry_req *req)
{
	int ret;

	ret = spry_req_set_meta(req, "x-a", "1");
	ret = ret ?: spry_req_set_status(req, 201);
	ret = ret ?: spry_req_set_meta(req, SPRY_META_CONTENT_TYPE, "text/plain");
	ret = ret ?: spry_req_set_meta(req, "X-A", "22");
	return ret;
}

/*
 * op reply: spry_req_reply() with a status, a content type and a body of
 * the handler's; op slice: a slice of the payload ("x-at" bytes in) as
 * the body, with a content type that may move the payload; op error:
 * spry_req_error() with a message of "x-len" bytes (default "field x: 7").
 */
static int op_reply(struct spry_req *req, const char *op, size_t oplen)
{
	char msg[400], v[16];
	uint64_t at, n;
	uint8_t *p;
	size_t len;

	if (oplen == 5 && !memcmp(op, "reply", 5))
		return spry_req_reply(req, 201, "application/json", "{\"ok\":true}", 11);
	p = spry_req_data(req, &len);
	meta_str(req, "x-at", v, sizeof(v));
	if (oplen == 5 && !memcmp(op, "slice", 5))
		return spry_num__parse(v, NULL, 0, len, &at) ?:
		       spry_req_reply(req, 0, "text/plain", p + at, len - at);
	meta_str(req, "x-len", v, sizeof(v));
	if (!*v)
		return spry_req_error(req, 422, -EINVAL, "field %s: %d", "x", 7);
	if (spry_num__parse(v, NULL, 0, sizeof(msg) - 1, &n))
		return -EINVAL;
	memset(msg, 'm', n);
	msg[n] = '\0';
	return spry_req_error(req, 400, -EBADMSG, "%s", msg);
}

/* op badmeta: every invalid key/value refused, metadata unchanged. */
static int op_badmeta(struct spry_req *req)
{
	const struct spry_desc *d = spry_req_desc(req);
	char before[256], key65[66];
	size_t ml = d->meta_len;
	const void *meta;
	bool ok;

	meta = (const char *)spry_req_data(req, NULL) - ml;
	if (ml > sizeof(before))
		return -EINVAL;
	memcpy(before, meta, ml);
	memset(key65, 'k', 65);
	key65[65] = '\0';
	ok = spry_req_set_meta(req, "", "v") == -EINVAL &&
	     spry_req_set_meta(req, NULL, "v") == -EINVAL &&
	     spry_req_set_meta(req, "k", NULL) == -EINVAL &&
	     spry_req_set_meta(req, "a:b", "v") == -EINVAL &&
	     spry_req_set_meta(req, "a b", "v") == -EINVAL &&
	     spry_req_set_meta(req, "k\n", "v") == -EINVAL &&
	     spry_req_set_meta(req, "k\x7f", "v") == -EINVAL &&
	     spry_req_set_meta(req, "k\xc3\xa9", "v") == -EINVAL &&
	     spry_req_set_meta(req, key65, "v") == -EINVAL &&
	     spry_req_set_meta(req, "k", "x\ny") == -EINVAL &&
	     spry_req_set_meta(req, "k", "x\r") == -EINVAL &&
	     spry_req_set_meta(req, "k", "tab\there") == -EINVAL &&
	     spry_req_set_status(req, 99) == -EINVAL &&
	     spry_req_set_status(req, 600) == -EINVAL &&
	     spry_req_desc(req)->meta_len == ml &&
	     !memcmp(before, (const char *)spry_req_data(req, NULL) - ml, ml);
	return reply_str(req, ok ? "ok" : "bad");
}

/*
 * op call: call "to" (metadata) with the payload, "timeout" ms (default
 * 1000), "key" (sticky, default 0); the payload becomes "got:<reply>" or
 * "err:<ret>".
 */
static int op_call(struct spry_req *req)
{
	char to[40], tmo[16], key[24], out[200], res[220];
	size_t len, olen = 0;
	uint64_t t = 1000, k = 0;
	void *in;
	int ret;

	meta_str(req, "to", to, sizeof(to));
	meta_str(req, "timeout", tmo, sizeof(tmo));
	meta_str(req, "key", key, sizeof(key));
	if ((*tmo && spry_num__parse(tmo, NULL, 0, UINT32_MAX, &t)) ||
	    (*key && spry_num__parse(key, NULL, 0, UINT64_MAX, &k)))
		return -EINVAL;
	in = spry_req_data(req, &len);
	ret = spry_req_call_key(req, to, k, in, len, out, sizeof(out) - 1, &olen,
				(unsigned int)t);
	if (ret)
		snprintf(res, sizeof(res), "err:%d", ret);
	else
		snprintf(res, sizeof(res), "got:%.*s", (int)olen, out);
	return reply_str(req, res);
}

/* op next: spry_req_next("to"); op next2: a pick, then another, then NULL. */
static int op_next(struct spry_req *req, bool twice)
{
	char to[40];
	int ret;

	meta_str(req, "to", to, sizeof(to));
	if (twice) {
		ret = spry_req_next(req, "callee");
		ret = ret ?: spry_req_next(req, "other");
		return ret ?: spry_req_next(req, NULL);
	}
	return spry_req_next(req, to);
}

/*
 * op fan: branches to callee and other with the payload, "timeout" ms
 * (default 1000); the payload becomes "n=<ret> a:<answer or err> b:<...>".
 */
static int op_fan(struct spry_req *req)
{
	struct spry_fanout br[2];
	char tmo[16], out[2][64], res[200];
	size_t len;
	uint64_t t = 1000;
	void *in;
	int ret, i, o;

	meta_str(req, "timeout", tmo, sizeof(tmo));
	if (*tmo && spry_num__parse(tmo, NULL, 0, UINT32_MAX, &t))
		return -EINVAL;
	in = spry_req_data(req, &len);
	memset(br, 0, sizeof(br));
	for (i = 0; i < 2; i++) {
		br[i].fn = i ? "other" : "callee";
		br[i].in = in;
		br[i].in_len = len;
		br[i].out = out[i];
		br[i].out_cap = sizeof(out[i]);
	}
	ret = spry_req_fanout(req, br, 2, (unsigned int)t);
	o = snprintf(res, sizeof(res), "n=%d", ret);
	for (i = 0; i < 2; i++) {
		if (br[i].err)
			o += snprintf(res + o, sizeof(res) - o, " %c:err%d", 'a' + i, br[i].err);
		else
			o += snprintf(res + o, sizeof(res) - o, " %c:%.*s", 'a' + i,
				      (int)br[i].out_len, out[i]);
	}
	return reply_str(req, res);
}

/* ------------------------------------------------- the child: mailboxes */

#define MAIL_PID	42		/* the function's process id (SPRY_PROCESS_ID) */
#define MAIL_PEER	1000		/* receivers the fake answers late */
#define MAIL_PEERS	31		/* the other processes of the app (PROC SHOW) */

struct mail_thr {
	pthread_t	t;
	uint64_t	pid;
	int		ret;
	int		*done;
};

static void *mail_thr_send(void *arg)
{
	struct mail_thr *m = arg;

	m->ret = spry_send(m->pid, 0, "m", 1);
	__atomic_add_fetch(m->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The handler's thread reads the socket (spry_recv) until @n threads are done. */
static void mail_pump_until(int *done, int n)
{
	char b[8];
	int64_t end = now_ms() + 10000;

	while (__atomic_load_n(done, __ATOMIC_ACQUIRE) < n && now_ms() < end)
		spry_recv(15, b, sizeof(b), 50, NULL);
}

/*
 * op mailall: two threads each spry_send() one mail (to MAIL_PEER + i,
 * left unanswered by the fake for a while), then spry_send_all() to the
 * app's 31 other processes, answered at once; the payload becomes
 * "all=N failed=F t=R,R".
 */
static int op_mailall(struct spry_req *req)
{
	static struct mail_thr m[2];
	int i, done = 0, n, started = 0;
	unsigned int failed = 0;
	char res[96];

	for (i = 0; i < 2; i++) {
		m[i] = (struct mail_thr){ .pid = MAIL_PEER + i, .done = &done, .ret = -EIO };
		if (pthread_create(&m[i].t, NULL, mail_thr_send, &m[i]))
			break;
		started++;
	}
	usleep(100 * 1000);	/* their mails out */
	n = spry_send_all(1, "a", 1, &failed);
	mail_pump_until(&done, started);
	for (i = 0; i < started; i++)
		pthread_join(m[i].t, NULL);
	snprintf(res, sizeof(res), "all=%d failed=%u t=%d,%d", n, failed, m[0].ret, m[1].ret);
	return reply_str(req, res);
}

/*
 * op mailstall (case_mail): the data socket's send buffer made as small as
 * it goes (the fake does not read its end meanwhile, so sends stall),
 * STALL_SENDERS threads each spry_send() a mail, and one thread waits in
 * spry_recv() on mailbox 1 for the fake's mail while the handler's thread
 * reads the socket.  The payload becomes "recv=R from=F sent=OK/N".
 */
#define STALL_SENDERS	40
#define STALL_PEER	3000	/* the processes they send to */
#define STALL_FILL_MAX	(1 << 20)	/* filler bytes at most */

struct stall_thr {
	pthread_t	t;
	uint64_t	pid;	/* 0: receive instead */
	long		ret;
	uint64_t	from;
	int		*done;
};

static void *stall_thr_run(void *arg)
{
	struct stall_thr *m = arg;
	char b[16];

	if (m->pid)
		m->ret = spry_send(m->pid, 0, "s", 1);
	else
		m->ret = spry_recv(1, b, sizeof(b), 10000, &m->from);
	__atomic_add_fetch(m->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* This process's end of its data socket: the TCP socket whose peer is the fake's. */
static int data_sock(void)
{
	struct sockaddr_in a;
	socklen_t al;
	int fd, type;
	socklen_t sz;

	for (fd = 3; fd < 1024; fd++) {
		sz = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sz) || type != SOCK_STREAM)
			continue;
		al = sizeof(a);
		if (!getpeername(fd, (struct sockaddr *)&a, &al) && a.sin_family == AF_INET &&
		    ntohs(a.sin_port) == f.port)
			return fd;
	}
	return -1;
}

static int op_mailstall(struct spry_req *req)
{
	static struct stall_thr m[STALL_SENDERS + 1];
	int i, done = 0, started = 0, fd, sent = 0, small = 1, old = 0;
	socklen_t sz = sizeof(old);
	char res[96], path[128];
	uint8_t *fill;
	ssize_t w;
	FILE *fp;

	fd = data_sock();
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &old, &sz) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)))
		return -ENOTSOCK;
	/*
	 * Full: filler bytes (0xee) sent until the socket takes no more,
	 * their count for the fake in DIR/fill (it reads them first).
	 */
	fill = malloc(STALL_FILL_MAX);
	if (!fill)
		return -ENOMEM;
	memset(fill, 0xee, STALL_FILL_MAX);
	w = send(fd, fill, STALL_FILL_MAX, MSG_DONTWAIT | MSG_NOSIGNAL);
	free(fill);
	snprintf(path, sizeof(path), "%s/fill", f.dir);
	fp = w > 0 ? fopen(path, "w") : NULL;
	if (!fp)
		return -EIO;
	fprintf(fp, "%zd\n", w);
	if (fclose(fp))
		return -EIO;
	for (i = 0; i <= STALL_SENDERS; i++) {
		m[i] = (struct stall_thr){ .pid = i ? STALL_PEER + i : 0, .done = &done,
					   .ret = -EIO };
		if (pthread_create(&m[i].t, NULL, stall_thr_run, &m[i]))
			break;
		started++;
	}
	mail_pump_until(&done, started);
	for (i = 0; i < started; i++)
		pthread_join(m[i].t, NULL);
	for (i = 1; i < started; i++)
		sent += !m[i].ret;
	old /= 2;	/* the kernel doubles what it is given */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &old, sizeof(old));
	snprintf(res, sizeof(res), "recv=%ld from=%llu sent=%d/%d", m[0].ret,
		 (unsigned long long)m[0].from, sent, started - 1);
	return reply_str(req, res);
}

/*
 * What the handler does is chosen by the request's metadata "op":
 * upper, fail, toobig, grow (to 1000 bytes), meta (echo "x-echo"),
 * setmeta, badmeta, call.
 */
static int test_handler(struct spry_req *req, void *user)
{
	const char *op, *v;
	size_t oplen, len, vlen, i;
	unsigned char *p;

	(void)user;
	op = spry_req_meta(req, "op", &oplen);
	p = spry_req_data(req, &len);
	if (!op)
		return -EINVAL;
	if (oplen == 5 && !memcmp(op, "upper", 5)) {
		for (i = 0; i < len; i++)
			if (p[i] >= 'a' && p[i] <= 'z')
				p[i] -= 32;
		return 0;
	}
	if (oplen == 4 && !memcmp(op, "fail", 4))
		return -EIO;
	if (oplen == 6 && !memcmp(op, "toobig", 6))
		return spry_req_resize(req, 1u << 30) ? 0 : -errno;
	if (oplen == 4 && !memcmp(op, "grow", 4)) {
		p = spry_req_resize(req, 1000);
		if (!p)
			return -errno;
		for (i = len; i < 1000; i++)
			p[i] = 'a' + i % 26;
		return spry_req_set_len(req, 1000);
	}
	if (oplen == 7 && !memcmp(op, "setmeta", 7))
		return op_setmeta(req);
	if (oplen == 7 && !memcmp(op, "badmeta", 7))
		return op_badmeta(req);
	if (oplen == 4 && !memcmp(op, "call", 4))
		return op_call(req);
	if (oplen == 4 && !memcmp(op, "next", 4))
		return op_next(req, false);
	if (oplen == 5 && !memcmp(op, "next2", 5))
		return op_next(req, true);
	if (oplen == 3 && !memcmp(op, "fan", 3))
		return op_fan(req);
	if (oplen == 7 && !memcmp(op, "mailall", 7))
		return op_mailall(req);
	if (oplen == 9 && !memcmp(op, "mailstall", 9))
		return op_mailstall(req);
	if ((oplen == 5 && (!memcmp(op, "reply", 5) || !memcmp(op, "slice", 5) ||
			    !memcmp(op, "error", 5))))
		return op_reply(req, op, oplen);
	if (oplen == 4 && !memcmp(op, "meta", 4)) {
		v = spry_req_meta(req, "x-echo", &vlen);
		if (!v) {
			v = "(none)";
			vlen = 6;
		}
		if (vlen > spry_req_room(req))
			return -EMSGSIZE;
		memcpy(p, v, vlen);
		return spry_req_set_len(req, vlen);
	}
	return -EINVAL;
}

static pid_t start_fn(const char *sock_path, const char *chain)
{
	struct spry_fn_opts opts = {
		.chain = chain, .fn = "f1", .sock_path = sock_path,
		.batch = 16, .quiet = 1,
	};
	pid_t pid = fork();
	int ret;

	if (pid)
		return pid;
	ret = spry_fn_run(&opts, test_handler, NULL);
	_exit(ret ? (-ret) & 0xff : 0);
}

/*
 * A batch handler (spry_fn_run_batch): each answer is "PAYLOAD|i/n", i
 * its place in a batch of n; a payload "bad" fails alone (-EIO).
 */
static void batch_handler(struct spry_req *const *reqs, int *rets, size_t n, void *user)
{
	char out[96];
	size_t i, len;
	const char *p;

	(void)user;
	for (i = 0; i < n; i++) {
		p = spry_req_data(reqs[i], &len);
		if (len == 3 && !memcmp(p, "bad", 3)) {
			rets[i] = -EIO;
			continue;
		}
		snprintf(out, sizeof(out), "%.*s|%zu/%zu", (int)(len > 32 ? 32 : len), p, i, n);
		rets[i] = reply_str(reqs[i], out);
	}
}

static pid_t start_fn_batch(const char *sock_path, unsigned int max, unsigned int wait_us)
{
	struct spry_fn_opts opts = {
		.chain = "c1", .fn = "f1", .sock_path = sock_path, .quiet = 1,
	};
	struct spry_batch_opts bo = { .max = max, .wait_us = wait_us };
	pid_t pid = fork();
	int ret;

	if (pid)
		return pid;
	ret = spry_fn_run_batch(&opts, &bo, batch_handler, NULL);
	_exit(ret ? (-ret) & 0xff : 0);
}

/* Exit status of @pid within @ms, or -1 (still running: killed). */
static int wait_exit(pid_t pid, int ms)
{
	int st, i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* ---------------------------------------------------- the fake spryd */

static int wait_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 ? 0 : -ETIMEDOUT;
}

static int fake_init(struct fake *f)
{
	struct spry_pool_opts po = {
		.buf_size = BUF_SIZE, .n_bufs = N_BUFS,
		.large_size = LARGE_SIZE, .n_large = N_LARGE,
		.uid = getuid(), .gid = getgid(), .no_huge = 1,
	};
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t sl = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->ctl = f->b = -1;
	strcpy(f->dir, "/tmp/spry-fnrt-XXXXXX");
	if (!mkdtemp(f->dir))
		return -errno;
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
	strcpy(sun.sun_path, f->path);
	f->lsn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (f->lsn < 0 || bind(f->lsn, (struct sockaddr *)&sun, sizeof(sun)) ||
	    listen(f->lsn, 8))
		return -errno;
	f->tcp_lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->tcp_lsn < 0 || bind(f->tcp_lsn, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(f->tcp_lsn, 8) ||
	    getsockname(f->tcp_lsn, (struct sockaddr *)&sin, &sl))
		return -errno;
	f->port = ntohs(sin.sin_port);
	f->pool = spry_pool_create(NULL, "spry-fnrt", &po);
	return f->pool ? 0 : -errno;
}

static void fake_drop_conn(struct fake *f)
{
	if (f->b >= 0)
		close(f->b);
	if (f->ctl >= 0)
		close(f->ctl);
	f->b = f->ctl = -1;
}

static void fake_fini(struct fake *f)
{
	fake_drop_conn(f);
	close(f->tcp_lsn);
	close(f->lsn);
	unlink(f->path);
	rmdir(f->dir);
	spry_pool_close(f->pool);
}

/* Is @fd a TCP socket whose local address is the peer of @b? */
static bool sock_is_peer(int fd, int b)
{
	struct sockaddr_in l, p;
	socklen_t ll = sizeof(l), pl = sizeof(p);
	int type = 0, proto = 0;
	socklen_t sz = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sz) || type != SOCK_STREAM)
		return false;
	sz = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &sz) || proto != IPPROTO_TCP)
		return false;
	if (getsockname(fd, (struct sockaddr *)&l, &ll) ||
	    getpeername(b, (struct sockaddr *)&p, &pl))
		return false;
	return l.sin_port == p.sin_port && l.sin_addr.s_addr == p.sin_addr.s_addr;
}

/* What follows struct spry_ctl_reg_ack in REG_ACK. */
enum fake_table { TAB_NONE, TAB_FNS, TAB_TORN, TAB_APP };

/* Serve HELLO and REGISTER; answer REGISTER with @status.  0 or -errno. */
static int fake_register(struct fake *f, int32_t status, enum fake_table tab)
{
	struct {
		struct spry_ctl_reg_ack ack;
		struct spry_ctl_fn_entry e[4];
	} __attribute__((packed)) full = {
		.e = {
			{ .id = FN_ID, .name = "f1" },
			{ .id = CALLEE_ID, .name = "callee" },
			{ .id = 0, .name = "zero-id" },	/* skipped */
			{ .id = OTHER_ID, .name = "other" },
		},
	};
	uint32_t full_len = sizeof(full);
	struct spry_ctl_hello_ack ha = { .tcp_port = f->port, .abi = SPRY_ABI_VERSION };
	struct spry_ctl_reg_ack ra = {
		.chain = CHAIN_ID, .fn = FN_ID, .inst = 0,
		.pool_size = spry_pool_size(f->pool),
	};
	struct spry_ctl_hdr hdr;
	char body[256];
	int ret, fd = -1;

	if (wait_in(f->lsn, TIMEOUT_MS))
		return -ETIMEDOUT;
	f->ctl = accept4(f->lsn, NULL, NULL, SOCK_CLOEXEC);
	if (f->ctl < 0)
		return -errno;
	if (wait_in(f->ctl, TIMEOUT_MS))
		return -ETIMEDOUT;
	ret = spry_ctl_recv(f->ctl, body, sizeof(body), &hdr, NULL);
	if (ret < 0)
		return ret;
	if (hdr.type != SPRY_CTL_HELLO || ret != 0)
		return -EPROTO;
	ret = spry_ctl_send(f->ctl, SPRY_CTL_HELLO_ACK, 0, &ha, sizeof(ha), -1);
	if (ret)
		return ret;

	if (wait_in(f->tcp_lsn, TIMEOUT_MS))
		return -ETIMEDOUT;
	f->b = accept4(f->tcp_lsn, NULL, NULL, SOCK_CLOEXEC);
	if (f->b < 0)
		return -errno;
	if (wait_in(f->ctl, TIMEOUT_MS))
		return -ETIMEDOUT;
	ret = spry_ctl_recv(f->ctl, body, sizeof(body), &hdr, &fd);
	if (ret < 0)
		return ret;
	if (hdr.type != SPRY_CTL_REGISTER || ret != sizeof(f->reg) || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	memcpy(&f->reg, body, sizeof(f->reg));
	f->reg_sock_ok = sock_is_peer(fd, f->b);
	close(fd);
	if (status)
		return spry_ctl_send(f->ctl, SPRY_CTL_REG_ACK, status, NULL, 0, -1);
	if (tab == TAB_NONE)
		return spry_ctl_send(f->ctl, SPRY_CTL_REG_ACK, 0, &ra, sizeof(ra),
				     spry_pool_fd(f->pool));
	full.ack = ra;
	if (tab == TAB_APP) {
		/* an app's process: its chain's one function, "proc" (lib/app.h) */
		snprintf(full.e[0].name, sizeof(full.e[0].name), "proc");
		full_len = sizeof(full.ack) + sizeof(full.e[0]);
	}
	if (tab == TAB_TORN)
		full_len -= 10;		/* a partial entry */
	return spry_ctl_send(f->ctl, SPRY_CTL_REG_ACK, 0, &full, full_len,
			     spry_pool_fd(f->pool));
}

/* A request descriptor with a fresh buffer holding @meta then @payload. */
static int mkreq(struct fake *f, uint64_t req_id, const char *meta,
		 const char *payload, struct spry_desc *d)
{
	size_t ml = strlen(meta), pl = strlen(payload);
	struct spry_buf b;
	uint8_t *p;
	int ret;

	ret = spry_pool_alloc(f->pool, ml + pl, req_id, &b);
	if (ret)
		return ret;
	p = spry_pool_ptr(f->pool, b.off, b.cap);
	memcpy(p, meta, ml);
	memcpy(p + ml, payload, pl);
	*d = (struct spry_desc){
		.version = SPRY_DESC_VERSION, .chain = CHAIN_ID, .req_id = req_id,
		.off = b.off, .len = pl, .cap = b.cap, .meta_len = ml, .gen = b.gen,
	};
	return 0;
}

static int wr(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len ? 0 : -EIO;
}

/* Read @n descriptors (fewer on timeout).  Returns how many. */
static int rd(int fd, struct spry_desc *out, int n, int ms)
{
	size_t want = n * sizeof(*out), got = 0;
	ssize_t r;

	while (got < want) {
		if (wait_in(fd, ms))
			break;
		r = read(fd, (char *)out + got, want - got);
		if (r <= 0)
			break;
		got += r;
	}
	return got / sizeof(*out);
}

static const uint8_t *payload(struct fake *f, const struct spry_desc *d)
{
	const uint8_t *p = spry_pool_ptr(f->pool, d->off, (uint64_t)d->meta_len + d->len);

	return p ? p + d->meta_len : NULL;
}

static bool payload_is(struct fake *f, const struct spry_desc *d, const char *s)
{
	const uint8_t *p = payload(f, d);

	return p && d->len == strlen(s) && !memcmp(p, s, d->len);
}

/* The value of @key in @d's metadata is @want (the runtime's rules). */
static bool meta_is(struct fake *f, const struct spry_desc *d, const char *key,
		    const char *want)
{
	const char *m = spry_pool_ptr(f->pool, d->off, d->meta_len ? d->meta_len : 1);
	const char *end, *eol, *v;
	size_t kl = strlen(key);

	if (!m)
		return false;
	for (end = m + d->meta_len; m < end; m = eol + 1) {
		eol = memchr(m, '\n', end - m);
		if (!eol)
			eol = end;
		if ((size_t)(eol - m) <= kl || m[kl] != ':' || strncasecmp(m, key, kl))
			continue;
		v = m + kl + 1;
		while (v < eol && *v == ' ')
			v++;
		return (size_t)(eol - v) == strlen(want) && !memcmp(v, want, eol - v);
	}
	return false;
}

/* Non-empty metadata lines of @d. */
static int meta_count(struct fake *f, const struct spry_desc *d)
{
	const char *m = spry_pool_ptr(f->pool, d->off, d->meta_len ? d->meta_len : 1);
	int n = 0;
	uint32_t i;

	for (i = 0; m && i < d->meta_len; i++)
		if (m[i] != '\n' && (!i || m[i - 1] == '\n'))
			n++;
	return n;
}

static uint32_t n_free(struct fake *f)
{
	struct spry_pool_stats st;

	if (spry_pool_stats(f->pool, &st))
		return 0;
	return st.n_free + st.n_large_free;
}

static unsigned long long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	uint64_t ut = 0, st = 0;
	const char *e;
	FILE *fp;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return ~0ULL;
	if (!fgets(buf, sizeof(buf), fp)) {
		fclose(fp);
		return ~0ULL;
	}
	fclose(fp);
	p = strrchr(buf, ')');
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	for (i = 0; p && i < 12; i++)	/* to utime, the 12th field after ")" */
		p = strchr(p + 1, ' ');
	if (!p || spry_num__parse(p + 1, &e, 0, UINT64_MAX, &ut) || *e != ' ' ||
	    spry_num__parse(e + 1, &e, 0, UINT64_MAX, &st))
		return ~0ULL;
	return ut + st;
}

/* ---------------------------------------------------- option parsing */

static int parse(struct spry_fn_opts *o, const char *a, const char *b,
		 const char *c, const char *d)
{
	char *argv[6] = { "fn", (char *)a, (char *)b, (char *)c, (char *)d, NULL };
	int argc = 1;

	while (argc < 5 && argv[argc])
		argc++;
	memset(o, 0, sizeof(*o));
	return spry_fn_opts_parse(o, argc, argv);
}

static void batch_nop(struct spry_req *const *reqs, int *rets, size_t n, void *user)
{
	(void)reqs;
	(void)rets;
	(void)n;
	(void)user;
}

/* Mailboxes outside a registered cloud process: -EPERM, nothing else. */
static void test_mail_perm(void)
{
	uint64_t from = 7;
	unsigned int failed = 9;
	char b[8];

	EXPECT_EQ(spry_send(1, 0, "x", 1), -EPERM, "spry_send outside a cloud process");
	EXPECT_EQ(spry_send_all(0, "x", 1, &failed), -EPERM,
		  "spry_send_all outside a cloud process");
	EXPECT_EQ(failed, 0, "... nothing failed");
	EXPECT_EQ(spry_recv(0, b, sizeof(b), 0, &from), -EPERM,
		  "spry_recv outside a cloud process");
	EXPECT_EQ(from, 7, "... *from untouched");
}

static void test_opts(void)
{
	struct spry_fn_opts o;
	int ok, err;

	ok = !parse(&o, "--chain", "c", "--fn=f", NULL) && !strcmp(o.chain, "c") &&
	     !strcmp(o.fn, "f") && !o.batch && !o.quiet && !o.sock_path;
	{
		char *argv[] = { "fn", "--chain=c", "--fn", "f", "--sock", "/x.sock",
				 "--batch", "256", "--quiet", NULL };

		memset(&o, 0, sizeof(o));
		ok = ok && !spry_fn_opts_parse(&o, 9, argv) && o.batch == 256 &&
		     o.quiet == 1 && !strcmp(o.sock_path, "/x.sock");
	}
	tap_ok(ok, "opts: --opt V and --opt=V forms fill every field");

	/* The library says what is wrong on stderr; keep TAP output clean. */
	err = dup(2);
	if (freopen("/dev/null", "w", stderr)) {
		ok = parse(&o, "--chain", "c", "--fn", "f") == 0 &&
		     parse(&o, "--chain", "c", "--bogus", "1") == -EINVAL &&
		     parse(&o, "--chain", "c", "--fn", NULL) == -EINVAL &&
		     parse(&o, "--chain", "c", "--fn=f", "extra") == -EINVAL &&
		     parse(&o, "--chain", "c", NULL, NULL) == -EINVAL &&
		     parse(&o, "--chain=c", "--fn=f", "--batch", "12x") == -EINVAL &&
		     parse(&o, "--chain=c", "--fn=f", "--batch", "0") == -EINVAL &&
		     parse(&o, "--chain=c", "--fn=f", "--batch", "-1") == -EINVAL &&
		     parse(&o, "--chain=c", "--fn=f", "--batch", "257") == -EINVAL &&
		     parse(&o, "--chain=c", "--fn=f", "--batch", " 5") == -EINVAL &&
		     parse(&o, "--chain=c", "--fn=f", "--batch=99999999999999999999", NULL) == -EINVAL &&
		     parse(&o, "--chain=c", "--fn=f", "--quiet=1", NULL) == -EINVAL &&
		     parse(&o, "--chain=0123456789012345678901234567890123", "--fn=f", NULL, NULL) == -EINVAL;
	} else {
		ok = 0;
	}
	fflush(stderr);
	dup2(err, 2);
	close(err);
	tap_ok(ok, "opts: unknown options, stray arguments, bad numbers, missing values: -EINVAL");

	{
		struct spry_fn_opts fo = { .chain = "c", .fn = "f", .sock_path = "/nonexistent" };
		struct spry_batch_opts b0 = { .max = 0 }, b1 = { .max = SPRY_BATCH_MAX + 1 },
				       b2 = { .max = 8, .wait_us = SPRY_BATCH_WAIT_MAX_US + 1 };

		ok = spry_fn_run_batch(&fo, NULL, batch_nop, NULL) == -EINVAL &&
		     spry_fn_run_batch(&fo, &b0, batch_nop, NULL) == -EINVAL &&
		     spry_fn_run_batch(&fo, &b1, batch_nop, NULL) == -EINVAL &&
		     spry_fn_run_batch(&fo, &b2, batch_nop, NULL) == -EINVAL &&
		     spry_fn_run_batch(&fo, &b0, NULL, NULL) == -EINVAL &&
		     spry_req_next(NULL, "x") == -EINVAL &&
		     spry_req_fanout(NULL, NULL, 0, 0) == -EINVAL;
		tap_ok(ok, "workflows: bad batch options (none, max 0, max %d, wait over %d us), no handler, no request: -EINVAL",
		       SPRY_BATCH_MAX + 1, SPRY_BATCH_WAIT_MAX_US);
	}
}

/* ---------------------------------------------------- the tests */

/*
 * The fake spryd and the descriptors the cases share: each case goes on
 * from where the one before it left the function runtime.
 */
static struct fake f;
static struct spry_desc d[64], r[64];
static uint32_t free0, free1;
static uint8_t before[BUF_SIZE];
static const uint8_t *p;

static void case_register(void)
{
	int ret;

	/* a cloud process: its mailboxes on (case_mail) */
	setenv("SPRY_PROCESS_ID", "42", 1);
	setenv("SPRY_MAIL_TIMEOUT_MS", "5000", 1);
	f.pid = start_fn(f.path, "c1");
	unsetenv("SPRY_PROCESS_ID");
	unsetenv("SPRY_MAIL_TIMEOUT_MS");
	ret = fake_register(&f, 0, TAB_FNS);
	tap_ok(!ret && !strcmp(f.reg.chain, "c1") && !strcmp(f.reg.fn, "f1") &&
	       f.reg_sock_ok,
	       "HELLO, TCP connect, REGISTER with names and the connected socket (ret %d)", ret);
	if (ret)
		tap_skip_rest("no function registered");
}

static void case_requests(void)
{
	int ret, i, ok, n;
	unsigned long long t0, t1;

	/* one request */
	ret = mkreq(&f, 0x10001, "op: upper\n", "hello, world", &d[0]);
	ret = ret ?: wr(f.b, &d[0], sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	tap_ok(n == 1 && r[0].status == SPRY_ST_OK && r[0].req_id == 0x10001 &&
	       r[0].off == d[0].off && r[0].gen == d[0].gen && r[0].cap == d[0].cap &&
	       r[0].meta_len == d[0].meta_len && r[0].flags == 0 &&
	       payload_is(&f, &r[0], "HELLO, WORLD"),
	       "a request is handled in place and sent on");
	if (n == 1)
		spry_pool_free(f.pool, r[0].off, r[0].gen);

	/* idle: no CPU */
	t0 = cpu_ticks(f.pid);
	usleep(1000 * 1000);
	t1 = cpu_ticks(f.pid);
	tap_ok(t0 != ~0ULL && t1 - t0 <= 1, "idle for 1 s: %llu CPU ticks", t1 - t0);

	/* a batch of 50 in one write, answered in full */
	for (i = 0, ret = 0; i < 50 && !ret; i++) {
		char pl[32];

		snprintf(pl, sizeof(pl), "req %d abc", i);
		ret = mkreq(&f, 0x20000 + i, "op: upper\n", pl, &d[i]);
	}
	ret = ret ?: wr(f.b, d, 50 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 50, TIMEOUT_MS);
	for (i = 0, ok = n == 50; ok && i < 50; i++) {
		char pl[32];

		snprintf(pl, sizeof(pl), "REQ %d ABC", (int)(r[i].req_id - 0x20000));
		ok = r[i].status == SPRY_ST_OK && payload_is(&f, &r[i], pl);
	}
	tap_ok(ok, "50 descriptors in one write: all handled (%d back)", n);
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);

	/* a descriptor split across two writes */
	ret = mkreq(&f, 0x30001, "op: upper\n", "split", &d[0]);
	ret = ret ?: mkreq(&f, 0x30002, "op: upper\n", "next", &d[1]);
	ret = ret ?: wr(f.b, d, 40);
	usleep(50 * 1000);
	ret = ret ?: wr(f.b, (char *)d + 40, 2 * sizeof(d[0]) - 40);
	n = ret ? 0 : rd(f.b, r, 2, TIMEOUT_MS);
	tap_ok(n == 2 && payload_is(&f, &r[0], "SPLIT") && payload_is(&f, &r[1], "NEXT"),
	       "a descriptor split across reads is reassembled");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);
}

static void case_not_handled(void)
{
	int ret, i, ok, n;

	/* bounds: refused, payload untouched */
	ret = mkreq(&f, 0x40001, "op: upper\n", "keep me", &d[0]);
	d[1] = d[0];
	d[1].req_id = 0x40002;
	d[1].len = BUF_SIZE;			/* meta_len + len > cap */
	d[2] = d[0];
	d[2].req_id = 0x40003;
	d[2].cap = BUF_SIZE * 2;		/* past its buffer */
	d[3] = d[0];
	d[3].req_id = 0x40004;
	d[3].off = spry_pool_size(f.pool) + 4096;	/* outside the pool */
	d[4] = d[0];
	d[4].req_id = 0x40005;
	d[4].meta_len = 0xffffff00;		/* overflow */
	p = spry_pool_ptr(f.pool, d[0].off, d[0].cap);
	if (p)
		memcpy(before, p, BUF_SIZE);
	ret = ret ?: wr(f.b, &d[1], 4 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 4, TIMEOUT_MS);
	for (i = 0, ok = n == 4 && p; ok && i < 4; i++)
		ok = r[i].status == SPRY_ST_BAD_DESC && r[i].req_id == d[i + 1].req_id &&
		     r[i].off == d[i + 1].off && r[i].len == d[i + 1].len &&
		     r[i].cap == d[i + 1].cap && r[i].meta_len == d[i + 1].meta_len;
	tap_ok(ok && !memcmp(before, p, BUF_SIZE),
	       "out-of-bounds descriptors: BAD_DESC, unchanged, payload untouched");

	/* wrong version / wrong chain: made routable, BAD_DESC */
	d[1] = d[0];
	d[1].req_id = 0x40011;
	d[1].version = 9;
	d[2] = d[0];
	d[2].req_id = 0x40012;
	d[2].chain = CHAIN_ID + 1;
	d[3] = d[0];
	d[3].req_id = 0x40013;
	d[3].flags = 0x40;	/* no flag (0x80 is a mail here) */
	ret = wr(f.b, &d[1], 3 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 3, TIMEOUT_MS);
	for (i = 0, ok = n == 3; ok && i < 3; i++)
		ok = r[i].status == SPRY_ST_BAD_DESC && r[i].version == SPRY_DESC_VERSION &&
		     r[i].chain == CHAIN_ID && r[i].flags == 0 &&
		     r[i].req_id == d[i + 1].req_id;
	tap_ok(ok && !memcmp(before, p, BUF_SIZE),
	       "bad version, chain or flags: BAD_DESC with a routable header, payload untouched");

	/* a non-OK status passes through unhandled */
	d[1] = d[0];
	d[1].req_id = 0x40021;
	d[1].status = SPRY_ST_NO_INSTANCE;
	ret = wr(f.b, &d[1], sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	tap_ok(n == 1 && !memcmp(&r[0], &d[1], sizeof(d[1])) &&
	       !memcmp(before, p, BUF_SIZE),
	       "an error descriptor passes through unchanged, handler not run");

	/* CALL for me -> REPLY; CALL for another fn is not sent on */
	d[1] = d[0];
	d[1].req_id = 0x40031;
	d[1].flags = SPRY_DF_CALL;
	d[1].fn = FN_ID + 1;
	d[2] = d[0];
	d[2].req_id = 0x40032;
	d[2].flags = SPRY_DF_CALL;
	d[2].fn = FN_ID;
	ret = wr(f.b, &d[1], 2 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 2, 300);
	tap_ok(n == 1 && r[0].req_id == 0x40032 && r[0].flags == SPRY_DF_REPLY &&
	       r[0].status == SPRY_ST_OK && r[0].fn == FN_ID &&
	       payload_is(&f, &r[0], "KEEP ME"),
	       "CALL for this fn answered as REPLY; a CALL for another fn not sent (%d back)", n);
	spry_pool_free(f.pool, d[0].off, d[0].gen);
}

static void case_handler_errors(void)
{
	int ret, i, n;

	/* handler errors */
	ret = mkreq(&f, 0x50001, "op: fail\n", "x", &d[0]);
	ret = ret ?: mkreq(&f, 0x50002, "op: toobig\n", "y", &d[1]);
	ret = ret ?: mkreq(&f, 0x50003, "no-op: here\n", "z", &d[2]);
	ret = ret ?: wr(f.b, d, 3 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 3, TIMEOUT_MS);
	tap_ok(n == 3 && r[0].status == SPRY_ST_FN_ERROR && r[1].status == SPRY_ST_TOO_BIG &&
	       r[2].status == SPRY_ST_FN_ERROR && r[0].off == d[0].off &&
	       r[1].off == d[1].off && r[1].len == 1,
	       "handler -EIO: FN_ERROR; -EMSGSIZE: TOO_BIG; buffers kept");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);
}

static void case_resize(void)
{
	int ret, ok, n;

	/* resize to a large buffer, tagged with the request id */
	ret = mkreq(&f, 0x60001, "op: grow\nx: y\n", "0123456789", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	p = n == 1 ? payload(&f, &r[0]) : NULL;
	ok = p && r[0].status == SPRY_ST_OK && r[0].len == 1000 &&
	     r[0].cap == LARGE_SIZE && r[0].off != d[0].off && r[0].meta_len == d[0].meta_len &&
	     !memcmp(p, "0123456789", 10) && p[10] == 'a' + 10 % 26 && p[999] == 'a' + 999 % 26 &&
	     !memcmp(p - r[0].meta_len, "op: grow\nx: y\n", r[0].meta_len);
	tap_ok(ok, "resize: a large buffer, metadata and payload copied, response written");
	/* the old buffer was freed (a second free is stale); the new one is
	 * the request's: reclaiming its tag frees exactly it */
	ret = spry_pool_free(f.pool, d[0].off, d[0].gen);
	tap_ok(ret == -ESTALE && spry_pool_reclaim(f.pool, 0x60001) == 1 &&
	       n_free(&f) == free0,
	       "resize: old buffer freed, new one tagged with req_id, pool whole again");
}

static void case_meta(void)
{
	int ret, i, ok, n;

	/* metadata lookup */
	ret = mkreq(&f, 0x70001, "Content-Type: text/plain\nop:   meta \r\nX-Echo:  v a l \n",
		    "................", &d[0]);
	ret = ret ?: mkreq(&f, 0x70002, "op: meta\nx-echo-not: 1\nx-ech: 2", "........", &d[1]);
	ret = ret ?: wr(f.b, d, 2 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 2, TIMEOUT_MS);
	tap_ok(n == 2 && payload_is(&f, &r[0], "v a l") && payload_is(&f, &r[1], "(none)"),
	       "metadata: case-insensitive keys, trimmed values, absent key NULL");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);

	/* spry_req_set_meta */
	{
		char meta[80];

		memset(meta, '\n', sizeof(meta));
		memcpy(meta, "op: setmeta\n", 12);
		meta[76] = '\0';			/* 64 bytes of padding */
		ret = mkreq(&f, 0x80001, meta, "payload", &d[0]);
	}
	ret = ret ?: mkreq(&f, 0x80002, "op: setmeta\n", "abc", &d[1]);
	{
		char big[231];

		memset(big, 'B', 230);
		big[230] = '\0';
		ret = ret ?: mkreq(&f, 0x80003, "op: setmeta\n", big, &d[2]);
	}
	ret = ret ?: wr(f.b, d, 3 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 3, TIMEOUT_MS);
	ok = n == 3;
	for (i = 0; ok && i < 3; i++)
		ok = r[i].status == SPRY_ST_OK && meta_is(&f, &r[i], "x-a", "22") &&
		     meta_is(&f, &r[i], "@status", "201") &&
		     meta_is(&f, &r[i], "@content-type", "text/plain") &&
		     meta_is(&f, &r[i], "op", "setmeta") && meta_count(&f, &r[i]) == 4;
	tap_ok(ok && r[0].off == d[0].off && r[0].meta_len == d[0].meta_len &&
	       payload_is(&f, &r[0], "payload"),
	       "set_meta: lines written into the padding, a key rewritten, payload in place");
	tap_ok(ok && r[1].off == d[1].off && r[1].cap == d[1].cap &&
	       r[1].meta_len > d[1].meta_len && payload_is(&f, &r[1], "abc"),
	       "set_meta: a full area grows, the payload moves within the buffer (meta %u)",
	       n == 3 ? r[1].meta_len : 0);
	p = n == 3 ? payload(&f, &r[2]) : NULL;
	tap_ok(ok && r[2].off != d[2].off && r[2].cap == LARGE_SIZE && r[2].len == 230 &&
	       p && p[0] == 'B' && p[229] == 'B' &&
	       spry_pool_free(f.pool, d[2].off, d[2].gen) == -ESTALE,
	       "set_meta: no room in the buffer: a bigger one, payload copied, old one freed");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);

	/* spry_req_reply / spry_req_error: the metadata and payload bytes */
	{
		static const char pad[] = "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
					  "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
					  "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
					  "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n";
		static const char *const lines[2] = {
			"@status: 201\n@content-type: application/json\n",
			"@status: 422\n@content-type: text/plain\n",
		};
		char meta[3][96], want[2][96], big[257];
		const char *m;

		snprintf(meta[0], sizeof(meta[0]), "op: reply\n%s", pad);
		snprintf(meta[1], sizeof(meta[1]), "op: error\n%s", pad);
		snprintf(meta[2], sizeof(meta[2]), "op: error\nx-len: 300\n");
		ret = mkreq(&f, 0x80021, meta[0], "request", &d[0]);
		ret = ret ?: mkreq(&f, 0x80022, meta[1], "request", &d[1]);
		ret = ret ?: mkreq(&f, 0x80023, meta[2], "request", &d[2]);
		ret = ret ?: mkreq(&f, 0x80024, "op: slice\nx-at: 6\n", "hello world", &d[3]);
		ret = ret ?: wr(f.b, d, 4 * sizeof(d[0]));
		n = ret ? 0 : rd(f.b, r, 4, TIMEOUT_MS);
		/* the new lines take the padding's place, the area keeps its size */
		snprintf(want[0], sizeof(want[0]), "op: reply\n%s%.*s", lines[0],
			 (int)(64 - strlen(lines[0])), pad);
		snprintf(want[1], sizeof(want[1]), "op: error\n%s%.*s", lines[1],
			 (int)(64 - strlen(lines[1])), pad);
		m = n == 4 ? (const char *)payload(&f, &r[0]) - r[0].meta_len : NULL;
		tap_ok(m && r[0].status == SPRY_ST_OK && r[0].meta_len == d[0].meta_len &&
		       !memcmp(m, want[0], r[0].meta_len) && payload_is(&f, &r[0], "{\"ok\":true}"),
		       "spry_req_reply: @status and @content-type lines, then the body, byte for byte");
		m = n == 4 ? (const char *)payload(&f, &r[1]) - r[1].meta_len : NULL;
		tap_ok(m && r[1].status == SPRY_ST_FN_ERROR && r[1].meta_len == d[1].meta_len &&
		       !memcmp(m, want[1], r[1].meta_len) &&
		       payload_is(&f, &r[1], "error: field x: 7\n"),
		       "spry_req_error: FN_ERROR, @status 422, text/plain, \"error: MESSAGE\\n\"");
		memset(big, 'm', sizeof(big));
		memcpy(big, "error: ", 7);
		big[7 + SPRY_ERROR_MSG_MAX] = '\n';
		big[7 + SPRY_ERROR_MSG_MAX + 1] = '\0';
		tap_ok(n == 4 && r[2].status == SPRY_ST_FN_ERROR && payload_is(&f, &r[2], big) &&
		       meta_is(&f, &r[2], "@status", "400") &&
		       meta_is(&f, &r[2], "@content-type", "text/plain"),
		       "spry_req_error: a 300-byte message cut at %d bytes, then \"\\n\"",
		       SPRY_ERROR_MSG_MAX);
		tap_ok(n == 4 && r[3].status == SPRY_ST_OK && payload_is(&f, &r[3], "world") &&
		       r[3].meta_len > d[3].meta_len && meta_is(&f, &r[3], "@content-type", "text/plain"),
		       "spry_req_reply: a slice of the payload followed while the metadata grows");
		for (i = 0; i < n; i++)
			spry_pool_free(f.pool, r[i].off, r[i].gen);
	}

	/* invalid keys and values */
	ret = mkreq(&f, 0x80011, "op: badmeta\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", "x", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	tap_ok(n == 1 && payload_is(&f, &r[0], "ok") && r[0].meta_len == d[0].meta_len,
	       "set_meta/set_status: bad keys, values and statuses -EINVAL, metadata unchanged");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);
}

static void case_calls(void)
{
	int ret, i, ok, n;

	/* a call answered in place; the CALL descriptor as sent */
	free1 = n_free(&f);
	ret = mkreq(&f, 0x90001, "op: call\nto: callee\n", "ping", &d[0]);
	d[0].hop = 2;
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	ok = n == 1 && r[0].flags == SPRY_DF_CALL && r[0].fn == CALLEE_ID &&
	     r[0].req_id == 0x90001 && r[0].chain == CHAIN_ID && r[0].hop == 2 &&
	     r[0].status == SPRY_ST_OK && r[0].meta_len == 0 && r[0].key == 0 &&
	     r[0].off != d[0].off && payload_is(&f, &r[0], "ping");
	tap_ok(ok, "call: CALL descriptor to the callee's id, same request and hop, a new buffer");
	if (ok) {
		/* the callee answers in place */
		r[1] = r[0];
		memcpy(spry_pool_ptr(f.pool, r[1].off, 4), "PONG", 4);
		r[1].flags = SPRY_DF_REPLY;
		ret = wr(f.b, &r[1], sizeof(r[1]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = n == 1 && r[0].req_id == 0x90001 && r[0].flags == 0 &&
		     r[0].status == SPRY_ST_OK && payload_is(&f, &r[0], "got:PONG");
		if (n == 1)
			spry_pool_free(f.pool, r[0].off, r[0].gen);
	}
	tap_ok(ok && n_free(&f) == free1,
	       "call: the reply's payload returned to the handler, its buffer freed");

	/* descriptors arriving during a call are handled after it, in
	 * order; a stray reply is freed; a reply in a bigger buffer */
	ret = mkreq(&f, 0x90011, "op: call\nto: other\nkey: 4660\n", "q", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	ok = n == 1 && r[0].flags == (SPRY_DF_CALL | SPRY_DF_STICKY) && r[0].key == 4660 &&
	     r[0].fn == OTHER_ID;
	if (ok) {
		struct spry_desc call = r[0];
		struct spry_buf nb;

		ret = mkreq(&f, 0x90012, "op: upper\n", "first", &d[1]);
		ret = ret ?: mkreq(&f, 0x90013, "op: upper\n", "second", &d[2]);
		ret = ret ?: mkreq(&f, 0x90999, "", "stray", &d[3]);
		d[3].flags = SPRY_DF_REPLY;
		d[3].fn = CALLEE_ID;
		/* the callee resized: a new buffer, the call's freed */
		ret = ret ?: spry_pool_alloc(f.pool, 600, 0x90011, &nb);
		if (!ret) {
			memset(spry_pool_ptr(f.pool, nb.off, 600), 'R', 600);
			spry_pool_free(f.pool, call.off, call.gen);
			d[4] = call;
			d[4].flags = SPRY_DF_REPLY | SPRY_DF_STICKY;
			d[4].off = nb.off;
			d[4].cap = nb.cap;
			d[4].gen = nb.gen;
			d[4].len = 150;
		}
		/* the requests, the stray reply, then ours (split) */
		ret = ret ?: wr(f.b, &d[1], 3 * sizeof(d[0]));
		ret = ret ?: wr(f.b, &d[4], 20);
		usleep(20 * 1000);
		ret = ret ?: wr(f.b, (char *)&d[4] + 20, sizeof(d[4]) - 20);
		n = ret ? 0 : rd(f.b, r, 3, TIMEOUT_MS);
		{
			char want[160];

			memset(want, 'R', sizeof(want));
			memcpy(want, "got:", 4);
			want[154] = '\0';
			ok = n == 3 && r[0].req_id == 0x90011 && payload_is(&f, &r[0], want) &&
			     r[1].req_id == 0x90012 && payload_is(&f, &r[1], "FIRST") &&
			     r[2].req_id == 0x90013 && payload_is(&f, &r[2], "SECOND");
		}
		for (i = 0; i < n; i++)
			spry_pool_free(f.pool, r[i].off, r[i].gen);
	}
	tap_ok(ok && n_free(&f) == free1,
	       "call: sticky key sent; requests arriving meanwhile run after it, in order; stray reply freed");

	/* an error reply: -EREMOTEIO, its buffer freed */
	ret = mkreq(&f, 0x90021, "op: call\nto: callee\n", "e", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	ok = n == 1 && r[0].flags == SPRY_DF_CALL;
	if (ok) {
		r[0].flags = SPRY_DF_REPLY;
		r[0].status = SPRY_ST_FN_ERROR;
		ret = wr(f.b, &r[0], sizeof(r[0]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = n == 1 && r[0].req_id == 0x90021 && payload_is(&f, &r[0], "err:-121");
		if (n == 1)
			spry_pool_free(f.pool, r[0].off, r[0].gen);
	}
	tap_ok(ok && n_free(&f) == free1, "call: an error reply gives -EREMOTEIO");

	/* no reply: -ETIMEDOUT; the late reply frees the call buffer */
	ret = mkreq(&f, 0x90031, "op: call\nto: callee\ntimeout: 200\n", "t", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 2, 1000);
	ok = n == 2 && r[0].flags == SPRY_DF_CALL && r[1].req_id == 0x90031 &&
	     r[1].flags == 0 && payload_is(&f, &r[1], "err:-110");
	if (n == 2) {
		spry_pool_free(f.pool, r[1].off, r[1].gen);
		r[0].flags = SPRY_DF_REPLY;
		ret = wr(f.b, &r[0], sizeof(r[0]));
		/* then a request: once it is answered the late reply was seen */
		ret = ret ?: mkreq(&f, 0x90032, "op: upper\n", "after", &d[1]);
		ret = ret ?: wr(f.b, &d[1], sizeof(d[1]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = ok && n == 1 && payload_is(&f, &r[0], "AFTER");
		if (n == 1)
			spry_pool_free(f.pool, r[0].off, r[0].gen);
	}
	tap_ok(ok && n_free(&f) == free1,
	       "call: no reply within the timeout: -ETIMEDOUT; the late reply is freed, not sent");

	/* unknown callee; a callee cannot call on; reply too big */
	ret = mkreq(&f, 0x90041, "op: call\nto: nobody\n", "u", &d[0]);
	ret = ret ?: mkreq(&f, 0x90042, "op: call\nto: callee\n", "v", &d[1]);
	d[1].flags = SPRY_DF_CALL;
	d[1].fn = FN_ID;
	ret = ret ?: mkreq(&f, 0x90043, "op: call\nto: zero-id\n", "w", &d[2]);
	ret = ret ?: wr(f.b, d, 3 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 3, TIMEOUT_MS);
	ok = n == 3 && payload_is(&f, &r[0], "err:-2") &&
	     r[1].flags == SPRY_DF_REPLY && payload_is(&f, &r[1], "err:-1") &&
	     payload_is(&f, &r[2], "err:-2");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);
	ret = mkreq(&f, 0x90051, "op: call\nto: callee\n", "big", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	if (n == 1 && r[0].flags == SPRY_DF_CALL) {
		r[0].flags = SPRY_DF_REPLY;
		r[0].len = 220;			/* over the handler's 199 */
		ret = wr(f.b, &r[0], sizeof(r[0]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = ok && n == 1 && payload_is(&f, &r[0], "err:-90");
		if (n == 1)
			spry_pool_free(f.pool, r[0].off, r[0].gen);
	} else {
		ok = false;
	}
	tap_ok(ok && n_free(&f) == free1,
	       "call: unknown or malformed callee -ENOENT, call from a callee -EPERM, reply too big -EMSGSIZE");

	/* the queue during a call is bounded: past 1024 kept descriptors
	 * the next are refused at once (FN_ERROR); the kept ones run after
	 * the call, in order (here out of bounds: BAD_DESC) */
	{
		enum { KEEP = 1024, OVER = 6 };
		struct spry_desc *many = calloc(KEEP + OVER + 1, sizeof(*many));
		struct spry_desc *back = calloc(KEEP + OVER + 1, sizeof(*back));

		ok = many && back;
		ret = ok ? mkreq(&f, 0x90061, "op: call\nto: callee\n", "q", &d[0]) : -ENOMEM;
		ret = ret ?: wr(f.b, d, sizeof(d[0]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = ok && n == 1 && r[0].flags == SPRY_DF_CALL;
		for (i = 0; ok && i < KEEP + OVER; i++) {
			many[i] = (struct spry_desc){
				.version = SPRY_DESC_VERSION, .chain = CHAIN_ID,
				.req_id = 0xb0000 + i, .off = spry_pool_size(f.pool),
				.len = 1, .cap = 64,
			};
		}
		if (ok) {
			many[KEEP + OVER] = r[0];
			many[KEEP + OVER].flags = SPRY_DF_REPLY;
			ret = wr(f.b, many, (KEEP + OVER + 1) * sizeof(*many));
			n = ret ? 0 : rd(f.b, back, KEEP + OVER + 1, TIMEOUT_MS);
			ok = n == KEEP + OVER + 1;
			for (i = 0; ok && i < OVER; i++)
				ok = back[i].req_id == 0xb0000 + KEEP + (uint64_t)i &&
				     back[i].status == SPRY_ST_FN_ERROR;
			ok = ok && back[OVER].req_id == 0x90061 &&
			     payload_is(&f, &back[OVER], "got:q");
			for (i = 0; ok && i < KEEP; i++)
				ok = back[OVER + 1 + i].req_id == 0xb0000 + (uint64_t)i &&
				     back[OVER + 1 + i].status == SPRY_ST_BAD_DESC;
			if (n > OVER && back[OVER].req_id == 0x90061)
				spry_pool_free(f.pool, back[OVER].off, back[OVER].gen);
		}
		free(many);
		free(back);
	}
	tap_ok(ok && n_free(&f) == free1,
	       "call: 1024 descriptors kept meanwhile and run after, in order; the ones past the bound refused at once");
}

/* Workflows (docs/WORKFLOWS.md): the runtime's side of next and fan-out. */
static void case_workflows(void)
{
	int ret, i, ok, n;

	free1 = n_free(&f);
	/* next: the flag and the picked id; unknown name: the handler's error */
	ret = mkreq(&f, 0xa0001, "op: next\nto: other\n", "n", &d[0]);
	ret = ret ?: mkreq(&f, 0xa0002, "op: next\nto: nobody\n", "n", &d[1]);
	ret = ret ?: mkreq(&f, 0xa0003, "op: next2\n", "n", &d[2]);
	ret = ret ?: wr(f.b, d, 3 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 3, TIMEOUT_MS);
	tap_ok(n == 3 && r[0].flags == SPRY_DF_NEXT && r[0].fn == OTHER_ID &&
	       r[0].status == SPRY_ST_OK && r[1].flags == 0 && r[1].status == SPRY_ST_FN_ERROR &&
	       r[2].flags == 0 && r[2].status == SPRY_ST_OK,
	       "next: sent with SPRY_DF_NEXT and the picked id (%u); an unknown name fails the request; NULL forgets a pick",
	       n ? r[0].fn : 0);
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);
	/* a callee has no next */
	ret = mkreq(&f, 0xa0004, "op: next\nto: other\n", "n", &d[0]);
	d[0].flags = SPRY_DF_CALL;
	d[0].fn = FN_ID;
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	tap_ok(n == 1 && r[0].flags == SPRY_DF_REPLY && r[0].status == SPRY_ST_FN_ERROR,
	       "next: answering a call, the pick is refused (-EPERM), the reply fails");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);

	/* fan-out: two branches in one send, answered out of order, one failed,
	 * a stray answer (another tag) freed on the way */
	ret = mkreq(&f, 0xa0011, "op: fan\n", "xy", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 2, TIMEOUT_MS);
	ok = n == 2 && r[0].flags == (SPRY_DF_CALL | SPRY_DF_FAN) && r[0].fn == CALLEE_ID &&
	     r[1].flags == (SPRY_DF_CALL | SPRY_DF_FAN) && r[1].fn == OTHER_ID &&
	     r[0].t_start && r[1].t_start && r[0].t_start != r[1].t_start &&
	     r[0].req_id == 0xa0011 && payload_is(&f, &r[0], "xy") && payload_is(&f, &r[1], "xy");
	tap_ok(ok, "fan-out: two CALL|FAN branches, distinct tags, the input in each");
	if (ok) {
		struct spry_buf sb;

		d[1] = r[1];
		d[1].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
		memcpy(spry_pool_ptr(f.pool, d[1].off, 2), "BB", 2);
		ret = spry_pool_alloc(f.pool, 10, 0xa0011, &sb);
		d[2] = r[0];
		d[2].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
		d[2].t_start = 0xdead;	/* no branch of this fan-out */
		d[2].off = sb.off;
		d[2].gen = sb.gen;
		d[2].cap = sb.cap;
		d[3] = r[0];
		d[3].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
		d[3].status = SPRY_ST_FN_ERROR;
		ret = ret ?: wr(f.b, &d[1], 3 * sizeof(d[0]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = n == 1 && r[0].req_id == 0xa0011 && r[0].flags == 0 &&
		     payload_is(&f, &r[0], "n=1 a:err-121 b:BB");
		if (n == 1)
			spry_pool_free(f.pool, r[0].off, r[0].gen);
	}
	tap_ok(ok && n_free(&f) == free1,
	       "fan-out: answers matched by tag in any order, a failed branch -EREMOTEIO, a stray answer freed");

	/* the deadline: one branch never answers in time; its late answer freed */
	ret = mkreq(&f, 0xa0021, "op: fan\ntimeout: 150\n", "z", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 2, TIMEOUT_MS);
	ok = n == 2;
	if (ok) {
		d[1] = r[0];
		d[1].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
		d[2] = r[1];
		d[2].flags = SPRY_DF_REPLY | SPRY_DF_FAN;
		ret = wr(f.b, &d[1], sizeof(d[1]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = n == 1 && payload_is(&f, &r[0], "n=1 a:z b:err-110");
		if (n == 1)
			spry_pool_free(f.pool, r[0].off, r[0].gen);
		/* the late one, then a request: once answered, the late one was seen */
		ret = wr(f.b, &d[2], sizeof(d[2]));
		ret = ret ?: mkreq(&f, 0xa0022, "op: upper\n", "late", &d[3]);
		ret = ret ?: wr(f.b, &d[3], sizeof(d[3]));
		n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
		ok = ok && n == 1 && payload_is(&f, &r[0], "LATE");
		if (n == 1)
			spry_pool_free(f.pool, r[0].off, r[0].gen);
	}
	tap_ok(ok && n_free(&f) == free1,
	       "fan-out: past the deadline -ETIMEDOUT at once; the late answer freed, not sent");
}

/* Answer mails @m[0..@n) as their receiver (status OK), freeing their buffers. */
static int mail_answer_all(struct spry_desc *m, int n)
{
	struct spry_desc a[64];
	int i;

	for (i = 0; i < n; i++) {
		spry_pool_free(f.pool, m[i].off, m[i].gen);
		a[i] = m[i];
		a[i].flags = SPRY_DF_MAIL | SPRY_DF_REPLY;
		a[i].status = SPRY_ST_OK;
		a[i].meta_len = 0x5a5a0000u + (uint32_t)i;	/* the router's token */
		a[i].off = a[i].cap = a[i].len = a[i].gen = 0;
	}
	return n ? wr(f.b, a, n * sizeof(a[0])) : 0;
}

/* Answer a PROC SHOW on the control socket: MAIL_PEERS active processes and this one. */
static int fake_proc_show(void)
{
	struct {
		struct spry_ctl_proc_app sum;
		struct spry_ctl_proc_info info[MAIL_PEERS + 1];
	} __attribute__((packed)) ack = {};
	struct spry_ctl_hdr hdr;
	char body[256];
	int fd, ret, i;

	fd = accept4(f.lsn, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = wait_in(fd, TIMEOUT_MS);
	ret = ret ?: spry_ctl_recv(fd, body, sizeof(body), &hdr, NULL);
	if (ret >= 0 && hdr.type != SPRY_CTL_PROC)
		ret = -EPROTO;
	if (ret >= 0) {
		ack.sum.n_info = MAIL_PEERS + 1;
		for (i = 0; i <= MAIL_PEERS; i++) {
			ack.info[i].id = i == MAIL_PEERS ? MAIL_PID : 2000 + i;
			ack.info[i].state = SPRY_PS_ACTIVE;
		}
		ret = spry_ctl_send(fd, SPRY_CTL_PROC_ACK, 0, &ack, sizeof(ack), -1);
	}
	close(fd);
	return ret < 0 ? ret : 0;
}

/*
 * Play the router (and spryd's PROC SHOW) for the mails of request
 * @req_id until its answer: mails answered at once, those to MAIL_PEER and
 * up when nothing came for 300 ms.  The answer in *@out; true if it came.
 */
static bool mail_serve(uint64_t req_id, struct spry_desc *out, int *mails)
{
	struct spry_desc late[64], x;
	int64_t end = now_ms() + 15000;
	int n = 0, other = 0;

	*mails = 0;
	while (now_ms() < end) {
		if (!wait_in(f.lsn, 0) && fake_proc_show())
			return false;
		if (rd(f.b, &x, 1, 300) != 1) {
			if (wait_in(f.lsn, 0) && mail_answer_all(late, n))
				return false;
			if (wait_in(f.lsn, 0))
				n = 0;
			continue;
		}
		if (x.flags == SPRY_DF_MAIL) {
			(*mails)++;
			if (x.key >= MAIL_PEER && x.key < 2000 && n < 64)
				late[n++] = x;
			else if (mail_answer_all(&x, 1))
				return false;
			continue;
		}
		if (x.req_id == req_id && !(x.flags & SPRY_DF_MAIL)) {
			*out = x;
			return !mail_answer_all(late, n);
		}
		spry_pool_free(f.pool, x.off, x.gen);	/* not expected: dropped */
		other++;
	}
	tap_diag("mail: no answer to request %#llx (%d mails, %d others read)",
		 (unsigned long long)req_id, *mails, other);
	return false;
}

/* Is any of @p[0..@n) not @c? */
static bool memchr_not(const char *p, int c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] != (unsigned char)c)
			return true;
	return false;
}

/*
 * Sends that stall (a full socket) never keep the process from reading
 * its mails: op mailstall's senders fill the function's socket while the
 * fake reads nothing; a mail the fake sends then must still reach the
 * thread waiting for it (its buffer freed by spry_recv()) within 2 s.  A
 * sender holding the mailboxes' lock across its blocked send() would keep
 * the runtime's thread from taking the mail until the fake read again:
 * that fails here (after 2 s the fake reads, so nothing hangs).
 */
static void case_mail_stall(void)
{
	struct spry_desc x, mail;
	struct spry_buf b;
	int ret, small = 1, big = 4 << 20, mails = 0, answered = -1;
	char path[128], junk[4096];
	long fill = 0, left, n;
	FILE *fp;
	int64_t end, took = -1, t0;
	uint32_t base;
	bool got = false;

	/*
	 * A connection whose receive window is small from its handshake: the
	 * runtime registers again (spryd gone and back) with a listener that
	 * gives it the smallest receive buffer.
	 */
	ret = setsockopt(f.tcp_lsn, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) ? -errno : 0;
	fake_drop_conn(&f);
	ret = ret ?: fake_register(&f, 0, TAB_FNS);
	ret = ret ?: mkreq(&f, 0xb0002, "op: mailstall\n", "", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	usleep(300 * 1000);	/* the senders' mails stuck in the socket */
	snprintf(path, sizeof(path), "%s/fill", f.dir);
	fp = ret ? NULL : fopen(path, "r");
	if (!fp || fscanf(fp, "%ld", &fill) != 1 || fill <= 0)
		ret = ret ?: -EIO;
	if (fp)
		fclose(fp);
	unlink(path);
	ret = ret ?: spry_pool_alloc(f.pool, 2, SPRY_MAIL_TAG(MAIL_PID), &b);
	if (!ret) {
		memcpy(spry_pool_ptr(f.pool, b.off, b.cap), "hi", 2);
		mail = (struct spry_desc){
			.version = SPRY_DESC_VERSION, .flags = SPRY_DF_MAIL, .hop = 1,
			.chain = CHAIN_ID, .fn = FN_ID, .req_id = 0x78, .off = b.off,
			.cap = b.cap, .gen = b.gen, .len = 2, .key = 77,
		};
		base = n_free(&f);
		t0 = now_ms();
		ret = wr(f.b, &mail, sizeof(mail));
		/* the fake reads nothing until the mail was taken, or 2 s */
		for (end = t0 + 2000; !ret && now_ms() < end; usleep(2000)) {
			if (n_free(&f) > base) {
				took = now_ms() - t0;
				break;
			}
		}
	}
	/* now read: the filler first, then answer every mail, until the request's answer */
	for (left = fill; !ret && left > 0; left -= n) {
		n = wait_in(f.b, TIMEOUT_MS) ? -1 :
		    read(f.b, junk, left < (long)sizeof(junk) ? (size_t)left : sizeof(junk));
		if (n <= 0 || memchr_not(junk, 0xee, (size_t)n))
			ret = -EPROTO;
	}
	for (end = now_ms() + 15000; !ret && !got && now_ms() < end;) {
		if (rd(f.b, &x, 1, 500) != 1)
			continue;
		if (x.flags == SPRY_DF_MAIL) {
			mails++;
			ret = mail_answer_all(&x, 1);
		} else if (x.flags == (SPRY_DF_MAIL | SPRY_DF_REPLY) && x.req_id == 0x78) {
			answered = x.status;
		} else if (x.req_id == 0xb0002) {
			r[0] = x;
			got = true;
		} else {
			spry_pool_free(f.pool, x.off, x.gen);
		}
	}
	tap_ok(!ret && took >= 0,
	       "a mail reaches its receiving thread while %d senders stall on a full socket (%ld filler bytes; taken after %lld ms, expected within 2000; ret %d)",
	       STALL_SENDERS, fill, (long long)took, ret);
	tap_ok(got && answered == SPRY_ST_OK && mails == STALL_SENDERS &&
	       payload_is(&f, &r[0], "recv=2 from=77 sent=40/40"),
	       "then every send answered 0 and the mail taken (%.*s, %d mails, answer status %d; expected recv=2 from=77 sent=40/40, 40, 0)",
	       got ? (int)r[0].len : 4, got ? (const char *)payload(&f, &r[0]) : "none",
	       mails, answered);
	if (got)
		spry_pool_free(f.pool, r[0].off, r[0].gen);
	/* and a connection with a large buffer again, for what follows */
	setsockopt(f.tcp_lsn, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	fake_drop_conn(&f);
	ret = fake_register(&f, 0, TAB_FNS);
	tap_ok(!ret, "registered again (%d)", ret);
}

static void case_mail(void)
{
	struct spry_buf b;
	int ret, n, mails = 0;
	bool ok;

	free1 = n_free(&f);
	/* a mail to a mailbox that does not exist: refused, the buffer left to its sender */
	ret = spry_pool_alloc(f.pool, 4, SPRY_MAIL_TAG(MAIL_PID), &b);
	d[0] = (struct spry_desc){
		.version = SPRY_DESC_VERSION, .flags = SPRY_DF_MAIL, .hop = SPRY_MAILBOXES + 4,
		.chain = CHAIN_ID, .fn = FN_ID, .req_id = 0x77, .off = b.off, .cap = b.cap,
		.gen = b.gen, .len = 4, .key = 9,
	};
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	ok = n == 1 && r[0].flags == (SPRY_DF_MAIL | SPRY_DF_REPLY) &&
	     r[0].status == SPRY_ST_BAD_DESC && r[0].req_id == 0x77;
	ret = ret ? ret : spry_pool_free(f.pool, b.off, b.gen);
	tap_ok(ok && !ret,
	       "mail to mailbox %d: BAD_DESC, its buffer still the sender's to free (free: %d, expected 0)",
	       SPRY_MAILBOXES + 4, ret);

	/* answers not yet collected (a send to all) are no full mailbox */
	ret = mkreq(&f, 0xb0001, "op: mailall\n", "", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	ok = !ret && mail_serve(0xb0001, &r[0], &mails);
	tap_ok(ok && payload_is(&f, &r[0], "all=31 failed=0 t=0,0"),
	       "two sends waiting, then a send to all %d others: no -EAGAIN from a mailbox that is not full (%.*s, %d mails; expected all=31 failed=0 t=0,0)",
	       MAIL_PEERS, ok ? (int)r[0].len : 4, ok ? (const char *)payload(&f, &r[0]) : "none",
	       mails);
	if (ok)
		spry_pool_free(f.pool, r[0].off, r[0].gen);

	case_mail_stall();
	tap_ok(n_free(&f) == free1, "mail: every pool buffer back (%u/%u)", n_free(&f), free1);
}

/* Each answer "PAYLOAD|i/n": parse i and n; false when it is not that. */
static bool batch_answer(struct fake *fk, const struct spry_desc *d, const char *want,
			 unsigned int *i, unsigned int *n)
{
	const uint8_t *p = payload(fk, d);
	char buf[96];
	size_t wl = strlen(want);

	if (!p || d->len >= sizeof(buf) || d->len <= wl || memcmp(p, want, wl) || p[wl] != '|')
		return false;
	memcpy(buf, p, d->len);
	buf[d->len] = '\0';
	return sscanf(buf + wl + 1, "%u/%u", i, n) == 2 && *i < *n;
}

/*
 * Input batching (spry_fn_run_batch) against a fake spryd of its own: a
 * burst split into batches of at most max, each answer its own, a failed
 * one alone; the wait gathers requests written apart; without a wait they
 * run as they come.
 */
static void case_batch(void)
{
	static const unsigned int modes[][2] = { { 4, 0 }, { 8, 600000 }, { 8, 0 } };
	struct fake fb;
	unsigned int m, i, k, bi, bn, seen[8];
	int ret, n, ok;
	char pl[16];

	for (m = 0; m < 3; m++) {
		ret = fake_init(&fb);
		if (ret) {
			tap_ok(0, "batch: fake spryd: %s", strerror(-ret));
			return;
		}
		fb.pid = start_fn_batch(fb.path, modes[m][0], modes[m][1]);
		ret = fake_register(&fb, 0, TAB_FNS);
		ok = !ret;
		if (m == 0) {
			/* a burst of 10 in one write, the 5th "bad" */
			for (i = 0; ok && i < 10; i++) {
				snprintf(pl, sizeof(pl), i == 4 ? "bad" : "r%u", i);
				ok = !mkreq(&fb, 0xc0000 + i, "", pl, &d[i]);
			}
			ok = ok && !wr(fb.b, d, 10 * sizeof(d[0]));
			n = ok ? rd(fb.b, r, 10, TIMEOUT_MS) : 0;
			ok = n == 10;
			memset(seen, 0, sizeof(seen));
			for (k = 0; ok && k < 10; k++) {
				i = (unsigned int)(r[k].req_id - 0xc0000);
				snprintf(pl, sizeof(pl), "r%u", i);
				if (i == 4)
					ok = r[k].status == SPRY_ST_FN_ERROR;
				else
					ok = i < 10 && r[k].status == SPRY_ST_OK &&
					     batch_answer(&fb, &r[k], pl, &bi, &bn) && bn <= 4;
			}
			tap_ok(ok, "batch: a burst of 10 with max 4: each answer its own request's, every batch of 4 at most, the bad one failed alone");
		} else {
			/* three requests written 50 ms apart */
			for (i = 0; ok && i < 3; i++) {
				snprintf(pl, sizeof(pl), "w%u", i);
				ok = !mkreq(&fb, 0xc1000 + i, "", pl, &d[i]) &&
				     !wr(fb.b, &d[i], sizeof(d[i]));
				if (i < 2)
					usleep(50 * 1000);
			}
			n = ok ? rd(fb.b, r, 3, TIMEOUT_MS) : 0;
			ok = n == 3;
			for (k = 0; ok && k < 3; k++) {
				i = (unsigned int)(r[k].req_id - 0xc1000);
				snprintf(pl, sizeof(pl), "w%u", i);
				ok = i < 3 && batch_answer(&fb, &r[k], pl, &bi, &bn) &&
				     bn == (m == 1 ? 3u : 1u);
			}
			tap_ok(ok, m == 1 ?
			       "batch: wait 600 ms: three requests written 50 ms apart run as one batch of 3" :
			       "batch: no wait: three requests written 50 ms apart run as three batches of 1");
		}
		for (k = 0; k < (unsigned int)n; k++)
			spry_pool_free(fb.pool, r[k].off, r[k].gen);
		kill(fb.pid, SIGTERM);
		ok = wait_exit(fb.pid, TIMEOUT_MS) == 0;
		{
			struct spry_pool_stats st;

			ok = ok && !spry_pool_stats(fb.pool, &st) && st.n_free == st.n_bufs &&
			     st.n_large_free == st.n_large;
		}
		tap_ok(ok, "batch: the function leaves on SIGTERM, every pool buffer free");
		fake_fini(&fb);
	}
}

/*
 * A conditional next inside an app (docs/WORKFLOWS.md): in an app's
 * process (REG_ACK: the one function "proc") spry_req_next() names a
 * handler of SPRY_APP_FNS: desc.fn its number, the metadata "fn" its name.
 */
static pid_t start_app_fn(const char *sock_path)
{
	struct spry_fn_opts opts = {
		.chain = "c1", .fn = "proc", .sock_path = sock_path, .quiet = 1,
	};
	pid_t pid = fork();
	int ret;

	if (pid)
		return pid;
	if (setenv("SPRY_APP_FNS", "f1,other,third", 1))
		_exit(99);
	ret = spry_fn_run(&opts, test_handler, NULL);
	_exit(ret ? (-ret) & 0xff : 0);
}

static void case_app_next(void)
{
	struct fake fa;
	pid_t pid;
	int ret, n, i, ok;

	ret = fake_init(&fa);
	if (ret) {
		tap_ok(0, "app next: fake spryd: %s", strerror(-ret));
		return;
	}
	pid = start_app_fn(fa.path);
	fa.pid = pid;
	ret = fake_register(&fa, 0, TAB_APP);
	ret = ret ?: mkreq(&fa, 0xd0001, "fn: f1\nop: next\nto: other\n", "n1", &d[0]);
	ret = ret ?: mkreq(&fa, 0xd0002, "op: next\nto: third\n", "n2", &d[1]);
	ret = ret ?: mkreq(&fa, 0xd0003, "fn: f1\nop: next\nto: nobody\n", "n3", &d[2]);
	ret = ret ?: mkreq(&fa, 0xd0004, "fn: f1\nop: next\nto: callee\n", "n4", &d[3]);
	ret = ret ?: wr(fa.b, d, 4 * sizeof(d[0]));
	n = ret ? 0 : rd(fa.b, r, 4, TIMEOUT_MS);
	ok = n == 4 && r[0].flags == SPRY_DF_NEXT && r[0].fn == 2 && r[0].status == SPRY_ST_OK &&
	     meta_is(&fa, &r[0], "fn", "other") && payload_is(&fa, &r[0], "n1");
	tap_ok(ok, "app next: a pick of handler 'other': SPRY_DF_NEXT, fn 2 (got %u), metadata fn: other, the payload kept",
	       n ? r[0].fn : 0);
	ok = n == 4 && r[1].flags == SPRY_DF_NEXT && r[1].fn == 3 &&
	     meta_is(&fa, &r[1], "fn", "third") && payload_is(&fa, &r[1], "n2");
	tap_ok(ok, "app next: 'third' is handler 3 (got %u); a request without an fn line gets one",
	       n > 1 ? r[1].fn : 0);
	ok = n == 4 && r[2].flags == 0 && r[2].status == SPRY_ST_FN_ERROR &&
	     r[3].flags == 0 && r[3].status == SPRY_ST_FN_ERROR;
	tap_ok(ok, "app next: a name not among the app's handlers (nobody, callee) fails the request (-ENOENT)");
	for (i = 0; i < n; i++)
		spry_pool_free(fa.pool, r[i].off, r[i].gen);
	kill(pid, SIGTERM);
	ok = wait_exit(pid, TIMEOUT_MS) == 0;
	{
		struct spry_pool_stats st;

		ok = ok && !spry_pool_stats(fa.pool, &st) && st.n_free == st.n_bufs &&
		     st.n_large_free == st.n_large;
	}
	tap_ok(ok, "app next: the process leaves on SIGTERM, every pool buffer free");
	fa.pid = 0;
	fake_fini(&fa);
}

static void case_sigterm(void)
{
	int ret, ok;

	/* SIGTERM while idle: exit 0, both connections closed */
	free1 = n_free(&f);
	kill(f.pid, SIGTERM);
	ret = wait_exit(f.pid, 2000);
	f.pid = 0;
	{
		char c;

		ok = wait_in(f.b, 100) == 0 && read(f.b, &c, 1) == 0 &&
		     wait_in(f.ctl, 100) == 0 &&
		     spry_ctl_recv(f.ctl, &c, 1, NULL, NULL) == -ENOTCONN;
	}
	tap_ok(ret == 0 && ok && free1 == free0,
	       "SIGTERM: exit 0 within 2 s, TCP and control connections closed (exit %d)", ret);
	fake_drop_conn(&f);
}

static void case_registration(void)
{
	int ret, ok, n;

	/* spryd refuses the registration: no such chain (EIDRM, not the
	 * ENOENT of a missing socket) */
	f.pid = start_fn(f.path, "nochain");
	ret = fake_register(&f, -ENOENT, TAB_NONE);
	ret = ret ?: wait_exit(f.pid, 2000);
	f.pid = 0;
	tap_ok(ret == EIDRM, "refused registration (unknown chain): exits with EIDRM (%d)", ret);
	fake_drop_conn(&f);

	/*
	 * registered, spryd gone, and the next one says the chain does
	 * not exist (deleted meanwhile): the runtime gives up with EIDRM
	 * instead of retrying forever.
	 */
	f.pid = start_fn(f.path, "c1");
	ret = fake_register(&f, 0, TAB_NONE);
	fake_drop_conn(&f);
	ret = ret ?: fake_register(&f, -ENOENT, TAB_NONE);
	ret = ret ?: wait_exit(f.pid, 2000);
	f.pid = 0;
	tap_ok(ret == EIDRM, "re-registration refused (chain deleted): gives up, exits with EIDRM (%d)",
	       ret);
	fake_drop_conn(&f);

	/*
	 * spryd goes away after registering: the runtime registers again
	 * (after its 50 ms backoff) with the spryd that comes next, and
	 * leaves on SIGTERM.
	 */
	f.pid = start_fn(f.path, "c1");
	ret = fake_register(&f, 0, TAB_NONE);
	/* no function table: calls find nothing */
	ret = ret ?: mkreq(&f, 0xa0001, "op: call\nto: callee\n", "x", &d[0]);
	ret = ret ?: wr(f.b, d, sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	ok = n == 1 && r[0].status == SPRY_ST_OK && payload_is(&f, &r[0], "err:-2");
	if (n == 1)
		spry_pool_free(f.pool, r[0].off, r[0].gen);
	fake_drop_conn(&f);
	ret = ret ?: fake_register(&f, 0, TAB_NONE);
	kill(f.pid, SIGTERM);
	n = wait_exit(f.pid, 2000);
	ret = ret ?: n;
	f.pid = 0;
	fake_drop_conn(&f);
	tap_ok(ret == 0 && ok,
	       "REG_ACK without a function table: calls -ENOENT; spryd gone: registers again, SIGTERM exits 0 (%d)",
	       ret);

	/* a function table with a torn entry: the registration fails */
	f.pid = start_fn(f.path, "c1");
	ret = fake_register(&f, 0, TAB_TORN);
	ret = ret ?: wait_exit(f.pid, 2000);
	f.pid = 0;
	tap_ok(ret == EPROTO, "REG_ACK with a partial function entry: exits with EPROTO (%d)",
	       ret);
	fake_drop_conn(&f);

	/* no spryd at all */
	{
		char missing[128];

		snprintf(missing, sizeof(missing), "%s/none.sock", f.dir);
		f.pid = start_fn(missing, "c1");
		ret = wait_exit(f.pid, 2000);
		f.pid = 0;
		tap_ok(ret == ENOENT, "no spryd: exits with ENOENT (%d)", ret);
	}
}

static void case_no_leak(void)
{
	/* nothing leaked in the pool */
	tap_ok(n_free(&f) == free0, "every pool buffer free at the end (%u/%u)",
	       n_free(&f), free0);
}

static const struct tap_case cases[] = {
	TAP_CASE(test_opts, "options: --opt V and --opt=V fill every field; bad ones are -EINVAL"),
	TAP_CASE(test_mail_perm, "mailboxes outside a cloud process: -EPERM"),
	TAP_CASE(case_register, "the runtime says HELLO, connects over TCP, REGISTERs its names and socket"),
	TAP_CASE(case_requests, "requests handled in place: one, a batch of 50, one split across reads; idle costs no CPU"),
	TAP_CASE(case_not_handled, "descriptors it must not handle go back untouched; a CALL for it is answered as REPLY"),
	TAP_CASE(case_handler_errors, "handler errors: -EIO is FN_ERROR, -EMSGSIZE is TOO_BIG, buffers kept"),
	TAP_CASE(case_resize, "resize: a large buffer tagged with the request id, the old one freed"),
	TAP_CASE(case_meta, "metadata: lookup, spry_req_set_meta in place, moved or grown, spry_req_reply/error bytes, bad keys refused"),
	TAP_CASE(case_calls, "calls: CALL and REPLY, queueing during a call, errors, timeouts, bounds"),
	TAP_CASE(case_workflows, "workflows: next sent with its flag and id, fan-out branches matched by tag, deadline, late answers freed"),
	TAP_CASE(case_app_next, "app next: an app's process picks a handler by its number, metadata fn rewritten"),
	TAP_CASE(case_mail, "mailboxes: a refused mail's buffer freed by one end; answers not yet collected are no full mailbox"),
	TAP_CASE(case_batch, "input batching: bounded batches, each answer its own, the wait gathers, a failure alone"),
	TAP_CASE(case_sigterm, "SIGTERM while idle: exit 0, both connections closed"),
	TAP_CASE(case_registration, "registration refused, spryd gone and back, a torn table, no spryd"),
	TAP_CASE(case_no_leak, "every pool buffer free at the end"),
};

int main(void)
{
	int ret;

	signal(SIGPIPE, SIG_IGN);
	ret = fake_init(&f);
	if (ret) {
		tap_diag("fake spryd setup: %s", strerror(-ret));
		tap_skip_all("cannot set up a fake spryd (unix/TCP sockets, memfd)");
	}
	free0 = n_free(&f);
	ret = tap_run_cases(cases, TAP_N(cases));
	if (f.pid > 0)
		wait_exit(f.pid, 0);
	fake_fini(&f);
	return ret;
}
