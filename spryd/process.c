// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's process room (process.h): apps and their cloud processes.
 *
 * A process is a record here (id, state, counters) and, while it runs, an
 * OS process started with fork + exec (spawn.c) with SPRY_STATE_PATH,
 * SPRY_PROCESS_ID, SPRY_STATE_APP, SPRY_STATE_SWAP_DIR and SPRY_STATE_SIZE in its
 * environment, watched by a pidfd.  It registers as an instance of the
 * app's function (SPRY_APP_FN); the registrar asks reg_check() whether its
 * pid is one of ours (only processes spryd started serve an app), then
 * reg_done() makes it ACTIVE: spry_procs[{chain, id}] = {ACTIVE, inst}, and
 * the requests held for it go.  spry_procs holds exactly the active
 * processes, so the router sends a request naming any other back to the
 * origin (SPRY_ST_NO_PROCESS), where the request core holds it
 * (entry_proc_*) and process_timer() wakes the process, or answers 404
 * when there is none.  Nothing here runs per request that reaches an
 * active process.
 *
 * Swap: the OS process is stopped (SIGTERM, SIGKILL after the stop
 * timeout); once it exited, swap_out() is the one call that puts its state
 * in the app's swap directory; the process is SWAPPED.  Delete: out of the
 * table at once (its id is free, held requests 404), the OS process
 * stopped, state_release() drops its state.
 *
 * At most SPRY_MAX_INST OS processes per app run at once (the instance
 * slots of one function): a wake beyond that swaps the least recently used
 * idle active process first and waits for its slot.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "lib/app.h"
#include "lib/core.h"
#include "lib/jsonfile.h"
#include "lib/proc_ctl.h"
#include "lib/proc_table.h"
#include "fn-runtime/tmpl_proc.h"
#include "shm/state_internal.h"
#include "spry/state.h"
#include "spryd/ctl.h"
#include "spryd/dirwatch.h"
#include "spryd/entry.h"
#include "spryd/loop.h"
#include "spryd/process.h"
#include "spryd/spawn.h"
#include "spryd/spryd.h"

#define PROC_BUCKETS		65536		/* power of two */
#define PROC_SCAN_NS		(500ULL * SPRYD_NS_PER_MS)
#define PROC_TICK_NS		(100ULL * SPRYD_NS_PER_MS)
#define PROC_MAX_LIVE		SPRY_MAX_INST	/* OS processes per app */
#define PROC_STATE_ENV		"SPRY_PROC_STATE_DIR"
#define PROC_SAVE_LAZY_NS	(1000ULL * SPRYD_NS_PER_MS)	/* table: changes no one waits for */

struct app;

struct proc {
	struct spryd_ep	ep;		/* pidfd; fd -1: no OS process */
	struct proc	*hnext;		/* hash bucket / deleted list */
	struct app	*app;
	uint64_t	id;
	uint8_t		state;		/* enum spry_proc_state */
	uint8_t		after;		/* state once the OS process is gone;
					 * LOST: the state it was lost from */
	uint8_t		swap_file;	/* SPRY_SF_YES: a swap out wrote its swap
					 * file: started without a size */
	uint8_t		lost;		/* enum spry_proc_lost (state LOST) */
	bool		stopping;	/* signalled: swap or delete */
	bool		deleted;	/* out of the table, OS process exiting */
	bool		has_inst;	/* registered: inst is its slot */
	uint16_t	inst;
	bool		cloned;		/* its OS process: the template's clone */
	pid_t		pid;
	uint64_t	pid_start;	/* pid's start time (0: unknown): adoption's proof */
	uint64_t	t_state;	/* last transition (or request) */
	uint64_t	t_start;	/* spawn */
	uint64_t	t_stop;		/* SIGTERM */
	uint64_t	activations;
	uint64_t	swaps;
};

struct app {
	bool			used, seen;
	bool			gone;		/* removed: only its exiting OS
						 * processes keep the slot */
	struct spry_app_decl	decl;
	uint16_t		chain_id, fn_id;
	struct spawner		*sp;
	struct spryd_app_pub	*pub;
	uint32_t		n_procs;
	uint64_t		next_id;
	uint32_t		n_live;
	struct proc		*live[PROC_MAX_LIVE * 2];	/* with an OS process */
	char			state_dir[PATH_MAX];	/* <state>/<app> */
	int			jfd;		/* its table's journal (-1: none) */
	uint32_t		jlines;		/* lines in it */
	bool			compact;	/* write the table whole (empties it) */
	uint64_t		save_at;	/* synced or written then (0: clean) */
	bool			table_off;	/* its table could not be read (not
						 * damaged): left alone this run */
};

struct spryd_procs {
	char			dir[PATH_MAX];		/* the apps' declarations */
	char			state_dir[PATH_MAX];	/* processes' state */
	struct app		apps[SPRYD_MAX_APPS];
	struct proc		**buckets;
	struct proc		*deleted;	/* OS processes of deleted ones */
	uint64_t		next_scan, next_tick;
	struct timespec		dir_mtime;
	struct spryd_dirwatch	watch;		/* inotify on dir: apps changed */
	char			table_dir[PATH_MAX];	/* the apps' process tables */
	char			boot[SPRY_BOOT_ID_LEN];	/* this boot's id */
};

static void pidfd_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
static const struct spryd_ep_ops pidfd_ops = { .name = "process-pidfd", .event = pidfd_event };
static void table_note(struct proc *p, uint64_t now);
static void table_note_del(struct app *a, uint64_t id, uint64_t now);

/* ------------------------------------------------------------ table */

static uint32_t bucket_of(const struct app *a, uint64_t id)
{
	uint64_t k = id * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)a;

	k ^= k >> 29;
	return (uint32_t)k & (PROC_BUCKETS - 1);
}

static struct proc *proc_find(struct spryd_procs *ps, struct app *a, uint64_t id)
{
	struct proc *p;

	for (p = ps->buckets[bucket_of(a, id)]; p; p = p->hnext)
		if (p->app == a && p->id == id)
			return p;
	return NULL;
}

static void set_state(struct proc *p, uint8_t s, uint64_t now)
{
	struct spry_ctl_proc_app *st = &p->app->pub->st;

	if (st->n[p->state])
		st->n[p->state]--;
	p->state = s;
	if (s != SPRY_PS_DELETED)
		st->n[s]++;
	p->t_state = now;
}

static void live_add(struct app *a, struct proc *p)
{
	a->live[a->n_live++] = p;
}

static void live_del(struct app *a, struct proc *p)
{
	uint32_t i;

	for (i = 0; i < a->n_live; i++) {
		if (a->live[i] == p) {
			a->live[i] = a->live[--a->n_live];
			return;
		}
	}
}

static struct proc *live_by_pid(struct app *a, uint32_t pid)
{
	uint32_t i;

	for (i = 0; i < a->n_live; i++)
		if ((uint32_t)a->live[i]->pid == pid)
			return a->live[i];
	return NULL;
}

static struct app *app_by_chain(struct spryd_procs *ps, uint16_t chain)
{
	unsigned int i;

	for (i = 0; i < SPRYD_MAX_APPS; i++)
		if (ps->apps[i].used && !ps->apps[i].gone && ps->apps[i].chain_id == chain)
			return &ps->apps[i];
	return NULL;
}

static struct app *app_by_name(struct spryd_procs *ps, const char *name)
{
	unsigned int i;

	for (i = 0; i < SPRYD_MAX_APPS; i++)
		if (ps->apps[i].used && !ps->apps[i].gone && !strcmp(ps->apps[i].decl.name, name))
			return &ps->apps[i];
	return NULL;
}

/* Another loaded app whose swap directory is @dc's (spry_app__swap_dir_user()). */
static struct app *swap_dir_user(struct spryd_procs *ps, const struct spry_app_decl *dc)
{
	unsigned int i;
	struct app *o;

	if (!dc->swap_dir[0])
		return NULL;
	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		o = &ps->apps[i];
		if (o->used && !o->gone && o->decl.swap_dir[0] &&
		    strcmp(o->decl.name, dc->name) &&
		    spry_app__same_dir(o->decl.swap_dir, dc->swap_dir))
			return o;
	}
	return NULL;
}

/* spry_procs: exactly the active processes. */
static void map_set(struct spryd *d, struct proc *p, bool active)
{
	struct spry_proc_key key = { .chain = p->app->chain_id, .id = p->id };
	struct spry_proc val = { .flags = SPRY_PF_ACTIVE, .inst = p->inst };
	uint64_t *slot = &d->chains[p->app->chain_id].app_proc[p->inst % SPRY_MAX_INST];

	if (!active && *slot == p->id)
		*slot = 0;

	if (active) {
		if (bpf_map_update_elem(d->maps.procs, &key, &val, BPF_ANY))
			spryd_log("app %s: process %" PRIu64 ": spry_procs update: %s",
				  p->app->decl.name, p->id, strerror(errno));
	} else if (bpf_map_delete_elem(d->maps.procs, &key) && errno != ENOENT) {
		spryd_log("app %s: process %" PRIu64 ": spry_procs delete: %s",
			  p->app->decl.name, p->id, strerror(errno));
	}
}

