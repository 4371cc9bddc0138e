// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry mesh { show | attach | detach | allow | deny | del | set | help }:
 * sockmap acceleration of plain local TCP (bpf/mesh.c, docs/MESH.md).
 *
 * Pins, all in the pin directory (no 'spry load' needed; 'spry unload'
 * removes them with the rest):
 *   spry_mesh_socks spry_mesh_conn spry_mesh_psocks spry_mesh_ports spry_mesh_pol4
 *   spry_mesh_pol6 spry_mesh_cgroups spry_mesh_config spry_mesh_stats
 *                      the maps (LIBBPF_PIN_BY_NAME)
 *   mesh_sockops mesh_msg mesh_skb
 *                      the programs; mesh_msg and mesh_skb are attached to
 *                      spry_mesh_socks, which holds the attachment
 *   mesh_link_<CGROUP_ID>
 *                      one bpf_link per attached cgroup (BPF_CGROUP_SOCK_OPS)
 *
 * The object is loaded by the first command that needs its maps (attach,
 * or a rule), so rules can be written before any cgroup is attached.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <mntent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "loader/main.h"
#include "bpf/mesh.h"
#include "mesh.skel.h"

enum mmap_id { MM_SOCKS, MM_CONN, MM_PSOCKS, MM_RX, MM_PORTS, MM_POL4, MM_POL6, MM_CGROUPS, MM_CONFIG,
	       MM_STATS, MM_N };

static const char *const mmap_names[MM_N] = {
	[MM_SOCKS]	= SPRY_STR(SPRY_MAP_MESH_SOCKS),
	[MM_CONN]	= SPRY_STR(SPRY_MAP_MESH_CONN),
	[MM_PSOCKS]	= SPRY_STR(SPRY_MAP_MESH_PSOCKS),
	[MM_RX]		= SPRY_STR(SPRY_MAP_MESH_RX),
	[MM_PORTS]	= SPRY_STR(SPRY_MAP_MESH_PORTS),
	[MM_POL4]	= SPRY_STR(SPRY_MAP_MESH_POL4),
	[MM_POL6]	= SPRY_STR(SPRY_MAP_MESH_POL6),
	[MM_CGROUPS]	= SPRY_STR(SPRY_MAP_MESH_CGROUPS),
	[MM_CONFIG]	= SPRY_STR(SPRY_MAP_MESH_CONFIG),
	[MM_STATS]	= SPRY_STR(SPRY_MAP_MESH_STATS),
};

/* key and value sizes the pinned maps must have (bpf/mesh.h) */
static const __u32 mmap_sizes[MM_N][2] = {
	[MM_SOCKS]	= { sizeof(struct spry_mesh_key), sizeof(__u64) },
	[MM_CONN]	= { sizeof(int), sizeof(struct spry_mesh_conn) },
	[MM_PSOCKS]	= { sizeof(struct spry_mesh_key), sizeof(struct spry_mesh_psock) },
	[MM_RX]		= { sizeof(__u64), sizeof(struct spry_mesh_rx) },
	[MM_PORTS]	= { sizeof(__u32), sizeof(struct spry_mesh_rule) },
	[MM_POL4]	= { sizeof(struct spry_mesh_pol4_key), sizeof(struct spry_mesh_rule) },
	[MM_POL6]	= { sizeof(struct spry_mesh_pol6_key), sizeof(struct spry_mesh_rule) },
	[MM_CGROUPS]	= { sizeof(__u64), sizeof(struct spry_mesh_rule) },
	[MM_CONFIG]	= { sizeof(__u32), sizeof(struct spry_mesh_config) },
	[MM_STATS]	= { sizeof(__u32), sizeof(__u64) },
};

enum mprog_id { MP_SOCKOPS, MP_MSG, MP_SKB, MP_N };

static const char *const mprog_names[MP_N] = {
	[MP_SOCKOPS]	= SPRY_PROG_MESH_SOCKOPS,
	[MP_MSG]	= SPRY_PROG_MESH_MSG,
	[MP_SKB]	= SPRY_PROG_MESH_SKB,
};

static const char *const mstat_names[SPRY_MESH_S_MAX] = {
	[SPRY_MESH_S_INSERTED]		= "inserted",
	[SPRY_MESH_S_INSERT_FAILED]	= "insert_failed",
	[SPRY_MESH_S_REFUSED_NOT_LOCAL]	= "refused_not_local",
	[SPRY_MESH_S_REFUSED_DENY]	= "refused_deny",
	[SPRY_MESH_S_REFUSED_DEFAULT]	= "refused_default",
	[SPRY_MESH_S_REFUSED_SENT]	= "refused_sent",
	[SPRY_MESH_S_REDIRECTED]	= "redirected",
	[SPRY_MESH_S_REDIRECTED_BYTES]	= "redirected_bytes",
	[SPRY_MESH_S_PASSED_BYTES]	= "passed_bytes",
	[SPRY_MESH_S_PASS_STATE]	= "pass_state",
	[SPRY_MESH_S_PASS_NO_PEER]	= "pass_no_peer",
	[SPRY_MESH_S_PASS_PEER_GONE]	= "pass_peer_gone",
	[SPRY_MESH_S_PASS_STALLED]	= "pass_stalled",
	[SPRY_MESH_S_PASS_NO_CONN]	= "pass_no_conn",
	[SPRY_MESH_S_FALLBACK_STALLED]	= "fallback_stalled",
	[SPRY_MESH_S_COMEBACK]		= "comeback",
	[SPRY_MESH_S_RX_OVERLAP]	= "rx_overlap",
	[SPRY_MESH_S_RX_UNORDERED]	= "rx_unordered",
};

static const char *const action_names[] = { "none", "allow", "deny", NULL };

