/* SPDX-License-Identifier: MIT */
/*
 * pool: a fixed set of worker threads that take work from a tp_queue.
 *
 * The pool owns its threads, not the queue and not the work.  Each worker
 * takes a batch of nodes from the queue and hands it to the exec callback,
 * which runs on that worker thread and owns the nodes from then on.  The
 * size is fixed until tp_pool_resize() (live reload) changes it.
 */
#ifndef TP_POOL_H
#define TP_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct tp_pool;

/* Most workers a pool may have (config's pool.workers maximum). */
#define TP_POOL_MAX_WORKERS 1024

/* Most cheap-only workers (config's pool.cheap_workers maximum). */
#define TP_POOL_MAX_CHEAP 16

/* Runs on a worker thread with n >= 1 nodes taken from the queue. */
typedef void (*tp_pool_exec_fn)(struct tp_qnode **nodes, size_t n, void *ctx);

struct tp_pool_stats {
	size_t workers;      /* threads running, cheap-only ones too (and ones finishing after a shrink) */
	size_t target;       /* configured size (general workers) */
	size_t cheap_target; /* configured cheap-only workers */
	size_t busy;         /* workers inside exec, cheap-only ones too */
	uint64_t oldest_busy_ns; /* CLOCK_MONOTONIC start of the longest-running exec, 0 if none */
	uint64_t stall_at_ns;    /* the earliest stall deadline of a running exec, 0 if none */
	uint64_t stall_since_ns; /* when that exec started */
	uint64_t pops;           /* batches taken from the queue since the start, by all workers */
};

/* A pool serving q. Starts no thread yet. NULL on ENOMEM. */
struct tp_pool *tp_pool_new(struct tp_queue *q, tp_pool_exec_fn exec, void *ctx);

/*
 * Start n workers and return once every one of them is running (so
 * readiness announced after this is true).  Returns 0 or a negative errno
 * from pthread_create (e.g. -EAGAIN when TasksMax is too low); on failure
 * the workers already started keep running and tp_pool_stop() ends them.
 */
int tp_pool_start(struct tp_pool *p, size_t n);

/*
 * Change the number of workers live.  Growing starts threads and returns
 * when they run; shrinking asks the surplus workers to finish their current
 * batch and exit, without waiting for them.  Returns 0 or a negative errno.
 */
int tp_pool_resize(struct tp_pool *p, size_t n);

/*
 * Run n (0..TP_POOL_MAX_CHEAP) cheap-only workers besides the general
 * ones: they take only batchable work (tp_queue_pop_cheap), so cheap
 * requests are served while every general worker is inside a long one.
 * Live, like tp_pool_resize(); tp_pool_stop() ends them too.  Returns 0
 * or a negative errno.
 */
int tp_pool_set_cheap(struct tp_pool *p, size_t n);

/*
 * Interruptible sleep for exec callbacks: returns 0 after ms milliseconds,
 * or -ECANCELED as soon as tp_pool_abort() is called.
 */
int tp_pool_sleep_ms(struct tp_pool *p, uint32_t ms);

/* Cut short every current and future tp_pool_sleep_ms() (shutdown deadline). */
void tp_pool_abort(struct tp_pool *p);

/*
 * Close the queue, let the workers drain it (waiters included), and join
 * every thread.  Blocks until done.
 */
void tp_pool_stop(struct tp_pool *p);

/* Any thread, without a lock: each worker's figures read once (relaxed), so a sum may mix moments. */
void tp_pool_stats(struct tp_pool *p, struct tp_pool_stats *ret);

/*
 * The stall budget of an exec call from now on (0: none, the default): a
 * call that starts gets the deadline start + ms, which tp_pool_stats()
 * reports; a later change does not move the deadline of a running call.
 * Any thread.
 */
void tp_pool_set_stall_ms(struct tp_pool *p, uint64_t ms);

/*
 * Inside an exec call, on its worker: the work it runs was accepted at
 * accepted_ns (CLOCK_MONOTONIC).  If the budget was lowered since, the
 * call's deadline is the larger one of before the lowering (the largest
 * lowered, if several were): what was accepted keeps the terms it was
 * accepted under, also when it started only after the change.  Does
 * nothing on any other thread.
 */
void tp_pool_stall_accepted_at(struct tp_pool *p, uint64_t accepted_ns);

/* Free a stopped pool (NULL is fine). */
void tp_pool_free(struct tp_pool *p);

#endif
