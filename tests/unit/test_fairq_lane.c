/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fairq_lane.c and queue_lane.c, the cheap lane: it never
 * takes an expensive node; it finds a flow whose head is cheap behind
 * expensive-headed ones, on the new and the old lists and inside groups;
 * it never takes a cheap node behind an expensive head of its own flow; it
 * charges what it takes and leaves the discipline consistent for the
 * general pops; and in a full queue it runs the cheap waiter whose turn it
 * is, without taking a place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fairq.h"
#include "queue.h"

#define EXPENSIVE_US 3000 /* three quanta of the discipline: its deficit goes negative */

struct node {
	struct tp_qnode q;
	int flow, seq;
};

struct lane_world {
	struct tp_qflow flows[8];
	struct tp_qgroup groups[2];
	struct node nodes[64];
	int used, seq[8];
	struct tp_fairq fq;
	int last[8]; /* the last seq of each flow taken (-1: none) */
	struct tp_qnode *n[8];
};

static struct node *node_of(struct tp_qnode *n)
{
	return (struct node *)(void *)((char *)n - offsetof(struct node, q));
}

/* Flows 0..7, flow f in group group_of_flow[f] (-1 or no array: none), an empty discipline in mode. */
static void lw_init(struct lane_world *w, const int *group_of_flow, enum tp_fairness mode)
{
	memset(w, 0, sizeof(*w));
	for (int g = 0; g < 2; g++)
		tp_qgroup_init(&w->groups[g]);
	for (int f = 0; f < 8; f++) {
		int g = group_of_flow ? group_of_flow[f] : -1;
		tp_qflow_init(&w->flows[f], g >= 0 ? &w->groups[g] : NULL);
		w->last[f] = -1;
	}
	tp_fairq_init(&w->fq, mode);
}

/* A node of flow f: cheap ('c') or expensive ('E'). */
static struct tp_qnode *lw_node(struct lane_world *w, int f, char kind)
{
	struct node *n = &w->nodes[w->used++];
	n->flow = f;
	n->seq = w->seq[f]++;
	n->q.flow = &w->flows[f];
	n->q.batchable = kind == 'c';
	n->q.cost_us = kind == 'c' ? 0 : EXPENSIVE_US;
	n->q.deadline_ns = UINT64_MAX;
	return &n->q;
}

/* Admit flow f's nodes, one character each. */
static void lw_admit(struct lane_world *w, int f, const char *kinds)
{
	for (; *kinds; kinds++)
		tp_fairq_add_ready(&w->fq, lw_node(w, f, *kinds));
}

/* Check that w->n[0..k) are cheap and the next ones of flow f, in order. */
static void taken(struct lane_world *w, size_t k, int f)
{
	for (size_t i = 0; i < k; i++) {
		struct node *x = node_of(w->n[i]);
		assert_true(x->q.batchable);
		assert_int_equal(x->flow, f);
		assert_int_equal(x->seq, w->last[f] + 1);
		w->last[f] = x->seq;
	}
}

/* The lane takes want nodes, all of flow f. */
static void lane(struct lane_world *w, size_t want, int f)
{
	size_t k = tp_fairq_pop_cheap(&w->fq, w->n, 8);
	assert_int_equal(k, want);
	taken(w, k, f);
}

/* Pop everything with general pops; each flow's order holds; the discipline ends empty. */
static size_t drain(struct lane_world *w)
{
	size_t total = 0, k;

	while ((k = tp_fairq_pop(&w->fq, w->n, 8)) > 0) {
		for (size_t i = 0; i < k; i++) {
			struct node *x = node_of(w->n[i]);
			assert_true(x->seq == w->last[x->flow] + 1);
			w->last[x->flow] = x->seq;
		}
		total += k;
	}
	assert_int_equal(w->fq.nready, 0);
	assert_int_equal(w->fq.nexpensive, 0);
	assert_int_equal(w->fq.nflows, 0);
	assert_null(w->fq.top.new_list.head);
	assert_null(w->fq.top.old_list.head);
	return total;
}

static bool on_list(const struct tp_fairq_list *l, const struct tp_fairq_entry *e)
{
	for (const struct tp_fairq_entry *x = l->head; x; x = x->link.next)
		if (x == e)
			return true;
	return false;
}

/* Expensive heads only: nothing, even with cheap nodes behind them. */
static void test_never_expensive(void **state)
{
	struct lane_world w;

	(void)state;
	lw_init(&w, NULL, TP_FAIR_CONNECTION);
	lw_admit(&w, 0, "Ecc");
	lw_admit(&w, 1, "E");
	lw_admit(&w, 2, "EcE");
	lane(&w, 0, -1);
	assert_int_equal(w.fq.nready, 7);

	/* A cheap-headed flow behind them: its run, up to its next expensive node. */
	lw_admit(&w, 3, "ccEc");
	lane(&w, 2, 3);
	lane(&w, 0, -1); /* flow 3's head is expensive now */
	assert_int_equal(drain(&w), 9);
}

