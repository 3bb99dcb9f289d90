/* SPDX-License-Identifier: MIT */
/*
 * copy: the copy of a few bytes that every request makes (an ECHO text, a
 * reply gathered for a write), cheaper than a call of memcpy.  Pure.
 */
#ifndef TP_COPY_H
#define TP_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Copy n bytes.  A reply or an ECHO text is nearly always short: from 4 to
 * 16 bytes two overlapping loads and stores cost less than a call of memcpy.
 */
static inline void tp_copy_short(char *dst, const char *src, size_t n)
{
	if (n >= 8 && n <= 16) {
		uint64_t a, b;
		memcpy(&a, src, 8);
		memcpy(&b, src + n - 8, 8);
		memcpy(dst, &a, 8);
		memcpy(dst + n - 8, &b, 8);
	} else if (n >= 4 && n < 8) {
		uint32_t a, b;
		memcpy(&a, src, 4);
		memcpy(&b, src + n - 4, 4);
		memcpy(dst, &a, 4);
		memcpy(dst + n - 4, &b, 4);
	} else {
		memcpy(dst, src, n);
	}
}

#endif
