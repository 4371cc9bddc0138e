// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry ingress { show | attach | detach | allow | deny | del | help }: the
 * gateway's XDP filter (bpf/xdp_ingress.c) on network devices.
 *
 * Pins, all in the pin directory of 'spry load':
 *   spry_xlisten spry_xpol4 spry_xpol6 spry_xverdicts spry_xchain spry_xsks
 *                          the program's maps (LIBBPF_PIN_BY_NAME)
 *   xdp_ingress            the program (SPRY_PROG_XDP)
 *   xdp_link_<NETNS>_<IFINDEX>
 *                          one bpf_link per device: NETNS is the inode of
 *                          the network namespace the device lives in
 *
 * A device's attachment is the pinned bpf_link, made with libbpf's
 * bpf_link_create(BPF_XDP): it outlives the loader, cannot be replaced by
 * a netlink attach behind spry's back, and goes when the pin is removed
 * (detach also detaches the link explicitly, in case some process still
 * holds it).  libxdp is not used: its dispatcher needs freplace, which
 * this kind of kernel refuses.  xdp_ingress is a plain XDP program, so
 * xdp-loader or ip(8) can load bpf/xdp_ingress.bpf.o too, with the same
 * map pins (pin the maps in the same directory for 'ingress show').
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fn-runtime/parse.h"
#include "loader/main.h"
#include "xdp_ingress.skel.h"

#define LINK_PREFIX		"xdp_link_"
#define DEF_HTTP_PORT		8080
#define DEF_DGRAM_PORT		8081

enum xmap { XM_LISTEN, XM_POL4, XM_POL6, XM_VERDICTS, XM_CHAIN, XM_XSKS, XM_N };

static const char *const xmap_names[XM_N] = {
	[XM_LISTEN]	= SPRY_STR(SPRY_MAP_XLISTEN),
	[XM_POL4]	= SPRY_STR(SPRY_MAP_XPOL4),
	[XM_POL6]	= SPRY_STR(SPRY_MAP_XPOL6),
	[XM_VERDICTS]	= SPRY_STR(SPRY_MAP_XVERDICTS),
	[XM_CHAIN]	= SPRY_STR(SPRY_MAP_XCHAIN),
	[XM_XSKS]	= SPRY_STR(SPRY_MAP_XSKS),
};

/* key and value sizes the maps must have (include/spry/abi.h) */
static const __u32 xmap_sizes[XM_N][2] = {
	[XM_LISTEN]	= { sizeof(struct spry_xlisten_key), sizeof(struct spry_xlisten) },
	[XM_POL4]	= { sizeof(struct spry_xpol4_key), sizeof(struct spry_xpol) },
	[XM_POL6]	= { sizeof(struct spry_xpol6_key), sizeof(struct spry_xpol) },
	[XM_VERDICTS]	= { sizeof(__u32), sizeof(__u64) },
	[XM_CHAIN]	= { sizeof(__u32), sizeof(struct spry_xchain_stats) },
	[XM_XSKS]	= { sizeof(__u32), sizeof(__u32) },
};

static const char *const xverdict_names[SPRY_XV_MAX] = {
	[SPRY_XV_PASS_NOT_IP]		= "pass_not_ip",
	[SPRY_XV_PASS_PROTO]		= "pass_proto",
	[SPRY_XV_PASS_OTHER_PORT]	= "pass_other_port",
	[SPRY_XV_PASS_FRAG]		= "pass_frag",
	[SPRY_XV_ALLOW]			= "allow",
	[SPRY_XV_REDIRECT_XSK]		= "redirect_xsk",
	[SPRY_XV_DROP_POLICY]		= "drop_policy",
	[SPRY_XV_DROP_DENY]		= "drop_deny",
	[SPRY_XV_DROP_CHAIN]		= "drop_chain",
	[SPRY_XV_DROP_MALFORMED]	= "drop_malformed",
	[SPRY_XV_DROP_BAD_DGRAM]	= "drop_bad_dgram",
	[SPRY_XV_DROP_NO_XSK]		= "drop_no_xsk",
};

static const char *const xlisten_flag_names[] = { "protected", "datagram" };

static void ingress_help(FILE *f)
{
	fprintf(f,
		"Usage: spry ingress attach dev IFNAME [mode { native | skb }]\n"
		"                          [http-port PORT] [dgram-port PORT]\n"
		"       spry ingress detach [dev IFNAME]\n"
		"       spry ingress allow PREFIX port PORT [chain CHAIN]\n"
		"       spry ingress deny PREFIX port PORT\n"
		"       spry ingress del PREFIX port PORT\n"
		"       spry ingress show\n"
		"       spry ingress help\n"
		"\n"
		"The gateway's XDP packet filter (%s) on network devices of this\n"
		"network namespace.  Needs 'spry load' in the same pin directory.\n"
		"attach loads the program (once; its maps and the program are pinned\n"
		"by name in the pin directory) and attaches it to IFNAME through a\n"
		"bpf_link pinned as %s<netns>_<ifindex>, so it stays after spry\n"
		"exits.  mode: native (driver, the default) or skb (generic).\n"
		"Attaching again to the same device in the same mode only records\n"
		"the listeners; in the other mode it is an error (detach first).\n"
		"The listeners are shared by every device until the last detach:\n"
		"  http-port   TCP, protected (default %d; 0: none)\n"
		"  dgram-port  UDP, protected, datagram requests to AF_XDP\n"
		"              (default %d; 0: none)\n"
		"A protected port only accepts sources an allow rule matches; other\n"
		"ports pass untouched.\n"
		"detach removes the device's link (every device's without dev);\n"
		"when no device remains the program and its maps are unpinned too,\n"
		"rules and counters included.  'spry unload' does the same.\n"
		"allow/deny/del write the source policy of a gateway port (any\n"
		"protocol); the longest matching prefix decides:\n"
		"  PREFIX      IPv4 or IPv6 address with an optional /LEN; a bare\n"
		"              address is /32 or /128.  Bits set after LEN are an\n"
		"              error (write the network address).\n"
		"  port        1-65535\n"
		"  chain       allow datagram requests for this chain only\n"
		"              (default: any chain)\n"
		"Writing a rule for a prefix and port replaces the rule there.\n"
		"The program is a plain XDP program (no libxdp dispatcher: freplace\n"
		"is refused on this kernel); xdp-loader can load it as well.\n",
		SPRY_PROG_XDP, LINK_PREFIX, DEF_HTTP_PORT, DEF_DGRAM_PORT);
}

