/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * spry's shared ABI: every type, constant and name that crosses the
 * BPF/userspace boundary.  Included by the BPF programs (after vmlinux.h)
 * and by userspace (after <linux/types.h>).  BPF-only map definitions live
 * in bpf/maps.bpf.h.
 *
 * Rules: fixed-width types only, explicit padding, a static size assertion
 * on every struct.  Changing a layout means bumping SPRY_ABI_VERSION.
 */
#ifndef SPRY_MAPS_H
#define SPRY_MAPS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define SPRY_ABI_VERSION	1
#define SPRY_DESC_VERSION	1

/* Limits. */
#define SPRY_MAX_CHAINS		256	/* chain ids 1..255; 0 = none */
#define SPRY_MAX_HOPS		16	/* hops per chain */
#define SPRY_MAX_FNS		1024	/* fn ids 1..1023; 0 = the origin (spryd) */
#define SPRY_MAX_INST		32	/* instances per function (and origins) */
#define SPRY_NAME_LEN		32	/* chain and function names, NUL included */
#define SPRY_REQ_SLOTS		65536	/* request location slots (power of two) */
#define SPRY_EVENTS_BYTES	(256 * 1024)

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
	__u16	fn;		/* callee fn id with SPRY_DF_CALL/REPLY */
	__u64	req_id;		/* request id, chosen by the origin */
	__u64	off;		/* buffer offset in the chain's pool */
	__u32	len;		/* payload bytes (after meta_len bytes of metadata) */
	__u32	cap;		/* buffer capacity in bytes */
	__u64	key;		/* routing key (process id for sticky routing) */
	__u16	origin;		/* (router) origin instance that started it */
	__u16	inst;		/* (router) instance it was delivered to */
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
};

enum spry_status {
	SPRY_ST_OK		= 0,
	SPRY_ST_NO_INSTANCE	= 1,	/* no live instance of the next function */
	SPRY_ST_NO_CHAIN	= 2,	/* chain removed or inactive */
	SPRY_ST_FN_ERROR	= 3,	/* a handler failed */
	SPRY_ST_NO_CALLER	= 4,	/* reply's caller is gone */
	SPRY_ST_BAD_DESC	= 5,	/* a runtime refused the descriptor */
	SPRY_ST_TOO_BIG		= 6,	/* response does not fit any buffer */
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
	__u8	pad[7];
	__u16	hops[SPRY_MAX_HOPS];	/* fn ids, in order */
	char	name[SPRY_NAME_LEN];
};
_Static_assert(sizeof(struct spry_chain) == 104, "spry_chain size");

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

/* Key of SPRY_MAP_AUTH: chain's function @from may hand to @to (0 = origin). */
struct spry_auth_key {
	__u16	chain;
	__u16	from;
	__u16	to;
	__u16	pad;
};
_Static_assert(sizeof(struct spry_auth_key) == 8, "spry_auth_key size");

enum spry_inst_flags {
	SPRY_IF_LIVE		= 1 << 0,
	SPRY_IF_QUARANTINED	= 1 << 1,
	SPRY_IF_UNHEALTHY	= 1 << 2,	/* set by spryd (missed deadlines) */
};

/* Value of SPRY_MAP_INST, indexed by fn * SPRY_MAX_INST + inst. */
struct spry_inst_state {
	__s32	inflight;	/* (router) delivered minus sent on */
	__u32	flags;		/* SPRY_IF_* */
	__u64	cookie;		/* socket cookie (SO_COOKIE), for display */
	__u32	pid;		/* registering process, from SO_PEERCRED */
	__u32	uid;
};
_Static_assert(sizeof(struct spry_inst_state) == 24, "spry_inst_state size");

/* Value of SPRY_MAP_REQLOC, indexed by req_id & (SPRY_REQ_SLOTS - 1). */
struct spry_reqloc {
	__u64	req_id;
	__u16	fn;
	__u16	inst;
	__u8	hop;
	__u8	pad[3];
};
_Static_assert(sizeof(struct spry_reqloc) == 16, "spry_reqloc size");

/* Value of SPRY_MAP_FN_STATS (per CPU), indexed by fn id. */
struct spry_fn_stats {
	__u64	delivered;	/* descriptors redirected into the fn */
	__u64	sent;		/* descriptors the fn sent on */
	__u64	errors;		/* error statuses the fn sent */
	__u64	dropped;	/* descriptors from the fn that were dropped */
};
_Static_assert(sizeof(struct spry_fn_stats) == 32, "spry_fn_stats size");

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
	SPRY_V_FALLBACK,	/* origin unreachable: passed to spryd's peer */
	SPRY_V_DROP_SHORT,	/* fewer bytes than a descriptor */
	SPRY_V_DROP_VERSION,	/* bad version or flags */
	SPRY_V_DROP_SENDER,	/* socket not registered */
	SPRY_V_DROP_CHAIN,	/* descriptor names another chain */
	SPRY_V_DROP_HOP,	/* hop not the sender's, or callee mismatch */
	SPRY_V_DROP_AUTH,	/* hand-off not authorized */
	SPRY_V_DROP_BOUNDS,	/* offset/length outside the pool */
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

#endif /* SPRY_MAPS_H */
