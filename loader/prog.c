// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry load / spry unload: the router program and its pinned maps.
 *
 * load pins every map by name (LIBBPF_PIN_BY_NAME under the pin
 * directory, reusing maps already pinned there) and the SK_MSG program as
 * SPRY_PROG_SKMSG, then attaches the program to the socket map, which
 * holds the attachment from then on.  unload undoes exactly that.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader/main.h"
#include "skmsg_route.skel.h"

/*
 * Whether a complete load is already in place: 1 yes, 0 no (load it),
 * -1 error.  A complete set of pins whose program is not attached to the
 * socket map any more gets it attached again.
 */
static int loaded(bool *reattached)
{
	struct bpf_prog_info info;
	__u32 ids[8], cnt = 8, flags = 0, len = sizeof(info), i;
	struct spry_maps m;
	char path[PATH_MAX];
	int fd, ret = 0;

	*reattached = false;
	if (pin_path(path, sizeof(path), SPRY_PROG_SKMSG))
		return -1;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (spry_maps__open(&m, pin_dir))
		goto out_prog;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		ret = p_errno(-errno, "cannot inspect %s", path);
		goto out_maps;
	}
	if (bpf_prog_query(m.socks, BPF_SK_MSG_VERDICT, 0, &flags, ids, &cnt)) {
		/* Kernels without the query: trust the pins. */
		ret = errno == EINVAL ? 1 : p_errno(-errno, "cannot query %s",
						     SPRY_STR(SPRY_MAP_SOCKS));
		goto out_maps;
	}
	for (i = 0; i < cnt && i < 8; i++) {
		if (ids[i] == info.id) {
			ret = 1;
			goto out_maps;
		}
	}
	if (bpf_prog_attach(fd, m.socks, BPF_SK_MSG_VERDICT, 0)) {
		ret = p_errno(-errno, "cannot attach %s to %s", path,
			      SPRY_STR(SPRY_MAP_SOCKS));
		goto out_maps;
	}
	*reattached = true;
	ret = 1;
out_maps:
	spry_maps__close(&m);
out_prog:
	close(fd);
	return ret;
}

static void load_help(FILE *f)
{
	fprintf(f,
		"Usage: spry load\n"
		"\n"
		"Load the router (SK_MSG program skmsg_route), pin its maps and the\n"
		"program in the pin directory (created with mode 0700; bpffs is\n"
		"mounted on /sys/fs/bpf if it is not), and attach the program to\n"
		"the %s map.  Loading again is a no-op.\n",
		SPRY_STR(SPRY_MAP_SOCKS));
}

static void unload_help(FILE *f)
{
	fprintf(f,
		"Usage: spry unload\n"
		"\n"
		"Detach the router from the %s map, remove every pin 'spry load'\n"
		"made and the pin directory.  Fails when spry is not loaded there.\n"
		"The XDP ingress links of 'spry ingress attach' are detached and\n"
		"their program and maps unpinned too, and so are the cgroup links,\n"
		"programs, maps and rules of 'spry mesh' (connections it accelerates\n"
		"stay accelerated until they close).\n"
		"Running functions and spryd keep the maps they hold open.\n",
		SPRY_STR(SPRY_MAP_SOCKS));
}

static int single_help(int argc, char **argv, void (*help)(FILE *f))
{
	if (argc == 1 && !strcmp(argv[0], "help")) {
		help(json_output ? stderr : stdout);
		if (json_output)
			json_result(json_null());
		return 1;
	}
	if (argc) {
		p_err("unexpected argument '%s'", argv[0]);
		help(stderr);
		return -1;
	}
	return 0;
}

static int load_result(bool already)
{
	json_t *o;

	if (!json_output) {
		if (already)
			printf("spry is already loaded in %s\n", pin_dir);
		else
			printf("loaded %s, pinned in %s\n", SPRY_PROG_SKMSG, pin_dir);
		return 0;
	}
	o = json_object();
	if (!o || jset(o, "pin_dir", json_string(pin_dir)) ||
	    jset(o, "loaded", json_true()) ||
	    jset(o, "already", json_boolean(already))) {
		json_decref(o);
		return -1;
	}
	json_result(o);
	return 0;
}

