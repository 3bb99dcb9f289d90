/* SPDX-License-Identifier: MIT */
/*
 * client_opts: defaults, ranges and command-line parsing of tpclient.  The
 * user-facing description of every flag is docs/TPCLIENT.md.
 */
#include "client_opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decimal.h"

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

/* Bounds: generous, but each keeps memory and time per run sane. */
#define MAX_CLIENTS 100000
#define MAX_INFLIGHT 65536
#define MAX_THREADS 64
#define MAX_SLEEP_MS 3600000u
#define MAX_ECHO_BYTES 1048576u

void tp_client_opts_defaults(struct tp_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->host, sizeof(o->host), "127.0.0.1");
	snprintf(o->port, sizeof(o->port), "9000");
	o->clients = 5;
	o->requests = 200;
	o->max_inflight = 10;
	o->recv_timeout_s = 5.0;
	o->mix = TP_MIX_BALANCED;
	o->sleep_lo_ms = 100;
	o->sleep_hi_ms = 1000;
	o->echo_lo = 1;
	o->echo_hi = 100;
	o->log_level = TP_LOG_NOTICE;
}

const char *tp_client_opts_mix_name(enum tp_client_mix mix)
{
	switch (mix) {
	case TP_MIX_SLEEP:
		return "sleep";
	case TP_MIX_ECHO:
		return "echo";
	case TP_MIX_BALANCED:
		return "balanced";
	}
	return "?";
}

