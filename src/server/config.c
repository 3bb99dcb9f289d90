/* SPDX-License-Identifier: MIT */
/*
 * config: the settings table, and what reads it without a file or a
 * command line: the defaults, parsing and writing a value, validation, and
 * the check of what a reload cannot apply.  The libconfig file reader lives
 * in config_file.c, the command line and --help in config_args.c; both
 * read the same table.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "qnode.h"
#include "log.h"
#include "tp_assert.h"

/* An enum setting is stored as an int. */
_Static_assert(sizeof(enum tp_log_level) == sizeof(int), "log level stored as an int");
_Static_assert(sizeof(enum tp_fairness) == sizeof(int), "fairness stored as an int");

static const int log_levels[] = {TP_LOG_DEBUG, TP_LOG_INFO, TP_LOG_NOTICE, TP_LOG_WARNING, TP_LOG_ERROR, -1};

static const char *log_level_name(int value)
{
	return tp_log_level_name((enum tp_log_level)value);
}

static const int fairness_modes[] = {TP_FAIR_ADDRESS, TP_FAIR_CONNECTION, TP_FAIR_NONE, -1};

#define FIELD(f) .offset = offsetof(struct tp_config, f), .size = sizeof(((struct tp_config *)NULL)->f)
#define INT(f, lo, hi) .type = TP_SETTING_INT, FIELD(f), .min = (lo), .max = (hi), .arg = "N"
#define ENUM(f, vals, nm) .type = TP_SETTING_ENUM, FIELD(f), .values = (vals), .name = (nm)

