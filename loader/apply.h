/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The declarative chain file of `spry apply`:
 *
 *   chains:
 *     - name: demo                         # required
 *       user: root                         # name or uid; default: the caller
 *       hops: [upper, reverse]             # required, 1-16 functions
 *       functions: [helper]                # reachable only by calls
 *       calls: [{from: upper, to: helper}]
 *       buffers: 1024
 *       buffer-size: 4096
 *       max-inflight: 256
 *       deadline-ms: 5000
 *       idempotent: [upper]                # hops that may be retried
 *       cpus: 0-3,6                        # where the instances run
 *       invoke:                            # who may `spry chain invoke` it
 *         users: [alice, 1001]             # (root always may; default:
 *         groups: [spry]                   #  the chain's user)
 *       http: false                        # HTTP front: 404 (default true)
 *       queue: 1024                        # requests held while instances
 *                                          # start (lib/decl.h)
 *       run:                               # functions spryd starts itself
 *         upper:
 *           exec: /usr/lib/spry/upper      # absolute, or relative to the file
 *           args: [--quiet]                # (--chain/--fn added by spryd)
 *           user: nobody                   # default: the chain's user
 *           min: 0                         # instances kept when idle
 *           max: 4                         # (1-32)
 *           target: 8                      # requests in flight per instance
 *           idle: 30                       # seconds without work: scale down
 *           cpus: 1                        # default: the chain's
 *
 *
 *   apps:                                  # cloud processes (docs/PROCESS.md)
 *     - name: shop                         # required; also a chain's name
 *       functions: [cart, checkout]        # required: what requests may name
 *       exec: build/examples/counter       # required, relative to the file
 *       args: [--quiet]
 *       user: root                         # default root
 *       max: 1024                          # processes at most
 *       state-size: 1048576                # bytes per process
 *       swap-dir: /var/lib/spry/swap
 *       idle: 60                           # seconds before a swap (0: never)
 *       create: auto                       # or manual
 *
 * Unknown keys, wrong types, out-of-range numbers, duplicate keys, chains,
 * functions or calls, and YAML aliases are errors.
 */
#ifndef SPRY_LOADER_APPLY_H
#define SPRY_LOADER_APPLY_H

#include <stddef.h>

#include "lib/core.h"

/*
 * Parse and validate @buf (@len bytes, need not be NUL-terminated) into
 * *@specs (malloc'd, *@n entries; free() it; NULL when *@n is 0).  Touches
 * no map.  Returns 0, -EINVAL with a one-line "line N: ..." reason in @err,
 * or -ENOMEM.
 */
int spry_apply_parse(const char *buf, size_t len, struct spry_chain_spec **specs,
		     int *n, char *err, size_t errlen);

/*
 * The same with the file's apps too: *@apps (malloc'd, *@n_apps entries;
 * free() it), each with its executable as written (relative to the file
 * or absolute; not yet spry_app_decl__check()ed).
 */
struct spry_app_decl;
int spry_apply_parse_apps(const char *buf, size_t len, struct spry_chain_spec **specs,
			  int *n, struct spry_app_decl **apps, int *n_apps, char *err,
			  size_t errlen);

#endif /* SPRY_LOADER_APPLY_H */
