// SPDX-License-Identifier: GPL-2.0-only
/* Declaration files: path, atomic write, removal (lib/jsonfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core.h"
#include "lib/fs.h"
#include "lib/jsonfile.h"

int spry_jsonfile__path(const char *dir, const char *name, const char *suffix,
			char *buf, size_t len)
{
	int n;

	if (spry_name_check(name))
		return -EINVAL;
	n = snprintf(buf, len, "%s/%s.json%s", dir, name, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

int spry_jsonfile__write_stream(const char *dir, const char *name,
				int (*emit)(FILE *f, void *ctx), void *ctx)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f = NULL;
	int fd, err;

	err = spry_jsonfile__path(dir, name, "", path, sizeof(path));
	err = err ?: spry_jsonfile__path(dir, name, ".tmp", tmp, sizeof(tmp));
	err = err ?: spry_mkdir_p(dir, 0755, 0700);
	if (err)
		return err;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto out;
	}
	err = emit(f, ctx);
	if (!err && (fflush(f) || ferror(f)))
		err = errno ? -errno : -EIO;
	if (!err && fsync(fd))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	/* the rename is durable only once the directory is on disk */
	if (!err)
		err = fsync_dir(dir);
out:
	if (err)
		unlink(tmp);
	return err;
}

static int emit_root(FILE *f, void *ctx)
{
	if (json_dumpf(ctx, f, JSON_INDENT(1) | JSON_SORT_KEYS) || fputc('\n', f) == EOF)
		return -EIO;
	return 0;
}

int spry_jsonfile__write(const char *dir, const char *name, json_t *root)
{
	int err = spry_jsonfile__write_stream(dir, name, emit_root, root);

	json_decref(root);
	return err;
}

int spry_jsonfile__remove(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int err = spry_jsonfile__path(dir, name, "", path, sizeof(path));

	if (err)
		return err;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}
