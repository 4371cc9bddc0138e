// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry_apply_parse(): the YAML chain file parser of `spry apply`, without
 * any map.  A good file gives the expected specs; every bad one gives
 * -EINVAL and a reason naming the right line.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "lib/app.h"
#include "loader/apply.h"
#include "selftests/tap.h"

static const char good[] =
	"# a comment\n"
	"chains:\n"
	"  - name: demo\n"
	"    user: root\n"
	"    hops: [upper, reverse]\n"
	"    functions: [helper]\n"
	"    calls: [{from: upper, to: helper}, {from: helper, to: reverse}]\n"
	"    buffers: 1024\n"
	"    buffer-size: 4096\n"
	"    max-inflight: 256\n"
	"    deadline-ms: 5000\n"
	"    idempotent: [reverse]\n"
	"    cpus: 0-2,5,64\n"
	"  - name: count.v2\n"
	"    user: 4242\n"
	"    hops:\n"
	"      - word_count\n";

struct bad {
	const char	*what;
	const char	*yaml;
	const char	*expect;	/* substring of the reason */
};

#define CHAIN	"chains:\n  - name: x\n"		/* lines 1-2 */

static const struct bad bads[] = {
	{ "empty input", "", "empty" },
	{ "root is a list", "- a\n", "expected a mapping" },
	{ "unknown top-level key", "chain: []\n", "line 1: unknown key 'chain'" },
	{ "chains is a mapping", "chains: {a: b}\n", "line 1: chains: expected a list" },
	{ "unknown chain key", CHAIN "    hops: [a]\n    bufers: 3\n", "line 4: unknown key 'bufers'" },
	{ "duplicate key", CHAIN "    hops: [a]\n    hops: [b]\n", "line 4: 'hops' given twice" },
	{ "missing hops", CHAIN "    user: root\n", "line 2: chain 'x' without 'hops'" },
	{ "missing name", "chains:\n  - hops: [a]\n", "line 2: chain without 'name'" },
	{ "empty hops", CHAIN "    hops: []\n", "line 3: hops: at least one" },
	{ "hops is a scalar", CHAIN "    hops: a\n", "line 3: hops: expected a list" },
	{ "duplicate hop", CHAIN "    hops: [a, b, a]\n", "line 3: hops: 'a' listed twice" },
	{ "too many hops", CHAIN "    hops: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n",
	  "more than 16" },
	{ "name too long", CHAIN "    hops: [abcdefghijklmnopqrstuvwxyz0123456789]\n",
	  "line 3: hops: name" },
	{ "bad characters", CHAIN "    hops: [\"a b\"]\n", "line 3: hops: invalid name" },
	{ "reserved name", CHAIN "    hops: [origin]\n", "line 3: hops: 'origin' is reserved" },
	{ "function that is a hop", CHAIN "    hops: [a]\n    functions: [a]\n",
	  "line 4: functions: 'a' is already a hop" },
	{ "run: not a mapping", CHAIN "    hops: [a]\n    run: [a]\n", "line 4: run: expected a mapping" },
	{ "run: unknown function", CHAIN "    hops: [a]\n    run: {b: {exec: /x}}\n",
	  "line 4: run: 'b' is not a function of chain 'x'" },
	{ "run: missing exec", CHAIN "    hops: [a]\n    run: {a: {min: 1}}\n", "missing 'exec'" },
	{ "run: unknown key", CHAIN "    hops: [a]\n    run: {a: {exec: /x, mni: 1}}\n",
	  "unknown key 'mni'" },
	{ "run: min above max", CHAIN "    hops: [a]\n    run: {a: {exec: /x, min: 3, max: 2}}\n",
	  "min 3 is above max 2" },
	{ "run: max 0", CHAIN "    hops: [a]\n    run: {a: {exec: /x, max: 0}}\n",
	  "max: 0 out of range 1..32" },
	{ "run: max 33", CHAIN "    hops: [a]\n    run: {a: {exec: /x, max: 33}}\n",
	  "max: 33 out of range" },
	{ "run: target 0", CHAIN "    hops: [a]\n    run: {a: {exec: /x, target: 0}}\n",
	  "target: 0 out of range" },
	{ "run: bad idle", CHAIN "    hops: [a]\n    run: {a: {exec: /x, idle: 1s}}\n",
	  "idle: '1s' is not a time" },
	{ "run: args not a list", CHAIN "    hops: [a]\n    run: {a: {exec: /x, args: -q}}\n",
	  "args: expected a list" },
	{ "run: bad cpus", CHAIN "    hops: [a]\n    run: {a: {exec: /x, cpus: 999}}\n", "999" },
	{ "queue 0", CHAIN "    hops: [a]\n    queue: 0\n", "queue: 0 out of range" },
	{ "call to a stranger", CHAIN "    hops: [a]\n    calls: [{from: a, to: b}]\n",
	  "line 4: calls: 'b' is not a function" },
	{ "call without to", CHAIN "    hops: [a]\n    calls: [{from: a}]\n",
	  "line 4: calls: missing 'to'" },
	{ "call with extra key", CHAIN "    hops: [a, b]\n    calls: [{from: a, to: b, via: c}]\n",
	  "line 4: calls: unknown key 'via'" },
	{ "duplicate call", CHAIN "    hops: [a, b]\n    calls: [{from: a, to: b}, {from: a, to: b}]\n",
	  "listed twice" },
	{ "idempotent non-hop", CHAIN "    hops: [a]\n    functions: [h]\n    idempotent: [h]\n",
	  "line 5: idempotent: 'h' is not a hop" },
	{ "number with junk", CHAIN "    hops: [a]\n    buffers: 12x\n",
	  "line 4: buffers: '12x' is not a decimal number" },
	{ "negative number", CHAIN "    hops: [a]\n    deadline-ms: -5\n",
	  "line 4: deadline-ms: '-5' is negative" },
	{ "overflow", CHAIN "    hops: [a]\n    max-inflight: 99999999999999999999999\n",
	  "line 4: max-inflight:" },
	{ "above range", CHAIN "    hops: [a]\n    max-inflight: 65537\n", "out of range" },
	{ "below range", CHAIN "    hops: [a]\n    buffer-size: 63\n", "out of range" },
	{ "zero buffers", CHAIN "    hops: [a]\n    buffers: 0\n", "out of range" },
	{ "quoted number", CHAIN "    hops: [a]\n    buffers: \"12\"\n", "quoted" },
	{ "number as a list", CHAIN "    hops: [a]\n    buffers: [1]\n",
	  "line 4: buffers: expected a scalar" },
	{ "unknown user", CHAIN "    hops: [a]\n    user: no-such-user-spry\n",
	  "line 4: user: unknown user" },
	{ "duplicate chain", CHAIN "    hops: [a]\n  - name: x\n    hops: [b]\n",
	  "line 4: chain 'x' defined twice" },
	{ "cpus: empty", CHAIN "    hops: [a]\n    cpus: \"\"\n", "line 4: cpus '': empty list" },
	{ "cpus: not a list", CHAIN "    hops: [a]\n    cpus: first\n", "line 4: cpus 'first': expected a list" },
	{ "cpus: downward range", CHAIN "    hops: [a]\n    cpus: 3-1\n", "range must go upwards" },
	{ "cpus: past the last CPU", CHAIN "    hops: [a]\n    cpus: 0,256\n", "up to 255" },
	{ "cpus: trailing comma", CHAIN "    hops: [a]\n    cpus: \"1,\"\n", "expected a list" },
	{ "cpus: negative", CHAIN "    hops: [a]\n    cpus: -1\n", "expected a list" },
	{ "cpus: a sequence", CHAIN "    hops: [a]\n    cpus: [1, 2]\n", "line 4: cpus: expected a scalar" },
	{ "alias", "chains:\n  - &c {name: x, hops: [a]}\n  - *c\n", "aliases" },
	{ "two documents", "chains: []\n---\nchains: []\n", "more than one" },
	{ "syntax error", CHAIN "    hops: [a\n", "line 4" },
	{ "tab indentation", "chains:\n\t- name: x\n", "line 2" },
};

