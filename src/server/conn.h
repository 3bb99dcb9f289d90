/* SPDX-License-Identifier: MIT */
/*
 * conn: one client connection: reading and framing its requests, handing
 * them to the queue in batches, pausing when it must (backpressure, unsent
 * output), and writing replies strictly in request order.
 *
 * A connection belongs to one event loop and is touched only by that
 * loop's thread, except `gone`, which workers read to skip the work of a
 * client that has left.  It is freed exactly once, when its fd is closed
 * and no request of it is still in the queue or on a worker.
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
#include "req.h"

struct tp_loop;

#define TP_TAG_CONN 0x436f6e6eu /* first word of every epoll source, to tell them apart */

struct tp_conn {
	uint32_t tag; /* TP_TAG_CONN */
	int fd;
	struct tp_loop *loop;
	struct tp_framer framer;

	struct tp_req *ohead, *otail; /* every live request, in arrival order */
	uint32_t nreqs;               /* on that list */
	uint32_t ninflight;           /* in the queue, on a worker, or posted back */
	uint32_t nwaiting;            /* parked in the queue's wait list */
	size_t pending_bytes;         /* reply memory held: the unsent-output bound */

	size_t bn; /* lines parsed into the loop's batch this turn */

	uint64_t last_active_ns;
	struct tp_conn *lru_prev, *lru_next; /* loop's idle list, least recent first */
	struct tp_conn *ready_next;          /* loop's list of conns with input to go on with */
	struct tp_conn *dirty_next;          /* loop's list of conns with replies to write */
	struct tp_conn *batch_next;          /* loop's list of conns with requests in its batch */
	bool in_ready, in_dirty, in_batch_list;

	bool readable; /* edge-triggered: input may be pending */
	bool writable; /* edge-triggered: the socket can take more */
	bool eof;      /* the client sent FIN: answer what was read, then close */
	bool hup;      /* epoll reported RDHUP/HUP/ERR: read until EOF or error */
	bool spoke;    /* at least one line was framed */
	bool grace;    /* shutting down, silent so far: its first request is served */
	uint64_t grace_until_ns;
	bool closed; /* fd closed; waiting for in-flight requests to come back */
	bool failed; /* out of memory while parsing: close after this turn */
	atomic_bool gone;

	uint16_t port;
	char addr[46]; /* INET6_ADDRSTRLEN */
};

/*
 * Take an accepted, non-blocking socket.  Registers it with the loop's
 * epoll (edge-triggered).  Returns the connection, or NULL with errno set
 * (the fd is closed then).
 */
struct tp_conn *tp_conn_new(struct tp_loop *loop, int fd, const struct sockaddr_storage *peer);

/* epoll reported events for this connection. */
void tp_conn_on_event(struct tp_conn *c, uint32_t events);

/* Go on reading and framing (the loop's ready list). */
void tp_conn_process(struct tp_conn *c);

/* Write the replies that are ready, in order (the loop's dirty list). */
void tp_conn_flush(struct tp_conn *c);

/* A request of this connection came back from the pool or the wait list. */
void tp_conn_complete(struct tp_conn *c, struct tp_req *r);

/* The queue could not admit r: it waits, and the connection pauses. */
void tp_conn_waiting(struct tp_conn *c, struct tp_req *r);

/* The loop pushed its batch: this connection may parse a new share. */
void tp_conn_turn_done(struct tp_conn *c);

/* A waiting request of this connection was admitted to the queue. */
void tp_conn_admitted(struct tp_conn *c, struct tp_req *r);

/* Close now (reason for the debug log); frees when nothing is in flight. */
void tp_conn_close(struct tp_conn *c, const char *reason);

/* Free c if it is closed and nothing refers to it any more (no list, no request). */
void tp_conn_release(struct tp_conn *c);

/*
 * Shutdown began: answer new lines with ERR server shutting down and close
 * once everything is answered.  A connection that has not spoken yet gets
 * until grace_until_ns for its first request, which is served normally.
 */
void tp_conn_shutdown(struct tp_conn *c, uint64_t grace_until_ns);

/* The shutdown grace of a silent connection ran out (loop, at its tick). */
void tp_conn_grace_check(struct tp_conn *c, uint64_t now_ns);

/* Workers: has the client left (its work may be skipped)? */
static inline bool tp_conn_is_gone(struct tp_conn *c)
{
	return atomic_load_explicit(&c->gone, memory_order_relaxed);
}

#endif
