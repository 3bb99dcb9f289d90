/* SPDX-License-Identifier: MIT */
/*
 * client_stats: counting a run's requests per op.  See client_stats.h.
 */
#include "client_stats.h"

#include <errno.h>
#include <string.h>

int tp_client_stats_init(struct tp_client_stats *s, const bool ops[TP_OP_COUNT], bool all)
{
	for (int op = 0; op < TP_OP_COUNT; op++)
		if (ops[op] && !(s->op_latency[op] = tp_hist_new()))
			return -ENOMEM;
	if (all && !(s->latency = tp_hist_new()))
		return -ENOMEM;
	return 0;
}

void tp_client_stats_release(struct tp_client_stats *s)
{
	for (int op = 0; op < TP_OP_COUNT; op++) {
		tp_hist_free(s->op_latency[op]);
		s->op_latency[op] = NULL;
	}
	tp_hist_free(s->latency);
	s->latency = NULL;
}

void tp_client_stats_sent(struct tp_client_stats *s, enum tp_op op, bool late)
{
	s->counts.sent++;
	s->op[op].sent++;
	s->counts.late += late;
	s->op[op].late += late;
}

void tp_client_stats_retried(struct tp_client_stats *s, enum tp_op op)
{
	tp_client_stats_sent(s, op, false);
	s->counts.retries++;
	s->op[op].retries++;
}

void tp_client_stats_gave_up(struct tp_client_stats *s, enum tp_op op)
{
	s->counts.gave_up++;
	s->op[op].gave_up++;
}

/* The count a reply of kind r adds to. */
static uint64_t *reply_count(struct tp_client_counts *c, enum tp_verify_result r)
{
	switch (r) {
	case TP_VERIFY_OK:
		return &c->ok;
	case TP_VERIFY_BUSY:
		return &c->busy;
	case TP_VERIFY_ERR:
		return &c->other_err;
	case TP_VERIFY_MISMATCH:
		break;
	}
	return &c->mismatch;
}

void tp_client_stats_unasked(struct tp_client_stats *s, const char *line, size_t len, bool too_long)
{
	bool err = !too_long && len >= 4 && memcmp(line, "ERR ", 4) == 0;

	s->counts.recv++;
	(*reply_count(&s->counts, err ? TP_VERIFY_ERR : TP_VERIFY_MISMATCH))++;
}

void tp_client_stats_reply(struct tp_client_stats *s, enum tp_op op, enum tp_verify_result r,
                           uint64_t latency_ns)
{
	s->counts.recv++;
	s->op[op].recv++;
	(*reply_count(&s->counts, r))++;
	(*reply_count(&s->op[op], r))++;
	if (r != TP_VERIFY_OK)
		return;
	if (s->op_latency[op])
		tp_hist_record(s->op_latency[op], latency_ns);
	if (s->latency)
		tp_hist_record(s->latency, latency_ns);
}

void tp_client_stats_unanswered(struct tp_client_stats *s, enum tp_op op, bool timeout)
{
	if (timeout) {
		s->counts.timeouts++;
		s->op[op].timeouts++;
	} else {
		s->counts.lost++;
		s->op[op].lost++;
	}
}

void tp_client_stats_merge(struct tp_client_stats *dst, const struct tp_client_stats *src)
{
	tp_client_counts_add(&dst->counts, &src->counts);
	for (int op = 0; op < TP_OP_COUNT; op++) {
		tp_client_counts_add(&dst->op[op], &src->op[op]);
		if (!src->op_latency[op])
			continue;
		if (dst->op_latency[op])
			tp_hist_merge(dst->op_latency[op], src->op_latency[op]);
		if (dst->latency && !src->latency)
			tp_hist_merge(dst->latency, src->op_latency[op]);
	}
	if (dst->latency && src->latency)
		tp_hist_merge(dst->latency, src->latency);
}
