/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue.c: the capacity bound and FIFO order; waiters
 * admitted in arrival order by the pop that frees their place (the admit
 * callback in order, on the popping thread); close, capacity changes (a
 * shrink below the depth included, in every discipline) and batch pops.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "queue_fixture.h"

static void test_capacity_fifo(void **state)
{
	struct item *it = items_new(16);
	struct tp_queue *q = tp_queue_new(4, NULL, NULL);

	(void)state;
	assert_non_null(q);
	expect_stats(q, 0, 0, 4);
	/* 6 pushed into 4 places: the first 4 admitted, 2 wait. */
	assert_int_equal(push_range(q, it, 0, 6), 4);
	expect_stats(q, 4, 2, 4);
	/* Full: one more waits. */
	assert_int_equal(push_one(q, &it[6]), 0);
	expect_stats(q, 4, 3, 4);
	for (int i = 0; i < 7; i++)
		assert_int_equal(pop_id(q), i);
	expect_stats(q, 0, 0, 4);

	/* n bounds what is taken from a longer list. */
	for (size_t i = 7; i < 12; i++)
		it[i].node.next = &it[i + 1].node;
	assert_int_equal(tp_queue_push(q, &it[7].node, 3), 3);
	expect_stats(q, 3, 0, 4);
	for (int i = 7; i < 10; i++)
		assert_int_equal(pop_id(q), i);
	/* A list shorter than n ends at its NULL. */
	it[10].node.next = &it[11].node;
	it[11].node.next = NULL;
	assert_int_equal(tp_queue_push(q, &it[10].node, 5), 2);
	expect_stats(q, 2, 0, 4);
	assert_int_equal(pop_id(q), 10);
	assert_int_equal(pop_id(q), 11);

	/* Capacity 0 means 1. */
	struct tp_queue *q1 = tp_queue_new(0, NULL, NULL);
	assert_non_null(q1);
	expect_stats(q1, 0, 0, 1);
	assert_int_equal(push_range(q1, it, 12, 14), 1);
	expect_stats(q1, 1, 1, 1);
	tp_queue_free(q1);
	tp_queue_free(q);
	tp_queue_free(NULL);
	free(it);
}

static void test_admit_order(void **state)
{
	struct admit_log a = {0};
	struct item *it = items_new(16);
	struct tp_queue *q = tp_queue_new(2, on_admit, &a);

	(void)state;
	assert_int_equal(push_range(q, it, 0, 2), 2);
	/* Waiters arrive one by one and as a batch. */
	assert_int_equal(push_one(q, &it[2]), 0);
	assert_int_equal(push_range(q, it, 3, 5), 0);
	assert_int_equal(push_one(q, &it[5]), 0);
	expect_stats(q, 2, 4, 2);
	/* Direct admission never calls the callback. */
	assert_int_equal(a.n, 0);

	/* Each pop frees one place and admits the oldest waiter, within the pop. */
	for (int i = 0; i < 4; i++) {
		a.inside = true;
		assert_int_equal(pop_id(q), i);
		a.inside = false;
		assert_int_equal(a.n, (size_t)i + 1);
		assert_int_equal(a.ids[i], i + 2);
		expect_stats(q, 2, 3 - (size_t)i, 2);
	}
	assert_true(pthread_equal(a.thread, pthread_self()));
	assert_false(a.outside_call);
	assert_int_equal(pop_id(q), 4);
	assert_int_equal(pop_id(q), 5);
	assert_int_equal(a.n, 4);
	expect_stats(q, 0, 0, 2);
	tp_queue_free(q);
	free(it);
}

static void test_no_overtaking(void **state)
{
	struct admit_log a = {0};
	struct item *it = items_new(16);
	struct tp_queue *q = tp_queue_new(2, on_admit, &a);

	(void)state;
	assert_int_equal(push_range(q, it, 0, 2), 2);
	assert_int_equal(push_one(q, &it[2]), 0); /* W2 waits */
	a.inside = true;
	assert_int_equal(pop_id(q), 0); /* W2 admitted */
	a.inside = false;
	/* A newcomer behind a waiter waits, even within one push of several. */
	assert_int_equal(push_one(q, &it[3]), 0);
	assert_int_equal(push_range(q, it, 4, 6), 0);
	/* Growing by one admits the oldest waiter, not a later push. */
	a.inside = true;
	tp_queue_set_capacity(q, 3);
	a.inside = false;
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ids[1], 3);
	assert_int_equal(push_one(q, &it[6]), 0);
	expect_stats(q, 3, 3, 3);
	a.inside = true;
	for (int i = 1; i <= 6; i++)
		assert_int_equal(pop_id(q), i);
	a.inside = false;
	assert_int_equal(a.n, 5);
	for (size_t i = 0; i < a.n; i++)
		assert_int_equal(a.ids[i], (int)i + 2);
	assert_false(a.outside_call);
	expect_stats(q, 0, 0, 3);
	/* Nobody waits and there is room: a push is admitted at once. */
	assert_int_equal(push_one(q, &it[7]), 1);
	tp_queue_free(q);
	free(it);
}

