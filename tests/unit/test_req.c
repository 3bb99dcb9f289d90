/* SPDX-License-Identifier: MIT */
/*
 * test_req: request slots (req.c, req.h): a slot is zeroed whether it is
 * new or recycled from the loop's cache, small slots are recycled and large
 * ones are not, and the cache gives memory back past its bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "req.h"

/* Every field of r as tp_req_new() promises it: zero but conn and cap. */
static void assert_fresh(const struct tp_req *r, struct tp_conn *conn, size_t cap)
{
	assert_ptr_equal(r->conn, conn);
	assert_int_equal(r->cap, cap);
	/* Field by field: the padding between them need not be zero. */
	assert_null(r->qnode.next);
	assert_null(r->qnode.wprev);
	assert_null(r->qnode.wnext);
	assert_null(r->qnode.flow);
	assert_int_equal(r->qnode.deadline_ns, 0);
	assert_int_equal(r->qnode.cost_us, 0);
	assert_false(r->qnode.batchable);
	assert_null(r->dnext);
	assert_null(r->anext);
	assert_null(r->bnext);
	assert_null(r->onext);
	assert_int_equal(r->arrival_us | r->wait_end_us | r->start_us | r->end_us, 0);
	assert_int_equal(r->sleep_ms | r->len | r->woff, 0);
	assert_int_equal(r->op | r->status, 0);
	assert_false(r->done || r->waiting || r->pushed || r->waited || r->ran || r->late);
}

/* Every byte of the fields set, as a request that lived a whole life leaves them. */
static void soil(struct tp_req *r)
{
	memset(r, 0xa5, sizeof(*r));
	r->done = r->waiting = r->pushed = r->waited = r->ran = r->late = true;
}

static void test_recycled_slot_is_zeroed(void **state)
{
	struct tp_req_cache cache = {0};
	struct tp_conn *c1 = (struct tp_conn *)(uintptr_t)0x1000, *c2 = (struct tp_conn *)(uintptr_t)0x2000;
	(void)state;

	struct tp_req *r = tp_req_new(&cache, c1, 5); /* below the minimum: rounded up */
	assert_non_null(r);
	assert_fresh(r, c1, TP_REQ_MIN_CAP);
	memset(r->buf, 'x', TP_REQ_MIN_CAP); /* all of buf is usable */
	uint32_t cap = r->cap;
	soil(r);
	r->cap = cap;
	tp_req_free(&cache, r);
	assert_int_equal(cache.n, 1);

	struct tp_req *again = tp_req_new(&cache, c2, TP_REQ_MIN_CAP);
	assert_ptr_equal(again, r); /* from the cache */
	assert_int_equal(cache.n, 0);
	assert_fresh(again, c2, TP_REQ_MIN_CAP);
	tp_req_free(&cache, again);
	tp_req_cache_clear(&cache);
	assert_null(cache.head);
	assert_int_equal(cache.n, 0);
}

static void test_large_slots_are_not_kept(void **state)
{
	struct tp_req_cache cache = {0};
	(void)state;

	struct tp_req *small = tp_req_new(&cache, NULL, 0);
	tp_req_free(&cache, small);
	/* A cached small slot is no use for a large reply. */
	struct tp_req *large = tp_req_new(&cache, NULL, TP_REQ_MIN_CAP + 1);
	assert_non_null(large);
	assert_ptr_not_equal(large, small);
	assert_fresh(large, NULL, TP_REQ_MIN_CAP + 1);
	memset(large->buf, 'y', TP_REQ_MIN_CAP + 1);
	assert_int_equal(cache.n, 1);
	tp_req_free(&cache, large); /* freed, not cached */
	assert_int_equal(cache.n, 1);
	tp_req_cache_clear(&cache);
}

static void test_cache_bounded(void **state)
{
	struct tp_req_cache cache = {0};
	static struct tp_req *r[TP_REQ_CACHE_MAX + 10];
	(void)state;

	for (size_t i = 0; i < TP_REQ_CACHE_MAX + 10; i++)
		assert_non_null(r[i] = tp_req_new(&cache, NULL, 0));
	for (size_t i = 0; i < TP_REQ_CACHE_MAX + 10; i++)
		tp_req_free(&cache, r[i]);
	assert_int_equal(cache.n, TP_REQ_CACHE_MAX);
	tp_req_cache_clear(&cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_recycled_slot_is_zeroed),
	        cmocka_unit_test(test_large_slots_are_not_kept),
	        cmocka_unit_test(test_cache_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
