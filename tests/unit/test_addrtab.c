/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of addrtab.c: one group per client address (IPv4 whole,
 * IPv4-mapped IPv6 as IPv4, IPv6 by its prefix), the per-address cap,
 * entries that go with their last connection, and who was refused over the
 * cap in a period.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addrtab.h"

static struct sockaddr_storage addr(const char *text, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return ss;
}

static struct tp_qgroup *enter(struct tp_addrtab *t, const char *text, int prefix, int max, int want)
{
	struct sockaddr_storage ss = addr(text, 40000);
	struct tp_qgroup *g = NULL;
	assert_int_equal(tp_addrtab_enter(t, &ss, prefix, max, &g), want);
	return g;
}

static void test_keys(void **state)
{
	struct tp_addrtab *t = tp_addrtab_new();
	(void)state;

	struct tp_qgroup *a = enter(t, "127.0.0.2", 64, 0, 0);
	assert_non_null(a);
	assert_ptr_equal(enter(t, "127.0.0.2", 64, 0, 0), a);        /* another port, same address */
	assert_ptr_equal(enter(t, "::ffff:127.0.0.2", 64, 0, 0), a); /* mapped IPv4 is IPv4 */
	assert_ptr_not_equal(enter(t, "127.0.0.3", 64, 0, 0), a);
	struct tp_qgroup *b = enter(t, "2001:db8:1:2:aaaa::1", 64, 0, 0);
	assert_ptr_equal(enter(t, "2001:db8:1:2:bbbb::9", 64, 0, 0), b); /* same /64 */
	assert_ptr_not_equal(enter(t, "2001:db8:1:3::1", 64, 0, 0), b);
	assert_ptr_equal(enter(t, "2001:db8:1:3::1", 60, 0, 0), enter(t, "2001:db8:1:2::1", 60, 0, 0));
	assert_int_equal(tp_addrtab_count(t), 5);
	tp_addrtab_free(t); /* frees the entries still there */
}

static void test_cap_and_leave(void **state)
{
	struct tp_addrtab *t = tp_addrtab_new();
	struct tp_qgroup *g[3];
	(void)state;

	for (int i = 0; i < 3; i++)
		g[i] = enter(t, "10.0.0.1", 64, 3, 0);
	assert_null(enter(t, "10.0.0.1", 64, 3, -EUSERS)); /* a fourth is refused */
	assert_non_null(enter(t, "10.0.0.2", 64, 3, 0));   /* another address is not */
	tp_addrtab_leave(t, g[0]);
	g[0] = enter(t, "10.0.0.1", 64, 3, 0); /* its place is free again */
	for (int i = 0; i < 3; i++)
		tp_addrtab_leave(t, g[i]);
	assert_int_equal(tp_addrtab_count(t), 1); /* the entry went with its last connection */
	tp_addrtab_leave(t, NULL);
	/* Many addresses: the table grows and finds each again. */
	char text[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(text, sizeof(text), "10.1.%d.%d", i / 256, i % 256);
		(void)enter(t, text, 64, 1, 0);
	}
	for (int i = 0; i < 2000; i += 97) {
		snprintf(text, sizeof(text), "10.1.%d.%d", i / 256, i % 256);
		(void)enter(t, text, 64, 1, -EUSERS);
	}
	assert_int_equal(tp_addrtab_count(t), 2001);
	tp_addrtab_free(t);
}

static void assert_refusals(struct tp_addrtab *t, uint64_t total, size_t addrs, uint64_t top_count,
                            const char *top)
{
	struct tp_addrtab_refusals r;
	assert_int_equal(tp_addrtab_refusals_take(t, &r), total > 0);
	assert_int_equal(r.total, total);
	assert_int_equal(r.addrs, addrs);
	assert_false(r.more);
	assert_int_equal(r.top_count, top_count);
	assert_string_equal(r.top, top);
}

