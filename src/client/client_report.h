/* SPDX-License-Identifier: MIT */
/*
 * client_report: what tpclient prints at the end of a run, as text or as
 * one JSON object, and the exit status that goes with it.  The formats are
 * documented in docs/TPCLIENT.md; scripts parse them, so they change only
 * by adding fields.
 */
#ifndef TP_CLIENT_REPORT_H
#define TP_CLIENT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client_counts.h"
#include "client_opts.h"
#include "hist.h"

/* Exit statuses besides TP_CLIENT_EXIT_USAGE. */
#define TP_CLIENT_EXIT_OK 0
#define TP_CLIENT_EXIT_FAILED 1

struct tp_client_report {
	const struct tp_client_opts *opts;
	uint64_t seed;
	const struct tp_client_counts *counts;       /* of all groups */
	const struct tp_hist *latency;               /* of all groups, ns */
	const struct tp_client_counts *group_counts; /* [opts->ngroups] */
	struct tp_hist *const *group_latency;        /* [opts->ngroups], ns */
	double elapsed_s;
	bool interrupted;
};

/* 0 when every request sent got its OK and nothing else went wrong, else 1. */
int tp_client_report_exit_status(const struct tp_client_counts *counts);

/* The SUMMARY line and the lines after it; with --group, a GROUP line per group at the end. */
void tp_client_report_text(FILE *f, const struct tp_client_report *r);

/* One JSON object on one line; with --group, a "groups" array too. */
void tp_client_report_json(FILE *f, const struct tp_client_report *r);

#endif