static void proc_signal(struct proc *p, int sig)
{
	if (p->ep.fd >= 0)
		syscall(SYS_pidfd_send_signal, p->ep.fd, sig, NULL, 0);
}

/* ------------------------------------------------- state integration */

static uid_t app_uid(const struct app *a)
{
	return a->decl.has_uid ? a->decl.uid : 0;
}

/*
 * The process's state after its OS process stopped for a swap: the store
 * at <state dir>/<id> written to the app's swap directory (shm/swap.c:
 * atomic, fsync'd, then the store's memory freed) and left to the process
 * (its user's) to wake lazily.  No swap directory: the state stays where
 * it is.  The one call site of a swap-out: 0 or -errno (the process then
 * stays allocated, its state in place: nothing acknowledged is lost).
 */
static int swap_out(struct spryd *d, struct app *a, struct proc *p)
{
	char path[PATH_MAX + 32], file[PATH_MAX + SPRY_APP_SWAP_LEN];
	struct spry_state *st;
	int err;

	(void)d;
	if (!a->decl.swap_dir[0])
		return 0;
	if (snprintf(path, sizeof(path), "%s/%" PRIu64, a->state_dir, p->id) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	st = spry_state_open(path, NULL);
	if (!st) {
		/* never used its state, or already swapped: nothing to write */
		if (errno == ENOENT)
			return 0;
		err = -errno;
		spryd_log("app %s: process %" PRIu64 ": swap: opening %s: %s", a->decl.name,
			  p->id, path, spry_state_error());
		return err;
	}
	err = spry_state_swap_out(st, a->decl.swap_dir, a->decl.name);
	if (err) {
		spryd_log("app %s: process %" PRIu64 ": swap to %s: %s", a->decl.name, p->id,
			  a->decl.swap_dir, spry_state_error());
		spry_state_close(st);
		return err;
	}
	/* from now on its state is in this file or a store woken from it:
	 * never created empty again (proc_start(), swap_check()) */
	p->swap_file = SPRY_SF_YES;
	/* the process wakes it as the app's user (the file stays after) */
	snprintf(file, sizeof(file), "%s/%" PRIu64 ".swap", a->decl.swap_dir, p->id);
	if (chown(file, app_uid(a), (gid_t)-1))
		spryd_log("app %s: chown %s: %s", a->decl.name, file, strerror(errno));
	return 0;
}

static const char *const lost_why[SPRY_PL_MAX] = {
	[SPRY_PL_NONE]		= "not lost",
	[SPRY_PL_MISSING]	= "its swap file is missing",
	[SPRY_PL_DAMAGED]	= "its swap file is damaged",
	[SPRY_PL_OTHER_APP]	= "its swap file is another app's",
	[SPRY_PL_UNREADABLE]	= "its swap file cannot be read",
};

/*
 * Before starting a process that has a swap file: its store is there, or
 * its swap file is, sound and the app's (shm/swap.c reads its header and
 * checksum table).  Otherwise its state is lost: the process is LOST (not
 * started, its requests answered -ENOTRECOVERABLE) until the file is put
 * back (checked again at each request or wake) or it is deleted.  0,
 * -ENOTRECOVERABLE, or -EAGAIN (out of memory or fds: not a verdict).
 */
static int swap_check(struct app *a, struct proc *p, uint64_t now)
{
	char path[PATH_MAX + 32];
	uint8_t why;
	int err;

	if (snprintf(path, sizeof(path), "%s/%" PRIu64, a->state_dir, p->id) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	err = state_swap_check(path, a->decl.swap_dir[0] ? a->decl.swap_dir : NULL,
			       a->decl.name);
	if (!err) {
		if (p->state == SPRY_PS_LOST) {
			spryd_log("app %s: process %" PRIu64 ": its swap file is back: started",
				  a->decl.name, p->id);
			p->lost = SPRY_PL_NONE;
			set_state(p, p->after, now);
		}
		return 0;
	}
	switch (err) {
	case -ENOMEM:
	case -EMFILE:
	case -ENFILE:
		spryd_log("app %s: process %" PRIu64 ": checking its swap file: %s",
			  a->decl.name, p->id, spry_state_error());
		return -EAGAIN;
	case -ENOENT:
		why = SPRY_PL_MISSING;
		break;
	case -EBADMSG:
		why = SPRY_PL_DAMAGED;
		break;
	case -EACCES:
		why = SPRY_PL_OTHER_APP;
		break;
	default:
		why = SPRY_PL_UNREADABLE;
		break;
	}
	if (p->state != SPRY_PS_LOST || p->lost != why)
		spryd_log("app %s: process %" PRIu64 ": %s (%s): its state is lost, the process "
			  "is not started (put its swap file back, or `spry process del %s id %"
			  PRIu64 "`)", a->decl.name, p->id, lost_why[why], spry_state_error(),
			  a->decl.name, p->id);
	if (p->state != SPRY_PS_LOST) {
		p->after = p->state;
		set_state(p, SPRY_PS_LOST, now);
		a->pub->st.lost++;
	}
	p->lost = why;
	return -ENOTRECOVERABLE;
}

/* A deleted process's state goes: its store and its swap file. */
static void state_release(struct app *a, struct proc *p)
{
	char path[PATH_MAX + 32];
	int err;

	if (snprintf(path, sizeof(path), "%s/%" PRIu64, a->state_dir, p->id) >=
	    (int)sizeof(path))
		return;
	err = spry_state_unlink(path, a->decl.swap_dir[0] ? a->decl.swap_dir : NULL);
	if (err && err != -ENOENT)
		spryd_log("app %s: process %" PRIu64 ": removing its state: %s",
			  a->decl.name, p->id, strerror(-err));
}

/* ------------------------------------------------------- life cycle */

/*
 * SPRY_APP_FNS=F1,F2,...: the app's functions in declared order, so that
 * the process's spry_req_next() names handler i + 1 as the router's
 * SPRY_AK_APP_NEXT authorizations do (docs/WORKFLOWS.md).
 */
static void app_fns_env(const struct spry_app_decl *a, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "%s=", SPRY_APP_FNS_ENV);
	__u32 i;

	for (i = 0; i < a->n_fns && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", a->fns[i]);
}

static int proc_start(struct spryd *d, struct proc *p, uint64_t now);

/* A new record for id @id in @a's table: ALLOCATED, no OS process. */
static struct proc *proc_link(struct spryd_procs *ps, struct app *a, uint64_t id, uint64_t now)
{
	struct proc *p = calloc(1, sizeof(*p));
	uint32_t b;

	if (!p)
		return NULL;
	p->ep.fd = -1;
	p->app = a;
	p->id = id;
	p->state = SPRY_PS_DELETED;
	set_state(p, SPRY_PS_ALLOCATED, now);
	b = bucket_of(a, id);
	p->hnext = ps->buckets[b];
	ps->buckets[b] = p;
	a->n_procs++;
	return p;
}

static struct proc *proc_new(struct spryd_procs *ps, struct app *a, uint64_t id,
			     uint64_t now, int *err)
{
	struct proc *p;

	if (a->n_procs >= a->decl.max_procs) {
		*err = -ENOSPC;
		return NULL;
	}
	if (!id) {
		do {
			id = ++a->next_id;
			if (id > SPRY_PROC_ID_MAX)
				id = a->next_id = 1;
		} while (proc_find(ps, a, id));
	} else if (id > SPRY_PROC_ID_MAX) {
		*err = -EINVAL;
		return NULL;
	} else if (proc_find(ps, a, id)) {
		*err = -EEXIST;
		return NULL;
	}
	p = proc_link(ps, a, id, now);
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	a->pub->st.created++;
	table_note(p, now);
	return p;
}

static void proc_unlink(struct spryd_procs *ps, struct proc *p)
{
	struct proc **pp = &ps->buckets[bucket_of(p->app, p->id)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	}
	p->hnext = NULL;
	p->app->n_procs--;
}

/* Swap the least recently used idle active process to free a slot. */
static void make_room(struct spryd *d, struct app *a, uint64_t now)
{
	struct proc *best = NULL;
	uint64_t t, best_t = UINT64_MAX;
	uint32_t i;

	for (i = 0; i < a->n_live; i++) {
		struct proc *p = a->live[i];
		const struct spryd_inst *in;

		if (p->stopping)
			return;		/* one is on its way out already */
		if (p->state != SPRY_PS_ACTIVE || !p->has_inst)
			continue;
		if (d->inst_mem &&
		    d->inst_mem[(uint32_t)a->fn_id * SPRY_MAX_INST + p->inst].inflight > 0)
			continue;
		in = &d->insts[(uint32_t)a->fn_id * SPRY_MAX_INST + p->inst];
		t = in->last_ns > p->t_state ? in->last_ns : p->t_state;
		if (t < best_t) {
			best_t = t;
			best = p;
		}
	}
	if (!best)
		return;
	spryd_vlog(d, "app %s: %u processes running: swapping process %" PRIu64
		   " (least recently used)", a->decl.name, a->n_live, best->id);
	best->stopping = true;
	best->after = SPRY_PS_SWAPPED;
	best->t_stop = now;
	proc_signal(best, SIGTERM);
}

static int proc_start(struct spryd *d, struct proc *p, uint64_t now)
{
	struct app *a = p->app;
	char e_state[PATH_MAX + 64], e_id[64], e_app[64], e_swap[SPRY_APP_SWAP_LEN + 32];
	char e_size[64], e_fns[sizeof(SPRY_APP_FNS_ENV) + SPRY_APP_MAX_FNS * SPRY_NAME_LEN];
	char *env[] = { e_state, e_id, e_app, e_swap, e_size, e_fns, NULL };
	char body[SPRY_TMPL_PROC_BODY_MAX];
	bool woken;
	pid_t pid;
	int fd, err, blen;

	if (p->state != SPRY_PS_ALLOCATED && p->state != SPRY_PS_SWAPPED &&
	    p->state != SPRY_PS_LOST)
		return 0;
	if (!a->sp)
		return -ENOEXEC;
	if (a->n_live >= PROC_MAX_LIVE) {
		make_room(d, a, now);
		return -EAGAIN;
	}
	if (p->swap_file == SPRY_SF_YES) {
		err = swap_check(a, p, now);
		if (err)
			return err;
	}
	woken = p->state == SPRY_PS_SWAPPED;
	snprintf(e_state, sizeof(e_state), "%s=%s/%" PRIu64, SPRY_STATE_PATH_ENV,
		 a->state_dir, p->id);
	snprintf(e_id, sizeof(e_id), "%s=%" PRIu64, SPRY_PROCESS_ID_ENV, p->id);
	snprintf(e_app, sizeof(e_app), "%s=%s", SPRY_STATE_APP_ENV, a->decl.name);
	snprintf(e_swap, sizeof(e_swap), "%s=%s", SPRY_STATE_SWAP_DIR_ENV, a->decl.swap_dir);
	/* one that has a swap file never gets an empty store: size 0, open only */
	snprintf(e_size, sizeof(e_size), "%s=%llu", SPRY_STATE_SIZE_ENV,
		 p->swap_file == SPRY_SF_YES ? 0ULL : (unsigned long long)a->decl.state_size);
	app_fns_env(&a->decl, e_fns, sizeof(e_fns));
	/*
	 * The same, as the body of the template's FORK (docs/PROCESS.md,
	 * "Started from the template"): the clone sets it before it registers.
	 * Each string is the part of its "KEY=VALUE" after the '='.
	 */
	blen = spry_tmpl_proc__encode(body, sizeof(body), a->decl.name, p->id,
				      p->swap_file == SPRY_SF_YES ? 0 : a->decl.state_size,
				      strchr(e_state, '=') + 1, a->decl.swap_dir,
				      strchr(e_fns, '=') + 1);
	if (blen > 0 && !a->decl.start_exec)
		pid = spawner__start_proc(a->sp, body, (uint32_t)blen, env);
	else
		pid = spawner__start_env(a->sp, env);
	if (pid < 0) {
		a->pub->st.failed++;
		spryd_log("app %s: process %" PRIu64 ": start: %s", a->decl.name, p->id,
			  strerror(-pid));
		return pid;
	}
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0 || (p->ep.ops = &pidfd_ops, p->ep.fd = fd, spryd_ep_add(d, &p->ep, EPOLLIN))) {
		int err = fd < 0 ? -errno : -EIO;

		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (fd >= 0)
			close(fd);
		p->ep.fd = -1;
		a->pub->st.failed++;
		return err;
	}
	p->pid = pid;
	p->cloned = spawner__cloned(a->sp);
	/* spryd's child, not reaped before its pidfd says so: /proc has it */
	err = spawn__start_time(pid, &p->pid_start);
	if (err) {
		p->pid_start = 0;
		spryd_log("app %s: process %" PRIu64 ": pid %d: its start time: %s (a spryd restarted meanwhile will not adopt it)",
			  a->decl.name, p->id, pid, strerror(-err));
	}
	p->t_start = now;
	p->stopping = false;
	p->after = woken ? SPRY_PS_SWAPPED : SPRY_PS_ALLOCATED;
	live_add(a, p);
	set_state(p, SPRY_PS_STARTING, now);
	a->pub->st.started++;
	if (p->cloned)
		a->pub->cloned++;
	if (woken)
		a->pub->st.woken++;
	table_note(p, now);	/* its pid: adopted by a spryd started after this one */
	spryd_vlog(d, "app %s: process %" PRIu64 " %s: pid %d (%s)", a->decl.name, p->id,
		   woken ? "woken" : "started", pid, p->cloned ? "template" : "exec");
	return 0;
}

/* Stop @p's OS process; @after: SWAPPED (a swap) or DELETED. */
static void proc_stop(struct proc *p, uint8_t after, uint64_t now)
{
	p->after = after;
	if (p->stopping)
		return;
	p->stopping = true;
	p->t_stop = now;
	proc_signal(p, SIGTERM);
	if (!p->deleted)
		table_note(p, now);
}

static int proc_swap(struct spryd *d, struct proc *p, uint64_t now)
{
	int err;

	switch (p->state) {
	case SPRY_PS_SWAPPED:
		return 0;
	case SPRY_PS_LOST:
		return -ENOTRECOVERABLE;	/* nothing to swap: its state is lost */
	case SPRY_PS_ALLOCATED:
		/* nothing runs: its state (if any) goes to swap as it is */
		err = swap_out(d, p->app, p);
		if (err)
			return err;
		set_state(p, SPRY_PS_SWAPPED, now);
		p->swaps++;
		p->app->pub->st.swapped++;
		table_note(p, now);
		return 0;
	default:
		proc_stop(p, SPRY_PS_SWAPPED, now);
		return 0;
	}
}

static void proc_del(struct spryd *d, struct proc *p, uint64_t now)
{
	struct spryd_procs *ps = d->procs;
	struct app *a = p->app;
	uint32_t n;

	proc_unlink(ps, p);
	if (p->has_inst)
		map_set(d, p, false);
	set_state(p, SPRY_PS_DELETED, now);
	a->pub->st.deleted++;
	table_note_del(a, p->id, now);
	n = entry_proc_fail(d, a->chain_id, p->id, -ENOENT);
	if (n)
		spryd_vlog(d, "app %s: process %" PRIu64 " deleted: %u held requests 404",
			   a->decl.name, p->id, n);
	state_release(a, p);
	if (p->ep.fd >= 0) {
		p->deleted = true;
		proc_stop(p, SPRY_PS_DELETED, now);
		p->hnext = ps->deleted;
		ps->deleted = p;
		return;
	}
	free(p);
}

/* ------------------------------------------------- registrar hooks */

static int hook_reg_check(struct spryd *d, uint16_t chain, uint32_t pid)
{
	struct app *a = app_by_chain(d->procs, chain);
	struct proc *p = a ? live_by_pid(a, pid) : NULL;

	if (!p || p->deleted || p->state != SPRY_PS_STARTING)
		return -EIDRM;
	return 0;
}

/* Only the template spryd started for the app gets its pool (TEMPLATE). */
static int hook_tmpl_check(struct spryd *d, uint16_t chain, uint32_t pid)
{
	struct app *a = app_by_chain(d->procs, chain);

	if (!a || !a->sp || !pid || (pid_t)pid != spawner__template_pid(a->sp))
		return -EIDRM;
	return 0;
}

static void hook_reg_done(struct spryd *d, struct spryd_inst *in)
{
	struct app *a = app_by_chain(d->procs, in->chain);
	struct proc *p = a ? live_by_pid(a, in->pid) : NULL;
	uint64_t now = spryd_now_ns();

	if (!p)
		return;
	p->has_inst = true;
	p->inst = in->idx;
	in->last_ns = now;
	if (p->stopping) {
		/* swapped or deleted while it started: it goes again */
		return;
	}
	set_state(p, SPRY_PS_ACTIVE, now);
	d->chains[a->chain_id].app_proc[p->inst] = p->id;
	/* who sent a mail, for the router to tell its receiver */
	if (d->inst_mem)
		__atomic_store_n(&d->inst_mem[(uint32_t)a->fn_id * SPRY_MAX_INST + p->inst].proc_id,
				 p->id, __ATOMIC_RELEASE);
	p->activations++;
	a->pub->st.activated++;
	table_note(p, now);
	map_set(d, p, true);
	spryd_vlog(d, "app %s: process %" PRIu64 " active (pid %d inst %u, %llu us)",
		   a->decl.name, p->id, p->pid, p->inst,
		   (unsigned long long)((now - p->t_start) / 1000));
	entry_proc_release(d, a->chain_id, p->id);
	entry_proc_release(d, a->chain_id, 0);
}

static void hook_removed(struct spryd *d, struct spryd_inst *in)
{
	struct app *a = app_by_chain(d->procs, in->chain);
	struct proc *p = a ? live_by_pid(a, in->pid) : NULL;

	if (!p || !p->has_inst || p->inst != in->idx)
		return;
	map_set(d, p, false);
	p->has_inst = false;
	if (!p->stopping) {
		/* it left on its own: make sure the OS process is gone too */
		p->after = SPRY_PS_ALLOCATED;
		proc_signal(p, SIGKILL);
	}
}

/* ---------------------------------------------------------- pidfd */

static void pidfd_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct spryd_procs *ps = d->procs;
	struct proc *p = (struct proc *)ep, **pp;
	struct app *a = p->app;
	uint64_t now = spryd_now_ns();
	siginfo_t si = {};
	int ret, err;

	(void)events;
	ret = waitid(P_PIDFD, (id_t)ep->fd, &si, WEXITED | WNOHANG);
	if (!ret && !si.si_pid)
		return;
	spryd_ep_close(d, &p->ep);
	live_del(a, p);
	if (p->has_inst) {
		map_set(d, p, false);
		p->has_inst = false;
	}
	if (p->deleted) {
		for (pp = &ps->deleted; *pp; pp = &(*pp)->hnext) {
			if (*pp == p) {
				*pp = p->hnext;
				break;
			}
		}
		free(p);
		return;
	}
	if (p->stopping && p->after == SPRY_PS_SWAPPED) {
		err = swap_out(d, a, p);
		if (err) {
			spryd_log("app %s: process %" PRIu64 ": swap: %s (kept allocated)",
				  a->decl.name, p->id, strerror(-err));
			set_state(p, SPRY_PS_ALLOCATED, now);
		} else {
			set_state(p, SPRY_PS_SWAPPED, now);
			p->swaps++;
			a->pub->st.swapped++;
		}
	} else if (p->stopping) {
		/* stopped by spryd's own stop (process_fini) */
		set_state(p, p->after, now);
	} else if (p->state == SPRY_PS_STARTING) {
		a->pub->st.failed++;
		spryd_log("app %s: process %" PRIu64 " (pid %d) exited before registering",
			  a->decl.name, p->id, p->pid);
		set_state(p, p->after, now);
		entry_proc_fail(d, a->chain_id, p->id, -EAGAIN);
	} else {
		a->pub->st.crashed++;
		spryd_log("app %s: process %" PRIu64 " (pid %d) exited on its own (status %d)",
			  a->decl.name, p->id, p->pid, si.si_status);
		set_state(p, SPRY_PS_ALLOCATED, now);
	}
	p->stopping = false;
	p->pid = 0;
	table_note(p, now);
}

