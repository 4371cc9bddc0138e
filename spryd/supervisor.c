// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's supervisor room (supervisor.h; docs/DESIGN.md, "Declared
 * functions").
 *
 * Every loop iteration (a timer hook): the declarations are read again
 * when their directory changed (inotify; at most every 500 ms), chains
 * whose requests are held get their missing functions started at once and
 * their requests released as soon as every declared function has a
 * routable instance; every tick (--scale-tick) each busy function's
 * instances are checked (registered? start timeout? idle drained ones
 * stopped?), the autoscaler decides, and the difference is started or
 * drained.  With every function at rest at zero no tick is asked for
 * (fn_busy()): spryd sleeps until an event.
 *
 * Instances: a process of ours is STARTING from spawn to its REGISTER
 * (matched by the SO_PEERCRED pid the registrar recorded), READY while
 * routable, DRAINING once taken out of spry_fns (it finishes what it
 * holds), STOPPING after SIGTERM (SIGKILL after --stop-timeout).  Each is
 * watched by a pidfd in the loop; its exit is reaped with waitid(P_PIDFD).
 * Hand-started instances count as ready but are never stopped.
 *
 * Failures (missing executable, exit before registering, no REGISTER
 * within --start-timeout): logged, the error kept for `spry fn show`,
 * restart after an exponential backoff, and requests held for the chain
 * answered -EAGAIN (503 + Retry-After) instead of waiting for their
 * deadline.
 *
 * spryd's status.json (the state directory) lists our instances' pids: a
 * spryd started after one that was killed adopts the live ones whose
 * executable matches (pidfd_open; they re-register by themselves) instead
 * of starting duplicates.  A spryd that stops cleanly stops them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fn-runtime/cpus.h"
#include "lib/decl.h"
#include "spryd/autoscale.h"
#include "spryd/entry.h"
#include "spryd/registrar.h"
#include "spryd/spawn.h"
#include "spryd/spryd.h"
#include "spryd/dirwatch.h"
#include "spryd/supervisor.h"

#define SV_SCAN_NS	(500ULL * SPRYD_NS_PER_MS)
#define SV_STATUS_NS	(200ULL * SPRYD_NS_PER_MS)
#define SV_MAX_KNOWN	1024
#define SV_LIVED_NS	(2000ULL * SPRYD_NS_PER_MS)	/* shorter life: a failed start */

enum { P_FREE, P_STARTING, P_READY, P_DRAINING, P_STOPPING };
static const char *const p_names[] = { "free", "starting", "ready", "draining", "stopping" };

struct sv_fn;

struct sv_proc {
	struct spryd_ep		ep;		/* pidfd */
	struct sv_fn		*f;
	pid_t			pid;
	uint8_t			state;
	bool			adopted;
	uint32_t		inst;		/* d->insts index once registered */
	uint64_t		t_start, t_ready, t_drain, t_stop;
};

struct sv_fn {
	bool			used, seen;
	char			chain[SPRY_NAME_LEN];
	uint16_t		chain_id, fn_id;
	uint32_t		queue;
	struct spry_fn_decl	decl;
	struct spawner		*sp;
	struct sv_proc		procs[SPRY_MAX_INST];
	struct as_state		as;
	uint32_t		desired;
	uint32_t		fails;
	uint64_t		next_start;
	uint64_t		last_delivered;
	char			last_error[256];
	char			last_decision[256];
	struct spryd_fn_scale	*pub;
};

struct sv_known {
	pid_t	pid;
	char	chain[SPRY_NAME_LEN];
	char	fn[SPRY_NAME_LEN];
};

struct spryd_sv {
	struct spryd_dirwatch	watch;		/* inotify on dir: declarations changed */
	bool			scan_retry;	/* a declaration waits for its chain */
	char			dir[PATH_MAX];
	struct sv_fn		fns[SPRYD_SV_MAX_FNS];
	uint64_t		next_scan, next_tick, next_status;
	struct timespec		dir_mtime;
	bool			dirty;
	uint32_t		n_known;
	struct sv_known		known[SV_MAX_KNOWN];
};

static void pidfd_event(struct spryd *d, struct spryd_ep *ep, uint32_t events);
static const struct spryd_ep_ops pidfd_ops = { .name = "instance-pidfd", .event = pidfd_event };

void supervisor_opts_default(struct spryd *d)
{
	struct spryd_sv_opts *o = &d->sv_opts;

	o->tick_ns = 100 * SPRYD_NS_PER_MS;
	o->stable_ns = 60000 * SPRYD_NS_PER_MS;
	o->panic_ns = 6000 * SPRYD_NS_PER_MS;
	o->start_timeout_ns = 5000 * SPRYD_NS_PER_MS;
	o->backoff_ns = 100 * SPRYD_NS_PER_MS;
	o->backoff_max_ns = 30000 * SPRYD_NS_PER_MS;
	o->stop_timeout_ns = 5000 * SPRYD_NS_PER_MS;
}

/* ------------------------------------------------------------ status */

