/* SPDX-License-Identifier: MIT */
/*
 * queue: the bounded queue, its wait list and its workers' wake-ups.
 *
 * DESIGN
 * - Under one mutex, the admitted nodes (at most `capacity` requests,
 *   taken by workers) and the waiting ones (arrived while it was full; each
 *   node carries its own deadline).  A node may stand for several requests
 *   (fairq.h, tp_qnode_weight): every count here is of requests, and a
 *   node is admitted only when all of its requests fit.  In TP_FAIR_NONE
 *   these are two intrusive FIFO lists, `ready` and `wait`; in the fair
 *   modes the discipline in fairq.c holds both (`fq`), flow by flow.
 * - Invariant: nobody waits unless the waiter whose turn it is does not
 *   fit in what is free.  So a push admits only when nobody waits, and
 *   every pop that frees a place (and every expiry, which may leave a
 *   lighter waiter next) admits waiters at once, under the same lock: no
 *   place the next waiter fits in stays free.  Which waiter: the oldest in
 *   TP_FAIR_NONE (a newcomer never overtakes a waiter), the one of the
 *   least loaded group and flow in the fair modes (a newcomer of a light
 *   client overtakes the waiters of a heavy one), where a pop admits before
 *   it chooses, so that a light waiter is taken by the very pop that made
 *   room for it.
 * - Expiry is done by the event loops (they own the timers): waiters whose
 *   deadline passed are unlinked from the head.  With one queue_timeout_ms
 *   deadlines grow along the list, so the head is always the next to expire.
 *   A reload that shortens the timeout caps every waiter's deadline at its
 *   own time plus the new timeout (tp_queue_cap_deadlines), and that of
 *   every node that starts to wait later at its push's time plus it (a line
 *   read before the reload, pushed after it, on any loop), which keeps
 *   them growing.  Two loops stamp deadlines at the start of their turns
 *   and push at the end, so across loops a newer waiter may carry a
 *   deadline a little earlier than an older one's: it leaves with the
 *   older one, late by at most that turn.  A line a paused connection set
 *   aside in its framer keeps its read's deadline, which may have passed
 *   when it is pushed.  In the fair modes, when its deadline is earlier
 *   than the first waiter's and no waiter of its flow would be behind it,
 *   it goes before that one in the expiry order (which is not the order of
 *   admission there), so that it leaves at its own deadline however many
 *   younger waiters other clients have.  Otherwise (and in TP_FAIR_NONE,
 *   where the wait list is the order of admission) it leaves with the
 *   waiters ahead of it.
 * - Workers sleep on `cond` only in tp_queue_pop().  A push signals no more
 *   workers than are idle and not already woken (`nwaking`), so a burst does
 *   not wake the whole pool for work one worker takes as a batch.
 * - Signals are decided under the lock (counted in `nwaking`) and sent
 *   once it is released (tp_queue_unlock).  A worker woken while the
 *   pusher still holds the lock would block on the lock at once, and the
 *   pusher's release would cost a second futex wake-up (glibc's condition
 *   variables do not move waiters onto the mutex).  A signal sent after
 *   the release still has a waiter to wake or, if that waiter already left
 *   by a broadcast or a spurious wake-up, it consumed the count itself.
 * - Before blocking, one worker at a time (`spinner`) polls for new work
 *   without the lock: for up to SPIN_NS while such polls keep finding work
 *   (request-reply traffic), otherwise only briefly (spin.h decides).  The
 *   next request then costs no futex wake-up on either side; a push leaves
 *   that worker's share of the work to it.  The spin only follows work just
 *   done, so an idle pool still sleeps: after at most SPIN_NS every worker
 *   blocks.
 * - Cheap-only workers (tp_queue_pop_cheap) sleep on `cheap_cond`, counted
 *   apart (`ncheap_idle`, `ncheap_waking`), so they never absorb a signal
 *   meant for expensive work.  One is woken when cheap work is pushed (or
 *   left over by a pop) while no general worker is idle or spinning and
 *   some worker is inside expensive work (counted in by the pop that takes
 *   it, before its wake-ups, and out by the pool, tp_queue_running_expensive):
 *   under cheap work alone the general workers come back at once, and a
 *   wake-up would only cost.  They do
 *   not spin.  They take only batchable nodes, never overtaking in a
 *   flow (fairq_lane.c; in TP_FAIR_NONE only a batchable FIFO head).  In
 *   a full queue they may run the cheap waiter whose turn it is to be
 *   admitted: it never takes a place, so the bound and the invariant hold.
 * - The admit callback runs under the lock so that the notification that a
 *   waiter was admitted is published before any worker can take (and
 *   complete) that node.  Lock order: queue lock, then whatever the callback
 *   takes (an event loop's completion lock).  Nothing may take the queue
 *   lock while holding one of those.
 */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "fairq.h"
