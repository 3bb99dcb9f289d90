/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fairq_wait.c, admission in the queue's fair modes: a place
 * that frees going to the least loaded group, then flow, in turns within a
 * bucket; each waiter keeping its deadline, an earlier one expiring first;
 * the bound never exceeded; and producers and consumers on threads losing
 * and duplicating nothing.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fair_admission),
	        cmocka_unit_test(test_admission_in_turns_within_a_bucket),
	        cmocka_unit_test(test_an_earlier_deadline_expires_first),
	        cmocka_unit_test(test_bound),
	        cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