static void status_write(struct spryd *d)
{
	struct spryd_sv *sv = d->sv;
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
	json_t *root, *fns, *o, *pids;
	unsigned int i, k;
	struct sv_fn *f;

	root = json_object();
	fns = json_array();
	if (!root || !fns) {
		json_decref(root);
		json_decref(fns);
		return;
	}
	json_object_set_new(root, "spryd_pid", json_integer(getpid()));
	json_object_set_new(root, "fns", fns);
	for (i = 0; i < SPRYD_SV_MAX_FNS; i++) {
		f = &sv->fns[i];
		if (!f->used)
			continue;
		pids = json_array();
		for (k = 0; k < SPRY_MAX_INST; k++)
			if (f->procs[k].state != P_FREE)
				json_array_append_new(pids, json_pack("{s:i,s:s,s:b}", "pid",
						      f->procs[k].pid, "state",
						      p_names[f->procs[k].state], "adopted",
						      f->procs[k].adopted));
		o = json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:o,"
			      "s:s,s:i,s:i}",
			      "chain", f->chain, "fn", f->decl.fn,
			      "desired", f->desired, "actual", f->pub->actual,
			      "starting", f->pub->starting, "draining", f->pub->draining,
			      "max", f->decl.max,
			      "last_error", f->last_error, "last_decision", f->last_decision,
			      "starts", (json_int_t)f->pub->starts,
			      "failures", (json_int_t)f->pub->failures,
			      "crashes", (json_int_t)f->pub->crashes,
			      "adopted", (json_int_t)f->pub->adopted,
			      "scale_ups", (json_int_t)f->pub->scale_ups,
			      "scale_downs", (json_int_t)f->pub->scale_downs,
			      "held", d->chains[f->chain_id].n_held,
			      "pids", pids,
			      "start", f->decl.start_exec ? "exec" : "template",
			      "template_pid", (int)spawner__template_pid(f->sp),
			      "spare_pid", (int)spawner__spare_pid(f->sp));
		if (o)
			json_array_append_new(fns, o);
	}
	snprintf(path, sizeof(path), "%s/%s", sv->dir, SPRY_DECL_STATUS);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", sv->dir, SPRY_DECL_STATUS);
	mkdir(sv->dir, 0700);
	if (!json_dump_file(root, tmp, JSON_COMPACT) && !chmod(tmp, 0600))
		rename(tmp, path);
	json_decref(root);
	sv->dirty = false;
}

/* The pids a killed spryd's status.json lists: to adopt, not duplicate. */
static void known_read(struct spryd_sv *sv)
{
	char path[PATH_MAX + 32];
	json_t *root, *fns, *o, *p;
	const char *chain, *fn;
	size_t i, k;

	snprintf(path, sizeof(path), "%s/%s", sv->dir, SPRY_DECL_STATUS);
	root = json_load_file(path, 0, NULL);
	if (!root)
		return;
	fns = json_object_get(root, "fns");
	json_array_foreach(fns, i, o) {
		chain = json_string_value(json_object_get(o, "chain"));
		fn = json_string_value(json_object_get(o, "fn"));
		if (!chain || !fn || strlen(chain) >= SPRY_NAME_LEN || strlen(fn) >= SPRY_NAME_LEN)
			continue;
		json_array_foreach(json_object_get(o, "pids"), k, p) {
			json_int_t pid = json_integer_value(json_object_get(p, "pid"));

			if (pid <= 1 || pid > INT_MAX || sv->n_known >= SV_MAX_KNOWN)
				continue;
			sv->known[sv->n_known].pid = (pid_t)pid;
			snprintf(sv->known[sv->n_known].chain, SPRY_NAME_LEN, "%s", chain);
			snprintf(sv->known[sv->n_known].fn, SPRY_NAME_LEN, "%s", fn);
			sv->n_known++;
		}
	}
	json_decref(root);
}

/* ----------------------------------------------------------- processes */

static struct sv_proc *proc_slot(struct sv_fn *f)
{
	unsigned int i;

	for (i = 0; i < SPRY_MAX_INST; i++)
		if (f->procs[i].state == P_FREE)
			return &f->procs[i];
	return NULL;
}

/* Watch @pid by @fd (its pidfd; -1: open one), which is taken in every case. */
static int proc_watch(struct spryd *d, struct sv_fn *f, pid_t pid, int fd, bool adopted,
		      uint64_t now)
{
	struct sv_proc *p = proc_slot(f);
	int err;

	if (!p) {
		if (fd >= 0)
			close(fd);
		return -ENOSPC;
	}
	if (fd < 0)
		fd = pidfd_open(pid, 0);
	if (fd < 0)
		return -errno;
	memset(p, 0, sizeof(*p));
	p->ep.ops = &pidfd_ops;
	p->ep.fd = fd;
	err = spryd_ep_add(d, &p->ep, EPOLLIN);
	if (err) {
		close(fd);
		p->ep.fd = -1;
		return err;
	}
	p->f = f;
	p->pid = pid;
	p->adopted = adopted;
	p->state = P_STARTING;
	p->t_start = now;
	p->inst = SPRYD_NIL;
	d->sv->dirty = true;
	return 0;
}

/* Has @p exited (its pidfd readable), its exit not handled yet? */
static bool proc_exited(const struct sv_proc *p)
{
	struct pollfd pfd = { .fd = p->ep.fd, .events = POLLIN };

	return p->ep.fd >= 0 && poll(&pfd, 1, 0) > 0;
}

