// SPDX-License-Identifier: GPL-2.0-only
/*
 * Cold start of one function instance, from nothing running to its first
 * answer, split into parts, by two paths in the same run (interleaved):
 *
 *   template  a template of the function (spryd/template.c) wakes its
 *             spare clone (made ahead, unregistered; from zero after a
 *             quiet time there is one)
 *   exec      bare fork + exec of the same binary, which connects and
 *             registers as any function does (the baseline)
 *
 * Each iteration starts at zero instances of the chain's function (the
 * previous one was stopped and spryd has deregistered it: a request gets
 * NO_INSTANCE), starts one, waits for its "registered" event, sends one
 * request through spryd's control socket and checks the answer.  Times
 * (CLOCK_MONOTONIC, the instance's events from libspry's SPRY_TRACE_FD):
 *
 *   spawn     command to the process existing (fork / the template woken,
 *             its spare woken: FORK -> FORKED)
 *   exec      to libspry's first code (execve, ld.so, libc, main; template:
 *             the spare being scheduled)
 *   lib       libspry's start before it connects (signals, buffers;
 *             template: nothing left)
 *   register  connect, [HELLO,] TCP connect, REGISTER, REG_ACK, [pool mmap]
 *   notice    this driver seeing "registered" (the measurement's own cost:
 *             spryd's activation releases held requests without it)
 *   first     the first request through spryd and back
 *   total     command to answer
 *
 * With --zero FIFO ZT ZE, two more paths: the cold start as a user sees
 * it, a request arriving at a declared function at zero instances (min 0,
 * scaled to zero after its idle time) and answered through spryd's hold
 * queue and activation.  Chain ZT's function is declared "start
 * template", ZE's "start exec"; spryd runs with SPRY_TRACE_FD on FIFO, so
 * its events (hold, spawn, reg, release, dereg: spryd/loop.h) and its
 * instances' (registered) come through it:
 *
 *   hold      request sent -> spryd holds it (INVOKE read, admission)
 *   decide    held -> spryd's supervisor starts the instance (activation)
 *   spawn     spawner__start(): the template's spare woken (FORK ->
 *             FORKED), or fork + execve (spryd reads the exec's result: the
 *             kernel's part of execve is here)
 *   exec      -> libspry's first code (template: the spare scheduled;
 *             exec: ld.so, libc, main)
 *   lib       libspry before it connects
 *   register  connect, REGISTER, spryd's checks and maps, REG_ACK sent
 *   release   spryd's registration -> the held request released
 *   first     release -> the answer back at the client
 *   total     request sent -> answer
 *
 * Between two iterations the driver waits for the instance to exit and
 * spryd to deregister it (the "dereg" event), then 50 ms (the template's
 * next spare is cloned after 20 ms of quiet).
 *
 * usage: coldstart [--zero FIFO ZT ZE] SOCK CHAIN ITERATIONS FUNCTION-ARGV...
 * Prints a markdown table (p50, p99, mean in microseconds) and the ratios.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"
#include "spry/spry.h"
#include "spryd/spryd.h"
#include "spryd/template.h"

enum { P_SPAWN, P_EXEC, P_LIB, P_REG, P_NOTICE, P_FIRST, P_TOTAL, N_PARTS };
static const char *const part_name[N_PARTS] = {
	"spawn", "exec", "lib", "register", "notice", "first", "total",
};
/* the parts of a cold start from zero through spryd's activation */
enum { Z_HOLD, Z_DECIDE, Z_SPAWN, Z_EXEC, Z_LIB, Z_REG, Z_RELEASE, Z_FIRST, Z_TOTAL, N_ZPARTS };
static const char *const zpart_name[N_ZPARTS] = {
	"hold", "decide", "spawn", "exec", "lib", "register", "release", "first", "total",
};
enum { M_TMPL, M_EXEC, M_ZTMPL, M_ZEXEC, N_MODES };
static const char *const mode_name[N_MODES] = {
	"template", "fork+exec", "zero: start template", "zero: start exec",
};
#define N_PARTS_MAX	N_ZPARTS

