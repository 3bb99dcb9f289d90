/* SPDX-License-Identifier: MIT */
/*
 * Documentation check of config.c's settings table: every setting in
 * tp_settings[] is documented, with its default, its range, its reload
 * behaviour and its flags, in docs/CONFIG.md, tpserver.conf(5), the shipped
 * conf/tpserver.conf, tpserver(8) and README.md's flag table; and every
 * setting CONFIG.md lists is in the table.  Adding a setting or changing a
 * default without the documents fails here.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#ifndef TP_SOURCE_DIR
#error "TP_SOURCE_DIR must name the source tree (for the documents)"
#endif

static char *slurp(const char *rel)
{
	char path[4096], *text = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", TP_SOURCE_DIR, rel);
	f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s", path);
	if (getdelim(&text, &cap, '\0', f) < 0)
		fail_msg("cannot read %s", path);
	fclose(f);
	return text;
}

/* The default as a value in the file: strings and enums in double quotes. */
static void file_default(const struct tp_setting *s, char *buf, size_t len)
{
	if (s->type == TP_SETTING_ADDRESSES)
		snprintf(buf, len, "[%s%s%s]", *s->def ? "\"" : "", s->def, *s->def ? "\"" : "");
	else
		snprintf(buf, len, s->type == TP_SETTING_INT || s->type == TP_SETTING_BOOL ? "%s" : "\"%s\"",
		         s->def);
}

static const char *leaf(const struct tp_setting *s)
{
	const char *dot = strrchr(s->path, '.');
	return dot ? dot + 1 : s->path;
}

/* Copy the n-th cell (from 0) of the Markdown table row at line into buf. */
static void cell(const char *line, int n, char *buf, size_t len)
{
	const char *p = line, *end;

	for (int i = 0; i <= n; i++) {
		p = strchr(p, '|');
		assert_non_null(p);
		p++;
	}
	end = strchr(p, '|');
	assert_non_null(end);
	while (*p == ' ')
		p++;
	while (end > p && end[-1] == ' ')
		end--;
	snprintf(buf, len, "%.*s", (int)(end - p), p);
}

static void test_config_md(void **state)
{
	char *text = slurp("docs/CONFIG.md");
	char row[256], want[256], got[512], flag[64], range[128];
	(void)state;

	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		const char *line;

		snprintf(row, sizeof(row), "\n| `%s` |", s->path);
		line = strstr(text, row);
		if (!line)
			fail_msg("docs/CONFIG.md: no row for %s", s->path);
		line++;
		file_default(s, flag, sizeof(flag));
		snprintf(want, sizeof(want), "`%s`", flag);
		cell(line, 1, got, sizeof(got));
		if (strcmp(got, want) != 0)
			fail_msg("docs/CONFIG.md: %s: default %s, want %s", s->path, got, want);
		if (s->type == TP_SETTING_INT) {
			cell(line, 2, got, sizeof(got));
			assert_string_equal(got, tp_config_setting_range(s, range, sizeof(range)));
		}
		cell(line, 3, got, sizeof(got));
		if (strcmp(got, s->reloadable ? "yes" : "no") != 0)
			fail_msg("docs/CONFIG.md: %s: reload %s, want %s", s->path, got,
			         s->reloadable ? "yes" : "no");
		cell(line, 4, got, sizeof(got));
		snprintf(want, sizeof(want), "`--%s`", tp_config_setting_flag(s, flag, sizeof(flag)));
		if (s->flag_alias)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), ", `--%s`", s->flag_alias);
		if (strcmp(got, want) != 0)
			fail_msg("docs/CONFIG.md: %s: flags %s, want %s", s->path, got, want);
	}

	/* And the other way round: every row of the settings table is a setting. */
	for (const char *p = strstr(text, "\n| `"); p; p = strstr(p + 1, "\n| `")) {
		const struct tp_setting *s;
		size_t n = strcspn(p + 4, "`");

		for (s = tp_settings; s->path; s++)
			if (strlen(s->path) == n && strncmp(s->path, p + 4, n) == 0)
				break;
		if (!s->path)
			fail_msg("docs/CONFIG.md: %.*s is not a setting", (int)n, p + 4);
	}
	free(text);
}

/* Write s with man(7)'s escapes for '-' and '"'. */
static void man_escape(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	for (; *s && n + 5 < len; s++) {
		if (*s == '-')
			n += (size_t)snprintf(buf + n, len - n, "\\-");
		else if (*s == '"')
			n += (size_t)snprintf(buf + n, len - n, "\\(dq");
		else
			buf[n++] = *s;
	}
	buf[n] = '\0';
}

