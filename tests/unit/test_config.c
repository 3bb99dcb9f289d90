/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config.c: the settings table (flags unique, defaults
 * valid, only the types implemented), the built-in defaults, and what a
 * reload cannot apply: the settings that differ, and the running value of
 * those only a restart applies kept.
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

static void test_defaults(void **state)
{
	struct tp_config cfg;
	const char *paths[TP_RULE_PATHS_MAX + 1];
	char err[256] = "";
	(void)state;

	tp_config_defaults(&cfg);
	assert_string_equal(cfg.host, "127.0.0.1");
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(cfg.backlog, 1024);
	assert_int_equal(cfg.workers, 8);
	assert_int_equal(cfg.queue_size, 1000);
	assert_int_equal(cfg.queue_timeout_ms, 1000);
	assert_int_equal(cfg.io_threads, 1);
	assert_int_equal(cfg.max_connections, 10000);
	assert_int_equal(cfg.max_line_bytes, 4096);
	assert_int_equal(cfg.max_sleep_ms, 10000);
	assert_int_equal(cfg.idle_timeout_s, 300);
	assert_int_equal(cfg.max_unsent_kib, 256);
	assert_int_equal(cfg.stall_timeout_ms, 0);
	assert_int_equal(cfg.shutdown_timeout_s, 10);
	assert_int_equal(cfg.log_level, TP_LOG_INFO);
	assert_string_equal(cfg.config_path, "");
	assert_false(cfg.config_explicit);
	assert_false(cfg.check_config);
	assert_int_equal(tp_config_validate(&cfg, paths, err, sizeof(err)), 0);
	assert_int_equal(tp_config_stall_ms(&cfg), 10000 + TP_STALL_MARGIN_MS);
}

/* The table itself: flags unique, defaults valid, only the types implemented. */
static void test_table(void **state)
{
	static const char *const fixed[] = {"config", "check-config", "quiet", "help", "version"};
	char seen[TP_SETTINGS_MAX * 2 + 8][48], range[128];
	struct tp_config cfg;
	size_t n = 0;
	(void)state;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		snprintf(seen[n++], sizeof(seen[0]), "%s", fixed[i]);
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		const char *names[2] = {tp_config_setting_flag(s, seen[n], sizeof(seen[0])), s->flag_alias};

		n++;
		if (s->flag_alias)
			snprintf(seen[n++], sizeof(seen[0]), "%s", s->flag_alias);
		for (size_t k = 0; k < 2 && names[k]; k++)
			for (size_t j = 0; j + 1 < n; j++)
				if (&seen[j][0] != names[k] && strcmp(seen[j], names[k]) == 0)
					fail_msg("%s: flag --%s is taken", s->path, names[k]);
		assert_true(s->type == TP_SETTING_INT || s->type == TP_SETTING_ENUM ||
		            s->type == TP_SETTING_STRING || s->type == TP_SETTING_BOOL ||
		            s->type == TP_SETTING_ADDRESSES);
		assert_non_null(s->help);
		assert_non_null(s->arg);
		tp_config_defaults(&cfg);
		assert_int_equal(tp_config_setting_parse(&cfg, s, s->def), 0);
		assert_true(strlen(tp_config_setting_range(s, range, sizeof(range))) > 0);
	}
	assert_string_equal(tp_config_setting_flag(setting("limits.max_unsent_kib"), range, sizeof(range)),
	                    "max-unsent-kib");
}

static void test_reload_diff(void **state)
{
	const struct tp_setting *s;
	struct tp_config running, loaded;
	char msg[256] = "";
	(void)state;

	tp_config_defaults(&running);
	loaded = running;
	assert_null(tp_config_reload_diff(&running, &loaded, NULL, msg, sizeof(msg)));

	/* What a reload applies is no difference. */
	loaded.workers = 3;
	loaded.queue_size = 7;
	loaded.log_level = TP_LOG_DEBUG;
	loaded.shutdown_timeout_s = 1;
	assert_null(tp_config_reload_diff(&running, &loaded, NULL, msg, sizeof(msg)));

	loaded.io_threads = 4;
	s = tp_config_reload_diff(&running, &loaded, NULL, msg, sizeof(msg));
	assert_ptr_equal(s, setting("pool.io_threads"));
	assert_string_equal(msg, "pool.io_threads changed to 4: a restart is needed to apply it");
	assert_null(tp_config_reload_diff(&running, &loaded, s, msg, sizeof(msg)));

	/* The listening socket's settings are one change, named by the new address. */
	snprintf(loaded.host, sizeof(loaded.host), "%s", "::1");
	loaded.port = 9001;
	loaded.backlog = 5;
	s = tp_config_reload_diff(&running, &loaded, NULL, msg, sizeof(msg));
	assert_ptr_equal(s, setting("listen.host"));
	assert_string_equal(msg, "listen settings changed ([::1]:9001): a restart is needed to apply them");
	s = tp_config_reload_diff(&running, &loaded, s, msg, sizeof(msg));
	assert_ptr_equal(s, setting("pool.io_threads"));
	assert_null(tp_config_reload_diff(&running, &loaded, s, msg, sizeof(msg)));

	loaded = running;
	loaded.backlog = 5;
	s = tp_config_reload_diff(&running, &loaded, NULL, msg, sizeof(msg));
	assert_ptr_equal(s, setting("listen.backlog"));
	assert_string_equal(msg,
	                    "listen settings changed (127.0.0.1:9000): a restart is needed to apply them");
}

/* A reload keeps the running value of what only a restart applies, and takes the rest. */
static void test_keep_restart_settings(void **state)
{
	struct tp_config running, loaded, want;
	(void)state;

	tp_config_defaults(&running);
	non_defaults(&loaded);
	want = loaded;
	snprintf(want.host, sizeof(want.host), "%s", running.host);
	want.port = running.port;
	want.backlog = running.backlog;
	want.io_threads = running.io_threads;
	want.proxy_protocol = running.proxy_protocol;
	want.agent_enabled = running.agent_enabled;
	snprintf(want.agent_host, sizeof(want.agent_host), "%s", running.agent_host);
	want.agent_port = running.agent_port;
	tp_config_keep_restart_settings(&loaded, &running);
	assert_config_equal(&loaded, &want);
	assert_null(tp_config_reload_diff(&running, &loaded, NULL, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_table),
	        cmocka_unit_test(test_reload_diff),
	        cmocka_unit_test(test_keep_restart_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
