/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of pool.c (with queue.c): pools aligned for their slots;
 * workers started and counted both in the stats and as threads in
 * /proc/self/task; sleeps on different workers overlapping; a turn's cheap
 * push taken in one batch; stop draining queued work; abort cutting sleeps
 * short; the busy statistics; and the cheap-only workers.  Timing checks
 * are bounds with wide margins, never exact times.
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

/*
 * pool.c keeps each worker slot on its own cache line (struct slot is
 * aligned(64)), which makes struct tp_pool 64-byte aligned: tp_pool_new()
 * must return memory with that alignment, or every slot access is
 * undefined behaviour (UBSan: "misaligned address ... requires 64 byte
 * alignment").  Several pools, so that one lucky address proves nothing.
 */
static void test_new_aligned(void **state)
{
	enum { N = 8 };
	struct tp_queue *q = tp_queue_new(4, NULL, NULL);
	struct tp_pool *p[N];
	void *pad[N];
	size_t misaligned = 0;

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < N; i++) {
		pad[i] = malloc(16 + 16 * (size_t)i);
		p[i] = tp_pool_new(q, exec_tasks, NULL);
		assert_non_null(p[i]);
		misaligned += (uintptr_t)p[i] % 64 != 0;
	}
	for (int i = 0; i < N; i++) {
		tp_pool_free(p[i]);
		free(pad[i]);
	}
	tp_queue_free(q);
	if (misaligned)
		fail_msg("%zu of %d pools not 64-byte aligned", misaligned, N);
}

static void test_start(void **state)
{
	struct rig r;
	struct tp_pool_stats st;

	(void)state;
	rig_init(&r, 16);
	st = stats(r.p);
	assert_int_equal(st.workers, 0);
	assert_int_equal(st.busy, 0);
	assert_int_equal(st.oldest_busy_ns, 0);

	assert_int_equal(tp_pool_start(r.p, 4), 0);
	/* Running when start returns: no polling needed. */
	st = stats(r.p);
	assert_int_equal(st.workers, 4);
	assert_int_equal(st.target, 4);
	assert_int_equal(st.busy, 0);
	assert_int_equal(count_tasks(), r.base_tasks + 4);
	/* Out-of-range sizes are refused and change nothing. */
	assert_int_equal(tp_pool_resize(r.p, 0), -EINVAL);
	assert_int_equal(tp_pool_resize(r.p, TP_POOL_MAX_WORKERS + 1), -EINVAL);
	st = stats(r.p);
	assert_int_equal(st.workers, 4);
	assert_int_equal(st.target, 4);
	assert_int_equal(count_tasks(), r.base_tasks + 4);

	/* Idle workers take work. */
	struct task *t = tasks_new(3, 0);
	assert_int_equal(push_tasks(r.q, t, 3), 3);
	assert_true(wait_done(&r.ctx, 3, 5000));
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&t[i].runs), 1);
	rig_stop(&r);
	free(t);
	tp_pool_free(NULL);
}

static void test_sleeps_overlap(void **state)
{
	enum { N = 8, SLEEP = 200 };
	struct rig r;
	struct task *t = tasks_new(N, SLEEP);

	(void)state;
	rig_init(&r, 64);
	assert_int_equal(tp_pool_start(r.p, N), 0);
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(push_tasks(r.q, t, N), N);
	assert_true(wait_done(&r.ctx, N, 10000));
	uint64_t elapsed = tp_clock_ns() - t0;
	/* Each one slept; together they took about one sleep, far from N of them. */
	assert_true(elapsed >= SLEEP * MS);
	if (elapsed >= 4ull * SLEEP * MS)
		fail_msg("%d sleeps of %d ms on %d workers took %llu ms", N, SLEEP, N,
		         (unsigned long long)(elapsed / MS));
	for (int i = 0; i < N; i++) {
		assert_int_equal(t[i].result, 0);
		assert_true(t[i].end_ns - t[i].start_ns >= SLEEP * MS);
	}
	/* Not batchable: one task per exec. */
	assert_int_equal(r.ctx.max_batch, 1);
	wait_busy(r.p, 0);
	rig_stop(&r);
	free(t);
}

/*
 * A turn's worth of cheap work pushed at once goes to one worker in one
 * batch, in either discipline: splitting it would wake more workers for
 * less work each.
 */
static void test_cheap_push_is_one_batch(void **state)
{
	enum { N = 600 };
	static const enum tp_fairness modes[] = {TP_FAIR_NONE, TP_FAIR_ADDRESS};

	(void)state;
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct rig r;
		struct task *t = tasks_new(N, 0);

		rig_init(&r, 1000);
		tp_queue_set_fairness(r.q, modes[m]);
		assert_int_equal(tp_pool_start(r.p, 4), 0);
		for (int i = 0; i < N; i++)
			t[i].node.batchable = true;
		assert_int_equal(push_tasks(r.q, t, N), N);
		assert_true(wait_done(&r.ctx, N, 10000));
		assert_int_equal(r.ctx.max_batch, N);
		rig_stop(&r);
		free(t);
	}
}

static void test_stop_drains(void **state)
{
	enum { N = 40 };
	struct rig r;
	struct task *t = tasks_new(N, 5);

	(void)state;
	rig_init(&r, 4);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	for (int i = 0; i < N; i += 2)
		t[i].node.batchable = true;
	/* 4 admitted, the rest in the wait list. */
	int admitted = push_tasks(r.q, t, N);
	assert_true(admitted >= 4 && admitted < N);
	tp_pool_stop(r.p);
	/* Everything queued ran, exactly once, before stop returned. */
	assert_int_equal(done_count(&r.ctx), N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&t[i].runs), 1);
		assert_int_equal(t[i].result, 0);
	}
	wait_tasks(r.base_tasks, 2000);
	struct task extra = {.node.deadline_ns = UINT64_MAX};
	assert_int_equal(tp_queue_push(r.q, &extra.node, 1), -EPIPE);
	assert_int_equal(stats(r.p).target, 0);
	assert_int_equal(stats(r.p).workers, 0);
	rig_free(&r);
	free(t);
}

