/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue.c: the capacity bound and FIFO order; waiters
 * admitted in arrival order by the pop that frees their place (the admit
 * callback in order, on the popping thread); expiry at the deadline and not
 * before, with the next deadline reported; close, take_all, capacity
 * changes, batch pops, waking a blocked pop to stop; and producers and
 * consumers on many threads losing, duplicating and reordering nothing.
 * Nodes standing for several requests: the bound, depth and waiting count
 * weights, and a pop, expiry or capacity change admits waiters while the
 * next one fits.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "test_util.h"

struct item {
	struct tp_qnode node;
	int id;
	unsigned producer;
	uint64_t seq;
	_Atomic int seen; /* times a consumer or the expirer got it */
};

static struct item *item_of(struct tp_qnode *n)
{
	return (struct item *)(void *)((char *)n - offsetof(struct item, node));
}

/* Items with ids 0..n-1, far deadlines, not batchable. */
static struct item *items_new(size_t n)
{
	struct item *it = calloc(n, sizeof(*it));
	assert_non_null(it);
	for (size_t i = 0; i < n; i++) {
		it[i].id = (int)i;
		it[i].node.deadline_ns = UINT64_MAX;
	}
	return it;
}

/* Link it[from..to) through next and push them as one call. */
static int push_range(struct tp_queue *q, struct item *it, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		it[i].node.next = i + 1 < to ? &it[i + 1].node : NULL;
	return tp_queue_push(q, &it[from].node, to - from);
}

static int push_one(struct tp_queue *q, struct item *it)
{
	it->node.next = NULL;
	return tp_queue_push(q, &it->node, 1);
}

/* Pop exactly one node (the queue must hold one) and return its id. */
static int pop_id(struct tp_queue *q)
{
	struct tp_qnode *n[4] = {0};
	size_t got = tp_queue_pop(q, n, 1, NULL);
	assert_int_equal(got, 1);
	return item_of(n[0])->id;
}

static void expect_stats(struct tp_queue *q, size_t depth, size_t waiting, size_t capacity)
{
	struct tp_queue_stats st;
	tp_queue_stats(q, &st);
	if (st.depth != depth || st.waiting != waiting || st.capacity != capacity)
		fail_msg("stats depth %zu waiting %zu capacity %zu, want %zu %zu %zu", st.depth, st.waiting,
		         st.capacity, depth, waiting, capacity);
}

/* What the admit callback saw. */
struct admit_log {
	int ids[64];
	size_t n;
	pthread_t thread;
	bool thread_set;
	bool same_thread;
	bool inside; /* set by the test around the call expected to admit */
	bool outside_call;
};

static void on_admit(struct tp_qnode *node, void *ctx)
{
	struct admit_log *a = ctx;
	if (!a->inside)
		a->outside_call = true;
	if (!a->thread_set) {
		a->thread = pthread_self();
		a->thread_set = true;
		a->same_thread = true;
	} else if (!pthread_equal(a->thread, pthread_self())) {
		a->same_thread = false;
	}
	if (a->n < 64)
		a->ids[a->n++] = item_of(node)->id;
}

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