static void test_close(void **state)
{
	struct item *it = items_new(8);
	struct tp_queue *q = tp_queue_new(2, NULL, NULL);
	struct tp_qnode *n[8];

	(void)state;
	assert_int_equal(push_range(q, it, 0, 4), 2);
	assert_false(tp_queue_closed(q));
	tp_queue_close(q);
	assert_true(tp_queue_closed(q));
	/* Refused, and nothing of the list was taken. */
	struct tp_qnode sentinel;
	it[4].node.next = &sentinel;
	assert_int_equal(tp_queue_push(q, &it[4].node, 1), -EPIPE);
	assert_ptr_equal(it[4].node.next, &sentinel);
	expect_stats(q, 2, 2, 2);
	/* Workers drain the queue, waiters included, then get 0 at once. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(pop_id(q), i);
	assert_int_equal(tp_queue_pop(q, n, 8, NULL), 0);
	assert_int_equal(tp_queue_pop(q, n, 8, NULL), 0);
	tp_queue_free(q);
	free(it);
}

static void test_set_capacity(void **state)
{
	struct admit_log a = {0};
	struct item *it = items_new(16);
	struct tp_queue *q = tp_queue_new(2, on_admit, &a);

	(void)state;
	assert_int_equal(push_range(q, it, 0, 8), 2);
	/* Growing admits waiters at once, oldest first, on the caller's thread. */
	a.inside = true;
	tp_queue_set_capacity(q, 5);
	a.inside = false;
	expect_stats(q, 5, 3, 5);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.ids[0], 2);
	assert_int_equal(a.ids[1], 3);
	assert_int_equal(a.ids[2], 4);
	assert_true(pthread_equal(a.thread, pthread_self()));
	/* Growing past what waits admits them all. */
	a.inside = true;
	tp_queue_set_capacity(q, 100);
	a.inside = false;
	expect_stats(q, 8, 0, 100);
	assert_int_equal(a.n, 6);
	assert_false(a.outside_call);

	/* Shrinking keeps what is admitted; new pushes wait until below the new bound. */
	tp_queue_set_capacity(q, 3);
	expect_stats(q, 8, 0, 3);
	assert_int_equal(push_one(q, &it[8]), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pop_id(q), i);
	expect_stats(q, 3, 1, 3);
	a.inside = true;
	assert_int_equal(pop_id(q), 5);
	a.inside = false;
	assert_int_equal(a.ids[a.n - 1], 8);
	expect_stats(q, 3, 0, 3);
	tp_queue_set_capacity(q, 0);
	expect_stats(q, 3, 0, 1);
	assert_false(a.outside_call);
	tp_queue_free(q);
	free(it);
}

static void test_batch_pop(void **state)
{
	/* b = batchable, N = not. */
	static const char kinds[] = "bbbNbbNNbNb";
	struct item *it = items_new(32);
	struct tp_queue *q = tp_queue_new(64, NULL, NULL);

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) - 1; i++)
		it[i].node.batchable = kinds[i] == 'b';
	assert_int_equal(push_range(q, it, 0, sizeof(kinds) - 1), (int)sizeof(kinds) - 1);
	expect_pop(q, 64, (const int[]){0, 1, 2}, 3);
	expect_pop(q, 64, (const int[]){3}, 1);
	expect_pop(q, 1, (const int[]){4}, 1); /* max bounds a run */
	expect_pop(q, 64, (const int[]){5}, 1);
	expect_pop(q, 64, (const int[]){6}, 1);
	expect_pop(q, 64, (const int[]){7}, 1);
	expect_pop(q, 64, (const int[]){8}, 1); /* a run of one, before a non-batchable */
	expect_pop(q, 64, (const int[]){9}, 1); /* a non-batchable is never followed */
	expect_pop(q, 64, (const int[]){10}, 1);
	expect_stats(q, 0, 0, 64);
	tp_queue_free(q);

	/* A batch frees one place per node, and admits one waiter per place. */
	struct admit_log a = {0};
	q = tp_queue_new(3, on_admit, &a);
	for (int i = 12; i < 20; i++)
		it[i].node.batchable = true;
	assert_int_equal(push_range(q, it, 12, 17), 3);
	a.inside = true;
	expect_pop(q, 64, (const int[]){12, 13, 14}, 3);
	a.inside = false;
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ids[0], 15);
	assert_int_equal(a.ids[1], 16);
	expect_pop(q, 2, (const int[]){15, 16}, 2);
	assert_false(a.outside_call);
	tp_queue_free(q);
	free(it);
}

/*
 * A reload shrinks the capacity below what is admitted while requests
 * wait, in each discipline: pops go on (nothing aborts), and the waiters
 * are admitted only once the admitted part is below the new bound.
 */
static void test_shrink_below_depth_with_waiters(void **state)
{
	static const enum tp_fairness modes[] = {TP_FAIR_NONE, TP_FAIR_CONNECTION, TP_FAIR_ADDRESS};

	(void)state;
	for (size_t m = 0; m < 3; m++) {
		struct admit_log a = {0};
		struct item *it = items_new(8);
		struct tp_queue *q = tp_queue_new(6, on_admit, &a);

		tp_queue_set_fairness(q, modes[m]);
		for (size_t i = 0; i < 8; i++)
			(void)push_one(q, &it[i]);
		expect_stats(q, 6, 2, 6);
		tp_queue_set_capacity(q, 2);
		for (int i = 0; i < 4; i++)
			(void)pop_id(q);
		expect_stats(q, 2, 2, 2);
		assert_int_equal(a.n, 0);
		(void)pop_id(q);
		assert_int_equal(a.n, 1);
		expect_stats(q, 2, 1, 2);
		for (int i = 0; i < 3; i++)
			(void)pop_id(q);
		expect_stats(q, 0, 0, 2);
		tp_queue_free(q);
		free(it);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_capacity_fifo),
	        cmocka_unit_test(test_admit_order),
	        cmocka_unit_test(test_no_overtaking),
	        cmocka_unit_test(test_close),
	        cmocka_unit_test(test_set_capacity),
	        cmocka_unit_test(test_batch_pop),
	        cmocka_unit_test(test_shrink_below_depth_with_waiters),
	};

	/* A hung pop must fail the run, not wait for the ctest timeout. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
