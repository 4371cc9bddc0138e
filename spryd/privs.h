/* SPDX-License-Identifier: GPL-2.0-only */
/* spryd's privileges room (privs.c): docs/SECURITY.md. */
#ifndef SPRYD_PRIVS_H
#define SPRYD_PRIVS_H

struct spryd;

/* Keep only the capabilities spryd's loop uses; 0 or -errno. */
int spryd_drop_privs(struct spryd *d);

#endif /* SPRYD_PRIVS_H */
