/* SPDX-License-Identifier: MIT */
/*
 * turnaway: one aggregated line for the connections closed before their
 * first request.
 */
#include "turnaway.h"

#include <stdio.h>

#include "log.h"
#include "loop.h"

void tp_turnaway_totals(struct tp_loop *const *loops, size_t nloops, uint64_t ret[TP_PEER_REFUSAL_COUNT])
{
	for (int k = 0; k < TP_PEER_REFUSAL_COUNT; k++)
		ret[k] = 0;
	for (size_t i = 0; i < nloops; i++) {
		struct tp_loop_counters lc;
		tp_loop_counters(loops[i], &lc);
		for (int k = 0; k < TP_PEER_REFUSAL_COUNT; k++)
			ret[k] += lc.turned_away[k];
	}
}

void tp_turnaway_log_tick(struct tp_turnaway_log *st, struct tp_loop *const *loops, size_t nloops,
                          uint64_t now_ns)
{
	if (now_ns - st->log_ns >= TP_TURNAWAY_LOG_EVERY_NS)
		tp_turnaway_log_flush(st, loops, nloops, now_ns);
}

void tp_turnaway_log_flush(struct tp_turnaway_log *st, struct tp_loop *const *loops, size_t nloops,
                           uint64_t now_ns)
{
	uint64_t total[TP_PEER_REFUSAL_COUNT], n = 0;
	char text[256];
	size_t off = 0;

	st->log_ns = now_ns;
	tp_turnaway_totals(loops, nloops, total);
	for (int k = 0; k < TP_PEER_REFUSAL_COUNT; k++) {
		uint64_t d = total[k] - st->logged[k];
		if (d && off < sizeof(text))
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%llu %s", off ? ", " : "",
			                        (unsigned long long)d,
			                        tp_peer_refusal_name((enum tp_peer_refusal)k));
		n += d;
		st->logged[k] = total[k];
	}
	if (n)
		tp_log(TP_LOG_NOTICE, "conn_refused",
		       "closed %llu connection%s before their first request: %s", (unsigned long long)n,
		       tp_log_plural(n), text);
}
