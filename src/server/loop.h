/* SPDX-License-Identifier: MIT */
/*
 * loop: an event-loop thread.  It owns an epoll set, the connections it
 * accepted, and their sockets; it accepts from the shared listening
 * sockets, reads and parses, pushes work to the queue, and writes replies.
 * Work comes back to it from any thread through tp_loop_post_done() and
 * tp_loop_post_admit(), which append to a locked list and write the loop's
 * eventfd only when that list goes from empty to non-empty.
 *
 * Loop 0 also runs on the main thread and handles signals, the periodic
 * status, and the watchdog (see server.c).
 */
#ifndef TP_LOOP_H
#define TP_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "req.h"

struct tp_loop;
struct tp_conn;
struct tp_server;

/* A loop of server srv. NULL with errno set on failure. */
struct tp_loop *tp_loop_new(struct tp_server *srv, unsigned index);
void tp_loop_free(struct tp_loop *l);

/* Run until the server has shut down and this loop's connections are closed. Returns 0 or -errno. */
int tp_loop_run(struct tp_loop *l);

/* Wake the loop (any thread). */
void tp_loop_wake(struct tp_loop *l);

/*
 * Any thread: hand back n finished requests of this loop's connections,
 * linked through qnode.next from first to last.
 */
void tp_loop_post_done(struct tp_loop *l, struct tp_req *first, struct tp_req *last, size_t n);

/* Queue admit callback (queue lock held): r, which was waiting, is admitted. */
void tp_loop_post_admit(struct tp_loop *l, struct tp_req *r);

/* Any thread: the loop's counters, and when it last went round (CLOCK_MONOTONIC ns). */
struct tp_loop_counters {
	uint64_t served;
	uint64_t busy;
	uint64_t connections;
	uint64_t last_turn_ns;
};
void tp_loop_counters(struct tp_loop *l, struct tp_loop_counters *ret);

/* Start the loop's thread (loops other than 0). Returns 0 or -errno. */
int tp_loop_start_thread(struct tp_loop *l);
/* Join the loop's thread. */
void tp_loop_join(struct tp_loop *l);

/* --- for conn.c, loop thread only --- */
uint64_t tp_loop_now_ns(const struct tp_loop *l);
const struct tp_config *tp_loop_config(const struct tp_loop *l);
struct tp_server *tp_loop_server(const struct tp_loop *l);
int tp_loop_epfd(const struct tp_loop *l);
char *tp_loop_scratch(struct tp_loop *l, size_t *ret_len);
void tp_loop_mark_ready(struct tp_loop *l, struct tp_conn *c);
void tp_loop_mark_dirty(struct tp_loop *l, struct tp_conn *c);
void tp_loop_touch(struct tp_loop *l, struct tp_conn *c);
/* The connection's fd was closed: forget it (and free it when nothing is in flight). */
void tp_loop_conn_closed(struct tp_loop *l, struct tp_conn *c);
/* A closed connection was freed. */
void tp_loop_conn_freed(struct tp_loop *l);
/* Add a parsed request to this turn's batch (pushed with one queue call). */
void tp_loop_batch_add(struct tp_loop *l, struct tp_req *r);
/* Batchable requests of this loop leaving the pool. */
void tp_loop_cheap_done(struct tp_loop *l);
/*
 * Recycled request slots of TP_REQ_MIN_CAP bytes (the common ECHO/SLEEP
 * size): get returns NULL when none is cached; put keeps a bounded number
 * and frees the rest.
 */
struct tp_req *tp_loop_req_get(struct tp_loop *l);
void tp_loop_req_put(struct tp_loop *l, struct tp_req *r);
/* Count a busy rejection (aggregated into one log entry per interval). */
void tp_loop_count_busy(struct tp_loop *l);
/* Count a reply sent. */
void tp_loop_count_served(struct tp_loop *l, size_t n);

#endif
