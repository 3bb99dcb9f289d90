/* SPDX-License-Identifier: MIT */
/*
 * config_args: the command line: the flags built from the settings table
 * (a BOOL setting's flag takes no value and has a --no-NAME twin), their
 * parsing into struct tp_config, and --help.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "usage.h"

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

/* One entry of --help: "      --NAME ARG", then text from column 33, wrapped before column 80. */
static void usage_line(FILE *f, const char *flag, const char *arg, const char *text)
{
	char lead[160];

	snprintf(lead, sizeof(lead), "      --%s %s", flag, arg);
	tp_usage_line(f, lead, 32, text);
}

static void usage(FILE *f)
{
	char flag[64], text[256], range[128];

	fprintf(f, "Usage: tpserver [OPTIONS]\n"
	           "Serve SLEEP and ECHO requests over TCP on a fixed pool of worker threads.\n"
	           "\n"
	           "  -c, --config PATH             configuration file (default " TP_DEFAULT_CONFIG_PATH
	           "\n                                if it exists)\n"
	           "  -t, --check-config            validate the configuration, print it, exit\n"
	           "  -q, --quiet                   with --check-config: print only warnings and\n"
	           "                                errors\n");
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		tp_config_setting_flag(s, flag, sizeof(flag));
		if (s->type == TP_SETTING_BOOL) {
			snprintf(text, sizeof(text), "%s (default %s)", s->help,
			         strcmp(s->def, "true") == 0 ? "on" : "off");
			usage_line(f, flag, "", text);
			snprintf(range, sizeof(range), "no-%s", flag);
			snprintf(text, sizeof(text), "turn --%s off", flag);
			usage_line(f, range, "", text);
			continue;
		}
		const char *def = *s->def ? s->def : "none";
		if (s->type == TP_SETTING_STRING)
			snprintf(text, sizeof(text), "%s (default %s)", s->help, def);
		else
			snprintf(text, sizeof(text), "%s (%s; default %s)", s->help,
			         tp_config_setting_range(s, range, sizeof(range)), def);
		usage_line(f, flag, s->arg, text);
		if (s->flag_alias) {
			snprintf(text, sizeof(text), "same as --%s", flag);
			usage_line(f, s->flag_alias, s->arg, text);
		}
	}
	fprintf(f, "      --reload-and-wait PID     (ExecReload) have the daemon PID reload its\n"
	           "                                configuration and wait for the outcome; given\n"
	           "                                alone, no other option with it\n"
	           "  -h, --help                    show this help\n"
	           "  -V, --version                 show the version\n");
}

enum { OPT_SETTING = 256, OPT_NO = 1 << 16 }; /* OPT_NO: the --no-NAME of a BOOL */

/* Flag names are built here: the table holds only the paths they come from. */
struct options {
	char flags[TP_SETTINGS_MAX][48];
	char noflags[TP_SETTINGS_MAX][52];
	struct option opts[8 + 2 * TP_SETTINGS_MAX];
};

static void build_options(struct options *o)
{
	static const struct option fixed[] = {
	        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 't'},
	        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	};
	size_t n = 0, i = 0;

	for (; n < sizeof(fixed) / sizeof(fixed[0]); n++)
		o->opts[n] = fixed[n];
	for (const struct tp_setting *s = tp_settings; s->path; s++, i++) {
		int val = OPT_SETTING + (int)i;
		tp_config_setting_flag(s, o->flags[i], sizeof(o->flags[i]));
		if (s->type == TP_SETTING_BOOL) {
			snprintf(o->noflags[i], sizeof(o->noflags[i]), "no-%s", o->flags[i]);
			o->opts[n++] = (struct option){o->flags[i], no_argument, NULL, val};
			o->opts[n++] = (struct option){o->noflags[i], no_argument, NULL, val | OPT_NO};
			continue;
		}
		o->opts[n++] = (struct option){o->flags[i], required_argument, NULL, val};
		if (s->flag_alias)
			o->opts[n++] = (struct option){s->flag_alias, required_argument, NULL, val};
	}
	o->opts[n] = (struct option){NULL, 0, NULL, 0};
}

/* Set the BOOL setting at path true (a flag that implies it was given). */
static void enable(struct tp_config *cfg, const char *path)
{
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if (s->type == TP_SETTING_BOOL && strcmp(s->path, path) == 0)
			(void)tp_config_setting_parse(cfg, s, "true");
}

/* Apply one option c (its argument in optarg).  Returns 0, 1 (exit 0) or -EINVAL. */
static int apply_option(struct tp_config *cfg, int c, const char *used, char *err, size_t errlen)
{
	char range[128];

	switch (c) {
	case 'c':
		if (strlen(optarg) >= sizeof(cfg->config_path)) {
			snprintf(err, errlen, "--config: path longer than %zu bytes",
			         sizeof(cfg->config_path) - 1);
			return -EINVAL;
		}
		snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", optarg);
		cfg->config_explicit = true;
		return 0;
	case 't':
		cfg->check_config = true;
		return 0;
	case 'q':
		cfg->quiet = true;
		return 0;
	case 'h':
		usage(stdout);
		return 1;
	case 'V':
		printf("tpserver %s\n", TP_VERSION);
		return 1;
	default: {
		const struct tp_setting *s = &tp_settings[(c & ~OPT_NO) - OPT_SETTING];
		if (s->type == TP_SETTING_BOOL)
			return tp_config_setting_parse(cfg, s, c & OPT_NO ? "false" : "true");
		if (s->enables)
			enable(cfg, s->enables);
		if (tp_config_setting_parse(cfg, s, optarg) < 0) {
			snprintf(err, errlen, "--%s: invalid value '%s' (expected %s%s)", used, optarg,
			         s->type == TP_SETTING_INT ? "an integer from " : "",
			         tp_config_setting_range(s, range, sizeof(range)));
			return -EINVAL;
		}
		return 0;
	}
	}
}

int tp_config_parse_args(struct tp_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	struct options o;
	int c, idx = -1, r;

	build_options(&o);
	optind = 0; /* full reset: parse_args runs twice (before and after the file) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:tqhV", o.opts, &idx)) != -1) {
		if (c == ':') {
			snprintf(err, errlen, "%s: missing argument", argv[optind - 1]);
			return -EINVAL;
		}
		if (c == '?') {
			const char *arg = argv[optind - 1], *eq = strchr(arg, '=');
			bool valued = false; /* --flag=VALUE for a flag that takes none */
			for (const struct option *op = o.opts; eq && arg[1] == '-' && op->name; op++)
				valued |= op->has_arg == no_argument &&
				          strlen(op->name) == (size_t)(eq - arg - 2) &&
				          strncmp(op->name, arg + 2, (size_t)(eq - arg - 2)) == 0;
			snprintf(err, errlen, "%s: %s (see --help)", arg,
			         valued ? "takes no value" : "unknown option");
			return -EINVAL;
		}
		r = apply_option(cfg, c, c >= OPT_SETTING ? o.opts[idx].name : "", err, errlen);
		if (r != 0)
			return r;
	}
	if (optind < argc) {
		snprintf(err, errlen, "%s: unexpected argument (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (cfg->quiet && !cfg->check_config) {
		/* Not a daemon that logs less: that is --log-level. */
		snprintf(err, errlen, "-q/--quiet goes with -t/--check-config (see --help)");
		return -EINVAL;
	}
	return 0;
}
