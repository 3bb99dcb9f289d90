/* SPDX-License-Identifier: MIT */
/*
 * client_report: the end-of-run report.  See client_report.h.
 */
#include "client_report.h"

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

int tp_client_report_exit_status(const struct tp_client_counts *c)
{
	bool clean = c->ok == c->sent && c->busy == 0 && c->other_err == 0 && c->mismatch == 0 &&
	             c->timeouts == 0 && c->lost == 0 && c->disconnects == 0 && c->connect_failed == 0;

	return clean ? TP_CLIENT_EXIT_OK : TP_CLIENT_EXIT_FAILED;
}

static uint64_t err_total(const struct tp_client_counts *c)
{
	return c->busy + c->other_err + c->mismatch;
}

static double ok_rps(const struct tp_client_counts *c, double elapsed_s)
{
	return elapsed_s > 0 ? (double)c->ok / elapsed_s : 0.0;
}

static double pct_ms(const struct tp_hist *h, double p)
{
	return (double)tp_hist_percentile(h, p) / 1e6;
}

/*
 * What the run's top-level fields describe: the one group, or with
 * --group the top-level flags with the groups' clients and rates added up
 * and "mixed" for a loop that is open in some groups and closed in others.
 */
static const char *summarize(const struct tp_client_opts *o, struct tp_client_group *ret)
{
	unsigned open = 0;

	*ret = o->grouped ? o->base : o->groups[0];
	ret->clients = o->clients;
	ret->rate = 0;
	for (unsigned i = 0; i < o->ngroups; i++) {
		open += o->groups[i].rate > 0;
		ret->rate += o->groups[i].rate;
	}
	return open == 0 ? "closed" : open == o->ngroups ? "open" : "mixed";
}

static void text_sources(FILE *f, const struct tp_client_group *g)
{
	for (unsigned i = 0; i < g->nsources; i++)
		fprintf(f, "%s%s", i ? "," : " sources=", g->sources[i].text);
}

/* One group's line: its settings, then its counts and latency. */
static void text_group(FILE *f, const struct tp_client_group *g, const struct tp_client_counts *c,
                       const struct tp_hist *h, double elapsed_s)
{
	fprintf(f, "GROUP name=%s clients=%u loop=%s rate=%.1f max_inflight=%u mix=%s", g->name, g->clients,
	        g->rate > 0 ? "open" : "closed", g->rate, g->max_inflight, tp_client_mix_name(g->mix));
	text_sources(f, g);
	fprintf(f,
	        " sent=%llu recv=%llu ok=%llu err=%llu ok_rps=%.1f busy=%llu other=%llu mismatch=%llu "
	        "timeouts=%llu lost=%llu disconnects=%llu connect_failed=%llu reconnects=%llu late=%llu",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)err_total(c), ok_rps(c, elapsed_s), (unsigned long long)c->busy,
	        (unsigned long long)c->other_err, (unsigned long long)c->mismatch,
	        (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed,
	        (unsigned long long)c->reconnects, (unsigned long long)c->late);
	fprintf(f, " p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f min=%.3f mean=%.3f\n", pct_ms(h, 50),
	        pct_ms(h, 90), pct_ms(h, 99), pct_ms(h, 99.9), (double)tp_hist_max(h) / 1e6,
	        (double)tp_hist_min(h) / 1e6, tp_hist_mean(h) / 1e6);
}

