/* SPDX-License-Identifier: MIT */
/*
 * client_json: the end-of-run report as one JSON object.  See client_json.h.
 */
#include "client_json.h"

#include <stdlib.h>

#include "client_hgrm.h"
#include "proto.h"

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

#define SPECTRUM_MAX 1024 /* points: enough for TP_CLIENT_HGRM_TICKS, see hist.h */

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
	char rate[32];

	fprintf(f, ",\"loop\":\"%s\",\"clients\":%u", loop, g->clients);
	if (threads)
		fprintf(f, ",\"threads\":%u", threads);
	fprintf(f, ",\"max_inflight\":%u,\"mix\":\"%s\"", g->max_inflight, tp_client_mix_name(g->mix));
	if (g->rate > 0)
		fprintf(f, ",\"rate\":%s", tp_client_rate_text(g->rate, 3, rate, sizeof(rate)));
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

/* ,"percentiles":[...]: the points of the .hgrm file (client_hgrm), as {"p":..,"ms":..,"count":..}. */
static void json_spectrum(FILE *f, const struct tp_hist *h)
{
	struct tp_hist_point *points = malloc(SPECTRUM_MAX * sizeof(*points));
	size_t n = points ? tp_hist_spectrum(h, TP_CLIENT_HGRM_TICKS, points, SPECTRUM_MAX) : 0;

	fputs(",\"percentiles\":[", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s{\"p\":%.6f,\"ms\":%.3f,\"count\":%llu}", i ? "," : "", points[i].percentile,
		        (double)points[i].value / 1e6, (unsigned long long)points[i].total_count);
	fputc(']', f);
	free(points);
}

/* ",latency_ms":{...}: the latency of the OK replies; spectrum: with the percentile spectrum. */
static void json_latency(FILE *f, const struct tp_hist *h, bool spectrum)
{
	fprintf(f,
	        ",\"latency_ms\":{\"count\":%llu,\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f"
	        ",\"p99\":%.3f,\"p99_9\":%.3f,\"max\":%.3f",
	        (unsigned long long)tp_hist_count(h), (double)tp_hist_min(h) / 1e6, tp_hist_mean(h) / 1e6,
	        tp_client_report_ms(h, 50), tp_client_report_ms(h, 90), tp_client_report_ms(h, 99),
	        tp_client_report_ms(h, 99.9), (double)tp_hist_max(h) / 1e6);
	if (spectrum)
		json_spectrum(f, h);
	fputc('}', f);
}

/* What came back: the counts, ok_rps and latency_ms fields. */
static void json_counts(FILE *f, const struct tp_client_counts *c, const struct tp_hist *h, double elapsed_s)
{
	fprintf(f,
	        ",\"sent\":%llu,\"recv\":%llu,\"ok\":%llu,\"err\":%llu,\"busy\":%llu,\"other_err\":%llu"
	        ",\"mismatch\":%llu,\"timeouts\":%llu,\"lost\":%llu,\"disconnects\":%llu,\"connect_failed\":%"
	        "llu,\"reconnects\":%llu,\"late\":%llu,\"retries\":%llu,\"gave_up\":%llu,\"ok_rps\":%.1f",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)tp_client_report_err(c), (unsigned long long)c->busy,
	        (unsigned long long)c->other_err, (unsigned long long)c->mismatch,
	        (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed,
	        (unsigned long long)c->reconnects, (unsigned long long)c->late,
	        (unsigned long long)c->retries, (unsigned long long)c->gave_up,
	        tp_client_report_ok_rps(c, elapsed_s));
	json_latency(f, h, true);
}

/* "NAME":{...}: the counts that belong to requests of one op, and their latency. */
static void json_op(FILE *f, const char *name, const struct tp_client_counts *c, const struct tp_hist *h,
                    double elapsed_s)
{
	fprintf(f,
	        "\"%s\":{\"sent\":%llu,\"recv\":%llu,\"ok\":%llu,\"err\":%llu,\"busy\":%llu,\"other_err\":%"
	        "llu"
	        ",\"mismatch\":%llu,\"timeouts\":%llu,\"lost\":%llu,\"late\":%llu,\"retries\":%llu,\"gave_"
	        "up\":%llu"
	        ",\"ok_rps\":%.1f",
	        name, (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)tp_client_report_err(c), (unsigned long long)c->busy,
	        (unsigned long long)c->other_err, (unsigned long long)c->mismatch,
	        (unsigned long long)c->timeouts, (unsigned long long)c->lost, (unsigned long long)c->late,
	        (unsigned long long)c->retries, (unsigned long long)c->gave_up,
	        tp_client_report_ok_rps(c, elapsed_s));
	json_latency(f, h, false);
	fputc('}', f);
}

/* The counts and latency of all ops, then "ops": those of each op. */
static void json_results(FILE *f, const struct tp_client_stats *s, double elapsed_s)
{
	json_counts(f, &s->counts, s->latency, elapsed_s);
	fputs(",\"ops\":{", f);
	for (int op = 0; op < TP_OP_COUNT; op++) {
		if (op > 0)
			fputc(',', f);
		json_op(f, tp_proto_op_label(op), &s->op[op], s->op_latency[op], elapsed_s);
	}
	fputc('}', f);
}

void tp_client_json_report(FILE *f, const struct tp_client_report *r)
{
	const struct tp_client_opts *o = r->opts;
	struct tp_client_group top;
	const char *loop = tp_client_report_summarize(o, &top);

	fprintf(f, "{\"tpclient\":\"%s\",\"host\":", TP_VERSION);
	json_string(f, o->host);
	fprintf(f, ",\"port\":%s", o->port);
	json_settings(f, &top, loop, o->threads);
	if (o->duration_s > 0)
		fprintf(f, ",\"duration_s\":%.3f", o->duration_s);
	else
		fputs(",\"duration_s\":null", f);
	fprintf(f, ",\"recv_timeout_s\":%.3f,\"reconnect\":%s", o->recv_timeout_s,
	        o->reconnect ? "true" : "false");
	if (o->retry_delay_s > 0)
		fprintf(f, ",\"retry_busy\":{\"delay_s\":%.3f,\"budget\":%u}", o->retry_delay_s,
		        o->retry_budget);
	else
		fputs(",\"retry_busy\":null", f);
	fprintf(f, ",\"warmup_s\":%.3f,\"seed\":%llu", o->warmup_s, (unsigned long long)r->seed);
	json_results(f, r->total, r->elapsed_s);
	fprintf(f, ",\"elapsed_s\":%.3f,\"interrupted\":%s", r->elapsed_s, r->interrupted ? "true" : "false");
	if (o->grouped) {
		fputs(",\"groups\":[", f);
		for (unsigned i = 0; i < o->ngroups; i++) {
			fputs(i ? ",{\"name\":" : "{\"name\":", f);
			json_string(f, o->groups[i].name);
			json_settings(f, &o->groups[i], o->groups[i].rate > 0 ? "open" : "closed", 0);
			json_results(f, &r->groups[i], r->elapsed_s);
			fputc('}', f);
		}
		fputc(']', f);
	}
	fprintf(f, ",\"exit_status\":%d}\n", r->exit_status);
}
