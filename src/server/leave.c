/* SPDX-License-Identifier: MIT */
/*
 * leave: the drain states and the agent check's answers.
 */
#include "leave.h"

#include <signal.h>
#include <string.h>

#include "clock.h"
#include "health.h"
#include "log.h"

void tp_leave_start(struct tp_leave *lv, int ready_s, uint64_t now_ns)
{
	lv->ready_ns = (uint64_t)ready_s * 1000000000ull;
	lv->ready_until_ns = now_ns + lv->ready_ns;
}

void tp_leave_signal(struct tp_leave *lv, int signo, bool stopping)
{
	bool drain = signo == SIGUSR2, changed = drain != lv->drained;
	const char *answers;

	if (!drain) /* also when not drained: a load balancer that missed the window still holds a drain */
		lv->ready_until_ns = tp_clock_ns() + lv->ready_ns;
	lv->drained = drain;
	/* What tp_leave_answer() says from now on. */
	if (lv->leaving || stopping)
		answers = "drain: the host is leaving";
	else if (drain)
		answers = "drain until SIGUSR1";
	else if (lv->ready_ns == 0)
		answers = "up but never ready (agent.ready_s is 0): a drain the load balancer holds stays";
	else
		answers = "ready again";
	tp_log(TP_LOG_NOTICE, "drain", "%s: %s; the agent check answers %s", drain ? "SIGUSR2" : "SIGUSR1",
	       drain ? (changed ? "drained" : "already drained") : (changed ? "ready again" : "not drained"),
	       answers);
}

bool tp_leave_begin(struct tp_leave *lv, int drain_s, int signo, uint64_t now_ns)
{
	if (lv->leaving) {
		/* A second signal ends the leave; the shutdown that follows is not cut short by its end. */
		lv->leaving = false;
		lv->leave_at_ns = 0;
		tp_log(TP_LOG_NOTICE, "stop", "%s again: ending the leave now", strsignal(signo));
		return false;
	}
	if (drain_s <= 0)
		return false;
	lv->leaving = true;
	lv->leave_at_ns = now_ns + (uint64_t)drain_s * 1000000000ull;
	tp_log(TP_LOG_NOTICE, "stop",
	       "%s: leaving: the agent check answers drain and connections close between requests for %d s, "
	       "then the shutdown",
	       strsignal(signo), drain_s);
	return true;
}

bool tp_leave_tick(struct tp_leave *lv, const struct tp_health *h, uint64_t now_ns)
{
	struct tp_health_stats st;

	tp_health_stats(h, &st);
	struct tp_agent_sample s = {
	        .workers = st.workers,
	        .workers_busy = st.workers_busy,
	        .queue_depth = st.queue_depth,
	        .queue_waiting = st.queue_waiting,
	        .rejected = st.rejected + st.late, /* both are ERR server busy */
	};

	(void)tp_agent_update(&lv->load, &s, now_ns);
	if (!lv->leaving || now_ns < lv->leave_at_ns)
		return false;
	lv->leaving = false;
	lv->leave_at_ns = 0;
	return true;
}

int tp_leave_answer(struct tp_leave *lv, int fd, bool stopping, bool healthy)
{
	char line[TP_AGENT_LINE_MAX];
	size_t len = tp_agent_format(lv->drained || lv->leaving || stopping, healthy,
	                             tp_clock_ns() < lv->ready_until_ns, tp_agent_weight(&lv->load), line);
	int err;

	lv->answered += tp_agent_answer(fd, line, len, &err);
	return err;
}
