/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of framer.c's line limit: its exact boundary, with and
 * without CR; over-long lines reported once with memory kept bounded, fed
 * whole, one byte at a time or up to a 10 MB line; a partial line's bound;
 * and the limit changed between lines.
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

/* Build the limit test input for max_line 16; its events are checked by expect_limits. */
static size_t limits_input(char *in)
{
	size_t n = 0;

	memset(in + n, 'A', 16), n += 16, in[n++] = '\n'; /* exactly max_line */
	memset(in + n, 'B', 17), n += 17, in[n++] = '\n'; /* max_line + 1 */
	memcpy(in + n, "ok\n", 3), n += 3;
	memset(in + n, 'C', 16), n += 16, memcpy(in + n, "\r\n", 2), n += 2; /* max_line + CR */
	memset(in + n, 'D', 17), n += 17, memcpy(in + n, "\r\n", 2), n += 2;
	memset(in + n, 'E', 100), n += 100, in[n++] = '\n';
	/* 15 bytes and a CR (max_line), then the CR LF line end */
	memset(in + n, 'F', 15), n += 15, memcpy(in + n, "\r\r\n", 3), n += 3;
	memcpy(in + n, "fine\n", 5), n += 5;
	return n;
}

static void expect_limits(const struct sink *s)
{
	char c16[17], f16[17];

	memset(c16, 'C', 16), c16[16] = '\r';
	memset(f16, 'F', 15), f16[15] = '\r', f16[16] = '\r';
	assert_int_equal(s->n, 8);
	expect_line(s, 0, "AAAAAAAAAAAAAAAA", 16);
	expect_too_long(s, 1);
	expect_line(s, 2, "ok", 2);
	expect_line(s, 3, c16, 17);
	expect_too_long(s, 4);
	expect_too_long(s, 5);
	expect_line(s, 6, f16, 17);
	expect_line(s, 7, "fine", 4);
}

static void test_max_line(void **state)
{
	char in[256];
	size_t len = limits_input(in);
	struct tp_framer f;
	struct sink s = {0};

	(void)state;
	tp_framer_init(&f, 16);
	feed(&f, &s, in, len);
	expect_limits(&s);
	tp_framer_release(&f);
	sink_free(&s);

	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			tp_framer_init(&f, 16);
			feed(&f, &s, in, i);
			feed(&f, &s, in + i, j - i);
			feed(&f, &s, in + j, len - j);
			expect_limits(&s);
			assert_null(f.buf);
			tp_framer_release(&f);
			sink_free(&s);
		}
	}

	tp_framer_init(&f, 16);
	for (size_t i = 0; i < len; i++)
		feed(&f, &s, in + i, 1);
	expect_limits(&s);
	tp_framer_release(&f);
	sink_free(&s);

	/* max_line 0 admits only empty lines (with or without CR). */
	tp_framer_init(&f, 0);
	feed(&f, &s, "\n\r\na\n\n", 6);
	assert_int_equal(s.n, 4);
	expect_line(&s, 0, "", 0);
	expect_line(&s, 1, "\r", 1);
	expect_too_long(&s, 2);
	expect_line(&s, 3, "", 0);
	tp_framer_release(&f);
	sink_free(&s);
}

/* An over-long line fed one byte at a time: one report, before its newline, and bounded memory. */
static void overlong_bytewise(size_t max_line, size_t line_len)
{
	struct tp_framer f;
	struct sink s = {0};
	char x = 'x';

	tp_framer_init(&f, max_line);
	for (size_t i = 0; i < line_len; i++) {
		feed(&f, &s, &x, 1);
		if (i + 1 >= max_line + 1 && s.n != 1)
			fail_msg("after %zu bytes of a line over %zu: %zu events", i + 1, max_line, s.n);
		if (s.n)
			assert_null(f.buf);
	}
	assert_int_equal(s.n, 1);
	expect_too_long(&s, 0);
	feed(&f, &s, "\n", 1);
	feed(&f, &s, "next\n", 5);
	assert_int_equal(s.n, 2);
	expect_line(&s, 1, "next", 4);
	assert_null(f.buf);
	tp_framer_release(&f);
	sink_free(&s);
}

/*
 * framer.h: "at most max_line + 1 bytes for a partial line", and an
 * over-long line "is reported ... as soon as that is known".  A partial line
 * of max_line + 2 bytes cannot become valid (the most is max_line bytes and
 * a "\r"), so by then it must be reported and nothing held, whatever the
 * chunking.
 */
static void partial_bound(size_t max_line, size_t first)
{
	char in[64];
	struct tp_framer f;
	struct sink s = {0};

	assert_true(max_line + 2 <= sizeof(in) && first <= max_line + 2);
	memset(in, 'p', sizeof(in));
	tp_framer_init(&f, max_line);
	feed(&f, &s, in, first);
	for (size_t n = first; n < max_line + 2; n++)
		feed(&f, &s, in + n, 1);
	if (f.len > max_line + 1)
		fail_msg("max_line %zu, fed %zu then bytewise: a partial line of %zu bytes is held", max_line,
		         first, f.len);
	if (s.n != 1)
		fail_msg("max_line %zu, fed %zu then bytewise: %zu reports after %zu bytes", max_line, first,
		         s.n, max_line + 2);
	expect_too_long(&s, 0);
	tp_framer_release(&f);
	sink_free(&s);
}

