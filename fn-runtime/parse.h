/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one number parser and the one ADDR:PORT parser of the tree: the
 * CLI, spryd, the runtime's options, the examples, benches and tests all
 * read their numbers and addresses here, so every number means the same
 * everywhere.  In libspry (functions link only libspry; the loader and
 * spryd link it too), hidden from libspry.so's exported API.
 *
 * Numbers are decimal only: one or more digits [0-9], leading zeros
 * allowed ("007" is 7).  No sign ("+1", "-1"), no spaces, no hex ("0x10"),
 * no suffixes ("1k"): a number written in a config or on a command line
 * is read by people, and one notation avoids "010" meaning 8 somewhere.
 *
 * The span form, spry_parse_u64(), is libspry's public API (functions
 * read numbers from payloads and metadata); the NUL-terminated forms and
 * the address parser below are internal.
 *
 * Every function returns 0 or a negative errno (libbpf's convention) and
 * writes its output only on success:
 *   -EINVAL  not the expected syntax (empty, a sign, junk after the digits)
 *   -ERANGE  well formed, but above 2^64-1 or outside [min, max]
 */
#ifndef SPRY_FN_PARSE_H
#define SPRY_FN_PARSE_H

#include <stdint.h>
#include <sys/socket.h>

/*
 * The decimal number at the start of @s into *@out, within [@min, @max].
 * @endp NULL: the whole string must be the number.  @endp set: the number
 * may be followed by anything; *@endp is set to the first byte after its
 * digits (on success only), for lists like "0-3,6" or "NAME_12".
 */
int spry_num__parse(const char *s, const char **endp, uint64_t min, uint64_t max,
		    uint64_t *out);

/* spry_num__parse() of a whole string into narrower types. */
int spry_num__parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
int spry_num__parse_int(const char *s, int min, int max, int *out);

/*
 * Seconds with an optional fraction of up to 9 digits ("30", "0.5",
 * "0.000001") into nanoseconds, within [@min_ns, @max_ns].  The same
 * decimal-only rules: no sign, no exponent, no "inf"; "1." and ".5" are
 * refused.
 */
int spry_secs__parse(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *ns);

/*
 * A TCP/UDP port, 1..65535.  Port 0 is refused (-ERANGE) everywhere: a
 * listener given port 0 would bind a port nobody is told of, and nothing
 * can be sent to port 0; a test that wants a free port picks one itself.
 */
int spry_port__parse(const char *s, uint16_t *port);

/*
 * "A.B.C.D:PORT" (dotted quad, as inet_pton(AF_INET) reads it) or
 * "[IPV6]:PORT" (brackets required: "1:2:3" is refused, not guessed at)
 * into *@ss (port in network order) and its length *@len.  No host names
 * (no resolver behind a command line), no bare port: the caller says
 * which address it means.  -EINVAL bad syntax or address, -ERANGE a port
 * outside 1..65535 (port 0 included, see spry_port__parse()).
 */
int spry_addr__parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* What spry_addr__parse() reads, for error messages. */
#define SPRY_ADDR_PORT_HELP "A.B.C.D:PORT or [IPV6]:PORT with PORT 1-65535"

#endif
