/* SPDX-License-Identifier: MIT */
/*
 * queue_fixture: the items, pushes, pops and admit log the unit tests of
 * the queue in TP_FAIR_NONE share (header only, so each test still links
 * only the layer it tests).
 */
#ifndef TP_QUEUE_FIXTURE_H
#define TP_QUEUE_FIXTURE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "queue.h"

struct item {
	struct tp_qnode node;
	int id;
	unsigned producer;
	uint64_t seq;
	_Atomic int seen; /* times a consumer or the expirer got it */
};

static inline struct item *item_of(struct tp_qnode *n)
{
	return (struct item *)(void *)((char *)n - offsetof(struct item, node));
}

/* Items with ids 0..n-1, far deadlines, not batchable. */
static inline struct item *items_new(size_t n)
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
static inline int push_range(struct tp_queue *q, struct item *it, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		it[i].node.next = i + 1 < to ? &it[i + 1].node : NULL;
	return tp_queue_push(q, &it[from].node, to - from);
}

static inline int push_one(struct tp_queue *q, struct item *it)
{
	it->node.next = NULL;
	return tp_queue_push(q, &it->node, 1);
}

/* Pop exactly one node (the queue must hold one) and return its id. */
static inline int pop_id(struct tp_queue *q)
{
	struct tp_qnode *n[4] = {0};
	size_t got = tp_queue_pop(q, n, 1, NULL);
	assert_int_equal(got, 1);
	return item_of(n[0])->id;
}

static inline void expect_stats(struct tp_queue *q, size_t depth, size_t waiting, size_t capacity)
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

static inline void on_admit(struct tp_qnode *node, void *ctx)
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

/* Pop once with room for max and check the ids taken. */
static inline void expect_pop(struct tp_queue *q, size_t max, const int *ids, size_t n)
{
	struct tp_qnode *got[64];
	size_t k = tp_queue_pop(q, got, max, NULL);

	if (k != n)
		fail_msg("popped %zu, want %zu (first want %d)", k, n, ids[0]);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(item_of(got[i])->id, ids[i]);
}

#endif
