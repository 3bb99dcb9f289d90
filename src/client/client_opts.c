/* SPDX-License-Identifier: MIT */
/*
 * client_opts: defaults and command-line parsing of tpclient.
 *
 * Every flag is a row of the table in client_settings.c; the defaults,
 * --help, getopt's option list and the range checks are all read from it,
 * so a new flag is one row, and --group reads its keys from the same rows.
 * The user-facing description of every flag is docs/TPCLIENT.md.
 */
#include "client_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client_settings.h"
#include "client_values.h"
#include "usage.h"

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

void tp_client_opts_defaults(struct tp_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	/* The table's defaults are constants that parse (test_client_opts checks each). */
	for (size_t i = 0; i < tp_client_nsettings; i++)
		if (tp_client_settings[i].def)
			(void)tp_client_setting_set(&tp_client_settings[i],
			                            tp_client_settings[i].group ? (void *)&o->base
			                                                        : (void *)o,
			                            tp_client_settings[i].def);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: tpclient [OPTIONS]\n"
	           "Load generator for tpserver: pipelined SLEEP/ECHO requests over many\n"
	           "connections, every reply verified, latency percentiles reported.\n\n");
	for (size_t i = 0; i < tp_client_nsettings; i++) {
		const struct tp_client_setting *st = &tp_client_settings[i];
		char lead[64], text[256];

		if (st->short_name)
			snprintf(lead, sizeof(lead), "  -%c, --%s", st->short_name, st->name);
		else
			snprintf(lead, sizeof(lead), "      --%s", st->name);
		if (st->alias)
			snprintf(lead + strlen(lead), sizeof(lead) - strlen(lead), ", --%s", st->alias);
		if (st->arg)
			snprintf(lead + strlen(lead), sizeof(lead) - strlen(lead), " %s", st->arg);
		if (st->def)
			snprintf(text, sizeof(text), "%s (default %s)", st->help, st->def);
		else
			snprintf(text, sizeof(text), "%s", st->help);
		tp_usage_line(f, lead, 29, text);
	}
	fprintf(f, "\nExit status: 0 every request got its OK, 1 any failure, 2 bad usage.\n");
}

/* getopt_long's view of the table: a setting's index + 256 (or its short name) as val. */
static void build_getopt(struct option *longs, char *shorts)
{
	size_t n = 0, nl = 0;

	shorts[n++] = ':';
	for (size_t i = 0; i < tp_client_nsettings; i++) {
		const struct tp_client_setting *st = &tp_client_settings[i];
		int has_arg = st->arg ? required_argument : no_argument;
		int val = st->short_name ? st->short_name : (int)(256 + i);

		longs[nl++] = (struct option){st->name, has_arg, NULL, val};
		if (st->alias)
			longs[nl++] = (struct option){st->alias, has_arg, NULL, val};
		if (st->short_name) {
			shorts[n++] = st->short_name;
			if (st->arg)
				shorts[n++] = ':';
		}
	}
	longs[nl] = (struct option){NULL, 0, NULL, 0};
	shorts[n] = '\0';
}

static const struct tp_client_setting *setting_of_val(int c)
{
	for (size_t i = 0; i < tp_client_nsettings; i++)
		if (tp_client_settings[i].short_name ? c == tp_client_settings[i].short_name
		                                     : c == (int)(256 + i))
			return &tp_client_settings[i];
	return NULL;
}

static bool was_given(const bool *given, const char *name)
{
	for (size_t i = 0; i < tp_client_nsettings; i++)
		if (strcmp(tp_client_settings[i].name, name) == 0)
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

	for (size_t i = 0; i < tp_client_nsettings && n < len; i++)
		if (tp_client_settings[i].group)
			n += (size_t)snprintf(buf + n, len - n, ", %s", tp_client_settings[i].name);
}

/* Is name that of a group before g (one named so far)? */
static bool name_taken(const struct tp_client_opts *o, const struct tp_client_group *g, const char *name)
{
	for (const struct tp_client_group *other = o->groups; other < g; other++)
		if (strcmp(other->name, name) == 0)
			return true;
	return false;
}

static int set_group_name(struct tp_client_opts *o, struct tp_client_group *g, const char *name)
{
	if (name_taken(o, g, name))
		return -EEXIST;
	return tp_client_value_name(name, g->name, sizeof(g->name));
}

/* Once every name given is known: gN for group N that has none, or the next gN no group has. */
static void name_the_rest(struct tp_client_opts *o)
{
	const struct tp_client_group *end = o->groups + o->ngroups;

	for (unsigned i = 0; i < o->ngroups; i++) {
		struct tp_client_group *g = &o->groups[i];
		char name[sizeof(g->name)];
		if (g->name[0])
			continue;
		for (unsigned n = i + 1;; n++) {
			snprintf(name, sizeof(name), "g%u", n);
			if (!name_taken(o, end, name))
				break;
		}
		memcpy(g->name, name, sizeof(name));
	}
}