const struct tp_setting tp_settings[] = {
        {.path = "listen.host",
         .type = TP_SETTING_STRING,
         FIELD(host),
         .min = 1,
         .max = sizeof(((struct tp_config *)NULL)->host) - 1,
         .def = "127.0.0.1",
         .arg = "ADDR",
         .help = "address to listen on",
         .socket = true},
        {.path = "listen.port",
         INT(port, 0, 65535),
         .def = "9000",
         .help = "TCP port, 0 = any free port",
         .socket = true},
        {.path = "listen.backlog",
         INT(backlog, 1, 65535),
         .def = "1024",
         .help = "listen backlog",
         .socket = true},
        {.path = "listen.proxy_protocol",
         .type = TP_SETTING_BOOL,
         FIELD(proxy_protocol),
         .def = "false",
         .arg = "",
         .help = "clients in proxy-trusted must start with a PROXY protocol v1 or v2 header"},
        {.path = "listen.proxy_trusted",
         .type = TP_SETTING_ADDRESSES,
         FIELD(proxy_trusted),
         .def = "",
         .arg = "CIDRS",
         .help = "comma-separated prefixes of the proxies (e.g. HAProxy) that send PROXY headers",
         .reloadable = true},
        {.path = "listen.allow",
         .type = TP_SETTING_ADDRESSES,
         FIELD(allow),
         .def = "",
         .arg = "CIDRS",
         .help = "comma-separated prefixes that may connect, empty = anyone",
         .reloadable = true},
        {.path = "pool.workers",
         INT(workers, 1, 1024),
         .def = "8",
         .help = "worker threads",
         .reloadable = true},
        {.path = "pool.cheap_workers",
         INT(cheap_workers, 0, 16),
         .def = "1",
         .help = "more worker threads that run only cheap requests (ECHO, SLEEP 0), 0 = none",
         .reloadable = true},
        {.path = "pool.queue_size",
         .flag_alias = "queue",
         INT(queue_size, 1, 1000000),
         .def = "1000",
         .help = "bounded queue capacity",
         .reloadable = true},
        {.path = "pool.queue_timeout_ms",
         INT(queue_timeout_ms, 0, 600000),
         .def = "1000",
         .help = "wait for queue space before ERR server busy",
         .reloadable = true},
        {.path = "pool.io_threads", INT(io_threads, 1, 64), .def = "1", .help = "event-loop threads"},
        {.path = "pool.fairness",
         ENUM(fairness, fairness_modes, tp_fairness_name),
         .def = "address",
         .arg = "MODE",
         .help = "share the workers by client address, then connection; by connection; or FIFO",
         .reloadable = true},
        {.path = "pool.fairness_ipv6_prefix",
         INT(fairness_ipv6_prefix, 1, 128),
         .def = "64",
         .help = "leading bits of an IPv6 address that make one client address",
         .reloadable = true},
        {.path = "pool.max_wait_ms",
         INT(max_wait_ms, 0, 3600000),
         .def = "0",
         .help = "ERR server busy instead of running a request that waited this long, 0 = off",
         .reloadable = true},
        {.path = "limits.max_connections",
         INT(max_connections, 1, 1000000),
         .def = "10000",
         .help = "concurrent clients",
         .reloadable = true},
        {.path = "limits.max_connections_per_address",
         INT(max_connections_per_address, 0, 1000000),
         .def = "0",
         .help = "concurrent clients from one address, 0 = no cap",
         .reloadable = true},
        {.path = "limits.max_line_bytes",
         INT(max_line_bytes, 16, 1048576),
         .def = "4096",
         .help = "longest request line",
         .reloadable = true},
        {.path = "limits.max_sleep_ms",
         INT(max_sleep_ms, 0, 3600000),
         .def = "10000",
         .help = "largest SLEEP argument",
         .reloadable = true},
        {.path = "limits.idle_timeout_s",
         INT(idle_timeout_s, 0, 86400),
         .def = "300",
         .help = "close idle connections after N s, 0 = never",
         .reloadable = true},
        {.path = "limits.max_unsent_kib",
         INT(max_unsent_kib, 4, 1048576),
         .def = "256",
         .help = "stop reading a client whose unanswered requests hold N KiB",
         .reloadable = true},
        {.path = "limits.stall_timeout_ms",
         INT(stall_timeout_ms, 0, 86400000),
         .def = "0",
         .help = "a worker on one request this long is stuck, 0 = max-sleep-ms + 30000",
         .reloadable = true},
        {.path = "shutdown.timeout_s",
         .file_alias = "shutdown_timeout_s",
         .flag = "shutdown-timeout-s",
         INT(shutdown_timeout_s, 0, 3600),
         .def = "10",
         .help = "time to finish work on SIGTERM",
         .reloadable = true},
        {.path = "shutdown.keep_connections",
         .type = TP_SETTING_BOOL,
         FIELD(keep_connections),
         .def = "false",
         .arg = "",
         .help = "on SIGTERM, hand open connections to systemd's fd store for the next instance",
         .reloadable = true},
        {.path = "shutdown.keep_connections_max",
         INT(keep_connections_max, 0, TP_KEEP_CONNECTIONS_MAX),
         .def = "10000",
         .help = "most connections handed over; the others are closed",
         .reloadable = true},
        {.path = "shutdown.drain_s",
         .flag = "drain-s",
         INT(drain_s, 0, 3600),
         .def = "0",
         .help = "on SIGTERM, first report drain to the agent check for N s while serving",
         .reloadable = true},
        {.path = "shutdown.stop_timeout_s",
         .flag = "stop-timeout-s",
         INT(stop_timeout_s, 1, 86400),
         .def = "30",
         .help = "the unit's TimeoutStopSec: drain-s + shutdown-timeout-s must stay under it",
         .reloadable = true},
        {.path = "log.level",
         .file_alias = "log_level",
         .flag = "log-level",
         ENUM(log_level, log_levels, log_level_name),
         .def = "info",
         .arg = "LEVEL",
         .help = "least severe messages logged",
         .reloadable = true},
        {.path = "log.stats_interval_s",
         INT(stats_interval_s, 0, 86400),
         .def = "60",
         .help = "log a stats line every N s, 0 = never",
         .reloadable = true},
        {.path = "metrics.enabled",
         .flag = "metrics",
         .type = TP_SETTING_BOOL,
         FIELD(metrics_enabled),
         .def = "false",
         .arg = "",
         .help = "serve GET /metrics (Prometheus) on metrics.host:metrics.port",
         .bound = true},
        {.path = "metrics.host",
         .flag = "metrics-host",
         .type = TP_SETTING_STRING,
         FIELD(metrics_host),
         .min = 1,
         .max = sizeof(((struct tp_config *)NULL)->metrics_host) - 1,
         .def = "127.0.0.1",
         .arg = "ADDR",
         .help = "metrics endpoint address; the flag turns the endpoint on",
         .enables = "metrics.enabled",
         .bound = true},
        {.path = "metrics.port",
         .flag = "metrics-port",
         INT(metrics_port, 0, 65535),
         .def = "9101",
         .help = "metrics endpoint port, 0 = any free port; the flag turns the endpoint on",
         .enables = "metrics.enabled",
         .bound = true},
        {.path = "agent.enabled",
         .flag = "agent",
         .type = TP_SETTING_BOOL,
         FIELD(agent_enabled),
         .def = "false",
         .arg = "",
         .help = "answer HAProxy agent checks on agent-host:agent-port",
         .bound = true},
        {.path = "agent.host",
         .flag = "agent-host",
         .type = TP_SETTING_STRING,
         FIELD(agent_host),
         .min = 1,
         .max = sizeof(((struct tp_config *)NULL)->agent_host) - 1,
         .def = "127.0.0.1",
         .arg = "ADDR",
         .help = "agent-check address; the flag turns the agent check on",
         .enables = "agent.enabled",
         .bound = true},
        {.path = "agent.port",
         .flag = "agent-port",
         INT(agent_port, 0, 65535),
         .def = "9102",
         .help = "agent-check port, 0 = any free port; the flag turns the agent check on",
         .enables = "agent.enabled",
         .bound = true},
        {.path = "agent.ready_s",
         .flag = "agent-ready-s",
         INT(agent_ready_s, 0, 3600),
         .def = "30",
         .help = "for N s after the start and after SIGUSR1 the agent answers ready, which clears a "
                 "drain or maintenance set in HAProxy"},
        {.path = NULL},
};

