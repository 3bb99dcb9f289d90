/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fairq.c and fairq_wait.c with nodes standing for several
 * requests (tp_qnode_weight): add_ready_chain's room; the cost floor per
 * request; the bound, depth and largest in requests; a pop, push, expiry,
 * change of mode or departed flow admitting the waiters that then fit.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fairq.h"
#include "fairq_fixture.h"
#include "queue.h"

/* --- nodes that stand for several requests (tp_qnode_weight) --- */

/* A batchable node of flow f standing for weight requests. */
static struct item *world_witem(struct world *w, int f, uint32_t cost_us, size_t weight)
{
	struct item *it = world_item(w, f, cost_us, true);
	it->node.more = (uint16_t)(weight - 1);
	return it;
}

/* Push one node of flow f standing for weight requests, of cost 0 (the floor). */
static int qpush_w(struct tp_queue *q, struct world *w, int f, size_t weight, uint64_t deadline_ns)
{
	struct item *it = world_witem(w, f, 0, weight);
	it->node.deadline_ns = deadline_ns;
	it->node.next = NULL;
	return tp_queue_push(q, &it->node, 1);
}

/* Link the world's items from..to-1 through next; returns the first. */
static struct tp_qnode *world_chain(struct world *w, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		w->items[i].node.next = i + 1 < to ? &w->items[i + 1].node : NULL;
	return &w->items[from].node;
}

/* Pop until nothing is admitted; returns the nodes popped. */
static size_t qdrain(struct tp_queue *q)
{
	struct tp_queue_stats st;
	size_t n = 0;
	for (tp_queue_stats(q, &st); st.depth > 0; tp_queue_stats(q, &st), n++)
		(void)qpop(q);
	return n;
}

/*
 * add_ready_chain admits nodes in order while their weights fit in room and
 * stops at the first that does not (a run of one flow is cut there, and a
 * lighter node behind waits too), leaving pos at it, the rest still linked.
 */
static void test_weight_chain_room(void **state)
{
	static const int flow[] = {0, 0, 1, 1, 2};
	static const size_t weight[] = {3, 3, 2, 5, 1};
	struct world w;
	struct tp_fairq fq;
	struct tp_qnode *pos, *n[8];
	int last[64];
	size_t popped = 0;

	(void)state;
	world_init(&w, 8);
	tp_fairq_init(&fq, TP_FAIR_CONNECTION);
	for (int i = 0; i < 5; i++)
		(void)world_witem(&w, flow[i], 0, weight[i]);
	pos = world_chain(&w, 0, 5);
	/* Room 5: the first 3 fits, the next 3 of the same flow does not. */
	assert_int_equal(tp_fairq_add_ready_chain(&fq, &pos, 5, 5), 1);
	assert_ptr_equal(pos, &w.items[1].node);
	assert_int_equal(fq.nready, 3);
	assert_int_equal(tp_fairq_add_ready_chain(&fq, &pos, 5, 0), 0);
	assert_ptr_equal(pos, &w.items[1].node);
	/* Room 6: 3 and 2 fit, the 5 does not, and the 1 behind it is not taken. */
	assert_int_equal(tp_fairq_add_ready_chain(&fq, &pos, 5, 6), 2);
	assert_ptr_equal(pos, &w.items[3].node);
	assert_ptr_equal(pos->next, &w.items[4].node);
	assert_int_equal(fq.nready, 8);
	assert_int_equal(w.flows[0].e.nready, 6);
	assert_int_equal(w.flows[1].e.nready, 2);
	/* n still limits: one node, though the room is plenty; then exactly the room. */
	assert_int_equal(tp_fairq_add_ready_chain(&fq, &pos, 1, 100), 1);
	assert_ptr_equal(pos, &w.items[4].node);
	assert_int_equal(tp_fairq_add_ready_chain(&fq, &pos, 5, 1), 1);
	assert_null(pos);
	assert_int_equal(fq.nready, 14);
	assert_int_equal(fq.nflows, 3);
	/* All five come out, each flow's in order, and give their weights back. */
	reset_seq(last);
	for (size_t k; (k = tp_fairq_pop(&fq, n, 8)) > 0; popped += k)
		for (size_t i = 0; i < k; i++) {
			struct item *it = item_of(n[i]);
			assert_int_equal(it->seq, last[it->flow] + 1);
			last[it->flow] = it->seq;
		}
	assert_int_equal(popped, 5);
	assert_int_equal(fq.nready, 0);
	assert_int_equal(fq.nflows, 0);
	free(w.items);
}

/*
 * The cost floor is per request: a flow of weight-16 nodes of free work and
 * one of single requests, both backlogged, are served about as many requests
 * each, not as many nodes.  A cost_us above the floor is the node's own.
 */
