/* SPDX-License-Identifier: MIT */
/*
 * client_window: the requests a tpclient connection has outstanding (or
 * waiting for a retry), oldest first, as a ring of struct tp_client_req
 * (client_req.h).
 *
 * No I/O, no logging, no locking: a window belongs to one connection.
 */
#ifndef TP_CLIENT_WINDOW_H
#define TP_CLIENT_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_req.h"

/* A ring of at most cap requests, the oldest at head. */
struct tp_client_window {
	struct tp_client_req *ring;
	unsigned cap, head, count;
};

/* Room for cap requests. Returns 0 or -ENOMEM. */
int tp_client_window_init(struct tp_client_window *w, unsigned cap);

/* Free the ring. Safe on a zeroed or released window. */
void tp_client_window_release(struct tp_client_window *w);

/* The i-th oldest request, 0 <= i < count. */
struct tp_client_req *tp_client_window_at(const struct tp_client_window *w, unsigned i);

/* A new newest entry (count < cap), uninitialised. */
struct tp_client_req *tp_client_window_push(struct tp_client_window *w);

/* Drop the oldest entry (count > 0) and return a copy of it. */
struct tp_client_req tp_client_window_pop(struct tp_client_window *w);

/* Forget every entry. */
void tp_client_window_clear(struct tp_client_window *w);

/*
 * --retry-busy, with w the queue of refused requests waiting for their
 * retry: queue a copy of req (refused as busy) to be sent again at due_ns,
 * if it was sent again fewer than budget times and the queue has room.
 * Returns true if queued.
 */
bool tp_client_window_defer(struct tp_client_window *w, const struct tp_client_req *req, int64_t due_ns,
                            unsigned budget);

/* The oldest entry if it is due by now_ns (its due_ns), else NULL. */
const struct tp_client_req *tp_client_window_due(const struct tp_client_window *w, int64_t now_ns);

#endif
