/* SPDX-License-Identifier: MIT */
/*
 * sockets: the daemon's listening sockets at start.  Under socket
 * activation they come from systemd, told apart by name (a socket named
 * "metrics" serves the metrics endpoint, one named "agent" the HAProxy
 * agent check, every other one requests); otherwise they are bound from
 * the settings.  Runs once, on the main
 * thread, before any loop exists; never logs (errors go to err).
 */
#ifndef TP_SOCKETS_H
#define TP_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "listener.h"

#define TP_SOCKETS_MAX 16 /* data sockets */

struct tp_sockets {
	struct tp_listener data[TP_SOCKETS_MAX]; /* the first ndata are open */
	size_t ndata;
	bool activated;             /* they came from systemd: the listen settings are not used */
	struct tp_listener metrics; /* fd -1: no metrics endpoint */
	struct tp_listener agent;   /* fd -1: no agent check; src.kind TP_SOURCE_AGENT */
	bool agent_activated;       /* the agent socket came from systemd */
};

/*
 * Open every socket the settings and the environment ask for, and raise
 * the open-file limit to its hard maximum (connections are fds).  The
 * metrics socket is systemd's, else bound from metrics.* when enabled, but
 * never under socket activation (the sandbox binds nothing); the agent
 * socket likewise, from systemd or agent.*.  Returns 0, or
 * -EINVAL for a configuration problem (a bad address, an unusable passed
 * socket) or another negative errno, with the message in err; what was
 * opened is then in *s for tp_sockets_close().
 */
int tp_sockets_open(struct tp_sockets *s, const struct tp_config *cfg, char *err, size_t errlen);

/*
 * The shutdown: the data sockets this process bound itself stop listening
 * (shutdown(2)), so that a new connection is refused at once, and a load
 * balancer retries it on another host, rather than waiting in a backlog
 * nobody will serve, to be reset at the exit.  Sockets from systemd stay
 * as they are: PID 1 holds them, and the next instance serves their
 * backlog.  The fds stay open (the loops still hold them) until
 * tp_sockets_close().
 */
void tp_sockets_stop_listening(struct tp_sockets *s);

/* Close what tp_sockets_open() opened and is still held here. */
void tp_sockets_close(struct tp_sockets *s);

#endif
