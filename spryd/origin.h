/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's origin room (origin.c): the origin sockets requests leave by
 * and come back on, and the reading of descriptor streams.
 */
#ifndef SPRYD_ORIGIN_H
#define SPRYD_ORIGIN_H

#include <stdint.h>

struct spryd;
struct spryd_stream;
struct spry_sender;

int origin_init(struct spryd *d);
void origin_fini(struct spryd *d);
/* Read what came back on every origin now (answers before deadlines). */
void origin_drain(struct spryd *d);
/* Loop tick: the send queue's descriptors out, in batches. */
void origin_flush(struct spryd *d);
void origin_recover(struct spryd *d, unsigned int k);
/* Read descriptors from a stream socket; 0 (more later), -ENOTCONN on EOF. */
int origin_read_stream(struct spryd *d, int fd, struct spryd_stream *s,
		       uint16_t only_chain);
/*
 * Send @n descriptors (spryd's own answers) on the origins, what one does
 * not take on the next: how many were sent, the first ones (n: all), or
 * -errno when none was.
 */
int origin_send_descs(struct spryd *d, const struct spry_desc *descs, unsigned int n);
int origin_fd_set_sender(struct spryd *d, int fd, const struct spry_sender *s);

#endif /* SPRYD_ORIGIN_H */
