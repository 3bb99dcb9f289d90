/* SPDX-License-Identifier: MIT */
/*
 * hist: log-linear bucketing.  See hist.h for the contract.
 *
 * A value v >= 256 has a binary exponent e (its highest set bit) and is
 * stored by its top 8 bits m = v >> (e - 7), 128 <= m < 256, in bucket
 * (e - 7) * 128 + m.  Values below 256 are their own bucket index, and the
 * two ranges meet without a gap: 256 is bucket 256.  The largest uint64_t
 * lands in bucket 56 * 128 + 255, so 7424 counters cover every value.
 */
#include "hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SUB_BITS 7 /* 128 buckets per power of two */
#define SUB_COUNT (1u << SUB_BITS)
#define LINEAR_MAX (2u * SUB_COUNT) /* below this, one bucket per value */
#define NBUCKETS ((64 - SUB_BITS - 1) * SUB_COUNT + LINEAR_MAX)

struct tp_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum; /* exact enough for a mean; uint64_t could overflow on huge values */
	uint64_t buckets[NBUCKETS];
};

static unsigned bucket_of(uint64_t v)
{
	if (v < LINEAR_MAX)
		return (unsigned)v;
	unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - SUB_BITS;
	return shift * SUB_COUNT + (unsigned)(v >> shift);
}

/* Lowest value of bucket i, and its width. */
static void bucket_range(unsigned i, uint64_t *ret_lo, uint64_t *ret_width)
{
	if (i < LINEAR_MAX) {
		*ret_lo = i;
		*ret_width = 1;
		return;
	}
	unsigned shift = i / SUB_COUNT - 1;
	*ret_lo = (uint64_t)(i - shift * SUB_COUNT) << shift;
	*ret_width = (uint64_t)1 << shift;
}

struct tp_hist *tp_hist_new(void)
{
	struct tp_hist *h = malloc(sizeof(*h));

	if (h)
		tp_hist_reset(h);
	return h;
}

void tp_hist_free(struct tp_hist *h)
{
	free(h);
}

void tp_hist_reset(struct tp_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void tp_hist_record_n(struct tp_hist *h, uint64_t value, uint64_t count)
{
	if (count == 0)
		return;
	h->buckets[bucket_of(value)] += count;
	h->count += count;
	h->sum += (double)value * (double)count;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void tp_hist_record(struct tp_hist *h, uint64_t value)
{
	tp_hist_record_n(h, value, 1);
}

void tp_hist_merge(struct tp_hist *dst, const struct tp_hist *src)
{
	if (src->count == 0)
		return;
	/* Only the occupied span: short runs leave most buckets untouched. */
	for (unsigned i = bucket_of(src->min), end = bucket_of(src->max); i <= end; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t tp_hist_count(const struct tp_hist *h)
{
	return h->count;
}

uint64_t tp_hist_min(const struct tp_hist *h)
{
	return h->count ? h->min : 0;
}

uint64_t tp_hist_max(const struct tp_hist *h)
{
	return h->max;
}

double tp_hist_mean(const struct tp_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

/* What bucket i reports: its middle (which halves the worst-case error), within min and max. */
static uint64_t bucket_value(const struct tp_hist *h, unsigned i)
{
	uint64_t lo, width, v;

	bucket_range(i, &lo, &width);
	v = lo + width / 2;
	return v < h->min ? h->min : v > h->max ? h->max : v;
}

uint64_t tp_hist_percentile(const struct tp_hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (!(p > 0.0)) /* also catches NaN */
		return h->min;
	if (p >= 100.0)
		return h->max;

	/*
	 * Nearest rank.  The relative nudge keeps 99.9% of 1000 at rank 999
	 * although 99.9 / 100 * 1000 comes out a hair above 999 in binary.
	 */
	double r = p / 100.0 * (double)h->count;
	r -= r * 1e-12;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;

	for (unsigned i = bucket_of(h->min), end = bucket_of(h->max); i <= end; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			return bucket_value(h, i);
	}
	return h->max; /* not reached: the buckets sum to count */
}

double tp_hist_stddev(const struct tp_hist *h)
{
	double mean = tp_hist_mean(h), sq = 0;

	if (h->count == 0)
		return 0.0;
	for (unsigned i = bucket_of(h->min), end = bucket_of(h->max); i <= end; i++) {
		uint64_t lo, width;
		if (!h->buckets[i])
			continue;
		bucket_range(i, &lo, &width);
		double d = (double)lo + (double)(width - 1) / 2.0 - mean;
		sq += d * d * (double)h->buckets[i];
	}
	return sqrt(sq / (double)h->count);
}

/* HdrHistogram's next percentile level: ticks_per_half per halving of what is left above level. */
static double next_level(double level, unsigned ticks_per_half)
{
	double halvings = floor(log2(100.0 / (100.0 - level)));

	return level + 100.0 / ((double)ticks_per_half * pow(2.0, halvings + 1));
}

size_t tp_hist_spectrum(const struct tp_hist *h, unsigned ticks_per_half, struct tp_hist_point *ret,
                        size_t max)
{
	uint64_t cum = 0;
	double level = 0.0;
	size_t n = 0;

	if (h->count == 0 || ticks_per_half == 0)
		return 0;
	for (unsigned i = bucket_of(h->min), end = bucket_of(h->max); i <= end && n < max; i++) {
		if (!h->buckets[i])
			continue;
		cum += h->buckets[i];
		uint64_t v = bucket_value(h, i); /* as tp_hist_percentile() reports it */
		while (n < max && level <= 100.0 * (double)cum / (double)h->count) {
			ret[n++] = (struct tp_hist_point){v, level, cum};
			if (cum == h->count) {
				/* The last bucket: one point at its level, then the end at 100%. */
				if (n < max && level < 100.0)
					ret[n++] = (struct tp_hist_point){h->max, 100.0, cum};
				return n;
			}
			level = next_level(level, ticks_per_half);
		}
	}
	return n;
}
