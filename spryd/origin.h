/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's origin room (origin.c): the origin sockets requests leave by
 * and come back on, and the reading of descriptor streams.
 */
#ifndef SPRYD_ORIGIN_H
#define SPRYD_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

struct spryd;
struct spryd_stream;
struct spry_sender;
struct spry_desc;

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
/*
 * An engine that sends the origins' batches of descriptors instead of
 * send() (the HTTP front's ring, --desc-send ring): queue one send of
 * @len bytes at @buf on origin @k's socket @fd, to be submitted with the
 * engine's other work; its result (bytes sent or -errno) comes back
 * through origin_sent(d, k, res).  0, or -errno when nothing was queued
 * (the core sends the batch itself).  @buf stays valid until then.
 */
typedef int (*spryd_origin_engine_fn)(struct spryd *d, unsigned int k, int fd,
				      const void *buf, size_t len);
/* NULL: send() again; what the engine still holds is given up (shutdown). */
void origin_set_engine(struct spryd *d, spryd_origin_engine_fn fn);
void origin_sent(struct spryd *d, unsigned int k, int res);
int origin_fd_set_sender(struct spryd *d, int fd, const struct spry_sender *s);

#endif /* SPRYD_ORIGIN_H */
