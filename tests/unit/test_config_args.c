/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config_args.c: the command line, its flags named for the
 * settings and its older flags, every error with its exact message, its
 * precedence over the file, and the metrics, PROXY protocol and address
 * list settings from the file and the flags.
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

static void test_args(void **state)
{
	struct tp_config cfg, want;
	char err[256] = "";
	(void)state;

	tp_config_defaults(&cfg);
	want = cfg;
	want.queue_size = 500;
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--host", "127.0.0.1", "--port", "9000",
	                            "--workers", "8", "--queue", "500", (const char *)NULL),
	                 0);
	assert_config_equal(&cfg, &want);

	tp_config_defaults(&cfg);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--host", "::", "--port=0", "--backlog", "5",
	                            "--queue-timeout-ms", "0", "--io-threads", "3", "--max-connections", "9",
	                            "--max-line-bytes", "99", "--max-sleep-ms", "999", "--idle-timeout-s",
	                            "0", "--max-unsent-kib", "8", "--stall-timeout-ms", "1",
	                            "--shutdown-timeout-s", "0", "--log-level", "notice", "-c", "/x.conf",
	                            "-t", (const char *)NULL),
	                 0);
	assert_string_equal(cfg.host, "::");
	assert_int_equal(cfg.port, 0);
	assert_int_equal(cfg.backlog, 5);
	assert_int_equal(cfg.queue_timeout_ms, 0);
	assert_int_equal(cfg.io_threads, 3);
	assert_int_equal(cfg.max_connections, 9);
	assert_int_equal(cfg.max_line_bytes, 99);
	assert_int_equal(cfg.max_sleep_ms, 999);
	assert_int_equal(cfg.idle_timeout_s, 0);
	assert_int_equal(cfg.max_unsent_kib, 8);
	assert_int_equal(cfg.stall_timeout_ms, 1);
	assert_int_equal(tp_config_stall_ms(&cfg), 1);
	assert_int_equal(cfg.shutdown_timeout_s, 0);
	assert_int_equal(cfg.log_level, TP_LOG_NOTICE);
	assert_string_equal(cfg.config_path, "/x.conf");
	assert_true(cfg.config_explicit);
	assert_true(cfg.check_config);
}

static void test_args_errors(void **state)
{
	(void)state;
	expect_args_error("--workers: invalid value '0' (expected an integer from 1 to 1024)", "--workers",
	                  "0");
	expect_args_error("--port: invalid value '70000' (expected an integer from 0 to 65535)", "--port",
	                  "70000");
	expect_args_error("--queue: invalid value 'abc' (expected an integer from 1 to 1000000)", "--queue",
	                  "abc");
	expect_args_error("--queue: invalid value '5x' (expected an integer from 1 to 1000000)", "--queue",
	                  "5x");
	expect_args_error("--queue: invalid value '' (expected an integer from 1 to 1000000)", "--queue", "");
	expect_args_error("--bogus: unknown option (see --help)", "--bogus", NULL);
	expect_args_error("--bogus=1: unknown option (see --help)", "--bogus=1", NULL);
	expect_args_error("--keep-connections=yes: takes no value (see --help)", "--keep-connections=yes",
	                  NULL);
	expect_args_error("--check-config=1: takes no value (see --help)", "--check-config=1", NULL);
	expect_args_error("--keep-connectionsx=yes: unknown option (see --help)", "--keep-connectionsx=yes",
	                  NULL);
	expect_args_error("--workers: missing argument", "--workers", NULL);
	expect_args_error("--config: missing argument", "--config", NULL);
	expect_args_error("extra: unexpected argument (see --help)", "extra", NULL);
	expect_args_error(
	        "--log-level: invalid value 'loud' (expected debug, info, notice, warning or error)",
	        "--log-level", "loud");
	expect_args_error("--host: invalid value '' (expected 1 to 255 bytes)", "--host", "");
	expect_args_error("--queue-size: invalid value '0' (expected an integer from 1 to 1000000)",
	                  "--queue-size", "0");
	expect_args_error(
	        "--log-level: invalid value 'loud' (expected debug, info, notice, warning or error)",
	        "--log-level", "loud");
}

/* Precedence: built-in defaults < file < command-line flags. */
static void test_args_over_file(void **state)
{
	struct tp_config cfg;
	char err[256] = "";
	(void)state;

	tp_config_defaults(&cfg);
	expect_ok(&cfg, "listen = { port = 1234; };\npool = { workers = 4; queue_size = 40; };\nlog_level = "
	                "\"debug\";\n");
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--workers", "16", "--log-level", "error",
	                            (const char *)NULL),
	                 0);
	assert_int_equal(cfg.workers, 16);
	assert_int_equal(cfg.log_level, TP_LOG_ERROR);
	assert_int_equal(cfg.port, 1234);
	assert_int_equal(cfg.queue_size, 40);
	assert_int_equal(cfg.backlog, 1024);
}

