/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto.c: every way a request line can be rejected, the
 * boundaries of the SLEEP argument, ECHO text kept byte for byte, the line
 * ending, case-insensitive ops, and the exact text and length of every
 * reply.  Lines are parsed from heap copies of exactly their length, so a
 * read past the end shows up under valgrind or ASan.
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

#include "decimal.h"
#include "proto.h"

#define MAX_MS 10000u

/* A parsed line: the heap copy the request points into, and the outcome. */
struct parsed {
	char *line;
	size_t len;
	enum tp_proto_status st;
	struct tp_proto_req req;
};

static void parse_bytes(struct parsed *p, const char *bytes, size_t len, uint32_t max_ms)
{
	memset(p, 0, sizeof(*p));
	p->line = malloc(len ? len : 1);
	assert_non_null(p->line);
	memcpy(p->line, bytes, len);
	p->len = len;
	p->st = tp_proto_parse(p->line, len, max_ms, &p->req);
}

static void parse_str(struct parsed *p, const char *s)
{
	parse_bytes(p, s, strlen(s), MAX_MS);
}

static void done(struct parsed *p)
{
	free(p->line);
	p->line = NULL;
}

static enum tp_proto_status status_of(const char *s, uint32_t max_ms)
{
	struct parsed p;
	enum tp_proto_status st;

	parse_bytes(&p, s, strlen(s), max_ms);
	st = p.st;
	done(&p);
	return st;
}

static void expect_status(const char *s, enum tp_proto_status want)
{
	enum tp_proto_status st = status_of(s, MAX_MS);
	if (st != want)
		fail_msg("\"%s\": status %d, want %d", s, (int)st, (int)want);
}

/* s must parse as SLEEP ms under max_ms. */
static void expect_sleep(const char *s, uint32_t max_ms, uint32_t ms)
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
static void expect_echo(const char *bytes, size_t len, const char *text, size_t text_len)
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
static void format_error(enum tp_proto_status st, const char *op, size_t op_len, char *out)
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
static void unknown_op_reply(const char *bytes, size_t len, char *out)
{
	struct parsed p;

	parse_bytes(&p, bytes, len, MAX_MS);
	assert_int_equal(p.st, TP_PROTO_UNKNOWN_OP);
	assert_ptr_equal(p.req.op_name, p.line);
	format_error(p.st, p.req.op_name, p.req.op_len, out);
	done(&p);
}

static void test_empty(void **state)
{
	(void)state;
	expect_status("", TP_PROTO_EMPTY);
	expect_status("\r", TP_PROTO_EMPTY);

	char out[TP_PROTO_MAX_ERR + 1];
	format_error(TP_PROTO_EMPTY, NULL, 0, out);
	assert_string_equal(out, "ERR empty request\n");
}

static void test_unknown_op(void **state)
{
	struct parsed p;
	char out[TP_PROTO_MAX_ERR + 1];

	(void)state;
	parse_str(&p, "FOO 12");
	assert_int_equal(p.st, TP_PROTO_UNKNOWN_OP);
	assert_ptr_equal(p.req.op_name, p.line);
	assert_int_equal(p.req.op_len, 3);
	done(&p);

	unknown_op_reply("FOO 12", 6, out);
	assert_string_equal(out, "ERR unknown op FOO\n");
	unknown_op_reply("FOO", 3, out);
	assert_string_equal(out, "ERR unknown op FOO\n");
	unknown_op_reply("FOO\r", 4, out);
	assert_string_equal(out, "ERR unknown op FOO\n");
	/* Near misses of real ops, and ops glued to their argument. */
	unknown_op_reply("SLEEPX 5", 8, out);
	assert_string_equal(out, "ERR unknown op SLEEPX\n");
	unknown_op_reply("SLEE 5", 6, out);
	assert_string_equal(out, "ERR unknown op SLEE\n");
	unknown_op_reply("ECHOO x", 7, out);
	assert_string_equal(out, "ERR unknown op ECHOO\n");
	unknown_op_reply("ECH", 3, out);
	assert_string_equal(out, "ERR unknown op ECH\n");
	unknown_op_reply("SLEEP5", 6, out);
	assert_string_equal(out, "ERR unknown op SLEEP5\n");
	unknown_op_reply("ECHO\thi", 7, out);
	assert_string_equal(out, "ERR unknown op ECHO?hi\n");
	/* Only one "\r" is the line ending; a second one belongs to the OP. */
	unknown_op_reply("\r\r", 2, out);
	assert_string_equal(out, "ERR unknown op ?\n");
}