/* Pop once with room for max and check the ids taken. */
static void expect_pop(struct tp_queue *q, size_t max, const int *ids, size_t n)
{
	struct tp_qnode *got[64];
	size_t k = tp_queue_pop(q, got, max, NULL);

	if (k != n)
		fail_msg("popped %zu, want %zu (first want %d)", k, n, ids[0]);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(item_of(got[i])->id, ids[i]);
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

/* A thread blocked in tp_queue_pop(). */
struct popper {
	struct tp_queue *q;
	atomic_bool stop;
	size_t got;
	struct tp_qnode *nodes[8];
	atomic_bool done;
	pthread_t thread;
};

static void *popper_main(void *arg)
{
	struct popper *p = arg;
	p->got = tp_queue_pop(p->q, p->nodes, 8, &p->stop);
	atomic_store(&p->done, true);
	return NULL;
}

static void popper_start(struct popper *p, struct tp_queue *q)
{
	memset(p, 0, sizeof(*p));
	p->q = q;
	assert_int_equal(pthread_create(&p->thread, NULL, popper_main, p), 0);
}

/* Wait (bounded) until n workers are blocked in pop. */
static void wait_idle(struct tp_queue *q, size_t n)
{
	struct tp_queue_stats st;
	for (int i = 0; i < 1000; i++) {
		tp_queue_stats(q, &st);
		if (st.idle == n)
			return;
		sleep_ms(5);
	}
	fail_msg("idle %zu, want %zu", st.idle, n);
}

/* Wait (bounded) for the popper to return. */
static void popper_join(struct popper *p)
{
	for (int i = 0; i < 1000 && !atomic_load(&p->done); i++)
		sleep_ms(5);
	if (!atomic_load(&p->done))
		fail_msg("tp_queue_pop() did not return");
	assert_int_equal(pthread_join(p->thread, NULL), 0);
}

static void test_blocked_pop(void **state)
{
	struct item *it = items_new(4);
	struct tp_queue *q = tp_queue_new(4, NULL, NULL);
	struct popper p, p2;

	(void)state;
	/* Woken by a push, with the node. */
	popper_start(&p, q);
	wait_idle(q, 1);
	assert_false(atomic_load(&p.done));
	assert_int_equal(push_one(q, &it[0]), 1);
	popper_join(&p);
	assert_int_equal(p.got, 1);
	assert_ptr_equal(p.nodes[0], &it[0].node);
	wait_idle(q, 0);

	/* Stop flag plus wake_all: returns 0. */
	popper_start(&p, q);
	popper_start(&p2, q);
	wait_idle(q, 2);
	atomic_store(&p.stop, true);
	tp_queue_wake_all(q);
	popper_join(&p);
	assert_int_equal(p.got, 0);
	/* The other one, without a stop flag, goes back to waiting. */
	wait_idle(q, 1);
	assert_false(atomic_load(&p2.done));

	/* Close wakes the last one with 0. */
	tp_queue_close(q);
	popper_join(&p2);
	assert_int_equal(p2.got, 0);
	tp_queue_free(q);

	/* With its stop flag set, a pop takes nothing even when work is queued. */
	atomic_bool stop = true;
	struct tp_qnode *n[4];
	q = tp_queue_new(4, NULL, NULL);
	assert_int_equal(push_one(q, &it[1]), 1);
	assert_int_equal(tp_queue_pop(q, n, 4, &stop), 0);
	expect_stats(q, 1, 0, 4);
	atomic_store(&stop, false);
	assert_int_equal(tp_queue_pop(q, n, 4, &stop), 1);
	assert_ptr_equal(n[0], &it[1].node);
	tp_queue_free(q);
	free(it);
}

static void test_stats_idle(void **state)
{
	struct tp_queue *q = tp_queue_new(8, NULL, NULL);
	struct item *it = items_new(4);
	struct popper p[3];
	struct tp_queue_stats st;

	(void)state;
	tp_queue_stats(q, &st);
	assert_int_equal(st.idle, 0);
	for (int i = 0; i < 3; i++)
		popper_start(&p[i], q);
	wait_idle(q, 3);
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.waiting, 0);
	assert_int_equal(st.capacity, 8);
	/* One push wakes (at least) one; the others stay idle. */
	assert_int_equal(push_one(q, &it[0]), 1);
	for (int i = 0; i < 1000; i++) {
		int d = 0;
		for (int j = 0; j < 3; j++)
			d += atomic_load(&p[j].done);
		if (d == 1)
			break;
		sleep_ms(5);
	}
	wait_idle(q, 2);
	tp_queue_close(q);
	for (int i = 0; i < 3; i++)
		popper_join(&p[i]);
	assert_int_equal(p[0].got + p[1].got + p[2].got, 1);
	tp_queue_free(q);
	free(it);
}

/*
 * A worker that runs out of work polls before it blocks, long only while
 * that pays (spin.h).  Work pushed only after the worker has blocked makes
 * every long poll miss: after the few misses tolerated, only the probes
 * poll long, the other idle moments poll briefly.
 */
struct spin_popper {
	struct tp_queue *q;
	atomic_size_t got;
	pthread_t thread;
};

static void *spin_popper_main(void *arg)
{
	struct spin_popper *p = arg;
	struct tp_qnode *n[4];
	size_t k;

	while ((k = tp_queue_pop(p->q, n, 4, NULL)) > 0)
		atomic_fetch_add(&p->got, k);
	return NULL;
}

static void wait_blocked(struct tp_queue *q, struct spin_popper *p, size_t got)
{
	struct tp_queue_stats st;
	for (int i = 0; i < 20000; i++) {
		tp_queue_stats(q, &st);
		if (st.idle == 1 && atomic_load(&p->got) == got)
			return;
		usleep(100);
	}
	fail_msg("the worker did not block after taking node %zu", got);
}

