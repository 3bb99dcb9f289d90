/* SPDX-License-Identifier: MIT */
/*
 * test_req: request slots (req.c, req.h): a slot is zeroed whether it is
 * new or recycled from the loop's cache, small slots are recycled and large
 * ones are not, and the cache gives memory back past its bound; a short
 * copy writes exactly its bytes; a run of replies leaves in order, whole,
 * from its first unwritten byte, gathered or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* A done request with reply text, woff bytes of it written already, linked after prev. */
static struct tp_req *reply(struct tp_req *prev, const char *text, size_t len, uint32_t woff)
{
	struct tp_req *r = tp_req_alloc(NULL, len);
	assert_non_null(r);
	memcpy(r->buf, text, len);
	r->len = (uint32_t)len;
	r->woff = woff;
	r->done = true;
	if (prev)
		prev->onext = r;
	return r;
}

static void free_run(struct tp_req *r)
{
	while (r) {
		struct tp_req *next = r->onext;
		free(r);
		r = next;
	}
}

/* Write the run from head to a socket and read back what went out. */
static size_t write_and_read(struct tp_req *head, char *got, size_t size)
{
	int sv[2];
	int buf = 1 << 20;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	ssize_t w = tp_req_write_run(sv[0], head);
	assert_true(w > 0);
	close(sv[0]);
	size_t n = 0;
	for (ssize_t r; (r = read(sv[1], got + n, size - n)) > 0;)
		n += (size_t)r;
	close(sv[1]);
	assert_int_equal(n, (size_t)w);
	return n;
}

static void test_write_run_in_order_from_first_unwritten_byte(void **state)
{
	char got[32];
	(void)state;

	/* Small replies, gathered: the first half written already; the run stops at one not done. */
	struct tp_req *a = reply(NULL, "OK hello\n", 9, 3);
	struct tp_req *b = reply(a, "OK 0\n", 5, 0);
	struct tp_req *c = reply(b, "ERR server busy\n", 16, 0);
	struct tp_req *d = reply(c, "OK later\n", 9, 0);
	d->done = false;
	size_t n = write_and_read(a, got, sizeof(got));
	assert_int_equal(n, 6 + 5 + 16);
	assert_memory_equal(got, "hello\nOK 0\nERR server busy\n", n);
	free_run(a);
}

static void test_write_run_past_the_gather_buffer(void **state)
{
	static char big[3][6000], got[20000];
	size_t lens[3] = {5000, 3000, 3000};
	(void)state;

	for (size_t k = 0; k < 3; k++)
		memset(big[k], 'A' + (int)k, sizeof(big[k]));
	/* A first reply larger than the buffer goes alone, straight from its slot. */
	struct tp_req *a = reply(NULL, big[0], lens[0], 0);
	(void)reply(a, "OK x\n", 5, 0);
	size_t n = write_and_read(a, got, sizeof(got));
	assert_int_equal(n, lens[0]);
	assert_memory_equal(got, big[0], n);
	free_run(a);

	/* Replies that outgrow it together go out as segments, all of them, in order. */
	a = reply(NULL, big[1], lens[1], 0);
	struct tp_req *b = reply(a, big[2], lens[2], 0);
	(void)reply(b, "OK x\n", 5, 0);
	n = write_and_read(a, got, sizeof(got));
	assert_int_equal(n, lens[1] + lens[2] + 5);
	assert_memory_equal(got, big[1], lens[1]);
	assert_memory_equal(got + lens[1], big[2], lens[2]);
	assert_memory_equal(got + lens[1] + lens[2], "OK x\n", 5);
	free_run(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_recycled_slot_is_zeroed),
	        cmocka_unit_test(test_large_slots_are_not_kept),
	        cmocka_unit_test(test_cache_bounded),
	        cmocka_unit_test(test_write_run_in_order_from_first_unwritten_byte),
	        cmocka_unit_test(test_write_run_past_the_gather_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