static int do_help(int argc, char **argv)
{
	(void)argv;
	return help_cmd(argc, ingress_help);
}

/* ------------------------------------------------------------ pins */

/* Inode of this process's network namespace, or 0 after p_err. */
static unsigned long netns_ino(void)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st)) {
		p_errno(-errno, "cannot identify the network namespace");
		return 0;
	}
	return st.st_ino;
}

static void link_pin_name(char *buf, size_t len, unsigned long ns, __u32 ifindex)
{
	snprintf(buf, len, LINK_PREFIX "%lu_%u", ns, ifindex);
}

/* Parse "xdp_link_<ns>_<ifindex>": 0, or -1 for another name. */
static int link_pin_parse(const char *name, unsigned long *ns, __u32 *ifindex)
{
	const char *end;
	uint64_t a, b;

	if (strncmp(name, LINK_PREFIX, strlen(LINK_PREFIX)))
		return -1;
	name += strlen(LINK_PREFIX);
	if (*name == '0' ||
	    spry_num__parse(name, &end, 1, ULONG_MAX, &a) || *end != '_' ||
	    end[1] == '0' || spry_num__parse(end + 1, NULL, 1, 0x7fffffff, &b))
		return -1;	/* as link_pin_name() writes them: no leading zeros */
	*ns = a;
	*ifindex = (__u32)b;
	return 0;
}

struct xlink {
	char		pin[64];	/* name under pin_dir */
	unsigned long	ns;
	__u32		ifindex;
};

/* A link pin's device into @elem (a struct xlink): 0, or -1 for another name. */
static int link_pin_take(const char *name, void *elem)
{
	struct xlink *l = elem;

	if (link_pin_parse(name, &l->ns, &l->ifindex))
		return -1;
	link_pin_name(l->pin, sizeof(l->pin), l->ns, l->ifindex);
	return 0;
}

/* The link pins of pin_dir; *n of them.  -1 after p_err. */
static int links_list(struct xlink **out, size_t *n)
{
	return pins_collect(link_pin_take, sizeof(**out), (void **)out, n);
}

/* Unpin the program and its maps: pins removed, or -1 after p_err. */
static int xdp_unpin_all(void)
{
	int prog, maps;

	prog = pin_remove(SPRY_PROG_XDP);
	maps = pins_remove(xmap_names, XM_N);
	return prog < 0 || maps < 0 ? -1 : prog + maps;
}

int ingress_remove_all(void)
{
	struct xlink *links;
	size_t i, n;
	int err, removed = 0, ret = 0;

	if (links_list(&links, &n))
		return -1;
	for (i = 0; i < n; i++) {
		err = pin_link_remove(links[i].pin);
		if (err < 0)
			ret = -1;
		removed += err > 0;
	}
	free(links);
	if (ret)
		return -1;
	err = xdp_unpin_all();
	if (err < 0)
		return -1;
	return removed + err;
}

/* Open the pinned XDP maps into @fds (all -1 first); -ENOENT when absent. */
static int xmaps_open(int fds[XM_N])
{
	int i, fd;

	for (i = 0; i < XM_N; i++)
		fds[i] = -1;
	for (i = 0; i < XM_N; i++) {
		fd = pin_map_get(xmap_names[i], xmap_sizes[i][0], xmap_sizes[i][1]);
		if (fd < 0)
			return fd;
		fds[i] = fd;
	}
	return 0;
}

