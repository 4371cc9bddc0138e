// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The function runtime: register with spryd, then sleep until descriptors
 * arrive, run the handler on each payload in place and send the batch on
 * in one send() (the router judges each descriptor as if alone, with one
 * verdict and redirect per run of descriptors going the same way).
 *
 * Registration (docs/DESIGN.md): HELLO -> TCP port; connect a TCP socket
 * to 127.0.0.1:port; REGISTER with it as SCM_RIGHTS; REG_ACK brings the
 * chain's pool fd.  Only then is the socket read: data queued before the
 * socket is in the sockhash is not redirected, and a reader that waited
 * before the insertion would never wake.
 *
 * The runtime never calls bpf(): it runs as any user.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/sched.h>
#include <time.h>

#include "fn-runtime/cpus.h"
#include "fn-runtime/desc.h"
#include "fn-runtime/parse.h"
#include "fn-runtime/proto.h"
#include "fn-runtime/tmpl_proc.h"
#include "spry/state.h"
#include "spry/spry.h"

#define RT_BATCH_DEFAULT	64u
/* 256 descriptors = 16 KiB per send: inside the 32 KiB the router sees
 * linearly (docs/KERNEL.md, "The linear data is bounded"). */
#define RT_BATCH_MAX		256u
#define RT_DESC			sizeof(struct spry_desc)
/* recv() rounds per wake-up before epoll is asked again (fairness). */
#define RT_RX_ROUNDS		16
#define RT_CTL_TIMEOUT_S	5

#define RT_KNOWN_FLAGS		(SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_STICKY | SPRY_DF_FAN)
/* Descriptors kept while a handler waits for a reply (64 KiB). */
#define RT_PEND_MAX		1024u
/* Descriptors read per recv() while waiting for answers (rt_wait_rx). */
#define RT_CALL_RX		16u
/* Longest metadata key and value spry_req_set_meta() writes. */
#define RT_META_KEY_MAX		64u
#define RT_META_VAL_MAX		1024u
/* Spare '\n' padding added when the metadata area grows. */
#define RT_META_SPARE		32u

struct rt;

struct spry_req {
	struct spry_pool	*pool;
	struct spry_desc	*desc;	/* outgoing descriptor (a private copy) */
	uint8_t			*buf;	/* buffer start: metadata, then payload */
	size_t			len;	/* current payload length */
	bool			quiet;
	struct rt		*rt;	/* for calls */
	uint16_t		next_fn;	/* spry_req_next(): 0 none */
};

struct rt {
	const struct spry_fn_opts *opts;
	spry_handler_t		handler;
	void			*user;
	int			ctl;
	int			tcp;
	int			ep;
	int			sig;
	struct spry_pool	*pool;
	uint16_t		chain;
	uint16_t		fn;
	uint16_t		inst;
	unsigned int		batch;
	uint8_t			*rx;	/* batch * 64 bytes */
	uint8_t			part[sizeof(struct spry_desc)];
	size_t			part_have;	/* bytes of a partial descriptor */
	struct spry_desc	*tx;	/* batch descriptors */
	size_t			tx_n;	/* of them ready to send */
	/* Descriptors that arrived during a call, handled after it (FIFO). */
	struct spry_desc	*pend;	/* RT_PEND_MAX */
	size_t			pend_head, pend_n;
	/* The chain's functions, from REG_ACK (calls by name). */
	struct spry_ctl_fn_entry *fns;
	uint32_t		n_fns;
	uint64_t		n_ok, n_err, n_bad, n_dropped;
	uint64_t		n_calls, n_late, n_refused;
	/* The CPUs this thread was allowed before any placement. */
	cpu_set_t		home;
	bool			have_home, placed;
	bool			registered;
	bool			first_done;	/* the first request answered (trace) */
	int			tmpl;		/* a template's pair (-1: none) */
	/* Sleep in a blocking recv() on the data socket (SPRY_FN_WAIT). */
	bool			block;
	/* Workflows (docs/WORKFLOWS.md): input batching, fan-out tags. */
	spry_batch_handler_t	bhandler;	/* NULL: one request per call */
	unsigned int		bmax, bwait_us;
	struct spry_desc	*bdesc;		/* bmax: the batch being run */
	struct spry_req		*breq;		/* bmax */
	struct spry_req		**bptr;		/* bmax */
	int			*bret;		/* bmax */
	uint64_t		n_batches, n_batched;
	uint64_t		fan_seq;	/* branch tags (desc.t_start) */
};

/* Workflows (at the end of this file). */
static void rt_finish(struct rt *rt, struct spry_desc *d, struct spry_req *req,
		      int ret, bool call);
static int rt_run_grouped(struct rt *rt, int nd);
static int rt_batch_gather(struct rt *rt, int nd);

enum { EV_TCP = 1, EV_CTL, EV_SIG };

/* Every send on the data socket: whole descriptors, one thread at a time. */
static pthread_mutex_t rt_tx_mu = PTHREAD_MUTEX_INITIALIZER;
/* Mailboxes (below): a mail or a mail's answer read from the socket. */
static bool rt_mail_in(struct rt *rt, const struct spry_desc *d);

/*
 * The blocking wait (SPRY_FN_WAIT=block, the default): an instance whose
 * only input is its data socket sleeps in recv() on it, one syscall per
 * wake-up instead of epoll_wait() and then recv() (bench/results/PROFILE.md:
 * the epoll round is the largest part of a hop the runtime adds).  spryd
 * going away needs no watch on the control connection: spryd closes the
 * data socket's peer whenever it removes an instance (its control
 * connection closed, spryd stopped), which reads as EOF here; and spryd
 * sends nothing on the control connection after REG_ACK.  SIGTERM/SIGINT
 * reach rt_on_signal() while the instance sleeps: it notes the signal and
 * shuts the data socket's receive side, so that a recv() asleep (or about
 * to be) returns; the batch in hand is finished first, as with epoll.
 * One instance per process waits so (the handler knows one socket); any
 * other runtime thread of the process waits in epoll.
 */
static volatile sig_atomic_t rt_sig_stop;
static volatile sig_atomic_t rt_sig_fd = -1;
static int rt_block_owner;	/* 1 while a runtime of this process waits so */

static void rt_on_signal(int signo)
{
	int fd = rt_sig_fd, saved = errno;

	rt_sig_stop = signo;
	if (fd >= 0)
		shutdown(fd, SHUT_RD);
	errno = saved;
}

static void rt_log(const struct rt *rt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rt_log(const struct rt *rt, const char *fmt, ...)
{
	va_list ap;

	if (rt->opts->quiet)
		return;
	fprintf(stderr, "spry-fn %s/%s", rt->opts->chain, rt->opts->fn);
	if (rt->registered)
		fprintf(stderr, "[%u]", rt->inst);
	else if (rt->tmpl >= 0)
		fprintf(stderr, "[template]");
	fprintf(stderr, ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Cold-start events for benchmarks (SPRY_TRACE_ENV, fn-runtime/proto.h).
 * start and connect are only noted: a line per event would wake the
 * reader while the instance is still starting.  "registered" writes one
 * line with the three, "first" one more, each in one write() (atomic on a
 * pipe).  No fd: nothing.
 */
enum { TR_START, TR_CONNECT, TR_N };
static int rt_trace_fd = -1;
static uint64_t rt_trace_ns[TR_N];

/* CLOCK_MONOTONIC in ns, us and ms: the trace's marks and every deadline */
static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_us(void)
{
	return mono_ns() / 1000;
}

static int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

static void rt_trace_mark(int ev)
{
	if (rt_trace_fd >= 0 && !rt_trace_ns[ev])
		rt_trace_ns[ev] = (uint64_t)mono_ns();
}

static void rt_trace(const char *event)
{
	char line[160];
	int n;

	if (rt_trace_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "spry-trace %s %d %llu start=%llu connect=%llu\n",
		     event, (int)getpid(), (unsigned long long)mono_ns(),
		     (unsigned long long)rt_trace_ns[TR_START],
		     (unsigned long long)rt_trace_ns[TR_CONNECT]);
	if (n > 0 && write(rt_trace_fd, line, (size_t)n) < 0)
		rt_trace_fd = -1;	/* the reader went away: stop */
}

static void rt_trace_init(void)
{
	const char *v = getenv(SPRY_TRACE_ENV);
	uint32_t fd;

	if (v && !spry_num__parse_u32(v, 3, INT_MAX, &fd) && fcntl((int)fd, F_GETFD) >= 0)
		rt_trace_fd = (int)fd;
}

/* ------------------------------------------------------------ requests */

SPRY_API void *spry_req_data(struct spry_req *req, size_t *len)
{
	if (len)
		*len = req->len;
	return req->buf + req->desc->meta_len;
}

SPRY_API size_t spry_req_room(const struct spry_req *req)
{
	return (size_t)req->desc->cap - req->desc->meta_len;
}

SPRY_API int spry_req_set_len(struct spry_req *req, size_t len)
{
	if (len > spry_req_room(req))
		return -EMSGSIZE;
	req->len = len;
	return 0;
}

SPRY_API void *spry_req_resize(struct spry_req *req, size_t len)
{
	struct spry_desc *d = req->desc;
	struct spry_buf nb;
	uint64_t need;
	uint8_t *nbuf;
	int err;

	if (len > UINT32_MAX - (uint64_t)d->meta_len) {
		errno = EMSGSIZE;
		return NULL;
	}
	need = (uint64_t)d->meta_len + len;
	if (need <= d->cap)
		return req->buf + d->meta_len;

	err = spry_pool_alloc(req->pool, (uint32_t)need, d->req_id, &nb);
	if (err) {
		errno = -err;
		return NULL;
	}
	nbuf = spry_pool_ptr(req->pool, nb.off, nb.cap);
	if (!nbuf || nb.cap < need) {
		spry_pool_free(req->pool, nb.off, nb.gen);
		errno = EFAULT;
		return NULL;
	}
	memcpy(nbuf, req->buf, d->meta_len + req->len);
	err = spry_pool_free(req->pool, d->off, d->gen);
	if (err && !req->quiet)
		fprintf(stderr, "spry-fn: request %#llx: freeing its old buffer %#llx: %s\n",
			(unsigned long long)d->req_id, (unsigned long long)d->off,
			strerror(-err));
	d->off = nb.off;
	d->cap = nb.cap;
	d->gen = nb.gen;
	req->buf = nbuf;
	return nbuf + d->meta_len;
}

SPRY_API const char *spry_req_meta(const struct spry_req *req, const char *key,
				   size_t *len)
{
	const char *p = (const char *)req->buf;
	const char *end = p + req->desc->meta_len;
	size_t klen;

	if (!key || !*key) {
		errno = EINVAL;
		return NULL;
	}
	klen = strlen(key);
	while (p < end) {
		const char *eol = memchr(p, '\n', end - p);
		const char *v, *ve;

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > klen && p[klen] == ':' &&
		    !strncasecmp(p, key, klen)) {
			v = p + klen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' ||
					  ve[-1] == '\t'))
				ve--;
			if (len)
				*len = ve - v;
			return v;
		}
		p = eol + 1;
	}
	errno = ENOENT;
	return NULL;
}

/* A key: printable ASCII without ':' or blanks; a value: printable ASCII. */
static int meta_check(const char *key, const char *value, size_t *klen, size_t *vlen)
{
	size_t i;

	if (!key || !value)
		return -EINVAL;
	*klen = strnlen(key, RT_META_KEY_MAX + 1);
	*vlen = strnlen(value, RT_META_VAL_MAX + 1);
	if (!*klen || *klen > RT_META_KEY_MAX || *vlen > RT_META_VAL_MAX)
		return -EINVAL;
	for (i = 0; i < *klen; i++)
		if (key[i] <= ' ' || key[i] > '~' || key[i] == ':')
			return -EINVAL;
	for (i = 0; i < *vlen; i++)
		if (value[i] < ' ' || value[i] > '~')
			return -EINVAL;
	return 0;
}

/* Does [p, p + n) hold only '\n' (padding)? */
static bool meta_is_pad(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++ != '\n')
			return false;
	return true;
}

SPRY_API int spry_req_set_meta(struct spry_req *req, const char *key,
			       const char *value)
{
	struct spry_desc *d;
	size_t klen, vlen, line, meta, pos, sep, grow;
	uint8_t *p, *end, *eol;
	int err;

	if (!req)
		return -EINVAL;
	err = meta_check(key, value, &klen, &vlen);
	if (err)
		return err;
	d = req->desc;
	meta = d->meta_len;
	line = klen + 2 + vlen + 1;		/* "key: value\n" */

	/* The line with that key, if any: rewrite it in place, or blank it. */
	p = req->buf;
	end = p + meta;
	while (p < end) {
		eol = memchr(p, '\n', end - p);
		eol = eol ? eol + 1 : end;
		if ((size_t)(eol - p) > klen && p[klen] == ':' &&
		    !strncasecmp((const char *)p, key, klen)) {
			if ((size_t)(eol - p) >= line) {
				memset(p, '\n', eol - p);
				goto write_at;
			}
			memset(p, '\n', eol - p);
		}
		p = eol;
	}

	/* A run of padding at a line start. */
	for (pos = 0; pos + line <= meta; pos++) {
		if (pos && req->buf[pos - 1] != '\n')
			continue;
		if (meta_is_pad(req->buf + pos, line)) {
			p = req->buf + pos;
			goto write_at;
		}
	}

	/* Grow the area: the payload moves up, within the buffer or to a
	 * bigger one.  Spare padding when it fits, for the next line. */
	sep = meta && req->buf[meta - 1] != '\n';
	grow = sep + line + RT_META_SPARE;
	if (meta + grow + req->len > d->cap)
		grow = sep + line;
	if (meta + grow + req->len > UINT32_MAX)
		return -EMSGSIZE;
	if (meta + grow + req->len > d->cap &&
	    !spry_req_resize(req, grow + req->len))
		return -errno;
	memmove(req->buf + meta + grow, req->buf + meta, req->len);
	memset(req->buf + meta, '\n', grow);
	d->meta_len = (uint32_t)(meta + grow);
	p = req->buf + meta + sep;

write_at:
	memcpy(p, key, klen);
	p[klen] = ':';
	p[klen + 1] = ' ';
	memcpy(p + klen + 2, value, vlen);
	p[line - 1] = '\n';
	return 0;
}

SPRY_API int spry_req_set_status(struct spry_req *req, unsigned int http_status)
{
	char v[8];

	if (http_status < 100 || http_status > 599)
		return -EINVAL;
	snprintf(v, sizeof(v), "%u", http_status);
	return spry_req_set_meta(req, SPRY_META_STATUS, v);
}

SPRY_API int spry_req_reply(struct spry_req *req, unsigned int http_status,
			    const char *content_type, const void *body, size_t len)
{
	const uint8_t *b = body, *pay = req->buf + req->desc->meta_len;
	bool inside = false;
	size_t at = 0;
	void *p;
	int err;

	if (len && !body)
		return -EINVAL;
	/*
	 * A body inside the payload (a slice of the request) is followed by
	 * its offset: setting metadata and growing the buffer both move the
	 * payload, keeping its bytes.  Elsewhere in the buffer nothing is
	 * kept, so that is refused.
	 */
	if (len && b >= req->buf && b < req->buf + req->desc->cap) {
		if (b < pay || (size_t)(b - pay) > req->len || len > req->len - (size_t)(b - pay))
			return -EINVAL;
		inside = true;
		at = (size_t)(b - pay);
	}
	if (http_status) {
		err = spry_req_set_status(req, http_status);
		if (err)
			return err;
	}
	if (content_type) {
		err = spry_req_set_meta(req, SPRY_META_CONTENT_TYPE, content_type);
		if (err)
			return err;
	}
	p = spry_req_resize(req, len);
	if (!p)
		return -errno;
	memmove(p, inside ? (uint8_t *)p + at : b, len);
	return spry_req_set_len(req, len);
}

