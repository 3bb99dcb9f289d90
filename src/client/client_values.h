/* SPDX-License-Identifier: MIT */
/*
 * client_values: the strict readers of tpclient's flag values (numbers,
 * ranges, local addresses), shared by the flags and the keys of --group.
 * Each reads the whole string or fails with -EINVAL, leaving *ret alone;
 * none logs.
 */
#ifndef TP_CLIENT_VALUES_H
#define TP_CLIENT_VALUES_H

#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The most local addresses one --source takes. */
#define TP_CLIENT_MAX_SOURCES 64

enum tp_client_mix {
	TP_MIX_SLEEP,
	TP_MIX_ECHO,
	TP_MIX_BALANCED, /* each request SLEEP or ECHO with equal odds */
};

/* The name of a mix ("balanced"). */
const char *tp_client_mix_name(enum tp_client_mix mix);

/* A mix by its name, any case. */
int tp_client_value_mix(const char *s, enum tp_client_mix *ret);

/* A local address to bind a connection to before it connects (the port is left to the kernel). */
struct tp_client_source {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	socklen_t len;
	/* As given, for logs and reports: the longest IPv6 text, '%' and an interface name. */
	char text[INET6_ADDRSTRLEN + IF_NAMESIZE];
};

/* A plain decimal (digits only) within [min, max]. */
int tp_client_value_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/*
 * A plain decimal number > 0 and <= max, nothing after it: digits with at
 * most one '.', then an optional exponent ("0.5", ".25", "1e3", "2.5E-3");
 * no sign, space, hex, inf or nan.
 */
int tp_client_value_positive(const char *s, double max, double *ret);

/* The shortest duration: the reports' resolution (they print seconds with three decimals). */
#define TP_CLIENT_MIN_DURATION_S 1e-3

/*
 * A duration in seconds, >= TP_CLIENT_MIN_DURATION_S and <= max_s: a
 * decimal number as tp_client_value_positive() reads it, with an optional
 * unit, "ms", "s", "m" or "h" ("1.5", "10s", "2m", "500ms").
 */
int tp_client_value_duration(const char *s, double max_s, double *ret_s);

/*
 * The smallest rate (requests per second): one request in about 317 years.
 * The time between two requests stays a finite number of nanoseconds.
 */
#define TP_CLIENT_MIN_RATE 1e-10

/*
 * A rate >= TP_CLIENT_MIN_RATE and <= max: a decimal number as
 * tp_client_value_positive() reads it, with an optional k (or K, x1000)
 * or M suffix ("2k").
 */
int tp_client_value_rate(const char *s, double max, double *ret);

/*
 * A rate for a report, in buf: with decimals places ("2000.0"), or, when
 * those would show no digit of it, its first three ("0.0004", "1e-10").
 */
const char *tp_client_rate_text(double rate, int decimals, char *buf, size_t size);

/*
 * "DELAY[,N]": a duration as tp_client_value_duration() reads it, at most
 * max_s, and an optional count from 1 to max_n (3 when not given).
 */
int tp_client_value_retry(const char *s, double max_s, uint64_t max_n, double *ret_s, unsigned *ret_n);

/* "LO-HI" or a single "N" (LO = HI = N), min <= LO <= HI <= max. */
int tp_client_value_span(const char *s, uint64_t min, uint64_t max, uint32_t *ret_lo, uint32_t *ret_hi);

/*
 * "ADDR[,ADDR...]": numeric IPv4 or IPv6 addresses (an IPv6 one may carry
 * a %scope), at most max, into ret[0..*ret_n).
 */
int tp_client_value_sources(const char *s, size_t max, struct tp_client_source *ret, unsigned *ret_n);

/* A name for reports: 1 to size - 1 of A-Z a-z 0-9 _ . - copied with its NUL into ret. */
int tp_client_value_name(const char *s, char *ret, size_t size);

#endif
