/* SPDX-License-Identifier: MIT */
/*
 * config: every tunable setting of tpserver in one struct, its built-in
 * defaults, its valid ranges, and the command line that overrides them.
 *
 * The configuration file (libconfig) and the command line both fill the same
 * struct tp_config; validation is shared so an out-of-range value gets the
 * same message wherever it came from.  This module never logs: errors are
 * written into a caller-supplied buffer, and the caller reports them once.
 */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#define TP_DEFAULT_CONFIG_PATH "/etc/tpserver.conf"

/* Exit status for configuration errors (sysexits.h EX_CONFIG). */
#define TP_EXIT_CONFIG 78

struct tp_config {
	/* listen: ignored under socket activation */
	char host[256];
	int port;
	int backlog;

	/* pool */
	int workers;
	int queue_size;
	int queue_timeout_ms;
	int io_threads;

	/* limits */
	int max_connections;
	int max_line_bytes;
	int max_sleep_ms;
	int idle_timeout_s; /* 0 = never close idle connections */
	int max_unsent_kib;
	int stall_timeout_ms; /* 0 = max_sleep_ms + TP_STALL_MARGIN_MS */

	int shutdown_timeout_s;
	enum tp_log_level log_level;

	/* command line only */
	char config_path[4096]; /* empty: the default path, if it exists */
	bool config_explicit;   /* --config given: a missing file is an error */
	bool check_config;      /* --check-config / -t */
	bool quiet;             /* --quiet / -q: --check-config prints only errors */
};

/* Margin added to max_sleep_ms for the default stall threshold. */
#define TP_STALL_MARGIN_MS 30000

/* Bounds of each numeric setting; one table used by file, flags and docs. */
struct tp_config_range {
	const char *name; /* libconfig path, e.g. "pool.workers" */
	const char *flag; /* command-line flag without dashes, or NULL */
	size_t offset;    /* offsetof(struct tp_config, field), an int */
	int min;
	int max;
	bool reloadable; /* applied live on SIGHUP */
};

/* The table of numeric settings, terminated by an entry with name == NULL. */
extern const struct tp_config_range tp_config_ranges[];

/* Fill *cfg with the built-in defaults. Never fails. */
void tp_config_defaults(struct tp_config *cfg);

/*
 * Parse argv into *cfg (which already holds defaults, or file values).
 * Returns 0, 1 when --help or --version was printed to stdout and the
 * program should exit 0, or -EINVAL with a one-line message naming the flag
 * in err.  Never exits, never logs.
 */
int tp_config_parse_args(struct tp_config *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * Check cross-setting constraints (e.g. nothing is out of range).  Returns 0
 * or -EINVAL with a message in err.
 */
int tp_config_validate(const struct tp_config *cfg, char *err, size_t errlen);

/* Effective stall threshold in milliseconds. */
int tp_config_stall_ms(const struct tp_config *cfg);

#endif