#define MAX_ITER	100000
#define TRACE_FD	100	/* the trace pipe's write end, at a fixed number */

static double *samples[N_MODES][N_PARTS_MAX];
static int n_samples[N_MODES];
static int trace_rd = -1;
static char tbuf[65536];
static size_t tlen;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

struct ev {
	uint64_t start, connect, registered;
};

/*
 * Read trace lines until PID's "registered" (5 s); its events in *@e.
 * Lines of other pids (an earlier instance's late "first") are skipped.
 */
static int wait_registered(pid_t pid, struct ev *e)
{
	struct pollfd pfd = { .fd = trace_rd, .events = POLLIN };
	uint64_t deadline = now_ns() + 5000000000ull;
	char *nl, ev[32];
	unsigned long long ns, st, co;
	int p;
	ssize_t n;

	memset(e, 0, sizeof(*e));
	for (;;) {
		while ((nl = memchr(tbuf, '\n', tlen))) {
			*nl = '\0';
			if (sscanf(tbuf, "spry-trace %31s %d %llu start=%llu connect=%llu",
				   ev, &p, &ns, &st, &co) == 5 && p == pid &&
			    !strcmp(ev, "registered") && !e->registered) {
				e->start = st;
				e->connect = co;
				e->registered = ns;
			}
			tlen -= (size_t)(nl + 1 - tbuf);
			memmove(tbuf, nl + 1, tlen);
			if (e->registered)
				return 0;
		}
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			return -errno;
		n = read(trace_rd, tbuf + tlen, sizeof(tbuf) - 1 - tlen);
		if (n > 0)
			tlen += (size_t)n;
		else if (n == 0)
			return -EPIPE;
		if (tlen == sizeof(tbuf) - 1)
			tlen = 0;	/* garbage: start over */
	}
}

static pid_t start_exec(char *const *argv, uint64_t *spawned)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* what tmpl__start gives the template: stdio and the trace fd */
		if (close_range(3, ~0u, 0x4 /* CLOSE_RANGE_CLOEXEC */))
			_exit(126);
		fcntl(TRACE_FD, F_SETFD, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	*spawned = now_ns();
	return pid;
}

/* Until a request gets no instance (the last one deregistered), 2 s. */
static int wait_zero(struct spry_client *c, const char *chain)
{
	uint64_t deadline = now_ns() + 2000000000ull;
	char out[256];
	size_t olen;
	uint32_t st;
	int ret;

	do {
		ret = spry_client_invoke(c, chain, "z", 1, out, sizeof(out), &olen, &st);
		if (ret == 0 && st == SPRY_ST_NO_INSTANCE)
			return 0;
		if (ret && ret != -ECONNRESET)
			return ret;
		usleep(200);
	} while (now_ns() < deadline);
	return -ETIMEDOUT;
}

