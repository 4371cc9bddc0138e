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

/*
 * A copy of @f; NULL + errno (EINVAL: no argv[0]).  With f->use_template
 * the function's template is started now; its pair is watched in @d's
 * loop (READY, spares, its death: instances by fork + exec meanwhile, the
 * template started again by spawner__timer() after a backoff).
 */
struct spawner *spawner__new(struct spryd *d, const struct spawn_fn *f);
/*
 * Start an instance: its pid (a child of spryd, own process group, the
 * user's groups, @cpus, stdin /dev/null, stdout/stderr spryd's, no other
 * fd), or -errno: an exec failure (missing executable, permission) is
 * reported here, synchronously.
 */
pid_t spawner__start(struct spawner *s);
/* Did the last spawner__start() clone it from the template? */
bool spawner__cloned(const struct spawner *s);
/* A dead template started again when its backoff is over; lowers *@next to then. */
void spawner__timer(struct spawner *s, uint64_t now, uint64_t *next);
/* The template's and its spare's pids (0: none): processes, not instances. */
pid_t spawner__template_pid(const struct spawner *s);
pid_t spawner__spare_pid(const struct spawner *s);
/* True once after either pid changed (the supervisor's status). */
bool spawner__take_changed(struct spawner *s);
/*
 * spawner__start() by fork + exec with @env ("KEY=VALUE", NULL-terminated)
 * added to spryd's environment: a cloud process (spryd/process.c).
 */
pid_t spawner__start_env(struct spawner *s, char *const *env);
/*
 * A cloud process: cloned by the template with @body (@len bytes, a
 * struct spry_tmpl_proc and its strings: fn-runtime/tmpl_proc.h) when the
 * spawner has one that is ready and can (use_template), else (and when
 * that fails) spawner__start_env(@env).  spawner__cloned() says which.
 */
pid_t spawner__start_proc(struct spawner *s, const void *body, uint32_t len,
			  char *const *env);
/*
 * A process an earlier spryd started, to watch again instead of starting
 * a duplicate (the supervisor's instances, the process room's cloud
 * processes): a pidfd of @pid if it is alive, runs @exe (/proc/PID/exe)
 * and, when @env is not NULL, its environment holds every "KEY=VALUE" of
 * @env (NULL-terminated).  The pidfd is opened first and the process
 * found alive after the checks, so a pid reused meanwhile cannot pass.
 * -ESRCH (gone), -ENOEXEC (another executable), -ESTALE (another
 * environment), or -errno.
 */
int spawn__adopt(pid_t pid, const char *exe, char *const *env);
/*
 * spawn__adopt() of a cloud process: with @start_time (not 0) the proof is
 * its start time (spawn__start_time(), kept in the process table when
 * spryd started it) instead of @env (a clone's environment is its
 * template's); -ESTALE when it differs.
 */
int spawn__adopt_proc(pid_t pid, const char *exe, char *const *env, uint64_t start_time);
/* @pid's start time (/proc/PID/stat field 22, clock ticks since boot): 0,
 * -ESRCH or -errno. */
int spawn__start_time(pid_t pid, uint64_t *ticks);
/* Never kills instances. */
void spawner__free(struct spawner *s);

#endif /* SPRYD_SPAWN_H */
