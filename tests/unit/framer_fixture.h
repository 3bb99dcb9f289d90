/* SPDX-License-Identifier: MIT */
/*
 * framer_fixture: the sink of events, its stops, the checks of the lines
 * and of the memory held, and the feed that resumes through every stop,
 * shared by the unit tests of framer.c (header only, so each test still
 * links only the layer it tests).
 */
#ifndef TP_FRAMER_FIXTURE_H
#define TP_FRAMER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

static inline uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*: reproducible across libcs. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static inline void sink_add(struct sink *s, bool too_long, const char *data, size_t len)
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

static inline void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ev[i].data);
	free(s->ev);
	memset(s, 0, sizeof(*s));
}

static inline int on_line(void *ctx, const char *line, size_t len, bool too_long)
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

static inline void expect_line(const struct sink *s, size_t i, const char *text, size_t len)
{
	if (i >= s->n)
		fail_msg("event %zu missing (%zu events)", i, s->n);
	if (s->ev[i].too_long)
		fail_msg("event %zu is too_long, want line \"%.*s\"", i, (int)len, text);
	if (s->ev[i].len != len || memcmp(s->ev[i].data, text, len) != 0)
		fail_msg("event %zu is \"%.*s\", want \"%.*s\"", i, (int)s->ev[i].len, s->ev[i].data,
		         (int)len, text);
}

static inline void expect_too_long(const struct sink *s, size_t i)
{
	if (i >= s->n)
		fail_msg("event %zu missing (%zu events)", i, s->n);
	if (!s->ev[i].too_long)
		fail_msg("event %zu is line \"%.*s\", want too_long", i, (int)s->ev[i].len, s->ev[i].data);
}

static inline size_t cap_bound(size_t max_line)
{
	size_t b = 2 * (max_line + 2);
	return b < 256 ? 256 : b;
}

/* Memory held while running (not stopped): one partial line, at most max_line + 1 bytes. */
static inline void check_bounded(const struct tp_framer *f)
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
static inline void drain(struct tp_framer *f, struct sink *s, int r)
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
static inline void feed(struct tp_framer *f, struct sink *s, const char *data, size_t len)
{
	size_t before = s->stops;
	int r = tp_framer_feed(f, data, len, on_line, s);

	assert_true(r == 0 || r == 1);
	if (r == 1)
		assert_true(s->stops > before);
	drain(f, s, r);
	check_bounded(f);
}

#endif