static void mesh_help(FILE *f)
{
	fprintf(f,
		"Usage: spry mesh attach [cgroup PATH]\n"
		"       spry mesh detach [cgroup PATH]\n"
		"       spry mesh { allow | deny } RULE\n"
		"       spry mesh del RULE\n"
		"       spry mesh set [default { allow | deny }] [max-queued BYTES]\n"
		"       spry mesh show\n"
		"       spry mesh help\n"
		"RULE := { port PORT[-PORT] | prefix PREFIX | cgroup PATH }\n"
		"\n"
		"Accelerate local TCP between unmodified programs: a sock_ops program\n"
		"on the attached cgroups puts each established TCP connection whose\n"
		"two ends are local (loopback, or an allowed prefix) and allowed by\n"
		"the rules into a SOCKHASH; an SK_MSG program then moves what one end\n"
		"sends straight into its peer's receive queue (docs/MESH.md).\n"
		"attach loads the programs (once, pinned in the pin directory) and\n"
		"attaches the sock_ops program to the cgroup v2 PATH (default: the\n"
		"root of the cgroup2 mount) through a bpf_link pinned as\n"
		"%s<cgroup id>.  PATH is absolute, or relative to the cgroup2 mount.\n"
		"Only connections established afterwards, by sockets of processes in\n"
		"PATH or below, are accelerated.\n"
		"detach removes the cgroup's link (every link without cgroup).\n"
		"Connections already accelerated stay accelerated until they close:\n"
		"the kernel keeps the programs and map for them.  'spry unload'\n"
		"detaches every link and unpins the programs, maps and rules.\n"
		"Rules judge a connection once, when it is established, by the\n"
		"server's port and address and by the cgroup of each end (the\n"
		"nearest cgroup with a rule): a deny rule anywhere refuses, else an\n"
		"allow rule anywhere accepts, else the default (allow) decides.\n"
		"A non-loopback address needs an allow prefix rule.  Changes apply\n"
		"to new connections; refused connections are plain TCP.\n"
		"spry's own router sockets are loopback TCP too: keep spryd and its\n"
		"functions out of the mesh (attach to other cgroups, or deny theirs),\n"
		"else their registration fails (EBUSY).\n"
		"  port        server port or range, 1-65535\n"
		"  prefix      server address, IPv4 or IPv6 ADDRESS[/LEN]\n"
		"  cgroup      a cgroup v2 directory (and its descendants)\n"
		"  max-queued  unread redirected bytes a receiver may hold before its\n"
		"              peer's sends fall back to TCP (default %u; 0: default;\n"
		"              a receiver's own SO_RCVBUF bounds it too);\n"
		"              they come back once the reader has read every byte\n"
		"              sent by TCP (where the kernel allows: show says)\n",
		SPRY_MESH_LINK_PREFIX, SPRY_MESH_DEF_MAX_QUEUED);
}

static int do_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, mesh_help);
}

/* ------------------------------------------------------------ pins */

struct mesh_fds {
	int	map[MM_N];
	int	prog[MP_N];
};

static void mesh_fds_init(struct mesh_fds *f)
{
	int i;

	for (i = 0; i < MM_N; i++)
		f->map[i] = -1;
	for (i = 0; i < MP_N; i++)
		f->prog[i] = -1;
}

static void mesh_fds_close(struct mesh_fds *f)
{
	int i;

	for (i = 0; i < MM_N; i++)
		if (f->map[i] >= 0)
			close(f->map[i]);
	for (i = 0; i < MP_N; i++)
		if (f->prog[i] >= 0)
			close(f->prog[i]);
	mesh_fds_init(f);
}

/* Open every pinned map and program: 0, -ENOENT when any is missing, -EPROTO. */
static int mesh_open(struct mesh_fds *f)
{
	int i, fd;

	mesh_fds_init(f);
	for (i = 0; i < MM_N + MP_N; i++) {
		fd = i < MM_N ? pin_map_get(mmap_names[i], mmap_sizes[i][0], mmap_sizes[i][1]) :
				pin_get(mprog_names[i - MM_N]);
		if (fd < 0) {
			mesh_fds_close(f);
			return fd;
		}
		if (i < MM_N)
			f->map[i] = fd;
		else
			f->prog[i - MM_N] = fd;
	}
	return 0;
}

static int mesh_open_report(struct mesh_fds *f, int err)
{
	if (err == -ENOENT)
		p_err("spry mesh is not loaded in %s (run 'spry mesh attach')", pin_dir);
	else if (err == -EPROTO)
		p_err("the mesh maps pinned in %s do not match this spry ('spry unload' first)",
		      pin_dir);
	else if (err)
		p_errno(err, "cannot open the mesh pinned in %s", pin_dir);
	(void)f;
	return err ? -1 : 0;
}

/* Detach the programs from the socket map and unpin everything: pins removed. */
static int mesh_unpin_all(void)
{
	int progs, maps, map, prog;

	map = pin_get(mmap_names[MM_SOCKS]);
	if (map >= 0) {
		/* affects sockets added later only: live ones keep theirs */
		prog = pin_get(SPRY_PROG_MESH_MSG);
		if (prog >= 0) {
			bpf_prog_detach2(prog, map, BPF_SK_MSG_VERDICT);
			close(prog);
		}
		prog = pin_get(SPRY_PROG_MESH_SKB);
		if (prog >= 0) {
			bpf_prog_detach2(prog, map, BPF_SK_SKB_VERDICT);
			close(prog);
		}
		close(map);
	}
	progs = pins_remove(mprog_names, MP_N);
	maps = pins_remove(mmap_names, MM_N);
	return progs < 0 || maps < 0 ? -1 : progs + maps;
}

