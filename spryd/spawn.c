// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's spawn room (spawn.h): one instance of a declared function,
 * cloned by the function's template (template.h) or by fork + exec, the
 * fork being a clone(CLONE_VM | CLONE_VFORK) (see child() below).
 *
 * The child: its own process group (a terminal's ^C or a kill of spryd's
 * group does not reach it: spryd stops instances itself), every signal
 * unblocked and at its default (spryd blocks SIGTERM/SIGINT for its
 * signalfd, and a blocked mask survives exec), the CPUs, the user's
 * groups then gid then uid, stdin /dev/null, stdout/stderr left to spryd's
 * (its log), every other fd closed (close_range), then execve.  An exec
 * failure comes back through a close-on-exec pipe: 4 bytes of errno, or
 * EOF when exec succeeded, so "missing executable" is an error of
 * spawner__start() and not a child that died.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fn-runtime/parse.h"
#include "spryd/loop.h"
#include "spryd/spawn.h"
#include "spryd/template.h"

#define CHILD_STACK	(64 * 1024)	/* the fork + exec child's stack */

struct spawner {
	struct spryd_ep	ep;		/* the template's pair, in spryd's loop */
	struct spryd	*d;
	char		*chain, *fn;
	char		**argv;
	uid_t		uid;
	gid_t		gid;
	bool		has_cpus;
	cpu_set_t	cpus;
	bool		use_template;
	/* the function's template (use_template), started with the spawner */
	struct tmpl	*tmpl;
	uint64_t	tmpl_retry_ns;	/* a failed template is started again then */
	uint64_t	tmpl_started_ns;	/* READY expected within --start-timeout */
	uint64_t	tmpl_backoff_ns;
	bool		tmpl_said_ready;
	bool		last_cloned;	/* the last instance: the template's clone */
	bool		changed;	/* template or spare pid changed (status) */
	void		*stack;		/* the fork + exec child's (CHILD_STACK) */
};

#define TMPL_BACKOFF_MIN_NS	(1000ULL * 1000000ULL)
#define TMPL_BACKOFF_MAX_NS	(60ULL * 1000000000ULL)

static void tmpl_start(struct spawner *s, uint64_t now);
static bool tmpl_known(void *arg, pid_t pid);
static void tmpl_refused(void *arg, pid_t pid, bool spare, const char *why);
static void tmpl_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
static const struct spryd_ep_ops tmpl_ops = { .name = "template-pair", .event = tmpl_event };

/* Out of the loop before the template's pair is closed. */
static void tmpl_drop(struct spawner *s)
{
	if (s->ep.fd >= 0)
		spryd_ep_del(s->d, &s->ep);
	s->ep.fd = -1;
	tmpl__stop(s->tmpl);
	s->tmpl = NULL;
	s->tmpl_said_ready = false;
	s->changed = true;
}

void spawner__free(struct spawner *s)
{
	size_t i;

	if (!s)
		return;
	tmpl_drop(s);
	if (s->stack)
		munmap(s->stack, CHILD_STACK);
	for (i = 0; s->argv && s->argv[i]; i++)
		free(s->argv[i]);
	free(s->argv);
	free(s->chain);
	free(s->fn);
	free(s);
}

struct spawner *spawner__new(struct spryd *d, const struct spawn_fn *f)
{
	struct spawner *s;
	size_t n, i;

	if (!f || !f->argv || !f->argv[0] || !f->argv[0][0] || !f->chain || !f->fn) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->d = d;
	s->ep.fd = -1;
	for (n = 0; f->argv[n]; n++)
		;
	s->argv = calloc(n + 1, sizeof(*s->argv));
	s->chain = strdup(f->chain);
	s->fn = strdup(f->fn);
	if (!s->argv || !s->chain || !s->fn)
		goto fail;
	for (i = 0; i < n; i++)
		if (!(s->argv[i] = strdup(f->argv[i])))
			goto fail;
	s->uid = f->uid;
	s->gid = f->gid;
	if (f->cpus) {
		s->has_cpus = true;
		s->cpus = *f->cpus;
	}
	s->use_template = f->use_template;
	s->tmpl_backoff_ns = TMPL_BACKOFF_MIN_NS;
	if (s->use_template)
		tmpl_start(s, spryd_now_ns());
	return s;
fail:
	spawner__free(s);
	errno = ENOMEM;
	return NULL;
}

