/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fairq.c and of the queue in its fair modes: shares of
 * backlogged flows and groups over many rounds, weighted by cost and with
 * the cost floor; a flow with nothing queued served next; each flow's FIFO
 * order; the bound never exceeded; a place that frees going to the least
 * loaded waiter, each waiter keeping its deadline; a client that leaves
 * while queued; and a change of mode with work queued.  Weighted nodes:
 * the bound, depth and largest in requests, the cost floor per request,
 * and add_ready_chain's room.  Debt far past a quantum paid in one pass.
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
#include "queue.h"

struct item {
	struct tp_qnode node;
	int flow; /* index of its flow in the test */
	int seq;  /* order within its flow */
};

static struct item *item_of(struct tp_qnode *n)
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

static void world_init(struct world *w, size_t nitems)
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
static void world_group(struct world *w, int f, int g)
{
	tp_qflow_init(&w->flows[f], &w->groups[g]);
}

/* Start again with the same flows and groups, nothing queued. */
static void world_reset(struct world *w)
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

static struct item *world_item(struct world *w, int f, uint32_t cost_us, bool batchable)
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
static void add(struct tp_fairq *fq, struct world *w, int f, uint32_t cost_us)
{
	tp_fairq_add_ready(fq, &world_item(w, f, cost_us, false)->node);
}

/* Pop one node and return its flow, checking its order within the flow. */
static int pop_flow(struct tp_fairq *fq, int *last_seq)
{
	struct tp_qnode *n[1];
	assert_int_equal(tp_fairq_pop(fq, n, 1), 1);
	struct item *it = item_of(n[0]);
	assert_true(it->seq > last_seq[it->flow]);
	last_seq[it->flow] = it->seq;
	return it->flow;
}

static void reset_seq(int *last_seq)
{
	for (int i = 0; i < 64; i++)
		last_seq[i] = -1;
}

/*
 * From a fresh start in mode, keep flows first..first+nflows-1 backlogged
 * with 4 nodes of cost[f] each and pop rounds times; count[f] gets each
 * flow's pops.
 */
static void run_backlogged(struct world *w, enum tp_fairness mode, int first, int nflows,
                           const uint32_t *cost, int rounds, int *count)
{
	struct tp_fairq fq;
	int last[64];

	world_reset(w);
	reset_seq(last);
	tp_fairq_init(&fq, mode);
	for (int f = first; f < first + nflows; f++)
		for (int i = 0; i < 4; i++)
			add(&fq, w, f, cost[f]);
	for (int i = 0; i < rounds; i++) {
		int f = pop_flow(&fq, last);
		count[f]++;
		add(&fq, w, f, cost[f]); /* stays backlogged */
		if (w->used == w->nitems)
			w->used = 0; /* the items popped long ago are free again */
	}
}

/* ADDRESS mode: groups share equally, then flows within a group; backlogged throughout. */
static void test_shares(void **state)
{
	static const uint32_t cost[4] = {500, 500, 500, 500};
	struct world w;
	int count[4] = {0};
	const int rounds = 4000;

	(void)state;
	world_init(&w, 4000);
	world_group(&w, 0, 0);
	world_group(&w, 1, 0);
	world_group(&w, 2, 0);
	world_group(&w, 3, 1);
	run_backlogged(&w, TP_FAIR_ADDRESS, 0, 4, cost, rounds, count);
	/* Group 1 (one flow) gets half; group 0's three flows share the other half. */
	assert_in_range(count[3], rounds / 2 - rounds / 50, rounds / 2 + rounds / 50);
	for (int f = 0; f < 3; f++)
		assert_in_range(count[f], rounds / 6 - rounds / 50, rounds / 6 + rounds / 50);
	/* CONNECTION mode: the four flows share equally, groups or not. */
	memset(count, 0, sizeof(count));
	run_backlogged(&w, TP_FAIR_CONNECTION, 0, 4, cost, rounds, count);
	for (int f = 0; f < 4; f++)
		assert_in_range(count[f], rounds / 4 - rounds / 50, rounds / 4 + rounds / 50);
	free(w.items);
}

