// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's template room (spryd/template.h): one pre-started process per
 * function that clones instances on command, so that an instance's cold
 * start is a clone and a registration: no exec, no dynamic linking, no
 * library start, no pool mapping (docs/ELASTIC.md, "Cold start").
 *
 * The pair is a SOCK_SEQPACKET socketpair framed like the control socket
 * (fn-runtime/proto.h): READY once, then FORK -> FORKED.  A failed exec is
 * reported on the pair too (READY with its errno), so that a missing
 * executable is an error with its reason, not just an exit code.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"
#include "spryd/spryd.h"
#include "spryd/template.h"

#define TMPL_FORK_TIMEOUT_MS	1000
#define TMPL_STOP_GRACE_MS	200

extern char **environ;

struct tmpl {
	pid_t	pid;
	pid_t	spare;	/* the clone kept ahead (0: none known) */
	int	fd;	/* spryd's end of the pair */
	int	err;	/* 0, or the template's refusal / -EPIPE */
	bool	ready;
	uint32_t caps;	/* its READY's SPRY_TMPL_CAN_* (0: an older libspry) */
	struct tmpl_hooks hooks;	/* the owner's (all NULL: none) */
};

/* environ + SPRY_TEMPLATE_FD=@fd, built before fork (no malloc after it). */
static char **tmpl_env(int fd, char *var, size_t var_len)
{
	size_t n = 0, i, j = 0, plen = strlen(SPRY_TEMPLATE_ENV);
	char **env;

	while (environ && environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], SPRY_TEMPLATE_ENV, plen) || environ[i][plen] != '=')
			env[j++] = environ[i];
	snprintf(var, var_len, "%s=%d", SPRY_TEMPLATE_ENV, fd);
	env[j] = var;
	return env;
}

/* In the forked child: report @err on the pair (as READY) and leave. */
static void __attribute__((noreturn)) child_fail(int fd, int err, int code)
{
	spry_ctl_send(fd, SPRY_TMPL_READY, err, NULL, 0, -1);
	_exit(code);
}

static void __attribute__((noreturn)) child_exec(const struct spawn_fn *f, int fd,
						 int trace_fd, char **env, pid_t parent)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;
	int sig;

	/* What spryd blocked or ignored is not the function's business. */
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The template does not outlive spryd (its instances decide alone). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(1);
	/* Only stdio and the pair go on: what the template holds its clones
	 * hold, and the supervisor's fds (CLOEXEC or not) are not theirs. */
	if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) && errno != ENOSYS && errno != EINVAL)
		child_fail(fd, -errno, 126);
	if (fcntl(fd, F_SETFD, 0))
		child_fail(fd, -errno, 126);
	if (trace_fd >= 0)
		fcntl(trace_fd, F_SETFD, 0);
	if (f->cpus && sched_setaffinity(0, sizeof(*f->cpus), f->cpus))
		child_fail(fd, -errno, 126);
	if (f->gid != getegid() && (setgroups(0, NULL) || setgid(f->gid)))
		child_fail(fd, -errno, 126);
	if (f->uid != geteuid() && setuid(f->uid))
		child_fail(fd, -errno, 126);
	execvpe(f->argv[0], f->argv, env);
	child_fail(fd, -errno, 127);
}

/*
 * A benchmark's trace fd (SPRY_TRACE_ENV in our own environment: only
 * bench/coldstart.c sets it) goes on to the template and its clones.
 */
static int trace_fd(void)
{
	const char *v = getenv(SPRY_TRACE_ENV);
	uint32_t fd;

	if (!v || spry_num__parse_u32(v, 3, INT_MAX, &fd) || fcntl((int)fd, F_GETFD) < 0)
		return -1;
	return (int)fd;
}

struct tmpl *tmpl__start(const struct spawn_fn *f, const struct tmpl_hooks *hooks)
{
	char var[sizeof(SPRY_TEMPLATE_ENV) + 16];
	struct tmpl *t;
	pid_t parent = getpid();
	int tfd = trace_fd();
	char **env;
	int sv[2], err;