static int one(int mode, struct tmpl *t, struct spry_client *c, const char *chain,
	       char *const *argv, int iter)
{
	char in[64], out[256], want[64];
	uint64_t t0, spawned = 0, t_req, t_ans;
	size_t olen, i, ilen;
	struct ev e;
	uint32_t st;
	pid_t pid;
	int ret, k, status;

	/* from zero after a quiet time: the template's spare is there */
	for (k = 0; mode == M_TMPL && !tmpl__spare(t) && k < 100; k++) {
		struct pollfd pfd = { .fd = tmpl__fd(t), .events = POLLIN };

		poll(&pfd, 1, 10);
		tmpl__poll(t);
	}
	t0 = now_ns();
	if (mode == M_TMPL)
		pid = tmpl__fork_ts(t, &spawned);
	else
		pid = start_exec(argv, &spawned);
	if (pid < 0) {
		fprintf(stderr, "coldstart: %s: starting an instance: %s\n", mode_name[mode],
			strerror(mode == M_TMPL ? -pid : errno));
		return -1;
	}
	ret = wait_registered(pid, &e);
	if (ret) {
		fprintf(stderr, "coldstart: %s: instance %d never registered: %s\n",
			mode_name[mode], (int)pid, strerror(-ret));
		goto out_kill;
	}
	ilen = (size_t)snprintf(in, sizeof(in), "cold-%d", iter);
	t_req = now_ns();
	ret = spry_client_invoke(c, chain, in, ilen, out, sizeof(out), &olen, &st);
	t_ans = now_ns();
	for (i = 0; i < ilen; i++)
		want[i] = (char)toupper((unsigned char)in[i]);
	if (ret || st != SPRY_ST_OK || olen != ilen || memcmp(out, want, ilen)) {
		fprintf(stderr, "coldstart: %s: request %d: %s, status %u, %zu bytes\n",
			mode_name[mode], iter, ret ? strerror(-ret) : "answered", st, olen);
		ret = -1;
		goto out_kill;
	}
	if (spawned > e.start)		/* the clone ran before the template noted it */
		spawned = e.start;
	k = n_samples[mode]++;
	samples[mode][P_SPAWN][k] = (double)(spawned - t0) / 1e3;
	samples[mode][P_EXEC][k] = (double)(e.start - spawned) / 1e3;
	samples[mode][P_LIB][k] = (double)(e.connect - e.start) / 1e3;
	samples[mode][P_REG][k] = (double)(e.registered - e.connect) / 1e3;
	samples[mode][P_NOTICE][k] = (double)(t_req - e.registered) / 1e3;
	samples[mode][P_FIRST][k] = (double)(t_ans - t_req) / 1e3;
	samples[mode][P_TOTAL][k] = (double)(t_ans - t0) / 1e3;
	ret = 0;
out_kill:
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	if (wait_zero(c, chain)) {
		fprintf(stderr, "coldstart: the chain never went back to zero instances\n");
		return -1;
	}
	return ret;
}

/* ---------------------------------------------- from zero, through spryd */

static int zfd = -1;		/* the FIFO spryd and its instances trace to */
static char zbuf[65536];
static size_t zlen;