/* Shares are of cost: SLEEP 1000s get the pool as long as SLEEP 10s do; cost 0 counts as the floor. */
static void test_cost(void **state)
{
	static const uint32_t cost[4] = {1000000, 10000, 0, TP_FAIRQ_MIN_COST_US};
	struct world w;
	int count[4] = {0};

	(void)state;
	world_init(&w, 4000);
	run_backlogged(&w, TP_FAIR_CONNECTION, 0, 2, cost, 20000, count);
	/* Equal cost, so about 100 small ones per big one. */
	assert_in_range(count[1], 95 * count[0], 105 * count[0]);
	/* Free requests are not free: cost 0 is charged the floor, like an ECHO. */
	run_backlogged(&w, TP_FAIR_CONNECTION, 2, 2, cost, 100000, count);
	assert_in_range(count[2], 49000, 51000);
	free(w.items);
}

/*
 * Debt far beyond a quantum (work charged, then answered without running)
 * is paid back a pass at a time, not a quantum per turn: each pop below
 * would take some four million turns per flow otherwise, and the alarm
 * would end the test.  Turns and shares stay those of the rotation.
 */
static void test_debt_paid_in_one_pass(void **state)
{
	static uint32_t cost[64];
	struct world w;
	int count[64] = {0};

	(void)state;
	world_init(&w, 4000);
	for (int f = 0; f < 64; f++) {
		cost[f] = UINT32_MAX;
		world_group(&w, f, f % 8); /* 64 flows on 8 addresses: both levels in debt */
	}
	alarm(30);
	run_backlogged(&w, TP_FAIR_ADDRESS, 0, 64, cost, 6400, count);
	for (int f = 0; f < 64; f++)
		assert_in_range(count[f], 99, 101);
	/* Shares of cost: charged a quarter as much, served four times as often. */
	cost[1] = UINT32_MAX / 4;
	memset(count, 0, sizeof(count));
	run_backlogged(&w, TP_FAIR_CONNECTION, 0, 2, cost, 5000, count);
	assert_in_range(count[1], 39 * count[0] / 10, 41 * count[0] / 10);
	free(w.items);
}

/* The alarm ends with its test, also one that failed. */
static int cancel_alarm(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

/* A flow with nothing queued goes ahead of backlogged ones, in another group or in theirs. */
static void test_new_flow_first(void **state)
{
	struct world w;
	struct tp_fairq fq;
	int last[64];

	(void)state;
	world_init(&w, 4000);
	for (int f = 0; f < 51; f++)
		world_group(&w, f, 0); /* 50 flooders and a victim (50) on one address */
	world_group(&w, 60, 1);        /* a victim on another */
	tp_fairq_init(&fq, TP_FAIR_ADDRESS);
	reset_seq(last);
	for (int i = 0; i < 20; i++)
		for (int f = 0; f < 50; f++)
			add(&fq, &w, f, 40000);
	/* The flood starts as 50 new flows; once each was served, all are backlogged. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(pop_flow(&fq, last), i);
	for (int round = 0; round < 20; round++) {
		/* A few flooder requests go, then each victim's one request is next. */
		for (int i = 0; i < 7; i++)
			assert_true(pop_flow(&fq, last) < 50);
		add(&fq, &w, 50, 10000);
		assert_int_equal(pop_flow(&fq, last), 50);
		add(&fq, &w, 60, 10000);
		assert_int_equal(pop_flow(&fq, last), 60);
		/* Both at once: each still before any flooder. */
		add(&fq, &w, 60, 10000);
		add(&fq, &w, 50, 10000);
		int a = pop_flow(&fq, last), b = pop_flow(&fq, last);
		assert_true((a == 50 && b == 60) || (a == 60 && b == 50));
	}
	free(w.items);
}

