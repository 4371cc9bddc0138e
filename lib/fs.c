// SPDX-License-Identifier: GPL-2.0-only
/*
 * mkdir -p (lib/fs.h).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fs.h"

int spry_mkdir_p(const char *path, mode_t parents, mode_t leaf)
{
	char buf[PATH_MAX];
	size_t n = strlen(path), i;
	struct stat st;

	if (!n)
		return -ENOENT;
	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')	/* "a/b/" is "a/b" */
		buf[--n] = '\0';
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i] == '/' && buf[i - 1] == '/')
			continue;	/* "a//b" */
		buf[i] = '\0';
		if (mkdir(buf, i == n ? leaf : parents) && errno != EEXIST)
			return -errno;
		if (i < n)
			buf[i] = '/';
	}
	/* EEXIST also means a file of that name: not a directory to use */
	if (stat(buf, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
