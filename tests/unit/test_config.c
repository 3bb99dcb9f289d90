/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config.c and config_file.c: the settings table, the
 * built-in defaults, the libconfig file (valid files, the shipped file, the
 * older top-level names, every error with its exact message, the
 * configuration left unchanged on error), the command line with its older
 * flags and its precedence over the file, the print-then-load round trip
 * that tpserver --check-config relies on, and what a reload cannot apply.
 * Files are written to mkstemp() paths.
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
#include "qnode.h"

#ifndef TP_SOURCE_DIR
#error "TP_SOURCE_DIR must name the source tree (for conf/tpserver.conf)"
#endif

#define SHIPPED_CONF TP_SOURCE_DIR "/conf/tpserver.conf"

static const struct tp_setting *setting(const char *path)
{
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if (strcmp(s->path, path) == 0)
			return s;
	fail_msg("no setting %s in tp_settings", path);
	return NULL;
}

/* Field by field, naming the first one that differs. */
static void assert_config_equal(const struct tp_config *a, const struct tp_config *b)
{
	assert_string_equal(a->host, b->host);
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		if (s->type != TP_SETTING_INT)
			continue;
		if (tp_config_setting_int(a, s) != tp_config_setting_int(b, s))
			fail_msg("%s: %d != %d", s->path, tp_config_setting_int(a, s),
			         tp_config_setting_int(b, s));
	}
	assert_int_equal(a->log_level, b->log_level);
	assert_string_equal(a->config_path, b->config_path);
	assert_int_equal(a->config_explicit, b->config_explicit);
	assert_int_equal(a->check_config, b->check_config);
}

/* A configuration where every setting differs from its default. */
static void non_defaults(struct tp_config *cfg)
{
	tp_config_defaults(cfg);
	snprintf(cfg->host, sizeof(cfg->host), "%s", "10.1.2.3");
	cfg->port = 7001;
	cfg->backlog = 77;
	cfg->workers = 3;
	cfg->queue_size = 33;
	cfg->queue_timeout_ms = 333;
	cfg->io_threads = 2;
	cfg->max_connections = 44;
	cfg->max_line_bytes = 444;
	cfg->max_sleep_ms = 4444;
	cfg->idle_timeout_s = 4;
	cfg->max_unsent_kib = 55;
	cfg->stall_timeout_ms = 5555;
	cfg->shutdown_timeout_s = 6;
	cfg->drain_s = 3;
	cfg->stop_timeout_s = 40;
	cfg->log_level = TP_LOG_WARNING;
	cfg->proxy_protocol = true;
	snprintf(cfg->proxy_trusted, sizeof(cfg->proxy_trusted), "%s", "10.0.0.0/8, ::1");
	snprintf(cfg->allow, sizeof(cfg->allow), "%s", "192.0.2.0/24");
	cfg->agent_enabled = true;
	snprintf(cfg->agent_host, sizeof(cfg->agent_host), "%s", "10.1.2.4");
	cfg->agent_port = 7002;
}

