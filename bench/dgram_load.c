// SPDX-License-Identifier: GPL-2.0-only
/*
 * Datagram request load generator (bench/dgram_bench.sh): keeps WINDOW
 * requests outstanding against HOST:PORT for SECS seconds, one UDP socket,
 * and checks every response (magic, RESPONSE flag, chain, req_id, status
 * OK, length).  A request unanswered after 200 ms counts as lost and its
 * window slot is reused.  The window's free slots go out in one
 * sendmmsg() and responses are read with recvmmsg(), so the generator's
 * own syscalls are not what bounds a fast server.  Prints one line:
 *
 *   responses=N secs=S rps=R p50_us=A p99_us=B lost=L late=T bad=X gen_cpu=C
 *
 * (late: a response that came after its request counted as lost; bad:
 * any other response that is not the expected one; gen_cpu: the CPUs the
 * generator kept busy, user + system, softirq work done in its syscalls
 * included: near 1.00 it is the bound.)
 *
 * usage: dgram_load HOST PORT CHAIN SECS WINDOW LEN [SRC]
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <linux/types.h>
#include "spry/abi.h"
#include "fn-runtime/parse.h"

#define MAX_WINDOW	1024
#define MAX_LEN		1400
#define LOST_NS		(200ULL * 1000000ULL)
#define MAX_SAMPLES	(16u << 20)
#define RX_BATCH	64	/* responses per recvmmsg() */

