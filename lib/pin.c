// SPDX-License-Identifier: GPL-2.0-only
/*
 * The pin directory: where it is, making sure bpffs is there, and the
 * directory lock every writer of the pinned maps takes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "lib/core.h"
#include "lib/fs.h"

#define SPRY_BPFFS_ROOT	"/sys/fs/bpf"

const char *spry_pin_dir(const char *override)
{
	const char *env;

	if (override && *override)
		return override;
	env = getenv("SPRY_PIN_DIR");
	if (env && *env)
		return env;
	return SPRY_PIN_DIR_DEFAULT;
}

static int copy_path(char *dst, const char *src)
{
	size_t len = strlen(src);

	if (!len)
		return -EINVAL;
	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(dst, src, len + 1);
	/* Drop trailing slashes, but keep "/". */
	while (len > 1 && dst[len - 1] == '/')
		dst[--len] = '\0';
	return 0;
}

/* Longest existing prefix of @path, in place; "" when none (relative). */
static void existing_ancestor(char *path)
{
	struct stat st;
	char *slash;

	while (stat(path, &st)) {
		slash = strrchr(path, '/');
		if (!slash) {
			strcpy(path, ".");
			return;
		}
		if (slash == path) {
			path[1] = '\0';
			return;
		}
		*slash = '\0';
	}
}

static bool is_bpffs(const char *path)
{
	struct statfs sfs;

	return !statfs(path, &sfs) && sfs.f_type == BPF_FS_MAGIC;
}

static bool under_bpffs_root(const char *path)
{
	size_t n = strlen(SPRY_BPFFS_ROOT);

	return !strncmp(path, SPRY_BPFFS_ROOT, n) &&
	       (path[n] == '\0' || path[n] == '/');
}

int spry_bpffs_ensure(const char *dir)
{
	char anc[PATH_MAX];
	struct stat st;
	int err;

	err = copy_path(anc, dir);
	if (err)
		return err;
	existing_ancestor(anc);
	if (!is_bpffs(anc)) {
		/*
		 * Only the standard bpffs location gets a mount: a directory
		 * elsewhere on another file system is a caller mistake.
		 */
		if (!under_bpffs_root(dir))
			return -EMEDIUMTYPE;
		if (stat(SPRY_BPFFS_ROOT, &st))
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		if (!is_bpffs(SPRY_BPFFS_ROOT) &&
		    mount("bpf", SPRY_BPFFS_ROOT, "bpf", 0, "mode=0700"))
			return -errno;
		if (!is_bpffs(anc) && !is_bpffs(SPRY_BPFFS_ROOT))
			return -EMEDIUMTYPE;
	}
	err = spry_mkdir_p(dir, 0700, 0700);
	if (err)
		return err;
	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!is_bpffs(dir))
		return -EMEDIUMTYPE;
	return 0;
}

int spry_pin_lock(const char *dir, int how)
{
	int fd, err;

	err = spry_mkdir_p(dir, 0700, 0700);
	if (err)
		return err;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (flock(fd, how)) {
		if (errno == EINTR)
			continue;
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

void spry_pin_unlock(int fd)
{
	if (fd < 0)
		return;
	flock(fd, LOCK_UN);
	close(fd);
}
