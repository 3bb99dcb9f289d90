/* SPDX-License-Identifier: MIT */
/*
 * cidr: address prefix lists: parsing with inet_pton(), matching bit by
 * bit over the prefix length.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEPARATORS ", \t" /* between the prefixes of a list */

static int parse_one(const char *s, size_t n, struct tp_cidr *ret)
{
	char text[TP_CIDR_PREFIX_TEXT_MAX + 1];
	const char *slash;
	long bits = -1;

	if (n == 0 || n >= sizeof(text))
		return -EINVAL;
	memcpy(text, s, n);
	text[n] = '\0';
	slash = strchr(text, '/');
	if (slash) {
		char *end;
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0')
			return -EINVAL;
		text[slash - text] = '\0';
	}
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, text, ret->addr) == 1) {
		ret->v6 = 0;
		if (bits > 32)
			return -EINVAL;
		ret->bits = (uint8_t)(bits < 0 ? 32 : bits);
		return 0;
	}
	if (inet_pton(AF_INET6, text, ret->addr) == 1) {
		ret->v6 = 1;
		if (bits > 128)
			return -EINVAL;
		ret->bits = (uint8_t)(bits < 0 ? 128 : bits);
		return 0;
	}
	return -EINVAL;
}

int tp_cidr_parse_list(const char *text, struct tp_cidr_list *ret)
{
	int r = 0;

	ret->n = 0;
	for (const char *p = text + strspn(text, SEPARATORS); *p; p += strspn(p, SEPARATORS)) {
		size_t n = strcspn(p, SEPARATORS);
		if (ret->n == TP_CIDR_MAX) {
			r = -E2BIG;
			break;
		}
		r = parse_one(p, n, &ret->v[ret->n]);
		if (r < 0)
			break;
		ret->v[ret->n].text_at = (uint16_t)(p - text); /* within TP_CIDR_TEXT_MAX */
		ret->v[ret->n].text_len = (uint8_t)n;          /* at most TP_CIDR_PREFIX_TEXT_MAX */
		ret->n++;
		p += n;
	}
	if (r < 0)
		ret->n = 0;
	return r;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

/* Clear the address bits of addr (len bytes) past the first bits. */
static void clear_past(uint8_t *addr, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		unsigned keep = bits > 8 * i ? bits - 8 * (unsigned)i : 0;
		if (keep < 8)
			addr[i] &= (uint8_t)(0xff00u >> keep);
	}
}

size_t tp_cidr_host_bits(const char *text, char *buf, size_t len)
{
	struct tp_cidr_list l;
	size_t found = 0, at = 0;

	if (len)
		buf[0] = '\0';
	if (tp_cidr_parse_list(text, &l) < 0)
		return 0;
	for (size_t i = 0; i < l.n; i++) {
		const struct tp_cidr *c = &l.v[i];
		uint8_t net[16];
		char net_text[INET6_ADDRSTRLEN] = "";
		memcpy(net, c->addr, sizeof(net));
		clear_past(net, c->v6 ? 16 : 4, c->bits);
		if (memcmp(net, c->addr, sizeof(net)) == 0)
			continue;
		(void)inet_ntop(c->v6 ? AF_INET6 : AF_INET, net, net_text, sizeof(net_text));
		if (at < len)
			at += (size_t)snprintf(buf + at, len - at, "%s%.*s is %s/%u%s", found ? ", " : "",
			                       (int)c->text_len, text + c->text_at, net_text, c->bits,
			                       c->bits ? ""
			                       : c->v6 ? " (every address)"
			                               : " (every IPv4 address)");
		found++;
	}
	return found;
}

bool tp_cidr_match(const struct tp_cidr_list *l, const struct sockaddr_storage *ss)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *a4 = NULL, *a6 = NULL;
	uint8_t as6[16]; /* an IPv4 address in its mapped form */

	if (ss->ss_family == AF_INET) {
		a4 = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
		memcpy(as6, mapped, sizeof(mapped));
		memcpy(as6 + sizeof(mapped), a4, 4);
		a6 = as6;
	} else if (ss->ss_family == AF_INET6) {
		a6 = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		if (memcmp(a6, mapped, sizeof(mapped)) == 0)
			a4 = a6 + 12;
	} else {
		return false;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct tp_cidr *c = &l->v[i];
		if (c->v6 ? a6 && prefix_equal(a6, c->addr, c->bits)
		          : a4 && prefix_equal(a4, c->addr, c->bits))
			return true;
	}
	return false;
}
