// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd_probe: a deliberately hand-rolled client of spryd's control socket
 * for selftests/test_spryd.sh (not a test itself).  It builds every message
 * itself so it can also build wrong ones.
 *
 *   spryd_probe [-s SOCK] [-u UID] hello
 *   spryd_probe [-s SOCK] [-u UID] reg CHAIN FN KIND
 *       KIND: tcp udp unconn listen elsewhere unix file none twice
 *       prints "status N" (and "inst I pool BYTES" when accepted)
 *   spryd_probe [-s SOCK] bad KIND     KIND: magic short len version type trunc
 *       prints "status N type T" then "usable 1" if a HELLO still works
 *   spryd_probe [-s SOCK] flood N CHAIN FN
 *       N x (connect, HELLO, REGISTER a good socket, close); prints "ok K"
 *   spryd_probe [-s SOCK] invoke CHAIN TEXT
 *       prints "status S desc D len L data TEXT"
 *   spryd_probe [-s SOCK] serve CHAIN FN MODE
 *       register, print "registered", then for each descriptor:
 *       upper: upper-case the payload and send it on; die: exit;
 *       hold: never answer; evil: send it on with a wrong hop (the router
 *       quarantines the socket).  Runs until killed or spryd closes.
 * -u: setgid/setuid to UID before connecting (SO_PEERCRED is taken then).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"
#include "spry/spry.h"

static const char *sock_path = SPRY_CTL_SOCK_DEFAULT;

static int ctl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int send_raw(int fd, const void *buf, size_t len, int pass_fd)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	union spry_ctl_fdbuf cb;

	if (pass_fd >= 0)
		spry_ctl_put_fd(&msg, &cb, pass_fd);
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

static int send_msg(int fd, uint16_t type, const void *body, uint32_t len, int pass_fd)
{
	uint8_t buf[16 + 256];
	struct spry_ctl_hdr h = {
		.magic = SPRY_CTL_MAGIC, .type = type, .version = SPRY_ABI_VERSION, .len = len,
	};

	if (len > 256)
		return -EMSGSIZE;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), body, len);
	return send_raw(fd, buf, sizeof(h) + len, pass_fd);
}

/* Receive one reply: body length or -errno; *rfd gets a passed fd or -1. */
static int recv_msg(int fd, struct spry_ctl_hdr *h, void *body, size_t size, int *rfd)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	static uint8_t buf[SPRY_CTL_MAX_MSG];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
		.msg_controllen = sizeof(u.b),
	};
	struct cmsghdr *cm;
	ssize_t n;

	if (rfd)
		*rfd = -1;
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int f;

			memcpy(&f, CMSG_DATA(cm), sizeof(int));
			if (rfd && *rfd < 0)
				*rfd = f;
			else
				close(f);
		}
	}
	if ((size_t)n < sizeof(*h))
		return -EPROTO;
	memcpy(h, buf, sizeof(*h));
	if (h->magic != SPRY_CTL_MAGIC || h->len != (size_t)n - sizeof(*h))
		return -EPROTO;
	if (h->len > size)
		return -EMSGSIZE;
	memcpy(body, buf + sizeof(*h), h->len);
	return (int)h->len;
}

static int hello(int ctl, uint16_t *port)
{
	struct spry_ctl_hello_ack ack;
	struct spry_ctl_hdr h;
	int n;

	if (send_msg(ctl, SPRY_CTL_HELLO, NULL, 0, -1))
		return -errno;
	n = recv_msg(ctl, &h, &ack, sizeof(ack), NULL);
	if (n < 0)
		return n;
	if (h.type != SPRY_CTL_HELLO_ACK || h.status || n != sizeof(ack))
		return -EPROTO;
	*port = ack.tcp_port;
	return 0;
}

static int tcp_to(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A socket of @kind to register; -1 for none.  *@extra: fd to close later. */
static int make_sock(const char *kind, uint16_t port, int *extra)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int sv[2], fd, l;

	*extra = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!strcmp(kind, "tcp") || !strcmp(kind, "twice"))
		return tcp_to(port);
	if (!strcmp(kind, "udp")) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		sa.sin_port = htons(port);
		if (fd >= 0)
			connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		return fd;
	}
	if (!strcmp(kind, "unconn"))
		return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!strcmp(kind, "listen") || !strcmp(kind, "elsewhere")) {
		l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 4) ||
		    getsockname(l, (struct sockaddr *)&sa, &len))
			return -1;
		if (!strcmp(kind, "listen"))
			return l;
		*extra = l;
		return tcp_to(ntohs(sa.sin_port));
	}
	if (!strcmp(kind, "unix")) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			return -1;
		*extra = sv[1];
		return sv[0];
	}
	if (!strcmp(kind, "file"))
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	return -1;
}

