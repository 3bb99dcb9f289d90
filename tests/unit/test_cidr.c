/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of cidr.c: parsing lists (separators, host addresses, limits,
 * bad prefixes) and matching IPv4, IPv6 and IPv4-mapped IPv6 addresses at
 * prefix lengths 0, odd and full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "cidr.h"

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

static bool matches(const char *list, const char *a)
{
	struct tp_cidr_list l;
	struct sockaddr_storage ss = addr(a);
	assert_int_equal(tp_cidr_parse_list(list, &l), 0);
	return tp_cidr_match(&l, &ss);
}

static void test_parse(void **state)
{
	struct tp_cidr_list l;
	char big[2048] = "";
	(void)state;
	assert_int_equal(tp_cidr_parse_list("", &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(tp_cidr_parse_list(" 10.0.0.0/8,::1 , 2001:db8::/32\t192.168.1.1", &l), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.v[0].bits, 8);
	assert_int_equal(l.v[1].bits, 128);
	assert_int_equal(l.v[3].bits, 32);
	static const char *bad[] = {"10.0.0.0/33", "::/129",       "10.0.0.0/",    "10.0.0.0/x",
	                            "10.0.0",      "host.example", "10.0.0.0/8/8", "10.0.0.0/-1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		l.n = 9;
		if (tp_cidr_parse_list(bad[i], &l) != -EINVAL)
			fail_msg("%s accepted", bad[i]);
		assert_int_equal(l.n, 0);
	}
	for (int i = 0; i < TP_CIDR_MAX; i++)
		strcat(big, "10.0.0.1,");
	assert_int_equal(tp_cidr_parse_list(big, &l), 0);
	strcat(big, "10.0.0.1");
	assert_int_equal(tp_cidr_parse_list(big, &l), -E2BIG);
}

static void test_match(void **state)
{
	(void)state;
	assert_true(matches("10.0.0.0/8", "10.255.1.2"));
	assert_false(matches("10.0.0.0/8", "11.0.0.1"));
	assert_true(matches("10.1.2.0/23", "10.1.3.255"));
	assert_false(matches("10.1.2.0/23", "10.1.4.0"));
	assert_true(matches("0.0.0.0/0", "1.2.3.4"));
	assert_false(matches("0.0.0.0/0", "::1"));
	assert_true(matches("::/0", "2001:db8::1"));
	assert_true(matches("127.0.0.1", "::ffff:127.0.0.1"));
	assert_false(matches("::1", "127.0.0.1"));
	/* An IPv6 prefix sees an IPv4 client as a dual-stack socket shows it. */
	assert_true(matches("::ffff:127.0.0.1", "127.0.0.1"));
	assert_true(matches("::ffff:0:0/96", "10.1.2.3"));
	assert_true(matches("::/0", "10.1.2.3"));
	assert_false(matches("::ffff:127.0.0.2", "127.0.0.1"));
	assert_false(matches("2001:db8::/32", "127.0.0.1"));
	assert_true(matches("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(matches("2001:db8::/33", "2001:db8:8000::1"));
	assert_false(matches("", "127.0.0.1"));
}

/* Address bits past the prefix length: each such prefix, as written, and the network it stands for. */
static void test_host_bits(void **state)
{
	static const struct {
		const char *text, *found;
		size_t n;
	} cases[] = {
	        {"10.0.0.1/8", "10.0.0.1/8 is 10.0.0.0/8", 1},
	        {"10.0.0.0/8", "", 0},
	        {"192.168.1.130/25, 192.168.1.128/25", "192.168.1.130/25 is 192.168.1.128/25", 1},
	        {"10.1.2.3 ::1 2001:db8:8000::/33", "", 0},
	        {"1.2.3.4/0", "1.2.3.4/0 is 0.0.0.0/0 (every IPv4 address)", 1},
	        {"::1/0", "::1/0 is ::/0 (every address)", 1},
	        {"2001:DB8:0:0::1/32,\t2001:db8:c000::/33, 10.0.0.1/08",
	         "2001:DB8:0:0::1/32 is 2001:db8::/32, 2001:db8:c000::/33 is 2001:db8:8000::/33, "
	         "10.0.0.1/08 is 10.0.0.0/8",
	         3},
	        {"10.0.0.1/8, nonsense", "", 0},
	        {"", "", 0},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[TP_CIDR_HOST_BITS_TEXT_MAX];
		assert_int_equal(tp_cidr_host_bits(cases[i].text, buf, sizeof(buf)), cases[i].n);
		assert_string_equal(buf, cases[i].found);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse),
	        cmocka_unit_test(test_match),
	        cmocka_unit_test(test_host_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