/* ------------------------------------------ the table on disk (restarts) */

/*
 * Each app's processes are also on disk, in its table (lib/proc_table.h):
 * what a spryd started after this one (stopped, killed, or after a
 * reboot) needs to know them again.  Every change of a process (created,
 * started with its pid, active, stopping, exited, swapped, deleted) is one
 * line appended to the table's journal before anything answers it (a
 * write(2): a kill -9 of spryd right after loses nothing), fdatasync'd
 * within PROC_SAVE_LAZY_NS; the table is written whole (fsync, rename)
 * once the journal holds about twice as many lines as processes, at load
 * and at spryd's stop.  It is read when spryd first sees the app: ids,
 * states, counters, the last id picked; an OS process still running is
 * adopted (spawn__adopt(): the same pid, its executable and environment
 * checked), a pid written in another boot never is.
 */

static void table_dirty(struct app *a, uint64_t now, bool compact)
{
	uint64_t at = compact ? now : now + PROC_SAVE_LAZY_NS;

	if (compact)
		a->compact = true;
	if (!at)
		at = 1;
	if (!a->save_at || at < a->save_at)
		a->save_at = at;
}

static void rec_of(const struct proc *p, struct spry_proc_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->id = p->id;
	r->activations = p->activations;
	r->swaps = p->swaps;
	r->pid = p->ep.fd >= 0 ? p->pid : 0;
	r->pid_start = r->pid ? p->pid_start : 0;
	r->swap = r->pid && p->stopping && p->after == SPRY_PS_SWAPPED;
	/* LOST is not written: it is found again at its next start */
	r->state = p->state == SPRY_PS_SWAPPED ||
		   (p->state == SPRY_PS_LOST && p->after == SPRY_PS_SWAPPED) ?
		   SPRY_PS_SWAPPED : SPRY_PS_ALLOCATED;
	r->swap_file = p->swap_file == SPRY_SF_YES ? SPRY_SF_YES : SPRY_SF_NO;
}

