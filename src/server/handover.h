/* SPDX-License-Identifier: MIT */
/*
 * handover: keeping client connections open across a restart through
 * systemd's file descriptor store (docs/DESIGN.md, "Keeping connections
 * across restarts").
 *
 * Leaving (shutdown.keep_connections): at SIGTERM tp_handover_begin()
 * decides whether connections are handed over this time; each loop then
 * gives every connection that has answered all it read to
 * tp_handover_take(), up to shutdown.keep_connections_max; once every loop
 * has returned, tp_handover_store() sends the fds to systemd (FDSTORE=1,
 * named "tpc" and a two-digit generation, at most 253 per message) and,
 * last, the memfd of their records (handover_state.h, named "tps" and the
 * generation), keyed by each socket's inode.
 *
 * Arriving: tp_handover_open() keeps the stored fds apart from the
 * listening sockets; tp_handover_adopt() pairs each with its record, gives
 * it to a loop, closes (with a logged reason) those it cannot pair, and
 * tells systemd to drop them all from its store (FDSTOREREMOVE=1), so a
 * connection this instance closes really closes.
 *
 * Threads: tp_handover_take() runs on any loop's thread (it locks); the
 * rest on the main thread.  Logs what it did and why it refused.
 */
#ifndef TP_HANDOVER_H
#define TP_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "handover_state.h"
#include "loop.h"

struct tp_handover;

/*
 * At start, before the listening sockets are taken (sockets.c): a new
 * hand-over in *ret, holding the fds systemd passed under its names for
 * tp_handover_adopt().  Returns 0, or a negative errno with a message in err.
 */
int tp_handover_open(struct tp_handover **ret, char *err, size_t errlen);

/* Closes any fd still held. Accepts NULL. */
void tp_handover_free(struct tp_handover *h);

/* Give each handed-over connection to a loop (round robin) and drop them from systemd's store. */
void tp_handover_adopt(struct tp_handover *h, struct tp_loop *const *loops, size_t nloops);

/*
 * SIGTERM: will connections be handed over?  notified is what sending
 * STOPPING=1 returned (tp_health_stopping()).  True when cfg keeps them and
 * systemd had that message, or it could not be sent for want of fds or
 * memory (the store keeps fds of its own for that): without a
 * NOTIFY_SOCKET, or with one that cannot be reached (logged), the stop
 * closes them as without keep_connections.  From now on at most cfg->keep_connections_max are taken.
 */
bool tp_handover_begin(struct tp_handover *h, const struct tp_config *cfg, int notified);

/*
 * Any loop: take fd (the hand-over owns it from now on) and a copy of rec.
 * False, fd untouched, when the cap is reached or memory is short.
 */
bool tp_handover_take(void *h, int fd, const struct tp_handover_conn *rec);

/* Once every loop returned: store what was taken with systemd, then close it here. */
void tp_handover_store(struct tp_handover *h);

#endif