/* Per-flow FIFO under any interleaving; only cheap nodes come in batches. */
static void test_flow_fifo_and_batches(void **state)
{
	struct world w;
	struct tp_fairq fq;
	int last[64];
	unsigned seed = 7;
	size_t out = 0;
	struct tp_qnode *b[16];

	(void)state;
	world_init(&w, 5000);
	for (int f = 0; f < 16; f++)
		world_group(&w, f, f % 3);
	tp_fairq_init(&fq, TP_FAIR_ADDRESS);
	reset_seq(last);
	for (int i = 0; i < 5000; i++) {
		seed = seed * 1103515245u + 12345u;
		int f = (int)(seed >> 16) % 16;
		tp_fairq_add_ready(&fq, &world_item(&w, f, (seed >> 8) % 50000, f < 8)->node);
		if (i % 3 == 0) {
			size_t n = tp_fairq_pop(&fq, b, 16);
			for (size_t k = 0; k < n; k++) {
				struct item *it = item_of(b[k]);
				assert_true(it->seq > last[it->flow]);
				last[it->flow] = it->seq;
				/* Only batchable nodes (flows 0..7) come more than one at a time. */
				assert_true(n == 1 || it->flow < 8);
			}
			out += n;
		}
	}
	for (size_t n; (n = tp_fairq_pop(&fq, b, 16)) > 0; out += n)
		for (size_t k = 0; k < n; k++) {
			struct item *it = item_of(b[k]);
			assert_true(it->seq > last[it->flow]);
			last[it->flow] = it->seq;
		}
	assert_int_equal(out, 5000);
	assert_int_equal(fq.nready, 0);
	assert_int_equal(fq.nflows, 0);
	free(w.items);
}

/* --- the queue in a fair mode --- */

struct admits {
	int flow[256];
	size_t n;
};

static void on_admit(struct tp_qnode *node, void *ctx)
{
	struct admits *a = ctx;
	if (a->n < 256)
		a->flow[a->n++] = item_of(node)->flow;
}

static int qpush(struct tp_queue *q, struct world *w, int f, uint32_t cost, uint64_t deadline_ns)
{
	struct item *it = world_item(w, f, cost, false);
	it->node.deadline_ns = deadline_ns;
	it->node.next = NULL;
	return tp_queue_push(q, &it->node, 1);
}

static struct item *qpop_item(struct tp_queue *q)
{
	struct tp_qnode *n[1];
	assert_int_equal(tp_queue_pop(q, n, 1, NULL), 1);
	return item_of(n[0]);
}

static int qpop(struct tp_queue *q)
{
	return qpop_item(q)->flow;
}

static void expect_depth(struct tp_queue *q, size_t depth, size_t waiting)
{
	struct tp_queue_stats st;
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, depth);
	assert_int_equal(st.waiting, waiting);
	assert_true(st.depth <= st.capacity);
}

/* A queue of capacity in ADDRESS mode over a world of nitems, flow f in group f / per_group. */
static struct tp_queue *fair_queue(struct world *w, size_t nitems, size_t capacity, struct admits *a,
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
static void fair_done(struct tp_queue *q, struct world *w)
{
	expect_depth(q, 0, 0);
	tp_queue_free(q);
	free(w->items);
}

/* A freed place goes to the least loaded group, then flow; each waiter expires at its own deadline. */
static void test_fair_admission(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 4, &a, 4, 3); /* flows 0-2 in group 0, 3 in group 1 */
	struct tp_qnode *gone;
	uint64_t next;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(qpush(q, &w, 0, 40000, 100 + (uint64_t)i), 1);
	/* Full: flow 0 waits (oldest), then flow 1 (its group holds all), then flow 3 (an empty group). */
	assert_int_equal(qpush(q, &w, 0, 40000, 100), 0);
	assert_int_equal(qpush(q, &w, 1, 40000, 200), 0);
	assert_int_equal(qpush(q, &w, 3, 40000, 300), 0);
	assert_int_equal(qpush(q, &w, 2, 40000, 400), 0);
	expect_depth(q, 4, 4);
	assert_int_equal(qpop(q), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.flow[0], 3); /* the newest waiter, of the group with nothing queued */
	assert_int_equal(qpop(q), 3);   /* and it is served first */
	/* Group 0 only: flows 1 and 2 hold nothing, flow 0 holds three: flow 1 (older) goes first. */
	assert_int_equal(a.n, 2);
	assert_int_equal(a.flow[1], 1);
	assert_int_equal(qpop(q), 1); /* a flow that had nothing queued is served next */
	assert_int_equal(a.n, 3);
	assert_int_equal(a.flow[2], 2);
	expect_depth(q, 4, 1);
	/* Deadlines are the waiters' own: flow 0's waiter expires at 100, whatever the order. */
	assert_int_equal(tp_queue_expire(q, 99, &gone, &next), 0);
	assert_int_equal(next, 100);
	assert_int_equal(tp_queue_expire(q, 100, &gone, &next), 1);
	assert_int_equal(item_of(gone)->flow, 0);
	assert_int_equal(next, 0);
	expect_depth(q, 4, 0);
	for (int i = 0; i < 4; i++)
		(void)qpop(q);
	fair_done(q, &w);
}

