/* SPDX-License-Identifier: MIT */
/*
 * conn: one client connection: reading and framing its requests into the
 * loop's batch, pausing when it must (backpressure, unsent output), and
 * writing replies strictly in request order.
 *
 * Passive: a connection never touches its loop's lists.  Its functions
 * return what happened as a mask of TP_CONN_* bits (it has input to go on
 * with, replies to write, it was active, its fd was closed) and the loop
 * acts on it.  What it needs from its loop (settings, the time, the scratch
 * buffer, the batch, the request cache, whether the server is shutting
 * down) it reads from the loop's struct tp_conn_env, which the loop keeps
 * current.
 *
 * A connection belongs to one event loop and is touched only by that
 * loop's thread, except `gone`, which the dispatcher reads on a worker to
 * skip the work of a client that has left.  The loop frees it (tp_conn_free)
 * once its fd is closed, no request of it is in flight and it is on none
 * of the loop's lists.
 */
#ifndef TP_CONN_H
#define TP_CONN_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "framer.h"
#include "peer.h"
#include "handover_state.h"
#include "req.h"
#include "source.h"
#include "tp_assert.h"

struct tp_config;
struct tp_loop;
struct tp_metrics_slot;

/* What a loop shares with its connections (loop thread only, but `served`). */
struct tp_conn_env {
	const struct tp_config *cfg;
	uint64_t now_ns;    /* this turn's time (set with tp_conn_env_now()) */
	uint32_t turn;      /* bumped by the loop after each push of the batch */
	bool shutting_down; /* new lines get ERR server shutting down */
	bool draining;      /* leaving: close after a reply when nothing else is in flight */
	bool keeping;       /* shutting down, handing connections over: read nothing more, close none */

	/* Derived from now_ns and cfg once a turn, for every line of it: */
	uint32_t now_us;        /* tp_req_us(now_ns) */
	uint64_t wait_until_ns; /* a line read now waits for space in the queue until then */
	size_t max_unsent;      /* limits.max_unsent_kib in bytes */
	size_t unit_room;       /* places free in the queue at the turn's start, 0 while any waits */

	int epfd;
	char *scratch; /* reads land here; only a partial line is kept per connection */
	size_t scratch_len;
	struct tp_req_batch batch; /* parsed requests of this turn, pushed by the loop */
	struct tp_req_cache reqs;
	_Atomic uint64_t served;         /* replies written (any thread may read) */
	struct tp_metrics_slot *metrics; /* the loop's counters (metrics.h), or NULL */
	/* connections closed before their first request, by reason (any thread may read) */
	_Atomic uint64_t turned_away[TP_PEER_REFUSAL_COUNT];
};

/*
 * The loop's time is now_ns (a new turn, or the settings changed): set it
 * and what derives from it (a line's deadline in the queue, from the time
 * it was read; one pushed after a reload that shortened the timeout is held
 * to it by the queue, tp_queue_cap_deadlines()).
 */
void tp_conn_env_now(struct tp_conn_env *env, uint64_t now_ns);

/* What a connection reports (bits of the unsigned its functions return). */
enum {
	TP_CONN_READ = 1u << 0,    /* input to go on with next turn (the loop's ready list) */
	TP_CONN_WRITE = 1u << 1,   /* replies to write or a close to decide (the dirty list) */
	TP_CONN_ACTIVE = 1u << 2,  /* a line framed or a reply written: not idle (the idle list) */
	TP_CONN_CLOSED = 1u << 3,  /* its fd was just closed: forget it */
	TP_CONN_HANDOFF = 1u << 4, /* keeping: everything read is answered, hand it over */
	TP_CONN_NAMED = 1u << 5,   /* a PROXY header named its client (peer): count it there */
};

struct tp_conn {
	struct tp_source src; /* TP_SOURCE_CONN */
	int fd;
	struct tp_loop *loop; /* its owner, for the dispatcher; never used here */
	struct tp_conn_env *env;
	struct tp_framer framer;
	struct tp_peer_hdr *hdr; /* its first bytes, until the PROXY header is decided */
	struct tp_qflow flow;    /* its requests' flow in the queue; its group is its address's */

