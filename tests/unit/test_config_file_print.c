/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config_file.c writing the file: the print-then-load round
 * trip that tpserver --check-config relies on, and the printed format.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_print_round_trip),
	        cmocka_unit_test(test_print_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
