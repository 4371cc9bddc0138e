// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd: spry's daemon (registrar, origins, request core, HTTP, datagram
 * and control-socket fronts).  This file is its command line: usage(),
 * parse_args() and main(); the daemon itself is put together in daemon.c,
 * and each room of it is listed in docs/DESIGN.md, "spryd's rooms".
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn-runtime/cpus.h"
#include "spryd/daemon.h"
#include "spryd/dgram.h"
#include "spryd/gateway.h"
#include "fn-runtime/parse.h"
#include "spryd/http.h"
#include "spryd/spryd.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: spryd [options]\n"
		"  -P, --pin-dir DIR    pinned maps (default $SPRY_PIN_DIR or %s)\n"
		"  -s, --sock PATH      control socket (default %s)\n"
		"      --pool-dir DIR   pool files: hugetlbfs mount (else memfd)\n"
		"      --origins N      origin sockets (1..%d, default 1)\n"
		"      --cpus LIST      run on these CPUs (e.g. 1 or 0-3,6), like the chains\n"
		"                       placed there with `spry chain add ... cpus LIST`\n"
		"HTTP front:\n"
		"      --http ADDR:PORT listen there (default 127.0.0.1:8080; [::1]:P for IPv6;\n"
		"                       'none': no HTTP front)\n"
		"      --max-conns N    open HTTP connections (default 16384; more: closed at accept)\n"
		"      --max-line B     request line bytes (default 8192) -> 414\n"
		"      --max-header-bytes B  header section bytes (default 16384) -> 431\n"
		"      --max-headers N  header fields (default 64) -> 431\n"
		"      --max-body B     request body bytes (default 1048576) -> 413\n"
		"      --idle-timeout S    keep-alive idle (default 60)\n"
		"      --header-timeout S  a request's head (default 10) -> 408\n"
		"      --body-timeout S    a request's body after its head (default 30) -> 408\n"
		"      --write-timeout S   no write progress on a response (default 30): close\n"
		"      --access-log FILE   one line per request ('-': stderr; default off)\n"
		"      --front epoll|uring the HTTP front's I/O: an epoll loop (default) or\n"
		"                       io_uring (multishot accept and receive, batched sends)\n"
		"      --body-direct B  a request body with at least B bytes still to come is\n"
		"                       received straight into its pool buffer, not copied\n"
		"                       there from the read buffers (default 16384; 0: never)\n"
		"      --sqpoll CPU|any with --front uring: a second front thread, the ring's\n"
		"                       kernel submission thread (io_uring SQPOLL), makes the\n"
		"                       connections' receives and sends, on CPU or on any of\n"
		"                       spryd's CPUs (--cpus); it sleeps after %u ms without work\n"
		"      --desc-send send|ring  how requests' descriptors leave for their chains:\n"
		"                       one send() per loop iteration (default), or with\n"
		"                       --front uring an operation of the front's ring,\n"
		"                       submitted with the iteration's responses\n"
		"Datagram requests (docs/DATAGRAM.md; repeatable):\n"
		"      --dgram IFNAME[:QUEUE]=CHAIN  AF_XDP socket on IFNAME's RX queue (default 0)\n"
		"                       for CHAIN, inserted in spry_xsks (`spry ingress attach`);\n"
		"                       its UMEM is a reserved run of CHAIN's pool (buffer size\n"
		"                       2048 or 4096); datagrams naming another chain: NO_CHAIN\n"
		"      --dgram-udp ADDR:PORT=CHAIN   the kernel UDP socket baseline, same format\n"
		"Declared functions (spry fn declare, spry apply's run:):\n"
		"      --state-dir DIR      declarations (default $SPRY_STATE_DIR, else\n"
		"                           /run/spry/fns/<pin dir with / as _>)\n"
		"      --scale-tick S       autoscaler period (default 0.1)\n"
		"      --stable-window S    stable window (default 60)\n"
		"      --panic-window S     panic window (default 6)\n"
		"      --start-timeout S    spawn to registration (default 5)\n"
		"      --start-backoff S    first restart delay after a failure, doubling\n"
		"                           up to 30 s (default 0.1)\n"
		"      --stop-timeout S     SIGTERM to SIGKILL of a stopped instance (default 5)\n"
		"  -v, --verbose        log more\n"
		"  -h, --help           this text\n",
		SPRY_PIN_DIR_DEFAULT, SPRY_CTL_SOCK_DEFAULT, SPRYD_MAX_ORIGINS, SPRYD_SQPOLL_IDLE_MS);
}

