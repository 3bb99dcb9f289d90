/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of spin.h: long polls while they find work; after a run of
 * misses only one idle moment in TP_SPIN_PROBE polls long; probes that find
 * work bring long polls back; short polls do not move the estimate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "spin.h"

/* Feed n idle moments whose long polls all hit or all miss; count the long ones. */
static unsigned run(struct tp_spin *s, unsigned n, bool hit)
{
	unsigned longs = 0;
	for (unsigned i = 0; i < n; i++) {
		if (tp_spin_long(s)) {
			tp_spin_record(s, hit);
			longs++;
		}
	}
	return longs;
}

static void test_hits_keep_polling(void **state)
{
	struct tp_spin s;

	(void)state;
	tp_spin_init(&s);
	assert_int_equal(run(&s, 1000, true), 1000);
}

static void test_misses_back_off_to_probes(void **state)
{
	struct tp_spin s;
	unsigned first;

	(void)state;
	tp_spin_init(&s);
	/* A few misses are tolerated (one slow moment must not stop polling)... */
	first = run(&s, 5, false);
	assert_int_equal(first, 5);
	/* ...a run of them is not: from then on one moment in TP_SPIN_PROBE. */
	run(&s, 100, false);
	assert_int_equal(run(&s, 160 * TP_SPIN_PROBE, false), 160);
}

static void test_probes_that_hit_bring_polling_back(void **state)
{
	struct tp_spin s;
	unsigned longs;

	(void)state;
	tp_spin_init(&s);
	run(&s, 1000, false);
	/* Work comes quickly again: within a few probes every moment polls long. */
	longs = run(&s, 20 * TP_SPIN_PROBE, true);
	assert_true(longs > 10 * TP_SPIN_PROBE);
	assert_int_equal(run(&s, 100, true), 100);
}

static void test_half_hits_is_the_threshold(void **state)
{
	struct tp_spin s;
	unsigned longs = 0;

	(void)state;
	tp_spin_init(&s);
	/* Three in four long polls find work: polling pays, it goes on. */
	for (unsigned i = 0; i < 4000; i++)
		if (tp_spin_long(&s)) {
			tp_spin_record(&s, i % 4 != 0);
			longs++;
		}
	assert_int_equal(longs, 4000);
	/* One in four: it does not; mostly short polls. */
	longs = 0;
	for (unsigned i = 0; i < 4000; i++)
		if (tp_spin_long(&s)) {
			tp_spin_record(&s, longs % 4 == 0);
			longs++;
		}
	assert_true(longs < 4000 / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hits_keep_polling),
	        cmocka_unit_test(test_misses_back_off_to_probes),
	        cmocka_unit_test(test_probes_that_hit_bring_polling_back),
	        cmocka_unit_test(test_half_hits_is_the_threshold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
