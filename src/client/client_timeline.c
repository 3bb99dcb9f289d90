/* SPDX-License-Identifier: MIT */
/*
 * client_timeline: the progress line and the interval rows.  See
 * client_timeline.h; the formats are in docs/TPCLIENT.md.
 */
#include "client_timeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define PROGRESS_NS 1000000000LL

enum format { TEXT, JSONL, CSV };

/* What happened in a window of time (the last second, the current interval). */
struct window {
	int64_t start_ns;
	struct tp_client_counts counts;
	struct tp_hist *latency;
};

struct tp_client_timeline {
	bool progress;
	bool shown; /* a progress line is on the terminal */
	int64_t start_ns, warm_end_ns;
	int64_t interval_ns; /* 0: no rows */
	int64_t next_progress_ns, next_row_ns;
	uint64_t replies; /* since the start */
	FILE *out;
	enum format format;
	struct window second, interval;
};

static uint64_t failures(const struct tp_client_counts *c)
{
	return c->other_err + c->mismatch + c->timeouts + c->lost;
}

static double per_s(uint64_t n, int64_t ns)
{
	return ns > 0 ? (double)n * 1e9 / (double)ns : 0.0;
}

static double ms(const struct tp_hist *h, double p)
{
	return (double)tp_hist_percentile(h, p) / 1e6;
}

