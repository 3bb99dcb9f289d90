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

/* Address bits past the prefix length: found at any length, and cleared in the network's form. */
static void test_host_bits(void **state)
{
	static const struct {
		const char *text, *given, *network;
		bool host_bits;
	} cases[] = {
	        {"10.0.0.1/8", "10.0.0.1/8", "10.0.0.0/8", true},
	        {"10.0.0.0/8", "10.0.0.0/8", "10.0.0.0/8", false},
	        {"192.168.1.130/25", "192.168.1.130/25", "192.168.1.128/25", true},
	        {"192.168.1.128/25", "192.168.1.128/25", "192.168.1.128/25", false},
	        {"10.1.2.3", "10.1.2.3/32", "10.1.2.3/32", false},
	        {"1.2.3.4/0", "1.2.3.4/0", "0.0.0.0/0", true},
	        {"2001:db8::1/32", "2001:db8::1/32", "2001:db8::/32", true},
	        {"2001:db8:8000::/33", "2001:db8:8000::/33", "2001:db8:8000::/33", false},
	        {"2001:db8:c000::/33", "2001:db8:c000::/33", "2001:db8:8000::/33", true},
	        {"::1", "::1/128", "::1/128", false},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tp_cidr_list l;
		char buf[TP_CIDR_PREFIX_TEXT_MAX + 1];
		assert_int_equal(tp_cidr_parse_list(cases[i].text, &l), 0);
		assert_int_equal(tp_cidr_host_bits(&l.v[0]), cases[i].host_bits);
		tp_cidr_format(&l.v[0], false, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].given);
		tp_cidr_format(&l.v[0], true, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].network);
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