static void xmaps_close(int fds[XM_N])
{
	int i;

	for (i = 0; i < XM_N; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* xmaps_open() with the errors reported: 0 or -1. */
static int xmaps_open_report(int fds[XM_N])
{
	int err = xmaps_open(fds);

	if (!err)
		return 0;
	xmaps_close(fds);
	if (err == -ENOENT)
		p_err("spry ingress is not attached in %s (run 'spry ingress attach dev IFNAME')",
		      pin_dir);
	else if (err == -EPROTO)
		p_err("the XDP maps pinned in %s do not match this spry", pin_dir);
	else if (err != -EINVAL)
		p_errno(err, "cannot open the XDP maps pinned in %s", pin_dir);
	return -1;
}

/* ------------------------------------------------------------ parsing */

int parse_prefix(const char *s, struct prefix *p)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	__u32 bits, i;

	memset(p, 0, sizeof(*p));
	if (!alen || alen >= INET6_ADDRSTRLEN) {
		p_err("invalid prefix '%s' (expected ADDRESS[/LEN])", s);
		return -1;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, p->addr) == 1) {
		p->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, buf, p->addr) == 1) {
		p->family = AF_INET6;
		bits = 128;
	} else {
		p_err("invalid prefix '%s': '%s' is not an IPv4 or IPv6 address", s, buf);
		return -1;
	}
	p->len = bits;
	if (slash) {
		if (!slash[1]) {
			p_err("invalid prefix '%s': missing length after '/'", s);
			return -1;
		}
		if (parse_u32(slash + 1, 0, bits, "prefix length", &p->len))
			return -1;
	}
	for (i = p->len; i < bits; i++) {
		if (p->addr[i / 8] & (0x80 >> (i % 8))) {
			p_err("invalid prefix '%s': host bits set after /%u", s, p->len);
			return -1;
		}
	}
	return 0;
}

void prefix_str(const struct prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->len);
}

/* Policy key of @p and @port into @key (spry_xpol4_key or _6_key). */
static size_t pol_key(const struct prefix *p, __u16 port, void *key)
{
	struct spry_xpol4_key *k4 = key;
	struct spry_xpol6_key *k6 = key;

	if (p->family == AF_INET) {
		memset(k4, 0, sizeof(*k4));
		k4->prefixlen = SPRY_XPOL_PORT_BITS + p->len;
		k4->port = htons(port);
		memcpy(k4->addr, p->addr, 4);
		return sizeof(*k4);
	}
	memset(k6, 0, sizeof(*k6));
	k6->prefixlen = SPRY_XPOL_PORT_BITS + p->len;
	k6->port = htons(port);
	memcpy(k6->addr, p->addr, 16);
	return sizeof(*k6);
}

/* Device @name of this namespace: its ifindex, or 0 after p_err. */
static __u32 dev_index(const char *name)
{
	unsigned int i;

	if (!*name || strlen(name) >= IF_NAMESIZE) {
		p_err("invalid device name '%s'", name);
		return 0;
	}
	i = if_nametoindex(name);
	if (!i)
		p_err("no device '%s' in this network namespace", name);
	return i;
}

/* ------------------------------------------------------------ attach */

/*
 * Mode of the XDP program on @ifindex: "native", "skb", "hw", "none"
 * (nothing attached) or NULL when the query fails.  @prog_id: its id.
 */
static const char *xdp_mode(__u32 ifindex, __u32 *prog_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	*prog_id = 0;
	if (bpf_xdp_query(ifindex, 0, &q))
		return NULL;
	*prog_id = q.prog_id;
	switch (q.attach_mode) {
	case XDP_ATTACHED_NONE:
		return "none";
	case XDP_ATTACHED_DRV:
		return "native";
	case XDP_ATTACHED_SKB:
		return "skb";
	case XDP_ATTACHED_HW:
		return "hw";
	default:
		return "multi";
	}
}

/* Live ifindex of link @fd (0: defunct), its id and program id. */
static int link_info(int fd, __u32 *ifindex, __u32 *id, __u32 *prog_id)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_XDP)
		return -EPROTO;
	*ifindex = info.xdp.ifindex;
	*id = info.id;
	*prog_id = info.prog_id;
	return 0;
}

/* Program fd: the pinned xdp_ingress, or freshly loaded and pinned. */
static int prog_get(bool had_map[XM_N], bool *loaded_now)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct xdp_ingress *skel;
	char path[PATH_MAX];
	int i, err, fd;

	*loaded_now = false;
	if (pin_path(path, sizeof(path), SPRY_PROG_XDP))
		return -1;
	for (i = 0; i < XM_N; i++)
		had_map[i] = pin_exists(xmap_names[i]);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		for (i = 0; i < XM_N && had_map[i]; i++)
			;
		if (i == XM_N)
			return fd;
		/* a program pin without its maps is a leftover: replace it */
		close(fd);
		if (pin_remove(SPRY_PROG_XDP) < 0)
			return -1;
	}

	opts.pin_root_path = pin_dir;
	skel = xdp_ingress__open_opts(&opts);
	if (!skel)
		return p_errno(-errno, "cannot open the XDP object");
	err = xdp_ingress__load(skel);
	if (err) {
		p_errno(err, "cannot load %s (XDP maps of another version in %s? 'spry ingress detach' first)",
			SPRY_PROG_XDP, pin_dir);
		goto err_unpin;
	}
	err = bpf_program__pin(skel->progs.xdp_ingress, path);
	if (err) {
		p_errno(err, "cannot pin %s", path);
		goto err_unpin;
	}
	fd = dup(bpf_program__fd(skel->progs.xdp_ingress));
	if (fd < 0) {
		p_errno(-errno, "dup");
		pin_remove(SPRY_PROG_XDP);
		goto err_unpin;
	}
	*loaded_now = true;
	xdp_ingress__destroy(skel);
	return fd;

err_unpin:
	for (i = 0; i < XM_N; i++)
		if (!had_map[i])
			pin_remove(xmap_names[i]);
	xdp_ingress__destroy(skel);
	return -1;
}

struct listener_save {
	struct spry_xlisten_key	key;
	struct spry_xlisten	old;
	bool			had, set;
};

