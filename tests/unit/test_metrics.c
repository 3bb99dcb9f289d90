/* SPDX-License-Identifier: MIT */
/*
 * test_metrics: the per-loop counters and histograms (metrics.c) and the
 * Prometheus text they are written in (expo.c): exact counts, bucket
 * edges, cumulative buckets, _sum and _count, label escaping, and sums
 * over slots written by other threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "expo.h"
#include "metrics.h"
#include "req.h"

#define US 1000ull
#define MS 1000000ull
#define S 1000000000ull

static void test_bucket_edges(void **state)
{
	(void)state;
	/* A bound belongs to its own bucket (le is "less or equal"). */
	assert_int_equal(tp_metrics_hist_bucket(0), 0);
	assert_int_equal(tp_metrics_hist_bucket(10 * US), 0);
	assert_int_equal(tp_metrics_hist_bucket(10 * US + 1), 1);
	assert_int_equal(tp_metrics_hist_bucket(25 * US), 1);
	assert_int_equal(tp_metrics_hist_bucket(1 * MS), 6);
	assert_int_equal(tp_metrics_hist_bucket(10 * S), 18);
	assert_int_equal(tp_metrics_hist_bucket(10 * S + 1), 19);
	assert_int_equal(tp_metrics_hist_bucket(50 * S), TP_METRICS_HIST_BUCKETS - 1);
	assert_int_equal(tp_metrics_hist_bucket(50 * S + 1), TP_METRICS_HIST_BUCKETS);
	assert_int_equal(tp_metrics_hist_bucket(UINT64_MAX), TP_METRICS_HIST_BUCKETS);
	for (size_t i = 1; i < TP_METRICS_HIST_BUCKETS; i++)
		assert_true(tp_metrics_hist_bounds_ns[i] > tp_metrics_hist_bounds_ns[i - 1]);
}

/* The bucket of ns by definition: the first bound at or above it. */
static size_t bucket_by_search(uint64_t ns)
{
	size_t i = 0;
	while (i < TP_METRICS_HIST_BUCKETS && ns > tp_metrics_hist_bounds_ns[i])
		i++;
	return i;
}

/* ns and its neighbours land where the search puts them. */
static void assert_bucket_near(uint64_t ns)
{
	uint64_t lo = ns ? ns - 1 : 0, hi = ns < UINT64_MAX ? ns + 1 : ns;

	for (uint64_t v = lo;; v++) {
		assert_int_equal(tp_metrics_hist_bucket(v), bucket_by_search(v));
		if (v == hi)
			break;
	}
}

