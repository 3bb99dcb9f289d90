/* SPDX-License-Identifier: MIT */
/*
 * client_window: the requests a tpclient connection has outstanding (or
 * waiting), oldest first, and what one request is: drawn from the
 * client's generator, written as a line, and checked against its reply.
 * An entry stores the request's op, argument and text seed, not its text:
 * the ECHO text is generated again from the seed to check the reply, so
 * memory does not grow with --echo-bytes.
 *
 * No I/O, no logging, no locking: a window belongs to one connection.
 */
#ifndef TP_CLIENT_WINDOW_H
#define TP_CLIENT_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_settings.h"
#include "verify.h"

/* One request: enough to write it again and to rebuild what its reply must say. */
struct tp_client_req {
	int64_t start_ns; /* send time, or scheduled time in the open loop: latency counts from it */
	int64_t due_ns;   /* a waiting retry: when it may be sent again */
	uint64_t seed;    /* ECHO: the text's generator seed */
	uint32_t arg;     /* SLEEP: ms; ECHO: text length */
	uint8_t op;       /* enum tp_op */
	uint16_t retries; /* times it was sent again after ERR server busy (--retry-busy: up to 1000) */
	bool measured;    /* counts in the totals (not sent during --warmup) */
};

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

/* Draw the next request of group g from the client's generator *rng: op and argument into *ret. */
void tp_client_req_draw(const struct tp_client_group *g, uint64_t *rng, struct tp_client_req *ret);

/* Write req's line ("SLEEP 12\n", "ECHO text\n") at dst, which has room for room bytes. Returns its length.
 */
size_t tp_client_req_write(const struct tp_client_req *req, char *dst, size_t room);

/* Check a reply line against req; text: scratch room for the longest ECHO text of the run. */
enum tp_verify_result tp_client_req_check(const struct tp_client_req *req, char *text, const char *line,
                                          size_t len);

#endif
