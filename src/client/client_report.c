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

static double ok_rps(const struct tp_client_report *r)
{
	return r->elapsed_s > 0 ? (double)r->counts->ok / r->elapsed_s : 0.0;
}

static double pct_ms(const struct tp_hist *h, double p)
{
	return (double)tp_hist_percentile(h, p) / 1e6;
}

void tp_client_report_text(FILE *f, const struct tp_client_report *r)
{
	const struct tp_client_counts *c = r->counts;
	const struct tp_hist *h = r->latency;
	const struct tp_client_opts *o = r->opts;

	/* This first line's exact shape is what existing scripts match. */
	fprintf(f, "SUMMARY sent=%llu recv=%llu ok=%llu err=%llu elapsed=%.3f ok_rps=%.1f\n",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)err_total(c), r->elapsed_s, ok_rps(r));
	fprintf(f,
	        "ERRORS busy=%llu other=%llu mismatch=%llu timeouts=%llu lost=%llu disconnects=%llu "
	        "connect_failed=%llu\n",
	        (unsigned long long)c->busy, (unsigned long long)c->other_err,
	        (unsigned long long)c->mismatch, (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed);
	fprintf(f, "LATENCY_MS p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f min=%.3f mean=%.3f\n",
	        pct_ms(h, 50), pct_ms(h, 90), pct_ms(h, 99), pct_ms(h, 99.9), (double)tp_hist_max(h) / 1e6,
	        (double)tp_hist_min(h) / 1e6, tp_hist_mean(h) / 1e6);
	fprintf(f, "RUN loop=%s rate=%.1f clients=%u threads=%u max_inflight=%u mix=%s seed=%llu late=%llu",
	        o->rate > 0 ? "open" : "closed", o->rate, o->clients, o->threads, o->max_inflight,
	        tp_client_opts_mix_name(o->mix), (unsigned long long)r->seed, (unsigned long long)c->late);
	for (unsigned i = 0; i < o->nsources; i++)
		fprintf(f, "%s%s", i ? "," : " sources=", o->sources[i].text);
	fputs(r->interrupted ? " interrupted=1\n" : "\n", f);
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

void tp_client_report_json(FILE *f, const struct tp_client_report *r)
{
	const struct tp_client_counts *c = r->counts;
	const struct tp_hist *h = r->latency;
	const struct tp_client_opts *o = r->opts;

	fprintf(f, "{\"tpclient\":\"%s\",\"host\":", TP_VERSION);
	json_string(f, o->host);
	fprintf(f,
	        ",\"port\":%s,\"loop\":\"%s\",\"clients\":%u,\"threads\":%u,\"max_inflight\":%u,\"mix\":\"%"
	        "s\"",
	        o->port, o->rate > 0 ? "open" : "closed", o->clients, o->threads, o->max_inflight,
	        tp_client_opts_mix_name(o->mix));
	if (o->rate > 0)
		fprintf(f, ",\"rate\":%.3f", o->rate);
	else
		fputs(",\"rate\":null", f);
	if (o->requests)
		fprintf(f, ",\"requests_per_client\":%llu", (unsigned long long)o->requests);
	else
		fputs(",\"requests_per_client\":null", f);
	if (o->duration_s > 0)
		fprintf(f, ",\"duration_s\":%.3f", o->duration_s);
	else
		fputs(",\"duration_s\":null", f);
	fputs(",\"sources\":[", f);
	for (unsigned i = 0; i < o->nsources; i++) {
		if (i)
			fputc(',', f);
		json_string(f, o->sources[i].text);
	}
	fputc(']', f);
	fprintf(f, ",\"sleep_ms\":[%u,%u],\"echo_bytes\":[%u,%u],\"recv_timeout_s\":%.3f,\"seed\":%llu",
	        o->sleep_lo_ms, o->sleep_hi_ms, o->echo_lo, o->echo_hi, o->recv_timeout_s,
	        (unsigned long long)r->seed);
	fprintf(f,
	        ",\"sent\":%llu,\"recv\":%llu,\"ok\":%llu,\"err\":%llu,\"busy\":%llu,\"other_err\":%llu"
	        ",\"mismatch\":%llu,\"timeouts\":%llu,\"lost\":%llu,\"disconnects\":%llu,\"connect_failed\":%"
	        "llu"
	        ",\"late\":%llu",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)err_total(c), (unsigned long long)c->busy,
	        (unsigned long long)c->other_err, (unsigned long long)c->mismatch,
	        (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed,
	        (unsigned long long)c->late);
	fprintf(f, ",\"elapsed_s\":%.3f,\"ok_rps\":%.1f,\"interrupted\":%s", r->elapsed_s, ok_rps(r),
	        r->interrupted ? "true" : "false");
	fprintf(f,
	        ",\"latency_ms\":{\"count\":%llu,\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f"
	        ",\"p99\":%.3f,\"p99_9\":%.3f,\"max\":%.3f}",
	        (unsigned long long)tp_hist_count(h), (double)tp_hist_min(h) / 1e6, tp_hist_mean(h) / 1e6,
	        pct_ms(h, 50), pct_ms(h, 90), pct_ms(h, 99), pct_ms(h, 99.9), (double)tp_hist_max(h) / 1e6);
	fprintf(f, ",\"exit_status\":%d}\n", tp_client_report_exit_status(c));
}
