/* SPDX-License-Identifier: MIT */
/*
 * reload: SIGHUP's work: re-read the configuration and apply what can
 * change live (pool size, queue size, log level; the rest of the settings
 * reach the loops through the new copy), keeping what only a restart can
 * change.  Runs on loop 0.
 */
#ifndef TP_RELOAD_H
#define TP_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct tp_pool;
struct tp_queue;

/*
 * Re-read the configuration for a reload (file, then command-line flags).
 * Returns 0 with *ret filled, or a negative errno with a one-line message
 * naming the file, line and setting in err.  Runs on loop 0.
 */
typedef int (*tp_reload_fn)(struct tp_config *ret, char *err, size_t errlen, void *ctx);

/* What a reload changes live. */
struct tp_reload_target {
	struct tp_pool *pool;
	struct tp_queue *queue;
	bool activated; /* listening sockets came from systemd */
};

/*
 * Re-read with fn and apply to t what differs from old: resize the pool,
 * change the queue's capacity, set the log level.  Logs the outcome.
 * Returns 0 with *ret the configuration now in force (the caller publishes
 * it), or the negative errno of fn (nothing changed).
 */
int tp_reload_apply(const struct tp_reload_target *t, const struct tp_config *old, tp_reload_fn fn, void *ctx,
                    struct tp_config *ret);

#endif
