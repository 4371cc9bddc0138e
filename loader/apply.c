// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry apply FILE [--prune]: make the chains of a YAML file (loader/apply.h)
 * exist as written.  The whole file is parsed and validated before any map
 * changes.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "lib/app.h"
#include "loader/apply.h"
#include "loader/main.h"

#define APPLY_MAX_FILE	(16 << 20)

static void apply_help(FILE *f)
{
	fprintf(f,
		"Usage: spry apply FILE [--prune]\n"
		"       spry apply help\n"
		"\n"
		"Add or replace every chain and app of the YAML FILE ('-': stdin).  The\n"
		"whole file is validated (and the free ids counted) before any\n"
		"change.  --prune also deletes the chains the file does not name.\n"
		"\n"
		"chains:\n"
		"  - name: demo                  # required\n"
		"    user: root                  # name or uid (default: the caller)\n"
		"    hops: [upper, reverse]      # required, 1-%d functions\n"
		"    functions: [helper]         # reachable only by calls\n"
		"    calls: [{from: upper, to: helper}]\n"
		"    next: [{from: upper, to: wc}]   # upper may pick wc, a later hop,\n"
		"                                # as its next (docs/WORKFLOWS.md)\n"
		"    buffers: %d\n"
		"    buffer-size: %d\n"
		"    max-inflight: %d\n"
		"    deadline-ms: %d\n"
		"    idempotent: [upper]         # hops that may be retried\n"
		"    cpus: 1                     # where the instances run (0-3,6)\n"
		"    invoke:                     # who may run it through spryd's\n"
		"      users: [alice, 1001]      # control socket, at most %d of\n"
		"      groups: [staff]           # each; root always may (default:\n"
		"                                # the chain's user)\n"
		"    http: false                 # not served by the HTTP front (404)\n"
		"    queue: 1024                 # requests held while instances start\n"
		"    run:                        # functions spryd starts itself\n"
		"      upper:                    # (spry fn help: declare)\n"
		"        exec: build/examples/upper   # relative to the file\n"
		"        args: [--quiet]\n"
		"        min: 0                  # scale to zero when idle\n"
		"        max: 4\n"
		"        target: 8               # requests in flight per instance\n"
		"        idle: 30                # seconds\n"
		"        cpus: 1\n"
		"apps:                           # cloud processes (spry app help)\n"
		"  - name: shop                  # required, a chain name too\n"
		"    functions: [cart, checkout] # required\n"
		"    exec: build/examples/counter   # required, relative to the file\n"
		"    args: [--quiet]\n"
		"    user: root                  # default root\n"
		"    max: 1024                   # processes at most\n"
		"    state-size: 1048576         # bytes per process\n"
		"    swap-dir: /var/lib/spry/swap\n"
		"    idle: 60                    # seconds before a swap (0: never)\n"
		"    create: auto                # a request without id may create one\n"
		"    start: template             # cloned by the app's template (exec: fork + exec)\n"
		"    next:                       # cart may pick checkout (spry_req_next)\n"
		"      - {from: cart, to: checkout}\n",
		SPRY_MAX_HOPS, SPRY_DEF_N_BUFS, SPRY_DEF_BUF_SIZE,
		SPRY_DEF_MAX_INFLIGHT, SPRY_DEF_DEADLINE_MS, SPRY_MAX_INVOKERS);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	size_t cap = 0, n = 0, got;
	char *buf = NULL, *nbuf;

	if (!f) {
		p_errno(-errno, "cannot open %s", path);
		return NULL;
	}
	errno = 0;
	for (;;) {
		if (n == cap) {
			if (cap >= APPLY_MAX_FILE) {
				p_err("%s: larger than %d bytes", path, APPLY_MAX_FILE);
				goto err;
			}
			cap = cap ? cap * 2 : 4096;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				p_err("out of memory");
				goto err;
			}
			buf = nbuf;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got)
			continue;
		if (ferror(f)) {
			p_errno(errno ? -errno : -EIO, "cannot read %s", path);
			goto err;
		}
		break;
	}
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
err:
	if (f != stdin)
		fclose(f);
	free(buf);
	return NULL;
}

