/* SPDX-License-Identifier: MIT */
/*
 * config_help: --help, written from the settings table (config.c): each
 * setting's flag, its argument, its help text, its range and its default,
 * wrapped to 80 columns.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"

/* One entry of --help: "      --NAME ARG", then text from column 33, wrapped before column 80. */
static void usage_line(FILE *f, const char *flag, const char *arg, const char *text)
{
	const int width = 79 - 32;
	int col = fprintf(f, "      --%s %s", flag, arg);

	while (*text) {
		int n = (int)strlen(text);

		if (n > width)
			for (n = width; n > 0 && text[n] != ' '; n--)
				;
		if (n == 0)
			n = (int)strcspn(text, " "); /* one word longer than the column */
		fprintf(f, "%*s%.*s\n", col < 32 ? 32 - col : 1, "", n, text);
		text += n + strspn(text + n, " ");
		col = 0;
	}
}

void tp_config_usage(FILE *f)
{
	char flag[64], text[256], range[128];

	fprintf(f, "Usage: tpserver [OPTIONS]\n"
	           "Serve SLEEP and ECHO requests over TCP on a fixed pool of worker threads.\n"
	           "\n"
	           "  -c, --config PATH             configuration file (default " TP_DEFAULT_CONFIG_PATH
	           " if it exists)\n"
	           "  -t, --check-config            validate the configuration, print it, exit\n"
	           "  -q, --quiet                   with --check-config: print only errors\n");
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		tp_setting_flag(s, flag, sizeof(flag));
		if (s->type == TP_SETTING_STRING)
			snprintf(text, sizeof(text), "%s (default %s)", s->help, s->def);
		else
			snprintf(text, sizeof(text), "%s (%s; default %s)", s->help,
			         tp_setting_range(s, range, sizeof(range)), s->def);
		usage_line(f, flag, s->arg, text);
		if (s->type == TP_SETTING_BOOL) {
			char neg[80];
			snprintf(neg, sizeof(neg), "no-%s", flag);
			snprintf(text, sizeof(text), "the opposite of --%s", flag);
			usage_line(f, neg, "", text);
		}
		if (s->flag_alias) {
			snprintf(text, sizeof(text), "same as --%s", flag);
			usage_line(f, s->flag_alias, s->arg, text);
		}
	}
	fprintf(f, "  -h, --help                    show this help\n"
	           "  -V, --version                 show the version\n");
}
