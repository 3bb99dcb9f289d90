/* SPDX-License-Identifier: MIT */
/*
 * connset: one loop's connections and its lists of them: `ready` (input to
 * go on with), `dirty` (replies to write) and the idle list (least
 * recently active first).  The loop's own bookkeeping, kept apart from the
 * loop's phases: connections report what happened (conn.h) and only this
 * module moves them between the lists, counts them, and frees a closed
 * one when nothing refers to it any more.  Loop thread only, except
 * `connections`, which any thread may read.
 */
#ifndef TP_CONNSET_H
#define TP_CONNSET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

struct tp_listen_set;

struct tp_connset {
	struct tp_conn *ready;
	struct tp_conn *dirty;
	struct tp_conn *lru_head, *lru_tail;
	size_t nconns;                /* open connections */
	size_t nalloc;                /* connections not yet freed (closed ones wait for their requests) */
	uint64_t closes, closes_seen; /* connections closed; of them, when the last batch was pushed */
	_Atomic uint64_t connections; /* nconns, for other threads */
	/* A new connection from peer: false (not counted) over the caps, else its group. */
	bool (*on_enter)(void *ctx, const struct sockaddr_storage *peer, bool uncapped,
	                 struct tp_qgroup **ret_group);
	void (*on_free)(void *ctx, struct tp_qgroup *group); /* a connection of group was freed */
	void (*on_closed)(void *ctx, struct tp_conn *c);     /* c closed with requests in flight, or NULL */
	bool (*on_named)(void *ctx, struct tp_conn *c);      /* TP_CONN_NAMED: false closes it */
	void *ctx;
	/* Keeping: take c's fd and record for the next instance; false (it is closed) when full. */
	bool (*on_handoff)(void *ctx, int fd, const struct tp_handover_conn *rec);
	void *handoff_ctx;
	uint64_t grace_until_ns; /* shutdown: when silent connections' grace ends; 0 once checked */
	bool shutting_down;      /* tp_connset_shutdown() was called */
	bool unread_told;        /* shutting down: the connections not reading were logged */
	struct tp_listen_set
	        *listen; /* the loop's: drains a client refused at its PROXY header or adoption */
};

/* A new connection, active at now_ns. */
void tp_connset_add(struct tp_connset *s, struct tp_conn *c, uint64_t now_ns);

/*
 * A new client's socket fd, accepted (peer) or handed over by the previous
 * instance (rec, which is then used instead of peer): set it up as a
 * connection of loop.  Returns 1 when it took fd; 0 over max_connections
 * (or an address's cap): fd untouched when accepted, refused in a drained
 * close (listener.h) when handed over; a negative errno when fd could not
 * be set up (out of memory, epoll): fd closed, and logged.
 */
int tp_connset_take(struct tp_connset *s, struct tp_conn_env *env, struct tp_loop *loop, int fd,
                    const struct sockaddr_storage *peer, const struct tp_handover_conn *rec,
                    enum tp_peer_mode mode);

/* Act on what c reported (TP_CONN_* bits); c may be freed. */
void tp_connset_act(struct tp_connset *s, struct tp_conn *c, unsigned ev);

/* What came back to a loop, for its counters (tp_connset_complete_run()). */
struct tp_connset_tally {
	size_t cheap; /* batchable requests */
};

/*
 * Requests of one connection came back done (from the pool, refused or
 * expired), from r along dnext while they are its: each is marked done,
 * counted in *tally, and the connection is acted on once after them.
 * Returns the first request of another connection, or NULL.
 */
struct tp_req *tp_connset_complete_run(struct tp_connset *s, struct tp_req *r,
                                       struct tp_connset_tally *tally);

/*
 * Take the requests of connections closed since they were parsed (a reset
 * read with them, a PROXY client refused over its cap) out of the turn's
 * batch b, so they hold no place in the queue: returned failed, linked
 * through dnext, for the loop to complete.  Cheap when none closed since
 * the last call.
 */
struct tp_req *tp_connset_drop_closed(struct tp_connset *s, struct tp_req_batch *b);

/* Let every connection on the ready list go on reading. */
void tp_connset_run_ready(struct tp_connset *s);

/* Let every connection on the dirty list write. */
void tp_connset_run_dirty(struct tp_connset *s);

/* Close connections idle for limit_ns or longer with nothing in flight (oldest first). */
void tp_connset_sweep_idle(struct tp_connset *s, uint64_t now_ns, uint64_t limit_ns);

/* Shutdown began: tell every open connection, and those that join from now on (see tp_conn_shutdown). */
void tp_connset_shutdown(struct tp_connset *s, uint64_t grace_until_ns);

/*
 * The loop's tick: close the connections whose PROXY header is overdue
 * (counted in env->turned_away; cheap without any); shutting down, log
 * once (a warning) how many connections have replies their clients have
 * not taken for a second, which hold the shutdown until its deadline.
 */
void tp_connset_tick(struct tp_connset *s, uint64_t now_ns);

/*
 * When grace_until_ns has come (a timer of its own: the loop's tick may
 * come up to a second later), ask every open connection whether its
 * shutdown grace ran out.  Cheap before then.
 */
void tp_connset_grace_check(struct tp_connset *s, uint64_t now_ns);

/* The settings changed: every open connection re-checks whether it may read. */
void tp_connset_limits_changed(struct tp_connset *s);

/*
 * Past the shutdown's deadline and grace: close every open connection now,
 * and log (a warning) how many had replies their clients did not read.
 */
void tp_connset_force_close(struct tp_connset *s);

#endif