	if (!f || !f->argv || !f->argv[0] || !*f->argv[0]) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (hooks)
		t->hooks = *hooks;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		err = errno;
		goto err_free;
	}
	env = tmpl_env(sv[1], var, sizeof(var));
	if (!env) {
		err = ENOMEM;
		goto err_pair;
	}
	t->pid = fork();
	if (t->pid < 0) {
		err = errno;
		free(env);
		goto err_pair;
	}
	if (t->pid == 0) {
		close(sv[0]);
		child_exec(f, sv[1], tfd, env, parent);
	}
	free(env);
	close(sv[1]);
	t->fd = sv[0];
	if (fcntl(t->fd, F_SETFL, O_NONBLOCK)) {
		err = errno;
		t->fd = -1;
		close(sv[0]);
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		goto err_free;
	}
	return t;

err_pair:
	close(sv[0]);
	close(sv[1]);
err_free:
	free(t);
	errno = err;
	return NULL;
}

/* One message from the template: its type (>0), 0 none, -EPIPE gone. */
static int tmpl_recv(struct tmpl *t, struct spry_ctl_hdr *hdr, void *body, uint32_t size)
{
	int ret = spry_ctl_recv(t->fd, body, size, hdr, NULL);

	if (ret == -EAGAIN || ret == -EWOULDBLOCK || ret == -EINTR)
		return 0;
	if (ret == -ENOTCONN || ret == -ECONNRESET)
		return -EPIPE;
	if (ret == -EPROTO || ret == -EMSGSIZE)
		return 1000;	/* malformed: skipped by the callers */
	if (ret < 0)
		return ret;
	return hdr->type;
}

/* ------------------------------------------------- a clone's pid, proved */

int tmpl__stat_parse(const char *buf, pid_t *ppid, uint64_t *start)
{
	uint64_t v;
	const char *p;
	int i;

	/* "PID (COMM) S PPID ... F22": comm may hold anything but ends at the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return -EPROTO;
	p++;
	for (i = 3; i <= 22; i++) {
		if (*p != ' ')
			return -EPROTO;
		p++;
		if (i == 4 || i == 22) {
			if (spry_num__parse(p, &p, i == 4 ? 0 : 1, i == 4 ? INT_MAX : UINT64_MAX, &v) ||
			    (*p != ' ' && *p != '\n'))
				return -EPROTO;
			if (i == 4)
				*ppid = (pid_t)v;
			else
				*start = v;
			continue;
		}
		p += strcspn(p, " ");
	}
	return 0;
}

/* The "Uid:" (or "Gid:") line of /proc/PID/status: real, effective. */
static int status_line(const char *buf, const char *key, uint32_t out[2])
{
	size_t klen = strlen(key);
	const char *p = buf;
	uint64_t v;
	int i;

	while (strncmp(p, key, klen)) {
		p = strchr(p, '\n');
		if (!p)
			return -EPROTO;
		p++;
	}
	p += klen;
	for (i = 0; i < 2; i++) {
		if (*p != '\t')
			return -EPROTO;
		p++;
		if (spry_num__parse(p, &p, 0, UINT32_MAX, &v))
			return -EPROTO;
		out[i] = (uint32_t)v;
	}
	return *p == '\t' ? 0 : -EPROTO;
}

int tmpl__status_ids(const char *buf, uint32_t ids[4])
{
	return status_line(buf, "Uid:", ids) ?: status_line(buf, "Gid:", ids + 2);
}

/* /proc/@pid/@name into @buf (NUL-terminated): 0, -ESRCH (gone) or -errno. */
static int proc_read(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	do {
		n = read(fd, buf, size - 1);
	} while (n < 0 && errno == EINTR);
	err = errno;
	close(fd);
	if (n < 0)
		return err == ESRCH ? -ESRCH : -err;
	buf[n] = '\0';
	return 0;
}

int tmpl__proc_stat(pid_t pid, pid_t *ppid, uint64_t *start)
{
	char buf[1024];

	return proc_read(pid, "stat", buf, sizeof(buf)) ?: tmpl__stat_parse(buf, ppid, start);
}

static int proc_ids(pid_t pid, uint32_t ids[4])
{
	char buf[4096];

	return proc_read(pid, "status", buf, sizeof(buf)) ?: tmpl__status_ids(buf, ids);
}

uint64_t tmpl__boot_ticks(void)
{
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec ts;

	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts))
		return 0;
	/* as the kernel turns a start time into ticks (nsec_to_clock_t) */
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) /
	       (1000000000ULL / (uint64_t)hz);
}

