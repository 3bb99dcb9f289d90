/* SPDX-License-Identifier: MIT */
/*
 * client_conn: one tpclient connection: its request sequence, its window of
 * outstanding requests, its batched output and the checking of its replies.
 * The worker's share of the run that its connections use is client_ctx.
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

#include "client_ctx.h"

struct tp_client_conn;

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

/* Has it sent all its --requests (those of the warm-up not counted), or is it closed? */
bool tp_client_conn_done(const struct tp_client_conn *c);

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

/*
 * With --reconnect, a connection the server closes (or resets) while it
 * still has requests to send counts what was outstanding as lost, closes
 * its socket and waits in ctx->broken, still counted in ctx->open, until
 * its redial time (at once after an OK reply; else after a backoff of
 * 10 ms doubling to 1 s; in the open loop not before its next request is
 * due; ctx->redial_wake_ns is the earliest).  Its owner takes each one
 * whose time has come with tp_client_conn_next_broken() (NULL when none),
 * dials again from tp_client_conn_source() and hands over the new socket
 * with tp_client_conn_reopen() (which counts a reconnect and sends what is
 * due).  When the dial fails (a server restarting refuses it),
 * tp_client_conn_redial_failed() puts it back to wait, with the backoff,
 * while less than the receive timeout has passed since the close;
 * otherwise its owner gives up with tp_client_conn_give_up() (a
 * disconnect; closed for good).  One that the run's end or a stop leaves nothing to send is
 * released there, uncounted.  Without --reconnect, or with nothing left to
 * send, such a connection closes for good at once, as a disconnect.
 */
struct tp_client_conn *tp_client_conn_next_broken(struct tp_client_ctx *ctx);

/* The local address this client binds to (NULL: any), and its number over all groups. */
const struct tp_client_source *tp_client_conn_source(const struct tp_client_conn *c);
unsigned tp_client_conn_index(const struct tp_client_conn *c);

/* Take over the connected socket fd. Returns 0 or -errno (fd is not closed on failure). */
int tp_client_conn_reopen(struct tp_client_conn *c, int fd);

/* The dial for c failed: true when it waits to dial again, false when it is time to give up. */
bool tp_client_conn_redial_failed(struct tp_client_conn *c);

/* Stay closed, counted as a disconnect. */
void tp_client_conn_give_up(struct tp_client_conn *c);

/* Close now, counting outstanding requests as lost. */
void tp_client_conn_abort(struct tp_client_conn *c);

#endif
