/* SPDX-License-Identifier: MIT */
/*
 * client_settings: the table of tpclient's flags.  See client_settings.h.
 */
#include "client_settings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client_values.h"

#define MAX_CLIENTS TP_CLIENT_MAX_CLIENTS
#define MAX_INFLIGHT 65536
#define MAX_THREADS 64
#define MAX_SLEEP_MS 3600000
#define MAX_ECHO_BYTES 1048576
#define STR_(x) #x
#define STR(x) STR_(x)

#define F(field) offsetof(struct tp_client_opts, field)
#define GO(field) offsetof(struct tp_client_group, field)
#define G(field) GO(field), .group = true
#define FSIZE(field) sizeof(((struct tp_client_opts *)NULL)->field)

const struct tp_client_setting tp_client_settings[] = {
        {.name = "host",
         .kind = K_HOST,
         .off = F(host),
         .def = "127.0.0.1",
         .arg = "ADDR",
         .help = "server address",
         .expect = "a host name or address"},
        {.name = "port",
         .kind = K_PORT,
         .off = F(port),
         .min = 1,
         .max = 65535,
         .def = "9000",
         .arg = "N",
         .help = "server port",
         .expect = "an integer from 1 to 65535"},
        {.name = "clients",
         .short_name = 'c',
         .kind = K_UINT,
         .off = G(clients),
         .min = 1,
         .max = MAX_CLIENTS,
         .def = "5",
         .arg = "N",
         .help = "connections",
         .expect = "an integer from 1 to " STR(MAX_CLIENTS)},
        {.name = "requests",
         .kind = K_U64,
         .off = G(requests),
         .min = 1,
         .max = UINT64_MAX,
         .def = "200",
         .arg = "N",
         .help = "requests per connection, unbounded under --duration alone",
         .expect = "a positive integer"},
        {.name = "duration",
         .short_name = 'd',
         .kind = K_DURATION,
         .off = F(duration_s),
         .dmax = 1e7,
         .arg = "S",
         .help = "issue requests for S seconds (500ms, 10s, 2m, 1h); with --rate, every one due in them",
         .expect = "a duration of at least 1 ms: seconds, or a number with ms, s, m or h"},
        {.name = "rate",
         .short_name = 'R',
         .kind = K_RATE,
         .off = G(rate),
         .dmax = 1e9,
         .arg = "R",
         .help = "open loop: R requests/s in total on a fixed schedule (2k = 2000)",
         .expect = "requests per second, at least 1e-10, with an optional k or M suffix"},
        {.name = "max-inflight",
         .alias = "pipeline",
         .short_name = 'P',
         .kind = K_UINT,
         .off = G(max_inflight),
         .min = 1,
         .max = MAX_INFLIGHT,
         .def = "10",
         .arg = "N",
         .help = "outstanding requests per connection",
         .expect = "an integer from 1 to " STR(MAX_INFLIGHT)},
        {.name = "mix",
         .kind = K_MIX,
         .off = G(mix),
         .def = "balanced",
         .arg = "MIX",
         .help = "sleep, echo or balanced",
         .expect = "sleep, echo or balanced"},
        {.name = "sleep-ms",
         .kind = K_SPAN,
         .off = G(sleep_lo_ms),
         .off2 = GO(sleep_hi_ms),
         .max = MAX_SLEEP_MS,
         .def = "100-1000",
         .arg = "LO-HI",
         .help = "SLEEP argument range",
         .expect = "LO-HI, 0 <= LO <= HI <= " STR(MAX_SLEEP_MS)},
        {.name = "echo-bytes",
         .kind = K_SPAN,
         .off = G(echo_lo),
         .off2 = GO(echo_hi),
         .max = MAX_ECHO_BYTES,
         .def = "1-100",
         .arg = "LO-HI",
         .help = "ECHO text length range",
         .expect = "LO-HI, 0 <= LO <= HI <= " STR(MAX_ECHO_BYTES)},
        {.name = "source",
         .kind = K_SOURCES,
         .off = G(sources),
         .off2 = GO(nsources),
         .max = TP_CLIENT_MAX_SOURCES,
         .arg = "ADDR[,ADDR...]",
         .help = "bind each connection to one of these local addresses in turn",
         .expect = "IPv4 or IPv6 addresses separated by commas, at most " STR(TP_CLIENT_MAX_SOURCES)},
        {.name = "group",
         .kind = K_GROUP,
         .arg = "SPEC",
         .help = "one more client group: name=NAME,clients=N,... (see tpclient(1))",
         .expect = "KEY=VALUE,... with keys name and the group flags"},
        {.name = "seed",
         .kind = K_U64,
         .off = F(seed),
         .max = UINT64_MAX,
         .arg = "N",
         .help = "seed of the request sequences (default random)",
         .expect = "an unsigned integer"},
        {.name = "recv-timeout",
         .kind = K_DURATION,
         .off = F(recv_timeout_s),
         .dmax = 86400.0,
         .def = "5",
         .arg = "S",
         .help = "give up on a connection silent this long",
         .expect = "a duration from 1 ms to 86400 s (seconds, or a number with ms, s, m or h)"},
        {.name = "threads",
         .short_name = 't',
         .kind = K_UINT,
         .off = F(threads),
         .min = 1,
         .max = MAX_THREADS,
         .arg = "N",
         .help = "event-loop threads (default min(2, clients))",
         .expect = "an integer from 1 to " STR(MAX_THREADS)},
        {.name = "reconnect",
         .kind = K_FLAG,
         .off = F(reconnect),
         .help = "reopen a connection the server closed, and go on"},
        {.name = "json",
         .kind = K_FLAG,
         .off = F(json),
         .help = "print one JSON object instead of the text report"},
        {.name = "warmup",
         .kind = K_DURATION,
         .off = F(warmup_s),
         .dmax = 1e7,
         .arg = "S",
         .help = "run S seconds first (or 500ms, 10s, 2m) and leave them out of the totals",
         .expect = "a duration of at least 1 ms: seconds, or a number with ms, s, m or h"},
        {.name = "interval",
         .kind = K_DURATION,
         .off = F(interval_s),
         .dmax = 86400.0,
         .arg = "S",
         .help = "every S seconds, a row of OK/s, busy/s, errors/s, p50 and p99 (on stderr)",
         .expect = "a duration from 1 ms to 86400 s (seconds, or a number with ms, s, m or h)"},
        {.name = "timeline",
         .kind = K_PATH,
         .off = F(timeline),
         .arg = "PATH",
         .help = "write the --interval rows to PATH: JSON lines, or CSV if PATH ends in .csv",
         .expect = "a file name"},
        {.name = "retry-busy",
         .kind = K_RETRY,
         .off = F(retry_delay_s),
         .off2 = F(retry_budget),
         .dmax = 3600.0,
         .max = 1000,
         .arg = "DELAY[,N]",
         .help = "send a request refused as busy again after DELAY (10ms, 0.5), at most N times (3)",
         .expect = "DELAY[,N]: a duration of at least 1 ms (seconds, or a number with ms, s, m or h), N from "
                   "1 to 1000"},
        {.name = "latency-file",
         .kind = K_PATH,
         .off = F(latency_file),
         .arg = "PATH",
         .help = "write the latency distribution as HdrHistogram text (.hgrm), as wrk2 --latency",
         .expect = "a file name"},
        {.name = "quiet",
         .short_name = 'q',
         .kind = K_FLAG,
         .off = F(quiet),
         .help = "no progress line, log only errors"},
        {.name = "log-level",
         .kind = K_LOG_LEVEL,
         .off = F(log_level),
         .def = "notice",
         .arg = "LEVEL",
         .help = "debug, info, notice, warning or error",
         .expect = "debug, info, notice, warning or error"},
        {.name = "help", .short_name = 'h', .kind = K_HELP, .help = "show this help"},
        {.name = "version", .short_name = 'V', .kind = K_VERSION, .help = "show the version"},
};

