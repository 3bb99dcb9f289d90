/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config_lex: a libFuzzer target holding src/server/config_lex.c (and
 * config_scan.c) to what libconfig 1.5 itself makes of a configuration
 * text.  Built with clang -fsanitize=fuzzer by tests/stages/30-fuzz.sh, and
 * with replay.c as an ordinary program that runs the corpus in ctest
 * (fuzz.config_lex.replay).
 *
 * Input: the configuration text (up to its first NUL, as libconfig reads a
 * string).  An @include may name one of a few fixed files (include_files[]:
 * nested, with a comment or string left open, truncated integers, itself),
 * which libconfig reads from a private directory and config_lex from
 * memory; config_lex refuses any other name, and libconfig cannot open it.
 *
 * Checked, with abort() on any mismatch:
 * - the scan refuses a text only for an @include it cannot follow or a
 *   block comment left open at the end (which libconfig would take as the
 *   end of the text);
 * - an @include that libconfig would open is one config_lex found first
 *   (libconfig never fails with "cannot open include file" on a text the
 *   scan accepted, nor reaches integers config_lex did not list);
 * - when libconfig accepts the text, config_lex understood all of it (no
 *   problem, unless nesting deeper than it follows, where the loader
 *   refuses every integer) and lists exactly libconfig's integers, each
 *   under the same path;
 * - each value libconfig returns is what Debian's libconfig 1.5 makes of the
 *   literal config_lex found, or its exact value (so config_lex paired the
 *   right literal), and the literal's value is what an independent 128-bit
 *   reading says;
 * - so "accepted implies exact": whenever the loader's check
 *   (tp_config_lex_int_is) accepts a value, it is the literal's value.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "config_lex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                     \
	do {                                                                                            \
		if (!(cond)) {                                                                          \
			fprintf(stderr, "fuzz_config_lex: check failed: %s (%s:%d)\n", #cond, __FILE__, \
			        __LINE__);                                                              \
			abort();                                                                        \
		}                                                                                       \
	} while (0)

/*
 * The files an @include may name: written once to a directory of their own,
 * which libconfig is given as its include directory, and served from memory
 * to config_lex.  Any other name is refused, and libconfig cannot open it.
 */
static const char *const include_files[][2] = {
        {"a", "a1 = 1;\n"},
        {"big", "b1 = 0xFFFFFFFF; b2 = 4294967297L;\n"},
        {"comment", "c1 = 2; /* left open\n"},
        {"string", "s1 = \"left open\n"},
        {"nested", "@include \"a\"\nn1 = 4294967297;\n"},
        {"empty", ""},
        {"self", "@include \"self\"\n"},
};

#define N_INCLUDE_FILES (sizeof(include_files) / sizeof(include_files[0]))

static char include_dir[4096];

static void remove_include_dir(void)
{
	char path[4200];

	for (size_t i = 0; i < N_INCLUDE_FILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", include_dir, include_files[i][0]);
		unlink(path);
	}
	rmdir(include_dir);
}

static void make_include_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[4200];

	if (include_dir[0])
		return;
	snprintf(include_dir, sizeof(include_dir), "%s/fuzz_config_lex.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(include_dir) != NULL);
	for (size_t i = 0; i < N_INCLUDE_FILES; i++) {
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s", include_dir, include_files[i][0]);
		f = fopen(path, "w");
		CHECK(f != NULL);
		fputs(include_files[i][1], f);
		CHECK(fclose(f) == 0);
	}
	atexit(remove_include_dir);
}

static int read_include(void *ctx, const char *name, char **ret_text, char *err, size_t errlen)
{
	(void)ctx;
	for (size_t i = 0; i < N_INCLUDE_FILES; i++) {
		if (strcmp(name, include_files[i][0]) == 0) {
			*ret_text = strdup(include_files[i][1]);
			CHECK(*ret_text != NULL);
			return 0;
		}
	}
	snprintf(err, errlen, "not a file of the fuzzer");
	return -ENOENT;
}

static bool has_suffix_l(const char *t)
{
	return t[strlen(t) - 1] == 'L';
}

