/* SPDX-License-Identifier: MIT */
/*
 * spin: whether a thread that ran out of work should poll for more before
 * it blocks, learnt from how earlier polls went.
 *
 * DESIGN
 * - A poll that finds work saves a futex wake on both sides and the
 *   sleeper's wake-up latency; one that times out burns a core's time that
 *   another thread (the event loop, a client on the same machine) could
 *   have used, and costs the wake anyway.  Request-reply traffic brings the
 *   next piece of work within microseconds: polls find it.  A busy loop
 *   handing work over in bursts further apart than the poll window makes
 *   almost every poll time out.
 * - `hits` is a moving share of long polls that found work (out of
 *   TP_SPIN_SCALE, weight 1/8 for the newest).  Long polls go on while at
 *   least half find work; below that only one idle moment in TP_SPIN_PROBE
 *   polls long, so a change back to request-reply traffic is noticed within
 *   a few dozen idle moments.  The others poll briefly instead, which costs
 *   little and still catches work that arrives at once.
 * - Short polls are not counted: they say nothing about whether a long one
 *   would pay.  Not thread-safe: the caller serializes (the queue's lock).
 */
#ifndef TP_SPIN_H
#define TP_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"

#define TP_SPIN_SCALE 1024u
#define TP_SPIN_PROBE 16u

struct tp_spin {
	unsigned hits;  /* share of long polls that found work, out of TP_SPIN_SCALE */
	unsigned skips; /* idle moments since the last long poll */
};

static inline void tp_spin_init(struct tp_spin *s)
{
	s->hits = TP_SPIN_SCALE; /* start by polling: the first requests tell */
	s->skips = 0;
}

/* Should the thread that just ran out of work poll long (true) or briefly? */
static inline bool tp_spin_long(struct tp_spin *s)
{
	if (s->hits >= TP_SPIN_SCALE / 2 || ++s->skips >= TP_SPIN_PROBE) {
		s->skips = 0;
		return true;
	}
	return false;
}

/* A long poll ended: it found work (hit) or timed out. */
static inline void tp_spin_record(struct tp_spin *s, bool hit)
{
	s->hits = s->hits - s->hits / 8 + (hit ? TP_SPIN_SCALE / 8 : 0);
}

/*
 * Poll *avail without a lock for up to spin_ns.  Returns true as soon as it
 * is non-zero, false when the time is up or *stop (may be NULL) is set.
 */
static inline bool tp_spin_poll(const _Atomic size_t *avail, uint64_t spin_ns, const atomic_bool *stop)
{
	uint64_t end = tp_clock_ns() + spin_ns;
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(avail, memory_order_acquire) > 0)
			return true;
		if (stop && atomic_load_explicit(stop, memory_order_relaxed))
			return false;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		/*
		 * Yield now and then: on a machine with more runnable threads
		 * than cores, the thread this one waits for may need this core.
		 */
		if ((i & 63) == 0 && (sched_yield(), tp_clock_ns() >= end))
			return false;
	}
}

#endif
