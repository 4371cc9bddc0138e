/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's shared state: the records every room keeps in struct spryd
 * (control connections, instances, origins, requests, chains, counters).
 * Types only: each room's functions are declared in its own header
 * (loop.h, front.h, ctl.h, registrar.h, origin.h, entry.h, gateway.h,
 * dgram.h, xsk.h, metrics.h, privs.h, daemon.h; the rooms: docs/DESIGN.md,
 * "spryd's rooms").  Single-threaded: everything runs on the loop's thread.
 */
#ifndef SPRYD_SPRYD_H
#define SPRYD_SPRYD_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "lib/app.h"
#include "lib/core.h"
#include "fn-runtime/proto.h"
#include "spry/spry.h"
#include "spryd/front.h"
#include "spryd/loop.h"
#include "spryd/origin.h"

/* Bounds against hostile or runaway local clients. */
#define SPRYD_MAX_CONNS		1024		/* control connections */
#define SPRYD_MAX_PENDING	1024		/* accepted B's awaiting REGISTER */
#define SPRYD_PENDING_TTL_NS	(5ULL * 1000000000ULL)
#define SPRYD_CONN_MAX_INST	64		/* registrations per connection */
#define SPRYD_CONN_MAX_REQS	4096		/* requests in flight per connection */
#define SPRYD_CONN_OUTQ_MAX	(8u << 20)	/* queued reply bytes per connection */
#define SPRYD_ZOMBIE_TTL_NS	(60ULL * 1000000000ULL)	/* timed-out request kept */
#define SPRYD_MAX_ORIGINS	SPRY_MAX_INST
#define SPRYD_SEND_BATCH	64		/* descriptors per send() */
#define SPRYD_RX_BYTES		(64 * 1024)	/* descriptor stream read size */
#define SPRYD_NS_PER_MS		1000000ULL

#define SPRYD_NIL		UINT32_MAX
/* Tag of a request's input copy (never a request id: seq < 2^47). */
#define SPRYD_COPY_TAG		(1ULL << 63)
#define SPRYD_IDEM_AGE_NS	(1000ULL * 1000000ULL)	/* idem_hops refresh */

/* A byte stream of 64-byte descriptors: the bytes of a partial one. */
struct spryd_stream {
	uint8_t		rem[sizeof(struct spry_desc)];
	uint32_t	rem_len;
};

/* A reply that could not be sent at once (the client is not reading). */
struct spryd_outmsg {
	struct spryd_outmsg	*next;
	int			fd;		/* fd to pass, -1 none */
	uint32_t		len;
	uint8_t			data[];
};

struct spryd_conn {
	struct spryd_ep		ep;
	uint32_t		gen;		/* bumped on close: stale request owners */
	bool			used;
	bool			closing;	/* queued for close at a safe point */
	bool			want_out;	/* EPOLLOUT armed */
	struct ucred		cred;		/* SO_PEERCRED at accept */
	uint32_t		refusal_logged;	/* gen + 1 once an INVOKE refusal
						 * of this connection was logged */
	uint32_t		n_reqs;
	uint32_t		n_inst;
	uint32_t		inst[SPRYD_CONN_MAX_INST];	/* indexes in d->insts */
	struct spryd_outmsg	*outq;
	struct spryd_outmsg	**outq_tail;
	uint64_t		outq_bytes;
};

/*
 * What starts a declared function's instance (spawn.c: spawner__new) and
 * its template (template.c: tmpl__start).
 */
struct spawn_fn {
	const char		*chain, *fn;
	char *const		*argv;		/* argv[0] = exec path, NULL-terminated */
	uid_t			uid;
	gid_t			gid;
	const cpu_set_t		*cpus;		/* NULL: any */
	bool			use_template;
};

/* An accepted TCP connection (B) waiting for its REGISTER. */
struct spryd_pending {
	struct spryd_ep		ep;
	struct sockaddr_in	peer;		/* = the function's A local address */
	uint64_t		t_ns;
};

/* A registered function instance; index fn * SPRY_MAX_INST + inst. */
struct spryd_inst {
	struct spryd_ep		ep;		/* B */
	bool			used;
	uint16_t		chain;
	uint16_t		fn;
	uint16_t		idx;
	uint32_t		conn;		/* control connection index */
	uint32_t		pid;
	uint32_t		uid;
	uint64_t		cookie;
	uint64_t		reg_ns;
	bool			draining;	/* out of spry_fns (supervisor.c
						 * stops it once idle) */
	uint64_t		last_ns;	/* an app's process: its last answer */
	char			name[SPRY_NAME_LEN];	/* function name, for logs */
	struct spryd_stream	in;
};

