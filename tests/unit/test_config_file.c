/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config_file.c reading the libconfig file: valid files, the
 * shipped file, the older top-level names, the address lists at their
 * maximum, every error with its exact message, the configuration left
 * unchanged on error, and a small or absent error buffer.  Files are
 * written to mkstemp() paths.
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

#ifndef TP_SOURCE_DIR
#error "TP_SOURCE_DIR must name the source tree (for conf/tpserver.conf)"
#endif

#define SHIPPED_CONF TP_SOURCE_DIR "/conf/tpserver.conf"

static void test_full_file(void **state)
{
	struct tp_config cfg;
	(void)state;

	tp_config_defaults(&cfg);
	expect_ok(&cfg, "# every setting\n"
	                "listen = { host = \"::1\"; port = 8080; backlog = 128; };\n"
	                "pool = {\n"
	                "  workers = 16L;  // int64 literals are fine when they fit\n"
	                "  queue_size = 0x20;\n"
	                "  queue_timeout_ms = 0;\n"
	                "  io_threads = 4;\n"
	                "};\n"
	                "limits = {\n"
	                "  max_connections = 1000000;\n"
	                "  max_line_bytes = 16;\n"
	                "  max_sleep_ms = 3600000;\n"
	                "  idle_timeout_s = 0;\n"
	                "  max_unsent_kib = 4;\n"
	                "  stall_timeout_ms = 86400000;\n"
	                "};\n"
	                "shutdown_timeout_s = 3600;\n"
	                "log_level = \"Debug\";\n");
	assert_string_equal(cfg.host, "::1");
	assert_int_equal(cfg.port, 8080);
	assert_int_equal(cfg.backlog, 128);
	assert_int_equal(cfg.workers, 16);
	assert_int_equal(cfg.queue_size, 32);
	assert_int_equal(cfg.queue_timeout_ms, 0);
	assert_int_equal(cfg.io_threads, 4);
	assert_int_equal(cfg.max_connections, 1000000);
	assert_int_equal(cfg.max_line_bytes, 16);
	assert_int_equal(cfg.max_sleep_ms, 3600000);
	assert_int_equal(cfg.idle_timeout_s, 0);
	assert_int_equal(cfg.max_unsent_kib, 4);
	assert_int_equal(cfg.stall_timeout_ms, 86400000);
	assert_int_equal(cfg.shutdown_timeout_s, 3600);
	assert_int_equal(cfg.log_level, TP_LOG_DEBUG);
}

/* Settings absent from the file keep the value they had (defaults or the last load). */
static void test_partial_file(void **state)
{
	struct tp_config cfg, want;
	(void)state;

	non_defaults(&cfg);
	want = cfg;
	want.workers = 12;
	want.log_level = TP_LOG_ERROR;
	expect_ok(&cfg, "pool = { workers = 12; };\nlimits = { };\nlog_level = \"error\";\n");
	assert_config_equal(&cfg, &want);

	expect_ok(&cfg, "");
	assert_config_equal(&cfg, &want);

	/* Words chosen among, and booleans, in any case (CONFIG.md). */
	assert_int_not_equal(want.fairness, TP_FAIR_CONNECTION);
	want.fairness = TP_FAIR_CONNECTION;
	want.log_level = TP_LOG_NOTICE;
	want.agent_enabled = false;
	expect_ok(&cfg, "pool = { fairness = \"Connection\"; };\nlog = { level = \"NOTICE\"; };\n"
	                "agent = { enabled = FALSE; };\n");
	assert_config_equal(&cfg, &want);
}

static void test_shipped_file(void **state)
{
	struct tp_config cfg, defaults;
	char err[512] = "";
	int r;
	(void)state;

	tp_config_defaults(&defaults);
	tp_config_defaults(&cfg);
	r = tp_config_load_file(&cfg, SHIPPED_CONF, err, sizeof(err));
	if (r != 0)
		fail_msg("%s: %s", SHIPPED_CONF, err);
	assert_config_equal(&cfg, &defaults);

	/* Over other values too: the shipped file sets nothing. */
	non_defaults(&cfg);
	defaults = cfg;
	assert_int_equal(tp_config_load_file(&cfg, SHIPPED_CONF, err, sizeof(err)), 0);
	assert_config_equal(&cfg, &defaults);
}

static void test_syntax_error(void **state)
{
	(void)state;
	expect_error("pool = {\n  workers = 4;\n  queue_size = ;\n};\n", ":3: syntax error");
	expect_error("pool = {\n  workers = 4;\n  workers = 5;\n};\n",
	             ":3: pool.workers: already set on line 2");
}

