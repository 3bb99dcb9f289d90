/* SPDX-License-Identifier: MIT */
/*
 * client_report: what tpclient prints at the end of a run as text (the
 * JSON is client_json), and the exit status that goes with it.  The formats are
 * documented in docs/TPCLIENT.md; scripts parse them, so they change only
 * by adding fields.
 */
#ifndef TP_CLIENT_REPORT_H
#define TP_CLIENT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client_opts.h"
#include "client_stats.h"
#include "hist.h"

/* Exit statuses besides TP_CLIENT_EXIT_USAGE. */
#define TP_CLIENT_EXIT_OK 0
#define TP_CLIENT_EXIT_FAILED 1

struct tp_client_report {
	const struct tp_client_opts *opts;
	uint64_t seed;
	const struct tp_client_stats *total;  /* of all groups, with every histogram */
	const struct tp_client_stats *groups; /* [opts->ngroups], with every histogram */
	double elapsed_s;
	bool interrupted;
	int exit_status; /* what tpclient exits with: the counts', or 1 for a file it could not write */
};

/* 0 when every request sent got its OK and nothing else went wrong, else 1. */
int tp_client_report_exit_status(const struct tp_client_counts *counts);

/*
 * The SUMMARY line and the lines after it: with --group, a GROUP line per
 * group; then the OP lines (sleep, echo, total), and with --group those of
 * each group.
 */
void tp_client_report_text(FILE *f, const struct tp_client_report *r);

/* The pieces both report formats use: err (busy + other + mismatch), ok per second, a percentile in ms. */
uint64_t tp_client_report_err(const struct tp_client_counts *c);
double tp_client_report_ok_rps(const struct tp_client_counts *c, double elapsed_s);
double tp_client_report_ms(const struct tp_hist *h, double p);

/*
 * What the run's top-level fields describe, into *ret: the one group, or
 * with --group the top-level flags with the groups' clients and rates
 * added up.  Returns the loop: "open", "closed", or "mixed" when it is
 * open in some groups and closed in others.
 */
const char *tp_client_report_summarize(const struct tp_client_opts *o, struct tp_client_group *ret);

#endif
