/* SPDX-License-Identifier: MIT */
/*
 * leave: how a host steps out of a load balancer's rotation, and what the
 * HAProxy agent check is told meanwhile (agent.h):
 * - the operator's drain: SIGUSR2 drains (the check answers "drain"),
 *   SIGUSR1 undoes it; no toggle, and a restart forgets it;
 * - the graceful leave: on SIGTERM with shutdown.drain_s > 0 the check
 *   answers "drain" for that long while the server goes on serving (and
 *   its connections close at request boundaries, conn.h), then the
 *   shutdown goes on as without it.  A second SIGTERM cuts it short.
 * Loop 0 only; logs each change of state once.
 */
#ifndef TP_LEAVE_H
#define TP_LEAVE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"

struct tp_health;

struct tp_leave {
	uint64_t ready_ns;       /* agent.ready_s */
	uint64_t ready_until_ns; /* the answers carry "ready" until then */
	bool drained;            /* SIGUSR2, until SIGUSR1 */
	bool leaving;            /* a graceful leave runs until leave_at_ns */
	uint64_t leave_at_ns;    /* when it ends */
	struct tp_agent_load load;
	uint64_t answered; /* agent checks answered */
};

/*
 * The server starts at now_ns: for ready_s seconds the agent's answers
 * carry "ready", which ends a drain this host's agent left in HAProxy
 * (a graceful leave before a restart) but also one an operator set there;
 * after it they do not, so that an operator's drain holds.
 */
void tp_leave_start(struct tp_leave *lv, int ready_s, uint64_t now_ns);

/*
 * SIGUSR1 (ready again: "ready" for ready_s more) or SIGUSR2 (drain); stopping: the
 * shutdown has begun.  Logs what the agent check answers from then on.
 */
void tp_leave_signal(struct tp_leave *lv, int signo, bool stopping);

/*
 * A SIGTERM (or SIGINT) named signo: start a graceful leave of drain_s
 * seconds.  Returns true when one began; false when drain_s is 0, or
 * when a leave was running (it ends here): the caller then shuts down at once.
 */
bool tp_leave_begin(struct tp_leave *lv, int drain_s, int signo, uint64_t now_ns);

/* Loop 0's tick: sample the load (h's counters); returns true when a leave just ended (shut down now). */
bool tp_leave_tick(struct tp_leave *lv, const struct tp_health *h, uint64_t now_ns);

/*
 * The agent socket fd is readable: answer each check (stopping: the server
 * is shutting down).  Returns 0, or the errno of an accept that failed
 * (tp_agent_answer()).
 */
int tp_leave_answer(struct tp_leave *lv, int fd, bool stopping, bool healthy);

#endif
