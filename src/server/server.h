/* SPDX-License-Identifier: MIT */
/*
 * server: the wiring of one tpserver instance: configuration, listening
 * sockets, queue, pool, event loops, and the lifecycle (ready, reload,
 * shutdown) that ties them together.
 *
 * Threads: tp_server_run() runs loop 0 on the calling thread (signals,
 * ticks, status, watchdog) and the other loops on their own threads; the
 * pool's workers run requests.
 */
#ifndef TP_SERVER_H
#define TP_SERVER_H

#include <stddef.h>

#include "config.h"
#include "reload.h"

struct tp_server;

/*
 * Build a server from cfg: take the listening sockets (inherited from
 * systemd, or bound here), create the queue, the loops' resources and
 * start the workers.  reload re-reads the configuration on SIGHUP.
 * Returns 0 or a negative errno with a message in err (naming the failed
 * call and object).  On success *ret is ready to run.
 */
int tp_server_new(const struct tp_config *cfg, tp_reload_fn reload, void *reload_ctx, struct tp_server **ret,
                  char *err, size_t errlen);

/* Run until shut down by SIGTERM/SIGINT; returns the exit status. */
int tp_server_run(struct tp_server *srv);

/* Free srv once tp_server_run() returned (or it never ran); NULL is fine. */
void tp_server_free(struct tp_server *srv);

#endif