/*
 * The child runs on its own stack in spryd's memory (clone(CLONE_VM |
 * CLONE_VFORK), as posix_spawn() does): spryd's page tables are not copied
 * (with tens of MiB of tables that copy and the copy-on-write faults after
 * it cost spryd milliseconds per start), and spryd waits, suspended, until
 * the child has exec'd or exited.  Sharing spryd's memory, the child calls
 * the kernel directly (syscall(): no libc lock, buffer or handler, no
 * sanitizer interceptor) and writes nothing but its own stack and errno
 * (spryd's thread's, which spryd, suspended meanwhile, does not read
 * before its own next call sets it).
 */
struct child_args {
	const struct spawner	*s;
	char *const		*envp;	/* the environment to exec with */
	int			errfd, tfd;
};

struct k_sigaction {		/* the kernel's struct sigaction (rt_sigaction) */
	void		*handler;
	unsigned long	flags;
	void		*restorer;
	uint64_t	mask;
};

#define NO_SAN	__attribute__((no_sanitize("address", "undefined")))

/* close_range() of every fd from @lo up but @a and @b (-1: none). */
static NO_SAN long close_above(int lo, int a, int b)
{
	int keep[2] = { a < b ? a : b, a < b ? b : a }, i;

	for (i = 0; i < 2; i++) {
		if (keep[i] < lo)
			continue;
		if (keep[i] > lo &&
		    syscall(SYS_close_range, (unsigned int)lo, (unsigned int)keep[i] - 1, 0))
			return -1;
		lo = keep[i] + 1;
	}
	return syscall(SYS_close_range, (unsigned int)lo, ~0U, 0);
}

/* In the child, until exec: raw syscalls on its own stack only. */
static NO_SAN int child(void *arg)
{
	const struct child_args *ca = arg;
	const struct spawner *s = ca->s;
	struct k_sigaction dfl = { .handler = SIG_DFL };
	uint64_t none = 0;
	int errfd = ca->errfd, tfd = ca->tfd;
	long fd, sig, e;

	syscall(SYS_setpgid, 0, 0);
	for (sig = 1; sig < NSIG; sig++)	/* EINVAL for KILL/STOP: fine */
		syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	if (s->has_cpus && syscall(SYS_sched_setaffinity, 0, sizeof(s->cpus), &s->cpus))
		goto fail;
	fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
	if (fd < 0 || (fd != 0 && syscall(SYS_dup3, fd, 0, 0) < 0))
		goto fail;
	if (fd > 2)
		syscall(SYS_close, fd);
	if (s->uid != (uid_t)syscall(SYS_getuid) || s->gid != (gid_t)syscall(SYS_getgid)) {
		if (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setgid, s->gid) ||
		    syscall(SYS_setuid, s->uid))
			goto fail;
	}
	/*
	 * Every fd above 2 but the error pipe (close-on-exec) and a
	 * benchmark's trace fd (spryd_trace_fd(): it goes on to the instance).
	 */
	if (close_above(3, errfd, tfd > 2 && tfd != errfd ? tfd : -1))
		goto fail;
	if (tfd > 2 && tfd != errfd && syscall(SYS_fcntl, tfd, F_SETFD, 0))
		goto fail;
	syscall(SYS_execve, s->argv[0], s->argv, ca->envp);
fail:
	/* a raw syscall that failed left its error in errno: read it once */
	e = errno;
	syscall(SYS_write, errfd, &e, sizeof(int));
	syscall(SYS_exit, 127);
	return 127;
}

/*
 * The template (spryd/template.h) is started with the spawner, so that it
 * is ready (READY: it got the chain's pool from our own loop) before the
 * first cold start.  Until then, and while it is refused or dead, the
 * instances are fork + exec'd: the template is the fast path, never the
 * only one.  A failed template is started again after a backoff (1 s
 * doubling to 60 s).
 */
