/* SPDX-License-Identifier: MIT */
/*
 * client_stats: what a share of a tpclient run measured: the counts of
 * docs/TPCLIENT.md, the same counts for each op (SLEEP, ECHO), and the
 * latency of the OK replies of each op.  A connection records into its
 * worker's copy (client_conn), the engine adds the copies up (client_load)
 * and the reports print them (client_report, client_json).
 *
 * Not thread-safe: one thread records into a stats at a time.
 */
#ifndef TP_CLIENT_STATS_H
#define TP_CLIENT_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "client_counts.h"
#include "hist.h"
#include "proto.h"
#include "verify.h"

struct tp_client_stats {
	/* Everything; what belongs to no request (disconnects, reconnects, unsolicited lines) only here. */
	struct tp_client_counts counts;
	/* Per op: sent, recv, ok, busy, other_err, mismatch, late, timeouts, lost, retries, gave_up. */
	struct tp_client_counts op[TP_OP_COUNT];
	/* OK replies, ns, per op and of all ops; any may be NULL: not recorded. */
	struct tp_hist *op_latency[TP_OP_COUNT];
	struct tp_hist *latency;
};

/*
 * Allocate the histograms: one per op for which ops[op] is true, and the
 * one of all ops when all is true (else it is the sum of the op ones,
 * made by tp_client_stats_merge()).  Returns 0 or -ENOMEM (then release).
 */
int tp_client_stats_init(struct tp_client_stats *s, const bool ops[TP_OP_COUNT], bool all);

/* Free the histograms. Safe on a zeroed or released stats. */
void tp_client_stats_release(struct tp_client_stats *s);

/* A request of op was written; late: open loop, 1 ms or more after its due time. */
void tp_client_stats_sent(struct tp_client_stats *s, enum tp_op op, bool late);

/* --retry-busy: a request of op refused as busy was sent again (a retry, and one more sent). */
void tp_client_stats_retried(struct tp_client_stats *s, enum tp_op op);

/* --retry-busy: a request of op refused as busy will not be sent again. */
void tp_client_stats_gave_up(struct tp_client_stats *s, enum tp_op op);

/*
 * A line came when no request was outstanding: an ERR line (a refusal at
 * accept, ERR too many connections) counts as an error reply, anything else
 * as a mismatch; in the totals only, as it answers no op.
 */
void tp_client_stats_unasked(struct tp_client_stats *s, const char *line, size_t len, bool too_long);

/* The reply to a request of op was checked as r; latency_ns counts when r is OK. */
void tp_client_stats_reply(struct tp_client_stats *s, enum tp_op op, enum tp_verify_result r,
                           uint64_t latency_ns);

/* A request of op got no reply: the connection timed out (timeout) or closed. */
void tp_client_stats_unanswered(struct tp_client_stats *s, enum tp_op op, bool timeout);

/*
 * dst += src: counts, and each histogram of src into dst's of the same op
 * and into dst's of all ops (src's of all ops when src has one, else its
 * op ones).  A histogram dst lacks is skipped.
 */
void tp_client_stats_merge(struct tp_client_stats *dst, const struct tp_client_stats *src);

#endif
