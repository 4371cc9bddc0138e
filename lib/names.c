// SPDX-License-Identifier: GPL-2.0-only
/* Names of verdicts and statuses, and the rule for chain/function names. */
#include <errno.h>
#include <string.h>

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
	[SPRY_V_FALLBACK]	= "fallback",
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