#undef ENUM
#undef INT
#undef FIELD

_Static_assert(sizeof(tp_settings) / sizeof(tp_settings[0]) <= TP_SETTINGS_MAX, "raise TP_SETTINGS_MAX");

char *tp_config_setting_flag(const struct tp_setting *s, char *buf, size_t len)
{
	const char *dot = strrchr(s->path, '.');

	if (s->flag) {
		snprintf(buf, len, "%s", s->flag);
		return buf;
	}
	snprintf(buf, len, "%s", dot ? dot + 1 : s->path);
	for (char *p = buf; *p; p++)
		if (*p == '_')
			*p = '-';
	return buf;
}

int tp_config_setting_int(const struct tp_config *cfg, const struct tp_setting *s)
{
	return *(const int *)((const char *)cfg + s->offset);
}

static void *field_of(struct tp_config *cfg, const struct tp_setting *s)
{
	return (char *)cfg + s->offset;
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

/* A list of prefixes, kept normalized as "A, B, C" so that it reads back as it parses. */
static int parse_addresses(struct tp_config *cfg, const struct tp_setting *s, const char *text)
{
	static const char sep[] = ", \t";
	struct tp_cidr_list l;
	char *out = field_of(cfg, s);
	size_t n = 0;

	if (tp_cidr_parse_list(text, &l) < 0)
		return -EINVAL;
	for (const char *p = text + strspn(text, sep); *p; p += strspn(p, sep)) {
		size_t w = strcspn(p, sep);
		if (n + w + 3 > s->size)
			return -EINVAL;
		n += (size_t)snprintf(out + n, s->size - n, "%s%.*s", n ? ", " : "", (int)w, p);
		p += w;
	}
	if (n == 0)
		out[0] = '\0';
	return 0;
}

int tp_config_setting_parse(struct tp_config *cfg, const struct tp_setting *s, const char *text)
{
	size_t len = strlen(text);
	int v;

	switch (s->type) {
	case TP_SETTING_INT:
		if (parse_int(text, &v) < 0 || v < s->min || v > s->max)
			return -EINVAL;
		*(int *)field_of(cfg, s) = v;
		return 0;
	case TP_SETTING_ENUM:
		for (const int *e = s->values; *e >= 0; e++) {
			if (strcasecmp(text, s->name(*e)) == 0) {
				*(int *)field_of(cfg, s) = *e;
				return 0;
			}
		}
		return -EINVAL;
	case TP_SETTING_STRING:
		if (len < (size_t)s->min || len > (size_t)s->max || len >= s->size)
			return -EINVAL;
		memcpy(field_of(cfg, s), text, len + 1);
		return 0;
	case TP_SETTING_BOOL:
		if (strcasecmp(text, "true") == 0 || strcasecmp(text, "false") == 0) {
			*(bool *)field_of(cfg, s) = strcasecmp(text, "true") == 0;
			return 0;
		}
		return -EINVAL;
	case TP_SETTING_ADDRESSES:
		return parse_addresses(cfg, s, text);
	}
	return -EINVAL;
}

char *tp_config_setting_range(const struct tp_setting *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	switch (s->type) {
	case TP_SETTING_INT:
		snprintf(buf, len, "%d to %d", s->min, s->max);
		break;
	case TP_SETTING_ENUM:
		for (const int *e = s->values; *e >= 0 && n < len; e++) {
			const char *sep = e == s->values ? "" : e[1] < 0 ? " or " : ", ";
			n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, s->name(*e));
		}
		break;
	case TP_SETTING_STRING:
		snprintf(buf, len, "%d to %d bytes", s->min, s->max);
		break;
	case TP_SETTING_BOOL:
		snprintf(buf, len, "true or false");
		break;
	case TP_SETTING_ADDRESSES:
		snprintf(buf, len, "up to %d address prefixes", TP_CIDR_MAX);
		break;
	}
	return buf;
}

