// SPDX-License-Identifier: GPL-2.0-only
/*
 * Names of verdicts and statuses, the rule for chain/function names, and
 * users and groups by name or id.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn-runtime/parse.h"
#include "lib/core.h"

static const char *const verdict_names[SPRY_V_MAX] = {
	[SPRY_V_FORWARD]	= "forward",
	[SPRY_V_CALL]		= "call",
	[SPRY_V_REPLY]		= "reply",
	[SPRY_V_DONE]		= "done",
	[SPRY_V_ERROR]		= "error",
	[SPRY_V_NO_INSTANCE]	= "no_instance",
	[SPRY_V_NO_CHAIN]	= "no_chain",
	[SPRY_V_NO_CALLER]	= "no_caller",
	[SPRY_V_NO_PROCESS]	= "no_process",
	[SPRY_V_FALLBACK]	= "fallback",
	[SPRY_V_NEXT]		= "next",
	[SPRY_V_NEXT_REFUSED]	= "next_refused",
	[SPRY_V_FAN_REFUSED]	= "fan_refused",
	[SPRY_V_MAIL]		= "mail",
	[SPRY_V_MAIL_ANSWER]	= "mail_answer",
	[SPRY_V_MAIL_FULL]	= "mail_full",
	[SPRY_V_MAIL_BOUNCE]	= "mail_bounce",
	[SPRY_V_MAIL_ORPHAN]	= "mail_orphan",
	[SPRY_V_FAN_GONE]	= "fan_gone",
	[SPRY_V_FAN_ORPHAN]	= "fan_orphan",
	[SPRY_V_DROP_SHORT]	= "drop_short",
	[SPRY_V_DROP_VERSION]	= "drop_version",
	[SPRY_V_DROP_SENDER]	= "drop_sender",
	[SPRY_V_DROP_CHAIN]	= "drop_chain",
	[SPRY_V_DROP_HOP]	= "drop_hop",
	[SPRY_V_DROP_AUTH]	= "drop_auth",
	[SPRY_V_DROP_BOUNDS]	= "drop_bounds",
	[SPRY_V_DROP_FLOOD]	= "drop_flood",
};

static const char *const status_names[SPRY_ST_MAX] = {
	[SPRY_ST_OK]		= "ok",
	[SPRY_ST_NO_INSTANCE]	= "no_instance",
	[SPRY_ST_NO_CHAIN]	= "no_chain",
	[SPRY_ST_FN_ERROR]	= "fn_error",
	[SPRY_ST_NO_CALLER]	= "no_caller",
	[SPRY_ST_BAD_DESC]	= "bad_desc",
	[SPRY_ST_TOO_BIG]	= "too_big",
	[SPRY_ST_NO_PROCESS]	= "no_process",
	[SPRY_ST_NEXT_REFUSED]	= "next_refused",
	[SPRY_ST_FAN_LIMIT]	= "fan_limit",
	[SPRY_ST_MAILBOX_FULL]	= "mailbox_full",
	[SPRY_ST_CALLEE_GONE]	= "callee_gone",
};

const char *spry_verdict_name(unsigned int v)
{
	if (v >= SPRY_V_MAX || !verdict_names[v])
		return "unknown";
	return verdict_names[v];
}

const char *spry_status_name(unsigned int s)
{
	if (s >= SPRY_ST_MAX || !status_names[s])
		return "unknown";
	return status_names[s];
}

int spry_name_check(const char *name)
{
	size_t i;

	if (!name || !name[0])
		return -EINVAL;
	for (i = 0; name[i]; i++) {
		char c = name[i];

		if (i >= SPRY_NAME_LEN - 1)
			return -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

/*
 * Look @name (or, with @name NULL, @id) up in the passwd or group
 * database: 0 with *@id and the name in @buf (may be NULL), -ENOENT when
 * absent, -errno when the lookup failed.
 */
static int id_lookup(enum spry_id_kind kind, const char *name, __u32 *id,
		     char *buf, size_t len)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	size_t cap = 1024;
	char *tmp = NULL, *ntmp;
	const char *found;
	int err;

	/* Group entries list their members: grow the buffer on ERANGE. */
	for (;;) {
		ntmp = realloc(tmp, cap);
		if (!ntmp) {
			free(tmp);
			return -ENOMEM;
		}
		tmp = ntmp;
		if (kind == SPRY_ID_USER)
			err = name ? getpwnam_r(name, &pw, tmp, cap, &pwr) :
				     getpwuid_r(*id, &pw, tmp, cap, &pwr);
		else
			err = name ? getgrnam_r(name, &gr, tmp, cap, &grr) :
				     getgrgid_r(*id, &gr, tmp, cap, &grr);
		if (err != ERANGE || cap >= (1U << 20))
			break;
		cap *= 2;
	}
	if (!err && !pwr && !grr)
		err = ENOENT;
	if (!err) {
		*id = pwr ? pwr->pw_uid : grr->gr_gid;
		found = pwr ? pwr->pw_name : grr->gr_name;
		if (buf && len)
			snprintf(buf, len, "%s", found);
	}
	free(tmp);
	/* Not found is 0 or one of several errnos, depending on the source. */
	if (err == ENOENT || err == ESRCH || err == EBADF || err == EPERM)
		return -ENOENT;
	return -err;
}

void spry_err__set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int spry_id__parse(enum spry_id_kind kind, const char *s, __u32 *id, char *err,
		   size_t errlen)
{
	const char *what = kind == SPRY_ID_GROUP ? "group" : "user";
	uint32_t v;
	int ret;

	if (!s || !*s) {
		spry_err__set(err, errlen, "empty %s name", what);
		return -EINVAL;
	}
	ret = id_lookup(kind, s, id, NULL, 0);
	if (!ret)
		return 0;
	if (ret != -ENOENT) {
		spry_err__set(err, errlen, "cannot look up %s '%.64s': %s", what, s,
			      strerror(-ret));
		return -EINVAL;
	}
	ret = spry_num__parse_u32(s, 0, UINT32_MAX, &v);
	if (ret == -EINVAL) {
		spry_err__set(err, errlen, "unknown %s '%.64s'", what, s);
		return -EINVAL;
	}
	/* (__u32)-1 means "no change" to chown() and setresuid(): never an id. */
	if (ret || v > (__u32)-2) {
		spry_err__set(err, errlen, "%s id %.64s out of range 0..%u", what, s,
			      (__u32)-2);
		return -EINVAL;
	}
	*id = (__u32)v;
	return 0;
}

const char *spry_id__name(enum spry_id_kind kind, __u32 id, char *buf, size_t len)
{
	return id_lookup(kind, NULL, &id, buf, len) ? NULL : buf;
}