static void test_spin_backs_off_when_work_comes_late(void **state)
{
	enum { ROUNDS = 200 };
	struct item *it = items_new(ROUNDS);
	struct tp_queue *q = tp_queue_new(4, NULL, NULL);
	struct spin_popper p = {.q = q};
	struct tp_queue_stats st;

	(void)state;
	assert_int_equal(pthread_create(&p.thread, NULL, spin_popper_main, &p), 0);
	wait_blocked(q, &p, 0);
	for (size_t i = 0; i < ROUNDS; i++) {
		assert_int_equal(push_one(q, &it[i]), 1);
		wait_blocked(q, &p, i + 1);
	}
	tp_queue_stats(q, &st);
	/* One poll per idle moment: before the first push and after each. */
	assert_int_equal(st.long_spins + st.short_spins, ROUNDS + 1);
	/* Six misses bring the share of hits under half; then one in 16 probes. */
	if (st.long_spins > 6 + (ROUNDS + 1) / 16 + 1)
		fail_msg("%llu long polls of %d, all missing", (unsigned long long)st.long_spins, ROUNDS + 1);
	tp_queue_close(q);
	assert_int_equal(pthread_join(p.thread, NULL), 0);
	tp_queue_free(q);
	free(it);
}

/*
 * A worker told to stop must not leave behind work that was pushed for it.
 * B is idle in pop; S enters pop and is then told to stop (stop flag, then
 * tp_queue_wake_all(), as tp_pool_resize() does), and a node is pushed.
 * Whatever S does, the node must reach B: a push wakes idle workers, and S
 * returning 0 on its stop flag must not absorb that wake-up.  The moment of
 * the stop is varied across many rounds.
 */
struct handoff {
	struct tp_queue *q;
	pthread_barrier_t barrier;
	atomic_bool s_stop;
	atomic_bool quit;
	atomic_size_t got; /* nodes taken by B and S */
	pthread_t b, s;
};

static void *handoff_b(void *arg)
{
	struct handoff *h = arg;
	struct tp_qnode *n[4];
	size_t k;

	while ((k = tp_queue_pop(h->q, n, 4, NULL)) > 0)
		atomic_fetch_add(&h->got, k);
	return NULL;
}

static void *handoff_s(void *arg)
{
	struct handoff *h = arg;
	struct tp_qnode *n[4];

	for (;;) {
		pthread_barrier_wait(&h->barrier);
		if (atomic_load(&h->quit))
			break;
		atomic_fetch_add(&h->got, tp_queue_pop(h->q, n, 4, &h->s_stop));
		pthread_barrier_wait(&h->barrier);
	}
	return NULL;
}

static void test_stop_keeps_wakeup(void **state)
{
	enum { ROUNDS = 20000 };
	struct handoff *h = calloc(1, sizeof(*h));
	struct item *it = items_new(ROUNDS);
	const char *failure = NULL;
	int round = 0;

	(void)state;
	assert_non_null(h);
	h->q = tp_queue_new(16, NULL, NULL);
	assert_non_null(h->q);
	assert_int_equal(pthread_barrier_init(&h->barrier, NULL, 2), 0);
	assert_int_equal(pthread_create(&h->b, NULL, handoff_b, h), 0);
	assert_int_equal(pthread_create(&h->s, NULL, handoff_s, h), 0);

	uint64_t t_end = tp_clock_ns() + 4000 * 1000000ull;
	for (; round < ROUNDS && tp_clock_ns() < t_end; round++) {
		struct tp_queue_stats st;
		uint64_t t = tp_clock_ns();
		/* Poll with short sleeps: a busy loop can starve B under valgrind. */
		for (tp_queue_stats(h->q, &st); st.idle != 1 && tp_clock_ns() - t < 2000 * 1000000ull;
		     tp_queue_stats(h->q, &st)) {
			struct timespec ts = {0, 20000};
			nanosleep(&ts, NULL);
		}
		if (st.idle != 1) {
			failure = "B never went idle";
			break;
		}
		atomic_store(&h->s_stop, false);
		size_t before = atomic_load(&h->got);
		pthread_barrier_wait(&h->barrier); /* S enters pop */
		for (uint64_t d = tp_clock_ns() + (uint64_t)(round % 10) * 5000; tp_clock_ns() < d;)
			;
		atomic_store(&h->s_stop, true);
		tp_queue_wake_all(h->q);
		assert_int_equal(push_one(h->q, &it[round]), 1);
		pthread_barrier_wait(&h->barrier); /* S returned */
		t = tp_clock_ns();
		while (atomic_load(&h->got) == before && tp_clock_ns() - t < 500 * 1000000ull)
			sleep_ms(1);
		if (atomic_load(&h->got) == before) {
			failure = "a node pushed while one worker was stopping stayed queued, "
			          "with another worker idle";
			break;
		}
	}
	/* Let both threads go before reporting, so none outlives the test. */
	atomic_store(&h->quit, true);
	pthread_barrier_wait(&h->barrier);
	tp_queue_close(h->q);
	assert_int_equal(pthread_join(h->s, NULL), 0);
	assert_int_equal(pthread_join(h->b, NULL), 0);
	pthread_barrier_destroy(&h->barrier);
	tp_queue_free(h->q);
	free(h);
	free(it);
	if (failure)
		fail_msg("round %d: %s", round, failure);
}

