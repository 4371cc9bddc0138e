// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control protocol helpers (fn-runtime/proto.c) over a socketpair:
 * round trip, fd passing, and every refusal of spry_ctl_recv().
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "fn-runtime/proto.h"
#include "spry/spry.h"
#include "selftests/tap.h"

static int pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}

/* Send raw bytes (a forged message) with optional fds. */
static int send_raw(int sock, const void *buf, size_t len, const int *fds, int nfd)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfd) {
		struct cmsghdr *cmsg;

		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, nfd * sizeof(int));
	}
	return sendmsg(sock, &msg, 0) == (ssize_t)len ? 0 : -1;
}

static int open_fds(void)
{
	int n = 0, fd;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/*
 * A fake request entry for spry_client: answers each INVOKE according to
 * the payload's first byte: 'u' uppercase RESULT, 'b' -EBUSY refusal,
 * 'l' a RESULT whose len disagrees with the datagram, 't' the wrong type,
 * 's' a status out of range.
 */
struct entry {
	int		lsn;
	int		n_conns;
	int		bad_invokes;
};

static int conns(struct entry *e)
{
	return __atomic_load_n(&e->n_conns, __ATOMIC_SEQ_CST);
}

static void entry_answer(struct entry *e, int c, const uint8_t *body, int len)
{
	struct spry_ctl_invoke inv;
	struct {
		struct spry_ctl_result r;
		char p[256];
	} out;
	uint32_t i;

	if (len < (int)sizeof(inv)) {
		__atomic_add_fetch(&e->bad_invokes, 1, __ATOMIC_SEQ_CST);
		return;
	}
	memcpy(&inv, body, sizeof(inv));
	if (inv.len != len - sizeof(inv) || inv.len > sizeof(out.p) || !inv.len ||
	    strnlen(inv.chain, sizeof(inv.chain)) == sizeof(inv.chain) ||
	    strcmp(inv.chain, "c1")) {
		__atomic_add_fetch(&e->bad_invokes, 1, __ATOMIC_SEQ_CST);
		return;
	}
	memset(&out, 0, sizeof(out));
	out.r.req_id = 42;
	out.r.len = inv.len;
	for (i = 0; i < inv.len; i++) {
		char ch = body[sizeof(inv) + i];

		out.p[i] = ch >= 'a' && ch <= 'z' ? ch - 32 : ch;
	}
	switch (body[sizeof(inv)]) {
	case 'b':
		spry_ctl_send(c, SPRY_CTL_RESULT, -EBUSY, NULL, 0, -1);
		return;
	case 'l':
		out.r.len++;
		break;
	case 't':
		spry_ctl_send(c, SPRY_CTL_HELLO_ACK, 0, &out, sizeof(out.r) + inv.len, -1);
		return;
	case 's':
		out.r.status = SPRY_ST_MAX;
		break;
	}
	spry_ctl_send(c, SPRY_CTL_RESULT, 0, &out, sizeof(out.r) + inv.len, -1);
}

static void *entry_main(void *arg)
{
	struct entry *e = arg;
	static uint8_t body[SPRY_CTL_MAX_MSG];
	struct spry_ctl_hdr hdr;
	int c, n;

	/* one connection at a time, until the listener is shut down */
	while ((c = accept(e->lsn, NULL, NULL)) >= 0) {
		__atomic_add_fetch(&e->n_conns, 1, __ATOMIC_SEQ_CST);
		while ((n = spry_ctl_recv(c, body, sizeof(body), &hdr, NULL)) >= 0) {
			if (hdr.type != SPRY_CTL_INVOKE) {
				__atomic_add_fetch(&e->bad_invokes, 1, __ATOMIC_SEQ_CST);
				continue;
			}
			entry_answer(e, c, body, n);
		}
		close(c);
	}
	return NULL;
}

static void test_client(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct spry_client *c;
	struct entry e = {};
	char dir[] = "/tmp/spry-proto-XXXXXX", out[64];
	uint32_t status;
	size_t len;
	pthread_t tid;
	int ret, ok;

	if (!mkdtemp(dir)) {
		tap_skip("client", "mkdtemp failed");
		return;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/ctl.sock", dir);
	e.lsn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (e.lsn < 0 || bind(e.lsn, (struct sockaddr *)&sun, sizeof(sun)) ||
	    listen(e.lsn, 4) || pthread_create(&tid, NULL, entry_main, &e)) {
		tap_skip("client", "cannot set up a fake request entry");
		if (e.lsn >= 0)
			close(e.lsn);
		unlink(sun.sun_path);
		rmdir(dir);
		return;
	}

	c = spry_client_open(sun.sun_path);
	status = 99;
	len = 0;
	ret = c ? spry_client_invoke(c, "c1", "hello", 5, out, sizeof(out), &len, &status) : -errno;
	tap_ok(ret == 0 && status == SPRY_ST_OK && len == 5 && !memcmp(out, "HELLO", 5),
	       "client: INVOKE -> RESULT, payload and status (ret %d)", ret);

	ret = c ? spry_client_invoke(c, "c1", "busy", 4, out, sizeof(out), &len, &status) : -1;
	ok = ret == -EBUSY;
	ret = c ? spry_client_invoke(c, "c1", "again", 5, out, sizeof(out), &len, &status) : -1;
	tap_ok(ok && ret == 0 && len == 5 && !memcmp(out, "AGAIN", 5) && conns(&e) == 1,
	       "client: a refusal is returned as -errno, connection kept");

	ret = c ? spry_client_invoke(c, "c1", "xsmall", 6, out, 3, &len, &status) : -1;
	tap_ok(ret == -EMSGSIZE && len == 6,
	       "client: answer over out_cap: -EMSGSIZE, out_len says how much");

	ok = c && spry_client_invoke(c, "c1", "len", 3, out, sizeof(out), &len, &status) == -EPROTO &&
	     spry_client_invoke(c, "c1", "type", 4, out, sizeof(out), &len, &status) == -EPROTO &&
	     spry_client_invoke(c, "c1", "status", 6, out, sizeof(out), &len, &status) == -EPROTO;
	ret = c ? spry_client_invoke(c, "c1", "fine", 4, out, sizeof(out), &len, &status) : -1;
	tap_ok(ok && ret == 0 && !memcmp(out, "FINE", 4) && conns(&e) == 4,
	       "client: malformed results: -EPROTO, reconnects for the next request (%d conns)",
	       conns(&e));

	ok = c && spry_client_invoke(c, "", "x", 1, out, sizeof(out), &len, &status) == -EINVAL &&
	     spry_client_invoke(c, "0123456789012345678901234567890123", "x", 1, out,
				sizeof(out), &len, &status) == -EINVAL &&
	     spry_client_invoke(c, "c1", out, SPRY_CTL_MAX_MSG, out, sizeof(out), &len,
				&status) == -EMSGSIZE;
	tap_ok(ok && !__atomic_load_n(&e.bad_invokes, __ATOMIC_SEQ_CST),
	       "client: bad arguments refused before sending");

	spry_client_close(c);
	shutdown(e.lsn, SHUT_RDWR);
	pthread_join(tid, NULL);
	close(e.lsn);
	unlink(sun.sun_path);
	rmdir(dir);
}

int main(void)
{
	struct spry_ctl_hello_ack ack = { .tcp_port = 4242, .abi = SPRY_ABI_VERSION };
	struct spry_ctl_hello_ack got;
	struct spry_ctl_hdr hdr;
	char big[64], raw[64];
	int sv[2], fd, ret, pass[3], before;
	struct stat a, b;

	if (pair(sv))
		tap_skip_all("no AF_UNIX SOCK_SEQPACKET");

	ret = spry_ctl_send(sv[0], SPRY_CTL_HELLO_ACK, 0, &ack, sizeof(ack), -1);
	memset(&got, 0, sizeof(got));
	ret = ret ?: spry_ctl_recv(sv[1], &got, sizeof(got), &hdr, &fd);
	tap_ok(ret == sizeof(ack) && hdr.type == SPRY_CTL_HELLO_ACK &&
	       hdr.status == 0 && hdr.len == sizeof(ack) && fd == -1 &&
	       got.tcp_port == 4242 && got.abi == SPRY_ABI_VERSION,
	       "round trip: body, header, no fd (ret %d)", ret);

	ret = spry_ctl_send(sv[0], SPRY_CTL_REG_ACK, -ENOENT, NULL, 0, -1);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, NULL);
	tap_ok(ret == 0 && hdr.type == SPRY_CTL_REG_ACK && hdr.status == -ENOENT,
	       "empty body carries a negative status (ret %d)", ret);

	pass[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ret = spry_ctl_send(sv[0], SPRY_CTL_REG_ACK, 0, &ack, sizeof(ack), pass[0]);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, &fd);
	tap_ok(ret == sizeof(ack) && fd >= 0 && fd != pass[0] && !fstat(fd, &a) &&
	       !fstat(pass[0], &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
	       (fcntl(fd, F_GETFD) & FD_CLOEXEC),
	       "fd passed as SCM_RIGHTS, same file, close-on-exec");
	if (fd >= 0)
		close(fd);

	before = open_fds();
	ret = spry_ctl_send(sv[0], SPRY_CTL_REG_ACK, 0, &ack, sizeof(ack), pass[0]);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, NULL);
	tap_ok(ret == sizeof(ack) && open_fds() == before,
	       "recv_fd NULL closes a passed fd");

	pass[1] = dup(pass[0]);
	pass[2] = dup(pass[0]);
	hdr = (struct spry_ctl_hdr){ .magic = SPRY_CTL_MAGIC, .type = SPRY_CTL_HELLO,
				     .version = SPRY_ABI_VERSION, .len = 0 };
	before = open_fds();
	ret = send_raw(sv[0], &hdr, sizeof(hdr), pass, 3);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, &fd);
	tap_ok(ret == 0 && fd >= 0 && open_fds() == before + 1,
	       "three fds: first kept, extras closed");
	if (fd >= 0)
		close(fd);

	memset(raw, 0, sizeof(raw));
	hdr = (struct spry_ctl_hdr){ .magic = 0x12345678, .type = SPRY_CTL_HELLO,
				     .version = SPRY_ABI_VERSION, .len = 0 };
	memcpy(raw, &hdr, sizeof(hdr));
	ret = send_raw(sv[0], raw, sizeof(hdr), NULL, 0);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, &fd);
	tap_ok(ret == -EPROTO && fd == -1, "bad magic: -EPROTO (ret %d)", ret);

	hdr = (struct spry_ctl_hdr){ .magic = SPRY_CTL_MAGIC, .type = SPRY_CTL_HELLO,
				     .version = SPRY_ABI_VERSION + 1, .len = 0 };
	memcpy(raw, &hdr, sizeof(hdr));
	ret = send_raw(sv[0], raw, sizeof(hdr), NULL, 0);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, NULL);
	tap_ok(ret == -EPROTO, "bad version: -EPROTO (ret %d)", ret);

	hdr = (struct spry_ctl_hdr){ .magic = SPRY_CTL_MAGIC, .type = SPRY_CTL_HELLO,
				     .version = SPRY_ABI_VERSION, .len = 9 };
	memcpy(raw, &hdr, sizeof(hdr));
	ret = send_raw(sv[0], raw, sizeof(hdr) + 8, NULL, 0);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, NULL);
	tap_ok(ret == -EPROTO, "len != bytes received: -EPROTO (ret %d)", ret);

	ret = send_raw(sv[0], raw, 10, NULL, 0);
	ret = ret ?: spry_ctl_recv(sv[1], big, sizeof(big), &hdr, NULL);
	tap_ok(ret == -EPROTO, "shorter than a header: -EPROTO (ret %d)", ret);

	before = open_fds();
	ret = spry_ctl_send(sv[0], SPRY_CTL_RESULT, 0, raw, sizeof(raw), pass[0]);
	ret = ret ?: spry_ctl_recv(sv[1], big, 8, &hdr, &fd);
	tap_ok(ret == -EMSGSIZE && fd == -1 && open_fds() == before,
	       "truncated: -EMSGSIZE, passed fd closed (ret %d)", ret);

	/* Refused on the length alone: the body is never read. */
	ret = spry_ctl_send(sv[0], SPRY_CTL_RESULT, 0, big, SPRY_CTL_MAX_MSG, -1);
	tap_ok(ret == -EMSGSIZE, "oversized send: -EMSGSIZE (ret %d)", ret);

	close(sv[0]);
	ret = spry_ctl_recv(sv[1], big, sizeof(big), &hdr, &fd);
	tap_ok(ret == -ENOTCONN && fd == -1, "EOF: -ENOTCONN (ret %d)", ret);
	close(sv[1]);

	ret = spry_ctl_connect("/nonexistent/spry-test.sock");
	tap_ok(ret == -ENOENT, "connect to a missing path: -ENOENT (ret %d)", ret);

	close(pass[0]);
	close(pass[1]);
	close(pass[2]);

	test_client();
	return tap_finish();
}
