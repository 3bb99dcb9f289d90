/* SPDX-License-Identifier: MIT */
/*
 * client_conn: one tpclient connection: its request sequence, its window of
 * outstanding requests, its batched output and the checking of its replies.
 *
 * Threads: a connection and the context it points to belong to one worker
 * thread of client_load; every function here runs on that thread (or, for
 * _new and _free, before it starts and after it is joined).  Nothing here
 * locks.
 */
#ifndef TP_CLIENT_CONN_H
#define TP_CLIENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_counts.h"
#include "client_opts.h"
#include "hist.h"

/* What the connections of one group on one worker share: the group's settings and results. */
struct tp_client_gctx {
	const struct tp_client_group *group;
	double tick_ns;     /* open loop: time between consecutive due times over the group's clients */
	size_t max_request; /* output buffer room one request needs (at most) */
	size_t out_cap;     /* output buffer per connection */
	struct tp_client_counts counts;
	struct tp_hist *latency; /* ns, OK replies only */
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
	int64_t end_ns; /* start + duration; 0 without --duration */
	int64_t recv_timeout_ns;
	struct tp_client_gctx groups[TP_CLIENT_MAX_GROUPS]; /* [opts->ngroups] */
	char *rbuf;                                         /* read buffer */
	size_t rbuf_size;
	char *text; /* an ECHO text regenerated for checking */
	unsigned failures_logged;
};

struct tp_client_conn;

/* Set up ctx for opts (which must outlive it). Returns 0 or -ENOMEM. */
int tp_client_conn_ctx_init(struct tp_client_ctx *ctx, const struct tp_client_opts *opts, uint64_t seed,
                            int epfd);

/* Fix the run's start, and from it the end and the open-loop schedule. */
void tp_client_conn_ctx_start(struct tp_client_ctx *ctx, int64_t start_ns);

/* Release what ctx_init allocated. Safe on a zeroed or released ctx. */
void tp_client_conn_ctx_release(struct tp_client_ctx *ctx);

/*
 * A connection for client number index (over all groups), number gindex
 * of group number group, on the connected socket fd, which it takes over
 * (made non-blocking, added to ctx->epfd).  A negative fd makes a
 * connection that is closed from the start, so client numbering stays
 * dense.  Returns 0 or -errno (-ENOMEM, epoll_ctl); fd is not closed on
 * failure.
 */
int tp_client_conn_new(struct tp_client_ctx *ctx, unsigned group, unsigned index, unsigned gindex, int fd,
                       struct tp_client_conn **ret);

/* Close and release. Accepts NULL. Outstanding requests are not counted. */
void tp_client_conn_free(struct tp_client_conn *c);

/* Start: arm the receive timeout and, in the closed loop, send the first window. */
void tp_client_conn_begin(struct tp_client_conn *c);

/* Open loop: the scheduled send time of this client's k-th request (tick_ns of its group > 0). */
int64_t tp_client_conn_due_ns(const struct tp_client_conn *c, uint64_t k);

/* Send whatever is due and fits in the window, in one write. Closes the connection when it is done. */
void tp_client_conn_pump(struct tp_client_conn *c);

/* Handle epoll events for the connection (data.ptr). */
void tp_client_conn_event(struct tp_client_conn *c, uint32_t events);

/*
 * Periodic check: counts outstanding requests as timeouts and closes the
 * connection after recv-timeout without a reply, sends what became due to
 * an idle one and closes it when it has nothing more to do.
 */
void tp_client_conn_sweep(struct tp_client_conn *c);

/* Close now, counting outstanding requests as lost. */
void tp_client_conn_abort(struct tp_client_conn *c);

#endif
