/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's daemon room (daemon.c): the composition of the rooms.  It opens
 * them in order, hooks them into the loop, runs it, and closes them in
 * reverse order.  main.c only parses the command line.
 */
#ifndef SPRYD_DAEMON_H
#define SPRYD_DAEMON_H

struct spryd;

/* A daemon with its defaults (options are then set by main.c); NULL: ENOMEM. */
struct spryd *spryd_new(void);
/* Open everything, serve until SIGTERM/SIGINT, close; 0 or -errno. */
int spryd_run(struct spryd *d);
/* Free what the options kept. */
void spryd_free(struct spryd *d);

#endif /* SPRYD_DAEMON_H */
