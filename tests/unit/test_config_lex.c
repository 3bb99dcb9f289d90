/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config_lex.c (and the scanner under it, config_scan.c): the
 * integer each setting's text says, whatever comments and literal forms
 * surround it (the reproductions of issue 11, defect 4, among them); the
 * @include lines it follows, from an in-memory set of files, exactly where
 * libconfig 1.5 would (nested, in place, bounded depth, never in a comment);
 * and tp_config_read_include() on a directory, a FIFO (without blocking),
 * a missing, large or binary file (defect 3).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config_lex.h"
#include "config_text.h"

/* In-memory files for @include: name, text pairs, NULL-terminated. */
struct files {
	const char *const *pairs;
	int reads;
};

static int read_mem(void *ctx, const char *name, char **ret_text, char *err, size_t errlen)
{
	struct files *f = ctx;

	f->reads++;
	for (const char *const *p = f->pairs; p && p[0]; p += 2) {
		if (strcmp(p[0], name) == 0) {
			*ret_text = strdup(p[1]);
			return *ret_text ? 0 : -ENOMEM;
		}
	}
	snprintf(err, errlen, "cannot open: No such file or directory");
	return -ENOENT;
}

static struct tp_config_lex *scan_with(const char *text, const char *const *pairs)
{
	struct files f = {pairs, 0};
	struct tp_config_lex *lx = NULL;
	char err[512] = "";
	int r = tp_config_lex_scan("main.conf", text, read_mem, &f, &lx, err, sizeof(err));

	if (r != 0)
		fail_msg("scan failed (%d): %s", r, err);
	return lx;
}

/* The integer at path must be written as text on line, and say value. */
static void expect_int(const struct tp_config_lex *lx, const char *path, const char *text, long long value,
                       unsigned line)
{
	const struct tp_config_lex_int *in = tp_config_lex_find(lx, path);

	if (!in)
		fail_msg("no integer at %s (problem: %s)", path, tp_config_lex_problem(lx));
	assert_string_equal(in->text, text);
	assert_true(in->fits);
	assert_int_equal(in->value, value);
	assert_int_equal(in->line, line);
	assert_true(tp_config_lex_int_is(in, value));
}

/* text has exactly one integer, at path, written as lit and saying value. */
static void expect_one(const char *text, const char *path, const char *lit, long long value, unsigned line)
{
	struct tp_config_lex *lx = scan_with(text, NULL);

	assert_null(tp_config_lex_problem(lx));
	assert_int_equal(tp_config_lex_count(lx), 1);
	expect_int(lx, path, lit, value, line);
	tp_config_lex_free(lx);
}

/* Issue 11, defect 4: a comment after the name or '=' hid the real literal. */
static void test_comment_does_not_hide_the_literal(void **state)
{
	struct tp_config_lex *lx;
	(void)state;

	expect_one("listen = { port = /**/ 4294976296; };\n", "listen.port", "4294976296", 4294976296LL, 1);
	expect_one("pool = { workers /* */ = 4294967297; };\n", "pool.workers", "4294967297", 4294967297LL,
	           1);
	expect_one("pool = {\n  workers = # c\n4294967297;\n};\n", "pool.workers", "4294967297", 4294967297LL,
	           2);
	expect_one("pool = {\n  workers = // c\n  4294967297;\n};\n", "pool.workers", "4294967297",
	           4294967297LL, 2);
	expect_one("pool = {\n  workers /* one\n = 1;\n two */ = \n\n 4294967297;\n};\n", "pool.workers",
	           "4294967297", 4294967297LL, 2);
	/* What libconfig stores (1) is not what the text says. */
	lx = scan_with("pool = { workers = 4294967297; };\n", NULL);
	assert_false(tp_config_lex_int_is(tp_config_lex_find(lx, "pool.workers"), 1));
	tp_config_lex_free(lx);
}

