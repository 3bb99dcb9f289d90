/* SPDX-License-Identifier: MIT */
/*
 * client_hgrm: the .hgrm percentile distribution.  See client_hgrm.h.  The
 * format is HdrHistogram_c's hdr_percentiles_print(CLASSIC), which wrk2
 * prints: "%12s %12s %12s %12s" headings, "%12.3f %12f %12d %12.2f"
 * lines, and the footer below.
 */
#include "client_hgrm.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#define MAX_POINTS 1024 /* enough for 5 ticks per half, see hist.h */
#define NS_PER_MS 1e6

int tp_client_hgrm_write(FILE *f, const struct tp_hist *h)
{
	struct tp_hist_point *points = malloc(MAX_POINTS * sizeof(*points));
	size_t n;
	int r;

	if (!points)
		return -ENOMEM;
	n = tp_hist_spectrum(h, TP_CLIENT_HGRM_TICKS, points, MAX_POINTS);
	fprintf(f, "%12s %12s %12s %12s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
	for (size_t i = 0; i < n; i++) {
		double p = points[i].percentile / 100.0;
		fprintf(f, "%12.3f %12f %12" PRIu64 " %12.2f\n", (double)points[i].value / NS_PER_MS, p,
		        points[i].total_count, p < 1.0 ? 1.0 / (1.0 - p) : INFINITY);
	}
	fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", tp_hist_mean(h) / NS_PER_MS,
	        tp_hist_stddev(h) / NS_PER_MS);
	fprintf(f, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
	        (double)tp_hist_max(h) / NS_PER_MS, tp_hist_count(h));
	fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n", TP_HIST_HDR_BUCKETS,
	        TP_HIST_HDR_SUB_BUCKETS);
	r = ferror(f) ? -EIO : 0;
	free(points);
	return r;
}