SPRY_API int spry_req_error(struct spry_req *req, unsigned int http_status, int err,
			    const char *fmt, ...)
{
	static const char prefix[] = "error: ";
	char msg[sizeof(prefix) - 1 + SPRY_ERROR_MSG_MAX + 2];	/* + "\n\0" */
	const size_t pl = sizeof(prefix) - 1;
	va_list ap;
	size_t n;
	int m;

	if (err >= 0)
		err = -EINVAL;	/* a handler returning 0 would not fail */
	memcpy(msg, prefix, pl);
	va_start(ap, fmt);
	m = vsnprintf(msg + pl, SPRY_ERROR_MSG_MAX + 1, fmt, ap);
	va_end(ap);
	n = pl + (m < 0 ? 0 : m > SPRY_ERROR_MSG_MAX ? SPRY_ERROR_MSG_MAX : (size_t)m);
	msg[n++] = '\n';
	/* best effort: the request fails with @err even when this cannot be written */
	spry_req_reply(req, http_status, "text/plain", msg, n);
	return err;
}

SPRY_API uint64_t spry_req_id(const struct spry_req *req)
{
	return req->desc->req_id;
}

SPRY_API const struct spry_desc *spry_req_desc(const struct spry_req *req)
{
	return req->desc;
}

/* ------------------------------------------------------------- options */

static int opt_name(const char *opt, const char *v)
{
	if (!v || !*v) {
		fprintf(stderr, "spry-fn: %s needs a value\n", opt);
		return -EINVAL;
	}
	if (strlen(v) >= SPRY_NAME_LEN) {
		fprintf(stderr, "spry-fn: %s '%s': longer than %d characters\n",
			opt, v, SPRY_NAME_LEN - 1);
		return -EINVAL;
	}
	return 0;
}

SPRY_API int spry_fn_opts_parse(struct spry_fn_opts *opts, int argc, char **argv)
{
	int i;

	if (!opts || argc < 0 || (argc && !argv))
		return -EINVAL;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq, *val;
		size_t nlen;

		if (strncmp(arg, "--", 2)) {
			fprintf(stderr, "spry-fn: unexpected argument '%s'\n", arg);
			return -EINVAL;
		}
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);

		if (nlen == 7 && !strncmp(arg, "--quiet", nlen)) {
			if (eq) {
				fprintf(stderr, "spry-fn: --quiet takes no value\n");
				return -EINVAL;
			}
			opts->quiet = 1;
			continue;
		}
		/* Every other option takes a value: "--opt V" or "--opt=V". */
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(stderr, "spry-fn: %s needs a value\n", arg);
			return -EINVAL;
		}

		if (nlen == 7 && !strncmp(arg, "--chain", nlen)) {
			if (opt_name("--chain", val))
				return -EINVAL;
			opts->chain = val;
		} else if (nlen == 4 && !strncmp(arg, "--fn", nlen)) {
			if (opt_name("--fn", val))
				return -EINVAL;
			opts->fn = val;
		} else if (nlen == 6 && !strncmp(arg, "--sock", nlen)) {
			if (!*val) {
				fprintf(stderr, "spry-fn: --sock needs a path\n");
				return -EINVAL;
			}
			opts->sock_path = val;
		} else if (nlen == 7 && !strncmp(arg, "--batch", nlen)) {
			uint32_t v;

			if (spry_num__parse_u32(val, 1, RT_BATCH_MAX, &v)) {
				fprintf(stderr, "spry-fn: --batch '%s': not a number in 1..%u\n",
					val, RT_BATCH_MAX);
				return -EINVAL;
			}
			opts->batch = v;
		} else {
			fprintf(stderr, "spry-fn: unknown option '%.*s'\n", (int)nlen, arg);
			return -EINVAL;
		}
	}
	if (!opts->chain || !opts->fn) {
		fprintf(stderr, "spry-fn: --chain and --fn are required\n");
		return -EINVAL;
	}
	return 0;
}

/* -------------------------------------------------------- registration */

static int rt_hello(struct rt *rt, uint16_t *port)
{
	struct spry_ctl_hello_ack ack;
	struct spry_ctl_hdr hdr;
	int ret;

	ret = spry_ctl_send(rt->ctl, SPRY_CTL_HELLO, 0, NULL, 0, -1);
	if (ret)
		return ret;
	ret = spry_ctl_recv(rt->ctl, &ack, sizeof(ack), &hdr, NULL);
	if (ret < 0)
		return ret;
	if (hdr.type != SPRY_CTL_HELLO_ACK)
		return -EPROTO;
	if (hdr.status)
		return hdr.status < 0 ? hdr.status : -EPROTO;
	if (ret != sizeof(ack) || !ack.tcp_port)
		return -EPROTO;
	if (ack.abi != SPRY_ABI_VERSION)
		return -EPROTONOSUPPORT;
	*port = ack.tcp_port;
	return 0;
}

static int rt_tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd, one = 1, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		goto err;
	while (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		if (errno != EINTR)
			goto err;
	}
	return fd;
err:
	err = -errno;
	close(fd);
	return err;
}

/*
 * The chain's function table after struct spry_ctl_reg_ack: whole entries
 * only; entries with a bad id or name are skipped.  None: calls -ENOENT.
 */
static int rt_fn_table(struct rt *rt, const uint8_t *body, size_t len)
{
	struct spry_ctl_fn_entry e;
	size_t n, i;

	if (len % sizeof(e))
		return -EPROTO;
	n = len / sizeof(e);
	if (n > SPRY_MAX_FNS)
		return -EPROTO;
	if (!n)
		return 0;
	rt->fns = calloc(n, sizeof(e));
	if (!rt->fns)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		memcpy(&e, body + i * sizeof(e), sizeof(e));
		if (!e.id || e.id >= SPRY_MAX_FNS || !e.name[0] ||
		    !memchr(e.name, '\0', sizeof(e.name))) {
			rt_log(rt, "REG_ACK: skipping a malformed function entry (id %u)",
			       e.id);
			continue;
		}
		rt->fns[rt->n_fns++] = e;
	}
	return 0;
}

static void rt_place(struct rt *rt, const __u64 cpus[SPRY_CPU_WORDS]);
static int rt_register_port(struct rt *rt, uint16_t port);
static void rt_mail_start(struct rt *rt);
static void rt_mail_stop(int tcp);

static int rt_register(struct rt *rt)
{
	return rt_register_port(rt, 0);
}

/*
 * The pool fd of a REG_ACK: an instance cloned from a template already
 * maps the chain's pool (inherited); it keeps that mapping when the fd
 * names the same file, else (the chain's pool was replaced meanwhile)
 * maps the new one.  Takes @pfd.
 */
static int rt_pool_take(struct rt *rt, int pfd)
{
	struct stat a, b;

	if (rt->pool && !fstat(pfd, &a) && !fstat(spry_pool_fd(rt->pool), &b) &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		close(pfd);
		return 0;
	}
	if (rt->pool)
		spry_pool_close(rt->pool);
	rt->pool = spry_pool_attach(pfd);
	close(pfd);
	return rt->pool ? 0 : -errno;
}

