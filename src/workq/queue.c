/* SPDX-License-Identifier: MIT */
/*
 * queue: bounded FIFO plus an ordered wait list.
 *
 * DESIGN
 * - Two intrusive singly linked lists under one mutex: `ready` (admitted,
 *   at most `capacity` nodes, taken by workers) and `wait` (arrived while
 *   `ready` was full; each node carries its own deadline).
 * - Invariant: `wait` is non-empty only while `ready` is full.  So a push
 *   admits only when nobody waits (a newcomer never overtakes a waiter),
 *   and every pop that frees a place admits the oldest waiter at once, under
 *   the same lock: admission is in arrival order and no place stays free
 *   while someone waits.
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
 * - The admit callback runs under the lock so that the notification that a
 *   waiter was admitted is published before any worker can take (and
 *   complete) that node.  Lock order: queue lock, then whatever the callback
 *   takes (an event loop's completion lock).  Nothing may take the queue
 *   lock while holding one of those.
 */
#include "queue.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "tp_assert.h"
#include "spin.h"

/* How long the spinning worker polls before it blocks, when polls pay. */
#define SPIN_NS 50000
/* A brief poll: a few dozen pauses, one yield of the core. */
#define SPIN_SHORT_NS 0

struct list {
	struct tp_qnode *head, *tail;
	size_t len;
};

struct tp_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list ready;
	struct list wait;
	size_t capacity;
	size_t nidle;        /* workers blocked in pop */
	size_t nwaking;      /* signals sent that no worker has consumed yet */
	bool spinner;        /* a worker is polling `nready` instead of sleeping */
	struct tp_spin spin; /* whether polling pays */
	uint64_t long_spins, short_spins;
	_Atomic size_t nready; /* ready.len, readable without the lock */
	bool closed;
	_Atomic uint64_t next_deadline; /* wait list head's deadline, readable without the lock */
	tp_queue_admit_fn admit;
	void *admit_ctx;
};

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

static struct tp_qnode *list_shift(struct list *l)
{
	struct tp_qnode *n = l->head;
	if (!n)
		return NULL;
	l->head = n->next;
	if (!l->head)
		l->tail = NULL;
	l->len--;
	n->next = NULL;
	return n;
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
	pthread_condattr_destroy(&ca);
	q->capacity = capacity ? capacity : 1;
	tp_spin_init(&q->spin);
	q->admit = admit;
	q->admit_ctx = admit_ctx;
	return q;
}

