/* SPDX-License-Identifier: MIT */
/*
 * sockets: the sockets the server listens on.  Under socket activation,
 * those systemd passed, told apart by their FileDescriptorName=: "agent"
 * is the HAProxy agent-check socket (tpserver-agent.socket), any other
 * name a data socket.  Otherwise the ones the settings name: listen.host
 * and listen.port, and agent.host and agent.port when agent.enabled.  A
 * passed agent socket wins over the settings.  Never logs: errors name
 * the call and the address in err.
 */
#ifndef TP_SOCKETS_H
#define TP_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "listener.h"

#define TP_SOCKETS_MAX 16 /* data sockets */

struct tp_config;

struct tp_sockets {
	struct tp_listener data[TP_SOCKETS_MAX];
	size_t ndata;
	struct tp_listener agent; /* fd -1: no agent */
	bool activated;           /* the data sockets came from systemd */
	bool agent_activated;     /* the agent socket came from systemd */
};

/* Open (or adopt) the sockets.  Returns 0 or a negative errno with a message in err. */
int tp_sockets_open(struct tp_sockets *s, const struct tp_config *cfg, char *err, size_t errlen);

/* Close every socket.  Safe on a zeroed set after tp_sockets_init(). */
void tp_sockets_close(struct tp_sockets *s);

/* An empty set (every fd -1). */
void tp_sockets_init(struct tp_sockets *s);

#endif