static void test_weight_cost_floor(void **state)
{
	static const size_t weight[2] = {16, 1};
	static const uint32_t cost[2] = {0, 1000};
	struct world w;
	struct tp_fairq fq;
	struct tp_qnode *n[1];

	(void)state;
	world_init(&w, 4000);
	for (int c = 0; c < 2; c++) {
		size_t req[2] = {0}, nodes[2] = {0};
		world_reset(&w);
		tp_fairq_init(&fq, TP_FAIR_CONNECTION);
		for (int f = 0; f < 2; f++)
			for (int i = 0; i < 4; i++)
				tp_fairq_add_ready(&fq, &world_witem(&w, f, cost[c], weight[f])->node);
		for (int i = 0; i < 20000; i++) {
			assert_int_equal(tp_fairq_pop(&fq, n, 1), 1);
			int f = item_of(n[0])->flow;
			req[f] += weight[f]; /* the requests the test meant, whatever the queue counts */
			nodes[f]++;
			tp_fairq_add_ready(&fq, &world_witem(&w, f, cost[c], weight[f])->node);
			if (w.used == w.nitems)
				w.used = 0; /* the items popped long ago are free again */
		}
		if (c == 0) /* 2 µs a request: each flow about half the requests */
			assert_in_range(req[0], req[1] * 95 / 100, req[1] * 105 / 100);
		else /* 1000 µs a node, whatever its weight: about half the nodes */
			assert_in_range(nodes[0], nodes[1] * 95 / 100, nodes[1] * 105 / 100);
	}
	free(w.items);
}

/* Depth, waiting and largest count requests; a pop pre-admits a waiter that fits once it frees one. */
static void test_weight_fair_bound(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 10, &a, 3, 2); /* flows 0, 1 in group 0; 2 in group 1 */
	struct tp_queue_stats st;

	(void)state;
	assert_int_equal(qpush_w(q, &w, 0, 3, UINT64_MAX), 1);
	assert_int_equal(qpush_w(q, &w, 1, 4, UINT64_MAX), 1);
	assert_int_equal(qpush_w(q, &w, 2, 2, UINT64_MAX), 1);
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, 9);
	assert_int_equal(st.flows, 3);
	assert_int_equal(st.largest, 7); /* group 0: 3 + 4 */
	/* 9 + 2 > 10: it waits, though a place is free. */
	assert_int_equal(qpush_w(q, &w, 2, 2, UINT64_MAX), 0);
	expect_depth(q, 9, 2);
	assert_int_equal(a.n, 0);
	/* 9 + 2 fits once this pop takes a request: admitted first, then the pop (group 0's turn). */
	assert_int_equal(qpop(q), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.flow[0], 2);
	expect_depth(q, 8, 0);
	tp_queue_stats(q, &st);
	assert_int_equal(st.largest, 4);
	assert_int_equal(qdrain(q), 3);
	fair_done(q, &w);
}

/*
 * The light waiter is taken by the very pop that made room for it only when
 * one freed request is enough: a waiter of weight 2 behind a full queue of
 * single requests is admitted by the second pop, not the first.
 */
static void test_weight_pop_admits_before(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 10, &a, 2, 1);

	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(qpush(q, &w, 0, 2000, UINT64_MAX), 1);
	assert_int_equal(qpush_w(q, &w, 1, 2, UINT64_MAX), 0);
	expect_depth(q, 10, 2);
	assert_int_equal(qpop(q), 0); /* 9 + 2 > 10: still waits */
	assert_int_equal(a.n, 0);
	expect_depth(q, 9, 2);
	assert_int_equal(qpop(q), 1); /* admitted before this pop, and served by it */
	assert_int_equal(a.n, 1);
	assert_int_equal(a.flow[0], 1);
	expect_depth(q, 9, 0);
	assert_int_equal(qdrain(q), 9);
	fair_done(q, &w);
}

/*
 * A push admits the prefix that fits across flows; what waits may still be
 * admitted at once, through the admit callback, when its flow's turn comes
 * before the heavier waiter's and it fits.
 */
static void test_weight_fair_push(void **state)
{
	static const int flow[] = {0, 1, 2, 0, 4};
	static const size_t weight[] = {4, 4, 4, 2, 1};
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 10, &a, 5, 1);

	(void)state;
	for (int i = 0; i < 5; i++)
		(void)world_witem(&w, flow[i], 0, weight[i]);
	/* 4 + 4 fit, the third 4 does not. */
	assert_int_equal(tp_queue_push(q, world_chain(&w, 0, 3), 3), 2);
	expect_depth(q, 8, 4);
	assert_int_equal(a.n, 0);
	/* A newcomer of an idle flow is next in turn and fits: admitted through the callback. */
	assert_int_equal(qpush_w(q, &w, 3, 1, UINT64_MAX), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.flow[0], 3);
	expect_depth(q, 9, 4);
	/* Within one push too: flow 4's 1 is admitted, flow 0's 2 waits (flow 2's 4 is before it). */
	assert_int_equal(tp_queue_push(q, world_chain(&w, 3, 5), 2), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.flow[1], 4);
	expect_depth(q, 10, 6);
	/* Flow 0's 4 goes: flow 2's 4 fits then, flow 0's 2 does not. */
	assert_int_equal(qpop(q), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.flow[2], 2);
	expect_depth(q, 10, 2);
	assert_int_equal(qdrain(q), 5);
	assert_int_equal(a.n, 4);
	fair_done(q, &w);
}

