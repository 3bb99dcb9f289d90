/* SPDX-License-Identifier: MIT */
/*
 * fairq_take: taking nodes out of the fair discipline other than by a
 * worker's pop: one flow's (its owner has gone) or everything (shutdown),
 * and a group leaving the lists with its debt (tp_fairq_group_leaves).
 * Not thread-safe, as fairq.c: queue.c holds its lock.
 */
#include "fairq.h"

#include "tp_assert.h"

struct chain {
	struct tp_qnode *head, *tail;
};

static void chain_add(struct chain *c, struct tp_qnode *n)
{
	n->next = NULL;
	if (c->tail)
		c->tail->next = n;
	else
		c->head = n;
	c->tail = n;
}

void tp_fairq_refund(struct tp_fairq *fq, struct tp_qflow *f, uint64_t cost)
{
	struct tp_qgroup *g = tp_fairq_group_for(fq, f);

	f->e.deficit += (int64_t)cost;
	if (g)
		g->e.deficit += (int64_t)cost;
}

void tp_fairq_group_leaves(struct tp_fairq *fq, struct tp_qgroup *g)
{
	if (tp_fairq_deactivate(&fq->top, &g->e) && g->e.deficit < 0)
		g->left_us = tp_fairq_now_us(fq); /* its debt starts to go */
}

/* Move every node of f to the ends of ready and wait. Returns how many were admitted. */
static size_t take_flow(struct tp_fairq *fq, struct tp_qflow *f, struct chain *ready, struct chain *wait)
{
	struct tp_qgroup *g = tp_fairq_group_for(fq, f);
	struct tp_qnode *n;
	uint64_t cost;
	size_t total = 0;

	if (f->rhead)
		fq->nflows--;
	for (; tp_fairq_take_batch(fq, f, &n, 1, &cost) == 1; total++)
		chain_add(ready, n);
	tp_fairq_deactivate(tp_fairq_level_of(fq, g), &f->e);
	if (g && g->e.nready == 0)
		tp_fairq_group_leaves(fq, g);
	while ((n = f->whead)) {
		tp_fairq_remove_waiter(fq, n);
		chain_add(wait, n);
	}
	return total;
}

size_t tp_fairq_take_flow(struct tp_fairq *fq, struct tp_qflow *f, struct tp_qnode **ret_ready,
                          struct tp_qnode **ret_wait)
{
	struct chain ready = {0}, wait = {0};
	size_t n = take_flow(fq, f, &ready, &wait);

	*ret_ready = ready.head;
	*ret_wait = wait.head;
	return n;
}

void tp_fairq_take_all(struct tp_fairq *fq, struct tp_qnode **ret_ready, struct tp_qnode **ret_wait)
{
	struct chain ready = {0}, wait = {0};
	struct tp_fairq_entry *e, *c;
	struct tp_qnode *n;

	while ((n = fq->whead)) { /* in arrival order */
		tp_fairq_remove_waiter(fq, n);
		chain_add(&wait, n);
	}
	while ((e = tp_fairq_first_active(&fq->top))) {
		if (!e->is_group)
			(void)take_flow(fq, tp_fairq_flow_of(e), &ready, &wait);
		else
			while ((c = tp_fairq_first_active(&tp_fairq_group_of(e)->inner)))
				(void)take_flow(fq, tp_fairq_flow_of(c), &ready, &wait);
	}
	TP_ASSERT(fq->nready == 0 && fq->nwait == 0 && fq->nflows == 0);
	*ret_ready = ready.head;
	*ret_wait = wait.head;
}
