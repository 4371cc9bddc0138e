// SPDX-License-Identifier: GPL-2.0-only
/*
 * skmsg_pingpong: the raw kernel path a spry hop rides on.  Bare processes
 * pass a 64-byte message through a minimal SK_MSG redirect
 * (bench/pingpong.bpf.c: a SOCKHASH of loopback TCP sockets, the message's
 * first 4 bytes name the target), each sleeping in a blocking recv() like
 * a spry function does.  No spry code is involved.
 *
 *   skmsg_pingpong [-d SECS] [-z LEN] [-r K] [-e] [-m any|same|cross]...
 *
 * -r K (default 2) processes in a ring: process i sends to i+1, the last
 * to the first (K = 2: a ping-pong); the first measures the round trip.
 * For each placement (-m, default all three: any = wherever the scheduler
 * puts them, same = all pinned to CPU 0, cross = alternating CPU 0 and
 * CPU 1) prints
 *   mode=M ring=K len=L msgs=N rtt_p50_us=X rtt_p99_us=Y
 *   oneway_p50_us=X/K oneway_p99_us=Y/K
 * (one-way: the cost of one hop).  -e: the ring members other than the
 * first sleep in epoll_wait() and then recv(), as spry's runtime does
 * (mode gets an "-epoll" suffix).  Needs root (loads BPF); run it in a
 * private network namespace.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fn-runtime/parse.h"
#include "pingpong.skel.h"

#define WARMUP		2000
#define MAX_LEN		4096
#define MAX_RING	64

static unsigned int secs = 2, msg_len = 64, ring = 2;
static bool use_epoll;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		p += n;
		len -= n;
	}
	return 0;
}

static int send_full(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	/* one send: a message split over two would be judged twice */
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static void pin(int cpu)
{
	cpu_set_t set;
	int i, n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	if (cpu < 0) {
		for (i = 0; i < n && i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	} else {
		CPU_SET(cpu % n, &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Ring member @i: what arrives on @fd goes on to key i+1, until a stop. */
static void bouncer(unsigned int i, int fd, int cpu)
{
	unsigned char buf[MAX_LEN];
	uint32_t key = (i + 1) % ring;
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = -1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pin(cpu);
	if (use_epoll) {
		/* like a spry function: sleep in epoll_wait, then recv */
		ep = epoll_create1(0);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			_exit(1);
	}
	for (;;) {
		if (use_epoll && epoll_wait(ep, &ev, 1, -1) < 0)
			continue;
		if (read_full(fd, buf, msg_len))
			_exit(1);
		memcpy(buf, &key, sizeof(key));
		if (send_full(fd, buf, msg_len))
			_exit(1);
		if (buf[4])
			_exit(0);	/* the stop went on round the ring */
	}
}

static void reap(pid_t *pids)
{
	unsigned int i;

	for (i = 1; i < ring; i++) {
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	}
}

static int run(const char *mode, const int *fds)
{
	unsigned char buf[MAX_LEN] = {};
	pid_t pids[MAX_RING] = {};
	uint64_t *lat, t0, end;
	size_t n = 0, cap = 1 << 20, i;
	uint32_t key = 1;
	int k, place;

	if (!strcmp(mode, "same")) {
		place = 1;
	} else if (!strcmp(mode, "cross")) {
		place = 2;
	} else if (!strcmp(mode, "any")) {
		place = 0;
	} else {
		fprintf(stderr, "skmsg_pingpong: unknown mode %s\n", mode);
		return -EINVAL;
	}
	lat = malloc(cap * sizeof(*lat));
	if (!lat)
		return -ENOMEM;
	for (k = 1; k < (int)ring; k++) {
		pids[k] = fork();
		if (pids[k] < 0) {
			reap(pids);
			free(lat);
			return -errno;
		}
		if (!pids[k])
			bouncer(k, fds[k], place == 0 ? -1 : place == 1 ? 0 : k % 2);
	}
	pin(place == 0 ? -1 : 0);

	memcpy(buf, &key, sizeof(key));
	end = 0;
	for (i = 0;; i++) {
		t0 = now_ns();
		if (i == WARMUP)
			end = t0 + secs * 1000000000ull;
		if (end && t0 >= end)
			break;
		if (send_full(fds[0], buf, msg_len) || read_full(fds[0], buf, msg_len)) {
			fprintf(stderr, "skmsg_pingpong: %s: message lost\n", mode);
			reap(pids);
			free(lat);
			return -EIO;
		}
		memcpy(buf, &key, sizeof(key));
		if (i >= WARMUP && n < cap)
			lat[n++] = now_ns() - t0;
	}
	buf[4] = 1;	/* stop: each member passes it on and leaves */
	send_full(fds[0], buf, msg_len);
	read_full(fds[0], buf, msg_len);
	for (k = 1; k < (int)ring; k++)
		waitpid(pids[k], NULL, 0);
	pin(-1);

	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("mode=%s%s ring=%u len=%u msgs=%zu rtt_p50_us=%.2f rtt_p99_us=%.2f "
	       "oneway_p50_us=%.2f oneway_p99_us=%.2f\n",
	       mode, use_epoll ? "-epoll" : "", ring, msg_len, n, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3,
	       lat[n / 2] / 1e3 / ring, lat[n * 99 / 100] / 1e3 / ring);
	free(lat);
	return 0;
}

static int tcp_pair(int lsn, const struct sockaddr_in *sin, int *a, int *peer)
{
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (const struct sockaddr *)sin, sizeof(*sin)))
		return -errno;
	*peer = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
	return *peer < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	const char *modes[8];
	int n_modes = 0, c, lsn, fds[MAX_RING], peers[MAX_RING], map, ret, rc = 0, i;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	struct pingpong *skel;
	uint32_t key;
	uint64_t val, u;

	while ((c = getopt(argc, argv, "d:z:r:m:e")) != -1) {
		switch (c) {
		case 'e':
			use_epoll = true;
			break;
		case 'r':
			if (spry_num__parse(optarg, NULL, 1, UINT32_MAX, &u))
				goto usage;
			ring = u;
			break;
		case 'd':
			if (spry_num__parse(optarg, NULL, 1, UINT32_MAX, &u))
				goto usage;
			secs = u;
			break;
		case 'z':
			if (spry_num__parse(optarg, NULL, 1, UINT32_MAX, &u))
				goto usage;
			msg_len = u;
			break;
		case 'm':
			if (n_modes < 8)
				modes[n_modes++] = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || !secs || secs > 600 || msg_len < 8 || msg_len > MAX_LEN ||
	    ring < 2 || ring > MAX_RING)
		goto usage;
	if (!n_modes) {
		modes[n_modes++] = "any";
		modes[n_modes++] = "same";
		modes[n_modes++] = "cross";
	}

	skel = pingpong__open_and_load();
	if (!skel) {
		fprintf(stderr, "skmsg_pingpong: load: %s\n", strerror(errno));
		return 1;
	}
	map = bpf_map__fd(skel->maps.pp_socks);
	/* the verdict program first, then the sockets (docs/KERNEL.md) */
	ret = bpf_prog_attach(bpf_program__fd(skel->progs.pp_redirect), map,
			      BPF_SK_MSG_VERDICT, 0);
	if (ret) {
		fprintf(stderr, "skmsg_pingpong: attach: %s\n", strerror(errno));
		return 1;
	}
	lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsn < 0 || bind(lsn, (struct sockaddr *)&sin, sizeof(sin)) || listen(lsn, 4) ||
	    getsockname(lsn, (struct sockaddr *)&sin, &sl)) {
		fprintf(stderr, "skmsg_pingpong: sockets: %s\n", strerror(errno));
		return 1;
	}
	for (key = 0, ret = 0; key < ring && !ret; key++) {
		ret = tcp_pair(lsn, &sin, &fds[key], &peers[key]);
		if (ret) {
			fprintf(stderr, "skmsg_pingpong: sockets: %s\n", strerror(-ret));
			return 1;
		}
		val = fds[key];
		ret = bpf_map_update_elem(map, &key, &val, BPF_ANY);
	}
	if (ret) {
		fprintf(stderr, "skmsg_pingpong: sockhash: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n_modes; i++)
		if (run(modes[i], fds))
			rc = 1;
	pingpong__destroy(skel);
	return rc;
usage:
	fprintf(stderr, "usage: skmsg_pingpong [-d SECS] [-z LEN] [-r K] [-e] [-m any|same|cross]...\n");
	return 2;
}