struct spryd_origin {
	struct spryd_ep		o;		/* registered end: sends and receives */
	struct spryd_ep		peer;		/* O': FALLBACK data lands here */
	struct spryd_stream	o_in;
	struct spryd_stream	peer_in;
	uint64_t		cookie;
	bool			want_out;
	bool			broken;
	bool			tx_busy;	/* a batch is in the engine */
	bool			reset_due;	/* reset once that batch ended */
	struct spryd_origin_tx	*tx;		/* that batch (origin.c) */
};

/* A batch of descriptors an origin's engine sends (origin.h). */
struct spryd_origin_tx {
	struct spry_desc	descs[SPRYD_SEND_BATCH];
	uint64_t		ids[SPRYD_SEND_BATCH];
	unsigned int		cnt;
};

enum spryd_req_state {
	REQ_FREE = 0,
	REQ_QUEUED,	/* waiting in the send queue: nobody has it */
	REQ_SENT,	/* on its way through the chain */
	REQ_ZOMBIE,	/* answered (deadline); buffer held until it returns */
	REQ_PREP,	/* slot and buffer taken, being filled (entry_prepare) */
	REQ_HELD,	/* held at the origin until its chain's declared
			 * functions have instances (activation) */
};

enum spryd_req_list {
	RL_NONE = 0,
	RL_LIVE,
	RL_ZOMBIE,
};

struct spryd_req {
	uint64_t		req_id;		/* (seq << 16) | slot; 0 = free */
	uint64_t		t_start;
	uint64_t		deadline;	/* answer by (live), reap at (zombie);
						 * deadline in ms while REQ_PREP */
	uint32_t		conn;		/* owner's cookie: its connection */
	uint32_t		conn_gen;	/* (or slot) index and generation */
	uint32_t		prev;
	uint32_t		next;
	uint16_t		chain;
	uint8_t			state;		/* enum spryd_req_state */
	uint8_t			list;		/* enum spryd_req_list */
	uint8_t			owner;		/* front id (front.h) that started it */
	uint8_t			retried;	/* resubmitted once (idempotent hops) */
	uint8_t			hold;		/* counts in its chain's n_held
						 * (from entry_prepare) */
	uint8_t			tx_origin;	/* 1 + the origin whose engine has
						 * its descriptor (origin.h): maybe
						 * not sent; 0: none */
	uint8_t			proc_wait;	/* held for an app's process
						 * (desc.key; 0: any), counts in
						 * its chain's n_proc_wait */
	struct spry_desc	desc;		/* as sent */
	struct spry_buf		copy;		/* the input, kept for a retry
						 * (cap 0: none); tag req_id |
						 * SPRYD_COPY_TAG */
};

struct spryd_list {
	uint32_t	head;
	uint32_t	tail;
};

/* Per chain id: its pool and its requests. */
struct spryd_chain {
	bool			known;		/* name/geometry below are valid */
	char			name[SPRY_NAME_LEN];
	uint32_t		uid;
	uint32_t		buf_size;	/* geometry the pool was made for */
	uint32_t		n_bufs;
	struct spry_pool	*pool;
	uint64_t		pool_size;
	uint32_t		inflight;	/* live + zombie requests */
	uint32_t		n_inst;		/* registered instances */
	uint32_t		held;		/* buffers the HTTP front holds
						 * after completion (responses
						 * being written): pool stays */
	bool			stale_logged;
	uint8_t			idem_hops;	/* leading hops that are idempotent */
	uint64_t		idem_ns;	/* when idem_hops was read */
	uint32_t		n_reserved;	/* reserved buffers (a front's AF_XDP UMEM),
						 * set before the pool is made */
	uint64_t		invoke_refused;	/* INVOKEs the chain's invoke
						 * lists refused (invoke_check) */
	char			refused_name[SPRY_NAME_LEN];	/* the chain they named */
	/*
	 * Activation (supervisor.c sets these for a chain with declared
	 * functions): while one of managed[] has no routable instance, new
	 * requests are held (REQ_HELD, in the live list: arrival order), at
	 * most hold_max of them (more: -EBUSY at entry_prepare, a 503).
	 */
	uint32_t		n_managed;
	uint16_t		managed[SPRY_MAX_HOPS * 2];
	uint32_t		hold_max;
	uint32_t		n_held;		/* held + reserved by entry_prepare */
	uint64_t		held_total;	/* requests ever held */
	uint64_t		hold_refused;	/* refused: queue full */
	uint64_t		hold_failed;	/* answered -EAGAIN: start failed */
	/*
	 * An app's chain (SPRY_CF_APP; process.c sets these): its
	 * declaration (the functions requests may name) and its function's
	 * id.  Requests for a process that is not active are held
	 * (REQ_HELD, proc_wait) until process.c wakes it or answers 404.
	 */
	const struct spry_app_decl *app;
	uint16_t		app_fn;
	uint64_t		app_proc[SPRY_MAX_INST];	/* process id of each
						 * active instance (0: none) */
	uint32_t		n_proc_wait;
	struct spryd_list	live;		/* by deadline (start order) */
	struct spryd_list	zombie;		/* by reap time */
};

