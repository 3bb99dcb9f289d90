/* SPDX-License-Identifier: MIT */
/*
 * turnaway: the log of connections closed before their first request
 * (listen.allow, PROXY headers).  Someone probing the port or a
 * misconfigured proxy makes a flood of them: they are counted by each loop
 * (struct tp_loop_counters.turned_away) and logged here, by loop 0, in one line
 * every TP_TURNAWAY_LOG_EVERY_NS at most, with the counts by reason, and
 * what is left in a last line at the stop; never one line per connection.
 */
#ifndef TP_TURNAWAY_H
#define TP_TURNAWAY_H

#include <stddef.h>
#include <stdint.h>

#include "peer.h"

#define TP_TURNAWAY_LOG_EVERY_NS (10000000000ull)

struct tp_loop;

/* Loop 0's state: zero it to start. */
struct tp_turnaway_log {
	uint64_t logged[TP_PEER_REFUSAL_COUNT]; /* the totals the last line counted up to */
	uint64_t log_ns;                        /* when it last looked */
};

/* The loops' counts since start, by reason (any thread). */
void tp_turnaway_totals(struct tp_loop *const *loops, size_t nloops, uint64_t ret[TP_PEER_REFUSAL_COUNT]);

/* Loop 0's tick: sum the loops' counters and log what is new, at most once a period. */
void tp_turnaway_log_tick(struct tp_turnaway_log *st, struct tp_loop *const *loops, size_t nloops,
                          uint64_t now_ns);

/* The same now, whatever the time since the last look (the stop: nothing is left unlogged). */
void tp_turnaway_log_flush(struct tp_turnaway_log *st, struct tp_loop *const *loops, size_t nloops,
                           uint64_t now_ns);

#endif