static bool has(const char *err, const char *want)
{
	return strstr(err, want) != NULL;
}

int main(void)
{
	struct spry_chain_spec *specs;
	char err[256], small[8];
	unsigned int i;
	int n, ret;


	ret = spry_apply_parse(good, strlen(good), &specs, &n, err, sizeof(err));
	if (!tap_ok(ret == 0 && n == 2, "good file: 2 chains (ret %d: %s)", ret,
		    ret ? err : "")) {
		tap_skip("good file: first chain", "no parse");
		tap_skip("good file: second chain", "no parse");
	} else {
		const struct spry_chain_spec *d = &specs[0], *c = &specs[1];

		tap_ok(!strcmp(d->name, "demo") && d->uid == 0 && d->n_hops == 2 &&
		       !strcmp(d->hops[0], "upper") && !strcmp(d->hops[1], "reverse") &&
		       d->n_extra == 1 && !strcmp(d->extra[0], "helper") &&
		       d->n_allow == 2 && !strcmp(d->allow[0][0], "upper") &&
		       !strcmp(d->allow[0][1], "helper") &&
		       !strcmp(d->allow[1][0], "helper") &&
		       !strcmp(d->allow[1][1], "reverse") &&
		       d->n_bufs == 1024 && d->buf_size == 4096 &&
		       d->max_inflight == 256 && d->deadline_ms == 5000 &&
		       d->idempotent_mask == 2 && d->cpus[0] == 0x27 && d->cpus[1] == 1 &&
		       !d->cpus[2] && !d->cpus[3],
		       "good file: first chain as written");
		tap_ok(!strcmp(c->name, "count.v2") && c->uid == 4242 &&
		       c->n_hops == 1 && !strcmp(c->hops[0], "word_count") &&
		       !c->n_extra && !c->n_allow && !c->n_bufs && !c->buf_size &&
		       !c->max_inflight && !c->deadline_ms && !c->idempotent_mask &&
		       !c->cpus[0] && !c->cpus[1] && !c->cpus[2] && !c->cpus[3] &&
		       !spry_chain_spec__check(c, NULL, 0),
		       "good file: second chain, defaults left 0");
	}
	free(specs);

	/* Declared functions: run: and queue: (lib/decl.h). */
	{
		static const char run[] =
			"chains:\n  - name: el\n    hops: [a, b]\n    queue: 64\n"
			"    run:\n"
			"      a: {exec: /bin/a, args: [--quiet, -x], min: 1, max: 3, target: 2,"
			" idle: 0.5, cpus: 1, user: root}\n"
			"      b: {exec: rel/b}\n";
		const struct spry_chain_decls *dc;

		ret = spry_apply_parse(run, strlen(run), &specs, &n, err, sizeof(err));
		dc = ret ? NULL : &specs[0].decls;
		tap_ok(dc && dc->queue == 64 && dc->n == 2 && !strcmp(dc->fns[0].fn, "a") &&
		       dc->fns[0].argc == 3 &&
		       !strcmp(spry_fn_decl__arg(&dc->fns[0], 0), "/bin/a") &&
		       !strcmp(spry_fn_decl__arg(&dc->fns[0], 2), "-x") &&
		       dc->fns[0].min == 1 && dc->fns[0].max == 3 && dc->fns[0].target == 2 &&
		       dc->fns[0].idle_ms == 500 && dc->fns[0].cpus[0] == 2 &&
		       dc->fns[0].has_uid && dc->fns[0].uid == 0,
		       "run: every field of a declared function (ret %d: %s)", ret,
		       ret ? err : "");
		tap_ok(dc && !strcmp(dc->fns[1].fn, "b") && dc->fns[1].argc == 1 &&
		       dc->fns[1].min == 0 && dc->fns[1].max == SPRY_DECL_DEF_MAX &&
		       dc->fns[1].target == SPRY_DECL_DEF_TARGET &&
		       dc->fns[1].idle_ms == SPRY_DECL_DEF_IDLE_MS && !dc->fns[1].has_uid,
		       "run: defaults; a relative exec is kept for the loader to resolve");
		free(specs);
	}

	/* Apps (lib/app.h, docs/PROCESS.md). */
	{
		static const char apps_yaml[] =
			"chains:\n  - name: c\n    hops: [a]\n"
			"apps:\n  - name: shop\n    functions: [cart, checkout]\n"
			"    exec: rel/shop\n    args: [--quiet]\n    user: root\n    max: 100\n"
			"    state-size: 262144\n    swap-dir: /var/swap\n    idle: 0\n"
			"    create: manual\n    next:\n      - {from: cart, to: checkout}\n"
			"  - name: two\n    functions: [f]\n    exec: /bin/two\n";
		static const struct {
			const char *name, *yaml, *want;
		} bad_apps[] = {
			{ "digits-only function", "apps:\n  - name: a\n    functions: [12]\n    exec: /x\n",
			  "line 3: functions: invalid name '12'" },
			{ "duplicate function", "apps:\n  - name: a\n    functions: [f, f]\n    exec: /x\n",
			  "functions: 'f' given twice" },
			{ "no functions", "apps:\n  - name: a\n    exec: /x\n", "missing 'functions'" },
			{ "no exec", "apps:\n  - name: a\n    functions: [f]\n", "missing 'exec'" },
			{ "max 0", "apps:\n  - name: a\n    functions: [f]\n    exec: /x\n    max: 0\n",
			  "max: 0 out of range" },
			{ "small state", "apps:\n  - name: a\n    functions: [f]\n    exec: /x\n"
			  "    state-size: 12\n", "state-size: '12'" },
			{ "relative swap-dir", "apps:\n  - name: a\n    functions: [f]\n    exec: /x\n"
			  "    swap-dir: rel\n", "swap-dir: 'rel' is not an absolute path" },
			{ "bad create", "apps:\n  - name: a\n    functions: [f]\n    exec: /x\n"
			  "    create: sometimes\n", "neither 'auto' nor 'manual'" },
			{ "unknown key", "apps:\n  - name: a\n    functions: [f]\n    exec: /x\n    fns: [g]\n",
			  "unknown key 'fns' in an app" },
			{ "app twice", "apps:\n  - {name: a, functions: [f], exec: /x}\n"
			  "  - {name: a, functions: [f], exec: /x}\n", "app 'a' defined twice" },
			{ "chain and app", "chains:\n  - {name: a, hops: [f]}\n"
			  "apps:\n  - {name: a, functions: [f], exec: /x}\n", "both a chain and an app" },
			{ "apps not a list", "apps: {name: a}\n", "apps: expected a list" },
			{ "next unknown", "apps:\n  - name: a\n    functions: [f, g]\n    exec: /x\n"
			  "    next:\n      - {from: f, to: h}\n",
			  "line 6: next: 'h' is not a function of app 'a'" },
			{ "next twice", "apps:\n  - name: a\n    functions: [f, g]\n    exec: /x\n"
			  "    next:\n      - {from: f, to: g}\n      - {from: f, to: g}\n",
			  "line 7: next: f -> g listed twice" },
			{ "next without to", "apps:\n  - name: a\n    functions: [f, g]\n    exec: /x\n"
			  "    next:\n      - {from: f}\n", "next: missing 'to'" },
			{ "next not a list", "apps:\n  - name: a\n    functions: [f, g]\n    exec: /x\n"
			  "    next: f:g\n", "next: expected a list" },
		};
		struct spry_app_decl *apps = NULL;
		int n_apps = 0;

		ret = spry_apply_parse_apps(apps_yaml, strlen(apps_yaml), &specs, &n, &apps,
					    &n_apps, err, sizeof(err));
		tap_ok(ret == 0 && n == 1 && n_apps == 2 && !strcmp(apps[0].name, "shop") &&
		       apps[0].n_fns == 2 && !strcmp(apps[0].fns[1], "checkout") &&
		       apps[0].argc == 2 && !strcmp(spry_app_decl__arg(&apps[0], 0), "rel/shop") &&
		       !strcmp(spry_app_decl__arg(&apps[0], 1), "--quiet") &&
		       apps[0].has_uid && apps[0].uid == 0 && apps[0].max_procs == 100 &&
		       apps[0].state_size == 262144 && !strcmp(apps[0].swap_dir, "/var/swap") &&
		       apps[0].idle_ms == 0 && !apps[0].autocreate && apps[0].n_next == 1 &&
		       !strcmp(apps[0].next[0][0], "cart") && !strcmp(apps[0].next[0][1], "checkout"),
		       "apps: every field of an app (ret %d: %s)", ret, ret ? err : "");
		tap_ok(ret == 0 && n_apps == 2 && apps[1].max_procs == SPRY_APP_DEF_MAX &&
		       apps[1].state_size == SPRY_APP_DEF_STATE &&
		       apps[1].idle_ms == SPRY_APP_DEF_IDLE_MS && apps[1].autocreate &&
		       !apps[1].has_uid && !spry_app_decl__check(&apps[1], NULL, 0),
		       "apps: defaults, and the app passes the check");
		free(specs);
		free(apps);
		static const char only[] = "apps:\n  - {name: a, functions: [f], exec: /x}\n";

		ret = spry_apply_parse(only, strlen(only), &specs, &n, err, sizeof(err));
		tap_ok(ret == 0 && n == 0, "a file of apps only: no chains (ret %d: %s)", ret,
		       ret ? err : "");
		free(specs);
		for (i = 0; i < sizeof(bad_apps) / sizeof(bad_apps[0]); i++) {
			apps = NULL;
			ret = spry_apply_parse_apps(bad_apps[i].yaml, strlen(bad_apps[i].yaml),
						    &specs, &n, &apps, &n_apps, err, sizeof(err));
			tap_ok(ret == -EINVAL && !specs && !apps && has(err, bad_apps[i].want),
			       "apps: %s refused: %s", bad_apps[i].name, err);
		}
	}

	/* An app's nexts (docs/WORKFLOWS.md): the graph, and its file. */
	{
		static const struct {
			const char *name, *pairs[4][2], *want;
		} graphs[] = {
			{ "a chain of picks", { { "a", "b" }, { "b", "c" }, { "a", "c" } }, NULL },
			{ "itself", { { "a", "a" } }, "cannot pick itself" },
			{ "a loop of two", { { "a", "b" }, { "b", "a" } }, "next b:a closes a loop" },
			{ "a loop of three", { { "a", "b" }, { "c", "a" }, { "b", "c" } },
			  "next b:c closes a loop" },
			{ "not a function", { { "a", "d" } }, "'d' is not a function of the app" },
			{ "twice", { { "a", "b" }, { "a", "b" } }, "listed twice" },
		};
		struct spry_app_decl *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
		char dir[] = "/tmp/spry-test-apply-XXXXXX";
		unsigned int g, k;
		int e;

		if (!a || !b || !mkdtemp(dir))
			tap_bail_out("setup: %s", strerror(errno));
		for (g = 0; g < sizeof(graphs) / sizeof(graphs[0]); g++) {
			spry_app_decl__init(a);
			snprintf(a->name, sizeof(a->name), "x");
			spry_app_decl__add_fn(a, "a");
			spry_app_decl__add_fn(a, "b");
			spry_app_decl__add_fn(a, "c");
			spry_app_decl__add_arg(a, "/bin/x");
			for (k = 0; k < 4 && graphs[g].pairs[k][0]; k++)
				spry_app_decl__add_next(a, graphs[g].pairs[k][0], graphs[g].pairs[k][1]);
			err[0] = '\0';
			e = spry_app_decl__check(a, err, sizeof(err));
			tap_ok(graphs[g].want ? e == -EINVAL && has(err, graphs[g].want) : !e,
			       "app next: %s: %s (%s)", graphs[g].name,
			       graphs[g].want ? "refused" : "accepted", e ? err : "ok");
		}
		/* the accepted one through its file and back, field for field */
		spry_app_decl__init(a);
		snprintf(a->name, sizeof(a->name), "x");
		spry_app_decl__add_fn(a, "a");
		spry_app_decl__add_fn(a, "b");
		spry_app_decl__add_arg(a, "/bin/x");
		spry_app_decl__add_next(a, "a", "b");
		e = spry_app__write(dir, a);
		e = e ?: spry_app__read(dir, "x", b, err, sizeof(err));
		tap_ok(!e && !memcmp(a, b, sizeof(*a)) && b->n_next == 1,
		       "app next: written and read back the same (%d: %s)", e, e ? err : "");
		e = spry_app_decl__add_next(a, "0123456789012345678901234567890123", "b");
		tap_ok(e == -EINVAL, "app next: a name too long: -EINVAL (%d)", e);
		for (k = a->n_next; k < SPRY_APP_MAX_NEXT; k++)
			spry_app_decl__add_next(a, "a", "b");
		e = spry_app_decl__add_next(a, "a", "b");
		tap_ok(e == -E2BIG, "app next: one past %d: -E2BIG (%d)", SPRY_APP_MAX_NEXT, e);
		spry_app__remove(dir, "x");
		rmdir(dir);
		free(a);
		free(b);
	}

	ret = spry_apply_parse("chains: []\n", 11, &specs, &n, err, sizeof(err));
	tap_ok(ret == 0 && n == 0 && !specs, "chains: [] is an empty list");
	ret = spry_apply_parse("chains:\n", 8, &specs, &n, err, sizeof(err));
	tap_ok(ret == 0 && n == 0 && !specs, "chains: with nothing is an empty list");

	/* The buffer need not be NUL-terminated: only @len bytes count. */
	ret = spry_apply_parse("chains: []junk", 10, &specs, &n, err, sizeof(err));
	tap_ok(ret == 0 && n == 0, "only len bytes are parsed");

	ret = spry_apply_parse("chains: [{name: x, hops: [a]}]\0x: 1", 36, &specs, &n,
			       err, sizeof(err));
	tap_ok(ret == -EINVAL && !specs && n == 0, "a NUL byte in the input is an error");

	/* A short error buffer truncates, never overflows. */
	ret = spry_apply_parse("chains: 3\n", 10, &specs, &n, small, sizeof(small));
	tap_ok(ret == -EINVAL && strlen(small) == sizeof(small) - 1,
	       "short error buffer: truncated reason");
	ret = spry_apply_parse("chains: 3\n", 10, &specs, &n, NULL, 0);
	tap_ok(ret == -EINVAL, "no error buffer at all");

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		err[0] = '\0';
		ret = spry_apply_parse(bads[i].yaml, strlen(bads[i].yaml), &specs, &n,
				       err, sizeof(err));
		if (!tap_ok(ret == -EINVAL && !specs && !n && has(err, bads[i].expect),
			    "rejects %s", bads[i].what))
			tap_diag("ret %d, reason '%s', expected '%s'", ret, err,
				 bads[i].expect);
		free(specs);
	}
	return tap_finish();
}
