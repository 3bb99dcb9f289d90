/* SPDX-License-Identifier: MIT */
/*
 * sockets: the daemon's listening sockets at start.  Under socket
 * activation they come from systemd, told apart by name (a socket named
 * "metrics" serves the metrics endpoint, every other one requests);
 * otherwise they are bound from the settings.  Runs once, on the main
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
};

/*
 * Open every socket the settings and the environment ask for, and raise
 * the open-file limit to its hard maximum (connections are fds).  The
 * metrics socket is systemd's, else bound from metrics.* when enabled, but
 * never under socket activation (the sandbox binds nothing).  Returns 0, or
 * -EINVAL for a configuration problem (a bad address, an unusable passed
 * socket) or another negative errno, with the message in err; what was
 * opened is then in *s for tp_sockets_close().
 */
int tp_sockets_open(struct tp_sockets *s, const struct tp_config *cfg, char *err, size_t errlen);

/* Close what tp_sockets_open() opened and is still held here. */
void tp_sockets_close(struct tp_sockets *s);

#endif
