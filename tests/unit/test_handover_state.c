/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of handover_state.c: records survive a write and a read byte
 * for byte (binary input, empty input, no records); another version is
 * told apart from damage; every truncation and every single-bit flip of a
 * record is refused; a buffer too small, an address too long and an input
 * over the limit are refused when writing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handover_state.h"

static const char input0[] = "ECHO hel";
static const char input1[] = "SLEEP 5\nECHO a\0b\r\nECHO par";

static void sample(struct tp_handover_conn c[3])
{
	memset(c, 0, 3 * sizeof(*c));
	c[0] = (struct tp_handover_conn){
	        .dev = 9, .ino = 123456, .port = 40000, .input = input0, .input_len = sizeof(input0) - 1};
	snprintf(c[0].addr, sizeof(c[0].addr), "127.0.0.1");
	c[1] = (struct tp_handover_conn){.dev = 9,
	                                 .ino = UINT64_MAX,
	                                 .flow = 77,
	                                 .port = 65535,
	                                 .input = input1,
	                                 .input_len = sizeof(input1) - 1};
	snprintf(c[1].addr, sizeof(c[1].addr), "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	c[2] = (struct tp_handover_conn){.dev = 0, .ino = 1};
	snprintf(c[2].addr, sizeof(c[2].addr), "::1");
}

static char *write_sample(size_t *ret_len)
{
	struct tp_handover_conn c[3];
	size_t len;
	char *buf;

	sample(c);
	len = tp_handover_state_size(c, 3);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(tp_handover_state_write(c, 3, 42, buf, len), len);
	*ret_len = len;
	return buf;
}

static void test_round_trip(void **state)
{
	struct tp_handover_conn want[3], *got = NULL;
	size_t len, n = 0;
	uint32_t gen = 0;
	char *buf = write_sample(&len);
	(void)state;

	sample(want);
	assert_int_equal(tp_handover_state_read(buf, len, &gen, &got, &n), 0);
	assert_int_equal(gen, 42);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(got[i].dev, want[i].dev);
		assert_true(got[i].ino == want[i].ino);
		assert_int_equal(got[i].flow, want[i].flow);
		assert_int_equal(got[i].port, want[i].port);
		assert_int_equal(got[i].discarding, want[i].discarding);
		assert_string_equal(got[i].addr, want[i].addr);
		assert_int_equal(got[i].input_len, want[i].input_len);
		if (want[i].input_len)
			assert_memory_equal(got[i].input, want[i].input, want[i].input_len);
		else
			assert_null(got[i].input);
	}
	free(got);
	free(buf);
}

static void test_empty(void **state)
{
	char buf[64];
	struct tp_handover_conn *got = NULL;
	size_t n = 9;
	uint32_t gen = 0;
	size_t len = tp_handover_state_write(NULL, 0, 7, buf, sizeof(buf));
	(void)state;

	assert_int_equal(len, tp_handover_state_size(NULL, 0));
	assert_int_equal(tp_handover_state_read(buf, len, &gen, &got, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gen, 7);
	free(got);
}

static void test_other_version(void **state)
{
	struct tp_handover_conn *got = NULL;
	size_t len, n = 0;
	uint32_t gen = 0;
	char *buf = write_sample(&len);
	(void)state;

	buf[4] = 2; /* version 2: refused as such, before the checksum is looked at */
	assert_int_equal(tp_handover_state_read(buf, len, &gen, &got, &n), -EPROTONOSUPPORT);
	assert_null(got);
	free(buf);
}

static void test_damage_refused(void **state)
{
	struct tp_handover_conn *got = NULL;
	size_t len, n = 0;
	uint32_t gen = 0;
	char *buf = write_sample(&len);
	(void)state;

	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(tp_handover_state_read(buf, cut, &gen, &got, &n), -EBADMSG);
	for (size_t i = 0; i < len; i++) {
		if (i == 4 || i == 5)
			continue; /* the version: another version, tested above */
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (char)(1 << bit);
			assert_int_equal(tp_handover_state_read(buf, len, &gen, &got, &n), -EBADMSG);
			buf[i] ^= (char)(1 << bit);
		}
	}
	assert_null(got);
	assert_int_equal(tp_handover_state_read(buf, len, &gen, &got, &n), 0);
	free(got);
	free(buf);
}

static void test_write_bounds(void **state)
{
	struct tp_handover_conn c[3];
	char buf[512];
	size_t len;
	(void)state;

	sample(c);
	len = tp_handover_state_size(c, 3);
	assert_true(len <= sizeof(buf));
	assert_int_equal(tp_handover_state_write(c, 3, 1, buf, len - 1), 0);
	memset(c[0].addr, 'x', sizeof(c[0].addr)); /* no NUL */
	assert_int_equal(tp_handover_state_write(c, 1, 1, buf, sizeof(buf)), 0);
	sample(c);
	c[0].input_len = TP_HANDOVER_INPUT_MAX + 1;
	assert_int_equal(tp_handover_state_write(c, 1, 1, buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_other_version), cmocka_unit_test(test_damage_refused),
	        cmocka_unit_test(test_write_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