static void proc_signal(struct sv_proc *p, int sig)
{
	if (p->ep.fd >= 0)
		pidfd_send_signal(p->ep.fd, sig, NULL, 0);
}

static void fn_fail(struct spryd *d, struct sv_fn *f, uint64_t now, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fn_fail(struct spryd *d, struct sv_fn *f, uint64_t now, const char *fmt, ...)
{
	const struct spryd_sv_opts *o = &d->sv_opts;
	uint64_t backoff = o->backoff_ns;
	uint32_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->last_error, sizeof(f->last_error), fmt, ap);
	va_end(ap);
	f->fails++;
	f->pub->failures++;
	for (n = 1; n < f->fails && backoff < o->backoff_max_ns; n++)
		backoff *= 2;
	if (backoff > o->backoff_max_ns)
		backoff = o->backoff_max_ns;
	f->next_start = now + backoff;
	spryd_log("fn %s/%s: %s (failure %u; next start in %llu ms)", f->chain, f->decl.fn,
		  f->last_error, f->fails, (unsigned long long)(backoff / SPRYD_NS_PER_MS));
	if (!d->fn_routable[f->fn_id]) {
		n = entry_hold_fail(d, f->chain_id, -EAGAIN);
		if (n)
			spryd_log("chain %s: %u held requests answered 503 (fn %s cannot start)",
				  f->chain, n, f->decl.fn);
	}
	d->sv->dirty = true;
}

static void exit_text(const siginfo_t *si, char *buf, size_t len)
{
	if (si->si_code == CLD_EXITED)
		snprintf(buf, len, "exited with status %d", si->si_status);
	else
		snprintf(buf, len, "killed by signal %d (%s)", si->si_status,
			 strsignal(si->si_status));
}

static void pidfd_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct sv_proc *p = (struct sv_proc *)ep;
	struct sv_fn *f = p->f;
	uint64_t now = spryd_now_ns();
	siginfo_t si = {};
	char how[96];
	int ret;

	(void)events;
	ret = waitid(P_PIDFD, (id_t)ep->fd, &si, WEXITED | WNOHANG);
	if (!ret && !si.si_pid)
		return;		/* not yet */
	if (ret)
		snprintf(how, sizeof(how), "exited (not our child: %s)", strerror(errno));
	else
		exit_text(&si, how, sizeof(how));
	spryd_ep_close(d, &p->ep);
	switch (p->state) {
	case P_STARTING:
		p->state = P_FREE;
		fn_fail(d, f, now, "instance pid %d %s before registering", p->pid, how);
		break;
	case P_READY:
		p->state = P_FREE;
		f->pub->crashes++;
		if (now - p->t_ready < SV_LIVED_NS) {
			fn_fail(d, f, now, "instance pid %d %s %llu ms after registering",
				p->pid, how, (unsigned long long)((now - p->t_ready) / SPRYD_NS_PER_MS));
		} else {
			snprintf(f->last_error, sizeof(f->last_error),
				 "instance pid %d %s: replaced", p->pid, how);
			spryd_log("fn %s/%s: %s", f->chain, f->decl.fn, f->last_error);
		}
		break;
	default:
		spryd_vlog(d, "fn %s/%s: instance pid %d stopped (%s)", f->chain, f->decl.fn,
			   p->pid, how);
		p->state = P_FREE;
		break;
	}
	d->sv->dirty = true;
}

static void fn_start(struct spryd *d, struct sv_fn *f, uint64_t now)
{
	uint64_t t0 = spryd_now_ns();
	pid_t pid;
	int err;

	if (!f->sp)
		return;
	pid = spawner__start(f->sp);
	if (pid > 0)
		spryd_trace("spawn %d %llu %llu %s chain=%s fn=%s", (int)pid,
			    (unsigned long long)t0, (unsigned long long)spryd_now_ns(),
			    spawner__cloned(f->sp) ? "template" : "exec", f->chain, f->decl.fn);
	if (pid < 0) {
		fn_fail(d, f, now, "cannot start %s: %s", spry_fn_decl__arg(&f->decl, 0),
			strerror((int)-pid));
		return;
	}
	f->pub->starts++;
	err = proc_watch(d, f, pid, -1, false, now);
	if (err) {
		/* cannot watch it: do not leave it unsupervised */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fn_fail(d, f, now, "pidfd of instance pid %d: %s", pid, strerror(-err));
		return;
	}
	spryd_vlog(d, "fn %s/%s: started instance pid %d", f->chain, f->decl.fn, pid);
}

/* ----------------------------------------------------- declarations */

static void fn_release(struct spryd *d, struct sv_fn *f)
{
	spawner__free(f->sp);
	f->sp = NULL;
	f->used = false;
	if (f->pub)
		memset(f->pub, 0, sizeof(*f->pub));
	d->sv->dirty = true;
}

