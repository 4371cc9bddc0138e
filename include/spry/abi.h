/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * spry's shared ABI: every type, constant and name that crosses the
 * BPF/userspace boundary.  Included by the BPF programs (after vmlinux.h,
 * which defines the __u8.. types) and by userspace, libspry and functions
 * alike (installed as <spry/abi.h>; it needs nothing but <linux/types.h>).
 * BPF-only map definitions live in bpf/maps.bpf.h.
 *
 * Licensed like libspry, or BSD: the GPL BPF programs include it too.
 *
 * Rules: fixed-width types only, explicit padding, a static size assertion
 * on every struct.  Changing a layout means bumping SPRY_ABI_VERSION.
 */
#ifndef SPRY_ABI_H
#define SPRY_ABI_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* C++ spells C11's _Static_assert static_assert (GCC knows no other). */
#if defined(__cplusplus) && !defined(_Static_assert)
#define _Static_assert(expr, msg) static_assert(expr, msg)
#endif

#define SPRY_ABI_VERSION	7
#define SPRY_DESC_VERSION	1

/* Limits. */
#define SPRY_MAX_CHAINS		256	/* chain ids 1..255; 0 = none */
#define SPRY_MAX_HOPS		16	/* hops per chain */
#define SPRY_MAX_FNS		1024	/* fn ids 1..1023; 0 = the origin (spryd) */
#define SPRY_MAX_INST		32	/* instances per function (and origins) */
#define SPRY_NAME_LEN		32	/* chain and function names, NUL included */
#define SPRY_MAX_CPUS		256	/* CPUs a chain can be placed on (0-255) */
#define SPRY_CPU_WORDS		(SPRY_MAX_CPUS / 64)
#define SPRY_REQ_SLOTS		65536	/* request location slots (power of two) */
#define SPRY_EVENTS_BYTES	(256 * 1024)
#define SPRY_RUN_MAX		256	/* descriptors per router verdict (a run) */
#define SPRY_MAX_INVOKERS	8	/* users, and groups, a chain lets invoke it */
#define SPRY_MAX_PROCS		65536	/* cloud processes, all apps together */

#define SPRY_FN_ORIGIN		0	/* fn id of spryd's origin sockets */

/* Stringify a map-name macro for use as a pin file name. */
#define SPRY__STR(x)		#x
#define SPRY_STR(x)		SPRY__STR(x)

/* One macro per map: the BPF identifier and the pin file name. */
#define SPRY_MAP_SOCKS		spry_socks	/* SOCKHASH inst_key -> socket */
#define SPRY_MAP_SENDERS	spry_senders	/* SK_STORAGE socket -> sender */
#define SPRY_MAP_CHAINS		spry_chains	/* ARRAY chain id -> chain */
#define SPRY_MAP_FNS		spry_fns	/* ARRAY fn id -> fn */
#define SPRY_MAP_AUTH		spry_auth	/* HASH auth_key -> u32 allowed */
#define SPRY_MAP_INST		spry_inst	/* ARRAY fn*MAX_INST+inst -> inst_state */
#define SPRY_MAP_VERDICTS	spry_verdicts	/* PERCPU_ARRAY verdict -> u64 */
#define SPRY_MAP_FN_STATS	spry_fn_stats	/* PERCPU_ARRAY fn id -> fn_stats */
#define SPRY_MAP_REQLOC		spry_reqloc	/* ARRAY req slot -> where the request is */
#define SPRY_MAP_EVENTS		spry_events	/* RINGBUF of spry_event (quarantines) */
#define SPRY_MAP_PROCS		spry_procs	/* HASH proc_key -> proc (sticky processes) */
#define SPRY_MAP_FANREC		spry_fanrec	/* HASH fan_key -> fan_rec (branches out, ABI 7) */

#define SPRY_PROG_SKMSG		"skmsg_route"	/* pin name of the SK_MSG program */
#define SPRY_PIN_DIR_DEFAULT	"/sys/fs/bpf/spry"

/*
 * The descriptor: what travels between functions.  64 bytes, one per
 * request hop; a send() may carry several back to back.
 *
 * Fields marked (router) are written by skmsg_route and are not trusted
 * from the sender.
 */
