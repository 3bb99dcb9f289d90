/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of pool.c's stall deadlines (with queue.c): a lowered budget
 * applying to execs that start later, not to running ones, nor to work
 * accepted under the budget before it.  Timing checks are bounds with wide
 * margins, never exact times.
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

/* A lowered stall budget applies to execs that start later, not to running ones. */
static void test_stall_deadline_fixed_at_start(void **state)
{
	struct rig r;
	struct task *t = tasks_new(2, 2000); /* both run at once, on a slow machine too */

	(void)state;
	rig_init(&r, 16);
	tp_pool_set_stall_ms(r.p, 10000);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(push_tasks(r.q, &t[0], 1), 1);
	wait_busy(r.p, 1);
	struct tp_pool_stats st = stats(r.p);
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 10000 * 1000000ull);
	uint64_t first = st.stall_at_ns;

	tp_pool_set_stall_ms(r.p, 100);
	st = stats(r.p);
	assert_int_equal(st.stall_at_ns, first);
	assert_int_equal(push_tasks(r.q, &t[1], 1), 1);
	wait_busy(r.p, 2);
	st = stats(r.p);
	assert_true(st.stall_at_ns < first); /* the later one, with the smaller budget */
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 100 * 1000000ull);

	assert_true(wait_done(&r.ctx, 2, 5000));
	wait_busy(r.p, 0);
	assert_int_equal(stats(r.p).stall_at_ns, 0);
	rig_stop(&r);
	free(t);
}

/*
 * The stats once one worker is busy with a stall deadline of its start plus
 * budget_ms (none for 0), or after 2 s: the worker sets the deadline in
 * exec, a moment after it is seen busy, and the last task's figures linger
 * until then.
 */
static struct tp_pool_stats stall_budget_seen(struct tp_pool *p, uint64_t budget_ms)
{
	struct tp_pool_stats st = stats(p);
	int i = 0;

	while ((st.busy != 1 ||
	        st.stall_at_ns != (budget_ms ? st.stall_since_ns + budget_ms * 1000000ull : 0)) &&
	       i++ < 400) {
		sleep_ms(5);
		st = stats(p);
	}
	return st;
}

/*
 * Work accepted before the budget was lowered, started after: it keeps the
 * larger budget (the largest lowered, after two lowerings); work accepted
 * after the lowering gets the new one.  Off a worker's thread the call
 * does nothing.
 */
static void test_stall_budget_of_when_accepted(void **state)
{
	struct rig r;
	struct task *t = tasks_new(3, 1000); /* each long enough to be seen running */
	uint64_t before;

	(void)state;
	rig_init(&r, 16);
	tp_pool_set_stall_ms(r.p, 10000);
	before = tp_clock_ns();
	tp_pool_set_stall_ms(r.p, 5000);
	tp_pool_set_stall_ms(r.p, 100);
	tp_pool_stall_accepted_at(r.p, before); /* not a worker: nothing to do, nothing breaks */
	assert_int_equal(tp_pool_start(r.p, 1), 0);

	t[0].accepted_ns = before;
	assert_int_equal(push_tasks(r.q, &t[0], 1), 1);
	struct tp_pool_stats st = stall_budget_seen(r.p, 10000);
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 10000 * 1000000ull);
	assert_true(wait_done(&r.ctx, 1, 5000));

	t[1].accepted_ns = tp_clock_ns(); /* after the lowering */
	assert_int_equal(push_tasks(r.q, &t[1], 1), 1);
	st = stall_budget_seen(r.p, 100);
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 100 * 1000000ull);
	assert_true(wait_done(&r.ctx, 2, 5000));

	tp_pool_set_stall_ms(r.p, 0); /* none: not a lowering, and no deadline an older budget shortens */
	t[2].accepted_ns = before;
	assert_int_equal(push_tasks(r.q, &t[2], 1), 1);
	st = stall_budget_seen(r.p, 0);
	assert_int_equal(st.busy, 1);
	assert_int_equal(st.stall_at_ns, 0); /* no deadline */
	assert_true(wait_done(&r.ctx, 3, 5000));
	rig_stop(&r);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stall_deadline_fixed_at_start),
	        cmocka_unit_test(test_stall_budget_of_when_accepted),
	};

	pool_fixture_begin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
