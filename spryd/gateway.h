/* SPDX-License-Identifier: GPL-2.0-only */
/* spryd's HTTP/1.1 front (gateway.c, gwreq.c): --http. */
#ifndef SPRYD_GATEWAY_H
#define SPRYD_GATEWAY_H

struct spryd;
struct spryd_http_opts;

void gateway_opts_default(struct spryd_http_opts *o);
/* Listen on d->http.addr (if any) and register the front; 0 or -errno. */
int gateway_init(struct spryd *d);

#endif /* SPRYD_GATEWAY_H */