static struct spawner *make_spawner(struct spryd *d, struct sv_fn *f,
				    const struct spry_chain *rec, char *err, size_t len)
{
	char *argv[SPRY_DECL_MAX_ARGS + 8];
	const struct spry_fn_decl *dc = &f->decl;
	bool has_chain = false, has_sock = false;
	struct spawn_fn sf = {};
	struct passwd *pw;
	cpu_set_t set;
	__u32 i, n = 0;
	struct spawner *sp;

	for (i = 0; i < dc->argc; i++) {
		argv[n++] = (char *)spry_fn_decl__arg(dc, i);
		if (i && !strncmp(argv[n - 1], "--chain", 7))
			has_chain = true;
		if (i && !strncmp(argv[n - 1], "--sock", 6))
			has_sock = true;
	}
	if (argv[0][0] != '/') {
		snprintf(err, len, "exec %s is not an absolute path", argv[0]);
		return NULL;
	}
	if (!has_chain) {
		argv[n++] = "--chain";
		argv[n++] = f->chain;
		argv[n++] = "--fn";
		argv[n++] = (char *)dc->fn;
	}
	if (!has_sock && strcmp(d->sock_path, SPRY_CTL_SOCK_DEFAULT)) {
		argv[n++] = "--sock";
		argv[n++] = d->sock_path;
	}
	argv[n] = NULL;
	sf.chain = f->chain;
	sf.fn = dc->fn;
	sf.argv = argv;
	sf.use_template = !dc->start_exec;
	sf.uid = dc->has_uid ? dc->uid : rec->uid;
	pw = getpwuid(sf.uid);
	sf.gid = pw ? pw->pw_gid : sf.uid;
	if (!spry_cpus__empty(dc->cpus)) {
		spry_cpus__to_set(dc->cpus, &set);
		sf.cpus = &set;
	} else if (!spry_cpus__empty(rec->cpus)) {
		spry_cpus__to_set(rec->cpus, &set);
		sf.cpus = &set;
	}
	sp = spawner__new(d, &sf);
	if (!sp)
		snprintf(err, len, "spawner: %s", strerror(errno));
	return sp;
}

static struct sv_fn *fn_find(struct spryd_sv *sv, const char *chain, const char *fn)
{
	unsigned int i;

	for (i = 0; i < SPRYD_SV_MAX_FNS; i++)
		if (sv->fns[i].used && !strcmp(sv->fns[i].chain, chain) &&
		    !strcmp(sv->fns[i].decl.fn, fn))
			return &sv->fns[i];
	return NULL;
}

/* Adopt the live instances a killed spryd started (its status.json). */
static void fn_adopt_known(struct spryd *d, struct sv_fn *f, uint64_t now)
{
	struct spryd_sv *sv = d->sv;
	const char *want = spry_fn_decl__arg(&f->decl, 0);
	uint32_t i;
	int fd;

	for (i = 0; i < sv->n_known; i++) {
		struct sv_known *k = &sv->known[i];

		if (!k->pid || strcmp(k->chain, f->chain) || strcmp(k->fn, f->decl.fn))
			continue;
		fd = spawn__adopt(k->pid, want, NULL);
		if (fd >= 0 && !proc_watch(d, f, k->pid, fd, true, now)) {
			f->pub->adopted++;
			spryd_log("fn %s/%s: adopted instance pid %d of an earlier spryd",
				  f->chain, f->decl.fn, k->pid);
		}
		k->pid = 0;
	}
}

static void chain_managed_update(struct spryd *d)
{
	struct spryd_sv *sv = d->sv;
	struct spryd_chain *cs;
	unsigned int i;

	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		d->chains[i].n_managed = 0;
		d->chains[i].hold_max = SPRY_DECL_DEF_QUEUE;
	}
	for (i = 0; i < SPRYD_SV_MAX_FNS; i++) {
		struct sv_fn *f = &sv->fns[i];

		if (!f->used || !f->seen || !f->chain_id)
			continue;
		cs = &d->chains[f->chain_id];
		if (cs->n_managed < SPRY_MAX_HOPS * 2)
			cs->managed[cs->n_managed++] = f->fn_id;
		cs->hold_max = f->queue ? f->queue : SPRY_DECL_DEF_QUEUE;
	}
}

