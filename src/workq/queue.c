/* SPDX-License-Identifier: MIT */
/*
 * queue: the bounded queue, its wait list and its workers' wake-ups.
 *
 * DESIGN
 * - Under one mutex, the admitted nodes (at most `capacity`, taken by
 *   workers) and the waiting ones (arrived while it was full; each node
 *   carries its own deadline).  In TP_FAIR_NONE these are two intrusive
 *   FIFO lists, `ready` and `wait`; in the fair modes the discipline in
 *   fairq.c holds both (`fq`), flow by flow.
 * - Invariant: nobody waits unless the admitted part is full.  So a push
 *   admits only when nobody waits, and every pop that frees a place admits
 *   a waiter at once, under the same lock: no place stays free while
 *   someone waits.  Which waiter: the oldest in TP_FAIR_NONE (a newcomer
 *   never overtakes a waiter), the one of the least loaded group and flow
 *   in the fair modes (a newcomer of a light client overtakes the waiters
 *   of a heavy one), where a pop admits before it chooses, so that a light
 *   waiter is taken by the very pop that made room for it.
 * - Expiry is done by the event loops (they own the timers): waiters whose
 *   deadline passed are unlinked from the head.  With one queue_timeout_ms
 *   deadlines grow along the list, so the head is always the next to expire;
 *   after a reload shortens the timeout, newer waiters wait at most until
 *   the older ones have gone, which is bounded by the old timeout.
 * - Workers sleep on `cond` only in tp_queue_pop().  A push signals no more
 *   workers than are idle and not already woken (`nwaking`), so a burst does
 *   not wake the whole pool for work one worker takes as a batch.
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
 *   some worker is inside expensive work (the pool counts those,
 *   tp_queue_running_expensive): under cheap work alone the general
 *   workers come back at once, and a wake-up would only cost.  They do
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

static void list_append(struct list *l, struct tp_qnode *n)
{
	n->next = NULL;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	l->len++;
}

static size_t nready(const struct tp_queue *q)
{
	return fair(q) ? q->fq.nready : q->ready.len;
}

static size_t nwait(const struct tp_queue *q)
{
	return fair(q) ? q->fq.nwait : q->wait.len;
}

static struct tp_qnode *oldest_waiter(const struct tp_queue *q)
{
	return fair(q) ? tp_fairq_oldest_waiter(&q->fq) : q->wait.head;
}

/* Admit n (ready) or let it wait. Lock held. */
static void add(struct tp_queue *q, struct tp_qnode *n, bool ready)
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
	tp_fairq_init(&q->fq, TP_FAIR_CONNECTION);
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

/* Publish the wait list head's deadline for lock-free readers. Lock held. */
static void publish_deadline(struct tp_queue *q)
{
	struct tp_qnode *w = oldest_waiter(q);
	atomic_store_explicit(&q->next_deadline, w ? w->deadline_ns : 0, memory_order_relaxed);
}

/* Publish ready.len for the spinner. Lock held. */
static void publish_ready(struct tp_queue *q)
{
	atomic_store_explicit(&q->nready, nready(q), memory_order_release);
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
		pthread_cond_signal(&q->cond);
		want--;
	}
}

/* Admit the waiter whose turn it is (see the DESIGN). Lock held. */
static void admit_one(struct tp_queue *q)
{
	struct tp_qnode *w = fair(q) ? tp_fairq_next_waiter(&q->fq) : list_shift(&q->wait);
	add(q, w, true);
	if (q->admit)
		q->admit(w, q->admit_ctx);
}