static void journal_line(struct app *a, const struct spry_proc_rec *r, uint64_t del_id,
			 uint64_t now)
{
	int err;

	if (a->table_off)
		return;
	err = a->jfd >= 0 ? spry_proc_table__append(a->jfd, r, del_id, a->next_id) : -EBADF;
	if (err) {
		/* no line after a torn one: the table is written whole, with a
		 * new journal */
		if (a->jfd >= 0) {
			close(a->jfd);
			a->jfd = -1;
		}
		/* the whole table at once instead */
		if (!a->compact)
			spryd_log("app %s: process table journal: %s: writing the table whole",
				  a->decl.name, strerror(-err));
		table_dirty(a, now, true);
		return;
	}
	a->jlines++;
	table_dirty(a, now, a->jlines > 2 * a->n_procs + 1024);
}

/* @p changed: its line in the journal. */
static void table_note(struct proc *p, uint64_t now)
{
	struct spry_proc_rec r;

	rec_of(p, &r);
	journal_line(p->app, &r, 0, now);
}

static void table_note_del(struct app *a, uint64_t id, uint64_t now)
{
	journal_line(a, NULL, id, now);
}

/* The records of an app's processes, one at a time (spry_proc_table__write). */
struct rec_iter {
	struct spryd_procs	*ps;
	struct app		*a;
	uint32_t		b, left;
	struct proc		*p;
};

static int rec_next(void *ctx, struct spry_proc_rec *r)
{
	struct rec_iter *it = ctx;

	while (it->left) {
		while (!it->p && it->b < PROC_BUCKETS)
			it->p = it->ps->buckets[it->b++];
		if (!it->p)
			return 0;
		for (; it->p; it->p = it->p->hnext) {
			if (it->p->app == it->a) {
				rec_of(it->p, r);
				it->p = it->p->hnext;
				it->left--;
				return 1;
			}
		}
	}
	return 0;
}

/* @a's table written whole (streamed from the hash); its journal emptied. */
static int table_save(struct spryd *d, struct app *a)
{
	struct spryd_procs *ps = d->procs;
	struct rec_iter it = { .ps = ps, .a = a, .left = a->n_procs };
	struct spry_proc_table t = {};
	int err = 0;

	if (a->table_off)
		return 0;
	snprintf(t.app, sizeof(t.app), "%s", a->decl.name);
	snprintf(t.boot, sizeof(t.boot), "%s", ps->boot);
	t.next_id = a->next_id;
	if (a->jfd < 0) {
		a->jfd = spry_proc_table__journal_open(ps->table_dir, a->decl.name);
		if (a->jfd < 0)
			err = a->jfd;
	}
	err = err ?: spry_proc_table__write(ps->table_dir, &t, a->jfd, rec_next, &it);
	if (err) {
		spryd_log("app %s: writing its process table in %s: %s (tried again in %llu ms)",
			  a->decl.name, ps->table_dir, strerror(-err),
			  (unsigned long long)(PROC_SAVE_LAZY_NS / SPRYD_NS_PER_MS));
		a->save_at = 0;
		table_dirty(a, spryd_now_ns(), false);
		a->compact = true;
		return err;
	}
	a->jlines = 0;
	a->compact = false;
	a->save_at = 0;
	return 0;
}

/* The journals due by @now (every one: @all) synced, or their tables written whole. */
static void tables_flush(struct spryd *d, uint64_t now, bool all)
{
	struct spryd_procs *ps = d->procs;
	unsigned int i;

	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		struct app *a = &ps->apps[i];

		if (!a->used || a->gone || (!a->save_at && !(all && a->jlines)) ||
		    (!all && a->save_at > now))
			continue;
		if (a->compact || all) {
			table_save(d, a);
		} else {
			if (a->jfd >= 0 && fdatasync(a->jfd))
				spryd_log("app %s: syncing its process table journal: %s",
					  a->decl.name, strerror(errno));
			a->save_at = 0;
		}
	}
}