/* Whether struct @name of @btf has a member @member. */
static bool btf_has_member(const struct btf *btf, const char *name, const char *member)
{
	const struct btf_member *m;
	const struct btf_type *t;
	__s32 id;
	int i;

	id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	if (id <= 0)
		return false;
	t = btf__type_by_id(btf, id);
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		const char *n = btf__name_by_offset(btf, m->name_off);

		if (n && !strcmp(n, member))
			return true;
	}
	return false;
}

/*
 * Whether a stalled direction may come back to the redirect on this kernel
 * (bpf/mesh.c comeback_ok, docs/MESH.md "Ordering"): its proof needs a
 * mapped reader's tcp_sock.copied_seq to count only bytes its own TCP stack
 * received.  The kernel fix that made it so ("bpf, sockmap: Fix incorrect
 * copied_seq calculation", mainline b40cc5adaa80, in 6.18 stable since
 * February 2026) added __sk_msg_recvmsg; the program also reads these
 * sk_psock members.
 */
static bool mesh_comeback_supported(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool ok;

	if (!btf)
		return false;
	ok = btf__find_by_name_kind(btf, "__sk_msg_recvmsg", BTF_KIND_FUNC) > 0 &&
	     btf_has_member(btf, "sk_psock", "msg_tot_len") &&
	     btf_has_member(btf, "sk_psock", "ingress_msg") &&
	     btf_has_member(btf, "sk_psock", "ingress_skb") &&
	     btf_has_member(btf, "tcp_sock", "copied_seq") &&
	     btf_has_member(btf, "tcp_sock", "write_seq");
	btf__free(btf);
	return ok;
}

/*
 * Load and pin the object unless every pin is there: 0 (and @f open), or
 * -1 after p_err.  *@loaded_now tells whether this call loaded it.
 */
static int mesh_load(struct mesh_fds *f, bool *loaded_now)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct spry_mesh_config cfg = {
		.max_queued = SPRY_MESH_DEF_MAX_QUEUED,
		.def_action = SPRY_MESH_ALLOW,
	};
	struct bpf_program *progs[MP_N];
	bool had_map[MM_N];
	struct mesh *skel;
	char path[PATH_MAX];
	__u32 zero = 0;
	int i, err;

	*loaded_now = false;
	err = mesh_open(f);
	if (!err)
		return 0;
	if (err != -ENOENT)
		return mesh_open_report(f, err);
	if (pin_dir_prepare())
		return -1;
	for (i = 0; i < MM_N; i++)
		had_map[i] = pin_exists(mmap_names[i]);
	/* programs pinned without all their maps are leftovers */
	for (i = 0; i < MP_N; i++)
		if (pin_remove(mprog_names[i]) < 0)
			return -1;

	opts.pin_root_path = pin_dir;
	skel = mesh__open_opts(&opts);
	if (!skel)
		return p_errno(-errno, "cannot open the mesh object");
	skel->rodata->spry_mesh_comeback_ok = mesh_comeback_supported();
	err = mesh__load(skel);
	if (err) {
		p_errno(err, "cannot load the mesh programs (maps of another version in %s? 'spry unload' first)",
			pin_dir);
		goto err_unpin;
	}
	progs[MP_SOCKOPS] = skel->progs.mesh_sockops;
	progs[MP_MSG] = skel->progs.mesh_msg;
	progs[MP_SKB] = skel->progs.mesh_skb;
	/* the config of a fresh map: defaults, not zeros */
	if (!had_map[MM_CONFIG] &&
	    bpf_map_update_elem(bpf_map__fd(skel->maps.SPRY_MAP_MESH_CONFIG), &zero, &cfg, BPF_ANY)) {
		p_errno(-errno, "cannot write %s", mmap_names[MM_CONFIG]);
		goto err_unpin;
	}
	/* verdicts on the map before any socket can be inserted */
	if (bpf_prog_attach(bpf_program__fd(progs[MP_MSG]),
			    bpf_map__fd(skel->maps.SPRY_MAP_MESH_SOCKS), BPF_SK_MSG_VERDICT, 0) ||
	    bpf_prog_attach(bpf_program__fd(progs[MP_SKB]),
			    bpf_map__fd(skel->maps.SPRY_MAP_MESH_SOCKS), BPF_SK_SKB_VERDICT, 0)) {
		p_errno(-errno, "cannot attach the mesh verdicts to %s", mmap_names[MM_SOCKS]);
		goto err_unpin;
	}
	for (i = 0; i < MP_N; i++) {
		if (pin_path(path, sizeof(path), mprog_names[i]))
			goto err_unpin;
		err = bpf_program__pin(progs[i], path);
		if (err) {
			p_errno(err, "cannot pin %s", path);
			goto err_unpin;
		}
	}
	mesh__destroy(skel);
	*loaded_now = true;
	err = mesh_open(f);
	if (err)
		return mesh_open_report(f, err);
	return 0;

err_unpin:
	for (i = 0; i < MP_N; i++)
		pin_remove(mprog_names[i]);
	for (i = 0; i < MM_N; i++)
		if (!had_map[i])
			pin_remove(mmap_names[i]);
	mesh__destroy(skel);
	return -1;
}

/* ------------------------------------------------------------ cgroups */

/* The cgroup2 mount point (first in /proc/mounts) into @buf: 0 or -1 after p_err. */
static int cgroup2_root(char *buf, size_t len)
{
	struct mntent *me;
	FILE *f;
	int ret = -1;

	f = setmntent("/proc/mounts", "re");
	if (!f)
		return p_errno(-errno, "cannot read /proc/mounts");
	while ((me = getmntent(f))) {
		if (strcmp(me->mnt_type, "cgroup2"))
			continue;
		if (snprintf(buf, len, "%s", me->mnt_dir) < (int)len)
			ret = 0;
		break;
	}
	endmntent(f);
	if (ret)
		p_err("no cgroup2 file system mounted (mount -t cgroup2 none /sys/fs/cgroup)");
	return ret;
}

