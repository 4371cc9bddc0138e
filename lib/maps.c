// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pinned maps: opening them (with a layout check against include/spry/abi.h),
 * authorizations, instance state and the per-CPU counters.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/core.h"

struct map_desc {
	const char	*name;
	size_t		fd_off;		/* offsetof(struct spry_maps, ...) */
	__u32		type;
	__u32		key_size;
	__u32		value_size;
	__u32		max_entries;	/* 0: not checked */
};

#define MAP_DESC(macro, field, t, k, v, n) \
	{ SPRY_STR(macro), offsetof(struct spry_maps, field), t, k, v, n }

static const struct map_desc map_descs[SPRY_N_MAPS] = {
	MAP_DESC(SPRY_MAP_SOCKS, socks, BPF_MAP_TYPE_SOCKHASH,
		 sizeof(struct spry_inst_key), sizeof(__u64), 0),
	MAP_DESC(SPRY_MAP_SENDERS, senders, BPF_MAP_TYPE_SK_STORAGE,
		 sizeof(int), sizeof(struct spry_sender), 0),
	MAP_DESC(SPRY_MAP_CHAINS, chains, BPF_MAP_TYPE_ARRAY,
		 sizeof(__u32), sizeof(struct spry_chain), SPRY_MAX_CHAINS),
	MAP_DESC(SPRY_MAP_FNS, fns, BPF_MAP_TYPE_ARRAY,
		 sizeof(__u32), sizeof(struct spry_fn), SPRY_MAX_FNS),
	MAP_DESC(SPRY_MAP_AUTH, auth, BPF_MAP_TYPE_HASH,
		 sizeof(struct spry_auth_key), sizeof(__u32), 0),
	MAP_DESC(SPRY_MAP_INST, inst, BPF_MAP_TYPE_ARRAY, sizeof(__u32),
		 sizeof(struct spry_inst_state), SPRY_MAX_FNS * SPRY_MAX_INST),
	MAP_DESC(SPRY_MAP_VERDICTS, verdicts, BPF_MAP_TYPE_PERCPU_ARRAY,
		 sizeof(__u32), sizeof(__u64), SPRY_V_MAX),
	MAP_DESC(SPRY_MAP_FN_STATS, fn_stats, BPF_MAP_TYPE_PERCPU_ARRAY,
		 sizeof(__u32), sizeof(struct spry_fn_stats), SPRY_MAX_FNS),
	MAP_DESC(SPRY_MAP_REQLOC, reqloc, BPF_MAP_TYPE_ARRAY,
		 sizeof(__u32), sizeof(struct spry_reqloc), SPRY_REQ_SLOTS),
	MAP_DESC(SPRY_MAP_EVENTS, events, BPF_MAP_TYPE_RINGBUF, 0, 0, 0),
	MAP_DESC(SPRY_MAP_PROCS, procs, BPF_MAP_TYPE_HASH, sizeof(struct spry_proc_key),
		 sizeof(struct spry_proc), SPRY_MAX_PROCS),
	MAP_DESC(SPRY_MAP_FANREC, fanrec, BPF_MAP_TYPE_HASH, sizeof(struct spry_fan_key),
		 sizeof(struct spry_fan_rec), SPRY_FAN_RECS),
};

const char *const spry_map_pin_names[SPRY_N_MAPS + 1] = {
	SPRY_STR(SPRY_MAP_SOCKS),
	SPRY_STR(SPRY_MAP_SENDERS),
	SPRY_STR(SPRY_MAP_CHAINS),
	SPRY_STR(SPRY_MAP_FNS),
	SPRY_STR(SPRY_MAP_AUTH),
	SPRY_STR(SPRY_MAP_INST),
	SPRY_STR(SPRY_MAP_VERDICTS),
	SPRY_STR(SPRY_MAP_FN_STATS),
	SPRY_STR(SPRY_MAP_REQLOC),
	SPRY_STR(SPRY_MAP_EVENTS),
	SPRY_STR(SPRY_MAP_PROCS),
	SPRY_STR(SPRY_MAP_FANREC),
	NULL,
};

static int *map_fd(struct spry_maps *m, const struct map_desc *d)
{
	return (int *)((char *)m + d->fd_off);
}

static int map_check(int fd, const struct map_desc *d)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != d->type || info.key_size != d->key_size ||
	    info.value_size != d->value_size ||
	    (d->max_entries && info.max_entries != d->max_entries))
		return -EPROTO;
	return 0;
}

void spry_maps__init(struct spry_maps *m)
{
	unsigned int i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < SPRY_N_MAPS; i++)
		*map_fd(m, &map_descs[i]) = -1;
}

