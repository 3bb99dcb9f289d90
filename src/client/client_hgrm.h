/* SPDX-License-Identifier: MIT */
/*
 * client_hgrm: a latency histogram as HdrHistogram's percentile
 * distribution text (.hgrm): what wrk2 --latency prints as its "Detailed
 * Percentile spectrum" and what HdrHistogram's plotter
 * (HistogramLogAnalyzer, plotFiles.html) reads.  Values in milliseconds.
 * Writes only to the FILE it is given; never logs.
 */
#ifndef TP_CLIENT_HGRM_H
#define TP_CLIENT_HGRM_H

#include <stdio.h>

#include "hist.h"

/* The spectrum's resolution: HdrHistogram's default of 5 ticks per half distance. */
#define TP_CLIENT_HGRM_TICKS 5

/*
 * Write h (ns) to f: the header line, a blank line, one line per point
 * of tp_hist_spectrum() with 5 ticks per half distance (Value in ms with
 * 3 decimals, Percentile as a fraction, TotalCount, 1/(1-Percentile),
 * "inf" on the last), and the three #[...] footer lines (Mean and
 * StdDeviation, Max and Total count, Buckets and SubBuckets).  An empty
 * histogram gives the header and footer only.  Returns 0, -ENOMEM or
 * -EIO (f's error flag was set).
 */
int tp_client_hgrm_write(FILE *f, const struct tp_hist *h);

#endif
