/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * spryd's request core (entry.c): the in-flight table, the chain pools,
 * admission, deadlines, retries, the requests a dead instance held, and
 * the hand-back of every answer to the front that started the request
 * (its ops, front.h).  It names no front.
 */
#ifndef SPRYD_ENTRY_H
#define SPRYD_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

struct spryd;
struct spryd_req;
struct spryd_chain;
struct spry_chain;
struct spry_desc;
struct spry_buf;

int entry_init(struct spryd *d);
void entry_fini(struct spryd *d);
/* A descriptor came back from a chain (origin.c). */
void entry_return(struct spryd *d, const struct spry_desc *desc);
void entry_inst_died(struct spryd *d, uint16_t chain, uint16_t fn, uint16_t inst);
/*
 * Deadlines and zombies (a loop timer hook's work).  With @drained false
 * it stops at the first request past its deadline and returns true: the
 * caller reads the answers already back (origin_drain) and calls again
 * with @drained true, so an answer that arrived beats its deadline.
 */
bool entry_timer(struct spryd *d, uint64_t now, uint64_t *next, bool drained);
/* Answer every request in flight (-ESHUTDOWN) and release it. */
void entry_shutdown(struct spryd *d);
/* The chain's pool (created on first use); 0 or -errno. */
int entry_chain_pool(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		     struct spryd_chain **out);
/* An active chain by name (the pools' names first, then spry_chains). */
int entry_find_chain(struct spryd *d, const char *name, uint16_t *id,
		     struct spry_chain *rec);
/*
 * The common request path of every front.  entry_prepare() checks the
 * chain's in-flight bound, takes a request slot and a pool buffer of at
 * least @size bytes tagged with the request id (*@ptr: its first byte,
 * r->desc.off/cap/gen: the buffer); the request counts in the chain's
 * in-flight bound from here.  -EBUSY (in-flight bound or request table
 * full), -ENOSPC (no free buffer), -EMSGSIZE (over the largest buffer),
 * -ESTALE/-errno (no pool).  Then exactly one of entry_submit() (the
 * buffer holds @meta_len bytes of metadata and @len of payload) or
 * entry_abort() (buffer freed, slot released).  The owner is the front
 * id @owner and its cookie (@conn, @gen): the answer goes to
 * d->fronts[owner]->complete.
 */
int entry_prepare(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		  uint32_t size, uint8_t owner, uint32_t conn, uint32_t gen,
		  struct spryd_req **out, void **ptr);
void entry_submit(struct spryd *d, struct spryd_req *r, uint32_t meta_len,
		  uint32_t len, uint8_t flags, uint64_t key);
void entry_abort(struct spryd *d, struct spryd_req *r);
/*
 * entry_prepare() for a buffer the caller already holds (an AF_XDP frame):
 * the buffer at @buf, tagged @old_tag, is retagged to the new request id
 * (spry_pool_retag) and becomes the request's.  Then entry_submit() or
 * entry_abort() as above (abort frees the buffer).  -EBUSY, -ESTALE.
 */
int entry_adopt(struct spryd *d, uint16_t id, const struct spry_chain *rec,
		const struct spry_buf *buf, uint64_t old_tag, uint8_t owner,
		uint32_t conn, uint32_t gen, struct spryd_req **out);
/*
 * A chain by name for the per-request fronts: from a snapshot of
 * spry_chains, read again when older than 1 s, or 50 ms when the name is
 * missing from it.
 */
int entry_find_chain_cached(struct spryd *d, const char *name, uint64_t now,
			    uint16_t *id, struct spry_chain *rec);

/*
 * Activation (docs/DESIGN.md): a chain with declared functions
 * (cs->managed) holds new requests while one of them has no routable
 * instance.  entry_chain_ready: none is missing.  entry_hold_release: send
 * the held requests, in arrival order.  entry_hold_fail: answer them @err
 * (their functions could not start); how many.
 */
bool entry_chain_ready(const struct spryd *d, const struct spryd_chain *cs);
void entry_hold_release(struct spryd *d, uint16_t chain);
uint32_t entry_hold_fail(struct spryd *d, uint16_t chain, int err);

/*
 * Requests held for an app's processes (process.c; docs/PROCESS.md).
 * entry_proc_next: the next held one after *@cursor (SPRYD_NIL: from the
 * start) and the process it waits for in *@key (0: any); false at the end.
 * entry_proc_release: send those waiting for @key; how many.
 * entry_proc_fail: answer them @err (-ENOENT: 404); how many.
 */
bool entry_proc_next(struct spryd *d, uint16_t chain, uint32_t *cursor, uint64_t *key);
uint32_t entry_proc_release(struct spryd *d, uint16_t chain, uint64_t key);
uint32_t entry_proc_fail(struct spryd *d, uint16_t chain, uint64_t key, int err);

/* The request @req_id while it holds its slot; NULL once released. */
struct spryd_req *entry_req(struct spryd *d, uint64_t req_id);
/* The send queue (origin.c empties it). */
bool entry_sendq_pop(struct spryd *d, struct spryd_req **out);
void entry_sendq_unpop(struct spryd *d, uint64_t req_id);
/*
 * A queued send failed: fail or keep the request depending on reqloc (a
 * REQ_ZOMBIE one, answered while its send was in an engine, is released
 * when no function has it).
 */
void entry_send_failed(struct spryd *d, struct spryd_req *r);

#endif /* SPRYD_ENTRY_H */