/* Connect the control socket, bounded in time while registering. */
static int rt_ctl_open(struct rt *rt)
{
	struct timeval tv = { .tv_sec = RT_CTL_TIMEOUT_S };

	rt->ctl = spry_ctl_connect(rt->opts->sock_path);
	if (rt->ctl < 0) {
		int ret = rt->ctl;

		rt->ctl = -1;
		rt_log(rt, "cannot reach spryd at %s: %s (is spryd running?)",
		       rt->opts->sock_path ?: SPRY_CTL_SOCK_DEFAULT, strerror(-ret));
		return ret;
	}
	/* Registration is bounded; afterwards ctl is only read when ready. */
	if (setsockopt(rt->ctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(rt->ctl, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

/* Register; @port: spryd's TCP port when known (a template's clone), else 0 (HELLO). */
static int rt_register_port(struct rt *rt, uint16_t port)
{
	struct spry_ctl_register reg = {};
	struct spry_ctl_reg_ack ack;
	struct spry_ctl_hdr hdr;
	uint8_t *body = NULL;
	size_t body_size = sizeof(ack) +
			   (size_t)SPRY_MAX_FNS * sizeof(struct spry_ctl_fn_entry);
	int ret, pfd = -1;

	rt_trace_mark(TR_CONNECT);
	/* a spare connected ahead */
	ret = rt->ctl >= 0 ? 0 : rt_ctl_open(rt);
	if (ret)
		return ret;
	if (!port) {
		ret = rt_hello(rt, &port);
		if (ret) {
			rt_log(rt, "HELLO to spryd failed: %s", strerror(-ret));
			return ret;
		}
	}
	rt->tcp = rt_tcp_connect(port);
	if (rt->tcp < 0) {
		ret = rt->tcp;
		rt->tcp = -1;
		rt_log(rt, "connecting to spryd's port %u: %s", port, strerror(-ret));
		return ret;
	}

	strcpy(reg.chain, rt->opts->chain);
	strcpy(reg.fn, rt->opts->fn);
	ret = spry_ctl_send(rt->ctl, SPRY_CTL_REGISTER, 0, &reg, sizeof(reg), rt->tcp);
	if (ret) {
		rt_log(rt, "REGISTER: %s", strerror(-ret));
		return ret;
	}
	body = malloc(body_size);
	if (!body)
		return -ENOMEM;
	ret = spry_ctl_recv(rt->ctl, body, body_size, &hdr, &pfd);
	if (ret < 0) {
		rt_log(rt, "waiting for REG_ACK: %s", strerror(-ret));
		goto out;
	}
	if (hdr.type != SPRY_CTL_REG_ACK) {
		ret = -EPROTO;
		goto out;
	}
	if (hdr.status) {
		ret = hdr.status < 0 ? hdr.status : -EPROTO;
		rt_log(rt, "spryd refused the registration: %s%s", strerror(-ret),
		       ret == -ENOENT ? " (unknown chain or function)" : "");
		/* not the ENOENT of a missing socket: spryd answered that it
		 * has no such chain or function (deleted, or never added) */
		if (ret == -ENOENT)
			ret = -EIDRM;
		goto out;
	}
	if (ret < (int)sizeof(ack) || pfd < 0 ||
	    rt_fn_table(rt, body + sizeof(ack), ret - sizeof(ack))) {
		rt_log(rt, "malformed REG_ACK (%d bytes, pool fd %d)", ret, pfd);
		ret = -EPROTO;
		goto out;
	}
	memcpy(&ack, body, sizeof(ack));
	ret = rt_pool_take(rt, pfd);
	pfd = -1;
	if (ret) {
		rt_log(rt, "attaching the chain's pool: %s", strerror(-ret));
		goto out;
	}
	rt->chain = ack.chain;
	rt->fn = ack.fn;
	rt->inst = ack.inst;
	rt_place(rt, ack.cpus);
	if (spry_pool_size(rt->pool) < ack.pool_size)
		rt_log(rt, "pool maps %llu bytes, chain says %llu: offsets past the map are refused",
		       (unsigned long long)spry_pool_size(rt->pool),
		       (unsigned long long)ack.pool_size);
	rt->registered = true;
	rt_mail_start(rt);
	rt_log(rt, "registered: chain %u fn %u instance %u, pid %d, %u functions in the chain",
	       rt->chain, rt->fn, rt->inst, (int)getpid(), rt->n_fns);
	rt_trace("registered");
	ret = 0;
out:
	if (pfd >= 0)
		close(pfd);
	free(body);
	return ret;
}

/*
 * Run where the chain is placed (REG_ACK's cpus, `cpus` of the chain):
 * the CPUs of the mask this thread may use.  A chain's instances on one
 * CPU hand descriptors on without waking another CPU (docs/DESIGN.md,
 * "Placement").  No mask: back to the CPUs allowed at start.  Placement
 * is advice: a mask outside the allowed CPUs or a failing call is logged
 * and the instance runs on.
 */
static void rt_place(struct rt *rt, const __u64 cpus[SPRY_CPU_WORDS])
{
	char list[SPRY_MAX_CPUS * 4];
	cpu_set_t set;

	if (!rt->have_home)
		return;
	if (spry_cpus__empty(cpus)) {
		if (rt->placed && !sched_setaffinity(0, sizeof(rt->home), &rt->home))
			rt->placed = false;
		return;
	}
	spry_cpus__to_set(cpus, &set);
	CPU_AND(&set, &set, &rt->home);
	if (spry_cpus__format(cpus, list, sizeof(list)))
		list[0] = '\0';
	if (!CPU_COUNT(&set)) {
		rt_log(rt, "chain placed on CPUs %s, none of which this process may use: not placed",
		       list);
		return;
	}
	if (sched_setaffinity(0, sizeof(set), &set)) {
		rt_log(rt, "placing on CPUs %s: %s", list, strerror(errno));
		return;
	}
	rt->placed = true;
	rt_log(rt, "placed on CPUs %s (%d usable)", list, CPU_COUNT(&set));
}

/* -------------------------------------------------------- descriptors */

/*
 * A REPLY that no call waits for (its call timed out): the buffer it names
 * was the caller's to free.  Checked like any descriptor; a stale @gen is
 * refused by the pool.
 */
static void rt_late_reply(struct rt *rt, const struct spry_desc *d)
{
	rt->n_late++;
	if (d->chain == rt->chain && spry_pool_ptr(rt->pool, d->off, d->cap))
		spry_pool_free(rt->pool, d->off, d->gen);
	if (rt->n_late <= 10)
		rt_log(rt, "late reply for req %#llx from fn %u: buffer freed",
		       (unsigned long long)d->req_id, d->fn);
}

/*
 * Turn @d (a private copy of an arriving descriptor) into what goes out.
 * Returns true when it is to be sent, false when it cannot be sent at all
 * (a CALL for another function: any send of it would get this socket
 * quarantined; a late REPLY: nothing waits for it).
 */
static bool rt_handle(struct rt *rt, struct spry_desc *d)
{
	struct spry_req req;
	bool call;
	void *buf;
	int ret;

	/* the checks themselves: spry_desc_check() (fn-runtime/desc.c) */
	switch (spry_desc_check(d, rt->chain, rt->fn, rt->pool, &buf)) {
	case SPRY_DESC_LATE_REPLY:
		rt_late_reply(rt, d);
		return false;
	case SPRY_DESC_DROP:
		goto drop;
	case SPRY_DESC_FOREIGN:
		/*
		 * Not ours to run.  Make the header routable so the refusal
		 * reaches the origin by req_id; the buffer is not touched.
		 */
		d->version = SPRY_DESC_VERSION;
		d->chain = rt->chain;
		d->flags = 0;
		goto bad;
	case SPRY_DESC_PASS:
		return true;	/* the router takes it to the origin */
	case SPRY_DESC_BAD_BOUNDS:
		call = d->flags & SPRY_DF_CALL;
		goto bad_call;
	case SPRY_DESC_RUN:
		break;
	}
	call = d->flags & SPRY_DF_CALL;

	req = (struct spry_req){
		.pool = rt->pool,
		.desc = d,
		.buf = buf,
		.len = d->len,
		.quiet = rt->opts->quiet,
		.rt = rt,
	};
	ret = rt->handler(&req, rt->user);
	rt_finish(rt, d, &req, ret, call);
	return true;

bad_call:
	if (call)
		d->flags = (d->flags & ~SPRY_DF_CALL) | SPRY_DF_REPLY;
bad:
	d->status = SPRY_ST_BAD_DESC;
	rt->n_bad++;
	if (rt->n_bad <= 10)
		rt_log(rt, "refusing descriptor req %#llx (off %#llx len %u meta %u cap %u)",
		       (unsigned long long)d->req_id, (unsigned long long)d->off,
		       d->len, d->meta_len, d->cap);
	return true;
drop:
	rt->n_dropped++;
	if (rt->n_dropped <= 10)
		rt_log(rt, "dropping a call for fn %u (not mine), req %#llx",
		       d->fn, (unsigned long long)d->req_id);
	return false;
}

/* Send @n descriptors in one send(); the router routes them in runs. */
static int rt_send_descs(struct rt *rt, const struct spry_desc *descs, size_t n)
{
	const uint8_t *p = (const uint8_t *)descs;
	size_t left = n * RT_DESC;
	ssize_t w;
	int err = 0;

	/* other threads send mails: never a descriptor split between two */
	pthread_mutex_lock(&rt_tx_mu);
	while (left) {
		w = send(rt->tcp, p, left, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			if (errno == EACCES)
				rt_log(rt, "send refused (EACCES): the router quarantined this instance");
			break;
		}
		p += w;
		left -= w;
	}
	pthread_mutex_unlock(&rt_tx_mu);
	return err;
}

/* Send what is ready in rt->tx. */
static int rt_flush(struct rt *rt)
{
	size_t n = rt->tx_n;

	rt->tx_n = 0;
	return n ? rt_send_descs(rt, rt->tx, n) : 0;
}

/* Handle one descriptor; what goes out joins rt->tx (sent when full). */
static int rt_run_one(struct rt *rt, const struct spry_desc *in)
{
	struct spry_desc cur = *in;

	if (rt_mail_in(rt, in))
		return 0;
	if (!rt_handle(rt, &cur))
		return 0;
	/* the handler may have flushed rt->tx (a call) */
	rt->tx[rt->tx_n++] = cur;
	return rt->tx_n == rt->batch ? rt_flush(rt) : 0;
}

/* Run the descriptors kept during calls, oldest first (they may call too). */
static int rt_drain_pending(struct rt *rt)
{
	struct spry_desc d;
	int ret;

	while (rt->pend_n) {
		d = rt->pend[rt->pend_head];
		rt->pend_head = (rt->pend_head + 1) % RT_PEND_MAX;
		rt->pend_n--;
		ret = rt_run_one(rt, &d);
		if (ret)
			return ret;
	}
	return rt_flush(rt);
}

/*
 * recv() descriptors into @buf (@max of them), completing a partial one
 * kept from the previous read; a new partial tail is kept in rt->part.
 * Returns the number of whole descriptors (*@got: bytes received), or
 * -EAGAIN (nothing queued), -ECONNRESET (EOF), -errno.
 */
static int rt_recv_descs(struct rt *rt, uint8_t *buf, size_t max, size_t *got, int flags)
{
	size_t have = rt->part_have, total, nd;
	ssize_t n;

	memcpy(buf, rt->part, have);
	do {
		n = recv(rt->tcp, buf + have, max * RT_DESC - have, flags);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0) {
		if (!rt_sig_stop)	/* else our own shutdown (rt_on_signal) */
			rt_log(rt, "spryd closed the data connection");
		return -ECONNRESET;
	}
	total = have + n;
	nd = total / RT_DESC;
	rt->part_have = total - nd * RT_DESC;
	memcpy(rt->part, buf + nd * RT_DESC, rt->part_have);
	if (got)
		*got = n;
	return (int)nd;
}

/* Handle the @nd descriptors received into rt->rx, then those kept during calls. */
static int rt_run_batch(struct rt *rt, int nd)
{
	const struct spry_desc *d;
	int i, n, ret;

	/*
	 * Mails and their answers first, taken out of rt->rx: a handler of
	 * this batch waiting in spry_recv() or spry_send() reads the socket,
	 * not what is already here (and its sender waits for the answer
	 * meanwhile).
	 */
	for (i = 0, n = 0; i < nd; i++) {
		d = (const struct spry_desc *)(rt->rx + (size_t)i * RT_DESC);
		if ((d->flags & SPRY_DF_MAIL) && rt_mail_in(rt, d))
			continue;
		if (n != i)
			memcpy(rt->rx + (size_t)n * RT_DESC, d, RT_DESC);
		n++;
	}
	if (rt->bhandler)
		return rt_run_grouped(rt, n);
	for (i = 0; i < n; i++) {
		ret = rt_run_one(rt, (const struct spry_desc *)(rt->rx + (size_t)i * RT_DESC));
		if (ret)
			return ret;
	}
	return rt_drain_pending(rt);
}

/* Read and handle what is queued on the TCP socket (epoll told it is readable). */
static int rt_rx(struct rt *rt)
{
	size_t want, got;
	int round, nd, ret;

	for (round = 0; round < RT_RX_ROUNDS; round++) {
		want = (size_t)rt->batch * RT_DESC - rt->part_have;
		nd = rt_recv_descs(rt, rt->rx, rt->batch, &got, MSG_DONTWAIT);
		if (nd == -EAGAIN)
			return 0;
		if (nd < 0)
			return nd;
		nd = rt_batch_gather(rt, nd);
		ret = rt_run_batch(rt, nd);
		if (ret)
			return ret;
		if (!rt->first_done && nd > 0) {
			rt->first_done = true;
			rt_trace("first");
		}
		if (got < want)
			return 0;	/* drained */
	}
	return 0;
}

/* ------------------------------------------------------------ mailboxes */

/*
 * Mailboxes (docs/PROCESS.md, "Mailboxes"; the router's side is in
 * bpf/skmsg_route.c).  A mail is a descriptor flagged SPRY_DF_MAIL naming a
 * pool buffer tagged SPRY_MAIL_TAG(receiver) that holds the payload; the
 * router takes it to the receiving process, whose runtime queues it in the
 * mailbox (the buffer stays there until spry_recv() copies it out) or
 * refuses it (mailbox full: the buffer freed), and answers through the
 * router either way.  The sender waits for that answer.
 *
 * Only the runtime's own thread reads the data socket: in its loop, while
 * a handler waits for a call's reply, or inside spry_send()/spry_recv()
 * called from a handler.  Another thread of the process waits on a
 * condition the runtime's thread signals when it reads what it waits for.
 *
 * The router bounds a sender (SPRY_MAIL_OUT_MAX): its mails not answered
 * plus the answers delivered to it since it last proved it read them.
 * Every answer carries a token; a mail shows the XOR of every token read
 * so far.  The runtime keeps its own account, never below the router's:
 * unanswered (mails whose answer it has not read) plus unproven (answers
 * read since a mail surely proved them: one sent with nothing unanswered,
 * when no answer can be on its way).
 */
/*
 * Mails waiting for their answer: as many as the window can have (a slot
 * is freed by its answer, whose status goes to the waiter's own struct
 * rt_mail_res), so the window is the only bound and -EAGAIN means a full
 * mailbox, nothing else.
 */
#define RT_MAIL_SLOTS		SPRY_MAIL_OUT_MAX
#define RT_MAIL_TX_SLICE_MS	5	/* the reading thread's look while another sends */

enum { MS_FREE, MS_WAIT };

/* Where the answer of a mail goes: the waiter's (NULL in the slot: gone). */
struct rt_mail_res {
	uint8_t		status;		/* the answer's enum spry_status */
	bool		done;
};

struct rt_mail_msg {
	uint64_t	from;
	uint64_t	off;
	uint32_t	gen;
	uint32_t	len;
};

struct rt_mail_box {
	struct rt_mail_msg	q[SPRY_MAIL_DEPTH];
	uint32_t		head, n;
};

struct rt_mail_out {
	uint64_t	seq;
	uint64_t	pid;		/* receiving process */
	uint64_t	off;		/* its buffer */
	uint32_t	gen;
	uint8_t		state;		/* MS_* */
	struct rt_mail_res *res;	/* NULL: its waiter left (timeout) */
};

static struct {
	pthread_mutex_t		mu;
	pthread_cond_t		cv;
	struct rt		*rt;		/* NULL: not a registered process */
	uint64_t		epoch;		/* registrations so far: a new one has
						 * a new pool and fresh slots */
	pthread_t		owner;		/* the thread reading the socket */
	uint64_t		self;		/* this process's id */
	int			timeout_ms;
	struct rt_mail_box	box[SPRY_MAILBOXES];
	struct rt_mail_out	out[RT_MAIL_SLOTS];
	uint32_t		unanswered;	/* out[] in MS_WAIT */
	uint32_t		unproven;
	uint32_t		tok;		/* XOR of the answer tokens read */
	uint64_t		seq;
	/*
	 * A mail being sent (rt_mail_post()): its send() runs without the
	 * lock, one mail at a time, so that a send() stalled on a full
	 * socket never keeps the runtime's thread from reading (which needs
	 * the lock) nor any other thread from receiving.  @sending: threads
	 * in such a send(), which rt_mail_stop() waits for before the socket
	 * can be closed.
	 */
	bool			tx_busy;
	uint32_t		sending;
	uint64_t		n_in, n_full, n_sent;
} rt_mail = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
};
static pthread_once_t rt_mail_once = PTHREAD_ONCE_INIT;

/* The condition waits against CLOCK_MONOTONIC, as every deadline here. */
static void rt_mail_init_cv(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&rt_mail.cv, &a);
	pthread_condattr_destroy(&a);
}

_Static_assert(SPRY_MAILBOXES == SPRY_MAIL_BOXES, "mailbox count");
/* rt_mail_window() keeps unanswered below SPRY_MAIL_OUT_MAX - 1: a slot free */
_Static_assert(RT_MAIL_SLOTS >= SPRY_MAIL_OUT_MAX - 1, "mail window");

static int rt_keep(struct rt *rt, const struct spry_desc *d);

/* After registration: mailboxes on for an app's process (SPRY_PROCESS_ID). */
static void rt_mail_start(struct rt *rt)
{
	const char *v = getenv("SPRY_MAIL_TIMEOUT_MS");
	uint32_t ms;

	pthread_once(&rt_mail_once, rt_mail_init_cv);
	pthread_mutex_lock(&rt_mail.mu);
	memset(rt_mail.box, 0, sizeof(rt_mail.box));
	memset(rt_mail.out, 0, sizeof(rt_mail.out));
	rt_mail.unanswered = rt_mail.unproven = rt_mail.tok = 0;
	rt_mail.self = spry_process_id();
	rt_mail.timeout_ms = SPRY_MAIL_TIMEOUT_MS;
	if (v && !spry_num__parse_u32(v, 1, 3600 * 1000, &ms))
		rt_mail.timeout_ms = (int)ms;
	rt_mail.owner = pthread_self();
	rt_mail.rt = rt_mail.self ? rt : NULL;
	rt_mail.epoch++;
	pthread_mutex_unlock(&rt_mail.mu);
}

/*
 * The registration is gone (spryd lost, or the end): what was queued
 * belonged to it (spryd reclaims the buffers of a process that went away);
 * waiters fail.
 */
static void rt_mail_stop(int tcp)
{
	bool shut = false;

	pthread_once(&rt_mail_once, rt_mail_init_cv);
	pthread_mutex_lock(&rt_mail.mu);
	rt_mail.rt = NULL;
	pthread_cond_broadcast(&rt_mail.cv);
	/*
	 * A thread still in a mail's send() (without the lock) uses the
	 * socket the caller is about to close: wake it (a send() stalled on a
	 * full socket fails at once after a shutdown) and wait for it.
	 */
	while (rt_mail.sending) {
		if (!shut && tcp >= 0)
			shutdown(tcp, SHUT_RDWR);
		shut = true;
		pthread_cond_wait(&rt_mail.cv, &rt_mail.mu);
	}
	pthread_mutex_unlock(&rt_mail.mu);
}

static bool rt_mail_owner(void)
{
	return pthread_equal(pthread_self(), rt_mail.owner);
}

/* Answer mail @d with @status (the router takes it to its sender). */
static int rt_mail_answer(struct rt *rt, const struct spry_desc *d, uint8_t status)
{
	struct spry_desc a = *d;

	a.flags = SPRY_DF_MAIL | SPRY_DF_REPLY;
	a.status = status;
	a.off = 0;
	a.cap = a.len = a.gen = 0;
	return rt_send_descs(rt, &a, 1);
}

/*
 * A mail for one of our mailboxes (under rt_mail.mu): the status to answer
 * it with (sent by the caller once it dropped the lock).
 */
static uint8_t rt_mail_take(struct rt *rt, const struct spry_desc *d)
{
	enum spry_mail_verdict v = spry_mail_check(d, rt->chain, rt->pool);
	struct rt_mail_box *b;
	struct rt_mail_msg *m;

	if (v != SPRY_MAIL_TAKE) {
		/* refused: the buffer stays its sender's, which frees it */
		rt->n_bad++;
		return SPRY_ST_BAD_DESC;
	}
	b = &rt_mail.box[d->hop];
	if (b->n == SPRY_MAIL_DEPTH) {
		/* full: nothing queued, the buffer back, the sender told */
		spry_pool_free(rt->pool, d->off, d->gen);
		rt_mail.n_full++;
		return SPRY_ST_MAILBOX_FULL;
	}
	m = &b->q[(b->head + b->n) % SPRY_MAIL_DEPTH];
	m->from = d->key;	/* the router wrote the sender's process id */
	m->off = d->off;
	m->gen = d->gen;
	m->len = d->len;
	b->n++;
	rt_mail.n_in++;
	pthread_cond_broadcast(&rt_mail.cv);
	return SPRY_ST_OK;
}

/* The answer to one of our mails (under rt_mail.mu). */
static void rt_mail_answered(struct rt *rt, const struct spry_desc *d)
{
	struct rt_mail_out *o = NULL;
	uint32_t i;

	/* the router counted it delivered: account for it whatever it is */
	rt_mail.tok ^= d->meta_len;
	rt_mail.unproven++;
	for (i = 0; i < RT_MAIL_SLOTS; i++) {
		struct rt_mail_out *c = &rt_mail.out[i];

		if (c->state != MS_WAIT)
			continue;
		/*
		 * The router wrote who answers (key): a receiver can answer only
		 * its own mails.  spryd's answer for a dead receiver names it,
		 * not a mail: its oldest.
		 */
		if (c->pid != d->key)
			continue;
		if (d->req_id ? c->seq == d->req_id : !o || c->seq < o->seq)
			o = c;
		if (o && d->req_id)
			break;
	}
	if (!o)
		return;
	/*
	 * A bounce from the router comes back with our buffer; a refusal of
	 * the receiver's runtime (bad) leaves it ours too.  An accepted mail's
	 * buffer is the receiver's, a full mailbox's was freed by it, a dead
	 * receiver's was reclaimed by spryd.
	 */
	if ((d->status == SPRY_ST_NO_PROCESS && d->cap && d->off == o->off && d->gen == o->gen) ||
	    d->status == SPRY_ST_BAD_DESC)
		spry_pool_free(rt->pool, o->off, o->gen);
	rt_mail.unanswered--;
	if (o->res) {
		o->res->status = d->status;
		o->res->done = true;
	}
	o->state = MS_FREE;
	o->res = NULL;
	pthread_cond_broadcast(&rt_mail.cv);
}

/*
 * A descriptor read from the data socket that is a mail or a mail's
 * answer: handled here (true); anything else is the caller's (false).
 */
static bool rt_mail_in(struct rt *rt, const struct spry_desc *d)
{
	bool answer = false;
	uint8_t status = 0;
	int err;

	if (!(d->flags & SPRY_DF_MAIL))
		return false;
	pthread_mutex_lock(&rt_mail.mu);
	if (!rt_mail.rt) {
		/* not a cloud process: an unknown flag, refused as any (rt_handle) */
		pthread_mutex_unlock(&rt_mail.mu);
		return false;
	}
	/* checks: spry_mail_check() (fn-runtime/desc.c) */
	if (spry_mail_check(d, rt->chain, rt->pool) == SPRY_MAIL_FOREIGN) {
		rt->n_dropped++;	/* the router never delivers one */
	} else if (d->flags & SPRY_DF_REPLY) {
		rt_mail_answered(rt, d);
	} else {
		status = rt_mail_take(rt, d);
		answer = true;
	}
	pthread_mutex_unlock(&rt_mail.mu);
	/*
	 * The answer goes without the lock: a send() that blocks (the socket
	 * full) must not stop this process's other threads in spry_send() or
	 * spry_recv().  Only this thread reads the socket and closes it.
	 */
	if (answer) {
		err = rt_mail_answer(rt, d, status);
		if (err)
			rt_log(rt, "answering a mail: %s", strerror(-err));
	}
	return true;
}

static int rt_wait_rx(struct rt *rt, int64_t deadline, bool once,
		      bool (*take)(struct rt *, const struct spry_desc *, void *),
		      bool (*done)(void *), void *arg);

/*
 * The runtime's thread waits for mail traffic: reads what comes within
 * @wait_ms (mails and answers handled, other descriptors kept for after
 * the handler).  Called without rt_mail.mu.  0 or -errno.
 */
static int rt_mail_pump(struct rt *rt, int wait_ms)
{
	return rt_wait_rx(rt, mono_ms() + wait_ms, true, NULL, NULL, NULL);
}

/*
 * Wait (under rt_mail.mu, which it may drop) until @ready() or @deadline
 * (CLOCK_MONOTONIC ms): the runtime's thread reads the socket, another
 * waits for it.  0 when ready, -ETIMEDOUT, -ENOTCONN (registration gone)
 * or -errno.
 */
static int rt_mail_wait(bool (*ready)(void *), void *arg, int64_t deadline)
{
	uint64_t epoch = rt_mail.epoch;
	struct timespec ts;
	int64_t left;
	int ret;

	for (;;) {
		/* unregistered, or registered again meanwhile: not ours */
		if (!rt_mail.rt || rt_mail.epoch != epoch)
			return -ENOTCONN;
		if (ready(arg))
			return 0;
		left = deadline - mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (rt_mail_owner()) {
			struct rt *rt = rt_mail.rt;

			/*
			 * Another thread's mail send() ends without anything to
			 * read here: look again soon (it may be what we wait for).
			 */
			if (rt_mail.tx_busy && left > RT_MAIL_TX_SLICE_MS)
				left = RT_MAIL_TX_SLICE_MS;
			pthread_mutex_unlock(&rt_mail.mu);
			ret = rt_mail_pump(rt, left > INT_MAX ? INT_MAX : (int)left);
			pthread_mutex_lock(&rt_mail.mu);
			if (ret)
				return ret;
			continue;
		}
		/* mono_ms() is CLOCK_MONOTONIC, the condition's clock */
		if (deadline == INT64_MAX) {
			ts.tv_sec = INT32_MAX;	/* forever, as far as it matters */
			ts.tv_nsec = 0;
		} else {
			ts.tv_sec = deadline / 1000;
			ts.tv_nsec = (deadline % 1000) * 1000000;
		}
		ret = pthread_cond_timedwait(&rt_mail.cv, &rt_mail.mu, &ts);
		if (ret && ret != ETIMEDOUT)
			return -ret;
	}
}

static bool rt_mail_window(void *arg)
{
	(void)arg;
	/* one mail send() at a time (rt_mail_post()) */
	if (rt_mail.tx_busy)
		return false;
	/* the router's count is at most unanswered + unproven (see above) */
	return !rt_mail.unanswered ||
	       rt_mail.unanswered + rt_mail.unproven + 1 < SPRY_MAIL_OUT_MAX;
}

static bool rt_mail_done(void *arg)
{
	return ((struct rt_mail_res *)arg)->done;
}

/*
 * Send a mail in buffer @b (@len bytes, tagged for @pid) once the window
 * allows; under rt_mail.mu, which it drops for the send() itself.  The
 * slot waiting for its answer, or NULL with *@err (the buffer is then
 * still the caller's, if the registration is still the same).
 *
 * The bookkeeping is done first, under the lock: the slot reserved and
 * counted unanswered, the proof of reading taken, so that an answer read
 * by the runtime's thread while the send() is under way finds its slot.
 * rt_mail.tx_busy keeps other mails from being sent in between, which
 * keeps the proof right: a mail sent with nothing unanswered is the only
 * one the router sees until it is routed, so no answer can make its token
 * stale.  A send() that fails is rolled back.
 */
static struct rt_mail_out *rt_mail_post(uint64_t pid, uint32_t mailbox,
					const struct spry_buf *b, uint32_t len,
					int64_t deadline, struct rt_mail_res *res, int *err)
{
	struct rt_mail_out *o = NULL;
	struct spry_desc d = {};
	uint32_t i, unproven;
	uint64_t epoch;
	struct rt *rt;
	bool sure;

	*err = rt_mail_wait(rt_mail_window, NULL, deadline);
	if (*err)
		return NULL;
	rt = rt_mail.rt;
	epoch = rt_mail.epoch;
	for (i = 0; i < RT_MAIL_SLOTS && !o; i++)
		if (rt_mail.out[i].state == MS_FREE)
			o = &rt_mail.out[i];
	if (!o) {
		*err = -ENOBUFS;	/* cannot be: the window is below the slots */
		return NULL;
	}
	sure = !rt_mail.unanswered;
	d.version = SPRY_DESC_VERSION;
	d.flags = SPRY_DF_MAIL;
	d.hop = (uint8_t)mailbox;
	d.chain = rt->chain;
	d.fn = rt->fn;
	d.req_id = ++rt_mail.seq;
	d.off = b->off;
	d.cap = b->cap;
	d.gen = b->gen;
	d.len = len;
	d.key = pid;
	d.meta_len = rt_mail.tok;	/* the proof that every answer was read */
	unproven = rt_mail.unproven;
	if (sure)
		rt_mail.unproven = 0;
	rt_mail.unanswered++;
	*res = (struct rt_mail_res){ .done = false };
	*o = (struct rt_mail_out){
		.seq = d.req_id, .pid = pid, .off = b->off, .gen = b->gen, .state = MS_WAIT,
		.res = res,
	};
	rt_mail.tx_busy = true;
	rt_mail.sending++;
	pthread_mutex_unlock(&rt_mail.mu);

	*err = rt_send_descs(rt, &d, 1);

	pthread_mutex_lock(&rt_mail.mu);
	rt_mail.sending--;
	rt_mail.tx_busy = false;
	pthread_cond_broadcast(&rt_mail.cv);
	if (rt_mail.rt != rt || rt_mail.epoch != epoch) {
		/* the registration went meanwhile: its slots went with it */
		if (!*err)
			*err = -ENOTCONN;
		return NULL;
	}
	if (*err) {
		/* not sent: nothing can answer it */
		if (o->state == MS_WAIT && o->seq == d.req_id) {
			o->state = MS_FREE;
			o->res = NULL;
			rt_mail.unanswered--;
		}
		if (sure)
			rt_mail.unproven += unproven;	/* what it had cleared */
		return NULL;
	}
	rt_mail.n_sent++;
	/* answered already (the runtime's thread read it meanwhile): still ours */
	return o;
}

/* The answer @res of slot @o (under rt_mail.mu): 0 or -errno. */
static int rt_mail_result(struct rt_mail_out *o, struct rt_mail_res *res, int64_t deadline)
{
	int err = rt_mail_wait(rt_mail_done, res, deadline);

	if (err) {
		/* no answer yet: the slot counts until one comes (or spryd's) */
		if (o->state == MS_WAIT && o->res == res)
			o->res = NULL;
		return err == -ENOTCONN ? -ETIMEDOUT : err;
	}
	switch (res->status) {
	case SPRY_ST_OK:
		return 0;
	case SPRY_ST_MAILBOX_FULL:
		return -EAGAIN;
	case SPRY_ST_NO_PROCESS:
		return -ESRCH;
	case SPRY_ST_BAD_DESC:
		return -EINVAL;
	default:
		return -EPROTO;
	}
}

/* A buffer for @len bytes to @pid, filled: 0 or -errno. */
static int rt_mail_buf(struct rt *rt, uint64_t pid, const void *data, size_t len,
		       struct spry_buf *b)
{
	uint8_t *p;
	int err;

	if (len > UINT32_MAX)
		return -EMSGSIZE;
	err = spry_pool_alloc(rt->pool, len ? (uint32_t)len : 1, SPRY_MAIL_TAG(pid), b);
	if (err)
		return err == -ENOSPC ? -ENOBUFS : err;
	p = spry_pool_ptr(rt->pool, b->off, b->cap);
	if (!p || b->cap < len) {
		spry_pool_free(rt->pool, b->off, b->gen);
		return -EFAULT;
	}
	if (len)
		memcpy(p, data, len);
	return 0;
}

/* The common checks: the registered runtime, under rt_mail.mu; or -errno. */
static int rt_mail_enter(uint32_t mailbox, struct rt **rtp, uint64_t *epoch)
{
	pthread_mutex_lock(&rt_mail.mu);
	if (!rt_mail.rt) {
		pthread_mutex_unlock(&rt_mail.mu);
		return -EPERM;
	}
	if (mailbox >= SPRY_MAILBOXES) {
		pthread_mutex_unlock(&rt_mail.mu);
		return -EINVAL;
	}
	*rtp = rt_mail.rt;
	*epoch = rt_mail.epoch;
	return 0;
}

/* Still the registration @rt, @epoch (rt_mail_enter()): its pool is open. */
static bool rt_mail_same(const struct rt *rt, uint64_t epoch)
{
	return rt_mail.rt == rt && rt_mail.epoch == epoch;
}

SPRY_API int spry_send(uint64_t pid, uint32_t mailbox, const void *data, size_t len)
{
	struct rt_mail_res res;
	struct rt_mail_out *o;
	struct spry_buf b;
	int64_t deadline;
	uint64_t epoch;
	struct rt *rt;
	int err;

	if (len && !data)
		return -EINVAL;
	err = rt_mail_enter(mailbox, &rt, &epoch);
	if (err)
		return err;
	if (!pid || pid > (1ULL << 63) - 1) {
		err = -ESRCH;
		goto out;
	}
	deadline = mono_ms() + rt_mail.timeout_ms;
	err = rt_mail_buf(rt, pid, data, len, &b);
	if (err)
		goto out;
	o = rt_mail_post(pid, mailbox, &b, (uint32_t)len, deadline, &res, &err);
	if (!o) {
		if (rt_mail_same(rt, epoch))
			spry_pool_free(rt->pool, b.off, b.gen);
		goto out;
	}
	err = rt_mail_result(o, &res, deadline);
out:
	pthread_mutex_unlock(&rt_mail.mu);
	return err;
}

/* This app's active processes from spryd (PROC SHOW, active only). */
static int rt_mail_peers(const char *app, const char *sock, uint64_t *ids, uint32_t max,
			 uint32_t *n)
{
	size_t size = sizeof(struct spry_ctl_proc_app) +
		      (size_t)SPRY_MAX_INST * sizeof(struct spry_ctl_proc_info);
	struct spry_ctl_proc req = { .op = SPRY_PROC_SHOW, .flags = SPRY_PROC_F_ACTIVE };
	struct timeval tv = { .tv_sec = RT_CTL_TIMEOUT_S };
	struct spry_ctl_proc_app sum;
	struct spry_ctl_proc_info info;
	struct spry_ctl_hdr hdr;
	uint8_t *body;
	uint32_t i;
	int fd, ret;

	snprintf(req.app, sizeof(req.app), "%s", app);
	body = malloc(size);
	if (!body)
		return -ENOMEM;
	fd = spry_ctl_connect(sock);
	if (fd < 0) {
		free(body);
		return fd;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		ret = -errno;
		goto out;
	}
	ret = spry_ctl_send(fd, SPRY_CTL_PROC, 0, &req, sizeof(req), -1);
	if (ret)
		goto out;
	ret = spry_ctl_recv(fd, body, (uint32_t)size, &hdr, NULL);
	if (ret < 0)
		goto out;
	if (hdr.type != SPRY_CTL_PROC_ACK || (hdr.status && hdr.status > 0)) {
		ret = -EPROTO;
		goto out;
	}
	if (hdr.status) {
		ret = hdr.status;
		goto out;
	}
	if ((size_t)ret < sizeof(sum)) {
		ret = -EPROTO;
		goto out;
	}
	memcpy(&sum, body, sizeof(sum));
	if (sum.n_info > SPRY_MAX_INST ||
	    (size_t)ret != sizeof(sum) + (size_t)sum.n_info * sizeof(info)) {
		ret = -EPROTO;
		goto out;
	}
	*n = 0;
	for (i = 0; i < sum.n_info && *n < max; i++) {
		memcpy(&info, body + sizeof(sum) + i * sizeof(info), sizeof(info));
		if (info.state == SPRY_PS_ACTIVE && info.id != rt_mail.self)
			ids[(*n)++] = info.id;
	}
	ret = 0;
out:
	close(fd);
	free(body);
	return ret;
}

SPRY_API int spry_send_all(uint32_t mailbox, const void *data, size_t len, unsigned *failed)
{
	uint64_t ids[SPRY_MAX_INST];
	struct rt_mail_out *slot[SPRY_MAX_INST];
	struct rt_mail_res res[SPRY_MAX_INST];
	char app[SPRY_NAME_LEN], sock[PATH_MAX];
	struct spry_buf b;
	uint32_t n = 0, i;
	unsigned int bad = 0;
	int64_t deadline;
	uint64_t epoch;
	struct rt *rt;
	int err, delivered = 0;

	if (failed)
		*failed = 0;
	if (len && !data)
		return -EINVAL;
	err = rt_mail_enter(mailbox, &rt, &epoch);
	if (err)
		return err;
	if (len > UINT32_MAX) {
		pthread_mutex_unlock(&rt_mail.mu);
		return -EMSGSIZE;
	}
	/* spryd's answer without the lock (the runtime's thread keeps
	 * reading), so with copies of what it needs of the registration */
	snprintf(app, sizeof(app), "%s", rt->opts->chain);
	snprintf(sock, sizeof(sock), "%s", rt->opts->sock_path ?: "");
	pthread_mutex_unlock(&rt_mail.mu);
	err = rt_mail_peers(app, sock[0] ? sock : NULL, ids, SPRY_MAX_INST, &n);
	if (err)
		return err;
	pthread_mutex_lock(&rt_mail.mu);
	if (!rt_mail_same(rt, epoch)) {
		pthread_mutex_unlock(&rt_mail.mu);
		return -ECONNRESET;
	}
	deadline = mono_ms() + rt_mail.timeout_ms;
	/* all sent first (the window allowing), then every answer */
	for (i = 0; i < n; i++)
		slot[i] = NULL;
	for (i = 0; i < n; i++) {
		/* a post waits without the lock: registered again since? */
		if (!rt_mail_same(rt, epoch)) {
			bad += n - i;
			break;
		}
		err = rt_mail_buf(rt, ids[i], data, len, &b);
		if (err) {
			/* the same for every receiver: nothing was sent */
			if (!i && (err == -EMSGSIZE || err == -EFAULT))
				goto out;
			bad++;
			continue;
		}
		slot[i] = rt_mail_post(ids[i], mailbox, &b, (uint32_t)len, deadline, &res[i],
				       &err);
		if (!slot[i]) {
			if (rt_mail_same(rt, epoch))
				spry_pool_free(rt->pool, b.off, b.gen);
			bad++;
		}
	}
	for (i = 0; i < n; i++) {
		if (!slot[i])
			continue;
		if (rt_mail_result(slot[i], &res[i], deadline))
			bad++;
		else
			delivered++;
	}
	err = delivered;
out:
	pthread_mutex_unlock(&rt_mail.mu);
	if (failed)
		*failed = bad;
	return err;
}

static bool rt_mail_has(void *arg)
{
	return rt_mail.box[*(uint32_t *)arg].n > 0;
}

SPRY_API ssize_t spry_recv(uint32_t mailbox, void *buf, size_t cap, int timeout_ms,
			   uint64_t *from)
{
	struct rt_mail_box *b;
	struct rt_mail_msg *m;
	const uint8_t *p;
	int64_t deadline;
	uint64_t epoch;
	struct rt *rt;
	ssize_t ret;
	int err;

	if (cap && !buf)
		return -EINVAL;
	err = rt_mail_enter(mailbox, &rt, &epoch);
	if (err)
		return err;
	b = &rt_mail.box[mailbox];
	/* what already waits in the socket first, even for a poll */
	if (!b->n && rt_mail_owner()) {
		pthread_mutex_unlock(&rt_mail.mu);
		err = rt_mail_pump(rt, 0);
		pthread_mutex_lock(&rt_mail.mu);
		if (err) {
			ret = err;
			goto out;
		}
	}
	if (timeout_ms < 0)
		deadline = INT64_MAX;
	else
		deadline = mono_ms() + timeout_ms;
	err = rt_mail_wait(rt_mail_has, &mailbox, deadline);
	if (err) {
		ret = err == -ENOTCONN ? -ETIMEDOUT : err;
		goto out;
	}
	m = &b->q[b->head];
	if (m->len > cap) {
		ret = -EMSGSIZE;	/* it stays queued */
		goto out;
	}
	p = spry_pool_ptr(rt->pool, m->off, m->len);
	if (p && m->len)
		memcpy(buf, p, m->len);
	ret = p ? (ssize_t)m->len : -EFAULT;
	if (from)
		*from = m->from;
	spry_pool_free(rt->pool, m->off, m->gen);
	b->head = (b->head + 1) % SPRY_MAIL_DEPTH;
	b->n--;
out:
	pthread_mutex_unlock(&rt_mail.mu);
	return ret;
}

/* ---------------------------------------------------------------- calls */

/*
 * A descriptor that arrived while a handler waits for its reply: kept for
 * after the current request.  With the queue full it is refused now (an
 * error status to the origin, or an error REPLY to a caller).
 */
static int rt_keep(struct rt *rt, const struct spry_desc *d)
{
	struct spry_desc r;

	if (rt_mail_in(rt, d))
		return 0;
	if (d->version == SPRY_DESC_VERSION && d->chain == rt->chain &&
	    (d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY)) == SPRY_DF_REPLY) {
		rt_late_reply(rt, d);
		return 0;
	}
	if (rt->pend_n < RT_PEND_MAX) {
		rt->pend[(rt->pend_head + rt->pend_n) % RT_PEND_MAX] = *d;
		rt->pend_n++;
		return 0;
	}
	r = *d;
	rt->n_refused++;
	if (rt->n_refused <= 10)
		rt_log(rt, "%u descriptors kept during a call: refusing req %#llx",
		       RT_PEND_MAX, (unsigned long long)r.req_id);
	if (r.version != SPRY_DESC_VERSION || r.chain != rt->chain ||
	    (r.flags & ~RT_KNOWN_FLAGS) || (r.flags & SPRY_DF_REPLY))
		return rt_handle(rt, &r) ? rt_send_descs(rt, &r, 1) : 0;
	if ((r.flags & SPRY_DF_CALL) && r.fn != rt->fn)
		return 0;	/* not sendable: see rt_handle() */
	if (r.status == SPRY_ST_OK)
		r.status = SPRY_ST_FN_ERROR;
	if (r.flags & SPRY_DF_CALL)
		r.flags = (r.flags & ~SPRY_DF_CALL) | SPRY_DF_REPLY;
	return rt_send_descs(rt, &r, 1);
}

/*
 * The one wait for answers on the data socket, shared by a call
 * (rt_wait_reply()), a fan-out (spry_req_fanout()) and the mailboxes
 * (rt_mail_pump()): read what comes until @done(@arg) or @deadline
 * (CLOCK_MONOTONIC ms), each descriptor offered to @take(rt, d, @arg) first
 * (true: it is what the waiter waits for, taken) and the others kept
 * (rt_keep(): mails and their answers handled at once, the rest run after
 * the handler).  @once: return after one poll and what it read (the
 * mailboxes' pump, whose caller checks its condition between reads; a
 * @deadline already past still polls once).  @take and @done may be NULL.
 * 0 when done (with @once: after the read, or nothing by the deadline),
 * -ETIMEDOUT at the deadline, -ECONNRESET at EOF, -errno.
 */
static int rt_wait_rx(struct rt *rt, int64_t deadline, bool once,
		      bool (*take)(struct rt *, const struct spry_desc *, void *),
		      bool (*done)(void *), void *arg)
{
	uint8_t buf[RT_CALL_RX * sizeof(struct spry_desc)];
	struct pollfd pfd = { .fd = rt->tcp, .events = POLLIN };
	const struct spry_desc *d;
	int64_t left;
	int nd, i, ret;

	for (;;) {
		if (done && done(arg))
			return 0;
		left = deadline - mono_ms();
		if (left <= 0) {
			if (!once)
				return -ETIMEDOUT;
			left = 0;
		}
		ret = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret <= 0) {
			if (once)
				return 0;
			continue;
		}
		nd = rt_recv_descs(rt, buf, RT_CALL_RX, NULL, MSG_DONTWAIT);
		if (nd == -EAGAIN) {
			if (once)
				return 0;
			continue;
		}
		if (nd < 0)
			return nd;
		for (i = 0; i < nd; i++) {
			d = (const struct spry_desc *)(buf + (size_t)i * RT_DESC);
			if (take && take(rt, d, arg))
				continue;
			ret = rt_keep(rt, d);
			if (ret)
				return ret;
		}
		if (once)
			return 0;
	}
}