/*
 * Resolve cgroup @arg (NULL: the cgroup2 root; relative: under it) into
 * @path and its id: 0, or -1 after p_err.
 */
static int cgroup_resolve(const char *arg, char *path, size_t len, __u64 *id)
{
	char root[PATH_MAX];
	struct statfs sfs;
	struct stat st;
	int n;

	if (arg && !*arg) {
		p_err("empty cgroup path");
		return -1;
	}
	if (!arg || arg[0] != '/') {
		if (cgroup2_root(root, sizeof(root)))
			return -1;
		n = arg ? snprintf(path, len, "%s/%s", root, arg) :
			  snprintf(path, len, "%s", root);
	} else {
		n = snprintf(path, len, "%s", arg);
	}
	if (n >= (int)len) {
		p_err("cgroup path '%s' is too long", arg);
		return -1;
	}
	if (stat(path, &st))
		return p_errno(-errno, "cgroup %s", path);
	if (!S_ISDIR(st.st_mode) || statfs(path, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		p_err("%s is not a cgroup v2 directory", path);
		return -1;
	}
	/* a cgroup v2 directory's inode number is the cgroup id */
	*id = st.st_ino;
	return 0;
}

static __u64 find_id;
static char find_path[PATH_MAX];

static int find_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D && st->st_ino == find_id) {
		snprintf(find_path, sizeof(find_path), "%s", path);
		return 1;
	}
	return 0;
}

/* Path of the cgroup with id @id, or NULL (gone, or not under the mount). */
static const char *cgroup_path(__u64 id)
{
	char root[PATH_MAX];

	if (cgroup2_root(root, sizeof(root)))
		return NULL;
	find_id = id;
	find_path[0] = '\0';
	if (nftw(root, find_cb, 16, FTW_PHYS | FTW_MOUNT) != 1)
		return NULL;
	return find_path;
}

static void link_pin_name(char *buf, size_t len, __u64 id)
{
	snprintf(buf, len, SPRY_MESH_LINK_PREFIX "%llu", (unsigned long long)id);
}

/* A link pin's cgroup id into @elem (a __u64): 0, or -1 for another name. */
static int link_pin_take(const char *name, void *elem)
{
	size_t plen = strlen(SPRY_MESH_LINK_PREFIX);
	unsigned long long id;
	char *end;

	if (strncmp(name, SPRY_MESH_LINK_PREFIX, plen) || name[plen] < '1' || name[plen] > '9')
		return -1;
	errno = 0;
	id = strtoull(name + plen, &end, 10);
	if (errno || *end)
		return -1;
	*(__u64 *)elem = id;
	return 0;
}

/* Cgroup ids of the link pins of pin_dir; *n of them.  -1 after p_err. */
static int links_list(__u64 **out, size_t *n)
{
	return pins_collect(link_pin_take, sizeof(**out), (void **)out, n);
}

/* Detach and unpin the link of cgroup @id: 1 done, 0 absent, -1 after p_err. */
static int link_remove(__u64 id)
{
	char pin[64];

	link_pin_name(pin, sizeof(pin), id);
	return pin_link_remove(pin);
}

/* Detach every link: links removed, or -1 after p_err. */
static int links_remove_all(void)
{
	size_t i, n;
	__u64 *ids;
	int err, removed = 0, ret = 0;

	if (links_list(&ids, &n))
		return -1;
	for (i = 0; i < n; i++) {
		err = link_remove(ids[i]);
		if (err < 0)
			ret = -1;
		removed += err > 0;
	}
	free(ids);
	return ret ? -1 : removed;
}

int mesh_remove_all(void)
{
	int links, pins;

	links = links_remove_all();
	if (links < 0)
		return -1;
	pins = mesh_unpin_all();
	if (pins < 0)
		return -1;
	return links + pins;
}

bool mesh_loaded(void)
{
	size_t n = 0;
	__u64 *ids;
	int i;

	for (i = 0; i < MM_N; i++)
		if (pin_exists(mmap_names[i]))
			return true;
	for (i = 0; i < MP_N; i++)
		if (pin_exists(mprog_names[i]))
			return true;
	if (links_list(&ids, &n))
		return false;
	free(ids);
	return n > 0;
}

/* ------------------------------------------------------------ attach */

/*
 * The pin directory lock of a writing command; a command that fails (or
 * changes nothing) leaves no pin directory it created behind.
 */
static int mesh_lock(bool had_dir)
{
	int lock = pin_lock();

	if (lock < 0)
		pin_dir_undo(had_dir);
	return lock;
}

static void mesh_unlock(int lock, bool had_dir, bool undo)
{
	spry_pin_unlock(lock);
	if (undo)
		pin_dir_undo(had_dir);
}

static int cgroup_arg(int argc, char **argv, const char **cg)
{
	static const char *const kws[] = { "cgroup", NULL };
	const char *vals[1] = {};

	if (parse_keywords(argc, argv, kws, vals))
		return -1;
	*cg = vals[0];
	return 0;
}