/*
 * Two addresses that hold about as much (one power of 4 of queued cost)
 * take the places in turns: the one whose waiter was admitted goes behind
 * the other, though its cost keeps it in the same bucket.  (It stayed first,
 * and a lighter address sharing its bucket got no place at all.)
 */
static void test_admission_in_turns_within_a_bucket(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 4, &a, 4, 3); /* flows 0-2 in group 0, 3 in group 1 */

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(qpush(q, &w, 0, 1000, 1000), 1);
	for (int i = 0; i < 6; i++)
		assert_int_equal(qpush(q, &w, 0, 1000, 1000), 0);
	/* 4 000 µs admitted and a waiter of 1 000, against one waiter of 4 600: [4 096, 16 384) both. */
	assert_int_equal(qpush(q, &w, 3, 4600, 1000), 0);
	assert_int_equal(qpop(q), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.flow[0], 0); /* group 0 waited first */
	(void)qpop(q);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.flow[1], 3); /* then group 1's turn */
	for (int i = 0; i < 4; i++)
		(void)qpop(q);
	assert_int_equal(a.n, 6);
	expect_depth(q, 4, 1);
	for (int i = 0; i < 5; i++)
		(void)qpop(q);
	fair_done(q, &w);
}

/*
 * A waiter whose deadline is earlier than the first waiter's (a line set
 * aside since its read) leaves at its deadline, not with the younger
 * waiters ahead of it; but never before a waiter of its own flow.
 */
static void test_an_earlier_deadline_expires_first(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 1, &a, 4, 1);
	struct tp_qnode *gone;
	uint64_t next;

	(void)state;
	assert_int_equal(qpush(q, &w, 0, 1000, UINT64_MAX), 1);
	assert_int_equal(qpush(q, &w, 1, 1000, 5000), 0);
	assert_int_equal(qpush(q, &w, 2, 1000, 6000), 0);
	/* One push of a flow's two lines read long ago: both before the waiters there. */
	struct item *x = world_item(&w, 3, 1000, false), *y = world_item(&w, 3, 1000, false);
	x->node.deadline_ns = 150;
	y->node.deadline_ns = 160;
	x->node.next = &y->node;
	y->node.next = NULL;
	assert_int_equal(tp_queue_push(q, &x->node, 2), 0);
	assert_int_equal(qpush(q, &w, 1, 1000, 100), 0); /* behind its flow's 5000 */
	assert_int_equal(tp_queue_next_deadline(q), 150);
	assert_int_equal(tp_queue_expire(q, 160, &gone, &next), 2);
	assert_int_equal(item_of(gone)->flow, 3);
	assert_int_equal(item_of(gone->next)->flow, 3);
	assert_int_equal(next, 5000);
	assert_int_equal(tp_queue_expire(q, 5000, &gone, &next), 1);
	assert_int_equal(item_of(gone)->flow, 1);
	assert_int_equal(next, 6000);
	/* Flow 1's second left with the waiter ahead of it. */
	assert_int_equal(tp_queue_expire(q, 6000, &gone, &next), 2);
	assert_int_equal(item_of(gone)->flow, 2);
	assert_int_equal(item_of(gone->next)->flow, 1);
	assert_int_equal(qpop(q), 0);
	fair_done(q, &w);
}

