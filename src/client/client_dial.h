/* SPDX-License-Identifier: MIT */
/*
 * client_dial: the server's addresses, resolved once, and the opening of
 * one client connection to them, from a given local address if asked.
 *
 * Threads: tp_client_dial_new() and _free() run on the main thread;
 * tp_client_dial_connect() may run on any thread at the same time (it
 * only reads, but for an atomic hint of which address answered last).
 * This module never logs: errors come back as -errno and the name of the
 * call that failed, for the caller's one log line.
 */
#ifndef TP_CLIENT_DIAL_H
#define TP_CLIENT_DIAL_H

#include "client_opts.h"

struct tp_client_dial;

/*
 * Resolve host and port (numeric or a name).  Returns 0 and the dialer in
 * *ret; -EHOSTUNREACH with getaddrinfo's reason in *ret_why when the host
 * does not resolve; or -ENOMEM.
 */
int tp_client_dial_new(const char *host, const char *port, struct tp_client_dial **ret, const char **ret_why);

/* Release. Accepts NULL. */
void tp_client_dial_free(struct tp_client_dial *d);

/*
 * Open a TCP connection to the first server address of src's family (any
 * family when src is NULL) that accepts, bound to src's address (the port
 * picked by the kernel) when src is not NULL; each connect bounded by
 * timeout_s; TCP_NODELAY set.  Gives up with -EINTR as soon as stop_fd
 * (if >= 0: a signalfd, or an eventfd written at a stop) is readable.
 * Returns the socket (non-blocking), or -errno with *ret_call naming the
 * call that failed ("socket", "bind" or "connect").
 */
int tp_client_dial_connect(struct tp_client_dial *d, const struct tp_client_source *src, double timeout_s,
                           int stop_fd, const char **ret_call);

#endif