static int listener_set(int map, __u16 port, __u8 proto, __u32 flags,
			struct listener_save *sv)
{
	struct spry_xlisten val = { .flags = flags };

	memset(sv, 0, sizeof(*sv));
	if (!port)
		return 0;
	sv->key.port = htons(port);
	sv->key.proto = proto;
	sv->had = !bpf_map_lookup_elem(map, &sv->key, &sv->old);
	if (bpf_map_update_elem(map, &sv->key, &val, BPF_ANY))
		return p_errno(-errno, "cannot update %s", xmap_names[XM_LISTEN]);
	sv->set = true;
	return 0;
}

static void listener_restore(int map, const struct listener_save *sv)
{
	if (!sv->set)
		return;
	if (sv->had)
		bpf_map_update_elem(map, &sv->key, &sv->old, BPF_ANY);
	else
		bpf_map_delete_elem(map, &sv->key);
}

static int do_attach(int argc, char **argv)
{
	static const char *const kws[] = { "dev", "mode", "http-port", "dgram-port", NULL };
	static const char *const modes[] = { "native", "skb", NULL };
	LIBBPF_OPTS(bpf_link_create_opts, lopts);
	const char *vals[4] = {}, *cur;
	struct listener_save sv[2] = {};
	bool had_map[XM_N], loaded_now = false, already = false;
	char pin[64], path[PATH_MAX];
	__u32 http = DEF_HTTP_PORT, dgram = DEF_DGRAM_PORT, ifindex, id, pid, li;
	int mode = 0, lock, prog = -1, link = -1, ret = -1, i, err;
	int xm[XM_N] = { -1, -1, -1, -1, -1, -1 };
	struct spry_maps m;
	unsigned long ns;

	if (parse_keywords(argc, argv, kws, vals))
		return -1;
	if (!vals[0]) {
		p_err("missing 'dev IFNAME'");
		return -1;
	}
	if (vals[1] && (mode = match_word(modes, vals[1], "mode")) < 0)
		return -1;
	if (vals[2] && parse_u32(vals[2], 0, 65535, "http-port", &http))
		return -1;
	if (vals[3] && parse_u32(vals[3], 0, 65535, "dgram-port", &dgram))
		return -1;
	if (maps_open(&m))
		return -1;
	spry_maps__close(&m);
	ifindex = dev_index(vals[0]);
	if (!ifindex)
		return -1;
	ns = netns_ino();
	if (!ns)
		return -1;
	lock = pin_lock();
	if (lock < 0)
		return -1;

	/* Already attached here? */
	link_pin_name(pin, sizeof(pin), ns, ifindex);
	if (pin_path(path, sizeof(path), pin))
		goto out_unlock;
	link = bpf_obj_get(path);
	if (link >= 0) {
		err = link_info(link, &li, &id, &pid);
		close(link);
		link = -1;
		if (err) {
			p_errno(err, "cannot inspect the link %s", path);
			goto out_unlock;
		}
		if (li == ifindex) {
			cur = xdp_mode(ifindex, &pid);
			if (cur && strcmp(cur, modes[mode])) {
				p_err("%s is already attached to %s in %s mode ('spry ingress detach dev %s' first)",
				      SPRY_PROG_XDP, vals[0], cur, vals[0]);
				goto out_unlock;
			}
			already = true;
		} else if (pin_link_remove(pin) < 0) {	/* defunct: device gone */
			goto out_unlock;
		}
	}

	if (!already) {
		prog = prog_get(had_map, &loaded_now);
		if (prog < 0)
			goto out_unlock;
	}
	if (xmaps_open_report(xm))
		goto out_unpin;
	/* Listeners first: the filter must know them from the first frame. */
	if (listener_set(xm[XM_LISTEN], http, IPPROTO_TCP, SPRY_XLF_PROTECTED, &sv[0]) ||
	    listener_set(xm[XM_LISTEN], dgram, IPPROTO_UDP,
			 SPRY_XLF_PROTECTED | SPRY_XLF_DATAGRAM, &sv[1]))
		goto out_listen;
	if (!already) {
		lopts.flags = mode ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
		link = bpf_link_create(prog, ifindex, BPF_XDP, &lopts);
		if (link < 0) {
			err = -errno;
			if (err == -EBUSY || err == -EEXIST)
				p_err("%s already has an XDP program not attached by spry (detach it first)",
				      vals[0]);
			else if (err == -EOPNOTSUPP && !mode)
				p_err("%s does not support native XDP (use 'mode skb')",
				      vals[0]);
			else
				p_errno(err, "cannot attach %s to %s", SPRY_PROG_XDP,
					vals[0]);
			goto out_listen;
		}
		if (bpf_obj_pin(link, path)) {
			p_errno(-errno, "cannot pin the link as %s", path);
			goto out_link;
		}
	}

	if (json_output) {
		json_t *o = json_object();

		if (!o || jset(o, "dev", json_string(vals[0])) ||
		    jset(o, "ifindex", json_integer(ifindex)) ||
		    jset(o, "mode", json_string(modes[mode])) ||
		    jset(o, "http_port", http ? json_integer(http) : json_null()) ||
		    jset(o, "dgram_port", dgram ? json_integer(dgram) : json_null()) ||
		    jset(o, "already", json_boolean(already))) {
			json_decref(o);
			goto out_pin;
		}
		json_result(o);
	} else if (already) {
		printf("%s is already attached to %s (%s)\n", SPRY_PROG_XDP,
		       vals[0], modes[mode]);
	} else {
		printf("attached %s to %s (%s), link pinned as %s\n", SPRY_PROG_XDP,
		       vals[0], modes[mode], path);
	}
	ret = 0;
	goto out_link;

out_pin:
	if (!already)
		unlink(path);
out_link:
	if (link >= 0)
		close(link);
out_listen:
	if (ret) {
		listener_restore(xm[XM_LISTEN], &sv[1]);
		listener_restore(xm[XM_LISTEN], &sv[0]);
	}
	xmaps_close(xm);
out_unpin:
	/* Leave the pins as they were: only what this attach added goes. */
	if (ret && loaded_now) {
		pin_remove(SPRY_PROG_XDP);
		for (i = 0; i < XM_N; i++)
			if (!had_map[i])
				pin_remove(xmap_names[i]);
	}
	if (prog >= 0)
		close(prog);
out_unlock:
	spry_pin_unlock(lock);
	return ret;
}