static int do_attach(int argc, char **argv)
{
	char path[PATH_MAX], pin[64], lpath[PATH_MAX];
	bool loaded_now = false, already = false, had_dir = pin_dir_exists();
	struct mesh_fds f;
	const char *cg;
	int lock, cgfd = -1, link = -1, ret = -1;
	__u64 id;

	mesh_fds_init(&f);
	if (cgroup_arg(argc, argv, &cg) || cgroup_resolve(cg, path, sizeof(path), &id))
		return -1;
	if (pin_dir_prepare())
		return -1;
	lock = mesh_lock(had_dir);
	if (lock < 0)
		return -1;
	if (mesh_load(&f, &loaded_now))
		goto out;
	link_pin_name(pin, sizeof(pin), id);
	if (pin_path(lpath, sizeof(lpath), pin))
		goto out;
	if (pin_exists(pin)) {
		already = true;
	} else {
		cgfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgfd < 0) {
			p_errno(-errno, "cannot open %s", path);
			goto out;
		}
		link = bpf_link_create(f.prog[MP_SOCKOPS], cgfd, BPF_CGROUP_SOCK_OPS, NULL);
		if (link < 0) {
			p_errno(-errno, "cannot attach %s to %s", SPRY_PROG_MESH_SOCKOPS, path);
			goto out;
		}
		if (bpf_obj_pin(link, lpath)) {
			p_errno(-errno, "cannot pin the link as %s", lpath);
			goto out;
		}
	}
	if (json_output) {
		json_t *o = json_object();

		if (!o || jset(o, "cgroup", json_string(path)) ||
		    jset(o, "cgroup_id", json_integer(id)) ||
		    jset(o, "pin", json_string(pin)) ||
		    jset(o, "loaded", json_boolean(loaded_now)) ||
		    jset(o, "already", json_boolean(already))) {
			json_decref(o);
			goto out;
		}
		json_result(o);
	} else {
		printf("%s %s to cgroup %s (id %llu)%s\n", already ? "already attached" : "attached",
		       SPRY_PROG_MESH_SOCKOPS, path, (unsigned long long)id,
		       loaded_now ? ", programs and maps pinned" : "");
	}
	ret = 0;
out:
	if (link >= 0)
		close(link);
	if (cgfd >= 0)
		close(cgfd);
	mesh_fds_close(&f);
	mesh_unlock(lock, had_dir, ret);
	return ret;
}

static int do_detach(int argc, char **argv)
{
	bool had_dir = pin_dir_exists();
	char path[PATH_MAX];
	const char *cg;
	int lock, n, ret = -1;
	__u64 id = 0;

	if (cgroup_arg(argc, argv, &cg))
		return -1;
	if (cg && cgroup_resolve(cg, path, sizeof(path), &id))
		return -1;
	lock = mesh_lock(had_dir);
	if (lock < 0)
		return -1;
	if (cg) {
		n = link_remove(id);
		if (n == 0)
			p_err("spry mesh is not attached to cgroup %s", path);
		if (n <= 0)
			goto out;
	} else {
		n = links_remove_all();
		if (n < 0)
			goto out;
	}
	if (json_output) {
		json_t *o = json_object();

		if (!o || jset(o, "detached", json_integer(n))) {
			json_decref(o);
			goto out;
		}
		json_result(o);
	} else {
		printf("detached %d cgroup link%s (accelerated connections stay so until they close)\n",
		       n, n == 1 ? "" : "s");
	}
	ret = 0;
out:
	mesh_unlock(lock, had_dir, ret || !n);
	return ret;
}

/* ------------------------------------------------------------ rules */

enum rule_kind { RK_PORT, RK_PREFIX, RK_CGROUP };

struct mesh_rule_args {
	int		kind;
	__u32		lo, hi;		/* ports */
	struct prefix	pfx;
	char		path[PATH_MAX];
	__u64		cgid;
};

static int rule_parse(int argc, char **argv, struct mesh_rule_args *r)
{
	static const char *const kinds[] = { "port", "prefix", "cgroup", NULL };
	char buf[16], *dash;

	memset(r, 0, sizeof(*r));
	if (argc < 1) {
		p_err("missing RULE (port, prefix or cgroup)");
		return -1;
	}
	r->kind = match_word(kinds, argv[0], "rule");
	if (r->kind < 0)
		return -1;
	if (argc < 2) {
		p_err("missing value after '%s'", argv[0]);
		return -1;
	}
	if (argc > 2) {
		p_err("unexpected argument '%s'", argv[2]);
		return -1;
	}
	switch (r->kind) {
	case RK_PORT:
		if (strlen(argv[1]) >= sizeof(buf)) {
			p_err("invalid port range '%s'", argv[1]);
			return -1;
		}
		strcpy(buf, argv[1]);
		dash = strchr(buf, '-');
		if (dash)
			*dash++ = '\0';
		if (parse_u32(buf, 1, 65535, "port", &r->lo))
			return -1;
		r->hi = r->lo;
		if (dash && parse_u32(dash, 1, 65535, "port", &r->hi))
			return -1;
		if (r->hi < r->lo) {
			p_err("port range '%s' ends before it starts", argv[1]);
			return -1;
		}
		return 0;
	case RK_PREFIX:
		return parse_prefix(argv[1], &r->pfx);
	default:
		return cgroup_resolve(argv[1], r->path, sizeof(r->path), &r->cgid);
	}
}

/* Key and value buffers of a batch of @n port rules: 0 or -ENOMEM (none left). */
static int ports_alloc(__u32 n, __u32 **keys, struct spry_mesh_rule **vals)
{
	*keys = calloc(n, sizeof(**keys));
	*vals = calloc(n, sizeof(**vals));
	if (*keys && *vals)
		return 0;
	free(*keys);
	free(*vals);
	return -ENOMEM;
}

