/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's spawn room (spawn.c): starting a declared function's instance.
 * struct spawn_fn describes what to start; the template path
 * (spryd/template.h) takes the same description.
 */
#ifndef SPRYD_SPAWN_H
#define SPRYD_SPAWN_H

#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

struct spawn_fn {
	const char		*chain, *fn;
	char *const		*argv;		/* argv[0]: the executable */
	uid_t			uid;
	gid_t			gid;
	const cpu_set_t		*cpus;		/* NULL: any */
	bool			use_template;
};

#endif /* SPRYD_SPAWN_H */