/* Many flows pushing into a small queue: never more than capacity admitted, nothing lost. */
static void test_bound(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 2000, 10, &a, 20, 5);
	struct tp_queue_stats st;
	size_t popped = 0;

	(void)state;
	for (int i = 0; i < 2000; i++) {
		(void)qpush(q, &w, i % 20, (uint32_t)(i % 7) * 1000, UINT64_MAX);
		tp_queue_stats(q, &st);
		assert_true(st.depth <= 10);
		assert_true(st.waiting == 0 || st.depth == 10);
		if (i % 2) {
			(void)qpop(q);
			popped++;
		}
	}
	tp_queue_stats(q, &st);
	while (st.depth > 0) {
		(void)qpop(q);
		popped++;
		tp_queue_stats(q, &st);
		assert_true(st.depth <= 10);
	}
	assert_int_equal(popped, 2000);
	fair_done(q, &w);
}

/* A client that leaves: its nodes come out at once, its places go to waiters, its flow is forgotten. */
static void test_flow_leaves(void **state)
{
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 4, &a, 2, 1);
	struct tp_qnode *out;
	struct tp_queue_stats st;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(qpush(q, &w, 0, 40000, UINT64_MAX), 1);
	assert_int_equal(qpush(q, &w, 1, 40000, UINT64_MAX), 1);
	assert_int_equal(qpush(q, &w, 0, 40000, UINT64_MAX), 0);
	assert_int_equal(qpush(q, &w, 1, 40000, UINT64_MAX), 0);
	assert_int_equal(qpush(q, &w, 1, 40000, UINT64_MAX), 0);
	assert_int_equal(tp_queue_take_flow(q, &w.flows[0], &out), 4);
	for (int i = 0; i < 4; i++, out = out->next) {
		assert_non_null(out);
		assert_int_equal(item_of(out)->flow, 0);
	}
	assert_null(out);
	assert_int_equal(a.n, 2); /* flow 1's waiters took the places */
	expect_depth(q, 3, 0);
	tp_queue_stats(q, &st);
	assert_int_equal(st.flows, 1);
	assert_int_equal(st.largest, 3);
	/* The flow's memory may go: the queue no longer refers to it. */
	memset(&w.flows[0], 0xa5, sizeof(w.flows[0]));
	for (int i = 0; i < 3; i++)
		assert_int_equal(qpop(q), 1);
	fair_done(q, &w);
}

/* Reload: the mode changes with work admitted and waiting; nothing is lost or reordered within a flow. */
static void test_mode_change(void **state)
{
	static const enum tp_fairness modes[] = {TP_FAIR_ADDRESS, TP_FAIR_NONE, TP_FAIR_CONNECTION,
	                                         TP_FAIR_ADDRESS};
	struct world w;
	struct admits a = {0};
	struct tp_queue *q = fair_queue(&w, 64, 8, &a, 4, 2);
	int last[64], other = 0;

	(void)state;
	tp_queue_set_fairness(q, TP_FAIR_NONE); /* the work arrives in FIFO mode */
	reset_seq(last);
	for (int i = 0; i < 12; i++)
		(void)qpush(q, &w, i < 8 ? 0 : 1 + i % 3, 10000, UINT64_MAX);
	expect_depth(q, 8, 4);
	for (int total = 0; total < 12; total++) {
		if (total < 4) {
			tp_queue_set_fairness(q, modes[total]);
			expect_depth(q, 8, 4 - (size_t)total);
		}
		struct item *it = qpop_item(q);
		assert_int_equal(it->seq, last[it->flow] + 1); /* each flow's in order, none lost */
		last[it->flow] = it->seq;
		other += it->flow >= 2 && total >= 4 && total < 7;
	}
	/* In ADDRESS mode again, group 1 (flows 2, 3) is served within three pops. */
	assert_true(other > 0);
	assert_int_equal(a.n, 4);
	fair_done(q, &w);
}