/* Many producers and consumers, and an expirer, on one small queue. */
#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 50000

struct mt {
	struct tp_queue *q;
	struct item *items; /* PRODUCERS * PER_PRODUCER */
	atomic_size_t admitted_on_push;
	atomic_size_t admitted_later;
	atomic_size_t popped;
	atomic_size_t expired;
	atomic_size_t order_errors;
	atomic_size_t batches;
	atomic_bool consumers_done;
};

struct worker {
	struct mt *mt;
	unsigned index;
	pthread_t thread;
};

static void mt_admit(struct tp_qnode *node, void *ctx)
{
	(void)node;
	atomic_fetch_add_explicit(&((struct mt *)ctx)->admitted_later, 1, memory_order_relaxed);
}

static void *producer_main(void *arg)
{
	struct worker *w = arg;
	struct mt *mt = w->mt;
	struct item *it = mt->items + (size_t)w->index * PER_PRODUCER;
	uint64_t rng = 0x2545f4914f6cdd1dull * (w->index + 1);

	for (size_t i = 0; i < PER_PRODUCER;) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		size_t n = 1 + rng % 16;
		if (n > PER_PRODUCER - i)
			n = PER_PRODUCER - i;
		for (size_t k = 0; k < n; k++) {
			struct item *x = &it[i + k];
			x->producer = w->index;
			x->seq = i + k;
			x->node.batchable = (rng >> (k + 8)) & 1;
			/* A few expire while they wait; the rest never do. */
			x->node.deadline_ns = (rng >> 40) % 8 == 0 ? tp_clock_ns() : UINT64_MAX;
			x->node.next = k + 1 < n ? &it[i + k + 1].node : NULL;
		}
		int r = tp_queue_push(mt->q, &it[i].node, n);
		assert_true(r >= 0 && (size_t)r <= n);
		atomic_fetch_add_explicit(&mt->admitted_on_push, (size_t)r, memory_order_relaxed);
		i += n;
		if ((rng & 0xff) == 0)
			sched_yield();
	}
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct worker *w = arg;
	struct mt *mt = w->mt;
	uint64_t last[PRODUCERS] = {0};
	bool any[PRODUCERS] = {false};
	struct tp_qnode *got[16];
	size_t n;

	while ((n = tp_queue_pop(mt->q, got, 16, NULL)) > 0) {
		if (n > 1) {
			atomic_fetch_add_explicit(&mt->batches, 1, memory_order_relaxed);
			for (size_t i = 0; i < n; i++)
				if (!got[i]->batchable)
					atomic_fetch_add(&mt->order_errors, 1);
		}
		for (size_t i = 0; i < n; i++) {
			struct item *x = item_of(got[i]);
			atomic_fetch_add_explicit(&x->seen, 1, memory_order_relaxed);
			/* Pops are serialised and FIFO: a consumer sees each producer in order. */
			if (any[x->producer] && x->seq <= last[x->producer])
				atomic_fetch_add(&mt->order_errors, 1);
			last[x->producer] = x->seq;
			any[x->producer] = true;
		}
		atomic_fetch_add_explicit(&mt->popped, n, memory_order_relaxed);
	}
	return NULL;
}