/* An error libconfig finds at the end of the text names the last line with anything on it. */
static void test_syntax_error_at_the_end(void **state)
{
	(void)state;
	expect_error("garbage", ":1: syntax error at the end of the file");
	expect_error("garbage\n", ":1: syntax error at the end of the file");
	expect_error("pool = {\n  workers = 4;\n\n  # more to come\n\n\n",
	             ":4: syntax error at the end of the file");
	expect_error("log = { level = \"info;\n};\n", ":2: syntax error at the end of the file");
	/* Not at the end: the line libconfig names, as it is. */
	expect_error("pool = { workers = ; };\n\n", ":1: syntax error");
}

/* A block comment left open would hide the rest of the file: refused, naming where it opens. */
static void test_unclosed_block_comment(void **state)
{
	struct tp_config cfg;
	(void)state;
	expect_error("pool = { workers = 3; };\n/* off for now\nlimits = { max_sleep_ms = 5; };\n",
	             ":2: a comment opened with /* is not closed: nothing after it would be read");
	expect_error("/*", ":1: a comment opened with /* is not closed: nothing after it would be read");
	/* Closed, or only inside a string or a line comment: read as before. */
	non_defaults(&cfg);
	expect_ok(&cfg, "/* a\n comment */ pool = { workers = 3; };\n# not /* a block\n"
	                "log = { level = \"debug\"; }; // nor /* this\n");
	assert_int_equal(cfg.workers, 3);
	assert_int_equal(cfg.log_level, TP_LOG_DEBUG);
}

static void test_wrong_type(void **state)
{
	(void)state;
	expect_error("pool = { workers = \"8\"; };\n", ":1: pool.workers: expected an integer");
	expect_error("pool = { workers = 8.0; };\n", ":1: pool.workers: expected an integer");
	expect_error("pool = { workers = true; };\n", ":1: pool.workers: expected an integer");
	expect_error("pool = { workers = [8]; };\n", ":1: pool.workers: expected an integer");
	expect_error("pool = {\n  workers = { n = 8; };\n};\n", ":2: pool.workers: expected an integer");
	expect_error("shutdown_timeout_s = \"10\";\n", ":1: shutdown_timeout_s: expected an integer");
	expect_error("\nlimits = 5;\n", ":2: limits: expected a group");
	expect_error("listen = ( 1, 2 );\n", ":1: listen: expected a group");
	expect_error("log_level = 3;\n", ":1: log_level: expected a string");
	expect_error("listen = { host = 127; };\n", ":1: listen.host: expected a string");
}

static void test_out_of_range(void **state)
{
	(void)state;
	expect_error("# comment\n\npool = {\n  io_threads = 2;\n\n  # workers = 2;\n  workers = 0;\n};\n",
	             ":7: pool.workers: 0 is out of range (1 to 1024)");
	expect_error("pool = { workers = 1025; };\n", ":1: pool.workers: 1025 is out of range (1 to 1024)");
	expect_error("listen = { port = 70000; };\n", ":1: listen.port: 70000 is out of range (0 to 65535)");
	expect_error("limits = { idle_timeout_s = -1; };\n",
	             ":1: limits.idle_timeout_s: -1 is out of range (0 to 86400)");
	expect_error("limits = { max_line_bytes = 15; };\n",
	             ":1: limits.max_line_bytes: 15 is out of range (16 to 1048576)");
	expect_error("shutdown_timeout_s = 3601;\n",
	             ":1: shutdown_timeout_s: 3601 is out of range (0 to 3600)");
	/* int64 literals that do not fit an int. */
	expect_error("pool = { workers = 99999999999L; };\n",
	             ":1: pool.workers: 99999999999 is out of range (1 to 1024)");
	/* Too big for an int without the L suffix: libconfig 1.5 would truncate 4294967297 to 1. */
	expect_error("pool = { workers = 4294967297; };\n",
	             ":1: pool.workers: 4294967297 is out of range (1 to 1024)");
	expect_error("pool = {\n  workers\n    = 4294967297;\n};\n",
	             ":2: pool.workers: 4294967297 is out of range (1 to 1024)");
	expect_error("pool = { workers = 0xFFFFFFFF; };\n",
	             ":1: pool.workers: 0xFFFFFFFF is out of range (1 to 1024)");
	expect_error("listen = { host = \"port = 1\"; port = -4294967296; };\n",
	             ":1: listen.port: -4294967296 is out of range (0 to 65535)");
	/* A comment after the name or '=' does not hide the literal (issue 11). */
	expect_error("listen = { port = /**/ 4294976296; };\n",
	             ":1: listen.port: 4294976296 is out of range (0 to 65535)");
	expect_error("pool = { workers /* */ = 4294967297; };\n",
	             ":1: pool.workers: 4294967297 is out of range (1 to 1024)");
	expect_error("pool = {\n  workers = # c\n4294967297;\n};\n",
	             ":2: pool.workers: 4294967297 is out of range (1 to 1024)");
	/* The older top-level names are checked against their text too. */
	expect_error("shutdown_timeout_s = /* x */ 4294967297;\n",
	             ":1: shutdown_timeout_s: 4294967297 is out of range (0 to 3600)");
}

