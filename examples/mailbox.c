// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mailbox: an app (docs/PROCESS.md) whose processes talk through their
 * mailboxes (spry_send, spry_send_all, spry_recv).  Each function takes
 * its arguments as words of the payload (numbers in decimal) and answers
 * one line:
 *
 *   whoami                       "ID"
 *   send PID MAILBOX DATA...     spry_send()'s result ("0" or "-ERRNO")
 *   sendall MAILBOX DATA...      "DELIVERED FAILED", or "-ERRNO"
 *   recv MAILBOX TIMEOUT_MS CAP  "FROM LEN DATA" (spry_recv), or "-ERRNO"
 *   flood PID MAILBOX N [SIZE]   N sends of SIZE (8) bytes: "OK FIRST_ERROR_AT ERROR"
 *   thread MODE IN OUT           a thread of the process, once: MODE echo
 *                                answers each mail of mailbox IN to its
 *                                sender's mailbox OUT; drain just reads IN
 *   ping PEER IN OUT N SIZE      N round trips (send SIZE bytes to PEER's
 *                                mailbox IN, wait for the echo on OUT):
 *                                "p50_ns p99_ns total_ns"
 *   stream PEER MAILBOX N SIZE   N sends of SIZE bytes one after the other
 *                                (each acknowledged): "total_ns"
 *   echo IN OUT N                N times: a mail of mailbox IN back to its
 *                                sender's mailbox OUT (10 s each): "N"
 *   drain IN N                   N mails of mailbox IN read (10 s each): "N"
 *   exchange MAILBOX ROUNDS      each round: "ROUND" to every other process
 *                                (spry_send_all), then one mail from each
 *                                of them; every sender's rounds checked in
 *                                order: "ROUNDS MAILS", or "bad ..."
 *
 *   spry app add mbox fns whoami,send,recv exec build/examples/mailbox
 *   curl -d '2 0 hello' http://127.0.0.1:8080/mbox/1/send
 *   curl -d '0 1000 64' http://127.0.0.1:8080/mbox/2/recv    # 1 5 hello
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spry/spry.h>

#define ARGS_MAX	6
#define DATA_MAX	(1u << 20)

/* Counts of messages a function takes: at most this many. */
#define COUNT_MAX	10000000u

/*
 * The payload's first @n words into @v (numbers), *@rest after them.  The
 * words in @boxes (bit k: word k) are mailbox numbers and those in @counts
 * counts of messages: out of range, 400.  (send, sendall, recv and flood
 * pass any mailbox on: they show what the library answers.)
 */
static int words(struct spry_req *req, unsigned int n, unsigned int boxes, unsigned int counts,
		 uint64_t *v, const char **rest, size_t *rest_len)
{
	size_t len, i = 0, s;
	const char *p = spry_req_data(req, &len);
	unsigned int k;

	for (k = 0; k < n; k++) {
		while (i < len && p[i] == ' ')
			i++;
		s = i;
		while (i < len && p[i] != ' ' && p[i] != '\n')
			i++;
		if (spry_parse_u64(p + s, i - s, 0, UINT64_MAX, &v[k]))
			return spry_req_error(req, 400, -EINVAL, "argument %u: not a number", k + 1);
		if ((boxes >> k & 1) && v[k] >= SPRY_MAILBOXES)
			return spry_req_error(req, 400, -EINVAL, "argument %u: mailbox 0..%u", k + 1,
					      SPRY_MAILBOXES - 1);
		if ((counts >> k & 1) && v[k] > COUNT_MAX)
			return spry_req_error(req, 400, -EINVAL, "argument %u: count 0..%u", k + 1,
					      COUNT_MAX);
	}
	if (i < len && p[i] == ' ')
		i++;
	if (rest) {
		*rest = p + i;
		*rest_len = len - i;
	}
	return 0;
}

