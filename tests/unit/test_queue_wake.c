/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue.c's workers' wake-ups: a blocked pop woken by a
 * push, by its stop flag or by close; idle workers counted, and one push
 * waking one; long polls backing off when work comes only after the worker
 * blocked; and a worker told to stop never absorbing the wake-up of work
 * pushed for another.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "queue_fixture.h"
#include "test_util.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_blocked_pop),
	        cmocka_unit_test(test_stats_idle),
	        cmocka_unit_test(test_spin_backs_off_when_work_comes_late),
	        cmocka_unit_test(test_stop_keeps_wakeup),
	};

	/* A hung pop must fail the run, not wait for the ctest timeout. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
