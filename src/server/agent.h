/* SPDX-License-Identifier: MIT */
/*
 * agent: the HAProxy agent-check responder.  Each connection to the agent
 * socket gets one line and is closed:
 *   "drain\n"            the operator drained the host (SIGUSR2) or it is
 *                        leaving (SIGTERM with shutdown.drain_s);
 *   "ready down\n"       the health that gates the watchdog is false;
 *   "ready up N%\n"      otherwise, N the weight below.
 * HAProxy keeps a server in DRAIN until it hears "ready", so every answer
 * but "drain" carries it.
 *
 * The weight: each sample (loop 0's tick) takes the pressure
 *   p = 0.25 * busy/workers + 0.75 * min(1, queued per worker / 4),
 * or 1 when a request was refused busy since the last sample, "queued"
 * counting the requests in the queue and those waiting for room in it.
 * p is smoothed with a time constant of TP_AGENT_TAU_MS (an exponential
 * moving average over time, not over samples) into the load L, and the
 * weight is 100 * (1 - L) in percent, never below 1 (0 % would read as
 * drain) nor above 100.  It is reported changed only when it moved by
 * TP_AGENT_STEP or more, so that HAProxy does not chase noise.
 *
 * Runs on loop 0 only.  Never logs.
 */
#ifndef TP_AGENT_H
#define TP_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_AGENT_TAU_MS 3000
#define TP_AGENT_STEP 3
#define TP_AGENT_LINE_MAX 32

/* What one sample sees (from tp_health_stats). */
struct tp_agent_sample {
	size_t workers, workers_busy;
	size_t queue_depth, queue_waiting;
	uint64_t rejected; /* ERR server busy so far */
};

/* The weight's state: zero it to start (weight 100 %). */
struct tp_agent_load {
	double load;       /* smoothed pressure, 0..1 */
	unsigned weight;   /* reported weight, 1..100; 0 before the first sample */
	uint64_t last_ns;  /* time of the last sample */
	uint64_t rejected; /* the counter at the last sample */
};

/* Take a sample at now_ns; returns the weight to report. */
unsigned tp_agent_update(struct tp_agent_load *st, const struct tp_agent_sample *s, uint64_t now_ns);

/* The weight to report now (100 before the first sample). */
unsigned tp_agent_weight(const struct tp_agent_load *st);

/*
 * The line for the state; returns its length (< TP_AGENT_LINE_MAX).  With
 * ready, "up" and "down" carry HAProxy's "ready", which ends a DRAIN or
 * MAINT state of the server, an operator's on the runtime API too.
 */
size_t tp_agent_format(bool drain, bool healthy, bool ready, unsigned weight, char buf[TP_AGENT_LINE_MAX]);

/*
 * The agent socket fd is readable: accept a burst of connections and give
 * each the line, then close it.  Returns how many were answered; *ret_err is
 * the errno of an accept that failed other than for want of a connection
 * (out of fds, the socket stays readable: the caller stops watching it for
 * a while), else 0.
 */
size_t tp_agent_answer(int fd, const char *line, size_t len, int *ret_err);

#endif