/* Look-alikes in comments and strings are not settings. */
static void test_comments_and_strings_are_skipped(void **state)
{
	(void)state;

	expect_one("# workers = 1;\n// workers = 2;\n/* workers = 3; */ workers = 4;\n", "workers", "4", 4,
	           3);
	expect_one("/* multi\n * line: x = 9;\n */\nx = 5;\n", "x", "5", 5, 4);
	expect_one("h = \"x = 1; \\\" y = 2;\"; x = 3;\n", "x", "3", 3, 1);
	expect_one("h = \"a\" \"b = 1\"\n  \"c\"; x = 3;\n", "x", "3", 3, 2);
	expect_one("x = 3; # a comment with /* inside\ny = \"*/\";\n", "x", "3", 3, 1);
	expect_one("x /* // */ = /* # */ 7 /* */ ; // /*\n", "x", "7", 7, 1);
	/* Hash-comment or block comment right after a value, without a blank. */
	expect_one("x = 7# c\n", "x", "7", 7, 1);
	expect_one("x:7/**/;\n", "x", "7", 7, 1);
}

static void test_literal_forms(void **state)
{
	struct tp_config_lex *lx;
	const struct tp_config_lex_int *in;
	(void)state;

	lx = scan_with("a = 0x1F; b = 0XffL; c = 16L; d = 16LL; e = -7; f = +8; g = 007; h = -0;\n"
	               "i = 9223372036854775807; j = -9223372036854775808L; k = 0x7FFFFFFFFFFFFFFFLL;\n"
	               "l = 1.5; m = 1e5; n = .5; o = true; p = FALSE; q = \"9\";\n",
	               NULL);
	assert_null(tp_config_lex_problem(lx));
	expect_int(lx, "a", "0x1F", 31, 1);
	expect_int(lx, "b", "0XffL", 255, 1);
	expect_int(lx, "c", "16L", 16, 1);
	expect_int(lx, "d", "16LL", 16, 1);
	expect_int(lx, "e", "-7", -7, 1);
	expect_int(lx, "f", "+8", 8, 1);
	expect_int(lx, "g", "007", 7, 1);
	expect_int(lx, "h", "-0", 0, 1);
	expect_int(lx, "i", "9223372036854775807", LLONG_MAX, 2);
	expect_int(lx, "j", "-9223372036854775808L", LLONG_MIN, 2);
	expect_int(lx, "k", "0x7FFFFFFFFFFFFFFFLL", LLONG_MAX, 2);
	/* Floats, booleans and strings are not integers. */
	assert_int_equal(tp_config_lex_count(lx), 11);
	assert_null(tp_config_lex_find(lx, "l"));
	assert_null(tp_config_lex_find(lx, "m"));
	assert_null(tp_config_lex_find(lx, "q"));
	tp_config_lex_free(lx);

	/* Beyond long long: listed, but equal to no value libconfig can return. */
	lx = scan_with("a = 9223372036854775808; b = 0x10000000000000000; c = -9223372036854775809L;\n",
	               NULL);
	for (size_t i = 0; i < 3; i++) {
		in = tp_config_lex_get(lx, i);
		assert_non_null(in);
		assert_false(in->fits);
		assert_false(tp_config_lex_int_is(in, LLONG_MAX));
		assert_false(tp_config_lex_int_is(in, -1));
	}
	assert_null(tp_config_lex_get(lx, 3));
	tp_config_lex_free(lx);
}

static void test_paths(void **state)
{
	struct tp_config_lex *lx;
	(void)state;

	lx = scan_with("a = { b = { c = 1; }; d : 2, }\n"
	               "l = ( 3, { e = 4; }, [5, 6], ( \"s\", 7 ) );\n"
	               "x = 8 y = 9\n",
	               NULL);
	assert_null(tp_config_lex_problem(lx));
	expect_int(lx, "a.b.c", "1", 1, 1);
	expect_int(lx, "a.d", "2", 2, 1);
	expect_int(lx, "l.[0]", "3", 3, 2);
	expect_int(lx, "l.[1].e", "4", 4, 2);
	expect_int(lx, "l.[2].[0]", "5", 5, 2);
	expect_int(lx, "l.[2].[1]", "6", 6, 2);
	expect_int(lx, "l.[3].[1]", "7", 7, 2);
	expect_int(lx, "x", "8", 8, 3);
	expect_int(lx, "y", "9", 9, 3);
	assert_int_equal(tp_config_lex_count(lx), 9);
	tp_config_lex_free(lx);
}

