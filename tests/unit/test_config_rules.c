/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config_rules.c: a refusal of tp_config_validate() names
 * the settings its rule is about.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_file.h"
#include "config_fixture.h"
#include "qnode.h"

/* A refusal of tp_config_validate() names the settings its rule is about, for the caller to place. */
static void test_validate_names_the_rules_settings(void **state)
{
	struct tp_config cfg;
	const char *paths[TP_RULE_PATHS_MAX + 1];
	char err[256] = "";
	(void)state;

	tp_config_defaults(&cfg);
	cfg.drain_s = 25;
	assert_int_equal(tp_config_validate(&cfg, paths, err, sizeof(err)), -EINVAL);
	assert_string_equal(paths[0], "shutdown.drain_s");
	assert_string_equal(paths[1], "shutdown.timeout_s");
	assert_string_equal(paths[2], "shutdown.stop_timeout_s");
	assert_null(paths[3]);

	tp_config_defaults(&cfg);
	cfg.workers = 0;
	assert_int_equal(tp_config_validate(&cfg, paths, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "pool.workers: 0 is out of range (1 to 1024)");
	assert_string_equal(paths[0], "pool.workers");
	assert_null(paths[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_validate_names_the_rules_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
