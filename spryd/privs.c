// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's privileges room (spryd/privs.h, docs/SECURITY.md): least
 * privilege.  Once everything that needs more is set up (pinned maps
 * opened, listeners bound, RLIMIT_NOFILE raised), spryd keeps only the capabilities its loop uses:
 *
 *   CAP_BPF        every bpf() call (kernel.unprivileged_bpf_disabled=2
 *                  refuses bpf() to a process without it): map updates,
 *                  socket inserts into spry_socks, sender storage
 *   CAP_NET_ADMIN  kept for the datagram path (AF_XDP, XSKMAP updates)
 *   CAP_NET_RAW    AF_XDP sockets
 *   CAP_CHOWN      a pool file or memfd is given to the chain's user (its
 *                  mode is set before, while spryd owns it: no CAP_FOWNER)
 *   CAP_IPC_LOCK   hugetlb pools and an AF_XDP UMEM larger than the
 *                  8 MiB RLIMIT_MEMLOCK
 *
 * Every other capability leaves the effective, permitted and bounding
 * sets, inheritable and ambient are emptied, and PR_SET_NO_NEW_PRIVS is
 * set: nothing spryd could exec would gain any.  spryd stays uid 0 (its
 * pins, control socket and pool directory are root's).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "spryd/privs.h"
#include "spryd/spryd.h"

static const int keep_caps[] = {
	CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW, CAP_CHOWN, CAP_IPC_LOCK,
};

static bool kept(int cap)
{
	size_t i;

	for (i = 0; i < sizeof(keep_caps) / sizeof(keep_caps[0]); i++)
		if (keep_caps[i] == cap)
			return true;
	return false;
}

static int caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
	};

	return syscall(SYS_capget, &hdr, data) ? -errno : 0;
}

static int caps_set(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
	};

	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

int spryd_drop_privs(struct spryd *d)
{
	struct __user_cap_data_struct data[2];
	unsigned int dropped = 0;
	uint64_t eff = 0;
	int cap, err;

	(void)d;
	err = caps_get(data);
	if (err) {
		spryd_log("capget: %s", strerror(-err));
		return err;
	}
	/* The bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP. */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (kept(cap) || prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) {
			err = -errno;
			spryd_log("dropping capability %d from the bounding set: %s",
				  cap, strerror(-err));
			return err;
		}
		dropped++;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		err = -errno;
		spryd_log("clearing the ambient set: %s", strerror(-err));
		return err;
	}
	for (cap = 0; cap < 64; cap++) {
		uint32_t bit = 1u << (cap % 32);

		if (kept(cap)) {
			if (data[cap / 32].permitted & bit)
				eff |= 1ULL << cap;
			continue;
		}
		data[cap / 32].effective &= ~bit;
		data[cap / 32].permitted &= ~bit;
	}
	data[0].inheritable = data[1].inheritable = 0;
	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	err = caps_set(data);
	if (err) {
		spryd_log("capset: %s", strerror(-err));
		return err;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		err = -errno;
		spryd_log("PR_SET_NO_NEW_PRIVS: %s", strerror(-err));
		return err;
	}
	spryd_log("privileges: capabilities %#llx kept (bpf, net_admin, net_raw, chown, "
		  "ipc_lock where held), %u dropped from the bounding set, no_new_privs",
		  (unsigned long long)eff, dropped);
	return 0;
}
