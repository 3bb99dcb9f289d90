/* SPDX-License-Identifier: MIT */
/*
 * proxy: PROXY protocol v1 (text) and v2 (binary) header parsing,
 * after the specification HAProxy publishes (doc/proxy-protocol.txt).
 * v1 is strict: single spaces, addresses inet_pton() accepts, decimal
 * ports without leading zeros.  v2 TLVs are skipped but must be well
 * formed (each fits in the header and they fill it exactly), also those
 * past the TP_PROXY_MAX bytes a long header is decided on, which one walk
 * (tp_proxy_tail_feed) checks as they pass, a byte of state at a time.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";
#define V1_SIG_LEN 6
#define V2_FIXED 16

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

int tp_proxy_detect(const uint8_t *buf, size_t len)
{
	if (len == 0)
		return -EAGAIN;
	if (memcmp(buf, v1_sig, min_size(len, V1_SIG_LEN)) == 0)
		return len >= V1_SIG_LEN ? 1 : -EAGAIN;
	if (memcmp(buf, v2_sig, min_size(len, sizeof(v2_sig))) == 0)
		return len >= sizeof(v2_sig) ? 1 : -EAGAIN;
	return 0;
}

/* A decimal port: 1 to 5 digits, no leading zero (but "0"), at most 65535. */
static int parse_port(const char *s, size_t n, uint16_t *ret)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

/* One address field of a v1 line into ss (family af), port filled later. */
static int parse_addr(int af, const char *s, size_t n, struct sockaddr_storage *ss)
{
	char text[48];

	if (n == 0 || n >= sizeof(text))
		return -EINVAL;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)af;
	if (af == AF_INET)
		return inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1 ? 0 : -EINVAL;
	return inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1 ? 0 : -EINVAL;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The v1 fields after "PROXY " up to (not including) CRLF: "TCP4 SRC DST SPORT DPORT". */