void tp_queue_free(struct tp_queue *q)
{
	if (!q)
		return;
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* Publish the wait list head's deadline for lock-free readers. Lock held. */
static void publish_deadline(struct tp_queue *q)
{
	atomic_store_explicit(&q->next_deadline, q->wait.head ? q->wait.head->deadline_ns : 0,
	                      memory_order_relaxed);
}

/* Publish ready.len for the spinner. Lock held. */
static void publish_ready(struct tp_queue *q)
{
	atomic_store_explicit(&q->nready, q->ready.len, memory_order_release);
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

/* Move waiters into free places, oldest first. Lock held. */
static size_t admit_waiters(struct tp_queue *q)
{
	size_t n = 0;
	while (q->wait.head && q->ready.len < q->capacity) {
		struct tp_qnode *w = list_shift(&q->wait);
		list_append(&q->ready, w);
		if (q->admit)
			q->admit(w, q->admit_ctx);
		n++;
	}
	if (n)
		publish_deadline(q);
	/* The DESIGN invariant: nobody waits while a place is free. */
	TP_ASSERT(q->wait.len == 0 || q->ready.len >= q->capacity);
	return n;
}

/*
 * Workers needed for n nodes made ready: one per expensive node, one per run
 * of cheap ones; never more than the idle workers not yet woken, so the walk
 * under the lock stays short.
 */
static size_t workers_wanted(const struct tp_queue *q, const struct tp_qnode *first, size_t n)
{
	size_t want = 0, cap = q->nidle > q->nwaking ? q->nidle - q->nwaking : 0;
	bool in_run = false;
	for (size_t i = 0; i < n && first && want < cap; i++, first = first->next) {
		if (!first->batchable) {
			want++;
			in_run = false;
		} else if (!in_run) {
			want++;
			in_run = true;
		}
	}
	return want;
}

int tp_queue_push(struct tp_queue *q, struct tp_qnode *first, size_t n)
{
	struct tp_qnode *node = first, *admitted_first = NULL;
	size_t admitted = 0;

	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return -EPIPE;
	}
	for (size_t i = 0; i < n && node; i++) {
		struct tp_qnode *next = node->next;
		if (q->wait.len == 0 && q->ready.len < q->capacity) {
			list_append(&q->ready, node);
			if (!admitted_first)
				admitted_first = node;
			admitted++;
		} else {
			list_append(&q->wait, node);
		}
		node = next;
	}
	publish_deadline(q);
	publish_ready(q);
	TP_ASSERT(q->wait.len == 0 || q->ready.len >= q->capacity);
	if (admitted)
		wake_workers(q, workers_wanted(q, admitted_first, admitted));
	pthread_mutex_unlock(&q->lock);
	return (int)admitted;
}

/* Poll for work without the lock for up to spin_ns. Returns true if some appeared. */
static bool spin_for_work(struct tp_queue *q, uint64_t spin_ns, const atomic_bool *stop)
{
	uint64_t end = tp_clock_ns() + spin_ns;
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&q->nready, memory_order_acquire) > 0)
			return true;
		if (stop && atomic_load_explicit(stop, memory_order_relaxed))
			return false;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		/*
		 * Yield now and then: on a machine with more runnable threads
		 * than cores, the thread this one waits for may need this core.
		 */
		if ((i & 63) == 0 && (sched_yield(), tp_clock_ns() >= end))
			return false;
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
		if (q->ready.head)
			break;
		if (q->closed && !q->wait.head)
			break;
		if (!spun && !q->spinner && !q->closed) {
			/* Pushes see `spinner` under the lock and leave one share of work to us. */
			bool long_spin = tp_spin_long(&q->spin);
			q->spinner = true;
			pthread_mutex_unlock(&q->lock);
			bool hit = spin_for_work(q, long_spin ? SPIN_NS : SPIN_SHORT_NS, stop);
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
	if (!(stop && atomic_load_explicit(stop, memory_order_acquire))) {
		while (n < max && q->ready.head) {
			if (n > 0 && !(q->ready.head->batchable && ret[0]->batchable))
				break;
			ret[n++] = list_shift(&q->ready);
		}
	}
	if (n) {
		admit_waiters(q);
		publish_ready(q);
	}
	/*
	 * Left-over work and idle colleagues: hand it on rather than leave it
	 * queued.  Also when leaving on *stop: this worker may have absorbed
	 * the wake-up, or the spinner's share, meant for that work.
	 */
	if (q->ready.head)
		wake_workers(q, workers_wanted(q, q->ready.head, q->ready.len));
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t tp_queue_expire(struct tp_queue *q, uint64_t now_ns, struct tp_qnode **ret_first,
                       uint64_t *ret_next_ns)
{
	struct list out = {0};

	pthread_mutex_lock(&q->lock);
	while (q->wait.head && q->wait.head->deadline_ns <= now_ns)
		list_append(&out, list_shift(&q->wait));
	*ret_next_ns = q->wait.head ? q->wait.head->deadline_ns : 0;
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
		wake_workers(q, workers_wanted(q, q->ready.head, q->ready.len));
	pthread_mutex_unlock(&q->lock);
}

void tp_queue_close(struct tp_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->cond);
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

size_t tp_queue_take_all(struct tp_queue *q, struct tp_qnode **ret_first)
{
	struct list out = {0};
	struct tp_qnode *n;

	pthread_mutex_lock(&q->lock);
	while ((n = list_shift(&q->ready)))
		list_append(&out, n);
	while ((n = list_shift(&q->wait)))
		list_append(&out, n);
	publish_deadline(q);
	publish_ready(q);
	pthread_mutex_unlock(&q->lock);
	*ret_first = out.head;
	return out.len;
}

void tp_queue_wake_all(struct tp_queue *q)
{
	pthread_mutex_lock(&q->lock);
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void tp_queue_stats(struct tp_queue *q, struct tp_queue_stats *ret)
{
	pthread_mutex_lock(&q->lock);
	ret->depth = q->ready.len;
	ret->waiting = q->wait.len;
	ret->capacity = q->capacity;
	ret->idle = q->nidle;
	ret->long_spins = q->long_spins;
	ret->short_spins = q->short_spins;
	pthread_mutex_unlock(&q->lock);
}