static void test_refusals(void **state)
{
	struct tp_addrtab *t = tp_addrtab_new();
	(void)state;

	assert_refusals(t, 0, 0, 0, "");
	(void)enter(t, "10.0.0.1", 64, 1, 0);
	(void)enter(t, "10.0.0.2", 64, 1, 0);
	(void)enter(t, "10.0.0.3", 64, 0, 0); /* no cap: never refused */
	(void)enter(t, "10.0.0.3", 64, 0, 0);
	assert_refusals(t, 0, 0, 0, "");
	(void)enter(t, "10.0.0.1", 64, 1, -EUSERS);
	for (int i = 0; i < 3; i++)
		(void)enter(t, "::ffff:10.0.0.2", 64, 1, -EUSERS); /* the same client as 10.0.0.2 */
	assert_refusals(t, 4, 2, 3, "10.0.0.2");
	/* A new period: the counts start again, and the first to lead keeps the lead on a tie. */
	assert_refusals(t, 0, 0, 0, "");
	(void)enter(t, "10.0.0.1", 64, 1, -EUSERS);
	(void)enter(t, "10.0.0.2", 64, 1, -EUSERS);
	assert_refusals(t, 2, 2, 1, "10.0.0.1");
	/* IPv6 by its prefix, named as one; a whole address without a length. */
	(void)enter(t, "2001:db8:1:2::1", 64, 1, 0);
	(void)enter(t, "2001:db8:1:2::9", 64, 1, -EUSERS);
	assert_refusals(t, 1, 1, 1, "2001:db8:1:2::/64");
	(void)enter(t, "2001:db8::5", 128, 1, 0);
	(void)enter(t, "2001:db8::5", 128, 1, -EUSERS);
	assert_refusals(t, 1, 1, 1, "2001:db8::5");
	tp_addrtab_free(t);
}

/* A client that reconnects at its cap, its entry gone and back in between, is one address. */
static void test_refusals_across_reconnects(void **state)
{
	struct tp_addrtab *t = tp_addrtab_new();
	(void)state;

	for (int i = 0; i < 3; i++) {
		struct tp_qgroup *g = enter(t, "10.0.0.7", 64, 1, 0);
		(void)enter(t, "10.0.0.7", 64, 1, -EUSERS);
		tp_addrtab_leave(t, g); /* its last connection: the entry goes */
	}
	assert_int_equal(tp_addrtab_count(t), 0);
	assert_refusals(t, 3, 1, 3, "10.0.0.7");
	tp_addrtab_free(t);
}

/* More addresses than slots: said so, and one refused far more than the rest is still named. */
static void test_refusals_from_many_addresses(void **state)
{
	struct tp_addrtab *t = tp_addrtab_new();
	struct tp_addrtab_refusals r;
	char text[32];
	(void)state;

	(void)enter(t, "10.9.0.1", 64, 1, 0);
	for (int i = 0; i < 3 * TP_ADDRTAB_REFUSED_SLOTS; i++) {
		snprintf(text, sizeof(text), "10.2.0.%d", i + 1);
		(void)enter(t, text, 64, 1, 0);
		(void)enter(t, text, 64, 1, -EUSERS);
		(void)enter(t, "10.9.0.1", 64, 1, -EUSERS);
		(void)enter(t, "10.9.0.1", 64, 1, -EUSERS);
	}
	assert_true(tp_addrtab_refusals_take(t, &r));
	assert_int_equal(r.total, 9 * TP_ADDRTAB_REFUSED_SLOTS);
	assert_true(r.more);
	assert_int_equal(r.addrs, TP_ADDRTAB_REFUSED_SLOTS);
	assert_string_equal(r.top, "10.9.0.1");
	assert_int_equal(r.top_count, 6 * TP_ADDRTAB_REFUSED_SLOTS); /* it never gave way: exact */
	assert_refusals(t, 0, 0, 0, "");                             /* and the next period starts empty */
	tp_addrtab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_keys),
	        cmocka_unit_test(test_cap_and_leave),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_refusals_across_reconnects),
	        cmocka_unit_test(test_refusals_from_many_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
