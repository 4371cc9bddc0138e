/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libspry: the library a spry function links.
 *
 *   - the pool (shm/): a chain's shared buffer pool, named by offsets;
 *   - the runtime (fn-runtime/): register with spryd, sleep until
 *     descriptors arrive, run a handler on each payload in place, send on.
 *
 * Conventions (libbpf's): functions returning int give 0 or -errno;
 * functions returning a pointer give NULL and set errno.
 */
#ifndef SPRY_SPRY_H
#define SPRY_SPRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * libspry's version.  The shared library is libspry.so.MAJOR.MINOR.PATCH
 * with soname libspry.so.MAJOR (the Makefile reads these lines): MAJOR
 * changes when a program built against an older libspry may break.
 */
#define LIBSPRY_MAJOR_VERSION	1
#define LIBSPRY_MINOR_VERSION	0
#define LIBSPRY_PATCH_VERSION	0

#if defined(SPRY_BUILD_SHARED)
#define SPRY_API __attribute__((visibility("default")))
#else
#define SPRY_API
#endif

/* ------------------------------------------------------------------ pool */

#define SPRY_POOL_MAGIC		0x4c4f4f5059525053ULL	/* "SPRYPOOL" */
#define SPRY_POOL_VERSION	1
#define SPRY_POOL_MAX_BUFS	(1u << 20)
#define SPRY_POOL_MIN_BUF	64u
#define SPRY_POOL_MAX_BUF	(64u << 20)

struct spry_pool;

struct spry_pool_opts {
	uint32_t	buf_size;	/* bytes per buffer (rounded up to 64) */
	uint32_t	n_bufs;		/* number of buffers */
	uint32_t	large_size;	/* bytes per large buffer (0: none) */
	uint32_t	n_large;	/* number of large buffers */
	uid_t		uid;		/* owner of the pool file */
	gid_t		gid;
	int		no_huge;	/* 1: skip hugetlbfs, use memfd */
	/*
	 * Regular buffers set aside (< n_bufs): the first n_reserved, one
	 * contiguous page-aligned run, on a free list of their own that only
	 * spry_pool_alloc_reserved() takes from (spryd's AF_XDP UMEM).
	 */
	uint32_t	n_reserved;
};

/* What backs a pool. */
enum spry_pool_backing {
	SPRY_POOL_HUGETLBFS	= 1,	/* a file on hugetlbfs */
	SPRY_POOL_MEMFD_HUGE	= 2,	/* memfd with MFD_HUGETLB */
	SPRY_POOL_MEMFD		= 3,	/* plain memfd (4 KiB pages) */
};

/* A buffer handed out by the pool. */
struct spry_buf {
	uint64_t	off;		/* offset of the buffer in the pool */
	uint32_t	cap;		/* its capacity */
	uint32_t	gen;		/* generation: pass back to free */
};

struct spry_pool_stats {
	uint64_t	size;		/* bytes mapped */
	uint32_t	buf_size;
	uint32_t	n_bufs;
	uint32_t	n_free;
	uint32_t	large_size;
	uint32_t	n_large;
	uint32_t	n_large_free;
	uint32_t	backing;	/* enum spry_pool_backing */
	uint32_t	n_reserved;	/* of n_bufs: the reserved run */
	uint32_t	n_reserved_free;	/* of n_free: reserved ones */
	uint32_t	pad;
};

/*
 * Create a pool.  With @dir (a hugetlbfs mount) and hugepages to spare the
 * pool is the file @dir/@name (mode 0600, owned by opts->uid/gid); else a
 * memfd (hugetlb if it can, else 4 KiB pages).  The backing is reported by
 * spry_pool_stats().
 */
SPRY_API struct spry_pool *spry_pool_create(const char *dir, const char *name,
					    const struct spry_pool_opts *opts);
/* Map a pool from an fd received from spryd (the fd is the capability). */
SPRY_API struct spry_pool *spry_pool_attach(int fd);
/* Open an existing pool file by path (spryd after a restart). */
SPRY_API struct spry_pool *spry_pool_open(const char *path);
SPRY_API void spry_pool_close(struct spry_pool *pool);
/* Unlink the pool's file, if it has one.  0 or -errno. */
SPRY_API int spry_pool_unlink(struct spry_pool *pool);
SPRY_API int spry_pool_fd(const struct spry_pool *pool);
SPRY_API uint64_t spry_pool_size(const struct spry_pool *pool);

/*
 * Take a buffer of at least @min_size bytes (a regular one when it fits,
 * else a large one), tagged with @tag (the request id that owns it).
 * Lock-free; safe from any process mapping the pool.  -ENOSPC when none is
 * free, -EMSGSIZE when @min_size is over the largest buffer size.
 */
SPRY_API int spry_pool_alloc(struct spry_pool *pool, uint32_t min_size,
			     uint64_t tag, struct spry_buf *buf);
/*
 * Give a buffer back.  @gen must match the buffer's current generation:
 * a stale or double free is refused with -ESTALE; a bad offset -EINVAL.
 */
SPRY_API int spry_pool_free(struct spry_pool *pool, uint64_t off, uint32_t gen);
/* Free every buffer tagged @tag (a request that will not come back).
 * Returns how many were freed. */
SPRY_API int spry_pool_reclaim(struct spry_pool *pool, uint64_t tag);
/* Free every allocated buffer whose tag @is_live does not accept. */
SPRY_API int spry_pool_reclaim_if(struct spry_pool *pool,
				  int (*is_live)(uint64_t tag, void *ctx), void *ctx);
/*
 * Pointer to [@off, @off + @len) if that range is inside one buffer of the
 * pool's data area, else NULL (errno EFAULT).  Every offset and length that
 * arrives in a descriptor goes through here.
 */
SPRY_API void *spry_pool_ptr(const struct spry_pool *pool, uint64_t off, uint64_t len);
SPRY_API int spry_pool_stats(const struct spry_pool *pool, struct spry_pool_stats *st);
/* The reserved run (opts.n_reserved): [*@off, *@off + *@len) of the pool. */
SPRY_API int spry_pool_reserved(const struct spry_pool *pool, uint64_t *off,
				uint64_t *len);
/* Like spry_pool_alloc(), from the reserved buffers only (-ENOSPC: none). */
SPRY_API int spry_pool_alloc_reserved(struct spry_pool *pool, uint64_t tag,
				      struct spry_buf *buf);
/*
 * Hand the allocated buffer at @off (generation @gen) from tag @old_tag to
 * @new_tag (nonzero).  0, -ESTALE (not allocated with @gen, or tagged
 * otherwise), -EINVAL (no buffer starts at @off).
 */
SPRY_API int spry_pool_retag(struct spry_pool *pool, uint64_t off, uint32_t gen,
			     uint64_t old_tag, uint64_t new_tag);

/* --------------------------------------------------------------- runtime */

struct spry_req;

/*
 * A handler runs once per request.  It reads the payload and writes the
 * response, in place or into a bigger buffer (spry_req_resize).  Return 0,
 * or -errno to fail the request (it goes back to the origin with
 * SPRY_ST_FN_ERROR).
 */
typedef int (*spry_handler_t)(struct spry_req *req, void *user);

/* Request payload (after the metadata). */
SPRY_API void *spry_req_data(struct spry_req *req, size_t *len);
/* Room for the response in the current buffer, from the payload start. */
SPRY_API size_t spry_req_room(const struct spry_req *req);
/* Set the response length (<= spry_req_room()).  0 or -EMSGSIZE. */
SPRY_API int spry_req_set_len(struct spry_req *req, size_t len);
/*
 * Make room for @len response bytes: in place when it fits, else a
 * bigger buffer from the pool, with the payload copied.  Returns the new
 * payload pointer, or NULL (errno ENOSPC/EMSGSIZE).
 */
SPRY_API void *spry_req_resize(struct spry_req *req, size_t len);
/* Metadata value for @key (NULL when absent); see docs/DESIGN.md. */
SPRY_API const char *spry_req_meta(const struct spry_req *req, const char *key,
				   size_t *len);
/*
 * Set metadata line @key to @value (replacing a line with that key), in
 * the buffer's metadata area; the payload moves only when the area is
 * full.  Keys and values: printable ASCII, no ':' in keys, no CR/LF.
 * Response keys read by spryd's HTTP front start with '@' (no HTTP header
 * can): SPRY_META_STATUS ("201"), SPRY_META_CONTENT_TYPE.  0 or -errno.
 */
SPRY_API int spry_req_set_meta(struct spry_req *req, const char *key,
			       const char *value);
#define SPRY_META_STATUS	"@status"
#define SPRY_META_CONTENT_TYPE	"@content-type"
/* Convenience: the HTTP status of the response (100-599). */
SPRY_API int spry_req_set_status(struct spry_req *req, unsigned int http_status);

/*
 * Answer the request with the @len bytes at @body, which replace the
 * payload (the buffer grows when needed, as with spry_req_resize()).
 * First, when @http_status is not 0, @status is set to it (100-599), and
 * when @content_type is not NULL, @content-type.  @body may be the
 * caller's memory or a slice of the current payload (followed when the
 * payload moves); other memory of the request's buffer is -EINVAL.
 * 0 or -errno (-EINVAL bad status or content type, -ENOSPC no bigger
 * buffer, -EMSGSIZE too big).  The last function's @status and
 * @content-type are the HTTP answer's; docs/DESIGN.md, "Metadata".
 *
 *   return spry_req_reply(req, 201, "application/json", json, json_len);
 */
SPRY_API int spry_req_reply(struct spry_req *req, unsigned int http_status,
			    const char *content_type, const void *body, size_t len);

/*
 * Fail the request with a reason: the payload becomes "error: MESSAGE\n"
 * (MESSAGE from @fmt, cut at SPRY_ERROR_MSG_MAX bytes), @status
 * @http_status (400-599 for the HTTP front to use it) and @content-type
 * text/plain.  Returns @err (a negative errno; -EINVAL if @err is not
 * negative) for the handler to return: the request ends there with
 * SPRY_ST_FN_ERROR and spryd's HTTP front answers with this status and
 * body (500 and its own body if the answer could not be written).
 *
 *   if (!key)
 *           return spry_req_error(req, 400, -EINVAL, "line %u: no key", n);
 */
#define SPRY_ERROR_MSG_MAX	248
SPRY_API int spry_req_error(struct spry_req *req, unsigned int http_status, int err,
			    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Call function @fn of the same chain (authorized by the chain's `calls`)
 * with @in, and wait for its reply: copied into @out (at most @out_cap
 * bytes), its length in *@out_len.  Descriptors that arrive meanwhile are
 * kept and handled after the current request.  Returns 0, or -errno:
 * -ENOENT unknown function, -ENOSPC no buffer, -EMSGSIZE reply too big,
 * -ETIMEDOUT no reply within @timeout_ms, -EREMOTEIO the callee failed.
 */
SPRY_API int spry_req_call(struct spry_req *req, const char *fn, const void *in,
			   size_t in_len, void *out, size_t out_cap, size_t *out_len,
			   unsigned int timeout_ms);
/*
 * spry_req_call() with a routing key: @key != 0 sends the CALL with
 * SPRY_DF_STICKY and desc.key = @key, so every call with that key reaches
 * the same live instance of @fn (state kept per key, e.g. a cart per user).
 * A handler that is itself answering a CALL cannot call on: -EPERM.  A
 * reply whose buffer is out of bounds: -EBADMSG.  After -ETIMEDOUT the
 * call's buffer stays with the callee; its late reply frees it.
 */
SPRY_API int spry_req_call_key(struct spry_req *req, const char *fn, uint64_t key,
			       const void *in, size_t in_len, void *out,
			       size_t out_cap, size_t *out_len,
			       unsigned int timeout_ms);

SPRY_API uint64_t spry_req_id(const struct spry_req *req);
SPRY_API const struct spry_desc *spry_req_desc(const struct spry_req *req);

struct spry_fn_opts {
	const char	*chain;		/* chain name */
	const char	*fn;		/* function name within the chain */
	const char	*sock_path;	/* spryd's control socket (NULL: default) */
	unsigned int	batch;		/* descriptors per wake-up (0: 64) */
	int		quiet;		/* no log lines on stderr */
};

#define SPRY_CTL_SOCK_DEFAULT	"/run/spry/spryd.sock"

/*
 * Register with spryd, then handle requests until SIGTERM or SIGINT
 * (which finish the batch in hand, deregister and return 0).  Losing spryd
 * is not fatal: the instance registers again, with backoff, with the
 * spryd that comes next.  -EIDRM when spryd answers that it has no such
 * chain or function (never added, or deleted since): at the first
 * registration or at a later one, which is then not retried.  Else
 * -errno.
 */
SPRY_API int spry_fn_run(const struct spry_fn_opts *opts, spry_handler_t handler,
			 void *user);

/*
 * The whole main() of a typical function:
 *
 *	int main(int argc, char **argv)
 *	{
 *		return spry_fn_main(argc, argv, my_handler, NULL);
 *	}
 *
 * Parses the common options (usage on stderr and 2 when they are wrong),
 * runs until SIGTERM; 0 on a clean exit, SPRY_EXIT_GONE when the chain or
 * the function does not exist (spry_fn_run()'s -EIDRM: a supervisor
 * should not restart it), else 1; the reason on stderr.
 */
#define SPRY_EXIT_GONE	3

SPRY_API int spry_fn_main(int argc, char **argv, spry_handler_t handler, void *user);

/* Parse the common function command line (--chain, --fn, --sock, --batch). */
SPRY_API int spry_fn_opts_parse(struct spry_fn_opts *opts, int argc, char **argv);

/* -------------------------------------------------------------- workflows */

/*
 * Workflows (docs/WORKFLOWS.md).
 *
 * Conditional next: the request goes on to function @fn, a later hop of
 * the chain that the chain lets this function pick ("spry chain add ...
 * next F:G", apply's "next:"), instead of the next hop; NULL forgets an
 * earlier pick.  Taken when the handler returns 0.  The router checks the
 * pick: one not allowed ends the request at the origin with
 * SPRY_ST_NEXT_REFUSED (HTTP 502), counted as verdict next_refused.
 * In an app's process (spry_app_main()), @fn is another handler of the
 * app ("spry app add ... next F:G"): the request goes through the router,
 * which checks the pick the same way, back into this same process, where
 * @fn runs it (its metadata "fn" is rewritten here; the payload may move:
 * take spry_req_data() again after).
 * 0, -ENOENT (no such function in the chain or app), -EPERM (answering a
 * call: a callee has no next), -EINVAL, or spry_req_set_meta()'s error.
 */
SPRY_API int spry_req_next(struct spry_req *req, const char *fn);

/* One branch of spry_req_fanout(). */
struct spry_fanout {
	const char	*fn;		/* function of the chain to call */
	uint64_t	key;		/* routing key (sticky), 0: any instance */
	const void	*in;		/* its input */
	size_t		in_len;
	void		*out;		/* its answer, copied here */
	size_t		out_cap;
	size_t		out_len;	/* (out) bytes of the answer */
	int		err;		/* (out) 0 or -errno: see spry_req_fanout() */
	int		pad;
};

/*
 * Fan-out and fan-in: call the @n branches (at most SPRY_FAN_MAX) in
 * parallel, each authorized like a call by the chain's `calls`, and wait
 * up to @timeout_ms for all their answers.  Never waits longer: a branch
 * that has not answered by then gets -ETIMEDOUT, and its late answer is
 * dropped when it comes (its buffers freed).  Each branch's outcome is in
 * its @err: 0 (answer in @out, @out_len bytes), -ENOENT unknown function,
 * -EINVAL bad branch, -ENOSPC no pool buffer, -EMSGSIZE answer over
 * @out_cap, -EREMOTEIO the callee failed, -EHOSTUNREACH no live instance
 * of it, -ECONNRESET its instance died holding the branch (it may have
 * run in part; spryd answers for it, and the budget is back), -ESRCH no
 * such process, -EBUSY the router's bound of SPRY_FAN_MAX branches out
 * per instance, -ETIMEDOUT.
 * Returns how many branches answered with 0, or -errno for the whole
 * call: -EINVAL, -E2BIG (@n > SPRY_FAN_MAX), -EPERM (answering a call),
 * or the send's error (every branch then has it).  Like spry_req_call(),
 * descriptors arriving meanwhile are handled after the current request.
 */
SPRY_API int spry_req_fanout(struct spry_req *req, struct spry_fanout *br, size_t n,
			     unsigned int timeout_ms);

/*
 * Input batching: a handler given up to @max requests at once.  Each
 * reqs[i] is a request of its own (its payload, metadata, answer, next);
 * rets[i] (0 on entry) is its result, as a handler's return value.  The
 * answers go back one by one, each to its own caller.
 */
typedef void (*spry_batch_handler_t)(struct spry_req *const *reqs, int *rets,
				     size_t n, void *user);

#define SPRY_BATCH_MAX		256	/* requests per batch */
#define SPRY_BATCH_WAIT_MAX_US	1000000	/* the longest wait for a batch */

struct spry_batch_opts {
	unsigned int	max;		/* requests per batch, 1..SPRY_BATCH_MAX */
	/*
	 * How long the first request of a batch may wait for others
	 * (0..SPRY_BATCH_WAIT_MAX_US): the batch runs when @max are there or
	 * the wait is over, whichever comes first; 0: what arrived together.
	 */
	unsigned int	wait_us;
};

/*
 * spry_fn_run() with a batch handler: the plain requests that arrive
 * within @bopts->wait_us of the first, up to @bopts->max, are handled by
 * one call of @handler.  A call (SPRY_DF_CALL) to the function is a batch
 * of one.  -EINVAL for bad @bopts; else as spry_fn_run().
 */
SPRY_API int spry_fn_run_batch(const struct spry_fn_opts *opts,
			       const struct spry_batch_opts *bopts,
			       spry_batch_handler_t handler, void *user);

/* ---------------------------------------------------------------- client */

/*
 * A client of spryd's request entry (control socket INVOKE): tests,
 * benchmarks, `spry invoke`.  One request at a time per client; open one
 * per thread for concurrency.
 */
struct spry_client;

SPRY_API struct spry_client *spry_client_open(const char *sock_path);
SPRY_API void spry_client_close(struct spry_client *c);
/*
 * Run @chain on @in; the response payload goes to @out (up to @out_cap
 * bytes; -EMSGSIZE if larger), its length to *@out_len and the
 * descriptor's enum spry_status to *@status.  0 when a result came back
 * (check *status), else -errno (spryd refused: -ENOENT unknown chain,
 * -EACCES the caller's user may not invoke the chain, -EBUSY in-flight
 * bound, -ETIMEDOUT deadline, -ECONNRESET instance died).
 */
SPRY_API int spry_client_invoke(struct spry_client *c, const char *chain,
				const void *in, size_t in_len, void *out,
				size_t out_cap, size_t *out_len, uint32_t *status);

/*
 * Run function @fn of app @app (docs/PROCESS.md) in process @id, or, with
 * @id 0, in a live process chosen by load (created when the app allows
 * it).  As spry_client_invoke(); *@status SPRY_ST_NO_PROCESS when the
 * process does not exist (never another process's answer).
 */
SPRY_API int spry_client_invoke_proc(struct spry_client *c, const char *app,
				     const char *fn, uint64_t id, const void *in,
				     size_t in_len, void *out, size_t out_cap,
				     size_t *out_len, uint32_t *status);

/* ------------------------------------------------------------------- apps */

/*
 * An app's process hosts several functions in one OS process.  The handler
 * of a request is the entry whose @name is the request's function
 * (metadata "fn", set by spryd from /APP/FN, /APP/ID/FN or INVOKE); an
 * unknown one is answered 404.
 */
struct spry_app_fn {
	const char	*name;
	spry_handler_t	handler;
};

/*
 * main() of an app's process: spry_fn_main() dispatching on the
 * function's name among @fns[0..@n).
 */
SPRY_API int spry_app_main(int argc, char **argv, const struct spry_app_fn *fns,
			   size_t n, void *user);
/* The function a request names ("" when none): its metadata "fn". */
SPRY_API const char *spry_req_fn(const struct spry_req *req, size_t *len);
/*
 * This process's id (from spryd: SPRY_PROCESS_ID in the environment), 0
 * when it is not an app's process.  Its state lives at SPRY_STATE_PATH.
 */
SPRY_API uint64_t spry_process_id(void);

/* -------------------------------------------------------------- mailboxes */

/*
 * Mailboxes between the processes of one app (docs/PROCESS.md,
 * "Mailboxes").  Callable from a cloud process (spry_process_id() != 0),
 * inside a handler or from the process's own thread.  Payload travels in
 * the chain's pool: a mail is a descriptor the router takes to the
 * receiving process, which acknowledges it through the router.
 */
#define SPRY_MAILBOXES		16	/* mailbox numbers 0..15 per process */
#define SPRY_MAIL_DEPTH		64	/* unread messages per mailbox at most */
#define SPRY_MAIL_TIMEOUT_MS	5000	/* send deadline (SPRY_MAIL_TIMEOUT_MS env) */

/*
 * Send @len bytes to mailbox @mailbox of process @pid of the same app.
 * 0 when the receiver's runtime has accepted it (acknowledged through the
 * router), or -errno: -EAGAIN the receiver's mailbox is full (nothing
 * queued), -ESRCH no such live process in this app (or another app's id),
 * -EMSGSIZE larger than a pool buffer, -ENOBUFS no pool buffer, -EINVAL bad
 * mailbox, -ETIMEDOUT no ack within the send deadline, -EPERM not a cloud
 * process.
 */
SPRY_API int spry_send(uint64_t pid, uint32_t mailbox, const void *data, size_t len);

/*
 * Send to every other live process of this app: the number of processes
 * it was delivered to (>= 0), or -errno for a failure before any was sent.
 * Per-receiver failures are counted in @failed when non-NULL.
 */
SPRY_API int spry_send_all(uint32_t mailbox, const void *data, size_t len, unsigned *failed);

/*
 * Receive the oldest message of @mailbox into @buf (at most @cap bytes).
 * Waits up to @timeout_ms (-1: forever, 0: poll).  Returns its length, or
 * -errno: -ETIMEDOUT, -EMSGSIZE (@cap too small; the message stays
 * queued), -EINVAL bad mailbox, -EPERM not a cloud process.  *@from, when
 * non-NULL, gets the sender's process id.
 */
SPRY_API ssize_t spry_recv(uint32_t mailbox, void *buf, size_t cap, int timeout_ms,
			   uint64_t *from);

/* ---------------------------------------------------------------- numbers */

/*
 * The @len bytes at @s (a payload field, a metadata value: no NUL needed)
 * as a decimal number in [@min, @max] into *@out.  The rules of every
 * number spry reads (its CLI, spryd, the runtime's options): ASCII digits
 * only, leading zeros allowed; no sign, spaces, hex or suffixes.  0,
 * -EINVAL (empty, or a byte that is not a digit) or -ERANGE (above 2^64-1
 * or outside [@min, @max]); *@out is written only on success.
 */
SPRY_API int spry_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max,
			    uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* SPRY_SPRY_H */