/* The expiry of a heavy waiter admits the waiters next in turn that now fit, of other flows too. */
static void test_weight_fair_expire(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 6, &a, 3, 1);
	struct tp_qnode *gone;
	uint64_t next;

	(void)state;
	assert_int_equal(qpush_w(q, &w, 0, 4, UINT64_MAX), 1);
	assert_int_equal(qpush_w(q, &w, 1, 4, 100), 0);
	assert_int_equal(qpush_w(q, &w, 1, 1, 300), 0); /* behind its flow's head */
	/* Flow 1 (queued cost 10) comes before flow 2 (100000): its 4 does not fit, so flow 2 waits. */
	assert_int_equal(qpush(q, &w, 2, 100000, 200), 0);
	expect_depth(q, 4, 6);
	assert_int_equal(a.n, 0);
	assert_int_equal(tp_queue_expire(q, 100, &gone, &next), 1);
	assert_int_equal(item_of(gone)->flow, 1);
	assert_null(gone->next);
	/* Flow 1's 1, then flow 2's: 4 + 1 + 1. */
	assert_int_equal(a.n, 2);
	assert_int_equal(a.flow[0], 1);
	assert_int_equal(a.flow[1], 2);
	assert_int_equal(next, 0);
	expect_depth(q, 6, 0);
	assert_int_equal(qdrain(q), 3);
	fair_done(q, &w);
}

/*
 * A change of mode admits the waiter that is next in turn in the new mode if
 * it fits: in FIFO a light waiter sits behind a heavy one; in a fair mode its
 * flow goes first.
 */
static void test_weight_mode_change(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 10, &a, 2, 1);

	(void)state;
	tp_queue_set_fairness(q, TP_FAIR_NONE);
	assert_int_equal(qpush_w(q, &w, 0, 8, UINT64_MAX), 1);
	assert_int_equal(qpush_w(q, &w, 0, 4, UINT64_MAX), 0);
	assert_int_equal(qpush_w(q, &w, 1, 1, UINT64_MAX), 0); /* no overtaking in FIFO */
	expect_depth(q, 8, 5);
	tp_queue_set_fairness(q, TP_FAIR_CONNECTION);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.flow[0], 1);
	expect_depth(q, 9, 4);
	tp_queue_set_fairness(q, TP_FAIR_NONE);
	expect_depth(q, 9, 4);
	assert_int_equal(qpop(q), 0); /* the 8: the 4 fits then */
	assert_int_equal(a.n, 2);
	assert_int_equal(a.flow[1], 0);
	expect_depth(q, 5, 0);
	assert_int_equal(qdrain(q), 2);
	fair_done(q, &w);
}

/* A flow that leaves frees its weight: a heavy waiter of another flow fits then. */
static void test_weight_flow_leaves(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 10, &a, 2, 1);
	struct tp_queue_stats st;
	struct tp_qnode *out;

	(void)state;
	assert_int_equal(qpush_w(q, &w, 0, 6, UINT64_MAX), 1);
	assert_int_equal(qpush_w(q, &w, 1, 4, UINT64_MAX), 1);
	assert_int_equal(qpush_w(q, &w, 1, 5, UINT64_MAX), 0);
	expect_depth(q, 10, 5);
	assert_int_equal(tp_queue_take_flow(q, &w.flows[0], &out), 1);
	assert_int_equal(item_of(out)->flow, 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.flow[0], 1);
	expect_depth(q, 9, 0);
	tp_queue_stats(q, &st);
	assert_int_equal(st.flows, 1);
	assert_int_equal(st.largest, 9);
	assert_int_equal(qdrain(q), 2);
	fair_done(q, &w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_weight_chain_room),  cmocka_unit_test(test_weight_cost_floor),
	        cmocka_unit_test(test_weight_fair_bound),  cmocka_unit_test(test_weight_pop_admits_before),
	        cmocka_unit_test(test_weight_fair_push),   cmocka_unit_test(test_weight_fair_expire),
	        cmocka_unit_test(test_weight_mode_change), cmocka_unit_test(test_weight_flow_leaves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