struct spry_desc {
	__u8	version;	/* SPRY_DESC_VERSION */
	__u8	hop;		/* index in the chain's hops of the holder */
	__u8	status;		/* enum spry_status */
	__u8	flags;		/* SPRY_DF_* */
	__u16	chain;		/* chain id */
	__u16	fn;		/* callee fn id with SPRY_DF_CALL/REPLY; the
				 * picked fn with SPRY_DF_NEXT; in an app
				 * (SPRY_CF_APP) a plain request's handler
				 * number (1 + its index in the app's fns) */
	__u64	req_id;		/* request id, chosen by the origin */
	__u64	off;		/* buffer offset in the chain's pool */
	__u32	len;		/* payload bytes (after meta_len bytes of metadata) */
	__u32	cap;		/* buffer capacity in bytes */
	__u64	key;		/* routing key (process id for sticky routing) */
	__u16	origin;		/* (router) origin instance that started it */
	__u16	inst;		/* (router) instance it was delivered to; back at
				 * the origin from a function: the sender's */
	__u16	ret_fn;		/* (router) caller fn with SPRY_DF_CALL */
	__u16	ret_inst;	/* (router) caller instance with SPRY_DF_CALL */
	__u32	meta_len;	/* metadata bytes at the start of the buffer */
	__u32	gen;		/* buffer generation (pool ownership check) */
	__u64	t_start;	/* origin's CLOCK_MONOTONIC ns at ingress */
};
_Static_assert(sizeof(struct spry_desc) == 64, "spry_desc must be 64 bytes");

enum spry_desc_flags {
	SPRY_DF_CALL	= 1 << 0,	/* deliver to fn (a call), reply comes back */
	SPRY_DF_REPLY	= 1 << 1,	/* reply to the caller in ret_fn/ret_inst */
	SPRY_DF_STICKY	= 1 << 2,	/* choose the instance by key */
	/* Workflows (docs/WORKFLOWS.md). */
	SPRY_DF_NEXT	= 1 << 3,	/* the sender picks the next function: fn,
					 * one of its SPRY_AK_NEXT set (router clears) */
	SPRY_DF_FAN	= 1 << 4,	/* with CALL/REPLY: a fan-out branch (the
					 * caller's in-flight count is not touched;
					 * SPRY_FAN_MAX branches out per instance) */
	/*
	 * A mail between the processes of an app (docs/PROCESS.md,
	 * "Mailboxes"), routed apart from requests: it never touches
	 * inflight.  Alone: a mail (key = receiving process id; the router
	 * hands it over with key = the sender's process id); with
	 * SPRY_DF_REPLY: its answer (status OK, MAILBOX_FULL, ...).
	 * The mail fields: hop = mailbox, req_id = the sender's sequence
	 * number (echoed by the answer), meta_len = the token of the last
	 * answer the sender read (router: the answer's new token), ret_inst =
	 * (router) the sending instance.  An answer names no buffer.
	 */
	SPRY_DF_MAIL	= 1 << 7,
};

/* Fan-out branches one instance may have out at once (router-enforced). */
#define SPRY_FAN_MAX		64
/* Fan-out branches out at once, all instances together (SPRY_MAP_FANREC). */
#define SPRY_FAN_RECS		65536

/* Mailbox bounds (docs/PROCESS.md, "Mailboxes"). */
#define SPRY_MAIL_BOXES		16	/* mailboxes per process: hop 0..15 */
#define SPRY_MAIL_OUT_MAX	64	/* a sender's mails not yet answered, plus
					 * answers delivered it has not shown read */
/* Pool tag of a mail buffer: the receiving process's id with bit 63 set. */
#define SPRY_MAIL_TAG(pid)	((__u64)(pid) | (1ULL << 63))

