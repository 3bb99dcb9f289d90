/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of agent.c: the answers' format (drain wins, down carries
 * ready, the weight clamped to 1..100), and the weight: 100 when idle,
 * falling under a full queue, never below 1, smoothed over time (one busy
 * sample does not drop it at once) and steady under small noise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"

#define MS 1000000ull

static void test_format(void **state)
{
	char line[TP_AGENT_LINE_MAX];
	(void)state;
	assert_int_equal(tp_agent_format(false, true, true, 80, line), strlen("ready up 80%\n"));
	assert_string_equal(line, "ready up 80%\n");
	tp_agent_format(true, true, true, 80, line);
	assert_string_equal(line, "drain\n");
	tp_agent_format(true, false, false, 80, line);
	assert_string_equal(line, "drain\n");
	tp_agent_format(false, false, true, 80, line);
	assert_string_equal(line, "ready down\n");
	tp_agent_format(false, true, true, 0, line);
	assert_string_equal(line, "ready up 1%\n");
	tp_agent_format(false, true, true, 1000, line);
	assert_string_equal(line, "ready up 100%\n");
	/* Past agent.ready_s: no "ready", so a drain set on HAProxy's runtime API holds. */
	assert_int_equal(tp_agent_format(false, true, false, 80, line), strlen("up 80%\n"));
	assert_string_equal(line, "up 80%\n");
	tp_agent_format(false, false, false, 80, line);
	assert_string_equal(line, "down\n");
}

static void test_weight(void **state)
{
	struct tp_agent_load st = {0};
	struct tp_agent_sample idle = {.workers = 8}, full = {.workers = 1, .workers_busy = 1, .queue_depth = 50};
	uint64_t t = 1000 * MS;
	unsigned w;
	(void)state;

	assert_int_equal(tp_agent_weight(&st), 100);
	assert_int_equal(tp_agent_update(&st, &idle, t), 100);
	/* One second of full pressure moves it part of the way only (tau 3 s). */
	w = tp_agent_update(&st, &full, t += 1000 * MS);
	assert_in_range(w, 60, 80);
	for (int i = 0; i < 30; i++)
		w = tp_agent_update(&st, &full, t += 1000 * MS);
	assert_int_equal(w, 1);
	/* A refusal is full pressure even with an empty queue. */
	struct tp_agent_sample refused = {.workers = 8, .rejected = 1};
	memset(&st, 0, sizeof(st));
	assert_int_equal(tp_agent_update(&st, &refused, t), 1);
	/* Back to idle: it climbs back to 100. */
	for (int i = 0; i < 40; i++)
		w = tp_agent_update(&st, &idle, t += 1000 * MS);
	assert_int_equal(w, 100);
}

static void test_noise_is_ignored(void **state)
{
	struct tp_agent_load st = {0};
	struct tp_agent_sample a = {.workers = 8, .workers_busy = 4}, b = {.workers = 8, .workers_busy = 5};
	uint64_t t = 0;
	unsigned first, w;
	(void)state;

	first = tp_agent_update(&st, &a, t);
	for (int i = 0; i < 50; i++) {
		w = tp_agent_update(&st, i % 2 ? &a : &b, t += 500 * MS);
		assert_int_equal(w, first); /* 4 or 5 busy of 8: less than a step apart */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_format),
	        cmocka_unit_test(test_weight),
	        cmocka_unit_test(test_noise_is_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
