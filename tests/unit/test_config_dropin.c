/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config_dropin.c: the main file and the drop-ins of its .d/
 * directory in name order, merged setting by setting (a later file wins,
 * settings it does not name stay); what is not a drop-in is skipped; a
 * missing directory or optional main file is fine; an error names the file
 * and line and changes nothing; where each setting came from (file and
 * line, the command line, the default) and how --check-config prints it.
 * Files live in a mkdtemp() directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_dropin.h"
#include "config_file.h"

struct fixture {
	char dir[256];       /* the temporary directory */
	char main[512];      /* DIR/tp.conf */
	char dropins[512];   /* DIR/tp.conf.d */
	char paths[16][512]; /* every file written, for the teardown */
	size_t npaths;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%.200s/test_config_dropin.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->main, sizeof(f->main), "%s/tp.conf", f->dir);
	snprintf(f->dropins, sizeof(f->dropins), "%s/tp.conf.d", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* Files first, deepest directories last. */
	for (size_t i = f->npaths; i-- > 0;)
		if (unlink(f->paths[i]) < 0)
			rmdir(f->paths[i]);
	rmdir(f->dropins);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Write text to DIR/name (name may be "tp.conf.d/x.conf"); its path goes to ret_path if not NULL. */
static void put(struct fixture *f, const char *name, const char *text, char *ret_path)
{
	char *path = f->paths[f->npaths++];
	char buf[sizeof(f->paths[0])];
	FILE *fp;

	assert_true(f->npaths <= 16);
	snprintf(buf, sizeof(buf), "%s/%.200s", f->dir, name);
	memcpy(path, buf, sizeof(buf));
	if (strncmp(name, "tp.conf.d/", 10) == 0)
		(void)mkdir(f->dropins, 0700);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	if (ret_path)
		strcpy(ret_path, path);
}

static void load_ok(struct fixture *f, struct tp_config *cfg, struct tp_config_origin *origin, bool optional)
{
	char err[512] = "";
	int r = tp_config_dropin_load(cfg, f->main, optional, origin, err, sizeof(err));

	if (r != 0)
		fail_msg("load failed (%d): %s", r, err);
}

static size_t index_of(const char *path)
{
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if (strcmp(s->path, path) == 0)
			return (size_t)(s - tp_settings);
	fail_msg("no setting %s", path);
	return 0;
}

static void later_files_win_setting_by_setting(void **state)
{
	struct fixture *f = *state;
	struct tp_config cfg;

	put(f, "tp.conf", "pool = { workers = 4; queue_size = 50; };\nlimits = { max_sleep_ms = 100; };\n",
	    NULL);
	/* Not in name order on disk; "10-" sorts before "9-" (bytes, not numbers). */
	put(f, "tp.conf.d/9-last.conf", "pool: { workers = 9; };\n", NULL);
	put(f, "tp.conf.d/10-first.conf", "pool = { workers = 6; };\nlog = { level = \"debug\"; };\n", NULL);
	tp_config_defaults(&cfg);
	load_ok(f, &cfg, NULL, false);
	assert_int_equal(cfg.workers, 9);     /* 9-last.conf, after 10-first.conf */
	assert_int_equal(cfg.queue_size, 50); /* the main file: no drop-in names it */
	assert_int_equal(cfg.max_sleep_ms, 100);
	assert_int_equal(cfg.log_level, TP_LOG_DEBUG);
	assert_int_equal(cfg.port, 9000); /* the default */
}

static void what_is_not_a_dropin_is_skipped(void **state)
{
	struct fixture *f = *state;
	struct tp_config cfg;
	char sub[512];

	put(f, "tp.conf", "pool = { workers = 4; };\n", NULL);
	put(f, "tp.conf.d/.hidden.conf", "pool = { workers = 11; };\n", NULL);
	put(f, "tp.conf.d/README", "not a configuration file\n", NULL);
	put(f, "tp.conf.d/50-x.conf.dpkg-dist", "pool = { workers = 12; };\n", NULL);
	put(f, "tp.conf.d/.conf", "pool = { workers = 13; };\n", NULL);
	snprintf(sub, sizeof(sub), "%.400s/dir.conf", f->dropins);
	assert_int_equal(mkdir(sub, 0700), 0);
	strcpy(f->paths[f->npaths++], sub);
	tp_config_defaults(&cfg);
	load_ok(f, &cfg, NULL, false);
	assert_int_equal(cfg.workers, 4);
}

/* A link that cannot be followed (dangling here; a sandbox hides targets too) is not skipped unnoticed. */
static void a_dangling_link_is_an_error_naming_it(void **state)
{
	struct fixture *f = *state;
	struct tp_config cfg;
	char link[512], want[700], err[512] = "";

	put(f, "tp.conf", "pool = { workers = 4; };\n", NULL);
	put(f, "tp.conf.d/10-a.conf", "pool = { workers = 6; };\n", NULL);
	snprintf(link, sizeof(link), "%.400s/50-site.conf", f->dropins);
	assert_int_equal(symlink("/nonexistent/site.conf", link), 0);
	strcpy(f->paths[f->npaths++], link);
	tp_config_defaults(&cfg);
	assert_int_equal(tp_config_dropin_load(&cfg, f->main, false, NULL, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", link);
	assert_string_equal(err, want);
	assert_int_equal(cfg.workers, 8); /* nothing applied */
}

/* A drop-in directory that is a dangling link is not "no directory": its files would go unread. */
static void a_dangling_directory_link_is_an_error(void **state)
{
	struct fixture *f = *state;
	struct tp_config cfg;
	char want[700], err[512] = "";

	put(f, "tp.conf", "pool = { workers = 4; };\n", NULL);
	assert_int_equal(symlink("/nonexistent/tp.conf.d", f->dropins), 0);
	strcpy(f->paths[f->npaths++], f->dropins);
	tp_config_defaults(&cfg);
	assert_int_equal(tp_config_dropin_load(&cfg, f->main, false, NULL, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot read the drop-in directory: No such file or directory",
	         f->dropins);
	assert_string_equal(err, want);
}

static void missing_directory_and_optional_main_file(void **state)
{
	struct fixture *f = *state;
	struct tp_config cfg;
	char err[512] = "";

	/* No directory: the main file alone. */
	put(f, "tp.conf", "pool = { workers = 4; };\n", NULL);
	tp_config_defaults(&cfg);
	load_ok(f, &cfg, NULL, false);
	assert_int_equal(cfg.workers, 4);

	/* No main file: an error unless it is optional; the drop-ins still count. */
	assert_int_equal(unlink(f->paths[0]), 0);
	put(f, "tp.conf.d/10-a.conf", "pool = { workers = 5; };\n", NULL);
	tp_config_defaults(&cfg);
	assert_int_equal(tp_config_dropin_load(&cfg, f->main, false, NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, f->main));
	assert_int_equal(cfg.workers, 8);
	load_ok(f, &cfg, NULL, true);
	assert_int_equal(cfg.workers, 5);
}

static void an_error_names_the_dropin_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct tp_config cfg, before;
	struct tp_config_origin origin[TP_SETTINGS_MAX], origin_before[TP_SETTINGS_MAX];
	char err[1024] = "", bad[512], want[1024];

	put(f, "tp.conf", "pool = { workers = 4; };\n", NULL);
	put(f, "tp.conf.d/10-a.conf", "pool = { queue_size = 7; };\n", NULL);
	put(f, "tp.conf.d/20-b.conf", "# a comment\npool = {\n  workers = 0;\n};\n", bad);
	tp_config_defaults(&cfg);
	before = cfg;
	memset(origin, 0, sizeof(origin));
	memcpy(origin_before, origin, sizeof(origin));
	assert_int_equal(tp_config_dropin_load(&cfg, f->main, false, origin, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: pool.workers: 0 is out of range (1 to 1024)", bad);
	assert_string_equal(err, want);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
	assert_memory_equal(origin, origin_before, sizeof(origin));

	/*
	 * Each file is parsed alone: the pool group of the main file and of
	 * 10-a.conf is no duplicate, but a group written twice in one file is.
	 */
	put(f, "tp.conf.d/20-b.conf", "pool = { workers = 5; };\npool = { io_threads = 2; };\n", bad);
	assert_int_equal(tp_config_dropin_load(&cfg, f->main, false, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, bad));
}

static void origins_name_file_and_line(void **state)
{
	struct fixture *f = *state;
	struct tp_config_origin origin[TP_SETTINGS_MAX];
	struct tp_config cfg;
	char dropin[512], main_path[512];
	char a0[] = "tpserver", a1[] = "--port", a2[] = "9100", a3[] = "--queue", a4[] = "70";
	char a5[] = "--allow", a6[] = "10.0.0.0/8";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, NULL};
	char err[512] = "";

	put(f, "tp.conf",
	    "pool = {\n  workers = 4;\n  queue_size = 50;\n};\nlisten = { proxy_trusted = [\"::1\"]; };\n",
	    main_path);
	put(f, "tp.conf.d/10-local.conf", "\n\npool = { workers = 6; };\n", dropin);
	memset(origin, 0, sizeof(origin));
	tp_config_defaults(&cfg);
	load_ok(f, &cfg, origin, false);
	assert_string_equal(origin[index_of("pool.workers")].file, dropin);
	assert_int_equal(origin[index_of("pool.workers")].line, 3);
	assert_string_equal(origin[index_of("pool.queue_size")].file, main_path);
	assert_int_equal(origin[index_of("pool.queue_size")].line, 3);
	assert_string_equal(origin[index_of("listen.port")].file, "");

	/* Flags, whatever their spelling (--queue is queue_size's older flag). */
	assert_int_equal(tp_config_origin_args(origin, 7, argv, err, sizeof(err)), 0);
	assert_string_equal(origin[index_of("listen.port")].file, "the command line");
	assert_int_equal(origin[index_of("listen.port")].line, 0);
	assert_string_equal(origin[index_of("pool.queue_size")].file, "the command line");
	assert_string_equal(origin[index_of("pool.workers")].file, dropin);
	assert_string_equal(origin[index_of("listen.host")].file, "");
	/* Address lists too: from the flag, from the file. */
	assert_string_equal(origin[index_of("listen.allow")].file, "the command line");
	assert_string_equal(origin[index_of("listen.proxy_trusted")].file, main_path);
	assert_int_equal(origin[index_of("listen.proxy_trusted")].line, 5);
}

static void print_says_where_each_setting_came_from(void **state)
{
	struct fixture *f = *state;
	struct tp_config_origin origin[TP_SETTINGS_MAX];
	struct tp_config cfg;
	char dropin[512], want[1024], out[8192];
	FILE *fp;
	size_t n;

	put(f, "tp.conf", "", NULL);
	put(f, "tp.conf.d/10-local.conf", "pool = { workers = 6; };\n", dropin);
	memset(origin, 0, sizeof(origin));
	tp_config_defaults(&cfg);
	load_ok(f, &cfg, origin, false);
	fp = tmpfile();
	assert_non_null(fp);
	tp_config_print_origin(&cfg, origin, fp);
	rewind(fp);
	n = fread(out, 1, sizeof(out) - 1, fp);
	out[n] = '\0';
	fclose(fp);
	snprintf(want, sizeof(want), "  workers = 6; # from %s:1\n", dropin);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "  port = 9000; # default\n"));
	assert_non_null(
	        strstr(out, "  stall_timeout_ms = 0; # automatic: max_sleep_ms + 30000 = 40000; default\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(later_files_win_setting_by_setting, setup, teardown),
	        cmocka_unit_test_setup_teardown(what_is_not_a_dropin_is_skipped, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_dangling_link_is_an_error_naming_it, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_dangling_directory_link_is_an_error, setup, teardown),
	        cmocka_unit_test_setup_teardown(missing_directory_and_optional_main_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(an_error_names_the_dropin_and_changes_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(origins_name_file_and_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(print_says_where_each_setting_came_from, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