int tmpl__check_clone(pid_t tmpl, pid_t pid, uint64_t since, char *why, size_t len)
{
	uint32_t its[4], mine[4];
	uint64_t start;
	pid_t ppid;
	int fd, err;

	snprintf(why, len, "%s", "");
	if (pid <= 0) {
		snprintf(why, len, "not a pid");
		return -ESRCH;
	}
	if (pid == tmpl) {
		snprintf(why, len, "the template itself");
		return -EPERM;
	}
	/* first: what /proc says below is about the process this names */
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		err = -errno;
		snprintf(why, len, "%s", err == -ESRCH ? "no such process" : strerror(-err));
		return err;
	}
	err = tmpl__proc_stat(pid, &ppid, &start);
	if (err) {
		snprintf(why, len, "/proc/%d/stat: %s", (int)pid, strerror(-err));
		goto out;
	}
	if (ppid != getpid()) {
		snprintf(why, len, "not spryd's child (its parent is pid %d)", (int)ppid);
		err = -EPERM;
		goto out;
	}
	if (start < since) {
		snprintf(why, len, "started at tick %llu, before tick %llu (it was not cloned then)",
			 (unsigned long long)start, (unsigned long long)since);
		err = -ESTALE;
		goto out;
	}
	err = proc_ids(pid, its);
	if (!err)
		err = proc_ids(tmpl, mine);
	if (err) {
		snprintf(why, len, "/proc status: %s", strerror(-err));
		goto out;
	}
	if (memcmp(its, mine, sizeof(its))) {
		snprintf(why, len, "runs as uid %u/%u gid %u/%u, the template as uid %u/%u gid %u/%u",
			 its[0], its[1], its[2], its[3], mine[0], mine[1], mine[2], mine[3]);
		err = -EPERM;
		goto out;
	}
	/* still the process the pidfd names (not a pid reused meanwhile) */
	if (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0)) {
		err = -ESRCH;
		snprintf(why, len, "gone while checked");
	}
out:
	close(fd);
	return err;
}

/*
 * May @pid be the clone @t names (FORKED, or its SPARE: @spare)?  Checked
 * before spryd takes it for one, since stopping a clone signals it:
 * tmpl__check_clone() from @since, then it is none of the processes the
 * owner already knows.  0, or -errno with the refusal told to the owner.
 */
static int tmpl_clone_ok(struct tmpl *t, pid_t pid, uint64_t since, bool spare)
{
	char why[160];
	int err;

	err = tmpl__check_clone(t->pid, pid, since, why, sizeof(why));
	if (!err && t->hooks.known && t->hooks.known(t->hooks.arg, pid)) {
		snprintf(why, sizeof(why), "a process spryd already knows");
		err = -EPERM;
	}
	if (err && t->hooks.refused)
		t->hooks.refused(t->hooks.arg, pid, spare, why);
	return err;
}

/*
 * A spare is cloned before any FORK: it cannot have started before its
 * template, and is recorded only once proved (tmpl__stop() reaps it).
 */
static void tmpl_spare(struct tmpl *t, const struct spry_ctl_hdr *hdr,
		       const struct spry_tmpl_forked *fk)
{
	uint64_t since;
	pid_t ppid;

	if (hdr->status || hdr->len != sizeof(*fk) || fk->pid <= 0 || fk->pid == t->spare)
		return;
	if (tmpl__proc_stat(t->pid, &ppid, &since))
		since = UINT64_MAX;	/* the template is gone: nothing of it is proved */
	if (!tmpl_clone_ok(t, fk->pid, since, true))
		t->spare = fk->pid;
}