/*
 * docs/PROTOCOL.md: "ERR empty request" is for "an empty line (or only
 * CR)"; OP is what comes before the first space, and an OP that is not
 * SLEEP or ECHO is an unknown op.  A line that starts with a space is not
 * empty: its OP is empty, which is no known op.
 */
static void test_empty_op_is_not_empty_line(void **state)
{
	static const char *const lines[] = {" ECHO hi", " SLEEP 5", " ", "  \r"};
	char out[TP_PROTO_MAX_ERR + 1];
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		parse_str(&p, lines[i]);
		enum tp_proto_status st = p.st;
		bool at_start = p.req.op_name == p.line;
		size_t op_len = p.req.op_len;
		done(&p);
		if (st != TP_PROTO_UNKNOWN_OP)
			fail_msg("\"%s\": status %d, want TP_PROTO_UNKNOWN_OP (%d)", lines[i], (int)st,
			         (int)TP_PROTO_UNKNOWN_OP);
		assert_true(at_start);
		assert_int_equal(op_len, 0);
		format_error(st, "", 0, out);
		assert_string_equal(out, "ERR unknown op \n");
	}
}

static void test_unknown_op_truncated(void **state)
{
	char line[200], want[64], out[TP_PROTO_MAX_ERR + 1];

	(void)state;
	/* 32 bytes are quoted whole, 33 and more are cut to 32. */
	for (size_t len = 30; len <= 34; len++) {
		for (size_t i = 0; i < len; i++)
			line[i] = (char)('a' + i % 26);
		unknown_op_reply(line, len, out);
		size_t q = len < TP_PROTO_MAX_OP_ECHO ? len : TP_PROTO_MAX_OP_ECHO;
		snprintf(want, sizeof(want), "ERR unknown op %.*s\n", (int)q, line);
		assert_string_equal(out, want);
	}
	memset(line, 'X', 150);
	memcpy(line + 150, " arg", 4);
	unknown_op_reply(line, 154, out);
	assert_string_equal(out, "ERR unknown op XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n");
	assert_int_equal(strlen(out), sizeof("ERR unknown op ") - 1 + 32 + 1);
}

static void test_unknown_op_nonprintable(void **state)
{
	static const char line[] = "\x01"
	                           "A\x7f\xff"
	                           "b\x1f~ \x80";
	char out[TP_PROTO_MAX_ERR + 1];

	(void)state;
	unknown_op_reply(line, sizeof(line) - 1, out);
	assert_string_equal(out, "ERR unknown op ?A??b?~\n");

	/* A NUL and a lone "\r" inside the OP become '?', never cut the reply. */
	unknown_op_reply("F\0O\rO 1", 7, out);
	assert_string_equal(out, "ERR unknown op F?O?O\n");

	/* Printable ASCII is kept as is, from ' '+1 to '~'. */
	char all[94];
	for (int c = 0x21; c < 0x7f; c++)
		all[c - 0x21] = (char)c;
	format_error(TP_PROTO_UNKNOWN_OP, all, 32, out);
	assert_memory_equal(out + 15, all, 32);

	/* Bytes cut off beyond 32 are never read: none of them may appear. */
	char cut[40];
	memset(cut, 'a', 32);
	memset(cut + 32, '\n', 8);
	format_error(TP_PROTO_UNKNOWN_OP, cut, sizeof(cut), out);
	assert_int_equal(strlen(out), 15 + 32 + 1);
}

