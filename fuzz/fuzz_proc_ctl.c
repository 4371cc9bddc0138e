// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness of the PROC control message's body (lib/proc_ctl.c:
 * spry_ctl_proc__decode(), what spryd's process room takes from any
 * local client before it looks at its apps; spry_ctl_proc__encode(),
 * what `spry process` sends).
 *
 * Input: the body as received (any length; 48 bytes is the one accepted).
 *
 * Asserted (abort() on failure), besides ASan/UBSan/LeakSanitizer:
 *   - decode returns 0 or -EINVAL, and 0 exactly when the body follows
 *     every rule of lib/proc_ctl.h, checked here from the rules as
 *     written (an independent oracle): 48 bytes, an app name of 1..31
 *     bytes of [A-Za-z0-9_.-] then only NUL bytes, op 1..5, id <= 2^63-1
 *     and 0 only for CREATE and SHOW, flags only ACTIVE and only with
 *     SHOW and id 0;
 *   - refused: the output is untouched;
 *   - accepted: the output is the body, byte for byte, and encoding its
 *     fields again gives back the same 48 bytes;
 *   - encode, given the input's first bytes as a name and the rest as
 *     id, op and flags: 0 exactly when the oracle accepts those fields,
 *     and then its output decodes to the same fields; refused: a zeroed
 *     output.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/app.h"
#include "lib/proc_ctl.h"

#define check(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_proc_ctl: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static bool name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* the fields' rules, as lib/proc_ctl.h states them */
static bool fields_ok(uint64_t id, uint32_t op, uint32_t flags)
{
	if (op < 1 || op > 5)
		return false;
	if (id > (1ULL << 63) - 1)
		return false;
	if (!id && op != 1 && op != 3)
		return false;
	if (flags & ~1u)
		return false;
	if (flags && (op != 3 || id))
		return false;
	return true;
}

static bool body_ok(const uint8_t *p, size_t n)
{
	struct spry_ctl_proc b;
	size_t i, len;

	if (n != 48)
		return false;
	for (len = 0; len < 32 && p[len]; len++)
		if (!name_char(p[len]))
			return false;
	if (len == 0 || len > 31)
		return false;
	for (i = len; i < 32; i++)
		if (p[i])
			return false;
	memcpy(&b, p, sizeof(b));
	return fields_ok(b.id, b.op, b.flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spry_ctl_proc out, again, enc, dec;
	uint8_t untouched[sizeof(out)];
	char name[48];
	uint64_t id = 0;
	uint32_t op = 0, flags = 0;
	size_t nlen;
	bool ok;
	int ret;

	/* 1. decode the input as a body */
	memset(&out, 0xa5, sizeof(out));
	memcpy(untouched, &out, sizeof(out));
	ret = spry_ctl_proc__decode(data, size, &out);
	ok = body_ok(data, size);
	check(ret == 0 || ret == -EINVAL);
	check((ret == 0) == ok);
	if (ret) {
		check(!memcmp(&out, untouched, sizeof(out)));
	} else {
		check(!memcmp(&out, data, sizeof(out)));
		check(memchr(out.app, '\0', sizeof(out.app)) && strlen(out.app) >= 1);
		check(out.op >= SPRY_PROC_CREATE && out.op < SPRY_PROC_OP_MAX);
		check(out.id <= SPRY_PROC_ID_MAX);
		check(spry_ctl_proc__decode(data, size, NULL) == 0);
		/* one encoding: the fields give back the same bytes */
		check(spry_ctl_proc__encode(out.app, out.id, out.op, out.flags, &again) == 0);
		check(!memcmp(&again, data, sizeof(again)));
	}

	/* 2. encode: [0] name length (% 40), the name, then id, op, flags */
	if (!size)
		return 0;
	nlen = data[0] % 40;
	if (size < 1 + nlen)
		return 0;
	memcpy(name, data + 1, nlen);
	name[nlen] = '\0';
	nlen = strlen(name);	/* up to a NUL of the input */
	memcpy(&id, data + 1 + (data[0] % 40),
	       size - 1 - (data[0] % 40) < sizeof(id) ? size - 1 - (data[0] % 40) : sizeof(id));
	if (size >= 1 + (size_t)(data[0] % 40) + 12)
		memcpy(&op, data + 1 + (data[0] % 40) + 8, sizeof(op));
	if (size >= 1 + (size_t)(data[0] % 40) + 16)
		memcpy(&flags, data + 1 + (data[0] % 40) + 12, sizeof(flags));
	ok = nlen >= 1 && nlen <= 31 && fields_ok(id, op, flags);
	for (size_t i = 0; ok && i < nlen; i++)
		ok = name_char((uint8_t)name[i]);
	memset(&enc, 0xa5, sizeof(enc));
	ret = spry_ctl_proc__encode(name, id, op, flags, &enc);
	check(ret == 0 || ret == -EINVAL);
	check((ret == 0) == ok);
	if (ret) {
		static const struct spry_ctl_proc zero;

		check(!memcmp(&enc, &zero, sizeof(enc)));
		return 0;
	}
	check(spry_ctl_proc__decode(&enc, sizeof(enc), &dec) == 0);
	check(!strcmp(dec.app, name) && dec.id == id && dec.op == op && dec.flags == flags);
	check(!memcmp(&dec, &enc, sizeof(dec)));
	return 0;
}