#include "queue_priv.h"
#include "tp_assert.h"
#include "spin.h"

/* How long the spinning worker polls before it blocks, when polls pay. */
#define SPIN_NS 50000
/* A brief poll: a few dozen pauses, one yield of the core. */
#define SPIN_SHORT_NS 0

/* Requests admitted: what the bound is on. */
static size_t nready(const struct tp_queue *q)
{
	return fair(q) ? q->fq.nready : q->ready.weight;
}

/* Requests waiting. */
static size_t nwait(const struct tp_queue *q)
{
	return fair(q) ? q->fq.nwait : q->wait.weight;
}

/* The waiter whose turn it is to be admitted, still linked, or NULL. */
static struct tp_qnode *next_waiter(const struct tp_queue *q)
{
	if (!fair(q))
		return q->wait.head;
	struct tp_qflow *f = tp_fairq_next_waiting_flow(&q->fq);
	return f ? f->whead : NULL;
}

/*
 * Do all of n's requests fit in the free places?  A node heavier than the
 * whole capacity (a reload shrank it) fits an empty queue, or it would
 * wait forever and, in TP_FAIR_NONE, hold up everyone behind it.
 */
static bool fits(const struct tp_queue *q, const struct tp_qnode *n)
{
	return nready(q) + tp_qnode_weight(n) <= q->capacity || nready(q) == 0;
}

/* The DESIGN invariant: nobody waits unless the waiter next in turn does not fit. */
static bool settled(const struct tp_queue *q)
{
	const struct tp_qnode *w = next_waiter(q);
	return !w || !fits(q, w);
}

void tp_queue_add(struct tp_queue *q, struct tp_qnode *n, bool ready)
{
	if (fair(q))
		(ready ? tp_fairq_add_ready : tp_fairq_add_wait)(&q->fq, n);
	else
		list_append(ready ? &q->ready : &q->wait, n);
}

struct tp_queue *tp_queue_new(size_t capacity, tp_queue_admit_fn admit, void *admit_ctx)
{
	struct tp_queue *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	if (!q)
		return NULL;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_cond_init(&q->cheap_cond, &ca);
	pthread_condattr_destroy(&ca);
	q->capacity = capacity ? capacity : 1;
	tp_spin_init(&q->spin);
	q->wait_limit_ns = UINT64_MAX;
	tp_queue_fairq_init(q, TP_FAIR_CONNECTION);
	q->admit = admit;
	q->admit_ctx = admit_ctx;
	return q;
}

