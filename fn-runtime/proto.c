// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * spryd's control protocol: one datagram per message on a unix
 * SOCK_SEQPACKET socket, a struct spry_ctl_hdr then the body, at most one
 * fd passed as SCM_RIGHTS.  Shared by libspry (runtime, client) and spryd.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fn-runtime/proto.h"
#include "spry/spry.h"

/* Room for a few fds: a peer that sends more has the extras closed. */
#define CTL_MAX_FDS	4

int spry_ctl_send(int sock, uint16_t type, int32_t status, const void *body,
		  uint32_t len, int pass_fd)
{
	union spry_ctl_fdbuf cbuf;
	struct spry_ctl_hdr hdr = {
		.magic = SPRY_CTL_MAGIC,
		.type = type,
		.version = SPRY_ABI_VERSION,
		.len = len,
		.status = status,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)body, .iov_len = len },
	};
	struct msghdr msg = {
		.msg_iov = iov,
		.msg_iovlen = len ? 2 : 1,
	};
	ssize_t n;

	if (len && !body)
		return -EINVAL;
	if (len > SPRY_CTL_MAX_MSG - sizeof(hdr))
		return -EMSGSIZE;

	if (pass_fd >= 0)
		spry_ctl_put_fd(&msg, &cbuf, pass_fd);

	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SOCK_SEQPACKET sends whole datagrams or nothing. */
	if ((size_t)n != sizeof(hdr) + len)
		return -EIO;
	return 0;
}

/* Collect the SCM_RIGHTS fds of @msg: keep the first in *@keep (if
 * non-NULL), close the others. */
static void ctl_take_fds(struct msghdr *msg, int *keep)
{
	struct cmsghdr *cmsg;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		size_t n, i;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (keep && *keep < 0)
				*keep = fd;
			else
				close(fd);
		}
	}
}

int spry_ctl_recv(int sock, void *buf, uint32_t size, struct spry_ctl_hdr *hdr,
		  int *recv_fd)
{
	union {
		char buf[CMSG_SPACE(CTL_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct spry_ctl_hdr h;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = buf, .iov_len = size },
	};
	struct msghdr msg = {
		.msg_iov = iov,
		.msg_iovlen = size ? 2 : 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf),
	};
	int fd = -1, err;
	ssize_t n;

	if (recv_fd)
		*recv_fd = -1;
	if (size && !buf)
		return -EINVAL;

	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -ENOTCONN : -errno;
	if (n == 0)
		return -ENOTCONN;

	ctl_take_fds(&msg, recv_fd ? &fd : NULL);

	if (msg.msg_flags & MSG_TRUNC) {
		err = -EMSGSIZE;
		goto err_fd;
	}
	if ((size_t)n < sizeof(h) || h.magic != SPRY_CTL_MAGIC ||
	    h.version != SPRY_ABI_VERSION || h.len != (size_t)n - sizeof(h)) {
		err = -EPROTO;
		goto err_fd;
	}
	if (hdr)
		*hdr = h;
	if (recv_fd)
		*recv_fd = fd;
	return (int)h.len;

err_fd:
	if (fd >= 0)
		close(fd);
	return err;
}

int spry_ctl_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, err;

	if (!path)
		path = SPRY_CTL_SOCK_DEFAULT;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}
