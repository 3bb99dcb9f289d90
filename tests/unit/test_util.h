/* SPDX-License-Identifier: MIT */
/*
 * test_util: small helpers shared by the threaded unit tests (header only,
 * so each test still links only the module it tests).
 */
#ifndef TP_TEST_UTIL_H
#define TP_TEST_UTIL_H

#include <errno.h>
#include <time.h>

#include "clock.h"

/* Sleep ms milliseconds, resuming after signals. */
static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

#endif