/* Free chain and function ids suffice for every chain of the file. */
static int capacity_check(const struct spry_maps *m, const struct spry_chain_spec *specs,
			  int n)
{
	struct snapshot *s;
	int i, c, free_chains = 0, free_fns = 0, need_chains = 0, need_fns = 0;
	__u32 f, k;
	int ret = -1;

	s = snapshot__read(m);
	if (!s)
		return -1;
	for (c = 1; c < SPRY_MAX_CHAINS; c++)
		free_chains += !s->chains[c].name[0];
	for (k = 1; k < SPRY_MAX_FNS; k++)
		free_fns += !s->fns[k].name[0];
	for (i = 0; i < n; i++) {
		const struct spry_chain_spec *sp = &specs[i];
		__u32 n_all = sp->n_hops + sp->n_extra;

		for (c = 1; c < SPRY_MAX_CHAINS; c++)
			if (s->chains[c].name[0] && !strcmp(s->chains[c].name, sp->name))
				break;
		if (c == SPRY_MAX_CHAINS) {
			need_chains++;
			need_fns += n_all;
			continue;
		}
		for (f = 0; f < n_all; f++) {
			const char *name = f < sp->n_hops ? sp->hops[f] :
					   sp->extra[f - sp->n_hops];

			for (k = 1; k < SPRY_MAX_FNS; k++)
				if (s->fns[k].name[0] && s->fns[k].chain == c &&
				    !strcmp(s->fns[k].name, name))
					break;
			need_fns += k == SPRY_MAX_FNS;
		}
	}
	if (need_chains > free_chains)
		p_err("the file needs %d new chain ids, %d are free", need_chains,
		      free_chains);
	else if (need_fns > free_fns)
		p_err("the file needs %d new function ids, %d are free", need_fns,
		      free_fns);
	else
		ret = 0;
	snapshot__free(s);
	return ret;
}

/* Apps' executables relative to the file made absolute, then checked. */
static int apps_resolve(struct spry_app_decl *apps, int n_apps, const char *base)
{
	struct spry_app_decl tmp;
	char path[PATH_MAX * 2], msg[256];
	const char *exe;
	__u32 k;
	int i;

	for (i = 0; i < n_apps; i++) {
		exe = spry_app_decl__arg(&apps[i], 0);
		if (exe[0] != '/') {
			if (!base) {
				p_err("app %s: exec '%s' is relative and the file is stdin",
				      apps[i].name, exe);
				return -1;
			}
			snprintf(path, sizeof(path), "%s/%s", base, exe);
			tmp = apps[i];
			tmp.argc = 0;
			memset(tmp.args, 0, sizeof(tmp.args));
			if (spry_app_decl__add_arg(&tmp, path)) {
				p_err("app %s: exec path too long", apps[i].name);
				return -1;
			}
			for (k = 1; k < apps[i].argc; k++) {
				if (spry_app_decl__add_arg(&tmp, spry_app_decl__arg(&apps[i], k))) {
					p_err("app %s: args too long", apps[i].name);
					return -1;
				}
			}
			apps[i] = tmp;
		}
		if (spry_app_decl__check(&apps[i], msg, sizeof(msg))) {
			p_err("%s", msg);
			return -1;
		}
	}
	return 0;
}

