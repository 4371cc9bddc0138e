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

#include "spryd/spawn.h"

struct spawner {
	char		*chain, *fn;
	char		**argv;
	uid_t		uid;
	gid_t		gid;
	bool		has_cpus;
	cpu_set_t	cpus;
	bool		use_template;
};

void spawner__free(struct spawner *s)
{
	size_t i;

	if (!s)
		return;
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
	return s;
fail:
	spawner__free(s);
	errno = ENOMEM;
	return NULL;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child(const struct spawner *s, int errfd)
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
	execv(s->argv[0], s->argv);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) != sizeof(e))
		e = 0;
	_exit(127);
}

pid_t spawner__start(struct spawner *s)
{
	int pfd[2], e = 0;
	ssize_t n;
	pid_t pid;

	if (!s)
		return -EINVAL;
	/*
	 * use_template: the integrator's branch (a fork of the function's
	 * template, spryd/template.h) goes here; without one, fork + exec.
	 */
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return e;
	}
	if (!pid) {
		close(pfd[0]);
		child(s, pfd[1]);
	}
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
