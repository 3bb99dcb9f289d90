/* SPDX-License-Identifier: MIT */
/*
 * client_opts: defaults, ranges and command-line parsing of tpclient.
 *
 * One table holds every flag: its name, kind, field, default, range, help
 * line and the words of its error message.  The defaults, --help, getopt's
 * option list and the range checks are all read from it, so a new flag is
 * one row, and --group reads its keys from the same rows.  The user-facing
 * description of every flag is docs/TPCLIENT.md.
 */
#include "client_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client_values.h"

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

/* Bounds: generous, but each keeps memory and time per run sane. */
#define MAX_CLIENTS 100000
#define MAX_INFLIGHT 65536
#define MAX_THREADS 64
#define MAX_SLEEP_MS 3600000u
#define MAX_ECHO_BYTES 1048576u
#define STR_(x) #x
#define STR(x) STR_(x)

enum kind {
	K_HOST,      /* char[256], not empty */
	K_PORT,      /* char[8], a decimal 1-65535 */
	K_UINT,      /* unsigned in [min, max] */
	K_U64,       /* uint64_t in [min, max] */
	K_POSITIVE,  /* double in (0, dmax] */
	K_SPAN,      /* "LO-HI" or "N" into two uint32_t: off and off2 */
	K_MIX,       /* enum tp_client_mix by name */
	K_LOG_LEVEL, /* enum tp_log_level by name */
	K_SOURCES,   /* "ADDR[,ADDR...]" into sources[] and nsources */
	K_FLAG,      /* bool set to true, no argument */
	K_GROUP,     /* "KEY=VALUE,...": one more group, read once all flags are */
	K_HELP,
	K_VERSION,
};

struct setting {
	const char *name; /* the long flag without its dashes */
	size_t off, off2;
	uint64_t min, max;
	double dmax;
	const char *def;    /* parsed into the field by tp_client_opts_defaults(); NULL: zero */
	const char *arg;    /* the argument's name in --help; NULL for flags */
	const char *help;   /* --help's line; "(default DEF)" is added when def is set */
	const char *expect; /* what a valid value is, for the error message */
	enum kind kind;
	char short_name; /* 0: none */
	bool group;      /* a field of struct tp_client_group, which --group can also set */
};

#define F(field) offsetof(struct tp_client_opts, field)
#define GO(field) offsetof(struct tp_client_group, field)
#define G(field) GO(field), .group = true
#define FSIZE(field) sizeof(((struct tp_client_opts *)NULL)->field)

static const struct setting settings[] = {
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
         .kind = K_POSITIVE,
         .off = F(duration_s),
         .dmax = 1e7,
         .arg = "S",
         .help = "stop issuing after S seconds",
         .expect = "seconds > 0"},
        {.name = "rate",
         .kind = K_POSITIVE,
         .off = G(rate),
         .dmax = 1e9,
         .arg = "R",
         .help = "open loop: R requests/s in total on a fixed schedule",
         .expect = "requests per second > 0"},
        {.name = "max-inflight",
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
         .kind = K_POSITIVE,
         .off = F(recv_timeout_s),
         .dmax = 86400.0,
         .def = "5",
         .arg = "S",
         .help = "give up on a connection silent this long",
         .expect = "seconds > 0, at most 86400"},
        {.name = "threads",
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

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Store the value s of setting st into the struct at base. Returns 0 or -EINVAL. */
static int set_value(const struct setting *st, void *base, const char *s)
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
	case K_POSITIVE:
		return tp_client_value_positive(s, st->dmax, (double *)(void *)field);
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
	case K_GROUP:
	case K_HELP:
	case K_VERSION:
		break;
	}
	return -EINVAL;
}