/* Write ports lo..hi to @action (NONE deletes) in one batch. */
static int ports_write(int map, __u32 lo, __u32 hi, __u8 action)
{
	__u32 n = hi - lo + 1, i, count = n;
	struct spry_mesh_rule *vals;
	__u32 *keys;
	int err;

	err = ports_alloc(n, &keys, &vals);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		keys[i] = lo + i;
		vals[i].action = action;
	}
	if (bpf_map_update_batch(map, keys, vals, &count, NULL)) {
		err = -errno;
		/* kernels without batch ops on arrays: one by one */
		for (i = 0, err = 0; i < n && !err; i++)
			if (bpf_map_update_elem(map, &keys[i], &vals[i], BPF_ANY))
				err = -errno;
	}
	free(keys);
	free(vals);
	return err;
}

static size_t pol_key(const struct prefix *p, void *key)
{
	struct spry_mesh_pol4_key *k4 = key;
	struct spry_mesh_pol6_key *k6 = key;

	if (p->family == AF_INET) {
		memset(k4, 0, sizeof(*k4));
		k4->prefixlen = p->len;
		memcpy(k4->addr, p->addr, 4);
		return sizeof(*k4);
	}
	memset(k6, 0, sizeof(*k6));
	k6->prefixlen = p->len;
	memcpy(k6->addr, p->addr, 16);
	return sizeof(*k6);
}

static int rule_write(int argc, char **argv, __u8 action)
{
	struct spry_mesh_rule val = { .action = action };
	__u8 key[sizeof(struct spry_mesh_pol6_key)];
	struct mesh_rule_args r;
	bool loaded_now, del = action == SPRY_MESH_NONE, had_dir = pin_dir_exists();
	struct mesh_fds f;
	char what[PATH_MAX + 32], pstr[64];
	int lock, map, err = 0, ret = -1;

	mesh_fds_init(&f);
	if (rule_parse(argc, argv, &r))
		return -1;
	lock = mesh_lock(had_dir);
	if (lock < 0)
		return -1;
	if (del ? mesh_open_report(&f, mesh_open(&f)) : mesh_load(&f, &loaded_now))
		goto out;
	switch (r.kind) {
	case RK_PORT:
		if (r.lo == r.hi)
			snprintf(what, sizeof(what), "port %u", r.lo);
		else
			snprintf(what, sizeof(what), "port %u-%u", r.lo, r.hi);
		err = ports_write(f.map[MM_PORTS], r.lo, r.hi, action);
		break;
	case RK_PREFIX:
		prefix_str(&r.pfx, pstr, sizeof(pstr));
		snprintf(what, sizeof(what), "prefix %s", pstr);
		map = r.pfx.family == AF_INET ? f.map[MM_POL4] : f.map[MM_POL6];
		pol_key(&r.pfx, key);
		/* (a lookup in an LPM trie matches the longest prefix, not exactly) */
		if (del)
			err = bpf_map_delete_elem(map, key) ? -errno : 0;
		else
			err = bpf_map_update_elem(map, key, &val, BPF_ANY) ? -errno : 0;
		break;
	default:
		snprintf(what, sizeof(what), "cgroup %s", r.path);
		if (del)
			err = bpf_map_delete_elem(f.map[MM_CGROUPS], &r.cgid) ? -errno : 0;
		else
			err = bpf_map_update_elem(f.map[MM_CGROUPS], &r.cgid, &val, BPF_ANY) ?
			      -errno : 0;
		break;
	}
	if (err == -ENOENT && del) {
		p_err("no rule for %s", what);
		goto out;
	}
	if (err) {
		p_errno(err, "cannot write the rule for %s", what);
		goto out;
	}
	if (json_output) {
		json_t *o = json_object();

		if (!o || jset(o, "rule", json_string(what)) ||
		    jset(o, "action", json_string(action_names[action]))) {
			json_decref(o);
			goto out;
		}
		json_result(o);
	} else {
		printf("%s %s\n", del ? "deleted the rule for" : action_names[action], what);
	}
	ret = 0;
out:
	mesh_fds_close(&f);
	mesh_unlock(lock, had_dir, ret);
	return ret;
}

static int do_allow(int argc, char **argv)
{
	return rule_write(argc, argv, SPRY_MESH_ALLOW);
}

static int do_deny(int argc, char **argv)
{
	return rule_write(argc, argv, SPRY_MESH_DENY);
}

static int do_del(int argc, char **argv)
{
	return rule_write(argc, argv, SPRY_MESH_NONE);
}

static int do_set(int argc, char **argv)
{
	static const char *const kws[] = { "default", "max-queued", NULL };
	static const char *const acts[] = { "allow", "deny", NULL };
	struct spry_mesh_config cfg;
	const char *vals[2] = {};
	bool loaded_now, had_dir = pin_dir_exists();
	struct mesh_fds f;
	int lock, act = -1, ret = -1;
	__u32 zero = 0, maxq = 0;

	mesh_fds_init(&f);
	if (parse_keywords(argc, argv, kws, vals))
		return -1;
	if (!vals[0] && !vals[1]) {
		p_err("nothing to set (default, max-queued)");
		return -1;
	}
	if (vals[0] && (act = match_word(acts, vals[0], "default action")) < 0)
		return -1;
	if (vals[1] && parse_u32(vals[1], 0, 0xffffffffU, "max-queued", &maxq))
		return -1;
	lock = mesh_lock(had_dir);
	if (lock < 0)
		return -1;
	if (mesh_load(&f, &loaded_now))
		goto out;
	if (bpf_map_lookup_elem(f.map[MM_CONFIG], &zero, &cfg)) {
		p_errno(-errno, "cannot read %s", mmap_names[MM_CONFIG]);
		goto out;
	}
	if (act >= 0)
		cfg.def_action = act ? SPRY_MESH_DENY : SPRY_MESH_ALLOW;
	if (vals[1])
		cfg.max_queued = maxq ? maxq : SPRY_MESH_DEF_MAX_QUEUED;
	if (bpf_map_update_elem(f.map[MM_CONFIG], &zero, &cfg, BPF_ANY)) {
		p_errno(-errno, "cannot write %s", mmap_names[MM_CONFIG]);
		goto out;
	}
	if (json_output) {
		json_t *o = json_object();

		if (!o || jset(o, "default", json_string(cfg.def_action == SPRY_MESH_DENY ?
							 "deny" : "allow")) ||
		    jset(o, "max_queued", json_integer(cfg.max_queued))) {
			json_decref(o);
			goto out;
		}
		json_result(o);
	} else {
		printf("default %s, max-queued %llu\n",
		       cfg.def_action == SPRY_MESH_DENY ? "deny" : "allow",
		       (unsigned long long)cfg.max_queued);
	}
	ret = 0;
out:
	mesh_fds_close(&f);
	mesh_unlock(lock, had_dir, ret);
	return ret;
}

