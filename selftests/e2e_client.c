// SPDX-License-Identifier: GPL-2.0-only
/*
 * Load client for the end-to-end test (selftests/test_e2e.sh).
 *
 *   e2e_client -s SOCK -c CHAIN -n N [-t THREADS] [-x STEPS] [-z MAXLEN]
 *	N requests over THREADS clients (one spry_client each), every
 *	payload unique (it carries the request number), every response
 *	checked byte for byte against STEPS (comma-separated: upper,
 *	reverse, wordcount; default all three in that order), computed here
 *	independently of the examples.  Prints one summary line (long=K:
 *	answers over 4096 bytes, which cannot fit spry's default buffer);
 *	exits 0 only if every request came back exactly once and right.
 *
 *   e2e_client pool PATH
 *	Print a pool's buffer counts (PATH: a pool file, or
 *	/proc/PID/fd/N of a process holding the pool's memfd).
 *
 *   e2e_client invoke SOCK CHAIN PAYLOAD
 *	One request; the response payload on stdout.  Exit 0 for status
 *	OK, 3 for another status ("status=N" on stderr), 1 when spryd
 *	refused or failed ("invoke: ERROR" on stderr).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fn-runtime/parse.h"
#include "spry/spry.h"

#define MAX_STEPS	8
#define OUT_MAX		(128 * 1024)
/* spry's default buffer size: a longer answer was moved to a bigger buffer */
#define LONG_OUT	4096

enum step { ST_UPPER, ST_REVERSE, ST_WORDCOUNT };

static const char *sock_path, *chain;
static unsigned int n_req, n_threads = 4, max_len = 200;
static enum step steps[MAX_STEPS];
static unsigned int n_steps;

