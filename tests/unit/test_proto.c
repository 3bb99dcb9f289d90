/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto.c reading a request line: the empty line, an
 * unknown op (an empty one, a long one truncated, a non-printable one),
 * ECHO text kept byte for byte, the line ending, case-insensitive ops
 * however they are spelt, and the ops' names.  Lines are parsed from heap
 * copies of exactly their length, so a read past the end shows up under
 * valgrind or ASan.
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
#include "proto_fixture.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_unknown_op),
	        cmocka_unit_test(test_empty_op_is_not_empty_line),
	        cmocka_unit_test(test_unknown_op_truncated),
	        cmocka_unit_test(test_unknown_op_nonprintable),
	        cmocka_unit_test(test_echo),
	        cmocka_unit_test(test_crlf),
	        cmocka_unit_test(test_case_insensitive),
	        cmocka_unit_test(test_spelt_ops_parse_as_any_case),
	        cmocka_unit_test(test_op_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
