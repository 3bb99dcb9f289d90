/* SPDX-License-Identifier: MIT */
/*
 * queue_lane: the queue's side of the cheap lane: cheap-only workers'
 * pop and wake-ups (see the DESIGN in queue.c; the choice of node in the
 * fair modes is fairq_lane.c's).
 */
#include "queue.h"

#include "fairq.h"
#include "queue_priv.h"
#include "tp_assert.h"

void tp_queue_running_expensive(struct tp_queue *q, int delta)
{
	atomic_fetch_add_explicit(&q->nexpensive_running, (size_t)(ptrdiff_t)delta, memory_order_relaxed);
}

void tp_queue_wake_cheap(struct tp_queue *q)
{
	/*
	 * Only while some worker is inside expensive work: under cheap work
	 * alone the general workers come back within microseconds, and waking
	 * one more thread for it only costs a futex wake-up and a core.
	 */
	if (q->ncheap_idle > q->ncheap_waking && q->nidle <= q->nwaking && !q->spinner &&
	    atomic_load_explicit(&q->nexpensive_running, memory_order_relaxed) > 0) {
		q->ncheap_waking++;
		q->cheap_signals_due++;
	}
}

/* Batchable nodes only, each flow's in order. Lock held. */
static size_t take_cheap(struct tp_queue *q, struct tp_qnode **ret, size_t max)
{
	size_t n = 0;
	struct tp_qnode *w;

	if (!fair(q)) {
		/* One FIFO: no overtaking, so only a cheap head. */
		while (n < max && q->ready.head && q->ready.head->batchable)
			ret[n++] = list_shift(&q->ready);
		return n;
	}
	n = tp_fairq_pop_cheap(&q->fq, ret, max);
	if (n == 0 && max > 0 && (w = tp_fairq_cheap_waiter(&q->fq))) {
		/* Run without taking a place; its connection learns it was admitted first. */
		if (q->admit)
			q->admit(w, q->admit_ctx);
		ret[n++] = w;
	}
	return n;
}

size_t tp_queue_pop_cheap(struct tp_queue *q, struct tp_qnode **ret, size_t max, const atomic_bool *stop)
{
	size_t n = 0;

	pthread_mutex_lock(&q->lock);
	while (!(stop && atomic_load_explicit(stop, memory_order_acquire)) && !q->closed) {
		if ((n = take_cheap(q, ret, max)) > 0) {
			tp_queue_after_pop(q, n);
			break;
		}
		q->ncheap_idle++;
		TP_ASSERT(q->signals_due == 0 && q->cheap_signals_due == 0); /* all sent by tp_queue_unlock */
		pthread_cond_wait(&q->cheap_cond, &q->lock);
		q->ncheap_idle--;
		if (q->ncheap_waking)
			q->ncheap_waking--;
	}
	tp_queue_unlock(q);
	return n;
}
