/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of gate.c: threads wait until the gate opens (true) or closes
 * (false); the first word is the last.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "gate.h"

struct waiter {
	struct tp_gate *gate;
	pthread_t thread;
	bool result, done;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	w->result = tp_gate_wait(w->gate);
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Start n waiters; none returns while the gate is shut; say word; all return its answer. */
static void run(void (*word)(struct tp_gate *), bool want)
{
	struct tp_gate g;
	struct waiter w[4];
	struct timespec ms20 = {0, 20000000};

	tp_gate_init(&g);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){.gate = &g};
		assert_int_equal(pthread_create(&w[i].thread, NULL, wait_main, &w[i]), 0);
	}
	nanosleep(&ms20, NULL);
	for (int i = 0; i < 4; i++)
		assert_false(__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE));
	word(&g);
	for (int i = 0; i < 4; i++) {
		pthread_join(w[i].thread, NULL);
		assert_int_equal(w[i].result, want);
	}
	assert_int_equal(tp_gate_wait(&g), want); /* and whoever comes later */
	tp_gate_release(&g);
}

static void test_open_lets_them_run(void **state)
{
	(void)state;
	run(tp_gate_open, true);
}

static void test_close_sends_them_back(void **state)
{
	(void)state;
	run(tp_gate_close, false);
}

static void test_the_first_word_is_the_last(void **state)
{
	struct tp_gate g;

	(void)state;
	tp_gate_init(&g);
	tp_gate_close(&g);
	tp_gate_open(&g);
	assert_false(tp_gate_wait(&g));
	tp_gate_release(&g);
	tp_gate_init(&g);
	tp_gate_open(&g);
	tp_gate_close(&g);
	assert_true(tp_gate_wait(&g));
	tp_gate_release(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_open_lets_them_run),
	        cmocka_unit_test(test_close_sends_them_back),
	        cmocka_unit_test(test_the_first_word_is_the_last),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
