// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_fs: spry_mkdir_p() (lib/fs.c), the one `mkdir -p` of spry and
 * spryd: the directories above made with one mode and the last with
 * another, existing ones left as they are, "a//b" and "a/b/" taken as
 * "a/b", a file in the way refused as -ENOTDIR, a path too long as
 * -ENAMETOOLONG, an empty one as -ENOENT.  In a temporary directory.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "selftests/tap.h"

static char top[] = "/tmp/spry-test-fs-XXXXXX";

/* The mode bits of @rel under top, -errno when it is not there. */
static int mode_of(const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	if (stat(path, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? (int)(st.st_mode & 07777) : -ENOTDIR;
}

static int mkp(const char *rel, mode_t parents, mode_t leaf)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	return spry_mkdir_p(path, parents, leaf);
}

static void case_modes(void)
{
	EXPECT_EQ(mkp("a/b/c", 0755, 0700), 0);
	EXPECT_EQ(mode_of("a"), 0755);
	EXPECT_EQ(mode_of("a/b"), 0755);
	EXPECT_EQ(mode_of("a/b/c"), 0700);
	/* again: nothing to do, nothing changed */
	EXPECT_EQ(mkp("a/b/c", 0700, 0755), 0);
	EXPECT_EQ(mode_of("a/b"), 0755);
	EXPECT_EQ(mode_of("a/b/c"), 0700);
	/* below an existing one: only the new ones get the modes */
	EXPECT_EQ(mkp("a/b/c/d/e", 0711, 0750), 0);
	EXPECT_EQ(mode_of("a/b/c"), 0700);
	EXPECT_EQ(mode_of("a/b/c/d"), 0711);
	EXPECT_EQ(mode_of("a/b/c/d/e"), 0750);
}

static void case_slashes(void)
{
	EXPECT_EQ(mkp("s//t///u/", 0755, 0700), 0);
	EXPECT_EQ(mode_of("s/t"), 0755);
	EXPECT_EQ(mode_of("s/t/u"), 0700);
	EXPECT_EQ(spry_mkdir_p("/", 0755, 0700), 0, "/ is there");
}

static void case_refused(void)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/file", top);
	f = fopen(path, "w");
	EXPECT_TRUE(f != NULL);
	if (f)
		fclose(f);
	EXPECT_EQ(mkp("file", 0755, 0700), -ENOTDIR, "a file where the directory goes");
	EXPECT_EQ(mkp("file/x", 0755, 0700), -ENOTDIR, "a file on the way");
	EXPECT_EQ(mode_of("file/x"), -ENOTDIR);
	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	EXPECT_EQ(spry_mkdir_p(path, 0755, 0700), -ENAMETOOLONG);
	EXPECT_EQ(spry_mkdir_p("", 0755, 0700), -ENOENT);
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd))
		fprintf(stderr, "# could not remove %s\n", top);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(case_modes, "parents and the directory get their own modes; existing ones stay"),
		TAP_CASE(case_slashes, "repeated and trailing slashes"),
		TAP_CASE(case_refused, "a file in the way, too long, empty: refused"),
	};
	int ret;

	umask(022);
	if (!mkdtemp(top))
		tap_skip_all("mkdtemp failed");
	ret = tap_run_cases(cases, TAP_N(cases));
	cleanup();
	return ret;
}
