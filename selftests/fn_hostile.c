// SPDX-License-Identifier: GPL-2.0-only
/*
 * fn_hostile: a function instance that misbehaves on purpose, for
 * test_faults.sh and test_isolation.sh.  It registers exactly like a
 * function (control socket HELLO, a TCP socket to spryd's port passed with
 * REGISTER, REG_ACK with the pool fd; proto.h's spry_ctl_* helpers) and
 * then, for each descriptor it receives, upper-cases the payload and sends
 * the descriptor on, altered by MODE:
 *
 *   flood N      the descriptor, then N - 1 copies of it (64 per send()):
 *                more than it was given (DROP_FLOOD)
 *   chain ID     names chain ID instead of its own (DROP_CHAIN)
 *   hop H        claims hop H (DROP_HOP when H is not its hop)
 *   bounds       an offset past the end of its pool (DROP_BOUNDS)
 *
 * After the first descriptor it prints "sent A refused R errno E" (A
 * descriptors accepted by send(), R refused, the errno of the first
 * refusal) and "leaving", and exits 0.
 *
 *   fn_hostile [-u UID] -s SOCK CHAIN FN MODE [ARG]
 *   fn_hostile [-u UID] open PATH     open(PATH, O_RDWR): "open ok" or
 *                                     "open ERRNO-NAME", then mmap it
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"
#include "spry/spry.h"

#define BATCH	64

static int reg(const char *sock_path, const char *chain, const char *fn,
	       int *tcp, int *pool_fd, struct spry_ctl_reg_ack *ack)
{
	static uint8_t body[sizeof(*ack) + SPRY_MAX_FNS * sizeof(struct spry_ctl_fn_entry)];
	struct spry_ctl_register r = {};
	struct spry_ctl_hello_ack hello;
	struct spry_ctl_hdr h;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int ctl, n, one = 1;

	ctl = spry_ctl_connect(sock_path);
	if (ctl < 0)
		return ctl;
	n = spry_ctl_send(ctl, SPRY_CTL_HELLO, 0, NULL, 0, -1);
	if (n)
		return n;
	n = spry_ctl_recv(ctl, &hello, sizeof(hello), &h, NULL);
	if (n != (int)sizeof(hello) || h.type != SPRY_CTL_HELLO_ACK || h.status)
		return -EPROTO;
	*tcp = socket(AF_INET, SOCK_STREAM, 0);
	if (*tcp < 0)
		return -errno;
	setsockopt(*tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sin.sin_port = htons(hello.tcp_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(*tcp, (struct sockaddr *)&sin, sizeof(sin)))
		return -errno;
	snprintf(r.chain, sizeof(r.chain), "%s", chain);
	snprintf(r.fn, sizeof(r.fn), "%s", fn);
	n = spry_ctl_send(ctl, SPRY_CTL_REGISTER, 0, &r, sizeof(r), *tcp);
	if (n)
		return n;
	n = spry_ctl_recv(ctl, body, sizeof(body), &h, pool_fd);
	if (n < 0)
		return n;
	if (h.type != SPRY_CTL_REG_ACK || h.status)
		return h.status ? h.status : -EPROTO;
	if (n < (int)sizeof(*ack) || *pool_fd < 0)
		return -EPROTO;
	memcpy(ack, body, sizeof(*ack));
	return ctl;	/* kept open: closing it deregisters */
}

static int open_cmd(const char *path)
{
	void *p;
	int fd;

	fd = open(path, O_RDWR);
	if (fd < 0) {
		printf("open %s\n", strerrorname_np(errno) ?: "?");
		return 0;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("open ok, mmap %s\n", p == MAP_FAILED ? strerrorname_np(errno) ?: "?" : "ok");
	return 0;
}

int main(int argc, char **argv)
{
	static struct spry_desc out[BATCH];
	const char *sock_path = NULL, *mode;
	struct spry_ctl_reg_ack ack = {};
	struct spry_pool *pool;
	struct spry_desc d;
	long uid = -1, arg = 0, left, sent = 0, refused = 0, k;
	uint64_t u;
	int opt, ctl, tcp = -1, pool_fd = -1, first_err = 0;
	ssize_t w;
	uint8_t *p;
	uint32_t i;

	while ((opt = getopt(argc, argv, "+s:u:")) != -1) {
		if (opt == 's')
			sock_path = optarg;
		else if (opt == 'u' && !spry_num__parse(optarg, NULL, 0, INT32_MAX, &u))
			uid = (long)u;
		else
			return 2;
	}
	argc -= optind;
	argv += optind;
	if (uid >= 0 && (setgroups(0, NULL) || setgid((gid_t)uid) || setuid((uid_t)uid))) {
		perror("setuid");
		return 1;
	}
	if (argc == 2 && !strcmp(argv[0], "open"))
		return open_cmd(argv[1]);
	if (argc < 3)
		return 2;
	mode = argv[2];
	if (argc > 3) {
		if (spry_num__parse(argv[3], NULL, 0, LONG_MAX, &u))
			return 2;
		arg = (long)u;
	}

	ctl = reg(sock_path, argv[0], argv[1], &tcp, &pool_fd, &ack);
	if (ctl < 0) {
		printf("register: %s\n", strerror(-ctl));
		return 1;
	}
	pool = spry_pool_attach(pool_fd);
	if (!pool) {
		perror("spry_pool_attach");
		return 1;
	}
	printf("registered inst %u\n", ack.inst);
	fflush(stdout);

	if (recv(tcp, &d, sizeof(d), MSG_WAITALL) != sizeof(d))
		return 1;
	p = spry_pool_ptr(pool, d.off + d.meta_len, d.len);
	for (i = 0; p && i < d.len; i++)
		p[i] = (uint8_t)toupper(p[i]);

	if (!strcmp(mode, "chain"))
		d.chain = (uint16_t)arg;
	else if (!strcmp(mode, "hop"))
		d.hop = (uint8_t)arg;
	else if (!strcmp(mode, "bounds"))
		d.off = spry_pool_size(pool);
	else if (strcmp(mode, "flood"))
		return 2;
	left = !strcmp(mode, "flood") && arg > 1 ? arg : 1;
	while (left > 0) {
		k = left < BATCH ? left : BATCH;
		for (i = 0; i < k; i++)
			out[i] = d;
		w = send(tcp, out, k * sizeof(d), MSG_NOSIGNAL);
		if (w < 0) {
			if (!first_err)
				first_err = errno;
			refused += k;
		} else {
			sent += w / (ssize_t)sizeof(d);
			refused += k - w / (ssize_t)sizeof(d);
		}
		left -= k;
	}
	printf("sent %ld refused %ld errno %s\nleaving\n", sent, refused,
	       first_err ? strerrorname_np(first_err) ?: "?" : "0");
	fflush(stdout);
	spry_pool_close(pool);
	close(pool_fd);
	close(tcp);
	close(ctl);
	return 0;
}
