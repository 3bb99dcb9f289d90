/* SPDX-License-Identifier: MIT */
/*
 * config: every tunable setting of tpserver in one struct, and one table,
 * tp_settings[], holding each setting's name, default, range, help text and
 * reload behaviour, which the command line, --help, validation, the file,
 * --check-config, reload and the documentation check all read.
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

#include "cidr.h"
#include "log.h"

#define TP_DEFAULT_CONFIG_PATH "/etc/tpserver.conf"

/* Exit status for configuration errors (sysexits.h EX_CONFIG). */
#define TP_EXIT_CONFIG 78

struct tp_config {
	/* listen: ignored under socket activation */
	char host[256];
	int port;
	int backlog;
	/* listen: apply under socket activation too */
	/* listen.proxy_trusted: prefixes that must send a PROXY header */
	char proxy_trusted[TP_CIDR_TEXT_MAX];
	/* listen.allow: prefixes that may connect, empty = anyone */
	char allow[TP_CIDR_TEXT_MAX];

	/* pool */
	int workers;
	int cheap_workers; /* besides workers, ones that take only cheap requests */
	int queue_size;
	int queue_timeout_ms;
	int io_threads;
	int fairness;             /* enum tp_fairness */
	int fairness_ipv6_prefix; /* bits of an IPv6 address that make its client address */
	int max_wait_ms;          /* 0 = no bound on a request's total wait */

	/* limits */
	int max_connections;
	int max_connections_per_address; /* 0 = no cap */
	int max_line_bytes;
	int max_sleep_ms;
	int idle_timeout_s; /* 0 = never close idle connections */
	int max_unsent_kib;
	int stall_timeout_ms; /* 0 = max_sleep_ms + TP_STALL_MARGIN_MS */

	int shutdown_timeout_s;      /* shutdown.timeout_s */
	int drain_s;                 /* shutdown.drain_s: report drain this long first */
	int stop_timeout_s;          /* shutdown.stop_timeout_s: the unit's TimeoutStopSec */
	int keep_connections_max;    /* shutdown.keep_connections_max */
	enum tp_log_level log_level; /* log.level */
	int stats_interval_s;        /* log.stats_interval_s: 0 = no stats line */

	/* metrics endpoint: a socket passed by systemd as "metrics" wins */
	bool metrics_enabled;
	char metrics_host[256];
	int metrics_port;

	/* agent: the HAProxy agent-check responder; a socket passed as "agent" wins */
	char agent_host[256];
	int agent_port;
	int agent_ready_s;     /* answers carry "ready" this long after the start and SIGUSR1 */
	bool keep_connections; /* shutdown.keep_connections: hand them to systemd on SIGTERM */

	/* command line only */
	char config_path[4096]; /* empty: the default path, if it exists */
	bool config_explicit;   /* --config given: a missing file is an error */
	bool check_config;      /* --check-config / -t */
	bool quiet;             /* --quiet / -q: --check-config prints only errors */

	bool proxy_protocol; /* listen.proxy_protocol: read PROXY headers from proxy_trusted */
	bool agent_enabled;  /* agent.enabled */
};

/*
 * Most connections shutdown.keep_connections_max allows: their names
 * ("tpc" and a two-digit generation, 6 bytes with the ':') must fit in the
 * one LISTEN_FDNAMES environment string of at most 128 KiB (docs/DESIGN.md).
 */
#define TP_KEEP_CONNECTIONS_MAX 20000

/* Margin added to max_sleep_ms for the default stall threshold. */
#define TP_STALL_MARGIN_MS 30000

/*
 * How a setting's value is stored in struct tp_config and written.  A BOOL
 * flag takes no argument and also exists as --no-NAME; the file writes true
 * or false.  ADDRESSES is a char[size] holding prefixes separated by ", "
 * (cidr.h); the file writes a list of strings, ["10.0.0.0/8", "::1"], or
 * one string; the flag one comma-separated string; empty is an empty list.
 */
enum tp_setting_type {
	TP_SETTING_INT,       /* int, within min..max */
	TP_SETTING_BOOL,      /* bool; its flag takes no argument, and --no-NAME sets it false */
	TP_SETTING_ENUM,      /* an int holding one of values[], written by name */
	TP_SETTING_STRING,    /* char[size], min..max bytes long */
	TP_SETTING_ADDRESSES, /* char[size]: address prefixes, at most TP_CIDR_MAX */
};

/*
 * One setting: everything the file, the flags, --help, --check-config,
 * reload and the documentation check know about it.  Its flag is the leaf
 * of path with '_' written '-' (pool.queue_size: --queue-size).
 */