void tp_client_report_text(FILE *f, const struct tp_client_report *r)
{
	const struct tp_client_counts *c = r->counts;
	const struct tp_hist *h = r->latency;
	const struct tp_client_opts *o = r->opts;
	struct tp_client_group top;
	const char *loop = summarize(o, &top);

	/* This first line's exact shape is what existing scripts match. */
	fprintf(f, "SUMMARY sent=%llu recv=%llu ok=%llu err=%llu elapsed=%.3f ok_rps=%.1f\n",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)err_total(c), r->elapsed_s, ok_rps(c, r->elapsed_s));
	fprintf(f,
	        "ERRORS busy=%llu other=%llu mismatch=%llu timeouts=%llu lost=%llu disconnects=%llu "
	        "connect_failed=%llu reconnects=%llu\n",
	        (unsigned long long)c->busy, (unsigned long long)c->other_err,
	        (unsigned long long)c->mismatch, (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed,
	        (unsigned long long)c->reconnects);
	fprintf(f, "LATENCY_MS p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f min=%.3f mean=%.3f\n",
	        pct_ms(h, 50), pct_ms(h, 90), pct_ms(h, 99), pct_ms(h, 99.9), (double)tp_hist_max(h) / 1e6,
	        (double)tp_hist_min(h) / 1e6, tp_hist_mean(h) / 1e6);
	fprintf(f, "RUN loop=%s rate=%.1f clients=%u threads=%u max_inflight=%u mix=%s seed=%llu late=%llu",
	        loop, top.rate, top.clients, o->threads, top.max_inflight, tp_client_mix_name(top.mix),
	        (unsigned long long)r->seed, (unsigned long long)c->late);
	text_sources(f, &top);
	if (o->grouped)
		fprintf(f, " groups=%u", o->ngroups);
	if (o->reconnect)
		fputs(" reconnect=1", f);
	fputs(r->interrupted ? " interrupted=1\n" : "\n", f);
	for (unsigned i = 0; o->grouped && i < o->ngroups; i++)
		text_group(f, &o->groups[i], &r->group_counts[i], r->group_latency[i], r->elapsed_s);
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* What a group (or the whole run) sends: the fields after "port" (or "name"). */
static void json_settings(FILE *f, const struct tp_client_group *g, const char *loop, unsigned threads)
{
	fprintf(f, ",\"loop\":\"%s\",\"clients\":%u", loop, g->clients);
	if (threads)
		fprintf(f, ",\"threads\":%u", threads);
	fprintf(f, ",\"max_inflight\":%u,\"mix\":\"%s\"", g->max_inflight, tp_client_mix_name(g->mix));
	if (g->rate > 0)
		fprintf(f, ",\"rate\":%.3f", g->rate);
	else
		fputs(",\"rate\":null", f);
	if (g->requests)
		fprintf(f, ",\"requests_per_client\":%llu", (unsigned long long)g->requests);
	else
		fputs(",\"requests_per_client\":null", f);
	fputs(",\"sources\":[", f);
	for (unsigned i = 0; i < g->nsources; i++) {
		if (i)
			fputc(',', f);
		json_string(f, g->sources[i].text);
	}
	fprintf(f, "],\"sleep_ms\":[%u,%u],\"echo_bytes\":[%u,%u]", g->sleep_lo_ms, g->sleep_hi_ms,
	        g->echo_lo, g->echo_hi);
}

/* What came back: the counts, ok_rps and latency_ms fields. */
static void json_results(FILE *f, const struct tp_client_counts *c, const struct tp_hist *h, double elapsed_s)
{
	fprintf(f,
	        ",\"sent\":%llu,\"recv\":%llu,\"ok\":%llu,\"err\":%llu,\"busy\":%llu,\"other_err\":%llu"
	        ",\"mismatch\":%llu,\"timeouts\":%llu,\"lost\":%llu,\"disconnects\":%llu,\"connect_failed\":%"
	        "llu,\"reconnects\":%llu,\"late\":%llu,\"ok_rps\":%.1f",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)err_total(c), (unsigned long long)c->busy,
	        (unsigned long long)c->other_err, (unsigned long long)c->mismatch,
	        (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed,
	        (unsigned long long)c->reconnects, (unsigned long long)c->late, ok_rps(c, elapsed_s));
	fprintf(f,
	        ",\"latency_ms\":{\"count\":%llu,\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f"
	        ",\"p99\":%.3f,\"p99_9\":%.3f,\"max\":%.3f}",
	        (unsigned long long)tp_hist_count(h), (double)tp_hist_min(h) / 1e6, tp_hist_mean(h) / 1e6,
	        pct_ms(h, 50), pct_ms(h, 90), pct_ms(h, 99), pct_ms(h, 99.9), (double)tp_hist_max(h) / 1e6);
}

void tp_client_report_json(FILE *f, const struct tp_client_report *r)
{
	const struct tp_client_opts *o = r->opts;
	struct tp_client_group top;
	const char *loop = summarize(o, &top);

	fprintf(f, "{\"tpclient\":\"%s\",\"host\":", TP_VERSION);
	json_string(f, o->host);
	fprintf(f, ",\"port\":%s", o->port);
	json_settings(f, &top, loop, o->threads);
	if (o->duration_s > 0)
		fprintf(f, ",\"duration_s\":%.3f", o->duration_s);
	else
		fputs(",\"duration_s\":null", f);
	fprintf(f, ",\"recv_timeout_s\":%.3f,\"reconnect\":%s,\"seed\":%llu", o->recv_timeout_s,
	        o->reconnect ? "true" : "false", (unsigned long long)r->seed);
	json_results(f, r->counts, r->latency, r->elapsed_s);
	fprintf(f, ",\"elapsed_s\":%.3f,\"interrupted\":%s", r->elapsed_s, r->interrupted ? "true" : "false");
	if (o->grouped) {
		fputs(",\"groups\":[", f);
		for (unsigned i = 0; i < o->ngroups; i++) {
			fputs(i ? ",{\"name\":" : "{\"name\":", f);
			json_string(f, o->groups[i].name);
			json_settings(f, &o->groups[i], o->groups[i].rate > 0 ? "open" : "closed", 0);
			json_results(f, &r->group_counts[i], r->group_latency[i], r->elapsed_s);
			fputc('}', f);
		}
		fputc(']', f);
	}
	fprintf(f, ",\"exit_status\":%d}\n", tp_client_report_exit_status(r->counts));
}
