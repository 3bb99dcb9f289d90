/* SPDX-License-Identifier: MIT */
/*
 * config_fixture: the configurations, temporary files, loads and command
 * lines the unit tests of the configuration share, with their checks
 * (header only, so each test still links only the layer it tests).
 */
#ifndef TP_CONFIG_FIXTURE_H
#define TP_CONFIG_FIXTURE_H

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

static inline const struct tp_setting *setting(const char *path)
{
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if (strcmp(s->path, path) == 0)
			return s;
	fail_msg("no setting %s in tp_settings", path);
	return NULL;
}

/* Field by field, naming the first one that differs. */
static inline void assert_config_equal(const struct tp_config *a, const struct tp_config *b)
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
static inline void non_defaults(struct tp_config *cfg)
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
static inline void write_temp(const char *text, char *path, size_t pathlen)
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
static inline int load_text(struct tp_config *cfg, const char *text, char *path, size_t pathlen, char *err,
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
static inline void expect_error(const char *text, const char *suffix)
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

static inline void expect_ok(struct tp_config *cfg, const char *text)
{
	char path[4096], err[512] = "";
	int r = load_text(cfg, text, path, sizeof(path), err, sizeof(err));
	if (r != 0)
		fail_msg("load failed (%d): %s", r, err);
}

/* Run tp_config_parse_args on a NULL-terminated list of arguments. */
static inline int parse_args(struct tp_config *cfg, char *err, size_t errlen, ...)
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

static inline void expect_args_error(const char *want, const char *a1, const char *a2)
{
	struct tp_config cfg;
	char err[512] = "";

	tp_config_defaults(&cfg);
	assert_int_equal(parse_args(&cfg, err, sizeof(err), a1, a2, (const char *)NULL), -EINVAL);
	assert_string_equal(err, want);
}

#endif
