/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of client_values.c: each reader takes the whole string or
 * fails with -EINVAL and leaves its result alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client_values.h"

static void test_u64(void **state)
{
	(void)state;
	uint64_t v = 7;

	assert_int_equal(tp_client_value_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(tp_client_value_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 7;
	static const char *const bad[] = {
	        "", "-1", "+1", " 1", "1 ", "0x10", "11", "1e1", "18446744073709551616"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tp_client_value_u64(bad[i], 1, 10, &v), -EINVAL);
		assert_int_equal(v, 7);
	}
	assert_int_equal(tp_client_value_u64("0", 1, 10, &v), -EINVAL);
}

static void test_positive(void **state)
{
	(void)state;
	double v = 3;

	assert_int_equal(tp_client_value_positive("0.5", 10, &v), 0);
	assert_true(v == 0.5);
	assert_int_equal(tp_client_value_positive("10", 10, &v), 0);
	assert_int_equal(tp_client_value_positive(".25", 10, &v), 0);
	assert_true(v == 0.25);
	assert_int_equal(tp_client_value_positive("2.5E-1", 10, &v), 0);
	assert_true(v == 0.25);
	assert_int_equal(tp_client_value_positive("5.", 10, &v), 0);
	assert_true(v == 5);
	/* Plain decimals only: strtod() alone would take signs, spaces, hex, inf and nan. */
	static const char *const bad[] = {"",       "0",     "-1",   "10.01", "nan",      "inf",
	                                  "1s",     "1 ",    "+0.5", " 0.5",  "0x10",     "0x1p3",
	                                  ".",      "1.2.3", "1e",   "1e+",   "e1",       "1e400",
	                                  "1e-400", "-0",    "\t1",  "1,5",   "infinity", "1_0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 10;
		if (tp_client_value_positive(bad[i], 10, &v) != -EINVAL)
			fail_msg("'%s' was read as %g", bad[i], v);
	}
	assert_true(v == 10);
}

static void test_duration(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		double v;
	} good[] = {{"10", 10},   {"1.5", 1.5}, {"10s", 10},   {"2m", 120},    {"500ms", 0.5},  {"1h", 3600},
	            {"0.5m", 30}, {"1e1", 10},  {".25", 0.25}, {"1ms", 0.001}, {"0.001", 0.001}};
	double v = 3;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(tp_client_value_duration(good[i].s, 1e7, &v), 0);
		assert_true(v > good[i].v - 1e-9 && v < good[i].v + 1e-9);
	}
	v = 3;
	static const char *const bad[] = {"",       "0",      "0s",   "s",     "10x",  "10 s", "-1s",
	                                  "1sm",    "nan",    "2hh",  "3m",    "0x10", "+0.5", " 0.5",
	                                  "+1s",    " 500ms", "0x1s", "inf s", ".s",   "1e",   "1e+m",
	                                  "0.0009", "1e-10",  "0.5ms"}; /* under 1 ms: 0 in a report */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tp_client_value_duration(bad[i], 120, &v), -EINVAL);
		assert_true(v == 3);
	}
}

static void test_rate(void **state)
{
	(void)state;
	double v = 3;

	assert_int_equal(tp_client_value_rate("2k", 1e9, &v), 0);
	assert_true(v == 2000);
	assert_int_equal(tp_client_value_rate("1.5K", 1e9, &v), 0);
	assert_true(v == 1500);
	assert_int_equal(tp_client_value_rate("1M", 1e9, &v), 0);
	assert_true(v == 1e6);
	assert_int_equal(tp_client_value_rate("0.8", 1e9, &v), 0);
	assert_true(v == 0.8);
	assert_int_equal(tp_client_value_rate("1e3", 1e9, &v), 0);
	assert_true(v == 1000);
	assert_int_equal(tp_client_value_rate("1e-10", 1e9, &v), 0); /* TP_CLIENT_MIN_RATE */
	assert_true(v == 1e-10);
	assert_int_equal(tp_client_value_rate("1.5e1k", 1e9, &v), 0);
	assert_true(v == 15000);
	v = 3;
	/* Below the minimum, 1e9 / rate is no time a clock holds (1e-300: infinite). */
	static const char *const bad[] = {"",      "k",      "2x",     "2kk",   "0k",  "-2k",
	                                  "inf",   "2m",     "2000M",  "0x10",  "+5",  " 5",
	                                  "1e-11", "1e-300", "1e-20k", "0x1p3", "+2k", "5 k"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tp_client_value_rate(bad[i], 1e9, &v), -EINVAL);
		assert_true(v == 3);
	}
}

/* A report shows every rate it was given: 0.0004 is not 0.0. */
static void test_rate_text(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(tp_client_rate_text(0, 1, buf, sizeof(buf)), "0.0");
	assert_string_equal(tp_client_rate_text(2000, 1, buf, sizeof(buf)), "2000.0");
	assert_string_equal(tp_client_rate_text(0.1, 1, buf, sizeof(buf)), "0.1");
	assert_string_equal(tp_client_rate_text(0.0004, 1, buf, sizeof(buf)), "0.0004");
	assert_string_equal(tp_client_rate_text(0.0004, 3, buf, sizeof(buf)), "0.0004");
	assert_string_equal(tp_client_rate_text(0.25, 3, buf, sizeof(buf)), "0.250");
	assert_string_equal(tp_client_rate_text(1e-10, 3, buf, sizeof(buf)), "1e-10");
}

