// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry down: stop the main job (scripts/demo.sh, `make demo`), which then
 * removes every pin, pool file and process it made.  The job records its
 * pid in SPRY_DEMO_PIDFILE; the pid is signalled only if that process is
 * still the demo script (a recycled pid is left alone).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fn-runtime/parse.h"
#include "loader/main.h"

#define SPRY_DEMO_PIDFILE	"/run/spry/demo.pid"
#define DOWN_WAIT_MS		15000

/* Whether /proc/@pid/cmdline names the demo script. */
static bool is_demo(pid_t pid)
{
	char path[64], cmd[4096];
	ssize_t n, i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	for (i = 0; i < n; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	cmd[n] = '\0';
	return strstr(cmd, "scripts/demo.sh") != NULL;
}

static int read_pid(const char *path, pid_t *pid)
{
	char buf[32];
	const char *end;
	ssize_t n;
	uint64_t v;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	/* "PID\n" as the demo writes it; a pid file is PID_MAX_LIMIT at most */
	if (spry_num__parse(buf, &end, 2, 4194304, &v) || (*end && strcmp(end, "\n")))
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

int do_down(int argc, char **argv)
{
	const char *pidfile = SPRY_DEMO_PIDFILE;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	pid_t pid = 0;
	int err, waited;

	if (argc == 1 && !strcmp(argv[0], "help")) {
		fprintf(json_output ? stderr : stdout,
			"Usage: spry down [pidfile PATH]\n\n"
			"Stop the main job started by `make demo` (pid in %s);\n"
			"it removes every pin, pool file and process it made.\n",
			SPRY_DEMO_PIDFILE);
		if (json_output)
			json_result(json_null());
		return 0;
	}
	if (argc == 2 && match_word((const char *const[]){ "pidfile", NULL }, argv[0],
				    "down keyword") == 0) {
		pidfile = argv[1];
	} else if (argc) {
		p_err("usage: spry down [pidfile PATH]");
		return -1;
	}
	err = read_pid(pidfile, &pid);
	if (err == -ENOENT) {
		p_err("no demo is running (no %s)", pidfile);
		return -1;
	}
	if (err) {
		p_err("cannot read %s: %s", pidfile, strerror(-err));
		return -1;
	}
	if (!is_demo(pid)) {
		p_err("pid %d in %s is not the demo; not signalling it", (int)pid, pidfile);
		return -1;
	}
	if (kill(pid, SIGTERM)) {
		p_err("cannot stop pid %d: %s", (int)pid, strerror(errno));
		return -1;
	}
	for (waited = 0; waited < DOWN_WAIT_MS && is_demo(pid); waited += 20)
		nanosleep(&ts, NULL);
	if (is_demo(pid)) {
		p_err("the demo (pid %d) did not stop within %d s", (int)pid,
		      DOWN_WAIT_MS / 1000);
		return -1;
	}
	if (json_output)
		json_result(json_pack("{s:i,s:b}", "pid", (int)pid, "stopped", 1));
	else
		printf("demo (pid %d) stopped\n", (int)pid);
	return 0;
}
