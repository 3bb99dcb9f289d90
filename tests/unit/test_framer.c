/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of framer.c: the same lines whatever the chunking (every split
 * point, every pair of split points, one byte at a time); CR passed
 * through; the buffer released whenever nothing is retained; bytes carried
 * from another framer framed on resume; and what a callback is told of the
 * input after its line.
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

static const char sample[] = "SLEEP 1\nECHO hi\r\n\nECHO  a b \n\r\nlast line\ntail";
#define SAMPLE_LEN (sizeof(sample) - 1)

static void expect_sample(const struct tp_framer *f, const struct sink *s)
{
	assert_int_equal(s->n, 6);
	expect_line(s, 0, "SLEEP 1", 7);
	expect_line(s, 1, "ECHO hi\r", 8);
	expect_line(s, 2, "", 0);
	expect_line(s, 3, "ECHO  a b ", 10);
	expect_line(s, 4, "\r", 1);
	expect_line(s, 5, "last line", 9);
	assert_int_equal(f->len, 4);
	assert_memory_equal(f->buf, "tail", 4);
}

static void test_splits(void **state)
{
	struct tp_framer f;
	struct sink s = {0};

	(void)state;
	tp_framer_init(&f, 64);
	feed(&f, &s, sample, SAMPLE_LEN);
	expect_sample(&f, &s);
	/* The partial line completes with the next chunk. */
	feed(&f, &s, "\n", 1);
	expect_line(&s, 6, "tail", 4);
	assert_null(f.buf);
	tp_framer_release(&f);
	sink_free(&s);

	/* Every split point, including the empty first and last pieces. */
	for (size_t i = 0; i <= SAMPLE_LEN; i++) {
		tp_framer_init(&f, 64);
		feed(&f, &s, sample, i);
		feed(&f, &s, sample + i, SAMPLE_LEN - i);
		expect_sample(&f, &s);
		tp_framer_release(&f);
		sink_free(&s);
	}
	/* Every pair of split points. */
	for (size_t i = 0; i <= SAMPLE_LEN; i++) {
		for (size_t j = i; j <= SAMPLE_LEN; j++) {
			tp_framer_init(&f, 64);
			feed(&f, &s, sample, i);
			feed(&f, &s, sample + i, j - i);
			feed(&f, &s, sample + j, SAMPLE_LEN - j);
			expect_sample(&f, &s);
			tp_framer_release(&f);
			sink_free(&s);
		}
	}
	/* One byte at a time. */
	tp_framer_init(&f, 64);
	for (size_t i = 0; i < SAMPLE_LEN; i++)
		feed(&f, &s, sample + i, 1);
	expect_sample(&f, &s);
	tp_framer_release(&f);
	sink_free(&s);
}

static void test_crlf_passed_through(void **state)
{
	static const char in[] = "ECHO x\r\n\r\na\r\r\n\rb\n";
	struct tp_framer f;
	struct sink s = {0};

	(void)state;
	tp_framer_init(&f, 64);
	feed(&f, &s, in, sizeof(in) - 1);
	assert_int_equal(s.n, 4);
	expect_line(&s, 0, "ECHO x\r", 7);
	expect_line(&s, 1, "\r", 1);
	expect_line(&s, 2, "a\r\r", 3);
	expect_line(&s, 3, "\rb", 2);
	assert_null(f.buf);
	tp_framer_release(&f);
	sink_free(&s);
}

static void test_buffer_released(void **state)
{
	struct tp_framer f;
	struct sink s = {0};

	(void)state;
	/* A zeroed framer and a double release are both fine. */
	memset(&f, 0, sizeof(f));
	tp_framer_release(&f);
	tp_framer_release(&f);

	tp_framer_init(&f, 64);
	assert_null(f.buf);
	assert_int_equal(f.cap, 0);
	feed(&f, &s, "x\n", 2);
	assert_null(f.buf);
	assert_int_equal(f.cap, 0);
	feed(&f, &s, "abc", 3);
	assert_non_null(f.buf);
	assert_int_equal(f.len, 3);
	feed(&f, &s, "d", 1);
	assert_int_equal(f.len, 4);
	feed(&f, &s, "\n", 1);
	assert_null(f.buf);
	assert_int_equal(f.len, 0);
	assert_int_equal(f.cap, 0);
	expect_line(&s, 1, "abcd", 4);

	/* Completing a retained line together with more whole lines. */
	feed(&f, &s, "ab", 2);
	feed(&f, &s, "c\nd\n", 4);
	assert_null(f.buf);
	assert_int_equal(s.n, 4);

	/* Stopped with unframed bytes: kept; resumed: released. */
	s.mode = STOP_ALWAYS;
	assert_int_equal(tp_framer_feed(&f, "e\nf\n", 4, on_line, &s), 1);
	assert_non_null(f.buf);
	assert_int_equal(f.len, 2);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 1);
	assert_null(f.buf);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_null(f.buf);
	assert_int_equal(s.n, 6);

	/* Discarding an over-long line holds nothing. */
	s.mode = STOP_NEVER;
	char big[200];
	memset(big, 'q', sizeof(big));
	feed(&f, &s, big, 30);
	assert_non_null(f.buf);
	feed(&f, &s, big, sizeof(big));
	assert_true(f.discarding);
	assert_null(f.buf);
	assert_int_equal(f.cap, 0);
	feed(&f, &s, "\n", 1);
	assert_false(f.discarding);
	assert_null(f.buf);
	tp_framer_release(&f);
	assert_null(f.buf);
	sink_free(&s);
}