static void test_sleep_invalid(void **state)
{
	static const char *const bad[] = {
	        "SLEEP",
	        "SLEEP ",
	        "SLEEP\r",
	        "SLEEP -5",
	        "SLEEP -0",
	        "SLEEP +5",
	        "SLEEP  5",
	        "SLEEP 5x",
	        "SLEEP x5",
	        "SLEEP 5 ",
	        "SLEEP 5 6",
	        "SLEEP 5\t",
	        "SLEEP \t5",
	        "SLEEP 0x10",
	        "SLEEP 1e3",
	        "SLEEP 1.5",
	        "SLEEP 5\r\r",
	        "SLEEP 99999999999999999999",
	        "SLEEP 18446744073709551616",
	        "SLEEP 4294967296",
	        "SLEEP 4294977296",
	        "SLEEP 10001",
	        "SLEEP 100000",
	        "SLEEP 00010001",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_status(bad[i], TP_PROTO_INVALID_ARG);

	/* A NUL after the digits is junk, not the end of the argument. */
	struct parsed p;
	parse_bytes(&p, "SLEEP 5\0", 8, MAX_MS);
	assert_int_equal(p.st, TP_PROTO_INVALID_ARG);
	done(&p);
	parse_bytes(&p,
	            "SLEEP \0"
	            "5",
	            8, MAX_MS);
	assert_int_equal(p.st, TP_PROTO_INVALID_ARG);
	done(&p);

	char out[TP_PROTO_MAX_ERR + 1];
	format_error(TP_PROTO_INVALID_ARG, NULL, 0, out);
	assert_string_equal(out, "ERR invalid argument\n");
}

static void test_sleep_boundaries(void **state)
{
	(void)state;
	expect_sleep("SLEEP 0", MAX_MS, 0);
	expect_sleep("SLEEP 1", MAX_MS, 1);
	expect_sleep("SLEEP 250", MAX_MS, 250);
	expect_sleep("SLEEP 9999", MAX_MS, 9999);
	expect_sleep("SLEEP 10000", MAX_MS, MAX_MS);
	assert_int_equal(status_of("SLEEP 10001", MAX_MS), TP_PROTO_INVALID_ARG);

	/* max 0: only 0 is allowed. */
	expect_sleep("SLEEP 0", 0, 0);
	assert_int_equal(status_of("SLEEP 1", 0), TP_PROTO_INVALID_ARG);

	/* The widest max: the whole uint32_t range, and not one more. */
	expect_sleep("SLEEP 4294967295", UINT32_MAX, UINT32_MAX);
	assert_int_equal(status_of("SLEEP 4294967296", UINT32_MAX), TP_PROTO_INVALID_ARG);
	assert_int_equal(status_of("SLEEP 42949672950", UINT32_MAX), TP_PROTO_INVALID_ARG);
	assert_int_equal(status_of("SLEEP 99999999999999999999", UINT32_MAX), TP_PROTO_INVALID_ARG);
	assert_int_equal(status_of("SLEEP 3600001", 3600000), TP_PROTO_INVALID_ARG);
	expect_sleep("SLEEP 3600000", 3600000, 3600000);

	/* A CRLF line ending is not part of the number. */
	expect_sleep("SLEEP 42\r", MAX_MS, 42);
	expect_sleep("SLEEP 10000\r", MAX_MS, MAX_MS);
}

static void test_sleep_leading_zeros(void **state)
{
	(void)state;
	/* Leading zeros are accepted and the number stays decimal (not octal). */
	expect_sleep("SLEEP 007", MAX_MS, 7);
	expect_sleep("SLEEP 010", MAX_MS, 10);
	expect_sleep("SLEEP 00", MAX_MS, 0);
	expect_sleep("SLEEP 0000000000000000000000000000000000000001", MAX_MS, 1);
	expect_sleep("SLEEP 00000000000000000000010000", MAX_MS, MAX_MS);
	expect_status("SLEEP 00000000000000000000010001", TP_PROTO_INVALID_ARG);
}

static void test_echo(void **state)
{
	(void)state;
	expect_echo("ECHO hello", 10, "hello", 5);
	expect_echo("ECHO hello world", 16, "hello world", 11);
	/* Every blank after the one separator is text, kept byte for byte. */
	expect_echo("ECHO  a  b  ", 12, " a  b  ", 7);
	expect_echo("ECHO   ", 7, "  ", 2);
	expect_echo("ECHO \t x \t", 10, "\t x \t", 5);
	/* Empty text, with and without the separator. */
	expect_echo("ECHO", 4, "", 0);
	expect_echo("ECHO ", 5, "", 0);
	expect_echo("ECHO\r", 5, "", 0);
	expect_echo("ECHO \r", 6, "", 0);
	/* Binary bytes and NULs are text like any other. */
	expect_echo("ECHO a\0b\x01\xff\x7f", 11, "a\0b\x01\xff\x7f", 6);
	expect_echo("ECHO \0", 6, "\0", 1);
	/* An argument that looks like a number, or another request, is text. */
	expect_echo("ECHO 5", 6, "5", 1);
	expect_echo("ECHO SLEEP 5", 12, "SLEEP 5", 7);
}

static void test_crlf(void **state)
{
	(void)state;
	/* Exactly one trailing "\r" is stripped; a second one is text. */
	expect_echo("ECHO a\r", 7, "a", 1);
	expect_echo("ECHO a\r\r", 8, "a\r", 2);
	expect_echo("ECHO \r\r", 7, "\r", 1);
	/* A "\r" inside the text stays. */
	expect_echo("ECHO a\rb", 8, "a\rb", 3);
	expect_echo("ECHO a\rb\r", 9, "a\rb", 3);
	expect_sleep("SLEEP 5\r", MAX_MS, 5);
	expect_status("SLEEP 5\r\r", TP_PROTO_INVALID_ARG);
}

static void test_case_insensitive(void **state)
{
	(void)state;
	expect_sleep("sleep 5", MAX_MS, 5);
	expect_sleep("Sleep 5", MAX_MS, 5);
	expect_sleep("sLeEp 5", MAX_MS, 5);
	expect_echo("echo x", 6, "x", 1);
	expect_echo("EcHo x", 6, "x", 1);
	expect_echo("eCHO", 4, "", 0);
	/* Case folding is for letters only: no op matches a look-alike byte. */
	expect_status("SLEE\xd0 5", TP_PROTO_UNKNOWN_OP);
	expect_status("ECH\xcf x", TP_PROTO_UNKNOWN_OP);
}

/* The same outcome, read from two lines of the same length (which may spell their op differently). */
static void assert_same_parse(const struct parsed *a, const struct parsed *b)
{
	if (a->st != b->st)
		fail_msg("\"%.*s\": status %d, \"%.*s\": %d", (int)a->len, a->line, (int)a->st, (int)b->len,
		         b->line, (int)b->st);
	assert_int_equal(a->req.op_len, b->req.op_len);
	assert_int_equal(a->req.op_name - a->line, b->req.op_name - b->line);
	if (a->st != TP_PROTO_OK)
		return;
	assert_int_equal(a->req.op, b->req.op);
	if (a->req.op == TP_OP_SLEEP) {
		assert_int_equal(a->req.sleep_ms, b->req.sleep_ms);
	} else {
		assert_int_equal(a->req.text_len, b->req.text_len);
		assert_int_equal(a->req.text - a->line, b->req.text - b->line);
	}
}

/*
 * An op spelt as in the table and followed by a space is found without the
 * general path's search and case-insensitive compare; any other spelling
 * takes the general path.  Both must read every line alike: each op in
 * every mix of cases, with every kind of argument, as in upper case.
 */
static void test_spelt_ops_parse_as_any_case(void **state)
{
#define ARG(s)                   \
	{                        \
		s, sizeof(s) - 1 \
	}
	static const struct {
		const char *s;
		size_t len;
	} args[] = {ARG(""),     ARG(" "),           ARG(" 5"),     ARG(" 0"),  ARG(" 10000"), ARG(" 10001"),
	            ARG(" x"),   ARG("  5"),         ARG(" 5 "),    ARG(" -1"), ARG(" +1"),    ARG("\r"),
	            ARG(" \r"),  ARG(" 5\r"),        ARG(" x\r\r"), ARG("X 1"), ARG("S 5"),    ARG(" \t"),
	            ARG("\t5"),  ARG(" a b "),       ARG("  "),     ARG(" \0"), ARG("\0 5"),   ARG("5"),
	            ARG("ECHO"), ARG(" 99999999999")};
#undef ARG
	static const char *const names[] = {"SLEEP", "ECHO"};
	char up[64], mixed[64];
	struct parsed a, b;
	(void)state;

	for (size_t o = 0; o < sizeof(names) / sizeof(names[0]); o++) {
		size_t n = strlen(names[o]);
		for (size_t g = 0; g < sizeof(args) / sizeof(args[0]); g++) {
			size_t len = n + args[g].len;
			memcpy(up, names[o], n);
			memcpy(up + n, args[g].s, args[g].len);
			parse_bytes(&a, up, len, MAX_MS);
			/* Every mix of cases of the op's letters, upper case included. */
			for (unsigned mask = 0; mask < 1u << n; mask++) {
				memcpy(mixed, up, len);
				for (size_t i = 0; i < n; i++)
					if (mask >> i & 1)
						mixed[i] = (char)(mixed[i] - 'A' + 'a');
				parse_bytes(&b, mixed, len, MAX_MS);
				assert_same_parse(&a, &b);
				done(&b);
			}
			done(&a);
		}
	}
	/* Where the two paths part: the op's name alone, a longer word, a space too early. */
	expect_echo("ECHO", 4, "", 0);
	expect_echo("ECHO ", 5, "", 0);
	expect_echo("ECHO x", 6, "x", 1);
	expect_status("SLEEP", TP_PROTO_INVALID_ARG);
	expect_status("SLEEP ", TP_PROTO_INVALID_ARG);
	expect_sleep("SLEEP 1", MAX_MS, 1);
	expect_status("ECHOS x", TP_PROTO_UNKNOWN_OP);
	expect_status("SLEEPY 5", TP_PROTO_UNKNOWN_OP);
	expect_status("ECH O x", TP_PROTO_UNKNOWN_OP);
	expect_status("SLEE P 5", TP_PROTO_UNKNOWN_OP);
	expect_status("ECH", TP_PROTO_UNKNOWN_OP);
	expect_status("SLEE", TP_PROTO_UNKNOWN_OP);
}

static void test_error_lines(void **state)
{
	static const struct {
		enum tp_proto_status st;
		const char *line;
	} want[] = {
	        {TP_PROTO_EMPTY, "ERR empty request\n"},
	        {TP_PROTO_INVALID_ARG, "ERR invalid argument\n"},
	        {TP_PROTO_TOO_LONG, "ERR line too long\n"},
	        {TP_PROTO_BUSY, "ERR server busy\n"},
	        {TP_PROTO_TOO_MANY, "ERR too many connections\n"},
	        {TP_PROTO_SHUTDOWN, "ERR server shutting down\n"},
	};
	char out[TP_PROTO_MAX_ERR + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(tp_proto_error_line(want[i].st), want[i].line);
		/* The op arguments are ignored for every status but UNKNOWN_OP. */
		format_error(want[i].st, NULL, 0, out);
		assert_string_equal(out, want[i].line);
		format_error(want[i].st, "FOO", 3, out);
		assert_string_equal(out, want[i].line);
		assert_true(strlen(want[i].line) <= TP_PROTO_MAX_ERR);
	}
	/* Without its OP, the unknown-op line is still one well-formed line. */
	const char *u = tp_proto_error_line(TP_PROTO_UNKNOWN_OP);
	assert_true(strncmp(u, "ERR unknown op", 14) == 0);
	assert_int_equal(u[strlen(u) - 1], '\n');
	format_error(TP_PROTO_UNKNOWN_OP, "X", 1, out);
	assert_string_equal(out, "ERR unknown op X\n");
	format_error(TP_PROTO_UNKNOWN_OP, "", 0, out);
	assert_string_equal(out, "ERR unknown op \n");
}

static void expect_sleep_reply(uint32_t ms, const char *want)
{
	char buf[32];
	size_t n;

	memset(buf, 'Z', sizeof(buf));
	n = tp_proto_format_sleep(ms, buf);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
	for (size_t i = n; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
}

static void test_format_sleep(void **state)
{
	(void)state;
	expect_sleep_reply(0, "OK 0\n");
	expect_sleep_reply(7, "OK 7\n");
	expect_sleep_reply(10, "OK 10\n");
	expect_sleep_reply(250, "OK 250\n");
	expect_sleep_reply(10000, "OK 10000\n");
	expect_sleep_reply(1000000000, "OK 1000000000\n");
	/* The longest reply fits the documented 16 bytes. */
	expect_sleep_reply(UINT32_MAX, "OK 4294967295\n");
	assert_true(sizeof("OK 4294967295\n") - 1 <= 16);
}

static void test_copy_writes_exactly_its_bytes(void **state)
{
	char src[64], dst[64 + 16];
	(void)state;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)('a' + i % 26);
	/* Every length through the 4- and 8-byte paths and past them. */
	for (size_t n = 0; n <= 40; n++) {
		memset(dst, '#', sizeof(dst));
		tp_copy_short(dst + 8, src + 1, n);
		assert_memory_equal(dst + 8, src + 1, n);
		for (size_t i = 0; i < 8; i++)
			assert_int_equal(dst[i], '#');
		for (size_t i = 8 + n; i < sizeof(dst); i++)
			assert_int_equal(dst[i], '#');
	}
}

/* Lay text down at buf and finish it: one "OK <text>\n" reply. */
static size_t format_echo(const char *text, size_t len, char *buf)
{
	size_t n = tp_proto_echo_place(text, len, buf);
	tp_proto_echo_finish(buf, n);
	return n;
}

static void test_format_echo(void **state)
{
	static const char text[] = " a\0b \r\xff ";
	char buf[64];
	size_t n;

	(void)state;
	memset(buf, 'Z', sizeof(buf));
	n = format_echo("hello", 5, buf);
	assert_int_equal(n, 9);
	assert_memory_equal(buf, "OK hello\n", 9);
	assert_int_equal(buf[9], 'Z');

	memset(buf, 'Z', sizeof(buf));
	n = format_echo(text, sizeof(text) - 1, buf);
	assert_int_equal(n, sizeof(text) - 1 + 4);
	assert_memory_equal(buf, "OK ", 3);
	assert_memory_equal(buf + 3, text, sizeof(text) - 1);
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(buf[n], 'Z');

	memset(buf, 'Z', sizeof(buf));
	n = format_echo("", 0, buf);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "OK \n", 4);
	assert_int_equal(buf[4], 'Z');
}

