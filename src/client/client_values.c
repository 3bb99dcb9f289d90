/* SPDX-License-Identifier: MIT */
/*
 * client_values: strict readers of flag values.  See client_values.h.
 */
#include "client_values.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decimal.h"

const char *tp_client_rate_text(double rate, int decimals, char *buf, size_t size)
{
	if (rate == 0 || rate >= pow(10, -decimals))
		snprintf(buf, size, "%.*f", decimals, rate);
	else
		snprintf(buf, size, "%.3g", rate);
	return buf;
}

const char *tp_client_mix_name(enum tp_client_mix mix)
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

int tp_client_value_mix(const char *s, enum tp_client_mix *ret)
{
	static const enum tp_client_mix mixes[] = {TP_MIX_SLEEP, TP_MIX_ECHO, TP_MIX_BALANCED};

	for (size_t i = 0; i < sizeof(mixes) / sizeof(mixes[0]); i++) {
		if (strcasecmp(s, tp_client_mix_name(mixes[i])) == 0) {
			*ret = mixes[i];
			return 0;
		}
	}
	return -EINVAL;
}

/* Strict decimal: digits only, nothing else, within [min, max]. */
int tp_client_value_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;

	if (tp_decimal_parse(s, strlen(s), max, &v) < 0 || v < min)
		return -EINVAL;
	*ret = v;
	return 0;
}

/*
 * The length of the plain decimal number s starts with: digits with at
 * most one '.' among them, then an optional exponent (e, an optional sign,
 * digits); 0 when it starts with none.  No sign, space, hex, inf or nan.
 */
static size_t decimal_len(const char *s)
{
	size_t n = strspn(s, "0123456789"), frac = 0, exp;

	if (s[n] == '.')
		frac = 1 + strspn(s + n + 1, "0123456789");
	if (n + (frac ? frac - 1 : 0) == 0)
		return 0; /* no digit */
	n += frac;
	if (s[n] != 'e' && s[n] != 'E')
		return n;
	exp = 1 + (s[n + 1] == '+' || s[n + 1] == '-');
	return strspn(s + n + exp, "0123456789") ? n + exp + strspn(s + n + exp, "0123456789") : n;
}

