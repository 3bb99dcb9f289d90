/* SPDX-License-Identifier: MIT */
/*
 * Model test of queue.c and the fair discipline under it: random sequences
 * of pushes (batches of nodes weighing 1..16, cheap or not, with deadlines,
 * in six flows, four of them in two groups), pops and cheap-lane pops,
 * expiry at a moving clock, capacity changes (often below the depth),
 * changes of discipline (all three), flows taken out, and deadlines capped
 * by a reload that shortens the timeout.  After every step the queue is
 * checked against the test's own model of it: depth and waiting are the
 * weights the model holds; the depth is within the capacity except after a
 * shrink or for one node heavier than the capacity admitted alone; nobody
 * waits unless the waiter next in turn does not fit; each flow is admitted
 * and served in its order, and in TP_FAIR_NONE no newcomer overtakes a
 * waiter; expiry takes exactly the waiters whose deadline passed, oldest
 * first; every node leaves once (popped, expired or taken); a batch of
 * more than one node is all batchable; the admit callback runs once for
 * each waiter admitted.  Single-threaded (a pop is made only when it
 * will not block) and seeded: a failure names the seed and the step, and
 * that seed alone replays it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fairq.h"
#include "queue.h"
#include "queue_priv.h"

#define STEPS 5000
#define PUSH_MAX 5 /* nodes in one push */
#define NITEMS (STEPS * PUSH_MAX)
#define NFLOWS 6
#define NGROUPS 2
#define BATCH_MAX 8
#define PHASE 200 /* steps of filling, then of draining */

enum state { UNUSED, PENDING, WAITING, ADMITTED, LEAVING, GONE };

struct item {
	struct tp_qnode node;
	size_t id;            /* arrival order */
	int flow, seq;        /* the flow and the place in it (from 1) */
	enum state state;     /* in the model */
	uint64_t deadline_ns; /* what the queue should hold while it waits */
};

struct model {
	struct tp_queue *q;
	struct item *items;
	size_t nitems, live;  /* nodes pushed; items[0..live) have all left */
	struct item **expect; /* what the call under way should hand back, in order */
	size_t nexpect;
	struct tp_qflow flows[NFLOWS];
	struct tp_qgroup groups[NGROUPS];
	int pushed[NFLOWS];    /* seq of each flow's last node pushed */
	int admitted[NFLOWS];  /* seq of each flow's last node admitted */
	size_t depth, waiting; /* weights admitted and waiting */
	size_t nadmitted;      /* nodes admitted */
	size_t capacity, over; /* over: the depth allowed above the capacity after a shrink */
	enum tp_fairness mode;
	uint64_t now_ns, timeout_ns;
	uint32_t rng;
	unsigned seed;
	int step;
	const char *op;
};

#define CHECK(m, cond)                                                                              \
	do {                                                                                        \
		if (!(cond))                                                                        \
			fail_msg("seed %u step %d (%s): %s", (m)->seed, (m)->step, (m)->op, #cond); \
	} while (0)

/* xorshift32: the same sequence on every platform. */
static unsigned rnd(struct model *m, unsigned n)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 17;
	m->rng ^= m->rng << 5;
	return m->rng % n;
}

static struct item *item_of(struct tp_qnode *n)
{
	return (struct item *)(void *)((char *)n - offsetof(struct item, node));
}

static size_t weight(const struct item *x)
{
	return tp_qnode_weight(&x->node);
}

/* x goes to state `to`, the model's counts with it. */
static void move(struct model *m, struct item *x, enum state to)
{
	if (x->state == WAITING)
		m->waiting -= weight(x);
	if (x->state == ADMITTED) {
		m->depth -= weight(x);
		m->nadmitted--;
	}
	x->state = to;
	if (to == WAITING)
		m->waiting += weight(x);
	if (to == ADMITTED) {
		m->depth += weight(x);
		m->nadmitted++;
	}
	while (m->live < m->nitems && m->items[m->live].state == GONE)
		m->live++;
}

/* The oldest node in state st, of flow (-1: any), or NULL. */
static struct item *oldest(struct model *m, int flow, enum state st)
{
	for (size_t i = m->live; i < m->nitems; i++) {
		struct item *x = &m->items[i];
		if (x->state == st && (flow < 0 || x->flow == flow))
			return x;
	}
	return NULL;
}