	struct tp_req *ohead, *otail; /* every live request, in arrival order */
	uint32_t nreqs;               /* on that list */
	uint32_t ninflight;           /* in the queue, on a worker, or posted back */
	uint32_t nwaiting;            /* parked in the queue's wait list */
	uint32_t bn;                  /* lines parsed into the batch in turn bturn (at most BATCH) */
	uint32_t bturn;               /* env->turn when bn was counted */
	/*
	 * When the lines being framed were read (tp_req_us()): a turn's time,
	 * or an earlier one for the rest of a read set aside while paused.
	 */
	uint32_t read_us;
	size_t pending_bytes; /* reply memory held: the unsent-output bound */

	/* The loop's lists; only the loop writes these. */
	uint64_t last_active_ns;
	struct tp_conn *lru_prev, *lru_next; /* idle list, least recent first */
	struct tp_conn *ready_next;          /* conns with input to go on with */
	struct tp_conn *dirty_next;          /* conns with replies to write */
	bool in_ready, in_dirty;

	bool readable; /* edge-triggered: input may be pending */
	bool writable; /* edge-triggered: the socket can take more */
	bool eof;      /* the client sent FIN: answer what was read, then close */
	bool hup;      /* epoll reported RDHUP/HUP/ERR: read until EOF or error */
	bool spoke;    /* at least one line was framed */
	bool grace;    /* shutting down, silent so far: its first request is served */
	uint64_t grace_until_ns;
	bool closed;  /* fd closed; waiting for in-flight requests to come back */
	bool failed;  /* out of memory while parsing: close after this turn */
	bool unkept;  /* keeping, but this one was not handed over: it ends as without keeping */
	uint8_t told; /* reads since answered ERR server shutting down, plus one (TP_CONN_TOLD_READS) */
	atomic_bool gone;

	/* The client: the socket's peer, or the one its proxy's PROXY header names. */
	struct sockaddr_storage peer;
	uint16_t port;
	char addr[46]; /* INET6_ADDRSTRLEN */
};

/*
 * Take an accepted, non-blocking socket of loop: registers it with
 * env->epfd (edge-triggered).  mode says whether it must, or must not,
 * start with a PROXY header (TP_PEER_EXPECT: within
 * TP_PEER_HEADER_TIMEOUT_MS of env->now_ns).  Returns the connection, or
 * NULL with errno set (the fd is closed then).
 */
struct tp_conn *tp_conn_new(struct tp_conn_env *env, struct tp_loop *loop, int fd,
                            const struct sockaddr_storage *peer, enum tp_peer_mode mode);

/* epoll reported events for this connection: read on. Returns TP_CONN_* bits. */
unsigned tp_conn_on_event(struct tp_conn *c, uint32_t events);

/* Go on reading and framing (from the loop's ready list). Returns TP_CONN_* bits. */
unsigned tp_conn_process(struct tp_conn *c);

/*
 * Write the replies that are ready, in order, with one writev per
 * WRITE_IOV of them; close once the client is done (EOF or shutdown) and
 * everything is answered, unless more_input (it is on the ready list).
 * Returns TP_CONN_* bits.
 */
unsigned tp_conn_flush(struct tp_conn *c, bool more_input);

/* The queue could not admit r: it waits, and the connection reads nothing more. */
void tp_conn_waiting(struct tp_conn *c, struct tp_req *r);

/* A waiting request of this connection was admitted to the queue. Returns TP_CONN_* bits. */
unsigned tp_conn_admitted(struct tp_conn *c, struct tp_req *r);

/*
 * Request r, in flight, came back done (from the pool, or expired). Returns
 * TP_CONN_* bits.  Inline: the loop calls it for every request.
 */
static inline unsigned tp_conn_complete(struct tp_conn *c, struct tp_req *r)
{
	unsigned ev = 0;

	TP_ASSERT(c->ninflight > 0);
	c->ninflight--;
	if (r->waiting) {
		/*
		 * Admissions are handled before completions (loop.c), so a request
		 * still waiting never ran: it expired or was cancelled, and stops
		 * waiting as an admitted one does.
		 */
		TP_ASSERT(r->status != TP_PROTO_OK);
		if (!r->waited) { /* cut by the shutdown: its wait for space ends now */
			r->wait_end_us = tp_req_us(c->env->now_ns);
			r->waited = true;
		}
		ev = tp_conn_admitted(c, r);
	}
	r->done = true;
	if (!c->closed && r == c->ohead)
		ev |= TP_CONN_WRITE;
	return ev;
}