/* Producers and consumers on several threads in ADDRESS mode: nothing lost or duplicated. */
struct mt {
	struct tp_queue *q;
	struct world *w;
	int base;
	_Atomic int popped;
};

static void *mt_producer(void *arg)
{
	struct mt *m = arg;
	for (int i = 0; i < 2000; i++) {
		struct item *it = &m->w->items[m->base + i];
		it->node.next = NULL;
		(void)tp_queue_push(m->q, &it->node, 1); /* admitted or waiting: a pop admits it */
	}
	return NULL;
}

static void *mt_consumer(void *arg)
{
	struct mt *m = arg;
	struct tp_qnode *n[8];
	size_t got;
	while ((got = tp_queue_pop(m->q, n, 8, NULL)) > 0)
		atomic_fetch_add(&m->popped, (int)got);
	return NULL;
}

static void test_threads(void **state)
{
	struct world w;
	struct tp_queue *q = tp_queue_new(16, NULL, NULL);
	struct mt m[4];
	pthread_t prod[4], cons[2];

	(void)state;
	world_init(&w, 8000);
	for (int f = 0; f < 8; f++)
		world_group(&w, f, f % 2);
	for (size_t i = 0; i < 8000; i++)
		(void)world_item(&w, (int)(i % 8), (uint32_t)(i % 3), i % 2 == 0);
	tp_queue_set_fairness(q, TP_FAIR_ADDRESS);
	for (int i = 0; i < 4; i++) {
		m[i] = (struct mt){.q = q, .w = &w, .base = i * 2000};
		pthread_create(&prod[i], NULL, mt_producer, &m[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_create(&cons[i], NULL, mt_consumer, &m[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(prod[i], NULL);
	tp_queue_close(q);
	for (int i = 0; i < 2; i++)
		pthread_join(cons[i], NULL);
	assert_int_equal(atomic_load(&m[0].popped) + atomic_load(&m[1].popped), 8000);
	tp_queue_free(q);
	free(w.items);
}

/*
 * A chain admitted at once (a loop turn's push) is scheduled as the same
 * nodes admitted one by one: same pops in the same order, same counts, in
 * both modes; runs of one flow are split where the flow changes, and the
 * count stops at n or at the chain's end.
 */
static void test_chain_is_one_by_one(void **state)
{
	enum { N = 300 };
	static const enum tp_fairness modes[] = {TP_FAIR_CONNECTION, TP_FAIR_ADDRESS};
	struct world a, b;

	(void)state;
	for (size_t m = 0; m < 2; m++) {
		struct tp_fairq fa, fb;
		world_init(&a, N);
		world_init(&b, N);
		for (int f = 0; f < 12; f++) {
			world_group(&a, f, f % 3);
			world_group(&b, f, f % 3);
		}
		tp_fairq_init(&fa, modes[m]);
		tp_fairq_init(&fb, modes[m]);
		/* Runs of 1 to 7 nodes of one flow, cheap and expensive mixed, some flows twice. */
		uint32_t seed = 7;
		for (int i = 0; i < N;) {
			seed = seed * 1103515245u + 12345u;
			int f = (int)(seed >> 16) % 12, run = 1 + (int)(seed >> 8) % 7;
			for (int k = 0; k < run && i < N; k++, i++) {
				bool cheap = (seed >> (k + 3)) & 1;
				uint32_t cost = cheap ? 0 : 100 + (seed >> 20) % 3000;
				tp_fairq_add_ready(&fa, &world_item(&a, f, cost, cheap)->node);
				(void)world_item(&b, f, cost, cheap);
			}
		}
		for (int i = 0; i + 1 < N; i++)
			b.items[i].node.next = &b.items[i + 1].node;
		/* Admitted in three chains: n stops the first two, the chain's end the last. */
		struct tp_qnode *pos = &b.items[0].node;
		assert_int_equal(tp_fairq_add_ready_chain(&fb, &pos, 100, SIZE_MAX), 100);
		assert_ptr_equal(pos, &b.items[100].node);
		assert_int_equal(tp_fairq_add_ready_chain(&fb, &pos, 1, SIZE_MAX), 1);
		assert_int_equal(tp_fairq_add_ready_chain(&fb, &pos, N, SIZE_MAX), N - 101);
		assert_null(pos);
		assert_int_equal(fb.nready, fa.nready);
		assert_int_equal(fb.nexpensive, fa.nexpensive);
		assert_int_equal(fb.nflows, fa.nflows);
		for (;;) {
			struct tp_qnode *ra[N], *rb[N];
			size_t na = tp_fairq_pop(&fa, ra, 16), nb = tp_fairq_pop(&fb, rb, 16);
			assert_int_equal(na, nb);
			if (!na)
				break;
			for (size_t i = 0; i < na; i++)
				assert_int_equal(item_of(ra[i]) - a.items, item_of(rb[i]) - b.items);
			assert_int_equal(fb.nexpensive, fa.nexpensive);
		}
		free(a.items);
		free(b.items);
	}
}

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

static uint64_t fake_now_us;
static uint64_t fake_clock(void)
{
	return fake_now_us;
}

/*
 * Group 1 runs a node of 3 000 µs on its quantum of 1 000 and empties;
 * group 0 is backlogged with nodes of 20.  Back 100 µs later, group 1
 * still owes 1 900 µs: group 0 is served about that much first (95 nodes,
 * give or take a quantum).  Back after 3 ms, it owes nothing and is served
 * next, as a new entry.
 */
static void test_a_group_keeps_its_debt_while_away(void **state)
{
	struct tp_fairq fq;
	struct world w;
	int last[64];
	(void)state;

	world_init(&w, 1000);
	world_group(&w, 0, 0);
	world_group(&w, 1, 1);
	for (int back_us = 100; back_us <= 3000; back_us += 2900) {
		world_reset(&w);
		reset_seq(last);
		tp_fairq_init(&fq, TP_FAIR_ADDRESS);
		fq.now_us = fake_clock;
		fake_now_us = 1000000;
		for (int i = 0; i < 400; i++)
			add(&fq, &w, 0, 20);
		add(&fq, &w, 1, 3000);
		while (pop_flow(&fq, last) != 1)
			;
		fake_now_us += (uint64_t)back_us;
		add(&fq, &w, 1, 20);
		int before = 0;
		while (pop_flow(&fq, last) == 0)
			before++;
		if (back_us == 100)
			assert_true(before >= 80 && before <= 150);
		else
			assert_true(before <= 1);
	}
	free(w.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shares),
	        cmocka_unit_test(test_a_group_keeps_its_debt_while_away),
	        cmocka_unit_test(test_cost),
	        cmocka_unit_test_teardown(test_debt_paid_in_one_pass, cancel_alarm),
	        cmocka_unit_test(test_new_flow_first),
	        cmocka_unit_test(test_flow_fifo_and_batches),
	        cmocka_unit_test(test_fair_admission),
	        cmocka_unit_test(test_admission_in_turns_within_a_bucket),
	        cmocka_unit_test(test_an_earlier_deadline_expires_first),
	        cmocka_unit_test(test_bound),
	        cmocka_unit_test(test_flow_leaves),
	        cmocka_unit_test(test_mode_change),
	        cmocka_unit_test(test_threads),
	        cmocka_unit_test(test_chain_is_one_by_one),
	        cmocka_unit_test(test_weight_chain_room),
	        cmocka_unit_test(test_weight_cost_floor),
	        cmocka_unit_test(test_weight_fair_bound),
	        cmocka_unit_test(test_weight_pop_admits_before),
	        cmocka_unit_test(test_weight_fair_push),
	        cmocka_unit_test(test_weight_fair_expire),
	        cmocka_unit_test(test_weight_mode_change),
	        cmocka_unit_test(test_weight_flow_leaves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