/* Move waiters into free places. Lock held. */
static size_t admit_waiters(struct tp_queue *q)
{
	size_t n = 0;
	for (; nwait(q) > 0 && nready(q) < q->capacity; n++)
		admit_one(q);
	if (n)
		publish_deadline(q);
	/* The DESIGN invariant: nobody waits while a place is free. */
	TP_ASSERT(nwait(q) == 0 || nready(q) >= q->capacity);
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
		pthread_mutex_unlock(&q->lock);
		return -EPIPE;
	}
	/* Nobody waits while there is room (DESIGN), so the first `room` nodes are admitted. */
	room = nwait(q) == 0 && nready(q) < q->capacity ? q->capacity - nready(q) : 0;
	admitted = n < room ? n : room;
	if (fair(q)) {
		/* Each flow's run in one step; the workers wanted follow from what it added. */
		size_t nexp = q->fq.nexpensive;
		admitted = tp_fairq_add_ready_chain(&q->fq, &node, admitted);
		nexp = q->fq.nexpensive - nexp;
		cheap = admitted > nexp;
		want = workers_wanted_fair(q, admitted, nexp);
	} else {
		/* Counted before the nodes are linked into the queue's lists. */
		size_t i = 0;
		want = workers_wanted(q, first, admitted);
		for (cheap = false; i < admitted && node; i++) {
			struct tp_qnode *next = node->next;
			cheap |= node->batchable;
			add(q, node, true);
			node = next;
		}
		admitted = i;
	}
	for (size_t i = admitted; i < n && node; i++) {
		struct tp_qnode *next = node->next;
		cheap |= node->batchable;
		add(q, node, false);
		node = next;
	}
	publish_deadline(q);
	publish_ready(q);
	TP_ASSERT(nwait(q) == 0 || nready(q) >= q->capacity);
	if (admitted)
		wake_workers(q, want);
	if (cheap) /* admitted or waiting: the lane takes a cheap waiter too */
		tp_queue_wake_cheap(q);
	pthread_mutex_unlock(&q->lock);
	return (int)admitted;
}

/* The place this pop frees goes to a waiter first, who competes for this very pop. */
static size_t fair_pop(struct tp_queue *q, struct tp_qnode **ret, size_t max)
{
	if (q->fq.nready > 0 && q->fq.nwait > 0)
		admit_one(q);
	size_t n = tp_fairq_pop(&q->fq, ret, max);
	TP_ASSERT(q->fq.nready <= q->capacity);
	return n;
}

void tp_queue_after_pop(struct tp_queue *q, size_t n)
{
	if (n) {
		admit_waiters(q);
		publish_deadline(q); /* also after fair_pop's admission */
		publish_ready(q);
	}
	/*
	 * Left-over work and idle colleagues: hand it on rather than leave it
	 * queued.  Also when leaving on *stop: this worker may have absorbed
	 * the wake-up, or the spinner's share, meant for that work.
	 */
	if (nready(q) > 0) {
		wake_workers(q, workers_wanted_all(q));
		if (fair(q) ? q->fq.nready > q->fq.nexpensive : q->ready.head->batchable)
			tp_queue_wake_cheap(q);
	}
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
			pthread_mutex_unlock(&q->lock);
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
	tp_queue_after_pop(q, n);
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t tp_queue_expire(struct tp_queue *q, uint64_t now_ns, struct tp_qnode **ret_first,
                       uint64_t *ret_next_ns)
{
	struct list out = {0};

	pthread_mutex_lock(&q->lock);
	for (struct tp_qnode *w; (w = oldest_waiter(q)) && w->deadline_ns <= now_ns; list_append(&out, w))
		fair(q) ? tp_fairq_remove_waiter(&q->fq, w) : (void)list_shift(&q->wait);
	*ret_next_ns = oldest_waiter(q) ? oldest_waiter(q)->deadline_ns : 0;
	publish_deadline(q);
	pthread_mutex_unlock(&q->lock);
	*ret_first = out.head;
	return out.len;
}

uint64_t tp_queue_next_deadline(struct tp_queue *q)
{
	return atomic_load_explicit(&q->next_deadline, memory_order_relaxed);
}

void tp_queue_set_capacity(struct tp_queue *q, size_t capacity)
{
	pthread_mutex_lock(&q->lock);
	q->capacity = capacity ? capacity : 1;
	size_t admitted = admit_waiters(q);
	publish_ready(q);
	if (admitted)
		wake_workers(q, workers_wanted_all(q));
	pthread_mutex_unlock(&q->lock);
}

void tp_queue_close(struct tp_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->cond);
	pthread_cond_broadcast(&q->cheap_cond);
	pthread_mutex_unlock(&q->lock);
}