/* tp_metrics_hist_bucket() finds its bucket without a search: it must agree with one everywhere. */
static void test_bucket_without_search(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	(void)state;
	/* What lets it skip the search: at most one bound between two powers of two. */
	for (size_t i = 1; i < TP_METRICS_HIST_BUCKETS; i++)
		assert_true(tp_metrics_hist_bounds_ns[i] >= 2 * tp_metrics_hist_bounds_ns[i - 1]);
	for (size_t i = 0; i < TP_METRICS_HIST_BUCKETS; i++)
		assert_bucket_near(tp_metrics_hist_bounds_ns[i]);
	for (int k = 0; k < 64; k++)
		assert_bucket_near(1ull << k);
	assert_bucket_near(0);
	assert_bucket_near(UINT64_MAX);
	for (int i = 0; i < 100000; i++) {
		/* xorshift, cut to a random number of bits: values of every magnitude. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t v = x >> (x % 64);
		assert_int_equal(tp_metrics_hist_bucket(v), bucket_by_search(v));
	}
}

static void test_seconds_text(void **state)
{
	char b[32];
	(void)state;
	assert_string_equal(tp_expo_seconds(b, sizeof(b), 0), "0");
	assert_string_equal(tp_expo_seconds(b, sizeof(b), 10 * US), "0.00001");
	assert_string_equal(tp_expo_seconds(b, sizeof(b), 2500 * US), "0.0025");
	assert_string_equal(tp_expo_seconds(b, sizeof(b), 50 * S), "50");
	assert_string_equal(tp_expo_seconds(b, sizeof(b), 1 * S + 1), "1.000000001");
}

static void test_label_escaping(void **state)
{
	char b[128];
	const char *k[] = {"a", "b"};
	const char *v[] = {"x\"y\\z\nw", "plain"};
	(void)state;
	assert_string_equal(tp_expo_labels(b, sizeof(b), 2, k, v), "a=\"x\\\"y\\\\z\\nw\",b=\"plain\"");
	assert_string_equal(tp_expo_labels(b, sizeof(b), 0, k, v), "");
	/* Too small: cut short, still a string. */
	assert_true(strlen(tp_expo_labels(b, 8, 2, k, v)) < 8);
}

/* Exact text of a histogram: cumulative buckets, +Inf, _sum in seconds, _count. */
static void test_histogram_text(void **state)
{
	struct tp_metrics_hist h = {0};
	struct tp_expo e = {0};
	(void)state;

	tp_metrics_hist_observe(&h, 5 * US);  /* le 0.00001 */
	tp_metrics_hist_observe(&h, 10 * US); /* le 0.00001 (edge) */
	tp_metrics_hist_observe(&h, 30 * US); /* le 0.00005 */
	tp_metrics_hist_observe(&h, 60 * S);  /* +Inf */
	tp_expo_hist(&e, "x_seconds", "op=\"echo\"", &h);
	assert_false(e.failed);
	assert_non_null(strstr(e.buf, "x_seconds_bucket{op=\"echo\",le=\"0.00001\"} 2\n"
	                              "x_seconds_bucket{op=\"echo\",le=\"0.000025\"} 2\n"
	                              "x_seconds_bucket{op=\"echo\",le=\"0.00005\"} 3\n"));
	assert_non_null(strstr(e.buf, "x_seconds_bucket{op=\"echo\",le=\"50\"} 3\n"
	                              "x_seconds_bucket{op=\"echo\",le=\"+Inf\"} 4\n"
	                              "x_seconds_sum{op=\"echo\"} 60.000045\n"
	                              "x_seconds_count{op=\"echo\"} 4\n"));
	free(e.buf);

	e = (struct tp_expo){0};
	tp_expo_hist(&e, "y", "", &h);
	assert_non_null(strstr(e.buf, "y_bucket{le=\"+Inf\"} 4\ny_sum 60.000045\ny_count 4\n"));
	free(e.buf);
}

static void test_expo_bounded(void **state)
{
	struct tp_expo e = {.max = 100};
	(void)state;
	tp_expo_family(&e, "a", "counter", "help");
	assert_false(e.failed);
	for (int i = 0; i < 20; i++)
		tp_expo_u64(&e, "a_counter_with_a_long_name", "", 1);
	assert_true(e.failed);
	assert_true(e.cap <= 100);
	free(e.buf);
}

static struct tp_req *req(uint8_t op, uint8_t status, bool pushed)
{
	struct tp_req *r = calloc(1, sizeof(*r));
	r->op = op;
	r->status = status;
	r->pushed = pushed;
	return r;
}

/* What each kind of request counts, and in which histogram. */
static void test_request_outcomes(void **state)
{
	struct tp_metrics *m = tp_metrics_new(1);
	struct tp_metrics_slot *s = tp_metrics_slot(m, 0), sum;
	const uint32_t t0 = tp_req_us(1 * S);
	(void)state;

	/* Admitted at once, ran 2 ms after arrival for 1 ms, answered at 4 ms. */
	struct tp_req *ok = req(TP_OP_SLEEP, TP_PROTO_OK, true);
	ok->arrival_us = t0;
	ok->ran = true;
	ok->start_us = t0 + 2000;
	ok->end_us = t0 + 3000;
	tp_metrics_request(s, ok, 1 * S + 4 * MS);

	/* Waited 300 ms for space, then admitted; a worker took it 100 us later. */
	struct tp_req *waited = req(TP_OP_ECHO, TP_PROTO_OK, true);
	waited->arrival_us = t0;
	waited->waited = true;
	waited->wait_end_us = t0 + 300000;
	waited->ran = true;
	waited->start_us = t0 + 300100;
	waited->end_us = waited->start_us;
	tp_metrics_request(s, waited, 1 * S + 300 * MS + 110 * US);

	/* Refused after 1 s of waiting. */
	struct tp_req *busy = req(TP_OP_ECHO, TP_PROTO_BUSY, true);
	busy->arrival_us = t0;
	busy->waited = true;
	busy->wait_end_us = t0 + 1000000;
	tp_metrics_request(s, busy, 2 * S);

	/* Refused at parse time: a duration only. */
	struct tp_req *bad = req(TP_METRICS_OP_NONE, TP_PROTO_UNKNOWN_OP, false);
	bad->arrival_us = t0;
	tp_metrics_request(s, bad, 1 * S + 5 * US);

	/* Stamps that wrap around 2^32 us still give the right interval. */
	struct tp_req *wrap = req(TP_OP_ECHO, TP_PROTO_OK, true);
	wrap->arrival_us = UINT32_MAX - 4;
	wrap->ran = true;
	wrap->start_us = 5; /* 10 us later */
	wrap->end_us = 5;
	tp_metrics_request(s, wrap, (uint64_t)UINT32_MAX * 1000 + 20 * US);

	tp_metrics_sum(m, &sum);
	assert_int_equal(sum.requests[TP_OP_SLEEP][TP_PROTO_OK], 1);
	assert_int_equal(sum.requests[TP_OP_ECHO][TP_PROTO_OK], 2);
	assert_int_equal(sum.requests[TP_OP_ECHO][TP_PROTO_BUSY], 1);
	assert_int_equal(sum.requests[TP_METRICS_OP_NONE][TP_PROTO_UNKNOWN_OP], 1);

	/* Admission: 0 for the ones admitted at once, 300 ms, and 1 s refused. */
	assert_int_equal(sum.admission[TP_ADMIT_ADMITTED].counts[0], 2);
	assert_int_equal(sum.admission[TP_ADMIT_ADMITTED].counts[tp_metrics_hist_bucket(300 * MS)], 1);
	assert_int_equal(sum.admission[TP_ADMIT_ADMITTED].sum_ns, 300 * MS);
	assert_int_equal(sum.admission[TP_ADMIT_BUSY_TIMEOUT].counts[tp_metrics_hist_bucket(1 * S)], 1);
	assert_int_equal(sum.admission[TP_ADMIT_BUSY_TIMEOUT].sum_ns, 1 * S);
	assert_int_equal(sum.admission[TP_ADMIT_SHUTTING_DOWN].sum_ns, 0);

	/* Queue wait from admission (arrival when at once) to start. */
	assert_int_equal(sum.queue_wait.sum_ns, 2 * MS + 100 * US + 10 * US);
	assert_int_equal(sum.service[TP_OP_SLEEP].sum_ns, 1 * MS);
	assert_int_equal(sum.service[TP_OP_ECHO].counts[0], 2);
	/* Duration: every request, the busy one too. */
	assert_int_equal(sum.duration[TP_OP_SLEEP].sum_ns, 4 * MS);
	assert_int_equal(sum.duration[TP_OP_ECHO].sum_ns, 300 * MS + 110 * US + 1 * S + 24 * US);
	assert_int_equal(sum.duration[TP_METRICS_OP_NONE].counts[0], 1);

	free(ok);
	free(waited);
	free(busy);
	free(bad);
	free(wrap);
	tp_metrics_free(m);
}

/*
 * A SLEEP of limits.max_sleep_ms's hour is an hour, not 0 (the stamps are
 * 32-bit microseconds); a start stamped by one thread a little before
 * another thread's admission stamp reads as 0, not as 71 minutes.
 */
static void test_long_and_skewed_intervals(void **state)
{
	struct tp_metrics *m = tp_metrics_new(1);
	struct tp_metrics_slot *s = tp_metrics_slot(m, 0), sum;
	const uint32_t t0 = tp_req_us(1 * S);
	(void)state;

	struct tp_req *hour = req(TP_OP_SLEEP, TP_PROTO_OK, true);
	hour->arrival_us = t0;
	hour->ran = true;
	hour->start_us = t0 + 10;
	hour->end_us = t0 + 10 + 3600u * 1000000u;
	tp_metrics_request(s, hour, 1 * S + 3600 * S + 20 * US);

	struct tp_req *skewed = req(TP_OP_ECHO, TP_PROTO_OK, true);
	skewed->arrival_us = t0;
	skewed->waited = true;
	skewed->wait_end_us = t0 + 100;
	skewed->ran = true;
	skewed->start_us = t0 + 95; /* 5 us "before" it was admitted */
	skewed->end_us = t0 + 97;
	tp_metrics_request(s, skewed, 1 * S + 200 * US);

	tp_metrics_sum(m, &sum);
	assert_int_equal(sum.service[TP_OP_SLEEP].sum_ns, 3600 * S);
	assert_int_equal(sum.service[TP_OP_SLEEP].counts[TP_METRICS_HIST_BUCKETS], 1); /* +Inf */
	assert_int_equal(sum.duration[TP_OP_SLEEP].sum_ns, 3600 * S + 20 * US);
	assert_int_equal(sum.queue_wait.sum_ns, 10 * US); /* the hour's; the skewed one's is 0 */
	assert_int_equal(sum.duration[TP_OP_ECHO].sum_ns, 200 * US);
	free(hour);
	free(skewed);
	tp_metrics_free(m);
}

/* A request like every other of a write (how 0), or unlike them in one way. */
static void request_alike_but(struct tp_req *r, uint64_t *now_ns, uint32_t t0, int how)
{
	memset(r, 0, sizeof(*r));
	r->op = TP_OP_ECHO;
	r->pushed = true;
	r->ran = true;
	r->arrival_us = t0;
	r->start_us = t0 + 40;
	r->end_us = t0 + 41;
	*now_ns = (uint64_t)t0 * 1000 + 60 * US;
	switch (how) {
	case 1: /* its arrival alone */
		r->arrival_us = t0 - 5;
		r->waited = true;
		r->wait_end_us = t0;
		break;
	case 2: /* its arrival, and so its wait for space ends earlier */
		r->arrival_us = t0 - 5;
		break;
	case 3:
		r->waited = true;
		r->wait_end_us = t0 + 20;
		break;
	case 4: /* waited 0: as if admitted at once */
		r->waited = true;
		r->wait_end_us = t0;
		break;
	case 5:
		r->start_us = t0 + 30000;
		break;
	case 6: /* started before it was admitted (two threads' clocks): 0, not a wrap */
		r->start_us = t0 - 1;
		break;
	case 7:
		r->end_us = t0 + 2000000;
		break;
	case 8:
		*now_ns += 7 * MS;
		break;
	case 9:
		r->op = TP_OP_SLEEP;
		break;
	case 10:
		r->status = TP_PROTO_BUSY;
		r->ran = false;
		break;
	case 11:
		r->status = TP_PROTO_SHUTDOWN;
		r->ran = false;
		break;
	case 12:
		r->late = true;
		r->status = TP_PROTO_BUSY;
		break;
	case 13:
		r->pushed = false;
		r->ran = false;
		r->op = TP_METRICS_OP_NONE;
		r->status = TP_PROTO_EMPTY;
		break;
	case 14:
		r->pushed = false;
		r->ran = false;
		r->status = TP_PROTO_INVALID_ARG;
		break;
	case 15:
		r->status = TP_PROTO_UNKNOWN_OP;
		break;
	case 16: /* not a known outcome: counted as invalid */
		r->status = 200;
		break;
	case 17: /* as 11 but refused at parse time (the shutdown began before its line was read) */
		r->pushed = false;
		r->ran = false;
		r->status = TP_PROTO_SHUTDOWN;
		break;
	case 18: /* as 12 but not late; as 10 but it ran */
		r->status = TP_PROTO_BUSY;
		break;
	default:
		break;
	}
}

/*
 * Replies counted in runs give the very sums of counting each on its own,
 * whatever differs between neighbours: each thing that decides a counter or
 * an observation, alone, between runs of alike requests.
 */
static void test_runs_count_as_singles(void **state)
{
	struct tp_metrics *m = tp_metrics_new(2);
	struct tp_metrics_slot *runs = tp_metrics_slot(m, 0), *singles = tp_metrics_slot(m, 1);
	struct tp_metrics_run run = {0};
	struct tp_req r;
	uint64_t now;
	(void)state;

	/* Neighbours that differ in one way each: every way at least once. */
	static const int order[] = {0, 1,  0, 2,  0,  3,  0,  4,  0,  5,  0,  6,  0, 7,
	                            0, 8,  0, 9,  0,  10, 0,  11, 0,  12, 0,  13, 0, 14,
	                            0, 15, 0, 16, 11, 17, 11, 12, 18, 12, 10, 18, 10};
	for (int i = 0; i < 4000; i++) {
		/* Three alike, then three of the next sort. */
		request_alike_but(&r, &now, tp_req_us(7 * S),
		                  order[i / 3 % (sizeof(order) / sizeof(order[0]))]);
		tp_metrics_request(singles, &r, now);
		tp_metrics_run_add(runs, &run, &r, now);
		if (i % 97 == 0) /* the end of a write */
			tp_metrics_run_end(runs, &run);
	}
	tp_metrics_run_end(runs, &run);
	assert_memory_equal(runs, singles, sizeof(*runs));
	assert_true(runs->duration[TP_OP_ECHO].counts[tp_metrics_hist_bucket(60 * US)] > 1000);

	/* Without a slot nothing is counted, and nothing breaks. */
	tp_metrics_run_add(NULL, &run, &r, 8 * S);
	tp_metrics_run_add(NULL, &run, &r, 9 * S);
	tp_metrics_run_end(NULL, &run);
	assert_int_equal(run.n, 0);
	tp_metrics_free(m);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(tp_metrics_op_name(TP_OP_ECHO), "echo");
	assert_string_equal(tp_metrics_op_name(TP_METRICS_OP_NONE), "none");
	assert_string_equal(tp_metrics_result_name(TP_PROTO_BUSY), "busy_timeout");
	assert_string_equal(tp_metrics_result_name(TP_PROTO_INVALID_ARG), "invalid");
	assert_string_equal(tp_metrics_admission_name(TP_ADMIT_ADMITTED), "admitted");
	assert_string_equal(tp_metrics_refusal_name(TP_REFUSE_MAX_CONNECTIONS), "max_connections");
}

#define PER_THREAD 200000

static void *writer(void *arg)
{
	struct tp_metrics_slot *s = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		tp_metrics_add(&s->bytes_in, 3);
		tp_metrics_hist_observe(&s->queue_wait, (uint64_t)(i % 7) * 10 * US);
	}
	return NULL;
}

