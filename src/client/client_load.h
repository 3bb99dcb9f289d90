/* SPDX-License-Identifier: MIT */
/*
 * client_load: tpclient's engine.  Opens the connections, drives them from
 * a few event-loop threads, verifies every reply and measures latency.
 *
 * Threads: tp_client_load_new() and every other call here run on the
 * caller's (main) thread.  tp_client_load_start() spawns opts->threads
 * worker threads; client i (numbered over all groups) belongs to worker
 * i % threads, which alone touches its socket, buffers, counters and
 * histograms until it exits, and with --reconnect dials it again itself
 * (the resolved addresses are shared read-only, see client_dial.h).  What
 * crosses threads: the stop request (an atomic), what each worker
 * publishes for the timeline (counts and a histogram added under that
 * worker's mutex every 20 ms, taken under it by the main thread; only
 * when sampling) and a done counter (atomic).  Each worker
 * writes the eventfd tp_client_load_fd() once when it exits; the caller owns
 * nothing of a worker's until tp_client_load_result() has joined them all.
 *
 * Latencies are recorded in nanoseconds, only for verified OK replies,
 * measured from the send (closed loop) or from the scheduled send time
 * (open loop, --rate).
 */
#ifndef TP_CLIENT_LOAD_H
#define TP_CLIENT_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "client_opts.h"
#include "client_stats.h"
#include "hist.h"

struct tp_client_load;

/*
 * Resolve the server address and connect every client (blocking, each
 * bounded by recv-timeout).  A client that cannot connect is logged and
 * counted in connect_failed; the run goes on without it (with none, it
 * ends at once).  Returns 0 and the load in *ret, -EHOSTUNREACH when the
 * host does not resolve (logged here), -ENOMEM, or an epoll or eventfd error;
 * -EINTR as soon as stop_fd (if >= 0: the signalfd) is readable, however
 * many clients are left to connect (it is not read).
 * sample: publish for tp_client_load_take().
 */
int tp_client_load_new(const struct tp_client_opts *opts, uint64_t seed, bool sample, int stop_fd,
                       struct tp_client_load **ret);

/* Start the clock and the worker threads. Returns 0 or -errno (pthread_create). */
int tp_client_load_start(struct tp_client_load *l);

/* An eventfd that becomes readable when worker threads exit. */
int tp_client_load_fd(const struct tp_client_load *l);

/* Consume tp_client_load_fd(); true once every worker has exited. */
bool tp_client_load_finished(struct tp_client_load *l);

/*
 * Ask the workers to stop issuing requests.  Gracefully, outstanding
 * replies are still awaited (up to recv-timeout); with abort they are
 * counted lost and every connection is closed at once.  Safe to repeat.
 */
void tp_client_load_stop(struct tp_client_load *l, bool abort);

/*
 * Add to *ret what the workers counted, and to latency (ns) the OK replies
 * they saw, since the last call: every 20 ms each worker publishes what
 * it did meanwhile, warmup included.  Nothing without sampling.
 */
void tp_client_load_take(struct tp_client_load *l, struct tp_client_counts *ret, struct tp_hist *latency);

/*
 * Join the workers (after tp_client_load_finished() or a stop) and add
 * what they measured of group g to ret[g] (tp_client_stats_merge), for
 * each of opts->ngroups groups (what --warmup leaves out is not in it).
 * Returns the elapsed seconds from the end of the warmup (the start,
 * without one) to the last worker's exit; 0 if it ended before.
 */
double tp_client_load_result(struct tp_client_load *l, struct tp_client_stats *ret);

/* Close every connection and release everything. Accepts NULL. */
void tp_client_load_free(struct tp_client_load *l);

#endif