bool tp_queue_closed(struct tp_queue *q)
{
	bool c;
	pthread_mutex_lock(&q->lock);
	c = q->closed;
	pthread_mutex_unlock(&q->lock);
	return c;
}

/* Append the nodes linked through next from first to l. */
static void append_chain(struct list *l, struct tp_qnode *first)
{
	while (first) {
		struct tp_qnode *next = first->next;
		list_append(l, first);
		first = next;
	}
}

/* Unlink every node: admitted ones in *ret_ready (each flow's in order), waiting ones in *ret_wait. */
static void take_chains(struct tp_queue *q, struct tp_qnode **ret_ready, struct tp_qnode **ret_wait)
{
	if (fair(q)) {
		tp_fairq_take_all(&q->fq, ret_ready, ret_wait);
		return;
	}
	*ret_ready = q->ready.head;
	*ret_wait = q->wait.head;
	q->ready = (struct list){0};
	q->wait = (struct list){0};
}

void tp_queue_set_fairness(struct tp_queue *q, enum tp_fairness mode)
{
	struct tp_qnode *ready, *wait, *n;

	pthread_mutex_lock(&q->lock);
	if (mode != q->mode) {
		take_chains(q, &ready, &wait);
		q->mode = mode;
		tp_fairq_init(&q->fq, mode == TP_FAIR_NONE ? TP_FAIR_CONNECTION : mode);
		for (; (n = ready); add(q, n, true))
			ready = n->next;
		for (; (n = wait); add(q, n, false))
			wait = n->next;
		/* Same counts as before: the invariant holds and nothing is to admit or wake. */
		TP_ASSERT(nwait(q) == 0 || nready(q) >= q->capacity);
	}
	pthread_mutex_unlock(&q->lock);
}

/* Lock held: publish, unlock, and hand over ready then wait, joined, in *ret_first. Returns the count. */
static size_t unlock_handing(struct tp_queue *q, struct tp_qnode *ready, struct tp_qnode *wait,
                             struct tp_qnode **ret_first)
{
	struct list out = {0};

	publish_deadline(q);
	publish_ready(q);
	pthread_mutex_unlock(&q->lock);
	append_chain(&out, ready);
	append_chain(&out, wait);
	*ret_first = out.head;
	return out.len;
}

size_t tp_queue_take_flow(struct tp_queue *q, struct tp_qflow *f, struct tp_qnode **ret_first)
{
	struct tp_qnode *ready = NULL, *wait = NULL;

	pthread_mutex_lock(&q->lock);
	if (fair(q)) {
		tp_fairq_take_flow(&q->fq, f, &ready, &wait);
		if (admit_waiters(q))
			wake_workers(q, workers_wanted_all(q));
	}
	return unlock_handing(q, ready, wait, ret_first);
}

size_t tp_queue_take_all(struct tp_queue *q, struct tp_qnode **ret_first)
{
	struct tp_qnode *ready, *wait;

	pthread_mutex_lock(&q->lock);
	take_chains(q, &ready, &wait);
	return unlock_handing(q, ready, wait, ret_first);
}

void tp_queue_wake_all(struct tp_queue *q)
{
	pthread_mutex_lock(&q->lock);
	pthread_cond_broadcast(&q->cond);
	pthread_cond_broadcast(&q->cheap_cond);
	pthread_mutex_unlock(&q->lock);
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
	ret->long_spins = q->long_spins;
	ret->short_spins = q->short_spins;
	pthread_mutex_unlock(&q->lock);
}
