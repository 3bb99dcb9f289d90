/* SPDX-License-Identifier: MIT */
/*
 * test_queue_signal: the queue wakes its workers after it has released its
 * lock (the DESIGN in queue.c): a worker woken while the pusher still
 * holds the lock would block on it at once.  The test binary is linked
 * with --wrap for pthread_mutex_lock, pthread_mutex_unlock and
 * pthread_cond_signal: each thread counts the mutexes it holds, and each
 * signal notes whether its sender held one.  The queue's calls are the only
 * ones a thread makes here while holding a mutex (no admit callback).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "test_util.h"

int __wrap_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_unlock(pthread_mutex_t *m);
int __wrap_pthread_cond_signal(pthread_cond_t *c);
int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_mutex_unlock(pthread_mutex_t *m);
int __real_pthread_cond_signal(pthread_cond_t *c);

static _Thread_local int held; /* mutexes this thread holds */
static atomic_int signals, signals_under_lock;

int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_lock(m);
	held += r == 0;
	return r;
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *m)
{
	held--;
	return __real_pthread_mutex_unlock(m);
}

int __wrap_pthread_cond_signal(pthread_cond_t *c)
{
	atomic_fetch_add(&signals, 1);
	if (held > 0)
		atomic_fetch_add(&signals_under_lock, 1);
	return __real_pthread_cond_signal(c);
}

struct popper {
	struct tp_queue *q;
	bool cheap; /* a cheap-only worker (tp_queue_pop_cheap) */
	atomic_size_t got;
	pthread_t thread;
};

static void *popper_main(void *arg)
{
	struct popper *p = arg;
	struct tp_qnode *n[8];
	size_t k;

	while ((k = p->cheap ? tp_queue_pop_cheap(p->q, n, 8, NULL) : tp_queue_pop(p->q, n, 8, NULL)) > 0)
		atomic_fetch_add(&p->got, k);
	return NULL;
}

/* Wait (up to 10 s) until the queue counts that many workers blocked in pop, general and cheap-only. */
static void wait_idle(struct tp_queue *q, size_t idle, size_t cheap_idle)
{
	struct tp_queue_stats st;
	for (int i = 0; i < 10000; i++) {
		tp_queue_stats(q, &st);
		if (st.idle == idle && st.cheap_idle == cheap_idle)
			return;
		usleep(1000);
	}
	fail_msg("%zu and %zu workers idle, want %zu and %zu", st.idle, st.cheap_idle, idle, cheap_idle);
}

static void wait_got(struct popper *p, size_t n, size_t want)
{
	for (int i = 0; i < 10000; i++) {
		size_t got = 0;
		for (size_t j = 0; j < n; j++)
			got += atomic_load(&p[j].got);
		if (got == want)
			return;
		usleep(1000);
	}
	fail_msg("the workers did not take %zu nodes", want);
}

static void start(struct popper *p, struct tp_queue *q, bool cheap)
{
	p->q = q;
	p->cheap = cheap;
	atomic_init(&p->got, 0);
	assert_int_equal(pthread_create(&p->thread, NULL, popper_main, p), 0);
}

static void finish(struct tp_queue *q, struct popper *p, size_t n)
{
	tp_queue_close(q);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_join(p[i].thread, NULL), 0);
	tp_queue_free(q);
}

/* Three expensive nodes for three blocked workers: three signals, none under the lock. */
static void test_push_signals_after_unlock(void **state)
{
	enum { N = 3 };
	struct tp_queue *q = tp_queue_new(8, NULL, NULL);
	struct tp_qnode nodes[N] = {0};
	struct popper p[N];

	(void)state;
	tp_queue_set_fairness(q, TP_FAIR_NONE);
	for (size_t i = 0; i < N; i++)
		start(&p[i], q, false);
	/* Blocked in pop: each one's short poll is over, so only a signal wakes it. */
	wait_idle(q, N, 0);
	for (size_t i = 0; i < N; i++) {
		nodes[i].deadline_ns = UINT64_MAX;
		nodes[i].next = i + 1 < N ? &nodes[i + 1] : NULL;
	}
	atomic_store(&signals, 0);
	atomic_store(&signals_under_lock, 0);
	assert_int_equal(tp_queue_push(q, &nodes[0], N), N);
	wait_got(p, N, N);
	assert_true(atomic_load(&signals) >= 1);
	assert_int_equal(atomic_load(&signals_under_lock), 0);
	finish(q, p, N);
}

/* Cheap work while a worker runs expensive work wakes the cheap lane, also after unlock. */
static void test_cheap_lane_signal_after_unlock(void **state)
{
	struct tp_queue *q = tp_queue_new(8, NULL, NULL);
	struct tp_qnode node = {.deadline_ns = UINT64_MAX, .batchable = true};
	struct popper lane;

	(void)state;
	tp_queue_set_fairness(q, TP_FAIR_NONE);
	start(&lane, q, true);
	wait_idle(q, 0, 1); /* cheap-only workers do not poll: blocked at once */
	tp_queue_running_expensive(q, +1);
	atomic_store(&signals, 0);
	atomic_store(&signals_under_lock, 0);
	assert_int_equal(tp_queue_push(q, &node, 1), 1);
	wait_got(&lane, 1, 1);
	assert_int_equal(atomic_load(&signals), 1);
	assert_int_equal(atomic_load(&signals_under_lock), 0);
	tp_queue_running_expensive(q, -1);
	finish(q, &lane, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_push_signals_after_unlock),
	        cmocka_unit_test(test_cheap_lane_signal_after_unlock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
