// SPDX-License-Identifier: GPL-2.0-only
/*
 * spry chain invoke: run a chain once through spryd's request entry (its
 * control socket), print the response.  For people and scripts; load
 * generators use libspry's client directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <spry/spry.h>

#include "fn-runtime/proto.h"
#include "fn-runtime/parse.h"
#include "loader/main.h"

/* Bigger than any payload one control datagram can carry. */
#define INVOKE_MAX	SPRY_CTL_MAX_MSG

/* Read all of @path ("-" for stdin), at most @cap bytes, into @buf. */
static int read_input(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	size_t n = 0;
	ssize_t r;

	if (fd < 0) {
		p_err("cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
		if (n == cap) {
			char extra;

			/* Exactly full is fine; one byte more is too big. */
			r = read(fd, &extra, 1);
			if (r > 0) {
				p_err("'%s' is larger than %zu bytes", path, cap);
				r = -2;
			}
			break;
		}
	}
	if (r < 0 && r != -2)
		p_err("cannot read '%s': %s", path, strerror(errno));
	if (fd != STDIN_FILENO)
		close(fd);
	*len = n;
	return r < 0 ? -1 : 0;
}

int do_invoke(int argc, char **argv)
{
	static const char *const keys[] = { "sock", "data", "file", "fn", "process", NULL };
	const char *sock = NULL, *data = NULL, *file = NULL, *fn = NULL, *proc = NULL;
	char fname[SPRY_NAME_LEN];
	uint64_t pid = 0;
	char name[SPRY_NAME_LEN], *in = NULL, *out = NULL;
	size_t in_len = 0, out_len = 0;
	struct spry_client *c = NULL;
	uint32_t status = 0;
	int err, ret = -1;

	if (argc < 1) {
		p_err("missing chain NAME");
		return -1;
	}
	if (parse_name(argv[0], "chain", name))
		return -1;
	NEXT_ARG();
	while (argc) {
		switch (match_word(keys, argv[0], "invoke keyword")) {
		case 0:
			GET_VALUE(sock);
			break;
		case 1:
			GET_VALUE(data);
			break;
		case 2:
			GET_VALUE(file);
			break;
		case 3:
			GET_VALUE(fn);
			break;
		case 4:
			GET_VALUE(proc);
			break;
		default:
			return -1;
		}
	}
	if (data && file) {
		p_err("give 'data' or 'file', not both");
		return -1;
	}
	/* an app's function, in process ID (docs/PROCESS.md) */
	if (fn && parse_name(fn, "function", fname))
		return -1;
	if (proc && spry_num__parse(proc, NULL, 1, (1ULL << 63) - 1, &pid)) {
		p_err("process: '%s' is not a process id (1-%llu)", proc,
		      (unsigned long long)((1ULL << 63) - 1));
		return -1;
	}
	if (proc && !fn) {
		p_err("'process ID' needs 'fn FN' (an app's function)");
		return -1;
	}

	in = malloc(INVOKE_MAX);
	out = malloc(INVOKE_MAX);
	if (!in || !out) {
		p_err("out of memory");
		goto out;
	}
	if (data) {
		in_len = strlen(data);
		if (in_len > INVOKE_MAX) {
			p_err("data is larger than %d bytes", (int)INVOKE_MAX);
			goto out;
		}
		memcpy(in, data, in_len);
	} else if (file && read_input(file, in, INVOKE_MAX, &in_len)) {
		goto out;
	}

	c = spry_client_open(sock);
	if (!c) {
		p_err("cannot reach spryd at %s: %s", sock ? sock : SPRY_CTL_SOCK_DEFAULT,
		      strerror(errno));
		goto out;
	}
	if (fn)
		err = spry_client_invoke_proc(c, name, fname, pid, in, in_len, out, INVOKE_MAX,
					      &out_len, &status);
	else
		err = spry_client_invoke(c, name, in, in_len, out, INVOKE_MAX, &out_len,
					 &status);
	if (err == -ENOENT && fn) {
		if (pid)
			p_err("app '%s': no process %llu (or no function %s)", name,
			      (unsigned long long)pid, fname);
		else
			p_err("app '%s': no function %s, or no process to run it", name, fname);
		goto out;
	}
	if (err == -ENOTRECOVERABLE && fn) {
		p_err("app '%s': process %llu: its state is lost (its swap file is missing, "
		      "damaged or another app's; spry process show %s id %llu)", name,
		      (unsigned long long)pid, name, (unsigned long long)pid);
		goto out;
	}
	if (err == -EACCES) {
		/* spryd judged this process's credentials (docs/SECURITY.md). */
		p_err("user %u may not invoke chain '%s' (%s; see its 'invoke users/groups')",
		      (unsigned int)geteuid(), name, strerror(-err));
		goto out;
	}
	if (err) {
		p_err("chain '%s': %s", name, strerror(-err));
		goto out;
	}
	if (json_output) {
		json_t *o = json_object(), *payload = json_stringn(out, out_len);

		if (!o || jset(o, "chain", json_string(name)) ||
		    jset(o, "status", json_string(spry_status_name(status))) ||
		    jset(o, "len", json_integer(out_len)) ||
		    jset(o, "payload", payload ? payload : json_null())) {
			json_decref(o);
			goto out;
		}
		json_result(o);
	} else if (out_len && fwrite(out, 1, out_len, stdout) != out_len) {
		p_err("cannot write the response: %s", strerror(errno));
		goto out;
	}
	if (status != SPRY_ST_OK) {
		if (!json_output)
			fprintf(stderr, "spry: chain '%s' answered with status %s\n", name,
				spry_status_name(status));
		goto out;
	}
	ret = 0;
out:
	spry_client_close(c);
	free(out);
	free(in);
	return ret;
}