/* A call waiting for its REPLY (rt_wait_reply()). */
struct rt_call_wait {
	const struct spry_desc	*call;
	struct spry_desc	*reply;
	bool			found;
};

static bool rt_call_take(struct rt *rt, const struct spry_desc *d, void *arg)
{
	struct rt_call_wait *w = arg;

	(void)rt;
	/* not a fan-out branch's late answer to the same fn */
	if (w->found || d->req_id != w->call->req_id ||
	    (d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_FAN)) != SPRY_DF_REPLY ||
	    d->fn != w->call->fn)
		return false;
	*w->reply = *d;
	w->found = true;
	return true;
}

static bool rt_call_done(void *arg)
{
	return ((struct rt_call_wait *)arg)->found;
}

/* Wait for the REPLY to @call; other descriptors are kept.  0 or -errno. */
static int rt_wait_reply(struct rt *rt, const struct spry_desc *call,
			 unsigned int timeout_ms, struct spry_desc *reply)
{
	struct rt_call_wait w = { .call = call, .reply = reply };

	return rt_wait_rx(rt, mono_ms() + timeout_ms, false, rt_call_take, rt_call_done, &w);
}

static const struct spry_ctl_fn_entry *rt_fn_find(const struct rt *rt, const char *name)
{
	uint32_t i;

	for (i = 0; i < rt->n_fns; i++)
		if (!strncmp(rt->fns[i].name, name, SPRY_NAME_LEN))
			return &rt->fns[i];
	return NULL;
}

