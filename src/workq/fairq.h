/* SPDX-License-Identifier: MIT */
/*
 * fairq: the fair discipline of the queue: which admitted node a worker
 * takes next, and which waiting node takes a place that frees.  Nodes,
 * flows and groups are qnode.h's; this header is the queue's own (its .c
 * files and their tests include it, nothing above workq does).
 *
 * Not thread-safe: queue.c calls every function with its lock held.  No
 * function allocates; each is O(1) per node (amortised; see fairq.c),
 * except take_all and stats, which walk.
 */
#ifndef TP_FAIRQ_H
#define TP_FAIRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qnode.h"

/*
 * The least a request costs, in µs, whatever its node's cost_us says (a
 * node is charged at least this times its weight): about what an ECHO
 * takes, so a flood of cheap requests is held to its share too.
 */
#define TP_FAIRQ_MIN_COST_US 2

struct tp_fairq {
	enum tp_fairness mode; /* CONNECTION or ADDRESS */
	struct tp_fairq_level top;
	struct tp_qnode *whead, *wtail; /* every waiting node, in arrival order (wprev/wnext) */
	size_t nready, nwait;           /* weights of the admitted and of the waiting nodes */
	size_t nexpensive;              /* admitted nodes that are not batchable */
	size_t nflows;                  /* flows with admitted nodes */
	struct tp_qflow nullflow;       /* the flow of nodes without one */
	uint64_t (*now_us)(void);       /* a monotonic clock for groups' debts (NULL: always 0) */
};

/* The least a node is charged: its cost, at least the floor per request it stands for. */
static inline uint64_t tp_fairq_cost_of(const struct tp_qnode *n)
{
	uint64_t floor = (uint64_t)TP_FAIRQ_MIN_COST_US * tp_qnode_weight(n);
	return n->cost_us > floor ? n->cost_us : floor;
}

/* The fair queue's clock for groups' debts, in µs (0 without one). */
static inline uint64_t tp_fairq_now_us(const struct tp_fairq *fq)
{
	return fq->now_us ? fq->now_us() : 0;
}

/* n's flow (the shared one for nodes without). */
static inline struct tp_qflow *tp_fairq_node_flow(struct tp_fairq *fq, const struct tp_qnode *n)
{
	return n->flow ? n->flow : &fq->nullflow;
}

/* The level lists of fairq.c (which 0: new or old; 1: an admission bucket). */
void tp_fairq_list_append(struct tp_fairq_list *l, struct tp_fairq_entry *e, int which);
void tp_fairq_list_unlink(struct tp_fairq_list *l, struct tp_fairq_entry *e, int which);

/* e's queued cost changed: if it waits, keep it in the right bucket (fairq_wait.c). */
void tp_fairq_rebucket(struct tp_fairq_level *lv, struct tp_fairq_entry *e);

/* The group or flow an entry is embedded in (fairq.c and fairq_lane.c). */
static inline struct tp_qgroup *tp_fairq_group_of(struct tp_fairq_entry *e)
{
	return (struct tp_qgroup *)(void *)((char *)e - offsetof(struct tp_qgroup, e));
}

static inline struct tp_qflow *tp_fairq_flow_of(struct tp_fairq_entry *e)
{
	return (struct tp_qflow *)(void *)((char *)e - offsetof(struct tp_qflow, e));
}

/* An empty discipline in mode (CONNECTION or ADDRESS). */
void tp_fairq_init(struct tp_fairq *fq, enum tp_fairness mode);

/* Admit n: its flow's FIFO; a flow that had nothing admitted goes ahead (new list). */
void tp_fairq_add_ready(struct tp_fairq *fq, struct tp_qnode *n);

/*
 * Admit up to n nodes linked through next from *pos on while their weights
 * add up to at most room (fewer if the chain ends), in order, as as many
 * tp_fairq_add_ready() calls would, each run of one flow's nodes in one
 * step.  Leaves *pos at the first node not admitted; returns how many
 * nodes were admitted.
 */
size_t tp_fairq_add_ready_chain(struct tp_fairq *fq, struct tp_qnode **pos, size_t n, size_t room);

/* n waits for a place (its flow's wait FIFO and the arrival order). */
void tp_fairq_add_wait(struct tp_fairq *fq, struct tp_qnode *n);

/* Where one push's waiters go in the expiry order (tp_fairq_add_pushed_wait). */
struct tp_fairq_push_pos {
	const struct tp_qnode *head; /* the first waiter before the push (fq->whead then) */
	struct tp_qnode *early;      /* the last of the push's waiters put before it */
};

/*
 * n, of a push, waits for a place, as tp_fairq_add_wait(), but one with a
 * deadline earlier than pos->head's (a line set aside since its read) goes
 * before it in the expiry order, after pos->early, so that it leaves at its
 * deadline however many younger waiters there are; not when a waiter of its
 * flow would then be behind it (expiry takes a flow's waiters in order).
 */
void tp_fairq_add_pushed_wait(struct tp_fairq *fq, struct tp_qnode *n, struct tp_fairq_push_pos *pos);

