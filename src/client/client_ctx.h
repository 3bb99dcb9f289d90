/* SPDX-License-Identifier: MIT */
/*
 * client_ctx: what the connections of one tpclient worker share: the run's
 * clock and bounds, the read buffer, and per group the group's settings
 * and what its clients measured.
 *
 * Threads: a context belongs to one worker thread of client_load; it is set
 * up before the thread starts and read for the results after it is joined.
 */
#ifndef TP_CLIENT_CTX_H
#define TP_CLIENT_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_opts.h"
#include "client_stats.h"

struct tp_client_conn;

/* What the connections of one group on one worker share: the group's settings and results. */
struct tp_client_gctx {
	const struct tp_client_group *group;
	double tick_ns;     /* open loop: time between consecutive due times over the group's clients */
	size_t max_request; /* output buffer room one request needs (at most) */
	size_t out_cap;     /* output buffer per connection */
	struct tp_client_stats stats; /* latency per op of the group's mix, none of all ops */
	struct tp_client_stats warm;  /* --warmup: what is left out of the totals; counts only */
};

/* What the connections of one worker share. */
struct tp_client_ctx {
	const struct tp_client_opts *opts;
	uint64_t seed;
	int epfd;
	unsigned open;  /* connections of this worker still open */
	bool stopping;  /* issue nothing more; wait for what is outstanding */
	int64_t now_ns; /* CLOCK_MONOTONIC, refreshed by the worker and on each read */
	int64_t start_ns;
	int64_t warm_end_ns; /* start + warmup: requests due (sent) before it count apart */
	int64_t end_ns;      /* start + warmup + duration; 0 without --duration */
	int64_t recv_timeout_ns;
	int64_t retry_delay_ns; /* --retry-busy; 0: busy replies are not retried */
	int64_t retry_wake_ns;  /* the earliest retry waiting to be sent, for the worker to wake; 0: none */
	struct tp_client_gctx groups[TP_CLIENT_MAX_GROUPS]; /* [opts->ngroups] */
	struct tp_hist *recent; /* OK replies since the worker last published them; NULL: not kept */
	char *rbuf;             /* read buffer */
	size_t rbuf_size;
	char *text;                    /* an ECHO text regenerated for checking */
	struct tp_client_conn *broken; /* --reconnect: closed by the server, to be reopened (client_conn) */
	struct tp_client_conn *redialing; /* taken from broken, being looked at (client_conn) */
	int64_t redial_wake_ns; /* the earliest redial waiting in broken, for the worker to wake; 0: none */
	unsigned failures_logged;
};

/* Set up ctx for opts (which must outlive it); sample: keep recent. Returns 0 or -ENOMEM. */
int tp_client_ctx_init(struct tp_client_ctx *ctx, const struct tp_client_opts *opts, uint64_t seed, int epfd,
                       bool sample);

/* Fix the run's start, and from it the end and the open-loop schedule. */
void tp_client_ctx_start(struct tp_client_ctx *ctx, int64_t start_ns);

/* Release what ctx_init allocated. Safe on a zeroed or released ctx. */
void tp_client_ctx_release(struct tp_client_ctx *ctx);

#endif
