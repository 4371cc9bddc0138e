// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pins of the pin directory, by name: what spry load, spry ingress and
 * spry mesh share to find, open, check and remove their maps, programs
 * and links.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>

#include "loader/main.h"

int pin_path(char *buf, size_t len, const char *name)
{
	if (snprintf(buf, len, "%s/%s", pin_dir, name) >= (int)len) {
		p_err("path %s/%s is too long", pin_dir, name);
		return -1;
	}
	return 0;
}

bool pin_exists(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (pin_path(path, sizeof(path), name))
		return false;
	return !lstat(path, &st);
}

int pin_remove(const char *name)
{
	char path[PATH_MAX];

	if (pin_path(path, sizeof(path), name))
		return -1;
	if (!unlink(path))
		return 1;
	if (errno == ENOENT)
		return 0;
	return p_errno(-errno, "cannot remove %s", path);
}

int pins_remove(const char *const *names, int n)
{
	int i, err, removed = 0, ret = 0;

	for (i = 0; i < n; i++) {
		err = pin_remove(names[i]);
		if (err < 0)
			ret = -1;
		removed += err > 0;
	}
	return ret ? -1 : removed;
}

int pin_get(const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (pin_path(path, sizeof(path), name))
		return -EINVAL;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int pin_map_get(const char *name, __u32 key_size, __u32 value_size)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd, err;

	fd = pin_get(name);
	if (fd < 0)
		return fd;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	else if (info.key_size != key_size || info.value_size != value_size)
		err = -EPROTO;
	else
		return fd;
	close(fd);
	return err;
}

int pin_link_remove(const char *name)
{
	int fd;

	fd = pin_get(name);
	if (fd == -ENOENT)
		return 0;
	if (fd >= 0) {
		/* a defunct link (device or cgroup gone) has nothing left to detach */
		if (bpf_link_detach(fd) && errno != ENOLINK && errno != EINVAL) {
			p_errno(-errno, "cannot detach the link %s/%s", pin_dir, name);
			close(fd);
			return -1;
		}
		close(fd);
	}
	return pin_remove(name);
}

int pin_dir_prepare(void)
{
	int err;

	err = spry_bpffs_ensure(pin_dir);
	if (err == -EMEDIUMTYPE) {
		p_err("%s is not on a BPF file system (bpffs)", pin_dir);
		return -1;
	}
	if (err)
		return p_errno(err, "cannot prepare %s", pin_dir);
	return 0;
}

bool pin_dir_exists(void)
{
	struct stat st;

	return !stat(pin_dir, &st);
}

void pin_dir_undo(bool had_dir)
{
	if (!had_dir)
		rmdir(pin_dir);
}

int pins_collect(int (*take)(const char *name, void *elem), size_t size, void **out,
		 size_t *n)
{
	struct dirent *de;
	size_t cap = 0;
	char *v = NULL, *tmp;
	DIR *d;

	*n = 0;
	*out = NULL;
	d = opendir(pin_dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return p_errno(-errno, "cannot read %s", pin_dir);
	}
	while ((de = readdir(d))) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			tmp = realloc(v, cap * size);
			if (!tmp) {
				closedir(d);
				free(v);
				p_err("out of memory");
				return -1;
			}
			v = tmp;
		}
		if (!take(de->d_name, v + *n * size))
			(*n)++;
	}
	closedir(d);
	*out = v;
	return 0;
}
