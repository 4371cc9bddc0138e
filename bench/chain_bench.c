// SPDX-License-Identifier: GPL-2.0-only
/*
 * chain_bench: closed-loop load on a 3-function chain (upper, reverse,
 * wordcount), through spry or through a plain-TCP baseline.
 *
 *   chain_bench spry -s SOCK -c CHAIN [-t THREADS] [-d SECS] [-z LEN]
 *	THREADS clients (one spry_client each) invoke CHAIN through
 *	spryd's request entry for SECS seconds.
 *
 *	-a HOPS: CHAIN is instead one of bench/compare.sh's chains, HOPS
 *	functions alternating upper (even hops) and reverse (odd hops); its
 *	answers are checked against that (bench/hop_bench.sh: the hop
 *	without the HTTP front).
 *
 *   chain_bench tcp [-t THREADS] [-d SECS] [-z LEN]
 *	The baseline: the same three handlers (examples/transforms.h) in
 *	three relay processes chained by loopback TCP (TCP_NODELAY, one
 *	epoll loop each, like a spry function).  A request goes client ->
 *	upper -> reverse -> wordcount, the answer back the same way.
 *
 * Every answer is checked against the expected bytes.  Prints one line:
 *   mode=M threads=T requests=N errors=E secs=S rps=R p50_us=X p99_us=Y
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"
#include "examples/transforms.h"

#define MAX_LEN		4096
#define FRAME_MAX	(MAX_LEN + XF_HEAD_MAX)
#define N_STAGES	3
#define WARMUP		100	/* requests per thread before timing */

enum mode { M_SPRY, M_TCP };

static enum mode mode;
static const char *sock_path, *chain;
static unsigned int n_threads = 1, secs = 5, req_len = 64, alt_hops;
static uint16_t stage_port[N_STAGES];
static unsigned char req_buf[MAX_LEN], want_buf[FRAME_MAX];
static size_t want_len;

struct worker {
	pthread_t	tid;
	uint64_t	deadline;
	uint64_t	*lat;
	size_t		n_lat, cap_lat;
	uint64_t	errors;
	int		err;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		p += n;
		len -= n;
	}
	return 0;
}

/* ------------------------------------------------------ TCP baseline */

struct rconn {
	int		fd;
	int		peer;		/* index of the paired connection, -1 */
	bool		up;		/* from the previous stage (or client) */
	size_t		have;
	unsigned char	buf[2 * (FRAME_MAX + 4)];
};

static int tcp_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (tcp_nodelay(fd) || connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Apply stage @s's handler to a frame payload in place; new length. */
static size_t stage_apply(int s, unsigned char *p, size_t len)
{
	char head[XF_HEAD_MAX];
	int h;

	switch (s) {
	case 0:
		xf_upper(p, len);
		return len;
	case 1:
		xf_reverse(p, len);
		return len;
	default:
		h = xf_wordcount_head(p, len, head, sizeof(head));
		if (h < 0)
			return len;
		memmove(p + h, p, len);
		memcpy(p, head, h);
		return len + h;
	}
}

#define MAX_RCONN	256

/* One relay stage: an epoll loop until killed. */
static void relay_main(int s, int lsn)
{
	static struct rconn conns[MAX_RCONN];
	struct epoll_event ev, evs[32];
	int ep, n, i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = MAX_RCONN };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lsn, &ev))
		_exit(1);
	for (i = 0; i < MAX_RCONN; i++)
		conns[i].fd = -1;

	for (;;) {
		n = epoll_wait(ep, evs, 32, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(1);
		for (i = 0; i < n; i++) {
			uint32_t k = evs[i].data.u32;
			struct rconn *c;
			ssize_t r;

			if (k == MAX_RCONN) {
				int u, d = -1, a, b;

				u = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
				if (u < 0)
					continue;
				tcp_nodelay(u);
				if (s + 1 < N_STAGES) {
					d = tcp_connect(stage_port[s + 1]);
					if (d < 0) {
						close(u);
						continue;
					}
				}
				for (a = 0; a < MAX_RCONN && conns[a].fd >= 0; a++)
					;
				for (b = a + 1; b < MAX_RCONN && conns[b].fd >= 0; b++)
					;
				if (b >= MAX_RCONN) {
					close(u);
					if (d >= 0)
						close(d);
					continue;
				}
				conns[a] = (struct rconn){ .fd = u, .peer = d >= 0 ? b : -1, .up = true };
				ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = a };
				epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
				if (d >= 0) {
					conns[b] = (struct rconn){ .fd = d, .peer = a, .up = false };
					ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = b };
					epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev);
				}
				continue;
			}
			c = &conns[k];
			r = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				/* one side closed: close the pair */
				if (c->peer >= 0) {
					close(conns[c->peer].fd);
					conns[c->peer].fd = -1;
				}
				close(c->fd);
				c->fd = -1;
				continue;
			}
			if (!c->up) {
				/* answers going back: bytes pass through */
				write_all(conns[c->peer].fd, c->buf, r);
				continue;
			}
			c->have += r;
			for (;;) {
				uint32_t len;
				size_t out;

				if (c->have < 4)
					break;
				memcpy(&len, c->buf, 4);
				if (len > MAX_LEN) {
					c->have = 0;	/* garbage: drop it */
					break;
				}
				if (c->have < 4 + len)
					break;
				{
					unsigned char frame[4 + FRAME_MAX];
					uint32_t olen;

					/* handled in a copy: wordcount grows it */
					memcpy(frame + 4, c->buf + 4, len);
					out = stage_apply(s, frame + 4, len);
					olen = out;
					memcpy(frame, &olen, 4);
					write_all(c->peer >= 0 ? conns[c->peer].fd : c->fd,
						  frame, 4 + out);
				}
				c->have -= 4 + len;
				memmove(c->buf, c->buf + 4 + len, c->have);
			}
		}
	}
}

