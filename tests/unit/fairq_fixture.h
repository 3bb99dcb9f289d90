/* SPDX-License-Identifier: MIT */
/*
 * fairq_fixture: the flows, groups and items of the unit tests of the fair
 * discipline, and of the queue in its fair modes (header only, so each
 * test still links only the layer it tests).
 */
#ifndef TP_FAIRQ_FIXTURE_H
#define TP_FAIRQ_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fairq.h"
#include "queue.h"

struct item {
	struct tp_qnode node;
	int flow; /* index of its flow in the test */
	int seq;  /* order within its flow */
};

static inline struct item *item_of(struct tp_qnode *n)
{
	return (struct item *)(void *)((char *)n - offsetof(struct item, node));
}

/* A test's flows, groups and a pool of items. */
struct world {
	struct tp_qflow flows[64];
	struct tp_qgroup groups[8];
	struct item *items;
	size_t nitems, used;
	int next_seq[64];
};

static inline void world_init(struct world *w, size_t nitems)
{
	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < 8; i++)
		tp_qgroup_init(&w->groups[i]);
	for (size_t i = 0; i < 64; i++)
		tp_qflow_init(&w->flows[i], NULL);
	w->items = calloc(nitems, sizeof(*w->items));
	assert_non_null(w->items);
	w->nitems = nitems;
}

/* Put flow f in group g. */
static inline void world_group(struct world *w, int f, int g)
{
	tp_qflow_init(&w->flows[f], &w->groups[g]);
}

/* Start again with the same flows and groups, nothing queued. */
static inline void world_reset(struct world *w)
{
	for (size_t i = 0; i < 8; i++)
		tp_qgroup_init(&w->groups[i]);
	for (size_t i = 0; i < 64; i++) {
		struct tp_qgroup *g = w->flows[i].group;
		tp_qflow_init(&w->flows[i], g);
	}
	w->used = 0;
	memset(w->next_seq, 0, sizeof(w->next_seq));
}

static inline struct item *world_item(struct world *w, int f, uint32_t cost_us, bool batchable)
{
	assert_true(w->used < w->nitems);
	struct item *it = &w->items[w->used++];
	memset(it, 0, sizeof(*it));
	it->flow = f;
	it->seq = w->next_seq[f]++;
	it->node.flow = &w->flows[f];
	it->node.cost_us = cost_us;
	it->node.batchable = batchable;
	it->node.deadline_ns = UINT64_MAX;
	return it;
}

/* Admit one node of flow f to fq. */
static inline void add(struct tp_fairq *fq, struct world *w, int f, uint32_t cost_us)
{
	tp_fairq_add_ready(fq, &world_item(w, f, cost_us, false)->node);
}

/* Pop one node and return its flow, checking its order within the flow. */
static inline int pop_flow(struct tp_fairq *fq, int *last_seq)
{
	struct tp_qnode *n[1];
	assert_int_equal(tp_fairq_pop(fq, n, 1), 1);
	struct item *it = item_of(n[0]);
	assert_true(it->seq > last_seq[it->flow]);
	last_seq[it->flow] = it->seq;
	return it->flow;
}

static inline void reset_seq(int *last_seq)
{
	for (int i = 0; i < 64; i++)
		last_seq[i] = -1;
}

/* --- the queue in a fair mode --- */

struct admits {
	int flow[256];
	size_t n;
};

static inline void on_admit(struct tp_qnode *node, void *ctx)
{
	struct admits *a = ctx;
	if (a->n < 256)
		a->flow[a->n++] = item_of(node)->flow;
}

static inline int qpush(struct tp_queue *q, struct world *w, int f, uint32_t cost, uint64_t deadline_ns)
{
	struct item *it = world_item(w, f, cost, false);
	it->node.deadline_ns = deadline_ns;
	it->node.next = NULL;
	return tp_queue_push(q, &it->node, 1);
}

static inline struct item *qpop_item(struct tp_queue *q)
{
	struct tp_qnode *n[1];
	assert_int_equal(tp_queue_pop(q, n, 1, NULL), 1);
	return item_of(n[0]);
}

static inline int qpop(struct tp_queue *q)
{
	return qpop_item(q)->flow;
}

static inline void expect_depth(struct tp_queue *q, size_t depth, size_t waiting)
{
	struct tp_queue_stats st;
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, depth);
	assert_int_equal(st.waiting, waiting);
	assert_true(st.depth <= st.capacity);
}

/* A queue of capacity in ADDRESS mode over a world of nitems, flow f in group f / per_group. */
static inline struct tp_queue *fair_queue(struct world *w, size_t nitems, size_t capacity, struct admits *a,
                                          int nflows, int per_group)
{
	struct tp_queue *q = tp_queue_new(capacity, on_admit, a);
	assert_non_null(q);
	world_init(w, nitems);
	for (int f = 0; f < nflows; f++)
		world_group(w, f, f / per_group);
	tp_queue_set_fairness(q, TP_FAIR_ADDRESS);
	return q;
}

/* The queue must be empty: free it and the world. */
static inline void fair_done(struct tp_queue *q, struct world *w)
{
	expect_depth(q, 0, 0);
	tp_queue_free(q);
	free(w->items);
}

#endif