/* Lines laid down back to back are finished in one call, each with its "OK ". */
static void test_format_echo_lines(void **state)
{
	static const char want[] = "OK a\nOK \nOK bc d\nOK \rx\n";
	char buf[64];
	size_t n = 0;

	(void)state;
	memset(buf, 'Z', sizeof(buf));
	n += tp_proto_echo_place("a", 1, buf + n);
	n += tp_proto_echo_place("", 0, buf + n);
	n += tp_proto_echo_place("bc d", 4, buf + n);
	n += tp_proto_echo_place("\rx", 2, buf + n);
	assert_int_equal(n, sizeof(want) - 1);
	tp_proto_echo_finish(buf, n);
	assert_memory_equal(buf, want, n);
	assert_int_equal(buf[n], 'Z');
}

/* Parse line, then its OK reply must have tp_proto_reply_len() bytes and be want. */
static void expect_reply(const char *line, size_t len, const char *want, size_t want_len)
{
	struct parsed p;
	char *buf;
	size_t n;

	parse_bytes(&p, line, len, UINT32_MAX);
	assert_int_equal(p.st, TP_PROTO_OK);
	buf = malloc(p.len + 32);
	assert_non_null(buf);
	if (p.req.op == TP_OP_SLEEP)
		n = tp_proto_format_sleep(p.req.sleep_ms, buf);
	else
		n = format_echo(p.req.text, p.req.text_len, buf);
	assert_int_equal(tp_proto_reply_len(&p.req), n);
	assert_int_equal(n, want_len);
	assert_memory_equal(buf, want, n);
	free(buf);
	done(&p);
}

