// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_tmpl_check: the proof spryd asks of the pid a template names as its
 * clone or spare (spryd/template.c, tmpl__check_clone(); docs/PROCESS.md,
 * "Started from the template"): the /proc/PID/stat and /proc/PID/status
 * parsers on lines made to mislead them, then live processes: this
 * program plays spryd (and, for the credentials, the template): a child
 * of its own passes; pid 1, this program, the template itself, a pid that
 * is gone, a child started before the FORK, and (as root) a child running
 * as another uid or gid are refused, each with its reason.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "spryd/template.h"
#include "selftests/tap.h"

/* "1234 (COMM) S PPID" then fields 5..21 ("0"), START, then the rest */
static void stat_line(char *buf, size_t len, const char *comm, const char *ppid,
		      const char *start)
{
	int n, i;

	n = snprintf(buf, len, "1234 (%s) S %s", comm, ppid);
	for (i = 5; i <= 21; i++)
		n += snprintf(buf + n, len - (size_t)n, " 0");
	snprintf(buf + n, len - (size_t)n, " %s 0 0\n", start);
}

static void parsers(void)
{
	char buf[512];
	pid_t ppid = 7;
	uint64_t start = 7;
	uint32_t ids[4] = {};

	stat_line(buf, sizeof(buf), "spry-fn", "99", "123456");
	EXPECT_EQ(tmpl__stat_parse(buf, &ppid, &start), 0);
	EXPECT_EQ(ppid, 99);
	EXPECT_EQ(start, 123456);
	/* a comm that imitates the fields: its last ')' ends it */
	stat_line(buf, sizeof(buf), "x) S 1 1 1 1 (y", "42", "77");
	EXPECT_EQ(tmpl__stat_parse(buf, &ppid, &start), 0, "comm 'x) S 1 1 1 1 (y'");
	EXPECT_EQ(ppid, 42);
	EXPECT_EQ(start, 77);
	stat_line(buf, sizeof(buf), "a", "-1", "77");
	EXPECT_EQ(tmpl__stat_parse(buf, &ppid, &start), -EPROTO, "a negative parent");
	stat_line(buf, sizeof(buf), "a", "1", "77x");
	EXPECT_EQ(tmpl__stat_parse(buf, &ppid, &start), -EPROTO, "junk after the start time");
	EXPECT_EQ(tmpl__stat_parse("1234 (a) S 1 0 0", &ppid, &start), -EPROTO, "cut short");
	EXPECT_EQ(tmpl__stat_parse("1234 a S 1", &ppid, &start), -EPROTO, "no ')'");

	EXPECT_EQ(tmpl__status_ids("Name:\tx\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\n", ids), 0);
	EXPECT_TRUE(ids[0] == 1 && ids[1] == 2 && ids[2] == 5 && ids[3] == 6,
		    "real and effective uid, then gid: %u %u %u %u", ids[0], ids[1], ids[2], ids[3]);
	EXPECT_EQ(tmpl__status_ids("Uid:\t1\t2\t3\t4\n", ids), -EPROTO, "no Gid line");
	EXPECT_EQ(tmpl__status_ids("Uid:\t1\nGid:\t5\t6\t7\t8\n", ids), -EPROTO,
		  "a Uid line without its effective uid");
	EXPECT_EQ(tmpl__status_ids("XUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\n", ids), -EPROTO,
		  "'Uid:' only at the start of a line");
}

/* A child that waits for its pipe to close (or runs as @uid/@gid first: -1 keeps). */
static pid_t child(int *wfd, int uid, int gid)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		if ((gid >= 0 && setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid)) ||
		    (uid >= 0 && setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid)))
			_exit(1);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

static void end(pid_t pid, int wfd)
{
	close(wfd);
	waitpid(pid, NULL, 0);
}

