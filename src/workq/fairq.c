/* SPDX-License-Identifier: MIT */
/*
 * fairq: two-level deficit round robin with a new-flow list, and admission
 * by least queued cost.
 *
 * DESIGN
 * - A level (the top one, or the inside of a group) holds entries: at the
 *   top, groups and flows without a group (CONNECTION mode: every flow);
 *   inside a group, its flows.  An entry with admitted work is on the
 *   level's `new` or `old` list; one without is on neither.
 * - Dequeue (fq_codel's scheme, per level): take the head of `new`, else
 *   of `old`.  If its deficit is spent, it gets one quantum more and goes
 *   to the tail of `old`, and the next head is looked at.  Otherwise it is
 *   served, at the top level by descending into it, and its deficit is
 *   charged the cost of the nodes taken.  An expensive node is taken
 *   alone; cheap (batchable) ones as a batch, flow after flow in their
 *   turns while the next flow's head is cheap too, each flow's in order.
 * - An entry that empties leaves the lists at once, so its next node makes
 *   it new again: a client sending one request at a time goes ahead of
 *   every backlogged one, at either level.  Unless more of its work waits
 *   for a place: a flood paused by a full queue empties often but is not
 *   sparse, so it rejoins at the tail of `old`.  A backlogged entry is
 *   served a quantum at a time in turn.
 * - A group keeps its debt when it empties, less a µs per µs away (one
 *   worker's time), and pays the rest in turns when back: else an address
 *   whose connections each keep one long request running, never two
 *   queued, would take as many workers as it has connections.
 * - The work is O(1) per node plus one rotation per quantum of cost
 *   served: a rotation hands out QUANTUM_US of credit that the work
 *   consumes, so the rotations are amortised against the cost of the work
 *   itself (a SLEEP 40 pays for 40 of them, an ECHO for a fraction of one).
 *   Debt can outgrow that (a group back with what is left of a long
 *   request's; work answered unrun is refunded, tp_fairq_refund): past a
 *   few turns, one pass hands out every whole round at once, so a pick is
 *   bounded by the active entries, never by their debt.
 * - Cost is the owner's estimate of a node's service time in µs (the
 *   server's: SLEEP's argument), at least TP_FAIRQ_MIN_COST_US; shares are
 *   shares of cost.
 * - Admission: waiting entries sit in buckets by their queued cost, the
 *   admitted and the next waiter's (0, then powers of 4 µs), in turns
 *   within a bucket (an entry whose waiter leaves goes behind the others
 *   of its bucket), so a newcomer's light request goes before a flood's
 *   heavier next one, and two floods hold equal admitted cost whatever
 *   their requests cost (queued_cost()); a place goes to the
 *   lowest bucket's first group, its lowest bucket's first flow, and that
 *   flow's oldest waiter.  An entry moves bucket (O(1)) when its cost
 *   changes.  Every waiter is also on one arrival-ordered list (wprev and
 *   wnext), which expiry walks from its head: a flow's waiters are in
 *   arrival order, so the oldest waiter of all is its flow's oldest.
 */
#include "fairq.h"

#include <string.h>

#include "tp_assert.h"

/* Credit per turn of a backlogged entry, in µs of cost. */
#define QUANTUM_US 1000

enum { LIST_NONE, LIST_NEW, LIST_OLD };

const char *tp_fairness_name(int mode)
{
	return mode == TP_FAIR_ADDRESS ? "address" : mode == TP_FAIR_CONNECTION ? "connection" : "none";
}

void tp_qflow_init(struct tp_qflow *f, struct tp_qgroup *group)
{
	memset(f, 0, sizeof(*f));
	f->group = group;
}

void tp_qgroup_init(struct tp_qgroup *g)
{
	memset(g, 0, sizeof(*g));
	g->e.is_group = true;
}

void tp_fairq_init(struct tp_fairq *fq, enum tp_fairness mode)
{
	memset(fq, 0, sizeof(*fq));
	fq->mode = mode;
	tp_qflow_init(&fq->nullflow, NULL);
}

/* --- the new and old lists --- */

/* e's links in a new or old list (which 0) or in an admission bucket (1). */
static struct tp_fairq_link *link_of(struct tp_fairq_entry *e, int which)
{
	return which ? &e->wlink : &e->link;
}

void tp_fairq_list_append(struct tp_fairq_list *l, struct tp_fairq_entry *e, int which)
{
	link_of(e, which)->next = NULL;
	link_of(e, which)->prev = l->tail;
	if (l->tail)
		link_of(l->tail, which)->next = e;
	else
		l->head = e;
	l->tail = e;
}

