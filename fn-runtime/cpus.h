/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPU lists ("1", "0-3,6"), as taskset -c and cpuset.cpus write them, to
 * and from a chain's placement mask (struct spry_chain.cpus: CPUs
 * 0..SPRY_MAX_CPUS-1).  In libspry (the runtime applies the mask) and
 * used by the loader and spryd, which link it too.
 */
#ifndef SPRY_FN_CPUS_H
#define SPRY_FN_CPUS_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>

#include "spry/abi.h"

/* 0 or -EINVAL with a one-line reason in @err; the empty list is refused. */
int spry_cpus__parse(const char *s, __u64 mask[SPRY_CPU_WORDS], char *err,
		     size_t errlen);
/* The shortest list ("" for no CPU); -ENOSPC if @len is too small. */
int spry_cpus__format(const __u64 mask[SPRY_CPU_WORDS], char *buf, size_t len);
bool spry_cpus__empty(const __u64 mask[SPRY_CPU_WORDS]);
/* The mask as a cpu_set_t, for sched_setaffinity(). */
void spry_cpus__to_set(const __u64 mask[SPRY_CPU_WORDS], cpu_set_t *set);

#endif