/* The value of s in cfg as the command line writes it. */
static const char *format_value(const struct tp_config *cfg, const struct tp_setting *s, char *buf,
                                size_t len)
{
	switch (s->type) {
	case TP_SETTING_INT:
		snprintf(buf, len, "%d", tp_config_setting_int(cfg, s));
		return buf;
	case TP_SETTING_ENUM:
		return s->name(tp_config_setting_int(cfg, s));
	case TP_SETTING_STRING:
		return (const char *)cfg + s->offset;
	case TP_SETTING_BOOL:
		return *(const bool *)((const char *)cfg + s->offset) ? "true" : "false";
	case TP_SETTING_ADDRESSES:
		return (const char *)cfg + s->offset;
	}
	return "";
}

void tp_config_defaults(struct tp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		TP_ASSERT(tp_config_setting_parse(cfg, s, s->def) == 0); /* else the table is broken */
}

int tp_config_stall_ms(const struct tp_config *cfg)
{
	if (cfg->stall_timeout_ms > 0)
		return cfg->stall_timeout_ms;
	long v = (long)cfg->max_sleep_ms + TP_STALL_MARGIN_MS;
	return v > INT_MAX ? INT_MAX : (int)v;
}

static bool same_value(const struct tp_config *a, const struct tp_config *b, const struct tp_setting *s)
{
	const char *va = (const char *)a + s->offset, *vb = (const char *)b + s->offset;

	if (s->type == TP_SETTING_STRING || s->type == TP_SETTING_ADDRESSES)
		return strcmp(va, vb) == 0;
	return memcmp(va, vb, s->size) == 0;
}

const struct tp_setting *tp_config_reload_diff(const struct tp_config *running,
                                               const struct tp_config *loaded, const struct tp_setting *after,
                                               char *msg, size_t msglen)
{
	bool skip_socket = after && after->socket;
	char buf[64];

	for (const struct tp_setting *s = after ? after + 1 : tp_settings; s->path; s++) {
		if (s->reloadable || (skip_socket && s->socket) || same_value(running, loaded, s))
			continue;
		if (s->socket) {
			char hp[sizeof(loaded->host) + 16];
			tp_log_host_port(hp, sizeof(hp), loaded->host, (unsigned)loaded->port);
			snprintf(msg, msglen,
			         "listen settings changed (%s): a restart is needed to apply them", hp);
		} else {
			snprintf(msg, msglen, "%s changed to %s: a restart is needed to apply it", s->path,
			         format_value(loaded, s, buf, sizeof(buf)));
		}
		return s;
	}
	return NULL;
}

void tp_config_keep_restart_settings(struct tp_config *loaded, const struct tp_config *running)
{
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if (!s->reloadable)
			memcpy((char *)loaded + s->offset, (const char *)running + s->offset, s->size);
}
