// SPDX-License-Identifier: GPL-2.0-only
/*
 * dgram_echo: attaches bench/dgram_echo.bpf.c to a device and holds it
 * until SIGTERM/SIGINT (the XDP link goes with the process).
 *
 *   dgram_echo IFNAME PORT    answer datagram requests to PORT (XDP_TX)
 *   dgram_echo IFNAME pass    XDP_PASS only: the receiving end of a veth
 *                             whose peer sends with XDP_TX
 */
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "fn-runtime/parse.h"
#include "echo_xdp.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct echo_xdp *skel;
	struct bpf_link *link;
	struct bpf_program *prog;
	unsigned int ifindex;
	bool pass;
	uint16_t port = 0;
	int err = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: dgram_echo IFNAME PORT|pass\n");
		return 2;
	}
	ifindex = if_nametoindex(argv[1]);
	pass = !strcmp(argv[2], "pass");
	if (!ifindex || (!pass && spry_port__parse(argv[2], &port))) {
		fprintf(stderr, "dgram_echo: bad device '%s' or port '%s'\n", argv[1], argv[2]);
		return 2;
	}
	skel = echo_xdp__open();
	if (!skel) {
		fprintf(stderr, "dgram_echo: open: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->udp_port = port;
	if (echo_xdp__load(skel)) {
		fprintf(stderr, "dgram_echo: load: %s\n", strerror(errno));
		goto out;
	}
	prog = pass ? skel->progs.xdp_pass : skel->progs.xdp_echo;
	link = bpf_program__attach_xdp(prog, (int)ifindex);
	if (!link) {
		fprintf(stderr, "dgram_echo: attach to %s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop)
		pause();
	bpf_link__destroy(link);
	err = 0;
out:
	echo_xdp__destroy(skel);
	return err;
}