/* ------------------------------------------------------------ show */

static int rule_obj(json_t *arr, const char *kind, json_t *val, __u8 action)
{
	json_t *o = json_object();

	return jappend(arr, o) || jset(o, "kind", json_string(kind)) ||
	       jset(o, kind, val) ||
	       jset(o, "action", action < 3 ? json_string(action_names[action]) :
		    json_integer(action)) ? -1 : 0;
}

/* Every port's action into @act (one batch; one lookup per port if refused). */
static int ports_read(int map, __u8 *act)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct spry_mesh_rule *vals;
	__u32 *keys, count = SPRY_MESH_PORTS, batch, p;
	int err;

	err = ports_alloc(SPRY_MESH_PORTS, &keys, &vals);
	if (err)
		return err;
	if (!bpf_map_lookup_batch(map, NULL, &batch, keys, vals, &count, &opts) ||
	    (errno == ENOENT && count == SPRY_MESH_PORTS)) {
		for (p = 0; p < count; p++)
			if (keys[p] < SPRY_MESH_PORTS)
				act[keys[p]] = vals[p].action;
		goto out;
	}
	for (p = 0; p < SPRY_MESH_PORTS; p++) {
		if (bpf_map_lookup_elem(map, &p, &vals[0])) {
			err = -errno;
			break;
		}
		act[p] = vals[0].action;
	}
out:
	free(keys);
	free(vals);
	return err;
}

static int show_ports(int map, json_t *arr)
{
	__u32 p, start = 0;
	__u8 cur = 0, a, *act;
	int err;

	act = calloc(SPRY_MESH_PORTS, 1);
	if (!act) {
		p_err("out of memory");
		return -1;
	}
	err = ports_read(map, act);
	if (err) {
		free(act);
		return p_errno(err, "cannot read %s", mmap_names[MM_PORTS]);
	}
	/* coalesce runs of one action into ranges (port 0 is never a rule) */
	for (p = 1; p <= SPRY_MESH_PORTS; p++) {
		a = p < SPRY_MESH_PORTS ? act[p] : 0;
		if (a == cur)
			continue;
		if (cur && rule_obj(arr, "port", start == p - 1 ?
				    json_sprintf("%u", start) :
				    json_sprintf("%u-%u", start, p - 1), cur)) {
			free(act);
			return -1;
		}
		cur = a;
		start = p;
	}
	free(act);
	return 0;
}

static int show_prefixes(int map, int family, json_t *arr)
{
	size_t klen = family == AF_INET ? sizeof(struct spry_mesh_pol4_key) :
					  sizeof(struct spry_mesh_pol6_key);
	union {
		struct spry_mesh_pol4_key	k4;
		struct spry_mesh_pol6_key	k6;
	} k, next;
	struct spry_mesh_rule v;
	struct prefix p;
	bool first = true;
	char buf[64];

	while (!bpf_map_get_next_key(map, first ? NULL : &k, &next)) {
		first = false;
		memcpy(&k, &next, klen);
		if (bpf_map_lookup_elem(map, &k, &v))
			continue;
		memset(&p, 0, sizeof(p));
		p.family = family;
		if (family == AF_INET) {
			p.len = k.k4.prefixlen;
			memcpy(p.addr, k.k4.addr, 4);
		} else {
			p.len = k.k6.prefixlen;
			memcpy(p.addr, k.k6.addr, 16);
		}
		prefix_str(&p, buf, sizeof(buf));
		if (rule_obj(arr, "prefix", json_string(buf), v.action))
			return -1;
	}
	return 0;
}

