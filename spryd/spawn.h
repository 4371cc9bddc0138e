/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's spawn room (spawn.c): starting one instance of a declared
 * function.  The supervisor (supervisor.c) decides when; this says how:
 * fork + exec by default, or a fork of the function's pre-forked template
 * (use_template; the template's tmpl__fork() makes it spryd's child too,
 * CLONE_PARENT), so the supervisor reaps both alike.
 */
#ifndef SPRYD_SPAWN_H
#define SPRYD_SPAWN_H

#include <sys/types.h>

#include "spryd/spryd.h"

/* struct spawn_fn: spryd/spryd.h (the template room takes it too) */

struct spawner;

/* A copy of @f; NULL + errno (EINVAL: no argv[0]). */
struct spawner *spawner__new(const struct spawn_fn *f);
/*
 * Start an instance: its pid (a child of spryd, own process group, the
 * user's groups, @cpus, stdin /dev/null, stdout/stderr spryd's, no other
 * fd), or -errno: an exec failure (missing executable, permission) is
 * reported here, synchronously.
 */
pid_t spawner__start(struct spawner *s);
/*
 * spawner__start() by fork + exec with @env ("KEY=VALUE", NULL-terminated)
 * added to spryd's environment: a cloud process (spryd/process.c).
 */
pid_t spawner__start_env(struct spawner *s, char *const *env);
/* Never kills instances. */
void spawner__free(struct spawner *s);

#endif /* SPRYD_SPAWN_H */