static void test_unknown_setting(void **state)
{
	(void)state;
	expect_error("pool = { workers = 4; };\nworker = 4;\n", ":2: worker: unknown setting");
	expect_error(
	        "pool = {\n  workers = 2;\n  queue_size = 10;\n  queue_timeout_ms = 5;\n  io_threads = 1;\n"
	        "\n\n\n  workerz = 4;\n};\n",
	        ":9: pool.workerz: unknown setting");
	expect_error("pol = { workers = 4; };\n", ":1: pol: unknown setting");
	expect_error("pool = {\n  extra = { workers = 4; };\n};\n", ":2: pool.extra: unknown setting");
	/* A real name in the wrong place is as wrong as a typo. */
	expect_error("workers = 4;\n", ":1: workers: unknown setting");
	expect_error("listen = { log_level = \"info\"; };\n", ":1: listen.log_level: unknown setting");
	expect_error("limits = { };\nPool = { };\n", ":2: Pool: unknown setting");
}

static void test_bad_strings(void **state)
{
	char text[600], host[300];
	(void)state;

	expect_error(
	        "\nlog_level = \"loud\";\n",
	        ":2: log_level: invalid value \"loud\" (expected debug, info, notice, warning or error)");
	expect_error("log_level = \"\";\n",
	             ":1: log_level: invalid value \"\" (expected debug, info, notice, warning or error)");
	expect_error("listen = { host = \"\"; };\n", ":1: listen.host: must not be empty");
	memset(host, 'a', 256);
	host[256] = '\0';
	snprintf(text, sizeof(text), "listen = { host = \"%s\"; };\n", host);
	expect_error(text, ":1: listen.host: longer than 255 bytes");
}

static void test_log_levels(void **state)
{
	static const struct {
		const char *name;
		enum tp_log_level level;
	} levels[] = {
	        {"debug", TP_LOG_DEBUG},     {"info", TP_LOG_INFO},   {"notice", TP_LOG_NOTICE},
	        {"warning", TP_LOG_WARNING}, {"error", TP_LOG_ERROR}, {"WARNING", TP_LOG_WARNING},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct tp_config cfg;
		char text[64];

		tp_config_defaults(&cfg);
		snprintf(text, sizeof(text), "log_level = \"%s\";\n", levels[i].name);
		expect_ok(&cfg, text);
		assert_int_equal(cfg.log_level, levels[i].level);
	}
}