/* The earliest table due. */
static uint64_t tables_due(const struct spryd_procs *ps)
{
	uint64_t due = 0;
	unsigned int i;

	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		const struct app *a = &ps->apps[i];

		if (a->used && !a->gone && a->save_at && (!due || a->save_at < due))
			due = a->save_at;
	}
	return due;
}

/* Watch @p's OS process @pid, started by an earlier spryd. */
static bool proc_adopt(struct spryd *d, struct proc *p, pid_t pid, uint64_t pid_start,
		       bool swap, uint64_t now)
{
	struct app *a = p->app;
	char e_id[64], e_app[64];
	char *env[] = { e_id, e_app, NULL };
	int fd;

	snprintf(e_id, sizeof(e_id), "%s=%" PRIu64, SPRY_PROCESS_ID_ENV, p->id);
	snprintf(e_app, sizeof(e_app), "%s=%s", SPRY_STATE_APP_ENV, a->decl.name);
	/* its start time when the table has it (a clone's environment is its
	 * template's), else its environment, as an older spryd wrote it */
	fd = spawn__adopt_proc(pid, spry_app_decl__arg(&a->decl, 0), env, pid_start);
	if (fd < 0) {
		spryd_vlog(d, "app %s: process %" PRIu64 ": pid %d not adopted: %s", a->decl.name,
			   p->id, pid, strerror(-fd));
		return false;
	}
	if (a->n_live >= sizeof(a->live) / sizeof(a->live[0])) {
		close(fd);
		return false;
	}
	p->ep.ops = &pidfd_ops;
	p->ep.fd = fd;
	if (spryd_ep_add(d, &p->ep, EPOLLIN)) {
		close(fd);
		p->ep.fd = -1;
		return false;
	}
	p->pid = pid;
	p->pid_start = pid_start;
	if (!p->pid_start && spawn__start_time(pid, &p->pid_start))
		p->pid_start = 0;
	p->t_start = now;
	p->stopping = false;
	p->after = SPRY_PS_ALLOCATED;
	live_add(a, p);
	set_state(p, SPRY_PS_STARTING, now);	/* ACTIVE once it registers again */
	if (swap)
		proc_stop(p, SPRY_PS_SWAPPED, now);
	spryd_log("app %s: process %" PRIu64 ": adopted its OS process (pid %d) of an earlier spryd%s",
		  a->decl.name, p->id, pid, swap ? ", being swapped" : "");
	return true;
}

/* Is process @id's swap file in @a's swap directory (an older table)? */
static bool swap_file_there(const struct app *a, uint64_t id)
{
	char file[PATH_MAX + SPRY_APP_SWAP_LEN];
	struct stat sb;

	if (!a->decl.swap_dir[0])
		return false;
	snprintf(file, sizeof(file), "%s/%" PRIu64 ".swap", a->decl.swap_dir, id);
	return !lstat(file, &sb);
}

/* @a's processes from its table: when spryd first sees the app. */
static void table_load(struct spryd *d, struct app *a, uint64_t now)
{
	struct spryd_procs *ps = d->procs;
	struct spry_proc_table t;
	unsigned int adopted = 0, swapped = 0, derived = 0;
	char err[PATH_MAX + 256], bad[PATH_MAX];
	bool same_boot, torn;
	struct proc *p;
	uint32_t i;
	int e;

	e = spry_proc_table__read(ps->table_dir, a->decl.name, &t, &torn, err, sizeof(err));
	if (e == -ENOENT) {
		table_save(d, a);	/* a first table, and its journal */
		return;
	}
	if (e && e != -EINVAL && e != -EIO) {
		/* not a damaged table (no memory, no access): never replaced */
		spryd_log("app %s: process table unreadable: %s: left as it is, not written "
			  "this run; the app starts with no process", a->decl.name, strerror(-e));
		spry_proc_table__free(&t);
		a->table_off = true;
		return;
	}
	if (e) {
		spryd_log("app %s: process table unreadable: %s", a->decl.name, err);
		spry_proc_table__free(&t);
		e = spry_proc_table__set_aside(ps->table_dir, a->decl.name, bad, sizeof(bad));
		if (e)
			spryd_log("app %s: cannot move its table aside: %s (the next write "
				  "replaces it)", a->decl.name, strerror(-e));
		else
			spryd_log("app %s: the unreadable table is kept as %s (and its journal "
				  "as .log.bad); the app starts with no process (their states are "
				  "kept: `spry process create %s id ID` takes one back)",
				  a->decl.name, bad, a->decl.name);
		table_save(d, a);
		return;
	}
	if (torn)
		spryd_log("app %s: the last line of its table's journal was cut short (a "
			  "write no one was answered for): ignored", a->decl.name);
	a->jfd = spry_proc_table__journal_open(ps->table_dir, a->decl.name);
	same_boot = t.boot[0] && !strcmp(t.boot, ps->boot);
	if (!same_boot && t.n)
		spryd_log("app %s: process table of another boot (%s): no OS process of it runs, "
			  "and what its processes kept in memory only is gone: a swapped one "
			  "wakes from its swap file", a->decl.name, t.boot[0] ? t.boot : "unknown");
	for (i = 0; i < t.n; i++) {
		const struct spry_proc_rec *r = &t.recs[i];

		if (proc_find(ps, a, r->id))
			continue;
		p = proc_link(ps, a, r->id, now);
		if (!p) {
			spryd_log("app %s: process %" PRIu64 ": out of memory", a->decl.name, r->id);
			break;
		}
		p->activations = r->activations;
		p->swaps = r->swaps;
		p->swap_file = r->swap_file;
		if (r->swap_file == SPRY_SF_UNKNOWN) {
			/* an older table: a swap file there is one it wrote */
			p->swap_file = swap_file_there(a, r->id) ? SPRY_SF_YES : SPRY_SF_NO;
			derived++;
		}
		if (r->state == SPRY_PS_SWAPPED)
			set_state(p, SPRY_PS_SWAPPED, now);
		if (r->pid && same_boot && proc_adopt(d, p, r->pid, r->pid_start, r->swap, now)) {
			adopted++;
		} else if (r->swap && p->state != SPRY_PS_SWAPPED) {
			/* its OS process ended while no spryd was there: the swap, now */
			if (!proc_swap(d, p, now))
				swapped++;
		}
	}
	if (derived)
		spryd_log("app %s: %u processes without 'swap-file' (a table of an older spryd): "
			  "each has one if its swap file is there now", a->decl.name, derived);
	if (t.next_id > a->next_id)
		a->next_id = t.next_id;
	if (a->n_procs > a->decl.max_procs)
		spryd_log("app %s: %u processes in its table, more than its max %u: kept",
			  a->decl.name, a->n_procs, a->decl.max_procs);
	spryd_log("app %s: %u processes from its table (%u OS processes adopted, %u swapped "
		  "now), ids picked from %" PRIu64, a->decl.name, t.n, adopted, swapped,
		  a->next_id + 1);
	spry_proc_table__free(&t);
	table_save(d, a);	/* this boot, pids not adopted dropped, the journal emptied */
}

/*
 * spry_procs as an earlier spryd left it (killed): its entries name
 * instance slots this spryd gives to others.  Emptied before anything
 * registers; the active processes fill it again.
 */
static void procs_map_reset(struct spryd *d)
{
	struct spry_proc_key key;
	unsigned int n = 0;

	while (!bpf_map_get_next_key(d->maps.procs, NULL, &key)) {
		if (bpf_map_delete_elem(d->maps.procs, &key)) {
			spryd_log("spry_procs: removing a stale entry: %s", strerror(errno));
			break;
		}
		n++;
	}
	if (n)
		spryd_log("removed %u stale entries of an earlier spryd from spry_procs", n);
}

/* ------------------------------------------------------ declarations */

static struct spawner *make_spawner(struct spryd *d, struct app *a)
{
	char *argv[SPRY_DECL_MAX_ARGS + 8];
	struct spawn_fn sf = {};
	struct passwd *pw;
	struct spawner *sp;
	__u32 i, n = 0;

	for (i = 0; i < a->decl.argc; i++)
		argv[n++] = (char *)spry_app_decl__arg(&a->decl, i);
	argv[n++] = "--chain";
	argv[n++] = a->decl.name;
	argv[n++] = "--fn";
	argv[n++] = SPRY_APP_FN;
	if (strcmp(d->sock_path, SPRY_CTL_SOCK_DEFAULT)) {
		argv[n++] = "--sock";
		argv[n++] = d->sock_path;
	}
	argv[n] = NULL;
	sf.chain = a->decl.name;
	sf.fn = SPRY_APP_FN;
	sf.argv = argv;
	sf.uid = a->decl.has_uid ? a->decl.uid : 0;
	pw = getpwuid(sf.uid);
	sf.gid = pw ? pw->pw_gid : sf.uid;
	/* its processes cloned by the app's template unless declared start exec */
	sf.use_template = !a->decl.start_exec;
	sp = spawner__new(d, &sf);
	if (!sp)
		spryd_log("app %s: spawner: %s", a->decl.name, strerror(errno));
	return sp;
}