/* A name written twice in one group is found where libconfig stops, with its first place. */
static void test_names_written_twice(void **state)
{
	static const char *const files[] = {"inc.conf", "log = { level = 1; };\npool = { x = 1; };\n", NULL};
	const struct tp_config_lex_name *second, *first;
	struct tp_config_lex *lx;
	(void)state;

	lx = scan_with("pool = {\n  workers = 2;\n};\nlog = {};\npool = { workers = 3; };\n", NULL);
	assert_true(tp_config_lex_repeat(lx, "main.conf", 5, &second, &first));
	assert_string_equal(second->path, "pool");
	assert_int_equal(second->line, 5);
	assert_string_equal(first->file, "main.conf");
	assert_int_equal(first->line, 1);
	/* pool.workers on line 5 is a member of another group: not a repeat of line 2's. */
	assert_false(tp_config_lex_repeat(lx, "main.conf", 2, &second, &first));
	assert_false(tp_config_lex_repeat(lx, "main.conf", 4, &second, &first));
	tp_config_lex_free(lx);

	/* Twice in one group, on one line; in a group in a list. */
	lx = scan_with("a = { b = 1; c = 2; b = 3; };\nl = ( { x = 1; }, { x = 2; y = 1; y = 2; } );\n",
	               NULL);
	assert_true(tp_config_lex_repeat(lx, "main.conf", 1, &second, &first));
	assert_string_equal(second->path, "a.b");
	assert_true(tp_config_lex_repeat(lx, "main.conf", 2, &second, &first));
	assert_string_equal(second->path, "l.[1].y");
	tp_config_lex_free(lx);

	/* Across an @include: the second in the included file, the first in the main one. */
	lx = scan_with("pool = { workers = 2; };\n@include \"inc.conf\"\n", files);
	assert_true(tp_config_lex_repeat(lx, "inc.conf", 2, &second, &first));
	assert_string_equal(second->path, "pool");
	assert_string_equal(first->file, "main.conf");
	assert_false(tp_config_lex_repeat(lx, "inc.conf", 1, &second, &first));
	tp_config_lex_free(lx);
}