void tp_queue_free(struct tp_queue *q)
{
	if (!q)
		return;
	pthread_cond_destroy(&q->cond);
	pthread_cond_destroy(&q->cheap_cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

void tp_queue_unlock(struct tp_queue *q)
{
	size_t n = q->signals_due, ncheap = q->cheap_signals_due;

	q->signals_due = q->cheap_signals_due = 0;
	pthread_mutex_unlock(&q->lock);
	while (n-- > 0)
		pthread_cond_signal(&q->cond);
	while (ncheap-- > 0)
		pthread_cond_signal(&q->cheap_cond);
}

/* Publish the wait list head's deadline for lock-free readers. Lock held. */
static void publish_deadline(struct tp_queue *q)
{
	struct tp_qnode *w = oldest_waiter(q);
	atomic_store_explicit(&q->next_deadline, w ? w->deadline_ns : 0, memory_order_relaxed);
}

/* Publish the admitted weight for the spinner. Lock held. */
static void publish_ready(struct tp_queue *q)
{
	atomic_store_explicit(&q->nready, nready(q), memory_order_release);
}

void tp_queue_publish(struct tp_queue *q)
{
	publish_deadline(q);
	publish_ready(q);
}

/*
 * Wake up to `want` idle workers that have not been woken already.  A
 * spinning worker takes the first share itself.
 */
static void wake_workers(struct tp_queue *q, size_t want)
{
	if (q->spinner && want > 0)
		want--;
	while (want > 0 && q->nidle > q->nwaking) {
		q->nwaking++;
		q->signals_due++;
		want--;
	}
}

/* Admit the waiter whose turn it is (see the DESIGN). Lock held. */
static void admit_one(struct tp_queue *q)
{
	struct tp_qnode *w = fair(q) ? tp_fairq_next_waiter(&q->fq) : list_shift(&q->wait);
	tp_queue_add(q, w, true);
	if (q->admit)
		q->admit(w, q->admit_ctx);
}

/* Move waiters into free places, in their turns, while the next one fits. Lock held. */
static size_t admit_waiters(struct tp_queue *q)
{
	size_t n = 0;
	for (struct tp_qnode *w; (w = next_waiter(q)) && fits(q, w); n++)
		admit_one(q);
	if (n)
		publish_deadline(q);
	TP_ASSERT(settled(q));
	return n;
}

/* Idle workers that no signal is on its way to yet: the most worth waking. Lock held. */
static size_t idle_unwoken(const struct tp_queue *q)
{
	return q->nidle > q->nwaking ? q->nidle - q->nwaking : 0;
}

/*
 * Workers needed for n nodes made ready in FIFO order: one per expensive
 * node, one per run of cheap ones; never more than the idle workers not yet
 * woken, so the walk under the lock stays short.
 */
static size_t workers_wanted(const struct tp_queue *q, const struct tp_qnode *first, size_t n)
{
	size_t want = 0, cap = idle_unwoken(q);
	bool in_run = false;
	for (size_t i = 0; i < n && first && want < cap; i++, first = first->next) {
		want += !first->batchable || !in_run;
		in_run = first->batchable;
	}
	return want;
}

/* The fair modes: one worker per expensive node, one for the cheap ones (a batch spans flows). */
static size_t workers_wanted_fair(const struct tp_queue *q, size_t nready, size_t nexpensive)
{
	size_t want = nexpensive + (nready > nexpensive), cap = idle_unwoken(q);
	return want < cap ? want : cap;
}

/* Workers needed for everything admitted. Lock held. */
static size_t workers_wanted_all(const struct tp_queue *q)
{
	return fair(q) ? workers_wanted_fair(q, q->fq.nready, q->fq.nexpensive)
	               : workers_wanted(q, q->ready.head, q->ready.len);
}

int tp_queue_push(struct tp_queue *q, struct tp_qnode *first, size_t n)
{
	struct tp_qnode *node = first;
	size_t admitted, room, want;
	bool cheap;

	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		tp_queue_unlock(q);
		return -EPIPE;
	}
	/* Nobody waits while there is room (DESIGN): the nodes that fit, in order, are admitted. */
	room = nwait(q) == 0 && nready(q) < q->capacity ? q->capacity - nready(q) : 0;
	if (fair(q)) {
		/* Each flow's run in one step; the workers wanted follow from what it added. */
		size_t nexp = q->fq.nexpensive;
		admitted = tp_fairq_add_ready_chain(&q->fq, &node, n, room);
		nexp = q->fq.nexpensive - nexp;
		cheap = admitted > nexp;
		want = workers_wanted_fair(q, admitted, nexp);
	} else {
		/* Counted before the nodes are linked into the queue's lists. */
		size_t used = 0;
		cheap = false;
		for (admitted = 0; node && admitted < n && used + tp_qnode_weight(node) <= room; admitted++) {
			used += tp_qnode_weight(node);
			cheap |= node->batchable;
			node = node->next;
		}
		want = workers_wanted(q, first, admitted);
		for (size_t i = 0; i < admitted; i++) {
			struct tp_qnode *next = first->next;
			tp_queue_add(q, first, true);
			first = next;
		}
	}
	/* Those that wait do so under the latest timeout (tp_queue_cap_deadlines). */
	uint64_t until_ns = admitted < n && q->wait_limit_ns != UINT64_MAX
	                            ? tp_queue_wait_until(tp_clock_ns(), q->wait_limit_ns)
	                            : UINT64_MAX;
	struct tp_fairq_push_pos pos = {q->fq.whead, NULL}; /* in the expiry order (DESIGN) */
	for (size_t i = admitted; i < n && node; i++) {
		struct tp_qnode *next = node->next;
		cheap |= node->batchable;
		if (node->deadline_ns > until_ns)
			node->deadline_ns = until_ns;
		fair(q) ? tp_fairq_add_pushed_wait(&q->fq, node, &pos) : list_append(&q->wait, node);
		node = next;
	}
	/* In the fair modes a lighter flow's waiter may fit where the first that waits did not. */
	if (nwait(q) > 0 && admit_waiters(q) > 0)
		want = workers_wanted_all(q);
	tp_queue_publish(q);
	if (want)
		wake_workers(q, want);
	if (cheap) /* admitted or waiting: the lane takes a cheap waiter too */
		tp_queue_wake_cheap(q);
	tp_queue_unlock(q);
	return (int)admitted;
}

/*
 * The place this pop frees goes to a waiter first, who competes for this
 * very pop: when it fits once the pop has taken a request (a pop takes at
 * least one); else it is admitted after the pop, as far as it fits then.
 */
static size_t fair_pop(struct tp_queue *q, struct tp_qnode **ret, size_t max)
{
	size_t before = q->fq.nready; /* above the capacity only after a reload shrank it */
	struct tp_qnode *w = before > 0 ? next_waiter(q) : NULL;
	if (w && before + tp_qnode_weight(w) <= q->capacity + 1)
		admit_one(q);
	size_t n = tp_fairq_pop(&q->fq, ret, max);
	TP_ASSERT(q->fq.nready <= (before > q->capacity ? before : q->capacity));
	return n;
}

/* Wake workers, general and cheap-only, for what is admitted. Lock held. */
static void wake_for_ready(struct tp_queue *q)
{
	if (nready(q) > 0) {
		wake_workers(q, workers_wanted_all(q));
		if (fair(q) ? q->fq.nready > q->fq.nexpensive : q->ready.head->batchable)
			tp_queue_wake_cheap(q);
	}
}

void tp_queue_admit_and_wake(struct tp_queue *q)
{
	if (admit_waiters(q)) {
		publish_ready(q);
		wake_for_ready(q);
	}
}

void tp_queue_after_pop(struct tp_queue *q, size_t n)
{
	if (n) {
		admit_waiters(q);
		tp_queue_publish(q); /* also after fair_pop's admission */
	}
	/*
	 * Left-over work and idle colleagues: hand it on rather than leave it
	 * queued.  Also when leaving on *stop: this worker may have absorbed
	 * the wake-up, or the spinner's share, meant for that work.
	 */
	wake_for_ready(q);
}

size_t tp_queue_pop(struct tp_queue *q, struct tp_qnode **ret, size_t max, const atomic_bool *stop)
{
	size_t n = 0;
	bool spun = false;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		if (stop && atomic_load_explicit(stop, memory_order_acquire))
			break;
		if (nready(q) > 0)
			break;
		if (q->closed && nwait(q) == 0)
			break;
		if (!spun && !q->spinner && !q->closed) {
			/* Pushes see `spinner` under the lock and leave one share of work to us. */
			bool long_spin = tp_spin_long(&q->spin);
			q->spinner = true;
			tp_queue_unlock(q);
			bool hit = tp_spin_poll(&q->nready, long_spin ? SPIN_NS : SPIN_SHORT_NS, stop);
			pthread_mutex_lock(&q->lock);
			q->spinner = false;
			if (long_spin) {
				tp_spin_record(&q->spin, hit);
				q->long_spins++;
			} else {
				q->short_spins++;
			}
			spun = true;
			continue;
		}
		q->nidle++;
		TP_ASSERT(q->signals_due == 0 && q->cheap_signals_due == 0); /* all sent by tp_queue_unlock */
		pthread_cond_wait(&q->cond, &q->lock);
		q->nidle--;
		if (q->nwaking)
			q->nwaking--;
	}
	if (fair(q)) {
		if (!(stop && atomic_load_explicit(stop, memory_order_acquire)))
			n = fair_pop(q, ret, max);
	} else if (!(stop && atomic_load_explicit(stop, memory_order_acquire))) {
		while (n < max && q->ready.head) {
			if (n > 0 && !(q->ready.head->batchable && ret[0]->batchable))
				break;
			ret[n++] = list_shift(&q->ready);
		}
	}
	if (n > 0 && !ret[0]->batchable) /* before the wake-ups: the lane runs the cheap work it leaves */
		tp_queue_running_expensive(q, +1);
	tp_queue_after_pop(q, n);
	tp_queue_unlock(q);
	return n;
}