/* ------------------------------------------------------------ detach */

static int do_detach(int argc, char **argv)
{
	static const char *const kws[] = { "dev", NULL };
	struct xlink *links = NULL;
	const char *dev = NULL;
	unsigned long ns = 0;
	__u32 ifindex = 0;
	int lock, err, detached = 0, unpinned = 0, ret = -1;
	size_t i, n, left;
	json_t *o;

	if (argc) {
		if (match_word(kws, argv[0], "keyword") < 0)
			return -1;
		GET_VALUE(dev);
		if (argc) {
			p_err("unexpected argument '%s'", argv[0]);
			return -1;
		}
	}
	/* (the lock would create a missing pin directory) */
	if (access(pin_dir, F_OK)) {
		p_err("spry is not loaded in %s", pin_dir);
		return -1;
	}
	if (dev) {
		ifindex = dev_index(dev);
		if (!ifindex)
			return -1;
		ns = netns_ino();
		if (!ns)
			return -1;
	}
	lock = pin_lock();
	if (lock < 0)
		return -1;
	if (links_list(&links, &n))
		goto out;
	if (!n && !pin_exists(SPRY_PROG_XDP)) {
		p_err("spry ingress is not attached in %s", pin_dir);
		goto out;
	}
	left = n;
	for (i = 0; i < n; i++) {
		if (dev && (links[i].ns != ns || links[i].ifindex != ifindex))
			continue;
		err = pin_link_remove(links[i].pin);
		if (err < 0)
			goto out;
		detached += err > 0;
		left--;
	}
	if (dev && !detached) {
		p_err("%s is not attached to %s", SPRY_PROG_XDP, dev);
		goto out;
	}
	if (!left) {
		unpinned = xdp_unpin_all();
		if (unpinned < 0)
			goto out;
	}
	if (json_output) {
		o = json_object();
		if (!o || jset(o, "detached", json_integer(detached)) ||
		    jset(o, "devices_left", json_integer(left)) ||
		    jset(o, "unpinned", json_integer(unpinned))) {
			json_decref(o);
			goto out;
		}
		json_result(o);
	} else {
		printf("detached %d link%s", detached, detached == 1 ? "" : "s");
		if (!left)
			printf(", no device left: unpinned %s and its maps (%d pins)",
			       SPRY_PROG_XDP, unpinned);
		printf("\n");
	}
	ret = 0;
out:
	free(links);
	spry_pin_unlock(lock);
	return ret;
}

/* ------------------------------------------------------------ rules */

struct rule_args {
	struct prefix	pfx;
	__u32		port;
	const char	*chain;
};

static int rule_parse(int argc, char **argv, bool chain_ok, struct rule_args *r)
{
	static const char *const kws[] = { "port", "chain", NULL };
	const char *vals[2] = {};

	memset(r, 0, sizeof(*r));
	if (argc < 1) {
		p_err("missing PREFIX");
		return -1;
	}
	if (parse_prefix(argv[0], &r->pfx))
		return -1;
	NEXT_ARG();
	if (parse_keywords(argc, argv, kws, vals))
		return -1;
	if (vals[1] && !chain_ok) {
		p_err("'chain' applies to allow rules only");
		return -1;
	}
	if (!vals[0]) {
		p_err("missing 'port PORT'");
		return -1;
	}
	if (parse_u32(vals[0], 1, 65535, "port", &r->port))
		return -1;
	r->chain = vals[1];
	return 0;
}

