/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of conncap.c: the total cap, a trusted proxy's connection
 * counted under no address until its header names the client, and a
 * connection moved to another address leaving the one it was counted
 * under (its count and, with its last connection, its entry).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addrtab.h"
#include "conncap.h"

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	return ss;
}

static struct tp_qgroup *enter(struct tp_conncap *a, const char *text, int max_per_address, int want)
{
	struct sockaddr_storage ss;
	struct tp_qgroup *g = NULL;

	if (text)
		ss = addr(text);
	assert_int_equal(tp_conncap_enter(a, 100, max_per_address, 64, text ? &ss : NULL, &g), want);
	return g;
}

static int move(struct tp_conncap *a, const char *text, int max_per_address, struct tp_qgroup **io_group)
{
	struct sockaddr_storage ss = addr(text);
	return tp_conncap_move(a, max_per_address, 64, &ss, io_group);
}

static int64_t total(struct tp_conncap *a)
{
	return atomic_load(&a->nconns);
}

static void test_the_total_cap(void **state)
{
	struct tp_conncap a;
	struct tp_qgroup *g = NULL;
	(void)state;

	assert_int_equal(tp_conncap_init(&a), 0);
	assert_int_equal(tp_conncap_enter(&a, 1, 0, 64, NULL, &g), 0);
	assert_int_equal(tp_conncap_enter(&a, 1, 0, 64, NULL, &g), -EMFILE);
	assert_int_equal(total(&a), 1); /* the refused one is not counted */
	tp_conncap_leave(&a, a.unnamed);
	assert_int_equal(total(&a), 0);
	tp_conncap_release(&a);
}

static void test_a_proxied_connection_counts_under_the_address_its_header_names(void **state)
{
	struct tp_conncap a;
	(void)state;

	assert_int_equal(tp_conncap_init(&a), 0);
	struct tp_qgroup *g = enter(&a, NULL, 1, 0);
	assert_ptr_equal(g, a.unnamed);
	assert_int_equal(tp_addrtab_count(a.addrs), 0); /* it weighs on no address yet */
	assert_int_equal(move(&a, "10.0.0.1", 1, &g), 0);
	assert_ptr_not_equal(g, a.unnamed);
	assert_int_equal(tp_addrtab_count(a.addrs), 1);
	(void)enter(&a, "10.0.0.1", 1, -EUSERS); /* the named address is at its cap */
	assert_int_equal(total(&a), 1);          /* a move never changes the total */
	tp_conncap_leave(&a, g);
	assert_int_equal(total(&a), 0);
	assert_int_equal(tp_addrtab_count(a.addrs), 0);
	tp_conncap_release(&a);
}

static void test_a_move_leaves_the_address_it_was_counted_under(void **state)
{
	struct tp_conncap a;
	(void)state;

	/*
	 * Counted under one address and named another: the first address's
	 * count is given back, or it would refuse its clients for ever.
	 */
	assert_int_equal(tp_conncap_init(&a), 0);
	struct tp_qgroup *g = enter(&a, "10.0.0.1", 1, 0), *first = g;
	assert_int_equal(move(&a, "10.0.0.2", 1, &g), 0);
	assert_ptr_not_equal(g, first);
	assert_int_equal(tp_addrtab_count(a.addrs), 1); /* the first address's entry went with it */
	struct tp_qgroup *h = enter(&a, "10.0.0.1", 1, 0);
	assert_int_equal(total(&a), 2);
	tp_conncap_leave(&a, g);
	tp_conncap_leave(&a, h);
	assert_int_equal(total(&a), 0);
	assert_int_equal(tp_addrtab_count(a.addrs), 0);
	tp_conncap_release(&a);
}

static void test_a_move_over_the_cap_stays_where_it_was(void **state)
{
	struct tp_conncap a;
	(void)state;

	assert_int_equal(tp_conncap_init(&a), 0);
	struct tp_qgroup *full = enter(&a, "10.0.0.2", 1, 0);
	struct tp_qgroup *g = enter(&a, NULL, 1, 0);
	assert_int_equal(move(&a, "10.0.0.2", 1, &g), -EUSERS);
	assert_ptr_equal(g, a.unnamed);
	assert_int_equal(total(&a), 2);
	tp_conncap_leave(&a, g);
	tp_conncap_leave(&a, full);
	assert_int_equal(total(&a), 0);
	assert_int_equal(tp_addrtab_count(a.addrs), 0);
	tp_conncap_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_the_total_cap),
	        cmocka_unit_test(test_a_proxied_connection_counts_under_the_address_its_header_names),
	        cmocka_unit_test(test_a_move_leaves_the_address_it_was_counted_under),
	        cmocka_unit_test(test_a_move_over_the_cap_stays_where_it_was),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