/* Each thread writes its own slot; sums read while they run never go back, and end exact. */
static void test_slots_summed_while_written(void **state)
{
	struct tp_metrics *m = tp_metrics_new(3);
	pthread_t t[3];
	struct tp_metrics_slot sum;
	uint64_t last = 0;
	(void)state;

	for (size_t i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, tp_metrics_slot(m, i)), 0);
	for (int i = 0; i < 50; i++) {
		tp_metrics_sum(m, &sum);
		assert_true(sum.bytes_in >= last);
		last = sum.bytes_in;
	}
	for (size_t i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	tp_metrics_sum(m, &sum);
	assert_int_equal(sum.bytes_in, 3ull * 3 * PER_THREAD);
	uint64_t n = 0;
	for (size_t i = 0; i <= TP_METRICS_HIST_BUCKETS; i++)
		n += sum.queue_wait.counts[i];
	assert_int_equal(n, 3ull * PER_THREAD);
	assert_null(tp_metrics_slot(m, 3));
	tp_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bucket_edges),
	        cmocka_unit_test(test_long_and_skewed_intervals),
	        cmocka_unit_test(test_seconds_text),
	        cmocka_unit_test(test_label_escaping),
	        cmocka_unit_test(test_histogram_text),
	        cmocka_unit_test(test_bucket_without_search),
	        cmocka_unit_test(test_expo_bounded),
	        cmocka_unit_test(test_request_outcomes),
	        cmocka_unit_test(test_names),
	        cmocka_unit_test(test_runs_count_as_singles),
	        cmocka_unit_test(test_slots_summed_while_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