enum spry_status {
	SPRY_ST_OK		= 0,
	SPRY_ST_NO_INSTANCE	= 1,	/* no live instance of the next function */
	SPRY_ST_NO_CHAIN	= 2,	/* chain removed or inactive */
	SPRY_ST_FN_ERROR	= 3,	/* a handler failed */
	SPRY_ST_NO_CALLER	= 4,	/* reply's caller is gone */
	SPRY_ST_BAD_DESC	= 5,	/* a runtime refused the descriptor */
	SPRY_ST_TOO_BIG		= 6,	/* response does not fit any buffer */
	SPRY_ST_NO_PROCESS	= 7,	/* the named process is not active (or none) */
	/* Workflows (docs/WORKFLOWS.md). */
	SPRY_ST_NEXT_REFUSED	= 8,	/* DF_NEXT named a function not allowed there */
	SPRY_ST_FAN_LIMIT	= 9,	/* SPRY_FAN_MAX branches already out */
	SPRY_ST_MAILBOX_FULL	= 10,	/* a mail's answer: the mailbox is full */
	SPRY_ST_CALLEE_GONE	= 11,	/* a branch's callee died holding it
					 * (spryd answers for it, ABI 7) */
	SPRY_ST_MAX,
};

/* Key of SPRY_MAP_SOCKS: one socket per function instance. */
struct spry_inst_key {
	__u16	fn;
	__u16	inst;
};
_Static_assert(sizeof(struct spry_inst_key) == 4, "spry_inst_key size");

enum spry_role {
	SPRY_ROLE_NONE		= 0,
	SPRY_ROLE_ORIGIN	= 1,	/* spryd: starts requests, receives ends */
	SPRY_ROLE_FN		= 2,	/* a function instance */
};

enum spry_sender_flags {
	SPRY_SF_QUARANTINED	= 1 << 0,	/* dropped on purpose; sends fail */
};

/* Value of SPRY_MAP_SENDERS (socket local storage, set by spryd by fd). */
struct spry_sender {
	__u16	chain;		/* 0 for origins (any chain) */
	__u16	fn;
	__u16	inst;
	__u8	role;		/* enum spry_role */
	__u8	flags;		/* SPRY_SF_* (router sets QUARANTINED) */
};
_Static_assert(sizeof(struct spry_sender) == 8, "spry_sender size");

enum spry_chain_flags {
	SPRY_CF_ACTIVE		= 1 << 0,
	SPRY_CF_NO_HTTP		= 1 << 1,	/* spryd's HTTP front: 404, as if absent */
	SPRY_CF_APP		= 1 << 2,	/* an app: its instances are processes
						 * (docs/PROCESS.md), a sticky key names one */
};

/* Value of SPRY_MAP_CHAINS, indexed by chain id. */
struct spry_chain {
	__u32	flags;		/* SPRY_CF_* */
	__u32	uid;		/* user the chain's functions run as */
	__u64	pool_size;	/* bytes in the chain's pool (bounds checks) */
	__u32	buf_size;	/* bytes per pool buffer */
	__u32	n_bufs;		/* buffers in the pool */
	__u32	max_inflight;	/* requests in flight at once (origin bound) */
	__u32	deadline_ms;	/* request deadline (origin) */
	__u8	n_hops;
	__u8	n_invoke_uids;	/* invoke_uids[0..n) */
	__u8	n_invoke_gids;	/* invoke_gids[0..n) */
	__u8	pad[5];
	__u16	hops[SPRY_MAX_HOPS];	/* fn ids, in order */
	char	name[SPRY_NAME_LEN];
	/* CPUs the chain's instances run on (bit i: CPU i); none set: any */
	__u64	cpus[SPRY_CPU_WORDS];
	/*
	 * Who may invoke the chain through spryd's control socket (INVOKE),
	 * besides root: a peer whose SO_PEERCRED uid is one of invoke_uids,
	 * or whose gid or a supplementary group (SO_PEERGROUPS) is one of
	 * invoke_gids.  The router never reads these.
	 */
	__u32	invoke_uids[SPRY_MAX_INVOKERS];
	__u32	invoke_gids[SPRY_MAX_INVOKERS];
};
_Static_assert(sizeof(struct spry_chain) == 200, "spry_chain size");

enum spry_fn_flags {
	SPRY_FF_ACTIVE		= 1 << 0,
	SPRY_FF_IDEMPOTENT	= 1 << 1,	/* may be retried on another instance */
};

