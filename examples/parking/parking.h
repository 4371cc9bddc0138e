/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The parking chain's shared pieces: the record line its hops pass on,
 * and the reply helpers.  See examples/parking/README.md for the formats.
 *
 * A record is one line of "key=value" fields separated by single spaces,
 * optionally ended by one '\n': keys 1-15 of [a-z_], values 1-31 of
 * [A-Za-z0-9_.:-], at most REC_MAX_FIELDS fields, no key twice.
 * Every hop parses its input record strictly and refuses anything else.
 */
#ifndef SPRY_EXAMPLES_PARKING_H
#define SPRY_EXAMPLES_PARKING_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spry/spry.h"

#define REC_MAX_FIELDS	16
#define REC_KEY_MAX	15
#define REC_VAL_MAX	31
/* the longest record line: every field at its longest, plus '\n' */
#define REC_LINE_MAX	(REC_MAX_FIELDS * (REC_KEY_MAX + 1 + REC_VAL_MAX + 1) + 1)

/* Timestamps: seconds since the epoch, 1 .. 2100-01-01. */
#define PK_TS_MAX	4102444800ULL

struct rec {
	unsigned int	n;
	struct {
		char	k[REC_KEY_MAX + 1];
		char	v[REC_VAL_MAX + 1];
	} f[REC_MAX_FIELDS];
};

static inline bool rec_key_ch(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || c == '_';
}

static inline bool rec_val_ch(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-';
}

static inline const char *rec_get(const struct rec *r, const char *key)
{
	unsigned int i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->f[i].k, key))
			return r->f[i].v;
	return NULL;
}

/* Parse one record line of exactly @len bytes.  0 or -EINVAL (*why). */
static inline int rec_parse(const uint8_t *p, size_t len, struct rec *r, const char **why)
{
	size_t i = 0, n;

	r->n = 0;
	if (len && p[len - 1] == '\n')
		len--;
	if (!len) {
		*why = "empty record";
		return -EINVAL;
	}
	while (i < len) {
		if (r->n == REC_MAX_FIELDS) {
			*why = "too many fields";
			return -EINVAL;
		}
		for (n = 0; i + n < len && rec_key_ch(p[i + n]); n++)
			;
		if (!n || n > REC_KEY_MAX || i + n == len || p[i + n] != '=') {
			*why = "bad key (want key=value, key of a-z _)";
			return -EINVAL;
		}
		memcpy(r->f[r->n].k, p + i, n);
		r->f[r->n].k[n] = '\0';
		i += n + 1;
		for (n = 0; i + n < len && rec_val_ch(p[i + n]); n++)
			;
		if (!n || n > REC_VAL_MAX || (i + n < len && p[i + n] != ' ')) {
			*why = "bad value (1-31 of A-Z a-z 0-9 _ . : -)";
			return -EINVAL;
		}
		memcpy(r->f[r->n].v, p + i, n);
		r->f[r->n].v[n] = '\0';
		i += n;
		if (i < len && ++i == len) {
			*why = "trailing space";
			return -EINVAL;
		}
		if (rec_get(r, r->f[r->n].k)) {
			*why = "a key given twice";
			return -EINVAL;
		}
		r->n++;
	}
	return 0;
}

/* Set @key to @val (replacing it, else appending).  0 or -EINVAL/-E2BIG. */
static inline int rec_set(struct rec *r, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val), i;
	unsigned int j;

	if (!kl || kl > REC_KEY_MAX || !vl || vl > REC_VAL_MAX)
		return -EINVAL;
	for (i = 0; i < kl; i++)
		if (!rec_key_ch(key[i]))
			return -EINVAL;
	for (i = 0; i < vl; i++)
		if (!rec_val_ch(val[i]))
			return -EINVAL;
	for (j = 0; j < r->n && strcmp(r->f[j].k, key); j++)
		;
	if (j == REC_MAX_FIELDS)
		return -E2BIG;
	memcpy(r->f[j].k, key, kl + 1);
	memcpy(r->f[j].v, val, vl + 1);
	if (j == r->n)
		r->n++;
	return 0;
}

static inline int rec_set_u64(struct rec *r, const char *key, unsigned long long v)
{
	char s[24];

	snprintf(s, sizeof(s), "%llu", v);
	return rec_set(r, key, s);
}

/* @key as a decimal in [min, max] (no sign, no leading zeros but "0"). */
static inline int rec_u64(const struct rec *r, const char *key, unsigned long long min,
			  unsigned long long max, unsigned long long *out)
{
	const char *s = rec_get(r, key);
	uint64_t v;

	if (!s || (s[0] == '0' && s[1]) || spry_parse_u64(s, strlen(s), min, max, &v))
		return -EINVAL;
	*out = v;
	return 0;
}

/* The line, '\n'-terminated, into @out (REC_LINE_MAX bytes).  Its length. */
static inline size_t rec_format(const struct rec *r, char *out)
{
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < r->n; i++)
		n += (size_t)sprintf(out + n, "%s%s=%s", i ? " " : "", r->f[i].k, r->f[i].v);
	out[n++] = '\n';
	return n;
}

/* Pull "--NAME VALUE" / "--NAME=VALUE" out of argv (for spry_fn_opts_parse). */
static inline const char *pk_take_opt(int *argc, char **argv, const char *name)
{
	size_t nl = strlen(name);
	const char *val = NULL;
	int i, j, drop;

	for (i = 1; i < *argc; i++) {
		if (strncmp(argv[i], name, nl))
			continue;
		if (argv[i][nl] == '=') {
			val = argv[i] + nl + 1;
			drop = 1;
		} else if (!argv[i][nl] && i + 1 < *argc) {
			val = argv[i + 1];
			drop = 2;
		} else {
			continue;
		}
		for (j = i; j + drop < *argc; j++)
			argv[j] = argv[j + drop];
		*argc -= drop;
		argv[*argc] = NULL;
		break;
	}
	return val;
}

/* The request's record: parsed, with event, ts and plate checked. */
static inline int pk_input(struct spry_req *req, struct rec *r, bool *exit_ev,
			   unsigned long long *ts)
{
	const char *why = NULL, *ev, *plate;
	size_t len, i;
	uint8_t *p = spry_req_data(req, &len);

	*exit_ev = false;
	*ts = 0;
	if (rec_parse(p, len, r, &why))
		return spry_req_error(req, 400, -EINVAL, "bad record: %s", why);
	ev = rec_get(r, "event");
	if (!ev || (strcmp(ev, "entry") && strcmp(ev, "exit")))
		return spry_req_error(req, 400, -EINVAL, "record without event=entry|exit");
	if (rec_u64(r, "ts", 1, PK_TS_MAX, ts))
		return spry_req_error(req, 400, -EINVAL, "record without a valid ts");
	plate = rec_get(r, "plate");
	if (!plate || strlen(plate) != 7)
		return spry_req_error(req, 400, -EINVAL, "record without a plate");
	for (i = 0; i < 7; i++)
		if (!((plate[i] >= 'A' && plate[i] <= 'Z') || (plate[i] >= '0' && plate[i] <= '9')))
			return spry_req_error(req, 400, -EINVAL, "record with a bad plate");
	*exit_ev = !strcmp(ev, "exit");
	return 0;
}

#endif /* SPRY_EXAMPLES_PARKING_H */
