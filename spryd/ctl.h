/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's control-socket room (ctl.c): the SOCK_SEQPACKET listener, its
 * connections (SO_PEERCRED, reply queues), the framing of control
 * datagrams (fn-runtime/proto.h), and the INVOKE front.  HELLO and
 * REGISTER go to the handlers the registrar installs (ctl_set_handlers).
 */
#ifndef SPRYD_CTL_H
#define SPRYD_CTL_H

#include <stdint.h>

struct spryd;
struct spryd_conn;

/* Handlers of the registration messages (registrar.c installs them). */
struct spryd_ctl_handlers {
	void	(*hello)(struct spryd *d, struct spryd_conn *c);
	/* takes @fd (-1: none passed) and closes it in every case */
	void	(*reg)(struct spryd *d, struct spryd_conn *c, const void *body,
		       uint32_t len, int fd);
	/* a template asks for its chain's pool (no fd, no instance) */
	void	(*tmpl)(struct spryd *d, struct spryd_conn *c, const void *body,
			uint32_t len);
	/* @c is closing: what it registered goes */
	void	(*conn_closed)(struct spryd *d, struct spryd_conn *c);
};

void ctl_set_handlers(struct spryd *d, const struct spryd_ctl_handlers *h);
/* The connection table (before anything can hold a connection index). */
int ctl_alloc(struct spryd *d);
/* Listen on d->sock_path, register the INVOKE front; 0 or -errno. */
int ctl_init(struct spryd *d);
/* Each iteration, after the descriptors went out: close killed connections. */
void ctl_reap(struct spryd *d);
/* Push queued replies, close every connection, remove the socket file. */
void ctl_fini(struct spryd *d);
void ctl_free(struct spryd *d);

/* Send one datagram (hdr + a + b), queued if the client is slow; fd dup'd. */
int spryd_conn_send(struct spryd *d, struct spryd_conn *c, uint16_t type,
		    int32_t status, const void *a, uint32_t alen,
		    const void *b, uint32_t blen, int fd);
/* Close @c at the next safe point (never from inside a handler chain). */
void spryd_conn_kill(struct spryd *d, struct spryd_conn *c);
struct spryd_conn *spryd_conn_get(struct spryd *d, uint32_t idx, uint32_t gen);

#endif /* SPRYD_CTL_H */