uint64_t tp_queue_next_deadline(struct tp_queue *q)
{
	return atomic_load_explicit(&q->next_deadline, memory_order_relaxed);
}

size_t tp_queue_admitted(struct tp_queue *q)
{
	return atomic_load_explicit(&q->nready, memory_order_relaxed);
}

void tp_queue_set_capacity(struct tp_queue *q, size_t capacity)
{
	pthread_mutex_lock(&q->lock);
	q->capacity = capacity ? capacity : 1;
	tp_queue_admit_and_wake(q);
	tp_queue_unlock(q);
}

void tp_queue_close(struct tp_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->cond);
	pthread_cond_broadcast(&q->cheap_cond);
	tp_queue_unlock(q);
}

bool tp_queue_closed(struct tp_queue *q)
{
	bool c;
	pthread_mutex_lock(&q->lock);
	c = q->closed;
	tp_queue_unlock(q);
	return c;
}

void tp_queue_wake_all(struct tp_queue *q)
{
	pthread_mutex_lock(&q->lock);
	pthread_cond_broadcast(&q->cond);
	pthread_cond_broadcast(&q->cheap_cond);
	tp_queue_unlock(q);
}

void tp_queue_stats(struct tp_queue *q, struct tp_queue_stats *ret)
{
	pthread_mutex_lock(&q->lock);
	ret->depth = nready(q);
	ret->waiting = nwait(q);
	ret->fairness = q->mode;
	ret->flows = fair(q) ? q->fq.nflows : 0;
	ret->largest = fair(q) ? tp_fairq_largest(&q->fq) : 0;
	ret->capacity = q->capacity;
	ret->idle = q->nidle;
	ret->cheap_idle = q->ncheap_idle;
	ret->long_spins = q->long_spins;
	ret->short_spins = q->short_spins;
	tp_queue_unlock(q);
}