SPRY_API int spry_req_call_key(struct spry_req *req, const char *fn, uint64_t key,
			       const void *in, size_t in_len, void *out,
			       size_t out_cap, size_t *out_len,
			       unsigned int timeout_ms)
{
	const struct spry_ctl_fn_entry *callee;
	struct spry_desc call, reply = {};
	struct spry_buf b;
	const uint8_t *rp;
	struct rt *rt;
	uint8_t *p;
	int ret, err;

	if (!req || !req->rt || !fn || (!in && in_len) || (!out && out_cap))
		return -EINVAL;
	rt = req->rt;
	/* One level of calls (docs/DESIGN.md): a callee does not call on. */
	if (req->desc->flags & SPRY_DF_CALL)
		return -EPERM;
	callee = rt_fn_find(rt, fn);
	if (!callee)
		return -ENOENT;
	if (in_len > UINT32_MAX)
		return -EMSGSIZE;

	ret = spry_pool_alloc(rt->pool, in_len ? (uint32_t)in_len : 1,
			      req->desc->req_id, &b);
	if (ret)
		return ret;
	p = spry_pool_ptr(rt->pool, b.off, b.cap);
	if (!p || b.cap < in_len) {
		spry_pool_free(rt->pool, b.off, b.gen);
		return -EFAULT;
	}
	if (in_len)
		memcpy(p, in, in_len);

	call = *req->desc;
	call.flags = SPRY_DF_CALL | (key ? SPRY_DF_STICKY : 0);
	call.key = key;
	call.fn = callee->id;
	call.status = SPRY_ST_OK;
	call.off = b.off;
	call.cap = b.cap;
	call.gen = b.gen;
	call.len = (uint32_t)in_len;
	call.meta_len = 0;

	/* What earlier requests of the batch produced goes on first. */
	ret = rt_flush(rt);
	ret = ret ?: rt_send_descs(rt, &call, 1);
	if (ret) {
		spry_pool_free(rt->pool, b.off, b.gen);
		return ret;
	}
	rt->n_calls++;
	ret = rt_wait_reply(rt, &call, timeout_ms, &reply);
	if (ret)
		return ret;	/* the call buffer is the callee's now: a late
				 * reply frees it (rt_late_reply) */

	/* The reply names the buffer to free: ours, or the callee's bigger one. */
	rp = NULL;
	if (reply.version == SPRY_DESC_VERSION && reply.chain == rt->chain &&
	    reply.meta_len <= reply.cap && reply.len <= reply.cap - reply.meta_len)
		rp = spry_pool_ptr(rt->pool, reply.off, reply.cap);
	if (!rp) {
		rt_log(rt, "call to %s: malformed reply (off %#llx len %u meta %u cap %u)",
		       fn, (unsigned long long)reply.off, reply.len, reply.meta_len,
		       reply.cap);
		return -EBADMSG;
	}
	if (reply.status != SPRY_ST_OK)
		ret = -EREMOTEIO;
	else if (reply.len > out_cap)
		ret = -EMSGSIZE;
	if (!ret) {
		if (reply.len)
			memcpy(out, rp + reply.meta_len, reply.len);
		if (out_len)
			*out_len = reply.len;
	}
	err = spry_pool_free(rt->pool, reply.off, reply.gen);
	if (err && !rt->opts->quiet)
		rt_log(rt, "call to %s: freeing the reply's buffer: %s", fn, strerror(-err));
	if (reply.off != call.off) {
		/* replaced by the callee, which normally freed it already */
		err = spry_pool_free(rt->pool, call.off, call.gen);
		if (err && err != -ESTALE)
			rt_log(rt, "call to %s: freeing the call buffer: %s", fn,
			       strerror(-err));
	}
	return ret;
}

SPRY_API int spry_req_call(struct spry_req *req, const char *fn, const void *in,
			   size_t in_len, void *out, size_t out_cap, size_t *out_len,
			   unsigned int timeout_ms)
{
	return spry_req_call_key(req, fn, 0, in, in_len, out, out_cap, out_len,
				 timeout_ms);
}

/* The control connection is readable: EOF means spryd went away. */
static int rt_ctl(struct rt *rt, uint32_t events)
{
	struct spry_ctl_hdr hdr;
	char body[64];
	int ret;

	if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
		rt_log(rt, "spryd closed the control connection");
		return -ECONNRESET;
	}
	ret = spry_ctl_recv(rt->ctl, body, sizeof(body), &hdr, NULL);
	if (ret == -ENOTCONN) {
		rt_log(rt, "spryd closed the control connection");
		return -ECONNRESET;
	}
	if (ret == -EAGAIN || ret == -EWOULDBLOCK)
		return 0;
	if (ret < 0 && ret != -EPROTO && ret != -EMSGSIZE)
		return ret;
	rt_log(rt, "ignoring an unexpected control message (type %u, %d)",
	       ret >= 0 ? hdr.type : 0, ret);
	return 0;
}

static int ep_add(int ep, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int rt_loop(struct rt *rt)
{
	struct epoll_event evs[4];
	int n, i, ret;
	bool stop = false;

	while (!stop) {
		n = epoll_wait(rt->ep, evs, 4, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* The data first: a signal finishes the batch in hand. */
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 != EV_TCP)
				continue;
			ret = rt_rx(rt);
			if (ret)
				return ret;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 == EV_CTL) {
				ret = rt_ctl(rt, evs[i].events);
				if (ret)
					return ret;
			} else if (evs[i].data.u64 == EV_SIG) {
				struct signalfd_siginfo si;

				if (read(rt->sig, &si, sizeof(si)) == sizeof(si)) {
					rt_log(rt, "%s: leaving", strsignal(si.ssi_signo));
					stop = true;
				}
			}
		}
	}
	return 0;
}

/*
 * Losing spryd (it stopped or was restarted) is not fatal: the data socket
 * or the control connection reports EOF/reset, and the instance registers
 * again with the spryd that comes next.  A quarantine (EACCES) is.
 */
static bool rt_lost(int err)
{
	return err == -ECONNRESET || err == -EPIPE || err == -ENOTCONN ||
	       err == -ECONNABORTED || err == -ETIMEDOUT;
}

