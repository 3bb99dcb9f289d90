/* SPDX-License-Identifier: MIT */
/*
 * client_sched: the open-loop schedule of one tpclient worker.  Client c of
 * a group (numbered in its group) is due to send its k-th request at
 * start + (c + k * clients) / rate, with the group's clients and rate; a
 * cursor per group visits the due times of the worker's clients of that
 * group in time order and pumps each connection as its time comes.
 *
 * Threads: owned by one worker; set up (tp_client_sched_add) before the
 * worker starts, run only on it.
 */
#ifndef TP_CLIENT_SCHED_H
#define TP_CLIENT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "client_conn.h"

/*
 * One group on one worker: its clients are conns[first .. first + n) (a
 * group's clients are consecutive numbers, so a worker's share of them is
 * too); the next due is round k of local client j.
 */
struct tp_client_sched_group {
	bool on;
	unsigned first, n;
	uint64_t k;
	unsigned j;
	int64_t next_ns;
};

struct tp_client_sched {
	struct tp_client_sched_group groups[TP_CLIENT_MAX_GROUPS];
	const struct tp_client_opts *opts;
	bool on;         /* any group on: the worker calls tp_client_sched_run */
	int64_t next_ns; /* the earliest next due time of the groups on */
};

/* The worker's conns[pos] is a client of group g (called in increasing pos). */
void tp_client_sched_add(struct tp_client_sched *s, unsigned g, unsigned pos);

/* Turn on the groups with a rate. Returns true if any is on (zeroed *s: none). */
bool tp_client_sched_begin(struct tp_client_sched *s, const struct tp_client_opts *opts);

/*
 * Pump every connection whose request is due by ctx->now_ns, in due order;
 * a group goes off at its end (count, duration, or ctx->stopping).  Sets
 * s->on and s->next_ns for the next wake.
 */
void tp_client_sched_run(struct tp_client_sched *s, struct tp_client_conn **conns,
                         const struct tp_client_ctx *ctx);

#endif