static int rule_write(int argc, char **argv, int action)
{
	bool del = action < 0, replaced = false;
	int xm[XM_N] = { -1, -1, -1, -1, -1, -1 };
	__u8 key[sizeof(struct spry_xpol6_key)];
	char cname[SPRY_NAME_LEN], pstr[64];
	struct spry_xpol val = {};
	struct rule_args r;
	struct spry_maps m;
	int lock, map, err, ret = -1;
	__u16 cid = 0;

	if (rule_parse(argc, argv, action == SPRY_XPA_ALLOW, &r))
		return -1;
	if (r.chain && parse_name(r.chain, "chain", cname))
		return -1;
	if (maps_open(&m))
		return -1;
	lock = pin_lock();
	if (lock < 0)
		goto out_maps;
	if (xmaps_open_report(xm))
		goto out_unlock;
	if (r.chain) {
		err = spry_chain__lookup(&m, cname, &cid, NULL);
		if (err == -ENOENT) {
			p_err("no chain '%s'", cname);
			goto out;
		}
		if (err) {
			p_errno(err, "cannot read chains");
			goto out;
		}
	}
	map = r.pfx.family == AF_INET ? xm[XM_POL4] : xm[XM_POL6];
	pol_key(&r.pfx, r.port, key);
	prefix_str(&r.pfx, pstr, sizeof(pstr));
	/* (a lookup in an LPM trie matches the longest prefix, not exactly) */
	if (del) {
		if (bpf_map_delete_elem(map, key)) {
			if (errno == ENOENT)
				p_err("no rule for %s port %u", pstr, r.port);
			else
				p_errno(-errno, "cannot delete the rule");
			goto out;
		}
	} else {
		val.action = action;
		val.chain = cid;
		replaced = false;
		err = bpf_map_update_elem(map, key, &val, BPF_NOEXIST);
		if (err && errno == EEXIST) {
			replaced = true;
			err = bpf_map_update_elem(map, key, &val, BPF_EXIST);
		}
		if (err) {
			p_errno(-errno, "cannot write the rule");
			goto out;
		}
	}
	if (json_output) {
		json_t *o = json_object();

		if (!o || jset(o, "prefix", json_string(pstr)) ||
		    jset(o, "port", json_integer(r.port)) ||
		    jset(o, del ? "deleted" : "action",
			 del ? json_true() : json_string(action ? "allow" : "deny")) ||
		    (!del && jset(o, "chain", r.chain ? json_string(cname) : json_null())) ||
		    (!del && jset(o, "replaced", json_boolean(replaced)))) {
			json_decref(o);
			goto out;
		}
		json_result(o);
	} else if (del) {
		printf("deleted the rule for %s port %u\n", pstr, r.port);
	} else {
		printf("%s %s port %u%s%s%s\n", action ? "allow" : "deny", pstr,
		       r.port, r.chain ? " chain " : "", r.chain ? cname : "",
		       replaced ? " (replaced)" : "");
	}
	ret = 0;
out:
	xmaps_close(xm);
out_unlock:
	spry_pin_unlock(lock);
out_maps:
	spry_maps__close(&m);
	return ret;
}

static int do_allow(int argc, char **argv)
{
	return rule_write(argc, argv, SPRY_XPA_ALLOW);
}

static int do_deny(int argc, char **argv)
{
	return rule_write(argc, argv, SPRY_XPA_DENY);
}

static int do_del(int argc, char **argv)
{
	return rule_write(argc, argv, -1);
}

/* ------------------------------------------------------------ show */

static const char *chain_name(const struct spry_maps *m, __u16 id, char *buf)
{
	struct spry_chain c;

	if (!id || spry_chain__get(m, id, &c) || !c.name[0])
		return NULL;
	memcpy(buf, c.name, SPRY_NAME_LEN);
	buf[SPRY_NAME_LEN - 1] = '\0';
	return buf;
}

static json_t *show_devices(unsigned long ns)
{
	struct xlink *links;
	json_t *arr, *o;
	size_t i, n;

	if (links_list(&links, &n))
		return NULL;
	arr = json_array();
	if (!arr)
		goto oom;
	for (i = 0; i < n; i++) {
		__u32 li = 0, id = 0, pid = 0, cur_pid;
		char path[PATH_MAX], name[IF_NAMESIZE];
		const char *mode = NULL;
		bool here = links[i].ns == ns;
		int fd;

		if (pin_path(path, sizeof(path), links[i].pin))
			goto err;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			link_info(fd, &li, &id, &pid);
			close(fd);
		}
		if (here && li)
			mode = xdp_mode(li, &cur_pid);
		o = json_object();
		if (jappend(arr, o) ||
		    jset(o, "ifindex", json_integer(links[i].ifindex)) ||
		    jset(o, "name", here && li && if_indextoname(li, name) ?
			 json_string(name) : json_null()) ||
		    jset(o, "netns", json_integer(links[i].ns)) ||
		    jset(o, "this_netns", json_boolean(here)) ||
		    jset(o, "attached", json_boolean(li != 0)) ||
		    jset(o, "mode", mode ? json_string(mode) : json_null()) ||
		    jset(o, "link_id", json_integer(id)) ||
		    jset(o, "prog_id", json_integer(pid)) ||
		    jset(o, "pin", json_string(links[i].pin)))
			goto err;
	}
	free(links);
	return arr;
oom:
	p_err("out of memory");
err:
	free(links);
	json_decref(arr);
	return NULL;
}

