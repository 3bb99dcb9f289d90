/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto.c's replies: the exact text of every error line, of
 * SLEEP's reply and of ECHO's (laid down, then finished, one line or
 * several back to back), the length a reply will have, and a short copy
 * writing exactly its bytes at every length.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_error_lines),
	        cmocka_unit_test(test_format_sleep),
	        cmocka_unit_test(test_format_echo),
	        cmocka_unit_test(test_format_echo_lines),
	        cmocka_unit_test(test_copy_writes_exactly_its_bytes),
	        cmocka_unit_test(test_reply_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
