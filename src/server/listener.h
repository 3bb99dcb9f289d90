/* SPDX-License-Identifier: MIT */
/*
 * listener: the listening sockets, bound here or inherited from systemd.
 * Library-like: never logs; errors name the call and the address in err.
 */
#ifndef TP_LISTENER_H
#define TP_LISTENER_H

#include <stddef.h>

#include "server.h"

/*
 * Bind and listen on host:port (port 0: an ephemeral port) with SO_REUSEADDR
 * and a non-blocking, close-on-exec socket.  Fills *ret (name is the bound
 * address, e.g. "127.0.0.1:9000").  Returns 0 or a negative errno.
 */
int tp_listener_bind(const char *host, int port, int backlog, struct tp_listener *ret, char *err,
                     size_t errlen);

/*
 * Adopt an inherited socket (socket activation): it must be a listening
 * stream socket of AF_INET or AF_INET6; it is made non-blocking and
 * close-on-exec.  Returns 0, or -EINVAL with a message naming the fd.
 */
int tp_listener_adopt(int fd, struct tp_listener *ret, char *err, size_t errlen);

/* Describe a bound socket's local address as "host:port" ("[::1]:9000"). */
void tp_listener_describe(int fd, char *buf, size_t len);

#endif