/* Bytes carried from another framer are framed on resume, partial line and discarding included. */
static void test_preload(void **state)
{
	struct tp_framer f;
	struct sink s = {.mode = STOP_NEVER};

	(void)state;
	tp_framer_init(&f, 64);
	assert_int_equal(tp_framer_preload(&f, "l1\nl2\npar", 9, false), 0);
	assert_true(f.stopped);
	assert_int_equal(s.n, 0);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_int_equal(s.n, 2);
	expect_line(&s, 0, "l1", 2);
	expect_line(&s, 1, "l2", 2);
	assert_int_equal(tp_framer_feed(&f, "tial\n", 5, on_line, &s), 0);
	assert_int_equal(s.n, 3);
	expect_line(&s, 2, "partial", 7);
	tp_framer_release(&f);

	/* Inside an over-long line: dropped up to its newline, not reported again. */
	tp_framer_init(&f, 64);
	assert_int_equal(tp_framer_preload(&f, "xxx\nok", 6, true), 0);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(tp_framer_feed(&f, "\n", 1, on_line, &s), 0);
	assert_int_equal(s.n, 4);
	expect_line(&s, 3, "ok", 2);
	tp_framer_release(&f);

	/* Nothing carried but the discarding. */
	tp_framer_init(&f, 64);
	assert_int_equal(tp_framer_preload(&f, NULL, 0, true), 0);
	assert_int_equal(tp_framer_resume(&f, on_line, &s), 0);
	assert_int_equal(tp_framer_feed(&f, "rest\nnext\n", 10, on_line, &s), 0);
	assert_int_equal(s.n, 5);
	expect_line(&s, 4, "next", 4);
	tp_framer_release(&f);
	sink_free(&s);
}

/* What the ahead callback saw: each line's `ahead`, and that the bytes it names follow the line. */
struct ahead_sink {
	struct tp_framer *f;
	size_t ahead[8];
	size_t n;
};

static int on_line_ahead(void *ctx, const char *line, size_t len, bool too_long)
{
	struct ahead_sink *s = ctx;

	assert_false(too_long);
	assert_true(s->n < 8);
	s->ahead[s->n++] = s->f->ahead;
	if (s->f->ahead)
		assert_int_equal(line[len], '\n'); /* line + len + 1 on is the input after it */
	return 0;
}

/* While a callback runs, `ahead` counts the input bytes after its line in the same feed. */
static void test_ahead(void **state)
{
	struct tp_framer f;
	struct ahead_sink s = {&f, {0}, 0};
	static const char in[] = "a\nbb\nccc";

	(void)state;
	tp_framer_init(&f, 64);
	assert_int_equal(tp_framer_feed(&f, in, sizeof(in) - 1, on_line_ahead, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ahead[0], 6); /* "bb\nccc" */
	assert_int_equal(s.ahead[1], 3); /* "ccc", a partial line */
	/* A retained partial line completed by the next feed: what follows is not at hand. */
	assert_int_equal(tp_framer_feed(&f, "\nd\n", 3, on_line_ahead, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.ahead[2], 0);
	assert_int_equal(s.ahead[3], 0); /* the last line of its feed */
	assert_int_equal(f.ahead, 0);
	tp_framer_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_splits),          cmocka_unit_test(test_crlf_passed_through),
	        cmocka_unit_test(test_buffer_released), cmocka_unit_test(test_preload),
	        cmocka_unit_test(test_ahead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