/* Value of SPRY_MAP_FNS, indexed by fn id (0 describes the origins). */
struct spry_fn {
	__u32	flags;		/* SPRY_FF_* */
	__u16	chain;		/* chain the function belongs to */
	__u16	n_inst;		/* live instances: inst[0..n_inst) */
	__u16	inst[SPRY_MAX_INST];
	char	name[SPRY_NAME_LEN];
};
_Static_assert(sizeof(struct spry_fn) == 104, "spry_fn size");

/*
 * Key of SPRY_MAP_AUTH: chain's function @from may hand to @to (0 = origin)
 * in the way @kind says (enum spry_auth_kind).
 */
struct spry_auth_key {
	__u16	chain;
	__u16	from;
	__u16	to;
	__u16	kind;		/* enum spry_auth_kind */
};
_Static_assert(sizeof(struct spry_auth_key) == 8, "spry_auth_key size");

enum spry_auth_kind {
	SPRY_AK_HANDOFF		= 0,	/* next hop, call, reply */
	SPRY_AK_NEXT		= 1,	/* a conditional next (SPRY_DF_NEXT):
					 * @to is a later hop of the chain */
	SPRY_AK_APP_NEXT	= 2,	/* a conditional next inside an app
					 * (SPRY_CF_APP): @from and @to are
					 * handler numbers (1 + index in the
					 * app's fns), not fn ids */
};

enum spry_inst_flags {
	SPRY_IF_LIVE		= 1 << 0,
	SPRY_IF_QUARANTINED	= 1 << 1,
	SPRY_IF_UNHEALTHY	= 1 << 2,	/* set by spryd (missed deadlines) */
};

/*
 * Value of SPRY_MAP_INST, indexed by fn * SPRY_MAX_INST + inst.
 *
 * The mail_* counts are the mailboxes' own (docs/PROCESS.md, "Mailboxes"):
 * mails never touch inflight, which the flood bound, the autoscaler and
 * idle swaps read.  A sender may have mail_out + mail_unread <
 * SPRY_MAIL_OUT_MAX (else DROP_FLOOD): mail_out mails not answered yet,
 * mail_unread answers delivered to it since it last showed the token of
 * the latest one (mail_tok) in a mail, i.e. since it last proved it read
 * them, so what waits unread in either socket stays bounded.  A receiver
 * may answer only mails it was given (mail_in, and mail_from[i] of them
 * from instance i).  spryd zeroes them with the slot, and answers for a
 * receiver that died with mails unanswered.
 */
struct spry_inst_state {
	__s32	inflight;	/* (router) delivered minus sent on */
	__u32	flags;		/* SPRY_IF_* */
	__u64	cookie;		/* socket cookie (SO_COOKIE), for display */
	__u32	pid;		/* registering process, from SO_PEERCRED */
	__u32	uid;
	__u64	proc_id;	/* (spryd) the cloud process it runs; 0: none */
	__u8	pad[32];	/* the mail counts on a line of their own (ABI 6) */
	/* 64: written by other processes' sends and answers */
	__u32	mail_out;	/* (router) its mails delivered, not answered */
	__u32	mail_unread;	/* (router) answers delivered since its last proof */
	__u32	mail_tok;	/* (router) token of the last answer delivered */
	__u32	mail_in;	/* (router) mails delivered to it, not answered */
	__u32	mail_from[SPRY_MAX_INST];	/* (router) of mail_in, by sender */
	__u8	pad2[48];	/* to a whole number of cache lines */
};
_Static_assert(sizeof(struct spry_inst_state) == 256, "spry_inst_state size");
/* inflight and the mail counts are written by different senders at once */
_Static_assert(__builtin_offsetof(struct spry_inst_state, mail_out) == 64,
	       "spry_inst_state: mail counts on their own cache line");

/* Value of SPRY_MAP_REQLOC, indexed by req_id & (SPRY_REQ_SLOTS - 1). */
struct spry_reqloc {
	__u64	req_id;
	__u16	fn;
	__u16	inst;
	__u8	hop;
	__u8	handler;	/* app: the handler number of its last plain
				 * delivery (desc.fn), SPRY_RL_CALLEE set
				 * while a callee holds it (router) */
	__u8	pad[2];
};
_Static_assert(sizeof(struct spry_reqloc) == 16, "spry_reqloc size");
#define SPRY_RL_CALLEE		0x80	/* spry_reqloc.handler: held by a callee */

