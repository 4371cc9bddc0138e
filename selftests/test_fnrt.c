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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

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

/* ---------------------------------------------------- the child: handler */

/*
 * What the handler does is chosen by the request's metadata "op":
 * upper, fail, toobig, grow (to 1000 bytes), meta (echo "x-echo").
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

/* Serve HELLO and REGISTER; answer REGISTER with @status.  0 or -errno. */
static int fake_register(struct fake *f, int32_t status)
{
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
	return spry_ctl_send(f->ctl, SPRY_CTL_REG_ACK, 0, &ra, sizeof(ra),
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

static uint32_t n_free(struct fake *f)
{
	struct spry_pool_stats st;

	if (spry_pool_stats(f->pool, &st))
		return 0;
	return st.n_free + st.n_large_free;
}

static unsigned long long cpu_ticks(pid_t pid)
{
	unsigned long long ut = 0, st = 0;
	char path[64], buf[1024], *p;
	FILE *fp;

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
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
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
}

/* ---------------------------------------------------- the tests */

int main(void)
{
	struct spry_desc d[64], r[64];
	unsigned long long t0, t1;
	uint32_t free0, free1;
	struct fake f;
	uint8_t before[BUF_SIZE];
	const uint8_t *p;
	int ret, i, ok, n;

	signal(SIGPIPE, SIG_IGN);
	tap_plan(20);
	test_opts();

	ret = fake_init(&f);
	if (ret) {
		tap_diag("fake spryd setup: %s", strerror(-ret));
		tap_skip_all("cannot set up a fake spryd (unix/TCP sockets, memfd)");
	}
	free0 = n_free(&f);

	/* 3 */
	f.pid = start_fn(f.path, "c1");
	ret = fake_register(&f, 0);
	tap_ok(!ret && !strcmp(f.reg.chain, "c1") && !strcmp(f.reg.fn, "f1") &&
	       f.reg_sock_ok,
	       "HELLO, TCP connect, REGISTER with names and the connected socket (ret %d)", ret);
	if (ret)
		goto out_kill;

	/* 4: one request */
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

	/* 5: idle: no CPU */
	t0 = cpu_ticks(f.pid);
	usleep(1000 * 1000);
	t1 = cpu_ticks(f.pid);
	tap_ok(t0 != ~0ULL && t1 - t0 <= 1, "idle for 1 s: %llu CPU ticks", t1 - t0);

	/* 6: a batch of 50 in one write, answered in full */
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

	/* 7: a descriptor split across two writes */
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

	/* 8: bounds: refused, payload untouched */
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

	/* 9: wrong version / wrong chain: made routable, BAD_DESC */
	d[1] = d[0];
	d[1].req_id = 0x40011;
	d[1].version = 9;
	d[2] = d[0];
	d[2].req_id = 0x40012;
	d[2].chain = CHAIN_ID + 1;
	d[3] = d[0];
	d[3].req_id = 0x40013;
	d[3].flags = 0x80;
	ret = wr(f.b, &d[1], 3 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 3, TIMEOUT_MS);
	for (i = 0, ok = n == 3; ok && i < 3; i++)
		ok = r[i].status == SPRY_ST_BAD_DESC && r[i].version == SPRY_DESC_VERSION &&
		     r[i].chain == CHAIN_ID && r[i].flags == 0 &&
		     r[i].req_id == d[i + 1].req_id;
	tap_ok(ok && !memcmp(before, p, BUF_SIZE),
	       "bad version, chain or flags: BAD_DESC with a routable header, payload untouched");

	/* 10: a non-OK status passes through unhandled */
	d[1] = d[0];
	d[1].req_id = 0x40021;
	d[1].status = SPRY_ST_NO_INSTANCE;
	ret = wr(f.b, &d[1], sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 1, TIMEOUT_MS);
	tap_ok(n == 1 && !memcmp(&r[0], &d[1], sizeof(d[1])) &&
	       !memcmp(before, p, BUF_SIZE),
	       "an error descriptor passes through unchanged, handler not run");

	/* 11: CALL for me -> REPLY; CALL for another fn is not sent on */
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

	/* 12: handler errors */
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

	/* 13-14: resize to a large buffer, tagged with the request id */
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

	/* 15: metadata lookup */
	ret = mkreq(&f, 0x70001, "Content-Type: text/plain\nop:   meta \r\nX-Echo:  v a l \n",
		    "................", &d[0]);
	ret = ret ?: mkreq(&f, 0x70002, "op: meta\nx-echo-not: 1\nx-ech: 2", "........", &d[1]);
	ret = ret ?: wr(f.b, d, 2 * sizeof(d[0]));
	n = ret ? 0 : rd(f.b, r, 2, TIMEOUT_MS);
	tap_ok(n == 2 && payload_is(&f, &r[0], "v a l") && payload_is(&f, &r[1], "(none)"),
	       "metadata: case-insensitive keys, trimmed values, absent key NULL");
	for (i = 0; i < n; i++)
		spry_pool_free(f.pool, r[i].off, r[i].gen);

	/* 16: SIGTERM while idle: exit 0, both connections closed */
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

	/* 17: spryd refuses the registration */
	f.pid = start_fn(f.path, "nochain");
	ret = fake_register(&f, -ENOENT);
	ret = ret ?: wait_exit(f.pid, 2000);
	f.pid = 0;
	tap_ok(ret == ENOENT, "refused registration: exits with ENOENT (%d)", ret);
	fake_drop_conn(&f);

	/* 18: spryd goes away after registering */
	f.pid = start_fn(f.path, "c1");
	ret = fake_register(&f, 0);
	fake_drop_conn(&f);
	ret = ret ?: wait_exit(f.pid, 2000);
	f.pid = 0;
	tap_ok(ret == ECONNRESET, "spryd gone: exits with ECONNRESET (%d)", ret);

	/* 19: no spryd at all */
	{
		char missing[128];

		snprintf(missing, sizeof(missing), "%s/none.sock", f.dir);
		f.pid = start_fn(missing, "c1");
		ret = wait_exit(f.pid, 2000);
		f.pid = 0;
		tap_ok(ret == ENOENT, "no spryd: exits with ENOENT (%d)", ret);
	}

	/* 20: nothing leaked in the pool */
	tap_ok(n_free(&f) == free0, "every pool buffer free at the end (%u/%u)",
	       n_free(&f), free0);

out_kill:
	if (f.pid > 0)
		wait_exit(f.pid, 0);
	fake_fini(&f);
	return tap_finish();
}
