/* SPDX-License-Identifier: MIT */
/*
 * queue_take: taking nodes out of the queue other than by a worker's pop:
 * expired waiters, one flow's nodes (its owner has gone), everything
 * (shutdown), and the change of discipline, which takes everything out and
 * puts it back; the cost of a popped node that did not run given back.
 * See the DESIGN in queue.c.
 */
#include "queue.h"

#include <pthread.h>
#include <stdatomic.h>

#include "fairq.h"
#include "queue_priv.h"

size_t tp_queue_expire(struct tp_queue *q, uint64_t now_ns, struct tp_qnode **ret_first,
                       uint64_t *ret_next_ns)
{
	struct list out = {0};

	pthread_mutex_lock(&q->lock);
	for (struct tp_qnode *w; (w = oldest_waiter(q)) && w->deadline_ns <= now_ns; list_append(&out, w))
		fair(q) ? tp_fairq_remove_waiter(&q->fq, w) : (void)list_shift(&q->wait);
	/* The waiter next in turn now may be one that fits (DESIGN). */
	if (out.len)
		tp_queue_admit_and_wake(q);
	tp_queue_publish(q);
	*ret_next_ns = atomic_load_explicit(&q->next_deadline, memory_order_relaxed); /* as published */
	tp_queue_unlock(q);
	*ret_first = out.head;
	return out.len;
}

void tp_queue_cap_deadlines(struct tp_queue *q, uint64_t now_ns, uint64_t wait_ns)
{
	uint64_t until_ns = tp_queue_wait_until(now_ns, wait_ns);

	pthread_mutex_lock(&q->lock);
	q->wait_limit_ns = wait_ns;
	for (struct tp_qnode *w = oldest_waiter(q); w; w = fair(q) ? w->wnext : w->next)
		if (w->deadline_ns > until_ns)
			w->deadline_ns = until_ns;
	tp_queue_publish(q);
	tp_queue_unlock(q);
}

void tp_queue_refund(struct tp_queue *q, struct tp_qflow *f, const struct tp_qnode *n)
{
	pthread_mutex_lock(&q->lock);
	if (fair(q))
		tp_fairq_refund(&q->fq, f, tp_fairq_cost_of(n));
	tp_queue_unlock(q);
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
		tp_queue_fairq_init(q, mode == TP_FAIR_NONE ? TP_FAIR_CONNECTION : mode);
		for (; (n = ready); tp_queue_add(q, n, true))
			ready = n->next;
		for (; (n = wait); tp_queue_add(q, n, false))
			wait = n->next;
		/* Same counts, but the waiter next in turn may be another, one that fits. */
		tp_queue_admit_and_wake(q);
	}
	tp_queue_unlock(q);
}

/* Lock held: publish, unlock, and hand over ready then wait, joined, in *ret_first. Returns the count. */
static size_t unlock_handing(struct tp_queue *q, struct tp_qnode *ready, struct tp_qnode *wait,
                             struct tp_qnode **ret_first)
{
	struct list out = {0};

	tp_queue_publish(q);
	tp_queue_unlock(q);
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
		tp_queue_admit_and_wake(q);
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