void tp_fairq_list_unlink(struct tp_fairq_list *l, struct tp_fairq_entry *e, int which)
{
	struct tp_fairq_link *k = link_of(e, which);

	if (k->prev)
		link_of(k->prev, which)->next = k->next;
	else
		l->head = k->next;
	if (k->next)
		link_of(k->next, which)->prev = k->prev;
	else
		l->tail = k->prev;
	k->next = k->prev = NULL;
}

/* e has admitted work again: a new entry, or an old one when more of its work waits. */
static void activate(struct tp_fairq_level *lv, struct tp_fairq_entry *e, bool backlogged)
{
	if (e->list != LIST_NONE)
		return;
	e->deficit = QUANTUM_US;
	e->list = backlogged ? LIST_OLD : LIST_NEW;
	tp_fairq_list_append(backlogged ? &lv->old_list : &lv->new_list, e, 0);
}

/* g has admitted work again: what is left of its debt after its time away stays. */
static void group_comes_back(struct tp_fairq *fq, struct tp_qgroup *g)
{
	int64_t debt = g->e.list == LIST_NONE ? g->e.deficit : 0;

	if (debt < 0) {
		uint64_t away = tp_fairq_now_us(fq) - g->left_us;
		debt = away >= (uint64_t)-debt ? 0 : debt + (int64_t)away;
	}
	activate(&fq->top, &g->e, g->nwaiting > 0);
	if (debt < 0)
		g->e.deficit = debt;
}

bool tp_fairq_deactivate(struct tp_fairq_level *lv, struct tp_fairq_entry *e)
{
	if (e->list == LIST_NONE)
		return false;
	tp_fairq_list_unlink(e->list == LIST_NEW ? &lv->new_list : &lv->old_list, e, 0);
	e->list = LIST_NONE;
	return true;
}

/*
 * Give every active entry of lv, at once, the whole rounds of credit after
 * which all of them would still be in debt: what that many turns would
 * hand out, in one pass.  Debt can be far larger than the work it paid for
 * (the owner may answer a costly node without running it), and it must not
 * be paid back a quantum per turn with the queue's lock held.
 */
static void credit_rounds(struct tp_fairq_level *lv)
{
	struct tp_fairq_list *lists[2] = {&lv->new_list, &lv->old_list};
	int64_t least = INT64_MAX; /* the smallest debt */
	int64_t credit;

	for (int i = 0; i < 2; i++)
		for (struct tp_fairq_entry *e = lists[i]->head; e; e = e->link.next)
			if (-e->deficit < least)
				least = -e->deficit;
	if (least < QUANTUM_US) /* someone is paid up within a round (or has credit) */
		return;
	credit = least / QUANTUM_US * QUANTUM_US; /* the whole rounds */
	for (int i = 0; i < 2; i++)
		for (struct tp_fairq_entry *e = lists[i]->head; e; e = e->link.next)
			e->deficit += credit;
}

/* Turns of the rotation before credit_rounds() takes over. */
#define CREDIT_TURNS 64

/* The entry to serve at this level: a new one, else the old one whose turn it is. */
static struct tp_fairq_entry *pick(struct tp_fairq_level *lv)
{
	for (unsigned turns = 0;; turns++) {
		struct tp_fairq_entry *e = tp_fairq_first_active(lv);
		if (!e || e->deficit > 0)
			return e;
		if (turns == CREDIT_TURNS) {
			credit_rounds(lv);
			continue;
		}
		tp_fairq_deactivate(lv, e);
		e->deficit += QUANTUM_US;
		e->list = LIST_OLD;
		tp_fairq_list_append(&lv->old_list, e, 0);
	}
}

/* --- admitted nodes --- */

/*
 * Count nodes of f of total weight k and cost c, kexp of them expensive, in
 * (k > 0) or out (k < 0, c negated: the sums are modular) of f and its
 * group, keeping the buckets right.
 */
static void account(struct tp_fairq *fq, struct tp_qflow *f, uint64_t c, int k, int kexp)
{
	struct tp_qgroup *g = tp_fairq_group_for(fq, f);

	f->e.cost += c;
	f->e.nready += (uint32_t)k;
	tp_fairq_rebucket(tp_fairq_level_of(fq, g), &f->e);
	if (g) {
		g->e.cost += c;
		g->e.nready += (uint32_t)k;
		tp_fairq_rebucket(&fq->top, &g->e);
	}
	fq->nready += (size_t)k;
	fq->nexpensive += (size_t)kexp;
}

