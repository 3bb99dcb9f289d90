/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fairq_take.c, nodes taken out of the queue's fair modes
 * other than by a pop: a client that leaves while queued (its nodes out at
 * once, its places to waiters, its flow forgotten), and a change of mode
 * with work admitted and waiting, nothing lost or reordered within a flow.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_flow_leaves),
	        cmocka_unit_test(test_mode_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