int do_load(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	bool had_map[SPRY_N_MAPS], had_dir, pinned_prog = false, reattached;
	struct bpf_program *prog = NULL, *p;
	struct skmsg_route *skel = NULL;
	char path[PATH_MAX];
	int i, err, lock, ret = -1;

	err = single_help(argc, argv, load_help);
	if (err)
		return err > 0 ? 0 : -1;

	had_dir = pin_dir_exists();
	if (pin_dir_prepare())
		return -1;
	lock = pin_lock();
	if (lock < 0)
		goto out_dir;
	err = loaded(&reattached);
	if (err < 0)
		goto out_unlock;
	if (err) {
		if (reattached)
			p_info("note: %s was not attached to %s: attached it again",
			       SPRY_PROG_SKMSG, SPRY_STR(SPRY_MAP_SOCKS));
		ret = load_result(true);
		goto out_unlock;
	}
	for (i = 0; i < SPRY_N_MAPS; i++)
		had_map[i] = pin_exists(spry_map_pin_names[i]);

	opts.pin_root_path = pin_dir;
	skel = skmsg_route__open_opts(&opts);
	if (!skel) {
		p_errno(-errno, "cannot open the router object");
		goto out_unlock;
	}
	err = skmsg_route__load(skel);
	if (err) {
		p_errno(err, "cannot load the router (pinned maps of another version in %s? 'spry unload' first)",
			pin_dir);
		goto out_unpin;
	}
	bpf_object__for_each_program(p, skel->obj) {
		if (bpf_program__type(p) != BPF_PROG_TYPE_SK_MSG)
			continue;
		if (prog) {
			p_err("the router object has more than one SK_MSG program");
			goto out_unpin;
		}
		prog = p;
	}
	if (!prog) {
		p_err("the router object has no SK_MSG program");
		goto out_unpin;
	}
	if (pin_path(path, sizeof(path), SPRY_PROG_SKMSG))
		goto out_unpin;
	/* A program pin without its maps is a leftover: replace it. */
	if (pin_remove(SPRY_PROG_SKMSG) < 0)
		goto out_unpin;
	err = bpf_program__pin(prog, path);
	if (err) {
		p_errno(err, "cannot pin the router as %s", path);
		goto out_unpin;
	}
	pinned_prog = true;
	err = bpf_prog_attach(bpf_program__fd(prog),
			      bpf_map__fd(skel->maps.SPRY_MAP_SOCKS),
			      BPF_SK_MSG_VERDICT, 0);
	if (err) {
		p_errno(-errno, "cannot attach the router to %s",
			SPRY_STR(SPRY_MAP_SOCKS));
		goto out_unpin;
	}
	if (chmod(pin_dir, 0700)) {
		p_errno(-errno, "cannot chmod %s", pin_dir);
		goto out_detach;
	}
	ret = load_result(false);
	if (ret)
		goto out_detach;
	goto out_destroy;

out_detach:
	bpf_prog_detach2(bpf_program__fd(prog),
			 bpf_map__fd(skel->maps.SPRY_MAP_SOCKS),
			 BPF_SK_MSG_VERDICT);
out_unpin:
	/* Leave the directory as it was: only what this load added goes. */
	if (pinned_prog)
		pin_remove(SPRY_PROG_SKMSG);
	for (i = 0; i < SPRY_N_MAPS; i++)
		if (!had_map[i])
			pin_remove(spry_map_pin_names[i]);
out_destroy:
	skmsg_route__destroy(skel);
out_unlock:
	spry_pin_unlock(lock);
out_dir:
	if (ret)
		pin_dir_undo(had_dir);
	return ret;
}

int do_unload(int argc, char **argv)
{
	char path[PATH_MAX];
	int i, err, lock, prog_fd, map_fd, removed = 0, ret = 0;
	bool any = false;
	json_t *o;

	err = single_help(argc, argv, unload_help);
	if (err)
		return err > 0 ? 0 : -1;

	any = pin_exists(SPRY_PROG_SKMSG);
	for (i = 0; i < SPRY_N_MAPS; i++)
		any |= pin_exists(spry_map_pin_names[i]);
	any |= mesh_loaded();
	if (!any) {
		p_err("spry is not loaded in %s", pin_dir);
		return -1;
	}
	lock = pin_lock();
	if (lock < 0)
		return -1;

	if (pin_path(path, sizeof(path), SPRY_PROG_SKMSG)) {
		ret = -1;
		goto out;
	}
	prog_fd = bpf_obj_get(path);
	if (pin_path(path, sizeof(path), SPRY_STR(SPRY_MAP_SOCKS))) {
		ret = -1;
		goto out_prog;
	}
	map_fd = bpf_obj_get(path);
	if (prog_fd >= 0 && map_fd >= 0 &&
	    bpf_prog_detach2(prog_fd, map_fd, BPF_SK_MSG_VERDICT) &&
	    errno != ENOENT) {
		p_errno(-errno, "cannot detach the router from %s",
			SPRY_STR(SPRY_MAP_SOCKS));
		ret = -1;
	}
	if (map_fd >= 0)
		close(map_fd);
out_prog:
	if (prog_fd >= 0)
		close(prog_fd);
	if (ret)
		goto out;

	/* What 'spry ingress attach' made: its links, program and maps. */
	err = ingress_remove_all();
	if (err < 0) {
		ret = -1;
		goto out;
	}
	removed += err;
	/* What 'spry mesh' made: cgroup links, programs, maps and rules. */
	err = mesh_remove_all();
	if (err < 0) {
		ret = -1;
		goto out;
	}
	removed += err;
	err = pin_remove(SPRY_PROG_SKMSG);
	if (err < 0)
		ret = -1;
	removed += err > 0;
	err = pins_remove(spry_map_pin_names, SPRY_N_MAPS);
	if (err < 0)
		ret = -1;
	else
		removed += err;
out:
	spry_pin_unlock(lock);
	if (ret)
		return ret;
	if (rmdir(pin_dir)) {
		p_errno(-errno, "removed %d pins but cannot remove %s", removed,
			pin_dir);
		return -1;
	}
	if (!json_output) {
		printf("unloaded, removed %d pins and %s\n", removed, pin_dir);
		return 0;
	}
	o = json_object();
	if (!o || jset(o, "pin_dir", json_string(pin_dir)) ||
	    jset(o, "unloaded", json_true()) ||
	    jset(o, "removed_pins", json_integer(removed))) {
		json_decref(o);
		return -1;
	}
	json_result(o);
	return 0;
}
