// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parking-persist: the chain's last hop.  Appends the record to the
 * ledger DIR/ledger.log and answers with the receipt.
 *
 * Ledger: one line per request, the record and " decision=open|refused",
 * appended with one write() (O_APPEND) and made durable with fdatasync()
 * before the receipt goes out: a receipt means the line is on disk.
 * fsync per record rather than per batch because the runtime hands the
 * handler one request at a time and the receipt is the acknowledgment.
 * A failed write or sync fails the request (500).
 *
 * Receipt (text/plain, one line):
 *   OPEN plate=P event=entry ts=T permit=X
 *   OPEN plate=P event=exit ts=T permit=X entry=T0|none [duration=S] fee=C
 *   REFUSED plate=P event=E ts=T permit=blocked reason=R        (@status 403)
 *
 *   parking-persist --data-dir DIR --chain NAME --fn NAME [--sock PATH] ...
 *
 * DIR is created (mode 0750) if missing.  Run one instance: the ledger
 * has one writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "spry/spry.h"
#include "examples/parking/parking.h"

struct ledger {
	int	fd;
};

static int persist(struct spry_req *req, void *user)
{
	char line[REC_LINE_MAX + 32], out[REC_LINE_MAX + 32];
	const struct ledger *lg = user;
	const char *permit, *e, *d, *reason;
	unsigned long long ts, fee;
	bool exit_ev, refused;
	struct rec r;
	size_t n;
	ssize_t w;
	int err;

	err = pk_input(req, &r, &exit_ev, &ts);
	if (err)
		return err;
	permit = rec_get(&r, "permit");
	if (!permit || rec_u64(&r, "fee", 0, 1000000000ULL, &fee))
		return spry_req_error(req, 400, -EINVAL,
				      "record without permit and fee (charge first)");
	if (rec_get(&r, "decision"))
		return spry_req_error(req, 400, -EINVAL, "record already persisted");
	refused = !strcmp(permit, "blocked");
	reason = rec_get(&r, "reason");
	if (refused && !reason)
		return spry_req_error(req, 400, -EINVAL, "blocked record without a reason");
	e = rec_get(&r, "entry");
	if (exit_ev && !refused && !e)
		return spry_req_error(req, 400, -EINVAL, "exit record without entry");

	err = rec_set(&r, "decision", refused ? "refused" : "open");
	if (err)
		return spry_req_error(req, 400, err, "record too long");
	n = rec_format(&r, line);
	do {
		w = write(lg->fd, line, n);
	} while (w < 0 && errno == EINTR);
	if (w != (ssize_t)n || fdatasync(lg->fd))
		return spry_req_error(req, 500, -EIO, "ledger: %s",
				      w < 0 || w == (ssize_t)n ? strerror(errno) : "short write");

	n = (size_t)snprintf(out, sizeof(out), "%s plate=%s event=%s ts=%llu permit=%s",
			     refused ? "REFUSED" : "OPEN", rec_get(&r, "plate"),
			     exit_ev ? "exit" : "entry", ts, permit);
	if (refused) {
		n += (size_t)snprintf(out + n, sizeof(out) - n, " reason=%s", reason);
	} else if (exit_ev) {
		d = rec_get(&r, "duration");
		n += (size_t)snprintf(out + n, sizeof(out) - n, " entry=%s%s%s fee=%llu", e,
				      d ? " duration=" : "", d ? d : "", fee);
	}
	/* fields are at most 31 characters: the receipt always fits */
	if (n >= sizeof(out) - 1)
		return spry_req_error(req, 500, -EOVERFLOW, "receipt too long");
	out[n++] = '\n';
	return spry_req_reply(req, refused ? 403 : 200, "text/plain", out, n);
}

/* mkdir -p @dir, mode 0750. */
static int make_dir(char *dir)
{
	char *s;

	for (s = dir + 1; ; s++) {
		if (*s && *s != '/')
			continue;
		if (!*s || s[1]) {
			char c = *s;

			*s = '\0';
			if (mkdir(dir, 0750) && errno != EEXIST) {
				*s = c;
				return -errno;
			}
			*s = c;
		}
		if (!*s)
			return 0;
	}
}

int main(int argc, char **argv)
{
	const char *opt = pk_take_opt(&argc, argv, "--data-dir");
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct ledger lg;
	int dfd, err;

	if (!opt || !*opt || strlen(opt) >= sizeof(dir)) {
		fprintf(stderr, "usage: %s --data-dir DIR --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]\n",
			argv[0]);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", opt);
	err = make_dir(dir);
	if (err) {
		fprintf(stderr, "%s: cannot create %s: %s\n", argv[0], dir, strerror(-err));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ledger.log", dir);
	lg.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (lg.fd < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", argv[0], path, strerror(errno));
		return 1;
	}
	/* the new file's directory entry is durable too */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd)) {
		fprintf(stderr, "%s: cannot sync %s: %s\n", argv[0], dir, strerror(errno));
		return 1;
	}
	close(dfd);
	err = spry_fn_main(argc, argv, persist, &lg);
	close(lg.fd);
	return err;
}
