/* SPDX-License-Identifier: MIT */
/*
 * cidr: lists of address prefixes ("10.0.0.0/8, 2001:db8::/32, ::1"), as
 * the address-list settings write them, and matching a client address
 * against one.  Pure: no I/O, no logging, no allocation.
 *
 * An address without a prefix length is one host (/32, /128).  An IPv4
 * prefix also matches an IPv4-mapped IPv6 address (::ffff:10.1.2.3), as a
 * dual-stack socket reports IPv4 clients; and an IPv6 prefix matches an
 * IPv4 address in that mapped form, so that a list means the same on an
 * IPv4 socket as on a dual-stack one (::/0 is everyone).
 */
#ifndef TP_CIDR_H
#define TP_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TP_CIDR_MAX 32             /* prefixes in one list */
#define TP_CIDR_PREFIX_TEXT_MAX 63 /* characters of one prefix */
/* Room for a whole list as text: TP_CIDR_MAX of the longest, ", " between, the NUL. */
#define TP_CIDR_TEXT_MAX (TP_CIDR_MAX * (TP_CIDR_PREFIX_TEXT_MAX + 2))

struct tp_cidr {
	uint8_t addr[16]; /* IPv4 in the first 4 bytes */
	uint8_t bits;     /* prefix length */
	uint8_t v6;       /* 1: IPv6, 0: IPv4 */
	uint8_t text_len; /* as written: text_len bytes at text_at of the list's text */
	uint16_t text_at;
};

struct tp_cidr_list {
	size_t n;
	struct tp_cidr v[TP_CIDR_MAX];
};

/*
 * Parse text, prefixes separated by commas and/or spaces (empty: an empty
 * list).  Returns 0, or -EINVAL (a bad prefix) or -E2BIG (more than
 * TP_CIDR_MAX); *ret is then an empty list.
 */
int tp_cidr_parse_list(const char *text, struct tp_cidr_list *ret);

/* Room for what tp_cidr_host_bits() writes of a list of TP_CIDR_MAX prefixes. */
#define TP_CIDR_HOST_BITS_TEXT_MAX (TP_CIDR_MAX * (2 * TP_CIDR_PREFIX_TEXT_MAX + 32))

/*
 * The prefixes of list text with address bits set past their length, which
 * match their whole network all the same, each as written and as that
 * network, into buf: "10.0.0.1/8 is 10.0.0.0/8, 10.1.2.3/0 is 0.0.0.0/0
 * (every address)".  Returns how many; 0 for a list that does not parse.
 */
size_t tp_cidr_host_bits(const char *text, char *buf, size_t len);

/* Does the AF_INET or AF_INET6 address ss fall in one of l's prefixes?  False for other families. */
bool tp_cidr_match(const struct tp_cidr_list *l, const struct sockaddr_storage *ss);

#endif