static void tmpl_start(struct spawner *s, uint64_t now)
{
	struct spawn_fn f = {
		.chain = s->chain, .fn = s->fn, .argv = s->argv,
		.uid = s->uid, .gid = s->gid, .cpus = s->has_cpus ? &s->cpus : NULL,
	};

	struct tmpl_hooks h = { .known = tmpl_known, .refused = tmpl_refused, .arg = s };

	s->tmpl = tmpl__start(&f, &h);
	if (!s->tmpl) {
		spryd_log("fn %s/%s: template: %s; instances by fork + exec", s->chain, s->fn,
			  strerror(errno));
		s->tmpl_retry_ns = now + s->tmpl_backoff_ns;
		return;
	}
	s->changed = true;
	s->tmpl_started_ns = now;
	/* its READY, its spares and its death are seen by spryd's loop */
	s->ep.ops = &tmpl_ops;
	s->ep.fd = tmpl__fd(s->tmpl);
	if (spryd_ep_add(s->d, &s->ep, EPOLLIN)) {
		spryd_log("fn %s/%s: template pid %d: epoll: %s", s->chain, s->fn,
			  (int)tmpl__pid(s->tmpl), strerror(errno));
		s->ep.fd = -1;
	}
}

/* Every process spryd knows (daemon.c asks each room that has some). */
static bool tmpl_known(void *arg, pid_t pid)
{
	struct spawner *s = arg;

	return s->d->pid_known && s->d->pid_known(s->d, pid);
}

/* Never taken: not watched, never signalled (FORKED: fork + exec instead). */
static void tmpl_refused(void *arg, pid_t pid, bool spare, const char *why)
{
	struct spawner *s = arg;

	spryd_log("fn %s/%s: template pid %d named pid %d as its %s: %s: refused", s->chain,
		  s->fn, (int)tmpl__pid(s->tmpl), (int)pid, spare ? "spare" : "clone", why);
}

static void tmpl_failed(struct spawner *s, int err, uint64_t now)
{
	spryd_log("fn %s/%s: template pid %d: %s%s; instances by fork + exec, template again in %llu ms",
		  s->chain, s->fn, (int)tmpl__pid(s->tmpl), strerror(-err),
		  err == -EPIPE ? " (it exited)" : err == -EIDRM ? " (no such chain or function)" : "",
		  (unsigned long long)(s->tmpl_backoff_ns / 1000000));
	tmpl_drop(s);
	s->tmpl_retry_ns = now + s->tmpl_backoff_ns;
	s->tmpl_backoff_ns *= 2;
	if (s->tmpl_backoff_ns > TMPL_BACKOFF_MAX_NS)
		s->tmpl_backoff_ns = TMPL_BACKOFF_MAX_NS;
}

static void tmpl_said_ready(struct spawner *s)
{
	if (s->tmpl_said_ready)
		return;
	s->tmpl_said_ready = true;
	s->tmpl_backoff_ns = TMPL_BACKOFF_MIN_NS;
	s->changed = true;
	spryd_log("fn %s/%s: template pid %d ready", s->chain, s->fn, (int)tmpl__pid(s->tmpl));
}

/* The template said something (READY, a new spare) or died (EOF). */
static void tmpl_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct spawner *s = (struct spawner *)ep;
	pid_t spare = tmpl__spare(s->tmpl);
	int err;

	(void)d;
	(void)events;
	err = tmpl__poll(s->tmpl);
	if (err) {
		tmpl_failed(s, err, spryd_now_ns());
		return;
	}
	if (tmpl__ready(s->tmpl))
		tmpl_said_ready(s);
	if (tmpl__spare(s->tmpl) != spare)
		s->changed = true;
}