static void test_reply_len(void **state)
{
	char line[64], want[64];

	(void)state;
	/* Every digit count of a SLEEP reply, at both ends of its range. */
	uint64_t v = 1;
	for (int digits = 1; digits <= 10; digits++, v *= 10) {
		uint64_t vals[] = {v - (digits == 1), v * 10 - 1};
		for (size_t i = 0; i < 2; i++) {
			if (vals[i] > UINT32_MAX)
				vals[i] = UINT32_MAX;
			unsigned long long ms = (unsigned long long)vals[i];
			int ll = snprintf(line, sizeof(line), "SLEEP %llu", ms);
			int wl = snprintf(want, sizeof(want), "OK %llu\n", ms);
			expect_reply(line, (size_t)ll, want, (size_t)wl);
		}
	}
	expect_reply("SLEEP 007", 9, "OK 7\n", 5);
	expect_reply("ECHO hello", 10, "OK hello\n", 9);
	expect_reply("ECHO", 4, "OK \n", 4);
	expect_reply("ECHO ", 5, "OK \n", 4);
	expect_reply("ECHO  x ", 8, "OK  x \n", 7);
	expect_reply("ECHO a\0b\r", 9, "OK a\0b\n", 7);

	char big[5000], bigwant[5004];
	memcpy(big, "ECHO ", 5);
	memset(big + 5, 'q', sizeof(big) - 5);
	memcpy(bigwant, "OK ", 3);
	memset(bigwant + 3, 'q', sizeof(big) - 5);
	bigwant[3 + sizeof(big) - 5] = '\n';
	expect_reply(big, sizeof(big), bigwant, sizeof(big) - 5 + 4);
}

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(tp_proto_op_name(TP_OP_SLEEP), "SLEEP");
	assert_string_equal(tp_proto_op_name(TP_OP_ECHO), "ECHO");
	assert_string_equal(tp_proto_op_name(TP_OP_COUNT), "?");
	/* The labels the metrics and tpclient's reports print. */
	assert_string_equal(tp_proto_op_label(TP_OP_SLEEP), "sleep");
	assert_string_equal(tp_proto_op_label(TP_OP_ECHO), "echo");
	assert_string_equal(tp_proto_op_label(TP_OP_COUNT), "none");
	/* Every op in the table parses by its own wire name, in either case. */
	for (int op = 0; op < TP_OP_COUNT; op++) {
		char line[64], lower[64];
		const char *name = tp_proto_op_name((enum tp_op)op);
		int n = snprintf(line, sizeof(line), "%s 1", name);
		struct parsed p;

		for (int i = 0; i <= n; i++) {
			char c = line[i];
			lower[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
		}
		parse_bytes(&p, line, (size_t)n, MAX_MS);
		assert_int_equal(p.st, TP_PROTO_OK);
		assert_int_equal(p.req.op, op);
		done(&p);
		parse_bytes(&p, lower, (size_t)n, MAX_MS);
		assert_int_equal(p.st, TP_PROTO_OK);
		assert_int_equal(p.req.op, op);
		done(&p);
	}
}