static void test_abort(void **state)
{
	struct rig r;
	struct task *t = tasks_new(2, 20000);

	(void)state;
	rig_init(&r, 16);
	/* Without abort, a sleep lasts its time and returns 0. */
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(tp_pool_sleep_ms(r.p, 50), 0);
	assert_true(tp_clock_ns() - t0 >= 50 * MS);
	assert_int_equal(tp_pool_sleep_ms(r.p, 0), 0);

	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(push_tasks(r.q, t, 2), 2);
	wait_busy(r.p, 2);
	t0 = tp_clock_ns();
	tp_pool_abort(r.p);
	assert_true(wait_done(&r.ctx, 2, 5000));
	uint64_t took = tp_clock_ns() - t0;
	if (took >= 1000 * MS)
		fail_msg("abort took %llu ms to end the sleeps", (unsigned long long)(took / MS));
	for (int i = 0; i < 2; i++)
		assert_int_equal(t[i].result, -ECANCELED);
	/* Later sleeps are cut short at once too. */
	t0 = tp_clock_ns();
	assert_int_equal(tp_pool_sleep_ms(r.p, 20000), -ECANCELED);
	assert_true(tp_clock_ns() - t0 < 1000 * MS);
	struct task *u = tasks_new(1, 20000);
	assert_int_equal(push_tasks(r.q, u, 1), 1);
	assert_true(wait_done(&r.ctx, 3, 5000));
	assert_int_equal(u[0].result, -ECANCELED);
	rig_stop(&r);
	free(u);
	free(t);
}

static void test_busy_stats(void **state)
{
	struct rig r;
	/* The first still runs when the second starts, on a slow machine too. */
	struct task *t = tasks_new(2, 2000);

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(push_tasks(r.q, &t[0], 1), 1);
	wait_busy(r.p, 1);
	struct tp_pool_stats st = stats(r.p);
	uint64_t t1 = tp_clock_ns();
	assert_int_equal(st.busy, 1);
	assert_int_equal(st.workers, 2);
	assert_true(st.oldest_busy_ns >= t0 && st.oldest_busy_ns <= t1);
	uint64_t first = st.oldest_busy_ns;

	/* A second, later exec: the oldest stays the first one. */
	sleep_ms(50);
	assert_int_equal(push_tasks(r.q, &t[1], 1), 1);
	wait_busy(r.p, 2);
	st = stats(r.p);
	assert_int_equal(st.busy, 2);
	assert_int_equal(st.oldest_busy_ns, first);

	assert_true(wait_done(&r.ctx, 2, 5000));
	wait_busy(r.p, 0);
	st = stats(r.p);
	assert_int_equal(st.oldest_busy_ns, 0);
	rig_stop(&r);
	free(t);
}

/*
 * Every general worker inside a long job, one more long job queued: the
 * cheap-only worker leaves that one alone, and runs a cheap job pushed
 * then from another flow, long before any long job ends.  With no
 * cheap-only worker the cheap job would wait for a general one.
 */
static void test_cheap_lane(void **state)
{
	struct rig r;
	struct task *t = tasks_new(4, 3000);
	struct tp_queue_stats qs;

	struct tp_qflow victim; /* the cheap job's own flow: the long ones share the null flow */

	(void)state;
	tp_qflow_init(&victim, NULL);
	t[3].sleep_ms = 0;
	t[3].node.batchable = true;
	t[3].node.flow = &victim;
	rig_init(&r, 16);
	tp_queue_set_fairness(r.q, TP_FAIR_CONNECTION);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(tp_pool_set_cheap(r.p, 1), 0);
	assert_int_equal(stats(r.p).workers, 3);
	assert_int_equal(stats(r.p).cheap_target, 1);
	assert_int_equal(push_tasks(r.q, &t[0], 3), 3);
	wait_busy(r.p, 2);
	sleep_ms(50); /* time enough for a wrong taker of the third */
	assert_int_equal(stats(r.p).busy, 2);
	tp_queue_stats(r.q, &qs);
	assert_int_equal(qs.depth, 1);

	assert_int_equal(push_tasks(r.q, &t[3], 1), 1);
	assert_true(wait_done(&r.ctx, 1, 2000));
	assert_int_equal(atomic_load(&t[3].runs), 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&t[i].runs), 0); /* the cheap one went first */

	/* Live: the cheap-only worker goes. */
	assert_int_equal(tp_pool_set_cheap(r.p, 0), 0);
	assert_int_equal(tp_pool_set_cheap(r.p, TP_POOL_MAX_CHEAP + 1), -EINVAL);
	tp_pool_abort(r.p);
	assert_true(wait_done(&r.ctx, 4, 5000));
	for (int i = 0; i < 200 && stats(r.p).workers != 2; i++)
		sleep_ms(5);
	assert_int_equal(stats(r.p).workers, 2);
	rig_stop(&r);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_new_aligned),    cmocka_unit_test(test_start),
	        cmocka_unit_test(test_sleeps_overlap), cmocka_unit_test(test_cheap_push_is_one_batch),
	        cmocka_unit_test(test_stop_drains),    cmocka_unit_test(test_abort),
	        cmocka_unit_test(test_busy_stats),     cmocka_unit_test(test_cheap_lane),
	};

	pool_fixture_begin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
