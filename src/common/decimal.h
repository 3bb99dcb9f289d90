/* SPDX-License-Identifier: MIT */
/*
 * decimal: the one strict decimal reader, for the protocol's SLEEP argument,
 * tpclient's checks of replies, and its command line.
 */
#ifndef TP_DECIMAL_H
#define TP_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * The len bytes at s as a plain decimal: at least one digit, digits only
 * (no sign, no blanks), value <= max.  0 and *ret set, or -1.  Never
 * overflows, whatever the length: it stops as soon as the value passes max.
 */
static inline int tp_decimal_parse(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)((unsigned char)s[i] - '0');
		if (d > 9)
			return -1;
		/* v * 10 + d > max, asked without computing it: v * 10 <= max here. */
		if (v > max / 10 || d > max - v * 10)
			return -1;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

#endif