/* Value of SPRY_MAP_FN_STATS (per CPU), indexed by fn id. */
struct spry_fn_stats {
	__u64	delivered;	/* descriptors redirected into the fn */
	__u64	sent;		/* descriptors the fn sent on */
	__u64	errors;		/* error statuses the fn sent */
	__u64	dropped;	/* descriptors from the fn that were dropped */
};
_Static_assert(sizeof(struct spry_fn_stats) == 32, "spry_fn_stats size");

/*
 * Cloud processes (docs/PROCESS.md).  An app is a chain flagged
 * SPRY_CF_APP whose one hop's instances are its processes; a request with
 * SPRY_DF_STICKY names a process by desc.key and the router delivers it to
 * that process's instance and no other.  spryd keeps SPRY_MAP_PROCS: an
 * entry while the process exists, SPRY_PF_ACTIVE while its OS process is
 * registered at instance @inst.  Missing or not active: the descriptor goes
 * back to the origin with SPRY_ST_NO_PROCESS (spryd wakes it, or answers
 * 404), never to another process.
 */
struct spry_proc_key {
	__u16	chain;		/* the app's chain id */
	__u16	pad;
	__u32	pad2;
	__u64	id;		/* process id (1..2^63-1) */
};
_Static_assert(sizeof(struct spry_proc_key) == 16, "spry_proc_key size");

enum spry_proc_flags {
	SPRY_PF_ACTIVE		= 1 << 0,	/* registered: route to inst */
};

struct spry_proc {
	__u32	flags;		/* SPRY_PF_* */
	__u16	inst;		/* instance of the app's function */
	__u16	pad;
};
_Static_assert(sizeof(struct spry_proc) == 8, "spry_proc size");

/*
 * Fan-out branches out (docs/WORKFLOWS.md, "Fan-out and fan-in"): the
 * router records each branch it delivers, by its caller, request and tag
 * (desc.t_start), with the callee instance that holds it, and deletes the
 * record when the branch is answered (or bounced).  When an instance goes,
 * spryd answers every branch it held (SPRY_ST_CALLEE_GONE, from its origin
 * socket): the router takes such an answer only while the record says
 * that callee still holds the branch, so the caller gets exactly one
 * answer per branch and its SPRY_FAN_MAX budget back.
 */
struct spry_fan_key {
	__u16	fn;		/* the caller */
	__u16	inst;
	__u32	pad;
	__u64	req_id;
	__u64	tag;		/* desc.t_start of the branch */
};
_Static_assert(sizeof(struct spry_fan_key) == 24, "spry_fan_key size");

#define SPRY_FAN_NONE		0xffff	/* spry_fan_rec: not delivered yet */

struct spry_fan_rec {
	__u16	fn;		/* the callee instance holding the branch */
	__u16	inst;
	__u32	pad;
};
_Static_assert(sizeof(struct spry_fan_rec) == 8, "spry_fan_rec size");

/*
 * A cloud process cloned from its app's template (docs/PROCESS.md,
 * "Started from the template"): the body of the template's FORK, what an
 * exec'd process finds in its environment.  This header, then three
 * strings, each NUL-terminated and exactly as long as its length says:
 * the state path (absolute), the swap directory (absolute; swap_len 0:
 * none) and the app's functions (F1,F2,..., declared order).  Decoded and
 * checked in one place: spry_tmpl_proc__decode() (fn-runtime/tmpl_proc.h).
 */
#define SPRY_TMPL_PROC_PATH_MAX	4096	/* state path, NUL included */
#define SPRY_TMPL_PROC_SWAP_MAX	512	/* swap directory, NUL included */
#define SPRY_TMPL_PROC_MAX_FNS	32	/* functions an app hosts */
#define SPRY_TMPL_PROC_FNS_MAX	(SPRY_TMPL_PROC_MAX_FNS * SPRY_NAME_LEN)

