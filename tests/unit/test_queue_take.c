/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue_take.c: expiry at the deadline and not before, with
 * the next deadline reported, also for deadlines out of arrival order and
 * on the real clock; deadlines capped by a reload that shortens the
 * timeout, for the waiters there and for nodes stamped before it and
 * pushed after; and take_all.
 */
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
#include "test_util.h"

static void test_expire(void **state)
{
	struct admit_log a = {0};
	struct item *it = items_new(8);
	struct tp_queue *q = tp_queue_new(1, on_admit, &a);
	struct tp_qnode *first;
	uint64_t next;

	(void)state;
	assert_int_equal(tp_queue_next_deadline(q), 0);
	assert_int_equal(tp_queue_expire(q, 1000, &first, &next), 0);
	assert_null(first);
	assert_int_equal(next, 0);

	assert_int_equal(push_one(q, &it[0]), 1);
	it[1].node.deadline_ns = 100;
	it[2].node.deadline_ns = 100;
	it[3].node.deadline_ns = 200;
	it[4].node.deadline_ns = 300;
	assert_int_equal(push_range(q, it, 1, 5), 0);
	/* An admitted node has no deadline: only waiters are reported. */
	assert_int_equal(tp_queue_next_deadline(q), 100);

	/* Before the deadline nothing goes; at it, it does (deadline <= now). */
	assert_int_equal(tp_queue_expire(q, 99, &first, &next), 0);
	assert_null(first);
	assert_int_equal(next, 100);
	assert_int_equal(tp_queue_expire(q, 100, &first, &next), 2);
	assert_non_null(first);
	assert_int_equal(item_of(first)->id, 1);
	assert_int_equal(item_of(first->next)->id, 2);
	assert_null(first->next->next);
	assert_int_equal(next, 200);
	assert_int_equal(tp_queue_next_deadline(q), 200);
	expect_stats(q, 1, 2, 1);
	assert_int_equal(tp_queue_expire(q, 250, &first, &next), 1);
	assert_int_equal(item_of(first)->id, 3);
	assert_null(first->next);
	assert_int_equal(next, 300);
	assert_int_equal(tp_queue_next_deadline(q), 300);
	assert_int_equal(a.n, 0);

	/* The one left is admitted when space frees; then nobody waits. */
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ids[0], 4);
	assert_int_equal(tp_queue_next_deadline(q), 0);
	assert_int_equal(tp_queue_expire(q, UINT64_MAX, &first, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(pop_id(q), 4);
	tp_queue_free(q);
	free(it);
}

/*
 * Deadlines out of arrival order (a reload shortened the timeout): waiters
 * leave from the head in arrival order, so a newer waiter with an earlier
 * deadline goes no later than the older one ahead of it (queue.c DESIGN).
 */
static void test_expire_out_of_order(void **state)
{
	struct item *it = items_new(4);
	struct tp_queue *q = tp_queue_new(1, NULL, NULL);
	struct tp_qnode *first;
	uint64_t next;

	(void)state;
	assert_int_equal(push_one(q, &it[0]), 1);
	it[1].node.deadline_ns = 500;
	it[2].node.deadline_ns = 200;
	assert_int_equal(push_range(q, it, 1, 3), 0);
	assert_int_equal(tp_queue_next_deadline(q), 500);
	assert_int_equal(tp_queue_expire(q, 300, &first, &next), 0);
	assert_int_equal(next, 500);
	expect_stats(q, 1, 2, 1);
	assert_int_equal(tp_queue_expire(q, 500, &first, &next), 2);
	assert_int_equal(item_of(first)->id, 1);
	assert_int_equal(item_of(first->next)->id, 2);
	assert_null(first->next->next);
	assert_int_equal(next, 0);
	expect_stats(q, 1, 0, 1);
	tp_queue_free(q);
	free(it);
}

/*
 * A reload shortens the timeout: the waiters already there get the new
 * deadline (from the reload's time) unless theirs is earlier, in every
 * discipline, and leave before the newcomers that came after the reload.
 */
static void test_cap_deadlines(void **state)
{
	static const enum tp_fairness modes[] = {TP_FAIR_NONE, TP_FAIR_CONNECTION, TP_FAIR_ADDRESS};
	struct tp_qnode *first;
	uint64_t next;

	(void)state;
	for (size_t m = 0; m < 3; m++) {
		struct item *it = items_new(5);
		struct tp_queue *q = tp_queue_new(1, NULL, NULL);

		tp_queue_set_fairness(q, modes[m]);
		tp_queue_cap_deadlines(q, 0, 10); /* nobody waits: nothing to do */
		assert_int_equal(tp_queue_next_deadline(q), 0);
		assert_int_equal(push_one(q, &it[0]), 1);
		it[1].node.deadline_ns = 150;
		it[2].node.deadline_ns = 5000;
		it[3].node.deadline_ns = 6000;
		for (size_t i = 1; i <= 3; i++)
			assert_int_equal(push_one(q, &it[i]), 0);
		tp_queue_cap_deadlines(q, 0, 10000); /* a longer timeout moves nobody */
		assert_int_equal(tp_queue_expire(q, 4999, &first, &next), 1);
		assert_int_equal(item_of(first)->id, 1);
		assert_int_equal(next, 5000);

		it[1].node.deadline_ns = 150; /* back, behind the others */
		assert_int_equal(push_one(q, &it[1]), 0);
		tp_queue_cap_deadlines(q, 100, 100);
		assert_int_equal(tp_queue_next_deadline(q), 200);
		it[4].node.deadline_ns = 250; /* came after the reload */
		assert_int_equal(push_one(q, &it[4]), 0);
		assert_int_equal(tp_queue_expire(q, 199, &first, &next), 0);
		assert_int_equal(tp_queue_expire(q, 200, &first, &next), 3);
		assert_int_equal(item_of(first)->id, 2);
		assert_int_equal(item_of(first->next)->id, 3);
		assert_int_equal(item_of(first->next->next)->id, 1);
		assert_int_equal(next, 250);
		expect_stats(q, 1, 1, 1);
		assert_int_equal(tp_queue_expire(q, 250, &first, &next), 1);
		assert_int_equal(item_of(first)->id, 4);
		expect_stats(q, 1, 0, 1);
		tp_queue_free(q);
		free(it);
	}
}

/*
 * A node stamped before a reload that shortened the timeout, pushed after
 * it (another loop's line, read under the old settings): it waits no
 * longer than the new timeout from its push, in every discipline.  Before
 * any reload a node keeps the deadline it was stamped with.
 */
static void test_cap_deadlines_holds_later_pushes(void **state)
{
	static const enum tp_fairness modes[] = {TP_FAIR_NONE, TP_FAIR_CONNECTION, TP_FAIR_ADDRESS};
	const uint64_t old_wait = 10000000000ull, new_wait = 1000000ull; /* 10 s, then 1 ms */

	(void)state;
	for (size_t m = 0; m < 3; m++) {
		struct item *it = items_new(3);
		struct tp_queue *q = tp_queue_new(1, NULL, NULL);
		uint64_t t0 = tp_clock_ns(), t1;

		tp_queue_set_fairness(q, modes[m]);
		assert_int_equal(push_one(q, &it[0]), 1);
		it[1].node.deadline_ns = t0 + old_wait;
		assert_int_equal(push_one(q, &it[1]), 0);
		assert_int_equal(tp_queue_next_deadline(q), t0 + old_wait); /* no reload yet: as stamped */

		tp_queue_cap_deadlines(q, t0, new_wait);
		assert_int_equal(tp_queue_next_deadline(q), t0 + new_wait);
		it[2].node.deadline_ns = t0 + old_wait; /* read before the reload */
		t1 = tp_clock_ns();
		assert_int_equal(push_one(q, &it[2]), 0);
		uint64_t t2 = tp_clock_ns();
		struct tp_qnode *first;
		uint64_t next;
		assert_int_equal(tp_queue_expire(q, t0 + new_wait, &first, &next), 1);
		assert_int_equal(item_of(first)->id, 1);
		assert_in_range(next, t1 + new_wait, t2 + new_wait);
		tp_queue_free(q);
		free(it);
	}
}

/* A timed wait that times out, and one that is woken (admitted) in time, on the real clock. */
static void test_expire_real_clock(void **state)
{
	struct admit_log a = {0};
	struct item *it = items_new(4);
	struct tp_queue *q = tp_queue_new(1, on_admit, &a);
	struct tp_qnode *first;
	uint64_t next, t0 = tp_clock_ns();

	(void)state;
	assert_int_equal(push_one(q, &it[0]), 1);
	it[1].node.deadline_ns = t0 + 50 * 1000000ull;
	it[2].node.deadline_ns = t0 + 60 * 1000000ull * 1000; /* a minute */
	assert_int_equal(push_range(q, it, 1, 3), 0);
	/* Not yet at t0, however long this thread was off a CPU since. */
	assert_int_equal(tp_queue_expire(q, t0, &first, &next), 0);
	assert_int_equal(next, it[1].node.deadline_ns);
	sleep_ms(100);
	assert_int_equal(tp_queue_expire(q, tp_clock_ns(), &first, &next), 1);
	assert_int_equal(item_of(first)->id, 1);
	assert_int_equal(next, it[2].node.deadline_ns);
	assert_true(next > tp_clock_ns());
	/* The other one is admitted as soon as a place frees, before its deadline. */
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ids[0], 2);
	assert_int_equal(tp_queue_expire(q, tp_clock_ns(), &first, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(pop_id(q), 2);
	tp_queue_free(q);
	free(it);
}

static void test_take_all(void **state)
{
	struct item *it = items_new(8);
	struct tp_queue *q = tp_queue_new(2, NULL, NULL);
	struct tp_qnode *first = &it[7].node;

	(void)state;
	assert_int_equal(tp_queue_take_all(q, &first), 0);
	assert_null(first);
	it[2].node.deadline_ns = 500;
	assert_int_equal(push_range(q, it, 0, 5), 2);
	assert_int_equal(tp_queue_next_deadline(q), 500);
	assert_int_equal(tp_queue_take_all(q, &first), 5);
	/* Admitted first, then waiting, each in order. */
	for (int i = 0; i < 5; i++) {
		assert_non_null(first);
		assert_int_equal(item_of(first)->id, i);
		first = first->next;
	}
	assert_null(first);
	expect_stats(q, 0, 0, 2);
	assert_int_equal(tp_queue_next_deadline(q), 0);
	/* The queue works as new afterwards. */
	assert_int_equal(push_range(q, it, 5, 7), 2);
	assert_int_equal(pop_id(q), 5);
	tp_queue_free(q);
	free(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_expire),
	        cmocka_unit_test(test_expire_out_of_order),
	        cmocka_unit_test(test_cap_deadlines),
	        cmocka_unit_test(test_cap_deadlines_holds_later_pushes),
	        cmocka_unit_test(test_expire_real_clock),
	        cmocka_unit_test(test_take_all),
	};

	/* A hung pop must fail the run, not wait for the ctest timeout. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