/* The old list is searched too, and what the lane takes is charged. */
static void test_old_list(void **state)
{
	struct lane_world w;

	(void)state;
	lw_init(&w, NULL, TP_FAIR_CONNECTION);
	lw_admit(&w, 0, "Ecc");
	lw_admit(&w, 1, "EE");
	/* Flow 0's expensive head, then its spent deficit sends it to the old list. */
	assert_int_equal(tp_fairq_pop(&w.fq, w.n, 8), 1);
	assert_int_equal(node_of(w.n[0])->flow, 0);
	assert_int_equal(tp_fairq_pop(&w.fq, w.n, 8), 1);
	assert_int_equal(node_of(w.n[0])->flow, 1);
	w.last[0] = w.last[1] = 0;
	assert_true(on_list(&w.fq.top.old_list, &w.flows[0].e));
	assert_true(on_list(&w.fq.top.new_list, &w.flows[1].e));

	int64_t deficit = w.flows[0].e.deficit;
	lane(&w, 2, 0);
	/* Emptied: off the lists, as a pop leaves it. */
	assert_false(on_list(&w.fq.top.old_list, &w.flows[0].e));
	assert_int_equal(w.flows[0].e.nready, 0);
	assert_true(w.flows[0].e.deficit == deficit - 2 * TP_FAIRQ_MIN_COST_US);
	assert_int_equal(drain(&w), 1);
}

/* ADDRESS mode: inside a group, behind expensive-headed groups and flows. */
static void test_groups(void **state)
{
	static const int groups[8] = {0, 0, 1, 1, -1, -1, -1, -1};
	struct lane_world w;

	(void)state;
	lw_init(&w, groups, TP_FAIR_ADDRESS);
	lw_admit(&w, 0, "E");
	lw_admit(&w, 1, "Ec");
	lw_admit(&w, 4, "EEc"); /* a flow outside any group, at the top level */
	lw_admit(&w, 2, "E");
	lw_admit(&w, 3, "ccEc");
	int64_t gdeficit = w.groups[1].e.deficit;
	lane(&w, 2, 3);
	assert_true(w.groups[1].e.deficit == gdeficit - 2 * TP_FAIRQ_MIN_COST_US);
	assert_int_equal(w.groups[1].e.nready, 3);
	lane(&w, 0, -1);
	assert_int_equal(drain(&w), 9);
}

/* Waiters: the one whose turn it is, if cheap and first of its flow; else none. */
static void test_cheap_waiter(void **state)
{
	struct lane_world w;

	(void)state;
	lw_init(&w, NULL, TP_FAIR_CONNECTION);
	lw_admit(&w, 0, "EE");
	tp_fairq_add_wait(&w.fq, lw_node(&w, 0, 'E'));
	assert_null(tp_fairq_cheap_waiter(&w.fq)); /* flow 0's waiter is expensive */
	tp_fairq_add_wait(&w.fq, lw_node(&w, 1, 'c'));
	w.n[0] = tp_fairq_cheap_waiter(&w.fq);
	assert_non_null(w.n[0]);
	taken(&w, 1, 1);
	assert_int_equal(w.fq.nwait, 1);
	assert_int_equal(w.fq.nready, 2);

	/* Flow 2 has an admitted node: its cheap waiter is behind it. */
	lw_admit(&w, 2, "E");
	tp_fairq_add_wait(&w.fq, lw_node(&w, 2, 'c'));
	assert_null(tp_fairq_cheap_waiter(&w.fq));
	assert_int_equal(w.fq.nwait, 2);
}

static int admitted;

static void on_admit(struct tp_qnode *n, void *ctx)
{
	(void)ctx;
	assert_int_equal(node_of(n)->flow, 1);
	admitted++;
}

/* Nodes of flows[i] and kinds[i], linked through next, for a push. */
static struct tp_qnode *lw_chain(struct lane_world *w, const char *flows, const char *kinds)
{
	struct tp_qnode *first = NULL, **link = &first;

	for (; *kinds; kinds++, flows++) {
		*link = lw_node(w, *flows - '0', *kinds);
		(*link)->next = NULL;
		link = &(*link)->next;
	}
	return first;
}

/* A full queue: the lane runs a cheap waiter without taking a place; FIFO mode takes a cheap head only. */
static void test_queue_lane(void **state)
{
	struct lane_world w;
	struct tp_queue_stats st;
	struct tp_queue *q = tp_queue_new(2, on_admit, NULL);

	(void)state;
	lw_init(&w, NULL, TP_FAIR_CONNECTION);
	tp_queue_set_fairness(q, TP_FAIR_CONNECTION);
	assert_int_equal(tp_queue_push(q, lw_chain(&w, "000", "EEE"), 3), 2);
	assert_int_equal(tp_queue_push(q, lw_chain(&w, "1", "c"), 1), 0);
	assert_int_equal(tp_queue_pop_cheap(q, w.n, 8, NULL), 1);
	taken(&w, 1, 1);
	assert_int_equal(admitted, 1);
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, 2);
	assert_int_equal(st.waiting, 1);
	tp_queue_free(q);

	/* TP_FAIR_NONE: a run of cheap nodes at the head, not past an expensive one. */
	q = tp_queue_new(8, NULL, NULL);
	lw_init(&w, NULL, TP_FAIR_CONNECTION);
	assert_int_equal(tp_queue_push(q, lw_chain(&w, "0102", "ccEc"), 4), 4);
	assert_int_equal(tp_queue_pop_cheap(q, w.n, 8, NULL), 2);
	assert_int_equal(node_of(w.n[0])->flow, 0);
	assert_int_equal(node_of(w.n[1])->flow, 1);
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, 2);
	/* Closed: a cheap-only worker leaves at once, the general ones drain. */
	tp_queue_close(q);
	assert_int_equal(tp_queue_pop_cheap(q, w.n, 8, NULL), 0);
	tp_queue_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_never_expensive), cmocka_unit_test(test_old_list),
	        cmocka_unit_test(test_groups),          cmocka_unit_test(test_cheap_waiter),
	        cmocka_unit_test(test_queue_lane),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