static int do_register(int ctl, const char *chain, const char *fn, int sock,
		       struct spry_ctl_reg_ack *ack, int *pool_fd)
{
	/* REG_ACK: the ack, then the chain's function table (proto.h) */
	static uint8_t body[sizeof(*ack) + SPRY_MAX_FNS * sizeof(struct spry_ctl_fn_entry)];
	struct spry_ctl_register req = {};
	struct spry_ctl_hdr h;
	int n;

	snprintf(req.chain, sizeof(req.chain), "%s", chain);
	snprintf(req.fn, sizeof(req.fn), "%s", fn);
	if (send_msg(ctl, SPRY_CTL_REGISTER, &req, sizeof(req), sock))
		return -1000;
	memset(ack, 0, sizeof(*ack));
	n = recv_msg(ctl, &h, body, sizeof(body), pool_fd);
	if (n < 0 || h.type != SPRY_CTL_REG_ACK)
		return -1001;
	if (!h.status && (n < (int)sizeof(*ack) || *pool_fd < 0 ||
			  (n - sizeof(*ack)) % sizeof(struct spry_ctl_fn_entry)))
		return -1002;
	if (n >= (int)sizeof(*ack))
		memcpy(ack, body, sizeof(*ack));
	return h.status;
}

static int cmd_reg(int argc, char **argv)
{
	struct spry_ctl_reg_ack ack;
	int ctl, sock, extra, pool_fd, st;
	uint16_t port;

	if (argc != 3)
		return 2;
	ctl = ctl_connect();
	if (ctl < 0 || hello(ctl, &port))
		return 1;
	sock = make_sock(argv[2], port, &extra);
	if (sock < 0 && strcmp(argv[2], "none"))
		return 1;
	st = do_register(ctl, argv[0], argv[1], sock, &ack, &pool_fd);
	if (!st && !strcmp(argv[2], "twice")) {
		close(pool_fd);
		printf("first %d\n", st);
		st = do_register(ctl, argv[0], argv[1], sock, &ack, &pool_fd);
	}
	printf("status %d\n", st);
	if (!st)
		printf("inst %u pool %llu\n", ack.inst, (unsigned long long)ack.pool_size);
	return 0;
}

static int cmd_bad(const char *kind)
{
	struct spry_ctl_hdr h = {
		.magic = SPRY_CTL_MAGIC, .type = SPRY_CTL_REGISTER,
		.version = SPRY_ABI_VERSION, .len = sizeof(struct spry_ctl_register),
	};
	static uint8_t buf[SPRY_CTL_MAX_MSG + 64];
	struct spry_ctl_reg_ack ack;
	struct spry_ctl_hdr rh;
	size_t len = sizeof(h) + sizeof(struct spry_ctl_register);
	uint16_t port;
	int ctl, n;

	ctl = ctl_connect();
	if (ctl < 0)
		return 1;
	if (!strcmp(kind, "magic"))
		h.magic = 0xdeadbeef;
	else if (!strcmp(kind, "short"))
		len = 10;
	else if (!strcmp(kind, "len"))
		h.len += 8;
	else if (!strcmp(kind, "version"))
		h.version = 99;
	else if (!strcmp(kind, "type"))
		h.type = 77;
	else if (!strcmp(kind, "trunc")) {
		len = SPRY_CTL_MAX_MSG + 32;
		h.len = len - sizeof(h);
		n = 4 * SPRY_CTL_MAX_MSG;
		setsockopt(ctl, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof(n));
	} else if (!strcmp(kind, "regsize")) {
		h.len = 10;
		len = sizeof(h) + 10;
	} else
		return 2;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	if (send_raw(ctl, buf, len, -1)) {
		perror("send");
		return 1;
	}
	n = recv_msg(ctl, &rh, &ack, sizeof(ack), NULL);
	if (n < 0) {
		printf("recv %d\n", n);
		return 1;
	}
	printf("status %d type %u\n", rh.status, rh.type);
	printf("usable %d\n", hello(ctl, &port) == 0);
	return 0;
}

static int cmd_flood(int argc, char **argv)
{
	struct spry_ctl_reg_ack ack;
	int i, n, ok = 0, ctl, sock, pool_fd;
	uint16_t port;

	if (argc != 3 || spry_num__parse_int(argv[0], 0, 1 << 20, &n))
		return 2;
	for (i = 0; i < n; i++) {
		ctl = ctl_connect();
		if (ctl < 0)
			continue;
		if (!hello(ctl, &port)) {
			/* Every third one registers nothing, or the wrong thing. */
			sock = i % 3 == 2 ? socket(AF_INET, SOCK_DGRAM, 0) : tcp_to(port);
			if (i % 3 == 1) {
				send_msg(ctl, SPRY_CTL_HELLO, NULL, 0, -1);
			} else if (sock >= 0 &&
				   do_register(ctl, argv[1], argv[2], sock, &ack, &pool_fd) ==
				   (i % 3 == 2 ? -EPROTOTYPE : 0)) {
				ok++;
				if (pool_fd >= 0)
					close(pool_fd);
			}
			if (i % 3 == 1)
				ok++;
			if (sock >= 0)
				close(sock);
		}
		close(ctl);
	}
	printf("ok %d\n", ok);
	return 0;
}