static void scan_chain(struct spryd *d, const char *chain, uint64_t now)
{
	struct spryd_sv *sv = d->sv;
	struct spry_chain_decls *dc;
	struct spry_chain rec;
	char err[256];
	struct sv_fn *f;
	__u16 cid, fid;
	unsigned int i, k;
	int e;

	dc = malloc(sizeof(*dc));
	if (!dc)
		return;
	e = spry_decls__read(sv->dir, chain, dc, err, sizeof(err));
	if (e) {
		if (e != -ENOENT)
			spryd_log("declarations of chain %s: %s", chain, err);
		goto out;
	}
	if (spry_chain__lookup(&d->maps, chain, &cid, &rec) || !(rec.flags & SPRY_CF_ACTIVE)) {
		sv->scan_retry = true;	/* declared before its chain exists: later */
		goto out;
	}
	for (i = 0; i < dc->n; i++) {
		if (spry_fn__lookup(&d->maps, cid, dc->fns[i].fn, &fid, NULL)) {
			sv->scan_retry = true;
			continue;
		}
		f = fn_find(sv, chain, dc->fns[i].fn);
		if (f && (f->chain_id != cid || f->fn_id != fid)) {
			/* the chain was replaced under the same names: start again */
			for (k = 0; k < SPRY_MAX_INST; k++)
				if (f->procs[k].state != P_FREE)
					proc_signal(&f->procs[k], SIGTERM);
		}
		if (!f) {
			for (k = 0; k < SPRYD_SV_MAX_FNS && sv->fns[k].used; k++)
				;
			if (k == SPRYD_SV_MAX_FNS) {
				spryd_log("more than %d declared functions: %s/%s ignored",
					  SPRYD_SV_MAX_FNS, chain, dc->fns[i].fn);
				continue;
			}
			f = &sv->fns[k];
			memset(f, 0, sizeof(*f));
			for (e = 0; e < SPRY_MAX_INST; e++)
				f->procs[e].ep.fd = -1;
			f->used = true;
			snprintf(f->chain, sizeof(f->chain), "%s", chain);
			f->pub = &d->scale[k];
			memset(f->pub, 0, sizeof(*f->pub));
			f->pub->used = true;
			snprintf(f->pub->chain, SPRY_NAME_LEN, "%s", chain);
			snprintf(f->pub->fn, SPRY_NAME_LEN, "%s", dc->fns[i].fn);
			autoscale__init(&f->as, now, dc->fns[i].min);
			f->desired = dc->fns[i].min;
			f->decl = dc->fns[i];
			spryd_log("fn %s/%s declared: min %u max %u target %u idle %u ms, exec %s",
				  chain, f->decl.fn, f->decl.min, f->decl.max, f->decl.target,
				  f->decl.idle_ms, spry_fn_decl__arg(&f->decl, 0));
			sv->dirty = true;
		} else if (memcmp(&f->decl, &dc->fns[i], sizeof(f->decl))) {
			f->decl = dc->fns[i];
			spawner__free(f->sp);
			f->sp = NULL;
			f->fails = 0;
			f->next_start = 0;
			spryd_log("fn %s/%s declaration changed", chain, f->decl.fn);
			sv->dirty = true;
		}
		f->seen = true;
		f->chain_id = cid;
		f->fn_id = fid;
		f->queue = dc->queue;
		if (!f->sp) {
			f->sp = make_spawner(d, f, &rec, err, sizeof(err));
			if (!f->sp) {
				snprintf(f->last_error, sizeof(f->last_error), "%s", err);
				spryd_log("fn %s/%s: %s", chain, f->decl.fn, err);
			}
			fn_adopt_known(d, f, now);
		}
	}
out:
	free(dc);
}

static void scan(struct spryd *d, uint64_t now)
{
	struct spryd_sv *sv = d->sv;
	char chain[SPRY_NAME_LEN];
	struct dirent *de;
	unsigned int i, k;
	size_t n;
	DIR *dir;

	for (i = 0; i < SPRYD_SV_MAX_FNS; i++)
		sv->fns[i].seen = false;
	sv->scan_retry = false;
	dir = opendir(sv->dir);
	while (dir && (de = readdir(dir))) {
		n = strlen(de->d_name);
		if (n <= 5 || n - 5 >= SPRY_NAME_LEN || strcmp(de->d_name + n - 5, ".json") ||
		    !strcmp(de->d_name, SPRY_DECL_STATUS))
			continue;
		memcpy(chain, de->d_name, n - 5);
		chain[n - 5] = '\0';
		if (!spry_name_check(chain))
			scan_chain(d, chain, now);
	}
	if (dir)
		closedir(dir);
	/* Undeclared (or chain gone): stop ours, forget it once none is left. */
	for (i = 0; i < SPRYD_SV_MAX_FNS; i++) {
		struct sv_fn *f = &sv->fns[i];
		bool any = false;

		if (!f->used || f->seen)
			continue;
		if (f->desired)
			spryd_log("fn %s/%s no longer declared: stopping its instances",
				  f->chain, f->decl.fn);
		f->desired = 0;
		for (k = 0; k < SPRY_MAX_INST; k++) {
			struct sv_proc *p = &f->procs[k];

			if (p->state == P_FREE)
				continue;
			any = true;
			if (p->state != P_STOPPING) {
				proc_signal(p, SIGTERM);
				p->state = P_STOPPING;
				p->t_stop = now;
			}
		}
		if (!any)
			fn_release(d, f);
	}
	chain_managed_update(d);
}

/* ------------------------------------------------------- reconciling */

/* STARTING instances that registered; start timeouts. */
static void fn_check_starting(struct spryd *d, struct sv_fn *f, uint64_t now)
{
	unsigned int k, i;

	for (k = 0; k < SPRY_MAX_INST; k++) {
		struct sv_proc *p = &f->procs[k];

		if (p->state != P_STARTING)
			continue;
		for (i = 0; i < SPRY_MAX_INST; i++) {
			struct spryd_inst *in = &d->insts[(uint32_t)f->fn_id * SPRY_MAX_INST + i];

			if (in->used && in->pid == (uint32_t)p->pid) {
				p->state = P_READY;
				p->inst = (uint32_t)(in - d->insts);
				p->t_ready = now;
				f->fails = 0;
				spryd_vlog(d, "fn %s/%s: instance pid %d registered in %llu us",
					   f->chain, f->decl.fn, p->pid,
					   (unsigned long long)((now - p->t_start) / 1000));
				d->sv->dirty = true;
				break;
			}
		}
		if (p->state == P_STARTING && now - p->t_start > d->sv_opts.start_timeout_ns) {
			proc_signal(p, SIGKILL);
			p->state = P_STOPPING;
			p->t_stop = now;
			fn_fail(d, f, now, "instance pid %d did not register within %llu ms: killed",
				p->pid,
				(unsigned long long)(d->sv_opts.start_timeout_ns / SPRYD_NS_PER_MS));
		}
	}
}