static void app_forget(struct spryd *d, struct app *a)
{
	struct spryd_procs *ps = d->procs;
	uint64_t now = spryd_now_ns();
	uint32_t b;
	struct proc *p, *next;
	int err;

	for (b = 0; b < PROC_BUCKETS && a->n_procs; b++) {
		for (p = ps->buckets[b]; p; p = next) {
			next = p->hnext;
			if (p->app == a)
				proc_del(d, p, now);
		}
	}
	if (a->chain_id && d->chains[a->chain_id].app == &a->decl) {
		entry_proc_fail(d, a->chain_id, 0, -ENOENT);
		d->chains[a->chain_id].app = NULL;
		d->chains[a->chain_id].app_fn = 0;
	}
	spawner__free(a->sp);
	a->sp = NULL;
	a->gone = true;
	a->pub->used = false;
	a->save_at = 0;
	if (a->jfd >= 0)
		close(a->jfd);
	a->jfd = -1;
	err = spry_proc_table__remove(ps->table_dir, a->decl.name);
	if (err)
		spryd_log("app %s: removing its process table: %s", a->decl.name, strerror(-err));
	if (!a->n_live)
		a->used = false;
}

static void scan_app(struct spryd *d, const char *name, uint64_t now)
{
	struct spryd_procs *ps = d->procs;
	struct spry_app_decl *dc;
	struct spry_chain rec;
	char err[256];
	bool fresh = false;
	struct app *a, *o;
	__u16 cid, fid;
	unsigned int i;

	dc = malloc(sizeof(*dc));
	if (!dc)
		return;
	if (spry_app__read(ps->dir, name, dc, err, sizeof(err))) {
		/* a declaration that does not read (being replaced, damaged)
		 * is not a removal: a loaded app keeps its processes */
		a = app_by_name(ps, name);
		spryd_log("app %s: %s%s", name, err, a ? ": its declaration kept" : "");
		if (a)
			a->seen = true;
		goto out;
	}
	if (spry_chain__lookup(&d->maps, name, &cid, &rec) || !(rec.flags & SPRY_CF_APP) ||
	    spry_fn__lookup(&d->maps, cid, SPRY_APP_FN, &fid, NULL))
		goto out;	/* its chain is not there (yet) */
	a = app_by_name(ps, name);
	if (a && (a->chain_id != cid || a->fn_id != fid)) {
		app_forget(d, a);	/* replaced under the same name: a new one */
		a = NULL;
	}
	/* a new app, or a new swap-dir: not another app's */
	if ((!a || strcmp(a->decl.swap_dir, dc->swap_dir)) && (o = swap_dir_user(ps, dc))) {
		/* swap files are named by process id: two apps would clobber */
		spryd_log("app %s: swap-dir %s is app %s's too: %s (each app needs its own)",
			  name, dc->swap_dir, o->decl.name,
			  a ? "its declaration kept" : "not loaded");
		if (a)
			a->seen = true;	/* kept as it was, with its processes */
		goto out;
	}
	if (!a) {
		for (i = 0; i < SPRYD_MAX_APPS && (ps->apps[i].used || d->apps[i].used); i++)
			;
		if (i == SPRYD_MAX_APPS) {
			spryd_log("more than %d apps: %s ignored", SPRYD_MAX_APPS, name);
			goto out;
		}
		a = &ps->apps[i];
		memset(a, 0, sizeof(*a));
		a->jfd = -1;
		a->used = true;
		a->pub = &d->apps[i];
		memset(a->pub, 0, sizeof(*a->pub));
		a->pub->used = true;
		snprintf(a->pub->app, sizeof(a->pub->app), "%s", name);
		a->decl = *dc;
		a->chain_id = cid;
		a->fn_id = fid;
		if (strlen(ps->state_dir) + 1 + strlen(name) >= sizeof(a->state_dir))
			spryd_log("app %s: state path too long", name);
		else
			sprintf(a->state_dir, "%s/%s", ps->state_dir, name);
		if (mkdir(ps->state_dir, 0711) && errno != EEXIST)
			spryd_log("app %s: mkdir %s: %s", name, ps->state_dir, strerror(errno));
		if (mkdir(a->state_dir, 0700) && errno != EEXIST)
			spryd_log("app %s: mkdir %s: %s", name, a->state_dir, strerror(errno));
		else if (chown(a->state_dir, app_uid(a), (gid_t)-1))
			spryd_log("app %s: chown %s: %s", name, a->state_dir, strerror(errno));
		/* a swap directory spryd makes is the app's user's (it wakes there) */
		if (a->decl.swap_dir[0] && !mkdir(a->decl.swap_dir, 0700) &&
		    chown(a->decl.swap_dir, app_uid(a), (gid_t)-1))
			spryd_log("app %s: chown %s: %s", name, a->decl.swap_dir, strerror(errno));
		spryd_log("app %s: %u functions, max %u processes, exec %s", name,
			  a->decl.n_fns, a->decl.max_procs, spry_app_decl__arg(&a->decl, 0));
		fresh = true;
	} else if (memcmp(&a->decl, dc, sizeof(*dc))) {
		a->decl = *dc;
		spawner__free(a->sp);
		a->sp = NULL;
		spryd_log("app %s: declaration changed", name);
	}
	a->seen = true;
	a->pub->st.max = a->decl.max_procs;
	if (!a->sp)
		a->sp = make_spawner(d, a);
	d->chains[cid].app = &a->decl;
	d->chains[cid].app_fn = fid;
	if (fresh)
		table_load(d, a, now);
out:
	free(dc);
}

static void scan(struct spryd *d, uint64_t now)
{
	struct spryd_procs *ps = d->procs;
	char name[SPRY_NAME_LEN];
	struct dirent *de;
	unsigned int i;
	size_t n;
	DIR *dir;

	for (i = 0; i < SPRYD_MAX_APPS; i++)
		ps->apps[i].seen = false;
	dir = opendir(ps->dir);
	while (dir && (de = readdir(dir))) {
		n = strlen(de->d_name);
		if (n <= 5 || n - 5 >= SPRY_NAME_LEN || strcmp(de->d_name + n - 5, ".json"))
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = '\0';
		if (!spry_name_check(name))
			scan_app(d, name, now);
	}
	if (dir)
		closedir(dir);
	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		struct app *a = &ps->apps[i];

		if (a->used && !a->gone && !a->seen) {
			spryd_log("app %s removed: deleting its %u processes", a->decl.name,
				  a->n_procs);
			app_forget(d, a);
		}
		if (a->used && a->gone && !a->n_live)
			a->used = false;
	}
}

/* ------------------------------------------------------ held requests */

/* Any process of @a that may serve a request naming none: one to wake. */
static struct proc *pick_inactive(struct spryd_procs *ps, struct app *a)
{
	struct proc *p;
	uint32_t b;

	for (b = 0; b < PROC_BUCKETS; b++)
		for (p = ps->buckets[b]; p; p = p->hnext)
			if (p->app == a && (p->state == SPRY_PS_ALLOCATED ||
					    p->state == SPRY_PS_SWAPPED))
				return p;
	return NULL;
}

/* What to do for requests held for process @key of @a: true if any was answered. */
static bool resolve(struct spryd *d, struct app *a, uint64_t key, uint64_t now)
{
	struct spryd_procs *ps = d->procs;
	struct proc *p;
	uint32_t i;
	int err;

	if (key) {
		p = proc_find(ps, a, key);
		if (!p)
			return entry_proc_fail(d, a->chain_id, key, -ENOENT) > 0;
		if (p->state == SPRY_PS_ACTIVE && !p->stopping)
			return entry_proc_release(d, a->chain_id, key) > 0;
		if (p->state == SPRY_PS_STARTING || p->stopping)
			return false;	/* its registration (or exit) releases them */
		err = proc_start(d, p, now);
		if (err == -ENOTRECOVERABLE)
			return entry_proc_fail(d, a->chain_id, key, err) > 0;
		if (err && err != -EAGAIN)
			return entry_proc_fail(d, a->chain_id, key, -EAGAIN) > 0;
		return false;
	}
	if (d->fn_routable[a->fn_id])
		return entry_proc_release(d, a->chain_id, 0) > 0;
	for (i = 0; i < a->n_live; i++)
		if (a->live[i]->state == SPRY_PS_STARTING && !a->live[i]->stopping)
			return false;
	/* a lost one is not picked: it becomes LOST, the next is tried */
	while ((p = pick_inactive(ps, a))) {
		err = proc_start(d, p, now);
		if (err != -ENOTRECOVERABLE)
			break;
	}
	if (!p && a->decl.autocreate) {
		p = proc_new(ps, a, 0, now, &err);
		if (!p)
			return entry_proc_fail(d, a->chain_id, 0,
					       err == -ENOSPC ? -EAGAIN : err) > 0;
		err = proc_start(d, p, now);
	}
	if (!p)
		return entry_proc_fail(d, a->chain_id, 0, -ENOENT) > 0;
	if (err && err != -EAGAIN)
		return entry_proc_fail(d, a->chain_id, 0, -EAGAIN) > 0;
	return false;
}