/* Where libconfig refuses, the structure stops at the first token it cannot place. */
static void test_syntax_problems(void **state)
{
	static const struct {
		const char *text, *problem;
	} cases[] = {
	        {"a = 1;\nb = ;\n", "main.conf:2: syntax error"},
	        {"a = [1, 2,];\n", "main.conf:1: syntax error"},
	        {"a = { b = 1;\n", "main.conf:2: syntax error"},
	        {"a = 1; }\n", "main.conf:1: syntax error"},
	        {"a = [ [1] ];\n", "main.conf:1: syntax error"},
	        {"a = 0x;\n", "main.conf:1: syntax error"},
	        /* A # comment needs its newline: at the very end it is garbage, as in libconfig. */
	        {"a = 1; # end", "main.conf:1: syntax error"},
	        {"\n\n@x = 1;\n", "main.conf:3: syntax error"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tp_config_lex *lx = scan_with(cases[i].text, NULL);
		const char *problem = tp_config_lex_problem(lx);
		if (!problem || strcmp(problem, cases[i].problem) != 0)
			fail_msg("%s: problem %s, expected %s", cases[i].text, problem, cases[i].problem);
		tp_config_lex_free(lx);
	}
}

/* A megabyte of '#' with no newline is garbage byte by byte; each must not look for the newline again. */
static void test_hashes_without_newline_take_linear_time(void **state)
{
	size_t len = TP_CONFIG_LEX_MAX_FILE_BYTES;
	char *text = malloc(len + 1);
	struct tp_config_lex *lx;
	struct timespec t0, t1;
	(void)state;

	assert_non_null(text);
	memset(text, '#', len);
	text[len] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	lx = scan_with(text, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_string_equal(tp_config_lex_problem(lx), "main.conf:1: syntax error");
	/* Linear: milliseconds (100 times less than the bound); quadratic: seconds. */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
	tp_config_lex_free(lx);
	free(text);
}

/* A syntax error in a file at a long path (an include's) names the whole path. */
static void test_problem_names_a_long_path_whole(void **state)
{
	enum { LEN = 3000 };
	char *name = malloc(LEN + 1), *main_text = malloc(LEN + 32), *want = malloc(LEN + 32);
	(void)state;

	assert_non_null(name);
	assert_non_null(main_text);
	assert_non_null(want);
	memset(name, 'd', LEN);
	name[LEN] = '\0';
	snprintf(main_text, LEN + 32, "@include \"%s\"\n", name);
	snprintf(want, LEN + 32, "%s:2: syntax error", name);
	const char *const files[] = {name, "a = 1;\n}\n", NULL};
	struct tp_config_lex *lx = scan_with(main_text, files);
	assert_string_equal(tp_config_lex_problem(lx), want);
	tp_config_lex_free(lx);
	free(name);
	free(main_text);
	free(want);
}

static void test_include_in_place(void **state)
{
	static const char *const files[] = {
	        "p.conf",   "workers = 4294967297;\n@include \"q.conf\"\n",
	        "q.conf",   "queue_size = 1; /* left open at the end of q.conf ...\n",
	        "top.conf", "limits = { max_sleep_ms = 5; };\n",
	        NULL,
	};
	struct tp_config_lex *lx;
	(void)state;

	/* Included settings land in the group the @include is in; a comment goes on in the includer. */
	lx = scan_with("pool = {\n  @include \"p.conf\"\n  ... closed in main */ io_threads = 2;\n};\n"
	               "\t @include\t\"top.conf\"\n",
	               files);
	assert_null(tp_config_lex_problem(lx));
	expect_int(lx, "pool.workers", "4294967297", 4294967297LL, 1);
	assert_string_equal(tp_config_lex_find(lx, "pool.workers")->file, "p.conf");
	expect_int(lx, "pool.io_threads", "2", 2, 3);
	assert_string_equal(tp_config_lex_find(lx, "pool.io_threads")->file, "main.conf");
	expect_int(lx, "limits.max_sleep_ms", "5", 5, 1);
	expect_int(lx, "pool.queue_size", "1", 1, 1);
	assert_string_equal(tp_config_lex_find(lx, "pool.queue_size")->file, "q.conf");
	tp_config_lex_free(lx);
}

/* Only "@include" at the start of a line, outside comments and strings, is one. */
static void test_include_only_where_libconfig_sees_one(void **state)
{
	static const char *const texts[] = {
	        "/*\n@include \"dir\"\n*/ x = 1;\n",
	        "# @include \"dir\"\nx = 1;\n",
	        "s = \"\n@include \\\"dir\\\"\n\"; x = 1;\n",
	        "x = 1; @include \"dir\"\n",
	        "x = 1;\r@include \"dir\"\n",
	        "@include\"dir\"\nx = 1;\n",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct files f = {NULL, 0};
		struct tp_config_lex *lx = NULL;
		char err[256];
		assert_int_equal(
		        tp_config_lex_scan("main.conf", texts[i], read_mem, &f, &lx, err, sizeof(err)), 0);
		assert_int_equal(f.reads, 0);
		tp_config_lex_free(lx);
	}
}

static void expect_include_error(const char *text, const char *const *pairs, const char *want)
{
	struct files f = {pairs, 0};
	struct tp_config_lex *lx = NULL;
	char err[512] = "";

	assert_int_equal(tp_config_lex_scan("main.conf", text, read_mem, &f, &lx, err, sizeof(err)), -EINVAL);
	assert_null(lx);
	assert_string_equal(err, want);
}

static void test_include_errors(void **state)
{
	static const char *const self[] = {"self.conf", "x = 1;\n@include \"self.conf\"\n", NULL};
	static const char *const chain[] = {"a.conf", "\n\n@include \"missing.conf\"\n", NULL};
	(void)state;

	/* Named at the including file and line. */
	expect_include_error("x = 1;\n\n@include \"nope.conf\"\n", NULL,
	                     "main.conf:3: @include \"nope.conf\": cannot open: No such file or directory");
	expect_include_error("@include \"a.conf\"\n", chain,
	                     "a.conf:3: @include \"missing.conf\": cannot open: No such file or directory");
	/* libconfig's own bound: ten files deep, the eleventh is refused. */
	expect_include_error("@include \"self.conf\"\n", self,
	                     "self.conf:2: @include \"self.conf\": nested more than 10 deep");
	expect_include_error(
	        "@include \"a\\x\"\n", NULL,
	        "main.conf:1: @include \"a\": a name with \\ escapes other than \\\\ or \\\", too "
	        "long, or unterminated");
	expect_include_error(
	        "@include \"abc", NULL,
	        "main.conf:1: @include \"abc\": a name with \\ escapes other than \\\\ or \\\", too "
	        "long, or unterminated");
}

static void temp_dir(char *path, size_t len)
{
	const char *dir = getenv("TMPDIR");

	snprintf(path, len, "%s/test_config_lex.XXXXXX", dir && *dir ? dir : "/tmp");
	assert_non_null(mkdtemp(path));
}

static int read_file(const char *name, char **text, char *err, size_t errlen)
{
	*text = NULL;
	err[0] = '\0';
	return tp_config_read_include(NULL, name, text, err, errlen);
}

/* Issue 11, defect 3: what libconfig must never be given to open. */
static void test_read_file(void **state)
{
	char dir[4096], path[4200], err[256], *text;
	FILE *f;
	(void)state;

	temp_dir(dir, sizeof(dir));
	assert_int_equal(read_file(dir, &text, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "is a directory");

	/* O_NONBLOCK: a FIFO with no writer is refused at once, not waited on. */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(read_file(path, &text, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "not a regular file");
	unlink(path);

	assert_int_equal(read_file("/dev/null", &text, err, sizeof(err)), -EINVAL);
	assert_int_equal(read_file(path, &text, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "cannot open: No such file or directory");

	snprintf(path, sizeof(path), "%s/nul.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("x = 1;\0y = 2;\n", 1, 14, f);
	fclose(f);
	assert_int_equal(read_file(path, &text, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "contains a NUL byte (not a text file)");

	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i <= TP_CONFIG_LEX_MAX_FILE_BYTES / 16; i++)
		fputs("# padding .....\n", f);
	fclose(f);
	assert_int_equal(read_file(path, &text, err, sizeof(err)), -EFBIG);
	assert_string_equal(err, "larger than 1048576 bytes");

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("x = 1;\n", f);
	fclose(f);
	assert_int_equal(read_file(path, &text, err, sizeof(err)), 0);
	assert_string_equal(text, "x = 1;\n");
	free(text);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_comment_does_not_hide_the_literal),
	        cmocka_unit_test(test_comments_and_strings_are_skipped),
	        cmocka_unit_test(test_literal_forms),
	        cmocka_unit_test(test_paths),
	        cmocka_unit_test(test_names_written_twice),
	        cmocka_unit_test(test_syntax_problems),
	        cmocka_unit_test(test_hashes_without_newline_take_linear_time),
	        cmocka_unit_test(test_problem_names_a_long_path_whole),
	        cmocka_unit_test(test_include_in_place),
	        cmocka_unit_test(test_include_only_where_libconfig_sees_one),
	        cmocka_unit_test(test_include_errors),
	        cmocka_unit_test(test_read_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
