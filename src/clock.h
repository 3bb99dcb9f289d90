/* SPDX-License-Identifier: MIT */
/*
 * clock: the one time base of the daemon, CLOCK_MONOTONIC in nanoseconds.
 * Deadlines, ticks and the watchdog's stall evidence all compare values of
 * this clock, never wall-clock time.
 */
#ifndef TP_CLOCK_H
#define TP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t tp_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
