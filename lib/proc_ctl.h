/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The body of a PROC control message (struct spry_ctl_proc,
 * fn-runtime/proto.h; docs/PROCESS.md), decoded and checked in one place:
 * spryd's process room takes only what spry_ctl_proc__decode() accepts,
 * and the CLI builds its messages with spry_ctl_proc__encode() (which
 * gives only bodies the decoder accepts).  fuzz/fuzz_proc_ctl.c fuzzes it.
 *
 * A body is accepted when all of these hold:
 *   - it is exactly sizeof(struct spry_ctl_proc) (48) bytes;
 *   - app: a name of lib/names.c (spry_name_check(): 1..31 bytes of
 *     [A-Za-z0-9_.-]), NUL-terminated within its 32 bytes, every byte
 *     after the NUL zero (so a body has one encoding);
 *   - op: SPRY_PROC_CREATE .. SPRY_PROC_WAKE;
 *   - id: at most SPRY_PROC_ID_MAX; 0 only for CREATE (spryd picks one)
 *     and SHOW (every process);
 *   - flags: only SPRY_PROC_F_ACTIVE, and only with SHOW and id 0.
 * Anything else is refused with -EINVAL (spryd answers PROC_ACK with
 * that status); what the app, the process and the caller are is spryd's
 * to check afterwards (-ENODEV, -ENOENT, -EPERM: docs/PROCESS.md).
 */
#ifndef SPRY_LIB_PROC_CTL_H
#define SPRY_LIB_PROC_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "fn-runtime/proto.h"

/* 0 and *@out (may be NULL) filled, or -EINVAL with *@out untouched. */
int spry_ctl_proc__decode(const void *body, size_t len, struct spry_ctl_proc *out);
/*
 * The body for @app, @id, @op, @flags into *@out: 0, or -EINVAL (with
 * *@out zeroed) when the decoder would refuse it (a bad or too long name,
 * an id, op or flags out of the rules above).
 */
int spry_ctl_proc__encode(const char *app, uint64_t id, uint32_t op, uint32_t flags,
			  struct spry_ctl_proc *out);

#endif /* SPRY_LIB_PROC_CTL_H */
