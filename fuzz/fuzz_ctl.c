// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of the control protocol's receive side
 * (fn-runtime/proto.c spry_ctl_recv): the input is one datagram on a
 * SOCK_SEQPACKET socketpair, with or without an fd as SCM_RIGHTS.
 *
 * Input: [0] receive buffer size (b * 4 bytes), [1] bit 0: pass an fd,
 * bit 1: pass two; then the datagram.
 *
 * Asserted (abort() on failure):
 *   - the return is the body length or -EPROTO / -EMSGSIZE;
 *   - accepted: the datagram has the magic and version, len == bytes - 16,
 *     fits the buffer; *hdr is the datagram's header; the body is the
 *     datagram's;
 *   - refused: *recv_fd is -1; accepted: it is the passed fd (a new fd
 *     onto the same file) or -1 when none was passed;
 *   - no fd leaks: after closing what was handed out, the lowest free fd
 *     is the same as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fn-runtime/proto.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_ctl: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static int sv[2] = { -1, -1 };
static int passfd = -1;
static struct stat pass_st;
static uint8_t body[1024];

static int lowest_free_fd(void)
{
	int fd = dup(0);

	check(fd >= 0);
	close(fd);
	return fd;
}

static void send_dgram(const uint8_t *p, size_t n, int nfd)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	int fds[2] = { passfd, passfd };
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;

	if (nfd) {
		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, nfd * sizeof(int));
	}
	check(sendmsg(sv[0], &msg, MSG_NOSIGNAL) == (ssize_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spry_ctl_hdr hdr, raw;
	uint32_t cap;
	int nfd, fd, ret, low;
	size_t n;

	if (sv[0] < 0) {
		check(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
		passfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		check(passfd >= 0 && !fstat(passfd, &pass_st));
	}
	/* an empty datagram reads as EOF on SOCK_SEQPACKET: not sent */
	if (size < 3 || size - 2 > 65536)
		return 0;
	cap = data[0] * 4u;
	if (cap > sizeof(body))
		cap = sizeof(body);
	nfd = data[1] & 2 ? 2 : data[1] & 1;
	data += 2;
	n = size - 2;

	low = lowest_free_fd();
	send_dgram(data, n, nfd);
	memset(&hdr, 0xa5, sizeof(hdr));
	ret = spry_ctl_recv(sv[1], body, cap, &hdr, &fd);
	memset(&raw, 0, sizeof(raw));
	memcpy(&raw, data, n < sizeof(raw) ? n : sizeof(raw));

	if (ret >= 0) {
		check(n >= sizeof(raw));
		check(raw.magic == SPRY_CTL_MAGIC &&
		      raw.version == SPRY_ABI_VERSION);
		check((size_t)ret == n - sizeof(raw) && raw.len == (uint32_t)ret);
		check((uint32_t)ret <= cap);
		check(!memcmp(&hdr, &raw, sizeof(raw)));
		check(!memcmp(body, data + sizeof(raw), ret));
		if (nfd) {
			struct stat st;

			check(fd >= 0 && !fstat(fd, &st));
			check(st.st_dev == pass_st.st_dev &&
			      st.st_ino == pass_st.st_ino);
			check(fcntl(fd, F_GETFD) & FD_CLOEXEC);
			close(fd);
		} else {
			check(fd == -1);
		}
	} else {
		check(ret == -EPROTO || ret == -EMSGSIZE);
		check(fd == -1);
		if (ret == -EMSGSIZE)
			check(n > sizeof(raw) + cap);
		else
			check(n <= sizeof(raw) + cap);
	}
	check(lowest_free_fd() == low);

	/* and with no fd wanted: any passed fd is closed */
	send_dgram(data, n, nfd);
	ret = spry_ctl_recv(sv[1], body, cap, NULL, NULL);
	check(ret >= -EMSGSIZE);
	check(lowest_free_fd() == low);
	return 0;
}
