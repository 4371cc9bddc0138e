/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Root's declaration files, DIR/NAME.json (the declared functions' and the
 * apps'): the path of a checked name, an atomic write (0600, fsync,
 * rename) and a removal.  What goes in a file is its owner's (decl_file.c,
 * app_file.c).
 */
#ifndef SPRY_LIB_JSONFILE_H
#define SPRY_LIB_JSONFILE_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* DIR/NAME.jsonSUFFIX; -EINVAL a bad name, -ENAMETOOLONG. */
int spry_jsonfile__path(const char *dir, const char *name, const char *suffix,
			char *buf, size_t len);
/*
 * Write @root (taken: always released) to DIR/NAME.json through
 * DIR/NAME.json.tmp (fsync, rename, fsync of DIR), DIR made 0700 if
 * missing.  0 or -errno; a failure before the rename leaves the old file,
 * one in the directory's fsync the new file, perhaps not yet durable.
 */
int spry_jsonfile__write(const char *dir, const char *name, json_t *root);
/*
 * The same with the file's content written by @emit (0 or -errno) to @f:
 * a file too big to hold as one json_t (a process table) written a
 * piece at a time.
 */
int spry_jsonfile__write_stream(const char *dir, const char *name,
				int (*emit)(FILE *f, void *ctx), void *ctx);
/* Remove DIR/NAME.json; 0 when it is not there. */
int spry_jsonfile__remove(const char *dir, const char *name);

#endif