static int32_t inst_inflight(struct spryd *d, uint32_t idx)
{
	if (!d->inst_mem || idx == SPRYD_NIL)
		return 0;
	return __atomic_load_n(&d->inst_mem[idx].inflight, __ATOMIC_RELAXED);
}

/* Observed concurrency: in flight at the instances, held at the origin. */
static double fn_concurrency(struct spryd *d, struct sv_fn *f, bool *active)
{
	struct spry_fn_stats fs;
	double c = 0;
	unsigned int i;

	for (i = 0; i < SPRY_MAX_INST; i++) {
		uint32_t idx = (uint32_t)f->fn_id * SPRY_MAX_INST + i;
		int32_t v;

		if (!d->insts[idx].used)
			continue;
		v = inst_inflight(d, idx);
		if (v > 0)
			c += v;
	}
	c += d->chains[f->chain_id].n_held;
	*active = false;
	if (!spry_fn_stats__read(&d->maps, f->fn_id, &fs)) {
		*active = fs.delivered != f->last_delivered;
		f->last_delivered = fs.delivered;
	}
	return c;
}

static void fn_counts(struct sv_fn *f, uint32_t *starting,
		      uint32_t *draining, uint32_t *ours_ready)
{
	unsigned int k;

	*starting = *draining = *ours_ready = 0;
	for (k = 0; k < SPRY_MAX_INST; k++) {
		switch (f->procs[k].state) {
		case P_STARTING:
			(*starting)++;
			break;
		case P_READY:
			(*ours_ready)++;
			break;
		case P_DRAINING:
		case P_STOPPING:
			(*draining)++;
			break;
		}
	}
}

/* What /metrics and status.json show of @f. */
static void fn_publish(struct spryd *d, struct sv_fn *f)
{
	uint32_t starting, draining, ready;

	fn_counts(f, &starting, &draining, &ready);
	f->pub->desired = f->desired;
	f->pub->actual = d->fn_routable[f->fn_id];
	f->pub->starting = starting;
	f->pub->draining = draining;
}

static void fn_reconcile(struct spryd *d, struct sv_fn *f, uint64_t now)
{
	struct spryd_chain *cs = &d->chains[f->chain_id];
	uint32_t actual = d->fn_routable[f->fn_id], starting, draining, ready, total;
	struct sv_proc *victim = NULL;
	unsigned int k;

	fn_counts(f, &starting, &draining, &ready);
	total = actual + starting;
	/* Up: what is missing, if not backing off. */
	while (total < f->desired && now >= f->next_start && f->sp &&
	       starting + ready + draining < SPRY_MAX_INST) {
		fn_start(d, f, now);
		fn_counts(f, &starting, &draining, &ready);
		if (actual + starting == total)
			break;	/* the start failed */
		total = actual + starting;
	}
	/* Down: one of ours, the newest; never the last one while requests run. */
	if (actual > f->desired && ready && (actual > 1 || (!cs->inflight && !cs->n_held))) {
		for (k = 0; k < SPRY_MAX_INST; k++) {
			struct sv_proc *p = &f->procs[k];

			if (p->state == P_READY && (!victim || p->t_ready > victim->t_ready))
				victim = p;
		}
		if (victim && !registrar_inst_drain(d, &d->insts[victim->inst])) {
			victim->state = P_DRAINING;
			victim->t_drain = now;
			d->sv->dirty = true;
		}
	}
	/* Drained instances stop once they hold nothing (or after the deadline). */
	for (k = 0; k < SPRY_MAX_INST; k++) {
		struct sv_proc *p = &f->procs[k];

		if (p->state == P_DRAINING &&
		    (!d->insts[p->inst].used || inst_inflight(d, p->inst) <= 0 ||
		     now - p->t_drain > d->sv_opts.stop_timeout_ns)) {
			proc_signal(p, SIGTERM);
			p->state = P_STOPPING;
			p->t_stop = now;
		} else if (p->state == P_STOPPING && now - p->t_stop > d->sv_opts.stop_timeout_ns) {
			proc_signal(p, SIGKILL);
			p->t_stop = now;
		} else if (p->state == P_READY && !d->insts[p->inst].used && !proc_exited(p)) {
			/* deregistered but alive (spryd lost it): stop it, start anew
			 * (one that exited, its socket closed first, is the pidfd
			 * event's: a crash) */
			proc_signal(p, SIGTERM);
			p->state = P_STOPPING;
			p->t_stop = now;
		}
	}
	fn_publish(d, f);
}