void tp_client_opts_defaults(struct tp_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	/* The table's defaults are constants that parse (test_client_opts checks each). */
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].def)
			(void)set_value(&settings[i], settings[i].group ? (void *)&o->base : (void *)o,
			                settings[i].def);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: tpclient [OPTIONS]\n"
	           "Load generator for tpserver: pipelined SLEEP/ECHO requests over many connections,\n"
	           "every reply verified, latency percentiles reported.\n\n");
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *st = &settings[i];
		char lead[64];

		if (st->short_name)
			snprintf(lead, sizeof(lead), "  -%c, --%s", st->short_name, st->name);
		else
			snprintf(lead, sizeof(lead), "      --%s", st->name);
		if (st->arg)
			snprintf(lead + strlen(lead), sizeof(lead) - strlen(lead), " %s", st->arg);
		if (strlen(lead) < 28)
			fprintf(f, "%-29s%s", lead, st->help);
		else /* a long flag: its help on a line of its own, in the same column */
			fprintf(f, "%s\n%29s%s", lead, "", st->help);
		if (st->def)
			fprintf(f, " (default %s)", st->def);
		fputc('\n', f);
	}
	fprintf(f, "\nExit status: 0 every request got its OK, 1 any failure, 2 bad usage.\n");
}

/* getopt_long's view of the table: a setting's index + 256 (or its short name) as val. */
static void build_getopt(struct option *longs, char *shorts)
{
	size_t n = 0;

	shorts[n++] = ':';
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *st = &settings[i];
		longs[i] = (struct option){st->name, st->arg ? required_argument : no_argument, NULL,
		                           st->short_name ? st->short_name : (int)(256 + i)};
		if (st->short_name)
			shorts[n++] = st->short_name;
	}
	longs[NSETTINGS] = (struct option){NULL, 0, NULL, 0};
	shorts[n] = '\0';
}

static const struct setting *setting_of_val(int c)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].short_name ? c == settings[i].short_name : c == (int)(256 + i))
			return &settings[i];
	return NULL;
}

static bool was_given(const bool *given, const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0)
			return given[i];
	return false;
}

#define FAIL(...)                                   \
	do {                                        \
		snprintf(err, errlen, __VA_ARGS__); \
		return -EINVAL;                     \
	} while (0)

/* The keys --group takes, for its error message: "name, clients, ...". */
static void group_keys(char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "name");

	for (size_t i = 0; i < NSETTINGS && n < len; i++)
		if (settings[i].group)
			n += (size_t)snprintf(buf + n, len - n, ", %s", settings[i].name);
}

static int set_group_name(struct tp_client_opts *o, struct tp_client_group *g, const char *name)
{
	for (struct tp_client_group *other = o->groups; other < g; other++)
		if (strcmp(other->name, name) == 0)
			return -EEXIST;
	return tp_client_value_name(name, g->name, sizeof(g->name));
}

/* One KEY=VALUE of a --group spec into g; sources_given: a source= key came before. */
static int set_group_key(struct tp_client_opts *o, struct tp_client_group *g, char *item, bool *sources_given,
                         const char *spec, char *err, size_t errlen)
{
	char *value = strchr(item, '=');
	const struct setting *st = NULL;
	char keys[256];
	unsigned n;

	if (value)
		*value++ = '\0';
	for (size_t i = 0; value && i < NSETTINGS && !st; i++)
		if (settings[i].group && strcmp(settings[i].name, item) == 0)
			st = &settings[i];
	if (value && strcmp(item, "name") == 0) {
		int r = set_group_name(o, g, value);
		if (r == -EEXIST)
			FAIL("--group: name '%s' given twice", value);
		if (r < 0)
			FAIL("--group: invalid name '%s' in '%s' (expected 1 to %zu of A-Z a-z 0-9 _ . -)",
			     value, spec, sizeof(g->name) - 1);
		return 0;
	}
	if (!value)
		FAIL("--group: '%s' in '%s' is not KEY=VALUE (for several sources, repeat source=)", item,
		     spec);
	if (!st) {
		group_keys(keys, sizeof(keys));
		FAIL("--group: unknown key '%s' in '%s' (keys: %s)", item, spec, keys);
	}
	if (st->kind == K_SOURCES) {
		/* Repeated source= keys make the group's list; the first replaces the inherited one. */
		if (!*sources_given)
			g->nsources = 0;
		*sources_given = true;
		if (tp_client_value_sources(value, TP_CLIENT_MAX_SOURCES - g->nsources,
		                            &g->sources[g->nsources], &n) < 0)
			FAIL("--group: invalid source '%s' in '%s' (expected one address per source= key, at "
			     "most %d)",
			     value, spec, TP_CLIENT_MAX_SOURCES);
		g->nsources += n;
		return 0;
	}
	if (set_value(st, g, value) < 0)
		FAIL("--group: invalid %s '%s' in '%s' (expected %s)", st->name, value, spec, st->expect);
	return 0;
}