/* Has @pid (our child) taken its uid/gid yet?  Its status says. */
static void settled(pid_t pid, int uid, int gid)
{
	char path[64], line[256];
	unsigned int r, e;
	int i, ok = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	for (i = 0; i < 500 && !ok; i++) {
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if ((uid >= 0 && sscanf(line, "Uid:\t%u\t%u", &r, &e) == 2 && (int)e == uid) ||
			    (gid >= 0 && sscanf(line, "Gid:\t%u\t%u", &r, &e) == 2 && (int)e == gid))
				ok = 1;
		if (f)
			fclose(f);
		if (!ok)
			usleep(2000);
	}
}

static void live(void)
{
	char why[160];
	uint64_t before = tmpl__boot_ticks();
	pid_t me = getpid(), c, gone;
	int wfd, wfd2, err;

	EXPECT_GT(before, 0, "CLOCK_BOOTTIME in ticks");
	c = child(&wfd, -1, -1);
	ASSERT_GT(c, 0, "a child");
	err = tmpl__check_clone(me, c, before, why, sizeof(why));
	EXPECT_EQ(err, 0, "our child, started after 'FORK', our uid and gid: taken (%s)",
		  err ? why : "ok");
	EXPECT_EQ(tmpl__check_clone(me, c, 0, why, sizeof(why)), 0, "since 0: any start");

	err = tmpl__check_clone(me, c, tmpl__boot_ticks() + 100, why, sizeof(why));
	EXPECT_EQ(err, -ESTALE, "started a second before 'FORK': refused (%s)", why);
	EXPECT_TRUE(strstr(why, "before tick") != NULL, "why: %s", why);

	err = tmpl__check_clone(me, 1, 0, why, sizeof(why));
	EXPECT_EQ(err, -EPERM, "pid 1: refused (%s)", why);
	EXPECT_TRUE(strstr(why, "not spryd's child") != NULL, "why: %s", why);

	err = tmpl__check_clone(c, me, 0, why, sizeof(why));
	EXPECT_EQ(err, -EPERM, "spryd's own pid (this program): refused (%s)", why);

	err = tmpl__check_clone(c, c, 0, why, sizeof(why));
	EXPECT_EQ(err, -EPERM, "the template itself: refused (%s)", why);
	EXPECT_STREQ(why, "the template itself");

	EXPECT_EQ(tmpl__check_clone(me, 0, 0, why, sizeof(why)), -ESRCH, "pid 0: refused");
	EXPECT_EQ(tmpl__check_clone(me, -1, 0, why, sizeof(why)), -ESRCH, "pid -1: refused");

	gone = child(&wfd2, -1, -1);
	ASSERT_GT(gone, 0, "a second child");
	end(gone, wfd2);
	err = tmpl__check_clone(me, gone, 0, why, sizeof(why));
	EXPECT_EQ(err, -ESRCH, "a pid that is gone (reaped): refused (%s)", why);

	if (geteuid() != 0) {
		tap_skip("another uid, another gid", "not root");
		end(c, wfd);
		return;
	}
	/* the template (c, our uid) names a child of ours running as nobody */
	gone = child(&wfd2, 65534, -1);
	ASSERT_GT(gone, 0, "a child as uid 65534");
	settled(gone, 65534, -1);
	err = tmpl__check_clone(c, gone, 0, why, sizeof(why));
	EXPECT_EQ(err, -EPERM, "our child as another uid: refused (%s)", why);
	EXPECT_TRUE(strstr(why, "runs as uid 65534/65534") != NULL, "why: %s", why);
	end(gone, wfd2);
	gone = child(&wfd2, -1, 65534);
	ASSERT_GT(gone, 0, "a child as gid 65534");
	settled(gone, -1, 65534);
	err = tmpl__check_clone(c, gone, 0, why, sizeof(why));
	EXPECT_EQ(err, -EPERM, "our child as another gid (same uid): refused (%s)", why);
	end(gone, wfd2);
	end(c, wfd);
}

int main(void)
{
	parsers();
	live();
	return tap_finish();
}