/* Sleep in recv() on the data socket; handle each batch as it comes. */
static int rt_loop_block(struct rt *rt)
{
	int nd, ret;

	for (;;) {
		nd = rt_recv_descs(rt, rt->rx, rt->batch, NULL, 0);
		if (rt_sig_stop) {
			rt_log(rt, "%s: leaving", strsignal(rt_sig_stop));
			return 0;
		}
		/* a sockmap socket's blocking recv() may wake with nothing */
		if (nd == -EAGAIN || nd == -EINTR)
			continue;
		if (nd < 0)
			return nd;
		nd = rt_batch_gather(rt, nd);
		ret = rt_run_batch(rt, nd);
		if (ret)
			return ret;
	}
}

/* The mode asked for in SPRY_FN_WAIT: "block" (default) or "epoll". */
static bool rt_wait_block(const struct rt *rt)
{
	const char *w = getenv("SPRY_FN_WAIT");

	if (!w || !*w || !strcmp(w, "block"))
		return true;
	if (strcmp(w, "epoll"))
		rt_log(rt, "SPRY_FN_WAIT=%s: neither block nor epoll; waiting in epoll", w);
	return false;
}

/* One session, waiting in epoll on the data socket, spryd and signals. */
static int rt_session_epoll(struct rt *rt)
{
	int ret;

	rt->ep = epoll_create1(EPOLL_CLOEXEC);
	if (rt->ep < 0)
		return -errno;
	ret = ep_add(rt->ep, rt->tcp, EPOLLIN | EPOLLRDHUP, EV_TCP);
	ret = ret ?: ep_add(rt->ep, rt->ctl, EPOLLIN | EPOLLRDHUP, EV_CTL);
	ret = ret ?: ep_add(rt->ep, rt->sig, EPOLLIN, EV_SIG);
	return ret ?: rt_loop(rt);
}

/*
 * One session in a blocking recv(): the signals go to rt_on_signal() for
 * its length (one pending from registration arrives at the unblocking) and
 * back to the signalfd for re-registration.  A signal ends the session
 * with 0, whatever it interrupted (a call's wait sees the EOF it made).
 */
static int rt_session_block(struct rt *rt, const sigset_t *sigs)
{
	int ret;

	rt_sig_fd = rt->tcp;
	ret = -pthread_sigmask(SIG_UNBLOCK, sigs, NULL);
	ret = ret ?: rt_loop_block(rt);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	rt_sig_fd = -1;
	return rt_sig_stop && (!ret || rt_lost(ret)) ? 0 : ret;
}

/*
 * Forget the registration: the sockets (the data socket leaves the
 * sockhash by closing), the pool mapping (nothing of it is in hand: no
 * handler runs here) and the descriptors read but not handled (their
 * requests belonged to the spryd that is gone; it fails them).
 */
static void rt_disconnect(struct rt *rt)
{
	rt_mail_stop(rt->tcp);
	if (rt->ep >= 0)
		close(rt->ep);
	if (rt->tcp >= 0)
		close(rt->tcp);
	if (rt->ctl >= 0)
		close(rt->ctl);
	rt->ep = rt->tcp = rt->ctl = -1;
	if (rt->pool)
		spry_pool_close(rt->pool);
	rt->pool = NULL;
	rt->registered = false;
	free(rt->fns);
	rt->fns = NULL;
	rt->n_fns = 0;
	rt->part_have = 0;
	rt->tx_n = 0;
	rt->pend_head = 0;
	rt->pend_n = 0;
}

#define RT_BACKOFF_MIN_MS	50
#define RT_BACKOFF_MAX_MS	1000

/*
 * Register again, waiting 50 ms before the first attempt and doubling up
 * to 1 s between attempts, until it works (0) or SIGTERM/SIGINT arrives
 * (1).  Forever while spryd is away (a supervisor restarting spryd need
 * not restart its functions), but not when spryd answers that the chain
 * or the function does not exist (it was deleted): -EIDRM at once, as
 * registering again would never work.
 */
static int rt_reregister(struct rt *rt)
{
	struct pollfd pfd = { .fd = rt->sig, .events = POLLIN };
	struct signalfd_siginfo si;
	unsigned int wait_ms = RT_BACKOFF_MIN_MS, attempt = 0;
	int ret;

	for (;;) {
		ret = poll(&pfd, 1, (int)wait_ms);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret > 0 && read(rt->sig, &si, sizeof(si)) == sizeof(si)) {
			rt_log(rt, "%s while re-registering: leaving", strsignal(si.ssi_signo));
			return 1;
		}
		if (ret)
			continue;
		attempt++;
		ret = rt_register(rt);
		if (!ret) {
			rt_log(rt, "re-registered after %u attempt%s", attempt,
			       attempt == 1 ? "" : "s");
			return 0;
		}
		rt_disconnect(rt);
		if (ret == -ENOMEM)
			return ret;
		if (ret == -EIDRM) {
			rt_log(rt, "chain %s no longer exists (or has no function %s); giving up",
			       rt->opts->chain, rt->opts->fn);
			return ret;
		}
		wait_ms = wait_ms * 2 > RT_BACKOFF_MAX_MS ? RT_BACKOFF_MAX_MS : wait_ms * 2;
		if (attempt <= 5 || attempt % 60 == 0)
			rt_log(rt, "re-registration attempt %u failed: %s; next in %u ms",
			       attempt, strerror(-ret), wait_ms);
	}
}

/* ------------------------------------------------------------ templates */

/*
 * A template (fn-runtime/proto.h, docs/ELASTIC.md "Cold start") pays once
 * for what every instance of the function would pay: exec and dynamic
 * linking, options, buffers, the signalfd, the chain's pool mapped.  Each
 * SPRY_TMPL_FORK clones an instance that only registers.
 */

/* TEMPLATE -> TEMPLATE_ACK: the chain's pool, its functions, the port. */
static int rt_tmpl_attach(struct rt *rt, uint16_t *port)
{
	struct spry_ctl_template_ack ack;
	struct spry_ctl_register reg = {};
	struct spry_ctl_hdr hdr;
	size_t body_size = sizeof(ack) +
			   (size_t)SPRY_MAX_FNS * sizeof(struct spry_ctl_fn_entry);
	uint8_t *body = NULL;
	int ret, pfd = -1;

	ret = rt_ctl_open(rt);
	if (ret)
		return ret;
	strcpy(reg.chain, rt->opts->chain);
	strcpy(reg.fn, rt->opts->fn);
	ret = spry_ctl_send(rt->ctl, SPRY_CTL_TEMPLATE, 0, &reg, sizeof(reg), -1);
	if (ret) {
		rt_log(rt, "TEMPLATE: %s", strerror(-ret));
		return ret;
	}
	body = malloc(body_size);
	if (!body)
		return -ENOMEM;
	ret = spry_ctl_recv(rt->ctl, body, body_size, &hdr, &pfd);
	if (ret < 0) {
		rt_log(rt, "waiting for TEMPLATE_ACK: %s", strerror(-ret));
		goto out;
	}
	if (hdr.type != SPRY_CTL_TEMPLATE_ACK) {
		rt_log(rt, "spryd answered TEMPLATE with message type %u (too old a spryd?)",
		       hdr.type);
		ret = -EPROTO;
		goto out;
	}
	if (hdr.status) {
		ret = hdr.status < 0 ? hdr.status : -EPROTO;
		rt_log(rt, "spryd refused the template: %s%s", strerror(-ret),
		       ret == -ENOENT ? " (unknown chain or function)" : "");
		if (ret == -ENOENT)
			ret = -EIDRM;
		goto out;
	}
	if (ret < (int)sizeof(ack) || pfd < 0 ||
	    rt_fn_table(rt, body + sizeof(ack), ret - sizeof(ack))) {
		rt_log(rt, "malformed TEMPLATE_ACK (%d bytes, pool fd %d)", ret, pfd);
		ret = -EPROTO;
		goto out;
	}
	memcpy(&ack, body, sizeof(ack));
	if (ack.abi != SPRY_ABI_VERSION || !ack.tcp_port) {
		rt_log(rt, "TEMPLATE_ACK: ABI %u (want %u), port %u", ack.abi,
		       SPRY_ABI_VERSION, ack.tcp_port);
		ret = -EPROTONOSUPPORT;
		goto out;
	}
	ret = rt_pool_take(rt, pfd);
	pfd = -1;
	if (ret) {
		rt_log(rt, "attaching the chain's pool: %s", strerror(-ret));
		goto out;
	}
	rt->chain = ack.chain;
	rt->fn = ack.fn;
	*port = ack.tcp_port;
out:
	if (pfd >= 0)
		close(pfd);
	free(body);
	return ret;
}

/*
 * A new instance in the clone: what it must not keep of the template (the
 * pair, the template's control connection, the function table: REG_ACK
 * brings the current one).
 */
static void rt_tmpl_child(struct rt *rt)
{
	/*
	 * clone() cleared the parent-death signal spryd gave the template (it
	 * must not outlive spryd): an instance does outlive it, as an exec'd
	 * one does, so that a restarted spryd adopts it.
	 */
	close(rt->tmpl);
	rt->tmpl = -1;
	close(rt->ctl);
	rt->ctl = -1;
	free(rt->fns);
	rt->fns = NULL;
	rt->n_fns = 0;
}

/*
 * A template and its spare are named "T:" + the function's name (comm:
 * ps, top, /proc/PID/stat), an instance has the name it was started with:
 * instances are told apart from the processes that make them.
 */
static char rt_tmpl_comm[16];

static void rt_tmpl_name(bool instance)
{
	char name[16];

	if (!rt_tmpl_comm[0])
		return;
	if (instance) {
		prctl(PR_SET_NAME, rt_tmpl_comm, 0, 0, 0);
		return;
	}
	name[0] = 'T';
	name[1] = ':';
	memcpy(name + 2, rt_tmpl_comm, sizeof(name) - 3);
	name[sizeof(name) - 1] = '\0';
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

/*
 * A cloud process cloned from its app's template (docs/PROCESS.md,
 * "Started from the template"): what spryd gives an exec'd process in its
 * environment, from the FORK's body (decoded: spry_tmpl_proc__decode()),
 * set before anything reads it (spry_process_id(), spry_fn_state(),
 * SPRY_APP_FNS: each reads the environment when asked).  0 or -errno.
 */
static int rt_tmpl_proc_env(struct rt *rt, const struct spry_tmpl_proc_dec *pd)
{
	char id[24], size[24];

	snprintf(id, sizeof(id), "%llu", (unsigned long long)pd->hdr.id);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)pd->hdr.state_size);
	if (setenv("SPRY_PROCESS_ID", id, 1) || setenv(SPRY_STATE_PATH_ENV, pd->path, 1) ||
	    setenv(SPRY_STATE_APP_ENV, pd->hdr.app, 1) ||
	    setenv(SPRY_STATE_SWAP_DIR_ENV, pd->swap, 1) ||
	    setenv(SPRY_STATE_SIZE_ENV, size, 1) || setenv("SPRY_APP_FNS", pd->fns, 1)) {
		int err = -errno;	/* before the log can change errno */

		rt_log(rt, "process %s: its environment: %s", id, strerror(-err));
		return err;
	}
	return 0;
}

/*
 * A spare: a clone made ahead of the next FORK, so that the clone, its
 * first copy-on-write faults and its control connection are off the cold
 * start's path.  It waits for one byte on @go (the template's FORK), then
 * registers: 0 registered, -errno, or 1 when it is not needed any more
 * (the template closed @go: it left; or SIGTERM).
 */
