// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_template.sh's driver of spryd/template.c: plays the supervisor's
 * part (the parent of the template and, through CLONE_PARENT, of every
 * instance), one command per stdin line, one answer line on stdout:
 *
 *   start ARG...   template of ARG... (argv)    -> "started PID" | "error E MSG"
 *   wait           READY within 5 s             -> "ready" | "error E MSG"
 *   fork           one instance                 -> "pid PID"  | "error E MSG"
 *   reap PID       waitpid(PID)                 -> "reaped PID STATUS" | "error E MSG"
 *   zombies        our children in state Z      -> "zombies N"
 *   parent PID     PID's parent is us?          -> "parent yes" | "parent no PPID"
 *   dead           the pair readable in 3 s and tmpl__poll() -> "dead E" | "alive"
 *   spare          the template's spare         -> "spare PID" (0: none)
 *   stop           tmpl__stop()                 -> "stopped"
 *
 * Not a test itself (no test_ prefix).
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "spryd/spryd.h"
#include "spryd/template.h"

#define MAX_ARGS 32

static struct tmpl *t;

static void free_args(char **argv)
{
	for (; *argv; argv++) {
		free(*argv);
		*argv = NULL;
	}
}

static void say_err(int err)
{
	printf("error %d %s\n", err, strerror(-err));
}

/* PID's state and parent from /proc/PID/stat; 0 or -errno. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	p = ok ? strrchr(buf, ')') : NULL;
	if (!p || sscanf(p + 1, " %c %d", state, ppid) != 2)
		return -EPROTO;
	return 0;
}

static int zombies(void)
{
	struct dirent *de;
	DIR *dir = opendir("/proc");
	pid_t me = getpid(), ppid;
	char st;
	int n = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid > 0 && !proc_stat(pid, &st, &ppid) && ppid == me && st == 'Z')
			n++;
	}
	closedir(dir);
	return n;
}

/* A pid the template named, refused: said on stderr (the test's log). */
static void refused(void *arg, pid_t pid, bool spare, const char *why)
{
	(void)arg;
	fprintf(stderr, "tmpl_ctl: refused pid %d as the template's %s: %s\n", (int)pid,
		spare ? "spare" : "clone", why);
}

static void cmd_wait(void)
{
	struct pollfd pfd = { .fd = tmpl__fd(t), .events = POLLIN };
	int i, err;

	for (i = 0; i < 50; i++) {
		err = tmpl__poll(t);
		if (err) {
			say_err(err);
			return;
		}
		if (tmpl__ready(t)) {
			printf("ready\n");
			return;
		}
		poll(&pfd, 1, 100);
	}
	say_err(-ETIMEDOUT);
}

int main(void)
{
	static char *argv[MAX_ARGS + 1];
	static char line[4096];
	struct spawn_fn f = {};
	struct tmpl_hooks h = { .refused = refused };
	struct pollfd pfd;
	char *w, *save;
	pid_t pid, r, ppid;
	char st;
	int n, status, err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		w = strtok_r(line, " ", &save);
		if (!w)
			continue;
		if (!strcmp(w, "start")) {
			if (t)
				tmpl__stop(t);
			t = NULL;
			free_args(argv);
			for (n = 0; n < MAX_ARGS && (w = strtok_r(NULL, " ", &save)); n++)
				argv[n] = strdup(w);
			argv[n] = NULL;
			f.chain = "test";
			f.fn = "test";
			f.argv = argv;
			f.uid = geteuid();
			f.gid = getegid();
			t = tmpl__start(&f, &h);
			if (t)
				printf("started %d\n", (int)tmpl__pid(t));
			else
				say_err(-errno);
		} else if (!t && strcmp(w, "reap") && strcmp(w, "zombies") && strcmp(w, "parent")) {
			say_err(-ESRCH);
		} else if (!strcmp(w, "wait")) {
			cmd_wait();
		} else if (!strcmp(w, "fork")) {
			pid = tmpl__fork(t);
			if (pid > 0)
				printf("pid %d\n", (int)pid);
			else
				say_err(pid);
		} else if (!strcmp(w, "reap")) {
			w = strtok_r(NULL, " ", &save);
			pid = w ? (pid_t)atoi(w) : 0;
			r = pid > 0 ? waitpid(pid, &status, 0) : -1;
			if (r == pid)
				printf("reaped %d %d\n", (int)pid, status);
			else
				say_err(pid > 0 ? -errno : -EINVAL);
		} else if (!strcmp(w, "zombies")) {
			printf("zombies %d\n", zombies());
		} else if (!strcmp(w, "parent")) {
			w = strtok_r(NULL, " ", &save);
			err = proc_stat(w ? (pid_t)atoi(w) : 0, &st, &ppid);
			if (err)
				say_err(err);
			else if (ppid == getpid())
				printf("parent yes\n");
			else
				printf("parent no %d\n", (int)ppid);
		} else if (!strcmp(w, "dead")) {
			pfd.fd = tmpl__fd(t);
			pfd.events = POLLIN;
			if (poll(&pfd, 1, 3000) == 1 && (err = tmpl__poll(t)))
				printf("dead %d\n", err);
			else
				printf("alive\n");
		} else if (!strcmp(w, "spare")) {
			tmpl__poll(t);
			printf("spare %d\n", (int)tmpl__spare(t));
		} else if (!strcmp(w, "stop")) {
			tmpl__stop(t);
			t = NULL;
			printf("stopped\n");
		} else {
			say_err(-EINVAL);
		}
	}
	if (t)
		tmpl__stop(t);
	free_args(argv);
	return 0;
}
