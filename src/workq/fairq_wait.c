/* SPDX-License-Identifier: MIT */
/*
 * fairq_wait: admission in the fair discipline: the waiters, and the
 * buckets that order waiting entries by queued cost (see the DESIGN in
 * fairq.c).  Not thread-safe, as fairq.c: queue.c holds its lock.
 */
#include "fairq.h"

#include "tp_assert.h"

/*
 * What an entry holds for admission: its admitted cost and its next
 * waiter's (a group's: the mean of its waiters').  Not all its waiters':
 * an address whose requests cost more would always hold more, lose every
 * place to a cheaper one and its share of the pool with them.
 */
static uint64_t queued_cost(struct tp_fairq_entry *e)
{
	if (e->is_group) {
		const struct tp_qgroup *g = tp_fairq_group_of(e);
		return e->cost + (g->wnodes ? e->wcost / g->wnodes : 0);
	}
	const struct tp_qnode *next = tp_fairq_flow_of(e)->whead;
	return e->cost + (next ? tp_fairq_cost_of(next) : 0);
}

static unsigned bucket_of(uint64_t cost)
{
	if (cost == 0)
		return 0;
	unsigned b = 1 + (unsigned)(63 - __builtin_clzll(cost)) / 2;
	return b < TP_FAIRQ_BUCKETS ? b : TP_FAIRQ_BUCKETS - 1;
}

static void bucket_remove(struct tp_fairq_level *lv, struct tp_fairq_entry *e)
{
	unsigned b;

	TP_ASSERT(e->bucket > 0 && e->bucket <= 32);
	b = e->bucket - 1u;
	tp_fairq_list_unlink(&lv->buckets[b], e, 1);
	e->bucket = 0;
	if (!lv->buckets[b].head)
		lv->mask &= ~(1u << b);
}

static void bucket_insert(struct tp_fairq_level *lv, struct tp_fairq_entry *e)
{
	unsigned b = bucket_of(queued_cost(e));

	tp_fairq_list_append(&lv->buckets[b], e, 1);
	e->bucket = (uint8_t)(b + 1);
	lv->mask |= 1u << b;
}

/* Move waiting e to the back of the bucket its queued cost puts it in. */
static void bucket_requeue(struct tp_fairq_level *lv, struct tp_fairq_entry *e)
{
	bucket_remove(lv, e);
	bucket_insert(lv, e);
}

/* e's queued cost changed: if it waits, keep it in the right bucket. */
void tp_fairq_rebucket(struct tp_fairq_level *lv, struct tp_fairq_entry *e)
{
	if (e->bucket && e->bucket - 1u != bucket_of(queued_cost(e))) {
		bucket_remove(lv, e);
		bucket_insert(lv, e);
	}
}

static struct tp_fairq_entry *bucket_first(const struct tp_fairq_level *lv)
{
	return lv->mask ? lv->buckets[__builtin_ctz(lv->mask)].head : NULL;
}

/* Count n's cost in or out (sign) of the waiting cost of f and its group. */
static void account_wait(struct tp_fairq *fq, struct tp_qflow *f, const struct tp_qnode *n, int sign)
{
	struct tp_qgroup *g = tp_fairq_group_for(fq, f);
	uint64_t c = sign > 0 ? tp_fairq_cost_of(n) : -tp_fairq_cost_of(n);

	f->e.wcost += c;
	tp_fairq_rebucket(tp_fairq_level_of(fq, g), &f->e);
	if (g) {
		g->e.wcost += c;
		g->wnodes += (uint32_t)sign;
		tp_fairq_rebucket(&fq->top, &g->e);
	}
}

/* n waits: its flow's FIFO, then after prev in the expiry order (NULL: first). */
static void add_wait_after(struct tp_fairq *fq, struct tp_qnode *n, struct tp_qnode *prev)
{
	struct tp_qflow *f = tp_fairq_node_flow(fq, n);
	struct tp_qgroup *g = tp_fairq_group_for(fq, f);

	account_wait(fq, f, n, +1);
	n->next = NULL;
	if (f->wtail) {
		f->wtail->next = n;
	} else {
		f->whead = n;
		bucket_insert(tp_fairq_level_of(fq, g), &f->e);
		if (g && g->nwaiting++ == 0)
			bucket_insert(&fq->top, &g->e);
	}
	f->wtail = n;
	n->wprev = prev;
	n->wnext = prev ? prev->wnext : fq->whead;
	if (prev)
		prev->wnext = n;
	else
		fq->whead = n;
	if (n->wnext)
		n->wnext->wprev = n;
	else
		fq->wtail = n;
	fq->nwait += tp_qnode_weight(n);
}

void tp_fairq_add_wait(struct tp_fairq *fq, struct tp_qnode *n)
{
	add_wait_after(fq, n, fq->wtail);
}

void tp_fairq_add_pushed_wait(struct tp_fairq *fq, struct tp_qnode *n, struct tp_fairq_push_pos *pos)
{
	const struct tp_qflow *f = tp_fairq_node_flow(fq, n);

	if (!pos->head || n->deadline_ns >= pos->head->deadline_ns || (f->whead && f->wtail != pos->early)) {
		add_wait_after(fq, n, fq->wtail);
		return;
	}
	add_wait_after(fq, n, pos->early);
	pos->early = n;
}

void tp_fairq_remove_waiter(struct tp_fairq *fq, struct tp_qnode *n)
{
	struct tp_qflow *f = tp_fairq_node_flow(fq, n);
	struct tp_qgroup *g = tp_fairq_group_for(fq, f);

	TP_ASSERT(f->whead == n);
	account_wait(fq, f, n, -1);
	f->whead = n->next;
	/*
	 * An entry whose waiter leaves goes behind the others of its bucket
	 * (by its new next waiter): a flood that stays in one bucket would
	 * otherwise stay first in it, and a lighter client that shares the
	 * bucket would never be admitted.
	 */
	if (!f->whead) {
		f->wtail = NULL;
		bucket_remove(tp_fairq_level_of(fq, g), &f->e);
	} else {
		bucket_requeue(tp_fairq_level_of(fq, g), &f->e);
	}
	if (g && !f->whead)
		g->nwaiting--; /* its flow no longer waits */
	if (g && g->nwaiting > 0)
		bucket_requeue(&fq->top, &g->e);
	else if (g)
		bucket_remove(&fq->top, &g->e);
	n->next = NULL;
	if (n->wprev)
		n->wprev->wnext = n->wnext;
	else
		fq->whead = n->wnext;
	if (n->wnext)
		n->wnext->wprev = n->wprev;
	else
		fq->wtail = n->wprev;
	n->wnext = n->wprev = NULL;
	fq->nwait -= tp_qnode_weight(n);
}

struct tp_qflow *tp_fairq_next_waiting_flow(const struct tp_fairq *fq)
{
	struct tp_fairq_entry *e = bucket_first(&fq->top);

	if (e && e->is_group) {
		e = bucket_first(&tp_fairq_group_of(e)->inner);
		TP_ASSERT(e); /* a group waits only while one of its flows does */
	}
	return e ? tp_fairq_flow_of(e) : NULL;
}

struct tp_qnode *tp_fairq_next_waiter(struct tp_fairq *fq)
{
	struct tp_qflow *f = tp_fairq_next_waiting_flow(fq);
	struct tp_qnode *n = f ? f->whead : NULL;

	if (n)
		tp_fairq_remove_waiter(fq, n);
	return n;
}
