/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of client_hgrm.c (and the spectrum of hist.c it prints): the
 * text is HdrHistogram's percentile distribution, read back line by line:
 * the heading, monotone columns, 1/(1-Percentile) matching its percentile,
 * "inf" last, the total count of the histogram, and the footer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_hgrm.h"
#include "hist.h"

/* Write h as .hgrm into a string (the caller frees it). */
static char *hgrm_of(const struct tp_hist *h)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(tp_client_hgrm_write(f, h), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Parse text back: every column monotone, the last line at 100% and "inf"; returns the lines. */
static size_t check_lines(char *text, uint64_t count, double max_ms)
{
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	double last_v = -1, last_p = -1;
	unsigned long long last_n = 0;
	size_t n = 0;
	bool ended = false;

	assert_string_equal(line, "       Value   Percentile   TotalCount 1/(1-Percentile)");
	while ((line = strtok_r(NULL, "\n", &save)) && line[0] != '#') {
		double v, p, inv;
		unsigned long long c;
		char invs[32];

		assert_false(ended);
		assert_int_equal(sscanf(line, "%lf %lf %llu %31s", &v, &p, &c, invs), 4);
		assert_true(v >= last_v && p >= last_p && c >= last_n);
		assert_true(p >= 0 && p <= 1 && c >= 1 && c <= count);
		if (strcmp(invs, "inf") == 0) {
			assert_true(p == 1.0 && c == count && fabs(v - max_ms) < 0.0005);
			ended = true;
		} else {
			/* 2 decimals, from the percentile before it was rounded to 6. */
			inv = strtod(invs, NULL);
			assert_true(fabs(inv - 1 / (1 - p)) <= 0.006 + 1e-6 * inv * inv);
		}
		last_v = v, last_p = p, last_n = c;
		n++;
	}
	assert_true(ended);
	assert_non_null(line);
	assert_true(strncmp(line, "#[Mean    = ", 12) == 0);
	line = strtok_r(NULL, "\n", &save);
	char want[128];
	snprintf(want, sizeof(want), "#[Max     = %12.3f, Total count    = %12llu]", max_ms,
	         (unsigned long long)count);
	assert_string_equal(line, want);
	line = strtok_r(NULL, "\n", &save);
	assert_string_equal(line, "#[Buckets =           57, SubBuckets     =          256]");
	assert_null(strtok_r(NULL, "\n", &save));
	return n;
}

static void test_uniform(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();
	char *text;

	/* 1 ms to 10 ms in 10000 steps of 0.9 us. */
	for (uint64_t i = 0; i < 10000; i++)
		tp_hist_record(h, 1000000 + i * 900);
	text = hgrm_of(h);
	assert_non_null(strstr(text, "     0.500000 "));
	size_t n = check_lines(text, 10000, 9.9991);
	/* 5 ticks per halving: 0, 10 .. 50, 55 .. 75, ... up to the last bucket (1/128 of 8-16 ms wide). */
	assert_true(n > 30 && n < 200);
	free(text);
	tp_hist_free(h);
}

static void test_one_sample_and_empty(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();
	struct tp_hist_point pts[4];
	char *text;

	assert_int_equal(tp_hist_spectrum(h, 5, pts, 4), 0);
	text = hgrm_of(h);
	assert_non_null(strstr(text, "Total count    =            0]"));
	free(text);

	tp_hist_record(h, 2500000);
	assert_int_equal(tp_hist_spectrum(h, 5, pts, 4), 2);
	assert_true(pts[0].percentile == 0 && pts[1].percentile == 100);
	assert_true(pts[0].total_count == 1 && pts[1].value == 2500000);
	text = hgrm_of(h);
	assert_int_equal(check_lines(text, 1, 2.5), 2);
	free(text);
	tp_hist_free(h);
}

static void test_spectrum_levels(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();
	struct tp_hist_point pts[1024];

	for (uint64_t i = 1; i <= 200; i++)
		tp_hist_record(h, i); /* below 256: a bucket per value */
	size_t n = tp_hist_spectrum(h, 5, pts, 1024);
	/* HdrHistogram's levels: 0, 10, ..., 50, then 55, 60, ..., 75, 77.5, ... */
	static const double levels[] = {0, 10, 20, 30, 40, 50, 55, 60, 65, 70, 75, 77.5};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		assert_true(pts[i].percentile > levels[i] - 1e-9 && pts[i].percentile < levels[i] + 1e-9);
	assert_int_equal(pts[5].value, 100);
	assert_int_equal(pts[5].total_count, 100);
	assert_true(pts[n - 1].percentile == 100 && pts[n - 1].value == 200 && pts[n - 1].total_count == 200);
	for (size_t i = 1; i < n; i++)
		assert_true(pts[i].value >= pts[i - 1].value && pts[i].total_count >= pts[i - 1].total_count &&
		            pts[i].percentile > pts[i - 1].percentile);
	/* A bound smaller than needed truncates, never overflows. */
	assert_int_equal(tp_hist_spectrum(h, 5, pts, 3), 3);
	tp_hist_free(h);
}

/* A row and the percentile of the same level report the same value (the report's p50 is its 50% row). */
static void test_rows_match_the_percentiles(void **state)
{
	(void)state;
	struct tp_hist *h = tp_hist_new();
	struct tp_hist_point pts[1024];

	for (uint64_t i = 0; i < 10000; i++)
		tp_hist_record(h, 1000000 + i * i * 13); /* 1 ms to 1.3 s: wide buckets */
	size_t n = tp_hist_spectrum(h, 5, pts, 1024);
	assert_true(n > 30);
	for (size_t i = 1; i + 1 < n; i++)
		assert_int_equal(pts[i].value, tp_hist_percentile(h, pts[i].percentile));
	tp_hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_uniform),
	        cmocka_unit_test(test_one_sample_and_empty),
	        cmocka_unit_test(test_spectrum_levels),
	        cmocka_unit_test(test_rows_match_the_percentiles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