struct spry_tmpl_proc {
	__u64	id;		/* process id, 1..2^63-1 */
	__u64	state_size;	/* SPRY_STATE_SIZE: 0 (open only) or bytes */
	__u16	path_len;	/* 2..SPRY_TMPL_PROC_PATH_MAX */
	__u16	swap_len;	/* 0 or 2..SPRY_TMPL_PROC_SWAP_MAX */
	__u16	fns_len;	/* 2..SPRY_TMPL_PROC_FNS_MAX */
	__u16	pad;		/* 0 */
	char	app[SPRY_NAME_LEN];	/* the app (its chain), zero after its NUL */
};
_Static_assert(sizeof(struct spry_tmpl_proc) == 56, "spry_tmpl_proc size");

/* A template's READY body: what it can do (SPRY_TMPL_CAN_*). */
enum spry_tmpl_caps {
	SPRY_TMPL_CAN_PROC	= 1 << 0,	/* FORK with a struct spry_tmpl_proc */
};

struct spry_tmpl_ready {
	__u32	caps;		/* SPRY_TMPL_CAN_* */
	__u32	pad;
};
_Static_assert(sizeof(struct spry_tmpl_ready) == 8, "spry_tmpl_ready size");

/* Router verdicts: indexes of SPRY_MAP_VERDICTS. */
enum spry_verdict {
	SPRY_V_FORWARD = 0,	/* to the next hop */
	SPRY_V_CALL,		/* to a callee */
	SPRY_V_REPLY,		/* callee's reply to its caller */
	SPRY_V_DONE,		/* last hop done: to the origin */
	SPRY_V_ERROR,		/* error status: to the origin */
	SPRY_V_NO_INSTANCE,	/* recoverable: no live instance, to origin */
	SPRY_V_NO_CHAIN,	/* recoverable: chain gone, to origin */
	SPRY_V_NO_CALLER,	/* recoverable: caller gone, to origin */
	SPRY_V_NO_PROCESS,	/* recoverable: the named process is not active */
	SPRY_V_FALLBACK,	/* origin unreachable: passed to spryd's peer */
	/* Workflows (docs/WORKFLOWS.md). */
	SPRY_V_NEXT,		/* a conditional next, to the function picked */
	SPRY_V_NEXT_REFUSED,	/* recoverable: next not allowed, to origin */
	SPRY_V_FAN_REFUSED,	/* recoverable: fan-out bound, back to the caller */
	SPRY_V_MAIL,		/* a mail to the named process */
	SPRY_V_MAIL_ANSWER,	/* a mail's answer to its sender (accepted) */
	SPRY_V_MAIL_FULL,	/* a mail's answer: refused, its mailbox full */
	SPRY_V_MAIL_BOUNCE,	/* a mail whose process is not active: back */
	SPRY_V_MAIL_ORPHAN,	/* an answer whose sender is gone: to spryd */
	SPRY_V_FAN_GONE,	/* spryd's answer for a dead callee's branch (ABI 7) */
	SPRY_V_FAN_ORPHAN,	/* such an answer already answered, or its
				 * caller gone: back to spryd */
	SPRY_V_DROP_SHORT,	/* fewer bytes than a descriptor */
	SPRY_V_DROP_VERSION,	/* bad version or flags */
	SPRY_V_DROP_SENDER,	/* socket not registered */
	SPRY_V_DROP_CHAIN,	/* descriptor names another chain */
	SPRY_V_DROP_HOP,	/* hop not the sender's, or callee mismatch */
	SPRY_V_DROP_AUTH,	/* hand-off not authorized */
	SPRY_V_DROP_BOUNDS,	/* offset/length outside the pool */
	SPRY_V_DROP_FLOOD,	/* fn sent more descriptors than it was given */
	SPRY_V_MAX,
};
#define SPRY_V_FIRST_DROP	SPRY_V_DROP_SHORT

/* Record in SPRY_MAP_EVENTS: a sender was quarantined. */
struct spry_event {
	__u64	ts_ns;		/* bpf_ktime_get_ns() */
	__u64	req_id;		/* from the offending descriptor */
	__u32	verdict;	/* enum spry_verdict (a drop) */
	__u16	chain;		/* sender's chain */
	__u16	fn;		/* sender's fn */
	__u16	inst;		/* sender's instance */
	__u16	desc_chain;	/* chain named by the descriptor */
	__u8	hop;		/* hop named by the descriptor */
	__u8	pad[3];
};
_Static_assert(sizeof(struct spry_event) == 32, "spry_event size");


