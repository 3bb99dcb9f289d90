/* SPDX-License-Identifier: MIT */
/*
 * client_settings: what a tpclient run is told, as one struct that
 * holds everything a run needs, and the table of the flags that fill it.
 * One row per flag: its
 * name (and alias), short name, kind, field, default, range, help line and
 * the words of its error message.  client_opts reads it for the defaults,
 * --help, getopt's option list, the range checks and the keys of --group.
 * The user-facing description of every flag is docs/TPCLIENT.md.
 */
#ifndef TP_CLIENT_SETTINGS_H
#define TP_CLIENT_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_values.h"
#include "log.h"

/* The most --group flags one run takes. */
#define TP_CLIENT_MAX_GROUPS 16

/*
 * What a group of clients sends, and how: the flags that --group can set
 * per group.  Without --group, the one group is the top-level flags.
 */
struct tp_client_group {
	char name[32];     /* "" for the one implicit group */
	unsigned clients;  /* connections of this group */
	uint64_t requests; /* per client; 0 = no count bound (--duration only) */
	double rate;       /* requests/s over the group's clients; 0 = closed loop */
	unsigned max_inflight;
	enum tp_client_mix mix;
	uint32_t sleep_lo_ms, sleep_hi_ms;
	uint32_t echo_lo, echo_hi;                              /* ECHO text length in bytes */
	struct tp_client_source sources[TP_CLIENT_MAX_SOURCES]; /* client i binds to sources[i % n] */
	unsigned nsources;                                      /* 0: the kernel picks */
};

struct tp_client_opts {
	char host[256];
	char port[8];                /* decimal, as getaddrinfo() wants it */
	struct tp_client_group base; /* the top-level flags: where every group starts from */
	struct tp_client_group groups[TP_CLIENT_MAX_GROUPS];
	unsigned ngroups;  /* >= 1: without --group, groups[0] is base */
	bool grouped;      /* --group was given: the report shows each group */
	unsigned clients;  /* of all groups */
	double duration_s; /* 0 = count-bound */
	double recv_timeout_s;
	bool reconnect; /* reopen a connection the server closed, and go on */
	uint64_t seed;
	bool seed_given;  /* else main picks a random seed and reports it */
	unsigned threads; /* 0 = min(2, clients) */
	bool json;
	bool quiet;
	const char *latency_file; /* --latency-file: the .hgrm of all OK replies; NULL: none */
	double warmup_s;          /* run this long first, left out of the totals; 0 = none */
	double retry_delay_s; /* --retry-busy: send a busy-refused request again this much later; 0 = never */
	unsigned retry_budget; /* --retry-busy: at most this many times per request */
	double interval_s;     /* a timeline row this often; 0 = none */
	const char *timeline; /* --timeline: rows to this file (JSON lines, or CSV for *.csv); NULL: stderr */
	enum tp_log_level log_level;
};

/* Bounds: generous, but each keeps memory and time per run sane. */
#define TP_CLIENT_MAX_CLIENTS 100000

/* At least the number of rows of the table (checked where it is defined). */
#define TP_CLIENT_SETTINGS_MAX 48

enum tp_client_setting_kind {
	K_HOST,      /* char[256], not empty */
	K_PORT,      /* char[8], a decimal 1-65535 */
	K_UINT,      /* unsigned in [min, max] */
	K_U64,       /* uint64_t in [min, max] */
	K_DURATION,  /* seconds in (0, dmax]: "1.5", "10s", "2m", "500ms", "1h" */
	K_RATE,      /* double in (0, dmax], with an optional k or M suffix ("2k") */
	K_SPAN,      /* "LO-HI" or "N" into two uint32_t: off and off2 */
	K_MIX,       /* enum tp_client_mix by name */
	K_LOG_LEVEL, /* enum tp_log_level by name */
	K_SOURCES,   /* "ADDR[,ADDR...]" into sources[] and nsources */
	K_FLAG,      /* bool set to true, no argument */
	K_PATH,      /* const char *, not empty: points into argv */
	K_RETRY,     /* "DELAY[,N]": a duration into the double at off, a count into the unsigned at off2 */
	K_GROUP,     /* "KEY=VALUE,...": one more group, read once all flags are */
	K_HELP,
	K_VERSION,
};

struct tp_client_setting {
	const char *name;  /* the long flag without its dashes */
	const char *alias; /* another long flag for the same setting, or NULL */
	size_t off, off2;
	uint64_t min, max;
	double dmax;
	const char *def;    /* parsed into the field by tp_client_opts_defaults(); NULL: zero */
	const char *arg;    /* the argument's name in --help; NULL for flags */
	const char *help;   /* --help's line; "(default DEF)" is added when def is set */
	const char *expect; /* what a valid value is, for the error message */
	enum tp_client_setting_kind kind;
	char short_name; /* 0: none */
	bool group;      /* a field of struct tp_client_group, which --group can also set */
};

/* The table, in --help order, and its length. */
extern const struct tp_client_setting tp_client_settings[];
extern const size_t tp_client_nsettings;

/*
 * Store the value s of setting st into the struct at base (struct
 * tp_client_group for a group setting, else struct tp_client_opts).
 * Returns 0 or -EINVAL (the field is then unchanged or partly set).
 */
int tp_client_setting_set(const struct tp_client_setting *st, void *base, const char *s);

#endif
