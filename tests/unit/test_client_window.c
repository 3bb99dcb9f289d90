/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of client_window.c and client_req.c: the ring keeps its order across the wrap,
 * and a request drawn and written is exactly what its own check accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "client_gen.h"
#include "client_req.h"
#include "client_window.h"
#include "proto.h"

static void test_ring_order(void **state)
{
	(void)state;
	struct tp_client_window w;

	assert_int_equal(tp_client_window_init(&w, 3), 0);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 3; i++)
			tp_client_window_push(&w)->arg = (uint32_t)(round * 10 + i);
		assert_int_equal(tp_client_window_at(&w, 2)->arg, round * 10 + 2);
		assert_int_equal(tp_client_window_pop(&w).arg, round * 10);
		assert_int_equal(tp_client_window_pop(&w).arg, round * 10 + 1);
		tp_client_window_push(&w)->arg = 99;
		assert_int_equal(w.count, 2);
		assert_int_equal(tp_client_window_pop(&w).arg, round * 10 + 2);
		assert_int_equal(tp_client_window_pop(&w).arg, 99);
	}
	tp_client_window_push(&w);
	tp_client_window_clear(&w);
	assert_int_equal(w.count, 0);
	tp_client_window_release(&w);
	tp_client_window_release(&w);
}

static void test_defer(void **state)
{
	(void)state;
	struct tp_client_window q;
	struct tp_client_req req = {.arg = 5, .retries = 0};

	assert_int_equal(tp_client_window_init(&q, 2), 0);
	assert_null(tp_client_window_due(&q, 100));
	assert_true(tp_client_window_defer(&q, &req, 50, 2));
	req.arg = 6;
	req.retries = 2; /* its budget is spent */
	assert_false(tp_client_window_defer(&q, &req, 60, 2));
	req.retries = 1;
	assert_true(tp_client_window_defer(&q, &req, 60, 2));
	assert_false(tp_client_window_defer(&q, &req, 70, 9)); /* full */
	assert_null(tp_client_window_due(&q, 49));
	assert_int_equal(tp_client_window_due(&q, 50)->arg, 5);
	struct tp_client_req first = tp_client_window_pop(&q);
	assert_true(first.retries == 1 && first.due_ns == 50);
	assert_null(tp_client_window_due(&q, 59));
	assert_int_equal(tp_client_window_pop(&q).retries, 2);
	tp_client_window_release(&q);
}

/* --retry-busy allows up to 1000 sends again: the count must not wrap on the way. */
static void test_defer_counts_past_255(void **state)
{
	(void)state;
	struct tp_client_window q;
	struct tp_client_req req = {0};
	unsigned sent_again = 0;

	assert_int_equal(tp_client_window_init(&q, 1), 0);
	while (sent_again <= 1000 && tp_client_window_defer(&q, &req, 0, 1000)) {
		req = tp_client_window_pop(&q);
		sent_again++;
	}
	assert_int_equal(sent_again, 1000);
	assert_int_equal(req.retries, 1000);
	tp_client_window_release(&q);
}

static void test_draw_write_check(void **state)
{
	(void)state;
	struct tp_client_group g = {
	        .mix = TP_MIX_BALANCED, .sleep_lo_ms = 5, .sleep_hi_ms = 9, .echo_lo = 1, .echo_hi = 40};
	uint64_t rng = 7;
	unsigned ops[2] = {0, 0};
	char line[128], text[64];

	tp_client_gen_init();
	for (int i = 0; i < 200; i++) {
		struct tp_client_req req;
		tp_client_req_draw(&g, &rng, &req);
		size_t n = tp_client_req_write(&req, line, sizeof(line));
		assert_true(n > 0 && line[n - 1] == '\n');
		ops[req.op]++;
		if (req.op == TP_OP_SLEEP) {
			assert_true(req.arg >= 5 && req.arg <= 9);
			assert_int_equal(strncmp(line, "SLEEP ", 6), 0);
		} else {
			assert_true(req.arg >= 1 && req.arg <= 40);
			assert_int_equal(n, 6 + req.arg);
		}
		/* The reply a correct server gives: "OK " and the argument. */
		char reply[128];
		int len = snprintf(reply, sizeof(reply), "OK %.*s",
		                   (int)(n - 1 - (req.op == TP_OP_SLEEP ? 6 : 5)),
		                   line + (req.op == TP_OP_SLEEP ? 6 : 5));
		assert_int_equal(tp_client_req_check(&req, text, reply, (size_t)len), TP_VERIFY_OK);
		assert_int_equal(tp_client_req_check(&req, text, "OK x", 4), TP_VERIFY_MISMATCH);
		assert_int_equal(tp_client_req_check(&req, text, "ERR server busy", 15), TP_VERIFY_BUSY);
	}
	assert_true(ops[TP_OP_SLEEP] > 50 && ops[TP_OP_ECHO] > 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ring_order),
	        cmocka_unit_test(test_defer),
	        cmocka_unit_test(test_defer_counts_past_255),
	        cmocka_unit_test(test_draw_write_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
