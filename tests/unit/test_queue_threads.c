/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue.c on many threads: producers pushing batches,
 * consumers popping them and an expirer, on one small queue, losing,
 * duplicating and reordering nothing, and admitting every node once.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "queue.h"
#include "queue_fixture.h"

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
	        cmocka_unit_test(test_many_threads),
	};

	/* A hung pop must fail the run, not wait for the ctest timeout. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