static int rt_tmpl_spare(struct rt *rt, int go, uint16_t port)
{
	struct pollfd pfd[2] = {
		{ .fd = go, .events = POLLIN },
		{ .fd = rt->sig, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	struct spry_tmpl_proc_dec pd;
	static char b[SPRY_TMPL_PROC_BODY_MAX];
	int ret;

	/* connected now: SO_PEERCRED names this process, nothing registers */
	ret = rt_ctl_open(rt);
	if (ret)
		goto out;
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (pfd[1].revents && read(rt->sig, &si, sizeof(si)) == sizeof(si)) {
			ret = 1;
			goto out;
		}
		if (!pfd[0].revents)
			continue;
		/* one byte: an instance; a FORK's body: a cloud process */
		ret = recv(go, b, sizeof(b), MSG_DONTWAIT);
		if (ret == 1)
			break;
		if (ret > 1) {
			if (spry_tmpl_proc__decode(b, (size_t)ret, &pd)) {
				rt_log(rt, "template spare: a malformed process body (%d bytes)", ret);
				ret = -EINVAL;
				goto out;
			}
			ret = rt_tmpl_proc_env(rt, &pd);
			if (ret)
				goto out;
			break;
		}
		if (ret < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		ret = 1;	/* EOF: the template left without using us */
		goto out;
	}
	close(go);
	rt_trace_ns[TR_START] = rt_trace_ns[TR_CONNECT] = 0;
	rt_trace_mark(TR_START);
	ret = rt_register_port(rt, port);
	rt_tmpl_name(true);	/* after: off the cold start's path */
	return ret;
out:
	close(go);
	return ret;
}

/*
 * clone3(CLONE_PARENT): the instance is the template's sibling, spryd's
 * child (waitpid, pidfd and SIGCHLD work as for an exec'd instance).
 * glibc's fork() cannot do that, so the child must repair what glibc's own
 * fork does: the thread's tid in glibc's thread descriptor (raise(),
 * abort(), pthread_kill use it) is written by CLONE_CHILD_SETTID at the
 * address the kernel holds as the thread's clear_child_tid (glibc sets it
 * with set_tid_address at start; PR_GET_TID_ADDRESS reads it back).  The
 * template is single-threaded, so no lock is held across the clone.
 * clone3 names its arguments: no per-architecture order as with clone.
 */
static pid_t rt_clone_parent(int *tidp)
{
	struct clone_args ca = {
		.flags = CLONE_PARENT | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID,
		.child_tid = (uint64_t)(uintptr_t)tidp,
		.exit_signal = 0,	/* CLONE_PARENT: the template's own */
	};

	/* Nothing buffered may be written twice (by both processes). */
	fflush(NULL);
	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

/* Quiet time after a FORK before the template clones its next spare. */
#define RT_SPARE_DELAY_NS	(20 * 1000000LL)

struct rt_tmpl {
	int		*tidp;
	uint16_t	port;
	pid_t		spare;		/* 0: none */
	int		spare_go;	/* the spare's wake-up (-1: none) */
};

/*
 * Clone a spare and tell spryd its pid (SPRY_TMPL_SPARE: spryd reaps it
 * if the template goes).  In the spare, it returns what rt_tmpl_spare()
 * does, with *@in_child set; in the template 0 (no spare: logged, FORK
 * then clones on demand).
 */
static int rt_tmpl_make_spare(struct rt *rt, struct rt_tmpl *tp, bool *in_child)
{
	struct spry_tmpl_forked fk = {};
	int go[2];
	pid_t pid;

	*in_child = false;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, go)) {
		rt_log(rt, "template: no spare: socketpair: %s", strerror(errno));
		return 0;
	}
	pid = rt_clone_parent(tp->tidp);
	if (pid == 0) {
		*in_child = true;
		close(go[1]);
		rt_tmpl_child(rt);
		return rt_tmpl_spare(rt, go[0], tp->port);
	}
	close(go[0]);
	if (pid < 0) {
		rt_log(rt, "template: no spare: clone3: %s", strerror(errno));
		close(go[1]);
		return 0;
	}
	tp->spare = pid;
	tp->spare_go = go[1];
	fk.pid = pid;
	fk.clone_ns = (uint64_t)mono_ns();
	spry_ctl_send(rt->tmpl, SPRY_TMPL_SPARE, 0, &fk, sizeof(fk), -1);
	return 0;
}

/*
 * One instance for FORK: the spare woken (if it still waits), else a
 * clone now.  In a new clone it returns its registration (0/-errno) with
 * *@in_child set; in the template the pid or -errno.
 */
static pid_t rt_tmpl_instance(struct rt *rt, struct rt_tmpl *tp, const void *body,
				size_t len, const struct spry_tmpl_proc_dec *pd, bool *in_child)
{
	pid_t pid;
	int ret;

	*in_child = false;
	if (tp->spare) {
		pid = tp->spare;
		tp->spare = 0;
		/* a cloud process's body goes on to the spare as it is */
		if (!len)
			body = "g", len = 1;
		if (send(tp->spare_go, body, len, MSG_NOSIGNAL) == (ssize_t)len) {
			close(tp->spare_go);
			tp->spare_go = -1;
			return pid;
		}
		/* it died: its exit is spryd's to reap, a fresh clone serves */
		rt_log(rt, "template: spare %d gone (%s): cloning", (int)pid, strerror(errno));
		close(tp->spare_go);
		tp->spare_go = -1;
	}
	pid = rt_clone_parent(tp->tidp);
	if (pid == 0) {
		*in_child = true;
		rt_tmpl_child(rt);
		rt_trace_ns[TR_START] = rt_trace_ns[TR_CONNECT] = 0;
		rt_trace_mark(TR_START);
		if (pd) {
			ret = rt_tmpl_proc_env(rt, pd);
			if (ret)
				return ret;
		}
		ret = rt_register_port(rt, tp->port);
		rt_tmpl_name(true);	/* after: off the cold start's path */
		return ret;
	}
	return pid > 0 ? pid : -errno;
}

/*
 * Be a template: attach, report READY (or why not) on the pair, keep a
 * spare, then answer FORK until spryd's end closes or SIGTERM/SIGINT (1).
 * In a clone it returns 0 with the instance registered, 1 for a spare that
 * was not needed, or -errno.
 */
static int rt_template(struct rt *rt)
{
	struct pollfd pfd[3] = {
		{ .fd = rt->tmpl, .events = POLLIN },
		{ .fd = rt->sig, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};
	struct rt_tmpl tp = { .spare_go = -1 };
	struct spry_tmpl_ready ready = { .caps = SPRY_TMPL_CAN_PROC };
	static char body[SPRY_TMPL_PROC_BODY_MAX];
	struct spry_tmpl_proc_dec pd;
	struct spry_tmpl_forked fk;
	struct signalfd_siginfo si;
	struct spry_ctl_hdr hdr;
	uint64_t n_forks = 0;
	int64_t spare_due = 0;	/* when to clone the next spare (0: no need) */
	bool in_child;
	char junk[64];
	pid_t pid;
	int ret, wait_ms;

	if (!prctl(PR_GET_NAME, rt_tmpl_comm, 0, 0, 0))
		rt_tmpl_name(false);
	if (prctl(PR_GET_TID_ADDRESS, &tp.tidp, 0, 0, 0) || !tp.tidp) {
		ret = errno == EINVAL || !tp.tidp ? -ENOSYS : -errno;
		rt_log(rt, "PR_GET_TID_ADDRESS: %s: cannot clone instances safely (kernel without CONFIG_CHECKPOINT_RESTORE?)",
		       strerror(-ret));
	} else {
		ret = rt_tmpl_attach(rt, &tp.port);
	}
	if (spry_ctl_send(rt->tmpl, SPRY_TMPL_READY, ret, &ready, sizeof(ready), -1) && !ret)
		ret = -EPIPE;	/* spryd gave up on us already */
	if (ret)
		return ret;
	rt_log(rt, "template ready: chain %u fn %u, pid %d, instances connect to port %u",
	       rt->chain, rt->fn, (int)getpid(), tp.port);
	pfd[2].fd = rt->ctl;

	ret = rt_tmpl_make_spare(rt, &tp, &in_child);
	if (in_child)
		return ret;
	for (;;) {
		wait_ms = -1;
		if (spare_due) {
			int64_t left = spare_due - mono_ns();

			wait_ms = left <= 0 ? 0 : (int)(left / 1000000) + 1;
		}
		ret = poll(pfd, 3, wait_ms);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (ret == 0 && spare_due && mono_ns() >= spare_due) {
			spare_due = 0;
			ret = rt_tmpl_make_spare(rt, &tp, &in_child);
			if (in_child)
				return ret;
			continue;
		}
		if (pfd[1].revents && read(rt->sig, &si, sizeof(si)) == sizeof(si)) {
			rt_log(rt, "%s: template leaving after %llu instances",
			       strsignal(si.ssi_signo), (unsigned long long)n_forks);
			ret = 1;
			break;
		}
		if (pfd[2].revents) {
			/* spryd says nothing to a template: this is its end */
			ret = recv(rt->ctl, junk, sizeof(junk), MSG_DONTWAIT);
			if (ret <= 0 && !(ret < 0 && (errno == EAGAIN || errno == EINTR))) {
				rt_log(rt, "spryd closed the control connection: template leaving");
				ret = 1;
				break;
			}
		}
		if (!pfd[0].revents)
			continue;
		ret = spry_ctl_recv(rt->tmpl, body, sizeof(body), &hdr, NULL);
		if (ret == -EAGAIN || ret == -EINTR)
			continue;
		if (ret == -ENOTCONN) {
			rt_log(rt, "spryd closed the template's pair: leaving after %llu instances",
			       (unsigned long long)n_forks);
			ret = 1;
			break;
		}
		if (ret < 0 || hdr.type != SPRY_TMPL_FORK) {
			rt_log(rt, "template: ignoring a malformed command (%s, type %u)",
			       ret < 0 ? strerror(-ret) : "ok", ret < 0 ? 0 : hdr.type);
			continue;
		}
		/* a body: a cloud process of this app (docs/PROCESS.md) */
		if (ret > 0 && (spry_tmpl_proc__decode(body, (size_t)ret, &pd) ||
				strcmp(pd.hdr.app, rt->opts->chain))) {
			rt_log(rt, "template: refusing a FORK with a malformed or another app's process body (%d bytes)",
			       ret);
			memset(&fk, 0, sizeof(fk));
			if (spry_ctl_send(rt->tmpl, SPRY_TMPL_FORKED, -EINVAL, &fk, sizeof(fk),
					  -1) == -EPIPE) {
				ret = 1;
				break;
			}
			continue;
		}
		pid = rt_tmpl_instance(rt, &tp, body, ret > 0 ? (size_t)ret : 0,
				       ret > 0 ? &pd : NULL, &in_child);
		if (in_child)
			return pid;
		memset(&fk, 0, sizeof(fk));
		fk.clone_ns = (uint64_t)mono_ns();
		fk.pid = pid > 0 ? pid : 0;
		ret = pid > 0 ? 0 : pid;
		if (ret)
			rt_log(rt, "clone3: %s", strerror(-ret));
		else
			n_forks++;
		if (spry_ctl_send(rt->tmpl, SPRY_TMPL_FORKED, ret, &fk, sizeof(fk), -1) == -EPIPE) {
			rt_log(rt, "spryd closed the template's pair: leaving");
			ret = 1;
			break;
		}
		/*
		 * The next spare once things are quiet: cloning it now would
		 * take a CPU and the template's pages (copy-on-write) from the
		 * instance registering, and in a burst every FORK clones anyway.
		 */
		if (!tp.spare)
			spare_due = mono_ns() + RT_SPARE_DELAY_NS;
	}
	/* the spare sees EOF and leaves (spryd reaps it) */
	if (tp.spare_go >= 0)
		close(tp.spare_go);
	return ret;
}

/* The template's pair from the environment (removed from it: an
 * instance's own children are not templates).  fd, 0 without, -errno. */
static int rt_tmpl_env(void)
{
	const char *v = getenv(SPRY_TEMPLATE_ENV);
	uint32_t fd;

	if (!v)
		return -1;
	if (spry_num__parse_u32(v, 3, INT_MAX, &fd) || fcntl((int)fd, F_GETFD) < 0) {
		fprintf(stderr, "spry-fn: %s='%s': not an open file descriptor\n",
			SPRY_TEMPLATE_ENV, v);
		return -EBADF;
	}
	unsetenv(SPRY_TEMPLATE_ENV);
	/* not inherited by what an instance may exec */
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return (int)fd;
}

static int rt_batch_one(struct spry_req *req, void *user);

/* spry_fn_run(), or spry_fn_run_batch() with @bopts. */
static int rt_run(const struct spry_fn_opts *opts, spry_handler_t handler,
		  const struct spry_batch_opts *bopts, spry_batch_handler_t bhandler,
		  void *user)
{
	struct rt rt = {
		.opts = opts, .handler = handler, .user = user,
		.ctl = -1, .tcp = -1, .ep = -1, .sig = -1, .tmpl = -1,
	};
	struct sigaction old_term, old_int;
	bool have_old_sa = false;
	sigset_t mask, old;
	int ret;

	if (!opts || (!handler && !bhandler) || !opts->chain || !opts->fn ||
	    !*opts->chain || !*opts->fn)
		return -EINVAL;
	if (strlen(opts->chain) >= SPRY_NAME_LEN || strlen(opts->fn) >= SPRY_NAME_LEN)
		return -ENAMETOOLONG;
	rt.batch = opts->batch ? opts->batch : RT_BATCH_DEFAULT;
	if (rt.batch > RT_BATCH_MAX)
		return -EINVAL;
	if (bhandler) {
		if (!bopts || !bopts->max || bopts->max > SPRY_BATCH_MAX ||
		    bopts->wait_us > SPRY_BATCH_WAIT_MAX_US)
			return -EINVAL;
		rt.handler = rt_batch_one;	/* calls: a batch of one */
		rt.bhandler = bhandler;
		rt.bmax = bopts->max;
		rt.bwait_us = bopts->wait_us;
		if (rt.batch < rt.bmax)
			rt.batch = rt.bmax;
		rt.bdesc = calloc(rt.bmax, sizeof(*rt.bdesc));
		rt.breq = calloc(rt.bmax, sizeof(*rt.breq));
		rt.bptr = calloc(rt.bmax, sizeof(*rt.bptr));
		rt.bret = calloc(rt.bmax, sizeof(*rt.bret));
		if (!rt.bdesc || !rt.breq || !rt.bptr || !rt.bret) {
			ret = -ENOMEM;
			goto out_batch;
		}
	}
	rt_trace_init();
	rt.tmpl = rt_tmpl_env();
	if (rt.tmpl < -1) {
		ret = rt.tmpl;
		goto out_batch;
	}
	if (rt.tmpl < 0)
		rt_trace_mark(TR_START);

	/* Before registering, so a SIGTERM meanwhile is not lost. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	ret = -pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (ret)
		goto out_batch;
	rt.sig = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (rt.sig < 0) {
		ret = -errno;
		goto out_mask;
	}

	rt.have_home = !sched_getaffinity(0, sizeof(rt.home), &rt.home);
	rt.rx = aligned_alloc(RT_DESC, (size_t)rt.batch * RT_DESC);
	rt.tx = aligned_alloc(RT_DESC, (size_t)rt.batch * RT_DESC);
	rt.pend = calloc(RT_PEND_MAX, RT_DESC);
	if (!rt.rx || !rt.tx || !rt.pend) {
		ret = -ENOMEM;
		goto out;
	}
	rt.block = rt_wait_block(&rt) &&
		   __atomic_exchange_n(&rt_block_owner, 1, __ATOMIC_ACQ_REL) == 0;
	if (rt.block) {
		struct sigaction sa = { .sa_handler = rt_on_signal, .sa_flags = SA_RESTART };

		rt_sig_stop = 0;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGTERM, &sa, &old_term) || sigaction(SIGINT, &sa, &old_int)) {
			ret = -errno;
			goto out;
		}
		have_old_sa = true;
	}

	if (rt.tmpl >= 0) {
		ret = rt_template(&rt);
		if (ret > 0) {
			ret = 0;	/* the template's end, not an instance's */
			goto out;
		}
	} else {
		ret = rt_register(&rt);
	}
	if (ret)
		goto out;

session:
	ret = rt.block ? rt_session_block(&rt, &mask) : rt_session_epoll(&rt);
	if (rt_lost(ret)) {
		rt_log(&rt, "lost spryd (%s): re-registering", strerror(-ret));
		rt_disconnect(&rt);
		ret = rt_reregister(&rt);
		if (!ret)
			goto session;
		if (ret > 0)
			ret = 0;
	}
	rt_log(&rt, "handled %llu requests (%llu failed, %llu refused, %llu dropped), %llu calls (%llu late replies, %llu refused while waiting)%s%s",
	       (unsigned long long)(rt.n_ok + rt.n_err), (unsigned long long)rt.n_err,
	       (unsigned long long)rt.n_bad, (unsigned long long)rt.n_dropped,
	       (unsigned long long)rt.n_calls, (unsigned long long)rt.n_late,
	       (unsigned long long)rt.n_refused,
	       ret ? ": " : "", ret ? strerror(-ret) : "");
	if (rt.bhandler)
		rt_log(&rt, "%llu batches of %llu requests", (unsigned long long)rt.n_batches,
		       (unsigned long long)rt.n_batched);
out:
	rt_mail_stop(rt.tcp);
	/* The TCP socket first (it leaves the sockhash), then the control
	 * connection, whose close deregisters the instance. */
	if (rt.ep >= 0)
		close(rt.ep);
	if (rt.tcp >= 0)
		close(rt.tcp);
	if (rt.ctl >= 0)
		close(rt.ctl);
	if (rt.pool)
		spry_pool_close(rt.pool);
	if (rt.tmpl >= 0)
		close(rt.tmpl);
	free(rt.fns);
	free(rt.pend);
	free(rt.tx);
	free(rt.rx);
	close(rt.sig);
	if (have_old_sa) {
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGINT, &old_int, NULL);
	}
	if (rt.block)
		__atomic_store_n(&rt_block_owner, 0, __ATOMIC_RELEASE);
out_mask:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
out_batch:
	free(rt.bdesc);
	free(rt.breq);
	free(rt.bptr);
	free(rt.bret);
	return ret;
}

SPRY_API int spry_fn_run(const struct spry_fn_opts *opts, spry_handler_t handler,
			 void *user)
{
	if (!handler)
		return -EINVAL;
	return rt_run(opts, handler, NULL, NULL, user);
}

SPRY_API int spry_fn_run_batch(const struct spry_fn_opts *opts,
			       const struct spry_batch_opts *bopts,
			       spry_batch_handler_t handler, void *user)
{
	if (!handler)
		return -EINVAL;
	return rt_run(opts, NULL, bopts, handler, user);
}

/* ------------------------------------------------------------ workflows */

/*
 * Workflows (docs/WORKFLOWS.md): conditional next (spry_req_next), fan-out
 * and fan-in (spry_req_fanout), input batching (spry_fn_run_batch).
 */