int tmpl__poll(struct tmpl *t)
{
	union {
		struct spry_tmpl_forked	fk;
		struct spry_tmpl_ready	ready;
	} m;
	struct spry_ctl_hdr hdr;
	int type;

	if (!t)
		return -EINVAL;
	if (t->fd < 0)
		return t->err ? t->err : -EBADF;
	while (!t->err) {
		type = tmpl_recv(t, &hdr, &m, sizeof(m));
		if (type == 0)
			break;
		if (type < 0) {
			t->err = type;
			t->ready = false;
		} else if (type == SPRY_TMPL_READY && !t->ready) {
			if (hdr.status)
				t->err = hdr.status < 0 ? hdr.status : -EPROTO;
			else
				t->ready = true;
			/* a READY without a body: a libspry that clones instances only */
			if (t->ready && hdr.len == sizeof(m.ready))
				t->caps = m.ready.caps;
		} else if (type == SPRY_TMPL_SPARE) {
			tmpl_spare(t, &hdr, &m.fk);
		}
		/* anything else (a late FORKED) is stale: dropped */
	}
	return t->err;
}

bool tmpl__ready(const struct tmpl *t)
{
	return t && t->ready && !t->err;
}

bool tmpl__can(const struct tmpl *t, uint32_t caps)
{
	return tmpl__ready(t) && (t->caps & caps) == caps;
}

pid_t tmpl__fork_ts(struct tmpl *t, uint64_t *clone_ns)
{
	return tmpl__fork_body(t, NULL, 0, clone_ns);
}

pid_t tmpl__fork_body(struct tmpl *t, const void *body, uint32_t len, uint64_t *clone_ns)
{
	struct pollfd pfd = { .events = POLLIN };
	struct spry_tmpl_forked fk;
	struct spry_ctl_hdr hdr;
	struct timespec ts;
	int64_t deadline, left;
	uint64_t since;
	int type, ret;

	if (!t)
		return -EINVAL;
	ret = tmpl__poll(t);
	if (ret)
		return ret;
	if (!t->ready)
		return -EAGAIN;
	/* a clone made for this FORK starts no earlier (the spare was proved) */
	since = tmpl__boot_ticks();
	if (!since)
		return -EIO;
	ret = spry_ctl_send(t->fd, SPRY_TMPL_FORK, 0, body, len, -1);
	if (ret) {
		if (ret == -EPIPE || ret == -ECONNRESET || ret == -ENOTCONN)
			t->err = ret = -EPIPE;
		return ret;
	}
	pfd.fd = t->fd;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + TMPL_FORK_TIMEOUT_MS;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		left = deadline - (ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		if (left <= 0)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, (int)left);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret <= 0)
			continue;
		type = tmpl_recv(t, &hdr, &fk, sizeof(fk));
		if (type < 0) {
			t->err = type;
			t->ready = false;
			return type;
		}
		if (type == SPRY_TMPL_SPARE)
			tmpl_spare(t, &hdr, &fk);
		if (type != SPRY_TMPL_FORKED)
			continue;
		if (hdr.status)
			return hdr.status < 0 ? hdr.status : -EPROTO;
		if (hdr.len != sizeof(fk) || fk.pid <= 0)
			return -EPROTO;
		if (fk.pid == t->spare) {
			/* proved when announced; still spryd's child, unreaped */
			t->spare = 0;	/* an instance now */
		} else if (tmpl_clone_ok(t, fk.pid, since, false)) {
			return -EPERM;
		}
		if (clone_ns)
			*clone_ns = fk.clone_ns;
		return fk.pid;
	}
}

pid_t tmpl__fork(struct tmpl *t)
{
	return tmpl__fork_ts(t, NULL);
}

int tmpl__fd(const struct tmpl *t)
{
	return t ? t->fd : -EINVAL;
}

pid_t tmpl__pid(const struct tmpl *t)
{
	return t ? t->pid : -EINVAL;
}

pid_t tmpl__spare(const struct tmpl *t)
{
	return t ? t->spare : -EINVAL;
}

/* Reap @pid, our child, within the grace time, else SIGKILL it first. */
static void reap(pid_t pid)
{
	int i;

	for (i = 0; i < TMPL_STOP_GRACE_MS; i++) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return;	/* gone (or already reaped by a caller) */
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void tmpl__stop(struct tmpl *t)
{
	if (!t)
		return;
	tmpl__poll(t);	/* the last spare's pid */
	if (t->fd >= 0)
		close(t->fd);	/* the template leaves on EOF */
	t->fd = -1;
	reap(t->pid);
	/* its spare leaves on the EOF of its wake-up socket */
	if (t->spare > 0)
		reap(t->spare);
	free(t);
}