static void held(struct spryd *d, uint64_t now)
{
	struct spryd_procs *ps = d->procs;
	unsigned int i, budget;
	uint32_t cursor;
	uint64_t key;

	for (i = 0; i < SPRYD_MAX_APPS && d->n_proc_wait; i++) {
		struct app *a = &ps->apps[i];

		if (!a->used || !a->seen || !d->chains[a->chain_id].n_proc_wait)
			continue;
		/* an answer changes the list: start again (bounded) */
		budget = d->chains[a->chain_id].n_proc_wait * 2 + 8;
		cursor = SPRYD_NIL;
		while (budget-- && entry_proc_next(d, a->chain_id, &cursor, &key))
			if (resolve(d, a, key, now))
				cursor = SPRYD_NIL;
	}
}

/* Start and stop timeouts, idle swaps. */
static void tick(struct spryd *d, uint64_t now)
{
	struct spryd_procs *ps = d->procs;
	unsigned int i, k;

	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		struct app *a = &ps->apps[i];

		for (k = 0; a->used && k < a->n_live; k++) {
			struct proc *p = a->live[k];
			const struct spryd_inst *in;
			uint64_t last;

			if (p->stopping && now - p->t_stop > d->sv_opts.stop_timeout_ns) {
				proc_signal(p, SIGKILL);
				continue;
			}
			if (p->state == SPRY_PS_STARTING && !p->stopping &&
			    now - p->t_start > d->sv_opts.start_timeout_ns) {
				spryd_log("app %s: process %" PRIu64 " (pid %d) did not register: killed",
					  a->decl.name, p->id, p->pid);
				proc_signal(p, SIGKILL);
				continue;
			}
			if (p->state != SPRY_PS_ACTIVE || p->stopping || !p->has_inst ||
			    !a->decl.idle_ms)
				continue;
			in = &d->insts[(uint32_t)a->fn_id * SPRY_MAX_INST + p->inst];
			last = in->last_ns > p->t_state ? in->last_ns : p->t_state;
			if (now - last < (uint64_t)a->decl.idle_ms * SPRYD_NS_PER_MS)
				continue;
			if (d->inst_mem &&
			    d->inst_mem[(uint32_t)a->fn_id * SPRY_MAX_INST + p->inst].inflight > 0)
				continue;
			spryd_vlog(d, "app %s: process %" PRIu64 " idle for %u ms: swapping",
				   a->decl.name, p->id, a->decl.idle_ms);
			proc_stop(p, SPRY_PS_SWAPPED, now);
		}
	}
	/* deleted processes whose OS process is slow to go */
	for (struct proc *p = ps->deleted; p; p = p->hnext)
		if (now - p->t_stop > d->sv_opts.stop_timeout_ns)
			proc_signal(p, SIGKILL);
}

/*
 * Anything the tick must look after: an OS process running (idle swaps,
 * start and stop timeouts), a deleted one still going, a held request.
 * Otherwise the room asks for no wake-up at all.
 */
static bool procs_busy(const struct spryd *d)
{
	const struct spryd_procs *ps = d->procs;
	unsigned int i;

	if (ps->deleted || d->n_proc_wait)
		return true;
	for (i = 0; i < SPRYD_MAX_APPS; i++)
		if (ps->apps[i].used && ps->apps[i].n_live)
			return true;
	return false;
}

static void lower(uint64_t *next, uint64_t t)
{
	if (!*next || t < *next)
		*next = t;
}

void process_timer(struct spryd *d, uint64_t now, uint64_t *next)
{
	struct spryd_procs *ps = d->procs;
	unsigned int i;
	bool busy;

	if (!ps)
		return;
	busy = procs_busy(d);
	/*
	 * The apps' declarations: read again after a change inotify saw (at
	 * most every PROC_SCAN_NS); by the directory's mtime while busy or
	 * without inotify.
	 */
	if (now >= ps->next_scan && (ps->watch.due || busy || !dirwatch__watching(&ps->watch))) {
		struct stat st;
		bool due = dirwatch__take(&ps->watch);

		if (!dirwatch__watching(&ps->watch))
			dirwatch__start(d, &ps->watch);
		if (due || stat(ps->dir, &st) || st.st_mtim.tv_sec != ps->dir_mtime.tv_sec ||
		    st.st_mtim.tv_nsec != ps->dir_mtime.tv_nsec) {
			if (!stat(ps->dir, &st))
				ps->dir_mtime = st.st_mtim;
			scan(d, now);
		}
		ps->next_scan = now + PROC_SCAN_NS;
	}
	if (d->n_proc_wait)
		held(d, now);
	busy = procs_busy(d);
	if (busy && now >= ps->next_tick) {
		tick(d, now);
		ps->next_tick = now + PROC_TICK_NS;
	}
	if (busy)
		lower(next, ps->next_tick);
	if (ps->watch.due || busy || !dirwatch__watching(&ps->watch))
		lower(next, ps->next_scan);
	if (tables_due(ps) && tables_due(ps) <= now)
		tables_flush(d, now, false);
	if (tables_due(ps))
		lower(next, tables_due(ps));
	/* the apps' templates: one not READY in time stopped, a dead one
	 * started again after its backoff (processes fork + exec'd meanwhile) */
	for (i = 0; i < SPRYD_MAX_APPS; i++)
		if (ps->apps[i].used && !ps->apps[i].gone && ps->apps[i].sp)
			spawner__timer(ps->apps[i].sp, now, next);
}

int process_lost_text(struct spryd *d, uint16_t chain, uint64_t id, char *buf, size_t len)
{
	struct app *a = d->procs ? app_by_chain(d->procs, chain) : NULL;
	struct proc *p = a && id ? proc_find(d->procs, a, id) : NULL;

	if (!p || p->state != SPRY_PS_LOST || p->lost >= SPRY_PL_MAX)
		return -ENOENT;
	snprintf(buf, len, "process %" PRIu64 " of app %s: %s (%s/%" PRIu64 ".swap): its "
		 "state is lost; put the file back, or delete the process (spry process del "
		 "%s id %" PRIu64 ")\n", p->id, a->decl.name, lost_why[p->lost],
		 a->decl.swap_dir[0] ? a->decl.swap_dir : "(no swap-dir)", p->id,
		 a->decl.name, p->id);
	return 0;
}

/* ------------------------------------------------------------- PROC */

static void info_of(const struct proc *p, uint64_t now, struct spry_ctl_proc_info *o)
{
	memset(o, 0, sizeof(*o));
	o->id = p->id;
	o->state = p->state;
	o->pid = p->pid;
	o->inst = p->has_inst ? p->inst : 0xffff;
	o->lost = p->state == SPRY_PS_LOST ? p->lost : SPRY_PL_NONE;
	o->activations = p->activations;
	o->swaps = p->swaps;
	o->idle_ms = (now - p->t_state) / SPRYD_NS_PER_MS;
}

static int info_cmp(const void *x, const void *y)
{
	const struct spry_ctl_proc_info *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

#define PROC_INFO_MAX	((SPRY_CTL_MAX_MSG - sizeof(struct spry_ctl_hdr) - \
			  sizeof(struct spry_ctl_proc_app)) / sizeof(struct spry_ctl_proc_info))

static void ctl_reply(struct spryd *d, struct spryd_conn *c, int err, struct app *a,
		      struct proc *one, bool all, uint64_t now, bool active)
{
	struct spryd_procs *ps = d->procs;
	struct spry_ctl_proc_info *infos = NULL;
	struct spry_ctl_proc_app sum;
	uint32_t n = 0, b;
	struct proc *p;

	if (err || !a) {
		spryd_conn_send(d, c, SPRY_CTL_PROC_ACK, err ? err : -ENOENT, NULL, 0, NULL, 0, -1);
		return;
	}
	sum = a->pub->st;
	sum.n_info = 0;
	sum.truncated = 0;
	if (one || all) {
		infos = calloc(one ? 1 : PROC_INFO_MAX, sizeof(*infos));
		if (!infos) {
			spryd_conn_send(d, c, SPRY_CTL_PROC_ACK, -ENOMEM, NULL, 0, NULL, 0, -1);
			return;
		}
	}
	if (one) {
		info_of(one, now, &infos[n++]);
	} else if (all) {
		for (b = 0; b < PROC_BUCKETS; b++) {
			for (p = ps->buckets[b]; p; p = p->hnext) {
				if (p->app != a || (active && p->state != SPRY_PS_ACTIVE))
					continue;
				if (n == PROC_INFO_MAX) {
					sum.truncated = 1;
					break;
				}
				info_of(p, now, &infos[n++]);
			}
		}
		qsort(infos, n, sizeof(*infos), info_cmp);
	}
	sum.n_info = n;
	spryd_conn_send(d, c, SPRY_CTL_PROC_ACK, 0, &sum, sizeof(sum), infos,
			n * (uint32_t)sizeof(*infos), -1);
	free(infos);
}

