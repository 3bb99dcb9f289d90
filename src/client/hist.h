/* SPDX-License-Identifier: MIT */
/*
 * hist: a log-bucketed histogram of unsigned 64-bit values (latencies), in
 * the manner of HdrHistogram.
 *
 * Memory is fixed at creation (about 60 KiB) and no sample is stored: each
 * value only increments the counter of its bucket.  Values below 256 have a
 * bucket each and are exact; above that every power of two is split into
 * 128 equal buckets, so a bucket spans at most 1/128 of its values and a
 * percentile is reported within 0.4% of the true sample.  Every uint64_t
 * value can be recorded; the unit is the caller's (tpclient uses ns).
 *
 * Not thread-safe: a histogram is used by one thread at a time.  Threads
 * record into their own and the results are combined with tp_hist_merge().
 */
#ifndef TP_HIST_H
#define TP_HIST_H

#include <stddef.h>
#include <stdint.h>

struct tp_hist;

/* A new empty histogram, or NULL when out of memory. */
struct tp_hist *tp_hist_new(void);

/* Release a histogram. Accepts NULL. */
void tp_hist_free(struct tp_hist *h);

/* Forget every sample. */
void tp_hist_reset(struct tp_hist *h);

/* Record one value. Never fails, never allocates. */
void tp_hist_record(struct tp_hist *h, uint64_t value);

/* Record count occurrences of value. */
void tp_hist_record_n(struct tp_hist *h, uint64_t value, uint64_t count);

/* Add every sample of src to dst, as if they had been recorded into dst. */
void tp_hist_merge(struct tp_hist *dst, const struct tp_hist *src);

/* Number of samples recorded. */
uint64_t tp_hist_count(const struct tp_hist *h);

/* Smallest and largest value recorded, exactly; 0 when empty. */
uint64_t tp_hist_min(const struct tp_hist *h);
uint64_t tp_hist_max(const struct tp_hist *h);

/* Arithmetic mean of the values recorded (exact up to double rounding); 0 when empty. */
double tp_hist_mean(const struct tp_hist *h);

/*
 * The value at percentile p (0..100; out-of-range p is clamped): the sample
 * of rank ceil(p/100 * count) (at least 1) in sorted order, to within 0.4%,
 * never below min or above max.  p = 100 gives max exactly, p = 0 min.
 * Returns 0 when empty.
 */
uint64_t tp_hist_percentile(const struct tp_hist *h, double p);

/* Standard deviation of the values recorded, from the buckets (within their 0.4%); 0 when empty. */
double tp_hist_stddev(const struct tp_hist *h);

/* One line of a percentile distribution. */
struct tp_hist_point {
	uint64_t value;       /* the bucket's value as tp_hist_percentile() gives it */
	double percentile;    /* 0 to 100 */
	uint64_t total_count; /* samples at or below value */
};

/*
 * The percentile distribution as HdrHistogram's percentile iterator walks
 * it (outputPercentileDistribution, wrk2 --latency): from percentile 0,
 * ticks_per_half steps between 0 and 50%, as many between 50% and 75%, and
 * so on, each halving of what is left, and a last point at 100% (max).
 * Each point is the first bucket whose cumulative count reaches its
 * percentile, so values, percentiles and counts never decrease.  Writes
 * at most max points to ret and returns how many (0 when empty); 1024
 * are always enough for ticks_per_half <= 5.
 */
size_t tp_hist_spectrum(const struct tp_hist *h, unsigned ticks_per_half, struct tp_hist_point *ret,
                        size_t max);

/* The bucket layout in HdrHistogram's terms (for its .hgrm footer): buckets and sub-buckets. */
#define TP_HIST_HDR_BUCKETS 57
#define TP_HIST_HDR_SUB_BUCKETS 256

#endif