/* The next line of the FIFO into @line (NUL-terminated), waiting until @deadline. */
static int zline(char *line, size_t size, uint64_t deadline)
{
	struct pollfd pfd = { .fd = zfd, .events = POLLIN };
	char *nl;
	size_t n;
	ssize_t r;

	for (;;) {
		nl = memchr(zbuf, '\n', zlen);
		if (nl) {
			n = (size_t)(nl - zbuf);
			if (n >= size)
				n = size - 1;
			memcpy(line, zbuf, n);
			line[n] = '\0';
			zlen -= (size_t)(nl + 1 - zbuf);
			memmove(zbuf, nl + 1, zlen);
			return 0;
		}
		if (zlen == sizeof(zbuf))
			zlen = 0;	/* no line in 64 KiB: garbage */
		r = read(zfd, zbuf + zlen, sizeof(zbuf) - zlen);
		if (r > 0) {
			zlen += (size_t)r;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (now_ns() >= deadline)
			return -ETIMEDOUT;
		poll(&pfd, 1, 10);
	}
}

struct zev {
	uint64_t hold, spawn0, spawn1, start, connect, registered, reg, release;
	pid_t pid;
	char how[16];
};

/* Has @line "chain=@chain" (last field)? */
static bool on_chain(const char *line, const char *chain)
{
	const char *p = strstr(line, " chain=");

	return p && !strncmp(p + 7, chain, strlen(chain)) &&
	       (p[7 + strlen(chain)] == '\0' || p[7 + strlen(chain)] == ' ');
}

/* Until every event of the cold start of @chain at or after @t0 is in @e (2 s). */
static int zevents(const char *chain, uint64_t t0, struct zev *e)
{
	uint64_t deadline = now_ns() + 2000000000ull;
	unsigned long long a, b, st, co;
	char line[512], how[16];
	unsigned int n;
	int pid, ret;

	while (!(e->hold && e->spawn0 && e->registered && e->reg && e->release)) {
		ret = zline(line, sizeof(line), deadline);
		if (ret)
			return ret;
		if (sscanf(line, "spry-trace hold %llu %llu", &a, &b) == 2 &&
		    on_chain(line, chain) && b >= t0 && !e->hold) {
			e->hold = b;
		} else if (sscanf(line, "spry-trace spawn %d %llu %llu %15s", &pid, &a, &b,
				  how) == 4 && on_chain(line, chain) && a >= t0 && !e->spawn0) {
			e->pid = pid;
			e->spawn0 = a;
			e->spawn1 = b;
			snprintf(e->how, sizeof(e->how), "%s", how);
		} else if (sscanf(line, "spry-trace registered %d %llu start=%llu connect=%llu",
				  &pid, &a, &st, &co) == 4 && e->pid && pid == e->pid) {
			e->registered = a;
			e->start = st;
			e->connect = co;
		} else if (sscanf(line, "spry-trace reg %d %llu", &pid, &a) == 2 &&
			   e->pid && pid == e->pid) {
			e->reg = a;
		} else if (sscanf(line, "spry-trace release %u %llu", &n, &a) == 2 &&
			   on_chain(line, chain) && a >= t0 && !e->release) {
			e->release = a;
		}
	}
	return 0;
}

/* Until @pid exited and spryd deregistered it (5 s), then a quiet 50 ms. */
static int zwait_gone(pid_t pid)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	unsigned long long a;
	char line[512];
	int p, ret;

	for (;;) {
		ret = zline(line, sizeof(line), deadline);
		if (ret)
			return ret;
		if (sscanf(line, "spry-trace dereg %d %llu", &p, &a) == 2 && p == pid)
			break;
	}
	while (!kill(pid, 0) && now_ns() < deadline)
		usleep(1000);
	usleep(50000);
	return 0;
}

static int one_zero(int mode, struct spry_client *c, const char *chain, int iter)
{
	char in[64], out[256], want[64];
	uint64_t t0, t_ans;
	struct zev e = {};
	size_t olen, i, ilen;
	uint32_t st;
	int ret, k;

	ilen = (size_t)snprintf(in, sizeof(in), "zero-%d", iter);
	t0 = now_ns();
	ret = spry_client_invoke(c, chain, in, ilen, out, sizeof(out), &olen, &st);
	t_ans = now_ns();
	for (i = 0; i < ilen; i++)
		want[i] = (char)toupper((unsigned char)in[i]);
	if (ret || st != SPRY_ST_OK || olen != ilen || memcmp(out, want, ilen)) {
		fprintf(stderr, "coldstart: %s: request %d: %s, status %u, %zu bytes\n",
			mode_name[mode], iter, ret ? strerror(-ret) : "answered", st, olen);
		return -1;
	}
	ret = zevents(chain, t0, &e);
	if (ret && !e.pid) {
		fprintf(stderr, "coldstart: %s: request %d: no spawn event: %s\n",
			mode_name[mode], iter, strerror(-ret));
		usleep(500000);
		return -1;
	}
	if (ret) {
		fprintf(stderr, "coldstart: %s: request %d: spryd's events (hold %d spawn %d "
			"registered %d reg %d release %d): %s\n", mode_name[mode], iter,
			!!e.hold, !!e.spawn0, !!e.registered, !!e.reg, !!e.release,
			strerror(-ret));
		return -1;
	}
	if (strcmp(e.how, mode == M_ZTMPL ? "template" : "exec")) {
		fprintf(stderr, "coldstart: %s: request %d: the instance was started by %s\n",
			mode_name[mode], iter, e.how);
		ret = -1;
	} else if (e.start < e.spawn0 || e.connect < e.start || e.reg < e.connect ||
		   e.release < e.reg || t_ans < e.release) {
		fprintf(stderr, "coldstart: %s: request %d: events out of order\n",
			mode_name[mode], iter);
		ret = -1;
	}
	if (!ret) {
		uint64_t spawned = e.spawn1 < e.start ? e.spawn1 : e.start;

		k = n_samples[mode]++;
		samples[mode][Z_HOLD][k] = (double)(e.hold - t0) / 1e3;
		samples[mode][Z_DECIDE][k] = (double)(e.spawn0 - e.hold) / 1e3;
		samples[mode][Z_SPAWN][k] = (double)(spawned - e.spawn0) / 1e3;
		samples[mode][Z_EXEC][k] = (double)(e.start - spawned) / 1e3;
		samples[mode][Z_LIB][k] = (double)(e.connect - e.start) / 1e3;
		samples[mode][Z_REG][k] = (double)(e.reg - e.connect) / 1e3;
		samples[mode][Z_RELEASE][k] = (double)(e.release - e.reg) / 1e3;
		samples[mode][Z_FIRST][k] = (double)(t_ans - e.release) / 1e3;
		samples[mode][Z_TOTAL][k] = (double)(t_ans - t0) / 1e3;
	}
	/* the function scales back to zero by itself (its idle time) */
	if (zwait_gone(e.pid)) {
		fprintf(stderr, "coldstart: %s: instance %d never went away\n", mode_name[mode],
			(int)e.pid);
		return -1;
	}
	return ret;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);

	return n ? v[i] : 0;
}

