// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's privileges room (spryd/privs.h, docs/SECURITY.md): least
 * privilege.  Once everything that needs more is set up (pinned maps
 * opened, listeners bound, RLIMIT_NOFILE raised), spryd keeps only the
 * capabilities its loop uses (with libcap):
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
#include <sys/capability.h>
#include <sys/prctl.h>

#include "spryd/privs.h"
#include "spryd/spryd.h"

static const cap_value_t keep_caps[] = {
	CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW, CAP_CHOWN, CAP_IPC_LOCK,
	/* declared functions: started as the chain's user, stopped by signal */
	CAP_SETUID, CAP_SETGID, CAP_KILL,
};

static bool kept(cap_value_t cap)
{
	size_t i;

	for (i = 0; i < sizeof(keep_caps) / sizeof(keep_caps[0]); i++)
		if (keep_caps[i] == cap)
			return true;
	return false;
}

/* The bounding set first: dropping from it needs CAP_SETPCAP. */
static int drop_bounding(unsigned int *dropped)
{
	cap_value_t cap;
	int err;

	for (cap = 0; cap_get_bound(cap) >= 0; cap++) {
		if (kept(cap) || cap_get_bound(cap) == 0)
			continue;
		if (cap_drop_bound(cap)) {
			err = -errno;
			spryd_log("dropping capability %d from the bounding set: %s",
				  cap, strerror(-err));
			return err;
		}
		(*dropped)++;
	}
	return 0;
}

int spryd_drop_privs(struct spryd *d)
{
	unsigned int dropped = 0;
	cap_flag_value_t v;
	uint64_t eff = 0;
	cap_value_t cap;
	cap_t caps;
	int err;

	(void)d;
	caps = cap_get_proc();
	if (!caps) {
		err = -errno;
		spryd_log("cap_get_proc: %s", strerror(-err));
		return err;
	}
	err = drop_bounding(&dropped);
	if (err)
		goto out;
	if (cap_reset_ambient() && errno != EINVAL) {
		err = -errno;
		spryd_log("clearing the ambient set: %s", strerror(-err));
		goto out;
	}
	/* Kept: effective = permitted.  Others: out of both.  Inheritable: empty. */
	for (cap = 0; cap < cap_max_bits() && cap < 64; cap++) {
		if (cap_get_flag(caps, cap, CAP_PERMITTED, &v)) {
			err = -errno;
			goto out;
		}
		if (kept(cap) && v == CAP_SET) {
			eff |= 1ULL << cap;
			err = cap_set_flag(caps, CAP_EFFECTIVE, 1, &cap, CAP_SET);
		} else {
			err = cap_set_flag(caps, CAP_EFFECTIVE, 1, &cap, CAP_CLEAR) ?:
			      cap_set_flag(caps, CAP_PERMITTED, 1, &cap, CAP_CLEAR);
		}
		if (err) {
			err = -errno;
			goto out;
		}
	}
	if (cap_clear_flag(caps, CAP_INHERITABLE) || cap_set_proc(caps)) {
		err = -errno;
		spryd_log("cap_set_proc: %s", strerror(-err));
		goto out;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		err = -errno;
		spryd_log("PR_SET_NO_NEW_PRIVS: %s", strerror(-err));
		goto out;
	}
	spryd_log("privileges: capabilities %#llx kept (bpf, net_admin, net_raw, chown, "
		  "ipc_lock, setuid, setgid, kill where held), %u dropped from the bounding set, no_new_privs",
		  (unsigned long long)eff, dropped);
out:
	cap_free(caps);
	return err;
}