/* metrics.*: a boolean in the file; --metrics / --no-metrics; --metrics-host or -port turn it on. */
static void test_metrics_settings(void **state)
{
	struct tp_config cfg;
	char err[256] = "";
	(void)state;

	tp_config_defaults(&cfg);
	assert_false(cfg.metrics_enabled);
	assert_int_equal(cfg.metrics_port, 9101);
	assert_int_equal(cfg.stats_interval_s, 60);
	expect_ok(&cfg, "metrics = { enabled = true; port = 0; };\nlog = { stats_interval_s = 0; };\n");
	assert_true(cfg.metrics_enabled);
	assert_int_equal(cfg.metrics_port, 0);
	assert_int_equal(cfg.stats_interval_s, 0);
	expect_error("metrics = { enabled = 1; };\n", ":1: metrics.enabled: expected true or false");
	expect_error("metrics = { enabled = \"yes\"; };\n", ":1: metrics.enabled: expected true or false");

	tp_config_defaults(&cfg);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--metrics-port", "0", (const char *)NULL), 0);
	assert_true(cfg.metrics_enabled);
	tp_config_defaults(&cfg);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--metrics-host", "::1", (const char *)NULL), 0);
	assert_true(cfg.metrics_enabled);
	assert_string_equal(cfg.metrics_host, "::1");
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--no-metrics", (const char *)NULL), 0);
	assert_false(cfg.metrics_enabled);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--metrics", (const char *)NULL), 0);
	assert_true(cfg.metrics_enabled);
	expect_args_error("--metrics=1: takes no value (see --help)", "--metrics=1", NULL);
	expect_args_error("--stats-interval-s: invalid value '-1' (expected an integer from 0 to 86400)",
	                  "--stats-interval-s", "-1");
}

/* Each setting's flag is its leaf name with dashes; the older flags still work. */
static void test_args_names(void **state)
{
	struct tp_config cfg;
	char err[256] = "";
	(void)state;

	tp_config_defaults(&cfg);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--queue-size", "5", "--shutdown-timeout-s", "3",
	                            "--log-level", "debug", (const char *)NULL),
	                 0);
	assert_int_equal(cfg.queue_size, 5);
	assert_int_equal(cfg.shutdown_timeout_s, 3);
	assert_int_equal(cfg.log_level, TP_LOG_DEBUG);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--queue", "6", "--shutdown-timeout-s", "4",
	                            "--log-level", "error", (const char *)NULL),
	                 0);
	assert_int_equal(cfg.queue_size, 6);
	assert_int_equal(cfg.shutdown_timeout_s, 4);
	assert_int_equal(cfg.log_level, TP_LOG_ERROR);
}

/* listen.proxy_protocol (a boolean) and the address lists, from the file and the flags. */
static void test_proxy_and_allow(void **state)
{
	struct tp_config cfg;
	char err[512] = "";
	(void)state;

	tp_config_defaults(&cfg);
	assert_false(cfg.proxy_protocol);
	assert_string_equal(cfg.proxy_trusted, "");
	expect_ok(&cfg, "listen = { proxy_protocol = true; proxy_trusted = [\"10.0.0.0/8\", \"::1\"];\n"
	                "  allow = \"192.168.0.0/16\"; };\n");
	assert_true(cfg.proxy_protocol);
	assert_string_equal(cfg.proxy_trusted, "10.0.0.0/8, ::1");
	assert_string_equal(cfg.allow, "192.168.0.0/16");
	expect_ok(&cfg, "listen = { proxy_trusted = []; };\n");
	assert_string_equal(cfg.proxy_trusted, "");
	expect_error("listen = { proxy_protocol = 1; };\n",
	             ":1: listen.proxy_protocol: expected true or false");
	expect_error(
	        "listen = { allow = [\"10.0.0.0/40\"]; };\n",
	        ":1: listen.allow: invalid address list \"10.0.0.0/40\" (expected up to 32 prefixes such "
	        "as 10.0.0.0/8 or 2001:db8::/32)");
	expect_error("listen = { allow = [1]; };\n", ":1: listen.allow: expected a list of address strings");

	tp_config_defaults(&cfg);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--proxy-protocol", "--proxy-trusted",
	                            "10.0.0.1,10.0.0.2", "--allow", "::/0", NULL),
	                 0);
	assert_true(cfg.proxy_protocol);
	assert_string_equal(cfg.proxy_trusted, "10.0.0.1, 10.0.0.2");
	assert_string_equal(cfg.allow, "::/0");
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--allow", "nope", NULL), -EINVAL);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), "--no-proxy-protocol", NULL), 0);
	assert_false(cfg.proxy_protocol);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_args),           cmocka_unit_test(test_args_errors),
	        cmocka_unit_test(test_args_over_file), cmocka_unit_test(test_metrics_settings),
	        cmocka_unit_test(test_args_names),     cmocka_unit_test(test_proxy_and_allow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
