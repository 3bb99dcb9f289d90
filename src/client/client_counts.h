/* SPDX-License-Identifier: MIT */
/*
 * client_counts: the totals of a tpclient run.  A connection counts into
 * its worker's copy (client_conn), the engine adds the copies up
 * (client_load) and the report prints them (client_report); this header
 * is the one type they share, below all three.
 */
#ifndef TP_CLIENT_COUNTS_H
#define TP_CLIENT_COUNTS_H

#include <stdint.h>

/* docs/TPCLIENT.md says what each one counts. */
struct tp_client_counts {
	uint64_t sent;           /* requests written */
	uint64_t recv;           /* reply lines read */
	uint64_t ok;             /* replies that were the right OK */
	uint64_t busy;           /* "ERR server busy" */
	uint64_t other_err;      /* any other ERR reply */
	uint64_t mismatch;       /* wrong OK, garbage, over-long or unsolicited line */
	uint64_t timeouts;       /* outstanding on a connection silent for recv-timeout */
	uint64_t lost;           /* outstanding when the connection closed or broke */
	uint64_t disconnects;    /* connections the server closed (or broke) before the end */
	uint64_t connect_failed; /* clients that could not connect */
	uint64_t late;           /* open loop: sent 1 ms or more after its scheduled time */
	uint64_t reconnects;     /* --reconnect: connections reopened after the server closed them */
	uint64_t retries;        /* --retry-busy: requests sent again after ERR server busy (in sent) */
	uint64_t gave_up;        /* --retry-busy: busy replies not retried (budget spent, or the run ended) */
};

/* dst += src, field by field. */
static inline void tp_client_counts_add(struct tp_client_counts *dst, const struct tp_client_counts *src)
{
	dst->sent += src->sent;
	dst->recv += src->recv;
	dst->ok += src->ok;
	dst->busy += src->busy;
	dst->other_err += src->other_err;
	dst->mismatch += src->mismatch;
	dst->timeouts += src->timeouts;
	dst->lost += src->lost;
	dst->disconnects += src->disconnects;
	dst->connect_failed += src->connect_failed;
	dst->late += src->late;
	dst->reconnects += src->reconnects;
	dst->retries += src->retries;
	dst->gave_up += src->gave_up;
}

/* dst -= src, field by field (src counts no more than dst in any field). */
static inline void tp_client_counts_sub(struct tp_client_counts *dst, const struct tp_client_counts *src)
{
	dst->sent -= src->sent;
	dst->recv -= src->recv;
	dst->ok -= src->ok;
	dst->busy -= src->busy;
	dst->other_err -= src->other_err;
	dst->mismatch -= src->mismatch;
	dst->timeouts -= src->timeouts;
	dst->lost -= src->lost;
	dst->disconnects -= src->disconnects;
	dst->connect_failed -= src->connect_failed;
	dst->late -= src->late;
	dst->reconnects -= src->reconnects;
	dst->retries -= src->retries;
	dst->gave_up -= src->gave_up;
}

#endif
