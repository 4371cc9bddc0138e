/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The mesh accelerator's ABI (bpf/mesh.c, `spry mesh`, docs/MESH.md): every
 * type, constant and name that crosses the BPF/userspace boundary for the
 * sockmap acceleration of plain local TCP.  Included by bpf/mesh.c (after
 * vmlinux.h) and by loader/mesh.c (after <linux/types.h>).  Independent of
 * the router's bpf/maps.h: the mesh shares no map with it.
 *
 * Rules as in bpf/maps.h: fixed-width types only, explicit padding, a
 * static size assertion on every struct.  Map values are host order.
 */
#ifndef SPRY_MESH_H
#define SPRY_MESH_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define SPRY_MESH_ABI_VERSION	3

/* Limits. */
#define SPRY_MESH_MAX_SOCKS	65536	/* mapped sockets (two per connection) */
#define SPRY_MESH_MAX_PREFIXES	4096	/* address rules per family */
#define SPRY_MESH_MAX_CGROUPS	1024	/* cgroup rules */
#define SPRY_MESH_PORTS		65536	/* one port rule slot per port */
#define SPRY_MESH_CGROUP_DEPTH	16	/* ancestors a cgroup rule is looked up in */
/*
 * Unread redirected bytes a receiver may hold before its peer's direction
 * falls back to TCP (config.max_queued 0 = this).  About what a plain
 * loopback TCP connection lets a stalled reader's peer queue (~4 MiB).
 */
#define SPRY_MESH_DEF_MAX_QUEUED	(4U << 20)

/* One macro per map: the BPF identifier and the pin file name. */
#define SPRY_MAP_MESH_SOCKS	spry_mesh_socks	/* SOCKHASH mesh_key -> socket */
#define SPRY_MAP_MESH_CONN	spry_mesh_conn	/* SK_STORAGE socket -> mesh_conn */
#define SPRY_MAP_MESH_PSOCKS	spry_mesh_psocks /* LRU_HASH mesh_key -> mesh_psock */
#define SPRY_MAP_MESH_RX	spry_mesh_rx	/* LRU_HASH socket cookie -> mesh_rx */
#define SPRY_MAP_MESH_PORTS	spry_mesh_ports	/* ARRAY server port -> mesh_rule */
#define SPRY_MAP_MESH_POL4	spry_mesh_pol4	/* LPM_TRIE mesh_pol4_key -> mesh_rule */
#define SPRY_MAP_MESH_POL6	spry_mesh_pol6	/* LPM_TRIE mesh_pol6_key -> mesh_rule */
#define SPRY_MAP_MESH_CGROUPS	spry_mesh_cgroups /* HASH cgroup id (u64) -> mesh_rule */
#define SPRY_MAP_MESH_CONFIG	spry_mesh_config /* ARRAY 0 -> mesh_config */
#define SPRY_MAP_MESH_STATS	spry_mesh_stats	/* PERCPU_ARRAY mesh_stat -> u64 */

/* Pin names of the programs (and the prefix of the cgroup links). */
#define SPRY_PROG_MESH_SOCKOPS	"mesh_sockops"
#define SPRY_PROG_MESH_MSG	"mesh_msg"
#define SPRY_PROG_MESH_SKB	"mesh_skb"
#define SPRY_MESH_LINK_PREFIX	"mesh_link_"	/* + cgroup id */

/*
 * Key of SPRY_MAP_MESH_SOCKS: one TCP socket by its own view of the
 * connection.  Addresses are IPv6 or IPv4-mapped (::ffff:a.b.c.d), so an
 * AF_INET client and an AF_INET6 dual-stack server agree; the peer of a
 * socket is the key with local and remote swapped.  netns is the network
 * namespace cookie: two namespaces using the same addresses never meet.
 */
struct spry_mesh_key {
	__u64	netns;		/* bpf_get_netns_cookie() */
	__u8	local[16];	/* network order */
	__u8	remote[16];	/* network order */
	__u16	lport;		/* host order */
	__u16	rport;		/* host order */
	__u32	pad;		/* zero */
};
_Static_assert(sizeof(struct spry_mesh_key) == 48, "spry_mesh_key size");

/*
 * What a direction of a connection (the sends of one socket) does, decided
 * at its first send.  REDIRECT may fall back to a TCP mode at any time
 * (redirected data is read before anything that comes by TCP later); only
 * TCP_STALLED goes back to REDIRECT, and only once every byte sent by TCP
 * was read (docs/MESH.md, "Ordering").
 */
enum spry_mesh_mode {
	SPRY_MESH_UNDECIDED	= 0,	/* no send yet */
	SPRY_MESH_REDIRECT	= 1,	/* into the peer's receive queue */
	SPRY_MESH_TCP_NO_PEER	= 2,	/* peer not mapped at the first send */
	SPRY_MESH_TCP_PEER_GONE	= 3,	/* peer left the map (closed) */
	SPRY_MESH_TCP_STALLED	= 4,	/* peer held max_queued unread bytes */
	SPRY_MESH_MODE_MAX,
};

/* Value of SPRY_MAP_MESH_CONN: set at insertion, one per mapped socket. */
struct spry_mesh_conn {
	struct spry_mesh_key peer;	/* the other end's key */
	__u64	redirected;	/* bytes redirected by this socket's sends */
	__u64	passed;		/* bytes passed to TCP */
	__u32	mode;		/* enum spry_mesh_mode */
	__u32	pad;
};
_Static_assert(sizeof(struct spry_mesh_conn) == 72, "spry_mesh_conn size");