static json_t *show_listeners(int map)
{
	struct spry_xlisten_key k, next;
	struct spry_xlisten v;
	json_t *arr = json_array(), *o;
	bool first = true;

	if (!arr) {
		p_err("out of memory");
		return NULL;
	}
	while (!bpf_map_get_next_key(map, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (bpf_map_lookup_elem(map, &k, &v))
			continue;	/* deleted meanwhile */
		o = json_object();
		if (jappend(arr, o) ||
		    jset(o, "port", json_integer(ntohs(k.port))) ||
		    jset(o, "proto", k.proto == IPPROTO_TCP ? json_string("tcp") :
			 k.proto == IPPROTO_UDP ? json_string("udp") :
			 json_integer(k.proto)) ||
		    jset(o, "flags", jflags(v.flags, xlisten_flag_names, 2))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Append the rules of the LPM trie @map (@family) to @arr: 0 or -1. */
static int show_rules(const struct spry_maps *m, int map, int family, json_t *arr)
{
	size_t klen = family == AF_INET ? sizeof(struct spry_xpol4_key) :
					  sizeof(struct spry_xpol6_key);
	union {
		struct spry_xpol4_key	k4;
		struct spry_xpol6_key	k6;
	} k, next;
	char buf[64], cname[SPRY_NAME_LEN];
	const char *cn;
	struct spry_xpol v;
	struct prefix p;
	bool first = true;
	json_t *o;
	__u16 port;

	while (!bpf_map_get_next_key(map, first ? NULL : &k, &next)) {
		first = false;
		memcpy(&k, &next, klen);
		if (bpf_map_lookup_elem(map, &k, &v))
			continue;
		memset(&p, 0, sizeof(p));
		p.family = family;
		if (family == AF_INET) {
			p.len = k.k4.prefixlen - SPRY_XPOL_PORT_BITS;
			memcpy(p.addr, k.k4.addr, 4);
			port = ntohs(k.k4.port);
		} else {
			p.len = k.k6.prefixlen - SPRY_XPOL_PORT_BITS;
			memcpy(p.addr, k.k6.addr, 16);
			port = ntohs(k.k6.port);
		}
		prefix_str(&p, buf, sizeof(buf));
		cn = chain_name(m, v.chain, cname);
		o = json_object();
		if (jappend(arr, o) || jset(o, "prefix", json_string(buf)) ||
		    jset(o, "family", json_integer(family == AF_INET ? 4 : 6)) ||
		    jset(o, "port", json_integer(port)) ||
		    jset(o, "action", v.action == SPRY_XPA_ALLOW ? json_string("allow") :
			 v.action == SPRY_XPA_DENY ? json_string("deny") :
			 json_integer(v.action)) ||
		    jset(o, "chain_id", json_integer(v.chain)) ||
		    jset(o, "chain", cn ? json_string(cn) :
			 v.chain ? json_string("?") : json_null()))
			return -1;
	}
	return 0;
}

static int rule_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t fx = json_integer_value(json_object_get(x, "family"));
	json_int_t fy = json_integer_value(json_object_get(y, "family"));
	json_int_t px = json_integer_value(json_object_get(x, "port"));
	json_int_t py = json_integer_value(json_object_get(y, "port"));

	if (fx != fy)
		return fx < fy ? -1 : 1;
	if (px != py)
		return px < py ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x, "prefix")),
		      json_string_value(json_object_get(y, "prefix")));
}

/* Sum per-CPU entry @key of @map (@size bytes per CPU, u64 fields) into @out. */
int percpu_sum(int map, __u32 key, size_t size, __u64 *out)
{
	int ncpu = libbpf_num_possible_cpus(), c;
	size_t stride = (size + 7) & ~(size_t)7, i;
	__u64 *vals;

	if (ncpu < 0)
		return ncpu;
	vals = calloc(ncpu, stride);
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map, &key, vals)) {
		free(vals);
		return -errno;
	}
	memset(out, 0, size);
	for (c = 0; c < ncpu; c++)
		for (i = 0; i < size / 8; i++)
			out[i] += vals[c * stride / 8 + i];
	free(vals);
	return 0;
}

static json_t *show_counters(const struct spry_maps *m, int xm[XM_N], json_t **chains)
{
	struct spry_xchain_stats cs;
	char cname[SPRY_NAME_LEN];
	json_t *v = json_object(), *o;
	const char *cn;
	__u32 i;
	__u64 n;
	int err;

	*chains = json_array();
	if (!v || !*chains) {
		p_err("out of memory");
		goto err;
	}
	for (i = 0; i < SPRY_XV_MAX; i++) {
		err = percpu_sum(xm[XM_VERDICTS], i, sizeof(n), &n);
		if (err) {
			p_errno(err, "cannot read %s", xmap_names[XM_VERDICTS]);
			goto err;
		}
		if (jset(v, xverdict_names[i], json_integer(n)))
			goto err;
	}
	for (i = 1; i < SPRY_MAX_CHAINS; i++) {
		err = percpu_sum(xm[XM_CHAIN], i, sizeof(cs), (__u64 *)&cs);
		if (err) {
			p_errno(err, "cannot read %s", xmap_names[XM_CHAIN]);
			goto err;
		}
		cn = chain_name(m, i, cname);
		if (!cn && !cs.packets && !cs.bytes && !cs.dropped)
			continue;
		o = json_object();
		if (jappend(*chains, o) || jset(o, "id", json_integer(i)) ||
		    jset(o, "name", cn ? json_string(cn) : json_null()) ||
		    jset(o, "packets", json_integer(cs.packets)) ||
		    jset(o, "bytes", json_integer(cs.bytes)) ||
		    jset(o, "dropped", json_integer(cs.dropped)))
			goto err;
	}
	return v;
err:
	json_decref(v);
	json_decref(*chains);
	*chains = NULL;
	return NULL;
}