static void test_retry(void **state)
{
	(void)state;
	double d = 9;
	unsigned n = 9;

	assert_int_equal(tp_client_value_retry("10ms", 3600, 1000, &d, &n), 0);
	assert_true(d == 0.01 && n == 3);
	assert_int_equal(tp_client_value_retry("0.5,7", 3600, 1000, &d, &n), 0);
	assert_true(d == 0.5 && n == 7);
	d = 9, n = 9;
	static const char *const bad[] = {"",    ",3",   "10ms,", "10ms,0", "10ms,1001",
	                                  "0,3", "1x,3", "1,2,3", "2h"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tp_client_value_retry(bad[i], 3600, 1000, &d, &n), -EINVAL);
		assert_true(d == 9 && n == 9);
	}
}

static void test_span(void **state)
{
	(void)state;
	uint32_t lo = 1, hi = 2;

	assert_int_equal(tp_client_value_span("5", 0, 100, &lo, &hi), 0);
	assert_true(lo == 5 && hi == 5);
	assert_int_equal(tp_client_value_span("0-100", 0, 100, &lo, &hi), 0);
	assert_true(lo == 0 && hi == 100);
	static const char *const bad[] = {"",    "-",     "5-",    "-5",
	                                  "6-5", "1-2-3", "0-101", "12345678901234567-1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tp_client_value_span(bad[i], 0, 100, &lo, &hi), -EINVAL);
	assert_true(lo == 0 && hi == 100);
}

static void test_mix(void **state)
{
	(void)state;
	enum tp_client_mix m = TP_MIX_SLEEP;

	assert_int_equal(tp_client_value_mix("Balanced", &m), 0);
	assert_int_equal(m, TP_MIX_BALANCED);
	assert_string_equal(tp_client_mix_name(m), "balanced");
	assert_int_equal(tp_client_value_mix("echo", &m), 0);
	assert_string_equal(tp_client_mix_name(m), "echo");
	assert_int_equal(tp_client_value_mix("sleepy", &m), -EINVAL);
	assert_int_equal(tp_client_value_mix("", &m), -EINVAL);
	assert_int_equal(m, TP_MIX_ECHO);
}

static void test_sources(void **state)
{
	(void)state;
	struct tp_client_source src[3];
	unsigned n = 9;

	assert_int_equal(tp_client_value_sources("127.0.0.2,fe80::1%lo,::", 3, src, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(src[0].addr.sa.sa_family, AF_INET);
	assert_int_equal(ntohl(src[0].addr.in.sin_addr.s_addr), 0x7f000002);
	assert_int_equal(src[1].addr.sa.sa_family, AF_INET6);
	assert_int_not_equal(src[1].addr.in6.sin6_scope_id, 0); /* the loopback's index */
	assert_string_equal(src[1].text, "fe80::1%lo");
	assert_int_equal(src[2].len, sizeof(struct sockaddr_in6));

	/* The longest IPv6 text (45 bytes) with a scope. */
	static const char longest[] = "fe80:ffff:ffff:ffff:ffff:ffff:255.255.255.255%lo";
	assert_int_equal(tp_client_value_sources(longest, 3, src, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(src[0].text, longest);
	assert_int_not_equal(src[0].addr.in6.sin6_scope_id, 0);

	n = 9;
	static const char *const bad[] = {"", ",", "127.0.0.2,", "1.2.3.4.5", "localhost", "127.0.0.1:9",
	                                  "[::1]", "1.2.3.4,1.2.3.5,1.2.3.6,1.2.3.7",
	                                  /* inet_aton()'s older forms: octal, hexadecimal, fewer parts */
	                                  "127.0.0.010", "0x7f000002", "127.2", "2130706434", "127.1.010"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tp_client_value_sources(bad[i], 3, src, &n), -EINVAL);
	assert_int_equal(n, 9);
}

static void test_name(void **state)
{
	(void)state;
	char name[8] = "x";

	assert_int_equal(tp_client_value_name("a-b_c.1", name, sizeof(name)), 0);
	assert_string_equal(name, "a-b_c.1");
	assert_int_equal(tp_client_value_name("", name, sizeof(name)), -EINVAL);
	assert_int_equal(tp_client_value_name("12345678", name, sizeof(name)), -EINVAL);
	assert_int_equal(tp_client_value_name("a b", name, sizeof(name)), -EINVAL);
	assert_int_equal(tp_client_value_name("a,b", name, sizeof(name)), -EINVAL);
	assert_string_equal(name, "a-b_c.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_u64),       cmocka_unit_test(test_positive),
	        cmocka_unit_test(test_duration),  cmocka_unit_test(test_rate),
	        cmocka_unit_test(test_rate_text), cmocka_unit_test(test_retry),
	        cmocka_unit_test(test_span),      cmocka_unit_test(test_mix),
	        cmocka_unit_test(test_sources),   cmocka_unit_test(test_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