static void *expirer_main(void *arg)
{
	struct mt *mt = arg;
	uint64_t last[PRODUCERS] = {0};
	bool any[PRODUCERS] = {false};

	while (!atomic_load(&mt->consumers_done)) {
		struct tp_qnode *first;
		uint64_t next;
		size_t n = tp_queue_expire(mt->q, tp_clock_ns(), &first, &next);
		size_t k = 0;
		for (; first; first = first->next, k++) {
			struct item *x = item_of(first);
			atomic_fetch_add_explicit(&x->seen, 1, memory_order_relaxed);
			if (any[x->producer] && x->seq <= last[x->producer])
				atomic_fetch_add(&mt->order_errors, 1);
			last[x->producer] = x->seq;
			any[x->producer] = true;
		}
		if (k != n)
			atomic_fetch_add(&mt->order_errors, 1);
		atomic_fetch_add(&mt->expired, n);
		sched_yield();
	}
	return NULL;
}

static void test_many_threads(void **state)
{
	const size_t total = (size_t)PRODUCERS * PER_PRODUCER;
	struct mt mt = {0};
	struct worker prod[PRODUCERS], cons[CONSUMERS];
	pthread_t expirer;

	(void)state;
	mt.items = calloc(total, sizeof(*mt.items));
	assert_non_null(mt.items);
	mt.q = tp_queue_new(64, mt_admit, &mt);
	assert_non_null(mt.q);
	for (unsigned i = 0; i < CONSUMERS; i++) {
		cons[i] = (struct worker){.mt = &mt, .index = i};
		assert_int_equal(pthread_create(&cons[i].thread, NULL, consumer_main, &cons[i]), 0);
	}
	assert_int_equal(pthread_create(&expirer, NULL, expirer_main, &mt), 0);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		prod[i] = (struct worker){.mt = &mt, .index = i};
		assert_int_equal(pthread_create(&prod[i].thread, NULL, producer_main, &prod[i]), 0);
	}
	for (unsigned i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_join(prod[i].thread, NULL), 0);
	tp_queue_close(mt.q);
	for (unsigned i = 0; i < CONSUMERS; i++)
		assert_int_equal(pthread_join(cons[i].thread, NULL), 0);
	atomic_store(&mt.consumers_done, true);
	assert_int_equal(pthread_join(expirer, NULL), 0);

	/* Nothing lost, nothing twice. */
	for (size_t i = 0; i < total; i++)
		if (atomic_load(&mt.items[i].seen) != 1)
			fail_msg("item %zu of producer %u seen %d times", (size_t)mt.items[i].seq,
			         mt.items[i].producer, atomic_load(&mt.items[i].seen));
	assert_int_equal(atomic_load(&mt.popped) + atomic_load(&mt.expired), total);
	assert_int_equal(atomic_load(&mt.order_errors), 0);
	/* Every popped node was admitted exactly once: at push or by the admit callback. */
	assert_int_equal(atomic_load(&mt.admitted_on_push) + atomic_load(&mt.admitted_later),
	                 atomic_load(&mt.popped));
	expect_stats(mt.q, 0, 0, 64);
	print_message("%zu nodes: %zu admitted on push, %zu later, %zu expired, %zu batches\n", total,
	              atomic_load(&mt.admitted_on_push), atomic_load(&mt.admitted_later),
	              atomic_load(&mt.expired), atomic_load(&mt.batches));
	tp_queue_free(mt.q);
	free(mt.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_capacity_fifo),
	        cmocka_unit_test(test_admit_order),
	        cmocka_unit_test(test_no_overtaking),
	        cmocka_unit_test(test_expire),
	        cmocka_unit_test(test_expire_out_of_order),
	        cmocka_unit_test(test_cap_deadlines),
	        cmocka_unit_test(test_cap_deadlines_holds_later_pushes),
	        cmocka_unit_test(test_expire_real_clock),
	        cmocka_unit_test(test_close),
	        cmocka_unit_test(test_take_all),
	        cmocka_unit_test(test_set_capacity),
	        cmocka_unit_test(test_batch_pop),
	        cmocka_unit_test(test_weight_bound),
	        cmocka_unit_test(test_weight_push_prefix),
	        cmocka_unit_test(test_weight_expire),
	        cmocka_unit_test(test_weight_set_capacity),
	        cmocka_unit_test(test_weight_batch_pop),
	        cmocka_unit_test(test_weight_heavier_than_capacity),
	        cmocka_unit_test(test_shrink_below_depth_with_waiters),
	        cmocka_unit_test(test_blocked_pop),
	        cmocka_unit_test(test_stats_idle),
	        cmocka_unit_test(test_spin_backs_off_when_work_comes_late),
	        cmocka_unit_test(test_stop_keeps_wakeup),
	        cmocka_unit_test(test_many_threads),
	};

	/* A hung pop must fail the run, not wait for the ctest timeout. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