struct spryd_stats {
	uint64_t	invoked;
	uint64_t	completed;
	uint64_t	refused;
	uint64_t	timed_out;
	uint64_t	reset;
	uint64_t	late;
	uint64_t	unknown;
	uint64_t	reaped;
	uint64_t	registered;
	uint64_t	reg_refused;
	uint64_t	died;
	uint64_t	quarantines;
	uint64_t	conns_refused;
	uint64_t	send_errors;
	uint64_t	send_batches;	/* origins' descriptor batches by send() */
	uint64_t	ring_batches;	/* by the origins' engine (a ring) */
	uint64_t	retried;	/* resubmitted after an instance died */
	uint64_t	mail_given_back;	/* mails answered for a dead receiver */
	uint64_t	mail_reclaimed;	/* mail buffers freed for a dead receiver */
	uint64_t	mail_orphans;	/* mail answers whose sender was gone */
	uint64_t	fan_given_back;	/* branches answered for a dead callee */
	uint64_t	fan_orphans;	/* such answers the router sent back */
};

/*
 * Requests resubmitted after the instance of a function holding them died
 * (entry.c's retry()), per function id: /metrics'
 * spry_request_retries_total{chain,fn}.  The names are those at the
 * retry (a reused id starts again from zero).
 */
struct spryd_retries {
	char		chain[SPRY_NAME_LEN];
	char		fn[SPRY_NAME_LEN];
	uint64_t	n;
};

/* HTTP front options (gateway.c); timeouts in ns. */
struct spryd_http_opts {
	const char		*addr;		/* "ADDR:PORT", NULL: none */
	bool			addr_given;	/* --http given: failing to listen is fatal */
	uint32_t		max_conns;
	size_t			max_line;
	size_t			max_header_bytes;
	size_t			max_headers;
	uint64_t		max_body;
	uint64_t		idle_ns;
	uint64_t		header_ns;
	uint64_t		body_ns;
	uint64_t		write_ns;
	const char		*access_log;	/* NULL off, "-" stderr, else a file */
	bool			uring;		/* --front uring: io_uring engine */
	/*
	 * --sqpoll: the ring's own submission thread (IORING_SETUP_SQPOLL),
	 * on CPU sqpoll_cpu (-1: any); with uring only
	 */
	bool			sqpoll;
	int			sqpoll_cpu;
	uint64_t		body_direct;	/* --body-direct: received into the pool from */
	/*
	 * --desc-send ring (with uring only): the origins' descriptor
	 * batches are operations of the front's ring, submitted with the
	 * iteration's responses (origin.h, engine); false: send()
	 */
	bool			desc_ring;
};

/*
 * --sqpoll: how long the ring's submission thread polls without work
 * before it sleeps (the next submission wakes it with a system call).
 * Its polling is CPU spent while requests come; asleep, spryd at rest
 * uses no CPU, as without it.
 */
#define SPRYD_SQPOLL_IDLE_MS	5

/* Supervisor and autoscaler options (spryd's command line); ns. */
struct spryd_sv_opts {
	const char		*state_dir;	/* NULL: from the pin directory */
	uint64_t		tick_ns;	/* autoscaler period */
	uint64_t		stable_ns;	/* stable window */
	uint64_t		panic_ns;	/* panic window */
	uint64_t		start_timeout_ns;	/* spawn to REGISTER */
	uint64_t		backoff_ns;	/* first restart delay after a failure */
	uint64_t		backoff_max_ns;
	uint64_t		stop_timeout_ns;	/* SIGTERM to SIGKILL */
};

/*
 * A declared function as the supervisor sees it (supervisor.c writes,
 * metrics.c reads): /metrics' spry_fn_* scale series.
 */
struct spryd_fn_scale {
	bool		used;
	char		chain[SPRY_NAME_LEN];
	char		fn[SPRY_NAME_LEN];
	uint32_t	desired, actual, starting, draining;
	uint64_t	starts, failures, crashes, adopted;
	uint64_t	scale_ups, scale_downs;
};
#define SPRYD_SV_MAX_FNS	128

/*
 * An app's processes as /metrics shows them (process.c writes, metrics.c
 * reads): processes per state and every transition counted.
 */
struct spryd_app_pub {
	bool		used;
	char		app[SPRY_NAME_LEN];
	struct spry_ctl_proc_app st;
	uint64_t	cloned;		/* of st.started: cloned by the app's template */
};
#define SPRYD_MAX_APPS	64