struct slot {
	uint64_t	seq;	/* request in flight, 0 = none */
	uint64_t	t_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static long arg(const char *s, long min, long max, const char *what)
{
	uint64_t v;

	if (spry_num__parse(s, NULL, (uint64_t)min, (uint64_t)max, &v)) {
		fprintf(stderr, "dgram_load: bad %s '%s' (%ld..%ld)\n", what, s, min, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static struct slot slots[MAX_WINDOW];
	static uint8_t out[MAX_WINDOW][sizeof(struct spry_dgram_hdr) + MAX_LEN];
	static uint8_t in[RX_BATCH][sizeof(struct spry_dgram_hdr) + MAX_LEN + 64];
	static struct mmsghdr smsg[MAX_WINDOW], rmsg[RX_BATCH];
	static struct iovec siov[MAX_WINDOW], riov[RX_BATCH];
	static uint32_t which[MAX_WINDOW];
	struct rusage ru0, ru1;
	uint32_t n_out, sent, j;
	double cpu;
	int k;
	struct sockaddr_in dst = { .sin_family = AF_INET }, src = { .sin_family = AF_INET };
	uint64_t seq = 0, responses = 0, lost = 0, bad = 0, late = 0, t0, t_end, now, tx;
	struct spry_dgram_hdr h;
	uint32_t *lat, n_lat = 0, i;
	long chain, secs, window, len;
	struct pollfd pfd;
	int fd, sz = 4 << 20;
	ssize_t n;

	if (argc < 7 || argc > 8) {
		fprintf(stderr, "usage: dgram_load HOST PORT CHAIN SECS WINDOW LEN [SRC]\n");
		return 2;
	}
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 ||
	    (argc == 8 && inet_pton(AF_INET, argv[7], &src.sin_addr) != 1)) {
		fprintf(stderr, "dgram_load: bad IPv4 address\n");
		return 2;
	}
	dst.sin_port = htons((uint16_t)arg(argv[2], 1, 65535, "port"));
	chain = arg(argv[3], 1, SPRY_MAX_CHAINS - 1, "chain");
	secs = arg(argv[4], 1, 3600, "seconds");
	window = arg(argv[5], 1, MAX_WINDOW, "window");
	len = arg(argv[6], 0, MAX_LEN, "length");
	lat = malloc(MAX_SAMPLES * sizeof(*lat));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!lat || fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
		perror("dgram_load: socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));

	for (i = 0; i < MAX_WINDOW; i++) {
		memset(out[i], 'a', sizeof(out[i]));
		siov[i].iov_base = out[i];
		siov[i].iov_len = sizeof(h) + (size_t)len;
		smsg[i].msg_hdr.msg_iov = &siov[i];
		smsg[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < RX_BATCH; i++) {
		riov[i].iov_base = in[i];
		riov[i].iov_len = sizeof(in[i]);
		rmsg[i].msg_hdr.msg_iov = &riov[i];
		rmsg[i].msg_hdr.msg_iovlen = 1;
	}
	memset(&h, 0, sizeof(h));
	h.magic = htonl(SPRY_DGRAM_MAGIC);
	h.version = SPRY_DGRAM_VERSION;
	h.chain = htons((uint16_t)chain);
	h.len = htonl((uint32_t)len);
	pfd.fd = fd;
	pfd.events = POLLIN;

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	t_end = t0 + (uint64_t)secs * 1000000000ULL;
	for (now = t0; now < t_end; now = now_ns()) {
		/*
		 * Fill the window (slots of lost requests reused): one
		 * sendmmsg() for all of them, so the generator's syscalls do
		 * not bound what it can offer.
		 */
		for (i = 0, n_out = 0; i < (uint32_t)window; i++) {
			if (slots[i].seq && now - slots[i].t_ns < LOST_NS)
				continue;
			if (slots[i].seq)
				lost++;
			seq++;
			/* req_id: slot in the low 16 bits, sequence above */
			h.req_id = (seq << 16) | i;
			memcpy(out[n_out], &h, sizeof(h));
			slots[i].seq = seq;
			slots[i].t_ns = now;
			which[n_out++] = i;
		}
		for (sent = 0; sent < n_out; sent += (uint32_t)k) {
			k = sendmmsg(fd, smsg + sent, n_out - sent, 0);
			if (k <= 0) {
				if (k < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR) {
					perror("dgram_load: sendmmsg");
					return 1;
				}
				break;
			}
		}
		for (i = sent; i < n_out; i++)
			slots[which[i]].seq = 0;	/* not sent: free again */
		if (poll(&pfd, 1, 10) < 0 && errno != EINTR) {
			perror("dgram_load: poll");
			return 1;
		}
		while ((k = recvmmsg(fd, rmsg, RX_BATCH, MSG_DONTWAIT, NULL)) > 0) {
			tx = now_ns();
			for (j = 0; j < (uint32_t)k; j++) {
				struct spry_dgram_hdr r;
				uint64_t id;

				n = rmsg[j].msg_len;
				if ((size_t)n < sizeof(r)) {
					bad++;
					continue;
				}
				memcpy(&r, in[j], sizeof(r));
				id = r.req_id;
				i = (uint32_t)(id & 0xffff);
				if (ntohl(r.magic) != SPRY_DGRAM_MAGIC ||
				    r.flags != SPRY_DGF_RESPONSE || ntohs(r.chain) != chain ||
				    r.status != SPRY_ST_OK || ntohl(r.len) != (uint32_t)len ||
				    (size_t)n != sizeof(r) + (size_t)len || i >= (uint32_t)window) {
					bad++;
					continue;
				}
				if (slots[i].seq != id >> 16) {
					late++;		/* answered after it counted as lost */
					continue;
				}
				if (n_lat < MAX_SAMPLES)
					lat[n_lat++] = (uint32_t)((tx - slots[i].t_ns) / 1000);
				slots[i].seq = 0;
				responses++;
			}
			if ((uint32_t)k < RX_BATCH)
				break;
		}
	}
	now = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
		       ru0.ru_stime.tv_sec) +
	      (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
		       ru0.ru_stime.tv_usec) / 1e6;
	qsort(lat, n_lat, sizeof(*lat), cmp_u32);
	printf("responses=%llu secs=%.2f rps=%.0f p50_us=%u p99_us=%u lost=%llu late=%llu bad=%llu "
	       "gen_cpu=%.2f\n",
	       (unsigned long long)responses, (double)(now - t0) / 1e9,
	       (double)responses * 1e9 / (double)(now - t0),
	       n_lat ? lat[n_lat / 2] : 0, n_lat ? lat[(uint64_t)n_lat * 99 / 100] : 0,
	       (unsigned long long)lost, (unsigned long long)late, (unsigned long long)bad,
	       cpu * 1e9 / (double)(now - t0));
	free(lat);
	close(fd);
	return 0;
}
