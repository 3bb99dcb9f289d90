/* SPDX-License-Identifier: MIT */
/*
 * server: the wiring of one tpserver instance: configuration, listening
 * sockets, queue, pool, event loops, counters, shutdown and reload.
 *
 * Threads: tp_server_run() runs loop 0 on the calling thread (signals,
 * ticks, status, watchdog) and the other loops on their own threads; the
 * pool's workers run requests.  Counters are atomics any thread may read.
 */
#ifndef TP_SERVER_H
#define TP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct tp_server;
struct tp_queue;
struct tp_pool;
struct tp_loop;

#define TP_TAG_LISTEN 0x4c69736eu

/* A listening socket as an epoll source (first word is the tag). */
struct tp_listener {
	uint32_t tag; /* TP_TAG_LISTEN */
	int fd;
	char name[64]; /* "127.0.0.1:9000", for logs */
};

struct tp_server_stats {
	size_t workers, workers_busy;
	size_t queue_depth, queue_capacity, queue_waiting;
	uint64_t connections;
	uint64_t served;   /* replies written */
	uint64_t rejected; /* ERR server busy */
	uint64_t oldest_busy_ns;
};

/*
 * Re-read the configuration for a reload (file, then command-line flags).
 * Returns 0 with *ret filled, or a negative errno with a one-line message
 * naming the file, line and setting in err.  Runs on loop 0.
 */
typedef int (*tp_server_reload_fn)(struct tp_config *ret, char *err, size_t errlen, void *ctx);

/*
 * Build a server from cfg: take the listening sockets (inherited from
 * systemd, or bound here), create the queue, start the workers and the
 * loops' resources.  Returns 0 or a negative errno with a message in err
 * (naming the failed call and object).  On success *ret is ready to run.
 */
int tp_server_new(const struct tp_config *cfg, tp_server_reload_fn reload, void *reload_ctx,
                  struct tp_server **ret, char *err, size_t errlen);

/* Run until shut down by SIGTERM/SIGINT; returns the exit status. */
int tp_server_run(struct tp_server *srv);

void tp_server_free(struct tp_server *srv);

/* --- for the loops and connections --- */
bool tp_server_shutting_down(const struct tp_server *srv);
struct tp_queue *tp_server_queue(const struct tp_server *srv);
struct tp_listener *tp_server_listeners(struct tp_server *srv, size_t *ret_n);
unsigned tp_server_config_gen(const struct tp_server *srv);
/* Copy the current configuration (any thread). */
void tp_server_config_copy(struct tp_server *srv, struct tp_config *ret);
/* Count a connection in; false (not counted) when max_connections is reached. */
bool tp_server_conn_enter(struct tp_server *srv);
void tp_server_conn_leave(struct tp_server *srv);
void tp_server_stats(struct tp_server *srv, struct tp_server_stats *ret);
/* Loop 0: a signal arrived / one second passed / the loop is idle-checking. */
void tp_server_on_signal(struct tp_server *srv, int signo);
void tp_server_tick(struct tp_server *srv, uint64_t now_ns);
/* Past the shutdown deadline and its grace: close whatever is left. */
bool tp_server_force_close(const struct tp_server *srv);
/* Loop 0's tick period (shorter than 1 s when the watchdog needs it). */
uint64_t tp_server_tick_ms(const struct tp_server *srv);
/* A loop thread (not loop 0) returned from tp_loop_run(). */
void tp_server_loop_exited(struct tp_server *srv);
/* Have all loop threads (other than loop 0) returned? */
bool tp_server_all_loops_done(const struct tp_server *srv);

#endif