size_t tp_fairq_add_ready_chain(struct tp_fairq *fq, struct tp_qnode **pos, size_t n, size_t room)
{
	struct tp_qnode *first = *pos;
	size_t added = 0;

	while (added < n && first && tp_qnode_weight(first) <= room) {
		/* The run of first's flow: accounted and scheduled once. */
		struct tp_qflow *f = tp_fairq_node_flow(fq, first);
		struct tp_qgroup *g = tp_fairq_group_for(fq, f);
		struct tp_qnode *last = first;
		uint64_t cost = tp_fairq_cost_of(first);
		size_t w = tp_qnode_weight(first), k = 1;
		int kexp = !first->batchable;

		for (; added + k < n && last->next && tp_fairq_node_flow(fq, last->next) == f &&
		       w + tp_qnode_weight(last->next) <= room;
		     k++) {
			last = last->next;
			w += tp_qnode_weight(last);
			cost += tp_fairq_cost_of(last);
			kexp += !last->batchable;
		}
		struct tp_qnode *after = last->next;
		last->next = NULL;
		if (f->rtail)
			f->rtail->next = first;
		else
			f->rhead = first;
		f->rtail = last;
		if (f->e.nready == 0)
			fq->nflows++;
		account(fq, f, cost, (int)w, kexp);
		activate(tp_fairq_level_of(fq, g), &f->e, f->whead != NULL);
		if (g)
			group_comes_back(fq, g);
		first = after;
		added += k;
		room -= w;
	}
	*pos = first;
	return added;
}

void tp_fairq_add_ready(struct tp_fairq *fq, struct tp_qnode *n)
{
	(void)tp_fairq_add_ready_chain(fq, &n, 1, tp_qnode_weight(n));
}

size_t tp_fairq_take_batch(struct tp_fairq *fq, struct tp_qflow *f, struct tp_qnode **ret, size_t max,
                           uint64_t *ret_cost)
{
	size_t n = 0, w = 0;
	uint64_t cost = 0;
	int kexp = 0;

	while (n < max && f->rhead) {
		struct tp_qnode *h = f->rhead;
		if (n > 0 && !(h->batchable && ret[0]->batchable))
			break;
		f->rhead = h->next;
		if (!f->rhead)
			f->rtail = NULL;
		h->next = NULL;
		cost += tp_fairq_cost_of(h);
		w += tp_qnode_weight(h);
		kexp += !h->batchable;
		ret[n++] = h;
	}
	account(fq, f, -cost, -(int)w, -kexp);
	*ret_cost = cost;
	return n;
}

/* The flow whose turn it is, and its group in *ret_g; NULL when nothing is admitted. */
static struct tp_qflow *next_flow(struct tp_fairq *fq, struct tp_qgroup **ret_g)
{
	struct tp_fairq_entry *top = pick(&fq->top);

	*ret_g = NULL;
	if (!top)
		return NULL;
	if (!top->is_group)
		return tp_fairq_flow_of(top);
	*ret_g = tp_fairq_group_of(top);
	return tp_fairq_flow_of(pick(&(*ret_g)->inner));
}

size_t tp_fairq_serve(struct tp_fairq *fq, struct tp_qflow *f, struct tp_qgroup *g, struct tp_qnode **ret,
                      size_t max)
{
	uint64_t cost;
	size_t n = tp_fairq_take_batch(fq, f, ret, max, &cost);

	TP_ASSERT(n > 0);
	f->e.deficit -= (int64_t)cost;
	if (!f->rhead) {
		tp_fairq_deactivate(tp_fairq_level_of(fq, g), &f->e);
		fq->nflows--;
	}
	if (g) {
		g->e.deficit -= (int64_t)cost;
		if (g->e.nready == 0)
			tp_fairq_group_leaves(fq, g);
	}
	return n;
}

size_t tp_fairq_pop(struct tp_fairq *fq, struct tp_qnode **ret, size_t max)
{
	size_t n = 0;

	/* Cheap work goes on across flows, in their turns: one hand-off for ECHOs of many clients. */
	while (n < max && (n == 0 || ret[0]->batchable)) {
		struct tp_qgroup *g;
		struct tp_qflow *f = next_flow(fq, &g);
		if (!f || (n > 0 && !f->rhead->batchable))
			break;
		n += tp_fairq_serve(fq, f, g, ret + n, max - n);
	}
	return n;
}

/* --- waiting nodes --- */

size_t tp_fairq_largest(const struct tp_fairq *fq)
{
	const struct tp_fairq_entry *lists[2] = {fq->top.new_list.head, fq->top.old_list.head};
	size_t most = 0;

	for (size_t i = 0; i < 2; i++)
		for (const struct tp_fairq_entry *e = lists[i]; e; e = e->link.next)
			if (e->nready > most)
				most = e->nready;
	return most;
}