static void test_partial_line_bound(void **state)
{
	(void)state;
	/* In one chunk. */
	partial_bound(16, 18);
	partial_bound(0, 2);
	/* Retained first, then completed past the limit. */
	partial_bound(16, 17);
	partial_bound(16, 1);
	partial_bound(0, 1);
}

/*
 * PROTOCOL.md: a line over max_line_bytes is answered as soon as it passes
 * the limit, whether or not its line end ever comes.  A partial line of
 * max_line + 1 bytes is already over unless its last byte is the "\r" of a
 * "\r\n" to come: reported then, whatever the chunking; one ending in "\r"
 * is held, and is a line when its "\n" comes.
 */
static void test_partial_line_one_over(void **state)
{
	char in[18];
	struct tp_framer f;
	struct sink s = {0};

	(void)state;
	memset(in, 'p', sizeof(in));
	for (size_t split = 0; split <= 17; split++) {
		tp_framer_init(&f, 16);
		feed(&f, &s, in, split);
		feed(&f, &s, in + split, 17 - split);
		if (s.n != 1)
			fail_msg("17 bytes split at %zu, no line end, max_line 16: %zu reports", split, s.n);
		expect_too_long(&s, 0);
		assert_null(f.buf);
		tp_framer_release(&f);
		sink_free(&s);
	}
	in[16] = '\r';
	for (size_t split = 0; split <= 17; split++) {
		tp_framer_init(&f, 16);
		feed(&f, &s, in, split);
		feed(&f, &s, in + split, 17 - split);
		assert_int_equal(s.n, 0);
		feed(&f, &s, "\n", 1);
		assert_int_equal(s.n, 1);
		expect_line(&s, 0, in, 17);
		tp_framer_release(&f);
		sink_free(&s);
	}
}

static void test_overlong_bytewise(void **state)
{
	(void)state;
	overlong_bytewise(16, 5000);
	overlong_bytewise(100, 100000);
	overlong_bytewise(1000, 100000);
	overlong_bytewise(4095, 20000);
}

/* A 10 MB line in chunks of chunk bytes (the first one shorter), then a good line. */
static void ten_mb_line(size_t first, size_t chunk)
{
	const size_t big = 10u << 20;
	const size_t max_line = 4096;
	char *in = malloc(big + 16);
	struct tp_framer f;
	struct sink s = {0};
	size_t len, off = 0, peak = 0;

	assert_non_null(in);
	memset(in, 'y', big);
	memcpy(in + big, "\nafter\n", 7);
	len = big + 7;
	tp_framer_init(&f, max_line);
	if (first) {
		feed(&f, &s, in, first);
		off = first;
	}
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		feed(&f, &s, in + off, n);
		off += n;
		if (f.cap > peak)
			peak = f.cap;
	}
	assert_int_equal(s.n, 2);
	expect_too_long(&s, 0);
	expect_line(&s, 1, "after", 5);
	assert_true(peak <= cap_bound(max_line));
	assert_null(f.buf);
	tp_framer_release(&f);
	sink_free(&s);
	free(in);
}

static void test_10mb_line(void **state)
{
	(void)state;
	ten_mb_line(0, 65536);
	ten_mb_line(4000, 65536); /* a partial line retained, then completed past the limit */
	ten_mb_line(4097, 4097);
	ten_mb_line(0, 11u << 20); /* all at once */
}

static void test_set_max_line(void **state)
{
	struct tp_framer f;
	struct sink s = {0};

	(void)state;
	tp_framer_init(&f, 8);
	assert_int_equal(f.max_line, 8);
	feed(&f, &s, "123456789\n", 10);
	expect_too_long(&s, 0);
	tp_framer_set_max_line(&f, 16);
	assert_int_equal(f.max_line, 16);
	feed(&f, &s, "123456789\n", 10);
	expect_line(&s, 1, "123456789", 9);
	tp_framer_set_max_line(&f, 4);
	feed(&f, &s, "12345\n1234\n", 11);
	expect_too_long(&s, 2);
	expect_line(&s, 3, "1234", 4);
	/* Same through the retained-line path. */
	feed(&f, &s, "123", 3);
	feed(&f, &s, "45\n", 3);
	expect_too_long(&s, 4);
	feed(&f, &s, "12", 2);
	feed(&f, &s, "34\n", 3);
	expect_line(&s, 5, "1234", 4);
	assert_int_equal(s.n, 6);
	tp_framer_release(&f);
	sink_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_max_line),
	        cmocka_unit_test(test_partial_line_bound),
	        cmocka_unit_test(test_partial_line_one_over),
	        cmocka_unit_test(test_overlong_bytewise),
	        cmocka_unit_test(test_10mb_line),
	        cmocka_unit_test(test_set_max_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