void spawner__timer(struct spawner *s, uint64_t now, uint64_t *next)
{
	uint64_t due;

	if (!s || !s->use_template)
		return;
	if (s->tmpl && !s->tmpl_said_ready) {
		/* started, not READY yet: stopped if it stays silent as long as
		 * an instance may take to register (--start-timeout) */
		due = s->tmpl_started_ns + s->d->sv_opts.start_timeout_ns;
		if (now >= due) {
			spryd_log("fn %s/%s: template pid %d not ready within %llu ms: is %s a libspry function? (else declare it start exec)",
				  s->chain, s->fn, (int)tmpl__pid(s->tmpl),
				  (unsigned long long)(s->d->sv_opts.start_timeout_ns / 1000000ULL),
				  s->argv[0]);
			kill(tmpl__pid(s->tmpl), SIGKILL);	/* silent: no grace */
			tmpl_failed(s, -ETIMEDOUT, now);
		} else if (!*next || due < *next) {
			*next = due;
		}
		return;
	}
	if (s->tmpl)
		return;
	if (now >= s->tmpl_retry_ns) {
		tmpl_start(s, now);
		return;
	}
	if (!*next || s->tmpl_retry_ns < *next)
		*next = s->tmpl_retry_ns;
}

pid_t spawner__template_pid(const struct spawner *s)
{
	return s && s->tmpl ? tmpl__pid(s->tmpl) : 0;
}

pid_t spawner__spare_pid(const struct spawner *s)
{
	pid_t p = s && s->tmpl ? tmpl__spare(s->tmpl) : 0;

	return p > 0 ? p : 0;
}

bool spawner__take_changed(struct spawner *s)
{
	bool c = s && s->changed;

	if (s)
		s->changed = false;
	return c;
}

/*
 * An instance from the template: its pid, or -errno (fork + exec then).
 * @body (@len bytes, NULL: none): a cloud process's (spawner__start_proc()).
 */
static pid_t tmpl_instance(struct spawner *s, const void *body, uint32_t len)
{
	uint64_t now = spryd_now_ns();
	pid_t pid;
	int err;

	if (!s->tmpl)
		return -EAGAIN;		/* spawner__timer() starts it again */
	err = tmpl__poll(s->tmpl);
	if (err) {
		tmpl_failed(s, err, now);
		return err;
	}
	if (!tmpl__ready(s->tmpl))
		return -EAGAIN;
	tmpl_said_ready(s);
	if (body && !tmpl__can(s->tmpl, SPRY_TMPL_CAN_PROC))
		return -EOPNOTSUPP;	/* an older libspry: exec'd */
	pid = tmpl__fork_body(s->tmpl, body, len, NULL);
	if (pid == -EINVAL)	/* the body refused: this one exec'd, the template kept */
		spryd_log("fn %s/%s: template pid %d refused a process body (%u bytes): fork + exec",
			  s->chain, s->fn, (int)tmpl__pid(s->tmpl), len);
	else if (pid < 0 && pid != -EAGAIN)
		tmpl_failed(s, pid, now);
	s->changed = true;	/* the spare became this instance */
	return pid;
}

bool spawner__cloned(const struct spawner *s)
{
	return s && s->last_cloned;
}

/*
 * spryd's environment with @env's "KEY=VALUE" entries added (replacing a
 * variable of the same name): built before the clone, so the child only
 * execs.  NULL + errno.
 */
