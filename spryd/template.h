/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's template room (template.c): a pre-started process per function
 * that clones ready instances (docs/ELASTIC.md, "Cold start").
 *
 * tmpl__start() fork+execs the function once with SPRY_TEMPLATE_FD in its
 * environment (fn-runtime/proto.h); libspry then asks spryd for the chain's
 * pool (TEMPLATE) and reports on the pair.  It does not wait: spryd's own
 * loop must answer the template's TEMPLATE.  Put tmpl__fd() in the loop:
 * readable means tmpl__poll() has news (READY, a refusal, the template's
 * death).  tmpl__fork() asks for one instance and returns its pid: a child
 * of the caller (CLONE_PARENT), to reap like any other; it registers on
 * its own, as an exec'd instance does.  A child the caller does not know
 * may be the template's spare (tmpl__spare()).
 */
#ifndef SPRYD_TEMPLATE_H
#define SPRYD_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spawn_fn;
struct tmpl;

/*
 * What the template room asks of its owner (spawn.c) about the pid a
 * template names as its clone (FORKED) or spare (SPARE): on the template's
 * word alone, a hostile one could name another of the owner's children
 * (CLONE_PARENT makes every clone one), which stopping its "clone" would
 * then signal.  Either may be NULL.
 */
struct tmpl_hooks {
	/* is @pid a process the owner knows already (an instance, a cloud
	 * process, a template, a spare)? */
	bool	(*known)(void *arg, pid_t pid);
	/* @pid refused as the template's clone (@spare: as its spare), @why */
	void	(*refused)(void *arg, pid_t pid, bool spare, const char *why);
	void	*arg;
};

/* Start the template of @f (@hooks copied; NULL: none); NULL + errno (the
 * fork, the pair). */
struct tmpl *tmpl__start(const struct spawn_fn *f, const struct tmpl_hooks *hooks);
/*
 * After tmpl__fd() was readable: 0 (nothing more, or READY: tmpl__ready()
 * turns true), or -errno: the template refused (its READY status: -EIDRM
 * no such chain/function, -ENOENT/-EACCES/... its exec failed, -ENOSYS no
 * safe clone) or -EPIPE: it exited or crashed.  Once negative, it stays.
 */
int tmpl__poll(struct tmpl *t);
bool tmpl__ready(const struct tmpl *t);
/*
 * One instance: its pid (the caller's child), or -errno: -EAGAIN not ready
 * yet, -EPIPE the template is gone, -ETIMEDOUT it did not answer in 1 s,
 * -EPERM it named a pid that is not its clone (tmpl__check_clone() since
 * the FORK was sent, or a process the owner knows: hooks.refused told
 * why), the template's clone error.  *@clone_ns (may be NULL): CLOCK_MONOTONIC
 * when the template's clone returned.
 */
pid_t tmpl__fork_ts(struct tmpl *t, uint64_t *clone_ns);
pid_t tmpl__fork(struct tmpl *t);
/*
 * tmpl__fork_ts() of a cloud process: @body (@len bytes) is a struct
 * spry_tmpl_proc and its strings (fn-runtime/tmpl_proc.h), which the clone
 * sets before it registers.  Only to a template tmpl__can(SPRY_TMPL_CAN_PROC);
 * one that refuses the body answers -EINVAL.
 */
pid_t tmpl__fork_body(struct tmpl *t, const void *body, uint32_t len, uint64_t *clone_ns);
/* Ready, and its READY said it can do every SPRY_TMPL_CAN_* of @caps. */
bool tmpl__can(const struct tmpl *t, uint32_t caps);
int tmpl__fd(const struct tmpl *t);
pid_t tmpl__pid(const struct tmpl *t);
/*
 * The template keeps one clone ahead (a spare, waiting, unregistered: the
 * next tmpl__fork() wakes it).  Its pid (0: none known): the caller's
 * child too; it leaves when the template does.  A SPARE is recorded only
 * once tmpl__check_clone() proved it from the template's own start and it
 * is no process the owner knows (else refused, told to hooks.refused).
 */
pid_t tmpl__spare(const struct tmpl *t);
/*
 * Could @pid be a clone of the template @tmpl (both the caller's
 * children), made no earlier than @since (clock ticks since boot, as
 * /proc/PID/stat's start time; 0: any)?  It is the caller's child, not the
 * template itself, started at or after @since, and runs as the template's
 * real and effective uid and gid (so the template could signal it itself:
 * naming it gains nothing).  Read race-free: a pidfd opened first, found
 * alive after /proc was read.  0, or -ESRCH (gone), -EPERM, -ESTALE
 * (started before @since), -errno; @why (@len bytes) says which.
 */
int tmpl__check_clone(pid_t tmpl, pid_t pid, uint64_t since, char *why, size_t len);
/* CLOCK_BOOTTIME in clock ticks, as a start time is counted (0: unknown). */
uint64_t tmpl__boot_ticks(void);
/* /proc/PID/stat's parent (field 4) and start time (22): 0 or -EPROTO. */
int tmpl__stat_parse(const char *buf, pid_t *ppid, uint64_t *start);
/* /proc/@pid/stat read and parsed: 0, -ESRCH (gone) or -errno. */
int tmpl__proc_stat(pid_t pid, pid_t *ppid, uint64_t *start);
/* /proc/PID/status's real and effective uid, then gid (@ids[0..3]). */
int tmpl__status_ids(const char *buf, uint32_t ids[4]);
/* Close the pair (the template leaves), reap it and its spare (SIGKILL
 * after 200 ms each), free. */
void tmpl__stop(struct tmpl *t);

#endif /* SPRYD_TEMPLATE_H */