/*
 * Value of SPRY_MAP_MESH_PSOCKS: where a mapped socket's receive queue
 * accounting lives, for its peer's SK_MSG program, which cannot look a
 * socket up in the SOCKHASH (it may not release the reference).  Kernel
 * addresses, only ever read with bpf_probe_read_kernel and checked against
 * each other (psock->sk == sk, sk's sk_user_data == psock) before use;
 * removed when the socket closes (sock_ops state callback) or, once the
 * program is detached, evicted (LRU).
 */
struct spry_mesh_psock {
	__u64	psock;		/* struct sk_psock * */
	__u64	sk;		/* struct sock * */
	__u64	cookie;		/* socket cookie: its SPRY_MAP_MESH_RX key */
};
_Static_assert(sizeof(struct spry_mesh_psock) == 24, "spry_mesh_psock size");

/*
 * Value of SPRY_MAP_MESH_RX, by socket cookie: what a mapped socket's TCP
 * stack has handed its psock, as mesh_skb sees it (the SK_SKB verdict runs
 * on every segment before it is queued).  end is the sequence number
 * after the last byte handed over (rcv_nxt at insertion, then each
 * segment's end_seq): every TCP byte the socket ever queued is below it,
 * none twice.  Made at insertion, removed at close.
 */
struct spry_mesh_rx {
	__u32	end;
	__u32	flags;		/* SPRY_MESH_RX_* */
};
_Static_assert(sizeof(struct spry_mesh_rx) == 8, "spry_mesh_rx size");

/*
 * spry_mesh_rx.flags: a segment did not start where the previous
 * one ended (a gap, or an overlap mesh_skb could not trim): what the
 * socket read by TCP no longer matches its sequence numbers, and no
 * direction into it comes back to the redirect.
 */
#define SPRY_MESH_RX_UNORDERED	1U

enum spry_mesh_action {
	SPRY_MESH_NONE		= 0,	/* no rule */
	SPRY_MESH_ALLOW		= 1,
	SPRY_MESH_DENY		= 2,
};

/* Value of the policy maps (ports, prefixes, cgroups). */
struct spry_mesh_rule {
	__u8	action;		/* enum spry_mesh_action */
	__u8	pad[3];
};
_Static_assert(sizeof(struct spry_mesh_rule) == 4, "spry_mesh_rule size");

/* Keys of the address policy tries: the server's address. */
struct spry_mesh_pol4_key {
	__u32	prefixlen;	/* 0..32 */
	__u8	addr[4];	/* network order */
};
_Static_assert(sizeof(struct spry_mesh_pol4_key) == 8, "spry_mesh_pol4_key size");

struct spry_mesh_pol6_key {
	__u32	prefixlen;	/* 0..128 */
	__u8	addr[16];
};
_Static_assert(sizeof(struct spry_mesh_pol6_key) == 20, "spry_mesh_pol6_key size");

/* Value of SPRY_MAP_MESH_CONFIG[0]. */
struct spry_mesh_config {
	__u64	max_queued;	/* unread redirected bytes; 0 = DEF_MAX_QUEUED */
	__u8	def_action;	/* no rule matched: enum spry_mesh_action (NONE = allow) */
	__u8	pad[7];
};
_Static_assert(sizeof(struct spry_mesh_config) == 16, "spry_mesh_config size");

/* Counters: indexes of SPRY_MAP_MESH_STATS. */
enum spry_mesh_stat {
	SPRY_MESH_S_INSERTED = 0,	/* sockets put in the map */
	SPRY_MESH_S_INSERT_FAILED,	/* map full, or no storage */
	SPRY_MESH_S_REFUSED_NOT_LOCAL,	/* not loopback, no prefix allow rule */
	SPRY_MESH_S_REFUSED_DENY,	/* a deny rule matched */
	SPRY_MESH_S_REFUSED_DEFAULT,	/* no allow rule, default deny */
	SPRY_MESH_S_REFUSED_SENT,	/* data sent before establishment (TFO) */
	SPRY_MESH_S_REDIRECTED,		/* messages redirected */
	SPRY_MESH_S_REDIRECTED_BYTES,
	SPRY_MESH_S_PASSED_BYTES,	/* bytes of every passed message */
	SPRY_MESH_S_PASS_STATE,		/* sender not ESTABLISHED/CLOSE_WAIT */
	SPRY_MESH_S_PASS_NO_PEER,	/* messages of TCP_NO_PEER directions */
	SPRY_MESH_S_PASS_PEER_GONE,	/* messages of TCP_PEER_GONE directions */
	SPRY_MESH_S_PASS_STALLED,	/* messages of TCP_STALLED directions */
	SPRY_MESH_S_PASS_NO_CONN,	/* mapped socket without storage */
	SPRY_MESH_S_FALLBACK_STALLED,	/* REDIRECT -> TCP on a stalled reader */
	SPRY_MESH_S_COMEBACK,		/* TCP_STALLED -> REDIRECT, every TCP byte read */
	SPRY_MESH_S_RX_OVERLAP,		/* TCP segments that began before the end of
					 * what the socket had queued: head trimmed */
	SPRY_MESH_S_RX_UNORDERED,	/* ... a gap, or an overlap not trimmed */
	SPRY_MESH_S_MAX,
};

#endif /* SPRY_MESH_H */
