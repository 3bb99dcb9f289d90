/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of pool.c's resize (with queue.c): up and down while idle; a
 * shrink letting busy workers finish rather than cutting them off; and a
 * grow back while the surplus is still busy keeping them, not doubling
 * them.  Timing checks are bounds with wide margins, never exact times.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
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

#include "pool.h"
#include "pool_fixture.h"
#include "test_util.h"
#include "queue.h"

static void test_resize_idle(void **state)
{
	struct rig r;

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(count_tasks(), r.base_tasks + 2);
	assert_int_equal(tp_pool_resize(r.p, 6), 0);
	/* Growing returns once the new workers run. */
	assert_int_equal(stats(r.p).workers, 6);
	assert_int_equal(stats(r.p).target, 6);
	assert_int_equal(count_tasks(), r.base_tasks + 6);
	/* Shrinking does not wait, but idle surplus workers leave promptly. */
	assert_int_equal(tp_pool_resize(r.p, 2), 0);
	assert_int_equal(stats(r.p).target, 2);
	wait_tasks(r.base_tasks + 2, 5000);
	assert_int_equal(stats(r.p).workers, 2);
	/* Up again: exited workers are replaced. */
	assert_int_equal(tp_pool_resize(r.p, 3), 0);
	assert_int_equal(stats(r.p).workers, 3);
	assert_int_equal(count_tasks(), r.base_tasks + 3);
	/* The resized pool still does work. */
	struct task *t = tasks_new(6, 1);
	assert_int_equal(push_tasks(r.q, t, 6), 6);
	assert_true(wait_done(&r.ctx, 6, 5000));
	rig_stop(&r);
	free(t);
}

static void test_resize_busy(void **state)
{
	enum { SLEEP = 3000 }; /* long enough that the checks below fall inside the sleeps */
	struct rig r;
	struct task *t = tasks_new(4, SLEEP);

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 4), 0);
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(push_tasks(r.q, t, 4), 4);
	wait_busy(r.p, 4);

	/* Shrink to 1 while all four sleep: returns at once, kills nobody. */
	uint64_t r0 = tp_clock_ns();
	assert_int_equal(tp_pool_resize(r.p, 1), 0);
	uint64_t resize_ns = tp_clock_ns() - r0;
	if (resize_ns >= SLEEP * MS / 4)
		fail_msg("shrinking took %llu ms", (unsigned long long)(resize_ns / MS));
	sleep_ms(50);
	if (tp_clock_ns() - t0 < SLEEP * MS * 3 / 4) {
		/* Still well inside the sleeps (2.25 s after their start, missed only on a stalled machine):
		 * every thread is still there. */
		assert_int_equal(count_tasks(), r.base_tasks + 4);
		assert_int_equal(done_count(&r.ctx), 0);
		struct tp_pool_stats st = stats(r.p);
		assert_int_equal(st.workers, 4);
		assert_int_equal(st.target, 1);
		assert_int_equal(st.busy, 4);
	}
	/* They finish their sleeps in full, then the surplus three exit. */
	assert_true(wait_done(&r.ctx, 4, 10000));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(t[i].result, 0);
		assert_true(t[i].end_ns - t0 >= SLEEP * MS);
	}
	wait_tasks(r.base_tasks + 1, 5000);
	assert_int_equal(stats(r.p).workers, 1);
	/* The one that stays may still be on its way out of exec. */
	wait_busy(r.p, 0);

	/* The remaining worker still serves the queue. */
	struct task *u = tasks_new(3, 1);
	assert_int_equal(push_tasks(r.q, u, 3), 3);
	assert_true(wait_done(&r.ctx, 7, 5000));
	rig_stop(&r);
	free(u);
	free(t);
}

/* Shrink then grow back while the surplus workers are still busy: they are kept, not doubled. */
static void test_resize_back_while_busy(void **state)
{
	enum { SLEEP = 600 };
	struct rig r;
	struct task *t = tasks_new(3, SLEEP);

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 3), 0);
	assert_int_equal(push_tasks(r.q, t, 3), 3);
	wait_busy(r.p, 3);
	assert_int_equal(tp_pool_resize(r.p, 1), 0);
	assert_int_equal(tp_pool_resize(r.p, 3), 0);
	assert_int_equal(count_tasks(), r.base_tasks + 3);
	assert_true(wait_done(&r.ctx, 3, 10000));
	/* After their work the three stay: give a would-be leaver time to go. */
	sleep_ms(100);
	assert_int_equal(count_tasks(), r.base_tasks + 3);
	assert_int_equal(stats(r.p).workers, 3);
	rig_stop(&r);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_resize_idle),
	        cmocka_unit_test(test_resize_busy),
	        cmocka_unit_test(test_resize_back_while_busy),
	};

	pool_fixture_begin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