static int show_cgroups(int map, json_t *arr)
{
	struct spry_mesh_rule v;
	__u64 k, next;
	bool first = true;
	const char *path;
	json_t *last;

	while (!bpf_map_get_next_key(map, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (bpf_map_lookup_elem(map, &k, &v))
			continue;
		path = cgroup_path(k);
		if (rule_obj(arr, "cgroup", path ? json_string(path) : json_null(), v.action))
			return -1;
		last = json_array_get(arr, json_array_size(arr) - 1);
		if (jset(last, "cgroup_id", json_integer(k)))
			return -1;
	}
	return 0;
}

static json_t *show_links(void)
{
	json_t *arr = json_array(), *o;
	const char *path;
	size_t i, n;
	__u64 *ids;
	char pin[64];

	if (!arr || links_list(&ids, &n)) {
		if (!arr)
			p_err("out of memory");
		json_decref(arr);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		struct bpf_link_info info;
		__u32 len = sizeof(info);
		int fd;

		memset(&info, 0, sizeof(info));
		link_pin_name(pin, sizeof(pin), ids[i]);
		fd = pin_get(pin);
		if (fd >= 0) {
			bpf_obj_get_info_by_fd(fd, &info, &len);
			close(fd);
		}
		path = cgroup_path(ids[i]);
		o = json_object();
		if (jappend(arr, o) || jset(o, "cgroup_id", json_integer(ids[i])) ||
		    jset(o, "cgroup", path ? json_string(path) : json_null()) ||
		    jset(o, "link_id", json_integer(info.id)) ||
		    jset(o, "prog_id", json_integer(info.prog_id)) ||
		    jset(o, "pin", json_string(pin))) {
			free(ids);
			json_decref(arr);
			return NULL;
		}
	}
	free(ids);
	return arr;
}

static json_t *show_counters(int map)
{
	json_t *o = json_object();
	__u32 i;
	__u64 n;
	int err;

	if (!o) {
		p_err("out of memory");
		return NULL;
	}
	for (i = 0; i < SPRY_MESH_S_MAX; i++) {
		err = percpu_sum(map, i, sizeof(n), &n);
		if (err) {
			p_errno(err, "cannot read %s", mmap_names[MM_STATS]);
			json_decref(o);
			return NULL;
		}
		if (jset(o, mstat_names[i], json_integer(n))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static long count_socks(int map)
{
	struct spry_mesh_key k, next;
	bool first = true;
	long n = 0;

	while (!bpf_map_get_next_key(map, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		n++;
	}
	return n;
}

static void show_text(json_t *o)
{
	json_t *e, *c = json_object_get(o, "config");
	const char *k;
	size_t i;

	printf("loaded: %s\n", json_is_true(json_object_get(o, "loaded")) ? "yes" : "no");
	if (json_is_object(c))
		printf("default %s, max-queued %lld, comeback after a stall %s\n",
		       json_string_value(json_object_get(c, "default")),
		       json_integer_value(json_object_get(c, "max_queued")),
		       json_is_true(json_object_get(c, "comeback")) ? "yes" :
		       "no (this kernel lacks the sockmap copied_seq fix, docs/MESH.md)");
	printf("cgroups:\n");
	json_array_foreach(json_object_get(o, "cgroups"), i, e) {
		const char *p = json_string_value(json_object_get(e, "cgroup"));

		printf("  %s (id %lld) link %lld prog %lld\n", p ? p : "(gone)",
		       json_integer_value(json_object_get(e, "cgroup_id")),
		       json_integer_value(json_object_get(e, "link_id")),
		       json_integer_value(json_object_get(e, "prog_id")));
	}
	printf("rules:\n");
	json_array_foreach(json_object_get(o, "rules"), i, e) {
		const char *kind = json_string_value(json_object_get(e, "kind"));
		json_t *v = json_object_get(e, kind);

		printf("  %s %s %s\n", json_string_value(json_object_get(e, "action")), kind,
		       json_is_string(v) ? json_string_value(v) : "(gone)");
	}
	printf("sockets: %lld\n", json_integer_value(json_object_get(o, "sockets")));
	if (json_object_size(json_object_get(o, "counters"))) {
		printf("counters:\n");
		json_object_foreach(json_object_get(o, "counters"), k, e)
			printf("  %-18s %lld\n", k, json_integer_value(e));
	}
}

static int do_show(int argc, char **argv)
{
	struct spry_mesh_config cfg;
	json_t *o = NULL, *rules = NULL, *c;
	struct mesh_fds f;
	__u32 zero = 0;
	bool have;
	int err, ret = -1;

	if (argc) {
		p_err("unexpected argument '%s'", argv[0]);
		return -1;
	}
	err = mesh_open(&f);
	have = !err;
	if (err && err != -ENOENT)
		return mesh_open_report(&f, err);
	o = json_object();
	rules = json_array();
	if (!o || !rules) {
		p_err("out of memory");
		goto out;
	}
	if (jset(o, "pin_dir", json_string(pin_dir)) ||
	    jset(o, "loaded", json_boolean(have)) ||
	    jset(o, "cgroups", show_links()))
		goto out;
	if (have) {
		if (bpf_map_lookup_elem(f.map[MM_CONFIG], &zero, &cfg)) {
			p_errno(-errno, "cannot read %s", mmap_names[MM_CONFIG]);
			goto out;
		}
		c = json_object();
		if (jset(o, "config", c) ||
		    jset(c, "default", json_string(cfg.def_action == SPRY_MESH_DENY ?
						  "deny" : "allow")) ||
		    jset(c, "max_queued", json_integer(cfg.max_queued ? cfg.max_queued :
						       SPRY_MESH_DEF_MAX_QUEUED)) ||
		    jset(c, "comeback", json_boolean(mesh_comeback_supported())) ||
		    show_ports(f.map[MM_PORTS], rules) ||
		    show_prefixes(f.map[MM_POL4], AF_INET, rules) ||
		    show_prefixes(f.map[MM_POL6], AF_INET6, rules) ||
		    show_cgroups(f.map[MM_CGROUPS], rules) ||
		    jset(o, "sockets", json_integer(count_socks(f.map[MM_SOCKS]))) ||
		    jset(o, "counters", show_counters(f.map[MM_STATS])))
			goto out;
	} else if (jset(o, "config", json_null()) || jset(o, "sockets", json_integer(0)) ||
		   jset(o, "counters", json_object())) {
		goto out;
	}
	err = jset(o, "rules", rules);
	rules = NULL;
	if (err)
		goto out;
	show_emit_one(o, show_text);
	o = NULL;
	ret = 0;
out:
	json_decref(rules);
	json_decref(o);
	mesh_fds_close(&f);
	return ret;
}

int do_mesh(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_show },
		{ "attach",	do_attach },
		{ "detach",	do_detach },
		{ "allow",	do_allow },
		{ "deny",	do_deny },
		{ "del",	do_del },
		{ "set",	do_set },
		{ "help",	do_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "mesh command");
}