struct tp_setting {
	const char *path;       /* libconfig path, e.g. "pool.queue_size" */
	const char *file_alias; /* older path the file still accepts, or NULL */
	const char *flag;       /* the flag (without dashes) where the leaf name is too vague, or NULL */
	const char *flag_alias; /* older flag (without dashes) still accepted, or NULL */
	size_t offset;          /* offsetof(struct tp_config, field) */
	size_t size;            /* sizeof the field */
	int min;                /* INT: smallest value; STRING: shortest length */
	int max;                /* INT: largest value; STRING: longest length */
	enum tp_setting_type type;
	bool reloadable;   /* SIGHUP applies a new value to the running server */
	bool socket;       /* a property of the listening socket: ignored under socket activation */
	bool bound;        /* of a socket the daemon binds itself: ignored under socket activation too */
	const int *values; /* ENUM: the values allowed, ending with -1 */
	const char *(*name)(int value); /* ENUM: a value's name */
	const char *def;                /* the default, written as on the command line */
	const char *arg;                /* what --help calls the value: N, ADDR, LEVEL */
	const char *help;               /* one line for --help */
	const char *enables;            /* path of a BOOL setting its flag also sets true, or NULL */
};

/* Every setting, in the file's order; ends with an entry whose path is NULL. */
#define TP_SETTINGS_MAX 64 /* entries, the end included */
extern const struct tp_setting tp_settings[];

/*
 * The flag of setting s without its dashes ("queue-size") in buf.  Returns
 * buf.  Never fails: a flag longer than len - 1 is cut short.
 */
char *tp_config_setting_flag(const struct tp_setting *s, char *buf, size_t len);

/*
 * Set s in *cfg from text, as the command line writes it ("8", "info",
 * "127.0.0.1").  Returns 0, or -EINVAL when text is not a valid value of s
 * (nothing changed, no message: the caller names the flag or the line).
 */
int tp_config_setting_parse(struct tp_config *cfg, const struct tp_setting *s, const char *text);

/*
 * The values s allows, for --help and error messages, in buf: "1 to 1024",
 * "debug, info, notice, warning or error", "1 to 255 bytes".  Returns buf.
 */
char *tp_config_setting_range(const struct tp_setting *s, char *buf, size_t len);

/* The int (INT, ENUM) at s in cfg; a BOOL reads as 0 or 1, a STRING as 0. */
int tp_config_setting_int(const struct tp_config *cfg, const struct tp_setting *s);

/* Fill *cfg with the built-in defaults. Never fails. */
void tp_config_defaults(struct tp_config *cfg);

/*
 * Parse argv into *cfg (which already holds defaults, or file values).
 * Returns 0, 1 when --help or --version was printed to stdout and the
 * program should exit 0, or -EINVAL with a one-line message naming the flag
 * in err.  Never exits, never logs.
 */
int tp_config_parse_args(struct tp_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* The most settings one rule of tp_config_validate() is about. */
#define TP_RULE_PATHS_MAX 3

/*
 * Check the settings as a whole: each value in its range, and the rules
 * across settings.  Returns 0, or -EINVAL with a message in err and, in
 * ret_paths (room for TP_RULE_PATHS_MAX + 1), the settings the refused rule
 * is about, NULL-terminated: the caller says where each was set.
 */
int tp_config_validate(const struct tp_config *cfg, const char **ret_paths, char *err, size_t errlen);

/*
 * The combinations that are allowed but worth a warning, each a function
 * that returns true with its warning in msg; NULL ends the list.  What a
 * start, a reload and --check-config print alike:
 * - an explicit limits.stall_timeout_ms at or under limits.max_sleep_ms,
 *   which makes a SLEEP the limits allow count as a stuck worker;
 * - without a drain, a shutdown.timeout_s not under
 *   shutdown.stop_timeout_s: the daemon cuts the requests it still runs
 *   short a second before stop_timeout_s, to be gone half a second before
 *   it (with a drain this is refused by tp_config_validate);
 * - a prefix of listen.allow or listen.proxy_trusted with address bits set
 *   past its length (10.0.0.1/8): it matches its whole network.
 */
typedef bool (*tp_config_warning_fn)(const struct tp_config *cfg, char *msg, size_t len);
extern const tp_config_warning_fn tp_config_warnings[];

/*
 * The next setting after `after` (NULL: from the first) that a reload
 * cannot apply (reloadable false) and whose value differs between running
 * and loaded, with the warning to log about it in msg; NULL when there is
 * none left.  The settings of the listening socket (socket true) count as
 * one change: after one of them the others are skipped, and the message
 * names the new address ("listen settings changed (HOST:PORT): a restart is
 * needed to apply them"); any other says "PATH changed to VALUE: a restart
 * is needed to apply it".  Never logs, never changes either configuration.
 */
const struct tp_setting *tp_config_reload_diff(const struct tp_config *running,
                                               const struct tp_config *loaded, const struct tp_setting *after,
                                               char *msg, size_t msglen);

/*
 * Copy into *loaded, from *running, every setting a reload cannot apply, so
 * that the configuration a reload installs says what really runs.
 */
void tp_config_keep_restart_settings(struct tp_config *loaded, const struct tp_config *running);

/* Effective stall threshold in milliseconds. */
int tp_config_stall_ms(const struct tp_config *cfg);

#endif