static void on_admit(struct tp_qnode *n, void *ctx)
{
	struct model *m = ctx;
	struct item *x = item_of(n);

	/* Once per waiter; a node of the push under way only if the push does not admit it itself. */
	CHECK(m, x->state == WAITING || x->state == PENDING);
	CHECK(m, x->seq > m->admitted[x->flow]);
	/* One FIFO: the oldest waiter (or a node being pushed, when nobody waited). */
	if (m->mode == TP_FAIR_NONE)
		CHECK(m, oldest(m, -1, WAITING) == (x->state == WAITING ? x : NULL));
	m->admitted[x->flow] = x->seq;
	move(m, x, ADMITTED);
}

/* A worker got x: admitted, and the oldest its flow has admitted. */
static void serve(struct model *m, struct item *x)
{
	CHECK(m, x->state == ADMITTED);
	CHECK(m, oldest(m, x->flow, ADMITTED) == x);
	move(m, x, GONE);
}

/* x is to be handed back by the call under way, after those expected before it. */
static void expect(struct model *m, struct item *x)
{
	move(m, x, LEAVING);
	m->expect[m->nexpect++] = x;
}

/* The call handed back the chain from first, n nodes by its count: exactly those expected. */
static void got_expected(struct model *m, struct tp_qnode *first, size_t n)
{
	size_t i = 0;

	for (; first; first = first->next, i++) {
		CHECK(m, i < m->nexpect && item_of(first) == m->expect[i]);
		move(m, m->expect[i], GONE);
	}
	CHECK(m, i == m->nexpect && n == i);
	m->nexpect = 0;
}

/* A fresh node of a random flow, due at the current timeout. */
static struct item *new_item(struct model *m)
{
	struct item *x = &m->items[m->nitems];

	x->id = m->nitems++;
	x->flow = (int)rnd(m, NFLOWS);
	x->seq = ++m->pushed[x->flow];
	x->state = PENDING;
	x->deadline_ns = m->now_ns + m->timeout_ns;
	x->node.flow = &m->flows[x->flow];
	x->node.deadline_ns = x->deadline_ns;
	x->node.batchable = rnd(m, 3) != 0;
	x->node.more = (uint16_t)(x->node.batchable && rnd(m, 4) == 0 ? rnd(m, 16) : 0);
	x->node.cost_us = x->node.batchable ? rnd(m, 20) : rnd(m, 5000);
	return x;
}

static void op_push(struct model *m)
{
	size_t k = 1 + rnd(m, PUSH_MAX), base = m->nitems, used = m->depth;
	int before[NFLOWS];
	bool waiters = m->waiting > 0;

	for (int f = 0; f < NFLOWS; f++)
		before[f] = m->admitted[f];
	for (size_t j = 0; j < k; j++)
		new_item(m)->node.next = j + 1 < k ? &m->items[base + j + 1].node : NULL;
	int a = tp_queue_push(m->q, &m->items[base].node, k);
	CHECK(m, a >= 0 && (size_t)a <= k);
	/* Admitted only while nobody waits, as long as they fit, in order. */
	CHECK(m, a == 0 || !waiters);
	for (size_t j = 0; j < (size_t)a; j++) {
		struct item *x = &m->items[base + j];
		CHECK(m, x->state == PENDING);
		CHECK(m, x->seq > before[x->flow]);
		used += weight(x);
		if (x->seq > m->admitted[x->flow])
			m->admitted[x->flow] = x->seq;
		move(m, x, ADMITTED);
	}
	CHECK(m, used <= m->capacity || a == 0);
	if ((size_t)a < k && !waiters)
		CHECK(m, used + weight(&m->items[base + (size_t)a]) > m->capacity);
	for (size_t j = (size_t)a; j < k; j++)
		if (m->items[base + j].state == PENDING)
			move(m, &m->items[base + j], WAITING);
}

static void op_pop(struct model *m)
{
	struct tp_qnode *ret[BATCH_MAX];
	size_t max = 1 + rnd(m, BATCH_MAX);

	if (m->depth == 0)
		return; /* it would block */
	size_t n = tp_queue_pop(m->q, ret, max, NULL);
	CHECK(m, n >= 1 && n <= max);
	for (size_t i = 0; i < n; i++) {
		CHECK(m, n == 1 || ret[i]->batchable);
		serve(m, item_of(ret[i]));
	}
}

/*
 * Would tp_queue_pop_cheap() find work at once?  Read under the queue's
 * lock as the lane reads it (six flows: its bounded search sees them all).
 * Otherwise it would block, and this test has one thread: it is called
 * only when it has work.
 */