static void test_missing_file(void **state)
{
	struct tp_config cfg, before;
	char path[4096], err[512], want[4200];
	(void)state;

	write_temp("", path, sizeof(path));
	unlink(path); /* a name that surely does not exist */
	non_defaults(&cfg);
	before = cfg;
	assert_int_equal(tp_config_load_file(&cfg, path, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);
	assert_config_equal(&cfg, &before);

	assert_int_equal(tp_config_load_file(&cfg, "/", err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/: cannot open: Is a directory");
	assert_config_equal(&cfg, &before);

	/* A pipe (a shell's <(...)): read once, a reload would read it empty and apply the defaults. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	assert_true(write(fds[1], "pool = { workers = 3; };\n", 25) == 25);
	close(fds[1]); /* read to its end, as a shell's pipe would be, never waited on */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	assert_int_equal(tp_config_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: a pipe, read once: a reload could not read it again", path);
	assert_string_equal(err, want);
	assert_config_equal(&cfg, &before);
	close(fds[0]);
}

static void test_nul_byte(void **state)
{
	static const char text[] = "pool = { workers = 4; };\0pool = { workers = 0; };\n";
	struct tp_config cfg, before;
	char path[4096], err[512], want[4200];
	FILE *f;
	int fd;
	(void)state;

	snprintf(path, sizeof(path), "%s/test_config.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, f), sizeof(text) - 1);
	assert_int_equal(fclose(f), 0);
	non_defaults(&cfg);
	before = cfg;
	assert_int_equal(tp_config_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	unlink(path);
	snprintf(want, sizeof(want), "%s: contains a NUL byte (not a text file)", path);
	assert_string_equal(err, want);
	assert_config_equal(&cfg, &before);
}

/* The error buffer may be small or absent; the return value still tells. */
static void test_small_error_buffer(void **state)
{
	struct tp_config cfg;
	char path[4096], err[8];
	(void)state;

	tp_config_defaults(&cfg);
	assert_int_equal(load_text(&cfg, "pool = { workers = 0; };\n", path, sizeof(path), err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(load_text(&cfg, "pool = { workers = 0; };\n", path, sizeof(path), NULL, 0), -EINVAL);
	assert_int_equal(cfg.workers, 8);
}

/* The layout of the table, and the older top-level names it keeps accepting. */
static void test_groups_and_aliases(void **state)
{
	struct tp_config cfg;
	(void)state;

	tp_config_defaults(&cfg);
	expect_ok(&cfg, "shutdown = { timeout_s = 7; };\nlog = { level = \"debug\"; };\n");
	assert_int_equal(cfg.shutdown_timeout_s, 7);
	assert_int_equal(cfg.log_level, TP_LOG_DEBUG);
	expect_ok(&cfg, "shutdown_timeout_s = 9;\nlog_level = \"error\";\n");
	assert_int_equal(cfg.shutdown_timeout_s, 9);
	assert_int_equal(cfg.log_level, TP_LOG_ERROR);

	expect_error("shutdown_timeout_s = 5;\nshutdown = { timeout_s = 7; };\n",
	             ":2: shutdown.timeout_s: already set on line 1");
	expect_error("log = {\n  level = \"info\";\n};\nlog_level = \"info\";\n",
	             ":4: log_level: already set on line 2");
	expect_error(
	        "log = { level = \"loud\"; };\n",
	        ":1: log.level: invalid value \"loud\" (expected debug, info, notice, warning or error)");
	expect_error("shutdown = { timeout_s = 3601; };\n",
	             ":1: shutdown.timeout_s: 3601 is out of range (0 to 3600)");
	expect_error("log = { log_level = \"info\"; };\n", ":1: log.log_level: unknown setting");
	expect_error("shutdown = 3;\n", ":1: shutdown: expected a group");
}

/* A list holds TP_CIDR_MAX prefixes however long each is written; one more is refused. */
static void test_address_lists_hold_their_maximum(void **state)
{
	static char text[8192], want[4096];
	struct tp_config cfg;
	size_t t = 0, w = 0;
	(void)state;

	t += (size_t)snprintf(text + t, sizeof(text) - t, "listen = { allow = [");
	for (int i = 0; i < TP_CIDR_MAX; i++) {
		/* 49 characters each, the longest form of an IPv6 prefix */
		char p[64];
		snprintf(p, sizeof(p), "ffff:ffff:ffff:ffff:ffff:ffff:255.255.%d.255/128", 100 + i);
		t += (size_t)snprintf(text + t, sizeof(text) - t, "%s\"%s\"", i ? ", " : "", p);
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%s%s", i ? ", " : "", p);
	}
	tp_config_defaults(&cfg);
	snprintf(text + t, sizeof(text) - t, "]; };\n");
	expect_ok(&cfg, text);
	assert_string_equal(cfg.allow, want);

	snprintf(text + t, sizeof(text) - t, ", \"10.0.0.0/8\"]; };\n");
	struct tp_config before = cfg;
	char path[4096], err[512] = "";
	assert_int_equal(load_text(&cfg, text, path, sizeof(path), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: listen.allow: invalid address list"));
	assert_config_equal(&cfg, &before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_full_file),
	        cmocka_unit_test(test_partial_file),
	        cmocka_unit_test(test_shipped_file),
	        cmocka_unit_test(test_syntax_error),
	        cmocka_unit_test(test_syntax_error_at_the_end),
	        cmocka_unit_test(test_unclosed_block_comment),
	        cmocka_unit_test(test_wrong_type),
	        cmocka_unit_test(test_out_of_range),
	        cmocka_unit_test(test_unknown_setting),
	        cmocka_unit_test(test_bad_strings),
	        cmocka_unit_test(test_log_levels),
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_nul_byte),
	        cmocka_unit_test(test_small_error_buffer),
	        cmocka_unit_test(test_groups_and_aliases),
	        cmocka_unit_test(test_address_lists_hold_their_maximum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
