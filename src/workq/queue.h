/* SPDX-License-Identifier: MIT */
/*
 * queue: the bounded FIFO between the event loops and the worker pool, with
 * a wait list for requests that arrive while it is full.
 *
 * Nodes are intrusive (struct tp_qnode embedded in the caller's request);
 * the queue never allocates per node.  Ownership: a node pushed belongs to
 * the queue until it is popped by a worker, expired, or taken back by
 * tp_queue_take_all() or tp_queue_take_flow(); then it belongs to whoever
 * got it.
 *
 * Threads: any thread may push, expire or take; workers pop.  The admit
 * callback runs on the thread that freed the space (a worker, or the pusher
 * on a capacity change), *with the queue lock held*: it must not call back
 * into the queue, and any lock it takes ranks below the queue lock.
 *
 * Discipline (tp_queue_set_fairness): TP_FAIR_NONE is one FIFO, and a
 * newcomer never overtakes a waiter.  The fair modes (fairq.h) serve flows
 * in turn by cost, and give a place that frees to the waiter whose group,
 * then flow, holds the least admitted cost.  Either way the bound, the
 * waits with their own deadlines and each flow's FIFO order are the same.
 */
#ifndef TP_QUEUE_H
#define TP_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qnode.h"

struct tp_queue;

/* A waiting node was admitted (moved into the bounded part). */
typedef void (*tp_queue_admit_fn)(struct tp_qnode *node, void *ctx);

struct tp_queue_stats {
	size_t depth;   /* requests admitted, not yet taken by a worker (nodes' weights) */
	size_t waiting; /* requests in the wait list */
	size_t capacity;
	size_t idle;       /* workers blocked in tp_queue_pop() */
	size_t cheap_idle; /* cheap-only workers blocked in tp_queue_pop_cheap() */
	size_t flows;      /* fair modes: flows with admitted nodes */
	size_t largest;    /* fair modes: most admitted requests of one group or flow */
	enum tp_fairness fairness;
	uint64_t long_spins, short_spins; /* polls for work before blocking (spin.h) */
};

/*
 * A FIFO queue (TP_FAIR_NONE) holding at most capacity admitted requests
 * (nodes' weights, fairq.h).  NULL on ENOMEM.
 */
struct tp_queue *tp_queue_new(size_t capacity, tp_queue_admit_fn admit, void *admit_ctx);

/* Free the queue (NULL is fine). It must be empty of workers; nodes left are not touched. */
void tp_queue_free(struct tp_queue *q);

/*
 * Push n nodes linked through next, in arrival order, each with its
 * deadline_ns, more (and for the fair modes flow and cost_us) set.  While
 * no one is waiting, nodes are admitted as long as they fit, and idle
 * workers woken; the rest join the wait list (in the fair modes, one of
 * them whose flow's turn it is may still be admitted, through the admit
 * callback).  Returns the number admitted (0..n; the first ones of the
 * list), or -EPIPE when the queue is closed, in which case nothing was
 * taken.  Never blocks beyond the queue lock.
 */
int tp_queue_push(struct tp_queue *q, struct tp_qnode *first, size_t n);

/*
 * Worker side: block until work is available, then take up to max nodes
 * into ret[] (more than one only while they are batchable; in the fair
 * modes in the flows' turns).  Each node taken frees its places (its
 * weight), which admit the waiters that then fit (see the discipline
 * above).  Returns the number taken; 0 when the queue is closed and empty,
 * or when *stop becomes true (checked on every wakeup; see
 * tp_queue_wake_all()).  An expensive node taken counts as running
 * expensive work until the caller's tp_queue_running_expensive(q, -1).
 */
size_t tp_queue_pop(struct tp_queue *q, struct tp_qnode **ret, size_t max, const atomic_bool *stop);

/*
 * A cheap-only worker's pop: like tp_queue_pop(), but it takes only
 * batchable nodes, and only where they may run now: in the fair modes a
 * run from one flow whose head is batchable (fairq.h tp_fairq_pop_cheap),
 * or, when none is admitted, the waiter whose turn it is to be admitted if
 * it is batchable and its flow has nothing admitted (run without taking a
 * place: the admit callback is called for it first); in TP_FAIR_NONE a run
 * at the FIFO head.  Never an expensive node.  Blocks apart from the
 * general workers (woken when cheap work comes while none of them is idle)
 * and never spins.  Returns 0 when *stop becomes true or the queue is
 * closed (the general workers drain it).
 */
