/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of hist.c: percentiles within 1% of the true nearest-rank
 * sample on known distributions (constant, uniform, exponential, heavy
 * tailed), exact count, min and max, merge equal to recording into one
 * histogram, values at the edges of the range and of the buckets, and the
 * empty histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>

#include <cmocka.h>

#include "hist.h"

static const double percentiles[] = {0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100};
#define NPCT (sizeof(percentiles) / sizeof(percentiles[0]))

static uint64_t rng_state = 42;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted[0..n): the sample of rank ceil(p/100 * n). */
static uint64_t true_percentile(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)(p / 100.0 * (double)n);
	if ((double)rank < p / 100.0 * (double)n)
		rank++;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static void assert_within_1pct(uint64_t got, uint64_t want, double p)
{
	double diff = got > want ? (double)(got - want) : (double)(want - got);
	if (diff > (double)want / 100.0)
		fail_msg("p%g: got %llu, want %llu (off by %.3f%%)", p, (unsigned long long)got,
			 (unsigned long long)want, want ? 100.0 * diff / (double)want : 100.0);
}

/* Record values into a fresh histogram and check everything against the sorted truth. */
static void check_distribution(uint64_t *values, size_t n)
{
	struct tp_hist *h = tp_hist_new();
	double sum = 0;

	assert_non_null(h);
	for (size_t i = 0; i < n; i++) {
		tp_hist_record(h, values[i]);
		sum += (double)values[i];
	}
	qsort(values, n, sizeof(values[0]), cmp_u64);

	assert_int_equal(tp_hist_count(h), n);
	assert_true(tp_hist_min(h) == values[0]);
	assert_true(tp_hist_max(h) == values[n - 1]);
	double mean = sum / (double)n, got = tp_hist_mean(h);
	assert_true(got >= mean * (1 - 1e-9) && got <= mean * (1 + 1e-9));
	for (size_t i = 0; i < NPCT; i++)
		assert_within_1pct(tp_hist_percentile(h, percentiles[i]),
				   true_percentile(values, n, percentiles[i]), percentiles[i]);
	assert_true(tp_hist_percentile(h, 100) == values[n - 1]);
	assert_true(tp_hist_percentile(h, 0) == values[0]);
	tp_hist_free(h);
}

static void test_empty(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();

	assert_non_null(h);
	assert_int_equal(tp_hist_count(h), 0);
	assert_int_equal(tp_hist_min(h), 0);
	assert_int_equal(tp_hist_max(h), 0);
	assert_true(tp_hist_mean(h) == 0.0);
	assert_int_equal(tp_hist_percentile(h, 50), 0);
	assert_int_equal(tp_hist_percentile(h, 99.9), 0);

	/* Merging an empty one changes nothing, into empty or not. */
	struct tp_hist *e = tp_hist_new();
	tp_hist_merge(h, e);
	assert_int_equal(tp_hist_count(h), 0);
	tp_hist_record(h, 7);
	tp_hist_merge(h, e);
	assert_int_equal(tp_hist_count(h), 1);
	assert_int_equal(tp_hist_min(h), 7);

	/* Reset returns to empty. */
	tp_hist_reset(h);
	assert_int_equal(tp_hist_count(h), 0);
	assert_int_equal(tp_hist_max(h), 0);
	assert_int_equal(tp_hist_percentile(h, 50), 0);
	tp_hist_free(h);
	tp_hist_free(e);
	tp_hist_free(NULL);
}

static void test_constant(void **state)
{
	(void)state;
	static uint64_t v[1000];

	for (size_t i = 0; i < 1000; i++)
		v[i] = 123457;
	check_distribution(v, 1000);

	/* Min and max anchor a constant exactly, whatever its bucket. */
	struct tp_hist *h = tp_hist_new();
	tp_hist_record_n(h, 987654321, 5000);
	assert_int_equal(tp_hist_count(h), 5000);
	assert_int_equal(tp_hist_percentile(h, 50), 987654321);
	assert_int_equal(tp_hist_percentile(h, 99.9), 987654321);
	tp_hist_free(h);
}

static void test_uniform(void **state)
{
	(void)state;
	size_t n = 1000000;
	uint64_t *v = malloc(n * sizeof(*v));

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) /* 1 us .. 1 s, in ns */
		v[i] = 1000 + rnd() % 1000000000ULL;
	check_distribution(v, n);

	/* Every value 1..n exactly once: the truth is known without sorting. */
	struct tp_hist *h = tp_hist_new();
	for (uint64_t i = 1; i <= 100000; i++)
		tp_hist_record(h, i);
	assert_within_1pct(tp_hist_percentile(h, 50), 50000, 50);
	assert_within_1pct(tp_hist_percentile(h, 90), 90000, 90);
	assert_within_1pct(tp_hist_percentile(h, 99), 99000, 99);
	assert_within_1pct(tp_hist_percentile(h, 99.9), 99900, 99.9);
	assert_true(tp_hist_mean(h) == 50000.5);
	tp_hist_free(h);
	free(v);
}

/* Heavy-tailed: a geometric number of doublings, like latencies with rare stalls. */
static void test_heavy_tail(void **state)
{
	(void)state;
	size_t n = 300000;
	uint64_t *v = malloc(n * sizeof(*v));

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		uint64_t r = rnd();
		unsigned k = (unsigned)__builtin_ctzll(r | (1ULL << 40)); /* P(k) = 2^-(k+1) */
		v[i] = (20000 + (rnd() % 30000)) << k;                      /* 20 us .. ~1 h in ns */
	}
	check_distribution(v, n);
	free(v);
}

