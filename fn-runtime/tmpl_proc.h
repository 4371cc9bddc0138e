/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The body of a template's FORK for a cloud process (struct spry_tmpl_proc,
 * include/spry/abi.h; docs/PROCESS.md "Started from the template"),
 * decoded and checked in one place: the template takes only what
 * spry_tmpl_proc__decode() accepts, and spryd builds its bodies with
 * spry_tmpl_proc__encode() (which gives only bodies the decoder accepts).
 * fuzz/fuzz_tmpl_proc.c fuzzes it.
 *
 * A body is accepted when all of these hold:
 *   - it is exactly sizeof(struct spry_tmpl_proc) + path_len + swap_len +
 *     fns_len bytes, pad is 0;
 *   - id: 1..2^63-1; state_size: 0 (open only) or
 *     SPRY_STATE_MIN_SIZE..SPRY_STATE_MAX_SIZE;
 *   - app: 1..31 bytes of [A-Za-z0-9_.-], NUL-terminated within its 32
 *     bytes, every byte after the NUL zero;
 *   - each string is its length's bytes with its only NUL the last one:
 *     the state path 2..SPRY_TMPL_PROC_PATH_MAX bytes, starting with '/';
 *     the swap directory none (0) or 2..SPRY_TMPL_PROC_SWAP_MAX bytes,
 *     starting with '/'; the functions 1..SPRY_TMPL_PROC_MAX_FNS names of
 *     1..31 bytes of [A-Za-z0-9_.-] joined by single commas.
 * Anything else is -EINVAL.
 */
#ifndef SPRY_TMPL_PROC_H
#define SPRY_TMPL_PROC_H

#include <stddef.h>
#include <stdint.h>

#include "spry/abi.h"

/* The largest body. */
#define SPRY_TMPL_PROC_BODY_MAX	(sizeof(struct spry_tmpl_proc) + SPRY_TMPL_PROC_PATH_MAX + \
				 SPRY_TMPL_PROC_SWAP_MAX + SPRY_TMPL_PROC_FNS_MAX)

/* A decoded body: the header and its strings (pointing into the body). */
struct spry_tmpl_proc_dec {
	struct spry_tmpl_proc	hdr;
	const char		*path;	/* the state path */
	const char		*swap;	/* the swap directory, "" none */
	const char		*fns;	/* F1,F2,... */
};

/* 0 and *@out (may be NULL) filled, or -EINVAL. */
int spry_tmpl_proc__decode(const void *body, size_t len, struct spry_tmpl_proc_dec *out);
/*
 * The body for these into @buf (@size bytes): its length, or -EINVAL when
 * the decoder would refuse it (@swap NULL or "": none), -ENOSPC when
 * @size is too small.
 */
int spry_tmpl_proc__encode(void *buf, size_t size, const char *app, uint64_t id,
			   uint64_t state_size, const char *path, const char *swap,
			   const char *fns);

#endif /* SPRY_TMPL_PROC_H */