static bool is_hex(const char *t)
{
	return t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
}

/* What Debian's libconfig 1.5 stores for a literal: 32-bit truncation without L, saturation with it. */
static long long libconfig_value(const char *t)
{
	if (has_suffix_l(t))
		return is_hex(t) ? (long long)strtoull(t, NULL, 16) : strtoll(t, NULL, 10);
	return is_hex(t) ? (int)strtoul(t, NULL, 16) : (int)strtol(t, NULL, 10);
}

/* An independent reading of the literal; false when it is outside long long. */
static bool exact_value(const char *t, long long *ret)
{
	__int128 v = 0;
	bool neg = *t == '-';
	int base = 10;

	t += *t == '-' || *t == '+';
	if (is_hex(t))
		base = 16, t += 2;
	for (; *t && *t != 'L'; t++) {
		int d = *t <= '9' ? *t - '0' : (*t | 0x20) - 'a' + 10;
		CHECK(d >= 0 && d < base);
		v = v * base + d;
		if (v > (__int128)INT64_MAX + 1)
			return false;
	}
	v = neg ? -v : v;
	if (v > INT64_MAX || v < INT64_MIN)
		return false;
	*ret = (long long)v;
	return true;
}

static void check_int(const struct tp_config_lex *lx, const config_setting_t *s, const char *path)
{
	const struct tp_config_lex_int *in = tp_config_lex_find(lx, path);
	long long v, exact = 0;
	bool fits;

	if (!in) {
		/* Only where config_lex said it stopped following; the loader then refuses. */
		CHECK(tp_config_lex_problem(lx) != NULL);
		return;
	}
	v = config_setting_type(s) == CONFIG_TYPE_INT ? config_setting_get_int(s)
	                                              : config_setting_get_int64(s);
	fits = exact_value(in->text, &exact);
	CHECK(in->fits == fits);
	CHECK(!fits || in->value == exact);
	/* Debian's 1.5 truncates (typing by the suffix); one that keeps the exact value is right too. */
	CHECK(v == libconfig_value(in->text) || (fits && v == exact));
	if (v == libconfig_value(in->text))
		CHECK(config_setting_type(s) ==
		      (has_suffix_l(in->text) ? CONFIG_TYPE_INT64 : CONFIG_TYPE_INT));
	if (tp_config_lex_int_is(in, v))
		CHECK(fits && v == exact);
	CHECK(in->line >= 1);
}

/* Every integer under s (path: its path), counted into *n. */
static void walk(const struct tp_config_lex *lx, const config_setting_t *s, const char *path, size_t *n)
{
	int len = config_setting_length(s);

	if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
		check_int(lx, s, path);
		++*n;
		return;
	}
	for (int i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *name = config_setting_name(e);
		char child[1024];
		int w = name ? snprintf(child, sizeof(child), "%s%s%s", path, *path ? "." : "", name)
		             : snprintf(child, sizeof(child), "%s%s[%d]", path, *path ? "." : "", i);
		if (w >= 0 && (size_t)w < sizeof(child))
			walk(lx, e, child, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[512];
	struct tp_config_lex *lx = NULL;
	int r;
	config_t c;

	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	make_include_dir();
	r = tp_config_lex_scan("fuzz.conf", text, read_include, NULL, &lx, err, sizeof(err));
	CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		CHECK(strstr(err, ": @include \"") != NULL ||
		      strstr(err, ": a comment opened with /* is not closed") != NULL);
		free(text);
		return 0;
	}

	config_init(&c);
	config_set_include_dir(&c, include_dir);
	if (config_read_string(&c, text) != CONFIG_TRUE) {
		CHECK(strcmp(config_error_text(&c), "cannot open include file") != 0);
	} else {
		const char *problem = tp_config_lex_problem(lx);
		size_t n = 0;

		CHECK(problem == NULL || strstr(problem, "nested too deep") != NULL);
		walk(lx, config_root_setting(&c), "", &n);
		CHECK(problem != NULL || n == tp_config_lex_count(lx));
	}
	config_destroy(&c);
	tp_config_lex_free(lx);
	free(text);
	return 0;
}
