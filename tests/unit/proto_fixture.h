/* SPDX-License-Identifier: MIT */
/*
 * proto_fixture: lines parsed from heap copies of exactly their length (so
 * a read past the end shows up under valgrind or ASan), and the checks of
 * their outcome and error replies the unit tests of proto.c share (header
 * only, so each test still links only the layer it tests).
 */
#ifndef TP_PROTO_FIXTURE_H
#define TP_PROTO_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

#define MAX_MS 10000u

/* A parsed line: the heap copy the request points into, and the outcome. */
struct parsed {
	char *line;
	size_t len;
	enum tp_proto_status st;
	struct tp_proto_req req;
};

static inline void parse_bytes(struct parsed *p, const char *bytes, size_t len, uint32_t max_ms)
{
	memset(p, 0, sizeof(*p));
	p->line = malloc(len ? len : 1);
	assert_non_null(p->line);
	memcpy(p->line, bytes, len);
	p->len = len;
	p->st = tp_proto_parse(p->line, len, max_ms, &p->req);
}

static inline void parse_str(struct parsed *p, const char *s)
{
	parse_bytes(p, s, strlen(s), MAX_MS);
}

static inline void done(struct parsed *p)
{
	free(p->line);
	p->line = NULL;
}

static inline enum tp_proto_status status_of(const char *s, uint32_t max_ms)
{
	struct parsed p;
	enum tp_proto_status st;

	parse_bytes(&p, s, strlen(s), max_ms);
	st = p.st;
	done(&p);
	return st;
}

static inline void expect_status(const char *s, enum tp_proto_status want)
{
	enum tp_proto_status st = status_of(s, MAX_MS);
	if (st != want)
		fail_msg("\"%s\": status %d, want %d", s, (int)st, (int)want);
}

/* s must parse as SLEEP ms under max_ms. */
static inline void expect_sleep(const char *s, uint32_t max_ms, uint32_t ms)
{
	struct parsed p;

	parse_bytes(&p, s, strlen(s), max_ms);
	if (p.st != TP_PROTO_OK)
		fail_msg("\"%s\": status %d, want OK", s, (int)p.st);
	assert_int_equal(p.req.op, TP_OP_SLEEP);
	if (p.req.sleep_ms != ms)
		fail_msg("\"%s\": sleep_ms %u, want %u", s, p.req.sleep_ms, ms);
	done(&p);
}

/* bytes must parse as ECHO whose text is text[0..text_len), pointing into the line. */
static inline void expect_echo(const char *bytes, size_t len, const char *text, size_t text_len)
{
	struct parsed p;

	parse_bytes(&p, bytes, len, MAX_MS);
	assert_int_equal(p.st, TP_PROTO_OK);
	assert_int_equal(p.req.op, TP_OP_ECHO);
	assert_int_equal(p.req.text_len, text_len);
	assert_non_null(p.req.text);
	assert_true(p.req.text >= p.line && p.req.text + text_len <= p.line + len);
	assert_memory_equal(p.req.text, text, text_len);
	done(&p);
}

/* The error reply for status, checked to be one line within TP_PROTO_MAX_ERR. */
static inline void format_error(enum tp_proto_status st, const char *op, size_t op_len, char *out)
{
	char buf[TP_PROTO_MAX_ERR + 16];
	size_t n;

	memset(buf, 'Z', sizeof(buf));
	n = tp_proto_format_error(st, op, op_len, buf);
	assert_true(n >= 2 && n <= TP_PROTO_MAX_ERR);
	assert_int_equal(buf[n - 1], '\n');
	assert_null(memchr(buf, '\n', n - 1));
	for (size_t i = n; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
	memcpy(out, buf, n);
	out[n] = '\0';
}

/* The reply to an unknown op, from parsing the line. */
static inline void unknown_op_reply(const char *bytes, size_t len, char *out)
{
	struct parsed p;

	parse_bytes(&p, bytes, len, MAX_MS);
	assert_int_equal(p.st, TP_PROTO_UNKNOWN_OP);
	assert_ptr_equal(p.req.op_name, p.line);
	format_error(p.st, p.req.op_name, p.req.op_len, out);
	done(&p);
}

#endif
