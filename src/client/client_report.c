/* SPDX-License-Identifier: MIT */
/*
 * client_report: the end-of-run report as text.  See client_report.h.
 */
#include "client_report.h"

#include "proto.h"

int tp_client_report_exit_status(const struct tp_client_counts *c)
{
	/* Every request got its OK in the end: each busy reply was retried (none without --retry-busy). */
	bool clean = c->ok + c->retries == c->sent && c->busy == c->retries && c->other_err == 0 &&
	             c->mismatch == 0 && c->timeouts == 0 && c->lost == 0 && c->disconnects == 0 &&
	             c->connect_failed == 0;

	return clean ? TP_CLIENT_EXIT_OK : TP_CLIENT_EXIT_FAILED;
}

uint64_t tp_client_report_err(const struct tp_client_counts *c)
{
	return c->busy + c->other_err + c->mismatch;
}

double tp_client_report_ok_rps(const struct tp_client_counts *c, double elapsed_s)
{
	return elapsed_s > 0 ? (double)c->ok / elapsed_s : 0.0;
}

double tp_client_report_ms(const struct tp_hist *h, double p)
{
	return (double)tp_hist_percentile(h, p) / 1e6;
}

const char *tp_client_report_summarize(const struct tp_client_opts *o, struct tp_client_group *ret)
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

/* " p50=... mean=...": the latency fields of LATENCY_MS, GROUP and OP lines. */
static void text_latency(FILE *f, const struct tp_hist *h)
{
	fprintf(f, " p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f min=%.3f mean=%.3f\n",
	        tp_client_report_ms(h, 50), tp_client_report_ms(h, 90), tp_client_report_ms(h, 99),
	        tp_client_report_ms(h, 99.9), (double)tp_hist_max(h) / 1e6, (double)tp_hist_min(h) / 1e6,
	        tp_hist_mean(h) / 1e6);
}

/* One group's line: its settings, then its counts and latency. */
static void text_group(FILE *f, const struct tp_client_group *g, const struct tp_client_stats *s,
                       double elapsed_s)
{
	const struct tp_client_counts *c = &s->counts;
	char rate[32];

	fprintf(f, "GROUP name=%s clients=%u loop=%s rate=%s max_inflight=%u mix=%s", g->name, g->clients,
	        g->rate > 0 ? "open" : "closed", tp_client_rate_text(g->rate, 1, rate, sizeof(rate)),
	        g->max_inflight, tp_client_mix_name(g->mix));
	text_sources(f, g);
	fprintf(f,
	        " sent=%llu recv=%llu ok=%llu err=%llu ok_rps=%.1f busy=%llu other=%llu mismatch=%llu "
	        "timeouts=%llu lost=%llu disconnects=%llu connect_failed=%llu reconnects=%llu late=%llu "
	        "retries=%llu gave_up=%llu",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)tp_client_report_err(c), tp_client_report_ok_rps(c, elapsed_s),
	        (unsigned long long)c->busy, (unsigned long long)c->other_err,
	        (unsigned long long)c->mismatch, (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed,
	        (unsigned long long)c->reconnects, (unsigned long long)c->late,
	        (unsigned long long)c->retries, (unsigned long long)c->gave_up);
	text_latency(f, s->latency);
}

/* An OP line: one op's requests (or, as "total", all of them), in the manner of memtier's rows. */
static void text_op(FILE *f, const char *group, const char *op, const struct tp_client_counts *c,
                    const struct tp_hist *h, double elapsed_s)
{
	fputs("OP", f);
	if (group)
		fprintf(f, " group=%s", group);
	fprintf(f,
	        " op=%s sent=%llu recv=%llu ok=%llu err=%llu ok_rps=%.1f busy=%llu other=%llu mismatch=%llu "
	        "timeouts=%llu lost=%llu late=%llu retries=%llu gave_up=%llu",
	        op, (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)tp_client_report_err(c), tp_client_report_ok_rps(c, elapsed_s),
	        (unsigned long long)c->busy, (unsigned long long)c->other_err,
	        (unsigned long long)c->mismatch, (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->late, (unsigned long long)c->retries, (unsigned long long)c->gave_up);
	text_latency(f, h);
}

/* The OP lines of a stats: sleep, echo, then the total. */
static void text_ops(FILE *f, const char *group, const struct tp_client_stats *s, double elapsed_s)
{
	for (int op = 0; op < TP_OP_COUNT; op++)
		text_op(f, group, tp_proto_op_label(op), &s->op[op], s->op_latency[op], elapsed_s);
	text_op(f, group, "total", &s->counts, s->latency, elapsed_s);
}

void tp_client_report_text(FILE *f, const struct tp_client_report *r)
{
	const struct tp_client_counts *c = &r->total->counts;
	const struct tp_client_opts *o = r->opts;
	struct tp_client_group top;
	const char *loop = tp_client_report_summarize(o, &top);
	char rate[32];

	/* This first line's exact shape is what existing scripts match. */
	fprintf(f, "SUMMARY sent=%llu recv=%llu ok=%llu err=%llu elapsed=%.3f ok_rps=%.1f\n",
	        (unsigned long long)c->sent, (unsigned long long)c->recv, (unsigned long long)c->ok,
	        (unsigned long long)tp_client_report_err(c), r->elapsed_s,
	        tp_client_report_ok_rps(c, r->elapsed_s));
	fprintf(f,
	        "ERRORS busy=%llu other=%llu mismatch=%llu timeouts=%llu lost=%llu disconnects=%llu "
	        "connect_failed=%llu reconnects=%llu retries=%llu gave_up=%llu\n",
	        (unsigned long long)c->busy, (unsigned long long)c->other_err,
	        (unsigned long long)c->mismatch, (unsigned long long)c->timeouts, (unsigned long long)c->lost,
	        (unsigned long long)c->disconnects, (unsigned long long)c->connect_failed,
	        (unsigned long long)c->reconnects, (unsigned long long)c->retries,
	        (unsigned long long)c->gave_up);
	fputs("LATENCY_MS", f);
	text_latency(f, r->total->latency);
	fprintf(f, "RUN loop=%s rate=%s clients=%u threads=%u max_inflight=%u mix=%s seed=%llu late=%llu",
	        loop, tp_client_rate_text(top.rate, 1, rate, sizeof(rate)), top.clients, o->threads,
	        top.max_inflight, tp_client_mix_name(top.mix), (unsigned long long)r->seed,
	        (unsigned long long)c->late);
	text_sources(f, &top);
	if (o->grouped)
		fprintf(f, " groups=%u", o->ngroups);
	if (o->reconnect)
		fputs(" reconnect=1", f);
	if (o->retry_delay_s > 0)
		fprintf(f, " retry_busy=%.3f,%u", o->retry_delay_s, o->retry_budget);
	if (o->warmup_s > 0)
		fprintf(f, " warmup=%.3f", o->warmup_s);
	fputs(r->interrupted ? " interrupted=1\n" : "\n", f);
	for (unsigned i = 0; o->grouped && i < o->ngroups; i++)
		text_group(f, &o->groups[i], &r->groups[i], r->elapsed_s);
	text_ops(f, NULL, r->total, r->elapsed_s);
	for (unsigned i = 0; o->grouped && i < o->ngroups; i++)
		text_ops(f, o->groups[i].name, &r->groups[i], r->elapsed_s);
}