/* ------------------------------------------------------------------------
 * XDP ingress (bpf/xdp_ingress.c): the gateway's packet filter and its
 * datagram request path.
 * ------------------------------------------------------------------------ */

/*
 * Datagram requests.  A client sends one request per UDP datagram to the
 * gateway's datagram port: a struct spry_dgram_hdr, then exactly hdr.len
 * payload bytes (the UDP payload is sizeof(hdr) + len bytes).  Requests
 * spanning several datagrams are out of scope, and so is a fragmented IP
 * datagram: a request must fit one unfragmented packet.  The answer comes
 * back from the gateway's port to the client's with the same header:
 * SPRY_DGF_RESPONSE set, the client's chain and req_id echoed, status an
 * enum spry_status, then len bytes of response payload.
 *
 * Multi-byte fields are in network order except req_id, which is opaque:
 * the gateway echoes its 8 bytes as they came.  In a request flags, status
 * and pad are zero and chain is 1..SPRY_MAX_CHAINS-1; anything else is
 * dropped by XDP (SPRY_XV_DROP_BAD_DGRAM) before any process sees it.
 */
#define SPRY_DGRAM_MAGIC	0x53505251	/* "SPRQ"; on the wire htonl() */
#define SPRY_DGRAM_VERSION	1

enum spry_dgram_flags {
	SPRY_DGF_RESPONSE	= 1 << 0,	/* gateway -> client */
};

struct spry_dgram_hdr {
	__be32	magic;		/* SPRY_DGRAM_MAGIC */
	__u8	version;	/* SPRY_DGRAM_VERSION */
	__u8	flags;		/* SPRY_DGF_*: 0 in a request */
	__be16	chain;		/* chain id */
	__u64	req_id;		/* client-chosen, echoed verbatim */
	__u8	status;		/* response: enum spry_status; request: 0 */
	__u8	pad[3];		/* zero */
	__be32	len;		/* payload bytes after this header */
};
_Static_assert(sizeof(struct spry_dgram_hdr) == 24, "spry_dgram_hdr size");

#define SPRY_XSK_MAX_QUEUES	64	/* RX queues the gateway can bind */
#define SPRY_XLISTEN_MAX	256	/* listener entries */
#define SPRY_XPOL_MAX		16384	/* policy prefixes per family */

/* XDP map names (BPF identifiers and pin names, like the router's). */
#define SPRY_MAP_XLISTEN	spry_xlisten	/* HASH xlisten_key -> xlisten */
#define SPRY_MAP_XPOL4		spry_xpol4	/* LPM_TRIE xpol4_key -> xpol */
#define SPRY_MAP_XPOL6		spry_xpol6	/* LPM_TRIE xpol6_key -> xpol */
#define SPRY_MAP_XVERDICTS	spry_xverdicts	/* PERCPU_ARRAY xverdict -> u64 */
#define SPRY_MAP_XCHAIN		spry_xchain	/* PERCPU_ARRAY chain -> xchain_stats */
#define SPRY_MAP_XSKS		spry_xsks	/* XSKMAP rx queue -> AF_XDP socket */

#define SPRY_PROG_XDP		"xdp_ingress"	/* pin name of the XDP program */

/*
 * Key of SPRY_MAP_XLISTEN: a gateway port.  Traffic to ports that are not
 * in the map is none of spry's business and passes untouched.
 */
struct spry_xlisten_key {
	__be16	port;		/* destination port, network order */
	__u8	proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8	pad;		/* zero */
};
_Static_assert(sizeof(struct spry_xlisten_key) == 4, "spry_xlisten_key size");

enum spry_xlisten_flags {
	/* Sources must match an allow rule in spry_xpol4/6 for the port. */
	SPRY_XLF_PROTECTED	= 1 << 0,
	/*
	 * UDP only: the datagram request port.  Valid requests go to the
	 * AF_XDP socket of their RX queue (spry_xsks), never to the kernel.
	 * Ignored on a TCP listener.
	 */
	SPRY_XLF_DATAGRAM	= 1 << 1,
};

