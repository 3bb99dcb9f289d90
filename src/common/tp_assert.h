/* SPDX-License-Identifier: MIT */
/*
 * tp_assert: TP_ASSERT(expr) checks an invariant of the code, in every
 * build: unlike assert(), it is not compiled out by -DNDEBUG (release and
 * RelWithDebInfo builds define it).  A broken invariant prints
 * "file:line: invariant broken: expr" on stderr and aborts.  Use it for
 * what the code guarantees, never for bad input (that gets an ERR reply or
 * a clear message).
 */
#ifndef TP_ASSERT_H
#define TP_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

__attribute__((noreturn, cold)) static inline void tp_assert_fail(const char *file, int line,
                                                                  const char *expr)
{
	(void)fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, expr);
	abort();
}

#define TP_ASSERT(expr) (__builtin_expect(!!(expr), 1) ? (void)0 : tp_assert_fail(__FILE__, __LINE__, #expr))

#endif
