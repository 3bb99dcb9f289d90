/* SPDX-License-Identifier: MIT */
/*
 * config: defaults, ranges and command-line parsing of tpserver's settings.
 * The libconfig file reader lives in config_file.c and shares the range table.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

#define F(field) offsetof(struct tp_config, field)

const struct tp_config_range tp_config_ranges[] = {
        {"listen.port", "port", F(port), 0, 65535, false},
        {"listen.backlog", "backlog", F(backlog), 1, 65535, false},
        {"pool.workers", "workers", F(workers), 1, 1024, true},
        {"pool.queue_size", "queue", F(queue_size), 1, 1000000, true},
        {"pool.queue_timeout_ms", "queue-timeout-ms", F(queue_timeout_ms), 0, 600000, true},
        {"pool.io_threads", "io-threads", F(io_threads), 1, 64, false},
        {"limits.max_connections", "max-connections", F(max_connections), 1, 1000000, true},
        {"limits.max_line_bytes", "max-line-bytes", F(max_line_bytes), 16, 1048576, true},
        {"limits.max_sleep_ms", "max-sleep-ms", F(max_sleep_ms), 0, 3600000, true},
        {"limits.idle_timeout_s", "idle-timeout-s", F(idle_timeout_s), 0, 86400, true},
        {"limits.max_unsent_kib", "max-unsent-kib", F(max_unsent_kib), 4, 1048576, true},
        {"limits.stall_timeout_ms", "stall-timeout-ms", F(stall_timeout_ms), 0, 86400000, true},
        {"shutdown_timeout_s", "shutdown-timeout-s", F(shutdown_timeout_s), 0, 3600, true},
        {NULL, NULL, 0, 0, 0, false},
};

#undef F

void tp_config_defaults(struct tp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->host, sizeof(cfg->host), "%s", "127.0.0.1");
	cfg->port = 9000;
	cfg->backlog = 1024;
	cfg->workers = 8;
	cfg->queue_size = 1000;
	cfg->queue_timeout_ms = 1000;
	cfg->io_threads = 1;
	cfg->max_connections = 10000;
	cfg->max_line_bytes = 4096;
	cfg->max_sleep_ms = 10000;
	cfg->idle_timeout_s = 300;
	cfg->max_unsent_kib = 256;
	cfg->stall_timeout_ms = 0;
	cfg->shutdown_timeout_s = 10;
	cfg->log_level = TP_LOG_INFO;
}

int tp_config_stall_ms(const struct tp_config *cfg)
{
	if (cfg->stall_timeout_ms > 0)
		return cfg->stall_timeout_ms;
	long v = (long)cfg->max_sleep_ms + TP_STALL_MARGIN_MS;
	return v > INT_MAX ? INT_MAX : (int)v;
}

/* Strict decimal: optional sign, digits, nothing else, within int. */
static int parse_int(const char *s, int *ret)
{
	char *end;
	long v;

	if (*s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < INT_MIN || v > INT_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static const struct tp_config_range *range_by_flag(const char *flag)
{
	for (const struct tp_config_range *r = tp_config_ranges; r->name; r++)
		if (r->flag && strcmp(r->flag, flag) == 0)
			return r;
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: tpserver [OPTIONS]\n"
	        "Serve SLEEP and ECHO requests over TCP on a fixed pool of worker threads.\n"
	        "\n"
	        "  -c, --config PATH           configuration file (default " TP_DEFAULT_CONFIG_PATH
	        " if it exists)\n"
	        "  -t, --check-config          validate the configuration, print it, exit\n"
	        "  -q, --quiet                 with --check-config: print only errors\n"
	        "      --host ADDR             address to listen on (default 127.0.0.1)\n"
	        "      --port N                TCP port (default 9000)\n"
	        "      --backlog N             listen backlog (default 1024)\n"
	        "      --workers N             worker threads (default 8)\n"
	        "      --queue N               bounded queue capacity (default 1000)\n"
	        "      --queue-timeout-ms N    wait for queue space before ERR server busy (default 1000)\n"
	        "      --io-threads N          event-loop threads (default 1)\n"
	        "      --max-connections N     concurrent clients (default 10000)\n"
	        "      --max-line-bytes N      longest request line (default 4096)\n"
	        "      --max-sleep-ms N        largest SLEEP argument (default 10000)\n"
	        "      --idle-timeout-s N      close idle connections after N s, 0 = never (default 300)\n"
	        "      --max-unsent-kib N      stop reading a client with this much unsent output (default "
	        "256)\n"
	        "      --stall-timeout-ms N    a worker on one request this long is stuck (default "
	        "max-sleep-ms + 30000)\n"
	        "      --shutdown-timeout-s N  time to finish work on SIGTERM (default 10)\n"
	        "      --log-level LEVEL       debug, info, notice, warning or error (default info)\n"
	        "  -h, --help                  show this help\n"
	        "  -V, --version               show the version\n");
}

int tp_config_parse_args(struct tp_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	enum { OPT_HOST = 256, OPT_LOG_LEVEL, OPT_RANGE };
	static const struct option fixed[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"check-config", no_argument, NULL, 't'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {"host", required_argument, NULL, OPT_HOST},
	        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	struct option opts[64];
	size_t n = 0;
	int c, idx;

	for (size_t i = 0; i < nfixed; i++)
		opts[n++] = fixed[i];
	for (const struct tp_config_range *r = tp_config_ranges; r->name; r++)
		if (r->flag)
			opts[n++] = (struct option){r->flag, required_argument, NULL, OPT_RANGE};
	opts[n] = (struct option){NULL, 0, NULL, 0};

	optind = 0; /* full reset: parse_args runs twice (before and after the file) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:tqhV", opts, &idx)) != -1) {
		switch (c) {
		case 'c':
			snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", optarg);
			cfg->config_explicit = true;
			break;
		case 't':
			cfg->check_config = true;
			break;
		case 'q':
			cfg->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("tpserver %s\n", TP_VERSION);
			return 1;
		case OPT_HOST:
			if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(cfg->host)) {
				snprintf(err, errlen, "--host: invalid address '%s'", optarg);
				return -EINVAL;
			}
			snprintf(cfg->host, sizeof(cfg->host), "%s", optarg);
			break;
		case OPT_LOG_LEVEL:
			if (tp_log_level_parse(optarg, &cfg->log_level) < 0) {
				snprintf(err, errlen,
				         "--log-level: invalid value '%s' (expected debug, info, notice, "
				         "warning or error)",
				         optarg);
				return -EINVAL;
			}
			break;
		case OPT_RANGE: {
			const struct tp_config_range *r = range_by_flag(opts[idx].name);
			int v;
			if (parse_int(optarg, &v) < 0 || v < r->min || v > r->max) {
				snprintf(err, errlen,
				         "--%s: invalid value '%s' (expected an integer from %d to %d)",
				         r->flag, optarg, r->min, r->max);
				return -EINVAL;
			}
			*(int *)((char *)cfg + r->offset) = v;
			break;
		}
		case ':':
			snprintf(err, errlen, "%s: missing argument", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, errlen, "%s: unknown option (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "%s: unexpected argument (see --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int tp_config_validate(const struct tp_config *cfg, char *err, size_t errlen)
{
	for (const struct tp_config_range *r = tp_config_ranges; r->name; r++) {
		int v = *(const int *)((const char *)cfg + r->offset);
		if (v < r->min || v > r->max) {
			snprintf(err, errlen, "%s: %d is out of range (%d to %d)", r->name, v, r->min,
			         r->max);
			return -EINVAL;
		}
	}
	if (cfg->host[0] == '\0') {
		snprintf(err, errlen, "listen.host: must not be empty");
		return -EINVAL;
	}
	return 0;
}