const size_t tp_client_nsettings = sizeof(tp_client_settings) / sizeof(tp_client_settings[0]);
_Static_assert(sizeof(tp_client_settings) / sizeof(tp_client_settings[0]) <= TP_CLIENT_SETTINGS_MAX,
               "raise TP_CLIENT_SETTINGS_MAX");

int tp_client_setting_set(const struct tp_client_setting *st, void *base, const char *s)
{
	char *field = (char *)base + st->off;
	uint64_t v;

	switch (st->kind) {
	case K_HOST:
		if (s[0] == '\0' || strlen(s) >= FSIZE(host))
			return -EINVAL;
		snprintf(field, FSIZE(host), "%s", s);
		return 0;
	case K_PORT:
		if (tp_client_value_u64(s, st->min, st->max, &v) < 0)
			return -EINVAL;
		snprintf(field, FSIZE(port), "%u", (unsigned)v);
		return 0;
	case K_UINT:
		if (tp_client_value_u64(s, st->min, st->max, &v) < 0)
			return -EINVAL;
		*(unsigned *)(void *)field = (unsigned)v;
		return 0;
	case K_U64:
		return tp_client_value_u64(s, st->min, st->max, (uint64_t *)(void *)field);
	case K_DURATION:
		return tp_client_value_duration(s, st->dmax, (double *)(void *)field);
	case K_RATE:
		return tp_client_value_rate(s, st->dmax, (double *)(void *)field);
	case K_SPAN:
		return tp_client_value_span(s, st->min, st->max, (uint32_t *)(void *)field,
		                            (uint32_t *)(void *)((char *)base + st->off2));
	case K_MIX:
		return tp_client_value_mix(s, (enum tp_client_mix *)(void *)field);
	case K_LOG_LEVEL:
		return tp_log_level_parse(s, (enum tp_log_level *)(void *)field) < 0 ? -EINVAL : 0;
	case K_SOURCES:
		return tp_client_value_sources(s, st->max, (struct tp_client_source *)(void *)field,
		                               (unsigned *)(void *)((char *)base + st->off2));
	case K_FLAG:
		*(bool *)(void *)field = true;
		return 0;
	case K_RETRY:
		return tp_client_value_retry(s, st->dmax, st->max, (double *)(void *)field,
		                             (unsigned *)(void *)((char *)base + st->off2));
	case K_PATH:
		if (s[0] == '\0')
			return -EINVAL;
		*(const char **)(void *)field = s;
		return 0;
	case K_GROUP:
	case K_HELP:
	case K_VERSION:
		break;
	}
	return -EINVAL;
}