static int cmd_invoke(int argc, char **argv)
{
	static uint8_t body[sizeof(struct spry_ctl_result) + 65536];
	struct spry_ctl_invoke inv = {};
	uint8_t msg[sizeof(inv) + 200];
	struct spry_ctl_result res;
	struct spry_ctl_hdr h;
	size_t tl;
	int ctl, n;

	if (argc != 2)
		return 2;
	tl = strlen(argv[1]);
	if (tl > 200)
		return 2;
	ctl = ctl_connect();
	if (ctl < 0)
		return 1;
	snprintf(inv.chain, sizeof(inv.chain), "%s", argv[0]);
	inv.len = (uint32_t)tl;
	memcpy(msg, &inv, sizeof(inv));
	memcpy(msg + sizeof(inv), argv[1], tl);
	if (send_msg(ctl, SPRY_CTL_INVOKE, msg, (uint32_t)(sizeof(inv) + tl), -1))
		return 1;
	n = recv_msg(ctl, &h, body, sizeof(body), NULL);
	if (n < (int)sizeof(res) || h.type != SPRY_CTL_RESULT) {
		printf("recv %d\n", n);
		return 1;
	}
	memcpy(&res, body, sizeof(res));
	printf("status %d desc %u len %u data %.*s\n", h.status, res.status, res.len,
	       (int)res.len, (char *)body + sizeof(res));
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct spry_ctl_reg_ack ack;
	struct spry_pool *pool;
	struct spry_desc desc;
	int ctl, sock, pool_fd, st;
	uint16_t port;
	uint32_t i;
	uint8_t *p;

	if (argc != 3)
		return 2;
	ctl = ctl_connect();
	if (ctl < 0 || hello(ctl, &port))
		return 1;
	sock = tcp_to(port);
	if (sock < 0)
		return 1;
	st = do_register(ctl, argv[0], argv[1], sock, &ack, &pool_fd);
	if (st) {
		printf("status %d\n", st);
		return 1;
	}
	pool = spry_pool_attach(pool_fd);
	if (!pool) {
		perror("spry_pool_attach");
		return 1;
	}
	printf("registered inst %u\n", ack.inst);
	fflush(stdout);
	st = 0;
	for (;;) {
		if (recv(sock, &desc, sizeof(desc), MSG_WAITALL) != sizeof(desc))
			break;
		if (!strcmp(argv[2], "die"))
			break;
		if (!strcmp(argv[2], "hold"))
			continue;
		if (!strcmp(argv[2], "evil"))
			desc.hop = 7;	/* not this function's hop: DROP_HOP */
		p = spry_pool_ptr(pool, desc.off + desc.meta_len, desc.len);
		if (!p) {
			st = 1;
			break;
		}
		for (i = 0; i < desc.len; i++)
			p[i] = (uint8_t)toupper(p[i]);
		if (send(sock, &desc, sizeof(desc), MSG_NOSIGNAL) != sizeof(desc)) {
			st = 1;
			break;
		}
	}
	spry_pool_close(pool);
	close(pool_fd);
	close(sock);
	close(ctl);
	return st;
}

int main(int argc, char **argv)
{
	uint16_t port;
	int opt, ctl;
	int uid = -1;

	while ((opt = getopt(argc, argv, "+s:u:")) != -1) {
		switch (opt) {
		case 's':
			sock_path = optarg;
			break;
		case 'u':
			if (spry_num__parse_int(optarg, 0, INT32_MAX, &uid))
				return 2;
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc)
		return 2;
	if (uid >= 0 && (setgroups(0, NULL) || setgid((gid_t)uid) || setuid((uid_t)uid))) {
		perror("setuid");
		return 1;
	}
	argc -= optind;
	argv += optind;
	if (!strcmp(argv[0], "hello")) {
		ctl = ctl_connect();
		if (ctl < 0 || hello(ctl, &port))
			return 1;
		printf("port %u\n", port);
		return 0;
	}
	if (!strcmp(argv[0], "reg"))
		return cmd_reg(argc - 1, argv + 1);
	if (!strcmp(argv[0], "bad") && argc == 2)
		return cmd_bad(argv[1]);
	if (!strcmp(argv[0], "flood"))
		return cmd_flood(argc - 1, argv + 1);
	if (!strcmp(argv[0], "invoke"))
		return cmd_invoke(argc - 1, argv + 1);
	if (!strcmp(argv[0], "serve"))
		return cmd_serve(argc - 1, argv + 1);
	return 2;
}