/* The process room's hooks into the registrar and the control socket. */
struct spryd_proc_hooks {
	/* an app's instance registering from @pid: 0, or -errno to refuse */
	int	(*reg_check)(struct spryd *d, uint16_t chain, uint32_t pid);
	/* an app's template asking for its pool (TEMPLATE) from @pid: 0 when
	 * it is the template spryd started for the app, else -errno */
	int	(*tmpl_check)(struct spryd *d, uint16_t chain, uint32_t pid);
	/* it registered (in->idx is its instance) */
	void	(*reg_done)(struct spryd *d, struct spryd_inst *in);
	/* an app's instance is gone (socket or control connection closed) */
	void	(*removed)(struct spryd *d, struct spryd_inst *in);
	/* a PROC control message */
	void	(*ctl)(struct spryd *d, struct spryd_conn *c, const void *body,
		       uint32_t len);
};

struct spryd_sv;
struct spryd_gw;
struct spryd_procs;
struct spryd_ctl_handlers;
struct spryd_dg;

struct spryd {
	/* options */
	const char		*pin_dir;
	char			sock_path[108];
	const char		*pool_dir;
	unsigned int		n_origins;
	int			verbose;
	struct spryd_http_opts	http;
	struct spryd_gw		*gw;		/* NULL: no HTTP front */
	struct spryd_dg		*dg;		/* datagram fronts (dgram.c) */
	struct spryd_loop	loop;
	const struct spryd_front_ops *fronts[SPRYD_MAX_FRONTS];	/* by front id */
	unsigned int		n_fronts;

	struct spry_maps	maps;
	struct spry_inst_state	*inst_mem;	/* spry_inst mapped (atomic flag
						 * updates); NULL: not mappable */
	struct spryd_ep		tcp_ep;		/* function listener */
	struct spryd_ep		events_ep;
	struct ring_buffer	*rb;
	struct sockaddr_in	tcp_addr;

	/* ctl.c */
	struct spryd_ep		ctl_ep;		/* control listener */
	int			ctl_front;	/* INVOKE's front id */
	const struct spryd_ctl_handlers *ctl_reg;	/* registrar's messages */
	struct spryd_conn	*conns;		/* SPRYD_MAX_CONNS */
	uint32_t		*conn_free;	/* free conn indexes (stack) */
	uint32_t		n_conn_free;
	uint32_t		*close_list;	/* conns to close at a safe point */
	uint32_t		n_close;

	struct spryd_pending	pending[SPRYD_MAX_PENDING];
	uint32_t		n_pending;

	struct spryd_inst	*insts;		/* SPRY_MAX_FNS * SPRY_MAX_INST */

	struct spryd_origin	origins[SPRYD_MAX_ORIGINS];
	uint32_t		next_origin;
	spryd_origin_engine_fn	origin_engine;	/* NULL: send() (origin.h) */

	struct spryd_req	*reqs;		/* SPRY_REQ_SLOTS */
	uint32_t		*slot_free;	/* free slots (stack) */
	uint32_t		n_slot_free;
	uint64_t		seq;
	uint64_t		*sendq;		/* ring of req_ids to send */
	uint32_t		sendq_head;
	uint32_t		sendq_len;

	struct spryd_chain	chains[SPRY_MAX_CHAINS];

	uint8_t			*rxbuf;		/* control datagrams / streams */
	struct spryd_stats	st;
	struct spryd_retries	*retries;	/* by fn id (SPRY_MAX_FNS) */

	/* registrar.c: instances in each function's spry_fns list */
	uint16_t		*fn_routable;	/* by fn id (SPRY_MAX_FNS) */
	/* supervisor.c (declared functions), NULL: none */
	struct spryd_sv		*sv;
	struct spryd_sv_opts	sv_opts;
	struct spryd_fn_scale	*scale;		/* SPRYD_SV_MAX_FNS */
	/* process.c (apps and their processes), NULL: none */
	struct spryd_procs	*procs;
	const struct spryd_proc_hooks *proc_hooks;
	struct spryd_app_pub	*apps;		/* SPRYD_MAX_APPS */
	uint32_t		n_proc_wait;	/* requests held for processes */
	/*
	 * daemon.c: is @pid a process spryd knows already (an instance, a
	 * cloud process, a template or its spare: every room that starts
	 * some is asked)?  The spawn room asks before it takes the pid a
	 * template names as its clone.  NULL: no room starts any.
	 */
	bool			(*pid_known)(struct spryd *d, pid_t pid);
	bool			rooms_down;	/* shutdown: the process rooms' tables go */
};

#endif /* SPRYD_SPRYD_H */
