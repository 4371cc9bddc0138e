// SPDX-License-Identifier: GPL-2.0-only
/*
 * spryd's directory-watch room (dirwatch.h): inotify on a directory of
 * declarations, shared by the supervisor and the process room.
 */
#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "spryd/dirwatch.h"
#include "spryd/spryd.h"

static bool skipped(const struct spryd_dirwatch *w, const char *name)
{
	const char *const *s;

	for (s = w->skip; s && *s; s++)
		if (!strcmp(*s, name))
			return true;
	return false;
}

static void dirwatch_event(struct spryd *d, struct spryd_ep *ep, uint32_t events)
{
	struct spryd_dirwatch *w = (struct spryd_dirwatch *)ep;	/* ep is first */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	(void)events;
	while ((n = read(ep->fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
				/* the directory went away: watched again once it is back */
				spryd_ep_close(d, ep);
				w->due = true;
				return;
			}
			if (!ev->len || !skipped(w, ev->name))
				w->due = true;
		}
	}
}

static const struct spryd_ep_ops dirwatch_ops = { .name = "dir-inotify", .event = dirwatch_event };

void dirwatch__init(struct spryd_dirwatch *w, const char *dir, const char *const *skip)
{
	w->ep.ops = &dirwatch_ops;
	w->ep.fd = -1;
	w->dir = dir;
	w->skip = skip;
	w->due = true;
}

int dirwatch__start(struct spryd *d, struct spryd_dirwatch *w)
{
	int fd, err;

	/*
	 * Its parents too (0755: /run/spry also holds the control socket):
	 * a directory that cannot be made cannot be watched, and its room
	 * would stat() it every 500 ms for as long as spryd runs.
	 */
	err = spry_mkdir_p(w->dir, 0755, 0700);
	if (err)
		return err;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, w->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
			      IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF |
			      IN_MOVE_SELF | IN_ONLYDIR) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	w->ep.ops = &dirwatch_ops;
	w->ep.fd = fd;
	err = spryd_ep_add(d, &w->ep, EPOLLIN);
	if (err) {
		close(fd);
		w->ep.fd = -1;
	}
	return err;
}

bool dirwatch__take(struct spryd_dirwatch *w)
{
	bool due = w->due;

	w->due = false;
	return due;
}