size_t tp_queue_pop_cheap(struct tp_queue *q, struct tp_qnode **ret, size_t max, const atomic_bool *stop);

/*
 * A worker ends (delta -1) a batch of expensive work, which tp_queue_pop()
 * counted in (+1) when it took it: the cheap-only workers are woken only
 * while some worker is inside one.  Any thread, lock-free.
 */
void tp_queue_running_expensive(struct tp_queue *q, int delta);

/*
 * An expensive node of flow f that a pop took was answered without running
 * (tp_fairq_refund: its cost is given back in the fair modes).  Takes the
 * lock; f must still be alive.
 */
void tp_queue_refund(struct tp_queue *q, struct tp_qflow *f, const struct tp_qnode *n);

/*
 * Remove the waiters at the head of the wait list whose deadline has passed
 * (deadline_ns <= now_ns) and return them linked through next, oldest
 * first, in *ret_first.  Only the head is looked at: with one timeout,
 * deadlines grow along the list (see the DESIGN comment in queue.c).
 * Stores the head's deadline afterwards in *ret_next_ns (0: nobody waits).
 * The waiters that fit once they are gone are admitted (the admit
 * callback runs on this thread).  Returns the number removed.
 */
size_t tp_queue_expire(struct tp_queue *q, uint64_t now_ns, struct tp_qnode **ret_first,
                       uint64_t *ret_next_ns);

/*
 * The wait for space is wait_ns from now on (a reload): every waiter's
 * deadline becomes at most now_ns + wait_ns, and a node that starts to
 * wait in a later push at most its push's time (the monotonic clock) plus
 * wait_ns, whatever deadline it was stamped with: a line read under the
 * old settings but pushed after this call leaves no later than one read
 * after it.  No deadline moves later.  Deadlines still grow along the
 * wait list.  O(n) in the waiters.
 */
void tp_queue_cap_deadlines(struct tp_queue *q, uint64_t now_ns, uint64_t wait_ns);

/* The earliest deadline among waiters, 0 if none; lock-free, may be a moment stale. */
uint64_t tp_queue_next_deadline(struct tp_queue *q);

/* The requests admitted (tp_qnode_weight); lock-free, may be a moment stale. */
size_t tp_queue_admitted(struct tp_queue *q);

/* Change the capacity (reload); growing admits waiters at once. */
void tp_queue_set_capacity(struct tp_queue *q, size_t capacity);

/*
 * Change the discipline; work admitted and waiting is kept, each flow's in
 * order (and the waiters' arrival order); a waiter that the new discipline
 * puts next and that fits is admitted (the admit callback runs on this
 * thread).  O(n) in the nodes queued.
 */
void tp_queue_set_fairness(struct tp_queue *q, enum tp_fairness mode);

/*
 * The owner of flow f has gone: remove its nodes, admitted and waiting,
 * linked through next in *ret_first (admitted ones first), and give the
 * places freed to waiters.  Returns the count.  Fair modes only (in
 * TP_FAIR_NONE nothing is taken: the nodes stay queued).
 */
size_t tp_queue_take_flow(struct tp_queue *q, struct tp_qflow *f, struct tp_qnode **ret_first);

/* Refuse further pushes; workers drain what is queued, waiters included. */
void tp_queue_close(struct tp_queue *q);

/* Has tp_queue_close() been called? */
bool tp_queue_closed(struct tp_queue *q);

/* Remove every node, admitted then waiting, linked through next. Returns the count. */
size_t tp_queue_take_all(struct tp_queue *q, struct tp_qnode **ret_first);

/* Wake every worker blocked in tp_queue_pop() or tp_queue_pop_cheap() so it re-checks its stop flag. */
void tp_queue_wake_all(struct tp_queue *q);

/* Any thread: the figures at one moment, read under the queue's lock. */
void tp_queue_stats(struct tp_queue *q, struct tp_queue_stats *ret);

#endif
