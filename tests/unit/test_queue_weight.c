/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue.c with nodes standing for several requests
 * (tp_qnode_weight): the bound, depth and waiting count weights; a push
 * admits the prefix that fits; a pop, expiry or capacity change admits
 * waiters while the next one fits; a node heavier than the capacity goes
 * into an empty queue alone.
 */
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

/* --- nodes that stand for several requests (tp_qnode_weight) --- */

/* Make *it a batchable node standing for weight requests. */
static void set_weight(struct item *it, size_t weight)
{
	it->node.more = (uint16_t)(weight - 1);
	it->node.batchable = true;
}

/* The bound counts requests: a node is admitted only when all of its weight fits. */
static void test_weight_bound(void **state)
{
	static const size_t wt[] = {8, 4, 6, 1};
	struct admit_log a = {0};
	struct item *it = items_new(4);
	struct tp_queue *q = tp_queue_new(10, on_admit, &a);

	(void)state;
	for (size_t i = 0; i < 4; i++)
		set_weight(&it[i], wt[i]);
	assert_int_equal(push_one(q, &it[0]), 1);
	expect_stats(q, 8, 0, 10);
	/* 8 + 4 > 10: the whole node waits, though 2 places are free. */
	assert_int_equal(push_one(q, &it[1]), 0);
	expect_stats(q, 8, 4, 10);
	assert_int_equal(a.n, 0);
	/* Popping the first frees 8: the waiter is admitted within that pop. */
	a.inside = true;
	assert_int_equal(pop_id(q), 0);
	a.inside = false;
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ids[0], 1);
	expect_stats(q, 4, 0, 10);
	/* Exactly full is admitted; one request more is not. */
	assert_int_equal(push_one(q, &it[2]), 1);
	expect_stats(q, 10, 0, 10);
	assert_int_equal(push_one(q, &it[3]), 0);
	expect_stats(q, 10, 1, 10);
	a.inside = true;
	assert_int_equal(pop_id(q), 1);
	a.inside = false;
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ids[1], 3);
	expect_stats(q, 7, 0, 10);
	assert_int_equal(pop_id(q), 2);
	assert_int_equal(pop_id(q), 3);
	expect_stats(q, 0, 0, 10);
	assert_false(a.outside_call);
	tp_queue_free(q);
	free(it);
}

/*
 * A node heavier than the whole capacity (after a reload shrank it) is
 * admitted into an empty queue, not into one that holds anything: it must
 * not wait forever, nor hold up the nodes behind it.
 */
static void test_weight_heavier_than_capacity(void **state)
{
	struct admit_log a = {0};
	struct item *it = items_new(3);
	struct tp_queue *q = tp_queue_new(4, on_admit, &a);

	(void)state;
	set_weight(&it[0], 1);
	set_weight(&it[1], 8);
	set_weight(&it[2], 1);
	assert_int_equal(push_one(q, &it[0]), 1);
	assert_int_equal(push_one(q, &it[1]), 0);
	assert_int_equal(push_one(q, &it[2]), 0);
	expect_stats(q, 1, 9, 4);
	/* The queue empties: the heavy one goes in alone, the next waits behind it. */
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ids[0], 1);
	expect_stats(q, 8, 1, 4);
	assert_int_equal(pop_id(q), 1);
	assert_int_equal(a.n, 2);
	assert_int_equal(pop_id(q), 2);
	expect_stats(q, 0, 0, 4);
	/* Into an empty queue it is admitted at once. */
	assert_int_equal(push_one(q, &it[1]), 0);
	assert_int_equal(a.n, 3);
	expect_stats(q, 8, 0, 4);
	tp_queue_close(q);
	assert_int_equal(pop_id(q), 1);
	tp_queue_free(q);
	free(it);
}

/*
 * A push admits the prefix that fits and returns its length; the first node
 * that does not fit and all after it wait, a lighter one behind included,
 * and a lighter newcomer does not overtake the heavier waiter either.
 */
static void test_weight_push_prefix(void **state)
{
	static const size_t wt[] = {3, 3, 5, 1, 1};
	struct admit_log a = {0};
	struct item *it = items_new(5);
	struct tp_queue *q = tp_queue_new(8, on_admit, &a);

	(void)state;
	for (size_t i = 0; i < 5; i++)
		set_weight(&it[i], wt[i]);
	assert_int_equal(push_range(q, it, 0, 4), 2);
	expect_stats(q, 6, 6, 8);
	assert_int_equal(push_one(q, &it[4]), 0);
	expect_stats(q, 6, 7, 8);
	assert_int_equal(a.n, 0);
	/* Popping 3 frees room for the 5 exactly; the light ones stay behind it. */
	a.inside = true;
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ids[0], 2);
	expect_stats(q, 8, 2, 8);
	/* 3 more: both light ones, in order. */
	assert_int_equal(pop_id(q), 1);
	a.inside = false;
	assert_int_equal(a.n, 3);
	assert_int_equal(a.ids[1], 3);
	assert_int_equal(a.ids[2], 4);
	expect_stats(q, 7, 0, 8);
	for (int i = 2; i < 5; i++)
		assert_int_equal(pop_id(q), i);
	expect_stats(q, 0, 0, 8);
	assert_false(a.outside_call);
	tp_queue_free(q);
	free(it);
}