/* Write text to a new temporary file; its path goes to path (PATH_MAX). */
static void write_temp(const char *text, char *path, size_t pathlen)
{
	const char *dir = getenv("TMPDIR");
	size_t len = strlen(text);
	int fd;

	snprintf(path, pathlen, "%s/test_config.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Load text as a file over *cfg; the file's path is left in path. */
static int load_text(struct tp_config *cfg, const char *text, char *path, size_t pathlen, char *err,
                     size_t errlen)
{
	int r;

	write_temp(text, path, pathlen);
	r = tp_config_load_file(cfg, path, err, errlen);
	unlink(path);
	return r;
}

/*
 * text must fail with -EINVAL and exactly "PATH" + suffix in err, leaving a
 * non-default configuration untouched.
 */
static void expect_error(const char *text, const char *suffix)
{
	struct tp_config cfg, before;
	char path[4096], err[512], want[4700];

	non_defaults(&cfg);
	before = cfg;
	err[0] = '\0';
	assert_int_equal(load_text(&cfg, text, path, sizeof(path), err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	assert_string_equal(err, want);
	assert_null(strchr(err, '\n'));
	assert_config_equal(&cfg, &before);
}

static void expect_ok(struct tp_config *cfg, const char *text)
{
	char path[4096], err[512] = "";
	int r = load_text(cfg, text, path, sizeof(path), err, sizeof(err));
	if (r != 0)
		fail_msg("load failed (%d): %s", r, err);
}

/* Run tp_config_parse_args on a NULL-terminated list of arguments. */
static int parse_args(struct tp_config *cfg, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0, r;
	const char *a;
	va_list ap;

	argv[argc++] = strdup("tpserver");
	va_start(ap, errlen);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	r = tp_config_parse_args(cfg, argc, argv, err, errlen);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return r;
}

static void expect_args_error(const char *want, const char *a1, const char *a2)
{
	struct tp_config cfg;
	char err[512] = "";

	tp_config_defaults(&cfg);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), a1, a2, (const char *)NULL), -EINVAL);
	assert_string_equal(err, want);
}

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

static void round_trip(const struct tp_config *in)
{
	struct tp_config out;
	char path[4096], err[512] = "";
	FILE *f;
	int fd, r;

	snprintf(path, sizeof(path), "%s/test_config.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	tp_config_print(in, f);
	assert_int_equal(fclose(f), 0);

	tp_config_defaults(&out);
	/* Command-line only fields are not part of the file. */
	snprintf(out.config_path, sizeof(out.config_path), "%s", in->config_path);
	out.config_explicit = in->config_explicit;
	out.check_config = in->check_config;
	r = tp_config_load_file(&out, path, err, sizeof(err));
	unlink(path);
	if (r != 0)
		fail_msg("printed configuration does not load (%d): %s", r, err);
	assert_config_equal(&out, in);
}

static void test_print_round_trip(void **state)
{
	struct tp_config cfg;
	(void)state;

	tp_config_defaults(&cfg);
	round_trip(&cfg);

	non_defaults(&cfg);
	round_trip(&cfg);

	/* Quotes, backslashes, control characters and UTF-8 survive. */
	snprintf(cfg.host, sizeof(cfg.host), "%s", "a\"b\\c\td\x01\x7f\xc3\xa9 #x //y");
	cfg.port = 0;
	cfg.idle_timeout_s = 0;
	cfg.log_level = TP_LOG_DEBUG;
	snprintf(cfg.config_path, sizeof(cfg.config_path), "%s", "/somewhere.conf");
	cfg.config_explicit = true;
	round_trip(&cfg);

	/* Every bound of every setting. */
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		if (s->type != TP_SETTING_INT)
			continue;
		tp_config_defaults(&cfg);
		cfg.stop_timeout_s = 86400; /* room for the largest drain_s and timeout_s */
		*(int *)((char *)&cfg + s->offset) = s->min;
		round_trip(&cfg);
		*(int *)((char *)&cfg + s->offset) = s->max;
		round_trip(&cfg);
	}
}

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

static void test_print_format(void **state)
{
	struct tp_config cfg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	(void)state;

	tp_config_defaults(&cfg);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	tp_config_print(&cfg, f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(buf, "listen = {\n  host = \"127.0.0.1\";\n  port = 9000;\n"));
	assert_non_null(strstr(buf, "pool = {\n  workers = 8;\n"));
	assert_non_null(strstr(buf, "  stall_timeout_ms = 0; # automatic: max_sleep_ms + 30000 = 40000\n"));
	assert_non_null(strstr(
	        buf,
	        "};\nshutdown = {\n  timeout_s = 10;\n  keep_connections = false;\n"
	        "  keep_connections_max = 10000;\n  drain_s = 0;\n  stop_timeout_s = 30;\n};\nlog = {\n  "
	        "level = \"info\";\n"));
	assert_non_null(strstr(
	        buf, "metrics = {\n  enabled = false;\n  host = \"127.0.0.1\";\n  port = 9101;\n};\n"));
	free(buf);
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
	        cmocka_unit_test(test_validate_names_the_rules_settings),
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
	        cmocka_unit_test(test_args),
	        cmocka_unit_test(test_args_errors),
	        cmocka_unit_test(test_args_over_file),
	        cmocka_unit_test(test_print_round_trip),
	        cmocka_unit_test(test_print_format),
	        cmocka_unit_test(test_metrics_settings),
	        cmocka_unit_test(test_groups_and_aliases),
	        cmocka_unit_test(test_args_names),
	        cmocka_unit_test(test_table),
	        cmocka_unit_test(test_proxy_and_allow),
	        cmocka_unit_test(test_address_lists_hold_their_maximum),
	        cmocka_unit_test(test_reload_diff),
	        cmocka_unit_test(test_keep_restart_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