/* What a handler's result makes of the outgoing descriptor @d. */
static void rt_finish(struct rt *rt, struct spry_desc *d, struct spry_req *req,
		      int ret, bool call)
{
	/* resize keeps desc and req consistent; set_len keeps len <= room */
	d->len = req->len;
	if (ret) {
		d->status = ret == -EMSGSIZE ? SPRY_ST_TOO_BIG : SPRY_ST_FN_ERROR;
		rt->n_err++;
	} else {
		rt->n_ok++;
		/* The router checks the pick (SPRY_AK_NEXT) and clears the flag. */
		if (req->next_fn && !call) {
			d->flags |= SPRY_DF_NEXT;
			d->fn = req->next_fn;
		}
	}
	if (call)
		d->flags = (d->flags & ~SPRY_DF_CALL) | SPRY_DF_REPLY;
}

static bool rt_is_app(const struct rt *rt);

/*
 * An app's handler number of @fn: 1 + its index in SPRY_APP_FNS (set by
 * spryd: the app's fns in declared order, as the router's SPRY_AK_APP_NEXT
 * authorizations number them); 0 when it is none of them.
 */
static uint16_t rt_app_handler(const char *fn)
{
	const char *s = getenv("SPRY_APP_FNS"), *end;
	size_t len = strnlen(fn, SPRY_NAME_LEN);
	uint16_t i;

	if (!s || !len || len >= SPRY_NAME_LEN)
		return 0;
	for (i = 1; *s && i < 0x80; i++) {
		end = strchr(s, ',');
		if (!end)
			end = s + strlen(s);
		if ((size_t)(end - s) == len && !memcmp(s, fn, len))
			return i;
		if (!*end)
			break;
		s = end + 1;
	}
	return 0;
}

SPRY_API int spry_req_next(struct spry_req *req, const char *fn)
{
	const struct spry_ctl_fn_entry *e;
	uint16_t h;
	int err;

	if (!req || !req->rt)
		return -EINVAL;
	if (!fn) {
		req->next_fn = 0;
		return 0;
	}
	/* A callee answers its caller; it has no next. */
	if (req->desc->flags & SPRY_DF_CALL)
		return -EPERM;
	/*
	 * In an app's process: another handler of this process.  The request
	 * goes back through the router, which checks the pick against the
	 * app's nexts and hands it back to this process, where "fn" names
	 * the handler to run (docs/WORKFLOWS.md).
	 */
	if (rt_is_app(req->rt)) {
		h = rt_app_handler(fn);
		if (!h)
			return -ENOENT;
		err = spry_req_set_meta(req, "fn", fn);
		if (err)
			return err;
		req->next_fn = h;
		return 0;
	}
	e = rt_fn_find(req->rt, fn);
	if (!e)
		return -ENOENT;
	req->next_fn = e->id;
	return 0;
}

/* A CALL to a batch function: a batch of one. */
static int rt_batch_one(struct spry_req *req, void *user)
{
	struct spry_req *one = req;
	int ret = 0;

	req->rt->bhandler(&one, &ret, 1, user);
	return ret;
}

/* Run the @n requests gathered in rt->breq/bdesc as one batch; queue their answers. */
static int rt_batch_flush(struct rt *rt, size_t n)
{
	size_t i;
	int ret;

	if (!n)
		return 0;
	for (i = 0; i < n; i++) {
		rt->bptr[i] = &rt->breq[i];
		rt->bret[i] = 0;
	}
	rt->bhandler(rt->bptr, rt->bret, n, rt->user);
	rt->n_batches++;
	rt->n_batched += n;
	for (i = 0; i < n; i++) {
		rt_finish(rt, &rt->bdesc[i], &rt->breq[i], rt->bret[i], false);
		/* the handler may have flushed rt->tx (a call) */
		rt->tx[rt->tx_n++] = rt->bdesc[i];
		if (rt->tx_n == rt->batch) {
			ret = rt_flush(rt);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * rt_run_batch() for a batch handler: the plain requests among the @nd
 * descriptors in rt->rx go to the handler together, bmax at most per call;
 * everything else (calls, replies, refusals) one by one as usual.
 */
static int rt_run_grouped(struct rt *rt, int nd)
{
	const struct spry_desc *in;
	struct spry_desc *d;
	size_t n = 0;
	void *buf;
	int i, ret;

	for (i = 0; i < nd; i++) {
		in = (const struct spry_desc *)(rt->rx + (size_t)i * RT_DESC);
		d = &rt->bdesc[n];
		*d = *in;
		if ((d->flags & SPRY_DF_CALL) ||
		    spry_desc_check(d, rt->chain, rt->fn, rt->pool, &buf) != SPRY_DESC_RUN) {
			ret = rt_run_one(rt, in);
			if (ret)
				return ret;
			continue;
		}
		rt->breq[n] = (struct spry_req){
			.pool = rt->pool,
			.desc = d,
			.buf = buf,
			.len = d->len,
			.quiet = rt->opts->quiet,
			.rt = rt,
		};
		if (++n == rt->bmax) {
			ret = rt_batch_flush(rt, n);
			if (ret)
				return ret;
			n = 0;
		}
	}
	ret = rt_batch_flush(rt, n);
	return ret ?: rt_drain_pending(rt);
}

/*
 * A batch handler's wait: with @nd descriptors in rt->rx and fewer than
 * bmax, read what else arrives within bwait_us of now, until bmax.
 * Returns the new count (a receive error is left for the next read).
 */
static int rt_batch_gather(struct rt *rt, int nd)
{
	struct pollfd pfd = { .fd = rt->tcp, .events = POLLIN };
	int64_t deadline, left;
	struct timespec ts;
	int got, ret;

	if (!rt->bhandler || !rt->bwait_us || nd <= 0 || (unsigned int)nd >= rt->bmax)
		return nd;
	deadline = mono_us() + rt->bwait_us;
	while ((unsigned int)nd < rt->bmax && !rt_sig_stop) {
		left = deadline - mono_us();
		if (left <= 0)
			break;
		ts.tv_sec = left / 1000000;
		ts.tv_nsec = (left % 1000000) * 1000;
		ret = ppoll(&pfd, 1, &ts, NULL);
		if (ret < 0 && errno != EINTR)
			break;
		if (ret <= 0)
			continue;
		got = rt_recv_descs(rt, rt->rx + (size_t)nd * RT_DESC, rt->bmax - nd,
				    NULL, MSG_DONTWAIT);
		if (got == -EAGAIN)
			continue;
		if (got < 0)
			break;
		nd += got;
	}
	return nd;
}

/*
 * An app's process (docs/PROCESS.md): its chain's one function is
 * SPRY_APP_FN ("proc", lib/app.h), this one; its handlers are named in
 * the metadata "fn".
 */
static bool rt_is_app(const struct rt *rt)
{
	return rt->n_fns == 1 && rt->fns[0].id == rt->fn &&
	       !strncmp(rt->fns[0].name, "proc", SPRY_NAME_LEN);
}

/* errno of a branch's answer status. */
static int rt_fan_status(uint8_t st)
{
	switch (st) {
	case SPRY_ST_OK:
		return 0;
	case SPRY_ST_FAN_LIMIT:
		return -EBUSY;
	case SPRY_ST_NO_INSTANCE:
		return -EHOSTUNREACH;
	case SPRY_ST_NO_PROCESS:
		return -ESRCH;
	case SPRY_ST_TOO_BIG:
		return -EMSGSIZE;
	case SPRY_ST_CALLEE_GONE:
		return -ECONNRESET;
	default:
		return -EREMOTEIO;
	}
}

/* Take branch @b's answer @reply to @call: copy it out, free the buffers. */
static void rt_fan_take(struct rt *rt, struct spry_fanout *b, const struct spry_desc *call,
			const struct spry_desc *reply)
{
	const uint8_t *rp = NULL;
	int err;

	/*
	 * spryd's answer for a callee that died holding the branch (the
	 * router checked it): no buffer; the call's is ours again.
	 */
	if (reply->status == SPRY_ST_CALLEE_GONE && !reply->cap) {
		b->err = rt_fan_status(reply->status);
		err = spry_pool_free(rt->pool, call->off, call->gen);
		if (err && err != -ESTALE)
			rt_log(rt, "fan-out to %s: freeing the call buffer: %s", b->fn,
			       strerror(-err));
		return;
	}
	if (reply->meta_len <= reply->cap && reply->len <= reply->cap - reply->meta_len)
		rp = spry_pool_ptr(rt->pool, reply->off, reply->cap);
	if (!rp) {
		rt_log(rt, "fan-out to %s: malformed answer (off %#llx len %u meta %u cap %u)",
		       b->fn, (unsigned long long)reply->off, reply->len, reply->meta_len,
		       reply->cap);
		b->err = -EBADMSG;
		return;
	}
	b->err = rt_fan_status(reply->status);
	if (!b->err && reply->len > b->out_cap)
		b->err = -EMSGSIZE;
	if (!b->err) {
		if (reply->len)
			memcpy(b->out, rp + reply->meta_len, reply->len);
		b->out_len = reply->len;
	}
	err = spry_pool_free(rt->pool, reply->off, reply->gen);
	if (err && !rt->opts->quiet)
		rt_log(rt, "fan-out to %s: freeing the answer's buffer: %s", b->fn,
		       strerror(-err));
	if (reply->off != call->off) {
		err = spry_pool_free(rt->pool, call->off, call->gen);
		if (err && err != -ESTALE)
			rt_log(rt, "fan-out to %s: freeing the call buffer: %s", b->fn,
			       strerror(-err));
	}
}

/* A fan-out waiting for its branches' answers (spry_req_fanout()). */
struct rt_fan_wait {
	struct spry_fanout	*br;
	const size_t		*idx;	/* sent[k] is branch br[idx[k]] */
	struct spry_desc	*sent;	/* t_start 0: answered */
	size_t			n_sent, left_n;
};

/* One of the branches' answers, matched by request id and tag: taken. */
static bool rt_fan_match(struct rt *rt, const struct spry_desc *d, void *arg)
{
	struct rt_fan_wait *w = arg;
	struct spry_desc *c;
	size_t k;

	for (k = 0; k < w->n_sent; k++) {
		c = &w->sent[k];
		if (c->t_start && d->req_id == c->req_id && d->t_start == c->t_start &&
		    d->chain == rt->chain && d->version == SPRY_DESC_VERSION &&
		    (d->flags & (SPRY_DF_CALL | SPRY_DF_REPLY | SPRY_DF_FAN)) ==
		    (SPRY_DF_REPLY | SPRY_DF_FAN))
			break;
	}
	if (k == w->n_sent)
		return false;
	rt_fan_take(rt, &w->br[w->idx[k]], c, d);
	c->t_start = 0;	/* answered */
	w->left_n--;
	return true;
}

static bool rt_fan_done(void *arg)
{
	return !((struct rt_fan_wait *)arg)->left_n;
}

SPRY_API int spry_req_fanout(struct spry_req *req, struct spry_fanout *br, size_t n,
			     unsigned int timeout_ms)
{
	struct spry_desc calls[SPRY_FAN_MAX], sent[SPRY_FAN_MAX];
	size_t idx[SPRY_FAN_MAX], n_sent = 0, i, k, meta_len;
	const struct spry_ctl_fn_entry *callee;
	struct rt_fan_wait fw;
	struct spry_buf b;
	struct rt *rt;
	int ok = 0, ret, fail = -ETIMEDOUT;
	uint8_t *p;

	if (!req || !req->rt || (!br && n))
		return -EINVAL;
	if (n > SPRY_FAN_MAX)
		return -E2BIG;
	rt = req->rt;
	/* One level of calls (docs/DESIGN.md): a callee does not call on. */
	if (req->desc->flags & SPRY_DF_CALL)
		return -EPERM;
	for (i = 0; i < n; i++) {
		br[i].out_len = 0;
		br[i].err = -EINPROGRESS;
		if (!br[i].fn || (!br[i].in && br[i].in_len) || (!br[i].out && br[i].out_cap)) {
			br[i].err = -EINVAL;
			continue;
		}
		callee = rt_fn_find(rt, br[i].fn);
		meta_len = 0;
		if (!callee && rt_is_app(rt)) {
			/*
			 * A handler of another process of this app: the key names
			 * the process (never this one: it would wait for itself).
			 */
			size_t kl, vl;

			/* its name goes in as metadata: one printable line */
			if (!br[i].key || meta_check("fn", br[i].fn, &kl, &vl)) {
				br[i].err = -EINVAL;
				continue;
			}
			if (br[i].key == spry_process_id()) {
				br[i].err = -EDEADLK;
				continue;
			}
			callee = &rt->fns[0];
			meta_len = 4 + vl + 1;	/* "fn: NAME\n" */
		}
		if (!callee) {
			br[i].err = -ENOENT;
			continue;
		}
		if (br[i].in_len > UINT32_MAX - meta_len) {
			br[i].err = -EMSGSIZE;
			continue;
		}
		ret = spry_pool_alloc(rt->pool, br[i].in_len + meta_len ?
				      (uint32_t)(br[i].in_len + meta_len) : 1,
				      req->desc->req_id, &b);
		if (ret) {
			br[i].err = ret;
			continue;
		}
		p = spry_pool_ptr(rt->pool, b.off, b.cap);
		if (!p || b.cap < br[i].in_len + meta_len) {
			spry_pool_free(rt->pool, b.off, b.gen);
			br[i].err = -EFAULT;
			continue;
		}
		if (meta_len) {
			memcpy(p, "fn: ", 4);
			memcpy(p + 4, br[i].fn, meta_len - 5);
			p[meta_len - 1] = '\n';
		}
		if (br[i].in_len)
			memcpy(p + meta_len, br[i].in, br[i].in_len);
		calls[n_sent] = *req->desc;
		calls[n_sent].flags = SPRY_DF_CALL | SPRY_DF_FAN |
				      (br[i].key ? SPRY_DF_STICKY : 0);
		calls[n_sent].key = br[i].key;
		calls[n_sent].fn = callee->id;
		calls[n_sent].status = SPRY_ST_OK;
		calls[n_sent].off = b.off;
		calls[n_sent].cap = b.cap;
		calls[n_sent].gen = b.gen;
		calls[n_sent].len = (uint32_t)br[i].in_len;
		calls[n_sent].meta_len = (uint32_t)meta_len;
		/* The branch's tag, echoed in its answer (docs/WORKFLOWS.md). */
		calls[n_sent].t_start = ++rt->fan_seq;
		idx[n_sent++] = i;
	}
	if (!n_sent)
		return 0;

	/* What earlier requests of the batch produced goes on first. */
	ret = rt_flush(rt);
	ret = ret ?: rt_send_descs(rt, calls, n_sent);
	if (ret) {
		/*
		 * Part of the send may have been routed: the buffers are left
		 * to spryd, which reclaims those tagged with the request's id
		 * when it ends.
		 */
		for (k = 0; k < n_sent; k++)
			br[idx[k]].err = ret;
		return ret;
	}
	rt->n_calls += n_sent;
	memcpy(sent, calls, n_sent * sizeof(calls[0]));

	fw = (struct rt_fan_wait){ .br = br, .idx = idx, .sent = sent, .n_sent = n_sent,
				   .left_n = n_sent };
	ret = rt_wait_rx(rt, mono_ms() + timeout_ms, false, rt_fan_match, rt_fan_done, &fw);
	if (ret)
		fail = ret;
	/* Not answered in time: their buffers go with the late answers
	 * (rt_late_reply frees them). */
	for (k = 0; k < n_sent; k++)
		if (sent[k].t_start)
			br[idx[k]].err = fail;
	for (i = 0; i < n; i++)
		if (!br[i].err)
			ok++;
	return ok;
}