static bool cheap_work(struct model *m)
{
	struct tp_queue *q = m->q;
	bool found = false;

	pthread_mutex_lock(&q->lock);
	if (!fair(q)) {
		found = q->ready.head && q->ready.head->batchable;
	} else {
		struct tp_qflow *w = tp_fairq_next_waiting_flow(&q->fq);
		for (int f = 0; f < NFLOWS; f++)
			found |= m->flows[f].rhead && m->flows[f].rhead->batchable;
		found |= w && !w->rhead && w->whead->batchable;
	}
	pthread_mutex_unlock(&q->lock);
	return found;
}

static void op_pop_cheap(struct model *m)
{
	struct tp_qnode *ret[BATCH_MAX];
	size_t max = 1 + rnd(m, BATCH_MAX);

	if (!cheap_work(m))
		return;
	size_t n = tp_queue_pop_cheap(m->q, ret, max, NULL);
	CHECK(m, n >= 1 && n <= max);
	for (size_t i = 0; i < n; i++) {
		CHECK(m, ret[i]->batchable);
		/* In the fair modes, a run of one flow's. */
		CHECK(m, m->mode == TP_FAIR_NONE || ret[i]->flow == ret[0]->flow);
		serve(m, item_of(ret[i]));
	}
}

static void op_expire(struct model *m)
{
	struct tp_qnode *first;
	uint64_t next_ns;

	m->now_ns += rnd(m, 400);
	for (size_t i = m->live; i < m->nitems; i++)
		if (m->items[i].state == WAITING && m->items[i].deadline_ns <= m->now_ns)
			expect(m, &m->items[i]);
	size_t n = tp_queue_expire(m->q, m->now_ns, &first, &next_ns);
	got_expected(m, first, n);
	struct item *w = oldest(m, -1, WAITING);
	CHECK(m, next_ns == (w ? w->deadline_ns : 0));
}

static void op_capacity(struct model *m)
{
	m->capacity = 1 + rnd(m, 20);
	if (m->depth > m->capacity)
		m->over = m->depth;
	tp_queue_set_capacity(m->q, m->capacity);
}

static void op_fairness(struct model *m)
{
	m->mode = (enum tp_fairness)rnd(m, 3);
	tp_queue_set_fairness(m->q, m->mode);
}

/* Admitted nodes first, then waiting ones, each in the flow's order; nothing in TP_FAIR_NONE. */
static void op_take_flow(struct model *m)
{
	static const enum state order[] = {ADMITTED, WAITING};
	struct tp_qnode *first;
	int f = (int)rnd(m, NFLOWS);

	for (size_t s = 0; s < 2 && m->mode != TP_FAIR_NONE; s++)
		for (size_t i = m->live; i < m->nitems; i++)
			if (m->items[i].flow == f && m->items[i].state == order[s])
				expect(m, &m->items[i]);
	size_t n = tp_queue_take_flow(m->q, &m->flows[f], &first);
	got_expected(m, first, n);
}

/* A reload: a new timeout for the nodes to come, and a shorter one caps the waiters'. */
static void op_timeout(struct model *m)
{
	uint64_t timeout_ns = 100 + rnd(m, 1500), until_ns = m->now_ns + timeout_ns;

	if (timeout_ns < m->timeout_ns) {
		for (size_t i = m->live; i < m->nitems; i++)
			if (m->items[i].state == WAITING && m->items[i].deadline_ns > until_ns)
				m->items[i].deadline_ns = until_ns;
		tp_queue_cap_deadlines(m->q, m->now_ns, timeout_ns);
	}
	m->timeout_ns = timeout_ns;
}

/* Within the capacity, but after a shrink (never growing then) or for one heavy node alone. */
static void check_bound(struct model *m)
{
	if (m->depth <= m->capacity) {
		m->over = 0;
		return;
	}
	CHECK(m, m->depth <= m->over || m->nadmitted == 1);
	m->over = m->depth;
}

/* Nobody waits unless the waiter whose turn it is does not fit. */
static void check_settled(struct model *m)
{
	struct tp_queue *q = m->q;
	struct tp_qnode *w;

	pthread_mutex_lock(&q->lock);
	if (fair(q)) {
		struct tp_qflow *f = tp_fairq_next_waiting_flow(&q->fq);
		w = f ? f->whead : NULL;
	} else {
		w = q->wait.head;
	}
	pthread_mutex_unlock(&q->lock);
	CHECK(m, (w != NULL) == (m->waiting > 0));
	if (w) {
		CHECK(m, item_of(w)->state == WAITING);
		CHECK(m, m->depth > 0 && m->depth + tp_qnode_weight(w) > m->capacity);
	}
}

