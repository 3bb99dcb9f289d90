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

/*
 * The absolute time ms milliseconds from now on clock clk, as
 * pthread_cond_timedwait() wants it (on the condition variable's clock).
 */
static inline struct timespec tp_clock_timespec_after(clockid_t clk, uint32_t ms)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#endif