/* The expiry of a heavy head admits the lighter waiters behind it while they fit. */
static void test_weight_expire(void **state)
{
	static const size_t wt[] = {3, 4, 1, 1, 1};
	struct admit_log a = {0};
	struct item *it = items_new(5);
	struct tp_queue *q = tp_queue_new(5, on_admit, &a);
	struct tp_qnode *first;
	uint64_t next;

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		set_weight(&it[i], wt[i]);
		it[i].node.deadline_ns = 100 * i;
	}
	assert_int_equal(push_one(q, &it[0]), 1);
	assert_int_equal(push_range(q, it, 1, 5), 0);
	expect_stats(q, 3, 7, 5);
	assert_int_equal(tp_queue_expire(q, 99, &first, &next), 0);
	assert_int_equal(next, 100);
	/* The 4 goes; the two 1s behind it now fit (3 + 1 + 1), the third does not. */
	a.inside = true;
	assert_int_equal(tp_queue_expire(q, 100, &first, &next), 1);
	a.inside = false;
	assert_int_equal(item_of(first)->id, 1);
	assert_null(first->next);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ids[0], 2);
	assert_int_equal(a.ids[1], 3);
	assert_int_equal(next, 400);
	assert_int_equal(tp_queue_next_deadline(q), 400);
	expect_stats(q, 5, 1, 5);
	a.inside = true;
	assert_int_equal(pop_id(q), 0);
	a.inside = false;
	assert_int_equal(a.n, 3);
	assert_int_equal(a.ids[2], 4);
	for (int i = 2; i < 5; i++)
		assert_int_equal(pop_id(q), i);
	expect_stats(q, 0, 0, 5);
	assert_false(a.outside_call);
	tp_queue_free(q);
	free(it);
}

/* A capacity change admits waiters as far as the next one fits; a shrunk bound holds by weight. */
static void test_weight_set_capacity(void **state)
{
	static const size_t wt[] = {4, 3, 2, 1};
	struct admit_log a = {0};
	struct item *it = items_new(4);
	struct tp_queue *q = tp_queue_new(4, on_admit, &a);

	(void)state;
	for (size_t i = 0; i < 4; i++)
		set_weight(&it[i], wt[i]);
	assert_int_equal(push_range(q, it, 0, 3), 1);
	expect_stats(q, 4, 5, 4);
	a.inside = true;
	tp_queue_set_capacity(q, 8); /* 4 + 3 fits, + 2 does not */
	expect_stats(q, 7, 2, 8);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ids[0], 1);
	tp_queue_set_capacity(q, 9);
	expect_stats(q, 9, 0, 9);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ids[1], 2);
	/* Shrunk to 5: a 1 waits until what is admitted weighs at most 4. */
	tp_queue_set_capacity(q, 5);
	assert_int_equal(push_one(q, &it[3]), 0);
	assert_int_equal(pop_id(q), 0);
	expect_stats(q, 5, 1, 5);
	assert_int_equal(a.n, 2);
	assert_int_equal(pop_id(q), 1);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.ids[2], 3);
	expect_stats(q, 3, 0, 5);
	a.inside = false;
	assert_int_equal(pop_id(q), 2);
	assert_int_equal(pop_id(q), 3);
	assert_false(a.outside_call);
	tp_queue_free(q);
	free(it);
}

/* A batch pop frees the weights of all it takes, and admits every waiter that then fits. */
static void test_weight_batch_pop(void **state)
{
	static const size_t wt[] = {3, 3, 3, 5, 1, 2};
	struct admit_log a = {0};
	struct item *it = items_new(6);
	struct tp_queue *q = tp_queue_new(10, on_admit, &a);

	(void)state;
	for (size_t i = 0; i < 6; i++)
		set_weight(&it[i], wt[i]);
	assert_int_equal(push_range(q, it, 0, 6), 3);
	expect_stats(q, 9, 8, 10);
	a.inside = true;
	expect_pop(q, 2, (const int[]){0, 1}, 2); /* 3 left: + 5 + 1 fit, + 2 does not */
	a.inside = false;
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ids[0], 3);
	assert_int_equal(a.ids[1], 4);
	expect_stats(q, 9, 2, 10);
	a.inside = true;
	expect_pop(q, 64, (const int[]){2, 3, 4}, 3);
	a.inside = false;
	assert_int_equal(a.n, 3);
	assert_int_equal(a.ids[2], 5);
	expect_stats(q, 2, 0, 10);
	expect_pop(q, 64, (const int[]){5}, 1);
	expect_stats(q, 0, 0, 10);
	assert_false(a.outside_call);
	tp_queue_free(q);
	free(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_weight_bound),     cmocka_unit_test(test_weight_push_prefix),
	        cmocka_unit_test(test_weight_expire),    cmocka_unit_test(test_weight_set_capacity),
	        cmocka_unit_test(test_weight_batch_pop), cmocka_unit_test(test_weight_heavier_than_capacity),
	};

	/* A hung pop must fail the run, not wait for the ctest timeout. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
