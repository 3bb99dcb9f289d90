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

#include <netinet/in.h>
#include <sys/socket.h>

#include "log.h"

/* Exit status of tpclient for a bad command line. */
#define TP_CLIENT_EXIT_USAGE 2

enum tp_client_mix {
	TP_MIX_SLEEP,
	TP_MIX_ECHO,
	TP_MIX_BALANCED, /* each request SLEEP or ECHO with equal odds */
};

/* The most local addresses one --source takes. */
#define TP_CLIENT_MAX_SOURCES 64

/* A local address to bind a connection to before it connects (the port is left to the kernel). */
struct tp_client_source {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	socklen_t len;
	char text[48]; /* as given, for logs and reports */
};

struct tp_client_opts {
	char host[256];
	char port[8]; /* decimal, as getaddrinfo() wants it */
	unsigned clients;
	uint64_t requests; /* per client; 0 = no count bound (--duration only) */
	double duration_s; /* 0 = count-bound */
	double rate;       /* total requests/s over all clients; 0 = closed loop */
	unsigned max_inflight;
	double recv_timeout_s;
	enum tp_client_mix mix;
	uint32_t sleep_lo_ms, sleep_hi_ms;
	uint32_t echo_lo, echo_hi;                              /* ECHO text length in bytes */
	struct tp_client_source sources[TP_CLIENT_MAX_SOURCES]; /* client i binds to sources[i % n] */
	unsigned nsources;                                      /* 0: the kernel picks */
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

/* The name of a mix ("balanced"). */
const char *tp_client_opts_mix_name(enum tp_client_mix mix);

#endif