/* A plain decimal number (decimal_len) > 0 and <= max, nothing after it. */
int tp_client_value_positive(const char *s, double max, double *ret)
{
	double v;

	if (decimal_len(s) != strlen(s) || *s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtod(s, NULL);
	if (errno != 0 || !isfinite(v) || !(v > 0.0) || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* A plain decimal number > 0, with or without one of the suffixes, scaled by its factor, <= max. */
static int scaled(const char *s, double max, const char *const *suffixes, const double *factors, double *ret)
{
	char num[64];
	size_t digits = decimal_len(s);
	double v;
	size_t i;

	if (s[digits] == '\0')
		return tp_client_value_positive(s, max, ret);
	if (digits == 0 || digits >= sizeof(num))
		return -EINVAL;
	for (i = 0; suffixes[i] && strcmp(s + digits, suffixes[i]) != 0; i++)
		;
	if (!suffixes[i])
		return -EINVAL;
	memcpy(num, s, digits);
	num[digits] = '\0';
	if (tp_client_value_positive(num, INFINITY, &v) < 0 || !(v * factors[i] > 0.0) ||
	    !(v * factors[i] <= max))
		return -EINVAL;
	*ret = v * factors[i];
	return 0;
}

int tp_client_value_duration(const char *s, double max_s, double *ret_s)
{
	static const char *const suffixes[] = {"ms", "s", "m", "h", NULL};
	static const double factors[] = {1e-3, 1.0, 60.0, 3600.0};
	double v;

	/* Below 1 ms a value reads as 0 in the reports, and as "off" for --retry-busy's delay. */
	if (scaled(s, max_s, suffixes, factors, &v) < 0 || v < TP_CLIENT_MIN_DURATION_S)
		return -EINVAL;
	*ret_s = v;
	return 0;
}

int tp_client_value_rate(const char *s, double max, double *ret)
{
	static const char *const suffixes[] = {"k", "K", "M", NULL};
	static const double factors[] = {1e3, 1e3, 1e6};
	double v;

	if (scaled(s, max, suffixes, factors, &v) < 0 || v < TP_CLIENT_MIN_RATE)
		return -EINVAL;
	*ret = v;
	return 0;
}

int tp_client_value_retry(const char *s, double max_s, uint64_t max_n, double *ret_s, unsigned *ret_n)
{
	char delay[64];
	const char *comma = strchr(s, ',');
	size_t len = comma ? (size_t)(comma - s) : strlen(s);
	uint64_t n = 3;
	double d;

	if (len >= sizeof(delay))
		return -EINVAL;
	memcpy(delay, s, len);
	delay[len] = '\0';
	if (tp_client_value_duration(delay, max_s, &d) < 0 ||
	    (comma && tp_client_value_u64(comma + 1, 1, max_n, &n) < 0))
		return -EINVAL;
	*ret_s = d;
	*ret_n = (unsigned)n;
	return 0;
}

/* "LO-HI" or a single "N" (LO = HI = N), min <= LO <= HI <= max. */
int tp_client_value_span(const char *s, uint64_t min, uint64_t max, uint32_t *ret_lo, uint32_t *ret_hi)
{
	char lo_s[16];
	const char *dash = strchr(s, '-');
	uint64_t lo, hi;

	if (!dash) {
		if (tp_client_value_u64(s, min, max, &lo) < 0)
			return -EINVAL;
		*ret_lo = *ret_hi = (uint32_t)lo;
		return 0;
	}
	if ((size_t)(dash - s) >= sizeof(lo_s))
		return -EINVAL;
	memcpy(lo_s, s, (size_t)(dash - s));
	lo_s[dash - s] = '\0';
	if (tp_client_value_u64(lo_s, min, max, &lo) < 0 ||
	    tp_client_value_u64(dash + 1, min, max, &hi) < 0 || lo > hi)
		return -EINVAL;
	*ret_lo = (uint32_t)lo;
	*ret_hi = (uint32_t)hi;
	return 0;
}

/*
 * One numeric IPv4 address in dotted-quad form, or IPv6 (which may carry a
 * %scope): not inet_aton()'s older forms, which getaddrinfo() also takes
 * (127.0.0.010 is 127.0.0.8 there, 127.1 is 127.0.0.1).
 */
static int parse_source(const char *s, size_t len, struct tp_client_source *ret)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	struct in_addr v4;

	if (len == 0 || len >= sizeof(ret->text))
		return -EINVAL;
	memcpy(ret->text, s, len);
	ret->text[len] = '\0';
	if (!strchr(ret->text, ':') && inet_pton(AF_INET, ret->text, &v4) != 1)
		return -EINVAL;
	if (getaddrinfo(ret->text, NULL, &hints, &res) != 0)
		return -EINVAL;
	if (res->ai_addrlen > sizeof(ret->addr)) {
		freeaddrinfo(res);
		return -EINVAL;
	}
	memcpy(&ret->addr, res->ai_addr, res->ai_addrlen);
	ret->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* "ADDR[,ADDR...]": replaces the list. */
int tp_client_value_sources(const char *s, size_t max, struct tp_client_source *ret, unsigned *ret_n)
{
	unsigned n = 0;

	for (;;) {
		size_t len = strcspn(s, ",");
		if (n == max || parse_source(s, len, &ret[n]) < 0)
			return -EINVAL;
		n++;
		if (s[len] == '\0')
			break;
		s += len + 1;
	}
	*ret_n = n;
	return 0;
}

int tp_client_value_name(const char *s, char *ret, size_t size)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	size_t len = strlen(s);

	if (len == 0 || len >= size || strspn(s, allowed) != len)
		return -EINVAL;
	memcpy(ret, s, len + 1);
	return 0;
}
