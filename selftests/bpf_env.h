/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The environment of spry's C selftests that load BPF: root, a private
 * network namespace (lo up), a private pin directory under bpffs.  Each
 * step that cannot be had skips the whole test with its reason (exit 4).
 * Include after selftests/tap.h.
 */
#ifndef SPRY_BPF_ENV_H
#define SPRY_BPF_ENV_H

#include <errno.h>
#include <stdbool.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

static inline int bpf_env_lo_up(void)
{
	struct ifreq ifr;
	int fd, err = 0;

	memset(&ifr, 0, sizeof(ifr));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		err = -errno;
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		err = -errno;
out:
	close(fd);
	return err;
}

/*
 * bpffs at /sys/fs/bpf: when the host has none mounted (a fresh boot), the
 * test mounts one in a mount namespace of its own, so the host is left as
 * it was.  0, or -errno.
 */
static inline int bpf_env_bpffs(void)
{
	struct statfs st;

	if (!statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (unshare(CLONE_NEWNS))
		return -errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return -errno;
	return 0;
}

/*
 * Enter the environment; @pin_dir (@len bytes) gets
 * /sys/fs/bpf/spry-test-@name-<pid>, created 0700: the test removes it.
 */
static inline void bpf_env_enter(const char *name, char *pin_dir, size_t len)
{
	int err;

	if (geteuid() != 0)
		tap_skip_all("needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
	if (unshare(CLONE_NEWNET))
		tap_skip_all("cannot create a network namespace");
	if (bpf_env_lo_up())
		tap_skip_all("cannot bring lo up");
	if (bpf_env_bpffs())
		tap_skip_all("no bpffs at /sys/fs/bpf and none can be mounted");
	snprintf(pin_dir, len, "/sys/fs/bpf/spry-test-%s-%d", name, (int)getpid());
	if (mkdir(pin_dir, 0700)) {
		err = errno;
		if (err == ENOENT || err == EPERM || err == EACCES)
			tap_skip_all("no bpffs at /sys/fs/bpf");
		printf("Bail out! mkdir %s: %s\n", pin_dir, strerror(err));
		exit(KSFT_FAIL);
	}
}

/*
 * The first case of a test that loads its skeleton, given what loading
 * returned: EPERM skips this case and the rest; another error fails the
 * check "skeleton loaded with @what" and skips the rest.  true when loaded.
 */
static inline bool bpf_env_loaded(int err, const char *what)
{
	if (err == -EPERM) {
		tap_skip_case("loading BPF not permitted");
		tap_skip_rest("loading BPF not permitted");
		return false;
	}
	if (!tap_ok(!err, "skeleton loaded with %s (%s)", what, err ? strerror(-err) : "ok")) {
		tap_skip_rest("no skeleton");
		return false;
	}
	return true;
}

#endif /* SPRY_BPF_ENV_H */
