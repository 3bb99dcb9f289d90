/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of client_timeline.c: the rows come at their interval with
 * the rates and percentiles of what was handed over meanwhile, in each
 * format (INTERVAL lines, JSON lines, CSV), warmup rows are marked, and
 * the last partial row is written when it saw something.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_opts.h"
#include "client_timeline.h"

#define S 1000000000LL
#define T0 (1000 * S)

/* Run a timeline over 2.5 s (100 OK of 1 ms and 10 busy per 0.5 s), end at 2.6 s; returns what it wrote. */
static char *run(struct tp_client_opts *o, bool to_file)
{
	struct tp_client_timeline *t;
	struct tp_hist *h = tp_hist_new();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct tp_client_counts d = {.sent = 110, .recv = 110, .ok = 100, .busy = 10};

	assert_non_null(f);
	assert_int_equal(tp_client_timeline_new(o, false, to_file ? f : NULL, T0, &t), 0);
	for (int i = 0; i < 100; i++)
		tp_hist_record(h, 1000000);
	for (int64_t now = T0 + S / 2; now <= T0 + 5 * S / 2; now += S / 2) {
		if (!to_file)
			continue; /* the INTERVAL lines go to stderr: only the file formats are read back */
		assert_true(tp_client_timeline_wake_ns(t) >= now - S / 2);
		tp_client_timeline_update(t, &d, h, now);
	}
	/* The rest: with a row a second, what came in 2.0-2.5 s makes a last row of 0.6 s. */
	tp_client_timeline_end(t, T0 + 5 * S / 2 + S / 10);
	tp_client_timeline_free(t);
	tp_hist_free(h);
	fclose(f);
	return buf;
}

static void test_jsonl(void **state)
{
	(void)state;
	struct tp_client_opts o;

	tp_client_opts_defaults(&o);
	o.timeline = "x.jsonl";
	o.interval_s = 1.0;
	o.warmup_s = 1.0;
	char *text = run(&o, true);
	assert_string_equal(text, "{\"t_s\":1.000,\"dt_s\":1.000,\"ok\":200,\"busy\":20,\"errors\":0,\"ok_rps\":200.0,"
	                          "\"busy_rps\":20.0,\"err_rps\":0.0,\"p50_ms\":1.000,\"p99_ms\":1.000,\"warmup\":true}\n"
	                          "{\"t_s\":2.000,\"dt_s\":1.000,\"ok\":200,\"busy\":20,\"errors\":0,\"ok_rps\":200.0,"
	                          "\"busy_rps\":20.0,\"err_rps\":0.0,\"p50_ms\":1.000,\"p99_ms\":1.000,\"warmup\":false}\n"
	                          "{\"t_s\":2.600,\"dt_s\":0.600,\"ok\":100,\"busy\":10,\"errors\":0,\"ok_rps\":166.7,"
	                          "\"busy_rps\":16.7,\"err_rps\":0.0,\"p50_ms\":1.000,\"p99_ms\":1.000,\"warmup\":false}\n");
	free(text);
}

static void test_csv(void **state)
{
	(void)state;
	struct tp_client_opts o;

	tp_client_opts_defaults(&o);
	o.timeline = "x.csv";
	o.interval_s = 0.5;
	char *text = run(&o, true);
	char *second = strchr(text, '\n') + 1;
	static const char head[] = "t_s,dt_s,ok,busy,errors,ok_rps,busy_rps,err_rps,p50_ms,p99_ms,warmup\n";
	static const char row1[] = "0.500,0.500,100,10,0,200.0,20.0,0.0,1.000,1.000,0\n";
	assert_int_equal(strncmp(text, head, strlen(head)), 0);
	assert_int_equal(strncmp(second, row1, strlen(row1)), 0);
	/* Five rows: at 0.5, 1.0, ... 2.5 s. */
	int rows = 0;
	for (char *p = second; (p = strchr(p, '\n')); p++)
		rows++;
	assert_int_equal(rows, 5); /* nothing came in after 2.5 s: no partial row */
	free(text);
}

static void test_nothing_to_show(void **state)
{
	(void)state;
	struct tp_client_opts o;
	struct tp_client_timeline *t;

	tp_client_opts_defaults(&o);
	assert_int_equal(tp_client_timeline_new(&o, false, NULL, T0, &t), 0);
	assert_true(tp_client_timeline_wake_ns(t) == INT64_MAX);
	tp_client_timeline_end(t, T0 + S);
	tp_client_timeline_free(t);
	tp_client_timeline_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_jsonl),
	        cmocka_unit_test(test_csv),
	        cmocka_unit_test(test_nothing_to_show),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
