// SPDX-License-Identifier: GPL-2.0-only
/*
 * tmpl_hostile: an app's template that lies about its clones, for
 * test_process_template.sh (docs/PROCESS.md, "Started from the template").
 * Not a test itself (no test_ prefix).
 *
 * Started by spryd as a template (SPRY_TEMPLATE_FD in its environment), it
 * says READY (SPRY_TMPL_CAN_PROC) without asking for a pool and clones
 * nothing; the test scripts its lies in the directory $TMPL_HOSTILE_DIR:
 *
 *   forked   a pid: each FORK is answered FORKED naming it
 *   spare    a pid: announced as its spare (SPARE) within 50 ms, then the
 *            file is renamed spare.sent
 *   log      one line per FORK answered: "forked PID"
 *
 * It leaves when spryd closes its end of the pair.  Started without
 * SPRY_TEMPLATE_FD (spryd's fork + exec of a process the template did not
 * give it), it execs $TMPL_HOSTILE_EXEC with its own arguments: the app's
 * real function serves.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"

static const char *dir;

/* The pid in DIR/@name (0: none or unreadable). */
static pid_t named(const char *name)
{
	char path[PATH_MAX];
	int pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

static void note(pid_t pid)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/log", dir);
	f = fopen(path, "a");
	if (!f)
		return;
	fprintf(f, "forked %d\n", (int)pid);
	fclose(f);
}

int main(int argc, char **argv)
{
	struct spry_tmpl_ready ready = { .caps = SPRY_TMPL_CAN_PROC };
	struct spry_tmpl_forked fk;
	struct spry_ctl_hdr hdr;
	static char body[SPRY_CTL_MAX_MSG];
	char from[PATH_MAX], to[PATH_MAX];
	const char *v = getenv(SPRY_TEMPLATE_ENV), *exe;
	struct pollfd pfd = { .events = POLLIN };
	uint32_t fd;
	int ret;

	(void)argc;
	if (!v) {
		exe = getenv("TMPL_HOSTILE_EXEC");
		if (!exe) {
			fprintf(stderr, "tmpl_hostile: no TMPL_HOSTILE_EXEC to exec\n");
			return 1;
		}
		execv(exe, argv);
		fprintf(stderr, "tmpl_hostile: exec %s: %s\n", exe, strerror(errno));
		return 127;
	}
	dir = getenv("TMPL_HOSTILE_DIR");
	if (!dir || spry_num__parse_u32(v, 3, INT_MAX, &fd)) {
		fprintf(stderr, "tmpl_hostile: needs TMPL_HOSTILE_DIR and %s\n", SPRY_TEMPLATE_ENV);
		return 1;
	}
	pfd.fd = (int)fd;
	if (spry_ctl_send(pfd.fd, SPRY_TMPL_READY, 0, &ready, sizeof(ready), -1))
		return 1;
	for (;;) {
		memset(&fk, 0, sizeof(fk));
		fk.pid = named("spare");
		if (fk.pid) {
			snprintf(from, sizeof(from), "%s/spare", dir);
			snprintf(to, sizeof(to), "%s/spare.sent", dir);
			rename(from, to);
			if (spry_ctl_send(pfd.fd, SPRY_TMPL_SPARE, 0, &fk, sizeof(fk), -1))
				return 0;
		}
		ret = poll(&pfd, 1, 50);
		if (ret <= 0)
			continue;
		ret = spry_ctl_recv(pfd.fd, body, sizeof(body), &hdr, NULL);
		if (ret == -EAGAIN || ret == -EINTR)
			continue;
		if (ret < 0)
			return 0;	/* spryd closed the pair: leave */
		if (hdr.type != SPRY_TMPL_FORK)
			continue;
		memset(&fk, 0, sizeof(fk));
		fk.pid = named("forked");
		note(fk.pid);
		if (spry_ctl_send(pfd.fd, SPRY_TMPL_FORKED, 0, &fk, sizeof(fk), -1))
			return 0;
	}
}