int spry_maps__open(struct spry_maps *m, const char *dir)
{
	char path[PATH_MAX];
	unsigned int i;
	int fd, err;

	spry_maps__init(m);
	if (strlen(dir) >= sizeof(m->dir))
		return -ENAMETOOLONG;
	strcpy(m->dir, dir);
	for (i = 0; i < SPRY_N_MAPS; i++) {
		const struct map_desc *d = &map_descs[i];

		if (snprintf(path, sizeof(path), "%s/%s", dir, d->name) >=
		    (int)sizeof(path)) {
			err = -ENAMETOOLONG;
			goto err_close;
		}
		fd = bpf_obj_get(path);
		if (fd < 0) {
			err = -errno;
			goto err_close;
		}
		*map_fd(m, d) = fd;
		err = map_check(fd, d);
		if (err)
			goto err_close;
	}
	return 0;

err_close:
	spry_maps__close(m);
	return err;
}

void spry_maps__close(struct spry_maps *m)
{
	unsigned int i;
	int *fd;

	for (i = 0; i < SPRY_N_MAPS; i++) {
		fd = map_fd(m, &map_descs[i]);
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

int spry_auth__set(const struct spry_maps *m, __u16 chain, __u16 from, __u16 to,
		   bool allow)
{
	return spry_auth__set_kind(m, chain, from, to, SPRY_AK_HANDOFF, allow);
}

int spry_auth__set_kind(const struct spry_maps *m, __u16 chain, __u16 from,
			__u16 to, __u16 kind, bool allow)
{
	struct spry_auth_key key = { .chain = chain, .from = from, .to = to,
				     .kind = kind };
	__u32 one = 1;

	if (!chain || chain >= SPRY_MAX_CHAINS || from >= SPRY_MAX_FNS ||
	    to >= SPRY_MAX_FNS || kind > SPRY_AK_APP_NEXT)
		return -EINVAL;
	if (allow)
		return bpf_map_update_elem(m->auth, &key, &one, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(m->auth, &key) && errno != ENOENT)
		return -errno;
	return 0;
}

int spry_auth__get(const struct spry_maps *m, __u16 chain, __u16 from, __u16 to)
{
	struct spry_auth_key key = { .chain = chain, .from = from, .to = to };
	__u32 val;

	if (!chain || chain >= SPRY_MAX_CHAINS || from >= SPRY_MAX_FNS ||
	    to >= SPRY_MAX_FNS)
		return -EINVAL;
	if (bpf_map_lookup_elem(m->auth, &key, &val))
		return -errno;
	return 0;
}

static int inst_index(__u16 fn, __u16 inst, __u32 *idx)
{
	if (fn >= SPRY_MAX_FNS || inst >= SPRY_MAX_INST)
		return -EINVAL;
	*idx = (__u32)fn * SPRY_MAX_INST + inst;
	return 0;
}

int spry_inst__get(const struct spry_maps *m, __u16 fn, __u16 inst,
		   struct spry_inst_state *st)
{
	__u32 idx;
	int err;

	err = inst_index(fn, inst, &idx);
	if (err)
		return err;
	return bpf_map_lookup_elem(m->inst, &idx, st) ? -errno : 0;
}

int spry_inst__put(const struct spry_maps *m, __u16 fn, __u16 inst,
		   const struct spry_inst_state *st)
{
	__u32 idx;
	int err;

	err = inst_index(fn, inst, &idx);
	if (err)
		return err;
	return bpf_map_update_elem(m->inst, &idx, st, BPF_ANY) ? -errno : 0;
}

static int ncpus(void)
{
	int n = libbpf_num_possible_cpus();

	if (n == 0)
		return -EINVAL;
	return n;
}

int spry_verdicts__read(const struct spry_maps *m, __u64 out[SPRY_V_MAX])
{
	__u64 *vals;
	__u32 v;
	int n, c, err = 0;

	n = ncpus();
	if (n < 0)
		return n;
	vals = calloc(n, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (v = 0; v < SPRY_V_MAX; v++) {
		if (bpf_map_lookup_elem(m->verdicts, &v, vals)) {
			err = -errno;
			break;
		}
		out[v] = 0;
		for (c = 0; c < n; c++)
			out[v] += vals[c];
	}
	free(vals);
	return err;
}

int spry_fn_stats__read(const struct spry_maps *m, __u16 fn, struct spry_fn_stats *out)
{
	struct spry_fn_stats *vals;
	__u32 key = fn;
	int n, c;

	if (fn >= SPRY_MAX_FNS)
		return -EINVAL;
	n = ncpus();
	if (n < 0)
		return n;
	vals = calloc(n, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->fn_stats, &key, vals)) {
		n = -errno;
		free(vals);
		return n;
	}
	memset(out, 0, sizeof(*out));
	for (c = 0; c < n; c++) {
		out->delivered += vals[c].delivered;
		out->sent += vals[c].sent;
		out->errors += vals[c].errors;
		out->dropped += vals[c].dropped;
	}
	free(vals);
	return 0;
}

int spry_fn_stats__clear(const struct spry_maps *m, __u16 fn)
{
	struct spry_fn_stats *vals;
	__u32 key = fn;
	int n, err = 0;

	if (fn >= SPRY_MAX_FNS)
		return -EINVAL;
	n = ncpus();
	if (n < 0)
		return n;
	vals = calloc(n, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_update_elem(m->fn_stats, &key, vals, BPF_ANY))
		err = -errno;
	free(vals);
	return err;
}