/*
 * Take the next admitted work: up to max nodes, more than one only while
 * they are batchable (then from flow after flow in their turns, each
 * flow's in order).  Returns the number taken (0: none).
 */
size_t tp_fairq_pop(struct tp_fairq *fq, struct tp_qnode **ret, size_t max);

/*
 * Take a batch of f's admitted nodes (f in group g, NULL when it is
 * scheduled at the top level): its head, and more while they are
 * batchable.  Charge their cost to both deficits, and take f (and g) off
 * the lists when they empty, as a pop does.  f must have an admitted node.
 * Returns how many.  For the cheap lane, which serves out of turn.
 */
size_t tp_fairq_serve(struct tp_fairq *fq, struct tp_qflow *f, struct tp_qgroup *g, struct tp_qnode **ret,
                      size_t max);

/*
 * The cheap lane (fairq_lane.c): take a run of batchable nodes from one
 * flow whose head admitted node is batchable, found by a bounded search
 * (new lists first), charged as tp_fairq_pop() charges.  Never an
 * expensive node, never a node behind an earlier one of its flow.
 * Returns the number taken (0: none found).
 */
size_t tp_fairq_pop_cheap(struct tp_fairq *fq, struct tp_qnode **ret, size_t max);

/*
 * The waiter tp_fairq_next_waiter() would return, unlinked, if it is
 * batchable and its flow has nothing admitted (so it would be its flow's
 * head); else NULL and nothing changes.  It is not admitted: the caller
 * runs it at once, and it never takes a place.
 */
struct tp_qnode *tp_fairq_cheap_waiter(struct tp_fairq *fq);

/*
 * The waiting node that should take a free place: of the group, then the
 * flow, holding the least queued cost, admitted and waiting (within a power
 * of 4; within one, in turns: an entry whose waiter left goes behind the
 * others), its oldest.  Unlinks and returns it, not admitted yet;
 * NULL when nobody waits.
 */
struct tp_qnode *tp_fairq_next_waiter(struct tp_fairq *fq);

/* The flow tp_fairq_next_waiter() would take from (its whead), or NULL. */
struct tp_qflow *tp_fairq_next_waiting_flow(const struct tp_fairq *fq);

/* The oldest waiting node, or NULL. */
static inline struct tp_qnode *tp_fairq_oldest_waiter(const struct tp_fairq *fq)
{
	return fq->whead;
}

/* Unlink waiting node n (the oldest of its flow: expiry goes in arrival order). */
void tp_fairq_remove_waiter(struct tp_fairq *fq, struct tp_qnode *n);

/*
 * Unlink every node of f, admitted ones to *ret_ready and waiting ones to
 * *ret_wait, each in order through next.  Returns how many were admitted.
 */
size_t tp_fairq_take_flow(struct tp_fairq *fq, struct tp_qflow *f, struct tp_qnode **ret_ready,
                          struct tp_qnode **ret_wait);

/*
 * Unlink every node: admitted ones to *ret_ready (each flow's in order),
 * waiting ones to *ret_wait (in arrival order), linked through next.
 */
void tp_fairq_take_all(struct tp_fairq *fq, struct tp_qnode **ret_ready, struct tp_qnode **ret_wait);

/* The most admitted weight any one group (or flow outside a group) holds. Walks the active ones. */
size_t tp_fairq_largest(const struct tp_fairq *fq);

/* --- between the files of the discipline (fairq*.c) only --- */

/* The group f is scheduled in, or NULL when it sits at the top level. */
static inline struct tp_qgroup *tp_fairq_group_for(const struct tp_fairq *fq, const struct tp_qflow *f)
{
	return fq->mode == TP_FAIR_ADDRESS ? f->group : NULL;
}

/* The level whose lists hold the flows of g (NULL: the top level). */
static inline struct tp_fairq_level *tp_fairq_level_of(struct tp_fairq *fq, struct tp_qgroup *g)
{
	return g ? &g->inner : &fq->top;
}

/* The first entry of a level's lists (new before old), or NULL. */
static inline struct tp_fairq_entry *tp_fairq_first_active(const struct tp_fairq_level *lv)
{
	return lv->new_list.head ? lv->new_list.head : lv->old_list.head;
}

/* Take e off the level's new or old list; false if it was on none. */
bool tp_fairq_deactivate(struct tp_fairq_level *lv, struct tp_fairq_entry *e);

/*
 * A node of f taken by a pop was answered without running (its client had
 * gone, or it had waited too long): give f and its group back its cost, so
 * that no debt outlives work never done (fairq_take.c).
 */
void tp_fairq_refund(struct tp_fairq *fq, struct tp_qflow *f, uint64_t cost);

/* g's last admitted node was taken: off the top level's lists, its debt kept (fairq.c). */
void tp_fairq_group_leaves(struct tp_fairq *fq, struct tp_qgroup *g);

/*
 * Take f's first admitted node, and more while they are batchable (up to
 * max), accounted out; their total cost in *ret_cost.  Returns the count.
 */
size_t tp_fairq_take_batch(struct tp_fairq *fq, struct tp_qflow *f, struct tp_qnode **ret, size_t max,
                           uint64_t *ret_cost);

#endif