static void print_mode(int m, int nparts, const char *const *names,
		       double p50[N_MODES][N_PARTS_MAX], double p99[N_MODES][N_PARTS_MAX])
{
	double mean;
	int k, i;

	for (k = 0; k < nparts; k++) {
		mean = 0;
		for (i = 0; i < n_samples[m]; i++)
			mean += samples[m][k][i];
		mean = n_samples[m] ? mean / n_samples[m] : 0;
		qsort(samples[m][k], n_samples[m], sizeof(double), cmp);
		p50[m][k] = pct(samples[m][k], n_samples[m], 0.50);
		p99[m][k] = pct(samples[m][k], n_samples[m], 0.99);
		printf("| %s | %d | %s | %.0f | %.0f | %.0f |\n", mode_name[m],
		       n_samples[m], names[k], p50[m][k], p99[m][k], mean);
	}
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

int main(int argc, char **argv)
{
	struct spawn_fn f = {};
	struct spry_client *c;
	struct tmpl *t;
	struct pollfd pfd;
	double p50[N_MODES][N_PARTS_MAX], p99[N_MODES][N_PARTS_MAX];
	const char *zchain[N_MODES] = {};
	uint32_t iters;
	int pp[2], m, k, i, ret, fails = 0, n_modes = M_EXEC + 1;
	char v[16];

	if (argc > 4 && !strcmp(argv[1], "--zero")) {
		zfd = open(argv[2], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (zfd < 0)
			return fprintf(stderr, "coldstart: %s: %s\n", argv[2], strerror(errno)), 1;
		zchain[M_ZTMPL] = argv[3];
		zchain[M_ZEXEC] = argv[4];
		n_modes = N_MODES;
		argc -= 4;
		argv += 4;
	}
	if (argc < 5 || spry_num__parse_u32(argv[3], 1, MAX_ITER, &iters)) {
		fprintf(stderr, "usage: %s [--zero FIFO CHAIN-TEMPLATE CHAIN-EXEC] SOCK CHAIN "
			"ITERATIONS(1..%d) FUNCTION-ARGV...\n", argv[0], MAX_ITER);
		return 2;
	}
	for (m = 0; m < N_MODES; m++)
		for (k = 0; k < N_PARTS_MAX; k++)
			if (!(samples[m][k] = calloc(iters, sizeof(double))))
				return 1;
	if (pipe2(pp, O_CLOEXEC) || dup2(pp[1], TRACE_FD) < 0)
		return perror("coldstart: trace pipe"), 1;
	close(pp[1]);
	fcntl(TRACE_FD, F_SETFD, FD_CLOEXEC);
	trace_rd = pp[0];
	fcntl(trace_rd, F_SETFL, O_NONBLOCK);
	snprintf(v, sizeof(v), "%d", TRACE_FD);
	setenv(SPRY_TRACE_ENV, v, 1);
	signal(SIGPIPE, SIG_IGN);

	c = spry_client_open(argv[1]);
	if (!c)
		return fprintf(stderr, "coldstart: spryd at %s: %s\n", argv[1], strerror(errno)), 1;
	if (wait_zero(c, argv[2]))
		return fprintf(stderr, "coldstart: chain %s has instances running\n", argv[2]), 1;

	f.chain = argv[2];
	f.fn = "coldstart";
	f.argv = argv + 4;
	f.uid = geteuid();
	f.gid = getegid();
	t = tmpl__start(&f, NULL);
	if (!t)
		return fprintf(stderr, "coldstart: template: %s\n", strerror(errno)), 1;
	pfd.fd = tmpl__fd(t);
	pfd.events = POLLIN;
	for (i = 0; i < 50 && !tmpl__ready(t); i++) {
		ret = tmpl__poll(t);
		if (ret) {
			fprintf(stderr, "coldstart: template: %s\n", strerror(-ret));
			return 1;
		}
		poll(&pfd, 1, 100);
	}
	if (!tmpl__ready(t))
		return fprintf(stderr, "coldstart: the template never got ready\n"), 1;

	/* a few unmeasured starts of each: page cache, spryd's first pool use */
	for (i = 0; i < 3; i++)
		for (m = 0; m < n_modes; m++) {
			if (zchain[m])
				fails += one_zero(m, c, zchain[m], -1) != 0;
			else
				fails += one(m, t, c, argv[2], argv + 4, -1) != 0;
			n_samples[m] = 0;
		}
	for (i = 0; i < (int)iters; i++)
		for (k = 0; k < n_modes; k++) {
			m = (i & 1) ? n_modes - 1 - k : k;	/* no path always first */
			if (zchain[m])
				fails += one_zero(m, c, zchain[m], i) != 0;
			else
				fails += one(m, t, c, argv[2], argv + 4, i) != 0;
		}
	tmpl__stop(t);
	spry_client_close(c);

	printf("| path | n | part | p50 us | p99 us | mean us |\n");
	printf("|---|---:|---|---:|---:|---:|\n");
	for (m = 0; m < n_modes; m++)
		if (zchain[m])
			print_mode(m, N_ZPARTS, zpart_name, p50, p99);
		else
			print_mode(m, N_PARTS, part_name, p50, p99);
	printf("\n| total (us) | p50 | p99 | p50 / fork+exec | p99 / fork+exec |\n"
	       "|---|---:|---:|---:|---:|\n");
	for (m = 0; m < n_modes; m++) {
		int tk = zchain[m] ? Z_TOTAL : P_TOTAL;

		printf("| %s | %.0f | %.0f | %.2f | %.2f |\n", mode_name[m], p50[m][tk], p99[m][tk],
		       ratio(p50[m][tk], p50[M_EXEC][P_TOTAL]),
		       ratio(p99[m][tk], p99[M_EXEC][P_TOTAL]));
	}
	printf("\nfailed iterations: %d\n", fails);
	for (m = 0; m < N_MODES; m++)
		for (k = 0; k < N_PARTS_MAX; k++)
			free(samples[m][k]);
	if (zfd >= 0)
		close(zfd);
	return fails ? 1 : 0;
}