static void show_text(json_t *o)
{
	json_t *a, *e;
	const char *k;
	size_t i;

	printf("devices:\n");
	json_array_foreach(json_object_get(o, "devices"), i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *mode = json_string_value(json_object_get(e, "mode"));

		if (!json_is_true(json_object_get(e, "this_netns")))
			printf("  ifindex %lld in network namespace %lld\n",
			       json_integer_value(json_object_get(e, "ifindex")),
			       json_integer_value(json_object_get(e, "netns")));
		else if (!json_is_true(json_object_get(e, "attached")))
			printf("  ifindex %lld: link defunct (device gone)\n",
			       json_integer_value(json_object_get(e, "ifindex")));
		else
			printf("  %s (ifindex %lld) %s, prog %lld, link %lld\n",
			       name ? name : "?",
			       json_integer_value(json_object_get(e, "ifindex")),
			       mode ? mode : "?",
			       json_integer_value(json_object_get(e, "prog_id")),
			       json_integer_value(json_object_get(e, "link_id")));
	}
	printf("listeners:\n");
	json_array_foreach(json_object_get(o, "listeners"), i, e) {
		json_t *f;
		size_t j;

		printf("  %s %lld", json_string_value(json_object_get(e, "proto")),
		       json_integer_value(json_object_get(e, "port")));
		json_array_foreach(json_object_get(e, "flags"), j, f)
			printf(" %s", json_string_value(f));
		printf("\n");
	}
	printf("rules:\n");
	json_array_foreach(json_object_get(o, "rules"), i, e) {
		json_t *c = json_object_get(e, "chain");

		printf("  %s port %lld %s%s%s\n",
		       json_string_value(json_object_get(e, "prefix")),
		       json_integer_value(json_object_get(e, "port")),
		       json_is_string(json_object_get(e, "action")) ?
		       json_string_value(json_object_get(e, "action")) : "invalid",
		       json_is_string(c) ? " chain " : "",
		       json_is_string(c) ? json_string_value(c) : "");
	}
	a = json_object_get(o, "verdicts");
	if (json_object_size(a)) {
		printf("verdicts:\n");
		json_object_foreach(a, k, e)
			printf("  %-16s %lld\n", k, json_integer_value(e));
	}
	printf("chains:\n");
	json_array_foreach(json_object_get(o, "chains"), i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));

		printf("  %s (%lld): packets %lld bytes %lld dropped %lld\n",
		       name ? name : "?", json_integer_value(json_object_get(e, "id")),
		       json_integer_value(json_object_get(e, "packets")),
		       json_integer_value(json_object_get(e, "bytes")),
		       json_integer_value(json_object_get(e, "dropped")));
	}
}

static int do_show(int argc, char **argv)
{
	int xm[XM_N] = { -1, -1, -1, -1, -1, -1 };
	json_t *o = NULL, *rules = NULL, *chains = NULL, *verdicts;
	struct spry_maps m;
	unsigned long ns;
	bool have_maps;
	int err, ret = -1;

	if (argc) {
		p_err("unexpected argument '%s'", argv[0]);
		return -1;
	}
	ns = netns_ino();
	if (!ns)
		return -1;
	if (maps_open(&m))
		return -1;
	err = xmaps_open(xm);
	have_maps = !err;
	if (err && err != -ENOENT) {
		xmaps_close(xm);
		xmaps_open_report(xm);	/* reports it */
		goto out;
	}
	o = json_object();
	rules = json_array();
	if (!o || !rules) {
		p_err("out of memory");
		goto out;
	}
	if (jset(o, "pin_dir", json_string(pin_dir)) ||
	    jset(o, "loaded", json_boolean(have_maps && pin_exists(SPRY_PROG_XDP))) ||
	    jset(o, "devices", show_devices(ns)))
		goto out;
	if (have_maps) {
		if (jset(o, "listeners", show_listeners(xm[XM_LISTEN])) ||
		    show_rules(&m, xm[XM_POL4], AF_INET, rules) ||
		    show_rules(&m, xm[XM_POL6], AF_INET6, rules))
			goto out;
		verdicts = show_counters(&m, xm, &chains);
		if (jset(o, "verdicts", verdicts))
			goto out;
	} else {
		chains = json_array();
		if (jset(o, "listeners", json_array()) ||
		    jset(o, "verdicts", json_object()))
			goto out;
	}
	if (json_array_size(rules) > 1) {
		size_t n = json_array_size(rules), i;
		json_t **v = calloc(n, sizeof(*v)), *sorted = json_array();

		if (!v || !sorted) {
			free(v);
			json_decref(sorted);
			p_err("out of memory");
			goto out;
		}
		for (i = 0; i < n; i++)
			v[i] = json_array_get(rules, i);
		qsort(v, n, sizeof(*v), rule_cmp);
		for (i = 0; i < n; i++)
			json_array_append(sorted, v[i]);
		free(v);
		json_decref(rules);
		rules = sorted;
	}
	err = jset(o, "rules", rules);
	rules = NULL;
	if (err)
		goto out;
	err = jset(o, "chains", chains);
	chains = NULL;
	if (err)
		goto out;
	show_emit_one(o, show_text);
	o = NULL;
	ret = 0;
out:
	json_decref(chains);
	json_decref(rules);
	json_decref(o);
	xmaps_close(xm);
	spry_maps__close(&m);
	return ret;
}

int do_ingress(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show",	do_show },
		{ "attach",	do_attach },
		{ "detach",	do_detach },
		{ "allow",	do_allow },
		{ "deny",	do_deny },
		{ "del",	do_del },
		{ "help",	do_help },
		{ NULL,		NULL },
	};

	return cmd_select(cmds, argc, argv, "ingress command");
}
