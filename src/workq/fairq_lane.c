/* SPDX-License-Identifier: MIT */
/*
 * fairq_lane: the cheap lane of the fair discipline: cheap (batchable)
 * work for workers that take nothing else, served out of its turn.
 *
 * DESIGN
 * - A cheap-only worker must never take an expensive node, nor run a cheap
 *   node ahead of an earlier node of its own flow: so it serves only a flow
 *   whose head admitted node is cheap, a run of cheap nodes from that one
 *   flow, charged to the flow's (and group's) deficit as a pop charges it.
 *   The flow keeps its place in the lists; its next turn is shorter.
 * - The search is bounded (SCAN_MAX entries, new lists before old, the top
 *   level and inside each group in turn): under a flood of expensive work
 *   the lists can be long, and the queue lock is held.  Sparse flows, the
 *   ones the lane is for, sit on the new lists, which come first.
 * - A full queue: the cheap node of a sparse client waits for a place,
 *   and places free only as general workers finish expensive work.  So the
 *   lane also takes the waiter whose turn it is to be admitted when it is
 *   cheap and its flow has nothing admitted (it would be its flow's head):
 *   it never takes a place, so the bound holds.
 */
#include "fairq.h"

/* Most entries (groups and flows) one search looks at. */
#define SCAN_MAX 64

static bool cheap_head(struct tp_fairq_entry *e)
{
	const struct tp_qflow *f = tp_fairq_flow_of(e);
	return f->rhead && f->rhead->batchable;
}

/* In a level's new then old list, the first flow with a cheap head; *budget entries at most. */
static struct tp_fairq_entry *scan_level(struct tp_fairq_level *lv, unsigned *budget, bool top,
                                         struct tp_qgroup **ret_g)
{
	struct tp_fairq_entry *lists[2] = {lv->new_list.head, lv->old_list.head};

	for (size_t i = 0; i < 2; i++) {
		for (struct tp_fairq_entry *e = lists[i]; e && *budget > 0; e = e->link.next) {
			--*budget;
			if (top && e->is_group) {
				struct tp_qgroup *g = tp_fairq_group_of(e);
				struct tp_fairq_entry *c = scan_level(&g->inner, budget, false, ret_g);
				if (c) {
					*ret_g = g;
					return c;
				}
			} else if (cheap_head(e)) {
				return e;
			}
		}
	}
	return NULL;
}

size_t tp_fairq_pop_cheap(struct tp_fairq *fq, struct tp_qnode **ret, size_t max)
{
	struct tp_qgroup *g = NULL;
	unsigned budget = SCAN_MAX;
	struct tp_fairq_entry *e = max > 0 ? scan_level(&fq->top, &budget, true, &g) : NULL;

	return e ? tp_fairq_serve(fq, tp_fairq_flow_of(e), g, ret, max) : 0;
}

struct tp_qnode *tp_fairq_cheap_waiter(struct tp_fairq *fq)
{
	struct tp_qflow *f = tp_fairq_next_waiting_flow(fq);

	if (!f || f->rhead || !f->whead->batchable)
		return NULL;
	return tp_fairq_next_waiter(fq);
}
