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

#include <stdbool.h>

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

#endif