/* Value of SPRY_MAP_XLISTEN. */
struct spry_xlisten {
	__u32	flags;		/* SPRY_XLF_* */
};
_Static_assert(sizeof(struct spry_xlisten) == 4, "spry_xlisten size");

/*
 * Keys of the ingress policy tries: a source prefix scoped to a gateway
 * port.  prefixlen counts the port and pad bits too: 32 + the address
 * prefix length (so 32..64 for IPv4, 32..160 for IPv6); port and pad are
 * always matched exactly.  The XDP program looks up prefixlen 64 (160)
 * with the packet's source address.  A rule applies to the port whatever
 * the protocol (a UDP and a TCP listener on one port share rules).
 */
struct spry_xpol4_key {
	__u32	prefixlen;	/* 32 + IPv4 prefix length */
	__be16	port;		/* gateway port, network order */
	__u16	pad;		/* zero */
	__u8	addr[4];	/* source prefix, network order */
};
_Static_assert(sizeof(struct spry_xpol4_key) == 12, "spry_xpol4_key size");

struct spry_xpol6_key {
	__u32	prefixlen;	/* 32 + IPv6 prefix length */
	__be16	port;
	__u16	pad;
	__u8	addr[16];
};
_Static_assert(sizeof(struct spry_xpol6_key) == 24, "spry_xpol6_key size");

#define SPRY_XPOL_PORT_BITS	32	/* bits of port + pad in prefixlen */

enum spry_xpol_action {
	SPRY_XPA_DENY		= 0,
	SPRY_XPA_ALLOW		= 1,
};

/*
 * Value of SPRY_MAP_XPOL4/6: what the longest matching prefix says.  An
 * action other than ALLOW drops (the filter fails closed).  Like every map
 * value here, host order.
 */
struct spry_xpol {
	__u8	action;		/* enum spry_xpol_action */
	__u8	pad;		/* zero */
	__u16	chain;		/* datagram port: only this chain; 0 = any */
};
_Static_assert(sizeof(struct spry_xpol) == 4, "spry_xpol size");

/* XDP verdicts: indexes of SPRY_MAP_XVERDICTS (one count per packet). */
enum spry_xverdict {
	SPRY_XV_PASS_NOT_IP = 0,	/* not IPv4/IPv6 (ARP, LLDP, ...) */
	SPRY_XV_PASS_PROTO,		/* IP but neither TCP nor UDP */
	SPRY_XV_PASS_OTHER_PORT,	/* TCP/UDP to a port that is no listener */
	SPRY_XV_PASS_FRAG,		/* non-first fragment: no L4 header */
	SPRY_XV_ALLOW,			/* allowed to a listener: kernel stack */
	SPRY_XV_REDIRECT_XSK,		/* datagram request to the AF_XDP socket */
	SPRY_XV_DROP_POLICY,		/* protected port, no rule for the source */
	SPRY_XV_DROP_DENY,		/* protected port, a deny rule matched */
	SPRY_XV_DROP_CHAIN,		/* rule allows another chain only */
	SPRY_XV_DROP_MALFORMED,		/* truncated or inconsistent headers */
	SPRY_XV_DROP_BAD_DGRAM,		/* datagram port: not a valid request */
	SPRY_XV_DROP_NO_XSK,		/* no AF_XDP socket on the RX queue */
	SPRY_XV_MAX,
};
#define SPRY_XV_FIRST_DROP	SPRY_XV_DROP_POLICY

/*
 * Value of SPRY_MAP_XCHAIN (per CPU), indexed by the chain a valid
 * datagram request names.  packets/bytes: requests redirected to the
 * gateway (bytes = UDP payload, header included); dropped: valid requests
 * from an allowed source that a chain-scoped rule refused or that found no
 * socket.  Requests refused by the source policy are not attributed.
 */
struct spry_xchain_stats {
	__u64	packets;
	__u64	bytes;
	__u64	dropped;
};
_Static_assert(sizeof(struct spry_xchain_stats) == 24, "spry_xchain_stats size");

#endif /* SPRY_ABI_H */