_Static_assert(TP_CLIENT_SETTINGS_MAX < 63, "a --group key's bit in set_group_key");

/* One KEY=VALUE of a --group spec into g; seen: the keys given before (bit i: setting i, the
 * last bit: name). Only source= may repeat. */
static int set_group_key(struct tp_client_opts *o, struct tp_client_group *g, char *item, uint64_t *seen,
                         const char *spec, char *err, size_t errlen)
{
	char *value = strchr(item, '=');
	const struct tp_client_setting *st = NULL;
	uint64_t bit = 0;
	bool is_name, first;
	char keys[256];
	unsigned n;

	if (value)
		*value++ = '\0';
	is_name = value && strcmp(item, "name") == 0;
	for (size_t i = 0; value && i < tp_client_nsettings && !st; i++)
		if (tp_client_settings[i].group && strcmp(tp_client_settings[i].name, item) == 0) {
			st = &tp_client_settings[i];
			bit = UINT64_C(1) << i;
		}
	if (is_name)
		bit = UINT64_C(1) << 63;
	first = !(*seen & bit);
	if (!first && !(st && st->kind == K_SOURCES))
		FAIL("--group: key '%s' given twice in '%s'", item, spec);
	*seen |= bit;
	if (is_name) {
		int r = set_group_name(o, g, value);
		if (r == -EEXIST)
			FAIL("--group: two groups named '%s'", value);
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
		if (first)
			g->nsources = 0;
		if (tp_client_value_sources(value, TP_CLIENT_MAX_SOURCES - g->nsources,
		                            &g->sources[g->nsources], &n) < 0)
			FAIL("--group: invalid source '%s' in '%s' (expected one address per source= key, at "
			     "most %d)",
			     value, spec, TP_CLIENT_MAX_SOURCES);
		g->nsources += n;
		return 0;
	}
	if (tp_client_setting_set(st, g, value) < 0)
		FAIL("--group: invalid %s '%s' in '%s' (expected %s)", st->name, value, spec, st->expect);
	return 0;
}

/*
 * The longest --group spec: every source as its own source= key, the
 * longest address each, and ample room for the other keys.
 */
#define SPEC_MAX                                                                              \
	(TP_CLIENT_MAX_SOURCES *                                                              \
	         (sizeof(",source=") - 1 + sizeof(((struct tp_client_source *)NULL)->text)) + \
	 1024)

/* "KEY=VALUE,...": group number index, starting from the top-level flags (unnamed for now). */
static int parse_group(struct tp_client_opts *o, unsigned index, const char *spec, char *err, size_t errlen)
{
	struct tp_client_group *g = &o->groups[index];
	uint64_t seen = 0;
	char buf[SPEC_MAX];

	if (strlen(spec) >= sizeof(buf))
		FAIL("--group: '%.40s...' is too long (at most %zu bytes)", spec, sizeof(buf) - 1);
	*g = o->base;
	memcpy(buf, spec, strlen(spec) + 1);
	for (char *item = buf, *next; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		int r = set_group_key(o, g, item, &seen, spec, err, errlen);
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
	if (o->timeline && o->interval_s == 0)
		o->interval_s = 1.0;
	o->grouped = nspecs > 0;
	o->ngroups = nspecs > 0 ? nspecs : 1;
	o->groups[0] = o->base;
	for (unsigned i = 0; i < nspecs; i++) {
		int r = parse_group(o, i, specs[i], err, errlen);
		if (r < 0)
			return r;
	}
	if (o->grouped)
		name_the_rest(o);
	o->clients = 0;
	for (unsigned i = 0; i < o->ngroups; i++)
		o->clients += o->groups[i].clients;
	if (o->clients > TP_CLIENT_MAX_CLIENTS)
		FAIL("--group: %u clients in all (at most %d)", o->clients, TP_CLIENT_MAX_CLIENTS);
	if (o->threads == 0)
		o->threads = 2;
	if (o->threads > o->clients)
		o->threads = o->clients;
	return 0;
}

int tp_client_opts_parse(struct tp_client_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	struct option longs[2 * TP_CLIENT_SETTINGS_MAX + 1];
	char shorts[2 * TP_CLIENT_SETTINGS_MAX + 2];
	bool given[TP_CLIENT_SETTINGS_MAX] = {false};
	char *specs[TP_CLIENT_MAX_GROUPS];
	unsigned nspecs = 0;
	int c;

	build_getopt(longs, shorts);
	optind = 0; /* full reset, so parsing twice (tests) starts afresh */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct tp_client_setting *st = setting_of_val(c);

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
		if (tp_client_setting_set(st, st->group ? (void *)&o->base : (void *)o,
		                          st->arg ? optarg : "") < 0)
			FAIL("--%s: invalid value '%s' (expected %s)", st->name, optarg, st->expect);
		given[st - tp_client_settings] = true;
	}
	if (optind < argc)
		FAIL("%s: unexpected argument (see --help)", argv[optind]);
	return settle(o, given, specs, nspecs, err, errlen);
}
