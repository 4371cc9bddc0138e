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
#include <stdint.h>
#include <sys/types.h>

struct spawn_fn;
struct tmpl;

/* Start the template of @f; NULL + errno (the fork, the pair). */
struct tmpl *tmpl__start(const struct spawn_fn *f);
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
 * the template's clone error.  *@clone_ns (may be NULL): CLOCK_MONOTONIC
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
 * child too; it leaves when the template does.
 */
pid_t tmpl__spare(const struct tmpl *t);
/* Close the pair (the template leaves), reap it and its spare (SIGKILL
 * after 200 ms each), free. */
void tmpl__stop(struct tmpl *t);

#endif /* SPRYD_TEMPLATE_H */
