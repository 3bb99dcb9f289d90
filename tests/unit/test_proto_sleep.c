/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto.c reading SLEEP's argument: every way it can be
 * rejected, its boundaries and leading zeros; and the decimal reader it
 * shares with tpclient's checks and flags (decimal.h), at its edges.
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
	        cmocka_unit_test(test_decimal_edges),
	        cmocka_unit_test(test_sleep_invalid),
	        cmocka_unit_test(test_sleep_boundaries),
	        cmocka_unit_test(test_sleep_leading_zeros),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