/* Exponential, mean 1 ms in ns: most values low, a long thin tail. */
static void test_exponential(void **state)
{
	(void)state;
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		double u = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
		v[i] = 1 + (uint64_t)(-log(u) * 1e6);
	}
	check_distribution(v, n);
	free(v);
}

static void test_merge(void **state)
{
	(void)state;
	struct tp_hist *a = tp_hist_new(), *b = tp_hist_new(), *all = tp_hist_new();

	for (int i = 0; i < 100000; i++) {
		uint64_t x = rnd() % 5000000, y = 1000000 + rnd() % 900000000;
		tp_hist_record(a, x);
		tp_hist_record(b, y);
		tp_hist_record(all, x);
		tp_hist_record(all, y);
	}
	tp_hist_merge(a, b);
	assert_int_equal(tp_hist_count(a), tp_hist_count(all));
	assert_int_equal(tp_hist_min(a), tp_hist_min(all));
	assert_int_equal(tp_hist_max(a), tp_hist_max(all));
	for (double p = 0; p <= 100.0; p += 0.25)
		assert_int_equal(tp_hist_percentile(a, p), tp_hist_percentile(all, p));
	double ma = tp_hist_mean(a), mall = tp_hist_mean(all);
	assert_true(ma >= mall * (1 - 1e-9) && ma <= mall * (1 + 1e-9));

	/* Into an empty histogram: a copy. */
	struct tp_hist *copy = tp_hist_new();
	tp_hist_merge(copy, all);
	for (double p = 0; p <= 100.0; p += 1)
		assert_int_equal(tp_hist_percentile(copy, p), tp_hist_percentile(all, p));
	tp_hist_free(a);
	tp_hist_free(b);
	tp_hist_free(all);
	tp_hist_free(copy);
}

/* The bucket of v alone, read back between two far anchors so min/max clamping cannot help. */
static uint64_t readback(struct tp_hist *h, uint64_t v)
{
	tp_hist_reset(h);
	tp_hist_record(h, 0);
	tp_hist_record(h, v);
	tp_hist_record(h, UINT64_MAX);
	return tp_hist_percentile(h, 50);
}

static void test_bucket_precision(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();

	/* The exact range, and where it meets the log-linear one. */
	for (uint64_t v = 0; v < 256; v++)
		assert_int_equal(readback(h, v), v);
	for (uint64_t v = 256; v < 5000; v++)
		assert_within_1pct(readback(h, v), v, 50);
	/* Every power of two and its neighbours, up to the top of the range. */
	for (unsigned e = 8; e < 64; e++) {
		uint64_t p = 1ULL << e;
		assert_within_1pct(readback(h, p - 1), p - 1, 50);
		assert_within_1pct(readback(h, p), p, 50);
		assert_within_1pct(readback(h, p + 1), p + 1, 50);
	}
	for (int i = 0; i < 5000; i++) {
		uint64_t v = rnd() >> (rnd() % 64);
		assert_within_1pct(readback(h, v), v, 50);
	}
	tp_hist_free(h);
}

static void test_extremes(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();

	tp_hist_record(h, 0);
	tp_hist_record(h, UINT64_MAX);
	tp_hist_record(h, 3600ULL * 1000000000ULL); /* one hour in ns */
	assert_int_equal(tp_hist_count(h), 3);
	assert_true(tp_hist_min(h) == 0);
	assert_true(tp_hist_max(h) == UINT64_MAX);
	assert_true(tp_hist_percentile(h, 100) == UINT64_MAX);
	assert_true(tp_hist_percentile(h, 0) == 0);
	assert_true(tp_hist_percentile(h, 1) == 0);
	assert_within_1pct(tp_hist_percentile(h, 50), 3600ULL * 1000000000ULL, 50);
	/* Out-of-range requests are clamped, not undefined. */
	assert_true(tp_hist_percentile(h, 150) == UINT64_MAX);
	assert_true(tp_hist_percentile(h, -3) == 0);
	tp_hist_free(h);

	/* One hour in us, recorded a million times: a counter far from overflow, exact extremes. */
	h = tp_hist_new();
	tp_hist_record_n(h, 3600000000ULL, 1000000);
	tp_hist_record(h, 1);
	assert_int_equal(tp_hist_count(h), 1000001);
	assert_int_equal(tp_hist_min(h), 1);
	assert_int_equal(tp_hist_max(h), 3600000000ULL);
	assert_within_1pct(tp_hist_percentile(h, 50), 3600000000ULL, 50);
	tp_hist_free(h);
}

/* 99.9 / 100 * 1000 is a hair above 999 in binary; the rank must still be 999. */
static void test_rank_rounding(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();

	for (uint64_t i = 1; i <= 999; i++)
		tp_hist_record(h, 100);
	tp_hist_record(h, 1000000);
	assert_int_equal(tp_hist_percentile(h, 99.9), 100);
	assert_int_equal(tp_hist_percentile(h, 99.95), 1000000);
	tp_hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),          cmocka_unit_test(test_constant),
		cmocka_unit_test(test_uniform),        cmocka_unit_test(test_heavy_tail),
		cmocka_unit_test(test_exponential),    cmocka_unit_test(test_merge),
		cmocka_unit_test(test_bucket_precision), cmocka_unit_test(test_extremes),
		cmocka_unit_test(test_rank_rounding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