/* More reply memory held than limits.max_unsent_kib allows: reading pauses. */
static inline bool tp_conn_over_unsent(const struct tp_conn *c)
{
	return c->pending_bytes > c->env->max_unsent;
}

/* Is it to be handed over to the next instance (shutting down, keeping connections)? */
static inline bool tp_conn_kept(const struct tp_conn *c)
{
	return c->env->keeping && !c->unkept;
}

/*
 * Reads of up to 16 KiB a connection still gets once answered ERR server
 * shutting down: a client that pipelines a burst is read to its end, its
 * replies then close with a FIN; one that keeps streaming would hold the
 * shutdown until its deadline, and is closed once that much is answered.
 */
#define TP_CONN_TOLD_READS 64

/* May it read (and frame) more input now? */
static inline bool tp_conn_can_read(const struct tp_conn *c)
{
	return !c->closed && !c->eof && !tp_conn_kept(c) && c->nwaiting == 0 && !tp_conn_over_unsent(c) &&
	       (c->framer.stopped || (c->readable && c->told <= TP_CONN_TOLD_READS));
}

/* Close the fd now (reason for the debug log). Returns TP_CONN_CLOSED, or 0 if it was closed (conn_end.c). */
unsigned tp_conn_close(struct tp_conn *c, const char *reason);

/*
 * As tp_conn_close(), but the fd is not closed: it leaves c's epoll set and
 * is returned, the caller's; logged as event with what before the client's
 * address.  c must be open (conn_end.c).
 */
int tp_conn_let_go(struct tp_conn *c, const char *event, const char *what);

/* Closed and no request in flight: only the loop's lists may still refer to it. */
static inline bool tp_conn_unused(const struct tp_conn *c)
{
	return c->closed && c->ninflight == 0;
}

/* Free an unused connection and the requests it still holds; NULL is fine. */
void tp_conn_free(struct tp_conn *c);

/*
 * Shutdown began: answer new lines with ERR server shutting down and close
 * once everything is answered.  A connection that has not spoken yet gets
 * until grace_until_ns (0: none) for its first request, which is served
 * normally.  Returns TP_CONN_* bits.
 */
unsigned tp_conn_shutdown(struct tp_conn *c, uint64_t grace_until_ns);

/*
 * The settings changed (a reload): a connection paused under the old limits
 * may go on under the new ones.  Returns TP_CONN_* bits.
 */
unsigned tp_conn_limits_changed(struct tp_conn *c);

/* The shutdown grace of a silent connection may have run out. Returns TP_CONN_* bits. */
unsigned tp_conn_grace_check(struct tp_conn *c, uint64_t now_ns);

/*
 * Hand-over (conn_handover.c).  The record of c for the next instance: its
 * socket's identity, the client's address, the input read but not answered
 * (rec->input points into c, valid until c is closed or handed off).
 * Returns c's fd, or -errno when the socket cannot be identified.
 */
int tp_conn_handover_record(struct tp_conn *c, struct tp_handover_conn *rec);

/* The client's address of rec as a socket address (AF_UNSPEC when it is none). */
void tp_conn_handover_peer(const struct tp_handover_conn *rec, struct sockaddr_storage *ret);

/* c's fd now belongs to the hand-over: forget it without closing it. Returns TP_CONN_CLOSED. */
unsigned tp_conn_handed_off(struct tp_conn *c);

/*
 * A connection the previous instance handed over: fd (taken, closed on
 * failure) with the client's address and the carried input of rec, framed
 * on its first turn.  Returns it, or NULL with errno set.
 */
struct tp_conn *tp_conn_adopt(struct tp_conn_env *env, struct tp_loop *loop, int fd,
                              const struct tp_handover_conn *rec);

/* Dispatcher, any thread: has the client left (its work may be skipped)? */
static inline bool tp_conn_is_gone(struct tp_conn *c)
{
	return atomic_load_explicit(&c->gone, memory_order_relaxed);
}

#endif
