/* SPDX-License-Identifier: GPL-2.0-only */
/* spryd's datagram front (dgram.c): --dgram AF_XDP, --dgram-udp; docs/DATAGRAM.md. */
#ifndef SPRYD_DGRAM_H
#define SPRYD_DGRAM_H

#include <stdbool.h>

struct spryd;

/* Record an option (parsed in dgram_init()); 0 or -errno. */
int dgram_opt(struct spryd *d, const char *spec, bool udp);
/* After gateway_init(): sockets, pools; registers the front. */
int dgram_init(struct spryd *d);
/* Frees what dgram_opt() kept (and anything dgram_init() left). */
void dgram_fini(struct spryd *d);

#endif /* SPRYD_DGRAM_H */