/* "KEY=VALUE,...": group number index, starting from the top-level flags. */
static int parse_group(struct tp_client_opts *o, unsigned index, const char *spec, char *err, size_t errlen)
{
	struct tp_client_group *g = &o->groups[index];
	bool sources_given = false;
	char buf[1024];

	if (strlen(spec) >= sizeof(buf))
		FAIL("--group: '%.40s...' is too long (at most %zu bytes)", spec, sizeof(buf) - 1);
	*g = o->base;
	snprintf(g->name, sizeof(g->name), "g%u", index + 1);
	memcpy(buf, spec, strlen(spec) + 1);
	for (char *item = buf, *next; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		int r = set_group_key(o, g, item, &sources_given, spec, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* What one flag's value implies for the others, once all are read; then the groups. */
static int settle(struct tp_client_opts *o, const bool *given, char **specs, unsigned nspecs, char *err,
                  size_t errlen)
{
	/* A time bound alone means "as many as fit"; both bounds: whichever comes first. */
	if (o->duration_s > 0 && !was_given(given, "requests"))
		o->base.requests = 0;
	if (o->quiet && !was_given(given, "log-level"))
		o->log_level = TP_LOG_ERROR;
	o->seed_given = was_given(given, "seed");
	o->grouped = nspecs > 0;
	o->ngroups = nspecs > 0 ? nspecs : 1;
	o->groups[0] = o->base;
	for (unsigned i = 0; i < nspecs; i++) {
		int r = parse_group(o, i, specs[i], err, errlen);
		if (r < 0)
			return r;
	}
	o->clients = 0;
	for (unsigned i = 0; i < o->ngroups; i++)
		o->clients += o->groups[i].clients;
	if (o->clients > MAX_CLIENTS)
		FAIL("--group: %u clients in all (at most %d)", o->clients, MAX_CLIENTS);
	if (o->threads == 0)
		o->threads = 2;
	if (o->threads > o->clients)
		o->threads = o->clients;
	return 0;
}

int tp_client_opts_parse(struct tp_client_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	struct option longs[NSETTINGS + 1];
	char shorts[NSETTINGS + 2];
	bool given[NSETTINGS] = {false};
	char *specs[TP_CLIENT_MAX_GROUPS];
	unsigned nspecs = 0;
	int c;

	build_getopt(longs, shorts);
	optind = 0; /* full reset, so parsing twice (tests) starts afresh */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct setting *st = setting_of_val(c);

		if (c == ':')
			FAIL("%s: missing argument", argv[optind - 1]);
		if (!st)
			FAIL("%s: unknown option (see --help)", argv[optind - 1]);
		if (st->kind == K_HELP) {
			usage(stdout);
			return 1;
		}
		if (st->kind == K_VERSION) {
			printf("tpclient %s\n", TP_VERSION);
			return 1;
		}
		if (st->kind == K_GROUP) {
			if (nspecs == TP_CLIENT_MAX_GROUPS)
				FAIL("--group: more than %d groups", TP_CLIENT_MAX_GROUPS);
			specs[nspecs++] = optarg;
			continue;
		}
		if (set_value(st, st->group ? (void *)&o->base : (void *)o, st->arg ? optarg : "") < 0)
			FAIL("--%s: invalid value '%s' (expected %s)", st->name, optarg, st->expect);
		given[st - settings] = true;
	}
	if (optind < argc)
		FAIL("%s: unexpected argument (see --help)", argv[optind]);
	return settle(o, given, specs, nspecs, err, errlen);
}
