/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's process room (process.c): apps and their cloud processes
 * (docs/PROCESS.md).  Reads the apps' declarations (lib/app.h), keeps
 * every process's life cycle (allocated -> starting -> active -> swapped
 * ... -> deleted), starts and stops their OS processes (spawn.c, watched by
 * pidfd), keeps the router's spry_procs map equal to the set of active
 * processes, answers `spry process` (PROC control messages), wakes the
 * process a held request names, swaps idle ones, and counts every
 * transition for /metrics.
 */
#ifndef SPRYD_PROCESS_H
#define SPRYD_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spryd;

int process_init(struct spryd *d);
/* Loop timer hook: declarations, held requests, start/stop timeouts, idle swaps. */
void process_timer(struct spryd *d, uint64_t now, uint64_t *next);
/*
 * Why process @id of the app on @chain answers -ENOTRECOVERABLE (state
 * LOST): "process ID of app APP: its swap file is missing: ..." in @buf
 * (a front's error body).  0, or -ENOENT (not a lost process).
 */
int process_lost_text(struct spryd *d, uint16_t chain, uint64_t id, char *buf, size_t len);
/* Is @pid the OS process of one of its processes (a deleted one still
 * exiting too), or an app's template or its spare? */
bool process_pid_known(struct spryd *d, pid_t pid);
/* Stop (SIGTERM, then SIGKILL) every OS process it started; free all. */
void process_fini(struct spryd *d);

#endif /* SPRYD_PROCESS_H */