static int relays_start(pid_t pids[N_STAGES])
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int lsn[N_STAGES], s;

	for (s = 0; s < N_STAGES; s++) {
		socklen_t sl = sizeof(sin);

		sin.sin_port = 0;
		lsn[s] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lsn[s] < 0 || bind(lsn[s], (struct sockaddr *)&sin, sizeof(sin)) ||
		    listen(lsn[s], 128) ||
		    getsockname(lsn[s], (struct sockaddr *)&sin, &sl))
			return -errno;
		stage_port[s] = ntohs(sin.sin_port);
	}
	for (s = 0; s < N_STAGES; s++) {
		pids[s] = fork();
		if (pids[s] < 0)
			return -errno;
		if (!pids[s])
			relay_main(s, lsn[s]);
	}
	for (s = 0; s < N_STAGES; s++)
		close(lsn[s]);
	return 0;
}

/* ------------------------------------------------------ clients */

static int lat_push(struct worker *w, uint64_t ns)
{
	if (w->n_lat == w->cap_lat) {
		size_t cap = w->cap_lat ? w->cap_lat * 2 : 65536;
		uint64_t *p = realloc(w->lat, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->lat = p;
		w->cap_lat = cap;
	}
	w->lat[w->n_lat++] = ns;
	return 0;
}

static void *worker_spry(void *arg)
{
	struct worker *w = arg;
	unsigned char *out = malloc(FRAME_MAX);
	struct spry_client *c;
	unsigned int i;

	c = spry_client_open(sock_path);
	if (!c || !out) {
		w->err = c ? -ENOMEM : -errno;
		goto out;
	}
	for (i = 0;; i++) {
		uint64_t t0 = now_ns();
		uint32_t status;
		size_t len;
		int ret;

		if (i >= WARMUP && t0 >= w->deadline)
			break;
		ret = spry_client_invoke(c, chain, req_buf, req_len, out, FRAME_MAX,
					 &len, &status);
		if (ret || status || len != want_len || memcmp(out, want_buf, len)) {
			if (w->errors++ < 3)
				fprintf(stderr, "chain_bench: spry: ret %d status %u len %zu\n",
					ret, ret ? 0 : status, ret ? 0 : len);
			if (ret == -ENOTCONN || ret == -ENOENT)
				break;
			continue;
		}
		if (i >= WARMUP && lat_push(w, now_ns() - t0)) {
			w->err = -ENOMEM;
			break;
		}
	}
out:
	spry_client_close(c);
	free(out);
	return NULL;
}

static void *worker_tcp(void *arg)
{
	struct worker *w = arg;
	unsigned char frame[4 + FRAME_MAX];
	uint32_t len = req_len;
	unsigned int i;
	int fd;

	fd = tcp_connect(stage_port[0]);
	if (fd < 0) {
		w->err = fd;
		return NULL;
	}
	for (i = 0;; i++) {
		uint64_t t0 = now_ns();
		int ret;

		if (i >= WARMUP && t0 >= w->deadline)
			break;
		memcpy(frame, &len, 4);
		memcpy(frame + 4, req_buf, req_len);
		ret = write_all(fd, frame, 4 + req_len);
		ret = ret ?: read_all(fd, frame, 4);
		if (!ret) {
			uint32_t olen;

			memcpy(&olen, frame, 4);
			ret = olen > FRAME_MAX ? -EPROTO : read_all(fd, frame + 4, olen);
			if (!ret && (olen != want_len || memcmp(frame + 4, want_buf, olen)))
				ret = -EBADMSG;
		}
		if (ret) {
			w->errors++;
			if (ret != -EBADMSG)
				break;
			continue;
		}
		if (i >= WARMUP && lat_push(w, now_ns() - t0)) {
			w->err = -ENOMEM;
			break;
		}
	}
	close(fd);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int parse_u(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	uint32_t v;
	int err;

	err = spry_num__parse_u32(s, min, max, &v);
	if (!err)
		*out = v;
	return err;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: chain_bench spry -s SOCK -c CHAIN [-a HOPS] [-t THREADS] [-d SECS] [-z LEN]\n"
		"       chain_bench tcp [-t THREADS] [-d SECS] [-z LEN]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const char text[] = "the quick brown fox jumps over the lazy dog\n";
	pid_t relays[N_STAGES] = {};
	uint64_t t0, t1, *lat, errors = 0;
	size_t n_lat = 0, i;
	struct worker *ws;
	int c, ret, s, rc = 0;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "spry"))
		mode = M_SPRY;
	else if (!strcmp(argv[1], "tcp"))
		mode = M_TCP;
	else
		usage();
	optind = 2;
	while ((c = getopt(argc, argv, "s:c:a:t:d:z:")) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'c':
			chain = optarg;
			break;
		case 'a':
			if (parse_u(optarg, 1, 64, &alt_hops))
				usage();
			break;
		case 't':
			if (parse_u(optarg, 1, 256, &n_threads))
				usage();
			break;
		case 'd':
			if (parse_u(optarg, 1, 600, &secs))
				usage();
			break;
		case 'z':
			if (parse_u(optarg, 1, MAX_LEN, &req_len))
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (mode == M_SPRY && (!sock_path || !chain)) ||
	    (alt_hops && mode != M_SPRY))
		usage();
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < req_len; i++)
		req_buf[i] = text[i % (sizeof(text) - 1)];
	memcpy(want_buf, req_buf, req_len);
	want_len = req_len;
	for (s = 0; !alt_hops && s < N_STAGES; s++)
		want_len = stage_apply(s, want_buf, want_len);
	for (s = 0; s < (int)alt_hops; s++)
		stage_apply(s % 2, want_buf, want_len);

	if (mode == M_TCP) {
		ret = relays_start(relays);
		if (ret) {
			fprintf(stderr, "chain_bench: relays: %s\n", strerror(-ret));
			return 1;
		}
	}

	ws = calloc(n_threads, sizeof(*ws));
	if (!ws)
		return 1;
	t0 = now_ns();
	for (i = 0; i < n_threads; i++) {
		ws[i].deadline = t0 + (uint64_t)secs * 1000000000ull;
		if (pthread_create(&ws[i].tid, NULL,
				   mode == M_SPRY ? worker_spry : worker_tcp, &ws[i])) {
			fprintf(stderr, "chain_bench: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < n_threads; i++)
		pthread_join(ws[i].tid, NULL);
	t1 = now_ns();

	if (mode == M_TCP) {
		for (s = 0; s < N_STAGES; s++)
			if (relays[s] > 0)
				kill(relays[s], SIGTERM);
		for (s = 0; s < N_STAGES; s++)
			if (relays[s] > 0)
				waitpid(relays[s], NULL, 0);
	}

	for (i = 0; i < n_threads; i++) {
		n_lat += ws[i].n_lat;
		errors += ws[i].errors;
		if (ws[i].err) {
			fprintf(stderr, "chain_bench: client %zu: %s\n", i, strerror(-ws[i].err));
			rc = 1;
		}
	}
	lat = malloc((n_lat ? n_lat : 1) * sizeof(*lat));
	if (!lat)
		return 1;
	for (i = 0, n_lat = 0; i < n_threads; i++) {
		memcpy(lat + n_lat, ws[i].lat, ws[i].n_lat * sizeof(*lat));
		n_lat += ws[i].n_lat;
		free(ws[i].lat);
	}
	qsort(lat, n_lat, sizeof(*lat), cmp_u64);
	/* rps over the timed window (warm-up requests are not counted) */
	printf("mode=%s threads=%u requests=%zu errors=%llu secs=%.2f rps=%.0f p50_us=%.1f p99_us=%.1f\n",
	       mode == M_SPRY ? "spry" : "tcp", n_threads, n_lat,
	       (unsigned long long)errors, (t1 - t0) / 1e9,
	       n_lat / ((t1 - t0) / 1e9),
	       n_lat ? lat[n_lat / 2] / 1e3 : 0.0,
	       n_lat ? lat[n_lat * 99 / 100] / 1e3 : 0.0);
	free(lat);
	free(ws);
	return rc || errors || !n_lat ? 1 : 0;
}
