/* SPDX-License-Identifier: MIT */
/*
 * client_opts: tpclient's settings and its command line.
 *
 * One struct holds everything a run needs; parsing fills it from argv and
 * checks each value against its range, so the load engine can trust it.
 * This module never logs and never exits: errors come back as one line
 * naming the flag, and the caller prints it and exits 2.
 */
#ifndef TP_CLIENT_OPTS_H
#define TP_CLIENT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_values.h"
#include "log.h"

/* Exit status of tpclient for a bad command line. */
#define TP_CLIENT_EXIT_USAGE 2

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
	enum tp_log_level log_level;
};

/* Fill *o with the defaults. Never fails. */
void tp_client_opts_defaults(struct tp_client_opts *o);

/*
 * Parse argv into *o (which holds defaults).  Returns 0; 1 when --help or
 * --version was printed to stdout and the program should exit 0; or
 * -EINVAL with a one-line message naming the flag in err.  Never exits,
 * never logs.
 */
int tp_client_opts_parse(struct tp_client_opts *o, int argc, char **argv, char *err, size_t errlen);

#endif