static char **env_merge(char *const *env)
{
	size_t n_env = 0, n_add = 0, i, k, n = 0, klen;
	char **out;

	for (i = 0; environ && environ[i]; i++)
		n_env++;
	for (i = 0; env[i]; i++)
		n_add++;
	out = calloc(n_env + n_add + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (i = 0; i < n_env; i++) {
		for (k = 0; k < n_add; k++) {
			klen = strcspn(env[k], "=") + 1;
			if (!strncmp(environ[i], env[k], klen))
				break;
		}
		if (k == n_add)
			out[n++] = environ[i];
	}
	for (k = 0; k < n_add; k++)
		out[n++] = env[k];
	out[n] = NULL;
	return out;
}

pid_t spawner__start_proc(struct spawner *s, const void *body, uint32_t len,
			  char *const *env)
{
	pid_t pid;

	if (!s || !body || !len || !env)
		return -EINVAL;
	if (s->use_template) {
		pid = tmpl_instance(s, body, len);
		if (pid > 0) {
			s->last_cloned = true;
			return pid;
		}
	}
	return spawner__start_env(s, env);
}

pid_t spawner__start(struct spawner *s)
{
	return spawner__start_env(s, NULL);
}

pid_t spawner__start_env(struct spawner *s, char *const *env)
{
	struct child_args ca;
	char **envp = NULL;
	int pfd[2], e = 0;
	ssize_t n;
	pid_t pid;

	if (!s)
		return -EINVAL;
	s->last_cloned = false;
	if (env) {
		/* a template's clones inherit its environment: exec these */
		envp = env_merge(env);
		if (!envp)
			return -ENOMEM;
	} else if (s->use_template) {
		pid = tmpl_instance(s, NULL, 0);
		if (pid > 0) {
			s->last_cloned = true;
			return pid;
		}
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		free(envp);
		return -errno;
	}
	ca.s = s;
	ca.envp = envp ? envp : environ;
	ca.errfd = pfd[1];
	ca.tfd = spryd_trace_fd();
	if (!s->stack) {
		s->stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (s->stack == MAP_FAILED) {
			s->stack = NULL;
			e = -errno;
			goto out_pipe;
		}
	}
	/* spryd is suspended until the child exec'd (the pipe closed) or exited */
	pid = clone(child, (char *)s->stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &ca);
	if (pid < 0) {
		e = -errno;
		goto out_pipe;
	}
	free(envp);
	close(pfd[1]);
	do {
		n = read(pfd[0], &e, sizeof(e));
	} while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(e)) {
		/* exec failed: the child exits 127 at once; reap it here */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return e ? -e : -EIO;
	}
	return pid;
out_pipe:
	free(envp);
	close(pfd[0]);
	close(pfd[1]);
	return e;
}

/* ------------------------------------------------------------ adoption */

/* Does /proc/@pid/environ hold every entry of @env? 0, -ESTALE or -errno. */
static int environ_has(pid_t pid, char *const *env)
{
	char path[64], *buf = NULL, *p, *nb;
	size_t len = 0, cap = 0;
	unsigned int i;
	ssize_t n;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= (1U << 24)) {
				err = -E2BIG;
				goto out;
			}
			nb = realloc(buf, cap + 65536);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap += 65536;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	for (i = 0; env[i]; i++) {
		for (p = buf; p < buf + len; p += strlen(p) + 1)
			if (!strcmp(p, env[i]))
				break;
		if (p >= buf + len) {
			err = -ESTALE;
			goto out;
		}
	}
out:
	free(buf);
	close(fd);
	return err;
}

int spawn__start_time(pid_t pid, uint64_t *ticks)
{
	pid_t ppid;

	return tmpl__proc_stat(pid, &ppid, ticks);
}

int spawn__adopt(pid_t pid, const char *exe, char *const *env)
{
	return spawn__adopt_proc(pid, exe, env, 0);
}

int spawn__adopt_proc(pid_t pid, const char *exe, char *const *env, uint64_t start_time)
{
	uint64_t st;
	char link[64], path[PATH_MAX];
	struct pollfd pfd;
	ssize_t n;
	int fd, err;

	if (pid <= 1)
		return -ESRCH;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0) {
		err = errno == ENOENT ? -ESRCH : -errno;
		goto fail;
	}
	path[n] = '\0';
	if (strcmp(path, exe)) {
		err = -ENOEXEC;
		goto fail;
	}
	if (start_time) {
		/* a clone's environment is its template's: its start proves it */
		err = spawn__start_time(pid, &st);
		if (!err && st != start_time)
			err = -ESTALE;
		if (err)
			goto fail;
	} else if (env) {
		err = environ_has(pid, env);
		if (err == -ENOENT)
			err = -ESRCH;
		if (err)
			goto fail;
	}
	/* still the process the pidfd names: what /proc said was about it */
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) != 0) {
		err = -ESRCH;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}