struct worker {
	pthread_t	tid;
	unsigned int	idx;
	unsigned int	first, count;	/* request numbers [first, first+count) */
	unsigned int	ok, wrong, dup, errors, bad_status;
	unsigned int	n_long;		/* answers over LONG_OUT bytes */
	unsigned int	status_hist[SPRY_ST_MAX];
	uint64_t	*lat_ns;	/* per request */
	unsigned int	n_lat;
	int		open_err;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * Request @i's payload: unique (it starts with i), of varying words and
 * lines, its length spread over [~10, max_len] (every fourth one as long
 * as max_len allows).
 */
static size_t make_payload(unsigned int i, char *buf, size_t cap)
{
	static const char *const words[] = {
		"alpha", "Bravo", "charlie", "delta\techo", "fox\n", "golf  ",
		"hotel-india", "\n\n", "juliet", "kilo,lima", "MIKE", "november",
	};
	size_t len, room = max_len < cap ? max_len : cap, target;
	unsigned int w = i * 2654435761u;
	int n;

	target = i % 4 == 0 ? room : (w >> 7) % (room + 1);
	n = snprintf(buf, room, "req %u:", i);
	len = n > 0 && (size_t)n < room ? (size_t)n : 0;
	while (len < target) {
		const char *s = words[(w >> 3) % 12];
		size_t sl = strlen(s);

		if (len + 1 + sl > target) {
			/* fill to the exact target with a partial word */
			memset(buf + len, 'z', target - len);
			len = target;
			break;
		}
		buf[len++] = ' ';
		memcpy(buf + len, s, sl);
		len += sl;
		w = w * 1103515245u + 12345u;
	}
	return len;
}

/* The reference: what the chain must answer for @in. */
static size_t expect(const char *in, size_t len, char *out)
{
	unsigned int s;
	size_t i, n = len;

	memcpy(out, in, len);
	for (s = 0; s < n_steps; s++) {
		switch (steps[s]) {
		case ST_UPPER:
			for (i = 0; i < n; i++)
				out[i] = (out[i] >= 'a' && out[i] <= 'z') ? out[i] - 32 : out[i];
			break;
		case ST_REVERSE:
			for (i = 0; i < n / 2; i++) {
				char t = out[i];

				out[i] = out[n - 1 - i];
				out[n - 1 - i] = t;
			}
			break;
		case ST_WORDCOUNT: {
			unsigned long long words = 0, lines = 0;
			char head[96];
			bool in = false;
			int h;

			for (i = 0; i < n; i++) {
				unsigned char c = out[i];
				bool sp = c == ' ' || c == '\t' || c == '\n' ||
					  c == '\v' || c == '\f' || c == '\r';

				lines += c == '\n';
				if (sp)
					in = false;
				else if (!in)
					words += (in = true);
			}
			h = snprintf(head, sizeof(head), "words=%llu lines=%llu bytes=%zu\n",
				     words, lines, n);
			memmove(out + h, out, n);
			memcpy(out, head, h);
			n += h;
			break;
		}
		}
	}
	return n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char *in, *out, *want, *prev;
	size_t in_len, out_len, want_len, prev_len = 0;
	struct spry_client *c;
	unsigned int k;

	in = malloc(OUT_MAX);
	out = malloc(OUT_MAX);
	want = malloc(OUT_MAX);
	prev = malloc(OUT_MAX);
	w->lat_ns = calloc(w->count ? w->count : 1, sizeof(*w->lat_ns));
	if (!in || !out || !want || !prev || !w->lat_ns) {
		w->open_err = -ENOMEM;
		goto out;
	}
	c = spry_client_open(sock_path);
	if (!c) {
		w->open_err = -errno;
		goto out;
	}
	for (k = 0; k < w->count; k++) {
		unsigned int i = w->first + k;
		uint32_t status = 0;
		uint64_t t0;
		int ret;

		in_len = make_payload(i, in, OUT_MAX / 2);
		want_len = expect(in, in_len, want);
		t0 = now_ns();
		ret = spry_client_invoke(c, chain, in, in_len, out, OUT_MAX, &out_len,
					 &status);
		w->lat_ns[w->n_lat++] = now_ns() - t0;
		if (ret) {
			if (w->errors++ < 3)
				fprintf(stderr, "e2e: request %u: invoke: %s\n", i, strerror(-ret));
			continue;
		}
		if (status < SPRY_ST_MAX)
			w->status_hist[status]++;
		if (status != SPRY_ST_OK) {
			if (w->bad_status++ < 3)
				fprintf(stderr, "e2e: request %u: status %u\n", i, status);
			continue;
		}
		if (out_len == want_len && !memcmp(out, want, want_len)) {
			w->ok++;
			w->n_long += out_len > LONG_OUT;
		} else if (k && out_len == prev_len && !memcmp(out, prev, prev_len)) {
			w->dup++;
			fprintf(stderr, "e2e: request %u: got request %u's answer again\n", i, i - 1);
		} else {
			if (w->wrong++ < 3)
				fprintf(stderr, "e2e: request %u: wrong answer (%zu bytes, want %zu): %.*s\n",
					i, out_len, want_len, (int)(out_len < 80 ? out_len : 80), out);
		}
		memcpy(prev, want, want_len);
		prev_len = want_len;
	}
	spry_client_close(c);
out:
	free(prev);
	free(want);
	free(out);
	free(in);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int parse_steps(const char *s)
{
	char buf[256], *tok, *save;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	n_steps = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n_steps == MAX_STEPS)
			return -EINVAL;
		if (!strcmp(tok, "upper"))
			steps[n_steps++] = ST_UPPER;
		else if (!strcmp(tok, "reverse"))
			steps[n_steps++] = ST_REVERSE;
		else if (!strcmp(tok, "wordcount"))
			steps[n_steps++] = ST_WORDCOUNT;
		else
			return -EINVAL;
	}
	return 0;
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

static int pool_cmd(const char *path)
{
	struct spry_pool_stats st;
	struct spry_pool *pool;
	int ret;

	pool = spry_pool_open(path);
	if (!pool) {
		fprintf(stderr, "e2e_client: %s: %s\n", path, strerror(errno));
		return 1;
	}
	ret = spry_pool_stats(pool, &st);
	spry_pool_close(pool);
	if (ret) {
		fprintf(stderr, "e2e_client: pool stats: %s\n", strerror(-ret));
		return 1;
	}
	printf("n_bufs=%u n_free=%u n_large=%u n_large_free=%u buf_size=%u\n",
	       st.n_bufs, st.n_free, st.n_large, st.n_large_free, st.buf_size);
	return 0;
}

static int invoke_cmd(const char *sock, const char *ch, const char *payload)
{
	struct spry_client *c;
	uint32_t status = 0;
	size_t len = 0;
	char *out;
	int ret;

	out = malloc(OUT_MAX);
	c = spry_client_open(sock);
	if (!c || !out) {
		fprintf(stderr, "invoke: %s\n", strerror(out ? errno : ENOMEM));
		free(out);
		return 1;
	}
	ret = spry_client_invoke(c, ch, payload, strlen(payload), out, OUT_MAX, &len,
				 &status);
	spry_client_close(c);
	if (ret) {
		fprintf(stderr, "invoke: %s\n", strerror(-ret));
		free(out);
		return 1;
	}
	fwrite(out, 1, len, stdout);
	free(out);
	if (status != SPRY_ST_OK) {
		fprintf(stderr, "status=%u\n", status);
		return 3;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: e2e_client -s SOCK -c CHAIN -n N [-t THREADS] [-x STEPS] [-z MAXLEN]\n"
		"       e2e_client pool PATH\n"
		"       e2e_client invoke SOCK CHAIN PAYLOAD\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned int i, ok = 0, wrong = 0, dup = 0, errors = 0, bad = 0, n_lat = 0;
	unsigned int n_long = 0;
	unsigned int hist[SPRY_ST_MAX] = {};
	struct worker *ws;
	uint64_t t0, t1, *lat;
	int c;

	if (argc == 3 && !strcmp(argv[1], "pool"))
		return pool_cmd(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "invoke"))
		return invoke_cmd(argv[2], argv[3], argv[4]);

	parse_steps("upper,reverse,wordcount");
	while ((c = getopt(argc, argv, "s:c:n:t:x:z:")) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'c':
			chain = optarg;
			break;
		case 'n':
			if (parse_u(optarg, 1, 100000000, &n_req))
				usage();
			break;
		case 't':
			if (parse_u(optarg, 1, 256, &n_threads))
				usage();
			break;
		case 'x':
			if (parse_steps(optarg))
				usage();
			break;
		case 'z':
			if (parse_u(optarg, 16, OUT_MAX / 4, &max_len))
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !sock_path || !chain || !n_req)
		usage();
	if (n_threads > n_req)
		n_threads = n_req;

	ws = calloc(n_threads, sizeof(*ws));
	if (!ws)
		return 1;
	t0 = now_ns();
	for (i = 0; i < n_threads; i++) {
		ws[i].idx = i;
		ws[i].first = (uint64_t)n_req * i / n_threads;
		ws[i].count = (uint64_t)n_req * (i + 1) / n_threads - ws[i].first;
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i])) {
			fprintf(stderr, "e2e_client: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < n_threads; i++)
		pthread_join(ws[i].tid, NULL);
	t1 = now_ns();

	lat = calloc(n_req, sizeof(*lat));
	for (i = 0; i < n_threads; i++) {
		struct worker *w = &ws[i];
		unsigned int s;

		if (w->open_err) {
			fprintf(stderr, "e2e_client: client %u: %s\n", i, strerror(-w->open_err));
			errors += w->count;
		}
		ok += w->ok;
		wrong += w->wrong;
		dup += w->dup;
		errors += w->errors;
		bad += w->bad_status;
		n_long += w->n_long;
		for (s = 0; s < SPRY_ST_MAX; s++)
			hist[s] += w->status_hist[s];
		if (lat && w->lat_ns)
			memcpy(lat + n_lat, w->lat_ns, w->n_lat * sizeof(*lat));
		n_lat += w->n_lat;
		free(w->lat_ns);
	}
	if (lat && n_lat)
		qsort(lat, n_lat, sizeof(*lat), cmp_u64);
	printf("e2e: requests=%u ok=%u wrong=%u dup=%u errors=%u bad_status=%u long=%u "
	       "threads=%u secs=%.2f rps=%.0f p50_us=%.1f p99_us=%.1f\n",
	       n_req, ok, wrong, dup, errors, bad, n_long, n_threads, (t1 - t0) / 1e9,
	       n_req / ((t1 - t0) / 1e9),
	       lat && n_lat ? lat[n_lat / 2] / 1e3 : 0.0,
	       lat && n_lat ? lat[(size_t)n_lat * 99 / 100] / 1e3 : 0.0);
	if (bad) {
		printf("e2e: statuses:");
		for (i = 0; i < SPRY_ST_MAX; i++)
			printf(" %u=%u", i, hist[i]);
		printf("\n");
	}
	free(lat);
	free(ws);
	return ok == n_req ? 0 : 1;
}
