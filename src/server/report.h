/* SPDX-License-Identifier: MIT */
/*
 * report: what the metrics say, for the outside: the whole Prometheus
 * exposition (the request metrics of metrics.h, the gauges and counters of
 * health.h, what the agent check answers (leave.h), the process_* metrics
 * from /proc/self) and the periodic stats
 * line in the log with the same key figures as structured fields.
 *
 * Threads: loop 0 (the scrape endpoint's render callback and the tick).
 */
#ifndef TP_REPORT_H
#define TP_REPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "expo.h"
#include "health.h"
#include "leave.h"
#include "metrics.h"

struct tp_report {
	/* the stats line's state (the sums first: they are cache-line aligned) */
	struct tp_metrics_slot logged; /* the sums at the last line */
	uint64_t last_log_ns;
	bool off; /* the last tick found the line off */

	/* what it reads; set before the first call */
	const struct tp_health *health;
	struct tp_metrics *metrics;
	const struct tp_leave *leave;      /* the agent's weight and drains; NULL: not reported */
	const _Atomic bool *shutting_down; /* the shutdown has begun: the agent answers drain */
	double start_time_s; /* wall clock at start: /proc/stat may be hidden (ProcSubset=pid) */
};

/* Start reporting on h (and the metrics set later); takes the start time. */
void tp_report_init(struct tp_report *r, const struct tp_health *h);

/* Scrape render callback (ctx: struct tp_report *): the whole exposition. Returns 0. */
int tp_report_render(void *ctx, struct tp_expo *e);

/* Loop 0's tick: the stats line every interval_s seconds (0: never). */
void tp_report_tick(struct tp_report *r, uint64_t now_ns, int interval_s);

#endif
