/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of verify.c: the right OK for SLEEP and ECHO, every way an OK
 * can be wrong, busy told apart from other ERR replies, and garbage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "verify.h"

static enum tp_verify_result sleep_reply(uint32_t ms, const char *line)
{
	struct tp_verify_expect e = {.op = TP_OP_SLEEP, .sleep_ms = ms};
	return tp_verify_reply(&e, line, strlen(line));
}

static enum tp_verify_result echo_reply(const char *text, const char *line)
{
	struct tp_verify_expect e = {.op = TP_OP_ECHO, .text = text, .text_len = strlen(text)};
	return tp_verify_reply(&e, line, strlen(line));
}

static void test_ok(void **state)
{
	(void)state;
	assert_int_equal(sleep_reply(250, "OK 250"), TP_VERIFY_OK);
	assert_int_equal(sleep_reply(0, "OK 0"), TP_VERIFY_OK);
	assert_int_equal(sleep_reply(4294967295u, "OK 4294967295"), TP_VERIFY_OK);
	assert_int_equal(echo_reply("hello", "OK hello"), TP_VERIFY_OK);
	assert_int_equal(echo_reply("a b  c", "OK a b  c"), TP_VERIFY_OK);
	assert_int_equal(echo_reply("", "OK "), TP_VERIFY_OK);
	/* The line is bounded by len, not by a terminator. */
	struct tp_verify_expect e = {.op = TP_OP_ECHO, .text = "xy", .text_len = 2};
	assert_int_equal(tp_verify_reply(&e, "OK xyz", 5), TP_VERIFY_OK);
}

static void test_sleep_mismatch(void **state)
{
	(void)state;
	assert_int_equal(sleep_reply(250, "OK 251"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK 25"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK 2500"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK 0250"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK +250"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK 250 "), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK 250\r"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "OK "), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(0, "OK 00"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(250, "ok 250"), TP_VERIFY_MISMATCH);
	/* Another request's echo in place of this SLEEP's reply. */
	assert_int_equal(sleep_reply(250, "OK hello"), TP_VERIFY_MISMATCH);
}

static void test_echo_mismatch(void **state)
{
	(void)state;
	assert_int_equal(echo_reply("hello", "OK hellp"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("hello", "OK hell"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("hello", "OK hello!"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("hello", "OK HELLO"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("hello", "OK  hello"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("hello", "OK hello\r"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("hello", "OKhello"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("", "OK"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("", "OK x"), TP_VERIFY_MISMATCH);
	/* A SLEEP's reply where the echo belonged. */
	assert_int_equal(echo_reply("hello", "OK 250"), TP_VERIFY_MISMATCH);
}

static void test_busy_vs_err(void **state)
{
	(void)state;
	assert_int_equal(sleep_reply(100, "ERR server busy"), TP_VERIFY_BUSY);
	assert_int_equal(echo_reply("x", "ERR server busy"), TP_VERIFY_BUSY);

	assert_int_equal(sleep_reply(100, "ERR invalid argument"), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR unknown op FOO"), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR line too long"), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR too many connections"), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR server shutting down"), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR"), TP_VERIFY_ERR);
	/* Near misses of the busy line are other errors, not busy. */
	assert_int_equal(echo_reply("x", "ERR server busy "), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR server busyness"), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR server bus"), TP_VERIFY_ERR);
	assert_int_equal(echo_reply("x", "ERR Server Busy"), TP_VERIFY_ERR);
	/* An ECHO of text that looks like an error is still an OK. */
	assert_int_equal(echo_reply("ERR server busy", "OK ERR server busy"), TP_VERIFY_OK);
}

static void test_garbage(void **state)
{
	(void)state;
	assert_int_equal(echo_reply("x", ""), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("x", "O"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("x", "ERROR"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("x", "ERRx"), TP_VERIFY_MISMATCH);
	assert_int_equal(echo_reply("x", "HTTP/1.1 400 Bad Request"), TP_VERIFY_MISMATCH);
	assert_int_equal(sleep_reply(5, " OK 5"), TP_VERIFY_MISMATCH);
	struct tp_verify_expect e = {.op = TP_OP_ECHO, .text = "a", .text_len = 1};
	assert_int_equal(tp_verify_reply(&e, "OK a\0", 5), TP_VERIFY_MISMATCH);
	assert_int_equal(tp_verify_reply(&e, "\0\0\0\0", 4), TP_VERIFY_MISMATCH);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(tp_verify_result_name(TP_VERIFY_OK), "ok");
	assert_string_equal(tp_verify_result_name(TP_VERIFY_BUSY), "busy");
	assert_string_equal(tp_verify_result_name(TP_VERIFY_ERR), "err");
	assert_string_equal(tp_verify_result_name(TP_VERIFY_MISMATCH), "mismatch");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),          cmocka_unit_test(test_sleep_mismatch),
		cmocka_unit_test(test_echo_mismatch), cmocka_unit_test(test_busy_vs_err),
		cmocka_unit_test(test_garbage),     cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