static void hook_ctl(struct spryd *d, struct spryd_conn *c, const void *body, uint32_t len)
{
	struct spryd_procs *ps = d->procs;
	uint64_t now = spryd_now_ns();
	struct spry_ctl_proc req;
	struct spry_ctl_proc_info gone;
	struct proc *p = NULL;
	struct app *a;
	int err = 0;

	/* sizes, the name, op, id and flags: lib/proc_ctl.h */
	err = spry_ctl_proc__decode(body, len, &req);
	if (err) {
		ctl_reply(d, c, err, NULL, NULL, false, now, false);
		return;
	}
	a = app_by_name(ps, req.app);
	if (!a || !a->seen) {
		ctl_reply(d, c, -ENODEV, NULL, NULL, false, now, false);
		return;
	}
	if (c->cred.uid != 0 && (!a->decl.has_uid || c->cred.uid != a->decl.uid)) {
		ctl_reply(d, c, -EPERM, NULL, NULL, false, now, false);
		return;
	}
	if (req.op == SPRY_PROC_CREATE) {
		p = proc_new(ps, a, req.id, now, &err);
		if (!p) {
			ctl_reply(d, c, err, a, NULL, false, now, false);
			return;
		}
		spryd_vlog(d, "app %s: process %" PRIu64 " created", a->decl.name, p->id);
		ctl_reply(d, c, 0, a, p, false, now, false);	/* its journal line is written */
		return;
	}
	if (req.id) {
		p = proc_find(ps, a, req.id);
		if (!p) {
			ctl_reply(d, c, -ENOENT, a, NULL, false, now, false);
			return;
		}
	}
	switch (req.op) {
	case SPRY_PROC_SHOW:
		ctl_reply(d, c, 0, a, p, !p, now, req.flags & SPRY_PROC_F_ACTIVE);
		return;
	case SPRY_PROC_SWAP:
		err = proc_swap(d, p, now);
		break;
	case SPRY_PROC_WAKE:
		err = proc_start(d, p, now);
		if (err == -EAGAIN)
			err = -EBUSY;	/* every slot taken; one is being swapped */
		break;
	case SPRY_PROC_DEL:
		info_of(p, now, &gone);
		proc_del(d, p, now);
		gone.state = SPRY_PS_DELETED;
		{
			struct spry_ctl_proc_app sum = a->pub->st;

			sum.n_info = 1;
			sum.truncated = 0;
			spryd_conn_send(d, c, SPRY_CTL_PROC_ACK, 0, &sum, sizeof(sum), &gone,
					sizeof(gone), -1);
		}
		return;
	}
	ctl_reply(d, c, err, a, err ? NULL : p, false, now, false);
}

static const struct spryd_proc_hooks hooks = {
	.reg_check = hook_reg_check,
	.tmpl_check = hook_tmpl_check,
	.reg_done = hook_reg_done,
	.removed = hook_removed,
	.ctl = hook_ctl,
};

/* ---------------------------------------------------------- init/fini */

int process_init(struct spryd *d)
{
	struct spryd_procs *ps;
	char state[PATH_MAX];
	const char *env;
	int err;

	ps = calloc(1, sizeof(*ps));
	d->apps = calloc(SPRYD_MAX_APPS, sizeof(*d->apps));
	if (ps)
		ps->buckets = calloc(PROC_BUCKETS, sizeof(*ps->buckets));
	if (!ps || !d->apps || !ps->buckets) {
		err = -ENOMEM;
		goto fail;
	}
	if (d->sv_opts.state_dir) {
		if (strlen(d->sv_opts.state_dir) >= sizeof(state)) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		snprintf(state, sizeof(state), "%s", d->sv_opts.state_dir);
	} else {
		err = spry_state_dir(d->pin_dir, state, sizeof(state));
		if (err)
			goto fail;
	}
	err = spry_app_dir(state, ps->dir, sizeof(ps->dir));
	if (err)
		goto fail;
	env = getenv(PROC_STATE_ENV);
	if (snprintf(ps->state_dir, sizeof(ps->state_dir), "%s",
		     env && *env ? env : state) >= (int)sizeof(ps->state_dir) - 16) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	if (!env || !*env)
		strcat(ps->state_dir, "/procs");
	err = spry_proc_table_dir(ps->dir, ps->table_dir, sizeof(ps->table_dir));
	if (err)
		goto fail;
	if (state_boot_id(ps->boot))
		spryd_log("no boot id: processes' OS processes are not adopted after a restart");
	dirwatch__init(&ps->watch, ps->dir, NULL);
	d->procs = ps;
	procs_map_reset(d);
	d->proc_hooks = &hooks;
	err = dirwatch__start(d, &ps->watch);
	if (err)
		spryd_log("inotify on %s: %s: apps read every %llu ms", ps->dir, strerror(-err),
			  (unsigned long long)(PROC_SCAN_NS / SPRYD_NS_PER_MS));
	spryd_log("apps: %s, process state: %s, process tables: %s", ps->dir, ps->state_dir,
		  ps->table_dir);
	return 0;
fail:
	if (ps)
		free(ps->buckets);
	free(ps);
	free(d->apps);
	d->apps = NULL;
	return err;
}

bool process_pid_known(struct spryd *d, pid_t pid)
{
	struct spryd_procs *ps = d->procs;
	unsigned int i, k;

	for (i = 0; ps && i < SPRYD_MAX_APPS; i++) {
		struct app *a = &ps->apps[i];

		if (!a->used)
			continue;
		if (spawner__template_pid(a->sp) == pid || spawner__spare_pid(a->sp) == pid)
			return true;
		/* live: every process with an OS process, deleted ones until reaped */
		for (k = 0; k < a->n_live; k++)
			if (a->live[k]->pid == pid)
				return true;
	}
	return false;
}

void process_fini(struct spryd *d)
{
	struct spryd_procs *ps = d->procs;
	struct proc *p, *next;
	uint64_t end, now = spryd_now_ns();
	unsigned int i, k, left;
	uint32_t b;

	if (!ps)
		return;
	/*
	 * Stop every OS process (a swap under way still completes): each
	 * exit is handled as any (pidfd_event()), quietly; their processes
	 * stay, allocated or swapped, in the table written last.
	 */
	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		for (k = 0; ps->apps[i].used && k < ps->apps[i].n_live; k++) {
			p = ps->apps[i].live[k];
			if (!p->stopping)
				proc_stop(p, SPRY_PS_ALLOCATED, now);
			proc_signal(p, SIGTERM);
		}
	}
	end = now + d->sv_opts.stop_timeout_ns;
	do {
		left = 0;
		for (i = 0; i < SPRYD_MAX_APPS; i++) {
			struct app *a = &ps->apps[i];

			for (k = 0; a->used && k < a->n_live; k++) {
				struct pollfd pfd = { .fd = a->live[k]->ep.fd, .events = POLLIN };

				if (spryd_now_ns() >= end)
					proc_signal(a->live[k], SIGKILL);
				if (poll(&pfd, 1, 10) > 0) {
					/* exited (a child or adopted): out of live[] */
					pidfd_event(d, &a->live[k]->ep, EPOLLIN);
					k--;
					continue;
				}
				left++;
			}
		}
	} while (left);
	for (p = ps->deleted; p; p = next) {
		next = p->hnext;
		free(p);
	}
	ps->deleted = NULL;
	tables_flush(d, spryd_now_ns(), true);
	for (i = 0; i < SPRYD_MAX_APPS; i++)
		if (ps->apps[i].used && ps->apps[i].jfd >= 0)
			close(ps->apps[i].jfd);
	for (b = 0; b < PROC_BUCKETS; b++) {
		for (p = ps->buckets[b]; p; p = next) {
			next = p->hnext;
			free(p);
		}
	}
	for (i = 0; i < SPRYD_MAX_APPS; i++) {
		spawner__free(ps->apps[i].sp);
		if (ps->apps[i].used && ps->apps[i].chain_id)
			d->chains[ps->apps[i].chain_id].app = NULL;
	}
	spryd_ep_close(d, &ps->watch.ep);
	free(ps->buckets);
	free(ps);
	d->procs = NULL;
	d->proc_hooks = NULL;
	free(d->apps);
	d->apps = NULL;
}
