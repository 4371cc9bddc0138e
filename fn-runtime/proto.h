/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * spryd's control protocol: a unix SOCK_SEQPACKET socket (default
 * SPRY_CTL_SOCK_DEFAULT).  One message per datagram, each starting with
 * struct spry_ctl_hdr; every length is checked against the datagram size.
 * Used by fn-runtime (registration) and by clients (invoke).
 *
 *   HELLO          ->  HELLO_ACK  (the TCP port functions connect to)
 *   REGISTER + fd  ->  REG_ACK + pool fd     (fd: the function's TCP socket)
 *   INVOKE         ->  RESULT                (request entry; payload inline)
 *   TEMPLATE       ->  TEMPLATE_ACK + pool fd (a template: no instance)
 *   PROC           ->  PROC_ACK              (cloud processes: docs/PROCESS.md)
 *
 * Closing the control connection deregisters every instance it registered.
 *
 * A template (docs/ELASTIC.md, "Cold start") is a function process that
 * spryd started with SPRY_TEMPLATE_ENV naming one end of a SOCK_SEQPACKET
 * pair: it sends TEMPLATE on the control socket (the chain's pool and the
 * TCP port, nothing entered in the router's maps), then SPRY_TMPL_READY on
 * the pair, and answers each SPRY_TMPL_FORK with SPRY_TMPL_FORKED: an
 * instance cloned with CLONE_PARENT (spryd's child) that only registers.
 * It keeps one such clone ahead, waiting (a spare, SPRY_TMPL_SPARE gives
 * its pid: spryd's child too, to reap when the template goes).
 * The same header frames the pair's messages.
 */
#ifndef SPRY_PROTO_H
#define SPRY_PROTO_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "spry/abi.h"

#define SPRY_CTL_MAGIC		0x53505259u	/* "SPRY" */
#define SPRY_CTL_MAX_MSG	(256 * 1024)	/* largest control datagram */

enum spry_ctl_type {
	SPRY_CTL_HELLO		= 1,
	SPRY_CTL_HELLO_ACK	= 2,
	SPRY_CTL_REGISTER	= 3,
	SPRY_CTL_REG_ACK	= 4,
	SPRY_CTL_INVOKE		= 5,
	SPRY_CTL_RESULT		= 6,
	SPRY_CTL_TEMPLATE	= 7,
	SPRY_CTL_TEMPLATE_ACK	= 8,
	SPRY_CTL_PROC		= 9,
	SPRY_CTL_PROC_ACK	= 10,
};

/* Messages on a template's pair (spryd <-> template), never on the socket. */
enum spry_tmpl_type {
	SPRY_TMPL_READY		= 32,	/* template -> spryd: status 0 or -errno */
	SPRY_TMPL_FORK		= 33,	/* spryd -> template: no body */
	SPRY_TMPL_FORKED	= 34,	/* template -> spryd: status, struct spry_tmpl_forked */
	SPRY_TMPL_SPARE		= 35,	/* template -> spryd: a spare's pid (struct spry_tmpl_forked) */
};

/* The environment variable naming a template's end of its pair. */
#define SPRY_TEMPLATE_ENV	"SPRY_TEMPLATE_FD"
/* Benchmarks: an fd (pipe) libspry writes cold-start events to, a line
 * "spry-trace EVENT PID NS start=NS connect=NS" (CLOCK_MONOTONIC) for the
 * events registered and first; start: libspry's first code in the
 * instance, connect: it begins to register. */
#define SPRY_TRACE_ENV		"SPRY_TRACE_FD"

struct spry_tmpl_forked {
	int32_t		pid;		/* the instance (spryd's child) */
	uint32_t	pad;
	uint64_t	clone_ns;	/* CLOCK_MONOTONIC after clone() in the template */
};
_Static_assert(sizeof(struct spry_tmpl_forked) == 16, "tmpl_forked size");

struct spry_ctl_hdr {
	uint32_t	magic;		/* SPRY_CTL_MAGIC */
	uint16_t	type;		/* enum spry_ctl_type */
	uint16_t	version;	/* SPRY_ABI_VERSION */
	uint32_t	len;		/* bytes after this header */
	int32_t		status;		/* replies: 0 or -errno */
};
_Static_assert(sizeof(struct spry_ctl_hdr) == 16, "spry_ctl_hdr size");

struct spry_ctl_hello_ack {
	uint16_t	tcp_port;	/* 127.0.0.1 port to connect() to */
	uint16_t	pad;
	uint32_t	abi;		/* SPRY_ABI_VERSION */
};
_Static_assert(sizeof(struct spry_ctl_hello_ack) == 8, "hello_ack size");

/* REGISTER carries the connected TCP socket as SCM_RIGHTS. */
struct spry_ctl_register {
	char		chain[SPRY_NAME_LEN];
	char		fn[SPRY_NAME_LEN];
	uint32_t	flags;		/* reserved, 0 */
	uint32_t	pad;
};
_Static_assert(sizeof(struct spry_ctl_register) == 72, "register size");

/* REG_ACK carries the chain's pool fd as SCM_RIGHTS when status is 0. */
struct spry_ctl_reg_ack {
	uint16_t	chain;		/* chain id */
	uint16_t	fn;		/* fn id */
	uint16_t	inst;		/* instance id */
	uint16_t	pad;
	uint64_t	pool_size;
	/* the chain's placement: CPUs to run on (bit i: CPU i); none: any */
	__u64		cpus[SPRY_CPU_WORDS];
};
_Static_assert(sizeof(struct spry_ctl_reg_ack) == 48, "reg_ack size");

/*
 * After struct spry_ctl_reg_ack, REG_ACK carries the chain's functions so
 * that a function can CALL another by name: n entries (n = remaining body
 * bytes / sizeof(entry), at most SPRY_MAX_FNS), names NUL-padded.  An
 * older spryd sends none: the runtime then refuses calls with -ENOENT.
 */
struct spry_ctl_fn_entry {
	uint16_t	id;		/* fn id */
	uint16_t	pad;
	char		name[SPRY_NAME_LEN];
};
_Static_assert(sizeof(struct spry_ctl_fn_entry) == 36, "fn_entry size");

/*
 * TEMPLATE's body is a struct spry_ctl_register (flags 0, no fd).  Its
 * TEMPLATE_ACK carries the chain's pool fd when status is 0, and the
 * chain's function table after this struct (as REG_ACK does).
 */
struct spry_ctl_template_ack {
	uint16_t	tcp_port;	/* 127.0.0.1 port instances connect() to */
	uint16_t	chain;		/* chain id */
	uint16_t	fn;		/* fn id */
	uint16_t	pad;
	uint32_t	abi;		/* SPRY_ABI_VERSION */
	uint32_t	pad2;
	uint64_t	pool_size;
};
_Static_assert(sizeof(struct spry_ctl_template_ack) == 24, "template_ack size");

/*
 * INVOKE: payload follows.  For an app (SPRY_CF_APP), @fn names one of its
 * functions (required) and SPRY_DF_STICKY with @key a process; spryd puts
 * "fn: NAME" in the request's metadata.  Empty @fn for a chain.
 */
struct spry_ctl_invoke {
	char		chain[SPRY_NAME_LEN];
	uint64_t	key;		/* routing key (0: none) */
	uint32_t	flags;		/* SPRY_DF_STICKY allowed */
	uint32_t	len;		/* payload bytes that follow */
	char		fn[SPRY_NAME_LEN];	/* app function, "" for a chain */
};
_Static_assert(sizeof(struct spry_ctl_invoke) == 80, "invoke size");

/*
 * PROC: a command on an app's processes (`spry process`), from root or
 * the app's user.  PROC_ACK: hdr.status 0 or -errno; on success a struct
 * spry_ctl_proc_app, then n struct spry_ctl_proc_info (SHOW: the process
 * @id, or every process up to what one datagram holds, truncated set;
 * CREATE: the new process; DEL/SWAP/WAKE: the process after the command).
 */
enum spry_proc_op {
	SPRY_PROC_CREATE	= 1,	/* id 0: spryd picks one */
	SPRY_PROC_DEL		= 2,
	SPRY_PROC_SHOW		= 3,	/* id 0: all */
	SPRY_PROC_SWAP		= 4,
	SPRY_PROC_WAKE		= 5,
	SPRY_PROC_OP_MAX,
};

enum spry_proc_state {
	SPRY_PS_ALLOCATED	= 0,	/* created, never ran (or its OS process exited) */
	SPRY_PS_STARTING	= 1,	/* OS process started, not registered yet */
	SPRY_PS_ACTIVE		= 2,	/* registered: requests reach it */
	SPRY_PS_SWAPPED		= 3,	/* state in the swap directory, no OS process */
	SPRY_PS_DELETED		= 4,	/* only in counters */
	SPRY_PS_LOST		= 5,	/* has a swap file, and it is missing, damaged
					 * or another app's (spry_ctl_proc_info.lost):
					 * not started; its requests get an error */
	SPRY_PS_MAX,
};

/* Why a process is SPRY_PS_LOST (spry_ctl_proc_info.lost). */
enum spry_proc_lost {
	SPRY_PL_NONE		= 0,
	SPRY_PL_MISSING		= 1,	/* no swap file (and no store) */
	SPRY_PL_DAMAGED		= 2,	/* its header or checksum table */
	SPRY_PL_OTHER_APP	= 3,	/* the swap file of another app */
	SPRY_PL_UNREADABLE	= 4,	/* any other error reading it */
	SPRY_PL_MAX,
};

/* PROC flags. */
enum spry_ctl_proc_flags {
	/* SHOW, id 0: the active processes only (at most SPRY_MAX_INST; the
	 * mailboxes' spry_send_all() asks so, as the app's user) */
	SPRY_PROC_F_ACTIVE	= 1 << 0,
};

struct spry_ctl_proc {
	char		app[SPRY_NAME_LEN];
	uint64_t	id;		/* process id, 0: none (CREATE: pick one) */
	uint32_t	op;		/* enum spry_proc_op */
	uint32_t	flags;		/* SPRY_PROC_F_* (SHOW only), else 0 */
};
_Static_assert(sizeof(struct spry_ctl_proc) == 48, "ctl_proc size");

/* Every life-cycle transition of an app's processes, counted. */
struct spry_ctl_proc_app {
	uint32_t	n[SPRY_PS_MAX];	/* processes in each state (DELETED: 0) */
	uint32_t	max;		/* the app's max processes */
	uint32_t	n_info;		/* entries that follow */
	uint32_t	truncated;	/* 1: more processes than entries */
	uint32_t	pad;
	uint64_t	created;	/* -> allocated */
	uint64_t	started;	/* -> starting (an OS process spawned) */
	uint64_t	activated;	/* starting -> active */
	uint64_t	swapped;	/* -> swapped */
	uint64_t	woken;		/* swapped -> starting */
	uint64_t	deleted;	/* -> deleted */
	uint64_t	crashed;	/* active/starting -> allocated: exited on its own */
	uint64_t	failed;		/* starts that failed (exec, timeout) */
	uint64_t	lost;		/* -> lost: its swap file missing or damaged */
};
_Static_assert(sizeof(struct spry_ctl_proc_app) == 112, "ctl_proc_app size");

struct spry_ctl_proc_info {
	uint64_t	id;
	uint32_t	state;		/* enum spry_proc_state */
	int32_t		pid;		/* OS process, 0 none */
	uint16_t	inst;		/* instance while active */
	uint16_t	lost;		/* enum spry_proc_lost (state LOST) */
	uint32_t	requests;	/* held for it now (waking) */
	uint64_t	activations;	/* times it became active */
	uint64_t	swaps;		/* times it was swapped */
	uint64_t	idle_ms;	/* since its last request or transition */
};
_Static_assert(sizeof(struct spry_ctl_proc_info) == 48, "ctl_proc_info size");

/* RESULT: hdr.status 0 or -errno (spryd side); desc status and payload. */
struct spry_ctl_result {
	uint64_t	req_id;
	uint32_t	status;		/* enum spry_status of the descriptor */
	uint32_t	len;		/* payload bytes that follow */
	uint64_t	latency_ns;	/* origin in to origin out */
};
_Static_assert(sizeof(struct spry_ctl_result) == 24, "result size");

/*
 * Helpers (fn-runtime/proto.c, in libspry; used by spryd too).
 *
 * spry_ctl_send: one datagram = header{type, status, len} + @body[@len],
 * with @pass_fd as SCM_RIGHTS when >= 0.  0 or -errno.
 *
 * spry_ctl_recv: receive one datagram into @buf (@size bytes), validate the
 * header (magic, version, len == bytes received - header), and return the
 * body length (>= 0) or -errno (-EPROTO for a malformed message, -EMSGSIZE
 * when truncated, -ECONNRESET/0-length on EOF: returns -ENOTCONN).
 * *@hdr gets the header; *@recv_fd gets a passed fd or -1 (extra fds are
 * closed; @recv_fd NULL closes any).  Uses MSG_CMSG_CLOEXEC.
 */
int spry_ctl_send(int sock, uint16_t type, int32_t status, const void *body,
		  uint32_t len, int pass_fd);
int spry_ctl_recv(int sock, void *buf, uint32_t size, struct spry_ctl_hdr *hdr,
		  int *recv_fd);
/* Connect a SOCK_SEQPACKET socket to @path (NULL: default).  fd or -errno. */
int spry_ctl_connect(const char *path);

/* Room for the one SCM_RIGHTS fd a control message may carry. */
union spry_ctl_fdbuf {
	char		buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr	align;
};

/* Make @msg carry @fd as SCM_RIGHTS, in @cb (which must outlive the send). */
static inline void spry_ctl_put_fd(struct msghdr *msg, union spry_ctl_fdbuf *cb, int fd)
{
	struct cmsghdr *cm;

	memset(cb, 0, sizeof(*cb));
	msg->msg_control = cb->buf;
	msg->msg_controllen = sizeof(cb->buf);
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}

#endif /* SPRY_PROTO_H */
