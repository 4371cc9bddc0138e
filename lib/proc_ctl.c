// SPDX-License-Identifier: GPL-2.0-only
/* PROC control message bodies: decode + check, encode (lib/proc_ctl.h). */
#include <errno.h>
#include <string.h>

#include "lib/app.h"
#include "lib/core.h"
#include "lib/proc_ctl.h"

int spry_ctl_proc__decode(const void *body, size_t len, struct spry_ctl_proc *out)
{
	struct spry_ctl_proc req;
	const char *nul;
	size_t i;

	if (!body || len != sizeof(req))
		return -EINVAL;
	memcpy(&req, body, sizeof(req));
	nul = memchr(req.app, '\0', sizeof(req.app));
	if (!nul || spry_name_check(req.app))
		return -EINVAL;
	for (i = (size_t)(nul - req.app); i < sizeof(req.app); i++)
		if (req.app[i])
			return -EINVAL;
	if (req.op < SPRY_PROC_CREATE || req.op >= SPRY_PROC_OP_MAX)
		return -EINVAL;
	if (req.id > SPRY_PROC_ID_MAX ||
	    (!req.id && req.op != SPRY_PROC_CREATE && req.op != SPRY_PROC_SHOW))
		return -EINVAL;
	if ((req.flags & ~(uint32_t)SPRY_PROC_F_ACTIVE) ||
	    (req.flags && (req.op != SPRY_PROC_SHOW || req.id)))
		return -EINVAL;
	if (out)
		*out = req;
	return 0;
}

int spry_ctl_proc__encode(const char *app, uint64_t id, uint32_t op, uint32_t flags,
			  struct spry_ctl_proc *out)
{
	size_t n = app ? strlen(app) : 0;

	memset(out, 0, sizeof(*out));
	if (!app || n >= sizeof(out->app))
		return -EINVAL;
	memcpy(out->app, app, n);
	out->id = id;
	out->op = op;
	out->flags = flags;
	if (spry_ctl_proc__decode(out, sizeof(*out), NULL)) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}