/* Strict decimal: digits only, nothing else, within [min, max]. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;

	if (tp_decimal_parse(s, strlen(s), max, &v) < 0 || v < min)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	uint64_t v;
	int r = parse_u64(s, min, max, &v);

	if (r == 0)
		*ret = (unsigned)v;
	return r;
}

/* A finite decimal number > 0 and <= max, nothing after it. */
static int parse_positive(const char *s, double max, double *ret)
{
	char *end;
	double v;

	if (*s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || !(v > 0.0) || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "LO-HI" or a single "N" (LO = HI = N), min <= LO <= HI <= max. */
static int parse_span(const char *s, uint32_t min, uint32_t max, uint32_t *ret_lo, uint32_t *ret_hi)
{
	char lo_s[16];
	const char *dash = strchr(s, '-');
	uint64_t lo, hi;

	if (!dash) {
		if (parse_u64(s, min, max, &lo) < 0)
			return -EINVAL;
		*ret_lo = *ret_hi = (uint32_t)lo;
		return 0;
	}
	if ((size_t)(dash - s) >= sizeof(lo_s))
		return -EINVAL;
	memcpy(lo_s, s, (size_t)(dash - s));
	lo_s[dash - s] = '\0';
	if (parse_u64(lo_s, min, max, &lo) < 0 || parse_u64(dash + 1, min, max, &hi) < 0 || lo > hi)
		return -EINVAL;
	*ret_lo = (uint32_t)lo;
	*ret_hi = (uint32_t)hi;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: tpclient [OPTIONS]\n"
	           "Load generator for tpserver: pipelined SLEEP/ECHO requests over many connections,\n"
	           "every reply verified, latency percentiles reported.\n"
	           "\n"
	           "      --host ADDR            server address (default 127.0.0.1)\n"
	           "      --port N               server port (default 9000)\n"
	           "      --clients N            connections (default 5)\n"
	           "      --requests N           requests per connection (default 200; with --duration:\n"
	           "                             unbounded unless given)\n"
	           "      --duration S           stop issuing after S seconds\n"
	           "      --rate R               open loop: R requests/s in total on a fixed schedule\n"
	           "      --max-inflight N       outstanding requests per connection (default 10)\n"
	           "      --mix MIX              sleep, echo or balanced (default balanced)\n"
	           "      --sleep-ms LO-HI       SLEEP argument range (default 100-1000)\n"
	           "      --echo-bytes LO-HI     ECHO text length range (default 1-100)\n"
	           "      --seed N               seed of the request sequences (default random)\n"
	           "      --recv-timeout S       give up on a connection silent this long (default 5)\n"
	           "      --threads N            event-loop threads (default min(2, clients))\n"
	           "      --json                 print one JSON object instead of the text report\n"
	           "  -q, --quiet                no progress line, log only errors\n"
	           "      --log-level LEVEL      debug, info, notice, warning or error (default notice)\n"
	           "  -h, --help                 show this help\n"
	           "  -V, --version              show the version\n"
	           "\n"
	           "Exit status: 0 every request got its OK, 1 any failure, 2 bad usage.\n");
}

#define FAIL(...)                                   \
	do {                                        \
		snprintf(err, errlen, __VA_ARGS__); \
		return -EINVAL;                     \
	} while (0)

int tp_client_opts_parse(struct tp_client_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	enum {
		OPT_HOST = 256,
		OPT_PORT,
		OPT_CLIENTS,
		OPT_REQUESTS,
		OPT_DURATION,
		OPT_RATE,
		OPT_MAX_INFLIGHT,
		OPT_MIX,
		OPT_SLEEP_MS,
		OPT_ECHO_BYTES,
		OPT_SEED,
		OPT_RECV_TIMEOUT,
		OPT_THREADS,
		OPT_JSON,
		OPT_LOG_LEVEL,
	};
	static const struct option opts[] = {
	        {"host", required_argument, NULL, OPT_HOST},
	        {"port", required_argument, NULL, OPT_PORT},
	        {"clients", required_argument, NULL, OPT_CLIENTS},
	        {"requests", required_argument, NULL, OPT_REQUESTS},
	        {"duration", required_argument, NULL, OPT_DURATION},
	        {"rate", required_argument, NULL, OPT_RATE},
	        {"max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT},
	        {"mix", required_argument, NULL, OPT_MIX},
	        {"sleep-ms", required_argument, NULL, OPT_SLEEP_MS},
	        {"echo-bytes", required_argument, NULL, OPT_ECHO_BYTES},
	        {"seed", required_argument, NULL, OPT_SEED},
	        {"recv-timeout", required_argument, NULL, OPT_RECV_TIMEOUT},
	        {"threads", required_argument, NULL, OPT_THREADS},
	        {"json", no_argument, NULL, OPT_JSON},
	        {"quiet", no_argument, NULL, 'q'},
	        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	bool requests_given = false, level_given = false;
	int c;

	optind = 0; /* full reset, so parsing twice (tests) starts afresh */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qhV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_HOST:
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(o->host))
				FAIL("--host: invalid address '%s'", optarg);
			snprintf(o->host, sizeof(o->host), "%s", optarg);
			break;
		case OPT_PORT: {
			unsigned port = 0;
			if (parse_unsigned(optarg, 1, 65535, &port) < 0)
				FAIL("--port: invalid value '%s' (expected an integer from 1 to 65535)",
				     optarg);
			snprintf(o->port, sizeof(o->port), "%u", port);
			break;
		}
		case OPT_CLIENTS:
			if (parse_unsigned(optarg, 1, MAX_CLIENTS, &o->clients) < 0)
				FAIL("--clients: invalid value '%s' (expected an integer from 1 to %d)",
				     optarg, MAX_CLIENTS);
			break;
		case OPT_REQUESTS:
			if (parse_u64(optarg, 1, UINT64_MAX, &o->requests) < 0)
				FAIL("--requests: invalid value '%s' (expected a positive integer)", optarg);
			requests_given = true;
			break;
		case OPT_DURATION:
			if (parse_positive(optarg, 1e7, &o->duration_s) < 0)
				FAIL("--duration: invalid value '%s' (expected seconds > 0)", optarg);
			break;
		case OPT_RATE:
			if (parse_positive(optarg, 1e9, &o->rate) < 0)
				FAIL("--rate: invalid value '%s' (expected requests per second > 0)", optarg);
			break;
		case OPT_MAX_INFLIGHT:
			if (parse_unsigned(optarg, 1, MAX_INFLIGHT, &o->max_inflight) < 0)
				FAIL("--max-inflight: invalid value '%s' (expected an integer from 1 to %d)",
				     optarg, MAX_INFLIGHT);
			break;
		case OPT_MIX:
			if (strcasecmp(optarg, "sleep") == 0)
				o->mix = TP_MIX_SLEEP;
			else if (strcasecmp(optarg, "echo") == 0)
				o->mix = TP_MIX_ECHO;
			else if (strcasecmp(optarg, "balanced") == 0)
				o->mix = TP_MIX_BALANCED;
			else
				FAIL("--mix: invalid value '%s' (expected sleep, echo or balanced)", optarg);
			break;
		case OPT_SLEEP_MS:
			if (parse_span(optarg, 0, MAX_SLEEP_MS, &o->sleep_lo_ms, &o->sleep_hi_ms) < 0)
				FAIL("--sleep-ms: invalid value '%s' (expected LO-HI, 0 <= LO <= HI <= %u)",
				     optarg, MAX_SLEEP_MS);
			break;
		case OPT_ECHO_BYTES:
			if (parse_span(optarg, 0, MAX_ECHO_BYTES, &o->echo_lo, &o->echo_hi) < 0)
				FAIL("--echo-bytes: invalid value '%s' (expected LO-HI, 0 <= LO <= HI <= %u)",
				     optarg, MAX_ECHO_BYTES);
			break;
		case OPT_SEED:
			if (parse_u64(optarg, 0, UINT64_MAX, &o->seed) < 0)
				FAIL("--seed: invalid value '%s' (expected an unsigned integer)", optarg);
			o->seed_given = true;
			break;
		case OPT_RECV_TIMEOUT:
			if (parse_positive(optarg, 86400.0, &o->recv_timeout_s) < 0)
				FAIL("--recv-timeout: invalid value '%s' (expected seconds > 0, at most "
				     "86400)",
				     optarg);
			break;
		case OPT_THREADS:
			if (parse_unsigned(optarg, 1, MAX_THREADS, &o->threads) < 0)
				FAIL("--threads: invalid value '%s' (expected an integer from 1 to %d)",
				     optarg, MAX_THREADS);
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_LOG_LEVEL:
			if (tp_log_level_parse(optarg, &o->log_level) < 0)
				FAIL("--log-level: invalid value '%s' (expected debug, info, notice, warning "
				     "or error)",
				     optarg);
			level_given = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("tpclient %s\n", TP_VERSION);
			return 1;
		case ':':
			FAIL("%s: missing argument", argv[optind - 1]);
		default:
			FAIL("%s: unknown option (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		FAIL("%s: unexpected argument (see --help)", argv[optind]);

	/* A time bound alone means "as many as fit"; both bounds: whichever comes first. */
	if (o->duration_s > 0 && !requests_given)
		o->requests = 0;
	if (o->quiet && !level_given)
		o->log_level = TP_LOG_ERROR;
	if (o->threads == 0)
		o->threads = 2;
	if (o->threads > o->clients)
		o->threads = o->clients;
	return 0;
}
