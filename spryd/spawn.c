// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's spawn room (spawn.h): fork + exec of a declared function's
 * instance.
 *
 * The child: its own process group (a terminal's ^C or a kill of spryd's
 * group does not reach it: spryd stops instances itself), every signal
 * unblocked and at its default (spryd blocks SIGTERM/SIGINT for its
 * signalfd, and a blocked mask survives exec), the CPUs, the user's
 * groups then gid then uid, stdin /dev/null, stdout/stderr left to spryd's
 * (its log), every other fd closed (close_range), then execv.  An exec
 * failure comes back through a close-on-exec pipe: 4 bytes of errno, or
 * EOF when exec succeeded, so "missing executable" is an error of
 * spawner__start() and not a child that died.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spryd/loop.h"
#include "spryd/spawn.h"
#include "spryd/template.h"

struct spawner {
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
	uint64_t	tmpl_backoff_ns;
	bool		tmpl_said_ready;
};

#define TMPL_BACKOFF_MIN_NS	(1000ULL * 1000000ULL)
#define TMPL_BACKOFF_MAX_NS	(60ULL * 1000000000ULL)

static void tmpl_start(struct spawner *s, uint64_t now);

void spawner__free(struct spawner *s)
{
	size_t i;

	if (!s)
		return;
	tmpl__stop(s->tmpl);
	for (i = 0; s->argv && s->argv[i]; i++)
		free(s->argv[i]);
	free(s->argv);
	free(s->chain);
	free(s->fn);
	free(s);
}

struct spawner *spawner__new(const struct spawn_fn *f)
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

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child(const struct spawner *s, int errfd, char *const *envp)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;
	int e, sig, fd;

	setpgid(0, 0);
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);	/* EINVAL for KILL/STOP: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (s->has_cpus && sched_setaffinity(0, sizeof(s->cpus), &s->cpus))
		goto fail;
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		goto fail;
	if (fd > 2)
		close(fd);
	if (s->uid != getuid() || s->gid != getgid()) {
		if (setgroups(0, NULL) || setgid(s->gid) || setuid(s->uid))
			goto fail;
	}
	/* Every fd above 2 but the error pipe: it is close-on-exec. */
	if (errfd > 3 && close_range(3, (unsigned int)errfd - 1, 0))
		goto fail;
	if (close_range((unsigned int)errfd + 1, ~0U, 0))
		goto fail;
	if (envp)
		execve(s->argv[0], s->argv, envp);
	else
		execv(s->argv[0], s->argv);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) != sizeof(e))
		e = 0;
	_exit(127);
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

	s->tmpl = tmpl__start(&f);
	if (!s->tmpl) {
		spryd_log("fn %s/%s: template: %s; instances by fork + exec", s->chain, s->fn,
			  strerror(errno));
		s->tmpl_retry_ns = now + s->tmpl_backoff_ns;
	}
}

static void tmpl_failed(struct spawner *s, int err, uint64_t now)
{
	spryd_log("fn %s/%s: template pid %d: %s%s; instances by fork + exec, template again in %llu ms",
		  s->chain, s->fn, (int)tmpl__pid(s->tmpl), strerror(-err),
		  err == -EPIPE ? " (it exited)" : err == -EIDRM ? " (no such chain or function)" : "",
		  (unsigned long long)(s->tmpl_backoff_ns / 1000000));
	tmpl__stop(s->tmpl);
	s->tmpl = NULL;
	s->tmpl_said_ready = false;
	s->tmpl_retry_ns = now + s->tmpl_backoff_ns;
	s->tmpl_backoff_ns *= 2;
	if (s->tmpl_backoff_ns > TMPL_BACKOFF_MAX_NS)
		s->tmpl_backoff_ns = TMPL_BACKOFF_MAX_NS;
}

/* An instance from the template: its pid, or -errno (fork + exec then). */
static pid_t tmpl_instance(struct spawner *s)
{
	uint64_t now = spryd_now_ns();
	pid_t pid;
	int err;

	if (!s->tmpl) {
		if (now < s->tmpl_retry_ns)
			return -EAGAIN;
		tmpl_start(s, now);
		return -EAGAIN;		/* not ready before our loop answers it */
	}
	err = tmpl__poll(s->tmpl);
	if (err) {
		tmpl_failed(s, err, now);
		return err;
	}
	if (!tmpl__ready(s->tmpl))
		return -EAGAIN;
	if (!s->tmpl_said_ready) {
		s->tmpl_said_ready = true;
		s->tmpl_backoff_ns = TMPL_BACKOFF_MIN_NS;
		spryd_log("fn %s/%s: template pid %d ready", s->chain, s->fn,
			  (int)tmpl__pid(s->tmpl));
	}
	pid = tmpl__fork(s->tmpl);
	if (pid < 0 && pid != -EAGAIN)
		tmpl_failed(s, pid, now);
	return pid;
}

extern char **environ;

/*
 * spryd's environment with @env's "KEY=VALUE" entries added (replacing a
 * variable of the same name): built before the fork, so the child only
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

pid_t spawner__start(struct spawner *s)
{
	return spawner__start_env(s, NULL);
}

pid_t spawner__start_env(struct spawner *s, char *const *env)
{
	char **envp = NULL;
	int pfd[2], e = 0;
	ssize_t n;
	pid_t pid;

	if (!s)
		return -EINVAL;
	if (env) {
		/* a template's clones inherit its environment: exec these */
		envp = env_merge(env);
		if (!envp)
			return -ENOMEM;
		goto exec;
	}
	if (s->use_template) {
		pid = tmpl_instance(s);
		if (pid > 0)
			return pid;
	}
exec:
	if (pipe2(pfd, O_CLOEXEC)) {
		free(envp);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		free(envp);
		return e;
	}
	if (!pid) {
		close(pfd[0]);
		child(s, pfd[1], envp);
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
}
