/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Directories on the way to a path, made as `mkdir -p` makes them: shared
 * by spry and spryd (pin directories, declaration directories, the control
 * socket's directory).  Internal to libsprycore.
 */
#ifndef SPRY_LIB_FS_H
#define SPRY_LIB_FS_H

#include <sys/types.h>

/*
 * Make @path and every missing directory above it: those above with mode
 * @parents, @path itself with @leaf (both under the umask).  Directories
 * already there are left as they are.  0, or -errno: -ENAMETOOLONG,
 * -ENOTDIR when @path or a component is not a directory, mkdir()'s.
 */
int spry_mkdir_p(const char *path, mode_t parents, mode_t leaf);

#endif
