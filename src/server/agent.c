/* SPDX-License-Identifier: MIT */
/*
 * agent: the agent-check weight and answers.
 */
#include "agent.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"

#define ACCEPT_BURST 32
#define QUEUED_PER_WORKER_FULL 4.0 /* this many waiting per worker is full pressure */

static double pressure(struct tp_agent_load *st, const struct tp_agent_sample *s)
{
	double workers = s->workers ? (double)s->workers : 1.0;
	double util = (double)s->workers_busy / workers;
	double queued = (double)(s->queue_depth + s->queue_waiting) / workers / QUEUED_PER_WORKER_FULL;
	bool refused = s->rejected != st->rejected;

	st->rejected = s->rejected;
	if (refused)
		return 1.0;
	if (util > 1.0)
		util = 1.0;
	if (queued > 1.0)
		queued = 1.0;
	return 0.25 * util + 0.75 * queued;
}

unsigned tp_agent_update(struct tp_agent_load *st, const struct tp_agent_sample *s, uint64_t now_ns)
{
	bool first = st->weight == 0;
	double p = pressure(st, s);

	if (first) {
		st->load = p;
	} else {
		double dt_ms = (double)(now_ns - st->last_ns) / 1e6;
		st->load += (p - st->load) * (1.0 - exp(-dt_ms / TP_AGENT_TAU_MS));
	}
	st->last_ns = now_ns;
	long w = lround(100.0 * (1.0 - st->load));
	if (w < 1)
		w = 1;
	if (w > 100)
		w = 100;
	/* Small moves are noise; the ends are always reported. */
	if (first || labs(w - (long)st->weight) >= TP_AGENT_STEP || w == 1 || w == 100)
		st->weight = (unsigned)w;
	return st->weight;
}

unsigned tp_agent_weight(const struct tp_agent_load *st)
{
	return st->weight ? st->weight : 100;
}

size_t tp_agent_format(bool drain, bool healthy, bool ready, unsigned weight, char buf[TP_AGENT_LINE_MAX])
{
	const char *r = ready ? "ready " : "";
	int n;

	if (drain)
		n = snprintf(buf, TP_AGENT_LINE_MAX, "drain\n");
	else if (!healthy)
		n = snprintf(buf, TP_AGENT_LINE_MAX, "%sdown\n", r);
	else
		n = snprintf(buf, TP_AGENT_LINE_MAX, "%sup %u%%\n", r,
		             weight < 1     ? 1
		             : weight > 100 ? 100
		                            : weight);
	return (size_t)n;
}

size_t tp_agent_answer(int fd, const char *line, size_t len, int *ret_err)
{
	size_t n = 0;

	*ret_err = 0;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int c = accept4(fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				*ret_err = errno; /* out of fds, say: the caller decides */
			break;
		}
		/* One short line fits any socket buffer; a peer that left is not an error. */
		ssize_t w = send(c, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		/*
		 * What it sent (HAProxy's agent-send) is read first: closing with
		 * bytes unread sends a reset, which over a real network can
		 * destroy the answer before the peer reads it.
		 */
		size_t dropped = 0;
		(void)tp_listener_discard(-1, c, NULL, &dropped);
		close(c);
		n++;
	}
	return n;
}