static void fn_autoscale(struct spryd *d, struct sv_fn *f, uint64_t now)
{
	struct as_cfg cfg = { .stable_ns = d->sv_opts.stable_ns, .panic_ns = d->sv_opts.panic_ns };
	struct as_in in = {
		.now = now, .ready = d->fn_routable[f->fn_id], .min = f->decl.min,
		.max = f->decl.max, .target = f->decl.target,
		.idle_ns = (uint64_t)f->decl.idle_ms * SPRYD_NS_PER_MS,
	};
	char why[sizeof(f->last_decision)];
	uint32_t want;

	in.conc = fn_concurrency(d, f, &in.active);
	want = autoscale__decide(&f->as, &cfg, &in, why, sizeof(why));
	if (want == f->desired)
		return;
	if (want > f->desired)
		f->pub->scale_ups++;
	else
		f->pub->scale_downs++;
	snprintf(f->last_decision, sizeof(f->last_decision), "%s", why);
	spryd_log("fn %s/%s: scale %u -> %u (%s)", f->chain, f->decl.fn, f->desired, want, why);
	f->desired = want;
	d->sv->dirty = true;
}

/*
 * Activation, every iteration: a chain holding requests gets its missing
 * functions started now (not at the next tick), and its requests go as
 * soon as every one has an instance; a function that keeps failing gets
 * them answered 503 instead of waiting for the deadline.
 */
static void activation(struct spryd *d, uint64_t now)
{
	struct spryd_sv *sv = d->sv;
	struct spryd_chain *cs;
	unsigned int i;

	for (i = 0; i < SPRYD_SV_MAX_FNS; i++) {
		struct sv_fn *f = &sv->fns[i];
		uint32_t starting, draining, ready;

		if (!f->used || !f->seen)
			continue;
		cs = &d->chains[f->chain_id];
		if (!cs->n_held || d->fn_routable[f->fn_id])
			continue;
		if (!f->desired) {
			f->desired = 1;
			f->as.desired = 1;
			f->as.last_active = now;
			f->pub->scale_ups++;
			snprintf(f->last_decision, sizeof(f->last_decision),
				 "activation: %u requests held at zero instances", cs->n_held);
			spryd_log("fn %s/%s: scale 0 -> 1 (%s)", f->chain, f->decl.fn,
				  f->last_decision);
			sv->dirty = true;
		}
		fn_counts(f, &starting, &draining, &ready);
		if (!starting && f->fails && now < f->next_start) {
			uint32_t n = entry_hold_fail(d, f->chain_id, -EAGAIN);

			if (n)
				spryd_log("chain %s: %u held requests answered 503 (fn %s backing off: %s)",
					  f->chain, n, f->decl.fn, f->last_error);
			continue;
		}
		fn_reconcile(d, f, now);
	}
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		cs = &d->chains[i];
		if (cs->n_held && cs->n_managed && entry_chain_ready(d, cs)) {
			entry_hold_release(d, (uint16_t)i);
			sv->dirty = true;	/* status.json's held */
		}
	}
}

/*
 * Does @f need the tick?  Not when it is at rest at zero: no process of
 * ours, none routable (a hand-started instance is sampled), nothing held,
 * nothing wanted, and min 0 (a declaration that raised min is seen here).
 * Then spryd sleeps (docs/ELASTIC.md, "At rest"): a request for the
 * chain, a declaration change, a registration or a child's exit wakes the
 * loop, and the timer hooks run after every wake-up.
 */
static bool fn_busy(struct spryd *d, const struct sv_fn *f)
{
	unsigned int k;

	if (f->desired || d->fn_routable[f->fn_id] || d->chains[f->chain_id].n_held ||
	    (f->seen && f->decl.min))
		return true;
	for (k = 0; k < SPRY_MAX_INST; k++)
		if (f->procs[k].state != P_FREE)
			return true;
	return false;
}

static void lower(uint64_t *next, uint64_t t)
{
	if (t && (!*next || t < *next))
		*next = t;
}

void supervisor_timer(struct spryd *d, uint64_t now, uint64_t *next)
{
	struct spryd_sv *sv = d->sv;
	bool busy = false;
	unsigned int i;

	if (!sv)
		return;
	for (i = 0; i < SPRYD_SV_MAX_FNS && !busy; i++)
		busy = sv->fns[i].used && fn_busy(d, &sv->fns[i]);
	/*
	 * The declarations: read again at once after a change inotify saw
	 * (at most every SV_SCAN_NS); while something runs, also when the
	 * directory's mtime moved (no inotify, or a missed event); while a
	 * declaration waits for its chain, every SV_SCAN_NS.
	 */
	if (now >= sv->next_scan && (sv->watch.due || sv->scan_retry || busy ||
				     !dirwatch__watching(&sv->watch))) {
		struct stat st;
		bool due = dirwatch__take(&sv->watch);

		/* the directory's mtime moves with every rename() into it */
		if (due || sv->scan_retry || stat(sv->dir, &st) ||
		    st.st_mtim.tv_sec != sv->dir_mtime.tv_sec ||
		    st.st_mtim.tv_nsec != sv->dir_mtime.tv_nsec) {
			if (!stat(sv->dir, &st))
				sv->dir_mtime = st.st_mtim;
			if (!dirwatch__watching(&sv->watch))
				dirwatch__start(d, &sv->watch);
			scan(d, now);
		}
		sv->next_scan = now + SV_SCAN_NS;
	}
	activation(d, now);
	busy = false;
	for (i = 0; i < SPRYD_SV_MAX_FNS; i++) {
		struct sv_fn *f = &sv->fns[i];

		if (!f->used)
			continue;
		if (f->sp) {
			spawner__timer(f->sp, now, next);
			if (spawner__take_changed(f->sp))
				sv->dirty = true;
		}
		if (!fn_busy(d, f)) {
			if (!f->seen) {
				fn_release(d, f);	/* undeclared, its last process gone */
				continue;
			}
			fn_publish(d, f);
			continue;
		}
		busy = true;
		if (now < sv->next_tick)
			continue;
		fn_check_starting(d, f, now);
		if (f->seen)
			fn_autoscale(d, f, now);
		fn_reconcile(d, f, now);
	}
	if (now >= sv->next_tick && busy)
		sv->next_tick = now + d->sv_opts.tick_ns;
	if (sv->dirty && now >= sv->next_status) {
		status_write(d);
		sv->next_status = now + SV_STATUS_NS;
	}
	if (busy)
		lower(next, sv->next_tick);
	if (sv->watch.due || sv->scan_retry || busy || !dirwatch__watching(&sv->watch))
		lower(next, sv->next_scan);
	if (sv->dirty)
		lower(next, sv->next_status);
}

