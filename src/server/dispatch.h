/* SPDX-License-Identifier: MIT */
/*
 * dispatch: the hand-off between the queue and the loops.  It runs the
 * requests a worker took (skipping those of a client that left) and hands
 * each back to the loop that owns its connection; it tells a loop when one
 * of its waiting requests was admitted; it takes a closed connection's
 * requests out of the queue; and at the shutdown deadline it answers
 * everything still queued.
 *
 * Threads: tp_dispatch_exec() runs on a worker and owns the requests for
 * the call; tp_dispatch_admit() runs on whichever thread admitted a
 * waiter (a worker that freed places, or a loop whose push, expiry or
 * reload let one in), with the queue lock held.  Both only post to loops (loop.h), which take
 * the requests back.
 */
#ifndef TP_DISPATCH_H
#define TP_DISPATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct tp_conn;
struct tp_pool;

/* The pool's exec context. */
struct tp_dispatch {
	struct tp_pool *pool;         /* for SLEEP's interruptible wait */
	struct tp_queue *queue;       /* the cost of work popped but not run goes back (NULL: not) */
	_Atomic uint64_t max_wait_ns; /* pool.max_wait_ms; 0: no bound (set by the server) */
};

/*
 * Pool exec callback (ctx: struct tp_dispatch *): run each request with
 * tp_ops_run(), unless its client has gone (the reply would be thrown away:
 * it is left empty and OK, so a SLEEP of a vanished client costs nothing)
 * or it has waited longer than max_wait_ns since its line was read (it is
 * answered ERR server busy and marked late, without running), then post
 * them back, one post per run of requests of the same loop.
 */
void tp_dispatch_exec(struct tp_qnode **nodes, size_t n, void *ctx);

/* Queue admit callback (queue lock held): tell the request's loop. */
void tp_dispatch_admit(struct tp_qnode *node, void *ctx);

/*
 * Connection c closed with requests in flight: take its requests still in
 * the queue, admitted or waiting (fair modes only: tp_queue_take_flow), so
 * that their places go to other clients at once, and post them back to
 * c's loop as done, unanswered and never run.  A request a worker already
 * took is not in the queue and comes back as usual.  Runs on c's loop.
 * Returns how many requests (lines: a unit counts its own) were taken.
 */
size_t tp_dispatch_cancel_flow(struct tp_queue *q, struct tp_conn *c);

/*
 * Take every request out of q (queued and waiting) and hand each back to
 * its loop answered ERR server shutting down.  Returns how many requests
 * (lines: a unit counts its own).
 */
size_t tp_dispatch_cancel_all(struct tp_queue *q);

#endif