static int opt_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return spry_num__parse(s, NULL, min, max, out);
}

/* Seconds, fractions allowed ("0.5"): 1 ms .. 1 day, in ns. */
static int opt_secs(const char *s, uint64_t *ns)
{
	return spry_secs__parse(s, 1000000ULL, 86400ULL * 1000000000ULL, ns);
}

static int opt_index(const struct option *opts, int val)
{
	int i;

	for (i = 0; opts[i].name; i++)
		if (opts[i].val == val)
			return i;
	return 0;
}

/*
 * --cpus: run spryd (and the threads it starts later) on these CPUs.  On a
 * small machine, spryd and the chains it serves on one CPU hand requests
 * to each other without waking another CPU (docs/DESIGN.md, "Placement").
 */
static int place(const char *list)
{
	__u64 mask[SPRY_CPU_WORDS];
	char err[128];
	cpu_set_t set;

	if (spry_cpus__parse(list, mask, err, sizeof(err))) {
		fprintf(stderr, "spryd: --%s\n", err);
		return -EINVAL;
	}
	spry_cpus__to_set(mask, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "spryd: --cpus %s: %s\n", list, strerror(errno));
		return -errno;
	}
	return 0;
}

static int parse_args(struct spryd *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "sock", required_argument, NULL, 's' },
		{ "pool-dir", required_argument, NULL, 'p' },
		{ "origins", required_argument, NULL, 'o' },
		{ "http", required_argument, NULL, 'H' },
		{ "max-conns", required_argument, NULL, 1000 },
		{ "max-line", required_argument, NULL, 1001 },
		{ "max-header-bytes", required_argument, NULL, 1002 },
		{ "max-headers", required_argument, NULL, 1003 },
		{ "max-body", required_argument, NULL, 1004 },
		{ "idle-timeout", required_argument, NULL, 1005 },
		{ "header-timeout", required_argument, NULL, 1006 },
		{ "body-timeout", required_argument, NULL, 1007 },
		{ "write-timeout", required_argument, NULL, 1008 },
		{ "access-log", required_argument, NULL, 1009 },
		{ "dgram", required_argument, NULL, 1010 },
		{ "dgram-udp", required_argument, NULL, 1011 },
		{ "cpus", required_argument, NULL, 1012 },
		{ "state-dir", required_argument, NULL, 1013 },
		{ "scale-tick", required_argument, NULL, 1014 },
		{ "stable-window", required_argument, NULL, 1015 },
		{ "panic-window", required_argument, NULL, 1016 },
		{ "start-timeout", required_argument, NULL, 1017 },
		{ "start-backoff", required_argument, NULL, 1018 },
		{ "stop-timeout", required_argument, NULL, 1019 },
		{ "front", required_argument, NULL, 1020 },
		{ "body-direct", required_argument, NULL, 1021 },
		{ "sqpoll", required_argument, NULL, 1022 },
		{ "desc-send", required_argument, NULL, 1023 },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *sock = SPRY_CTL_SOCK_DEFAULT, *pin = NULL, *desc_send = NULL;
	uint64_t u;
	int c;

	while ((c = getopt_long(argc, argv, "P:s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			d->http.addr = strcmp(optarg, "none") ? optarg : NULL;
			d->http.addr_given = true;
			break;
		case 1000:
			if (opt_u64(optarg, 1, 1000000, &u))
				goto bad;
			d->http.max_conns = (uint32_t)u;
			break;
		case 1001:
			if (opt_u64(optarg, 1, SPRY_HTTP_LINE_MAX, &u))
				goto bad;
			d->http.max_line = u;
			break;
		case 1002:
			if (opt_u64(optarg, 1, SPRY_HTTP_HBYTES_MAX, &u))
				goto bad;
			d->http.max_header_bytes = u;
			break;
		case 1003:
			if (opt_u64(optarg, 1, SPRY_HTTP_NHDR_MAX, &u))
				goto bad;
			d->http.max_headers = u;
			break;
		case 1004:
			if (opt_u64(optarg, 0, SPRY_POOL_MAX_BUF, &u))
				goto bad;
			d->http.max_body = u;
			break;
		case 1005:
		case 1006:
		case 1007:
		case 1008:
			if (opt_secs(optarg, &u))
				goto bad;
			*(c == 1005 ? &d->http.idle_ns : c == 1006 ? &d->http.header_ns :
			  c == 1007 ? &d->http.body_ns : &d->http.write_ns) = u;
			break;
		case 1009:
			d->http.access_log = optarg;
			break;
		case 1010:
		case 1011:
			if (dgram_opt(d, optarg, c == 1011))
				return -EINVAL;
			break;
		case 1012:
			if (place(optarg))
				return -EINVAL;
			break;
		case 1013:
			d->sv_opts.state_dir = optarg;
			break;
		case 1014:
		case 1015:
		case 1016:
		case 1017:
		case 1018:
		case 1019:
			if (opt_secs(optarg, &u))
				goto bad;
			*(c == 1014 ? &d->sv_opts.tick_ns : c == 1015 ? &d->sv_opts.stable_ns :
			  c == 1016 ? &d->sv_opts.panic_ns : c == 1017 ? &d->sv_opts.start_timeout_ns :
			  c == 1018 ? &d->sv_opts.backoff_ns : &d->sv_opts.stop_timeout_ns) = u;
			break;
		case 1020:
			if (strcmp(optarg, "epoll") && strcmp(optarg, "uring")) {
				fprintf(stderr, "spryd: --front: 'epoll' or 'uring', not '%s'\n",
					optarg);
				return -EINVAL;
			}
			d->http.uring = !strcmp(optarg, "uring");
			break;
		case 1021:
			if (opt_u64(optarg, 0, SPRY_POOL_MAX_BUF, &u))
				goto bad;
			d->http.body_direct = u;
			break;
		case 1022:
			d->http.sqpoll = true;
			d->http.sqpoll_cpu = -1;
			if (strcmp(optarg, "any")) {
				if (opt_u64(optarg, 0, CPU_SETSIZE - 1, &u))
					goto bad;
				d->http.sqpoll_cpu = (int)u;
			}
			break;
		case 1023:
			if (strcmp(optarg, "send") && strcmp(optarg, "ring")) {
				fprintf(stderr, "spryd: --desc-send: 'send' or 'ring', not '%s'\n",
					optarg);
				return -EINVAL;
			}
			desc_send = optarg;
			break;
		case 'P':
			pin = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'p':
			d->pool_dir = optarg;
			break;
		case 'o':
			if (opt_u64(optarg, 1, SPRYD_MAX_ORIGINS, &u)) {
				fprintf(stderr, "spryd: --origins: 1..%d\n", SPRYD_MAX_ORIGINS);
				return -EINVAL;
			}
			d->n_origins = (unsigned int)u;
			break;
		case 'v':
			d->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		continue;
bad:
		fprintf(stderr, "spryd: bad value '%s' for --%s\n", optarg,
			opts[opt_index(opts, c)].name);
		return -EINVAL;
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (d->http.sqpoll && !d->http.uring) {
		fprintf(stderr, "spryd: --sqpoll needs --front uring\n");
		return -EINVAL;
	}
	d->http.desc_ring = desc_send && !strcmp(desc_send, "ring");
	if (d->http.desc_ring && !d->http.uring) {
		fprintf(stderr, "spryd: --desc-send ring needs --front uring\n");
		return -EINVAL;
	}
	if (!*sock || strlen(sock) >= sizeof(d->sock_path)) {
		fprintf(stderr, "spryd: control socket path empty or too long\n");
		return -EINVAL;
	}
	strcpy(d->sock_path, sock);
	d->pin_dir = spry_pin_dir(pin);
	return 0;
}

int main(int argc, char **argv)
{
	struct spryd *d;
	int err;

	d = spryd_new();
	if (!d) {
		fprintf(stderr, "spryd: out of memory\n");
		return 1;
	}
	err = parse_args(d, argc, argv);
	if (!err)
		err = spryd_run(d);
	spryd_free(d);
	return err ? 1 : 0;
}