static int reply_line(struct spry_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int reply_line(struct spry_req *req, const char *fmt, ...)
{
	char out[160];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, sizeof(out), fmt, ap);
	va_end(ap);
	return spry_req_reply(req, 0, "text/plain", out, n < 0 ? 0 : (size_t)n);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int f_whoami(struct spry_req *req, void *user)
{
	(void)user;
	return reply_line(req, "%" PRIu64 "\n", spry_process_id());
}

static int f_send(struct spry_req *req, void *user)
{
	const char *data;
	uint64_t v[2];
	size_t len;
	int err;

	(void)user;
	err = words(req, 2, 0, 0, v, &data, &len);
	if (err)
		return err;
	return reply_line(req, "%d\n", spry_send(v[0], (uint32_t)(v[1] > UINT32_MAX ? UINT32_MAX : v[1]),
						 data, len));
}

static int f_sendall(struct spry_req *req, void *user)
{
	const char *data;
	unsigned int failed;
	uint64_t v[1];
	size_t len;
	int err, n;

	(void)user;
	err = words(req, 1, 0, 0, v, &data, &len);
	if (err)
		return err;
	n = spry_send_all((uint32_t)(v[0] > UINT32_MAX ? UINT32_MAX : v[0]), data, len, &failed);
	if (n < 0)
		return reply_line(req, "%d\n", n);
	return reply_line(req, "%d %u\n", n, failed);
}

static int f_recv(struct spry_req *req, void *user)
{
	uint64_t v[3], from = 0;
	char *buf, *out;
	ssize_t n;
	size_t cap;
	int err, hl;

	(void)user;
	err = words(req, 3, 0, 0, v, NULL, NULL);
	if (err)
		return err;
	if (v[2] > DATA_MAX)
		return spry_req_error(req, 400, -EINVAL, "cap over %u", DATA_MAX);
	cap = (size_t)v[2];
	buf = malloc(cap + 48);
	if (!buf)
		return -ENOMEM;
	n = spry_recv((uint32_t)(v[0] > UINT32_MAX ? UINT32_MAX : v[0]), buf + 48, cap,
		      v[1] > INT32_MAX ? -1 : (int)v[1], &from);
	if (n < 0) {
		free(buf);
		return reply_line(req, "%zd\n", n);
	}
	/* "FROM LEN " right before the data */
	hl = snprintf(buf, 48, "%" PRIu64 " %zd ", from, n);
	out = buf + 48 - hl;
	memmove(out, buf, (size_t)hl);
	err = spry_req_reply(req, 0, "application/octet-stream", out, (size_t)hl + (size_t)n);
	free(buf);
	return err;
}

static int f_flood(struct spry_req *req, void *user)
{
	uint64_t v[4] = { 0, 0, 0, 8 }, i, ok = 0, at = 0;
	const char *rest;
	size_t rest_len, size;
	char *m;
	int err, first = 0;

	(void)user;
	err = words(req, 3, 0, 1u << 2, v, &rest, &rest_len);
	if (!err && rest_len && spry_parse_u64(rest, rest_len, 8, DATA_MAX, &v[3]))
		return spry_req_error(req, 400, -EINVAL, "SIZE: 8..%u", DATA_MAX);
	if (err)
		return err;
	size = (size_t)v[3];
	m = calloc(1, size);
	if (!m)
		return -ENOMEM;
	for (i = 0; i < v[2]; i++) {
		memcpy(m, &i, sizeof(i));
		err = spry_send(v[0], (uint32_t)(v[1] > UINT32_MAX ? UINT32_MAX : v[1]), m, size);
		if (!err) {
			ok++;
		} else if (!first) {
			first = err;
			at = i;
		}
	}
	free(m);
	return reply_line(req, "%" PRIu64 " %" PRIu64 " %d\n", ok, at, first);
}

struct thr {
	uint32_t	in, out;
	bool		echo;
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	static char buf[DATA_MAX];
	uint64_t from;
	ssize_t n;

	for (;;) {
		n = spry_recv(t->in, buf, sizeof(buf), -1, &from);
		if (n == -EPERM)
			return NULL;	/* the runtime is leaving */
		if (n >= 0 && t->echo)
			spry_send(from, t->out, buf, (size_t)n);
	}
}

static int f_thread(struct spry_req *req, void *user)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static struct thr t;
	static bool started;
	pthread_t th;
	uint64_t v[3];
	int err;

	(void)user;
	err = words(req, 3, 1u << 1 | 1u << 2, 0, v, NULL, NULL);
	if (err)
		return err;
	pthread_mutex_lock(&mu);
	if (!started) {
		t.echo = v[0] == 1;
		t.in = (uint32_t)(v[1]);
		t.out = (uint32_t)(v[2]);
		err = pthread_create(&th, NULL, thread_main, &t);
		if (!err) {
			pthread_detach(th);
			started = true;
		}
	}
	pthread_mutex_unlock(&mu);
	return err ? spry_req_error(req, 500, -err, "pthread_create: %s", strerror(err)) :
		     reply_line(req, "started\n");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int f_ping(struct spry_req *req, void *user)
{
	uint64_t v[5], i, t0, t, *lat;
	char *buf;
	ssize_t n;
	int err = 0;

	(void)user;
	err = words(req, 5, 1u << 1 | 1u << 2, 0, v, NULL, NULL);
	if (err)
		return err;
	if (!v[3] || v[3] > 10000000 || v[4] > DATA_MAX)
		return spry_req_error(req, 400, -EINVAL, "N 1..10^7, SIZE up to %u", DATA_MAX);
	lat = calloc(v[3], sizeof(*lat));
	buf = calloc(1, v[4] + 1);
	if (!lat || !buf) {
		free(lat);
		free(buf);
		return -ENOMEM;
	}
	t0 = now_ns();
	for (i = 0; i < v[3]; i++) {
		t = now_ns();
		err = spry_send(v[0], (uint32_t)v[1], buf, v[4]);
		if (err)
			break;
		n = spry_recv((uint32_t)v[2], buf, v[4] + 1, 5000, NULL);
		if (n < 0) {
			err = (int)n;
			break;
		}
		lat[i] = now_ns() - t;
	}
	t = now_ns() - t0;
	if (!err) {
		qsort(lat, v[3], sizeof(*lat), cmp_u64);
		err = reply_line(req, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", lat[v[3] / 2],
				 lat[v[3] * 99 / 100], t);
	} else {
		err = reply_line(req, "error %d at %" PRIu64 "\n", err, i);
	}
	free(lat);
	free(buf);
	return err;
}

static int f_stream(struct spry_req *req, void *user)
{
	uint64_t v[4], i, t, last;
	char *buf;
	int err = 0;

	(void)user;
	err = words(req, 4, 1u << 1, 1u << 2, v, NULL, NULL);
	if (err)
		return err;
	if (v[3] > DATA_MAX)
		return spry_req_error(req, 400, -EINVAL, "SIZE up to %u", DATA_MAX);
	buf = calloc(1, v[3] + 1);
	if (!buf)
		return -ENOMEM;
	t = last = now_ns();
	for (i = 0; i < v[2]; i++) {
		err = spry_send(v[0], (uint32_t)v[1], buf, v[3]);
		/* a full mailbox: the reader is behind; try again, for as
		 * long as a send may wait for its answer */
		if (err == -EAGAIN && now_ns() - last < (uint64_t)SPRY_MAIL_TIMEOUT_MS * 1000000u) {
			i--;
			continue;
		}
		last = now_ns();
		if (err)
			break;
	}
	t = now_ns() - t;
	free(buf);
	if (err)
		return reply_line(req, "error %d at %" PRIu64 "\n", err, i);
	return reply_line(req, "%" PRIu64 "\n", t);
}

static int f_echo(struct spry_req *req, void *user)
{
	static char buf[DATA_MAX];
	uint64_t v[3], i, from;
	ssize_t n;
	int err = 0;

	(void)user;
	err = words(req, 3, 1u << 0 | 1u << 1, 1u << 2, v, NULL, NULL);
	if (err)
		return err;
	for (i = 0; i < v[2]; i++) {
		n = spry_recv((uint32_t)v[0], buf, sizeof(buf), 10000, &from);
		if (n < 0) {
			err = (int)n;
			break;
		}
		err = spry_send(from, (uint32_t)v[1], buf, (size_t)n);
		if (err)
			break;
	}
	if (err)
		return reply_line(req, "error %d at %" PRIu64 "\n", err, i);
	return reply_line(req, "%" PRIu64 "\n", i);
}

static int f_drain(struct spry_req *req, void *user)
{
	static char buf[DATA_MAX];
	uint64_t v[2], i;
	ssize_t n = 0;

	(void)user;
	n = words(req, 2, 1u << 0, 1u << 1, v, NULL, NULL);
	if (n)
		return (int)n;
	for (i = 0; i < v[1]; i++) {
		n = spry_recv((uint32_t)v[0], buf, sizeof(buf), 10000, NULL);
		if (n < 0)
			return reply_line(req, "error %zd at %" PRIu64 "\n", n, i);
	}
	return reply_line(req, "%" PRIu64 "\n", i);
}

#define PEERS_MAX	64

static int f_exchange(struct spry_req *req, void *user)
{
	uint64_t v[2], r, from, peer[PEERS_MAX], next[PEERS_MAX], got, total = 0;
	unsigned int failed, n_peers = 0, k;
	char msg[24];
	ssize_t n;
	int sent;

	(void)user;
	n = words(req, 2, 1u << 0, 1u << 1, v, NULL, NULL);
	if (n)
		return (int)n;
	for (r = 0; r < v[1]; r++) {
		n = snprintf(msg, sizeof(msg), "%" PRIu64, r);
		sent = spry_send_all((uint32_t)v[0], msg, (size_t)n, &failed);
		if (sent < 0 || failed)
			return reply_line(req, "bad send_all %d failed %u round %" PRIu64 "\n",
					  sent, failed, r);
		for (got = 0; got < (uint64_t)sent; got++) {
			n = spry_recv((uint32_t)v[0], msg, sizeof(msg) - 1, 10000,
				      &from);
			if (n < 0)
				return reply_line(req, "bad recv %zd round %" PRIu64 "\n", n, r);
			msg[n] = '\0';
			for (k = 0; k < n_peers && peer[k] != from; k++)
				;
			if (k == n_peers) {
				if (n_peers == PEERS_MAX)
					return reply_line(req, "bad: too many peers\n");
				peer[k] = from;
				next[k] = 0;
				n_peers++;
			}
			/* each sender's rounds in order, none missed or doubled */
			if (strtoull(msg, NULL, 10) != next[k])
				return reply_line(req, "bad: from %" PRIu64 " '%s', expected %" PRIu64 "\n",
						  from, msg, next[k]);
			next[k]++;
			total++;
		}
	}
	return reply_line(req, "%" PRIu64 " %" PRIu64 "\n", r, total);
}

static const struct spry_app_fn fns[] = {
	{ "whoami", f_whoami },
	{ "send", f_send },
	{ "sendall", f_sendall },
	{ "recv", f_recv },
	{ "flood", f_flood },
	{ "thread", f_thread },
	{ "ping", f_ping },
	{ "stream", f_stream },
	{ "echo", f_echo },
	{ "drain", f_drain },
	{ "exchange", f_exchange },
};

int main(int argc, char **argv)
{
	return spry_app_main(argc, argv, fns, sizeof(fns) / sizeof(fns[0]), NULL);
}
