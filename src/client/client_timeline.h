/* SPDX-License-Identifier: MIT */
/*
 * client_timeline: what tpclient shows while it runs.  The progress line
 * (stderr, a terminal only, redrawn once a second) and, with --interval,
 * one row per interval: OK, busy and other failures per second and the
 * p50 and p99 of the interval's OK replies, as INTERVAL lines on stderr
 * or, with --timeline PATH, as JSON lines (or CSV when PATH ends in .csv).
 * While the progress line is shown, a log line from any thread erases it
 * first (tp_log_set_stderr_lead()).
 *
 * Passive: its owner takes what the workers published (client_load) and
 * hands it over with tp_client_timeline_update(), at the times
 * tp_client_timeline_wake_ns() asks for.  Main thread only.
 */
#ifndef TP_CLIENT_TIMELINE_H
#define TP_CLIENT_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client_counts.h"
#include "client_settings.h"
#include "hist.h"

struct tp_client_timeline;

/*
 * A timeline for a run that starts at start_ns (CLOCK_MONOTONIC): progress
 * draws the progress line on stderr; rows go to out (the --timeline file,
 * which it does not close) or, when out is NULL, to stderr as INTERVAL
 * lines; none without o->interval_s.  Returns 0 or -ENOMEM.
 */
int tp_client_timeline_new(const struct tp_client_opts *o, bool progress, FILE *out, int64_t start_ns,
                           struct tp_client_timeline **ret);

/* Release. Accepts NULL. */
void tp_client_timeline_free(struct tp_client_timeline *t);

/* When the next line or row is due (CLOCK_MONOTONIC ns); INT64_MAX when nothing ever is. */
int64_t tp_client_timeline_wake_ns(const struct tp_client_timeline *t);

/*
 * Add what happened since the last update (counts, and the latency of its
 * OK replies in ns), then draw the progress line and write a row if they
 * are due at now_ns.
 */
void tp_client_timeline_update(struct tp_client_timeline *t, const struct tp_client_counts *delta,
                               const struct tp_hist *latency, int64_t now_ns);

/* The run is over: write the last (partial) row, if it saw anything, and erase the progress line. */
void tp_client_timeline_end(struct tp_client_timeline *t, int64_t now_ns);

#endif
