/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of framer.c's stop and resume: a stop after every line or
 * after n, without loss or reordering; a resume when running; and a seeded
 * random comparison of chunkings and stops against a plain reference
 * framer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "framer.h"
#include "framer_fixture.h"

static void expect_same(const struct sink *got, const struct sink *want, const char *what)
{
	if (got->n != want->n)
		fail_msg("%s: %zu events, want %zu", what, got->n, want->n);
	for (size_t i = 0; i < want->n; i++) {
		const struct event *g = &got->ev[i], *w = &want->ev[i];
		if (g->too_long != w->too_long || g->len != w->len || memcmp(g->data, w->data, w->len) != 0)
			fail_msg("%s: event %zu differs", what, i);
	}
}

/* The reference: split on "\n"; a line is too long past max_line plus its "\r". */
static void model(struct sink *s, const char *data, size_t len, size_t max_line)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		size_t ll = i - start;
		size_t lim = max_line + (ll > 0 && data[i - 1] == '\r');
		if (ll > lim)
			sink_add(s, true, NULL, 0);
		else
			sink_add(s, false, data + start, ll);
		start = i + 1;
	}
}

static void test_stop_every_line(void **state)
{
	struct tp_framer f;
	struct sink s = {.mode = STOP_ALWAYS};

	(void)state;
	tp_framer_init(&f, 64);
	assert_int_equal(tp_framer_feed(&f, "l1\nl2\nl3\n", 9, on_line, &s), 1);
	assert_true(f.stopped);
	assert_int_equal(s.n, 1);
	expect_line(&s, 0, "l1", 2);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 1);
	assert_int_equal(s.n, 2);
	expect_line(&s, 1, "l2", 2);
	/* Stopping on the last line of the chunk leaves nothing to keep. */
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 1);
	assert_int_equal(s.n, 3);
	expect_line(&s, 2, "l3", 2);
	assert_true(f.stopped);
	assert_int_equal(f.len, 0);
	assert_null(f.buf);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_false(f.stopped);
	assert_int_equal(s.n, 3);

	/* More data after resume, ending in a partial line. */
	assert_int_equal(tp_framer_feed(&f, "l4\nl5", 5, on_line, &s), 1);
	expect_line(&s, 3, "l4", 2);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(f.len, 2);
	assert_memory_equal(f.buf, "l5", 2);
	/* The retained partial line completes, and the stop after it keeps the rest. */
	assert_int_equal(tp_framer_feed(&f, "\nl6\nl7", 6, on_line, &s), 1);
	expect_line(&s, 4, "l5", 2);
	assert_int_equal(s.n, 5);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 1);
	expect_line(&s, 5, "l6", 2);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_int_equal(s.n, 6);
	assert_memory_equal(f.buf, "l7", 2);
	tp_framer_release(&f);
	sink_free(&s);
}

static void test_stop_after_n(void **state)
{
	struct tp_framer f;
	struct sink s = {.mode = STOP_AFTER_N, .stop_after = 2};

	(void)state;
	tp_framer_init(&f, 64);
	assert_int_equal(tp_framer_feed(&f, "a\nb\nc\nd\ne", 9, on_line, &s), 1);
	assert_int_equal(s.n, 2);
	assert_true(f.stopped);
	/* Feeding while stopped is not allowed: the rest waits in buf. */
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.buf, "c\nd\ne", 5);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_int_equal(s.n, 4);
	expect_line(&s, 0, "a", 1);
	expect_line(&s, 1, "b", 1);
	expect_line(&s, 2, "c", 1);
	expect_line(&s, 3, "d", 1);
	assert_int_equal(f.len, 1);
	assert_memory_equal(f.buf, "e", 1);
	feed(&f, &s, "\n", 1);
	expect_line(&s, 4, "e", 1);
	tp_framer_release(&f);
	sink_free(&s);

	/* A stop on a too-long report keeps what follows it. */
	char in[64];
	memset(in, 'z', 20);
	memcpy(in + 20, "\nok\nyes\n", 8);
	s = (struct sink){.mode = STOP_AFTER_N, .stop_after = 1};
	tp_framer_init(&f, 8);
	assert_int_equal(tp_framer_feed(&f, in, 28, on_line, &s), 1);
	assert_int_equal(s.n, 1);
	expect_too_long(&s, 0);
	drain(&f, &s, 1);
	assert_int_equal(s.n, 3);
	expect_line(&s, 1, "ok", 2);
	expect_line(&s, 2, "yes", 3);
	tp_framer_release(&f);
	sink_free(&s);

	/* A stop on the early report of an unfinished over-long line. */
	s = (struct sink){.mode = STOP_AFTER_N, .stop_after = 1};
	tp_framer_init(&f, 8);
	assert_int_equal(tp_framer_feed(&f, in, 15, on_line, &s), 1);
	expect_too_long(&s, 0);
	assert_null(f.buf);
	drain(&f, &s, 1);
	feed(&f, &s, in + 15, 13);
	assert_int_equal(s.n, 3);
	expect_line(&s, 1, "ok", 2);
	expect_line(&s, 2, "yes", 3);
	tp_framer_release(&f);
	sink_free(&s);
}

/* Random lines, chunkings and stops, against the reference framer. */
static void test_random_against_model(void **state)
{
	static const char alphabet[] = "ab \r\r\n";
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		size_t max_line = 1 + next_rand(&rng) % 24;
		size_t cap = 4096, len = 0;
		char *in = malloc(cap);
		struct sink want = {0}, got = {.mode = STOP_RANDOM, .rng = next_rand(&rng) | 1};
		struct tp_framer f;

		assert_non_null(in);
		/* Lines around the limit, sometimes far over it, all ending in "\n". */
		size_t nlines = 1 + next_rand(&rng) % 12;
		for (size_t l = 0; l < nlines; l++) {
			size_t ll = next_rand(&rng) % (max_line + 4);
			if (next_rand(&rng) % 8 == 0)
				ll = max_line * (2 + next_rand(&rng) % 20);
			for (size_t i = 0; i < ll && len < cap - 1; i++)
				in[len++] = alphabet[next_rand(&rng) % 5];
			in[len++] = '\n';
			if (next_rand(&rng) % 5 == 0 && len < cap)
				in[len++] = alphabet[next_rand(&rng) % 6];
			if (len > cap - max_line * 42 - 8)
				break;
		}
		if (in[len - 1] != '\n')
			in[len++] = '\n';
		model(&want, in, len, max_line);

		tp_framer_init(&f, max_line);
		for (size_t off = 0; off < len;) {
			size_t most = next_rand(&rng) % 2 ? 4 : len;
			size_t n = 1 + next_rand(&rng) % most;
			if (n > len - off)
				n = len - off;
			feed(&f, &got, in + off, n);
			off += n;
		}
		expect_same(&got, &want, "random");
		assert_int_equal(f.len, 0);
		assert_null(f.buf);
		tp_framer_release(&f);
		sink_free(&want);
		sink_free(&got);
		free(in);
	}
}

static void test_resume_when_running(void **state)
{
	struct tp_framer f;
	struct sink s = {0};

	(void)state;
	tp_framer_init(&f, 64);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	feed(&f, &s, "part", 4);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(f.len, 4);
	assert_memory_equal(f.buf, "part", 4);
	tp_framer_release(&f);
	sink_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stop_every_line),
	        cmocka_unit_test(test_stop_after_n),
	        cmocka_unit_test(test_random_against_model),
	        cmocka_unit_test(test_resume_when_running),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