/* Changes in the state directory but our own status file's. */
static const char *const sv_own_files[] = { SPRY_DECL_STATUS, "." SPRY_DECL_STATUS ".tmp", NULL };

int supervisor_init(struct spryd *d)
{
	struct spryd_sv *sv;
	int err;

	sv = calloc(1, sizeof(*sv));
	d->scale = calloc(SPRYD_SV_MAX_FNS, sizeof(*d->scale));
	if (!sv || !d->scale) {
		free(sv);
		free(d->scale);
		d->scale = NULL;
		return -ENOMEM;
	}
	if (d->sv_opts.state_dir) {
		if (strlen(d->sv_opts.state_dir) >= sizeof(sv->dir)) {
			free(sv);
			return -ENAMETOOLONG;
		}
		snprintf(sv->dir, sizeof(sv->dir), "%s", d->sv_opts.state_dir);
	} else {
		err = spry_state_dir(d->pin_dir, sv->dir, sizeof(sv->dir));
		if (err) {
			free(sv);
			return err;
		}
	}
	known_read(sv);
	dirwatch__init(&sv->watch, sv->dir, sv_own_files);
	d->sv = sv;
	err = dirwatch__start(d, &sv->watch);
	if (err)
		spryd_log("inotify on %s: %s: declarations read every %llu ms", sv->dir,
			  strerror(-err), (unsigned long long)(SV_SCAN_NS / SPRYD_NS_PER_MS));
	spryd_log("declared functions: %s", sv->dir);
	return 0;
}

bool supervisor_pid_known(struct spryd *d, pid_t pid)
{
	struct spryd_sv *sv = d->sv;
	unsigned int i, k;

	for (i = 0; sv && i < SPRYD_SV_MAX_FNS; i++) {
		struct sv_fn *f = &sv->fns[i];

		if (!f->used)
			continue;
		if (spawner__template_pid(f->sp) == pid || spawner__spare_pid(f->sp) == pid)
			return true;
		for (k = 0; k < SPRY_MAX_INST; k++)
			if (f->procs[k].state != P_FREE && f->procs[k].pid == pid)
				return true;
	}
	return false;
}

void supervisor_fini(struct spryd *d)
{
	struct spryd_sv *sv = d->sv;
	uint64_t end;
	unsigned int i, k, left;
	struct pollfd pfd;

	if (!sv)
		return;
	/* A clean stop stops ours: SIGTERM, then SIGKILL after the stop timeout. */
	for (i = 0; i < SPRYD_SV_MAX_FNS; i++)
		for (k = 0; sv->fns[i].used && k < SPRY_MAX_INST; k++)
			if (sv->fns[i].procs[k].state != P_FREE)
				proc_signal(&sv->fns[i].procs[k], SIGTERM);
	end = spryd_now_ns() + d->sv_opts.stop_timeout_ns;
	do {
		left = 0;
		for (i = 0; i < SPRYD_SV_MAX_FNS; i++) {
			for (k = 0; sv->fns[i].used && k < SPRY_MAX_INST; k++) {
				struct sv_proc *p = &sv->fns[i].procs[k];
				siginfo_t si = {};

				if (p->state == P_FREE)
					continue;
				if (spryd_now_ns() >= end)
					proc_signal(p, SIGKILL);
				pfd.fd = p->ep.fd;
				pfd.events = POLLIN;
				if (poll(&pfd, 1, 10) > 0) {
					waitid(P_PIDFD, (id_t)p->ep.fd, &si, WEXITED | WNOHANG);
					spryd_ep_close(d, &p->ep);
					p->state = P_FREE;
					continue;
				}
				left++;
			}
		}
	} while (left);
	for (i = 0; i < SPRYD_SV_MAX_FNS; i++)
		if (sv->fns[i].used)
			fn_release(d, &sv->fns[i]);
	status_write(d);
	spryd_ep_close(d, &sv->watch.ep);
	free(sv);
	d->sv = NULL;
	free(d->scale);
	d->scale = NULL;
}