int do_apply(int argc, char **argv)
{
	struct spry_app_decl *apps = NULL;
	struct spry_chain_spec *specs = NULL, *all = NULL;
	int n_apps = 0;
	const char *file = NULL;
	json_t *o = NULL, *added = NULL, *pruned = NULL;
	struct spry_chain c;
	struct spry_maps m;
	bool prune = false, existed;
	int i, n, err, lock = -1, ret = -1;
	char msg[512], fpath[PATH_MAX], ddir[PATH_MAX];
	const char *base = NULL;
	size_t len;
	char *buf;
	__u16 id;
	__u32 k;

	if (argc == 1 && !strcmp(argv[0], "help")) {
		apply_help(json_output ? stderr : stdout);
		if (json_output)
			json_result(json_null());
		return 0;
	}
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--prune") || !strcmp(argv[i], "prune")) {
			if (prune) {
				p_err("'--prune' given twice");
				return -1;
			}
			prune = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			p_err("unknown option '%s'", argv[i]);
			return -1;
		} else if (file) {
			p_err("unexpected argument '%s'", argv[i]);
			return -1;
		} else {
			file = argv[i];
		}
	}
	if (!file) {
		p_err("missing FILE");
		apply_help(stderr);
		return -1;
	}
	buf = read_file(file, &len);
	if (!buf)
		return -1;
	err = spry_apply_parse_apps(buf, len, &specs, &n, &apps, &n_apps, msg, sizeof(msg));
	free(buf);
	if (err == -ENOMEM) {
		p_err("out of memory");
		return -1;
	}
	if (err) {
		p_err("%s: %s", file, msg);
		return -1;
	}
	/* Relative executables of run: are relative to the file. */
	if (strcmp(file, "-")) {
		if (!realpath(file, fpath)) {
			p_errno(-errno, "%s", file);
			goto out_specs;
		}
		base = dirname(fpath);
	}
	if (apps_resolve(apps, n_apps, base))
		goto out_specs;
	/* the capacity an app needs: its chain and its one function */
	all = calloc((size_t)n + n_apps + 1, sizeof(*all));
	if (!all) {
		p_err("out of memory");
		goto out_specs;
	}
	if (n)
		memcpy(all, specs, (size_t)n * sizeof(*all));
	for (i = 0; i < n_apps; i++) {
		snprintf(all[n + i].name, SPRY_NAME_LEN, "%s", apps[i].name);
		all[n + i].n_hops = 1;
		snprintf(all[n + i].hops[0], SPRY_NAME_LEN, "%s", SPRY_APP_FN);
	}
	if (maps_open(&m))
		goto out_specs;
	lock = pin_lock();
	if (lock < 0)
		goto out_maps;
	if (capacity_check(&m, all, n + n_apps))
		goto out_unlock;
	added = json_array();
	pruned = json_array();
	if (!added || !pruned) {
		p_err("out of memory");
		goto out_unlock;
	}
	for (i = 0; i < n; i++) {
		err = spry_chain__lookup(&m, specs[i].name, NULL, NULL);
		if (err && err != -ENOENT) {
			p_errno(err, "cannot read chains");
			goto out_unlock;
		}
		existed = !err;
		err = spry_chain__add(&m, &specs[i], &id);
		if (err) {
			p_errno(err, "cannot add chain '%s' (%d of %d applied)",
				specs[i].name, i, n);
			goto out_unlock;
		}
		if (decls_store(specs[i].name, &specs[i].decls, base))
			goto out_unlock;
		if (!json_output)
			printf("chain %s %s (id %u)\n", specs[i].name,
			       existed ? "replaced" : "added", id);
		if (jappend(added, json_pack("{s:s,s:i,s:b}", "name", specs[i].name,
					     "id", id, "replaced", existed)))
			goto out_unlock;
	}
	for (i = 0; i < n_apps; i++) {
		err = spry_chain__lookup(&m, apps[i].name, NULL, NULL);
		existed = !err;
		if (app_store(&m, &apps[i], &id))
			goto out_unlock;
		if (!json_output)
			printf("app %s %s (id %u)\n", apps[i].name, existed ? "replaced" : "added", id);
		if (jappend(added, json_pack("{s:s,s:i,s:b,s:b}", "name", apps[i].name, "id", id,
					     "replaced", existed, "app", 1)))
			goto out_unlock;
	}
	for (k = 1; prune && k < SPRY_MAX_CHAINS; k++) {
		err = spry_chain__get(&m, k, &c);
		if (err == -ENOENT)
			continue;
		if (err) {
			p_errno(err, "cannot read chains");
			goto out_unlock;
		}
		c.name[SPRY_NAME_LEN - 1] = '\0';
		for (i = 0; i < n + n_apps; i++)
			if (!strcmp(all[i].name, c.name))
				break;
		if (i < n + n_apps)
			continue;
		if (c.flags & SPRY_CF_APP) {
			char adir[PATH_MAX];

			if (decl_dir(ddir, sizeof(ddir)) || spry_app_dir(ddir, adir, sizeof(adir)) ||
			    spry_app__remove(adir, c.name))
				p_info("app %s: declaration not removed", c.name);
		}
		err = spry_chain__del(&m, c.name);
		if (err) {
			p_errno(err, "cannot delete chain '%s'", c.name);
			goto out_unlock;
		}
		if (decl_dir(ddir, sizeof(ddir)) || spry_decls__remove(ddir, c.name))
			p_info("declarations of chain %s: not removed", c.name);
		if (!json_output)
			printf("chain %s deleted (pruned)\n", c.name);
		if (jappend(pruned, json_string(c.name)))
			goto out_unlock;
	}
	if (json_output) {
		o = json_object();
		if (!o || jset(o, "file", json_string(file)))
			goto out_unlock;
		if (jset(o, "chains", added)) {
			added = NULL;
			goto out_unlock;
		}
		added = NULL;
		if (jset(o, "pruned", pruned)) {
			pruned = NULL;
			goto out_unlock;
		}
		pruned = NULL;
		json_result(o);
		o = NULL;
	}
	ret = 0;
out_unlock:
	json_decref(o);
	json_decref(added);
	json_decref(pruned);
	spry_pin_unlock(lock);
out_maps:
	spry_maps__close(&m);
out_specs:
	free(all);
	free(apps);
	free(specs);
	return ret;
}
