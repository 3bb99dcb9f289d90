/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of framer.c: the same lines whatever the chunking (every split
 * point, every pair of split points, one byte at a time); the line limit
 * and its exact boundary; over-long lines reported once with memory kept
 * bounded, up to a 10 MB line; stop and resume without loss or reordering;
 * the buffer released whenever nothing is retained; and a seeded random
 * comparison against a plain reference framer.
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

/* One callback: a line (copied), or a too-long report. */
struct event {
	bool too_long;
	char *data;
	size_t len;
};

enum stop_mode { STOP_NEVER, STOP_ALWAYS, STOP_AFTER_N, STOP_RANDOM };

struct sink {
	struct event *ev;
	size_t n, cap;
	enum stop_mode mode;
	size_t stop_after; /* STOP_AFTER_N: stop once, after this many events */
	uint64_t rng;      /* STOP_RANDOM */
	size_t stops;
};

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*: reproducible across libcs. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void sink_add(struct sink *s, bool too_long, const char *data, size_t len)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->ev = realloc(s->ev, s->cap * sizeof(*s->ev));
		assert_non_null(s->ev);
	}
	struct event *e = &s->ev[s->n++];
	e->too_long = too_long;
	e->len = len;
	e->data = malloc(len ? len : 1);
	assert_non_null(e->data);
	if (len)
		memcpy(e->data, data, len);
}

static void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ev[i].data);
	free(s->ev);
	memset(s, 0, sizeof(*s));
}

static int on_line(void *ctx, const char *line, size_t len, bool too_long)
{
	struct sink *s = ctx;
	bool stop = false;

	if (too_long) {
		assert_null(line);
		assert_int_equal(len, 0);
	} else if (len) {
		assert_non_null(line);
		assert_null(memchr(line, '\n', len));
	}
	sink_add(s, too_long, line, len);
	switch (s->mode) {
	case STOP_NEVER:
		break;
	case STOP_ALWAYS:
		stop = true;
		break;
	case STOP_AFTER_N:
		stop = s->n == s->stop_after;
		break;
	case STOP_RANDOM:
		stop = next_rand(&s->rng) % 3 == 0;
		break;
	}
	s->stops += stop;
	return stop;
}

static void expect_line(const struct sink *s, size_t i, const char *text, size_t len)
{
	if (i >= s->n)
		fail_msg("event %zu missing (%zu events)", i, s->n);
	if (s->ev[i].too_long)
		fail_msg("event %zu is too_long, want line \"%.*s\"", i, (int)len, text);
	if (s->ev[i].len != len || memcmp(s->ev[i].data, text, len) != 0)
		fail_msg("event %zu is \"%.*s\", want \"%.*s\"", i, (int)s->ev[i].len, s->ev[i].data,
		         (int)len, text);
}

static void expect_too_long(const struct sink *s, size_t i)
{
	if (i >= s->n)
		fail_msg("event %zu missing (%zu events)", i, s->n);
	if (!s->ev[i].too_long)
		fail_msg("event %zu is line \"%.*s\", want too_long", i, (int)s->ev[i].len, s->ev[i].data);
}

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

static size_t cap_bound(size_t max_line)
{
	size_t b = 2 * (max_line + 2);
	return b < 256 ? 256 : b;
}

/* Memory held while running (not stopped): one partial line, at most max_line + 1 bytes. */
static void check_bounded(const struct tp_framer *f)
{
	assert_false(f->stopped);
	if (f->len > f->max_line + 1)
		fail_msg("retains %zu bytes with max_line %zu", f->len, f->max_line);
	if (f->cap > cap_bound(f->max_line))
		fail_msg("cap %zu with max_line %zu", f->cap, f->max_line);
	if (f->len == 0) {
		assert_null(f->buf);
		assert_int_equal(f->cap, 0);
	}
	if (f->discarding)
		assert_int_equal(f->len, 0);
}

/* Resume until the framer runs again; every stop must have come from the sink. */
static void drain(struct tp_framer *f, struct sink *s, int r)
{
	size_t guard = 0;

	while (r == 1) {
		assert_true(f->stopped);
		r = tp_framer_resume(f, on_line, s);
		assert_true(++guard < 10000000);
	}
	assert_int_equal(r, 0);
	assert_false(f->stopped);
}

/* Feed one chunk and resume through every stop. */
static void feed(struct tp_framer *f, struct sink *s, const char *data, size_t len)
{
	size_t before = s->stops;
	int r = tp_framer_feed(f, data, len, on_line, s);

	assert_true(r == 0 || r == 1);
	if (r == 1)
		assert_true(s->stops > before);
	drain(f, s, r);
	check_bounded(f);
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
	        cmocka_unit_test(test_splits),
	        cmocka_unit_test(test_crlf_passed_through),
	        cmocka_unit_test(test_max_line),
	        cmocka_unit_test(test_partial_line_bound),
	        cmocka_unit_test(test_partial_line_one_over),
	        cmocka_unit_test(test_overlong_bytewise),
	        cmocka_unit_test(test_10mb_line),
	        cmocka_unit_test(test_stop_every_line),
	        cmocka_unit_test(test_stop_after_n),
	        cmocka_unit_test(test_random_against_model),
	        cmocka_unit_test(test_buffer_released),
	        cmocka_unit_test(test_set_max_line),
	        cmocka_unit_test(test_resume_when_running),
	        cmocka_unit_test(test_preload),
	        cmocka_unit_test(test_ahead),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