static int parse_v1_fields(const char *s, size_t n, struct tp_proxy_hdr *ret)
{
	const char *f[5];
	size_t fl[5], k = 0, start = 0;
	uint16_t sport, dport;
	int af;

	if (n >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (n == 7 || s[7] == ' ')) {
		ret->local = true; /* anything after UNKNOWN is ignored, as the spec says */
		return 0;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ' ')
			continue;
		if (k == 5)
			return -EINVAL;
		f[k] = s + start;
		fl[k++] = i - start;
		start = i + 1;
	}
	if (k != 5 || fl[0] != 4)
		return -EINVAL;
	if (memcmp(f[0], "TCP4", 4) == 0)
		af = AF_INET;
	else if (memcmp(f[0], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return -EINVAL;
	if (parse_addr(af, f[1], fl[1], &ret->src) < 0 || parse_addr(af, f[2], fl[2], &ret->dst) < 0 ||
	    parse_port(f[3], fl[3], &sport) < 0 || parse_port(f[4], fl[4], &dport) < 0)
		return -EINVAL;
	set_port(&ret->src, sport);
	set_port(&ret->dst, dport);
	return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct tp_proxy_hdr *ret)
{
	size_t n = min_size(len, TP_PROXY_V1_MAX);
	const uint8_t *lf = memchr(buf, '\n', n);

	if (!lf)
		return len >= TP_PROXY_V1_MAX ? -E2BIG : 0;
	size_t end = (size_t)(lf - buf);
	if (end < V1_SIG_LEN + 1 || buf[end - 1] != '\r')
		return -EINVAL;
	for (size_t i = V1_SIG_LEN; i < end - 1; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return -EINVAL;
	int r = parse_v1_fields((const char *)buf + V1_SIG_LEN, end - 1 - V1_SIG_LEN, ret);
	if (r < 0)
		return r;
	ret->version = 1;
	ret->len = end + 1;
	return (int)ret->len;
}

int tp_proxy_tail_feed(struct tp_proxy_tail *t, const uint8_t *p, size_t n)
{
	n = min_size(n, t->left);
	while (n > 0) {
		if (t->nhead == 0 && t->value_left > 0) {
			size_t k = min_size(n, t->value_left);
			t->value_left = (uint16_t)(t->value_left - k);
			t->left -= (uint32_t)k;
			p += k;
			n -= k;
			continue;
		}
		/* A byte of a TLV's type (1) and length (2, big-endian). */
		if (t->nhead == 1)
			t->value_left = (uint16_t)(*p << 8);
		else if (t->nhead == 2)
			t->value_left = (uint16_t)(t->value_left | *p);
		t->nhead = (uint8_t)((t->nhead + 1) % 3);
		t->left--;
		p++;
		n--;
		if (t->nhead == 0 && t->value_left > t->left)
			return -EINVAL; /* its value runs past the header's end */
	}
	bool in_value = t->nhead == 0 && t->value_left > 0;
	if (t->left == 0)
		return t->nhead == 0 ? 1 : -EINVAL;
	return !in_value && t->left < 3u - t->nhead ? -EINVAL : 0; /* no room for the TLV's head */
}

/* A tail of n bytes not looked at (LOCAL, UNIX, unspecified): one value as long as all of it. */
static void ignore_tail(struct tp_proxy_tail *t, size_t n)
{
	*t = (struct tp_proxy_tail){.left = (uint32_t)n, .value_left = (uint16_t)n};
}

/*
 * The address block of a v2 PROXY header, size bytes, of which the first
 * n are in p (all of them, or at least the addresses: n >= 36); the TLVs
 * after the addresses are checked as far as p goes, the rest is ret->tail.
 */
static int parse_v2_addrs(uint8_t fam, const uint8_t *p, size_t n, size_t size, struct tp_proxy_hdr *ret)
{
	uint8_t af = fam >> 4, proto = fam & 0x0f;
	size_t alen;

	if (proto > 2 || af > 3)
		return -EINVAL; /* unassigned: the specification says reject */
	if (proto == 2)
		return -EINVAL; /* DGRAM: no stream this server could serve */
	if (af == 0 || af == 3 || proto == 0) {
		ret->local = true; /* unspecified or UNIX: no client address to use */
		ignore_tail(&ret->tail, size - n);
		return 0;
	}
	alen = af == 1 ? 12 : 36;
	if (size < alen)
		return -EINVAL;
	ret->tail = (struct tp_proxy_tail){.left = (uint32_t)(size - alen)};
	if (tp_proxy_tail_feed(&ret->tail, p + alen, n - alen) < 0)
		return -EINVAL;
	memset(&ret->src, 0, sizeof(ret->src));
	memset(&ret->dst, 0, sizeof(ret->dst));
	if (af == 1) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ret->src, *d = (struct sockaddr_in *)&ret->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, p, 4);
		memcpy(&d->sin_addr, p + 4, 4);
		memcpy(&s->sin_port, p + 8, 2);
		memcpy(&d->sin_port, p + 10, 2);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ret->src,
		                    *d = (struct sockaddr_in6 *)&ret->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, p, 16);
		memcpy(&d->sin6_addr, p + 16, 16);
		memcpy(&s->sin6_port, p + 32, 2);
		memcpy(&d->sin6_port, p + 34, 2);
	}
	return 0;
}

static int parse_v2(const uint8_t *buf, size_t len, struct tp_proxy_hdr *ret)
{
	if (len > sizeof(v2_sig) && (buf[12] >> 4 != 2 || (buf[12] & 0x0f) > 1))
		return -EINVAL; /* version 2, command LOCAL or PROXY */
	if (len < V2_FIXED)
		return 0;
	size_t total = V2_FIXED + ((size_t)buf[14] << 8 | buf[15]), have = min_size(len, total);
	if (have < total && have < TP_PROXY_MAX)
		return 0; /* decided on the whole header, or on its first TP_PROXY_MAX bytes */
	if ((buf[12] & 0x0f) == 0) {
		ret->local = true; /* LOCAL: the balancer's own connection (health checks) */
		ignore_tail(&ret->tail, total - have);
	} else {
		int r = parse_v2_addrs(buf[13], buf + V2_FIXED, have - V2_FIXED, total - V2_FIXED, ret);
		if (r < 0)
			return r;
	}
	ret->version = 2;
	ret->len = total;
	return (int)total;
}

int tp_proxy_parse(const uint8_t *buf, size_t len, struct tp_proxy_hdr *ret)
{
	int d = tp_proxy_detect(buf, len);

	memset(ret, 0, sizeof(*ret));
	if (d == 0)
		return -EINVAL;
	if (d < 0)
		return 0;
	if (buf[0] == 'P')
		return parse_v1(buf, len, ret);
	return parse_v2(buf, len, ret);
}