/* The decimal reader the protocol, tpclient's checks and its flags share. */
static bool dec_ok(const char *s, uint64_t max, uint64_t want)
{
	uint64_t v = ~want;
	return tp_decimal_parse(s, strlen(s), max, &v) == 0 && v == want;
}

static bool dec_bad(const char *s, uint64_t max)
{
	uint64_t v = 12345;
	return tp_decimal_parse(s, strlen(s), max, &v) == -1 && v == 12345;
}

static void test_decimal_edges(void **state)
{
	(void)state;
	assert_true(dec_ok("0", 0, 0));
	assert_true(dec_bad("1", 0));
	assert_true(dec_ok("9", 9, 9));
	assert_true(dec_bad("10", 9));
	assert_true(dec_ok("007", 10, 7));
	assert_true(dec_ok("4294967295", UINT32_MAX, UINT32_MAX));
	assert_true(dec_bad("4294967296", UINT32_MAX));
	assert_true(dec_ok("18446744073709551615", UINT64_MAX, UINT64_MAX));
	assert_true(dec_bad("18446744073709551616", UINT64_MAX));
	assert_true(dec_bad("18446744073709551620", UINT64_MAX));
	assert_true(dec_bad("99999999999999999999999999999", UINT64_MAX));
	assert_true(dec_ok("18446744073709551614", UINT64_MAX - 1, UINT64_MAX - 1));
	assert_true(dec_bad("18446744073709551615", UINT64_MAX - 1));
	assert_true(dec_bad("", UINT64_MAX));
	assert_true(dec_bad("+1", UINT64_MAX));
	assert_true(dec_bad("-1", UINT64_MAX));
	assert_true(dec_bad(" 1", UINT64_MAX));
	assert_true(dec_bad("1 ", UINT64_MAX));
	assert_true(dec_bad("1a", UINT64_MAX));
	assert_true(dec_bad("/", UINT64_MAX)); /* '0' - 1 */
	assert_true(dec_bad(":", UINT64_MAX)); /* '9' + 1 */
	assert_true(dec_bad("\xb0", UINT64_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_decimal_edges),
	        cmocka_unit_test(test_unknown_op),
	        cmocka_unit_test(test_empty_op_is_not_empty_line),
	        cmocka_unit_test(test_unknown_op_truncated),
	        cmocka_unit_test(test_unknown_op_nonprintable),
	        cmocka_unit_test(test_sleep_invalid),
	        cmocka_unit_test(test_sleep_boundaries),
	        cmocka_unit_test(test_sleep_leading_zeros),
	        cmocka_unit_test(test_echo),
	        cmocka_unit_test(test_crlf),
	        cmocka_unit_test(test_case_insensitive),
	        cmocka_unit_test(test_spelt_ops_parse_as_any_case),
	        cmocka_unit_test(test_error_lines),
	        cmocka_unit_test(test_format_sleep),
	        cmocka_unit_test(test_format_echo),
	        cmocka_unit_test(test_format_echo_lines),
	        cmocka_unit_test(test_copy_writes_exactly_its_bytes),
	        cmocka_unit_test(test_reply_len),
	        cmocka_unit_test(test_op_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