static void window_reset(struct window *w, int64_t now_ns)
{
	w->start_ns = now_ns;
	memset(&w->counts, 0, sizeof(w->counts));
	tp_hist_reset(w->latency);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int tp_client_timeline_new(const struct tp_client_opts *o, bool progress, FILE *out, int64_t start_ns,
                           struct tp_client_timeline **ret)
{
	struct tp_client_timeline *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->progress = progress;
	t->start_ns = start_ns;
	t->warm_end_ns = start_ns + (int64_t)(o->warmup_s * 1e9);
	t->interval_ns = (int64_t)(o->interval_s * 1e9);
	t->next_progress_ns = progress ? start_ns + PROGRESS_NS : INT64_MAX;
	t->next_row_ns = t->interval_ns > 0 ? start_ns + t->interval_ns : INT64_MAX;
	t->out = out ? out : stderr;
	t->format = !out ? TEXT : o->timeline && ends_with(o->timeline, ".csv") ? CSV : JSONL;
	t->second.latency = tp_hist_new();
	t->interval.latency = tp_hist_new();
	if (!t->second.latency || !t->interval.latency) {
		tp_client_timeline_free(t);
		return -ENOMEM;
	}
	window_reset(&t->second, start_ns);
	window_reset(&t->interval, start_ns);
	if (t->format == CSV && t->interval_ns > 0)
		fputs("t_s,dt_s,ok,busy,errors,ok_rps,busy_rps,err_rps,p50_ms,p99_ms,warmup\n", t->out);
	*ret = t;
	return 0;
}

void tp_client_timeline_free(struct tp_client_timeline *t)
{
	if (!t)
		return;
	tp_hist_free(t->second.latency);
	tp_hist_free(t->interval.latency);
	free(t);
}

int64_t tp_client_timeline_wake_ns(const struct tp_client_timeline *t)
{
	return t->next_progress_ns < t->next_row_ns ? t->next_progress_ns : t->next_row_ns;
}

static void erase_progress(struct tp_client_timeline *t)
{
	if (t->shown) {
		fputs("\r\033[K", stderr);
		tp_log_set_stderr_lead(NULL);
	}
	t->shown = false;
}

/* "[12.0 s] ok 1204/s  busy 567/s (32%)  errors 0/s  p99 5.849 ms  replies 15000": the last second. */
static void draw_progress(struct tp_client_timeline *t, int64_t now_ns)
{
	const struct tp_client_counts *c = &t->second.counts;
	int64_t dt = now_ns - t->second.start_ns;

	/* A log line from any thread erases the progress line first instead of running on from it. */
	tp_log_set_stderr_lead("\r\033[K");
	fprintf(stderr,
	        "\r[%.1f s%s] ok %.0f/s  busy %.0f/s (%.0f%%)  errors %.0f/s  p99 %.3f ms  replies "
	        "%llu\033[K",
	        (double)(now_ns - t->start_ns) / 1e9, now_ns <= t->warm_end_ns ? " warmup" : "",
	        per_s(c->ok, dt), per_s(c->busy, dt),
	        c->recv ? 100.0 * (double)c->busy / (double)c->recv : 0.0, per_s(failures(c), dt),
	        ms(t->second.latency, 99), (unsigned long long)t->replies);
	fflush(stderr);
	t->shown = true;
	window_reset(&t->second, now_ns);
}

/* One row for the interval that ends at now_ns. */
static void write_row(struct tp_client_timeline *t, int64_t now_ns)
{
	const struct window *w = &t->interval;
	const struct tp_client_counts *c = &w->counts;
	int64_t dt = now_ns - w->start_ns;
	double at = (double)(now_ns - t->start_ns) / 1e9;
	unsigned long long ok = c->ok, busy = c->busy, err = failures(c);
	int warm = w->start_ns + dt / 2 < t->warm_end_ns; /* mostly in the warmup */

	if (t->format == TEXT) {
		erase_progress(t);
		fprintf(t->out,
		        "INTERVAL t=%.3f dt=%.3f ok=%llu busy=%llu errors=%llu ok_rps=%.1f busy_rps=%.1f "
		        "err_rps=%.1f p50=%.3f p99=%.3f warmup=%d\n",
		        at, (double)dt / 1e9, ok, busy, err, per_s(ok, dt), per_s(busy, dt), per_s(err, dt),
		        ms(w->latency, 50), ms(w->latency, 99), warm);
	} else if (t->format == CSV) {
		fprintf(t->out, "%.3f,%.3f,%llu,%llu,%llu,%.1f,%.1f,%.1f,%.3f,%.3f,%d\n", at,
		        (double)dt / 1e9, ok, busy, err, per_s(ok, dt), per_s(busy, dt), per_s(err, dt),
		        ms(w->latency, 50), ms(w->latency, 99), warm);
	} else {
		fprintf(t->out,
		        "{\"t_s\":%.3f,\"dt_s\":%.3f,\"ok\":%llu,\"busy\":%llu,\"errors\":%llu,\"ok_rps\":%."
		        "1f,"
		        "\"busy_rps\":%.1f,\"err_rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"warmup\":%s}\n",
		        at, (double)dt / 1e9, ok, busy, err, per_s(ok, dt), per_s(busy, dt), per_s(err, dt),
		        ms(w->latency, 50), ms(w->latency, 99), warm ? "true" : "false");
	}
	fflush(t->out);
	window_reset(&t->interval, now_ns);
}

void tp_client_timeline_update(struct tp_client_timeline *t, const struct tp_client_counts *delta,
                               const struct tp_hist *latency, int64_t now_ns)
{
	struct window *wins[2] = {&t->second, &t->interval};

	for (int i = 0; i < 2; i++) {
		tp_client_counts_add(&wins[i]->counts, delta);
		tp_hist_merge(wins[i]->latency, latency);
	}
	t->replies += delta->recv;
	if (now_ns >= t->next_row_ns) {
		write_row(t, now_ns);
		while (t->next_row_ns <= now_ns)
			t->next_row_ns += t->interval_ns;
	}
	if (now_ns >= t->next_progress_ns) {
		draw_progress(t, now_ns);
		t->next_progress_ns = now_ns + PROGRESS_NS;
	}
}

void tp_client_timeline_end(struct tp_client_timeline *t, int64_t now_ns)
{
	erase_progress(t);
	if (t->interval_ns > 0 && now_ns > t->interval.start_ns &&
	    (t->interval.counts.recv || t->interval.counts.sent || t->interval.counts.timeouts ||
	     t->interval.counts.lost))
		write_row(t, now_ns);
}