static void test_conf_5(void **state)
{
	char *text = slurp("packaging/man/tpserver.conf.5");
	char def[256], esc[256], want[512];
	(void)state;

	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		file_default(s, def, sizeof(def));
		man_escape(def, esc, sizeof(esc));
		if (s->type == TP_SETTING_INT)
			snprintf(want, sizeof(want), "\n.BR %s \" (integer, default %s, %d\\(en%d)\"\n",
			         s->path, esc, s->min, s->max);
		else if (s->type == TP_SETTING_BOOL)
			snprintf(want, sizeof(want), "\n.BR %s \" (boolean, default %s)\"\n", s->path, esc);
		else if (s->type == TP_SETTING_ADDRESSES)
			snprintf(want, sizeof(want), "\n.BR %s \" (address list, default %s)\"\n", s->path,
			         esc);
		else
			snprintf(want, sizeof(want), "\n.BR %s \" (string, default %s", s->path, esc);
		if (!strstr(text, want))
			fail_msg("tpserver.conf(5) does not document %s as: %s", s->path, want + 1);
	}
	free(text);
}

/* The shipped file lists every setting, commented out, in its group, with its default. */
static void test_shipped_conf(void **state)
{
	char *text = slurp("conf/tpserver.conf");
	char want[512], def[256];
	(void)state;

	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		const char *group, *end, *line;
		size_t glen = (size_t)(leaf(s) - s->path);

		assert_true(glen > 1); /* every setting lives in a group */
		snprintf(want, sizeof(want), "\n%.*s = {\n", (int)(glen - 1), s->path);
		group = strstr(text, want);
		if (!group)
			fail_msg("conf/tpserver.conf: no group for %s", s->path);
		end = strstr(group, "\n};\n");
		assert_non_null(end);
		file_default(s, def, sizeof(def));
		snprintf(want, sizeof(want), "\n  #%s = %s;\n", leaf(s), def);
		line = strstr(group, want);
		if (!line || line > end)
			fail_msg("conf/tpserver.conf does not list %s as \"%s\" in its group", s->path,
			         want + 1);
		snprintf(want, sizeof(want), "reload: %s\n", s->reloadable ? "yes" : "no");
		for (const char *p = line; p > group && strncmp(p, "\n\n", 2) != 0; p--)
			if (strncmp(p, want, strlen(want)) == 0)
				line = NULL;
		if (line)
			fail_msg("conf/tpserver.conf: %s is not said to be \"%.*s\"", s->path,
			         (int)strlen(want) - 1, want);
	}
	free(text);
}

/* tpserver(8) and README.md's table list every flag and alias, README with the default. */
static void test_flags_documented(void **state)
{
	char *man = slurp("packaging/man/tpserver.8"), *readme = slurp("README.md");
	char flag[64], esc[128], want[320], got[256];
	const char *row;
	(void)state;

	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		const char *names[2] = {tp_config_setting_flag(s, flag, sizeof(flag)), s->flag_alias};

		if (s->type == TP_SETTING_BOOL) {
			/* A switch: ".BR \-\-flag ", " \-\-no\-flag", and "| `--flag`, `--no-flag` | default
			 * |". */
			man_escape(flag, esc, sizeof(esc));
			snprintf(want, sizeof(want), "\n.BR \\-\\-%s \", \" \\-\\-no\\-%s\n", esc, esc);
			if (!strstr(man, want))
				fail_msg("tpserver(8) does not list --%s (%s)", flag, want);
			snprintf(want, sizeof(want), "\n| `--%s`, `--no-%s` | %s |", flag, flag, s->def);
			if (!strstr(readme, want))
				fail_msg("README.md: no row %s", want + 1);
			continue;
		}

		for (int i = 0; i < 2 && names[i]; i++) {
			man_escape(names[i], esc, sizeof(esc));
			/* ".BI \-\-flag " n\fR, " \-\-alias " n"": the flag starts the line. */
			snprintf(want, sizeof(want), i == 0 ? "\n.BI \\-\\-%s \"" : ", \" \\-\\-%s \"", esc);
			if (!strstr(man, want))
				fail_msg("tpserver(8) does not list --%s (%s)", names[i], want);
			snprintf(want, sizeof(want), "`--%s %s`", names[i], s->arg);
			if (!strstr(readme, want))
				fail_msg("README.md does not list %s", want);
		}
		snprintf(want, sizeof(want), "\n| `--%s %s`", flag, s->arg);
		row = strstr(readme, want);
		if (!row)
			fail_msg("README.md: no row starting with %s", want + 1);
		cell(row + 1, 1, got, sizeof(got));
		if (strncmp(got, s->def, strlen(s->def)) != 0 || isalnum((unsigned char)got[strlen(s->def)]))
			fail_msg("README.md: --%s: default %s, want %s", flag, got, s->def);
	}
	free(man);
	free(readme);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_config_md),
	        cmocka_unit_test(test_conf_5),
	        cmocka_unit_test(test_shipped_conf),
	        cmocka_unit_test(test_flags_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