/* In each flow the admitted nodes are older than the waiting ones; the waiters' deadlines as capped. */
static void check_flows(struct model *m)
{
	int newest_admitted[NFLOWS] = {0}, oldest_waiting[NFLOWS];

	for (int f = 0; f < NFLOWS; f++)
		oldest_waiting[f] = m->pushed[f] + 1;
	for (size_t i = m->live; i < m->nitems; i++) {
		struct item *x = &m->items[i];
		if (x->state == ADMITTED && x->seq > newest_admitted[x->flow])
			newest_admitted[x->flow] = x->seq;
		if (x->state == WAITING && x->seq < oldest_waiting[x->flow])
			oldest_waiting[x->flow] = x->seq;
		if (x->state == WAITING)
			CHECK(m, x->node.deadline_ns == x->deadline_ns);
	}
	for (int f = 0; f < NFLOWS; f++)
		CHECK(m, newest_admitted[f] < oldest_waiting[f]);
	struct item *w = oldest(m, -1, WAITING);
	CHECK(m, tp_queue_next_deadline(m->q) == (w ? w->deadline_ns : 0));
}

static void check(struct model *m)
{
	struct tp_queue_stats st;

	tp_queue_stats(m->q, &st);
	CHECK(m, st.depth == m->depth);
	CHECK(m, st.waiting == m->waiting);
	CHECK(m, st.capacity == m->capacity);
	CHECK(m, st.fairness == m->mode);
	CHECK(m, m->nexpect == 0);
	check_bound(m);
	check_settled(m);
	check_flows(m);
}

/* Each op's chance in 100 while the queue fills, and while it drains (PHASE steps each). */
static const struct op {
	const char *name;
	unsigned weight[2];
	void (*run)(struct model *m);
} ops[] = {
        {"push", {38, 12}, op_push},         {"pop", {28, 54}, op_pop},
        {"pop_cheap", {6, 6}, op_pop_cheap}, {"expire", {10, 10}, op_expire},
        {"capacity", {4, 4}, op_capacity},   {"fairness", {3, 3}, op_fairness},
        {"take_flow", {5, 5}, op_take_flow}, {"timeout", {6, 6}, op_timeout},
};

static const struct op *pick_op(struct model *m)
{
	unsigned phase = (unsigned)(m->step / PHASE) % 2, r = rnd(m, 100);
	size_t i = 0;

	while (r >= ops[i].weight[phase]) {
		r -= ops[i].weight[phase];
		i++;
	}
	return &ops[i];
}

static void model_init(struct model *m, unsigned seed)
{
	m->seed = seed;
	m->rng = seed * 2654435761u + 1;
	m->items = calloc(NITEMS, sizeof(*m->items));
	m->expect = calloc(NITEMS, sizeof(*m->expect));
	assert_true(m->items && m->expect);
	for (int g = 0; g < NGROUPS; g++)
		tp_qgroup_init(&m->groups[g]);
	for (int f = 0; f < NFLOWS; f++)
		tp_qflow_init(&m->flows[f], f < 4 ? &m->groups[f % NGROUPS] : NULL);
	m->capacity = 8;
	m->timeout_ns = 1000;
	m->op = "init";
	m->q = tp_queue_new(m->capacity, on_admit, m);
	assert_non_null(m->q);
	m->mode = (enum tp_fairness)rnd(m, 3);
	tp_queue_set_fairness(m->q, m->mode);
}

/* The end: take_all hands back every node still queued, once. */
static void drain(struct model *m)
{
	struct tp_qnode *first;

	m->op = "take_all";
	size_t n = tp_queue_take_all(m->q, &first), got = 0;
	for (; first; first = first->next, got++) {
		struct item *x = item_of(first);
		CHECK(m, x->state == ADMITTED || x->state == WAITING);
		move(m, x, GONE);
	}
	CHECK(m, got == n && m->live == m->nitems);
	CHECK(m, m->depth == 0 && m->waiting == 0);
	check(m);
}

static void run_seed(unsigned seed)
{
	struct model m = {0};

	model_init(&m, seed);
	for (m.step = 0; m.step < STEPS; m.step++) {
		const struct op *op = pick_op(&m);
		m.op = op->name;
		op->run(&m);
		check(&m);
	}
	drain(&m);
	tp_queue_free(m.q);
	free(m.items);
	free(m.expect);
}

static void test_model(void **state)
{
	static const unsigned seeds[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233};

	(void)state;
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		run_seed(seeds[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
